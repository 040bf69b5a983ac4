#![allow(clippy::unwrap_used)]
use berth_git::*;
fn hwm() -> String { std::fs::read_to_string("/proc/self/status").unwrap().lines().filter(|l| l.starts_with("VmHWM") || l.starts_with("VmRSS")).collect::<Vec<_>>().join(" ") }
#[tokio::main]
async fn main() {
    let v2 = std::env::args().nth(1).as_deref() != Some("v0");
    let root = tempfile::tempdir().unwrap();
    berth_testkit::many_refs(root.path(), "big.git", 50_000, 200_000);
    let s = berth_testkit::GitServer::start(root.path(), berth_testkit::GitServerOptions { protocol_v2: v2, ..Default::default() }).await;
    println!("before: {}", hwm());
    let cfg = GitClientConfig { policy: berth_core::NetworkPolicy::parse_allow_list("127.0.0.0/8").unwrap(), ..Default::default() };
    let c = GitClient::new(cfg).unwrap();
    let t = std::time::Instant::now();
    let r = c.ls_refs(&url::Url::parse(&s.repo_url("big.git")).unwrap(), None).await.unwrap();
    println!("{:?} branches={} received={} in {:?}; after: {}", r.protocol, r.branches.len(), r.refs_received, t.elapsed(), hwm());
}
