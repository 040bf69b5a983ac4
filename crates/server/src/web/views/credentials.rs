//! Admin > Credentials: the list, Create Credential and a credential's page with its
//! verification.

use super::*;
use askama::Template;

pub struct CredentialRow {
    pub id: i64,
    pub name: String,
    pub kind_label: String,
    pub identity: String,
    pub expires: String,
    /// `unknown`, `valid`, `expires_soon` or `expired`.
    pub expiry_status: String,
    pub expiry_note: String,
    pub used_by: usize,
    pub used_by_names: Vec<(i64, String)>,
    pub scopes: Vec<String>,
    pub missing_scopes: Vec<String>,
    pub secret_updated: String,
    /// The expiry warning that applies today.
    pub expiry_warning: Option<WarningView>,
    pub auth_failures: i64,
    /// When background checks with it were paused; empty when they run.
    pub paused_since: String,
    pub paused_ago: String,
    /// The host it is for; empty when it names none.
    pub host: String,
    pub verification: VerificationView,
    /// What the host said the credential is; empty when it did not say.
    pub host_identity: String,
    /// The capabilities this deployment wants on top of Berth's own job, for people.
    pub wanted: Vec<String>,
    /// Scopes the token lacks: (scope, who needs it: `needed`, `wanted`, `other`, what it blocks).
    pub scope_gaps: Vec<(String, String, String)>,
    /// SSH key credentials: the public key to add to the host, and its fingerprint; empty
    /// for other kinds.
    pub public_key: String,
    pub fingerprint: String,
    /// The credential's own TLS client certificate ("CN=jo (until 2027-01-31)"); empty without.
    pub client_certificate: String,
}

/// A credential's verification as the pages show it.
pub struct VerificationView {
    /// `ok`, `warn`, `fail` or `unverified`.
    pub status: String,
    /// "Verified", "Verified, with a warning", "Verification failed", "Not verified".
    pub label: String,
    pub code: String,
    pub message: String,
    pub remedy: String,
    /// The date it ran; empty when it never did.
    pub checked_on: String,
    pub checked: String,
    pub host: String,
    pub steps: StepsView,
}

#[derive(Template)]
#[template(path = "credentials.html")]
pub struct CredentialsPage {
    pub l: Layout,
    /// This page's credentials (by name, a page at a time).
    pub creds: Vec<CredentialRow>,
    /// How many credentials are stored, over all pages.
    pub total: i64,
    pub can_create: bool,
    /// May press Test on a credential (it sends the credential to its host).
    pub can_test: bool,
    /// How many credentials have their background checks paused, over all pages, and the
    /// first of them by name.
    pub paused: i64,
    pub paused_creds: Vec<CredentialRow>,
    pub templates: TemplatesSection,
    /// The next page's link, when there is one; the first page's, when this is not it.
    pub next: Option<String>,
    pub first: Option<String>,
}

/// Credential templates on the Credentials page.
pub struct TemplatesSection {
    pub rows: Vec<TemplateRowView>,
    /// May add and delete templates.
    pub can_manage: bool,
    /// The credentials a new template may name.
    pub credential_names: Vec<String>,
    /// The URL typed into "Which credential would this URL use?".
    pub match_url: String,
    pub matched: Option<MatchView>,
}

pub struct TemplateRowView {
    pub id: i64,
    pub prefix: String,
    pub credential: String,
    pub created_by: String,
}

/// The explanation of a choice, or why the URL could not be read.
#[derive(Default)]
pub struct MatchView {
    pub clone_url: String,
    pub found: bool,
    pub reason: String,
    pub candidates: Vec<CandidateView>,
    pub error: String,
}

pub struct CandidateView {
    pub prefix: String,
    pub credential: String,
    pub chosen: bool,
    pub why: String,
}

pub struct ScopeBox {
    pub name: String,
    pub checked: bool,
    pub required: bool,
    /// Offered although the product page does not list it (and said to be optional).
    pub optional: bool,
}

#[derive(Template)]
#[template(path = "credential_new.html")]
pub struct CredentialNewPage {
    pub l: Layout,
    pub name: String,
    pub kinds: Vec<Choice>,
    pub username: String,
    pub email: String,
    pub expires_on: String,
    pub scopes: Vec<ScopeBox>,
    pub problem: Option<Problem>,
    /// The field a refusal is about (`name`, `kind`, `username`, `email`, `secret`,
    /// `expires_on`, `scopes`), marked invalid with the reason beside it; empty when none is.
    pub field: &'static str,
    pub retired_on: String,
    pub app_password_selected: bool,
    /// The hosts a credential may be for: configured integrations and the cloud hosts.
    pub hosts: Vec<Choice>,
    /// What this deployment wants tokens to do beyond Berth's own job (`[scopes] want`).
    pub wanted: Vec<String>,
    /// Kept after a refusal (none is a secret; the keys are never written into a page).
    pub app_id: String,
    pub installation_id: String,
    pub client_certificate: String,
}

pub struct RecheckRow {
    pub id: i64,
    pub name: String,
    /// Badge class (`pass`, `warn`, `fail`) and its words.
    pub status: &'static str,
    pub status_label: &'static str,
    pub steps: StepsView,
}

#[derive(Template)]
#[template(path = "credential.html")]
pub struct CredentialPage {
    pub l: Layout,
    pub c: CredentialRow,
    pub expires_on: String,
    pub username: String,
    pub email: String,
    pub can_edit: bool,
    pub can_delete: bool,
    /// May run the Test button (it sends the credential to its host).
    pub can_test: bool,
    /// The credential's kind (`bitbucket_api_token`, …): its scopes are edited only for API tokens.
    pub kind: String,
    /// The same checklist as Create Credential, ticked as stored.
    pub scopes: Vec<ScopeBox>,
    /// `github_app`: the app id and installation as stored (the edit form's values).
    pub app_id: String,
    pub installation_id: String,
    pub rechecks: Vec<RecheckRow>,
    pub rechecked: bool,
    pub problem: Option<Problem>,
}
