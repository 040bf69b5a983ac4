//! GitHub Apps: the app signs a JWT with its private key ([`jwt`]), finds the installation on
//! the repository's owner (`GET /repos/{owner}/{repo}/installation`), mints an installation
//! access token (`POST /app/installations/{id}/access_tokens`, cached in [`tokens`] until
//! shortly before it expires) and reads the repository with it; Git then takes the token as
//! the password of `x-access-token`.
//!
//! The steps are the REST steps every adapter reports: `api_credential` (the app, from
//! `GET /app`), `api_scopes` (the installation's permissions: Berth needs `contents: read` and
//! `metadata: read`) and `api_repository` (the repository through the installation). GitHub
//! answers 404 to `/installation` both when the app is not installed on the owner and when the
//! repository is not among an installation's selected ones; `GET /app/installations` tells the
//! two apart (`app_not_installed` with the install link, `app_repository_not_selected`). A JWT
//! refused for its `iat`/`exp` is `clock_skew`, explained.

mod install;
mod jwt;
mod listing;
mod tokens;

pub use jwt::{claims_of, verified_claims, AppKey, KeyRefused, EXP_AHEAD_SECS, IAT_BACKDATE_SECS};
pub use tokens::{AppTokens, Minted, REFRESH_BEFORE_SECS};

use crate::github::{self as gh};
use crate::{
    http_problem_step, parse, unparseable_step, AuthShape, CredentialView, Forge, ForgeReport, HostIdentity, RepoFacts,
    Session,
};
use berth_core::credential::Expiry;
use berth_core::{Code, CredentialKind, Provider, Step, StepName};
use berth_net::{ApiResponse, Auth};
use reqwest::Method;
use secrecy::SecretString;
use std::sync::OnceLock;
use std::time::Instant;

/// A GitHub App credential as the adapter needs it. `Debug` shows no key.
#[derive(Clone, Copy)]
pub struct GithubApp<'a> {
    pub app_id: &'a str,
    /// The installation to use; `None` finds the one on each repository's owner.
    pub installation_id: Option<i64>,
    /// The private key, PEM.
    pub private_key: &'a SecretString,
}

impl std::fmt::Debug for GithubApp<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GithubApp")
            .field("app_id", &self.app_id)
            .field("installation_id", &self.installation_id)
            .finish_non_exhaustive()
    }
}

/// What checking a repository with an app found, and the token Git is to use.
pub struct AppCheck {
    pub report: ForgeReport,
    /// The installation token; `None` when a step failed before one was minted.
    pub token: Option<SecretString>,
}

/// The app as `GET /app` describes it.
pub(super) struct AppInfo {
    pub(super) name: String,
    pub(super) slug: String,
}

/// The permissions Git needs of an installation: `contents` to read the repository, `metadata`
/// which every installation token carries.
const NEEDED: [&str; 2] = ["contents", "metadata"];

impl Forge {
    /// Checks `owner/repo` (the clone URL's path) through the app: the app, its installation
    /// on the owner, the installation's permissions, the repository; answers the installation
    /// token for Git when all of that holds.
    pub async fn github_app_check(&self, api_url: &str, repo_path: &str, app: &GithubApp<'_>) -> AppCheck {
        let mut report = ForgeReport::default();
        let view = app_view(app);
        let Some(s) = self.app_session(api_url, &view, &mut report) else {
            return AppCheck { report, token: None };
        };
        let token = run_check(&s, repo_path, app, &mut report).await;
        report.retry_after = s.retry_after.get().copied();
        report.location = s.location.get().cloned();
        if token.is_none() {
            report.fatal = true;
        }
        AppCheck { report, token }
    }

    /// Verifies the app alone: its name (`GET /app`) and its installations
    /// (`GET /app/installations`).
    pub async fn github_app_verify(&self, api_url: &str, app: &GithubApp<'_>) -> ForgeReport {
        let mut report = ForgeReport::default();
        let view = app_view(app);
        let Some(s) = self.app_session(api_url, &view, &mut report) else {
            return report;
        };
        if let Some(info) = app_step(&s, app, &mut report).await {
            let step = install::installations_step(&s, app, &info).await;
            report.push(step);
        }
        report.retry_after = s.retry_after.get().copied();
        report
    }

    /// A session whose requests carry the app's JWT; `None` (with the failed step) when the
    /// API URL or the key is unusable.
    fn app_session<'a>(
        &'a self,
        api_url: &str,
        view: &'a CredentialView<'a>,
        report: &mut ForgeReport,
    ) -> Option<Session<'a>> {
        let step = StepName::ApiCredential;
        let base = match crate::parse_base(api_url) {
            Ok(b) => b,
            Err(msg) => {
                report.push(Step::fail(
                    step,
                    Code::InvalidUrl,
                    msg,
                    "Configure GitHub's REST API URL: https://api.github.com, or https://your-host/api/v3.",
                ));
                return None;
            }
        };
        let key = match AppKey::from_pem(secrecy::ExposeSecret::expose_secret(view.secret)) {
            Ok(k) => k,
            Err(e) => {
                report.push(key_refused_step(step, &e));
                return None;
            }
        };
        let app_id = view.username.unwrap_or_default();
        let jwt = match key.jwt(app_id, chrono::Utc::now().timestamp()) {
            Ok(j) => j,
            Err(e) => {
                report.push(key_refused_step(step, &e));
                return None;
            }
        };
        Some(Session {
            forge: self,
            provider: Provider::Github,
            base,
            cred: view,
            auth: Auth::Bearer(jwt),
            shape: AuthShape::Bearer,
            retry_after: OnceLock::new(),
            location: OnceLock::new(),
        })
    }
}

/// The app as the shared helpers see a credential: its id where a username would be.
fn app_view<'a>(app: &'a GithubApp<'a>) -> CredentialView<'a> {
    CredentialView {
        kind: CredentialKind::GithubApp,
        username: Some(app.app_id),
        email: None,
        secret: app.private_key,
        declared_scopes: &[],
        expiry: Expiry::Unknown,
    }
}

/// The check proper; the installation token when every step held.
async fn run_check(
    s: &Session<'_>,
    repo_path: &str,
    app: &GithubApp<'_>,
    report: &mut ForgeReport,
) -> Option<SecretString> {
    let (owner, repo) = match crate::owner_and_repo(
        repo_path,
        StepName::ApiRepository,
        "a GitHub repository path (owner/repository)",
        "https://github.com/owner/repository.git",
    ) {
        Ok(p) => p,
        Err(step) => {
            report.push(step);
            return None;
        }
    };
    let info = app_step(s, app, report).await?;
    let (installation, account) = install::installation_of(s, &owner, &repo, app, &info, report).await?;
    let minted = mint(s, app, installation, report).await?;
    let permissions = permissions_step(&minted, installation, &account);
    let enough = permissions.status != berth_core::StepStatus::Fail;
    report.push(permissions);
    if !enough {
        return None;
    }
    let found = repository_step(s, &owner, &repo, installation, app, &minted, report).await;
    found.then_some(minted.token)
}

fn key_refused_step(step: StepName, e: &KeyRefused) -> Step {
    Step::fail(
        step,
        Code::InvalidPrivateKey,
        format!("the GitHub App's private key cannot be used: {e}"),
        "Generate a private key on the app's settings page (Private keys > Generate a private key) and store the \
         whole .pem file as the credential's secret.",
    )
}

/// `GET /app` with the JWT: the app's name, or why GitHub refused the JWT.
async fn app_step(s: &Session<'_>, app: &GithubApp<'_>, report: &mut ForgeReport) -> Option<AppInfo> {
    let step = StepName::ApiCredential;
    let t = Instant::now();
    let resp = gh::answered(step, s, s.get(s.url(&["app"]), &headers()).await, t, report)?;
    match resp.status {
        200 => {
            let Some(v) = parse::json(&resp.body) else {
                report.push(unparseable_step(step, &resp, "the app").took(t.elapsed()));
                return None;
            };
            let slug = parse::str_at(&v, &["slug"]).unwrap_or(app.app_id).to_owned();
            let name = parse::str_at(&v, &["name"]).unwrap_or(&slug).to_owned();
            let owner = parse::str_at(&v, &["owner", "login"]).map(|o| format!(", owned by {o}")).unwrap_or_default();
            report.authenticated_as = Some(format!("GitHub App {name}"));
            report.identity =
                Some(HostIdentity { display_name: Some(name.clone()), username: Some(slug.clone()), email: None });
            report.push(
                Step::pass(step, format!("GitHub App {name} ({slug}, app id {}){owner}", app.app_id)).took(t.elapsed()),
            );
            Some(AppInfo { name, slug })
        }
        401 => {
            report.push(jwt_refused(step, &resp, app).took(t.elapsed()));
            None
        }
        404 => {
            report.push(gh::not_github_api_root(step, s, &resp).took(t.elapsed()));
            None
        }
        _ => {
            report.push(http_problem_step(step, s, &resp).took(t.elapsed()));
            None
        }
    }
}

/// GitHub refused the app's JWT: for its time (`iat`/`exp` against GitHub's clock), or because
/// the app id and key do not belong together.
pub(super) fn jwt_refused(step: StepName, resp: &ApiResponse, app: &GithubApp<'_>) -> Step {
    let said = parse::github_message(&resp.body).unwrap_or_else(|| "no message".to_owned());
    let lower = said.to_ascii_lowercase();
    let about_time =
        ["'iat'", "'exp'", "issued at", "expiration time", "too far in the future"].iter().any(|w| lower.contains(w));
    if about_time {
        let now = chrono::Utc::now().format("%Y-%m-%d %H:%M:%S UTC");
        return Step::fail(
            step,
            Code::ClockSkew,
            format!(
                "GitHub refused the app's JSON Web Token for its time (HTTP 401: {said}). Berth dates the token by this \
                 server's clock, now {now}: issued at (iat) {IAT_BACKDATE_SECS} s earlier and expiring (exp) {} \
                 minutes later; GitHub refuses an iat in its future and an exp more than 10 minutes ahead of its own \
                 clock, so the two clocks disagree",
                EXP_AHEAD_SECS / 60
            ),
            "Set this server's clock right (NTP: chrony or systemd-timesyncd), then check again.",
        )
        .with_details(vec![said]);
    }
    Step::fail(
        step,
        Code::AuthFailed,
        format!("GitHub did not accept the JSON Web Token of app id {} (HTTP 401: {said})", app.app_id),
        "Check the App ID (the app's settings page, General > About) and that the private key is one of the app's \
         current keys (Private keys on the same page); generate a new key if it was deleted.",
    )
    .with_details(vec![said])
}

/// An installation token: from the cache, else minted.
async fn mint(s: &Session<'_>, app: &GithubApp<'_>, installation: i64, report: &mut ForgeReport) -> Option<Minted> {
    let step = StepName::ApiScopes;
    let key = tokens::key(s.base.as_str(), app.app_id, installation);
    let now = chrono::Utc::now();
    if let Some(m) = s.forge.app_tokens.fresh(&key, now) {
        return Some(m);
    }
    let t = Instant::now();
    let url = s.url(&["app", "installations", &installation.to_string(), "access_tokens"]);
    let resp = gh::answered(step, s, s.forge.send(Method::POST, url, &s.auth, &headers()).await, t, report)?;
    match resp.status {
        201 | 200 => {
            let v = parse::json(&resp.body);
            let token = v.as_ref().and_then(|v| parse::str_at(v, &["token"])).map(|t| SecretString::from(t.to_owned()));
            let expires_at = v
                .as_ref()
                .and_then(|v| parse::str_at(v, &["expires_at"]))
                .and_then(|e| chrono::DateTime::parse_from_rfc3339(e).ok())
                .map(|e| e.with_timezone(&chrono::Utc));
            let (Some(token), Some(expires_at)) = (token, expires_at) else {
                report.push(unparseable_step(step, &resp, "the installation token").took(t.elapsed()));
                return None;
            };
            let permissions = v
                .as_ref()
                .and_then(|v| v.get("permissions"))
                .and_then(serde_json::Value::as_object)
                .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned()))).collect())
                .unwrap_or_default();
            let minted = Minted { token, expires_at, permissions };
            s.forge.app_tokens.keep(key, minted.clone());
            Some(minted)
        }
        404 => {
            report.push(
                Step::fail(
                    step,
                    Code::AppNotInstalled,
                    format!(
                        "installation {installation} of the GitHub App does not exist (uninstalled, or a wrong id)"
                    ),
                    "Leave the credential's installation id empty to find the installation per owner, or install the \
                     app again.",
                )
                .took(t.elapsed()),
            );
            None
        }
        401 => {
            report.push(jwt_refused(step, &resp, app).took(t.elapsed()));
            None
        }
        403 => {
            let words = parse::server_words(&resp.body, resp.text_lines());
            report.push(
                Step::fail(
                    step,
                    Code::AccessDenied,
                    format!("GitHub refused an installation token for installation {installation} (HTTP 403)"),
                    "The details say why; a suspended installation must be unsuspended by the account's owner.",
                )
                .with_details(words)
                .took(t.elapsed()),
            );
            None
        }
        _ => {
            report.push(http_problem_step(step, s, &resp).took(t.elapsed()));
            None
        }
    }
}

/// The installation's permissions against what Git needs.
fn permissions_step(minted: &Minted, installation: i64, account: &str) -> Step {
    let step = StepName::ApiScopes;
    let level = |name: &str| minted.permissions.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let shown: Vec<String> = minted.permissions.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    let missing: Vec<String> =
        NEEDED.iter().filter(|p| !matches!(level(p), Some("read" | "write"))).map(|p| format!("{p}: read")).collect();
    if !missing.is_empty() {
        return Step::fail(
            step,
            Code::AppPermissionMissing,
            format!(
                "installation {installation} on {account} lacks {}; Git needs contents: read and metadata: read",
                missing.join(" and ")
            ),
            "In the app's settings > Permissions & events, set Repository permissions Contents and Metadata to \
             Read-only (or more); the owner of the installation must then accept the new permissions.",
        )
        .with_details(shown);
    }
    Step::pass(
        step,
        format!(
            "installation {installation} on {account} grants {}; its token is valid until {}",
            shown.join(", "),
            minted.expires_at.format("%Y-%m-%d %H:%M UTC")
        ),
    )
    .with_details(shown)
}

/// `GET /repos/{owner}/{repo}` with the installation token.
async fn repository_step(
    s: &Session<'_>,
    owner: &str,
    repo: &str,
    installation: i64,
    app: &GithubApp<'_>,
    minted: &Minted,
    report: &mut ForgeReport,
) -> bool {
    let step = StepName::ApiRepository;
    let t = Instant::now();
    let auth = Auth::Bearer(minted.token.clone());
    let Some(resp) = gh::answered(
        step,
        s,
        s.forge.send(Method::GET, s.url(&["repos", owner, repo]), &auth, &headers()).await,
        t,
        report,
    ) else {
        return false;
    };
    match resp.status {
        200 => {
            let Some(v) = parse::json(&resp.body) else {
                report.push(unparseable_step(step, &resp, "the repository").took(t.elapsed()));
                return false;
            };
            let full_name = parse::str_at(&v, &["full_name"]).map_or_else(|| format!("{owner}/{repo}"), str::to_owned);
            let private = parse::bool_at(&v, &["private"]).unwrap_or(false);
            let main_branch = parse::str_at(&v, &["default_branch"]).map(str::to_owned);
            let mut message = format!(
                "{full_name} is {} and readable through installation {installation}",
                if private { "private" } else { "public" }
            );
            if let Some(b) = &main_branch {
                message.push_str(&format!(", default branch {b}"));
            }
            report.repository = Some(RepoFacts { full_name, private, main_branch, permission: None });
            report.push(Step::pass(step, message).took(t.elapsed()));
            true
        }
        404 => {
            let (code, message) = if app.installation_id.is_some() {
                (
                    Code::AppRepositoryNotSelected,
                    format!("installation {installation} cannot see {owner}/{repo}: the repository is not among its selected repositories, or it does not exist"),
                )
            } else {
                (Code::RepositoryNotFoundOrNoAccess, format!("the installation cannot see {owner}/{repo} (HTTP 404)"))
            };
            report.push(
                Step::fail(
                    step,
                    code,
                    message,
                    "Add the repository to the installation's repositories on GitHub, or check the clone URL.",
                )
                .took(t.elapsed()),
            );
            false
        }
        401 => {
            // A revoked token (or one minted before the installation changed): mint anew next time.
            s.forge.app_tokens.forget(&tokens::key(s.base.as_str(), app.app_id, installation));
            report.push(
                Step::fail(
                    step,
                    Code::AuthFailed,
                    format!("GitHub refused the installation token of installation {installation} (HTTP 401)"),
                    "Check again: Berth mints a new token; if it is refused too, the installation was removed.",
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

pub(super) fn headers() -> reqwest::header::HeaderMap {
    crate::json_headers("application/vnd.github+json", &[("x-github-api-version", "2022-11-28")])
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn permissions_are_judged_by_what_git_needs() {
        let minted = |p: &[(&str, &str)]| Minted {
            token: SecretString::from("ghs_x"),
            expires_at: chrono::Utc::now(),
            permissions: p.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        };
        let ok = permissions_step(&minted(&[("contents", "read"), ("metadata", "read")]), 1, "acme");
        assert_eq!(ok.status, berth_core::StepStatus::Pass);
        let lacking = permissions_step(&minted(&[("metadata", "read"), ("issues", "write")]), 1, "acme");
        assert_eq!(lacking.code, Code::AppPermissionMissing);
        assert!(lacking.message.contains("contents: read"), "{}", lacking.message);
    }
}
