//! Tolerant readers of the hosts' answers: error bodies in every shape seen in the wild, and
//! the few success fields Berth needs. Nothing here fails on an unexpected field or type.

use serde_json::Value;

/// The message Bitbucket Cloud sends when a token lacks a scope (403, on some endpoints 400).
pub const CLOUD_SCOPE_MESSAGE: &str = "lack one or more required privilege scopes";

/// Parses JSON, or `None` for anything else (HTML, text, truncated JSON).
pub fn json(body: &[u8]) -> Option<Value> {
    serde_json::from_slice(body).ok()
}

/// A string field anywhere along `path`, non-empty.
pub fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(*p)?;
    }
    cur.as_str().map(str::trim).filter(|s| !s.is_empty())
}

pub fn bool_at(v: &Value, path: &[&str]) -> Option<bool> {
    let mut cur = v;
    for p in path {
        cur = cur.get(*p)?;
    }
    cur.as_bool()
}

/// Bitbucket Cloud's error body `{"type":"error","error":{"message","detail","fields"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CloudError {
    pub message: String,
    /// `detail` as text when it is a string (or other non-object value).
    pub detail_text: Option<String>,
    /// Scopes named in a scope error: `detail.required` and `detail.granted`, or scope-like
    /// words in a textual detail (counted as required).
    pub required: Vec<String>,
    pub granted: Option<Vec<String>>,
}

impl CloudError {
    /// A missing-scope error, whatever the status (403, or 400 on some endpoints).
    pub fn is_scope_error(&self) -> bool {
        self.message.contains(CLOUD_SCOPE_MESSAGE) || !self.required.is_empty()
    }
}

/// Reads a Bitbucket Cloud error body. Also accepts a plain-text body (the 401
/// `Login failed due to incorrect login credentials or method.`), taking its first line.
pub fn cloud_error(body: &[u8]) -> Option<CloudError> {
    let Some(v) = json(body) else {
        let text = String::from_utf8_lossy(body);
        let first = text.lines().map(str::trim).find(|l| !l.is_empty())?;
        if first.starts_with('<') || first.starts_with('{') {
            return None;
        }
        return Some(CloudError { message: clip(first), ..CloudError::default() });
    };
    let err = v.get("error")?;
    let message = match err.get("message") {
        Some(Value::String(s)) => clip(s.trim()),
        _ => String::new(),
    };
    let mut out = CloudError { message, ..CloudError::default() };
    match err.get("detail") {
        Some(Value::Object(_)) | None | Some(Value::Null) => {}
        Some(Value::String(s)) => {
            // Some answers carry the object serialised as a string.
            if let Some(inner @ Value::Object(_)) = json(s.as_bytes()) {
                read_scope_detail(&inner, &mut out);
            } else {
                out.required = scope_like_words(s);
                out.detail_text = Some(clip(s.trim()));
            }
        }
        Some(other) => out.detail_text = Some(clip(&other.to_string())),
    }
    if let Some(d @ Value::Object(_)) = err.get("detail") {
        read_scope_detail(d, &mut out);
    }
    if out.message.is_empty() && out.detail_text.is_none() && out.required.is_empty() && out.granted.is_none() {
        return None;
    }
    Some(out)
}

fn read_scope_detail(d: &Value, out: &mut CloudError) {
    out.required = string_list(d.get("required"));
    if let Some(g) = d.get("granted") {
        out.granted = Some(string_list(Some(g)));
    }
}

/// At most this many scopes are read from one answer: Bitbucket knows a few dozen, and a host
/// that sends more must not fill a check's details.
pub const MAX_SCOPES: usize = 64;

/// A JSON array of strings, or a comma/space separated string; at most [`MAX_SCOPES`], each clipped.
fn string_list(v: Option<&Value>) -> Vec<String> {
    let list = match v {
        Some(Value::Array(items)) => {
            items.iter().filter_map(Value::as_str).map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect()
        }
        Some(Value::String(s)) => berth_core::scopes::parse_scope_list(s),
        _ => Vec::new(),
    };
    list.into_iter().take(MAX_SCOPES).map(|s| clip(&s)).collect()
}

/// Words shaped like Atlassian scopes (`read:repository:bitbucket`, `read:me`).
fn scope_like_words(s: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for w in s.split(|c: char| !(c.is_ascii_alphanumeric() || c == ':' || c == '_' || c == '-')) {
        let w = w.trim_matches(':');
        let parts: Vec<&str> = w.split(':').collect();
        let scope_like = parts.len() >= 2
            && matches!(parts[0], "read" | "write" | "admin" | "delete")
            && parts.iter().all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase() || c == '_' || c == '-'));
        if scope_like && !out.iter().any(|o| o == w) {
            out.push(clip(w));
            if out.len() == MAX_SCOPES {
                break;
            }
        }
    }
    out
}

/// Bitbucket Data Center's `{"errors":[{"context","message","exceptionName"}]}`: the messages,
/// with the exception's short name when there is one.
pub fn datacenter_errors(body: &[u8]) -> Vec<String> {
    let Some(v) = json(body) else { return Vec::new() };
    let Some(Value::Array(errors)) = v.get("errors") else { return Vec::new() };
    errors
        .iter()
        .filter_map(|e| {
            let msg = str_at(e, &["message"])?;
            let exc = str_at(e, &["exceptionName"]).map(|x| x.rsplit('.').next().unwrap_or(x));
            Some(clip(&match exc {
                Some(x) => format!("{msg} ({x})"),
                None => msg.to_owned(),
            }))
        })
        .take(10)
        .collect()
}

/// GitHub's `{"message": "...", "documentation_url": "..."}`.
pub fn github_message(body: &[u8]) -> Option<String> {
    json(body).as_ref().and_then(|v| str_at(v, &["message"])).map(clip)
}

/// Whatever the host said, for `details`: the message of any known shape, else text lines.
pub fn server_words(body: &[u8], fallback_lines: Vec<String>) -> Vec<String> {
    if let Some(e) = cloud_error(body) {
        let mut out = Vec::new();
        if !e.message.is_empty() {
            out.push(e.message.clone());
        }
        if let Some(d) = e.detail_text {
            out.push(d);
        }
        if !out.is_empty() && json(body).is_some() {
            return out;
        }
    }
    let dc = datacenter_errors(body);
    if !dc.is_empty() {
        return dc;
    }
    if let Some(m) = github_message(body) {
        return vec![m];
    }
    fallback_lines
}

/// Runs every reader of this module over `body` and checks that what they return is bounded: every text at most 300 characters (and an ellipsis), at most
/// 10 Data Center messages and [`MAX_SCOPES`] scopes. `Err` names a broken bound. Used by the
/// fuzz target `fuzz/fuzz_targets/forge_errors.rs` and by the replay of its corpus.
pub fn check_error_body(body: &[u8]) -> Result<(), String> {
    let short = |what: &str, s: &str| {
        if s.chars().count() > 301 {
            Err(format!("{what} is {} characters long", s.chars().count()))
        } else {
            Ok(())
        }
    };
    if let Some(e) = cloud_error(body) {
        short("cloud message", &e.message)?;
        if let Some(d) = &e.detail_text {
            short("cloud detail", d)?;
        }
        let granted = e.granted.as_deref().unwrap_or_default();
        if e.required.len() > MAX_SCOPES || granted.len() > MAX_SCOPES {
            return Err(format!("{} required and {} granted scopes", e.required.len(), granted.len()));
        }
        for s in e.required.iter().chain(granted) {
            short("scope", s)?;
        }
        let _ = e.is_scope_error();
    }
    let dc = datacenter_errors(body);
    if dc.len() > 10 {
        return Err(format!("{} Data Center messages", dc.len()));
    }
    for m in &dc {
        short("Data Center message", m)?;
    }
    if let Some(m) = github_message(body) {
        short("GitHub message", &m)?;
    }
    for w in server_words(body, Vec::new()) {
        short("server words", &w)?;
    }
    Ok(())
}

/// Keeps server text to a readable length.
pub fn clip(s: &str) -> String {
    let mut out = s.to_owned();
    berth_net::truncate_chars(&mut out, 300);
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn cloud_scope_error_with_object_detail() {
        let body = br#"{"type":"error","error":{"message":"Your credentials lack one or more required privilege scopes.","detail":{"granted":["read:user:bitbucket","write:repository:bitbucket"],"required":["read:repository:bitbucket"]}}}"#;
        let e = cloud_error(body).unwrap_or_default();
        assert!(e.is_scope_error());
        assert_eq!(e.required, ["read:repository:bitbucket"]);
        assert_eq!(
            e.granted.as_deref(),
            Some(&["read:user:bitbucket".to_owned(), "write:repository:bitbucket".to_owned()][..])
        );
    }

    #[test]
    fn cloud_scope_error_with_string_detail() {
        let body = br#"{"type":"error","error":{"message":"Your credentials lack one or more required privilege scopes.","detail":"This API is only accessible with the following scopes: read:repository:bitbucket, read:pullrequest:bitbucket."}}"#;
        let e = cloud_error(body).unwrap_or_default();
        assert!(e.is_scope_error());
        assert_eq!(e.required, ["read:repository:bitbucket", "read:pullrequest:bitbucket"]);
        assert_eq!(e.granted, None);
        assert!(e.detail_text.is_some_and(|d| d.starts_with("This API")));
    }

    #[test]
    fn cloud_scope_error_with_json_in_a_string_detail() {
        let body = br#"{"type":"error","error":{"message":"Your credentials lack one or more required privilege scopes.","detail":"{\"required\": [\"read:repository:bitbucket\"], \"granted\": []}"}}"#;
        let e = cloud_error(body).unwrap_or_default();
        assert_eq!(e.required, ["read:repository:bitbucket"]);
        assert_eq!(e.granted, Some(vec![]));
    }

    #[test]
    fn cloud_plain_text_401() {
        let e = cloud_error(b"Login failed due to incorrect login credentials or method.\n").unwrap_or_default();
        assert_eq!(e.message, "Login failed due to incorrect login credentials or method.");
        assert!(!e.is_scope_error());
        assert_eq!(cloud_error(b"<html><title>x</title></html>"), None);
        assert_eq!(cloud_error(b""), None);
    }

    #[test]
    fn cloud_not_found_body() {
        let body = br#"{"type": "error", "error": {"message": "You may not have access to this repository or it no longer exists in this workspace. If you think this repository exists and you have access, make sure you are authenticated."}}"#;
        let e = cloud_error(body).unwrap_or_default();
        assert!(e.message.starts_with("You may not have access") && !e.is_scope_error());
    }

    #[test]
    fn datacenter_error_messages() {
        let body = br#"{"errors":[{"context":null,"message":"You are not permitted to access this resource","exceptionName":"com.atlassian.bitbucket.AuthorisationException"}]}"#;
        assert_eq!(datacenter_errors(body), ["You are not permitted to access this resource (AuthorisationException)"]);
        assert!(datacenter_errors(b"{}").is_empty());
        assert!(datacenter_errors(b"nope").is_empty());
        assert_eq!(server_words(body, vec![]), datacenter_errors(body));
    }

    #[test]
    fn github_bad_credentials() {
        let body =
            br#"{"message":"Bad credentials","documentation_url":"https://docs.github.com/rest","status":"401"}"#;
        assert_eq!(github_message(body).as_deref(), Some("Bad credentials"));
        assert_eq!(server_words(body, vec!["x".into()]), ["Bad credentials"]);
    }

    #[test]
    fn long_text_is_clipped() {
        assert_eq!(clip(&"x".repeat(1000)).chars().count(), 301);
    }

    /// `fuzz/corpus/forge_errors/`: every committed seed passes the bounds; `cloud-*` seeds are
    /// read as Bitbucket Cloud errors, `datacenter-*` and `github-*` as theirs.
    #[test]
    fn fuzz_corpus_replays() -> std::io::Result<()> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/forge_errors");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("").to_owned();
            let body = std::fs::read(&path)?;
            assert_eq!(check_error_body(&body), Ok(()), "{name}");
            if name.starts_with("cloud-") {
                assert!(cloud_error(&body).is_some(), "{name} is not read as a Cloud error");
            }
            if name.starts_with("datacenter-") {
                assert!(!datacenter_errors(&body).is_empty(), "{name} is not read as a Data Center error");
            }
            if name.starts_with("github-") {
                assert!(github_message(&body).is_some(), "{name} is not read as a GitHub error");
            }
            seen += 1;
        }
        assert!(seen >= 8, "only {seen} seeds in {}", dir.display());
        Ok(())
    }

    #[test]
    fn hostile_bodies_are_bounded() {
        let long = "x".repeat(100_000);
        let body = format!(
            r#"{{"type":"error","error":{{"message":"{long}","detail":{{"required":[{}]}}}}}}"#,
            (0..1000).map(|i| format!("\"read:s{i}:bitbucket\"")).collect::<Vec<_>>().join(",")
        );
        let e = cloud_error(body.as_bytes()).unwrap_or_default();
        assert_eq!(e.message.chars().count(), 301);
        assert_eq!(e.required.len(), MAX_SCOPES);
        assert_eq!(check_error_body(body.as_bytes()), Ok(()));
        let name = |i: u32| -> String { (0..3).map(|k| char::from(b'a' + ((i / 26u32.pow(k)) % 26) as u8)).collect() };
        let words: String = (0..1000).map(|i| format!("read:{}:bitbucket ", name(i))).collect();
        let body = format!(r#"{{"type":"error","error":{{"message":"m","detail":"{words}"}}}}"#);
        assert_eq!(cloud_error(body.as_bytes()).unwrap_or_default().required.len(), MAX_SCOPES);
    }
}
