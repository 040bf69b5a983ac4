//! `berth serve` child processes: for tests that need several instances or a SIGKILL.

use super::child_log_env;
use reqwest::StatusCode;
use std::path::Path;
use std::process::Stdio;

/// A port nothing listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `berth serve` on `127.0.0.1:port`, on the database `db` with `dir` as its data directory,
/// loopback allowed, its output (at the suite's log filter) written to `log`, killed when
/// dropped. Add further environment before spawning.
pub fn serve_command(port: u16, db: &str, dir: &Path, log: &Path) -> tokio::process::Command {
    let log = std::fs::File::create(log).unwrap();
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_berth"));
    child_log_env(&mut cmd);
    cmd.arg("serve")
        .env("BERTH_LISTEN", format!("127.0.0.1:{port}"))
        .env("BERTH_DATABASE_URL", db)
        .env("BERTH_DATA_DIR", dir)
        .env("BERTH_NETWORK_ALLOW", "127.0.0.0/8")
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .kill_on_drop(true);
    cmd
}

/// Whether a `berth serve` process at `base` answered `/readyz` with 200 within 30 seconds.
/// (Raw: readiness is an HTTP probe, not an API call.)
pub async fn serve_ready(base: &str) -> bool {
    let http = reqwest::Client::new();
    for _ in 0..300 {
        if http.get(format!("{base}/readyz")).send().await.is_ok_and(|r| r.status() == StatusCode::OK) {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    false
}
