//! Background checks: every registered repository is re-checked on a jittered schedule, and at
//! once when its credential changes. One recording path ([`record_outcome`]) serves the
//! scheduler, the people who ask for a re-check and registration, so history, authentication
//! counting and metrics cannot differ between them.
//!
//! Several instances may share one database. Each instance takes due checks with a lease
//! (`Store::lease_due_checks`), runs them under a global and a per-host limit, and gives the
//! lease back with the next due time. An instance that dies mid-check leaves a lease that
//! expires, so the check is taken over and nothing is skipped. Hosts that answer 429 are left
//! alone until their `Retry-After` passes; credentials whose checks fail authentication
//! `pause_after_auth_failures` times in a row are not polled again until they are edited, so
//! polling never locks an account.

use crate::checks::{self, Target};
use crate::metrics::Metrics;
use crate::state::AppState;
use berth_core::credential::ExpiryWarning;
use berth_core::{Check, Code, StepName, StepStatus};
use berth_store::{AuthResult, CheckReason, CheckStatus, CredentialRow, NewAudit, NewCheck, RepositoryRow, StoreError};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;

/// How long a host that rate-limited without saying how long is left alone.
const DEFAULT_RATE_LIMIT_BACKOFF: Duration = Duration::from_secs(300);
/// How often history is pruned and expiry windows are logged.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(600);

/// The background-check state of one instance, shared by the API (wake-ups, metrics) and the
/// scheduler task.
pub struct Background {
    pub metrics: Metrics,
    pub instance_id: String,
    wake: Notify,
    stopping: AtomicBool,
    stop: Notify,
    host_limits: Mutex<HashMap<String, Arc<Semaphore>>>,
    host_backoff: Mutex<HashMap<String, DateTime<Utc>>>,
    /// The expiry window last logged per credential, so each window is logged once.
    expiry_logged: Mutex<HashMap<i64, String>>,
}

impl Background {
    pub fn new(instance_id: String) -> Background {
        Background {
            metrics: Metrics::default(),
            instance_id,
            wake: Notify::new(),
            stopping: AtomicBool::new(false),
            stop: Notify::new(),
            host_limits: Mutex::new(HashMap::new()),
            host_backoff: Mutex::new(HashMap::new()),
            expiry_logged: Mutex::new(HashMap::new()),
        }
    }

    /// Asks the scheduler to read the schedule now (a credential changed, "check all now").
    /// Other instances see the change at their next poll.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Stops taking new checks; running ones finish (see [`run`]).
    pub fn begin_shutdown(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.stop.notify_waiters();
        self.wake.notify_one();
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    fn host_limit(&self, host: &str, per_host: usize) -> Arc<Semaphore> {
        let mut m = self.host_limits.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        m.entry(host.to_owned()).or_insert_with(|| Arc::new(Semaphore::new(per_host))).clone()
    }

    fn backoff_until(&self, host: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut m = self.host_backoff.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        m.retain(|_, until| *until > now);
        m.get(host).copied()
    }

    fn back_off(&self, host: &str, until: DateTime<Utc>) {
        let mut m = self.host_backoff.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let e = m.entry(host.to_owned()).or_insert(until);
        *e = (*e).max(until);
    }
}

/// The next due time: `interval` from `now`, moved by up to `jitter` of it either way.
pub fn next_due(now: DateTime<Utc>, interval: Duration, jitter: f64) -> DateTime<Utc> {
    let spread = if jitter > 0.0 { rand::random::<f64>().mul_add(2.0 * jitter, -jitter) } else { 0.0 };
    let secs = (interval.as_secs_f64() * (1.0 + spread)).max(1.0);
    now + chrono::Duration::milliseconds((secs * 1000.0) as i64)
}

/// The host (and port) a repository's checks go to: the unit of the per-host limit.
fn host_key(clone_url: &str) -> String {
    url::Url::parse(clone_url)
        .ok()
        .and_then(|u| Some(format!("{}:{}", u.host_str()?, u.port_or_known_default().unwrap_or(0))))
        .unwrap_or_else(|| clone_url.to_owned())
}

/// What one recorded check found.
pub struct Recorded {
    pub check: Check,
    /// The host asked to wait this long (HTTP 429), when it said.
    pub rate_limited: Option<Option<Duration>>,
}

/// Runs the check of a registered repository with its stored credential and records it (see
/// [`record_outcome`]): what a person's re-check and a token replacement do.
pub async fn check_registered(st: &AppState, row: &RepositoryRow, reason: CheckReason) -> Result<Recorded, StoreError> {
    run_and_record(st, row, reason, |_| None).await.map(|(rec, _)| rec)
}

/// Runs the check, then records it with the lease hand-back `lease` decides from the result
/// (owner and next due time), all in one transaction. Returns whether the lease was kept.
async fn run_and_record(
    st: &AppState,
    row: &RepositoryRow,
    reason: CheckReason,
    lease: impl FnOnce(&Recorded) -> Option<(String, DateTime<Utc>)>,
) -> Result<(Recorded, Option<bool>), StoreError> {
    let cred = st.store.get_credential(row.credential_id).await?;
    st.background.metrics.started();
    let checked_at = Utc::now();
    let out = checks::run(st, Target { clone_url: &row.clone_url, credential: &cred, wanted_branch: Some(&row.default_branch) }).await;
    st.background.metrics.ended();
    let rate_limited = out
        .check
        .checks
        .iter()
        .find(|s| s.status == StepStatus::Fail && s.code == Code::RateLimited)
        .map(|s| s.details.iter().find_map(|d| parse_retry_after_detail(d)));
    let rec = Recorded { check: out.check, rate_limited };
    let lease = lease(&rec);
    let kept = record_outcome(st, row.id, &row.name, &cred, &rec.check, checked_at, out.duration, reason, lease).await?;
    Ok((rec, kept))
}

/// Keeps a finished check in one transaction: its history row, the credential's
/// authentication count (which pauses background checks at the threshold) and, for a
/// scheduled check, the lease handed back with the next due time; then this instance's
/// metrics. Returns whether the lease was still this instance's.
#[allow(clippy::too_many_arguments)]
pub async fn record_outcome(
    st: &AppState,
    repository_id: i64,
    repository_name: &str,
    cred: &CredentialRow,
    check: &Check,
    checked_at: DateTime<Utc>,
    took: Duration,
    reason: CheckReason,
    lease: Option<(String, DateTime<Utc>)>,
) -> Result<Option<bool>, StoreError> {
    let bg = &st.background;
    let duration_ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX);
    let auth = auth_verdict(check).map(|failed| AuthResult {
        credential_id: cred.id,
        failed,
        pause_after: st.config.checks.pause_after_auth_failures,
        now: Utc::now(),
    });
    let new = NewCheck { check, reason, instance: &bg.instance_id, checked_at, duration_ms };
    let done = st.store.record_outcome(repository_id, &new, auth, lease.as_ref().map(|(o, n)| (o.as_str(), *n))).await?;
    bg.metrics.check_finished(reason, CheckStatus::of(check), took);
    if let Some(count) = done.auth.filter(|c| c.paused_now) {
        bg.metrics.credential_paused();
        tracing::warn!(
            credential = cred.id,
            failures = count.failures,
            "background checks with this credential are paused after repeated authentication failures; edit the credential to resume"
        );
        let audit = NewAudit {
            actor: "berth".to_owned(),
            action: "credential.checks_paused".to_owned(),
            target_kind: "credential".to_owned(),
            target_id: Some(cred.id),
            target_name: cred.name.clone(),
            detail: format!(
                "{} authentication failures in a row (last on repository {repository_name:?}); background checks stop until the credential is edited",
                count.failures
            ),
            outcome: "ok".to_owned(),
            ..NewAudit::default()
        };
        if let Err(e) = st.store.audit(&audit).await {
            tracing::error!("cannot write the audit log: {e}");
        }
    }
    Ok(done.lease_kept)
}

/// `Some(true)` when the host refused the credential, `Some(false)` when it accepted it,
/// `None` when the check never got as far as asking (a bad URL, DNS, connection, TLS).
fn auth_verdict(check: &Check) -> Option<bool> {
    let refused = check
        .checks
        .iter()
        .any(|s| s.status == StepStatus::Fail && matches!(s.code, Code::AuthFailed | Code::TokenExpired));
    if refused {
        return Some(true);
    }
    let accepted = check.checks.iter().any(|s| {
        s.status == StepStatus::Pass && matches!(s.step, StepName::ApiCredential | StepName::GitDiscovery)
    });
    accepted.then_some(false)
}

/// Reads the "retry after N seconds" detail that the Git client and the REST adapters attach
/// to a `rate_limited` step.
fn parse_retry_after_detail(d: &str) -> Option<Duration> {
    let rest = d.strip_prefix("retry after ")?;
    let secs: u64 = rest.strip_suffix(" seconds").or_else(|| rest.strip_suffix(" second"))?.trim().parse().ok()?;
    Some(Duration::from_secs(secs))
}

/// The scheduler of one instance: runs until [`Background::begin_shutdown`], then waits up to
/// the configured grace for running checks and gives back the leases of any it had to stop.
pub async fn run(st: AppState) {
    let cfg = st.config.checks.clone();
    let bg = st.background.clone();
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
            match st.store.lease_due_checks(&bg.instance_id, now, lease_until, i64::try_from(free).unwrap_or(i64::MAX)).await {
                Ok(rows) => {
                    for row in rows {
                        let host = host_key(&row.clone_url);
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
                            scheduled_check(&st, &row, &host).await;
                            leased.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&row.id);
                            // A slot is free: look for more due checks now, not at the next poll.
                            st.background.wake();
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
        tracing::warn!(checks = cut.len(), "stopped checks that outlasted the shutdown grace; their leases are given back");
        if let Err(e) = st.store.release_leases(&bg.instance_id, &cut, None).await {
            tracing::warn!("cannot give back leases: {e}");
        }
    }
    tracing::info!("background checks stopped");
}

/// One scheduled check: run, then record it and hand the lease back with the next due time
/// in the same transaction.
async fn scheduled_check(st: &AppState, row: &RepositoryRow, host: &str) {
    let cfg = &st.config.checks;
    let bg = &st.background;
    let owner = bg.instance_id.clone();
    let next_for = |rec: &Recorded| {
        let next = match rec.rate_limited {
            Some(wait) => {
                let wait = wait.unwrap_or(DEFAULT_RATE_LIMIT_BACKOFF).max(cfg.poll);
                let until = Utc::now() + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::seconds(300));
                bg.back_off(host, until);
                bg.metrics.rate_limit_backoff();
                tracing::info!(repository = row.id, wait_s = wait.as_secs(), "host is rate limiting; checks to it wait");
                until
            }
            None => next_due(Utc::now(), cfg.interval, cfg.jitter),
        };
        Some((owner.clone(), next))
    };
    match run_and_record(st, row, CheckReason::Schedule, next_for).await {
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
    let mut logged = st.background.expiry_logged.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
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
    use berth_core::Step;

    #[test]
    fn next_due_stays_within_the_jitter() {
        let now = Utc::now();
        for _ in 0..200 {
            let d = (next_due(now, Duration::from_secs(3600), 0.1) - now).num_seconds();
            assert!((3240..=3960).contains(&d), "{d}");
        }
        assert_eq!((next_due(now, Duration::from_secs(60), 0.0) - now).num_seconds(), 60);
    }

    #[test]
    fn retry_after_detail_is_read() {
        assert_eq!(parse_retry_after_detail("retry after 17 seconds"), Some(Duration::from_secs(17)));
        assert_eq!(parse_retry_after_detail("retry after soon"), None);
        assert_eq!(parse_retry_after_detail("HTTP 429"), None);
    }

    #[test]
    fn authentication_verdicts() {
        let refused = Check::completed(vec![Step::fail(StepName::GitDiscovery, Code::AuthFailed, "no", "fix")]);
        assert_eq!(auth_verdict(&refused), Some(true));
        let expired = Check::completed(vec![Step::fail(StepName::ApiCredential, Code::TokenExpired, "old", "renew")]);
        assert_eq!(auth_verdict(&expired), Some(true));
        let network = Check::completed(vec![Step::fail(StepName::Dns, Code::DnsFailed, "no", "fix")]);
        assert_eq!(auth_verdict(&network), None);
        let fine = Check::completed(vec![Step::pass(StepName::GitDiscovery, "ok")]);
        assert_eq!(auth_verdict(&fine), Some(false));
    }

    #[test]
    fn host_keys_include_the_port() {
        assert_eq!(host_key("https://bitbucket.org/ws/app.git"), "bitbucket.org:443");
        assert_eq!(host_key("http://127.0.0.1:7990/scm/p/r.git"), "127.0.0.1:7990");
    }
}
