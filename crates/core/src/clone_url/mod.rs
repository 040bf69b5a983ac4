//! Clone URLs as people paste them, reduced to one canonical form per repository.
//!
//! People paste whatever their Git host or a colleague showed them: a whole
//! `git clone --depth 1 <url> dir` command, quotes, their user name in the URL, a trailing
//! slash, no `.git`, an upper-case host, the default port. [`CloneUrl::parse`] strips those
//! decorations so the same repository is registered once, refuses anything that would put a
//! secret into the database (a password or token inside the URL), and says in plain words what
//! is wrong with everything else.

use std::fmt::Write as _;

use crate::finding::Code;
use crate::provider::{self, Integration, Provider};

mod canonical;
mod parts;
mod pasted;
mod prefix;

use canonical::*;
use parts::*;
use pasted::*;
pub use prefix::{PrefixRelation, UrlPrefix};

/// Longest input accepted. Real clone URLs are far shorter; the limit bounds the work done on
/// whatever is pasted and the size of what is stored.
pub(super) const MAX_LEN: usize = 2048;

/// How Git reaches the repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    Https,
    Http,
    Ssh,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Https => "https",
            Scheme::Http => "http",
            Scheme::Ssh => "ssh",
        }
    }

    fn default_port(self) -> u16 {
        match self {
            Scheme::Https => 443,
            Scheme::Http => 80,
            Scheme::Ssh => 22,
        }
    }

    /// The scheme named before `://`. `git+ssh` and `ssh+git` are old spellings of `ssh`.
    fn from_name(name: &str) -> Result<Scheme, UrlError> {
        match name.to_ascii_lowercase().as_str() {
            "https" => Ok(Scheme::Https),
            "http" => Ok(Scheme::Http),
            "ssh" | "git+ssh" | "ssh+git" => Ok(Scheme::Ssh),
            other => Err(UrlError::UnsupportedScheme { scheme: other.to_owned() }),
        }
    }
}

/// A repository address in canonical parts. Build it with [`CloneUrl::parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloneUrl {
    pub scheme: Scheme,
    /// Lower-case; an IPv6 address without brackets.
    pub host: String,
    /// `None` when it is the scheme's default port.
    pub port: Option<u16>,
    /// Repository path without leading or trailing '/' and without the `.git` suffix.
    pub path: String,
    /// User name found in the URL, for information only: it is never part of an HTTPS
    /// canonical form, because the credential decides who connects.
    pub user: Option<String>,
    pub provider: Provider,
    pub api_url: Option<String>,
}

/// Why a pasted clone URL was refused. Variants hold no part of the input beyond a scheme name
/// or one offending punctuation character, and the secret check runs before any other, so
/// neither `Display` nor `Debug` can repeat a password that was pasted with the URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("the clone URL is empty")]
    Empty,
    #[error("the clone URL is not valid: it {reason}")]
    Invalid { reason: String },
    #[error("the clone URL contains a password or access token")]
    SecretInUrl,
    #[error("the clone URL uses the scheme `{scheme}://`, which Berth does not support; use the https:// clone URL")]
    UnsupportedScheme { scheme: String },
    #[error("the clone URL does not name a repository: the path after the host is missing or incomplete")]
    MissingRepositoryPath,
}

impl UrlError {
    pub fn code(&self) -> Code {
        match self {
            UrlError::SecretInUrl => Code::SecretInUrl,
            UrlError::Empty
            | UrlError::Invalid { .. }
            | UrlError::UnsupportedScheme { .. }
            | UrlError::MissingRepositoryPath => Code::InvalidUrl,
        }
    }

    /// What the person should do about it.
    pub fn remedy(&self) -> &'static str {
        match self {
            UrlError::Empty => "Paste the repository's clone URL, for example https://bitbucket.org/workspace/repo.git.",
            UrlError::Invalid { .. } => {
                "Copy the HTTPS clone URL from the repository's page on the Git host (its \"Clone\" button) and paste it unchanged."
            }
            UrlError::SecretInUrl => {
                "Remove the password or token from the URL and store it as a credential instead. \
                 Treat it as exposed: if the URL was shared or saved anywhere, revoke it and create a new one."
            }
            UrlError::UnsupportedScheme { .. } => "Use the repository's HTTPS clone URL (https://...).",
            UrlError::MissingRepositoryPath => {
                "Add the repository's path after the host, for example https://bitbucket.org/workspace/repo.git."
            }
        }
    }
}

pub(super) fn invalid(reason: &str) -> UrlError {
    UrlError::Invalid { reason: reason.to_owned() }
}

impl CloneUrl {
    /// Parses what a person pasted as a clone URL. `integrations` declare self-hosted hosts.
    pub fn parse(input: &str, integrations: &[Integration]) -> Result<CloneUrl, UrlError> {
        let text = trim_padding(input);
        if text.is_empty() {
            return Err(UrlError::Empty);
        }
        if text.chars().count() > MAX_LEN {
            return Err(invalid(&format!("is longer than {MAX_LEN} characters")));
        }
        let candidate = extract_candidate(text)?;
        if candidate.is_empty() {
            return Err(UrlError::Empty);
        }
        // A bare `?` is harmless (some tools append one); any real query is refused later.
        let candidate = candidate.strip_suffix('?').unwrap_or(candidate);
        let parts = split_parts(candidate)?;
        // The secret check comes first: whatever else is wrong, a pasted password must be
        // reported as such, so the person knows to revoke it.
        let user = parse_userinfo(parts.userinfo)?;
        check_characters(candidate)?;
        from_parts(parts, user, integrations)
    }

    /// Canonical string stored and shown: `https://host[:port]/path.git`, or
    /// `ssh://user@host[:port]/path.git` (user `git` when none was given). Azure DevOps paths
    /// get no `.git`: its clone URLs do not have one.
    pub fn canonical(&self) -> String {
        let authority = self.authority();
        let (path, suffix) = (&self.path, self.git_suffix());
        match self.scheme {
            Scheme::Ssh => {
                let user = encode_user(self.user.as_deref().unwrap_or("git"));
                format!("ssh://{user}@{authority}/{path}{suffix}")
            }
            Scheme::Https | Scheme::Http => format!("{}://{authority}/{path}{suffix}", self.scheme.as_str()),
        }
    }

    /// A key equal for every spelling of the same repository over the same transport, for
    /// uniqueness: the same repository over HTTPS and over SSH is two registrations (each is
    /// checked with its own credential: a token, a deploy key), and
    /// [`CloneUrl::other_transport_key`] finds the other one to show.
    ///
    /// On bitbucket.org, github.com and gitlab.com the key is `provider:path` over HTTPS and
    /// `provider:ssh:path` over SSH. Azure DevOps SSH URLs are `ssh:` and their HTTPS form.
    /// Elsewhere HTTP and HTTPS are unified, and SSH is its canonical URL. Migration 0020 moved
    /// the SSH keys stored before to these forms.
    pub fn repository_key(&self) -> String {
        if let Some(p) = self.path_shared_cloud_provider() {
            let transport = if self.scheme == Scheme::Ssh { "ssh:" } else { "" };
            return format!("{}:{transport}{}", p.as_str(), self.path.to_lowercase());
        }
        match self.scheme {
            Scheme::Ssh if self.provider == Provider::AzureDevops => match self.https_alternative() {
                Some(https) => format!("ssh:{https}"),
                None => self.canonical(),
            },
            Scheme::Ssh => self.canonical(),
            Scheme::Https | Scheme::Http => {
                let https = CloneUrl {
                    scheme: Scheme::Https,
                    port: self.port.filter(|p| *p != Scheme::Https.default_port()),
                    user: None,
                    ..self.clone()
                };
                https.canonical()
            }
        }
    }

    /// The key the same repository has over the other transport (SSH for an HTTPS URL and back),
    /// where the URL alone says it: on the cloud hosts, and from an Azure DevOps SSH URL to its
    /// HTTPS form. `None` elsewhere (a self-hosted server may serve SSH from anywhere).
    pub fn other_transport_key(&self) -> Option<String> {
        if let Some(p) = self.path_shared_cloud_provider() {
            let transport = if self.scheme == Scheme::Ssh { "" } else { "ssh:" };
            return Some(format!("{}:{transport}{}", p.as_str(), self.path.to_lowercase()));
        }
        match self.scheme {
            Scheme::Ssh if self.provider == Provider::AzureDevops => self.https_alternative(),
            _ => None,
        }
    }

    /// The URL for Git smart HTTP: the canonical form without user info. `None` for SSH.
    pub fn http_url(&self) -> Option<url::Url> {
        match self.scheme {
            Scheme::Ssh => None,
            Scheme::Https | Scheme::Http => url::Url::parse(&self.canonical()).ok(),
        }
    }

    /// The repository path as `git-upload-pack` is asked for it over SSH: `/path.git`, percent
    /// escapes decoded, as git does for `ssh://` URLs. An scp-like `host:ws/repo.git` names the
    /// same path relative to the account's home, which the clouds treat alike; Berth keeps one
    /// canonical form and sends the absolute one.
    pub fn ssh_path(&self) -> String {
        let raw = format!("/{}{}", self.path, self.git_suffix());
        let bytes = raw.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
            match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
                (b'%', Some(b)) => {
                    out.push(b);
                    i += 3;
                }
                (b, _) => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// For an SSH URL, the HTTPS clone URL of the same repository where it can be derived.
    pub fn https_alternative(&self) -> Option<String> {
        if self.scheme != Scheme::Ssh {
            return None;
        }
        if self.path_shared_cloud_provider().is_some() {
            return Some(format!("https://{}/{}.git", self.host, self.path));
        }
        match self.provider {
            Provider::AzureDevops => azure_https_from_ssh_path(&self.path),
            // Data Center serves HTTPS under a context path and `/scm/` that the SSH URL does
            // not show; the configured REST API URL reveals the context path.
            Provider::BitbucketDatacenter => {
                self.api_url.as_deref().and_then(|api| datacenter_https_url(api, &self.path))
            }
            _ => None,
        }
    }

    /// Last path segment, a good default display name.
    pub fn repo_name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }

    /// `host[:port]`, with IPv6 addresses in brackets.
    fn authority(&self) -> String {
        let mut s = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        if let Some(port) = self.port {
            let _ = write!(s, ":{port}");
        }
        s
    }

    fn git_suffix(&self) -> &'static str {
        if self.provider == Provider::AzureDevops {
            ""
        } else {
            ".git"
        }
    }

    /// The provider of bitbucket.org, github.com or gitlab.com, whose HTTPS and SSH URLs use
    /// the same path. Keyed on the host, so an integration naming another host after one of
    /// these providers does not share their keys.
    fn path_shared_cloud_provider(&self) -> Option<Provider> {
        Provider::from_cloud_host(&self.host).filter(|p| {
            *p == self.provider && matches!(p, Provider::BitbucketCloud | Provider::Github | Provider::Gitlab)
        })
    }
}

/// Parses `input` and checks what every accepted URL must satisfy: its canonical form parses
/// again to the same canonical form and repository key, an HTTP(S) URL has a Git smart-HTTP URL,
/// and an HTTPS alternative, when one is derived, is itself accepted as HTTPS. `Ok(None)` when
/// the input is refused (which is fine); `Err` names a broken rule. Used by the fuzz target
/// `fuzz/fuzz_targets/clone_url.rs` and by the replay of its corpus in the tests.
pub fn check_canonical_roundtrip(input: &str, integrations: &[Integration]) -> Result<Option<CloneUrl>, String> {
    let Ok(u) = CloneUrl::parse(input, integrations) else { return Ok(None) };
    let canonical = u.canonical();
    let again = CloneUrl::parse(&canonical, integrations)
        .map_err(|e| format!("{input:?} was accepted, but its canonical form {canonical:?} is refused: {e}"))?;
    if again.canonical() != canonical {
        return Err(format!("{input:?}: canonical {canonical:?} parses to another canonical {:?}", again.canonical()));
    }
    if again.repository_key() != u.repository_key() {
        return Err(format!(
            "{input:?}: key {:?} differs from the canonical form's key {:?}",
            u.repository_key(),
            again.repository_key()
        ));
    }
    if u.http_url().is_some() == (u.scheme == Scheme::Ssh) {
        return Err(format!("{input:?}: http_url is {:?} for scheme {:?}", u.http_url(), u.scheme));
    }
    if let Some(alt) = u.https_alternative() {
        match CloneUrl::parse(&alt, integrations) {
            Ok(a) if a.scheme == Scheme::Https => {}
            other => return Err(format!("{input:?}: HTTPS alternative {alt:?} parses as {other:?}")),
        }
    }
    Ok(Some(u))
}

/// The integrations the fuzz target and the corpus replay parse with: a Bitbucket Data Center
/// under a context path and a GitHub Enterprise host.
pub fn fuzz_integrations() -> Vec<Integration> {
    vec![
        Integration {
            host: "git.example.com:7990".to_owned(),
            provider: Provider::BitbucketDatacenter,
            api_url: Some("https://git.example.com:7990/bitbucket/rest".to_owned()),
        },
        Integration { host: "ghe.example.com".to_owned(), provider: Provider::Github, api_url: None },
    ]
}

#[cfg(test)]
mod tests;
