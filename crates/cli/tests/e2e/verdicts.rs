//! Verdicts people can trust (issue 11): a credential is verified on its host and shows the
//! result; scope gaps warn only for what this deployment wants; the Git and REST steps name a
//! fault alike; a dangling HEAD is no default branch; only administrators hear of the network
//! policy's setting. Through the API and the CLI, against the simulator.

use crate::cli::{berth, signed_in};
use crate::harness::*;
use crate::roles::add_user;
use berth_core::{Capability, Code, CredentialKind, StepName, StepStatus};
use berth_proto::{
    CredentialCreate, CredentialUpdate, CredentialVerify, RepositoryCreate, ScopeNeed, VerificationStatus,
};
use berth_testkit::sim::{Cred, Host, Perm, RepoSpec, Sim, User, Workspace};
use berth_testkit::{bare_repo, GitServer, GitServerOptions};

fn world() -> berth_testkit::sim::SimBuilder {
    let mut full = berth_core::credential::FULL_SCOPES.to_vec();
    full.push("read:user:bitbucket");
    Sim::builder()
        .user(User::new("jo", "jo@example.com", "Jo Doe"))
        .cloud_workspace(Workspace::new("acme", "Acme"))
        .cloud_repo("acme/app", RepoSpec::new(&["main", "develop"]))
        .grant(Host::Cloud, "jo", "acme/app", Perm::Write)
        .credential(Cred::api_token("jo", SIM_GOOD, &full))
        .credential(Cred::api_token("jo", SIM_READ_ONLY, &["read:repository:bitbucket"]))
        .credential(Cred::api_token("jo", SIM_NOREAD, &["write:repository:bitbucket", "read:account"]))
}

async fn start_sim() -> Sim {
    world().start().await
}

fn config(sim: &Sim, extra: &str) -> String {
    format!(
        "{extra}\n[[integrations]]\nhost = \"127.0.0.1:{}\"\nprovider = \"bitbucket-cloud\"\napi_url = \"{}\"\n",
        sim.cloud_port(),
        sim.cloud_api_url()
    )
}

fn host_of(sim: &Sim) -> String {
    format!("http://127.0.0.1:{}", sim.cloud_port())
}

fn on_host(name: &str, secret: &str, host: &str) -> CredentialCreate {
    CredentialCreate { host: Some(host.to_owned()), username: Some("jo".into()), ..bitbucket_api_token(name, secret) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credential_is_verified_on_its_host_and_shows_the_result() {
    let sim = start_sim().await;
    let b = Berth::start_with(Options { config_toml: Some(config(&sim, "")), ..Options::default() }).await;
    let host = host_of(&sim);

    // A good token, a wrong one and one without read:repository no longer look alike.
    let good = b.api.create_credential(&on_host("good", SIM_GOOD, &host)).await.unwrap();
    assert_eq!(b.api.status(), 201);
    let v = &good.verification;
    assert_eq!((v.status, v.code), (VerificationStatus::Ok, Code::Ok), "{v:?}");
    let who = v.identity.clone().unwrap_or_default();
    assert_eq!((who.display_name.as_deref(), who.username.as_deref()), (Some("Jo Doe"), Some("jo")), "{v:?}");
    assert_eq!(v.host.as_deref(), Some(host.as_str()));
    assert!(v.checked_at.is_some() && v.message.contains("authenticated as Jo Doe"), "{v:?}");
    let names: Vec<StepName> = v.steps.iter().map(|s| s.step).collect();
    assert!(names.contains(&StepName::ApiScopes) && !names.contains(&StepName::ApiRepository), "{names:?}");

    // A wrong token is saved (a person can fix it without retyping everything) and fails.
    let wrong = b.api.create_credential(&on_host("wrong", VERDICT_WRONG_TOKEN, &host)).await.unwrap();
    assert_eq!(b.api.status(), 201);
    assert_eq!((wrong.verification.status, wrong.verification.code), (VerificationStatus::Fail, Code::AuthFailed));
    assert!(!wrong.verification.remedy.is_empty());

    // Without read:repository: a scope gap, named as such.
    let noread = b.api.create_credential(&on_host("noread", SIM_NOREAD, &host)).await.unwrap();
    let nv = &noread.verification;
    assert_eq!((nv.status, nv.code), (VerificationStatus::Fail, Code::ScopeMissing), "{nv:?}");
    assert!(nv.message.contains("read:repository:bitbucket"), "{nv:?}");
    assert!(nv.missing_scopes.contains(&"read:repository:bitbucket".to_owned()), "{nv:?}");

    // The list carries each verdict.
    let list = b.api.list_credentials().await.unwrap();
    let status = |n: &str| list.iter().find(|c| c.name == n).map(|c| c.verification.status);
    assert_eq!(
        (status("good"), status("wrong"), status("noread")),
        (Some(VerificationStatus::Ok), Some(VerificationStatus::Fail), Some(VerificationStatus::Fail))
    );

    // Verify with a clone URL: the Git steps run too, and agree with REST on the code.
    let url = sim.cloud_git_url("acme/app");
    let c = b.api.verify_credential(noread.id, &CredentialVerify { url: Some(url.clone()) }).await.unwrap();
    assert_eq!(b.api.status(), 200);
    let steps = &c.verification.steps;
    assert_eq!(step(steps, StepName::GitDiscovery).code, Code::ScopeMissing, "{}", codes(steps));
    assert_eq!(c.verification.status, VerificationStatus::Fail);

    // Replacing the wrong token verifies the new one at once.
    let fixed = CredentialUpdate { secret: Some(SIM_GOOD.into()), ..CredentialUpdate::default() };
    let c = b.api.update_credential(wrong.id, &fixed).await.unwrap();
    assert_eq!(c.verification.status, VerificationStatus::Ok, "{:?}", c.verification);

    // A credential that names no host: unverified, and verifying it needs a URL.
    let bare = b.api.create_credential(&bitbucket_api_token("bare", SIM_GOOD)).await.unwrap();
    assert_eq!(bare.verification.status, VerificationStatus::Unverified);
    let e = refused(b.api.verify_credential(bare.id, &CredentialVerify::default()).await);
    assert_eq!(status_code(&e), (Some(422), Some(Code::InvalidInput)), "{e}");
    let bad = CredentialVerify { url: Some("https://jo:pw-in-url@bitbucket.org".into()) };
    let e = refused(b.api.verify_credential(bare.id, &bad).await);
    assert_eq!(status_code(&e), (Some(422), Some(Code::SecretInUrl)), "{e}");
    let c = b.api.verify_credential(bare.id, &CredentialVerify { url: Some(host.clone()) }).await.unwrap();
    assert_eq!(c.verification.status, VerificationStatus::Ok, "{:?}", c.verification);
    // An empty body verifies on the host it was verified on last.
    let path = format!("/api/v1/credentials/{}/verify", bare.id);
    let (status, body, _) = b.raw(reqwest::Method::POST, &path, Some(&b.token), None, None).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    assert_eq!(body["verification"]["status"], "ok", "{body}");

    // A host that is not one.
    let e = refused(b.api.create_credential(&on_host("x", SIM_GOOD, "not a host")).await);
    assert_eq!(status_code(&e), (Some(422), Some(Code::InvalidUrl)), "{e}");

    // The CLI: verify exits 0 or 1 with the verdict; add prints it, saves, and exits 1.
    let (_home, session) = signed_in(&b).await;
    let r = berth(&b, &session, &["credential", "verify", "good"], None).await;
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("verified on") && r.stdout.contains("Jo Doe"), "{}", r.stdout);
    let r = berth(&b, &session, &["credential", "verify", "noread", "--url", &url], None).await;
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stdout.contains("verification FAILED") && r.stdout.contains("scope_missing"), "{}", r.stdout);
    let r = berth(&b, &session, &["--json", "credential", "verify", "noread"], None).await;
    assert_eq!(r.code, 1, "{}", r.all());
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("JSON");
    assert_eq!(v["verification"]["code"], "scope_missing", "{}", r.stdout);
    let args =
        ["credential", "add", "--name", "cli-wrong", "--kind", "bitbucket_api_token", "--email", "jo@example.com"];
    let mut args = args.to_vec();
    args.extend(["--host", host.as_str(), "--secret-stdin"]);
    let r = berth(&b, &session, &args, Some(&format!("{VERDICT_WRONG_TOKEN}\n"))).await;
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stdout.contains("saved") && r.stdout.contains("auth_failed"), "{}", r.stdout);
    assert!(b.api.list_credentials().await.unwrap().iter().any(|c| c.name == "cli-wrong"), "it was saved");
    let r = berth(&b, &session, &["credential", "list"], None).await;
    assert!(r.stdout.contains("VERIFIED") && r.stdout.contains("fail "), "{}", r.stdout);
    // Replacing a secret waits for the re-check of every repository and prints each.
    b.api.create_repository(&new_repository("app", &url, "good")).await.unwrap();
    let r = berth(
        &b,
        &session,
        &["credential", "update", "good", "--secret-stdin"],
        Some(&format!("{VERDICT_WRONG_TOKEN}\n")),
    )
    .await;
    assert_eq!(r.code, 1, "a wrong new token: {}", r.all());
    assert!(r.stdout.contains("Re-checked repository \"app\"") && r.stdout.contains("FAILED"), "{}", r.stdout);
    assert!(r.stdout.contains("The change is saved"), "{}", r.stdout);
    for text in [r.all(), b.api.body()] {
        assert!(!text.contains(VERDICT_WRONG_TOKEN) && !text.contains(SIM_GOOD));
    }
    b.stop().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scope_gaps_warn_only_for_what_the_deployment_wants() {
    let sim = start_sim().await;
    let url = sim.cloud_git_url("acme/app");
    let read_only = CredentialCreate {
        scopes: Some(vec!["read:repository:bitbucket".into()]),
        ..on_host("ro", SIM_READ_ONLY, &host_of(&sim))
    };

    // As the README says: a token with read:repository only. Nothing more is wanted, so its
    // repositories carry no scope warning (the plain-HTTP simulator's TLS warning remains).
    let b = Berth::start_with(Options { config_toml: Some(config(&sim, "")), ..Options::default() }).await;
    let c = b.api.create_credential(&read_only).await.unwrap();
    assert_eq!(c.verification.status, VerificationStatus::Ok, "{:?}", c.verification);
    assert!(c.wanted_capabilities.is_empty());
    assert!(c.scope_gaps.iter().all(|g| g.need == ScopeNeed::Other), "{:?}", c.scope_gaps);
    let r = b.api.create_repository(&new_repository("app", &url, "ro")).await.unwrap();
    let last = r.last_check.unwrap();
    assert_eq!(last.warning_codes, [Code::InsecureTransport], "{}", codes(&last.checks));
    assert_eq!(step(&last.checks, StepName::ApiScopes).status, StepStatus::Pass);
    assert!(!last.checks.iter().any(|s| s.code == Code::AccessDenied), "{}", codes(&last.checks));
    b.stop().await;

    // A deployment that wants webhooks: their scopes are a warning, once, on the scopes step.
    let want = "[scopes]\nwant = [\"webhooks\"]\n";
    let b = Berth::start_with(Options { config_toml: Some(config(&sim, want)), ..Options::default() }).await;
    let c = b.api.create_credential(&read_only).await.unwrap();
    assert_eq!(c.wanted_capabilities, [Capability::Webhooks]);
    assert_eq!((c.verification.status, c.verification.code), (VerificationStatus::Warn, Code::ScopeMissing));
    let wanted: Vec<&str> =
        c.scope_gaps.iter().filter(|g| g.need == ScopeNeed::Wanted).map(|g| g.scope.as_str()).collect();
    assert_eq!(wanted, ["read:webhook:bitbucket", "write:webhook:bitbucket"]);
    let r = b.api.create_repository(&new_repository("app", &url, "ro")).await.unwrap();
    let last = r.last_check.unwrap();
    let scopes = step(&last.checks, StepName::ApiScopes);
    assert_eq!((scopes.status, scopes.code), (StepStatus::Warn, Code::ScopeMissing), "{scopes:?}");
    // Said once: the message names the scopes; neither the remedy nor the details repeat them.
    let said = format!("{} {} {}", scopes.message, scopes.remedy, scopes.details.join(" "));
    assert_eq!(said.matches("write:webhook:bitbucket").count(), 1, "{said}");
    b.stop().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dangling_head_is_no_default_and_registration_asks_for_one() {
    let b = Berth::start().await;
    b.api_token_credential("ci").await;
    // master was renamed to main on the server, and HEAD still names master.
    let root = tempfile::tempdir().unwrap();
    bare_repo(root.path(), "team/old.git", "master", &["main", "develop"]);
    let opts = GitServerOptions {
        users: vec![("x-bitbucket-api-token-auth".into(), TOKEN.into())],
        ..GitServerOptions::default()
    };
    let git = GitServer::start(root.path(), opts).await;
    let url = git.repo_url("team/old.git");

    let v = b.api.remote_branches(&remote(&url, "ci")).await.unwrap();
    assert_eq!(v.default_branch, None, "a missing branch is not the remote's default");
    let s = step(&v.checks, StepName::DefaultBranch);
    assert_eq!((s.status, s.code), (StepStatus::Warn, Code::DefaultBranchMissing), "{s:?}");
    assert!(s.message.contains("master") && s.details == ["develop", "main"], "{s:?}");

    let e = refused(b.api.create_repository(&new_repository("old", &url, "ci")).await);
    assert_eq!(status_code(&e), (Some(422), Some(Code::DefaultBranchMissing)), "{e}");
    assert_eq!(step(e.checks(), StepName::DefaultBranch).details, ["develop", "main"], "the choices");
    let req = RepositoryCreate { default_branch: Some("main".into()), ..new_repository("old", &url, "ci") };
    let r = b.api.create_repository(&req).await.unwrap();
    assert_eq!(r.default_branch, "main");
    b.stop().await;
    git.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_administrators_hear_of_the_network_policy_setting() {
    let b = Berth::start().await;
    b.api_token_credential("ci").await;
    add_user(&b, "reggie", REGISTRAR_PASSWORD, "registrar").await;
    let reggie = Api::login(&b.base, "reggie", REGISTRAR_PASSWORD).await;
    // Link-local (cloud metadata): refused even where loopback is allowed.
    let url = "http://169.254.169.254/team/app.git";
    for (who, api, admin) in [("admin", &b.api, true), ("registrar", &reggie, false)] {
        let e = refused(api.remote_branches(&remote(url, "ci")).await);
        assert_eq!(e.code(), Some(Code::DestinationForbidden), "{who}: {e}");
        let s = step(e.checks(), StepName::Destination);
        assert_eq!(s.status, StepStatus::Fail, "{who}: the network policy's own step: {}", codes(e.checks()));
        assert_eq!(step(e.checks(), StepName::Dns).status, StepStatus::Pass, "{who}");
        assert_eq!(s.remedy.contains("BERTH_NETWORK_ALLOW"), admin, "{who}: {}", s.remedy);
        assert_eq!(s.remedy.contains("ask a Berth administrator"), !admin, "{who}: {}", s.remedy);
        let e = refused(api.create_repository(&new_repository("meta", url, "ci")).await);
        assert_eq!(step(e.checks(), StepName::Destination).remedy.contains("BERTH_NETWORK_ALLOW"), admin, "{who}");
    }
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_credential_kind_for_unknown_hosts_is_honestly_unverified() {
    // A generic host has no REST API Berth can ask: a base URL cannot verify a credential there,
    // and the answer says so instead of pretending.
    let b = Berth::start().await;
    let host = b.git.repo_url("team/app.git");
    let base = host.split("/git/").next().unwrap_or(&host).to_owned();
    let req = CredentialCreate { host: Some(base), ..new_credential("plain", CredentialKind::AccessToken, TOKEN) };
    let c = b.api.create_credential(&req).await.unwrap();
    assert_eq!(c.verification.status, VerificationStatus::Unverified, "{:?}", c.verification);
    assert!(c.verification.remedy.contains("clone URL"), "{:?}", c.verification);
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_shows_each_verdict_and_tests_a_credential() {
    use crate::harness::browser::Browser;
    let sim = start_sim().await;
    let want = "[scopes]\nwant = [\"pull_requests\"]\n";
    let b = Berth::start_with(Options { config_toml: Some(config(&sim, want)), ..Options::default() }).await;
    let base = b.base.clone();
    let host = format!("127.0.0.1:{}", sim.cloud_port());
    let web = Browser::start("verdicts").await;
    web.sign_in(&base, "admin", ADMIN_PASSWORD).await;

    // Create Credential offers the configured host; the verdict comes right after Save.
    web.goto(&format!("{base}/credentials/new")).await;
    let hint = web.text("fieldset.scopes p.hint").await;
    assert!(hint.contains("also wants: pull requests"), "the form says what this deployment wants: {hint}");
    web.fill("#cred_name", "web-wrong").await;
    web.fill("#email", "jo@example.com").await;
    web.fill("#username", "jo").await;
    web.fill("#secret", VERDICT_WRONG_TOKEN).await;
    web.c.execute(&format!("document.querySelector('#host').value = '{host}';"), vec![]).await.unwrap();
    web.click("#save_credential").await;
    web.find("#credentials").await;
    let flash = web.text("#flash").await;
    assert!(flash.contains("Saved credential web-wrong") && flash.contains("Verification failed"), "{flash}");
    let row = web.text("#credentials tr:has(a)").await;
    assert!(row.contains("Verification failed") && row.contains("auth_failed"), "{row}");
    web.shot("01-verdict-after-save").await;
    // Test, from the list: the credential's page with the verdict.
    web.click("#credentials button[data-test]").await;
    web.find("#verification").await;
    assert!(web.text("#flash").await.contains("Verification failed"));

    // Fix the token through the API; the Test button shows the new verdict and who the host says it is.
    let id = b.api.list_credentials().await.unwrap()[0].id;
    let fixed = CredentialUpdate { secret: Some(SIM_READ_ONLY.into()), ..CredentialUpdate::default() };
    b.api.update_credential(id, &fixed).await.unwrap();
    web.goto(&format!("{base}/credentials/{id}")).await;
    web.click("#test_credential").await;
    let flash = web.text("#flash").await;
    // Only read:repository: Berth's job works, pull requests are wanted, so a warning.
    assert!(flash.contains("with a warning") && flash.contains("pullrequest"), "{flash}");
    let card = web.text("#verification").await;
    assert!(card.contains("Verified, with a warning") && card.contains("scope_missing"), "{card}");
    let gaps = web.text("#scope_gaps").await;
    assert!(gaps.contains("wanted here") && gaps.contains("not wanted here"), "{gaps}");
    assert!(web.text("#wanted").await.contains("pull requests"));
    web.shot_full("02-test-button").await;
    // A phone: the verification card does not scroll sideways.
    web.c.set_window_size(390, 844).await.unwrap();
    web.goto(&format!("{base}/credentials/{id}")).await;
    crate::ui::no_sideways_scroll(&web, "credential page").await;
    web.shot_full("03-phone-verification").await;
    web.close().await;
    b.stop().await;
    sim.shutdown().await;
}
