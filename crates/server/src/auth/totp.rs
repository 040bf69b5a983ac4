//! RFC 6238 time-based one-time passwords: HMAC-SHA1, 30-second steps, 6 digits.

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha1::Sha1;

pub const STEP_SECS: i64 = 30;
pub const DIGITS: u32 = 6;
const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// A new 160-bit key, base32 as authenticator apps take it.
pub fn generate_secret() -> String {
    let mut key = [0u8; 20];
    rand::rngs::OsRng.fill_bytes(&mut key);
    base32_encode(&key)
}

pub fn base32_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(5) * 8);
    let (mut buf, mut bits) = (0u32, 0u32);
    for &b in data {
        buf = (buf << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buf >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buf << (5 - bits)) & 31) as usize]));
    }
    out
}

pub fn base32_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut buf, mut bits) = (0u32, 0u32);
    for c in s.chars().filter(|c| !c.is_whitespace() && *c != '=' && *c != '-') {
        let v = ALPHABET.iter().position(|a| char::from(*a) == c.to_ascii_uppercase())?;
        buf = (buf << 5) | u32::try_from(v).ok()?;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(((buf >> bits) & 0xff) as u8);
        }
    }
    Some(out)
}

/// The code for time step `counter` (RFC 4226 dynamic truncation).
pub fn hotp(key: &[u8], counter: u64, digits: u32) -> Option<u32> {
    let mut mac = Hmac::<Sha1>::new_from_slice(key).ok()?;
    mac.update(&counter.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let offset = usize::from(*h.last()? & 0x0f);
    let bytes: [u8; 4] = h.get(offset..offset + 4)?.try_into().ok()?;
    let bin = u32::from_be_bytes(bytes) & 0x7fff_ffff;
    Some(bin % 10u32.pow(digits))
}

/// The current code for a base32 key at Unix time `now`, zero-padded.
pub fn code(secret_b32: &str, now: i64) -> Option<String> {
    let key = base32_decode(secret_b32)?;
    let step = u64::try_from(now.div_euclid(STEP_SECS)).ok()?;
    hotp(&key, step, DIGITS).map(|c| format!("{c:06}"))
}

/// Accepts the code of the current step or one step either side (clock drift); returns the
/// matching step so the caller can refuse its reuse.
pub fn verify(secret_b32: &str, code: &str, now: i64) -> Option<i64> {
    let key = base32_decode(secret_b32)?;
    let wanted: u32 = code.trim().parse().ok()?;
    let step = now.div_euclid(STEP_SECS);
    let mut found = None;
    for s in [step - 1, step, step + 1] {
        let Ok(counter) = u64::try_from(s) else { continue };
        // Compare every candidate so timing does not tell which step matched.
        if hotp(&key, counter, DIGITS) == Some(wanted) && code.trim().len() == DIGITS as usize {
            found = Some(s);
        }
    }
    found
}

/// The `otpauth://` URI authenticator apps import.
pub fn otpauth_uri(issuer: &str, account: &str, secret_b32: &str) -> String {
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    };
    format!(
        "otpauth://totp/{}:{}?secret={secret_b32}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        enc(issuer),
        enc(account),
        enc(issuer)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totp_matches_rfc_6238_vectors() {
        // RFC 6238 appendix B, SHA-1 key "12345678901234567890", 8 digits.
        let key = b"12345678901234567890";
        for (t, want) in [
            (59i64, 94_287_082u32),
            (1_111_111_109, 7_081_804),
            (1_234_567_890, 89_005_924),
            (20_000_000_000, 65_353_130),
        ] {
            assert_eq!(hotp(key, u64::try_from(t / 30).unwrap_or(0), 8), Some(want), "t={t}");
        }
        let b32 = base32_encode(key);
        assert_eq!(b32, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert_eq!(base32_decode(&b32).as_deref(), Some(&key[..]));
        assert_eq!(code(&b32, 59).as_deref(), Some("287082"));
        assert_eq!(verify(&b32, "287082", 59), Some(1));
        assert_eq!(verify(&b32, "287082", 59 + 30), Some(1), "one step of drift is accepted");
        assert_eq!(verify(&b32, "287082", 59 + 90), None);
        assert_eq!(verify(&b32, "28708", 59), None);
        assert!(otpauth_uri("Berth", "jo smith", &b32).starts_with("otpauth://totp/Berth:jo%20smith?secret=GEZ"));
    }
}
