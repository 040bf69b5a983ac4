//! Human output: aligned tables, `key: value` blocks and the step table of a check.
//!
//! Text that comes from elsewhere (messages and `remote:` lines relayed from a Git host) is
//! cleaned of control characters before it reaches the terminal, so a hostile server cannot
//! move the cursor or recolour the screen.

use berth_core::{Code, Step, StepStatus};
use berth_proto::{
    ConfigPlan, Credential, CredentialTemplate, HostIdentity, RemoteBranches, Repository, ScopeNeed, StoredBranch,
    StoredCheck, TemplateMatch, Verification, VerificationStatus,
};
use chrono::{DateTime, Utc};
use serde::Serialize;

mod config;
mod credentials;
pub use config::{config_plan, template_match, template_table};
pub use credentials::*;
mod known_hosts;
pub use known_hosts::known_hosts_table;

/// `s` with every control character (escape sequences, carriage returns, tabs, newlines)
/// replaced by a space, ready to print on one line.
pub fn clean(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

fn width(s: &str) -> usize {
    s.chars().count()
}

/// An aligned table: columns two spaces apart, upper-case headers, no trailing spaces.
/// A row may carry note lines, printed below it and indented to the `note_column`.
#[derive(Debug, Clone, Default)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<(Vec<String>, Vec<String>)>,
    note_column: usize,
}

impl Table {
    pub fn new(headers: &[&str]) -> Self {
        Table { headers: headers.iter().map(|h| (*h).to_owned()).collect(), rows: Vec::new(), note_column: 0 }
    }

    /// Notes start where this column starts.
    pub fn notes_under(mut self, column: usize) -> Self {
        self.note_column = column;
        self
    }

    pub fn row<S: AsRef<str>>(&mut self, cells: impl IntoIterator<Item = S>) -> &mut Self {
        let mut cells: Vec<String> = cells.into_iter().map(|c| clean(c.as_ref())).collect();
        cells.resize(self.headers.len().max(cells.len()), String::new());
        self.rows.push((cells, Vec::new()));
        self
    }

    /// A line printed below the last row.
    pub fn note(&mut self, line: &str) -> &mut Self {
        if let Some((_, notes)) = self.rows.last_mut() {
            notes.push(clean(line));
        }
        self
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn render(&self) -> String {
        let columns = self.rows.iter().map(|(c, _)| c.len()).chain([self.headers.len()]).max().unwrap_or(0);
        let mut widths = vec![0; columns];
        for cells in std::iter::once(&self.headers).chain(self.rows.iter().map(|(c, _)| c)) {
            for (i, c) in cells.iter().enumerate() {
                widths[i] = widths[i].max(width(c));
            }
        }
        let indent: usize = widths.iter().take(self.note_column).map(|w| w + 2).sum();
        let mut out = String::new();
        let line = |cells: &[String], out: &mut String| {
            let mut l = String::new();
            for (i, c) in cells.iter().enumerate() {
                l.push_str(c);
                if i + 1 < cells.len() {
                    l.push_str(&" ".repeat(widths[i] - width(c) + 2));
                }
            }
            out.push_str(l.trim_end());
            out.push('\n');
        };
        line(&self.headers, &mut out);
        for (cells, notes) in &self.rows {
            line(cells, &mut out);
            for n in notes {
                out.push_str(&" ".repeat(indent));
                out.push_str(n);
                out.push('\n');
            }
        }
        out
    }
}

/// The label of a step's status; a failure shouts.
pub fn status_label(s: StepStatus) -> &'static str {
    match s {
        StepStatus::Pass => "pass",
        StepStatus::Warn => "warn",
        StepStatus::Fail => "FAIL",
        StepStatus::Skip => "skip",
    }
}

/// Every step of a check: STATUS, STEP, CODE (when not ok), MESSAGE, and under a failed or
/// warned step its remedy (`→ …`) and details. The steps skipped after a failure, which all say
/// the same ("not run: an earlier step failed"), are one row: a failure at the first step is
/// not followed by a wall of `skip` lines. `--json` keeps every step.
pub fn step_table(steps: &[Step]) -> String {
    let with_codes = steps.iter().any(|s| s.code != Code::Ok);
    let headers: &[&str] =
        if with_codes { &["STATUS", "STEP", "CODE", "MESSAGE"] } else { &["STATUS", "STEP", "MESSAGE"] };
    let mut t = Table::new(headers).notes_under(1);
    let failed_at = steps.iter().position(|s| s.status == StepStatus::Fail);
    let mut i = 0;
    while i < steps.len() {
        let s = &steps[i];
        let run = steps[i..].iter().take_while(|o| o.status == StepStatus::Skip && o.message == s.message).count();
        if failed_at.is_some_and(|f| i > f) && run >= 2 {
            let mut cells = vec![status_label(StepStatus::Skip).to_owned(), format!("{run} later steps")];
            if with_codes {
                cells.push(String::new());
            }
            cells.push(s.message.clone());
            t.row(cells);
            i += run;
            continue;
        }
        i += 1;
        let mut cells = vec![status_label(s.status).to_owned(), s.step.title().to_owned()];
        if with_codes {
            cells.push(if s.code == Code::Ok { String::new() } else { s.code.as_str().to_owned() });
        }
        cells.push(s.message.clone());
        t.row(cells);
        if matches!(s.status, StepStatus::Fail | StepStatus::Warn) {
            if !s.remedy.is_empty() {
                t.note(&format!("→ {}", s.remedy));
            }
            for d in &s.details {
                t.note(&format!("  {d}"));
            }
        }
    }
    t.render()
}

/// `key: value` lines with the values aligned. Empty values show as `-`.
pub fn fields(pairs: &[(&str, String)]) -> String {
    let w = pairs.iter().map(|(k, _)| width(k)).max().unwrap_or(0);
    let mut out = String::new();
    for (k, v) in pairs {
        let v = if v.is_empty() { "-".to_owned() } else { clean(v) };
        out.push_str(&format!("{k}:{}{v}\n", " ".repeat(w - width(k) + 2)));
    }
    out
}

/// Pretty JSON, as `--json` prints it.
pub fn json<T: Serialize + ?Sized>(v: &T) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|e| format!("{{\"error\": \"cannot serialise output: {e}\"}}"))
}

fn time(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn or_dash(v: Option<&str>) -> String {
    v.filter(|s| !s.is_empty()).unwrap_or("-").to_owned()
}

fn last_check(r: &Repository) -> String {
    match &r.last_check {
        None => "-".to_owned(),
        Some(c) => format!("{} ({})", if c.ok { "ok" } else { c.code.as_str() }, time(&c.checked_at)),
    }
}

/// The repository's status word, marked `!` when something needs attention.
fn status(r: &Repository) -> String {
    let word = if r.status.is_empty() { "-" } else { r.status.as_str() };
    if r.warnings.is_empty() {
        word.to_owned()
    } else {
        format!("{word} !")
    }
}

/// Warnings of a repository, one line each with what to do.
pub fn repository_warnings(r: &Repository) -> String {
    r.warnings
        .iter()
        .map(|w| format!("warning: {} ({})\n  → {}\n", clean(&w.message), w.code.as_str(), clean(&w.remedy)))
        .collect()
}

/// One past check in full: when, why, where, its verdict, and every step.
pub fn check_detail(c: &StoredCheck) -> String {
    let warnings = c.warning_codes.iter().map(|w| w.as_str()).collect::<Vec<_>>().join(", ");
    let mut out = fields(&[
        ("Check", c.id.to_string()),
        ("Checked", time(&c.checked_at)),
        ("Reason", c.reason.clone()),
        ("Status", c.status.clone()),
        ("Code", c.code.as_str().to_owned()),
        ("Warnings", warnings),
        ("Duration", format!("{} ms", c.duration_ms)),
        ("Instance", c.instance.clone()),
    ]);
    if !c.checks.is_empty() {
        out.push('\n');
        out.push_str(&step_table(&c.checks));
    }
    out
}

/// A repository's check history, newest first.
pub fn history_table(list: &[StoredCheck]) -> String {
    if list.is_empty() {
        return "No checks yet.\n".to_owned();
    }
    let mut t = Table::new(&["ID", "CHECKED", "REASON", "STATUS", "CODE", "MS", "INSTANCE"]);
    for c in list {
        t.row([
            c.id.to_string(),
            time(&c.checked_at),
            clean(&c.reason),
            clean(&c.status),
            c.code.as_str().to_owned(),
            c.duration_ms.to_string(),
            clean(&c.instance),
        ]);
    }
    t.render()
}

/// A page of a repository's stored branches; `header` on the first page only.
pub fn stored_branch_rows(list: &[StoredBranch], header: bool) -> String {
    let mut t = Table::new(&["BRANCH", "COMMIT"]);
    for b in list {
        t.row([clean(&b.name), clean(&b.commit)]);
    }
    let out = t.render();
    if header {
        out
    } else {
        out.split_once('\n').map(|(_, rows)| rows.to_owned()).unwrap_or_default()
    }
}

pub fn repository_table(list: &[Repository]) -> String {
    if list.is_empty() {
        return "No repositories. Register one with `berth repo register`.\n".to_owned();
    }
    let mut out = repository_rows(list, true);
    out.push_str(&attention_note(list.iter().filter(|r| !r.warnings.is_empty()).count()));
    out
}

/// The table of `list` (with its header line or without: a page after the first of a list
/// printed as it arrives). Columns are as wide as this page needs.
pub fn repository_rows(list: &[Repository], header: bool) -> String {
    let mut t = Table::new(&[
        "ID",
        "NAME",
        "STATUS",
        "PROVIDER",
        "BRANCH",
        "CREDENTIAL",
        "LAST CHECK",
        "NEXT CHECK",
        "CLONE URL",
    ]);
    for r in list {
        t.row([
            r.id.to_string(),
            r.name.clone(),
            status(r),
            r.provider.as_str().to_owned(),
            r.default_branch.clone(),
            credential_name(r).to_owned(),
            last_check(r),
            r.next_check_at.as_ref().map_or_else(|| "-".to_owned(), time),
            r.clone_url.clone(),
        ]);
    }
    let out = t.render();
    if header {
        out
    } else {
        out.split_once('\n').map(|(_, rows)| rows.to_owned()).unwrap_or_default()
    }
}

/// What a repository without a credential shows for it.
pub const NO_CREDENTIAL: &str = "none (public repository)";

/// A repository's credential name, or [`NO_CREDENTIAL`].
pub fn credential_name(r: &Repository) -> &str {
    r.credential.as_ref().map_or(NO_CREDENTIAL, |c| c.name.as_str())
}

/// The line under a repository list that counts the repositories that need attention.
pub fn attention_note(flagged: usize) -> String {
    if flagged == 0 {
        return String::new();
    }
    let (what, verb) =
        if flagged == 1 { ("1 repository".to_owned(), "needs") } else { (format!("{flagged} repositories"), "need") };
    format!("\n{what} {verb} attention (!): see `berth repo show <name>`.\n")
}

pub fn repository_detail(r: &Repository) -> String {
    let mut out = fields(&[
        ("ID", r.id.to_string()),
        ("Name", r.name.clone()),
        ("VCS", r.vcs.clone()),
        ("Clone URL", r.clone_url.clone()),
        ("Provider", r.provider.as_str().to_owned()),
        ("Default branch", r.default_branch.clone()),
        (
            "Credential",
            r.credential.as_ref().map_or_else(|| NO_CREDENTIAL.to_owned(), |c| format!("{} (id {})", c.name, c.id)),
        ),
        ("Status", status(r)),
        ("Last check", last_check(r)),
        ("Next check", r.next_check_at.as_ref().map_or_else(|| "-".to_owned(), time)),
        ("Being checked by", r.checking_by.clone().unwrap_or_else(|| "-".to_owned())),
        ("Created", time(&r.created_at)),
        ("Updated", time(&r.updated_at)),
    ]);
    if !r.warnings.is_empty() {
        out.push('\n');
        out.push_str(&repository_warnings(r));
    }
    if let Some(c) = &r.last_check {
        out.push('\n');
        out.push_str(&step_table(&c.checks));
    }
    out
}

/// A remote's branches, the default one marked with `*`.
pub fn branches(b: &RemoteBranches) -> String {
    let mut out = format!("{} ({}, Git protocol {})\n", clean(&b.clone_url), b.provider.as_str(), clean(&b.protocol));
    match &b.default_branch {
        Some(d) => out.push_str(&format!("Default branch: {}\n", clean(d))),
        None => out.push_str("Default branch: none\n"),
    }
    out.push('\n');
    if b.branches.is_empty() {
        out.push_str("No branches: the repository is empty.\n");
        return out;
    }
    let mut t = Table::new(&["", "BRANCH", "COMMIT"]);
    for br in &b.branches {
        let mark = if b.default_branch.as_deref() == Some(br.name.as_str()) { "*" } else { "" };
        t.row([mark, br.name.as_str(), br.commit.get(..12).unwrap_or(&br.commit)]);
    }
    out.push_str(&t.render());
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use berth_core::StepName;

    /// An explicit step list, so the test does not move when core adds steps.
    fn failed_check() -> Vec<Step> {
        vec![
            Step::pass(StepName::Url, "https://bitbucket.org/acme/app.git"),
            Step::warn(StepName::Credential, Code::TokenExpiresSoon, "the token expires in 3 days", "rotate it"),
            Step::pass(StepName::Dns, "bitbucket.org → 104.192.141.1"),
            Step::pass(StepName::Connect, "connected"),
            Step::pass(StepName::Tls, "certificate valid"),
            Step::fail(
                StepName::GitDiscovery,
                Code::AuthFailed,
                "Bitbucket refused the credential",
                "create a new API token",
            )
            .with_details(vec!["remote: Invalid credentials".to_owned()]),
            Step::skip(StepName::Branches, "not run: an earlier step failed"),
            Step::skip(StepName::DefaultBranch, "not run: an earlier step failed"),
        ]
    }

    #[test]
    fn step_table_lists_every_step_with_remedies_under_failures() {
        let out = step_table(&failed_check());
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "STATUS  STEP            CODE                MESSAGE");
        assert_eq!(lines[1], "pass    Clone URL                           https://bitbucket.org/acme/app.git");
        assert_eq!(lines[2], "warn    Credential      token_expires_soon  the token expires in 3 days");
        assert_eq!(lines[3], "        → rotate it");
        assert_eq!(lines[7], "FAIL    Git smart HTTP  auth_failed         Bitbucket refused the credential");
        assert_eq!(lines[8], "        → create a new API token");
        assert_eq!(lines[9], "          remote: Invalid credentials");
        assert_eq!(lines[10], "skip    2 later steps                       not run: an earlier step failed");
        assert_eq!(lines.len(), 11, "the skipped steps after the failure are one row");
        assert!(out.lines().all(|l| l == l.trim_end()), "no trailing spaces");
    }

    #[test]
    fn a_failure_at_the_first_step_is_not_followed_by_a_wall_of_skips() {
        let steps = berth_core::Check::completed(vec![Step::fail(
            StepName::Url,
            Code::InvalidUrl,
            "not a URL",
            "paste the HTTPS clone URL",
        )])
        .checks;
        let out = step_table(&steps);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 4, "header, the failure, its remedy, one folded row: {out}");
        assert!(lines[3].starts_with("skip    11 later steps"), "{out}");
        assert_eq!(out.matches("not run").count(), 1, "{out}");
    }

    #[test]
    fn skipped_steps_that_say_something_else_keep_their_rows() {
        let why = "no REST API checks for generic hosts; Git decides";
        let steps = vec![
            Step::pass(StepName::Url, "https://git.example/app.git"),
            Step::skip(StepName::ApiCredential, why),
            Step::skip(StepName::ApiScopes, why),
            Step::pass(StepName::GitDiscovery, "fine"),
        ];
        let out = step_table(&steps);
        assert_eq!(out.matches(why).count(), 2, "no failure before them, so no folding: {out}");
    }

    #[test]
    fn step_table_drops_the_code_column_when_all_pass() {
        let out = step_table(&[Step::pass(StepName::Url, "fine"), Step::pass(StepName::DefaultBranch, "main")]);
        assert_eq!(
            out,
            "STATUS  STEP            MESSAGE\npass    Clone URL       fine\npass    Default branch  main\n"
        );
    }

    #[test]
    fn step_table_neutralises_control_characters_from_remotes() {
        let step = Step::fail(StepName::GitDiscovery, Code::ServerError, "boom\x1b[2J", "retry\rlater")
            .with_details(vec!["remote: \x1b]0;pwned\x07".to_owned()]);
        let out = step_table(&[step]);
        assert!(!out.chars().any(|c| c.is_control() && c != '\n'), "{out:?}");
        assert!(out.contains("boom [2J"));
    }

    #[test]
    fn branches_mark_the_default() {
        let b = RemoteBranches {
            clone_url: "https://bitbucket.org/acme/app.git".into(),
            provider: berth_core::Provider::BitbucketCloud,
            default_branch: Some("main".into()),
            branches: vec![
                berth_proto::RemoteBranch { name: "develop".into(), commit: "0123456789abcdef0123".into() },
                berth_proto::RemoteBranch { name: "main".into(), commit: "fedcba9876543210fedc".into() },
            ],
            protocol: "v2".into(),
            checks: Vec::new(),
        };
        let out = branches(&b);
        assert!(out.contains("Default branch: main\n"), "{out}");
        assert!(out.contains("\n   develop  0123456789ab\n*  main     fedcba987654\n"), "{out}");
    }

    #[test]
    fn tables_align_by_characters_and_fields_fill_blanks() {
        let mut t = Table::new(&["ID", "NAME"]);
        t.row(["1", "Zürich"]).row(["10", "x"]);
        assert_eq!(t.render(), "ID  NAME\n1   Zürich\n10  x\n");
        assert_eq!(fields(&[("Name", "a".into()), ("Username", String::new())]), "Name:      a\nUsername:  -\n");
    }
}
