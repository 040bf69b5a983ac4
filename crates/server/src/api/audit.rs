//! `GET /api/v1/audit` (admin only): every change, newest first (use case in `service::audit`).

use super::extract::{in_range, ApiQuery};
use crate::auth::CurrentUser;
use crate::error::ApiResult;
use crate::service::audit;
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use berth_proto::{AuditEntry, ErrorBody};
use serde::Deserialize;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Entries older than this id (for paging).
    pub before: Option<i64>,
    /// At most this many entries (default 100, at most 1000).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", operation_id = "audit_list", params(AuditQuery),
    responses((status = 200, body = Vec<AuditEntry>), (status = 403, description = "the caller's role does not allow it (`forbidden`)", body = ErrorBody)), security(("bearer" = [])))]
pub async fn list(
    State(st): State<AppState>,
    u: CurrentUser,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<Json<Vec<AuditEntry>>> {
    let limit = in_range("limit", q.limit, 1, 1000)?;
    Ok(Json(audit::read(&st, &u, q.before, limit).await?))
}
