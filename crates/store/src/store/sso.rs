//! Users who sign in through an OpenID provider: which provider subject each one is.

use super::error::name_taken;
use super::mappers::user_from_row;
use super::*;
use chrono::Utc;

impl Store {
    /// The user an OpenID provider's subject signs in as, once made.
    pub async fn sso_user(&self, issuer: &str, subject: &str) -> Result<Option<User>> {
        on_pool!(&self.db, |pool| {
            let row = sqlx::query(
                "SELECT u.id, u.username, u.role, u.password_hash FROM user_sso_identities i \
                 JOIN users u ON u.id = i.user_id WHERE i.issuer = $1 AND i.subject = $2",
            )
            .bind(issuer)
            .bind(subject)
            .fetch_optional(pool)
            .await?;
            row.map(|r| user_from_row(&r)).transpose()
        })
    }

    /// Makes the user of a provider's subject, in one transaction with its identity. The
    /// password hash is of a password nobody knows: the account signs in through the provider.
    /// A taken name is [`StoreError::NameTaken`], and nothing is written.
    pub async fn create_sso_user(
        &self,
        username: &str,
        unusable_password_hash: &str,
        role: &str,
        issuer: &str,
        subject: &str,
    ) -> Result<User> {
        on_pool!(&self.db, |pool| {
            let now = Utc::now();
            let mut tx = pool.begin().await?;
            let id: Id = sqlx::query_scalar(
                "INSERT INTO users (username, password_hash, role, created_at, updated_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
            )
            .bind(username)
            .bind(unusable_password_hash)
            .bind(role)
            .bind(now)
            .bind(now)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| name_taken(e, Entity::User, username))?;
            sqlx::query(
                "INSERT INTO user_sso_identities (user_id, issuer, subject, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(id)
            .bind(issuer)
            .bind(subject)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(User {
                id,
                username: username.to_owned(),
                role: role.to_owned(),
                password_hash: unusable_password_hash.to_owned(),
            })
        })
    }

    /// Whether the user signs in through an OpenID provider (its second factor is the
    /// provider's business, not Berth's).
    pub async fn is_sso_user(&self, user_id: Id) -> Result<bool> {
        on_pool!(&self.db, |pool| {
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM user_sso_identities WHERE user_id = $1")
                .bind(user_id)
                .fetch_one(pool)
                .await?;
            Ok(n > 0)
        })
    }
}
