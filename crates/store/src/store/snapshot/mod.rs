//! Backup, restore and migration through one file format (see `format.rs`), so the same code
//! reads a SQLite installation and a PostgreSQL one and writes either:
//!
//! - [`backup`]: a consistent snapshot of a running installation, written atomically;
//! - [`restore`]: a snapshot into an empty database, proved before and after;
//! - [`migrate`]: an installation into another (empty) database, through a snapshot file that
//!   holds only what the database holds (secrets stay sealed) and is removed afterwards.

pub(crate) mod error;
mod export;
pub(crate) mod format;
mod import;
pub mod key;
pub mod schema;
mod value;

pub use error::SnapshotError;
pub use format::Header;
pub use schema::{coverage, Coverage, COLUMNS_NOT_COPIED, NOT_COPIED};

use super::open::connect;
use super::verify::VerifyReport;
use super::{is_postgres_url, Store};
use crate::keyring::Keyring;
use crate::vault::Vault;
use error::SnapResult;
use format::SnapshotReader;
use secrecy::SecretString;
use std::collections::BTreeMap;

use std::path::{Path, PathBuf};

/// A snapshot that was written.
#[derive(Debug)]
pub struct BackupReport {
    pub path: PathBuf,
    pub header: Header,
    pub rows: BTreeMap<String, u64>,
    pub sha256: String,
    pub bytes: u64,
}

/// A restore or migration that finished: what went in, and the verification that followed.
#[derive(Debug)]
pub struct RestoreReport {
    pub header: Header,
    pub rows: BTreeMap<String, u64>,
    /// The key file was written from the snapshot (`--include-key`), not found in place.
    pub key_file_written: bool,
    pub verify: VerifyReport,
}

/// Deletes a half-written file unless it was kept.
struct TempFile {
    path: PathBuf,
    keep: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> SnapshotError + 'a {
    move |source| SnapshotError::Io { what, path: path.to_owned(), source }
}

/// Writes a snapshot of `store` to `to`: into a temporary file beside it (mode 0600: it holds
/// password hashes and sealed secrets), synced, then renamed over `to`, so `to` is either the
/// old file or the whole new one. With a passphrase the key file goes in, sealed under it.
pub async fn backup(store: &Store, to: &Path, passphrase: Option<&SecretString>) -> SnapResult<BackupReport> {
    let name = to.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "snapshot".into());
    let dir = match to.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let tmp = TempFile { path: dir.join(format!(".{name}.{}.partial", std::process::id())), keep: false };
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let file = opts.open(&tmp.path).map_err(io("create", &tmp.path))?;
    let (out, exported) = store.export_snapshot(std::io::BufWriter::new(file), to, passphrase).await?;
    let file = out.into_inner().map_err(|e| SnapshotError::Io {
        what: "write",
        path: tmp.path.clone(),
        source: e.into_error(),
    })?;
    file.sync_all().map_err(io("sync", &tmp.path))?;
    let bytes = file.metadata().map_err(io("read", &tmp.path))?.len();
    drop(file);
    std::fs::rename(&tmp.path, to).map_err(io("rename onto", to))?;
    let mut tmp = tmp;
    tmp.keep = true;
    // The rename is durable only once the directory is synced.
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(BackupReport {
        path: to.to_owned(),
        header: exported.header,
        rows: exported.rows,
        sha256: exported.sha256,
        bytes,
    })
}

fn reader(path: &Path) -> SnapResult<SnapshotReader<std::io::BufReader<std::fs::File>>> {
    let file = std::fs::File::open(path).map_err(io("open", path))?;
    SnapshotReader::new(std::io::BufReader::new(file), path)
}

/// Reads a whole snapshot and proves it (every line fits, the checksum and the counts match)
/// without writing anything; answers its header and rows per table.
pub fn inspect(path: &Path) -> SnapResult<(Header, BTreeMap<String, u64>)> {
    let mut r = reader(path)?;
    while r.next()?.is_some() {}
    Ok((r.header.clone(), r.rows().clone()))
}

/// Refuses a target that holds anything, before anything is written to it (a missing SQLite
/// file is an empty target).
pub async fn check_target_empty(url: &str) -> SnapResult<()> {
    if !is_postgres_url(url) {
        match connect(url, false).await {
            Err(crate::StoreError::NoDatabase(_)) => return Ok(()),
            Err(e) => return Err(e.into()),
            Ok(db) => {
                let problem = import::target_problem(&db).await;
                on_pool!(&db, |pool| pool.close().await);
                return match problem? {
                    Some(why) => Err(SnapshotError::TargetNotEmpty(why)),
                    None => Ok(()),
                };
            }
        }
    }
    let db = connect(url, false).await?;
    let problem = import::target_problem(&db).await;
    on_pool!(&db, |pool| pool.close().await);
    match problem? {
        Some(why) => Err(SnapshotError::TargetNotEmpty(why)),
        None => Ok(()),
    }
}

/// The keys a restore uses: the key file in place when there is one (it must hold every key
/// the snapshot needs), else the keys the snapshot carries, opened with the passphrase.
/// Returns the keyring and, when it came from the snapshot, the text to write as the key file.
fn keys_for(
    header: &Header,
    key_file: &Path,
    passphrase: &mut dyn FnMut() -> Result<SecretString, String>,
) -> SnapResult<(Keyring, Option<zeroize::Zeroizing<String>>)> {
    let missing = |ring: &Keyring| -> Vec<String> {
        header.key_ids.iter().filter(|id| ring.get(id).is_none()).cloned().collect()
    };
    if key_file.exists() {
        let ring = Keyring::load(key_file)?;
        let lacking = missing(&ring);
        if !lacking.is_empty() {
            return Err(SnapshotError::KeyMissing { key_ids: lacking.join(", "), key_file: key_file.into() });
        }
        return Ok((ring, None));
    }
    let Some(sealed) = &header.master_key else {
        return Err(SnapshotError::KeyNeeded { key_ids: header.key_ids.join(", "), key_file: key_file.into() });
    };
    let pass = passphrase().map_err(SnapshotError::Passphrase)?;
    let text = key::open(sealed, &header.key_ids, &pass)?;
    let ring = Keyring::parse_text(key_file, &text)?;
    let lacking = missing(&ring);
    if !lacking.is_empty() {
        return Err(SnapshotError::KeyMissing { key_ids: lacking.join(", "), key_file: key_file.into() });
    }
    Ok((ring, Some(text)))
}

/// Restores the snapshot at `from` into the empty database at `url`, with the master keys of
/// `key_file` (written there from the snapshot when it carries them and no file is in place;
/// `passphrase` is asked only then). In order, each refusal before anything is written: the
/// whole snapshot is read and proved, the target must be empty, the keys must open. Then the
/// rows go in (one transaction), the database is opened again as `berth serve` opens it (the
/// vault canary proved with the key file), and [`Store::verify`] runs.
pub async fn restore(
    from: &Path,
    url: &str,
    key_file: &Path,
    passphrase: &mut dyn FnMut() -> Result<SecretString, String>,
) -> SnapResult<RestoreReport> {
    let (header, _) = inspect(from)?;
    check_target_empty(url).await?;
    let (ring, key_text) = keys_for(&header, key_file, passphrase)?;
    let key_file_written = match &key_text {
        Some(text) => {
            Keyring::install(key_file, text)?;
            true
        }
        None => false,
    };
    let db = connect(url, true).await?;
    let store = Store { db, vault: Vault::new(ring) };
    let rows = async {
        // Again, now that the target is connected for writing: it may have changed meanwhile.
        if let Some(why) = import::target_problem(&store.db).await? {
            return Err(SnapshotError::TargetNotEmpty(why));
        }
        store.migrate().await?;
        let mut r = reader(from)?;
        store.import_snapshot(&mut r).await
    }
    .await;
    store.close().await;
    let rows = rows?;
    // As start-up opens it: the canary proved with the key file before anything else.
    let reopened = Store::open_existing(url, key_file).await?;
    let verify = reopened.verify().await;
    reopened.close().await;
    Ok(RestoreReport { header, rows, key_file_written, verify: verify? })
}

/// Copies `source` into the empty database at `to` with the same key file: through a snapshot
/// in `work_dir` (sealed secrets only, mode 0600, removed afterwards), then [`restore`]. The
/// target is proved empty before the snapshot is taken.
pub async fn migrate(source: &Store, to: &str, key_file: &Path, work_dir: &Path) -> SnapResult<RestoreReport> {
    check_target_empty(to).await?;
    let path = work_dir.join(format!(".berth-migrate.{}.snapshot", std::process::id()));
    let _cleanup = TempFile { path: path.clone(), keep: false };
    backup(source, &path, None).await?;
    restore(&path, to, key_file, &mut || Err("the key file is in place; no passphrase is needed".into())).await
}
