//! The SQL store. Every query is plain SQL through sqlx; secrets pass through the [`Vault`]
//! on the way in and out and are stored only sealed.

use crate::keyring::Keyring;
use crate::vault::{Sealed, Vault, VaultError};
use std::path::Path;
use berth_core::{Check, Code, CredentialKind, Step};
use chrono::{DateTime, NaiveDate, Utc};
use secrecy::SecretString;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
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
        f.debug_struct("User").field("id", &self.id).field("username", &self.username).field("role", &self.role).finish_non_exhaustive()
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

    // ---------------------------------------------------------------- users and sessions

    pub async fn count_users(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(&self.pool).await?)
    }

    pub async fn create_user(&self, username: &str, password_hash: &str, role: &str) -> Result<User> {
        let now = Utc::now();
        let res = sqlx::query("INSERT INTO users (username, password_hash, role, created_at, updated_at) VALUES (?, ?, ?, ?, ?)")
            .bind(username)
            .bind(password_hash)
            .bind(role)
            .bind(now)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(|e| unique_to_conflict(e, Code::NameTaken, format!("a user named {username:?} exists")))?;
        Ok(User { id: res.last_insert_rowid(), username: username.to_owned(), role: role.to_owned(), password_hash: password_hash.to_owned() })
    }

    pub async fn find_user(&self, username: &str) -> Result<Option<User>> {
        let row = sqlx::query("SELECT id, username, role, password_hash FROM users WHERE username = ?")
            .bind(username)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| user_from_row(&r)).transpose()
    }

    /// Sets a user's password and ends all of that user's sessions.
    ///
    /// `revoke_api_tokens` also revokes the user's personal API tokens: an administrator's
    /// reset answers a compromised account, while people changing their own password keep
    /// their automation working.
    pub async fn set_password(&self, user_id: Id, password_hash: &str, revoke_api_tokens: bool) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let n = sqlx::query("UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?")
            .bind(password_hash)
            .bind(Utc::now())
            .bind(user_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound { what: "user" });
        }
        sqlx::query("DELETE FROM sessions WHERE user_id = ?").bind(user_id).execute(&mut *tx).await?;
        if revoke_api_tokens {
            sqlx::query("UPDATE api_tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL")
                .bind(Utc::now())
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn create_session(&self, user_id: Id, token_hash: &str, expires_at: DateTime<Utc>) -> Result<()> {
        let now = Utc::now();
        sqlx::query("DELETE FROM sessions WHERE expires_at < ?").bind(now).execute(&self.pool).await?;
        sqlx::query("INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)")
            .bind(token_hash)
            .bind(user_id)
            .bind(now)
            .bind(expires_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The user of an API session. Browser sessions are not accepted here: they carry the
    /// web's own rules (CSRF, the second factor) and must not be replayed as Bearer tokens.
    pub async fn session_user(&self, token_hash: &str, now: DateTime<Utc>) -> Result<Option<User>> {
        let row = sqlx::query(
            "SELECT u.id, u.username, u.role, u.password_hash FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.token_hash = ? AND s.expires_at > ? AND s.mfa_pending = 0 AND s.kind = 'api'",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| user_from_row(&r)).transpose()
    }

    pub async fn delete_session(&self, token_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = ?").bind(token_hash).execute(&self.pool).await?;
        Ok(())
    }

    pub async fn get_user(&self, id: Id) -> Result<User> {
        let row = sqlx::query("SELECT id, username, role, password_hash FROM users WHERE id = ?").bind(id).fetch_optional(&self.pool).await?;
        row.map(|r| user_from_row(&r)).transpose()?.ok_or(StoreError::NotFound { what: "user" })
    }

    pub async fn list_users(&self) -> Result<Vec<UserSummary>> {
        let rows = sqlx::query(
            "SELECT u.id, u.username, u.role, u.created_at, u.updated_at, COALESCE(t.enabled, 0) AS totp_enabled, \
             COALESCE(f.failures, 0) AS failures, f.locked_until FROM users u \
             LEFT JOIN user_totp t ON t.user_id = u.id LEFT JOIN login_failures f ON f.username = u.username \
             ORDER BY u.username COLLATE NOCASE",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(UserSummary {
                    id: r.try_get("id")?,
                    username: r.try_get("username")?,
                    role: r.try_get("role")?,
                    totp_enabled: r.try_get("totp_enabled")?,
                    failed_logins: r.try_get("failures")?,
                    locked_until: r.try_get("locked_until")?,
                    created_at: r.try_get("created_at")?,
                    updated_at: r.try_get("updated_at")?,
                })
            })
            .collect()
    }

    pub async fn count_admins(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE role = 'admin'").fetch_one(&self.pool).await?)
    }

    /// Changes a user's role and ends that user's sessions, so the new role applies at once.
    pub async fn set_role(&self, user_id: Id, role: &str) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let n = sqlx::query("UPDATE users SET role = ?, updated_at = ? WHERE id = ?")
            .bind(role)
            .bind(Utc::now())
            .bind(user_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound { what: "user" });
        }
        sqlx::query("DELETE FROM sessions WHERE user_id = ?").bind(user_id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deletes a user with their sessions, tokens and second factor.
    pub async fn delete_user(&self, user_id: Id) -> Result<()> {
        let n = sqlx::query("DELETE FROM users WHERE id = ?").bind(user_id).execute(&self.pool).await?.rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound { what: "user" });
        }
        Ok(())
    }

    // ---------------------------------------------------------------- web sessions

    pub async fn create_web_session(&self, user_id: Id, token_hash: &str, csrf_token: &str, mfa_pending: bool, expires_at: DateTime<Utc>) -> Result<()> {
        let now = Utc::now();
        sqlx::query("DELETE FROM sessions WHERE expires_at < ?").bind(now).execute(&self.pool).await?;
        sqlx::query(
            "INSERT INTO sessions (token_hash, user_id, created_at, expires_at, kind, csrf_token, mfa_pending) VALUES (?, ?, ?, ?, 'web', ?, ?)",
        )
        .bind(token_hash)
        .bind(user_id)
        .bind(now)
        .bind(expires_at)
        .bind(csrf_token)
        .bind(mfa_pending)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A live browser session (also one still waiting for its second factor).
    pub async fn web_session(&self, token_hash: &str, now: DateTime<Utc>) -> Result<Option<WebSession>> {
        let row = sqlx::query(
            "SELECT u.id, u.username, u.role, u.password_hash, s.csrf_token, s.mfa_pending, s.expires_at FROM sessions s \
             JOIN users u ON u.id = s.user_id WHERE s.token_hash = ? AND s.expires_at > ? AND s.kind = 'web'",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(WebSession {
                user: user_from_row(&r)?,
                csrf_token: r.try_get::<Option<String>, _>("csrf_token")?.unwrap_or_default(),
                mfa_pending: r.try_get("mfa_pending")?,
                expires_at: r.try_get("expires_at")?,
            })
        })
        .transpose()
    }

    // ---------------------------------------------------------------- personal API tokens

    pub async fn create_api_token(&self, user_id: Id, name: &str, token_hash: &str, expires_at: Option<DateTime<Utc>>) -> Result<ApiTokenRow> {
        let now = Utc::now();
        let id = sqlx::query("INSERT INTO api_tokens (user_id, name, token_hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?)")
            .bind(user_id)
            .bind(name)
            .bind(token_hash)
            .bind(now)
            .bind(expires_at)
            .execute(&self.pool)
            .await?
            .last_insert_rowid();
        Ok(ApiTokenRow { id, user_id, name: name.to_owned(), created_at: now, expires_at, last_used_at: None, revoked_at: None })
    }

    /// The tokens of one user, or of everyone when `user_id` is None; newest first.
    pub async fn list_api_tokens(&self, user_id: Option<Id>) -> Result<Vec<ApiTokenRow>> {
        let rows = sqlx::query(
            "SELECT id, user_id, name, created_at, expires_at, last_used_at, revoked_at FROM api_tokens \
             WHERE (?1 IS NULL OR user_id = ?1) ORDER BY id DESC",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ApiTokenRow {
                    id: r.try_get("id")?,
                    user_id: r.try_get("user_id")?,
                    name: r.try_get("name")?,
                    created_at: r.try_get("created_at")?,
                    expires_at: r.try_get("expires_at")?,
                    last_used_at: r.try_get("last_used_at")?,
                    revoked_at: r.try_get("revoked_at")?,
                })
            })
            .collect()
    }

    pub async fn get_api_token(&self, id: Id) -> Result<ApiTokenRow> {
        let rows = self.list_api_tokens(None).await?;
        rows.into_iter().find(|t| t.id == id).ok_or(StoreError::NotFound { what: "token" })
    }

    /// Revokes a token; revoking twice is harmless.
    pub async fn revoke_api_token(&self, id: Id) -> Result<()> {
        let n = sqlx::query("UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?")
            .bind(Utc::now())
            .bind(id)
            .execute(&self.pool)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound { what: "token" });
        }
        Ok(())
    }

    /// The owner of a live (not revoked, not expired) personal token; records its use.
    pub async fn api_token_user(&self, token_hash: &str, now: DateTime<Utc>) -> Result<Option<User>> {
        let row = sqlx::query(
            "SELECT u.id, u.username, u.role, u.password_hash, t.id AS token_id FROM api_tokens t JOIN users u ON u.id = t.user_id \
             WHERE t.token_hash = ? AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > ?)",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let token_id: Id = r.try_get("token_id")?;
        sqlx::query("UPDATE api_tokens SET last_used_at = ? WHERE id = ?").bind(now).bind(token_id).execute(&self.pool).await?;
        Ok(Some(user_from_row(&r)?))
    }

    // ---------------------------------------------------------------- sign-in failures

    /// When `username` is locked out, until when.
    pub async fn locked_until(&self, username: &str, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>> {
        let until: Option<Option<DateTime<Utc>>> =
            sqlx::query_scalar("SELECT locked_until FROM login_failures WHERE username = ?").bind(username).fetch_optional(&self.pool).await?;
        Ok(until.flatten().filter(|u| *u > now))
    }

    /// Counts one failed sign-in. Failures older than `window` start a new count; reaching
    /// `max_failures` locks the name until `now + lockout`.
    pub async fn record_login_failure(
        &self,
        username: &str,
        now: DateTime<Utc>,
        window: chrono::Duration,
        max_failures: i64,
        lockout: chrono::Duration,
    ) -> Result<LoginFailures> {
        let mut tx = self.pool.begin().await?;
        // Names sprayed by a guesser must not pile up: forget stale, unlocked counts.
        sqlx::query("DELETE FROM login_failures WHERE first_failure < ? AND (locked_until IS NULL OR locked_until < ?)")
            .bind(now - window - chrono::Duration::days(1))
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let cur: Option<(i64, DateTime<Utc>, Option<DateTime<Utc>>)> =
            sqlx::query_as("SELECT failures, first_failure, locked_until FROM login_failures WHERE username = ?")
                .bind(username)
                .fetch_optional(&mut *tx)
                .await?;
        let (mut failures, mut first, mut locked) = cur.unwrap_or((0, now, None));
        let lock_over = locked.is_some_and(|l| l <= now);
        if now - first > window || lock_over {
            failures = 0;
            first = now;
            locked = None;
        }
        failures += 1;
        if failures >= max_failures && locked.is_none() {
            locked = Some(now + lockout);
        }
        sqlx::query(
            "INSERT INTO login_failures (username, failures, first_failure, locked_until) VALUES (?, ?, ?, ?) \
             ON CONFLICT(username) DO UPDATE SET failures = excluded.failures, first_failure = excluded.first_failure, \
             locked_until = excluded.locked_until",
        )
        .bind(username)
        .bind(failures)
        .bind(first)
        .bind(locked)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(LoginFailures { failures, locked_until: locked })
    }

    /// Forgets a name's failed sign-ins: after a success, or when an administrator clears a lockout.
    pub async fn clear_login_failures(&self, username: &str) -> Result<()> {
        sqlx::query("DELETE FROM login_failures WHERE username = ?").bind(username).execute(&self.pool).await?;
        Ok(())
    }

    // ---------------------------------------------------------------- two-factor sign-in

    /// Stores a new, not yet enabled TOTP key for a user (replacing an unconfirmed one).
    pub async fn set_pending_totp(&self, user_id: Id, secret: &SecretString) -> Result<()> {
        let sealed = self.vault.seal(secret, &totp_aad(user_id))?;
        sqlx::query(
            "INSERT INTO user_totp (user_id, key_id, wrapped_key, ciphertext, enabled, last_step, created_at) VALUES (?, ?, ?, ?, 0, 0, ?) \
             ON CONFLICT(user_id) DO UPDATE SET key_id = excluded.key_id, wrapped_key = excluded.wrapped_key, \
             ciphertext = excluded.ciphertext, enabled = 0, last_step = 0, created_at = excluded.created_at",
        )
        .bind(user_id)
        .bind(&sealed.key_id)
        .bind(&sealed.wrapped_key)
        .bind(&sealed.ciphertext)
        .bind(Utc::now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn totp_state(&self, user_id: Id) -> Result<Option<TotpState>> {
        let row: Option<(bool, i64)> =
            sqlx::query_as("SELECT enabled, last_step FROM user_totp WHERE user_id = ?").bind(user_id).fetch_optional(&self.pool).await?;
        Ok(row.map(|(enabled, last_step)| TotpState { enabled, last_step }))
    }

    /// Opens a user's TOTP key (the base32 text).
    pub async fn totp_secret(&self, user_id: Id) -> Result<SecretString> {
        let row = sqlx::query("SELECT key_id, wrapped_key, ciphertext FROM user_totp WHERE user_id = ?")
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound { what: "second factor" })?;
        Ok(self.vault.open(&sealed_from_row(&row)?, &totp_aad(user_id))?)
    }

    /// Accepts time step `step` unless it (or a later one) was already used: no code works twice.
    pub async fn use_totp_step(&self, user_id: Id, step: i64) -> Result<bool> {
        let n = sqlx::query("UPDATE user_totp SET last_step = ? WHERE user_id = ? AND last_step < ?")
            .bind(step)
            .bind(user_id)
            .bind(step)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n == 1)
    }

    /// Turns the pending key on and replaces the recovery codes with `code_hashes`.
    pub async fn enable_totp(&self, user_id: Id, code_hashes: &[String]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let n = sqlx::query("UPDATE user_totp SET enabled = 1 WHERE user_id = ?").bind(user_id).execute(&mut *tx).await?.rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound { what: "second factor" });
        }
        sqlx::query("DELETE FROM recovery_codes WHERE user_id = ?").bind(user_id).execute(&mut *tx).await?;
        for h in code_hashes {
            sqlx::query("INSERT INTO recovery_codes (user_id, code_hash) VALUES (?, ?)").bind(user_id).bind(h).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Removes a user's second factor and recovery codes.
    pub async fn disable_totp(&self, user_id: Id) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM user_totp WHERE user_id = ?").bind(user_id).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM recovery_codes WHERE user_id = ?").bind(user_id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Spends a recovery code: true when it existed and was unused.
    pub async fn use_recovery_code(&self, user_id: Id, code_hash: &str) -> Result<bool> {
        let n = sqlx::query("UPDATE recovery_codes SET used_at = ? WHERE user_id = ? AND code_hash = ? AND used_at IS NULL")
            .bind(Utc::now())
            .bind(user_id)
            .bind(code_hash)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    pub async fn recovery_codes_left(&self, user_id: Id) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM recovery_codes WHERE user_id = ? AND used_at IS NULL")
            .bind(user_id)
            .fetch_one(&self.pool)
            .await?)
    }

    /// Ends a half-signed-in session's wait for its second factor.
    pub async fn complete_mfa(&self, token_hash: &str) -> Result<()> {
        sqlx::query("UPDATE sessions SET mfa_pending = 0 WHERE token_hash = ?").bind(token_hash).execute(&self.pool).await?;
        Ok(())
    }

    // ---------------------------------------------------------------- settings

    pub async fn setting(&self, key: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar("SELECT value FROM meta WHERE key = ?").bind(format!("setting:{key}")).fetch_optional(&self.pool).await?)
    }

    pub async fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        sqlx::query("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
            .bind(format!("setting:{key}"))
            .bind(value)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    // ---------------------------------------------------------------- audit log

    pub async fn audit(&self, e: &NewAudit) -> Result<()> {
        sqlx::query(
            "INSERT INTO audit_log (at, actor_id, actor, action, target_kind, target_id, target_name, detail, remote_addr, outcome) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(Utc::now())
        .bind(e.actor_id)
        .bind(&e.actor)
        .bind(&e.action)
        .bind(&e.target_kind)
        .bind(e.target_id)
        .bind(&e.target_name)
        .bind(&e.detail)
        .bind(&e.remote_addr)
        .bind(if e.outcome.is_empty() { "ok" } else { e.outcome.as_str() })
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Audit entries newest first, older than id `before` when given.
    pub async fn list_audit(&self, before: Option<Id>, limit: i64) -> Result<Vec<AuditRow>> {
        let rows = sqlx::query(
            "SELECT id, at, actor_id, actor, action, target_kind, target_id, target_name, detail, remote_addr, outcome FROM audit_log \
             WHERE (?1 IS NULL OR id < ?1) ORDER BY id DESC LIMIT ?2",
        )
        .bind(before)
        .bind(limit.clamp(1, 1000))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditRow {
                    id: r.try_get("id")?,
                    at: r.try_get("at")?,
                    actor_id: r.try_get("actor_id")?,
                    actor: r.try_get("actor")?,
                    action: r.try_get("action")?,
                    target_kind: r.try_get("target_kind")?,
                    target_id: r.try_get("target_id")?,
                    target_name: r.try_get("target_name")?,
                    detail: r.try_get("detail")?,
                    remote_addr: r.try_get("remote_addr")?,
                    outcome: r.try_get("outcome")?,
                })
            })
            .collect()
    }

    // ---------------------------------------------------------------- credentials

    pub async fn create_credential(&self, new: NewCredential<'_>) -> Result<CredentialRow> {
        let now = Utc::now();
        let scopes = serde_json::to_string(new.scopes).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut tx = self.pool.begin().await?;
        // The row id is part of the associated data, so the row is inserted first with empty
        // blobs and sealed in the same transaction: no reader ever sees the unsealed state.
        let id = sqlx::query(
            "INSERT INTO credentials (name, kind, username, email, expires_on, scopes, key_id, wrapped_key, ciphertext, \
             created_at, updated_at, secret_updated_at) VALUES (?, ?, ?, ?, ?, ?, '', x'', x'', ?, ?, ?)",
        )
        .bind(new.name)
        .bind(new.kind.as_str())
        .bind(new.username)
        .bind(new.email)
        .bind(new.expires_on)
        .bind(&scopes)
        .bind(now)
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(|e| unique_to_conflict(e, Code::NameTaken, format!("a credential named {:?} already exists", new.name)))?
        .last_insert_rowid();
        let sealed = self.vault.seal(new.secret, &credential_aad(id))?;
        write_sealed(&mut tx, id, &sealed).await?;
        tx.commit().await?;
        self.get_credential(id).await
    }

    pub async fn list_credentials(&self) -> Result<Vec<CredentialRow>> {
        let rows = sqlx::query(&format!("{CREDENTIAL_COLUMNS} ORDER BY name COLLATE NOCASE")).fetch_all(&self.pool).await?;
        rows.iter().map(credential_from_row).collect()
    }

    pub async fn get_credential(&self, id: Id) -> Result<CredentialRow> {
        let row = sqlx::query(&format!("{CREDENTIAL_COLUMNS} WHERE id = ?")).bind(id).fetch_optional(&self.pool).await?;
        row.as_ref().map(credential_from_row).transpose()?.ok_or(StoreError::NotFound { what: "credential" })
    }

    /// Finds a credential by id (all digits) or else by name.
    pub async fn find_credential(&self, reference: &str) -> Result<CredentialRow> {
        let reference = reference.trim();
        if let Ok(id) = reference.parse::<Id>() {
            match self.get_credential(id).await {
                Err(StoreError::NotFound { .. }) => {}
                other => return other,
            }
        }
        let row = sqlx::query(&format!("{CREDENTIAL_COLUMNS} WHERE name = ?")).bind(reference).fetch_optional(&self.pool).await?;
        row.as_ref().map(credential_from_row).transpose()?.ok_or(StoreError::NotFound { what: "credential" })
    }

    /// Decrypts a credential's secret. The only way a secret leaves the store.
    pub async fn credential_secret(&self, id: Id) -> Result<SecretString> {
        let row = sqlx::query("SELECT key_id, wrapped_key, ciphertext FROM credentials WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound { what: "credential" })?;
        Ok(self.vault.open(&sealed_from_row(&row)?, &credential_aad(id))?)
    }

    pub async fn update_credential(&self, id: Id, patch: CredentialPatch) -> Result<CredentialRow> {
        let mut cur = self.get_credential(id).await?;
        if let Some(n) = patch.name {
            cur.name = n;
        }
        if let Some(u) = patch.username {
            cur.username = u;
        }
        if let Some(e) = patch.email {
            cur.email = e;
        }
        if let Some(x) = patch.expires_on {
            cur.expires_on = x;
        }
        if let Some(s) = patch.scopes {
            cur.scopes = s;
        }
        let now = Utc::now();
        let scopes = serde_json::to_string(&cur.scopes).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE credentials SET name = ?, username = ?, email = ?, expires_on = ?, scopes = ?, updated_at = ? WHERE id = ?")
            .bind(&cur.name)
            .bind(&cur.username)
            .bind(&cur.email)
            .bind(cur.expires_on)
            .bind(&scopes)
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(|e| unique_to_conflict(e, Code::NameTaken, format!("a credential named {:?} already exists", cur.name)))?;
        if let Some(secret) = patch.secret {
            let sealed = self.vault.seal(&secret, &credential_aad(id))?;
            write_sealed(&mut tx, id, &sealed).await?;
            sqlx::query("UPDATE credentials SET secret_updated_at = ? WHERE id = ?").bind(now).bind(id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        self.get_credential(id).await
    }

    /// Deletes a credential unless a repository uses it.
    pub async fn delete_credential(&self, id: Id) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let users: Vec<(Id, String)> = sqlx::query_as("SELECT id, name FROM repositories WHERE credential_id = ? ORDER BY name")
            .bind(id)
            .fetch_all(&mut *tx)
            .await?;
        if !users.is_empty() {
            return Err(StoreError::CredentialInUse { repositories: users });
        }
        let n = sqlx::query("DELETE FROM credentials WHERE id = ?").bind(id).execute(&mut *tx).await?.rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound { what: "credential" });
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn repositories_using(&self, credential_id: Id) -> Result<Vec<(Id, String)>> {
        Ok(sqlx::query_as("SELECT id, name FROM repositories WHERE credential_id = ? ORDER BY name")
            .bind(credential_id)
            .fetch_all(&self.pool)
            .await?)
    }

    /// Re-wraps every stored secret under the vault's active master key in one transaction.
    /// Returns how many secrets were re-wrapped.
    ///
    /// Only secrets wrapped by another key are touched, so calling it again is cheap and
    /// finds the stragglers a concurrent writer sealed just before it saw the new key.
    pub async fn rewrap_all(&self) -> Result<usize> {
        let active = self.vault.active_key_id();
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query("SELECT id, key_id, wrapped_key, ciphertext FROM credentials WHERE key_id <> ?")
            .bind(&active)
            .fetch_all(&mut *tx)
            .await?;
        for r in &rows {
            let id: Id = r.try_get("id")?;
            let sealed = self.vault.rewrap(&sealed_from_row(r)?, &credential_aad(id))?;
            write_sealed(&mut tx, id, &sealed).await?;
        }
        let totp = sqlx::query("SELECT user_id, key_id, wrapped_key, ciphertext FROM user_totp WHERE key_id <> ?")
            .bind(&active)
            .fetch_all(&mut *tx)
            .await?;
        for r in &totp {
            let user_id: Id = r.try_get("user_id")?;
            let sealed = self.vault.rewrap(&sealed_from_row(r)?, &totp_aad(user_id))?;
            sqlx::query("UPDATE user_totp SET key_id = ?, wrapped_key = ?, ciphertext = ? WHERE user_id = ?")
                .bind(&sealed.key_id)
                .bind(&sealed.wrapped_key)
                .bind(&sealed.ciphertext)
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
        }
        let canary = sqlx::query("SELECT key_id, wrapped_key, ciphertext FROM vault_canary WHERE id = 1").fetch_one(&mut *tx).await?;
        let sealed = self.vault.rewrap(&sealed_from_row(&canary)?, CANARY_AAD)?;
        sqlx::query("UPDATE vault_canary SET key_id = ?, wrapped_key = ?, ciphertext = ? WHERE id = 1")
            .bind(&sealed.key_id)
            .bind(&sealed.wrapped_key)
            .bind(&sealed.ciphertext)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(rows.len() + totp.len())
    }

    // ---------------------------------------------------------------- repositories

    pub async fn find_by_repo_key(&self, repo_key: &str) -> Result<Option<RepositoryRow>> {
        let row = sqlx::query(&format!("{REPOSITORY_COLUMNS} WHERE r.repo_key = ?")).bind(repo_key).fetch_optional(&self.pool).await?;
        row.as_ref().map(repository_from_row).transpose()
    }

    pub async fn create_repository(&self, new: &NewRepository) -> Result<RepositoryRow> {
        if let Some(existing) = self.find_by_repo_key(&new.repo_key).await? {
            return Err(already_registered(&existing));
        }
        let now = Utc::now();
        let res = sqlx::query(
            "INSERT INTO repositories (name, vcs, clone_url, repo_key, provider, default_branch, credential_id, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&new.name)
        .bind(&new.vcs)
        .bind(&new.clone_url)
        .bind(&new.repo_key)
        .bind(&new.provider)
        .bind(&new.default_branch)
        .bind(new.credential_id)
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await;
        match res {
            Ok(r) => self.get_repository(r.last_insert_rowid()).await,
            Err(e) => Err(self.repository_conflict(e, new).await),
        }
    }

    pub async fn update_repository(&self, id: Id, new: &NewRepository) -> Result<RepositoryRow> {
        if let Some(existing) = self.find_by_repo_key(&new.repo_key).await?.filter(|r| r.id != id) {
            return Err(already_registered(&existing));
        }
        let res = sqlx::query(
            "UPDATE repositories SET name = ?, vcs = ?, clone_url = ?, repo_key = ?, provider = ?, default_branch = ?, \
             credential_id = ?, updated_at = ? WHERE id = ?",
        )
        .bind(&new.name)
        .bind(&new.vcs)
        .bind(&new.clone_url)
        .bind(&new.repo_key)
        .bind(&new.provider)
        .bind(&new.default_branch)
        .bind(new.credential_id)
        .bind(Utc::now())
        .bind(id)
        .execute(&self.pool)
        .await;
        match res {
            Ok(r) if r.rows_affected() == 0 => Err(StoreError::NotFound { what: "repository" }),
            Ok(_) => self.get_repository(id).await,
            Err(e) => Err(self.repository_conflict(e, new).await),
        }
    }

    /// Turns a failed insert or update into the conflict a person can act on. Two concurrent
    /// registrations of one repository both pass the pre-check; the unique index decides.
    async fn repository_conflict(&self, e: sqlx::Error, new: &NewRepository) -> StoreError {
        if e.as_database_error().is_some_and(|d| d.is_foreign_key_violation()) {
            // The credential was deleted while this registration was being checked.
            return StoreError::Conflict {
                code: Code::CredentialNotFound,
                message: "the chosen credential was deleted while the repository was being checked".to_owned(),
            };
        }
        let unique = e.as_database_error().is_some_and(|d| d.is_unique_violation());
        if !unique {
            return e.into();
        }
        if e.to_string().contains("repo_key") {
            if let Ok(Some(existing)) = self.find_by_repo_key(&new.repo_key).await {
                return already_registered(&existing);
            }
        }
        StoreError::Conflict { code: Code::NameTaken, message: format!("a repository named {:?} already exists", new.name) }
    }

    pub async fn list_repositories(&self) -> Result<Vec<RepositoryRow>> {
        let rows = sqlx::query(&format!("{REPOSITORY_COLUMNS} ORDER BY r.name COLLATE NOCASE")).fetch_all(&self.pool).await?;
        rows.iter().map(repository_from_row).collect()
    }

    pub async fn get_repository(&self, id: Id) -> Result<RepositoryRow> {
        let row = sqlx::query(&format!("{REPOSITORY_COLUMNS} WHERE r.id = ?")).bind(id).fetch_optional(&self.pool).await?;
        row.as_ref().map(repository_from_row).transpose()?.ok_or(StoreError::NotFound { what: "repository" })
    }

    pub async fn delete_repository(&self, id: Id) -> Result<()> {
        let n = sqlx::query("DELETE FROM repositories WHERE id = ?").bind(id).execute(&self.pool).await?.rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound { what: "repository" });
        }
        Ok(())
    }

    // ---------------------------------------------------------------- checks

    pub async fn record_check(&self, repository_id: Id, check: &Check, checked_at: DateTime<Utc>, duration_ms: u64) -> Result<()> {
        let code = check.first_failure().map_or(Code::Ok, |s| s.code);
        let steps = serde_json::to_string(&check.checks).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        sqlx::query("INSERT INTO checks (repository_id, ok, code, checked_at, duration_ms, steps) VALUES (?, ?, ?, ?, ?, ?)")
            .bind(repository_id)
            .bind(check.ok)
            .bind(code.as_str())
            .bind(checked_at)
            .bind(i64::try_from(duration_ms).unwrap_or(i64::MAX))
            .bind(steps)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The latest check of each repository in `ids` (all repositories when `ids` is None).
    pub async fn last_checks(&self) -> Result<std::collections::HashMap<Id, CheckRow>> {
        let rows = sqlx::query(
            "SELECT c.repository_id, c.ok, c.code, c.checked_at, c.duration_ms, c.steps FROM checks c \
             JOIN (SELECT repository_id, MAX(id) AS id FROM checks GROUP BY repository_id) l ON l.id = c.id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok((r.try_get("repository_id")?, check_from_row(r)?))).collect()
    }

    pub async fn last_check(&self, repository_id: Id) -> Result<Option<CheckRow>> {
        let row = sqlx::query("SELECT ok, code, checked_at, duration_ms, steps FROM checks WHERE repository_id = ? ORDER BY id DESC LIMIT 1")
            .bind(repository_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(check_from_row).transpose()
    }
}

const CREDENTIAL_COLUMNS: &str =
    "SELECT id, name, kind, username, email, expires_on, scopes, created_at, updated_at, secret_updated_at FROM credentials";

const REPOSITORY_COLUMNS: &str = "SELECT r.id, r.name, r.vcs, r.clone_url, r.repo_key, r.provider, r.default_branch, \
     r.credential_id, c.name AS credential_name, r.created_at, r.updated_at FROM repositories r JOIN credentials c ON c.id = r.credential_id";

fn already_registered(existing: &RepositoryRow) -> StoreError {
    StoreError::Conflict {
        code: Code::AlreadyRegistered,
        message: format!("this repository is already registered as {:?} (id {}, {})", existing.name, existing.id, existing.clone_url),
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
    Ok(Sealed { key_id: r.try_get("key_id")?, wrapped_key: r.try_get("wrapped_key")?, ciphertext: r.try_get("ciphertext")? })
}

fn user_from_row(r: &sqlx::sqlite::SqliteRow) -> Result<User> {
    Ok(User { id: r.try_get("id")?, username: r.try_get("username")?, role: r.try_get("role")?, password_hash: r.try_get("password_hash")? })
}

fn credential_from_row(r: &sqlx::sqlite::SqliteRow) -> Result<CredentialRow> {
    let kind: String = r.try_get("kind")?;
    let scopes: String = r.try_get("scopes")?;
    Ok(CredentialRow {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        kind: CredentialKind::parse(&kind).ok_or_else(|| StoreError::Corrupt(format!("unknown credential kind {kind:?}")))?,
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
        code: serde_json::from_value(serde_json::Value::String(code)).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        checked_at: r.try_get("checked_at")?,
        duration_ms: u64::try_from(duration).unwrap_or(0),
        steps: serde_json::from_str(&steps).map_err(|e| StoreError::Corrupt(e.to_string()))?,
    })
}
