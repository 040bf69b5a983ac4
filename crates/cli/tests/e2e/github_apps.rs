//! GitHub App credentials end to end against the simulator's GitHub (apps, installations,
//! RS256 JWTs checked with the app's public key, installation tokens): Refresh, registration
//! and verification through the API, the findings for an app not installed on the owner, a
//! repository the installation did not select, a missing permission and a clock GitHub
//! refuses, and the leak scan over the app's private key and every token minted for it. The
//! key is made by the system's `openssl` in the test.

use crate::cli::{berth, signed_in};
use crate::harness::*;
use berth_core::{Code, CredentialKind, StepName, StepStatus};
use berth_proto::{CredentialCreate, CredentialVerify, RemoteBranchesRequest};
use berth_testkit::sim::{make_app_private_key, GitHubApp, Host, Installation, RepoSpec, Sim};

const APP_ID: i64 = 4242;

/// Every line of the key's body is a secret the scan looks for, whatever quotes it.
fn register_key(pem: &str) {
    for line in pem.lines().filter(|l| !l.starts_with("-----") && l.len() >= MIN_SECRET_LEN) {
        register_secret("a GitHub App's private key", line);
    }
}

/// The installation tokens the simulator minted: none may appear anywhere either.
fn register_minted(sim: &Sim) {
    for t in sim.update(|w| w.installation_tokens.clone()) {
        register_secret("a GitHub App installation token", &t.token);
    }
}

async fn world(key: &str) -> Sim {
    Sim::builder()
        .github_repo("acme/app", RepoSpec::new(&["main", "develop"]))
        .github_repo("acme/secret", RepoSpec::new(&["main"]))
        .github_repo("octo/lib", RepoSpec::new(&["main"]))
        .github_repo("solo/tool", RepoSpec::new(&["main"]))
        .github_app(GitHubApp::new(APP_ID, "berth-checker", "Berth Checker", "acme", key))
        .installation(Installation::selected(71, APP_ID, "acme", &["acme/app"]))
        .installation(Installation::all(72, APP_ID, "octo").permissions(&[("metadata", "read"), ("issues", "write")]))
        .start()
        .await
}

fn config(sim: &Sim) -> String {
    format!(
        "[[integrations]]\nhost = \"127.0.0.1:{}\"\nprovider = \"github\"\napi_url = \"{}\"\n",
        sim.github_port(),
        sim.github_api_url()
    )
}

fn app_credential(name: &str, key: &str, installation: Option<i64>) -> CredentialCreate {
    CredentialCreate {
        app_id: Some(APP_ID.to_string()),
        installation_id: installation,
        ..new_credential(name, CredentialKind::GithubApp, key)
    }
}

fn refresh(url: &str, credential: &str) -> RemoteBranchesRequest {
    remote(url, credential)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_github_app_reads_what_its_installations_allow_and_says_why_not() {
    let key = make_app_private_key();
    register_key(&key);
    let sim = world(&key).await;
    let b = Berth::start_with(Options { config_toml: Some(config(&sim)), ..Options::default() }).await;

    // Stored with its key sealed; verified on the host: the app's name and installations.
    let host = format!("127.0.0.1:{}", sim.github_port());
    let c = b
        .api
        .create_credential(&CredentialCreate { host: Some(host), ..app_credential("app", &key, None) })
        .await
        .unwrap();
    assert_eq!(b.api.status(), 201);
    assert_eq!((c.app_id.as_deref(), c.installation_id), (Some("4242"), None));
    assert_eq!(c.kind_label, "GitHub App");
    let steps = &c.verification.steps;
    let app = step(steps, StepName::ApiCredential);
    assert!(app.message.contains("GitHub App Berth Checker (berth-checker, app id 4242)"), "{}", app.message);
    let installed = step(steps, StepName::ApiScopes);
    assert!(installed.message.contains("acme (installation 71, selected repositories)"), "{}", installed.message);
    assert!(installed.message.contains("octo (installation 72, all repositories)"), "{}", installed.message);

    // A repository of the installation: every step passes, Git reads it with the minted token.
    let url = sim.github_git_url("acme/app");
    let rb = b.api.remote_branches(&refresh(&url, "app")).await.unwrap();
    assert_eq!(rb.branches.len(), 2, "{}", codes(&rb.checks));
    let perms = step(&rb.checks, StepName::ApiScopes);
    assert!(perms.message.contains("installation 71 on acme grants"), "{}", perms.message);
    let git = step(&rb.checks, StepName::GitDiscovery);
    assert!(git.message.contains("x-access-token"), "{}", git.message);
    let r = b.api.create_repository(&new_repository("app", &url, "app")).await.unwrap();
    assert_eq!(b.api.status(), 201);
    // The token is cached: a second check mints no new one.
    let minted = sim.update(|w| w.installation_tokens.len());
    b.api.check_repository(r.id).await.unwrap();
    assert_eq!(sim.update(|w| w.installation_tokens.len()), minted, "the cached token was used");
    let git_requests: Vec<_> =
        sim.requests(Host::GitHub).into_iter().filter(|q| q.path.starts_with("/acme/app.git")).collect();
    assert!(git_requests.iter().any(|q| q.basic_username.as_deref() == Some("x-access-token")), "{git_requests:?}");

    // Installed on acme, but acme/secret is not selected.
    let e = refused(b.api.remote_branches(&refresh(&sim.github_git_url("acme/secret"), "app")).await);
    assert_eq!(status_code(&e), (Some(422), Some(Code::AppRepositoryNotSelected)), "{e}");
    let s = step(e.checks(), StepName::ApiRepository);
    assert!(s.message.contains("installed on acme (installation 71)"), "{}", s.message);

    // Not installed on solo: the owner and the install link.
    let e = refused(b.api.remote_branches(&refresh(&sim.github_git_url("solo/tool"), "app")).await);
    assert_eq!(status_code(&e), (Some(422), Some(Code::AppNotInstalled)), "{e}");
    let s = step(e.checks(), StepName::ApiRepository);
    assert!(s.message.contains("not installed on solo"), "{}", s.message);
    assert!(s.remedy.contains("/apps/berth-checker/installations/new"), "{}", s.remedy);
    assert_eq!(step(e.checks(), StepName::GitDiscovery).status, StepStatus::Skip);

    // Installed on octo without contents: read.
    let e = refused(b.api.remote_branches(&refresh(&sim.github_git_url("octo/lib"), "app")).await);
    assert_eq!(status_code(&e), (Some(422), Some(Code::AppPermissionMissing)), "{e}");
    assert!(step(e.checks(), StepName::ApiScopes).message.contains("contents: read"));

    // A fixed installation that does not select the repository.
    b.api.create_credential(&app_credential("octo-only", &key, Some(72))).await.unwrap();
    let e = refused(b.api.remote_branches(&refresh(&url, "octo-only")).await);
    assert_eq!(status_code(&e), (Some(422), Some(Code::AppPermissionMissing)), "{e}");

    // GitHub's clock ten minutes behind ours: the JWT's iat is in its future.
    sim.clock().set(chrono::Utc::now() - chrono::Duration::minutes(10));
    let check = b.api.check_repository(r.id).await.unwrap();
    let s = step(&check.checks, StepName::ApiCredential);
    assert_eq!(s.code, Code::ClockSkew, "{}", codes(&check.checks));
    assert!(s.message.contains("iat") && s.message.contains("exp"), "{}", s.message);
    assert!(s.remedy.contains("clock"), "{}", s.remedy);

    // A key that is not a key is refused as it is stored, without being quoted.
    let e = refused(
        b.api
            .create_credential(&app_credential(
                "bad",
                "-----BEGIN RSA PRIVATE KEY-----\nbm90IGEga2V5IGF0IGFsbA==\n-----END RSA PRIVATE KEY-----\n",
                None,
            ))
            .await,
    );
    assert_eq!(status_code(&e), (Some(422), Some(Code::InvalidPrivateKey)), "{e}");
    let e = refused(
        b.api.create_credential(&CredentialCreate { app_id: None, ..app_credential("noid", &key, None) }).await,
    );
    assert_eq!(status_code(&e), (Some(422), Some(Code::InvalidInput)), "{e}");

    // Verification names the app and its installations through the CLI too.
    let (_home, session) = signed_in(&b).await;
    let run = berth(&b, &session, &["credential", "show", "app"], None).await;
    assert_eq!(run.code, 0, "{}", run.all());
    let v = b.api.verify_credential(c.id, &CredentialVerify { url: None }).await.unwrap();
    assert_eq!(v.verification.code, Code::ClockSkew, "{:?}", v.verification);
    sim.clock().set(chrono::Utc::now());

    register_minted(&sim);
    b.stop().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_stores_a_github_app_from_its_key_file() {
    let key = make_app_private_key();
    register_key(&key);
    let sim = world(&key).await;
    let b = Berth::start_with(Options { config_toml: Some(config(&sim)), ..Options::default() }).await;
    let (home, session) = signed_in(&b).await;
    let key_file = home.path().join("app.pem");
    std::fs::write(&key_file, &key).unwrap();
    let key_path = key_file.display().to_string();
    let run = berth(
        &b,
        &session,
        &[
            "credential",
            "add",
            "--name",
            "app",
            "--kind",
            "github_app",
            "--app-id",
            "4242",
            "--private-key-file",
            &key_path,
        ],
        None,
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.all());
    let run = berth(
        &b,
        &session,
        &["credential", "add", "--name", "piped", "--kind", "github_app", "--app-id", "4242", "--secret-stdin"],
        Some(&key),
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.all());
    let url = sim.github_git_url("acme/app");
    let run =
        berth(&b, &session, &["repo", "register", "--name", "app", "--url", &url, "--credential", "piped"], None).await;
    assert_eq!(run.code, 0, "{}", run.all());
    let run = berth(
        &b,
        &session,
        &["credential", "add", "--name", "nokey", "--kind", "github_app", "--app-id", "4242"],
        None,
    )
    .await;
    assert_eq!(run.code, 2, "a key file or stdin is required: {}", run.all());
    register_minted(&sim);
    b.stop().await;
    sim.shutdown().await;
}
