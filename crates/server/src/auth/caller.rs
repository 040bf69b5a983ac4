//! The authenticated caller of a request and where it came from.

use crate::auth::{Action, Role};
use axum::extract::ConnectInfo;
use axum::http::HeaderMap;
use berth_store::User;
use std::net::SocketAddr;

/// How the caller proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Session,
    ApiToken,
    Web,
}

/// The authenticated caller of a request, with where it came from (for the audit log).
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub user: User,
    pub role: Role,
    pub remote: Option<String>,
    pub via: Via,
    /// Set while a configuration apply acts for the caller: every audit entry it writes names
    /// the change set, so the per-object entries link to the apply's own.
    pub change_set: Option<String>,
}

impl CurrentUser {
    pub fn new(user: User, remote: Option<String>, via: Via) -> CurrentUser {
        // An unknown role in the database grants nothing beyond reading.
        let role = Role::parse(&user.role).unwrap_or(Role::Viewer);
        CurrentUser { user, role, remote, via, change_set: None }
    }

    pub fn may(&self, action: Action) -> bool {
        self.role.allows(action)
    }

    /// The one gate: every use case that acts calls this first.
    pub fn require(&self, action: Action) -> Result<(), Forbidden> {
        if self.may(action) {
            Ok(())
        } else {
            tracing::info!(user = self.user.id, action = action.as_str(), "forbidden");
            Err(Forbidden { role: self.role, action })
        }
    }
}

/// The caller's role does not allow the action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forbidden {
    pub role: Role,
    pub action: Action,
}

/// The token of an `Authorization: Bearer` header, if there is one.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let header = headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    header.and_then(|h| h.strip_prefix("Bearer ")).map(str::trim).filter(|t| !t.is_empty())
}

/// Where a request came from: the peer address, or the first X-Forwarded-For hop when
/// the configuration says a trusted proxy sets it (`BERTH_TRUST_FORWARDED=1`, `trust_forwarded = true`).
pub fn remote_addr(parts_ext: &axum::http::Extensions, headers: &HeaderMap) -> Option<String> {
    if trust_forwarded() {
        if let Some(first) =
            headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()).and_then(|v| v.split(',').next())
        {
            let first = first.trim();
            if !first.is_empty() && first.len() <= 64 {
                return Some(first.to_owned());
            }
        }
    }
    parts_ext.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string())
}

/// Whether the request reached the proxy over TLS (only believed from a trusted proxy).
pub fn came_over_tls(headers: &HeaderMap) -> bool {
    trust_forwarded()
        && headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

static TRUST_FORWARDED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

/// Set once at start-up from `Config::trust_forwarded`. A process-wide flag rather than a
/// parameter because the address is read in extractors and cookie helpers that have no state;
/// one process serves one configuration, so the first value set is the one that holds.
pub fn set_trust_forwarded(on: bool) {
    let _ = TRUST_FORWARDED.set(on);
}

fn trust_forwarded() -> bool {
    TRUST_FORWARDED.get().copied().unwrap_or(false)
}
