//! `/api/v1/repositories`, `/api/v1/remote-branches` and `/api/v1/checks/schedule`: adapters
//! over [`crate::service::repositories`] and [`crate::service::checks`].

use super::extract::{ApiJson, ApiQuery, IdPath};
use crate::auth::CurrentUser;
use crate::error::ApiResult;
use crate::service::{checks, repositories};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use berth_core::Check;
use berth_proto::{
    ErrorBody, RemoteBranches, RemoteBranchesRequest, Repository, RepositoryCreate, RepositoryUpdate, Scheduled,
    StoredCheck,
};

/// List the branches of a remote repository and its default branch: the Refresh button.
#[utoipa::path(post, path = "/api/v1/remote-branches", tag = "repositories", request_body = RemoteBranchesRequest,
    responses((status = 200, body = RemoteBranches), (status = 403, body = ErrorBody), (status = 422, description = "a check step failed; `checks` lists every step", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn remote_branches(
    State(st): State<AppState>,
    u: CurrentUser,
    ApiJson(req): ApiJson<RemoteBranchesRequest>,
) -> ApiResult<Json<RemoteBranches>> {
    Ok(Json(repositories::remote_branches(&st, &u, req).await?))
}

/// Register a repository after checking access to it.
#[utoipa::path(post, path = "/api/v1/repositories", tag = "repositories", request_body = RepositoryCreate,
    responses((status = 201, body = Repository), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, description = "invalid input or a failed check with every step", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create(
    State(st): State<AppState>,
    u: CurrentUser,
    ApiJson(req): ApiJson<RepositoryCreate>,
) -> ApiResult<(StatusCode, Json<Repository>)> {
    Ok((StatusCode::CREATED, Json(repositories::register(&st, &u, req).await?)))
}

/// Registered repositories by name, each with its last check (without steps), status and
/// warnings. All of them by default; `limit` and `offset` page through a long list.
#[utoipa::path(get, path = "/api/v1/repositories", tag = "repositories", params(ListQuery),
    responses((status = 200, body = Vec<Repository>), (status = 403, body = ErrorBody)), security(("bearer" = [])))]
pub async fn list(
    State(st): State<AppState>,
    u: CurrentUser,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<Vec<Repository>>> {
    let limit = q.limit.map(|l| l.clamp(1, 10_000));
    Ok(Json(repositories::list(&st, &u, limit, q.offset.unwrap_or(0)).await?))
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// At most this many repositories (1 to 10,000); all when left out.
    pub limit: Option<i64>,
    /// Skip this many first.
    pub offset: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/repositories/{id}", tag = "repositories", params(("id" = i64, Path)),
    responses((status = 200, body = Repository), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn show(State(st): State<AppState>, u: CurrentUser, IdPath(id): IdPath) -> ApiResult<Json<Repository>> {
    Ok(Json(repositories::show(&st, &u, id).await?))
}

/// Update a repository; the result is re-checked before it is saved.
#[utoipa::path(patch, path = "/api/v1/repositories/{id}", tag = "repositories", params(("id" = i64, Path)), request_body = RepositoryUpdate,
    responses((status = 200, body = Repository), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn update(
    State(st): State<AppState>,
    u: CurrentUser,
    IdPath(id): IdPath,
    ApiJson(req): ApiJson<RepositoryUpdate>,
) -> ApiResult<Json<Repository>> {
    Ok(Json(repositories::update(&st, &u, id, req).await?))
}

#[utoipa::path(delete, path = "/api/v1/repositories/{id}", tag = "repositories", params(("id" = i64, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn delete(State(st): State<AppState>, u: CurrentUser, IdPath(id): IdPath) -> ApiResult<StatusCode> {
    repositories::delete(&st, &u, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Re-check a registered repository now and keep the result.
#[utoipa::path(post, path = "/api/v1/repositories/{id}/check", tag = "repositories", params(("id" = i64, Path)),
    responses((status = 200, description = "the check ran; `ok` says whether every step passed", body = Check), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn check(State(st): State<AppState>, u: CurrentUser, IdPath(id): IdPath) -> ApiResult<Json<Check>> {
    Ok(Json(checks::check_now(&st, &u, id).await?))
}

/// A repository's check history, newest first: every check, scheduled or asked for.
#[utoipa::path(get, path = "/api/v1/repositories/{id}/checks", tag = "repositories",
    params(("id" = i64, Path), HistoryQuery),
    responses((status = 200, body = Vec<StoredCheck>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn history(
    State(st): State<AppState>,
    u: CurrentUser,
    IdPath(id): IdPath,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> ApiResult<Json<Vec<StoredCheck>>> {
    Ok(Json(checks::history(&st, &u, id, q.before, q.limit.unwrap_or(50)).await?))
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Only checks older than this check id (for paging).
    pub before: Option<i64>,
    /// At most this many (1 to 1000, default 50).
    pub limit: Option<i64>,
}

/// Check every registered repository as soon as possible ("check all now"). The checks run in
/// the background on whichever instances are running; their results appear in each
/// repository's history.
#[utoipa::path(post, path = "/api/v1/checks/schedule", tag = "repositories",
    responses((status = 200, body = Scheduled), (status = 403, body = ErrorBody)), security(("bearer" = [])))]
pub async fn schedule_all(State(st): State<AppState>, u: CurrentUser) -> ApiResult<Json<Scheduled>> {
    Ok(Json(checks::schedule_all(&st, &u).await?))
}
