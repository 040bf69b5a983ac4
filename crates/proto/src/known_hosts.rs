//! SSH host keys Berth trusts (`/api/v1/known-hosts`): the keys pinned for bitbucket.org,
//! github.com and gitlab.com, and those administrators trusted.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A trusted SSH host key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KnownHost {
    /// The stored key's id; absent for a key pinned in Berth (which cannot be removed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    /// `host` for port 22, `[host]:port` otherwise (as OpenSSH's known_hosts names it).
    pub host: String,
    /// `ssh-ed25519`, `ecdsa-sha2-nistp256`, `ssh-rsa`.
    pub key_type: String,
    /// `SHA256:…`
    pub fingerprint: String,
    /// The OpenSSH public key, `<type> <base64>`.
    pub public_key: String,
    /// Pinned in Berth from the host's published keys.
    pub pinned: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub added_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
}

/// `POST /api/v1/known-hosts`: trust a key for a host. Give the key itself (`key`), or the
/// `fingerprint` of the key the host presents: Berth then connects, reads the host's keys and
/// trusts the one with that fingerprint (never another).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KnownHostAdd {
    /// `host`, `host:port` or `[host]:port`.
    pub host: String,
    /// `<type> <base64> [comment]`, an OpenSSH public key line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// `SHA256:…`, compared with what the host presents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
}
