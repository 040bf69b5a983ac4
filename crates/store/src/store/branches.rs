//! Each repository's branch list (names and commit ids) and the remote's default branch, as
//! its last check or the host's last push event left them.
//!
//! A check writes its list inside the transaction that records it (`record_outcomes`), so the
//! history and the list never disagree. The list's digest is kept with it: a check that finds
//! the same branches (most scheduled checks) compares one value and writes nothing more; one
//! that differs writes only the rows that changed. A push event (`apply_branch_push`) changes
//! the few branches it names and marks the repository due, so a real check follows.

use super::dialect::Cols;
use super::*;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

/// One branch: its short name (`main`, `feature/x`) and the commit it points to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BranchEntry {
    pub name: String,
    pub commit: String,
}

/// A whole branch list as a check read it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BranchList {
    /// The remote's default branch (its HEAD), when it named one.
    pub default_branch: Option<String>,
    pub branches: Vec<BranchEntry>,
}

impl BranchList {
    /// SHA-256 over the default branch and every (name, commit) in name order.
    pub fn digest(&self) -> String {
        let mut sorted: Vec<&BranchEntry> = self.branches.iter().collect();
        sorted.sort_by(|a, b| a.name.cmp(&b.name));
        let mut h = Sha256::new();
        h.update(self.default_branch.as_deref().unwrap_or("").as_bytes());
        h.update([0u8]);
        for b in sorted {
            h.update(b.name.as_bytes());
            h.update([0u8]);
            h.update(b.commit.as_bytes());
            h.update([b'\n']);
        }
        hex::encode(h.finalize())
    }
}

/// One branch a push event changed: `commit` `None` when it was deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BranchChange {
    pub name: String,
    pub commit: Option<String>,
}

/// The stored list's head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BranchListHead {
    pub default_branch: Option<String>,
    pub branch_count: i64,
    /// `check` or `webhook`: what wrote the list last.
    pub source: String,
    pub updated_at: DateTime<Utc>,
}

/// Rows per multi-row statement (3 parameters each: well under both databases' limits).
pub(super) const ROWS_PER_STATEMENT: usize = 300;

/// Reads the stored lists' heads (digest, when written) of the repositories whose ids are
/// bound as `$1`…`$n`: one statement for a batch of recorded checks.
pub(super) fn stored_digests_sql(n: usize) -> String {
    format!(
        "SELECT repository_id, digest, updated_at FROM repository_branch_lists WHERE repository_id IN ({})",
        super::recording::marks(1, n)
    )
}

/// Writes `$list`, as the remote was listed at `$now`, as repository `$repo`'s branch list
/// inside the transaction `$tx`, changing only the rows that differ; nothing at all when its
/// digest is the stored one (`$stored`: the stored digest and when it was written, read by the
/// caller under the repository row's lock with [`stored_digests_sql`]), or when the stored list
/// is newer: a host's push that changed it after `$now` (a check must not put a deleted branch
/// or an old commit back; the push left the repository due, so a later check lists the remote
/// again).
macro_rules! write_branch_list {
    ($tx:ident, $repo:expr, $list:expr, $source:expr, $now:expr, $stored:expr) => {{
        let (repo, list, source, now): (Id, &$crate::store::branches::BranchList, &str, chrono::DateTime<chrono::Utc>) =
            ($repo, $list, $source, $now);
        let digest = list.digest();
        let stored: Option<(String, chrono::DateTime<chrono::Utc>)> = $stored;
        let newer = stored.as_ref().is_some_and(|(_, at)| *at > now);
        if !newer && stored.map(|(d, _)| d).as_deref() != Some(digest.as_str()) {
            let rows = sqlx::query("SELECT name, commit_id FROM repository_branches WHERE repository_id = $1")
                .bind(repo)
                .fetch_all(&mut *$tx)
                .await?;
            let mut old = std::collections::HashMap::with_capacity(rows.len());
            for r in &rows {
                old.insert(
                    $crate::store::dialect::Cols::str(r, "name")?,
                    $crate::store::dialect::Cols::str(r, "commit_id")?,
                );
            }
            let mut added: Vec<&$crate::store::branches::BranchEntry> = Vec::new();
            for b in &list.branches {
                match old.remove(&b.name) {
                    Some(c) if c == b.commit => {}
                    Some(_) => {
                        sqlx::query(
                            "UPDATE repository_branches SET commit_id = $1 WHERE repository_id = $2 AND name = $3",
                        )
                        .bind(&b.commit)
                        .bind(repo)
                        .bind(&b.name)
                        .execute(&mut *$tx)
                        .await?;
                    }
                    None => added.push(b),
                }
            }
            let gone: Vec<String> = old.into_keys().collect();
            for chunk in gone.chunks($crate::store::branches::ROWS_PER_STATEMENT) {
                let marks: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
                let sql =
                    format!("DELETE FROM repository_branches WHERE repository_id = $1 AND name IN ({})", marks.join(","));
                let mut q = sqlx::query(&sql).bind(repo);
                for n in chunk {
                    q = q.bind(n);
                }
                q.execute(&mut *$tx).await?;
            }
            for chunk in added.chunks($crate::store::branches::ROWS_PER_STATEMENT) {
                let values: Vec<String> =
                    (0..chunk.len()).map(|i| format!("($1, ${}, ${})", 2 * i + 2, 2 * i + 3)).collect();
                let sql = format!(
                    "INSERT INTO repository_branches (repository_id, name, commit_id) VALUES {}",
                    values.join(",")
                );
                let mut q = sqlx::query(&sql).bind(repo);
                for b in chunk {
                    q = q.bind(&b.name).bind(&b.commit);
                }
                q.execute(&mut *$tx).await?;
            }
            sqlx::query(
                "INSERT INTO repository_branch_lists (repository_id, default_branch, branch_count, digest, source, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (repository_id) DO UPDATE SET \
                 default_branch = excluded.default_branch, branch_count = excluded.branch_count, \
                 digest = excluded.digest, source = excluded.source, updated_at = excluded.updated_at",
            )
            .bind(repo)
            .bind(list.default_branch.as_deref())
            .bind(i64::try_from(list.branches.len()).unwrap_or(i64::MAX))
            .bind(&digest)
            .bind(source)
            .bind(now)
            .execute(&mut *$tx)
            .await?;
        }
    }};
}

impl Store {
    /// The head of a repository's stored branch list; `None` before its first check.
    pub async fn branch_list_head(&self, repository_id: Id) -> Result<Option<BranchListHead>> {
        on_pool!(&self.db, |pool| {
            let row = sqlx::query(
                "SELECT default_branch, branch_count, source, updated_at FROM repository_branch_lists \
                 WHERE repository_id = $1",
            )
            .bind(repository_id)
            .fetch_optional(pool)
            .await?;
            row.map(|r| {
                Ok(BranchListHead {
                    default_branch: r.opt_str("default_branch")?,
                    branch_count: r.i64("branch_count")?,
                    source: r.str("source")?,
                    updated_at: r.ts("updated_at")?,
                })
            })
            .transpose()
        })
    }

    /// Up to `limit` stored branches after `after` in name (byte) order: a keyset page.
    pub async fn branches_page(&self, repository_id: Id, after: Option<&str>, limit: i64) -> Result<Vec<BranchEntry>> {
        on_pool!(&self.db, |pool| {
            let rows = sqlx::query(
                "SELECT name, commit_id FROM repository_branches WHERE repository_id = $1 AND ($2 IS NULL OR name > $2) \
                 ORDER BY name LIMIT $3",
            )
            .bind(repository_id)
            .bind(after)
            .bind(limit.clamp(1, 1001))
            .fetch_all(pool)
            .await?;
            rows.iter().map(|r| Ok(BranchEntry { name: r.str("name")?, commit: r.str("commit_id")? })).collect()
        })
    }

    /// Applies a push event's branch changes at once (and the default branch, when the host's
    /// payload named it), counts the delivery, and makes the repository due for a check with
    /// reason `webhook`, all in one transaction.
    pub async fn apply_branch_push(
        &self,
        repository_id: Id,
        changes: &[BranchChange],
        default_branch: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        on_pool!(&self.db, |pool| {
            let mut tx = pool.begin().await?;
            let n = sqlx::query("UPDATE repositories SET next_check_at = $1, due_reason = 'webhook' WHERE id = $2")
                .bind(now)
                .bind(repository_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound(Entity::Repository));
            }
            for c in changes {
                match &c.commit {
                    Some(commit) => {
                        sqlx::query(
                            "INSERT INTO repository_branches (repository_id, name, commit_id) VALUES ($1, $2, $3) \
                             ON CONFLICT (repository_id, name) DO UPDATE SET commit_id = excluded.commit_id",
                        )
                        .bind(repository_id)
                        .bind(&c.name)
                        .bind(commit)
                        .execute(&mut *tx)
                        .await?;
                    }
                    None => {
                        sqlx::query("DELETE FROM repository_branches WHERE repository_id = $1 AND name = $2")
                            .bind(repository_id)
                            .bind(&c.name)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
            }
            let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM repository_branches WHERE repository_id = $1")
                .bind(repository_id)
                .fetch_one(&mut *tx)
                .await?;
            // The digest no longer describes a list a check read: the next check compares rows.
            sqlx::query(
                "INSERT INTO repository_branch_lists (repository_id, default_branch, branch_count, digest, source, updated_at) \
                 VALUES ($1, $2, $3, '', 'webhook', $4) ON CONFLICT (repository_id) DO UPDATE SET \
                 default_branch = COALESCE($2, repository_branch_lists.default_branch), branch_count = $3, digest = '', \
                 source = 'webhook', updated_at = $4",
            )
            .bind(repository_id)
            .bind(default_branch)
            .bind(count)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE repository_webhooks SET deliveries = deliveries + 1, last_delivery_at = $1 WHERE repository_id = $2",
            )
            .bind(now)
            .bind(repository_id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }
}
