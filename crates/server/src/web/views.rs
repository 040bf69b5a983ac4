//! What each template shows: plain strings and flags, formatted here so templates stay simple.

use askama::Template;
use berth_core::Step;
use chrono::{DateTime, Utc};

/// The frame of every page: who is signed in, what the navigation offers, a message.
#[derive(Default)]
pub struct Layout {
    pub title: String,
    pub user: String,
    pub role: String,
    pub csrf: String,
    pub active: &'static str,
    pub is_admin: bool,
    pub can_register: bool,
    pub can_credentials: bool,
    pub flash: String,
    /// `ok`, `error` or `info`.
    pub flash_kind: &'static str,
}

pub struct StepView {
    pub title: String,
    pub step: String,
    pub status: String,
    pub code: String,
    pub message: String,
    pub remedy: String,
    pub details: Vec<String>,
    pub ms: u64,
}

impl From<&Step> for StepView {
    fn from(s: &Step) -> Self {
        StepView {
            title: s.step.title().to_owned(),
            step: s.step.as_str().to_owned(),
            status: s.status.as_str().to_owned(),
            code: s.code.as_str().to_owned(),
            message: s.message.clone(),
            remedy: s.remedy.clone(),
            details: s.details.clone(),
            ms: s.duration_ms,
        }
    }
}

pub fn steps(s: &[Step]) -> Vec<StepView> {
    s.iter().map(StepView::from).collect()
}

/// An error box: headline, remedy, and the step list when a check ran.
#[derive(Default)]
pub struct Problem {
    pub message: String,
    pub remedy: String,
    pub code: String,
    pub steps: Vec<StepView>,
}

impl Problem {
    pub fn from_api(e: &crate::error::ApiError) -> Problem {
        Problem {
            message: e.message.clone(),
            remedy: e.remedy.clone(),
            code: e.code.as_str().to_owned(),
            steps: steps(&e.checks),
        }
    }
}

pub fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// "3 minutes ago", "2 days ago".
pub fn ago(t: DateTime<Utc>) -> String {
    let secs = (Utc::now() - t).num_seconds().max(0);
    if secs < 60 {
        return "just now".to_owned();
    }
    format!("{} ago", span(secs))
}

/// "in 3 minutes", "in 2 days"; "due now" once the time has come.
pub fn until(t: DateTime<Utc>) -> String {
    let secs = (t - Utc::now()).num_seconds();
    if secs <= 0 {
        return "due now".to_owned();
    }
    if secs < 60 {
        return "in less than a minute".to_owned();
    }
    format!("in {}", span(secs))
}

fn span(secs: i64) -> String {
    match secs {
        0..=3599 => plural(secs / 60, "minute"),
        3600..=86_399 => plural(secs / 3600, "hour"),
        _ => plural(secs / 86_400, "day"),
    }
}

fn plural(n: i64, unit: &str) -> String {
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// Something a person should act on: an expiring token, paused checks.
pub struct WarningView {
    pub code: String,
    pub message: String,
    pub remedy: String,
}

impl From<&berth_proto::Warning> for WarningView {
    fn from(w: &berth_proto::Warning) -> Self {
        WarningView { code: w.code.as_str().to_owned(), message: w.message.clone(), remedy: w.remedy.clone() }
    }
}

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage {
    pub l: Layout,
    pub login_csrf: String,
    pub username: String,
    pub problem: Option<Problem>,
}

#[derive(Template)]
#[template(path = "second_factor.html")]
pub struct SecondFactorPage {
    pub l: Layout,
    pub problem: Option<Problem>,
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub l: Layout,
    pub status: u16,
    pub problem: Problem,
}

pub struct RepoRow {
    pub id: i64,
    pub name: String,
    pub clone_url: String,
    pub provider: String,
    pub default_branch: String,
    pub credential: String,
    pub credential_id: i64,
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
    pub repos: Vec<RepoRow>,
    /// May ask for every repository to be checked now.
    pub can_check: bool,
}

pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
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
    pub default_branch: String,
    /// The Default Branch field is usable (after Refresh, or when editing).
    pub branch_enabled: bool,
    pub refresh_note: String,
    /// Branch names found by a server-side Refresh (no-script fallback), at most a few hundred.
    pub branch_options: Vec<String>,
    pub problem: Option<Problem>,
    pub refresh_steps: Vec<StepView>,
    /// `{"url": "Clone URL", …}` for the script's step tables.
    pub step_titles: String,
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
    pub steps: Vec<StepView>,
    pub history: Vec<HistoryRow>,
    /// The check id to page on from (`?before=`) when older checks exist.
    pub older: Option<i64>,
    /// This page shows older checks (`?before=` was given).
    pub paged: bool,
    pub can_edit: bool,
    pub can_check: bool,
    pub can_delete: bool,
    pub problem: Option<Problem>,
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
    pub steps: Vec<StepView>,
}

pub struct CredentialRow {
    pub id: i64,
    pub name: String,
    pub kind_label: String,
    pub identity: String,
    pub expires: String,
    /// `unknown`, `valid`, `expires_soon` or `expired`.
    pub expiry_status: String,
    pub expiry_note: String,
    pub used_by: usize,
    pub used_by_names: Vec<(i64, String)>,
    pub scopes: Vec<String>,
    pub missing_scopes: Vec<String>,
    pub secret_updated: String,
    /// The expiry warning that applies today.
    pub expiry_warning: Option<WarningView>,
    pub auth_failures: i64,
    /// When background checks with it were paused; empty when they run.
    pub paused_since: String,
    pub paused_ago: String,
    /// The host it is for; empty when it names none.
    pub host: String,
    pub verification: VerificationView,
    /// What the host said the credential is; empty when it did not say.
    pub host_identity: String,
    /// The capabilities this deployment wants on top of Berth's own job, for people.
    pub wanted: Vec<String>,
    /// Scopes the token lacks: (scope, who needs it: `needed`, `wanted`, `other`, what it blocks).
    pub scope_gaps: Vec<(String, String, String)>,
}

/// A credential's verification as the pages show it.
pub struct VerificationView {
    /// `ok`, `warn`, `fail` or `unverified`.
    pub status: String,
    /// "Verified", "Verified, with a warning", "Verification failed", "Not verified".
    pub label: String,
    pub code: String,
    pub message: String,
    pub remedy: String,
    /// The date it ran; empty when it never did.
    pub checked_on: String,
    pub checked: String,
    pub host: String,
    pub steps: Vec<StepView>,
}

#[derive(Template)]
#[template(path = "credentials.html")]
pub struct CredentialsPage {
    pub l: Layout,
    pub creds: Vec<CredentialRow>,
    pub can_create: bool,
    /// How many credentials have their background checks paused.
    pub paused: usize,
}

pub struct ScopeBox {
    pub name: String,
    pub checked: bool,
    pub required: bool,
}

#[derive(Template)]
#[template(path = "credential_new.html")]
pub struct CredentialNewPage {
    pub l: Layout,
    pub name: String,
    pub kinds: Vec<Choice>,
    pub username: String,
    pub email: String,
    pub expires_on: String,
    pub scopes: Vec<ScopeBox>,
    pub problem: Option<Problem>,
    pub retired_on: String,
    pub app_password_selected: bool,
    /// The hosts a credential may be for: configured integrations and the cloud hosts.
    pub hosts: Vec<Choice>,
    /// What this deployment wants tokens to do beyond Berth's own job (`[scopes] want`).
    pub wanted: Vec<String>,
}

pub struct RecheckRow {
    pub id: i64,
    pub name: String,
    pub ok: bool,
    pub steps: Vec<StepView>,
}

#[derive(Template)]
#[template(path = "credential.html")]
pub struct CredentialPage {
    pub l: Layout,
    pub c: CredentialRow,
    pub expires_on: String,
    pub username: String,
    pub email: String,
    pub can_edit: bool,
    pub can_delete: bool,
    /// May run the Test button (it sends the credential to its host).
    pub can_test: bool,
    pub rechecks: Vec<RecheckRow>,
    pub rechecked: bool,
    pub problem: Option<Problem>,
}

pub struct UserRow {
    pub id: i64,
    pub username: String,
    pub role: String,
    pub totp: bool,
    pub locked: String,
    pub failures: i64,
    pub created: String,
    pub is_me: bool,
}

#[derive(Template)]
#[template(path = "users.html")]
pub struct UsersPage {
    pub l: Layout,
    pub users: Vec<UserRow>,
    pub roles: Vec<(String, String)>,
    pub require_2fa: bool,
    pub problem: Option<Problem>,
}

pub struct AuditView {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: String,
    pub remote: String,
    pub outcome: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
pub struct AuditPage {
    pub l: Layout,
    pub entries: Vec<AuditView>,
    pub older: Option<i64>,
}

pub struct TokenView {
    pub id: i64,
    pub name: String,
    pub created: String,
    pub expires: String,
    pub last_used: String,
    pub revoked: bool,
}

#[derive(Template)]
#[template(path = "account.html")]
pub struct AccountPage {
    pub l: Layout,
    pub role_description: String,
    pub totp_enabled: bool,
    pub recovery_left: i64,
    pub require_2fa: bool,
    pub tokens: Vec<TokenView>,
    pub new_token: String,
    pub problem: Option<Problem>,
}

#[derive(Template)]
#[template(path = "totp.html")]
pub struct TotpPage {
    pub l: Layout,
    pub enabled: bool,
    pub required: bool,
    /// Set while enrolling: the key to type into the app, and its otpauth URI.
    pub secret: String,
    pub uri: String,
    pub recovery_codes: Vec<String>,
    pub problem: Option<Problem>,
}
