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
    /// A trusted SSH host key.
    KnownHost,
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
            Entity::KnownHost => "known host key",
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
    /// The database cannot be reached or cannot take the statement now (down, restarting,
    /// out of connections; on SQLite locked past the busy timeout, read-only, or out of
    /// space): nothing was written, and the same call may succeed once it is back.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Db(sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// Opening an existing installation found no Berth database: why, in words.
    #[error("no Berth database: {0}")]
    NoDatabase(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if unavailable(&e) {
            StoreError::Unavailable(e.to_string())
        } else {
            StoreError::Db(e)
        }
    }
}

impl StoreError {
    /// The database is away rather than the statement wrong: worth answering 503 and retrying.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }

    /// What made the database unavailable (the driver's words), for a log line that says
    /// "the database is unavailable" itself.
    pub fn unavailable_cause(&self) -> Option<&str> {
        match self {
            StoreError::Unavailable(cause) => Some(cause),
            _ => None,
        }
    }

    /// PostgreSQL aborted the transaction to break a deadlock (40P01) or a serialization
    /// conflict (40001): nothing was written, and running it again is safe.
    pub fn is_retryable_conflict(&self) -> bool {
        match self {
            StoreError::Db(sqlx::Error::Database(d)) => matches!(d.code().as_deref(), Some("40P01" | "40001")),
            _ => false,
        }
    }
}

/// Whether `e` says the database is away (or cannot take writes) rather than that the
/// statement or the data is wrong.
fn unavailable(e: &sqlx::Error) -> bool {
    use sqlx::Error as E;
    match e {
        E::PoolTimedOut | E::PoolClosed | E::Io(_) | E::Tls(_) | E::WorkerCrashed => true,
        E::Database(d) => {
            let code = d.code().map(|c| c.into_owned()).unwrap_or_default();
            match d.try_downcast_ref::<sqlx::sqlite::SqliteError>() {
                // SQLite's primary result code is the low byte of the extended one: BUSY (5),
                // LOCKED (6), READONLY (8), IOERR (10), FULL (13), CANTOPEN (14).
                Some(_) => code.parse::<i64>().is_ok_and(|c| matches!(c & 0xff, 5 | 6 | 8 | 10 | 13 | 14)),
                // PostgreSQL's SQLSTATE: class 08 (connection exception), 57P01–57P03 (the
                // server shutting down or starting), 53300 (too many connections), 25006 (a
                // read-only transaction: a standby during a fail-over).
                None => {
                    code.starts_with("08") || matches!(code.as_str(), "57P01" | "57P02" | "57P03" | "53300" | "25006")
                }
            }
        }
        _ => false,
    }
}

/// A failed write as [`StoreError::NameTaken`] when it broke a unique name, else as it came.
pub(super) fn name_taken(e: sqlx::Error, what: Entity, name: &str) -> StoreError {
    if e.as_database_error().is_some_and(|d| d.is_unique_violation()) {
        StoreError::NameTaken { what, name: name.to_owned() }
    } else {
        e.into()
    }
}
