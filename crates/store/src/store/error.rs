//! What can go wrong in the store, typed: which row was missing, which rule a change broke. The
//! callers (the server's service layer and API) choose the codes and the words people read.

use super::Id;
use crate::vault::VaultError;

/// The kinds of row a store call can find missing or in conflict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Entity {
    Credential,
    Repository,
    User,
    /// A personal API token.
    Token,
    /// A user's TOTP key.
    SecondFactor,
    /// A credential template (URL prefix to credential).
    Template,
    /// A bulk import.
    Import,
    /// A notification channel.
    NotificationChannel,
    /// A delivery of a notification (or its event).
    NotificationDelivery,
    /// The webhook Berth registered on a repository's host.
    Webhook,
}

impl Entity {
    /// The entity's name in log lines (the API chooses its own wording).
    pub fn as_str(self) -> &'static str {
        match self {
            Entity::Credential => "credential",
            Entity::Repository => "repository",
            Entity::User => "user",
            Entity::Token => "token",
            Entity::SecondFactor => "second factor",
            Entity::Template => "credential template",
            Entity::Import => "import",
            Entity::NotificationChannel => "notification channel",
            Entity::NotificationDelivery => "notification delivery",
            Entity::Webhook => "repository webhook",
        }
    }
}

impl std::fmt::Display for Entity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The repository that already holds a repository key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingRepo {
    pub id: Id,
    pub name: String,
    pub clone_url: String,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(Entity),
    /// Another row of this kind has the name (names are unique whatever their case).
    #[error("a {what} named {name:?} exists")]
    NameTaken { what: Entity, name: String },
    /// Another repository has this repository key: the same repository is registered already.
    #[error("repository key taken by {:?} (id {})", .existing.name, .existing.id)]
    RepoKeyTaken { existing: ExistingRepo },
    /// The credential a repository was to use was deleted while the change was under way.
    #[error("the repository's credential is gone")]
    CredentialGone,
    /// The change would leave no administrator.
    #[error("this is the last administrator")]
    LastAdmin,
    #[error("credential is used by {}", .repositories.iter().map(|(_, n)| n.as_str()).collect::<Vec<_>>().join(", "))]
    CredentialInUse { repositories: Vec<(Id, String)> },
    /// Credential templates (id, URL prefix) still choose the credential.
    #[error("credential is chosen by templates {}", .templates.iter().map(|(_, p)| p.as_str()).collect::<Vec<_>>().join(", "))]
    CredentialInTemplates { templates: Vec<(Id, String)> },
    /// Another template has this URL prefix.
    #[error("a template for {prefix} exists")]
    TemplateExists { prefix: String },
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// Opening an existing installation found no Berth database: why, in words.
    #[error("no Berth database: {0}")]
    NoDatabase(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A failed write as [`StoreError::NameTaken`] when it broke a unique name, else as it came.
pub(super) fn name_taken(e: sqlx::Error, what: Entity, name: &str) -> StoreError {
    if e.as_database_error().is_some_and(|d| d.is_unique_violation()) {
        StoreError::NameTaken { what, name: name.to_owned() }
    } else {
        e.into()
    }
}
