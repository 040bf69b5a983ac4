//! The `berth` binary end to end: login, credentials with secrets from stdin, Refresh,
//! registration, checks, exit codes, and `berth admin rotate-key` beside a running server.

use crate::harness::*;
use std::path::Path;
use std::process::Stdio;
use tokio::io::AsyncWriteExt;

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// How to run `berth` beyond the usual: more variables (an empty value unsets one for Berth's
/// configuration, which ignores empty values), a working directory, or a shell pipeline.
#[derive(Default)]
pub struct With<'a> {
    pub env: &'a [(&'a str, &'a str)],
    pub cwd: Option<&'a Path>,
    /// Run `bash -c <script>` with `$BERTH` naming the binary, instead of the binary itself.
    pub shell: Option<&'a str>,
}

/// Log lines the `berth` commands of this process printed (each is scanned).
static CLI_LOG_LINES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

pub async fn berth(b: &Berth, session: &Path, args: &[&str], stdin: Option<&str>) -> Run {
    berth_with(b, session, args, stdin, With::default()).await
}

pub async fn berth_with(b: &Berth, session: &Path, args: &[&str], stdin: Option<&str>, with: With<'_>) -> Run {
    let mut cmd = match with.shell {
        Some(script) => {
            let mut c = tokio::process::Command::new("bash");
            c.arg("-c").arg(script).env("BERTH", env!("CARGO_BIN_EXE_berth"));
            c
        }
        None => tokio::process::Command::new(env!("CARGO_BIN_EXE_berth")),
    };
    cmd.args(args)
        .env("BERTH_URL", &b.base)
        .env("BERTH_SESSION_FILE", session)
        .env("BERTH_DATA_DIR", b.data.path())
        .env("BERTH_DATABASE_URL", &b.database_url)
        .env_remove("BERTH_TOKEN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    child_log_env(&mut cmd);
    for (k, v) in with.env {
        cmd.env(k, v);
    }
    if let Some(dir) = with.cwd {
        cmd.current_dir(dir);
    }
    let mut child = cmd.spawn().expect("berth binary");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).await.unwrap();
    }
    drop(input);
    let out = child.wait_with_output().await.unwrap();
    // Its log lines (RUST_LOG asks for them all) are told apart from what it says to a
    // person, so the assertions below judge the latter alone; both are scanned.
    let (logs, stderr) = split_log_lines(&String::from_utf8_lossy(&out.stderr));
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr,
    };
    assert_no_secret_in_output(&format!("the output of berth {args:?}"), run.all().as_bytes());
    assert_no_secret_in_output(&format!("the log of berth {args:?}"), logs.as_bytes());
    CLI_LOG_LINES.fetch_add(logs.lines().count(), std::sync::atomic::Ordering::SeqCst);
    run
}

/// `berth login` as the administrator, the password from stdin.
pub async fn login(b: &Berth, session: &Path, password: &str) -> Run {
    berth(b, session, &["login", "--username", "admin", "--password-stdin"], Some(&format!("{password}\n"))).await
}

/// A private home for the CLI's session file, and the administrator logged in there.
pub async fn signed_in(b: &Berth) -> (tempfile::TempDir, std::path::PathBuf) {
    let home = tempfile::tempdir().unwrap();
    let session = home.path().join("session.json");
    assert_eq!(login(b, &session, ADMIN_PASSWORD).await.code, 0);
    (home, session)
}

/// `berth credential add` of the API token the test Git server accepts, as `ci`, with `extra`
/// options; the secret from stdin.
pub async fn add_token(b: &Berth, session: &Path, extra: &[&str]) -> Run {
    let mut args =
        vec!["credential", "add", "--name", "ci", "--kind", "bitbucket_api_token", "--email", "jo@example.com"];
    args.extend_from_slice(extra);
    args.push("--secret-stdin");
    berth(b, session, &args, Some(&format!("{TOKEN}\n"))).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_flow_from_login_to_checks() {
    let b = Berth::start().await;
    let home = tempfile::tempdir().unwrap();
    let session = home.path().join("session.json");

    let r = berth(&b, &session, &["repo", "list"], None).await;
    assert_eq!(r.code, 4, "not logged in has its own exit code: {}", r.all());
    assert!(r.all().contains("berth login"), "{}", r.all());

    let r = login(&b, &session, ADMIN_PASSWORD).await;
    assert_eq!(r.code, 0, "{}", r.all());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&session).unwrap().permissions().mode() & 0o777, 0o600);
    }

    let r = add_token(&b, &session, &["--scope", "read:repository:bitbucket"]).await;
    assert_eq!(r.code, 0, "{}", r.all());

    let r = berth(
        &b,
        &session,
        &[
            "credential",
            "add",
            "--name",
            "old",
            "--kind",
            "bitbucket_app_password",
            "--username",
            "jo",
            "--secret-stdin",
        ],
        Some(&format!("{APP_PASSWORD}\n")),
    )
    .await;
    assert_eq!(r.code, 3, "a refusal, no check ran: {}", r.all());
    assert!(r.all().contains("app_password_retired"), "{}", r.all());

    let url = b.git.repo_url("team/app.git");
    let r = berth(&b, &session, &["repo", "branches", "git", "clone", &url, "--credential", "ci"], None).await;
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("trunk") && r.stdout.contains("feature/login"), "{}", r.stdout);

    let r = berth(&b, &session, &["--json", "repo", "branches", &url, "--credential", "ci"], None).await;
    assert_eq!(r.code, 0, "{}", r.all());
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("JSON output");
    assert_eq!(v["default_branch"], "trunk");

    let r = berth(
        &b,
        &session,
        &["repo", "register", "--name", "app", "--url", &url, "--credential", "ci", "--default-branch", "trnk"],
        None,
    )
    .await;
    assert_eq!(r.code, 1, "the registration's check failed: {}", r.all());
    assert!(r.all().contains("branch_not_found") && r.all().contains("trunk"), "{}", r.all());

    let r =
        berth(&b, &session, &["repo", "register", "--name", "app", "--url", &url, "--credential", "ci"], None).await;
    assert_eq!(r.code, 0, "{}", r.all());

    let r = berth(&b, &session, &["--json", "repo", "list"], None).await;
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("JSON output");
    assert_eq!(v[0]["name"], "app");
    assert_eq!(v[0]["default_branch"], "trunk");
    let r = berth(&b, &session, &["repo", "list"], None).await;
    assert!(r.stdout.contains("app") && r.stdout.contains("trunk"), "{}", r.stdout);

    let r = berth(&b, &session, &["repo", "check", "app"], None).await;
    assert_eq!(r.code, 0, "{}", r.all());

    let r = berth(&b, &session, &["credential", "rm", "ci"], None).await;
    assert_eq!(r.code, 3, "refused by the server: {}", r.all());
    assert!(r.all().contains("credential_in_use"), "{}", r.all());

    // The master key is rotated beside the running server, which keeps opening secrets.
    let r = berth(&b, &session, &["admin", "rotate-key"], None).await;
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("1 secret(s) re-wrapped"), "{}", r.stdout);
    let r = berth(&b, &session, &["repo", "check", "app"], None).await;
    assert_eq!(r.code, 0, "after rotation: {}", r.all());

    // A wrong token: replacing it re-checks the repository at once, prints the failure and
    // exits 1 (the token is saved all the same, and the output says so); so does the next check.
    let r = berth(
        &b,
        &session,
        &["credential", "update", "ci", "--secret-stdin"],
        Some(&format!("{WRONG_TOKEN_FROM_STDIN}\n")),
    )
    .await;
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stdout.contains("FAILED") && r.stdout.contains("The change is saved"), "{}", r.all());
    let r = berth(&b, &session, &["repo", "check", "app"], None).await;
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.all().contains("auth_failed"), "{}", r.all());

    let r = berth(&b, &session, &["repo", "frobnicate"], None).await;
    assert_eq!(r.code, 2, "{}", r.all());

    let r = berth(&b, &session, &["logout"], None).await;
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(!session.exists());
    assert!(
        CLI_LOG_LINES.load(std::sync::atomic::Ordering::SeqCst) > 0,
        "the berth commands printed no log line to scan"
    );
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_reset_password_works_offline() {
    let b = Berth::start().await;
    let home = tempfile::tempdir().unwrap();
    let session = home.path().join("session.json");
    let r = berth(
        &b,
        &session,
        &["admin", "reset-password", "admin", "--password-stdin"],
        Some(&format!("{RESET_ADMIN_PASSWORD}\n")),
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.all());
    let r = login(&b, &session, ADMIN_PASSWORD).await;
    assert_eq!(r.code, 4, "the old password no longer works (401): {}", r.all());
    let r = login(&b, &session, RESET_ADMIN_PASSWORD).await;
    assert_eq!(r.code, 0, "{}", r.all());
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_shows_status_warnings_and_history_and_checks_all() {
    let b = Berth::start().await;
    let home = tempfile::tempdir().unwrap();
    let session = home.path().join("session.json");
    let r = login(&b, &session, ADMIN_PASSWORD).await;
    assert_eq!(r.code, 0, "{}", r.all());
    let soon = (chrono::Utc::now().date_naive() + chrono::Duration::days(6)).to_string();
    let r = add_token(&b, &session, &["--expires-on", &soon]).await;
    assert_eq!(r.code, 0, "{}", r.all());
    let url = b.git.repo_url("team/app.git");
    let r =
        berth(&b, &session, &["repo", "register", "--name", "app", "--url", &url, "--credential", "ci"], None).await;
    assert_eq!(r.code, 0, "{}", r.all());

    let r = berth(&b, &session, &["repo", "list"], None).await;
    assert!(r.stdout.contains("STATUS") && r.stdout.contains("warn !"), "{}", r.stdout);
    assert!(r.stdout.contains("1 repository needs attention"), "{}", r.stdout);
    let r = berth(&b, &session, &["repo", "show", "app"], None).await;
    assert!(r.stdout.contains("expires in 6 days") && r.stdout.contains("token_expires_soon"), "{}", r.stdout);
    assert!(r.stdout.contains("Next check"), "{}", r.stdout);

    let r = berth(&b, &session, &["repo", "check", "app"], None).await;
    assert_eq!(r.code, 0, "{}", r.all());
    let r = berth(&b, &session, &["repo", "history", "app"], None).await;
    assert_eq!(r.code, 0, "{}", r.all());
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "a header and two checks: {}", r.stdout);
    assert!(lines[1].contains("manual") && lines[2].contains("register"), "{}", r.stdout);
    let r = berth(&b, &session, &["--json", "repo", "history", "app", "--limit", "1"], None).await;
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("JSON output");
    assert_eq!(v.as_array().map(Vec::len), Some(1));
    assert_eq!(v[0]["reason"], "manual");

    let r = berth(&b, &session, &["repo", "check-all"], None).await;
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("1 repository will be checked in the background"), "{}", r.stdout);
    b.stop().await;
}
