//! Three `berth serve` processes on one PostgreSQL (the test kit's private cluster): they
//! start together on an empty database (migrations run once, under the migrator's lock), share
//! sign-ins, and split the background checks so that each due check runs exactly once. One of
//! them is killed with SIGKILL in the middle of its checks; the others take those checks over
//! when the leases expire, so nothing is skipped. Each instance is asked through the typed
//! client; readiness is an HTTP probe.

use berth_proto::StoredCheck;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

use crate::proxy::{FaultyProxy, Mode};

use crate::harness::{self, Api, INSTANCES_ADMIN_PASSWORD as PASSWORD, INSTANCES_TOKEN as TOKEN};
const REPOS: usize = 12;

struct Instance {
    id: String,
    base: String,
    child: tokio::process::Child,
}

fn spawn_instance(id: &str, db: &str, dir: &std::path::Path, config: &std::path::Path) -> Instance {
    let port = harness::free_port();
    let child = harness::serve_command(port, db, dir, &dir.join(format!("{id}.log")))
        .env("BERTH_MASTER_KEY_FILE", dir.join("master.key"))
        .env("BERTH_ADMIN_PASSWORD", PASSWORD)
        .env("BERTH_CONFIG", config)
        .env("BERTH_INSTANCE_ID", id)
        .spawn()
        .unwrap();
    Instance { id: id.to_owned(), base: format!("http://127.0.0.1:{port}"), child }
}

async fn wait_ready(i: &Instance, dir: &std::path::Path) {
    if harness::serve_ready(&i.base).await {
        return;
    }
    let log = std::fs::read_to_string(dir.join(format!("{}.log", i.id))).unwrap_or_default();
    panic!("instance {} did not become ready: {log}", i.id);
}

/// Every repository's scheduled checks, from any instance (they share the database).
async fn scheduled(api: &Api, ids: &[i64]) -> HashMap<i64, Vec<StoredCheck>> {
    let mut out = HashMap::new();
    for id in ids {
        let h = api.check_history(*id, 1000).await.unwrap();
        // Every round here is a "check all now", which the scheduler records as a person's
        // request (manual); registration checks are "register".
        out.insert(*id, h.into_iter().filter(|c| c.reason == "manual").collect());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_share_one_database_and_never_skip_or_repeat_a_check() {
    harness::init();
    let (_repos, git) = harness::git_server_with_repos("r", REPOS, &["main", "develop"], TOKEN).await;
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
    for i in &instances {
        wait_ready(i, dir.path()).await;
    }

    // A session from one instance works on the others: sessions live in the database.
    let session = Api::login(&instances[0].base, "admin", PASSWORD).await;
    let api: Vec<Api> = instances.iter().map(|i| Api::new(&i.base, session.token())).collect();
    let me = api[2].me().await.unwrap();
    assert_eq!((api[2].status(), me.username.as_str()), (200, "admin"));

    api[1].create_credential(&harness::bitbucket_api_token("ci", TOKEN)).await.unwrap();
    assert_eq!(api[1].status(), 201);
    let mut ids = Vec::new();
    for i in 0..REPOS {
        let url = proxy.url(&format!("git/team/r{i}.git"));
        let on = &api[i % 3];
        ids.push(on.create_repository(&harness::new_repository(&format!("r{i}"), &url, "ci")).await.unwrap().id);
        assert_eq!(on.status(), 201);
    }

    // Round 1: every repository made due at once; each is checked exactly once.
    let v = api[1].schedule_all_checks().await.unwrap();
    assert_eq!((api[1].status(), v.scheduled), (200, REPOS as u64));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let done = scheduled(&api[2], &ids).await;
        if done.values().all(|c| !c.is_empty()) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "round 1 did not finish: {done:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Give any duplicate time to show up: several polls of every instance.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let round1 = scheduled(&api[0], &ids).await;
    for (id, checks) in &round1 {
        assert_eq!(checks.len(), 1, "repository {id} was checked {} times: {checks:?}", checks.len());
        assert_ne!(checks[0].status, "fail", "{:?}", checks[0]);
        assert!(["i1", "i2", "i3"].contains(&checks[0].instance.as_str()));
    }

    // Round 2: the Git host stalls, so checks hang; the instance holding them is killed.
    proxy.set(Mode::Stall);
    api[0].schedule_all_checks().await.unwrap();
    assert_eq!(api[0].status(), 200);
    let holders: HashMap<i64, String> = loop {
        let list = api[0].list_repositories().await.unwrap();
        let held: HashMap<i64, String> = list.into_iter().filter_map(|r| Some((r.id, r.checking_by?))).collect();
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
    let survivor = &api[instances.iter().position(|i| i.id != victim_id).unwrap()];

    // Every repository gets its round-2 check; the victim's were taken over by the others
    // once their leases expired, and none of them is recorded twice.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let round2 = loop {
        let now = scheduled(survivor, &ids).await;
        if now.values().all(|c| c.len() >= 2) {
            break now;
        }
        assert!(tokio::time::Instant::now() < deadline, "round 2 skipped checks: {now:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let round2_again = scheduled(survivor, &ids).await;
    for id in &ids {
        assert_eq!(round2_again[id].len(), round2[id].len(), "repository {id} was checked again");
    }
    for id in &victim_repos {
        let latest = &round2[id][0];
        assert_ne!(latest.instance, victim_id, "the killed instance cannot have recorded it");
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
