//! Sending one request under the policy, and the redirect rules. reqwest never follows a
//! redirect; [`NetClient::send`] judges each one: a target that is a forbidden IP literal is
//! `destination_forbidden`, another origin is `repository_moved` (nothing is sent there), and a
//! same-origin target is followed only when the request asks for it (Git discovery does, REST
//! calls do not).

use crate::body::{mime_of, read_prefix, text_lines, DIAGNOSIS_BYTES};
use crate::error::{NetError, Stage};
use crate::proxy::{answered_by_proxy, proxy_auth_failed, unreachable_beyond, Proxy};
use crate::resolve::{check_url_host, literal_ip, ALLOW_REMEDY};
use crate::urls::{repository_of, without_query};
use crate::{Auth, NetClient};
use berth_core::{Code, NetworkPolicy};
use bytes::Bytes;
use reqwest::header::{HeaderMap, LOCATION};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use secrecy::ExposeSecret;
use std::time::Duration;
use url::Url;

/// What a redirect answer leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redirects {
    /// Follow a same-origin redirect (at most `max_redirects`), as git does; report the rest.
    FollowSameOrigin,
    /// Report every redirect: a REST API does not redirect a well-formed request.
    Report,
}

/// One request. The credential goes only to `url`'s origin.
#[derive(Debug)]
pub struct Request<'a> {
    pub method: Method,
    pub url: Url,
    /// The stage a failure is reported under.
    pub stage: Stage,
    pub headers: HeaderMap,
    pub body: Option<Bytes>,
    pub auth: Option<&'a Auth>,
    pub redirects: Redirects,
    /// Limit for this exchange; the client's request timeout when `None`.
    pub timeout: Option<Duration>,
    /// The URL's path is itself a secret (a Slack incoming-webhook URL): log lines and errors
    /// name only its origin.
    pub secret_path: bool,
}

impl<'a> Request<'a> {
    pub fn new(method: Method, url: Url, stage: Stage, auth: Option<&'a Auth>) -> Self {
        Request {
            method,
            url,
            stage,
            headers: HeaderMap::new(),
            body: None,
            auth,
            redirects: Redirects::FollowSameOrigin,
            timeout: None,
            secret_path: false,
        }
    }
}

/// An answer that is not a redirect, its body unread.
#[derive(Debug)]
pub struct Exchange {
    pub response: Response,
    /// The URL that answered, after same-origin redirects.
    pub url: Url,
    /// For messages: "GET https://host/repo.git/info/refs".
    pub what: String,
    /// The proxy the request went through (`http://host:port`), if any.
    pub via_proxy: Option<String>,
}

/// Attaches the credential. reqwest marks both headers sensitive, so its `Debug` never prints them.
fn with_auth(rb: RequestBuilder, auth: Option<&Auth>) -> RequestBuilder {
    match auth {
        Some(Auth::Basic { username, password }) => rb.basic_auth(username, Some(password.expose_secret())),
        Some(Auth::Bearer(token)) => rb.bearer_auth(token.expose_secret()),
        None => rb,
    }
}

impl NetClient {
    /// Sends `req` under the network policy and the redirect rules. Every status but a redirect
    /// comes back as an [`Exchange`]; a transport failure or a redirect not followed is an error.
    pub async fn send(&self, req: Request<'_>) -> Result<Exchange, NetError> {
        let cfg = self.config();
        let limit = req.timeout.unwrap_or(cfg.request_timeout);
        let mut url = req.url;
        let mut hops = 0u8;
        loop {
            check_url_host(&cfg.policy, &url)?;
            let route = self.route(&url).await?;
            let what = if req.secret_path {
                format!("{} {}/…", req.method, url.origin().ascii_serialization())
            } else {
                format!("{} {}", req.method, without_query(&url))
            };
            let mut rb = route.client.request(req.method.clone(), url.clone()).headers(req.headers.clone());
            if let Some(t) = req.timeout {
                rb = rb.timeout(t);
            }
            if let Some(body) = &req.body {
                rb = rb.body(body.clone());
            }
            rb = with_auth(rb, req.auth);
            tracing::debug!(request = %what, "http request");
            let response = match rb.send().await {
                Ok(r) => r,
                Err(e) => return Err(self.transport_error(&e, &route, &url, req.stage, &what, limit).await),
            };
            let status = response.status();
            tracing::debug!(request = %what, status = status.as_u16(), "http response");
            if let Some(proxy) = route.proxy {
                // Plain HTTP goes to the proxy in absolute form: its 407 is its own answer.
                if url.scheme() == "http" && status == StatusCode::PROXY_AUTHENTICATION_REQUIRED {
                    return Err(proxy_auth_failed(proxy, 407));
                }
                // ... and so is its error page for a host it could not reach.
                let gateway = matches!(status.as_u16(), 500 | 502 | 503 | 504);
                if url.scheme() == "http" && gateway && answered_by_proxy(response.headers()) {
                    let shown = proxy.shown();
                    let host = url.host_str().unwrap_or_default().to_owned();
                    let port = url.port_or_known_default().unwrap_or(80);
                    let mime = mime_of(response.headers());
                    let text = text_lines(&read_prefix(response, DIAGNOSIS_BYTES).await, &mime);
                    return Err(unreachable_beyond(&shown, &host, port, status.as_u16(), text, req.stage));
                }
            }
            if !status.is_redirection() {
                let via_proxy = route.proxy.map(Proxy::shown);
                return Ok(Exchange { response, url, what, via_proxy });
            }
            let next = judge_redirect(&cfg.policy, &url, response.headers(), status, req.stage, req.redirects, &what)?;
            hops += 1;
            if hops > cfg.max_redirects {
                return Err(NetError::protocol(
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
}

/// Where a redirect answer leads: `Ok` with a same-origin URL to follow, or the finding.
fn judge_redirect(
    policy: &NetworkPolicy,
    from: &Url,
    headers: &HeaderMap,
    status: StatusCode,
    stage: Stage,
    redirects: Redirects,
    what: &str,
) -> Result<Url, NetError> {
    let next = redirect_target(from, headers, stage, status)?;
    if let Some(e) = forbidden_redirect(policy, from, &next, stage, status) {
        return Err(e);
    }
    match redirects {
        Redirects::Report => Err(reported(from, &next, stage, status, what)),
        Redirects::FollowSameOrigin if next.origin() != from.origin() => Err(moved(from, &next, stage, status)),
        Redirects::FollowSameOrigin => Ok(next),
    }
}

fn redirect_target(url: &Url, headers: &HeaderMap, stage: Stage, status: StatusCode) -> Result<Url, NetError> {
    let raw = headers.get(LOCATION).and_then(|v| v.to_str().ok()).ok_or_else(|| {
        NetError::protocol(
            stage,
            format!("The server answered HTTP {} without a usable Location header.", status.as_u16()),
        )
        .with_status(status.as_u16())
    })?;
    let mut next = url.join(raw).map_err(|e| {
        NetError::protocol(stage, format!("The server redirected to an invalid location: {e}"))
            .with_status(status.as_u16())
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
fn forbidden_redirect(
    policy: &NetworkPolicy,
    from: &Url,
    to: &Url,
    stage: Stage,
    status: StatusCode,
) -> Option<NetError> {
    let ip = literal_ip(to)?;
    let reason = policy.refusal(ip)?;
    let host = from.host_str().unwrap_or("the server");
    let location = without_query(to);
    Some(
        NetError::new(
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

/// `repository_moved` with the new location in `details` and in `location`.
fn moved_error(stage: Stage, status: StatusCode, message: String, remedy: &str, location: String) -> NetError {
    let mut e = NetError::new(stage, Code::RepositoryMoved, message, remedy)
        .with_status(status.as_u16())
        .with_details(vec![location.clone()]);
    e.location = Some(location);
    e
}

/// A Git request redirected to another origin: report where, follow never.
fn moved(from: &Url, to: &Url, stage: Stage, status: StatusCode) -> NetError {
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
    moved_error(
        stage,
        status,
        message,
        "If you trust the new location, update the repository's clone URL to it and check again. Credentials are \
         never sent to a different host on a redirect.",
        location,
    )
}

/// A REST request redirected: a moved (or renamed) resource, a login page or a proxy. Reported,
/// never followed.
fn reported(from: &Url, next: &Url, stage: Stage, status: StatusCode, what: &str) -> NetError {
    let code = status.as_u16();
    let location = without_query(next);
    let message = if next.origin() == from.origin() {
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
    moved_error(
        stage,
        status,
        message,
        "If the repository was renamed or moved, update the clone URL (or the integration's API URL) to the new \
         location and check again. Credentials are never sent along a redirect.",
        location,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    const WHAT: &str = "GET https://api.github.com/repos/o/r";

    fn judge(location: &'static str, redirects: Redirects) -> Result<Url, NetError> {
        let from = Url::parse("https://api.github.com/repos/o/r")
            .map_err(|e| NetError::protocol(Stage::Dns, e.to_string()))?;
        let mut h = HeaderMap::new();
        h.insert(LOCATION, HeaderValue::from_static(location));
        judge_redirect(&NetworkPolicy::default(), &from, &h, StatusCode::FOUND, Stage::Discovery, redirects, WHAT)
    }

    #[test]
    fn redirects_are_reported_with_the_location() {
        let e = judge("https://u:p@evil.example/x?token=1", Redirects::Report).err();
        assert_eq!(e.as_ref().map(|e| e.code), Some(Code::RepositoryMoved));
        assert_eq!(e.as_ref().and_then(|e| e.location.as_deref()), Some("https://evil.example/x"));
        let message = e.map(|e| e.message).unwrap_or_default();
        assert!(message.contains("another site") && !message.contains("u:p") && !message.contains("token=1"));
        // Git follows a same-origin redirect and reports one to another origin.
        assert!(judge("/repos/o/renamed", Redirects::FollowSameOrigin).is_ok());
        let e = judge("/repos/o/renamed", Redirects::Report).err();
        assert!(e.is_some_and(|e| e.message.contains("has moved or been renamed")));
        let e = judge("https://evil.example/x", Redirects::FollowSameOrigin).err();
        assert_eq!(e.map(|e| (e.code, e.http_status)), Some((Code::RepositoryMoved, Some(302))));
    }

    #[test]
    fn redirects_into_forbidden_addresses_are_destination_forbidden() {
        for location in
            ["http://169.254.169.254/latest/meta-data/?x=1", "http://[::ffff:127.0.0.1]:8080/", "http://0x7f.1/"]
        {
            for redirects in [Redirects::Report, Redirects::FollowSameOrigin] {
                let e = judge(location, redirects).err();
                assert_eq!(
                    e.as_ref().map(|e| (e.code, e.http_status)),
                    Some((Code::DestinationForbidden, Some(302))),
                    "{location}: {e:?}"
                );
                assert!(e.is_some_and(|e| !e.message.contains("x=1")));
            }
        }
    }
}
