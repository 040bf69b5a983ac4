//! Operations endpoints, open to anyone and free of names: `/readyz` (can this instance serve?)
//! and `/metrics` (Prometheus text). `/healthz` (is the process alive?) is beside login.

use crate::service::ops::{self, NotReady};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_proto::Health;

/// Readiness: 200 when the database answers and the instance is not shutting down, else 503,
/// so a load balancer stops sending requests before the process goes away.
#[utoipa::path(get, path = "/readyz", tag = "auth", operation_id = "readiness_show",
    responses((status = 200, body = Health), (status = 503, description = "the database does not answer or the instance is stopping", body = Health)))]
pub async fn readyz(State(st): State<AppState>) -> (StatusCode, Json<Health>) {
    let version = env!("CARGO_PKG_VERSION").to_owned();
    let (code, status) = match ops::readiness(&st).await {
        Ok(()) => (StatusCode::OK, "ready"),
        Err(NotReady::Stopping) => (StatusCode::SERVICE_UNAVAILABLE, "stopping"),
        Err(NotReady::DatabaseUnavailable) => (StatusCode::SERVICE_UNAVAILABLE, "database unavailable"),
    };
    (code, Json(Health { status: status.to_owned(), version }))
}

/// Prometheus metrics of this instance and of the shared database (counts only).
pub async fn metrics(State(st): State<AppState>) -> Response {
    match ops::metrics_text(&st).await {
        Ok(text) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response(),
        Err(e) => {
            tracing::warn!("metrics: cannot read the database: {e:?}");
            (StatusCode::SERVICE_UNAVAILABLE, "the database does not answer\n").into_response()
        }
    }
}
