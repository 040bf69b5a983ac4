//! Installation access tokens minted for GitHub Apps, kept in memory per instance until
//! shortly before they expire (GitHub: one hour). Never written anywhere: a restart mints anew.

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A token is minted again when less than this is left of it, so no check starts with a token
/// that dies during it.
pub const REFRESH_BEFORE_SECS: i64 = 5 * 60;

/// One minted token and what GitHub said with it.
#[derive(Clone)]
pub struct Minted {
    pub token: SecretString,
    pub expires_at: DateTime<Utc>,
    /// The installation's permissions as granted to the token (`contents: read`, …).
    pub permissions: Vec<(String, String)>,
}

impl std::fmt::Debug for Minted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Minted")
            .field("token", &"[redacted]")
            .field("expires_at", &self.expires_at)
            .field("permissions", &self.permissions)
            .finish()
    }
}

/// The cache: by API root, app id and installation id.
#[derive(Clone, Default)]
pub struct AppTokens(Arc<Mutex<HashMap<String, Minted>>>);

impl std::fmt::Debug for AppTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AppTokens([redacted])")
    }
}

pub(crate) fn key(api_root: &str, app_id: &str, installation: i64) -> String {
    format!("{api_root}|{app_id}|{installation}")
}

impl AppTokens {
    /// A cached token with more than [`REFRESH_BEFORE_SECS`] left.
    pub(crate) fn fresh(&self, key: &str, now: DateTime<Utc>) -> Option<Minted> {
        let mut map = match self.0.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        match map.get(key) {
            Some(m) if (m.expires_at - now).num_seconds() > REFRESH_BEFORE_SECS => Some(m.clone()),
            Some(_) => {
                map.remove(key);
                None
            }
            None => None,
        }
    }

    pub(crate) fn keep(&self, key: String, minted: Minted) {
        let mut map = match self.0.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        map.insert(key, minted);
    }

    /// Forgets a token the host refused (revoked, or the installation's permissions changed).
    pub(crate) fn forget(&self, key: &str) {
        let mut map = match self.0.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        map.remove(key);
    }

    /// How many tokens are cached (for tests and metrics).
    pub fn len(&self) -> usize {
        self.0.lock().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_reused_until_five_minutes_before_they_expire() {
        let cache = AppTokens::default();
        let now = Utc::now();
        let k = key("https://api.github.com", "1", 7);
        let minted = |mins: i64| Minted {
            token: SecretString::from("ghs_cached"),
            expires_at: now + chrono::Duration::minutes(mins),
            permissions: Vec::new(),
        };
        cache.keep(k.clone(), minted(60));
        assert!(cache.fresh(&k, now).is_some());
        assert!(cache.fresh(&k, now + chrono::Duration::minutes(56)).is_none(), "4 minutes left: mint again");
        assert!(cache.is_empty(), "a stale token is dropped");
        cache.keep(k.clone(), minted(60));
        assert!(!format!("{cache:?} {:?}", cache.fresh(&k, now)).contains("ghs_cached"));
        cache.forget(&k);
        assert!(cache.fresh(&k, now).is_none());
    }
}
