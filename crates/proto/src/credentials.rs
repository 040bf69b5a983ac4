//! Credentials: what answers show of them (never the secret), their verification, and how
//! requests create, change, verify and name them.

use crate::*;
use berth_core::{Capability, Check, Code, CredentialKind, Step};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A stored credential as shown to people and programs: everything but the secret.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Credential {
    pub id: i64,
    pub name: String,
    pub kind: CredentialKind,
    /// The kind as the UI labels it, e.g. "Username with API Token".
    pub kind_label: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// A GitHub App's id (kind `github_app`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    /// The GitHub App installation it uses; absent: the one on each repository's owner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installation_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_on: Option<NaiveDate>,
    /// Judged against today's date.
    #[schema(value_type = ExpiryStatus)]
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
    /// The repositories that use it, by name: every one on the credential's own answer, the
    /// first 20 in lists (`used_by_count` says how many there are).
    pub used_by: Vec<RepositoryRef>,
    /// How many repositories use it.
    #[serde(default)]
    pub used_by_count: i64,
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
    /// `ssh_key` credentials: the OpenSSH public key (`ssh-ed25519 AAAA… berth`), to add to
    /// the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    /// `ssh_key` credentials: the public key's `SHA256:` fingerprint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// The credential's own TLS client certificate, when it carries one: presented to hosts
    /// that ask for one, in place of the host's `[[integrations]]` certificate. Its key is
    /// sealed and never shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_certificate: Option<ClientCertificateInfo>,
    /// After a token replacement: every repository using the credential, re-checked with the
    /// new token before the answer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rechecked: Vec<RepositoryCheck>,
}

/// What is shown of a credential's own client certificate (never its key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ClientCertificateInfo {
    /// The certificate's subject, `CN=…, O=…`.
    pub subject: String,
    /// When the certificate stops being valid.
    pub expires_at: DateTime<Utc>,
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

impl HostIdentity {
    /// "Jo Doe (jo, jo@example.com)": the name, then the other parts that differ from it.
    pub fn describe(&self) -> String {
        let name = self
            .display_name
            .clone()
            .or_else(|| self.username.clone())
            .or_else(|| self.email.clone())
            .unwrap_or_default();
        let extra: Vec<&str> =
            [self.username.as_deref(), self.email.as_deref()].into_iter().flatten().filter(|x| *x != name).collect();
        if extra.is_empty() {
            name
        } else {
            format!("{name} ({})", extra.join(", "))
        }
    }
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
    /// Kind `github_app`: the app's id (its settings page, "App ID"). Required for that kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    /// Kind `github_app`: the one installation to use; without it Berth finds the installation
    /// on each repository's owner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installation_id: Option<i64>,
    /// Write-only: never returned by any call. The token or password; for `github_app`, the
    /// app's private key (the whole PEM file); empty for `ssh_key`.
    #[serde(default)]
    pub secret: String,
    /// `ssh_key` only, write-only: the OpenSSH (or PEM) private key, ed25519, ECDSA or RSA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key: Option<String>,
    /// `ssh_key` only, write-only: the passphrase of a protected private key (sealed with it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passphrase: Option<String>,
    /// `ssh_key` only: Berth makes an ed25519 key; the answer shows its `public_key` to add
    /// to the host (Bitbucket access keys, GitHub deploy keys). The private key never leaves.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub generate: bool,
    /// HTTPS kinds: a TLS client certificate of the credential's own (PEM), for hosts that tie
    /// certificates to users; presented in place of the host's. Needs `client_key`. Refused
    /// when expired or when the key is not its key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_certificate: Option<String>,
    /// Write-only: the client certificate's private key (PEM: PKCS#8, RSA or EC), sealed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key: Option<String>,
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
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::double_option")]
    #[schema(value_type = Option<String>)]
    pub username: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::double_option")]
    #[schema(value_type = Option<String>)]
    pub email: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// `ssh_key` only, write-only: a replacement private key (a key rotation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key: Option<String>,
    /// `ssh_key` only, write-only: the replacement key's passphrase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passphrase: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::double_option")]
    #[schema(value_type = Option<NaiveDate>)]
    pub expires_on: Option<Option<NaiveDate>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::double_option")]
    #[schema(value_type = Option<String>)]
    pub host: Option<Option<String>>,
    /// `github_app` only: a new app id; the credential is verified again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    /// `github_app` only: another installation; `null` finds the installation on each
    /// repository's owner. The credential is verified again.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::double_option")]
    #[schema(value_type = Option<i64>)]
    pub installation_id: Option<Option<i64>>,
    /// A new TLS client certificate of the credential's own (PEM), with `client_key`; `null`
    /// removes it and its key.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::double_option")]
    #[schema(value_type = Option<String>)]
    pub client_certificate: Option<Option<String>>,
    /// Write-only: the new client certificate's private key (PEM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key: Option<String>,
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

/// A stored credential named in a request body: its integer id, as list answers carry it, or a
/// string: its name, or its id as text (a string of digits is tried as an id first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(untagged)]
pub enum CredentialSelector {
    Id(i64),
    Name(String),
}

impl<'de> Deserialize<'de> for CredentialSelector {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = CredentialSelector;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a credential id (an integer) or name (a string)")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(CredentialSelector::Id(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
                i64::try_from(v)
                    .map(CredentialSelector::Id)
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Unsigned(v), &self))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(CredentialSelector::Name(v.to_owned()))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(CredentialSelector::Name(v))
            }
        }
        d.deserialize_any(Visitor)
    }
}

impl From<i64> for CredentialSelector {
    fn from(id: i64) -> Self {
        CredentialSelector::Id(id)
    }
}

impl From<String> for CredentialSelector {
    fn from(name: String) -> Self {
        CredentialSelector::Name(name)
    }
}

impl From<&str> for CredentialSelector {
    fn from(name: &str) -> Self {
        CredentialSelector::Name(name.to_owned())
    }
}

impl std::fmt::Display for CredentialSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CredentialSelector::Id(id) => write!(f, "{id}"),
            CredentialSelector::Name(name) => f.write_str(name),
        }
    }
}
