//! Sign-in with a password and a second factor, and sign-out.

use super::*;
use crate::api::ConnectMeta;
use crate::auth::{self, CurrentUser, Via};
use crate::error::ApiError;
use crate::state::AppState;
use crate::web::views::*;
use crate::web::{cookie, csrf_refused, set_cookie, FormData, Posted, WebResult, LOGIN_CSRF_COOKIE, SESSION_COOKIE};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use chrono::Utc;
use secrecy::SecretString;

pub(super) fn secure(headers: &HeaderMap) -> bool {
    auth::came_over_tls(headers)
}

fn session_ttl(st: &AppState) -> chrono::Duration {
    chrono::Duration::from_std(st.config.session_ttl).unwrap_or(chrono::Duration::hours(12))
}

fn login_page(status: StatusCode, headers: &HeaderMap, username: &str, problem: Option<Problem>) -> Response {
    let csrf = auth::new_csrf_token();
    let page = LoginPage {
        l: Layout { title: "Sign in".into(), ..Layout::default() },
        login_csrf: csrf.clone(),
        username: username.to_owned(),
        problem,
    };
    let mut resp = render(status, &page);
    resp.headers_mut().append(header::SET_COOKIE, set_cookie(LOGIN_CSRF_COOKIE, &csrf, 3600, secure(headers)));
    resp
}

pub async fn login_form(State(st): State<AppState>, headers: HeaderMap, q: Q) -> Response {
    if let Some(token) = cookie(&headers, SESSION_COOKIE) {
        if let Ok(Some(s)) = st.store.web_session(&auth::token_hash(token), Utc::now()).await {
            if !s.mfa_pending {
                return see_other("/");
            }
        }
    }
    let problem =
        q.0.get("signed_out")
            .map(|_| Problem { message: "Your password was changed: sign in again.".into(), ..Problem::default() });
    login_page(StatusCode::OK, &headers, "", problem)
}

/// Starts a browser session and answers with its cookie and a redirect.
async fn start_session(
    st: &AppState,
    headers: &HeaderMap,
    user_id: i64,
    mfa_pending: bool,
    to: &str,
) -> Result<Response, ApiError> {
    let token = auth::new_token();
    let ttl = session_ttl(st);
    st.store
        .create_web_session(user_id, &auth::token_hash(&token), &auth::new_csrf_token(), mfa_pending, Utc::now() + ttl)
        .await?;
    let mut resp = see_other(to);
    let max_age = u64::try_from(ttl.num_seconds()).unwrap_or(3600);
    resp.headers_mut().append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, &token, max_age, secure(headers)));
    resp.headers_mut().append(header::SET_COOKIE, set_cookie(LOGIN_CSRF_COOKIE, "", 0, secure(headers)));
    Ok(resp)
}

pub async fn login(
    State(st): State<AppState>,
    ConnectMeta(remote): ConnectMeta,
    headers: HeaderMap,
    form: FormData,
) -> Response {
    let username = form.get("username");
    let expected = cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or("");
    if expected.is_empty() || !auth::constant_time_eq(expected, &form.get("csrf")) {
        return login_page(StatusCode::FORBIDDEN, &headers, &username, Some(Problem::from_api(&csrf_refused())));
    }
    let password = SecretString::from(form.get("password"));
    let user = match auth::password_login(&st.store, &username, &password, remote.as_deref()).await {
        Ok(u) => u,
        Err(e) => return login_page(e.status, &headers, &username, Some(Problem::from_api(&e))),
    };
    let result: Result<Response, ApiError> = async {
        let has_totp = auth::totp_enabled(&st.store, user.id).await?;
        if !has_totp {
            st.store.clear_login_failures(&user.username).await?;
            CurrentUser::new(user.clone(), remote.clone(), Via::Web)
                .audit(&st.store, "auth.login", "session", None, "web", "password")
                .await;
        }
        start_session(&st, &headers, user.id, has_totp, if has_totp { "/login/2fa" } else { "/" }).await
    }
    .await;
    result.unwrap_or_else(error_page)
}

/// The session waiting for its second factor, if any.
async fn pending_session(st: &AppState, headers: &HeaderMap) -> Option<(String, berth_store::WebSession)> {
    let token = cookie(headers, SESSION_COOKIE)?;
    let hash = auth::token_hash(token);
    let s = st.store.web_session(&hash, Utc::now()).await.ok()??;
    Some((hash, s))
}

pub async fn second_factor_form(State(st): State<AppState>, headers: HeaderMap) -> Response {
    match pending_session(&st, &headers).await {
        Some((_, s)) if s.mfa_pending => {
            let l = Layout { title: "Two-factor sign-in".into(), csrf: s.csrf_token, ..Layout::default() };
            render(StatusCode::OK, &SecondFactorPage { l, problem: None })
        }
        Some(_) => see_other("/"),
        None => see_other("/login"),
    }
}

pub async fn second_factor(
    State(st): State<AppState>,
    ConnectMeta(remote): ConnectMeta,
    headers: HeaderMap,
    form: FormData,
) -> Response {
    let Some((hash, s)) = pending_session(&st, &headers).await.filter(|(_, s)| s.mfa_pending) else {
        return see_other("/login");
    };
    if !auth::constant_time_eq(&form.get("csrf"), &s.csrf_token) {
        return error_page(csrf_refused());
    }
    match auth::second_factor(&st.store, &s.user, &form.get("code"), remote.as_deref()).await {
        Ok(()) => {
            let result: Result<Response, ApiError> = async {
                // A fresh session id once both factors passed.
                st.store.delete_session(&hash).await?;
                st.store.clear_login_failures(&s.user.username).await?;
                CurrentUser::new(s.user.clone(), remote.clone(), Via::Web)
                    .audit(&st.store, "auth.login", "session", None, "web", "password and second factor")
                    .await;
                start_session(&st, &headers, s.user.id, false, "/").await
            }
            .await;
            result.unwrap_or_else(error_page)
        }
        Err(e) => {
            if e.status == StatusCode::TOO_MANY_REQUESTS {
                let _ = st.store.delete_session(&hash).await;
                return login_page(e.status, &headers, &s.user.username, Some(Problem::from_api(&e)));
            }
            let l = Layout { title: "Two-factor sign-in".into(), csrf: s.csrf_token, ..Layout::default() };
            render(e.status, &SecondFactorPage { l, problem: Some(Problem::from_api(&e)) })
        }
    }
}

pub async fn logout(State(st): State<AppState>, headers: HeaderMap, p: Posted) -> WebResult {
    st.store.delete_session(&p.user.token_hash).await?;
    let mut resp = see_other("/login");
    resp.headers_mut().append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, "", 0, secure(&headers)));
    Ok(resp)
}

// ------------------------------------------------------------------------------- repositories
