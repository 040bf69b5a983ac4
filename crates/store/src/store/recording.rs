//! Recording finished checks: each check's history row, its authentication verdict (which
//! pauses a credential's background checks at the threshold), its repository's status and the
//! lease handed back, one transaction for a whole batch (`Store::record_outcomes`, the one path
//! every check is recorded through), written with multi-row statements (`RecordSql`).

use super::mappers::{json_text, to_i64, warn_codes};
use super::repositories::{refresh_status_sql, shown_status_sql};
use super::*;
use berth_core::{CheckStatus, Code};
use chrono::{DateTime, Utc};
use dialect::Cols;
use std::collections::HashMap;

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
/// The most rows one of recording's multi-row statements writes or reads (the branch rows'
/// statements have their own, larger `branches::ROWS_PER_STATEMENT`).
const RECORD_ROWS_PER_STATEMENT: usize = 64;

/// Splits `items` into the row counts of recording's `INSERT`s, whose rows must not repeat: 64,
/// 32, …, 1. A batch of any size takes a few statements, and the databases' prepared-statement
/// caches see seven texts, not one per batch size.
fn statement_chunks<T>(mut items: &[T]) -> Vec<&[T]> {
    let mut chunks = Vec::new();
    while !items.is_empty() {
        let n =
            if items.len() >= RECORD_ROWS_PER_STATEMENT { RECORD_ROWS_PER_STATEMENT } else { 1 << items.len().ilog2() };
        let (chunk, rest) = items.split_at(n);
        chunks.push(chunk);
        items = rest;
    }
    chunks
}

/// Splits `items` into chunks of at most 64 for statements whose rows may repeat (a list of
/// ids to read, an `UPDATE … FROM (VALUES …)` with the same values twice), each padded to a
/// power of two by repeating its last item: one statement for a batch of up to 64, from seven
/// texts.
fn padded_chunks<T>(items: &[T]) -> Vec<Vec<&T>> {
    items
        .chunks(RECORD_ROWS_PER_STATEMENT)
        .map(|chunk| {
            let mut padded: Vec<&T> = chunk.iter().collect();
            if let Some(last) = chunk.last() {
                padded.resize(chunk.len().next_power_of_two(), last);
            }
            padded
        })
        .collect()
}

/// `$from`, `$from+1`, … for `n` parameters, comma-separated.
pub(super) fn marks(from: usize, n: usize) -> String {
    (from..from + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// The texts of recording's multi-row statements, for `n` rows each.
struct RecordSql {
    dialect: Dialect,
}

impl RecordSql {
    /// The checks' history rows, 10 parameters a row; returns each one's id with its repository.
    fn insert_checks(&self, n: usize) -> String {
        let rows: Vec<String> = (0..n).map(|i| format!("({})", marks(10 * i + 1, 10))).collect();
        format!(
            "INSERT INTO checks (repository_id, ok, status, code, reason, instance, checked_at, duration_ms, steps, warn_codes) \
             VALUES {} RETURNING id, repository_id",
            rows.join(", ")
        )
    }

    /// The repositories `$1`…`$n`, locked (on PostgreSQL, in id order, for no key update: the
    /// history rows' foreign key holds a key-share lock that this must not wait on).
    fn locked_rows(&self, n: usize) -> String {
        let lock = match self.dialect {
            Dialect::Postgres => "FOR NO KEY UPDATE OF r",
            Dialect::Sqlite => "",
        };
        format!(
            "SELECT r.id, r.check_status, r.name, r.credential_id, r.lease_owner, c.name AS credential_name \
             FROM repositories r LEFT JOIN credentials c ON c.id = r.credential_id WHERE r.id IN ({}) ORDER BY r.id {lock}",
            marks(1, n)
        )
    }

    /// Writes each recorded check's status on its repository and the status it shows (see
    /// [`shown_status_sql`]), from rows of (repository id, check status) or, with `finish`,
    /// (repository id, check status, next due time, answers since): then the lease is handed
    /// back too, due again at the next due time (the caller holds the rows' locks and has read
    /// that the leases are its own). A reason to check again that arrived after the check read
    /// what it ran with (a push, "check all now", an edit of its credential) is not what this
    /// check answered, so the repository stays due for it instead of waiting for the schedule.
    fn record_checks(&self, finish: bool, n: usize) -> String {
        // PostgreSQL types a VALUES list's parameters from their casts; SQLite needs none (and
        // would turn a timestamp cast to a number).
        let types: &[&str] =
            if finish { &["bigint", "text", "timestamptz", "timestamptz"] } else { &["bigint", "text"] };
        let row = |i: usize| {
            let cols: Vec<String> = types
                .iter()
                .enumerate()
                .map(|(k, ty)| match self.dialect {
                    Dialect::Postgres => format!("${}::{ty}", types.len() * i + k + 1),
                    Dialect::Sqlite => format!("${}", types.len() * i + k + 1),
                })
                .collect();
            format!("({})", cols.join(", "))
        };
        let rows: Vec<String> = (0..n).map(row).collect();
        let status = format!("check_status = v.column2, status = {}", shown_status_sql("v.column2"));
        let lease = if finish {
            ", lease_owner = NULL, lease_until = NULL, \
             next_check_at = CASE WHEN due_reason IS NOT NULL AND next_check_at > v.column4 THEN next_check_at ELSE v.column3 END, \
             due_reason = CASE WHEN due_reason IS NOT NULL AND next_check_at > v.column4 THEN due_reason ELSE NULL END"
        } else {
            ""
        };
        format!(
            "UPDATE repositories SET {status}{lease} FROM (VALUES {}) AS v WHERE repositories.id = v.column1",
            rows.join(", ")
        )
    }
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
        // PostgreSQL: the credentials whose counts this batch writes are locked first, in id
        // order, the order a credential edit takes (the credential, then its repositories).
        // Recording used to lock a repository and then its credential, and the two deadlocked.
        let mut credentials: Vec<Id> = items.iter().filter_map(|i| i.auth.map(|a| a.credential_id)).collect();
        credentials.sort_unstable();
        credentials.dedup();
        let dialect = self.dialect();
        if dialect == Dialect::Sqlite {
            credentials.clear(); // one writer at a time: nothing to order
        }
        // Runs of checks of distinct repositories: each run's rows are written by a few
        // multi-row statements (see [`RecordSql`]); a repository checked twice in a batch starts
        // a new run, so its second check is written over its first as if they came one by one.
        let mut runs: Vec<&[Row<'_>]> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut start = 0;
        for (i, r) in rows.iter().enumerate() {
            if !seen.insert(r.item.repository_id) {
                runs.push(&rows[start..i]);
                start = i;
                seen.clear();
                seen.insert(r.item.repository_id);
            }
        }
        runs.push(&rows[start..]);
        let sql = RecordSql { dialect };
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
            for run in runs {
                // The history rows first (on SQLite the first write takes the database's write
                // lock, so the reads below see nothing change under them).
                let mut check_ids: HashMap<Id, Id> = HashMap::with_capacity(run.len());
                for chunk in statement_chunks(run) {
                    let text = sql.insert_checks(chunk.len());
                    let mut q = sqlx::query(&text);
                    for r in chunk {
                        let check = &r.item.check;
                        q = q
                            .bind(r.item.repository_id)
                            .bind(check.check.ok)
                            .bind(r.status.as_str())
                            .bind(r.code.as_str())
                            .bind(check.reason.as_str())
                            .bind(check.instance)
                            .bind(check.checked_at)
                            .bind(to_i64(check.duration_ms))
                            .bind(&r.steps)
                            .bind(&r.warn_codes);
                    }
                    for row in q.fetch_all(&mut *tx).await? {
                        check_ids.insert(row.i64("repository_id")?, row.i64("id")?);
                    }
                }
                // The rows under their locks, taken in id order: the status before each check
                // says whether it is a transition that people are told about, and the lease
                // owner whether the lease is still this instance's. A repository without a
                // credential (public, anonymous) has its transitions told too: hence the outer
                // join.
                let mut ids: Vec<Id> = run.iter().map(|r| r.item.repository_id).collect();
                ids.sort_unstable();
                let mut before = HashMap::with_capacity(run.len());
                for chunk in padded_chunks(&ids) {
                    let text = sql.locked_rows(chunk.len());
                    let mut q = sqlx::query(&text);
                    for id in chunk {
                        q = q.bind(*id);
                    }
                    for row in q.fetch_all(&mut *tx).await? {
                        before.insert(row.i64("id")?, row);
                    }
                }
                // Authentication counts, in the order of the checks. A pause that began or
                // ended changes the shown status of all the credential's repositories.
                let mut pause_changed: Vec<Id> = Vec::new();
                let mut auths = Vec::with_capacity(run.len());
                for r in run {
                    let item = r.item;
                    let auth = match item.auth {
                        None => None,
                        Some(a) if !a.failed => {
                            if at_rest.get(&a.credential_id) != Some(&true) {
                                let n = sqlx::query(AUTH_OK_SQL)
                                    .bind(a.credential_id)
                                    .execute(&mut *tx)
                                    .await?
                                    .rows_affected();
                                if n > 0 {
                                    pause_changed.push(a.credential_id);
                                }
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
                                    if count.paused_now {
                                        pause_changed.push(a.credential_id);
                                    }
                                    Some(count)
                                }
                                None => None, // edited since the check read it: not counted
                            }
                        }
                    };
                    auths.push(auth);
                }
                // One write of each row for the check's status, the shown status and the lease,
                // and one statement for many rows: on PostgreSQL each row write is a row version
                // with its index entries, and each statement a run of the counting triggers.
                let mut lease_kept = Vec::with_capacity(run.len());
                let mut finishing = Vec::new();
                let mut staying = Vec::new();
                for r in run {
                    let item = r.item;
                    let owner =
                        before.get(&item.repository_id).map(|b| b.opt_str("lease_owner")).transpose()?.flatten();
                    let kept = item.lease.map(|(o, _)| owner.as_deref() == Some(o));
                    lease_kept.push(kept);
                    match (item.lease, kept) {
                        (Some((_, next)), Some(true)) => finishing.push((r, next)),
                        _ => staying.push(r),
                    }
                }
                for chunk in padded_chunks(&finishing) {
                    let text = sql.record_checks(true, chunk.len());
                    let mut q = sqlx::query(&text);
                    for (r, next) in chunk {
                        q = q.bind(r.item.repository_id).bind(r.status.as_str()).bind(*next).bind(r.item.answers_since);
                    }
                    q.execute(&mut *tx).await?;
                }
                for chunk in padded_chunks(&staying) {
                    let text = sql.record_checks(false, chunk.len());
                    let mut q = sqlx::query(&text);
                    for r in chunk {
                        q = q.bind(r.item.repository_id).bind(r.status.as_str());
                    }
                    q.execute(&mut *tx).await?;
                }
                pause_changed.sort_unstable();
                pause_changed.dedup();
                for cid in pause_changed {
                    sqlx::query(&refresh_status_sql("credential_id = $1")).bind(cid).execute(&mut *tx).await?;
                }
                // Branch lists, against the stored digests read after the rows' locks (a push
                // that waited on a lock has written its list by then).
                let mut listed: Vec<Id> =
                    run.iter().filter(|r| r.item.branches.is_some()).map(|r| r.item.repository_id).collect();
                listed.sort_unstable();
                let mut stored: HashMap<Id, (String, DateTime<Utc>)> = HashMap::with_capacity(listed.len());
                for chunk in padded_chunks(&listed) {
                    let text = super::branches::stored_digests_sql(chunk.len());
                    let mut q = sqlx::query(&text);
                    for id in chunk {
                        q = q.bind(*id);
                    }
                    for row in q.fetch_all(&mut *tx).await? {
                        stored.insert(row.i64("repository_id")?, (row.str("digest")?, row.ts("updated_at")?));
                    }
                }
                for r in run {
                    let (item, check) = (r.item, &r.item.check);
                    if let Some(list) = item.branches {
                        // Never over a list a host's push wrote after this check began (see the macro).
                        let head = stored.remove(&item.repository_id);
                        write_branch_list!(tx, item.repository_id, list, "check", check.checked_at, head);
                    }
                }
                for ((r, auth), lease_kept) in run.iter().zip(auths).zip(lease_kept) {
                    let (item, check) = (r.item, &r.item.check);
                    if let Some(b) = before.get(&item.repository_id) {
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
                    let check_id = check_ids
                        .get(&item.repository_id)
                        .copied()
                        .ok_or_else(|| StoreError::Corrupt("a recorded check returned no id".to_owned()))?;
                    done.push(OutcomeRecorded { check_id, auth, lease_kept });
                }
            }
            tx.commit().await?;
            Ok(done)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_split_into_power_of_two_statements_of_at_most_64_rows() {
        let sizes = |n: usize| statement_chunks(&vec![0u8; n]).iter().map(|c| c.len()).collect::<Vec<_>>();
        assert!(sizes(0).is_empty());
        assert_eq!(sizes(1), [1]);
        assert_eq!(sizes(13), [8, 4, 1]);
        assert_eq!(sizes(64), [64]);
        assert_eq!(sizes(130), [64, 64, 2]);
        let padded = |n: usize| {
            let items: Vec<usize> = (0..n).collect();
            padded_chunks(&items).iter().map(|c| c.iter().map(|i| **i).collect::<Vec<_>>()).collect::<Vec<_>>()
        };
        assert!(padded(0).is_empty());
        assert_eq!(padded(1), [vec![0]]);
        assert_eq!(padded(5), [vec![0, 1, 2, 3, 4, 4, 4, 4]]);
        assert_eq!(padded(66).iter().map(Vec::len).collect::<Vec<_>>(), [64, 2]);
    }

    #[test]
    fn each_row_of_a_multi_row_statement_has_its_own_parameters() {
        let pg = RecordSql { dialect: Dialect::Postgres };
        let sql = pg.record_checks(true, 2);
        assert!(sql.contains("($1::bigint, $2::text, $3::timestamptz, $4::timestamptz), ($5::bigint"), "{sql}");
        let lite = RecordSql { dialect: Dialect::Sqlite };
        assert!(lite.record_checks(false, 2).contains("VALUES ($1, $2), ($3, $4))"));
        assert!(lite.insert_checks(2).contains("($11, $12, $13, $14, $15, $16, $17, $18, $19, $20) RETURNING"));
        assert!(pg.locked_rows(3).contains("IN ($1, $2, $3) ORDER BY r.id FOR NO KEY UPDATE OF r"));
    }
}
