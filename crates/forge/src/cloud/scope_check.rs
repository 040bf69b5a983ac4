//! The `api_scopes` step, and what a scope error says is missing.

use super::{access_token_label, with_article, Evidence};
use crate::parse::CloudError;
use crate::{ForgeReport, Session};
use berth_core::credential::{self, FULL_SCOPES, REGISTRATION_SCOPES};
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
    } else {
        return Step::pass(
            step,
            "Bitbucket does not report API-token scopes and none were recorded with the credential; the repository \
             request checks read:repository:bitbucket",
        )
        .with_details(vec![format!(
            "record the token's scopes with the credential to have the full set ({} scopes) checked",
            FULL_SCOPES.len()
        )]);
    };
    if source != Source::Recorded {
        report.granted_scopes = Some(granted.clone());
    }
    let note = match source {
        Source::Header => " (as Bitbucket reported them)",
        Source::ErrorBody => " (from Bitbucket's scope error)",
        Source::Recorded => " (as you recorded them; Bitbucket does not report API-token scopes)",
    };
    let mut a = scopes::bitbucket_assessment(&granted);
    if !a.can_register() && source == Source::Recorded && ev.repository_read {
        // The repository answered, so the token has read:repository whatever the record says.
        a.missing.retain(|m| !a.missing_for_registration.contains(m));
        a.blocked = scopes::blocked_capabilities(&a.missing);
        let missing = std::mem::take(&mut a.missing_for_registration);
        report.missing_scopes = a.missing.iter().map(|m| (*m).to_owned()).collect();
        report.blocked_capabilities = a.blocked.iter().map(|m| (*m).to_owned()).collect();
        return Step::warn(
            step,
            Code::AccessDenied,
            format!(
                "the scopes you recorded lack {}, yet Bitbucket served the repository: the record is incomplete",
                missing.join(", ")
            ),
            "Update the credential's recorded scopes to match the token.",
        )
        .with_details(missing.iter().map(|m| (*m).to_owned()).collect());
    }
    report.missing_scopes = a.missing.iter().map(|m| (*m).to_owned()).collect();
    report.blocked_capabilities = a.blocked.iter().map(|m| (*m).to_owned()).collect();
    if !a.can_register() {
        report.fatal = true;
        let mut details: Vec<String> = a.missing_for_registration.iter().map(|m| (*m).to_owned()).collect();
        details.extend(a.missing.iter().filter(|m| !a.missing_for_registration.contains(m)).map(|m| (*m).to_owned()));
        return Step::fail(
            step,
            Code::AccessDenied,
            format!(
                "the token lacks {}, which registering repositories and listing branches need{note}; it blocks: {}",
                a.missing_for_registration.join(", "),
                a.blocked.join(", ")
            ),
            create_token_remedy(&a.missing),
        )
        .with_details(details);
    }
    if !a.missing.is_empty() {
        return Step::warn(
            step,
            Code::AccessDenied,
            format!(
                "the token can register repositories, but lacks {} of the {} scopes the platform uses{note}: {}; this \
                 blocks: {}",
                a.missing.len(),
                FULL_SCOPES.len(),
                a.missing.join(", "),
                a.blocked.join(", ")
            ),
            create_token_remedy(&a.missing),
        )
        .with_details(a.missing.iter().map(|m| (*m).to_owned()).collect());
    }
    Step::pass(step, format!("all {} scopes the platform uses are granted{note}", FULL_SCOPES.len()))
}

pub(super) fn create_token_remedy(missing: &[&str]) -> String {
    format!(
        "In Bitbucket, create a new token with Personal settings > API tokens > Create API token with scopes, including {} \
         (scopes do not imply each other: write and admin scopes do not include read), and update the credential.",
        missing.join(", ")
    )
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
