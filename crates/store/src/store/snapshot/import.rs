//! Writing a snapshot into an empty database: every row with its id, in batches of
//! multi-row `INSERT`s inside one transaction (a failure leaves the target as empty as it
//! was, so the command can simply be run again), then PostgreSQL's identity sequences moved
//! past the copied ids. The triggers of migrations 0010 and 0019 fill `repository_counts`, the
//! search index and `search_trigram_counts` as the repositories go in, exactly as for rows the
//! server writes.

use super::error::{SnapResult, SnapshotError};
use super::format::{Item, SnapshotReader};
use super::schema::{Column, Kind, TableSpec, TABLES};
use super::value::Val;
use crate::store::dialect::Db;
use crate::store::{Dialect, Store};
use std::collections::BTreeMap;
use std::io::BufRead;

/// Rows per `INSERT`: well under either database's limit on bound parameters.
const BATCH: usize = 200;

/// Whether a database holds nothing a restore could overwrite or mix with. Tables the
/// migrations create but that are empty (a restore that failed and rolled back) do not count.
pub(crate) async fn target_problem(db: &Db) -> SnapResult<Option<String>> {
    let tables: Vec<String> = match db {
        Db::Sqlite(pool) => {
            sqlx::query_scalar(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
            )
            .fetch_all(pool)
            .await?
        }
        Db::Postgres(pool) => {
            sqlx::query_scalar(
                "SELECT table_name::text FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY 1",
            )
            .fetch_all(pool)
            .await?
        }
    };
    for table in &tables {
        let ours = super::schema::spec(table).is_some() || table == "sessions";
        if !ours && super::schema::not_copied(table).is_none() {
            return Ok(Some(format!(
                "it holds a table Berth does not use ({table}): is it another program's database?"
            )));
        }
        if !ours {
            continue;
        }
        let sql = format!("SELECT COUNT(*) FROM {table}");
        let n: i64 = on_pool!(db, |pool| sqlx::query_scalar(&sql).fetch_one(pool).await?);
        if n > 0 {
            return Ok(Some(format!("table {table} holds {n} row(s)")));
        }
    }
    Ok(None)
}

impl Store {
    /// Writes every row `reader` yields; the reader proves the checksum before it ends, and
    /// nothing is committed unless it did.
    pub(crate) async fn import_snapshot<R: BufRead>(
        &self,
        reader: &mut SnapshotReader<R>,
    ) -> SnapResult<BTreeMap<String, u64>> {
        let dialect = self.dialect();
        on_pool!(&self.db, |pool| {
            let mut tx = pool.begin().await?;
            let mut current: Option<(&'static TableSpec, Vec<&'static Column>)> = None;
            let mut batch: Vec<Vec<Val>> = Vec::with_capacity(BATCH);
            loop {
                let item = reader.next()?;
                let full = batch.len() >= BATCH;
                if full || !matches!(item, Some(Item::Row(_))) {
                    if let Some((spec, cols)) = &current {
                        if !batch.is_empty() {
                            let sql = insert_sql(spec, cols, batch.len());
                            let mut q = sqlx::query(&sql);
                            for row in &batch {
                                for (col, v) in cols.iter().zip(row) {
                                    q = match col.kind {
                                        Kind::Int => q.bind(v.int()),
                                        Kind::Text => q.bind(v.text()),
                                        Kind::Bool => q.bind(v.bool()),
                                        Kind::Ts => q.bind(v.ts()),
                                        Kind::Date => q.bind(v.date()),
                                        Kind::Bytes => q.bind(v.bytes()),
                                    };
                                }
                            }
                            q.execute(&mut *tx).await?;
                            batch.clear();
                        }
                    }
                }
                match item {
                    Some(Item::Table(spec, cols)) => current = Some((spec, cols)),
                    Some(Item::Row(values)) => batch.push(values),
                    None => break,
                }
            }
            // A snapshot taken before migration 0020 holds the SSH repository keys of before;
            // its statements move them (and change nothing in a newer snapshot's rows).
            let rekey = match dialect {
                Dialect::Sqlite => include_str!("../../../migrations/sqlite/0020_ssh_repository_keys.sql"),
                Dialect::Postgres => include_str!("../../../migrations/postgres/0020_ssh_repository_keys.sql"),
            };
            sqlx::raw_sql(rekey).execute(&mut *tx).await?;
            if dialect == Dialect::Postgres {
                for spec in TABLES.iter().filter(|t| t.identity) {
                    let sql = format!(
                        "SELECT setval(pg_get_serial_sequence('{t}', 'id'), GREATEST(COALESCE(MAX(id), 0), 1), \
                         MAX(id) IS NOT NULL) FROM {t}",
                        t = spec.name
                    );
                    sqlx::query(&sql).execute(&mut *tx).await?;
                }
            }
            tx.commit().await?;
            Ok::<_, SnapshotError>(reader.rows().clone())
        })
    }
}

fn insert_sql(spec: &TableSpec, cols: &[&Column], rows: usize) -> String {
    let names: Vec<&str> = cols.iter().map(|c| c.name).collect();
    let mut sql = format!("INSERT INTO {} ({}) VALUES ", spec.name, names.join(", "));
    let mut n = 0;
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for c in 0..cols.len() {
            if c > 0 {
                sql.push_str(", ");
            }
            n += 1;
            sql.push_str(&format!("${n}"));
        }
        sql.push(')');
    }
    sql
}

impl Store {
    /// Every table of this database and its columns, as the database lists them: for the test
    /// that keeps the snapshot's table list complete.
    #[doc(hidden)]
    pub async fn table_columns(&self) -> SnapResult<Vec<(String, Vec<String>)>> {
        let sql = match self.dialect() {
            Dialect::Sqlite => {
                "SELECT m.name AS t, p.name AS c FROM sqlite_master m, pragma_table_info(m.name) p \
                 WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' ORDER BY m.name, p.cid"
            }
            Dialect::Postgres => {
                "SELECT c.table_name::text AS t, c.column_name::text AS c FROM information_schema.columns c \
                 JOIN information_schema.tables t ON t.table_name = c.table_name AND t.table_schema = c.table_schema \
                 WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE' \
                 ORDER BY c.table_name, c.ordinal_position"
            }
        };
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        on_pool!(&self.db, |pool| {
            for row in sqlx::query(sql).fetch_all(pool).await? {
                let (t, c) =
                    (crate::store::dialect::Cols::str(&row, "t")?, crate::store::dialect::Cols::str(&row, "c")?);
                match out.last_mut() {
                    Some((last, cols)) if *last == t => cols.push(c),
                    _ => out.push((t, vec![c])),
                }
            }
        });
        Ok(out)
    }
}
