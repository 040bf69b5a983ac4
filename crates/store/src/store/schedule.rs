//! The background-check schedule: when each repository is due, which instance holds its lease,
//! and the authentication-failure count that pauses polling for a credential.
//!
//! Several instances share one database. A due check is taken with a lease (owner and
//! deadline) in one statement, so exactly one instance runs it; on PostgreSQL the candidates
//! are locked with `FOR UPDATE SKIP LOCKED`, so instances never wait on each other, and on
//! SQLite the statement runs under the database's single write lock. An instance that dies
//! mid-check leaves a lease whose deadline passes, and the check becomes due again for all.

use super::mappers::{json_text, repository_from_row, to_i64, warn_codes, REPOSITORY_COLUMNS};
use super::repositories::{refresh_status_sql, shown_status_sql};
use super::*;
use berth_core::{CheckStatus, Code};
use chrono::{DateTime, Utc};
use dialect::Cols;
use std::collections::HashMap;
use std::sync::LazyLock;

/// What one authentication result did to a credential's failure count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthCount {
    pub failures: i64,
    /// True when this failure is the one that paused background checks.
    pub paused_now: bool,
}

/// An authentication verdict to count with a recorded check.
#[derive(Debug, Clone, Copy)]
pub struct AuthResult {
    pub credential_id: Id,
    pub failed: bool,
    pub pause_after: i64,
    pub now: DateTime<Utc>,
}

/// What [`Store::record_outcome`] did besides keeping the check.
#[derive(Debug, Clone, Copy)]
pub struct OutcomeRecorded {
    pub check_id: Id,
    pub auth: Option<AuthCount>,
    /// Whether the lease was still this instance's (when one was handed back).
    pub lease_kept: Option<bool>,
}

const AUTH_OK_SQL: &str = "UPDATE credentials SET auth_failures = 0, checks_paused_at = NULL \
     WHERE id = $1 AND (auth_failures <> 0 OR checks_paused_at IS NOT NULL)";
/// Counts an authentication failure of a check that read credential `$1` at `$4`; not one
/// that read it before its last edit (a new token, which also reset the count): that failure
/// was the old token's, and counting it could pause the credential just put right.
const AUTH_FAILED_SQL: &str = "UPDATE credentials SET auth_failures = auth_failures + 1, checks_paused_at = CASE \
     WHEN checks_paused_at IS NULL AND auth_failures + 1 >= $2 THEN $3 ELSE checks_paused_at END \
     WHERE id = $1 AND updated_at <= $4 RETURNING auth_failures, checks_paused_at";
const FINISH_LEASE_SQL: &str = "UPDATE repositories SET lease_owner = NULL, lease_until = NULL, next_check_at = $1, \
     due_reason = NULL WHERE id = $2 AND lease_owner = $3";
/// Writes a recorded check's status `$1` on repository `$2` and the status it shows (see
/// [`shown_status_sql`]); with `finish`, also hands back the lease of a check that answers
/// from `$4`, due again at `$3` (the caller holds the row's lock and has read that the lease
/// is its own). A reason to check again that arrived while it ran (a push, "check all now", an
/// edit of its credential) is not what this check answered, so it stays due for it instead of
/// waiting for the schedule.
fn record_check_sql(finish: bool) -> &'static str {
    static SQL: LazyLock<[String; 2]> = LazyLock::new(|| {
        let status = format!("UPDATE repositories SET check_status = $1, status = {}", shown_status_sql("$1"));
        let lease = ", lease_owner = NULL, lease_until = NULL, \
             next_check_at = CASE WHEN due_reason IS NOT NULL AND next_check_at > $4 THEN next_check_at ELSE $3 END, \
             due_reason = CASE WHEN due_reason IS NOT NULL AND next_check_at > $4 THEN due_reason ELSE NULL END";
        [format!("{status} WHERE id = $2"), format!("{status}{lease} WHERE id = $2")]
    });
    &SQL[usize::from(finish)]
}

fn auth_count(row: Option<&impl Cols>, pause_after: i64) -> Result<AuthCount> {
    let Some(row) = row else { return Err(StoreError::NotFound(Entity::Credential)) };
    let failures = row.i64("auth_failures")?;
    let paused_at = row.opt_ts("checks_paused_at")?;
    // The count rises one at a time, so the pause began with this failure exactly when the
    // count reached the threshold.
    Ok(AuthCount { failures, paused_now: paused_at.is_some() && failures == pause_after.max(1) })
}

/// One finished check to keep with [`Store::record_outcomes`].
pub struct OutcomeToRecord<'a> {
    pub repository_id: Id,
    pub check: NewCheck<'a>,
    pub auth: Option<AuthResult>,
    /// The lease to hand back: its owner and the next due time.
    pub lease: Option<(&'a str, DateTime<Utc>)>,
    /// When the check read what it ran with (at the latest when it began): a reason to check
    /// again that arrived later keeps the repository due when the lease is handed back.
    pub answers_since: DateTime<Utc>,
    /// The branch list the check read, kept as the repository's (none when it read none).
    pub branches: Option<&'a super::branches::BranchList>,
}

/// The event of a check that moved a repository between passing (ok or warn) and failing:
/// `repository.failed` or `repository.recovered`; none for any other change (the first
/// check of a new repository, ok to warn).
fn repository_transition(
    old: Option<CheckStatus>,
    new: CheckStatus,
    check: &berth_core::Check,
    (id, name, credential_id): &(Id, String, Option<Id>),
) -> Option<NewEvent> {
    let passing = |s: CheckStatus| matches!(s, CheckStatus::Ok | CheckStatus::Warn);
    let kind = match (old?, new) {
        (o, CheckStatus::Fail) if passing(o) => "repository.failed",
        (CheckStatus::Fail, n) if passing(n) => "repository.recovered",
        _ => return None,
    };
    let failure = check.first_failure();
    Some(NewEvent {
        kind: kind.to_owned(),
        subject: "repository".to_owned(),
        subject_id: Some(*id),
        subject_name: name.clone(),
        credential_id: *credential_id,
        old_status: old.map(|s| s.as_str().to_owned()),
        new_status: Some(new.as_str().to_owned()),
        code: failure.map(|f| f.code.as_str().to_owned()),
        message: failure.map(|f| f.message.clone()),
        remedy: failure.map(|f| f.remedy.clone()),
        details: String::new(),
    })
}

/// The event of a check whose authentication failure paused its credential's checks.
fn checks_paused(credential_id: Id, credential_name: &str, check: &berth_core::Check) -> NewEvent {
    let failure = check.first_failure();
    NewEvent {
        kind: "credential.checks_paused".to_owned(),
        subject: "credential".to_owned(),
        subject_id: Some(credential_id),
        subject_name: credential_name.to_owned(),
        credential_id: Some(credential_id),
        old_status: Some("active".to_owned()),
        new_status: Some("paused".to_owned()),
        code: failure.map(|f| f.code.as_str().to_owned()),
        message: failure.map(|f| f.message.clone()),
        remedy: Some(
            "renew or correct the credential's token and save it: an edit lifts the pause and checks its repositories"
                .to_owned(),
        ),
        details: String::new(),
    }
}

impl Store {
    /// Keeps a finished check, counts its authentication verdict and hands its lease back, in
    /// one transaction: no state where the history says one thing and the schedule or the pause
    /// another.
    pub async fn record_outcome(
        &self,
        repository_id: Id,
        check: &NewCheck<'_>,
        auth: Option<AuthResult>,
        lease: Option<(&str, DateTime<Utc>)>,
    ) -> Result<OutcomeRecorded> {
        let one = OutcomeToRecord {
            repository_id,
            check: NewCheck { ..*check },
            auth,
            lease,
            answers_since: check.checked_at,
            branches: None,
        };
        let mut done = self.record_outcomes(std::slice::from_ref(&one)).await?;
        done.pop().ok_or_else(|| StoreError::Corrupt("no outcome recorded".to_owned()))
    }

    /// [`Store::record_outcome`] for many checks in one transaction, all or none: one commit
    /// (one disk flush on SQLite, which runs with full sync) for a whole batch of finished
    /// checks instead of one each, which is what bounded a background sweep. Results come in
    /// the order of `items`; authentication counts add up in that order too.
    pub async fn record_outcomes(&self, items: &[OutcomeToRecord<'_>]) -> Result<Vec<OutcomeRecorded>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        struct Row<'r> {
            code: Code,
            status: CheckStatus,
            steps: String,
            warn_codes: String,
            item: &'r OutcomeToRecord<'r>,
        }
        let rows = items
            .iter()
            .map(|item| {
                let c = item.check.check;
                Ok(Row {
                    code: c.first_failure().map_or(Code::Ok, |s| s.code),
                    status: CheckStatus::of(c),
                    steps: json_text(&c.checks)?,
                    warn_codes: warn_codes(c),
                    item,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let lock_row = match self.dialect() {
            Dialect::Postgres => "FOR UPDATE OF r",
            Dialect::Sqlite => "",
        };
        // PostgreSQL: the credentials whose counts this batch writes are locked first, in id
        // order, the order a credential edit takes (the credential, then its repositories).
        // Recording used to lock a repository and then its credential, and the two deadlocked.
        let mut credentials: Vec<Id> = items.iter().filter_map(|i| i.auth.map(|a| a.credential_id)).collect();
        credentials.sort_unstable();
        credentials.dedup();
        if self.dialect() == Dialect::Sqlite {
            credentials.clear(); // one writer at a time: nothing to order
        }
        on_pool!(&self.db, |pool| {
            let mut tx = pool.begin().await?;
            // The credentials read under their locks, whose counts are at rest (no failures, no
            // pause): a passing check of theirs has nothing to reset, and that statement is
            // skipped while it stays so. On SQLite, where nothing is locked first, a credential's
            // first passing check in the batch runs it.
            let mut at_rest: HashMap<Id, bool> = HashMap::new();
            for id in &credentials {
                let row = sqlx::query(
                    "SELECT auth_failures, checks_paused_at FROM credentials WHERE id = $1 FOR NO KEY UPDATE",
                )
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
                if let Some(row) = row {
                    at_rest.insert(*id, row.i64("auth_failures")? == 0 && row.opt_ts("checks_paused_at")?.is_none());
                }
            }
            let mut done = Vec::with_capacity(rows.len());
            for r in &rows {
                let (item, check) = (r.item, &r.item.check);
                let check_id: Id = sqlx::query_scalar(
                    "INSERT INTO checks (repository_id, ok, status, code, reason, instance, checked_at, duration_ms, steps, warn_codes) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
                )
                .bind(item.repository_id)
                .bind(check.check.ok)
                .bind(r.status.as_str())
                .bind(r.code.as_str())
                .bind(check.reason.as_str())
                .bind(check.instance)
                .bind(check.checked_at)
                .bind(to_i64(check.duration_ms))
                .bind(&r.steps)
                .bind(&r.warn_codes)
                .fetch_one(&mut *tx)
                .await?;
                // The status before this check, read under the row's lock (after the insert, so
                // SQLite's transaction already holds the write lock), says whether the check is a
                // transition that people are told about. A repository without a credential
                // (public, anonymous) has its transitions told too: hence the outer join.
                let before = sqlx::query(&format!(
                    "SELECT r.check_status, r.name, r.credential_id, r.lease_owner, c.name AS credential_name \
                     FROM repositories r LEFT JOIN credentials c ON c.id = r.credential_id WHERE r.id = $1 {lock_row}"
                ))
                .bind(item.repository_id)
                .fetch_optional(&mut *tx)
                .await?;
                // Whether the credential's pause may have changed: then all its repositories'
                // statuses are rewritten, else only this one's.
                let mut pause_changed = None;
                let auth = match item.auth {
                    None => None,
                    Some(a) if !a.failed => {
                        if at_rest.get(&a.credential_id) != Some(&true) {
                            let n =
                                sqlx::query(AUTH_OK_SQL).bind(a.credential_id).execute(&mut *tx).await?.rows_affected();
                            pause_changed = (n > 0).then_some(a.credential_id);
                            // Reset inside this transaction, which holds the row (or, on
                            // SQLite, the database's write lock): at rest until it changes.
                            at_rest.insert(a.credential_id, true);
                        }
                        Some(AuthCount { failures: 0, paused_now: false })
                    }
                    Some(a) => {
                        at_rest.insert(a.credential_id, false);
                        let row = sqlx::query(AUTH_FAILED_SQL)
                            .bind(a.credential_id)
                            .bind(a.pause_after)
                            .bind(a.now)
                            .bind(item.answers_since)
                            .fetch_optional(&mut *tx)
                            .await?;
                        match row {
                            Some(row) => {
                                let count = auth_count(Some(&row), a.pause_after)?;
                                pause_changed = count.paused_now.then_some(a.credential_id);
                                Some(count)
                            }
                            None => None, // edited since the check read it: not counted
                        }
                    }
                };
                // The lease is still this instance's when the row, read under its lock, says so.
                let lease_owner = before.as_ref().map(|b| b.opt_str("lease_owner")).transpose()?.flatten();
                let lease_kept = item.lease.map(|(owner, _)| lease_owner.as_deref() == Some(owner));
                // One write of the row for the check's status, the shown status and the lease:
                // on PostgreSQL each statement is a row version with its index entries and a run
                // of the counting triggers, and three of them per check bounded the sweep.
                let finish = match (item.lease, lease_kept) {
                    (Some((_, next)), Some(true)) => Some(next),
                    _ => None,
                };
                let mut q =
                    sqlx::query(record_check_sql(finish.is_some())).bind(r.status.as_str()).bind(item.repository_id);
                if let Some(next) = finish {
                    q = q.bind(next).bind(item.answers_since);
                }
                q.execute(&mut *tx).await?;
                // A pause that began or ended changes the shown status of all the credential's
                // repositories (this one's is written already).
                if let Some(cid) = pause_changed {
                    sqlx::query(&refresh_status_sql("credential_id = $1")).bind(cid).execute(&mut *tx).await?;
                }
                if let Some(list) = item.branches {
                    // Never over a list a host's push wrote after this check began (see the macro).
                    write_branch_list!(tx, item.repository_id, list, "check", check.checked_at);
                }
                if let Some(b) = &before {
                    let old = CheckStatus::parse(&b.str("check_status")?);
                    let repo = (item.repository_id, b.str("name")?, b.opt_i64("credential_id")?);
                    if let Some(event) = repository_transition(old, r.status, check.check, &repo) {
                        enqueue_event!(tx, &event, check.checked_at, None);
                    }
                    if let (Some(cid), true) = (repo.2, auth.is_some_and(|a| a.paused_now)) {
                        let event = checks_paused(cid, &b.str("credential_name")?, check.check);
                        enqueue_event!(tx, &event, check.checked_at, None);
                    }
                }
                done.push(OutcomeRecorded { check_id, auth, lease_kept });
            }
            tx.commit().await?;
            Ok(done)
        })
    }

    /// Leases up to `limit` due checks to `owner` until `lease_until` and returns their
    /// repositories. Due: `next_check_at` has passed (or was never set), no live lease, and
    /// the credential's checks are not paused.
    pub async fn lease_due_checks(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<RepositoryRow>> {
        let lock = match self.dialect() {
            Dialect::Postgres => "FOR UPDATE OF r SKIP LOCKED",
            Dialect::Sqlite => "",
        };
        // The candidates are picked once (a materialised CTE): PostgreSQL may otherwise run a
        // `LIMIT` subquery of `IN (…)` more than once in one statement and lease more than
        // `limit`, as the deliveries' lease already guards against.
        let sql = format!(
            "WITH picked AS MATERIALIZED ( \
                 SELECT r.id FROM repositories r LEFT JOIN credentials c ON c.id = r.credential_id \
                 WHERE (r.next_check_at IS NULL OR r.next_check_at <= $3) \
                 AND (r.lease_until IS NULL OR r.lease_until < $3) AND c.checks_paused_at IS NULL \
                 ORDER BY r.next_check_at IS NOT NULL, r.next_check_at, r.id LIMIT $4 {lock}) \
             UPDATE repositories SET lease_owner = $1, lease_until = $2 WHERE id IN (SELECT id FROM picked) \
             AND (lease_until IS NULL OR lease_until < $3) RETURNING id"
        );
        let ids: Vec<Id> = on_pool!(&self.db, |pool| {
            sqlx::query_scalar(&sql).bind(owner).bind(lease_until).bind(now).bind(limit.max(0)).fetch_all(pool).await?
        });
        self.repositories_by_ids(&ids).await
    }

    async fn repositories_by_ids(&self, ids: &[Id]) -> Result<Vec<RepositoryRow>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // Ids are integers from the database, so writing them into the text is safe.
        let list = ids.iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
        on_pool!(&self.db, |pool| {
            let rows = sqlx::query(&format!("{REPOSITORY_COLUMNS} WHERE r.id IN ({list}) ORDER BY r.id"))
                .fetch_all(pool)
                .await?;
            rows.iter().map(repository_from_row).collect()
        })
    }

    /// Ends `owner`'s lease on a repository and sets its next check. Returns false when the
    /// lease was no longer `owner`'s (it expired and another instance took the check over):
    /// then the schedule is left to that instance.
    pub async fn finish_lease(&self, repository_id: Id, owner: &str, next_check_at: DateTime<Utc>) -> Result<bool> {
        on_pool!(&self.db, |pool| {
            let n = sqlx::query(FINISH_LEASE_SQL)
                .bind(next_check_at)
                .bind(repository_id)
                .bind(owner)
                .execute(pool)
                .await?
                .rows_affected();
            Ok(n == 1)
        })
    }

    /// Gives back `owner`'s leases without checking (shutting down, host backing off): the
    /// checks are due again at once for every instance, or at `not_before` when given.
    pub async fn release_leases(&self, owner: &str, ids: &[Id], not_before: Option<DateTime<Utc>>) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        // One statement for the lot (a scheduler gives back a whole leased batch at shutdown).
        // Ids are integers, so writing them into the text is safe.
        let list = ids.iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
        let sql = format!(
            "UPDATE repositories SET lease_owner = NULL, lease_until = NULL, \
             next_check_at = COALESCE($1, next_check_at) WHERE id IN ({list}) AND lease_owner = $2"
        );
        on_pool!(&self.db, |pool| {
            sqlx::query(&sql).bind(not_before).bind(owner).execute(pool).await?;
            Ok(())
        })
    }

    /// Makes every repository due at `at` ("check all now").
    pub async fn schedule_all_checks(&self, at: DateTime<Utc>) -> Result<u64> {
        on_pool!(&self.db, |pool| {
            Ok(sqlx::query("UPDATE repositories SET next_check_at = $1, due_reason = 'manual'")
                .bind(at)
                .execute(pool)
                .await?
                .rows_affected())
        })
    }

    /// Sets when one repository is checked next (after a check a person asked for).
    pub async fn set_next_check(&self, repository_id: Id, at: DateTime<Utc>) -> Result<()> {
        on_pool!(&self.db, |pool| {
            sqlx::query("UPDATE repositories SET next_check_at = $1, due_reason = NULL WHERE id = $2")
                .bind(at)
                .bind(repository_id)
                .execute(pool)
                .await?;
            Ok(())
        })
    }
}
