//! Page handlers. Each one calls the same function as the matching REST endpoint, which checks
//! the role and writes the audit log, and renders the answer.

use super::views::*;
use super::{
    cookie, csrf_refused, set_cookie, FormData, Posted, WebError, WebResult, WebUser, LOGIN_CSRF_COOKIE, SESSION_COOKIE,
};
use crate::api::ConnectMeta;
use crate::api::{
    audit as audit_api, credentials as cred_api, repositories as repo_api, tokens as token_api, users as user_api,
};
use crate::auth::{self, Action, CurrentUser, Role, Via};
use crate::error::ApiError;
use crate::state::AppState;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use berth_core::credential::{self, FULL_SCOPES, REGISTRATION_SCOPES};
use berth_core::{Code, CredentialKind, StepStatus};
use berth_proto::{
    ApiTokenCreate, Credential, CredentialCreate, CredentialUpdate, RemoteBranchesRequest, Repository,
    RepositoryCreate, RepositoryUpdate, Settings, StoredCheck, UserCreate, UserUpdate,
};
use chrono::{NaiveDate, Utc};
use secrecy::{ExposeSecret, SecretString};
use std::collections::HashMap;

type Q = Query<HashMap<String, String>>;

// ------------------------------------------------------------------------------- rendering

fn render<T: Template>(status: StatusCode, t: &T) -> Response {
    match t.render() {
        Ok(html) => (status, [(header::CACHE_CONTROL, "no-store")], axum::response::Html(html)).into_response(),
        Err(e) => ApiError::internal(&e).into_response(),
    }
}

// Handlers return `WebResult` anyway; a page answer is cheap next to rendering it.
#[allow(clippy::result_large_err)]
fn ok<T: Template>(t: &T) -> WebResult {
    Ok(render(StatusCode::OK, t))
}

fn layout(wu: &WebUser, title: &str, active: &'static str) -> Layout {
    Layout {
        title: title.to_owned(),
        user: wu.cu.user.username.clone(),
        role: wu.cu.role.as_str().to_owned(),
        csrf: wu.csrf.clone(),
        active,
        is_admin: wu.cu.may(Action::ManageUsers),
        can_register: wu.cu.may(Action::RegisterRepository),
        can_credentials: wu.cu.may(Action::CreateCredential),
        flash: String::new(),
        flash_kind: "ok",
    }
}

fn flash(mut l: Layout, kind: &'static str, text: impl Into<String>) -> Layout {
    l.flash = text.into();
    l.flash_kind = kind;
    l
}

/// An error page without a signed-in frame (used where no session is known).
pub fn error_page(e: ApiError) -> Response {
    let status = e.status;
    let page = ErrorPage {
        l: Layout { title: "Error".into(), ..Layout::default() },
        status: status.as_u16(),
        problem: Problem::from_api(&e),
    };
    render(status, &page)
}

/// An error page inside the signed-in frame: "You must have permission to …" and the like.
fn fail(wu: &WebUser) -> impl FnOnce(ApiError) -> WebError + '_ {
    move |e| {
        let status = e.status;
        let title = if status == StatusCode::FORBIDDEN { "Not allowed" } else { "Error" };
        let page = ErrorPage { l: layout(wu, title, ""), status: status.as_u16(), problem: Problem::from_api(&e) };
        WebError::Rendered(render(status, &page))
    }
}

fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

// ------------------------------------------------------------------------------- static files

pub async fn css() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")],
        include_str!("../../static/app.css"),
    )
}

pub async fn js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")],
        include_str!("../../static/app.js"),
    )
}

// ------------------------------------------------------------------------------- sign-in

fn secure(headers: &HeaderMap) -> bool {
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

/// The badge class and label of a repository's or a check's status.
fn status_badge(status: &str) -> (&'static str, &'static str) {
    match status {
        "ok" => ("pass", "ok"),
        "warn" => ("warn", "warning"),
        "fail" => ("fail", "failed"),
        "paused" => ("paused", "paused"),
        _ => ("never", "not checked yet"),
    }
}

/// The codes behind a status: the first failing step's, else those of the steps that warned
/// (when the check carries its steps).
fn status_codes(c: &StoredCheck) -> Vec<String> {
    if c.code != Code::Ok {
        return vec![c.code.as_str().to_owned()];
    }
    // Lists carry the warned codes without the steps; a repository's own answer has both.
    let mut out: Vec<String> = c.warning_codes.iter().map(|code| code.as_str().to_owned()).collect();
    for s in c.checks.iter().filter(|s| s.status == StepStatus::Warn) {
        let code = s.code.as_str().to_owned();
        if !out.contains(&code) {
            out.push(code);
        }
    }
    out
}

fn repo_row(r: &Repository, checks_enabled: bool) -> RepoRow {
    let (status, label) = status_badge(&r.status);
    let (checked, checked_ago) =
        r.last_check.as_ref().map(|c| (when(c.checked_at), ago(c.checked_at))).unwrap_or_default();
    let (next_check, next_check_rel) = match r.next_check_at {
        _ if !checks_enabled => (String::new(), "background checks are off on this server".to_owned()),
        _ if r.status == "paused" => (String::new(), "paused until its credential is edited".to_owned()),
        Some(t) => (when(t), until(t)),
        None => (String::new(), "not scheduled".to_owned()),
    };
    RepoRow {
        id: r.id,
        name: r.name.clone(),
        clone_url: r.clone_url.clone(),
        provider: r.provider.to_string(),
        default_branch: r.default_branch.clone(),
        credential: r.credential.name.clone(),
        credential_id: r.credential.id,
        status: status.to_owned(),
        status_label: label.to_owned(),
        status_codes: r.last_check.as_ref().map(status_codes).unwrap_or_default(),
        checked,
        checked_ago,
        next_check,
        next_check_rel,
        checking_by: r.checking_by.clone().unwrap_or_default(),
        warnings: r.warnings.iter().map(WarningView::from).collect(),
    }
}

fn history_row(c: &StoredCheck) -> HistoryRow {
    let (status, label) = status_badge(&c.status);
    HistoryRow {
        id: c.id,
        at: when(c.checked_at),
        ago: ago(c.checked_at),
        reason: c.reason.clone(),
        reason_label: match c.reason.as_str() {
            "register" => "registration",
            "manual" => "by hand",
            "schedule" => "scheduled",
            "credential" => "credential changed",
            other => other,
        }
        .to_owned(),
        status: status.to_owned(),
        status_label: label.to_owned(),
        code: if c.code == Code::Ok { String::new() } else { c.code.as_str().to_owned() },
        ms: c.duration_ms,
        instance: c.instance.clone(),
        steps_summary: steps_summary(&c.checks),
        steps: steps(&c.checks),
    }
}

fn steps_summary(list: &[berth_core::Step]) -> String {
    let count = |st: StepStatus| list.iter().filter(|s| s.status == st).count();
    let mut out = format!("{} step{}", list.len(), if list.len() == 1 { "" } else { "s" });
    match count(StepStatus::Fail) {
        0 => {}
        n => out.push_str(&format!(", {n} failed")),
    }
    match count(StepStatus::Warn) {
        0 => {}
        1 => out.push_str(", 1 warning"),
        n => out.push_str(&format!(", {n} warnings")),
    }
    out
}

pub async fn repos(State(st): State<AppState>, wu: WebUser, q: Q) -> WebResult {
    let list = repo_api::list_repositories(&st, &wu.cu).await.map_err(fail(&wu))?;
    let mut l = layout(&wu, "VC Repos", "repos");
    if let Some(id) = q.0.get("registered").and_then(|v| v.parse::<i64>().ok()) {
        if let Some(r) = list.iter().find(|r| r.id == id) {
            l = flash(l, "ok", format!("Registered {}: every check passed.", r.name));
        }
    } else if let Some(name) = q.0.get("deleted") {
        l = flash(l, "ok", format!("Deleted {name}."));
    } else if let Some(n) = q.0.get("scheduled").and_then(|v| v.parse::<u64>().ok()) {
        let what = if n == 1 { "1 repository will".to_owned() } else { format!("{n} repositories will") };
        l = if st.config.checks.enabled {
            flash(l, "ok", format!("{what} be checked in the background. Results appear in each repository's check history."))
        } else {
            flash(l, "error", format!("{what} be checked once background checks run: they are off on this server ([checks] enabled = false)."))
        };
    }
    let enabled = st.config.checks.enabled;
    let can_check = wu.cu.may(Action::CheckRepository);
    ok(&ReposPage { l, repos: list.iter().map(|r| repo_row(r, enabled)).collect(), can_check })
}

/// "Check all now": every repository becomes due and the scheduler wakes, as
/// `POST /api/v1/checks/schedule` does.
pub async fn check_all(State(st): State<AppState>, p: Posted) -> WebResult {
    let cu = &p.user.cu;
    cu.require(Action::CheckRepository).map_err(fail(&p.user))?;
    let scheduled = st.store.schedule_all_checks(Utc::now()).await?;
    st.background.wake();
    cu.audit(&st.store, "repository.check_all", "repository", None, "", format!("{scheduled} repositories made due")).await;
    Ok(see_other(&format!("/?scheduled={scheduled}")))
}

fn credential_choices(creds: &[Credential], selected: &str) -> Vec<Choice> {
    creds
        .iter()
        .map(|c| {
            let identity = c.username.as_deref().or(c.email.as_deref()).unwrap_or("");
            let warn = match c.expiry_status.as_str() {
                "expired" => " (expired)",
                "expires_soon" => " (expires soon)",
                _ => "",
            };
            let label = if identity.is_empty() {
                format!("{} · {}{warn}", c.name, c.kind_label)
            } else {
                format!("{} · {} · {identity}{warn}", c.name, c.kind_label)
            };
            Choice { value: c.id.to_string(), label, selected: c.id.to_string() == selected }
        })
        .collect()
}

async fn register_page(
    st: &AppState,
    wu: &WebUser,
    mode: &'static str,
    action: String,
    form: Option<&FormData>,
) -> Result<RegisterPage, ApiError> {
    let creds = cred_api::list_credentials(st, &wu.cu).await?;
    let get = |k: &str| form.map(|f| f.get(k)).unwrap_or_default();
    let title = if mode == "new" { "Register Repository" } else { "Edit repository" };
    Ok(RegisterPage {
        l: layout(wu, title, "repos"),
        mode,
        action,
        name: get("name"),
        clone_url: get("clone_url"),
        credentials: credential_choices(&creds, &get("credential")),
        default_branch: get("default_branch"),
        branch_enabled: mode == "edit" || !get("default_branch").is_empty(),
        refresh_note: String::new(),
        branch_options: Vec::new(),
        problem: None,
        refresh_steps: Vec::new(),
    })
}

pub async fn register_form(State(st): State<AppState>, wu: WebUser) -> WebResult {
    wu.cu.require(Action::RegisterRepository).map_err(fail(&wu))?;
    let page = register_page(&st, &wu, "new", "/repositories/new".into(), None).await.map_err(fail(&wu))?;
    ok(&page)
}

impl RegisterPage {
    /// Shows why the API refused the form. A URL refused for carrying a password is not
    /// echoed back into the page.
    fn refused(&mut self, e: &ApiError) {
        if e.code == berth_core::Code::SecretInUrl {
            self.clone_url.clear();
        }
        self.problem = Some(Problem::from_api(e));
    }
}

/// The no-script Refresh: lists the branches on the server and fills the form.
async fn refresh_into(st: &AppState, cu: &CurrentUser, page: &mut RegisterPage, credential: String) {
    let req = RemoteBranchesRequest { clone_url: page.clone_url.clone(), credential };
    match repo_api::list_remote_branches(st, cu, req).await {
        Ok(rb) => {
            let names: Vec<&str> = rb.branches.iter().map(|b| b.name.as_str()).collect();
            let keep = !page.default_branch.is_empty() && names.contains(&page.default_branch.as_str());
            if !keep {
                page.default_branch = rb
                    .default_branch
                    .clone()
                    .filter(|d| names.contains(&d.as_str()))
                    .or_else(|| names.first().map(|s| (*s).to_owned()))
                    .unwrap_or_default();
            }
            page.branch_enabled = true;
            page.refresh_note = format!(
                "{} branches on the remote{}.",
                rb.branches.len(),
                rb.default_branch.as_deref().map(|d| format!("; its default is {d}")).unwrap_or_default()
            );
            page.branch_options = names.iter().take(500).map(|s| (*s).to_owned()).collect();
        }
        Err(e) => {
            page.refused(&e);
            page.branch_enabled = false;
        }
    }
}

pub async fn register(State(st): State<AppState>, p: Posted) -> WebResult {
    let wu = &p.user;
    wu.cu.require(Action::RegisterRepository).map_err(fail(wu))?;
    let mut page = register_page(&st, wu, "new", "/repositories/new".into(), Some(&p.form)).await.map_err(fail(wu))?;
    if p.form.get("op") == "refresh" {
        refresh_into(&st, &wu.cu, &mut page, p.form.get("credential")).await;
        return ok(&page);
    }
    let req = RepositoryCreate {
        name: p.form.get("name"),
        vcs: p.form.opt("vcs").unwrap_or_else(|| "git".into()),
        clone_url: p.form.get("clone_url"),
        credential: p.form.get("credential"),
        default_branch: p.form.opt("default_branch"),
    };
    match repo_api::register_repository(&st, &wu.cu, req).await {
        Ok(r) => Ok(see_other(&format!("/?registered={}", r.id))),
        Err(e) if e.status == StatusCode::FORBIDDEN => Err(fail(wu)(e)),
        Err(e) => {
            page.refused(&e);
            Ok(render(e.status, &page))
        }
    }
}

pub async fn refresh_json(
    State(st): State<AppState>,
    wu: WebUser,
    headers: HeaderMap,
    Json(req): Json<RemoteBranchesRequest>,
) -> Response {
    let sent = headers.get("x-csrf-token").and_then(|v| v.to_str().ok()).unwrap_or("");
    if wu.csrf.is_empty() || !auth::constant_time_eq(sent, &wu.csrf) {
        return refresh_error(&csrf_refused());
    }
    match repo_api::list_remote_branches(&st, &wu.cu, req).await {
        Ok(rb) => {
            let names: Vec<&str> = rb.branches.iter().map(|b| b.name.as_str()).collect();
            Json(serde_json::json!({
                "ok": true,
                "clone_url": rb.clone_url,
                "default_branch": rb.default_branch,
                "protocol": rb.protocol,
                "branches": names,
            }))
            .into_response()
        }
        Err(e) => refresh_error(&e),
    }
}

fn refresh_error(e: &ApiError) -> Response {
    let steps: Vec<serde_json::Value> = e
        .checks
        .iter()
        .map(|s| {
            serde_json::json!({"title": s.step.title(), "step": s.step.as_str(), "status": s.status.as_str(), "code": s.code.as_str(),
                "message": s.message, "remedy": s.remedy, "details": s.details})
        })
        .collect();
    let body = serde_json::json!({"ok": false, "error": {"code": e.code.as_str(), "message": e.message, "remedy": e.remedy, "steps": steps}});
    (e.status, Json(body)).into_response()
}

/// Checks shown per page of a repository's history.
const HISTORY_PAGE: i64 = 50;

pub async fn repo(State(st): State<AppState>, wu: WebUser, Path(id): Path<i64>, q: Q) -> WebResult {
    let r = repo_api::show_repository(&st, &wu.cu, id).await.map_err(fail(&wu))?;
    let before = q.0.get("before").and_then(|v| v.parse::<i64>().ok());
    let history = repo_api::check_history(&st, &wu.cu, id, before, HISTORY_PAGE).await.map_err(fail(&wu))?;
    let mut l = layout(&wu, &r.name, "repos");
    if q.0.contains_key("checked") {
        let passed = r.last_check.as_ref().is_some_and(|c| c.ok);
        let warned = r.last_check.as_ref().map_or(0, |c| c.checks.iter().filter(|s| s.status == StepStatus::Warn).count());
        let text = match (passed, warned) {
            (false, _) => "Checked: a step failed, see below.".to_owned(),
            (true, 0) => "Checked: every step passed.".to_owned(),
            (true, 1) => "Checked: every step passed, 1 with a warning (see below).".to_owned(),
            (true, n) => format!("Checked: every step passed, {n} with a warning (see below)."),
        };
        l = flash(l, if passed { "ok" } else { "error" }, text);
    } else if q.0.contains_key("saved") {
        l = flash(l, "ok", "Saved after a successful check.");
    }
    let older = if i64::try_from(history.len()).unwrap_or(i64::MAX) >= HISTORY_PAGE { history.last().map(|c| c.id) } else { None };
    let page = RepoPage {
        l,
        r: repo_row(&r, st.config.checks.enabled),
        created: when(r.created_at),
        updated: when(r.updated_at),
        last_ok: r.last_check.as_ref().is_some_and(|c| c.ok),
        has_check: r.last_check.is_some(),
        steps: r.last_check.as_ref().map(|c| steps(&c.checks)).unwrap_or_default(),
        history: history.iter().map(history_row).collect(),
        older,
        paged: before.is_some(),
        can_edit: wu.cu.may(Action::UpdateRepository),
        can_check: wu.cu.may(Action::CheckRepository),
        can_delete: wu.cu.may(Action::DeleteRepository),
        problem: None,
    };
    ok(&page)
}

pub async fn check_now(State(st): State<AppState>, Path(id): Path<i64>, p: Posted) -> WebResult {
    repo_api::check_repository(&st, &p.user.cu, id).await.map_err(fail(&p.user))?;
    Ok(see_other(&format!("/repositories/{id}?checked=1")))
}

pub async fn delete_repo(State(st): State<AppState>, Path(id): Path<i64>, p: Posted) -> WebResult {
    let r = repo_api::show_repository(&st, &p.user.cu, id).await.map_err(fail(&p.user))?;
    repo_api::delete_repository(&st, &p.user.cu, id).await.map_err(fail(&p.user))?;
    Ok(see_other(&format!("/?deleted={}", enc(&r.name))))
}

pub async fn edit_form(State(st): State<AppState>, wu: WebUser, Path(id): Path<i64>) -> WebResult {
    wu.cu.require(Action::UpdateRepository).map_err(fail(&wu))?;
    let r = repo_api::show_repository(&st, &wu.cu, id).await.map_err(fail(&wu))?;
    let mut page =
        register_page(&st, &wu, "edit", format!("/repositories/{id}/edit"), None).await.map_err(fail(&wu))?;
    page.name = r.name;
    page.clone_url = r.clone_url;
    page.default_branch = r.default_branch;
    let cid = r.credential.id.to_string();
    for c in &mut page.credentials {
        c.selected = c.value == cid;
    }
    ok(&page)
}

pub async fn edit(State(st): State<AppState>, Path(id): Path<i64>, p: Posted) -> WebResult {
    let wu = &p.user;
    wu.cu.require(Action::UpdateRepository).map_err(fail(wu))?;
    let mut page =
        register_page(&st, wu, "edit", format!("/repositories/{id}/edit"), Some(&p.form)).await.map_err(fail(wu))?;
    if p.form.get("op") == "refresh" {
        refresh_into(&st, &wu.cu, &mut page, p.form.get("credential")).await;
        return ok(&page);
    }
    let req = RepositoryUpdate {
        name: p.form.opt("name"),
        clone_url: p.form.opt("clone_url"),
        credential: p.form.opt("credential"),
        default_branch: p.form.opt("default_branch"),
    };
    match repo_api::update_repository(&st, &wu.cu, id, req).await {
        Ok(_) => Ok(see_other(&format!("/repositories/{id}?saved=1"))),
        Err(e) if e.status == StatusCode::FORBIDDEN || e.status == StatusCode::NOT_FOUND => Err(fail(wu)(e)),
        Err(e) => {
            page.refused(&e);
            Ok(render(e.status, &page))
        }
    }
}

// ------------------------------------------------------------------------------- credentials

fn credential_row(c: &Credential) -> CredentialRow {
    let (expires, note) = match (c.expires_on, c.days_until_expiry) {
        (None, _) => ("no expiry set".to_owned(), String::new()),
        (Some(d), Some(n)) if n < 0 => (d.to_string(), format!("expired {} days ago", -n)),
        (Some(d), Some(0)) => (d.to_string(), "expires today".to_owned()),
        (Some(d), Some(n)) if c.expiry_status == "expires_soon" => (d.to_string(), format!("expires in {n} days")),
        (Some(d), _) => (d.to_string(), String::new()),
    };
    CredentialRow {
        id: c.id,
        name: c.name.clone(),
        kind_label: c.kind_label.clone(),
        identity: match (&c.username, &c.email) {
            (Some(u), Some(e)) => format!("{u} ({e})"),
            (Some(u), None) => u.clone(),
            (None, Some(e)) => e.clone(),
            (None, None) => "token only".to_owned(),
        },
        expires,
        expiry_status: c.expiry_status.clone(),
        expiry_note: note,
        used_by: c.used_by.len(),
        used_by_names: c.used_by.iter().map(|r| (r.id, r.name.clone())).collect(),
        scopes: c.scopes.clone(),
        missing_scopes: c.missing_scopes.clone(),
        secret_updated: when(c.secret_updated_at),
        expiry_warning: c.expiry_warning.as_ref().map(WarningView::from),
        auth_failures: c.auth_failures,
        paused_since: c.checks_paused_at.map(when).unwrap_or_default(),
        paused_ago: c.checks_paused_at.map(ago).unwrap_or_default(),
    }
}

pub async fn credentials(State(st): State<AppState>, wu: WebUser, q: Q) -> WebResult {
    let list = cred_api::list_credentials(&st, &wu.cu).await.map_err(fail(&wu))?;
    let mut l = layout(&wu, "Credentials", "credentials");
    if let Some(name) = q.0.get("created") {
        l = flash(l, "ok", format!("Saved credential {name}. Its token is encrypted and will not be shown again."));
    } else if let Some(name) = q.0.get("deleted") {
        l = flash(l, "ok", format!("Deleted credential {name}."));
    }
    let soon = list.iter().filter(|c| c.expiry_status == "expires_soon" || c.expiry_status == "expired").count();
    if soon > 0 && l.flash.is_empty() {
        l = flash(
            l,
            "error",
            format!(
                "{soon} credential(s) expired or expire within {} days: replace their tokens.",
                credential::EXPIRY_WARNING_DAYS
            ),
        );
    }
    let can_create = wu.cu.may(Action::CreateCredential);
    let paused = list.iter().filter(|c| c.checks_paused_at.is_some()).count();
    ok(&CredentialsPage { l, creds: list.iter().map(credential_row).collect(), can_create, paused })
}

const KINDS: [CredentialKind; 4] = [
    CredentialKind::BitbucketApiToken,
    CredentialKind::AccessToken,
    CredentialKind::UsernamePassword,
    CredentialKind::BitbucketAppPassword,
];

fn credential_new_page(wu: &WebUser, form: Option<&FormData>) -> CredentialNewPage {
    let get = |k: &str| form.map(|f| f.get(k)).unwrap_or_default();
    let kind = form.and_then(|f| CredentialKind::parse(&f.get("kind"))).unwrap_or(CredentialKind::BitbucketApiToken);
    let chosen: Vec<String> =
        form.map(|f| f.all("scopes")).unwrap_or_else(|| REGISTRATION_SCOPES.iter().map(|s| (*s).to_owned()).collect());
    CredentialNewPage {
        l: layout(wu, "Create Credential", "credentials"),
        name: get("name"),
        kinds: KINDS
            .iter()
            .map(|k| Choice { value: k.as_str().into(), label: k.label().into(), selected: *k == kind })
            .collect(),
        username: get("username"),
        email: get("email"),
        expires_on: get("expires_on"),
        scopes: FULL_SCOPES
            .iter()
            .map(|s| ScopeBox {
                name: (*s).into(),
                checked: chosen.iter().any(|c| c == s),
                required: REGISTRATION_SCOPES.contains(s),
            })
            .collect(),
        problem: None,
        retired_on: credential::APP_PASSWORDS_RETIRED_ON.into(),
        app_password_selected: kind == CredentialKind::BitbucketAppPassword,
    }
}

pub async fn credential_form(wu: WebUser) -> WebResult {
    wu.cu.require(Action::CreateCredential).map_err(fail(&wu))?;
    ok(&credential_new_page(&wu, None))
}

fn parse_date(s: Option<String>) -> Result<Option<NaiveDate>, ApiError> {
    match s {
        None => Ok(None),
        Some(v) => NaiveDate::parse_from_str(&v, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| ApiError::invalid(format!("{v:?} is not a date"), "use the date picker or YYYY-MM-DD")),
    }
}

pub async fn credential_create(State(st): State<AppState>, p: Posted) -> WebResult {
    let wu = &p.user;
    wu.cu.require(Action::CreateCredential).map_err(fail(wu))?;
    let mut page = credential_new_page(wu, Some(&p.form));
    let req = (|| -> Result<CredentialCreate, ApiError> {
        let kind = CredentialKind::parse(&p.form.get("kind"))
            .ok_or_else(|| ApiError::invalid("choose a Credential Type", "pick one from the list"))?;
        Ok(CredentialCreate {
            name: p.form.get("name"),
            kind,
            username: p.form.opt("username"),
            email: p.form.opt("email"),
            secret: p.form.get("secret"),
            expires_on: parse_date(p.form.opt("expires_on"))?,
            scopes: Some(p.form.all("scopes")).filter(|_| kind == CredentialKind::BitbucketApiToken),
        })
    })();
    let result = match req {
        Ok(req) => cred_api::create_credential(&st, &wu.cu, req).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(c) => Ok(see_other(&format!("/credentials?created={}", enc(&c.name)))),
        Err(e) => {
            page.problem = Some(Problem::from_api(&e));
            Ok(render(e.status, &page))
        }
    }
}

async fn credential_page(st: &AppState, wu: &WebUser, id: i64) -> Result<CredentialPage, ApiError> {
    let c = cred_api::show_credential(st, &wu.cu, id).await?;
    Ok(CredentialPage {
        l: layout(wu, &c.name, "credentials"),
        expires_on: c.expires_on.map(|d| d.to_string()).unwrap_or_default(),
        username: c.username.clone().unwrap_or_default(),
        email: c.email.clone().unwrap_or_default(),
        c: credential_row(&c),
        can_edit: wu.cu.may(Action::UpdateCredential),
        can_delete: wu.cu.may(Action::DeleteCredential),
        rechecks: Vec::new(),
        rechecked: false,
        problem: None,
    })
}

pub async fn credential(State(st): State<AppState>, wu: WebUser, Path(id): Path<i64>, q: Q) -> WebResult {
    let mut page = credential_page(&st, &wu, id).await.map_err(fail(&wu))?;
    if q.0.contains_key("saved") {
        page.l = flash(std::mem::take(&mut page.l), "ok", "Saved.");
    }
    ok(&page)
}

pub async fn credential_token(State(st): State<AppState>, Path(id): Path<i64>, p: Posted) -> WebResult {
    let wu = &p.user;
    let req = CredentialUpdate {
        secret: Some(p.form.get("secret")),
        expires_on: p.form.opt("expires_on").map(|d| parse_date(Some(d))).transpose().map_err(fail(wu))?,
        ..CredentialUpdate::default()
    };
    match cred_api::update_credential(&st, &wu.cu, id, req).await {
        Ok((_, rechecks)) => {
            let mut page = credential_page(&st, wu, id).await.map_err(fail(wu))?;
            let failed = rechecks.iter().filter(|r| !r.check.ok).count();
            page.l = flash(
                std::mem::take(&mut page.l),
                if failed == 0 { "ok" } else { "error" },
                format!("Token replaced. {} repositories re-checked, {failed} failed.", rechecks.len()),
            );
            page.rechecked = true;
            page.rechecks = rechecks
                .into_iter()
                .map(|r| RecheckRow {
                    id: r.repository.id,
                    name: r.repository.name,
                    ok: r.check.ok,
                    steps: steps(&r.check.checks),
                })
                .collect();
            ok(&page)
        }
        Err(e) if e.status == StatusCode::FORBIDDEN || e.status == StatusCode::NOT_FOUND => Err(fail(wu)(e)),
        Err(e) => {
            let mut page = credential_page(&st, wu, id).await.map_err(fail(wu))?;
            page.problem = Some(Problem::from_api(&e));
            Ok(render(e.status, &page))
        }
    }
}

pub async fn credential_edit(State(st): State<AppState>, Path(id): Path<i64>, p: Posted) -> WebResult {
    let wu = &p.user;
    let scopes: Vec<String> = p
        .form
        .get("scopes_text")
        .split([' ', ',', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let req = CredentialUpdate {
        name: p.form.opt("name"),
        username: Some(p.form.opt("username")),
        email: Some(p.form.opt("email")),
        expires_on: Some(parse_date(p.form.opt("expires_on")).map_err(fail(wu))?),
        scopes: Some(scopes),
        secret: None,
    };
    match cred_api::update_credential(&st, &wu.cu, id, req).await {
        Ok(_) => Ok(see_other(&format!("/credentials/{id}?saved=1"))),
        Err(e) if e.status == StatusCode::FORBIDDEN || e.status == StatusCode::NOT_FOUND => Err(fail(wu)(e)),
        Err(e) => {
            let mut page = credential_page(&st, wu, id).await.map_err(fail(wu))?;
            page.problem = Some(Problem::from_api(&e));
            Ok(render(e.status, &page))
        }
    }
}

pub async fn credential_delete(State(st): State<AppState>, Path(id): Path<i64>, p: Posted) -> WebResult {
    let c = cred_api::show_credential(&st, &p.user.cu, id).await.map_err(fail(&p.user))?;
    cred_api::delete_credential(&st, &p.user.cu, id).await.map_err(fail(&p.user))?;
    Ok(see_other(&format!("/credentials?deleted={}", enc(&c.name))))
}

// ------------------------------------------------------------------------------- users, settings, audit

async fn users_page(st: &AppState, wu: &WebUser, problem: Option<Problem>) -> Result<UsersPage, ApiError> {
    let list = user_api::list_users(st, &wu.cu).await?;
    let settings = user_api::get_settings(st, &wu.cu).await?;
    Ok(UsersPage {
        l: layout(wu, "Users", "users"),
        users: list
            .into_iter()
            .map(|u| UserRow {
                is_me: u.id == wu.cu.user.id,
                id: u.id,
                username: u.username,
                role: u.role,
                totp: u.totp_enabled,
                locked: u.locked_until.map(when).unwrap_or_default(),
                failures: u.failed_logins,
                created: when(u.created_at),
            })
            .collect(),
        roles: Role::ALL.iter().map(|r| (r.as_str().to_owned(), r.describe().to_owned())).collect(),
        require_2fa: settings.require_2fa,
        problem,
    })
}

pub async fn users(State(st): State<AppState>, wu: WebUser, q: Q) -> WebResult {
    let mut page = users_page(&st, &wu, None).await.map_err(fail(&wu))?;
    if let Some(m) = q.0.get("done") {
        page.l = flash(std::mem::take(&mut page.l), "ok", m.chars().take(200).collect::<String>());
    }
    ok(&page)
}

async fn users_result(st: &AppState, wu: &WebUser, r: Result<String, ApiError>) -> WebResult {
    match r {
        Ok(msg) => Ok(see_other(&format!("/admin/users?done={}", enc(&msg)))),
        Err(e) if e.status == StatusCode::FORBIDDEN => Err(fail(wu)(e)),
        Err(e) => {
            let page = users_page(st, wu, Some(Problem::from_api(&e))).await.map_err(fail(wu))?;
            Ok(render(e.status, &page))
        }
    }
}

pub async fn user_create(State(st): State<AppState>, p: Posted) -> WebResult {
    let req =
        UserCreate { username: p.form.get("username"), password: p.form.get("password"), role: p.form.get("role") };
    let r = user_api::create_user(&st, &p.user.cu, req).await.map(|u| format!("Added {} as {}.", u.username, u.role));
    users_result(&st, &p.user, r).await
}

pub async fn user_op(State(st): State<AppState>, Path((id, op)): Path<(i64, String)>, p: Posted) -> WebResult {
    let cu = &p.user.cu;
    let r = match op.as_str() {
        "role" => user_api::update_user(&st, cu, id, UserUpdate { role: Some(p.form.get("role")), password: None })
            .await
            .map(|u| format!("{} is now {}.", u.username, u.role)),
        "password" => {
            user_api::update_user(&st, cu, id, UserUpdate { role: None, password: Some(p.form.get("password")) })
                .await
                .map(|u| format!("Password of {} reset; their sessions ended.", u.username))
        }
        "unlock" => user_api::clear_lockout(&st, cu, id).await.map(|()| "Lockout cleared.".to_owned()),
        "totp-reset" => user_api::reset_totp(&st, cu, id).await.map(|()| "Two-factor sign-in removed.".to_owned()),
        "delete" => user_api::delete_user(&st, cu, id).await.map(|()| "User deleted.".to_owned()),
        _ => Err(ApiError::new(StatusCode::NOT_FOUND, Code::NotFound, "no such user action", "")),
    };
    users_result(&st, &p.user, r).await
}

pub async fn settings(State(st): State<AppState>, p: Posted) -> WebResult {
    let want = p.form.get("require_2fa") == "true";
    let r = user_api::put_settings(&st, &p.user.cu, Settings { require_2fa: want }).await.map(|s| {
        if s.require_2fa { "Two-factor sign-in is now required." } else { "Two-factor sign-in is optional." }.to_owned()
    });
    users_result(&st, &p.user, r).await
}

pub async fn audit(State(st): State<AppState>, wu: WebUser, q: Q) -> WebResult {
    let before = q.0.get("before").and_then(|v| v.parse().ok());
    let entries = audit_api::read_audit(&st, &wu.cu, before, Some(100)).await.map_err(fail(&wu))?;
    let older = if entries.len() == 100 { entries.last().map(|e| e.id) } else { None };
    let page = AuditPage {
        l: layout(&wu, "Audit log", "audit"),
        entries: entries
            .into_iter()
            .map(|e| AuditView {
                at: when(e.at),
                actor: e.actor,
                action: e.action,
                target: if e.target_name.is_empty() {
                    e.target_kind
                } else {
                    format!("{} {}", e.target_kind, e.target_name)
                },
                detail: e.detail,
                remote: e.remote_addr.unwrap_or_default(),
                outcome: e.outcome,
            })
            .collect(),
        older,
    };
    ok(&page)
}

// ------------------------------------------------------------------------------- my account

async fn account_page(
    st: &AppState,
    wu: &WebUser,
    new_token: String,
    problem: Option<Problem>,
) -> Result<AccountPage, ApiError> {
    let tokens = token_api::list_tokens(st, &wu.cu).await?;
    Ok(AccountPage {
        l: layout(wu, "My account", "account"),
        role_description: wu.cu.role.describe().to_owned(),
        totp_enabled: wu.totp_enabled,
        recovery_left: st.store.recovery_codes_left(wu.cu.user.id).await?,
        require_2fa: auth::require_2fa(&st.store).await?,
        tokens: tokens
            .into_iter()
            .map(|t| TokenView {
                id: t.id,
                name: t.name,
                created: when(t.created_at),
                expires: t.expires_at.map_or_else(|| "never".to_owned(), when),
                last_used: t.last_used_at.map_or_else(|| "never".to_owned(), ago),
                revoked: t.revoked_at.is_some() || t.expires_at.is_some_and(|e| e < Utc::now()),
            })
            .collect(),
        new_token,
        problem,
    })
}

pub async fn account(State(st): State<AppState>, wu: WebUser, q: Q) -> WebResult {
    let mut page = account_page(&st, &wu, String::new(), None).await.map_err(fail(&wu))?;
    if q.0.contains_key("revoked") {
        page.l = flash(std::mem::take(&mut page.l), "ok", "Token revoked: it no longer works.");
    } else if q.0.contains_key("2fa_off") {
        page.l = flash(std::mem::take(&mut page.l), "ok", "Two-factor sign-in is off.");
    }
    ok(&page)
}

pub async fn password(State(st): State<AppState>, headers: HeaderMap, p: Posted) -> WebResult {
    let wu = &p.user;
    let result: Result<(), ApiError> = async {
        wu.cu.require(Action::ManageOwnAccount)?;
        let current = SecretString::from(p.form.get("current"));
        // Counted like a failed sign-in, so a stolen session cannot guess the password freely.
        match auth::password_login(&st.store, &wu.cu.user.username, &current, wu.cu.remote.as_deref()).await {
            Ok(_) => {}
            Err(e) if e.code == Code::Unauthenticated => {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    Code::InvalidInput,
                    "the current password is wrong",
                    "type your current password again",
                ));
            }
            Err(e) => return Err(e),
        }
        let new = p.form.get("new");
        auth::validate_password(&new)?;
        let hash = auth::hash_password_async(SecretString::from(new)).await?;
        st.store.set_password(wu.cu.user.id, &hash, false).await?;
        wu.cu
            .audit(
                &st.store,
                "user.password_change",
                "user",
                Some(wu.cu.user.id),
                &wu.cu.user.username,
                "own password; sessions ended",
            )
            .await;
        Ok(())
    }
    .await;
    match result {
        Ok(()) => {
            let mut resp = see_other("/login?signed_out=1");
            resp.headers_mut().append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, "", 0, secure(&headers)));
            Ok(resp)
        }
        Err(e) => {
            let page = account_page(&st, wu, String::new(), Some(Problem::from_api(&e))).await.map_err(fail(wu))?;
            Ok(render(e.status, &page))
        }
    }
}

pub async fn token_create(State(st): State<AppState>, p: Posted) -> WebResult {
    let wu = &p.user;
    // A value that is present but not a number of days is refused, never read as "no expiry".
    let days = match p.form.opt("expires_in_days").map(|d| d.trim().parse::<u32>()) {
        None => Ok(None),
        Some(Ok(d)) => Ok(Some(d)),
        Some(Err(_)) => Err(ApiError::invalid("the expiry must be a whole number of days", "enter for example 90, or leave it empty")),
    };
    let created = match days {
        Ok(days) => token_api::create_token(&st, &wu.cu, ApiTokenCreate { name: p.form.get("name"), expires_in_days: days }).await,
        Err(e) => Err(e),
    };
    match created {
        Ok(t) => {
            let mut page = account_page(&st, wu, t.token, None).await.map_err(fail(wu))?;
            page.l = flash(std::mem::take(&mut page.l), "ok", format!("Created token {}.", t.info.name));
            ok(&page)
        }
        Err(e) => {
            let page = account_page(&st, wu, String::new(), Some(Problem::from_api(&e))).await.map_err(fail(wu))?;
            Ok(render(e.status, &page))
        }
    }
}

pub async fn token_revoke(State(st): State<AppState>, Path(id): Path<i64>, p: Posted) -> WebResult {
    token_api::revoke_token(&st, &p.user.cu, id).await.map_err(fail(&p.user))?;
    Ok(see_other("/account?revoked=1"))
}

async fn totp_view(st: &AppState, wu: &WebUser) -> Result<TotpPage, ApiError> {
    Ok(TotpPage {
        l: layout(wu, "Two-factor sign-in", "account"),
        enabled: wu.totp_enabled,
        required: auth::require_2fa(&st.store).await?,
        secret: String::new(),
        uri: String::new(),
        recovery_codes: Vec::new(),
        problem: None,
    })
}

pub async fn totp_page(State(st): State<AppState>, wu: WebUser) -> WebResult {
    ok(&totp_view(&st, &wu).await.map_err(fail(&wu))?)
}

fn show_secret(page: &mut TotpPage, user: &str, secret: &str) {
    page.secret = secret
        .chars()
        .collect::<Vec<_>>()
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join(" ");
    page.uri = auth::totp::otpauth_uri("Berth", user, secret);
}

pub async fn totp_start(State(st): State<AppState>, p: Posted) -> WebResult {
    let wu = &p.user;
    wu.cu.require(Action::ManageOwnAccount).map_err(fail(wu))?;
    let mut page = totp_view(&st, wu).await.map_err(fail(wu))?;
    if wu.totp_enabled {
        return ok(&page);
    }
    let secret = auth::totp::generate_secret();
    st.store.set_pending_totp(wu.cu.user.id, &SecretString::from(secret.clone())).await?;
    show_secret(&mut page, &wu.cu.user.username, &secret);
    ok(&page)
}

pub async fn totp_confirm(State(st): State<AppState>, p: Posted) -> WebResult {
    let wu = &p.user;
    wu.cu.require(Action::ManageOwnAccount).map_err(fail(wu))?;
    let uid = wu.cu.user.id;
    let mut page = totp_view(&st, wu).await.map_err(fail(wu))?;
    if wu.totp_enabled || st.store.totp_state(uid).await?.is_none() {
        return ok(&page);
    }
    let secret = st.store.totp_secret(uid).await?;
    let code = p.form.get("code").chars().filter(char::is_ascii_digit).collect::<String>();
    let step = auth::totp::verify(secret.expose_secret(), &code, Utc::now().timestamp());
    let accepted = match step {
        Some(s) => st.store.use_totp_step(uid, s).await?,
        None => false,
    };
    if !accepted {
        show_secret(&mut page, &wu.cu.user.username, secret.expose_secret());
        page.problem = Some(Problem {
            message: "That code does not match.".into(),
            remedy: "check that the phone's clock is right and enter the code currently shown".into(),
            ..Problem::default()
        });
        return Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page));
    }
    let codes = auth::new_recovery_codes();
    let hashes: Vec<String> = codes.iter().map(|c| auth::recovery_code_hash(c)).collect();
    st.store.enable_totp(uid, &hashes).await?;
    wu.cu
        .audit(
            &st.store,
            "user.2fa_enable",
            "user",
            Some(uid),
            &wu.cu.user.username,
            "TOTP on; 10 recovery codes issued",
        )
        .await;
    page.enabled = true;
    page.recovery_codes = codes;
    ok(&page)
}

pub async fn totp_disable(State(st): State<AppState>, p: Posted) -> WebResult {
    let wu = &p.user;
    wu.cu.require(Action::ManageOwnAccount).map_err(fail(wu))?;
    let mut page = totp_view(&st, wu).await.map_err(fail(wu))?;
    if page.required {
        page.problem = Some(Problem {
            message: "Two-factor sign-in is required here.".into(),
            remedy: "an administrator can change that under Admin > Users".into(),
            ..Problem::default()
        });
        return Ok(render(StatusCode::CONFLICT, &page));
    }
    if let Err(e) = auth::second_factor(&st.store, &wu.cu.user, &p.form.get("code"), wu.cu.remote.as_deref()).await {
        page.problem = Some(Problem::from_api(&e));
        return Ok(render(e.status, &page));
    }
    st.store.disable_totp(wu.cu.user.id).await?;
    wu.cu.audit(&st.store, "user.2fa_disable", "user", Some(wu.cu.user.id), &wu.cu.user.username, "by the user").await;
    Ok(see_other("/account?2fa_off=1"))
}
