//! Credentials: sealed on the way in, opened only by `credential_secret`, re-wrapped on rotation.

use super::error::name_taken;
use super::mappers::{credential_from_row, json_text, sealed_from_row, CREDENTIAL_COLUMNS};
use super::open::{
    SealedTable, CANARY_AAD, CHANNEL_SECRETS, CLIENT_KEYS, CREDENTIAL_SECRETS, TOTP_KEYS, WEBHOOK_SECRETS,
};
use super::*;
use crate::vault::Sealed;
use chrono::{DateTime, Utc};
use dialect::Cols;
use secrecy::SecretString;

/// Writes the sealed secret of row `$id` of the [`SealedTable`] `$table` inside the
/// transaction `$tx` (on either dialect).
macro_rules! write_sealed {
    ($tx:ident, $table:expr, $id:expr, $sealed:expr) => {{
        let (table, sealed): (&SealedTable, &Sealed) = (&$table, $sealed);
        let sql = format!(
            "UPDATE {} SET key_id = $1, wrapped_key = $2, ciphertext = $3 WHERE {} = $4",
            table.table, table.id
        );
        sqlx::query(&sql)
            .bind(&sealed.key_id)
            .bind(&sealed.wrapped_key)
            .bind(&sealed.ciphertext)
            .bind($id)
            .execute(&mut *$tx)
            .await?;
    }};
}

/// Writes (or, with `None`, removes) credential `$id`'s own client certificate inside the
/// transaction `$tx`: the certificate on the row, its key sealed in `credential_client_keys`.
macro_rules! write_client_certificate {
    ($self:ident, $tx:ident, $id:expr, $cert:expr) => {{
        let (id, cert): (Id, Option<&NewClientCertificate>) = ($id, $cert);
        sqlx::query(
            "UPDATE credentials SET client_certificate = $1, client_certificate_subject = $2, \
             client_certificate_not_after = $3 WHERE id = $4",
        )
        .bind(cert.map(|c| c.pem.as_str()))
        .bind(cert.map(|c| c.subject.as_str()))
        .bind(cert.map(|c| c.not_after))
        .bind(id)
        .execute(&mut *$tx)
        .await?;
        match cert {
            Some(c) => {
                let sealed = $self.vault.seal(&c.key, &(CLIENT_KEYS.aad)(id))?;
                sqlx::query(
                    "INSERT INTO credential_client_keys (credential_id, key_id, wrapped_key, ciphertext) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (credential_id) DO UPDATE SET key_id = excluded.key_id, \
                     wrapped_key = excluded.wrapped_key, ciphertext = excluded.ciphertext",
                )
                .bind(id)
                .bind(&sealed.key_id)
                .bind(&sealed.wrapped_key)
                .bind(&sealed.ciphertext)
                .execute(&mut *$tx)
                .await?;
            }
            None => {
                sqlx::query("DELETE FROM credential_client_keys WHERE credential_id = $1")
                    .bind(id)
                    .execute(&mut *$tx)
                    .await?;
            }
        }
    }};
}

impl Store {
    // ---------------------------------------------------------------- credentials

    pub async fn create_credential(&self, new: NewCredential<'_>) -> Result<CredentialRow> {
        on_pool!(&self.db, |pool| {
            let now = Utc::now();
            let scopes = json_text(new.scopes)?;
            let mut tx = pool.begin().await?;
            // The row id is part of the associated data, so the row is inserted first with empty
            // blobs and sealed in the same transaction: no reader ever sees the unsealed state.
            let id: Id = sqlx::query_scalar(
                "INSERT INTO credentials (name, kind, username, email, expires_on, scopes, key_id, wrapped_key, ciphertext, \
                 created_at, updated_at, secret_updated_at, host, app_id, installation_id, public_key) \
                 VALUES ($1, $2, $3, $4, $5, $6, '', $7, $7, $8, $8, $8, $9, $10, $11, $12) \
                 RETURNING id",
            )
            .bind(new.name)
            .bind(new.kind.as_str())
            .bind(new.username)
            .bind(new.email)
            .bind(new.expires_on)
            .bind(&scopes)
            .bind(Vec::<u8>::new())
            .bind(now)
            .bind(new.host)
            .bind(new.app_id)
            .bind(new.installation_id)
            .bind(new.public_key)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| name_taken(e, Entity::Credential, new.name))?;
            let sealed = self.vault.seal(new.secret, &(CREDENTIAL_SECRETS.aad)(id))?;
            write_sealed!(tx, CREDENTIAL_SECRETS, id, &sealed);
            if let Some(cert) = &new.client_certificate {
                write_client_certificate!(self, tx, id, Some(cert));
            }
            tx.commit().await?;
            self.get_credential(id).await
        })
    }

    pub async fn list_credentials(&self) -> Result<Vec<CredentialRow>> {
        on_pool!(&self.db, |pool| {
            let rows =
                sqlx::query(&format!("{CREDENTIAL_COLUMNS} ORDER BY name COLLATE NOCASE")).fetch_all(pool).await?;
            rows.iter().map(credential_from_row).collect()
        })
    }

    pub async fn get_credential(&self, id: Id) -> Result<CredentialRow> {
        on_pool!(&self.db, |pool| {
            let row = sqlx::query(&format!("{CREDENTIAL_COLUMNS} WHERE id = $1")).bind(id).fetch_optional(pool).await?;
            row.as_ref().map(credential_from_row).transpose()?.ok_or(StoreError::NotFound(Entity::Credential))
        })
    }

    /// Finds a credential by id (all digits) or else by name.
    pub async fn find_credential(&self, reference: &str) -> Result<CredentialRow> {
        on_pool!(&self.db, |pool| {
            let reference = reference.trim();
            if let Ok(id) = reference.parse::<Id>() {
                match self.get_credential(id).await {
                    Err(StoreError::NotFound(_)) => {}
                    other => return other,
                }
            }
            let row = sqlx::query(&format!("{CREDENTIAL_COLUMNS} WHERE name = $1"))
                .bind(reference)
                .fetch_optional(pool)
                .await?;
            row.as_ref().map(credential_from_row).transpose()?.ok_or(StoreError::NotFound(Entity::Credential))
        })
    }

    /// Decrypts a credential's secret. The only way a secret leaves the store.
    pub async fn credential_secret(&self, id: Id) -> Result<SecretString> {
        self.open_sealed(&CREDENTIAL_SECRETS, id, Entity::Credential).await
    }

    /// A credential and its decrypted secret, read in one statement: what a check needs
    /// before it talks to the host. A sweep runs one check after another, and a second round
    /// trip per check to the database was a measurable part of its cost on PostgreSQL. The
    /// secret is an error of its own (the credential step reports one that does not open).
    pub async fn credential_with_secret(&self, id: Id) -> Result<(CredentialRow, Result<SecretString>)> {
        let columns =
            CREDENTIAL_COLUMNS.replacen(" FROM credentials", ", key_id, wrapped_key, ciphertext FROM credentials", 1);
        on_pool!(&self.db, |pool| {
            let row = sqlx::query(&format!("{columns} WHERE id = $1"))
                .bind(id)
                .fetch_optional(pool)
                .await?
                .ok_or(StoreError::NotFound(Entity::Credential))?;
            let cred = credential_from_row(&row)?;
            let secret =
                sealed_from_row(&row).and_then(|sealed| Ok(self.vault.open(&sealed, &(CREDENTIAL_SECRETS.aad)(id))?));
            Ok((cred, secret))
        })
    }

    /// Decrypts a credential's own TLS client key; `None` when it has none. Opened by the check
    /// pipeline right before the client that presents it is built.
    pub async fn credential_client_key(&self, id: Id) -> Result<Option<SecretString>> {
        match self.open_sealed(&CLIENT_KEYS, id, Entity::Credential).await {
            Ok(key) => Ok(Some(key)),
            Err(StoreError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn update_credential(&self, id: Id, patch: CredentialPatch) -> Result<CredentialRow> {
        // The edit locks the credential, then its repositories, the order recording checks
        // takes too (`record_outcomes`), so the two do not deadlock. Should PostgreSQL still
        // abort an edit (a deadlock with a path that breaks the order, a serialization
        // conflict), nothing was written: it is run again rather than answered as an error.
        let mut attempt = 0;
        loop {
            match self.update_credential_once(id, &patch).await {
                Err(e) if e.is_retryable_conflict() && attempt < 3 => attempt += 1,
                done => return done,
            }
        }
    }

    async fn update_credential_once(&self, id: Id, patch: &CredentialPatch) -> Result<CredentialRow> {
        on_pool!(&self.db, |pool| {
            // Only the fields the patch names are written, each in the same statement: two
            // edits of different fields at once both land (no read-modify-write to race), and
            // a missing credential changes nothing.
            let now = Utc::now();
            let scopes = patch.scopes.as_ref().map(json_text).transpose()?;
            let name_for_error = patch.name.clone().unwrap_or_default();
            let mut tx = pool.begin().await?;
            let n = sqlx::query(
                "UPDATE credentials SET name = CASE WHEN $1 THEN $2 ELSE name END, \
                 username = CASE WHEN $3 THEN $4 ELSE username END, email = CASE WHEN $5 THEN $6 ELSE email END, \
                 expires_on = CASE WHEN $7 THEN $8 ELSE expires_on END, scopes = CASE WHEN $9 THEN $10 ELSE scopes END, \
                 updated_at = $11, auth_failures = 0, checks_paused_at = NULL, \
                 host = CASE WHEN $13 THEN $14 ELSE host END, \
                 public_key = CASE WHEN $15 THEN $16 ELSE public_key END, \
                 app_id = CASE WHEN $17 THEN $18 ELSE app_id END, \
                 installation_id = CASE WHEN $19 THEN $20 ELSE installation_id END WHERE id = $12",
            )
            .bind(patch.name.is_some())
            .bind(patch.name.as_deref().unwrap_or_default())
            .bind(patch.username.is_some())
            .bind(patch.username.clone().flatten())
            .bind(patch.email.is_some())
            .bind(patch.email.clone().flatten())
            .bind(patch.expires_on.is_some())
            .bind(patch.expires_on.flatten())
            .bind(scopes.is_some())
            .bind(scopes.unwrap_or_default())
            .bind(now)
            .bind(id)
            .bind(patch.host.is_some())
            .bind(patch.host.clone().flatten())
            .bind(patch.public_key.is_some())
            .bind(patch.public_key.clone().flatten())
            .bind(patch.app_id.is_some())
            .bind(patch.app_id.clone())
            .bind(patch.installation_id.is_some())
            .bind(patch.installation_id.flatten())
            .execute(&mut *tx)
            .await
            .map_err(|e| name_taken(e, Entity::Credential, &name_for_error))?
            .rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound(Entity::Credential));
            }
            // An edit is the person's answer to a paused or failing credential: its
            // authentication failures were counted afresh above; check every repository that
            // uses it at once. The pause is lifted, so their status is their last check's again.
            sqlx::query(
                "UPDATE repositories SET next_check_at = $1, due_reason = 'credential', status = check_status \
                 WHERE credential_id = $2",
            )
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            if let Some(secret) = &patch.secret {
                let sealed = self.vault.seal(secret, &(CREDENTIAL_SECRETS.aad)(id))?;
                write_sealed!(tx, CREDENTIAL_SECRETS, id, &sealed);
            }
            if let Some(cert) = &patch.client_certificate {
                write_client_certificate!(self, tx, id, cert.as_ref());
            }
            // A new secret, or a new client certificate, is a new way to sign in: the rotation
            // date moves, and a verification of the old one is not recorded over the new.
            if patch.secret.is_some() || patch.client_certificate.is_some() {
                sqlx::query("UPDATE credentials SET secret_updated_at = $1 WHERE id = $2")
                    .bind(now)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            self.get_credential(id).await
        })
    }

    /// Records a credential's verification (the server's JSON), unless its secret was replaced
    /// after the verification read it (`secret_updated_at` is the value it saw): a slow
    /// verdict about an old token must not overwrite the new token's. `false` when not recorded.
    pub async fn record_credential_verification(
        &self,
        id: Id,
        secret_updated_at: DateTime<Utc>,
        verification: &str,
    ) -> Result<bool> {
        on_pool!(&self.db, |pool| {
            let n = sqlx::query("UPDATE credentials SET verification = $1 WHERE id = $2 AND secret_updated_at = $3")
                .bind(verification)
                .bind(id)
                .bind(secret_updated_at)
                .execute(pool)
                .await?
                .rows_affected();
            Ok(n == 1)
        })
    }

    /// Deletes a credential unless a repository or a credential template uses it.
    pub async fn delete_credential(&self, id: Id) -> Result<()> {
        on_pool!(&self.db, |pool| {
            let mut tx = pool.begin().await?;
            let users: Vec<(Id, String)> =
                sqlx::query_as("SELECT id, name FROM repositories WHERE credential_id = $1 ORDER BY name")
                    .bind(id)
                    .fetch_all(&mut *tx)
                    .await?;
            if !users.is_empty() {
                return Err(StoreError::CredentialInUse { repositories: users });
            }
            let templates: Vec<(Id, String)> = sqlx::query_as(
                "SELECT id, url_prefix FROM credential_templates WHERE credential_id = $1 ORDER BY url_prefix",
            )
            .bind(id)
            .fetch_all(&mut *tx)
            .await?;
            if !templates.is_empty() {
                return Err(StoreError::CredentialInTemplates { templates });
            }
            sqlx::query("DELETE FROM credential_client_keys WHERE credential_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            let n =
                sqlx::query("DELETE FROM credentials WHERE id = $1").bind(id).execute(&mut *tx).await?.rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound(Entity::Credential));
            }
            tx.commit().await?;
            Ok(())
        })
    }

    pub async fn repositories_using(&self, credential_id: Id) -> Result<Vec<(Id, String)>> {
        on_pool!(&self.db, |pool| {
            Ok(sqlx::query_as("SELECT id, name FROM repositories WHERE credential_id = $1 ORDER BY name")
                .bind(credential_id)
                .fetch_all(pool)
                .await?)
        })
    }

    /// Re-wraps every stored secret under the vault's active master key in one transaction.
    /// Returns how many secrets were re-wrapped.
    ///
    /// Only secrets wrapped by another key are touched, so calling it again is cheap and
    /// finds the stragglers a concurrent writer sealed just before it saw the new key.
    pub async fn rewrap_all(&self) -> Result<usize> {
        on_pool!(&self.db, |pool| {
            let active = self.vault.active_key_id();
            let mut tx = pool.begin().await?;
            let mut rewrapped = 0;
            for t in [CREDENTIAL_SECRETS, TOTP_KEYS, CHANNEL_SECRETS, WEBHOOK_SECRETS, CLIENT_KEYS] {
                let sql = format!(
                    "SELECT {} AS row_id, key_id, wrapped_key, ciphertext FROM {} WHERE key_id <> $1",
                    t.id, t.table
                );
                let rows = sqlx::query(&sql).bind(&active).fetch_all(&mut *tx).await?;
                for r in &rows {
                    let id = r.i64("row_id")?;
                    let sealed = self.vault.rewrap(&sealed_from_row(r)?, &(t.aad)(id))?;
                    write_sealed!(tx, t, id, &sealed);
                }
                rewrapped += rows.len();
            }
            let canary = sqlx::query("SELECT key_id, wrapped_key, ciphertext FROM vault_canary WHERE id = 1")
                .fetch_one(&mut *tx)
                .await?;
            let sealed = self.vault.rewrap(&sealed_from_row(&canary)?, CANARY_AAD)?;
            sqlx::query("UPDATE vault_canary SET key_id = $1, wrapped_key = $2, ciphertext = $3 WHERE id = 1")
                .bind(&sealed.key_id)
                .bind(&sealed.wrapped_key)
                .bind(&sealed.ciphertext)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(rewrapped)
        })
    }
}
