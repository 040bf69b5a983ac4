//! Starts Berth and a test Git server with known users and repositories.

use berth_server::config::Config;
use berth_testkit::{bare_repo, empty_repo, GitServer, GitServerOptions};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::PathBuf;
use tempfile::TempDir;

pub const ADMIN_PASSWORD: &str = "admin-password-e2e-9c1f";
/// The API token the test Git server accepts for `x-bitbucket-api-token-auth`.
pub const TOKEN: &str = "ATATT3xFfGF0e2e-known-secret-4d8b1a";
pub const ALICE_PASSWORD: &str = "alice-known-password-77aa";

pub struct Berth {
    pub base: String,
    /// SQLite in `data` by default; a fresh PostgreSQL database with
    /// `BERTH_TEST_DATABASE=postgres` (the suite runs on both).
    pub database_url: String,
    pub data: TempDir,
    pub token: String,
    pub git: GitServer,
    pub repos: TempDir,
    pub http: reqwest::Client,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

pub struct Options {
    pub network_allow: Option<&'static str>,
    pub protocol_v2: bool,
    /// Contents of a `BERTH_CONFIG` file, e.g. `[[integrations]]` for a simulated host.
    pub config_toml: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options { network_allow: Some("127.0.0.0/8,::1"), protocol_v2: true, config_toml: None }
    }
}

impl Berth {
    pub async fn start() -> Berth {
        Berth::start_with(Options::default()).await
    }

    pub async fn start_with(opts: Options) -> Berth {
        let repos = tempfile::tempdir().unwrap();
        bare_repo(repos.path(), "team/app.git", "trunk", &["trunk", "develop", "release/1.0", "feature/login"]);
        bare_repo(repos.path(), "team/lib.git", "main", &["main"]);
        empty_repo(repos.path(), "team/empty.git", "main");
        let git = GitServer::start(
            repos.path(),
            GitServerOptions {
                users: vec![("x-bitbucket-api-token-auth".into(), TOKEN.into()), ("alice".into(), ALICE_PASSWORD.into())],
                protocol_v2: opts.protocol_v2,
                ..GitServerOptions::default()
            },
        )
        .await;

        let data = tempfile::tempdir().unwrap();
        let mut env: HashMap<String, String> = HashMap::new();
        env.insert("BERTH_DATA_DIR".into(), data.path().display().to_string());
        let database_url = berth_testkit::pg::test_database_url(data.path());
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
        let config = Config::load(&move |k| env.get(k).cloned()).unwrap();
        let ready = berth_server::prepare(config).await.unwrap();
        assert!(ready.generated_admin_password.is_none(), "the configured admin password is used");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            berth_server::serve_listener(listener, ready.state, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        let http = reqwest::Client::new();
        let login: Value = http
            .post(format!("{base}/api/v1/auth/login"))
            .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = login["token"].as_str().expect("login token").to_owned();
        Berth { base, database_url, data, token, git, repos, http, shutdown: Some(tx), task: Some(task) }
    }

    /// The SQLite file, when the suite runs on SQLite.
    pub fn db_path(&self) -> Option<PathBuf> {
        self.database_url.starts_with("sqlite:").then(|| self.data.path().join("berth.db"))
    }

    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base)).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        let value = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        (status, value)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::DELETE, path, None).await
    }

    /// Stores the API-token credential the test Git server accepts.
    pub async fn api_token_credential(&self, name: &str) -> i64 {
        let (s, v) = self
            .post(
                "/api/v1/credentials",
                json!({"name": name, "kind": "bitbucket_api_token", "email": "jo@example.com", "secret": TOKEN,
                       "scopes": ["read:repository:bitbucket"]}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["id"].as_i64().unwrap()
    }

    /// Stops the server and hands back its data directory for inspection.
    pub async fn stop_keep_data(mut self) -> TempDir {
        self.halt().await;
        let Berth { data, .. } = self;
        data
    }

    pub async fn stop(mut self) {
        self.halt().await;
    }

    async fn halt(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

/// The code of the first failing step of an error answer.
pub fn error_code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("<none>")
}

/// The step named `step` in a list of checks.
pub fn step<'a>(checks: &'a Value, name: &str) -> &'a Value {
    checks.as_array().and_then(|a| a.iter().find(|s| s["step"] == name)).unwrap_or(&Value::Null)
}
