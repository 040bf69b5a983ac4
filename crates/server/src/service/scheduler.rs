//! Background checks: every registered repository is re-checked on a jittered schedule, and at
//! once when its credential changes. Each check is recorded through
//! [`super::checks::record_outcome`], the path a person's re-check and registration take too.
//!
//! Several instances may share one database. Each instance takes due checks with a lease
//! (`Store::lease_due_checks`), runs them under a global and a per-host limit, and gives the
//! lease back with the next due time. An instance that dies mid-check leaves a lease that
//! expires, so the check is taken over and nothing is skipped. Hosts that answer 429 are left
//! alone until their `Retry-After` passes; credentials whose checks fail authentication
//! `pause_after_auth_failures` times in a row are not polled again until they are edited, so
//! polling never locks an account.

use super::checks::{next_due, parse_stored, run_and_record, Recorded};
use crate::state::AppState;
use berth_core::credential::ExpiryWarning;
use berth_core::{CheckReason, CloneUrl, UrlError};
use berth_store::{RepositoryRow, StoreError};
use chrono::Utc;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// How long a host that rate-limited without saying how long is left alone.
const DEFAULT_RATE_LIMIT_BACKOFF: Duration = Duration::from_secs(300);
/// How often history is pruned and expiry windows are logged.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(600);

/// The host (and port) a repository's checks go to: the unit of the per-host limit and of a
/// rate limit's back-off.
pub(crate) fn host_key(url: &Result<CloneUrl, UrlError>, stored: &str) -> String {
    match url.as_ref().ok().and_then(|u| Some((u, u.http_url()?.port_or_known_default()?))) {
        Some((u, port)) => format!("{}:{port}", u.host),
        None => stored.to_owned(),
    }
}

/// The scheduler of one instance: runs until [`crate::instance::Instance::begin_shutdown`], then waits up to
/// the configured grace for running checks and gives back the leases of any it had to stop.
pub async fn run(st: AppState) {
    let cfg = st.config.checks.clone();
    let bg = st.instance.clone();
    let slots = Arc::new(Semaphore::new(cfg.concurrency));
    let mut running: JoinSet<()> = JoinSet::new();
    let leased: Arc<Mutex<HashMap<i64, ()>>> = Arc::new(Mutex::new(HashMap::new()));
    let mut last_housekeeping: Option<tokio::time::Instant> = None;
    tracing::info!(instance = %bg.instance_id, interval_s = cfg.interval.as_secs_f64(), "background checks started");
    while !bg.is_stopping() {
        while running.try_join_next().is_some() {}
        if last_housekeeping.is_none_or(|t| t.elapsed() >= HOUSEKEEPING_EVERY) {
            housekeeping(&st).await;
            last_housekeeping = Some(tokio::time::Instant::now());
        }
        let free = slots.available_permits();
        if free > 0 {
            let now = Utc::now();
            let lease_until = now + chrono::Duration::from_std(cfg.lease).unwrap_or(chrono::Duration::seconds(300));
            match st
                .store
                .lease_due_checks(&bg.instance_id, now, lease_until, i64::try_from(free).unwrap_or(i64::MAX))
                .await
            {
                Ok(rows) => {
                    for row in rows {
                        let url = parse_stored(&st, &row);
                        let host = host_key(&url, &row.clone_url);
                        if let Some(until) = bg.backoff_until(&host, now) {
                            // The host asked everyone to wait: give the check back for later.
                            if let Err(e) = st.store.release_leases(&bg.instance_id, &[row.id], Some(until)).await {
                                tracing::warn!("cannot give back a lease: {e}");
                            }
                            continue;
                        }
                        let Ok(slot) = slots.clone().acquire_owned().await else { break };
                        leased.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(row.id, ());
                        let st = st.clone();
                        let leased = leased.clone();
                        let per_host = bg.host_limit(&host, cfg.per_host);
                        running.spawn(async move {
                            let _slot = slot;
                            let Ok(_host_slot) = per_host.acquire_owned().await else { return };
                            scheduled_check(&st, &row, &url, &host).await;
                            leased.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&row.id);
                            // A slot is free: look for more due checks now, not at the next poll.
                            st.instance.wake();
                        });
                    }
                }
                Err(e) => tracing::warn!("cannot read the check schedule: {e}"),
            }
        }
        tokio::select! {
            () = tokio::time::sleep(cfg.poll) => {}
            () = bg.wake.notified() => {}
            () = bg.stop.notified() => {}
        }
    }
    // Finish what runs, within the grace period; give back the leases of anything cut short
    // so another instance (or the next start) checks it at once instead of after the lease.
    let grace = tokio::time::sleep(cfg.shutdown_grace);
    tokio::pin!(grace);
    let in_flight = running.len();
    if in_flight > 0 {
        tracing::info!(in_flight, "waiting for running checks to finish");
    }
    loop {
        tokio::select! {
            next = running.join_next() => if next.is_none() { break },
            () = &mut grace => {
                running.abort_all();
                while running.join_next().await.is_some() {}
                break;
            }
        }
    }
    let cut: Vec<i64> = leased.lock().unwrap_or_else(std::sync::PoisonError::into_inner).keys().copied().collect();
    if !cut.is_empty() {
        tracing::warn!(
            checks = cut.len(),
            "stopped checks that outlasted the shutdown grace; their leases are given back"
        );
        if let Err(e) = st.store.release_leases(&bg.instance_id, &cut, None).await {
            tracing::warn!("cannot give back leases: {e}");
        }
    }
    tracing::info!("background checks stopped");
}

/// One scheduled check: run, then record it and hand the lease back with the next due time
/// in the same transaction.
async fn scheduled_check(st: &AppState, row: &RepositoryRow, url: &Result<CloneUrl, UrlError>, host: &str) {
    let cfg = &st.config.checks;
    let bg = &st.instance;
    let owner = bg.instance_id.clone();
    let next_for = |rec: &Recorded| {
        let next = match rec.rate_limited {
            Some(limited) => {
                let wait = limited.retry_after.unwrap_or(DEFAULT_RATE_LIMIT_BACKOFF).max(cfg.poll);
                let until = Utc::now() + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::seconds(300));
                bg.back_off(host, until);
                bg.metrics.rate_limit_backoff();
                tracing::info!(
                    repository = row.id,
                    wait_s = wait.as_secs(),
                    "host is rate limiting; checks to it wait"
                );
                until
            }
            None => next_due(Utc::now(), cfg.interval, cfg.jitter),
        };
        Some((owner.clone(), next))
    };
    // Due early because a person asked (check all now, an edited credential): say so.
    let reason = row.due_reason.unwrap_or(CheckReason::Schedule);
    match run_and_record(st, row, url, reason, next_for).await {
        Ok((_, Some(false))) => {
            bg.metrics.lease_lost();
            tracing::warn!(repository = row.id, "the check outlasted its lease; another instance may have repeated it");
        }
        Ok(_) => {}
        Err(StoreError::NotFound(_)) => {} // deleted while it was being checked
        Err(e) => {
            tracing::warn!(repository = row.id, "cannot record a check: {e}");
            let retry = next_due(Utc::now(), cfg.poll.max(Duration::from_secs(60)), 0.0);
            if let Err(e) = st.store.finish_lease(row.id, &owner, retry).await {
                tracing::warn!(repository = row.id, "cannot hand back a lease: {e}");
            }
        }
    }
}

/// Prunes old history and logs each credential's entry into an expiry window once.
async fn housekeeping(st: &AppState) {
    let keep = chrono::Duration::from_std(st.config.checks.history).unwrap_or(chrono::Duration::days(90));
    match st.store.prune_checks(Utc::now() - keep).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(removed = n, "pruned old check history"),
        Err(e) => tracing::warn!("cannot prune check history: {e}"),
    }
    let Ok(creds) = st.store.list_credentials().await else { return };
    let today = Utc::now().date_naive();
    let mut logged = st.instance.expiry_logged.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    for c in creds {
        match ExpiryWarning::of(c.expires_on, today) {
            Some(w) => {
                let label = w.label();
                if logged.get(&c.id) != Some(&label) {
                    tracing::warn!(credential = c.id, window = %label, "{}", w.message(&c.name));
                    logged.insert(c.id, label);
                }
            }
            None => {
                logged.remove(&c.id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_keys_include_the_port() {
        let key = |u: &str| host_key(&CloneUrl::parse(u, &[]), u);
        assert_eq!(key("https://bitbucket.org/ws/app.git"), "bitbucket.org:443");
        assert_eq!(key("http://127.0.0.1:7990/scm/p/r.git"), "127.0.0.1:7990");
        assert_eq!(key("not a url"), "not a url", "a URL that no longer parses is its own key");
    }
}
