//! The SQL store. Every query is plain SQL through sqlx; secrets pass through the [`Vault`]
//! on the way in and out and are stored only sealed.

use crate::keyring::Keyring;
use crate::vault::{Sealed, Vault, VaultError};
use berth_core::{Check, Code, CredentialKind, Step};
use chrono::{DateTime, NaiveDate, Utc};
use secrecy::SecretString;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

pub type Id = i64;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{what} not found")]
    NotFound { what: &'static str },
    /// A uniqueness or reference rule was broken; `code` is the stable API code.
    #[error("{message}")]
    Conflict { code: Code, message: String },
    #[error("credential is used by {}", .repositories.iter().map(|(_, n)| n.as_str()).collect::<Vec<_>>().join(", "))]
    CredentialInUse { repositories: Vec<(Id, String)> },
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// `Debug` leaves out the password hash.
impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
pub struct User {
    pub id: Id,
    pub username: String,
    pub role: String,
    pub password_hash: String,
}

/// A user as listed to administrators: no password hash, no second-factor key.
#[derive(Debug, Clone)]
pub struct UserSummary {
    pub id: Id,
    pub username: String,
    pub role: String,
    pub totp_enabled: bool,
    pub failed_logins: i64,
    pub locked_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A browser session: its user and the CSRF token every form must echo.
#[derive(Debug, Clone)]
pub struct WebSession {
    pub user: User,
    pub csrf_token: String,
    pub mfa_pending: bool,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct ApiTokenRow {
    pub id: Id,
    pub user_id: Id,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// The state of a name's failed sign-ins after one more failure.
#[derive(Debug, Clone, Copy)]
pub struct LoginFailures {
    pub failures: i64,
    pub locked_until: Option<DateTime<Utc>>,
}

/// A user's second factor as stored (the key still sealed).
#[derive(Debug, Clone)]
pub struct TotpState {
    pub enabled: bool,
    pub last_step: i64,
}

/// One audit entry to write. Never carries a secret.
#[derive(Debug, Clone, Default)]
pub struct NewAudit {
    pub actor_id: Option<Id>,
    pub actor: String,
    pub action: String,
    pub target_kind: String,
    pub target_id: Option<Id>,
    pub target_name: String,
    pub detail: String,
    pub remote_addr: Option<String>,
    pub outcome: String,
}

#[derive(Debug, Clone)]
pub struct AuditRow {
    pub id: Id,
    pub at: DateTime<Utc>,
    pub actor_id: Option<Id>,
    pub actor: String,
    pub action: String,
    pub target_kind: String,
    pub target_id: Option<Id>,
    pub target_name: String,
    pub detail: String,
    pub remote_addr: Option<String>,
    pub outcome: String,
}

#[derive(Debug, Clone)]
pub struct CredentialRow {
    pub id: Id,
    pub name: String,
    pub kind: CredentialKind,
    pub username: Option<String>,
    pub email: Option<String>,
    pub expires_on: Option<NaiveDate>,
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub secret_updated_at: DateTime<Utc>,
}

pub struct NewCredential<'a> {
    pub name: &'a str,
    pub kind: CredentialKind,
    pub username: Option<&'a str>,
    pub email: Option<&'a str>,
    pub expires_on: Option<NaiveDate>,
    pub scopes: &'a [String],
    pub secret: &'a SecretString,
}

/// A partial update; `None` leaves a field unchanged, `Some(None)` clears it.
#[derive(Default)]
pub struct CredentialPatch {
    pub name: Option<String>,
    pub username: Option<Option<String>>,
    pub email: Option<Option<String>>,
    pub expires_on: Option<Option<NaiveDate>>,
    pub scopes: Option<Vec<String>>,
    pub secret: Option<SecretString>,
}

#[derive(Debug, Clone)]
pub struct RepositoryRow {
    pub id: Id,
    pub name: String,
    pub vcs: String,
    pub clone_url: String,
    pub repo_key: String,
    pub provider: String,
    pub default_branch: String,
    pub credential_id: Id,
    pub credential_name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct NewRepository {
    pub name: String,
    pub vcs: String,
    pub clone_url: String,
    pub repo_key: String,
    pub provider: String,
    pub default_branch: String,
    pub credential_id: Id,
}

#[derive(Debug, Clone)]
pub struct CheckRow {
    pub ok: bool,
    pub code: Code,
    pub checked_at: DateTime<Utc>,
    pub duration_ms: u64,
    pub steps: Vec<Step>,
}

#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
    vault: Vault,
}

/// Associated data binding a credential's sealed secret to its row.
fn credential_aad(id: Id) -> Vec<u8> {
    format!("berth:credential:{id}:secret:v1").into_bytes()
}

/// Associated data binding a user's sealed TOTP key to the user's row.
fn totp_aad(user_id: Id) -> Vec<u8> {
    format!("berth:user:{user_id}:totp:v1").into_bytes()
}

const CANARY_AAD: &[u8] = b"berth:vault-canary:v1";
const CANARY_TEXT: &str = "berth vault canary";

impl Store {
    /// Opens (creating if needed) the database at `url` with the master keys in `key_file`.
    ///
    /// The key is proved against the database before anything is written: a database that
    /// already holds sealed secrets never gets a fresh key file, a migration or a canary
    /// under the wrong key. Returns whether a new key file was created.
    pub async fn open(url: &str, key_file: &Path) -> Result<(Store, bool)> {
        let opts = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .foreign_keys(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new().max_connections(8).connect_with(opts).await?;
        let sealed_before: bool =
            sqlx::query_scalar("SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'vault_canary'")
                .fetch_one(&pool)
                .await?;
        let (ring, created) = if sealed_before {
            (Keyring::load(key_file).map_err(VaultError::from)?, false)
        } else {
            Keyring::load_or_create(key_file).map_err(VaultError::from)?
        };
        let store = Store { pool, vault: Vault::new(ring) };
        if sealed_before {
            store.verify_vault().await?;
        }
        sqlx::migrate!("./migrations/sqlite").run(&store.pool).await?;
        store.verify_vault().await?;
        Ok((store, created))
    }

    pub fn vault(&self) -> &Vault {
        &self.vault
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    async fn verify_vault(&self) -> Result<()> {
        let row = sqlx::query("SELECT key_id, wrapped_key, ciphertext FROM vault_canary WHERE id = 1")
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(r) => {
                let sealed = sealed_from_row(&r)?;
                self.vault.open(&sealed, CANARY_AAD)?;
            }
            None => {
                let sealed = self.vault.seal(&SecretString::from(CANARY_TEXT), CANARY_AAD)?;
                sqlx::query("INSERT INTO vault_canary (id, key_id, wrapped_key, ciphertext) VALUES (1, ?, ?, ?)")
                    .bind(&sealed.key_id)
                    .bind(&sealed.wrapped_key)
                    .bind(&sealed.ciphertext)
                    .execute(&self.pool)
                    .await?;
            }
        }
        Ok(())
    }
}

const CREDENTIAL_COLUMNS: &str =
    "SELECT id, name, kind, username, email, expires_on, scopes, created_at, updated_at, secret_updated_at FROM credentials";

const REPOSITORY_COLUMNS: &str = "SELECT r.id, r.name, r.vcs, r.clone_url, r.repo_key, r.provider, r.default_branch, \
     r.credential_id, c.name AS credential_name, r.created_at, r.updated_at FROM repositories r JOIN credentials c ON c.id = r.credential_id";

fn already_registered(existing: &RepositoryRow) -> StoreError {
    StoreError::Conflict {
        code: Code::AlreadyRegistered,
        message: format!(
            "this repository is already registered as {:?} (id {}, {})",
            existing.name, existing.id, existing.clone_url
        ),
    }
}

fn unique_to_conflict(e: sqlx::Error, code: Code, message: String) -> StoreError {
    if e.as_database_error().is_some_and(|d| d.is_unique_violation()) {
        StoreError::Conflict { code, message }
    } else {
        e.into()
    }
}

async fn write_sealed(tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>, id: Id, sealed: &Sealed) -> Result<()> {
    sqlx::query("UPDATE credentials SET key_id = ?, wrapped_key = ?, ciphertext = ? WHERE id = ?")
        .bind(&sealed.key_id)
        .bind(&sealed.wrapped_key)
        .bind(&sealed.ciphertext)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

fn sealed_from_row(r: &sqlx::sqlite::SqliteRow) -> Result<Sealed> {
    Ok(Sealed {
        key_id: r.try_get("key_id")?,
        wrapped_key: r.try_get("wrapped_key")?,
        ciphertext: r.try_get("ciphertext")?,
    })
}

fn user_from_row(r: &sqlx::sqlite::SqliteRow) -> Result<User> {
    Ok(User {
        id: r.try_get("id")?,
        username: r.try_get("username")?,
        role: r.try_get("role")?,
        password_hash: r.try_get("password_hash")?,
    })
}

fn credential_from_row(r: &sqlx::sqlite::SqliteRow) -> Result<CredentialRow> {
    let kind: String = r.try_get("kind")?;
    let scopes: String = r.try_get("scopes")?;
    Ok(CredentialRow {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        kind: CredentialKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown credential kind {kind:?}")))?,
        username: r.try_get("username")?,
        email: r.try_get("email")?,
        expires_on: r.try_get("expires_on")?,
        scopes: serde_json::from_str(&scopes).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        secret_updated_at: r.try_get("secret_updated_at")?,
    })
}

fn repository_from_row(r: &sqlx::sqlite::SqliteRow) -> Result<RepositoryRow> {
    Ok(RepositoryRow {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        vcs: r.try_get("vcs")?,
        clone_url: r.try_get("clone_url")?,
        repo_key: r.try_get("repo_key")?,
        provider: r.try_get("provider")?,
        default_branch: r.try_get("default_branch")?,
        credential_id: r.try_get("credential_id")?,
        credential_name: r.try_get("credential_name")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn check_from_row(r: &sqlx::sqlite::SqliteRow) -> Result<CheckRow> {
    let code: String = r.try_get("code")?;
    let steps: String = r.try_get("steps")?;
    let duration: i64 = r.try_get("duration_ms")?;
    Ok(CheckRow {
        ok: r.try_get("ok")?,
        code: serde_json::from_value(serde_json::Value::String(code))
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        checked_at: r.try_get("checked_at")?,
        duration_ms: u64::try_from(duration).unwrap_or(0),
        steps: serde_json::from_str(&steps).map_err(|e| StoreError::Corrupt(e.to_string()))?,
    })
}

// One file per area; each adds its own `impl Store` block and shares the helpers above.
mod accounts;
mod credentials;
mod repositories;
