//! The JSON shapes of Berth's REST API (`/api/v1`). The server serialises them and documents
//! them in OpenAPI; the CLI deserialises them. One definition, so the two cannot drift.

use berth_core::{Capability, Check, Code, CredentialKind, Provider, Step};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub type Id = i64;

#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct LoginResponse {
    /// Send as `Authorization: Bearer <token>`.
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

/// A stored credential as shown to people and programs: everything but the secret.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Credential {
    pub id: Id,
    pub name: String,
    pub kind: CredentialKind,
    /// The kind as the UI labels it, e.g. "Username with API Token".
    pub kind_label: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_on: Option<NaiveDate>,
    /// `unknown`, `valid`, `expires_soon` or `expired`, judged against today's date.
    pub expiry_status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub days_until_expiry: Option<i64>,
    /// Scopes the user says the token was given.
    pub scopes: Vec<String>,
    /// Registration scopes (`read:repository:bitbucket`) missing from `scopes`, for API tokens.
    pub missing_scopes: Vec<String>,
    /// For API tokens with recorded scopes: each scope of the full set the product uses that the
    /// token lacks, with the Berth capabilities it blocks. Scopes do not imply each other.
    #[serde(default)]
    pub scope_gaps: Vec<ScopeGap>,
    pub used_by: Vec<RepositoryRef>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When the secret was last set: the rotation date.
    pub secret_updated_at: DateTime<Utc>,
    /// The expiry warning that applies today (30, 7 and 1 days before, and after expiry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiry_warning: Option<Warning>,
    /// Authentication failures of this credential's checks since its last success or edit.
    #[serde(default)]
    pub auth_failures: i64,
    /// Set when background checks stopped using this credential after repeated
    /// authentication failures, so polling cannot lock the account; editing it resumes them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checks_paused_at: Option<DateTime<Utc>>,
    /// The host the credential is for (`https://bitbucket.org`, an integration's host): where
    /// it is verified when saved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The credential's last verification on its host: whether the host accepts it, who it
    /// says it is, and its scopes against what Berth needs and this deployment wants.
    pub verification: Verification,
    /// The capabilities this deployment wants tokens to have beyond Berth's own job
    /// (`[scopes] want`); missing scopes of these warn.
    #[serde(default)]
    pub wanted_capabilities: Vec<Capability>,
    /// After a token replacement: every repository using the credential, re-checked with the
    /// new token before the answer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rechecked: Vec<RepositoryCheck>,
}

/// A repository and one check of it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RepositoryCheck {
    pub repository: RepositoryRef,
    pub check: Check,
}

/// The verdict of a verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VerificationStatus {
    /// The host accepts the credential and it has what Berth needs and the deployment wants.
    Ok,
    /// It works, with something to act on (a wanted scope missing, expiry near).
    Warn,
    /// The host refuses it, or it lacks what Berth needs.
    Fail,
    /// Not verified: no host is known, or the host has no REST API Berth can ask.
    Unverified,
}

impl VerificationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            VerificationStatus::Ok => "ok",
            VerificationStatus::Warn => "warn",
            VerificationStatus::Fail => "fail",
            VerificationStatus::Unverified => "unverified",
        }
    }
}

/// Who a host says a credential is, as far as it says.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HostIdentity {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// A credential's verification on its host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Verification {
    pub status: VerificationStatus,
    /// The first failing (else warning) step's code; `ok` otherwise.
    pub code: Code,
    pub message: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub remedy: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<HostIdentity>,
    /// As the host reported them; absent when it does not (Bitbucket API tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub granted_scopes: Option<Vec<String>>,
    /// Every scope the token lacks, needed or not; `scope_gaps` on the credential says which
    /// matter.
    #[serde(default)]
    pub missing_scopes: Vec<String>,
    /// The host it was verified on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked_at: Option<DateTime<Utc>>,
    /// The steps that ran.
    #[serde(default)]
    pub steps: Vec<Step>,
}

impl Verification {
    /// Never verified, and why.
    pub fn unverified(message: impl Into<String>, remedy: impl Into<String>) -> Verification {
        Verification {
            status: VerificationStatus::Unverified,
            code: Code::Ok,
            message: message.into(),
            remedy: remedy.into(),
            identity: None,
            granted_scopes: None,
            missing_scopes: Vec::new(),
            host: None,
            checked_at: None,
            steps: Vec::new(),
        }
    }
}

/// `POST /api/v1/credentials/{id}/verify`: where to verify. Without `url`, the credential's
/// host.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialVerify {
    /// A clone URL (the Git step runs too) or a base URL on the host (`https://bitbucket.org`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// A condition a person should act on before it breaks something (an expiring token, paused
/// checks). `code` is stable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Warning {
    pub code: Code,
    pub message: String,
    pub remedy: String,
}

#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialCreate {
    pub name: String,
    pub kind: CredentialKind,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    /// Write-only: never returned by any call.
    pub secret: String,
    #[serde(default)]
    pub expires_on: Option<NaiveDate>,
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    /// The host it is for: a base URL (`https://bitbucket.org`) or an integration's host. When
    /// given, the credential is verified there as it is saved.
    #[serde(default)]
    pub host: Option<String>,
}

/// Partial update. A field left out is unchanged; `null` clears an optional field.
/// Setting `secret` rotates the token.
#[derive(Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub username: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub email: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "double_option")]
    #[schema(value_type = Option<NaiveDate>)]
    pub expires_on: Option<Option<NaiveDate>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub host: Option<Option<String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ScopeGap {
    pub scope: String,
    /// What Berth cannot do without it, e.g. "webhooks", "pull requests".
    pub blocks: Vec<String>,
    /// Who needs it.
    #[serde(default)]
    pub need: ScopeNeed,
}

/// Who needs a scope: Berth's own job (missing is a failure), a capability this deployment
/// wants (missing is a warning), or nobody yet (information).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScopeNeed {
    Needed,
    Wanted,
    #[default]
    Other,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RepositoryRef {
    pub id: Id,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CredentialRef {
    pub id: Id,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RemoteBranchesRequest {
    pub clone_url: String,
    /// Credential id or name.
    pub credential: String,
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
    /// `v2` or `v0`: the Git protocol the server spoke.
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
    pub vcs: String,
    pub clone_url: String,
    /// Credential id or name.
    pub credential: String,
    /// Defaults to the remote's default branch; a given one must exist on the remote.
    #[serde(default)]
    pub default_branch: Option<String>,
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_branch: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Repository {
    pub id: Id,
    pub name: String,
    pub vcs: String,
    /// Canonical clone URL.
    pub clone_url: String,
    pub provider: Provider,
    pub default_branch: String,
    pub credential: CredentialRef,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_check: Option<StoredCheck>,
    /// `ok`, `warn` or `fail` from the last check; `unchecked` before the first one; `paused`
    /// while background checks of its credential are paused.
    #[serde(default)]
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
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StoredCheck {
    #[serde(default)]
    pub id: Id,
    pub ok: bool,
    /// `ok`, `warn` or `fail`.
    #[serde(default)]
    pub status: String,
    /// Why it ran: `register`, `manual`, `schedule` or `credential`.
    #[serde(default)]
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

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ApiError,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApiError {
    pub code: Code,
    pub message: String,
    #[serde(default)]
    pub remedy: String,
    /// The step list of the check that failed, when a check ran.
    #[serde(default)]
    pub checks: Vec<Step>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Health {
    pub status: String,
    pub version: String,
}

/// A Berth user as administrators see it. Never the password hash or second-factor key.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct User {
    pub id: Id,
    pub username: String,
    /// `admin`, `registrar` or `viewer`.
    pub role: String,
    pub totp_enabled: bool,
    /// Failed sign-ins in the current window.
    pub failed_logins: i64,
    /// Set while sign-in is locked after too many failures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locked_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserCreate {
    pub username: String,
    /// Write-only.
    pub password: String,
    /// `admin`, `registrar` or `viewer`.
    pub role: String,
}

/// Partial update of a user. Setting `password` ends the user's sessions.
#[derive(Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// The caller: who the token belongs to and what the role allows.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Me {
    pub id: Id,
    pub username: String,
    pub role: String,
    /// The actions this role may take, by name (e.g. `register_repository`).
    pub allowed: Vec<String>,
}

/// A personal API token as listed: never the token itself.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApiToken {
    pub id: Id,
    pub name: String,
    pub user_id: Id,
    pub created_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiTokenCreate {
    pub name: String,
    /// Days until the token stops working; none for no expiry.
    #[serde(default)]
    pub expires_in_days: Option<u32>,
}

/// The answer to creating a token: the only time `token` is shown.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct ApiTokenCreated {
    /// Send as `Authorization: Bearer <token>`. Shown once.
    pub token: String,
    #[serde(flatten)]
    pub info: ApiToken,
}

/// One entry of the audit log: who changed what, when and from where.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditEntry {
    pub id: Id,
    pub at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor_id: Option<Id>,
    pub actor: String,
    /// e.g. `credential.create`, `repository.register`, `user.lockout_clear`, `auth.login_failed`.
    pub action: String,
    pub target_kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_id: Option<Id>,
    pub target_name: String,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_addr: Option<String>,
    /// `ok`, or `denied` / `failed` for refused attempts.
    pub outcome: String,
}

/// Instance-wide security settings (admin only).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Every user must sign in with a second factor; users without one enrol at next sign-in.
    pub require_2fa: bool,
}

/// `Option<Option<T>>` that tells "absent" (outer None) from "null" (Some(None)).
mod double_option {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<T: Serialize, S: Serializer>(v: &Option<Option<T>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(inner) => inner.serialize(s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(d).map(Some)
    }
}

/// `Debug` for types that carry a secret: only the listed fields are shown, so a `{:?}` in a
/// log line can never print a password, token or secret.
macro_rules! redacted_debug {
    ($t:ident { $($f:ident),* }) => {
        impl std::fmt::Debug for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($t)) $(.field(stringify!($f), &self.$f))* .finish_non_exhaustive()
            }
        }
    };
}

redacted_debug!(LoginRequest { username });
redacted_debug!(LoginResponse { expires_at });
redacted_debug!(CredentialCreate { name, kind, username, email, expires_on, scopes, host });
redacted_debug!(CredentialUpdate { name, username, email, expires_on, scopes, host });
redacted_debug!(UserCreate { username, role });
redacted_debug!(UserUpdate { role });
redacted_debug!(ApiTokenCreated { info });

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_secrets() {
        let c = CredentialCreate {
            name: "ci".into(),
            kind: CredentialKind::AccessToken,
            username: None,
            email: None,
            secret: "s3cr3t-value".into(),
            expires_on: None,
            scopes: None,
            host: None,
        };
        let l = LoginRequest { username: "admin".into(), password: "s3cr3t-value".into() };
        let u = UserUpdate { role: None, password: Some("s3cr3t-value".into()) };
        for text in [format!("{c:?}"), format!("{l:?}"), format!("{u:?}")] {
            assert!(!text.contains("s3cr3t-value"), "{text}");
        }
        assert!(format!("{c:?}").contains("ci"));
    }
}
