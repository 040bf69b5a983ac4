//! Checks of registered repositories: running one now, "check all now", the history, and the
//! one recording path every check goes through (registration, a person's re-check, a token
//! replacement and the scheduler alike), so history, metrics and the authentication-failure
//! pause cannot differ between them.

use crate::auth::{Action, CurrentUser};
use crate::checks::{Checker, Outcome, Target};
use crate::service::paging::{self, Kind, PageRequest};
use crate::service::Result;
use crate::state::AppState;
use berth_core::{Check, CheckReason, CheckStatus, CloneUrl, Code, StepName, StepStatus, UrlError};
use berth_proto::{Page, Scheduled, StoredCheck};
use berth_store::{
    AuthResult, BranchEntry, BranchList, CheckRow, CredentialRow, NewAudit, NewCheck, OutcomeRecorded, OutcomeToRecord,
    RepositoryRow, StoreError,
};
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use std::sync::Arc;
use std::time::Duration;

/// The pipeline over this server's Git client and REST adapters.
pub fn checker(st: &AppState) -> Checker<'_> {
    Checker { git: &st.git, forge: &st.forge }
}

/// The credential's secret as the vault opens it; `None` (logged) when it does not open, which
/// the credential step then reports.
pub(crate) async fn open_secret(st: &AppState, cred: &CredentialRow) -> Option<SecretString> {
    match st.store.credential_secret(cred.id).await {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::error!(credential = cred.id, "cannot open credential secret: {e}");
            None
        }
    }
}

/// Why a registered repository's own check uses its credential.
pub(crate) const REGISTERED_CREDENTIAL: &str = "the credential the repository is registered with";
/// Why a registered repository's own check uses none.
pub(crate) const REGISTERED_ANONYMOUS: &str = "the repository is registered without one";

/// Runs the check pipeline for `url` with `cred`, opening its secret right before; without a
/// credential, anonymously. `chosen_by` says why this credential (or none), for the credential step.
pub(crate) async fn run(
    st: &AppState,
    url: &CloneUrl,
    cred: Option<&CredentialRow>,
    wanted_branch: Option<&str>,
    chosen_by: &str,
) -> Outcome {
    let secret = match cred {
        Some(c) => open_secret(st, c).await,
        None => None,
    };
    run_with_secret(st, url, cred, secret, wanted_branch, chosen_by).await
}

/// [`run`] with the credential's secret opened already (`None` when it did not open).
async fn run_with_secret(
    st: &AppState,
    url: &CloneUrl,
    cred: Option<&CredentialRow>,
    secret: Option<SecretString>,
    wanted_branch: Option<&str>,
    chosen_by: &str,
) -> Outcome {
    let host_keys = host_keys_for(st, url).await;
    // A credential with its own client certificate is checked over clients presenting it.
    let (secret, own) = super::client_certs::prepare(st, cred, secret).await;
    super::client_certs::checker_of(st, &own)
        .run(Target { url, credential: cred, secret, wanted_branch, chosen_by: Some(chosen_by), host_keys })
        .await
}

/// The host keys an SSH URL's check trusts; none is read for HTTPS.
pub(crate) async fn host_keys_for(st: &AppState, url: &CloneUrl) -> Vec<berth_git::ssh::TrustedKey> {
    if url.scheme == berth_core::Scheme::Ssh {
        super::known_hosts::trusted_for(st, url).await
    } else {
        Vec::new()
    }
}

/// The next due time: `interval` from `now`, moved by up to `jitter` of it either way.
pub fn next_due(now: DateTime<Utc>, interval: Duration, jitter: f64) -> DateTime<Utc> {
    let spread = if jitter > 0.0 { rand::random::<f64>().mul_add(2.0 * jitter, -jitter) } else { 0.0 };
    let secs = (interval.as_secs_f64() * (1.0 + spread)).max(1.0);
    now + chrono::Duration::milliseconds((secs * 1000.0) as i64)
}

/// The next regular check of a repository from now.
pub(crate) fn next_regular_check(st: &AppState) -> DateTime<Utc> {
    next_due(Utc::now(), st.config.checks.interval, st.config.checks.jitter)
}

pub(crate) fn stored_check(c: CheckRow) -> StoredCheck {
    StoredCheck {
        id: c.id,
        ok: c.ok,
        status: c.status.as_str().to_owned(),
        reason: c.reason.as_str().to_owned(),
        instance: c.instance,
        code: c.code,
        checked_at: c.checked_at,
        duration_ms: c.duration_ms,
        warning_codes: c.warn_codes,
        checks: c.steps,
    }
}

/// What a person who may not change the network policy should do about a refused address.
const ASK_AN_ADMINISTRATOR: &str = "Berth's network policy does not let it contact this address, so that a clone URL \
     cannot reach internal services. Check the clone URL; if the Git server really lives there, ask a Berth \
     administrator to allow the address.";

/// Fits remedies to the caller: only administrators can change the network policy, so only
/// they are told how (`BERTH_NETWORK_ALLOW`); everyone else is told to ask one.
pub(crate) fn fit_for(u: &CurrentUser, steps: &mut [berth_core::Step]) {
    if u.may(Action::ManageSettings) {
        return;
    }
    for s in steps.iter_mut().filter(|s| s.code == Code::DestinationForbidden) {
        ASK_AN_ADMINISTRATOR.clone_into(&mut s.remedy);
    }
}

/// [`fit_for`] on the steps of a failed check.
pub(crate) fn fit_error(u: &CurrentUser, e: super::Error) -> super::Error {
    match e {
        super::Error::CheckFailed(mut steps) => {
            fit_for(u, &mut steps);
            super::Error::CheckFailed(steps)
        }
        other => other,
    }
}

/// Re-check a registered repository now, as a person asked, and keep the result.
pub async fn check_now(st: &AppState, u: &CurrentUser, id: i64) -> Result<Check> {
    u.require(Action::CheckRepository)?;
    let row = st.store.get_repository(id).await?;
    let mut check = recheck(st, &row, CheckReason::Manual).await?;
    fit_for(u, &mut check.checks);
    let detail = check
        .first_failure()
        .map_or_else(|| "all steps passed".to_owned(), |s| format!("{}: {}", s.step.as_str(), s.code));
    u.audit(&st.store, "repository.check", "repository", Some(id), &row.name, detail).await;
    Ok(check)
}

/// Runs the check of a registered repository with its stored credential and records it; the
/// next scheduled check moves a full interval on.
pub(crate) async fn recheck(st: &AppState, row: &RepositoryRow, reason: CheckReason) -> Result<Check> {
    let url = parse_stored(st, row);
    let (rec, _) = run_and_record(st, row, &url, reason, |_| None).await?;
    st.store.set_next_check(row.id, next_regular_check(st)).await?;
    Ok(rec.check)
}

/// Check every registered repository as soon as possible ("check all now"): they become due
/// and this instance's scheduler wakes; other instances see it at their next poll.
pub async fn schedule_all(st: &AppState, u: &CurrentUser) -> Result<Scheduled> {
    u.require(Action::CheckRepository)?;
    let scheduled = st.store.schedule_all_checks(Utc::now()).await?;
    st.instance.wake();
    u.audit(
        &st.store,
        "repository.check_all",
        "repository",
        None,
        "",
        format!("{} made due", berth_core::words::counted(i64::try_from(scheduled).unwrap_or(i64::MAX), "repository")),
    )
    .await;
    Ok(Scheduled { scheduled })
}

/// A page of a repository's checks, newest first: after the page's cursor, or older than check
/// `before` when that is given instead (to find one check by id).
pub async fn history_page(
    st: &AppState,
    u: &CurrentUser,
    id: i64,
    page: &PageRequest,
    before: Option<i64>,
) -> Result<Page<StoredCheck>> {
    u.require(Action::ReadRepositories)?;
    st.store.get_repository(id).await?;
    let before = page.id_key(Kind::History)?.or(before);
    let limit = page.limit();
    let rows = st.store.check_history(id, before, limit + 1).await?;
    let total = st.store.count_checks(id).await?;
    Ok(paging::page_of(
        rows,
        limit,
        total,
        Kind::History,
        |c| c.id.to_string(),
        |c| {
            let mut c = stored_check(c);
            fit_for(u, &mut c.checks);
            c
        },
    ))
}

/// A repository's checks, newest first, `limit` of them older than check `before`.
pub async fn history(
    st: &AppState,
    u: &CurrentUser,
    id: i64,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<StoredCheck>> {
    u.require(Action::ReadRepositories)?;
    st.store.get_repository(id).await?;
    let mut checks: Vec<StoredCheck> =
        st.store.check_history(id, before, limit).await?.into_iter().map(stored_check).collect();
    for c in &mut checks {
        fit_for(u, &mut c.checks);
    }
    Ok(checks)
}

/// What one recorded check found.
pub struct Recorded {
    pub check: Check,
    /// The host answered 429; with how long it asked to wait when it said.
    pub rate_limited: Option<crate::checks::RateLimited>,
}

/// A registered repository's clone URL, parsed once per check. It was canonical when it was
/// saved; one that no longer parses (its integration was removed from the configuration) fails
/// the check's url step like any other first failure.
pub(crate) fn parse_stored(st: &AppState, row: &RepositoryRow) -> std::result::Result<CloneUrl, UrlError> {
    CloneUrl::parse(&row.clone_url, &st.config.integrations)
}

/// Runs the check, then records it with the lease hand-back `lease` decides from the result
/// (owner and next due time), all in one transaction. Returns whether the lease was kept.
pub(crate) async fn run_and_record(
    st: &AppState,
    row: &RepositoryRow,
    url: &std::result::Result<CloneUrl, UrlError>,
    reason: CheckReason,
    lease: impl FnOnce(&Recorded) -> Option<(String, DateTime<Utc>)>,
) -> Result<(Recorded, Option<bool>), StoreError> {
    let (rec, finished) = run_unrecorded(st, row, url, reason, None, lease).await?;
    let kept = record_outcomes(st, vec![finished]).await.pop().unwrap_or(Ok(None))?;
    Ok((rec, kept))
}

/// A finished check of a registered repository that is still to be recorded: everything
/// [`record_outcomes`] keeps. The scheduler hands these to its batching recorder.
pub(crate) struct Finished {
    pub repository_id: i64,
    pub repository_name: String,
    /// `None`: checked anonymously (a public repository), so no authentication count.
    pub credential: Option<CredentialRow>,
    pub check: Check,
    pub checked_at: DateTime<Utc>,
    /// When the check read what it ran with (its credential): reasons to check again that
    /// arrived later keep the repository due.
    pub answers_since: DateTime<Utc>,
    pub took: Duration,
    pub reason: CheckReason,
    /// The lease to hand back: owner and next due time.
    pub lease: Option<(String, DateTime<Utc>)>,
    /// The branches the check read, kept as the repository's list.
    pub branches: Option<BranchList>,
}

/// The branch list a check read, as the store keeps it.
pub(crate) fn branch_list(out: &Outcome) -> Option<BranchList> {
    out.refs.as_ref().map(|refs| BranchList {
        default_branch: refs.default_branch.clone(),
        branches: refs
            .branches
            .iter()
            .map(|b| BranchEntry { name: b.name.clone(), commit: b.commit.clone() })
            .collect(),
    })
}

/// A credential and its opened secret, read once for the checks that use it (the scheduler
/// reads one for each credential of a leased batch).
pub(crate) struct ReadCredential {
    pub credential: CredentialRow,
    /// `None` when the secret did not open (logged; the credential step reports it).
    pub secret: Option<SecretString>,
    /// When it was read: a reason to check again that arrives after this (an edit of the
    /// credential) is not what a check with it answers.
    pub read_at: DateTime<Utc>,
}

/// Reads credential `id` and opens its secret, in one statement (see
/// `Store::credential_with_secret`).
pub(crate) async fn read_credential(st: &AppState, id: i64) -> Result<ReadCredential, StoreError> {
    let read_at = Utc::now();
    let (credential, secret) = st.store.credential_with_secret(id).await?;
    let secret = secret.map_err(|e| tracing::error!(credential = id, "cannot open credential secret: {e}")).ok();
    Ok(ReadCredential { credential, secret, read_at })
}

/// Runs the check and decides the lease hand-back, leaving the recording to the caller, who
/// must pass the [`Finished`] to [`record_outcomes`]. `read` is the repository's credential
/// read already (the scheduler's, for a batch); without it the credential is read here.
pub(crate) async fn run_unrecorded(
    st: &AppState,
    row: &RepositoryRow,
    url: &std::result::Result<CloneUrl, UrlError>,
    reason: CheckReason,
    read: Option<Arc<ReadCredential>>,
    lease: impl FnOnce(&Recorded) -> Option<(String, DateTime<Utc>)>,
) -> Result<(Recorded, Finished), StoreError> {
    let read = match (row.credential_id, read) {
        (Some(id), Some(r)) if r.credential.id == id => Some(r),
        (Some(id), _) => Some(Arc::new(read_credential(st, id).await?)),
        (None, _) => None,
    };
    let answers_since = read.as_ref().map_or_else(Utc::now, |r| r.read_at);
    let cred = read.as_ref().map(|r| r.credential.clone());
    let secret = read.as_ref().and_then(|r| r.secret.clone());
    st.instance.metrics.started();
    let checked_at = Utc::now();
    let (check, took, rate_limited, branches) = match url {
        Ok(url) => {
            let why = if cred.is_some() { REGISTERED_CREDENTIAL } else { REGISTERED_ANONYMOUS };
            let out = run_with_secret(st, url, cred.as_ref(), secret, Some(&row.default_branch), why).await;
            let branches = branch_list(&out);
            (out.check, out.duration, out.rate_limited, branches)
        }
        Err(e) => (crate::checks::url_refused(e), Duration::ZERO, None, None),
    };
    st.instance.metrics.ended();
    let rec = Recorded { check, rate_limited };
    let lease = lease(&rec);
    let finished = Finished {
        repository_id: row.id,
        repository_name: row.name.clone(),
        credential: cred,
        check: rec.check.clone(),
        checked_at,
        answers_since,
        took,
        reason,
        lease,
        branches,
    };
    Ok((rec, finished))
}

/// Keeps a finished check in one transaction: its history row, the credential's
/// authentication count (which pauses background checks at the threshold) and, for a
/// scheduled check, the lease handed back with the next due time; then this instance's
/// metrics. Returns whether the lease was still this instance's.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn record_outcome(
    st: &AppState,
    repository_id: i64,
    repository_name: &str,
    cred: Option<&CredentialRow>,
    check: &Check,
    checked_at: DateTime<Utc>,
    took: Duration,
    reason: CheckReason,
    lease: Option<(String, DateTime<Utc>)>,
    branches: Option<BranchList>,
) -> Result<Option<bool>, StoreError> {
    let finished = Finished {
        repository_id,
        repository_name: repository_name.to_owned(),
        credential: cred.cloned(),
        check: check.clone(),
        checked_at,
        answers_since: checked_at,
        took,
        reason,
        lease,
        branches,
    };
    record_outcomes(st, vec![finished]).await.pop().unwrap_or(Ok(None))
}

/// The one recording path: [`record_outcome`] for a batch of finished checks, kept in one
/// transaction (one commit instead of one per check), then each one's metrics and pause audit
/// as for a single check. When the batch cannot be written (a repository was deleted while it
/// was checked), each check is written alone, so one bad check costs no other its record.
/// Results come in the order of `items`: whether each lease was still this instance's.
pub(crate) async fn record_outcomes(st: &AppState, items: Vec<Finished>) -> Vec<Result<Option<bool>, StoreError>> {
    let inst = &st.instance;
    let now = Utc::now();
    let batch: Vec<OutcomeToRecord<'_>> = items.iter().map(|f| to_store(st, f, now)).collect();
    let results: Vec<Result<OutcomeRecorded, StoreError>> = match st.store.record_outcomes(&batch).await {
        Ok(done) => done.into_iter().map(Ok).collect(),
        Err(e) if batch.len() == 1 => vec![Err(e)],
        // Away for one, away for all: retrying each alone would wait on the pool once per check.
        Err(StoreError::Unavailable(why)) => batch.iter().map(|_| Err(StoreError::Unavailable(why.clone()))).collect(),
        Err(e) => {
            tracing::debug!(
                checks = batch.len(),
                "a batch of checks could not be recorded together ({e}); recording each alone"
            );
            let mut each = Vec::with_capacity(batch.len());
            for one in &batch {
                let done = st.store.record_outcomes(std::slice::from_ref(one)).await;
                each.push(done.and_then(|mut d| d.pop().ok_or_else(|| StoreError::Corrupt("no outcome".to_owned()))));
            }
            each
        }
    };
    let mut kept = Vec::with_capacity(items.len());
    for (f, done) in items.iter().zip(results) {
        let done = match done {
            Ok(d) => d,
            Err(e) => {
                kept.push(Err(e));
                continue;
            }
        };
        inst.metrics.check_finished(f.reason, CheckStatus::of(&f.check), f.took);
        if let Some(count) = done.auth.filter(|c| c.paused_now) {
            audit_pause(st, f, count).await;
        }
        kept.push(Ok(done.lease_kept));
    }
    kept
}

/// What the store keeps of a finished check.
fn to_store<'a>(st: &'a AppState, f: &'a Finished, now: DateTime<Utc>) -> OutcomeToRecord<'a> {
    // Without a credential there is nothing to pause: the authentication count is a credential's.
    let auth = f.credential.as_ref().zip(auth_verdict(&f.check)).map(|(cred, failed)| AuthResult {
        credential_id: cred.id,
        failed,
        pause_after: st.config.checks.pause_after_auth_failures,
        now,
    });
    let duration_ms = u64::try_from(f.took.as_millis()).unwrap_or(u64::MAX);
    OutcomeToRecord {
        repository_id: f.repository_id,
        check: NewCheck {
            check: &f.check,
            reason: f.reason,
            instance: &st.instance.instance_id,
            checked_at: f.checked_at,
            duration_ms,
        },
        auth,
        lease: f.lease.as_ref().map(|(o, n)| (o.as_str(), *n)),
        answers_since: f.answers_since,
        branches: f.branches.as_ref(),
    }
}

/// Logs, counts and audits a credential whose checks this failure paused.
async fn audit_pause(st: &AppState, f: &Finished, count: berth_store::AuthCount) {
    let Some(cred) = &f.credential else { return };
    let repository_name = &f.repository_name;
    st.instance.metrics.credential_paused();
    tracing::warn!(
        credential = cred.id,
        failures = count.failures,
        "background checks with this credential are paused after repeated authentication failures; edit the credential to resume"
    );
    let audit = NewAudit {
        actor: "berth".to_owned(),
        action: "credential.checks_paused".to_owned(),
        target_kind: "credential".to_owned(),
        target_id: Some(cred.id),
        target_name: cred.name.clone(),
        detail: format!(
            "{} authentication failures in a row (last on repository {repository_name:?}); background checks stop until the credential is edited",
            count.failures
        ),
        outcome: berth_proto::AuditOutcome::Ok.as_str().to_owned(),
        ..NewAudit::default()
    };
    if let Err(e) = st.store.audit(&audit).await {
        tracing::error!("cannot write the audit log: {e}");
    }
}

/// `Some(true)` when the host refused the credential, `Some(false)` when it accepted it,
/// `None` when the check never got as far as asking (a bad URL, DNS, connection, TLS).
fn auth_verdict(check: &Check) -> Option<bool> {
    let refused = check
        .checks
        .iter()
        .any(|s| s.status == StepStatus::Fail && matches!(s.code, Code::AuthFailed | Code::TokenExpired));
    if refused {
        return Some(true);
    }
    let accepted = check
        .checks
        .iter()
        .any(|s| s.status == StepStatus::Pass && matches!(s.step, StepName::ApiCredential | StepName::GitDiscovery));
    accepted.then_some(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_core::Step;

    #[test]
    fn next_due_stays_within_the_jitter() {
        let now = Utc::now();
        for _ in 0..200 {
            let d = (next_due(now, Duration::from_secs(3600), 0.1) - now).num_seconds();
            assert!((3240..=3960).contains(&d), "{d}");
        }
        assert_eq!((next_due(now, Duration::from_secs(60), 0.0) - now).num_seconds(), 60);
    }

    #[test]
    fn authentication_verdicts() {
        let refused = Check::completed(vec![Step::fail(StepName::GitDiscovery, Code::AuthFailed, "no", "fix")]);
        assert_eq!(auth_verdict(&refused), Some(true));
        let expired = Check::completed(vec![Step::fail(StepName::ApiCredential, Code::TokenExpired, "old", "renew")]);
        assert_eq!(auth_verdict(&expired), Some(true));
        let network = Check::completed(vec![Step::fail(StepName::Dns, Code::DnsFailed, "no", "fix")]);
        assert_eq!(auth_verdict(&network), None);
        let fine = Check::completed(vec![Step::pass(StepName::GitDiscovery, "ok")]);
        assert_eq!(auth_verdict(&fine), Some(false));
    }
}
