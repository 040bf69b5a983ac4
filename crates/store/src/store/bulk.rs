//! Bulk writes and counts for seeding and measuring large installations (the fleet benchmark
//! seeds 100,000 repositories and counts every repository's checks). Registration through the
//! API checks each repository first; these rows are written as they come.

use super::*;
use chrono::Utc;
use dialect::Cols;

/// How many checks one repository has above a check id, and how many of them failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckCount {
    pub repository_id: Id,
    pub checks: i64,
    pub failed: i64,
}

impl Store {
    /// Adds repositories in one transaction without checking them (one commit for all, where
    /// [`Store::create_repository`] makes one each). A name or repository key that is taken
    /// fails the whole batch. Returns how many were added.
    pub async fn seed_repositories(&self, rows: &[NewRepository]) -> Result<u64> {
        let now = Utc::now();
        on_pool!(&self.db, |pool| {
            let mut tx = pool.begin().await?;
            for new in rows {
                sqlx::query(
                    "INSERT INTO repositories (name, vcs, clone_url, repo_key, provider, default_branch, credential_id, \
                     created_at, updated_at, next_check_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(&new.name)
                .bind(&new.vcs)
                .bind(&new.clone_url)
                .bind(&new.repo_key)
                .bind(&new.provider)
                .bind(&new.default_branch)
                .bind(new.credential_id)
                .bind(now)
                .bind(now)
                .bind(new.next_check_at)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(rows.len() as u64)
        })
    }

    /// The newest check id (0 with no checks): a mark to count later checks from.
    pub async fn last_check_id(&self) -> Result<Id> {
        on_pool!(&self.db, |pool| {
            Ok(sqlx::query_scalar::<_, Option<Id>>("SELECT MAX(id) FROM checks").fetch_one(pool).await?.unwrap_or(0))
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

    /// How many repositories there are, to seed up to a size.
    pub async fn bulk_repository_count(&self) -> Result<i64> {
        on_pool!(&self.db, |pool| Ok(sqlx::query_scalar("SELECT COUNT(*) FROM repositories").fetch_one(pool).await?))
    }
}
