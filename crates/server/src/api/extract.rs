//! Request extractors that answer bad input in Berth's error format instead of axum's plain text,
//! and the caller of an API request, from its bearer token.

use crate::auth::{bearer_token, remote_addr, CurrentUser};
use crate::error::ApiError;
use crate::service::sessions;
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

/// A numeric id from the path; anything else is a 404, since no such resource can exist.
pub struct IdPath(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for IdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<String>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(s)) => s.parse::<i64>().map(IdPath).map_err(|_| bad_id(&s)),
            Err(r) => Err(path_rejection(r)),
        }
    }
}

fn bad_id(s: &str) -> ApiError {
    let shown: String = s.chars().take(40).collect();
    ApiError::new(
        StatusCode::NOT_FOUND,
        Code::NotFound,
        format!("{shown:?} is not an id"),
        "ids are the numbers that list calls return",
    )
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

/// `Authorization: Bearer <session or personal API token>`.
impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let remote = remote_addr(&parts.extensions, &parts.headers);
        Ok(sessions::bearer_caller(state, bearer_token(&parts.headers), remote).await?)
    }
}
