//! Two-factor sign-in: a user's TOTP key (sealed like a credential's secret, bound to the
//! user's row), the last time step used, and the recovery codes.

use super::open::TOTP_KEYS;
use super::*;
use chrono::Utc;
use secrecy::SecretString;

impl Store {
    // ---------------------------------------------------------------- two-factor sign-in

    /// Stores a new, not yet enabled TOTP key for a user (replacing an unconfirmed one).
    pub async fn set_pending_totp(&self, user_id: Id, secret: &SecretString) -> Result<()> {
        on_pool!(&self.db, |pool| {
            let sealed = self.vault.seal(secret, &(TOTP_KEYS.aad)(user_id))?;
            sqlx::query(
                "INSERT INTO user_totp (user_id, key_id, wrapped_key, ciphertext, enabled, last_step, created_at) VALUES ($1, $2, $3, $4, FALSE, 0, $5) \
                 ON CONFLICT(user_id) DO UPDATE SET key_id = excluded.key_id, wrapped_key = excluded.wrapped_key, \
                 ciphertext = excluded.ciphertext, enabled = FALSE, last_step = 0, created_at = excluded.created_at",
            )
            .bind(user_id)
            .bind(&sealed.key_id)
            .bind(&sealed.wrapped_key)
            .bind(&sealed.ciphertext)
            .bind(Utc::now())
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    pub async fn totp_state(&self, user_id: Id) -> Result<Option<TotpState>> {
        on_pool!(&self.db, |pool| {
            let row: Option<(bool, i64)> =
                sqlx::query_as("SELECT enabled, last_step FROM user_totp WHERE user_id = $1")
                    .bind(user_id)
                    .fetch_optional(pool)
                    .await?;
            Ok(row.map(|(enabled, last_step)| TotpState { enabled, last_step }))
        })
    }

    /// Opens a user's TOTP key (the base32 text).
    pub async fn totp_secret(&self, user_id: Id) -> Result<SecretString> {
        self.open_sealed(&TOTP_KEYS, user_id, Entity::SecondFactor).await
    }

    /// Accepts time step `step` unless it (or a later one) was already used: no code works twice.
    pub async fn use_totp_step(&self, user_id: Id, step: i64) -> Result<bool> {
        on_pool!(&self.db, |pool| {
            let n = sqlx::query("UPDATE user_totp SET last_step = $1 WHERE user_id = $2 AND last_step < $3")
                .bind(step)
                .bind(user_id)
                .bind(step)
                .execute(pool)
                .await?
                .rows_affected();
            Ok(n == 1)
        })
    }

    /// Turns the pending key on and replaces the recovery codes with `code_hashes`.
    pub async fn enable_totp(&self, user_id: Id, code_hashes: &[String]) -> Result<()> {
        on_pool!(&self.db, |pool| {
            let mut tx = pool.begin().await?;
            let n = sqlx::query("UPDATE user_totp SET enabled = TRUE WHERE user_id = $1")
                .bind(user_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound(Entity::SecondFactor));
            }
            sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1").bind(user_id).execute(&mut *tx).await?;
            for h in code_hashes {
                sqlx::query("INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2)")
                    .bind(user_id)
                    .bind(h)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Removes a user's second factor and recovery codes.
    pub async fn disable_totp(&self, user_id: Id) -> Result<()> {
        on_pool!(&self.db, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query("DELETE FROM user_totp WHERE user_id = $1").bind(user_id).execute(&mut *tx).await?;
            sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1").bind(user_id).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Spends a recovery code: true when it existed and was unused.
    pub async fn use_recovery_code(&self, user_id: Id, code_hash: &str) -> Result<bool> {
        on_pool!(&self.db, |pool| {
            let n = sqlx::query(
                "UPDATE recovery_codes SET used_at = $1 WHERE user_id = $2 AND code_hash = $3 AND used_at IS NULL",
            )
            .bind(Utc::now())
            .bind(user_id)
            .bind(code_hash)
            .execute(pool)
            .await?
            .rows_affected();
            Ok(n > 0)
        })
    }

    pub async fn recovery_codes_left(&self, user_id: Id) -> Result<i64> {
        on_pool!(&self.db, |pool| {
            Ok(sqlx::query_scalar("SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL")
                .bind(user_id)
                .fetch_one(pool)
                .await?)
        })
    }

    /// Ends a half-signed-in session's wait for its second factor.
    pub async fn complete_mfa(&self, token_hash: &str) -> Result<()> {
        on_pool!(&self.db, |pool| {
            sqlx::query("UPDATE sessions SET mfa_pending = FALSE WHERE token_hash = $1")
                .bind(token_hash)
                .execute(pool)
                .await?;
            Ok(())
        })
    }
}
