//! A TLS endpoint with a private CA, for testing certificate failures: the `openssl` command line
//! makes the certificates and `openssl s_server -www` serves them (it answers any GET with an
//! HTML status page, which is all a TLS test needs once the handshake succeeded).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Which certificate the server presents. All are issued by the server's private CA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeafCert {
    /// Valid for 127.0.0.1.
    Valid,
    /// Valid, but only for the name `other.invalid`.
    WrongName,
    /// For 127.0.0.1, but expired in 2020.
    Expired,
}

pub struct TlsServer {
    child: tokio::process::Child,
    port: u16,
    ca_pem: Vec<u8>,
    _dir: tempfile::TempDir,
}

impl TlsServer {
    /// `None` when no `openssl` binary is available.
    pub async fn start(leaf: LeafCert) -> Option<TlsServer> {
        if Command::new("openssl").arg("version").stdout(Stdio::null()).status().is_err() {
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        make_certs(d, leaf);
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
        let child = tokio::process::Command::new("openssl")
            .args(["s_server", "-quiet", "-www", "-accept"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-cert", "leaf.pem", "-key", "leaf.key"])
            .current_dir(d)
            // Held open: s_server also reads commands from stdin.
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start openssl s_server");
        let ca_pem = std::fs::read(d.join("ca.pem")).expect("read CA");
        let server = TlsServer { child, port, ca_pem, _dir: dir };
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return Some(server);
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("openssl s_server did not start listening on port {port}");
    }

    /// `https://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// The CA that issued the server's certificate, as PEM.
    pub fn ca_pem(&self) -> Vec<u8> {
        self.ca_pem.clone()
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

/// Writes `ca.pem` (a private CA) and `leaf.pem`/`leaf.key` (signed by it, for `leaf`) into `d`.
pub fn make_certs(d: &Path, leaf: LeafCert) {
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout", "ca.key", "-out", "ca.pem", "-days", "30", "-subj", "/CN=Berth Test CA",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(d, &ca);
    let san = match leaf {
        LeafCert::WrongName => "subjectAltName=DNS:other.invalid",
        LeafCert::Valid | LeafCert::Expired => "subjectAltName=IP:127.0.0.1",
    };
    let mut csr = vec!["req"];
    csr.extend(ec);
    csr.extend(["-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=berth-test-leaf", "-addext", san]);
    openssl(d, &csr);
    // `openssl ca` is the one 3.0-era command that can backdate a certificate.
    std::fs::write(d.join("index.txt"), "").expect("write index");
    std::fs::write(d.join("serial"), "1000\n").expect("write serial");
    std::fs::write(
        d.join("ca.cnf"),
        "[ca]\ndefault_ca = test\n[test]\ndatabase = index.txt\nnew_certs_dir = .\nserial = serial\n\
         default_md = sha256\npolicy = any\ncopy_extensions = copy\nunique_subject = no\n\
         x509_extensions = leaf\n[any]\ncommonName = supplied\n\
         [leaf]\nbasicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature\n\
         extendedKeyUsage = serverAuth\n",
    )
    .expect("write ca.cnf");
    let (start, end) = match leaf {
        LeafCert::Expired => ("20200101000000Z", "20200102000000Z"),
        _ => ("20240101000000Z", "20991231000000Z"),
    };
    openssl(
        d,
        &[
            "ca", "-batch", "-notext", "-config", "ca.cnf", "-cert", "ca.pem", "-keyfile", "ca.key", "-in", "leaf.csr",
            "-out", "leaf.pem", "-startdate", start, "-enddate", end,
        ],
    );
}
