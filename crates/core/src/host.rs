//! A Git host named without a repository: what a credential is for.
//!
//! People name a host as a base URL (`https://bitbucket.org`), a bare name (`bitbucket.org`)
//! or an integration's `host:port` (`git.example.com:7990`). [`HostBase`] reduces each to one
//! canonical form, `https://host[:port]`, with the provider and REST API URL the clone URLs of
//! that host get, so a credential verified "on its host" is verified exactly where its
//! repositories will be checked.

use crate::clone_url::{CloneUrl, Scheme, UrlError};
use crate::provider::{self, Integration, Provider};

/// A host: scheme, name and port, with its provider and REST API URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostBase {
    pub scheme: Scheme,
    /// Lower-case; an IPv6 address without brackets.
    pub host: String,
    /// `None` when it is the scheme's default port.
    pub port: Option<u16>,
    pub provider: Provider,
    pub api_url: Option<String>,
}

/// The longest host text accepted.
const MAX_LEN: usize = 300;

impl HostBase {
    /// Parses a base URL or `host[:port]`. A path is allowed (a Data Center context path) and
    /// ignored: the integration's REST API URL carries it.
    pub fn parse(input: &str, integrations: &[Integration]) -> Result<HostBase, UrlError> {
        let text = input.trim();
        if text.is_empty() {
            return Err(UrlError::Empty);
        }
        if text.chars().count() > MAX_LEN || text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(UrlError::Invalid { reason: "is not a host name or base URL".to_owned() });
        }
        let has_scheme = text.contains("://");
        let with_scheme = if has_scheme { text.to_owned() } else { format!("https://{text}") };
        let url = url::Url::parse(&with_scheme)
            .map_err(|_| UrlError::Invalid { reason: "is not a host name or base URL".to_owned() })?;
        if !url.password().unwrap_or_default().is_empty() {
            return Err(UrlError::SecretInUrl);
        }
        let scheme = match url.scheme() {
            "https" => Scheme::Https,
            "http" => Scheme::Http,
            other => return Err(UrlError::UnsupportedScheme { scheme: other.chars().take(20).collect() }),
        };
        if url.query().is_some() || url.fragment().is_some() {
            return Err(UrlError::Invalid { reason: "has a query or fragment".to_owned() });
        }
        let host = match url.host() {
            Some(url::Host::Domain(d)) => d.to_ascii_lowercase(),
            Some(url::Host::Ipv4(a)) => a.to_string(),
            Some(url::Host::Ipv6(a)) => a.to_string(),
            None => return Err(UrlError::Invalid { reason: "names no host".to_owned() }),
        };
        let port = url.port();
        let (provider, api_url) = provider::detect(&host, port, integrations);
        // `host:port` names no scheme; an integration's REST API URL says which one its host
        // speaks (plain HTTP on a lab server), else HTTPS.
        let scheme = match api_url.as_deref() {
            Some(api) if !has_scheme && api.starts_with("http://") => Scheme::Http,
            _ => scheme,
        };
        Ok(HostBase { scheme, host, port, provider, api_url })
    }

    /// The host of a clone URL, with the same provider and REST API.
    pub fn of(url: &CloneUrl) -> HostBase {
        HostBase {
            scheme: if url.scheme == Scheme::Http { Scheme::Http } else { Scheme::Https },
            host: url.host.clone(),
            port: url.port,
            provider: url.provider,
            api_url: url.api_url.clone(),
        }
    }

    /// `https://host[:port]`: stored with the credential and shown.
    pub fn canonical(&self) -> String {
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        match self.port {
            Some(p) => format!("{}://{host}:{p}", self.scheme.as_str()),
            None => format!("{}://{host}", self.scheme.as_str()),
        }
    }

    /// The port to connect to.
    pub fn port_or_default(&self) -> u16 {
        self.port.unwrap_or(if self.scheme == Scheme::Http { 80 } else { 443 })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn dc() -> Vec<Integration> {
        vec![Integration {
            host: "git.example.com:7990".into(),
            provider: Provider::BitbucketDatacenter,
            api_url: Some("https://git.example.com:7990/bitbucket/rest".into()),
        }]
    }

    #[test]
    fn base_urls_bare_names_and_integration_hosts() {
        let b = HostBase::parse("https://Bitbucket.org/", &[]).unwrap();
        assert_eq!((b.canonical(), b.provider), ("https://bitbucket.org".to_owned(), Provider::BitbucketCloud));
        assert_eq!(b.api_url.as_deref(), Some("https://api.bitbucket.org/2.0"));
        assert_eq!(HostBase::parse("github.com", &[]).unwrap().canonical(), "https://github.com");
        let d = HostBase::parse("git.example.com:7990", &dc()).unwrap();
        assert_eq!(
            (d.canonical(), d.provider),
            ("https://git.example.com:7990".to_owned(), Provider::BitbucketDatacenter)
        );
        let ctx = HostBase::parse("https://git.example.com:7990/bitbucket", &dc()).unwrap();
        assert_eq!(ctx, d);
        assert_eq!(HostBase::parse("git.internal", &[]).unwrap().provider, Provider::Generic);
        let lab = Integration {
            host: "lab:8080".into(),
            provider: Provider::BitbucketCloud,
            api_url: Some("http://lab:8080/2.0".into()),
        };
        assert_eq!(HostBase::parse("lab:8080", &[lab]).unwrap().canonical(), "http://lab:8080");
    }

    #[test]
    fn refusals() {
        assert_eq!(HostBase::parse(" ", &[]), Err(UrlError::Empty));
        assert_eq!(HostBase::parse("https://jo:pw@bitbucket.org", &[]), Err(UrlError::SecretInUrl));
        assert!(matches!(HostBase::parse("ftp://x.org", &[]), Err(UrlError::UnsupportedScheme { .. })));
        assert!(HostBase::parse("https://bitbucket.org/?a=b", &[]).is_err());
        assert!(HostBase::parse("bit bucket.org", &[]).is_err());
    }

    #[test]
    fn the_host_of_a_clone_url() {
        let u = CloneUrl::parse("https://git.example.com:7990/bitbucket/scm/p/r.git", &dc()).unwrap();
        assert_eq!(HostBase::of(&u), HostBase::parse("git.example.com:7990", &dc()).unwrap());
    }
}
