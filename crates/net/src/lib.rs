//! All of Berth's outbound HTTP, under its network policy. Git smart HTTP (berth-git) and the
//! hosts' REST APIs (berth-forge) both go through one [`NetClient`]:
//!
//! * one pooled reqwest client per TLS and proxy set-up (the default, and each host with its own
//!   CA, client certificate or proxy: [`HostSettings`]) with the timeouts and extra root
//!   certificates, and a resolver that applies the [`NetworkPolicy`] to every address it hands
//!   out; IP literals are checked before each request ([`NetClient::send`]);
//! * through a proxy ([`Proxy`], [`NoProxy`]) Berth resolves the destination itself and every
//!   address must pass the policy before the proxy is asked; proxy failures have their own
//!   findings (`proxy_connect_failed`, `proxy_auth_failed`, `proxy_refused`);
//! * redirects are never followed by reqwest: a forbidden IP literal is `destination_forbidden`,
//!   another origin is `repository_moved`, a same-origin one is followed only when asked;
//! * credentials are attached in one place, and go only to the request's own origin;
//! * HTTP statuses ([`status_error`]) and transport failures ([`classify`]: DNS, connect, TLS,
//!   timeouts) become findings ([`NetError`]); bodies are read under a cap ([`read_capped`]);
//!   `Retry-After` stays a [`Duration`] ([`parse_retry_after`]).

mod body;
mod classify;
mod error;
mod failure;
mod hosts;
mod identity;
mod issuer;
mod probe;
mod proxy;
mod resolve;
mod rest;
mod route;
mod send;
mod status;
mod urls;

pub use body::{
    html_title, looks_like_html, mime_of, read_capped, read_prefix, text_lines, truncate_chars, DIAGNOSIS_BYTES,
};
pub use bytes::Bytes;
pub use classify::classify;
pub use error::{NetError, Stage};
pub use hosts::{ClientIdentity, HostSettings, ProxyChoice, ProxyRoute};
pub use identity::{read_client_identity, CertificateFacts, IdentityProblem};
pub use proxy::{NoProxy, Proxy};
pub use rest::{ApiRequest, ApiResponse, DEFAULT_API_BODY_CAP};
pub use send::{Exchange, Redirects, Request};
pub use status::{parse_retry_after, status_error};
pub use urls::{authority, has_user_info, refuse_user_info, repository_of, without_query};

use berth_core::NetworkPolicy;
use route::Lanes;
use secrecy::SecretString;
use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct NetConfig {
    /// Limit for one HTTP request, from connecting until the body is read.
    pub request_timeout: Duration,
    /// Which resolved addresses may be contacted.
    pub policy: NetworkPolicy,
    /// Some hosts speak smart HTTP only to a user agent starting with `git/`.
    pub user_agent: String,
    /// PEM certificate authorities trusted in addition to the system roots.
    pub extra_root_certs_pem: Vec<Vec<u8>>,
    /// Same-origin redirects followed per request (when the request follows any).
    pub max_redirects: u8,
    /// Turns host names into addresses; `None` is the system resolver. Whatever it returns goes
    /// through the network policy, so a substitute cannot widen what Berth contacts.
    pub lookup: Option<Arc<dyn Lookup>>,
    /// The proxy every host goes through unless its name or addresses are in `no_proxy`.
    pub proxy: Option<ProxyRoute>,
    /// Per-host certificate authorities, client certificates and proxy choices.
    pub hosts: Vec<HostSettings>,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            request_timeout: Duration::from_secs(20),
            policy: NetworkPolicy::default(),
            user_agent: format!("git/2.47 (berth/{})", env!("CARGO_PKG_VERSION")),
            extra_root_certs_pem: Vec::new(),
            max_redirects: 5,
            lookup: None,
            proxy: None,
            hosts: Vec::new(),
        }
    }
}

/// A host-name resolver to use instead of the system's (tests use one to make a name resolve to
/// chosen addresses, or to different ones on each lookup as a DNS rebinding attack would).
pub trait Lookup: fmt::Debug + Send + Sync + 'static {
    /// Every address of `host` (a name, never an IP literal), in preference order.
    fn lookup(&self, host: String) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send>>;
}

/// A credential for HTTP. `Debug` never shows the secret.
#[derive(Clone)]
pub enum Auth {
    Basic { username: String, password: SecretString },
    Bearer(SecretString),
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::Basic { username, .. } => {
                f.debug_struct("Basic").field("username", username).field("password", &"[redacted]").finish()
            }
            Auth::Bearer(_) => f.debug_tuple("Bearer").field(&"[redacted]").finish(),
        }
    }
}

/// Result of [`NetClient::probe`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// Every address the host resolved to, in resolver order (refused ones included).
    pub addrs: Vec<IpAddr>,
    /// The addresses the network policy let Berth try.
    pub allowed: Vec<IpAddr>,
    pub dns: Duration,
    pub connect: Duration,
    /// The address connected to: the host's, or the proxy's when one was used.
    pub connected_to: SocketAddr,
    /// The proxy that opened the way (`http://host:port`), when one was used.
    pub via_proxy: Option<String>,
}

/// The one HTTP client. Cheap to clone: all clones share one connection pool.
#[derive(Clone)]
pub struct NetClient {
    inner: Arc<Inner>,
}

struct Inner {
    lanes: Lanes,
    cfg: NetConfig,
    /// A credential's own client certificate, presented to every host in place of the host's
    /// (`NetClient::with_credential_identity`): how findings name it.
    credential_certificate: Option<String>,
}

impl fmt::Debug for NetClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetClient").field("config", &self.inner.cfg).finish_non_exhaustive()
    }
}

impl NetClient {
    pub fn new(cfg: NetConfig) -> Result<NetClient, NetError> {
        let lanes = Lanes::build(&cfg, None)?;
        Ok(NetClient { inner: Arc::new(Inner { lanes, cfg, credential_certificate: None }) })
    }

    /// The same client (configuration, policy, per-host CAs and proxies) presenting `identity`,
    /// a credential's own client certificate, to every host it asks for one: it takes the place
    /// of an `[[integrations]]` entry's. `shown` names it in findings ("the client certificate
    /// of credential \"ci\" (CN=jo)"). Its pools are its own.
    pub fn with_credential_identity(&self, identity: &ClientIdentity, shown: String) -> Result<NetClient, NetError> {
        let cfg = self.inner.cfg.clone();
        let lanes = Lanes::build(&cfg, Some(identity))?;
        Ok(NetClient { inner: Arc::new(Inner { lanes, cfg, credential_certificate: Some(shown) }) })
    }

    /// The credential's own client certificate this client presents, as findings name it.
    pub fn credential_certificate(&self) -> Option<&str> {
        self.inner.credential_certificate.as_deref()
    }

    /// Which client certificate a request to `url` presents, as a person would name it: the
    /// credential's own, the `[[integrations]]` entry's, or none.
    pub fn client_certificate_for(&self, url: &url::Url) -> Option<String> {
        if let Some(c) = self.credential_certificate() {
            return Some(c.to_owned());
        }
        self.lanes()
            .host_identity(url)
            .map(|host| format!("the client certificate of the [[integrations]] entry for {host}"))
    }

    pub fn config(&self) -> &NetConfig {
        &self.inner.cfg
    }

    pub fn policy(&self) -> &NetworkPolicy {
        &self.inner.cfg.policy
    }

    pub(crate) fn lanes(&self) -> &Lanes {
        &self.inner.lanes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_debug_hides_secrets() {
        let basic = Auth::Basic { username: "ci-bot".into(), password: SecretString::from("hunter2-secret") };
        let bearer = Auth::Bearer(SecretString::from("glpat-abcdef123456"));
        let shown = format!("{basic:?} {bearer:?} {basic:#?}");
        assert!(shown.contains("ci-bot"));
        assert!(!shown.contains("hunter2") && !shown.contains("glpat"), "{shown}");
    }
}
