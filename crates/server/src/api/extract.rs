//! Request extractors that answer bad input in Berth's error format instead of axum's plain text,
//! and the caller of an API request, from its bearer token.

use crate::auth::{bearer_token, remote_addr, CurrentUser};
use crate::error::ApiError;
use crate::service::{sessions, Entity};
use crate::state::AppState;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use berth_core::Code;
use serde::de::DeserializeOwned;

/// `Json<T>` whose rejections are `invalid_input` errors naming the problem.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

/// A JSON body that may be left out entirely (an empty body is `None`); a body that is there is
/// judged as [`ApiJson`] judges it.
pub struct OptionalJson<T>(pub Option<T>);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let (parts, body) = req.into_parts();
        let bytes = match axum::body::to_bytes(body, MAX_OPTIONAL_BODY).await {
            Ok(b) => b,
            Err(_) => {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    Code::InvalidInput,
                    "the body could not be read or is too large",
                    "see the request schema in /api/openapi.json",
                ))
            }
        };
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(None));
        }
        let req = Request::from_parts(parts, axum::body::Body::from(bytes));
        ApiJson::<T>::from_request(req, state).await.map(|ApiJson(v)| OptionalJson(Some(v)))
    }
}

/// Optional bodies are small requests (a URL); the router's own limit still applies first.
const MAX_OPTIONAL_BODY: usize = 64 * 1024;

fn json_rejection(r: JsonRejection) -> ApiError {
    let (status, message) = match &r {
        JsonRejection::MissingJsonContentType(_) => (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the request body must be JSON with Content-Type: application/json".to_owned(),
        ),
        JsonRejection::JsonSyntaxError(e) => {
            (StatusCode::BAD_REQUEST, format!("the body is not valid JSON: {}", e.body_text()))
        }
        JsonRejection::JsonDataError(e) => {
            (StatusCode::UNPROCESSABLE_ENTITY, format!("the JSON does not fit: {}", e.body_text()))
        }
        JsonRejection::BytesRejection(_) => {
            (StatusCode::PAYLOAD_TOO_LARGE, "the body could not be read or is too large".to_owned())
        }
        other => (StatusCode::BAD_REQUEST, other.body_text()),
    };
    // serde's messages quote the offending value for type errors; none of our secret fields
    // are typed so that a secret could end up quoted here, but cap the length regardless.
    let message: String = message.chars().take(300).collect();
    ApiError::new(status, Code::InvalidInput, message, "see the request schema in /api/openapi.json")
}

/// The numeric id of a resource from the path; anything else answers that resource's own 404
/// (the same code as a number that names nothing), since no such resource can exist.
macro_rules! id_path {
    ($($(#[$doc:meta])* $name:ident => $entity:expr;)*) => {$(
        $(#[$doc])*
        pub struct $name(pub i64);

        impl<S: Send + Sync> FromRequestParts<S> for $name {
            type Rejection = ApiError;

            async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
                id_from_path(parts, state, $entity).await.map($name)
            }
        }
    )*};
}

id_path! {
    /// `{id}` of `/api/v1/credentials/{id}`.
    CredentialId => Entity::Credential;
    /// `{id}` of `/api/v1/repositories/{id}…`.
    RepositoryId => Entity::Repository;
    /// `{id}` of `/api/v1/users/{id}…`.
    UserId => Entity::User;
    /// `{id}` of `/api/v1/tokens/{id}`.
    TokenId => Entity::Token;
    /// `{id}` of `/api/v1/credential-templates/{id}`.
    TemplateId => Entity::Template;
    /// `{id}` of `/api/v1/imports/{id}…`.
    ImportId => Entity::Import;
    /// `{id}` of `/api/v1/notification-channels/{id}…`.
    ChannelId => Entity::NotificationChannel;
    /// `{id}` of `/api/v1/notification-deliveries/{id}…`.
    DeliveryId => Entity::NotificationDelivery;
    /// `{id}` of `/api/v1/known-hosts/{id}`.
    KnownHostId => Entity::KnownHost;
}

async fn id_from_path<S: Send + Sync>(parts: &mut Parts, state: &S, entity: Entity) -> Result<i64, ApiError> {
    match axum::extract::Path::<String>::from_request_parts(parts, state).await {
        Ok(axum::extract::Path(s)) => s.parse::<i64>().map_err(|_| ApiError::not_found_id(entity, Some(&s))),
        // An id that is not even UTF-8 once decoded names nothing either.
        Err(PathRejection::FailedToDeserializePathParams(_)) => Err(ApiError::not_found_id(entity, None)),
        Err(r) => Err(path_rejection(r)),
    }
}

fn path_rejection(r: PathRejection) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, Code::InvalidInput, r.body_text(), "")
}

/// Query parameters, refused in the API's error shape when they do not parse.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(ApiQuery(v)),
            Err(e) => Err(ApiError::new(
                axum::http::StatusCode::BAD_REQUEST,
                berth_core::Code::InvalidInput,
                format!("the query string is invalid: {}", e.body_text().chars().take(200).collect::<String>()),
                "see /api/openapi.json for the parameters this endpoint takes",
            )),
        }
    }
}

/// `limit` and `after` of a keyset-paged list (default 100, 1 to 1000).
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// At most this many items (1 to 1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// The `next` of the previous page; left out for the first page.
    pub after: Option<String>,
}

impl PageQuery {
    /// The page asked for, its `limit` checked (`400 invalid_input` out of range).
    pub fn page(self) -> Result<crate::service::paging::PageRequest, ApiError> {
        let limit = in_range("limit", self.limit, 1, crate::service::paging::MAX_LIMIT)?;
        Ok(crate::service::paging::PageRequest { after: self.after, limit })
    }
}

/// The query string as name-value pairs, for parameters that may repeat (`status=fail&status=warn`),
/// which `serde_urlencoded` cannot read into a struct.
pub struct QueryPairs(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for QueryPairs {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let q = parts.uri.query().unwrap_or_default();
        Ok(QueryPairs(url::form_urlencoded::parse(q.as_bytes()).into_owned().collect()))
    }
}

impl QueryPairs {
    /// The first value of `name`.
    pub fn one(&self, name: &str) -> Option<String> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    /// Every value of `name`, in order.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0.iter().filter(|(k, _)| k == name).map(|(_, v)| v.clone()).collect()
    }

    /// `name` as an integer, refused as [`ApiQuery`] refuses a query that does not parse.
    pub fn int(&self, name: &str) -> Result<Option<i64>, ApiError> {
        match self.one(name) {
            None => Ok(None),
            Some(v) => v.trim().parse::<i64>().map(Some).map_err(|_| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    Code::InvalidInput,
                    format!(
                        "the query string is invalid: {name} must be an integer, not {:?}",
                        v.chars().take(40).collect::<String>()
                    ),
                    "see /api/openapi.json for the parameters this endpoint takes",
                )
            }),
        }
    }
}

/// `Authorization: Bearer <session or personal API token>`.
impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let remote = remote_addr(&parts.extensions, &parts.headers);
        Ok(sessions::bearer_caller(state, bearer_token(&parts.headers), remote).await?)
    }
}

/// A paging parameter within `min..=max`, or `400 invalid_input` naming the range, as for a
/// query that does not parse: a zero or negative `limit` or a negative `offset` is a mistake in
/// the request, not a wish for an empty or clamped page.
pub fn in_range(name: &str, value: Option<i64>, min: i64, max: i64) -> Result<Option<i64>, ApiError> {
    match value {
        Some(v) if v < min || v > max => {
            let range = if max == i64::MAX { format!("{min} or more") } else { format!("from {min} to {max}") };
            Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                Code::InvalidInput,
                format!("{name} must be {range}, not {v}"),
                "see /api/openapi.json for the parameters this endpoint takes",
            ))
        }
        _ => Ok(value),
    }
}
