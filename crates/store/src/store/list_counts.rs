//! What a repository list counts beside its page: its `total` and the status chips' counts,
//! in milliseconds at 100,000 repositories (migration 0010).
//!
//! Every filter but the text search is answered from `repository_counts`, sums per (status,
//! credential, provider, host) that triggers keep true on every write, so a count never reads
//! the repositories themselves. A text search the trigram index answers counts its matches
//! exactly: they are among the few candidates it read anyway (migration 0019). A search that
//! walks the name index counts up to [`SEARCH_COUNT_BOUND`]; beyond, it says "more than" rather
//! than read every repository for a number nobody pages through.

use super::list_query::{Bind, Where};
use super::list_search::TextSearch;
use super::*;
use dialect::Cols;

/// How far a text search counts its matches exactly.
pub const SEARCH_COUNT_BOUND: i64 = 1_000;

/// On PostgreSQL, fold `repository_counts` back into one row per key once it holds more rows
/// than this (each write appends one).
const COMPACT_AFTER_ROWS: i64 = 512;

/// How many repositories a list's filters match: exact, or (a text search matching more than
/// [`SEARCH_COUNT_BOUND`]) at least `n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListTotal {
    pub n: i64,
    pub exact: bool,
}

impl ListTotal {
    pub fn exact(n: i64) -> Self {
        ListTotal { n, exact: true }
    }

    /// A count that may have been taken with `LIMIT bound + 1`, as a total.
    fn bounded(n: i64) -> Self {
        if n > SEARCH_COUNT_BOUND {
            ListTotal { n: SEARCH_COUNT_BOUND, exact: false }
        } else {
            ListTotal::exact(n)
        }
    }
}

/// How many repositories match the filters apart from their statuses, per status, and whether
/// those counts are exact (see [`ListTotal`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StatusCounts {
    pub counts: Vec<(String, i64)>,
    pub exact: bool,
}

impl StatusCounts {
    /// The total of the chosen statuses (all when none is chosen).
    pub fn total(&self, statuses: &[String]) -> ListTotal {
        let n = self
            .counts
            .iter()
            .filter(|(s, _)| statuses.is_empty() || statuses.iter().any(|x| x == s))
            .map(|(_, n)| n)
            .sum();
        ListTotal { n, exact: self.exact }
    }
}

impl Store {
    /// How many repositories match `f` (see [`ListTotal`]).
    pub async fn count_repositories(&self, f: &RepositoryFilter) -> Result<ListTotal> {
        let search = self.text_search(f).await?;
        self.count_matching(f, &search).await
    }

    /// [`Store::count_repositories`] with the text search already chosen (a list looks its
    /// trigrams up once for its page and its total).
    pub(super) async fn count_matching(&self, f: &RepositoryFilter, search: &TextSearch) -> Result<ListTotal> {
        if matches!(search, TextSearch::None) {
            return Ok(self.summed_counts(f).await?.total(&f.statuses));
        }
        let w = self.repository_where(f, true, search);
        // The index's candidates are few (at most the cap): they are counted exactly. A walk
        // stops at the bound.
        let sql = match search {
            TextSearch::Candidates { .. } => format!("SELECT COUNT(*) FROM repositories r{}", w.sql()),
            _ => format!(
                "SELECT COUNT(*) FROM (SELECT 1 FROM repositories r{} LIMIT {}) m",
                w.sql(),
                SEARCH_COUNT_BOUND + 1
            ),
        };
        let n: i64 = on_pool!(&self.db, |pool| bind_all!(sqlx::query_scalar(&sql), w).fetch_one(pool).await?);
        Ok(match search {
            TextSearch::Candidates { .. } => ListTotal::exact(n),
            _ => ListTotal::bounded(n),
        })
    }

    /// How many repositories match `f` apart from its statuses, per status (statuses with none
    /// left out): the counts of the list's status filter.
    pub async fn repository_status_counts(&self, f: &RepositoryFilter) -> Result<StatusCounts> {
        let search = self.text_search(f).await?;
        self.status_counts_matching(f, &search).await
    }

    /// [`Store::repository_status_counts`] with the text search already chosen.
    pub(super) async fn status_counts_matching(
        &self,
        f: &RepositoryFilter,
        search: &TextSearch,
    ) -> Result<StatusCounts> {
        if matches!(search, TextSearch::None) {
            return self.summed_counts(f).await;
        }
        let w = self.repository_where(f, false, search);
        let bound = match search {
            TextSearch::Candidates { .. } => String::new(),
            _ => format!(" LIMIT {}", SEARCH_COUNT_BOUND + 1),
        };
        let sql = format!(
            "SELECT m.status, COUNT(*) AS n FROM (SELECT r.status FROM repositories r{}{bound}) m GROUP BY m.status",
            w.sql()
        );
        let counts: Vec<(String, i64)> = on_pool!(&self.db, |pool| {
            let rows = bind_all!(sqlx::query(&sql), w).fetch_all(pool).await?;
            rows.iter().map(|r| Ok((r.str("status")?, r.i64("n")?))).collect::<Result<_>>()?
        });
        let seen: i64 = counts.iter().map(|(_, n)| n).sum();
        let exact = matches!(search, TextSearch::Candidates { .. }) || seen <= SEARCH_COUNT_BOUND;
        Ok(StatusCounts { counts, exact })
    }

    /// The counts per status from `repository_counts`, over `f`'s credential, provider and host
    /// (its text must be empty: the table knows nothing of names).
    async fn summed_counts(&self, f: &RepositoryFilter) -> Result<StatusCounts> {
        let mut w = Where::default();
        if let Some(id) = f.credential_id {
            w.terms.push(format!("credential_id = ${}", w.next()));
            w.binds.push(Bind::Int(id));
        }
        if let Some(p) = f.provider.as_deref() {
            w.text(|n| format!("provider = ${n}"), p.to_owned());
        }
        if let Some(h) = f.host.as_deref() {
            w.text(|n| format!("host = ${n}"), h.trim().to_ascii_lowercase());
        }
        let sql = format!(
            "SELECT status, CAST(SUM(n) AS BIGINT) AS n, COUNT(*) AS k FROM repository_counts{} GROUP BY status",
            w.sql()
        );
        let (counts, rows_read) = on_pool!(&self.db, |pool| {
            let rows = bind_all!(sqlx::query(&sql), w).fetch_all(pool).await?;
            let mut counts = Vec::with_capacity(rows.len());
            let mut read = 0;
            for r in &rows {
                read += r.i64("k")?;
                let n = r.i64("n")?;
                if n > 0 {
                    counts.push((r.str("status")?, n));
                }
            }
            (counts, read)
        });
        if rows_read > COMPACT_AFTER_ROWS {
            self.compact_repository_counts().await?;
        }
        Ok(StatusCounts { counts, exact: true })
    }

    /// Folds PostgreSQL's appended count rows into one per key (a no-op on SQLite, whose
    /// triggers update in place). One statement: rows appended meanwhile by other transactions
    /// are not in its snapshot and stay, and two instances compacting at once each fold only
    /// the rows they deleted, so the sums never change.
    pub async fn compact_repository_counts(&self) -> Result<()> {
        if let dialect::Db::Postgres(pool) = &self.db {
            sqlx::query(
                "WITH gone AS (DELETE FROM repository_counts RETURNING status, credential_id, provider, host, n) \
                 INSERT INTO repository_counts (status, credential_id, provider, host, n) \
                 SELECT status, credential_id, provider, host, SUM(n) FROM gone \
                 GROUP BY status, credential_id, provider, host HAVING SUM(n) <> 0",
            )
            .execute(pool)
            .await?;
        }
        Ok(())
    }
}
