//! Listing an owner's repositories through a GitHub App, for a bulk import: the app's
//! installation on the owner (the credential's own, or the one `GET /app/installations` names
//! for that account), an installation token, then `GET /installation/repositories`
//! (`{total_count, repositories}`, `per_page` up to 100, `Link: <…>; rel="next"`), as GitHub
//! documents for installations. So an import of an organisation or user with an app lists
//! what the installation may use: every repository of the account, or the ones selected.

use super::{app_step, app_view, headers, install, mint, GithubApp};
use crate::listing::{github_items, link_next, ListFailure, ListedRepo, MAX_LISTED};
use crate::pager::{self, Page};
use crate::{auth_failed_step, http_problem_step, parse, AuthShape, Forge, ForgeReport, Session};
use berth_core::{Code, Provider, Step, StepName, StepStatus};
use berth_net::{ApiResponse, Auth};
use serde_json::Value;
use std::sync::OnceLock;

const STEP: StepName = StepName::ApiRepository;

impl Forge {
    /// The repositories of `owner` the app's installation there may use.
    pub async fn github_app_list(
        &self,
        api_url: &str,
        owner: &str,
        app: &GithubApp<'_>,
    ) -> Result<Vec<ListedRepo>, ListFailure> {
        let mut report = ForgeReport::default();
        let view = app_view(app);
        let mut retry_after = None;
        let listed = match self.app_session(api_url, &view, &mut report) {
            Some(s) => {
                let listed = list(&s, owner, app, &mut report).await;
                retry_after = s.retry_after.get().copied();
                listed.ok()
            }
            None => None,
        };
        listed.ok_or_else(|| {
            let step = report
                .steps
                .into_iter()
                .rev()
                .find(|s| s.status == StepStatus::Fail)
                .unwrap_or_else(|| Step::fail(STEP, Code::ProtocolError, "the listing stopped", "Try again."));
            ListFailure { step, retry_after }
        })
    }
}

/// The listing; `Err` with the failed step in `report`.
async fn list(
    s: &Session<'_>,
    owner: &str,
    app: &GithubApp<'_>,
    report: &mut ForgeReport,
) -> Result<Vec<ListedRepo>, ()> {
    let info = app_step(s, app, report).await.ok_or(())?;
    let installation = match app.installation_id {
        Some(id) => id,
        None => match install::installation_on(s, owner, &info).await {
            Ok(id) => id,
            Err(step) => {
                report.push(step);
                return Err(());
            }
        },
    };
    let minted = mint(s, app, installation, report).await.ok_or(())?;
    // The installation token, not the JWT, lists the installation's repositories.
    let with_token = Session {
        forge: s.forge,
        provider: Provider::Github,
        base: s.base.clone(),
        cred: s.cred,
        auth: Auth::Bearer(minted.token.clone()),
        shape: AuthShape::Bearer,
        retry_after: OnceLock::new(),
        location: OnceLock::new(),
    };
    let mut first = with_token.url(&["installation", "repositories"]);
    first.set_query(Some("per_page=100"));
    let fail = |resp: &ApiResponse| failure(&with_token, resp, installation);
    let listed = pager::collect(&with_token, STEP, first, &headers(), MAX_LISTED, page, fail).await;
    if let Some(wait) = with_token.retry_after.get() {
        let _ = s.retry_after.set(*wait);
    }
    let listed = listed.map_err(|step| report.push(step))?;
    // An installation id given with the credential may be another account's: list only the
    // owner's repositories, and say so when the installation has none of them.
    let total = listed.len();
    let mine: Vec<ListedRepo> = listed
        .into_iter()
        .filter(|r| r.full_name.split('/').next().is_some_and(|o| o.eq_ignore_ascii_case(owner)))
        .collect();
    if mine.is_empty() && total > 0 {
        report.push(Step::fail(
            STEP,
            Code::AppNotInstalled,
            format!("installation {installation} of the GitHub App {} is not on {owner}", info.name),
            "Leave the credential's installation id empty to find the installation on each owner, or import the \
             account the installation is on.",
        ));
        return Err(());
    }
    Ok(mine)
}

fn page(resp: &ApiResponse) -> Result<Page<ListedRepo>, Step> {
    let v = parse::json(&resp.body).ok_or_else(|| crate::unparseable_step(STEP, resp, "a page of repositories"))?;
    let Some(list) = v.get("repositories").and_then(Value::as_array) else {
        return Err(crate::unparseable_step(STEP, resp, "the installation's repositories"));
    };
    Ok(Page { items: github_items(list), next: link_next(resp.header("link")) })
}

fn failure(s: &Session<'_>, resp: &ApiResponse, installation: i64) -> Step {
    if let Some(limited) = crate::github::rate_limit(STEP, s, resp) {
        return limited;
    }
    match resp.status {
        401 => auth_failed_step(StepName::ApiCredential, s, resp, Vec::new()),
        403 => Step::fail(
            STEP,
            Code::AccessDenied,
            format!("GitHub refused to list the repositories of installation {installation} (HTTP 403)"),
            "The details say why; a suspended installation must be unsuspended by the account's owner.",
        )
        .with_details(parse::server_words(&resp.body, resp.text_lines())),
        _ => http_problem_step(STEP, s, resp),
    }
}
