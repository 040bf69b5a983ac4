//! A real Berth server in this process, started like the end-to-end tests do, for the Refresh
//! measured through the REST API.

use anyhow::{bail, Context, Result};
use berth_server::config::Config;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tempfile::TempDir;

const ADMIN_PASSWORD: &str = "berth-bench-admin-password";
/// The credential Refresh uses. The Git server is anonymous and ignores it, but Berth needs one.
const CREDENTIAL: &str = "bench";

/// An API session token for `admin` on the Berth at `base`.
pub async fn login(http: &reqwest::Client, base: &str, password: &str) -> Result<String> {
    let answer: Value = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": "admin", "password": password}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(answer["token"].as_str().context("no token in the login answer")?.to_owned())
}

pub struct Berth {
    base: String,
    token: String,
    http: reqwest::Client,
    shutdown: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
    _data: TempDir,
}

impl Berth {
    pub async fn start() -> Result<Berth> {
        let data = tempfile::tempdir()?;
        let env: HashMap<&str, String> = HashMap::from([
            ("BERTH_DATA_DIR", data.path().display().to_string()),
            ("BERTH_ADMIN_PASSWORD", ADMIN_PASSWORD.to_owned()),
            ("BERTH_LISTEN", "127.0.0.1:0".to_owned()),
            ("BERTH_NETWORK_ALLOW", "127.0.0.0/8".to_owned()),
        ]);
        let config = Config::load(&|k| env.get(k).cloned())?;
        let ready = berth_server::prepare(config).await?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let stopped = async {
                let _ = stopped.await;
            };
            if let Err(e) = berth_server::serve_listener(listener, ready.state, stopped).await {
                eprintln!("berth server: {e}");
            }
        });
        let http = reqwest::Client::new();
        let token = login(&http, &base, ADMIN_PASSWORD).await?;
        let berth = Berth { base, token, http, shutdown, task, _data: data };
        let credential =
            json!({"name": CREDENTIAL, "kind": "username_password", "username": "bench", "secret": "bench-password"});
        berth.post("/api/v1/credentials", &credential).await?;
        Ok(berth)
    }

    async fn post(&self, path: &str, body: &Value) -> Result<bytes::Bytes> {
        let resp = self.http.post(format!("{}{path}", self.base)).bearer_auth(&self.token).json(body).send().await?;
        let status = resp.status();
        let body = resp.bytes().await?;
        if !status.is_success() {
            bail!("POST {path} answered {status}: {}", String::from_utf8_lossy(&body));
        }
        Ok(body)
    }

    /// `POST /api/v1/remote-branches`: the time until the last byte of the answer arrived (the
    /// client's JSON decoding is not Berth's cost and is left out), and the branch count.
    pub async fn refresh(&self, clone_url: &str) -> Result<(Duration, usize)> {
        let started = Instant::now();
        let body =
            self.post("/api/v1/remote-branches", &json!({"clone_url": clone_url, "credential": CREDENTIAL})).await?;
        let took = started.elapsed();
        let answer: Value = serde_json::from_slice(&body)?;
        let branches = answer["branches"].as_array().context("no branches in the remote-branches answer")?.len();
        Ok((took, branches))
    }

    pub async fn stop(self) {
        let _ = self.shutdown.send(());
        let _ = self.task.await;
    }
}
