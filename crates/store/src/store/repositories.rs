//! Registered repositories and the history of their checks.

use super::listing::host_of;
use super::mappers::{check_from_row, repository_from_row, CHECK_COLUMNS, CHECK_SUMMARY_COLUMNS, REPOSITORY_COLUMNS};
use super::*;
use chrono::{DateTime, Utc};
use dialect::Cols;

impl Store {
    // ---------------------------------------------------------------- repositories

    pub async fn find_by_repo_key(&self, repo_key: &str) -> Result<Option<RepositoryRow>> {
        on_pool!(&self.db, |pool| {
            let row = sqlx::query(&format!("{REPOSITORY_COLUMNS} WHERE r.repo_key = $1"))
                .bind(repo_key)
                .fetch_optional(pool)
                .await?;
            row.as_ref().map(repository_from_row).transpose()
        })
    }

    pub async fn create_repository(&self, new: &NewRepository) -> Result<RepositoryRow> {
        on_pool!(&self.db, |pool| {
            if let Some(existing) = self.find_by_repo_key(&new.repo_key).await? {
                return Err(repo_key_taken(existing));
            }
            let now = Utc::now();
            let res: std::result::Result<Id, sqlx::Error> = sqlx::query_scalar(
                "INSERT INTO repositories (name, vcs, clone_url, repo_key, provider, default_branch, credential_id, created_at, \
                 updated_at, next_check_at, host) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
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
            .bind(host_of(&new.clone_url))
            .fetch_one(pool)
            .await;
            match res {
                Ok(id) => {
                    // Unchecked, or paused when its credential is.
                    sqlx::query(&refresh_status_sql("id = $1")).bind(id).execute(pool).await?;
                    self.get_repository(id).await
                }
                Err(e) => Err(self.repository_conflict(e, new).await),
            }
        })
    }

    pub async fn update_repository(&self, id: Id, new: &NewRepository) -> Result<RepositoryRow> {
        on_pool!(&self.db, |pool| {
            if let Some(existing) = self.find_by_repo_key(&new.repo_key).await?.filter(|r| r.id != id) {
                return Err(repo_key_taken(existing));
            }
            let res = sqlx::query(
                "UPDATE repositories SET name = $1, vcs = $2, clone_url = $3, repo_key = $4, provider = $5, default_branch = $6, \
                 credential_id = $7, updated_at = $8, next_check_at = $9, host = $11 WHERE id = $10",
            )
            .bind(&new.name)
            .bind(&new.vcs)
            .bind(&new.clone_url)
            .bind(&new.repo_key)
            .bind(&new.provider)
            .bind(&new.default_branch)
            .bind(new.credential_id)
            .bind(Utc::now())
            .bind(new.next_check_at)
            .bind(id)
            .bind(host_of(&new.clone_url))
            .execute(pool)
            .await;
            match res {
                Ok(r) if r.rows_affected() == 0 => Err(StoreError::NotFound(Entity::Repository)),
                Ok(_) => {
                    // Its credential may be another one now, paused or not.
                    sqlx::query(&refresh_status_sql("id = $1")).bind(id).execute(pool).await?;
                    self.get_repository(id).await
                }
                Err(e) => Err(self.repository_conflict(e, new).await),
            }
        })
    }

    /// Turns a failed insert or update into the typed conflict. Two concurrent registrations
    /// of one repository both pass the pre-check; the unique index decides, and the winner is
    /// looked up so the loser hears which repository holds the key.
    async fn repository_conflict(&self, e: sqlx::Error, new: &NewRepository) -> StoreError {
        if e.as_database_error().is_some_and(|d| d.is_foreign_key_violation()) {
            // The credential was deleted while this registration was being checked.
            return StoreError::CredentialGone;
        }
        let unique = e.as_database_error().is_some_and(|d| d.is_unique_violation());
        if !unique {
            return e.into();
        }
        if e.to_string().contains("repo_key") {
            if let Ok(Some(existing)) = self.find_by_repo_key(&new.repo_key).await {
                return repo_key_taken(existing);
            }
        }
        StoreError::NameTaken { what: Entity::Repository, name: new.name.clone() }
    }

    /// Every repository by name: for what needs them all (metrics, a credential's re-check), not
    /// for lists, which page ([`Store::repositories_page`]).
    pub async fn list_repositories(&self) -> Result<Vec<RepositoryRow>> {
        on_pool!(&self.db, |pool| {
            let rows =
                sqlx::query(&format!("{REPOSITORY_COLUMNS} ORDER BY r.name COLLATE NOCASE")).fetch_all(pool).await?;
            rows.iter().map(repository_from_row).collect()
        })
    }

    pub async fn get_repository(&self, id: Id) -> Result<RepositoryRow> {
        on_pool!(&self.db, |pool| {
            let row =
                sqlx::query(&format!("{REPOSITORY_COLUMNS} WHERE r.id = $1")).bind(id).fetch_optional(pool).await?;
            row.as_ref().map(repository_from_row).transpose()?.ok_or(StoreError::NotFound(Entity::Repository))
        })
    }

    pub async fn delete_repository(&self, id: Id) -> Result<()> {
        on_pool!(&self.db, |pool| {
            let n = sqlx::query("DELETE FROM repositories WHERE id = $1").bind(id).execute(pool).await?.rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound(Entity::Repository));
            }
            Ok(())
        })
    }

    // ---------------------------------------------------------------- checks

    /// Keeps one check in the repository's history (no authentication count, no lease).
    pub async fn record_check(&self, repository_id: Id, check: &NewCheck<'_>) -> Result<Id> {
        Ok(self.record_outcome(repository_id, check, None, None).await?.check_id)
    }

    /// The latest check of every repository that has one, without steps (`steps` is empty):
    /// what lists and metrics need, cheap for many thousands of repositories.
    pub async fn last_check_summaries(&self) -> Result<std::collections::HashMap<Id, CheckRow>> {
        on_pool!(&self.db, |pool| {
            let rows = sqlx::query(&format!(
                "{CHECK_SUMMARY_COLUMNS} JOIN (SELECT repository_id AS rid, MAX(id) AS last_id FROM checks GROUP BY repository_id) l \
                 ON l.last_id = c.id"
            ))
            .fetch_all(pool)
            .await?;
            rows.iter().map(|r| Ok((r.i64("repository_id")?, check_from_row(r)?))).collect()
        })
    }

    /// The latest check of each of `ids`, without steps (see [`Store::last_check_summaries`]).
    pub async fn last_check_summaries_of(&self, ids: &[Id]) -> Result<std::collections::HashMap<Id, CheckRow>> {
        if ids.is_empty() {
            return Ok(std::collections::HashMap::new());
        }
        // Ids are integers from the database, so writing them into the text is safe.
        let list = ids.iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
        on_pool!(&self.db, |pool| {
            let rows = sqlx::query(&format!(
                "{CHECK_SUMMARY_COLUMNS} JOIN (SELECT repository_id AS rid, MAX(id) AS last_id FROM checks \
                 WHERE repository_id IN ({list}) GROUP BY repository_id) l ON l.last_id = c.id"
            ))
            .fetch_all(pool)
            .await?;
            rows.iter().map(|r| Ok((r.i64("repository_id")?, check_from_row(r)?))).collect()
        })
    }

    pub async fn last_check(&self, repository_id: Id) -> Result<Option<CheckRow>> {
        Ok(self.check_history(repository_id, None, 1).await?.into_iter().next())
    }

    /// A repository's checks, newest first, older than check `before` when given.
    pub async fn check_history(&self, repository_id: Id, before: Option<Id>, limit: i64) -> Result<Vec<CheckRow>> {
        on_pool!(&self.db, |pool| {
            let rows = sqlx::query(&format!(
                "{CHECK_COLUMNS} WHERE c.repository_id = $1 AND ($2 IS NULL OR c.id < $2) ORDER BY c.id DESC LIMIT $3"
            ))
            .bind(repository_id)
            .bind(before)
            // A page of 1000 and the row that says another page follows.
            .bind(limit.clamp(1, 1001))
            .fetch_all(pool)
            .await?;
            rows.iter().map(check_from_row).collect()
        })
    }

    /// Forgets checks older than `cutoff`, always keeping each repository's latest one.
    pub async fn prune_checks(&self, cutoff: DateTime<Utc>) -> Result<u64> {
        on_pool!(&self.db, |pool| {
            Ok(sqlx::query(
                "DELETE FROM checks WHERE checked_at < $1 AND id NOT IN (SELECT MAX(id) FROM checks GROUP BY repository_id)",
            )
            .bind(cutoff)
            .execute(pool)
            .await?
            .rows_affected())
        })
    }
}

/// The status a repository shows, given its check status `check_status` (an SQL expression):
/// `paused` while its credential's checks are paused, else that check status.
pub(super) fn shown_status_sql(check_status: &str) -> String {
    format!(
        "CASE WHEN EXISTS (SELECT 1 FROM credentials c WHERE c.id = repositories.credential_id \
         AND c.checks_paused_at IS NOT NULL) THEN 'paused' ELSE {check_status} END"
    )
}

/// Rewrites `repositories.status` from `check_status` and the credential's pause, for the rows
/// `which` (a condition) selects, writing only those whose status changes. An unchanged row
/// written anyway is a new row version on PostgreSQL (and its indexes' and the counting
/// triggers' work): a credential's pause refreshes all its repositories, and a bulk insert
/// that rewrote every `unchecked` row per batch left a million dead versions at 100,000
/// repositories for autovacuum to clear while the list was being read.
pub(super) fn refresh_status_sql(which: &str) -> String {
    let shown = shown_status_sql("check_status");
    format!("UPDATE repositories SET status = {shown} WHERE ({which}) AND status <> {shown}")
}

/// The conflict of a repository key registered already: the repository that holds it.
fn repo_key_taken(existing: RepositoryRow) -> StoreError {
    StoreError::RepoKeyTaken {
        existing: ExistingRepo { id: existing.id, name: existing.name, clone_url: existing.clone_url },
    }
}
