//! Git smart-HTTP ref listing for Berth: "which branches does this repository have, and which is
//! the default?", answered the way `git ls-remote` would, under Berth's network policy.
//!
//! * Protocol v2 first (`ls-refs` with `ref-prefix`, so a repository with 250,000 tags transfers
//!   only its branches), v0 when the server answers discovery with a v0 advertisement.
//! * Bodies are parsed as they stream in, under a size cap; only branches are kept.
//! * Redirects are followed only within the same origin; anything else is reported as
//!   `repository_moved` and nothing is sent there.
//! * Every failure is a [`GitError`]: a stable code, a message, a remedy and the server's words,
//!   never a credential.

mod advert;
pub mod api;
mod error;
pub mod pktline;
pub mod replay;
mod transport;

pub use advert::{Protocol, RemoteBranch, RemoteRefs};
pub use error::{GitError, Stage};

use advert::{DiscoveryParser, LsRefsParser};
pub use advert::{Discovered, V2Caps};
use berth_core::{Code, NetworkPolicy};
use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT, CONTENT_TYPE};
use reqwest::Method;
use secrecy::SecretString;
use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};
use transport::{PktReader, Request};
use url::Url;

#[derive(Debug, Clone)]
pub struct GitClientConfig {
    /// Limit for one HTTP request, from connecting until the body is read.
    pub request_timeout: Duration,
    /// Cap on one response body.
    pub max_advertisement_bytes: u64,
    /// Which resolved addresses may be contacted.
    pub policy: NetworkPolicy,
    /// Some hosts speak smart HTTP only to a user agent starting with `git/`.
    pub user_agent: String,
    /// PEM certificate authorities trusted in addition to the system roots.
    pub extra_root_certs_pem: Vec<Vec<u8>>,
    /// Same-origin redirects followed per request.
    pub max_redirects: u8,
    /// Turns host names into addresses; `None` is the system resolver. Whatever it returns goes
    /// through the network policy, so a substitute cannot widen what Berth contacts.
    pub lookup: Option<Arc<dyn Lookup>>,
}

/// A host-name resolver to use instead of the system's (tests use one to make a name resolve to
/// chosen addresses, or to different ones on each lookup as a DNS rebinding attack would).
pub trait Lookup: fmt::Debug + Send + Sync + 'static {
    /// Every address of `host` (a name, never an IP literal), in preference order.
    fn lookup(&self, host: String) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send>>;
}

impl Default for GitClientConfig {
    fn default() -> Self {
        GitClientConfig {
            request_timeout: Duration::from_secs(20),
            max_advertisement_bytes: 32 * 1024 * 1024,
            policy: NetworkPolicy::default(),
            user_agent: format!("git/2.47 (berth/{})", env!("CARGO_PKG_VERSION")),
            extra_root_certs_pem: Vec::new(),
            max_redirects: 5,
            lookup: None,
        }
    }
}

/// A credential for HTTP. `Debug` never shows the secret.
#[derive(Clone)]
pub enum GitAuth {
    Basic { username: String, password: SecretString },
    Bearer(SecretString),
}

impl fmt::Debug for GitAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GitAuth::Basic { username, .. } => {
                f.debug_struct("Basic").field("username", username).field("password", &"[redacted]").finish()
            }
            GitAuth::Bearer(_) => f.debug_tuple("Bearer").field(&"[redacted]").finish(),
        }
    }
}

/// Result of [`GitClient::probe`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// Every address the host resolved to, in resolver order (refused ones included).
    pub addrs: Vec<IpAddr>,
    /// The addresses the network policy let Berth try.
    pub allowed: Vec<IpAddr>,
    pub dns: Duration,
    pub connect: Duration,
    pub connected_to: SocketAddr,
}

/// Cheap to clone: all clones share one connection pool.
#[derive(Clone)]
pub struct GitClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    cfg: GitClientConfig,
}

impl fmt::Debug for GitClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitClient").field("config", &self.inner.cfg).finish_non_exhaustive()
    }
}

impl GitClient {
    pub fn new(cfg: GitClientConfig) -> Result<GitClient, GitError> {
        let http = transport::build_client(&cfg)?;
        Ok(GitClient { inner: Arc::new(Inner { http, cfg }) })
    }

    /// The pooled HTTP client (same policy, timeouts and roots), for REST calls to the same hosts.
    pub fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    pub fn policy(&self) -> &NetworkPolicy {
        &self.inner.cfg.policy
    }

    pub fn config(&self) -> &GitClientConfig {
        &self.inner.cfg
    }

    /// Resolves `host` under the policy and opens (and drops) one TCP connection, timing each
    /// part, for the dns and connect steps of a check. Tries the allowed addresses in order.
    pub async fn probe(&self, host: &str, port: u16) -> Result<Probe, GitError> {
        let limit = self.inner.cfg.request_timeout;
        let started = Instant::now();
        let resolved = match tokio::time::timeout(limit, transport::resolve_allowed(self.policy(), self.inner.cfg.lookup.as_ref(), host, port)).await {
            Ok(r) => r.map_err(|e| e.to_git_error())?,
            Err(_) => {
                return Err(GitError::new(
                    Stage::Dns,
                    Code::Timeout,
                    format!("DNS lookup for {host} did not finish within {} s.", limit.as_secs_f64()),
                    "Check the DNS configuration of the Berth server.",
                ))
            }
        };
        let dns = started.elapsed();
        let started = Instant::now();
        let mut failures = Vec::new();
        let mut all_timed_out = true;
        for ip in &resolved.allowed {
            let addr = SocketAddr::new(*ip, port);
            match tokio::time::timeout(limit, tokio::net::TcpStream::connect(addr)).await {
                Ok(Ok(stream)) => {
                    drop(stream);
                    return Ok(Probe {
                        addrs: resolved.all,
                        allowed: resolved.allowed,
                        dns,
                        connect: started.elapsed(),
                        connected_to: addr,
                    });
                }
                Ok(Err(e)) => {
                    all_timed_out = false;
                    failures.push(format!("{addr}: {e}"));
                }
                Err(_) => failures.push(format!("{addr}: no answer within {} s", limit.as_secs_f64())),
            }
        }
        let (code, message) = if all_timed_out {
            (Code::Timeout, format!("Could not connect to {host} port {port} within {} s.", limit.as_secs_f64()))
        } else {
            (Code::ConnectFailed, format!("Could not connect to {host} port {port}."))
        };
        Err(GitError::new(
            Stage::Connect,
            code,
            message,
            "Check the host and port in the URL and that the Berth server can reach them (firewall, VPN, proxy).",
        )
        .with_details(failures))
    }

    /// Lists the branches and the default branch of the repository at `repo_url`
    /// (`https://host/owner/repo.git`, without credentials in it).
    pub async fn ls_refs(&self, repo_url: &Url, auth: Option<&GitAuth>) -> Result<RemoteRefs, GitError> {
        let base = repository_base(repo_url)?;
        let cfg = &self.inner.cfg;
        let mut discovery = base.clone();
        discovery.set_path(&format!("{}/info/refs", base.path()));
        discovery.set_query(Some("service=git-upload-pack"));

        let mut headers = HeaderMap::new();
        headers.insert(HeaderName::from_static("git-protocol"), HeaderValue::from_static("version=2"));
        headers.insert(ACCEPT, HeaderValue::from_static("*/*"));
        let req = Request { method: Method::GET, url: discovery, stage: Stage::Discovery, headers, body: None, auth };
        let ex = transport::send(&self.inner.http, cfg, req).await?;
        if !ex.response.status().is_success() {
            return Err(transport::status_error(ex, Stage::Discovery, auth.is_some()).await);
        }
        if transport::mime_of(ex.response.headers()) != transport::ADVERTISEMENT_TYPE {
            return Err(transport::not_a_git_server(ex).await);
        }
        // Later requests go where discovery ended up, as git does after a redirect.
        let base = transport::repository_of(&ex.url).unwrap_or(base);
        let mut reader = PktReader::new(ex, cfg.max_advertisement_bytes, Stage::Discovery, cfg.request_timeout);
        let mut parser = DiscoveryParser::new();
        let found = loop {
            let pkt = reader.next_required().await?;
            if let Some(found) = parser.push(pkt)? {
                break found;
            }
            reader.set_stage(parser.stage());
        };
        match found {
            Discovered::V2(caps) => {
                drop(reader);
                self.ls_refs_v2(&base, &caps, auth).await
            }
            Discovered::V0(refs) => Ok(refs),
        }
    }

    async fn ls_refs_v2(&self, base: &Url, caps: &V2Caps, auth: Option<&GitAuth>) -> Result<RemoteRefs, GitError> {
        let cfg = &self.inner.cfg;
        if caps.ls_refs.is_none() {
            return Err(GitError::protocol(
                Stage::Discovery,
                "The server speaks Git protocol v2 but does not offer the ls-refs command.",
            ));
        }
        let mut body = Vec::new();
        pktline::encode(&mut body, "command=ls-refs\n");
        if caps.agent {
            pktline::encode(&mut body, &format!("agent={}\n", agent_of(&cfg.user_agent)));
        }
        // A SHA-256 repository refuses a request that does not name its object format.
        if let Some(fmt) = caps.object_format.as_deref().filter(|f| *f != "sha1") {
            pktline::encode(&mut body, &format!("object-format={fmt}\n"));
        }
        body.extend_from_slice(b"0001");
        pktline::encode(&mut body, "symrefs\n");
        if caps.ls_refs_unborn() {
            pktline::encode(&mut body, "unborn\n");
        }
        pktline::encode(&mut body, "ref-prefix HEAD\n");
        pktline::encode(&mut body, "ref-prefix refs/heads/\n");
        body.extend_from_slice(b"0000");

        let mut url = base.clone();
        url.set_path(&format!("{}/git-upload-pack", base.path()));
        let mut headers = HeaderMap::new();
        headers.insert(HeaderName::from_static("git-protocol"), HeaderValue::from_static("version=2"));
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(transport::REQUEST_TYPE));
        headers.insert(ACCEPT, HeaderValue::from_static(transport::RESULT_TYPE));
        let req = Request { method: Method::POST, url, stage: Stage::LsRefs, headers, body: Some(Bytes::from(body)), auth };
        let ex = transport::send(&self.inner.http, cfg, req).await?;
        if !ex.response.status().is_success() {
            return Err(transport::status_error(ex, Stage::LsRefs, auth.is_some()).await);
        }
        let mime = transport::mime_of(ex.response.headers());
        if mime != transport::RESULT_TYPE {
            return Err(GitError::protocol(
                Stage::LsRefs,
                format!("The ls-refs answer has content type {mime:?} instead of {}.", transport::RESULT_TYPE),
            ));
        }
        let mut reader = PktReader::new(ex, cfg.max_advertisement_bytes, Stage::LsRefs, cfg.request_timeout);
        let mut parser = LsRefsParser::new();
        loop {
            if let Some(refs) = parser.push(reader.next_required().await?)? {
                return Ok(refs);
            }
        }
    }
}

/// Checks the repository URL and normalises it: no credentials, no query, no trailing slash.
fn repository_base(url: &Url) -> Result<Url, GitError> {
    let invalid = |msg: String| {
        GitError::new(
            Stage::Discovery,
            Code::InvalidUrl,
            msg,
            "Use the repository's HTTPS clone URL, such as https://git.example.com/team/app.git.",
        )
    };
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(format!("Git over {} is not supported; Berth uses HTTPS.", url.scheme())));
    }
    if url.host_str().is_none() {
        return Err(invalid("The URL has no host.".to_owned()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(GitError::new(
            Stage::Discovery,
            Code::SecretInUrl,
            "The URL contains a user name or password; Berth keeps credentials separate from URLs.",
            "Remove the user name and password from the URL and store them as a credential.",
        ));
    }
    let mut base = url.clone();
    base.set_query(None);
    base.set_fragment(None);
    let path = base.path().trim_end_matches('/').to_owned();
    base.set_path(&path);
    Ok(base)
}

/// The `agent` capability value must not contain spaces.
fn agent_of(user_agent: &str) -> String {
    user_agent.chars().map(|c| if c.is_ascii_graphic() { c } else { '-' }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    #[test]
    fn auth_debug_hides_secrets() {
        let basic = GitAuth::Basic { username: "ci-bot".into(), password: SecretString::from("hunter2-secret") };
        let bearer = GitAuth::Bearer(SecretString::from("glpat-abcdef123456"));
        let shown = format!("{basic:?} {bearer:?} {basic:#?}");
        assert!(shown.contains("ci-bot"));
        assert!(!shown.contains("hunter2") && !shown.contains("glpat"), "{shown}");
    }

    #[test]
    fn repository_url_rules() -> Result<(), url::ParseError> {
        let ok = repository_base(&Url::parse("https://git.example/team/app.git/?x=1#f")?);
        assert_eq!(ok.map(|u| u.to_string()).ok().as_deref(), Some("https://git.example/team/app.git"));
        let secret = repository_base(&Url::parse("https://bob:hunter2@git.example/app.git")?).err();
        assert_eq!(secret.as_ref().map(|e| e.code), Some(Code::SecretInUrl));
        assert!(secret.is_some_and(|e| !e.message.contains("hunter2")));
        let ssh = repository_base(&Url::parse("ssh://git@git.example/app.git")?).err();
        assert_eq!(ssh.map(|e| e.code), Some(Code::InvalidUrl));
        Ok(())
    }

    #[test]
    fn agent_has_no_spaces() {
        assert_eq!(agent_of("git/2.47 (berth/0.1)"), "git/2.47-(berth/0.1)");
    }
}
