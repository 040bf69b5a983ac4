//! The secret of an `ssh_key` credential: a pasted private key (checked that it opens with its
//! passphrase) or one Berth generates, sealed together with the passphrase; and its public key,
//! which answers show so a person can add it to the host.

use super::{Error, Refusal, Result};
use berth_core::{Code, CredentialKind};
use berth_git::ssh::keys;
use secrecy::SecretString;

/// What is stored for an `ssh_key` credential.
pub(crate) struct SshMaterial {
    /// Private key and passphrase, packed for the vault.
    pub secret: SecretString,
    /// The OpenSSH public key line.
    pub public_key: String,
}

fn invalid(field: &str, message: impl Into<String>, remedy: impl Into<String>) -> Error {
    Error::Invalid(Refusal::new(Code::InvalidInput, format!("{field}: {}", message.into()), remedy))
}

/// Reads the key material of an `ssh_key` request: `generate`, or `private_key` (with
/// `passphrase` when it is protected). The token field `secret` is not for SSH keys.
pub(crate) fn material(
    secret: &str,
    private_key: Option<String>,
    passphrase: Option<String>,
    generate: bool,
) -> Result<SshMaterial> {
    if !secret.is_empty() {
        return Err(invalid(
            "secret",
            "an SSH key credential takes its key in private_key, not secret",
            "send the private key as private_key (and its passphrase as passphrase), or \"generate\": true",
        ));
    }
    let passphrase = passphrase.filter(|p| !p.is_empty());
    match (generate, private_key.filter(|k| !k.trim().is_empty())) {
        (true, Some(_)) => Err(invalid(
            "generate",
            "give either a private key or \"generate\": true, not both",
            "leave out private_key to let Berth make the key",
        )),
        (true, None) => {
            if passphrase.is_some() {
                return Err(invalid(
                    "passphrase",
                    "a generated key has no passphrase: it never leaves Berth's vault",
                    "leave out the passphrase",
                ));
            }
            let g = keys::generate_ed25519("berth").map_err(|e| Error::Internal(e.to_string()))?;
            Ok(SshMaterial { secret: keys::pack_secret(&g.private_openssh, None), public_key: g.public_line })
        }
        (false, None) => Err(invalid(
            "private_key",
            "an SSH key credential needs a private key",
            "paste the private key (ssh-keygen -t ed25519 makes one), or send \"generate\": true",
        )),
        (false, Some(text)) => {
            if text.len() > 32 * 1024 {
                return Err(invalid("private_key", "the private key is over 32 KiB", "paste one private key file"));
            }
            let key = keys::parse_private_key(&text, passphrase.as_deref())
                .map_err(|e| invalid("private_key", e.to_string(), e.remedy()))?;
            let public_key = keys::public_line(key.public_key());
            let text = SecretString::from(text);
            let pass = passphrase.map(SecretString::from);
            Ok(SshMaterial { secret: keys::pack_secret(&text, pass.as_ref()), public_key })
        }
    }
}

/// The SSH fields sent with another kind: refused, so nothing is silently dropped.
pub(crate) fn refuse_for_other_kinds(
    kind: CredentialKind,
    private_key: Option<&String>,
    passphrase: Option<&String>,
    generate: bool,
) -> Result<()> {
    if kind != CredentialKind::SshKey && (private_key.is_some() || passphrase.is_some() || generate) {
        return Err(invalid(
            "private_key",
            format!("private_key, passphrase and generate are for SSH key credentials, not {}", kind.label()),
            "use kind ssh_key for an SSH key, or leave these fields out",
        ));
    }
    Ok(())
}

/// The `SHA256:` fingerprint of a stored public key line.
pub(crate) fn fingerprint_of(public_key: &str) -> Option<String> {
    keys::parse_public_line(public_key).ok().map(|k| keys::fingerprint(&k))
}
