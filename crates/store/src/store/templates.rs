//! Credential templates: URL prefixes that choose a credential. The prefix arrives normalised
//! (the server reads it with `berth_core::UrlPrefix`); the store keeps one row per prefix.

use super::dialect::Cols;
use super::*;
use chrono::Utc;

const TEMPLATE_COLUMNS: &str = "SELECT t.id, t.url_prefix, t.credential_id, c.name AS credential_name, \
     t.created_by, t.created_at, t.updated_at FROM credential_templates t JOIN credentials c ON c.id = t.credential_id";

fn template_from_row(r: &impl Cols) -> Result<TemplateRow> {
    Ok(TemplateRow {
        id: r.i64("id")?,
        url_prefix: r.str("url_prefix")?,
        credential_id: r.i64("credential_id")?,
        credential_name: r.str("credential_name")?,
        created_by: r.str("created_by")?,
        created_at: r.ts("created_at")?,
        updated_at: r.ts("updated_at")?,
    })
}

/// A failed insert or update as the typed conflict it is: the prefix is taken, or the
/// credential was deleted meanwhile.
fn write_error(e: sqlx::Error, prefix: &str) -> StoreError {
    match e.as_database_error() {
        Some(d) if d.is_unique_violation() => StoreError::TemplateExists { prefix: prefix.to_owned() },
        Some(d) if d.is_foreign_key_violation() => StoreError::NotFound(Entity::Credential),
        _ => e.into(),
    }
}

impl Store {
    pub async fn create_template(&self, url_prefix: &str, credential_id: Id, created_by: &str) -> Result<TemplateRow> {
        on_pool!(&self.db, |pool| {
            let now = Utc::now();
            let id: Id = sqlx::query_scalar(
                "INSERT INTO credential_templates (url_prefix, credential_id, created_by, created_at, updated_at) \
                 SELECT $1, id, $3, $4, $4 FROM credentials WHERE id = $2 RETURNING id",
            )
            .bind(url_prefix)
            .bind(credential_id)
            .bind(created_by)
            .bind(now)
            .fetch_optional(pool)
            .await
            .map_err(|e| write_error(e, url_prefix))?
            .ok_or(StoreError::NotFound(Entity::Credential))?;
            self.get_template(id).await
        })
    }

    /// Every template, longest prefix first (then by text), the order they are tried in.
    pub async fn list_templates(&self) -> Result<Vec<TemplateRow>> {
        on_pool!(&self.db, |pool| {
            let rows = sqlx::query(&format!("{TEMPLATE_COLUMNS} ORDER BY length(t.url_prefix) DESC, t.url_prefix"))
                .fetch_all(pool)
                .await?;
            rows.iter().map(template_from_row).collect()
        })
    }

    pub async fn get_template(&self, id: Id) -> Result<TemplateRow> {
        on_pool!(&self.db, |pool| {
            let row = sqlx::query(&format!("{TEMPLATE_COLUMNS} WHERE t.id = $1")).bind(id).fetch_optional(pool).await?;
            row.as_ref().map(template_from_row).transpose()?.ok_or(StoreError::NotFound(Entity::Template))
        })
    }

    pub async fn find_template_by_prefix(&self, url_prefix: &str) -> Result<Option<TemplateRow>> {
        on_pool!(&self.db, |pool| {
            let row = sqlx::query(&format!("{TEMPLATE_COLUMNS} WHERE t.url_prefix = $1"))
                .bind(url_prefix)
                .fetch_optional(pool)
                .await?;
            row.as_ref().map(template_from_row).transpose()
        })
    }

    /// Points a template at another credential.
    pub async fn set_template_credential(&self, id: Id, credential_id: Id) -> Result<TemplateRow> {
        on_pool!(&self.db, |pool| {
            let n = sqlx::query(
                "UPDATE credential_templates SET credential_id = $1, updated_at = $2 WHERE id = $3 \
                 AND EXISTS (SELECT 1 FROM credentials WHERE id = $1)",
            )
            .bind(credential_id)
            .bind(Utc::now())
            .bind(id)
            .execute(pool)
            .await
            .map_err(|e| write_error(e, ""))?
            .rows_affected();
            if n == 0 {
                // Tell a missing template from a missing credential.
                self.get_template(id).await?;
                return Err(StoreError::NotFound(Entity::Credential));
            }
            self.get_template(id).await
        })
    }

    pub async fn delete_template(&self, id: Id) -> Result<()> {
        on_pool!(&self.db, |pool| {
            let n = sqlx::query("DELETE FROM credential_templates WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await?
                .rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound(Entity::Template));
            }
            Ok(())
        })
    }
}
