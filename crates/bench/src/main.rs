//! `berth-bench`: Berth's branch refresh against `git ls-remote` on the same real
//! `git http-backend`, through the Git client and through the REST API, and over SSH against
//! `git ls-remote` through OpenSSH on the same `sshd`; the heap peak of one refresh; and many
//! concurrent refreshes through one client. Run it with `scripts/bench`.
//!
//! Exits non-zero when a correctness check fails (wrong branch count, a failed refresh), never
//! because something was slow: a benchmark reports times, it does not assert them.

mod alloc;
mod berth;
mod fleet;
mod gitserver;
mod ssh;

use anyhow::{bail, Context, Result};
use berth_core::NetworkPolicy;
use berth_git::{GitClient, GitClientConfig};
use clap::Parser;
use gitserver::{GitChild, Sizes};
use serde_json::{json, Value};
use std::future::Future;
use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use url::Url;

#[global_allocator]
static ALLOC: alloc::Counting = alloc::Counting::new();

const MIB: f64 = 1024.0 * 1024.0;
const HEAP_TARGET_MIB: f64 = 64.0;

#[derive(Parser, Debug)]
#[command(about = "Benchmarks Berth's branch refresh against git ls-remote")]
struct Args {
    /// Timed rounds of each refresh comparison (after one untimed warm-up round).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    rounds: u32,
    /// Print the results as JSON on stdout (the human-readable lines go to stderr).
    #[arg(long)]
    json: bool,
    /// Branches of the big repository.
    #[arg(long, default_value_t = 50_000)]
    branches: usize,
    /// Tags of the big repository.
    #[arg(long, default_value_t = 200_000)]
    tags: usize,
    /// Small repositories refreshed concurrently.
    #[arg(long, default_value_t = 200)]
    repos: usize,
    /// Run the fleet benchmark instead (see fleet.rs): a background sweep of `--fleet-repos`
    /// repositories against a `git ls-remote` loop, server memory, and the repository list
    /// under wrk load on SQLite and PostgreSQL.
    #[arg(long)]
    fleet: bool,
    #[arg(long, default_value_t = 1000)]
    fleet_repos: usize,
    /// Repositories in the database while the list's default answer is measured (as earlier
    /// runs did).
    #[arg(long, default_value_t = 10_000)]
    list_repos: usize,
    /// Repositories in the database while the paged list and the web page are measured.
    #[arg(long, default_value_t = 100_000)]
    list_big: usize,
    /// Repositories the three instances check in the fleet's last stage.
    #[arg(long, default_value_t = 100_000)]
    fleet_three: usize,
    /// The sweep's concurrency (`[checks] concurrency` and `per_host`), and the ceiling
    /// client's.
    #[arg(long, default_value_t = 64)]
    fleet_concurrency: usize,
    /// Sweeps timed per database (the best counts).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..))]
    fleet_rounds: u32,
    /// Fleet stages to run: sweep, lists, three (comma-separated).
    #[arg(long, default_value = "sweep,lists,three", value_delimiter = ',')]
    fleet_stages: Vec<String>,
    /// Databases the sweep and list stages run on: sqlite, postgres (comma-separated).
    #[arg(long, default_value = "sqlite,postgres", value_delimiter = ',')]
    fleet_dbs: Vec<String>,
    #[arg(long, default_value_t = 10)]
    wrk_seconds: u64,
    /// The `berth` binary to run as the server (default: beside this program).
    #[arg(long)]
    berth_bin: Option<PathBuf>,
    /// Internal: serve the Git repositories built in this directory (see gitserver.rs).
    #[arg(long, hide = true)]
    serve: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let sizes = Sizes { branches: args.branches, tags: args.tags, repos: args.repos };
    let result = match &args.serve {
        Some(dir) => gitserver::serve(dir, sizes).map(|()| true),
        None => tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(anyhow::Error::from).and_then(
            |rt| {
                rt.block_on(async {
                    if args.fleet {
                        fleet_bench(&args).await
                    } else {
                        bench(&args, sizes).await
                    }
                })
            },
        ),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("berth-bench: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Wall times of one operation over the timed rounds.
#[derive(Debug, Default)]
struct Times(Vec<Duration>);

impl Times {
    fn min(&self) -> Duration {
        self.0.iter().copied().min().unwrap_or_default()
    }

    fn median(&self) -> Duration {
        let mut v = self.0.clone();
        v.sort_unstable();
        match v.len() {
            0 => Duration::ZERO,
            n if n % 2 == 1 => v[n / 2],
            n => (v[n / 2 - 1] + v[n / 2]) / 2,
        }
    }

    fn json(&self) -> Value {
        json!({"median_s": self.median().as_secs_f64(), "min_s": self.min().as_secs_f64(),
               "samples_s": self.0.iter().map(Duration::as_secs_f64).collect::<Vec<_>>()})
    }
}

/// One "Berth versus git ls-remote" comparison.
struct Comparison {
    label: String,
    berth: Times,
    git: Times,
}

impl Comparison {
    fn ratio(&self) -> f64 {
        self.berth.median().as_secs_f64() / self.git.median().as_secs_f64()
    }

    fn line(&self) -> String {
        format!(
            "{}: berth median {:.3}s (min {:.3}s), git ls-remote median {:.3}s (min {:.3}s), ratio {:.2}",
            self.label,
            self.berth.median().as_secs_f64(),
            self.berth.min().as_secs_f64(),
            self.git.median().as_secs_f64(),
            self.git.min().as_secs_f64(),
            self.ratio()
        )
    }

    fn json(&self) -> Value {
        json!({"label": self.label, "berth": self.berth.json(), "git_ls_remote": self.git.json(), "ratio": self.ratio()})
    }
}

/// Human-readable lines go to stdout, or to stderr when stdout carries the JSON.
struct Out {
    json: bool,
}

impl Out {
    fn line(&self, s: &str) {
        if self.json {
            eprintln!("{s}");
        } else {
            println!("{s}");
        }
    }
}

/// Every failed correctness check, reported at the end.
#[derive(Default)]
struct Failures(Vec<String>);

impl Failures {
    fn count(&mut self, what: &str, got: usize, want: usize) {
        if got != want {
            self.0.push(format!("{what} returned {got} branches, expected {want}"));
        }
    }
}

async fn fleet_bench(args: &Args) -> Result<bool> {
    let berth_bin = match &args.berth_bin {
        Some(p) => p.clone(),
        None => std::env::current_exe()?.with_file_name("berth"),
    };
    if !berth_bin.exists() {
        bail!(
            "{} is missing: build it with `cargo build --release -p berth` (scripts/bench does)",
            berth_bin.display()
        );
    }
    let sizes = Sizes { branches: 10, tags: 0, repos: args.fleet_repos };
    let repos = tempfile::tempdir()?;
    eprintln!("building {} repositories and starting the Git server in a child process…", args.fleet_repos);
    let servers = GitChild::spawn(repos.path(), sizes).await?;
    let urls: Vec<String> =
        (0..args.fleet_repos).map(|i| format!("{}/git/{}", servers.v2, gitserver::small(i))).collect();
    let fa = fleet::FleetArgs {
        repos: args.fleet_repos,
        list_repos: args.list_repos,
        list_big: args.list_big,
        three_repos: args.fleet_three,
        concurrency: args.fleet_concurrency.max(1),
        rounds: args.fleet_rounds as usize,
        stages: args.fleet_stages.clone(),
        databases: args.fleet_dbs.clone(),
        wrk_seconds: args.wrk_seconds,
        berth_bin,
    };
    let report = fleet::run(&fa, &servers.v2, &urls).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    servers.stop().await?;
    Ok(true)
}

async fn bench(args: &Args, sizes: Sizes) -> Result<bool> {
    let out = Out { json: args.json };
    let mut failures = Failures::default();
    let repos = tempfile::tempdir()?;
    out.line(&format!(
        "building repositories ({} branches + {} tags; {} small) and starting the Git servers in a child process…",
        sizes.branches, sizes.tags, sizes.repos
    ));
    let servers = GitChild::spawn(repos.path(), sizes).await?;
    let many_v2 = format!("{}/git/{}", servers.v2, gitserver::MANY);
    let many_v0 = format!("{}/git/{}", servers.v0, gitserver::MANY);
    let client = GitClient::new(GitClientConfig {
        policy: NetworkPolicy::parse_allow_list("127.0.0.0/8")?,
        ..GitClientConfig::default()
    })?;
    let shape = format!("{} branches/{} tags", sizes.branches, sizes.tags);

    // (3) first, while this process's heap holds little but the client.
    let mut heap = Vec::new();
    for (proto, url) in [("v2", &many_v2), ("v0", &many_v0)] {
        let url = Url::parse(url)?;
        let baseline = ALLOC.reset_peak();
        let refs = client.ls_refs(&url, None).await?;
        let peak = ALLOC.peak();
        failures.count(&format!("ls_refs {proto} (memory run)"), refs.branches.len(), sizes.branches);
        drop(refs);
        let line = format!(
            "ls_refs {proto} {shape}: peak heap {:.1} MiB (baseline before the call {:.1} MiB), target < {HEAP_TARGET_MIB:.0} MiB",
            peak as f64 / MIB,
            baseline as f64 / MIB
        );
        out.line(&line);
        heap.push((proto, peak, baseline));
    }

    // (1) the Git client against git ls-remote, protocol v2 and forced v0.
    let mut comparisons = Vec::new();
    for (proto, url) in [("v2", &many_v2), ("v0", &many_v0)] {
        let parsed = Url::parse(url)?;
        let berth = || async {
            let started = Instant::now();
            let refs = client.ls_refs(&parsed, None).await?;
            Ok((started.elapsed(), refs.branches.len()))
        };
        let git = || git_ls_remote(url);
        let c =
            compare(format!("refresh {proto} {shape}"), args.rounds, sizes.branches, &mut failures, berth, git).await?;
        out.line(&c.line());
        comparisons.push(c);
    }

    // (2) Refresh through the REST API of a real Berth server in this process.
    let server = berth::Berth::start().await?;
    let rest = compare(
        format!("refresh REST API v2 {shape}"),
        args.rounds,
        sizes.branches,
        &mut failures,
        || server.refresh(&many_v2),
        || git_ls_remote(&many_v2),
    )
    .await;
    server.stop().await;
    let rest = rest?;
    out.line(&rest.line());
    comparisons.push(rest);

    // (5) The same repository over SSH, against git ls-remote through OpenSSH.
    let many_path = repos.path().join(gitserver::MANY);
    for c in ssh::compare_over_ssh(&client, &many_path, args.rounds, sizes.branches, &shape, &mut failures).await? {
        out.line(&c.line());
        comparisons.push(c);
    }

    // (4) many small repositories at once through one client.
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for i in 0..sizes.repos {
        let (client, url) = (client.clone(), Url::parse(&format!("{}/git/{}", servers.v2, gitserver::small(i)))?);
        set.spawn(async move { client.ls_refs(&url, None).await });
    }
    let (mut ok, mut errors) = (0usize, Vec::new());
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(Ok(refs)) if refs.branches.len() == gitserver::SMALL_BRANCHES.len() => ok += 1,
            Ok(Ok(refs)) => {
                errors.push(format!("{} branches instead of {}", refs.branches.len(), gitserver::SMALL_BRANCHES.len()))
            }
            Ok(Err(e)) => errors.push(format!("{}: {e}", e.code.as_str())),
            Err(e) => errors.push(format!("task failed: {e}")),
        }
    }
    let concurrent_wall = started.elapsed();
    let concurrent = format!(
        "{} concurrent refreshes of {} small repositories (one GitClient): {ok} succeeded, {} failed, wall {:.3}s",
        sizes.repos,
        sizes.repos,
        errors.len(),
        concurrent_wall.as_secs_f64()
    );
    out.line(&concurrent);
    if !errors.is_empty() {
        errors.sort();
        errors.dedup();
        failures.0.push(format!("concurrent refreshes failed: {}", errors.join("; ")));
    }

    servers.stop().await?;
    let hwm = vm_hwm_bytes();

    out.line("");
    out.line("== summary ==");
    for c in &comparisons {
        let verdict = if c.ratio() <= 1.0 { "meets" } else { "misses" };
        out.line(&format!("{} ({verdict} target ratio <= 1.0)", c.line()));
    }
    for (proto, peak, _) in &heap {
        let verdict = if (*peak as f64 / MIB) < HEAP_TARGET_MIB { "meets" } else { "misses" };
        out.line(&format!(
            "peak heap of one ls_refs {proto} {shape}: {:.1} MiB ({verdict} target < {HEAP_TARGET_MIB:.0} MiB)",
            *peak as f64 / MIB
        ));
    }
    out.line(&format!(
        "process VmHWM at the end: {}",
        hwm.map_or("unknown".to_owned(), |b| format!("{:.1} MiB", b as f64 / MIB))
    ));
    out.line(&concurrent);
    if failures.0.is_empty() {
        out.line("correctness: all checks passed");
    } else {
        for f in &failures.0 {
            out.line(&format!("correctness FAILED: {f}"));
        }
    }

    if args.json {
        let report = json!({
            "rounds": args.rounds,
            "branches": sizes.branches,
            "tags": sizes.tags,
            "refresh": comparisons.iter().map(Comparison::json).collect::<Vec<_>>(),
            "memory": {
                "ls_refs": heap.iter().map(|(p, peak, base)| json!({"protocol": p, "peak_heap_bytes": peak, "baseline_heap_bytes": base})).collect::<Vec<_>>(),
                "target_peak_heap_bytes": HEAP_TARGET_MIB * MIB,
                "vm_hwm_bytes": hwm,
            },
            "concurrent": {"repositories": sizes.repos, "succeeded": ok, "failed": sizes.repos - ok, "wall_s": concurrent_wall.as_secs_f64()},
            "failures": failures.0,
            "ok": failures.0.is_empty(),
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(failures.0.is_empty())
}

/// One untimed warm-up, then `rounds` timed rounds alternating which side goes first, so neither
/// always runs on a cooler or warmer machine. Both sides must list `want` branches.
async fn compare<F, Fut, G, GFut>(
    label: String,
    rounds: u32,
    want: usize,
    failures: &mut Failures,
    berth: F,
    git: G,
) -> Result<Comparison>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<(Duration, usize)>>,
    G: Fn() -> GFut,
    GFut: Future<Output = Result<(Duration, usize)>>,
{
    let mut c = Comparison { label, berth: Times::default(), git: Times::default() };
    for round in 0..=rounds {
        let (b, g) = if round % 2 == 0 {
            let b = berth().await?;
            (b, git().await?)
        } else {
            let g = git().await?;
            (berth().await?, g)
        };
        failures.count(&format!("{} (berth, round {round})", c.label), b.1, want);
        failures.count(&format!("{} (git ls-remote, round {round})", c.label), g.1, want);
        if round > 0 {
            c.berth.0.push(b.0);
            c.git.0.push(g.0);
        }
    }
    Ok(c)
}

/// `git ls-remote --heads <url>` as a user would run it (process start included), its stdout
/// drained from a pipe and its lines counted. Isolated from the machine's git configuration.
async fn git_ls_remote(url: &str) -> Result<(Duration, usize)> {
    git_ls_remote_with(url, &[]).await
}

/// [`git_ls_remote`] with more environment (`GIT_SSH_COMMAND` for SSH).
async fn git_ls_remote_with(url: &str, env: &[(String, String)]) -> Result<(Duration, usize)> {
    let started = Instant::now();
    let mut cmd = tokio::process::Command::from(berth_testkit::git_command());
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    cmd.args(["ls-remote", "--heads", url])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().context("cannot run git (is it installed?)")?;
    let mut stdout = child.stdout.take().context("no stdout from git")?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut lines = 0;
    loop {
        let n = stdout.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        lines += buf[..n].iter().filter(|&&b| b == b'\n').count();
    }
    let done = child.wait_with_output().await?;
    let took = started.elapsed();
    if !done.status.success() {
        bail!("git ls-remote {url} failed ({}): {}", done.status, String::from_utf8_lossy(&done.stderr).trim());
    }
    Ok((took, lines))
}

/// Peak resident set size of this process, from /proc (Linux only).
fn vm_hwm_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb =
        status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?.trim().strip_suffix("kB")?.trim().parse::<u64>().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_min() {
        let ms = |v: &[u64]| Times(v.iter().map(|&m| Duration::from_millis(m)).collect());
        assert_eq!(ms(&[30, 10, 20]).median(), Duration::from_millis(20));
        assert_eq!(ms(&[40, 10, 20, 30]).median(), Duration::from_millis(25));
        assert_eq!(ms(&[40, 10, 20, 30]).min(), Duration::from_millis(10));
        assert_eq!(ms(&[]).median(), Duration::ZERO);
    }

    #[test]
    fn counting_allocator_sees_a_big_allocation() {
        ALLOC.reset_peak();
        // black_box: the optimiser may otherwise remove an allocation nobody reads.
        let v = std::hint::black_box(vec![1u8; 8 * 1024 * 1024]);
        // Not `before + len`: the other tests run on other threads and free memory meanwhile,
        // so the count may drop between the reset and this allocation.
        assert!(ALLOC.peak() >= v.len(), "the peak holds the 8 MiB vector");
    }
}
