//! Name resolution under the network policy: every address a host resolves to is checked
//! before Berth connects, by reqwest's resolver for names and by [`check_url_host`] for IP
//! literals (which hyper connects to without asking a resolver).

use crate::error::{NetError, Stage};
use crate::Lookup;
use berth_core::{Code, NetworkPolicy};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use url::{Host, Url};

pub(crate) const ALLOW_REMEDY: &str =
    "Berth refuses loopback, link-local (cloud metadata) and similar addresses so that a clone URL \
     cannot be used to reach internal services. If this Git server really lives there, an operator can allow the \
     range with BERTH_NETWORK_ALLOW";

/// Why a host could not be turned into addresses Berth may contact. Travels through reqwest and
/// hyper as the resolver's error and is recognised again by [`crate::classify`].
#[derive(Debug, thiserror::Error)]
pub(crate) enum ResolveError {
    #[error("DNS lookup for {host} failed: {source}")]
    Lookup { host: String, source: std::io::Error },
    #[error("DNS lookup for {host} returned no addresses")]
    NoAddresses { host: String },
    #[error("{host} {}", forbidden_text(*.literal, .reason, *.addr))]
    Forbidden { host: String, literal: bool, reason: &'static str, addr: IpAddr, all: Vec<IpAddr> },
}

impl ResolveError {
    pub(crate) fn to_net_error(&self) -> NetError {
        match self {
            ResolveError::Lookup { host, .. } | ResolveError::NoAddresses { host } => NetError::new(
                Stage::Dns,
                Code::DnsFailed,
                self.to_string(),
                format!(
                    "Check the host name {host:?} for typos and that the Berth server's DNS can resolve it \
                     (internal hosts may need the internal resolver)."
                ),
            ),
            ResolveError::Forbidden { addr, all, .. } => {
                let net = match addr {
                    IpAddr::V4(_) => format!("{addr}/32"),
                    IpAddr::V6(_) => format!("{addr}/128"),
                };
                NetError::new(
                    Stage::Dns,
                    Code::DestinationForbidden,
                    format!("{self}; Berth does not contact such addresses."),
                    format!("{ALLOW_REMEDY} (for example BERTH_NETWORK_ALLOW={net})."),
                )
                .with_details(all.iter().map(|a| format!("address: {a}")).collect())
            }
        }
    }
}

fn forbidden_text(literal: bool, reason: &str, addr: IpAddr) -> String {
    if literal {
        format!("is {reason}")
    } else {
        format!("resolves to {reason} ({addr})")
    }
}

/// The addresses of a host that the policy lets Berth contact, in resolver order.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    pub all: Vec<IpAddr>,
    pub allowed: Vec<IpAddr>,
}

/// `host` may be a name, an IP address or a bracketed IPv6 address.
pub(crate) async fn resolve_allowed(
    policy: &NetworkPolicy,
    lookup: Option<&Arc<dyn Lookup>>,
    host: &str,
    port: u16,
) -> Result<Resolved, ResolveError> {
    let (all, literal) = lookup_all(lookup, host, port).await?;
    let bare = bare_host(host);
    let Some(first) = all.first().copied() else {
        return Err(ResolveError::NoAddresses { host: bare.to_owned() });
    };
    let allowed: Vec<IpAddr> = all.iter().copied().filter(|ip| policy.allows(*ip)).collect();
    if allowed.is_empty() {
        let reason = policy.refusal(first).unwrap_or("a refused address");
        return Err(ResolveError::Forbidden { host: bare.to_owned(), literal, reason, addr: first, all });
    }
    Ok(Resolved { all, allowed })
}

fn bare_host(host: &str) -> &str {
    host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host)
}

/// Every address of `host`, without duplicates, in resolver order, and whether `host` was an
/// IP literal. Never empty.
pub(crate) async fn lookup_all(
    lookup: Option<&Arc<dyn Lookup>>,
    host: &str,
    port: u16,
) -> Result<(Vec<IpAddr>, bool), ResolveError> {
    let bare = bare_host(host);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok((vec![ip], true));
    }
    let found: Vec<IpAddr> = match lookup {
        Some(l) => l.lookup(bare.to_owned()).await,
        None => tokio::net::lookup_host((bare, port)).await.map(|it| it.map(|a| a.ip()).collect()),
    }
    .map_err(|source| ResolveError::Lookup { host: bare.to_owned(), source })?;
    let mut all: Vec<IpAddr> = Vec::new();
    for a in found {
        if !all.contains(&a) {
            all.push(a);
        }
    }
    if all.is_empty() {
        return Err(ResolveError::NoAddresses { host: bare.to_owned() });
    }
    Ok((all, false))
}

/// Refuses `all` when any one address is forbidden: used before asking a proxy, which may
/// connect to any of them.
pub(crate) fn judge_every(
    policy: &NetworkPolicy,
    host: &str,
    literal: bool,
    all: &[IpAddr],
) -> Result<(), ResolveError> {
    match all.iter().find_map(|ip| policy.refusal(*ip).map(|r| (*ip, r))) {
        None => Ok(()),
        Some((addr, reason)) => {
            Err(ResolveError::Forbidden { host: bare_host(host).to_owned(), literal, reason, addr, all: all.to_vec() })
        }
    }
}

/// reqwest resolver applying the policy to every connection the client opens, redirects and
/// pooled reconnects included. Only host names reach it: hyper connects to IP literals directly,
/// which is why [`check_url_host`] runs before every request.
pub(crate) struct PolicyResolver {
    pub policy: NetworkPolicy,
    pub lookup: Option<Arc<dyn Lookup>>,
}

impl reqwest::dns::Resolve for PolicyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        let lookup = self.lookup.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            // Port 0: reqwest substitutes the URL's port.
            let resolved = resolve_allowed(&policy, lookup.as_ref(), &host, 0).await?;
            tracing::debug!(host = %host, allowed = ?resolved.allowed, "resolved");
            let addrs: reqwest::dns::Addrs = Box::new(resolved.allowed.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

/// reqwest resolver of a proxied client: it only ever resolves the proxy's own name (the
/// destination goes to the proxy as a name, judged beforehand), and the proxy's address is the
/// operator's choice, so no policy applies here.
pub(crate) struct ProxyHostResolver {
    pub lookup: Option<Arc<dyn Lookup>>,
}

impl reqwest::dns::Resolve for ProxyHostResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let lookup = self.lookup.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let (all, _) = lookup_all(lookup.as_ref(), &host, 0).await?;
            let addrs: reqwest::dns::Addrs = Box::new(all.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

/// The IP address a URL names literally, if it does (names are left to the resolver).
pub(crate) fn literal_ip(url: &Url) -> Option<IpAddr> {
    match url.host()? {
        Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        Host::Domain(_) => None,
    }
}

/// Refuses a URL whose host is an IP literal the policy forbids (names are left to the resolver).
pub(crate) fn check_url_host(policy: &NetworkPolicy, url: &Url) -> Result<(), NetError> {
    let Some(ip) = literal_ip(url) else { return Ok(()) };
    match policy.refusal(ip) {
        None => Ok(()),
        Some(reason) => {
            Err(ResolveError::Forbidden { host: ip.to_string(), literal: true, reason, addr: ip, all: vec![ip] }
                .to_net_error())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_hosts_are_checked_against_the_policy() -> Result<(), url::ParseError> {
        let p = NetworkPolicy::default();
        let e = check_url_host(&p, &Url::parse("http://169.254.169.254/latest/meta-data")?).err();
        assert_eq!(e.as_ref().map(|e| e.code), Some(Code::DestinationForbidden));
        assert!(e.is_some_and(|e| e.message.contains("link-local") && e.remedy.contains("BERTH_NETWORK_ALLOW")));
        assert!(check_url_host(&p, &Url::parse("http://[::ffff:127.0.0.1]/")?).is_err());
        assert!(check_url_host(&p, &Url::parse("https://git.example/")?).is_ok());
        Ok(())
    }
}
