//! Users, roles, passwords, sessions, personal API tokens and two-factor sign-in.
//!
//! Passwords are hashed with Argon2id. A session or API token is 32 random bytes shown once to
//! the client; the database keeps only its SHA-256, so a copy of the database opens nothing.
//! What a role may do is decided in one place, [`Role::allows`], which the API and the web UI
//! both reach through [`CurrentUser::require`].

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use berth_core::Code;
use berth_store::{NewAudit, Store, StoreError, User};
use chrono::{DateTime, Utc};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use std::net::SocketAddr;

pub const ADMIN_ROLE: &str = berth_store::ADMIN_ROLE;

/// Failed sign-ins (password or second factor) allowed per name within [`FAILURE_WINDOW_MINUTES`].
pub const MAX_LOGIN_FAILURES: i64 = 5;
pub const FAILURE_WINDOW_MINUTES: i64 = 15;
/// How long a name stays locked after too many failures (an administrator can clear it).
pub const LOCKOUT_MINUTES: i64 = 15;

// ------------------------------------------------------------------------------- roles

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Everything, including users, settings and the audit log.
    Admin,
    /// Registers and edits repositories, creates and uses credentials.
    Registrar,
    /// Reads only.
    Viewer,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Admin, Role::Registrar, Role::Viewer];

    pub fn parse(s: &str) -> Option<Role> {
        match s.trim().to_ascii_lowercase().as_str() {
            "admin" => Some(Role::Admin),
            "registrar" => Some(Role::Registrar),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Registrar => "registrar",
            Role::Viewer => "viewer",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Role::Admin => "everything, including users, security settings and the audit log",
            Role::Registrar => "register, edit, check and delete repositories; create, update and use credentials",
            Role::Viewer => "read only",
        }
    }

    /// The one table of who may do what.
    pub fn allows(self, action: Action) -> bool {
        use Action::*;
        match self {
            Role::Admin => true,
            Role::Registrar => !matches!(action, DeleteCredential | ManageUsers | ReadAudit | ManageSettings),
            Role::Viewer => matches!(action, ReadCredentials | ReadRepositories | ManageOwnAccount),
        }
    }
}

/// Everything a caller can ask Berth to do, as far as roles are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    ReadCredentials,
    CreateCredential,
    /// Rename, change fields, replace the token.
    UpdateCredential,
    DeleteCredential,
    /// Send a stored credential to a remote to list its branches (Refresh).
    UseCredential,
    ReadRepositories,
    RegisterRepository,
    UpdateRepository,
    DeleteRepository,
    CheckRepository,
    ManageUsers,
    ReadAudit,
    ManageSettings,
    /// Own password, second factor and personal API tokens.
    ManageOwnAccount,
}

impl Action {
    pub const ALL: [Action; 14] = [
        Action::ReadCredentials,
        Action::CreateCredential,
        Action::UpdateCredential,
        Action::DeleteCredential,
        Action::UseCredential,
        Action::ReadRepositories,
        Action::RegisterRepository,
        Action::UpdateRepository,
        Action::DeleteRepository,
        Action::CheckRepository,
        Action::ManageUsers,
        Action::ReadAudit,
        Action::ManageSettings,
        Action::ManageOwnAccount,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::ReadCredentials => "read_credentials",
            Action::CreateCredential => "create_credential",
            Action::UpdateCredential => "update_credential",
            Action::DeleteCredential => "delete_credential",
            Action::UseCredential => "use_credential",
            Action::ReadRepositories => "read_repositories",
            Action::RegisterRepository => "register_repository",
            Action::UpdateRepository => "update_repository",
            Action::DeleteRepository => "delete_repository",
            Action::CheckRepository => "check_repository",
            Action::ManageUsers => "manage_users",
            Action::ReadAudit => "read_audit",
            Action::ManageSettings => "manage_settings",
            Action::ManageOwnAccount => "manage_own_account",
        }
    }

    /// "register a repository": completes "You must have permission to …".
    pub fn phrase(self) -> &'static str {
        match self {
            Action::ReadCredentials => "view credentials",
            Action::CreateCredential => "create a credential",
            Action::UpdateCredential => "change a credential",
            Action::DeleteCredential => "delete a credential",
            Action::UseCredential => "use a credential to list remote branches",
            Action::ReadRepositories => "view repositories",
            Action::RegisterRepository => "register a repository",
            Action::UpdateRepository => "edit a repository",
            Action::DeleteRepository => "delete a repository",
            Action::CheckRepository => "check a repository",
            Action::ManageUsers => "manage users",
            Action::ReadAudit => "read the audit log",
            Action::ManageSettings => "change security settings",
            Action::ManageOwnAccount => "manage your account",
        }
    }
}

// ------------------------------------------------------------------------------- passwords and tokens

pub fn hash_password(password: &SecretString) -> Result<String, ApiError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.expose_secret().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ApiError::internal(&e))
}

pub fn verify_password(password: &SecretString, hash: &str) -> bool {
    PasswordHash::new(hash)
        .is_ok_and(|h| Argon2::default().verify_password(password.expose_secret().as_bytes(), &h).is_ok())
}

/// Hashes on a blocking thread: Argon2id is deliberately slow.
pub async fn hash_password_async(password: SecretString) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || hash_password(&password)).await.map_err(|e| ApiError::internal(&e))?
}

/// Rules for a new password: long enough, not absurdly long.
pub fn validate_password(password: &str) -> ApiResult<()> {
    let n = password.chars().count();
    if !(12..=1024).contains(&n) {
        return Err(ApiError::invalid("the password must be 12 to 1024 characters long", "choose a longer passphrase"));
    }
    Ok(())
}

/// A hash of a random password, verified against when the user does not exist so that a
/// login for an unknown name takes as long as one for a known name.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| {
        let mut pw = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut pw);
        hash_password(&SecretString::from(hex::encode(pw))).unwrap_or_default()
    })
}

pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn random_b64(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A session token.
pub fn new_token() -> String {
    format!("berth_{}", random_b64(32))
}

/// A personal API token (its prefix tells it apart in logs and secret scanners).
pub fn new_personal_token() -> String {
    format!("berthpat_{}", random_b64(32))
}

/// A CSRF token for a web session.
pub fn new_csrf_token() -> String {
    random_b64(24)
}

/// Compares two strings in time independent of where they differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Checks a username and password; `None` for any mismatch, without saying which part failed.
pub async fn authenticate(store: &Store, username: &str, password: &SecretString) -> Result<Option<User>, StoreError> {
    let user = store.find_user(username).await?;
    let hash = user.as_ref().map_or_else(|| decoy_hash().to_owned(), |u| u.password_hash.clone());
    let password = password.clone();
    let ok = tokio::task::spawn_blocking(move || verify_password(&password, &hash)).await.unwrap_or(false);
    Ok(user.filter(|_| ok))
}

/// Creates the first administrator when the database has no user. The password comes from
/// `BERTH_ADMIN_PASSWORD`, or is generated and returned so the caller can print it once.
pub async fn bootstrap_admin(store: &Store, configured: Option<&SecretString>) -> Result<Option<String>, ApiError> {
    if store.count_users().await? > 0 {
        return Ok(None);
    }
    let (password, generated) = match configured {
        Some(p) => (p.clone(), None),
        None => {
            let p = random_b64(18);
            (SecretString::from(p.clone()), Some(p))
        }
    };
    let hash = hash_password(&password)?;
    match store.create_user("admin", &hash, ADMIN_ROLE).await {
        Ok(_) => Ok(generated),
        // Another instance created it first.
        Err(StoreError::NameTaken { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

// ------------------------------------------------------------------------------- sign-in

/// Where a request came from: the peer address, or the first X-Forwarded-For hop when
/// the configuration says a trusted proxy sets it (`BERTH_TRUST_FORWARDED=1`, `trust_forwarded = true`).
pub fn remote_addr(parts_ext: &axum::http::Extensions, headers: &HeaderMap) -> Option<String> {
    if trust_forwarded() {
        if let Some(first) =
            headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()).and_then(|v| v.split(',').next())
        {
            let first = first.trim();
            if !first.is_empty() && first.len() <= 64 {
                return Some(first.to_owned());
            }
        }
    }
    parts_ext.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string())
}

/// Whether the request reached the proxy over TLS (only believed from a trusted proxy).
pub fn came_over_tls(headers: &HeaderMap) -> bool {
    trust_forwarded()
        && headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

static TRUST_FORWARDED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

/// Set once at start-up from `Config::trust_forwarded`. A process-wide flag rather than a
/// parameter because the address is read in extractors and cookie helpers that have no state;
/// one process serves one configuration, so the first value set is the one that holds.
pub fn set_trust_forwarded(on: bool) {
    let _ = TRUST_FORWARDED.set(on);
}

fn trust_forwarded() -> bool {
    TRUST_FORWARDED.get().copied().unwrap_or(false)
}

fn failure_window() -> chrono::Duration {
    chrono::Duration::minutes(FAILURE_WINDOW_MINUTES)
}

fn locked_error(username: &str, until: DateTime<Utc>) -> ApiError {
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        Code::AccountLocked,
        format!(
            "sign-in for {:?} is locked until {} UTC after {MAX_LOGIN_FAILURES} failed attempts",
            username.chars().take(64).collect::<String>(),
            until.format("%Y-%m-%d %H:%M")
        ),
        "wait until then, or ask an administrator to clear the lockout (Admin > Users)",
    )
}

fn wrong_password() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        Code::Unauthenticated,
        "wrong username or password",
        "check both; an administrator can reset a password with `berth admin reset-password`",
    )
}

/// Counts a failed attempt for `username` and audits it; locks the name at the limit.
async fn count_failure(
    store: &Store,
    username: &str,
    remote: Option<&str>,
    action: &str,
) -> ApiResult<Option<DateTime<Utc>>> {
    let now = Utc::now();
    let f = store
        .record_login_failure(
            username,
            now,
            failure_window(),
            MAX_LOGIN_FAILURES,
            chrono::Duration::minutes(LOCKOUT_MINUTES),
        )
        .await?;
    let name: String = username.chars().take(64).collect();
    let locked_now = f.failures == MAX_LOGIN_FAILURES && f.locked_until.is_some();
    store
        .audit(&NewAudit {
            actor: name.clone(),
            action: action.to_owned(),
            target_kind: "user".into(),
            target_name: name.clone(),
            detail: format!("failure {} of {MAX_LOGIN_FAILURES}", f.failures),
            remote_addr: remote.map(str::to_owned),
            outcome: "failed".into(),
            ..NewAudit::default()
        })
        .await?;
    if locked_now {
        store
            .audit(&NewAudit {
                actor: name.clone(),
                action: "auth.locked_out".into(),
                target_kind: "user".into(),
                target_name: name,
                detail: format!("locked for {LOCKOUT_MINUTES} minutes"),
                remote_addr: remote.map(str::to_owned),
                outcome: "denied".into(),
                ..NewAudit::default()
            })
            .await?;
    }
    Ok(f.locked_until)
}

/// First factor: username and password, with rate limiting and lockout shared through the
/// database. Every failure counts against the name, known or not.
pub async fn password_login(
    store: &Store,
    username: &str,
    password: &SecretString,
    remote: Option<&str>,
) -> ApiResult<User> {
    let username = username.trim();
    if username.is_empty() || username.len() > 200 {
        return Err(wrong_password());
    }
    if let Some(until) = store.locked_until(username, Utc::now()).await? {
        return Err(locked_error(username, until));
    }
    match authenticate(store, username, password).await? {
        Some(user) => Ok(user),
        None => {
            tracing::info!("login refused");
            match count_failure(store, username, remote, "auth.login_failed").await? {
                Some(until) => Err(locked_error(username, until)),
                None => Err(wrong_password()),
            }
        }
    }
}

/// Second factor: a current TOTP code or an unused recovery code.
pub async fn second_factor(store: &Store, user: &User, code: &str, remote: Option<&str>) -> ApiResult<()> {
    if let Some(until) = store.locked_until(&user.username, Utc::now()).await? {
        return Err(locked_error(&user.username, until));
    }
    let code = code.trim();
    let digits: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    let ok = if digits.len() == 6 && digits.bytes().all(|b| b.is_ascii_digit()) {
        let secret = store.totp_secret(user.id).await?;
        match totp::verify(secret.expose_secret(), &digits, Utc::now().timestamp()) {
            Some(step) => store.use_totp_step(user.id, step).await?,
            None => false,
        }
    } else {
        store.use_recovery_code(user.id, &recovery_code_hash(code)).await?
    };
    if ok {
        return Ok(());
    }
    match count_failure(store, &user.username, remote, "auth.second_factor_failed").await? {
        Some(until) => Err(locked_error(&user.username, until)),
        None => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            Code::Unauthenticated,
            "that code is not valid",
            "enter the current 6-digit code from your authenticator app, or one of your recovery codes",
        )),
    }
}

pub async fn require_2fa(store: &Store) -> ApiResult<bool> {
    Ok(store.setting("require_2fa").await?.is_some_and(|v| v == "true"))
}

pub async fn totp_enabled(store: &Store, user_id: i64) -> ApiResult<bool> {
    Ok(store.totp_state(user_id).await?.is_some_and(|t| t.enabled))
}

/// Ten one-time recovery codes, shown once; the database keeps their SHA-256.
pub fn new_recovery_codes() -> Vec<String> {
    (0..10)
        .map(|_| {
            let mut b = [0u8; 10];
            rand::rngs::OsRng.fill_bytes(&mut b);
            let s = totp::base32_encode(&b).to_ascii_lowercase();
            format!("{}-{}", &s[..8], &s[8..16])
        })
        .collect()
}

pub fn recovery_code_hash(code: &str) -> String {
    let norm: String = code.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect();
    token_hash(&format!("berth-recovery:{norm}"))
}

// ------------------------------------------------------------------------------- the caller

/// How the caller proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Session,
    ApiToken,
    Web,
}

/// The authenticated caller of a request, with where it came from (for the audit log).
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub user: User,
    pub role: Role,
    pub remote: Option<String>,
    pub via: Via,
}

impl CurrentUser {
    pub fn new(user: User, remote: Option<String>, via: Via) -> CurrentUser {
        // An unknown role in the database grants nothing beyond reading.
        let role = Role::parse(&user.role).unwrap_or(Role::Viewer);
        CurrentUser { user, role, remote, via }
    }

    pub fn may(&self, action: Action) -> bool {
        self.role.allows(action)
    }

    /// The one gate: every use case that acts calls this first.
    pub fn require(&self, action: Action) -> crate::service::Result<()> {
        if self.may(action) {
            Ok(())
        } else {
            tracing::info!(user = self.user.id, action = action.as_str(), "forbidden");
            Err(crate::service::Error::Forbidden { role: self.role, action })
        }
    }

    /// Writes an audit entry for a change this caller made. `detail` must never hold a secret.
    pub async fn audit(
        &self,
        store: &Store,
        action: &str,
        target_kind: &str,
        target_id: Option<i64>,
        target_name: &str,
        detail: impl Into<String>,
    ) {
        let e = NewAudit {
            actor_id: Some(self.user.id),
            actor: self.user.username.clone(),
            action: action.to_owned(),
            target_kind: target_kind.to_owned(),
            target_id,
            target_name: target_name.chars().take(200).collect(),
            detail: detail.into().chars().take(2000).collect(),
            remote_addr: self.remote.clone(),
            outcome: "ok".to_owned(),
        };
        if let Err(err) = store.audit(&e).await {
            // The change itself is done; losing its audit entry must be loud in the log.
            tracing::error!(action, "cannot write the audit log: {err}");
        }
    }
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts.headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let token = header.and_then(|h| h.strip_prefix("Bearer ")).map(str::trim).filter(|t| !t.is_empty());
        let Some(token) = token else { return Err(ApiError::unauthenticated()) };
        let hash = token_hash(token);
        let now = Utc::now();
        let remote = remote_addr(&parts.extensions, &parts.headers);
        if let Some(user) = state.store.session_user(&hash, now).await? {
            return Ok(CurrentUser::new(user, remote, Via::Session));
        }
        if let Some(user) = state.store.api_token_user(&hash, now).await? {
            return Ok(CurrentUser::new(user, remote, Via::ApiToken));
        }
        Err(ApiError::unauthenticated())
    }
}

// ------------------------------------------------------------------------------- TOTP

/// RFC 6238 time-based one-time passwords: HMAC-SHA1, 30-second steps, 6 digits.
pub mod totp {
    use hmac::{Hmac, Mac};
    use rand::RngCore;
    use sha1::Sha1;

    pub const STEP_SECS: i64 = 30;
    pub const DIGITS: u32 = 6;
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

    /// A new 160-bit key, base32 as authenticator apps take it.
    pub fn generate_secret() -> String {
        let mut key = [0u8; 20];
        rand::rngs::OsRng.fill_bytes(&mut key);
        base32_encode(&key)
    }

    pub fn base32_encode(data: &[u8]) -> String {
        let mut out = String::with_capacity(data.len().div_ceil(5) * 8);
        let (mut buf, mut bits) = (0u32, 0u32);
        for &b in data {
            buf = (buf << 8) | u32::from(b);
            bits += 8;
            while bits >= 5 {
                bits -= 5;
                out.push(char::from(ALPHABET[((buf >> bits) & 31) as usize]));
            }
        }
        if bits > 0 {
            out.push(char::from(ALPHABET[((buf << (5 - bits)) & 31) as usize]));
        }
        out
    }

    pub fn base32_decode(s: &str) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        let (mut buf, mut bits) = (0u32, 0u32);
        for c in s.chars().filter(|c| !c.is_whitespace() && *c != '=' && *c != '-') {
            let v = ALPHABET.iter().position(|a| char::from(*a) == c.to_ascii_uppercase())?;
            buf = (buf << 5) | u32::try_from(v).ok()?;
            bits += 5;
            if bits >= 8 {
                bits -= 8;
                out.push(((buf >> bits) & 0xff) as u8);
            }
        }
        Some(out)
    }

    /// The code for time step `counter` (RFC 4226 dynamic truncation).
    pub fn hotp(key: &[u8], counter: u64, digits: u32) -> Option<u32> {
        let mut mac = Hmac::<Sha1>::new_from_slice(key).ok()?;
        mac.update(&counter.to_be_bytes());
        let h = mac.finalize().into_bytes();
        let offset = usize::from(*h.last()? & 0x0f);
        let bytes: [u8; 4] = h.get(offset..offset + 4)?.try_into().ok()?;
        let bin = u32::from_be_bytes(bytes) & 0x7fff_ffff;
        Some(bin % 10u32.pow(digits))
    }

    /// The current code for a base32 key at Unix time `now`, zero-padded.
    pub fn code(secret_b32: &str, now: i64) -> Option<String> {
        let key = base32_decode(secret_b32)?;
        let step = u64::try_from(now.div_euclid(STEP_SECS)).ok()?;
        hotp(&key, step, DIGITS).map(|c| format!("{c:06}"))
    }

    /// Accepts the code of the current step or one step either side (clock drift); returns the
    /// matching step so the caller can refuse its reuse.
    pub fn verify(secret_b32: &str, code: &str, now: i64) -> Option<i64> {
        let key = base32_decode(secret_b32)?;
        let wanted: u32 = code.trim().parse().ok()?;
        let step = now.div_euclid(STEP_SECS);
        let mut found = None;
        for s in [step - 1, step, step + 1] {
            let Ok(counter) = u64::try_from(s) else { continue };
            // Compare every candidate so timing does not tell which step matched.
            if hotp(&key, counter, DIGITS) == Some(wanted) && code.trim().len() == DIGITS as usize {
                found = Some(s);
            }
        }
        found
    }

    /// The `otpauth://` URI authenticator apps import.
    pub fn otpauth_uri(issuer: &str, account: &str, secret_b32: &str) -> String {
        let enc = |s: &str| -> String {
            s.bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                        char::from(b).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect()
        };
        format!(
            "otpauth://totp/{}:{}?secret={secret_b32}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
            enc(issuer),
            enc(account),
            enc(issuer)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_differ() -> Result<(), ApiError> {
        let pw = SecretString::from("correct horse");
        let h1 = hash_password(&pw)?;
        let h2 = hash_password(&pw)?;
        assert_ne!(h1, h2);
        assert!(h1.starts_with("$argon2id$"));
        assert!(verify_password(&pw, &h1));
        assert!(!verify_password(&SecretString::from("wrong"), &h1));
        assert!(!verify_password(&pw, "not a hash"));
        Ok(())
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let t = new_token();
        assert!(t.starts_with("berth_") && t.len() > 40);
        assert_ne!(t, new_token());
        assert_eq!(token_hash(&t).len(), 64);
        assert!(!token_hash(&t).contains(&t));
        assert!(new_personal_token().starts_with("berthpat_"));
    }

    #[test]
    fn roles_grant_what_the_issue_says() {
        for a in Action::ALL {
            assert!(Role::Admin.allows(a));
        }
        assert!(Role::Registrar.allows(Action::RegisterRepository));
        assert!(Role::Registrar.allows(Action::CreateCredential));
        assert!(Role::Registrar.allows(Action::UseCredential));
        assert!(!Role::Registrar.allows(Action::ManageUsers));
        assert!(!Role::Registrar.allows(Action::ReadAudit));
        assert!(!Role::Viewer.allows(Action::RegisterRepository));
        assert!(!Role::Viewer.allows(Action::UseCredential));
        assert!(Role::Viewer.allows(Action::ReadRepositories));
        assert_eq!(Role::parse("Registrar"), Some(Role::Registrar));
        assert_eq!(Role::parse("root"), None);
    }

    #[test]
    fn totp_matches_rfc_6238_vectors() {
        // RFC 6238 appendix B, SHA-1 key "12345678901234567890", 8 digits.
        let key = b"12345678901234567890";
        for (t, want) in [
            (59i64, 94_287_082u32),
            (1_111_111_109, 7_081_804),
            (1_234_567_890, 89_005_924),
            (20_000_000_000, 65_353_130),
        ] {
            assert_eq!(totp::hotp(key, u64::try_from(t / 30).unwrap_or(0), 8), Some(want), "t={t}");
        }
        let b32 = totp::base32_encode(key);
        assert_eq!(b32, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert_eq!(totp::base32_decode(&b32).as_deref(), Some(&key[..]));
        assert_eq!(totp::code(&b32, 59).as_deref(), Some("287082"));
        assert_eq!(totp::verify(&b32, "287082", 59), Some(1));
        assert_eq!(totp::verify(&b32, "287082", 59 + 30), Some(1), "one step of drift is accepted");
        assert_eq!(totp::verify(&b32, "287082", 59 + 90), None);
        assert_eq!(totp::verify(&b32, "28708", 59), None);
        assert!(totp::otpauth_uri("Berth", "jo smith", &b32).starts_with("otpauth://totp/Berth:jo%20smith?secret=GEZ"));
    }

    #[test]
    fn recovery_codes_are_distinct_and_normalised() {
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), 10);
        assert_ne!(codes[0], codes[1]);
        assert_eq!(recovery_code_hash(&codes[0]), recovery_code_hash(&codes[0].to_uppercase().replace('-', " ")));
        assert!(constant_time_eq("abc", "abc") && !constant_time_eq("abc", "abd") && !constant_time_eq("abc", "ab"));
    }
}
