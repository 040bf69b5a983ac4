//! Listing the repositories of a Bitbucket Cloud workspace, a Bitbucket Data Center project or a
//! GitHub organisation or user, for a bulk import.
//!
//! * Cloud: `GET /2.0/repositories/{workspace}?pagelen=100`, following the opaque `next`.
//! * Data Center: `GET /rest/api/1.0/projects/{key}/repos?start=&limit=100`, following
//!   `nextPageStart` until `isLastPage`; 401 after a good credential means no PROJECT_READ.
//! * GitHub: `GET /orgs/{org}/repos?per_page=100`, and on 404 `GET /users/{user}/repos` (a
//!   user's public repositories, as GitHub lists them), following `Link: <…>; rel="next"`.
//!
//! Pages go through [`crate::pager::collect`]: the same per-host limit and one retry after a
//! short `Retry-After` as every request of [`Forge`], next links only on the API's origin, and
//! at most [`MAX_LISTED`] repositories. A failure is one failed step with the host's words and a
//! stable code, and the wait a rate limit asked for.

use crate::pager::{self, Page};
use crate::{auth_failed_step, http_problem_step, json_headers, parse, CredentialView, Forge, ForgeReport, Session};
use berth_core::{Code, ImportScope, Provider, Step, StepName, StepStatus};
use berth_net::ApiResponse;
use reqwest::header::HeaderMap;
use serde_json::Value;
use std::time::Duration;
use url::Url;

/// The most repositories one listing reads.
pub const MAX_LISTED: usize = 10_000;
const PAGE: &str = "100";
const STEP: StepName = StepName::ApiRepository;

/// A repository as the host lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedRepo {
    /// `ws/slug`, `KEY/slug`, `owner/name`: what a person picks in an import.
    pub full_name: String,
    pub slug: String,
    /// The name the host shows.
    pub name: String,
    /// The HTTPS (or the host's HTTP) clone URL.
    pub clone_url: String,
    pub private: bool,
    pub default_branch: Option<String>,
}

/// Why a listing stopped: one failed step, and the wait a rate limit asked for.
#[derive(Debug, Clone)]
pub struct ListFailure {
    pub step: Step,
    pub retry_after: Option<Duration>,
}

impl Forge {
    /// Lists the repositories `cred` can see in `scope` on the host whose REST API is `api_url`.
    pub async fn list_repositories(
        &self,
        provider: Provider,
        api_url: &str,
        scope: &ImportScope,
        cred: &CredentialView<'_>,
    ) -> Result<Vec<ListedRepo>, ListFailure> {
        let mut report = ForgeReport::default();
        let Some(s) = self.session(provider, api_url, cred, &mut report) else {
            let step = report.steps.pop().unwrap_or_else(|| Step::skip(STEP, "no REST API"));
            return Err(ListFailure { step: failed(step, Code::InvalidImportSource), retry_after: None });
        };
        let listed = match (provider, scope) {
            (Provider::BitbucketCloud, ImportScope::Workspace(ws)) => cloud(&s, ws).await,
            (Provider::BitbucketDatacenter, ImportScope::Project(key)) => datacenter(&s, key).await,
            (Provider::Github, ImportScope::Owner(owner)) => github(&s, owner).await,
            _ => Err(Step::fail(
                STEP,
                Code::InvalidImportSource,
                format!("{} ({provider}) lists no such thing as this import source names", s.host()),
                "Give a workspace URL for Bitbucket Cloud, a project URL for Data Center, an organisation or user \
                 URL for GitHub.",
            )),
        };
        listed.map_err(|step| ListFailure {
            step: failed(step, Code::ProtocolError),
            retry_after: s.retry_after.get().copied(),
        })
    }
}

/// A listing that did not finish is a failure, whatever the step would be in a check (where
/// the REST API is a second opinion and its problems only warn).
fn failed(mut step: Step, fallback: Code) -> Step {
    if step.status != StepStatus::Fail {
        step.status = StepStatus::Fail;
    }
    if step.code == Code::Ok {
        step.code = fallback;
    }
    step
}

fn with_query(mut url: Url, pairs: &[(&str, &str)]) -> Url {
    url.query_pairs_mut().clear().extend_pairs(pairs);
    url
}

fn not_found(s: &Session<'_>, what: String, resp: &ApiResponse) -> Step {
    Step::fail(
        STEP,
        Code::ImportSourceNotFound,
        format!("{} has no {what}, or the credential cannot see it (HTTP {})", s.host(), resp.status),
        "Check the URL's spelling (copy it from the host's page) and that the credential's account belongs to it.",
    )
    .with_details(parse::server_words(&resp.body, resp.text_lines()))
}

fn json_page(resp: &ApiResponse, what: &str) -> Result<Value, Step> {
    parse::json(&resp.body).ok_or_else(|| crate::unparseable_step(STEP, resp, what))
}

/// The clone link named `name` in `links.clone` (Bitbucket's shape).
fn clone_link<'a>(v: &'a Value, names: &[&str]) -> Option<&'a str> {
    v.get("links")?.get("clone")?.as_array()?.iter().find_map(|l| {
        let n = l.get("name")?.as_str()?;
        names.contains(&n).then(|| l.get("href")?.as_str()).flatten()
    })
}

// ---------------------------------------------------------------------------------------------
// Bitbucket Cloud

fn cloud_headers() -> HeaderMap {
    json_headers("application/json", &[])
}

async fn cloud(s: &Session<'_>, ws: &str) -> Result<Vec<ListedRepo>, Step> {
    let first = with_query(s.url(&["repositories", ws]), &[("pagelen", PAGE)]);
    let parse_page = |resp: &ApiResponse| -> Result<Page<ListedRepo>, Step> {
        let v = json_page(resp, "a page of repositories")?;
        let items = v.get("values").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        let items = items
            .iter()
            .filter_map(|r| {
                let full_name = parse::str_at(r, &["full_name"])?.to_owned();
                let slug = parse::str_at(r, &["slug"])
                    .map(str::to_owned)
                    .or_else(|| full_name.rsplit('/').next().map(str::to_owned))?;
                Some(ListedRepo {
                    name: parse::str_at(r, &["name"]).unwrap_or(&slug).to_owned(),
                    clone_url: clone_link(r, &["https"])?.to_owned(),
                    private: parse::bool_at(r, &["is_private"]).unwrap_or(true),
                    default_branch: parse::str_at(r, &["mainbranch", "name"]).map(str::to_owned),
                    full_name,
                    slug,
                })
            })
            .collect();
        let next = match pager::cloud_next(&v) {
            Some(Ok(u)) => Some(u),
            Some(Err(m)) => return Err(crate::unparseable_step(STEP, resp, &m)),
            None => None,
        };
        Ok(Page { items, next })
    };
    let fail = |resp: &ApiResponse| cloud_failure(s, resp, ws);
    pager::collect(s, STEP, first, &cloud_headers(), MAX_LISTED, parse_page, fail).await
}

fn cloud_failure(s: &Session<'_>, resp: &ApiResponse, ws: &str) -> Step {
    let scope_error = parse::cloud_error(&resp.body).filter(parse::CloudError::is_scope_error);
    match resp.status {
        401 => auth_failed_step(StepName::ApiCredential, s, resp, Vec::new()),
        400 | 403 if scope_error.is_some() => {
            let err = scope_error.unwrap_or_default();
            let required =
                if err.required.is_empty() { "read:repository:bitbucket".to_owned() } else { err.required.join(", ") };
            Step::fail(
                StepName::ApiScopes,
                Code::ScopeMissing,
                format!("{} refused to list the workspace's repositories: the token lacks {required}", s.host()),
                "Create a token with read:repository:bitbucket (an API token with scopes, or an access token with the \
                 repository scope) and replace the credential's secret.",
            )
            .with_details(err.granted.map(|g| vec![format!("granted: {}", g.join(", "))]).unwrap_or_default())
        }
        403 => Step::fail(
            STEP,
            Code::AccessDenied,
            format!("{} refused to list workspace {ws} (HTTP 403)", s.host()),
            "The details say why: often the workspace's IP allowlist or two-step verification policy.",
        )
        .with_details(parse::server_words(&resp.body, resp.text_lines())),
        404 | 410 => not_found(s, format!("workspace {ws}"), resp),
        _ => http_problem_step(STEP, s, resp),
    }
}

// ---------------------------------------------------------------------------------------------
// Bitbucket Data Center

async fn datacenter(s: &Session<'_>, key: &str) -> Result<Vec<ListedRepo>, Step> {
    let base = s.url(&["api", "1.0", "projects", key, "repos"]);
    let first = with_query(base.clone(), &[("start", "0"), ("limit", PAGE)]);
    let parse_page = |resp: &ApiResponse| -> Result<Page<ListedRepo>, Step> {
        let v = json_page(resp, "a page of repositories")?;
        let items = v.get("values").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        let items = items
            .iter()
            .filter_map(|r| {
                let slug = parse::str_at(r, &["slug"])?.to_owned();
                let project = parse::str_at(r, &["project", "key"]).unwrap_or(key);
                Some(ListedRepo {
                    full_name: format!("{project}/{slug}"),
                    name: parse::str_at(r, &["name"]).unwrap_or(&slug).to_owned(),
                    clone_url: clone_link(r, &["http", "https"])?.to_owned(),
                    private: !parse::bool_at(r, &["public"]).unwrap_or(false),
                    default_branch: None,
                    slug,
                })
            })
            .collect();
        let last = parse::bool_at(&v, &["isLastPage"]).unwrap_or(true);
        let next = match (last, v.get("nextPageStart").and_then(Value::as_u64)) {
            (false, Some(start)) => Some(with_query(base.clone(), &[("start", &start.to_string()), ("limit", PAGE)])),
            _ => None,
        };
        Ok(Page { items, next })
    };
    let fail = |resp: &ApiResponse| datacenter_failure(s, resp, key);
    pager::collect(s, STEP, first, &cloud_headers(), MAX_LISTED, parse_page, fail).await
}

fn datacenter_failure(s: &Session<'_>, resp: &ApiResponse, key: &str) -> Step {
    let errors = parse::datacenter_errors(&resp.body);
    let not_permitted = errors.iter().any(|e| e.contains("AuthorisationException"));
    match resp.status {
        401 if not_permitted || resp.header("x-ausername").is_some() => {
            let who =
                resp.header("x-ausername").map(|u| format!("{u}, who")).unwrap_or_else(|| "the credential".into());
            Step::fail(
                STEP,
                Code::AccessDenied,
                format!("{} accepted {who} may not see project {key} (HTTP 401)", s.host()),
                "Give the account or token PROJECT_READ on the project (or read access to its repositories).",
            )
            .with_details(errors)
        }
        401 => auth_failed_step(StepName::ApiCredential, s, resp, Vec::new()),
        404 => not_found(s, format!("project {key}"), resp),
        _ => http_problem_step(STEP, s, resp),
    }
}

// ---------------------------------------------------------------------------------------------
// GitHub

async fn github(s: &Session<'_>, owner: &str) -> Result<Vec<ListedRepo>, Step> {
    let headers = json_headers("application/vnd.github+json", &[("x-github-api-version", "2022-11-28")]);
    let org = with_query(s.url(&["orgs", owner, "repos"]), &[("type", "all"), ("per_page", PAGE)]);
    let fail = |resp: &ApiResponse| github_failure(s, resp, owner);
    match pager::collect(s, STEP, org, &headers, MAX_LISTED, github_page, fail).await {
        Err(step) if step.code == Code::ImportSourceNotFound => {
            // Not an organisation (or one the token cannot see): a user, whose public
            // repositories GitHub lists.
            let user = with_query(s.url(&["users", owner, "repos"]), &[("type", "owner"), ("per_page", PAGE)]);
            pager::collect(s, STEP, user, &headers, MAX_LISTED, github_page, fail).await
        }
        other => other,
    }
}

fn github_page(resp: &ApiResponse) -> Result<Page<ListedRepo>, Step> {
    let v = json_page(resp, "a page of repositories")?;
    let Some(list) = v.as_array() else {
        return Err(crate::unparseable_step(STEP, resp, "a JSON array of repositories"));
    };
    Ok(Page { items: github_items(list), next: link_next(resp.header("link")) })
}

/// GitHub's repository objects as listed (an organisation's, a user's, an installation's).
pub(crate) fn github_items(list: &[Value]) -> Vec<ListedRepo> {
    list.iter()
        .filter_map(|r| {
            let full_name = parse::str_at(r, &["full_name"])?.to_owned();
            let slug = parse::str_at(r, &["name"])?.to_owned();
            Some(ListedRepo {
                name: slug.clone(),
                clone_url: parse::str_at(r, &["clone_url"])?.to_owned(),
                private: parse::bool_at(r, &["private"]).unwrap_or(true),
                default_branch: parse::str_at(r, &["default_branch"]).map(str::to_owned),
                full_name,
                slug,
            })
        })
        .collect()
}

/// `<https://…?page=2>; rel="next", <…>; rel="last"` → the `next` URL.
pub(crate) fn link_next(header: Option<&str>) -> Option<Url> {
    header?.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let is_next = params.split(';').any(|p| {
            let p = p.trim();
            p.eq_ignore_ascii_case("rel=\"next\"") || p.eq_ignore_ascii_case("rel=next")
        });
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        is_next.then(|| Url::parse(target).ok()).flatten()
    })
}

fn github_failure(s: &Session<'_>, resp: &ApiResponse, owner: &str) -> Step {
    if let Some(limited) = crate::github::rate_limit(STEP, s, resp) {
        return limited;
    }
    match resp.status {
        401 => auth_failed_step(StepName::ApiCredential, s, resp, Vec::new()),
        404 => not_found(s, format!("organisation or user {owner}"), resp),
        403 => Step::fail(
            STEP,
            Code::AccessDenied,
            format!("{} refused to list the repositories of {owner} (HTTP 403)", s.host()),
            "The details say why: often an organisation's SAML single sign-on, which the token must be authorised \
             for.",
        )
        .with_details(parse::server_words(&resp.body, resp.text_lines())),
        _ => http_problem_step(STEP, s, resp),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn github_link_headers() {
        let h = r#"<https://api.github.com/orgs/o/repos?page=2>; rel="next", <https://api.github.com/orgs/o/repos?page=5>; rel="last""#;
        assert_eq!(link_next(Some(h)).unwrap().query(), Some("page=2"));
        let last_page =
            r#"<https://api.github.com/orgs/o/repos?page=1>; rel="first", <https://x/y?page=4>; rel="prev""#;
        assert!(link_next(Some(last_page)).is_none());
        assert!(link_next(None).is_none());
        assert!(link_next(Some("garbage")).is_none());
    }

    #[test]
    fn clone_links_by_name() {
        let v = serde_json::json!({"links": {"clone": [{"name": "ssh", "href": "git@x:a/b.git"}, {"name": "https", "href": "https://x/a/b.git"}]}});
        assert_eq!(clone_link(&v, &["https"]), Some("https://x/a/b.git"));
        assert_eq!(clone_link(&v, &["http"]), None);
    }
}
