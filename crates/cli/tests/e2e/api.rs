//! The REST API end to end: credentials, Refresh, registration and every finding the core
//! issue names, against a real Git server, through the typed `ApiClient`. Raw requests only
//! where the request itself is the subject: a malformed id, the OpenAPI document.

use crate::harness::*;
use berth_core::{Code, CredentialKind, StepName, StepStatus};
use berth_proto::{CredentialCreate, CredentialUpdate, RepositoryCreate, RepositoryUpdate};
use berth_testkit::CaptureServer;
use chrono::NaiveDate;
use reqwest::StatusCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_callers_are_refused_and_health_is_open() {
    let b = Berth::start().await;
    let anonymous = Api::new(&b.base, "");
    let e = refused(anonymous.list_credentials().await);
    assert_eq!(status_code(&e), (Some(401), Some(Code::Unauthenticated)), "{e}");
    anonymous.health().await.unwrap();
    assert_eq!(anonymous.status(), 200);
    let e = refused(anonymous.login("admin", WRONG_ADMIN_PASSWORD).await);
    assert_eq!(e.status(), Some(401), "{e}");
    // Raw: an id that is not a number cannot be sent through the typed client.
    let (s, v) = b.raw_get("/api/v1/repositories/abc").await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_lists_every_route() {
    let b = Berth::start().await;
    // Raw: the document is read as JSON, not as an API type.
    let (_, v) = b.raw_get("/api/openapi.json").await;
    let paths = v["paths"].as_object().unwrap();
    for p in [
        "/api/v1/auth/login",
        "/api/v1/credentials",
        "/api/v1/credentials/{id}",
        "/api/v1/remote-branches",
        "/api/v1/repositories",
        "/api/v1/repositories/{id}",
        "/api/v1/repositories/{id}/check",
    ] {
        assert!(paths.contains_key(p), "{p} missing from the OpenAPI document");
    }
    assert!(v["components"]["schemas"]["Code"].is_object());
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_are_write_only_validated_and_guarded() {
    let b = Berth::start().await;
    // API tokens need the Atlassian email for REST calls.
    let e = refused(b.api.create_credential(&new_credential("x", CredentialKind::BitbucketApiToken, TOKEN)).await);
    assert_eq!(status_code(&e), (Some(422), Some(Code::InvalidInput)), "{e}");
    // App passwords are explained, not stored.
    let old = CredentialCreate {
        username: Some("jo".into()),
        ..new_credential("old", CredentialKind::BitbucketAppPassword, APP_PASSWORD)
    };
    let e = refused(b.api.create_credential(&old).await);
    assert_eq!(status_code(&e), (Some(422), Some(Code::AppPasswordRetired)), "{e}");
    assert!(e.remedy().contains("read:repository:bitbucket"));

    let id = b.api_token_credential("ci").await;
    // Every answer is scanned for the known secrets (TOKEN among them) as it arrives.
    let one = b.api.get_credential(id).await.unwrap();
    let one_body = b.api.body();
    let all = b.api.list_credentials().await.unwrap();
    for body in [one_body, b.api.body()] {
        assert!(!body.contains(TOKEN), "a response carried the secret");
    }
    assert_eq!(one.kind_label, "Username with API Token");
    assert!(all.iter().any(|c| c.kind_label == "Username with API Token"), "{all:?}");
    assert_eq!(one.email.as_deref(), Some("jo@example.com"));
    assert!(one.missing_scopes.is_empty(), "{one:?}");
    // Every scope the token lacks names what it blocks; with nothing wanted beyond Berth's own
    // job (read:repository, granted), none of them matters: information, not a warning.
    assert_eq!(one.scope_gaps.len(), 13, "the product page's other 12 and read:user: {one:?}");
    assert!(one.scope_gaps.iter().all(|g| g.need == berth_proto::ScopeNeed::Other), "{one:?}");
    let webhook = one.scope_gaps.iter().find(|g| g.scope == "write:webhook:bitbucket").unwrap();
    assert_eq!(webhook.blocks, ["webhooks"]);
    let e = refused(
        b.api.create_credential(&new_credential("CI", CredentialKind::AccessToken, DUPLICATE_NAME_SECRET)).await,
    );
    assert_eq!(status_code(&e), (Some(409), Some(Code::NameTaken)), "{e}");

    // Rotate: the new secret is used from then on, and is not echoed either.
    let rotate = CredentialUpdate { secret: Some(ROTATED_SECRET.into()), ..CredentialUpdate::default() };
    let v = b.api.update_credential(id, &rotate).await.unwrap();
    assert_eq!(b.api.status(), 200);
    assert!(!b.api.body().contains(ROTATED_SECRET));
    assert_ne!(v.secret_updated_at, one.secret_updated_at);
    let back = CredentialUpdate {
        secret: Some(TOKEN.into()),
        expires_on: Some(NaiveDate::from_ymd_opt(2099, 1, 1)),
        ..CredentialUpdate::default()
    };
    b.api.update_credential(id, &back).await.unwrap();
    assert_eq!(b.api.status(), 200);

    // In use: refused, naming the repository.
    b.register("app", "team/app.git", "ci").await;
    let e = refused(b.api.delete_credential(id).await);
    assert_eq!(status_code(&e), (Some(409), Some(Code::CredentialInUse)), "{e}");
    assert!(e.message().contains("app"));

    let data = b.data.path().to_owned();
    let _keep = b.stop_keep_data().await;
    // Nothing on disk holds the token in plaintext.
    for entry in std::fs::read_dir(&data).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(!bytes.windows(TOKEN.len()).any(|w| w == TOKEN.as_bytes()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_lists_branches_and_default_branch() {
    let b = Berth::start().await;
    b.api_token_credential("ci").await;
    let pasted = format!("  git clone {}  ", b.git.repo_url("team/app.git"));
    let v = b.api.remote_branches(&remote(&pasted, "ci")).await.unwrap();
    assert_eq!(b.api.status(), 200);
    assert_eq!(v.default_branch.as_deref(), Some("trunk"));
    assert_eq!(v.protocol, "v2");
    let names: Vec<&str> = v.branches.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(names, vec!["develop", "feature/login", "release/1.0", "trunk"]);
    assert_eq!(v.branches[0].commit.len(), 40);
    assert_eq!(v.clone_url, b.git.repo_url("team/app.git"));
    // An empty repository still reports its default branch.
    let v = b.api.remote_branches(&remote(&b.git.repo_url("team/empty.git"), "ci")).await.unwrap();
    assert_eq!(b.api.status(), 200);
    assert_eq!(v.default_branch.as_deref(), Some("main"));
    assert!(v.branches.is_empty(), "{v:?}");
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v0_server_gives_the_same_answer() {
    let b = Berth::start_with(Options { protocol_v2: false, ..Options::default() }).await;
    b.api_token_credential("ci").await;
    let v = b.api.remote_branches(&remote(&b.git.repo_url("team/app.git"), "ci")).await.unwrap();
    assert_eq!(b.api.status(), 200);
    assert_eq!(v.protocol, "v0");
    assert_eq!(v.default_branch.as_deref(), Some("trunk"));
    assert_eq!(v.branches.len(), 4);
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_checks_before_saving() {
    let b = Berth::start().await;
    let cred = b.api_token_credential("ci").await;
    let url = b.git.repo_url("team/app.git");

    // A branch that does not exist: refused with the closest names, nothing saved.
    let typo = RepositoryCreate { default_branch: Some("trnk".into()), ..new_repository("app", &url, "ci") };
    let e = refused(b.api.create_repository(&typo).await);
    assert_eq!(status_code(&e), (Some(422), Some(Code::BranchNotFound)), "{e}");
    assert_eq!(step(e.checks(), StepName::DefaultBranch).details, ["trunk"]);
    assert!(b.api.list_repositories().await.unwrap().is_empty());

    // Unsupported VCS.
    let svn = RepositoryCreate { vcs: "svn".into(), ..new_repository("app", &url, "ci") };
    let e = refused(b.api.create_repository(&svn).await);
    assert_eq!(status_code(&e), (Some(422), Some(Code::UnsupportedVcs)), "{e}");

    // Registered with the remote's default branch, every step reported.
    let pasted = format!("git clone {}/", url.trim_end_matches(".git"));
    let v = b.api.create_repository(&new_repository("app", &pasted, &cred.to_string())).await.unwrap();
    assert_eq!(b.api.status(), 201);
    assert_eq!(v.clone_url, url);
    assert_eq!(v.default_branch, "trunk");
    assert_eq!(v.vcs, "git");
    assert_eq!(v.credential.as_ref().map(|c| c.name.as_str()), Some("ci"));
    let last = v.last_check.as_ref().unwrap();
    assert!(last.ok, "{}", codes(&last.checks));
    use StepName::*;
    for name in [Url, Credential, Dns, Connect, GitDiscovery, Branches, DefaultBranch] {
        assert_eq!(step(&last.checks, name).status, StepStatus::Pass, "{}: {}", name.as_str(), codes(&last.checks));
    }
    assert_eq!(step(&last.checks, Tls).code, Code::InsecureTransport);
    let id = v.id;

    // The same repository under other spellings is refused, naming the first.
    for dup in [format!("{url}/"), url.replace("http://", "http://jo@"), url.replace("/git/", "/git//")] {
        let e = refused(b.api.create_repository(&new_repository("app2", &dup, "ci")).await);
        assert_eq!(status_code(&e), (Some(409), Some(Code::AlreadyRegistered)), "{dup}: {e}");
        assert!(e.message().contains("\"app\""));
    }

    // Name taken.
    let e = refused(b.api.create_repository(&new_repository("APP", &b.git.repo_url("team/lib.git"), "ci")).await);
    assert_eq!(status_code(&e), (Some(409), Some(Code::NameTaken)), "{e}");

    // Update re-checks; a bad branch leaves the stored one.
    let branch = |name: &str| RepositoryUpdate { default_branch: Some(name.into()), ..RepositoryUpdate::default() };
    let e = refused(b.api.update_repository(id, &branch("nope")).await);
    assert_eq!(status_code(&e), (Some(422), Some(Code::BranchNotFound)), "{e}");
    let v = b.api.update_repository(id, &branch("develop")).await.unwrap();
    assert_eq!(b.api.status(), 200);
    assert_eq!(v.default_branch, "develop");

    // Re-check, then break the credential and re-check again.
    let c = b.api.check_repository(id).await.unwrap();
    assert_eq!((b.api.status(), c.ok), (200, true), "{}", codes(&c.checks));
    let wrong = CredentialUpdate { secret: Some(WRONG_TOKEN.into()), ..CredentialUpdate::default() };
    b.api.update_credential(cred, &wrong).await.unwrap();
    let c = b.api.check_repository(id).await.unwrap();
    assert_eq!((b.api.status(), c.ok), (200, false));
    assert_eq!(step(&c.checks, GitDiscovery).code, Code::AuthFailed);
    assert_eq!(step(&c.checks, Branches).status, StepStatus::Skip);
    let v = b.api.get_repository(id).await.unwrap();
    assert_eq!(v.last_check.map(|c| c.code), Some(Code::AuthFailed));

    b.api.delete_repository(id).await.unwrap();
    assert_eq!(b.api.status(), 204);
    b.api.delete_credential(cred).await.unwrap();
    assert_eq!(b.api.status(), 204);
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn findings_name_the_cause() {
    let b = Berth::start().await;
    b.api_token_credential("ci").await;
    let alice = CredentialCreate {
        username: Some("alice".into()),
        ..new_credential("alice", CredentialKind::UsernamePassword, WRONG_PASSWORD)
    };
    b.api.create_credential(&alice).await.unwrap();
    assert_eq!(b.api.status(), 201);
    let expired = CredentialCreate {
        expires_on: NaiveDate::from_ymd_opt(2026, 1, 1),
        ..bitbucket_api_token("expired", OLD_TOKEN)
    };
    b.api.create_credential(&expired).await.unwrap();
    assert_eq!(b.api.status(), 201);
    let base = b.git.base_url();

    use StepName::{Connect, Credential, GitDiscovery, Url};
    let cases: Vec<(String, &str, StepName, Code)> = vec![
        (b.git.repo_url("team/app.git"), "alice", GitDiscovery, Code::AuthFailed),
        (b.git.repo_url("team/app.git"), "expired", GitDiscovery, Code::TokenExpired),
        (b.git.repo_url("team/missing.git"), "ci", GitDiscovery, Code::RepositoryNotFoundOrNoAccess),
        (format!("{base}/login/team/app.git"), "ci", GitDiscovery, Code::NotAGitServer),
        (format!("{base}/dumb/team/app.git"), "ci", GitDiscovery, Code::NotAGitServer),
        (format!("{base}/forbidden/team/app.git"), "ci", GitDiscovery, Code::AccessDenied),
        (format!("{base}/ratelimited/team/app.git"), "ci", GitDiscovery, Code::RateLimited),
        (format!("https://jo:{URL_PASSWORD}@bitbucket.org/ws/app.git"), "ci", Url, Code::SecretInUrl),
        ("git@bitbucket.org:ws/app.git".to_owned(), "ci", Credential, Code::CredentialKindMismatch),
        ("not a url".to_owned(), "ci", Url, Code::InvalidUrl),
        ("http://127.0.0.1:1/ws/app.git".to_owned(), "ci", Connect, Code::ConnectFailed),
    ];
    for (url, cred, step_name, code) in cases {
        let e = refused(b.api.remote_branches(&remote(&url, cred)).await);
        assert_eq!(e.status(), Some(422), "{url}: {e}");
        assert_eq!(e.code(), Some(code), "{url}: {e}");
        let st = step(e.checks(), step_name);
        assert_eq!(st.status, StepStatus::Fail, "{url}: {}", codes(e.checks()));
        assert!(!st.remedy.is_empty(), "{url}: a failure carries a remedy");
        let listed = if url.starts_with("git@") { StepName::SSH.len() } else { StepName::ALL.len() };
        assert_eq!(e.checks().len(), listed, "every step is listed");
        assert!(!b.api.body().contains(URL_PASSWORD), "the password in the URL was echoed");
        assert!(!b.api.body().contains(TOKEN));
    }
    // The 403's remote lines and the 429's wait reach the user.
    let e = refused(b.api.remote_branches(&remote(&format!("{base}/forbidden/team/app.git"), "ci")).await);
    assert!(step(e.checks(), GitDiscovery).details.join("\n").contains("whitelist your IP"), "{}", error_json(&e));
    let e = refused(b.api.remote_branches(&remote(&format!("{base}/ratelimited/team/app.git"), "ci")).await);
    assert!(error_json(&e).contains("17"), "{}", error_json(&e));
    // A token for an SSH URL answers with the HTTPS alternative.
    let e = refused(b.api.remote_branches(&remote("git@bitbucket.org:ws/app.git", "ci")).await);
    assert!(e.remedy().contains("https://bitbucket.org/ws/app.git"));
    // An unknown credential.
    let e = refused(b.api.remote_branches(&remote(&b.git.repo_url("team/app.git"), "nobody")).await);
    assert_eq!(status_code(&e), (Some(422), Some(Code::CredentialNotFound)), "{e}");
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_origin_redirect_is_reported_and_gets_no_credential() {
    let b = Berth::start().await;
    b.api_token_credential("ci").await;
    let capture = CaptureServer::start().await;
    b.git.set_redirect_target(&capture.base_url());
    let e = refused(b.api.remote_branches(&remote(&format!("{}/moved/team/app.git", b.git.base_url()), "ci")).await);
    assert_eq!(status_code(&e), (Some(422), Some(Code::RepositoryMoved)), "{e}");
    assert!(error_json(&e).contains(&capture.base_url()), "the new location is named: {}", error_json(&e));
    assert!(capture.requests().is_empty(), "Berth contacted the new origin: {:?}", capture.requests());
    capture.shutdown().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_is_forbidden_by_default() {
    let b = Berth::start_with(Options { network_allow: None, ..Options::default() }).await;
    b.api_token_credential("ci").await;
    for url in [b.git.repo_url("team/app.git"), b.git.repo_url("team/app.git").replace("127.0.0.1", "localhost")] {
        let e = refused(b.api.remote_branches(&remote(&url, "ci")).await);
        assert_eq!(status_code(&e), (Some(422), Some(Code::DestinationForbidden)), "{url}: {e}");
    }
    assert!(b.git.requests().is_empty(), "the forbidden server was contacted");
    b.stop().await;
}
