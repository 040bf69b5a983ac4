//! The REST API under `/api/v1`, its OpenAPI document at `/api/openapi.json`, and `/healthz`.

pub mod credentials;
pub mod extract;
pub mod repositories;

use crate::auth::{self, CurrentUser};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
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
        repositories::remote_branches, repositories::create, repositories::list, repositories::show,
        repositories::update, repositories::delete, repositories::check,
    ),
    components(schemas(
        berth_core::Code, berth_core::Step, berth_core::StepName, berth_core::StepStatus, berth_core::Check,
        berth_core::CredentialKind, berth_core::Provider,
    )),
    modifiers(&BearerAuth),
    tags((name = "auth"), (name = "credentials"), (name = "repositories")),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(c) = openapi.components.as_mut() {
            c.add_security_scheme("bearer", SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()));
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
        .route("/api/v1/credentials/{id}", get(credentials::show).patch(credentials::update).delete(credentials::delete))
        .route("/api/v1/remote-branches", post(repositories::remote_branches))
        .route("/api/v1/repositories", post(repositories::create).get(repositories::list))
        .route("/api/v1/repositories/{id}", get(repositories::show).patch(repositories::update).delete(repositories::delete))
        .route("/api/v1/repositories/{id}/check", post(repositories::check))
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

/// Exchange a username and password for a session token.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = 401, body = ErrorBody)))]
pub async fn login(State(st): State<AppState>, ApiJson(req): ApiJson<LoginRequest>) -> ApiResult<Json<LoginResponse>> {
    let password = SecretString::from(req.password);
    let Some(user) = auth::authenticate(&st.store, req.username.trim(), &password).await? else {
        tracing::info!("login refused");
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            Code::Unauthenticated,
            "wrong username or password",
            "check both; an administrator can reset a password with `berth admin reset-password`",
        ));
    };
    let token = auth::new_token();
    let ttl = chrono::Duration::from_std(st.config.session_ttl).unwrap_or(chrono::Duration::hours(12));
    let expires_at = chrono::Utc::now() + ttl;
    st.store.create_session(user.id, &auth::token_hash(&token), expires_at).await?;
    tracing::info!(user = user.id, "login");
    Ok(Json(LoginResponse { token, expires_at }))
}

/// End the current session.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", responses((status = 204)), security(("bearer" = [])))]
pub async fn logout(State(st): State<AppState>, _u: CurrentUser, headers: HeaderMap) -> ApiResult<StatusCode> {
    if let Some(token) = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|h| h.strip_prefix("Bearer ")) {
        st.store.delete_session(&auth::token_hash(token.trim())).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}
