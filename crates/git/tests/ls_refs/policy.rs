use crate::common::*;
use berth_core::Code;
use berth_git::{GitClient, GitClientConfig, Stage};
use berth_testkit::bare_repo;

fn default_policy_client() -> GitClient {
    GitClient::new(GitClientConfig::default()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_policy_refuses_loopback_literal_before_any_request() {
    let f = fixture(Default::default()).await;
    bare_repo(f.root.path(), "app.git", "main", &["main"]);
    let e = list_err(&default_policy_client(), &f.server.repo_url("app.git"), None).await;
    assert_eq!((e.code, e.stage), (Code::DestinationForbidden, Stage::Dns));
    assert!(e.message.contains("127.0.0.1") && e.message.contains("loopback"), "{}", e.message);
    assert!(e.remedy.contains("BERTH_NETWORK_ALLOW"), "{}", e.remedy);
    assert!(f.server.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_policy_refuses_a_name_resolving_to_loopback() {
    let f = fixture(Default::default()).await;
    bare_repo(f.root.path(), "app.git", "main", &["main"]);
    let url = format!("http://localhost:{}/git/app.git", f.server.port());
    let e = list_err(&default_policy_client(), &url, None).await;
    assert_eq!((e.code, e.stage), (Code::DestinationForbidden, Stage::Dns));
    assert!(e.message.contains("localhost resolves to a loopback address"), "{}", e.message);
    assert!(f.server.requests().is_empty());

    let e = default_policy_client().probe("localhost", f.server.port()).await.unwrap_err();
    assert_eq!(e.code, Code::DestinationForbidden);
    assert!(f.server.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_list_admits_loopback_names_and_literals() {
    let f = fixture(Default::default()).await;
    bare_repo(f.root.path(), "app.git", "main", &["main"]);
    let url = format!("http://localhost:{}/git/app.git", f.server.port());
    let r = list_ok(&client(), &url, None).await;
    assert_eq!(names(&r), ["main"]);

    let p = client().probe("localhost", f.server.port()).await.unwrap();
    assert!(p.addrs.iter().any(|a| a.is_loopback()));
    assert_eq!(p.connected_to.port(), f.server.port());
    let p = client().probe("127.0.0.1", f.server.port()).await.unwrap();
    assert_eq!(p.connected_to.to_string(), format!("127.0.0.1:{}", f.server.port()));
}
