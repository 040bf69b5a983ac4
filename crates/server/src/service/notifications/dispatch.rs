//! The background sender of one instance: leases due deliveries (`Store::lease_due_deliveries`,
//! so several instances send each delivery once), sends them a few at a time, records each
//! attempt and, on failure, when to try again (exponential back-off from `first_retry`, at
//! most an hour apart, given up once the event is older than `retry_for`, a day by default).
//! It also compares credentials' expiry dates with the 30, 7 and 1-day windows and raises
//! `credential.expiring` and `credential.expired`, once per window (`Store::announce_expiry`).

use super::payload;
use super::send::{deliver, Attempt};
use super::settings::ChannelSettings;
use crate::state::AppState;
use berth_core::credential::ExpiryWarning;
use berth_store::{AttemptOutcome, LeasedDelivery, NewEvent};
use chrono::{DateTime, Utc};
use std::time::Duration;
use tokio::task::JoinSet;

/// Deliveries leased per round.
const BATCH: i64 = 16;
/// The longest wait between two attempts of one delivery.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);

pub async fn run(st: AppState) {
    let cfg = st.config.notifications.clone();
    let bg = st.instance.clone();
    // Longer than any attempt: an HTTP request or an SMTP exchange is bounded by the request
    // timeout (SMTP once per command), so a few of them fit.
    let lease = chrono::Duration::from_std(st.config.git_request_timeout * 6).unwrap_or(chrono::Duration::minutes(2));
    let mut next_scan = tokio::time::Instant::now();
    tracing::info!(instance = %bg.instance_id, "notification sender started");
    while !bg.is_stopping() {
        // While the database is away there is nothing to read; the watcher wakes us.
        let db_up = !bg.database_down();
        if db_up && tokio::time::Instant::now() >= next_scan {
            scan_expiry(&st).await;
            next_scan = tokio::time::Instant::now() + cfg.expiry_scan;
        }
        let now = Utc::now();
        let answer = if db_up {
            Some(st.store.lease_due_deliveries(&bg.instance_id, now, now + lease, BATCH).await)
        } else {
            None
        };
        let leased = match answer {
            None => Vec::new(),
            Some(Ok(l)) => l,
            Some(Err(e)) if e.is_unavailable() => {
                bg.database_away(e.unavailable_cause().unwrap_or_default());
                Vec::new()
            }
            Some(Err(e)) => {
                tracing::warn!("cannot read the notification queue: {e}");
                Vec::new()
            }
        };
        let full = i64::try_from(leased.len()).unwrap_or(0) >= BATCH;
        let mut sending = JoinSet::new();
        for l in leased {
            let st = st.clone();
            sending.spawn(async move { send_one(&st, l).await });
        }
        while sending.join_next().await.is_some() {}
        if !full {
            tokio::select! {
                () = tokio::time::sleep(cfg.poll) => {}
                () = bg.notifications_wake.notified() => {}
                () = bg.stop.notified() => {}
            }
        }
    }
}

/// When a delivery that failed `attempts` times (this one included) is tried again: `None`
/// once its event is older than `retry_for`.
pub fn retry_at(
    first_retry: Duration,
    retry_for: Duration,
    attempts: i64,
    event_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
    let wait = first_retry.saturating_mul(2u32.saturating_pow(doublings)).min(MAX_BACKOFF);
    let at = now + chrono::Duration::from_std(wait).ok()?;
    let give_up = event_at + chrono::Duration::from_std(retry_for).ok()?;
    (at <= give_up).then_some(at)
}

async fn send_one(st: &AppState, l: LeasedDelivery) {
    let d = &l.delivery;
    let attempt = match (st.store.get_channel(d.channel_id).await, st.store.channel_secret(d.channel_id).await) {
        (Ok(channel), Ok(secret)) => match ChannelSettings::parse_stored(&channel.settings) {
            Ok(settings) => {
                let ev = payload::event_json(&l.event, &d.delivery_uuid, st.config.public_url.as_ref());
                deliver(st, &settings, &secret, &ev).await
            }
            Err(_) => Attempt { status: None, error: Some("the channel's settings do not read".to_owned()) },
        },
        // Deleted meanwhile: its deliveries went with it.
        (Err(berth_store::StoreError::NotFound(_)), _) | (_, Err(berth_store::StoreError::NotFound(_))) => return,
        (Err(e), _) | (_, Err(e)) => {
            tracing::warn!(delivery = d.id, "cannot open a notification channel: {e}");
            Attempt { status: None, error: Some("the channel cannot be opened".to_owned()) }
        }
    };
    let cfg = &st.config.notifications;
    let outcome = match attempt.error {
        None => AttemptOutcome::Delivered { status: attempt.status },
        Some(error) => {
            let retry = retry_at(cfg.first_retry, cfg.retry_for, d.attempts + 1, l.event.created_at, Utc::now());
            tracing::info!(
                delivery = d.id,
                channel = d.channel_id,
                event = %d.event_kind,
                attempts = d.attempts + 1,
                giving_up = retry.is_none(),
                "a notification was not delivered: {error}"
            );
            AttemptOutcome::Failed { status: attempt.status, error, retry_at: retry }
        }
    };
    match st.store.finish_delivery(d.id, &st.instance.instance_id, &outcome).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!(delivery = d.id, "a delivery outlasted its lease; another instance may send it again")
        }
        Err(e) => tracing::warn!(delivery = d.id, "cannot record a delivery: {e}"),
    }
}

/// Raises the expiry events of every credential whose expiry date entered a window, once per
/// window whichever instance sees it first.
async fn scan_expiry(st: &AppState) {
    let Ok(creds) = st.store.list_credentials().await else { return };
    let today = Utc::now().date_naive();
    for c in creds {
        let (Some(expires_on), Some(w)) = (c.expires_on, ExpiryWarning::of(c.expires_on, today)) else { continue };
        let (kind, old, new, details) = match w {
            ExpiryWarning::Within { window, days_left } => (
                "credential.expiring",
                "valid",
                "expiring",
                serde_json::json!({"window_days": window, "days_left": days_left, "expires_on": expires_on.to_string()}),
            ),
            ExpiryWarning::Expired { days_ago } => (
                "credential.expired",
                "expiring",
                "expired",
                serde_json::json!({"days_ago": days_ago, "expires_on": expires_on.to_string()}),
            ),
        };
        let event = NewEvent {
            kind: kind.to_owned(),
            subject: "credential".to_owned(),
            subject_id: Some(c.id),
            subject_name: c.name.clone(),
            credential_id: Some(c.id),
            old_status: Some(old.to_owned()),
            new_status: Some(new.to_owned()),
            code: Some(w.code().as_str().to_owned()),
            message: Some(w.message(&c.name)),
            remedy: Some(
                "create a new token on the host and replace this credential's token in Berth; its repositories are checked again at once"
                    .to_owned(),
            ),
            details: details.to_string(),
        };
        if let Err(e) = st.store.announce_expiry(c.id, expires_on, &w.label(), &event).await {
            tracing::warn!(credential = c.id, "cannot raise an expiry event: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_and_stop_after_a_day() {
        let t0 = Utc::now();
        let first = Duration::from_secs(30);
        let day = Duration::from_secs(86_400);
        let wait = |n: i64| retry_at(first, day, n, t0, t0).map(|at| (at - t0).num_seconds());
        assert_eq!(wait(1), Some(30));
        assert_eq!(wait(2), Some(60));
        assert_eq!(wait(3), Some(120));
        assert_eq!(wait(20), Some(3600), "at most an hour apart");
        let late = t0 + chrono::Duration::hours(24);
        assert_eq!(retry_at(first, day, 40, t0, late), None, "given up a day after the event");
    }
}
