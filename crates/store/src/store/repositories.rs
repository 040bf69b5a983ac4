//! Registered repositories and the history of their checks.

use super::*;

impl Store {
    // ---------------------------------------------------------------- repositories

    pub async fn find_by_repo_key(&self, repo_key: &str) -> Result<Option<RepositoryRow>> {
        let row = sqlx::query(&format!("{REPOSITORY_COLUMNS} WHERE r.repo_key = ?"))
            .bind(repo_key)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(repository_from_row).transpose()
    }

    pub async fn create_repository(&self, new: &NewRepository) -> Result<RepositoryRow> {
        if let Some(existing) = self.find_by_repo_key(&new.repo_key).await? {
            return Err(already_registered(&existing));
        }
        let now = Utc::now();
        let res = sqlx::query(
            "INSERT INTO repositories (name, vcs, clone_url, repo_key, provider, default_branch, credential_id, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        .execute(&self.pool)
        .await;
        match res {
            Ok(r) => self.get_repository(r.last_insert_rowid()).await,
            Err(e) => Err(self.repository_conflict(e, new).await),
        }
    }

    pub async fn update_repository(&self, id: Id, new: &NewRepository) -> Result<RepositoryRow> {
        if let Some(existing) = self.find_by_repo_key(&new.repo_key).await?.filter(|r| r.id != id) {
            return Err(already_registered(&existing));
        }
        let res = sqlx::query(
            "UPDATE repositories SET name = ?, vcs = ?, clone_url = ?, repo_key = ?, provider = ?, default_branch = ?, \
             credential_id = ?, updated_at = ? WHERE id = ?",
        )
        .bind(&new.name)
        .bind(&new.vcs)
        .bind(&new.clone_url)
        .bind(&new.repo_key)
        .bind(&new.provider)
        .bind(&new.default_branch)
        .bind(new.credential_id)
        .bind(Utc::now())
        .bind(id)
        .execute(&self.pool)
        .await;
        match res {
            Ok(r) if r.rows_affected() == 0 => Err(StoreError::NotFound { what: "repository" }),
            Ok(_) => self.get_repository(id).await,
            Err(e) => Err(self.repository_conflict(e, new).await),
        }
    }

    /// Turns a failed insert or update into the conflict a person can act on. Two concurrent
    /// registrations of one repository both pass the pre-check; the unique index decides.
    async fn repository_conflict(&self, e: sqlx::Error, new: &NewRepository) -> StoreError {
        if e.as_database_error().is_some_and(|d| d.is_foreign_key_violation()) {
            // The credential was deleted while this registration was being checked.
            return StoreError::Conflict {
                code: Code::CredentialNotFound,
                message: "the chosen credential was deleted while the repository was being checked".to_owned(),
            };
        }
        let unique = e.as_database_error().is_some_and(|d| d.is_unique_violation());
        if !unique {
            return e.into();
        }
        if e.to_string().contains("repo_key") {
            if let Ok(Some(existing)) = self.find_by_repo_key(&new.repo_key).await {
                return already_registered(&existing);
            }
        }
        StoreError::Conflict {
            code: Code::NameTaken,
            message: format!("a repository named {:?} already exists", new.name),
        }
    }

    pub async fn list_repositories(&self) -> Result<Vec<RepositoryRow>> {
        let rows =
            sqlx::query(&format!("{REPOSITORY_COLUMNS} ORDER BY r.name COLLATE NOCASE")).fetch_all(&self.pool).await?;
        rows.iter().map(repository_from_row).collect()
    }

    pub async fn get_repository(&self, id: Id) -> Result<RepositoryRow> {
        let row =
            sqlx::query(&format!("{REPOSITORY_COLUMNS} WHERE r.id = ?")).bind(id).fetch_optional(&self.pool).await?;
        row.as_ref().map(repository_from_row).transpose()?.ok_or(StoreError::NotFound { what: "repository" })
    }

    pub async fn delete_repository(&self, id: Id) -> Result<()> {
        let n =
            sqlx::query("DELETE FROM repositories WHERE id = ?").bind(id).execute(&self.pool).await?.rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound { what: "repository" });
        }
        Ok(())
    }

    // ---------------------------------------------------------------- checks

    pub async fn record_check(
        &self,
        repository_id: Id,
        check: &Check,
        checked_at: DateTime<Utc>,
        duration_ms: u64,
    ) -> Result<()> {
        let code = check.first_failure().map_or(Code::Ok, |s| s.code);
        let steps = serde_json::to_string(&check.checks).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        sqlx::query(
            "INSERT INTO checks (repository_id, ok, code, checked_at, duration_ms, steps) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(repository_id)
        .bind(check.ok)
        .bind(code.as_str())
        .bind(checked_at)
        .bind(i64::try_from(duration_ms).unwrap_or(i64::MAX))
        .bind(steps)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The latest check of each repository in `ids` (all repositories when `ids` is None).
    pub async fn last_checks(&self) -> Result<std::collections::HashMap<Id, CheckRow>> {
        let rows = sqlx::query(
            "SELECT c.repository_id, c.ok, c.code, c.checked_at, c.duration_ms, c.steps FROM checks c \
             JOIN (SELECT repository_id, MAX(id) AS id FROM checks GROUP BY repository_id) l ON l.id = c.id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok((r.try_get("repository_id")?, check_from_row(r)?))).collect()
    }

    pub async fn last_check(&self, repository_id: Id) -> Result<Option<CheckRow>> {
        let row = sqlx::query("SELECT ok, code, checked_at, duration_ms, steps FROM checks WHERE repository_id = ? ORDER BY id DESC LIMIT 1")
            .bind(repository_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(check_from_row).transpose()
    }
}
