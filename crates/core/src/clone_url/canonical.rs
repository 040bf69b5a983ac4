//! From parts to the canonical repository: which provider, the normalised path and its
//! shape, and the HTTPS equivalent of an SSH URL.

use super::*;

// ---------------------------------------------------------------------------------------------
// Provider

pub(super) fn detect_provider(
    scheme: Scheme,
    host: &str,
    port: Option<u16>,
    integrations: &[Integration],
) -> (Provider, Option<String>) {
    let found = provider::detect(host, port, integrations);
    if found.0 != Provider::Generic || scheme != Scheme::Ssh {
        return found;
    }
    // Azure DevOps serves SSH from a host name of its own.
    if host == "ssh.dev.azure.com" {
        return (Provider::AzureDevops, None);
    }
    // Self-hosted servers serve SSH on another port than HTTPS (Bitbucket Data Center: 7999 and
    // 7990) and integrations are declared with the HTTPS `host[:port]`, so an SSH URL belongs to
    // an integration on the same host whatever its port.
    integrations
        .iter()
        .find(|i| parse_host_port(i.host.trim()).is_ok_and(|(h, _)| h == host))
        .map(|i| (i.provider, i.api_url.clone().or_else(|| i.provider.default_api_url().map(str::to_owned))))
        .unwrap_or(found)
}

/// Hosts that treat repository paths case-insensitively, so `Ws/Repo` and `ws/repo` are one.
pub(super) fn has_case_insensitive_paths(provider: Provider) -> bool {
    matches!(provider, Provider::BitbucketCloud | Provider::Github | Provider::Gitlab | Provider::BitbucketDatacenter)
}

// ---------------------------------------------------------------------------------------------
// Path

/// Splits the path into segments: empty ones (a trailing or doubled '/') dropped, percent
/// escapes upper-cased, non-ASCII escaped, the `.git` suffix removed.
pub(super) fn normalize_path(raw: &str, lower_case: bool) -> Result<Vec<String>, UrlError> {
    if raw.contains('@') {
        return Err(invalid(
            "has an '@' in the repository path; a user name goes before the host, and a password does not belong in the URL",
        ));
    }
    if raw.contains('\\') {
        return Err(invalid("contains a backslash; path segments are separated by '/'"));
    }
    let mut segments = Vec::new();
    for raw_segment in raw.split('/').filter(|s| !s.is_empty()) {
        let segment = if lower_case { raw_segment.to_ascii_lowercase() } else { raw_segment.to_owned() };
        let segment = normalize_segment(&segment)?;
        if matches!(segment.as_str(), "." | ".." | "%2E" | "%2E%2E" | ".%2E" | "%2E.") {
            return Err(invalid("contains a '.' or '..' path segment"));
        }
        segments.push(segment);
    }
    let Some(last) = segments.last_mut() else { return Err(UrlError::MissingRepositoryPath) };
    if let Some(stem) = last.strip_suffix(".git") {
        if stem.is_empty() {
            return Err(invalid("ends in '.git' without a repository name"));
        }
        *last = stem.to_owned();
    }
    Ok(segments)
}

pub(super) fn normalize_segment(segment: &str) -> Result<String, UrlError> {
    let bytes = segment.as_bytes();
    let mut out = String::with_capacity(segment.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                .ok_or_else(|| invalid("has a '%' that is not followed by two hexadecimal digits"))?;
            out.push('%');
            out.extend(hex.iter().map(|h| char::from(h.to_ascii_uppercase())));
            i += 3;
            continue;
        }
        if is_path_char(b) {
            out.push(char::from(b));
        } else if !b.is_ascii() {
            // Escaping makes `café` and `caf%C3%A9` one path.
            let _ = write!(out, "%{b:02X}");
        } else {
            return Err(invalid(&format!("contains '{}', which is not allowed in a repository path", char::from(b))));
        }
        i += 1;
    }
    Ok(out)
}

/// RFC 3986 path characters besides '%' and '@' (handled separately).
pub(super) fn is_path_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:".contains(&b)
}

/// The cloud hosts have fixed path shapes. Checking them catches the most common paste mistake:
/// the address of a web page (`…/src/main/`, `…/tree/main`) instead of the clone URL.
pub(super) fn check_shape(scheme: Scheme, host: &str, segments: &[String]) -> Result<(), UrlError> {
    let web_page = || invalid("looks like the address of a web page, not a clone URL");
    match Provider::from_cloud_host(host) {
        Some(Provider::BitbucketCloud | Provider::Github) => match segments.len() {
            0 | 1 => Err(UrlError::MissingRepositoryPath),
            2 => Ok(()),
            _ => Err(web_page()),
        },
        // GitLab allows nested groups; its web pages put a `-` segment before the page name.
        Some(Provider::Gitlab) if segments.len() < 2 => Err(UrlError::MissingRepositoryPath),
        Some(Provider::Gitlab) if segments.iter().any(|s| s == "-") => Err(web_page()),
        Some(Provider::AzureDevops) if scheme != Scheme::Ssh => {
            if segments.iter().rev().nth(1).is_some_and(|s| s.eq_ignore_ascii_case("_git")) {
                Ok(())
            } else if segments.iter().any(|s| s.eq_ignore_ascii_case("_git")) {
                Err(web_page())
            } else {
                Err(invalid(
                    "is not an Azure DevOps clone URL, which looks like https://dev.azure.com/org/project/_git/repo",
                ))
            }
        }
        _ => Ok(()),
    }
}

// ---------------------------------------------------------------------------------------------
// HTTPS equivalents of SSH URLs

/// `v3/org/project/repo` (Azure DevOps SSH) to `https://dev.azure.com/org/project/_git/repo`.
pub(super) fn azure_https_from_ssh_path(path: &str) -> Option<String> {
    match path.split('/').collect::<Vec<_>>().as_slice() {
        [v3, org, project, repo] if v3.eq_ignore_ascii_case("v3") => {
            Some(format!("https://dev.azure.com/{org}/{project}/_git/{repo}"))
        }
        _ => None,
    }
}

/// Bitbucket Data Center: the REST API URL is `origin[/context]/rest…` and HTTPS clone URLs are
/// `origin[/context]/scm/proj/repo.git`.
pub(super) fn datacenter_https_url(api_url: &str, path: &str) -> Option<String> {
    let api = url::Url::parse(api_url).ok()?;
    if !matches!(api.scheme(), "https" | "http") {
        return None;
    }
    let mut out = api.origin().ascii_serialization();
    for segment in api.path_segments()?.take_while(|s| *s != "rest").filter(|s| !s.is_empty()) {
        out.push('/');
        out.push_str(segment);
    }
    let _ = write!(out, "/scm/{path}.git");
    Some(out)
}
