//! The REST API under `/api/v1`, its OpenAPI document at `/api/openapi.json`, and `/healthz`.

pub mod audit;
pub mod credentials;
pub mod extract;
pub mod ops;
pub mod repositories;
pub mod tokens;
pub mod users;

use crate::auth::{self, CurrentUser};
use crate::error::{ApiError, ApiResult};
use crate::service::sessions;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{delete, get, patch, post};
use axum::{Json, Router};
use berth_core::Code;
use berth_proto::*;
use extract::ApiJson;
use secrecy::SecretString;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "Berth", description = "Connect Git hosts to DevOps tooling: credentials stored encrypted, repositories registered after a step-by-step check."),
    paths(
        health, login, logout,
        credentials::create, credentials::list, credentials::show, credentials::update, credentials::delete,
        credentials::verify,
        repositories::remote_branches, repositories::create, repositories::list, repositories::show,
        repositories::update, repositories::delete, repositories::check, repositories::history, repositories::schedule_all,
        ops::readyz,
        users::me, users::list, users::create, users::update, users::delete, users::lockout_clear, users::totp_reset,
        users::settings_get, users::settings_put,
        tokens::list, tokens::create, tokens::revoke,
        audit::list,
    ),
    components(schemas(
        berth_core::Code, berth_core::Step, berth_core::StepName, berth_core::StepStatus, berth_core::Check,
        berth_core::CredentialKind, berth_core::Provider,
    )),
    modifiers(&BearerAuth),
    tags((name = "auth"), (name = "credentials"), (name = "repositories"), (name = "users"), (name = "tokens"), (name = "audit")),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(c) = openapi.components.as_mut() {
            c.add_security_scheme(
                "bearer",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
        }
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(health))
        .route("/api/openapi.json", get(openapi))
        .route("/api/v1/auth/login", post(login))
        .route("/api/v1/auth/logout", post(logout))
        .route("/api/v1/credentials", post(credentials::create).get(credentials::list))
        .route(
            "/api/v1/credentials/{id}",
            get(credentials::show).patch(credentials::update).delete(credentials::delete),
        )
        .route("/api/v1/credentials/{id}/verify", post(credentials::verify))
        .route("/api/v1/remote-branches", post(repositories::remote_branches))
        .route("/api/v1/repositories", post(repositories::create).get(repositories::list))
        .route(
            "/api/v1/repositories/{id}",
            get(repositories::show).patch(repositories::update).delete(repositories::delete),
        )
        .route("/api/v1/repositories/{id}/check", post(repositories::check))
        .route("/api/v1/repositories/{id}/checks", get(repositories::history))
        .route("/api/v1/checks/schedule", post(repositories::schedule_all))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/api/v1/me", get(users::me))
        .route("/api/v1/users", get(users::list).post(users::create))
        .route("/api/v1/users/{id}", patch(users::update).delete(users::delete))
        .route("/api/v1/users/{id}/lockout", delete(users::lockout_clear))
        .route("/api/v1/users/{id}/totp", delete(users::totp_reset))
        .route("/api/v1/settings", get(users::settings_get).put(users::settings_put))
        .route("/api/v1/tokens", get(tokens::list).post(tokens::create))
        .route("/api/v1/tokens/{id}", delete(tokens::revoke))
        .route("/api/v1/audit", get(audit::list))
        .fallback(not_found)
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, Code::NotFound, "no such endpoint", "see /api/openapi.json for the API")
}

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

/// Liveness: open to anyone, says nothing private.
#[utoipa::path(get, path = "/healthz", tag = "auth", responses((status = 200, body = Health)))]
pub async fn health() -> Json<Health> {
    Json(Health { status: "ok".to_owned(), version: env!("CARGO_PKG_VERSION").to_owned() })
}

/// Exchange a username and password for a session token. Five failures within 15 minutes lock
/// the name for 15 minutes (an administrator can clear it). Accounts with two-factor sign-in
/// use personal API tokens for the API instead.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = 401, body = ErrorBody), (status = 429, description = "locked after too many failures", body = ErrorBody)))]
pub async fn login(
    State(st): State<AppState>,
    ConnectMeta(remote): ConnectMeta,
    ApiJson(req): ApiJson<LoginRequest>,
) -> ApiResult<Json<LoginResponse>> {
    let password = SecretString::from(req.password);
    Ok(Json(sessions::api_login(&st, &req.username, &password, remote).await?))
}

/// The caller's address, for the audit log (never refuses).
pub struct ConnectMeta(pub Option<String>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ConnectMeta {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ConnectMeta(auth::remote_addr(&parts.extensions, &parts.headers)))
    }
}

/// End the current session.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", responses((status = 204)), security(("bearer" = [])))]
pub async fn logout(State(st): State<AppState>, _u: CurrentUser, headers: HeaderMap) -> ApiResult<StatusCode> {
    if let Some(token) = auth::caller::bearer_token(&headers) {
        sessions::end_session(&st, &auth::token_hash(token)).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}
