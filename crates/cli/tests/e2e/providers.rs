//! Provider-aware checks end to end: Berth against the Bitbucket Cloud, Bitbucket Data Center
//! and GitHub simulator, through the REST API. One test per row of the diagnosis in
//! `shared/reference/forge-facts.md`; the only thing that differs from the real hosts is the
//! base URL in the `[[integrations]]` config.

use crate::harness::*;
use berth::client::ClientError;
use berth_core::{Code, CredentialKind, Provider, StepName, StepStatus};
use berth_proto::{CredentialCreate, RemoteBranches};
use berth_testkit::sim::{
    CloudEndpoint, CloudOptions, Cred, DcProject, Host, Perm, RateLimit, RepoSpec, Sim, User, Workspace,
};

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

async fn credential(b: &Berth, req: CredentialCreate) {
    b.api.create_credential(&req).await.unwrap();
    assert_eq!(b.api.status(), 201);
}

async fn api_token(b: &Berth, name: &str, secret: &str) {
    credential(b, bitbucket_api_token(name, secret)).await;
}

async fn refresh(b: &Berth, url: &str, cred: &str) -> Result<RemoteBranches, ClientError> {
    b.api.remote_branches(&remote(url, cred)).await
}

/// A refresh that must fail: its error, and the answer's text as sent.
async fn refused_refresh(b: &Berth, url: &str, cred: &str) -> (ClientError, String) {
    let e = refused(refresh(b, url, cred).await);
    (e, b.api.body())
}

fn with_username(username: &str, req: CredentialCreate) -> CredentialCreate {
    CredentialCreate { username: Some(username.to_owned()), ..req }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bitbucket_cloud_registration_with_a_scoped_api_token_passes_every_step() {
    let (sim, b) = start(CloudOptions::default()).await;
    api_token(&b, "bb", GOOD).await;
    let url = format!("git clone {}", sim.cloud_git_url("acme/app"));
    let v = b.api.create_repository(&new_repository("app", &url, "bb")).await.unwrap();
    assert_eq!(b.api.status(), 201);
    assert!(!b.api.body().contains(GOOD));
    assert_eq!(v.provider, Provider::BitbucketCloud);
    assert_eq!(v.default_branch, "main");
    let checks = &v.last_check.as_ref().unwrap().checks;
    use StepName::*;
    for name in
        [Url, Credential, Dns, Connect, ApiCredential, ApiScopes, ApiRepository, GitDiscovery, Branches, DefaultBranch]
    {
        assert_eq!(step(checks, name).status, StepStatus::Pass, "{}: {}", name.as_str(), codes(checks));
    }
    let who = &step(checks, ApiCredential).message;
    assert!(who.contains("authenticated as") && who.contains("Jo Doe"), "{who}");
    // Git used the fixed API-token username, REST the email: both verdicts are reported.
    assert!(step(checks, GitDiscovery).message.contains("x-bitbucket-api-token-auth"));
    b.stop().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloud_diagnosis_rows() {
    let (sim, b) = start(CloudOptions::default()).await;
    api_token(&b, "good", GOOD).await;
    api_token(&b, "noread", SIM_NOREAD).await;
    api_token(&b, "classic", SIM_CLASSIC).await;
    let expires = chrono::NaiveDate::from_ymd_opt(2026, 11, 1);
    credential(&b, CredentialCreate { expires_on: expires, ..bitbucket_api_token("expired", SIM_EXPIRED) }).await;
    credential(&b, new_credential("bearer", CredentialKind::AccessToken, GOOD)).await;
    let email_user = new_credential("email-user", CredentialKind::UsernamePassword, GOOD);
    credential(&b, with_username("jo@example.com", email_user)).await;
    credential(&b, new_credential("repo-token", CredentialKind::AccessToken, SIM_REPO_ACCESS_TOKEN)).await;
    let app_pw = new_credential("app-pw", CredentialKind::UsernamePassword, SIM_APP_PASSWORD);
    credential(&b, with_username("jo", app_pw)).await;
    let app = sim.cloud_git_url("acme/app");
    use StepName::*;

    // Missing read:repository: named, and the same code in every step that meets it (the REST
    // scopes, the REST repository and Git), never access_denied.
    let (e, text) = refused_refresh(&b, &app, "noread").await;
    assert_eq!(e.status(), Some(422), "{e}");
    assert!(text.contains("read:repository:bitbucket"), "{}", codes(e.checks()));
    assert_eq!(e.code(), Some(Code::ScopeMissing), "{}", codes(e.checks()));
    for name in [ApiScopes, ApiRepository, GitDiscovery] {
        assert_eq!(step(e.checks(), name).code, Code::ScopeMissing, "{}", codes(e.checks()));
    }

    // An unscoped ("classic") API token: invalid, with the way out.
    let (e, text) = refused_refresh(&b, &app, "classic").await;
    assert_eq!(step(e.checks(), ApiCredential).code, Code::AuthFailed, "{}", codes(e.checks()));
    assert!(text.contains("with scopes"), "{text}");

    // An API token sent as Bearer.
    let (e, text) = refused_refresh(&b, &app, "bearer").await;
    assert_eq!(step(e.checks(), ApiCredential).code, Code::AuthFailed, "{}", codes(e.checks()));
    assert!(text.to_lowercase().contains("basic"), "{text}");

    // Expired: the stored date tells it from a wrong token.
    let (e, _) = refused_refresh(&b, &app, "expired").await;
    assert_eq!(e.code(), Some(Code::TokenExpired), "{}", codes(e.checks()));

    // The email as the Git username: REST passes, Git refuses, and the finding says why.
    let (e, _) = refused_refresh(&b, &app, "email-user").await;
    let git = step(e.checks(), GitDiscovery);
    assert_eq!(git.code, Code::AuthFailed, "{}", codes(e.checks()));
    assert!(git.remedy.contains("x-bitbucket-api-token-auth"), "{git:?}");

    // A private repository the user cannot see: one finding, naming who asked.
    let (e, _) = refused_refresh(&b, &sim.cloud_git_url("acme/private"), "good").await;
    assert_eq!(e.code(), Some(Code::RepositoryNotFoundOrNoAccess), "{}", codes(e.checks()));
    let repo = step(e.checks(), ApiRepository);
    assert!(repo.message.contains("Jo Doe") || repo.message.contains("jo"), "{repo:?}");

    // Policies surface the host's own words.
    let (e, text) = refused_refresh(&b, &sim.cloud_git_url("locked/app"), "good").await;
    assert_eq!(e.code(), Some(Code::AccessDenied), "{text}");
    assert!(text.to_lowercase().contains("whitelist your ip"), "{text}");
    let lee = CredentialCreate { email: Some("lee@example.com".into()), ..bitbucket_api_token("lee", SIM_LEE) };
    credential(&b, lee).await;
    let (e, text) = refused_refresh(&b, &sim.cloud_git_url("strict/app"), "lee").await;
    assert_eq!(e.code(), Some(Code::AccessDenied), "{}", codes(e.checks()));
    assert!(text.to_lowercase().contains("two-step"), "{text}");

    // A repository access token cannot read /user: that is not "invalid".
    let v = refresh(&b, &app, "repo-token").await.unwrap_or_else(|e| panic!("{}", codes(e.checks())));
    assert_eq!(b.api.status(), 200);
    assert_ne!(step(&v.checks, ApiCredential).status, StepStatus::Fail);

    // App passwords are retired: pasted as an API token it is refused at once, and a stored
    // one is diagnosed as retired rather than as a wrong password.
    let e = refused(b.api.create_credential(&bitbucket_api_token("x", SIM_APP_PASSWORD)).await);
    assert_eq!(status_code(&e), (Some(422), Some(Code::AppPasswordRetired)), "{e}");
    let (e, text) = refused_refresh(&b, &app, "app-pw").await;
    assert_eq!(e.code(), Some(Code::AppPasswordRetired), "{}", codes(e.checks()));
    assert!(text.contains("read:repository:bitbucket"));

    for secret in [GOOD, SIM_APP_PASSWORD, SIM_REPO_ACCESS_TOKEN] {
        assert!(!text.contains(secret));
    }
    b.stop().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloud_missing_scope_as_400_is_the_same_finding() {
    let (sim, b) =
        start(CloudOptions { scope_error_400: CloudEndpoint::ALL.to_vec(), ..CloudOptions::default() }).await;
    api_token(&b, "noread", SIM_NOREAD).await;
    let (e, text) = refused_refresh(&b, &sim.cloud_git_url("acme/app"), "noread").await;
    assert_eq!(e.code(), Some(Code::ScopeMissing), "{}", codes(e.checks()));
    assert!(text.contains("read:repository:bitbucket"), "{text}");
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
        let (e, _) = refused_refresh(&b, &url, "good").await;
        let all = codes(e.checks());
        assert!(all.contains("rate_limited"), "retry-after {with_retry_after}: {all}");
        b.stop().await;
        sim.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_center_and_github() {
    let (sim, b) = start(CloudOptions::default()).await;
    credential(&b, new_credential("dc", CredentialKind::AccessToken, SIM_DC_TOKEN)).await;
    credential(&b, new_credential("gh", CredentialKind::AccessToken, SIM_GITHUB_TOKEN)).await;

    // Data Center with a context path: registration works and the default branch is found.
    let v = refresh(&b, &sim.dc_git_url("PROJ/app"), "dc").await.unwrap();
    assert_eq!(b.api.status(), 200);
    assert_eq!(v.provider, Provider::BitbucketDatacenter);
    assert_eq!(v.default_branch.as_deref(), Some("master"));
    // Data Center answers 401, not 403, for a repository the token may not read.
    let (e, _) = refused_refresh(&b, &sim.dc_git_url("PROJ/hidden"), "dc").await;
    let repo = step(e.checks(), StepName::ApiRepository);
    assert_eq!(repo.code, Code::AccessDenied, "{}", codes(e.checks()));
    assert!(repo.message.contains("REPO_READ"), "{repo:?}");

    // GitHub.
    let v = refresh(&b, &sim.github_git_url("octo/app"), "gh").await.unwrap();
    assert_eq!(b.api.status(), 200);
    assert_eq!(v.provider, Provider::Github);
    assert_eq!(v.default_branch.as_deref(), Some("main"));
    assert_eq!(step(&v.checks, StepName::ApiCredential).status, StepStatus::Pass, "{}", codes(&v.checks));
    b.stop().await;
    sim.shutdown().await;
}
