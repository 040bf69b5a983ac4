//! Credential kinds and the rules that tie each kind to the identity a Git host expects.
//!
//! The secret itself never passes through this module: it lives in the vault and is only
//! decrypted at the moment a request is signed.

use crate::finding::Code;
use crate::provider::Provider;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The date Atlassian removed app passwords from Bitbucket Cloud for good.
pub const APP_PASSWORDS_RETIRED_ON: &str = "2026-07-28";

/// The API-token scopes Berth needs to register a repository and list its branches.
pub const REGISTRATION_SCOPES: &[&str] = &["read:repository:bitbucket"];

/// The full set of Bitbucket API-token scopes the product page asks for: everything the platform
/// (webhooks, pull requests, permissions) uses. Scopes do not imply each other.
pub const FULL_SCOPES: &[&str] = &[
    "admin:project:bitbucket",
    "admin:repository:bitbucket",
    "read:account",
    "read:me",
    "read:permission:bitbucket",
    "read:project:bitbucket",
    "read:pullrequest:bitbucket",
    "read:repository:bitbucket",
    "read:webhook:bitbucket",
    "write:permission:bitbucket",
    "write:pullrequest:bitbucket",
    "write:repository:bitbucket",
    "write:webhook:bitbucket",
];

/// The Git username GitHub takes with an installation access token.
pub const GITHUB_APP_GIT_USERNAME: &str = "x-access-token";

/// The fixed Git username Bitbucket Cloud accepts with an API token when the user's own
/// Bitbucket username is not known.
pub const API_TOKEN_GIT_USERNAME: &str = "x-bitbucket-api-token-auth";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CredentialKind {
    /// "Username with API Token": a scoped Atlassian API token.
    BitbucketApiToken,
    /// A bearer token: Bitbucket repository/project/workspace access token, Bitbucket Data Center
    /// HTTP access token, GitHub or GitLab token, Azure DevOps PAT.
    AccessToken,
    /// Plain Basic credentials for any Git host.
    UsernamePassword,
    /// Retired by Atlassian; accepted on input only to explain what to create instead.
    BitbucketAppPassword,
    /// A GitHub App: its app id and private key (PEM, the sealed secret), optionally one
    /// installation. Berth signs a JWT with the key and mints short-lived installation tokens.
    GithubApp,
    /// "SSH Username with private key": an OpenSSH private key (ed25519, ECDSA or RSA, with an
    /// optional passphrase) for Git over SSH; Bitbucket access keys, GitHub deploy keys.
    SshKey,
}

impl CredentialKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialKind::BitbucketApiToken => "bitbucket_api_token",
            CredentialKind::AccessToken => "access_token",
            CredentialKind::UsernamePassword => "username_password",
            CredentialKind::BitbucketAppPassword => "bitbucket_app_password",
            CredentialKind::GithubApp => "github_app",
            CredentialKind::SshKey => "ssh_key",
        }
    }

    pub fn parse(s: &str) -> Option<CredentialKind> {
        Some(match s {
            "bitbucket_api_token" => CredentialKind::BitbucketApiToken,
            "access_token" => CredentialKind::AccessToken,
            "username_password" => CredentialKind::UsernamePassword,
            "bitbucket_app_password" => CredentialKind::BitbucketAppPassword,
            "github_app" => CredentialKind::GithubApp,
            "ssh_key" => CredentialKind::SshKey,
            _ => return None,
        })
    }

    /// The label the UI shows, as on the product page.
    pub fn label(self) -> &'static str {
        match self {
            CredentialKind::BitbucketApiToken => "Username with API Token",
            CredentialKind::AccessToken => "Access Token",
            CredentialKind::UsernamePassword => "Username with Password",
            CredentialKind::BitbucketAppPassword => "Bitbucket App Password (retired)",
            CredentialKind::GithubApp => "GitHub App",
            CredentialKind::SshKey => "SSH Username with private key",
        }
    }
}

/// A rule broken by credential input, with a stable code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CredentialRuleError {
    pub code: Code,
    pub field: &'static str,
    pub message: String,
    pub remedy: String,
}

fn invalid(field: &'static str, message: impl Into<String>, remedy: impl Into<String>) -> CredentialRuleError {
    CredentialRuleError { code: Code::InvalidInput, field, message: message.into(), remedy: remedy.into() }
}

/// The non-secret fields of a credential, as checked on create and update.
#[derive(Debug, Clone, Default)]
pub struct CredentialRules<'a> {
    pub name: &'a str,
    pub username: Option<&'a str>,
    pub email: Option<&'a str>,
    pub scopes: &'a [String],
    pub secret_len: usize,
}

impl CredentialRules<'_> {
    /// Checks the fields a kind needs. The secret is judged by length only: its value never
    /// reaches this module.
    pub fn validate(&self, kind: CredentialKind) -> Result<(), CredentialRuleError> {
        if kind == CredentialKind::BitbucketAppPassword {
            return Err(app_password_retired());
        }
        validate_name(self.name)?;
        if self.secret_len == 0 {
            return Err(invalid("secret", "the secret is empty", "paste the token or password"));
        }
        if self.secret_len > 4096 {
            return Err(invalid("secret", "the secret is longer than 4096 bytes", "paste only the token itself"));
        }
        for s in self.scopes {
            if s.is_empty() || s.len() > 100 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(invalid(
                    "scopes",
                    format!("{s:?} is not a scope name"),
                    "list scopes such as read:repository:bitbucket",
                ));
            }
        }
        let username = self.username.map(str::trim).filter(|u| !u.is_empty());
        let email = self.email.map(str::trim).filter(|e| !e.is_empty());
        if let Some(u) = username {
            if u.chars().any(|c| c.is_control() || c == ':') || u.len() > 200 {
                return Err(invalid(
                    "username",
                    "the username contains a colon or control characters",
                    "enter the plain username",
                ));
            }
        }
        match kind {
            CredentialKind::BitbucketApiToken => {
                let Some(e) = email else {
                    return Err(invalid(
                        "email",
                        "a Bitbucket API token needs the Atlassian account email: Bitbucket's REST API takes it as the username",
                        "enter the email address of the Atlassian account that created the token",
                    ));
                };
                if !looks_like_email(e) {
                    return Err(invalid(
                        "email",
                        format!("{e:?} is not an email address"),
                        "enter the Atlassian account email",
                    ));
                }
                if username.is_some_and(looks_like_email) {
                    return Err(invalid(
                        "username",
                        "the Bitbucket username is an email address; Git over HTTPS refuses the email with an API token",
                        "enter your Bitbucket username (Personal settings > Account settings), or leave it empty to use x-bitbucket-api-token-auth",
                    ));
                }
            }
            CredentialKind::UsernamePassword => {
                if username.is_none() {
                    return Err(invalid("username", "a username is required", "enter the username for the Git host"));
                }
            }
            // The app id and the key's form are the service's to check (the key is parsed where
            // it is used, in berth-forge); an SSH key is parsed by the service too.
            CredentialKind::AccessToken
            | CredentialKind::BitbucketAppPassword
            | CredentialKind::GithubApp
            | CredentialKind::SshKey => {}
        }
        Ok(())
    }
}

pub fn validate_name(name: &str) -> Result<(), CredentialRuleError> {
    let n = name.trim();
    if n.is_empty() {
        return Err(invalid("name", "the name is empty", "give it a name people will recognise"));
    }
    if n.chars().count() > 100 || n.chars().any(char::is_control) {
        return Err(invalid(
            "name",
            "the name is over 100 characters or has control characters",
            "use a shorter, printable name",
        ));
    }
    Ok(())
}

fn looks_like_email(s: &str) -> bool {
    match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !s.contains(char::is_whitespace)
        }
        None => false,
    }
}

/// The explanation for anyone who still holds a Bitbucket app password.
pub fn app_password_retired() -> CredentialRuleError {
    CredentialRuleError {
        code: Code::AppPasswordRetired,
        field: "kind",
        message: format!(
            "Bitbucket app passwords were retired on {APP_PASSWORDS_RETIRED_ON} and no longer work for Git or the API"
        ),
        remedy: format!(
            "In Bitbucket, open Personal settings > API tokens > Create API token with scopes, give it {} (what Berth \
             needs; add the scopes of anything else your platform uses), then store it as \"Username with API Token\" \
             with your Atlassian email",
            REGISTRATION_SCOPES.join(", ")
        ),
    }
}

/// How a credential signs Git smart-HTTP requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GitIdentity {
    Basic {
        username: String,
    },
    Bearer,
    /// Git over SSH: public-key authentication as this user (`git` unless the credential says).
    SshKey {
        username: String,
    },
}

impl GitIdentity {
    pub fn describe(&self) -> String {
        match self {
            GitIdentity::Basic { username } => format!("Basic auth as {username}"),
            GitIdentity::Bearer => "a Bearer token".to_owned(),
            GitIdentity::SshKey { username } => format!("an SSH key as {username}"),
        }
    }
}

/// The identity to present to the Git host for a credential of `kind` on `provider`.
///
/// Bitbucket Cloud takes the Bitbucket username (not the email) or `x-bitbucket-api-token-auth`
/// with an API token, and `x-token-auth` with access tokens. Bitbucket Data Center project and
/// repository tokens work only as Bearer; a personal token also works with its owner's username.
pub fn git_identity(kind: CredentialKind, username: Option<&str>, provider: Provider) -> GitIdentity {
    let username = username.map(str::trim).filter(|u| !u.is_empty());
    match kind {
        CredentialKind::BitbucketApiToken | CredentialKind::BitbucketAppPassword => {
            GitIdentity::Basic { username: username.unwrap_or(API_TOKEN_GIT_USERNAME).to_owned() }
        }
        CredentialKind::UsernamePassword => GitIdentity::Basic { username: username.unwrap_or("git").to_owned() },
        // Installation tokens go to Git as the password of this fixed user (GitHub's docs).
        CredentialKind::GithubApp => GitIdentity::Basic { username: GITHUB_APP_GIT_USERNAME.to_owned() },
        CredentialKind::SshKey => GitIdentity::SshKey { username: username.unwrap_or("git").to_owned() },
        CredentialKind::AccessToken => match (provider, username) {
            (Provider::BitbucketDatacenter, None) => GitIdentity::Bearer,
            (_, Some(u)) => GitIdentity::Basic { username: u.to_owned() },
            (p, None) => GitIdentity::Basic { username: p.access_token_git_username().to_owned() },
        },
    }
}

/// Where a credential stands against its stored expiry date. Hosts answer the same 401 for an
/// expired and a wrong token, so the date the user entered is the only way to tell them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    Unknown,
    Valid { days_left: i64 },
    ExpiresSoon { days_left: i64 },
    Expired { days_ago: i64 },
}

/// Warn this many days ahead of an expiry.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

pub fn expiry(expires_on: Option<NaiveDate>, today: NaiveDate) -> Expiry {
    let Some(date) = expires_on else { return Expiry::Unknown };
    // A token is usable through the whole of its expiry day.
    let days_left = (date - today).num_days();
    if days_left < 0 {
        Expiry::Expired { days_ago: -days_left }
    } else if days_left <= EXPIRY_WARNING_DAYS {
        Expiry::ExpiresSoon { days_left }
    } else {
        Expiry::Valid { days_left }
    }
}

/// The warning windows before an expiry date, widest first: 30, 7 and 1 days.
pub const EXPIRY_WARNING_WINDOWS: [i64; 3] = [30, 7, 1];

/// Which expiry warning applies today: the narrowest window (30, 7 or 1 days) that the date
/// falls in, or `Expired`. `None` when there is no date or it is further away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExpiryWarning {
    /// Expires within this many days (30, 7 or 1); `days_left` is the exact count.
    Within {
        window: i64,
        days_left: i64,
    },
    Expired {
        days_ago: i64,
    },
}

impl ExpiryWarning {
    pub fn of(expires_on: Option<NaiveDate>, today: NaiveDate) -> Option<ExpiryWarning> {
        match expiry(expires_on, today) {
            Expiry::Expired { days_ago } => Some(ExpiryWarning::Expired { days_ago }),
            Expiry::ExpiresSoon { days_left } => {
                let window = EXPIRY_WARNING_WINDOWS.iter().copied().filter(|w| days_left <= *w).min()?;
                Some(ExpiryWarning::Within { window, days_left })
            }
            _ => None,
        }
    }

    /// The metric label: `expired`, `1d`, `7d` or `30d`.
    pub fn label(self) -> String {
        match self {
            ExpiryWarning::Within { window, .. } => format!("{window}d"),
            ExpiryWarning::Expired { .. } => "expired".to_owned(),
        }
    }

    pub fn code(self) -> Code {
        match self {
            ExpiryWarning::Within { .. } => Code::TokenExpiresSoon,
            ExpiryWarning::Expired { .. } => Code::TokenExpired,
        }
    }

    /// What a person reads, naming the credential.
    pub fn message(self, credential: &str) -> String {
        match self {
            ExpiryWarning::Within { days_left: 0, .. } => format!("credential {credential:?} expires today"),
            ExpiryWarning::Within { days_left: 1, .. } => format!("credential {credential:?} expires tomorrow"),
            ExpiryWarning::Within { days_left, .. } => format!("credential {credential:?} expires in {days_left} days"),
            ExpiryWarning::Expired { days_ago } => {
                format!("credential {credential:?} expired {days_ago} day{} ago", if days_ago == 1 { "" } else { "s" })
            }
        }
    }

    pub fn remedy(self) -> &'static str {
        match self {
            ExpiryWarning::Within { .. } => {
                "create a new token before this one expires and replace the credential's secret; every repository that uses it is re-checked"
            }
            ExpiryWarning::Expired { .. } => {
                "create a new token and replace the credential's secret with it; set its new expiry date"
            }
        }
    }
}

/// Scopes from `required` that are not in `granted`. Bitbucket API-token scopes do not imply
/// each other, so this is plain set difference.
pub fn missing_scopes<'a>(required: &[&'a str], granted: &[String]) -> Vec<&'a str> {
    required.iter().copied().filter(|r| !granted.iter().any(|g| g == r)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules<'a>(username: Option<&'a str>, email: Option<&'a str>) -> CredentialRules<'a> {
        CredentialRules { name: "ci", username, email, scopes: &[], secret_len: 20 }
    }

    #[test]
    fn expiry_warnings_use_the_narrowest_window() {
        let today = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap_or_default();
        let on = |d: i64| Some(today + chrono::Duration::days(d));
        assert_eq!(ExpiryWarning::of(on(31), today), None);
        assert_eq!(ExpiryWarning::of(None, today), None);
        assert_eq!(ExpiryWarning::of(on(30), today), Some(ExpiryWarning::Within { window: 30, days_left: 30 }));
        assert_eq!(ExpiryWarning::of(on(8), today), Some(ExpiryWarning::Within { window: 30, days_left: 8 }));
        assert_eq!(ExpiryWarning::of(on(7), today), Some(ExpiryWarning::Within { window: 7, days_left: 7 }));
        assert_eq!(ExpiryWarning::of(on(2), today), Some(ExpiryWarning::Within { window: 7, days_left: 2 }));
        assert_eq!(ExpiryWarning::of(on(1), today), Some(ExpiryWarning::Within { window: 1, days_left: 1 }));
        assert_eq!(ExpiryWarning::of(on(0), today), Some(ExpiryWarning::Within { window: 1, days_left: 0 }));
        assert_eq!(ExpiryWarning::of(on(-1), today), Some(ExpiryWarning::Expired { days_ago: 1 }));
        assert_eq!(ExpiryWarning::of(on(-1), today).map(ExpiryWarning::label).as_deref(), Some("expired"));
        assert_eq!(ExpiryWarning::of(on(5), today).map(ExpiryWarning::label).as_deref(), Some("7d"));
        assert!(ExpiryWarning::of(on(1), today).is_some_and(|w| w.message("ci").contains("tomorrow")));
    }

    #[test]
    fn api_token_needs_email_and_rejects_email_as_username() {
        let k = CredentialKind::BitbucketApiToken;
        assert_eq!(rules(None, None).validate(k).map_err(|e| e.field), Err("email"));
        assert!(rules(None, Some("jo@example.com")).validate(k).is_ok());
        assert_eq!(
            rules(Some("jo@example.com"), Some("jo@example.com")).validate(k).map_err(|e| e.field),
            Err("username")
        );
    }

    #[test]
    fn app_password_is_refused_with_scopes_to_create() {
        let e = rules(Some("jo"), None).validate(CredentialKind::BitbucketAppPassword).err();
        let e = e.as_ref();
        assert_eq!(e.map(|e| e.code), Some(Code::AppPasswordRetired));
        assert!(e.is_some_and(|e| e.message.contains("2026-07-28") && e.remedy.contains("read:repository:bitbucket")));
    }

    #[test]
    fn git_identity_per_kind_and_provider() {
        use CredentialKind::*;
        assert_eq!(
            git_identity(BitbucketApiToken, None, Provider::BitbucketCloud),
            GitIdentity::Basic { username: API_TOKEN_GIT_USERNAME.into() }
        );
        assert_eq!(
            git_identity(BitbucketApiToken, Some("jo"), Provider::BitbucketCloud),
            GitIdentity::Basic { username: "jo".into() }
        );
        assert_eq!(
            git_identity(AccessToken, None, Provider::BitbucketCloud),
            GitIdentity::Basic { username: "x-token-auth".into() }
        );
        assert_eq!(git_identity(AccessToken, None, Provider::BitbucketDatacenter), GitIdentity::Bearer);
        assert_eq!(
            git_identity(AccessToken, None, Provider::Github),
            GitIdentity::Basic { username: "x-access-token".into() }
        );
    }

    #[test]
    fn expiry_windows() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok();
        let today = d("2026-11-28").unwrap_or_default();
        assert_eq!(expiry(None, today), Expiry::Unknown);
        assert_eq!(expiry(d("2026-11-28"), today), Expiry::ExpiresSoon { days_left: 0 });
        assert_eq!(expiry(d("2026-11-27"), today), Expiry::Expired { days_ago: 1 });
        assert_eq!(expiry(d("2027-01-28"), today), Expiry::Valid { days_left: 61 });
    }

    #[test]
    fn scopes_do_not_imply_each_other() {
        let granted = vec!["write:repository:bitbucket".to_owned(), "admin:repository:bitbucket".to_owned()];
        assert_eq!(missing_scopes(REGISTRATION_SCOPES, &granted), vec!["read:repository:bitbucket"]);
    }
}
