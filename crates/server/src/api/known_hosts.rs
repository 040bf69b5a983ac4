//! `/api/v1/known-hosts`: adapters over [`crate::service::known_hosts`].

use super::extract::{ApiJson, KnownHostId};
use crate::auth::CurrentUser;
use crate::error::ApiResult;
use crate::service::known_hosts;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use berth_proto::{ErrorBody, KnownHost, KnownHostAdd};

/// Every trusted SSH host key: those pinned in Berth (bitbucket.org, github.com, gitlab.com)
/// and those administrators trusted. Administrators only.
#[utoipa::path(get, path = "/api/v1/known-hosts", tag = "known-hosts", operation_id = "known_hosts_list",
    responses((status = 200, body = Vec<KnownHost>), (status = 403, description = "the caller's role does not allow it (`forbidden`)", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(State(st): State<AppState>, u: CurrentUser) -> ApiResult<Json<Vec<KnownHost>>> {
    Ok(Json(known_hosts::list(&st, &u).await?))
}

/// Trust an SSH host key: the key itself, or the `SHA256:` fingerprint of the key the host
/// presents (Berth connects and trusts only a key with that fingerprint). Answers 201 with the
/// key, or 200 when it was trusted already.
#[utoipa::path(post, path = "/api/v1/known-hosts", tag = "known-hosts", operation_id = "known_hosts_add", request_body = KnownHostAdd,
    responses((status = 201, body = KnownHost), (status = 200, description = "the key was trusted already", body = KnownHost),
        (status = 403, description = "the caller's role does not allow it (`forbidden`)", body = ErrorBody),
        (status = 422, description = "the host or key cannot be read (`invalid_input`), the host presents no key with that fingerprint (`host_key_changed`), or cannot be reached (`destination_forbidden`, `connect_failed`, `timeout`, `dns_failed`)", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn add(
    State(st): State<AppState>,
    u: CurrentUser,
    ApiJson(req): ApiJson<KnownHostAdd>,
) -> ApiResult<(StatusCode, Json<KnownHost>)> {
    let (k, created) = known_hosts::add(&st, &u, req).await?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(k)))
}

/// Remove a trusted SSH host key; answers what was removed. Pinned keys cannot be removed.
#[utoipa::path(delete, path = "/api/v1/known-hosts/{id}", tag = "known-hosts", operation_id = "known_hosts_delete", params(("id" = i64, Path)),
    responses((status = 200, body = KnownHost), (status = 403, description = "the caller's role does not allow it (`forbidden`)", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn delete(
    State(st): State<AppState>,
    u: CurrentUser,
    KnownHostId(id): KnownHostId,
) -> ApiResult<Json<KnownHost>> {
    Ok(Json(known_hosts::delete(&st, &u, id).await?))
}
