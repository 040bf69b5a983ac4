//! Telling the forms of an address apart (URL, scp-like, bare, local) and splitting it into
//! scheme, user info, host, port and path, as typed.

use super::*;

// ---------------------------------------------------------------------------------------------
// Telling the forms apart

/// The shapes a pasted address can take.
pub(super) enum Form<'a> {
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

pub(super) fn classify(s: &str) -> Form<'_> {
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

pub(super) fn first_segment(s: &str) -> &str {
    s.split('/').next().unwrap_or(s)
}

pub(super) fn is_scheme_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && s.len() <= 32
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

pub(super) fn is_local_path(s: &str) -> bool {
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
pub(super) struct Parts<'a> {
    pub(super) scheme: &'a str,
    pub(super) userinfo: Option<&'a str>,
    pub(super) host_port: &'a str,
    pub(super) path: &'a str,
}

pub(super) fn split_hierarchical<'a>(scheme: &'a str, rest: &'a str) -> Parts<'a> {
    let (userinfo, after) = split_userinfo(rest);
    let (host_port, path) = after.split_once('/').unwrap_or((after, ""));
    Parts { scheme, userinfo, host_port, path }
}

pub(super) fn split_scp(s: &str) -> Parts<'_> {
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
pub(super) fn split_userinfo(s: &str) -> (Option<&str>, &str) {
    match first_segment(s).rsplit_once('@') {
        Some((userinfo, _)) => (Some(userinfo), s.get(userinfo.len() + 1..).unwrap_or_default()),
        None => (None, s),
    }
}

pub(super) fn split_parts(candidate: &str) -> Result<Parts<'_>, UrlError> {
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
pub(super) fn from_parts(
    parts: Parts<'_>,
    user: Option<String>,
    integrations: &[Integration],
) -> Result<CloneUrl, UrlError> {
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
pub(super) const TOKEN_PREFIXES: &[&str] =
    &["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "glpat-", "gldt-", "ATBB", "ATCTT", "ATATT"];

pub(super) fn parse_userinfo(userinfo: Option<&str>) -> Result<Option<String>, UrlError> {
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
pub(super) fn looks_like_token(user: &str) -> bool {
    let known_prefix = user.len() >= 20 && TOKEN_PREFIXES.iter().any(|p| user.starts_with(p));
    let opaque = user.len() >= 32
        && user.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && user.chars().any(|c| c.is_ascii_digit())
        && user.chars().any(|c| c.is_ascii_alphabetic());
    known_prefix || opaque
}

/// Decodes `%XX` escapes; `None` for a malformed escape or bytes that are not UTF-8.
pub(super) fn percent_decode(s: &str) -> Option<String> {
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

pub(super) fn hex_value(b: u8) -> Option<u8> {
    char::from(b).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

/// Escapes a user name for `ssh://user@host`: RFC 3986 unreserved characters and sub-delims
/// stay, everything else (notably ':' and '@', which would change the meaning) is escaped.
pub(super) fn encode_user(user: &str) -> String {
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

pub(super) fn parse_host_port(s: &str) -> Result<(String, Option<u16>), UrlError> {
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
pub(super) fn parse_port(s: &str) -> Result<Option<u16>, UrlError> {
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
pub(super) fn normalize_host(raw: &str) -> Result<String, UrlError> {
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
