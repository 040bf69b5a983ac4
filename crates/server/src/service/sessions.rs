//! Signing in and out: the password, the second factor, failure counting and lockout, API and
//! browser sessions, and finding the caller behind a bearer token or a session cookie.
//!
//! Every failed attempt (password or second factor, API or web) counts against the name typed,
//! known or not; [`MAX_LOGIN_FAILURES`] within [`FAILURE_WINDOW_MINUTES`] lock it for
//! [`LOCKOUT_MINUTES`]. The count lives in the database, so every instance shares it.

use crate::auth::{self, CurrentUser, Via};
use crate::service::{audit, Error, Refusal, Result};
use crate::state::AppState;
use berth_core::Code;
use berth_proto::{AuditOutcome, LoginResponse};
use berth_store::{Store, User};
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};

/// Failed sign-ins (password or second factor) allowed per name within [`FAILURE_WINDOW_MINUTES`].
pub const MAX_LOGIN_FAILURES: i64 = 5;
pub const FAILURE_WINDOW_MINUTES: i64 = 15;
/// How long a name stays locked after too many failures (an administrator can clear it).
pub const LOCKOUT_MINUTES: i64 = 15;

// ------------------------------------------------------------------------------- refusals

/// No bearer token, or one that opens nothing.
pub fn no_session() -> Refusal {
    Refusal::new(
        Code::Unauthenticated,
        "missing, invalid or expired session token",
        "log in with POST /api/v1/auth/login (or `berth login`) and send Authorization: Bearer <token>",
    )
}

fn wrong_password() -> Error {
    Error::Unauthenticated(Refusal::new(
        Code::Unauthenticated,
        "wrong username or password",
        "check both; an administrator can reset a password with `berth admin reset-password`",
    ))
}

fn wrong_code() -> Error {
    Error::Unauthenticated(Refusal::new(
        Code::Unauthenticated,
        "that code is not valid",
        "enter the current 6-digit code from your authenticator app, or one of your recovery codes",
    ))
}

fn locked(username: &str, until: DateTime<Utc>) -> Error {
    Error::Locked(Refusal::new(
        Code::AccountLocked,
        format!(
            "sign-in for {:?} is locked until {} UTC after {MAX_LOGIN_FAILURES} failed attempts",
            username.chars().take(64).collect::<String>(),
            until.format("%Y-%m-%d %H:%M")
        ),
        "wait until then, or ask an administrator to clear the lockout",
    ))
}

// ------------------------------------------------------------------------------- the factors

/// Counts a failed attempt for `username` and audits it; locks the name at the limit. Answers
/// the refusal to give: locked, or `otherwise`.
async fn count_failure(store: &Store, username: &str, remote: Option<&str>, action: &str, otherwise: Error) -> Error {
    let counted: Result<Option<DateTime<Utc>>> = async {
        let lockout = chrono::Duration::minutes(LOCKOUT_MINUTES);
        let window = chrono::Duration::minutes(FAILURE_WINDOW_MINUTES);
        let f = store.record_login_failure(username, Utc::now(), window, MAX_LOGIN_FAILURES, lockout).await?;
        let detail = format!("failure {} of {MAX_LOGIN_FAILURES}", f.failures);
        audit::unproven(store, username, action, AuditOutcome::Failed, detail, remote).await?;
        if f.failures == MAX_LOGIN_FAILURES && f.locked_until.is_some() {
            let detail = format!("locked for {LOCKOUT_MINUTES} minutes");
            audit::unproven(store, username, "auth.locked_out", AuditOutcome::Denied, detail, remote).await?;
        }
        Ok(f.locked_until)
    }
    .await;
    match counted {
        Ok(Some(until)) => locked(username, until),
        Ok(None) => otherwise,
        Err(e) => e,
    }
}

/// Refuses a name that is locked out.
async fn refuse_locked(store: &Store, username: &str) -> Result<()> {
    match store.locked_until(username, Utc::now()).await? {
        Some(until) => Err(locked(username, until)),
        None => Ok(()),
    }
}

/// First factor: username and password, with rate limiting and lockout shared through the
/// database. Every failure counts against the name, known or not; the answer never says which
/// part was wrong.
pub(crate) async fn check_password(
    store: &Store,
    username: &str,
    password: &SecretString,
    remote: Option<&str>,
) -> Result<User> {
    let username = username.trim();
    if username.is_empty() || username.len() > 200 {
        return Err(wrong_password());
    }
    refuse_locked(store, username).await?;
    let user = store.find_user(username).await?;
    let ok = auth::secrets::verify_password_async(password, user.as_ref().map(|u| u.password_hash.clone())).await;
    match user.filter(|_| ok) {
        Some(user) => Ok(user),
        None => {
            tracing::info!("login refused");
            Err(count_failure(store, username, remote, "auth.login_failed", wrong_password()).await)
        }
    }
}

/// Second factor: a current TOTP code or an unused recovery code, counted like a password.
pub(crate) async fn check_second_factor(store: &Store, user: &User, code: &str, remote: Option<&str>) -> Result<()> {
    refuse_locked(store, &user.username).await?;
    let code = code.trim();
    let digits: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    let ok = if digits.len() == 6 && digits.bytes().all(|b| b.is_ascii_digit()) {
        let secret = store.totp_secret(user.id).await?;
        match auth::totp::verify(secret.expose_secret(), &digits, Utc::now().timestamp()) {
            Some(step) => store.use_totp_step(user.id, step).await?,
            None => false,
        }
    } else {
        store.use_recovery_code(user.id, &auth::recovery_code_hash(code)).await?
    };
    if ok {
        return Ok(());
    }
    Err(count_failure(store, &user.username, remote, "auth.second_factor_failed", wrong_code()).await)
}

/// Whether the instance requires two-factor sign-in of everyone.
pub(crate) async fn second_factor_required(store: &Store) -> Result<bool> {
    Ok(store.setting("require_2fa").await?.is_some_and(|v| v == "true"))
}

pub(crate) async fn has_second_factor(store: &Store, user_id: i64) -> Result<bool> {
    Ok(store.totp_state(user_id).await?.is_some_and(|t| t.enabled))
}

/// With single sign-on and `local_sign_in = false`, only the break-glass names may use a
/// password (checked before the password, and not counted as a failure: nothing was tried).
fn refuse_password_if_turned_off(st: &AppState, username: &str) -> Result<()> {
    match &st.config.oidc {
        Some(o) if !o.password_allowed(username) => Err(Error::Refused(Refusal::new(
            Code::LocalSignInDisabled,
            format!("password sign-in is turned off on this Berth: sign in with {}", o.display_name),
            format!(
                "use \"Sign in with {}\" on the sign-in page; scripts and the CLI use a personal API token (My account \
                 > API tokens; the CLI reads it from BERTH_TOKEN)",
                o.display_name
            ),
        ))),
        _ => Ok(()),
    }
}

/// Whether a password sign-in by this name is a break-glass one (password sign-in is
/// otherwise turned off): it is audited and logged as such.
fn break_glass(st: &AppState) -> bool {
    st.config.oidc.as_ref().is_some_and(|o| !o.local_sign_in)
}

/// The password of a sign-in, and whether a second factor must follow it.
async fn first_factor(
    st: &AppState,
    username: &str,
    password: &SecretString,
    remote: Option<&str>,
) -> Result<(User, bool)> {
    refuse_password_if_turned_off(st, username)?;
    let user = check_password(&st.store, username, password, remote).await?;
    let has_totp = has_second_factor(&st.store, user.id).await?;
    Ok((user, has_totp))
}

/// Both factors passed: the name's failures are forgotten and the sign-in audited.
async fn signed_in(
    st: &AppState,
    user: &User,
    remote: Option<String>,
    via: Via,
    target: &str,
    detail: impl Into<String>,
) -> Result<()> {
    let detail = detail.into();
    st.store.clear_login_failures(&user.username).await?;
    tracing::info!(user = user.id, "login");
    CurrentUser::new(user.clone(), remote, via).audit(&st.store, "auth.login", "session", None, target, detail).await;
    Ok(())
}

fn password_detail(st: &AppState, how: &str) -> String {
    if break_glass(st) {
        tracing::warn!("break-glass password sign-in while single sign-on is the way in");
        format!("{how} (break-glass: password sign-in is otherwise turned off)")
    } else {
        how.to_owned()
    }
}

fn session_ttl(st: &AppState) -> chrono::Duration {
    chrono::Duration::from_std(st.config.session_ttl).unwrap_or(chrono::Duration::hours(12))
}

// ------------------------------------------------------------------------------- the API

/// `POST /api/v1/auth/login`: a password for a session token. Accounts with a second factor (or
/// without one where it is required) are refused: they use personal API tokens.
pub async fn api_login(
    st: &AppState,
    username: &str,
    password: &SecretString,
    remote: Option<String>,
) -> Result<LoginResponse> {
    let (user, has_totp) = first_factor(st, username, password, remote.as_deref()).await?;
    if has_totp || second_factor_required(&st.store).await? {
        let message = if has_totp {
            "this account signs in with a second factor, which the password login of the API cannot take"
        } else {
            "two-factor sign-in is required and this account has not set it up"
        };
        return Err(Error::Unauthenticated(Refusal::new(
            Code::Unauthenticated,
            message,
            "sign in on the web (set up two-factor sign-in if asked), then create a personal API token under My account and send it as Authorization: Bearer <token>",
        )));
    }
    let token = auth::new_token();
    let expires_at = Utc::now() + session_ttl(st);
    st.store.create_session(user.id, &auth::token_hash(&token), expires_at).await?;
    signed_in(st, &user, remote, Via::Session, "api", password_detail(st, "API session")).await?;
    Ok(LoginResponse { token, expires_at })
}

/// The caller behind a bearer token: a session, else a personal API token.
pub async fn bearer_caller(st: &AppState, token: Option<&str>, remote: Option<String>) -> Result<CurrentUser> {
    let Some(token) = token else { return Err(Error::Unauthenticated(no_session())) };
    let hash = auth::token_hash(token);
    let now = Utc::now();
    if let Some(user) = st.store.session_user(&hash, now).await? {
        return Ok(CurrentUser::new(user, remote, Via::Session));
    }
    if let Some(user) = st.store.api_token_user(&hash, now).await? {
        return Ok(CurrentUser::new(user, remote, Via::ApiToken));
    }
    Err(Error::Unauthenticated(no_session()))
}

/// Ends the session a token opens (API) or whose hash a cookie named (web); nothing if none.
pub async fn end_session(st: &AppState, token_hash: &str) -> Result<()> {
    Ok(st.store.delete_session(token_hash).await?)
}

// ------------------------------------------------------------------------------- the browser

/// A browser session just started: its token goes into the cookie.
#[derive(Debug)]
pub struct NewWebSession {
    pub token: String,
    pub max_age_secs: u64,
    /// Signed in with the password only: the second factor is still to come.
    pub second_factor_pending: bool,
}

/// What a session cookie opens.
#[derive(Debug)]
pub enum Browser {
    /// No cookie, or one that opens no live session.
    SignedOut,
    /// The password passed; the second factor has not.
    AwaitingSecondFactor {
        user: User,
        csrf: String,
        token_hash: String,
    },
    SignedIn(Box<WebCaller>),
}

/// A signed-in browser user: the caller, the session's CSRF token and second-factor facts.
#[derive(Debug)]
pub struct WebCaller {
    pub caller: CurrentUser,
    pub csrf: String,
    pub token_hash: String,
    pub totp_enabled: bool,
    /// Two-factor sign-in is required and this user has not set it up: only enrolment is open.
    pub must_enrol: bool,
}

/// The browser session of a cookie's token.
pub async fn browser(st: &AppState, token: Option<&str>, remote: Option<String>) -> Result<Browser> {
    let Some(token) = token else { return Ok(Browser::SignedOut) };
    let token_hash = auth::token_hash(token);
    let Some(s) = st.store.web_session(&token_hash, Utc::now()).await? else { return Ok(Browser::SignedOut) };
    if s.mfa_pending {
        return Ok(Browser::AwaitingSecondFactor { user: s.user, csrf: s.csrf_token, token_hash });
    }
    let totp_enabled = has_second_factor(&st.store, s.user.id).await?;
    // Single sign-on users prove the second factor to their provider, not to Berth.
    let must_enrol =
        !totp_enabled && second_factor_required(&st.store).await? && !st.store.is_sso_user(s.user.id).await?;
    let caller = CurrentUser::new(s.user, remote, Via::Web);
    Ok(Browser::SignedIn(Box::new(WebCaller { caller, csrf: s.csrf_token, token_hash, totp_enabled, must_enrol })))
}

async fn start_web_session(st: &AppState, user_id: i64, second_factor_pending: bool) -> Result<NewWebSession> {
    let token = auth::new_token();
    let ttl = session_ttl(st);
    let csrf = auth::new_csrf_token();
    st.store
        .create_web_session(user_id, &auth::token_hash(&token), &csrf, second_factor_pending, Utc::now() + ttl)
        .await?;
    let max_age_secs = u64::try_from(ttl.num_seconds()).unwrap_or(3600);
    Ok(NewWebSession { token, max_age_secs, second_factor_pending })
}

/// The sign-in form: a password opens a session, complete or waiting for the second factor.
pub async fn web_sign_in(
    st: &AppState,
    username: &str,
    password: &SecretString,
    remote: Option<String>,
) -> Result<NewWebSession> {
    let (user, has_totp) = first_factor(st, username, password, remote.as_deref()).await?;
    if !has_totp {
        signed_in(st, &user, remote, Via::Web, "web", password_detail(st, "password")).await?;
    }
    start_web_session(st, user.id, has_totp).await
}

/// The OpenID provider vouched for `user` (`service::sso`): a complete web session.
pub(crate) async fn sso_signed_in(
    st: &AppState,
    user: &User,
    remote: Option<String>,
    provider: &str,
) -> Result<NewWebSession> {
    signed_in(st, user, remote, Via::Web, "web", format!("single sign-on ({provider})")).await?;
    start_web_session(st, user.id, false).await
}

/// The second-factor form of a session waiting for it. Passing replaces the session with a
/// fresh one; a lockout ends the waiting session, so the user starts again with the password.
pub async fn web_second_factor(
    st: &AppState,
    pending_token_hash: &str,
    user: &User,
    code: &str,
    remote: Option<String>,
) -> Result<NewWebSession> {
    if let Err(e) = check_second_factor(&st.store, user, code, remote.as_deref()).await {
        if matches!(e, Error::Locked(_)) {
            let _ = st.store.delete_session(pending_token_hash).await;
        }
        return Err(e);
    }
    // A fresh session id once both factors passed.
    st.store.delete_session(pending_token_hash).await?;
    signed_in(st, user, remote, Via::Web, "web", password_detail(st, "password and second factor")).await?;
    start_web_session(st, user.id, false).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::testing::{self, ADMIN_PASSWORD};

    fn pw(s: &str) -> SecretString {
        SecretString::from(s.to_owned())
    }

    #[tokio::test]
    async fn five_failures_lock_the_name_and_an_administrator_clears_it() -> Result<()> {
        let st = testing::state().await?;
        for n in 1..MAX_LOGIN_FAILURES {
            let e = api_login(&st, "admin", &pw("wrong password"), None).await.err();
            assert!(matches!(e, Some(Error::Unauthenticated(_))), "failure {n}: {e:?}");
        }
        let e = api_login(&st, "admin", &pw("wrong password"), None).await.err();
        assert!(matches!(&e, Some(Error::Locked(r)) if r.code == Code::AccountLocked), "{e:?}");
        // Locked: even the right password is refused, without being checked.
        let e = api_login(&st, "admin", &pw(ADMIN_PASSWORD), None).await.err();
        assert!(matches!(e, Some(Error::Locked(_))), "{e:?}");
        let audit = st.store.list_audit(None, 10).await?;
        assert!(audit.iter().any(|a| a.entry.action == "auth.locked_out" && a.entry.outcome == "denied"));
        assert_eq!(audit.iter().filter(|a| a.entry.action == "auth.login_failed").count(), 5);

        let admin = testing::caller(&st, "admin").await?;
        crate::service::accounts::clear_lockout(&st, &admin, admin.user.id).await?;
        let login = api_login(&st, "admin", &pw(ADMIN_PASSWORD), None).await?;
        let caller = bearer_caller(&st, Some(&login.token), None).await?;
        assert_eq!((caller.user.username.as_str(), caller.via), ("admin", Via::Session));
        end_session(&st, &auth::token_hash(&login.token)).await?;
        assert!(matches!(bearer_caller(&st, Some(&login.token), None).await, Err(Error::Unauthenticated(_))));
        Ok(())
    }

    #[tokio::test]
    async fn unknown_names_count_too_and_say_nothing_more() -> Result<()> {
        let st = testing::state().await?;
        let e = api_login(&st, "nobody", &pw("whatever password"), None).await.err();
        let Some(Error::Unauthenticated(r)) = e else { return Err(Error::Internal(format!("{e:?}"))) };
        assert_eq!(r.message, "wrong username or password");
        assert!(st.store.locked_until("nobody", Utc::now()).await?.is_none());
        assert!(matches!(bearer_caller(&st, None, None).await, Err(Error::Unauthenticated(_))));
        assert!(matches!(bearer_caller(&st, Some("berth_forged"), None).await, Err(Error::Unauthenticated(_))));
        Ok(())
    }

    #[tokio::test]
    async fn a_second_factor_holds_the_browser_session_until_its_code() -> Result<()> {
        use crate::service::accounts::{self, TotpConfirm};
        let st = testing::state().await?;
        let admin = testing::caller(&st, "admin").await?;
        let secret = accounts::start_totp(&st, &admin).await?.ok_or(Error::Internal("no secret".into()))?;
        let now = Utc::now().timestamp();
        let code = |t: i64| auth::totp::code(secret.expose_secret(), t).unwrap_or_default();
        let confirmed = accounts::confirm_totp(&st, &admin, &code(now)).await?;
        assert!(matches!(&confirmed, TotpConfirm::Enabled { recovery_codes } if recovery_codes.len() == 10));
        // The API's password login cannot take the second factor.
        let e = api_login(&st, "admin", &pw(ADMIN_PASSWORD), None).await.err();
        assert!(matches!(&e, Some(Error::Unauthenticated(r)) if r.message.contains("second factor")), "{e:?}");

        let started = web_sign_in(&st, "admin", &pw(ADMIN_PASSWORD), None).await?;
        assert!(started.second_factor_pending);
        let Browser::AwaitingSecondFactor { user, token_hash, .. } = browser(&st, Some(&started.token), None).await?
        else {
            return Err(Error::Internal("not waiting for the second factor".into()));
        };
        let e = web_second_factor(&st, &token_hash, &user, "000000 1", None).await.err();
        assert!(matches!(e, Some(Error::Unauthenticated(_))), "{e:?}");
        // The step used to enable is spent; the next one signs in.
        let done = web_second_factor(&st, &token_hash, &user, &code(now + 30), None).await?;
        assert!(!done.second_factor_pending);
        assert!(
            matches!(browser(&st, Some(&started.token), None).await?, Browser::SignedOut),
            "the waiting session ended"
        );
        let Browser::SignedIn(w) = browser(&st, Some(&done.token), None).await? else {
            return Err(Error::Internal("not signed in".into()));
        };
        assert!(w.totp_enabled && !w.must_enrol);
        assert!(st.store.locked_until("admin", Utc::now()).await?.is_none());
        Ok(())
    }
}
