//! The master-key file: one or more 256-bit keys, each with an id; the last one is active.
//!
//! ```text
//! # Berth master keys. Keep this file secret and backed up: without it no stored secret opens.
//! k-20261128T114700Z 3q2+7w...base64...==
//! ```
//!
//! A new key is appended before secrets are re-wrapped, and the old one dropped only after every
//! secret is wrapped by the new key, so a crash at any point leaves a file that opens the database.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use rand::RngCore;
use std::io::Write;
use std::path::{Path, PathBuf};
use zeroize::{Zeroize, ZeroizeOnDrop};

#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct MasterKey {
    #[zeroize(skip)]
    pub id: String,
    pub(crate) key: [u8; 32],
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKey").field("id", &self.id).finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
pub struct Keyring {
    path: PathBuf,
    keys: Vec<MasterKey>,
    /// Modification time of the file when it was read or written: lets a running server notice
    /// that `berth admin rotate-key` changed the file.
    mtime: Option<std::time::SystemTime>,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error("cannot read the master key file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot write the master key file {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("the master key file {path} is malformed at line {line}: expected `<key-id> <base64 of 32 bytes>`")]
    Malformed { path: PathBuf, line: usize },
    #[error("the master key file {path} holds no key")]
    Empty { path: PathBuf },
    #[error("the master key file {path} is readable by other users (mode {mode:o}); run `chmod 600 {path}`")]
    Permissions { path: PathBuf, mode: u32 },
}

const HEADER: &str =
    "# Berth master keys. Keep this file secret and backed up: without it no stored secret can be opened.\n\
# One key a line, `<key-id> <base64>`; the last line is the active key.\n";

impl Keyring {
    /// Loads the key file, or creates it with a fresh key (mode 0600) when it does not exist.
    pub fn load_or_create(path: &Path) -> Result<(Keyring, bool), KeyringError> {
        match std::fs::metadata(path) {
            Ok(_) => Ok((Keyring::load(path)?, false)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut ring = Keyring { path: path.to_owned(), keys: vec![new_key()], mtime: None };
                ring.write_new_file()?;
                Ok((ring, true))
            }
            Err(source) => Err(KeyringError::Read { path: path.to_owned(), source }),
        }
    }

    pub fn load(path: &Path) -> Result<Keyring, KeyringError> {
        check_permissions(path)?;
        let mut text =
            std::fs::read_to_string(path).map_err(|source| KeyringError::Read { path: path.to_owned(), source })?;
        let parsed = parse(path, &text);
        text.zeroize();
        let keys = parsed?;
        if keys.is_empty() {
            return Err(KeyringError::Empty { path: path.to_owned() });
        }
        Ok(Keyring { path: path.to_owned(), keys, mtime: file_mtime(path) })
    }

    /// Whether the file on disk changed since this ring read or wrote it.
    pub fn is_stale(&self) -> bool {
        file_mtime(&self.path) != self.mtime
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn active(&self) -> &MasterKey {
        // `load` and `load_or_create` refuse an empty ring, so there is always a last key.
        &self.keys[self.keys.len() - 1]
    }

    pub fn get(&self, id: &str) -> Option<&MasterKey> {
        self.keys.iter().find(|k| k.id == id)
    }

    pub fn ids(&self) -> Vec<String> {
        self.keys.iter().map(|k| k.id.clone()).collect()
    }

    /// Appends a fresh key, makes it active and saves the file. Older keys stay so that secrets
    /// wrapped by them still open until they are re-wrapped.
    pub fn add_key(&mut self) -> Result<&MasterKey, KeyringError> {
        let mut key = new_key();
        while self.get(&key.id).is_some() {
            key.id.push('x');
        }
        self.keys.push(key);
        self.save()?;
        Ok(self.active())
    }

    /// Keeps only the active key: called once nothing references the others.
    pub fn retire_old_keys(&mut self) -> Result<(), KeyringError> {
        let active = self.active().clone();
        self.keys = vec![active];
        self.save()
    }

    /// The key file's text, every key in it: what a snapshot made with `--include-key` seals
    /// under a passphrase. Zeroed when dropped.
    pub fn to_text(&self) -> zeroize::Zeroizing<String> {
        zeroize::Zeroizing::new(self.render())
    }

    /// Writes `text` (a key file's text, as [`Keyring::to_text`] gives) as a new key file at
    /// `path` (mode 0600, atomically); refuses to replace a file that exists.
    pub fn install(path: &Path, text: &str) -> Result<Keyring, KeyringError> {
        let keys = parse(path, text)?;
        if keys.is_empty() {
            return Err(KeyringError::Empty { path: path.to_owned() });
        }
        if path.exists() {
            let source = std::io::Error::new(std::io::ErrorKind::AlreadyExists, "a key file is there already");
            return Err(KeyringError::Write { path: path.to_owned(), source });
        }
        let mut ring = Keyring { path: path.to_owned(), keys, mtime: None };
        ring.write_new_file()?;
        Ok(ring)
    }

    /// Parses a key file's text without writing anything (the keys a snapshot carries).
    pub fn parse_text(path: &Path, text: &str) -> Result<Keyring, KeyringError> {
        let keys = parse(path, text)?;
        if keys.is_empty() {
            return Err(KeyringError::Empty { path: path.to_owned() });
        }
        Ok(Keyring { path: path.to_owned(), keys, mtime: None })
    }

    fn render(&self) -> String {
        let mut out = String::from(HEADER);
        for k in &self.keys {
            out.push_str(&k.id);
            out.push(' ');
            out.push_str(&B64.encode(k.key));
            out.push('\n');
        }
        out
    }

    fn write_new_file(&mut self) -> Result<(), KeyringError> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| KeyringError::Write { path: self.path.clone(), source })?;
        }
        self.save()
    }

    /// Writes to a temporary file with mode 0600 and renames it over the old one, so the key
    /// file is never half-written.
    fn save(&mut self) -> Result<(), KeyringError> {
        let err = |source| KeyringError::Write { path: self.path.clone(), source };
        let tmp = self.path.with_extension("tmp");
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp).map_err(err)?;
        let mut text = self.render();
        let written = f.write_all(text.as_bytes()).and_then(|_| f.sync_all());
        text.zeroize();
        written.map_err(err)?;
        std::fs::rename(&tmp, &self.path).map_err(err)?;
        self.mtime = file_mtime(&self.path);
        Ok(())
    }
}

fn file_mtime(path: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn new_key() -> MasterKey {
    let mut key = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut key);
    // The time says when a key was made; the random part keeps ids of keys made in the same
    // instant (two installations, tests) distinct.
    let id = format!("k-{}-{:08x}", chrono::Utc::now().format("%Y%m%dT%H%M%SZ"), rand::random::<u32>());
    MasterKey { id, key }
}

fn parse(path: &Path, text: &str) -> Result<Vec<MasterKey>, KeyringError> {
    let mut keys = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let malformed = || KeyringError::Malformed { path: path.to_owned(), line: i + 1 };
        let (id, b64) = line.split_once(char::is_whitespace).ok_or_else(malformed)?;
        let mut bytes = B64.decode(b64.trim()).map_err(|_| malformed())?;
        let key: Result<[u8; 32], _> = bytes.as_slice().try_into();
        bytes.zeroize();
        keys.push(MasterKey { id: id.to_owned(), key: key.map_err(|_| malformed())? });
    }
    Ok(keys)
}

#[cfg(unix)]
fn check_permissions(path: &Path) -> Result<(), KeyringError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|source| KeyringError::Read { path: path.to_owned(), source })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyringError::Permissions { path: path.to_owned(), mode });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_path: &Path) -> Result<(), KeyringError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_with_0600_and_reloads() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("sub/master.key");
        let (ring, created) = Keyring::load_or_create(&path)?;
        assert!(created);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path)?.permissions().mode() & 0o777, 0o600);
        }
        let (again, created) = Keyring::load_or_create(&path)?;
        assert!(!created);
        assert_eq!(again.active().id, ring.active().id);
        assert_eq!(again.active().key, ring.active().key);
        Ok(())
    }

    #[test]
    fn add_and_retire_keys() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("master.key");
        let (mut ring, _) = Keyring::load_or_create(&path)?;
        let first = ring.active().id.clone();
        let second = ring.add_key()?.id.clone();
        assert_ne!(first, second);
        assert_eq!(Keyring::load(&path)?.ids(), vec![first.clone(), second.clone()]);
        ring.retire_old_keys()?;
        assert_eq!(Keyring::load(&path)?.ids(), vec![second]);
        Ok(())
    }

    #[test]
    fn refuses_world_readable_and_malformed_files() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("master.key");
        std::fs::write(&path, "k1 not-base64\n")?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))?;
            assert!(matches!(Keyring::load(&path), Err(KeyringError::Permissions { .. })));
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        }
        assert!(matches!(Keyring::load(&path), Err(KeyringError::Malformed { line: 1, .. })));
        Ok(())
    }
}
