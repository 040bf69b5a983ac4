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
            // A passing step's message is often a value first (a branch name, "4 branch(es)"):
            // only findings are worded as sentences.
            message: if s.status == berth_core::StepStatus::Pass { s.message.clone() } else { sentence(&s.message) },
            remedy: sentence(&s.remedy),
            details: s.details.clone(),
            ms: s.duration_ms,
        }
    }
}

/// A check's steps as the pages show them: what failed or warned first, in pipeline order,
/// then the steps that passed and those not run, each folded under a count.
#[derive(Default)]
pub struct StepsView {
    pub shown: Vec<StepView>,
    pub passed: Vec<StepView>,
    pub skipped: Vec<StepView>,
}

impl StepsView {
    pub fn is_empty(&self) -> bool {
        self.shown.is_empty() && self.passed.is_empty() && self.skipped.is_empty()
    }

    /// "8 steps passed".
    pub fn passed_summary(&self) -> String {
        format!("{} passed", plural(count(self.passed.len()), "step"))
    }

    /// "3 steps not run".
    pub fn skipped_summary(&self) -> String {
        format!("{} not run", plural(count(self.skipped.len()), "step"))
    }

    /// Every step, failing first, then warnings, passes and steps not run.
    pub fn all(&self) -> impl Iterator<Item = &StepView> {
        self.shown.iter().chain(&self.passed).chain(&self.skipped)
    }
}

fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub fn steps(s: &[Step]) -> StepsView {
    use berth_core::StepStatus;
    let of = |st: StepStatus| s.iter().filter(move |x| x.status == st).map(StepView::from);
    StepsView {
        shown: of(StepStatus::Fail).chain(of(StepStatus::Warn)).collect(),
        passed: of(StepStatus::Pass).collect(),
        skipped: of(StepStatus::Skip).collect(),
    }
}

/// `text` as a sentence for a page: the API words its messages in lower case (they are often
/// quoted after a colon), a page starts them with a capital letter. A first word that is an
/// identifier (a scope, a URL, a code) is left as it is.
pub fn sentence(text: &str) -> String {
    let first_word = text.split_whitespace().next().unwrap_or("").trim_end_matches([':', '.', ';', ',']);
    let plain = first_word.chars().all(|c| c.is_alphabetic() || c == '\'' || c == '-');
    let mut chars = text.chars();
    match chars.next() {
        Some(c) if plain && c.is_lowercase() => c.to_uppercase().chain(chars).collect(),
        _ => text.to_owned(),
    }
}

/// An error box: headline, remedy, and the step list when a check ran.
#[derive(Default)]
pub struct Problem {
    pub message: String,
    pub remedy: String,
    pub code: String,
    pub steps: StepsView,
}

impl Problem {
    pub fn from_api(e: &crate::error::ApiError) -> Problem {
        Problem {
            message: sentence(&e.message),
            remedy: sentence(&e.remedy),
            code: e.code.as_str().to_owned(),
            steps: steps(&e.checks),
        }
    }
}

/// How the pages name a provider: "Bitbucket Cloud".
pub fn provider_label(p: berth_core::Provider) -> &'static str {
    use berth_core::Provider;
    match p {
        Provider::BitbucketCloud => "Bitbucket Cloud",
        Provider::BitbucketDatacenter => "Bitbucket Data Center",
        Provider::Github => "GitHub",
        Provider::Gitlab => "GitLab",
        Provider::AzureDevops => "Azure DevOps",
        Provider::Generic => "Git server",
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

/// "1 repository", "3 repositories" (the one rule, in `berth_core::words`).
pub use berth_core::words::counted as plural;

/// Something a person should act on: an expiring token, paused checks.
pub struct WarningView {
    pub code: String,
    pub message: String,
    pub remedy: String,
}

impl From<&berth_proto::Warning> for WarningView {
    fn from(w: &berth_proto::Warning) -> Self {
        WarningView { code: w.code.as_str().to_owned(), message: sentence(&w.message), remedy: sentence(&w.remedy) }
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
    pub steps: StepsView,
}

#[derive(Template)]
#[template(path = "credentials.html")]
pub struct CredentialsPage {
    pub l: Layout,
    pub creds: Vec<CredentialRow>,
    pub can_create: bool,
    /// May press Test on a credential (it sends the credential to its host).
    pub can_test: bool,
    /// How many credentials have their background checks paused.
    pub paused: usize,
}

pub struct ScopeBox {
    pub name: String,
    pub checked: bool,
    pub required: bool,
    /// Offered although the product page does not list it (and said to be optional).
    pub optional: bool,
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
    /// The field a refusal is about (`name`, `kind`, `username`, `email`, `secret`,
    /// `expires_on`, `scopes`), marked invalid with the reason beside it; empty when none is.
    pub field: &'static str,
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
    /// Badge class (`pass`, `warn`, `fail`) and its words.
    pub status: &'static str,
    pub status_label: &'static str,
    pub steps: StepsView,
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
    /// The credential's kind (`bitbucket_api_token`, …): its scopes are edited only for API tokens.
    pub kind: String,
    /// The same checklist as Create Credential, ticked as stored.
    pub scopes: Vec<ScopeBox>,
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
    /// The entry id to page on from (`?before=`) when older entries may exist.
    pub older: Option<i64>,
    /// This page shows older entries (`?before=` was given).
    pub paged: bool,
    /// The filter as `key=value&` pairs, kept by the paging links.
    pub query: String,
    /// Some filter is set.
    pub filtered: bool,
    pub actor: String,
    pub action: String,
    pub target: String,
    /// `YYYY-MM-DD`, both inclusive.
    pub from: String,
    pub to: String,
    /// Every action the log holds, for the filter's choices.
    pub actions: Vec<String>,
    pub problem: Option<Problem>,
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
    /// The otpauth URI as a QR code: an inline SVG drawn by the server (no outside service).
    pub qr_svg: String,
    pub recovery_codes: Vec<String>,
    /// The recovery codes as a text file, for the Download link (`data:` URL).
    pub recovery_download: String,
    pub problem: Option<Problem>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plural_forms() {
        assert_eq!(plural(1, "warning"), "1 warning");
        assert_eq!(plural(2, "warning"), "2 warnings");
        assert_eq!(plural(0, "step"), "0 steps");
        assert_eq!(plural(1, "repository"), "1 repository");
        assert_eq!(plural(3, "repository"), "3 repositories");
        assert_eq!(plural(2, "day"), "2 days");
    }

    #[test]
    fn sentences_start_with_a_capital_but_identifiers_are_kept() {
        assert_eq!(sentence("wrong username or password"), "Wrong username or password");
        assert_eq!(sentence("credential \"ci\" expires in 5 days"), "Credential \"ci\" expires in 5 days");
        assert_eq!(sentence("plain HTTP: the token travels unencrypted"), "Plain HTTP: the token travels unencrypted");
        assert_eq!(sentence("Already capital"), "Already capital");
        assert_eq!(sentence("read:repository:bitbucket is missing"), "read:repository:bitbucket is missing");
        assert_eq!(sentence("https://example.com is down"), "https://example.com is down");
        assert_eq!(sentence("git_discovery failed"), "git_discovery failed");
        assert_eq!(sentence(""), "");
    }

    fn step(name: berth_core::StepName, status: berth_core::StepStatus) -> Step {
        Step {
            step: name,
            status,
            code: berth_core::Code::Ok,
            message: String::new(),
            remedy: String::new(),
            duration_ms: 0,
            details: Vec::new(),
        }
    }

    #[test]
    fn findings_read_as_sentences_but_a_passing_value_is_kept() {
        use berth_core::{StepName as N, StepStatus as S};
        let mut pass = step(N::DefaultBranch, S::Pass);
        pass.message = "trunk (the remote's default)".into();
        assert_eq!(StepView::from(&pass).message, "trunk (the remote's default)");
        let mut fail = step(N::DefaultBranch, S::Fail);
        fail.message = "branch \"main\" does not exist on the remote".into();
        fail.remedy = "press Refresh and pick a branch".into();
        let v = StepView::from(&fail);
        assert_eq!(v.message, "Branch \"main\" does not exist on the remote");
        assert_eq!(v.remedy, "Press Refresh and pick a branch");
    }

    #[test]
    fn steps_put_failures_first_and_fold_the_rest() {
        use berth_core::{StepName as N, StepStatus as S};
        let list = [
            step(N::Url, S::Pass),
            step(N::Dns, S::Warn),
            step(N::Connect, S::Pass),
            step(N::GitDiscovery, S::Fail),
            step(N::Branches, S::Skip),
        ];
        let v = steps(&list);
        let names = |l: &[StepView]| l.iter().map(|s| s.step.clone()).collect::<Vec<_>>();
        assert_eq!(names(&v.shown), ["git_discovery", "dns"]);
        assert_eq!(names(&v.passed), ["url", "connect"]);
        assert_eq!(names(&v.skipped), ["branches"]);
        assert_eq!(v.passed_summary(), "2 steps passed");
        assert_eq!(v.skipped_summary(), "1 step not run");
        assert_eq!(v.all().count(), 5);
    }
}
