//! Who issued a certificate Berth does not trust. rustls reports an unknown issuer without its
//! name, so after such a failure Berth shakes hands once more with a verifier that only reads
//! the chain the host presents (and then ends the handshake: nothing is sent), and names the
//! issuer of its last certificate, the authority the operator must trust (`ca_file`).

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The issuer's distinguished name (`CN=…, O=…`) of the last certificate `host:port` presents
/// on `stream` (a fresh TCP connection, or a proxy's tunnel), or `None`.
pub(crate) async fn presented_issuer(stream: tokio::net::TcpStream, host: &str, limit: Duration) -> Option<String> {
    let stream = stream.into_std().ok()?;
    stream.set_nonblocking(false).ok()?;
    stream.set_read_timeout(Some(limit)).ok()?;
    stream.set_write_timeout(Some(limit)).ok()?;
    let name = ServerName::try_from(host.trim_start_matches('[').trim_end_matches(']').to_owned()).ok()?;
    tokio::task::spawn_blocking(move || {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let seen = Arc::new(Mutex::new(None));
        let verifier = Arc::new(ChainReader { seen: seen.clone(), provider: provider.clone() });
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .ok()?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        let mut conn = rustls::ClientConnection::new(Arc::new(config), name).ok()?;
        let mut sock = stream;
        while conn.is_handshaking() {
            if conn.complete_io(&mut sock).is_err() {
                break;
            }
        }
        let der = seen.lock().ok()?.take()?;
        issuer_name(&der)
    })
    .await
    .ok()
    .flatten()
}

#[derive(Debug)]
struct ChainReader {
    seen: Arc<Mutex<Option<Vec<u8>>>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for ChainReader {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let top = intermediates.last().unwrap_or(end_entity);
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Some(top.as_ref().to_vec());
        }
        // Read, never trusted: the handshake ends here.
        Err(rustls::Error::General("chain read for diagnosis".into()))
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("chain read for diagnosis".into()))
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("chain read for diagnosis".into()))
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// One DER element: (tag, contents, rest).
pub(crate) fn element(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// `CN=…, O=…` of a certificate's issuer (the attributes people recognise; others skipped).
pub(crate) fn issuer_name(cert: &[u8]) -> Option<String> {
    let (_, certificate, _) = element(cert)?;
    let (_, tbs, _) = element(certificate)?;
    let (tag, _, mut rest) = element(tbs)?;
    if tag == 0xa0 {
        // [0] version: the serial number follows.
        rest = element(rest)?.2;
    }
    let (_, _, rest) = element(rest)?; // signature algorithm
    let (_, issuer, _) = element(rest)?;
    distinguished_name(issuer)
}

/// `CN=…, O=…, OU=…` of a DER name (the attributes people recognise; others skipped).
pub(crate) fn distinguished_name(name: &[u8]) -> Option<String> {
    let mut parts = Vec::new();
    let mut rdns = name;
    while let Some((_, set, next)) = element(rdns) {
        let mut attrs = set;
        while let Some((_, attr, more)) = element(attrs) {
            if let Some((0x06, oid, value)) = element(attr) {
                let label = match oid {
                    [0x55, 0x04, 0x03] => Some("CN"),
                    [0x55, 0x04, 0x0a] => Some("O"),
                    [0x55, 0x04, 0x0b] => Some("OU"),
                    _ => None,
                };
                if let (Some(label), Some((_, text, _))) = (label, element(value)) {
                    parts.push(format!("{label}={}", String::from_utf8_lossy(text)));
                }
            }
            attrs = more;
        }
        rdns = next;
    }
    // The common name first: it is what people call the authority.
    parts.sort_by_key(|p| !p.starts_with("CN="));
    (!parts.is_empty()).then(|| parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_no_name() {
        assert_eq!(issuer_name(b""), None);
        assert_eq!(issuer_name(&[0x30, 0x82, 0xff]), None);
        assert_eq!(issuer_name(&[0x30, 0x03, 0x30, 0x01, 0x00]), None);
    }
}
