//! JSON REST requests to a Git host's API under the same rules as Git traffic: the shared pooled
//! client (policy-enforcing resolver, timeouts, extra roots), IP literals checked before
//! connecting, no redirects followed (credentials never reach another URL), a cap on the body and
//! transport failures reported as [`GitError`]s.
//!
//! Any HTTP status comes back as an [`ApiResponse`]: the caller knows what a 401 or a 404 means on
//! its host. Only redirects and transport failures are errors here. Errors carry the stage
//! [`Stage::Discovery`] (or `Dns`/`Connect`/`Tls` for those failures); callers that report them
//! under another check step relabel the step and keep the code, message and remedy.

pub use crate::transport::without_query;
use crate::error::{GitError, Stage};
use crate::transport;
use crate::{GitAuth, GitClient};
use berth_core::Code;
use bytes::{Bytes, BytesMut};
use reqwest::header::{HeaderMap, HeaderName, RETRY_AFTER};
use reqwest::Method;
use secrecy::ExposeSecret;
use std::time::Duration;
use url::Url;

/// Default cap on a REST answer's body.
pub const DEFAULT_API_BODY_CAP: usize = 4 * 1024 * 1024;

/// One REST request. Build with [`ApiRequest::get`] and adjust the public fields.
#[derive(Debug)]
pub struct ApiRequest<'a> {
    pub method: Method,
    pub url: Url,
    pub auth: Option<&'a GitAuth>,
    pub headers: HeaderMap,
    /// Bytes of body read at most; a longer body is an error.
    pub max_body: usize,
    /// Limit for the whole exchange; the client's request timeout when `None`.
    pub timeout: Option<Duration>,
}

impl<'a> ApiRequest<'a> {
    pub fn get(url: Url, auth: Option<&'a GitAuth>) -> Self {
        ApiRequest {
            method: Method::GET,
            url,
            auth,
            headers: HeaderMap::new(),
            max_body: DEFAULT_API_BODY_CAP,
            timeout: None,
        }
    }
}

/// A REST answer with its whole (capped) body. Holds no request header, so no credential.
#[derive(Debug, Clone)]
pub struct ApiResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The URL that answered (the request URL: redirects are not followed).
    pub url: Url,
    /// For messages: "GET https://host/path", without the query.
    pub what: String,
}

impl ApiResponse {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// A header as text, when present and printable.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = HeaderName::from_bytes(name.as_bytes()).ok()?;
        self.headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim)
    }

    /// The media type without parameters, lower case ("" when absent).
    pub fn mime(&self) -> String {
        transport::mime_of(&self.headers)
    }

    /// `Retry-After` in seconds or as an HTTP date.
    pub fn retry_after(&self) -> Option<Duration> {
        self.headers.get(RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(transport::parse_retry_after)
    }

    /// The body as the server's words: text lines (`remote: ` stripped) or an HTML page's title,
    /// at most 20 lines of 300 characters.
    pub fn text_lines(&self) -> Vec<String> {
        transport::text_lines(&self.body, &self.mime())
    }

    /// The host (and port, when not the default) that answered.
    pub fn host(&self) -> String {
        authority(&self.url)
    }
}

/// `host[:port]` of a URL, the port only when it is not the scheme's default.
pub fn authority(url: &Url) -> String {
    let host = match url.host() {
        Some(url::Host::Ipv6(ip)) => format!("[{ip}]"),
        Some(h) => h.to_string(),
        None => String::new(),
    };
    match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host,
    }
}

impl GitClient {
    /// Sends one REST request under the network policy and reads the whole answer (capped).
    /// Every status is returned; a redirect or a transport failure is an error.
    pub async fn api_request(&self, req: ApiRequest<'_>) -> Result<ApiResponse, GitError> {
        let stage = Stage::Discovery;
        let cfg = self.config();
        let url = req.url;
        check_api_url(&url)?;
        transport::check_url_host(&cfg.policy, &url)?;
        let limit = req.timeout.unwrap_or(cfg.request_timeout);
        let what = format!("{} {}", req.method, transport::without_query(&url));
        let mut rb = self.http().request(req.method.clone(), url.clone()).headers(req.headers).timeout(limit);
        // reqwest marks both headers sensitive, so its Debug never prints them either.
        rb = match req.auth {
            Some(GitAuth::Basic { username, password }) => rb.basic_auth(username, Some(password.expose_secret())),
            Some(GitAuth::Bearer(token)) => rb.bearer_auth(token.expose_secret()),
            None => rb,
        };
        tracing::debug!(request = %what, "api request");
        let mut response = rb.send().await.map_err(|e| transport::classify(&e, stage, &what, limit))?;
        let status = response.status();
        tracing::debug!(request = %what, status = status.as_u16(), "api response");
        if status.is_redirection() {
            return Err(redirected(&cfg.policy, &url, response.headers(), status, &what));
        }
        let headers = response.headers().clone();
        let mut body = BytesMut::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > req.max_body {
                        return Err(GitError::new(
                            stage,
                            Code::ProtocolError,
                            format!("The answer to {what} is larger than {} KiB; Berth stopped reading it.", req.max_body / 1024),
                            "The host sent far more than this API answer should hold; check that the API URL points at \
                             the Git host's REST API and that no proxy rewrites the traffic.",
                        )
                        .with_status(status.as_u16())
                        .with_details(vec![format!("limit: {} bytes", req.max_body)]));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => return Err(transport::classify(&e, stage, &what, limit)),
            }
        }
        Ok(ApiResponse { status: status.as_u16(), headers, body: body.freeze(), url, what })
    }
}

fn check_api_url(url: &Url) -> Result<(), GitError> {
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(GitError::new(
            Stage::Discovery,
            Code::InvalidUrl,
            format!("{} is not an HTTP(S) API URL.", transport::without_query(url)),
            "Configure the host's REST API URL, such as https://api.bitbucket.org/2.0 or https://git.example.com/rest.",
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(GitError::new(
            Stage::Discovery,
            Code::SecretInUrl,
            "The API URL contains a user name or password; Berth keeps credentials separate from URLs.",
            "Remove the user name and password from the API URL.",
        ));
    }
    Ok(())
}

/// A REST API does not redirect a well-formed request; a redirect means a moved (or renamed)
/// resource, a login page or a proxy. It is reported, never followed.
fn redirected(
    policy: &berth_core::NetworkPolicy,
    from: &Url,
    headers: &HeaderMap,
    status: reqwest::StatusCode,
    what: &str,
) -> GitError {
    let code = status.as_u16();
    let next = match transport::redirect_target(from, headers, Stage::Discovery, status) {
        Ok(n) => n,
        Err(e) => return e,
    };
    if let Some(e) = transport::forbidden_redirect(policy, from, &next, Stage::Discovery, status) {
        return e;
    }
    let location = transport::without_query(&next);
    let same_origin = next.origin() == from.origin();
    let message = if same_origin {
        format!(
            "{what} was redirected (HTTP {code}) to {location}: the resource has moved or been renamed; Berth does not \
             follow redirects with credentials."
        )
    } else {
        format!(
            "{what} was redirected (HTTP {code}) to another site, {location} (often a login page or a moved host); \
             Berth does not follow it and sent nothing there."
        )
    };
    let mut e = GitError::new(
        Stage::Discovery,
        Code::RepositoryMoved,
        message,
        "If the repository was renamed or moved, update the clone URL (or the integration's API URL) to the new \
         location and check again. Credentials are never sent along a redirect.",
    )
    .with_status(code)
    .with_details(vec![location.clone()]);
    e.location = Some(location);
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authority_shows_non_default_ports_only() -> Result<(), url::ParseError> {
        assert_eq!(authority(&Url::parse("https://api.bitbucket.org/2.0")?), "api.bitbucket.org");
        assert_eq!(authority(&Url::parse("https://git.example:7990/rest")?), "git.example:7990");
        assert_eq!(authority(&Url::parse("http://[::1]:8080/")?), "[::1]:8080");
        Ok(())
    }

    #[test]
    fn api_urls_with_credentials_are_refused() -> Result<(), url::ParseError> {
        let e = check_api_url(&Url::parse("https://jo:secret-token@api.example/2.0")?).err();
        assert_eq!(e.as_ref().map(|e| e.code), Some(Code::SecretInUrl));
        assert!(e.is_some_and(|e| !e.message.contains("secret-token")));
        assert!(check_api_url(&Url::parse("ftp://api.example/")?).is_err());
        Ok(())
    }

    #[test]
    fn redirects_are_reported_with_the_location() -> Result<(), url::ParseError> {
        let from = Url::parse("https://api.github.com/repos/o/r")?;
        let mut h = HeaderMap::new();
        h.insert(
            reqwest::header::LOCATION,
            reqwest::header::HeaderValue::from_static("https://u:p@evil.example/x?token=1"),
        );
        let policy = berth_core::NetworkPolicy::default();
        let e = redirected(&policy, &from, &h, reqwest::StatusCode::FOUND, "GET https://api.github.com/repos/o/r");
        assert_eq!(e.code, Code::RepositoryMoved);
        assert_eq!(e.location.as_deref(), Some("https://evil.example/x"));
        assert!(e.message.contains("another site") && !e.message.contains("u:p") && !e.message.contains("token=1"));
        Ok(())
    }

    #[test]
    fn redirects_into_forbidden_addresses_are_destination_forbidden() -> Result<(), url::ParseError> {
        let from = Url::parse("https://api.github.com/repos/o/r")?;
        let policy = berth_core::NetworkPolicy::default();
        for location in ["http://169.254.169.254/latest/meta-data/?x=1", "http://[::ffff:127.0.0.1]:8080/", "http://0x7f.1/"] {
            let mut h = HeaderMap::new();
            h.insert(reqwest::header::LOCATION, reqwest::header::HeaderValue::from_static(location));
            let e = redirected(&policy, &from, &h, reqwest::StatusCode::FOUND, "GET https://api.github.com/repos/o/r");
            assert_eq!((e.code, e.http_status), (Code::DestinationForbidden, Some(302)), "{location}: {e:?}");
            assert!(!e.message.contains("x=1"), "{}", e.message);
        }
        Ok(())
    }
}
