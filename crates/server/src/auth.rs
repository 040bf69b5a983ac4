//! Users, passwords and API session tokens.
//!
//! Passwords are hashed with Argon2id. A session token is 32 random bytes shown once to the
//! client; the database keeps only its SHA-256, so a copy of the database opens no session.

use crate::error::ApiError;
use crate::state::AppState;
use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use base64::Engine as _;
use berth_store::{Store, StoreError, User};
use chrono::Utc;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

pub const ADMIN_ROLE: &str = "admin";

pub fn hash_password(password: &SecretString) -> Result<String, ApiError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.expose_secret().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ApiError::internal(&e))
}

pub fn verify_password(password: &SecretString, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| Argon2::default().verify_password(password.expose_secret().as_bytes(), &h).is_ok())
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

pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("berth_{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
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
            let mut bytes = [0u8; 18];
            rand::rngs::OsRng.fill_bytes(&mut bytes);
            let p = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
            (SecretString::from(p.clone()), Some(p))
        }
    };
    let hash = hash_password(&password)?;
    match store.create_user("admin", &hash, ADMIN_ROLE).await {
        Ok(_) => Ok(generated),
        // Another instance created it first.
        Err(StoreError::Conflict { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The authenticated caller of an API request.
pub struct CurrentUser(pub User);

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts.headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let token = header.and_then(|h| h.strip_prefix("Bearer ")).map(str::trim).filter(|t| !t.is_empty());
        let Some(token) = token else { return Err(ApiError::unauthenticated()) };
        match state.store.session_user(&token_hash(token), Utc::now()).await? {
            Some(user) => Ok(CurrentUser(user)),
            None => Err(ApiError::unauthenticated()),
        }
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
    }
}
