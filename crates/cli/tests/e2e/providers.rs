//! Provider-aware checks end to end: Berth against the Bitbucket Cloud, Bitbucket Data Center
//! and GitHub simulator, through the REST API. One test per row of the diagnosis in
//! `shared/reference/forge-facts.md`; the only thing that differs from the real hosts is the
//! base URL in the `[[integrations]]` config.

use crate::harness::*;
use berth_testkit::sim::{CloudEndpoint, CloudOptions, Cred, DcProject, Host, Perm, RateLimit, RepoSpec, Sim, User, Workspace};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// The full set the product page asks for, plus the profile scope `GET /user` needs.
fn full_scopes() -> Vec<&'static str> {
    let mut v = berth_core::credential::FULL_SCOPES.to_vec();
    v.push("read:user:bitbucket");
    v
}

const GOOD: &str = SIM_GOOD;

fn world(cloud: CloudOptions) -> berth_testkit::sim::SimBuilder {
    Sim::builder()
        .user(User::new("jo", "jo@example.com", "Jo Doe"))
        .user(User::new("max", "max@example.com", "Max Other"))
        .user(User::new("lee", "lee@example.com", "Lee No-2FA").two_step(false))
        .cloud_workspace(Workspace::new("acme", "Acme"))
        .cloud_workspace(Workspace::new("locked", "Locked").ip_allowlist(&["10.9.9.9"]))
        .cloud_workspace(Workspace::new("strict", "Strict").require_two_step())
        .cloud_repo("acme/app", RepoSpec::new(&["main", "develop", "feature/login"]))
        .cloud_repo("acme/private", RepoSpec::new(&["main"]))
        .cloud_repo("locked/app", RepoSpec::new(&["main"]))
        .cloud_repo("strict/app", RepoSpec::new(&["main"]))
        .grant(Host::Cloud, "jo", "acme/app", Perm::Write)
        .grant(Host::Cloud, "jo", "locked/app", Perm::Write)
        .grant(Host::Cloud, "lee", "strict/app", Perm::Write)
        .credential(Cred::api_token("lee", SIM_LEE, &full_scopes()))
        .grant(Host::Cloud, "max", "acme/private", Perm::Admin)
        .credential(Cred::api_token("jo", GOOD, &full_scopes()))
        .credential(Cred::api_token("jo", SIM_NOREAD, &["write:repository:bitbucket", "read:account"]))
        .credential(Cred::classic_api_token("jo", SIM_CLASSIC))
        .credential(Cred::api_token("jo", SIM_EXPIRED, &full_scopes()).expires("2026-11-01"))
        .credential(Cred::app_password("jo", SIM_APP_PASSWORD))
        .credential(Cred::repo_access_token("acme/app", SIM_REPO_ACCESS_TOKEN, &["repository"]))
        .dc_project(DcProject::new("PROJ", "Project"))
        .dc_repo("PROJ/app", RepoSpec::new(&["master", "release"]).default_branch("master").project("PROJ"))
        .dc_repo("PROJ/hidden", RepoSpec::new(&["master"]).default_branch("master").project("PROJ"))
        .grant(Host::DataCenter, "jo", "PROJ/app", Perm::Read)
        .credential(Cred::dc_personal_token("jo", SIM_DC_TOKEN, &["REPO_READ"]))
        .github_repo("octo/app", RepoSpec::new(&["main", "gh-pages"]))
        .grant(Host::GitHub, "jo", "octo/app", Perm::Write)
        .credential(Cred::github_classic("jo", SIM_GITHUB_TOKEN, &["repo", "read:user"]))
        .cloud_options(cloud)
}

fn config(sim: &Sim) -> String {
    format!(
        "[[integrations]]\nhost = \"127.0.0.1:{}\"\nprovider = \"bitbucket-cloud\"\napi_url = \"{}\"\n\n\
         [[integrations]]\nhost = \"127.0.0.1:{}\"\nprovider = \"bitbucket-datacenter\"\napi_url = \"{}\"\n\n\
         [[integrations]]\nhost = \"127.0.0.1:{}\"\nprovider = \"github\"\napi_url = \"{}\"\n",
        sim.cloud_port(),
        sim.cloud_api_url(),
        sim.dc_port(),
        sim.dc_url().trim_end_matches('/').to_owned() + "/rest",
        sim.github_port(),
        sim.github_api_url(),
    )
}

async fn start(cloud: CloudOptions) -> (Sim, Berth) {
    let sim = world(cloud).start().await;
    let b = Berth::start_with(Options { config_toml: Some(config(&sim)), ..Options::default() }).await;
    (sim, b)
}

async fn credential(b: &Berth, body: Value) {
    let (s, v) = b.post("/api/v1/credentials", body).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
}

async fn api_token(b: &Berth, name: &str, secret: &str) {
    credential(b, json!({"name": name, "kind": "bitbucket_api_token", "email": "jo@example.com", "secret": secret})).await;
}

async fn refresh(b: &Berth, url: &str, cred: &str) -> (StatusCode, Value) {
    b.post("/api/v1/remote-branches", json!({"clone_url": url, "credential": cred})).await
}

/// The steps of a failed refresh.
fn failed_checks(v: &Value) -> &Value {
    &v["error"]["checks"]
}

fn codes(checks: &Value) -> Vec<String> {
    checks.as_array().map(|a| a.iter().map(|s| format!("{}:{}:{}", s["step"], s["status"], s["code"])).collect()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bitbucket_cloud_registration_with_a_scoped_api_token_passes_every_step() {
    let (sim, b) = start(CloudOptions::default()).await;
    api_token(&b, "bb", GOOD).await;
    let url = format!("git clone {}", sim.cloud_git_url("acme/app"));
    let (s, v) = b.post("/api/v1/repositories", json!({"name": "app", "clone_url": url, "credential": "bb"})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["provider"], "bitbucket-cloud");
    assert_eq!(v["default_branch"], "main");
    let checks = &v["last_check"]["checks"];
    for name in ["url", "credential", "dns", "connect", "api_credential", "api_scopes", "api_repository", "git_discovery", "branches", "default_branch"] {
        assert_eq!(step(checks, name)["status"], "pass", "{name}: {}", codes(checks).join(" "));
    }
    let who = step(checks, "api_credential")["message"].as_str().unwrap();
    assert!(who.contains("authenticated as") && who.contains("Jo Doe"), "{who}");
    // Git used the fixed API-token username, REST the email: both verdicts are reported.
    assert!(step(checks, "git_discovery")["message"].as_str().unwrap().contains("x-bitbucket-api-token-auth"));
    assert!(!v.to_string().contains(GOOD));
    b.stop().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloud_diagnosis_rows() {
    let (sim, b) = start(CloudOptions::default()).await;
    api_token(&b, "good", GOOD).await;
    api_token(&b, "noread", SIM_NOREAD).await;
    api_token(&b, "classic", SIM_CLASSIC).await;
    credential(&b, json!({"name": "expired", "kind": "bitbucket_api_token", "email": "jo@example.com",
                          "secret": SIM_EXPIRED, "expires_on": "2026-11-01"})).await;
    credential(&b, json!({"name": "bearer", "kind": "access_token", "secret": GOOD})).await;
    credential(&b, json!({"name": "email-user", "kind": "username_password", "username": "jo@example.com", "secret": GOOD})).await;
    credential(&b, json!({"name": "repo-token", "kind": "access_token", "secret": SIM_REPO_ACCESS_TOKEN})).await;
    credential(&b, json!({"name": "app-pw", "kind": "username_password", "username": "jo", "secret": SIM_APP_PASSWORD})).await;
    let app = sim.cloud_git_url("acme/app");

    // Missing read:repository: named, with what it blocks.
    let (s, v) = refresh(&b, &app, "noread").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(v.to_string().contains("read:repository:bitbucket"), "{}", codes(failed_checks(&v)).join(" "));
    assert_eq!(error_code(&v), "access_denied", "{}", codes(failed_checks(&v)).join(" "));

    // An unscoped ("classic") API token: invalid, with the way out.
    let (_, v) = refresh(&b, &app, "classic").await;
    assert_eq!(step(failed_checks(&v), "api_credential")["code"], "auth_failed", "{}", codes(failed_checks(&v)).join(" "));
    assert!(v.to_string().contains("with scopes"), "{v}");

    // An API token sent as Bearer.
    let (_, v) = refresh(&b, &app, "bearer").await;
    assert_eq!(step(failed_checks(&v), "api_credential")["code"], "auth_failed", "{}", codes(failed_checks(&v)).join(" "));
    assert!(v.to_string().to_lowercase().contains("basic"), "{v}");

    // Expired: the stored date tells it from a wrong token.
    let (_, v) = refresh(&b, &app, "expired").await;
    assert_eq!(error_code(&v), "token_expired", "{}", codes(failed_checks(&v)).join(" "));

    // The email as the Git username: REST passes, Git refuses, and the finding says why.
    let (_, v) = refresh(&b, &app, "email-user").await;
    let git = step(failed_checks(&v), "git_discovery");
    assert_eq!(git["code"], "auth_failed", "{}", codes(failed_checks(&v)).join(" "));
    assert!(git["remedy"].as_str().unwrap().contains("x-bitbucket-api-token-auth"), "{git}");

    // A private repository the user cannot see: one finding, naming who asked.
    let (_, v) = refresh(&b, &sim.cloud_git_url("acme/private"), "good").await;
    assert_eq!(error_code(&v), "repository_not_found_or_no_access", "{}", codes(failed_checks(&v)).join(" "));
    let repo = step(failed_checks(&v), "api_repository");
    assert!(repo["message"].as_str().unwrap().contains("Jo Doe") || repo["message"].as_str().unwrap().contains("jo"), "{repo}");

    // Policies surface the host's own words.
    let (_, v) = refresh(&b, &sim.cloud_git_url("locked/app"), "good").await;
    assert_eq!(error_code(&v), "access_denied", "{v}");
    assert!(v.to_string().to_lowercase().contains("whitelist your ip"), "{v}");
    credential(&b, json!({"name": "lee", "kind": "bitbucket_api_token", "email": "lee@example.com", "secret": SIM_LEE})).await;
    let (_, v) = refresh(&b, &sim.cloud_git_url("strict/app"), "lee").await;
    assert_eq!(error_code(&v), "access_denied", "{}", codes(failed_checks(&v)).join(" "));
    assert!(v.to_string().to_lowercase().contains("two-step"), "{v}");

    // A repository access token cannot read /user: that is not "invalid".
    let (s, v) = refresh(&b, &app, "repo-token").await;
    assert_eq!(s, StatusCode::OK, "{}", codes(&v["checks"]).join(" "));
    assert_ne!(step(&v["checks"], "api_credential")["status"], "fail");

    // App passwords are retired: pasted as an API token it is refused at once, and a stored
    // one is diagnosed as retired rather than as a wrong password.
    let (s, v) = b
        .post("/api/v1/credentials", json!({"name": "x", "kind": "bitbucket_api_token", "email": "jo@example.com", "secret": SIM_APP_PASSWORD}))
        .await;
    assert_eq!((s, error_code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "app_password_retired"), "{v}");
    let (_, v) = refresh(&b, &app, "app-pw").await;
    assert_eq!(error_code(&v), "app_password_retired", "{}", codes(failed_checks(&v)).join(" "));
    assert!(v.to_string().contains("read:repository:bitbucket"));

    for secret in [GOOD, SIM_APP_PASSWORD, SIM_REPO_ACCESS_TOKEN] {
        assert!(!v.to_string().contains(secret));
    }
    b.stop().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloud_missing_scope_as_400_is_the_same_finding() {
    let (sim, b) = start(CloudOptions { scope_error_400: CloudEndpoint::ALL.to_vec(), ..CloudOptions::default() }).await;
    api_token(&b, "noread", SIM_NOREAD).await;
    let (_, v) = refresh(&b, &sim.cloud_git_url("acme/app"), "noread").await;
    assert_eq!(error_code(&v), "access_denied", "{}", codes(failed_checks(&v)).join(" "));
    assert!(v.to_string().contains("read:repository:bitbucket"), "{v}");
    b.stop().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloud_rate_limits_with_and_without_retry_after() {
    for with_retry_after in [true, false] {
        let mut limit = RateLimit::per_hour(1);
        if with_retry_after {
            limit = limit.with_retry_after();
        }
        let (sim, b) = start(CloudOptions { rest_limit: limit, git_limit: limit, ..CloudOptions::default() }).await;
        api_token(&b, "good", GOOD).await;
        let url = sim.cloud_git_url("acme/app");
        // The first request spends the budget; what follows is limited.
        let _ = refresh(&b, &url, "good").await;
        let (_, v) = refresh(&b, &url, "good").await;
        let all = codes(failed_checks(&v)).join(" ");
        assert!(all.contains("rate_limited"), "retry-after {with_retry_after}: {all}");
        b.stop().await;
        sim.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_center_and_github() {
    let (sim, b) = start(CloudOptions::default()).await;
    credential(&b, json!({"name": "dc", "kind": "access_token", "secret": SIM_DC_TOKEN})).await;
    credential(&b, json!({"name": "gh", "kind": "access_token", "secret": SIM_GITHUB_TOKEN})).await;

    // Data Center with a context path: registration works and the default branch is found.
    let (s, v) = refresh(&b, &sim.dc_git_url("PROJ/app"), "dc").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["provider"], "bitbucket-datacenter");
    assert_eq!(v["default_branch"], "master");
    // Data Center answers 401, not 403, for a repository the token may not read.
    let (_, v) = refresh(&b, &sim.dc_git_url("PROJ/hidden"), "dc").await;
    let repo = step(failed_checks(&v), "api_repository");
    assert_eq!(repo["code"], "access_denied", "{}", codes(failed_checks(&v)).join(" "));
    assert!(repo["message"].as_str().unwrap().contains("REPO_READ"), "{repo}");

    // GitHub.
    let (s, v) = refresh(&b, &sim.github_git_url("octo/app"), "gh").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["provider"], "github");
    assert_eq!(v["default_branch"], "main");
    assert_eq!(step(&v["checks"], "api_credential")["status"], "pass", "{}", codes(&v["checks"]).join(" "));
    b.stop().await;
    sim.shutdown().await;
}
