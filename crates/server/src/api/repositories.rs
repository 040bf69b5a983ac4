//! `/api/v1/repositories`, `/api/v1/remote-branches` and `/api/v1/checks/schedule`: adapters
//! over [`crate::service::repositories`] and [`crate::service::checks`].

use super::extract::{in_range, ApiJson, ApiQuery, QueryPairs, RepositoryId};
use crate::auth::CurrentUser;
use crate::error::ApiResult;
use crate::service::paging::{self, PageRequest};
use crate::service::{checks, repositories};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use berth_core::{Check, Provider};
use berth_proto::{
    CheckPage, ErrorBody, Page, RemoteBranches, RemoteBranchesRequest, Repository, RepositoryCreate, RepositoryPage,
    RepositoryStatus, RepositoryUpdate, Scheduled, StoredCheck,
};

/// List the branches of a remote repository and its default branch: the Refresh button.
#[utoipa::path(post, path = "/api/v1/remote-branches", tag = "repositories", operation_id = "remote_branches_list",
    request_body = RemoteBranchesRequest,
    responses((status = 200, body = RemoteBranches), (status = 403, description = "the caller's role does not allow it (`forbidden`)", body = ErrorBody),
        (status = 422, description = "a check step failed (its code is the step's; `checks` lists every step), or no credential has that id or name (`credential_not_found`)", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn remote_branches(
    State(st): State<AppState>,
    u: CurrentUser,
    ApiJson(req): ApiJson<RemoteBranchesRequest>,
) -> ApiResult<Json<RemoteBranches>> {
    Ok(Json(repositories::remote_branches(&st, &u, req).await?))
}

/// Register a repository after checking access to it.
#[utoipa::path(post, path = "/api/v1/repositories", tag = "repositories", operation_id = "repositories_create",
    request_body = RepositoryCreate,
    responses((status = 201, body = Repository), (status = 403, description = "the caller's role does not allow it (`forbidden`)", body = ErrorBody),
        (status = 409, description = "the repository is registered already (`already_registered`), a repository has the name (`name_taken`), or the credential was deleted meanwhile (`credential_not_found`)", body = ErrorBody),
        (status = 422, description = "invalid input (`invalid_input`, `unsupported_vcs`, `credential_not_found`) or a failed check with every step in `checks`", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create(
    State(st): State<AppState>,
    u: CurrentUser,
    ApiJson(req): ApiJson<RepositoryCreate>,
) -> ApiResult<(StatusCode, Json<Repository>)> {
    Ok((StatusCode::CREATED, Json(repositories::register(&st, &u, req).await?)))
}

/// Registered repositories by name (case-insensitive), a page at a time, each with its last
/// check (without steps), status and warnings. Filters combine (all must match); `status`
/// repeats for any of several. `next` is the cursor of the following page (pass it as `after`),
/// `total` how many repositories match the filters.
#[utoipa::path(get, path = "/api/v1/repositories", tag = "repositories", operation_id = "repositories_list", params(ListQuery),
    responses((status = 200, body = RepositoryPage),
        (status = 422, description = "a cursor this list did not hand out (`invalid_cursor`), an unknown status or provider (`invalid_input`), or no credential with that id or name (`credential_not_found`)", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(State(st): State<AppState>, u: CurrentUser, q: QueryPairs) -> ApiResult<Json<Page<Repository>>> {
    let limit = in_range("limit", q.int("limit")?, 1, paging::MAX_LIMIT)?;
    let filter = repositories::ListFilter {
        q: q.one("q"),
        statuses: q.all("status"),
        credential: q.one("credential"),
        provider: q.one("provider"),
        host: q.one("host"),
    };
    let page = PageRequest { after: q.one("after"), limit };
    Ok(Json(repositories::list(&st, &u, &filter, &page).await?))
}

/// The parameters of `GET /api/v1/repositories` (read by [`QueryPairs`], documented here).
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ListQuery {
    /// At most this many repositories (1 to 1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// The `next` of the previous page; left out for the first page.
    pub after: Option<String>,
    /// Only repositories whose name or clone URL contains this, case-insensitively.
    pub q: Option<String>,
    /// Only repositories with this status; repeat for any of several.
    #[param(value_type = Option<Vec<RepositoryStatus>>, style = Form, explode)]
    pub status: Option<Vec<String>>,
    /// Only repositories that use this credential (id or name).
    pub credential: Option<String>,
    /// Only repositories of this provider.
    #[param(value_type = Option<Provider>)]
    pub provider: Option<String>,
    /// Only repositories whose clone URL has this host (`host:port` when it has a port).
    pub host: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/repositories/{id}", tag = "repositories", operation_id = "repositories_show", params(("id" = i64, Path)),
    responses((status = 200, body = Repository)), security(("bearer" = [])))]
pub async fn show(
    State(st): State<AppState>,
    u: CurrentUser,
    RepositoryId(id): RepositoryId,
) -> ApiResult<Json<Repository>> {
    Ok(Json(repositories::show(&st, &u, id).await?))
}

/// Update a repository; the result is re-checked before it is saved.
#[utoipa::path(patch, path = "/api/v1/repositories/{id}", tag = "repositories", operation_id = "repositories_update",
    params(("id" = i64, Path)), request_body = RepositoryUpdate,
    responses((status = 200, body = Repository), (status = 403, description = "the caller's role does not allow it (`forbidden`)", body = ErrorBody),
        (status = 409, description = "another registration has the new URL's repository (`already_registered`) or the name (`name_taken`), or the credential was deleted meanwhile (`credential_not_found`)", body = ErrorBody),
        (status = 422, description = "invalid input (`invalid_input`, `credential_not_found`) or a failed check with every step in `checks`", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn update(
    State(st): State<AppState>,
    u: CurrentUser,
    RepositoryId(id): RepositoryId,
    ApiJson(req): ApiJson<RepositoryUpdate>,
) -> ApiResult<Json<Repository>> {
    Ok(Json(repositories::update(&st, &u, id, req).await?))
}

/// Delete a repository. Its webhook on the host, when Berth registered one, is removed first,
/// best effort: when the host refuses, the repository is deleted anyway and the answer is 200
/// with the deleted repository, whose `warnings` say what was left on the host.
#[utoipa::path(delete, path = "/api/v1/repositories/{id}", tag = "repositories", operation_id = "repositories_delete", params(("id" = i64, Path)),
    responses((status = 204, description = "deleted"),
        (status = 200, description = "deleted, but its webhook could not be removed from the host: `warnings` says so (`webhook_refused`)", body = Repository),
        (status = 403, description = "the caller's role does not allow it (`forbidden`)", body = ErrorBody)), security(("bearer" = [])))]
pub async fn delete(
    State(st): State<AppState>,
    u: CurrentUser,
    RepositoryId(id): RepositoryId,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    let gone = repositories::delete(&st, &u, id).await?;
    if gone.warnings.is_empty() {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    Ok((StatusCode::OK, Json(gone)).into_response())
}

/// Re-check a registered repository now and keep the result.
#[utoipa::path(post, path = "/api/v1/repositories/{id}/check", tag = "repositories", operation_id = "repositories_check", params(("id" = i64, Path)),
    responses((status = 200, description = "the check ran; `ok` says whether every step passed", body = Check), (status = 403, description = "the caller's role does not allow it (`forbidden`)", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn check(
    State(st): State<AppState>,
    u: CurrentUser,
    RepositoryId(id): RepositoryId,
) -> ApiResult<Json<Check>> {
    Ok(Json(checks::check_now(&st, &u, id).await?))
}

/// A repository's check history, newest first, a page at a time: every check, scheduled or
/// asked for.
#[utoipa::path(get, path = "/api/v1/repositories/{id}/checks", tag = "repositories", operation_id = "repositories_history",
    params(("id" = i64, Path), HistoryQuery),
    responses((status = 200, body = CheckPage),
        (status = 422, description = "a cursor this list did not hand out (`invalid_cursor`)", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn history(
    State(st): State<AppState>,
    u: CurrentUser,
    RepositoryId(id): RepositoryId,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> ApiResult<Json<Page<StoredCheck>>> {
    let limit = in_range("limit", q.limit, 1, paging::MAX_LIMIT)?;
    let page = PageRequest { after: q.after, limit };
    Ok(Json(checks::history_page(&st, &u, id, &page, q.before).await?))
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// At most this many (1 to 1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// The `next` of the previous page; left out for the first page.
    pub after: Option<String>,
    /// Only checks older than this check id (instead of `after`: to find one check by id).
    pub before: Option<i64>,
}

/// Check every registered repository as soon as possible ("check all now"). The checks run in
/// the background on whichever instances are running; their results appear in each
/// repository's history.
#[utoipa::path(post, path = "/api/v1/checks/schedule", tag = "repositories", operation_id = "checks_schedule",
    responses((status = 200, body = Scheduled), (status = 403, description = "the caller's role does not allow it (`forbidden`)", body = ErrorBody)), security(("bearer" = [])))]
pub async fn schedule_all(State(st): State<AppState>, u: CurrentUser) -> ApiResult<Json<Scheduled>> {
    Ok(Json(checks::schedule_all(&st, &u).await?))
}
