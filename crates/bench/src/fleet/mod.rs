//! `berth-bench --fleet`: Berth keeping a fleet of repositories healthy, measured against peers
//! in the same run.
//!
//! 1. **Sweep.** `--fleet-repos` repositories (1,000 by default) on a local `git http-backend`
//!    (in a child process) are registered with a real `berth serve` process; a background
//!    sweep ("check all now") is timed until every repository has a new check in the database
//!    (read by this process, so the server answers no polling), `--fleet-rounds` times. Its
//!    peers over the same URLs: the ceiling, a plain concurrent HTTP client making exactly the
//!    requests one check makes with the same concurrency (what the server allows), and a
//!    sequential `git ls-remote --heads` loop (run once, before the databases).
//! 2. **Memory.** The server's resident memory when idle (after registration) and its peak
//!    during the sweeps (`VmHWM`, reset through `/proc/<pid>/clear_refs` before them).
//! 3. **Lists.** With `--list-repos` repositories (10,000, as in earlier runs) the list's
//!    default answer and `/healthz`; then with `--list-big` (100,000) the first page of 100, a
//!    page in the middle of the cursor chain, a status and a text filter, and the web VC Repos
//!    page (signed in through the web form), each under `wrk` (2 threads, 16 connections) from a
//!    second process. Rows beyond the swept ones are seeded through the store.
//! 4. **Three instances.** On PostgreSQL, three `berth serve` processes check `--fleet-three`
//!    repositories (100,000) within one interval, each exactly once, against a canned local Git
//!    host (see three.rs).
//!
//! Stages 1-3 run on SQLite and on PostgreSQL (the test kit's private cluster). Correctness
//! failures (a repository never checked or checked twice, a failed check, a wrong count) make
//! the run fail; slowness never does.

mod lists;
mod server;
mod sweep;
mod three;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use server::Server;
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub struct FleetArgs {
    pub repos: usize,
    pub list_repos: usize,
    pub list_big: usize,
    pub three_repos: usize,
    pub concurrency: usize,
    pub rounds: usize,
    pub stages: Vec<String>,
    pub databases: Vec<String>,
    pub wrk_seconds: u64,
    pub berth_bin: PathBuf,
}

impl FleetArgs {
    fn runs(&self, stage: &str) -> bool {
        self.stages.iter().any(|s| s == stage)
    }
}

/// A field of `/proc/<pid>/status` in bytes (`VmRSS`, `VmHWM`).
fn proc_status_bytes(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with(field))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// CPU time (user and system) a process has used so far, from `/proc/<pid>/stat`.
fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; the fields after its closing parenthesis do not.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // The kernel's USER_HZ is 100 on every Linux this runs on.
    Some(Duration::from_millis(ticks * 10))
}

/// The CPU time of a private PostgreSQL cluster: its postmaster and every process it started
/// (connections' backends, the checkpointer, the WAL writer), found by their parent id.
fn cluster_cpu_time(postmaster: u32) -> Option<Duration> {
    let mut total = cpu_time(postmaster)?;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        let parent = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
        if parent == Some(postmaster) {
            total += cpu_time(pid).unwrap_or_default();
        }
    }
    Some(total)
}

/// The postmaster of the shared test cluster (its data directory's `postmaster.pid`).
fn postmaster_pid() -> Option<u32> {
    let data = berth_testkit::pg::PgCluster::shared().data_dir().join("postmaster.pid");
    std::fs::read_to_string(data).ok()?.lines().next()?.trim().parse().ok()
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

fn secs(d: &[Duration]) -> Vec<f64> {
    d.iter().map(Duration::as_secs_f64).collect()
}

fn best(d: &[Duration]) -> f64 {
    d.iter().copied().min().unwrap_or_default().as_secs_f64()
}

/// Stage 1 and 2 on one database: `rounds` sweeps, each followed by the ceiling client.
async fn sweeps(
    label: &str,
    args: &FleetArgs,
    server: &Server,
    store: &berth_store::Store,
    urls: &[String],
    git_loop: Duration,
) -> Result<Value> {
    let pid = server.pid().context("server pid")?;
    let idle_rss = proc_status_bytes(pid, "VmRSS:");
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
    let mut berth = Vec::new();
    let mut ceiling = Vec::new();
    let mut cpu = Vec::new();
    let mut db_cpu = Vec::new();
    // The database's CPU is counted on PostgreSQL (a cluster of processes beside the server);
    // SQLite runs inside the server, whose CPU already holds it.
    let postmaster = if label == "sqlite" { None } else { postmaster_pid() };
    for round in 0..args.rounds {
        let mark = store.last_check_id().await?;
        let cpu_before = cpu_time(pid);
        let db_before = postmaster.and_then(cluster_cpu_time);
        let started = Instant::now();
        server.call(reqwest::Method::POST, "/api/v1/checks/schedule", Some(json!({}))).await?;
        let every = Duration::from_millis(50);
        let swept = sweep::wait_for_checks(store, mark, urls.len(), started, every, Duration::from_secs(600)).await?;
        if swept.failed > 0 || swept.repeated > 0 {
            bail!(
                "[{label}] sweep {round}: {} checks failed, {} repositories checked twice",
                swept.failed,
                swept.repeated
            );
        }
        berth.push(swept.took);
        let used = cpu_time(pid).zip(cpu_before).map_or(Duration::ZERO, |(a, b)| a.saturating_sub(b));
        cpu.push(used);
        let db_used = postmaster.and_then(cluster_cpu_time).zip(db_before).map(|(a, b)| a.saturating_sub(b));
        let per_check = |d: Duration| d.as_secs_f64() * 1000.0 / urls.len() as f64;
        let db_note = db_used
            .map_or(String::new(), |d| format!("; PostgreSQL {:.2}s, {:.2} ms a check", d.as_secs_f64(), per_check(d)));
        db_cpu.extend(db_used);
        ceiling.push(sweep::ceiling(urls, args.concurrency).await?);
        eprintln!(
            "[{label}] sweep {}: berth {:.2}s (CPU: the server {:.2}s, {:.2} ms a check{db_note}), ceiling client {:.2}s",
            round + 1,
            swept.took.as_secs_f64(),
            used.as_secs_f64(),
            per_check(used),
            ceiling[round].as_secs_f64()
        );
    }
    let hwm = proc_status_bytes(pid, "VmHWM:");
    let (b, c, g) = (best(&berth), best(&ceiling), git_loop.as_secs_f64());
    eprintln!(
        "[{label}] sweep of {} repositories (best of {}): berth {b:.2}s; ceiling (plain client, same requests, concurrency {}) {c:.2}s: berth/ceiling {:.2} (target <= 1.3); sequential git ls-remote loop {g:.2}s: {:.1}x berth (target >= 12)",
        urls.len(),
        args.rounds,
        args.concurrency,
        b / c,
        g / b
    );
    eprintln!(
        "[{label}] server memory: idle RSS {:.1} MiB, peak RSS during the sweeps {:.1} MiB",
        mib(idle_rss),
        mib(hwm)
    );
    Ok(json!({
        "sweep": {"repositories": urls.len(), "concurrency": args.concurrency, "berth_s": secs(&berth), "ceiling_s": secs(&ceiling), "server_cpu_s": secs(&cpu), "database_cpu_s": secs(&db_cpu),
                  "git_ls_remote_loop_s": g, "berth_over_ceiling": b / c, "ratio_loop_over_berth": g / b},
        "memory": {"idle_rss_bytes": idle_rss, "sweep_peak_rss_bytes": hwm},
    }))
}

async fn one_database(
    label: &str,
    args: &FleetArgs,
    git_base: &str,
    urls: &[String],
    git_loop: Duration,
) -> Result<Value> {
    let data = tempfile::tempdir()?;
    let database_url = if label == "sqlite" {
        format!("sqlite://{}", data.path().join("berth.db").display())
    } else {
        berth_testkit::pg::PgCluster::shared().create_database()
    };
    // A long interval: only the sweeps this benchmark asks for run. Local Git: no per-host
    // politeness needed beyond the concurrency limit.
    let c = args.concurrency;
    let checks = format!("interval_mins = 600\npoll_secs = 0.5\nconcurrency = {c}\nper_host = {c}\n");
    let server = Server::start(&args.berth_bin, data.path(), &database_url, "berth", &checks).await?;
    server.create_credential().await?;
    let mut report = json!({});
    let key = data.path().join("master.key");
    if args.runs("sweep") {
        let t = Instant::now();
        register_all(&server, urls).await?;
        eprintln!("[{label}] registered {} repositories in {:.1}s", urls.len(), t.elapsed().as_secs_f64());
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (store, _) = berth_store::Store::open(&database_url, &key).await?;
        let r = sweeps(label, args, &server, &store, urls, git_loop).await;
        store.close().await;
        let r = r?;
        report["sweep"] = r["sweep"].clone();
        report["memory"] = r["memory"].clone();
    }
    if args.runs("lists") {
        let swept = if args.runs("sweep") { urls.len() } else { 0 };
        let n = args.list_repos.max(swept);
        lists::seed(&database_url, &key, n, git_base).await?;
        report["list"] = lists::old_style(label, &server, args.wrk_seconds, data.path(), n).await?;
        let big = args.list_big.max(n);
        let t = Instant::now();
        lists::seed(&database_url, &key, big, git_base).await?;
        eprintln!("[{label}] seeded up to {big} repositories in {:.1}s", t.elapsed().as_secs_f64());
        report["paged"] = lists::paged(label, &server, args.wrk_seconds, data.path(), big).await?;
    }
    server.stop().await;
    Ok(report)
}

pub async fn run(args: &FleetArgs, git_base: &str, urls: &[String]) -> Result<Value> {
    let urls = &urls[..args.repos.min(urls.len())];
    let mut report = json!({});
    let git_loop = if args.runs("sweep") {
        let d = sweep::ls_remote_loop(urls).await?;
        eprintln!("sequential git ls-remote --heads loop over {} repositories: {:.2}s", urls.len(), d.as_secs_f64());
        d
    } else {
        Duration::ZERO
    };
    for label in &args.databases {
        if label != "sqlite" && label != "postgres" {
            bail!("unknown database {label:?}: sqlite or postgres");
        }
        report[label] = one_database(label, args, git_base, urls, git_loop).await?;
    }
    if args.runs("sweep") && report["sqlite"]["sweep"].is_object() && report["postgres"]["sweep"].is_object() {
        let b = |db: &str| {
            report[db]["sweep"]["berth_s"].as_array().and_then(|v| v.iter().filter_map(Value::as_f64).reduce(f64::min))
        };
        if let (Some(s), Some(p)) = (b("sqlite"), b("postgres")) {
            eprintln!("sweep PostgreSQL / SQLite: {:.2}", p / s);
        }
    }
    if args.runs("three") {
        let sample = urls.first().context("--fleet-repos must be at least 1: the canned host copies a real answer")?;
        report["three_instances"] = three::run(&args.berth_bin, sample, args.three_repos, args.concurrency).await?;
    }
    Ok(report)
}
