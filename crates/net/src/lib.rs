//! All of Berth's outbound HTTP, under its network policy. Git smart HTTP (berth-git) and the
//! hosts' REST APIs (berth-forge) both go through one [`NetClient`]:
//!
//! * one pooled reqwest client with the timeouts and extra root certificates, no proxy, and a
//!   resolver that applies the [`NetworkPolicy`] to every address it hands out; IP literals are
//!   checked before each request ([`NetClient::send`]);
//! * redirects are never followed by reqwest: a forbidden IP literal is `destination_forbidden`,
//!   another origin is `repository_moved`, a same-origin one is followed only when asked;
//! * credentials are attached in one place, and go only to the request's own origin;
//! * HTTP statuses ([`status_error`]) and transport failures ([`classify`]: DNS, connect, TLS,
//!   timeouts) become findings ([`NetError`]); bodies are read under a cap ([`read_capped`]);
//!   `Retry-After` stays a [`Duration`] ([`parse_retry_after`]).

mod body;
mod classify;
mod error;
mod resolve;
mod rest;
mod send;
mod status;
mod urls;

pub use body::{
    html_title, looks_like_html, mime_of, read_capped, read_prefix, text_lines, truncate_chars, DIAGNOSIS_BYTES,
};
pub use classify::classify;
pub use error::{NetError, Stage};
pub use rest::{ApiRequest, ApiResponse, DEFAULT_API_BODY_CAP};
pub use send::{Exchange, Redirects, Request};
pub use status::{parse_retry_after, status_error};
pub use urls::{authority, has_user_info, refuse_user_info, repository_of, without_query};

use berth_core::{Code, NetworkPolicy};
use classify::chain_text;
use resolve::{resolve_allowed, PolicyResolver};
use secrecy::SecretString;
use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    pub connected_to: SocketAddr,
}

/// The one HTTP client. Cheap to clone: all clones share one connection pool.
#[derive(Clone)]
pub struct NetClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    cfg: NetConfig,
}

impl fmt::Debug for NetClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetClient").field("config", &self.inner.cfg).finish_non_exhaustive()
    }
}

impl NetClient {
    pub fn new(cfg: NetConfig) -> Result<NetClient, NetError> {
        let http = build_client(&cfg)?;
        Ok(NetClient { inner: Arc::new(Inner { http, cfg }) })
    }

    pub fn config(&self) -> &NetConfig {
        &self.inner.cfg
    }

    pub fn policy(&self) -> &NetworkPolicy {
        &self.inner.cfg.policy
    }

    fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    /// Resolves `host` under the policy and opens (and drops) one TCP connection, timing each
    /// part, for the dns and connect steps of a check. Tries the allowed addresses in order.
    pub async fn probe(&self, host: &str, port: u16) -> Result<Probe, NetError> {
        let (stream, probe) = self.connect_tcp(host, port).await?;
        drop(stream);
        Ok(probe)
    }

    /// Resolves `host` under the policy and opens one TCP connection to the first allowed
    /// address that answers, within the request timeout each. For transports other than HTTP
    /// (Git over SSH): the same policy, judged on this connection's own resolution, so DNS
    /// rebinding between the probe and the connection gains nothing.
    pub async fn connect_tcp(&self, host: &str, port: u16) -> Result<(tokio::net::TcpStream, Probe), NetError> {
        let limit = self.inner.cfg.request_timeout;
        let started = Instant::now();
        let lookup = resolve_allowed(self.policy(), self.inner.cfg.lookup.as_ref(), host, port);
        let resolved = match tokio::time::timeout(limit, lookup).await {
            Ok(r) => r.map_err(|e| e.to_net_error())?,
            Err(_) => {
                return Err(NetError::new(
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
                    let probe = Probe {
                        addrs: resolved.all,
                        allowed: resolved.allowed,
                        dns,
                        connect: started.elapsed(),
                        connected_to: addr,
                    };
                    return Ok((stream, probe));
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
        Err(NetError::new(
            Stage::Connect,
            code,
            message,
            "Check the host and port in the URL and that the Berth server can reach them (firewall, VPN, proxy).",
        )
        .with_details(failures))
    }
}

fn build_client(cfg: &NetConfig) -> Result<reqwest::Client, NetError> {
    let mut b = reqwest::Client::builder()
        .use_rustls_tls()
        .user_agent(cfg.user_agent.clone())
        // Redirects are judged in `send` so that credentials never cross origins.
        .redirect(reqwest::redirect::Policy::none())
        .timeout(cfg.request_timeout)
        .connect_timeout(cfg.request_timeout)
        // A proxy would resolve and connect on our behalf, out of the policy's reach.
        .no_proxy()
        .dns_resolver(Arc::new(PolicyResolver { policy: cfg.policy.clone(), lookup: cfg.lookup.clone() }));
    for pem in &cfg.extra_root_certs_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| {
            NetError::new(
                Stage::Tls,
                Code::InvalidInput,
                format!("An extra root certificate could not be read: {e}"),
                "Provide the certificate authority as PEM (-----BEGIN CERTIFICATE-----).",
            )
        })?;
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    b.build().map_err(|e| {
        NetError::new(
            Stage::Tls,
            Code::Internal,
            format!("The HTTP client could not be set up: {}", chain_text(&e).join(": ")),
            "Check the extra root certificates; this is otherwise a bug in Berth.",
        )
    })
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
