//! Notifications: channels (each with one sealed secret), the events state changes raise, and
//! the deliveries that carry each event to each channel that wants it.
//!
//! An event is written in the transaction of the change that raised it (a recorded check, a
//! credential's pause, a finished import, an expiry window entered), together with one
//! delivery per channel whose subscription matches, so a crash can never keep the change and
//! lose its notification. Deliveries are leased like due checks (`lease_due_deliveries`): one
//! statement writes an owner and a deadline, so several instances send each delivery once.

use super::dialect::Cols;
use super::mappers::{json_text, to_i64};
use super::open::CHANNEL_SECRETS;
use super::*;
use chrono::{DateTime, NaiveDate, Utc};
use secrecy::SecretString;

/// Writes a channel's sealed secret into its row inside the transaction `$tx` (either dialect).
macro_rules! write_channel_secret {
    ($tx:ident, $id:expr, $sealed:expr) => {{
        let sealed: &crate::vault::Sealed = $sealed;
        sqlx::query("UPDATE notification_channels SET key_id = $1, wrapped_key = $2, ciphertext = $3 WHERE id = $4")
            .bind(&sealed.key_id)
            .bind(&sealed.wrapped_key)
            .bind(&sealed.ciphertext)
            .bind($id)
            .execute(&mut *$tx)
            .await?;
    }};
}

/// A channel as stored, without its secret.
#[derive(Debug, Clone)]
pub struct ChannelRow {
    pub id: Id,
    pub name: String,
    /// `webhook`, `slack` or `email`.
    pub kind: String,
    /// JSON of the kind's settings that are not secret.
    pub settings: String,
    /// Event kinds the channel takes; empty: all.
    pub events: Vec<String>,
    pub repository_pattern: Option<String>,
    pub credential_id: Option<Id>,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub struct NewChannel<'a> {
    pub name: &'a str,
    pub kind: &'a str,
    pub settings: &'a str,
    pub events: &'a [String],
    pub repository_pattern: Option<&'a str>,
    pub credential_id: Option<Id>,
    pub enabled: bool,
    pub secret: &'a SecretString,
}

/// The fields of a channel to change; `None` leaves one as it is.
#[derive(Default)]
pub struct ChannelPatch {
    pub name: Option<String>,
    pub settings: Option<String>,
    pub events: Option<Vec<String>>,
    pub repository_pattern: Option<Option<String>>,
    pub credential_id: Option<Option<Id>>,
    pub enabled: Option<bool>,
    pub secret: Option<SecretString>,
}

/// What an event says. Never a secret: names, statuses and a finding's words.
#[derive(Debug, Clone, Default)]
pub struct NewEvent {
    pub kind: String,
    /// `repository`, `credential`, `import` or `channel` (a test event).
    pub subject: String,
    pub subject_id: Option<Id>,
    pub subject_name: String,
    /// The credential the event concerns (a repository's credential, or the credential itself).
    pub credential_id: Option<Id>,
    pub old_status: Option<String>,
    pub new_status: Option<String>,
    pub code: Option<String>,
    pub message: Option<String>,
    pub remedy: Option<String>,
    /// JSON object of what else the event says (an expiry window, an import's counts).
    pub details: String,
}

#[derive(Debug, Clone)]
pub struct EventRow {
    pub id: Id,
    pub event: NewEvent,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct DeliveryRow {
    pub id: Id,
    pub channel_id: Id,
    pub event_id: Id,
    pub event_kind: String,
    /// The `X-Berth-Delivery` id: unique per delivery.
    pub delivery_uuid: String,
    /// `pending`, `delivered` or `failed` (given up).
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: DateTime<Utc>,
    /// The receiver's HTTP status (or SMTP reply code) of the last attempt.
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A delivery this instance leased, with its event.
#[derive(Debug, Clone)]
pub struct LeasedDelivery {
    pub delivery: DeliveryRow,
    pub event: EventRow,
}

/// How an attempt ended.
#[derive(Debug, Clone)]
pub enum AttemptOutcome {
    Delivered {
        status: Option<i64>,
    },
    /// Try again at `retry_at`, or give up when `None`.
    Failed {
        status: Option<i64>,
        error: String,
        retry_at: Option<DateTime<Utc>>,
    },
}

const CHANNEL_COLUMNS: &str = "SELECT id, name, kind, settings, events, repository_pattern, credential_id, enabled, \
     created_at, updated_at FROM notification_channels";
const DELIVERY_COLUMNS: &str =
    "SELECT d.id, d.channel_id, d.event_id, e.kind AS event_kind, d.delivery_uuid, d.state, \
     d.attempts, d.next_attempt_at, d.last_status, d.last_error, d.created_at, d.updated_at \
     FROM notification_deliveries d JOIN notification_events e ON e.id = d.event_id";
const EVENT_COLUMNS: &str =
    "SELECT id, kind, subject, subject_id, subject_name, credential_id, old_status, new_status, \
     code, message, remedy, details, created_at FROM notification_events";

fn channel_from_row(r: &impl Cols) -> Result<ChannelRow> {
    Ok(ChannelRow {
        id: r.i64("id")?,
        name: r.str("name")?,
        kind: r.str("kind")?,
        settings: r.str("settings")?,
        events: serde_json::from_str(&r.str("events")?).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        repository_pattern: r.opt_str("repository_pattern")?,
        credential_id: r.opt_i64("credential_id")?,
        enabled: r.bool("enabled")?,
        created_at: r.ts("created_at")?,
        updated_at: r.ts("updated_at")?,
    })
}

fn delivery_from_row(r: &impl Cols) -> Result<DeliveryRow> {
    Ok(DeliveryRow {
        id: r.i64("id")?,
        channel_id: r.i64("channel_id")?,
        event_id: r.i64("event_id")?,
        event_kind: r.str("event_kind")?,
        delivery_uuid: r.str("delivery_uuid")?,
        state: r.str("state")?,
        attempts: r.i64("attempts")?,
        next_attempt_at: r.ts("next_attempt_at")?,
        last_status: r.opt_i64("last_status")?,
        last_error: r.opt_str("last_error")?,
        created_at: r.ts("created_at")?,
        updated_at: r.ts("updated_at")?,
    })
}

fn event_from_row(r: &impl Cols) -> Result<EventRow> {
    Ok(EventRow {
        id: r.i64("id")?,
        event: NewEvent {
            kind: r.str("kind")?,
            subject: r.str("subject")?,
            subject_id: r.opt_i64("subject_id")?,
            subject_name: r.str("subject_name")?,
            credential_id: r.opt_i64("credential_id")?,
            old_status: r.opt_str("old_status")?,
            new_status: r.opt_str("new_status")?,
            code: r.opt_str("code")?,
            message: r.opt_str("message")?,
            remedy: r.opt_str("remedy")?,
            details: r.str("details")?,
        },
        created_at: r.ts("created_at")?,
    })
}

/// Whether a channel's subscription takes `event`. A repository pattern limits the channel
/// to repository events of matching names; a credential limits it to events about that
/// credential or its repositories. A test event goes only to the channel it was made for.
pub(super) fn subscription_takes(
    events: &[String],
    pattern: Option<&str>,
    credential: Option<Id>,
    event: &NewEvent,
) -> bool {
    if !events.is_empty() && !events.contains(&event.kind) {
        return false;
    }
    if let Some(p) = pattern {
        if event.subject != "repository" || !berth_core::glob::glob_matches(p, &event.subject_name) {
            return false;
        }
    }
    credential.is_none_or(|c| event.credential_id == Some(c))
}

/// A fresh `X-Berth-Delivery` id: 128 random bits, hex.
fn delivery_uuid() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Inside the transaction `$tx` (either dialect): writes the event `$event` and one delivery
/// for each enabled channel that takes it (only channel `$only`, when that is `Some`), due at
/// `$now`. Writes nothing when no channel takes it. Evaluates to the deliveries' ids.
macro_rules! enqueue_event {
    ($tx:ident, $event:expr, $now:expr, $only:expr) => {{
        let (event, now, only): (&$crate::store::notifications::NewEvent, chrono::DateTime<chrono::Utc>, Option<Id>) =
            ($event, $now, $only);
        let rows = sqlx::query("SELECT id, events, repository_pattern, credential_id, enabled FROM notification_channels")
            .fetch_all(&mut *$tx)
            .await?;
        let mut wanted: Vec<Id> = Vec::new();
        for r in &rows {
            let id = $crate::store::dialect::Cols::i64(r, "id")?;
            let events: Vec<String> = serde_json::from_str(&$crate::store::dialect::Cols::str(r, "events")?)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let pattern = $crate::store::dialect::Cols::opt_str(r, "repository_pattern")?;
            let cred = $crate::store::dialect::Cols::opt_i64(r, "credential_id")?;
            // A test event goes to the one channel it is for, enabled or not.
            let takes = match only {
                Some(o) => o == id,
                None => {
                    $crate::store::dialect::Cols::bool(r, "enabled")?
                        && $crate::store::notifications::subscription_takes(&events, pattern.as_deref(), cred, event)
                }
            };
            if takes {
                wanted.push(id);
            }
        }
        let mut deliveries: Vec<Id> = Vec::new();
        if !wanted.is_empty() {
            let event_id: Id = sqlx::query_scalar(
                "INSERT INTO notification_events (kind, subject, subject_id, subject_name, credential_id, old_status, \
                 new_status, code, message, remedy, details, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id",
            )
            .bind(&event.kind)
            .bind(&event.subject)
            .bind(event.subject_id)
            .bind(&event.subject_name)
            .bind(event.credential_id)
            .bind(&event.old_status)
            .bind(&event.new_status)
            .bind(&event.code)
            .bind(&event.message)
            .bind(&event.remedy)
            .bind(if event.details.is_empty() { "{}" } else { event.details.as_str() })
            .bind(now)
            .fetch_one(&mut *$tx)
            .await?;
            for channel_id in &wanted {
                let delivery: Id = sqlx::query_scalar(
                    "INSERT INTO notification_deliveries (channel_id, event_id, delivery_uuid, state, attempts, \
                     next_attempt_at, created_at, updated_at) VALUES ($1, $2, $3, 'pending', 0, $4, $4, $4) RETURNING id",
                )
                .bind(*channel_id)
                .bind(event_id)
                .bind($crate::store::notifications::new_delivery_uuid())
                .bind(now)
                .fetch_one(&mut *$tx)
                .await?;
                deliveries.push(delivery);
            }
        }
        deliveries
    }};
}

pub(crate) fn new_delivery_uuid() -> String {
    delivery_uuid()
}

impl Store {
    // ---------------------------------------------------------------- channels

    pub async fn create_channel(&self, new: NewChannel<'_>) -> Result<ChannelRow> {
        let events = json_text(new.events)?;
        on_pool!(&self.db, |pool| {
            let now = Utc::now();
            let mut tx = pool.begin().await?;
            // Sealed after the insert, in the same transaction: the row id is in the
            // associated data, as for credentials.
            let id: Id = sqlx::query_scalar(
                "INSERT INTO notification_channels (name, kind, settings, events, repository_pattern, credential_id, \
                 enabled, key_id, wrapped_key, ciphertext, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, '', $8, $8, $9, $9) RETURNING id",
            )
            .bind(new.name)
            .bind(new.kind)
            .bind(new.settings)
            .bind(&events)
            .bind(new.repository_pattern)
            .bind(new.credential_id)
            .bind(new.enabled)
            .bind(Vec::<u8>::new())
            .bind(now)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| super::error::name_taken(e, Entity::NotificationChannel, new.name))?;
            let sealed = self.vault.seal(new.secret, &(CHANNEL_SECRETS.aad)(id))?;
            write_channel_secret!(tx, id, &sealed);
            tx.commit().await?;
            self.get_channel(id).await
        })
    }

    pub async fn list_channels(&self) -> Result<Vec<ChannelRow>> {
        on_pool!(&self.db, |pool| {
            let rows = sqlx::query(&format!("{CHANNEL_COLUMNS} ORDER BY name COLLATE NOCASE")).fetch_all(pool).await?;
            rows.iter().map(channel_from_row).collect()
        })
    }

    pub async fn get_channel(&self, id: Id) -> Result<ChannelRow> {
        on_pool!(&self.db, |pool| {
            let row = sqlx::query(&format!("{CHANNEL_COLUMNS} WHERE id = $1")).bind(id).fetch_optional(pool).await?;
            row.as_ref().map(channel_from_row).transpose()?.ok_or(StoreError::NotFound(Entity::NotificationChannel))
        })
    }

    /// A channel's secret (signing secret, Slack hook URL or SMTP password), for sending only.
    pub async fn channel_secret(&self, id: Id) -> Result<SecretString> {
        self.open_sealed(&CHANNEL_SECRETS, id, Entity::NotificationChannel).await
    }

    pub async fn update_channel(&self, id: Id, patch: ChannelPatch) -> Result<ChannelRow> {
        let events = patch.events.as_ref().map(json_text).transpose()?;
        let name_for_error = patch.name.clone().unwrap_or_default();
        on_pool!(&self.db, |pool| {
            let mut tx = pool.begin().await?;
            let n = sqlx::query(
                "UPDATE notification_channels SET name = CASE WHEN $1 THEN $2 ELSE name END, \
                 settings = CASE WHEN $3 THEN $4 ELSE settings END, events = CASE WHEN $5 THEN $6 ELSE events END, \
                 repository_pattern = CASE WHEN $7 THEN $8 ELSE repository_pattern END, \
                 credential_id = CASE WHEN $9 THEN $10 ELSE credential_id END, \
                 enabled = CASE WHEN $11 THEN $12 ELSE enabled END, updated_at = $13 WHERE id = $14",
            )
            .bind(patch.name.is_some())
            .bind(patch.name.as_deref().unwrap_or_default())
            .bind(patch.settings.is_some())
            .bind(patch.settings.as_deref().unwrap_or_default())
            .bind(events.is_some())
            .bind(events.as_deref().unwrap_or("[]"))
            .bind(patch.repository_pattern.is_some())
            .bind(patch.repository_pattern.clone().flatten())
            .bind(patch.credential_id.is_some())
            .bind(patch.credential_id.flatten())
            .bind(patch.enabled.is_some())
            .bind(patch.enabled.unwrap_or(true))
            .bind(Utc::now())
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(|e| super::error::name_taken(e, Entity::NotificationChannel, &name_for_error))?
            .rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound(Entity::NotificationChannel));
            }
            if let Some(secret) = &patch.secret {
                let sealed = self.vault.seal(secret, &(CHANNEL_SECRETS.aad)(id))?;
                write_channel_secret!(tx, id, &sealed);
            }
            tx.commit().await?;
            self.get_channel(id).await
        })
    }

    /// Deletes a channel and its delivery log.
    pub async fn delete_channel(&self, id: Id) -> Result<()> {
        on_pool!(&self.db, |pool| {
            let n = sqlx::query("DELETE FROM notification_channels WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await?
                .rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound(Entity::NotificationChannel));
            }
            Ok(())
        })
    }

    // ---------------------------------------------------------------- events

    /// Raises an event by itself (no other state changes with it): a test event for one
    /// channel (`only`), or any event whose cause is written elsewhere. Returns the ids of
    /// the deliveries queued.
    pub async fn enqueue_event(&self, event: &NewEvent, only: Option<Id>) -> Result<Vec<Id>> {
        on_pool!(&self.db, |pool| {
            let mut tx = pool.begin().await?;
            let n = enqueue_event!(tx, event, Utc::now(), only);
            tx.commit().await?;
            Ok(n)
        })
    }

    /// Announces that a credential's expiry date entered a window (`30d`, `7d`, `1d`,
    /// `expired`), once per credential, expiry date and window whichever instance asks first:
    /// the notice row and the event are written together. Returns whether this call did it.
    pub async fn announce_expiry(
        &self,
        credential_id: Id,
        expires_on: NaiveDate,
        window: &str,
        event: &NewEvent,
    ) -> Result<bool> {
        on_pool!(&self.db, |pool| {
            let now = Utc::now();
            let mut tx = pool.begin().await?;
            let n = sqlx::query(
                "INSERT INTO credential_expiry_notices (credential_id, expires_on, expiry_window, created_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            )
            .bind(credential_id)
            .bind(expires_on)
            .bind(window)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 1 {
                enqueue_event!(tx, event, now, None);
            }
            tx.commit().await?;
            Ok(n == 1)
        })
    }

    pub async fn get_event(&self, id: Id) -> Result<EventRow> {
        on_pool!(&self.db, |pool| {
            let row = sqlx::query(&format!("{EVENT_COLUMNS} WHERE id = $1")).bind(id).fetch_optional(pool).await?;
            row.as_ref().map(event_from_row).transpose()?.ok_or(StoreError::NotFound(Entity::NotificationDelivery))
        })
    }

    // ---------------------------------------------------------------- deliveries

    /// A channel's delivery log, newest first, at most `limit` rows.
    pub async fn list_deliveries(&self, channel_id: Id, limit: i64) -> Result<Vec<DeliveryRow>> {
        on_pool!(&self.db, |pool| {
            let rows = sqlx::query(&format!("{DELIVERY_COLUMNS} WHERE d.channel_id = $1 ORDER BY d.id DESC LIMIT $2"))
                .bind(channel_id)
                .bind(limit.max(0))
                .fetch_all(pool)
                .await?;
            rows.iter().map(delivery_from_row).collect()
        })
    }

    pub async fn get_delivery(&self, id: Id) -> Result<DeliveryRow> {
        on_pool!(&self.db, |pool| {
            let row = sqlx::query(&format!("{DELIVERY_COLUMNS} WHERE d.id = $1")).bind(id).fetch_optional(pool).await?;
            row.as_ref().map(delivery_from_row).transpose()?.ok_or(StoreError::NotFound(Entity::NotificationDelivery))
        })
    }

    /// Sends a delivery's event again as a new delivery (a new `X-Berth-Delivery` id), due now.
    pub async fn redeliver(&self, delivery_id: Id) -> Result<DeliveryRow> {
        let old = self.get_delivery(delivery_id).await?;
        let id: Id = on_pool!(&self.db, |pool| {
            let now = Utc::now();
            sqlx::query_scalar(
                "INSERT INTO notification_deliveries (channel_id, event_id, delivery_uuid, state, attempts, \
                 next_attempt_at, created_at, updated_at) VALUES ($1, $2, $3, 'pending', 0, $4, $4, $4) RETURNING id",
            )
            .bind(old.channel_id)
            .bind(old.event_id)
            .bind(delivery_uuid())
            .bind(now)
            .fetch_one(pool)
            .await?
        });
        self.get_delivery(id).await
    }

    /// Leases up to `limit` pending deliveries that are due to `owner` until `lease_until`,
    /// with their events. As with due checks, one statement takes them, so each is sent by
    /// one instance while its lease lives; a lease that expires makes it due for everyone.
    pub async fn lease_due_deliveries(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<LeasedDelivery>> {
        // The candidates are picked once (a materialised CTE) and locked without waiting on
        // PostgreSQL, so a statement never takes more than `limit` nor another's rows.
        let lock = match self.dialect() {
            Dialect::Postgres => "FOR UPDATE SKIP LOCKED",
            Dialect::Sqlite => "",
        };
        let sql = format!(
            "WITH picked AS MATERIALIZED (SELECT id FROM notification_deliveries WHERE state = 'pending' \
                 AND next_attempt_at <= $3 AND (lease_until IS NULL OR lease_until < $3) \
                 ORDER BY next_attempt_at, id LIMIT $4 {lock}) \
             UPDATE notification_deliveries SET lease_owner = $1, lease_until = $2 \
             WHERE id IN (SELECT id FROM picked) AND state = 'pending' \
             AND (lease_until IS NULL OR lease_until < $3) RETURNING id"
        );
        let ids: Vec<Id> = on_pool!(&self.db, |pool| {
            sqlx::query_scalar(&sql).bind(owner).bind(lease_until).bind(now).bind(limit.max(0)).fetch_all(pool).await?
        });
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let delivery = self.get_delivery(id).await?;
            let event = self.get_event(delivery.event_id).await?;
            out.push(LeasedDelivery { delivery, event });
        }
        Ok(out)
    }

    /// Records an attempt of `owner`'s leased delivery and hands the lease back. Returns
    /// false when the lease was no longer `owner`'s (then nothing is written).
    pub async fn finish_delivery(&self, id: Id, owner: &str, outcome: &AttemptOutcome) -> Result<bool> {
        let now = Utc::now();
        let (state, status, error, next) = match outcome {
            AttemptOutcome::Delivered { status } => ("delivered", *status, None, now),
            AttemptOutcome::Failed { status, error, retry_at: Some(at) } => ("pending", *status, Some(error), *at),
            AttemptOutcome::Failed { status, error, retry_at: None } => ("failed", *status, Some(error), now),
        };
        on_pool!(&self.db, |pool| {
            let n = sqlx::query(
                "UPDATE notification_deliveries SET state = $1, attempts = attempts + 1, last_status = $2, \
                 last_error = $3, next_attempt_at = $4, updated_at = $5, lease_owner = NULL, lease_until = NULL \
                 WHERE id = $6 AND lease_owner = $7",
            )
            .bind(state)
            .bind(status)
            .bind(error)
            .bind(next)
            .bind(now)
            .bind(id)
            .bind(owner)
            .execute(pool)
            .await?
            .rows_affected();
            Ok(to_i64(n) == 1)
        })
    }

    /// Forgets events raised before `cutoff` whose every delivery is settled (delivered or
    /// given up), with their deliveries; an event with a delivery still pending is kept,
    /// however old. Returns how many events went.
    pub async fn prune_notifications(&self, cutoff: DateTime<Utc>) -> Result<u64> {
        on_pool!(&self.db, |pool| {
            Ok(sqlx::query(
                "DELETE FROM notification_events WHERE created_at < $1 AND NOT EXISTS (SELECT 1 FROM \
                 notification_deliveries d WHERE d.event_id = notification_events.id AND d.state = 'pending')",
            )
            .bind(cutoff)
            .execute(pool)
            .await?
            .rows_affected())
        })
    }
}
