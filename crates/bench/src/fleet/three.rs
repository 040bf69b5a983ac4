//! Three `berth serve` instances on one PostgreSQL database check 100,000 repositories within
//! one interval, each exactly once. The Git host is a small HTTP server in this process that
//! answers every repository's v2 discovery and `ls-refs` with bytes captured from the real
//! `git http-backend` once (which forks a process per request and could not keep up); the
//! repositories are seeded through the store.

use super::server::Server;
use super::sweep::{self, Exchange};
use anyhow::{bail, Context, Result};
use axum::http::{header, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The interval the instances run with: every repository must be checked once within it.
const INTERVAL_MINS: u64 = 30;

/// Serves `canned` for every repository path; returns the base URL.
async fn canned_host(canned: Exchange) -> Result<String> {
    let canned = Arc::new(canned);
    let app = axum::Router::new().fallback(move |method: Method, uri: Uri| {
        let canned = canned.clone();
        async move { answer(&canned, &method, &uri) }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("canned Git host: {e}");
        }
    });
    Ok(base)
}

fn answer(canned: &Exchange, method: &Method, uri: &Uri) -> Response {
    let path = uri.path();
    if method == Method::GET && path.ends_with("/info/refs") && uri.query() == Some("service=git-upload-pack") {
        ([(header::CONTENT_TYPE, "application/x-git-upload-pack-advertisement")], canned.discovery.clone())
            .into_response()
    } else if method == Method::POST && path.ends_with("/git-upload-pack") {
        ([(header::CONTENT_TYPE, "application/x-git-upload-pack-result")], canned.ls_refs.clone()).into_response()
    } else {
        StatusCode::NOT_FOUND.into_response()
    }
}

/// Seeds `total` repositories on `host` in batches, not due until a person asks.
async fn seed(store: &berth_store::Store, credential_id: i64, total: usize, host: &str) -> Result<()> {
    const BATCH: usize = 5_000;
    let later = chrono::Utc::now() + chrono::Duration::days(30);
    for start in (0..total).step_by(BATCH) {
        let rows: Vec<berth_store::NewRepository> = (start..(start + BATCH).min(total))
            .map(|i| {
                let url = format!("{host}/git/fleet/r{i:06}.git");
                berth_store::NewRepository {
                    name: format!("fleet3-{i:06}"),
                    vcs: "git".into(),
                    clone_url: url.clone(),
                    repo_key: format!("generic:{url}"),
                    provider: "generic".into(),
                    default_branch: "main".into(),
                    credential_id: Some(credential_id),
                    next_check_at: Some(later),
                }
            })
            .collect();
        store.insert_repositories(&rows).await?;
    }
    Ok(())
}

pub async fn run(bin: &Path, sample_repo: &str, repos: usize, concurrency: usize) -> Result<Value> {
    let http = reqwest::Client::new();
    let host = canned_host(sweep::one_check(&http, sample_repo).await?).await?;
    sweep::one_check(&http, &format!("{host}/git/probe.git")).await.context("the canned Git host does not answer")?;
    let data = tempfile::tempdir()?;
    let database_url = berth_testkit::pg::PgCluster::shared().create_database();
    let checks = format!(
        "interval_mins = {INTERVAL_MINS}\njitter_percent = 0\npoll_secs = 0.5\nconcurrency = {concurrency}\nper_host = {concurrency}\n"
    );
    // The first creates the schema and the master key; the others share both, as an operator
    // copies the key file to every instance.
    let first = Server::start(bin, data.path(), &database_url, "i1", &checks).await?;
    first.create_credential().await?;
    let (store, _) = berth_store::Store::open(&database_url, &data.path().join("master.key")).await?;
    let credential = store.find_credential("bench").await?;
    let t = Instant::now();
    seed(&store, credential.id, repos, &host).await?;
    eprintln!("[fleet of three] seeded {repos} repositories through the store in {:.1}s", t.elapsed().as_secs_f64());
    let mut servers = vec![first];
    for name in ["i2", "i3"] {
        servers.push(Server::start(bin, data.path(), &database_url, name, &checks).await?);
    }
    let mark = store.last_check_id().await?;
    let started = Instant::now();
    servers[0].call(reqwest::Method::POST, "/api/v1/checks/schedule", Some(json!({}))).await?;
    let interval = Duration::from_secs(INTERVAL_MINS * 60);
    let swept = sweep::wait_for_checks(&store, mark, repos, started, Duration::from_secs(1), interval).await?;
    // Several polls of every instance later, nothing may have run twice.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let counts = sweep::counts(&store, mark).await?;
    let once = counts.values().filter(|n| **n == 1).count();
    let by_instance = store.check_counts_by_instance_since(mark).await?;
    for s in servers {
        s.stop().await;
    }
    store.close().await;
    let secs = swept.took.as_secs_f64();
    eprintln!(
        "[fleet of three] 3 instances on one PostgreSQL, a canned local Git host (discovery and ls-refs bytes captured from git http-backend): {repos} repositories checked in {secs:.1}s ({:.0} checks/s; {:.1}% of the {INTERVAL_MINS}-minute interval); checked exactly once: {once}/{repos}; failed: {}; by instance: {}",
        repos as f64 / secs,
        100.0 * secs / interval.as_secs_f64(),
        swept.failed,
        by_instance.iter().map(|(i, n)| format!("{i} {n}")).collect::<Vec<_>>().join(", ")
    );
    if once != repos || counts.len() != repos {
        bail!(
            "[fleet of three] {} of {repos} repositories were checked exactly once ({} checked at all)",
            once,
            counts.len()
        );
    }
    if swept.failed > 0 {
        bail!("[fleet of three] {} checks failed", swept.failed);
    }
    Ok(json!({
        "git_host": "canned smart-HTTP v2 answers in the benchmark process",
        "instances": 3, "repositories": repos, "interval_s": interval.as_secs(), "sweep_s": secs,
        "checks_per_s": repos as f64 / secs, "checked_exactly_once": once,
        "by_instance": by_instance.into_iter().map(|(i, n)| json!({"instance": i, "checks": n})).collect::<Vec<_>>(),
    }))
}
