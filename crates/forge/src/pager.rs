//! Following a host's pages (Bitbucket Cloud's opaque `next` URL, for the permission list).
//! Bounded in pages and items; a next link to another origin is refused (credentials never leave
//! the API's origin).

use crate::{transport_step, Session};
use berth_core::{Code, Step, StepName};
use berth_net::ApiResponse;
use reqwest::header::HeaderMap;
use serde_json::Value;
use std::collections::HashSet;
use std::time::Instant;
use url::Url;

/// Stop after this many pages, whatever the host says.
pub(crate) const MAX_PAGES: usize = 2_000;

/// One page: its items and where the next one is.
pub(crate) struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<Url>,
}

/// Fetches `first` and every next page. `parse` reads a successful page; `fail` turns any other
/// answer into the step to report.
pub(crate) async fn collect<T>(
    s: &Session<'_>,
    step: StepName,
    first: Url,
    headers: &HeaderMap,
    max_items: usize,
    parse: impl Fn(&ApiResponse) -> Result<Page<T>, Step>,
    fail: impl Fn(&ApiResponse) -> Step,
) -> Result<Vec<T>, Step> {
    let started = Instant::now();
    let mut url = first;
    let mut seen: HashSet<String> = HashSet::new();
    let mut out: Vec<T> = Vec::new();
    for _ in 0..MAX_PAGES {
        seen.insert(url.to_string());
        let resp = s.get(url.clone(), headers).await.map_err(|e| transport_step(step, &e, started.elapsed()))?;
        if !resp.is_success() {
            return Err(fail(&resp));
        }
        let page = parse(&resp)?;
        out.extend(page.items);
        if out.len() > max_items {
            return Err(too_many(step, &resp, format!("more than {max_items} items")));
        }
        let Some(next) = page.next else { return Ok(out) };
        if next.origin() != s.base.origin() {
            return Err(Step::warn(
                step,
                Code::ProtocolError,
                format!(
                    "{}'s next-page link points to another site; Berth does not send the credential there.",
                    s.host()
                ),
                "Check the REST API URL; a proxy may be rewriting links.",
            )
            .with_details(vec![crate::parse::clip(&berth_net::without_query(&next))]));
        }
        if seen.contains(next.as_str()) {
            return Err(too_many(step, &resp, "a next-page link that repeats an earlier page".to_owned()));
        }
        url = next;
    }
    Err(Step::warn(
        step,
        Code::ProtocolError,
        format!("{} kept sending pages; Berth stopped after {MAX_PAGES}.", s.host()),
        "This is unusual; report it with the repository's size.",
    ))
}

fn too_many(step: StepName, resp: &ApiResponse, what: String) -> Step {
    Step::warn(
        step,
        Code::ProtocolError,
        format!("{} returned {what}; Berth stopped reading pages.", resp.what),
        "This is unusual; check the REST API URL and report it with the details.",
    )
}

/// Bitbucket Cloud: `next` is an opaque URL; no `next` is the end.
pub(crate) fn cloud_next(page: &Value) -> Option<Result<Url, String>> {
    let next = page.get("next")?.as_str().filter(|s| !s.trim().is_empty())?;
    Some(Url::parse(next.trim()).map_err(|_| "the next-page link is not a URL".to_owned()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn cloud_pages() {
        let v: Value = serde_json::from_str(r#"{"pagelen":100,"values":[],"next":"https://api.bitbucket.org/2.0/repositories/w/r/refs/branches?page=2"}"#).unwrap();
        assert!(matches!(cloud_next(&v), Some(Ok(u)) if u.query() == Some("page=2")));
        assert!(cloud_next(&serde_json::json!({"values": []})).is_none());
    }
}
