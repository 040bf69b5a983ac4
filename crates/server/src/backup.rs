//! Backup, restore, verification and the SQLite-to-PostgreSQL migration (`berth admin
//! backup|restore|verify|migrate`): where the configuration points them, with the checks that
//! belong to an installation rather than to a database. The work itself is
//! `berth_store::snapshot` and `Store::verify`, so both databases share one code path.

use crate::admin::open_existing;
use crate::config::Config;
use crate::StartError;
use berth_store::is_postgres_url;
use berth_store::snapshot;
pub use berth_store::snapshot::{BackupReport, RestoreReport, SnapshotError};
pub use berth_store::{StoreError, VerifyReport};
use secrecy::SecretString;
use std::path::Path;

/// A snapshot of the running installation at `to`; the master key goes in, sealed, only with
/// a passphrase.
pub async fn backup(config: &Config, to: &Path, passphrase: Option<&SecretString>) -> Result<BackupReport, StartError> {
    if to.is_dir() {
        return Err(StartError::Invalid(format!("{} is a directory: name the snapshot file to write", to.display())));
    }
    let store = open_existing(config).await?;
    let made = snapshot::backup(&store, to, passphrase).await;
    store.close().await;
    Ok(made?)
}

/// Restores a snapshot into the configured database, which must be empty (on SQLite, a data
/// directory without a database; it is created, private, when missing).
pub async fn restore(
    config: &Config,
    from: &Path,
    passphrase: &mut dyn FnMut() -> Result<SecretString, String>,
) -> Result<RestoreReport, StartError> {
    // Proved before the data directory is made, so a damaged file leaves nothing behind.
    snapshot::inspect(from)?;
    crate::ensure_data_dir(config)?;
    Ok(snapshot::restore(from, &config.database_url, &config.master_key_file, passphrase).await?)
}

/// Checks the configured database from end to end (see `Store::verify`).
pub async fn verify(config: &Config) -> Result<VerifyReport, StartError> {
    let store = open_existing(config).await?;
    let report = store.verify().await;
    store.close().await;
    Ok(report?)
}

/// Copies the configured SQLite installation into the empty PostgreSQL database at `to`, with
/// the same master key file. The server must be stopped: what it writes after the copy began
/// is not copied.
pub async fn migrate(config: &Config, to: &str) -> Result<RestoreReport, StartError> {
    if is_postgres_url(&config.database_url) {
        return Err(StartError::Invalid(
            "the configured database is PostgreSQL already: migrate copies a SQLite data directory \
             (use backup and restore to move between PostgreSQL databases)"
                .into(),
        ));
    }
    if !is_postgres_url(to) {
        return Err(StartError::Invalid("--to must be a PostgreSQL URL, postgres://user@host/database".into()));
    }
    let store = open_existing(config).await?;
    let done = snapshot::migrate(&store, to, &config.master_key_file, &config.data_dir).await;
    store.close().await;
    Ok(done?)
}
