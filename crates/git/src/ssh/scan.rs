//! Reading the host keys a server presents, as `ssh-keyscan` does: one handshake per key type,
//! ended before anything is authenticated. Used to trust a host by the fingerprint a person
//! compared (`POST /api/v1/known-hosts` with `fingerprint`).

use super::keys::{fingerprint, SshPublicKey};
use super::SshError;
use crate::GitClient;
use berth_core::{Code, StepName};
use russh::client;
use russh::keys::{Algorithm, EcdsaCurve, HashAlg, PublicKeyOrCertificate};
use std::borrow::Cow;
use std::sync::{Arc, Mutex};

struct Recorder {
    seen: Arc<Mutex<Option<SshPublicKey>>>,
}

impl client::Handler for Recorder {
    type Error = russh::Error;

    async fn check_server_key(&mut self, key: &PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        if let (PublicKeyOrCertificate::PublicKey { key, .. }, Ok(mut seen)) = (key, self.seen.lock()) {
            *seen = Some(key.clone());
        }
        // Never go further: nothing is authenticated to a host being scanned.
        Ok(false)
    }
}

impl GitClient {
    /// The host's key whose `SHA256:` fingerprint is `wanted`, read by asking for each key type
    /// in turn; `None` when the host presents no key with that fingerprint.
    pub async fn scan_host_key(
        &self,
        host: &str,
        port: Option<u16>,
        wanted: &str,
    ) -> Result<(Option<SshPublicKey>, Vec<String>), SshError> {
        let groups: [&[Algorithm]; 4] = [
            &[Algorithm::Ed25519],
            &[
                Algorithm::Ecdsa { curve: EcdsaCurve::NistP256 },
                Algorithm::Ecdsa { curve: EcdsaCurve::NistP384 },
                Algorithm::Ecdsa { curve: EcdsaCurve::NistP521 },
            ],
            &[Algorithm::Rsa { hash: Some(HashAlg::Sha512) }, Algorithm::Rsa { hash: Some(HashAlg::Sha256) }],
            &[Algorithm::Rsa { hash: None }],
        ];
        let mut presented = Vec::new();
        let limit = self.config().request_timeout;
        for algs in groups {
            let (stream, _) = self.net().connect_tcp(host, port.unwrap_or(22)).await?;
            let mut config = client::Config { inactivity_timeout: None, ..client::Config::default() };
            config.preferred.key = Cow::Owned(algs.to_vec());
            let seen = Arc::new(Mutex::new(None));
            let handler = Recorder { seen: seen.clone() };
            let attempt = tokio::time::timeout(limit, client::connect_stream(Arc::new(config), stream, handler)).await;
            if attempt.is_err() {
                return Err(SshError::new(
                    StepName::SshHandshake,
                    Code::Timeout,
                    format!("{host} did not finish the SSH handshake within {} s", limit.as_secs_f64()),
                    "check the host and port, and try again",
                ));
            }
            let key = seen.lock().ok().and_then(|mut s| s.take());
            if let Some(key) = key {
                let fp = fingerprint(&key);
                if fp == wanted {
                    return Ok((Some(key), presented));
                }
                if !presented.contains(&fp) {
                    presented.push(fp);
                }
            }
        }
        Ok((None, presented))
    }
}
