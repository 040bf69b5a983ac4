//! Bitbucket Cloud, REST API 2.0.
//!
//! * `GET /user` says who an API token belongs to, but needs `read:user:bitbucket`: a 403 there
//!   with the scope-error body means "authenticated, profile not readable", and access tokens
//!   (which have no user) always get 403. Only 401 (and 410) mean the credential is refused.
//! * Scopes: Bitbucket does not report API-token scopes reliably; the evidence is, in order,
//!   the `x-oauth-scopes` header, a scope error's `detail.granted`, the scopes the user recorded.
//! * `GET /repositories/{ws}/{slug}`: 404 for "missing or hidden"; missing scopes answer 403 (some
//!   endpoints 400) with `Your credentials lack one or more required privilege scopes.`

use crate::pager::{self, Page};
use crate::parse::{self, CloudError};
use crate::{
    auth_failed_step, http_problem_step, json_headers, transport_step, unparseable_step, AuthShape, ForgeReport,
    RepoFacts, Session,
};
use berth_core::credential::{self, FULL_SCOPES, REGISTRATION_SCOPES};
use berth_core::scopes;
use berth_core::{Code, CredentialKind, Step, StepName};
use berth_git::api::ApiResponse;
use reqwest::header::HeaderMap;
use serde_json::Value;
use std::time::Instant;

const MAX_BRANCHES: usize = 200_000;

fn headers() -> HeaderMap {
    json_headers("application/json", &[])
}

/// What the answers so far say about the credential.
#[derive(Debug, Default)]
struct Evidence {
    /// `x-oauth-scopes`, the host's own list.
    header_scopes: Option<Vec<String>>,
    /// `detail.granted` of a scope error.
    body_granted: Option<Vec<String>>,
    /// `x-credential-type`: `api_token`, `repo_access_token`, …
    credential_type: Option<String>,
    /// The repository answered 200, which needs `read:repository:bitbucket`.
    repository_read: bool,
    /// Set by the credential step when the credential is an access token (no user behind it).
    token_label: Option<&'static str>,
}

impl Evidence {
    fn observe(&mut self, resp: &ApiResponse) {
        if let Some(s) = resp.header("x-oauth-scopes") {
            self.header_scopes = Some(scopes::parse_scope_list(s));
        }
        if let Some(t) = resp.header("x-credential-type").filter(|t| !t.is_empty()) {
            self.credential_type = Some(t.to_ascii_lowercase());
        }
    }

    fn observe_error(&mut self, err: &CloudError) {
        if let Some(g) = &err.granted {
            self.body_granted = Some(g.clone());
        }
    }
}

/// The access-token kind named by `x-credential-type`.
fn header_token_label(ev: &Evidence) -> Option<&'static str> {
    match ev.credential_type.as_deref()? {
        "repo_access_token" | "repository_access_token" => Some("repository access token"),
        "project_access_token" => Some("project access token"),
        "workspace_access_token" => Some("workspace access token"),
        t if t.ends_with("access_token") => Some("access token"),
        _ => None,
    }
}

/// The access-token kind, when the credential is one: as the credential step decided, else by
/// header, else by the stored kind.
fn access_token_label(s: &Session<'_>, ev: &Evidence) -> Option<&'static str> {
    if ev.token_label.is_some() {
        return ev.token_label;
    }
    if ev.credential_type.is_some() {
        return header_token_label(ev);
    }
    (s.cred.kind == CredentialKind::AccessToken).then_some("access token")
}

/// "a repository access token", "an access token".
fn with_article(noun: &str) -> String {
    if noun.starts_with(['a', 'e', 'i', 'o', 'u']) {
        format!("an {noun}")
    } else {
        format!("a {noun}")
    }
}

pub(crate) async fn run(s: &Session<'_>, repo_path: Option<&str>, report: &mut ForgeReport) {
    let mut ev = Evidence::default();
    if !credential_step(s, repo_path, &mut ev, report).await {
        return;
    }
    let Some(path) = repo_path else {
        let step = scopes_step(s, &ev, report);
        report.push(step);
        return;
    };
    let repo_step = match split_repo(path, StepName::ApiRepository) {
        Ok((ws, slug)) => repository_step(s, &ws, &slug, &mut ev, report).await,
        Err(step) => step,
    };
    let scopes = scopes_step(s, &ev, report);
    report.push(scopes);
    report.push(repo_step);
}

/// `ws/repo` → (`ws`, `repo`).
fn split_repo(path: &str, step: StepName) -> Result<(String, String), Step> {
    crate::owner_and_repo(path, step, "a Bitbucket Cloud repository path (workspace/repository)", "https://bitbucket.org/workspace/repository.git")
}

// ---------------------------------------------------------------------------------------------
// api_credential

/// Runs the credential step; `false` when the following steps cannot run.
async fn credential_step(
    s: &Session<'_>,
    repo_path: Option<&str>,
    ev: &mut Evidence,
    report: &mut ForgeReport,
) -> bool {
    let step = StepName::ApiCredential;
    let t = Instant::now();
    let kind = s.cred.kind;
    if kind == CredentialKind::BitbucketAppPassword {
        report.push(retired_step(step, Vec::new()).took(t.elapsed()));
        report.fatal = true;
        return false;
    }
    let resp = match s.get(s.url(&["user"]), &headers()).await {
        Ok(r) => r,
        Err(e) => {
            report.push(transport_step(step, &e, t.elapsed()));
            return false;
        }
    };
    ev.observe(&resp);
    let looks_app_password = scopes::looks_like_app_password(kind, s.cred.username(), s.cred.email(), s.secret());
    match resp.status {
        200 => {
            let Some(v) = parse::json(&resp.body) else {
                report.push(unparseable_step(step, &resp, "the user").took(t.elapsed()));
                return false;
            };
            // A Bearer token with a user behind it (OAuth) answers with that user; only the header
            // marks a repository, project or workspace access token.
            if let Some(label) = header_token_label(ev) {
                ev.token_label = Some(label);
                let who = token_identity(label, repo_path);
                report.push(Step::pass(step, format!("authenticated as {}", with_article(&who))).took(t.elapsed()));
                report.authenticated_as = Some(who);
                return true;
            }
            let who = describe_user(&v, s);
            report.push(Step::pass(step, format!("authenticated as {who}")).took(t.elapsed()));
            report.authenticated_as = Some(who);
            true
        }
        401 | 410 => {
            report.fatal = true;
            let retired_shape = kind == CredentialKind::UsernamePassword
                && s.cred.email().is_none()
                && matches!(s.shape, AuthShape::Basic { is_email: false, .. })
                && !scopes::looks_like_api_token(s.secret());
            if looks_app_password || retired_shape {
                let words = parse::server_words(&resp.body, resp.text_lines());
                report.push(retired_step(step, words).took(t.elapsed()));
            } else {
                report.push(auth_failed_step(step, s, &resp, hints_401(s, &resp)).took(t.elapsed()));
            }
            false
        }
        // Scope errors come as 403 and, on some endpoints, as 400: the body decides.
        400 | 403
            if resp.status == 403 || parse::cloud_error(&resp.body).is_some_and(|e| e.is_scope_error()) =>
        {
            let err = parse::cloud_error(&resp.body).unwrap_or_default();
            ev.observe_error(&err);
            if let Some(label) = access_token_label(s, ev) {
                ev.token_label = Some(label);
                let who = token_identity(label, repo_path);
                report.push(
                    Step::pass(
                        step,
                        format!(
                            "authenticated as {}; access tokens have no user profile, so Bitbucket refuses GET /user \
                             (HTTP 403) as expected",
                            with_article(&who)
                        ),
                    )
                    .took(t.elapsed()),
                );
                report.authenticated_as = Some(who);
            } else if err.is_scope_error() {
                let who = s.cred.email().or(s.cred.username()).unwrap_or("the token's owner").to_owned();
                report.push(
                    Step::pass(
                        step,
                        format!(
                            "authenticated as {who}, but the token cannot read its own profile (GET /user needs \
                             read:user:bitbucket, which Berth does not need)"
                        ),
                    )
                    .with_details(err.required.clone())
                    .took(t.elapsed()),
                );
                report.authenticated_as = Some(who);
            } else {
                let words = parse::server_words(&resp.body, resp.text_lines());
                let said = words.first().map(|w| format!(": {w}")).unwrap_or_default();
                report.push(
                    Step::warn(
                        step,
                        Code::AccessDenied,
                        format!("{} accepted the credential but refused its profile (HTTP 403){said}", s.host()),
                        "The details say why: often an IP allowlist or a two-step verification policy of the workspace, \
                         which also apply to the repository.",
                    )
                    .with_details(words)
                    .took(t.elapsed()),
                );
            }
            true
        }
        404 => {
            report.push(
                Step::warn(
                    step,
                    Code::ProtocolError,
                    format!(
                        "{} has no {}: the API URL does not look like Bitbucket Cloud's API 2.0 root.",
                        s.host(),
                        resp.what
                    ),
                    "Use https://api.bitbucket.org/2.0 as the API URL for bitbucket.org.",
                )
                .took(t.elapsed()),
            );
            false
        }
        _ => {
            report.push(http_problem_step(step, s, &resp).took(t.elapsed()));
            false
        }
    }
}

fn token_identity(label: &str, repo_path: Option<&str>) -> String {
    match repo_path {
        Some(p) if label == "repository access token" => format!("{label} for {}", p.trim_matches('/')),
        _ => label.to_owned(),
    }
}

/// "Jo Doe (jo, jo@example.com)".
fn describe_user(v: &Value, s: &Session<'_>) -> String {
    let nick = parse::str_at(v, &["username"]).or_else(|| parse::str_at(v, &["nickname"]));
    let name = parse::str_at(v, &["display_name"]).or(nick).unwrap_or("an unnamed account");
    let email = match &s.shape {
        AuthShape::Basic { username, is_email: true } => Some(username.as_str()),
        _ => None,
    };
    let extra: Vec<&str> = [nick, email].into_iter().flatten().filter(|x| *x != name).collect();
    if extra.is_empty() {
        name.to_owned()
    } else {
        format!("{name} ({})", extra.join(", "))
    }
}

fn retired_step(step: StepName, details: Vec<String>) -> Step {
    let e = credential::app_password_retired();
    Step::fail(step, Code::AppPasswordRetired, e.message, e.remedy).with_details(details)
}

/// Why Bitbucket may have answered 401, from the credential's shape.
fn hints_401(s: &Session<'_>, resp: &ApiResponse) -> Vec<String> {
    let said = parse::server_words(&resp.body, resp.text_lines()).join(" ").to_ascii_lowercase();
    let api_token_shape = scopes::looks_like_api_token(s.secret());
    let mut hints = Vec::new();
    match &s.shape {
        AuthShape::Bearer if api_token_shape || (said.contains("not supported for this endpoint") && s.cred.kind != CredentialKind::AccessToken) => {
            hints.push(
                "This looks like an Atlassian API token sent as a Bearer token: Bitbucket accepts API tokens only with Basic \
                 auth and the Atlassian account email. Store it as \"Username with API Token\" with your email."
                    .to_owned(),
            );
        }
        AuthShape::Bearer => hints.push(
            "Check that the access token was not revoked and has not expired, and that it belongs to this repository, \
             project or workspace."
                .to_owned(),
        ),
        AuthShape::Basic { is_email: false, .. } if s.cred.kind == CredentialKind::BitbucketApiToken => hints.push(
            "No Atlassian account email is stored with this API token, and Bitbucket's REST API takes the email as the \
             username. Add the email to the credential."
                .to_owned(),
        ),
        AuthShape::Basic { is_email: false, .. } if api_token_shape => hints.push(
            "This looks like an Atlassian API token: Bitbucket's REST API needs the Atlassian account email as the \
             username, not the Bitbucket username. Store it as \"Username with API Token\" with your email."
                .to_owned(),
        ),
        AuthShape::Basic { .. } => hints.push(
            "Check that the token was created with \"Create API token with scopes\" (an unscoped, classic API token gets \
             401 too), that it has not expired or been revoked, and that the email is that of the Atlassian account which \
             created it."
                .to_owned(),
        ),
    }
    hints
}

// ---------------------------------------------------------------------------------------------
// api_scopes

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Header,
    ErrorBody,
    Recorded,
}

fn scopes_step(s: &Session<'_>, ev: &Evidence, report: &mut ForgeReport) -> Step {
    let step = StepName::ApiScopes;
    if let Some(label) = access_token_label(s, ev) {
        return match &ev.header_scopes {
            Some(g) => {
                report.granted_scopes = Some(g.clone());
                Step::pass(step, format!("the {label} has the scopes {}", list_or_none(g)))
            }
            None => Step::pass(
                step,
                format!(
                    "Bitbucket does not report {}'s scopes; the repository request checks its access",
                    with_article(label)
                ),
            ),
        };
    }
    if s.cred.kind != CredentialKind::BitbucketApiToken {
        return Step::pass(
            step,
            format!("{} credentials carry no scopes; the repository request checks access", s.cred.kind.label()),
        );
    }
    let (granted, source) = if let Some(g) = &ev.header_scopes {
        (g.clone(), Source::Header)
    } else if let Some(g) = &ev.body_granted {
        (g.clone(), Source::ErrorBody)
    } else if !s.cred.declared_scopes.is_empty() {
        (s.cred.declared_scopes.to_vec(), Source::Recorded)
    } else {
        return Step::pass(
            step,
            "Bitbucket does not report API-token scopes and none were recorded with the credential; the repository \
             request checks read:repository:bitbucket",
        )
        .with_details(vec![format!(
            "record the token's scopes with the credential to have the full set ({} scopes) checked",
            FULL_SCOPES.len()
        )]);
    };
    if source != Source::Recorded {
        report.granted_scopes = Some(granted.clone());
    }
    let note = match source {
        Source::Header => " (as Bitbucket reported them)",
        Source::ErrorBody => " (from Bitbucket's scope error)",
        Source::Recorded => " (as you recorded them; Bitbucket does not report API-token scopes)",
    };
    let mut a = scopes::bitbucket_assessment(&granted);
    if !a.can_register() && source == Source::Recorded && ev.repository_read {
        // The repository answered, so the token has read:repository whatever the record says.
        a.missing.retain(|m| !a.missing_for_registration.contains(m));
        a.blocked = scopes::blocked_capabilities(&a.missing);
        let missing = std::mem::take(&mut a.missing_for_registration);
        report.missing_scopes = a.missing.iter().map(|m| (*m).to_owned()).collect();
        report.blocked_capabilities = a.blocked.iter().map(|m| (*m).to_owned()).collect();
        return Step::warn(
            step,
            Code::AccessDenied,
            format!(
                "the scopes you recorded lack {}, yet Bitbucket served the repository: the record is incomplete",
                missing.join(", ")
            ),
            "Update the credential's recorded scopes to match the token.",
        )
        .with_details(missing.iter().map(|m| (*m).to_owned()).collect());
    }
    report.missing_scopes = a.missing.iter().map(|m| (*m).to_owned()).collect();
    report.blocked_capabilities = a.blocked.iter().map(|m| (*m).to_owned()).collect();
    if !a.can_register() {
        report.fatal = true;
        let mut details: Vec<String> = a.missing_for_registration.iter().map(|m| (*m).to_owned()).collect();
        details.extend(a.missing.iter().filter(|m| !a.missing_for_registration.contains(m)).map(|m| (*m).to_owned()));
        return Step::fail(
            step,
            Code::AccessDenied,
            format!(
                "the token lacks {}, which registering repositories and listing branches need{note}; it blocks: {}",
                a.missing_for_registration.join(", "),
                a.blocked.join(", ")
            ),
            create_token_remedy(&a.missing),
        )
        .with_details(details);
    }
    if !a.missing.is_empty() {
        return Step::warn(
            step,
            Code::AccessDenied,
            format!(
                "the token can register repositories, but lacks {} of the {} scopes the platform uses{note}: {}; this \
                 blocks: {}",
                a.missing.len(),
                FULL_SCOPES.len(),
                a.missing.join(", "),
                a.blocked.join(", ")
            ),
            create_token_remedy(&a.missing),
        )
        .with_details(a.missing.iter().map(|m| (*m).to_owned()).collect());
    }
    Step::pass(step, format!("all {} scopes the platform uses are granted{note}", FULL_SCOPES.len()))
}

fn create_token_remedy(missing: &[&str]) -> String {
    format!(
        "In Bitbucket, create a new token with Personal settings > API tokens > Create API token with scopes, including {} \
         (scopes do not imply each other: write and admin scopes do not include read), and update the credential.",
        missing.join(", ")
    )
}

fn list_or_none(v: &[String]) -> String {
    if v.is_empty() {
        "(none)".to_owned()
    } else {
        v.join(", ")
    }
}

// ---------------------------------------------------------------------------------------------
// api_repository

/// "authenticated as Jo Doe (jo), who" / "authenticated as a repository access token, which".
fn subject(report: &ForgeReport, ev: &Evidence) -> String {
    match (ev.token_label.or_else(|| header_token_label(ev)), &report.authenticated_as) {
        (Some(label), _) => format!("authenticated as {}, which", with_article(label)),
        (None, Some(who)) => format!("authenticated as {who}, who"),
        (None, None) => "the credential".to_owned(),
    }
}

async fn repository_step(s: &Session<'_>, ws: &str, slug: &str, ev: &mut Evidence, report: &mut ForgeReport) -> Step {
    let step = StepName::ApiRepository;
    let t = Instant::now();
    let mut url = s.url(&["repositories", ws, slug]);
    url.query_pairs_mut().append_pair("fields", "full_name,is_private,mainbranch.name,scm,links.clone");
    let resp = match s.get(url, &headers()).await {
        Ok(r) => r,
        Err(e) => return transport_step(step, &e, t.elapsed()),
    };
    ev.observe(&resp);
    if !resp.is_success() {
        let subject = subject(report, ev);
        let (failure, fatal) = repo_failure(s, step, &resp, ws, slug, &subject, ev);
        report.fatal |= fatal;
        return failure.took(t.elapsed());
    }
    let Some(v) = parse::json(&resp.body) else {
        return unparseable_step(step, &resp, "the repository").took(t.elapsed());
    };
    ev.repository_read = true;
    let full_name = parse::str_at(&v, &["full_name"]).map_or_else(|| format!("{ws}/{slug}"), str::to_owned);
    if let Some(scm) = parse::str_at(&v, &["scm"]).filter(|scm| !scm.eq_ignore_ascii_case("git")) {
        report.fatal = true;
        return Step::fail(
            step,
            Code::UnsupportedVcs,
            format!("{full_name} is a {scm} repository; Berth registers Git repositories"),
            "Register a Git repository.",
        )
        .took(t.elapsed());
    }
    let private = parse::bool_at(&v, &["is_private"]).unwrap_or(false);
    let main_branch = parse::str_at(&v, &["mainbranch", "name"]).map(str::to_owned);
    let (permission, note) = if ev.token_label.or_else(|| header_token_label(ev)).is_some() {
        (None, Some("access tokens cannot read their permission level".to_owned()))
    } else {
        permission(s, ws, slug, &full_name, private).await
    };
    let mut message = format!("{full_name} is {}", if private { "private" } else { "public" });
    match &main_branch {
        Some(b) => message.push_str(&format!(", main branch {b}")),
        None => message.push_str(", no main branch yet (an empty repository)"),
    }
    match (&permission, &note) {
        (Some(p), _) => message.push_str(&format!("; permission: {p}")),
        (None, Some(n)) => message.push_str(&format!("; {n}")),
        (None, None) => {}
    }
    report.repository = Some(RepoFacts { full_name, private, main_branch, permission });
    Step::pass(step, message).took(t.elapsed())
}

/// A non-2xx answer about the repository (or its branches): the step, and whether it is fatal.
fn repo_failure(
    s: &Session<'_>,
    step: StepName,
    resp: &ApiResponse,
    ws: &str,
    slug: &str,
    subject: &str,
    ev: &mut Evidence,
) -> (Step, bool) {
    let words = parse::server_words(&resp.body, resp.text_lines());
    let err = parse::cloud_error(&resp.body);
    match resp.status {
        404 => (
            Step::fail(
                step,
                Code::RepositoryNotFoundOrNoAccess,
                format!("{subject} cannot see {ws}/{slug}, or it does not exist (HTTP 404)"),
                "Check the workspace and repository name in the clone URL, and that the account or access token has at \
                 least read access: Bitbucket answers 404 for private repositories it hides.",
            )
            .with_details(words),
            true,
        ),
        400 | 403 if err.as_ref().is_some_and(CloudError::is_scope_error) => {
            let err = err.unwrap_or_default();
            ev.observe_error(&err);
            let missing = missing_from_scope_error(&err);
            (
                Step::fail(
                    step,
                    Code::AccessDenied,
                    format!(
                        "Bitbucket refused {ws}/{slug} (HTTP {}): the token lacks {}",
                        resp.status,
                        missing.join(", ")
                    ),
                    create_token_remedy(&missing.iter().map(String::as_str).collect::<Vec<_>>()),
                )
                .with_details(missing),
                true,
            )
        }
        403 => {
            let said = words.first().map(|w| format!(": {w}")).unwrap_or_default();
            (
                Step::fail(
                    step,
                    Code::AccessDenied,
                    format!("{subject} may not read {ws}/{slug} (HTTP 403){said}"),
                    "The details say why: often the workspace's IP allowlist (an admin must allow the Berth server's \
                     address) or its two-step verification policy, or a missing repository permission.",
                )
                .with_details(words),
                true,
            )
        }
        401 => (auth_failed_step(step, s, resp, hints_401(s, resp)), true),
        _ => (http_problem_step(step, s, resp), false),
    }
}

/// Missing scopes named by a scope error: `required` less `granted` (Bitbucket may not list every
/// missing scope), or the registration scopes less `granted` when it names none.
fn missing_from_scope_error(err: &CloudError) -> Vec<String> {
    let granted = err.granted.clone().unwrap_or_default();
    let mut missing: Vec<String> = err.required.iter().filter(|r| !granted.contains(r)).cloned().collect();
    if missing.is_empty() {
        missing = credential::missing_scopes(REGISTRATION_SCOPES, &granted).iter().map(|m| (*m).to_owned()).collect();
    }
    if missing.is_empty() {
        missing = err.required.clone();
    }
    missing
}

/// The credential's permission level on the repository, or a note why it is unknown.
async fn permission(
    s: &Session<'_>,
    ws: &str,
    slug: &str,
    full_name: &str,
    private: bool,
) -> (Option<String>, Option<String>) {
    let step = StepName::ApiRepository;
    let mut url = s.url(&["user", "workspaces", ws, "permissions", "repositories"]);
    url.query_pairs_mut().append_pair("q", &format!("repository.name=\"{slug}\"")).append_pair("pagelen", "100");
    let found = pager::collect(
        s,
        step,
        url,
        &headers(),
        1_000,
        |resp| {
            let v = parse::json(&resp.body).ok_or_else(|| unparseable_step(step, resp, "repository permissions"))?;
            let items = v
                .get("values")
                .and_then(Value::as_array)
                .map(|vals| {
                    vals.iter()
                        .filter_map(|p| {
                            let perm = parse::str_at(p, &["permission"])?.to_owned();
                            let name = parse::str_at(p, &["repository", "full_name"]).unwrap_or_default().to_owned();
                            Some((name, perm))
                        })
                        .collect()
                })
                .unwrap_or_default();
            Ok(Page { items, next: next_url(&v) })
        },
        |resp| {
            let words = parse::server_words(&resp.body, resp.text_lines());
            Step::warn(step, Code::AccessDenied, format!("HTTP {}", resp.status), "").with_details(words)
        },
    )
    .await;
    match found {
        Ok(items) => {
            let mine = items
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(full_name))
                .or_else(|| (items.len() == 1).then(|| &items[0]))
                .map(|(_, p)| p.clone());
            match mine {
                Some(p) => (Some(p), None),
                None if private => (None, Some("no explicit permission was listed for it".to_owned())),
                None => (None, Some("no explicit permission (a public repository)".to_owned())),
            }
        }
        Err(e) => {
            let why = e.details.first().map(|d| format!("{}: {d}", e.message)).unwrap_or(e.message);
            (None, Some(format!("the permission level could not be read ({why})")))
        }
    }
}

fn next_url(v: &Value) -> Option<url::Url> {
    pager::cloud_next(v).and_then(Result::ok)
}

// ---------------------------------------------------------------------------------------------
// branches

pub(crate) async fn branches(s: &Session<'_>, repo_path: &str) -> Result<Vec<String>, Step> {
    let step = StepName::Branches;
    let (ws, slug) = split_repo(repo_path, step)?;
    if s.cred.kind == CredentialKind::BitbucketAppPassword {
        return Err(retired_step(step, Vec::new()));
    }
    let mut url = s.url(&["repositories", &ws, &slug, "refs", "branches"]);
    url.query_pairs_mut().append_pair("pagelen", "100").append_pair("fields", "values.name,next");
    pager::collect(
        s,
        step,
        url,
        &headers(),
        MAX_BRANCHES,
        |resp| {
            let v = parse::json(&resp.body).ok_or_else(|| unparseable_step(step, resp, "a page of branches"))?;
            let items = v
                .get("values")
                .and_then(Value::as_array)
                .map(|vals| vals.iter().filter_map(|b| parse::str_at(b, &["name"]).map(str::to_owned)).collect())
                .unwrap_or_default();
            let next = match pager::cloud_next(&v) {
                None => None,
                Some(Ok(u)) => Some(u),
                Some(Err(msg)) => {
                    return Err(Step::warn(step, Code::ProtocolError, msg, "Report it with the details."))
                }
            };
            Ok(Page { items, next })
        },
        |resp| {
            let mut ev = Evidence::default();
            repo_failure(s, step, resp, &ws, &slug, "the credential", &mut ev).0
        },
    )
    .await
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn repo_paths() {
        assert_eq!(split_repo("ws/repo", StepName::ApiRepository).ok(), Some(("ws".into(), "repo".into())));
        assert_eq!(split_repo("/ws/repo.git/", StepName::ApiRepository).ok(), Some(("ws".into(), "repo".into())));
        assert!(split_repo("ws", StepName::ApiRepository).is_err());
        assert!(split_repo("a/b/c", StepName::ApiRepository).is_err());
    }

    #[test]
    fn missing_scopes_from_errors() {
        let e = CloudError {
            required: vec!["read:repository:bitbucket".into()],
            granted: Some(vec!["write:repository:bitbucket".into()]),
            ..CloudError::default()
        };
        assert_eq!(missing_from_scope_error(&e), ["read:repository:bitbucket"]);
        let none_named = CloudError { granted: Some(vec![]), ..CloudError::default() };
        assert_eq!(missing_from_scope_error(&none_named), ["read:repository:bitbucket"]);
    }
}
