//! The repository list under `wrk` load: the API's pages (first, filtered, deep in the cursor
//! chain) and the web VC Repos page, with the rows seeded through the store.

use super::server::{wrk, wrk_line, Auth, Server};
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::path::Path;

/// The latency every list answer should stay under at the 99th percentile.
const P99_TARGET_MS: f64 = 50.0;

/// Adds rows until the store holds `total` repositories, pointing at paths that are never
/// checked (only the listing reads them), in batches of one transaction each.
pub async fn seed(database_url: &str, key: &Path, total: usize, base_url: &str) -> Result<()> {
    const BATCH: usize = 5_000;
    let (store, _) = berth_store::Store::open(database_url, key).await?;
    let cred = store.find_credential("bench").await?;
    let have =
        usize::try_from(store.count_repositories(&berth_store::RepositoryFilter::default()).await?.n).unwrap_or(0);
    let later = chrono::Utc::now() + chrono::Duration::days(30);
    for start in (have..total).step_by(BATCH) {
        let rows: Vec<berth_store::NewRepository> = (start..(start + BATCH).min(total))
            .map(|i| {
                let url = format!("{base_url}/git/seeded/r{i:06}.git");
                berth_store::NewRepository {
                    name: format!("seeded-{i:06}"),
                    vcs: "git".into(),
                    clone_url: url.clone(),
                    repo_key: format!("generic:{url}"),
                    provider: "generic".into(),
                    default_branch: "main".into(),
                    credential_id: Some(cred.id),
                    next_check_at: Some(later),
                }
            })
            .collect();
        store.insert_repositories(&rows).await?;
    }
    // As autovacuum would soon after such a load (PostgreSQL plans the search from statistics),
    // so the list is measured as it stays, not during that one pass over 100,000 new rows.
    store.vacuum_and_analyze().await?;
    store.close().await;
    Ok(())
}

/// The list at the old benchmark's size, measured as before: the default answer of
/// `GET /api/v1/repositories` (every repository before paging, the first page after) and
/// `/healthz` under the same load as the floor of the HTTP stack.
pub async fn old_style(label: &str, server: &Server, seconds: u64, dir: &Path, n: usize) -> Result<Value> {
    let token = Auth::Bearer(&server.token);
    let list = wrk(&server.base, "/api/v1/repositories", token, seconds, dir).await?;
    let health = wrk(&server.base, "/healthz", Auth::Bearer(&server.token), seconds, dir).await?;
    eprintln!(
        "[{label}] GET /api/v1/repositories (default answer) with {n} repositories under wrk (2 threads, 16 connections): {}; /healthz {}",
        wrk_line(&list),
        wrk_line(&health)
    );
    Ok(json!({"repositories": n, "repositories_endpoint": list, "healthz": health}))
}

/// Walks `next` from the first page of `limit` until about half of `total` rows are behind,
/// and returns that page's path.
async fn deep_path(server: &Server, limit: usize, total: i64) -> Result<Option<String>> {
    let mut path = format!("/api/v1/repositories?limit={limit}");
    let mut seen = 0i64;
    while seen < total / 2 {
        let page = server.call(reqwest::Method::GET, &path, None).await?;
        seen += page["items"].as_array().map_or(0, |a| a.len() as i64);
        let Some(next) = page["next"].as_str() else { return Ok(None) };
        let cursor: String = url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
        path = format!("/api/v1/repositories?limit={limit}&after={cursor}");
    }
    Ok(Some(path))
}

fn verdict(v: &Value) -> &'static str {
    match v["p99_ms"].as_f64() {
        Some(p) if p <= P99_TARGET_MS => "within",
        Some(_) => "OVER",
        // Requests timed out (see `wrk`): far over.
        None => "OVER (requests timed out)",
    }
}

/// The paged list at `n` repositories: a filtered page, the first page, a page deep in the
/// cursor chain and the web page, each under `wrk`.
pub async fn paged(label: &str, server: &Server, seconds: u64, dir: &Path, n: usize) -> Result<Value> {
    let first_path = "/api/v1/repositories?limit=100";
    let first_answer = server.call(reqwest::Method::GET, first_path, None).await?;
    if first_answer.is_array() {
        eprintln!("[{label}] this build's repository list is not paged ({{items, next, total}}): the paged measurements are skipped");
        return Ok(json!({"skipped": "the list API of this build is not paged"}));
    }
    let total = first_answer["total"].as_i64().context("no total in the list answer")?;
    if total != n as i64 {
        bail!("[{label}] the list says total {total}, expected {n}");
    }
    let deep = deep_path(server, 100, total).await?.context("the cursor chain ended before its middle")?;
    let session = server.web_session().await?;
    let web_first = "/repositories";
    let page_bytes = reqwest::Client::new()
        .get(format!("{}{web_first}", server.base))
        .header(reqwest::header::COOKIE, format!("berth_session={session}"))
        .send()
        .await?
        .error_for_status()?
        .bytes()
        .await?
        .len();
    let bearer = Auth::Bearer(&server.token);
    let first = wrk(&server.base, first_path, bearer, seconds, dir).await?;
    let deep_page = wrk(&server.base, &deep, Auth::Bearer(&server.token), seconds, dir).await?;
    let by_status =
        wrk(&server.base, "/api/v1/repositories?status=fail&limit=100", Auth::Bearer(&server.token), seconds, dir)
            .await?;
    let by_text =
        wrk(&server.base, "/api/v1/repositories?q=ded-0421&limit=100", Auth::Bearer(&server.token), seconds, dir)
            .await?;
    let broad_text =
        wrk(&server.base, "/api/v1/repositories?q=seeded&limit=100", Auth::Bearer(&server.token), seconds, dir).await?;
    let web = wrk(&server.base, web_first, Auth::Cookie(&session), seconds, dir).await?;
    let web_search = wrk(&server.base, "/repositories?q=ded-0421", Auth::Cookie(&session), seconds, dir).await?;
    let ratio = deep_page["p99_ms"].as_f64().unwrap_or(f64::NAN) / first["p99_ms"].as_f64().unwrap_or(f64::NAN);
    for (what, v) in [
        ("first page of 100", &first),
        ("page of 100 in the middle of the cursor chain", &deep_page),
        ("?status=fail", &by_status),
        ("?q=ded-0421 (100 matches)", &by_text),
        ("?q=seeded (every repository matches)", &broad_text),
        ("web VC Repos page", &web),
        ("web VC Repos page, search ded-0421", &web_search),
    ] {
        eprintln!(
            "[{label}] {n} repositories, {what}: {} ({} the {P99_TARGET_MS} ms p99 target)",
            wrk_line(v),
            verdict(v)
        );
    }
    eprintln!("[{label}] deep page / first page p99: {ratio:.2} (target <= 1.2); the web page is {page_bytes} bytes (target < 100 KB)");
    Ok(json!({
        "repositories": n, "first_page": first, "deep_page": deep_page, "status_filter": by_status,
        "text_filter": by_text, "broad_text_filter": broad_text, "web_page": web, "web_search": web_search, "web_page_bytes": page_bytes, "deep_over_first_p99": ratio,
    }))
}
