//! Checks without a credential: anonymous access, as for a public repository.
//!
//! Git is asked without a credential; a host that wants one answers 401, which berth-net
//! names `credential_required` (there was no credential to refuse). The REST steps are
//! skipped, not failed: anonymous REST calls share a small per-address allowance (GitHub: 60
//! an hour), which background checks of many public repositories would use up, and Git alone
//! says whether the repository can be read.

use berth_core::{CloneUrl, Step, StepName};

/// What the Git discovery step says was accepted.
pub(super) const ACCEPTED: &str = "anonymous access";

/// The credential step of an anonymous check: nothing to open, nothing that can expire.
pub(super) fn credential_step(chosen_by: Option<&str>) -> Step {
    let mut message = "no credential: anonymous access, as for a public repository".to_owned();
    if let Some(why) = chosen_by {
        message = format!("{message}; {why}");
    }
    Step::pass(StepName::Credential, message)
}

/// Why the REST steps did not run, for a host whose REST API Berth could ask.
pub(super) fn rest_skipped_reason(url: &CloneUrl) -> String {
    let allowance = match url.provider {
        berth_core::Provider::Github => " (GitHub allows 60 anonymous REST requests an hour per address)",
        _ => "",
    };
    format!(
        "no credential: the REST API of {} is not asked, so checks of public repositories stay within its \
         anonymous rate limit{allowance}; Git decides",
        url.host
    )
}
