//! Crash safety: a `berth serve` process is killed with SIGKILL in the middle of concurrent
//! registrations and credential rotations (on SQLite, or on PostgreSQL with
//! `BERTH_TEST_DATABASE=postgres`). Afterwards every write the server acknowledged is there,
//! the database passes its integrity check, the vault opens, and every credential opens to a
//! secret that was sent for it (the last acknowledged one, or one whose answer the kill cut off).
//! The API is driven through the typed client; afterwards the store is opened directly (no
//! server is left to ask), and the restarted server is only probed for readiness.

use berth_core::CredentialKind;
use berth_proto::CredentialUpdate;
use berth_store::Store;
use secrecy::ExposeSecret;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::harness::{self, Api, CRASH_ADMIN_PASSWORD as PASSWORD, CRASH_TOKEN as TOKEN};
const REPOS: usize = 40;
const ROTATED: usize = 4;

#[derive(Default)]
struct Acks {
    /// Repository names whose registration answered 201.
    registered: HashSet<String>,
    /// Per credential: every secret sent, in order, and how many of them were acknowledged.
    sent: HashMap<i64, Vec<String>>,
    acked: HashMap<i64, usize>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_registrations_and_rotations_loses_no_acknowledged_write() {
    harness::init();
    let (_repos, git) = harness::git_server_with_repos("c", REPOS, &["main"], TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let db = berth_testkit::pg::test_database_url(dir.path());
    let wal_start = harness::postgres_wal_position(&db);
    let port = harness::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = harness::serve_command(port, &db, dir.path(), &dir.path().join("serve.log"))
        .env("BERTH_ADMIN_PASSWORD", PASSWORD)
        .spawn()
        .unwrap();
    assert!(harness::serve_ready(&base).await, "berth serve does not start");
    let api = Api::login(&base, "admin", PASSWORD).await;
    api.create_credential(&harness::bitbucket_api_token("ci", TOKEN)).await.unwrap();
    assert_eq!(api.status(), 201);
    let mut rotated = Vec::new();
    for i in 0..ROTATED {
        let secret = format!("rot{i}-initial-secret");
        harness::register_secret("a rotated secret", &secret);
        let req = harness::new_credential(&format!("rot{i}"), CredentialKind::AccessToken, &secret);
        rotated.push(api.create_credential(&req).await.unwrap().id);
        assert_eq!(api.status(), 201);
    }

    let acks = Arc::new(Mutex::new(Acks::default()));
    for id in &rotated {
        let mut a = acks.lock().unwrap();
        a.sent.insert(*id, vec![format!("rot{}-initial-secret", rotated.iter().position(|x| x == id).unwrap())]);
        a.acked.insert(*id, 1);
    }
    let mut tasks = tokio::task::JoinSet::new();
    // Registrations, four at a time.
    for lane in 0..4 {
        // Its own client per lane, so each lane's statuses are its own.
        let (api, acks, git_url) = (Api::new(&base, api.token()), acks.clone(), git.base_url());
        tasks.spawn(async move {
            for i in (lane..REPOS).step_by(4) {
                let name = format!("c{i}");
                let req = harness::new_repository(&name, &format!("{git_url}/git/team/c{i}.git"), "ci");
                match api.create_repository(&req).await {
                    Ok(_) if api.status() == 201 => {
                        acks.lock().unwrap().registered.insert(name);
                    }
                    _ => return, // the server is gone
                }
            }
        });
    }
    // Rotations, one lane per credential, each as fast as the server answers.
    for (lane, id) in rotated.iter().copied().enumerate() {
        let (api, acks) = (Api::new(&base, api.token()), acks.clone());
        tasks.spawn(async move {
            for n in 0.. {
                let secret = format!("rot{lane}-secret-{n}");
                harness::register_secret("a rotated secret", &secret);
                acks.lock().unwrap().sent.entry(id).or_default().push(secret.clone());
                let rotate = CredentialUpdate { secret: Some(secret), ..CredentialUpdate::default() };
                match api.update_credential(id, &rotate).await {
                    Ok(_) if api.status() == 200 => {
                        let mut a = acks.lock().unwrap();
                        let sent = a.sent.get(&id).map_or(0, Vec::len);
                        a.acked.insert(id, sent);
                    }
                    _ => return,
                }
            }
        });
    }
    // Kill once a good share of the writes were acknowledged, while more are in flight.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let done = acks.lock().unwrap().registered.len();
        if done >= REPOS / 3 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "registrations do not progress");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.start_kill().unwrap();
    let _ = child.wait().await;
    while tasks.join_next().await.is_some() {}
    let acks = Arc::try_unwrap(acks).ok().unwrap().into_inner().unwrap();
    assert!(acks.registered.len() < REPOS, "the kill must land before every registration is done");

    // The store opens (the vault proves its key), the database is sound, nothing acknowledged
    // is missing, and each credential opens to a secret that was sent for it.
    let (store, created) = Store::open(&db, &dir.path().join("master.key")).await.unwrap();
    assert!(!created, "the existing key file is used");
    assert_eq!(store.integrity_problems().await.unwrap(), Vec::<String>::new());
    let names: HashSet<String> = store.list_repositories().await.unwrap().into_iter().map(|r| r.name).collect();
    for name in &acks.registered {
        assert!(names.contains(name), "acknowledged registration {name} is missing");
    }
    for id in &rotated {
        let secret = store.credential_secret(*id).await.unwrap();
        let sent = &acks.sent[id];
        let acked = acks.acked[id];
        let at = sent.iter().position(|s| s == secret.expose_secret());
        assert!(
            at.is_some_and(|i| i + 1 >= acked),
            "credential {id} holds {:?}, not the last acknowledged ({:?}) or a later one sent",
            at.map(|i| &sent[i]),
            sent.get(acked - 1)
        );
    }
    assert_eq!(
        store.credential_secret(store.find_credential("ci").await.unwrap().id).await.unwrap().expose_secret(),
        TOKEN
    );
    store.close().await;

    // And the server starts again on what was left.
    let mut again = harness::serve_command(port, &db, dir.path(), &dir.path().join("serve-again.log"))
        // Structured logs on request: every line this run writes is one JSON object.
        .env("BERTH_LOG_FORMAT", "json")
        .spawn()
        .unwrap();
    assert!(harness::serve_ready(&base).await, "berth serve does not start after the crash");
    let _ = again.start_kill();
    let _ = again.wait().await;

    let json_log = std::fs::read_to_string(dir.path().join("serve-again.log")).unwrap();
    for line in json_log.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        assert!(v["level"].is_string() && v["timestamp"].is_string(), "{line}");
    }

    // Neither run left a secret in its logs, the database (WAL included) or any other file.
    for log in ["serve.log", "serve-again.log"] {
        let text = std::fs::read(dir.path().join(log)).unwrap();
        assert!(text.len() > 1000, "{log} holds too little to prove anything: {}", String::from_utf8_lossy(&text));
    }
    harness::assert_dir_clean("the crashed server's data directory and logs", dir.path());
    harness::assert_postgres_clean("the crashed server's database", &db, wal_start);
    harness::assert_no_leaks_recorded();
}
