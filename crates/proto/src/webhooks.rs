//! Webhooks on the host and the branch lists they keep current: a repository's stored
//! branches, the webhook Berth registered for it, and the receiver's answer.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One branch of a repository's stored list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StoredBranch {
    pub name: String,
    /// The commit id the branch pointed to when the list was last written.
    pub commit: String,
}

/// What a repository's stored branch list is: written by its last check or the host's last
/// push event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BranchListSummary {
    /// The remote's default branch (its HEAD) as last seen; `null` when it named none.
    pub remote_default_branch: Option<String>,
    pub branch_count: i64,
    /// `check` or `webhook`: what wrote the list last.
    #[schema(value_type = BranchListSource)]
    pub source: String,
    pub updated_at: DateTime<Utc>,
}

/// What wrote a branch list last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BranchListSource {
    Check,
    Webhook,
}

/// The webhook Berth registered on the repository's host. Its secret is never shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RepositoryWebhook {
    /// The host's id for the hook.
    pub hook_id: String,
    /// Where the host sends deliveries: `public_url` + `/hooks/{provider}/{repository id}`.
    pub url: String,
    /// Signed deliveries taken.
    pub deliveries: i64,
    /// Deliveries refused with 401: unsigned, or signed with another secret.
    pub rejected_deliveries: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_delivery_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_rejected_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// The receiver's answer to a delivery it took.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HookReceipt {
    /// `push` (branches changed; a check follows) or `ignored` (a ping or an event that
    /// changes no branch).
    pub outcome: String,
    /// How many branches the event changed.
    pub branches_changed: usize,
}
