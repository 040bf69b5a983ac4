//! Register Repository (with Refresh), a repository's page with its checks, edit and delete; the list is `repository_list`.

use super::*;
use crate::auth::{self, Action, CurrentUser};
use crate::error::ApiError;
use crate::service::{checks, credentials, host_webhooks, repositories, Conflict};
use crate::state::AppState;
use crate::web::views::*;
use crate::web::{csrf_refused, FormData, Posted, WebResult, WebUser};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_core::{Code, Step, StepName, StepStatus, UrlError};
use berth_proto::{Credential, CredentialSelector, RemoteBranchesRequest, RepositoryCreate, RepositoryUpdate};

/// The banner after a check, saying its real outcome: `done` alone ("Registered app.") only
/// when every step passed; "…, with 2 warnings: …" naming what warned; otherwise where it
/// failed (`failed` is the subject: "The check failed at …"). Returns the flash kind and text.
pub(crate) fn outcome_banner(done: &str, failed: &str, steps: &[Step]) -> (&'static str, String) {
    // A message quoted inside the banner loses its final stop: the banner ends with its own.
    let short = |s: &Step| s.message.trim_end_matches(['.', ' ']).to_owned();
    if let Some(s) = steps.iter().find(|s| s.status == StepStatus::Fail) {
        return ("error", format!("{failed} failed at {}: {}. See the steps below.", s.step.title(), short(s)));
    }
    let warned: Vec<String> = steps.iter().filter(|s| s.status == StepStatus::Warn).map(short).collect();
    if warned.is_empty() {
        return ("ok", format!("{done}."));
    }
    let n = plural(i64::try_from(warned.len()).unwrap_or(i64::MAX), "warning");
    ("warn", format!("{done}, with {n}: {}.", warned.join("; ")))
}

/// The Register form's field each refusal code is about.
const CODE_FIELDS: &[(&str, &str)] = &[
    ("name_taken", "name"),
    ("unsupported_vcs", "vcs"),
    ("invalid_url", "clone_url"),
    ("secret_in_url", "clone_url"),
    ("ssh_not_supported", "clone_url"),
    ("credential_kind_mismatch", "credential"),
    ("host_key_unknown", "clone_url"),
    ("host_key_changed", "clone_url"),
    ("already_registered", "clone_url"),
    ("dns_failed", "clone_url"),
    ("connect_failed", "clone_url"),
    ("tls_failed", "clone_url"),
    ("destination_forbidden", "clone_url"),
    ("repository_moved", "clone_url"),
    ("not_a_git_server", "clone_url"),
    ("repository_not_found_or_no_access", "clone_url"),
    ("auth_failed", "credential"),
    ("token_expired", "credential"),
    ("app_password_retired", "credential"),
    ("credential_not_found", "credential"),
    ("access_denied", "credential"),
    ("branch_not_found", "default_branch"),
    ("no_default_branch", "default_branch"),
    ("empty_repository", "default_branch"),
];

/// The field a failed step is about whatever its code; other steps go by their code, and the
/// Clone URL when the code names no field.
const STEP_FIELDS: &[(&str, &str)] = &[
    ("url", "clone_url"),
    ("credential", "credential"),
    ("api_credential", "credential"),
    ("api_scopes", "credential"),
    ("branches", "default_branch"),
    ("default_branch", "default_branch"),
];

fn lookup(table: &[(&str, &'static str)], key: &str) -> Option<&'static str> {
    table.iter().find(|(k, _)| *k == key).map(|(_, f)| *f)
}

/// Which field of the Register form a refusal is about: the failing step's field when a check
/// ran, else the one the code names. Empty when no single field is at fault.
fn field_at_fault(p: &Problem) -> &'static str {
    if let Some(s) = p.steps.shown.iter().find(|s| s.status == "fail") {
        return lookup(STEP_FIELDS, &s.step).or_else(|| lookup(CODE_FIELDS, &s.code)).unwrap_or("clone_url");
    }
    match lookup(CODE_FIELDS, &p.code) {
        Some(f) => f,
        // The name's own validation answers `invalid_input`; other invalid input is not the name's.
        None if p.code == "invalid_input" && p.message.contains("name") => "name",
        None => "",
    }
}

/// The same tables for the page's script, which marks the field a failed Refresh is about:
/// `{"steps": {step: field}, "codes": {code: field}}`.
fn field_tables() -> String {
    let map = |t: &[(&str, &str)]| -> serde_json::Map<String, serde_json::Value> {
        t.iter().map(|(k, f)| ((*k).to_owned(), (*f).into())).collect()
    };
    serde_json::json!({ "steps": map(STEP_FIELDS), "codes": map(CODE_FIELDS) }).to_string()
}

/// The Credentials choice that checks without one (a public repository). Stored credentials'
/// choices are their ids, so this value cannot be taken by one.
const ANONYMOUS: &str = "anonymous";

/// The Credentials choice posted: a stored credential, none (anonymous access), or empty
/// (the templates choose).
fn posted_access(value: Option<String>) -> (Option<CredentialSelector>, bool) {
    match value {
        Some(v) if v == ANONYMOUS => (None, true),
        v => (v.map(Into::into), false),
    }
}

fn credential_choices(creds: &[Credential], selected: &str) -> Vec<Choice> {
    let anonymous = Choice {
        value: ANONYMOUS.to_owned(),
        label: "No credential (public repository)".to_owned(),
        selected: selected == ANONYMOUS,
    };
    std::iter::once(anonymous)
        .chain(creds.iter().map(|c| {
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
        }))
        .collect()
}

async fn register_page(
    st: &AppState,
    wu: &WebUser,
    mode: &'static str,
    action: String,
    form: Option<&FormData>,
) -> Result<RegisterPage, ApiError> {
    let creds = credentials::list(st, &wu.cu).await?;
    let has_templates = !crate::service::templates::list(st, &wu.cu).await?.is_empty();
    let get = |k: &str| form.map(|f| f.get(k)).unwrap_or_default();
    let title = if mode == "new" { "Register Repository" } else { "Edit repository" };
    Ok(RegisterPage {
        l: layout(wu, title, "repos"),
        mode,
        action,
        name: get("name"),
        clone_url: get("clone_url"),
        credentials: credential_choices(&creds, &get("credential")),
        has_templates,
        default_branch: get("default_branch"),
        branch_enabled: mode == "edit" || !get("default_branch").is_empty(),
        refresh_note: String::new(),
        webhook: get("webhook") == "on",
        branch_options: Vec::new(),
        problem: None,
        field: "",
        field_message: String::new(),
        field_code: String::new(),
        existing: None,
        refresh_steps: StepsView::default(),
        step_titles: step_titles(),
        field_tables: field_tables(),
    })
}

pub async fn register_form(State(st): State<AppState>, wu: WebUser) -> WebResult {
    wu.cu.require(Action::RegisterRepository).map_err(fail(&wu))?;
    let page = register_page(&st, &wu, "new", "/repositories/new".into(), None).await.map_err(fail(&wu))?;
    ok(&page)
}

/// Every step's title by its name, as JSON for the script.
fn step_titles() -> String {
    let titles: serde_json::Map<String, serde_json::Value> =
        StepName::ALL.iter().map(|n| (n.as_str().to_owned(), n.title().into())).collect();
    serde_json::Value::Object(titles).to_string()
}

/// A refusal is shown beside the field at fault (which is marked), and a failed check's steps
/// where Refresh shows them. A URL refused for carrying a password is not echoed back.
impl FormPage for RegisterPage {
    fn show_problem(&mut self, problem: Problem) {
        if problem.code == Code::SecretInUrl.as_str() {
            self.clone_url.clear();
        }
        self.field = field_at_fault(&problem);
        let stop = |t: &str| format!("{}.", t.trim_end_matches(['.', ' ']));
        (self.field_message, self.field_code) = match problem.steps.shown.iter().find(|s| s.status == "fail") {
            Some(s) => (format!("{}: {} See the steps below.", s.title, stop(&s.message)), String::new()),
            None if problem.remedy.is_empty() => (stop(&problem.message), problem.code.clone()),
            None => (format!("{} {}", stop(&problem.message), stop(&problem.remedy)), problem.code.clone()),
        };
        self.problem = Some(problem);
    }
}

/// The no-script Refresh: lists the branches on the server and fills the form.
async fn refresh_into(st: &AppState, cu: &CurrentUser, page: &mut RegisterPage, credential: Option<String>) {
    let (credential, anonymous) = posted_access(credential);
    let req = RemoteBranchesRequest { clone_url: page.clone_url.clone(), credential, anonymous };
    match repositories::remote_branches(st, cu, req).await {
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
            page.show_problem(Problem::from_api(&ApiError::from(e)));
            page.branch_enabled = false;
        }
    }
}

pub async fn register(State(st): State<AppState>, p: Posted) -> WebResult {
    let wu = &p.user;
    wu.cu.require(Action::RegisterRepository).map_err(fail(wu))?;
    let mut page = register_page(&st, wu, "new", "/repositories/new".into(), Some(&p.form)).await.map_err(fail(wu))?;
    if p.form.get("op") == "refresh" {
        refresh_into(&st, &wu.cu, &mut page, p.form.opt("credential")).await;
        return ok(&page);
    }
    // The empty choice is "Choose by template".
    let (credential, anonymous) = posted_access(p.form.opt("credential"));
    let req = RepositoryCreate {
        name: p.form.get("name"),
        vcs: p.form.opt("vcs").unwrap_or_else(|| "git".into()),
        clone_url: p.form.get("clone_url"),
        credential,
        anonymous,
        default_branch: p.form.opt("default_branch"),
        webhook: p.form.get("webhook") == "on",
    };
    match repositories::register(&st, &wu.cu, req).await {
        Ok(r) => Ok(see_other(&format!("/?registered={}", r.id))),
        Err(e) => register_refused(wu, page, e).await,
    }
}

/// The form again with why it was refused; `already_registered` links to the repository that
/// has the URL. A repository deleted while its edit form was open is the "Not found" page.
async fn register_refused(wu: &WebUser, mut page: RegisterPage, e: crate::service::Error) -> WebResult {
    if let crate::service::Error::Conflict(Conflict::RepositoryRegistered { id, name, .. }) = &e {
        page.existing = Some((*id, name.clone()));
    }
    let e = ApiError::from(e);
    if e.status == StatusCode::NOT_FOUND && e.code == Code::RepositoryNotFound {
        return Err(fail(wu)(e));
    }
    form_error(wu, e, async { Ok::<_, ApiError>(page) }).await
}

/// Refresh from the page's script: the API's answer (`RemoteBranches`, or its error body with
/// every step), behind the session's CSRF token instead of a bearer token.
pub async fn refresh_json(
    State(st): State<AppState>,
    wu: WebUser,
    headers: HeaderMap,
    Json(req): Json<RemoteBranchesRequest>,
) -> Response {
    let sent = headers.get("x-csrf-token").and_then(|v| v.to_str().ok()).unwrap_or("");
    if wu.csrf.is_empty() || !auth::constant_time_eq(sent, &wu.csrf) {
        return csrf_refused().into_response();
    }
    match repositories::remote_branches(&st, &wu.cu, req).await {
        Ok(rb) => Json(rb).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// What the Register form's script sends as a URL is pasted or left.
#[derive(serde::Deserialize)]
pub struct PastedUrlRequest {
    pub clone_url: String,
}

/// The clone URL as pasted, read by the parser registration uses (`berth_core::clone_url`), so
/// the form can normalise the field and name the host and repository before anything is
/// checked. Answers 200 either way: `{"ok": true, canonical, provider, provider_label, host,
/// repository, name, existing, other_transport}` or `{"ok": false, code, message, remedy}`. A refused URL is
/// never echoed back (it may carry a password).
pub async fn clone_url_json(
    State(st): State<AppState>,
    wu: WebUser,
    headers: HeaderMap,
    Json(req): Json<PastedUrlRequest>,
) -> Response {
    let sent = headers.get("x-csrf-token").and_then(|v| v.to_str().ok()).unwrap_or("");
    if wu.csrf.is_empty() || !auth::constant_time_eq(sent, &wu.csrf) {
        return csrf_refused().into_response();
    }
    match repositories::inspect_url(&st, &wu.cu, &req.clone_url).await {
        Ok(Ok(p)) => Json(serde_json::json!({
            "ok": true,
            "canonical": p.url.canonical(),
            "provider": p.url.provider.as_str(),
            "provider_label": provider_label(p.url.provider),
            "host": p.url.host,
            "repository": p.url.path,
            "name": p.url.repo_name(),
            "existing": p.existing.map(|(id, name)| serde_json::json!({
                "id": id,
                "name": name,
                "href": format!("/repositories/{id}"),
            })),
            "other_transport": p.other_transport.map(|(id, name, clone_url)| serde_json::json!({
                "id": id,
                "name": name,
                "transport": if clone_url.starts_with("ssh://") { "SSH" } else { "HTTPS" },
                "href": format!("/repositories/{id}"),
            })),
        }))
        .into_response(),
        Ok(Err(e)) => Json(url_refusal(&e)).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

fn url_refusal(e: &UrlError) -> serde_json::Value {
    serde_json::json!({
        "ok": false,
        "code": e.code().as_str(),
        "message": sentence(&e.to_string()),
        "remedy": e.remedy(),
    })
}

/// Checks shown per page of a repository's history.
const HISTORY_PAGE: i64 = 50;

pub async fn repo(State(st): State<AppState>, wu: WebUser, Path(id): Path<i64>, q: Q) -> WebResult {
    let r = repositories::show(&st, &wu.cu, id).await.map_err(fail(&wu))?;
    let before = q.0.get("before").and_then(|v| v.parse::<i64>().ok());
    let history = checks::history(&st, &wu.cu, id, before, HISTORY_PAGE).await.map_err(fail(&wu))?;
    let mut l = layout(&wu, &r.name, "repos");
    if q.0.contains_key("checked") {
        let steps = r.last_check.as_ref().map(|c| c.checks.as_slice()).unwrap_or_default();
        let (kind, text) = outcome_banner("Checked", "The check", steps);
        l = flash(l, kind, text);
    } else if let Some(w) = q.0.get("webhook") {
        let text = if w == "registered" { "Webhook registered on the host." } else { "Webhook removed from the host." };
        l = flash(l, "ok", text.to_owned());
    } else if q.0.contains_key("saved") {
        // An edit is saved only after its check passed; the banner still names any warning.
        let steps = r.last_check.as_ref().map(|c| c.checks.as_slice()).unwrap_or_default();
        let (kind, text) = outcome_banner("Saved after a successful check", "The check", steps);
        l = flash(l, kind, text);
    }
    let first = crate::service::paging::PageRequest { after: None, limit: Some(BRANCHES_SHOWN) };
    let listed = host_webhooks::branches(&st, &wu.cu, id, &first).await.map_err(fail(&wu))?;
    let branches_note = match &r.branches {
        None => "No branch list yet: the first check writes it.".to_owned(),
        Some(s) => {
            let by = if s.source == "webhook" { "the host's last push event" } else { "the last check" };
            let shown = if listed.next.is_some() {
                format!(" (the first {BRANCHES_SHOWN} shown; all at GET /api/v1/repositories/{id}/branches)")
            } else {
                String::new()
            };
            format!(
                "{} from {by}, {}{shown}.",
                berth_core::words::count(usize::try_from(s.branch_count).unwrap_or(0), "branch", "branches"),
                when(s.updated_at)
            )
        }
    };
    let webhook = r.webhook.as_ref().map(|w| WebhookView {
        url: w.url.clone(),
        hook_id: w.hook_id.clone(),
        deliveries: w.deliveries,
        rejected: w.rejected_deliveries,
    });
    let older = if i64::try_from(history.len()).unwrap_or(i64::MAX) >= HISTORY_PAGE {
        history.last().map(|c| c.id)
    } else {
        None
    };
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
        branches: listed
            .items
            .into_iter()
            .map(|b| {
                let default = b.name == r.default_branch;
                (b.name, b.commit, default)
            })
            .collect(),
        branches_note,
        webhook,
    };
    ok(&page)
}

/// Branches a repository's page lists.
const BRANCHES_SHOWN: i64 = 100;

/// The page's "Register webhook" button.
pub async fn webhook_create(State(st): State<AppState>, Path(id): Path<i64>, p: Posted) -> WebResult {
    host_webhooks::register(&st, &p.user.cu, id).await.map_err(fail(&p.user))?;
    Ok(see_other(&format!("/repositories/{id}?webhook=registered")))
}

/// The page's "Remove webhook" button.
pub async fn webhook_delete(State(st): State<AppState>, Path(id): Path<i64>, p: Posted) -> WebResult {
    host_webhooks::remove(&st, &p.user.cu, id).await.map_err(fail(&p.user))?;
    Ok(see_other(&format!("/repositories/{id}?webhook=removed")))
}

pub async fn check_now(State(st): State<AppState>, Path(id): Path<i64>, p: Posted) -> WebResult {
    checks::check_now(&st, &p.user.cu, id).await.map_err(fail(&p.user))?;
    Ok(see_other(&format!("/repositories/{id}?checked=1")))
}

pub async fn delete_repo(State(st): State<AppState>, Path(id): Path<i64>, p: Posted) -> WebResult {
    let r = repositories::delete(&st, &p.user.cu, id).await.map_err(fail(&p.user))?;
    Ok(see_other(&format!("/?deleted={}", enc(&r.name))))
}

pub async fn edit_form(State(st): State<AppState>, wu: WebUser, Path(id): Path<i64>) -> WebResult {
    wu.cu.require(Action::UpdateRepository).map_err(fail(&wu))?;
    let r = repositories::show(&st, &wu.cu, id).await.map_err(fail(&wu))?;
    let mut page =
        register_page(&st, &wu, "edit", format!("/repositories/{id}/edit"), None).await.map_err(fail(&wu))?;
    page.name = r.name;
    page.clone_url = r.clone_url;
    page.default_branch = r.default_branch;
    let cid = r.credential.as_ref().map_or_else(|| ANONYMOUS.to_owned(), |c| c.id.to_string());
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
        refresh_into(&st, &wu.cu, &mut page, p.form.opt("credential")).await;
        return ok(&page);
    }
    let (credential, anonymous) = posted_access(p.form.opt("credential"));
    let req = RepositoryUpdate {
        name: p.form.opt("name"),
        clone_url: p.form.opt("clone_url"),
        credential,
        anonymous,
        default_branch: p.form.opt("default_branch"),
    };
    match repositories::update(&st, &wu.cu, id, req).await {
        Ok(_) => Ok(see_other(&format!("/repositories/{id}?saved=1"))),
        Err(e) => register_refused(wu, page, e).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_core::StepName as N;

    fn step(name: N, status: StepStatus, message: &str) -> Step {
        Step {
            step: name,
            status,
            code: Code::Ok,
            message: message.to_owned(),
            remedy: String::new(),
            duration_ms: 0,
            details: Vec::new(),
        }
    }

    #[test]
    fn the_banner_states_the_real_outcome() {
        let pass = step(N::Url, StepStatus::Pass, "fine");
        let warn1 = step(N::GitDiscovery, StepStatus::Warn, "plain HTTP.");
        let warn2 = step(N::Credential, StepStatus::Warn, "the token expires in 5 days");
        let failed = step(N::Branches, StepStatus::Fail, "no branch");
        let all_passed = outcome_banner("Registered app", "Registration", std::slice::from_ref(&pass));
        assert_eq!(all_passed, ("ok", "Registered app.".to_owned()));
        let one = outcome_banner("Registered app", "Registration", &[pass.clone(), warn1.clone()]);
        assert_eq!(one, ("warn", "Registered app, with 1 warning: plain HTTP.".to_owned()));
        let two = outcome_banner("Checked", "The check", &[warn1.clone(), pass.clone(), warn2]);
        assert_eq!(two, ("warn", "Checked, with 2 warnings: plain HTTP; the token expires in 5 days.".to_owned()));
        let (kind, text) = outcome_banner("Checked", "The check", &[pass, warn1, failed]);
        assert_eq!(kind, "error");
        assert_eq!(text, "The check failed at Remote branches: no branch. See the steps below.");
    }

    #[test]
    fn a_refusal_names_the_field_at_fault() {
        let by_code = |code: &str, message: &str| Problem {
            code: code.to_owned(),
            message: message.to_owned(),
            ..Problem::default()
        };
        assert_eq!(field_at_fault(&by_code("name_taken", "")), "name");
        assert_eq!(field_at_fault(&by_code("already_registered", "")), "clone_url");
        assert_eq!(field_at_fault(&by_code("credential_not_found", "")), "credential");
        assert_eq!(field_at_fault(&by_code("invalid_input", "The repository name must be 1 to 100")), "name");
        assert_eq!(field_at_fault(&by_code("internal", "")), "");
        let failed_at = |name: N, code: Code| Problem {
            code: code.as_str().to_owned(),
            steps: steps(&[step(N::Url, StepStatus::Pass, ""), Step { code, ..step(name, StepStatus::Fail, "") }]),
            ..Problem::default()
        };
        assert_eq!(field_at_fault(&failed_at(N::GitDiscovery, Code::AuthFailed)), "credential");
        assert_eq!(field_at_fault(&failed_at(N::GitDiscovery, Code::RepositoryNotFoundOrNoAccess)), "clone_url");
        assert_eq!(field_at_fault(&failed_at(N::ApiScopes, Code::AccessDenied)), "credential");
        assert_eq!(field_at_fault(&failed_at(N::DefaultBranch, Code::BranchNotFound)), "default_branch");
    }
}
