//! The REST API under `/api/v1`, its OpenAPI document at `/api/openapi.json`, and `/healthz`.

pub mod audit;
pub mod config;
pub mod credentials;
pub mod extract;
pub mod host_webhooks;
pub mod imports;
pub mod known_hosts;
pub mod notifications;
pub mod ops;
pub mod repositories;
pub mod templates;
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
        templates::create, templates::list, templates::delete, templates::explain,
        config::apply, config::export,
        imports::create, imports::show, imports::register,
        notifications::create, notifications::list, notifications::show, notifications::update, notifications::delete,
        notifications::test, notifications::deliveries, notifications::redeliver,
        known_hosts::list, known_hosts::add, known_hosts::delete,
        host_webhooks::create, host_webhooks::delete, host_webhooks::branches, host_webhooks::receive,
    ),
    components(schemas(
        berth_core::Code, berth_core::Step, berth_core::StepName, berth_core::StepStatus, berth_core::Check,
        berth_core::CredentialKind, berth_core::Provider,
    )),
    modifiers(&BearerAuth, &RequestErrors),
    tags((name = "auth"), (name = "credentials"), (name = "repositories"), (name = "users"), (name = "tokens"), (name = "audit"),
        (name = "templates"), (name = "config"), (name = "imports"), (name = "notifications"),
        (name = "known-hosts"), (name = "webhooks")),
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

/// The 4xx answers every operation can give because of how its request is read, documented
/// from the operation's own shape so no handler can forget one: 401 wherever a bearer token is
/// required (the `CurrentUser` extractor), 400, 413, 415 and 422 wherever a JSON body is read
/// (`ApiJson`), 404 wherever the path names a resource by id (`CredentialId` and the like) and
/// 400 wherever query parameters are read (`ApiQuery`, `in_range`). A handler's own
/// description of a status is kept.
struct RequestErrors;

impl Modify for RequestErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let ops = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
            for op in ops.into_iter().flatten() {
                document_request_errors(path, op);
            }
        }
    }
}

fn document_request_errors(path: &str, op: &mut utoipa::openapi::path::Operation) {
    use utoipa::openapi::path::ParameterIn;
    let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
    let has_body = op.request_body.is_some();
    let has_query = op.parameters.iter().flatten().any(|p| matches!(p.parameter_in, ParameterIn::Query));
    let mut add = |status: &str, description: &str| {
        op.responses.responses.entry(status.to_owned()).or_insert_with(|| error_response(description).into());
    };
    if secured {
        add("401", "no valid session or API token was sent, or it expired (`unauthenticated`)");
    }
    if has_body {
        add("400", "the body is not valid JSON (`invalid_input`)");
        add("413", "the body is too large (`invalid_input`)");
        add("415", "the body is not sent as `Content-Type: application/json` (`invalid_input`)");
        add(
            "422",
            "the JSON does not fit the request schema: a wrong type, a missing or unknown field (`invalid_input`)",
        );
    } else if has_query {
        add("400", "a query parameter does not parse or is out of its range (`invalid_input`)");
    }
    if let Some(entity) = path_entity(path) {
        let code = crate::service::not_found_code(entity);
        add("404", &format!("no {entity} has this id, or the id is not a number (`{code}`)"));
    }
    // Every route but the liveness probe reads or writes the database (`db_gate`); `/readyz`
    // documents its own 503.
    if path != "/healthz" {
        op.responses.responses.entry("503".to_owned()).or_insert_with(|| database_unavailable_response().into());
    }
}

/// 503 while the database is away: nothing was read or changed; `Retry-After` says when to try.
fn database_unavailable_response() -> utoipa::openapi::Response {
    use utoipa::openapi::{header::HeaderBuilder, ContentBuilder, ObjectBuilder, Ref, ResponseBuilder, Type};
    let content = ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build();
    let retry_after = HeaderBuilder::new()
        .schema(ObjectBuilder::new().schema_type(Type::Integer))
        .description(Some("seconds to wait before trying again"))
        .build();
    ResponseBuilder::new()
        .description(
            "the database is unavailable (down, restarting, or on SQLite locked, read-only or full): nothing was read \
             or changed; try again after `Retry-After` seconds (`database_unavailable`)",
        )
        .content("application/json", content)
        .header("Retry-After", retry_after)
        .build()
}

/// The resource a path names by id, for its 404.
fn path_entity(path: &str) -> Option<crate::service::Entity> {
    use crate::service::Entity;
    if !path.contains("{id}") {
        return None;
    }
    let collection = path.trim_start_matches("/api/v1/").split('/').next()?;
    Some(match collection {
        "credentials" => Entity::Credential,
        "repositories" => Entity::Repository,
        "users" => Entity::User,
        "tokens" => Entity::Token,
        "credential-templates" => Entity::Template,
        "imports" => Entity::Import,
        "notification-channels" => Entity::NotificationChannel,
        "notification-deliveries" => Entity::NotificationDelivery,
        "known-hosts" => Entity::KnownHost,
        _ => return None,
    })
}

fn error_response(description: &str) -> utoipa::openapi::Response {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    let content = ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build();
    ResponseBuilder::new().description(description).content("application/json", content).build()
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
        .route("/api/v1/repositories/{id}/branches", get(host_webhooks::branches))
        .route("/api/v1/repositories/{id}/webhook", post(host_webhooks::create).delete(host_webhooks::delete))
        .route("/hooks/{provider}/{id}", post(host_webhooks::receive))
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
        .route("/api/v1/credential-templates", post(templates::create).get(templates::list))
        .route("/api/v1/credential-templates/match", get(templates::explain))
        .route("/api/v1/credential-templates/{id}", delete(templates::delete))
        .route("/api/v1/known-hosts", get(known_hosts::list).post(known_hosts::add))
        .route("/api/v1/known-hosts/{id}", delete(known_hosts::delete))
        .route("/api/v1/config/apply", post(config::apply))
        .route("/api/v1/config/export", get(config::export))
        .route("/api/v1/imports", post(imports::create))
        .route("/api/v1/imports/{id}", get(imports::show))
        .route("/api/v1/imports/{id}/register", post(imports::register))
        .route("/api/v1/notification-channels", post(notifications::create).get(notifications::list))
        .route(
            "/api/v1/notification-channels/{id}",
            get(notifications::show).patch(notifications::update).delete(notifications::delete),
        )
        .route("/api/v1/notification-channels/{id}/test", post(notifications::test))
        .route("/api/v1/notification-channels/{id}/deliveries", get(notifications::deliveries))
        .route("/api/v1/notification-deliveries/{id}/redeliver", post(notifications::redeliver))
        // Applies to the routes above only, so it comes after them. axum still sends `Allow`.
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, Code::NotFound, "no such endpoint", "see /api/openapi.json for the API")
}

async fn method_not_allowed(method: axum::http::Method) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        Code::MethodNotAllowed,
        format!("this endpoint does not take {method}"),
        "the Allow header lists the methods it takes; see /api/openapi.json for the API",
    )
}

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

/// Liveness: open to anyone, says nothing private.
#[utoipa::path(get, path = "/healthz", tag = "auth", operation_id = "health_show", responses((status = 200, body = Health)))]
pub async fn health() -> Json<Health> {
    Json(Health { status: "ok".to_owned(), version: env!("CARGO_PKG_VERSION").to_owned() })
}

/// Exchange a username and password for a session token. Five failures within 15 minutes lock
/// the name for 15 minutes (an administrator can clear it). Accounts with two-factor sign-in
/// use personal API tokens for the API instead.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", operation_id = "auth_login", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse),
        (status = 401, description = "wrong name or password, or the account signs in with a second factor (`unauthenticated`)", body = ErrorBody),
        (status = 429, description = "locked after too many failures (`account_locked`)", body = ErrorBody)))]
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
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", operation_id = "auth_logout",
    responses((status = 204, description = "signed out")), security(("bearer" = [])))]
pub async fn logout(State(st): State<AppState>, _u: CurrentUser, headers: HeaderMap) -> ApiResult<StatusCode> {
    if let Some(token) = auth::caller::bearer_token(&headers) {
        sessions::end_session(&st, &auth::token_hash(token)).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}
