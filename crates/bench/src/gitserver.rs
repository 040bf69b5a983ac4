//! The Git servers run in a child process (this binary re-executed with `--serve <dir>`), so
//! their allocations, and `git http-backend`'s, never reach the parent's counting allocator.

use anyhow::{bail, Context, Result};
use std::io::{Read, Write};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

/// The repository with many refs, under the served root.
pub const MANY: &str = "many.git";
/// Branches of every small repository.
pub const SMALL_BRANCHES: &[&str] = &["main", "develop", "feature/login"];

pub fn small(i: usize) -> String {
    format!("small/repo-{i:03}.git")
}

/// What the child needs to build.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    pub branches: usize,
    pub tags: usize,
    pub repos: usize,
}

/// The child: builds the repositories in `dir`, serves them with a protocol-v2 and a forced-v0
/// [`berth_testkit::GitServer`] (anonymous), prints both base URLs, one per line, and serves until
/// its stdin closes (the parent ended or dropped it).
pub fn serve(dir: &Path, sizes: Sizes) -> Result<()> {
    build_repos(dir, sizes);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async {
        let opts = |protocol_v2| berth_testkit::GitServerOptions { protocol_v2, ..Default::default() };
        let v2 = berth_testkit::GitServer::start(dir, opts(true)).await;
        let v0 = berth_testkit::GitServer::start(dir, opts(false)).await;
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}\n{}", v2.base_url(), v0.base_url())?;
        out.flush()?;
        drop(out);
        tokio::task::spawn_blocking(|| std::io::stdin().read_to_end(&mut Vec::new())).await??;
        Ok(())
    })
}

/// `git` runs one process per step, so the 200 small repositories are built on a few threads.
fn build_repos(dir: &Path, sizes: Sizes) {
    const THREADS: usize = 4;
    std::thread::scope(|s| {
        s.spawn(|| berth_testkit::many_refs(dir, MANY, sizes.branches, sizes.tags));
        for t in 0..THREADS {
            s.spawn(move || {
                for i in (t..sizes.repos).step_by(THREADS) {
                    berth_testkit::bare_repo(dir, &small(i), "main", SMALL_BRANCHES);
                }
            });
        }
    });
}

/// The parent's handle on the child.
pub struct GitChild {
    child: tokio::process::Child,
    /// Base URLs (`http://127.0.0.1:PORT`) of the v2 and the forced-v0 server.
    pub v2: String,
    pub v0: String,
}

impl GitChild {
    pub async fn spawn(dir: &Path, sizes: Sizes) -> Result<GitChild> {
        let exe = std::env::current_exe().context("cannot find this program to re-execute it")?;
        let mut child = tokio::process::Command::new(exe)
            .arg("--serve")
            .arg(dir)
            .args(["--branches", &sizes.branches.to_string(), "--tags", &sizes.tags.to_string()])
            .args(["--repos", &sizes.repos.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("cannot start the Git server process")?;
        let stdout = child.stdout.take().context("no stdout from the Git server process")?;
        let mut lines = BufReader::new(stdout).lines();
        let read = async {
            let v2 = lines.next_line().await?;
            let v0 = lines.next_line().await?;
            Ok::<_, std::io::Error>(v2.zip(v0))
        };
        match tokio::time::timeout(Duration::from_secs(600), read).await {
            Ok(Ok(Some((v2, v0)))) => Ok(GitChild { child, v2, v0 }),
            Ok(Ok(None)) => bail!("the Git server process ended before printing its URLs"),
            Ok(Err(e)) => bail!("cannot read the Git server process's URLs: {e}"),
            Err(_) => bail!("the Git server process printed no URLs within 10 minutes"),
        }
    }

    /// Closes the child's stdin, which ends it, and waits for it.
    pub async fn stop(mut self) -> Result<()> {
        drop(self.child.stdin.take());
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await??;
        if !status.success() {
            bail!("the Git server process ended with {status}");
        }
        Ok(())
    }
}
