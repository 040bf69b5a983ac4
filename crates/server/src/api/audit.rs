//! `GET /api/v1/audit` (admin only): every change, newest first.

use crate::auth::{Action, CurrentUser};
use crate::error::ApiResult;
use crate::state::AppState;
use axum::extract::{Query, State};
use axum::Json;
use berth_proto::{AuditEntry, ErrorBody};
use berth_store::AuditRow;
use serde::Deserialize;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Entries older than this id (for paging).
    pub before: Option<i64>,
    /// At most this many entries (default 100, at most 1000).
    pub limit: Option<i64>,
}

pub fn to_wire(r: AuditRow) -> AuditEntry {
    AuditEntry {
        id: r.id,
        at: r.at,
        actor_id: r.actor_id,
        actor: r.actor,
        action: r.action,
        target_kind: r.target_kind,
        target_id: r.target_id,
        target_name: r.target_name,
        detail: r.detail,
        remote_addr: r.remote_addr,
        outcome: r.outcome,
    }
}

pub async fn read_audit(
    st: &AppState,
    u: &CurrentUser,
    before: Option<i64>,
    limit: Option<i64>,
) -> ApiResult<Vec<AuditEntry>> {
    u.require(Action::ReadAudit)?;
    Ok(st.store.list_audit(before, limit.unwrap_or(100)).await?.into_iter().map(to_wire).collect())
}

#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, body = Vec<AuditEntry>), (status = 403, body = ErrorBody)), security(("bearer" = [])))]
pub async fn list(
    State(st): State<AppState>,
    u: CurrentUser,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Json<Vec<AuditEntry>>> {
    Ok(Json(read_audit(&st, &u, q.before, q.limit).await?))
}
