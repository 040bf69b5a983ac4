//! A small typed client for Berth's REST API (`/api/v1`): one method per endpoint, the wire
//! types from `berth-proto`, and errors that tell an API refusal from a server that cannot be
//! reached.
//!
//! The session token is a secret: it is kept out of `Debug` output and never appears in errors.

use berth_core::{Check, Code, Step};
use berth_proto::{
    ApiError, ApiToken, ApiTokenCreate, ApiTokenCreated, AuditEntry, ConfigApply, ConfigDocument, ConfigPlan,
    Credential, CredentialCreate, CredentialTemplate, CredentialUpdate, CredentialVerify, ErrorBody, Health, Id,
    Import, ImportCreate, ImportRegister, LoginRequest, LoginResponse, Me, Page, RemoteBranches, RemoteBranchesRequest,
    Repository, RepositoryCreate, RepositoryUpdate, RepositoryWebhook, Scheduled, Settings, StoredBranch, StoredCheck,
    TemplateCreate, TemplateMatch, User, UserCreate, UserUpdate,
};
use reqwest::{Method, RequestBuilder, StatusCode, Url};

mod decode;
mod notifications;
mod pager;
pub use decode::decode_error;
use decode::error_chain;
pub use pager::{Pager, RepoQuery};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// The address a server listens on when nothing else is configured.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8080";

/// Why a call did not return what was asked for.
#[derive(Debug)]
pub enum ClientError {
    /// The server answered with an error status; `body` is its `ErrorBody.error` (or one made up
    /// from the status when the body was not Berth's error format, e.g. from a proxy).
    Api { status: u16, body: ApiError },
    /// The request never got an answer: bad address, connection refused, TLS, timeout.
    Transport(String),
    /// The server answered success with a body that does not fit the expected type.
    Decode(String),
}

impl ClientError {
    /// The API's error, when the server answered one.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            ClientError::Api { body, .. } => Some(body),
            _ => None,
        }
    }

    /// The API's error code, when the server answered one.
    pub fn code(&self) -> Option<Code> {
        self.api().map(|e| e.code)
    }

    /// The HTTP status, when the server answered an error.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The API error's message; empty when the server did not answer one.
    pub fn message(&self) -> &str {
        self.api().map_or("", |e| e.message.as_str())
    }

    /// The API error's remedy; empty when the server did not answer one.
    pub fn remedy(&self) -> &str {
        self.api().map_or("", |e| e.remedy.as_str())
    }

    /// The steps of the check that failed, when one ran.
    pub fn checks(&self) -> &[Step] {
        self.api().map_or(&[], |e| e.checks.as_slice())
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Api { status, body } => write!(f, "{} (HTTP {status}): {}", body.code, body.message),
            ClientError::Transport(m) => write!(f, "cannot reach the server: {m}"),
            ClientError::Decode(m) => write!(f, "unexpected answer from the server: {m}"),
        }
    }
}

impl std::error::Error for ClientError {}

/// Parses and normalises a Berth base URL: http or https, no user name or password (they
/// would be a secret in plain sight), and a path that ends in `/` so endpoints join under it
/// (a Berth behind a reverse proxy at `https://tools.example/berth` works).
pub fn normalize_base(url: &str) -> Result<Url, String> {
    let trimmed = url.trim();
    let mut u = Url::parse(trimmed).map_err(|e| format!("{trimmed:?} is not a URL: {e}"))?;
    if u.scheme() != "http" && u.scheme() != "https" {
        return Err(format!("the Berth URL must start with http:// or https://, not {}://", u.scheme()));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err("the Berth URL must not contain a user name or password: log in with `berth login`".to_owned());
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err(format!("{trimmed:?} has no host"));
    }
    u.set_query(None);
    u.set_fragment(None);
    if !u.path().ends_with('/') {
        let p = format!("{}/", u.path());
        u.set_path(&p);
    }
    Ok(u)
}

/// The base URL as people write it: without the trailing slash of a bare host.
pub fn display_base(u: &Url) -> String {
    u.as_str().trim_end_matches('/').to_owned()
}

/// One answer as it came off the wire, before decoding: what an [`Observer`] sees.
#[derive(Debug, Clone, Copy)]
pub struct Exchange<'a> {
    pub method: &'a Method,
    /// The endpoint as the client names it, e.g. `api/v1/credentials/7`.
    pub path: &'a str,
    pub status: StatusCode,
    pub body: &'a [u8],
}

/// Called with every answer the client receives (success or error), e.g. to trace the wire or,
/// in tests, to scan every answer and keep its status.
pub type Observer = Arc<dyn Fn(&Exchange<'_>) + Send + Sync>;

/// A client for one Berth server, optionally with a session token.
#[derive(Clone)]
pub struct ApiClient {
    pub base: Url,
    token: Option<String>,
    http: reqwest::Client,
    observer: Option<Observer>,
}

impl fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiClient")
            .field("base", &self.base.as_str())
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

impl ApiClient {
    /// A client for the server at `base` (see [`normalize_base`]), without a token.
    pub fn new(base: &str) -> Result<Self, ClientError> {
        let base = normalize_base(base).map_err(ClientError::Transport)?;
        let http = reqwest::Client::builder()
            .user_agent(concat!("berth-cli/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            // A check talks to a Git host under its own timeouts; leave it room.
            .timeout(Duration::from_secs(180))
            // The API never redirects; following one could carry the token somewhere else.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ClientError::Transport(error_chain(&e)))?;
        Ok(ApiClient { base, token: None, http, observer: None })
    }

    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// This client, calling `observer` with every answer it receives.
    pub fn with_observer(mut self, observer: Observer) -> Self {
        self.observer = Some(observer);
        self
    }

    pub fn set_token(&mut self, token: Option<String>) {
        self.token = token;
    }

    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    fn url(&self, path: &str) -> Result<Url, ClientError> {
        self.base
            .join(path.trim_start_matches('/'))
            .map_err(|e| ClientError::Transport(format!("bad endpoint {path}: {e}")))
    }

    fn request(&self, method: Method, path: &str) -> Result<RequestBuilder, ClientError> {
        let mut rb = self.http.request(method, self.url(path)?).header(reqwest::header::ACCEPT, "application/json");
        if let Some(t) = &self.token {
            rb = rb.bearer_auth(t);
        }
        Ok(rb)
    }

    async fn execute(&self, rb: RequestBuilder) -> Result<(StatusCode, Vec<u8>), ClientError> {
        let (client, req) = rb.build_split();
        let req = req.map_err(|e| ClientError::Transport(error_chain(&e)))?;
        let method = req.method().clone();
        let path = req.url().path().strip_prefix(self.base.path()).unwrap_or(req.url().path()).to_owned();
        let resp = client.execute(req).await.map_err(|e| ClientError::Transport(error_chain(&e)))?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| ClientError::Transport(error_chain(&e)))?;
        if let Some(observe) = &self.observer {
            observe(&Exchange { method: &method, path: &path, status, body: &body });
        }
        if status.is_success() {
            Ok((status, body.to_vec()))
        } else {
            Err(ClientError::Api { status: status.as_u16(), body: decode_error(status.as_u16(), &body) })
        }
    }

    async fn call<T: DeserializeOwned>(&self, rb: RequestBuilder) -> Result<T, ClientError> {
        let (status, body) = self.execute(rb).await?;
        serde_json::from_slice(&body).map_err(|e| {
            ClientError::Decode(format!("HTTP {} with a body that is not the expected JSON: {e}", status.as_u16()))
        })
    }

    async fn call_empty(&self, rb: RequestBuilder) -> Result<(), ClientError> {
        self.execute(rb).await.map(|_| ())
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.call(self.request(Method::GET, path)?).await
    }

    async fn send_json<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.call(self.request(method, path)?.json(body)).await
    }

    /// `GET /healthz`, open to anyone.
    pub async fn health(&self) -> Result<Health, ClientError> {
        self.get("healthz").await
    }

    /// `POST /api/v1/auth/login`. Keep the answer's token out of logs and output.
    pub async fn login(&self, username: &str, password: &str) -> Result<LoginResponse, ClientError> {
        let req = LoginRequest { username: username.to_owned(), password: password.to_owned() };
        self.send_json(Method::POST, "api/v1/auth/login", &req).await
    }

    /// `POST /api/v1/auth/logout`: ends this client's session on the server.
    pub async fn logout(&self) -> Result<(), ClientError> {
        self.call_empty(self.request(Method::POST, "api/v1/auth/logout")?).await
    }

    /// Every credential, by name: the pages followed to the last.
    pub async fn list_credentials(&self) -> Result<Vec<Credential>, ClientError> {
        self.credentials(None).all().await
    }

    /// The credentials, a page (of `limit`, the server's default when `None`) at a time.
    pub fn credentials(&self, limit: Option<i64>) -> Pager<Credential> {
        Pager::new(self.clone(), "api/v1/credentials", limit.map(|l| ("limit", l.to_string())).into_iter().collect())
    }

    pub async fn get_credential(&self, id: Id) -> Result<Credential, ClientError> {
        self.get(&format!("api/v1/credentials/{id}")).await
    }

    pub async fn create_credential(&self, req: &CredentialCreate) -> Result<Credential, ClientError> {
        self.send_json(Method::POST, "api/v1/credentials", req).await
    }

    pub async fn update_credential(&self, id: Id, req: &CredentialUpdate) -> Result<Credential, ClientError> {
        self.send_json(Method::PATCH, &format!("api/v1/credentials/{id}"), req).await
    }

    /// `POST /api/v1/credentials/{id}/verify`: verifies the credential on its host, or at `url`.
    pub async fn verify_credential(&self, id: Id, req: &CredentialVerify) -> Result<Credential, ClientError> {
        self.send_json(Method::POST, &format!("api/v1/credentials/{id}/verify"), req).await
    }

    pub async fn delete_credential(&self, id: Id) -> Result<(), ClientError> {
        self.call_empty(self.request(Method::DELETE, &format!("api/v1/credentials/{id}"))?).await
    }

    /// `POST /api/v1/remote-branches`: lists a remote's branches through a stored credential.
    pub async fn remote_branches(&self, req: &RemoteBranchesRequest) -> Result<RemoteBranches, ClientError> {
        self.send_json(Method::POST, "api/v1/remote-branches", req).await
    }

    /// Every registered repository, by name: the pages followed to the last.
    pub async fn list_repositories(&self) -> Result<Vec<Repository>, ClientError> {
        self.repositories(&RepoQuery::default()).all().await
    }

    /// The repositories `query` selects, a page at a time (`query.limit` per page).
    pub fn repositories(&self, query: &RepoQuery) -> Pager<Repository> {
        Pager::new(self.clone(), "api/v1/repositories", query.pairs())
    }

    /// One page of the repository list: at most `limit` (the server's default when `None`)
    /// after cursor `after`.
    pub async fn repositories_page(
        &self,
        query: &RepoQuery,
        after: Option<&str>,
    ) -> Result<Page<Repository>, ClientError> {
        let mut pairs = query.pairs();
        pairs.extend(after.map(|a| ("after", a.to_owned())));
        self.call(self.request(Method::GET, "api/v1/repositories")?.query(&pairs)).await
    }

    pub async fn get_repository(&self, id: Id) -> Result<Repository, ClientError> {
        self.get(&format!("api/v1/repositories/{id}")).await
    }

    pub async fn create_repository(&self, req: &RepositoryCreate) -> Result<Repository, ClientError> {
        self.send_json(Method::POST, "api/v1/repositories", req).await
    }

    pub async fn update_repository(&self, id: Id, req: &RepositoryUpdate) -> Result<Repository, ClientError> {
        self.send_json(Method::PATCH, &format!("api/v1/repositories/{id}"), req).await
    }

    pub async fn delete_repository(&self, id: Id) -> Result<(), ClientError> {
        self.call_empty(self.request(Method::DELETE, &format!("api/v1/repositories/{id}"))?).await
    }

    /// `POST /api/v1/repositories/{id}/webhook`: the webhook registered on the host.
    pub async fn register_webhook(&self, id: Id) -> Result<RepositoryWebhook, ClientError> {
        self.call(self.request(Method::POST, &format!("api/v1/repositories/{id}/webhook"))?).await
    }

    /// `DELETE /api/v1/repositories/{id}/webhook`: removed from the host and from Berth.
    pub async fn delete_webhook(&self, id: Id) -> Result<(), ClientError> {
        self.call_empty(self.request(Method::DELETE, &format!("api/v1/repositories/{id}/webhook"))?).await
    }

    /// A repository's stored branches by name, a page (of `limit`) at a time.
    pub fn branches(&self, id: Id, limit: Option<i64>) -> Pager<StoredBranch> {
        let pairs = limit.map(|l| ("limit", l.to_string())).into_iter().collect();
        Pager::new(self.clone(), &format!("api/v1/repositories/{id}/branches"), pairs)
    }

    /// A repository's check history, newest first: its latest `limit` checks (pages followed
    /// as far as needed).
    pub async fn check_history(&self, id: Id, limit: i64) -> Result<Vec<StoredCheck>, ClientError> {
        let mut pages = self.history(id, Some(limit.clamp(1, 1000)));
        let mut out = Vec::new();
        while let Some(page) = pages.next_page().await? {
            out.extend(page);
            if out.len() >= usize::try_from(limit).unwrap_or(0) {
                out.truncate(usize::try_from(limit).unwrap_or(0));
                break;
            }
        }
        Ok(out)
    }

    /// A repository's check history, newest first, a page (of `limit`) at a time.
    pub fn history(&self, id: Id, limit: Option<i64>) -> Pager<StoredCheck> {
        let pairs = limit.map(|l| ("limit", l.to_string())).into_iter().collect();
        Pager::new(self.clone(), &format!("api/v1/repositories/{id}/checks"), pairs)
    }

    /// `POST /api/v1/checks/schedule`: every repository due now, checked in the background.
    pub async fn schedule_all_checks(&self) -> Result<Scheduled, ClientError> {
        self.call(self.request(Method::POST, "api/v1/checks/schedule")?).await
    }

    /// `POST /api/v1/repositories/{id}/check`: `ok` is false when a step failed.
    pub async fn check_repository(&self, id: Id) -> Result<Check, ClientError> {
        self.call(self.request(Method::POST, &format!("api/v1/repositories/{id}/check"))?).await
    }

    /// A repository's check history, newest first: at most `limit` checks older than `before`.
    pub async fn check_history_before(
        &self,
        id: Id,
        before: Option<Id>,
        limit: i64,
    ) -> Result<Vec<StoredCheck>, ClientError> {
        let before = before.map(|b| format!("&before={b}")).unwrap_or_default();
        let page: Page<StoredCheck> =
            self.get(&format!("api/v1/repositories/{id}/checks?limit={limit}{before}")).await?;
        Ok(page.items)
    }

    /// `GET /api/v1/me`: who this client's token belongs to and what the role allows.
    /// `POST /api/v1/imports`: list a workspace, project or organisation.
    pub async fn create_import(&self, req: &ImportCreate) -> Result<Import, ClientError> {
        self.send_json(Method::POST, "api/v1/imports", req).await
    }

    pub async fn get_import(&self, id: Id) -> Result<Import, ClientError> {
        self.get(&format!("api/v1/imports/{id}")).await
    }

    /// `POST /api/v1/imports/{id}/register`: answers at once; poll [`ApiClient::get_import`].
    pub async fn register_import(&self, id: Id, req: &ImportRegister) -> Result<Import, ClientError> {
        self.send_json(Method::POST, &format!("api/v1/imports/{id}/register"), req).await
    }

    pub async fn me(&self) -> Result<Me, ClientError> {
        self.get("api/v1/me").await
    }

    /// Every user, by name: the pages followed to the last.
    pub async fn list_users(&self) -> Result<Vec<User>, ClientError> {
        Pager::new(self.clone(), "api/v1/users", Vec::new()).all().await
    }

    pub async fn create_user(&self, req: &UserCreate) -> Result<User, ClientError> {
        self.send_json(Method::POST, "api/v1/users", req).await
    }

    /// A new password or role ends the user's sessions and personal tokens.
    pub async fn update_user(&self, id: Id, req: &UserUpdate) -> Result<User, ClientError> {
        self.send_json(Method::PATCH, &format!("api/v1/users/{id}"), req).await
    }

    pub async fn delete_user(&self, id: Id) -> Result<(), ClientError> {
        self.call_empty(self.request(Method::DELETE, &format!("api/v1/users/{id}"))?).await
    }

    /// `DELETE /api/v1/users/{id}/lockout`: lets a locked-out user sign in again.
    pub async fn clear_lockout(&self, id: Id) -> Result<(), ClientError> {
        self.call_empty(self.request(Method::DELETE, &format!("api/v1/users/{id}/lockout"))?).await
    }

    /// `DELETE /api/v1/users/{id}/totp`: removes a user's second factor.
    pub async fn reset_totp(&self, id: Id) -> Result<(), ClientError> {
        self.call_empty(self.request(Method::DELETE, &format!("api/v1/users/{id}/totp"))?).await
    }

    pub async fn settings(&self) -> Result<Settings, ClientError> {
        self.get("api/v1/settings").await
    }

    pub async fn put_settings(&self, settings: &Settings) -> Result<Settings, ClientError> {
        self.send_json(Method::PUT, "api/v1/settings", settings).await
    }

    /// The caller's personal API tokens (never the tokens themselves).
    pub async fn list_tokens(&self) -> Result<Vec<ApiToken>, ClientError> {
        self.get("api/v1/tokens").await
    }

    /// A new personal API token: the answer is the only time the token is shown.
    pub async fn create_token(&self, req: &ApiTokenCreate) -> Result<ApiTokenCreated, ClientError> {
        self.send_json(Method::POST, "api/v1/tokens", req).await
    }

    pub async fn revoke_token(&self, id: Id) -> Result<(), ClientError> {
        self.call_empty(self.request(Method::DELETE, &format!("api/v1/tokens/{id}"))?).await
    }

    pub async fn list_templates(&self) -> Result<Vec<CredentialTemplate>, ClientError> {
        self.get("api/v1/credential-templates").await
    }

    pub async fn create_template(&self, req: &TemplateCreate) -> Result<CredentialTemplate, ClientError> {
        self.send_json(Method::POST, "api/v1/credential-templates", req).await
    }

    /// Answers the template deleted.
    pub async fn delete_template(&self, id: Id) -> Result<CredentialTemplate, ClientError> {
        self.call(self.request(Method::DELETE, &format!("api/v1/credential-templates/{id}"))?).await
    }

    /// `GET /api/v1/known-hosts`: pinned and trusted SSH host keys.
    pub async fn list_known_hosts(&self) -> Result<Vec<berth_proto::KnownHost>, ClientError> {
        self.call(self.request(Method::GET, "api/v1/known-hosts")?).await
    }

    /// `POST /api/v1/known-hosts`: trust a key, or the key the host presents with a fingerprint.
    pub async fn add_known_host(&self, req: &berth_proto::KnownHostAdd) -> Result<berth_proto::KnownHost, ClientError> {
        self.send_json(Method::POST, "api/v1/known-hosts", req).await
    }

    /// Answers the key removed.
    pub async fn delete_known_host(&self, id: Id) -> Result<berth_proto::KnownHost, ClientError> {
        self.call(self.request(Method::DELETE, &format!("api/v1/known-hosts/{id}"))?).await
    }

    /// `GET /api/v1/credential-templates/match?url=…`: which credential the URL would use, and why.
    pub async fn match_template(&self, url: &str) -> Result<TemplateMatch, ClientError> {
        self.call(self.request(Method::GET, "api/v1/credential-templates/match")?.query(&[("url", url)])).await
    }

    /// `POST /api/v1/config/apply`: the plan (dry run) or the result. The request carries
    /// secrets in its body only.
    pub async fn apply_config(&self, req: &ConfigApply) -> Result<ConfigPlan, ClientError> {
        self.send_json(Method::POST, "api/v1/config/apply", req).await
    }

    /// `GET /api/v1/config/export`: the current set, secrets as references.
    pub async fn export_config(&self) -> Result<ConfigDocument, ClientError> {
        self.get("api/v1/config/export").await
    }

    /// The audit log, newest first: at most `limit` entries (the server's default when none)
    /// older than `before` (the first page of [`ApiClient::audit_pages`]).
    pub async fn audit(&self, before: Option<Id>, limit: Option<i64>) -> Result<Vec<AuditEntry>, ClientError> {
        let pairs: Vec<(&str, String)> =
            [before.map(|b| ("before", b.to_string())), limit.map(|l| ("limit", l.to_string()))]
                .into_iter()
                .flatten()
                .collect();
        let page: Page<AuditEntry> = self.call(self.request(Method::GET, "api/v1/audit")?.query(&pairs)).await?;
        Ok(page.items)
    }

    /// The audit log, newest first, a page at a time; `filter` holds further query pairs
    /// (`actor`, `action`, `target`, `from`, `until`, `limit`).
    pub fn audit_pages(&self, filter: Vec<(&'static str, String)>) -> Pager<AuditEntry> {
        Pager::new(self.clone(), "api/v1/audit", filter)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_normalised() {
        assert_eq!(normalize_base("http://127.0.0.1:8080").unwrap().as_str(), "http://127.0.0.1:8080/");
        assert_eq!(normalize_base(" https://tools.example/berth ").unwrap().as_str(), "https://tools.example/berth/");
        assert!(normalize_base("https://admin:hunter2@tools.example").is_err());
        assert!(normalize_base("ftp://tools.example").is_err());
        assert!(normalize_base("tools.example").is_err());
        let c = ApiClient::new("https://tools.example/berth").unwrap();
        assert_eq!(c.url("api/v1/credentials").unwrap().as_str(), "https://tools.example/berth/api/v1/credentials");
        assert_eq!(display_base(&c.base), "https://tools.example/berth");
    }

    #[test]
    fn debug_hides_the_token() {
        let c = ApiClient::new(DEFAULT_URL).unwrap().with_token("berth_s3cr3t");
        assert!(!format!("{c:?}").contains("s3cr3t"));
    }

    #[test]
    fn error_bodies_decode_or_fall_back_to_the_status() {
        let body =
            br#"{"error":{"code":"credential_in_use","message":"used by app (id 1)","remedy":"delete it first"}}"#;
        let e = decode_error(409, body);
        assert_eq!(e.code, Code::CredentialInUse);
        assert_eq!(e.remedy, "delete it first");
        assert!(e.checks.is_empty());

        let e = decode_error(502, b"<html>\n<h1>Bad Gateway</h1></html>");
        assert_eq!(e.code, Code::Internal);
        assert!(e.message.starts_with("HTTP 502 Bad Gateway: <html> <h1>Bad Gateway"), "{}", e.message);
        assert_eq!(decode_error(401, b"").code, Code::Unauthenticated);
        assert_eq!(decode_error(404, b"").message, "HTTP 404 Not Found");
    }

    #[test]
    fn an_api_refusal_exposes_its_code_message_remedy_and_steps() {
        let body = br#"{"error":{"code":"branch_not_found","message":"no trnk","remedy":"pick one",
            "checks":[{"step":"default_branch","status":"fail","code":"branch_not_found","message":"no trnk",
            "duration_ms":1,"details":["trunk"]}]}}"#;
        let e = ClientError::Api { status: 422, body: decode_error(422, body) };
        assert_eq!((e.status(), e.code()), (Some(422), Some(Code::BranchNotFound)));
        assert_eq!((e.message(), e.remedy()), ("no trnk", "pick one"));
        assert_eq!(e.checks()[0].details, ["trunk"]);
        let e = ClientError::Transport("refused".into());
        assert_eq!((e.status(), e.code(), e.message(), e.remedy(), e.checks().len()), (None, None, "", "", 0));
    }
}
