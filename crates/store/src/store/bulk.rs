//! Counts for measuring large installations: the fleet benchmark counts every repository's
//! checks (and each instance's) to prove a sweep checked each repository exactly once.

use super::*;
use dialect::Cols;

/// How many checks one repository has above a check id, and how many of them failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckCount {
    pub repository_id: Id,
    pub checks: i64,
    pub failed: i64,
}

impl Store {
    /// The newest check id (0 with no checks): a mark to count later checks from.
    pub async fn last_check_id(&self) -> Result<Id> {
        on_pool!(&self.db, |pool| {
            Ok(sqlx::query_scalar::<_, Option<Id>>("SELECT MAX(id) FROM checks").fetch_one(pool).await?.unwrap_or(0))
        })
    }

    /// How many checks were recorded after check `after_id`: a range of the primary key, cheap
    /// enough to poll while a sweep runs without weighing on what it measures.
    pub async fn checks_since(&self, after_id: Id) -> Result<i64> {
        on_pool!(&self.db, |pool| {
            Ok(sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM checks WHERE id > $1")
                .bind(after_id)
                .fetch_one(pool)
                .await?)
        })
    }

    /// Per repository, the checks recorded after check `after_id` and how many of them failed;
    /// repositories without such checks are left out.
    pub async fn check_counts_since(&self, after_id: Id) -> Result<Vec<CheckCount>> {
        on_pool!(&self.db, |pool| {
            let rows = sqlx::query(
                "SELECT repository_id, COUNT(*) AS n, COUNT(CASE WHEN ok THEN NULL ELSE 1 END) AS failed \
                 FROM checks WHERE id > $1 GROUP BY repository_id",
            )
            .bind(after_id)
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(CheckCount {
                        repository_id: r.i64("repository_id")?,
                        checks: r.i64("n")?,
                        failed: r.i64("failed")?,
                    })
                })
                .collect()
        })
    }

    /// Per instance, the checks it recorded after check `after_id`, busiest first.
    pub async fn check_counts_by_instance_since(&self, after_id: Id) -> Result<Vec<(String, i64)>> {
        on_pool!(&self.db, |pool| {
            let rows = sqlx::query(
                "SELECT instance, COUNT(*) AS n FROM checks WHERE id > $1 GROUP BY instance ORDER BY n DESC, instance",
            )
            .bind(after_id)
            .fetch_all(pool)
            .await?;
            rows.iter().map(|r| Ok((r.str("instance")?, r.i64("n")?))).collect()
        })
    }
}
