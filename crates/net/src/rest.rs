//! JSON REST requests to a Git host's API under the same rules as Git traffic: the shared pooled
//! client (policy-enforcing resolver, timeouts, extra roots), IP literals checked before
//! connecting, no redirects followed (credentials never reach another URL), a cap on the body and
//! transport failures reported as [`NetError`]s.
//!
//! Any HTTP status comes back as an [`ApiResponse`]: the caller knows what a 401 or a 404 means on
//! its host. Only redirects and transport failures are errors here. Errors carry the stage
//! [`Stage::Discovery`] (or `Dns`/`Connect`/`Tls` for those failures); callers that report them
//! under another check step relabel the step and keep the code, message and remedy.

use crate::body::{mime_of, read_capped, text_lines};
use crate::error::{NetError, Stage};
use crate::send::{Redirects, Request};
use crate::status::parse_retry_after;
use crate::urls::{authority, refuse_user_info, without_query};
use crate::{Auth, NetClient};
use berth_core::Code;
use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, RETRY_AFTER};
use reqwest::Method;
use std::time::Duration;
use url::Url;

/// Default cap on a REST answer's body.
pub const DEFAULT_API_BODY_CAP: usize = 4 * 1024 * 1024;

/// One REST request. Build with [`ApiRequest::get`] and adjust the public fields.
#[derive(Debug)]
pub struct ApiRequest<'a> {
    pub method: Method,
    pub url: Url,
    pub auth: Option<&'a Auth>,
    pub headers: HeaderMap,
    /// Bytes of body read at most; a longer body is an error.
    pub max_body: usize,
    /// Limit for the whole exchange; the client's request timeout when `None`.
    pub timeout: Option<Duration>,
    /// A request body (JSON for a webhook's creation); its content type goes in `headers`.
    pub body: Option<Bytes>,
}

impl<'a> ApiRequest<'a> {
    pub fn get(url: Url, auth: Option<&'a Auth>) -> Self {
        ApiRequest {
            method: Method::GET,
            url,
            auth,
            headers: HeaderMap::new(),
            max_body: DEFAULT_API_BODY_CAP,
            timeout: None,
            body: None,
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
        mime_of(&self.headers)
    }

    /// `Retry-After` in seconds or as an HTTP date.
    pub fn retry_after(&self) -> Option<Duration> {
        self.headers.get(RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(parse_retry_after)
    }

    /// The body as the server's words: text lines (`remote: ` stripped) or an HTML page's title,
    /// at most 20 lines of 300 characters.
    pub fn text_lines(&self) -> Vec<String> {
        text_lines(&self.body, &self.mime())
    }

    /// The host (and port, when not the default) that answered.
    pub fn host(&self) -> String {
        authority(&self.url)
    }
}

impl NetClient {
    /// Sends one REST request under the network policy and reads the whole answer (capped).
    /// Every status is returned; a redirect or a transport failure is an error.
    pub async fn api_request(&self, req: ApiRequest<'_>) -> Result<ApiResponse, NetError> {
        let stage = Stage::Discovery;
        check_api_url(&req.url)?;
        let limit = req.timeout.unwrap_or(self.config().request_timeout);
        let ex = self
            .send(Request {
                method: req.method,
                url: req.url,
                stage,
                headers: req.headers,
                body: req.body,
                auth: req.auth,
                redirects: Redirects::Report,
                timeout: Some(limit),
                secret_path: false,
            })
            .await?;
        let status = ex.response.status().as_u16();
        let headers = ex.response.headers().clone();
        let body = read_capped(ex.response, req.max_body, stage, &ex.what, limit).await?;
        Ok(ApiResponse { status, headers, body, url: ex.url, what: ex.what })
    }
}

fn check_api_url(url: &Url) -> Result<(), NetError> {
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(NetError::new(
            Stage::Discovery,
            Code::InvalidUrl,
            format!("{} is not an HTTP(S) API URL.", without_query(url)),
            "Configure the host's REST API URL, such as https://api.bitbucket.org/2.0 or https://git.example.com/rest.",
        ));
    }
    refuse_user_info(url, Stage::Discovery, "API URL", "Remove the user name and password from the API URL.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_urls_with_credentials_are_refused() -> Result<(), url::ParseError> {
        let e = check_api_url(&Url::parse("https://jo:secret-token@api.example/2.0")?).err();
        assert_eq!(e.as_ref().map(|e| e.code), Some(Code::SecretInUrl));
        assert!(e.is_some_and(|e| !e.message.contains("secret-token")));
        assert!(check_api_url(&Url::parse("ftp://api.example/")?).is_err());
        Ok(())
    }
}
