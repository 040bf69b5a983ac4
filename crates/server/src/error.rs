//! One error type for every API handler. Expected failures carry a stable code, a message and a
//! remedy; unexpected ones are logged with an id and answered as a bare 500 without internals.

use crate::auth::{Action, Role};
use crate::service::{not_found_code, Conflict, Entity, Error as ServiceError, Refusal};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_core::{Code, Step};
use berth_proto::{ApiError as WireError, ErrorBody};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: Code,
    pub message: String,
    pub remedy: String,
    pub checks: Vec<Step>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, code: Code, message: impl Into<String>, remedy: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), remedy: remedy.into(), checks: Vec::new() }
    }

    pub fn invalid(message: impl Into<String>, remedy: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, Code::InvalidInput, message, remedy)
    }

    /// The resource named by the path does not exist: one code per kind of resource.
    pub fn not_found(entity: Entity) -> Self {
        let (message, remedy) = not_found_words(entity);
        ApiError::new(StatusCode::NOT_FOUND, not_found_code(entity), message, remedy)
    }

    /// The path's id is not a number (`Some`, quoted shortened) or not even text (`None`), so
    /// it names nothing: answered as a number that names nothing is.
    pub fn not_found_id(entity: Entity, id: Option<&str>) -> Self {
        let (message, remedy) = not_found_words(entity);
        let message = match id {
            Some(id) => {
                let shown: String = id.chars().take(40).collect();
                format!("{message}: {shown:?} is not an id (ids are the numbers list answers carry)")
            }
            None => format!("{message}: the id is not UTF-8 text (ids are the numbers list answers carry)"),
        };
        ApiError::new(StatusCode::NOT_FOUND, not_found_code(entity), message, remedy)
    }

    /// A check failed: 422 with the first failing step as headline and every step attached.
    pub fn check_failed(checks: Vec<Step>) -> Self {
        let (code, message, remedy) = match checks.iter().find(|s| s.status == berth_core::StepStatus::Fail) {
            Some(s) => (s.code, format!("{}: {}", s.step.title(), s.message), s.remedy.clone()),
            None => (Code::Internal, "the check failed".to_owned(), String::new()),
        };
        ApiError { status: StatusCode::UNPROCESSABLE_ENTITY, code, message, remedy, checks }
    }

    /// Logs an unexpected failure under a fresh id and hides it from the caller.
    pub fn internal(err: &dyn std::fmt::Display) -> Self {
        let id = format!("{:016x}", rand::random::<u64>());
        tracing::error!(error_id = %id, "internal error: {err}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            Code::Internal,
            format!("internal error (id {id})"),
            "try again; if it persists, give the administrator this id: the server log has the details",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let unavailable = self.code == Code::DatabaseUnavailable;
        let body = ErrorBody {
            error: WireError { code: self.code, message: self.message, remedy: self.remedy, checks: self.checks },
        };
        let mut resp = (self.status, Json(body)).into_response();
        if unavailable {
            mark_database_unavailable(&mut resp);
        }
        resp
    }
}

/// Seconds a client is asked to wait when the database is away (`Retry-After`).
pub const DATABASE_RETRY_AFTER_SECS: u64 = 5;

/// Carried by a response that failed because the database is away, so the layer in front of
/// every handler (`crate::db_gate`) learns of the outage from whichever request met it first.
#[derive(Debug, Clone)]
pub struct DatabaseUnavailable;

/// Adds `Retry-After` and the [`DatabaseUnavailable`] mark to a 503 answer (API or page).
pub fn mark_database_unavailable(resp: &mut Response) {
    resp.headers_mut()
        .insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from(DATABASE_RETRY_AFTER_SECS));
    resp.extensions_mut().insert(DatabaseUnavailable);
}

impl ApiError {
    /// 503: the database cannot be reached; nothing was read or changed.
    pub fn database_unavailable() -> Self {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            Code::DatabaseUnavailable,
            "Berth cannot reach its database, so nothing was read or changed",
            format!(
                "try again in {DATABASE_RETRY_AFTER_SECS} seconds; if it lasts, an administrator should check the \
                 database (Berth's log says since when and why)"
            ),
        )
    }
}

/// The one place that turns a use case's refusal into an HTTP answer: its status and, for the
/// typed refusals, its wording.
impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        let with = |status, r: Refusal| ApiError::new(status, r.code, r.message, r.remedy);
        match e {
            ServiceError::Unauthenticated(r) => with(StatusCode::UNAUTHORIZED, r),
            ServiceError::Forbidden { role, action } => forbidden(role, action),
            ServiceError::Refused(r) => with(StatusCode::FORBIDDEN, r),
            ServiceError::NotFound(entity) => ApiError::not_found(entity),
            ServiceError::Invalid(r) => with(StatusCode::UNPROCESSABLE_ENTITY, r),
            ServiceError::CheckFailed(steps) => ApiError::check_failed(steps),
            ServiceError::Conflict(c) => conflict(c),
            ServiceError::Locked(r) => with(StatusCode::TOO_MANY_REQUESTS, r),
            ServiceError::Unavailable(_) => ApiError::database_unavailable(),
            ServiceError::Internal(message) => ApiError::internal(&message),
        }
    }
}

/// A web page's own role gate (may this caller see the form at all?) answers like a use case.
impl From<crate::auth::Forbidden> for ApiError {
    fn from(f: crate::auth::Forbidden) -> Self {
        ServiceError::from(f).into()
    }
}

/// What a 404 says, per kind of resource, and where to find the ones that exist.
fn not_found_words(entity: Entity) -> (&'static str, &'static str) {
    match entity {
        Entity::Credential => ("credential not found", "list the credentials with GET /api/v1/credentials"),
        Entity::Repository => ("repository not found", "list the repositories with GET /api/v1/repositories"),
        Entity::User => ("user not found", "list the users with GET /api/v1/users"),
        Entity::Token => ("API token not found", "list your API tokens with GET /api/v1/tokens"),
        Entity::Template => {
            ("credential template not found", "list the credential templates with GET /api/v1/credential-templates")
        }
        Entity::SecondFactor => {
            ("no second factor is being set up", "start two-factor set-up again from your account page")
        }
        Entity::Import => (
            "import not found",
            "use the id POST /api/v1/imports answered, as in GET /api/v1/imports/{id}, or start a new import",
        ),
        Entity::NotificationChannel => {
            ("notification channel not found", "list the channels with GET /api/v1/notification-channels")
        }
        Entity::NotificationDelivery => (
            "notification delivery not found",
            "list a channel's deliveries with GET /api/v1/notification-channels/{id}/deliveries",
        ),
        Entity::KnownHost => ("known host key not found", "list the trusted host keys with GET /api/v1/known-hosts"),
        Entity::Webhook => (
            "the repository has no webhook registered by Berth",
            "register one with POST /api/v1/repositories/{id}/webhook",
        ),
    }
}

fn forbidden(role: Role, action: Action) -> ApiError {
    let who = match action {
        Action::ManageUsers | Action::ReadAudit | Action::ManageSettings | Action::DeleteCredential => "the admin role",
        _ => "the registrar or admin role",
    };
    ApiError::new(
        StatusCode::FORBIDDEN,
        Code::Forbidden,
        format!("You must have permission to {}: your role is {}", action.phrase(), role.as_str()),
        format!("ask an administrator for {who}"),
    )
}

fn conflict(c: Conflict) -> ApiError {
    let (code, message, remedy) = match c {
        Conflict::RepositoryRegistered { id, name, clone_url } => (
            Code::AlreadyRegistered,
            format!("this repository is already registered as {name:?} (id {id}, {clone_url})"),
            "open the existing repository instead, or delete it first",
        ),
        Conflict::NameTaken { what, name } => (
            Code::NameTaken,
            match what {
                Entity::User => format!("a user named {name:?} exists"),
                _ => format!("a {what} named {name:?} already exists"),
            },
            "choose another name",
        ),
        Conflict::CredentialGone => (
            Code::CredentialNotFound,
            "the chosen credential was deleted while the repository was being checked".to_owned(),
            "choose another credential and save again",
        ),
        Conflict::CredentialInUse { repositories } => {
            let names: Vec<String> = repositories.iter().map(|(id, n)| format!("{n} (id {id})")).collect();
            (
                Code::CredentialInUse,
                format!("the credential is used by {}", names.join(", ")),
                "point those repositories at another credential or delete them first",
            )
        }
        Conflict::CredentialInTemplates { templates } => {
            let names: Vec<String> = templates.iter().map(|(id, p)| format!("{p} (id {id})")).collect();
            (
                Code::CredentialInUse,
                format!("the credential is chosen by the credential templates {}", names.join(", ")),
                "point those templates at another credential or delete them first",
            )
        }
        Conflict::TemplateExists { prefix } => (
            Code::TemplateExists,
            format!("a credential template for {prefix} already exists"),
            "delete it first to point the prefix at another credential",
        ),
        Conflict::LastAdministrator => (
            Code::InvalidInput,
            "this is the last administrator".to_owned(),
            "make another user an administrator first",
        ),
        Conflict::DeleteSelf => {
            (Code::InvalidInput, "you cannot delete yourself".to_owned(), "sign in as another administrator")
        }
        Conflict::SecondFactorRequired => (
            Code::InvalidInput,
            "Two-factor sign-in is required here.".to_owned(),
            "ask an administrator to turn off the instance's two-factor requirement first",
        ),
        Conflict::WebhookExists => (
            Code::WebhookExists,
            "the repository has a webhook registered by Berth already".to_owned(),
            "remove it first (DELETE /api/v1/repositories/{id}/webhook) to register it again with a new secret",
        ),
    };
    ApiError::new(StatusCode::CONFLICT, code, message, remedy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forbidden_action_is_named_with_the_role_that_allows_it() {
        let e = ApiError::from(ServiceError::Forbidden { role: Role::Viewer, action: Action::RegisterRepository });
        assert_eq!(e.status, StatusCode::FORBIDDEN);
        assert!(e.message.starts_with("You must have permission to register a repository"), "{}", e.message);
        assert!(e.remedy.contains("registrar or admin"), "{}", e.remedy);
    }
}
