//! Webhooks on the host: creating the one Berth receives branch pushes through, and deleting
//! it. Bitbucket Cloud `POST /2.0/repositories/{workspace}/{slug}/hooks` (`repo:push`), Data
//! Center `POST /rest/api/1.0/projects/{key}/repos/{slug}/webhooks` (`repo:refs_changed`, the
//! secret in `configuration.secret`), GitHub `POST /repos/{owner}/{repo}/hooks` (`push`, JSON).
//!
//! A refusal names what the credential lacks: Cloud's `write:webhook:bitbucket` (API tokens) or
//! `webhook` (access tokens), Data Center's `REPO_ADMIN`, GitHub's `admin:repo_hook`.

use crate::{endpoint, parse, parse_base, rest_auth, CredentialView, Forge};
use berth_core::{Code, CredentialKind, Provider, StepName};
use berth_net::{ApiRequest, ApiResponse, Auth, NetError};
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, CONTENT_TYPE};
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

/// What the host said no with: a stable code, its words, and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookRefusal {
    pub code: Code,
    pub message: String,
    pub remedy: String,
}

impl HookRefusal {
    fn new(code: Code, message: impl Into<String>, remedy: impl Into<String>) -> HookRefusal {
        HookRefusal { code, message: message.into(), remedy: remedy.into() }
    }
}

impl From<NetError> for HookRefusal {
    fn from(e: NetError) -> Self {
        HookRefusal::new(e.code, format!("REST API: {}", e.message), e.remedy)
    }
}

/// The repository whose hook to create or delete, on its host's REST API.
#[derive(Debug, Clone, Copy)]
pub struct HookTarget<'a> {
    pub provider: Provider,
    pub api_url: &'a str,
    /// The clone URL's path (`ws/repo`, `bitbucket/scm/proj/repo`, `owner/repo`).
    pub repo_path: &'a str,
}

/// The hook to create.
#[derive(Debug, Clone, Copy)]
pub struct NewHook<'a> {
    /// `public_url` + `/hooks/{provider}/{repository id}`.
    pub url: &'a str,
    pub secret: &'a SecretString,
    /// What the host shows as the hook's name or description.
    pub description: &'a str,
}

/// Whether Berth can register a webhook for this provider with this kind of credential.
pub fn hooks_supported(provider: Provider, kind: CredentialKind) -> bool {
    matches!(provider, Provider::BitbucketCloud | Provider::BitbucketDatacenter | Provider::Github)
        && kind != CredentialKind::GithubApp
}

/// The scope (or permission) a credential needs to manage hooks on the provider.
pub fn hook_scope(provider: Provider, kind: CredentialKind) -> &'static str {
    match (provider, kind) {
        (Provider::BitbucketCloud, CredentialKind::AccessToken) => "webhook",
        (Provider::BitbucketCloud, _) => "write:webhook:bitbucket",
        (Provider::BitbucketDatacenter, _) => "REPO_ADMIN",
        _ => "admin:repo_hook",
    }
}

impl Forge {
    /// Creates the hook and answers the host's id for it.
    pub async fn create_hook(
        &self,
        t: HookTarget<'_>,
        cred: &CredentialView<'_>,
        hook: NewHook<'_>,
    ) -> Result<String, HookRefusal> {
        let (base, owner, repo) = locate(t)?;
        let (auth, _) = rest_auth(t.provider, cred);
        let secret = hook.secret.expose_secret();
        let (url, body) = match t.provider {
            Provider::BitbucketCloud => (
                endpoint(&base, &["repositories", &owner, &repo, "hooks"]),
                json!({"description": hook.description, "url": hook.url, "active": true, "secret": secret,
                       "events": ["repo:push"]}),
            ),
            Provider::BitbucketDatacenter => (
                endpoint(&base, &["api", "1.0", "projects", &owner, "repos", &repo, "webhooks"]),
                json!({"name": hook.description, "url": hook.url, "active": true, "events": ["repo:refs_changed"],
                       "configuration": {"secret": secret}}),
            ),
            _ => (
                endpoint(&base, &["repos", &owner, &repo, "hooks"]),
                json!({"name": "web", "active": true, "events": ["push"],
                       "config": {"url": hook.url, "content_type": "json", "secret": secret, "insecure_ssl": "0"}}),
            ),
        };
        let resp = self.hook_request(Method::POST, url, &auth, t.provider, Some(body.to_string())).await?;
        if !resp.is_success() {
            return Err(refusal(t.provider, cred.kind, &resp, "create"));
        }
        let v = parse::json(&resp.body).unwrap_or_default();
        let id = match t.provider {
            Provider::BitbucketCloud => v.get("uuid").and_then(|u| u.as_str()).map(str::to_owned),
            _ => v.get("id").and_then(|i| i.as_i64().map(|n| n.to_string()).or(i.as_str().map(str::to_owned))),
        };
        id.filter(|i| !i.is_empty() && i.len() <= 100).ok_or_else(|| {
            HookRefusal::new(
                Code::WebhookRefused,
                format!("{} answered {} without the new webhook's id", resp.what, resp.status),
                "check that the API URL is the host's REST API; the host may have created the webhook, so look at \
                 the repository's webhook settings there",
            )
        })
    }

    /// Deletes the hook. One the host no longer has (404) counts as deleted.
    pub async fn delete_hook(
        &self,
        t: HookTarget<'_>,
        cred: &CredentialView<'_>,
        hook_id: &str,
    ) -> Result<(), HookRefusal> {
        let (base, owner, repo) = locate(t)?;
        let (auth, _) = rest_auth(t.provider, cred);
        let url = match t.provider {
            Provider::BitbucketCloud => endpoint(&base, &["repositories", &owner, &repo, "hooks", hook_id]),
            Provider::BitbucketDatacenter => {
                endpoint(&base, &["api", "1.0", "projects", &owner, "repos", &repo, "webhooks", hook_id])
            }
            _ => endpoint(&base, &["repos", &owner, &repo, "hooks", hook_id]),
        };
        let resp = self.hook_request(Method::DELETE, url, &auth, t.provider, None).await?;
        if resp.is_success() || resp.status == 404 {
            return Ok(());
        }
        Err(refusal(t.provider, cred.kind, &resp, "delete"))
    }

    async fn hook_request(
        &self,
        method: Method,
        url: url::Url,
        auth: &Auth,
        provider: Provider,
        body: Option<String>,
    ) -> Result<ApiResponse, NetError> {
        let mut headers = HeaderMap::new();
        let accept = if provider == Provider::Github { "application/vnd.github+json" } else { "application/json" };
        headers.insert(ACCEPT, HeaderValue::from_static(accept));
        if body.is_some() {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        let key = format!("{}:{}", url.host_str().unwrap_or(""), url.port_or_known_default().unwrap_or(0));
        let limit = self.semaphore(&key);
        let _permit = limit.acquire().await.ok();
        let mut req = ApiRequest::get(url, Some(auth));
        req.method = method;
        req.headers = headers;
        req.body = body.map(berth_net::Bytes::from);
        self.net.api_request(req).await
    }
}

/// The API root and the repository's two path parts, or why they cannot be had.
fn locate(t: HookTarget<'_>) -> Result<(url::Url, String, String), HookRefusal> {
    let base = parse_base(t.api_url)
        .map_err(|m| HookRefusal::new(Code::InvalidUrl, m, "configure the host's REST API URL for this integration"))?;
    let parts = match t.provider {
        Provider::BitbucketDatacenter => crate::datacenter::split_repo(t.repo_path, StepName::ApiRepository),
        Provider::BitbucketCloud | Provider::Github => crate::owner_and_repo(
            t.repo_path,
            StepName::ApiRepository,
            "an owner/repository path",
            "https://host/owner/repository.git",
        ),
        other => {
            return Err(HookRefusal::new(
                Code::WebhookNotSupported,
                format!("Berth cannot register webhooks on {other}"),
                "Berth registers webhooks on Bitbucket Cloud, Bitbucket Data Center and GitHub",
            ))
        }
    };
    let (owner, repo) = parts.map_err(|s| HookRefusal::new(s.code, s.message, s.remedy))?;
    Ok((base, owner, repo))
}

/// The host's refusal, with the scope or permission named when that is what it lacks.
fn refusal(provider: Provider, kind: CredentialKind, resp: &ApiResponse, doing: &str) -> HookRefusal {
    // Bitbucket Cloud names the scopes it wanted (creating and deleting need different ones).
    let named = match provider {
        Provider::BitbucketCloud => parse::cloud_error(&resp.body).map(|e| e.required).unwrap_or_default(),
        _ => Vec::new(),
    };
    let scope = if named.is_empty() { hook_scope(provider, kind).to_owned() } else { named.join(" and ") };
    let words = match provider {
        Provider::BitbucketCloud => parse::cloud_error(&resp.body).map(|e| e.message),
        Provider::BitbucketDatacenter => parse::datacenter_errors(&resp.body).into_iter().next(),
        _ => parse::github_message(&resp.body),
    }
    .map(|w| parse::clip(&w))
    .unwrap_or_default();
    let said = if words.is_empty() { String::new() } else { format!(": {words}") };
    let host = resp.host();
    let scope_refusal = |extra: &str| {
        HookRefusal::new(
            Code::ScopeMissing,
            format!("{host} refused to {doing} the webhook ({} {}){said}; the credential lacks {scope}{extra}", resp.what, resp.status),
            format!("give the credential the {scope} scope (or permission) and try again, or register the webhook without Berth"),
        )
    };
    match (provider, resp.status) {
        (Provider::BitbucketCloud, 400 | 403) => {
            let scope_error = parse::cloud_error(&resp.body).is_some_and(|e| e.is_scope_error());
            if scope_error {
                scope_refusal("")
            } else {
                HookRefusal::new(
                    Code::AccessDenied,
                    format!("{host} refused to {doing} the webhook ({} {}){said}", resp.what, resp.status),
                    "webhooks need administrator access to the repository: ask its administrator",
                )
            }
        }
        (Provider::BitbucketDatacenter, 401 | 403) => scope_refusal(" (repository administrator access)"),
        (Provider::Github, 403) => {
            let accepted = resp.header("x-accepted-oauth-scopes").unwrap_or("").to_owned();
            let extra = if accepted.is_empty() { String::new() } else { format!(" (the host accepts: {accepted})") };
            scope_refusal(&extra)
        }
        (_, 401) => HookRefusal::new(
            Code::AuthFailed,
            format!("{host} refused the credential ({} {}){said}", resp.what, resp.status),
            "renew or correct the credential's token",
        ),
        (_, 404) => HookRefusal::new(
            Code::RepositoryNotFoundOrNoAccess,
            format!("{host} answered {} {}{said}: the repository is not there, or the credential may not manage its webhooks (it needs {scope})", resp.what, resp.status),
            format!("check the repository and give the credential {scope}"),
        ),
        (_, 429) => HookRefusal::new(
            Code::RateLimited,
            format!("{host} rate-limited {}{said}", resp.what),
            "try again later",
        ),
        (_, status) => HookRefusal::new(
            Code::WebhookRefused,
            format!("{host} refused to {doing} the webhook ({} {status}){said}", resp.what),
            "look at the host's answer; the repository's webhook settings on the host show what exists",
        ),
    }
}
