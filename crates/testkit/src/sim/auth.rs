//! What a request presents in its `Authorization` header, and the response pieces every host
//! shares (401 challenges, plain-text bodies).

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;

/// The credentials of one request. Secrets stay in memory for the lookup and are never logged.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Presented {
    None,
    Basic {
        user: String,
        pass: String,
    },
    /// `Authorization: Bearer …`
    Bearer(String),
    /// `Authorization: token …` (GitHub)
    Token(String),
    /// Anything else, malformed Basic included.
    Other,
}

impl std::fmt::Debug for Presented {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Presented::None => "None",
            Presented::Basic { .. } => "Basic(…)",
            Presented::Bearer(_) => "Bearer(…)",
            Presented::Token(_) => "Token(…)",
            Presented::Other => "Other",
        })
    }
}

pub(crate) fn presented(headers: &HeaderMap) -> Presented {
    let Some(value) = headers.get(header::AUTHORIZATION) else { return Presented::None };
    let Ok(value) = value.to_str() else { return Presented::Other };
    let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value, ""));
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded =
            base64::engine::general_purpose::STANDARD.decode(rest).ok().and_then(|d| String::from_utf8(d).ok());
        match decoded.as_deref().and_then(|d| d.split_once(':')) {
            Some((user, pass)) => Presented::Basic { user: user.to_owned(), pass: pass.to_owned() },
            None => Presented::Other,
        }
    } else if scheme.eq_ignore_ascii_case("bearer") && !rest.is_empty() {
        Presented::Bearer(rest.to_owned())
    } else if scheme.eq_ignore_ascii_case("token") && !rest.is_empty() {
        Presented::Token(rest.to_owned())
    } else {
        Presented::Other
    }
}

/// A key for per-credential budgets: the SHA-256 of the `Authorization` header, or the client
/// address for anonymous requests.
pub(crate) fn rate_key(headers: &HeaderMap, ip: std::net::IpAddr) -> String {
    match headers.get(header::AUTHORIZATION) {
        Some(v) => crate::sha256_hex(v.as_bytes()),
        None => format!("anonymous:{ip}"),
    }
}

/// `text/plain` with each line of `message` (git shows them as `remote: …`).
pub(crate) fn text(status: StatusCode, message: &str) -> Response {
    let mut body = message.trim_end().to_owned();
    body.push('\n');
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
}

/// 401 with a Basic challenge (so git asks for credentials) and a plain-text body.
pub(crate) fn challenge(realm: &str, message: &str) -> Response {
    let mut resp = text(StatusCode::UNAUTHORIZED, message);
    if let Ok(v) = format!("Basic realm=\"{realm}\"").parse() {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    resp
}

pub(crate) fn json(status: StatusCode, body: &serde_json::Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json; charset=utf-8")], body.to_string()).into_response()
}

/// Adds a header, skipping values that cannot be header values.
pub(crate) fn set_header(resp: &mut Response, name: &'static str, value: &str) {
    if let Ok(v) = value.parse() {
        resp.headers_mut().insert(name, v);
    }
}
