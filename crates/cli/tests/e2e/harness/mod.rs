//! Starts Berth and a test Git server with known users and repositories, and watches
//! everything the suite sees for the suite's known secrets (see [`KNOWN_SECRETS`]): every log
//! line of every in-process Berth, every answer the suite receives, every file a Berth leaves
//! in its data directory (and, on PostgreSQL, the cluster's files) and every panic message.
//!
//! - this file: an in-process Berth ([`Berth`]) and raw requests for the tests of HTTP itself;
//! - `api.rs`: the typed client the suite drives the API with ([`Api`], over
//!   `berth::client::ApiClient`), with request builders and step lookups;
//! - `child.rs`: `berth serve` child processes and their readiness;
//! - `web.rs`: a browser-less web session (sign-in form, cookie, CSRF); `browser.rs`: Chromium
//!   through WebDriver;
//! - `secrets.rs` and `leakscan/`: the known secrets and the scan for them.

mod api;
pub mod browser;
mod child;
pub mod leakscan;
mod secrets;
pub mod web;

pub use api::*;
pub use child::*;
pub use leakscan::*;
pub use secrets::*;

use berth_server::config::Config;
use berth_testkit::{bare_repo, empty_repo, GitServer, GitServerOptions};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;
use tempfile::TempDir;

pub struct Berth {
    pub base: String,
    /// SQLite in `data` by default; a fresh PostgreSQL database with
    /// `BERTH_TEST_DATABASE=postgres` (the suite runs on both).
    pub database_url: String,
    pub data: TempDir,
    /// The administrator's session token, for raw requests.
    pub token: String,
    /// The administrator's typed client: how tests call the API.
    pub api: Api,
    pub git: GitServer,
    pub repos: TempDir,
    /// For raw requests: tests of malformed input and of HTTP itself.
    pub http: reqwest::Client,
    /// Where PostgreSQL's WAL was when this Berth started (0 on SQLite).
    wal_start: u64,
    scanned: bool,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

pub struct Options {
    pub network_allow: Option<&'static str>,
    pub protocol_v2: bool,
    /// Contents of a `BERTH_CONFIG` file, e.g. `[[integrations]]` for a simulated host.
    pub config_toml: Option<String>,
    /// Sets `public_url` to this Berth's own address (hosts' webhooks post to it).
    pub public_url_self: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { network_allow: Some("127.0.0.0/8,::1"), protocol_v2: true, config_toml: None, public_url_self: false }
    }
}

impl Berth {
    pub async fn start() -> Berth {
        Berth::start_with(Options::default()).await
    }

    pub async fn start_with(opts: Options) -> Berth {
        leakscan::init();
        let repos = tempfile::tempdir().unwrap();
        bare_repo(repos.path(), "team/app.git", "trunk", &["trunk", "develop", "release/1.0", "feature/login"]);
        bare_repo(repos.path(), "team/lib.git", "main", &["main"]);
        empty_repo(repos.path(), "team/empty.git", "main");
        let git = GitServer::start(
            repos.path(),
            GitServerOptions {
                users: vec![
                    ("x-bitbucket-api-token-auth".into(), TOKEN.into()),
                    ("alice".into(), ALICE_PASSWORD.into()),
                ],
                protocol_v2: opts.protocol_v2,
                ..GitServerOptions::default()
            },
        )
        .await;

        let data = tempfile::tempdir().unwrap();
        let mut env: HashMap<String, String> = HashMap::new();
        env.insert("BERTH_DATA_DIR".into(), data.path().display().to_string());
        let database_url = berth_testkit::pg::test_database_url(data.path());
        let wal_start = postgres_wal_position(&database_url);
        env.insert("BERTH_DATABASE_URL".into(), database_url.clone());
        env.insert("BERTH_ADMIN_PASSWORD".into(), ADMIN_PASSWORD.into());
        env.insert("BERTH_LISTEN".into(), "127.0.0.1:0".into());
        if let Some(toml) = &opts.config_toml {
            let path = data.path().join("berth.toml");
            std::fs::write(&path, toml).unwrap();
            env.insert("BERTH_CONFIG".into(), path.display().to_string());
        }
        if let Some(a) = opts.network_allow {
            env.insert("BERTH_NETWORK_ALLOW".into(), a.into());
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        if opts.public_url_self {
            env.insert("BERTH_PUBLIC_URL".into(), base.clone());
        }
        let config = Config::load(&move |k| env.get(k).cloned()).unwrap();
        let ready = berth_server::prepare(config).await.unwrap();
        assert!(ready.generated_admin_password.is_none(), "the configured admin password is used");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            berth_server::serve_listener(listener, ready.state, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        let http = reqwest::Client::new();
        let api = Api::login(&base, "admin", ADMIN_PASSWORD).await;
        let token = api.token().to_owned();
        Berth {
            base,
            database_url,
            data,
            token,
            api,
            git,
            repos,
            http,
            wal_start,
            scanned: false,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    /// The SQLite file, when the suite runs on SQLite.
    pub fn db_path(&self) -> Option<PathBuf> {
        self.database_url.starts_with("sqlite:").then(|| self.data.path().join("berth.db"))
    }

    /// A raw request with the administrator's token (`None`: anonymous) and, when given, a
    /// body of this content type. Returns the status, the body as JSON (`Null` when it is not
    /// JSON) and the answer's content type; the body is scanned for secrets.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Option<reqwest::Body>,
    ) -> (StatusCode, Value, String) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        if let Some(body) = body {
            req = req.body(body);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let ct = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        let text = answer_text(&format!("the answer to {path}"), resp).await;
        (status, serde_json::from_str(&text).unwrap_or(Value::Null), ct)
    }

    /// A raw `GET` as the administrator: documents (`/api/openapi.json`) and malformed queries.
    pub async fn raw_get(&self, path: &str) -> (StatusCode, Value) {
        let (s, v, _) = self.raw(Method::GET, path, Some(&self.token), None, None).await;
        (s, v)
    }

    /// Stores the API-token credential the test Git server accepts.
    pub async fn api_token_credential(&self, name: &str) -> i64 {
        let req = berth_proto::CredentialCreate {
            email: Some("jo@example.com".into()),
            scopes: Some(vec!["read:repository:bitbucket".into()]),
            ..new_credential(name, berth_core::CredentialKind::BitbucketApiToken, TOKEN)
        };
        let c = self.api.create_credential(&req).await.unwrap();
        assert_eq!(self.api.status(), 201);
        c.id
    }

    /// Registers `path` on the test Git server with the stored credential `credential`.
    pub async fn register(&self, name: &str, path: &str, credential: &str) -> i64 {
        let r = self.api.create_repository(&new_repository(name, &self.git.repo_url(path), credential)).await.unwrap();
        assert_eq!(self.api.status(), 201);
        r.id
    }

    /// Stops the server and hands back its data directory for inspection.
    pub async fn stop_keep_data(mut self) -> TempDir {
        self.halt().await;
        let empty = tempfile::tempdir().unwrap();
        std::mem::replace(&mut self.data, empty)
    }

    pub async fn stop(mut self) {
        self.halt().await;
    }

    async fn halt(&mut self) {
        // While it runs (SQLite's WAL and shared memory are there), then once it has stopped.
        assert_dir_clean("a running Berth's data directory", self.data.path());
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
        self.final_scan();
    }

    /// The data directory (database, WAL, key file), the PostgreSQL files this Berth wrote,
    /// and every log line and panic message of the process so far.
    fn final_scan(&mut self) {
        if std::mem::replace(&mut self.scanned, true) {
            return;
        }
        let read = assert_dir_clean("a Berth's data directory", self.data.path());
        assert!(read > 0, "the data directory holds nothing to scan");
        assert_postgres_clean("a Berth's database", &self.database_url, self.wal_start);
        assert!(
            captured_lines(Some("berth_server")) + captured_lines(Some("tower_http")) > 0,
            "no log line was captured"
        );
        assert_no_leaks_recorded();
    }
}

impl Drop for Berth {
    /// A test that never calls `stop` still has its files and logs scanned.
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.final_scan();
        }
    }
}

/// The body of an answer, after checking it holds no known secret.
pub async fn answer_text(where_: &str, resp: reqwest::Response) -> String {
    let text = resp.text().await.unwrap();
    assert_no_secret(where_, &text);
    text
}

/// A test Git server with `count` repositories `team/{prefix}{i}.git` (default branch `main`,
/// these branches) that accepts `token` as a Bitbucket API token; keep the directory alive.
pub async fn git_server_with_repos(prefix: &str, count: usize, branches: &[&str], token: &str) -> (TempDir, GitServer) {
    let repos = tempfile::tempdir().unwrap();
    for i in 0..count {
        bare_repo(repos.path(), &format!("team/{prefix}{i}.git"), "main", branches);
    }
    let git = GitServer::start(
        repos.path(),
        GitServerOptions {
            users: vec![("x-bitbucket-api-token-auth".into(), token.into())],
            ..GitServerOptions::default()
        },
    )
    .await;
    (repos, git)
}

/// Polls `probe` until it yields a value, for at most a minute.
pub async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "gave up waiting: {what}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
