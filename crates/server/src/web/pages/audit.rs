//! Admin > Audit: the audit log, newest first (use case in `service::audit`).

use super::{fail, layout, ok, Q};
use crate::service::audit;
use crate::state::AppState;
use crate::web::views::{when, AuditPage, AuditView};
use crate::web::{WebResult, WebUser};
use axum::extract::State;

pub async fn audit(State(st): State<AppState>, wu: WebUser, q: Q) -> WebResult {
    let before = q.0.get("before").and_then(|v| v.parse().ok());
    let entries = audit::read(&st, &wu.cu, before, Some(audit::PAGE)).await.map_err(fail(&wu))?;
    let older = if entries.len() == usize::try_from(audit::PAGE).unwrap_or(usize::MAX) {
        entries.last().map(|e| e.id)
    } else {
        None
    };
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
    };
    ok(&page)
}
