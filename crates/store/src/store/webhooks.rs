//! The webhooks Berth registered on the hosts, one per repository: the host's id for the hook
//! (to delete it), the URL the host posts to, the signing secret sealed in the vault (bound to
//! the repository's id), and counts of deliveries taken and refused.

use super::dialect::Cols;
use super::open::WEBHOOK_SECRETS;
use super::*;
use chrono::{DateTime, Utc};
use secrecy::SecretString;

/// A repository's webhook as stored, without its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRow {
    pub repository_id: Id,
    /// The provider whose payloads and signature header the receiver expects.
    pub provider: String,
    /// The host's id for the hook (GitHub's number, Cloud's `{uuid}`, Data Center's id).
    pub hook_id: String,
    /// Where the host sends deliveries.
    pub url: String,
    /// Signed deliveries taken.
    pub deliveries: i64,
    /// Deliveries refused: no signature, or one that did not match.
    pub rejected: i64,
    pub last_delivery_at: Option<DateTime<Utc>>,
    pub last_rejected_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

pub struct NewWebhook<'a> {
    pub repository_id: Id,
    pub provider: &'a str,
    pub hook_id: &'a str,
    pub url: &'a str,
    pub secret: &'a SecretString,
}

const WEBHOOK_COLUMNS: &str = "SELECT repository_id, provider, hook_id, url, deliveries, rejected, last_delivery_at, \
     last_rejected_at, created_at FROM repository_webhooks";

fn webhook_from_row(r: &impl Cols) -> Result<WebhookRow> {
    Ok(WebhookRow {
        repository_id: r.i64("repository_id")?,
        provider: r.str("provider")?,
        hook_id: r.str("hook_id")?,
        url: r.str("url")?,
        deliveries: r.i64("deliveries")?,
        rejected: r.i64("rejected")?,
        last_delivery_at: r.opt_ts("last_delivery_at")?,
        last_rejected_at: r.opt_ts("last_rejected_at")?,
        created_at: r.ts("created_at")?,
    })
}

impl Store {
    /// Keeps the webhook the host created, its secret sealed in the same transaction.
    pub async fn create_webhook(&self, new: NewWebhook<'_>) -> Result<WebhookRow> {
        let sealed = self.vault.seal(new.secret, &(WEBHOOK_SECRETS.aad)(new.repository_id))?;
        on_pool!(&self.db, |pool| {
            let res = sqlx::query(
                "INSERT INTO repository_webhooks (repository_id, provider, hook_id, url, key_id, wrapped_key, ciphertext, \
                 created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(new.repository_id)
            .bind(new.provider)
            .bind(new.hook_id)
            .bind(new.url)
            .bind(&sealed.key_id)
            .bind(&sealed.wrapped_key)
            .bind(&sealed.ciphertext)
            .bind(Utc::now())
            .execute(pool)
            .await;
            match res {
                Ok(_) => {}
                Err(e) if e.as_database_error().is_some_and(|d| d.is_foreign_key_violation()) => {
                    return Err(StoreError::NotFound(Entity::Repository));
                }
                Err(e) if e.as_database_error().is_some_and(|d| d.is_unique_violation()) => {
                    return Err(StoreError::NameTaken { what: Entity::Webhook, name: new.hook_id.to_owned() });
                }
                Err(e) => return Err(e.into()),
            }
            self.webhook(new.repository_id).await?.ok_or(StoreError::NotFound(Entity::Webhook))
        })
    }

    /// A repository's webhook, when Berth registered one.
    pub async fn webhook(&self, repository_id: Id) -> Result<Option<WebhookRow>> {
        on_pool!(&self.db, |pool| {
            let row = sqlx::query(&format!("{WEBHOOK_COLUMNS} WHERE repository_id = $1"))
                .bind(repository_id)
                .fetch_optional(pool)
                .await?;
            row.as_ref().map(webhook_from_row).transpose()
        })
    }

    /// The webhook's signing secret, to verify a delivery.
    pub async fn webhook_secret(&self, repository_id: Id) -> Result<SecretString> {
        self.open_sealed(&WEBHOOK_SECRETS, repository_id, Entity::Webhook).await
    }

    pub async fn delete_webhook(&self, repository_id: Id) -> Result<()> {
        on_pool!(&self.db, |pool| {
            let n = sqlx::query("DELETE FROM repository_webhooks WHERE repository_id = $1")
                .bind(repository_id)
                .execute(pool)
                .await?
                .rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound(Entity::Webhook));
            }
            Ok(())
        })
    }

    /// Counts a delivery refused for its signature (one small update: a refusal stays cheap).
    pub async fn count_rejected_delivery(&self, repository_id: Id, now: DateTime<Utc>) -> Result<()> {
        on_pool!(&self.db, |pool| {
            sqlx::query(
                "UPDATE repository_webhooks SET rejected = rejected + 1, last_rejected_at = $1 WHERE repository_id = $2",
            )
            .bind(now)
            .bind(repository_id)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Counts a signed delivery that changed nothing (a ping, a tag push).
    pub async fn count_delivery(&self, repository_id: Id, now: DateTime<Utc>) -> Result<()> {
        on_pool!(&self.db, |pool| {
            sqlx::query(
                "UPDATE repository_webhooks SET deliveries = deliveries + 1, last_delivery_at = $1 WHERE repository_id = $2",
            )
            .bind(now)
            .bind(repository_id)
            .execute(pool)
            .await?;
            Ok(())
        })
    }
}
