//! A database outage is an outage, not a hang (issue 16 §3): a `berth serve` process on the
//! test's own PostgreSQL cluster, which the test stops in the middle of a background sweep and
//! starts again. While it is away every request is answered 503 `database_unavailable` with a
//! `Retry-After` (a page on the web), `/readyz` says so, and the log says it once; nothing
//! acknowledged is lost and nothing refused is half-written; once it is back the checks that
//! ran meanwhile run again at once (well before their leases expire), none failed by the
//! outage. On SQLite, a database file locked by another writer answers the same way.

use crate::harness::{self, Api, INSTANCES_ADMIN_PASSWORD as PASSWORD, INSTANCES_TOKEN as TOKEN};
use crate::proxy::{FaultyProxy, Mode};
use berth_proto::StoredCheck;
use berth_testkit::pg::PgCluster;
use reqwest::StatusCode;
use std::time::Duration;

const REPOS: usize = 16;

/// A bound on one request, so a hang fails the test instead of stalling it (not a speed
/// target: the server's own limit on waiting for the database is 5 seconds).
const HANG_GUARD: Duration = Duration::from_secs(15);

struct Server {
    base: String,
    log: std::path::PathBuf,
    _child: tokio::process::Child,
}

fn spawn(db: &str, dir: &std::path::Path, config: &str) -> Server {
    let port = harness::free_port();
    let config_path = dir.join("berth.toml");
    std::fs::write(&config_path, config).unwrap();
    let log = dir.join("serve.log");
    let child = harness::serve_command(port, db, dir, &log)
        .env("BERTH_ADMIN_PASSWORD", PASSWORD)
        .env("BERTH_CONFIG", &config_path)
        .env("BERTH_INSTANCE_ID", "solo")
        .spawn()
        .unwrap();
    Server { base: format!("http://127.0.0.1:{port}"), log, _child: child }
}

impl Server {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// A raw request within [`HANG_GUARD`]: status, `Retry-After`, body.
async fn raw(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    token: Option<&str>,
    json: Option<serde_json::Value>,
) -> (StatusCode, Option<String>, String) {
    let mut req = http.request(method, url).timeout(HANG_GUARD);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(j) = json {
        req = req.json(&j);
    }
    let resp = req.send().await.unwrap_or_else(|e| panic!("{url} did not answer (a hang?): {e}"));
    let retry = resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
    (resp.status(), retry, resp.text().await.unwrap_or_default())
}

fn manual_checks(h: &[StoredCheck]) -> Vec<&StoredCheck> {
    h.iter().filter(|c| c.reason == "manual").collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_outage_is_answered_at_once_and_loses_nothing() {
    harness::init();
    let (_repos, git) = harness::git_server_with_repos("o", REPOS, &["main", "develop"], TOKEN).await;
    let proxy = FaultyProxy::start(&git.base_url()).await;
    let cluster = PgCluster::private();
    let db = cluster.create_database();
    let dir = tempfile::tempdir().unwrap();
    // Leases of a minute: checks cut off by the outage must run again well before they expire.
    let server = spawn(
        &db,
        dir.path(),
        "[checks]\ninterval_mins = 60\njitter_percent = 0\npoll_secs = 0.2\nlease_secs = 60\nconcurrency = 4\n\n\
         [git]\nrequest_timeout_secs = 10\n",
    );
    assert!(harness::serve_ready(&server.base).await, "not ready: {}", server.log());
    let api = Api::login(&server.base, "admin", PASSWORD).await;
    let cred = api.create_credential(&harness::bitbucket_api_token("ci", TOKEN)).await.unwrap();
    let mut ids = Vec::new();
    for i in 0..REPOS {
        let r = harness::new_repository(&format!("o{i}"), &proxy.url(&format!("git/team/o{i}.git")), "ci");
        ids.push(api.create_repository(&r).await.unwrap().id);
    }

    // A sweep whose checks take a second each (4 at a time), and the database stops in its
    // middle: some checks have run and been recorded, some run while it is away.
    proxy.set(Mode::Slow);
    api.schedule_all_checks().await.unwrap();
    harness::eventually("a first check of the sweep is recorded", || async {
        let mut done = 0;
        for id in &ids {
            done += manual_checks(&api.check_history(*id, 10).await.unwrap()).len();
        }
        (done > 0).then_some(())
    })
    .await;
    cluster.stop_server();

    // Away: the API, the probe and the web answer 503 at once, with what to do.
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let list = format!("{}/api/v1/repositories", server.base);
    let token = Some(api.token());
    for _ in 0..3 {
        let (status, retry, body) = raw(&http, reqwest::Method::GET, &list, token, None).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert!(body.contains("\"database_unavailable\""), "{body}");
        assert_eq!(retry.as_deref(), Some("5"));
    }
    let during = serde_json::json!({"name": "during-outage", "vcs": "git",
        "clone_url": proxy.url("git/team/o0.git"), "credential": "ci"});
    let (status, _, body) = raw(&http, reqwest::Method::POST, &list, token, Some(during)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "a write that cannot be made is refused: {body}");
    // A credential replacement refused the same way leaves the stored token as it was.
    let replace = serde_json::json!({"secret": harness::OUTAGE_UNSTORED_TOKEN});
    let cred_url = format!("{}/api/v1/credentials/{}", server.base, cred.id);
    let (status, _, body) = raw(&http, reqwest::Method::PATCH, &cred_url, token, Some(replace)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let (status, _, _) = raw(&http, reqwest::Method::GET, &format!("{}/readyz", server.base), None, None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let (status, _, _) = raw(&http, reqwest::Method::GET, &format!("{}/healthz", server.base), None, None).await;
    assert_eq!(status, StatusCode::OK, "the process itself is alive");
    let (status, retry, page) = raw(&http, reqwest::Method::GET, &format!("{}/login", server.base), None, None).await;
    assert_eq!((status, retry.as_deref()), (StatusCode::SERVICE_UNAVAILABLE, Some("5")));
    assert!(page.contains("Database unavailable") && page.contains("database_unavailable"), "{page}");
    // The slow checks finish meanwhile; their results cannot be written.
    tokio::time::sleep(Duration::from_secs(3)).await;

    // Back: the server serves again by itself, and every repository's sweep check is
    // recorded (those cut off run again at once, not after their one-minute lease), none failed.
    proxy.set(Mode::Pass);
    cluster.start_server();
    assert!(harness::serve_ready(&server.base).await, "not ready after the outage: {}", server.log());
    let checks = harness::eventually("every repository's sweep check is recorded", || async {
        let mut all = Vec::new();
        for id in &ids {
            let h = api.check_history(*id, 10).await.ok()?;
            let manual: Vec<StoredCheck> = manual_checks(&h).into_iter().cloned().collect();
            if manual.is_empty() {
                return None;
            }
            all.extend(manual);
        }
        Some(all)
    })
    .await;
    for c in &checks {
        assert_ne!(c.status, "fail", "no check failed because of the outage: {c:?}");
    }
    // The token refused during the outage was not stored: a check now still signs in with
    // the one saved before.
    let again = api.check_repository(ids[0]).await.unwrap();
    assert!(again.ok, "{:?}", again.checks);
    let names: Vec<String> = api.list_repositories().await.unwrap().into_iter().map(|r| r.name).collect();
    assert_eq!(names.len(), REPOS, "every acknowledged registration is there, the refused one is not: {names:?}");
    assert!(!names.iter().any(|n| n == "during-outage"));

    // Said once when it went away and once when it came back, not once per request.
    let log = server.log();
    assert_eq!(log.matches("the database is unavailable (").count(), 1, "{log}");
    assert_eq!(log.matches("the database is back; serving again").count(), 1, "{log}");
    assert!(log.contains("checks not recorded during the database outage run again"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_sqlite_database_is_answered_the_same_way() {
    harness::init();
    let (_repos, git) = harness::git_server_with_repos("l", 1, &["main"], TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("berth.db");
    let db = format!("sqlite://{}", file.display());
    let server = spawn(&db, dir.path(), "[checks]\nenabled = false\n");
    assert!(harness::serve_ready(&server.base).await, "not ready: {}", server.log());
    let api = Api::login(&server.base, "admin", PASSWORD).await;
    api.create_credential(&harness::bitbucket_api_token("ci", TOKEN)).await.unwrap();

    // Another program holds the write lock (as a backup tool or a stuck writer might).
    let locker = lock_for_writing(&file).await;
    let http = reqwest::Client::new();
    let repo = serde_json::json!({"name": "while-locked", "vcs": "git",
        "clone_url": git.repo_url("team/l0.git"), "credential": "ci"});
    let list = format!("{}/api/v1/repositories", server.base);
    let (status, retry, body) = raw(&http, reqwest::Method::POST, &list, Some(api.token()), Some(repo.clone())).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.contains("\"database_unavailable\""), "{body}");
    assert_eq!(retry.as_deref(), Some("5"));
    unlock(locker).await;

    // Released: the same request goes through, once.
    harness::eventually("the database answers again", || async {
        let (status, _, _) = raw(&http, reqwest::Method::GET, &format!("{}/readyz", server.base), None, None).await;
        (status == StatusCode::OK).then_some(())
    })
    .await;
    let (status, _, body) = raw(&http, reqwest::Method::POST, &list, Some(api.token()), Some(repo)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let names: Vec<String> = api.list_repositories().await.unwrap().into_iter().map(|r| r.name).collect();
    assert_eq!(names, ["while-locked"]);
    assert_eq!(server.log().matches("the database is unavailable").count(), 1, "{}", server.log());
}

/// Holds SQLite's write lock on `file` (`BEGIN IMMEDIATE`), as another writer would, until
/// [`unlock`]. Readers go on (WAL); Berth's writes wait out its busy timeout and fail.
async fn lock_for_writing(file: &std::path::Path) -> sqlx::SqliteConnection {
    use sqlx::Connection;
    let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", file.display())).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE").execute(&mut c).await.unwrap();
    c
}

async fn unlock(mut c: sqlx::SqliteConnection) {
    use sqlx::Connection;
    sqlx::query("ROLLBACK").execute(&mut c).await.unwrap();
    c.close().await.unwrap();
}
