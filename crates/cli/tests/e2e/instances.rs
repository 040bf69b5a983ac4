//! Three `berth serve` processes on one PostgreSQL (the test kit's private cluster): they
//! start together on an empty database (migrations run once, under the migrator's lock), share
//! sign-ins, and split the background checks so that each due check runs exactly once. One of
//! them is killed with SIGKILL in the middle of its checks; the others take those checks over
//! when the leases expire, so nothing is skipped.

use berth_testkit::{bare_repo, GitServer, GitServerOptions};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

use crate::proxy::{FaultyProxy, Mode};

use crate::harness::{self, INSTANCES_ADMIN_PASSWORD as PASSWORD, INSTANCES_TOKEN as TOKEN};
const REPOS: usize = 12;

struct Instance {
    id: String,
    base: String,
    child: tokio::process::Child,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn spawn_instance(id: &str, db: &str, dir: &std::path::Path, config: &std::path::Path) -> Instance {
    let port = free_port();
    let log = std::fs::File::create(dir.join(format!("{id}.log"))).unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_berth"));
    harness::child_log_env(&mut child);
    let child = child
        .arg("serve")
        .env("BERTH_LISTEN", format!("127.0.0.1:{port}"))
        .env("BERTH_DATABASE_URL", db)
        .env("BERTH_DATA_DIR", dir)
        .env("BERTH_MASTER_KEY_FILE", dir.join("master.key"))
        .env("BERTH_ADMIN_PASSWORD", PASSWORD)
        .env("BERTH_NETWORK_ALLOW", "127.0.0.0/8")
        .env("BERTH_CONFIG", config)
        .env("BERTH_INSTANCE_ID", id)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    Instance { id: id.to_owned(), base: format!("http://127.0.0.1:{port}"), child }
}

async fn wait_ready(http: &reqwest::Client, i: &Instance, dir: &std::path::Path) {
    if harness::serve_ready(http, &i.base).await {
        return;
    }
    let log = std::fs::read_to_string(dir.join(format!("{}.log", i.id))).unwrap_or_default();
    panic!("instance {} did not become ready: {log}", i.id);
}

struct Api<'a> {
    http: &'a reqwest::Client,
    token: String,
}

impl Api<'_> {
    async fn call(&self, method: reqwest::Method, url: String, body: Option<Value>) -> (StatusCode, Value) {
        let mut req = self.http.request(method, url).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = harness::answer_text("an instance's answer", resp).await;
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

/// Every repository's scheduled checks, from any instance (they share the database).
async fn scheduled(api: &Api<'_>, base: &str, ids: &[i64]) -> HashMap<i64, Vec<Value>> {
    let mut out = HashMap::new();
    for id in ids {
        let (_, h) = api.call(reqwest::Method::GET, format!("{base}/api/v1/repositories/{id}/checks?limit=1000"), None).await;
        let list: Vec<Value> = h.as_array().cloned().unwrap_or_default().into_iter().filter(|c| c["reason"] == "schedule").collect();
        out.insert(*id, list);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_share_one_database_and_never_skip_or_repeat_a_check() {
    harness::init();
    let repos = tempfile::tempdir().unwrap();
    for i in 0..REPOS {
        bare_repo(repos.path(), &format!("team/r{i}.git"), "main", &["main", "develop"]);
    }
    let git = GitServer::start(
        repos.path(),
        GitServerOptions { users: vec![("x-bitbucket-api-token-auth".into(), TOKEN.into())], ..GitServerOptions::default() },
    )
    .await;
    let proxy = FaultyProxy::start(&git.base_url()).await;

    let dir = tempfile::tempdir().unwrap();
    let db = berth_testkit::pg::PgCluster::shared().create_database();
    let wal_start = harness::postgres_wal_position(&db);
    // Every instance must hold the same master key; an operator copies the file to each.
    berth_store::Keyring::load_or_create(&dir.path().join("master.key")).unwrap();
    let config = dir.path().join("berth.toml");
    std::fs::write(
        &config,
        "[checks]\ninterval_mins = 60\njitter_percent = 0\npoll_secs = 0.2\nlease_secs = 4\nshutdown_grace_secs = 5\n\n[git]\nrequest_timeout_secs = 2\n",
    )
    .unwrap();
    // All three start at once on the empty database.
    let mut instances: Vec<Instance> =
        ["i1", "i2", "i3"].iter().map(|id| spawn_instance(id, &db, dir.path(), &config)).collect();
    let http = reqwest::Client::new();
    for i in &instances {
        wait_ready(&http, i, dir.path()).await;
    }

    // A session from one instance works on the others: sessions live in the database.
    let api = Api { http: &http, token: harness::login(&http, &instances[0].base, "admin", PASSWORD).await };
    let (s, me) = api.call(reqwest::Method::GET, format!("{}/api/v1/me", instances[2].base), None).await;
    assert_eq!((s, me["username"].as_str()), (StatusCode::OK, Some("admin")));

    let (s, v) = api
        .call(
            reqwest::Method::POST,
            format!("{}/api/v1/credentials", instances[1].base),
            Some(json!({"name": "ci", "kind": "bitbucket_api_token", "email": "jo@example.com", "secret": TOKEN})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let mut ids = Vec::new();
    for i in 0..REPOS {
        let url = proxy.url(&format!("git/team/r{i}.git"));
        let base = &instances[i % 3].base;
        let (s, v) = api
            .call(reqwest::Method::POST, format!("{base}/api/v1/repositories"), Some(json!({"name": format!("r{i}"), "clone_url": url, "credential": "ci"})))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        ids.push(v["id"].as_i64().unwrap());
    }

    // Round 1: every repository made due at once; each is checked exactly once.
    let (s, v) = api.call(reqwest::Method::POST, format!("{}/api/v1/checks/schedule", instances[1].base), Some(json!({}))).await;
    assert_eq!((s, v["scheduled"].as_u64()), (StatusCode::OK, Some(REPOS as u64)));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let done = scheduled(&api, &instances[2].base, &ids).await;
        if done.values().all(|c| !c.is_empty()) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "round 1 did not finish: {done:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Give any duplicate time to show up: several polls of every instance.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let round1 = scheduled(&api, &instances[0].base, &ids).await;
    for (id, checks) in &round1 {
        assert_eq!(checks.len(), 1, "repository {id} was checked {} times: {checks:?}", checks.len());
        assert_ne!(checks[0]["status"], "fail", "{}", checks[0]);
        assert!(["i1", "i2", "i3"].contains(&checks[0]["instance"].as_str().unwrap()));
    }

    // Round 2: the Git host stalls, so checks hang; the instance holding them is killed.
    proxy.set(Mode::Stall);
    let (s, _) = api.call(reqwest::Method::POST, format!("{}/api/v1/checks/schedule", instances[0].base), Some(json!({}))).await;
    assert_eq!(s, StatusCode::OK);
    let holders: HashMap<i64, String> = loop {
        let (_, list) = api.call(reqwest::Method::GET, format!("{}/api/v1/repositories", instances[0].base), None).await;
        let held: HashMap<i64, String> = list
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|r| Some((r["id"].as_i64()?, r["checking_by"].as_str()?.to_owned())))
            .collect();
        if !held.is_empty() {
            break held;
        }
        assert!(tokio::time::Instant::now() < deadline + Duration::from_secs(30), "no instance took the checks");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let victim_id = holders.values().next().unwrap().clone();
    let victim_repos: HashSet<i64> = holders.iter().filter(|(_, o)| **o == victim_id).map(|(r, _)| *r).collect();
    let victim = instances.iter_mut().find(|i| i.id == victim_id).unwrap();
    victim.child.start_kill().unwrap();
    let _ = victim.child.wait().await;
    proxy.set(Mode::Pass);
    let survivor = instances.iter().find(|i| i.id != victim_id).unwrap().base.clone();

    // Every repository gets its round-2 check; the victim's were taken over by the others
    // once their leases expired, and none of them is recorded twice.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let round2 = loop {
        let now = scheduled(&api, &survivor, &ids).await;
        if now.values().all(|c| c.len() >= 2) {
            break now;
        }
        assert!(tokio::time::Instant::now() < deadline, "round 2 skipped checks: {now:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let round2_again = scheduled(&api, &survivor, &ids).await;
    for id in &ids {
        assert_eq!(round2_again[id].len(), round2[id].len(), "repository {id} was checked again");
    }
    for id in &victim_repos {
        let latest = &round2[id][0];
        assert_ne!(latest["instance"], victim_id.as_str(), "the killed instance cannot have recorded it");
        assert_eq!(round2[id].len(), 2, "taken over exactly once: {:?}", round2[id]);
    }
    for i in &mut instances {
        let _ = i.child.start_kill();
        let _ = i.child.wait().await;
    }
    // No instance logged a secret or left one in a file; the database holds none either.
    for i in &instances {
        let log = std::fs::read(dir.path().join(format!("{}.log", i.id))).unwrap();
        assert!(log.len() > 1000, "{}.log holds too little to prove anything", i.id);
    }
    harness::assert_dir_clean("the instances' directory and logs", dir.path());
    harness::assert_postgres_clean("the instances' database", &db, wal_start);
    harness::assert_no_leaks_recorded();
}
