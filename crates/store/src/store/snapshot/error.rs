//! What can go wrong with a snapshot, a restore or a migration, in words a person can act on.
//! None of these ever carries a secret: values of rows are never quoted.

use crate::keyring::KeyringError;
use crate::store::StoreError;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("cannot {what} {path}: {source}")]
    Io { what: &'static str, path: PathBuf, source: std::io::Error },
    /// The file is not a Berth snapshot, or one of a format this Berth does not read.
    #[error("{path} is not a Berth snapshot this version reads: {why}")]
    NotASnapshot { path: PathBuf, why: String },
    /// The file is damaged: truncated, altered, or a line that does not fit. Nothing was written.
    #[error("the snapshot {path} is damaged ({why}); nothing was written")]
    Damaged { path: PathBuf, why: String },
    /// No key file at the configured place, and the snapshot does not carry the keys.
    #[error("the snapshot needs master key {key_ids} and there is no key file at {key_file}, nor a key in the snapshot (it was made without --include-key)")]
    KeyNeeded { key_ids: String, key_file: PathBuf },
    /// The key file at the configured place lacks a key the snapshot's secrets are sealed with.
    #[error(
        "the key file {key_file} does not hold master key {key_ids}, which the snapshot's secrets are sealed with"
    )]
    KeyMissing { key_ids: String, key_file: PathBuf },
    #[error("the passphrase does not open the master key in the snapshot")]
    WrongPassphrase,
    /// A passphrase that is too weak to seal the master key with.
    #[error("the passphrase is too short: use at least {min} characters")]
    WeakPassphrase { min: usize },
    /// Reading the passphrase failed (no terminal, closed standard input).
    #[error("cannot read the passphrase: {0}")]
    Passphrase(String),
    /// Restore and migrate write only into an empty database.
    #[error("the target database is not empty: {0}")]
    TargetNotEmpty(String),
    #[error(transparent)]
    Keyring(#[from] KeyringError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for SnapshotError {
    fn from(e: sqlx::Error) -> Self {
        SnapshotError::Store(e.into())
    }
}

impl From<crate::vault::VaultError> for SnapshotError {
    fn from(e: crate::vault::VaultError) -> Self {
        SnapshotError::Store(e.into())
    }
}

pub type SnapResult<T> = std::result::Result<T, SnapshotError>;
