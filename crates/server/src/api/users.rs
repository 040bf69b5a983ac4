//! `/api/v1/users` (admin only): create users with a role, change roles and passwords, clear a
//! sign-in lockout, reset a second factor, delete. `/api/v1/me` tells any caller who they are.
//! `/api/v1/settings` holds instance-wide security settings. The use cases are in
//! `service::accounts`.

use super::extract::{ApiJson, ApiQuery, PageQuery, UserId};
use crate::auth::CurrentUser;
use crate::error::ApiResult;
use crate::service::accounts;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use berth_proto::{ErrorBody, Me, Page, Settings, User, UserCreate, UserPage, UserUpdate};

/// Who the caller is and what their role allows.
#[utoipa::path(get, path = "/api/v1/me", tag = "users", operation_id = "me_show", responses((status = 200, body = Me)), security(("bearer" = [])))]
pub async fn me(u: CurrentUser) -> Json<Me> {
    Json(accounts::me(&u))
}

/// Users by name (case-insensitive), a page at a time.
#[utoipa::path(get, path = "/api/v1/users", tag = "users", operation_id = "users_list", params(PageQuery),
    responses((status = 200, body = UserPage), (status = 403, description = "the caller's role does not allow it (`forbidden`)", body = ErrorBody),
        (status = 422, description = "a cursor this list did not hand out (`invalid_cursor`)", body = ErrorBody)), security(("bearer" = [])))]
pub async fn list(
    State(st): State<AppState>,
    u: CurrentUser,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<User>>> {
    Ok(Json(accounts::users_page(&st, &u, &q.page()?).await?))
}

/// Create a user with a role.
#[utoipa::path(post, path = "/api/v1/users", tag = "users", operation_id = "users_create", request_body = UserCreate,
    responses((status = 201, body = User), (status = 403, description = "the caller's role does not allow it (`forbidden`)", body = ErrorBody),
        (status = 409, description = "a user has the name (`name_taken`)", body = ErrorBody),
        (status = 422, description = "a bad name, role or password (`invalid_input`)", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create(
    State(st): State<AppState>,
    u: CurrentUser,
    ApiJson(req): ApiJson<UserCreate>,
) -> ApiResult<(StatusCode, Json<User>)> {
    Ok((StatusCode::CREATED, Json(accounts::create_user(&st, &u, req).await?)))
}

/// Change a user's role or reset their password (which ends their sessions).
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users", operation_id = "users_update", params(("id" = i64, Path)), request_body = UserUpdate,
    responses((status = 200, body = User), (status = 403, description = "the caller's role does not allow it (`forbidden`)", body = ErrorBody),
        (status = 409, description = "the change would leave no administrator", body = ErrorBody),
        (status = 422, description = "a bad role or password (`invalid_input`)", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn update(
    State(st): State<AppState>,
    u: CurrentUser,
    UserId(id): UserId,
    ApiJson(req): ApiJson<UserUpdate>,
) -> ApiResult<Json<User>> {
    Ok(Json(accounts::update_user(&st, &u, id, req).await?))
}

#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "users", operation_id = "users_delete", params(("id" = i64, Path)),
    responses((status = 204, description = "deleted"), (status = 403, description = "the caller's role does not allow it (`forbidden`)", body = ErrorBody),
        (status = 409, description = "the last administrator, or the caller themself", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn delete(State(st): State<AppState>, u: CurrentUser, UserId(id): UserId) -> ApiResult<StatusCode> {
    accounts::delete_user(&st, &u, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Clear a user's failed sign-ins and lockout.
#[utoipa::path(delete, path = "/api/v1/users/{id}/lockout", tag = "users", operation_id = "users_lockout_clear", params(("id" = i64, Path)),
    responses((status = 204, description = "cleared"), (status = 403, description = "the caller's role does not allow it (`forbidden`)", body = ErrorBody)), security(("bearer" = [])))]
pub async fn lockout_clear(State(st): State<AppState>, u: CurrentUser, UserId(id): UserId) -> ApiResult<StatusCode> {
    accounts::clear_lockout(&st, &u, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove a user's second factor (a lost phone); they enrol again at next sign-in if required.
#[utoipa::path(delete, path = "/api/v1/users/{id}/totp", tag = "users", operation_id = "users_totp_reset", params(("id" = i64, Path)),
    responses((status = 204, description = "removed"), (status = 403, description = "the caller's role does not allow it (`forbidden`)", body = ErrorBody)), security(("bearer" = [])))]
pub async fn totp_reset(State(st): State<AppState>, u: CurrentUser, UserId(id): UserId) -> ApiResult<StatusCode> {
    accounts::reset_totp(&st, &u, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/settings", tag = "users", operation_id = "settings_show",
    responses((status = 200, body = Settings), (status = 403, description = "the caller's role does not allow it (`forbidden`)", body = ErrorBody)), security(("bearer" = [])))]
pub async fn settings_get(State(st): State<AppState>, u: CurrentUser) -> ApiResult<Json<Settings>> {
    Ok(Json(accounts::settings(&st, &u).await?))
}

/// Change instance-wide security settings, such as requiring two-factor sign-in.
#[utoipa::path(put, path = "/api/v1/settings", tag = "users", operation_id = "settings_update", request_body = Settings,
    responses((status = 200, body = Settings), (status = 403, description = "the caller's role does not allow it (`forbidden`)", body = ErrorBody)), security(("bearer" = [])))]
pub async fn settings_put(
    State(st): State<AppState>,
    u: CurrentUser,
    ApiJson(req): ApiJson<Settings>,
) -> ApiResult<Json<Settings>> {
    Ok(Json(accounts::update_settings(&st, &u, req).await?))
}
