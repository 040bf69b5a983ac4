//! The repository list's text search (`q`: a substring of the name or the clone URL,
//! case-insensitive) without reading every repository (migration 0010).
//!
//! A specific search matches few repositories; a trigram index finds them directly and the page
//! sorts those few by name. A broad one ("app", "bitbucket") matches many; walking the name
//! index and testing each row then fills a page after a few rows. SQLite's planner cannot tell
//! the two apart, so the store asks the trigram index (FTS5, a phrase query on positions) how
//! many match, up to [`SEARCH_COUNT_BOUND`], and chooses; a list asks once for its page and
//! its counts. PostgreSQL's planner makes the same choice itself from
//! pg_trgm's statistics, given the pattern rather than a generic plan (the search queries are
//! not prepared for reuse).

use super::accounts::like_pattern;
use super::list_counts::SEARCH_COUNT_BOUND;
use super::*;

/// How a page and its counts find the repositories matching a text search.
#[derive(Debug, Clone)]
pub(super) enum TextSearch {
    /// No text to search for.
    None,
    /// SQLite: the trigram index's matches of `phrase` (an FTS5 phrase), `count` of them, no
    /// more than the bound.
    Candidates { phrase: String, count: i64 },
    /// Test each row in list order. `wide`: the trigram index saw more matches than the bound.
    Walk { pattern: String, wide: bool },
}

impl RepositoryFilter {
    /// The text searched for, trimmed; `None` when blank.
    pub(super) fn text(&self) -> Option<&str> {
        self.q.as_deref().map(str::trim).filter(|q| !q.is_empty())
    }

    /// The text is the only filter besides the statuses.
    pub(super) fn has_only_text(&self) -> bool {
        self.credential_id.is_none() && self.provider.is_none() && self.host.is_none() && self.statuses.is_empty()
    }
}

/// The trigram index answers a phrase of at least one trigram; `%`, `_` and `\` are plain
/// characters in a phrase (no `LIKE` escaping).
fn trigram_searchable(q: &str) -> bool {
    q.chars().count() >= 3 && !q.chars().any(char::is_control)
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
        let _ = sqlx::query("CREATE INDEX IF NOT EXISTS repositories_search_trgm ON repositories USING gin (search gin_trgm_ops)")
            .execute(pool)
            .await;
        Ok(exists().await?)
    }

    /// How `f`'s text search should be answered (one short read of the trigram index on SQLite).
    pub(super) async fn text_search(&self, f: &RepositoryFilter) -> Result<TextSearch> {
        let Some(q) = f.text() else { return Ok(TextSearch::None) };
        let pattern = like_pattern(q);
        let dialect::Db::Sqlite(pool) = &self.db else {
            return Ok(TextSearch::Walk { pattern, wide: false });
        };
        if !trigram_searchable(q) {
            return Ok(TextSearch::Walk { pattern, wide: false });
        }
        let phrase = fts_phrase(q);
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM (SELECT 1 FROM repository_search WHERE repository_search MATCH $1 LIMIT $2) m",
        )
        .bind(&phrase)
        .bind(SEARCH_COUNT_BOUND + 1)
        .fetch_one(pool)
        .await?;
        Ok(if count > SEARCH_COUNT_BOUND {
            TextSearch::Walk { pattern, wide: true }
        } else {
            TextSearch::Candidates { phrase, count }
        })
    }
}

/// `q` as one FTS5 phrase (quotes doubled): the trigram tokenizer splits it into trigrams that
/// must follow each other, which is `q` as a substring (migration 0015 keeps positions), the
/// case folded as the index folds it.
fn fts_phrase(q: &str) -> String {
    format!("\"{}\"", q.to_lowercase().replace('"', "\"\""))
}

/// The `WHERE` term of a text search, its pattern bound as `$n`.
pub(super) fn text_term(dialect: Dialect, search: &TextSearch, n: usize) -> Option<(String, String)> {
    match search {
        TextSearch::None => None,
        TextSearch::Candidates { phrase, .. } => Some((
            format!("r.id IN (SELECT rowid FROM repository_search WHERE repository_search MATCH ${n})"),
            phrase.clone(),
        )),
        TextSearch::Walk { pattern, .. } => Some((
            match dialect {
                // Backslash is PostgreSQL's default LIKE escape; `search` is the lower-cased
                // name and URL, in byte order ("C"), which pg_trgm's index answers.
                Dialect::Postgres => format!("r.search LIKE ${n}"),
                Dialect::Sqlite => {
                    format!("(LOWER(r.name) LIKE ${n} ESCAPE '\\' OR LOWER(r.clone_url) LIKE ${n} ESCAPE '\\')")
                }
            },
            pattern.clone(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_texts_the_trigram_index_answers() {
        assert!(trigram_searchable("app"));
        assert!(trigram_searchable("ded-0421"));
        assert!(!trigram_searchable("ab"), "shorter than a trigram");
        assert!(trigram_searchable("50%"), "a wildcard is a plain character in a phrase");
        assert!(trigram_searchable("a_b"));
        assert!(trigram_searchable("a\\b"));
        assert!(!trigram_searchable("a\nb"));
        assert!(trigram_searchable("äöü"), "three characters, whatever their bytes");
    }

    #[test]
    fn a_search_is_one_phrase_whatever_it_holds() {
        assert_eq!(fts_phrase("App"), "\"app\"");
        assert_eq!(fts_phrase("a\"b OR c"), "\"a\"\"b or c\"", "quotes doubled, operators inside the phrase");
    }
}
