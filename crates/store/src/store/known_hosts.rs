//! SSH host keys an administrator trusted, per endpoint (`host` or `[host]:port`). Trusting a
//! key twice is one row; the keys a host is checked against are read fresh for every check, so
//! a key trusted or removed on one instance counts on every instance at once.

use super::dialect::Cols;
use super::*;
use chrono::Utc;

const KNOWN_HOST_COLUMNS: &str =
    "SELECT id, host, key_type, public_key, fingerprint, added_by, created_at FROM known_hosts";

fn known_host_from_row(r: &impl Cols) -> Result<KnownHostRow> {
    Ok(KnownHostRow {
        id: r.i64("id")?,
        host: r.str("host")?,
        key_type: r.str("key_type")?,
        public_key: r.str("public_key")?,
        fingerprint: r.str("fingerprint")?,
        added_by: r.str("added_by")?,
        created_at: r.ts("created_at")?,
    })
}

/// A host key to trust, already read and checked by the caller.
pub struct NewKnownHost<'a> {
    pub host: &'a str,
    pub key_type: &'a str,
    pub public_key: &'a str,
    pub fingerprint: &'a str,
    pub added_by: &'a str,
}

impl Store {
    /// Trusts a key for a host; `(row, false)` when it was trusted already.
    pub async fn add_known_host(&self, new: NewKnownHost<'_>) -> Result<(KnownHostRow, bool)> {
        on_pool!(&self.db, |pool| {
            let inserted: Option<Id> = sqlx::query_scalar(
                "INSERT INTO known_hosts (host, key_type, public_key, fingerprint, added_by, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (host, fingerprint) DO NOTHING RETURNING id",
            )
            .bind(new.host)
            .bind(new.key_type)
            .bind(new.public_key)
            .bind(new.fingerprint)
            .bind(new.added_by)
            .bind(Utc::now())
            .fetch_optional(pool)
            .await?;
            let row = sqlx::query(&format!("{KNOWN_HOST_COLUMNS} WHERE host = $1 AND fingerprint = $2"))
                .bind(new.host)
                .bind(new.fingerprint)
                .fetch_optional(pool)
                .await?;
            let row =
                row.as_ref().map(known_host_from_row).transpose()?.ok_or(StoreError::NotFound(Entity::KnownHost))?;
            Ok((row, inserted.is_some()))
        })
    }

    /// Every trusted key, by host, then in the order they were trusted.
    pub async fn list_known_hosts(&self) -> Result<Vec<KnownHostRow>> {
        on_pool!(&self.db, |pool| {
            let rows = sqlx::query(&format!("{KNOWN_HOST_COLUMNS} ORDER BY host, id")).fetch_all(pool).await?;
            rows.iter().map(known_host_from_row).collect()
        })
    }

    /// The keys trusted for one endpoint (`host` or `[host]:port`).
    pub async fn known_hosts_for(&self, host: &str) -> Result<Vec<KnownHostRow>> {
        on_pool!(&self.db, |pool| {
            let rows = sqlx::query(&format!("{KNOWN_HOST_COLUMNS} WHERE host = $1 ORDER BY id"))
                .bind(host)
                .fetch_all(pool)
                .await?;
            rows.iter().map(known_host_from_row).collect()
        })
    }

    pub async fn delete_known_host(&self, id: Id) -> Result<KnownHostRow> {
        on_pool!(&self.db, |pool| {
            let row = sqlx::query(&format!("{KNOWN_HOST_COLUMNS} WHERE id = $1")).bind(id).fetch_optional(pool).await?;
            let row =
                row.as_ref().map(known_host_from_row).transpose()?.ok_or(StoreError::NotFound(Entity::KnownHost))?;
            sqlx::query("DELETE FROM known_hosts WHERE id = $1").bind(id).execute(pool).await?;
            Ok(row)
        })
    }
}
