#![allow(clippy::unwrap_used)]
use berth_git::*;
use std::time::Duration;
#[tokio::main]
async fn main() {
    let root = tempfile::tempdir().unwrap();
    let s = berth_testkit::GitServer::start(root.path(), berth_testkit::GitServerOptions { users: vec![("u".into(), "p".into())], ..Default::default() }).await;
    let cap = berth_testkit::CaptureServer::start().await;
    s.set_redirect_target(&cap.base_url());
    berth_testkit::bare_repo(root.path(), "app.git", "main", &["main"]);
    let cfg = GitClientConfig { policy: berth_core::NetworkPolicy::parse_allow_list("127.0.0.0/8").unwrap(), request_timeout: Duration::from_secs(1), max_advertisement_bytes: 100_000, ..Default::default() };
    let c = GitClient::new(cfg).unwrap();
    let auth = GitAuth::Basic { username: "u".into(), password: "x".to_string().into() };
    for p in ["git/app.git", "git/missing.git", "moved/app.git", "login/a.git", "dumb/a.git", "stall/a.git", "huge/a.git", "forbidden/a.git", "ratelimited/a.git"] {
        let r = c.ls_refs(&url::Url::parse(&format!("{}/{p}", s.base_url())).unwrap(), Some(&auth)).await;
        match r { Ok(r) => println!("{p}: OK {r:?}"), Err(e) => println!("{p}: [{:?}/{}] {}\n   remedy: {}\n   details: {:?}", e.stage, e.code, e.message, e.remedy, e.details) }
    }
    let d = GitClient::new(GitClientConfig::default()).unwrap();
    for u in ["http://localhost:1/x.git", "http://169.254.169.254/x.git", "http://[::1]:80/x.git"] {
        let e = d.ls_refs(&url::Url::parse(u).unwrap(), None).await.unwrap_err();
        println!("{u}: [{:?}/{}] {}\n   remedy: {}\n   details: {:?}", e.stage, e.code, e.message, e.remedy, e.details);
    }
    let e = c.ls_refs(&url::Url::parse("http://127.0.0.1:1/x.git").unwrap(), None).await.unwrap_err();
    println!("refused: [{:?}/{}] {}\n   details: {:?}", e.stage, e.code, e.message, e.details);
    let e = c.ls_refs(&url::Url::parse(&format!("https://{}/git/app.git", s.base_url().trim_start_matches("http://"))).unwrap(), None).await.unwrap_err();
    println!("https-to-http-port: [{:?}/{}] {}\n   details: {:?}", e.stage, e.code, e.message, e.details);
}
