//! The store's row types: what it reads (`…Row`, [`User`], [`WebSession`]) and what it is
//! given to write (`New…`, [`CredentialPatch`]).

use berth_core::{Check, CheckReason, CheckStatus, Code, CredentialKind, Step};
use chrono::{DateTime, NaiveDate, Utc};
use secrecy::SecretString;

pub type Id = i64;

/// The role that may manage users (the server's `auth::ADMIN_ROLE`): the store keeps at least
/// one user in it.
pub const ADMIN_ROLE: &str = "admin";

/// `Debug` leaves out the password hash.
impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
pub struct User {
    pub id: Id,
    pub username: String,
    pub role: String,
    pub password_hash: String,
}

/// A user as listed to administrators: no password hash, no second-factor key.
#[derive(Debug, Clone)]
pub struct UserSummary {
    pub id: Id,
    pub username: String,
    pub role: String,
    pub totp_enabled: bool,
    /// Signs in through the OpenID provider (`user_sso_identities`).
    pub single_sign_on: bool,
    pub failed_logins: i64,
    pub locked_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A browser session: its user and the CSRF token every form must echo.
#[derive(Debug, Clone)]
pub struct WebSession {
    pub user: User,
    pub csrf_token: String,
    pub mfa_pending: bool,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct ApiTokenRow {
    pub id: Id,
    pub user_id: Id,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// The state of a name's failed sign-ins after one more failure.
#[derive(Debug, Clone, Copy)]
pub struct LoginFailures {
    pub failures: i64,
    pub locked_until: Option<DateTime<Utc>>,
}

/// A user's second factor as stored (the key still sealed).
#[derive(Debug, Clone)]
pub struct TotpState {
    pub enabled: bool,
    pub last_step: i64,
}

/// One audit entry to write. Never carries a secret.
#[derive(Debug, Clone, Default)]
pub struct NewAudit {
    pub actor_id: Option<Id>,
    pub actor: String,
    pub action: String,
    pub target_kind: String,
    pub target_id: Option<Id>,
    pub target_name: String,
    pub detail: String,
    pub remote_addr: Option<String>,
    pub outcome: String,
}

/// Which audit entries to read: every field that is set must match. `actor` and `target` are
/// case-insensitive substrings (the target of "repository app" is matched on both words);
/// `action` is exact; the time range is `from <= at < until`.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub target: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

/// A stored audit entry: what was written, with its id and time.
#[derive(Debug, Clone)]
pub struct AuditRow {
    pub id: Id,
    pub at: DateTime<Utc>,
    pub entry: NewAudit,
}

#[derive(Debug, Clone)]
pub struct CredentialRow {
    pub id: Id,
    pub name: String,
    pub kind: CredentialKind,
    pub username: Option<String>,
    pub email: Option<String>,
    pub expires_on: Option<NaiveDate>,
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub secret_updated_at: DateTime<Utc>,
    /// Background checks that ended in an authentication failure since the last success or edit.
    pub auth_failures: i64,
    /// Set when background checks stopped using this credential after repeated authentication
    /// failures (so polling never locks the account); cleared when the credential is edited.
    pub checks_paused_at: Option<DateTime<Utc>>,
    /// The host the credential is for: `https://bitbucket.org`, `https://git.example.com:7990`.
    pub host: Option<String>,
    /// The last verification on that host, as the server wrote it (JSON); `None`: never verified.
    pub verification: Option<String>,
    /// A GitHub App's id (kind `github_app`; migration 0009).
    pub app_id: Option<String>,
    /// The GitHub App installation to use; `None`: found per repository owner.
    pub installation_id: Option<Id>,
    /// `ssh_key` credentials: the OpenSSH public key (not a secret; migration 0012).
    pub public_key: Option<String>,
    /// The credential's own TLS client certificate (its key is sealed apart; migration 0014).
    pub client_certificate: Option<ClientCertificateRow>,
}

/// A credential's own TLS client certificate: not a secret (its key is, and is sealed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCertificateRow {
    /// The PEM certificate (and any chain after it).
    pub pem: String,
    /// `CN=…, O=…` of its subject, as read when it was saved.
    pub subject: String,
    pub not_after: DateTime<Utc>,
}

/// A client certificate and its key to store with a credential; the key is sealed.
pub struct NewClientCertificate {
    pub pem: String,
    pub subject: String,
    pub not_after: DateTime<Utc>,
    pub key: SecretString,
}

pub struct NewCredential<'a> {
    pub name: &'a str,
    pub kind: CredentialKind,
    pub host: Option<&'a str>,
    pub username: Option<&'a str>,
    pub email: Option<&'a str>,
    pub expires_on: Option<NaiveDate>,
    pub scopes: &'a [String],
    pub secret: &'a SecretString,
    /// A GitHub App's id and installation (kind `github_app`).
    pub app_id: Option<&'a str>,
    pub installation_id: Option<Id>,
    /// `ssh_key` credentials: the OpenSSH public key of the sealed private key.
    pub public_key: Option<&'a str>,
    /// The credential's own TLS client certificate and key.
    pub client_certificate: Option<NewClientCertificate>,
}

/// A partial update; `None` leaves a field unchanged, `Some(None)` clears it.
#[derive(Default)]
pub struct CredentialPatch {
    pub name: Option<String>,
    pub host: Option<Option<String>>,
    pub username: Option<Option<String>>,
    pub email: Option<Option<String>>,
    pub expires_on: Option<Option<NaiveDate>>,
    pub scopes: Option<Vec<String>>,
    pub secret: Option<SecretString>,
    /// Written with a replaced SSH private key.
    pub public_key: Option<Option<String>>,
    /// A GitHub App's id (kind `github_app`).
    pub app_id: Option<String>,
    /// A GitHub App's installation; `Some(None)`: found per owner.
    pub installation_id: Option<Option<Id>>,
    /// The credential's own TLS client certificate: `Some(None)` removes it (and its key).
    pub client_certificate: Option<Option<NewClientCertificate>>,
}

/// An SSH host key an administrator trusted.
#[derive(Debug, Clone)]
pub struct KnownHostRow {
    pub id: Id,
    /// `host` or `[host]:port`.
    pub host: String,
    pub key_type: String,
    pub public_key: String,
    pub fingerprint: String,
    pub added_by: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct RepositoryRow {
    pub id: Id,
    pub name: String,
    pub vcs: String,
    pub clone_url: String,
    pub repo_key: String,
    pub provider: String,
    pub default_branch: String,
    /// `None`: no credential, anonymous access (a public repository; migration 0008).
    pub credential_id: Option<Id>,
    pub credential_name: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When the scheduler will check it next (`None`: as soon as it can).
    pub next_check_at: Option<DateTime<Utc>>,
    /// The instance checking it now, while its lease lasts.
    pub lease_owner: Option<String>,
    pub lease_until: Option<DateTime<Utc>>,
    /// Why it is due early (a person's "check all now", an edited credential); `None`: the
    /// regular schedule.
    pub due_reason: Option<CheckReason>,
    /// `ok`, `warn` or `fail` from its latest check, `unchecked` before the first, `paused`
    /// while its credential's background checks are paused (kept by the store, see
    /// migration 0005).
    pub status: String,
}

#[derive(Debug, Clone)]
pub struct NewRepository {
    pub name: String,
    pub vcs: String,
    pub clone_url: String,
    pub repo_key: String,
    pub provider: String,
    pub default_branch: String,
    /// `None`: anonymous access (a public repository).
    pub credential_id: Option<Id>,
    /// When the scheduler should check it next.
    pub next_check_at: Option<DateTime<Utc>>,
}

/// One check to keep in a repository's history.
pub struct NewCheck<'a> {
    pub check: &'a Check,
    pub reason: CheckReason,
    pub instance: &'a str,
    pub checked_at: DateTime<Utc>,
    pub duration_ms: u64,
}

#[derive(Debug, Clone)]
pub struct CheckRow {
    pub id: Id,
    pub ok: bool,
    pub status: CheckStatus,
    pub reason: CheckReason,
    /// The instance that ran it (its `instance_id`), so a shared history says who did what.
    pub instance: String,
    pub code: Code,
    pub checked_at: DateTime<Utc>,
    pub duration_ms: u64,
    /// Empty when read as a summary (`Store::last_check_summaries`).
    pub steps: Vec<Step>,
    /// The codes of the steps that warned, in step order, without duplicates.
    pub warn_codes: Vec<Code>,
}

/// A credential template: clone URLs under `url_prefix` use the credential unless one is named.
#[derive(Debug, Clone)]
pub struct TemplateRow {
    pub id: Id,
    /// Normalised (`berth_core::UrlPrefix`'s text).
    pub url_prefix: String,
    pub credential_id: Id,
    pub credential_name: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}
