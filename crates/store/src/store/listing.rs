//! Paged lists: keyset pages (the rows after a key, in the list's order, `limit` of them) and
//! the counts beside them. No page reads more rows than it shows (plus one to know whether
//! another page follows), whatever its depth, and each filter of the repository list is a range
//! of an index that is already in list order (migration 0005).
//!
//! The repository list is ordered by name, case-insensitively. Names are unique under that
//! collation (the unique index), so the name alone is a total order and the key of a page.

use super::list_query::{Bind, Where};
use super::list_search::{push_text_terms, TextSearch};
use super::mappers::{
    credential_from_row, repository_from_row, user_summary_from_row, CREDENTIAL_COLUMNS, REPOSITORY_COLUMNS,
};
use super::repositories::refresh_status_sql;
use super::*;
use dialect::Cols;

/// The statuses a repository can have, as the `status` column holds them.
pub const REPOSITORY_STATUSES: [&str; 5] = ["ok", "warn", "fail", "paused", "unchecked"];

/// A page of a search the trigram index answers ([`Store::candidates_page`]).
struct CandidatesPage {
    rows: Vec<RepositoryRow>,
    /// How many repositories match in all; `None` when the page is empty.
    matches: Option<i64>,
    /// The same per status, when asked for and the page is not empty.
    per_status: Option<StatusCounts>,
}

/// Which repositories to list: every field that is set must match.
#[derive(Debug, Clone, Default)]
pub struct RepositoryFilter {
    /// A case-insensitive substring of the name or the clone URL.
    pub q: Option<String>,
    /// Any of these statuses (from [`REPOSITORY_STATUSES`]; others match nothing).
    pub statuses: Vec<String>,
    pub credential_id: Option<Id>,
    pub provider: Option<String>,
    /// The clone URL's host, with its port when it has one; case-insensitive.
    pub host: Option<String>,
}

/// The host part of a clone URL as the `host` column keeps it: after `scheme://` (or `user@`
/// of an scp-style address), up to the path, without a user name, lower-case.
pub(super) fn host_of(clone_url: &str) -> String {
    let rest = clone_url.split_once("://").map_or(clone_url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    authority.to_ascii_lowercase()
}

/// A repository page's statement: `w`'s rows in name order, `limit` of them. The limit is
/// written into the text (an integer, never a person's text): behind `LIMIT $n`, PostgreSQL
/// costs a kept plan for a tenth of the table, finds it dearer than one planned for the bound
/// value, and so planned each request's page afresh, which took as long as running it.
fn page_sql(w: &Where, limit: i64) -> String {
    format!("{REPOSITORY_COLUMNS}{} ORDER BY r.name COLLATE NOCASE LIMIT {}", w.sql(), limit.max(0))
}

impl Store {
    /// The filter's `WHERE` terms; `with_status` false leaves the status out (the counts per
    /// status are taken over the other filters). `search` is how the text is found
    /// ([`Store::text_search`]).
    pub(super) fn repository_where(&self, f: &RepositoryFilter, with_status: bool, search: &TextSearch) -> Where {
        let mut w = Where::default();
        push_text_terms(self.dialect(), search, &mut w);
        if with_status && !f.statuses.is_empty() {
            // Only the known names, written as literals: they come from a fixed list.
            let known: Vec<String> = REPOSITORY_STATUSES
                .iter()
                .filter(|s| f.statuses.iter().any(|x| x == *s))
                .map(|s| format!("'{s}'"))
                .collect();
            w.terms.push(if known.is_empty() {
                "1 = 0".to_owned()
            } else {
                format!("r.status IN ({})", known.join(", "))
            });
        }
        if let Some(id) = f.credential_id {
            w.terms.push(format!("r.credential_id = ${}", w.next()));
            w.binds.push(Bind::Int(id));
        }
        if let Some(p) = f.provider.as_deref() {
            w.text(|n| format!("r.provider = ${n}"), p.to_owned());
        }
        if let Some(h) = f.host.as_deref() {
            w.text(|n| format!("r.host = ${n}"), h.trim().to_ascii_lowercase());
        }
        w
    }

    /// Up to `limit` repositories matching `f`, by name (case-insensitive), after the one named
    /// `after` when given: one index range, stopped at `limit`.
    pub async fn repositories_page(
        &self,
        f: &RepositoryFilter,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<RepositoryRow>> {
        let search = self.text_search(f).await?;
        self.page_matching(f, &search, after, limit).await
    }

    /// A page of the repository list (up to `page_limit` rows, and one more when another page
    /// follows) and its total: the rows themselves when a first page holds every match (no
    /// count to take), else [`Store::count_repositories`]. A text search looks its trigrams up
    /// once for both; one the trigram index answers counts its candidates in the same statement
    /// as the page.
    pub async fn repository_list(
        &self,
        f: &RepositoryFilter,
        after: Option<&str>,
        page_limit: i64,
    ) -> Result<(Vec<RepositoryRow>, ListTotal)> {
        let search = self.text_search(f).await?;
        if matches!(search, TextSearch::Candidates { .. }) {
            let CandidatesPage { rows, matches, .. } =
                self.candidates_page(f, &search, after, page_limit + 1, false).await?;
            if let Some(n) = matches {
                return Ok((rows, ListTotal::exact(n)));
            }
            // No row after the cursor: the window had nothing to count.
            let total = self.count_matching(f, &search).await?;
            return Ok((rows, total));
        }
        let rows = self.page_matching(f, &search, after, page_limit + 1).await?;
        let shown = i64::try_from(rows.len()).unwrap_or(i64::MAX);
        let total = if after.is_none() && shown <= page_limit {
            ListTotal::exact(shown)
        } else {
            self.count_matching(f, &search).await?
        };
        Ok((rows, total))
    }

    /// A page of the repository list as [`Store::repository_list`] reads it, with the counts
    /// per status of VC Repos' chips ([`Store::repository_status_counts`]) in place of a total.
    pub async fn repository_list_with_counts(
        &self,
        f: &RepositoryFilter,
        after: Option<&str>,
        page_limit: i64,
    ) -> Result<(Vec<RepositoryRow>, StatusCounts)> {
        let search = self.text_search(f).await?;
        // A search the trigram index answers, with no status chosen: the page's statement counts
        // its candidates per status too, so they are read and tested once, not twice.
        if matches!(search, TextSearch::Candidates { .. }) && f.statuses.is_empty() {
            let page = self.candidates_page(f, &search, after, page_limit + 1, true).await?;
            if let Some(counts) = page.per_status {
                return Ok((page.rows, counts));
            }
            // No row after the cursor: the window had nothing to count.
            return Ok((page.rows, self.status_counts_matching(f, &search).await?));
        }
        tokio::try_join!(self.page_matching(f, &search, after, page_limit + 1), self.status_counts_matching(f, &search))
    }

    /// [`Store::repositories_page`] with the text search already chosen.
    async fn page_matching(
        &self,
        f: &RepositoryFilter,
        search: &TextSearch,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<RepositoryRow>> {
        let mut w = self.repository_where(f, true, search);
        if let Some(a) = after {
            w.text(|n| format!("r.name COLLATE NOCASE > ${n}"), a.to_owned());
        }
        let sql = page_sql(&w, limit);
        on_pool!(&self.db, |pool| {
            let rows = bind_all!(sqlx::query(&sql), w).fetch_all(pool).await?;
            rows.iter().map(repository_from_row).collect()
        })
    }

    /// A page of a search the trigram index answers, and how many repositories match in all
    /// (`None` when the page is empty): the candidates are few, so one statement tests and
    /// counts them all (per status too, when `per_status`) and returns the page after the cursor.
    async fn candidates_page(
        &self,
        f: &RepositoryFilter,
        search: &TextSearch,
        after: Option<&str>,
        limit: i64,
        per_status: bool,
    ) -> Result<CandidatesPage> {
        let mut w = self.repository_where(f, true, search);
        // The candidates are tested, counted and sorted with their id and name only; the page's
        // rows are then read by id. Sorting every candidate's whole row took 0.9 ms of a
        // search's 1 ms on SQLite at 100,000 repositories; this takes 0.5.
        let mut windows = ", COUNT(*) OVER () AS search_matches".to_owned();
        let mut carried = ", k.search_matches".to_owned();
        if per_status {
            for (i, s) in REPOSITORY_STATUSES.iter().enumerate() {
                // The statuses are a fixed list of literals.
                windows.push_str(&format!(", SUM(CASE WHEN r.status = '{s}' THEN 1 ELSE 0 END) OVER () AS status_{i}"));
                carried.push_str(&format!(", k.status_{i}"));
            }
        }
        let cursor = match after {
            Some(a) => {
                let n = w.next();
                w.binds.push(Bind::Text(a.to_owned()));
                format!(" WHERE m.name COLLATE NOCASE > ${n}")
            }
            None => String::new(),
        };
        let (columns, _) = REPOSITORY_COLUMNS.split_once(" FROM ").unwrap_or((REPOSITORY_COLUMNS, ""));
        // The limit is written into the text, as in `page_sql`.
        let sql = format!(
            "{columns}{carried} FROM (SELECT * FROM (SELECT r.id, r.name{windows} FROM repositories r{}) m{cursor} \
             ORDER BY m.name COLLATE NOCASE LIMIT {}) k JOIN repositories r ON r.id = k.id \
             LEFT JOIN credentials c ON c.id = r.credential_id ORDER BY k.name COLLATE NOCASE",
            w.sql(),
            limit.max(0)
        );
        on_pool!(&self.db, |pool| {
            let rows = bind_all!(sqlx::query(&sql), w).fetch_all(pool).await?;
            let matches = rows.first().map(|r| r.i64("search_matches")).transpose()?;
            let per_status = match rows.first().filter(|_| per_status) {
                Some(r) => {
                    let mut counts = Vec::new();
                    for (i, s) in REPOSITORY_STATUSES.iter().enumerate() {
                        let n = r.i64(&format!("status_{i}"))?;
                        if n > 0 {
                            counts.push(((*s).to_owned(), n));
                        }
                    }
                    Some(StatusCounts { counts, exact: true })
                }
                None => None,
            };
            let rows = rows.iter().map(repository_from_row).collect::<Result<Vec<_>>>()?;
            Ok(CandidatesPage { rows, matches, per_status })
        })
    }

    /// The plan the database chooses for a repository page, one line per step (SQLite's
    /// `EXPLAIN QUERY PLAN` details, PostgreSQL's `EXPLAIN` lines): for tests that the list
    /// is an index range and no sort.
    pub async fn explain_repositories_page(&self, f: &RepositoryFilter, after: Option<&str>) -> Result<Vec<String>> {
        let search = self.text_search(f).await?;
        let mut w = self.repository_where(f, true, &search);
        if let Some(a) = after {
            w.text(|n| format!("r.name COLLATE NOCASE > ${n}"), a.to_owned());
        }
        let sql = page_sql(&w, 100);
        let (sqlite, postgres) = (format!("EXPLAIN QUERY PLAN {sql}"), format!("EXPLAIN {sql}"));
        match &self.db {
            dialect::Db::Sqlite(pool) => {
                let rows = bind_all!(sqlx::query(&sqlite), w).fetch_all(pool).await?;
                rows.iter().map(|r| r.str("detail")).collect()
            }
            dialect::Db::Postgres(pool) => {
                let rows = bind_all!(sqlx::query(&postgres), w).fetch_all(pool).await?;
                rows.iter().map(|r| r.str("QUERY PLAN")).collect()
            }
        }
    }

    /// Inserts many repositories at once, unchecked, in one transaction (batches of 500 rows a
    /// statement): seeding for benchmarks and tests of long lists. All or none: a name or key
    /// that is taken refuses the whole call. Each starts `unchecked` (or `paused` with its
    /// credential).
    pub async fn insert_repositories(&self, rows: &[NewRepository]) -> Result<u64> {
        const COLS: usize = 11;
        let now = chrono::Utc::now();
        on_pool!(&self.db, |pool| {
            let mut tx = pool.begin().await?;
            let mut n = 0;
            for chunk in rows.chunks(500) {
                let values: Vec<String> = (0..chunk.len())
                    .map(|i| {
                        let p: Vec<String> = (1..=COLS).map(|c| format!("${}", i * COLS + c)).collect();
                        format!("({})", p.join(", "))
                    })
                    .collect();
                let sql = format!(
                    "INSERT INTO repositories (name, vcs, clone_url, repo_key, provider, default_branch, credential_id, \
                     created_at, updated_at, next_check_at, host) VALUES {}",
                    values.join(", ")
                );
                let mut q = sqlx::query(&sql);
                for r in chunk {
                    q = q
                        .bind(&r.name)
                        .bind(&r.vcs)
                        .bind(&r.clone_url)
                        .bind(&r.repo_key)
                        .bind(&r.provider)
                        .bind(&r.default_branch)
                        .bind(r.credential_id)
                        .bind(now)
                        .bind(now)
                        .bind(r.next_check_at)
                        .bind(host_of(&r.clone_url));
                }
                n += q.execute(&mut *tx).await?.rows_affected();
            }
            // Only the new rows of a paused credential change (read through the credential's
            // index, not every unchecked row).
            sqlx::query(&refresh_status_sql(
                "status = 'unchecked' AND credential_id IN (SELECT id FROM credentials WHERE checks_paused_at IS NOT NULL)",
            ))
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(n)
        })
    }

    /// How many repositories use each of these credentials (those used by none left out).
    pub async fn repository_counts_by_credential(&self, ids: &[Id]) -> Result<std::collections::HashMap<Id, i64>> {
        if ids.is_empty() {
            return Ok(std::collections::HashMap::new());
        }
        // Ids are integers, so writing them into the text is safe.
        let list = ids.iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
        on_pool!(&self.db, |pool| {
            let rows = sqlx::query(&format!(
                "SELECT credential_id, COUNT(*) AS n FROM repositories WHERE credential_id IN ({list}) GROUP BY credential_id"
            ))
            .fetch_all(pool)
            .await?;
            rows.iter().map(|r| Ok((r.i64("credential_id")?, r.i64("n")?))).collect()
        })
    }

    /// The first `limit` repositories (id, name) by name that use a credential: one index range.
    pub async fn repositories_using_first(&self, credential_id: Id, limit: i64) -> Result<Vec<(Id, String)>> {
        on_pool!(&self.db, |pool| {
            Ok(sqlx::query_as(
                "SELECT id, name FROM repositories WHERE credential_id = $1 ORDER BY name COLLATE NOCASE LIMIT $2",
            )
            .bind(credential_id)
            .bind(limit.max(0))
            .fetch_all(pool)
            .await?)
        })
    }

    /// The credentials with these ids (those that exist), in no particular order: what one page
    /// of repositories needs of its credentials.
    pub async fn credentials_by_ids(&self, ids: &[Id]) -> Result<Vec<CredentialRow>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // Ids are integers, so writing them into the text is safe.
        let list = ids.iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
        on_pool!(&self.db, |pool| {
            let rows = sqlx::query(&format!("{CREDENTIAL_COLUMNS} WHERE id IN ({list})")).fetch_all(pool).await?;
            rows.iter().map(credential_from_row).collect()
        })
    }

    /// Up to `limit` credentials by name (case-insensitive, unique), after `after`.
    pub async fn credentials_page(&self, after: Option<&str>, limit: i64) -> Result<Vec<CredentialRow>> {
        // Two texts rather than `$1 IS NULL OR ...`, which SQLite cannot answer from an index range.
        let from = if after.is_some() { "WHERE name COLLATE NOCASE > $1" } else { "WHERE $1 IS NULL" };
        on_pool!(&self.db, |pool| {
            let rows = sqlx::query(&format!("{CREDENTIAL_COLUMNS} {from} ORDER BY name COLLATE NOCASE LIMIT $2"))
                .bind(after)
                .bind(limit.max(0))
                .fetch_all(pool)
                .await?;
            rows.iter().map(credential_from_row).collect()
        })
    }

    /// Up to `limit` credentials whose background checks are paused, by name: what the
    /// Credentials page names above its list, whichever page is shown.
    pub async fn paused_credentials(&self, limit: i64) -> Result<Vec<CredentialRow>> {
        on_pool!(&self.db, |pool| {
            let rows = sqlx::query(&format!(
                "{CREDENTIAL_COLUMNS} WHERE checks_paused_at IS NOT NULL ORDER BY name COLLATE NOCASE LIMIT $1"
            ))
            .bind(limit.max(0))
            .fetch_all(pool)
            .await?;
            rows.iter().map(credential_from_row).collect()
        })
    }

    /// How many credentials expire on or before `day` (those already expired included), and how
    /// many have their checks paused: the Credentials page's banners over every credential.
    pub async fn credential_attention_counts(&self, day: chrono::NaiveDate) -> Result<(i64, i64)> {
        on_pool!(&self.db, |pool| {
            let row = sqlx::query(
                "SELECT COALESCE(SUM(CASE WHEN expires_on IS NOT NULL AND expires_on <= $1 THEN 1 ELSE 0 END), 0) AS expiring, \
                 COALESCE(SUM(CASE WHEN checks_paused_at IS NOT NULL THEN 1 ELSE 0 END), 0) AS paused FROM credentials",
            )
            .bind(day)
            .fetch_one(pool)
            .await?;
            Ok((row.i64("expiring")?, row.i64("paused")?))
        })
    }

    /// Every credential's name, by name: the choices of a form that picks one.
    pub async fn credential_names(&self) -> Result<Vec<String>> {
        on_pool!(&self.db, |pool| {
            Ok(sqlx::query_scalar("SELECT name FROM credentials ORDER BY name COLLATE NOCASE").fetch_all(pool).await?)
        })
    }

    pub async fn count_credentials(&self) -> Result<i64> {
        on_pool!(&self.db, |pool| Ok(sqlx::query_scalar("SELECT COUNT(*) FROM credentials").fetch_one(pool).await?))
    }

    /// Up to `limit` users by name (case-insensitive, unique), after `after`.
    pub async fn users_page(&self, after: Option<&str>, limit: i64) -> Result<Vec<UserSummary>> {
        let from = if after.is_some() { "WHERE u.username COLLATE NOCASE > $1" } else { "WHERE $1 IS NULL" };
        on_pool!(&self.db, |pool| {
            let rows = sqlx::query(&format!(
                "SELECT u.id, u.username, u.role, u.created_at, u.updated_at, COALESCE(t.enabled, FALSE) AS totp_enabled, \
                 COALESCE(f.failures, 0) AS failures, f.locked_until, \
                 EXISTS (SELECT 1 FROM user_sso_identities s WHERE s.user_id = u.id) AS single_sign_on FROM users u \
                 LEFT JOIN user_totp t ON t.user_id = u.id LEFT JOIN login_failures f ON f.username = u.username \
                 {from} ORDER BY u.username COLLATE NOCASE LIMIT $2"
            ))
            .bind(after)
            .bind(limit.max(0))
            .fetch_all(pool)
            .await?;
            rows.iter().map(user_summary_from_row).collect()
        })
    }

    /// How many checks a repository's history holds.
    pub async fn count_checks(&self, repository_id: Id) -> Result<i64> {
        on_pool!(&self.db, |pool| {
            Ok(sqlx::query_scalar("SELECT COUNT(*) FROM checks WHERE repository_id = $1")
                .bind(repository_id)
                .fetch_one(pool)
                .await?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_of_a_clone_url() {
        assert_eq!(host_of("https://Bitbucket.org/acme/app.git"), "bitbucket.org");
        assert_eq!(host_of("https://git.example.com:7990/scm/p/r.git"), "git.example.com:7990");
        assert_eq!(host_of("http://127.0.0.1:9/x"), "127.0.0.1:9");
        assert_eq!(host_of("ssh://git@host.example/x.git"), "host.example");
        assert_eq!(host_of("nothing"), "nothing");
    }
}
