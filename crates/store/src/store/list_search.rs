//! The repository list's text search (`q`: a substring of the name or the clone URL,
//! case-insensitive) without reading every repository (migrations 0010 and 0019).
//!
//! A specific search matches few repositories: the trigram index (SQLite's FTS5, PostgreSQL's
//! pg_trgm) finds the repositories holding its rarest trigrams, the rows are tested for the
//! whole text, and the page sorts those few by name. A broad one ("app", "bitbucket") matches
//! many: walking the name index and testing each row fills a page after a few rows, where the
//! index would hand over most of the table. Neither database can tell the two apart cheaply
//! (asking the index how many rows hold a common trigram reads them all; PostgreSQL's estimate
//! for a pattern is a guess), so `search_trigram_counts` keeps how many repositories hold each
//! trigram and the store chooses from that before reading anything.
//!
//! Only the rarest trigrams go to the index: a text like "ded-0421" in a fleet named
//! "seeded-…" has trigrams held by every repository ("ded"), and intersecting those lists was
//! most of a search's time; "042" and "421" alone narrow 100,000 repositories to a few hundred.
//!
//! Every search statement is kept prepared, on PostgreSQL too: the counts have already chosen
//! the plan's shape (a bitmap scan of the trigram index for candidates, the name index for a
//! walk), and PostgreSQL's generic plan is that same shape whatever the text. Planned afresh
//! for each text, a specific search at 100,000 repositories spent 0.39 ms planning to run for
//! 0.33 ms.

use super::accounts::like_pattern;
use super::list_query::Where;
use super::*;
use dialect::Cols;

/// A search reads its candidates through the trigram index when its rarest trigram is held by
/// no more than this many repositories (the most rows a search reads and sorts); a text whose
/// every trigram is commoner walks the name index, where matches are dense.
pub const SEARCH_CANDIDATE_CAP: i64 = 5_000;

/// How many of the text's rarest trigrams the index intersects: enough to narrow a text whose
/// rarest trigram is common-ish, few enough that the index never reads long lists.
const INDEX_TERMS: usize = 3;

/// A trigram held by more repositories than this adds reading, not narrowing: it is left to the
/// test of each row.
const INDEX_TERM_CAP: i64 = 8 * SEARCH_CANDIDATE_CAP;

/// How many of a text's trigrams are looked up (a very long text is narrowed by its first ones;
/// every candidate is still tested for the whole text).
const TRIGRAMS_LOOKED_UP: usize = 32;

/// How a page and its counts find the repositories matching a text search.
#[derive(Debug, Clone)]
pub(super) enum TextSearch {
    /// No text to search for.
    None,
    /// The repositories holding every one of `trigrams` (through the trigram index, at most
    /// [`SEARCH_CANDIDATE_CAP`] of them), each tested for the text.
    Candidates { trigrams: Vec<String>, needle: String, pattern: String },
    /// Test each row in list order.
    Walk { needle: String, pattern: String },
}

impl RepositoryFilter {
    /// The text searched for, trimmed; `None` when blank.
    pub(super) fn text(&self) -> Option<&str> {
        self.q.as_deref().map(str::trim).filter(|q| !q.is_empty())
    }
}

/// The distinct trigrams of `q` that `search_trigram_counts` counts and both indexes hold:
/// three ASCII letters or digits, lower-cased, in the order they first appear.
pub(super) fn counted_trigrams(q: &str) -> Vec<String> {
    text_trigrams(&q.to_lowercase())
}

/// The distinct trigrams of three ASCII lower-case letters or digits in `s`, as migration
/// 0019's triggers count them in a repository's (already lower-cased) search text.
pub(super) fn text_trigrams(s: &str) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    let mut out: Vec<String> = Vec::new();
    for w in chars.windows(3) {
        if w.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()) {
            let t: String = w.iter().collect();
            if !out.contains(&t) {
                out.push(t);
            }
        }
    }
    out
}

impl Store {
    /// Whether the text search has its trigram index: always on SQLite; on PostgreSQL when the
    /// database allows the pg_trgm extension. Migration 0010 creates the index when it can;
    /// where the extension was refused then and has been allowed since, this creates it now.
    pub async fn ensure_search_index(&self) -> Result<bool> {
        let dialect::Db::Postgres(pool) = &self.db else { return Ok(true) };
        let exists = || async {
            sqlx::query_scalar::<_, bool>(
                "SELECT EXISTS (SELECT 1 FROM pg_indexes WHERE indexname = 'repositories_search_trgm')",
            )
            .fetch_one(pool)
            .await
        };
        if exists().await? {
            return Ok(true);
        }
        // Refused (no right to create the extension) or raced by another instance creating the
        // same index: either way, whether it exists afterwards is the answer.
        let _ = sqlx::query("CREATE EXTENSION IF NOT EXISTS pg_trgm").execute(pool).await;
        let _ = sqlx::query(
            "CREATE INDEX IF NOT EXISTS repositories_search_trgm ON repositories USING gin (search gin_trgm_ops)",
        )
        .execute(pool)
        .await;
        Ok(exists().await?)
    }

    /// How `f`'s text search should be answered: one lookup of its trigrams' counts.
    pub(super) async fn text_search(&self, f: &RepositoryFilter) -> Result<TextSearch> {
        let Some(q) = f.text() else { return Ok(TextSearch::None) };
        let (needle, pattern) = (q.to_lowercase(), like_pattern(q));
        let mut trigrams = counted_trigrams(q);
        trigrams.truncate(TRIGRAMS_LOOKED_UP);
        if trigrams.is_empty() {
            return Ok(TextSearch::Walk { needle, pattern });
        }
        let mut counted = self.trigram_counts(&trigrams).await?;
        counted.sort_by_key(|(_, n)| *n);
        if counted.first().is_none_or(|(_, n)| *n > SEARCH_CANDIDATE_CAP) {
            return Ok(TextSearch::Walk { needle, pattern });
        }
        let trigrams = counted
            .into_iter()
            .enumerate()
            .filter(|(i, (_, n))| *i == 0 || *n <= INDEX_TERM_CAP)
            .take(INDEX_TERMS)
            .map(|(_, (t, _))| t)
            .collect();
        Ok(TextSearch::Candidates { trigrams, needle, pattern })
    }

    /// How many repositories hold each of `trigrams` (0 for one never seen). On PostgreSQL, a
    /// trigram's appended rows are folded back into one when the lookup read many of them.
    async fn trigram_counts(&self, trigrams: &[String]) -> Result<Vec<(String, i64)>> {
        let marks: Vec<String> = (1..=trigrams.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT trigram, CAST(SUM(n) AS BIGINT) AS n, COUNT(*) AS k FROM search_trigram_counts \
             WHERE trigram IN ({}) GROUP BY trigram",
            marks.join(", ")
        );
        let (found, rows_read) = on_pool!(&self.db, |pool| {
            let mut q = sqlx::query(&sql);
            for t in trigrams {
                q = q.bind(t);
            }
            let mut found = std::collections::HashMap::new();
            let mut read = 0;
            for r in q.fetch_all(pool).await? {
                read += r.i64("k")?;
                found.insert(r.str("trigram")?, r.i64("n")?);
            }
            (found, read)
        });
        if rows_read > 4 * i64::try_from(trigrams.len()).unwrap_or(i64::MAX) {
            self.fold_if_nobody_else_is(trigrams).await?;
        }
        Ok(trigrams.iter().map(|t| (t.clone(), found.get(t).copied().unwrap_or(0))).collect())
    }

    /// A search's fold of its trigrams' rows, skipped while another search folds: right after a
    /// bulk import every concurrent search would otherwise fold the same rows, each waiting on
    /// the one before (a p99 of 400 ms at 100,000 repositories and 16 connections). The sums
    /// are right either way; the next search or the housekeeping round folds what is left.
    async fn fold_if_nobody_else_is(&self, trigrams: &[String]) -> Result<()> {
        let dialect::Db::Postgres(pool) = &self.db else { return Ok(()) };
        let mut tx = pool.begin().await?;
        // Any constant shared by every instance: "berth search trigram fold".
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(7411902113)").fetch_one(&mut *tx).await?;
        if got {
            sqlx::query(&fold_sql("WHERE trigram = ANY($1)")).bind(trigrams).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Folds all of PostgreSQL's appended trigram count rows into one per trigram (the
    /// housekeeping round; a search folds only its own): a no-op on SQLite, whose triggers
    /// update in place.
    pub async fn compact_search_trigram_counts(&self) -> Result<()> {
        let dialect::Db::Postgres(pool) = &self.db else { return Ok(()) };
        sqlx::query(&fold_sql("")).execute(pool).await?;
        Ok(())
    }
}

/// Folds the trigram count rows `which` selects (a `WHERE`, or empty for all): as for
/// `repository_counts`, one statement that sums only the rows it deleted, so no sum changes
/// whoever runs at once.
fn fold_sql(which: &str) -> String {
    format!(
        "WITH gone AS (DELETE FROM search_trigram_counts {which} RETURNING trigram, n) \
         INSERT INTO search_trigram_counts (trigram, n) SELECT trigram, SUM(n) FROM gone \
         GROUP BY trigram HAVING SUM(n) <> 0"
    )
}

/// Adds the `WHERE` terms of a text search to `w`: the index's candidates, then the test of
/// each row for the whole text.
pub(super) fn push_text_terms(dialect: Dialect, search: &TextSearch, w: &mut Where) {
    match (search, dialect) {
        (TextSearch::None, _) => {}
        (TextSearch::Candidates { trigrams, .. }, Dialect::Sqlite) => {
            // Each trigram a one-token phrase (letters and digits: nothing to quote).
            let query = trigrams.iter().map(|t| format!("\"{t}\"")).collect::<Vec<_>>().join(" AND ");
            w.text(
                |n| format!("r.id IN (SELECT rowid FROM repository_search WHERE repository_search MATCH ${n})"),
                query,
            );
        }
        (TextSearch::Candidates { trigrams, .. }, Dialect::Postgres) => {
            for t in trigrams {
                w.text(|n| format!("r.search LIKE ${n}"), format!("%{t}%"));
            }
        }
        (TextSearch::Walk { .. }, _) => {}
    }
    match (search, dialect) {
        (TextSearch::None, _) => {}
        (TextSearch::Candidates { pattern, .. } | TextSearch::Walk { pattern, .. }, Dialect::Sqlite) => w.text(
            // SQLite's LIKE ignores ASCII case itself, and its lower() changes nothing else, so
            // LOWER() would only copy every candidate's name and URL (a third of a search's time).
            |n| format!("(r.name LIKE ${n} ESCAPE '\\' OR r.clone_url LIKE ${n} ESCAPE '\\')"),
            pattern.clone(),
        ),
        // `search` is the lower-cased name and URL. Not a LIKE: pg_trgm's index would answer
        // it by reading every trigram of the text, the common ones included, where the rarest
        // ones (above) or a walk of the name index are what the counts chose.
        (TextSearch::Candidates { needle, .. } | TextSearch::Walk { needle, .. }, Dialect::Postgres) => {
            w.text(|n| format!("strpos(r.search, ${n}) > 0"), needle.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trigrams_a_search_looks_up() {
        assert_eq!(counted_trigrams("ded-0421"), vec!["ded", "042", "421"]);
        assert_eq!(counted_trigrams("App"), vec!["app"]);
        assert!(counted_trigrams("ab").is_empty(), "shorter than a trigram");
        assert!(counted_trigrams("a-b_c").is_empty(), "no three letters or digits in a row");
        assert_eq!(counted_trigrams("aaaa"), vec!["aaa"], "each once");
        assert!(counted_trigrams("äöü").is_empty(), "only ASCII letters and digits are counted");
        assert_eq!(counted_trigrams("50%x2000"), vec!["x20", "200", "000"], "the % breaks a run");
    }
}
