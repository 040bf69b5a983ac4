//! The findings every REST adapter shares: request headers, and the steps for a request that
//! got no answer, a refused credential, an unexpected status, a rate limit, an answer that is
//! not the API, an unreadable body, and a repository path that does not fit.

use crate::{parse, Session};
use berth_core::credential::Expiry;
use berth_core::{Code, Provider, Step, StepName};
use berth_net::{ApiResponse, NetError};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT};
use std::time::Duration;

pub(crate) fn json_headers(accept: &'static str, extra: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(ACCEPT, HeaderValue::from_static(accept));
    for (k, v) in extra {
        h.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
    }
    h
}

// ---------------------------------------------------------------------------------------------
// Steps shared by the adapters

/// A request that did not get an HTTP answer Berth can judge (network, policy, redirect, too
/// large): a warning under `step`. The REST API is a second opinion; the Git steps decide.
pub(crate) fn transport_step(step: StepName, e: &NetError, elapsed: Duration) -> Step {
    let mut s =
        Step::warn(step, e.code, format!("REST API: {}", e.message), e.remedy.clone()).with_details(e.details.clone());
    if let Some(loc) = &e.location {
        if !s.details.contains(loc) {
            s.details.push(loc.clone());
        }
    }
    s.took(elapsed)
}

/// 401 on a credential: expired when the stored expiry says so, else refused, with hints.
pub(crate) fn auth_failed_step(step: StepName, s: &Session<'_>, resp: &ApiResponse, hints: Vec<String>) -> Step {
    let host = s.host();
    let words = parse::server_words(&resp.body, resp.text_lines());
    let said = words.first().map(|w| format!(" It said: {w}")).unwrap_or_default();
    let (code, message, default_remedy) = match s.cred.expiry {
        Expiry::Expired { days_ago } => (
            Code::TokenExpired,
            format!(
                "{host} refused the credential (HTTP {}), whose stored expiry date passed {} ago.{said}",
                resp.status,
                berth_core::words::plural(days_ago, "day", "days")
            ),
            "Create a new token and update the credential's secret (a token rotation).".to_owned(),
        ),
        _ => (
            Code::AuthFailed,
            format!("{host} refused the credential, sent as {} (HTTP {}).{said}", s.shape.describe(), resp.status),
            "Check the token (it may be wrong, expired or revoked) and the username or email stored with it."
                .to_owned(),
        ),
    };
    // An expired token explains the 401 better than any hint about its shape.
    let remedy = if hints.is_empty() || code == Code::TokenExpired { default_remedy } else { hints.join(" ") };
    Step::fail(step, code, message, remedy).with_details(words)
}

/// Waits and errors that are not verdicts on the credential: 429, 5xx, anything unexpected.
pub(crate) fn http_problem_step(step: StepName, s: &Session<'_>, resp: &ApiResponse) -> Step {
    let host = s.host();
    let words = parse::server_words(&resp.body, resp.text_lines());
    match resp.status {
        429 => rate_limited_step(step, s, resp.retry_after(), words),
        500..=599 => Step::warn(
            step,
            Code::ServerError,
            format!("{host} failed answering {} with HTTP {}.", resp.what, resp.status),
            "The host or a proxy in front of it has a problem; try again later and check the host's status page.",
        )
        .with_details(words),
        code => Step::warn(
            step,
            Code::ProtocolError,
            format!("{host} answered {} with HTTP {code}, which Berth does not expect.", resp.what),
            "Check that the REST API URL points at the host's API (for Data Center, with its context path, such as \
             https://git.example.com/bitbucket/rest).",
        )
        .with_details(words),
    }
}

/// A rate limit as a warning; the wait, when the host gave one, also goes to the report as a
/// [`Duration`].
pub(crate) fn rate_limited_step(
    step: StepName,
    s: &Session<'_>,
    wait: Option<Duration>,
    mut details: Vec<String>,
) -> Step {
    let host = s.host();
    let message = match wait {
        Some(w) => {
            let _ = s.retry_after.set(w);
            details.insert(0, format!("retry after {} seconds", w.as_secs()));
            format!(
                "{host} is rate limiting requests (HTTP 429); it asks to wait {} s before trying again.",
                w.as_secs()
            )
        }
        None if matches!(s.provider, Provider::BitbucketCloud | Provider::BitbucketDatacenter) => format!(
            "{host} is rate limiting requests (HTTP 429) and gave no wait time (no Retry-After). Bitbucket counts \
             requests per rolling hour, so the limit may take up to an hour to clear."
        ),
        None => format!("{host} is rate limiting requests (HTTP 429) and gave no wait time (no Retry-After)."),
    };
    Step::warn(
        step,
        Code::RateLimited,
        message,
        "Wait and check again later; frequent polling with the same credential uses up its rate limit.",
    )
    .with_details(details)
}

/// A 404 on the credential request: the API URL is not the host's API root. `is_not` ends the
/// sentence "the API URL …".
pub(crate) fn not_api_root(step: StepName, s: &Session<'_>, resp: &ApiResponse, is_not: &str, remedy: &str) -> Step {
    Step::warn(step, Code::ProtocolError, format!("{} has no {}: the API URL {is_not}.", s.host(), resp.what), remedy)
}

/// A JSON body that should be there and is not.
pub(crate) fn unparseable_step(step: StepName, resp: &ApiResponse, what: &str) -> Step {
    Step::warn(
        step,
        Code::ProtocolError,
        format!("The answer to {} is not the JSON Berth expects ({what}).", resp.what),
        "Check that the REST API URL points at the host's API and that no proxy or login page answers instead.",
    )
    .with_details(vec![format!(
        "content type: {}",
        if resp.mime().is_empty() { "(none)".to_owned() } else { resp.mime() }
    )])
}

/// `owner/repo` (a trailing `.git` and stray slashes tolerated) → (`owner`, `repo`); anything
/// else is a failed `step` that says what the host's repository paths look like.
pub(crate) fn owner_and_repo(path: &str, step: StepName, what: &str, example: &str) -> Result<(String, String), Step> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').filter(|p| !p.is_empty()).collect();
    match parts.as_slice() {
        [owner, repo] => Ok(((*owner).to_owned(), repo.trim_end_matches(".git").to_owned())),
        _ => Err(Step::fail(
            step,
            Code::InvalidUrl,
            format!("{path:?} is not {what}"),
            format!("Use the clone URL the host shows, such as {example}."),
        )),
    }
}
