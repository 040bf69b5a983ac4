//! The REST API end to end: credentials, Refresh, registration and every finding the core
//! issue names, against a real Git server.

use crate::harness::*;
use berth_testkit::CaptureServer;
use reqwest::StatusCode;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_callers_are_refused_and_health_is_open() {
    let b = Berth::start().await;
    let r = b.http.get(format!("{}/api/v1/credentials", b.base)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let v: Value = serde_json::from_str(&answer_text("an anonymous answer", r).await).unwrap();
    assert_eq!(error_code(&v), "unauthenticated");
    let r = b.http.get(format!("{}/healthz", b.base)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = b
        .http
        .post(format!("{}/api/v1/auth/login", b.base))
        .json(&json!({"username": "admin", "password": WRONG_ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let (s, v) = b.call(reqwest::Method::GET, "/api/v1/repositories/abc", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_lists_every_route() {
    let b = Berth::start().await;
    let r = b.http.get(format!("{}/api/openapi.json", b.base)).send().await.unwrap();
    let v: Value = serde_json::from_str(&answer_text("the OpenAPI document", r).await).unwrap();
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
    let (s, v) = b.post("/api/v1/credentials", json!({"name": "x", "kind": "bitbucket_api_token", "secret": TOKEN})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_code(&v), "invalid_input");
    // App passwords are explained, not stored.
    let (s, v) = b
        .post("/api/v1/credentials", json!({"name": "old", "kind": "bitbucket_app_password", "username": "jo", "secret": APP_PASSWORD}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_code(&v), "app_password_retired");
    assert!(v["error"]["remedy"].as_str().unwrap().contains("read:repository:bitbucket"));

    let id = b.api_token_credential("ci").await;
    let (_, one) = b.get(&format!("/api/v1/credentials/{id}")).await;
    let (_, all) = b.get("/api/v1/credentials").await;
    for v in [&one, &all] {
        assert!(!v.to_string().contains(TOKEN), "a response carried the secret");
        assert!(v.to_string().contains("Username with API Token"));
    }
    assert_eq!(one["email"], "jo@example.com");
    assert_eq!(one["missing_scopes"], json!([]));
    // The full set the platform uses: each missing scope names what it blocks.
    let gaps = one["scope_gaps"].as_array().unwrap();
    assert_eq!(gaps.len(), 12, "{one}");
    let webhook = gaps.iter().find(|g| g["scope"] == "write:webhook:bitbucket").unwrap();
    assert_eq!(webhook["blocks"], json!(["webhooks"]));
    let (s, v) = b.post("/api/v1/credentials", json!({"name": "CI", "kind": "access_token", "secret": DUPLICATE_NAME_SECRET})).await;
    assert_eq!((s, error_code(&v)), (StatusCode::CONFLICT, "name_taken"));

    // Rotate: the new secret is used from then on, and is not echoed either.
    let (s, v) = b.patch(&format!("/api/v1/credentials/{id}"), json!({"secret": ROTATED_SECRET})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(!v.to_string().contains(ROTATED_SECRET));
    assert_ne!(v["secret_updated_at"], one["secret_updated_at"]);
    let (s, _) = b.patch(&format!("/api/v1/credentials/{id}"), json!({"secret": TOKEN, "expires_on": "2099-01-01"})).await;
    assert_eq!(s, StatusCode::OK);

    // In use: refused, naming the repository.
    let (s, v) = b
        .post("/api/v1/repositories", json!({"name": "app", "clone_url": b.git.repo_url("team/app.git"), "credential": "ci"}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = b.delete(&format!("/api/v1/credentials/{id}")).await;
    assert_eq!((s, error_code(&v)), (StatusCode::CONFLICT, "credential_in_use"));
    assert!(v["error"]["message"].as_str().unwrap().contains("app"));

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
    let (s, v) = b.post("/api/v1/remote-branches", json!({"clone_url": pasted, "credential": "ci"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["default_branch"], "trunk");
    assert_eq!(v["protocol"], "v2");
    let names: Vec<&str> = v["branches"].as_array().unwrap().iter().map(|b| b["name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["develop", "feature/login", "release/1.0", "trunk"]);
    assert_eq!(v["branches"][0]["commit"].as_str().unwrap().len(), 40);
    assert_eq!(v["clone_url"], b.git.repo_url("team/app.git"));
    // An empty repository still reports its default branch.
    let (s, v) = b.post("/api/v1/remote-branches", json!({"clone_url": b.git.repo_url("team/empty.git"), "credential": "ci"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["default_branch"], "main");
    assert_eq!(v["branches"], json!([]));
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v0_server_gives_the_same_answer() {
    let b = Berth::start_with(Options { protocol_v2: false, ..Options::default() }).await;
    b.api_token_credential("ci").await;
    let (s, v) = b.post("/api/v1/remote-branches", json!({"clone_url": b.git.repo_url("team/app.git"), "credential": "ci"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["protocol"], "v0");
    assert_eq!(v["default_branch"], "trunk");
    assert_eq!(v["branches"].as_array().unwrap().len(), 4);
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_checks_before_saving() {
    let b = Berth::start().await;
    let cred = b.api_token_credential("ci").await;
    let url = b.git.repo_url("team/app.git");

    // A branch that does not exist: refused with the closest names, nothing saved.
    let (s, v) = b
        .post("/api/v1/repositories", json!({"name": "app", "clone_url": url, "credential": "ci", "default_branch": "trnk"}))
        .await;
    assert_eq!((s, error_code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "branch_not_found"), "{v}");
    let db = step(&v["error"]["checks"], "default_branch");
    assert_eq!(db["details"], json!(["trunk"]));
    assert_eq!(b.get("/api/v1/repositories").await.1, json!([]));

    // Unsupported VCS.
    let (s, v) = b.post("/api/v1/repositories", json!({"name": "app", "vcs": "svn", "clone_url": url, "credential": "ci"})).await;
    assert_eq!((s, error_code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "unsupported_vcs"));

    // Registered with the remote's default branch, every step reported.
    let pasted = format!("git clone {}/", url.trim_end_matches(".git"));
    let (s, v) = b.post("/api/v1/repositories", json!({"name": "app", "clone_url": pasted, "credential": cred.to_string()})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["clone_url"], url);
    assert_eq!(v["default_branch"], "trunk");
    assert_eq!(v["vcs"], "git");
    assert_eq!(v["credential"]["name"], "ci");
    let checks = &v["last_check"]["checks"];
    assert_eq!(v["last_check"]["ok"], true);
    for name in ["url", "credential", "dns", "connect", "git_discovery", "branches", "default_branch"] {
        assert_eq!(step(checks, name)["status"], "pass", "{name}: {checks}");
    }
    assert_eq!(step(checks, "tls")["code"], "insecure_transport");
    let id = v["id"].as_i64().unwrap();

    // The same repository under other spellings is refused, naming the first.
    for dup in [format!("{url}/"), url.replace("http://", "http://jo@"), url.replace("/git/", "/git//")] {
        let (s, v) = b.post("/api/v1/repositories", json!({"name": "app2", "clone_url": dup, "credential": "ci"})).await;
        assert_eq!((s, error_code(&v)), (StatusCode::CONFLICT, "already_registered"), "{dup}: {v}");
        assert!(v["error"]["message"].as_str().unwrap().contains("\"app\""));
    }

    // Name taken.
    let (s, v) = b.post("/api/v1/repositories", json!({"name": "APP", "clone_url": b.git.repo_url("team/lib.git"), "credential": "ci"})).await;
    assert_eq!((s, error_code(&v)), (StatusCode::CONFLICT, "name_taken"), "{v}");

    // Update re-checks; a bad branch leaves the stored one.
    let (s, v) = b.patch(&format!("/api/v1/repositories/{id}"), json!({"default_branch": "nope"})).await;
    assert_eq!((s, error_code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "branch_not_found"));
    let (s, v) = b.patch(&format!("/api/v1/repositories/{id}"), json!({"default_branch": "develop"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["default_branch"], "develop");

    // Re-check, then break the credential and re-check again.
    let (s, v) = b.post(&format!("/api/v1/repositories/{id}/check"), json!({})).await;
    assert_eq!((s, &v["ok"]), (StatusCode::OK, &json!(true)), "{v}");
    b.patch(&format!("/api/v1/credentials/{cred}"), json!({"secret": WRONG_TOKEN})).await;
    let (s, v) = b.post(&format!("/api/v1/repositories/{id}/check"), json!({})).await;
    assert_eq!((s, &v["ok"]), (StatusCode::OK, &json!(false)));
    assert_eq!(step(&v["checks"], "git_discovery")["code"], "auth_failed");
    assert_eq!(step(&v["checks"], "branches")["status"], "skip");
    let (_, v) = b.get(&format!("/api/v1/repositories/{id}")).await;
    assert_eq!(v["last_check"]["code"], "auth_failed");

    let (s, _) = b.delete(&format!("/api/v1/repositories/{id}")).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = b.delete(&format!("/api/v1/credentials/{cred}")).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    b.stop().await;
}

async fn refresh_error(b: &Berth, clone_url: &str, credential: &str) -> (StatusCode, Value) {
    b.post("/api/v1/remote-branches", json!({"clone_url": clone_url, "credential": credential})).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn findings_name_the_cause() {
    let b = Berth::start().await;
    b.api_token_credential("ci").await;
    let (s, _) = b
        .post("/api/v1/credentials", json!({"name": "alice", "kind": "username_password", "username": "alice", "secret": WRONG_PASSWORD}))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = b
        .post("/api/v1/credentials", json!({"name": "expired", "kind": "bitbucket_api_token", "email": "jo@example.com",
                                             "secret": OLD_TOKEN, "expires_on": "2026-01-01"}))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let base = b.git.base_url();

    let cases: Vec<(String, &str, &str, &str)> = vec![
        (b.git.repo_url("team/app.git"), "alice", "git_discovery", "auth_failed"),
        (b.git.repo_url("team/app.git"), "expired", "git_discovery", "token_expired"),
        (b.git.repo_url("team/missing.git"), "ci", "git_discovery", "repository_not_found_or_no_access"),
        (format!("{base}/login/team/app.git"), "ci", "git_discovery", "not_a_git_server"),
        (format!("{base}/dumb/team/app.git"), "ci", "git_discovery", "not_a_git_server"),
        (format!("{base}/forbidden/team/app.git"), "ci", "git_discovery", "access_denied"),
        (format!("{base}/ratelimited/team/app.git"), "ci", "git_discovery", "rate_limited"),
        (format!("https://jo:{URL_PASSWORD}@bitbucket.org/ws/app.git"), "ci", "url", "secret_in_url"),
        ("git@bitbucket.org:ws/app.git".to_owned(), "ci", "url", "ssh_not_supported"),
        ("not a url".to_owned(), "ci", "url", "invalid_url"),
        ("http://127.0.0.1:1/ws/app.git".to_owned(), "ci", "connect", "connect_failed"),
    ];
    for (url, cred, step_name, code) in cases {
        let (s, v) = refresh_error(&b, &url, cred).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {v}");
        assert_eq!(error_code(&v), code, "{url}: {v}");
        let st = step(&v["error"]["checks"], step_name);
        assert_eq!(st["status"], "fail", "{url}: {v}");
        assert!(!st["remedy"].as_str().unwrap_or("").is_empty(), "{url}: a failure carries a remedy");
        assert_eq!(v["error"]["checks"].as_array().unwrap().len(), 11, "every step is listed");
        assert!(!v.to_string().contains(URL_PASSWORD), "the password in the URL was echoed");
        assert!(!v.to_string().contains(TOKEN));
    }
    // The 403's remote lines and the 429's wait reach the user.
    let (_, v) = refresh_error(&b, &format!("{base}/forbidden/team/app.git"), "ci").await;
    assert!(step(&v["error"]["checks"], "git_discovery")["details"].to_string().contains("whitelist your IP"), "{v}");
    let (_, v) = refresh_error(&b, &format!("{base}/ratelimited/team/app.git"), "ci").await;
    assert!(v.to_string().contains("17"), "{v}");
    // SSH answers with the HTTPS alternative.
    let (_, v) = refresh_error(&b, "git@bitbucket.org:ws/app.git", "ci").await;
    assert!(v["error"]["remedy"].as_str().unwrap().contains("https://bitbucket.org/ws/app.git"));
    // An unknown credential.
    let (s, v) = refresh_error(&b, &b.git.repo_url("team/app.git"), "nobody").await;
    assert_eq!((s, error_code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "credential_not_found"));
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_origin_redirect_is_reported_and_gets_no_credential() {
    let b = Berth::start().await;
    b.api_token_credential("ci").await;
    let capture = CaptureServer::start().await;
    b.git.set_redirect_target(&capture.base_url());
    let (s, v) = refresh_error(&b, &format!("{}/moved/team/app.git", b.git.base_url()), "ci").await;
    assert_eq!((s, error_code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "repository_moved"), "{v}");
    assert!(v.to_string().contains(&capture.base_url()), "the new location is named: {v}");
    assert!(capture.requests().is_empty(), "Berth contacted the new origin: {:?}", capture.requests());
    capture.shutdown().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_is_forbidden_by_default() {
    let b = Berth::start_with(Options { network_allow: None, ..Options::default() }).await;
    b.api_token_credential("ci").await;
    for url in [b.git.repo_url("team/app.git"), b.git.repo_url("team/app.git").replace("127.0.0.1", "localhost")] {
        let (s, v) = refresh_error(&b, &url, "ci").await;
        assert_eq!((s, error_code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "destination_forbidden"), "{url}: {v}");
    }
    assert!(b.git.requests().is_empty(), "the forbidden server was contacted");
    b.stop().await;
}
