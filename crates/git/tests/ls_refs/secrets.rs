//! The password must not show up in errors, Debug output or logs, whatever happens.

use crate::common::*;
use berth_git::{GitAuth, GitClient, GitClientConfig};
use berth_testkit::{bare_repo, CaptureServer};
use std::time::Duration;

const SECRET: &str = "Tr0ub4dor-unique-secret-8841";
const LOG_FILE_VAR: &str = "BERTH_GIT_TEST_LOG_FILE";

/// Runs every failure route with both kinds of credential; returns everything printed about it.
async fn exercise() -> Vec<String> {
    let f = fixture(with_user()).await;
    bare_repo(f.root.path(), "app.git", "main", &["main"]);
    let capture = CaptureServer::start().await;
    f.server.set_redirect_target(&capture.base_url());
    let base = f.server.base_url();
    let quick = GitClient::new(GitClientConfig { request_timeout: Duration::from_secs(1), ..config() }).unwrap();
    let auths = [basic(SECRET), GitAuth::Bearer(SECRET.to_owned().into())];
    let mut seen = vec![format!("{auths:?} {quick:?}")];
    for auth in &auths {
        for path in ["git/app.git", "moved/app.git", "forbidden/app.git", "login/app.git", "stall/app.git", "git/missing.git"] {
            let e = list_err(&quick, &format!("{base}/{path}"), Some(auth)).await;
            seen.push(format!("{e:?} {e} {:?}", e.to_step()));
        }
    }
    assert!(capture.requests().is_empty());
    seen
}

fn assert_no_secret(texts: &[String]) {
    let basic_pair = format!("{USER}:{SECRET}");
    for text in texts {
        assert!(!text.contains(SECRET) && !text.contains(&basic_pair), "secret leaked: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_never_appears_in_errors_or_debug_output() {
    assert_no_secret(&exercise().await);
}

/// Logs are checked in a child process: a global subscriber there sees every thread, which a
/// scoped one in this shared test process does not reliably do.
#[test]
fn secret_never_appears_in_logs() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("trace.log");
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "secrets::log_capture_child", "--ignored", "--test-threads=1", "--quiet"])
        .env(LOG_FILE_VAR, &log)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "child test failed");
    let logs = std::fs::read_to_string(&log).unwrap();
    assert!(logs.contains("git http request"), "debug logs were not captured");
    assert_no_secret(&[logs]);
}

#[test]
#[ignore = "run by secret_never_appears_in_logs in a child process"]
fn log_capture_child() {
    let Some(path) = std::env::var_os(LOG_FILE_VAR) else { return };
    let file = std::sync::Arc::new(std::fs::File::create(path).unwrap());
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(file)
        .init();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let seen = rt.block_on(exercise());
    assert_no_secret(&seen);
}
