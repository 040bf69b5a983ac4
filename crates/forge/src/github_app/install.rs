//! Where a GitHub App is installed: the installation on a repository's owner, the app's
//! installations, and the findings when it is not installed there or has not selected the
//! repository (GitHub answers 404 to both; the list of installations tells them apart).

use super::{headers, jwt_refused, AppInfo, GithubApp};
use crate::github as gh;
use crate::{http_problem_step, parse, unparseable_step, ForgeReport, Session};
use berth_core::{Code, Step, StepName};
use std::time::Instant;
use url::Url;

/// The installation to use on `owner`, and the account it is installed on.
pub(super) async fn installation_of(
    s: &Session<'_>,
    owner: &str,
    repo: &str,
    app: &GithubApp<'_>,
    info: &AppInfo,
    report: &mut ForgeReport,
) -> Option<(i64, String)> {
    if let Some(id) = app.installation_id {
        return Some((id, owner.to_owned()));
    }
    let step = StepName::ApiRepository;
    let t = Instant::now();
    let resp =
        gh::answered(step, s, s.get(s.url(&["repos", owner, repo, "installation"]), &headers()).await, t, report)?;
    match resp.status {
        200 => {
            let v = parse::json(&resp.body);
            let id = v.as_ref().and_then(|v| v.get("id")).and_then(serde_json::Value::as_i64);
            let account = v.as_ref().and_then(|v| parse::str_at(v, &["account", "login"])).unwrap_or(owner).to_owned();
            match id {
                Some(id) => Some((id, account)),
                None => {
                    report.push(unparseable_step(step, &resp, "the installation").took(t.elapsed()));
                    None
                }
            }
        }
        // Not installed on the owner, or installed without this repository: the list of
        // installations tells which.
        404 => {
            report.push(not_installed_step(s, owner, repo, info).await.took(t.elapsed()));
            None
        }
        401 => {
            report.push(jwt_refused(step, &resp, app).took(t.elapsed()));
            None
        }
        _ => {
            report.push(http_problem_step(step, s, &resp).took(t.elapsed()));
            None
        }
    }
}

/// The app's installation on `owner` (an import of that account), from the app's
/// installations; `app_not_installed` with the install link when there is none.
pub(super) async fn installation_on(s: &Session<'_>, owner: &str, info: &AppInfo) -> Result<i64, Step> {
    let list = installations(s).await?;
    match list.into_iter().find(|(_, account, _)| account.eq_ignore_ascii_case(owner)) {
        Some((id, _, _)) => Ok(id),
        None => {
            let install = install_link(&s.base, &info.slug);
            Err(Step::fail(
                StepName::ApiRepository,
                Code::AppNotInstalled,
                format!("the GitHub App {} is not installed on {owner}", info.name),
                format!("Install the app on {owner} (all repositories, or the ones to import): {install}"),
            )
            .with_details(vec![format!("owner: {owner}"), format!("install: {install}")]))
        }
    }
}

/// The installations of the app: `(id, account, repository_selection)`.
async fn installations(s: &Session<'_>) -> Result<Vec<(i64, String, String)>, Step> {
    let step = StepName::ApiScopes;
    let mut url = s.url(&["app", "installations"]);
    url.set_query(Some("per_page=100"));
    let t = Instant::now();
    let resp = s.get(url, &headers()).await.map_err(|e| s.transport_failed(step, &e, t.elapsed()))?;
    if !resp.is_success() {
        return Err(gh::rate_limit(step, s, &resp).unwrap_or_else(|| http_problem_step(step, s, &resp)));
    }
    let Some(serde_json::Value::Array(items)) = parse::json(&resp.body) else {
        return Err(unparseable_step(step, &resp, "the installations"));
    };
    Ok(items
        .iter()
        .filter_map(|i| {
            let id = i.get("id")?.as_i64()?;
            let account = parse::str_at(i, &["account", "login"])?.to_owned();
            let selection = parse::str_at(i, &["repository_selection"]).unwrap_or("all").to_owned();
            Some((id, account, selection))
        })
        .collect())
}

async fn not_installed_step(s: &Session<'_>, owner: &str, repo: &str, info: &AppInfo) -> Step {
    let step = StepName::ApiRepository;
    let install = install_link(&s.base, &info.slug);
    let found = match installations(s).await {
        Ok(list) => list.into_iter().find(|(_, account, _)| account.eq_ignore_ascii_case(owner)),
        Err(_) => None,
    };
    match found {
        Some((id, account, _)) => Step::fail(
            step,
            Code::AppRepositoryNotSelected,
            format!(
                "the GitHub App {} is installed on {account} (installation {id}), but {owner}/{repo} is not among the \
                 repositories the installation may use",
                info.name
            ),
            format!(
                "Add {owner}/{repo} to the installation's repositories (on GitHub: {}), or give the installation \
                 access to all repositories.",
                installation_settings(&s.base, &account, id)
            ),
        )
        .with_details(vec![format!("installation {id} on {account}")]),
        None => Step::fail(
            step,
            Code::AppNotInstalled,
            format!("the GitHub App {} is not installed on {owner}", info.name),
            format!("Install the app on {owner} and give it {owner}/{repo}: {install}"),
        )
        .with_details(vec![format!("owner: {owner}"), format!("install: {install}")]),
    }
}

/// The app's installations, for a verification.
pub(super) async fn installations_step(s: &Session<'_>, app: &GithubApp<'_>, info: &AppInfo) -> Step {
    let step = StepName::ApiScopes;
    let list = match installations(s).await {
        Ok(l) => l,
        Err(failed) => return failed,
    };
    let shown: Vec<String> = list
        .iter()
        .map(|(id, account, selection)| {
            let which = if selection == "selected" { "selected repositories" } else { "all repositories" };
            format!("{account} (installation {id}, {which})")
        })
        .collect();
    let install = install_link(&s.base, &info.slug);
    if let Some(wanted) = app.installation_id {
        if !list.iter().any(|(id, _, _)| *id == wanted) {
            return Step::fail(
                step,
                Code::AppNotInstalled,
                format!("the GitHub App {} has no installation {wanted}", info.name),
                format!("Leave the installation id empty to find it per owner, or install the app: {install}"),
            )
            .with_details(shown);
        }
    }
    if list.is_empty() {
        return Step::fail(
            step,
            Code::AppNotInstalled,
            format!("the GitHub App {} is not installed on any account yet", info.name),
            format!("Install it on the accounts whose repositories Berth should check: {install}"),
        );
    }
    Step::pass(step, format!("installed on {}", shown.join(", "))).with_details(shown)
}

/// Where the app is installed from: github.com for api.github.com, else the Enterprise host.
fn web_root(api: &Url) -> String {
    let mut web = api.clone();
    if web.host_str() == Some("api.github.com") {
        return "https://github.com".to_owned();
    }
    let path = web.path().trim_end_matches('/').trim_end_matches("/api/v3").to_owned();
    web.set_path(&path);
    web.as_str().trim_end_matches('/').to_owned()
}

fn install_link(api: &Url, slug: &str) -> String {
    format!("{}/apps/{slug}/installations/new", web_root(api))
}

fn installation_settings(api: &Url, account: &str, id: i64) -> String {
    format!("{}/organizations/{account}/settings/installations/{id}", web_root(api))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn links_point_at_github_or_the_enterprise_host() {
        let api = Url::parse("https://api.github.com").unwrap();
        assert_eq!(install_link(&api, "berth"), "https://github.com/apps/berth/installations/new");
        let ghe = Url::parse("https://ghe.example:8443/api/v3").unwrap();
        assert_eq!(install_link(&ghe, "berth"), "https://ghe.example:8443/apps/berth/installations/new");
    }
}
