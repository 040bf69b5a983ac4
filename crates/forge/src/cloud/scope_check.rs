//! The `api_scopes` step, and what a scope error says is missing.

use super::{access_token_label, with_article, Evidence};
use crate::parse::CloudError;
use crate::{ForgeReport, Session};
use berth_core::credential::{self, REGISTRATION_SCOPES};
use berth_core::{scopes, Code, CredentialKind, Step, StepName};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Header,
    ErrorBody,
    Recorded,
}

pub(super) fn scopes_step(s: &Session<'_>, ev: &Evidence, report: &mut ForgeReport) -> Step {
    let step = StepName::ApiScopes;
    if let Some(label) = access_token_label(s, ev) {
        return match &ev.header_scopes {
            Some(g) => {
                report.granted_scopes = Some(g.clone());
                Step::pass(step, format!("the {label} has the scopes {}", list_or_none(g)))
            }
            None => Step::pass(
                step,
                format!(
                    "Bitbucket does not report {}'s scopes; the repository request checks its access",
                    with_article(label)
                ),
            ),
        };
    }
    if s.cred.kind != CredentialKind::BitbucketApiToken {
        return Step::pass(
            step,
            format!("{} credentials carry no scopes; the repository request checks access", s.cred.kind.label()),
        );
    }
    let (granted, source) = if let Some(g) = &ev.header_scopes {
        (g.clone(), Source::Header)
    } else if let Some(g) = &ev.body_granted {
        (g.clone(), Source::ErrorBody)
    } else if !s.cred.declared_scopes.is_empty() {
        (s.cred.declared_scopes.to_vec(), Source::Recorded)
    } else if ev.repository_read_refused {
        // A scope error without the granted list still says what was required.
        report.fatal = true;
        report.missing_scopes = REGISTRATION_SCOPES.iter().map(|m| (*m).to_owned()).collect();
        return Step::fail(
            step,
            Code::ScopeMissing,
            format!(
                "Bitbucket refused to list repositories: the token lacks {}, which Berth needs for {}",
                REGISTRATION_SCOPES.join(", "),
                scopes::BERTH_NEEDS_FOR
            ),
            create_token_remedy(),
        );
    } else {
        let said = if ev.repository_read {
            "the token may read repositories, which is what Berth needs (Bitbucket answered a repository request)"
        } else {
            "Bitbucket does not report API-token scopes and none were recorded with the credential; the repository \
             request checks read:repository:bitbucket"
        };
        // Only scopes that matter are worth recording: what this deployment wants on top.
        let details = if s.forge.wanted.is_empty() {
            Vec::new()
        } else {
            vec![format!(
                "Bitbucket does not report the other scopes: record them with the credential to have {} checked",
                scopes::labels(&s.forge.wanted)
            )]
        };
        return Step::pass(step, said).with_details(details);
    };
    if source != Source::Recorded {
        report.granted_scopes = Some(granted.clone());
    }
    let note = match source {
        _ if ev.repository_read_refused => " (Bitbucket refused to list repositories for it)",
        Source::Header => " (as Bitbucket reported them)",
        Source::ErrorBody => " (from Bitbucket's scope error)",
        Source::Recorded => " (as you recorded them; Bitbucket does not report API-token scopes)",
    };
    let mut a = scopes::bitbucket_assessment(&granted, &s.forge.wanted);
    // The host refused a repository request for a missing scope: whatever the evidence above
    // says, Berth's own scope is missing.
    if ev.repository_read_refused {
        for needed in REGISTRATION_SCOPES {
            if !a.missing_needed.contains(needed) {
                a.missing_needed.push(needed);
            }
        }
    }
    if !a.can_register() && source == Source::Recorded && ev.repository_read {
        // The repository answered, so the token has read:repository whatever the record says.
        let missing = std::mem::take(&mut a.missing_needed);
        report.missing_scopes = a.missing_all().iter().map(|m| (*m).to_owned()).collect();
        report.blocked_capabilities = blocked_labels(&a);
        return Step::warn(
            step,
            Code::ScopeMissing,
            format!(
                "the scopes you recorded lack {}, yet Bitbucket served the repository: the record is incomplete",
                missing.join(", ")
            ),
            "Update the credential's recorded scopes to match the token.",
        );
    }
    report.missing_scopes = a.missing_all().iter().map(|m| (*m).to_owned()).collect();
    report.blocked_capabilities = blocked_labels(&a);
    if !a.can_register() {
        report.fatal = true;
        return Step::fail(
            step,
            Code::ScopeMissing,
            format!(
                "the token lacks {}, which Berth needs for {}{note}",
                a.missing_needed.join(", "),
                scopes::BERTH_NEEDS_FOR
            ),
            create_token_remedy(),
        );
    }
    if !a.missing_wanted.is_empty() {
        return Step::warn(
            step,
            Code::ScopeMissing,
            format!(
                "the token lacks {} for {}, which this deployment wants ([scopes] want){note}",
                a.missing_wanted.join(", "),
                scopes::labels(&a.blocked_wanted)
            ),
            create_token_remedy(),
        );
    }
    let wanted = if s.forge.wanted.is_empty() {
        String::new()
    } else {
        format!(" and the scopes of what this deployment wants ({})", scopes::labels(&s.forge.wanted))
    };
    Step::pass(step, format!("the token has what Berth needs{wanted}{note}"))
}

/// Every capability the missing scopes block, Berth's own job first, for the report.
fn blocked_labels(a: &scopes::ScopeAssessment) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    if !a.missing_needed.is_empty() {
        out.push(scopes::BERTH_NEEDS_FOR.to_owned());
    }
    out.extend(a.blocked_wanted.iter().chain(&a.blocked_other).map(|c| c.label().to_owned()));
    out
}

/// The one remedy for a scope gap: a new token, since scopes cannot be added to one. The
/// step's message names the missing scopes; the remedy does not repeat them.
pub(super) fn create_token_remedy() -> String {
    "In Bitbucket, create a new API token (Personal settings > API tokens > Create API token with scopes) with the \
     scopes it has plus the missing ones (write and admin scopes do not include read), then replace the credential's \
     token."
        .to_owned()
}

fn list_or_none(v: &[String]) -> String {
    if v.is_empty() {
        "(none)".to_owned()
    } else {
        v.join(", ")
    }
}

/// Missing scopes named by a scope error: `required` less `granted` (Bitbucket may not list every
/// missing scope), or the registration scopes less `granted` when it names none.
pub(super) fn missing_from_scope_error(err: &CloudError) -> Vec<String> {
    let granted = err.granted.clone().unwrap_or_default();
    let mut missing: Vec<String> = err.required.iter().filter(|r| !granted.contains(r)).cloned().collect();
    if missing.is_empty() {
        missing = credential::missing_scopes(REGISTRATION_SCOPES, &granted).iter().map(|m| (*m).to_owned()).collect();
    }
    if missing.is_empty() {
        missing = err.required.clone();
    }
    missing
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn missing_scopes_from_errors() {
        let e = CloudError {
            required: vec!["read:repository:bitbucket".into()],
            granted: Some(vec!["write:repository:bitbucket".into()]),
            ..CloudError::default()
        };
        assert_eq!(missing_from_scope_error(&e), ["read:repository:bitbucket"]);
        let none_named = CloudError { granted: Some(vec![]), ..CloudError::default() };
        assert_eq!(missing_from_scope_error(&none_named), ["read:repository:bitbucket"]);
    }
}
