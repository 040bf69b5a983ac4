//! `/api/v1/users` (admin only): create users with a role, change roles and passwords, clear a
//! sign-in lockout, reset a second factor, delete. `/api/v1/me` tells any caller who they are.
//! `/api/v1/settings` holds instance-wide security settings.

use super::extract::{ApiJson, IdPath};
use crate::auth::{self, Action, CurrentUser, Role};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use berth_core::Code;
use berth_proto::{ErrorBody, Me, Settings, User, UserCreate, UserUpdate};
use berth_store::UserSummary;
use secrecy::SecretString;

fn to_wire(u: UserSummary) -> User {
    let now = chrono::Utc::now();
    User {
        id: u.id,
        username: u.username,
        role: u.role,
        totp_enabled: u.totp_enabled,
        failed_logins: u.failed_logins,
        locked_until: u.locked_until.filter(|l| *l > now),
        created_at: u.created_at,
        updated_at: u.updated_at,
    }
}

fn parse_role(role: &str) -> ApiResult<Role> {
    Role::parse(role).ok_or_else(|| {
        ApiError::invalid(
            format!("unknown role {:?}", role.chars().take(40).collect::<String>()),
            "use admin, registrar or viewer",
        )
    })
}

fn validate_username(name: &str) -> ApiResult<String> {
    let n = name.trim();
    if n.is_empty() || n.chars().count() > 64 || !n.chars().all(|c| c.is_alphanumeric() || "._-@".contains(c)) {
        return Err(ApiError::invalid(
            "the username must be 1 to 64 letters, digits or . _ - @",
            "choose a name without spaces or other symbols",
        ));
    }
    Ok(n.to_owned())
}

/// Who the caller is and what their role allows.
#[utoipa::path(get, path = "/api/v1/me", tag = "users", responses((status = 200, body = Me), (status = 401, body = ErrorBody)), security(("bearer" = [])))]
pub async fn me(u: CurrentUser) -> Json<Me> {
    Json(Me {
        id: u.user.id,
        username: u.user.username.clone(),
        role: u.role.as_str().to_owned(),
        allowed: auth::Action::ALL.iter().filter(|a| u.may(**a)).map(|a| a.as_str().to_owned()).collect(),
    })
}

pub async fn list_users(st: &AppState, u: &CurrentUser) -> ApiResult<Vec<User>> {
    u.require(Action::ManageUsers)?;
    Ok(st.store.list_users().await?.into_iter().map(to_wire).collect())
}

async fn get_user(st: &AppState, id: i64) -> ApiResult<User> {
    st.store
        .list_users()
        .await?
        .into_iter()
        .find(|x| x.id == id)
        .map(to_wire)
        .ok_or_else(|| ApiError::not_found(berth_store::Entity::User))
}

#[utoipa::path(get, path = "/api/v1/users", tag = "users", responses((status = 200, body = Vec<User>), (status = 403, body = ErrorBody)), security(("bearer" = [])))]
pub async fn list(State(st): State<AppState>, u: CurrentUser) -> ApiResult<Json<Vec<User>>> {
    Ok(Json(list_users(&st, &u).await?))
}

pub async fn create_user(st: &AppState, u: &CurrentUser, req: UserCreate) -> ApiResult<User> {
    u.require(Action::ManageUsers)?;
    let username = validate_username(&req.username)?;
    let role = parse_role(&req.role)?;
    auth::validate_password(&req.password)?;
    let hash = auth::hash_password_async(SecretString::from(req.password)).await?;
    let row = st.store.create_user(&username, &hash, role.as_str()).await?;
    u.audit(&st.store, "user.create", "user", Some(row.id), &row.username, format!("role {}", role.as_str())).await;
    get_user(st, row.id).await
}

/// Create a user with a role.
#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = UserCreate,
    responses((status = 201, body = User), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)), security(("bearer" = [])))]
pub async fn create(
    State(st): State<AppState>,
    u: CurrentUser,
    ApiJson(req): ApiJson<UserCreate>,
) -> ApiResult<(StatusCode, Json<User>)> {
    Ok((StatusCode::CREATED, Json(create_user(&st, &u, req).await?)))
}

pub async fn update_user(st: &AppState, u: &CurrentUser, id: i64, req: UserUpdate) -> ApiResult<User> {
    u.require(Action::ManageUsers)?;
    let target = st.store.get_user(id).await?;
    // Validate everything before changing anything, so a refused password leaves the role as it was.
    if let Some(pw) = &req.password {
        auth::validate_password(pw)?;
    }
    let mut changed = Vec::new();
    if let Some(role) = req.role.as_deref() {
        let role = parse_role(role)?;
        if role.as_str() != target.role {
            // The store refuses to demote the last administrator, atomically.
            st.store.set_role(id, role.as_str()).await?;
            changed.push(format!("role {} -> {}", target.role, role.as_str()));
        }
    }
    if let Some(pw) = req.password {
        let hash = auth::hash_password_async(SecretString::from(pw)).await?;
        // An administrator's reset is the answer to a compromised account: its API tokens go too.
        st.store.set_password(id, &hash, true).await?;
        changed.push("password reset; sessions ended and API tokens revoked".to_owned());
    }
    if !changed.is_empty() {
        u.audit(&st.store, "user.update", "user", Some(id), &target.username, changed.join("; ")).await;
    }
    get_user(st, id).await
}

/// Change a user's role or reset their password (which ends their sessions).
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users", params(("id" = i64, Path)), request_body = UserUpdate,
    responses((status = 200, body = User), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)), security(("bearer" = [])))]
pub async fn update(
    State(st): State<AppState>,
    u: CurrentUser,
    IdPath(id): IdPath,
    ApiJson(req): ApiJson<UserUpdate>,
) -> ApiResult<Json<User>> {
    Ok(Json(update_user(&st, &u, id, req).await?))
}

pub async fn delete_user(st: &AppState, u: &CurrentUser, id: i64) -> ApiResult<()> {
    u.require(Action::ManageUsers)?;
    let target = st.store.get_user(id).await?;
    if target.id == u.user.id {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            Code::InvalidInput,
            "you cannot delete yourself",
            "sign in as another administrator",
        ));
    }
    // The store refuses to delete the last administrator, atomically.
    st.store.delete_user(id).await?;
    st.store.clear_login_failures(&target.username).await?;
    u.audit(&st.store, "user.delete", "user", Some(id), &target.username, format!("role {}", target.role)).await;
    Ok(())
}

#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "users", params(("id" = i64, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)), security(("bearer" = [])))]
pub async fn delete(State(st): State<AppState>, u: CurrentUser, IdPath(id): IdPath) -> ApiResult<StatusCode> {
    delete_user(&st, &u, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn clear_lockout(st: &AppState, u: &CurrentUser, id: i64) -> ApiResult<()> {
    u.require(Action::ManageUsers)?;
    let target = st.store.get_user(id).await?;
    st.store.clear_login_failures(&target.username).await?;
    u.audit(&st.store, "user.lockout_clear", "user", Some(id), &target.username, "failed sign-ins forgotten").await;
    Ok(())
}

/// Clear a user's failed sign-ins and lockout.
#[utoipa::path(delete, path = "/api/v1/users/{id}/lockout", tag = "users", params(("id" = i64, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn lockout_clear(State(st): State<AppState>, u: CurrentUser, IdPath(id): IdPath) -> ApiResult<StatusCode> {
    clear_lockout(&st, &u, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn reset_totp(st: &AppState, u: &CurrentUser, id: i64) -> ApiResult<()> {
    u.require(Action::ManageUsers)?;
    let target = st.store.get_user(id).await?;
    st.store.disable_totp(id).await?;
    u.audit(
        &st.store,
        "user.2fa_reset",
        "user",
        Some(id),
        &target.username,
        "second factor and recovery codes removed",
    )
    .await;
    Ok(())
}

/// Remove a user's second factor (a lost phone); they enrol again at next sign-in if required.
#[utoipa::path(delete, path = "/api/v1/users/{id}/totp", tag = "users", params(("id" = i64, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn totp_reset(State(st): State<AppState>, u: CurrentUser, IdPath(id): IdPath) -> ApiResult<StatusCode> {
    reset_totp(&st, &u, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn get_settings(st: &AppState, u: &CurrentUser) -> ApiResult<Settings> {
    u.require(Action::ManageSettings)?;
    Ok(Settings { require_2fa: auth::require_2fa(&st.store).await? })
}

pub async fn put_settings(st: &AppState, u: &CurrentUser, s: Settings) -> ApiResult<Settings> {
    u.require(Action::ManageSettings)?;
    let before = auth::require_2fa(&st.store).await?;
    st.store.set_setting("require_2fa", if s.require_2fa { "true" } else { "false" }).await?;
    if before != s.require_2fa {
        u.audit(
            &st.store,
            "settings.update",
            "settings",
            None,
            "require_2fa",
            format!("require_2fa {before} -> {}", s.require_2fa),
        )
        .await;
    }
    get_settings(st, u).await
}

#[utoipa::path(get, path = "/api/v1/settings", tag = "users", responses((status = 200, body = Settings), (status = 403, body = ErrorBody)), security(("bearer" = [])))]
pub async fn settings_get(State(st): State<AppState>, u: CurrentUser) -> ApiResult<Json<Settings>> {
    Ok(Json(get_settings(&st, &u).await?))
}

/// Change instance-wide security settings, such as requiring two-factor sign-in.
#[utoipa::path(put, path = "/api/v1/settings", tag = "users", request_body = Settings,
    responses((status = 200, body = Settings), (status = 403, body = ErrorBody)), security(("bearer" = [])))]
pub async fn settings_put(
    State(st): State<AppState>,
    u: CurrentUser,
    ApiJson(req): ApiJson<Settings>,
) -> ApiResult<Json<Settings>> {
    Ok(Json(put_settings(&st, &u, req).await?))
}
