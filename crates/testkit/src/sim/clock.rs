//! [`SimClock`]: the simulator's idea of "now", settable so tests are deterministic.

use chrono::{DateTime, NaiveDate, Utc};
use std::sync::{Arc, Mutex};

/// The time the simulator judges token expiry and rate-limit windows by. Clones share one
/// clock. [`SimClock::system`] follows the machine's clock until [`SimClock::set`] or
/// [`SimClock::advance`] freezes it.
#[derive(Debug, Clone, Default)]
pub struct SimClock(Arc<Mutex<Option<DateTime<Utc>>>>);

impl SimClock {
    /// Follows the machine's clock.
    pub fn system() -> SimClock {
        SimClock::default()
    }

    /// Frozen at `t`.
    pub fn fixed(t: DateTime<Utc>) -> SimClock {
        SimClock(Arc::new(Mutex::new(Some(t))))
    }

    /// Frozen at an RFC 3339 time (`2026-08-01T00:00:00Z`) or a date (`2026-08-01`, midnight UTC).
    pub fn at(when: &str) -> SimClock {
        SimClock::fixed(parse_time(when))
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.0.lock().ok().and_then(|t| *t).unwrap_or_else(Utc::now)
    }

    pub fn today(&self) -> NaiveDate {
        self.now().date_naive()
    }

    /// Freezes the clock at `t`.
    pub fn set(&self, t: DateTime<Utc>) {
        if let Ok(mut g) = self.0.lock() {
            *g = Some(t);
        }
    }

    /// Freezes the clock at `now() + d`.
    pub fn advance(&self, d: chrono::Duration) {
        let t = self.now() + d;
        self.set(t);
    }
}

/// RFC 3339, or a plain date meaning midnight UTC. Panics on anything else (test support).
pub fn parse_time(when: &str) -> DateTime<Utc> {
    if let Ok(t) = DateTime::parse_from_rfc3339(when) {
        return t.with_timezone(&Utc);
    }
    let d = NaiveDate::parse_from_str(when, "%Y-%m-%d")
        .unwrap_or_else(|e| panic!("not a date or RFC 3339 time: {when:?}: {e}"));
    d.and_hms_opt(0, 0, 0).map(|t| t.and_utc()).unwrap_or_else(|| panic!("midnight of {when}"))
}
