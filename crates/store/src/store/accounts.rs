//! Users, sessions (API and web), personal API tokens, sign-in failures, settings and the
//! audit log. The second factor is in `totp.rs`.

use super::error::name_taken;
use super::mappers::{api_token_from_row, audit_from_row, user_from_row, user_summary_from_row, web_session_from_row};
use super::*;
use chrono::{DateTime, Utc};
use dialect::Cols;

impl Store {
    // ---------------------------------------------------------------- users and sessions

    pub async fn count_users(&self) -> Result<i64> {
        on_pool!(&self.db, |pool| { Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(pool).await?) })
    }

    pub async fn create_user(&self, username: &str, password_hash: &str, role: &str) -> Result<User> {
        on_pool!(&self.db, |pool| {
            let now = Utc::now();
            let id: Id = sqlx::query_scalar(
                "INSERT INTO users (username, password_hash, role, created_at, updated_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
            )
            .bind(username)
            .bind(password_hash)
            .bind(role)
            .bind(now)
            .bind(now)
            .fetch_one(pool)
            .await
            .map_err(|e| name_taken(e, Entity::User, username))?;
            Ok(User {
                id,
                username: username.to_owned(),
                role: role.to_owned(),
                password_hash: password_hash.to_owned(),
            })
        })
    }

    pub async fn find_user(&self, username: &str) -> Result<Option<User>> {
        on_pool!(&self.db, |pool| {
            let row = sqlx::query("SELECT id, username, role, password_hash FROM users WHERE username = $1")
                .bind(username)
                .fetch_optional(pool)
                .await?;
            row.map(|r| user_from_row(&r)).transpose()
        })
    }

    /// Sets a user's password and ends all of that user's sessions.
    ///
    /// `revoke_api_tokens` also revokes the user's personal API tokens: an administrator's
    /// reset answers a compromised account, while people changing their own password keep
    /// their automation working.
    pub async fn set_password(&self, user_id: Id, password_hash: &str, revoke_api_tokens: bool) -> Result<()> {
        on_pool!(&self.db, |pool| {
            let mut tx = pool.begin().await?;
            let n = sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3")
                .bind(password_hash)
                .bind(Utc::now())
                .bind(user_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound(Entity::User));
            }
            sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(user_id).execute(&mut *tx).await?;
            if revoke_api_tokens {
                sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL")
                    .bind(Utc::now())
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Starts an API session (a Bearer token for the CLI and scripts).
    pub async fn create_session(&self, user_id: Id, token_hash: &str, expires_at: DateTime<Utc>) -> Result<()> {
        self.insert_session(user_id, token_hash, expires_at, "api", None, false).await
    }

    /// The user of an API session. Browser sessions are not accepted here: they carry the
    /// web's own rules (CSRF, the second factor) and must not be replayed as Bearer tokens.
    pub async fn session_user(&self, token_hash: &str, now: DateTime<Utc>) -> Result<Option<User>> {
        on_pool!(&self.db, |pool| {
            let row = sqlx::query(
                "SELECT u.id, u.username, u.role, u.password_hash FROM sessions s JOIN users u ON u.id = s.user_id \
                 WHERE s.token_hash = $1 AND s.expires_at > $2 AND s.mfa_pending = FALSE AND s.kind = 'api'",
            )
            .bind(token_hash)
            .bind(now)
            .fetch_optional(pool)
            .await?;
            row.map(|r| user_from_row(&r)).transpose()
        })
    }

    pub async fn delete_session(&self, token_hash: &str) -> Result<()> {
        on_pool!(&self.db, |pool| {
            sqlx::query("DELETE FROM sessions WHERE token_hash = $1").bind(token_hash).execute(pool).await?;
            Ok(())
        })
    }

    pub async fn get_user(&self, id: Id) -> Result<User> {
        on_pool!(&self.db, |pool| {
            let row = sqlx::query("SELECT id, username, role, password_hash FROM users WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?;
            row.map(|r| user_from_row(&r)).transpose()?.ok_or(StoreError::NotFound(Entity::User))
        })
    }

    pub async fn list_users(&self) -> Result<Vec<UserSummary>> {
        on_pool!(&self.db, |pool| {
            let rows = sqlx::query(
                "SELECT u.id, u.username, u.role, u.created_at, u.updated_at, COALESCE(t.enabled, FALSE) AS totp_enabled, \
                 COALESCE(f.failures, 0) AS failures, f.locked_until, \
                 EXISTS (SELECT 1 FROM user_sso_identities s WHERE s.user_id = u.id) AS single_sign_on FROM users u \
                 LEFT JOIN user_totp t ON t.user_id = u.id LEFT JOIN login_failures f ON f.username = u.username \
                 ORDER BY u.username COLLATE NOCASE",
            )
            .fetch_all(pool)
            .await?;
            rows.iter().map(user_summary_from_row).collect()
        })
    }

    pub async fn count_admins(&self) -> Result<i64> {
        on_pool!(&self.db, |pool| {
            Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE role = 'admin'").fetch_one(pool).await?)
        })
    }

    /// Changes a user's role and ends that user's sessions, so the new role applies at once.
    pub async fn set_role(&self, user_id: Id, role: &str) -> Result<()> {
        self.change_user_keeping_an_admin(user_id, AdminGuarded::SetRole(role)).await
    }

    /// Deletes a user with their sessions, tokens and second factor; never the last administrator.
    pub async fn delete_user(&self, user_id: Id) -> Result<()> {
        self.change_user_keeping_an_admin(user_id, AdminGuarded::Delete).await
    }

    /// A change that could leave no administrator. The last-administrator rule is part of the
    /// statement, so two demotions or deletions at once cannot both pass it; a statement that
    /// changed nothing is the rule refusing, or no such user.
    async fn change_user_keeping_an_admin(&self, user_id: Id, change: AdminGuarded<'_>) -> Result<()> {
        let lock = self.admin_lock_sql();
        on_pool!(&self.db, |pool| {
            let mut tx = pool.begin().await?;
            if let Some(lock) = lock {
                sqlx::query(lock).bind(ADMIN_ROLE).execute(&mut *tx).await?;
            }
            let changed = match change {
                AdminGuarded::SetRole(role) => sqlx::query(
                    "UPDATE users SET role = $1, updated_at = $2 WHERE id = $3 \
                     AND ($1 = $4 OR role <> $4 OR (SELECT COUNT(*) FROM users WHERE role = $4) > 1)",
                )
                .bind(role)
                .bind(Utc::now())
                .bind(user_id)
                .bind(ADMIN_ROLE)
                .execute(&mut *tx)
                .await?
                .rows_affected(),
                AdminGuarded::Delete => sqlx::query(
                    "DELETE FROM users WHERE id = $1 AND (role <> $2 OR (SELECT COUNT(*) FROM users WHERE role = $2) > 1)",
                )
                .bind(user_id)
                .bind(ADMIN_ROLE)
                .execute(&mut *tx)
                .await?
                .rows_affected(),
            };
            if changed == 0 {
                let exists: Option<Id> = sqlx::query_scalar("SELECT id FROM users WHERE id = $1")
                    .bind(user_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                return Err(if exists.is_some() { StoreError::LastAdmin } else { StoreError::NotFound(Entity::User) });
            }
            if let AdminGuarded::SetRole(_) = change {
                // The new role applies at once: the user's sessions end.
                sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(user_id).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// On PostgreSQL, the administrators' rows are locked first: under READ COMMITTED two
    /// transactions could otherwise each count two administrators and remove one each. SQLite
    /// runs one writing statement at a time, so the count in the statement is enough there.
    fn admin_lock_sql(&self) -> Option<&'static str> {
        match self.dialect() {
            Dialect::Postgres => Some("SELECT id FROM users WHERE role = $1 FOR UPDATE"),
            Dialect::Sqlite => None,
        }
    }

    // ---------------------------------------------------------------- web sessions

    pub async fn create_web_session(
        &self,
        user_id: Id,
        token_hash: &str,
        csrf_token: &str,
        mfa_pending: bool,
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        self.insert_session(user_id, token_hash, expires_at, "web", Some(csrf_token), mfa_pending).await
    }

    /// Forgets expired sessions and starts one of `kind` (`api` or `web`).
    async fn insert_session(
        &self,
        user_id: Id,
        token_hash: &str,
        expires_at: DateTime<Utc>,
        kind: &str,
        csrf_token: Option<&str>,
        mfa_pending: bool,
    ) -> Result<()> {
        on_pool!(&self.db, |pool| {
            let now = Utc::now();
            sqlx::query("DELETE FROM sessions WHERE expires_at < $1").bind(now).execute(pool).await?;
            sqlx::query(
                "INSERT INTO sessions (token_hash, user_id, created_at, expires_at, kind, csrf_token, mfa_pending) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(token_hash)
            .bind(user_id)
            .bind(now)
            .bind(expires_at)
            .bind(kind)
            .bind(csrf_token)
            .bind(mfa_pending)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// A live browser session (also one still waiting for its second factor).
    pub async fn web_session(&self, token_hash: &str, now: DateTime<Utc>) -> Result<Option<WebSession>> {
        on_pool!(&self.db, |pool| {
            let row = sqlx::query(
                "SELECT u.id, u.username, u.role, u.password_hash, s.csrf_token, s.mfa_pending, s.expires_at FROM sessions s \
                 JOIN users u ON u.id = s.user_id WHERE s.token_hash = $1 AND s.expires_at > $2 AND s.kind = 'web'",
            )
            .bind(token_hash)
            .bind(now)
            .fetch_optional(pool)
            .await?;
            row.as_ref().map(web_session_from_row).transpose()
        })
    }

    // ---------------------------------------------------------------- personal API tokens

    pub async fn create_api_token(
        &self,
        user_id: Id,
        name: &str,
        token_hash: &str,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<ApiTokenRow> {
        on_pool!(&self.db, |pool| {
            let now = Utc::now();
            let id: Id = sqlx::query_scalar(
                "INSERT INTO api_tokens (user_id, name, token_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
            )
            .bind(user_id)
            .bind(name)
            .bind(token_hash)
            .bind(now)
            .bind(expires_at)
            .fetch_one(pool)
            .await?;
            Ok(ApiTokenRow {
                id,
                user_id,
                name: name.to_owned(),
                created_at: now,
                expires_at,
                last_used_at: None,
                revoked_at: None,
            })
        })
    }

    /// The tokens of one user, or of everyone when `user_id` is None; newest first.
    pub async fn list_api_tokens(&self, user_id: Option<Id>) -> Result<Vec<ApiTokenRow>> {
        on_pool!(&self.db, |pool| {
            let rows = sqlx::query(
                "SELECT id, user_id, name, created_at, expires_at, last_used_at, revoked_at FROM api_tokens \
                 WHERE ($1 IS NULL OR user_id = $1) ORDER BY id DESC",
            )
            .bind(user_id)
            .fetch_all(pool)
            .await?;
            rows.iter().map(api_token_from_row).collect()
        })
    }

    pub async fn get_api_token(&self, id: Id) -> Result<ApiTokenRow> {
        let rows = self.list_api_tokens(None).await?;
        rows.into_iter().find(|t| t.id == id).ok_or(StoreError::NotFound(Entity::Token))
    }

    /// Revokes a token; revoking twice is harmless.
    pub async fn revoke_api_token(&self, id: Id) -> Result<()> {
        on_pool!(&self.db, |pool| {
            let n = sqlx::query("UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2")
                .bind(Utc::now())
                .bind(id)
                .execute(pool)
                .await?
                .rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound(Entity::Token));
            }
            Ok(())
        })
    }

    /// The owner of a live (not revoked, not expired) personal token; records its use.
    pub async fn api_token_user(&self, token_hash: &str, now: DateTime<Utc>) -> Result<Option<User>> {
        on_pool!(&self.db, |pool| {
            let row = sqlx::query(
                "SELECT u.id, u.username, u.role, u.password_hash, t.id AS token_id FROM api_tokens t JOIN users u ON u.id = t.user_id \
                 WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > $2)",
            )
            .bind(token_hash)
            .bind(now)
            .fetch_optional(pool)
            .await?;
            let Some(r) = row else { return Ok(None) };
            let token_id = r.i64("token_id")?;
            sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
                .bind(now)
                .bind(token_id)
                .execute(pool)
                .await?;
            Ok(Some(user_from_row(&r)?))
        })
    }

    // ---------------------------------------------------------------- sign-in failures

    /// When `username` is locked out, until when.
    pub async fn locked_until(&self, username: &str, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>> {
        on_pool!(&self.db, |pool| {
            let until: Option<Option<DateTime<Utc>>> =
                sqlx::query_scalar("SELECT locked_until FROM login_failures WHERE username = $1")
                    .bind(username)
                    .fetch_optional(pool)
                    .await?;
            Ok(until.flatten().filter(|u| *u > now))
        })
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
        on_pool!(&self.db, |pool| {
            let mut tx = pool.begin().await?;
            // Names sprayed by a guesser must not pile up: forget stale, unlocked counts.
            sqlx::query(
                "DELETE FROM login_failures WHERE first_failure < $1 AND (locked_until IS NULL OR locked_until < $2)",
            )
            .bind(now - window - chrono::Duration::days(1))
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let cur: Option<(i64, DateTime<Utc>, Option<DateTime<Utc>>)> =
                sqlx::query_as("SELECT failures, first_failure, locked_until FROM login_failures WHERE username = $1")
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
                "INSERT INTO login_failures (username, failures, first_failure, locked_until) VALUES ($1, $2, $3, $4) \
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
        })
    }

    /// Forgets a name's failed sign-ins: after a success, or when an administrator clears a lockout.
    pub async fn clear_login_failures(&self, username: &str) -> Result<()> {
        on_pool!(&self.db, |pool| {
            sqlx::query("DELETE FROM login_failures WHERE username = $1").bind(username).execute(pool).await?;
            Ok(())
        })
    }

    // ---------------------------------------------------------------- settings

    pub async fn setting(&self, key: &str) -> Result<Option<String>> {
        on_pool!(&self.db, |pool| {
            Ok(sqlx::query_scalar("SELECT value FROM meta WHERE key = $1")
                .bind(format!("setting:{key}"))
                .fetch_optional(pool)
                .await?)
        })
    }

    pub async fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        on_pool!(&self.db, |pool| {
            sqlx::query(
                "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            )
            .bind(format!("setting:{key}"))
            .bind(value)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    // ---------------------------------------------------------------- audit log

    pub async fn audit(&self, e: &NewAudit) -> Result<()> {
        on_pool!(&self.db, |pool| {
            sqlx::query(
                "INSERT INTO audit_log (at, actor_id, actor, action, target_kind, target_id, target_name, detail, remote_addr, outcome) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
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
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Audit entries newest first that match `filter`, older than id `before` when given. One
    /// query text for both databases: an unset filter binds NULL and matches every row, and
    /// substrings are matched with `LOWER(..) LIKE` (case-sensitive on PostgreSQL otherwise).
    pub async fn search_audit(&self, filter: &AuditFilter, before: Option<Id>, limit: i64) -> Result<Vec<AuditRow>> {
        let (actor, action, target) = audit_terms(filter);
        on_pool!(&self.db, |pool| {
            let rows = sqlx::query(&format!(
                "SELECT id, at, actor_id, actor, action, target_kind, target_id, target_name, detail, remote_addr, outcome FROM audit_log \
                 {AUDIT_WHERE} ORDER BY id DESC LIMIT $7"
            ))
            .bind(before)
            .bind(&actor)
            .bind(action)
            .bind(&target)
            .bind(filter.from)
            .bind(filter.until)
            // A page of 1000 and the row that says another page follows.
            .bind(limit.clamp(1, 1001))
            .fetch_all(pool)
            .await?;
            rows.iter().map(audit_from_row).collect()
        })
    }

    /// How many audit entries match `filter` (older than `before` when given).
    pub async fn count_audit(&self, filter: &AuditFilter, before: Option<Id>) -> Result<i64> {
        let (actor, action, target) = audit_terms(filter);
        on_pool!(&self.db, |pool| {
            Ok(sqlx::query_scalar(&format!("SELECT COUNT(*) FROM audit_log {AUDIT_WHERE}"))
                .bind(before)
                .bind(&actor)
                .bind(action)
                .bind(&target)
                .bind(filter.from)
                .bind(filter.until)
                .fetch_one(pool)
                .await?)
        })
    }

    /// Every action the audit log holds, in order: the choices of the audit page's filter.
    pub async fn audit_actions(&self) -> Result<Vec<String>> {
        on_pool!(&self.db, |pool| {
            let rows = sqlx::query("SELECT DISTINCT action FROM audit_log ORDER BY action").fetch_all(pool).await?;
            rows.iter().map(|r| r.str("action")).collect()
        })
    }

    /// Audit entries newest first, older than id `before` when given.
    pub async fn list_audit(&self, before: Option<Id>, limit: i64) -> Result<Vec<AuditRow>> {
        self.search_audit(&AuditFilter::default(), before, limit).await
    }
}

/// The audit filter's terms, `$1` to `$6` (an unset one binds NULL and matches every row).
const AUDIT_WHERE: &str = "WHERE ($1 IS NULL OR id < $1) \
     AND ($2 IS NULL OR LOWER(actor) LIKE $2 ESCAPE '\\') \
     AND ($3 IS NULL OR action = $3) \
     AND ($4 IS NULL OR LOWER(target_kind || ' ' || target_name) LIKE $4 ESCAPE '\\') \
     AND ($5 IS NULL OR at >= $5) \
     AND ($6 IS NULL OR at < $6)";

/// The values of [`AUDIT_WHERE`]'s `$2` to `$4`: actor and target patterns, the exact action.
fn audit_terms(filter: &AuditFilter) -> (Option<String>, Option<&str>, Option<String>) {
    let like = |s: &Option<String>| s.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(like_pattern);
    let action = filter.action.as_deref().map(str::trim).filter(|s| !s.is_empty());
    (like(&filter.actor), action, like(&filter.target))
}

/// A case-insensitive `LIKE` pattern matching `needle` anywhere, its own `%`, `_` and `\` taken
/// literally (the queries say `ESCAPE '\'`).
pub(super) fn like_pattern(needle: &str) -> String {
    let mut p = String::with_capacity(needle.len() + 2);
    p.push('%');
    for c in needle.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// The changes of a user that must leave at least one administrator.
#[derive(Clone, Copy)]
enum AdminGuarded<'a> {
    SetRole(&'a str),
    Delete,
}
