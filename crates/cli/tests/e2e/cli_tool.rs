//! The `berth` binary as a Unix tool: an exit code per class of outcome, errors in the API's
//! error shape with `--json`, quiet ends at a closed pipe, `berth admin` that never creates a
//! data directory, `repo show` and `repo history --check` with their steps, `auth status`,
//! terminal wording without the web UI's, and `berth-sim --write-config`.

use crate::cli::{add_token, berth, berth_with, login, signed_in, Run, With};
use crate::harness::*;
use berth_core::StepName;
use berth_proto::{ApiTokenCreate, ErrorBody};
use serde_json::Value;
use std::path::Path;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

/// The error a `--json` run printed on standard output, in the API's error shape.
fn json_error(r: &Run) -> Value {
    let v: Value = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", r.all()));
    let e = &v["error"];
    for field in ["code", "message", "remedy"] {
        assert!(e[field].is_string(), "{field} missing: {}", r.stdout);
    }
    assert!(e["checks"].is_array(), "checks missing: {}", r.stdout);
    assert!(!e["message"].as_str().unwrap_or_default().is_empty(), "{}", r.stdout);
    v
}

fn json_code(r: &Run) -> String {
    json_error(r)["error"]["code"].as_str().unwrap_or_default().to_owned()
}

/// A session file as `berth login` writes it, for a token and an expiry of the test's choosing.
fn write_session(path: &Path, base: &str, token: &str, expires_at: chrono::DateTime<chrono::Utc>) {
    let v = serde_json::json!({ "url": base, "token": token, "expires_at": expires_at });
    std::fs::write(path, serde_json::to_vec(&v).unwrap()).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

/// A server that answers every request with `status_line` and a plain-text body, as a proxy in
/// front of a Berth that is down does.
async fn answering(status_line: &'static str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 8192];
                let _ = s.read(&mut buf).await;
                let body = "upstream unavailable";
                let answer = format!(
                    "HTTP/1.1 {status_line}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(answer.as_bytes()).await;
            });
        }
    });
    base
}

/// An address nothing listens on.
async fn closed_port() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_class_of_outcome_has_its_exit_code_and_json_error() {
    let b = Berth::start().await;
    let home = tempfile::tempdir().unwrap();
    let session = home.path().join("session.json");

    // 4: no session; with --json the error is the API's shape with the CLI's code.
    let r = berth(&b, &session, &["repo", "list"], None).await;
    assert_eq!(r.code, 4, "{}", r.all());
    let r = berth(&b, &session, &["--json", "repo", "list"], None).await;
    assert_eq!((r.code, json_code(&r).as_str()), (4, "not_logged_in"), "{}", r.all());
    assert!(json_error(&r)["error"]["remedy"].as_str().unwrap().contains("berth login"), "{}", r.stdout);
    assert!(r.stderr.trim().is_empty(), "with --json the error is on stdout only: {}", r.stderr);

    // 4: a wrong password is a 401.
    let r = berth(
        &b,
        &session,
        &["--json", "login", "--username", "admin", "--password-stdin"],
        Some(&format!("{WRONG_ADMIN_PASSWORD}\n")),
    )
    .await;
    assert_eq!((r.code, json_code(&r).as_str()), (4, "unauthenticated"), "{}", r.all());

    // 2: usage errors, from clap and from the CLI's own checks.
    let r = berth(&b, &session, &["repo", "frobnicate"], None).await;
    assert_eq!(r.code, 2, "{}", r.all());
    let r = berth(&b, &session, &["--json", "repo", "frobnicate"], None).await;
    assert_eq!((r.code, json_code(&r).as_str()), (2, "usage_error"), "{}", r.all());
    assert!(r.stderr.trim().is_empty(), "{}", r.stderr);
    let r = berth(&b, &session, &["repo", "--json"], None).await;
    assert_eq!((r.code, json_code(&r).as_str()), (2, "usage_error"), "a missing subcommand: {}", r.all());
    let r = berth(&b, &session, &["--json", "--url", "ftp://berth.example", "repo", "list"], None).await;
    assert_eq!((r.code, json_code(&r).as_str()), (2, "usage_error"), "{}", r.all());

    let r = login(&b, &session, ADMIN_PASSWORD).await;
    assert_eq!(r.code, 0, "{}", r.all());
    let r = berth(&b, &session, &["--json", "repo", "update", "app"], None).await;
    assert_eq!((r.code, json_code(&r).as_str()), (2, "usage_error"), "nothing to update: {}", r.all());

    // 3: refused by the server (or by the CLI for it: no such name), typed like the API's.
    let r = berth(&b, &session, &["repo", "show", "nosuch"], None).await;
    assert_eq!(r.code, 3, "{}", r.all());
    let r = berth(&b, &session, &["--json", "repo", "show", "nosuch"], None).await;
    assert_eq!(r.code, 3, "{}", r.all());
    let e: ErrorBody = serde_json::from_str(&r.stdout).expect("the API's error shape");
    assert_eq!(e.error.code, berth_core::Code::RepositoryNotFound);
    let r = berth(&b, &session, &["--json", "repo", "show", "424242"], None).await;
    assert_eq!(r.code, 3, "a 404 from the server: {}", r.all());
    json_error(&r);

    // 1: a check failed; the registration's refusal carries its steps.
    let r = add_token(&b, &session, &[]).await;
    assert_eq!(r.code, 0, "{}", r.all());
    let url = b.git.repo_url("team/app.git");
    let r = berth(
        &b,
        &session,
        &[
            "--json",
            "repo",
            "register",
            "--name",
            "app",
            "--url",
            &url,
            "--credential",
            "ci",
            "--default-branch",
            "nope",
        ],
        None,
    )
    .await;
    assert_eq!(r.code, 1, "{}", r.all());
    let e: ErrorBody = serde_json::from_str(&r.stdout).expect("the API's error shape");
    assert_eq!(e.error.code, berth_core::Code::BranchNotFound);
    assert_eq!(e.error.checks.len(), StepName::ALL.len(), "{}", r.stdout);

    // 4: an expired session, and a token the server no longer knows.
    let stale = home.path().join("stale.json");
    write_session(&stale, &b.base, REVOKED_TOKEN, chrono::Utc::now() - chrono::Duration::hours(1));
    let r = berth(&b, &stale, &["--json", "repo", "list"], None).await;
    assert_eq!((r.code, json_code(&r).as_str()), (4, "session_expired"), "{}", r.all());
    write_session(&stale, &b.base, REVOKED_TOKEN, chrono::Utc::now() + chrono::Duration::hours(1));
    let r = berth(&b, &stale, &["repo", "list"], None).await;
    assert_eq!(r.code, 4, "{}", r.all());
    assert!(r.stderr.contains("berth login"), "{}", r.stderr);
    let r = berth(&b, &stale, &["--json", "repo", "list"], None).await;
    assert_eq!((r.code, json_code(&r).as_str()), (4, "unauthenticated"), "{}", r.all());

    // 5: nothing listening, and a proxy answering 503 for a Berth that is down.
    let nowhere = closed_port().await;
    for args in [&["repo", "list"][..], &["--json", "repo", "list"][..]] {
        let r = berth_with(
            &b,
            &session,
            args,
            None,
            With { env: &[("BERTH_URL", &nowhere), ("BERTH_TOKEN", REVOKED_TOKEN)], ..With::default() },
        )
        .await;
        assert_eq!(r.code, 5, "{}", r.all());
        if args[0] == "--json" {
            assert_eq!(json_code(&r), "server_unreachable", "{}", r.stdout);
        } else {
            assert!(r.stderr.contains("cannot reach Berth"), "{}", r.stderr);
        }
    }
    let down = answering("503 Service Unavailable").await;
    let r = berth_with(
        &b,
        &session,
        &["--json", "repo", "list"],
        None,
        With { env: &[("BERTH_URL", &down), ("BERTH_TOKEN", REVOKED_TOKEN)], ..With::default() },
    )
    .await;
    assert_eq!(r.code, 5, "{}", r.all());
    assert!(json_error(&r)["error"]["message"].as_str().unwrap().contains("503"), "{}", r.stdout);

    // The codes are documented where people look.
    let r = berth(&b, &session, &["--help"], None).await;
    assert_eq!(r.code, 0, "{}", r.all());
    for line in [
        "0  success",
        "1  a check or verification failed",
        "2  usage error",
        "3  refused by the server",
        "4  not logged in",
        "5  the server cannot be reached",
    ] {
        assert!(r.stdout.contains(line), "{line:?} missing from --help: {}", r.stdout);
    }
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_pipe_ends_the_output_quietly() {
    let b = Berth::start().await;
    let (_home, session) = signed_in(&b).await;
    assert_eq!(add_token(&b, &session, &[]).await.code, 0);
    b.register("app", "team/app.git", "ci").await;
    // Thousands of branches: far more output than a pipe holds, so the reader is gone while
    // `berth` is still writing, every time.
    let root = b.repos.path().to_owned();
    tokio::task::spawn_blocking(move || berth_testkit::many_refs(&root, "team/many.git", 4000, 0)).await.unwrap();
    let many = b.git.repo_url("team/many.git");

    let status = r#"; echo "berth-exit=${PIPESTATUS[0]}" >&2"#;
    let cases = [
        // The issue's own line: a small answer may or may not meet a closed pipe; it must not panic.
        format!(r#""$BERTH" repo list --json | head -c1 >/dev/null{status}"#),
        format!(r#""$BERTH" repo list | head -c1 >/dev/null{status}"#),
        // A big table and big JSON into a reader that takes one byte.
        format!(r#""$BERTH" repo branches "$MANY" --credential ci | head -c1 >/dev/null{status}"#),
        format!(r#""$BERTH" --json repo refresh "$MANY" --credential ci | head -c1 >/dev/null{status}"#),
        // A reader that is gone before anything is written.
        format!(r#"(sleep 0.3; "$BERTH" repo list) | true{status}"#),
        format!(r#"(sleep 0.3; "$BERTH" --json repo show app) | true{status}"#),
    ];
    for script in &cases {
        let r = berth_with(
            &b,
            &session,
            &[],
            None,
            With { env: &[("MANY", &many)], shell: Some(script), ..With::default() },
        )
        .await;
        assert!(r.stderr.contains("berth-exit=0"), "{script}: {}", r.all());
        for bad in ["panicked", "Broken pipe", "failed printing"] {
            assert!(!r.stderr.contains(bad), "{script}: {bad:?} on stderr: {}", r.stderr);
        }
    }
    // The same command into a reader that reads everything prints everything.
    let r = berth(&b, &session, &["repo", "branches", &many, "--credential", "ci"], None).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("branch-003999"), "the whole list when nobody closes the pipe");
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_refuses_a_data_directory_without_a_database_and_creates_nothing() {
    let b = Berth::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let session = tmp.path().join("session.json");
    // Berth's configuration ignores empty variables: these unset what the helper sets.
    let unset =
        [("BERTH_DATA_DIR", ""), ("BERTH_DATABASE_URL", ""), ("BERTH_MASTER_KEY_FILE", ""), ("BERTH_CONFIG", "")];

    let missing = tmp.path().join("nope");
    let missing_s = missing.display().to_string();
    let r = berth_with(
        &b,
        &session,
        &["admin", "rotate-key", "--data-dir", &missing_s],
        None,
        With { env: &unset, ..With::default() },
    )
    .await;
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("no_database") && r.stderr.contains("does not exist"), "{}", r.stderr);
    assert!(!missing.exists(), "the data directory was created");

    // Run from the wrong folder with no configuration: the default ./berth-data is not there.
    let elsewhere = tmp.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let r = berth_with(
        &b,
        &session,
        &["admin", "rotate-key"],
        None,
        With { env: &unset, cwd: Some(&elsewhere), ..With::default() },
    )
    .await;
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("berth-data") && r.stderr.contains("--data-dir"), "{}", r.stderr);
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0, "something was created in the working directory");

    // A directory that exists but holds no database: refused, and left empty (no key file).
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let empty_s = empty.display().to_string();
    let r = berth_with(
        &b,
        &session,
        &["--json", "admin", "reset-password", "admin", "--password-stdin", "--data-dir", &empty_s],
        Some(&format!("{RESET_ADMIN_PASSWORD}\n")),
        With { env: &unset, ..With::default() },
    )
    .await;
    assert_eq!((r.code, json_code(&r).as_str()), (2, "no_database"), "{}", r.all());
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0, "something was created in the empty directory");

    // The server's real directory, named with --data-dir alone, works.
    if b.db_path().is_some() {
        let data = b.data.path().display().to_string();
        let r = berth_with(
            &b,
            &session,
            &["--json", "admin", "--data-dir", &data, "rotate-key"],
            None,
            With { env: &unset, ..With::default() },
        )
        .await;
        assert_eq!(r.code, 0, "{}", r.all());
        let v: Value = serde_json::from_str(&r.stdout).expect("JSON output");
        assert!(v["active"].is_string() && v["rewrapped"].is_u64(), "{}", r.stdout);
        b.api.list_repositories().await.expect("the server still opens its database");
    }

    let r = berth(&b, &session, &["admin", "--help"], None).await;
    assert_eq!(r.code, 0, "{}", r.all());
    for word in ["--data-dir", "BERTH_DATA_DIR", "BERTH_DATABASE_URL", "BERTH_MASTER_KEY_FILE", "BERTH_CONFIG"] {
        assert!(r.stdout.contains(word), "{word} missing from `berth admin --help`: {}", r.stdout);
    }
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repo_show_and_history_check_print_the_steps() {
    let b = Berth::start().await;
    let (_home, session) = signed_in(&b).await;
    assert_eq!(add_token(&b, &session, &[]).await.code, 0);
    let url = b.git.repo_url("team/app.git");
    let r =
        berth(&b, &session, &["repo", "register", "--name", "app", "--url", &url, "--credential", "ci"], None).await;
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(berth(&b, &session, &["repo", "check", "app"], None).await.code, 0);
    b.register("lib", "team/lib.git", "ci").await;

    let r = berth(&b, &session, &["--json", "repo", "show", "app"], None).await;
    let id = serde_json::from_str::<Value>(&r.stdout).expect("JSON output")["id"].to_string();
    // By name (looked up in the list, which has no steps) as by id.
    for key in ["app", id.as_str()] {
        let r = berth(&b, &session, &["repo", "show", key], None).await;
        assert_eq!(r.code, 0, "{}", r.all());
        for title in [StepName::Url.title(), StepName::GitDiscovery.title(), StepName::DefaultBranch.title()] {
            assert!(r.stdout.contains(title), "{key}: step {title:?} missing: {}", r.stdout);
        }
        let r = berth(&b, &session, &["--json", "repo", "show", key], None).await;
        let v: Value = serde_json::from_str(&r.stdout).expect("JSON output");
        assert_eq!(v["last_check"]["checks"].as_array().map(Vec::len), Some(StepName::ALL.len()), "{}", r.stdout);
    }

    let r = berth(&b, &session, &["--json", "repo", "history", "app"], None).await;
    let v: Value = serde_json::from_str(&r.stdout).expect("JSON output");
    assert_eq!((v[0]["reason"].as_str(), v[1]["reason"].as_str()), (Some("manual"), Some("register")), "{}", r.stdout);
    let first = v[1]["id"].as_i64().unwrap().to_string();
    let r = berth(&b, &session, &["repo", "history", "app", "--check", &first], None).await;
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("register") && r.stdout.contains("Check:"), "{}", r.stdout);
    assert!(r.stdout.contains(StepName::Branches.title()), "the steps: {}", r.stdout);
    let r = berth(&b, &session, &["--json", "repo", "history", "app", "--check", &first], None).await;
    let one: Value = serde_json::from_str(&r.stdout).expect("JSON output");
    assert_eq!(one["id"].to_string(), first);
    assert_eq!(one["reason"], "register");
    assert_eq!(one["checks"].as_array().map(Vec::len), Some(StepName::ALL.len()), "{}", r.stdout);

    // Another repository's check, and one that does not exist, are not this repository's.
    let r = berth(&b, &session, &["--json", "repo", "history", "lib"], None).await;
    let lib: Value = serde_json::from_str(&r.stdout).expect("JSON output");
    let theirs = lib[0]["id"].as_i64().unwrap().to_string();
    for id in [theirs.as_str(), "999999"] {
        let r = berth(&b, &session, &["--json", "repo", "history", "app", "--check", id], None).await;
        assert_eq!((r.code, json_code(&r).as_str()), (3, "not_found"), "{id}: {}", r.all());
    }
    let r = berth(&b, &session, &["repo", "history", "app", "--check", &first, "--limit", "2"], None).await;
    assert_eq!(r.code, 2, "--check shows one check, --limit pages a list: {}", r.all());
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_status_says_who_where_and_until_when() {
    let b = Berth::start().await;
    let home = tempfile::tempdir().unwrap();
    let session = home.path().join("session.json");
    let r = berth(&b, &session, &["auth", "status"], None).await;
    assert_eq!(r.code, 4, "{}", r.all());

    let r = berth(
        &b,
        &session,
        &["auth", "login", "--username", "admin", "--password-stdin"],
        Some(&format!("{ADMIN_PASSWORD}\n")),
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.all());
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&session).unwrap()).unwrap();

    let r = berth(&b, &session, &["auth", "status"], None).await;
    assert_eq!(r.code, 0, "{}", r.all());
    for want in ["admin", b.base.as_str(), "Role", "Expires", " UTC"] {
        assert!(r.stdout.contains(want), "{want:?} missing: {}", r.stdout);
    }
    let r = berth(&b, &session, &["--json", "auth", "status"], None).await;
    let v: Value = serde_json::from_str(&r.stdout).expect("JSON output");
    assert_eq!((v["username"].as_str(), v["role"].as_str()), (Some("admin"), Some("admin")), "{}", r.stdout);
    assert_eq!(v["url"].as_str(), Some(b.base.as_str()));
    assert_eq!(v["expires_at"], saved["expires_at"], "the session's own expiry");
    assert_eq!(v["token_source"], "session");

    // A personal API token from the environment: who it is, and that its expiry is not known here.
    let t = b.api.create_token(&ApiTokenCreate { name: "cli-status".into(), expires_in_days: None }).await.unwrap();
    register_token(&t.token);
    let nobody = home.path().join("none.json");
    let r = berth_with(
        &b,
        &nobody,
        &["--json", "auth", "status"],
        None,
        With { env: &[("BERTH_TOKEN", &t.token)], ..With::default() },
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.all());
    let v: Value = serde_json::from_str(&r.stdout).expect("JSON output");
    assert_eq!((v["username"].as_str(), v["token_source"].as_str()), (Some("admin"), Some("BERTH_TOKEN")));
    assert!(v["expires_at"].is_null(), "{}", r.stdout);

    let r = berth(&b, &session, &["auth", "logout"], None).await;
    assert_eq!(r.code, 0, "{}", r.all());
    let r = berth(&b, &session, &["--json", "auth", "status"], None).await;
    assert_eq!((r.code, json_code(&r).as_str()), (4, "not_logged_in"), "{}", r.all());
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminal_output_speaks_cli_not_web() {
    let b = Berth::start().await;
    let (home, session) = signed_in(&b).await;
    assert_eq!(add_token(&b, &session, &[]).await.code, 0);
    let url = b.git.repo_url("team/app.git");
    let mut said: Vec<Run> = Vec::new();

    // A default branch the remote lacks.
    let r = berth(
        &b,
        &session,
        &["repo", "register", "--name", "app", "--url", &url, "--credential", "ci", "--default-branch", "trnk"],
        None,
    )
    .await;
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.all().contains("branch_not_found"), "{}", r.all());
    said.push(r);

    // A credential that does not exist.
    let r = berth(&b, &session, &["repo", "register", "--name", "app", "--url", &url, "--credential", "nosuch"], None)
        .await;
    assert_eq!(r.code, 3, "{}", r.all());
    assert!(r.all().contains("credential_not_found"), "{}", r.all());
    said.push(r);

    // A failure at an early step (a token cannot sign in over SSH): one line for the steps that
    // did not run, not twelve.
    let r = berth(&b, &session, &["repo", "branches", "ssh://git@example.com/x.git", "--credential", "ci"], None).await;
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stdout.contains("credential_kind_mismatch"), "{}", r.stdout);
    let skipped: Vec<&str> = r.stdout.lines().filter(|l| l.starts_with("skip")).collect();
    assert_eq!(skipped.len(), 1, "{}", r.stdout);
    assert!(skipped[0].contains(&format!("{} later steps", StepName::SSH.len() - 2)), "{}", r.stdout);
    let r2 =
        berth(&b, &session, &["--json", "repo", "branches", "ssh://git@example.com/x.git", "--credential", "ci"], None)
            .await;
    let e: ErrorBody = serde_json::from_str(&r2.stdout).expect("the API's error shape");
    assert_eq!(e.error.checks.len(), StepName::SSH.len(), "--json keeps every step");
    said.push(r);

    // An expired credential's warning.
    let yesterday = (chrono::Utc::now().date_naive() - chrono::Duration::days(1)).to_string();
    let r = berth(
        &b,
        &session,
        &[
            "credential",
            "add",
            "--name",
            "old",
            "--kind",
            "bitbucket_api_token",
            "--email",
            "jo@example.com",
            "--expires-on",
            &yesterday,
            "--secret-stdin",
        ],
        Some(&format!("{TOKEN}\n")),
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.all());
    let r =
        berth(&b, &session, &["repo", "register", "--name", "app", "--url", &url, "--credential", "old"], None).await;
    said.push(r);
    let r = berth(&b, &session, &["repo", "show", "app"], None).await;
    assert!(r.stdout.contains("expired"), "{}", r.stdout);
    said.push(r);

    // A viewer asking for a registrar's action.
    crate::roles::add_user(&b, "vic", VIEWER_PASSWORD, "viewer").await;
    let viewer = home.path().join("viewer.json");
    let r =
        berth(&b, &viewer, &["login", "--username", "vic", "--password-stdin"], Some(&format!("{VIEWER_PASSWORD}\n")))
            .await;
    assert_eq!(r.code, 0, "{}", r.all());
    let r = berth(&b, &viewer, &["repo", "register", "--name", "lib", "--url", &url, "--credential", "ci"], None).await;
    assert_eq!(r.code, 3, "{}", r.all());
    assert!(r.all().contains("forbidden"), "{}", r.all());
    said.push(r);

    // A name locked after repeated failures.
    let mut last = None;
    for _ in 0..6 {
        last = Some(
            berth(
                &b,
                &viewer,
                &["login", "--username", "vic", "--password-stdin"],
                Some(&format!("{WRONG_PASSWORD}\n")),
            )
            .await,
        );
    }
    let r = last.unwrap();
    assert!(r.all().contains("account_locked"), "{}", r.all());
    said.push(r);

    for r in &said {
        for web in ["Refresh", "Admin >", "My account >", "Replace token"] {
            assert!(!r.all().contains(web), "{web:?} in terminal output: {}", r.all());
        }
    }
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn berth_sim_writes_the_config_it_prints() {
    // Built beside `berth` by `cargo test --workspace` (berth-testkit's own tests use it).
    let sim = Path::new(env!("CARGO_BIN_EXE_berth")).with_file_name("berth-sim");
    assert!(sim.exists(), "{} is missing: build the workspace's tests (cargo test --workspace)", sim.display());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("berth.toml");
    let mut child = tokio::process::Command::new(&sim)
        .arg("--write-config")
        .arg(&file)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("berth-sim");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = String::new();
    let read = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.starts_with("Running;") {
                break;
            }
            printed.push_str(&line);
            printed.push('\n');
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(60), read).await.expect("berth-sim started");
    let written = std::fs::read_to_string(&file).expect("the config file");
    let block = printed
        .split("# ---- berth.toml ----\n")
        .nth(1)
        .and_then(|rest| rest.split("# ---- demo credentials").next())
        .expect("the printed berth.toml");
    assert_eq!(block.trim(), written.trim(), "the file is what was printed");
    assert!(printed.contains(&format!("to {}", file.display())), "it says where it wrote: {printed}");
    let path = file.display().to_string();
    let config = berth_server::config::Config::load(&|k| (k == "BERTH_CONFIG").then(|| path.clone()))
        .expect("Berth reads the written file");
    assert_eq!(config.integrations.len(), 3, "{written}");
    let _ = child.kill().await;
}
