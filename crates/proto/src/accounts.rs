//! Signing in, users, personal API tokens, instance settings and the audit log.

use crate::*;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

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

/// A Berth user as administrators see it. Never the password hash or second-factor key.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct User {
    pub id: i64,
    pub username: String,
    #[schema(value_type = Role)]
    pub role: String,
    pub totp_enabled: bool,
    /// Signs in through the OpenID provider (single sign-on): made at the first sign-in, its
    /// role follows the provider's claim, its second factor is the provider's.
    #[serde(default)]
    pub single_sign_on: bool,
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
    #[schema(value_type = Role)]
    pub role: String,
}

/// Partial update of a user. Setting `password` ends the user's sessions.
#[derive(Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Role>)]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// The caller: who the token belongs to and what the role allows.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Me {
    pub id: i64,
    pub username: String,
    #[schema(value_type = Role)]
    pub role: String,
    /// The actions this role may take.
    #[schema(value_type = Vec<Action>)]
    pub allowed: Vec<String>,
}

/// A personal API token as listed: never the token itself.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApiToken {
    pub id: i64,
    pub name: String,
    pub user_id: i64,
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
    pub id: i64,
    pub at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor_id: Option<i64>,
    pub actor: String,
    /// e.g. `credential.create`, `repository.register`, `user.lockout_clear`, `auth.login_failed`.
    pub action: String,
    pub target_kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_id: Option<i64>,
    pub target_name: String,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_addr: Option<String>,
    #[schema(value_type = AuditOutcome)]
    pub outcome: String,
}

/// Instance-wide security settings (admin only).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Every user must sign in with a second factor; users without one enrol at next sign-in.
    pub require_2fa: bool,
}
