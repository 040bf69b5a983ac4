//! `/api/v1/tokens`: personal API tokens for automation. Creating one shows the token once;
//! the database keeps its SHA-256. Each user manages their own; revoked tokens stay listed.

use super::extract::{ApiJson, IdPath};
use crate::auth::{self, Action, CurrentUser};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use berth_proto::{ApiToken, ApiTokenCreate, ApiTokenCreated, ErrorBody};
use berth_store::ApiTokenRow;

fn to_wire(t: ApiTokenRow) -> ApiToken {
    ApiToken {
        id: t.id,
        name: t.name,
        user_id: t.user_id,
        created_at: t.created_at,
        expires_at: t.expires_at,
        last_used_at: t.last_used_at,
        revoked_at: t.revoked_at,
    }
}

pub async fn list_tokens(st: &AppState, u: &CurrentUser) -> ApiResult<Vec<ApiToken>> {
    u.require(Action::ManageOwnAccount)?;
    Ok(st.store.list_api_tokens(Some(u.user.id)).await?.into_iter().map(to_wire).collect())
}

#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens", responses((status = 200, body = Vec<ApiToken>)), security(("bearer" = [])))]
pub async fn list(State(st): State<AppState>, u: CurrentUser) -> ApiResult<Json<Vec<ApiToken>>> {
    Ok(Json(list_tokens(&st, &u).await?))
}

pub async fn create_token(st: &AppState, u: &CurrentUser, req: ApiTokenCreate) -> ApiResult<ApiTokenCreated> {
    u.require(Action::ManageOwnAccount)?;
    // A token must not mint tokens: a leaked one could otherwise outlive its own expiry and
    // revocation by creating successors.
    if u.via == crate::auth::Via::ApiToken {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            berth_core::Code::Forbidden,
            "a personal API token cannot create API tokens",
            "create tokens after signing in with a password (My account > API tokens, or POST /api/v1/auth/login)",
        ));
    }
    let name = req.name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "the token name must be 1 to 100 printable characters",
            "name it after the automation that uses it",
        ));
    }
    let expires_at = match req.expires_in_days {
        Some(0) => {
            return Err(ApiError::invalid(
                "expires_in_days must be at least 1",
                "leave it out for a token that does not expire",
            ))
        }
        Some(d) => Some(chrono::Utc::now() + chrono::Duration::days(i64::from(d.min(3650)))),
        None => None,
    };
    let token = auth::new_personal_token();
    let row = st.store.create_api_token(u.user.id, name, &auth::token_hash(&token), expires_at).await?;
    let detail = expires_at.map_or_else(|| "no expiry".to_owned(), |e| format!("expires {}", e.format("%Y-%m-%d")));
    u.audit(&st.store, "token.create", "api_token", Some(row.id), &row.name, detail).await;
    Ok(ApiTokenCreated { token, info: to_wire(row) })
}

/// Create a personal API token: the answer is the only time the token is shown.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = ApiTokenCreate,
    responses((status = 201, body = ApiTokenCreated), (status = 422, body = ErrorBody)), security(("bearer" = [])))]
pub async fn create(
    State(st): State<AppState>,
    u: CurrentUser,
    ApiJson(req): ApiJson<ApiTokenCreate>,
) -> ApiResult<(StatusCode, Json<ApiTokenCreated>)> {
    Ok((StatusCode::CREATED, Json(create_token(&st, &u, req).await?)))
}

pub async fn revoke_token(st: &AppState, u: &CurrentUser, id: i64) -> ApiResult<()> {
    u.require(Action::ManageOwnAccount)?;
    let t = st.store.get_api_token(id).await?;
    // Another user's token is not found, unless an administrator revokes it.
    if t.user_id != u.user.id && !u.may(Action::ManageUsers) {
        return Err(ApiError::not_found(berth_store::Entity::Token));
    }
    st.store.revoke_api_token(id).await?;
    u.audit(&st.store, "token.revoke", "api_token", Some(id), &t.name, format!("owner id {}", t.user_id)).await;
    Ok(())
}

/// Revoke a personal API token; it stops working at once.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens", params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn revoke(State(st): State<AppState>, u: CurrentUser, IdPath(id): IdPath) -> ApiResult<StatusCode> {
    revoke_token(&st, &u, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
