//! What differs per host (an `[[integrations]]` entry): certificate authorities trusted for that
//! host only, the client certificate presented to it, and its own proxy choice.

use crate::proxy::{NoProxy, Proxy};
use secrecy::SecretString;
use std::fmt;
use url::Url;

/// A client certificate and its private key (both PEM). `Debug` never shows the key.
#[derive(Clone)]
pub struct ClientIdentity {
    pub certificate_pem: Vec<u8>,
    pub key_pem: SecretString,
}

impl fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientIdentity")
            .field("certificate_pem", &format_args!("{} bytes", self.certificate_pem.len()))
            .field("key_pem", &"[redacted]")
            .finish()
    }
}

/// A host's own way through: the global proxy, none, or another one.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum ProxyChoice {
    /// As configured for every host (`[network] proxy`, `no_proxy`).
    #[default]
    Inherit,
    /// Never through a proxy (`proxy = "none"`).
    Direct,
    /// Through this proxy, with these exceptions.
    Via(ProxyRoute),
}

/// A proxy and the destinations that skip it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProxyRoute {
    pub proxy: Proxy,
    pub no_proxy: NoProxy,
}

/// Settings for one host (`host[:port]`, as an integration names it in clone URLs).
#[derive(Clone, Default)]
pub struct HostSettings {
    /// `host[:port]`, compared case-insensitively; no port means the scheme's default port.
    pub host: String,
    /// PEM certificate authorities trusted for this host, in addition to the system roots and
    /// the extra roots every host trusts.
    pub ca_pem: Option<Vec<u8>>,
    /// The client certificate presented to this host when it asks for one.
    pub client_identity: Option<ClientIdentity>,
    pub proxy: ProxyChoice,
}

impl fmt::Debug for HostSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostSettings")
            .field("host", &self.host)
            .field("ca_pem", &self.ca_pem.as_ref().map(|p| format!("{} bytes", p.len())))
            .field("client_identity", &self.client_identity)
            .field("proxy", &self.proxy)
            .finish()
    }
}

impl HostSettings {
    /// Whether requests to `url` use these settings.
    pub fn matches(&self, url: &Url) -> bool {
        let Some(host) = url.host_str() else { return false };
        let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        let (want_host, want_port) = split_host_port(&self.host.trim().to_ascii_lowercase());
        want_host == host.to_ascii_lowercase() && want_port == url.port()
    }

    /// Whether this host needs a TLS set-up of its own.
    pub(crate) fn has_tls(&self) -> bool {
        self.ca_pem.is_some() || self.client_identity.is_some()
    }
}

/// Splits `host[:port]` (IPv6 in brackets) into the host and the port, if any.
fn split_host_port(s: &str) -> (String, Option<u16>) {
    if let Some(rest) = s.strip_prefix('[') {
        if let Some((h, tail)) = rest.split_once(']') {
            return (h.to_owned(), tail.strip_prefix(':').and_then(|p| p.parse().ok()));
        }
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()) => (h.to_owned(), p.parse().ok()),
        _ => (s.to_owned(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_match_host_and_port() -> Result<(), url::ParseError> {
        let s = HostSettings { host: "Git.Example.com:7990".into(), ..HostSettings::default() };
        assert!(s.matches(&Url::parse("https://git.example.com:7990/scm/p/r.git")?));
        assert!(!s.matches(&Url::parse("https://git.example.com/scm/p/r.git")?));
        let s = HostSettings { host: "git.example.com".into(), ..HostSettings::default() };
        assert!(s.matches(&Url::parse("https://git.example.com:443/r.git")?), "the default port is no port");
        let s = HostSettings { host: "[::1]:8443".into(), ..HostSettings::default() };
        assert!(s.matches(&Url::parse("https://[::1]:8443/r.git")?));
        let shown = format!(
            "{:?}",
            ClientIdentity { certificate_pem: b"cert".to_vec(), key_pem: SecretString::from("PRIVATE-KEY-BYTES") }
        );
        assert!(!shown.contains("PRIVATE-KEY-BYTES"), "{shown}");
        Ok(())
    }
}
