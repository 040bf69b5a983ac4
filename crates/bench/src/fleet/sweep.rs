//! The sweep and its two peers over the same URLs: the ceiling (a plain concurrent HTTP client
//! making exactly the requests one check makes) and a sequential `git ls-remote` loop.

use anyhow::{bail, Context, Result};
use berth_store::Store;
use bytes::Bytes;
use futures_util::stream::{self, StreamExt, TryStreamExt};
use std::collections::HashMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// The Basic credential the benchmark's repositories use (the local Git servers ignore it).
const USER: &str = "bench";
const PASSWORD: &str = "bench-password";

/// What the sweep found once every repository had a new check.
pub struct Swept {
    pub took: Duration,
    /// Repositories checked more than once since the mark.
    pub repeated: usize,
    pub failed: i64,
}

/// Waits until each of `expected` repositories has a check recorded after check id `mark`,
/// reading the history straight from the database every `every` (so the server answers no
/// polling requests), and times it from `started`. Errs when `limit` passes first.
///
/// The poll counts the new checks only (a range of the primary key); the per-repository count
/// runs once there are enough. Grouping the whole new history every 50 ms cost the database
/// about as much as a tenth of the sweep's own statements, on the cores the sweep needs.
pub async fn wait_for_checks(
    store: &Store,
    mark: i64,
    expected: usize,
    started: Instant,
    every: Duration,
    limit: Duration,
) -> Result<Swept> {
    let expected_checks = i64::try_from(expected).unwrap_or(i64::MAX);
    loop {
        let recorded = store.checks_since(mark).await?;
        if recorded >= expected_checks {
            let took = started.elapsed();
            let counts = store.check_counts_since(mark).await?;
            // As many checks as repositories, but some repository may have two and another none
            // yet: then the sweep goes on (and a repeat is reported when it ends).
            if counts.len() >= expected {
                let repeated = counts.iter().filter(|c| c.checks > 1).count();
                let failed = counts.iter().map(|c| c.failed).sum();
                return Ok(Swept { took, repeated, failed });
            }
        }
        if started.elapsed() > limit {
            bail!("the sweep did not finish within {} s ({recorded} checks of {expected})", limit.as_secs());
        }
        tokio::time::sleep(every).await;
    }
}

/// How many checks each repository has after `mark`.
pub async fn counts(store: &Store, mark: i64) -> Result<HashMap<i64, i64>> {
    Ok(store.check_counts_since(mark).await?.into_iter().map(|c| (c.repository_id, c.checks)).collect())
}

/// The `ls-refs` request Berth's Git client sends to a server offering `unborn` (see
/// `berth_git::GitClient::ls_refs_v2`).
fn ls_refs_body(agent: bool, unborn: bool) -> Vec<u8> {
    let mut body = Vec::new();
    berth_git::pktline::encode(&mut body, "command=ls-refs\n");
    if agent {
        berth_git::pktline::encode(&mut body, "agent=git/berth-bench\n");
    }
    body.extend_from_slice(b"0001");
    berth_git::pktline::encode(&mut body, "symrefs\n");
    if unborn {
        berth_git::pktline::encode(&mut body, "unborn\n");
    }
    berth_git::pktline::encode(&mut body, "ref-prefix HEAD\n");
    berth_git::pktline::encode(&mut body, "ref-prefix refs/heads/\n");
    body.extend_from_slice(b"0000");
    body
}

/// The two answers of one check's Git exchange, as the server sent them.
pub struct Exchange {
    pub discovery: Bytes,
    pub ls_refs: Bytes,
}

/// What one check asks of the Git server: a TCP connection opened and closed (the connect
/// step), the v2 discovery and the `ls-refs` command, with the same headers and credential.
pub async fn one_check(http: &reqwest::Client, repo_url: &str) -> Result<Exchange> {
    let url = url::Url::parse(repo_url)?;
    let host = url.host_str().context("no host")?;
    let port = url.port_or_known_default().context("no port")?;
    drop(tokio::net::TcpStream::connect((host, port)).await?);
    let discovery = http
        .get(format!("{repo_url}/info/refs?service=git-upload-pack"))
        .header("Git-Protocol", "version=2")
        .header(reqwest::header::ACCEPT, "*/*")
        .basic_auth(USER, Some(PASSWORD))
        .send()
        .await?
        .error_for_status()?
        .bytes()
        .await?;
    let text = String::from_utf8_lossy(&discovery);
    let body = ls_refs_body(text.contains("agent="), text.contains("ls-refs=unborn"));
    let ls_refs = http
        .post(format!("{repo_url}/git-upload-pack"))
        .header("Git-Protocol", "version=2")
        .header(reqwest::header::CONTENT_TYPE, "application/x-git-upload-pack-request")
        .header(reqwest::header::ACCEPT, "application/x-git-upload-pack-result")
        .basic_auth(USER, Some(PASSWORD))
        .body(body)
        .send()
        .await?
        .error_for_status()?
        .bytes()
        .await?;
    if !ls_refs.windows(b"refs/heads/".len()).any(|w| w == b"refs/heads/") {
        bail!("{repo_url}: the ls-refs answer lists no branch");
    }
    Ok(Exchange { discovery, ls_refs })
}

/// The ceiling: every check's requests from one plain client (one connection pool, as Berth
/// has) with `concurrency` in flight, as fast as the server answers.
pub async fn ceiling(urls: &[String], concurrency: usize) -> Result<Duration> {
    let http = reqwest::Client::builder().pool_max_idle_per_host(concurrency).build()?;
    let started = Instant::now();
    stream::iter(urls)
        .map(|u| one_check(&http, u))
        .buffer_unordered(concurrency)
        .try_for_each(|_| async { Ok(()) })
        .await?;
    Ok(started.elapsed())
}

pub async fn ls_remote_loop(urls: &[String]) -> Result<Duration> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ls_refs_request_is_the_one_berth_sends() {
        let body = String::from_utf8(ls_refs_body(true, true)).unwrap_or_default();
        assert!(body.starts_with("0014command=ls-refs\n"), "{body}");
        assert!(body.contains("0001000csymrefs\n000bunborn\n"), "{body}");
        assert!(body.ends_with("001bref-prefix refs/heads/\n0000"), "{body}");
        assert!(!String::from_utf8(ls_refs_body(false, false)).unwrap_or_default().contains("unborn"));
    }
}
