//! `/api/v1/imports`: adapters over [`crate::service::imports`].

use super::extract::{ApiJson, ImportId};
use crate::auth::CurrentUser;
use crate::error::ApiResult;
use crate::service::imports;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use berth_proto::{ErrorBody, Import, ImportCreate, ImportRegister};

/// List the repositories a credential can see in a Bitbucket Cloud workspace, a Bitbucket Data
/// Center project or a GitHub organisation or user, marking those registered already.
#[utoipa::path(post, path = "/api/v1/imports", tag = "imports", operation_id = "imports_create",
    request_body = ImportCreate,
    responses((status = 201, body = Import), (status = 403, description = "the caller's role does not allow it (`forbidden`)", body = ErrorBody),
        (status = 422, description = "the source is not a workspace, project or organisation URL (`invalid_import_source`, `secret_in_url`), no credential was given (`credential_required`) or none has that id or name (`credential_not_found`), or the host refused the listing: its failed step is in `checks` (`auth_failed`, `scope_missing`, `access_denied`, `import_source_not_found`, `rate_limited`, …)", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create(
    State(st): State<AppState>,
    u: CurrentUser,
    ApiJson(req): ApiJson<ImportCreate>,
) -> ApiResult<(StatusCode, Json<Import>)> {
    Ok((StatusCode::CREATED, Json(imports::create(&st, &u, req).await?)))
}

/// An import: every listed repository with its status, and the counts (`total` selected,
/// `done`, `registered`, `failed`, `skipped`).
#[utoipa::path(get, path = "/api/v1/imports/{id}", tag = "imports", operation_id = "imports_show", params(("id" = i64, Path)),
    responses((status = 200, body = Import)), security(("bearer" = [])))]
pub async fn show(State(st): State<AppState>, u: CurrentUser, ImportId(id): ImportId) -> ApiResult<Json<Import>> {
    Ok(Json(imports::show(&st, &u, id).await?))
}

/// Register the named repositories of an import (or all): each is checked and registered as
/// `POST /api/v1/repositories` does, in the background; the answer comes at once and
/// `GET /api/v1/imports/{id}` shows the progress. Already registered ones are skipped; failed
/// ones named again are tried again.
#[utoipa::path(post, path = "/api/v1/imports/{id}/register", tag = "imports", operation_id = "imports_register", params(("id" = i64, Path)),
    request_body = ImportRegister,
    responses((status = 202, body = Import), (status = 403, description = "the caller's role does not allow it (`forbidden`)", body = ErrorBody),
        (status = 409, description = "the import's credential was deleted (`credential_not_found`)", body = ErrorBody),
        (status = 422, description = "neither or both of `repositories` and `all`, or a name the import did not list (`invalid_input`)", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn register(
    State(st): State<AppState>,
    u: CurrentUser,
    ImportId(id): ImportId,
    ApiJson(req): ApiJson<ImportRegister>,
) -> ApiResult<(StatusCode, Json<Import>)> {
    Ok((StatusCode::ACCEPTED, Json(imports::register(&st, &u, id, req).await?)))
}
