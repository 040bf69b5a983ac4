//! `/api/v1/repositories` and `/api/v1/remote-branches`: Refresh, register, list, show,
//! update, delete and re-check repositories. Every write runs the full check first and saves
//! nothing when a step fails.

use super::credentials::resolve;
use super::extract::{ApiJson, ApiQuery, IdPath};
use crate::auth::{Action, CurrentUser};
use crate::checks::{self, Target};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use berth_core::{Check, CloneUrl, Code};
use berth_proto::{
    CredentialRef, ErrorBody, RemoteBranch, RemoteBranches, RemoteBranchesRequest, Repository, RepositoryCreate, RepositoryUpdate,
    StoredCheck,
};
use crate::background::{self, next_due};
use berth_core::credential::ExpiryWarning;
use berth_proto::{Scheduled, Warning};
use berth_store::{CheckReason, CheckRow, CredentialRow, NewRepository, RepositoryRow};
use chrono::Utc;

pub(crate) fn stored_check(c: CheckRow) -> StoredCheck {
    StoredCheck {
        id: c.id,
        ok: c.ok,
        status: c.status.as_str().to_owned(),
        reason: c.reason.as_str().to_owned(),
        instance: c.instance,
        code: c.code,
        checked_at: c.checked_at,
        duration_ms: c.duration_ms,
        warning_codes: c.warn_codes,
        checks: c.steps,
    }
}

/// What needs attention on a repository now, from its credential: the expiry warning of
/// today (30, 7, 1 days before, or expired) and paused background checks.
pub(crate) fn credential_warnings(cred: &CredentialRow) -> Vec<Warning> {
    let mut out = Vec::new();
    if let Some(w) = ExpiryWarning::of(cred.expires_on, Utc::now().date_naive()) {
        out.push(Warning { code: w.code(), message: w.message(&cred.name), remedy: w.remedy().to_owned() });
    }
    if let Some(at) = cred.checks_paused_at {
        out.push(Warning {
            code: Code::AuthFailed,
            message: format!(
                "background checks with credential {:?} are paused since {} after {} authentication failures in a row, so that polling cannot lock the account",
                cred.name,
                at.format("%Y-%m-%d %H:%M UTC"),
                cred.auth_failures
            ),
            remedy: "replace the token or fix the credential (editing it resumes the checks at once), or re-check a repository by hand".to_owned(),
        });
    }
    out
}

fn to_wire(row: RepositoryRow, last: Option<CheckRow>, cred: Option<&CredentialRow>) -> Repository {
    let paused = cred.is_some_and(|c| c.checks_paused_at.is_some());
    let status = match (&last, paused) {
        (_, true) => "paused".to_owned(),
        (Some(c), false) => c.status.as_str().to_owned(),
        (None, false) => "unchecked".to_owned(),
    };
    Repository {
        status,
        next_check_at: row.next_check_at,
        checking_by: row.lease_owner.clone().filter(|_| row.lease_until.is_some_and(|u| u > Utc::now())),
        warnings: cred.map(credential_warnings).unwrap_or_default(),
        id: row.id,
        name: row.name,
        vcs: row.vcs,
        clone_url: row.clone_url,
        provider: berth_core::Provider::parse(&row.provider).unwrap_or(berth_core::Provider::Generic),
        default_branch: row.default_branch,
        credential: CredentialRef { id: row.credential_id, name: row.credential_name },
        last_check: last.map(stored_check),
        created_at: row.created_at,
        updated_at: row.updated_at,
    }
}

fn duration_ms(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// List the branches of a remote repository and its default branch: the Refresh button.
#[utoipa::path(post, path = "/api/v1/remote-branches", tag = "repositories", request_body = RemoteBranchesRequest,
    responses((status = 200, body = RemoteBranches), (status = 403, body = ErrorBody), (status = 422, description = "a check step failed; `checks` lists every step", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn remote_branches(State(st): State<AppState>, u: CurrentUser, ApiJson(req): ApiJson<RemoteBranchesRequest>) -> ApiResult<Json<RemoteBranches>> {
    Ok(Json(list_remote_branches(&st, &u, req).await?))
}

pub async fn list_remote_branches(st: &AppState, u: &CurrentUser, req: RemoteBranchesRequest) -> ApiResult<RemoteBranches> {
    u.require(Action::UseCredential)?;
    let cred = resolve(st, &req.credential).await?;
    let out = checks::run(st, Target { clone_url: &req.clone_url, credential: &cred, wanted_branch: None }).await;
    // A missing default branch is not a failure for Refresh: the user picks one from the list.
    let blocking = out.check.checks.iter().any(|s| s.status == berth_core::StepStatus::Fail && s.code != Code::NoDefaultBranch);
    match (out.refs, out.url) {
        (Some(refs), Some(url)) if !blocking => Ok(RemoteBranches {
            clone_url: url.canonical(),
            provider: url.provider,
            default_branch: refs.default_branch.clone(),
            protocol: match refs.protocol {
                berth_git::Protocol::V2 => "v2",
                berth_git::Protocol::V0 => "v0",
            }
            .to_owned(),
            branches: refs.branches.into_iter().map(|b| RemoteBranch { name: b.name, commit: b.commit }).collect(),
            checks: out.check.checks,
        }),
        _ => Err(ApiError::check_failed(out.check.checks)),
    }
}

fn validate_name(name: &str) -> ApiResult<String> {
    let n = name.trim();
    if n.is_empty() || n.chars().count() > 100 || n.chars().any(char::is_control) {
        return Err(ApiError::invalid("the repository name must be 1 to 100 printable characters", "name it as it should appear in the list"));
    }
    Ok(n.to_owned())
}

fn validate_vcs(vcs: &str) -> ApiResult<String> {
    let v = vcs.trim().to_ascii_lowercase();
    if v != "git" {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            Code::UnsupportedVcs,
            format!("version control system {:?} is not supported", vcs.chars().take(40).collect::<String>()),
            "choose GIT: Berth registers Git repositories",
        ));
    }
    Ok(v)
}

/// Parses the URL early so a duplicate is refused before any network traffic.
async fn refuse_duplicate(st: &AppState, clone_url: &str, except: Option<i64>) -> ApiResult<()> {
    let Ok(url) = CloneUrl::parse(clone_url, &st.config.integrations) else { return Ok(()) };
    if let Some(existing) = st.store.find_by_repo_key(&url.repository_key()).await?.filter(|r| Some(r.id) != except) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            Code::AlreadyRegistered,
            format!("this repository is already registered as {:?} (id {}, {})", existing.name, existing.id, existing.clone_url),
            "open the existing repository instead, or delete it first",
        ));
    }
    Ok(())
}

/// Check and save a repository: runs every check step and saves nothing if one fails.
async fn checked_save(st: &AppState, id: Option<i64>, name: String, vcs: String, clone_url: &str, credential: &str, branch: Option<&str>) -> ApiResult<(RepositoryRow, Check, u64)> {
    refuse_duplicate(st, clone_url, id).await?;
    let cred = resolve(st, credential).await?;
    let started = Utc::now();
    let out = checks::run(st, Target { clone_url, credential: &cred, wanted_branch: branch }).await;
    let (Some(url), Some(default_branch), true) = (out.url, out.default_branch, out.check.ok) else {
        return Err(ApiError::check_failed(out.check.checks));
    };
    let new = NewRepository {
        name,
        vcs,
        clone_url: url.canonical(),
        repo_key: url.repository_key(),
        provider: url.provider.as_str().to_owned(),
        default_branch,
        credential_id: cred.id,
        next_check_at: Some(next_due(Utc::now(), st.config.checks.interval, st.config.checks.jitter)),
    };
    let row = match id {
        None => st.store.create_repository(&new).await?,
        Some(id) => st.store.update_repository(id, &new).await?,
    };
    let ms = duration_ms(out.duration);
    background::record_outcome(st, row.id, &row.name, &cred, &out.check, started, out.duration, CheckReason::Register, None)
        .await?;
    Ok((row, out.check, ms))
}

/// Register a repository after checking access to it.
#[utoipa::path(post, path = "/api/v1/repositories", tag = "repositories", request_body = RepositoryCreate,
    responses((status = 201, body = Repository), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, description = "invalid input or a failed check with every step", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create(State(st): State<AppState>, u: CurrentUser, ApiJson(req): ApiJson<RepositoryCreate>) -> ApiResult<(StatusCode, Json<Repository>)> {
    Ok((StatusCode::CREATED, Json(register_repository(&st, &u, req).await?)))
}

pub async fn register_repository(st: &AppState, u: &CurrentUser, req: RepositoryCreate) -> ApiResult<Repository> {
    u.require(Action::RegisterRepository)?;
    let vcs = validate_vcs(&req.vcs)?;
    let name = validate_name(&req.name)?;
    let (row, _, _) = checked_save(st, None, name, vcs, &req.clone_url, &req.credential, req.default_branch.as_deref()).await?;
    tracing::info!(repository = row.id, "repository registered");
    let detail = format!("{} branch {} with credential {:?}", row.clone_url, row.default_branch, row.credential_name);
    u.audit(&st.store, "repository.register", "repository", Some(row.id), &row.name, detail).await;
    wire(st, row).await
}

/// One repository as the API shows it: with its last check and its credential's warnings.
async fn wire(st: &AppState, row: RepositoryRow) -> ApiResult<Repository> {
    let last = st.store.last_check(row.id).await?;
    let cred = st.store.get_credential(row.credential_id).await.ok();
    Ok(to_wire(row, last, cred.as_ref()))
}

/// Registered repositories by name, each with its last check (without steps), status and
/// warnings. All of them by default; `limit` and `offset` page through a long list.
#[utoipa::path(get, path = "/api/v1/repositories", tag = "repositories", params(ListQuery),
    responses((status = 200, body = Vec<Repository>), (status = 403, body = ErrorBody)), security(("bearer" = [])))]
pub async fn list(State(st): State<AppState>, u: CurrentUser, ApiQuery(q): ApiQuery<ListQuery>) -> ApiResult<Json<Vec<Repository>>> {
    match q.limit {
        None if q.offset.is_none() => Ok(Json(list_repositories(&st, &u).await?)),
        limit => Ok(Json(list_repositories_page(&st, &u, limit.map(|l| l.clamp(1, 10_000)), q.offset.unwrap_or(0)).await?)),
    }
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// At most this many repositories (1 to 10,000); all when left out.
    pub limit: Option<i64>,
    /// Skip this many first.
    pub offset: Option<i64>,
}

pub async fn list_repositories(st: &AppState, u: &CurrentUser) -> ApiResult<Vec<Repository>> {
    list_repositories_page(st, u, None, 0).await
}

pub async fn list_repositories_page(st: &AppState, u: &CurrentUser, limit: Option<i64>, offset: i64) -> ApiResult<Vec<Repository>> {
    u.require(Action::ReadRepositories)?;
    let rows = st.store.list_repositories_page(limit, offset).await?;
    let mut last = if limit.is_some() {
        st.store.last_check_summaries_of(&rows.iter().map(|r| r.id).collect::<Vec<_>>()).await?
    } else {
        st.store.last_check_summaries().await?
    };
    let creds: std::collections::HashMap<i64, CredentialRow> =
        st.store.list_credentials().await?.into_iter().map(|c| (c.id, c)).collect();
    Ok(rows
        .into_iter()
        .map(|r| {
            let c = last.remove(&r.id);
            let cred = creds.get(&r.credential_id);
            to_wire(r, c, cred)
        })
        .collect())
}

#[utoipa::path(get, path = "/api/v1/repositories/{id}", tag = "repositories", params(("id" = i64, Path)),
    responses((status = 200, body = Repository), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn show(State(st): State<AppState>, u: CurrentUser, IdPath(id): IdPath) -> ApiResult<Json<Repository>> {
    Ok(Json(show_repository(&st, &u, id).await?))
}

pub async fn show_repository(st: &AppState, u: &CurrentUser, id: i64) -> ApiResult<Repository> {
    u.require(Action::ReadRepositories)?;
    let row = st.store.get_repository(id).await?;
    wire(st, row).await
}

/// Update a repository; the result is re-checked before it is saved.
#[utoipa::path(patch, path = "/api/v1/repositories/{id}", tag = "repositories", params(("id" = i64, Path)), request_body = RepositoryUpdate,
    responses((status = 200, body = Repository), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn update(State(st): State<AppState>, u: CurrentUser, IdPath(id): IdPath, ApiJson(req): ApiJson<RepositoryUpdate>) -> ApiResult<Json<Repository>> {
    Ok(Json(update_repository(&st, &u, id, req).await?))
}

pub async fn update_repository(st: &AppState, u: &CurrentUser, id: i64, req: RepositoryUpdate) -> ApiResult<Repository> {
    u.require(Action::UpdateRepository)?;
    let cur = st.store.get_repository(id).await?;
    let name = validate_name(req.name.as_deref().unwrap_or(&cur.name))?;
    let clone_url = req.clone_url.unwrap_or_else(|| cur.clone_url.clone());
    let credential = req.credential.unwrap_or_else(|| cur.credential_id.to_string());
    let branch = req.default_branch.unwrap_or_else(|| cur.default_branch.clone());
    let (row, _, _) = checked_save(st, Some(id), name, cur.vcs.clone(), &clone_url, &credential, Some(&branch)).await?;
    tracing::info!(repository = id, "repository updated");
    let mut changed = Vec::new();
    if row.name != cur.name {
        changed.push(format!("name {:?} -> {:?}", cur.name, row.name));
    }
    if row.clone_url != cur.clone_url {
        changed.push(format!("clone URL {} -> {}", cur.clone_url, row.clone_url));
    }
    if row.credential_id != cur.credential_id {
        changed.push(format!("credential {:?} -> {:?}", cur.credential_name, row.credential_name));
    }
    if row.default_branch != cur.default_branch {
        changed.push(format!("default branch {} -> {}", cur.default_branch, row.default_branch));
    }
    if changed.is_empty() {
        changed.push("no field changed; re-checked".to_owned());
    }
    u.audit(&st.store, "repository.update", "repository", Some(id), &row.name, changed.join("; ")).await;
    wire(st, row).await
}

#[utoipa::path(delete, path = "/api/v1/repositories/{id}", tag = "repositories", params(("id" = i64, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn delete(State(st): State<AppState>, u: CurrentUser, IdPath(id): IdPath) -> ApiResult<StatusCode> {
    delete_repository(&st, &u, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn delete_repository(st: &AppState, u: &CurrentUser, id: i64) -> ApiResult<()> {
    u.require(Action::DeleteRepository)?;
    let row = st.store.get_repository(id).await?;
    st.store.delete_repository(id).await?;
    tracing::info!(repository = id, "repository deleted");
    u.audit(&st.store, "repository.delete", "repository", Some(id), &row.name, row.clone_url.clone()).await;
    Ok(())
}

/// Re-check a registered repository now and keep the result.
#[utoipa::path(post, path = "/api/v1/repositories/{id}/check", tag = "repositories", params(("id" = i64, Path)),
    responses((status = 200, description = "the check ran; `ok` says whether every step passed", body = Check), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn check(State(st): State<AppState>, u: CurrentUser, IdPath(id): IdPath) -> ApiResult<Json<Check>> {
    Ok(Json(check_repository(&st, &u, id).await?))
}

pub async fn check_repository(st: &AppState, u: &CurrentUser, id: i64) -> ApiResult<Check> {
    u.require(Action::CheckRepository)?;
    let row = st.store.get_repository(id).await?;
    let check = recheck(st, id, CheckReason::Manual).await?;
    let detail = check.first_failure().map_or_else(|| "all steps passed".to_owned(), |s| format!("{}: {}", s.step.as_str(), s.code));
    u.audit(&st.store, "repository.check", "repository", Some(id), &row.name, detail).await;
    Ok(check)
}

/// Runs the check of a registered repository with its stored credential and records it; the
/// next scheduled check moves a full interval on.
pub(crate) async fn recheck(st: &AppState, id: i64, reason: CheckReason) -> ApiResult<Check> {
    let row = st.store.get_repository(id).await?;
    let rec = background::check_registered(st, &row, reason).await?;
    st.store.set_next_check(id, next_due(Utc::now(), st.config.checks.interval, st.config.checks.jitter)).await?;
    Ok(rec.check)
}

/// A repository's check history, newest first: every check, scheduled or asked for.
#[utoipa::path(get, path = "/api/v1/repositories/{id}/checks", tag = "repositories",
    params(("id" = i64, Path), HistoryQuery),
    responses((status = 200, body = Vec<StoredCheck>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn history(State(st): State<AppState>, u: CurrentUser, IdPath(id): IdPath, ApiQuery(q): ApiQuery<HistoryQuery>) -> ApiResult<Json<Vec<StoredCheck>>> {
    Ok(Json(check_history(&st, &u, id, q.before, q.limit.unwrap_or(50)).await?))
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Only checks older than this check id (for paging).
    pub before: Option<i64>,
    /// At most this many (1 to 1000, default 50).
    pub limit: Option<i64>,
}

pub async fn check_history(st: &AppState, u: &CurrentUser, id: i64, before: Option<i64>, limit: i64) -> ApiResult<Vec<StoredCheck>> {
    u.require(Action::ReadRepositories)?;
    st.store.get_repository(id).await?;
    Ok(st.store.check_history(id, before, limit).await?.into_iter().map(stored_check).collect())
}

/// Check every registered repository as soon as possible ("check all now"). The checks run in
/// the background on whichever instances are running; their results appear in each
/// repository's history.
#[utoipa::path(post, path = "/api/v1/checks/schedule", tag = "repositories",
    responses((status = 200, body = Scheduled), (status = 403, body = ErrorBody)), security(("bearer" = [])))]
pub async fn schedule_all(State(st): State<AppState>, u: CurrentUser) -> ApiResult<Json<Scheduled>> {
    u.require(Action::CheckRepository)?;
    let scheduled = st.store.schedule_all_checks(Utc::now()).await?;
    st.background.wake();
    u.audit(&st.store, "repository.check_all", "repository", None, "", format!("{scheduled} repositories made due")).await;
    Ok(Json(Scheduled { scheduled }))
}
