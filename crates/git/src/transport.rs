//! HTTP for Git: the shared reqwest client, a resolver that enforces the network policy, our own
//! redirect handling, the mapping of HTTP statuses and transport errors to findings, and a
//! streaming pkt-line reader over a response body.

use crate::error::{GitError, Stage};
use crate::pktline::{Pkt, PktDecoder, PktError};
use crate::{GitAuth, GitClientConfig, Lookup};
use berth_core::{Code, NetworkPolicy};
use bytes::Bytes;
use reqwest::header::{HeaderMap, CONTENT_TYPE, LOCATION, RETRY_AFTER, WWW_AUTHENTICATE};
use reqwest::{Method, Response, StatusCode};
use secrecy::ExposeSecret;
use std::error::Error as StdError;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use url::{Host, Url};

pub(crate) const ADVERTISEMENT_TYPE: &str = "application/x-git-upload-pack-advertisement";
pub(crate) const REQUEST_TYPE: &str = "application/x-git-upload-pack-request";
pub(crate) const RESULT_TYPE: &str = "application/x-git-upload-pack-result";

/// How much of a non-Git body (HTML page, error text) is read for diagnosis.
const DIAGNOSIS_BYTES: usize = 8 * 1024;

const ALLOW_REMEDY: &str = "Berth refuses loopback, link-local (cloud metadata) and similar addresses so that a clone URL \
     cannot be used to reach internal services. If this Git server really lives there, an operator can allow the \
     range with BERTH_NETWORK_ALLOW";

// ---------------------------------------------------------------------------------------------
// Name resolution under the network policy

/// Why a host could not be turned into addresses Berth may contact. Travels through reqwest and
/// hyper as the resolver's error and is recognised again by [`classify`].
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
    pub(crate) fn to_git_error(&self) -> GitError {
        match self {
            ResolveError::Lookup { host, .. } | ResolveError::NoAddresses { host } => GitError::new(
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
                GitError::new(
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
    let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    let (all, literal) = match bare.parse::<IpAddr>() {
        Ok(ip) => (vec![ip], true),
        Err(_) => {
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
            (all, false)
        }
    };
    let Some(first) = all.first().copied() else {
        return Err(ResolveError::NoAddresses { host: bare.to_owned() });
    };
    let allowed: Vec<IpAddr> = all.iter().copied().filter(|ip| policy.allows(*ip)).collect();
    if allowed.is_empty() {
        let reason = policy.refusal(first).unwrap_or("a refused address");
        return Err(ResolveError::Forbidden {
            host: bare.to_owned(),
            literal,
            reason,
            addr: first,
            all,
        });
    }
    Ok(Resolved { all, allowed })
}

/// reqwest resolver applying the policy to every connection the client opens, redirects and
/// pooled reconnects included. Only host names reach it: hyper connects to IP literals directly,
/// which is why [`check_url_host`] runs before every request.
struct PolicyResolver {
    policy: NetworkPolicy,
    lookup: Option<Arc<dyn Lookup>>,
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

/// Refuses a URL whose host is an IP literal the policy forbids (names are left to the resolver).
pub(crate) fn check_url_host(policy: &NetworkPolicy, url: &Url) -> Result<(), GitError> {
    let ip = match url.host() {
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip),
        _ => return Ok(()),
    };
    match policy.refusal(ip) {
        None => Ok(()),
        Some(reason) => Err(ResolveError::Forbidden { host: ip.to_string(), literal: true, reason, addr: ip, all: vec![ip] }
            .to_git_error()),
    }
}

pub(crate) fn build_client(cfg: &GitClientConfig) -> Result<reqwest::Client, GitError> {
    let mut b = reqwest::Client::builder()
        .use_rustls_tls()
        .user_agent(cfg.user_agent.clone())
        // Redirects are handled in `send` so that credentials never cross origins.
        .redirect(reqwest::redirect::Policy::none())
        .timeout(cfg.request_timeout)
        .connect_timeout(cfg.request_timeout)
        // A proxy would resolve and connect on our behalf, out of the policy's reach.
        .no_proxy()
        .dns_resolver(Arc::new(PolicyResolver { policy: cfg.policy.clone(), lookup: cfg.lookup.clone() }));
    for pem in &cfg.extra_root_certs_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| {
            GitError::new(
                Stage::Tls,
                Code::InvalidInput,
                format!("An extra root certificate could not be read: {e}"),
                "Provide the certificate authority as PEM (-----BEGIN CERTIFICATE-----).",
            )
        })?;
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    b.build().map_err(|e| {
        GitError::new(
            Stage::Tls,
            Code::Internal,
            format!("The HTTP client could not be set up: {}", chain_text(&e).join(": ")),
            "Check the extra root certificates; this is otherwise a bug in Berth.",
        )
    })
}

// ---------------------------------------------------------------------------------------------
// Requests and redirects

pub(crate) struct Request<'a> {
    pub method: Method,
    pub url: Url,
    pub stage: Stage,
    pub headers: HeaderMap,
    pub body: Option<Bytes>,
    pub auth: Option<&'a GitAuth>,
}

pub(crate) struct Exchange {
    pub response: Response,
    /// The URL that answered, after same-origin redirects.
    pub url: Url,
    /// For messages: "GET https://host/repo.git/info/refs".
    pub what: String,
}

pub(crate) async fn send(http: &reqwest::Client, cfg: &GitClientConfig, req: Request<'_>) -> Result<Exchange, GitError> {
    let mut url = req.url;
    let mut hops = 0u8;
    loop {
        check_url_host(&cfg.policy, &url)?;
        let what = format!("{} {}", req.method, without_query(&url));
        let mut rb = http.request(req.method.clone(), url.clone()).headers(req.headers.clone());
        if let Some(body) = &req.body {
            rb = rb.body(body.clone());
        }
        // reqwest marks both headers sensitive, so they are never printed by its Debug either.
        rb = match req.auth {
            Some(GitAuth::Basic { username, password }) => rb.basic_auth(username, Some(password.expose_secret())),
            Some(GitAuth::Bearer(token)) => rb.bearer_auth(token.expose_secret()),
            None => rb,
        };
        tracing::debug!(request = %what, "git http request");
        let response = rb.send().await.map_err(|e| classify(&e, req.stage, &what, cfg.request_timeout))?;
        let status = response.status();
        tracing::debug!(request = %what, status = status.as_u16(), "git http response");
        if !status.is_redirection() {
            return Ok(Exchange { response, url, what });
        }
        let next = redirect_target(&url, response.headers(), req.stage, status)?;
        if let Some(e) = forbidden_redirect(&cfg.policy, &url, &next, req.stage, status) {
            return Err(e);
        }
        if next.origin() != url.origin() {
            return Err(moved(&url, &next, req.stage, status));
        }
        hops += 1;
        if hops > cfg.max_redirects {
            return Err(GitError::protocol(
                req.stage,
                format!("The server redirected more than {} times for {what}.", cfg.max_redirects),
            )
            .with_status(status.as_u16())
            .with_details(vec![format!("last location: {}", without_query(&next))]));
        }
        tracing::debug!(from = %without_query(&url), to = %without_query(&next), "following same-origin redirect");
        url = next;
    }
}

pub(crate) fn redirect_target(url: &Url, headers: &HeaderMap, stage: Stage, status: StatusCode) -> Result<Url, GitError> {
    let raw = headers.get(LOCATION).and_then(|v| v.to_str().ok()).ok_or_else(|| {
        GitError::protocol(stage, format!("The server answered HTTP {} without a usable Location header.", status.as_u16()))
            .with_status(status.as_u16())
    })?;
    let mut next = url.join(raw).map_err(|e| {
        GitError::protocol(stage, format!("The server redirected to an invalid location: {e}")).with_status(status.as_u16())
    })?;
    // Never carry (or show) credentials that a Location header might hold.
    let _ = next.set_username("");
    let _ = next.set_password(None);
    Ok(next)
}

/// A redirect whose target is an IP address the policy forbids (cloud metadata, loopback…):
/// reported as `destination_forbidden`, so nobody is invited to point the clone URL there.
/// Names are not resolved here: a cross-origin redirect is never followed anyway, and a
/// same-origin one goes through the policy resolver.
pub(crate) fn forbidden_redirect(
    policy: &NetworkPolicy,
    from: &Url,
    to: &Url,
    stage: Stage,
    status: StatusCode,
) -> Option<GitError> {
    let ip = match to.host()? {
        Host::Ipv4(ip) => IpAddr::V4(ip),
        Host::Ipv6(ip) => IpAddr::V6(ip),
        Host::Domain(_) => return None,
    };
    let reason = policy.refusal(ip)?;
    let host = from.host_str().unwrap_or("the server");
    let location = without_query(to);
    Some(
        GitError::new(
            stage,
            Code::DestinationForbidden,
            format!(
                "{host} redirected (HTTP {}) to {location}, which is {reason}; Berth does not contact such addresses \
                 and sent nothing there.",
                status.as_u16()
            ),
            format!(
                "A server that redirects to internal addresses is misconfigured or hostile: check the clone URL. {ALLOW_REMEDY}."
            ),
        )
        .with_status(status.as_u16())
        .with_details(vec![format!("location: {location}"), format!("address: {ip}")]),
    )
}

/// A redirect to another origin: report where, follow never.
fn moved(from: &Url, to: &Url, stage: Stage, status: StatusCode) -> GitError {
    let repo = repository_of(to);
    // A login page's query string can carry SSO state or tokens: never repeat it.
    let location = repo.as_ref().map(Url::to_string).unwrap_or_else(|| without_query(to));
    let message = if from.scheme() == "https" && to.scheme() == "http" {
        format!(
            "The server redirected from HTTPS to plain HTTP ({location}); Berth does not downgrade a connection that \
             carries credentials."
        )
    } else if repo.is_some() {
        format!("The repository has moved to {location}: the server redirected there, and Berth does not follow a redirect to another site.")
    } else {
        format!(
            "The server redirected to another site ({location}), which is usually a login page or a moved repository; \
             Berth does not follow it."
        )
    };
    let mut e = GitError::new(
        stage,
        Code::RepositoryMoved,
        message,
        "If you trust the new location, update the repository's clone URL to it and check again. Credentials are \
         never sent to a different host on a redirect.",
    )
    .with_status(status.as_u16())
    .with_details(vec![location.clone()]);
    e.location = Some(location);
    e
}

/// The repository URL inside a Git endpoint URL (`…/repo.git/info/refs?service=…` or
/// `…/repo.git/git-upload-pack`), or `None` when the URL is not a Git endpoint.
pub(crate) fn repository_of(endpoint: &Url) -> Option<Url> {
    let path = endpoint.path();
    let base = path.strip_suffix("/info/refs").or_else(|| path.strip_suffix("/git-upload-pack"))?.to_owned();
    let mut repo = endpoint.clone();
    repo.set_path(&base);
    repo.set_query(None);
    repo.set_fragment(None);
    Some(repo)
}

/// A URL fit to show: no query string or fragment (they can carry tokens or SSO state).
pub fn without_query(url: &Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

// ---------------------------------------------------------------------------------------------
// HTTP statuses

/// Maps a non-success answer to a finding, reading a little of the body for the server's words.
pub(crate) async fn status_error(ex: Exchange, stage: Stage, auth_sent: bool) -> GitError {
    let status = ex.response.status();
    let code = status.as_u16();
    let host = ex.url.host_str().unwrap_or("the server").to_owned();
    let headers = ex.response.headers().clone();
    let body_type = mime_of(&headers);
    let e = match code {
        401 => {
            let message = if auth_sent {
                format!("{host} refused the credential (HTTP 401).")
            } else {
                format!("{host} requires a credential (HTTP 401) and none was given.")
            };
            let details = headers
                .get_all(WWW_AUTHENTICATE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .map(|v| match realm_of(v) {
                    Some(realm) => format!("realm: {realm}"),
                    None => format!("challenge: {}", v.split(' ').next().unwrap_or(v)),
                })
                .collect();
            GitError::new(
                stage,
                Code::AuthFailed,
                message,
                "Check the username and the password or token. Many hosts need an access token instead of the account \
                 password, and some need a specific username with it; a token may also have expired or been revoked.",
            )
            .with_details(details)
        }
        403 | 410 => {
            let lines = text_lines(&read_prefix(ex.response, DIAGNOSIS_BYTES).await, &body_type);
            let mut message = format!("{host} denied access to the repository (HTTP {code}).");
            if let Some(first) = lines.first() {
                message = format!("{message} The server said: {first}");
            }
            GitError::new(
                stage,
                Code::AccessDenied,
                message,
                if code == 410 {
                    "The server says this credential or access method is gone for good (some hosts retire app \
                     passwords this way). Create a new credential of the kind the host supports now."
                } else {
                    "The credential is valid but not allowed here. The server's message (in the details) usually says \
                     why: an IP allow list, a required two-step login or SSO authorisation of the token, or a \
                     missing permission or scope."
                },
            )
            .with_details(lines)
        }
        404 => GitError::new(
            stage,
            Code::RepositoryNotFoundOrNoAccess,
            format!("{host} says there is no repository at {} (HTTP 404), or this credential may not see it.", without_query(&repository_of(&ex.url).unwrap_or(ex.url.clone()))),
            "Check the URL (owner, name, a missing .git suffix) and that the credential has read access: many hosts \
             answer 404 instead of 403 to hide private repositories.",
        ),
        429 => {
            let retry = headers.get(RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(parse_retry_after);
            let mut e = GitError::new(
                stage,
                Code::RateLimited,
                match retry {
                    Some(d) => format!("{host} is rate limiting requests (HTTP 429); it asks to retry after {} seconds.", d.as_secs()),
                    None => format!("{host} is rate limiting requests (HTTP 429)."),
                },
                "Wait and check again later; frequent polling with the same credential uses up its rate limit.",
            );
            if let Some(d) = retry {
                e.details.push(format!("retry after {} seconds", d.as_secs()));
            }
            e.retry_after = retry;
            e
        }
        500..=599 => {
            let lines = text_lines(&read_prefix(ex.response, DIAGNOSIS_BYTES).await, &body_type);
            GitError::new(
                stage,
                Code::ServerError,
                format!("{host} failed with HTTP {code}."),
                "The Git server or a proxy in front of it has a problem; try again later and check the host's status page.",
            )
            .with_details(lines)
        }
        _ => GitError::protocol(stage, format!("{host} answered {} with HTTP {code}, which Git does not expect.", ex.what)),
    };
    e.with_status(code)
}

fn realm_of(challenge: &str) -> Option<String> {
    let i = challenge.to_ascii_lowercase().find("realm=")?;
    let rest = &challenge[i + "realm=".len()..];
    let realm = match rest.strip_prefix('"') {
        Some(q) => q.split('"').next().unwrap_or(q),
        None => rest.split([',', ' ']).next().unwrap_or(rest),
    };
    Some(realm.to_owned())
}

/// `Retry-After` is either seconds or an HTTP date.
pub(crate) fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let secs = (when.timestamp() - chrono::Utc::now().timestamp()).max(0);
    Some(Duration::from_secs(u64::try_from(secs).unwrap_or(0)))
}

/// The server's words in an error body: text lines with `remote: ` stripped, or an HTML page's
/// title. At most 20 lines of 300 characters.
pub(crate) fn text_lines(body: &[u8], mime: &str) -> Vec<String> {
    let text = String::from_utf8_lossy(body);
    if mime == "text/html" || looks_like_html(&text) {
        return html_title(&text).map(|t| vec![format!("HTML page: {t}")]).unwrap_or_default();
    }
    text.lines()
        .map(|l| {
            let l = l.trim();
            l.strip_prefix("remote:").map(str::trim).unwrap_or(l)
        })
        .filter(|l| !l.is_empty())
        .take(20)
        .map(|l| {
            let mut s = l.to_owned();
            crate::advert::truncate_chars(&mut s, 300);
            s
        })
        .collect()
}

fn looks_like_html(text: &str) -> bool {
    let head = text.trim_start().get(..15).unwrap_or("").to_ascii_lowercase();
    head.starts_with("<!doctype html") || head.starts_with("<html")
}

fn html_title(text: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    let start = lower.find("<title")?;
    let open_end = start + lower[start..].find('>')? + 1;
    let close = open_end + lower[open_end..].find("</title")?;
    let mut title = text.get(open_end..close)?.split_whitespace().collect::<Vec<_>>().join(" ");
    crate::advert::truncate_chars(&mut title, 200);
    (!title.is_empty()).then_some(title)
}

/// The media type without parameters, lower case.
pub(crate) fn mime_of(headers: &HeaderMap) -> String {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// Reads at most `limit` bytes of a body; errors just end the read (this is only for diagnosis).
pub(crate) async fn read_prefix(mut resp: Response, limit: usize) -> Vec<u8> {
    let mut out = Vec::new();
    while out.len() < limit {
        match resp.chunk().await {
            Ok(Some(c)) => out.extend_from_slice(&c[..c.len().min(limit - out.len())]),
            _ => break,
        }
    }
    out
}

/// Discovery answered 200 but not with a smart-HTTP advertisement: say what it was.
pub(crate) async fn not_a_git_server(ex: Exchange) -> GitError {
    let mime = mime_of(ex.response.headers());
    let host = ex.url.host_str().unwrap_or("the server").to_owned();
    let body = read_prefix(ex.response, DIAGNOSIS_BYTES).await;
    let text = String::from_utf8_lossy(&body);
    let mut details = vec![format!("content type: {}", if mime.is_empty() { "(none)" } else { &mime })];
    let what = if mime == "text/html" || looks_like_html(&text) {
        if let Some(t) = html_title(&text) {
            details.push(format!("page title: {t}"));
        }
        "an HTML page (often the login page of a single sign-on proxy, or a web page rather than the clone URL)".to_owned()
    } else if is_dumb_ref_list(&text) {
        "a plain ref list: a \"dumb\" HTTP Git server, which Berth does not support (it needs smart HTTP)".to_owned()
    } else if mime.is_empty() {
        "a response without a content type".to_owned()
    } else {
        format!("content of type {mime}")
    };
    GitError::new(
        Stage::Discovery,
        Code::NotAGitServer,
        format!("{host} did not answer as a Git smart HTTP server: it returned {what}."),
        "Use the repository's HTTPS clone URL as the host shows it (usually ending in .git). If a login page or proxy \
         sits in front of the Git server, Berth must reach the Git server itself.",
    )
    .with_status(200)
    .with_details(details)
}

/// Dumb servers serve `info/refs` as a file: `<oid>\t<refname>` lines.
fn is_dumb_ref_list(text: &str) -> bool {
    text.lines().next().and_then(|l| l.split_once('\t')).is_some_and(|(oid, name)| {
        matches!(oid.len(), 40 | 64) && oid.bytes().all(|b| b.is_ascii_hexdigit()) && name.starts_with("refs/")
    })
}

// ---------------------------------------------------------------------------------------------
// Transport errors

/// Every error in a source chain. `io::Error::source()` skips the error it wraps (it returns the
/// inner error's source), which would hide a `rustls::Error` or our `ResolveError`; so for an
/// `io::Error` we step into the wrapped error instead.
fn chain<'a>(err: &'a (dyn StdError + 'static)) -> Vec<&'a (dyn StdError + 'static)> {
    let mut out = Vec::new();
    let mut cur = Some(err);
    while let Some(e) = cur {
        out.push(e);
        if out.len() > 32 {
            break;
        }
        cur = match e.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
            Some(inner) => Some(inner as &(dyn StdError + 'static)),
            None => e.source(),
        };
    }
    out
}

fn chain_text(err: &(dyn StdError + 'static)) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for e in chain(err) {
        let s = e.to_string();
        if !out.iter().any(|o| o.contains(&s)) {
            out.push(s);
        }
    }
    out
}

/// Turns a reqwest error into a finding by looking through its causes.
pub(crate) fn classify(err: &reqwest::Error, stage: Stage, what: &str, limit: Duration) -> GitError {
    let host = err.url().and_then(|u| u.host_str()).unwrap_or("the server").to_owned();
    classify_chain(err, err.is_connect(), err.is_timeout(), stage, &host, what, limit)
}

pub(crate) fn classify_chain(
    err: &(dyn StdError + 'static),
    is_connect: bool,
    is_timeout: bool,
    stage: Stage,
    host: &str,
    what: &str,
    limit: Duration,
) -> GitError {
    let causes = chain(err);
    let details = chain_text(err);
    for e in &causes {
        if let Some(r) = e.downcast_ref::<ResolveError>() {
            return r.to_git_error();
        }
        if let Some(t) = e.downcast_ref::<rustls::Error>() {
            return tls_error(host, Some(t), &details);
        }
    }
    let text = details.join(": ").to_ascii_lowercase();
    if ["certificate", "unknownissuer", "notvalidforname", "handshake"].iter().any(|k| text.contains(k)) {
        return tls_error(host, None, &details);
    }
    let secs = limit.as_secs_f64();
    if is_timeout {
        return if is_connect {
            GitError::new(
                Stage::Connect,
                Code::Timeout,
                format!("Could not connect to {host} within {secs} s."),
                "The host does not answer: check that it is reachable from the Berth server (firewall, VPN, proxy).",
            )
        } else {
            GitError::new(
                stage,
                Code::Timeout,
                format!("{host} did not finish answering {what} within {secs} s."),
                "The Git server or something between is very slow or holds the connection open; try again, and check \
                 the server and any proxy in between.",
            )
        };
    }
    let io_kind = causes.iter().find_map(|e| e.downcast_ref::<std::io::Error>().map(std::io::Error::kind));
    use std::io::ErrorKind as K;
    let reason = match io_kind {
        Some(K::ConnectionRefused) => Some("refused the connection (nothing is listening on that port)"),
        Some(K::ConnectionReset) => Some("reset the connection"),
        Some(K::ConnectionAborted) => Some("aborted the connection"),
        Some(K::UnexpectedEof) if !is_connect => Some("closed the connection in the middle of the answer"),
        _ if is_connect => Some("could not be connected to"),
        _ => None,
    };
    match reason {
        Some(reason) => GitError::new(
            if is_connect { Stage::Connect } else { stage },
            Code::ConnectFailed,
            format!("{host} {reason}."),
            "Check the host and port in the URL and that the Berth server can reach them (firewall, VPN, proxy).",
        )
        .with_details(details),
        None => GitError::protocol(stage, format!("{what} failed: {}", details.last().map_or("unknown error", |s| s)))
            .with_details(details),
    }
}

fn tls_error(host: &str, err: Option<&rustls::Error>, details: &[String]) -> GitError {
    use rustls::CertificateError as C;
    let text = details.join(": ").to_ascii_lowercase();
    let cert = match err {
        Some(rustls::Error::InvalidCertificate(c)) => Some(c),
        _ => None,
    };
    let (what, remedy) = match cert {
        Some(C::UnknownIssuer) => (UNKNOWN_CA, UNKNOWN_CA_REMEDY),
        Some(C::NotValidForName | C::NotValidForNameContext { .. }) => (WRONG_NAME, WRONG_NAME_REMEDY),
        Some(C::Expired | C::ExpiredContext { .. }) => (EXPIRED, EXPIRED_REMEDY),
        Some(C::NotValidYet | C::NotValidYetContext { .. }) => {
            ("its certificate is not valid yet", "Check the clock of the Berth server and of the Git host.")
        }
        Some(C::Revoked) => ("its certificate has been revoked", "The host must install a new certificate."),
        None if err.is_none() && text.contains("unknownissuer") => (UNKNOWN_CA, UNKNOWN_CA_REMEDY),
        None if err.is_none() && text.contains("notvalidforname") => (WRONG_NAME, WRONG_NAME_REMEDY),
        None if err.is_none() && text.contains("expired") => (EXPIRED, EXPIRED_REMEDY),
        Some(_) => ("its certificate was rejected", "Check the host's certificate; the details say why it was rejected."),
        None if matches!(err, Some(rustls::Error::InvalidMessage(_))) => (
            "the server did not answer with TLS (is it plain HTTP on this port?)",
            "Check the URL's scheme and port: this port seems to speak plain HTTP.",
        ),
        None => (
            "the TLS handshake failed",
            "Check that the URL's port speaks HTTPS and that no proxy interferes; the details say more.",
        ),
    };
    GitError::new(Stage::Tls, Code::TlsFailed, format!("TLS with {host} failed: {what}."), remedy).with_details(details.to_vec())
}

const UNKNOWN_CA: &str = "its certificate is signed by an unknown certificate authority";
const UNKNOWN_CA_REMEDY: &str = "If the host uses a private certificate authority, add that CA's certificate to Berth's extra \
     root certificates. Otherwise something intercepts the connection (for example a TLS-inspecting proxy).";
const WRONG_NAME: &str = "its certificate is not valid for the host name";
const WRONG_NAME_REMEDY: &str = "Use the host name the certificate was issued for (check the clone URL), or have the host \
     fix its certificate.";
const EXPIRED: &str = "its certificate has expired";
const EXPIRED_REMEDY: &str = "The host must renew its certificate; also check the Berth server's clock.";

// ---------------------------------------------------------------------------------------------
// Streaming pkt-lines

/// Reads pkt-lines from a response body as it arrives, enforcing the size cap while streaming.
pub(crate) struct PktReader {
    resp: Response,
    dec: PktDecoder,
    received: u64,
    cap: u64,
    stage: Stage,
    what: String,
    limit: Duration,
    eof: bool,
}

impl PktReader {
    pub fn new(ex: Exchange, cap: u64, stage: Stage, limit: Duration) -> Self {
        PktReader { resp: ex.response, dec: PktDecoder::new(), received: 0, cap, stage, what: ex.what, limit, eof: false }
    }

    /// Later packets belong to another stage (e.g. the v0 refs after the discovery preamble).
    pub fn set_stage(&mut self, stage: Stage) {
        self.stage = stage;
    }

    /// The next packet; `None` at the end of the body.
    pub async fn next(&mut self) -> Result<Option<Pkt>, GitError> {
        loop {
            match self.dec.next_pkt() {
                Ok(Some(p)) => return Ok(Some(p)),
                Ok(None) => {}
                Err(e) => return Err(self.pkt_error(e)),
            }
            if self.eof {
                return self.dec.finish().map(|()| None).map_err(|e| self.pkt_error(e));
            }
            match self.resp.chunk().await {
                Ok(Some(chunk)) => {
                    self.received += chunk.len() as u64;
                    if self.received > self.cap {
                        return Err(self.too_large());
                    }
                    self.dec.feed(&chunk);
                }
                Ok(None) => self.eof = true,
                Err(e) => return Err(classify(&e, self.stage, &self.what, self.limit)),
            }
        }
    }

    /// The next packet, which must exist: the body ending here is a protocol error.
    pub async fn next_required(&mut self) -> Result<Pkt, GitError> {
        match self.next().await? {
            Some(p) => Ok(p),
            None => Err(ended_early(self.stage, &self.what)),
        }
    }

    fn too_large(&self) -> GitError {
        let size = if self.cap >= 1024 * 1024 {
            format!("{:.1} MiB", self.cap as f64 / (1024.0 * 1024.0))
        } else {
            format!("{} KiB", self.cap / 1024)
        };
        GitError::new(
            self.stage,
            Code::AdvertisementTooLarge,
            format!("The answer to {} is larger than the {size} limit; Berth stopped reading it.", self.what),
            "The repository advertises an unusual number of refs (or the server sends endless data). An operator can \
             raise the limit; a server supporting Git protocol v2 sends far less, because it lists only branches.",
        )
        .with_details(vec![format!("limit: {} bytes", self.cap)])
    }

    fn pkt_error(&self, e: PktError) -> GitError {
        pkt_error(e, self.stage, &self.what)
    }
}

/// A pkt-line framing error as a finding.
pub(crate) fn pkt_error(e: PktError, stage: Stage, what: &str) -> GitError {
    match e {
        PktError::Remote(msg) => GitError::protocol(stage, format!("The server reported an error: {msg}")).with_details(vec![msg]),
        other => GitError::protocol(stage, format!("The answer to {what} is not valid Git protocol: {other}.")),
    }
}

/// The body ended before the answer was complete.
pub(crate) fn ended_early(stage: Stage, what: &str) -> GitError {
    GitError::protocol(stage, format!("The answer to {what} ended early."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds_and_dates() {
        assert_eq!(parse_retry_after("17"), Some(Duration::from_secs(17)));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"), Some(Duration::ZERO));
        let future = (chrono::Utc::now() + chrono::Duration::seconds(120)).to_rfc2822();
        let d = parse_retry_after(&future).unwrap_or_default();
        assert!(d > Duration::from_secs(100) && d <= Duration::from_secs(120), "{d:?}");
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn error_body_lines() {
        let body = b"remote: Your IP address is not allowed.\n\nremote: \nPlain line\n";
        assert_eq!(text_lines(body, "text/plain"), ["Your IP address is not allowed.", "Plain line"]);
        let many: String = (0..50).map(|i| format!("remote: {i} {}\n", "x".repeat(400))).collect();
        let lines = text_lines(many.as_bytes(), "text/plain");
        assert_eq!(lines.len(), 20);
        assert!(lines.iter().all(|l| l.chars().count() <= 301));
        let html = b"<!DOCTYPE html><html><head><title>\n  Sign in \n</title></head></html>";
        assert_eq!(text_lines(html, ""), ["HTML page: Sign in"]);
    }

    #[test]
    fn realm() {
        assert_eq!(realm_of(r#"Basic realm="Berth test git""#).as_deref(), Some("Berth test git"));
        assert_eq!(realm_of("Bearer realm=x, scope=y").as_deref(), Some("x"));
        assert_eq!(realm_of("Negotiate"), None);
    }

    #[test]
    fn repository_of_endpoints() -> Result<(), url::ParseError> {
        let u = Url::parse("https://new.example/team/app.git/info/refs?service=git-upload-pack")?;
        assert_eq!(repository_of(&u).map(|u| u.to_string()).as_deref(), Some("https://new.example/team/app.git"));
        let u = Url::parse("https://new.example/team/app.git/git-upload-pack")?;
        assert_eq!(repository_of(&u).map(|u| u.to_string()).as_deref(), Some("https://new.example/team/app.git"));
        assert_eq!(repository_of(&Url::parse("https://sso.example/login?next=x")?), None);
        Ok(())
    }

    #[test]
    fn tls_errors_are_found_inside_io_errors() {
        // tokio-rustls reports handshake failures as io::Error wrapping rustls::Error; io::Error's
        // source() skips the wrapped error, so the chain walk must step into it.
        let cases = [
            (rustls::CertificateError::UnknownIssuer, "unknown certificate authority"),
            (rustls::CertificateError::NotValidForName, "not valid for the host name"),
            (rustls::CertificateError::Expired, "expired"),
        ];
        for (cert, says) in cases {
            let io = std::io::Error::new(std::io::ErrorKind::InvalidData, rustls::Error::InvalidCertificate(cert));
            let e = classify_chain(&io, true, false, Stage::Discovery, "git.example", "GET x", Duration::from_secs(1));
            assert_eq!(e.code, Code::TlsFailed);
            assert_eq!(e.stage, Stage::Tls);
            assert!(e.message.contains(says), "{}", e.message);
        }
    }

    #[test]
    fn resolver_errors_are_found_in_the_chain() {
        let inner = ResolveError::Lookup {
            host: "nope.invalid".into(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such host"),
        };
        let io = std::io::Error::other(inner);
        let e = classify_chain(&io, true, false, Stage::Discovery, "nope.invalid", "GET x", Duration::from_secs(1));
        assert_eq!((e.code, e.stage), (Code::DnsFailed, Stage::Dns));
        assert!(e.message.contains("nope.invalid"));
    }

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
