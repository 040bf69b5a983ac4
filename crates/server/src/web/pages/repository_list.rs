//! VC Repos: the paged list of repositories with its search box, status chips and "Check all now".

use super::*;
use crate::service::paging::PageRequest;
use crate::service::{checks, repositories};
use crate::state::AppState;
use crate::web::views::*;
use crate::web::{Posted, WebResult, WebUser};
use axum::extract::{RawQuery, State};
use berth_proto::RepositoryStatus;

/// Rows on one page of VC Repos: with a row's warnings and notes, 50 rows stay well under
/// 100 KB of HTML however many repositories match.
pub const REPOS_PAGE: i64 = 50;

/// The list's filters as the API names them (`q`, `status` repeated, `credential`, `provider`,
/// `host`), so a filtered view is bookmarkable and reads like the API call.
fn list_filter(pairs: &[(String, String)]) -> repositories::ListFilter {
    let one = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).filter(|v| !v.trim().is_empty());
    repositories::ListFilter {
        q: one("q"),
        statuses: pairs.iter().filter(|(n, v)| n == "status" && !v.trim().is_empty()).map(|(_, v)| v.clone()).collect(),
        credential: one("credential"),
        provider: one("provider"),
        host: one("host"),
    }
}

/// The filter as a query string (each pair followed by `&`), without or with other statuses.
fn filter_query(f: &repositories::ListFilter, statuses: &[String]) -> String {
    let mut out = String::new();
    for (k, v) in [("q", &f.q), ("credential", &f.credential), ("provider", &f.provider), ("host", &f.host)] {
        if let Some(v) = v {
            out.push_str(&format!("{k}={}&", enc(v)));
        }
    }
    for s in statuses {
        out.push_str(&format!("status={}&", enc(s)));
    }
    out
}

pub async fn repos(State(st): State<AppState>, wu: WebUser, RawQuery(raw): RawQuery) -> WebResult {
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()).into_owned().collect();
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let filter = list_filter(&pairs);
    let page = PageRequest { after: get("after").filter(|a| !a.is_empty()), limit: Some(REPOS_PAGE) };
    let (list, counts) = repositories::list_with_counts(&st, &wu.cu, &filter, &page).await.map_err(fail(&wu))?;
    let mut l = layout(&wu, "VC Repos", "repos");
    if let Some(id) = get("registered").and_then(|v| v.parse::<i64>().ok()) {
        // The list carries no steps: the banner reads the registration's own check.
        if let Ok(r) = repositories::show(&st, &wu.cu, id).await {
            let steps = r.last_check.as_ref().map(|c| c.checks.as_slice()).unwrap_or_default();
            let (kind, text) = outcome_banner(&format!("Registered {}", r.name), "Registration", steps);
            l = flash(l, kind, text);
        }
    } else if let Some(name) = get("deleted") {
        l = flash(l, "ok", format!("Deleted {name}."));
    } else if let Some(n) = get("scheduled").and_then(|v| v.parse::<u64>().ok()) {
        let what = if n == 1 { "1 repository will".to_owned() } else { format!("{n} repositories will") };
        l = if st.config.checks.enabled {
            flash(
                l,
                "ok",
                format!("{what} be checked in the background. Results appear in each repository's check history."),
            )
        } else {
            flash(l, "error", format!("{what} be checked once background checks run: they are off on this server ([checks] enabled = false)."))
        };
    }
    let enabled = st.config.checks.enabled;
    let can_check = wu.cu.may(Action::CheckRepository);
    let all = counts.as_ref().map(|c| c.iter().map(|(_, n)| n).sum::<i64>());
    let mut chips = vec![StatusChip {
        status: String::new(),
        label: "All".into(),
        count: all,
        on: filter.statuses.is_empty(),
        href: format!("/repositories?{}", filter_query(&filter, &[])).trim_end_matches(['&', '?']).to_owned(),
    }];
    // Without counts (a search matching more than the store counts exactly), each status is
    // still a filter, shown without its number.
    let per_status: Vec<(RepositoryStatus, Option<i64>)> = match &counts {
        Some(c) => c.iter().map(|(s, n)| (*s, Some(*n))).collect(),
        None => RepositoryStatus::ALL.iter().map(|s| (*s, None)).collect(),
    };
    for (status, count) in &per_status {
        let s = status.as_str().to_owned();
        chips.push(StatusChip {
            label: match *status {
                RepositoryStatus::Ok => "OK",
                RepositoryStatus::Warn => "Warning",
                RepositoryStatus::Fail => "Failed",
                RepositoryStatus::Paused => "Paused",
                RepositoryStatus::Unchecked => "Not checked",
            }
            .to_owned(),
            count: *count,
            on: filter.statuses.contains(&s),
            href: format!("/repositories?{}", filter_query(&filter, std::slice::from_ref(&s)))
                .trim_end_matches('&')
                .to_owned(),
            status: s,
        });
    }
    let query = filter_query(&filter, &filter.statuses);
    let filtered = !query.is_empty();
    ok(&ReposPage {
        l,
        repos: list.items.iter().map(|r| repo_row(r, enabled)).collect(),
        can_check,
        total: list.total,
        total_exact: list.total_exact,
        q: filter.q.clone().unwrap_or_default(),
        // The search keeps the other filters; they ride along as hidden fields.
        hidden: [("credential", &filter.credential), ("provider", &filter.provider), ("host", &filter.host)]
            .into_iter()
            .filter_map(|(k, v)| v.clone().map(|v| (k.to_owned(), v)))
            .chain(filter.statuses.iter().map(|s| ("status".to_owned(), s.clone())))
            .collect(),
        chips,
        next: list.next.map(|n| format!("/repositories?{query}after={}", enc(&n))),
        first: page.after.is_some().then(|| format!("/repositories?{query}").trim_end_matches(['&', '?']).to_owned()),
        filtered,
        any: all.is_none_or(|n| n > 0) || filtered,
    })
}

/// "Check all now": every repository becomes due and the scheduler wakes, as
/// `POST /api/v1/checks/schedule` does.
pub async fn check_all(State(st): State<AppState>, p: Posted) -> WebResult {
    let done = checks::schedule_all(&st, &p.user.cu).await.map_err(fail(&p.user))?;
    Ok(see_other(&format!("/?scheduled={}", done.scheduled)))
}
