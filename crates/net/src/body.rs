//! Reading answers: bodies under a cap, content types, and the server's own words in an error
//! body (text lines or an HTML page's title).

use crate::error::{NetError, Stage};
use berth_core::Code;
use bytes::{Bytes, BytesMut};
use reqwest::header::{HeaderMap, CONTENT_TYPE};
use reqwest::Response;
use std::time::Duration;

/// How much of a non-Git body (HTML page, error text) is read for diagnosis.
pub const DIAGNOSIS_BYTES: usize = 8 * 1024;

/// Cuts `s` to at most `max` characters (not bytes, so UTF-8 stays valid), marking the cut with `…`.
pub fn truncate_chars(s: &mut String, max: usize) {
    if let Some((i, _)) = s.char_indices().nth(max) {
        s.truncate(i);
        s.push('…');
    }
}

/// The server's words in an error body: text lines with `remote: ` stripped, or an HTML page's
/// title. At most 20 lines of 300 characters.
pub fn text_lines(body: &[u8], mime: &str) -> Vec<String> {
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
            truncate_chars(&mut s, 300);
            s
        })
        .collect()
}

pub fn looks_like_html(text: &str) -> bool {
    let head = text.trim_start().get(..15).unwrap_or("").to_ascii_lowercase();
    head.starts_with("<!doctype html") || head.starts_with("<html")
}

pub fn html_title(text: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    let start = lower.find("<title")?;
    let open_end = start + lower[start..].find('>')? + 1;
    let close = open_end + lower[open_end..].find("</title")?;
    let mut title = text.get(open_end..close)?.split_whitespace().collect::<Vec<_>>().join(" ");
    truncate_chars(&mut title, 200);
    (!title.is_empty()).then_some(title)
}

/// The media type without parameters, lower case.
pub fn mime_of(headers: &HeaderMap) -> String {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// Reads at most `limit` bytes of a body; errors just end the read (this is only for diagnosis).
pub async fn read_prefix(mut resp: Response, limit: usize) -> Vec<u8> {
    let mut out = Vec::new();
    while out.len() < limit {
        match resp.chunk().await {
            Ok(Some(c)) => out.extend_from_slice(&c[..c.len().min(limit - out.len())]),
            _ => break,
        }
    }
    out
}

/// Reads a whole body, refusing one longer than `max` bytes: an endless or oversized answer is
/// an error, not a memory problem. `what` and `status` only shape the messages.
pub async fn read_capped(
    mut resp: Response,
    max: usize,
    stage: Stage,
    what: &str,
    limit: Duration,
) -> Result<Bytes, NetError> {
    let status = resp.status().as_u16();
    let mut body = BytesMut::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > max {
                    return Err(NetError::new(
                        stage,
                        Code::ProtocolError,
                        format!("The answer to {what} is larger than {} KiB; Berth stopped reading it.", max / 1024),
                        "The host sent far more than this API answer should hold; check that the API URL points at \
                         the Git host's REST API and that no proxy rewrites the traffic.",
                    )
                    .with_status(status)
                    .with_details(vec![format!("limit: {max} bytes")]));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body.freeze()),
            Err(e) => return Err(crate::classify(&e, stage, what, limit)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
