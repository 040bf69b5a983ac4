//! Repositories: Refresh (list a remote's branches), register, list, show, update and delete.
//! Every write runs the whole check first and saves nothing when a step fails, so
//! "registered" always means "was reachable with this credential and had this branch".
//!
//! The clone URL is parsed once per request, here; the check pipeline and the store get the
//! parsed [`CloneUrl`].

use super::checks::{self, next_regular_check, stored_check};
use super::credentials::{resolve, warnings_of};
use super::paging::{self, Kind, PageRequest};
use super::templates::{choose_or_anonymous, Choice, NoTemplate};
use super::{Conflict, Error, Refusal, Result};
use crate::auth::{Action, CurrentUser};
use crate::state::AppState;
use berth_core::{CheckReason, CloneUrl, Code, Step, StepStatus, UrlError};
use berth_proto::Page;
use berth_proto::{
    CredentialRef, CredentialSelector, GitProtocol, RemoteBranch, RemoteBranches, RemoteBranchesRequest, Repository,
    RepositoryCreate, RepositoryStatus, RepositoryUpdate,
};
use berth_store::{CheckRow, CredentialRow, ListTotal, NewRepository, RepositoryFilter, RepositoryRow};
use chrono::Utc;
use std::collections::HashMap;

/// A repository as the API shows it, from its row, last check and credential.
fn view(st: &AppState, row: RepositoryRow, last: Option<CheckRow>, cred: Option<&CredentialRow>) -> Repository {
    // The store keeps the status (its last check's, or paused with its credential), so the list
    // can filter on it; the view shows the same value.
    let paused = row.status == RepositoryStatus::Paused.as_str();
    Repository {
        status: row.status.clone(),
        // Paused checks do not run until the credential is edited: there is no next check.
        next_check_at: row.next_check_at.filter(|_| !paused),
        checking_by: row.lease_owner.clone().filter(|_| row.lease_until.is_some_and(|u| u > Utc::now())),
        warnings: cred.map(|c| warnings_of(c, st.config.checks.pause_after_auth_failures)).unwrap_or_default(),
        // Shown for one repository (`view_of`), not in lists.
        branches: None,
        webhook: None,
        id: row.id,
        name: row.name,
        vcs: row.vcs,
        clone_url: row.clone_url,
        provider: berth_core::Provider::parse(&row.provider).unwrap_or(berth_core::Provider::Generic),
        default_branch: row.default_branch,
        credential: row.credential_id.zip(row.credential_name).map(|(id, name)| CredentialRef { id, name }),
        last_check: last.map(stored_check),
        created_at: row.created_at,
        updated_at: row.updated_at,
    }
}

/// One repository with its last check and its credential's warnings.
async fn view_of(st: &AppState, row: RepositoryRow) -> Result<Repository> {
    let last = st.store.last_check(row.id).await?;
    let cred = match row.credential_id {
        Some(id) => st.store.get_credential(id).await.ok(),
        None => None,
    };
    let id = row.id;
    let mut r = view(st, row, last, cred.as_ref());
    (r.branches, r.webhook) = super::host_webhooks::summary(st, id).await?;
    Ok(r)
}

fn parse_url(st: &AppState, raw: &str) -> std::result::Result<CloneUrl, UrlError> {
    CloneUrl::parse(raw, &st.config.integrations)
}

/// List the branches of a remote repository and its default branch: the Refresh button.
pub async fn remote_branches(st: &AppState, u: &CurrentUser, req: RemoteBranchesRequest) -> Result<RemoteBranches> {
    u.require(Action::UseCredential)?;
    let mut answer = listed_branches(st, req).await.map_err(|e| checks::fit_error(u, e))?;
    checks::fit_for(u, &mut answer.checks);
    Ok(answer)
}

async fn listed_branches(st: &AppState, req: RemoteBranchesRequest) -> Result<RemoteBranches> {
    let (url, chosen) = url_and_credential(st, &req.clone_url, req.credential.as_ref(), req.anonymous).await?;
    let mut out = checks::run(st, &url, chosen.credential.as_ref(), None, &chosen.reason).await;
    chosen.explain(&mut out.check.checks);
    // A missing default branch is not a failure for Refresh: the user picks one from the list.
    let blocking = out.check.checks.iter().any(|s| s.status == StepStatus::Fail && s.code != Code::NoDefaultBranch);
    match out.refs {
        Some(refs) if !blocking => Ok(RemoteBranches {
            clone_url: url.canonical(),
            provider: url.provider,
            default_branch: refs.default_branch.clone(),
            protocol: match refs.protocol {
                berth_git::Protocol::V2 => GitProtocol::V2,
                berth_git::Protocol::V0 => GitProtocol::V0,
            }
            .as_str()
            .to_owned(),
            branches: refs.branches.into_iter().map(|b| RemoteBranch { name: b.name, commit: b.commit }).collect(),
            checks: out.check.checks,
        }),
        _ => Err(Error::CheckFailed(out.check.checks)),
    }
}

/// What a pasted clone URL names, as the Register form shows it while the URL is typed.
pub struct PastedUrl {
    pub url: CloneUrl,
    /// The repository registered with this URL already (another spelling included): id and name.
    pub existing: Option<(i64, String)>,
    /// The same repository registered over the other transport (HTTPS or SSH): id, name and
    /// clone URL. Not a conflict (each is checked with its own credential), but worth seeing.
    pub other_transport: Option<(i64, String, String)>,
}

/// Reads a pasted clone URL with the same parser registration uses, and finds the repository
/// that has it already: the Register form shows both before anything is checked. `Ok(Err(_))`
/// is a URL refused, an answer for the form rather than a failure of the request.
pub async fn inspect_url(
    st: &AppState,
    u: &CurrentUser,
    raw: &str,
) -> Result<std::result::Result<PastedUrl, UrlError>> {
    if !u.may(Action::RegisterRepository) {
        u.require(Action::UpdateRepository)?;
    }
    let url = match parse_url(st, raw) {
        Ok(url) => url,
        Err(e) => return Ok(Err(e)),
    };
    let existing = st.store.find_by_repo_key(&url.repository_key()).await?.map(|r| (r.id, r.name));
    let other_transport = match url.other_transport_key() {
        Some(key) => st.store.find_by_repo_key(&key).await?.map(|r| (r.id, r.name, r.clone_url)),
        None => None,
    };
    Ok(Ok(PastedUrl { url, existing, other_transport }))
}

fn validate_name(name: &str) -> Result<String> {
    let n = name.trim();
    if n.is_empty() || n.chars().count() > 100 || n.chars().any(char::is_control) {
        return Err(Error::invalid(
            "the repository name must be 1 to 100 printable characters",
            "name it as it should appear in the list",
        ));
    }
    Ok(n.to_owned())
}

fn validate_vcs(vcs: &str) -> Result<String> {
    let v = vcs.trim().to_ascii_lowercase();
    if v != "git" {
        return Err(Error::Invalid(Refusal::new(
            Code::UnsupportedVcs,
            format!("version control system {:?} is not supported", vcs.chars().take(40).collect::<String>()),
            "choose GIT: Berth registers Git repositories",
        )));
    }
    Ok(v)
}

/// What a registration or an update asks to save.
struct Wanted<'a> {
    /// The repository being updated; `None` registers a new one.
    id: Option<i64>,
    name: String,
    vcs: String,
    clone_url: &'a str,
    /// `None`: the credential templates choose (unless `anonymous`).
    credential: Option<&'a CredentialSelector>,
    /// No credential at all: anonymous access (a public repository).
    anonymous: bool,
    /// An update that named no credential keeps the repository's: said so in the check.
    kept_credential: bool,
    branch: Option<&'a str>,
}

/// The credential a check uses, or none (anonymous access), and why.
struct Access {
    credential: Option<CredentialRow>,
    /// "chosen explicitly", "chosen by template …", said by the credential step.
    reason: String,
    /// Anonymous because no template covers the URL (not because the request asked): a host
    /// that wants sign-in is then also told about the nearest templates.
    no_template: Option<NoTemplate>,
}

impl Access {
    /// Completes a failed anonymous check with what the templates say (see [`NoTemplate`]).
    fn explain(&self, steps: &mut [Step]) {
        if let Some(none) = &self.no_template {
            none.explain(steps);
        }
    }
}

/// Refuses a request that names a credential and asks for anonymous access at once.
fn one_access(selector: Option<&CredentialSelector>, anonymous: bool) -> Result<()> {
    if anonymous && selector.is_some() {
        return Err(Error::invalid(
            "give either a credential or anonymous access, not both",
            "drop credential to check the repository anonymously (a public repository), or drop anonymous to use \
             the credential",
        ));
    }
    Ok(())
}

/// The parsed clone URL and the credential to check it with. A named credential that does not
/// exist is reported before a bad URL (as it always was); without one, a bad URL fails the url
/// step, and a URL no template covers is checked anonymously (a host that wants sign-in then
/// answers `credential_required`). `anonymous` asks for no credential at all: the templates
/// are not asked.
async fn url_and_credential(
    st: &AppState,
    raw: &str,
    selector: Option<&CredentialSelector>,
    anonymous: bool,
) -> Result<(CloneUrl, Access)> {
    one_access(selector, anonymous)?;
    let url = parse_url(st, raw);
    if let (Some(sel), Err(_)) = (selector, &url) {
        super::credentials::resolve(st, sel).await?;
    }
    let url = url.map_err(|e| Error::CheckFailed(crate::checks::url_refused(&e).checks))?;
    if anonymous {
        return Ok((url, Access { credential: None, reason: "chosen explicitly".to_owned(), no_template: None }));
    }
    let access = match choose_or_anonymous(st, &url, selector).await? {
        Choice::Credential(c) => Access { credential: Some(c.credential), reason: c.reason, no_template: None },
        Choice::None(none) => Access { credential: None, reason: none.reason.clone(), no_template: Some(none) },
    };
    Ok((url, access))
}

/// Checks and saves a repository: runs every step and saves nothing if one fails. A
/// repository registered already is refused before any network traffic; the store refuses it
/// again, atomically, if another registration won the race meanwhile.
/// Answers the saved row and why its credential was chosen.
async fn checked_save(st: &AppState, w: Wanted<'_>) -> Result<(RepositoryRow, String)> {
    let url = parse_url(st, w.clone_url);
    if let Ok(url) = &url {
        let key = url.repository_key();
        if let Some(existing) = st.store.find_by_repo_key(&key).await?.filter(|r| Some(r.id) != w.id) {
            return Err(Error::Conflict(Conflict::RepositoryRegistered {
                id: existing.id,
                name: existing.name,
                clone_url: existing.clone_url,
            }));
        }
    }
    let (url, mut chosen) = url_and_credential(st, w.clone_url, w.credential, w.anonymous).await?;
    if w.kept_credential {
        let kept =
            if chosen.credential.is_some() { checks::REGISTERED_CREDENTIAL } else { checks::REGISTERED_ANONYMOUS };
        kept.clone_into(&mut chosen.reason);
    }
    let cred = chosen.credential.take();
    let started = Utc::now();
    let mut out = checks::run(st, &url, cred.as_ref(), w.branch, &chosen.reason).await;
    chosen.explain(&mut out.check.checks);
    let branches = checks::branch_list(&out);
    // A remote whose HEAD names a missing branch has no default to save: Refresh warns, but
    // registering without a branch must ask for one ("registered" means "had this branch").
    for s in &mut out.check.checks {
        if s.code == Code::DefaultBranchMissing && out.default_branch.is_none() {
            s.status = StepStatus::Fail;
            s.remedy = "give the default branch (default_branch) as one of the branches listed".to_owned();
        }
    }
    let (Some(default_branch), true) =
        (out.default_branch, out.check.checks.iter().all(|s| s.status != StepStatus::Fail))
    else {
        return Err(Error::CheckFailed(out.check.checks));
    };
    let new = NewRepository {
        name: w.name,
        vcs: w.vcs,
        clone_url: url.canonical(),
        repo_key: url.repository_key(),
        provider: url.provider.as_str().to_owned(),
        default_branch,
        credential_id: cred.as_ref().map(|c| c.id),
        next_check_at: Some(next_regular_check(st)),
    };
    let row = match w.id {
        None => st.store.create_repository(&new).await?,
        Some(id) => st.store.update_repository(id, &new).await?,
    };
    checks::record_outcome(
        st,
        row.id,
        &row.name,
        cred.as_ref(),
        &out.check,
        started,
        out.duration,
        CheckReason::Register,
        None,
        branches,
    )
    .await?;
    Ok((row, chosen.reason))
}

/// Register a repository after checking access to it.
pub async fn register(st: &AppState, u: &CurrentUser, req: RepositoryCreate) -> Result<Repository> {
    u.require(Action::RegisterRepository)?;
    let vcs = validate_vcs(&req.vcs)?;
    let name = validate_name(&req.name)?;
    if req.webhook {
        // What makes a webhook impossible is refused before anything is checked or saved.
        let (url, chosen) = url_and_credential(st, &req.clone_url, req.credential.as_ref(), req.anonymous).await?;
        super::host_webhooks::prerequisites(st, &url, chosen.credential.as_ref()).await?;
    }
    let wanted = Wanted {
        id: None,
        name,
        vcs,
        clone_url: &req.clone_url,
        credential: req.credential.as_ref(),
        anonymous: req.anonymous,
        kept_credential: false,
        branch: req.default_branch.as_deref(),
    };
    let (row, reason) = checked_save(st, wanted).await.map_err(|e| checks::fit_error(u, e))?;
    if req.webhook {
        // All or nothing: a registration that asked for a webhook the host refused is undone.
        if let Err(e) = super::host_webhooks::create(st, &row).await {
            st.store.delete_repository(row.id).await?;
            tracing::info!(repository = row.id, "registration undone: the host refused the webhook");
            return Err(e);
        }
    }
    tracing::info!(repository = row.id, "repository registered");
    let detail = match &row.credential_name {
        Some(name) => format!("{} branch {} with credential {name:?}, {reason}", row.clone_url, row.default_branch),
        None => format!("{} branch {} without a credential (public repository)", row.clone_url, row.default_branch),
    };
    let detail = if req.webhook { format!("{detail}; webhook registered on the host") } else { detail };
    u.audit(&st.store, "repository.register", "repository", Some(row.id), &row.name, detail).await;
    view_of(st, row).await
}

/// Update a repository; the result is re-checked before it is saved.
pub async fn update(st: &AppState, u: &CurrentUser, id: i64, req: RepositoryUpdate) -> Result<Repository> {
    u.require(Action::UpdateRepository)?;
    let cur = st.store.get_repository(id).await?;
    let name = validate_name(req.name.as_deref().unwrap_or(&cur.name))?;
    let clone_url = req.clone_url.unwrap_or_else(|| cur.clone_url.clone());
    // An update that names no credential keeps the repository's own (templates choose only
    // for new registrations, Refresh and imports: changing a working repository's credential
    // because a template was added later would surprise its owner).
    // A repository without a credential stays without one unless the update names one.
    one_access(req.credential.as_ref(), req.anonymous)?;
    let kept_credential = req.credential.is_none() && !req.anonymous;
    let credential = req.credential.or(cur.credential_id.map(CredentialSelector::Id)).filter(|_| !req.anonymous);
    let branch = req.default_branch.unwrap_or_else(|| cur.default_branch.clone());
    let wanted = Wanted {
        id: Some(id),
        name,
        vcs: cur.vcs.clone(),
        clone_url: &clone_url,
        anonymous: credential.is_none(),
        credential: credential.as_ref(),
        kept_credential,
        branch: Some(&branch),
    };
    let (row, _) = checked_save(st, wanted).await.map_err(|e| checks::fit_error(u, e))?;
    tracing::info!(repository = id, "repository updated");
    u.audit(&st.store, "repository.update", "repository", Some(id), &row.name, changes(&cur, &row)).await;
    view_of(st, row).await
}

/// The audit detail of an update: which fields changed, from what to what.
fn changes(cur: &RepositoryRow, row: &RepositoryRow) -> String {
    let mut changed = Vec::new();
    if row.name != cur.name {
        changed.push(format!("name {:?} -> {:?}", cur.name, row.name));
    }
    if row.clone_url != cur.clone_url {
        changed.push(format!("clone URL {} -> {}", cur.clone_url, row.clone_url));
    }
    if row.credential_id != cur.credential_id {
        let name = |n: &Option<String>| n.as_ref().map_or_else(|| "none".to_owned(), |n| format!("{n:?}"));
        changed.push(format!("credential {} -> {}", name(&cur.credential_name), name(&row.credential_name)));
    }
    if row.default_branch != cur.default_branch {
        changed.push(format!("default branch {} -> {}", cur.default_branch, row.default_branch));
    }
    if changed.is_empty() {
        changed.push("no field changed; re-checked".to_owned());
    }
    changed.join("; ")
}

/// Which repositories a list shows: each field that is set must match.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// A case-insensitive substring of the name or the clone URL.
    pub q: Option<String>,
    /// Any of these statuses (`ok`, `warn`, `fail`, `paused`, `unchecked`).
    pub statuses: Vec<String>,
    /// A credential's id or name.
    pub credential: Option<String>,
    pub provider: Option<String>,
    /// The clone URL's host (with its port when it has one).
    pub host: Option<String>,
}

impl ListFilter {
    /// The store's filter, each value checked: an unknown status or provider, or a credential
    /// that does not exist, is a mistake in the request rather than an empty list.
    async fn to_store(&self, st: &AppState) -> Result<RepositoryFilter> {
        let text = |v: &Option<String>| v.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned);
        let mut statuses = Vec::new();
        for s in &self.statuses {
            let s = s.trim();
            if s.is_empty() {
                continue;
            }
            let Some(known) = RepositoryStatus::parse(s) else {
                return Err(Error::invalid(
                    format!(
                        "status {:?} is not one of ok, warn, fail, paused, unchecked",
                        s.chars().take(40).collect::<String>()
                    ),
                    "give status once per status wanted, e.g. status=fail&status=warn",
                ));
            };
            statuses.push(known.as_str().to_owned());
        }
        let provider = match text(&self.provider) {
            None => None,
            Some(p) => match berth_core::Provider::parse(&p.to_ascii_lowercase()) {
                Some(p) => Some(p.as_str().to_owned()),
                None => {
                    return Err(Error::invalid(
                        format!("provider {:?} is not one Berth knows", p.chars().take(40).collect::<String>()),
                        "use a provider as the list shows it: bitbucket-cloud, bitbucket-datacenter, github, gitlab, azure-devops or generic",
                    ))
                }
            },
        };
        let credential_id = match text(&self.credential) {
            None => None,
            Some(c) => Some(resolve(st, &CredentialSelector::Name(c)).await?.id),
        };
        Ok(RepositoryFilter { q: text(&self.q), statuses, credential_id, provider, host: text(&self.host) })
    }
}

/// One page of registered repositories by name (case-insensitive), each with its last check
/// (without steps), status and warnings. A few short queries whatever the page's depth or the
/// number of repositories: the page (an index range, or a text search's few matches), its
/// total (from the kept counts, or a search's bounded count; none when a first page holds
/// every match), and the last checks and credentials of the page's rows only.
pub async fn list(st: &AppState, u: &CurrentUser, filter: &ListFilter, page: &PageRequest) -> Result<Page<Repository>> {
    u.require(Action::ReadRepositories)?;
    let f = filter.to_store(st).await?;
    let after = page.key(Kind::Repositories)?;
    let (rows, total) = st.store.repository_list(&f, after.as_deref(), page.limit()).await?;
    page_of_rows(st, rows, page.limit(), total).await
}

/// A page of VC Repos: the page, and how many repositories match the other filters per status
/// (every status, zero included, in the order of [`RepositoryStatus::ALL`]): the counts beside
/// the status filter, `None` when a text search matches more than the store counts exactly.
/// The page's `total` is the sum of the chosen statuses' counts, so the matches are counted
/// once.
pub async fn list_with_counts(
    st: &AppState,
    u: &CurrentUser,
    filter: &ListFilter,
    page: &PageRequest,
) -> Result<(Page<Repository>, Option<Vec<(RepositoryStatus, i64)>>)> {
    u.require(Action::ReadRepositories)?;
    let f = filter.to_store(st).await?;
    let after = page.key(Kind::Repositories)?;
    let (rows, counts) = st.store.repository_list_with_counts(&f, after.as_deref(), page.limit()).await?;
    let total = counts.total(&f.statuses);
    let by_status: HashMap<&str, i64> = counts.counts.iter().map(|(s, n)| (s.as_str(), *n)).collect();
    let chips = counts
        .exact
        .then(|| RepositoryStatus::ALL.iter().map(|s| (*s, by_status.get(s.as_str()).copied().unwrap_or(0))).collect());
    Ok((page_of_rows(st, rows, page.limit(), total).await?, chips))
}

/// The API's page of `rows` (fetched with `limit + 1`): each with its last check and its
/// credential's warnings, read for these rows only.
async fn page_of_rows(
    st: &AppState,
    rows: Vec<RepositoryRow>,
    limit: i64,
    total: ListTotal,
) -> Result<Page<Repository>> {
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let mut cred_ids: Vec<i64> = rows.iter().filter_map(|r| r.credential_id).collect();
    cred_ids.sort_unstable();
    cred_ids.dedup();
    let (mut last, creds) =
        tokio::try_join!(st.store.last_check_summaries_of(&ids), st.store.credentials_by_ids(&cred_ids))?;
    let creds: HashMap<i64, CredentialRow> = creds.into_iter().map(|c| (c.id, c)).collect();
    let page = paging::page_of(
        rows,
        limit,
        total.n,
        Kind::Repositories,
        |r| r.name.clone(),
        |r| {
            let c = last.remove(&r.id);
            let cred = r.credential_id.and_then(|id| creds.get(&id));
            view(st, r, c, cred)
        },
    );
    Ok(Page { total_exact: total.exact, ..page })
}

pub async fn show(st: &AppState, u: &CurrentUser, id: i64) -> Result<Repository> {
    u.require(Action::ReadRepositories)?;
    let row = st.store.get_repository(id).await?;
    let mut r = view_of(st, row).await?;
    if let Some(c) = &mut r.last_check {
        checks::fit_for(u, &mut c.checks);
    }
    Ok(r)
}

/// Delete a repository; answers what was deleted.
pub async fn delete(st: &AppState, u: &CurrentUser, id: i64) -> Result<Repository> {
    u.require(Action::DeleteRepository)?;
    let row = st.store.get_repository(id).await?;
    let mut gone = view(st, row.clone(), None, None);
    // Best effort: the repository goes either way; a hook left on the host is said plainly.
    gone.warnings.extend(super::host_webhooks::remove_before_delete(st, &row).await);
    st.store.delete_repository(id).await?;
    tracing::info!(repository = id, "repository deleted");
    let detail = match gone.warnings.iter().find(|w| w.code == Code::WebhookRefused) {
        Some(w) => format!("{}; {}", row.clone_url, w.message),
        None => row.clone_url.clone(),
    };
    u.audit(&st.store, "repository.delete", "repository", Some(id), &row.name, detail).await;
    Ok(gone)
}
