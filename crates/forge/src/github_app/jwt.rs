//! A GitHub App's JSON Web Token: RS256 over `{"iat", "exp", "iss"}`, signed with the app's
//! private key (PEM, PKCS#1 as GitHub hands it out, or PKCS#8). GitHub's rules: `iat` 60 s in
//! the past (for clock drift), `exp` at most 10 minutes ahead, `iss` the app id.
//!
//! ring signs; the key is parsed from PEM here (the base64 between the armour lines), so no
//! PEM crate is needed. Neither the key nor the token is ever shown: the token is a
//! [`SecretString`] and [`AppKey`]'s `Debug` says nothing about the key.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use ring::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
use secrecy::SecretString;

/// `iat` this far in the past, as GitHub's docs advise against clock drift.
pub const IAT_BACKDATE_SECS: i64 = 60;
/// `exp` this far ahead: under GitHub's 10-minute maximum, with a minute to spare.
pub const EXP_AHEAD_SECS: i64 = 9 * 60;

/// An app's private key, ready to sign.
pub struct AppKey(RsaKeyPair);

impl std::fmt::Debug for AppKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AppKey([redacted])")
    }
}

/// Why a private key was refused, in words that never quote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRefused(pub String);

impl std::fmt::Display for KeyRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl AppKey {
    /// Reads `-----BEGIN RSA PRIVATE KEY-----` (PKCS#1) or `-----BEGIN PRIVATE KEY-----`
    /// (PKCS#8) armour.
    pub fn from_pem(pem: &str) -> Result<AppKey, KeyRefused> {
        let (label, der) = pem_body(pem)?;
        let parsed = match label.as_str() {
            "RSA PRIVATE KEY" => RsaKeyPair::from_der(&der),
            "PRIVATE KEY" => RsaKeyPair::from_pkcs8(&der),
            other => {
                return Err(KeyRefused(format!(
                    "the PEM block is a {other:?}, not an RSA private key (BEGIN RSA PRIVATE KEY or BEGIN PRIVATE KEY)"
                )))
            }
        };
        parsed.map(AppKey).map_err(|e| KeyRefused(format!("the key does not read as an RSA private key ({e})")))
    }

    /// The public key as DER `RSAPublicKey` (what a verifier needs).
    pub fn public_key_der(&self) -> Vec<u8> {
        use ring::signature::KeyPair;
        self.0.public_key().as_ref().to_vec()
    }

    /// The app's JWT at `now` (Unix seconds).
    pub fn jwt(&self, app_id: &str, now: i64) -> Result<SecretString, KeyRefused> {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
        let claims = serde_json::json!({
            "iat": now - IAT_BACKDATE_SECS,
            "exp": now + EXP_AHEAD_SECS,
            "iss": app_id,
        });
        let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
        let signing_input = format!("{header}.{payload}");
        let mut sig = vec![0u8; self.0.public().modulus_len()];
        self.0
            .sign(&RSA_PKCS1_SHA256, &ring::rand::SystemRandom::new(), signing_input.as_bytes(), &mut sig)
            .map_err(|_| KeyRefused("the key could not sign".to_owned()))?;
        Ok(SecretString::from(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig))))
    }
}

/// The label and decoded body of the first PEM block.
fn pem_body(pem: &str) -> Result<(String, Vec<u8>), KeyRefused> {
    let no_block =
        || KeyRefused("no PEM block: paste the whole .pem file GitHub gave, from -----BEGIN to -----END".to_owned());
    let start = pem.find("-----BEGIN ").ok_or_else(no_block)?;
    let rest = &pem[start + "-----BEGIN ".len()..];
    let label_end = rest.find("-----").ok_or_else(no_block)?;
    let label = rest[..label_end].trim().to_owned();
    let body_and_end = &rest[label_end + "-----".len()..];
    let end = body_and_end.find("-----END ").ok_or_else(no_block)?;
    let body: String = body_and_end[..end].chars().filter(|c| !c.is_whitespace()).collect();
    let der = STANDARD.decode(body.as_bytes()).map_err(|_| KeyRefused("the PEM block is not base64".to_owned()))?;
    Ok((label, der))
}

/// The claims of a JWT as JSON, without checking the signature: for the simulator and tests.
pub fn claims_of(jwt: &str) -> Option<serde_json::Value> {
    let payload = jwt.split('.').nth(1)?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
}

/// Checks an RS256 JWT's signature against a DER `RSAPublicKey`; `Some(claims)` when it holds.
pub fn verified_claims(jwt: &str, public_key_der: &[u8]) -> Option<serde_json::Value> {
    let mut parts = jwt.split('.');
    let (header, payload, sig) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let head: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
    if head.get("alg").and_then(|a| a.as_str()) != Some("RS256") {
        return None;
    }
    let sig = URL_SAFE_NO_PAD.decode(sig).ok()?;
    let key = ring::signature::UnparsedPublicKey::new(&ring::signature::RSA_PKCS1_2048_8192_SHA256, public_key_der);
    key.verify(format!("{header}.{payload}").as_bytes(), &sig).ok()?;
    claims_of(jwt)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn refuses_what_is_not_an_rsa_key_without_quoting_it() {
        let e = AppKey::from_pem("ghp_notakey").unwrap_err();
        assert!(e.0.contains("no PEM block"), "{e}");
        let e = AppKey::from_pem("-----BEGIN RSA PRIVATE KEY-----\nbm90IGEga2V5\n-----END RSA PRIVATE KEY-----\n")
            .unwrap_err();
        assert!(e.0.contains("does not read"), "{e}");
        assert!(!e.0.contains("bm90"), "{e}");
        let e = AppKey::from_pem("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----").unwrap_err();
        assert!(e.0.contains("CERTIFICATE"), "{e}");
    }

    #[test]
    fn a_jwt_signed_by_openssl_made_key_verifies_and_carries_githubs_claims() {
        let dir = tempfile_dir();
        let path = dir.join("app.pem");
        let made = std::process::Command::new("openssl")
            .args(["genrsa", "-traditional", "-out"])
            .arg(&path)
            .arg("2048")
            .output();
        let Ok(out) = made else { panic!("openssl is needed for this test") };
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let pem = std::fs::read_to_string(&path).unwrap();
        let key = AppKey::from_pem(&pem).unwrap();
        assert!(!format!("{key:?}").contains("PRIVATE"));
        let jwt = key.jwt("4242", 1_700_000_000).unwrap();
        let claims = verified_claims(jwt.expose_secret(), &key.public_key_der()).unwrap();
        assert_eq!(claims["iss"], "4242");
        assert_eq!(claims["iat"], 1_700_000_000 - IAT_BACKDATE_SECS);
        assert_eq!(claims["exp"], 1_700_000_000 + EXP_AHEAD_SECS);
        // Another key's signature does not verify.
        let mut tampered = jwt.expose_secret().to_owned();
        tampered.pop();
        tampered.push(if jwt.expose_secret().ends_with('A') { 'B' } else { 'A' });
        assert!(verified_claims(&tampered, &key.public_key_der()).is_none());
        std::fs::remove_dir_all(dir).ok();
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("berth-jwt-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
