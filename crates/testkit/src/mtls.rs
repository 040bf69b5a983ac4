//! A TLS endpoint that demands a client certificate (mutual TLS), with certificates made in the
//! test by the `openssl` command line: the server's own (from a private CA, valid for
//! 127.0.0.1), a client certificate from the client CA the server trusts, and a stray client
//! certificate from another CA, which the server refuses. `openssl s_server -Verify 1
//! -verify_return_error` ends the handshake when no certificate or an untrusted one is presented.

use crate::tls::{make_certs, LeafCert};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

pub struct MtlsServer {
    child: tokio::process::Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl MtlsServer {
    /// `None` when no `openssl` binary is available.
    pub async fn start() -> Option<MtlsServer> {
        if Command::new("openssl").arg("version").stdout(Stdio::null()).status().is_err() {
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        make_certs(d, LeafCert::Valid);
        client_certificate(d, "client", "Berth Test Client CA");
        client_certificate(d, "stray", "Some Other CA");
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
        let child = tokio::process::Command::new("openssl")
            .args(["s_server", "-quiet", "-www", "-accept"])
            .arg(format!("127.0.0.1:{port}"))
            .args([
                "-cert",
                "leaf.pem",
                "-key",
                "leaf.key",
                "-Verify",
                "1",
                "-verify_return_error",
                "-CAfile",
                "client-ca.pem",
            ])
            .current_dir(d)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start openssl s_server");
        let server = MtlsServer { child, port, dir };
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", server.port)).await.is_ok() {
                return Some(server);
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("openssl s_server did not start listening on port {}", server.port);
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `https://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// The CA that issued the server's certificate (PEM file).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// A client certificate and key the server accepts (PEM files).
    pub fn client_files(&self) -> (PathBuf, PathBuf) {
        (self.dir.path().join("client.pem"), self.dir.path().join("client.key"))
    }

    /// A client certificate and key from a CA the server does not trust.
    pub fn stray_client_files(&self) -> (PathBuf, PathBuf) {
        (self.dir.path().join("stray.pem"), self.dir.path().join("stray.key"))
    }

    pub async fn shutdown(mut self) {
        let _ = self.child.kill().await;
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().expect("run openssl");
    if !out.status.success() {
        panic!("openssl {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
}

/// `<name>.pem` and `<name>.key` (PKCS#8), issued by a CA of its own, `<name>-ca.pem`.
fn client_certificate(d: &Path, name: &str, ca_subject: &str) {
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    let (ca_key, ca_pem) = (format!("{name}-ca.key"), format!("{name}-ca.pem"));
    let ca_subj = format!("/CN={ca_subject}");
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend(["-keyout", &ca_key, "-out", &ca_pem, "-days", "30", "-subj", &ca_subj]);
    ca.extend(["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
    openssl(d, &ca);
    let (key, csr, pem) = (format!("{name}.key"), format!("{name}.csr"), format!("{name}.pem"));
    let subj = format!("/CN=berth-{name}");
    let mut req = vec!["req"];
    req.extend(ec);
    req.extend(["-keyout", &key, "-out", &csr, "-subj", &subj]);
    openssl(d, &req);
    let ext = format!("{name}.ext");
    std::fs::write(d.join(&ext), "basicConstraints=critical,CA:FALSE\nextendedKeyUsage=clientAuth\n").expect("ext");
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_pem,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-days",
            "30",
            "-out",
            &pem,
            "-extfile",
            &ext,
        ],
    );
}
