//! The SQL store. Every query is plain SQL through sqlx; secrets pass through the [`Vault`]
//! on the way in and out and are stored only sealed.

use crate::keyring::Keyring;
use crate::vault::{Sealed, Vault, VaultError};
use berth_core::{Check, Code, CredentialKind, Step};
use chrono::{DateTime, NaiveDate, Utc};
use secrecy::SecretString;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::Row;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

pub type Id = i64;

/// The role that may manage users (the server's `auth::ADMIN_ROLE`): the store keeps at least
/// one user in it.
pub const ADMIN_ROLE: &str = "admin";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{what} not found")]
    NotFound { what: &'static str },
    /// A uniqueness or reference rule was broken; `code` is the stable API code.
    #[error("{message}")]
    Conflict { code: Code, message: String },
    /// The change would leave no administrator.
    #[error("this is the last administrator")]
    LastAdmin,
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
    /// Background checks that ended in an authentication failure since the last success or edit.
    pub auth_failures: i64,
    /// Set when background checks stopped using this credential after repeated authentication
    /// failures (so polling never locks the account); cleared when the credential is edited.
    pub checks_paused_at: Option<DateTime<Utc>>,
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
    /// When the scheduler will check it next (`None`: as soon as it can).
    pub next_check_at: Option<DateTime<Utc>>,
    /// The instance checking it now, while its lease lasts.
    pub lease_owner: Option<String>,
    pub lease_until: Option<DateTime<Utc>>,
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
    /// When the scheduler should check it next.
    pub next_check_at: Option<DateTime<Utc>>,
}

/// One check to keep in a repository's history.
pub struct NewCheck<'a> {
    pub check: &'a Check,
    pub reason: CheckReason,
    pub instance: &'a str,
    pub checked_at: DateTime<Utc>,
    pub duration_ms: u64,
}

/// A check's headline: `fail` when a step failed, `warn` when one warned, else `ok`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CheckStatus {
    Ok,
    Warn,
    Fail,
}

impl CheckStatus {
    pub fn of(check: &Check) -> CheckStatus {
        if !check.ok {
            CheckStatus::Fail
        } else if check.checks.iter().any(|s| s.status == berth_core::StepStatus::Warn) {
            CheckStatus::Warn
        } else {
            CheckStatus::Ok
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Ok => "ok",
            CheckStatus::Warn => "warn",
            CheckStatus::Fail => "fail",
        }
    }

    pub fn parse(s: &str) -> Option<CheckStatus> {
        [CheckStatus::Ok, CheckStatus::Warn, CheckStatus::Fail].into_iter().find(|c| c.as_str() == s)
    }
}

/// Why a check ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CheckReason {
    /// Registration or an edit of the repository.
    Register,
    /// A person asked (re-check, Refresh of a registered repository).
    Manual,
    /// The background schedule.
    Schedule,
    /// Its credential changed.
    Credential,
}

impl CheckReason {
    pub const ALL: [CheckReason; 4] = [CheckReason::Register, CheckReason::Manual, CheckReason::Schedule, CheckReason::Credential];

    pub fn as_str(self) -> &'static str {
        match self {
            CheckReason::Register => "register",
            CheckReason::Manual => "manual",
            CheckReason::Schedule => "schedule",
            CheckReason::Credential => "credential",
        }
    }

    pub fn parse(s: &str) -> Option<CheckReason> {
        CheckReason::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

#[derive(Debug, Clone)]
pub struct CheckRow {
    pub id: Id,
    pub ok: bool,
    pub status: CheckStatus,
    pub reason: CheckReason,
    /// The instance that ran it (its `instance_id`), so a shared history says who did what.
    pub instance: String,
    pub code: Code,
    pub checked_at: DateTime<Utc>,
    pub duration_ms: u64,
    /// Empty when read as a summary (`Store::last_check_summaries`).
    pub steps: Vec<Step>,
    /// The codes of the steps that warned, in step order, without duplicates.
    pub warn_codes: Vec<Code>,
}

/// The database behind a [`Store`]: embedded SQLite (one machine, no set-up) or PostgreSQL
/// (several instances). Every query is written once, with `$n` placeholders that both accept,
/// and runs on the concrete pool through [`on_pool!`], so each dialect keeps its native types
/// (SQLite text timestamps and integer booleans, PostgreSQL `timestamptz` and `boolean`).
#[derive(Clone)]
pub(crate) enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to the concrete pool of `$db`. The body is compiled once
/// per dialect, which is what lets one query text use each driver's own types.
macro_rules! on_pool {
    ($db:expr, |$pool:ident| $body:expr) => {
        match $db {
            $crate::store::Db::Sqlite($pool) => $body,
            $crate::store::Db::Postgres($pool) => $body,
        }
    };
}

/// Which database a store runs on; for the few statements whose text must differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// Typed column access on a row of either dialect, so row mappers are written once.
pub(crate) trait Cols {
    fn i64(&self, c: &str) -> Result<i64>;
    fn str(&self, c: &str) -> Result<String>;
    fn opt_str(&self, c: &str) -> Result<Option<String>>;
    fn bool(&self, c: &str) -> Result<bool>;
    fn ts(&self, c: &str) -> Result<DateTime<Utc>>;
    fn opt_ts(&self, c: &str) -> Result<Option<DateTime<Utc>>>;
    fn opt_date(&self, c: &str) -> Result<Option<NaiveDate>>;
    fn bytes(&self, c: &str) -> Result<Vec<u8>>;
}

macro_rules! impl_cols {
    ($row:ty) => {
        impl Cols for $row {
            fn i64(&self, c: &str) -> Result<i64> {
                Ok(self.try_get(c)?)
            }
            fn str(&self, c: &str) -> Result<String> {
                Ok(self.try_get(c)?)
            }
            fn opt_str(&self, c: &str) -> Result<Option<String>> {
                Ok(self.try_get(c)?)
            }
            fn bool(&self, c: &str) -> Result<bool> {
                Ok(self.try_get(c)?)
            }
            fn ts(&self, c: &str) -> Result<DateTime<Utc>> {
                Ok(self.try_get(c)?)
            }
            fn opt_ts(&self, c: &str) -> Result<Option<DateTime<Utc>>> {
                Ok(self.try_get(c)?)
            }
            fn opt_date(&self, c: &str) -> Result<Option<NaiveDate>> {
                Ok(self.try_get(c)?)
            }
            fn bytes(&self, c: &str) -> Result<Vec<u8>> {
                Ok(self.try_get(c)?)
            }
        }
    };
}
impl_cols!(sqlx::sqlite::SqliteRow);
impl_cols!(sqlx::postgres::PgRow);

#[derive(Clone)]
pub struct Store {
    db: Db,
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

/// Whether `url` names a PostgreSQL database (`postgres://` or `postgresql://`).
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

impl Store {
    /// Opens (creating if needed) the database at `url` with the master keys in `key_file`.
    /// `sqlite://…` opens an embedded SQLite file, `postgres://…` a PostgreSQL database.
    ///
    /// The key is proved against the database before anything is written: a database that
    /// already holds sealed secrets never gets a fresh key file, a migration or a canary
    /// under the wrong key. Returns whether a new key file was created.
    ///
    /// On PostgreSQL several instances may open one database at once: the migrator holds an
    /// advisory lock, so migrations run exactly once, and the canary is inserted with
    /// `ON CONFLICT DO NOTHING` and then proved by everyone.
    pub async fn open(url: &str, key_file: &Path) -> Result<(Store, bool)> {
        let db = if is_postgres_url(url) {
            let opts = PgConnectOptions::from_str(url)?.application_name("berth");
            Db::Postgres(
                PgPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(opts)
                    .await?,
            )
        } else {
            let opts = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .foreign_keys(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(10));
            Db::Sqlite(SqlitePoolOptions::new().max_connections(8).connect_with(opts).await?)
        };
        let sealed_before: bool = match &db {
            Db::Sqlite(pool) => {
                sqlx::query_scalar(
                    "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'vault_canary'",
                )
                .fetch_one(pool)
                .await?
            }
            Db::Postgres(pool) => {
                sqlx::query_scalar("SELECT to_regclass('vault_canary') IS NOT NULL").fetch_one(pool).await?
            }
        };
        let (ring, created) = if sealed_before {
            (Keyring::load(key_file).map_err(VaultError::from)?, false)
        } else {
            Keyring::load_or_create(key_file).map_err(VaultError::from)?
        };
        let store = Store { db, vault: Vault::new(ring) };
        if sealed_before {
            store.verify_vault().await?;
        }
        match &store.db {
            Db::Sqlite(pool) => sqlx::migrate!("./migrations/sqlite").run(pool).await?,
            Db::Postgres(pool) => sqlx::migrate!("./migrations/postgres").run(pool).await?,
        }
        store.verify_vault().await?;
        Ok((store, created))
    }

    pub fn vault(&self) -> &Vault {
        &self.vault
    }

    pub fn dialect(&self) -> Dialect {
        match &self.db {
            Db::Sqlite(_) => Dialect::Sqlite,
            Db::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Closes every pooled connection (on SQLite this checkpoints the WAL into the main file).
    pub async fn close(&self) {
        on_pool!(&self.db, |pool| pool.close().await)
    }

    /// Whether this store's connections to PostgreSQL are encrypted (`None` on SQLite).
    pub async fn connection_encrypted(&self) -> Result<Option<bool>> {
        match &self.db {
            Db::Sqlite(_) => Ok(None),
            Db::Postgres(pool) => Ok(Some(
                sqlx::query_scalar("SELECT COALESCE((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), FALSE)")
                    .fetch_one(pool)
                    .await?,
            )),
        }
    }

    /// Answers when the database does: what `/readyz` asks.
    pub async fn ping(&self) -> Result<()> {
        on_pool!(&self.db, |pool| {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }

    /// The database's own integrity check (`PRAGMA integrity_check` on SQLite; on PostgreSQL,
    /// that every table can be read end to end). Returns the problems found, none when sound.
    pub async fn integrity_problems(&self) -> Result<Vec<String>> {
        match &self.db {
            Db::Sqlite(pool) => {
                let rows: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check").fetch_all(pool).await?;
                let fk: Vec<sqlx::sqlite::SqliteRow> = sqlx::query("PRAGMA foreign_key_check").fetch_all(pool).await?;
                let mut problems: Vec<String> = rows.into_iter().filter(|r| r != "ok").collect();
                problems.extend(fk.iter().map(|_| "a row breaks a foreign key".to_owned()));
                Ok(problems)
            }
            Db::Postgres(pool) => {
                let mut problems = Vec::new();
                for table in ["users", "sessions", "credentials", "repositories", "checks", "audit_log", "vault_canary"] {
                    if let Err(e) = sqlx::query(&format!("SELECT COUNT(*) FROM {table}")).execute(pool).await {
                        problems.push(format!("{table}: {e}"));
                    }
                }
                Ok(problems)
            }
        }
    }

    /// Runs one statement with integer arguments bound as `$1, $2, …` and returns the rows it
    /// changed. For tests and maintenance that must reach under the store's rules (tampering
    /// with a row to prove the vault notices); never called with text from a request.
    #[doc(hidden)]
    pub async fn execute_unchecked(&self, sql: &str, args: &[i64]) -> Result<u64> {
        on_pool!(&self.db, |pool| {
            let mut q = sqlx::query(sql);
            for a in args {
                q = q.bind(*a);
            }
            Ok(q.execute(pool).await?.rows_affected())
        })
    }

    async fn verify_vault(&self) -> Result<()> {
        on_pool!(&self.db, |pool| {
            let row = sqlx::query("SELECT key_id, wrapped_key, ciphertext FROM vault_canary WHERE id = 1")
                .fetch_optional(pool)
                .await?;
            match row {
                Some(r) => {
                    let sealed = sealed_from_row(&r)?;
                    self.vault.open(&sealed, CANARY_AAD)?;
                }
                None => {
                    let sealed = self.vault.seal(&SecretString::from(CANARY_TEXT), CANARY_AAD)?;
                    // Another instance may insert its canary first; then that one is proved.
                    sqlx::query(
                        "INSERT INTO vault_canary (id, key_id, wrapped_key, ciphertext) VALUES (1, $1, $2, $3) \
                         ON CONFLICT (id) DO NOTHING",
                    )
                    .bind(&sealed.key_id)
                    .bind(&sealed.wrapped_key)
                    .bind(&sealed.ciphertext)
                    .execute(pool)
                    .await?;
                    let r = sqlx::query("SELECT key_id, wrapped_key, ciphertext FROM vault_canary WHERE id = 1")
                        .fetch_one(pool)
                        .await?;
                    self.vault.open(&sealed_from_row(&r)?, CANARY_AAD)?;
                }
            }
            Ok(())
        })
    }
}

const CREDENTIAL_COLUMNS: &str = "SELECT id, name, kind, username, email, expires_on, scopes, created_at, updated_at, \
     secret_updated_at, auth_failures, checks_paused_at FROM credentials";

const CHECK_COLUMNS: &str = "SELECT c.id, c.repository_id, c.ok, c.status, c.code, c.reason, c.instance, c.checked_at, \
     c.duration_ms, c.warn_codes, c.steps FROM checks c";

/// A check without its steps: what lists need, without reading and parsing every step.
const CHECK_SUMMARY_COLUMNS: &str = "SELECT c.id, c.repository_id, c.ok, c.status, c.code, c.reason, c.instance, \
     c.checked_at, c.duration_ms, c.warn_codes, '' AS steps FROM checks c";

const REPOSITORY_COLUMNS: &str = "SELECT r.id, r.name, r.vcs, r.clone_url, r.repo_key, r.provider, r.default_branch, \
     r.credential_id, c.name AS credential_name, r.created_at, r.updated_at, r.next_check_at, r.lease_owner, r.lease_until FROM repositories r \
     JOIN credentials c ON c.id = r.credential_id";

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

/// Writes a credential's sealed secret inside the transaction `$tx` (on either dialect).
macro_rules! write_sealed {
    ($tx:ident, $id:expr, $sealed:expr) => {{
        let sealed: &Sealed = $sealed;
        sqlx::query("UPDATE credentials SET key_id = $1, wrapped_key = $2, ciphertext = $3 WHERE id = $4")
            .bind(&sealed.key_id)
            .bind(&sealed.wrapped_key)
            .bind(&sealed.ciphertext)
            .bind($id)
            .execute(&mut *$tx)
            .await?;
    }};
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn json_text<T: serde::Serialize + ?Sized>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn sealed_from_row(r: &impl Cols) -> Result<Sealed> {
    Ok(Sealed { key_id: r.str("key_id")?, wrapped_key: r.bytes("wrapped_key")?, ciphertext: r.bytes("ciphertext")? })
}

fn user_from_row(r: &impl Cols) -> Result<User> {
    Ok(User { id: r.i64("id")?, username: r.str("username")?, role: r.str("role")?, password_hash: r.str("password_hash")? })
}

fn credential_from_row(r: &impl Cols) -> Result<CredentialRow> {
    let kind = r.str("kind")?;
    let scopes = r.str("scopes")?;
    Ok(CredentialRow {
        id: r.i64("id")?,
        name: r.str("name")?,
        kind: CredentialKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown credential kind {kind:?}")))?,
        username: r.opt_str("username")?,
        email: r.opt_str("email")?,
        expires_on: r.opt_date("expires_on")?,
        scopes: serde_json::from_str(&scopes).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        created_at: r.ts("created_at")?,
        updated_at: r.ts("updated_at")?,
        secret_updated_at: r.ts("secret_updated_at")?,
        auth_failures: r.i64("auth_failures")?,
        checks_paused_at: r.opt_ts("checks_paused_at")?,
    })
}

fn repository_from_row(r: &impl Cols) -> Result<RepositoryRow> {
    Ok(RepositoryRow {
        id: r.i64("id")?,
        name: r.str("name")?,
        vcs: r.str("vcs")?,
        clone_url: r.str("clone_url")?,
        repo_key: r.str("repo_key")?,
        provider: r.str("provider")?,
        default_branch: r.str("default_branch")?,
        credential_id: r.i64("credential_id")?,
        credential_name: r.str("credential_name")?,
        created_at: r.ts("created_at")?,
        updated_at: r.ts("updated_at")?,
        next_check_at: r.opt_ts("next_check_at")?,
        lease_owner: r.opt_str("lease_owner")?,
        lease_until: r.opt_ts("lease_until")?,
    })
}

fn code_of(s: &str) -> Result<Code> {
    serde_json::from_value(serde_json::Value::String(s.to_owned())).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn check_from_row(r: &impl Cols) -> Result<CheckRow> {
    let code = r.str("code")?;
    let status = r.str("status")?;
    let reason = r.str("reason")?;
    let steps = r.str("steps")?;
    Ok(CheckRow {
        id: r.i64("id")?,
        ok: r.bool("ok")?,
        status: CheckStatus::parse(&status).ok_or_else(|| StoreError::Corrupt(format!("unknown check status {status:?}")))?,
        code: serde_json::from_value(serde_json::Value::String(code))
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        reason: CheckReason::parse(&reason).ok_or_else(|| StoreError::Corrupt(format!("unknown check reason {reason:?}")))?,
        instance: r.str("instance")?,
        checked_at: r.ts("checked_at")?,
        duration_ms: u64::try_from(r.i64("duration_ms")?).unwrap_or(0),
        steps: if steps.is_empty() {
            Vec::new()
        } else {
            serde_json::from_str(&steps).map_err(|e| StoreError::Corrupt(e.to_string()))?
        },
        warn_codes: r.str("warn_codes")?.split(',').filter(|c| !c.is_empty()).map(code_of).collect::<Result<_>>()?,
    })
}

// One file per area; each adds its own `impl Store` block and shares the helpers above.
mod accounts;
mod credentials;
mod repositories;
mod schedule;
pub use schedule::{AuthCount, AuthResult, OutcomeRecorded};
