//! The dialect plumbing: one enum of the two pools, the macro that compiles a body once per
//! dialect, and typed column access on a row of either.

use super::Result;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;
use sqlx::Row;

/// The database behind a [`Store`](super::Store): embedded SQLite (one machine, no set-up) or PostgreSQL
/// (several instances). Every query is written once, with `$n` placeholders that both accept,
/// and runs on the concrete pool through [`on_pool!`], so each dialect keeps its native types
/// (SQLite text timestamps and integer booleans, PostgreSQL `timestamptz` and `boolean`).
#[derive(Clone)]
pub(crate) enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to the concrete pool of `$db`. The body is compiled once
/// per dialect, which is what lets one query text use each driver's own types.
macro_rules! on_pool {
    ($db:expr, |$pool:ident| $body:expr) => {
        match $db {
            $crate::store::dialect::Db::Sqlite($pool) => $body,
            $crate::store::dialect::Db::Postgres($pool) => $body,
        }
    };
}

/// Which database a store runs on; for the few statements whose text must differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// Typed column access on a row of either dialect, so row mappers are written once.
pub(crate) trait Cols {
    fn i64(&self, c: &str) -> Result<i64>;
    fn opt_i64(&self, c: &str) -> Result<Option<i64>>;
    fn str(&self, c: &str) -> Result<String>;
    fn opt_str(&self, c: &str) -> Result<Option<String>>;
    fn bool(&self, c: &str) -> Result<bool>;
    fn ts(&self, c: &str) -> Result<DateTime<Utc>>;
    fn opt_ts(&self, c: &str) -> Result<Option<DateTime<Utc>>>;
    fn opt_date(&self, c: &str) -> Result<Option<NaiveDate>>;
    fn bytes(&self, c: &str) -> Result<Vec<u8>>;
    fn opt_bool(&self, c: &str) -> Result<Option<bool>>;
    fn opt_bytes(&self, c: &str) -> Result<Option<Vec<u8>>>;
}

macro_rules! impl_cols {
    ($row:ty) => {
        impl Cols for $row {
            fn i64(&self, c: &str) -> Result<i64> {
                Ok(self.try_get(c)?)
            }
            fn opt_i64(&self, c: &str) -> Result<Option<i64>> {
                Ok(self.try_get(c)?)
            }
            fn str(&self, c: &str) -> Result<String> {
                Ok(self.try_get(c)?)
            }
            fn opt_str(&self, c: &str) -> Result<Option<String>> {
                Ok(self.try_get(c)?)
            }
            fn bool(&self, c: &str) -> Result<bool> {
                Ok(self.try_get(c)?)
            }
            fn ts(&self, c: &str) -> Result<DateTime<Utc>> {
                Ok(self.try_get(c)?)
            }
            fn opt_ts(&self, c: &str) -> Result<Option<DateTime<Utc>>> {
                Ok(self.try_get(c)?)
            }
            fn opt_date(&self, c: &str) -> Result<Option<NaiveDate>> {
                Ok(self.try_get(c)?)
            }
            fn bytes(&self, c: &str) -> Result<Vec<u8>> {
                Ok(self.try_get(c)?)
            }
            fn opt_bool(&self, c: &str) -> Result<Option<bool>> {
                Ok(self.try_get(c)?)
            }
            fn opt_bytes(&self, c: &str) -> Result<Option<Vec<u8>>> {
                Ok(self.try_get(c)?)
            }
        }
    };
}
impl_cols!(sqlx::sqlite::SqliteRow);
impl_cols!(sqlx::postgres::PgRow);
