//! A real OpenID provider for the single sign-on tests: panva's `oidc-provider` (npm, an
//! OpenID Certified implementation) run by Node from `crates/testkit/oidc/provider.mjs`, on a
//! free loopback port, with the clients and accounts a test gives. Its development sign-in page
//! takes any login name (the password is not checked); an account's `groups` claim comes from
//! the test and can be changed while it runs ([`OidcProvider::set_groups`]), and it can be made
//! to issue ID tokens for another registered client ([`OidcProvider::issue_id_tokens_for`]).
//!
//! Needs `node` and the package installed next to the script (`npm ci --prefix
//! crates/testkit/oidc`, which `scripts/test` runs).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A client registered at the provider.
#[derive(Debug, Clone)]
pub struct OidcClient {
    pub client_id: String,
    pub client_secret: String,
    pub redirect_uri: String,
}

pub struct OidcProvider {
    /// `http://localhost:PORT`, the issuer (and the base of every endpoint): `localhost`, so a
    /// browser sees it as another site than a Berth on `127.0.0.1`, as in production.
    pub issuer: String,
    child: Child,
    _dir: tempfile::TempDir,
}

fn script_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("oidc")
}

impl OidcProvider {
    /// Starts the provider with these clients and accounts (`(login, groups)`); panics with
    /// what to install when Node or the package is missing.
    pub fn start(clients: &[OidcClient], accounts: &[(&str, &[&str])]) -> OidcProvider {
        let dir = script_dir();
        assert!(
            dir.join("node_modules/oidc-provider").is_dir(),
            "the single sign-on tests need Node and npm's oidc-provider: run `npm ci --prefix {}` (scripts/test does)",
            dir.display()
        );
        let tmp = tempfile::tempdir().expect("tempdir");
        let config = serde_json::json!({
            "issuer_host": "localhost",
            "clients": clients.iter().map(|c| serde_json::json!({
                "client_id": c.client_id, "client_secret": c.client_secret, "redirect_uris": [c.redirect_uri],
            })).collect::<Vec<_>>(),
            "accounts": accounts.iter().map(|(login, groups)| ((*login).to_owned(), serde_json::json!({"groups": groups})))
                .collect::<serde_json::Map<_, _>>(),
        });
        let config_path = tmp.path().join("provider.json");
        std::fs::write(&config_path, config.to_string()).expect("write provider.json");
        let stderr = std::fs::File::create(tmp.path().join("provider.log")).expect("provider.log");
        let mut child = Command::new("node")
            .arg(dir.join("provider.mjs"))
            .arg(&config_path)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .spawn()
            .expect("start node (install Debian's nodejs; scripts/test does)");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        // The first line names the issuer; the rest (the provider's notices on stdout) is read
        // to the end, or the provider would die writing to a closed pipe.
        std::thread::spawn(move || {
            let mut out = BufReader::new(stdout);
            let mut line = String::new();
            let _ = out.read_line(&mut line);
            let _ = tx.send(line);
            let _ = std::io::copy(&mut out, &mut std::io::sink());
        });
        let line = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
        let issuer = serde_json::from_str::<serde_json::Value>(&line)
            .ok()
            .and_then(|v| v["issuer"].as_str().map(str::to_owned))
            .unwrap_or_else(|| {
                let log = std::fs::read_to_string(tmp.path().join("provider.log")).unwrap_or_default();
                panic!("the OpenID provider did not start: {line:?}\n{log}")
            });
        OidcProvider { issuer, child, _dir: tmp }
    }

    /// A JSON POST to one of the provider's test control routes.
    async fn control(&self, path: &str, body: &serde_json::Value) {
        let port = self.issuer.rsplit(':').next().unwrap_or_default();
        let addr = format!("127.0.0.1:{port}");
        let body = body.to_string();
        let mut s = tokio::net::TcpStream::connect(&addr).await.expect("connect to the provider");
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).await.expect("send");
        let mut answer = String::new();
        s.read_to_string(&mut answer).await.expect("read");
        assert!(answer.starts_with("HTTP/1.1 204"), "{path}: {answer}");
    }

    /// What the provider wrote to stderr (its warnings and errors), for assertion messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("provider.log")).unwrap_or_default()
    }

    /// The account's groups from now on (its next sign-in's claim).
    pub async fn set_groups(&self, login: &str, groups: &[&str]) {
        self.control(&format!("/__test/groups/{login}"), &serde_json::json!(groups)).await;
    }

    /// From now on, ID tokens are issued for `client` (another registered client) instead of
    /// the client that asked, signed as usual; `None` goes back to normal.
    pub async fn issue_id_tokens_for(&self, client: Option<&str>) {
        self.control("/__test/id-token-audience", &serde_json::json!(client)).await;
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
