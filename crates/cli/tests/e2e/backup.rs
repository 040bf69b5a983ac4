//! `berth admin backup|restore|verify|migrate` through the binary, on the suite's database
//! (SQLite, or PostgreSQL with `BERTH_TEST_DATABASE=postgres`): snapshots taken while
//! registrations run are consistent, restore into a fresh place and serve again, used targets
//! and damaged snapshots are refused before anything is written, the master key travels only
//! sealed; and a SQLite installation migrated into the test kit's PostgreSQL serves the same
//! people, repositories and history. Every snapshot lives in a scanned data directory.

use crate::cli::Run;
use crate::harness::*;
use berth_core::CredentialKind;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::io::AsyncWriteExt;

/// `berth <args>` with exactly this installation's configuration (nothing inherited from the
/// suite's in-process server), one line on standard input when given.
async fn admin(env: &[(&str, &str)], args: &[&str], stdin: Option<&str>) -> Run {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_berth"));
    cmd.args(args)
        .env_remove("BERTH_DATA_DIR")
        .env_remove("BERTH_DATABASE_URL")
        .env_remove("BERTH_MASTER_KEY_FILE")
        .env_remove("BERTH_CONFIG")
        .env_remove("BERTH_MIGRATE_TO")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    child_log_env(&mut cmd);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("berth binary");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(s) = stdin {
        input.write_all(format!("{s}\n").as_bytes()).await.unwrap();
    }
    drop(input);
    let out = child.wait_with_output().await.unwrap();
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert_no_secret_in_output(&format!("berth {}", args.join(" ")), run.all().as_bytes());
    run
}

fn json(r: &Run) -> Value {
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", r.all()))
}

fn code(r: &Run) -> String {
    json(r)["error"]["code"].as_str().unwrap_or_default().to_owned()
}

/// A place to restore into: a data directory that does not exist yet and, on PostgreSQL, a
/// fresh empty database.
struct Target {
    _parent: tempfile::TempDir,
    dir: PathBuf,
    url: Option<String>,
}

impl Target {
    fn new(postgres: bool) -> Target {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("data");
        let url = postgres.then(|| berth_testkit::pg::PgCluster::shared().create_database());
        Target { _parent: parent, dir, url }
    }

    /// The configuration `berth admin` and `berth serve` get for this place, with `key` as the
    /// master key file.
    fn env<'a>(&'a self, key: &'a str) -> Vec<(&'a str, String)> {
        let mut env = vec![("BERTH_DATA_DIR", self.dir.display().to_string()), ("BERTH_MASTER_KEY_FILE", key.into())];
        if let Some(u) = &self.url {
            env.push(("BERTH_DATABASE_URL", u.clone()));
        }
        env
    }

    fn database_url(&self) -> String {
        self.url.clone().unwrap_or_else(|| format!("sqlite://{}", self.dir.join("berth.db").display()))
    }
}

fn pairs<'a>(env: &'a [(&'a str, String)]) -> Vec<(&'a str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// `berth serve` on `url` with `key`, ready, killed when dropped.
async fn serve(url: &str, dir: &Path, key: &str) -> (tokio::process::Child, String) {
    std::fs::create_dir_all(dir).unwrap();
    let port = free_port();
    let child = serve_command(port, url, dir, &dir.join("serve.log"))
        .env("BERTH_MASTER_KEY_FILE", key)
        .env_remove("BERTH_ADMIN_PASSWORD")
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    if !serve_ready(&base).await {
        panic!("berth serve did not start: {}", std::fs::read_to_string(dir.join("serve.log")).unwrap_or_default());
    }
    (child, base)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_taken_during_registrations_restore_into_a_fresh_place_and_serve_again() {
    let b = Berth::start().await;
    let postgres = b.db_path().is_none();
    let (_repos, git) = git_server_with_repos("snap", 10, &["main"], TOKEN).await;
    let key = b.data.path().join("master.key").display().to_string();
    let source =
        [("BERTH_DATA_DIR", b.data.path().display().to_string()), ("BERTH_DATABASE_URL", b.database_url.clone())];
    let source = pairs(&source);

    // Each registration brings its own credential, stored just before: a snapshot that read
    // the credentials and the repositories at different moments would hold a repository
    // without its credential, which the restore's verification refuses.
    let register = async {
        for i in 0..10 {
            let name = format!("snap-cred-{i}");
            let req = berth_proto::CredentialCreate {
                email: Some("jo@example.com".into()),
                scopes: Some(vec!["read:repository:bitbucket".into()]),
                ..new_credential(&name, CredentialKind::BitbucketApiToken, TOKEN)
            };
            b.api.create_credential(&req).await.unwrap();
            let url = git.repo_url(&format!("team/snap{i}.git"));
            b.api.create_repository(&new_repository(&format!("snap{i}"), &url, &name)).await.unwrap();
        }
    };
    let snapshots: Vec<PathBuf> = (0..3).map(|i| b.data.path().join(format!("during-{i}.snapshot"))).collect();
    let backups = async {
        let mut runs = Vec::new();
        for s in &snapshots {
            runs.push(admin(&source, &["--json", "admin", "backup", "--to", &s.display().to_string()], None).await);
        }
        runs
    };
    let ((), runs) = tokio::join!(register, backups);
    let mut seen = 0;
    for r in &runs {
        assert_eq!(r.code, 0, "{}", r.all());
        let n = json(r)["rows"]["repositories"].as_u64().unwrap();
        assert!(n >= seen, "a later snapshot holds fewer repositories ({n} after {seen})");
        seen = n;
        let v = json(r);
        assert_eq!(v["master_key_included"], false, "{v}");
        assert!(v["rows"]["repositories"].as_u64().is_some() && v["sha256"].is_string(), "{v}");
    }
    // One more after the last registration: it has them all.
    let last = b.data.path().join("after.snapshot");
    let last_s = last.display().to_string();
    let r = admin(&source, &["admin", "backup", "--to", &last_s], None).await;
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("master key: NOT in the snapshot") && r.stdout.contains(&key), "{}", r.stdout);
    let mut all = snapshots.clone();
    all.push(last.clone());
    assert_files_clean("snapshots", &all);

    // Every snapshot restores into a fresh place and verifies: each repository has its credential.
    for s in &snapshots {
        let t = Target::new(postgres);
        let env = t.env(&key);
        let r = admin(&pairs(&env), &["--json", "admin", "restore", "--from", &s.display().to_string()], None).await;
        assert_eq!(r.code, 0, "{}: {}", s.display(), r.all());
        let v = json(&r);
        assert_eq!(v["verify"]["ok"], true, "{v}");
        assert_eq!(v["verify"]["counts"]["repositories"], v["rows"]["repositories"], "{v}");
        assert_eq!(v["key_file_written"], false);
    }

    // The last one: restored, verified by the command of its own, served, signed in, re-checked.
    let t = Target::new(postgres);
    let env = t.env(&key);
    let r = admin(&pairs(&env), &["admin", "restore", "--from", &last_s], None).await;
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("no problem found") && r.stdout.contains("Sessions are not restored"), "{}", r.stdout);
    let r = admin(&pairs(&env), &["--json", "admin", "verify"], None).await;
    assert_eq!(r.code, 0, "{}", r.all());
    let v = json(&r);
    assert_eq!((v["ok"].clone(), v["counts"]["repositories"].clone()), (Value::Bool(true), Value::from(10)), "{v}");
    assert_eq!(v["secrets_opened"], 10, "the ten credentials open: {v}");

    let (child, base) = serve(&t.database_url(), &t.dir, &key).await;
    let api = Api::login(&base, "admin", ADMIN_PASSWORD).await;
    let repos = api.list_repositories().await.unwrap();
    assert_eq!(repos.len(), 10);
    let before = b.api.list_repositories().await.unwrap();
    let mut names: Vec<_> = repos.iter().map(|r| (r.id, r.name.clone())).collect();
    let mut want: Vec<_> = before.iter().map(|r| (r.id, r.name.clone())).collect();
    names.sort();
    want.sort();
    assert_eq!(names, want, "the same repositories with the same ids");
    let check = api.check_repository(repos[0].id).await.unwrap();
    assert!(check.ok, "a restored repository's re-check passes: {}", codes(&check.checks));
    drop(child);

    // A secret that no longer opens: verify says so and exits 1.
    let store = berth_store::Store::open_existing(&t.database_url(), Path::new(&key)).await.unwrap();
    store.execute_unchecked("UPDATE credentials SET ciphertext = wrapped_key WHERE id = $1", &[1]).await.unwrap();
    store.close().await;
    let r = admin(&pairs(&env), &["--json", "admin", "verify"], None).await;
    assert_eq!((r.code, code(&r).as_str()), (1, "verification_failed"), "{}", r.all());
    assert!(json(&r)["error"]["message"].as_str().unwrap().contains("credentials row 1"), "{}", r.stdout);

    // The same snapshot onto the place it now fills: refused, nothing changed.
    let r = admin(&pairs(&env), &["--json", "admin", "restore", "--from", &last_s], None).await;
    assert_eq!((r.code, code(&r).as_str()), (2, "target_not_empty"), "{}", r.all());

    // Truncated or altered: refused before anything is written (no data directory appears).
    let good = std::fs::read_to_string(&last).unwrap();
    let damaged =
        [("truncated", good[..good.len() - 40].to_owned()), ("tampered", good.replacen("\"snap3\"", "\"snapX\"", 1))];
    for (what, text) in damaged {
        assert_ne!(text, good, "{what}: nothing changed");
        let bad = b.data.path().join(format!("{what}.snapshot"));
        std::fs::write(&bad, text).unwrap();
        let t = Target::new(postgres);
        let env = t.env(&key);
        let r = admin(&pairs(&env), &["--json", "admin", "restore", "--from", &bad.display().to_string()], None).await;
        assert_eq!((r.code, code(&r).as_str()), (1, "snapshot_damaged"), "{what}: {}", r.all());
        assert!(!t.dir.exists(), "{what}: the data directory was created");
        if let Some(url) = &t.url {
            let v = admin(
                &[("BERTH_DATABASE_URL", url), ("BERTH_DATA_DIR", &t.dir.display().to_string())],
                &["--json", "admin", "verify"],
                None,
            )
            .await;
            assert_eq!(code(&v), "no_database", "{what}: the database was written: {}", v.all());
        }
    }

    // With the key sealed in: a wrong passphrase is refused and nothing is written; the right
    // one writes the key file and restores.
    let sealed = b.data.path().join("with-key.snapshot");
    let sealed_s = sealed.display().to_string();
    let r = admin(
        &source,
        &["admin", "backup", "--to", &sealed_s, "--include-key", "--passphrase-stdin"],
        Some(BACKUP_PASSPHRASE),
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("master key: IN the snapshot") && r.stdout.contains("passphrase"), "{}", r.stdout);
    let key_line = std::fs::read_to_string(&key).unwrap();
    let key_b64 = key_line.lines().find(|l| l.starts_with("k-")).unwrap().split_whitespace().nth(1).unwrap().to_owned();
    assert!(!std::fs::read_to_string(&sealed).unwrap().contains(&key_b64), "the master key in plaintext");
    assert_files_clean("a snapshot with its key sealed in", std::slice::from_ref(&sealed));
    let t = Target::new(postgres);
    let new_key = t.dir.join("master.key").display().to_string();
    let env = t.env(&new_key);
    let args = ["--json", "admin", "restore", "--from", &sealed_s, "--passphrase-stdin"];
    let r = admin(&pairs(&env), &args, Some(BACKUP_WRONG_PASSPHRASE)).await;
    assert_eq!((r.code, code(&r).as_str()), (1, "wrong_passphrase"), "{}", r.all());
    assert!(!Path::new(&new_key).exists(), "a key file was written");
    let r = admin(&pairs(&env), &args, Some(BACKUP_PASSPHRASE)).await;
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(json(&r)["key_file_written"], true);
    assert_eq!(std::fs::read_to_string(&new_key).unwrap(), key_line, "the same keys");
    assert_dir_clean("a restored data directory", &t.dir);
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_installation_migrates_into_postgresql_and_serves_the_same_people_and_history() {
    let b = Berth::start().await;
    if b.db_path().is_none() {
        // The suite runs on PostgreSQL: the source of a migration is a SQLite data directory,
        // which the SQLite run of this test has.
        b.stop().await;
        return;
    }
    let (_repos, git) = git_server_with_repos("mig", 2, &["main"], TOKEN).await;
    // Every kind of credential Berth stores: a Bitbucket API token, a bearer token, Basic
    // credentials (the Git server takes the token as the password).
    b.api_token_credential("ci").await;
    b.api.create_credential(&new_credential("pat", CredentialKind::AccessToken, BACKUP_ACCESS_TOKEN)).await.unwrap();
    let basic = berth_proto::CredentialCreate {
        username: Some("x-bitbucket-api-token-auth".into()),
        ..new_credential("basic", CredentialKind::UsernamePassword, TOKEN)
    };
    b.api.create_credential(&basic).await.unwrap();
    // A GitHub App: its private key is the sealed secret (stored, not used here).
    let pem = berth_testkit::sim::make_app_private_key();
    for line in pem.lines().filter(|l| !l.starts_with("-----") && l.len() >= MIN_SECRET_LEN) {
        register_secret("a GitHub App's private key", line);
    }
    let app = berth_proto::CredentialCreate {
        app_id: Some("4242".into()),
        installation_id: Some(7),
        ..new_credential("app", CredentialKind::GithubApp, &pem)
    };
    b.api.create_credential(&app).await.unwrap();
    let one = b.api.create_repository(&new_repository("mig0", &git.repo_url("team/mig0.git"), "ci")).await.unwrap();
    let two = b.api.create_repository(&new_repository("mig1", &git.repo_url("team/mig1.git"), "basic")).await.unwrap();
    assert!(b.api.check_repository(one.id).await.unwrap().ok);
    let history = b.api.check_history(one.id, 100).await.unwrap();
    let audit = b.api.audit(None, Some(500)).await.unwrap();
    let credentials = b.api.list_credentials().await.unwrap();
    let data = b.stop_keep_data().await;

    let key = data.path().join("master.key").display().to_string();
    let pg = berth_testkit::pg::PgCluster::shared().create_database();
    let env = [("BERTH_DATA_DIR", data.path().display().to_string())];
    let env = pairs(&env);
    let r = admin(&env, &["admin", "migrate", "--to", &pg], None).await;
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("no problem found") && r.stdout.contains("BERTH_DATABASE_URL="), "{}", r.stdout);
    let again = admin(&env, &["--json", "admin", "migrate", "--to", &pg], None).await;
    assert_eq!((again.code, code(&again).as_str()), (2, "target_not_empty"), "{}", again.all());
    assert!(again.stdout.contains("not empty"), "{}", again.stdout);
    let leftovers: Vec<_> = std::fs::read_dir(data.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("migrate"))
        .collect();
    assert!(leftovers.is_empty(), "the migration's snapshot was left: {leftovers:?}");

    let serve_dir = tempfile::tempdir().unwrap();
    let (child, base) = serve(&pg, serve_dir.path(), &key).await;
    let api = Api::login(&base, "admin", ADMIN_PASSWORD).await;
    let moved_credentials = api.list_credentials().await.unwrap();
    let kinds = |cs: &[berth_proto::Credential]| {
        let mut k: Vec<String> = cs.iter().map(|c| format!("{} {:?} {:?}", c.name, c.kind, c.app_id)).collect();
        k.sort();
        k
    };
    assert_eq!(kinds(&moved_credentials), kinds(&credentials), "every credential, of every kind");
    let repos = api.list_repositories().await.unwrap();
    assert_eq!(repos.iter().map(|r| r.id).collect::<Vec<_>>(), vec![one.id, two.id]);
    let moved = api.check_history(one.id, 100).await.unwrap();
    assert_eq!(moved.len(), history.len(), "history kept");
    let moved_audit = api.audit(None, Some(500)).await.unwrap();
    assert_eq!(moved_audit.len(), audit.len() + 1, "audit kept (and this sign-in added)");
    for id in [one.id, two.id] {
        let check = api.check_repository(id).await.unwrap();
        assert!(check.ok, "a migrated repository's re-check passes: {}", codes(&check.checks));
    }
    // New rows take ids after the copied ones.
    let c = api
        .create_credential(&new_credential("after", CredentialKind::AccessToken, BACKUP_ACCESS_TOKEN))
        .await
        .unwrap();
    assert!(credentials.iter().all(|old| old.id < c.id), "id {} reused", c.id);
    drop(child);
    assert_dir_clean("the migrated data directory", data.path());
}

/// The positive control for snapshots: a secret stored unsealed would be in a snapshot line as
/// a JSON string (a text column) or in base64 (a bytes column); the scan the tests above run on
/// every snapshot file finds either.
#[test]
fn the_leak_scan_finds_a_secret_in_a_snapshot_line_as_berth_writes_it() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let lines = [
        ("text", serde_json::json!([1, "bb-ci", ALICE_PASSWORD])),
        ("bytes", serde_json::json!([1, "k-1", base64(ALICE_PASSWORD.as_bytes())])),
    ];
    for (what, line) in lines {
        let path = dir.path().join(format!("{what}.snapshot"));
        std::fs::write(&path, format!("{{\"table\":\"credentials\",\"columns\":[\"id\",\"name\",\"x\"]}}\n{line}\n"))
            .unwrap();
        let found = std::panic::catch_unwind(|| assert_files_clean("a planted snapshot", std::slice::from_ref(&path)));
        assert!(found.is_err(), "a secret in a snapshot's {what} column was not found");
    }
}
