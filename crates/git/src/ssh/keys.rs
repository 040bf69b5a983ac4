//! SSH keys as Berth handles them: a credential's private key (OpenSSH, PEM or PKCS#8; ed25519,
//! ECDSA or RSA; optionally passphrase-protected), a key made inside Berth, and the public forms
//! people compare and paste: the OpenSSH line and the `SHA256:` fingerprint.

use russh::keys::ssh_key::private::{Ed25519Keypair, KeypairData};
use russh::keys::ssh_key::LineEnding;
use russh::keys::{HashAlg, PrivateKey, PublicKey};
use secrecy::{ExposeSecret, SecretString};

pub use russh::keys::PublicKey as SshPublicKey;

/// Why a private key could not be used. Never holds any part of the key or its passphrase.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the private key is protected by a passphrase, and none was given")]
    PassphraseNeeded,
    #[error("the private key could not be decrypted with the passphrase given")]
    WrongPassphrase,
    #[error("the private key is not an OpenSSH, PEM or PKCS#8 private key Berth can read ({0})")]
    Unreadable(String),
    #[error("the key type {0} is not supported; use ed25519, ECDSA or RSA")]
    Unsupported(String),
}

impl KeyError {
    pub fn remedy(&self) -> &'static str {
        match self {
            KeyError::PassphraseNeeded => "give the key's passphrase as well (it is sealed like the key)",
            KeyError::WrongPassphrase => "give the passphrase the key was protected with",
            KeyError::Unreadable(_) => {
                "paste the whole private key file, from -----BEGIN OPENSSH PRIVATE KEY----- to its END line \
                 (ssh-keygen -t ed25519 makes one), or let Berth generate a key"
            }
            KeyError::Unsupported(_) => "make an ed25519 key: ssh-keygen -t ed25519, or let Berth generate one",
        }
    }
}

/// Reads a private key as pasted, decrypting it with `passphrase` when it is protected.
pub fn parse_private_key(text: &str, passphrase: Option<&str>) -> Result<PrivateKey, KeyError> {
    // People paste with Windows line ends or surrounding blank lines.
    let text = text.replace("\r\n", "\n");
    let text = text.trim();
    let passphrase = passphrase.filter(|p| !p.is_empty());
    let key = match russh::keys::decode_secret_key(text, passphrase) {
        Ok(k) => k,
        Err(russh::keys::Error::KeyIsEncrypted) => return Err(KeyError::PassphraseNeeded),
        Err(russh::keys::Error::UnsupportedKeyType { key_type_string, .. }) => {
            return Err(KeyError::Unsupported(key_type_string))
        }
        Err(e) if passphrase.is_some() && is_encrypted_text(text) => {
            tracing::debug!(error = %e, "private key did not decrypt");
            return Err(KeyError::WrongPassphrase);
        }
        Err(e) => return Err(KeyError::Unreadable(e.to_string())),
    };
    match key.key_data() {
        KeypairData::Ed25519(_) | KeypairData::Ecdsa(_) | KeypairData::Rsa(_) => Ok(key),
        _ => Err(KeyError::Unsupported(key.algorithm().to_string())),
    }
}

/// Whether the pasted text is an encrypted key (so a failure with a passphrase is a wrong one).
fn is_encrypted_text(text: &str) -> bool {
    if text.contains("ENCRYPTED") {
        return true;
    }
    PrivateKey::from_openssh(text).is_ok_and(|k| k.is_encrypted())
}

/// A key made inside Berth: ed25519, from the operating system's random source.
pub struct GeneratedKey {
    /// The private key in OpenSSH format: sealed by the vault, never shown.
    pub private_openssh: SecretString,
    pub public_line: String,
    pub fingerprint: String,
}

pub fn generate_ed25519(comment: &str) -> Result<GeneratedKey, KeyError> {
    use rand::RngCore;
    let mut seed = zeroize::Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(seed.as_mut());
    let mut key = PrivateKey::from(Ed25519Keypair::from_seed(&seed));
    key.set_comment(comment);
    let text = key.to_openssh(LineEnding::LF).map_err(|e| KeyError::Unreadable(e.to_string()))?;
    let public = key.public_key().clone();
    Ok(GeneratedKey {
        private_openssh: SecretString::from(text.as_str().to_owned()),
        public_line: public_line(&public),
        fingerprint: fingerprint(&public),
    })
}

/// `ssh-ed25519 AAAA… comment`: the line Bitbucket's access keys and GitHub's deploy keys take.
pub fn public_line(key: &PublicKey) -> String {
    key.to_openssh().unwrap_or_default()
}

/// `SHA256:…`, as `ssh-keygen -lf` and the hosts' pages print it.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// The key type as OpenSSH names it: `ssh-ed25519`, `ecdsa-sha2-nistp256`, `ssh-rsa`.
pub fn key_type(key: &PublicKey) -> String {
    key.algorithm().to_string()
}

/// Reads an OpenSSH public key line (`<type> <base64> [comment]`).
pub fn parse_public_line(line: &str) -> Result<PublicKey, KeyError> {
    PublicKey::from_openssh(line.trim()).map_err(|e| KeyError::Unreadable(e.to_string()))
}

/// The same key, whatever its comment.
pub fn same_key(a: &PublicKey, b: &PublicKey) -> bool {
    a.key_data() == b.key_data()
}

/// A credential's secret for `ssh_key`: the private key and its passphrase, sealed together
/// as one secret (the vault seals one value per credential). JSON, so neither part can be
/// mistaken for the other.
pub fn pack_secret(private_key: &SecretString, passphrase: Option<&SecretString>) -> SecretString {
    let v = serde_json::json!({
        "private_key": private_key.expose_secret(),
        "passphrase": passphrase.map(|p| p.expose_secret().to_owned()),
    });
    SecretString::from(v.to_string())
}

/// The private key and passphrase of a sealed `ssh_key` secret.
pub fn unpack_secret(secret: &SecretString) -> Option<(SecretString, Option<SecretString>)> {
    #[derive(serde::Deserialize)]
    struct Packed {
        private_key: String,
        passphrase: Option<String>,
    }
    let p: Packed = serde_json::from_str(secret.expose_secret()).ok()?;
    Some((SecretString::from(p.private_key), p.passphrase.map(SecretString::from)))
}

/// Opens a sealed `ssh_key` secret into the key to sign with.
pub fn open_secret(secret: &SecretString) -> Result<PrivateKey, KeyError> {
    let (key, pass) = unpack_secret(secret)
        .ok_or_else(|| KeyError::Unreadable("the stored secret is not an SSH key credential".to_owned()))?;
    parse_private_key(key.expose_secret(), pass.as_ref().map(|p| p.expose_secret()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_round_trip_through_the_sealed_form() -> Result<(), KeyError> {
        let g = generate_ed25519("berth")?;
        assert!(g.public_line.starts_with("ssh-ed25519 AAAA"), "{}", g.public_line);
        assert!(g.fingerprint.starts_with("SHA256:"), "{}", g.fingerprint);
        let packed = pack_secret(&g.private_openssh, None);
        let key = open_secret(&packed)?;
        assert_eq!(fingerprint(key.public_key()), g.fingerprint);
        Ok(())
    }

    #[test]
    fn garbage_is_unreadable_and_says_nothing_of_it() {
        let e =
            parse_private_key("-----BEGIN OPENSSH PRIVATE KEY-----\nc2VjcmV0\n-----END OPENSSH PRIVATE KEY-----", None)
                .err();
        assert!(matches!(e, Some(KeyError::Unreadable(_))), "{e:?}");
        assert!(!e.map(|e| e.to_string()).unwrap_or_default().contains("c2VjcmV0"));
    }
}
