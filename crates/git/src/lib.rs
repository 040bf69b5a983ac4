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
pub mod pktline;
pub mod replay;
mod smart;
pub mod ssh;

pub use advert::{Protocol, RemoteBranch, RemoteRefs};
/// A credential for HTTP; Git names it `GitAuth`.
pub use berth_net::Auth as GitAuth;
/// The HTTP layer's error, which is already a finding; Git names it `GitError`.
pub use berth_net::NetError as GitError;
pub use berth_net::{HostSettings, Lookup, Probe, ProxyRoute, Stage};

pub use advert::{Discovered, V2Caps};
use advert::{DiscoveryParser, LsRefsParser};
use berth_core::{Code, NetworkPolicy};
use berth_net::{mime_of, refuse_user_info, repository_of, status_error, without_query, NetClient, NetConfig, Request};
use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT, CONTENT_TYPE};
use reqwest::Method;
use smart::PktReader;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
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
    /// The proxy every host goes through unless excepted (berth-net's `NetConfig::proxy`).
    pub proxy: Option<ProxyRoute>,
    /// Per-host certificate authorities, client certificates and proxy choices.
    pub hosts: Vec<HostSettings>,
}

impl Default for GitClientConfig {
    /// berth-net's defaults, and a 32 MiB cap on an advertisement.
    fn default() -> Self {
        let NetConfig {
            request_timeout,
            policy,
            user_agent,
            extra_root_certs_pem,
            max_redirects,
            lookup,
            proxy,
            hosts,
        } = NetConfig::default();
        GitClientConfig {
            request_timeout,
            max_advertisement_bytes: 32 * 1024 * 1024,
            policy,
            user_agent,
            extra_root_certs_pem,
            max_redirects,
            lookup,
            proxy,
            hosts,
        }
    }
}

impl GitClientConfig {
    /// The settings of the HTTP client underneath.
    pub fn net(&self) -> NetConfig {
        NetConfig {
            request_timeout: self.request_timeout,
            policy: self.policy.clone(),
            user_agent: self.user_agent.clone(),
            extra_root_certs_pem: self.extra_root_certs_pem.clone(),
            max_redirects: self.max_redirects,
            lookup: self.lookup.clone(),
            proxy: self.proxy.clone(),
            hosts: self.hosts.clone(),
        }
    }
}

/// Cheap to clone: all clones share one connection pool.
#[derive(Clone)]
pub struct GitClient {
    inner: Arc<Inner>,
}

struct Inner {
    net: NetClient,
    cfg: GitClientConfig,
}

impl fmt::Debug for GitClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitClient").field("config", &self.inner.cfg).finish_non_exhaustive()
    }
}

impl GitClient {
    pub fn new(cfg: GitClientConfig) -> Result<GitClient, GitError> {
        let net = NetClient::new(cfg.net())?;
        Ok(GitClient { inner: Arc::new(Inner { net, cfg }) })
    }

    /// The same Git client over another HTTP client (one presenting a credential's own client
    /// certificate).
    #[must_use]
    pub fn with_net(&self, net: NetClient) -> GitClient {
        GitClient { inner: Arc::new(Inner { net, cfg: self.inner.cfg.clone() }) }
    }

    /// The HTTP client underneath (same pool, policy, timeouts and roots), for REST calls to the
    /// same hosts.
    pub fn net(&self) -> &NetClient {
        &self.inner.net
    }

    pub fn policy(&self) -> &NetworkPolicy {
        &self.inner.cfg.policy
    }

    pub fn config(&self) -> &GitClientConfig {
        &self.inner.cfg
    }

    /// Resolves `host` under the policy and opens (and drops) one TCP connection, timing each
    /// part, for the dns and connect steps of a check.
    pub async fn probe(&self, host: &str, port: u16) -> Result<Probe, GitError> {
        self.inner.net.probe(host, port).await
    }

    /// The dns and connect steps the way a request to `scheme://host:port` goes: directly or
    /// through the proxy that applies (which, for HTTPS, is asked for the tunnel).
    pub async fn probe_url(&self, https: bool, host: &str, port: u16) -> Result<Probe, GitError> {
        self.inner.net.probe_url(https, host, port).await
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
        let req = Request { headers, ..Request::new(Method::GET, discovery, Stage::Discovery, auth) };
        let ex = self.send(req).await?;
        if !ex.response.status().is_success() {
            return Err(status_error(ex, Stage::Discovery, auth.is_some()).await);
        }
        if mime_of(ex.response.headers()) != smart::ADVERTISEMENT_TYPE {
            return Err(smart::not_a_git_server(ex).await);
        }
        // Later requests go where discovery ended up, as git does after a redirect.
        let base = repository_of(&ex.url).unwrap_or(base);
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

    /// One smart-HTTP request through berth-net.
    async fn send(&self, req: Request<'_>) -> Result<berth_net::Exchange, GitError> {
        tracing::debug!(request = %format_args!("{} {}", req.method, without_query(&req.url)), "git http request");
        self.inner.net.send(req).await
    }

    async fn ls_refs_v2(&self, base: &Url, caps: &V2Caps, auth: Option<&GitAuth>) -> Result<RemoteRefs, GitError> {
        let cfg = &self.inner.cfg;
        let body = ls_refs_request(caps, &cfg.user_agent)?;

        let mut url = base.clone();
        url.set_path(&format!("{}/git-upload-pack", base.path()));
        let mut headers = HeaderMap::new();
        headers.insert(HeaderName::from_static("git-protocol"), HeaderValue::from_static("version=2"));
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(smart::REQUEST_TYPE));
        headers.insert(ACCEPT, HeaderValue::from_static(smart::RESULT_TYPE));
        let req =
            Request { headers, body: Some(Bytes::from(body)), ..Request::new(Method::POST, url, Stage::LsRefs, auth) };
        let ex = self.send(req).await?;
        if !ex.response.status().is_success() {
            return Err(status_error(ex, Stage::LsRefs, auth.is_some()).await);
        }
        let mime = mime_of(ex.response.headers());
        if mime != smart::RESULT_TYPE {
            return Err(GitError::protocol(
                Stage::LsRefs,
                format!("The ls-refs answer has content type {mime:?} instead of {}.", smart::RESULT_TYPE),
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
    refuse_user_info(
        url,
        Stage::Discovery,
        "URL",
        "Remove the user name and password from the URL and store them as a credential.",
    )?;
    let mut base = url.clone();
    base.set_query(None);
    base.set_fragment(None);
    let path = base.path().trim_end_matches('/').to_owned();
    base.set_path(&path);
    Ok(base)
}

/// The `agent` capability value must not contain spaces.
/// The protocol v2 `ls-refs` request, the same over HTTP and SSH: symrefs, unborn HEAD when
/// offered, and only `HEAD` and branches (`ref-prefix`), so tags never cross the wire.
pub(crate) fn ls_refs_request(caps: &V2Caps, user_agent: &str) -> Result<Vec<u8>, GitError> {
    if caps.ls_refs.is_none() {
        return Err(GitError::protocol(
            Stage::Discovery,
            "The server speaks Git protocol v2 but does not offer the ls-refs command.",
        ));
    }
    let mut body = Vec::new();
    pktline::encode(&mut body, "command=ls-refs\n");
    if caps.agent {
        pktline::encode(&mut body, &format!("agent={}\n", agent_of(user_agent)));
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
    Ok(body)
}

pub(crate) fn agent_of(user_agent: &str) -> String {
    user_agent.chars().map(|c| if c.is_ascii_graphic() { c } else { '-' }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
