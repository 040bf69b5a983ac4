//! What one `berth serve` process keeps in memory beside the database: its metrics, the
//! scheduler's wake-up and stop signals, the per-host limits and the hosts that asked it to
//! back off. Everything several instances must agree on lives in the database instead.
//!
//! A leaf module: the request state holds it, and the scheduler and the use cases use it,
//! without it knowing any of them.

use crate::metrics::Metrics;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{Notify, Semaphore};

/// The in-memory state of this instance, shared by the use cases (wake-ups, metrics) and the
/// scheduler task.
pub struct Instance {
    pub metrics: Metrics,
    pub instance_id: String,
    pub(crate) wake: Notify,
    stopping: AtomicBool,
    pub(crate) stop: Notify,
    host_limits: Mutex<HashMap<String, Arc<Semaphore>>>,
    host_backoff: Mutex<HashMap<String, DateTime<Utc>>>,
    /// The expiry window last logged per credential, so each window is logged once.
    pub(crate) expiry_logged: Mutex<HashMap<i64, String>>,
    /// Wakes the notification sender (a test event or a redelivery was queued).
    pub(crate) notifications_wake: Notify,
    /// Since when (and why) the database has been away; `None` while it answers.
    db_down: Mutex<Option<(std::time::Instant, String)>>,
    /// Repositories whose checks ran but could not be recorded because the database was away:
    /// their leases are still this instance's, and they are given back (due at once) when the
    /// database returns instead of waiting for the leases to expire.
    pub(crate) unrecorded: Mutex<Vec<i64>>,
}

impl Instance {
    pub fn new(instance_id: String) -> Instance {
        Instance {
            metrics: Metrics::default(),
            instance_id,
            wake: Notify::new(),
            stopping: AtomicBool::new(false),
            stop: Notify::new(),
            host_limits: Mutex::new(HashMap::new()),
            host_backoff: Mutex::new(HashMap::new()),
            expiry_logged: Mutex::new(HashMap::new()),
            notifications_wake: Notify::new(),
            db_down: Mutex::new(None),
            unrecorded: Mutex::new(Vec::new()),
        }
    }

    /// Whether the database is known to be away: requests are answered 503 at once and the
    /// scheduler takes no checks until a probe finds it back ([`Instance::database_back`]).
    pub fn database_down(&self) -> bool {
        self.db_down.lock().unwrap_or_else(std::sync::PoisonError::into_inner).is_some()
    }

    /// The database was found away; `why` is what failed (the driver's words, or the request
    /// that met it). Logged once per outage, not once per request.
    pub fn database_away(&self, why: &str) {
        let mut down = self.db_down.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if down.is_none() {
            tracing::error!(
                "the database is unavailable ({why}); requests are answered 503 database_unavailable and background \
                 checks wait until it is back"
            );
            *down = Some((std::time::Instant::now(), why.to_owned()));
        }
    }

    /// The database answers again: logged once, with how long it was away; the scheduler
    /// and the notification sender are woken.
    pub fn database_back(&self) {
        let was = self.db_down.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if let Some((since, _)) = was {
            tracing::warn!(away_s = since.elapsed().as_secs(), "the database is back; serving again");
            self.wake.notify_one();
            self.notifications_wake.notify_one();
        }
    }

    /// Asks the scheduler to read the schedule now (a credential changed, "check all now").
    /// Other instances see the change at their next poll.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Stops taking new checks; running ones finish (see `service::scheduler::run`).
    pub fn begin_shutdown(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.stop.notify_waiters();
        self.wake.notify_one();
        self.notifications_wake.notify_one();
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    pub fn host_limit(&self, host: &str, per_host: usize) -> Arc<Semaphore> {
        let mut m = self.host_limits.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        m.entry(host.to_owned()).or_insert_with(|| Arc::new(Semaphore::new(per_host))).clone()
    }

    pub fn backoff_until(&self, host: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut m = self.host_backoff.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        m.retain(|_, until| *until > now);
        m.get(host).copied()
    }

    pub fn back_off(&self, host: &str, until: DateTime<Utc>) {
        let mut m = self.host_backoff.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let e = m.entry(host.to_owned()).or_insert(until);
        *e = (*e).max(until);
    }
}
