//! Findings: the step-by-step answer to "does this repository work with this credential?".
//!
//! Every failure Berth reports has a stable [`Code`]. The API, the CLI and the UI show the same
//! codes, so scripts can branch on them and people can search for them.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Stable, machine-readable reason codes. Never rename a variant: scripts depend on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Code {
    // --- a passing step
    Ok,
    // --- input
    InvalidUrl,
    SecretInUrl,
    UnsupportedVcs,
    SshNotSupported,
    InvalidInput,
    /// A paging cursor (`after`) that this list did not hand out.
    InvalidCursor,
    // --- network
    DnsFailed,
    ConnectFailed,
    TlsFailed,
    Timeout,
    DestinationForbidden,
    InsecureTransport,
    /// The configured proxy could not be reached (refused, no answer, its name unknown).
    ProxyConnectFailed,
    /// The proxy answered 407: no proxy credentials, or wrong ones.
    ProxyAuthFailed,
    /// The proxy refused to open a tunnel (`CONNECT` answered other than 200 or 407).
    ProxyRefused,
    /// The host demands a TLS client certificate and none is configured for it.
    ClientCertificateRequired,
    /// The host refused the TLS client certificate Berth presented.
    ClientCertificateRefused,
    /// A client certificate or its key given to a credential that cannot be read as PEM.
    ClientCertificateInvalid,
    /// A credential's client certificate whose key is not the certificate's.
    ClientKeyMismatch,
    /// A credential's client certificate that has expired (refused when saved; a warning of
    /// the credential step when it expired since).
    ClientCertificateExpired,
    /// A credential's client certificate that expires within 30 days (a warning).
    ClientCertificateExpiresSoon,
    // --- host answers
    AuthFailed,
    TokenExpired,
    TokenExpiresSoon,
    AccessDenied,
    /// The token lacks a scope Berth needs (a failure) or one of a capability the deployment
    /// wants (a warning). Never `access_denied`: the remedy is a new token, not a permission.
    ScopeMissing,
    RepositoryNotFoundOrNoAccess,
    RateLimited,
    RepositoryMoved,
    NotAGitServer,
    ProtocolError,
    /// An SSH host presented a key Berth has no record of: nothing was authenticated.
    HostKeyUnknown,
    /// An SSH host presented a key other than the one trusted (pinned or stored) for it; the
    /// credential was not offered.
    HostKeyChanged,
    AdvertisementTooLarge,
    ServerError,
    // --- repository content
    BranchNotFound,
    EmptyRepository,
    NoDefaultBranch,
    /// The remote's HEAD names a branch that does not exist (deleted or renamed).
    DefaultBranchMissing,
    // --- credentials and registrations
    AppPasswordRetired,
    /// The credential's kind cannot be used over the URL's transport: an SSH key for an HTTPS
    /// URL, a token or password for an SSH URL.
    CredentialKindMismatch,
    CredentialNotFound,
    CredentialInUse,
    AlreadyRegistered,
    NameTaken,
    RepositoryNotFound,
    /// No credential was given and no credential template's URL prefix covers the clone URL, or
    /// a host asked anonymous access to sign in (a private repository).
    CredentialRequired,
    /// A GitHub App is not installed on the repository's owner (user or organisation).
    AppNotInstalled,
    /// A GitHub App is installed on the owner, but the repository is not among the
    /// installation's selected repositories.
    AppRepositoryNotSelected,
    /// A GitHub App's installation lacks a permission Berth needs (`contents: read`,
    /// `metadata: read`).
    AppPermissionMissing,
    /// The host refused a signed token for its time (a GitHub App's JWT `iat`/`exp`): the clocks
    /// disagree.
    ClockSkew,
    /// A private key that does not read as an RSA key in PEM.
    InvalidPrivateKey,
    /// A credential template that does not exist.
    TemplateNotFound,
    /// A credential template with this URL prefix exists.
    TemplateExists,
    /// A configuration document (`berth apply`) that cannot be applied as written.
    InvalidConfig,
    /// An import's source is not a Bitbucket Cloud workspace, Data Center project or GitHub
    /// organisation or user URL.
    InvalidImportSource,
    /// The workspace, project, organisation or user to import from does not exist or is hidden.
    ImportSourceNotFound,
    ImportNotFound,
    /// A notification channel that does not exist.
    ChannelNotFound,
    /// A notification delivery that does not exist (or is another channel's).
    DeliveryNotFound,
    /// A trusted SSH host key (`/api/v1/known-hosts/{id}`) that does not exist.
    KnownHostNotFound,
    /// Berth's `public_url` is not configured, so a host cannot be told where to send webhooks.
    PublicUrlMissing,
    /// The repository's host (or its credential kind) has no webhook registration in Berth.
    WebhookNotSupported,
    /// The repository has no webhook registered by Berth.
    WebhookNotFound,
    /// The repository has a webhook registered by Berth already.
    WebhookExists,
    /// The host refused to create or delete the webhook for another reason than a scope or a
    /// permission (its words are in the message).
    WebhookRefused,
    /// A webhook delivery without a signature, or with one that does not match the
    /// repository's secret.
    WebhookSignatureInvalid,
    // --- API
    Unauthenticated,
    /// Too many failed sign-ins for this name; distinct from a host's `rate_limited`.
    AccountLocked,
    /// Password sign-in is turned off (`[oidc] local_sign_in = false`) for this name: only the
    /// break-glass administrators sign in with a password; everyone else uses single sign-on.
    LocalSignInDisabled,
    /// A single sign-on answer whose `state` is not the one this browser's sign-in started
    /// with (tampered, replayed, from another browser, or older than ten minutes).
    SsoStateMismatch,
    /// The OpenID provider refused: an error at its sign-in, or its token endpoint refused
    /// the code. Its own error code and words are in the message.
    SsoProviderError,
    /// The OpenID provider could not be reached or answered something that is not OpenID
    /// Connect (discovery, keys, token or userinfo endpoint).
    SsoProviderUnreachable,
    /// The ID token failed verification: signature, issuer, audience (issued for another
    /// client), expiry or nonce. Nobody was signed in.
    SsoIdTokenInvalid,
    /// The provider vouched for the person, but no value of the role claim maps to a Berth
    /// role and there is no `default_role`.
    SsoNoRole,
    /// A local account already has the name the provider gives this person: it is not taken
    /// over by single sign-on.
    SsoAccountConflict,
    Forbidden,
    /// No such endpoint (an unknown path).
    NotFound,
    UserNotFound,
    /// A personal API token that does not exist or is not the caller's.
    TokenNotFound,
    /// The path exists but does not take this HTTP method.
    MethodNotAllowed,
    /// The database cannot be reached (or, on SQLite, is locked or read-only): nothing was
    /// read or changed; retry after the `Retry-After` the answer carries.
    DatabaseUnavailable,
    Internal,
}

impl Code {
    /// The snake_case wire name, as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Ok => "ok",
            Code::InvalidUrl => "invalid_url",
            Code::SecretInUrl => "secret_in_url",
            Code::UnsupportedVcs => "unsupported_vcs",
            Code::SshNotSupported => "ssh_not_supported",
            Code::InvalidInput => "invalid_input",
            Code::InvalidCursor => "invalid_cursor",
            Code::DnsFailed => "dns_failed",
            Code::ConnectFailed => "connect_failed",
            Code::TlsFailed => "tls_failed",
            Code::Timeout => "timeout",
            Code::DestinationForbidden => "destination_forbidden",
            Code::InsecureTransport => "insecure_transport",
            Code::ProxyConnectFailed => "proxy_connect_failed",
            Code::ProxyAuthFailed => "proxy_auth_failed",
            Code::ProxyRefused => "proxy_refused",
            Code::ClientCertificateRequired => "client_certificate_required",
            Code::ClientCertificateRefused => "client_certificate_refused",
            Code::ClientCertificateInvalid => "client_certificate_invalid",
            Code::ClientKeyMismatch => "client_key_mismatch",
            Code::ClientCertificateExpired => "client_certificate_expired",
            Code::ClientCertificateExpiresSoon => "client_certificate_expires_soon",
            Code::AuthFailed => "auth_failed",
            Code::TokenExpired => "token_expired",
            Code::TokenExpiresSoon => "token_expires_soon",
            Code::AccessDenied => "access_denied",
            Code::ScopeMissing => "scope_missing",
            Code::RepositoryNotFoundOrNoAccess => "repository_not_found_or_no_access",
            Code::RateLimited => "rate_limited",
            Code::RepositoryMoved => "repository_moved",
            Code::NotAGitServer => "not_a_git_server",
            Code::ProtocolError => "protocol_error",
            Code::HostKeyUnknown => "host_key_unknown",
            Code::HostKeyChanged => "host_key_changed",
            Code::AdvertisementTooLarge => "advertisement_too_large",
            Code::ServerError => "server_error",
            Code::BranchNotFound => "branch_not_found",
            Code::EmptyRepository => "empty_repository",
            Code::NoDefaultBranch => "no_default_branch",
            Code::DefaultBranchMissing => "default_branch_missing",
            Code::AppPasswordRetired => "app_password_retired",
            Code::CredentialKindMismatch => "credential_kind_mismatch",
            Code::CredentialNotFound => "credential_not_found",
            Code::CredentialInUse => "credential_in_use",
            Code::AlreadyRegistered => "already_registered",
            Code::NameTaken => "name_taken",
            Code::RepositoryNotFound => "repository_not_found",
            Code::CredentialRequired => "credential_required",
            Code::AppNotInstalled => "app_not_installed",
            Code::AppRepositoryNotSelected => "app_repository_not_selected",
            Code::AppPermissionMissing => "app_permission_missing",
            Code::ClockSkew => "clock_skew",
            Code::InvalidPrivateKey => "invalid_private_key",
            Code::TemplateNotFound => "template_not_found",
            Code::TemplateExists => "template_exists",
            Code::InvalidConfig => "invalid_config",
            Code::InvalidImportSource => "invalid_import_source",
            Code::ImportSourceNotFound => "import_source_not_found",
            Code::ImportNotFound => "import_not_found",
            Code::ChannelNotFound => "channel_not_found",
            Code::DeliveryNotFound => "delivery_not_found",
            Code::KnownHostNotFound => "known_host_not_found",
            Code::PublicUrlMissing => "public_url_missing",
            Code::WebhookNotSupported => "webhook_not_supported",
            Code::WebhookNotFound => "webhook_not_found",
            Code::WebhookExists => "webhook_exists",
            Code::WebhookRefused => "webhook_refused",
            Code::WebhookSignatureInvalid => "webhook_signature_invalid",
            Code::Unauthenticated => "unauthenticated",
            Code::AccountLocked => "account_locked",
            Code::LocalSignInDisabled => "local_sign_in_disabled",
            Code::SsoStateMismatch => "sso_state_mismatch",
            Code::SsoProviderError => "sso_provider_error",
            Code::SsoProviderUnreachable => "sso_provider_unreachable",
            Code::SsoIdTokenInvalid => "sso_id_token_invalid",
            Code::SsoNoRole => "sso_no_role",
            Code::SsoAccountConflict => "sso_account_conflict",
            Code::Forbidden => "forbidden",
            Code::NotFound => "not_found",
            Code::UserNotFound => "user_not_found",
            Code::TokenNotFound => "token_not_found",
            Code::MethodNotAllowed => "method_not_allowed",
            Code::DatabaseUnavailable => "database_unavailable",
            Code::Internal => "internal",
        }
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The steps of a check, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepName {
    Url,
    Credential,
    Dns,
    /// Whether the network policy lets Berth contact the addresses the host resolved to.
    Destination,
    Connect,
    Tls,
    /// SSH only: the protocol banner and key exchange.
    SshHandshake,
    /// SSH only: the host key against the pinned and trusted keys.
    SshHostKey,
    /// SSH only: the server accepts the credential's key.
    SshAuth,
    /// Who the credential authenticates as on the host's REST API, and whether it is active.
    ApiCredential,
    /// Scopes granted against those Berth needs.
    ApiScopes,
    /// The repository through the REST API: visible, permission, private, main branch.
    ApiRepository,
    GitDiscovery,
    Branches,
    DefaultBranch,
}

impl StepName {
    pub const ALL: [StepName; 12] = [
        StepName::Url,
        StepName::Credential,
        StepName::Dns,
        StepName::Destination,
        StepName::Connect,
        StepName::Tls,
        StepName::ApiCredential,
        StepName::ApiScopes,
        StepName::ApiRepository,
        StepName::GitDiscovery,
        StepName::Branches,
        StepName::DefaultBranch,
    ];

    /// The steps of a check over SSH, in order: the TLS step's place is taken by the SSH
    /// handshake, host key and authentication.
    pub const SSH: [StepName; 14] = [
        StepName::Url,
        StepName::Credential,
        StepName::Dns,
        StepName::Destination,
        StepName::Connect,
        StepName::SshHandshake,
        StepName::SshHostKey,
        StepName::SshAuth,
        StepName::ApiCredential,
        StepName::ApiScopes,
        StepName::ApiRepository,
        StepName::GitDiscovery,
        StepName::Branches,
        StepName::DefaultBranch,
    ];

    pub fn is_ssh(self) -> bool {
        matches!(self, StepName::SshHandshake | StepName::SshHostKey | StepName::SshAuth)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StepName::SshHandshake => "ssh_handshake",
            StepName::SshHostKey => "ssh_host_key",
            StepName::SshAuth => "ssh_auth",
            StepName::Url => "url",
            StepName::Credential => "credential",
            StepName::Dns => "dns",
            StepName::Destination => "destination",
            StepName::Connect => "connect",
            StepName::Tls => "tls",
            StepName::ApiCredential => "api_credential",
            StepName::ApiScopes => "api_scopes",
            StepName::ApiRepository => "api_repository",
            StepName::GitDiscovery => "git_discovery",
            StepName::Branches => "branches",
            StepName::DefaultBranch => "default_branch",
        }
    }

    /// What the step verifies, in words a person reads in a table.
    pub fn title(self) -> &'static str {
        match self {
            StepName::Url => "Clone URL",
            StepName::SshHandshake => "SSH handshake",
            StepName::SshHostKey => "SSH host key",
            StepName::SshAuth => "SSH authentication",
            StepName::Credential => "Credential",
            StepName::Dns => "DNS lookup",
            StepName::Destination => "Network policy",
            StepName::Connect => "TCP connection",
            StepName::Tls => "TLS handshake",
            StepName::ApiCredential => "REST API credential",
            StepName::ApiScopes => "Token scopes",
            StepName::ApiRepository => "Repository via REST API",
            StepName::GitDiscovery => "Git smart HTTP",
            StepName::Branches => "Remote branches",
            StepName::DefaultBranch => "Default branch",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Pass,
    Warn,
    Fail,
    Skip,
}

impl StepStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Pass => "pass",
            StepStatus::Warn => "warn",
            StepStatus::Fail => "fail",
            StepStatus::Skip => "skip",
        }
    }
}

/// One step of a check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Step {
    pub step: StepName,
    pub status: StepStatus,
    pub code: Code,
    pub message: String,
    /// What to do about it; empty for a pass.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub remedy: String,
    pub duration_ms: u64,
    /// Structured facts about the finding: `remote` lines from the server, missing scopes,
    /// the new location of a moved repository, the closest branch names, a wait in seconds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
}

impl Step {
    pub fn pass(step: StepName, message: impl Into<String>) -> Self {
        Step {
            step,
            status: StepStatus::Pass,
            code: Code::Ok,
            message: message.into(),
            remedy: String::new(),
            duration_ms: 0,
            details: Vec::new(),
        }
    }

    pub fn fail(step: StepName, code: Code, message: impl Into<String>, remedy: impl Into<String>) -> Self {
        Step {
            step,
            status: StepStatus::Fail,
            code,
            message: message.into(),
            remedy: remedy.into(),
            duration_ms: 0,
            details: Vec::new(),
        }
    }

    pub fn warn(step: StepName, code: Code, message: impl Into<String>, remedy: impl Into<String>) -> Self {
        Step { status: StepStatus::Warn, ..Step::fail(step, code, message, remedy) }
    }

    pub fn skip(step: StepName, message: impl Into<String>) -> Self {
        Step { status: StepStatus::Skip, ..Step::pass(step, message) }
    }

    pub fn with_details(mut self, details: Vec<String>) -> Self {
        self.details = details;
        self
    }

    pub fn took(mut self, d: std::time::Duration) -> Self {
        self.duration_ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        self
    }
}

/// A whole check: every step, in order. `ok` is true when no step failed (warnings allowed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Check {
    pub ok: bool,
    pub checks: Vec<Step>,
}

impl Check {
    pub fn from_steps(checks: Vec<Step>) -> Self {
        let ok = checks.iter().all(|s| s.status != StepStatus::Fail);
        Check { ok, checks }
    }

    /// The first failing step: the headline of a failed check.
    pub fn first_failure(&self) -> Option<&Step> {
        self.checks.iter().find(|s| s.status == StepStatus::Fail)
    }

    /// Completes a partial check: every step that did not run is reported as skipped, so a
    /// reader always sees the full list and where it stopped.
    pub fn completed(steps: Vec<Step>) -> Self {
        Check::completed_with(steps, &StepName::ALL)
    }

    /// The same for a check over SSH, whose list has the SSH steps in place of TLS.
    pub fn completed_ssh(steps: Vec<Step>) -> Self {
        Check::completed_with(steps, &StepName::SSH)
    }

    fn completed_with(mut steps: Vec<Step>, order: &[StepName]) -> Self {
        for name in order {
            if !steps.iter().any(|s| s.step == *name) {
                steps.push(Step::skip(*name, "not run: an earlier step failed"));
            }
        }
        steps.sort_by_key(|s| order.iter().position(|n| *n == s.step));
        Check::from_steps(steps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_wire_names_match_serde() {
        for code in [
            Code::RepositoryNotFoundOrNoAccess,
            Code::SecretInUrl,
            Code::Ok,
            Code::AppPasswordRetired,
            Code::UserNotFound,
            Code::MethodNotAllowed,
            Code::InvalidImportSource,
            Code::CredentialRequired,
            Code::AppNotInstalled,
            Code::AppRepositoryNotSelected,
            Code::AppPermissionMissing,
            Code::ClockSkew,
            Code::InvalidPrivateKey,
            Code::ImportSourceNotFound,
            Code::ImportNotFound,
            Code::HostKeyUnknown,
            Code::HostKeyChanged,
            Code::DatabaseUnavailable,
            Code::ClientCertificateInvalid,
            Code::ClientKeyMismatch,
            Code::ClientCertificateExpired,
        ] {
            let json = serde_json::to_string(&code).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }

    #[test]
    fn completed_check_lists_every_step_in_order() {
        let c = Check::completed(vec![
            Step::pass(StepName::Url, "ok"),
            Step::fail(StepName::Dns, Code::DnsFailed, "no such host", "check the host name"),
        ]);
        assert!(!c.ok);
        assert_eq!(c.checks.len(), StepName::ALL.len());
        assert_eq!(c.checks[0].step, StepName::Url);
        assert_eq!(c.checks[2].step, StepName::Dns);
        assert_eq!(c.checks[3].status, StepStatus::Skip);
        assert_eq!(c.checks[3].step, StepName::Destination);
        assert_eq!(c.first_failure().map(|s| s.code), Some(Code::DnsFailed));
    }
}
