//! The `api_repository` step: the repository, and the credential's permission level on it.

use super::scope_check::{create_token_remedy, missing_from_scope_error};
use super::{header_token_label, headers, hints_401, with_article, Evidence};
use crate::pager::{self, Page};
use crate::parse::{self, CloudError};
use crate::{auth_failed_step, http_problem_step, unparseable_step, ForgeReport, RepoFacts, Session};
use berth_core::{Code, Step, StepName};
use berth_net::ApiResponse;
use serde_json::Value;
use std::time::Instant;

/// "authenticated as Jo Doe (jo), who" / "authenticated as a repository access token, which".
fn subject(report: &ForgeReport, ev: &Evidence) -> String {
    match (ev.token_label.or_else(|| header_token_label(ev)), &report.authenticated_as) {
        (Some(label), _) => format!("authenticated as {}, which", with_article(label)),
        (None, Some(who)) => format!("authenticated as {who}, who"),
        (None, None) => "the credential".to_owned(),
    }
}

pub(super) async fn repository_step(
    s: &Session<'_>,
    ws: &str,
    slug: &str,
    ev: &mut Evidence,
    report: &mut ForgeReport,
) -> Step {
    let step = StepName::ApiRepository;
    let t = Instant::now();
    let mut url = s.url(&["repositories", ws, slug]);
    url.query_pairs_mut().append_pair("fields", "full_name,is_private,mainbranch.name,scm,links.clone");
    let resp = match s.get(url, &headers()).await {
        Ok(r) => r,
        Err(e) => return s.transport_failed(step, &e, t.elapsed()),
    };
    ev.observe(&resp);
    if !resp.is_success() {
        let subject = subject(report, ev);
        let (failure, fatal) = repo_failure(s, step, &resp, ws, slug, &subject, ev);
        report.fatal |= fatal;
        return failure.took(t.elapsed());
    }
    let Some(v) = parse::json(&resp.body) else {
        return unparseable_step(step, &resp, "the repository").took(t.elapsed());
    };
    ev.repository_read = true;
    let full_name = parse::str_at(&v, &["full_name"]).map_or_else(|| format!("{ws}/{slug}"), str::to_owned);
    if let Some(scm) = parse::str_at(&v, &["scm"]).filter(|scm| !scm.eq_ignore_ascii_case("git")) {
        report.fatal = true;
        return Step::fail(
            step,
            Code::UnsupportedVcs,
            format!("{full_name} is a {scm} repository; Berth registers Git repositories"),
            "Register a Git repository.",
        )
        .took(t.elapsed());
    }
    let private = parse::bool_at(&v, &["is_private"]).unwrap_or(false);
    let main_branch = parse::str_at(&v, &["mainbranch", "name"]).map(str::to_owned);
    let (permission, note) = if ev.token_label.or_else(|| header_token_label(ev)).is_some() {
        (None, Some("access tokens cannot read their permission level".to_owned()))
    } else {
        permission(s, ws, slug, &full_name, private).await
    };
    let mut message = format!("{full_name} is {}", if private { "private" } else { "public" });
    match &main_branch {
        Some(b) => message.push_str(&format!(", main branch {b}")),
        None => message.push_str(", no main branch yet (an empty repository)"),
    }
    match (&permission, &note) {
        (Some(p), _) => message.push_str(&format!("; permission: {p}")),
        (None, Some(n)) => message.push_str(&format!("; {n}")),
        (None, None) => {}
    }
    report.repository = Some(RepoFacts { full_name, private, main_branch, permission });
    Step::pass(step, message).took(t.elapsed())
}

/// A non-2xx answer about the repository (or its branches): the step, and whether it is fatal.
fn repo_failure(
    s: &Session<'_>,
    step: StepName,
    resp: &ApiResponse,
    ws: &str,
    slug: &str,
    subject: &str,
    ev: &mut Evidence,
) -> (Step, bool) {
    let words = parse::server_words(&resp.body, resp.text_lines());
    let err = parse::cloud_error(&resp.body);
    match resp.status {
        404 => (
            Step::fail(
                step,
                Code::RepositoryNotFoundOrNoAccess,
                format!("{subject} cannot see {ws}/{slug}, or it does not exist (HTTP 404)"),
                "Check the workspace and repository name in the clone URL, and that the account or access token has at \
                 least read access: Bitbucket answers 404 for private repositories it hides.",
            )
            .with_details(words),
            true,
        ),
        400 | 403 if err.as_ref().is_some_and(CloudError::is_scope_error) => {
            let err = err.unwrap_or_default();
            ev.observe_error(&err);
            let missing = missing_from_scope_error(&err);
            (
                Step::fail(
                    step,
                    Code::ScopeMissing,
                    format!(
                        "Bitbucket refused {ws}/{slug} (HTTP {}) because the token lacks {}",
                        resp.status,
                        missing.join(", ")
                    ),
                    create_token_remedy(),
                ),
                true,
            )
        }
        403 => {
            let said = words.first().map(|w| format!(": {w}")).unwrap_or_default();
            (
                Step::fail(
                    step,
                    Code::AccessDenied,
                    format!("{subject} may not read {ws}/{slug} (HTTP 403){said}"),
                    "The details say why: often the workspace's IP allowlist (an admin must allow the Berth server's \
                     address) or its two-step verification policy, or a missing repository permission.",
                )
                .with_details(words),
                true,
            )
        }
        401 => (auth_failed_step(step, s, resp, hints_401(s, resp)), true),
        _ => (http_problem_step(step, s, resp), false),
    }
}

/// The credential's permission level on the repository, or a note why it is unknown.
async fn permission(
    s: &Session<'_>,
    ws: &str,
    slug: &str,
    full_name: &str,
    private: bool,
) -> (Option<String>, Option<String>) {
    let step = StepName::ApiRepository;
    let mut url = s.url(&["user", "workspaces", ws, "permissions", "repositories"]);
    url.query_pairs_mut().append_pair("q", &format!("repository.name=\"{slug}\"")).append_pair("pagelen", "100");
    let found = pager::collect(
        s,
        step,
        url,
        &headers(),
        1_000,
        |resp| {
            let v = parse::json(&resp.body).ok_or_else(|| unparseable_step(step, resp, "repository permissions"))?;
            let items = v
                .get("values")
                .and_then(Value::as_array)
                .map(|vals| {
                    vals.iter()
                        .filter_map(|p| {
                            let perm = parse::str_at(p, &["permission"])?.to_owned();
                            let name = parse::str_at(p, &["repository", "full_name"]).unwrap_or_default().to_owned();
                            Some((name, perm))
                        })
                        .collect()
                })
                .unwrap_or_default();
            Ok(Page { items, next: next_url(&v) })
        },
        |resp| {
            let words = parse::server_words(&resp.body, resp.text_lines());
            Step::warn(step, Code::AccessDenied, format!("HTTP {}", resp.status), "").with_details(words)
        },
    )
    .await;
    match found {
        Ok(items) => {
            let mine = items
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(full_name))
                .or_else(|| (items.len() == 1).then(|| &items[0]))
                .map(|(_, p)| p.clone());
            match mine {
                Some(p) => (Some(p), None),
                None if private => (None, Some("no explicit permission was listed for it".to_owned())),
                None => (None, Some("no explicit permission (a public repository)".to_owned())),
            }
        }
        Err(e) => {
            let why = e.details.first().map(|d| format!("{}: {d}", e.message)).unwrap_or(e.message);
            (None, Some(format!("the permission level could not be read ({why})")))
        }
    }
}

fn next_url(v: &Value) -> Option<url::Url> {
    pager::cloud_next(v).and_then(Result::ok)
}
