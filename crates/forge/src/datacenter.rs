//! Bitbucket Data Center, REST 1.0 (`{api}/api/latest/...`, `{api}` being `https://host[:port][/context]/rest`).
//!
//! * Who: `GET application-properties` answers anyone, and Data Center names the authenticated
//!   user in the `X-AUSERNAME` response header; a refused credential gets 401.
//! * A repository the credential may not see answers **401**, not 403; 404 means it does not exist.
//! * Token permissions cannot be read; the repository request shows whether they suffice.

use crate::{
    auth_failed_step, http_problem_step, json_headers, not_api_root, parse, unparseable_step, AuthShape, ForgeReport,
    RepoFacts, Session,
};
use berth_core::{Code, Step, StepName};
use berth_net::ApiResponse;
use reqwest::header::HeaderMap;
use serde_json::Value;
use std::time::Instant;

fn headers() -> HeaderMap {
    json_headers("application/json", &[])
}

pub(crate) async fn run(s: &Session<'_>, repo_path: Option<&str>, report: &mut ForgeReport) {
    if !credential_step(s, report).await {
        return;
    }
    report.push(Step::pass(
        StepName::ApiScopes,
        "Data Center tokens carry a permission level (such as REPO_READ), which Berth cannot read; it is checked on the \
         repository",
    ));
    let Some(repo_path) = repo_path else { return };
    let step = match split_repo(repo_path, StepName::ApiRepository) {
        Ok((key, slug)) => repository_step(s, &key, &slug, report).await,
        Err(step) => step,
    };
    report.push(step);
}

/// `bitbucket/scm/proj/repo` → (`proj`, `repo`): everything up to and including the `scm`
/// segment is the context path; without one, the last two segments.
pub(crate) fn split_repo(path: &str, step: StepName) -> Result<(String, String), Step> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').filter(|p| !p.is_empty()).collect();
    let rest = match parts.iter().position(|p| p.eq_ignore_ascii_case("scm")) {
        Some(i) => &parts[i + 1..],
        None => &parts[parts.len().saturating_sub(2)..],
    };
    match rest {
        [key, slug] => Ok(((*key).to_owned(), slug.trim_end_matches(".git").to_owned())),
        _ => Err(Step::fail(
            step,
            Code::InvalidUrl,
            format!("{path:?} is not a Bitbucket Data Center repository path (…/scm/PROJECT/repository)"),
            "Use the HTTP clone URL Bitbucket shows, such as https://git.example.com/bitbucket/scm/proj/repo.git.",
        )),
    }
}

async fn credential_step(s: &Session<'_>, report: &mut ForgeReport) -> bool {
    let step = StepName::ApiCredential;
    let t = Instant::now();
    let resp = match s.get(s.url(&["api", "latest", "application-properties"]), &headers()).await {
        Ok(r) => r,
        Err(e) => {
            report.push(s.transport_failed(step, &e, t.elapsed()));
            return false;
        }
    };
    match resp.status {
        200 => {
            let v = parse::json(&resp.body).unwrap_or(Value::Null);
            let server = match (parse::str_at(&v, &["displayName"]), parse::str_at(&v, &["version"])) {
                (Some(n), Some(ver)) => format!("{n} (Bitbucket Data Center {ver})"),
                (None, Some(ver)) => format!("Bitbucket Data Center {ver}"),
                (Some(n), None) => n.to_owned(),
                (None, None) => s.host(),
            };
            match resp.header("x-ausername").filter(|u| !u.is_empty()) {
                Some(user) => {
                    report.authenticated_as = Some(user.to_owned());
                    report.identity =
                        Some(crate::HostIdentity { username: Some(user.to_owned()), ..crate::HostIdentity::default() });
                    report.push(Step::pass(step, format!("authenticated as {user} on {server}")).took(t.elapsed()));
                }
                None => report.push(
                    Step::pass(
                        step,
                        format!("{server} accepted the credential but did not say as whom (no X-AUSERNAME header)"),
                    )
                    .took(t.elapsed()),
                ),
            }
            true
        }
        401 => {
            report.fatal = true;
            let mut step = auth_failed_step(step, s, &resp, hints_401(s));
            if let Some(reason) = resp.header("x-authentication-denied-reason") {
                step.details.push(format!("denied reason: {}", parse::clip(reason)));
                if reason.to_ascii_uppercase().contains("CAPTCHA") {
                    step.remedy = "Too many failed logins: Bitbucket now wants a CAPTCHA for this user. Log in once in \
                                   the browser to clear it, then fix the stored password (or use an HTTP access token)."
                        .to_owned();
                }
            }
            report.push(step.took(t.elapsed()));
            false
        }
        404 => {
            report.push(
                not_api_root(
                    step,
                    s,
                    &resp,
                    "is not Bitbucket Data Center's REST root",
                    "Set the integration's api_url to the REST root including the context path, such as \
                     https://git.example.com:7990/bitbucket/rest.",
                )
                .took(t.elapsed()),
            );
            false
        }
        _ => {
            report.push(http_problem_step(step, s, &resp).took(t.elapsed()));
            false
        }
    }
}

fn hints_401(s: &Session<'_>) -> Vec<String> {
    vec![match s.shape {
        AuthShape::Bearer => "Check that the HTTP access token has not expired or been revoked (Manage account > HTTP \
                              access tokens, or the project's or repository's settings)."
            .to_owned(),
        AuthShape::Basic { .. } => "Check the username and the password or personal access token; project and \
                                    repository tokens work only as Bearer tokens (store them as an Access Token \
                                    without a username)."
            .to_owned(),
    }]
}

async fn repository_step(s: &Session<'_>, key: &str, slug: &str, report: &mut ForgeReport) -> Step {
    let step = StepName::ApiRepository;
    let t = Instant::now();
    let url = s.url(&["api", "latest", "projects", key, "repos", slug]);
    let resp = match s.get(url, &headers()).await {
        Ok(r) => r,
        Err(e) => return s.transport_failed(step, &e, t.elapsed()),
    };
    if !resp.is_success() {
        let (failure, fatal) = repo_failure(s, step, &resp, key, slug, report.authenticated_as.as_deref());
        report.fatal |= fatal;
        return failure.took(t.elapsed());
    }
    let Some(v) = parse::json(&resp.body) else {
        return unparseable_step(step, &resp, "the repository").took(t.elapsed());
    };
    let project = parse::str_at(&v, &["project", "key"]).unwrap_or(key);
    let repo_slug = parse::str_at(&v, &["slug"]).unwrap_or(slug);
    let full_name = format!("{project}/{repo_slug}");
    let private = !parse::bool_at(&v, &["public"]).unwrap_or(false);
    let (main_branch, note) = default_branch(s, key, slug).await;
    let mut message = format!("{full_name} is {}", if private { "private" } else { "public" });
    match (&main_branch, note) {
        (Some(b), _) => message.push_str(&format!(", default branch {b}")),
        (None, Some(n)) => message.push_str(&format!(", {n}")),
        (None, None) => message.push_str(", no default branch yet (an empty repository)"),
    }
    if let Some(state) = parse::str_at(&v, &["state"]).filter(|st| *st != "AVAILABLE") {
        message.push_str(&format!("; state {state}"));
    }
    report.repository = Some(RepoFacts { full_name, private, main_branch, permission: None });
    Step::pass(step, message).took(t.elapsed())
}

/// The default branch, or a note why it is unknown (`None, None` for an empty repository).
async fn default_branch(s: &Session<'_>, key: &str, slug: &str) -> (Option<String>, Option<String>) {
    let url = s.url(&["api", "latest", "projects", key, "repos", slug, "default-branch"]);
    match s.get(url, &headers()).await {
        Ok(r) if r.status == 200 => {
            let name = parse::json(&r.body).and_then(|v| parse::str_at(&v, &["displayId"]).map(str::to_owned));
            match name {
                Some(n) => (Some(n), None),
                None => (None, Some("the default branch answer was not readable".to_owned())),
            }
        }
        Ok(r) if r.status == 204 || r.status == 404 => (None, None),
        Ok(r) => (None, Some(format!("the default branch could not be read (HTTP {})", r.status))),
        Err(e) => (None, Some(format!("the default branch could not be read ({})", e.code))),
    }
}

fn repo_failure(
    s: &Session<'_>,
    step: StepName,
    resp: &ApiResponse,
    key: &str,
    slug: &str,
    who: Option<&str>,
) -> (Step, bool) {
    let words = parse::server_words(&resp.body, resp.text_lines());
    match resp.status {
        // The credential step passed, so a 401 here is Data Center's "insufficient permissions".
        401 => {
            let subject = match who {
                Some(w) => format!("authenticated as {w}, who"),
                None => "the credential".to_owned(),
            };
            (
                Step::fail(
                    step,
                    Code::AccessDenied,
                    format!("{subject} lacks REPO_READ on {key}/{slug} (Data Center answers HTTP 401 for that)"),
                    "Grant the user at least REPO_READ on the repository (or PROJECT_READ on the project); a project or \
                     repository access token only reaches its own project or repository.",
                )
                .with_details(words),
                true,
            )
        }
        404 => (
            Step::fail(
                step,
                Code::RepositoryNotFoundOrNoAccess,
                format!(
                    "{} has no repository {key}/{slug} (Data Center answers 404 only when it does not exist)",
                    s.host()
                ),
                "Check the project key and repository slug in the clone URL (copy it from Clone > HTTP in Bitbucket).",
            )
            .with_details(words),
            true,
        ),
        403 => (
            Step::fail(
                step,
                Code::AccessDenied,
                format!("{} refused {key}/{slug} (HTTP 403)", s.host()),
                "The details say why; check the user's or token's permission on the repository.",
            )
            .with_details(words),
            true,
        ),
        _ => (http_problem_step(step, s, resp), false),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn repo_paths_with_and_without_context() {
        let ok = |p: &str| split_repo(p, StepName::ApiRepository).ok();
        assert_eq!(ok("bitbucket/scm/proj/repo"), Some(("proj".into(), "repo".into())));
        assert_eq!(ok("scm/PROJ/repo.git"), Some(("PROJ".into(), "repo".into())));
        assert_eq!(ok("scm/~jo/dotfiles"), Some(("~jo".into(), "dotfiles".into())));
        assert_eq!(ok("proj/repo"), Some(("proj".into(), "repo".into())));
        assert_eq!(ok("bitbucket/scm/proj/repo/extra"), None);
        assert_eq!(ok("repo"), None);
    }
}
