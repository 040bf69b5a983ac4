//! `berth-bench --fleet`: Berth keeping a fleet of repositories healthy, measured against a peer
//! in the same run.
//!
//! 1. **Sweep.** `--fleet-repos` repositories (1,000 by default) on a local `git http-backend`
//!    (in a child process) are registered with a real `berth serve` process; one background
//!    sweep ("check all now") is timed until every repository has a new scheduled check, against
//!    a sequential `git ls-remote --heads` loop over the same URLs. Ratio: loop / sweep.
//! 2. **Memory.** The server's resident memory when idle (after registration) and its peak
//!    during the sweep (`VmHWM`, reset through `/proc/<pid>/clear_refs` before the sweep).
//! 3. **Listing.** `GET /api/v1/repositories` with `--list-repos` repositories (10,000 by
//!    default; the extra rows are written through the store, since only reading is measured)
//!    under load from `wrk` in a second process, on SQLite and on PostgreSQL (the test kit's
//!    private cluster): p50 and p99 latency and requests per second, for the whole list and for
//!    a page of 100 (`?limit=100&offset=5000`), with `/healthz` under the same load as the floor
//!    of the HTTP stack.
//!
//! Correctness failures (a repository never checked, a failed check, a wrong count) make the
//! run fail; slowness never does.

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

const ADMIN_PASSWORD: &str = "berth-fleet-bench-admin-password";

pub struct FleetArgs {
    pub repos: usize,
    pub list_repos: usize,
    pub wrk_seconds: u64,
    pub berth_bin: PathBuf,
}

/// A `berth serve` child process.
struct Server {
    child: tokio::process::Child,
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Server {
    async fn start(bin: &Path, data: &Path, database_url: &str) -> Result<Server> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let config = data.join("berth.toml");
        // A long interval: only the sweep this benchmark asks for runs. Local Git: no per-host
        // politeness needed beyond the concurrency limit.
        std::fs::write(&config, "[checks]\ninterval_mins = 600\npoll_secs = 0.5\nconcurrency = 64\nper_host = 64\n")?;
        let log = std::fs::File::create(data.join("server.log"))?;
        let child = tokio::process::Command::new(bin)
            .arg("serve")
            .env("BERTH_LISTEN", format!("127.0.0.1:{port}"))
            .env("BERTH_DATA_DIR", data)
            .env("BERTH_DATABASE_URL", database_url)
            .env("BERTH_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("BERTH_NETWORK_ALLOW", "127.0.0.0/8")
            .env("BERTH_CONFIG", &config)
            .env("RUST_LOG", "warn")
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if http.get(format!("{base}/readyz")).send().await.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            if Instant::now() > deadline {
                bail!("berth serve did not become ready: {}", std::fs::read_to_string(data.join("server.log")).unwrap_or_default());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let token = crate::berth::login(&http, &base, ADMIN_PASSWORD).await?;
        Ok(Server { child, base, token, http })
    }

    fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value> {
        let mut req = self.http.request(method, format!("{}{path}", self.base)).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await?;
        let status = resp.status();
        let text = resp.text().await?;
        if !status.is_success() {
            bail!("{path} answered {status}: {text}");
        }
        Ok(if text.is_empty() { Value::Null } else { serde_json::from_str(&text)? })
    }

    async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

/// A field of `/proc/<pid>/status` in bytes (`VmRSS`, `VmHWM`).
fn proc_status_bytes(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with(field))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn mib(b: Option<u64>) -> f64 {
    b.map_or(f64::NAN, |b| b as f64 / 1024.0 / 1024.0)
}

async fn register_all(server: &Server, urls: &[String]) -> Result<()> {
    use futures_util::stream::{self, StreamExt};
    let results: Vec<Result<Value>> = stream::iter(urls.iter().enumerate())
        .map(|(i, url)| async move {
            server
                .call(
                    reqwest::Method::POST,
                    "/api/v1/repositories",
                    Some(json!({"name": format!("fleet-{i:05}"), "clone_url": url, "credential": "bench"})),
                )
                .await
        })
        .buffer_unordered(16)
        .collect()
        .await;
    for r in results {
        r?;
    }
    Ok(())
}

/// How many repositories have a scheduled check newer than check id `after` per repository.
async fn swept(server: &Server, after: &std::collections::HashMap<i64, i64>) -> Result<(usize, usize)> {
    let list = server.call(reqwest::Method::GET, "/api/v1/repositories", None).await?;
    let mut done = 0;
    let mut failed = 0;
    for r in list.as_array().context("repository list")? {
        let id = r["id"].as_i64().unwrap_or_default();
        let last = &r["last_check"];
        if last["id"].as_i64().unwrap_or_default() > after.get(&id).copied().unwrap_or_default() && last["reason"] == "schedule" {
            done += 1;
            if last["status"] == "fail" {
                failed += 1;
            }
        }
    }
    Ok((done, failed))
}

async fn ls_remote_loop(urls: &[String]) -> Result<Duration> {
    let started = Instant::now();
    for url in urls {
        let out = tokio::process::Command::new("git")
            .args(["ls-remote", "--heads", url])
            .env("GIT_TERMINAL_PROMPT", "0")
            .stdin(Stdio::null())
            .output()
            .await?;
        if !out.status.success() {
            bail!("git ls-remote {url} failed: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
    Ok(started.elapsed())
}

/// One `wrk` run against `path`; the session token goes in a Lua script file, never in argv.
async fn wrk(base: &str, path: &str, token: &str, seconds: u64, dir: &Path) -> Result<Value> {
    let script = dir.join("auth.lua");
    std::fs::write(&script, format!("wrk.headers[\"Authorization\"] = \"Bearer {token}\"\n"))?;
    let out = tokio::process::Command::new("wrk")
        .args(["-t2", "-c16", &format!("-d{seconds}s"), "--latency", "-s"])
        .arg(&script)
        .arg(format!("{base}{path}"))
        .output()
        .await
        .context("cannot run wrk (Debian package wrk; scripts/bench installs it)")?;
    let _ = std::fs::remove_file(&script);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() || text.contains("Non-2xx") {
        bail!("wrk against {path} failed or saw errors: {text}{}", String::from_utf8_lossy(&out.stderr));
    }
    let pct = |p: &str| -> Option<f64> {
        let line = text.lines().find(|l| l.trim_start().starts_with(p))?;
        parse_wrk_time(line.split_whitespace().nth(1)?)
    };
    let rps = text
        .lines()
        .find(|l| l.starts_with("Requests/sec:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok());
    Ok(json!({"p50_ms": pct("50%"), "p99_ms": pct("99%"), "requests_per_s": rps}))
}

/// wrk prints `812.00us`, `3.21ms` or `1.02s`; milliseconds.
fn parse_wrk_time(v: &str) -> Option<f64> {
    if let Some(n) = v.strip_suffix("us") {
        return n.parse::<f64>().ok().map(|x| x / 1000.0);
    }
    if let Some(n) = v.strip_suffix("ms") {
        return n.parse().ok();
    }
    if let Some(n) = v.strip_suffix('s') {
        return n.parse::<f64>().ok().map(|x| x * 1000.0);
    }
    None
}

/// Adds rows until the store holds `total` repositories (pointing at paths that are never
/// checked: only the listing reads them).
async fn seed(database_url: &str, key: &Path, total: usize, base_url: &str) -> Result<()> {
    let (store, _) = berth_store::Store::open(database_url, key).await?;
    let cred = store.find_credential("bench").await?;
    let have = store.list_repositories().await?.len();
    for i in have..total {
        let url = format!("{base_url}/git/seeded/r{i:05}.git");
        store
            .create_repository(&berth_store::NewRepository {
                name: format!("seeded-{i:05}"),
                vcs: "git".into(),
                clone_url: url.clone(),
                repo_key: format!("generic:{url}"),
                provider: "generic".into(),
                default_branch: "main".into(),
                credential_id: cred.id,
                next_check_at: Some(chrono::Utc::now() + chrono::Duration::days(30)),
            })
            .await?;
    }
    store.close().await;
    Ok(())
}

pub async fn run(args: &FleetArgs, git_base: &str, urls: &[String]) -> Result<Value> {
    let mut report = json!({});
    for (label, sqlite) in [("sqlite", true), ("postgres", false)] {
        let data = tempfile::tempdir()?;
        let database_url = if sqlite {
            format!("sqlite://{}", data.path().join("berth.db").display())
        } else {
            berth_testkit::pg::PgCluster::shared().create_database()
        };
        let server = Server::start(&args.berth_bin, data.path(), &database_url).await?;
        server
            .call(
                reqwest::Method::POST,
                "/api/v1/credentials",
                Some(json!({"name": "bench", "kind": "username_password", "username": "bench", "secret": "bench-password"})),
            )
            .await?;
        let t = Instant::now();
        register_all(&server, &urls[..args.repos.min(urls.len())]).await?;
        eprintln!("[{label}] registered {} repositories in {:.1}s", args.repos, t.elapsed().as_secs_f64());
        tokio::time::sleep(Duration::from_secs(2)).await;
        let pid = server.pid().context("server pid")?;
        let idle_rss = proc_status_bytes(pid, "VmRSS:");

        // The sweep, and the peer loop over the same URLs.
        let before: std::collections::HashMap<i64, i64> = server
            .call(reqwest::Method::GET, "/api/v1/repositories", None)
            .await?
            .as_array()
            .context("list")?
            .iter()
            .map(|r| (r["id"].as_i64().unwrap_or_default(), r["last_check"]["id"].as_i64().unwrap_or_default()))
            .collect();
        let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
        let started = Instant::now();
        server.call(reqwest::Method::POST, "/api/v1/checks/schedule", Some(json!({}))).await?;
        let mut peak_rss = proc_status_bytes(pid, "VmRSS:");
        let (sweep, failed) = loop {
            let (done, failed) = swept(&server, &before).await?;
            peak_rss = peak_rss.max(proc_status_bytes(pid, "VmRSS:"));
            if done == before.len() {
                break (started.elapsed(), failed);
            }
            if started.elapsed() > Duration::from_secs(600) {
                bail!("[{label}] the sweep did not finish in 10 minutes ({done}/{} checked)", before.len());
            }
            // Polling the list costs the server too; every 200 ms bounds the error to that.
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let hwm = proc_status_bytes(pid, "VmHWM:").or(peak_rss);
        if failed > 0 {
            bail!("[{label}] {failed} scheduled checks failed");
        }
        let git_loop = ls_remote_loop(&urls[..args.repos.min(urls.len())]).await?;
        let ratio = git_loop.as_secs_f64() / sweep.as_secs_f64();
        eprintln!(
            "[{label}] sweep of {} repositories: berth {:.2}s, sequential git ls-remote loop {:.2}s: berth {ratio:.1}x faster",
            before.len(),
            sweep.as_secs_f64(),
            git_loop.as_secs_f64()
        );
        eprintln!("[{label}] server memory: idle RSS {:.1} MiB, peak RSS during the sweep {:.1} MiB", mib(idle_rss), mib(hwm));

        // Listing under load, with `/healthz` as the floor.
        let key = data.path().join("master.key");
        server.call(reqwest::Method::GET, "/api/v1/me", None).await?;
        seed(&database_url, &key, args.list_repos, git_base).await?;
        let n = server.call(reqwest::Method::GET, "/api/v1/repositories", None).await?.as_array().map_or(0, Vec::len);
        if n != args.list_repos.max(args.repos) {
            bail!("[{label}] the list has {n} repositories, expected {}", args.list_repos.max(args.repos));
        }
        let list = wrk(&server.base, "/api/v1/repositories", &server.token, args.wrk_seconds, data.path()).await?;
        let page = wrk(&server.base, "/api/v1/repositories?limit=100&offset=5000", &server.token, args.wrk_seconds, data.path()).await?;
        let health = wrk(&server.base, "/healthz", &server.token, args.wrk_seconds, data.path()).await?;
        eprintln!(
            "[{label}] GET /api/v1/repositories with {n} repositories under wrk (2 threads, 16 connections): all of them p50 {} ms, p99 {} ms, {} req/s; a page of 100 p50 {} ms, p99 {} ms, {} req/s; /healthz p99 {} ms",
            list["p50_ms"], list["p99_ms"], list["requests_per_s"], page["p50_ms"], page["p99_ms"], page["requests_per_s"], health["p99_ms"]
        );
        report[label] = json!({
            "sweep": {"repositories": before.len(), "berth_s": sweep.as_secs_f64(), "git_ls_remote_loop_s": git_loop.as_secs_f64(), "ratio_loop_over_berth": ratio},
            "memory": {"idle_rss_bytes": idle_rss, "sweep_peak_rss_bytes": hwm},
            "list": {"repositories": n, "repositories_endpoint": list, "page_of_100": page, "healthz": health},
        });
        server.stop().await;
    }
    let p99 = |db: &str| report[db]["list"]["repositories_endpoint"]["p99_ms"].as_f64().unwrap_or(f64::NAN);
    eprintln!("list p99 PostgreSQL / SQLite: {:.2}", p99("postgres") / p99("sqlite"));
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_times() {
        assert_eq!(parse_wrk_time("812.00us"), Some(0.812));
        assert_eq!(parse_wrk_time("3.5ms"), Some(3.5));
        assert_eq!(parse_wrk_time("1.5s"), Some(1500.0));
        assert_eq!(parse_wrk_time("soon"), None);
    }
}
