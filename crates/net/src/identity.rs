//! A client certificate a credential carries (issue 14 §2: hosts that tie certificates to
//! users), read once when it is saved: the PEM certificate and key must read, the key must be
//! the certificate's (their public keys compared), and the certificate must not have expired.
//! What a person is shown of it (its subject and expiry) comes from here too; the key is only
//! parsed, never shown.

use crate::issuer::{distinguished_name, element};
use chrono::{DateTime, NaiveDate, Utc};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use secrecy::{ExposeSecret, SecretString};

/// What can be shown of a client certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateFacts {
    /// `CN=…, O=…, OU=…` of the subject.
    pub subject: String,
    /// The end of its validity.
    pub not_after: DateTime<Utc>,
}

/// Why a client certificate and key cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentityProblem {
    /// The certificate is not a PEM certificate (the text says what is wrong).
    Certificate(String),
    /// The key is not a PEM private key Berth can use (PKCS#8, RSA or EC).
    Key(String),
    /// The key is not the certificate's.
    KeyMismatch,
    /// The certificate's validity ended.
    Expired { not_after: DateTime<Utc> },
}

/// Reads a client certificate (the first PEM certificate of `certificate_pem`; any others are
/// the chain) and its key, and judges them at `now`.
pub fn read_client_identity(
    certificate_pem: &str,
    key_pem: &SecretString,
    now: DateTime<Utc>,
) -> Result<CertificateFacts, IdentityProblem> {
    let cert = CertificateDer::pem_slice_iter(certificate_pem.as_bytes())
        .next()
        .ok_or_else(|| IdentityProblem::Certificate("no PEM certificate (-----BEGIN CERTIFICATE-----) found".into()))?
        .map_err(|e| IdentityProblem::Certificate(format!("the PEM certificate cannot be read ({e:?})")))?;
    let parts = tbs_parts(cert.as_ref())
        .ok_or_else(|| IdentityProblem::Certificate("the certificate is not a readable X.509 certificate".into()))?;
    // The key's parser error names the PEM section at fault, never the key's bytes.
    let key = PrivateKeyDer::from_pem_slice(key_pem.expose_secret().as_bytes()).map_err(|_| {
        IdentityProblem::Key("no PEM private key (-----BEGIN PRIVATE KEY-----, RSA or EC) found".into())
    })?;
    let signer = rustls::crypto::ring::sign::any_supported_type(&key).map_err(|_| {
        IdentityProblem::Key("the private key is not an RSA, ECDSA or Ed25519 key Berth can use".into())
    })?;
    match signer.public_key() {
        Some(spki) if spki.as_ref() == parts.spki => {}
        Some(_) => return Err(IdentityProblem::KeyMismatch),
        None => return Err(IdentityProblem::Key("the private key's public half cannot be derived".into())),
    }
    // reqwest must accept the pair as it will be used for every request.
    let mut both = certificate_pem.as_bytes().to_vec();
    both.push(b'\n');
    both.extend_from_slice(key_pem.expose_secret().as_bytes());
    reqwest::Identity::from_pem(&both)
        .map_err(|_| IdentityProblem::Key("the certificate and key cannot be used together for TLS".into()))?;
    let not_after = der_time(parts.not_after)
        .ok_or_else(|| IdentityProblem::Certificate("the certificate's validity cannot be read".into()))?;
    if not_after <= now {
        return Err(IdentityProblem::Expired { not_after });
    }
    let subject = distinguished_name(parts.subject).unwrap_or_else(|| "(no common name)".to_owned());
    Ok(CertificateFacts { subject, not_after })
}

/// The parts of a certificate's to-be-signed body read here: the end of validity (the DER
/// element), the subject's name and the whole SubjectPublicKeyInfo element.
struct TbsParts<'a> {
    not_after: (u8, &'a [u8]),
    subject: &'a [u8],
    spki: &'a [u8],
}

fn tbs_parts(cert: &[u8]) -> Option<TbsParts<'_>> {
    let (_, certificate, _) = element(cert)?;
    let (_, tbs, _) = element(certificate)?;
    let (tag, _, mut rest) = element(tbs)?;
    if tag == 0xa0 {
        // [0] version: the serial number follows.
        rest = element(rest)?.2;
    }
    let (_, _, rest) = element(rest)?; // signature algorithm
    let (_, _, rest) = element(rest)?; // issuer
    let (_, validity, rest) = element(rest)?;
    let (_, _, after) = element(validity)?; // notBefore
    let (time_tag, not_after, _) = element(after)?;
    let (_, subject, rest) = element(rest)?;
    let spki_len = rest.len() - element(rest)?.2.len();
    Some(TbsParts { not_after: (time_tag, not_after), subject, spki: &rest[..spki_len] })
}

/// An X.509 time: UTCTime (`YYMMDDHHMMSSZ`, years 1950–2049) or GeneralizedTime
/// (`YYYYMMDDHHMMSSZ`).
fn der_time((tag, bytes): (u8, &[u8])) -> Option<DateTime<Utc>> {
    let text = std::str::from_utf8(bytes).ok()?.strip_suffix('Z')?;
    if !text.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let (year, rest) = match (tag, text.len()) {
        (0x17, 12) => {
            let yy: i32 = text[..2].parse().ok()?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &text[2..])
        }
        (0x18, 14) => (text[..4].parse().ok()?, &text[4..]),
        _ => return None,
    };
    let n = |i: usize| rest[i..i + 2].parse::<u32>().ok();
    let at = NaiveDate::from_ymd_opt(year, n(0)?, n(2)?)?.and_hms_opt(n(4)?, n(6)?, n(8)?)?;
    Some(at.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_times_read_both_forms() {
        let t = der_time((0x17, b"491231235959Z")).map(|t| t.to_rfc3339());
        assert_eq!(t.as_deref(), Some("2049-12-31T23:59:59+00:00"));
        let t = der_time((0x17, b"500101000000Z")).map(|t| t.to_rfc3339());
        assert_eq!(t.as_deref(), Some("1950-01-01T00:00:00+00:00"));
        let t = der_time((0x18, b"20991231000000Z")).map(|t| t.to_rfc3339());
        assert_eq!(t.as_deref(), Some("2099-12-31T00:00:00+00:00"));
        assert_eq!(der_time((0x18, b"2099123100000Z")), None);
        assert_eq!(der_time((0x17, b"49123123595aZ")), None);
        assert_eq!(der_time((0x04, b"491231235959Z")), None);
    }

    #[test]
    fn garbage_is_refused_without_a_panic() {
        let key = SecretString::from("not a key");
        let now = Utc::now();
        assert!(matches!(read_client_identity("", &key, now), Err(IdentityProblem::Certificate(_))));
        let junk = "-----BEGIN CERTIFICATE-----\nMIIBAA==\n-----END CERTIFICATE-----\n";
        assert!(matches!(read_client_identity(junk, &key, now), Err(IdentityProblem::Certificate(_))));
        assert!(tbs_parts(&[0x30, 0x82, 0xff]).is_none());
    }
}
