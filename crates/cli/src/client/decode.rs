//! Reading what went wrong: an error answer's body, a transport error's causes.

use super::*;

/// The API error in an error response, or one made up from the status when the body is not
/// Berth's format (a proxy's HTML page, an empty 502).
pub fn decode_error(status: u16, body: &[u8]) -> ApiError {
    if let Ok(b) = serde_json::from_slice::<ErrorBody>(body) {
        return b.error;
    }
    let code = match status {
        401 => Code::Unauthenticated,
        403 => Code::Forbidden,
        404 => Code::NotFound,
        400 | 413 | 415 | 422 => Code::InvalidInput,
        _ => Code::Internal,
    };
    let text: String = String::from_utf8_lossy(body)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let reason = StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("error");
    let message =
        if text.is_empty() { format!("HTTP {status} {reason}") } else { format!("HTTP {status} {reason}: {text}") };
    let remedy = if (300..400).contains(&status) {
        "the server redirected: check the Berth URL (--url or BERTH_URL), e.g. http:// versus https://".to_owned()
    } else {
        "the answer is not from Berth's API: check the Berth URL (--url or BERTH_URL) and any proxy in front of it"
            .to_owned()
    };
    ApiError { code, message, remedy, checks: Vec::new() }
}

/// A reqwest error and its causes on one line, without the URL (the caller names the server).
pub(super) fn error_chain(e: &reqwest::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    if e.is_timeout() {
        parts.push("timed out".to_owned());
    }
    let top = e.to_string();
    // reqwest's own message names the URL: "error sending request for url (...)".
    let top = match top.find(" for url (") {
        Some(i) => top[..i].to_owned(),
        None => top,
    };
    parts.push(top);
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        let m = s.to_string();
        if !parts.iter().any(|p| p == &m || p.contains(&m)) {
            parts.push(m);
        }
        src = s.source();
    }
    parts.join(": ")
}
