//! Scopes and the Berth capabilities they unlock.
//!
//! Bitbucket Cloud API-token scopes do not imply each other (`write:repository:bitbucket` does not
//! grant `read:repository:bitbucket`, `admin:*` grants neither), so every comparison here is a
//! plain set difference. GitHub classic scopes do imply each other (`repo` covers `public_repo`),
//! which [`github_assessment`] models. Nothing here sees a secret except the prefix tests in
//! [`looks_like_app_password`] and [`looks_like_api_token`], which read only the first bytes.

use crate::credential::{self, CredentialKind, FULL_SCOPES, REGISTRATION_SCOPES};

/// What each Bitbucket Cloud API-token scope of the full set lets Berth (and the platform) do.
/// Capabilities are short phrases a person reads: "list branches", "webhooks", "pull requests".
pub const BITBUCKET_SCOPE_CAPABILITIES: &[(&str, &[&str])] = &[
    ("read:repository:bitbucket", &["list branches", "register repositories", "read repository contents"]),
    ("write:repository:bitbucket", &["push changes", "create branches"]),
    ("admin:repository:bitbucket", &["repository administration", "branch restrictions"]),
    ("read:project:bitbucket", &["list projects"]),
    ("admin:project:bitbucket", &["project administration"]),
    ("read:pullrequest:bitbucket", &["pull requests"]),
    ("write:pullrequest:bitbucket", &["pull requests", "merge pull requests"]),
    ("read:webhook:bitbucket", &["webhooks"]),
    ("write:webhook:bitbucket", &["webhooks"]),
    ("read:permission:bitbucket", &["read permissions"]),
    ("write:permission:bitbucket", &["manage permissions"]),
    ("read:account", &["account details"]),
    ("read:me", &["the token owner's profile"]),
];

/// The capabilities a scope unlocks; empty for a scope Berth does not use.
pub fn capabilities_of(scope: &str) -> &'static [&'static str] {
    BITBUCKET_SCOPE_CAPABILITIES
        .iter()
        .chain(GITHUB_SCOPE_CAPABILITIES)
        .find(|(s, _)| *s == scope)
        .map_or(&[], |(_, caps)| *caps)
}

/// The capabilities blocked by the `missing` scopes, each named once, in table order of first
/// appearance.
pub fn blocked_capabilities<S: AsRef<str>>(missing: &[S]) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for scope in missing {
        for cap in capabilities_of(scope.as_ref()) {
            if !out.contains(cap) {
                out.push(cap);
            }
        }
    }
    out
}

/// Splits a scope list as hosts send it (`X-OAuth-Scopes: repo, read:org`, or space separated).
pub fn parse_scope_list(s: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for part in s.split([',', ' ', '\t']).map(str::trim).filter(|p| !p.is_empty()) {
        if !out.iter().any(|o| o == part) {
            out.push(part.to_owned());
        }
    }
    out
}

/// How a Bitbucket Cloud API token's scopes compare with what Berth needs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScopeAssessment {
    /// Scopes needed to register a repository and list its branches that are not granted.
    pub missing_for_registration: Vec<&'static str>,
    /// Scopes of the full set (what the platform uses) that are not granted; includes the above.
    pub missing: Vec<&'static str>,
    /// What the missing scopes block, for people.
    pub blocked: Vec<&'static str>,
}

impl ScopeAssessment {
    /// Registration works (it may still warn about the full set).
    pub fn can_register(&self) -> bool {
        self.missing_for_registration.is_empty()
    }
}

/// Compares granted Bitbucket API-token scopes with [`REGISTRATION_SCOPES`] and [`FULL_SCOPES`].
pub fn bitbucket_assessment(granted: &[String]) -> ScopeAssessment {
    let missing = credential::missing_scopes(FULL_SCOPES, granted);
    ScopeAssessment {
        missing_for_registration: credential::missing_scopes(REGISTRATION_SCOPES, granted),
        blocked: blocked_capabilities(&missing),
        missing,
    }
}

/// GitHub classic-token scopes Berth knows about.
pub const GITHUB_SCOPE_CAPABILITIES: &[(&str, &[&str])] = &[
    ("repo", &["private repositories", "list branches", "register repositories", "pull requests", "webhooks"]),
    ("public_repo", &["pull requests", "webhooks"]),
];

/// Compares the scopes of a GitHub classic token with what Berth needs for a repository whose
/// visibility is `private` (`None` when no repository is known). `repo` implies `public_repo`;
/// public repositories are readable without any scope.
pub fn github_assessment(granted: &[String], private: Option<bool>) -> ScopeAssessment {
    let has = |s: &str| granted.iter().any(|g| g == s);
    if has("repo") {
        return ScopeAssessment::default();
    }
    match private {
        Some(true) => ScopeAssessment {
            missing_for_registration: vec!["repo"],
            missing: vec!["repo"],
            blocked: blocked_capabilities(&["repo"]),
        },
        Some(false) if has("public_repo") => ScopeAssessment::default(),
        Some(false) => ScopeAssessment {
            missing_for_registration: Vec::new(),
            missing: vec!["public_repo"],
            blocked: blocked_capabilities(&["public_repo"]),
        },
        None => ScopeAssessment {
            missing_for_registration: Vec::new(),
            missing: vec!["repo"],
            blocked: vec!["private repositories"],
        },
    }
}

/// Bitbucket app passwords start with `ATBB` (observed; a hint, never a rule on its own). A
/// credential stored as the retired kind is one by definition. `username` and `email` are taken
/// so callers can pass the whole credential; a Basic username without an email is the app
/// password's shape too, but only a 401 or 410 from the host turns that into a verdict.
pub fn looks_like_app_password(
    kind: CredentialKind,
    _username: Option<&str>,
    _email: Option<&str>,
    secret: &str,
) -> bool {
    kind == CredentialKind::BitbucketAppPassword || secret.trim_start().starts_with("ATBB")
}

/// Atlassian API tokens start with `ATATT` (observed; a hint, never a rule).
pub fn looks_like_api_token(secret: &str) -> bool {
    secret.trim_start().starts_with("ATATT")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn every_full_scope_has_capabilities() {
        for s in FULL_SCOPES {
            assert!(!capabilities_of(s).is_empty(), "{s}");
        }
        assert!(capabilities_of("read:user:bitbucket").is_empty());
    }

    #[test]
    fn registration_scope_alone_registers_but_warns_about_the_rest() {
        let a = bitbucket_assessment(&owned(&["read:repository:bitbucket"]));
        assert!(a.can_register());
        assert_eq!(a.missing.len(), FULL_SCOPES.len() - 1);
        assert!(a.blocked.contains(&"webhooks") && a.blocked.contains(&"pull requests"));
        assert!(!a.blocked.contains(&"list branches"));
    }

    #[test]
    fn write_and_admin_do_not_imply_read() {
        let a = bitbucket_assessment(&owned(&["write:repository:bitbucket", "admin:repository:bitbucket"]));
        assert_eq!(a.missing_for_registration, vec!["read:repository:bitbucket"]);
        assert!(a.blocked.contains(&"list branches") && a.blocked.contains(&"register repositories"));
    }

    #[test]
    fn full_set_misses_nothing() {
        let a = bitbucket_assessment(&owned(FULL_SCOPES));
        assert_eq!(a, ScopeAssessment::default());
    }

    #[test]
    fn webhooks_named_once() {
        assert_eq!(blocked_capabilities(&["read:webhook:bitbucket", "write:webhook:bitbucket"]), vec!["webhooks"]);
    }

    #[test]
    fn scope_lists_split_on_commas_and_spaces() {
        assert_eq!(parse_scope_list("repo, read:org,  gist"), owned(&["repo", "read:org", "gist"]));
        assert_eq!(parse_scope_list("a b a"), owned(&["a", "b"]));
        assert!(parse_scope_list(" ").is_empty());
    }

    #[test]
    fn github_repo_implies_public_repo() {
        assert!(github_assessment(&owned(&["repo"]), Some(true)).missing.is_empty());
        assert_eq!(github_assessment(&owned(&["public_repo"]), Some(true)).missing_for_registration, vec!["repo"]);
        assert!(github_assessment(&owned(&["public_repo"]), Some(false)).missing.is_empty());
        let none = github_assessment(&[], Some(false));
        assert!(none.can_register() && none.missing == vec!["public_repo"]);
        assert_eq!(github_assessment(&[], None).blocked, vec!["private repositories"]);
    }

    #[test]
    fn app_password_and_api_token_prefixes() {
        use CredentialKind::*;
        assert!(looks_like_app_password(BitbucketAppPassword, Some("jo"), None, "whatever"));
        assert!(looks_like_app_password(UsernamePassword, Some("jo"), None, "ATBBxyz123"));
        assert!(!looks_like_app_password(BitbucketApiToken, None, Some("jo@example.com"), "ATATT3xFfGF0abc"));
        assert!(!looks_like_app_password(UsernamePassword, Some("jo"), None, "hunter2"));
        assert!(looks_like_api_token("ATATT3xFfGF0abc") && !looks_like_api_token("ATBB123"));
    }
}
