//! Repositories: Refresh (remote branches), registration and updates, what lists and pages
//! show, and their checks.

use crate::*;
use berth_core::{Check, Code, Provider, Step};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RepositoryRef {
    pub id: i64,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CredentialRef {
    pub id: i64,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RemoteBranchesRequest {
    pub clone_url: String,
    /// Without one (absent or `null`), the credential template with the longest matching URL
    /// prefix chooses; when no template covers the URL, the check goes anonymously (as with
    /// `anonymous`), and a host that wants sign-in answers `credential_required`.
    #[serde(default)]
    pub credential: Option<CredentialSelector>,
    /// `true` checks without any credential (anonymous access, a public repository): no template
    /// is asked, the REST API steps are skipped, and a host that wants sign-in answers
    /// `credential_required`. Not together with `credential`.
    #[serde(default, skip_serializing_if = "crate::is_false")]
    pub anonymous: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RemoteBranch {
    pub name: String,
    pub commit: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RemoteBranches {
    /// The canonical clone URL.
    pub clone_url: String,
    pub provider: Provider,
    /// The remote's default branch (its HEAD), also for an empty repository.
    pub default_branch: Option<String>,
    pub branches: Vec<RemoteBranch>,
    /// The Git protocol the server spoke.
    #[schema(value_type = GitProtocol)]
    pub protocol: String,
    /// Every step of the check that listed the branches.
    pub checks: Vec<Step>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RepositoryCreate {
    pub name: String,
    /// Version control system: only `git`.
    #[serde(default = "default_vcs")]
    #[schema(value_type = Vcs, default = "git")]
    pub vcs: String,
    pub clone_url: String,
    /// Without one (absent or `null`), the credential template with the longest matching URL
    /// prefix chooses; when no template covers the URL, the check goes anonymously (as with
    /// `anonymous`), and a host that wants sign-in answers `credential_required`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<CredentialSelector>,
    /// `true` registers it without any credential (anonymous access, a public repository): no
    /// template is asked, the REST API steps are skipped (the hosts' anonymous rate limits are
    /// small), and a host that wants sign-in answers `credential_required`. Not together with
    /// `credential`.
    #[serde(default, skip_serializing_if = "crate::is_false")]
    pub anonymous: bool,
    /// Defaults to the remote's default branch; a given one must exist on the remote.
    #[serde(default)]
    pub default_branch: Option<String>,
    /// `true` also registers a webhook on the host (Bitbucket Cloud, Data Center, GitHub), so
    /// pushes update the branch list at once; needs `public_url` and a credential that may
    /// manage the repository's webhooks. When the host refuses, nothing is registered.
    #[serde(default, skip_serializing_if = "crate::is_false")]
    pub webhook: bool,
}

fn default_vcs() -> String {
    "git".to_owned()
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RepositoryUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clone_url: Option<String>,
    /// Another credential; without one (and without `anonymous`) the repository keeps its own,
    /// or keeps having none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<CredentialSelector>,
    /// `true` drops the repository's credential: it is checked anonymously from now on (a
    /// public repository). Not together with `credential`.
    #[serde(default, skip_serializing_if = "crate::is_false")]
    pub anonymous: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_branch: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Repository {
    pub id: i64,
    pub name: String,
    #[schema(value_type = Vcs)]
    pub vcs: String,
    /// Canonical clone URL.
    pub clone_url: String,
    pub provider: Provider,
    pub default_branch: String,
    /// `null`: no credential, checked anonymously (a public repository).
    pub credential: Option<CredentialRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_check: Option<StoredCheck>,
    /// `ok`, `warn` or `fail` from the last check; `unchecked` before the first one; `paused`
    /// while background checks of its credential are paused.
    #[serde(default)]
    #[schema(value_type = RepositoryStatus)]
    pub status: String,
    /// When the background scheduler checks it next.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_check_at: Option<DateTime<Utc>>,
    /// The Berth instance checking it in the background right now, if one is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checking_by: Option<String>,
    /// What needs attention now: its credential's expiry, paused checks.
    #[serde(default)]
    pub warnings: Vec<Warning>,
    /// Its stored branch list (shown for one repository, not in lists); the branches
    /// themselves are at `GET /api/v1/repositories/{id}/branches`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branches: Option<BranchListSummary>,
    /// The webhook Berth registered on the host (shown for one repository, not in lists).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<RepositoryWebhook>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StoredCheck {
    #[serde(default)]
    pub id: i64,
    pub ok: bool,
    /// `ok`, `warn` or `fail`.
    #[serde(default)]
    #[schema(value_type = berth_core::CheckStatus)]
    pub status: String,
    /// Why it ran.
    #[serde(default)]
    #[schema(value_type = berth_core::CheckReason)]
    pub reason: String,
    /// The Berth instance that ran it.
    #[serde(default)]
    pub instance: String,
    /// Code of the first failing step, or `ok`.
    pub code: Code,
    pub checked_at: DateTime<Utc>,
    pub duration_ms: u64,
    /// The codes of the steps that warned.
    #[serde(default)]
    pub warning_codes: Vec<Code>,
    /// Every step. Left out in lists (`GET /api/v1/repositories`), which stay small with many
    /// thousands of repositories; a repository's own page and its history carry them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<Step>,
}

/// The answer of `POST /api/v1/checks/schedule`: how many repositories were made due.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Scheduled {
    pub scheduled: u64,
}

/// The answer of `POST /repositories/{id}/check`.
pub type CheckResult = Check;
