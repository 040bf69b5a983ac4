//! Reading every copied table in one read-only transaction: SQLite's WAL gives a deferred
//! transaction one snapshot from its first read; PostgreSQL's `REPEATABLE READ` does the same.
//! So a repository in the snapshot always finds its credential, whatever the server writes
//! meanwhile, and the server is never blocked.

use super::error::SnapResult;
use super::format::{Header, SnapshotWriter, FORMAT, VERSION};
use super::key::{self, SealedKeys};
use super::schema::TABLES;
use super::value::Val;
use crate::store::{Dialect, Store};
use futures_util::TryStreamExt as _;
use secrecy::SecretString;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

/// The sealed secrets' key ids: what a restore's key file must hold.
const KEY_IDS: &str = "SELECT key_id FROM credentials UNION SELECT key_id FROM user_totp \
     UNION SELECT key_id FROM notification_channels UNION SELECT key_id FROM vault_canary";

pub(crate) struct Exported {
    pub header: Header,
    pub rows: BTreeMap<String, u64>,
    pub sha256: String,
}

impl Store {
    /// Writes a snapshot of every copied table to `out` (named `path` in errors); with a
    /// passphrase, the key file goes in too, sealed under it.
    pub(crate) async fn export_snapshot<W: Write>(
        &self,
        out: W,
        path: &Path,
        passphrase: Option<&SecretString>,
    ) -> SnapResult<(W, Exported)> {
        let dialect = self.dialect();
        let schema_version = self.schema_version().await?;
        on_pool!(&self.db, |pool| {
            let mut tx = pool.begin().await?;
            if dialect == Dialect::Postgres {
                sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").execute(&mut *tx).await?;
            }
            let mut key_ids: Vec<String> = sqlx::query_scalar(KEY_IDS).fetch_all(&mut *tx).await?;
            key_ids.sort();
            let master_key: Option<SealedKeys> = match passphrase {
                Some(p) => Some(key::seal(&self.vault.key_file_text(), &key_ids, p)?),
                None => None,
            };
            let header = Header {
                format: FORMAT.into(),
                version: VERSION,
                berth_version: env!("CARGO_PKG_VERSION").into(),
                created_at: chrono::Utc::now(),
                source: match dialect {
                    Dialect::Sqlite => "sqlite".into(),
                    Dialect::Postgres => "postgres".into(),
                },
                schema_version,
                key_ids,
                master_key,
            };
            let mut w = SnapshotWriter::new(out, path, &header)?;
            for spec in TABLES {
                w.table(spec)?;
                let cols: Vec<&str> = spec.columns.iter().map(|c| c.name).collect();
                let sql = format!("SELECT {} FROM {} ORDER BY {}", cols.join(", "), spec.name, spec.order_by);
                let mut rows = sqlx::query(&sql).fetch(&mut *tx);
                while let Some(row) = rows.try_next().await? {
                    let values = spec.columns.iter().map(|c| Val::read(&row, c)).collect::<Result<Vec<_>, _>>()?;
                    w.row(&values)?;
                }
            }
            tx.rollback().await?;
            let (out, rows, sha256) = w.finish()?;
            Ok((out, Exported { header, rows, sha256 }))
        })
    }

    /// The newest migration this database has run.
    pub(crate) async fn schema_version(&self) -> SnapResult<i64> {
        on_pool!(&self.db, |pool| {
            Ok(sqlx::query_scalar::<_, Option<i64>>("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
                .fetch_one(pool)
                .await?
                .unwrap_or(0))
        })
    }
}
