//! Bitbucket Data Center.

use crate::mock::*;
use berth_core::{Code, Provider, StepName, StepStatus};
use berth_forge::RepoTarget;

fn dc(mock: &Mock) -> RepoTarget {
    RepoTarget {
        provider: Provider::BitbucketDatacenter,
        api_url: format!("{}/bitbucket/rest", mock.base),
        repo_path: "bitbucket/scm/PROJ/repo".into(),
    }
}

const DC_PROPS: &str =
    r#"{"version":"9.2.1","buildNumber":"9002001","buildDate":"1718000000000","displayName":"Bitbucket"}"#;
const DC_NO_PERMISSION: &str = r#"{"errors":[{"context":null,"message":"You are not permitted to access this resource","exceptionName":"com.atlassian.bitbucket.AuthorisationException"}]}"#;

#[tokio::test]
async fn datacenter_401_on_repository_means_no_permission() {
    let mock = serve(|r, _| match r.path.as_str() {
        "/bitbucket/rest/api/latest/application-properties" => reply(200, DC_PROPS).header("x-ausername", "jdoe"),
        "/bitbucket/rest/api/latest/projects/PROJ/repos/repo" => reply(401, DC_NO_PERMISSION),
        _ => reply(404, r#"{"errors":[{"message":"not found"}]}"#),
    })
    .await;
    let cred = Cred::token("BBDC-dc-token-secret");
    let r = forge().check(&dc(&mock), &cred.view()).await;
    assert_eq!(names(&r), [StepName::ApiCredential, StepName::ApiScopes, StepName::ApiRepository]);
    assert_eq!(r.authenticated_as.as_deref(), Some("jdoe"));
    assert!(step(&r, StepName::ApiCredential)
        .message
        .contains("authenticated as jdoe on Bitbucket (Bitbucket Data Center 9.2.1)"));
    let s = step(&r, StepName::ApiRepository);
    assert_eq!((s.status, s.code), (StepStatus::Fail, Code::AccessDenied));
    assert!(s.message.contains("authenticated as jdoe, who lacks REPO_READ on PROJ/repo"), "{}", s.message);
    assert!(s.details[0].contains("not permitted") && s.details[0].contains("AuthorisationException"));
    assert!(r.fatal);
    assert_eq!(mock.hits()[0].auth.as_deref(), Some("Bearer BBDC-dc-token-secret"));
    assert_no_secret(&r, "BBDC-dc-token-secret");
}

#[tokio::test]
async fn datacenter_bad_token_and_missing_repository() {
    let mock = serve(|r, _| match r.auth.as_deref() {
        Some("Bearer good") => match r.path.as_str() {
            "/bitbucket/rest/api/latest/application-properties" => reply(200, DC_PROPS).header("x-ausername", "jdoe"),
            _ => reply(404, r#"{"errors":[{"context":null,"message":"Repository PROJ/repo does not exist.","exceptionName":"com.atlassian.bitbucket.repository.NoSuchRepositoryException"}]}"#),
        },
        _ => reply(401, r#"{"errors":[{"context":null,"message":"Authentication failed. Please check your credentials and try again.","exceptionName":"com.atlassian.bitbucket.auth.IncorrectPasswordAuthenticationException"}]}"#),
    })
    .await;
    let bad = Cred::token("bad");
    let r = forge().check(&dc(&mock), &bad.view()).await;
    assert_eq!(names(&r), [StepName::ApiCredential]);
    assert_eq!((r.steps[0].code, r.fatal), (Code::AuthFailed, true));
    let good = Cred::token("good");
    let r = forge().check(&dc(&mock), &good.view()).await;
    let s = step(&r, StepName::ApiRepository);
    assert_eq!(s.code, Code::RepositoryNotFoundOrNoAccess);
    assert!(r.fatal);
}

#[tokio::test]
async fn datacenter_repository_and_default_branch() {
    let mock = serve(|r, _| match r.path.as_str() {
        "/bitbucket/rest/api/latest/application-properties" => reply(200, DC_PROPS).header("x-ausername", "jdoe"),
        "/bitbucket/rest/api/latest/projects/PROJ/repos/repo" => reply(
            200,
            r#"{"slug":"repo","name":"Repo","scmId":"git","state":"AVAILABLE","public":false,"project":{"key":"PROJ","name":"Project"}}"#,
        ),
        "/bitbucket/rest/api/latest/projects/PROJ/repos/repo/default-branch" => {
            reply(200, r#"{"id":"refs/heads/develop","displayId":"develop","type":"BRANCH"}"#)
        }
        _ => reply(404, r#"{"errors":[{"message":"not found"}]}"#),
    })
    .await;
    let cred = Cred::token("dc-token");
    let r = forge().check(&dc(&mock), &cred.view()).await;
    assert!(r.steps.iter().all(|s| s.status == StepStatus::Pass), "{:#?}", r.steps);
    assert!(step(&r, StepName::ApiRepository).message.contains("default branch develop"));
    let repo = r.repository.unwrap();
    assert_eq!(
        (repo.full_name.as_str(), repo.private, repo.main_branch.as_deref()),
        ("PROJ/repo", true, Some("develop"))
    );
}
