//! The password must not show up in errors, Debug output or logs, whatever happens.

use crate::common::*;
use berth_git::{GitClient, GitClientConfig};
use berth_testkit::{bare_repo, CaptureServer};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn secret_never_appears_in_errors_debug_or_logs() {
    const SECRET: &str = "Tr0ub4dor-unique-secret-8841";
    let logs = Buf::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    // A current-thread runtime keeps every task on this thread, under this subscriber.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut seen = Vec::new();
    tracing::subscriber::with_default(subscriber, || {
        rt.block_on(async {
            let f = fixture(with_user()).await;
            bare_repo(f.root.path(), "app.git", "main", &["main"]);
            let capture = CaptureServer::start().await;
            f.server.set_redirect_target(&capture.base_url());
            let base = f.server.base_url();
            let quick = GitClient::new(GitClientConfig { request_timeout: Duration::from_secs(1), ..config() }).unwrap();
            let auths = [basic(SECRET), berth_git::GitAuth::Bearer(SECRET.to_owned().into())];
            seen.push(format!("{:?}", auths));
            for auth in &auths {
                for path in ["git/app.git", "moved/app.git", "forbidden/app.git", "login/app.git", "stall/app.git", "git/missing.git"] {
                    let e = list_err(&quick, &format!("{base}/{path}"), Some(auth)).await;
                    seen.push(format!("{e:?} {e} {}", e.to_step().message));
                }
            }
            seen.push(format!("{quick:?}"));
        })
    });
    let logs = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    assert!(logs.contains("git http request"), "debug logs were not captured");
    seen.push(logs);
    let basic_header = format!("{USER}:{SECRET}");
    for text in seen {
        assert!(!text.contains(SECRET), "secret leaked: {text}");
        assert!(!text.contains(&basic_header), "secret leaked: {text}");
    }
}
