//! The SQL store. Every query is plain SQL through sqlx; secrets pass through the [`Vault`]
//! on the way in and out and are stored only sealed.

use crate::vault::{Sealed, Vault, VaultError};
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

#[derive(Debug, Clone)]
pub struct User {
    pub id: Id,
    pub username: String,
    pub role: String,
    pub password_hash: String,
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

const CANARY_AAD: &[u8] = b"berth:vault-canary:v1";
const CANARY_TEXT: &str = "berth vault canary";

impl Store {
    /// Opens (creating if needed) the database at `url`, runs migrations and proves that the
    /// vault's master key opens this database's secrets. On a key mismatch nothing is written.
    pub async fn open(url: &str, vault: Vault) -> Result<Store> {
        let opts = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .foreign_keys(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new().max_connections(8).connect_with(opts).await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        let store = Store { pool, vault };
        store.verify_vault().await?;
        Ok(store)
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
    pub async fn set_password(&self, user_id: Id, password_hash: &str) -> Result<()> {
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

    pub async fn session_user(&self, token_hash: &str, now: DateTime<Utc>) -> Result<Option<User>> {
        let row = sqlx::query(
            "SELECT u.id, u.username, u.role, u.password_hash FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.token_hash = ? AND s.expires_at > ?",
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
    pub async fn rewrap_all(&self) -> Result<usize> {
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query("SELECT id, key_id, wrapped_key, ciphertext FROM credentials").fetch_all(&mut *tx).await?;
        for r in &rows {
            let id: Id = r.try_get("id")?;
            let sealed = self.vault.rewrap(&sealed_from_row(r)?, &credential_aad(id))?;
            write_sealed(&mut tx, id, &sealed).await?;
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
        Ok(rows.len())
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
