//! The audit log: writing an entry for each change (and each refused sign-in), and reading it.

use crate::auth::{Action, CurrentUser};
use crate::service::paging::{self, Kind, PageRequest};
use crate::service::Result;
use crate::state::AppState;
use berth_proto::{AuditEntry, AuditOutcome, Page};
use berth_store::{AuditFilter, AuditRow, NewAudit, Store};
use chrono::{DateTime, Utc};

/// How many entries a page of the log holds unless the caller asks for another number.
pub const PAGE: i64 = 100;

impl CurrentUser {
    /// Writes an audit entry for a change this caller made. `detail` must never hold a secret.
    pub async fn audit(
        &self,
        store: &Store,
        action: &str,
        target_kind: &str,
        target_id: Option<i64>,
        target_name: &str,
        detail: impl Into<String>,
    ) {
        let e = NewAudit {
            actor_id: Some(self.user.id),
            actor: self.user.username.clone(),
            action: action.to_owned(),
            target_kind: target_kind.to_owned(),
            target_id,
            target_name: target_name.chars().take(200).collect(),
            detail: detail.into().chars().take(2000).collect(),
            remote_addr: self.remote.clone(),
            outcome: AuditOutcome::Ok.as_str().to_owned(),
        };
        if let Err(err) = store.audit(&e).await {
            // The change itself is done; losing its audit entry must be loud in the log.
            tracing::error!(action, "cannot write the audit log: {err}");
        }
    }
}

/// Writes an entry about a name that has not proved who it is (a refused sign-in): the name is
/// the one typed, cut to 64 characters. Unlike [`CurrentUser::audit`] a failure is returned, as
/// nothing has changed yet that the entry would describe.
pub(crate) async fn unproven(
    store: &Store,
    username: &str,
    action: &str,
    outcome: AuditOutcome,
    detail: String,
    remote: Option<&str>,
) -> Result<()> {
    let name: String = username.chars().take(64).collect();
    store
        .audit(&NewAudit {
            actor: name.clone(),
            action: action.to_owned(),
            target_kind: "user".into(),
            target_name: name,
            detail,
            remote_addr: remote.map(str::to_owned),
            outcome: outcome.as_str().to_owned(),
            ..NewAudit::default()
        })
        .await?;
    Ok(())
}

fn to_wire(r: AuditRow) -> AuditEntry {
    let e = r.entry;
    AuditEntry {
        id: r.id,
        at: r.at,
        actor_id: e.actor_id,
        actor: e.actor,
        action: e.action,
        target_kind: e.target_kind,
        target_id: e.target_id,
        target_name: e.target_name,
        detail: e.detail,
        remote_addr: e.remote_addr,
        outcome: e.outcome,
    }
}

/// The log, newest first: entries older than `before` (an id), at most `limit` ([`PAGE`] unless given).
pub async fn read(st: &AppState, u: &CurrentUser, before: Option<i64>, limit: Option<i64>) -> Result<Vec<AuditEntry>> {
    u.require(Action::ReadAudit)?;
    Ok(st.store.list_audit(before, limit.unwrap_or(PAGE)).await?.into_iter().map(to_wire).collect())
}

/// Which entries to read: each field that is set must match. `actor` and `target` are
/// case-insensitive substrings (a target is its kind and name: "repository app"), `action` is
/// exact, and the time range is `from <= at < until`.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub target: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

/// The log filtered, newest first: entries older than `before` (an id), at most `limit`.
pub async fn search(
    st: &AppState,
    u: &CurrentUser,
    filter: Filter,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<AuditEntry>> {
    u.require(Action::ReadAudit)?;
    let Filter { actor, action, target, from, until } = filter;
    let filter = AuditFilter { actor, action, target, from, until };
    Ok(st.store.search_audit(&filter, before, limit).await?.into_iter().map(to_wire).collect())
}

/// A page of the log filtered, newest first, with how many entries match: after the page's
/// cursor, or older than entry `before` when that is given instead.
pub async fn search_page(
    st: &AppState,
    u: &CurrentUser,
    filter: Filter,
    page: &PageRequest,
    before: Option<i64>,
) -> Result<Page<AuditEntry>> {
    u.require(Action::ReadAudit)?;
    let Filter { actor, action, target, from, until } = filter;
    let filter = AuditFilter { actor, action, target, from, until };
    let before = page.id_key(Kind::Audit)?.or(before);
    let limit = page.limit();
    let rows = st.store.search_audit(&filter, before, limit + 1).await?;
    let total = st.store.count_audit(&filter, None).await?;
    Ok(paging::page_of(rows, limit, total, Kind::Audit, |r| r.id.to_string(), to_wire))
}

/// The actions the log holds, for the audit page's filter.
pub async fn actions(st: &AppState, u: &CurrentUser) -> Result<Vec<String>> {
    u.require(Action::ReadAudit)?;
    Ok(st.store.audit_actions().await?)
}
