//! Operations: is this instance ready to serve, and the figures `/metrics` shows (counts only,
//! never a name).

use super::Result;
use crate::metrics::Snapshot;
use crate::state::AppState;
use berth_core::credential::ExpiryWarning;
use chrono::Utc;

/// Why this instance should not get requests now.
pub enum NotReady {
    Stopping,
    DatabaseUnavailable,
}

/// How long `/readyz` waits for the database: well inside a load balancer's probe timeout.
const READINESS_BUDGET: std::time::Duration = std::time::Duration::from_millis(800);

/// Ready when the database answers and the instance is not shutting down. Answers within
/// [`READINESS_BUDGET`]: at once while the database is known to be away.
pub async fn readiness(st: &AppState) -> std::result::Result<(), NotReady> {
    if st.instance.is_stopping() {
        return Err(NotReady::Stopping);
    }
    if st.instance.database_down() {
        return Err(NotReady::DatabaseUnavailable);
    }
    match tokio::time::timeout(READINESS_BUDGET, st.store.ping()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => {
            if e.is_unavailable() {
                st.instance.database_away(e.unavailable_cause().unwrap_or_default());
            }
            Err(NotReady::DatabaseUnavailable)
        }
        // Slow is not away: a busy pool may keep the probe waiting, and marking the database
        // away would turn every request into a 503 until the next ping. Only this probe fails.
        Err(_) => Err(NotReady::DatabaseUnavailable),
    }
}

/// While the database is away, asks it every second whether it is back (the requests that
/// arrive meanwhile are answered 503 without trying). Runs for the life of the server.
pub async fn watch_database(st: AppState) {
    while !st.instance.is_stopping() {
        tokio::select! {
            () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
            () = st.instance.stop.notified() => break,
        }
        if st.instance.database_down()
            && matches!(tokio::time::timeout(std::time::Duration::from_secs(2), st.store.ping()).await, Ok(Ok(())))
        {
            st.instance.database_back();
        }
    }
}

/// The Prometheus text of this instance's counters and the shared database's gauges.
pub async fn metrics_text(st: &AppState) -> Result<String> {
    let snap = snapshot(st).await?;
    Ok(st.instance.metrics.render(&snap))
}

async fn snapshot(st: &AppState) -> Result<Snapshot> {
    let mut snap = Snapshot::default();
    let creds = st.store.list_credentials().await?;
    let today = Utc::now().date_naive();
    let paused: std::collections::HashSet<i64> =
        creds.iter().filter(|c| c.checks_paused_at.is_some()).map(|c| c.id).collect();
    snap.credentials_paused = paused.len() as u64;
    for c in &creds {
        if let Some(w) = ExpiryWarning::of(c.expires_on, today) {
            *snap.credentials_by_expiry.entry(w.label()).or_default() += 1;
        }
    }
    let last = st.store.last_check_summaries().await?;
    let late =
        Utc::now() - chrono::Duration::from_std(st.config.checks.poll * 2 + st.config.checks.lease).unwrap_or_default();
    for r in st.store.list_repositories().await? {
        let status = if r.credential_id.is_some_and(|id| paused.contains(&id)) {
            "paused"
        } else {
            last.get(&r.id).map_or("unchecked", |c| c.status.as_str())
        };
        *snap.repositories_by_status.entry(status.to_owned()).or_default() += 1;
        if r.next_check_at.is_some_and(|n| n < late) {
            snap.repositories_overdue += 1;
        }
    }
    Ok(snap)
}
