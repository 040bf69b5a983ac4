//! HTTP statuses of a Git host as findings, and `Retry-After`.

use crate::body::{mime_of, read_prefix, text_lines, DIAGNOSIS_BYTES};
use crate::error::{NetError, Stage};
use crate::send::Exchange;
use crate::urls::{repository_of, without_query};
use berth_core::Code;
use reqwest::header::{RETRY_AFTER, WWW_AUTHENTICATE};
use std::time::Duration;

/// Bitbucket's words (as Git prints them after `remote:`) for a missing scope and for a
/// repository the credential cannot see (two wordings seen); compared in lower case.
const SCOPES_LACKING: &str = "lack one or more required privilege scopes";
const NOT_VISIBLE: [&str; 2] = [
    "may not have access to this repository or it no longer exists",
    "repository either does not exist or you do not have access",
];

/// Maps a non-success answer to a finding, reading a little of the body for the server's words.
pub async fn status_error(ex: Exchange, stage: Stage, auth_sent: bool) -> NetError {
    let via = ex.via_proxy.clone();
    let mut e = judge_status(ex, stage, auth_sent).await;
    if let Some(proxy) = via {
        e.details.push(format!("through proxy {proxy}"));
    }
    e
}

async fn judge_status(ex: Exchange, stage: Stage, auth_sent: bool) -> NetError {
    let status = ex.response.status();
    let code = status.as_u16();
    let host = ex.url.host_str().unwrap_or("the server").to_owned();
    let headers = ex.response.headers().clone();
    let body_type = mime_of(&headers);
    let e = match code {
        401 => {
            let details = headers
                .get_all(WWW_AUTHENTICATE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .map(|v| match realm_of(v) {
                    Some(realm) => format!("realm: {realm}"),
                    None => format!("challenge: {}", v.split(' ').next().unwrap_or(v)),
                })
                .collect();
            // Anonymous access to a private repository (or a host that wants every caller signed
            // in) is not a refused credential: there was none to refuse, and the remedy is to choose one.
            if !auth_sent {
                return NetError::new(
                    stage,
                    Code::CredentialRequired,
                    format!(
                        "{host} requires sign-in (HTTP 401) and no credential was given: this repository is private \
                         or the host requires sign-in."
                    ),
                    "Choose a credential that can read this repository.",
                )
                .with_details(details)
                .with_status(code);
            }
            NetError::new(
                stage,
                Code::AuthFailed,
                format!("{host} refused the credential (HTTP 401)."),
                "Check the username and the password or token. Many hosts need an access token instead of the account \
                 password, and some need a specific username with it; a token may also have expired or been revoked.",
            )
            .with_details(details)
        }
        403 | 410 => {
            let lines = text_lines(&read_prefix(ex.response, DIAGNOSIS_BYTES).await, &body_type);
            let mut message = format!("{host} denied access to the repository (HTTP {code}).");
            if let Some(first) = lines.first() {
                message = format!("{message} The server said: {first}");
            }
            // Some refusals say exactly what they are; they get the code the REST API's answer
            // for the same fault gets, so the two steps name it alike.
            let said = lines.join(" ").to_ascii_lowercase();
            if said.contains(SCOPES_LACKING) {
                return NetError::new(
                    stage,
                    Code::ScopeMissing,
                    message,
                    "The token lacks a scope Git needs (read:repository:bitbucket to list branches): create a new \
                     token with it and replace the credential's token.",
                )
                .with_details(lines)
                .with_status(code);
            }
            if NOT_VISIBLE.iter().any(|n| said.contains(n)) {
                return NetError::new(
                    stage,
                    Code::RepositoryNotFoundOrNoAccess,
                    format!(
                        "{host} says this credential cannot see the repository, or it does not exist (HTTP {code})."
                    ),
                    "Check the workspace and repository name in the clone URL, and that the account or token has at \
                     least read access: the host answers alike for a repository that is missing and one it hides.",
                )
                .with_details(lines)
                .with_status(code);
            }
            NetError::new(
                stage,
                Code::AccessDenied,
                message,
                if code == 410 {
                    "The server says this credential or access method is gone for good (some hosts retire app \
                     passwords this way). Create a new credential of the kind the host supports now."
                } else {
                    "The credential is valid but not allowed here. The server's message (in the details) usually says \
                     why: an IP allow list, a required two-step login or SSO authorisation of the token, or a \
                     missing permission or scope."
                },
            )
            .with_details(lines)
        }
        404 => {
            // Without a credential there is none to blame: a host that hides private
            // repositories from anonymous callers answers 404 too.
            let (or, remedy) = if auth_sent {
                (
                    "or this credential may not see it",
                    "Check the URL (owner, name, a missing .git suffix) and that the credential has read access: \
                     many hosts answer 404 instead of 403 to hide private repositories.",
                )
            } else {
                (
                    "or it is private and hidden from anonymous callers (no credential was given)",
                    "Check the URL (owner, name, a missing .git suffix); if the repository is private, choose a \
                     credential that can read it.",
                )
            };
            let at = without_query(&repository_of(&ex.url).unwrap_or(ex.url.clone()));
            NetError::new(
                stage,
                Code::RepositoryNotFoundOrNoAccess,
                format!("{host} says there is no repository at {at} (HTTP 404), {or}."),
                remedy,
            )
        }
        429 => {
            let retry = headers.get(RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(parse_retry_after);
            let mut e = NetError::new(
                stage,
                Code::RateLimited,
                match retry {
                    Some(d) => format!(
                        "{host} is rate limiting requests (HTTP 429); it asks to retry after {} seconds.",
                        d.as_secs()
                    ),
                    None => format!("{host} is rate limiting requests (HTTP 429)."),
                },
                "Wait and check again later; frequent polling with the same credential uses up its rate limit.",
            );
            if let Some(d) = retry {
                e.details.push(format!("retry after {} seconds", d.as_secs()));
            }
            e.retry_after = retry;
            e
        }
        500..=599 => {
            let lines = text_lines(&read_prefix(ex.response, DIAGNOSIS_BYTES).await, &body_type);
            NetError::new(
                stage,
                Code::ServerError,
                format!("{host} failed with HTTP {code}."),
                "The Git server or a proxy in front of it has a problem; try again later and check the host's status page.",
            )
            .with_details(lines)
        }
        _ => NetError::protocol(
            stage,
            format!("{host} answered {} with HTTP {code}, which Git does not expect.", ex.what),
        ),
    };
    e.with_status(code)
}

fn realm_of(challenge: &str) -> Option<String> {
    let i = challenge.to_ascii_lowercase().find("realm=")?;
    let rest = &challenge[i + "realm=".len()..];
    let realm = match rest.strip_prefix('"') {
        Some(q) => q.split('"').next().unwrap_or(q),
        None => rest.split([',', ' ']).next().unwrap_or(rest),
    };
    Some(realm.to_owned())
}

/// `Retry-After` is either seconds or an HTTP date.
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let secs = (when.timestamp() - chrono::Utc::now().timestamp()).max(0);
    Some(Duration::from_secs(u64::try_from(secs).unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds_and_dates() {
        assert_eq!(parse_retry_after("17"), Some(Duration::from_secs(17)));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"), Some(Duration::ZERO));
        let future = (chrono::Utc::now() + chrono::Duration::seconds(120)).to_rfc2822();
        let d = parse_retry_after(&future).unwrap_or_default();
        assert!(d > Duration::from_secs(100) && d <= Duration::from_secs(120), "{d:?}");
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn realm() {
        assert_eq!(realm_of(r#"Basic realm="Berth test git""#).as_deref(), Some("Berth test git"));
        assert_eq!(realm_of("Bearer realm=x, scope=y").as_deref(), Some("x"));
        assert_eq!(realm_of("Negotiate"), None);
    }
}
