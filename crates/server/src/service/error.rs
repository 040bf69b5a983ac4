//! The one error every use case returns. It says what went wrong in domain terms; the REST API
//! (`crate::error::ApiError`) and the web pages choose the HTTP status and, for the typed
//! variants, the wording, so a refusal reads the same wherever it comes from.

use crate::auth::{Action, Role};
use berth_core::credential::CredentialRuleError;
use berth_core::{Code, Step, UrlError};
use berth_store::StoreError;

#[derive(Debug)]
pub enum Error {
    /// No valid session or token, or a sign-in that did not prove who the caller is.
    Unauthenticated(Refusal),
    /// The caller's role does not allow the action.
    Forbidden { role: Role, action: Action },
    /// Refused for another reason than the role (a personal API token minting tokens).
    Refused(Refusal),
    /// The thing asked for does not exist.
    NotFound(Entity),
    /// The input breaks a rule (a bad name, URL, date, a credential without its fields).
    Invalid(Refusal),
    /// A check step failed, so nothing was saved; every step is attached.
    CheckFailed(Vec<Step>),
    /// The request contradicts what is stored.
    Conflict(Conflict),
    /// Too many failed sign-ins: the name is locked for a while.
    Locked(Refusal),
    /// The database is away (down, restarting, locked, read-only): nothing was read or
    /// changed, and the same request may succeed once it is back.
    Unavailable(String),
    /// Something that should not happen (a secret does not open, a corrupt row).
    Internal(String),
}

/// A refusal with its stable code, what happened, and what to do about it.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub code: Code,
    pub message: String,
    pub remedy: String,
}

impl Refusal {
    pub fn new(code: Code, message: impl Into<String>, remedy: impl Into<String>) -> Refusal {
        Refusal { code, message: message.into(), remedy: remedy.into() }
    }
}

/// What a request can be in conflict with.
#[derive(Debug)]
pub enum Conflict {
    /// The repository (same host and path) is registered already.
    RepositoryRegistered { id: i64, name: String, clone_url: String },
    /// Another row of this kind has the name.
    NameTaken { what: Entity, name: String },
    /// The credential a repository was to use was deleted while it was being checked.
    CredentialGone,
    /// Repositories still use the credential.
    CredentialInUse { repositories: Vec<(i64, String)> },
    /// Credential templates (id, URL prefix) still choose the credential.
    CredentialInTemplates { templates: Vec<(i64, String)> },
    /// A template with this URL prefix exists.
    TemplateExists { prefix: String },
    /// The change would leave no administrator.
    LastAdministrator,
    /// An administrator cannot delete their own account.
    DeleteSelf,
    /// The instance requires two-factor sign-in, so it cannot be turned off.
    SecondFactorRequired,
    /// The repository has a webhook registered by Berth already.
    WebhookExists,
}

pub use berth_store::Entity;

/// The stable code of "not found" for a kind of row.
pub fn not_found_code(entity: Entity) -> Code {
    match entity {
        Entity::Credential => Code::CredentialNotFound,
        Entity::Repository => Code::RepositoryNotFound,
        Entity::User => Code::UserNotFound,
        Entity::Token => Code::TokenNotFound,
        Entity::SecondFactor => Code::NotFound,
        Entity::Template => Code::TemplateNotFound,
        Entity::Import => Code::ImportNotFound,
        Entity::NotificationChannel => Code::ChannelNotFound,
        Entity::NotificationDelivery => Code::DeliveryNotFound,
        Entity::KnownHost => Code::KnownHostNotFound,
        Entity::Webhook => Code::WebhookNotFound,
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn invalid(message: impl Into<String>, remedy: impl Into<String>) -> Error {
        Error::Invalid(Refusal::new(Code::InvalidInput, message, remedy))
    }

    /// An unexpected failure; the adapter logs it under an id and answers without internals.
    pub fn internal(err: &dyn std::fmt::Display) -> Error {
        Error::Internal(err.to_string())
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(entity) => Error::NotFound(entity),
            StoreError::NameTaken { what, name } => Error::Conflict(Conflict::NameTaken { what, name }),
            StoreError::RepoKeyTaken { existing } => Error::Conflict(Conflict::RepositoryRegistered {
                id: existing.id,
                name: existing.name,
                clone_url: existing.clone_url,
            }),
            StoreError::CredentialGone => Error::Conflict(Conflict::CredentialGone),
            StoreError::LastAdmin => Error::Conflict(Conflict::LastAdministrator),
            StoreError::CredentialInUse { repositories } => Error::Conflict(Conflict::CredentialInUse { repositories }),
            StoreError::CredentialInTemplates { templates } => {
                Error::Conflict(Conflict::CredentialInTemplates { templates })
            }
            StoreError::TemplateExists { prefix } => Error::Conflict(Conflict::TemplateExists { prefix }),
            StoreError::Unavailable(why) => Error::Unavailable(why),
            other => Error::internal(&other),
        }
    }
}

impl From<crate::auth::Forbidden> for Error {
    fn from(f: crate::auth::Forbidden) -> Self {
        Error::Forbidden { role: f.role, action: f.action }
    }
}

impl From<crate::auth::PasswordRule> for Error {
    fn from(_: crate::auth::PasswordRule) -> Self {
        Error::invalid(crate::auth::PasswordRule::MESSAGE, crate::auth::PasswordRule::REMEDY)
    }
}

impl From<crate::auth::HashFailed> for Error {
    fn from(e: crate::auth::HashFailed) -> Self {
        Error::internal(&e)
    }
}

impl From<CredentialRuleError> for Error {
    fn from(e: CredentialRuleError) -> Self {
        Error::Invalid(Refusal::new(e.code, e.message, e.remedy))
    }
}

impl From<UrlError> for Error {
    fn from(e: UrlError) -> Self {
        Error::Invalid(Refusal::new(e.code(), e.to_string(), e.remedy()))
    }
}
