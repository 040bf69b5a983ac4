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
    /// For an unknown SSH host key: Admin > Known hosts with the host and the fingerprint
    /// filled in ("Trust this key"); empty otherwise.
    pub trust_href: String,
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
            trust_href: trust_href(s),
        }
    }
}

/// The "Trust this key" link of a `host_key_unknown` step, read from the details the SSH
/// transport gives it (`host: …`, `fingerprint: …`).
fn trust_href(s: &Step) -> String {
    if s.code != berth_core::Code::HostKeyUnknown {
        return String::new();
    }
    let detail = |prefix: &str| s.details.iter().find_map(|d| d.strip_prefix(prefix)).map(str::trim);
    match (detail("host: "), detail("fingerprint: ")) {
        (Some(host), Some(fp)) => {
            let enc = |v: &str| url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
            format!("/admin/known-hosts?host={}&fingerprint={}#trust_form", enc(host), enc(fp))
        }
        _ => String::new(),
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
    /// "Sign in with …" when single sign-on is configured.
    pub sso_name: Option<String>,
    /// Password sign-in open to everyone; `false`: only to the break-glass administrators.
    pub password_for_all: bool,
}

/// Single sign-on passed: a page that moves on to `/` by itself (see `sso_callback`).
#[derive(Template)]
#[template(path = "signed_in.html")]
pub struct SignedInPage {
    pub l: Layout,
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

pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

mod accounts;
mod credentials;
mod imports;
mod known_hosts;
mod notifications;
mod repositories;

pub use accounts::*;
pub use credentials::*;
pub use imports::*;
pub use known_hosts::*;
pub use notifications::*;
pub use repositories::*;

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
