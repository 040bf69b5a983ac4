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

/// Longest input accepted. Real clone URLs are far shorter; the limit bounds the work done on
/// whatever is pasted and the size of what is stored.
const MAX_LEN: usize = 2048;

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

fn invalid(reason: &str) -> UrlError {
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

    /// A key equal for every spelling of the same repository, for uniqueness.
    ///
    /// On bitbucket.org, github.com and gitlab.com HTTPS and SSH use the same path, so the key
    /// is `provider:path`. Azure DevOps SSH URLs map onto their HTTPS form. Elsewhere only HTTP
    /// and HTTPS are unified: a self-hosted server may serve SSH from anywhere.
    pub fn repository_key(&self) -> String {
        if let Some(p) = self.path_shared_cloud_provider() {
            return format!("{}:{}", p.as_str(), self.path.to_lowercase());
        }
        match self.scheme {
            Scheme::Ssh if self.provider == Provider::AzureDevops => {
                self.https_alternative().unwrap_or_else(|| self.canonical())
            }
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

    /// The URL for Git smart HTTP: the canonical form without user info. `None` for SSH.
    pub fn http_url(&self) -> Option<url::Url> {
        match self.scheme {
            Scheme::Ssh => None,
            Scheme::Https | Scheme::Http => url::Url::parse(&self.canonical()).ok(),
        }
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

// ---------------------------------------------------------------------------------------------
// Finding the URL in what was pasted

/// Characters around a pasted URL that are never part of it: Unicode whitespace (including
/// no-break spaces) and the invisible byte-order mark and zero-width space that editors and chat
/// tools slip in.
fn is_padding(c: char) -> bool {
    c.is_whitespace() || matches!(c, '\u{feff}' | '\u{200b}')
}

fn trim_padding(s: &str) -> &str {
    s.trim_matches(is_padding)
}

/// Removes surrounding quotes and angle brackets (`"…"`, `'…'`, `` `…` ``, `<…>`), nested too.
fn strip_wrapping(mut s: &str) -> &str {
    const PAIRS: [(char, char); 4] = [('"', '"'), ('\'', '\''), ('`', '`'), ('<', '>')];
    while let Some(inner) =
        PAIRS.iter().find_map(|(open, close)| s.strip_prefix(*open).and_then(|r| r.strip_suffix(*close)))
    {
        s = trim_padding(inner);
    }
    s
}

/// The URL itself, or the URL argument of a pasted `git clone` command.
fn extract_candidate(text: &str) -> Result<&str, UrlError> {
    let text = strip_wrapping(text);
    match strip_word(text, "git").and_then(|rest| strip_word(rest, "clone")) {
        Some(args) => url_from_clone_args(args),
        None => Ok(text),
    }
}

/// `s` after a leading `word` (any case) that ends at whitespace or at the end of `s`.
fn strip_word<'a>(s: &'a str, word: &str) -> Option<&'a str> {
    let s = s.trim_start_matches(is_padding);
    let rest = s.get(..word.len()).filter(|head| head.eq_ignore_ascii_case(word)).and(s.get(word.len()..))?;
    (rest.is_empty() || rest.starts_with(is_padding)).then_some(rest)
}

/// `git clone` options whose value is the next word (`--depth 1`, `-b main`), so the value is
/// never taken for the URL.
const CLONE_OPTIONS_WITH_VALUE: &[&str] = &[
    "-b",
    "--branch",
    "-o",
    "--origin",
    "-c",
    "--config",
    "-u",
    "--upload-pack",
    "-j",
    "--jobs",
    "--depth",
    "--reference",
    "--reference-if-able",
    "--separate-git-dir",
    "--template",
    "--shallow-since",
    "--shallow-exclude",
    "--filter",
    "--server-option",
    "--bundle-uri",
    "--ref-format",
];

/// The first argument of `git clone` that looks like a URL. What follows it (the target
/// directory, a `&& cd repo`) is ignored.
fn url_from_clone_args(args: &str) -> Result<&str, UrlError> {
    let mut words = args.split_whitespace().map(strip_wrapping);
    let mut first_operand = None;
    while let Some(word) = words.next() {
        if word.starts_with('-') {
            if CLONE_OPTIONS_WITH_VALUE.contains(&word) {
                words.next();
            }
            continue;
        }
        if !matches!(classify(word), Form::Word) {
            return Ok(word);
        }
        first_operand.get_or_insert(word);
    }
    // No word looks like a URL: report on the first operand, which is what git would use.
    first_operand.ok_or_else(|| invalid("is a `git clone` command without a URL"))
}

fn check_characters(candidate: &str) -> Result<(), UrlError> {
    if candidate.chars().any(char::is_control) {
        return Err(invalid("contains a control character such as a line break or a tab"));
    }
    if candidate.chars().any(is_padding) {
        return Err(invalid("contains a space; a clone URL has none (spaces in names are written %20)"));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Telling the forms apart

/// The shapes a pasted address can take.
enum Form<'a> {
    /// `scheme://rest`
    Url {
        scheme: &'a str,
        rest: &'a str,
    },
    /// `[user@]host:path`, Git's scp-like SSH syntax.
    Scp(&'a str),
    /// `host/path` without a scheme.
    Bare(&'a str),
    LocalPath,
    /// Anything else, such as a lone repository name.
    Word,
}

fn classify(s: &str) -> Form<'_> {
    if let Some((scheme, rest)) = s.split_once("://") {
        if is_scheme_name(scheme) {
            return Form::Url { scheme, rest };
        }
    }
    if is_local_path(s) {
        return Form::LocalPath;
    }
    let head = first_segment(s);
    // Git's own rule: a ':' before the first '/' makes an scp-like address. Requiring a user, a
    // dot or an IPv6 bracket as well keeps words like `main:foo` out.
    if head.contains(':') && (head.contains('@') || head.contains('.') || head.starts_with('[')) {
        return Form::Scp(s);
    }
    if head.contains('.') {
        return Form::Bare(s);
    }
    Form::Word
}

fn first_segment(s: &str) -> &str {
    s.split('/').next().unwrap_or(s)
}

fn is_scheme_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && s.len() <= 32
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

fn is_local_path(s: &str) -> bool {
    let mut chars = s.chars();
    let windows_drive = matches!(
        (chars.next(), chars.next(), chars.next()),
        (Some(d), Some(':'), None | Some('\\' | '/')) if d.is_ascii_alphabetic()
    );
    windows_drive
        || s.starts_with(['/', '\\', '~'])
        || s.starts_with("./")
        || s.starts_with("../")
        || s == "."
        || s == ".."
}

// ---------------------------------------------------------------------------------------------
// Splitting into parts

/// The pieces of an address, still as typed.
struct Parts<'a> {
    scheme: &'a str,
    userinfo: Option<&'a str>,
    host_port: &'a str,
    path: &'a str,
}

fn split_hierarchical<'a>(scheme: &'a str, rest: &'a str) -> Parts<'a> {
    let (userinfo, after) = split_userinfo(rest);
    let (host_port, path) = after.split_once('/').unwrap_or((after, ""));
    Parts { scheme, userinfo, host_port, path }
}

fn split_scp(s: &str) -> Parts<'_> {
    let (userinfo, after) = split_userinfo(s);
    // An IPv6 address is bracketed and full of ':'; the separator is the first ':' after it.
    let skip = if after.starts_with('[') { after.find(']').unwrap_or(0) } else { 0 };
    let colon = after.get(skip..).and_then(|tail| tail.find(':')).map(|i| i + skip);
    let (host_port, path) = colon
        .and_then(|i| after.split_at_checked(i))
        .map(|(host, path)| (host, path.strip_prefix(':').unwrap_or(path)))
        .unwrap_or((after, ""));
    Parts { scheme: "ssh", userinfo, host_port, path }
}

/// Splits off the user info: everything before the last '@' that precedes the first '/'.
/// Splitting before refusing `?` or `#` means a password containing them is still found.
fn split_userinfo(s: &str) -> (Option<&str>, &str) {
    match first_segment(s).rsplit_once('@') {
        Some((userinfo, _)) => (Some(userinfo), s.get(userinfo.len() + 1..).unwrap_or_default()),
        None => (None, s),
    }
}

fn split_parts(candidate: &str) -> Result<Parts<'_>, UrlError> {
    match classify(candidate) {
        Form::Url { scheme, rest } => Ok(split_hierarchical(scheme, rest)),
        // `bitbucket.org/ws/repo.git`: people drop the scheme; HTTPS is the only sane guess.
        Form::Bare(s) => Ok(split_hierarchical("https", s)),
        Form::Scp(s) => Ok(split_scp(s)),
        Form::LocalPath => Err(invalid(
            "is a local path; Berth needs the address of a Git server, like https://bitbucket.org/workspace/repo.git",
        )),
        Form::Word => Err(invalid("is not a URL; expected an address like https://bitbucket.org/workspace/repo.git")),
    }
}

/// Builds the URL from its parts once the user info is known to hold no secret.
fn from_parts(parts: Parts<'_>, user: Option<String>, integrations: &[Integration]) -> Result<CloneUrl, UrlError> {
    let scheme = Scheme::from_name(parts.scheme)?;
    if [parts.userinfo.unwrap_or_default(), parts.host_port, parts.path].iter().any(|s| s.contains(['?', '#'])) {
        return Err(invalid("has a query string (?...) or a fragment (#...); a clone URL has neither"));
    }
    let (host, port) = parse_host_port(parts.host_port)?;
    let port = port.filter(|p| *p != scheme.default_port());
    let (provider, api_url) = detect_provider(scheme, &host, port, integrations);
    // The cloud hosts serve Git only over HTTPS; over plain HTTP the token would cross the
    // network in the clear before the host's redirect to HTTPS could say so.
    if scheme == Scheme::Http && Provider::from_cloud_host(&host).is_some() {
        return Err(invalid("uses http:// but this host serves Git only over https://; use the https:// URL"));
    }
    let segments = normalize_path(parts.path, has_case_insensitive_paths(provider))?;
    check_shape(scheme, &host, &segments)?;
    Ok(CloneUrl { scheme, host, port, path: segments.join("/"), user, provider, api_url })
}

// ---------------------------------------------------------------------------------------------
// User info

/// Known access-token prefixes (GitHub, GitLab, Atlassian). Some hosts accept a token as the
/// user name alone, e.g. `https://ghp_…@github.com/…`, so that is a secret too.
const TOKEN_PREFIXES: &[&str] =
    &["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "glpat-", "gldt-", "ATBB", "ATCTT", "ATATT"];

fn parse_userinfo(userinfo: Option<&str>) -> Result<Option<String>, UrlError> {
    let Some(userinfo) = userinfo else { return Ok(None) };
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    // `jo:@host` carries no secret (Git treats it as the user `jo`); anything after ':' does.
    if !password.is_empty() {
        return Err(UrlError::SecretInUrl);
    }
    let user =
        percent_decode(user).ok_or_else(|| invalid("has a user name that is not valid percent-encoded UTF-8"))?;
    // An encoded ':' would still be split off as a password by the server.
    if user.contains(':') || looks_like_token(&user) {
        return Err(UrlError::SecretInUrl);
    }
    if user.chars().any(char::is_control) {
        return Err(invalid("has a control character in the user name"));
    }
    Ok(Some(user).filter(|u| !u.is_empty()))
}

/// A known token prefix, or a long run of letters and digits: a token, never a person's name.
fn looks_like_token(user: &str) -> bool {
    let known_prefix = user.len() >= 20 && TOKEN_PREFIXES.iter().any(|p| user.starts_with(p));
    let opaque = user.len() >= 32
        && user.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && user.chars().any(|c| c.is_ascii_digit())
        && user.chars().any(|c| c.is_ascii_alphabetic());
    known_prefix || opaque
}

/// Decodes `%XX` escapes; `None` for a malformed escape or bytes that are not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hi = hex_value(bytes.next()?)?;
            let lo = hex_value(bytes.next()?)?;
            out.push(hi * 16 + lo);
        } else {
            out.push(b);
        }
    }
    String::from_utf8(out).ok()
}

fn hex_value(b: u8) -> Option<u8> {
    char::from(b).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

/// Escapes a user name for `ssh://user@host`: RFC 3986 unreserved characters and sub-delims
/// stay, everything else (notably ':' and '@', which would change the meaning) is escaped.
fn encode_user(user: &str) -> String {
    let mut out = String::with_capacity(user.len());
    for b in user.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Host and port

fn parse_host_port(s: &str) -> Result<(String, Option<u16>), UrlError> {
    let (host, port) = match s.strip_prefix('[') {
        Some(rest) => {
            let (v6, tail) =
                rest.split_once(']').ok_or_else(|| invalid("has an IPv6 address without its closing ']'"))?;
            let port = match tail {
                "" => None,
                t => Some(t.strip_prefix(':').ok_or_else(|| invalid("has text after the IPv6 address"))?),
            };
            (normalize_host(&format!("[{v6}]"))?, port)
        }
        None => match s.split_once(':') {
            Some((_, port)) if port.contains(':') => {
                return Err(invalid("has more than one ':' after the host; write IPv6 addresses in brackets"))
            }
            Some((host, port)) => (normalize_host(host)?, Some(port)),
            None => (normalize_host(s)?, None),
        },
    };
    Ok((host, port.map(parse_port).transpose()?.flatten()))
}

/// `host:` with nothing after the colon means the default port, as in browsers.
fn parse_port(s: &str) -> Result<Option<u16>, UrlError> {
    if s.is_empty() {
        return Ok(None);
    }
    match s.parse::<u16>() {
        Ok(port) if port > 0 && s.bytes().all(|b| b.is_ascii_digit()) => Ok(Some(port)),
        _ => Err(invalid("has a port that is not a number from 1 to 65535")),
    }
}

/// Lower-cases the host and converts international names to their ASCII (punycode) form, as
/// HTTP clients do, so each host has one spelling.
fn normalize_host(raw: &str) -> Result<String, UrlError> {
    // `bitbucket.org.` is the same host written as a fully qualified name.
    let raw = raw.strip_suffix('.').unwrap_or(raw);
    if raw.is_empty() {
        return Err(invalid("has no host name"));
    }
    if raw.contains('%') {
        return Err(invalid("has a '%' in the host name"));
    }
    // Only one trailing dot is the fully qualified spelling; `host..` or `a..b` has an empty
    // label, which no DNS name has (and which would otherwise shrink by a dot on every parse).
    if !raw.starts_with('[') && raw.split('.').any(str::is_empty) {
        return Err(invalid("has an empty label (two dots in a row, or a leading dot) in the host name"));
    }
    match url::Host::parse(raw) {
        Ok(url::Host::Domain(domain)) => Ok(domain),
        Ok(url::Host::Ipv4(addr)) => Ok(addr.to_string()),
        Ok(url::Host::Ipv6(addr)) => Ok(addr.to_string()),
        Err(_) => Err(invalid("has a host name that is not valid")),
    }
}

// ---------------------------------------------------------------------------------------------
// Provider

fn detect_provider(
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
fn has_case_insensitive_paths(provider: Provider) -> bool {
    matches!(provider, Provider::BitbucketCloud | Provider::Github | Provider::Gitlab | Provider::BitbucketDatacenter)
}

// ---------------------------------------------------------------------------------------------
// Path

/// Splits the path into segments: empty ones (a trailing or doubled '/') dropped, percent
/// escapes upper-cased, non-ASCII escaped, the `.git` suffix removed.
fn normalize_path(raw: &str, lower_case: bool) -> Result<Vec<String>, UrlError> {
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

fn normalize_segment(segment: &str) -> Result<String, UrlError> {
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
fn is_path_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:".contains(&b)
}

/// The cloud hosts have fixed path shapes. Checking them catches the most common paste mistake:
/// the address of a web page (`…/src/main/`, `…/tree/main`) instead of the clone URL.
fn check_shape(scheme: Scheme, host: &str, segments: &[String]) -> Result<(), UrlError> {
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
fn azure_https_from_ssh_path(path: &str) -> Option<String> {
    match path.split('/').collect::<Vec<_>>().as_slice() {
        [v3, org, project, repo] if v3.eq_ignore_ascii_case("v3") => {
            Some(format!("https://dev.azure.com/{org}/{project}/_git/{repo}"))
        }
        _ => None,
    }
}

/// Bitbucket Data Center: the REST API URL is `origin[/context]/rest…` and HTTPS clone URLs are
/// `origin[/context]/scm/proj/repo.git`.
fn datacenter_https_url(api_url: &str, path: &str) -> Option<String> {
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
        return Err(format!("{input:?}: key {:?} differs from the canonical form's key {:?}", u.repository_key(), again.repository_key()));
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
// Tests state their expectations with unwrap and panic; a failure there is the point.
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(s: &str) -> Result<CloneUrl, UrlError> {
        CloneUrl::parse(s, &[])
    }

    fn canonical(s: &str) -> String {
        match parse(s) {
            Ok(u) => u.canonical(),
            Err(e) => panic!("{s:?} should parse, got {e:?}"),
        }
    }

    fn reason(s: &str) -> String {
        match parse(s) {
            Err(UrlError::Invalid { reason }) => reason,
            other => panic!("{s:?} should be Invalid, got {other:?}"),
        }
    }

    fn datacenter() -> Vec<Integration> {
        vec![Integration {
            host: "git.example.com:7990".into(),
            provider: Provider::BitbucketDatacenter,
            api_url: Some("https://git.example.com:7990/bitbucket/rest".into()),
        }]
    }

    const BB: &str = "https://bitbucket.org/ws/repo.git";

    #[test]
    fn trims_surrounding_whitespace() {
        for s in [
            " https://bitbucket.org/ws/repo.git ",
            "\n\thttps://bitbucket.org/ws/repo.git\r\n",
            "\u{a0}https://bitbucket.org/ws/repo.git\u{a0}",
            "\u{feff}https://bitbucket.org/ws/repo.git",
        ] {
            assert_eq!(canonical(s), BB, "{s:?}");
        }
    }

    #[test]
    fn strips_git_clone_commands() {
        for s in [
            "git clone https://bitbucket.org/ws/repo.git",
            "GIT   Clone\thttps://bitbucket.org/ws/repo.git",
            "git clone --depth 1 https://bitbucket.org/ws/repo.git",
            "git clone -b main --single-branch https://bitbucket.org/ws/repo.git",
            "git clone --depth=1 -c http.sslVerify=false https://bitbucket.org/ws/repo.git",
            "git clone https://bitbucket.org/ws/repo.git mydir",
            "git clone https://bitbucket.org/ws/repo.git my.dir && cd my.dir",
            "git clone \"https://bitbucket.org/ws/repo.git\" 'my dir'",
            "  git clone git@bitbucket.org:ws/repo.git",
        ] {
            assert_eq!(parse(s).map(|u| u.repository_key()), Ok("bitbucket-cloud:ws/repo".into()), "{s:?}");
        }
        assert!(reason("git clone").contains("without a URL"));
        assert!(reason("git clone --depth 1").contains("without a URL"));
        assert!(reason("git clone repo").contains("not a URL"));
        // `gitclone` and `git cloned` are not the command.
        assert!(parse("gitclone https://bitbucket.org/ws/repo.git").is_err());
    }

    #[test]
    fn strips_quotes_and_angle_brackets() {
        for s in [
            "\"https://bitbucket.org/ws/repo.git\"",
            "'https://bitbucket.org/ws/repo.git'",
            "<https://bitbucket.org/ws/repo.git>",
            "`https://bitbucket.org/ws/repo.git`",
            "\"<https://bitbucket.org/ws/repo.git>\"",
        ] {
            assert_eq!(canonical(s), BB, "{s:?}");
        }
        assert_eq!(parse("\"\""), Err(UrlError::Empty));
    }

    #[test]
    fn keeps_user_out_of_the_https_canonical_form() {
        let u = parse("https://jo@bitbucket.org/ws/repo.git").unwrap();
        assert_eq!(u.user.as_deref(), Some("jo"));
        assert_eq!(u.canonical(), BB);
        let u = parse("https://jo%40corp.com@git.corp.example/team/repo.git").unwrap();
        assert_eq!(u.user.as_deref(), Some("jo@corp.com"));
        assert_eq!(u.canonical(), "https://git.corp.example/team/repo.git");
        // An empty password is no secret; Git reads it as the user alone.
        assert_eq!(parse("https://jo:@bitbucket.org/ws/repo").unwrap().user.as_deref(), Some("jo"));
        assert_eq!(parse("https://@bitbucket.org/ws/repo").unwrap().user, None);
        assert!(reason("https://jo%ZZ@bitbucket.org/ws/repo").contains("user name"));
    }

    #[test]
    fn refuses_passwords_and_tokens() {
        let token = "ghp_0123456789abcdefghijklmnopqrstuvwxyz";
        for s in [
            "https://jo:hunter22@bitbucket.org/ws/repo.git",
            "https://:hunter22@bitbucket.org/ws/repo.git",
            "http://x-token-auth:hunter22@git.example.com/a/b",
            "ssh://git:hunter22@git.example.com:7999/a/b.git",
            "git:hunter22@bitbucket.org:ws/repo.git",
            "jo:hunter22@bitbucket.org/ws/repo",
            "git clone https://jo:hunter22@bitbucket.org/ws/repo.git",
            "ftp://jo:hunter22@example.com/a/b",
            "https://jo:hun#ter22@bitbucket.org/ws/repo.git",
            "https://jo:hun?ter22@bitbucket.org/ws/repo.git",
            "https://jo%3Ahunter22@bitbucket.org/ws/repo.git",
            "https://jo:hunter22@bitbucket.org/ws/my repo.git?x=1",
            "https://jo:hunter22@bitbucket.org/ws/re\npo.git",
            "https://jo:hunter22@bitbucket.org",
            &format!("https://{token}@github.com/o/r.git"),
            "https://ATBB0123456789abcdefghijklmnop@bitbucket.org/ws/repo.git",
            "https://abcdefghijklmnopqrstuvwxyz0123456789@git.example.com/a/b.git",
        ] {
            let err = parse(s).unwrap_err();
            assert_eq!(err, UrlError::SecretInUrl, "{s:?}");
            assert_eq!(err.code(), Code::SecretInUrl);
            for text in [err.to_string(), format!("{err:?}"), err.remedy().to_owned()] {
                assert!(!text.contains("hunter22") && !text.contains("hun") && !text.contains(token), "{text}");
                assert!(!text.contains("bitbucket.org/ws"), "{text}");
            }
        }
    }

    #[test]
    fn adds_git_removes_slashes_and_default_ports() {
        for s in [
            "https://bitbucket.org/ws/repo",
            "https://bitbucket.org/ws/repo/",
            "https://bitbucket.org/ws/repo.git/",
            "https://bitbucket.org//ws//repo.git",
            "https://BitBucket.ORG/ws/repo.git",
            "https://bitbucket.org:443/ws/repo.git",
            "https://bitbucket.org:/ws/repo.git",
            "https://bitbucket.org./ws/repo.git",
            "HTTPS://bitbucket.org/ws/repo",
        ] {
            assert_eq!(canonical(s), BB, "{s:?}");
        }
        assert_eq!(canonical("http://git.example.com:80/a/b"), "http://git.example.com/a/b.git");
        assert_eq!(canonical("https://git.example.com:8443/a/b"), "https://git.example.com:8443/a/b.git");
        assert_eq!(canonical("ssh://git@git.example.com:22/a/b"), "ssh://git@git.example.com/a/b.git");
        let http = parse("http://git.example.com/a/b.git").unwrap();
        assert_eq!((http.scheme, http.port), (Scheme::Http, None));
    }

    #[test]
    fn lower_cases_paths_only_where_the_host_ignores_case() {
        assert_eq!(canonical("https://bitbucket.org/WS/Repo.GIT"), BB);
        assert_eq!(canonical("https://github.com/Octo/Hello-World"), "https://github.com/octo/hello-world.git");
        assert_eq!(canonical("https://gitlab.com/Group/Sub/Proj"), "https://gitlab.com/group/sub/proj.git");
        let dc = CloneUrl::parse("https://git.example.com:7990/bitbucket/scm/PROJ/Repo.git", &datacenter()).unwrap();
        assert_eq!(dc.path, "bitbucket/scm/proj/repo");
        assert_eq!(canonical("https://git.example.com/Team/Repo.git"), "https://git.example.com/Team/Repo.git");
        assert_eq!(
            canonical("https://dev.azure.com/Org/Project/_git/Repo"),
            "https://dev.azure.com/Org/Project/_git/Repo"
        );
    }

    #[test]
    fn parses_ssh_forms() {
        let u = parse("git@bitbucket.org:ws/repo.git").unwrap();
        assert_eq!(
            (u.scheme, u.user.as_deref(), u.host.as_str(), u.path.as_str()),
            (Scheme::Ssh, Some("git"), "bitbucket.org", "ws/repo")
        );
        assert_eq!(u.canonical(), "ssh://git@bitbucket.org/ws/repo.git");
        let u = parse("ssh://git@git.example.com:7999/proj/repo.git").unwrap();
        assert_eq!((u.scheme, u.port, u.path.as_str()), (Scheme::Ssh, Some(7999), "proj/repo"));
        assert_eq!(u.canonical(), "ssh://git@git.example.com:7999/proj/repo.git");
        assert_eq!(canonical("git+ssh://git@git.example.com:7999/proj/repo.git"), u.canonical());
        assert_eq!(canonical("ssh+git://git@git.example.com:7999/proj/repo.git"), u.canonical());
        // No user: `git`, the user of every hosted service.
        assert_eq!(canonical("ssh://git.example.com/a/b"), "ssh://git@git.example.com/a/b.git");
        assert_eq!(canonical("git.example.com:a/b"), "ssh://git@git.example.com/a/b.git");
        // Other users are kept, escaped where needed.
        assert_eq!(canonical("jo@git.example.com:/srv/b.git"), "ssh://jo@git.example.com/srv/b.git");
        assert_eq!(canonical("ssh://jo%40corp@git.example.com/a/b"), "ssh://jo%40corp@git.example.com/a/b.git");
        assert_eq!(canonical("git@[fd00::1]:a/b.git"), "ssh://git@[fd00::1]/a/b.git");
        assert_eq!(canonical("ssh://git@host.example/~jo/b.git"), "ssh://git@host.example/~jo/b.git");
    }

    #[test]
    fn refuses_queries_and_fragments() {
        for s in [
            "https://bitbucket.org/ws/repo.git?x=1",
            "https://bitbucket.org/ws/repo#readme",
            "https://bitbucket.org?a/ws/repo",
            "git@bitbucket.org:ws/repo.git#x",
        ] {
            assert!(reason(s).contains("query"), "{s:?}");
        }
        assert_eq!(canonical("https://bitbucket.org/ws/repo.git?"), BB);
    }

    #[test]
    fn detects_providers_and_context_paths() {
        let u = parse(BB).unwrap();
        assert_eq!(
            (u.provider, u.api_url.as_deref()),
            (Provider::BitbucketCloud, Some("https://api.bitbucket.org/2.0"))
        );
        assert_eq!(parse("https://github.com/o/r").unwrap().provider, Provider::Github);
        assert_eq!(parse("https://gitlab.com/g/r").unwrap().provider, Provider::Gitlab);
        assert_eq!(parse("https://git.example.com/a/b").unwrap().provider, Provider::Generic);

        let u = CloneUrl::parse("https://git.example.com:7990/bitbucket/scm/proj/repo.git", &datacenter()).unwrap();
        assert_eq!(u.provider, Provider::BitbucketDatacenter);
        assert_eq!(u.path, "bitbucket/scm/proj/repo");
        assert_eq!(u.api_url.as_deref(), Some("https://git.example.com:7990/bitbucket/rest"));
        assert_eq!(u.canonical(), "https://git.example.com:7990/bitbucket/scm/proj/repo.git");
        assert_eq!(u.repo_name(), "repo");
        // Same host, other HTTPS port: not that integration.
        let other = CloneUrl::parse("https://git.example.com/bitbucket/scm/proj/repo.git", &datacenter()).unwrap();
        assert_eq!(other.provider, Provider::Generic);
        // SSH on the integration's host belongs to it whatever the port.
        let ssh = CloneUrl::parse("ssh://git@git.example.com:7999/proj/repo.git", &datacenter()).unwrap();
        assert_eq!(ssh.provider, Provider::BitbucketDatacenter);
    }

    #[test]
    fn handles_azure_devops() {
        let u = parse("https://dev.azure.com/org/project/_git/repo").unwrap();
        assert_eq!(u.provider, Provider::AzureDevops);
        assert_eq!(u.canonical(), "https://dev.azure.com/org/project/_git/repo");
        assert_eq!(u.http_url().map(String::from).as_deref(), Some("https://dev.azure.com/org/project/_git/repo"));
        assert_eq!(u.repo_name(), "repo");
        let with_user = parse("https://org@dev.azure.com/org/project/_git/repo").unwrap();
        assert_eq!(with_user.user.as_deref(), Some("org"));
        assert_eq!(with_user.canonical(), u.canonical());
        assert_eq!(with_user.repository_key(), u.repository_key());

        let ssh = parse("git@ssh.dev.azure.com:v3/org/project/repo").unwrap();
        assert_eq!((ssh.scheme, ssh.provider), (Scheme::Ssh, Provider::AzureDevops));
        assert_eq!(ssh.canonical(), "ssh://git@ssh.dev.azure.com/v3/org/project/repo");
        assert_eq!(ssh.https_alternative().as_deref(), Some("https://dev.azure.com/org/project/_git/repo"));
        assert_eq!(ssh.repository_key(), u.repository_key());
        assert_eq!(ssh.repo_name(), "repo");

        assert!(reason("https://dev.azure.com/org/project/repo").contains("Azure DevOps"));
        assert!(reason("https://dev.azure.com/org/project/_git/repo/commit/abc").contains("web page"));
    }

    #[test]
    fn accepts_a_bare_host_and_path_as_https() {
        assert_eq!(canonical("bitbucket.org/ws/repo.git"), BB);
        assert_eq!(canonical("jo@bitbucket.org/ws/repo"), BB);
        assert_eq!(parse("bitbucket.org"), Err(UrlError::MissingRepositoryPath));
        for s in ["repo", "ws/repo", "main:foo", "https:/bitbucket.org/ws/repo"] {
            assert!(reason(s).contains("not a URL"), "{s:?}");
        }
    }

    #[test]
    fn explains_what_is_wrong() {
        assert_eq!(parse(""), Err(UrlError::Empty));
        assert_eq!(parse(" \n\t "), Err(UrlError::Empty));
        assert!(reason("https://bitbucket.org/ws/my repo.git").contains("space"));
        assert!(reason("https://bitbucket.org/ws/my\u{a0}repo.git").contains("space"));
        assert!(reason("https://bitbucket.org/ws/\nrepo.git").contains("control character"));
        assert!(reason("https://bitbucket.org/ws/\u{7}repo.git").contains("control character"));
        assert!(reason("https:///ws/repo.git").contains("no host"));
        assert!(reason("https://").contains("no host"));
        assert!(reason("https://git.example.com:99999/a/b").contains("port"));
        assert!(reason("https://git.example.com:0/a/b").contains("port"));
        assert!(reason("https://git.example.com:x/a/b").contains("port"));
        assert!(reason("https://git.exa mple.com/a/b").contains("space"));
        assert!(reason("https://git_ex<ample.com/a/b").contains("host name"));
        assert!(reason(&format!("https://bitbucket.org/ws/{}.git", "a".repeat(2100))).contains("2048"));
        for s in [
            "https://git.example.com/a/../b.git",
            "https://git.example.com/a/./b",
            "https://git.example.com/a/%2e%2E/b",
        ] {
            assert!(reason(s).contains("'..'"), "{s:?}");
        }
        for s in ["/srv/repo.git", "./repo", "../repo", "~/repo.git", "C:\\x", "C:/x/y.git", "\\\\server\\share\\repo"]
        {
            assert!(reason(s).contains("local path"), "{s:?}");
        }
        assert!(reason("https://git.example.com/a\\b").contains("backslash"));
        assert!(reason("https://git.example.com/a/b%2").contains('%'));
        assert!(reason("https://git.example.com/a/b{c}").contains("'{'"));
        assert!(reason("https://git.example.com/ws/.git").contains(".git"));
        assert!(reason("https://u:1234/x@host.example/a").contains("'@'"));
        assert!(reason("https://bitbucket.org/ws/repo/src/main/").contains("web page"));
        assert!(reason("https://github.com/o/r/tree/main").contains("web page"));
        assert!(reason("https://gitlab.com/g/r/-/tree/main").contains("web page"));
        for s in [
            "https://bitbucket.org/",
            "https://bitbucket.org",
            "https://github.com/octocat",
            "https://gitlab.com/group",
            "git@bitbucket.org:",
            "https://git.example.com/",
        ] {
            assert_eq!(parse(s), Err(UrlError::MissingRepositoryPath), "{s:?}");
        }
    }

    #[test]
    fn refuses_other_schemes() {
        for (s, scheme) in [
            ("file:///srv/repo.git", "file"),
            ("git://git.example.com/a/b.git", "git"),
            ("FTP://x.example/a", "ftp"),
            ("svn+ssh://x.example/a", "svn+ssh"),
        ] {
            let err = parse(s).unwrap_err();
            assert_eq!(err, UrlError::UnsupportedScheme { scheme: scheme.into() });
            assert_eq!(err.code(), Code::InvalidUrl);
            assert!(err.to_string().contains("https://"));
        }
    }

    #[test]
    fn error_codes_and_remedies() {
        let errors = [
            UrlError::Empty,
            invalid("x"),
            UrlError::SecretInUrl,
            UrlError::UnsupportedScheme { scheme: "git".into() },
            UrlError::MissingRepositoryPath,
        ];
        for e in &errors {
            assert!(!e.remedy().is_empty());
            assert!(!e.to_string().is_empty());
        }
        let codes: Vec<Code> = errors.iter().map(UrlError::code).collect();
        assert_eq!(codes, [Code::InvalidUrl, Code::InvalidUrl, Code::SecretInUrl, Code::InvalidUrl, Code::InvalidUrl]);
    }

    #[test]
    fn handles_ip_addresses() {
        let u = parse("https://[FD00::1]:8443/a/b").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("fd00::1", Some(8443)));
        assert_eq!(u.canonical(), "https://[fd00::1]:8443/a/b.git");
        assert_eq!(canonical("http://10.0.0.5/a/b"), "http://10.0.0.5/a/b.git");
        assert!(reason("https://[fd00::1/a/b").contains("IPv6"));
        assert!(reason("https://fd00::1/a/b").contains("brackets"));
    }

    #[test]
    fn escapes_non_ascii_paths_once() {
        assert_eq!(canonical("https://git.example.com/team/café"), "https://git.example.com/team/caf%C3%A9.git");
        assert_eq!(
            canonical("https://git.example.com/team/caf%c3%a9.git"),
            "https://git.example.com/team/caf%C3%A9.git"
        );
        assert_eq!(canonical("https://git.example.com/team/my%20repo"), "https://git.example.com/team/my%20repo.git");
    }

    #[test]
    fn repository_keys() {
        let key = |s: &str| parse(s).unwrap().repository_key();
        assert_eq!(key(BB), "bitbucket-cloud:ws/repo");
        assert_eq!(key("git@bitbucket.org:WS/repo.git"), "bitbucket-cloud:ws/repo");
        assert_eq!(key("ssh://git@bitbucket.org:22/ws/repo"), "bitbucket-cloud:ws/repo");
        assert!(parse("http://bitbucket.org/ws/repo").is_err(), "plain HTTP to a cloud host would expose the token");
        assert_eq!(key("git@github.com:o/r.git"), key("https://github.com/O/R"));
        assert_eq!(key("https://www.github.com/o/r"), key("https://github.com/o/r"));
        // Self-hosted: HTTP and HTTPS unified, SSH kept apart.
        assert_eq!(key("http://git.example.com/a/b"), "https://git.example.com/a/b.git");
        assert_eq!(key("http://git.example.com/a/b"), key("https://jo@git.example.com:443/a/b/"));
        assert_eq!(key("http://git.example.com:8080/a/b"), "https://git.example.com:8080/a/b.git");
        assert_ne!(key("git@git.example.com:a/b"), key("https://git.example.com/a/b"));
        assert_eq!(key("git@git.example.com:a/b"), "ssh://git@git.example.com/a/b.git");
        // An integration calling another host `github` does not share github.com's keys.
        let ints = [Integration { host: "ghe.corp.example".into(), provider: Provider::Github, api_url: None }];
        let ghe = CloneUrl::parse("https://ghe.corp.example/o/r", &ints).unwrap();
        assert_eq!(ghe.repository_key(), "https://ghe.corp.example/o/r.git");
    }

    #[test]
    fn http_urls_have_no_user_info() {
        let u = parse("https://jo@bitbucket.org/ws/repo").unwrap();
        let http = u.http_url().unwrap();
        assert_eq!(http.as_str(), BB);
        assert_eq!((http.username(), http.password()), ("", None));
        assert_eq!(
            parse("http://git.example.com:8080/a/b").unwrap().http_url().unwrap().as_str(),
            "http://git.example.com:8080/a/b.git"
        );
        assert_eq!(parse("git@bitbucket.org:ws/repo.git").unwrap().http_url(), None);
    }

    #[test]
    fn https_alternatives_of_ssh_urls() {
        let alt = |s: &str, ints: &[Integration]| CloneUrl::parse(s, ints).unwrap().https_alternative();
        assert_eq!(alt("git@bitbucket.org:ws/repo.git", &[]).as_deref(), Some(BB));
        assert_eq!(alt("git@github.com:o/r.git", &[]).as_deref(), Some("https://github.com/o/r.git"));
        assert_eq!(alt("ssh://git@gitlab.com/g/s/r.git", &[]).as_deref(), Some("https://gitlab.com/g/s/r.git"));
        assert_eq!(
            alt("git@ssh.dev.azure.com:v3/org/project/repo", &[]).as_deref(),
            Some("https://dev.azure.com/org/project/_git/repo")
        );
        assert_eq!(alt("ssh://git@git.example.com:7999/proj/repo.git", &[]), None);
        assert_eq!(
            alt("ssh://git@git.example.com:7999/proj/repo.git", &datacenter()).as_deref(),
            Some("https://git.example.com:7990/bitbucket/scm/proj/repo.git")
        );
        let root = [Integration {
            host: "scm.example.com".into(),
            provider: Provider::BitbucketDatacenter,
            api_url: Some("https://scm.example.com/rest/api/1.0/".into()),
        }];
        assert_eq!(
            alt("ssh://git@scm.example.com:7999/~jo/repo.git", &root).as_deref(),
            Some("https://scm.example.com/scm/~jo/repo.git")
        );
        let no_api =
            [Integration { host: "scm.example.com".into(), provider: Provider::BitbucketDatacenter, api_url: None }];
        assert_eq!(alt("ssh://git@scm.example.com:7999/p/r.git", &no_api), None);
        assert_eq!(alt(BB, &[]), None);
    }

    #[test]
    fn repo_names() {
        assert_eq!(parse(BB).unwrap().repo_name(), "repo");
        assert_eq!(parse("git@gitlab.com:g/sub/My-Proj.git").unwrap().repo_name(), "my-proj");
        assert_eq!(parse("https://git.example.com/Solo").unwrap().repo_name(), "Solo");
    }

    #[test]
    fn scheme_serialises_lower_case() {
        assert_eq!(serde_json::to_string(&Scheme::Https).unwrap(), "\"https\"");
        assert_eq!(serde_json::from_str::<Scheme>("\"ssh\"").unwrap(), Scheme::Ssh);
    }

    // --- properties

    /// A valid URL as (text, whether its host is one of the path-sharing cloud hosts).
    fn valid_url() -> impl Strategy<Value = String> {
        let segment = "[a-zA-Z0-9][a-zA-Z0-9_-]{0,9}";
        let cloud = (prop_oneof![Just("bitbucket.org"), Just("github.com"), Just("gitlab.com")], segment, segment)
            .prop_map(|(h, a, b)| format!("https://{h}/{a}/{b}.git"));
        let azure = (segment, segment, segment).prop_map(|(o, p, r)| format!("https://dev.azure.com/{o}/{p}/_git/{r}"));
        let self_hosted = (
            prop_oneof![Just("https"), Just("http"), Just("ssh")],
            prop_oneof![Just("git.example.com"), Just("Scm.Corp.Example"), Just("10.1.2.3"), Just("[fd00::2]")],
            proptest::option::of(1u16..),
            proptest::collection::vec(segment, 1..4),
        )
            .prop_map(|(scheme, host, port, segs)| {
                let port = port.map(|p| format!(":{p}")).unwrap_or_default();
                let user = if scheme == "ssh" { "git@" } else { "" };
                format!("{scheme}://{user}{host}{port}/{}", segs.join("/"))
            });
        let scp = (segment, segment).prop_map(|(a, b)| format!("git@bitbucket.org:{a}/{b}.git"));
        prop_oneof![cloud, azure, self_hosted, scp]
    }

    proptest! {
        #[test]
        fn canonical_is_idempotent(s in valid_url()) {
            let u = parse(&s).map_err(|e| TestCaseError::fail(format!("{s}: {e:?}")))?;
            let again = parse(&u.canonical()).map_err(|e| TestCaseError::fail(format!("{}: {e:?}", u.canonical())))?;
            prop_assert_eq!(again.canonical(), u.canonical());
            prop_assert_eq!(again.repository_key(), u.repository_key());
            prop_assert_eq!(u.http_url().is_some(), u.scheme != Scheme::Ssh);
        }

        #[test]
        fn decorations_keep_the_key(
            base in valid_url(),
            clone_cmd in any::<bool>(),
            pad in prop_oneof![Just(""), Just(" "), Just("\n\t"), Just("\u{a0}")],
            user in any::<bool>(),
            slash in any::<bool>(),
            drop_git in any::<bool>(),
            upper_host in any::<bool>(),
            default_port in any::<bool>(),
        ) {
            let original = parse(&base).map_err(|e| TestCaseError::fail(format!("{base}: {e:?}")))?;
            let mut decorated = original.clone();
            decorated.host = if upper_host { original.host.to_uppercase() } else { original.host.clone() };
            let mut s = CloneUrl { host: decorated.host.clone(), ..original.clone() }.canonical();
            if drop_git {
                s = s.strip_suffix(".git").unwrap_or(&s).to_owned();
            }
            if slash {
                s.push('/');
            }
            if default_port && original.port.is_none() {
                let authority = original.authority();
                let with_port = format!("{authority}:{}", original.scheme.default_port());
                s = s.replacen(&format!("{authority}/"), &format!("{with_port}/"), 1);
            }
            if user && original.scheme != Scheme::Ssh {
                s = s.replacen("://", "://jo@", 1);
            }
            if clone_cmd {
                s = format!("git  clone --depth 1 {s} target-dir");
            }
            let s = format!("{pad}{s}{pad}");
            let parsed = parse(&s).map_err(|e| TestCaseError::fail(format!("{s}: {e:?}")))?;
            prop_assert_eq!(parsed.repository_key(), original.repository_key(), "{}", s);
        }

        #[test]
        fn passwords_never_appear_in_errors(password in "[a-zA-Z0-9]{4,40}") {
            let err = parse(&format!("https://u:{password}@host.example/a/b.git")).err();
            prop_assert_eq!(err.clone(), Some(UrlError::SecretInUrl));
            if let Some(err) = err {
                prop_assert!(!err.to_string().contains(&password));
                let debug = format!("{:?}", err);
                prop_assert!(!debug.contains(&password));
                prop_assert!(!err.remedy().contains(&password));
            }
        }

        #[test]
        fn never_panics_on_text(s in "\\PC*") {
            let _ = parse(&s);
            let _ = parse(&format!("git clone {s}"));
            let _ = parse(&format!("https://{s}"));
            let _ = parse(&format!("git@{s}"));
        }

        #[test]
        fn never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let s = String::from_utf8_lossy(&bytes);
            let _ = parse(&s);
            let _ = parse(&format!("ssh://{s}"));
        }
    }

    /// `fuzz/corpus/clone_url/`: every committed seed satisfies the round-trip rules; seeds
    /// named `ok-*` are accepted and `bad-*` refused.
    #[test]
    fn fuzz_corpus_replays() -> std::io::Result<()> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/clone_url");
        let integrations = fuzz_integrations();
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("").to_owned();
            let bytes = std::fs::read(&path)?;
            let Ok(text) = std::str::from_utf8(&bytes) else { continue };
            let checked = check_canonical_roundtrip(text, &integrations);
            assert!(checked.is_ok(), "{name}: {checked:?}");
            if name.starts_with("ok-") {
                assert!(matches!(checked, Ok(Some(_))), "{name} ({text:?}) should be accepted");
            }
            if name.starts_with("bad-") {
                assert!(matches!(checked, Ok(None)), "{name} ({text:?}) should be refused");
            }
            seen += 1;
        }
        assert!(seen >= 10, "only {seen} seeds in {}", dir.display());
        Ok(())
    }

    /// Inputs the fuzzer found breaking the round-trip rules, kept as regressions.
    #[test]
    fn fuzz_regressions() {
        let integrations = fuzz_integrations();
        // A host with an empty label lost one dot per parse: "ht.." became "ht." and then "ht".
        for input in ["ht../tpg/acme/app.git", "https://a..b/x/y.git", "https://host../x/y.git"] {
            let checked = check_canonical_roundtrip(input, &integrations);
            assert!(matches!(checked, Ok(None)), "{input:?} should be refused: {checked:?}");
        }
        assert!(matches!(check_canonical_roundtrip("https://host./x/y.git", &integrations), Ok(Some(_))));
    }
}
