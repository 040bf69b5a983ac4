//! Bulk imports: list the repositories of a workspace, project or organisation, then register
//! a selection of them, each through the same checks as one registration.

use crate::*;
use berth_core::{Code, Provider};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

wire_enum! {
    /// Where an import is.
    ImportState {
        /// Listed; nothing selected for registration yet.
        Listed = "listed",
        /// Selected repositories are being registered.
        Registering = "registering",
        /// Every selected repository is registered, failed or skipped.
        Done = "done",
    }
}

wire_enum! {
    /// Where one listed repository is.
    ImportItemStatus {
        /// Not registered yet (selected ones wait for their turn).
        Pending = "pending",
        /// Its check runs now.
        Registering = "registering",
        Registered = "registered",
        /// Its check failed or it could not be saved: `code`, `message` and `remedy` say why.
        Failed = "failed",
        /// Registered before the import (`already_registered`).
        Skipped = "skipped",
    }
}

/// `POST /api/v1/imports`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportCreate {
    /// The URL of a Bitbucket Cloud workspace (`https://bitbucket.org/acme`), a Bitbucket Data
    /// Center project (`https://host/projects/KEY`) or a GitHub organisation or user
    /// (`https://github.com/acme`).
    pub source: String,
    /// The credential that lists the repositories and registers them: id or name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<CredentialSelector>,
}

/// `POST /api/v1/imports/{id}/register`: the repositories by full name (as listed), or all.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportRegister {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repositories: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub all: bool,
}

/// One listed repository and its progress.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ImportItem {
    /// `acme/app`, `KEY/app`, `octo/app`: what `repositories` in a register request names.
    pub full_name: String,
    /// The name it is (or would be) registered under: the slug, made unique.
    pub name: String,
    pub clone_url: String,
    pub private: bool,
    pub selected: bool,
    #[schema(value_type = ImportItemStatus)]
    pub status: String,
    /// Why it failed or was skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<Code>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remedy: Option<String>,
    /// The repository registered with this clone URL before the import.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub already_registered: Option<RepositoryRef>,
    /// The repository this import registered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<RepositoryRef>,
}

/// An import: what the listing found and how far registration is.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Import {
    pub id: i64,
    /// The canonical source URL.
    pub source: String,
    pub provider: Provider,
    /// `None` once the credential is deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<CredentialRef>,
    #[schema(value_type = ImportState)]
    pub state: String,
    /// Repositories listed.
    pub listed: i64,
    /// Repositories selected for registration.
    pub total: i64,
    /// Selected repositories that are registered, failed or skipped.
    pub done: i64,
    pub registered: i64,
    pub failed: i64,
    pub skipped: i64,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub repositories: Vec<ImportItem>,
}

impl Import {
    /// Every selected repository has an outcome.
    pub fn finished(&self) -> bool {
        self.state == ImportState::Done.as_str()
    }
}
