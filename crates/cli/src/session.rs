//! The saved login: `{url, token, expires_at}` in a file only its owner can read.
//!
//! Location: `$BERTH_SESSION_FILE`, else `$XDG_CONFIG_HOME/berth/session.json`, else
//! `~/.config/berth/session.json`. Written to a temporary file created with mode 0600 and
//! renamed over the old one, so the token is never readable by others, not even for a moment,
//! and a crash never leaves half a file.

use anyhow::{bail, Context as _};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::ffi::OsString;
use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};

#[derive(Clone, Serialize, Deserialize)]
pub struct Session {
    /// The server the token belongs to, normalised; it is sent nowhere else.
    pub url: String,
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("url", &self.url)
            .field("token", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl Session {
    pub fn expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at <= now
    }
}

/// Where the session lives, from the environment.
pub fn default_path() -> anyhow::Result<PathBuf> {
    path_from(std::env::var_os("BERTH_SESSION_FILE"), std::env::var_os("XDG_CONFIG_HOME"), std::env::var_os("HOME"))
}

/// Where the session lives, given `$BERTH_SESSION_FILE`, `$XDG_CONFIG_HOME` and `$HOME`.
pub fn path_from(
    session_file: Option<OsString>,
    xdg_config_home: Option<OsString>,
    home: Option<OsString>,
) -> anyhow::Result<PathBuf> {
    let set = |v: Option<OsString>| v.filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(p) = set(session_file) {
        return Ok(p);
    }
    // The XDG spec says to ignore a relative value.
    if let Some(x) = set(xdg_config_home).filter(|p| p.is_absolute()) {
        return Ok(x.join("berth").join("session.json"));
    }
    if let Some(h) = set(home) {
        return Ok(h.join(".config").join("berth").join("session.json"));
    }
    bail!("cannot tell where to keep the session: set BERTH_SESSION_FILE or HOME")
}

/// The saved session, or `None` when there is none.
pub fn load(path: &Path) -> anyhow::Result<Option<Session>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read the session file {}", path.display())),
    };
    warn_if_readable_by_others(path);
    let s: Session = serde_json::from_str(&text)
        .with_context(|| format!("the session file {} is damaged: run `berth login` again", path.display()))?;
    Ok(Some(s))
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    if let Ok(m) = std::fs::metadata(path) {
        if m.permissions().mode() & 0o077 != 0 {
            errln!("warning: {} is readable by other users; run `chmod 600 {}`", path.display(), path.display());
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

/// Saves the session: parent directory created 0700 if missing, file written 0600 via a
/// temporary file and a rename.
pub fn save(path: &Path, session: &Session) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    create_private_dir(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "session.json".to_owned());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let json = serde_json::to_vec_pretty(session).context("cannot encode the session")?;
    let written = write_private(&tmp, &json).and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write the session file {}", path.display()));
    }
    Ok(())
}

/// Removes the saved session; false when there was none.
pub fn remove(path: &Path) -> anyhow::Result<bool> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).with_context(|| format!("cannot remove the session file {}", path.display())),
    }
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    // A temporary file left by a crashed run of this same process id: replace it.
    let _ = std::fs::remove_file(path);
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn sample() -> Session {
        Session {
            url: "http://127.0.0.1:8080/".into(),
            token: "berth_s3cr3t".into(),
            expires_at: Utc::now() + chrono::Duration::hours(1),
        }
    }

    #[cfg(unix)]
    fn mode(p: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    #[cfg(unix)]
    fn session_file_is_created_0600_in_a_0700_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("cfg").join("berth").join("session.json");
        save(&path, &sample()).unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        let back = load(&path).unwrap().unwrap();
        assert_eq!(back.token, "berth_s3cr3t");
        assert!(!back.expired(Utc::now()));
        // No temporary file left behind.
        assert_eq!(std::fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
    }

    #[test]
    #[cfg(unix)]
    fn saving_over_a_world_readable_file_makes_it_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("session.json");
        std::fs::write(&path, "{}").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        save(&path, &sample()).unwrap();
        assert_eq!(mode(&path), 0o600);
        assert!(remove(&path).unwrap());
        assert!(!remove(&path).unwrap());
        assert!(load(&path).unwrap().is_none());
    }

    #[test]
    fn path_follows_the_environment() {
        let p = |a: Option<&str>, b: Option<&str>, c: Option<&str>| {
            path_from(a.map(Into::into), b.map(Into::into), c.map(Into::into))
        };
        assert_eq!(p(Some("/s.json"), Some("/x"), Some("/h")).unwrap(), PathBuf::from("/s.json"));
        assert_eq!(p(Some(""), Some("/x"), Some("/h")).unwrap(), PathBuf::from("/x/berth/session.json"));
        assert_eq!(p(None, Some("rel"), Some("/h")).unwrap(), PathBuf::from("/h/.config/berth/session.json"));
        assert!(p(None, None, None).is_err());
    }

    #[test]
    fn debug_hides_the_token() {
        assert!(!format!("{:?}", sample()).contains("s3cr3t"));
    }
}
