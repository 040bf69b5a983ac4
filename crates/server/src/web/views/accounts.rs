//! Users, the audit log, one's own account and two-factor enrolment.

use super::*;
use askama::Template;

pub struct UserRow {
    pub id: i64,
    pub username: String,
    pub role: String,
    pub totp: bool,
    /// Signs in through the OpenID provider.
    pub sso: bool,
    pub locked: String,
    pub failures: i64,
    pub created: String,
    pub is_me: bool,
}

#[derive(Template)]
#[template(path = "users.html")]
pub struct UsersPage {
    pub l: Layout,
    /// This page's users (by name, a page at a time), and how many there are over all pages.
    pub users: Vec<UserRow>,
    pub total: i64,
    /// The next page's link, when there is one; the first page's, when this is not it.
    pub next: Option<String>,
    pub first: Option<String>,
    pub roles: Vec<(String, String)>,
    pub require_2fa: bool,
    pub problem: Option<Problem>,
}

pub struct AuditView {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: String,
    pub remote: String,
    pub outcome: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
pub struct AuditPage {
    pub l: Layout,
    pub entries: Vec<AuditView>,
    /// The entry id to page on from (`?before=`) when older entries may exist.
    pub older: Option<i64>,
    /// This page shows older entries (`?before=` was given).
    pub paged: bool,
    /// The filter as `key=value&` pairs, kept by the paging links.
    pub query: String,
    /// Some filter is set.
    pub filtered: bool,
    pub actor: String,
    pub action: String,
    pub target: String,
    /// `YYYY-MM-DD`, both inclusive.
    pub from: String,
    pub to: String,
    /// Every action the log holds, for the filter's choices.
    pub actions: Vec<String>,
    pub problem: Option<Problem>,
}

pub struct TokenView {
    pub id: i64,
    pub name: String,
    pub created: String,
    pub expires: String,
    pub last_used: String,
    pub revoked: bool,
}

#[derive(Template)]
#[template(path = "account.html")]
pub struct AccountPage {
    pub l: Layout,
    pub role_description: String,
    pub totp_enabled: bool,
    pub recovery_left: i64,
    pub require_2fa: bool,
    pub tokens: Vec<TokenView>,
    pub new_token: String,
    pub problem: Option<Problem>,
}

#[derive(Template)]
#[template(path = "totp.html")]
pub struct TotpPage {
    pub l: Layout,
    pub enabled: bool,
    pub required: bool,
    /// Set while enrolling: the key to type into the app, and its otpauth URI.
    pub secret: String,
    pub uri: String,
    /// The otpauth URI as a QR code: an inline SVG drawn by the server (no outside service).
    pub qr_svg: String,
    pub recovery_codes: Vec<String>,
    /// The recovery codes as a text file, for the Download link (`data:` URL).
    pub recovery_download: String,
    pub problem: Option<Problem>,
}
