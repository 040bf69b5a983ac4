//! Sign-in with a password and a second factor, and sign-out (use cases in `service::sessions`).

use super::{error_page, render, see_other, Q};
use crate::api::ConnectMeta;
use crate::auth;
use crate::error::ApiError;
use crate::service::sessions::{self, Browser, NewWebSession};
use crate::service::sso;
use crate::service::Error;
use crate::state::AppState;
use crate::web::views::{Layout, LoginPage, Problem, SecondFactorPage, SignedInPage};
use crate::web::{cookie, csrf_refused, set_cookie, FormData, Posted, WebResult, LOGIN_CSRF_COOKIE, SESSION_COOKIE};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use secrecy::SecretString;

fn secure(headers: &HeaderMap) -> bool {
    auth::came_over_tls(headers)
}

fn login_page(
    st: &AppState,
    status: StatusCode,
    headers: &HeaderMap,
    username: &str,
    problem: Option<Problem>,
) -> Response {
    let csrf = auth::new_csrf_token();
    let oidc = st.config.oidc.as_ref();
    let page = LoginPage {
        l: Layout { title: "Sign in".into(), ..Layout::default() },
        login_csrf: csrf.clone(),
        username: username.to_owned(),
        problem,
        sso_name: oidc.map(|o| o.display_name.clone()),
        password_for_all: oidc.is_none_or(|o| o.local_sign_in),
    };
    let mut resp = render(status, &page);
    resp.headers_mut().append(header::SET_COOKIE, set_cookie(LOGIN_CSRF_COOKIE, &csrf, 3600, secure(headers)));
    resp
}

/// The sign-in form again, with why the attempt was refused.
fn login_refused(st: &AppState, headers: &HeaderMap, username: &str, e: impl Into<ApiError>) -> Response {
    let e = e.into();
    login_page(st, e.status, headers, username, Some(Problem::from_api(&e)))
}

async fn browser(st: &AppState, headers: &HeaderMap) -> Result<Browser, Error> {
    sessions::browser(st, cookie(headers, SESSION_COOKIE), None).await
}

pub async fn login_form(State(st): State<AppState>, headers: HeaderMap, q: Q) -> Response {
    if let Ok(Browser::SignedIn(_)) = browser(&st, &headers).await {
        return see_other("/");
    }
    let problem =
        q.0.get("signed_out")
            .map(|_| Problem { message: "Your password was changed: sign in again.".into(), ..Problem::default() });
    login_page(&st, StatusCode::OK, &headers, "", problem)
}

/// Answers a started session with its cookie and a redirect.
fn session_started(headers: &HeaderMap, s: NewWebSession, to: &str) -> Response {
    let mut resp = see_other(to);
    resp.headers_mut()
        .append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, &s.token, s.max_age_secs, secure(headers)));
    resp.headers_mut().append(header::SET_COOKIE, set_cookie(LOGIN_CSRF_COOKIE, "", 0, secure(headers)));
    resp
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
        return login_refused(&st, &headers, &username, csrf_refused());
    }
    let password = SecretString::from(form.get("password"));
    match sessions::web_sign_in(&st, &username, &password, remote).await {
        Ok(s) => {
            let to = if s.second_factor_pending { "/login/2fa" } else { "/" };
            session_started(&headers, s, to)
        }
        Err(e @ (Error::Unauthenticated(_) | Error::Locked(_) | Error::Refused(_))) => {
            login_refused(&st, &headers, &username, e)
        }
        Err(e) => error_page(e.into()),
    }
}

fn second_factor_page(status: StatusCode, csrf: String, problem: Option<Problem>) -> Response {
    let l = Layout { title: "Two-factor sign-in".into(), csrf, ..Layout::default() };
    render(status, &SecondFactorPage { l, problem })
}

pub async fn second_factor_form(State(st): State<AppState>, headers: HeaderMap) -> Response {
    match browser(&st, &headers).await {
        Ok(Browser::AwaitingSecondFactor { csrf, .. }) => second_factor_page(StatusCode::OK, csrf, None),
        Ok(Browser::SignedIn(_)) => see_other("/"),
        Ok(Browser::SignedOut) | Err(_) => see_other("/login"),
    }
}

pub async fn second_factor(
    State(st): State<AppState>,
    ConnectMeta(remote): ConnectMeta,
    headers: HeaderMap,
    form: FormData,
) -> Response {
    let Ok(Browser::AwaitingSecondFactor { user, csrf, token_hash }) = browser(&st, &headers).await else {
        return see_other("/login");
    };
    if !auth::constant_time_eq(&form.get("csrf"), &csrf) {
        return error_page(csrf_refused());
    }
    match sessions::web_second_factor(&st, &token_hash, &user, &form.get("code"), remote).await {
        Ok(s) => session_started(&headers, s, "/"),
        // The waiting session is gone: start again from the password.
        Err(e @ Error::Locked(_)) => login_refused(&st, &headers, &user.username, e),
        Err(e @ Error::Unauthenticated(_)) => {
            let e = ApiError::from(e);
            second_factor_page(e.status, csrf, Some(Problem::from_api(&e)))
        }
        Err(e) => error_page(e.into()),
    }
}

pub async fn logout(State(st): State<AppState>, headers: HeaderMap, p: Posted) -> WebResult {
    sessions::end_session(&st, &p.user.token_hash).await?;
    let mut resp = see_other("/login");
    resp.headers_mut().append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, "", 0, secure(&headers)));
    Ok(resp)
}

// ------------------------------------------------------------------------------- single sign-on

/// The cookie of a started single sign-on: `SameSite=Lax` (the provider's redirect back is a
/// cross-site navigation, which a `Strict` cookie would not come with), only for its paths.
fn pending_cookie(value: &str, max_age: u64, secure: bool) -> axum::http::HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    axum::http::HeaderValue::from_str(&format!(
        "{}={value}; Path=/login/oidc; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}",
        sso::PENDING_COOKIE
    ))
    .unwrap_or_else(|_| axum::http::HeaderValue::from_static("berth_invalid=; Max-Age=0"))
}

/// `GET /login/oidc`: off to the provider, with this browser's `state`, `nonce` and PKCE
/// verifier in the pending cookie.
pub async fn sso_start(State(st): State<AppState>, headers: HeaderMap) -> Response {
    match sso::start(&st).await {
        Ok(started) => {
            let mut resp = see_other(&started.authorize_url);
            resp.headers_mut().append(
                header::SET_COOKIE,
                pending_cookie(&started.pending, sso::PENDING_MAX_AGE_SECS, secure(&headers)),
            );
            resp
        }
        Err(e) => login_refused(&st, &headers, "", e),
    }
}

/// `GET /login/oidc/callback`: the provider's answer. Signed in, the browser is sent on by a
/// page of Berth's own rather than a redirect: the session cookie is `SameSite=Strict`, and
/// a redirect in a navigation that started at the provider would arrive without it.
pub async fn sso_callback(
    State(st): State<AppState>,
    ConnectMeta(remote): ConnectMeta,
    headers: HeaderMap,
    q: Q,
) -> Response {
    let q = q.0;
    let cb = sso::Callback {
        code: q.get("code").cloned(),
        state: q.get("state").cloned(),
        error: q.get("error").cloned(),
        error_description: q.get("error_description").cloned(),
    };
    let pending = cookie(&headers, sso::PENDING_COOKIE);
    let answer = sso::finish(&st, cb, pending, remote).await;
    let mut resp = match answer {
        Ok(s) => {
            let mut resp =
                render(StatusCode::OK, &SignedInPage { l: Layout { title: "Signed in".into(), ..Layout::default() } });
            resp.headers_mut()
                .append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, &s.token, s.max_age_secs, secure(&headers)));
            resp
        }
        Err(e) => login_refused(&st, &headers, "", e),
    };
    // Used or refused, a pending sign-in is spent.
    resp.headers_mut().append(header::SET_COOKIE, pending_cookie("", 0, secure(&headers)));
    resp
}
