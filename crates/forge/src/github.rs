//! GitHub REST v3 (api.github.com, or GitHub Enterprise Server at `https://host/api/v3`).
//!
//! * `GET /user`: the login; classic tokens list their scopes in `X-OAuth-Scopes`, fine-grained
//!   tokens send no such header; expiring tokens carry `GitHub-Authentication-Token-Expiration`.
//! * `GET /repos/{owner}/{repo}`: `private`, `default_branch`, `permissions`; 404 for "missing or
//!   hidden". Rate limits answer 403 or 429 with `x-ratelimit-remaining: 0` or `Retry-After`.

use crate::{
    auth_failed_step, http_problem_step, json_headers, not_api_root, parse, rate_limited_step, unparseable_step,
    ForgeReport, RepoFacts, Session,
};
use berth_core::credential::EXPIRY_WARNING_DAYS;
use berth_core::{scopes, Capability, Code, Step, StepName};
use berth_net::ApiResponse;
use chrono::NaiveDate;
use reqwest::header::HeaderMap;
use std::time::{Duration, Instant};

fn headers() -> HeaderMap {
    json_headers("application/vnd.github+json", &[("x-github-api-version", "2022-11-28")])
}

#[derive(Debug, Default)]
struct Evidence {
    /// `X-OAuth-Scopes`: present (maybe empty) for classic tokens only.
    classic_scopes: Option<Vec<String>>,
}

impl Evidence {
    fn observe(&mut self, resp: &ApiResponse) {
        if let Some(s) = resp.header("x-oauth-scopes") {
            self.classic_scopes = Some(scopes::parse_scope_list(s));
        }
    }
}

pub(crate) async fn run(s: &Session<'_>, repo_path: Option<&str>, report: &mut ForgeReport) {
    let mut ev = Evidence::default();
    if !credential_step(s, &mut ev, report).await {
        return;
    }
    let repo_step = match repo_path.map(|p| split_repo(p, StepName::ApiRepository)) {
        Some(Ok((owner, repo))) => Some(repository_step(s, &owner, &repo, &mut ev, report).await),
        Some(Err(step)) => Some(step),
        None => None,
    };
    let scopes = scopes_step(&ev, &s.forge.wanted, report);
    report.push(scopes);
    if let Some(step) = repo_step {
        report.push(step);
    }
}

fn split_repo(path: &str, step: StepName) -> Result<(String, String), Step> {
    crate::owner_and_repo(
        path,
        step,
        "a GitHub repository path (owner/repository)",
        "https://github.com/owner/repository.git",
    )
}

/// GitHub's answer to judge, or `None` when the request failed or GitHub rate-limited it: the
/// step that says which is then already in `report`, timed from `t`.
pub(crate) fn answered(
    step: StepName,
    s: &Session<'_>,
    sent: Result<ApiResponse, berth_net::NetError>,
    t: Instant,
    report: &mut ForgeReport,
) -> Option<ApiResponse> {
    let resp = match sent {
        Ok(r) => r,
        Err(e) => {
            report.push(s.transport_failed(step, &e, t.elapsed()));
            return None;
        }
    };
    if let Some(limited) = rate_limit(step, s, &resp) {
        report.push(limited.took(t.elapsed()));
        return None;
    }
    Some(resp)
}

/// A 404 from what should be GitHub's REST API root: the configured API URL is wrong.
pub(crate) fn not_github_api_root(step: StepName, s: &Session<'_>, resp: &ApiResponse) -> Step {
    not_api_root(
        step,
        s,
        resp,
        "is not GitHub's REST API root",
        "Use https://api.github.com, or https://your-host/api/v3 for GitHub Enterprise Server.",
    )
}

/// A rate-limit answer (429, or 403 with the quota used up), as a step.
pub(crate) fn rate_limit(step: StepName, s: &Session<'_>, resp: &ApiResponse) -> Option<Step> {
    let exhausted = resp.header("x-ratelimit-remaining") == Some("0");
    let said = parse::github_message(&resp.body).unwrap_or_default();
    let limited = resp.status == 429
        || (resp.status == 403
            && (exhausted || resp.retry_after().is_some() || said.to_ascii_lowercase().contains("rate limit")));
    if !limited {
        return None;
    }
    let wait = resp.retry_after().or_else(|| {
        let reset = resp.header("x-ratelimit-reset")?.parse::<i64>().ok()?;
        let secs = (reset - chrono::Utc::now().timestamp()).max(0);
        Some(Duration::from_secs(u64::try_from(secs).unwrap_or(0)))
    });
    let details = if said.is_empty() { Vec::new() } else { vec![said] };
    Some(rate_limited_step(step, s, wait, details))
}

async fn credential_step(s: &Session<'_>, ev: &mut Evidence, report: &mut ForgeReport) -> bool {
    let step = StepName::ApiCredential;
    let t = Instant::now();
    let resp = match s.get(s.url(&["user"]), &headers()).await {
        Ok(r) => r,
        Err(e) => {
            report.push(s.transport_failed(step, &e, t.elapsed()));
            return false;
        }
    };
    ev.observe(&resp);
    if let Some(limited) = rate_limit(step, s, &resp) {
        report.push(limited.took(t.elapsed()));
        return false;
    }
    match resp.status {
        200 => {
            let Some(v) = parse::json(&resp.body) else {
                report.push(unparseable_step(step, &resp, "the user").took(t.elapsed()));
                return false;
            };
            let login = parse::str_at(&v, &["login"]);
            let who = match (parse::str_at(&v, &["name"]), login) {
                (Some(n), Some(l)) if n != l => format!("{n} ({l})"),
                (_, Some(l)) => l.to_owned(),
                (Some(n), None) => n.to_owned(),
                (None, None) => "an unnamed account".to_owned(),
            };
            report.authenticated_as = Some(who.clone());
            report.identity = Some(crate::HostIdentity {
                display_name: parse::str_at(&v, &["name"]).map(str::to_owned),
                username: login.map(str::to_owned),
                email: parse::str_at(&v, &["email"]).map(str::to_owned),
            });
            let expiry = resp.header("github-authentication-token-expiration").map(str::to_owned);
            report.push(expiry_step(step, &who, expiry.as_deref()).took(t.elapsed()));
            true
        }
        401 => {
            report.fatal = true;
            let hint =
                "GitHub does not know this token (\"Bad credentials\"): it is wrong, expired or revoked. Create a \
                        new one (Settings > Developer settings > Personal access tokens) and update the credential.";
            report.push(auth_failed_step(step, s, &resp, vec![hint.to_owned()]).took(t.elapsed()));
            false
        }
        403 => {
            // GitHub App installation tokens cannot read /user; that does not make them invalid.
            let words = parse::server_words(&resp.body, resp.text_lines());
            report.push(
                Step::pass(
                    step,
                    "authenticated, but GitHub does not let this token read its user (as for GitHub App tokens)",
                )
                .with_details(words)
                .took(t.elapsed()),
            );
            true
        }
        404 => {
            report.push(not_github_api_root(step, s, &resp).took(t.elapsed()));
            false
        }
        _ => {
            report.push(http_problem_step(step, s, &resp).took(t.elapsed()));
            false
        }
    }
}

/// "authenticated as X", with the token's expiry when GitHub sends it (warning within 30 days).
fn expiry_step(step: StepName, who: &str, expiry: Option<&str>) -> Step {
    let Some(raw) = expiry else {
        return Step::pass(step, format!("authenticated as {who}"));
    };
    let date = raw.get(..10).and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
    let Some(date) = date else {
        return Step::pass(step, format!("authenticated as {who}; the token expires {}", parse::clip(raw)));
    };
    let days_left = (date - chrono::Utc::now().date_naive()).num_days();
    if days_left <= EXPIRY_WARNING_DAYS {
        Step::warn(
            step,
            Code::TokenExpiresSoon,
            format!(
                "authenticated as {who}; GitHub says the token expires on {date} (in {})",
                berth_core::words::plural(days_left.max(0), "day", "days")
            ),
            "Create a new token before it expires and update the credential's secret.",
        )
        .with_details(vec![format!("expires: {raw}")])
    } else {
        Step::pass(step, format!("authenticated as {who}; the token expires on {date}"))
    }
}

fn scopes_step(ev: &Evidence, wanted: &[Capability], report: &mut ForgeReport) -> Step {
    let step = StepName::ApiScopes;
    let Some(granted) = &ev.classic_scopes else {
        return Step::pass(
            step,
            "GitHub does not report the permissions of fine-grained and GitHub App tokens; the repository request checks \
             access",
        );
    };
    report.granted_scopes = Some(granted.clone());
    let private = report.repository.as_ref().map(|r| r.private);
    let a = scopes::github_assessment(granted, private, wanted);
    report.missing_scopes = a.missing_all().iter().map(|m| (*m).to_owned()).collect();
    report.blocked_capabilities =
        a.blocked_wanted.iter().chain(&a.blocked_other).map(|c| c.label().to_owned()).collect();
    let shown = if granted.is_empty() { "no scopes".to_owned() } else { granted.join(", ") };
    if !a.can_register() {
        report.fatal = true;
        return Step::fail(
            step,
            Code::ScopeMissing,
            format!("the classic token has {shown}; private repositories need the repo scope"),
            "Create a token with the repo scope (or a fine-grained token with Contents: read on the repository) and \
             replace the credential's token.",
        );
    }
    if !a.missing_wanted.is_empty() {
        return Step::warn(
            step,
            Code::ScopeMissing,
            format!(
                "the classic token has {shown}; without {} it cannot do {}, which this deployment wants ([scopes] want)",
                a.missing_wanted.join(", "),
                scopes::labels(&a.blocked_wanted)
            ),
            "Create a token that also has the missing scope and replace the credential's token.",
        );
    }
    Step::pass(step, format!("the classic token has {shown}"))
}

async fn repository_step(
    s: &Session<'_>,
    owner: &str,
    repo: &str,
    ev: &mut Evidence,
    report: &mut ForgeReport,
) -> Step {
    let step = StepName::ApiRepository;
    let t = Instant::now();
    let resp = match s.get(s.url(&["repos", owner, repo]), &headers()).await {
        Ok(r) => r,
        Err(e) => return s.transport_failed(step, &e, t.elapsed()),
    };
    ev.observe(&resp);
    if !resp.is_success() {
        let (failure, fatal) = repo_failure(s, step, &resp, owner, repo, report.authenticated_as.as_deref());
        report.fatal |= fatal;
        return failure.took(t.elapsed());
    }
    let Some(v) = parse::json(&resp.body) else {
        return unparseable_step(step, &resp, "the repository").took(t.elapsed());
    };
    let full_name = parse::str_at(&v, &["full_name"]).map_or_else(|| format!("{owner}/{repo}"), str::to_owned);
    let private = parse::bool_at(&v, &["private"]).unwrap_or(false);
    let main_branch = parse::str_at(&v, &["default_branch"]).map(str::to_owned);
    let permission = ["admin", "maintain", "push", "triage", "pull"]
        .into_iter()
        .find(|p| parse::bool_at(&v, &["permissions", p]) == Some(true))
        .map(str::to_owned);
    let mut message = format!("{full_name} is {}", if private { "private" } else { "public" });
    if let Some(b) = &main_branch {
        message.push_str(&format!(", default branch {b}"));
    }
    if let Some(p) = &permission {
        message.push_str(&format!("; permission: {p}"));
    }
    if parse::bool_at(&v, &["archived"]) == Some(true) {
        message.push_str("; archived (read-only)");
    }
    report.repository = Some(RepoFacts { full_name, private, main_branch, permission });
    Step::pass(step, message).took(t.elapsed())
}

fn repo_failure(
    s: &Session<'_>,
    step: StepName,
    resp: &ApiResponse,
    owner: &str,
    repo: &str,
    who: Option<&str>,
) -> (Step, bool) {
    if let Some(limited) = rate_limit(step, s, resp) {
        return (limited, false);
    }
    let words = parse::server_words(&resp.body, resp.text_lines());
    let subject = match who {
        Some(w) => format!("authenticated as {w}, who"),
        None => "the credential".to_owned(),
    };
    match resp.status {
        404 => (
            Step::fail(
                step,
                Code::RepositoryNotFoundOrNoAccess,
                format!("{subject} cannot see {owner}/{repo}, or it does not exist (HTTP 404)"),
                "Check the owner and repository name in the clone URL, and that the account or token has read access: \
                 GitHub answers 404 for private repositories it hides (a fine-grained token must list the repository).",
            )
            .with_details(words),
            true,
        ),
        403 => {
            let (message, remedy, mut details) = match resp.header("x-github-sso") {
                Some(sso) => (
                    format!("the organization of {owner}/{repo} requires SAML single sign-on authorization of this token"),
                    "Authorize the token for the organization (Settings > Personal access tokens > Configure SSO), then \
                     check again.",
                    vec![format!("sso: {}", parse::clip(sso))],
                ),
                None => (
                    format!("{subject} may not read {owner}/{repo} (HTTP 403)"),
                    "The details say why: an organization IP allow list, a token policy, or a missing permission.",
                    Vec::new(),
                ),
            };
            details.extend(words);
            (Step::fail(step, Code::AccessDenied, message, remedy).with_details(details), true)
        }
        401 => (auth_failed_step(step, s, resp, Vec::new()), true),
        _ => (http_problem_step(step, s, resp), false),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn expiry_warns_within_thirty_days() {
        let soon = (chrono::Utc::now() + chrono::Duration::days(10)).format("%Y-%m-%d 10:00:00 UTC").to_string();
        let s = expiry_step(StepName::ApiCredential, "octocat", Some(&soon));
        assert_eq!(s.code, Code::TokenExpiresSoon);
        let later = (chrono::Utc::now() + chrono::Duration::days(90)).format("%Y-%m-%d 10:00:00 UTC").to_string();
        let s = expiry_step(StepName::ApiCredential, "octocat", Some(&later));
        assert_eq!(s.code, Code::Ok);
        assert!(s.message.contains("expires on"));
        assert_eq!(expiry_step(StepName::ApiCredential, "octocat", None).message, "authenticated as octocat");
    }

    #[test]
    fn classic_scope_assessment() {
        let mut report = ForgeReport {
            repository: Some(RepoFacts { full_name: "o/r".into(), private: true, main_branch: None, permission: None }),
            ..ForgeReport::default()
        };
        let ev = Evidence { classic_scopes: Some(vec!["public_repo".into()]) };
        let s = scopes_step(&ev, &[], &mut report);
        assert_eq!((s.status, s.code), (berth_core::StepStatus::Fail, Code::ScopeMissing));
        assert!(report.fatal);
        let fine = scopes_step(&Evidence::default(), &[], &mut ForgeReport::default());
        assert_eq!(fine.status, berth_core::StepStatus::Pass);
    }
}
