//! URL prefixes of credential templates, and how a clone URL is compared with them.
//!
//! A prefix is read with the same rules as a clone URL (a `git clone` in front, a user name,
//! quotes, the default port, an upper-case host, a trailing slash or `.git` make no difference;
//! a password in it is refused), but it may stop anywhere after the host. Prefixes compare
//! **by whole path segments**: `https://bitbucket.org/acme` covers `https://bitbucket.org/acme/app`
//! but not `https://bitbucket.org/acmecorp/app`, because a person writing the prefix of a
//! workspace means that workspace, not every name that starts with the same letters. Segments
//! compare without regard to case (the cloud hosts treat paths so; a self-hosted server that
//! does not would have two repositories differing only in case, which nobody does on purpose).
//!
//! SSH-style URLs are compared through their HTTPS equivalent where the host serves both under
//! the same path (bitbucket.org, github.com, gitlab.com, Azure DevOps, a Data Center with a
//! known REST URL), so `git@bitbucket.org:acme/app.git` uses the template of
//! `https://bitbucket.org/acme/`. Elsewhere SSH is compared as SSH.

use super::*;

/// A normalised URL prefix: scheme, host, port and the leading path segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlPrefix {
    scheme: Scheme,
    host: String,
    port: Option<u16>,
    /// Lower-case, percent escapes normalised, no `.git` on the last one.
    segments: Vec<String>,
}

/// How a prefix relates to a URL, for the explanation of a choice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrefixRelation {
    /// Every segment of the prefix starts the URL's path.
    Matches,
    /// Another scheme, host or port.
    OtherHost,
    /// Same host; only the first `shared` segments agree (the path differs after them, or the
    /// prefix is longer than the URL's path).
    Diverges { shared: usize },
}

impl UrlPrefix {
    /// Reads a prefix as a person writes it.
    pub fn parse(input: &str) -> Result<UrlPrefix, UrlError> {
        let text = trim_padding(input);
        if text.is_empty() {
            return Err(UrlError::Empty);
        }
        if text.chars().count() > MAX_LEN {
            return Err(invalid(&format!("is longer than {MAX_LEN} characters")));
        }
        let candidate = extract_candidate(text)?;
        let candidate = candidate.trim_end_matches('/');
        if candidate.is_empty() {
            return Err(UrlError::Empty);
        }
        let parts = split_parts(candidate)?;
        parse_userinfo(parts.userinfo)?;
        check_characters(candidate)?;
        let scheme = Scheme::from_name(parts.scheme)?;
        if [parts.userinfo.unwrap_or_default(), parts.host_port, parts.path].iter().any(|s| s.contains(['?', '#'])) {
            return Err(invalid("has a query string (?...) or a fragment (#...); a URL prefix has neither"));
        }
        let (host, port) = parse_host_port(parts.host_port)?;
        let port = port.filter(|p| *p != scheme.default_port());
        let segments = prefix_segments(parts.path)?;
        let prefix = UrlPrefix { scheme, host, port, segments };
        Ok(prefix.https_equivalent().unwrap_or(prefix))
    }

    /// The form a clone URL is compared in: its HTTPS equivalent for an SSH URL that has one.
    pub fn of_url(url: &CloneUrl) -> UrlPrefix {
        if let Some(alt) = url.https_alternative() {
            if let Ok(p) = UrlPrefix::parse(&alt) {
                return p;
            }
        }
        UrlPrefix {
            scheme: url.scheme,
            host: url.host.clone(),
            port: url.port,
            segments: url.path.split('/').filter(|s| !s.is_empty()).map(str::to_ascii_lowercase).collect(),
        }
    }

    /// An SSH prefix on a cloud host whose SSH and HTTPS paths are the same, as HTTPS.
    fn https_equivalent(&self) -> Option<UrlPrefix> {
        let shared = matches!(
            Provider::from_cloud_host(&self.host),
            Some(Provider::BitbucketCloud | Provider::Github | Provider::Gitlab)
        );
        (self.scheme == Scheme::Ssh && shared).then(|| UrlPrefix {
            scheme: Scheme::Https,
            host: self.host.clone(),
            port: None,
            segments: self.segments.clone(),
        })
    }

    /// The leading path segments, normalised.
    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    /// `host[:port]` as shown.
    pub fn authority(&self) -> String {
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        match self.port {
            Some(p) => format!("{host}:{p}"),
            None => host,
        }
    }

    /// How many path segments it names: the longer of two matching prefixes wins.
    pub fn depth(&self) -> usize {
        self.segments.len()
    }

    pub fn relation(&self, url: &UrlPrefix) -> PrefixRelation {
        if self.scheme != url.scheme || self.host != url.host || self.port != url.port {
            return PrefixRelation::OtherHost;
        }
        let shared = self.segments.iter().zip(&url.segments).take_while(|(a, b)| a == b).count();
        if shared == self.segments.len() {
            PrefixRelation::Matches
        } else {
            PrefixRelation::Diverges { shared }
        }
    }

    pub fn matches(&self, url: &UrlPrefix) -> bool {
        self.relation(url) == PrefixRelation::Matches
    }
}

/// Shown and stored with a trailing `/`, so it reads as "everything under".
impl std::fmt::Display for UrlPrefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}/", self.scheme.as_str(), self.authority())?;
        for s in &self.segments {
            write!(f, "{s}/")?;
        }
        Ok(())
    }
}

fn prefix_segments(raw: &str) -> Result<Vec<String>, UrlError> {
    if raw.contains('@') {
        return Err(invalid("has an '@' in the path; a user name goes before the host"));
    }
    if raw.contains('\\') {
        return Err(invalid("contains a backslash; path segments are separated by '/'"));
    }
    let mut segments = Vec::new();
    for raw_segment in raw.split('/').filter(|s| !s.is_empty()) {
        let segment = normalize_segment(&raw_segment.to_ascii_lowercase())?;
        if matches!(segment.as_str(), "." | ".." | "%2E" | "%2E%2E" | ".%2E" | "%2E.") {
            return Err(invalid("contains a '.' or '..' path segment"));
        }
        segments.push(segment);
    }
    if let Some(last) = segments.last_mut() {
        if let Some(stem) = last.strip_suffix(".git").filter(|s| !s.is_empty()) {
            *last = stem.to_owned();
        }
    }
    Ok(segments)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn p(s: &str) -> UrlPrefix {
        UrlPrefix::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn u(s: &str) -> UrlPrefix {
        UrlPrefix::of_url(&CloneUrl::parse(s, &[]).unwrap_or_else(|e| panic!("{s}: {e}")))
    }

    #[test]
    fn prefixes_are_normalised_like_clone_urls() {
        for s in [
            "https://bitbucket.org/acme/",
            "https://bitbucket.org/acme",
            "HTTPS://BitBucket.ORG:443/Acme//",
            "https://jo@bitbucket.org/acme",
            "git clone https://bitbucket.org/acme/",
            "'https://bitbucket.org/acme'",
            "git@bitbucket.org:acme",
            "ssh://git@bitbucket.org/acme/",
        ] {
            assert_eq!(p(s).to_string(), "https://bitbucket.org/acme/", "{s}");
        }
        assert_eq!(p("https://bitbucket.org/acme/app.git").to_string(), "https://bitbucket.org/acme/app/");
        assert_eq!(p("https://git.example.com:7990/scm/").to_string(), "https://git.example.com:7990/scm/");
        assert_eq!(p("https://bitbucket.org").to_string(), "https://bitbucket.org/");
        // A self-hosted SSH server keeps its own scheme: its paths need not be the HTTPS ones.
        assert_eq!(p("git@git.example.com:team").to_string(), "ssh://git.example.com/team/");
    }

    #[test]
    fn bad_prefixes_are_refused_with_the_url_codes() {
        assert_eq!(UrlPrefix::parse("https://jo:hunter2@bitbucket.org/acme").err(), Some(UrlError::SecretInUrl));
        for bad in ["", "acme", "ftp://h/x", "https://bitbucket.org/acme?x=1", "https://h/a/../b", "/srv/git"] {
            assert!(UrlPrefix::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn prefixes_match_on_whole_segments() {
        let acme = p("https://bitbucket.org/acme/");
        assert!(acme.matches(&u("https://bitbucket.org/acme/app.git")));
        assert!(acme.matches(&u("https://bitbucket.org/ACME/app")));
        assert!(acme.matches(&u("git clone https://jo@bitbucket.org/acme/app/")));
        assert!(acme.matches(&u("git@bitbucket.org:acme/app.git")));
        assert!(!acme.matches(&u("https://bitbucket.org/acmecorp/app.git")));
        assert_eq!(acme.relation(&u("https://bitbucket.org/acmecorp/app.git")), PrefixRelation::Diverges { shared: 0 });
        assert_eq!(acme.relation(&u("https://github.com/acme/app.git")), PrefixRelation::OtherHost);
        assert!(p("https://bitbucket.org/acme/app").matches(&u("https://bitbucket.org/acme/app.git")));
        assert!(!p("https://bitbucket.org/acme/app").matches(&u("https://bitbucket.org/acme/app2.git")));
        assert!(p("https://bitbucket.org/").matches(&u("https://bitbucket.org/x/y.git")));
        assert!(!p("http://git.example.com/").matches(&u("https://git.example.com/x/y.git")));
        assert!(!p("https://git.example.com:8443/").matches(&u("https://git.example.com/x/y.git")));
        assert_eq!(p("https://bitbucket.org/acme/app").depth(), 2);
    }
}
