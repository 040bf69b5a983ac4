//! The VC Repos list, Register Repository and a repository's page; the rows of VC Repos and of a
//! repository's check history, built from the API's answers.

use super::*;
use askama::Template;
use berth_core::{Code, StepStatus};
use berth_proto::{Repository, StoredCheck};

/// What pages show for a repository without a credential.
pub const NO_CREDENTIAL_LABEL: &str = "None (public repository)";

pub struct RepoRow {
    pub id: i64,
    pub name: String,
    pub clone_url: String,
    pub provider: String,
    pub default_branch: String,
    /// The credential's name, or "None (public repository)".
    pub credential: String,
    /// `None`: checked anonymously.
    pub credential_id: Option<i64>,
    /// The badge class: `pass`, `warn`, `fail`, `never` or `paused`.
    pub status: String,
    /// `ok`, `warning`, `failed`, `not checked yet` or `paused`.
    pub status_label: String,
    /// The codes behind a `warning` or `failed` status (the steps that warned, or the first
    /// that failed).
    pub status_codes: Vec<String>,
    pub checked: String,
    pub checked_ago: String,
    /// When the scheduler checks it next, and the same relative to now; or why it will not.
    pub next_check: String,
    pub next_check_rel: String,
    /// The instance checking it right now, if one is.
    pub checking_by: String,
    pub warnings: Vec<WarningView>,
}

#[derive(Template)]
#[template(path = "repos.html")]
pub struct ReposPage {
    pub l: Layout,
    /// This page's rows.
    pub repos: Vec<RepoRow>,
    /// May ask for every repository to be checked now.
    pub can_check: bool,
    /// How many repositories match the filters, over all pages (more than this when not
    /// `total_exact`: a search matching more than the store counts exactly).
    pub total: i64,
    pub total_exact: bool,
    /// The search box's text.
    pub q: String,
    /// The other filters, kept by the search form as hidden fields.
    pub hidden: Vec<(String, String)>,
    pub chips: Vec<StatusChip>,
    /// The next page's link, when there is one; the first page's, when this is not it.
    pub next: Option<String>,
    pub first: Option<String>,
    /// Some filter is set.
    pub filtered: bool,
    /// Any repository is registered (else the page explains how to register the first).
    pub any: bool,
}

/// A status filter of VC Repos: a link that shows only that status (or all), with its count
/// under the other filters (none when a search matches more than the store counts exactly).
pub struct StatusChip {
    /// Empty for "All".
    pub status: String,
    pub label: String,
    pub count: Option<i64>,
    pub on: bool,
    pub href: String,
}

#[derive(Template)]
#[template(path = "register.html")]
pub struct RegisterPage {
    pub l: Layout,
    /// `new` or `edit`.
    pub mode: &'static str,
    pub action: String,
    pub name: String,
    pub clone_url: String,
    pub credentials: Vec<Choice>,
    /// Credential templates exist: the picker offers "Choose by template" (its empty value),
    /// selected unless a credential is chosen.
    pub has_templates: bool,
    pub default_branch: String,
    /// The Default Branch field is usable (after Refresh, or when editing).
    pub branch_enabled: bool,
    pub refresh_note: String,
    /// "Register a webhook on the host" is ticked.
    pub webhook: bool,
    /// Branch names found by a server-side Refresh (no-script fallback), at most a few hundred.
    pub branch_options: Vec<String>,
    pub problem: Option<Problem>,
    /// The field a refusal is about (`name`, `vcs`, `clone_url`, `credential`, `default_branch`),
    /// marked invalid with `field_message` beside it; empty when none is.
    pub field: &'static str,
    pub field_message: String,
    /// The refusal's code, shown beside `field_message` when no step table says it.
    pub field_code: String,
    /// The repository that has the URL already (`already_registered`): id and name.
    pub existing: Option<(i64, String)>,
    pub refresh_steps: StepsView,
    /// `{"url": "Clone URL", …}` for the script's step tables.
    pub step_titles: String,
    /// Which field a failed step or a code is about, for the script (see `field_at_fault`).
    pub field_tables: String,
}

#[derive(Template)]
#[template(path = "repo.html")]
pub struct RepoPage {
    pub l: Layout,
    pub r: RepoRow,
    pub created: String,
    pub updated: String,
    pub last_ok: bool,
    pub has_check: bool,
    pub steps: StepsView,
    pub history: Vec<HistoryRow>,
    /// The check id to page on from (`?before=`) when older checks exist.
    pub older: Option<i64>,
    /// This page shows older checks (`?before=` was given).
    pub paged: bool,
    pub can_edit: bool,
    pub can_check: bool,
    pub can_delete: bool,
    pub problem: Option<Problem>,
    /// The stored branches (the first page), and what wrote them: "2 branches, from the check
    /// of …".
    /// (name, commit, is the repository's default branch).
    pub branches: Vec<(String, String, bool)>,
    pub branches_note: String,
    /// The webhook on the host: its URL and delivery counts; `None` without one.
    pub webhook: Option<WebhookView>,
}

/// The webhook Berth registered on the repository's host, as the page shows it.
pub struct WebhookView {
    pub url: String,
    pub hook_id: String,
    pub deliveries: i64,
    pub rejected: i64,
}

/// One check of a repository's history.
pub struct HistoryRow {
    pub id: i64,
    pub at: String,
    pub ago: String,
    /// `register`, `manual`, `schedule` or `credential`, and how the page words it.
    pub reason: String,
    pub reason_label: String,
    /// Badge class and label as for [`RepoRow::status`].
    pub status: String,
    pub status_label: String,
    /// The first failing step's code; empty when none failed.
    pub code: String,
    pub ms: u64,
    pub instance: String,
    /// "11 steps, 1 warning": what the closed step list says.
    pub steps_summary: String,
    pub steps: StepsView,
}

/// The badge class and label of a repository's or a check's status.
fn status_badge(status: &str) -> (&'static str, &'static str) {
    match status {
        "ok" => ("pass", "ok"),
        "warn" => ("warn", "warning"),
        "fail" => ("fail", "failed"),
        "paused" => ("paused", "paused"),
        _ => ("never", "not checked yet"),
    }
}

/// The codes behind a status: the first failing step's, else those of the steps that warned
/// (when the check carries its steps).
fn status_codes(c: &StoredCheck) -> Vec<String> {
    if c.code != Code::Ok {
        return vec![c.code.as_str().to_owned()];
    }
    // Lists carry the warned codes without the steps; a repository's own answer has both.
    let mut out: Vec<String> = c.warning_codes.iter().map(|code| code.as_str().to_owned()).collect();
    for s in c.checks.iter().filter(|s| s.status == StepStatus::Warn) {
        let code = s.code.as_str().to_owned();
        if !out.contains(&code) {
            out.push(code);
        }
    }
    out
}

/// A repository as VC Repos and its own page show it.
pub fn repo_row(r: &Repository, checks_enabled: bool) -> RepoRow {
    let (status, label) = status_badge(&r.status);
    let (checked, checked_ago) =
        r.last_check.as_ref().map(|c| (when(c.checked_at), ago(c.checked_at))).unwrap_or_default();
    let (next_check, next_check_rel) = match r.next_check_at {
        _ if !checks_enabled => (String::new(), "background checks are off on this server".to_owned()),
        _ if r.status == "paused" => (String::new(), "paused until its credential is edited".to_owned()),
        Some(t) => (when(t), until(t)),
        None => (String::new(), "not scheduled".to_owned()),
    };
    RepoRow {
        id: r.id,
        name: r.name.clone(),
        clone_url: r.clone_url.clone(),
        provider: provider_label(r.provider).to_owned(),
        default_branch: r.default_branch.clone(),
        credential: r.credential.as_ref().map_or_else(|| NO_CREDENTIAL_LABEL.to_owned(), |c| c.name.clone()),
        credential_id: r.credential.as_ref().map(|c| c.id),
        status: status.to_owned(),
        status_label: label.to_owned(),
        status_codes: r.last_check.as_ref().map(status_codes).unwrap_or_default(),
        checked,
        checked_ago,
        next_check,
        next_check_rel,
        checking_by: r.checking_by.clone().unwrap_or_default(),
        warnings: r.warnings.iter().map(WarningView::from).collect(),
    }
}

/// A check in a repository's history, as its page lists it.
pub fn history_row(c: &StoredCheck) -> HistoryRow {
    let (status, label) = status_badge(&c.status);
    HistoryRow {
        id: c.id,
        at: when(c.checked_at),
        ago: ago(c.checked_at),
        reason: c.reason.clone(),
        reason_label: match c.reason.as_str() {
            "register" => "registration",
            "manual" => "by hand",
            "schedule" => "scheduled",
            "credential" => "credential changed",
            "webhook" => "host webhook",
            other => other,
        }
        .to_owned(),
        status: status.to_owned(),
        status_label: label.to_owned(),
        code: if c.code == Code::Ok { String::new() } else { c.code.as_str().to_owned() },
        ms: c.duration_ms,
        instance: c.instance.clone(),
        steps_summary: steps_summary(&c.checks),
        steps: steps(&c.checks),
    }
}

fn steps_summary(list: &[berth_core::Step]) -> String {
    let count = |st: StepStatus| list.iter().filter(|s| s.status == st).count();
    let mut out = format!("{} step{}", list.len(), if list.len() == 1 { "" } else { "s" });
    match count(StepStatus::Fail) {
        0 => {}
        n => out.push_str(&format!(", {n} failed")),
    }
    match count(StepStatus::Warn) {
        0 => {}
        1 => out.push_str(", 1 warning"),
        n => out.push_str(&format!(", {n} warnings")),
    }
    out
}
