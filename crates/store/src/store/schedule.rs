//! The background-check schedule: when each repository is due and which instance holds its
//! lease. Finished checks hand their leases back through `recording.rs`.
//!
//! Several instances share one database. A due check is taken with a lease (owner and
//! deadline) in one statement, so exactly one instance runs it; on PostgreSQL the candidates
//! are locked with `FOR UPDATE SKIP LOCKED`, so instances never wait on each other, and on
//! SQLite the statement runs under the database's single write lock. An instance that dies
//! mid-check leaves a lease whose deadline passes, and the check becomes due again for all.

use super::mappers::{repository_from_row, REPOSITORY_COLUMNS};
use super::*;
use chrono::{DateTime, Utc};

const FINISH_LEASE_SQL: &str = "UPDATE repositories SET lease_owner = NULL, lease_until = NULL, next_check_at = $1, \
     due_reason = NULL WHERE id = $2 AND lease_owner = $3";

impl Store {
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
