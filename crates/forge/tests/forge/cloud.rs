//! Bitbucket Cloud.

use crate::mock::*;
use berth_core::credential::{Expiry, FULL_SCOPES};
use berth_core::{Capability, Code, CredentialKind, StepName, StepStatus};
use berth_forge::ForgeReport;
use secrecy::SecretString;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const USER_JO: &str = r#"{"type":"user","display_name":"Jo Doe","username":"jo","nickname":"jo","account_id":"5b10","uuid":"{d301abfa}"}"#;
const REPO_WS: &str = r#"{"type":"repository","full_name":"ws/repo","is_private":true,"scm":"git","mainbranch":{"type":"branch","name":"main"},"links":{"clone":[{"href":"https://bitbucket.org/ws/repo.git","name":"https"}]}}"#;
const PERM_WRITE: &str = r#"{"pagelen":100,"values":[{"type":"repository_permission","permission":"write","repository":{"type":"repository","name":"repo","full_name":"ws/repo"},"user":{"type":"user","nickname":"jo"}}],"page":1,"size":1}"#;
const SCOPE_403: &str = r#"{"type":"error","error":{"message":"Your credentials lack one or more required privilege scopes.","detail":{"granted":["write:repository:bitbucket","read:user:bitbucket"],"required":["read:repository:bitbucket"]}}}"#;
const NOT_FOUND: &str = r#"{"type":"error","error":{"message":"You may not have access to this repository or it no longer exists in this workspace. If you think this repository exists and you have access, make sure you are authenticated."}}"#;

fn cloud_ok(r: &Req, _: &str) -> Reply {
    match r.path.as_str() {
        "/2.0/user" => reply(200, USER_JO),
        "/2.0/repositories/ws/repo" => reply(200, REPO_WS),
        "/2.0/user/workspaces/ws/permissions/repositories" => reply(200, PERM_WRITE),
        _ => reply(404, NOT_FOUND),
    }
}

#[tokio::test]
async fn cloud_happy_path() {
    let mock = serve(cloud_ok).await;
    let cred = Cred::api_token(FULL_SCOPES);
    let r = forge().check(&cloud(&mock), &cred.view()).await;
    assert_eq!(names(&r), [StepName::ApiCredential, StepName::ApiScopes, StepName::ApiRepository]);
    assert!(r.steps.iter().all(|s| s.status == StepStatus::Pass), "{:#?}", r.steps);
    assert_eq!(r.authenticated_as.as_deref(), Some("Jo Doe (jo, jo@example.com)"));
    assert!(step(&r, StepName::ApiCredential).message.contains("authenticated as Jo Doe"));
    assert!(step(&r, StepName::ApiScopes).message.contains("as you recorded them"));
    let repo = r.repository.clone().unwrap();
    assert_eq!((repo.full_name.as_str(), repo.private, repo.main_branch.as_deref()), ("ws/repo", true, Some("main")));
    assert_eq!(repo.permission.as_deref(), Some("write"));
    // The product page's 13 scopes leave only read:user:bitbucket out: information, no warning.
    assert!(!r.fatal && r.missing_scopes == ["read:user:bitbucket"] && r.granted_scopes.is_none());
    let who = r.identity.clone().unwrap();
    assert_eq!(
        (who.display_name.as_deref(), who.username.as_deref(), who.email.as_deref()),
        (Some("Jo Doe"), Some("jo"), Some(EMAIL))
    );
    // API tokens: Basic with the Atlassian email, never the username.
    assert_eq!(mock.hit("/2.0/user").unwrap().auth.as_deref(), Some(basic(EMAIL, TOKEN).as_str()));
    let repo_req = mock.hit("/2.0/repositories/ws/repo").unwrap();
    assert!(repo_req.query.starts_with("fields=full_name%2Cis_private%2Cmainbranch.name"), "{}", repo_req.query);
    let perm = mock.hit("/2.0/user/workspaces/ws/permissions/repositories").unwrap();
    assert!(perm.query.contains("q=repository.name%3D%22repo%22"), "{}", perm.query);
    assert_no_secret(&r, TOKEN);
}

#[tokio::test]
async fn cloud_registration_scope_alone_passes_unless_a_capability_is_wanted() {
    let mock = serve(cloud_ok).await;
    let cred = Cred::api_token(&["read:repository:bitbucket"]);
    // Nothing wanted beyond Berth's own job: the gaps are information, not a warning.
    let r = forge().check(&cloud(&mock), &cred.view()).await;
    let s = step(&r, StepName::ApiScopes);
    assert_eq!((s.status, s.code), (StepStatus::Pass, Code::Ok), "{s:#?}");
    assert_eq!(r.missing_scopes.len(), FULL_SCOPES.len() - 1 + 1, "the 12 others and read:user");
    assert!(r.blocked_capabilities.contains(&"webhooks".to_owned()));
    assert_eq!(step(&r, StepName::ApiRepository).status, StepStatus::Pass);
    assert!(!r.fatal);

    // A deployment that wants webhooks: their two scopes are a warning, named once.
    let r = forge().wanting(&[Capability::Webhooks]).check(&cloud(&mock), &cred.view()).await;
    let s = step(&r, StepName::ApiScopes);
    assert_eq!((s.status, s.code), (StepStatus::Warn, Code::ScopeMissing));
    assert!(s.message.contains("read:webhook:bitbucket, write:webhook:bitbucket for webhooks"), "{}", s.message);
    assert!(!s.message.contains("pullrequest") && !s.remedy.contains("webhook"), "{s:#?}");
    assert!(!r.fatal);
}

async fn missing_scope(status: u16, body: &'static str) -> ForgeReport {
    let mock = serve(move |r, b| match r.path.as_str() {
        "/2.0/repositories/ws/repo" => reply(status, body),
        _ => cloud_ok(r, b),
    })
    .await;
    let cred = Cred::api_token(&[]);
    forge().check(&cloud(&mock), &cred.view()).await
}

#[tokio::test]
async fn cloud_missing_scope_403_names_the_scope() {
    let r = missing_scope(403, SCOPE_403).await;
    let repo = step(&r, StepName::ApiRepository);
    // A scope gap is `scope_missing` in both steps that meet it, never `access_denied`.
    assert_eq!((repo.status, repo.code), (StepStatus::Fail, Code::ScopeMissing));
    assert!(repo.message.contains("lacks read:repository:bitbucket"), "{}", repo.message);
    let scopes = step(&r, StepName::ApiScopes);
    assert_eq!((scopes.status, scopes.code), (StepStatus::Fail, Code::ScopeMissing));
    assert!(scopes.message.contains("from Bitbucket's scope error"));
    assert_eq!(r.granted_scopes.as_deref().map(<[String]>::len), Some(2));
    assert!(r.blocked_capabilities.iter().any(|c| c.contains("listing branches")), "{:?}", r.blocked_capabilities);
    assert!(r.fatal);
}

#[tokio::test]
async fn cloud_missing_scope_400_with_string_detail() {
    let body = r#"{"type":"error","error":{"message":"Your credentials lack one or more required privilege scopes.","detail":"This API is only accessible with the following scopes: read:repository:bitbucket"}}"#;
    let r = missing_scope(400, body).await;
    let repo = step(&r, StepName::ApiRepository);
    assert_eq!((repo.status, repo.code), (StepStatus::Fail, Code::ScopeMissing));
    assert!(repo.message.contains("lacks read:repository:bitbucket"), "{}", repo.message);
    assert!(r.fatal);
}

#[tokio::test]
async fn cloud_api_token_sent_as_bearer_gets_a_hint() {
    let mock = serve(|r, _| {
        if r.auth.as_deref().is_some_and(|a| a.starts_with("Bearer ")) {
            reply(401, r#"{"type":"error","error":{"message":"Token is invalid, expired, or not supported for this endpoint."}}"#)
        } else {
            reply(500, "unexpected")
        }
    })
    .await;
    let cred = Cred::token(TOKEN);
    let r = forge().check(&cloud(&mock), &cred.view()).await;
    assert_eq!(names(&r), [StepName::ApiCredential]);
    let s = &r.steps[0];
    assert_eq!((s.status, s.code), (StepStatus::Fail, Code::AuthFailed));
    assert!(s.remedy.contains("Basic") && s.remedy.contains("email"), "{}", s.remedy);
    assert!(s.details.iter().any(|d| d.contains("not supported for this endpoint")));
    assert!(r.fatal);
    assert_no_secret(&r, TOKEN);
}

#[tokio::test]
async fn cloud_expired_token_is_token_expired() {
    let mock = serve(|_, _| reply(401, "Login failed due to incorrect login credentials or method.")).await;
    let mut cred = Cred::api_token(&[]);
    cred.expiry = Expiry::Expired { days_ago: 3 };
    let r = forge().check(&cloud(&mock), &cred.view()).await;
    let s = &r.steps[0];
    assert_eq!((s.status, s.code), (StepStatus::Fail, Code::TokenExpired));
    assert!(s.message.contains("3 days ago") && s.message.contains("Login failed"), "{}", s.message);
    assert!(r.fatal);
}

#[tokio::test]
async fn cloud_unscoped_token_401_says_create_with_scopes() {
    let mock = serve(|_, _| reply(401, "Login failed due to incorrect login credentials or method.")).await;
    let cred = Cred::api_token(&[]);
    let r = forge().check(&cloud(&mock), &cred.view()).await;
    let s = &r.steps[0];
    assert_eq!(s.code, Code::AuthFailed);
    assert!(s.remedy.contains("Create API token with scopes"), "{}", s.remedy);
}

#[tokio::test]
async fn cloud_private_404_says_who() {
    let mock = serve(|r, b| match r.path.as_str() {
        "/2.0/repositories/ws/repo" => reply(404, NOT_FOUND),
        _ => cloud_ok(r, b),
    })
    .await;
    let cred = Cred::api_token(FULL_SCOPES);
    let r = forge().check(&cloud(&mock), &cred.view()).await;
    let s = step(&r, StepName::ApiRepository);
    assert_eq!((s.status, s.code), (StepStatus::Fail, Code::RepositoryNotFoundOrNoAccess));
    assert!(
        s.message
            .contains("authenticated as Jo Doe (jo, jo@example.com), who cannot see ws/repo, or it does not exist"),
        "{}",
        s.message
    );
    assert!(r.fatal && r.repository.is_none());
}

#[tokio::test]
async fn cloud_user_403_is_not_invalid() {
    let user_403 = r#"{"type":"error","error":{"message":"Your credentials lack one or more required privilege scopes.","detail":{"granted":["read:repository:bitbucket"],"required":["read:user:bitbucket"]}}}"#;
    let mock = serve(move |r, b| match r.path.as_str() {
        "/2.0/user" => reply(403, user_403),
        "/2.0/user/workspaces/ws/permissions/repositories" => reply(200, r#"{"pagelen":100,"values":[]}"#),
        _ => cloud_ok(r, b),
    })
    .await;
    let cred = Cred::api_token(&[]);
    let r = forge().check(&cloud(&mock), &cred.view()).await;
    let c = step(&r, StepName::ApiCredential);
    assert_eq!(c.status, StepStatus::Pass);
    assert!(c.message.contains("cannot read its own profile"), "{}", c.message);
    assert_eq!(r.authenticated_as.as_deref(), Some(EMAIL));
    let s = step(&r, StepName::ApiScopes);
    assert_eq!(s.status, StepStatus::Pass, "Berth's own scope is granted and nothing more is wanted: {s:#?}");
    assert_eq!(r.granted_scopes.as_deref(), Some(&["read:repository:bitbucket".to_owned()][..]));
    let repo = step(&r, StepName::ApiRepository);
    assert_eq!(repo.status, StepStatus::Pass);
    assert!(repo.message.contains("no explicit permission"), "{}", repo.message);
    assert!(!r.fatal);
}

#[tokio::test]
async fn cloud_access_token_403_on_user() {
    let mock = serve(|r, b| match r.path.as_str() {
        "/2.0/user" => reply(403, r#"{"type":"error","error":{"message":"Access token has no user."}}"#)
            .header("x-credential-type", "repo_access_token"),
        "/2.0/repositories/ws/repo" => reply(200, REPO_WS).header("x-oauth-scopes", "repository, pullrequest"),
        _ => cloud_ok(r, b),
    })
    .await;
    let cred = Cred::token("ATCTT3xFfGN0-repo-token-secret");
    let r = forge().check(&cloud(&mock), &cred.view()).await;
    assert!(r.steps.iter().all(|s| s.status == StepStatus::Pass), "{:#?}", r.steps);
    assert_eq!(r.authenticated_as.as_deref(), Some("repository access token for ws/repo"));
    assert_eq!(mock.hit("/2.0/user").unwrap().auth.as_deref(), Some("Bearer ATCTT3xFfGN0-repo-token-secret"));
    assert!(
        mock.hit("/2.0/user/workspaces/ws/permissions/repositories").is_none(),
        "access tokens cannot query permissions"
    );
    assert_eq!(r.granted_scopes.as_deref().map(<[String]>::len), Some(2));
    assert_eq!(r.repository.as_ref().unwrap().permission, None);
    assert_no_secret(&r, "ATCTT3xFfGN0-repo-token-secret");
}

#[tokio::test]
async fn cloud_access_token_without_header_cannot_see_repository() {
    let mock = serve(|r, _| match r.path.as_str() {
        "/2.0/user" => reply(403, r#"{"type":"error","error":{"message":"Access token has no user."}}"#),
        _ => reply(404, NOT_FOUND),
    })
    .await;
    let cred = Cred::token("ATCTT-workspace-token");
    let r = forge().check(&cloud(&mock), &cred.view()).await;
    assert_eq!(step(&r, StepName::ApiCredential).status, StepStatus::Pass);
    assert_eq!(r.authenticated_as.as_deref(), Some("access token"));
    let s = step(&r, StepName::ApiRepository);
    assert_eq!(s.code, Code::RepositoryNotFoundOrNoAccess);
    assert!(s.message.starts_with("authenticated as an access token, which cannot see ws/repo"), "{}", s.message);
    assert!(r.fatal);
}

#[tokio::test]
async fn cloud_429_with_long_retry_after_is_reported() {
    let mock = serve(|_, _| {
        reply(429, r#"{"type":"error","error":{"message":"Rate limit for this resource has been exceeded"}}"#)
            .header("retry-after", "120")
    })
    .await;
    let cred = Cred::api_token(&[]);
    let r = forge().check(&cloud(&mock), &cred.view()).await;
    let s = &r.steps[0];
    assert_eq!((s.step, s.code), (StepName::ApiCredential, Code::RateLimited));
    assert!(s.message.contains("120 s"), "{}", s.message);
    assert!(s.details.contains(&"retry after 120 seconds".to_owned()));
    assert_eq!(r.retry_after, Some(Duration::from_secs(120)), "the wait stays typed");
    assert_eq!(mock.hits().len(), 1, "a long wait is not retried");
    assert!(!r.fatal);
}

#[tokio::test]
async fn cloud_429_without_retry_after_is_reported_at_once() {
    let mock = serve(|_, _| reply(429, "Rate limit for this resource has been exceeded")).await;
    let cred = Cred::api_token(&[]);
    let r = forge().check(&cloud(&mock), &cred.view()).await;
    let s = &r.steps[0];
    assert_eq!(s.code, Code::RateLimited);
    assert!(s.message.contains("no Retry-After") && s.message.contains("rolling hour"), "{}", s.message);
    assert_eq!(r.retry_after, None);
    assert_eq!(mock.hits().len(), 1);
}

#[tokio::test]
async fn cloud_429_with_short_retry_after_is_retried_once() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let mock = serve(move |r, b| {
        if r.path == "/2.0/user" && c.fetch_add(1, Ordering::SeqCst) == 0 {
            return reply(429, "Rate limit for this resource has been exceeded").header("retry-after", "1");
        }
        cloud_ok(r, b)
    })
    .await;
    let cred = Cred::api_token(FULL_SCOPES);
    let r = forge().check(&cloud(&mock), &cred.view()).await;
    assert_eq!(step(&r, StepName::ApiCredential).status, StepStatus::Pass);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn cloud_app_passwords_are_retired() {
    let mock = serve(|_, _| reply(401, "Login failed due to incorrect login credentials or method.")).await;
    let cred = Cred {
        kind: CredentialKind::UsernamePassword,
        username: Some("jo"),
        email: None,
        secret: SecretString::from("ATBBqWeRtY1234567890"),
        scopes: Vec::new(),
        expiry: Expiry::Unknown,
    };
    let r = forge().check(&cloud(&mock), &cred.view()).await;
    let s = &r.steps[0];
    assert_eq!((s.status, s.code), (StepStatus::Fail, Code::AppPasswordRetired));
    assert!(s.remedy.contains("read:repository:bitbucket") && s.message.contains("2026-07-28"));
    assert!(r.fatal);
    // Stored as the retired kind: no request at all.
    let retired = Cred { kind: CredentialKind::BitbucketAppPassword, ..cred };
    let before = mock.hits().len();
    let r = forge().check(&cloud(&mock), &retired.view()).await;
    assert_eq!(r.steps[0].code, Code::AppPasswordRetired);
    assert_eq!(mock.hits().len(), before);
    assert_no_secret(&r, "ATBBqWeRtY1234567890");
}

/// A permission page of Bitbucket Cloud: `(repository full name, permission)` pairs and a `next` link.
fn permission_page(perms: &[(&str, &str)], next: Option<String>) -> Reply {
    let values: Vec<String> = perms
        .iter()
        .map(|(repo, perm)| {
            format!(r#"{{"type":"repository_permission","permission":"{perm}","repository":{{"type":"repository","full_name":"{repo}"}}}}"#)
        })
        .collect();
    let next = next.map(|n| format!(r#","next":"{n}""#)).unwrap_or_default();
    reply(200, &format!(r#"{{"pagelen":2,"values":[{}]{next}}}"#, values.join(",")))
}

#[tokio::test]
async fn cloud_permission_paging_follows_next() {
    const PERMS: &str = "/2.0/user/workspaces/ws/permissions/repositories";
    let mock = serve(|r, base| match (r.path.as_str(), r.query.as_str()) {
        (PERMS, q) if q.contains("pagelen=100") => permission_page(
            &[("ws/repo-a", "admin"), ("ws/repo-b", "read")],
            Some(format!("{base}{PERMS}?page=opaque-2")),
        ),
        (PERMS, "page=opaque-2") => permission_page(
            &[("ws/repo-c", "read"), ("ws/repo-d", "read")],
            Some(format!("{base}{PERMS}?page=opaque-3")),
        ),
        (PERMS, "page=opaque-3") => permission_page(&[("ws/repo", "write")], None),
        _ => cloud_ok(r, base),
    })
    .await;
    let cred = Cred::api_token(FULL_SCOPES);
    let r = forge().check(&cloud(&mock), &cred.view()).await;
    assert_eq!(r.repository.as_ref().and_then(|f| f.permission.as_deref()), Some("write"), "{:#?}", r.steps);
    assert_eq!(mock.hits().iter().filter(|h| h.path == PERMS).count(), 3);
}

#[tokio::test]
async fn cloud_next_page_on_another_origin_is_not_followed() {
    let other = serve(|_, _| reply(200, r#"{"values":[]}"#)).await;
    let other_base = other.base.replace("127.0.0.1", "localhost");
    let mock = serve(move |r, b| match r.path.as_str() {
        "/2.0/user/workspaces/ws/permissions/repositories" => {
            permission_page(&[("ws/other", "read")], Some(format!("{other_base}/2.0/steal?page=2")))
        }
        _ => cloud_ok(r, b),
    })
    .await;
    let cred = Cred::api_token(FULL_SCOPES);
    let r = forge().check(&cloud(&mock), &cred.view()).await;
    let s = step(&r, StepName::ApiRepository);
    assert_eq!(s.status, StepStatus::Pass);
    assert!(
        s.message.contains("the permission level could not be read") && s.message.contains("another site"),
        "{}",
        s.message
    );
    assert_eq!(r.repository.and_then(|f| f.permission), None);
    assert!(other.hits().is_empty());
}

#[tokio::test]
async fn cross_origin_redirect_is_not_followed() {
    let other = serve(|_, _| reply(200, USER_JO)).await;
    let target = format!("{}/2.0/user", other.base.replace("127.0.0.1", "localhost"));
    let moved_to = target.clone();
    let mock = serve(move |_, _| reply(302, "").header("location", &target)).await;
    let cred = Cred::api_token(&[]);
    let r = forge().check(&cloud(&mock), &cred.view()).await;
    let s = &r.steps[0];
    assert_eq!((s.status, s.code), (StepStatus::Warn, Code::RepositoryMoved));
    assert_eq!(r.location, Some(moved_to), "the new location stays typed");
    assert!(other.hits().is_empty(), "the credential went to another origin");
    assert_no_secret(&r, TOKEN);
}

#[tokio::test]
async fn cloud_verify_runs_credential_and_scopes_without_a_repository() {
    let mock = serve(cloud_ok).await;
    let cred = Cred::api_token(&["read:repository:bitbucket"]);
    let t = cloud(&mock);
    let r = forge().wanting(&[Capability::PullRequests]).verify(t.provider, &t.api_url, &cred.view()).await;
    assert_eq!(names(&r), [StepName::ApiCredential, StepName::ApiScopes]);
    assert_eq!(step(&r, StepName::ApiScopes).code, Code::ScopeMissing);
    assert!(mock.hit("/2.0/repositories/ws/repo").is_none(), "no repository request");
    assert_eq!(r.identity.and_then(|i| i.username).as_deref(), Some("jo"));
}

#[tokio::test]
async fn cloud_verify_asks_whether_the_token_may_read_repositories() {
    // Without read:repository, listing repositories is a scope error: the verification fails
    // even though Bitbucket reports no scopes and none were recorded.
    let mock = serve(|r, b| match r.path.as_str() {
        "/2.0/repositories" => reply(403, SCOPE_403),
        _ => cloud_ok(r, b),
    })
    .await;
    let cred = Cred::api_token(&[]);
    let t = cloud(&mock);
    let r = forge().verify(t.provider, &t.api_url, &cred.view()).await;
    let s = step(&r, StepName::ApiScopes);
    assert_eq!((s.status, s.code), (StepStatus::Fail, Code::ScopeMissing), "{s:#?}");
    assert!(s.message.contains("read:repository:bitbucket"), "{}", s.message);
    assert!(r.fatal);
    let probe = mock.hit("/2.0/repositories").unwrap();
    assert!(probe.query.contains("role=member"), "{}", probe.query);

    // With it, the probe answers and the scopes step passes.
    let mock = serve(|r, b| match r.path.as_str() {
        "/2.0/repositories" => reply(200, r#"{"pagelen":1,"values":[{"full_name":"ws/repo"}]}"#),
        _ => cloud_ok(r, b),
    })
    .await;
    let t = cloud(&mock);
    let r = forge().verify(t.provider, &t.api_url, &Cred::api_token(&[]).view()).await;
    assert_eq!(step(&r, StepName::ApiScopes).status, StepStatus::Pass, "{:#?}", r.steps);
    assert!(!r.fatal);
}
