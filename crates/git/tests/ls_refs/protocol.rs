use crate::common::*;
use berth_git::Protocol;
use berth_testkit::{bare_repo, empty_repo, many_refs, rev_parse};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_and_forced_v0_report_the_same_branches_and_default() {
    let v2 = fixture(Default::default()).await;
    let repo = bare_repo(v2.root.path(), "team/app.git", "main", &["main", "feature/x", "release/1.0"]);
    let v0 = berth_testkit::GitServer::start(v2.root.path(), v0()).await;
    let c = client();

    let a = list_ok(&c, &v2.server.repo_url("team/app.git"), None).await;
    let b = list_ok(&c, &v0.repo_url("team/app.git"), None).await;
    assert_eq!(a.protocol, Protocol::V2);
    assert_eq!(b.protocol, Protocol::V0);
    assert_eq!(names(&a), ["feature/x", "main", "release/1.0"]);
    assert_eq!(a.branches, b.branches);
    assert_eq!(a.default_branch.as_deref(), Some("main"));
    assert_eq!(b.default_branch.as_deref(), Some("main"));
    assert!(!a.head_unborn && !b.head_unborn);
    for br in &a.branches {
        assert_eq!(br.commit, rev_parse(&repo, &format!("refs/heads/{}", br.name)));
    }
    // The v2 client announced v2; the forced-v0 server ignored it.
    assert!(v2.server.requests().iter().all(|r| r.git_protocol.as_deref() == Some("version=2")));
    assert_eq!(v2.server.requests().iter().map(|r| r.method.as_str()).collect::<Vec<_>>(), ["GET", "POST"]);
    assert_eq!(v0.requests().len(), 1, "v0 needs only the discovery request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_repository_reports_its_unborn_default_branch() {
    let f = fixture(Default::default()).await;
    empty_repo(f.root.path(), "empty.git", "main");
    let r = list_ok(&client(), &f.server.repo_url("empty.git"), None).await;
    assert_eq!(r.protocol, Protocol::V2);
    assert!(r.head_unborn);
    assert!(r.branches.is_empty());
    assert_eq!(r.default_branch.as_deref(), Some("main"));

    // v0 cannot name an unborn HEAD, but still sees an empty repository.
    let v0 = berth_testkit::GitServer::start(f.root.path(), v0()).await;
    let r = list_ok(&client(), &v0.repo_url("empty.git"), None).await;
    assert_eq!((r.protocol, r.head_unborn, r.branches.len()), (Protocol::V0, true, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_branch_other_than_main() {
    let f = fixture(Default::default()).await;
    bare_repo(f.root.path(), "trunk.git", "trunk", &["main", "trunk"]);
    let r = list_ok(&client(), &f.server.repo_url("trunk.git"), None).await;
    assert_eq!(r.default_branch.as_deref(), Some("trunk"));
    assert_eq!(names(&r), ["main", "trunk"]);
    // A trailing slash on the URL is tolerated.
    let r = list_ok(&client(), &format!("{}/", f.server.repo_url("trunk.git")), None).await;
    assert_eq!(r.default_branch.as_deref(), Some("trunk"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_thousand_branches_and_two_hundred_thousand_tags_over_v2() {
    let f = fixture(Default::default()).await;
    let root = f.root.path().to_path_buf();
    tokio::task::spawn_blocking(move || many_refs(&root, "big.git", 50_000, 200_000)).await.expect("build repo");
    let r = list_ok(&client(), &f.server.repo_url("big.git"), None).await;
    assert_eq!(r.protocol, Protocol::V2);
    assert_eq!(r.branches.len(), 50_000);
    assert_eq!(r.default_branch.as_deref(), Some("main"));
    assert_eq!(r.branches[0].name, "branch-000001");
    assert_eq!(r.branches[49_999].name, "main");
    // ref-prefix did its job: HEAD and the branches crossed the wire, no tag did.
    assert_eq!(r.refs_received, 50_001);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_refs_over_v0() {
    let f = fixture(v0()).await;
    let root = f.root.path().to_path_buf();
    tokio::task::spawn_blocking(move || many_refs(&root, "big.git", 5_000, 20_000)).await.expect("build repo");
    let r = list_ok(&client(), &f.server.repo_url("big.git"), None).await;
    assert_eq!(r.protocol, Protocol::V0);
    assert_eq!(r.branches.len(), 5_000);
    assert_eq!(r.default_branch.as_deref(), Some("main"));
    // v0 sends everything: HEAD, branches and tags.
    assert_eq!(r.refs_received, 25_001);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_succeeds_with_the_right_password() {
    let f = fixture(with_user()).await;
    bare_repo(f.root.path(), "private.git", "main", &["main"]);
    let r = list_ok(&client(), &f.server.repo_url("private.git"), Some(&basic(PASSWORD))).await;
    assert_eq!(names(&r), ["main"]);
    assert!(f.server.requests().iter().all(|r| r.authorization));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_origin_redirect_is_followed_with_credentials() {
    let f = fixture(with_user()).await;
    bare_repo(f.root.path(), "team/app.git", "main", &["main", "dev"]);
    let start = format!("{}/same-origin-redirect/team/app.git", f.server.base_url());
    let r = list_ok(&client(), &start, Some(&basic(PASSWORD))).await;
    assert_eq!(names(&r), ["dev", "main"]);
    let paths: Vec<String> = f.server.requests().iter().map(|r| format!("{} {}", r.method, r.path)).collect();
    assert_eq!(
        paths,
        [
            "GET /same-origin-redirect/team/app.git/info/refs",
            "GET /git/team/app.git/info/refs",
            // ls-refs goes where discovery ended up, as git does.
            "POST /git/team/app.git/git-upload-pack",
        ]
    );
}
