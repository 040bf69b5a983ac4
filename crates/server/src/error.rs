//! One error type for every API handler. Expected failures carry a stable code, a message and a
//! remedy; unexpected ones are logged with an id and answered as a bare 500 without internals.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_core::credential::CredentialRuleError;
use berth_core::{Code, Step, UrlError};
use berth_proto::{ApiError as WireError, ErrorBody};
use berth_store::{Entity, StoreError};

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

    pub fn unauthenticated() -> Self {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            Code::Unauthenticated,
            "missing, invalid or expired session token",
            "log in with POST /api/v1/auth/login (or `berth login`) and send Authorization: Bearer <token>",
        )
    }

    pub fn not_found(what: Entity) -> Self {
        let code = match what {
            Entity::Credential => Code::CredentialNotFound,
            Entity::Repository => Code::RepositoryNotFound,
            Entity::User | Entity::Token | Entity::SecondFactor => Code::NotFound,
        };
        let what = noun(what);
        ApiError::new(StatusCode::NOT_FOUND, code, format!("{what} not found"), format!("list them with GET /api/v1/{what}s"))
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
        let body = ErrorBody { error: WireError { code: self.code, message: self.message, remedy: self.remedy, checks: self.checks } };
        (self.status, Json(body)).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => ApiError::not_found(what),
            StoreError::NameTaken { what, name } => ApiError::new(
                StatusCode::CONFLICT,
                Code::NameTaken,
                match what {
                    Entity::User => format!("a user named {name:?} exists"),
                    _ => format!("a {} named {name:?} already exists", noun(what)),
                },
                "choose another name",
            ),
            StoreError::RepoKeyTaken { existing } => ApiError::new(
                StatusCode::CONFLICT,
                Code::AlreadyRegistered,
                format!(
                    "this repository is already registered as {:?} (id {}, {})",
                    existing.name, existing.id, existing.clone_url
                ),
                "open the existing repository instead, or delete it first",
            ),
            StoreError::CredentialGone => ApiError::new(
                StatusCode::CONFLICT,
                Code::CredentialNotFound,
                "the chosen credential was deleted while the repository was being checked",
                "choose another name",
            ),
            StoreError::LastAdmin => ApiError::new(
                StatusCode::CONFLICT,
                Code::InvalidInput,
                "this is the last administrator",
                "make another user an administrator first",
            ),
            StoreError::CredentialInUse { repositories } => {
                let names: Vec<String> = repositories.iter().map(|(id, n)| format!("{n} (id {id})")).collect();
                ApiError::new(
                    StatusCode::CONFLICT,
                    Code::CredentialInUse,
                    format!("the credential is used by {}", names.join(", ")),
                    "point those repositories at another credential or delete them first",
                )
            }
            other => ApiError::internal(&other),
        }
    }
}

/// What the API calls a kind of row, in messages and in the path that lists them.
fn noun(what: Entity) -> &'static str {
    match what {
        Entity::Credential => "credential",
        Entity::Repository => "repository",
        Entity::User => "user",
        Entity::Token => "token",
        Entity::SecondFactor => "second factor",
    }
}

impl From<CredentialRuleError> for ApiError {
    fn from(e: CredentialRuleError) -> Self {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.code, e.message, e.remedy)
    }
}

impl From<UrlError> for ApiError {
    fn from(e: UrlError) -> Self {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.code(), e.to_string(), e.remedy())
    }
}
