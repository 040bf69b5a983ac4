//! Outbound HTTP proxies: the proxy itself ([`Proxy`], whose password is a secret), the
//! destinations that skip it ([`NoProxy`]: names, domain suffixes, CIDRs, as curl reads
//! `no_proxy`), and Berth's own `CONNECT` ([`open_tunnel`]), used by the connect step of a check
//! and to read a proxy's refusal, whose status and words reqwest does not keep.
//!
//! A proxy resolves and connects on Berth's behalf, out of the resolver's reach, so a request
//! through a proxy is preceded by Berth's own resolution of the destination and the network
//! policy is applied to every address it finds (see `route.rs`). The proxy's own address is the
//! operator's choice and is not judged.

use crate::body::truncate_chars;
use crate::error::{NetError, Stage};
use berth_core::Code;
use ipnet::IpNet;
use secrecy::{ExposeSecret, SecretString};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use url::Url;

/// An HTTP proxy: `http://host:port`, with Basic credentials when it asks for them. `Debug`
/// and [`Proxy::shown`] never show the password.
#[derive(Clone)]
pub struct Proxy {
    /// `http://host:port/`, without user information.
    url: Url,
    username: Option<String>,
    password: Option<SecretString>,
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proxy")
            .field("url", &self.shown())
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

impl PartialEq for Proxy {
    fn eq(&self, other: &Self) -> bool {
        self.url == other.url
            && self.username == other.username
            && self.password.as_ref().map(ExposeSecret::expose_secret)
                == other.password.as_ref().map(ExposeSecret::expose_secret)
    }
}

impl Proxy {
    /// Reads `http://[user[:password]@]host[:port]`. `password` (from a file or the
    /// environment) wins over one written in the URL. The port must be written: defaults
    /// differ between tools (curl 1080, squid 3128, tinyproxy 8888), so Berth does not guess.
    pub fn parse(text: &str, password: Option<SecretString>) -> Result<Proxy, String> {
        let text = text.trim();
        let with_scheme = if text.contains("://") { text.to_owned() } else { format!("http://{text}") };
        let mut url = Url::parse(&with_scheme).map_err(|e| format!("the proxy is not a URL ({e})"))?;
        if url.scheme() != "http" {
            return Err(format!(
                "the proxy's scheme is {}: Berth speaks to proxies in plain HTTP (http://host:port; HTTPS \
                 destinations still go through CONNECT and TLS end to end)",
                url.scheme()
            ));
        }
        if url.host_str().is_none() {
            return Err("the proxy URL has no host".into());
        }
        if url.port().is_none() {
            return Err("the proxy URL has no port (write it as http://host:port)".into());
        }
        if !matches!(url.path(), "" | "/") || url.query().is_some() {
            return Err("the proxy URL must be http://host:port, without a path".into());
        }
        let username = Some(decode(url.username())).filter(|u| !u.is_empty());
        let in_url = url.password().map(|p| SecretString::from(decode(p)));
        let password = password.or(in_url);
        if password.is_some() && username.is_none() {
            return Err("a proxy password is set but the proxy URL names no user (http://user@host:port)".into());
        }
        let _ = url.set_username("");
        let _ = url.set_password(None);
        Ok(Proxy { url, username, password })
    }

    /// `http://host:port`, fit for messages (never credentials).
    pub fn shown(&self) -> String {
        self.url.as_str().trim_end_matches('/').to_owned()
    }

    pub fn has_credentials(&self) -> bool {
        self.username.is_some()
    }

    pub(crate) fn host(&self) -> &str {
        self.url.host_str().unwrap_or_default()
    }

    pub(crate) fn port(&self) -> u16 {
        self.url.port_or_known_default().unwrap_or(80)
    }

    /// The reqwest proxy sending every request through this one. reqwest marks the
    /// `Proxy-Authorization` header sensitive, so its `Debug` never prints it.
    pub(crate) fn to_reqwest(&self) -> Result<reqwest::Proxy, String> {
        let p = reqwest::Proxy::all(self.url.as_str()).map_err(|e| format!("the proxy URL is refused: {e}"))?;
        Ok(match &self.username {
            Some(user) => p.basic_auth(user, self.password.as_ref().map_or("", |s| s.expose_secret())),
            None => p,
        })
    }

    /// The `Proxy-Authorization` header value, when the proxy has credentials.
    fn authorization(&self) -> Option<String> {
        let user = self.username.as_ref()?;
        let pass = self.password.as_ref().map_or("", |s| s.expose_secret());
        Some(format!("Basic {}", base64_lite::encode(format!("{user}:{pass}").as_bytes())))
    }
}

fn decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Destinations reached directly although a proxy is set: `*` (everything), host names (which
/// also cover their subdomains: `example.com` and `.example.com` both match `git.example.com`),
/// IP addresses and CIDRs. A CIDR matches an IP address in the URL, or a name whose every
/// address lies inside it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NoProxy {
    all: bool,
    names: Vec<String>,
    nets: Vec<IpNet>,
}

impl NoProxy {
    /// A comma-separated list (whitespace ignored).
    pub fn parse(text: &str) -> Result<NoProxy, String> {
        let mut out = NoProxy::default();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            if entry == "*" {
                out.all = true;
                continue;
            }
            let bare = entry.strip_prefix('[').and_then(|e| e.strip_suffix(']')).unwrap_or(entry);
            if let Ok(net) = bare.parse::<IpNet>() {
                out.nets.push(net);
                continue;
            }
            if let Ok(ip) = bare.parse::<IpAddr>() {
                out.nets.push(IpNet::from(ip));
                continue;
            }
            let name =
                entry.trim_start_matches("*.").trim_start_matches('.').trim_end_matches('.').to_ascii_lowercase();
            let valid = !name.is_empty()
                && name.split('.').all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
            if !valid {
                return Err(format!(
                    "no_proxy entry {entry:?} is not a host name, domain suffix, IP address or CIDR (ports are not \
                     written there)"
                ));
            }
            out.names.push(name);
        }
        Ok(out)
    }

    /// Whether `host` (as in a URL, lower case; an IPv6 address with or without brackets) is
    /// reached directly, judged by its name or literal address only.
    pub fn matches_host(&self, host: &str) -> bool {
        if self.all {
            return true;
        }
        let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return self.nets.iter().any(|n| n.contains(&ip));
        }
        let host = bare.trim_end_matches('.').to_ascii_lowercase();
        self.names.iter().any(|n| host == *n || host.ends_with(&format!(".{n}")))
    }

    /// Whether a name whose addresses are `addrs` is reached directly by a CIDR entry.
    pub fn matches_addresses(&self, addrs: &[IpAddr]) -> bool {
        !addrs.is_empty() && addrs.iter().all(|ip| self.nets.iter().any(|n| n.contains(ip)))
    }
}

/// What a proxy answered to `CONNECT`.
#[derive(Debug, Clone)]
pub(crate) struct TunnelAnswer {
    pub status: u16,
    pub reason: String,
    /// The first words of the body (an error page's title or text), when it sent one.
    pub text: Vec<String>,
}

/// Connects to the proxy (`Stage::Connect`, `proxy_connect_failed` when it cannot) and asks it
/// for a tunnel to `host:port`. Returns the open stream, its address and the answer, whatever
/// the status; the caller judges it.
pub(crate) async fn open_tunnel(
    proxy: &Proxy,
    proxy_addrs: &[SocketAddr],
    host: &str,
    port: u16,
    limit: Duration,
) -> Result<(TcpStream, SocketAddr, TunnelAnswer), NetError> {
    let (mut stream, addr) = connect_proxy(proxy, proxy_addrs, limit).await?;
    let authority = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let mut request = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
    if let Some(auth) = proxy.authorization() {
        request.push_str(&format!("Proxy-Authorization: {auth}\r\n"));
    }
    request.push_str("\r\n");
    let exchange = async {
        stream.write_all(request.as_bytes()).await?;
        read_head(&mut stream).await
    };
    let head = match tokio::time::timeout(limit, exchange).await {
        Ok(Ok(head)) => head,
        Ok(Err(e)) => return Err(proxy_connect_failed(proxy, format!("the proxy closed the connection: {e}"))),
        Err(_) => {
            return Err(proxy_connect_failed(
                proxy,
                format!("the proxy did not answer CONNECT within {} s", limit.as_secs_f64()),
            ))
        }
    };
    let answer = parse_head(&head).ok_or_else(|| {
        NetError::new(
            Stage::Connect,
            Code::ProxyRefused,
            format!("The proxy {} did not answer CONNECT in HTTP.", proxy.shown()),
            "Check that the proxy setting names an HTTP proxy (host and port).",
        )
    })?;
    Ok((stream, addr, answer))
}

/// Opens (and drops) one connection to the proxy.
pub(crate) async fn connect_only(proxy: &Proxy, addrs: &[SocketAddr], limit: Duration) -> Result<SocketAddr, NetError> {
    connect_proxy(proxy, addrs, limit).await.map(|(_, addr)| addr)
}

async fn connect_proxy(
    proxy: &Proxy,
    addrs: &[SocketAddr],
    limit: Duration,
) -> Result<(TcpStream, SocketAddr), NetError> {
    let mut failures = Vec::new();
    for addr in addrs {
        match tokio::time::timeout(limit, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => return Ok((s, *addr)),
            Ok(Err(e)) => failures.push(format!("{addr}: {e}")),
            Err(_) => failures.push(format!("{addr}: no answer within {} s", limit.as_secs_f64())),
        }
    }
    Err(proxy_connect_failed(proxy, failures.join("; ")))
}

/// Every address of the proxy's host. The proxy is the operator's choice: its address is not
/// judged by the network policy.
pub(crate) async fn proxy_addresses(
    proxy: &Proxy,
    lookup: Option<&std::sync::Arc<dyn crate::Lookup>>,
) -> Result<Vec<SocketAddr>, NetError> {
    let host = proxy.host();
    let port = proxy.port();
    let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let found: std::io::Result<Vec<SocketAddr>> = match lookup {
        Some(l) => l.lookup(bare.to_owned()).await.map(|v| v.into_iter().map(|ip| SocketAddr::new(ip, port)).collect()),
        None => tokio::net::lookup_host((bare, port)).await.map(Iterator::collect),
    };
    match found {
        Ok(v) if !Vec::is_empty(&v) => Ok(v),
        Ok(_) => Err(proxy_connect_failed(proxy, format!("{bare} resolves to no address"))),
        Err(e) => Err(proxy_connect_failed(proxy, format!("{bare} does not resolve: {e}"))),
    }
}

pub(crate) fn proxy_connect_failed(proxy: &Proxy, why: String) -> NetError {
    NetError::new(
        Stage::Connect,
        Code::ProxyConnectFailed,
        format!("Could not connect to the proxy {}: {why}.", proxy.shown()),
        "Check the proxy setting ([network] proxy, BERTH_PROXY or the integration's proxy) and that the proxy \
         runs and is reachable from the Berth server.",
    )
    .with_details(vec![via(proxy)])
}

/// The detail every finding of a proxied request carries.
pub(crate) fn via(proxy: &Proxy) -> String {
    format!("through proxy {}", proxy.shown())
}

/// The proxy asked for credentials (407; some proxies, tinyproxy among them, answer a `CONNECT`
/// with wrong credentials 401), or refused the ones sent.
pub(crate) fn proxy_auth_failed(proxy: &Proxy, status: u16) -> NetError {
    let (message, remedy) = if proxy.has_credentials() {
        (
            format!("The proxy {} refused the user name and password Berth sent (HTTP {status}).", proxy.shown()),
            "Check the proxy user in the proxy URL and its password (proxy_password_file or BERTH_PROXY_PASSWORD).",
        )
    } else {
        (
            format!(
                "The proxy {} demands authentication (HTTP 407) and Berth has no proxy credentials.",
                proxy.shown()
            ),
            "Name the proxy user in the proxy URL (http://user@host:port) and give its password in \
             proxy_password_file or BERTH_PROXY_PASSWORD.",
        )
    };
    NetError::new(Stage::Connect, Code::ProxyAuthFailed, message, remedy)
        .with_status(407)
        .with_details(vec![via(proxy)])
}

/// The proxy answered for a host it could not reach (500, 502, 503 or 504 to a `CONNECT`, or
/// its own error page to a plain HTTP request): what happened beyond the proxy, with the usual
/// code (`connect_failed`; `timeout` for 504), so a host that is down reads the same through a
/// proxy as without one, over HTTPS and plain HTTP alike.
pub(crate) fn unreachable_beyond(
    proxy_shown: &str,
    host: &str,
    port: u16,
    status: u16,
    text: Vec<String>,
    stage: Stage,
) -> NetError {
    let (code, what, remedy) = if status == 504 {
        (
            Code::Timeout,
            "did not get an answer from",
            "The host did not answer the proxy in time: check that it is up and reachable from the proxy.",
        )
    } else {
        (
            Code::ConnectFailed,
            "could not connect to",
            "Check the host and port in the URL, that the host is up, and that the proxy may reach it (its rules \
             and its network).",
        )
    };
    let mut details = vec![format!("through proxy {proxy_shown}")];
    details.extend(text);
    NetError::new(stage, code, format!("The proxy {proxy_shown} {what} {host}:{port} (HTTP {status})."), remedy)
        .with_status(status)
        .with_details(details)
}

/// Whether a plain HTTP answer with a 5xx status came from the proxy itself rather than from the
/// host behind it: only then is it the proxy's report that the host could not be reached. The
/// marks: RFC 9209's `Proxy-Status` with an error, Squid's `X-Squid-Error`, tinyproxy's
/// `Server` (a proxy forwarding the host's own answer keeps the host's headers).
pub(crate) fn answered_by_proxy(headers: &reqwest::header::HeaderMap) -> bool {
    let has = |name: &str, test: &dyn Fn(&str) -> bool| {
        headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).any(|v| test(&v.to_ascii_lowercase()))
    };
    has("proxy-status", &|v| v.contains("error="))
        || has("x-squid-error", &|_| true)
        || has("server", &|v| v.starts_with("tinyproxy"))
}

/// The proxy answered `CONNECT` with something other than 200 (or 407).
pub(crate) fn proxy_refused(proxy: &Proxy, host: &str, port: u16, answer: &TunnelAnswer) -> NetError {
    if matches!(answer.status, 500 | 502 | 503 | 504) {
        return unreachable_beyond(&proxy.shown(), host, port, answer.status, answer.text.clone(), Stage::Connect);
    }
    let remedy = match answer.status {
        403 => {
            "The proxy's rules forbid this destination or port: ask its operator to allow it, or list the host \
                in no_proxy if Berth may reach it directly."
        }
        _ => "The proxy refused to open a tunnel to the host; its words are in the details.",
    };
    let mut details = vec![via(proxy)];
    details.extend(answer.text.iter().cloned());
    NetError::new(
        Stage::Connect,
        Code::ProxyRefused,
        format!(
            "The proxy {} refused to open a tunnel to {host}:{port}: HTTP {} {}.",
            proxy.shown(),
            answer.status,
            answer.reason
        ),
        remedy,
    )
    .with_status(answer.status)
    .with_details(details)
}

/// Reads an answer's head and what of the body has arrived with it (at most 16 KiB).
async fn read_head(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            // A refusal's page usually arrives with the head; a tunnel's first byte is ours.
            let status_ok = buf.starts_with(b"HTTP/1.1 200") || buf.starts_with(b"HTTP/1.0 200");
            if status_ok || buf.len() > end + 4 || buf.len() >= 16 * 1024 {
                break;
            }
            // Give the body a moment to follow the head.
            match tokio::time::timeout(Duration::from_millis(200), stream.read(&mut chunk)).await {
                Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                _ => {}
            }
            break;
        }
        if buf.len() >= 16 * 1024 {
            break;
        }
    }
    Ok(buf)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn parse_head(raw: &[u8]) -> Option<TunnelAnswer> {
    let end = find(raw, b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let status_line = head.lines().next()?;
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next()?;
    if !version.starts_with("HTTP/") {
        return None;
    }
    let status: u16 = parts.next()?.parse().ok()?;
    let mut reason = parts.next().unwrap_or("").trim().to_owned();
    truncate_chars(&mut reason, 120);
    let body = &raw[end + 4..];
    let mime = head
        .lines()
        .find_map(|l| l.split_once(':').filter(|(k, _)| k.trim().eq_ignore_ascii_case("content-type")))
        .map(|(_, v)| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
        .unwrap_or_default();
    let text = crate::body::text_lines(body, &mime).into_iter().take(3).collect();
    Some(TunnelAnswer { status, reason, text })
}

/// Base64 for one header value, without another dependency.
mod base64_lite {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    pub fn encode(input: &[u8]) -> String {
        let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
        for chunk in input.chunks(3) {
            let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(char::from(TABLE[((n >> (18 - 6 * i)) & 63) as usize]));
                } else {
                    out.push('=');
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proxys_own_error_page_is_told_from_the_hosts() {
        use reqwest::header::{HeaderMap, HeaderValue};
        let with = |name: &'static str, value: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(name, HeaderValue::from_static(value));
            h
        };
        assert!(answered_by_proxy(&with("server", "tinyproxy/1.11.1")));
        assert!(answered_by_proxy(&with("x-squid-error", "ERR_CONNECT_FAIL 111")));
        assert!(answered_by_proxy(&with("proxy-status", "proxy.corp; error=destination_unavailable")));
        assert!(!answered_by_proxy(&with("proxy-status", "proxy.corp")), "no error: the host's answer");
        assert!(!answered_by_proxy(&with("server", "nginx")), "a host's own 502");
        assert!(!answered_by_proxy(&HeaderMap::new()));
        let e = unreachable_beyond("http://p:3128", "git.corp", 443, 504, vec![], Stage::Connect);
        assert_eq!(e.code, Code::Timeout);
        let e = unreachable_beyond("http://p:3128", "git.corp", 443, 502, vec!["Bad Gateway".into()], Stage::Connect);
        assert_eq!(e.code, Code::ConnectFailed);
        assert!(e.message.contains("could not connect to git.corp:443 (HTTP 502)"), "{}", e.message);
        assert_eq!(e.details, vec!["through proxy http://p:3128".to_owned(), "Bad Gateway".to_owned()]);
    }

    #[test]
    fn proxy_urls_keep_the_password_out_of_sight() -> Result<(), String> {
        let p = Proxy::parse("http://bob:in-url-secret@proxy.corp:3128", None)?;
        assert_eq!(p.shown(), "http://proxy.corp:3128");
        let shown = format!("{p:?}");
        assert!(!shown.contains("in-url-secret") && shown.contains("bob"), "{shown}");
        let p = Proxy::parse("proxy.corp:3128", None)?;
        assert_eq!(p.shown(), "http://proxy.corp:3128");
        assert!(!p.has_credentials());
        let p = Proxy::parse("http://bob@proxy.corp:3128", Some(SecretString::from("from-file")))?;
        assert_eq!(p.authorization().as_deref(), Some("Basic Ym9iOmZyb20tZmlsZQ=="));
        assert!(Proxy::parse("socks5://proxy.corp:1080", None).is_err());
        assert!(Proxy::parse("http://proxy.corp", None).is_err());
        assert!(Proxy::parse("http://proxy.corp:3128/path", None).is_err());
        assert!(Proxy::parse("http://proxy.corp:3128", Some(SecretString::from("x"))).is_err());
        Ok(())
    }

    #[test]
    fn no_proxy_reads_names_suffixes_and_cidrs() -> Result<(), String> {
        let n = NoProxy::parse(" example.com, .corp.internal ,10.0.0.0/8, ::1, *.dev.test ")?;
        assert!(n.matches_host("example.com") && n.matches_host("git.example.com"));
        assert!(!n.matches_host("www.notexample.com"));
        assert!(n.matches_host("bitbucket.corp.internal") && n.matches_host("corp.internal"));
        assert!(n.matches_host("10.1.2.3") && n.matches_host("[::1]") && !n.matches_host("11.0.0.1"));
        assert!(n.matches_host("a.dev.test"));
        let ten: IpAddr = "10.9.9.9".parse().map_err(|e| format!("{e}"))?;
        let pub_ip: IpAddr = "8.8.8.8".parse().map_err(|e| format!("{e}"))?;
        assert!(n.matches_addresses(&[ten]) && !n.matches_addresses(&[ten, pub_ip]));
        assert!(NoProxy::parse("*")?.matches_host("anything.example"));
        assert!(NoProxy::parse("git.example.com:7990").is_err());
        assert!(!NoProxy::parse("")?.matches_host("example.com"));
        Ok(())
    }

    #[test]
    fn connect_answers_are_read_with_their_words() {
        let raw = b"HTTP/1.1 403 Access violation\r\nContent-Type: text/html\r\n\r\n<html><head><title>403 Access violation</title></head></html>";
        let a = parse_head(raw);
        assert_eq!(a.as_ref().map(|a| (a.status, a.reason.as_str())), Some((403, "Access violation")));
        assert!(a.is_some_and(|a| a.text.iter().any(|t| t.contains("Access violation"))));
        assert!(parse_head(b"SSH-2.0-OpenSSH\r\n\r\n").is_none());
    }
}
