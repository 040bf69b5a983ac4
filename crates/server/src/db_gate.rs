//! A database outage is an outage, not a hang: the layer in front of every handler. While the
//! database is known to be away, requests are answered 503 `database_unavailable` with a
//! `Retry-After` at once (a page for the web UI, the API's error body elsewhere), without
//! waiting on the connection pool; the first request that meets the outage marks it, and
//! `service::ops::watch_database` finds the database back. `/healthz`, `/readyz` (which
//! answers 503 itself) and the static files are served throughout.

use crate::error::{ApiError, DatabaseUnavailable};
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Paths that do not need the database, or answer for it themselves.
fn served_without_database(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz") || path.starts_with("/static/")
}

/// Paths a program calls (JSON answers); everything else is a page.
fn is_api(path: &str) -> bool {
    path.starts_with("/api/") || path.starts_with("/ui/") || path.starts_with("/hooks/") || path == "/metrics"
}

pub async fn db_gate(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    if st.instance.database_down() && !served_without_database(&path) {
        return if is_api(&path) {
            ApiError::database_unavailable().into_response()
        } else {
            crate::web::database_unavailable_page()
        };
    }
    let resp = next.run(req).await;
    if resp.extensions().get::<DatabaseUnavailable>().is_some() {
        st.instance.database_away(&format!("a request to {path} could not reach it"));
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_and_static_files_do_not_wait_for_the_database() {
        assert!(served_without_database("/readyz") && served_without_database("/static/app.css"));
        assert!(!served_without_database("/api/v1/repositories") && !served_without_database("/"));
        assert!(is_api("/api/v1/repositories") && is_api("/ui/clone-url") && !is_api("/repositories/new"));
    }
}
