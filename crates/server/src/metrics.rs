//! `/metrics` in the Prometheus text format: what this instance did (checks by result and
//! reason, their durations, checks running now, leases lost) and what the shared database
//! says (repositories by status, credentials by expiry window, paused credentials).
//!
//! Counters live in this process, so with several instances each reports its own work and
//! Prometheus sums them; the gauges read from the database are the same on every instance.
//! Only counts are exposed: no repository, credential or user name.

use berth_core::{CheckReason, CheckStatus};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the check-duration histogram, in seconds.
const BUCKETS: [f64; 12] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

#[derive(Default)]
struct Histogram {
    /// Cumulative counts per bucket, then +Inf.
    counts: [u64; BUCKETS.len() + 1],
    sum: f64,
    total: u64,
}

#[derive(Default)]
pub struct Metrics {
    checks: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    durations: Mutex<Histogram>,
    in_flight: AtomicI64,
    leases_lost: AtomicU64,
    credentials_paused: AtomicU64,
    rate_limit_backoffs: AtomicU64,
    webhook_deliveries: AtomicU64,
    webhook_rejected: AtomicU64,
}

/// The database-side numbers of one scrape.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub repositories_by_status: BTreeMap<String, u64>,
    pub credentials_by_expiry: BTreeMap<String, u64>,
    pub credentials_paused: u64,
    pub repositories_overdue: u64,
}

impl Metrics {
    pub fn check_finished(&self, reason: CheckReason, status: CheckStatus, took: Duration) {
        if let Ok(mut m) = self.checks.lock() {
            *m.entry((reason.as_str(), status.as_str())).or_default() += 1;
        }
        if let Ok(mut h) = self.durations.lock() {
            let secs = took.as_secs_f64();
            for (i, b) in BUCKETS.iter().enumerate() {
                if secs <= *b {
                    h.counts[i] += 1;
                }
            }
            h.counts[BUCKETS.len()] += 1;
            h.sum += secs;
            h.total += 1;
        }
    }

    pub fn started(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    pub fn ended(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn in_flight(&self) -> i64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    pub fn lease_lost(&self) {
        self.leases_lost.fetch_add(1, Ordering::Relaxed);
    }

    pub fn credential_paused(&self) {
        self.credentials_paused.fetch_add(1, Ordering::Relaxed);
    }

    pub fn rate_limit_backoff(&self) {
        self.rate_limit_backoffs.fetch_add(1, Ordering::Relaxed);
    }

    /// A host's webhook delivery taken (signature verified).
    pub fn webhook_delivery(&self) {
        self.webhook_deliveries.fetch_add(1, Ordering::Relaxed);
    }

    /// A webhook delivery refused: no signature, or a wrong one.
    pub fn webhook_rejected(&self) {
        self.webhook_rejected.fetch_add(1, Ordering::Relaxed);
    }

    /// Checks this instance finished, per (reason, status).
    pub fn checks_total(&self) -> BTreeMap<(&'static str, &'static str), u64> {
        self.checks.lock().map(|m| m.clone()).unwrap_or_default()
    }

    pub fn render(&self, snap: &Snapshot) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP berth_checks_total Repository checks this instance finished, by why they ran and their result."
        );
        let _ = writeln!(out, "# TYPE berth_checks_total counter");
        for ((reason, status), n) in self.checks_total() {
            let _ = writeln!(out, "berth_checks_total{{reason=\"{reason}\",status=\"{status}\"}} {n}");
        }
        let _ = writeln!(out, "# HELP berth_check_duration_seconds How long this instance's repository checks took.");
        let _ = writeln!(out, "# TYPE berth_check_duration_seconds histogram");
        if let Ok(h) = self.durations.lock() {
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(out, "berth_check_duration_seconds_bucket{{le=\"{b}\"}} {}", h.counts[i]);
            }
            let _ = writeln!(out, "berth_check_duration_seconds_bucket{{le=\"+Inf\"}} {}", h.counts[BUCKETS.len()]);
            let _ = writeln!(out, "berth_check_duration_seconds_sum {}", h.sum);
            let _ = writeln!(out, "berth_check_duration_seconds_count {}", h.total);
        }
        gauge(&mut out, "berth_checks_in_flight", "Repository checks running in this instance now.", self.in_flight());
        counter(
            &mut out,
            "berth_check_leases_lost_total",
            "Checks whose lease expired before they finished (another instance took them over).",
            self.leases_lost.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "berth_credential_pauses_total",
            "Times this instance paused a credential's checks after repeated authentication failures.",
            self.credentials_paused.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "berth_rate_limit_backoffs_total",
            "Checks this instance postponed because a host asked it to wait (HTTP 429).",
            self.rate_limit_backoffs.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "berth_webhook_deliveries_total",
            "Deliveries of the hosts' webhooks this instance took (signature verified).",
            self.webhook_deliveries.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "berth_webhook_deliveries_rejected_total",
            "Deliveries to a repository's webhook this instance refused with 401: no signature or a wrong one.",
            self.webhook_rejected.load(Ordering::Relaxed),
        );

        let _ = writeln!(out, "# HELP berth_repositories Registered repositories by the status of their last check.");
        let _ = writeln!(out, "# TYPE berth_repositories gauge");
        for status in ["ok", "warn", "fail", "unchecked", "paused"] {
            let n = snap.repositories_by_status.get(status).copied().unwrap_or(0);
            let _ = writeln!(out, "berth_repositories{{status=\"{status}\"}} {n}");
        }
        let _ = writeln!(out, "# HELP berth_credentials_expiring Credentials inside an expiry warning window (30, 7 or 1 days before) or expired.");
        let _ = writeln!(out, "# TYPE berth_credentials_expiring gauge");
        for window in ["30d", "7d", "1d", "expired"] {
            let n = snap.credentials_by_expiry.get(window).copied().unwrap_or(0);
            let _ = writeln!(out, "berth_credentials_expiring{{window=\"{window}\"}} {n}");
        }
        gauge(
            &mut out,
            "berth_credentials_checks_paused",
            "Credentials whose background checks are paused after authentication failures.",
            snap.credentials_paused,
        );
        gauge(
            &mut out,
            "berth_repositories_overdue",
            "Repositories whose scheduled check is later than a lease and two polls (no instance is taking checks).",
            snap.repositories_overdue,
        );
        out
    }
}

fn gauge(out: &mut String, name: &str, help: &str, v: impl std::fmt::Display) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
}

fn counter(out: &mut String, name: &str, help: &str, v: u64) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histogram_and_gauges() {
        let m = Metrics::default();
        m.check_finished(CheckReason::Schedule, CheckStatus::Ok, Duration::from_millis(30));
        m.check_finished(CheckReason::Schedule, CheckStatus::Ok, Duration::from_secs(3));
        m.check_finished(CheckReason::Manual, CheckStatus::Fail, Duration::from_secs(100));
        let mut snap = Snapshot::default();
        snap.credentials_by_expiry.insert("7d".into(), 2);
        let text = m.render(&snap);
        assert!(text.contains("berth_checks_total{reason=\"schedule\",status=\"ok\"} 2"), "{text}");
        assert!(text.contains("berth_checks_total{reason=\"manual\",status=\"fail\"} 1"));
        assert!(text.contains("berth_check_duration_seconds_bucket{le=\"0.05\"} 1"));
        assert!(text.contains("berth_check_duration_seconds_bucket{le=\"5\"} 2"));
        assert!(text.contains("berth_check_duration_seconds_bucket{le=\"+Inf\"} 3"));
        assert!(text.contains("berth_check_duration_seconds_count 3"));
        assert!(text.contains("berth_credentials_expiring{window=\"7d\"} 2"));
        assert!(text.contains("berth_credentials_expiring{window=\"expired\"} 0"));
        // Every sample line is `name{labels} value` or `name value`.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let value = line.rsplit(' ').next().unwrap_or("");
            assert!(value.parse::<f64>().is_ok(), "bad sample line {line:?}");
        }
    }
}
