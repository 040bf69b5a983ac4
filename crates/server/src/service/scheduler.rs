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

use super::checks::{
    next_due, parse_stored, read_credential, record_outcomes, run_unrecorded, Finished, ReadCredential, Recorded,
};
use crate::state::AppState;
use berth_core::credential::ExpiryWarning;
use berth_core::{CheckReason, CloneUrl, UrlError};
use berth_store::{RepositoryRow, StoreError};
use chrono::Utc;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

/// How many rounds of `concurrency` checks one instance holds leased at most.
const LEASED_ROUNDS: usize = 3;
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

/// A leased check waiting for a slot.
struct Queued {
    row: RepositoryRow,
    url: Result<CloneUrl, UrlError>,
    host: String,
    lease_until: chrono::DateTime<Utc>,
    /// Its credential, read once for all the leased checks that use it.
    credential: Option<Arc<ReadCredential>>,
}

/// The scheduler of one instance: runs until [`crate::instance::Instance::begin_shutdown`], then waits up to
/// the configured grace for running checks and gives back the leases of any it had to stop.
///
/// It keeps up to [`LEASED_ROUNDS`] rounds of checks leased (running, waiting to be recorded
/// and queued), so a slot that frees is refilled at once from memory instead of after a round
/// trip to the database, and the schedule is read about once per round rather than once per
/// finished check. Finished checks are recorded by one [`Recorder`] in batches: one commit for
/// all the checks that finished while the previous commit was being written.
pub async fn run(st: AppState) {
    let cfg = st.config.checks.clone();
    let bg = st.instance.clone();
    let slots = Arc::new(Semaphore::new(cfg.concurrency));
    let mut running: JoinSet<()> = JoinSet::new();
    let leased: Arc<Mutex<HashMap<i64, ()>>> = Arc::new(Mutex::new(HashMap::new()));
    let mut queue: VecDeque<Queued> = VecDeque::new();
    let (recorder, recording) = Recorder::start(st.clone());
    // Told when a check is done with the host and hands its slots on before it is recorded.
    let freed = Arc::new(Notify::new());
    let lease_for = chrono::Duration::from_std(cfg.lease).unwrap_or(chrono::Duration::seconds(300));
    // The last lease found fewer due checks than it asked for: the schedule is read again at
    // the next poll or wake-up, not after every finished check.
    let mut drained = false;
    let mut next_poll = tokio::time::Instant::now();
    let mut last_housekeeping: Option<tokio::time::Instant> = None;
    tracing::info!(instance = %bg.instance_id, interval_s = cfg.interval.as_secs_f64(), "background checks started");
    while !bg.is_stopping() {
        while running.try_join_next().is_some() {}
        // While the database is away nothing is leased (the watcher wakes us when it is back);
        // then the checks that ran but could not be recorded are due again at once.
        let db_up = !bg.database_down();
        if db_up {
            give_back_unrecorded(&st).await;
        }
        if db_up && last_housekeeping.is_none_or(|t| t.elapsed() >= HOUSEKEEPING_EVERY) {
            housekeeping(&st).await;
            last_housekeeping = Some(tokio::time::Instant::now());
        }
        if tokio::time::Instant::now() >= next_poll {
            drained = false;
            next_poll = tokio::time::Instant::now() + cfg.poll;
        }
        // Running includes checks waiting for their batch to be written, so a slow database
        // stops the leasing instead of piling up finished checks.
        // The schedule is read when the queue is down to half a round, for up to three rounds
        // in all: reading it whenever one slot had freed leased a few checks at a time (60
        // leases for a sweep of 1,000 with all slots busy), each lease a sort of the due checks.
        let want = (LEASED_ROUNDS * cfg.concurrency).saturating_sub(queue.len() + running.len());
        if db_up && !drained && queue.len() <= cfg.concurrency / 2 && want > 0 {
            let now = Utc::now();
            let lease_until = now + lease_for;
            match st
                .store
                .lease_due_checks(&bg.instance_id, now, lease_until, i64::try_from(want).unwrap_or(i64::MAX))
                .await
            {
                Ok(rows) => {
                    drained = rows.len() < want;
                    let credentials = read_credentials(&st, &rows).await;
                    let mut backing_off: HashMap<chrono::DateTime<Utc>, Vec<i64>> = HashMap::new();
                    for row in rows {
                        let url = parse_stored(&st, &row);
                        let host = host_key(&url, &row.clone_url);
                        if let Some(until) = bg.backoff_until(&host, now) {
                            // The host asked everyone to wait: give the check back for later.
                            backing_off.entry(until).or_default().push(row.id);
                            continue;
                        }
                        let credential = row.credential_id.and_then(|id| credentials.get(&id).cloned());
                        queue.push_back(Queued { row, url, host, lease_until, credential });
                    }
                    for (until, ids) in backing_off {
                        if let Err(e) = st.store.release_leases(&bg.instance_id, &ids, Some(until)).await {
                            tracing::warn!("cannot give back leases: {e}");
                        }
                    }
                }
                Err(e) if e.is_unavailable() => {
                    drained = true;
                    bg.database_away(e.unavailable_cause().unwrap_or_default());
                }
                Err(e) => {
                    drained = true;
                    tracing::warn!("cannot read the check schedule: {e}");
                }
            }
        }
        // Start queued checks while slots are free. A check runs only under its lease: one
        // that waited so long that less than half its lease is left is given back instead.
        let mut stale = Vec::new();
        while !queue.is_empty() {
            let Ok(slot) = slots.clone().try_acquire_owned() else { break };
            let Some(q) = queue.pop_front() else { break };
            if q.lease_until - Utc::now() < lease_for / 2 {
                stale.push(q.row.id);
                continue;
            }
            leased.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(q.row.id, ());
            let st = st.clone();
            let leased = leased.clone();
            let recorder = recorder.clone();
            let per_host = bg.host_limit(&q.host, cfg.per_host);
            let freed = freed.clone();
            running.spawn(async move {
                let Ok(host_slot) = per_host.acquire_owned().await else { return };
                let slots = Slots { global: slot, host: host_slot, freed };
                scheduled_check(&st, &recorder, slots, &q).await;
                leased.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&q.row.id);
            });
        }
        if !stale.is_empty() {
            if let Err(e) = st.store.release_leases(&bg.instance_id, &stale, None).await {
                tracing::warn!("cannot give back leases: {e}");
            }
        }
        tokio::select! {
            () = tokio::time::sleep_until(next_poll) => {}
            () = bg.wake.notified() => drained = false,
            () = bg.stop.notified() => {}
            // A slot is free: start the next queued check, or read the schedule.
            () = freed.notified() => {}
            Some(_) = running.join_next(), if !running.is_empty() => {}
        }
    }
    // Finish what runs, within the grace period; give back the leases of anything cut short
    // or never started so another instance (or the next start) checks it at once instead of
    // after the lease.
    let mut cut: Vec<i64> = queue.drain(..).map(|q| q.row.id).collect();
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
    drop(recorder);
    if tokio::time::timeout(cfg.shutdown_grace.max(Duration::from_secs(1)), recording).await.is_err() {
        tracing::warn!("the check recorder did not finish");
    }
    let stopped: Vec<i64> = leased.lock().unwrap_or_else(std::sync::PoisonError::into_inner).keys().copied().collect();
    if !stopped.is_empty() {
        tracing::warn!(
            checks = stopped.len(),
            "stopped checks that outlasted the shutdown grace; their leases are given back"
        );
    }
    cut.extend(stopped);
    if let Err(e) = st.store.release_leases(&bg.instance_id, &cut, None).await {
        tracing::warn!("cannot give back leases: {e}");
    }
    tracing::info!("background checks stopped");
}

/// The most finished checks written in one transaction.
const RECORD_BATCH: usize = 256;

type Reply = oneshot::Sender<Result<Option<bool>, StoreError>>;

/// Records the scheduler's finished checks through [`record_outcomes`], in batches: while one
/// commit is written (a disk flush on SQLite with full sync), the checks that finish meanwhile
/// queue up and go together in the next. Each check task waits for its own result (its slots
/// already handed on), and its lease stays in the database unchanged until then: a crash
/// before the commit loses no check, its lease simply expires and it runs again.
#[derive(Clone)]
struct Recorder {
    tx: mpsc::UnboundedSender<(Finished, Reply)>,
}

impl Recorder {
    fn start(st: AppState) -> (Recorder, tokio::task::JoinHandle<()>) {
        let (tx, mut rx) = mpsc::unbounded_channel::<(Finished, Reply)>();
        let task = tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                while batch.len() < RECORD_BATCH {
                    match rx.try_recv() {
                        Ok(next) => batch.push(next),
                        Err(_) => break,
                    }
                }
                let (items, replies): (Vec<Finished>, Vec<Reply>) = batch.into_iter().unzip();
                let results = record_outcomes(&st, items).await;
                for (result, reply) in results.into_iter().zip(replies) {
                    let _ = reply.send(result);
                }
            }
        });
        (Recorder { tx }, task)
    }

    async fn record(&self, st: &AppState, finished: Finished) -> Result<Option<bool>, StoreError> {
        let (reply, answer) = oneshot::channel();
        match self.tx.send((finished, reply)) {
            Ok(()) => {
                answer.await.unwrap_or_else(|_| Err(StoreError::Corrupt("the check recorder stopped".to_owned())))
            }
            // The recorder is gone (shutting down): record this one alone, on the same path.
            Err(mpsc::error::SendError((finished, _))) => {
                record_outcomes(st, vec![finished]).await.pop().unwrap_or(Ok(None))
            }
        }
    }
}

/// The global and per-host slots a check holds while it talks to the host.
struct Slots {
    global: OwnedSemaphorePermit,
    host: OwnedSemaphorePermit,
    freed: Arc<Notify>,
}

impl Slots {
    /// The limits are on what the hosts see: once the host has answered, the next check may
    /// start while this one waits for its batch to be written.
    fn release(self) {
        drop(self.global);
        drop(self.host);
        self.freed.notify_one();
    }
}

/// One scheduled check: run, then record it (in the recorder's next batch) and hand the lease
/// back with the next due time in the same transaction.
async fn scheduled_check(st: &AppState, recorder: &Recorder, slots: Slots, q: &Queued) {
    let (row, url, host) = (&q.row, &q.url, q.host.as_str());
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
    let ran = run_unrecorded(st, row, url, reason, q.credential.clone(), next_for).await;
    slots.release();
    let recorded = match ran {
        Ok((_, finished)) => recorder.record(st, finished).await,
        Err(e) => Err(e),
    };
    match recorded {
        Ok(Some(false)) => {
            bg.metrics.lease_lost();
            tracing::warn!(repository = row.id, "the check outlasted its lease; another instance may have repeated it");
        }
        Ok(_) => {}
        Err(StoreError::NotFound(_)) => {} // deleted while it was being checked
        Err(e) if e.is_unavailable() => {
            // Nothing was written and the lease is still ours: run it again once the
            // database is back rather than after the lease expires.
            bg.database_away(e.unavailable_cause().unwrap_or_default());
            bg.unrecorded.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(row.id);
        }
        Err(e) => {
            tracing::warn!(repository = row.id, "cannot record a check: {e}");
            let retry = next_due(Utc::now(), cfg.poll.max(Duration::from_secs(60)), 0.0);
            if let Err(e) = st.store.finish_lease(row.id, &owner, retry).await {
                tracing::warn!(repository = row.id, "cannot hand back a lease: {e}");
            }
        }
    }
}

/// The credentials of a leased batch, each read and opened once: one statement per
/// credential instead of one per check, which a sweep of thousands of checks of one
/// credential felt. A credential that cannot be read now is left out; its checks read it
/// themselves and report what they find.
async fn read_credentials(st: &AppState, rows: &[RepositoryRow]) -> HashMap<i64, Arc<ReadCredential>> {
    let mut read = HashMap::new();
    for id in rows.iter().filter_map(|r| r.credential_id) {
        if read.contains_key(&id) {
            continue;
        }
        if let Ok(c) = read_credential(st, id).await {
            read.insert(id, Arc::new(c));
        }
    }
    read
}

/// Gives back the leases of checks that ran while the database was away (their results were
/// never written), so they are due at once, here or on another instance.
async fn give_back_unrecorded(st: &AppState) {
    let bg = &st.instance;
    let ids: Vec<i64> = std::mem::take(&mut *bg.unrecorded.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
    if ids.is_empty() {
        return;
    }
    match st.store.release_leases(&bg.instance_id, &ids, None).await {
        Ok(()) => tracing::info!(checks = ids.len(), "checks not recorded during the database outage run again"),
        Err(e) => {
            if e.is_unavailable() {
                bg.database_away(e.unavailable_cause().unwrap_or_default());
            } else {
                tracing::warn!("cannot give back leases: {e}");
            }
            bg.unrecorded.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend(ids);
        }
    }
}

/// Prunes old check history and settled notification events (`history_days`), folds the
/// search's trigram counts, and logs each credential's entry into an expiry window once.
async fn housekeeping(st: &AppState) {
    let keep = chrono::Duration::from_std(st.config.checks.history).unwrap_or(chrono::Duration::days(90));
    match st.store.prune_checks(Utc::now() - keep).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(removed = n, "pruned old check history"),
        Err(e) => tracing::warn!("cannot prune check history: {e}"),
    }
    match st.store.prune_notifications(Utc::now() - keep).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(removed = n, "pruned old notification events and their deliveries"),
        Err(e) => tracing::warn!("cannot prune notification events: {e}"),
    }
    // PostgreSQL's trigram counts grow a row per trigram per written repository; a search folds
    // only the trigrams it reads, this folds the rest.
    if let Err(e) = st.store.compact_search_trigram_counts().await {
        tracing::warn!("cannot compact the search trigram counts: {e}");
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
