//! `/api/v1/tokens`: personal API tokens for automation (use cases in `service::tokens`).

use super::extract::{ApiJson, TokenId};
use crate::auth::CurrentUser;
use crate::error::ApiResult;
use crate::service::tokens;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use berth_proto::{ApiToken, ApiTokenCreate, ApiTokenCreated, ErrorBody};

#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens", operation_id = "tokens_list", responses((status = 200, body = Vec<ApiToken>)), security(("bearer" = [])))]
pub async fn list(State(st): State<AppState>, u: CurrentUser) -> ApiResult<Json<Vec<ApiToken>>> {
    Ok(Json(tokens::list(&st, &u).await?))
}

/// Create a personal API token: the answer is the only time the token is shown.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", operation_id = "tokens_create", request_body = ApiTokenCreate,
    responses((status = 201, body = ApiTokenCreated),
        (status = 403, description = "called with a personal API token: tokens cannot mint tokens (`forbidden`)", body = ErrorBody),
        (status = 422, description = "a bad name or lifetime (`invalid_input`)", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create(
    State(st): State<AppState>,
    u: CurrentUser,
    ApiJson(req): ApiJson<ApiTokenCreate>,
) -> ApiResult<(StatusCode, Json<ApiTokenCreated>)> {
    Ok((StatusCode::CREATED, Json(tokens::create(&st, &u, req).await?)))
}

/// Revoke a personal API token; it stops working at once.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens", operation_id = "tokens_revoke", params(("id" = i64, Path)),
    responses((status = 204, description = "revoked")), security(("bearer" = [])))]
pub async fn revoke(State(st): State<AppState>, u: CurrentUser, TokenId(id): TokenId) -> ApiResult<StatusCode> {
    tokens::revoke(&st, &u, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
