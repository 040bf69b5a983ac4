//! Operations endpoints, open to anyone and free of names: `/readyz` (can this instance serve?)
//! and `/metrics` (Prometheus text). `/healthz` (is the process alive?) is beside login.

use crate::metrics::Snapshot;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_core::credential::ExpiryWarning;
use berth_proto::Health;
use chrono::Utc;

/// Readiness: 200 when the database answers and the instance is not shutting down, else 503,
/// so a load balancer stops sending requests before the process goes away.
#[utoipa::path(get, path = "/readyz", tag = "auth",
    responses((status = 200, body = Health), (status = 503, description = "the database does not answer or the instance is stopping", body = Health)))]
pub async fn readyz(State(st): State<AppState>) -> (StatusCode, Json<Health>) {
    let version = env!("CARGO_PKG_VERSION").to_owned();
    if st.background.is_stopping() {
        return (StatusCode::SERVICE_UNAVAILABLE, Json(Health { status: "stopping".to_owned(), version }));
    }
    match st.store.ping().await {
        Ok(()) => (StatusCode::OK, Json(Health { status: "ready".to_owned(), version })),
        Err(e) => {
            tracing::warn!("readiness: the database does not answer: {e}");
            (StatusCode::SERVICE_UNAVAILABLE, Json(Health { status: "database unavailable".to_owned(), version }))
        }
    }
}

/// Prometheus metrics of this instance and of the shared database (counts only).
pub async fn metrics(State(st): State<AppState>) -> Response {
    match snapshot(&st).await {
        Ok(snap) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
            st.background.metrics.render(&snap),
        )
            .into_response(),
        Err(e) => {
            tracing::warn!("metrics: cannot read the database: {e}");
            (StatusCode::SERVICE_UNAVAILABLE, "the database does not answer\n").into_response()
        }
    }
}

async fn snapshot(st: &AppState) -> Result<Snapshot, berth_store::StoreError> {
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
    let late = Utc::now() - chrono::Duration::from_std(st.config.checks.poll * 2 + st.config.checks.lease).unwrap_or_default();
    for r in st.store.list_repositories().await? {
        let status = if paused.contains(&r.credential_id) {
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
