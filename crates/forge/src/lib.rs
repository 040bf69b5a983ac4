//! REST adapters for Git hosts: who a credential authenticates as, which scopes it has, and
//! whether the repository behind a clone URL is visible to it, reported as check steps
//! (`api_credential`, `api_scopes`, `api_repository`).
//!
//! * Bitbucket Cloud (API 2.0): API tokens as Basic with the Atlassian email, access tokens as
//!   Bearer; a 403 on `/user` is not an invalid credential; scope errors name the missing scopes.
//! * Bitbucket Data Center (REST 1.0, `rest/api/latest`): the authenticated user from the
//!   `X-AUSERNAME` header; 401 on a repository after a good credential means "no REPO_READ".
//! * GitHub (REST v3, api.github.com or GitHub Enterprise `/api/v3`): `X-OAuth-Scopes` for classic
//!   tokens, the token's expiry header, `permissions` on the repository.
//!
//! Every request goes through the shared [`NetClient`] of berth-net (the pool Git uses too: same
//! network policy, timeouts; no redirects followed), at most [`DEFAULT_PER_HOST_LIMIT`] at a time
//! per host. A 429 with a
//! `Retry-After` of at most [`MAX_RETRY_WAIT`] is retried once. Secrets never appear in a step, a
//! log line, a URL or a `Debug` output.

mod cloud;
mod datacenter;
mod github;
pub mod github_app;
mod hooks;
mod listing;
mod pager;
pub mod parse;
mod steps;

pub(crate) use steps::*;

pub use hooks::{hook_scope, hooks_supported, HookRefusal, HookTarget, NewHook};
pub use listing::{ListFailure, ListedRepo, MAX_LISTED};

use berth_core::credential::{Expiry, API_TOKEN_GIT_USERNAME};
use berth_core::{Capability, Code, CredentialKind, Provider, Step, StepName, StepStatus};
use berth_net::{authority, has_user_info, ApiRequest, ApiResponse, Auth, NetClient, NetError};
use reqwest::header::HeaderMap;
use secrecy::{ExposeSecret, SecretString};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::Semaphore;
use url::Url;

/// REST requests in flight per `host:port`.
pub const DEFAULT_PER_HOST_LIMIT: usize = 4;
/// A 429 asking to wait at most this long is retried once; a longer wait is reported.
pub const MAX_RETRY_WAIT: Duration = Duration::from_secs(5);

/// Whether Berth has a REST adapter for the provider.
pub fn supports(provider: Provider) -> bool {
    matches!(provider, Provider::BitbucketCloud | Provider::BitbucketDatacenter | Provider::Github)
}

/// The repository to verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoTarget {
    pub provider: Provider,
    /// The host's REST API root: `https://api.bitbucket.org/2.0`, `https://host:7990/bitbucket/rest`,
    /// `https://api.github.com` or `https://ghe.example/api/v3`.
    pub api_url: String,
    /// The clone URL's path: `ws/repo`, `bitbucket/scm/proj/repo` (everything up to and including
    /// the `scm` segment is ignored), `owner/repo`.
    pub repo_path: String,
}

/// A credential as the adapters need it. `Debug` shows no secret.
#[derive(Debug, Clone, Copy)]
pub struct CredentialView<'a> {
    pub kind: CredentialKind,
    pub username: Option<&'a str>,
    pub email: Option<&'a str>,
    pub secret: &'a SecretString,
    /// The scopes the user recorded for the token (Bitbucket does not report API-token scopes).
    pub declared_scopes: &'a [String],
    pub expiry: Expiry,
}

impl CredentialView<'_> {
    fn username(&self) -> Option<&str> {
        self.username.map(str::trim).filter(|u| !u.is_empty())
    }

    fn email(&self) -> Option<&str> {
        self.email.map(str::trim).filter(|e| !e.is_empty())
    }
}

/// The repository as the host's REST API describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoFacts {
    /// `ws/repo`, `PROJ/repo`, `owner/repo`.
    pub full_name: String,
    pub private: bool,
    /// `None` when the host names none (an empty repository).
    pub main_branch: Option<String>,
    /// The credential's level: Cloud `read|write|admin`, GitHub `pull|triage|push|maintain|admin`;
    /// `None` when the host does not say (Data Center, access tokens, public repositories).
    pub permission: Option<String>,
}

/// Who the host says a credential is, as far as it says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostIdentity {
    pub display_name: Option<String>,
    pub username: Option<String>,
    pub email: Option<String>,
}

/// What the REST API said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ForgeReport {
    /// The steps that ran among `api_credential`, `api_scopes`, `api_repository`, in that order.
    pub steps: Vec<Step>,
    /// "Jo Doe (jo, jo@example.com)", or "repository access token for ws/repo".
    pub authenticated_as: Option<String>,
    /// The same, in parts, as far as the host said.
    pub identity: Option<HostIdentity>,
    /// `None` when the host does not say.
    pub granted_scopes: Option<Vec<String>>,
    pub missing_scopes: Vec<String>,
    /// "list branches", "webhooks", "pull requests", …
    pub blocked_capabilities: Vec<String>,
    pub repository: Option<RepoFacts>,
    /// A step failed such that the Git steps would fail too: invalid, expired or retired
    /// credential, repository not visible, the registration scope missing.
    pub fatal: bool,
    /// The host rate-limited a request (HTTP 429, or GitHub's 403 with its quota used up) and
    /// said how long to wait: `Retry-After`, or GitHub's `x-ratelimit-reset`. The step's details
    /// say the same for a person ("retry after N seconds").
    pub retry_after: Option<Duration>,
    /// Where the host's API redirected a request of a step (a moved or renamed repository, a
    /// login page), without its query; the redirect was not followed.
    pub location: Option<String>,
}

impl ForgeReport {
    fn push(&mut self, step: Step) {
        self.steps.push(step);
    }

    /// The first failed step, if any.
    pub fn first_failure(&self) -> Option<&Step> {
        self.steps.iter().find(|s| s.status == StepStatus::Fail)
    }
}

/// The REST adapters. Cheap to clone; clones share the per-host limits.
#[derive(Clone)]
pub struct Forge {
    net: NetClient,
    per_host: usize,
    /// The capabilities this deployment wants tokens to have (`[scopes] want`): missing scopes
    /// of these warn, the rest is information.
    wanted: Arc<[Capability]>,
    limits: Arc<Mutex<HashMap<String, Arc<Semaphore>>>>,
    /// GitHub App installation tokens minted by this instance, in memory only.
    app_tokens: github_app::AppTokens,
}

impl std::fmt::Debug for Forge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forge").field("per_host", &self.per_host).finish_non_exhaustive()
    }
}

impl Forge {
    /// Uses the shared HTTP client (`GitClient::net()`): same connection pool, network policy,
    /// timeouts and roots as Git.
    pub fn new(net: &NetClient) -> Forge {
        Forge::with_per_host_limit(net, DEFAULT_PER_HOST_LIMIT)
    }

    pub fn with_per_host_limit(net: &NetClient, per_host: usize) -> Forge {
        Forge {
            net: net.clone(),
            per_host: per_host.max(1),
            wanted: Arc::new([]),
            limits: Arc::default(),
            app_tokens: github_app::AppTokens::default(),
        }
    }

    /// The same adapters (per-host limits and minted app tokens shared) over another HTTP
    /// client: one presenting a credential's own client certificate.
    #[must_use]
    pub fn with_net(&self, net: &NetClient) -> Forge {
        Forge { net: net.clone(), ..self.clone() }
    }

    /// The same adapters, judging scopes against the capabilities this deployment wants.
    #[must_use]
    pub fn wanting(mut self, wanted: &[Capability]) -> Forge {
        self.wanted = wanted.into();
        self
    }

    /// What the deployment wants tokens to be able to do.
    pub fn wanted(&self) -> &[Capability] {
        &self.wanted
    }

    /// Verifies the credential on the host's REST API and the repository behind `target`.
    pub async fn check(&self, target: &RepoTarget, cred: &CredentialView<'_>) -> ForgeReport {
        self.run(target.provider, &target.api_url, Some(&target.repo_path), cred).await
    }

    /// Verifies the credential alone on the host's REST API: who it is and its scopes (the
    /// `api_credential` and `api_scopes` steps), with no repository.
    pub async fn verify(&self, provider: Provider, api_url: &str, cred: &CredentialView<'_>) -> ForgeReport {
        self.run(provider, api_url, None, cred).await
    }

    async fn run(
        &self,
        provider: Provider,
        api_url: &str,
        repo_path: Option<&str>,
        cred: &CredentialView<'_>,
    ) -> ForgeReport {
        let mut report = ForgeReport::default();
        let Some(session) = self.session(provider, api_url, cred, &mut report) else {
            return report;
        };
        match provider {
            Provider::BitbucketCloud => cloud::run(&session, repo_path, &mut report).await,
            Provider::BitbucketDatacenter => datacenter::run(&session, repo_path, &mut report).await,
            Provider::Github => github::run(&session, repo_path, &mut report).await,
            _ => {}
        }
        report.retry_after = session.retry_after.get().copied();
        report.location = session.location.get().cloned();
        report
    }

    fn session<'a>(
        &'a self,
        provider: Provider,
        api_url: &str,
        cred: &'a CredentialView<'a>,
        report: &mut ForgeReport,
    ) -> Option<Session<'a>> {
        if !supports(provider) {
            report.push(unsupported(StepName::ApiCredential, provider));
            return None;
        }
        let base = match parse_base(api_url) {
            Ok(b) => b,
            Err(msg) => {
                report.push(Step::fail(
                    StepName::ApiCredential,
                    Code::InvalidUrl,
                    msg,
                    "Configure the host's REST API URL, such as https://api.bitbucket.org/2.0, \
                     https://git.example.com:7990/bitbucket/rest or https://api.github.com.",
                ));
                return None;
            }
        };
        let (auth, shape) = rest_auth(provider, cred);
        Some(Session {
            forge: self,
            provider,
            base,
            cred,
            auth,
            shape,
            retry_after: OnceLock::new(),
            location: OnceLock::new(),
        })
    }

    fn semaphore(&self, key: &str) -> Arc<Semaphore> {
        let mut map = match self.limits.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        map.entry(key.to_owned()).or_insert_with(|| Arc::new(Semaphore::new(self.per_host))).clone()
    }

    /// The GitHub App installation tokens this instance holds.
    pub fn app_tokens(&self) -> &github_app::AppTokens {
        &self.app_tokens
    }

    /// One GET under the per-host limit; a 429 with a short `Retry-After` is retried once.
    async fn get(&self, url: Url, auth: &Auth, headers: &HeaderMap) -> Result<ApiResponse, NetError> {
        self.send(reqwest::Method::GET, url, auth, headers).await
    }

    /// One request without a body (a GET, or a POST such as minting an installation token)
    /// under the per-host limit; a 429 with a short `Retry-After` is retried once.
    async fn send(
        &self,
        method: reqwest::Method,
        url: Url,
        auth: &Auth,
        headers: &HeaderMap,
    ) -> Result<ApiResponse, NetError> {
        let key = format!("{}:{}", url.host_str().unwrap_or(""), url.port_or_known_default().unwrap_or(0));
        let limit = self.semaphore(&key);
        let mut attempt = 0;
        loop {
            let resp = {
                let _permit = limit.acquire().await.ok();
                let mut req = ApiRequest::get(url.clone(), Some(auth));
                req.method = method.clone();
                req.headers = headers.clone();
                self.net.api_request(req).await?
            };
            attempt += 1;
            if resp.status == 429 && attempt == 1 {
                if let Some(wait) = resp.retry_after().filter(|w| *w <= MAX_RETRY_WAIT) {
                    tracing::debug!(request = %resp.what, wait_s = wait.as_secs_f64(), "rate limited; retrying once");
                    tokio::time::sleep(wait).await;
                    continue;
                }
            }
            return Ok(resp);
        }
    }
}

fn unsupported(step: StepName, provider: Provider) -> Step {
    Step::skip(step, format!("Berth has no REST API check for {provider} yet; the Git steps decide"))
}

fn parse_base(api_url: &str) -> Result<Url, String> {
    let trimmed = api_url.trim();
    let mut url = Url::parse(trimmed).map_err(|_| "the configured REST API URL is not a valid URL".to_owned())?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err("the configured REST API URL is not an http(s) URL".to_owned());
    }
    if has_user_info(&url) {
        return Err("the configured REST API URL contains a user name or password".to_owned());
    }
    url.set_query(None);
    url.set_fragment(None);
    let path = url.path().trim_end_matches('/').to_owned();
    url.set_path(&path);
    Ok(url)
}

/// `base` + path segments, each percent-encoded (a `/` inside a segment stays in it).
fn endpoint(base: &Url, segments: &[&str]) -> Url {
    let mut url = base.clone();
    if let Ok(mut p) = url.path_segments_mut() {
        p.pop_if_empty().extend(segments);
    }
    url
}

/// How the credential signs REST requests on the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
enum AuthShape {
    Basic { username: String, is_email: bool },
    Bearer,
}

impl AuthShape {
    fn describe(&self) -> String {
        match self {
            AuthShape::Basic { username, .. } => format!("Basic auth as {username}"),
            AuthShape::Bearer => "a Bearer token".to_owned(),
        }
    }
}

/// Bitbucket Cloud: API tokens as Basic with the Atlassian email (the username when no email
/// was recorded, which fails with a hint), access tokens as Bearer, username/password (the app
/// password's shape) as Basic with the username. Data Center: access tokens as Bearer, the rest
/// as Basic. GitHub: tokens as Bearer, username/password as Basic.
fn rest_auth(provider: Provider, cred: &CredentialView<'_>) -> (Auth, AuthShape) {
    let basic = |username: &str, is_email: bool| {
        (
            Auth::Basic { username: username.to_owned(), password: cred.secret.clone() },
            AuthShape::Basic { username: username.to_owned(), is_email },
        )
    };
    let bearer = || (Auth::Bearer(cred.secret.clone()), AuthShape::Bearer);
    match (provider, cred.kind) {
        // A GitHub App's key never signs a request itself (github_app signs a JWT with it); the
        // adapters are not run for it.
        (_, CredentialKind::AccessToken | CredentialKind::GithubApp) => bearer(),
        (Provider::BitbucketCloud, CredentialKind::BitbucketApiToken) => match (cred.email(), cred.username()) {
            (Some(e), _) => basic(e, true),
            (None, Some(u)) => basic(u, false),
            (None, None) => basic(API_TOKEN_GIT_USERNAME, false),
        },
        (_, CredentialKind::BitbucketApiToken) => match cred.username().or(cred.email()) {
            Some(u) => basic(u, u.contains('@')),
            None => bearer(),
        },
        // SSH keys never reach a REST API (the pipeline skips these steps for them); were one
        // to, it would be refused like a wrong password, never sent as a key.
        (_, CredentialKind::UsernamePassword | CredentialKind::BitbucketAppPassword | CredentialKind::SshKey) => {
            match cred.username().or(cred.email()) {
                Some(u) => basic(u, u.contains('@')),
                None => bearer(),
            }
        }
    }
}

/// Everything one adapter run needs.
struct Session<'a> {
    forge: &'a Forge,
    provider: Provider,
    base: Url,
    cred: &'a CredentialView<'a>,
    auth: Auth,
    shape: AuthShape,
    /// Typed facts for the report, set by the steps that meet them.
    retry_after: OnceLock<Duration>,
    location: OnceLock<String>,
}

impl Session<'_> {
    fn url(&self, segments: &[&str]) -> Url {
        endpoint(&self.base, segments)
    }

    fn host(&self) -> String {
        authority(&self.base)
    }

    fn secret(&self) -> &str {
        self.cred.secret.expose_secret()
    }

    async fn get(&self, url: Url, headers: &HeaderMap) -> Result<ApiResponse, NetError> {
        self.forge.get(url, &self.auth, headers).await
    }

    /// A step's request got no answer Berth can judge: the warning, with the new location kept
    /// for the report when the API redirected.
    fn transport_failed(&self, step: StepName, e: &NetError, elapsed: Duration) -> Step {
        if let Some(loc) = &e.location {
            let _ = self.location.set(loc.clone());
        }
        transport_step(step, e, elapsed)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn view<'a>(
        kind: CredentialKind,
        username: Option<&'a str>,
        email: Option<&'a str>,
        secret: &'a SecretString,
    ) -> CredentialView<'a> {
        CredentialView { kind, username, email, secret, declared_scopes: &[], expiry: Expiry::Unknown }
    }

    #[test]
    fn rest_identity_per_kind_and_provider() {
        let secret = SecretString::from("ATATT-not-a-real-token");
        let api = view(CredentialKind::BitbucketApiToken, Some("jo"), Some("jo@example.com"), &secret);
        assert_eq!(
            rest_auth(Provider::BitbucketCloud, &api).1,
            AuthShape::Basic { username: "jo@example.com".into(), is_email: true }
        );
        let no_email = view(CredentialKind::BitbucketApiToken, Some("jo"), None, &secret);
        assert_eq!(
            rest_auth(Provider::BitbucketCloud, &no_email).1,
            AuthShape::Basic { username: "jo".into(), is_email: false }
        );
        let token = view(CredentialKind::AccessToken, Some("jo"), None, &secret);
        for p in [Provider::BitbucketCloud, Provider::BitbucketDatacenter, Provider::Github] {
            assert_eq!(rest_auth(p, &token).1, AuthShape::Bearer);
        }
        let up = view(CredentialKind::UsernamePassword, Some("jo"), None, &secret);
        assert_eq!(
            rest_auth(Provider::BitbucketDatacenter, &up).1,
            AuthShape::Basic { username: "jo".into(), is_email: false }
        );
    }

    #[test]
    fn debug_shows_no_secret() {
        let secret = SecretString::from("ATATT-super-secret-value");
        let v = view(CredentialKind::BitbucketApiToken, None, Some("jo@example.com"), &secret);
        let (auth, _) = rest_auth(Provider::BitbucketCloud, &v);
        let shown = format!("{v:?} {auth:?}");
        assert!(!shown.contains("super-secret"), "{shown}");
    }

    #[test]
    fn base_urls_and_endpoints() {
        let base = parse_base("https://api.bitbucket.org/2.0/").unwrap();
        assert_eq!(
            endpoint(&base, &["repositories", "ws", "my repo"]).as_str(),
            "https://api.bitbucket.org/2.0/repositories/ws/my%20repo"
        );
        let root = parse_base("https://api.github.com").unwrap();
        assert_eq!(endpoint(&root, &["user"]).as_str(), "https://api.github.com/user");
        assert!(parse_base("https://jo:pw@api.example/").is_err_and(|e| !e.contains("pw")));
        assert!(parse_base("not a url").is_err());
    }

    #[test]
    fn supported_providers() {
        assert!(
            supports(Provider::BitbucketCloud) && supports(Provider::BitbucketDatacenter) && supports(Provider::Github)
        );
        assert!(!supports(Provider::Gitlab) && !supports(Provider::Generic));
    }
}
