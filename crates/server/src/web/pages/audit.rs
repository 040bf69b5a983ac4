//! Admin > Audit: the audit log, newest first, filtered by actor, action, target and date, and
//! paged (use case in `service::audit`).

use super::{enc, fail, layout, ok, Q};
use crate::service::audit;
use crate::state::AppState;
use crate::web::views::{when, AuditPage, AuditView, Problem};
use crate::web::{WebResult, WebUser};
use axum::extract::State;
use chrono::{DateTime, Days, NaiveDate, Utc};

/// A `YYYY-MM-DD` from the form as the start of that day (UTC); an unreadable date is refused
/// by name.
fn day(q: &Q, key: &str) -> Result<Option<NaiveDate>, String> {
    match q.0.get(key).map(|v| v.trim()).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => NaiveDate::parse_from_str(v, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| format!("{:?} is not a date", v.chars().take(40).collect::<String>())),
    }
}

fn start_of(d: NaiveDate) -> Option<DateTime<Utc>> {
    d.and_hms_opt(0, 0, 0).map(|t| t.and_utc())
}

pub async fn audit(State(st): State<AppState>, wu: WebUser, q: Q) -> WebResult {
    let text = |k: &str| q.0.get(k).map(|v| v.trim().to_owned()).unwrap_or_default();
    let (actor, action, target) = (text("actor"), text("action"), text("target"));
    let (from, to) = (day(&q, "from"), day(&q, "to"));
    let mut problem = None;
    let (from, to) = match (from, to) {
        (Ok(f), Ok(t)) => (f, t),
        (Err(e), _) | (_, Err(e)) => {
            problem = Some(Problem {
                message: e,
                remedy: "Use the date picker or YYYY-MM-DD.".into(),
                code: "invalid_input".into(),
                ..Problem::default()
            });
            (None, None)
        }
    };
    let filter = audit::Filter {
        actor: Some(actor.clone()).filter(|s| !s.is_empty()),
        action: Some(action.clone()).filter(|s| !s.is_empty()),
        target: Some(target.clone()).filter(|s| !s.is_empty()),
        from: from.and_then(start_of),
        // "To" is inclusive: entries before the start of the next day.
        until: to.and_then(|d| d.checked_add_days(Days::new(1))).and_then(start_of),
    };
    let before = q.0.get("before").and_then(|v| v.parse().ok());
    let entries = audit::search(&st, &wu.cu, filter, before, audit::PAGE).await.map_err(fail(&wu))?;
    let actions = audit::actions(&st, &wu.cu).await.map_err(fail(&wu))?;
    let older = if entries.len() == usize::try_from(audit::PAGE).unwrap_or(usize::MAX) {
        entries.last().map(|e| e.id)
    } else {
        None
    };
    let (from, to) = (from.map(|d| d.to_string()).unwrap_or_default(), to.map(|d| d.to_string()).unwrap_or_default());
    // The filter as a query string, kept by the paging links.
    let query: String = [("actor", &actor), ("action", &action), ("target", &target), ("from", &from), ("to", &to)]
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}&", enc(v)))
        .collect();
    let filtered = !query.is_empty();
    let page = AuditPage {
        l: layout(&wu, "Audit log", "audit"),
        entries: entries
            .into_iter()
            .map(|e| AuditView {
                at: when(e.at),
                actor: e.actor,
                action: e.action,
                target: if e.target_name.is_empty() {
                    e.target_kind
                } else {
                    format!("{} {}", e.target_kind, e.target_name)
                },
                detail: e.detail,
                remote: e.remote_addr.unwrap_or_default(),
                outcome: e.outcome,
            })
            .collect(),
        older,
        paged: before.is_some(),
        query,
        filtered,
        actor,
        action,
        target,
        from,
        to,
        actions,
        problem,
    };
    ok(&page)
}
