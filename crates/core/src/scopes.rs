//! Scopes, split by who needs them.
//!
//! Berth's own job (register a repository, list its branches, check its health) needs one
//! Bitbucket scope, `read:repository:bitbucket` ([`REGISTRATION_SCOPES`]). Everything else the
//! product page lists unlocks a [`Capability`] a deployment may want on top (webhooks, pull
//! requests, administration, …); the configuration's `[scopes] want` says which. A missing
//! scope Berth needs is a failure, a missing scope of a wanted capability is a warning, and the
//! rest is information about the token, never a warning on every repository: a warning that is
//! always there teaches people to ignore warnings.
//!
//! Bitbucket Cloud API-token scopes do not imply each other (`write:repository:bitbucket` does not
//! grant `read:repository:bitbucket`, `admin:*` grants neither), so every comparison here is a
//! plain set difference. GitHub classic scopes do imply each other (`repo` covers `public_repo`),
//! which [`github_assessment`] models. Nothing here sees a secret except the prefix tests in
//! [`looks_like_app_password`] and [`looks_like_api_token`], which read only the first bytes.

use crate::credential::{self, CredentialKind, REGISTRATION_SCOPES};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What a deployment may want a token to do beyond Berth's own job, as named in the
/// configuration (`[scopes] want = ["webhooks", "pull_requests"]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    /// Read and create pull requests.
    PullRequests,
    /// Read and install webhooks.
    Webhooks,
    /// Push commits and create branches.
    Push,
    /// Repository settings and branch restrictions.
    RepositoryAdmin,
    /// List projects.
    Projects,
    /// Project settings.
    ProjectAdmin,
    /// Read and manage permissions.
    Permissions,
    /// Account details and the token owner's profile.
    Account,
    /// Who the token belongs to (Bitbucket's `GET /2.0/user`), shown on the credential.
    Identity,
}

impl Capability {
    pub const ALL: [Capability; 9] = [
        Capability::PullRequests,
        Capability::Webhooks,
        Capability::Push,
        Capability::RepositoryAdmin,
        Capability::Projects,
        Capability::ProjectAdmin,
        Capability::Permissions,
        Capability::Account,
        Capability::Identity,
    ];

    /// The configuration's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::PullRequests => "pull_requests",
            Capability::Webhooks => "webhooks",
            Capability::Push => "push",
            Capability::RepositoryAdmin => "repository_admin",
            Capability::Projects => "projects",
            Capability::ProjectAdmin => "project_admin",
            Capability::Permissions => "permissions",
            Capability::Account => "account",
            Capability::Identity => "identity",
        }
    }

    pub fn parse(s: &str) -> Option<Capability> {
        Capability::ALL.into_iter().find(|c| c.as_str() == s.trim())
    }

    /// For people: "pull requests", "webhooks".
    pub fn label(self) -> &'static str {
        match self {
            Capability::PullRequests => "pull requests",
            Capability::Webhooks => "webhooks",
            Capability::Push => "pushing changes",
            Capability::RepositoryAdmin => "repository administration",
            Capability::Projects => "listing projects",
            Capability::ProjectAdmin => "project administration",
            Capability::Permissions => "permissions",
            Capability::Account => "account details",
            Capability::Identity => "showing who the token belongs to",
        }
    }

    /// The Bitbucket Cloud API-token scopes it takes, all of them (scopes do not imply each
    /// other).
    pub fn bitbucket_scopes(self) -> &'static [&'static str] {
        match self {
            Capability::PullRequests => &["read:pullrequest:bitbucket", "write:pullrequest:bitbucket"],
            Capability::Webhooks => &["read:webhook:bitbucket", "write:webhook:bitbucket"],
            Capability::Push => &["write:repository:bitbucket"],
            Capability::RepositoryAdmin => &["admin:repository:bitbucket"],
            Capability::Projects => &["read:project:bitbucket"],
            Capability::ProjectAdmin => &["admin:project:bitbucket"],
            Capability::Permissions => &["read:permission:bitbucket", "write:permission:bitbucket"],
            Capability::Account => &["read:account", "read:me"],
            Capability::Identity => &["read:user:bitbucket"],
        }
    }

    /// Whether a GitHub classic token needs `repo` (private) or `public_repo` (public
    /// repositories) for it. The other capabilities are Bitbucket's notions.
    fn on_github(self) -> bool {
        matches!(self, Capability::PullRequests | Capability::Webhooks | Capability::Push)
    }
}

impl std::fmt::Display for Capability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Labels of capabilities, joined for a sentence: "webhooks, pull requests".
pub fn labels(caps: &[Capability]) -> String {
    caps.iter().map(|c| c.label()).collect::<Vec<_>>().join(", ")
}

/// What Berth's own job does with [`REGISTRATION_SCOPES`], for people.
pub const BERTH_NEEDS_FOR: &str = "registering repositories, listing branches and checking them";

/// What a scope unlocks, for people: Berth's own job or the capability that takes it; empty for
/// a scope Berth does not know.
pub fn capabilities_of(scope: &str) -> Vec<&'static str> {
    if REGISTRATION_SCOPES.contains(&scope) {
        return vec!["registering repositories", "listing branches", "checking repositories"];
    }
    if matches!(scope, "repo") {
        return vec!["private repositories", "pull requests", "webhooks", "pushing changes"];
    }
    if matches!(scope, "public_repo") {
        return vec!["pull requests", "webhooks", "pushing changes"];
    }
    Capability::ALL.into_iter().filter(|c| c.bitbucket_scopes().contains(&scope)).map(Capability::label).collect()
}

/// The capability a Bitbucket scope belongs to, if any.
pub fn capability_of(scope: &str) -> Option<Capability> {
    Capability::ALL.into_iter().find(|c| c.bitbucket_scopes().contains(&scope))
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

/// How a token's scopes compare with what Berth needs and what the deployment wants.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScopeAssessment {
    /// Scopes Berth's own job needs that are not granted: a failure.
    pub missing_needed: Vec<&'static str>,
    /// Scopes of wanted capabilities that are not granted: a warning.
    pub missing_wanted: Vec<&'static str>,
    /// The wanted capabilities those block.
    pub blocked_wanted: Vec<Capability>,
    /// Scopes of capabilities nobody asked for that are not granted: information only.
    pub missing_other: Vec<&'static str>,
    /// The capabilities those block.
    pub blocked_other: Vec<Capability>,
}

impl ScopeAssessment {
    /// Berth can do its job (register, list branches, check).
    pub fn can_register(&self) -> bool {
        self.missing_needed.is_empty()
    }

    /// Every missing scope, needed first, then wanted, then the rest.
    pub fn missing_all(&self) -> Vec<&'static str> {
        let mut v = self.missing_needed.clone();
        v.extend(&self.missing_wanted);
        v.extend(&self.missing_other);
        v
    }
}

/// Compares granted Bitbucket API-token scopes with what Berth needs and `wanted`.
pub fn bitbucket_assessment(granted: &[String], wanted: &[Capability]) -> ScopeAssessment {
    let mut a = ScopeAssessment {
        missing_needed: credential::missing_scopes(REGISTRATION_SCOPES, granted),
        ..ScopeAssessment::default()
    };
    for cap in Capability::ALL {
        let missing = credential::missing_scopes(cap.bitbucket_scopes(), granted);
        if missing.is_empty() {
            continue;
        }
        if wanted.contains(&cap) {
            a.missing_wanted.extend(missing);
            a.blocked_wanted.push(cap);
        } else {
            a.missing_other.extend(missing);
            a.blocked_other.push(cap);
        }
    }
    a
}

/// Compares the scopes of a GitHub classic token with what Berth needs for a repository whose
/// visibility is `private` (`None` when no repository is known) and with `wanted`. `repo`
/// implies `public_repo`; public repositories are readable without any scope.
pub fn github_assessment(granted: &[String], private: Option<bool>, wanted: &[Capability]) -> ScopeAssessment {
    let has = |s: &str| granted.iter().any(|g| g == s);
    let mut a = ScopeAssessment::default();
    if has("repo") {
        return a;
    }
    if private == Some(true) {
        a.missing_needed.push("repo");
    }
    // The scope the GitHub capabilities take on this repository: `public_repo` suffices on a
    // public one (and is missing only when not granted); otherwise `repo`.
    let scope = match private {
        Some(false) if has("public_repo") => None,
        Some(false) => Some("public_repo"),
        _ => Some("repo"),
    };
    let Some(scope) = scope else { return a };
    for cap in Capability::ALL.into_iter().filter(|c| c.on_github()) {
        if wanted.contains(&cap) {
            a.blocked_wanted.push(cap);
        } else {
            a.blocked_other.push(cap);
        }
    }
    // A scope already named as needed is not repeated as wanted or other.
    let needed_already = a.missing_needed.contains(&scope);
    if !a.blocked_wanted.is_empty() && !needed_already {
        a.missing_wanted.push(scope);
    } else if !a.blocked_other.is_empty() && !needed_already {
        a.missing_other.push(scope);
    }
    a
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
    use crate::credential::FULL_SCOPES;

    fn owned(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn every_full_scope_is_berths_or_a_capabilitys() {
        for s in FULL_SCOPES {
            assert!(!capabilities_of(s).is_empty(), "{s}");
        }
        assert_eq!(capability_of("read:user:bitbucket"), Some(Capability::Identity));
        assert!(capabilities_of("read:nothing").is_empty());
        for c in Capability::ALL {
            assert_eq!(Capability::parse(c.as_str()), Some(c));
        }
        assert_eq!(Capability::parse("web hooks"), None);
    }

    #[test]
    fn berths_scope_alone_is_complete_when_nothing_is_wanted() {
        let a = bitbucket_assessment(&owned(&["read:repository:bitbucket"]), &[]);
        assert!(a.can_register());
        assert!(a.missing_wanted.is_empty() && a.blocked_wanted.is_empty());
        // Everything else is information, not a warning.
        assert_eq!(a.missing_other.len(), FULL_SCOPES.len() - 1 + 1, "the 12 others and read:user");
        assert!(a.blocked_other.contains(&Capability::Webhooks));
    }

    #[test]
    fn wanted_capabilities_turn_their_gaps_into_warnings() {
        let a = bitbucket_assessment(
            &owned(&["read:repository:bitbucket", "read:webhook:bitbucket"]),
            &[Capability::Webhooks, Capability::PullRequests],
        );
        assert!(a.can_register());
        assert_eq!(
            a.missing_wanted,
            vec!["read:pullrequest:bitbucket", "write:pullrequest:bitbucket", "write:webhook:bitbucket"]
        );
        assert_eq!(a.blocked_wanted, vec![Capability::PullRequests, Capability::Webhooks]);
        assert!(!a.missing_other.contains(&"write:webhook:bitbucket"));
    }

    #[test]
    fn write_and_admin_do_not_imply_read() {
        let a = bitbucket_assessment(&owned(&["write:repository:bitbucket", "admin:repository:bitbucket"]), &[]);
        assert_eq!(a.missing_needed, vec!["read:repository:bitbucket"]);
        assert!(!a.can_register());
    }

    #[test]
    fn full_set_and_read_user_miss_nothing() {
        let mut all = owned(FULL_SCOPES);
        all.push("read:user:bitbucket".into());
        assert_eq!(bitbucket_assessment(&all, &Capability::ALL), ScopeAssessment::default());
    }

    #[test]
    fn scope_lists_split_on_commas_and_spaces() {
        assert_eq!(parse_scope_list("repo, read:org,  gist"), owned(&["repo", "read:org", "gist"]));
        assert_eq!(parse_scope_list("a b a"), owned(&["a", "b"]));
        assert!(parse_scope_list(" ").is_empty());
    }

    #[test]
    fn github_repo_implies_public_repo() {
        let wanted = [Capability::PullRequests];
        assert_eq!(github_assessment(&owned(&["repo"]), Some(true), &wanted), ScopeAssessment::default());
        assert_eq!(github_assessment(&owned(&["public_repo"]), Some(true), &[]).missing_needed, vec!["repo"]);
        assert_eq!(github_assessment(&owned(&["public_repo"]), Some(false), &wanted), ScopeAssessment::default());
        let none = github_assessment(&[], Some(false), &[]);
        assert!(none.can_register() && none.missing_wanted.is_empty() && none.missing_other == vec!["public_repo"]);
        let wants = github_assessment(&[], Some(false), &wanted);
        assert_eq!((wants.missing_wanted, wants.blocked_wanted), (vec!["public_repo"], vec![Capability::PullRequests]));
        // A private repository without `repo`: named once, as needed.
        let private = github_assessment(&[], Some(true), &wanted);
        assert_eq!(private.missing_all(), vec!["repo"]);
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
