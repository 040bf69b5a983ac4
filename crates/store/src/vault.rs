//! Envelope encryption of secrets at rest.
//!
//! Each secret gets its own random data key; the secret is sealed with XChaCha20-Poly1305 under
//! that key, and the data key is sealed (wrapped) under the active master key. Both seals carry
//! associated data that names the row the secret belongs to, so a ciphertext copied onto another
//! row does not open. Rotating the master key re-wraps the small data keys only.

use crate::keyring::{Keyring, KeyringError, MasterKey};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use std::sync::{Arc, RwLock};
use zeroize::Zeroizing;

const NONCE_LEN: usize = 24;

/// A sealed secret as stored: which master key wrapped it, the wrapped data key and the
/// ciphertext, each prefixed with its nonce.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed {
    pub key_id: String,
    pub wrapped_key: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealed").field("key_id", &self.key_id).finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error(transparent)]
    Keyring(#[from] KeyringError),
    #[error("master key {key_id:?} is not in {path}: this database was sealed with a key that file does not hold")]
    UnknownKey { key_id: String, path: String },
    #[error("a stored secret does not open with master key {key_id:?}: the key file does not belong to this database, or the data was altered")]
    Tampered { key_id: String },
    #[error("the encryption library failed: {0}")]
    Crypto(&'static str),
}

/// Cheap to clone; all clones share one keyring.
#[derive(Clone, Debug)]
pub struct Vault {
    ring: Arc<RwLock<Keyring>>,
}

impl Vault {
    pub fn new(ring: Keyring) -> Vault {
        Vault { ring: Arc::new(RwLock::new(ring)) }
    }

    pub fn active_key_id(&self) -> String {
        self.read().active().id.clone()
    }

    pub fn key_ids(&self) -> Vec<String> {
        self.read().ids()
    }

    /// The key file's text (every master key): only for a snapshot made with `--include-key`,
    /// which seals it under a passphrase at once.
    pub fn key_file_text(&self) -> zeroize::Zeroizing<String> {
        self.read().to_text()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Keyring> {
        // A poisoned lock only means another thread panicked while holding it; the keyring
        // itself is replaced whole, never left half-updated, so its content is still sound.
        self.ring.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Keyring> {
        self.ring.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Seals `secret` for the row named by `aad` under the active master key.
    ///
    /// The key file is re-read first when it changed on disk, so a server running beside
    /// `berth admin rotate-key` seals under the new key, never under one about to be retired.
    pub fn seal(&self, secret: &SecretString, aad: &[u8]) -> Result<Sealed, VaultError> {
        self.reload_if_changed()?;
        let mut dek = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(dek.as_mut());
        let ciphertext = encrypt(&dek, secret.expose_secret().as_bytes(), aad)?;
        let ring = self.read();
        let master = ring.active();
        let wrapped_key = encrypt(&master.key, &dek[..], &wrap_aad(&master.id, aad))?;
        Ok(Sealed { key_id: master.id.clone(), wrapped_key, ciphertext })
    }

    /// Opens a sealed secret. A key id the keyring does not know triggers one reload of the key
    /// file, so a server keeps working while `berth admin rotate-key` runs beside it.
    pub fn open(&self, sealed: &Sealed, aad: &[u8]) -> Result<SecretString, VaultError> {
        let dek = self.unwrap_key(sealed, aad)?;
        let plain = Zeroizing::new(decrypt(&dek, &sealed.ciphertext, aad).ok_or_else(|| tampered(sealed))?);
        let text = String::from_utf8(plain.to_vec()).map_err(|_| tampered(sealed))?;
        Ok(SecretString::from(text))
    }

    /// Re-wraps the data key of `sealed` under the active master key; the ciphertext is unchanged.
    pub fn rewrap(&self, sealed: &Sealed, aad: &[u8]) -> Result<Sealed, VaultError> {
        let dek = self.unwrap_key(sealed, aad)?;
        let ring = self.read();
        let master = ring.active();
        let wrapped_key = encrypt(&master.key, &dek[..], &wrap_aad(&master.id, aad))?;
        Ok(Sealed { key_id: master.id.clone(), wrapped_key, ciphertext: sealed.ciphertext.clone() })
    }

    /// Adds a fresh master key to the key file and makes it active.
    pub fn add_master_key(&self) -> Result<String, VaultError> {
        let mut ring = self.write();
        Ok(ring.add_key()?.id.clone())
    }

    /// Drops every master key but the active one from the key file.
    pub fn retire_old_keys(&self) -> Result<(), VaultError> {
        Ok(self.write().retire_old_keys()?)
    }

    fn reload_if_changed(&self) -> Result<(), VaultError> {
        if self.read().is_stale() {
            let path = self.read().path().to_owned();
            *self.write() = Keyring::load(&path)?;
        }
        Ok(())
    }

    fn unwrap_key(&self, sealed: &Sealed, aad: &[u8]) -> Result<Zeroizing<[u8; 32]>, VaultError> {
        let master = self.master_for(&sealed.key_id)?;
        let dek = Zeroizing::new(
            decrypt(&master.key, &sealed.wrapped_key, &wrap_aad(&master.id, aad)).ok_or_else(|| tampered(sealed))?,
        );
        let arr: [u8; 32] = dek.as_slice().try_into().map_err(|_| tampered(sealed))?;
        Ok(Zeroizing::new(arr))
    }

    fn master_for(&self, key_id: &str) -> Result<MasterKey, VaultError> {
        if let Some(k) = self.read().get(key_id) {
            return Ok(k.clone());
        }
        let path = self.read().path().to_owned();
        let reloaded = Keyring::load(&path)?;
        let found = reloaded.get(key_id).cloned();
        if found.is_some() {
            *self.write() = reloaded;
        }
        found.ok_or_else(|| VaultError::UnknownKey { key_id: key_id.to_owned(), path: path.display().to_string() })
    }
}

fn tampered(sealed: &Sealed) -> VaultError {
    VaultError::Tampered { key_id: sealed.key_id.clone() }
}

/// The wrapped data key is bound to both the row and the master key id.
fn wrap_aad(key_id: &str, aad: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(key_id.len() + aad.len() + 8);
    v.extend_from_slice(b"wrap\0");
    v.extend_from_slice(key_id.as_bytes());
    v.push(0);
    v.extend_from_slice(aad);
    v
}

pub(crate) fn encrypt(key: &[u8; 32], plain: &[u8], aad: &[u8]) -> Result<Vec<u8>, VaultError> {
    let cipher = XChaCha20Poly1305::new(key.into());
    let mut nonce = [0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let ct = cipher
        .encrypt(XNonce::from_slice(&nonce), Payload { msg: plain, aad })
        .map_err(|_| VaultError::Crypto("encryption failed"))?;
    let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    Ok(out)
}

pub(crate) fn decrypt(key: &[u8; 32], sealed: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < NONCE_LEN {
        return None;
    }
    let (nonce, ct) = sealed.split_at(NONCE_LEN);
    XChaCha20Poly1305::new(key.into()).decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad }).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vault() -> Result<(tempfile::TempDir, Vault), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let (ring, _) = Keyring::load_or_create(&dir.path().join("master.key"))?;
        Ok((dir, Vault::new(ring)))
    }

    #[test]
    fn round_trip_and_row_binding() -> Result<(), Box<dyn std::error::Error>> {
        let (_d, v) = vault()?;
        let s = v.seal(&SecretString::from("ATATT-very-secret"), b"credential:1")?;
        assert!(!s.ciphertext.windows(6).any(|w| w == b"ATATT-"));
        assert_eq!(v.open(&s, b"credential:1")?.expose_secret(), "ATATT-very-secret");
        assert!(matches!(v.open(&s, b"credential:2"), Err(VaultError::Tampered { .. })));
        Ok(())
    }

    #[test]
    fn tampered_ciphertext_and_wrapped_key_are_refused() -> Result<(), Box<dyn std::error::Error>> {
        let (_d, v) = vault()?;
        let s = v.seal(&SecretString::from("hunter2"), b"r")?;
        for i in [0, NONCE_LEN, s.ciphertext.len() - 1] {
            let mut bad = s.clone();
            bad.ciphertext[i] ^= 1;
            assert!(matches!(v.open(&bad, b"r"), Err(VaultError::Tampered { .. })));
        }
        let mut bad = s.clone();
        bad.wrapped_key[30] ^= 0x80;
        assert!(matches!(v.open(&bad, b"r"), Err(VaultError::Tampered { .. })));
        let mut short = s;
        short.ciphertext.truncate(3);
        assert!(v.open(&short, b"r").is_err());
        Ok(())
    }

    #[test]
    fn wrong_master_key_is_refused() -> Result<(), Box<dyn std::error::Error>> {
        let (_d1, v1) = vault()?;
        let (_d2, v2) = vault()?;
        let mut s = v1.seal(&SecretString::from("x"), b"r")?;
        assert!(matches!(v2.open(&s, b"r"), Err(VaultError::UnknownKey { .. })));
        s.key_id = v2.active_key_id();
        assert!(matches!(v2.open(&s, b"r"), Err(VaultError::Tampered { .. })));
        Ok(())
    }

    #[test]
    fn rotation_rewraps_and_old_key_can_retire() -> Result<(), Box<dyn std::error::Error>> {
        let (_d, v) = vault()?;
        let s = v.seal(&SecretString::from("rotate-me"), b"r")?;
        let old = s.key_id.clone();
        let new = v.add_master_key()?;
        assert_ne!(old, new);
        let r = v.rewrap(&s, b"r")?;
        assert_eq!(r.key_id, new);
        assert_eq!(r.ciphertext, s.ciphertext);
        v.retire_old_keys()?;
        assert_eq!(v.open(&r, b"r")?.expose_secret(), "rotate-me");
        assert!(matches!(v.open(&s, b"r"), Err(VaultError::UnknownKey { .. })));
        Ok(())
    }

    #[test]
    fn seals_under_a_key_another_process_added() -> Result<(), Box<dyn std::error::Error>> {
        let (dir, server) = vault()?;
        let path = dir.path().join("master.key");
        let old = server.active_key_id();
        // `berth admin rotate-key` in another process: new key, then the old one retired.
        let admin = Vault::new(Keyring::load(&path)?);
        std::thread::sleep(std::time::Duration::from_millis(20));
        let new = admin.add_master_key()?;
        let s = server.seal(&SecretString::from("written during rotation"), b"r")?;
        assert_eq!(s.key_id, new, "the server must not seal under {old}, which is about to be retired");
        admin.retire_old_keys()?;
        assert_eq!(admin.open(&s, b"r")?.expose_secret(), "written during rotation");
        Ok(())
    }

    #[test]
    fn reloads_key_file_written_by_another_process() -> Result<(), Box<dyn std::error::Error>> {
        let (dir, v) = vault()?;
        let path = dir.path().join("master.key");
        let other = Vault::new(Keyring::load(&path)?);
        other.add_master_key()?;
        let s = other.seal(&SecretString::from("fresh"), b"r")?;
        assert_eq!(v.open(&s, b"r")?.expose_secret(), "fresh");
        Ok(())
    }
}
