//! `berth admin verify`, and the proof every restore and migration ends with: the database's
//! own integrity check, every sealed secret opened with the key file, every repository's
//! credential there, the kept counts equal to a count of the rows, and how many rows each
//! table holds.

use super::dialect::Cols;
use super::mappers::sealed_from_row;
use super::open::CANARY_AAD;
use super::open::{CHANNEL_SECRETS, CLIENT_KEYS, CREDENTIAL_SECRETS, TOTP_KEYS, WEBHOOK_SECRETS};
use super::snapshot::schema::TABLES;
use super::{Dialect, Result, Store};
use std::collections::BTreeMap;

/// What `verify` found. Sound when `problems` is empty.
#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    /// Rows per copied table, in the snapshot's table order.
    pub counts: Vec<(String, i64)>,
    /// Sealed secrets that opened (credentials, second-factor keys, channel secrets).
    pub secrets_opened: u64,
    /// The master keys the sealed secrets use.
    pub key_ids: Vec<String>,
    /// Each problem in words; never a secret.
    pub problems: Vec<String>,
}

impl VerifyReport {
    pub fn count(&self, table: &str) -> Option<i64> {
        self.counts.iter().find(|(t, _)| t == table).map(|(_, n)| *n)
    }
}

type CountKey = (String, i64, String, String);

impl Store {
    /// Checks this database from end to end; see the module's documentation.
    pub async fn verify(&self) -> Result<VerifyReport> {
        let mut report = VerifyReport { problems: self.integrity_problems().await?, ..VerifyReport::default() };
        let mut key_ids = std::collections::BTreeSet::new();
        on_pool!(&self.db, |pool| {
            for t in [CREDENTIAL_SECRETS, TOTP_KEYS, CHANNEL_SECRETS, WEBHOOK_SECRETS, CLIENT_KEYS] {
                let sql = format!("SELECT {} AS row_id, key_id, wrapped_key, ciphertext FROM {}", t.id, t.table);
                for row in sqlx::query(&sql).fetch_all(pool).await? {
                    let id = row.i64("row_id")?;
                    let sealed = sealed_from_row(&row)?;
                    key_ids.insert(sealed.key_id.clone());
                    match self.vault.open(&sealed, &(t.aad)(id)) {
                        Ok(_) => report.secrets_opened += 1,
                        Err(e) => report.problems.push(format!("{} row {id}: its secret does not open: {e}", t.table)),
                    }
                }
            }
            match sqlx::query("SELECT key_id, wrapped_key, ciphertext FROM vault_canary WHERE id = 1")
                .fetch_optional(pool)
                .await?
            {
                None => report.problems.push("the vault canary is missing: this is not a whole Berth database".into()),
                Some(row) => {
                    if let Err(e) = self.vault.open(&sealed_from_row(&row)?, CANARY_AAD) {
                        report.problems.push(format!("the vault canary does not open: {e}"));
                    }
                }
            }
            let orphans = sqlx::query(
                "SELECT r.id, r.name, r.credential_id FROM repositories r LEFT JOIN credentials c \
                 ON c.id = r.credential_id WHERE r.credential_id IS NOT NULL AND c.id IS NULL ORDER BY r.id",
            )
            .fetch_all(pool)
            .await?;
            for r in orphans {
                report.problems.push(format!(
                    "repository {:?} (id {}) uses credential {}, which is not there",
                    r.str("name")?,
                    r.i64("id")?,
                    r.i64("credential_id")?
                ));
            }
            let actual = sqlx::query(
                "SELECT status, COALESCE(credential_id, 0) AS credential_id, provider, host, COUNT(*) AS n \
                 FROM repositories GROUP BY status, COALESCE(credential_id, 0), provider, host",
            )
            .fetch_all(pool)
            .await?;
            let kept = sqlx::query(
                "SELECT status, credential_id, provider, host, CAST(SUM(n) AS BIGINT) AS n FROM repository_counts \
                 GROUP BY status, credential_id, provider, host",
            )
            .fetch_all(pool)
            .await?;
            let mut want: BTreeMap<CountKey, i64> = BTreeMap::new();
            for r in &actual {
                want.insert(
                    (r.str("status")?, r.i64("credential_id")?, r.str("provider")?, r.str("host")?),
                    r.i64("n")?,
                );
            }
            let mut have: BTreeMap<CountKey, i64> = BTreeMap::new();
            for r in &kept {
                let n = r.i64("n")?;
                if n != 0 {
                    have.insert((r.str("status")?, r.i64("credential_id")?, r.str("provider")?, r.str("host")?), n);
                }
            }
            if want != have {
                report.problems.push(
                    "the kept repository counts (repository_counts) differ from a count of the repositories".into(),
                );
            }
            // The trigram counts the search chooses its plan by (migration 0019), recounted.
            let texts: Vec<String> = sqlx::query_scalar(match self.dialect() {
                Dialect::Sqlite => "SELECT lower(name) || char(10) || lower(clone_url) FROM repositories",
                Dialect::Postgres => "SELECT search FROM repositories",
            })
            .fetch_all(pool)
            .await?;
            let mut want: BTreeMap<String, i64> = BTreeMap::new();
            for t in texts.iter().flat_map(|s| super::list_search::text_trigrams(s)) {
                *want.entry(t).or_default() += 1;
            }
            let kept: Vec<(String, i64)> = sqlx::query_as(
                "SELECT trigram, CAST(SUM(n) AS BIGINT) FROM search_trigram_counts GROUP BY trigram HAVING SUM(n) <> 0",
            )
            .fetch_all(pool)
            .await?;
            let have: BTreeMap<String, i64> = kept.into_iter().collect();
            if want != have {
                let differ = want.iter().filter(|(t, n)| have.get(*t) != Some(n)).count()
                    + have.keys().filter(|t| !want.contains_key(*t)).count();
                report.problems.push(format!(
                    "the kept search trigram counts (search_trigram_counts) differ from a count of the repositories \
                     for {differ} trigrams"
                ));
            }
            if self.dialect() == Dialect::Sqlite {
                let indexed: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM repository_search").fetch_one(pool).await?;
                let repos: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM repositories").fetch_one(pool).await?;
                if indexed != repos {
                    report.problems.push(format!("the search index holds {indexed} repositories, the table {repos}"));
                }
            }
            for spec in TABLES {
                let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {}", spec.name)).fetch_one(pool).await?;
                report.counts.push((spec.name.to_owned(), n));
            }
        });
        report.key_ids = key_ids.into_iter().collect();
        Ok(report)
    }
}
