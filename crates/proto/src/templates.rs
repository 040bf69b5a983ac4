//! Credential templates: a URL prefix that chooses the credential for every clone URL under
//! it, and the explanation of a choice (`GET /api/v1/credential-templates/match`).

use crate::*;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /api/v1/credential-templates`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateCreate {
    /// A URL prefix such as `https://bitbucket.org/acme/`; read like a clone URL (user name,
    /// `.git`, a trailing slash, case of the host make no difference) and matched on whole path
    /// segments.
    pub url_prefix: String,
    pub credential: CredentialSelector,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CredentialTemplate {
    pub id: i64,
    /// Normalised, ending in `/`.
    pub url_prefix: String,
    pub credential: CredentialRef,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// How the credential for a clone URL was (or would be) chosen.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TemplateMatch {
    /// The canonical clone URL.
    pub clone_url: String,
    /// The credential chosen; absent when no template matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<CredentialRef>,
    /// The template that chose it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<CredentialTemplate>,
    /// The choice in words, as the credential step of a check says it.
    pub reason: String,
    /// Every template compared, nearest first, each with why it was or was not chosen.
    pub candidates: Vec<TemplateCandidate>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TemplateCandidate {
    pub template: CredentialTemplate,
    /// Its prefix covers the URL.
    pub matches: bool,
    /// It is the one chosen (the longest matching prefix).
    pub chosen: bool,
    /// Why it was or was not chosen.
    pub why: String,
}

/// `GET /api/v1/credential-templates/match?url=...`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TemplateMatchQuery {
    /// A clone URL in any form a clone URL is accepted in.
    pub url: String,
}
