//! Which kind of Git host serves a repository, and where its REST API lives.
//!
//! Cloud hosts are known by name; self-hosted ones (Bitbucket Data Center, GitHub Enterprise,
//! GitLab self-managed) are declared as integrations in the config file. The provider decides
//! the Git username for token credentials and, later, which REST adapter checks the repository.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Provider {
    BitbucketCloud,
    BitbucketDatacenter,
    Github,
    Gitlab,
    AzureDevops,
    Generic,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::BitbucketCloud => "bitbucket-cloud",
            Provider::BitbucketDatacenter => "bitbucket-datacenter",
            Provider::Github => "github",
            Provider::Gitlab => "gitlab",
            Provider::AzureDevops => "azure-devops",
            Provider::Generic => "generic",
        }
    }

    pub fn parse(s: &str) -> Option<Provider> {
        Some(match s {
            "bitbucket-cloud" => Provider::BitbucketCloud,
            "bitbucket-datacenter" | "bitbucket-server" => Provider::BitbucketDatacenter,
            "github" => Provider::Github,
            "gitlab" => Provider::Gitlab,
            "azure-devops" => Provider::AzureDevops,
            "generic" => Provider::Generic,
            _ => return None,
        })
    }

    /// Provider of the well-known cloud hosts. `host` is lower-case, without port.
    pub fn from_cloud_host(host: &str) -> Option<Provider> {
        Some(match host {
            "bitbucket.org" | "www.bitbucket.org" => Provider::BitbucketCloud,
            "github.com" | "www.github.com" => Provider::Github,
            "gitlab.com" | "www.gitlab.com" => Provider::Gitlab,
            "dev.azure.com" => Provider::AzureDevops,
            h if h.ends_with(".visualstudio.com") => Provider::AzureDevops,
            _ => return None,
        })
    }

    /// The REST API base URL of a cloud host, used when no integration overrides it.
    pub fn default_api_url(self) -> Option<&'static str> {
        match self {
            Provider::BitbucketCloud => Some("https://api.bitbucket.org/2.0"),
            Provider::Github => Some("https://api.github.com"),
            Provider::Gitlab => Some("https://gitlab.com/api/v4"),
            _ => None,
        }
    }

    /// The Git-over-HTTPS username to pair with an access token on this host.
    ///
    /// Bitbucket Cloud documents `x-token-auth`; GitHub ignores the username for tokens and
    /// documents `x-access-token`; GitLab accepts any name and documents `oauth2`; Azure DevOps and
    /// Bitbucket Data Center accept any non-empty name with a token as password (Data Center
    /// project and repository tokens are Bearer-only; see `credential.rs`).
    pub fn access_token_git_username(self) -> &'static str {
        match self {
            Provider::BitbucketCloud => "x-token-auth",
            Provider::Github => "x-access-token",
            Provider::Gitlab => "oauth2",
            Provider::AzureDevops => "pat",
            Provider::BitbucketDatacenter | Provider::Generic => "x-token-auth",
        }
    }
}

impl std::fmt::Display for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A self-hosted host declared in the config file.
///
/// ```toml
/// [[integrations]]
/// host = "git.example.com:7990"
/// provider = "bitbucket-datacenter"
/// api_url = "https://git.example.com:7990/bitbucket/rest"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Integration {
    /// `host[:port]` as it appears in clone URLs, compared case-insensitively.
    pub host: String,
    pub provider: Provider,
    #[serde(default)]
    pub api_url: Option<String>,
}

impl Integration {
    /// Whether this integration covers `host` (lower-case) with `port` (None for the default).
    pub fn matches(&self, host: &str, port: Option<u16>) -> bool {
        let (want_host, want_port) = split_host_port(&self.host.trim().to_ascii_lowercase());
        want_host == host && want_port == port
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

/// Decides the provider of a host: configured integrations first, then the cloud hosts.
pub fn detect(host: &str, port: Option<u16>, integrations: &[Integration]) -> (Provider, Option<String>) {
    if let Some(i) = integrations.iter().find(|i| i.matches(host, port)) {
        let api = i.api_url.clone().or_else(|| i.provider.default_api_url().map(str::to_owned));
        return (i.provider, api);
    }
    match Provider::from_cloud_host(host) {
        Some(p) => (p, p.default_api_url().map(str::to_owned)),
        None => (Provider::Generic, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloud_hosts_and_integrations() {
        let ints = vec![Integration {
            host: "Git.Example.com:7990".into(),
            provider: Provider::BitbucketDatacenter,
            api_url: Some("https://git.example.com:7990/bitbucket/rest".into()),
        }];
        assert_eq!(detect("bitbucket.org", None, &ints).0, Provider::BitbucketCloud);
        assert_eq!(detect("bitbucket.org", None, &ints).1.as_deref(), Some("https://api.bitbucket.org/2.0"));
        assert_eq!(detect("git.example.com", Some(7990), &ints).0, Provider::BitbucketDatacenter);
        assert_eq!(detect("git.example.com", None, &ints).0, Provider::Generic);
        assert_eq!(detect("dev.azure.com", None, &[]).0, Provider::AzureDevops);
    }

    #[test]
    fn integration_without_port_matches_default_port_only() {
        let i = Integration { host: "scm.corp".into(), provider: Provider::Gitlab, api_url: None };
        assert!(i.matches("scm.corp", None));
        assert!(!i.matches("scm.corp", Some(8443)));
    }
}
