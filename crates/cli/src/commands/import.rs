//! `berth repo import SOURCE --credential NAME [--all | --select PATTERN] [--dry-run]`: list a
//! workspace, project or organisation, register the chosen repositories, show their progress
//! (a bar on a terminal) and a summary table. Exit 1 when any registration failed.

use super::{verdict, CmdResult, Ctx, Failure};
use berth::output::{clean, Table};
use berth_proto::{Import, ImportCreate, ImportRegister};
use clap::Args;
use std::io::IsTerminal;
use std::time::Duration;

#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    /// A Bitbucket Cloud workspace (https://bitbucket.org/acme), Data Center project
    /// (https://host/projects/KEY) or GitHub organisation or user (https://github.com/acme).
    pub source: String,
    /// Credential id or name: lists the repositories and registers them. Without it, the
    /// credential template covering the source's clone URLs chooses one.
    #[arg(long)]
    pub credential: Option<String>,
    /// Register every listed repository.
    #[arg(long, conflicts_with = "select")]
    pub all: bool,
    /// Register the repositories whose full name (`acme/app`) matches; `*` and `?` are
    /// wildcards, case is ignored. Repeatable.
    #[arg(long, value_name = "PATTERN")]
    pub select: Vec<String>,
    /// List, and say what would be registered, without registering anything.
    #[arg(long)]
    pub dry_run: bool,
}

/// `*` any run of characters, `?` one character; case-insensitive.
fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let t: Vec<char> = text.to_lowercase().chars().collect();
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

fn listing(imp: &Import, chosen: &[String]) -> String {
    let mut t = Table::new(&["REPOSITORY", "STATUS", "NAME", "NOTE"]);
    for r in &imp.repositories {
        let note = match (&r.already_registered, &r.code, &r.message) {
            (Some(e), _, _) => format!("registered already as {} (id {})", e.name, e.id),
            (None, Some(c), Some(m)) => format!("{c}: {m}"),
            (None, Some(c), None) => c.to_string(),
            _ if chosen.contains(&r.full_name) && r.status == "pending" => "would be registered".to_owned(),
            _ => String::new(),
        };
        t.row([r.full_name.as_str(), r.status.as_str(), r.name.as_str(), note.as_str()]);
    }
    t.render()
}

fn summary(imp: &Import) -> String {
    let mut t = Table::new(&["REPOSITORY", "STATUS", "NAME", "CODE", "MESSAGE"]).notes_under(3);
    for r in imp.repositories.iter().filter(|r| r.selected) {
        let code = r.code.map(|c| c.to_string()).unwrap_or_default();
        t.row([
            r.full_name.as_str(),
            r.status.as_str(),
            r.name.as_str(),
            code.as_str(),
            r.message.as_deref().unwrap_or(""),
        ]);
        if let Some(remedy) = r.remedy.as_deref().filter(|_| r.status == "failed") {
            t.note(&format!("remedy: {}", clean(remedy)));
        }
    }
    format!(
        "{}\nImport {} from {}: {} registered, {} failed, {} skipped of {} selected ({} listed).\n",
        t.render(),
        imp.id,
        clean(&imp.source),
        imp.registered,
        imp.failed,
        imp.skipped,
        imp.total,
        imp.listed
    )
}

pub async fn run(ctx: &Ctx, a: ImportArgs) -> CmdResult {
    let imp =
        ctx.client.create_import(&ImportCreate { source: a.source, credential: a.credential.map(Into::into) }).await?;
    let chosen: Vec<String> = imp
        .repositories
        .iter()
        .filter(|r| a.all || a.select.iter().any(|p| glob(p, &r.full_name)))
        .map(|r| r.full_name.clone())
        .collect();
    if a.dry_run || (!a.all && a.select.is_empty()) {
        ctx.emit(&imp, || {
            let hint = if a.dry_run {
                format!(
                    "Dry run: {} of {} listed repositories would be registered; nothing was.\n",
                    chosen.len(),
                    imp.listed
                )
            } else {
                "Nothing registered: choose with --all or --select PATTERN.\n".to_owned()
            };
            format!("{}\n{hint}", listing(&imp, &chosen))
        });
        return Ok(());
    }
    if chosen.is_empty() {
        return Err(Failure::Usage(format!(
            "no listed repository matches {}; the import lists {} (see it with --dry-run)",
            a.select.join(", "),
            imp.listed
        )));
    }
    let req = if a.all {
        ImportRegister { all: true, ..Default::default() }
    } else {
        ImportRegister { repositories: chosen, all: false }
    };
    let mut imp = ctx.client.register_import(imp.id, &req).await?;
    // A bar only for a person watching a terminal; pipes and --json get the result alone.
    let bar = (!ctx.json && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new(u64::try_from(imp.total).unwrap_or(0));
        if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}") {
            bar.set_style(style);
        }
        bar
    });
    while !imp.finished() {
        tokio::time::sleep(Duration::from_millis(300)).await;
        imp = ctx.client.get_import(imp.id).await?;
        if let Some(bar) = &bar {
            bar.set_position(u64::try_from(imp.done).unwrap_or(0));
            bar.set_message(format!("{} registered, {} failed", imp.registered, imp.failed));
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    ctx.emit(&imp, || summary(&imp));
    verdict(imp.failed == 0)
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn globs() {
        assert!(glob("acme/*", "acme/app") && glob("ACME/a?p", "acme/app") && glob("*", "x/y"));
        assert!(glob("*svc-*", "fleet/svc-01") && !glob("acme/*", "other/app") && !glob("acme/app", "acme/app2"));
        assert!(glob("a*b*c", "aXbYc") && !glob("a*b*c", "aXbY"));
    }
}
