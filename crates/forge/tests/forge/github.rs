//! GitHub.

use crate::mock::*;
use berth_core::{Code, Provider, StepName, StepStatus};
use berth_forge::RepoTarget;

fn gh(mock: &Mock) -> RepoTarget {
    RepoTarget { provider: Provider::Github, api_url: mock.base.clone(), repo_path: "octo/app".into() }
}

const GH_USER: &str = r#"{"login":"octocat","id":1,"name":"The Octocat","type":"User"}"#;

#[tokio::test]
async fn github_happy_path_with_classic_scopes() {
    let expires = (chrono_like_date(10)) + " 10:00:00 UTC";
    let mock = serve(move |r, _| match r.path.as_str() {
        "/user" => reply(200, GH_USER)
            .header("x-oauth-scopes", "repo, read:org")
            .header("github-authentication-token-expiration", &expires),
        "/repos/octo/app" => reply(
            200,
            r#"{"full_name":"octo/app","private":true,"default_branch":"trunk","archived":false,"permissions":{"admin":false,"maintain":false,"push":true,"triage":true,"pull":true}}"#,
        )
        .header("x-oauth-scopes", "repo, read:org"),
        _ => reply(404, r#"{"message":"Not Found","documentation_url":"https://docs.github.com/rest"}"#),
    })
    .await;
    let cred = Cred::token("ghp_testtokennevershown");
    let r = forge().check(&gh(&mock), &cred.view()).await;
    assert_eq!(names(&r), [StepName::ApiCredential, StepName::ApiScopes, StepName::ApiRepository]);
    let c = step(&r, StepName::ApiCredential);
    assert_eq!((c.status, c.code), (StepStatus::Warn, Code::TokenExpiresSoon));
    assert_eq!(r.authenticated_as.as_deref(), Some("The Octocat (octocat)"));
    assert_eq!(step(&r, StepName::ApiScopes).status, StepStatus::Pass);
    assert_eq!(r.granted_scopes, Some(vec!["repo".to_owned(), "read:org".to_owned()]));
    let repo = r.repository.clone().unwrap();
    assert_eq!(
        (repo.private, repo.main_branch.as_deref(), repo.permission.as_deref()),
        (true, Some("trunk"), Some("push"))
    );
    assert_eq!(mock.hit("/user").unwrap().auth.as_deref(), Some("Bearer ghp_testtokennevershown"));
    assert!(!r.fatal);
    assert_no_secret(&r, "ghp_testtokennevershown");
}

fn chrono_like_date(days: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::days(days)).format("%Y-%m-%d").to_string()
}

#[tokio::test]
async fn github_404_and_public_repo_scopes() {
    let mock = serve(|r, _| match r.path.as_str() {
        "/user" => reply(200, GH_USER).header("x-oauth-scopes", "read:org"),
        "/repos/octo/public" => reply(200, r#"{"full_name":"octo/public","private":false,"default_branch":"main","permissions":{"admin":false,"push":false,"pull":true}}"#),
        _ => reply(404, r#"{"message":"Not Found","documentation_url":"https://docs.github.com/rest/repos/repos#get-a-repository"}"#),
    })
    .await;
    let cred = Cred::token("ghp_x");
    let r = forge().check(&gh(&mock), &cred.view()).await;
    let s = step(&r, StepName::ApiRepository);
    assert_eq!((s.status, s.code), (StepStatus::Fail, Code::RepositoryNotFoundOrNoAccess));
    assert!(s.message.contains("authenticated as The Octocat (octocat), who cannot see octo/app"), "{}", s.message);
    assert_eq!(s.details, ["Not Found"]);
    assert!(r.fatal);

    let public = RepoTarget { repo_path: "octo/public".into(), ..gh(&mock) };
    let r = forge().check(&public, &cred.view()).await;
    let scopes = step(&r, StepName::ApiScopes);
    assert_eq!((scopes.status, scopes.code), (StepStatus::Pass, Code::Ok), "nothing beyond reading is wanted");
    assert_eq!(r.missing_scopes, ["public_repo"]);
    let wants = forge().wanting(&[berth_core::Capability::PullRequests]).check(&public, &cred.view()).await;
    let scopes = step(&wants, StepName::ApiScopes);
    assert_eq!((scopes.status, scopes.code), (StepStatus::Warn, Code::ScopeMissing));
    assert_eq!(r.repository.unwrap().permission.as_deref(), Some("pull"));
    assert!(!r.fatal);
}

#[tokio::test]
async fn github_bad_credentials() {
    let mock = serve(|_, _| {
        reply(401, r#"{"message":"Bad credentials","documentation_url":"https://docs.github.com/rest","status":"401"}"#)
    })
    .await;
    let cred = Cred::token("ghp_revoked");
    let r = forge().check(&gh(&mock), &cred.view()).await;
    assert_eq!(names(&r), [StepName::ApiCredential]);
    assert_eq!((r.steps[0].code, r.fatal), (Code::AuthFailed, true));
    assert!(r.steps[0].message.contains("Bad credentials"));
}

#[tokio::test]
async fn github_fine_grained_token_scopes_unknown() {
    let mock = serve(|r, _| match r.path.as_str() {
        "/user" => reply(200, GH_USER),
        "/repos/octo/app" => reply(200, r#"{"full_name":"octo/app","private":true,"default_branch":"main"}"#),
        _ => reply(404, r#"{"message":"Not Found"}"#),
    })
    .await;
    let cred = Cred::token("github_pat_x");
    let r = forge().check(&gh(&mock), &cred.view()).await;
    assert_eq!(names(&r), [StepName::ApiCredential, StepName::ApiScopes, StepName::ApiRepository]);
    assert!(step(&r, StepName::ApiScopes).message.contains("fine-grained"));
    assert_eq!(r.granted_scopes, None);
}

#[tokio::test]
async fn unsupported_providers_are_skipped() {
    let cred = Cred::token("x");
    let gitlab =
        RepoTarget { provider: Provider::Gitlab, api_url: "https://gitlab.com/api/v4".into(), repo_path: "o/r".into() };
    let r = forge().check(&gitlab, &cred.view()).await;
    assert_eq!(names(&r), [StepName::ApiCredential]);
    assert_eq!(r.steps[0].status, StepStatus::Skip);
    assert!(!berth_forge::supports(Provider::Generic));
}
