//! `GET /api/v1/audit` (admin only): every change, newest first (use case in `service::audit`).

use super::extract::{in_range, ApiQuery};
use crate::auth::CurrentUser;
use crate::error::ApiResult;
use crate::service::audit;
use crate::service::paging::{self, PageRequest};
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use berth_proto::{AuditEntry, AuditPage, ErrorBody, Page};
use chrono::{DateTime, Utc};
use serde::Deserialize;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// At most this many entries (1 to 1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// The `next` of the previous page; left out for the first page.
    pub after: Option<String>,
    /// Only entries older than this id (instead of `after`).
    pub before: Option<i64>,
    /// Only entries whose actor contains this, case-insensitively.
    pub actor: Option<String>,
    /// Only entries of this action (`repository.register`, ...).
    pub action: Option<String>,
    /// Only entries whose target ("repository app") contains this, case-insensitively.
    pub target: Option<String>,
    /// Only entries at or after this time (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Only entries before this time (RFC 3339).
    pub until: Option<DateTime<Utc>>,
}

/// The audit log, newest first, a page at a time, filtered by actor, action, target and time.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", operation_id = "audit_list", params(AuditQuery),
    responses((status = 200, body = AuditPage), (status = 403, description = "the caller's role does not allow it (`forbidden`)", body = ErrorBody),
        (status = 422, description = "a cursor this list did not hand out (`invalid_cursor`)", body = ErrorBody)), security(("bearer" = [])))]
pub async fn list(
    State(st): State<AppState>,
    u: CurrentUser,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<Json<Page<AuditEntry>>> {
    let limit = in_range("limit", q.limit, 1, paging::MAX_LIMIT)?;
    let filter = audit::Filter { actor: q.actor, action: q.action, target: q.target, from: q.from, until: q.until };
    Ok(Json(audit::search_page(&st, &u, filter, &PageRequest { after: q.after, limit }, q.before).await?))
}
