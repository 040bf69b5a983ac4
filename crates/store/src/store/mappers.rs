//! Row mappers: every row the store reads becomes a typed value here, through [`Cols`], so
//! each mapper is written once for both dialects. Also the column lists the queries select.

use super::dialect::Cols;
use super::types::*;
use super::{Result, StoreError};
use crate::vault::Sealed;
use berth_core::{Check, CheckReason, CheckStatus, Code, CredentialKind, StepStatus};

pub(super) const CREDENTIAL_COLUMNS: &str =
    "SELECT id, name, kind, username, email, expires_on, scopes, created_at, updated_at, \
     secret_updated_at, auth_failures, checks_paused_at, host, verification, app_id, installation_id, public_key, \
     client_certificate, client_certificate_subject, client_certificate_not_after FROM credentials";

pub(super) const CHECK_COLUMNS: &str =
    "SELECT c.id, c.repository_id, c.ok, c.status, c.code, c.reason, c.instance, c.checked_at, \
     c.duration_ms, c.warn_codes, c.steps FROM checks c";

/// A check without its steps: what lists need, without reading and parsing every step.
pub(super) const CHECK_SUMMARY_COLUMNS: &str =
    "SELECT c.id, c.repository_id, c.ok, c.status, c.code, c.reason, c.instance, \
     c.checked_at, c.duration_ms, c.warn_codes, '' AS steps FROM checks c";

pub(super) const REPOSITORY_COLUMNS: &str = "SELECT r.id, r.name, r.vcs, r.clone_url, r.repo_key, r.provider, \
     r.default_branch, r.credential_id, c.name AS credential_name, r.created_at, r.updated_at, r.next_check_at, \
     r.lease_owner, r.lease_until, r.due_reason, r.status FROM repositories r LEFT JOIN credentials c ON c.id = r.credential_id";

pub(super) fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(super) fn json_text<T: serde::Serialize + ?Sized>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(super) fn sealed_from_row(r: &impl Cols) -> Result<Sealed> {
    Ok(Sealed { key_id: r.str("key_id")?, wrapped_key: r.bytes("wrapped_key")?, ciphertext: r.bytes("ciphertext")? })
}

pub(super) fn user_from_row(r: &impl Cols) -> Result<User> {
    Ok(User {
        id: r.i64("id")?,
        username: r.str("username")?,
        role: r.str("role")?,
        password_hash: r.str("password_hash")?,
    })
}

/// A user as listed to administrators (`list_users` joins the second factor and the failures).
pub(super) fn user_summary_from_row(r: &impl Cols) -> Result<UserSummary> {
    Ok(UserSummary {
        id: r.i64("id")?,
        username: r.str("username")?,
        role: r.str("role")?,
        totp_enabled: r.bool("totp_enabled")?,
        single_sign_on: r.bool("single_sign_on")?,
        failed_logins: r.i64("failures")?,
        locked_until: r.opt_ts("locked_until")?,
        created_at: r.ts("created_at")?,
        updated_at: r.ts("updated_at")?,
    })
}

/// A browser session: its user's columns and the session's own.
pub(super) fn web_session_from_row(r: &impl Cols) -> Result<WebSession> {
    Ok(WebSession {
        user: user_from_row(r)?,
        csrf_token: r.opt_str("csrf_token")?.unwrap_or_default(),
        mfa_pending: r.bool("mfa_pending")?,
        expires_at: r.ts("expires_at")?,
    })
}

pub(super) fn api_token_from_row(r: &impl Cols) -> Result<ApiTokenRow> {
    Ok(ApiTokenRow {
        id: r.i64("id")?,
        user_id: r.i64("user_id")?,
        name: r.str("name")?,
        created_at: r.ts("created_at")?,
        expires_at: r.opt_ts("expires_at")?,
        last_used_at: r.opt_ts("last_used_at")?,
        revoked_at: r.opt_ts("revoked_at")?,
    })
}

pub(super) fn audit_from_row(r: &impl Cols) -> Result<AuditRow> {
    Ok(AuditRow {
        id: r.i64("id")?,
        at: r.ts("at")?,
        entry: NewAudit {
            actor_id: r.opt_i64("actor_id")?,
            actor: r.str("actor")?,
            action: r.str("action")?,
            target_kind: r.str("target_kind")?,
            target_id: r.opt_i64("target_id")?,
            target_name: r.str("target_name")?,
            detail: r.str("detail")?,
            remote_addr: r.opt_str("remote_addr")?,
            outcome: r.str("outcome")?,
        },
    })
}

pub(super) fn credential_from_row(r: &impl Cols) -> Result<CredentialRow> {
    let kind = r.str("kind")?;
    let scopes = r.str("scopes")?;
    Ok(CredentialRow {
        id: r.i64("id")?,
        name: r.str("name")?,
        kind: CredentialKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown credential kind {kind:?}")))?,
        username: r.opt_str("username")?,
        email: r.opt_str("email")?,
        expires_on: r.opt_date("expires_on")?,
        scopes: serde_json::from_str(&scopes).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        created_at: r.ts("created_at")?,
        updated_at: r.ts("updated_at")?,
        secret_updated_at: r.ts("secret_updated_at")?,
        auth_failures: r.i64("auth_failures")?,
        checks_paused_at: r.opt_ts("checks_paused_at")?,
        host: r.opt_str("host")?,
        verification: r.opt_str("verification")?,
        app_id: r.opt_str("app_id")?,
        installation_id: r.opt_i64("installation_id")?,
        public_key: r.opt_str("public_key")?,
        client_certificate: match (r.opt_str("client_certificate")?, r.opt_ts("client_certificate_not_after")?) {
            (Some(pem), Some(not_after)) => Some(ClientCertificateRow {
                pem,
                subject: r.opt_str("client_certificate_subject")?.unwrap_or_default(),
                not_after,
            }),
            _ => None,
        },
    })
}

pub(super) fn repository_from_row(r: &impl Cols) -> Result<RepositoryRow> {
    Ok(RepositoryRow {
        id: r.i64("id")?,
        name: r.str("name")?,
        vcs: r.str("vcs")?,
        clone_url: r.str("clone_url")?,
        repo_key: r.str("repo_key")?,
        provider: r.str("provider")?,
        default_branch: r.str("default_branch")?,
        credential_id: r.opt_i64("credential_id")?,
        credential_name: r.opt_str("credential_name")?,
        created_at: r.ts("created_at")?,
        updated_at: r.ts("updated_at")?,
        next_check_at: r.opt_ts("next_check_at")?,
        lease_owner: r.opt_str("lease_owner")?,
        lease_until: r.opt_ts("lease_until")?,
        due_reason: r.opt_str("due_reason")?.as_deref().and_then(CheckReason::parse),
        status: r.str("status")?,
    })
}

pub(super) fn code_of(s: &str) -> Result<Code> {
    serde_json::from_value(serde_json::Value::String(s.to_owned())).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(super) fn check_from_row(r: &impl Cols) -> Result<CheckRow> {
    let code = r.str("code")?;
    let status = r.str("status")?;
    let reason = r.str("reason")?;
    let steps = r.str("steps")?;
    Ok(CheckRow {
        id: r.i64("id")?,
        ok: r.bool("ok")?,
        status: CheckStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown check status {status:?}")))?,
        code: code_of(&code)?,
        reason: CheckReason::parse(&reason)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown check reason {reason:?}")))?,
        instance: r.str("instance")?,
        checked_at: r.ts("checked_at")?,
        duration_ms: u64::try_from(r.i64("duration_ms")?).unwrap_or(0),
        steps: if steps.is_empty() {
            Vec::new()
        } else {
            serde_json::from_str(&steps).map_err(|e| StoreError::Corrupt(e.to_string()))?
        },
        warn_codes: r.str("warn_codes")?.split(',').filter(|c| !c.is_empty()).map(code_of).collect::<Result<_>>()?,
    })
}

/// The codes of the steps that warned, comma-separated, each once: what `check_from_row` reads
/// back into `CheckRow::warn_codes`.
pub(super) fn warn_codes(check: &Check) -> String {
    let mut codes: Vec<&str> = Vec::new();
    for s in check.checks.iter().filter(|s| s.status == StepStatus::Warn) {
        if !codes.contains(&s.code.as_str()) {
            codes.push(s.code.as_str());
        }
    }
    codes.join(",")
}
