//! Where a bulk import lists repositories: a Bitbucket Cloud workspace, a Bitbucket Data Center
//! project, or a GitHub organisation or user, named by the URL a person copies from the host's
//! web pages.
//!
//! * Cloud: `https://bitbucket.org/acme` (a trailing slash, `/workspace/overview` or
//!   `/workspace/repositories` after it are the workspace's own pages and accepted).
//! * Data Center: `https://host[:port][/context]/projects/KEY` or `…/projects/KEY/repos`; the
//!   context path is whatever comes before `/projects/`.
//! * GitHub: `https://github.com/name`, an organisation or a user (the API tells them apart,
//!   so the listing tries the organisation first).
//!
//! The host decides the provider as it does for clone URLs (cloud hosts by name, self-hosted
//! ones by `[[integrations]]`), so an import lists where registration will later check.

use crate::finding::Code;
use crate::host::HostBase;
use crate::provider::{Integration, Provider};
use crate::UrlError;

/// What is listed on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportScope {
    /// A Bitbucket Cloud workspace slug.
    Workspace(String),
    /// A Bitbucket Data Center project key (upper case, as Data Center keys are).
    Project(String),
    /// A GitHub organisation or user login.
    Owner(String),
}

/// A parsed import source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportSource {
    pub host: HostBase,
    /// Data Center: the context path before `/projects/` (`/bitbucket`), else empty.
    pub context: String,
    pub scope: ImportScope,
}

/// Why an import source was refused; the message never repeats more than 100 characters of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceError {
    pub code: Code,
    pub message: String,
    pub remedy: String,
}

const REMEDY: &str = "Paste the URL of a Bitbucket Cloud workspace (https://bitbucket.org/acme), a Bitbucket Data \
                      Center project (https://git.example.com/projects/KEY) or a GitHub organisation or user \
                      (https://github.com/acme).";

fn refuse(input: &str, why: &str) -> SourceError {
    let shown: String = input.trim().chars().take(100).collect();
    SourceError {
        code: Code::InvalidImportSource,
        message: format!("{shown:?} is not an import source: {why}"),
        remedy: REMEDY.to_owned(),
    }
}

/// Names a workspace, key or login may have: letters, digits, `-`, `_`, `.` (no path tricks).
fn plain_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 100
        && s != "."
        && s != ".."
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~'))
}

impl ImportSource {
    pub fn parse(input: &str, integrations: &[Integration]) -> Result<ImportSource, SourceError> {
        let text = input.trim();
        let host = HostBase::parse(text, integrations).map_err(|e| match e {
            UrlError::SecretInUrl => SourceError {
                code: Code::SecretInUrl,
                message: "the import source contains a password or token".to_owned(),
                remedy: e.remedy().to_owned(),
            },
            UrlError::Empty => refuse(text, "it is empty"),
            _ => refuse(text, "it is not a URL"),
        })?;
        let with_scheme = if text.contains("://") { text.to_owned() } else { format!("https://{text}") };
        let url = url::Url::parse(&with_scheme).map_err(|_| refuse(text, "it is not a URL"))?;
        if !url.username().is_empty() {
            return Err(refuse(text, "it has a user name before the host; leave it out"));
        }
        let segs: Vec<String> =
            url.path_segments().map(|s| s.filter(|p| !p.is_empty()).map(percent_decode).collect()).unwrap_or_default();
        let scope = match host.provider {
            Provider::BitbucketCloud => match segs.as_slice() {
                [ws] => ImportScope::Workspace(ws.clone()),
                [ws, w, page] if w == "workspace" && matches!(page.as_str(), "overview" | "repositories") => {
                    ImportScope::Workspace(ws.clone())
                }
                [] => return Err(refuse(text, "it names no workspace (https://bitbucket.org/WORKSPACE)")),
                _ => {
                    return Err(refuse(
                        text,
                        "Bitbucket Cloud imports list a whole workspace; give its URL without a repository or \
                         project (https://bitbucket.org/WORKSPACE)",
                    ))
                }
            },
            Provider::BitbucketDatacenter => {
                let at = segs.iter().rposition(|s| s.eq_ignore_ascii_case("projects"));
                let (ctx, rest) = match at {
                    Some(i) => (&segs[..i], &segs[i + 1..]),
                    None => return Err(refuse(text, "it names no project (…/projects/KEY)")),
                };
                let key = match rest {
                    [key] => key,
                    [key, repos] if repos.eq_ignore_ascii_case("repos") => key,
                    _ => return Err(refuse(text, "a Data Center import lists one project (…/projects/KEY)")),
                };
                if !plain_name(key) || ctx.iter().any(|c| !plain_name(c)) {
                    return Err(refuse(text, "the project key or context path has characters keys cannot have"));
                }
                let context = ctx.iter().map(|c| format!("/{c}")).collect::<String>();
                return Ok(ImportSource { host, context, scope: ImportScope::Project(key.to_ascii_uppercase()) });
            }
            Provider::Github => match segs.as_slice() {
                [owner] => ImportScope::Owner(owner.clone()),
                [orgs, owner] if orgs == "orgs" => ImportScope::Owner(owner.clone()),
                [] => return Err(refuse(text, "it names no organisation or user (https://github.com/NAME)")),
                _ => {
                    return Err(refuse(
                        text,
                        "GitHub imports list an organisation or a user; give its URL without a repository \
                         (https://github.com/NAME)",
                    ))
                }
            },
            other => {
                return Err(SourceError {
                    code: Code::InvalidImportSource,
                    message: format!(
                        "Berth cannot list repositories on {} ({other}): imports read Bitbucket Cloud, Bitbucket \
                         Data Center and GitHub",
                        host.canonical()
                    ),
                    remedy: "Register the repositories one by one, or declare the host as an integration \
                             ([[integrations]] with its provider) if it is a Bitbucket Data Center or GitHub \
                             Enterprise server."
                        .to_owned(),
                })
            }
        };
        let name = match &scope {
            ImportScope::Workspace(n) | ImportScope::Owner(n) | ImportScope::Project(n) => n,
        };
        if !plain_name(name) {
            return Err(refuse(text, "the name has characters workspace and account names cannot have"));
        }
        Ok(ImportSource { host, context: String::new(), scope })
    }

    /// The workspace slug, project key or login.
    pub fn owner(&self) -> &str {
        match &self.scope {
            ImportScope::Workspace(n) | ImportScope::Project(n) | ImportScope::Owner(n) => n,
        }
    }

    /// One spelling per source: `https://bitbucket.org/acme`, `https://host/ctx/projects/KEY`,
    /// `https://github.com/acme`.
    pub fn canonical(&self) -> String {
        match &self.scope {
            ImportScope::Project(key) => format!("{}{}/projects/{key}", self.host.canonical(), self.context),
            ImportScope::Workspace(n) | ImportScope::Owner(n) => format!("{}/{n}", self.host.canonical()),
        }
    }

    /// Where the clone URLs of the source's repositories start, as a credential template's prefix
    /// would name it: `https://bitbucket.org/acme/`, `https://host/ctx/scm/KEY/` (Data Center's
    /// HTTP clone URLs), `https://github.com/acme/`. Templates choose an import's credential with it.
    pub fn clone_url_prefix(&self) -> String {
        match &self.scope {
            ImportScope::Project(key) => format!("{}{}/scm/{key}/", self.host.canonical(), self.context),
            ImportScope::Workspace(n) | ImportScope::Owner(n) => format!("{}/{n}/", self.host.canonical()),
        }
    }

    /// "workspace acme", "project KEY", "organisation or user acme".
    pub fn describe(&self) -> String {
        match &self.scope {
            ImportScope::Workspace(n) => format!("workspace {n}"),
            ImportScope::Project(k) => format!("project {k}"),
            ImportScope::Owner(n) => format!("organisation or user {n}"),
        }
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 3 <= bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ints() -> Vec<Integration> {
        vec![
            Integration {
                host: "git.example.com:7990".into(),
                provider: Provider::BitbucketDatacenter,
                api_url: Some("https://git.example.com:7990/bitbucket/rest".into()),
            },
            Integration {
                host: "ghe.example".into(),
                provider: Provider::Github,
                api_url: Some("https://ghe.example/api/v3".into()),
            },
        ]
    }

    fn parse(s: &str) -> Result<ImportSource, SourceError> {
        ImportSource::parse(s, &ints())
    }

    #[test]
    fn cloud_workspaces() {
        for s in [
            "https://bitbucket.org/acme",
            "https://bitbucket.org/acme/",
            " bitbucket.org/acme ",
            "https://bitbucket.org/acme/workspace/overview",
        ] {
            let src = parse(s).unwrap();
            assert_eq!(src.scope, ImportScope::Workspace("acme".into()), "{s}");
            assert_eq!(src.canonical(), "https://bitbucket.org/acme");
        }
        for s in [
            "https://bitbucket.org/",
            "https://bitbucket.org/acme/app",
            "https://bitbucket.org/acme/workspace/projects/X",
        ] {
            assert_eq!(parse(s).unwrap_err().code, Code::InvalidImportSource, "{s}");
        }
    }

    #[test]
    fn datacenter_projects_with_context_paths() {
        let src = parse("https://git.example.com:7990/bitbucket/projects/proj/repos").unwrap();
        assert_eq!(src.scope, ImportScope::Project("PROJ".into()));
        assert_eq!(src.context, "/bitbucket");
        assert_eq!(src.canonical(), "https://git.example.com:7990/bitbucket/projects/PROJ");
        assert_eq!(parse("https://git.example.com:7990/projects/KEY/").unwrap().context, "");
        for s in [
            "https://git.example.com:7990/bitbucket",
            "https://git.example.com:7990/projects/KEY/repos/app",
            "https://git.example.com:7990/projects/K%2FEY",
        ] {
            assert_eq!(parse(s).unwrap_err().code, Code::InvalidImportSource, "{s}");
        }
    }

    #[test]
    fn github_owners() {
        assert_eq!(parse("https://github.com/octo").unwrap().scope, ImportScope::Owner("octo".into()));
        assert_eq!(parse("https://github.com/orgs/octo").unwrap().canonical(), "https://github.com/octo");
        assert_eq!(parse("https://ghe.example/team").unwrap().host.provider, Provider::Github);
        assert!(parse("https://github.com/octo/app").is_err());
    }

    #[test]
    fn refusals_say_why_and_keep_secrets_out() {
        let e = parse("https://jo:hunter2@bitbucket.org/acme").unwrap_err();
        assert_eq!(e.code, Code::SecretInUrl);
        assert!(!e.message.contains("hunter2"));
        assert_eq!(parse("").unwrap_err().code, Code::InvalidImportSource);
        let gl = parse("https://gitlab.com/group").unwrap_err();
        assert!(gl.message.contains("gitlab"), "{}", gl.message);
        assert!(parse(&format!("https://github.com/{}", "a".repeat(500))).is_err());
    }
}
