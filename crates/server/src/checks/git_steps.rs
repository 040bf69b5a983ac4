//! The steps that read what Git answered: the branches the remote has, and the default branch
//! (the remote's HEAD, or the one the person asked for, with the closest names when it is not
//! there).

use super::Outcome;
use berth_core::words::count;
use berth_core::{branch_match, Code, Step, StepName, StepStatus};
use berth_git::RemoteRefs;

/// The branches and default-branch steps from a listing (HTTPS or SSH alike). `api_main` is
/// the main branch the host's REST API named, if it was asked.
pub(crate) fn listing_steps(
    mut refs: RemoteRefs,
    wanted_branch: Option<&str>,
    api_main: Option<String>,
    steps: &mut Vec<Step>,
    out: &mut Outcome,
) {
    // A HEAD naming a branch that does not exist (deleted, or renamed as after master →
    // main) is not a default branch: keep its name for the warning, offer none.
    let dangling = refs
        .default_branch
        .clone()
        .filter(|d| !refs.branches.is_empty() && !refs.branches.iter().any(|b| &b.name == d));
    if dangling.is_some() {
        refs.default_branch = None;
        refs.head_unborn = false;
    }
    // Servers only SHOULD name HEAD in v0; the host's API knows the main branch.
    let mut from_api = false;
    if refs.default_branch.is_none() {
        if let Some(main) = api_main.filter(|m| refs.branches.is_empty() || refs.branches.iter().any(|b| &b.name == m))
        {
            refs.default_branch = Some(main);
            from_api = true;
        }
    }
    steps.push(branches_step(&refs));
    let (mut step, chosen) = default_branch_step(&refs, wanted_branch, dangling.as_deref());
    if from_api && step.status == StepStatus::Pass {
        step.message.push_str("; named by the host's REST API, as the Git server did not name HEAD");
    }
    steps.push(step);
    out.default_branch = chosen;
    out.refs = Some(refs);
}

fn branches_step(refs: &RemoteRefs) -> Step {
    if refs.branches.is_empty() {
        let head = refs.default_branch.as_deref().unwrap_or("?");
        return Step::warn(
            StepName::Branches,
            Code::EmptyRepository,
            format!("the repository has no branches yet (HEAD points to {head})"),
            "push a first commit; registration works, branch lists fill in after the first push",
        );
    }
    Step::pass(StepName::Branches, count(refs.branches.len(), "branch", "branches"))
}

fn default_branch_step(refs: &RemoteRefs, wanted: Option<&str>, dangling: Option<&str>) -> (Step, Option<String>) {
    let names = || refs.branches.iter().map(|b| b.name.as_str());
    let remote_default = refs.default_branch.clone();
    match wanted.map(str::trim).filter(|w| !w.is_empty()) {
        Some(w) => {
            let w = w.strip_prefix("refs/heads/").unwrap_or(w);
            let exists = names().any(|n| n == w) || (refs.head_unborn && remote_default.as_deref() == Some(w));
            if exists {
                let note = match (remote_default.as_deref(), dangling) {
                    (Some(d), _) if d == w => " (also the remote's default)".to_owned(),
                    (_, Some(h)) => format!(" (the remote's HEAD names {h}, which does not exist)"),
                    _ => String::new(),
                };
                (Step::pass(StepName::DefaultBranch, format!("{w}{note}")), Some(w.to_owned()))
            } else {
                let close = branch_match::closest(w, names(), 5);
                let hint =
                    if close.is_empty() { String::new() } else { format!("; did you mean {}?", close.join(", ")) };
                let step = Step::fail(
                    StepName::DefaultBranch,
                    Code::BranchNotFound,
                    format!("branch {w:?} does not exist on the remote{hint}"),
                    "pick a branch the remote has, or leave the default branch empty to use the remote's default",
                )
                .with_details(close);
                (step, None)
            }
        }
        None => match (remote_default, dangling) {
            (Some(d), _) => (Step::pass(StepName::DefaultBranch, format!("{d} (the remote's default)")), Some(d)),
            (None, Some(head)) => {
                let existing: Vec<String> = names().take(DEFAULT_CHOICES_SHOWN).map(str::to_owned).collect();
                let more = refs.branches.len().saturating_sub(existing.len());
                let more = if more == 0 { String::new() } else { format!(" and {more} more") };
                let step = Step::warn(
                    StepName::DefaultBranch,
                    Code::DefaultBranchMissing,
                    format!(
                        "the remote's HEAD names {head}, which does not exist (deleted or renamed), so the remote has \
                         no default branch; it has {}: {}{more}",
                        count(refs.branches.len(), "branch", "branches"),
                        existing.join(", ")
                    ),
                    "choose the default branch from those that exist; the host's administrator can point HEAD at it",
                )
                .with_details(existing);
                (step, None)
            }
            (None, None) => {
                let mut some: Vec<String> = names().take(5).map(str::to_owned).collect();
                some.sort();
                let step = Step::fail(
                    StepName::DefaultBranch,
                    Code::NoDefaultBranch,
                    "the server did not say which branch is its default (HEAD)",
                    "choose the default branch yourself from the list",
                )
                .with_details(some);
                (step, None)
            }
        },
    }
}

/// Branch names a `default_branch_missing` step lists.
const DEFAULT_CHOICES_SHOWN: usize = 20;
