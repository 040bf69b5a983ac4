//! Passwords, session and API tokens, CSRF tokens and recovery codes.
//!
//! Passwords are hashed with Argon2id. A session or API token is 32 random bytes shown once to
//! the client; the database keeps only its SHA-256, so a copy of the database opens nothing.

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::Engine as _;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// A new password outside the length rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordRule;

impl PasswordRule {
    pub const MESSAGE: &'static str = "the password must be 12 to 1024 characters long";
    pub const REMEDY: &'static str = "choose a longer passphrase";
}

/// Hashing could not run (no randomness, or its thread was lost); never a person's mistake.
#[derive(Debug)]
pub struct HashFailed(pub String);

impl std::fmt::Display for HashFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "password hashing failed: {}", self.0)
    }
}

pub fn hash_password(password: &SecretString) -> Result<String, HashFailed> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.expose_secret().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashFailed(e.to_string()))
}

pub fn verify_password(password: &SecretString, hash: &str) -> bool {
    PasswordHash::new(hash)
        .is_ok_and(|h| Argon2::default().verify_password(password.expose_secret().as_bytes(), &h).is_ok())
}

/// Hashes on a blocking thread: Argon2id is deliberately slow.
pub async fn hash_password_async(password: SecretString) -> Result<String, HashFailed> {
    tokio::task::spawn_blocking(move || hash_password(&password)).await.map_err(|e| HashFailed(e.to_string()))?
}

/// Verifies on a blocking thread; a password checked against no user is checked against a
/// decoy hash, so that an unknown name takes as long as a known one.
pub async fn verify_password_async(password: &SecretString, hash: Option<String>) -> bool {
    let hash = hash.unwrap_or_else(|| decoy_hash().to_owned());
    let password = password.clone();
    tokio::task::spawn_blocking(move || verify_password(&password, &hash)).await.unwrap_or(false)
}

/// Rules for a new password: long enough, not absurdly long.
pub fn validate_password(password: &str) -> Result<(), PasswordRule> {
    let n = password.chars().count();
    if !(12..=1024).contains(&n) {
        return Err(PasswordRule);
    }
    Ok(())
}

/// A hash of a random password, verified against when the user does not exist.
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

/// `n` random bytes, URL-safe base64 without padding.
pub fn random_b64(n: usize) -> String {
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

/// Ten one-time recovery codes, shown once; the database keeps their SHA-256.
pub fn new_recovery_codes() -> Vec<String> {
    (0..10)
        .map(|_| {
            let mut b = [0u8; 10];
            rand::rngs::OsRng.fill_bytes(&mut b);
            let s = super::totp::base32_encode(&b).to_ascii_lowercase();
            format!("{}-{}", &s[..8], &s[8..16])
        })
        .collect()
}

pub fn recovery_code_hash(code: &str) -> String {
    let norm: String = code.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect();
    token_hash(&format!("berth-recovery:{norm}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_differ() -> Result<(), HashFailed> {
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
    fn recovery_codes_are_distinct_and_normalised() {
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), 10);
        assert_ne!(codes[0], codes[1]);
        assert_eq!(recovery_code_hash(&codes[0]), recovery_code_hash(&codes[0].to_uppercase().replace('-', " ")));
        assert!(constant_time_eq("abc", "abc") && !constant_time_eq("abc", "abd") && !constant_time_eq("abc", "ab"));
    }
}
