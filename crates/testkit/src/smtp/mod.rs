//! A real SMTP server for the notification tests: Debian's `python3-aiosmtpd`, run privately
//! on a free port with a certificate from a private CA, STARTTLS required, AUTH with one
//! known user (only after STARTTLS), and each accepted message written to a Maildir that the
//! test reads. Not a mock: the same SMTP dialogue a mail relay speaks.

use crate::tls::{make_certs, LeafCert};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncBufReadExt;

const SCRIPT: &str = include_str!("server.py");

pub struct SmtpServer {
    child: tokio::process::Child,
    pub port: u16,
    ca_pem: Vec<u8>,
    dir: tempfile::TempDir,
}

impl SmtpServer {
    /// Starts the server accepting `user` with `password`. `None` when `python3-aiosmtpd`
    /// is not installed.
    pub async fn start(user: &str, password: &str) -> Option<SmtpServer> {
        let python = "/usr/bin/python3";
        let probe = std::process::Command::new(python).args(["-c", "import aiosmtpd"]).stderr(Stdio::null()).status();
        if !probe.is_ok_and(|s| s.success()) {
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        make_certs(d, LeafCert::Valid);
        std::fs::write(d.join("server.py"), SCRIPT).expect("write the SMTP server script");
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
        let mut child = tokio::process::Command::new(python)
            .arg(d.join("server.py"))
            .arg(d.join("leaf.pem"))
            .arg(d.join("leaf.key"))
            .arg(d.join("maildir"))
            .arg(port.to_string())
            .arg(user)
            .arg(password)
            .current_dir(d)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start the SMTP server");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await;
        match ready {
            Ok(Ok(Some(l))) if l == "ready" => {}
            other => panic!("the SMTP server did not start: {other:?}"),
        }
        let ca_pem = std::fs::read(d.join("ca.pem")).expect("read CA");
        Some(SmtpServer { child, port, ca_pem, dir })
    }

    /// The CA that issued the server's certificate (for 127.0.0.1), as PEM.
    pub fn ca_pem(&self) -> Vec<u8> {
        self.ca_pem.clone()
    }

    /// Where the CA is written, for a `[git] extra_ca_files` entry.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// Every message received so far, raw (headers and body), oldest first.
    pub fn messages(&self) -> Vec<String> {
        read_maildir(&self.dir.path().join("maildir"))
    }

    pub async fn shutdown(mut self) {
        drop(self.child.stdin.take());
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
        let _ = self.child.kill().await;
    }
}

fn read_maildir(root: &Path) -> Vec<String> {
    let mut files: Vec<(std::time::SystemTime, String)> = Vec::new();
    for sub in ["new", "cur"] {
        let Ok(entries) = std::fs::read_dir(root.join(sub)) else { continue };
        for e in entries.flatten() {
            let when = e.metadata().and_then(|m| m.modified()).unwrap_or(std::time::UNIX_EPOCH);
            if let Ok(text) = std::fs::read_to_string(e.path()) {
                files.push((when, text));
            }
        }
    }
    files.sort_by_key(|(t, _)| *t);
    files.into_iter().map(|(_, t)| t).collect()
}
