//! The web UI: server-rendered pages (askama templates) that work without JavaScript, with a
//! small script for Refresh and the branch typeahead. Every action calls the same use case as
//! the REST API (`crate::service`), so roles, checks and the audit log are the same wherever a
//! change comes from; pages only decode forms and render.
//!
//! Sessions are the `berth_session` cookie (HttpOnly, SameSite=Strict, Secure behind TLS,
//! Max-Age = session TTL); the database keeps the token's SHA-256 and a CSRF token that every
//! POST must echo. The sign-in form uses a double-submit cookie instead, as there is no session yet.

mod pages;
mod views;

/// The page shown while the database is away (503, `Retry-After`).
pub fn database_unavailable_page() -> axum::response::Response {
    pages::error_page(crate::error::ApiError::database_unavailable())
}

use crate::auth::{self, CurrentUser};
use crate::error::ApiError;
use crate::service::sessions::{self, Browser};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use berth_core::Code;
use tower_http::set_header::SetResponseHeaderLayer;

pub const SESSION_COOKIE: &str = "berth_session";
pub const LOGIN_CSRF_COOKIE: &str = "berth_login_csrf";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(pages::repos))
        .route("/static/app.css", get(pages::css))
        .route("/static/app.js", get(pages::js))
        .route("/login", get(pages::login_form).post(pages::login))
        .route("/login/oidc", get(pages::sso_start))
        .route("/login/oidc/callback", get(pages::sso_callback))
        .route("/login/2fa", get(pages::second_factor_form).post(pages::second_factor))
        .route("/logout", post(pages::logout))
        .route("/repositories", get(pages::repos))
        .route("/repositories/new", get(pages::register_form).post(pages::register))
        .route("/repositories/check-all", post(pages::check_all))
        .route("/repositories/{id}", get(pages::repo))
        .route("/repositories/{id}/edit", get(pages::edit_form).post(pages::edit))
        .route("/repositories/{id}/check", post(pages::check_now))
        .route("/repositories/{id}/delete", post(pages::delete_repo))
        .route("/repositories/{id}/webhook", post(pages::webhook_create))
        .route("/repositories/{id}/webhook/delete", post(pages::webhook_delete))
        .route("/imports/new", get(pages::import_form).post(pages::import_create))
        .route("/imports/{id}", get(pages::import_show))
        .route("/imports/{id}/register", post(pages::import_register))
        .route("/ui/imports/{id}", get(pages::import_json))
        .route("/ui/remote-branches", post(pages::refresh_json))
        .route("/ui/clone-url", post(pages::clone_url_json))
        .route("/credentials", get(pages::credentials))
        .route("/credentials/new", get(pages::credential_form).post(pages::credential_create))
        .route("/credentials/templates", post(pages::template_create))
        .route("/credentials/templates/{id}/delete", post(pages::template_delete))
        .route("/credentials/{id}", get(pages::credential))
        .route("/credentials/{id}/edit", post(pages::credential_edit))
        .route("/credentials/{id}/token", post(pages::credential_token))
        .route("/credentials/{id}/verify", post(pages::credential_verify))
        .route("/credentials/{id}/delete", post(pages::credential_delete))
        .route("/admin/users", get(pages::users).post(pages::user_create))
        .route("/admin/users/{id}/{op}", post(pages::user_op))
        .route("/admin/settings", post(pages::settings))
        .route("/admin/audit", get(pages::audit))
        .route("/admin/notifications", get(pages::notifications).post(pages::notification_create))
        .route("/admin/known-hosts", get(pages::known_hosts_page).post(pages::known_host_add))
        .route("/admin/known-hosts/{id}/delete", post(pages::known_host_delete))
        .route("/admin/notifications/{id}", get(pages::notification_channel))
        .route("/admin/notifications/{id}/test", post(pages::notification_test))
        .route("/admin/notifications/{id}/delete", post(pages::notification_delete))
        .route("/admin/notifications/deliveries/{id}/redeliver", post(pages::notification_redeliver))
        .route("/account", get(pages::account))
        .route("/account/password", post(pages::password))
        .route("/account/2fa", get(pages::totp_page))
        .route("/account/2fa/start", post(pages::totp_start))
        .route("/account/2fa/confirm", post(pages::totp_confirm))
        .route("/account/2fa/disable", post(pages::totp_disable))
        .route("/account/tokens", post(pages::token_create))
        .route("/account/tokens/{id}/revoke", post(pages::token_revoke))
}

/// Security headers on every response, API included.
pub fn secure_headers(router: Router) -> Router {
    let set = |name: &'static str, value: &'static str| {
        SetResponseHeaderLayer::if_not_present(header::HeaderName::from_static(name), HeaderValue::from_static(value))
    };
    router
        .layer(set(
            "content-security-policy",
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        ))
        .layer(set("x-content-type-options", "nosniff"))
        .layer(set("referrer-policy", "no-referrer"))
        .layer(set("x-frame-options", "DENY"))
        .layer(set("cross-origin-opener-policy", "same-origin"))
        .layer(set("permissions-policy", "camera=(), microphone=(), geolocation=()"))
}

// ------------------------------------------------------------------------------- cookies

pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// A `Set-Cookie` value for `name`; `max_age` 0 deletes it.
pub fn set_cookie(name: &str, value: &str, max_age: u64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"))
        .unwrap_or_else(|_| HeaderValue::from_static("berth_invalid=; Max-Age=0"))
}

// ------------------------------------------------------------------------------- the signed-in user

/// A signed-in browser user: the same [`CurrentUser`] the API uses, plus the session's CSRF token.
pub struct WebUser {
    pub cu: CurrentUser,
    pub csrf: String,
    pub token_hash: String,
    pub totp_enabled: bool,
}

/// What a page answers when it cannot be shown.
pub enum WebError {
    /// Not signed in (or the session expired): to the sign-in page.
    Login,
    /// Signed in with the password but not yet the second factor.
    SecondFactor,
    /// Two-factor sign-in is required and the user has none yet.
    Enrol,
    /// An error page with the API's message and remedy, outside the signed-in frame.
    Api(ApiError),
    /// A page already rendered (an error inside the signed-in frame).
    Rendered(Response),
}

impl From<ApiError> for WebError {
    fn from(e: ApiError) -> Self {
        WebError::Api(e)
    }
}

impl From<crate::service::Error> for WebError {
    fn from(e: crate::service::Error) -> Self {
        WebError::Api(e.into())
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        match self {
            WebError::Login => Redirect::to("/login").into_response(),
            WebError::SecondFactor => Redirect::to("/login/2fa").into_response(),
            WebError::Enrol => Redirect::to("/account/2fa").into_response(),
            WebError::Api(e) => pages::error_page(e),
            WebError::Rendered(r) => r,
        }
    }
}

pub type WebResult<T = Response> = Result<T, WebError>;

impl FromRequestParts<AppState> for WebUser {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, WebError> {
        let remote = auth::remote_addr(&parts.extensions, &parts.headers);
        match sessions::browser(st, cookie(&parts.headers, SESSION_COOKIE), remote).await? {
            Browser::SignedOut => Err(WebError::Login),
            Browser::AwaitingSecondFactor { .. } => Err(WebError::SecondFactor),
            Browser::SignedIn(w) => {
                let path = parts.uri.path();
                let enrolling = path.starts_with("/account/2fa") || path == "/logout";
                if w.must_enrol && !enrolling {
                    return Err(WebError::Enrol);
                }
                let w = *w;
                Ok(WebUser { cu: w.caller, csrf: w.csrf, token_hash: w.token_hash, totp_enabled: w.totp_enabled })
            }
        }
    }
}

// ------------------------------------------------------------------------------- forms

/// An `application/x-www-form-urlencoded` body as name/value pairs (repeated names kept).
pub struct FormData(pub Vec<(String, String)>);

impl FormData {
    pub fn get(&self, name: &str) -> String {
        self.0.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or_default()
    }

    pub fn opt(&self, name: &str) -> Option<String> {
        Some(self.get(name).trim().to_owned()).filter(|v| !v.is_empty())
    }

    pub fn all(&self, name: &str) -> Vec<String> {
        self.0.iter().filter(|(k, _)| k == name).map(|(_, v)| v.clone()).collect()
    }
}

impl<S: Send + Sync> FromRequest<S> for FormData {
    type Rejection = WebError;

    async fn from_request(req: Request, state: &S) -> Result<Self, WebError> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|_| WebError::Api(ApiError::invalid("the form could not be read", "send it again")))?;
        Ok(FormData(url::form_urlencoded::parse(&bytes).into_owned().collect()))
    }
}

/// A POSTed form from a signed-in user whose CSRF token matched the session's.
pub struct Posted {
    pub user: WebUser,
    pub form: FormData,
}

pub fn csrf_refused() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        Code::Forbidden,
        "the form's security token did not match your session",
        "reload the page and submit the form again",
    )
}

impl FromRequest<AppState> for Posted {
    type Rejection = WebError;

    async fn from_request(req: Request, st: &AppState) -> Result<Self, WebError> {
        let (mut parts, body) = req.into_parts();
        let user = WebUser::from_request_parts(&mut parts, st).await?;
        let form = FormData::from_request(Request::from_parts(parts, body), st).await?;
        if !auth::constant_time_eq(&form.get("csrf"), &user.csrf) || user.csrf.is_empty() {
            return Err(WebError::Api(csrf_refused()));
        }
        Ok(Posted { user, form })
    }
}
