//! The master key inside a snapshot, for `--include-key` only: the key file's text sealed with
//! XChaCha20-Poly1305 (the vault's AEAD) under a key derived from a passphrase with Argon2id.
//! The associated data names the key ids the header lists, so the sealed keys cannot be moved
//! under another header.

use super::error::{SnapResult, SnapshotError};
use crate::vault::{decrypt, encrypt};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// Shorter passphrases are refused when a key is sealed.
pub const MIN_PASSPHRASE: usize = 12;
const KDF: &str = "argon2id";
/// OWASP's first Argon2id choice (2026): 64 MiB, three passes, one lane.
const M_KIB: u32 = 64 * 1024;
const T_COST: u32 = 3;
const P_COST: u32 = 1;

/// The sealed key file as the header carries it.
#[derive(Clone, Serialize, Deserialize)]
pub struct SealedKeys {
    pub kdf: String,
    pub m_kib: u32,
    pub t_cost: u32,
    pub p_cost: u32,
    /// Base64 of the random salt.
    pub salt: String,
    /// Base64 of the nonce and the ciphertext.
    pub sealed: String,
}

impl std::fmt::Debug for SealedKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedKeys").field("kdf", &self.kdf).finish_non_exhaustive()
    }
}

fn aad(key_ids: &[String]) -> Vec<u8> {
    format!("berth:snapshot:master-keys:v1:{}", key_ids.join(",")).into_bytes()
}

fn derive(passphrase: &SecretString, salt: &[u8], m: u32, t: u32, p: u32) -> SnapResult<Zeroizing<[u8; 32]>> {
    // Bounds on what a snapshot may ask for, so a crafted header cannot make restore take all
    // memory or run for hours.
    if !(8..=1024 * 1024).contains(&m) || !(1..=16).contains(&t) || !(1..=16).contains(&p) {
        return Err(SnapshotError::Passphrase("the snapshot asks for Argon2id costs Berth does not use".into()));
    }
    let params = Params::new(m, t, p, Some(32)).map_err(|e| SnapshotError::Passphrase(e.to_string()))?;
    let mut out = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase.expose_secret().as_bytes(), salt, out.as_mut())
        .map_err(|e| SnapshotError::Passphrase(e.to_string()))?;
    Ok(out)
}

/// Seals the key file's `text` under `passphrase` for a snapshot whose header lists `key_ids`.
pub(crate) fn seal(text: &str, key_ids: &[String], passphrase: &SecretString) -> SnapResult<SealedKeys> {
    if passphrase.expose_secret().chars().count() < MIN_PASSPHRASE {
        return Err(SnapshotError::WeakPassphrase { min: MIN_PASSPHRASE });
    }
    let mut salt = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    let key = derive(passphrase, &salt, M_KIB, T_COST, P_COST)?;
    let sealed = encrypt(&key, text.as_bytes(), &aad(key_ids))?;
    Ok(SealedKeys {
        kdf: KDF.into(),
        m_kib: M_KIB,
        t_cost: T_COST,
        p_cost: P_COST,
        salt: B64.encode(salt),
        sealed: B64.encode(sealed),
    })
}

/// Opens the sealed key file; a wrong passphrase (or altered keys) is [`SnapshotError::WrongPassphrase`].
pub(crate) fn open(s: &SealedKeys, key_ids: &[String], passphrase: &SecretString) -> SnapResult<Zeroizing<String>> {
    if s.kdf != KDF {
        return Err(SnapshotError::Passphrase(format!("the key is sealed with {:?}, Berth uses {KDF}", s.kdf)));
    }
    let salt = B64.decode(&s.salt).map_err(|_| SnapshotError::WrongPassphrase)?;
    let sealed = B64.decode(&s.sealed).map_err(|_| SnapshotError::WrongPassphrase)?;
    let key = derive(passphrase, &salt, s.m_kib, s.t_cost, s.p_cost)?;
    let plain = Zeroizing::new(decrypt(&key, &sealed, &aad(key_ids)).ok_or(SnapshotError::WrongPassphrase)?);
    let text = String::from_utf8(plain.to_vec()).map_err(|_| SnapshotError::WrongPassphrase)?;
    Ok(Zeroizing::new(text))
}
