//! The pipeline's decisions, against a real `git http-backend` and the forge simulator: where it
//! stops, which steps run for which provider, and how the REST and Git verdicts combine.

#![allow(clippy::expect_used)]

use super::*;
use berth_core::{CredentialKind, Integration, NetworkPolicy, Provider};
use berth_git::GitClientConfig;
use berth_testkit::sim::{CloudOptions, Cred, Host, Perm, RateLimit, RepoSpec, Sim, SimBuilder, User, Workspace};
use berth_testkit::{bare_repo, GitServer, GitServerOptions};
use chrono::Utc;

const USER: &str = "ci-bot";
const PASSWORD: &str = "pipeline-test-password";
const SIM_TOKEN: &str = "ATATT3xFfGF0-pipeline-test-0001";

struct Remote {
    git: GitClient,
    forge: Forge,
}

impl Remote {
    fn new(policy: NetworkPolicy) -> Remote {
        let git = GitClient::new(GitClientConfig { policy, ..GitClientConfig::default() }).expect("client");
        let forge = Forge::new(git.net());
        Remote { git, forge }
    }

    fn local() -> Remote {
        Remote::new(NetworkPolicy::parse_allow_list("127.0.0.0/8,::1").expect("allow list"))
    }

    async fn run(&self, url: &CloneUrl, cred: &CredentialRow, secret: Option<&str>, wanted: Option<&str>) -> Outcome {
        let checker = Checker { git: &self.git, forge: &self.forge };
        let secret = secret.map(|s| SecretString::from(s.to_owned()));
        checker
            .run(Target {
                url,
                credential: Some(cred),
                secret,
                wanted_branch: wanted,
                chosen_by: None,
                host_keys: Vec::new(),
            })
            .await
    }
}

fn credential(kind: CredentialKind, username: Option<&str>) -> CredentialRow {
    let now = Utc::now();
    CredentialRow {
        id: 1,
        name: "test".to_owned(),
        kind,
        username: username.map(str::to_owned),
        email: None,
        expires_on: None,
        scopes: Vec::new(),
        created_at: now,
        updated_at: now,
        secret_updated_at: now,
        auth_failures: 0,
        checks_paused_at: None,
        host: None,
        verification: None,
        app_id: None,
        installation_id: None,
        public_key: None,
        client_certificate: None,
    }
}

fn parse(url: &str, integrations: &[Integration]) -> CloneUrl {
    CloneUrl::parse(url, integrations).expect("url")
}

fn step(out: &Outcome, name: StepName) -> &Step {
    out.check.checks.iter().find(|s| s.step == name).expect("every step is listed")
}

/// The statuses of all steps, in pipeline order.
fn statuses(out: &Outcome) -> Vec<(StepName, StepStatus)> {
    out.check.checks.iter().map(|s| (s.step, s.status)).collect()
}

fn skipped_after(out: &Outcome, last: StepName) -> bool {
    let at = StepName::ALL.iter().position(|n| *n == last).expect("step");
    StepName::ALL[at + 1..].iter().all(|n| step(out, *n).status == StepStatus::Skip)
}

async fn git_server() -> (tempfile::TempDir, GitServer) {
    let root = tempfile::tempdir().expect("tempdir");
    bare_repo(root.path(), "team/app.git", "main", &["main", "develop"]);
    let opts = GitServerOptions { users: vec![(USER.to_owned(), PASSWORD.to_owned())], ..GitServerOptions::default() };
    let server = GitServer::start(root.path(), opts).await;
    (root, server)
}

/// A token offered for an SSH URL stops at the credential step, before anything is sent, and
/// offers the HTTPS URL it would work with; the list is the SSH one.
#[tokio::test]
async fn a_token_for_an_ssh_url_stops_at_the_credential_step() {
    let url = parse("git@bitbucket.org:acme/app.git", &[]);
    let out = Remote::local().run(&url, &credential(CredentialKind::AccessToken, None), Some("t"), None).await;
    assert!(!out.check.ok);
    assert_eq!(step(&out, StepName::Url).status, StepStatus::Pass);
    let cred = step(&out, StepName::Credential);
    assert_eq!(cred.code, Code::CredentialKindMismatch);
    assert!(cred.remedy.contains("https://bitbucket.org/acme/app.git"), "{}", cred.remedy);
    assert_eq!(out.check.checks.len(), StepName::SSH.len());
    assert!(out.check.checks.iter().any(|s| s.step == StepName::SshHostKey));
    assert!(out.git_identity.is_none());
}

#[tokio::test]
async fn a_secret_that_does_not_open_fails_the_credential_step() {
    let url = parse("https://bitbucket.org/acme/app.git", &[]);
    let out = Remote::local().run(&url, &credential(CredentialKind::AccessToken, None), None, None).await;
    assert_eq!(step(&out, StepName::Url).status, StepStatus::Pass);
    let cred = step(&out, StepName::Credential);
    assert_eq!((cred.status, cred.code), (StepStatus::Fail, Code::Internal));
    assert!(skipped_after(&out, StepName::Credential), "{:?}", statuses(&out));
}

#[tokio::test]
async fn a_forbidden_address_stops_before_any_request() {
    // The default policy refuses loopback: nothing is contacted and the REST and Git steps
    // never run.
    let url = parse("http://127.0.0.1:9/team/app.git", &[]);
    let out = Remote::new(NetworkPolicy::default())
        .run(&url, &credential(CredentialKind::AccessToken, None), Some("t"), None)
        .await;
    let failed = out.check.first_failure().expect("a step fails");
    assert_eq!(failed.code, Code::DestinationForbidden);
    // The network policy's verdict has its own step: the lookup itself did not fail.
    assert_eq!(failed.step, StepName::Destination);
    assert_eq!(step(&out, StepName::Dns).status, StepStatus::Pass);
    assert!(skipped_after(&out, failed.step), "{:?}", statuses(&out));
}

#[tokio::test]
async fn a_generic_host_has_no_rest_steps_and_git_decides() {
    let (_root, server) = git_server().await;
    let url = parse(&server.repo_url("team/app.git"), &[]);
    let out = Remote::local()
        .run(&url, &credential(CredentialKind::UsernamePassword, Some(USER)), Some(PASSWORD), None)
        .await;
    assert!(out.check.ok, "{:?}", out.check);
    for name in [StepName::ApiCredential, StepName::ApiScopes, StepName::ApiRepository] {
        let s = step(&out, name);
        assert_eq!(s.status, StepStatus::Skip);
        assert!(s.message.contains("no REST API checks for generic hosts"), "{}", s.message);
    }
    assert_eq!(out.default_branch.as_deref(), Some("main"));
    assert_eq!(out.refs.as_ref().map(|r| r.branches.len()), Some(2));
    assert_eq!(out.git_identity, Some(GitIdentity::Basic { username: USER.to_owned() }));
    assert!(out.rate_limited.is_none() && out.moved_to.is_none());
    server.shutdown().await;
}

#[tokio::test]
async fn a_wanted_branch_that_does_not_exist_fails_with_the_closest_names() {
    let (_root, server) = git_server().await;
    let url = parse(&server.repo_url("team/app.git"), &[]);
    let cred = credential(CredentialKind::UsernamePassword, Some(USER));
    let out = Remote::local().run(&url, &cred, Some(PASSWORD), Some("mian")).await;
    let s = step(&out, StepName::DefaultBranch);
    assert_eq!((s.status, s.code), (StepStatus::Fail, Code::BranchNotFound));
    assert!(s.details.contains(&"main".to_owned()), "{:?}", s.details);
    assert_eq!(step(&out, StepName::Branches).status, StepStatus::Pass, "the branches were listed");
    assert!(out.default_branch.is_none());

    let out = Remote::local().run(&url, &cred, Some(PASSWORD), Some("refs/heads/develop")).await;
    assert!(out.check.ok);
    assert_eq!(out.default_branch.as_deref(), Some("develop"), "a full ref name is taken as the branch");
    server.shutdown().await;
}

#[tokio::test]
async fn a_head_naming_a_missing_branch_is_no_default() {
    // HEAD names master; only main and develop exist (master was renamed).
    let root = tempfile::tempdir().expect("tempdir");
    bare_repo(root.path(), "team/app.git", "master", &["main", "develop"]);
    let opts = GitServerOptions { users: vec![(USER.to_owned(), PASSWORD.to_owned())], ..GitServerOptions::default() };
    let server = GitServer::start(root.path(), opts).await;
    let url = parse(&server.repo_url("team/app.git"), &[]);
    let cred = credential(CredentialKind::UsernamePassword, Some(USER));

    let out = Remote::local().run(&url, &cred, Some(PASSWORD), None).await;
    let s = step(&out, StepName::DefaultBranch);
    assert_eq!((s.status, s.code), (StepStatus::Warn, Code::DefaultBranchMissing), "{s:?}");
    assert!(s.message.contains("master") && s.message.contains("2 branches"), "{}", s.message);
    assert_eq!(s.details, ["develop", "main"]);
    assert!(out.default_branch.is_none(), "a branch that does not exist is never the default");
    assert_eq!(out.refs.as_ref().and_then(|r| r.default_branch.clone()), None);

    // Naming one that exists passes, and says what HEAD names.
    let out = Remote::local().run(&url, &cred, Some(PASSWORD), Some("main")).await;
    let s = step(&out, StepName::DefaultBranch);
    assert_eq!(s.status, StepStatus::Pass);
    assert!(s.message.contains("HEAD names master"), "{}", s.message);
    assert_eq!(out.default_branch.as_deref(), Some("main"));
    server.shutdown().await;
}

#[tokio::test]
async fn a_refused_password_stops_at_git_and_an_expired_one_says_so() {
    let (_root, server) = git_server().await;
    let url = parse(&server.repo_url("team/app.git"), &[]);
    let mut cred = credential(CredentialKind::UsernamePassword, Some(USER));
    let out = Remote::local().run(&url, &cred, Some("wrong"), None).await;
    let s = step(&out, StepName::GitDiscovery);
    assert_eq!((s.status, s.code), (StepStatus::Fail, Code::AuthFailed));
    assert_eq!(step(&out, StepName::Tls).status, StepStatus::Warn, "plain HTTP is reported before the refusal");
    assert!(skipped_after(&out, StepName::GitDiscovery), "{:?}", statuses(&out));

    // Hosts answer the same 401 for a wrong and an expired token; the stored date tells them apart.
    cred.expires_on = Some(Utc::now().date_naive() - chrono::Duration::days(3));
    let out = Remote::local().run(&url, &cred, Some("wrong"), None).await;
    assert_eq!(step(&out, StepName::Credential).code, Code::TokenExpired);
    assert_eq!(step(&out, StepName::GitDiscovery).code, Code::TokenExpired);
    server.shutdown().await;
}

/// Bitbucket Cloud with one repository `acme/app` that `jo` may read with [`SIM_TOKEN`].
fn cloud() -> SimBuilder {
    Sim::builder()
        .user(User::new("jo", "jo@example.com", "Jo Doe"))
        .cloud_workspace(Workspace::new("acme", "Acme"))
        .cloud_repo("acme/app", RepoSpec::new(&["main", "develop"]))
        .grant(Host::Cloud, "jo", "acme/app", Perm::Write)
        .credential(Cred::api_token("jo", SIM_TOKEN, &["read:repository:bitbucket", "read:user:bitbucket"]))
}

fn cloud_url(sim: &Sim) -> CloneUrl {
    let integrations = vec![Integration {
        host: format!("127.0.0.1:{}", sim.cloud_port()),
        provider: Provider::BitbucketCloud,
        api_url: Some(sim.cloud_api_url()),
    }];
    parse(&sim.cloud_git_url("acme/app"), &integrations)
}

#[tokio::test]
async fn bitbucket_cloud_shows_the_rest_and_the_git_verdicts_side_by_side() {
    let sim = cloud().start().await;
    let url = cloud_url(&sim);
    let remote = Remote::local();

    // The REST API takes the email; Git over HTTPS refuses it as a username. Both verdicts show.
    let mut cred = credential(CredentialKind::BitbucketApiToken, Some("jo@example.com"));
    cred.email = Some("jo@example.com".to_owned());
    let out = remote.run(&url, &cred, Some(SIM_TOKEN), None).await;
    assert_eq!(step(&out, StepName::ApiCredential).status, StepStatus::Pass, "{:?}", out.check);
    assert_eq!(step(&out, StepName::ApiRepository).status, StepStatus::Pass, "{:?}", out.check);
    let git = step(&out, StepName::GitDiscovery);
    assert_eq!((git.status, git.code), (StepStatus::Fail, Code::AuthFailed));
    assert!(git.message.contains("email address"), "{}", git.message);
    assert!(out.authenticated_as.as_deref().is_some_and(|a| a.contains("Jo Doe")), "{:?}", out.authenticated_as);

    // With the Bitbucket username, both pass.
    cred.username = Some("jo".to_owned());
    let out = remote.run(&url, &cred, Some(SIM_TOKEN), None).await;
    assert!(out.check.ok, "{:?}", out.check);
    assert_eq!(out.default_branch.as_deref(), Some("main"));
    sim.shutdown().await;
}

#[tokio::test]
async fn a_rate_limit_is_a_typed_fact_with_the_wait_the_host_asked_for() {
    let limit = RateLimit::per_hour(1).with_retry_after();
    let sim = cloud()
        .cloud_options(CloudOptions { rest_limit: limit, git_limit: limit, ..CloudOptions::default() })
        .start()
        .await;
    let url = cloud_url(&sim);
    let remote = Remote::local();
    let mut cred = credential(CredentialKind::BitbucketApiToken, Some("jo"));
    cred.email = Some("jo@example.com".to_owned());
    // The first requests spend the budget; the next check is limited.
    let _ = remote.run(&url, &cred, Some(SIM_TOKEN), None).await;
    let out = remote.run(&url, &cred, Some(SIM_TOKEN), None).await;
    assert!(out.check.checks.iter().any(|s| s.code == Code::RateLimited), "{:?}", out.check);
    let limited = out.rate_limited.expect("the outcome says the host rate-limited");
    assert!(limited.retry_after.is_some_and(|w| w > Duration::ZERO), "{limited:?}");
    sim.shutdown().await;
}

#[tokio::test]
async fn git_and_rest_name_bitbucket_refusals_alike() {
    let app_password = "ATBBapppassword0001";
    let sim = cloud()
        .cloud_repo("acme/secret", RepoSpec::new(&["main"]))
        .credential(Cred::app_password("jo", app_password).git_status(410))
        .start()
        .await;
    let remote = Remote::local();
    let integrations = vec![Integration {
        host: format!("127.0.0.1:{}", sim.cloud_port()),
        provider: Provider::BitbucketCloud,
        api_url: Some(sim.cloud_api_url()),
    }];

    // A repository jo cannot see: the REST step and the Git step give the same code.
    let hidden = parse(&sim.cloud_git_url("acme/secret"), &integrations);
    let mut cred = credential(CredentialKind::BitbucketApiToken, Some("jo"));
    cred.email = Some("jo@example.com".to_owned());
    let out = remote.run(&hidden, &cred, Some(SIM_TOKEN), None).await;
    assert_eq!(step(&out, StepName::ApiRepository).code, Code::RepositoryNotFoundOrNoAccess, "{:?}", out.check);
    let git = step(&out, StepName::GitDiscovery);
    assert_eq!((git.status, git.code), (StepStatus::Fail, Code::RepositoryNotFoundOrNoAccess), "{git:?}");
    assert!(!git.remedy.contains("allow"), "no IP-allowlist hint for a hidden repository: {}", git.remedy);

    // An app password refused by Git with 410 Gone is the retired kind, as on the REST side.
    let app = credential(CredentialKind::UsernamePassword, Some("jo"));
    let out = remote.run(&cloud_url(&sim), &app, Some(app_password), None).await;
    assert_eq!(step(&out, StepName::ApiCredential).code, Code::AppPasswordRetired, "{:?}", out.check);
    let git = step(&out, StepName::GitDiscovery);
    assert_eq!(git.code, Code::AppPasswordRetired, "{git:?}");
    sim.shutdown().await;
}

#[tokio::test]
async fn verifying_on_a_host_asks_the_rest_api_and_never_a_repository() {
    let sim = cloud().start().await;
    let remote = Remote::local();
    let host = HostBase::of(&cloud_url(&sim));
    let mut cred = credential(CredentialKind::BitbucketApiToken, Some("jo"));
    cred.email = Some("jo@example.com".to_owned());
    let checker = Checker { git: &remote.git, forge: &remote.forge };
    let v = checker
        .verify(VerifyTarget { host: &host, credential: &cred, secret: Some(SecretString::from(SIM_TOKEN)) })
        .await;
    let names: Vec<StepName> = v.steps.iter().map(|s| s.step).collect();
    assert_eq!(
        names,
        [
            StepName::Credential,
            StepName::Dns,
            StepName::Destination,
            StepName::Connect,
            StepName::ApiCredential,
            StepName::ApiScopes
        ]
    );
    assert!(v.rest_checked && v.steps.iter().all(|s| s.status == StepStatus::Pass), "{:?}", v.steps);
    assert_eq!(v.identity.and_then(|i| i.display_name).as_deref(), Some("Jo Doe"));

    // A wrong token fails at the REST credential step.
    let v = checker
        .verify(VerifyTarget { host: &host, credential: &cred, secret: Some(SecretString::from("ATATT-wrong")) })
        .await;
    let last = v.steps.last().expect("steps");
    assert_eq!((last.step, last.status, last.code), (StepName::ApiCredential, StepStatus::Fail, Code::AuthFailed));
    sim.shutdown().await;
}

#[test]
fn a_client_certificate_near_its_end_warns_beside_the_token_expiry() {
    let today = Utc::now().date_naive();
    let identity = GitIdentity::Basic { username: USER.to_owned() };
    let mut cred = credential(CredentialKind::BitbucketApiToken, None);
    let cert = |days: i64| berth_store::ClientCertificateRow {
        pem: String::new(),
        subject: "CN=berth-ci".to_owned(),
        not_after: Utc::now() + chrono::Duration::days(days),
    };
    cred.client_certificate = Some(cert(400));
    let step = credential_step(&cred, &identity, Expiry::Unknown, None);
    assert_eq!((step.status, step.code), (StepStatus::Pass, Code::Ok), "far away: nothing to say");

    cred.client_certificate = Some(cert(10));
    let step = credential_step(&cred, &identity, Expiry::Unknown, None);
    assert_eq!((step.status, step.code), (StepStatus::Warn, Code::ClientCertificateExpiresSoon));
    assert!(step.message.contains("CN=berth-ci") && step.message.contains("expires in"), "{}", step.message);

    cred.client_certificate = Some(cert(-3));
    let step = credential_step(&cred, &identity, Expiry::Unknown, Some("chosen by the template for x"));
    assert_eq!(step.code, Code::ClientCertificateExpired);
    assert!(step.details.iter().any(|d| d.contains("template")), "{:?}", step.details);

    // The token's own warning keeps its code; the certificate is said in the details.
    cred.expires_on = Some(today + chrono::Duration::days(5));
    let step =
        credential_step(&cred, &identity, Expiry::ExpiresSoon { days_left: 5 }, Some("chosen by the template for x"));
    assert_eq!(step.code, Code::TokenExpiresSoon);
    assert!(step.details.iter().any(|d| d.contains("client certificate (CN=berth-ci) expired")), "{:?}", step.details);
    assert!(step.details.iter().any(|d| d.contains("template")), "{:?}", step.details);
}
