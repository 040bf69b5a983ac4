use berth_core::NetworkPolicy;
use berth_git::{GitAuth, GitClient, GitClientConfig, GitError, RemoteRefs};
use berth_testkit::{GitServer, GitServerOptions};
use std::time::Duration;
use tempfile::TempDir;
use url::Url;

pub const USER: &str = "ci-bot";
pub const PASSWORD: &str = "s3cr3t-P@ss-never-shown";

pub fn local_policy() -> NetworkPolicy {
    NetworkPolicy::parse_allow_list("127.0.0.0/8,::1").expect("allow list")
}

pub fn config() -> GitClientConfig {
    GitClientConfig { policy: local_policy(), request_timeout: Duration::from_secs(30), ..GitClientConfig::default() }
}

pub fn client() -> GitClient {
    GitClient::new(config()).expect("client")
}

pub fn basic(password: &str) -> GitAuth {
    GitAuth::Basic { username: USER.to_owned(), password: password.to_owned().into() }
}

/// A root directory of bare repositories and a server over it.
pub struct Fixture {
    pub root: TempDir,
    pub server: GitServer,
}

pub async fn fixture(opts: GitServerOptions) -> Fixture {
    let root = tempfile::tempdir().expect("tempdir");
    let server = GitServer::start(root.path(), opts).await;
    Fixture { root, server }
}

pub fn v0() -> GitServerOptions {
    GitServerOptions { protocol_v2: false, ..GitServerOptions::default() }
}

pub fn with_user() -> GitServerOptions {
    GitServerOptions { users: vec![(USER.to_owned(), PASSWORD.to_owned())], ..GitServerOptions::default() }
}

pub fn url(s: &str) -> Url {
    Url::parse(s).expect("url")
}

pub async fn list(client: &GitClient, repo_url: &str, auth: Option<&GitAuth>) -> Result<RemoteRefs, GitError> {
    client.ls_refs(&url(repo_url), auth).await
}

pub async fn list_ok(client: &GitClient, repo_url: &str, auth: Option<&GitAuth>) -> RemoteRefs {
    match list(client, repo_url, auth).await {
        Ok(r) => r,
        Err(e) => panic!("listing {repo_url} failed: {e:?}"),
    }
}

pub async fn list_err(client: &GitClient, repo_url: &str, auth: Option<&GitAuth>) -> GitError {
    match list(client, repo_url, auth).await {
        Ok(r) => panic!("listing {repo_url} should fail, got {r:?}"),
        Err(e) => e,
    }
}

pub fn names(r: &RemoteRefs) -> Vec<&str> {
    r.branches.iter().map(|b| b.name.as_str()).collect()
}
