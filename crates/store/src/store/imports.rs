//! Bulk imports: the listing an import found and each listed repository's progress, so that
//! any instance can answer for an import and a restart loses nothing.

use super::dialect::Cols;
use super::mappers::to_i64;
use super::*;
use chrono::{DateTime, Utc};

/// An import as stored, with its counts.
#[derive(Debug, Clone)]
pub struct ImportRow {
    pub id: Id,
    pub credential_id: Option<Id>,
    pub credential_name: String,
    pub source: String,
    pub provider: String,
    /// `listed`, `registering`, `done`.
    pub state: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Repositories the listing found.
    pub listed: i64,
    /// Of those, the ones selected for registration.
    pub selected: i64,
    /// Selected ones that are finished (registered, failed or skipped).
    pub done: i64,
    pub registered: i64,
    pub failed: i64,
    pub skipped: i64,
}

/// One listed repository and its progress.
#[derive(Debug, Clone)]
pub struct ImportItemRow {
    pub id: Id,
    pub import_id: Id,
    pub full_name: String,
    pub slug: String,
    pub name: String,
    pub clone_url: String,
    pub private: bool,
    pub existing_id: Option<Id>,
    pub existing_name: Option<String>,
    pub selected: bool,
    /// `pending`, `registering`, `registered`, `failed`, `skipped`.
    pub status: String,
    pub code: Option<String>,
    pub message: Option<String>,
    pub remedy: Option<String>,
    pub repository_id: Option<Id>,
    pub repository_name: Option<String>,
}

/// An import to write.
#[derive(Debug, Clone)]
pub struct NewImport {
    pub credential_id: Id,
    pub credential_name: String,
    pub source: String,
    pub provider: String,
    pub created_by: String,
}

/// A listed repository to write. Items already registered are written `skipped` with
/// `already_registered`: the listing marks them, and registration leaves them alone.
#[derive(Debug, Clone)]
pub struct NewImportItem {
    pub full_name: String,
    pub slug: String,
    pub name: String,
    pub clone_url: String,
    pub private: bool,
    pub existing: Option<(Id, String)>,
}

/// How one item's registration ended.
#[derive(Debug, Clone)]
pub struct ItemOutcome {
    /// `registered`, `failed`, `skipped`.
    pub status: String,
    pub code: Option<String>,
    pub message: Option<String>,
    pub remedy: Option<String>,
    pub repository: Option<(Id, String)>,
}

const IMPORT_COLUMNS: &str = "SELECT i.id, i.credential_id, i.credential_name, i.source, i.provider, i.state, \
     i.created_by, i.created_at, i.updated_at, \
     (SELECT COUNT(*) FROM import_items t WHERE t.import_id = i.id) AS listed, \
     (SELECT COUNT(*) FROM import_items t WHERE t.import_id = i.id AND t.selected) AS selected, \
     (SELECT COUNT(*) FROM import_items t WHERE t.import_id = i.id AND t.selected AND t.status IN ('registered', 'failed', 'skipped')) AS done, \
     (SELECT COUNT(*) FROM import_items t WHERE t.import_id = i.id AND t.selected AND t.status = 'registered') AS registered, \
     (SELECT COUNT(*) FROM import_items t WHERE t.import_id = i.id AND t.selected AND t.status = 'failed') AS failed, \
     (SELECT COUNT(*) FROM import_items t WHERE t.import_id = i.id AND t.selected AND t.status = 'skipped') AS skipped \
     FROM imports i";

const ITEM_COLUMNS: &str = "SELECT id, import_id, full_name, slug, name, clone_url, private, existing_id, \
     existing_name, selected, status, code, message, remedy, repository_id, repository_name FROM import_items";

fn import_from_row(r: &impl Cols) -> Result<ImportRow> {
    Ok(ImportRow {
        id: r.i64("id")?,
        credential_id: r.opt_i64("credential_id")?,
        credential_name: r.str("credential_name")?,
        source: r.str("source")?,
        provider: r.str("provider")?,
        state: r.str("state")?,
        created_by: r.str("created_by")?,
        created_at: r.ts("created_at")?,
        updated_at: r.ts("updated_at")?,
        listed: r.i64("listed")?,
        selected: r.i64("selected")?,
        done: r.i64("done")?,
        registered: r.i64("registered")?,
        failed: r.i64("failed")?,
        skipped: r.i64("skipped")?,
    })
}

fn item_from_row(r: &impl Cols) -> Result<ImportItemRow> {
    Ok(ImportItemRow {
        id: r.i64("id")?,
        import_id: r.i64("import_id")?,
        full_name: r.str("full_name")?,
        slug: r.str("slug")?,
        name: r.str("name")?,
        clone_url: r.str("clone_url")?,
        private: r.bool("private")?,
        existing_id: r.opt_i64("existing_id")?,
        existing_name: r.opt_str("existing_name")?,
        selected: r.bool("selected")?,
        status: r.str("status")?,
        code: r.opt_str("code")?,
        message: r.opt_str("message")?,
        remedy: r.opt_str("remedy")?,
        repository_id: r.opt_i64("repository_id")?,
        repository_name: r.opt_str("repository_name")?,
    })
}

impl Store {
    /// Writes an import and its listing in one transaction.
    pub async fn create_import(&self, new: &NewImport, items: &[NewImportItem]) -> Result<ImportRow> {
        let id = on_pool!(&self.db, |pool| {
            let mut tx = pool.begin().await?;
            let now = Utc::now();
            let id: Id = sqlx::query_scalar(
                "INSERT INTO imports (credential_id, credential_name, source, provider, state, created_by, created_at, \
                 updated_at) VALUES ($1, $2, $3, $4, 'listed', $5, $6, $6) RETURNING id",
            )
            .bind(new.credential_id)
            .bind(&new.credential_name)
            .bind(&new.source)
            .bind(&new.provider)
            .bind(&new.created_by)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            for it in items {
                let (status, code) = match it.existing {
                    Some(_) => ("skipped", Some("already_registered")),
                    None => ("pending", None),
                };
                sqlx::query(
                    "INSERT INTO import_items (import_id, full_name, slug, name, clone_url, private, existing_id, \
                     existing_name, status, code, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                     ON CONFLICT (import_id, full_name) DO NOTHING",
                )
                .bind(id)
                .bind(&it.full_name)
                .bind(&it.slug)
                .bind(&it.name)
                .bind(&it.clone_url)
                .bind(it.private)
                .bind(it.existing.as_ref().map(|e| e.0))
                .bind(it.existing.as_ref().map(|e| e.1.clone()))
                .bind(status)
                .bind(code)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok::<Id, StoreError>(id)
        })?;
        self.get_import(id).await
    }

    pub async fn get_import(&self, id: Id) -> Result<ImportRow> {
        on_pool!(&self.db, |pool| {
            let row = sqlx::query(&format!("{IMPORT_COLUMNS} WHERE i.id = $1")).bind(id).fetch_optional(pool).await?;
            row.as_ref().map(import_from_row).transpose()?.ok_or(StoreError::NotFound(Entity::Import))
        })
    }

    /// An import's listed repositories by full name.
    pub async fn import_items(&self, import_id: Id) -> Result<Vec<ImportItemRow>> {
        on_pool!(&self.db, |pool| {
            let rows = sqlx::query(&format!("{ITEM_COLUMNS} WHERE import_id = $1 ORDER BY full_name, id"))
                .bind(import_id)
                .fetch_all(pool)
                .await?;
            rows.iter().map(item_from_row).collect()
        })
    }

    /// Selects items for registration and makes them pending again where that makes sense: a
    /// failure is tried again, and a `registering` item whose lease passed (its instance
    /// stopped) is taken again. Registered and skipped items stay as they are. Answers how many
    /// items are now waiting.
    pub async fn select_import_items(&self, import_id: Id, item_ids: &[Id], now: DateTime<Utc>) -> Result<i64> {
        on_pool!(&self.db, |pool| {
            let mut tx = pool.begin().await?;
            for id in item_ids {
                sqlx::query(
                    "UPDATE import_items SET selected = TRUE, updated_at = $1, \
                     status = CASE WHEN status = 'failed' OR (status = 'registering' AND lease_until < $1) \
                     THEN 'pending' ELSE status END, \
                     code = CASE WHEN status = 'failed' THEN NULL ELSE code END \
                     WHERE id = $2 AND import_id = $3",
                )
                .bind(now)
                .bind(id)
                .bind(import_id)
                .execute(&mut *tx)
                .await?;
            }
            let n = sqlx::query("UPDATE imports SET state = 'registering', updated_at = $1 WHERE id = $2")
                .bind(now)
                .bind(import_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound(Entity::Import));
            }
            let waiting: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM import_items WHERE import_id = $1 AND selected AND status = 'pending'",
            )
            .bind(import_id)
            .fetch_one(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(waiting)
        })
    }

    /// Takes a pending item (or one whose lease passed) for registration until `lease_until`;
    /// `false` when another task or instance has it.
    pub async fn claim_import_item(&self, item_id: Id, now: DateTime<Utc>, lease_until: DateTime<Utc>) -> Result<bool> {
        on_pool!(&self.db, |pool| {
            let n = sqlx::query(
                "UPDATE import_items SET status = 'registering', lease_until = $1, updated_at = $2 \
                 WHERE id = $3 AND selected AND (status = 'pending' OR (status = 'registering' AND lease_until < $2))",
            )
            .bind(lease_until)
            .bind(now)
            .bind(item_id)
            .execute(pool)
            .await?
            .rows_affected();
            Ok(n == 1)
        })
    }

    /// Records how an item's registration ended.
    pub async fn finish_import_item(&self, item_id: Id, outcome: &ItemOutcome) -> Result<()> {
        on_pool!(&self.db, |pool| {
            sqlx::query(
                "UPDATE import_items SET status = $1, code = $2, message = $3, remedy = $4, repository_id = $5, \
                 repository_name = $6, lease_until = NULL, updated_at = $7 WHERE id = $8",
            )
            .bind(&outcome.status)
            .bind(&outcome.code)
            .bind(&outcome.message)
            .bind(&outcome.remedy)
            .bind(outcome.repository.as_ref().map(|r| r.0))
            .bind(outcome.repository.as_ref().map(|r| r.1.clone()))
            .bind(Utc::now())
            .bind(item_id)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Whether a repository has this name (names are unique whatever their case).
    pub async fn repository_name_taken(&self, name: &str) -> Result<bool> {
        on_pool!(&self.db, |pool| {
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM repositories WHERE LOWER(name) = LOWER($1)")
                .bind(name)
                .fetch_one(pool)
                .await?;
            Ok(n > 0)
        })
    }

    /// Marks the import `done` when no selected item is waiting or running.
    /// The `import.finished` event is written in the same transaction, so exactly one
    /// instance raises it.
    pub async fn finish_import_if_idle(&self, import_id: Id) -> Result<bool> {
        on_pool!(&self.db, |pool| {
            let now = Utc::now();
            let mut tx = pool.begin().await?;
            let n = sqlx::query(
                "UPDATE imports SET state = 'done', updated_at = $1 WHERE id = $2 AND state <> 'done' AND NOT EXISTS \
                 (SELECT 1 FROM import_items t WHERE t.import_id = $2 AND t.selected \
                 AND t.status IN ('pending', 'registering'))",
            )
            .bind(now)
            .bind(import_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 1 {
                let row = sqlx::query(&format!("{IMPORT_COLUMNS} WHERE i.id = $1"))
                    .bind(import_id)
                    .fetch_one(&mut *tx)
                    .await?;
                let import = import_from_row(&row)?;
                let event = import_finished(&import);
                enqueue_event!(tx, &event, now, None);
            }
            tx.commit().await?;
            Ok(to_i64(n) == 1)
        })
    }
}

/// The `import.finished` event: the source, the credential and what became of the selection.
fn import_finished(i: &ImportRow) -> NewEvent {
    let details = serde_json::json!({
        "source": i.source,
        "selected": i.selected,
        "registered": i.registered,
        "failed": i.failed,
        "skipped": i.skipped,
    });
    let new_status = if i.failed > 0 { "finished_with_failures" } else { "finished" };
    NewEvent {
        kind: "import.finished".to_owned(),
        subject: "import".to_owned(),
        subject_id: Some(i.id),
        subject_name: i.source.clone(),
        credential_id: i.credential_id,
        old_status: Some("registering".to_owned()),
        new_status: Some(new_status.to_owned()),
        code: None,
        message: Some(format!(
            "the import from {} registered {} of {} selected repositories ({} failed, {} skipped)",
            i.source, i.registered, i.selected, i.failed, i.skipped
        )),
        remedy: (i.failed > 0).then(|| "open the import to see why each failed repository was refused".to_owned()),
        details: details.to_string(),
    }
}
