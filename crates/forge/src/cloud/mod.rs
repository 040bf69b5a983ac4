//! Bitbucket Cloud, REST API 2.0.
//!
//! * `GET /user` says who an API token belongs to, but needs `read:user:bitbucket`: a 403 there
//!   with the scope-error body means "authenticated, profile not readable", and access tokens
//!   (which have no user) always get 403. Only 401 (and 410) mean the credential is refused.
//! * Scopes: Bitbucket does not report API-token scopes reliably; the evidence is, in order,
//!   the `x-oauth-scopes` header, a scope error's `detail.granted`, the scopes the user recorded.
//! * `GET /repositories/{ws}/{slug}`: 404 for "missing or hidden"; missing scopes answer 403 (some
//!   endpoints 400) with `Your credentials lack one or more required privilege scopes.`

mod repository;
mod scope_check;

use crate::parse::{self, CloudError};
use crate::{auth_failed_step, http_problem_step, not_api_root, unparseable_step, AuthShape, ForgeReport, Session};
use berth_core::credential;
use berth_core::scopes;
use berth_core::{Code, CredentialKind, Step, StepName};
use berth_net::ApiResponse;
use repository::repository_step;
use reqwest::header::HeaderMap;
use scope_check::scopes_step;
use serde_json::Value;
use std::time::Instant;

fn headers() -> HeaderMap {
    crate::json_headers("application/json", &[])
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
    /// Bitbucket refused a request for lack of `read:repository:bitbucket` (a scope error).
    repository_read_refused: bool,
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
    let repo_step = match repo_path.map(|p| split_repo(p, StepName::ApiRepository)) {
        Some(Ok((ws, slug))) => Some(repository_step(s, &ws, &slug, &mut ev, report).await),
        Some(Err(step)) => Some(step),
        None => {
            repository_read_probe(s, &mut ev).await;
            None
        }
    };
    let scopes = scopes_step(s, &ev, report);
    report.push(scopes);
    if let Some(step) = repo_step {
        report.push(step);
    }
}

/// Without a repository, whether the token may read repositories at all: one request to
/// `GET /repositories?role=member`, which needs `read:repository:bitbucket` (the Cloud spec's
/// `x-atlassian-oauth2-scopes`) and answers a scope error without it. Bitbucket does not report
/// API-token scopes any other way. Access tokens are judged by their own header; other answers
/// (a rate limit, an outage) leave the evidence as it was.
async fn repository_read_probe(s: &Session<'_>, ev: &mut Evidence) {
    if access_token_label(s, ev).is_some() {
        return;
    }
    let mut url = s.url(&["repositories"]);
    url.set_query(Some("role=member&pagelen=1&fields=values.full_name"));
    let Ok(resp) = s.get(url, &headers()).await else { return };
    ev.observe(&resp);
    match resp.status {
        200 => ev.repository_read = true,
        400 | 403 => {
            if let Some(err) = parse::cloud_error(&resp.body).filter(CloudError::is_scope_error) {
                ev.observe_error(&err);
                ev.repository_read_refused = true;
            }
        }
        _ => {}
    }
}

/// `ws/repo` → (`ws`, `repo`).
fn split_repo(path: &str, step: StepName) -> Result<(String, String), Step> {
    crate::owner_and_repo(
        path,
        step,
        "a Bitbucket Cloud repository path (workspace/repository)",
        "https://bitbucket.org/workspace/repository.git",
    )
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
            report.push(s.transport_failed(step, &e, t.elapsed()));
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
            report.identity = Some(user_identity(&v, s));
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
        400 | 403 if resp.status == 403 || parse::cloud_error(&resp.body).is_some_and(|e| e.is_scope_error()) => {
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
                not_api_root(
                    step,
                    s,
                    &resp,
                    "does not look like Bitbucket Cloud's API 2.0 root",
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
        Some(path) if label == "repository access token" => format!("{label} for {}", path.trim_matches('/')),
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

/// The user's parts, as `GET /user` and the credential's REST username tell them.
fn user_identity(v: &Value, s: &Session<'_>) -> crate::HostIdentity {
    let email = match &s.shape {
        AuthShape::Basic { username, is_email: true } => Some(username.clone()),
        _ => None,
    };
    crate::HostIdentity {
        display_name: parse::str_at(v, &["display_name"]).map(str::to_owned),
        username: parse::str_at(v, &["username"]).or_else(|| parse::str_at(v, &["nickname"])).map(str::to_owned),
        email,
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
}
