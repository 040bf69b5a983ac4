//! `/api/v1/config`: configuration as code, adapters over [`crate::service::config`].

use super::extract::ApiJson;
use crate::auth::CurrentUser;
use crate::error::ApiResult;
use crate::service::config;
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use berth_proto::{ConfigApply, ConfigDocument, ConfigPlan, ErrorBody};

/// Make credentials, templates and repositories match `document`: create what is missing,
/// update what differs, and with `prune` delete what it does not name (repositories, then
/// templates, then credentials). `dry_run` answers the plan and changes nothing. Secrets travel
/// in `secrets` (credential name to secret), are compared with the stored ones, and appear in
/// no answer or audit entry. One audit entry names the change set; each change's own entry
/// names it too. A change that fails (a repository whose check fails) is reported with its
/// finding and the others are still made.
#[utoipa::path(post, path = "/api/v1/config/apply", tag = "config", operation_id = "config_apply", request_body = ConfigApply,
    responses((status = 200, description = "the plan (dry run) or what was done; `failed` counts the changes that failed", body = ConfigPlan),
        (status = 403, description = "the caller's role does not allow a change the document needs (`forbidden`)", body = ErrorBody),
        (status = 422, description = "the document names an object twice or a credential nobody has (`invalid_config`), or a bad URL prefix (`invalid_url`)", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn apply(
    State(st): State<AppState>,
    u: CurrentUser,
    ApiJson(req): ApiJson<ConfigApply>,
) -> ApiResult<Json<ConfigPlan>> {
    Ok(Json(config::apply(&st, &u, req).await?))
}

/// The current credentials, templates and repositories as a document `apply` takes. Secrets
/// are references (`{env: BERTH_SECRET_<NAME>}`), never values.
#[utoipa::path(get, path = "/api/v1/config/export", tag = "config", operation_id = "config_export",
    responses((status = 200, body = ConfigDocument)), security(("bearer" = [])))]
pub async fn export(State(st): State<AppState>, u: CurrentUser) -> ApiResult<Json<ConfigDocument>> {
    Ok(Json(config::export(&st, &u).await?))
}
