//! Roles, personal API tokens, sign-in lockout and the audit log, through the REST API.
//! The role matrix asks every role for every action and expects either success or
//! 403 `forbidden`.

use crate::harness::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

pub use crate::harness::{REGISTRAR_PASSWORD, VIEWER_PASSWORD};

/// An action, the roles allowed to take it, and the request that takes it.
type Case<'a> = (&'a str, &'a [&'a str], Method, String, Option<Value>);

async fn call_as(b: &Berth, token: &str, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    let mut req = b.http.request(method, format!("{}{path}", b.base)).bearer_auth(token);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let text = answer_text(&format!("the answer to {path}"), resp).await;
    (status, if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) })
}

async fn login(b: &Berth, username: &str, password: &str) -> (StatusCode, Value) {
    let r = b
        .http
        .post(format!("{}/api/v1/auth/login", b.base))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap();
    let s = r.status();
    let text = answer_text("a sign-in answer", r).await;
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    if let Some(t) = v["token"].as_str() {
        register_token(t);
    }
    (s, v)
}

/// Creates a user with `role` as admin and returns their id.
pub async fn add_user(b: &Berth, username: &str, password: &str, role: &str) -> i64 {
    let (s, v) = b.post("/api/v1/users", json!({"username": username, "password": password, "role": role})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert!(!v.to_string().contains(password), "the password came back");
    v["id"].as_i64().unwrap()
}

async fn token_of(b: &Berth, username: &str, password: &str) -> String {
    let (s, v) = login(b, username, password).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["token"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_times_every_action() {
    let b = Berth::start().await;
    add_user(&b, "reggie", REGISTRAR_PASSWORD, "registrar").await;
    add_user(&b, "vera", VIEWER_PASSWORD, "viewer").await;
    let tokens = [
        ("admin", b.token.clone()),
        ("registrar", token_of(&b, "reggie", REGISTRAR_PASSWORD).await),
        ("viewer", token_of(&b, "vera", VIEWER_PASSWORD).await),
    ];
    let cred = b.api_token_credential("shared").await;
    let app_url = b.git.repo_url("team/app.git");
    let lib_url = b.git.repo_url("team/lib.git");
    let (s, v) =
        b.post("/api/v1/repositories", json!({"name": "app", "clone_url": app_url, "credential": "shared"})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let repo = v["id"].as_i64().unwrap();

    let all = ["admin", "registrar", "viewer"];
    let writers = ["admin", "registrar"];
    let admin = ["admin"];
    let mut table = Vec::new();
    for (role, token) in &tokens {
        // Fresh targets per role, made by the administrator, so each allowed call can succeed.
        let spare = b.api_token_credential(&format!("spare-{role}")).await;
        let (s, v) = b
            .post(
                "/api/v1/repositories",
                json!({"name": format!("tmp-{role}"), "clone_url": lib_url, "credential": "shared"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let tmp = v["id"].as_i64().unwrap();

        let cases: Vec<Case<'_>> = vec![
            ("list credentials", &all, Method::GET, "/api/v1/credentials".into(), None),
            ("show credential", &all, Method::GET, format!("/api/v1/credentials/{cred}"), None),
            (
                "create credential",
                &writers,
                Method::POST,
                "/api/v1/credentials".into(),
                Some(json!({"name": format!("new-{role}"), "kind": "access_token", "secret": ANOTHER_TOKEN})),
            ),
            (
                "update credential",
                &writers,
                Method::PATCH,
                format!("/api/v1/credentials/{spare}"),
                Some(json!({"name": format!("renamed-{role}")})),
            ),
            (
                "refresh branches",
                &writers,
                Method::POST,
                "/api/v1/remote-branches".into(),
                Some(json!({"clone_url": app_url, "credential": "shared"})),
            ),
            ("list repositories", &all, Method::GET, "/api/v1/repositories".into(), None),
            ("show repository", &all, Method::GET, format!("/api/v1/repositories/{repo}"), None),
            (
                "update repository",
                &writers,
                Method::PATCH,
                format!("/api/v1/repositories/{repo}"),
                Some(json!({"default_branch": "develop"})),
            ),
            ("check repository", &writers, Method::POST, format!("/api/v1/repositories/{repo}/check"), None),
            ("delete repository", &writers, Method::DELETE, format!("/api/v1/repositories/{tmp}"), None),
            // Runs after the temporary repository is gone, so lib.git is free to register.
            (
                "register repository",
                &writers,
                Method::POST,
                "/api/v1/repositories".into(),
                Some(json!({"name": format!("lib-{role}"), "clone_url": lib_url, "credential": "shared"})),
            ),
            ("delete credential", &admin, Method::DELETE, format!("/api/v1/credentials/{spare}"), None),
            ("list users", &admin, Method::GET, "/api/v1/users".into(), None),
            (
                "create user",
                &admin,
                Method::POST,
                "/api/v1/users".into(),
                Some(json!({"username": format!("u-{role}"), "password": NEW_USER_PASSWORD, "role": "viewer"})),
            ),
            ("read settings", &admin, Method::GET, "/api/v1/settings".into(), None),
            ("read audit", &admin, Method::GET, "/api/v1/audit".into(), None),
            ("create own API token", &all, Method::POST, "/api/v1/tokens".into(), Some(json!({"name": "t"}))),
            ("list own API tokens", &all, Method::GET, "/api/v1/tokens".into(), None),
            ("who am I", &all, Method::GET, "/api/v1/me".into(), None),
        ];
        for (action, allowed, method, path, body) in cases {
            let (s, v) = call_as(&b, token, method, &path, body).await;
            let expect = allowed.contains(role);
            if expect {
                assert!(s.is_success(), "{role} may {action}: got {s} {v}");
            } else {
                assert_eq!(s, StatusCode::FORBIDDEN, "{role} must not {action}: {v}");
                assert_eq!(error_code(&v), "forbidden", "{v}");
                assert!(v["error"]["message"].as_str().unwrap().starts_with("You must have permission to"), "{v}");
            }
            table.push(format!("{role:9} {action:22} {}", if expect { "allowed" } else { "403" }));
        }
        // Put lib.git back for the next role.
        let (_, list) = b.get("/api/v1/repositories").await;
        for r in list.as_array().unwrap() {
            if r["name"].as_str().unwrap().starts_with("lib-") {
                b.delete(&format!("/api/v1/repositories/{}", r["id"])).await;
            }
        }
    }
    println!("{}", table.join("\n"));
    // The product page's sentence, as the API says it.
    let (s, v) = call_as(
        &b,
        &tokens[2].1,
        Method::POST,
        "/api/v1/repositories",
        Some(json!({"name": "x", "clone_url": app_url, "credential": "shared"})),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(
        v["error"]["message"].as_str().unwrap().starts_with("You must have permission to register a repository"),
        "{v}"
    );
    let (_, me) = call_as(&b, &tokens[2].1, Method::GET, "/api/v1/me", None).await;
    assert_eq!(me["role"], "viewer");
    assert!(!me["allowed"].as_array().unwrap().iter().any(|a| a == "register_repository"));
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn personal_tokens_are_shown_once_work_and_revoke() {
    let b = Berth::start().await;
    let (s, v) = b.post("/api/v1/tokens", json!({"name": "ci", "expires_in_days": 30})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let token = v["token"].as_str().unwrap().to_owned();
    let id = v["id"].as_i64().unwrap();
    assert!(token.starts_with("berthpat_"));
    let (_, list) = b.get("/api/v1/tokens").await;
    assert!(!list.to_string().contains(&token), "the list shows the token");
    assert_eq!(list[0]["name"], "ci");
    // It works as a Bearer token, with its owner's role.
    let (s, me) = call_as(&b, &token, Method::GET, "/api/v1/me", None).await;
    assert_eq!((s, me["username"].as_str()), (StatusCode::OK, Some("admin")));
    let (_, list) = b.get("/api/v1/tokens").await;
    assert!(list[0]["last_used_at"].is_string(), "{list}");
    // The database keeps only a hash (the file is read on SQLite).
    if let Some(path) = b.db_path() {
        let raw = std::fs::read(path).unwrap();
        assert!(!raw.windows(token.len()).any(|w| w == token.as_bytes()), "the token is stored in clear");
    }
    let (s, _) = b.delete(&format!("/api/v1/tokens/{id}")).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, v) = call_as(&b, &token, Method::GET, "/api/v1/me", None).await;
    assert_eq!((s, error_code(&v)), (StatusCode::UNAUTHORIZED, "unauthenticated"));
    // Another user cannot revoke (or even see) the admin's tokens.
    add_user(&b, "vera", VIEWER_PASSWORD, "viewer").await;
    let vt = token_of(&b, "vera", VIEWER_PASSWORD).await;
    let (_, v) = b.post("/api/v1/tokens", json!({"name": "second"})).await;
    let (s, _) = call_as(&b, &vt, Method::DELETE, &format!("/api/v1/tokens/{}", v["id"]), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // A personal token cannot mint tokens.
    let (s, v) = call_as(&b, &vt, Method::POST, "/api/v1/tokens", Some(json!({"name": "vera-ci"}))).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let vera_pat = v["token"].as_str().unwrap().to_owned();
    let (s, v) = call_as(&b, &vera_pat, Method::POST, "/api/v1/tokens", Some(json!({"name": "child"}))).await;
    assert_eq!((s, error_code(&v)), (StatusCode::FORBIDDEN, "forbidden"), "{v}");
    // An administrator's password reset revokes the user's tokens along with the sessions.
    let (_, users) = b.get("/api/v1/users").await;
    let vera = users.as_array().unwrap().iter().find(|u| u["username"] == "vera").unwrap()["id"].as_i64().unwrap();
    let (s, v) = b.patch(&format!("/api/v1/users/{vera}"), json!({"password": VERA_RESET_PASSWORD})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    for t in [&vt, &vera_pat] {
        let (s, v) = call_as(&b, t, Method::GET, "/api/v1/me", None).await;
        assert_eq!((s, error_code(&v)), (StatusCode::UNAUTHORIZED, "unauthenticated"), "{v}");
    }
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_lock_the_name_until_an_admin_clears_it() {
    let b = Berth::start().await;
    let id = add_user(&b, "reggie", REGISTRAR_PASSWORD, "registrar").await;
    for i in 1..=4 {
        let (s, v) = login(&b, "reggie", WRONG_PASSWORD).await;
        assert_eq!((s, error_code(&v)), (StatusCode::UNAUTHORIZED, "unauthenticated"), "attempt {i}");
    }
    let (s, v) = login(&b, "reggie", WRONG_PASSWORD).await;
    assert_eq!((s, error_code(&v)), (StatusCode::TOO_MANY_REQUESTS, "account_locked"), "{v}");
    // Locked: even the right password is refused, with what to do.
    let (s, v) = login(&b, "REGGIE", REGISTRAR_PASSWORD).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{v}");
    assert!(v["error"]["remedy"].as_str().unwrap().contains("administrator"), "{v}");
    let (_, users) = b.get("/api/v1/users").await;
    let reggie = users.as_array().unwrap().iter().find(|u| u["username"] == "reggie").unwrap();
    assert!(reggie["locked_until"].is_string(), "{reggie}");
    // Unknown names are limited too, so guessing names gains nothing.
    for _ in 0..5 {
        login(&b, "nobody", "x").await;
    }
    assert_eq!(login(&b, "nobody", "x").await.0, StatusCode::TOO_MANY_REQUESTS);
    let (s, _) = b.delete(&format!("/api/v1/users/{id}/lockout")).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(login(&b, "reggie", REGISTRAR_PASSWORD).await.0, StatusCode::OK);
    let (_, audit) = b.get("/api/v1/audit").await;
    let actions: Vec<&str> = audit.as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    for a in ["auth.login_failed", "auth.locked_out", "user.lockout_clear", "user.create"] {
        assert!(actions.contains(&a), "{a} missing from {actions:?}");
    }
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_is_audited_without_secrets() {
    let b = Berth::start().await;
    let cred = b.api_token_credential("ci").await;
    let (s, v) = b
        .post(
            "/api/v1/repositories",
            json!({"name": "app", "clone_url": b.git.repo_url("team/app.git"), "credential": "ci"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let repo = v["id"].as_i64().unwrap();
    b.patch(&format!("/api/v1/credentials/{cred}"), json!({"secret": TOKEN})).await;
    b.post(&format!("/api/v1/repositories/{repo}/check"), json!({})).await;
    b.delete(&format!("/api/v1/repositories/{repo}")).await;
    b.delete(&format!("/api/v1/credentials/{cred}")).await;
    let uid = add_user(&b, "vera", VIEWER_PASSWORD, "viewer").await;
    b.patch(&format!("/api/v1/users/{uid}"), json!({"role": "registrar"})).await;
    let (s, audit) = b.get("/api/v1/audit").await;
    assert_eq!(s, StatusCode::OK);
    let text = audit.to_string();
    for secret in [TOKEN, VIEWER_PASSWORD, ADMIN_PASSWORD] {
        assert!(!text.contains(secret), "the audit log holds a secret");
    }
    let entries = audit.as_array().unwrap();
    for action in [
        "credential.create",
        "credential.update",
        "repository.register",
        "repository.check",
        "repository.delete",
        "credential.delete",
        "user.create",
        "user.update",
        "auth.login",
    ] {
        let e =
            entries.iter().find(|e| e["action"] == action).unwrap_or_else(|| panic!("{action} not audited: {text}"));
        assert_eq!(e["actor"], "admin", "{e}");
        assert_eq!(e["remote_addr"], "127.0.0.1", "{e}");
        assert!(e["at"].is_string());
    }
    let rot = entries.iter().find(|e| e["action"] == "credential.update").unwrap();
    assert!(rot["detail"].as_str().unwrap().contains("token replaced; re-checked 1 repositories: 1 ok"), "{rot}");
    // Newest first, pageable.
    let first = entries[0]["id"].as_i64().unwrap();
    let (_, older) = b.get(&format!("/api/v1/audit?before={first}&limit=2")).await;
    assert_eq!(older.as_array().unwrap().len(), 2);
    assert!(older[0]["id"].as_i64().unwrap() < first);
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_are_managed_by_admins_only_and_one_admin_remains() {
    let b = Berth::start().await;
    let (s, v) = b.post("/api/v1/users", json!({"username": "x", "password": "short", "role": "viewer"})).await;
    assert_eq!((s, error_code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_input"));
    let (s, v) =
        b.post("/api/v1/users", json!({"username": "x", "password": LONG_ENOUGH_PASSWORD, "role": "root"})).await;
    assert_eq!((s, error_code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_input"));
    let (_, users) = b.get("/api/v1/users").await;
    let admin_id = users[0]["id"].as_i64().unwrap();
    assert!(!users.to_string().contains("argon2"), "a password hash was listed");
    let (s, _) = b.patch(&format!("/api/v1/users/{admin_id}"), json!({"role": "viewer"})).await;
    assert_eq!(s, StatusCode::CONFLICT, "the last admin cannot be demoted");
    let (s, _) = b.delete(&format!("/api/v1/users/{admin_id}")).await;
    assert_eq!(s, StatusCode::CONFLICT);
    // A role change ends the user's sessions, so it applies at once.
    let id = add_user(&b, "reggie", REGISTRAR_PASSWORD, "registrar").await;
    let t = token_of(&b, "reggie", REGISTRAR_PASSWORD).await;
    b.patch(&format!("/api/v1/users/{id}"), json!({"role": "viewer"})).await;
    assert_eq!(call_as(&b, &t, Method::GET, "/api/v1/me", None).await.0, StatusCode::UNAUTHORIZED);
    let t = token_of(&b, "reggie", REGISTRAR_PASSWORD).await;
    assert_eq!(call_as(&b, &t, Method::GET, "/api/v1/me", None).await.1["role"], "viewer");
    // Requiring two-factor sign-in closes the API's password login to users without it.
    let (s, v) = b.call(Method::PUT, "/api/v1/settings", Some(json!({"require_2fa": true}))).await;
    assert_eq!((s, v["require_2fa"].as_bool()), (StatusCode::OK, Some(true)));
    let (s, v) = login(&b, "reggie", REGISTRAR_PASSWORD).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(v["error"]["remedy"].as_str().unwrap().contains("API token"), "{v}");
    b.call(Method::PUT, "/api/v1/settings", Some(json!({"require_2fa": false}))).await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_carries_security_headers() {
    let b = Berth::start().await;
    for path in ["/login", "/healthz", "/api/v1/credentials", "/static/app.js", "/"] {
        let r = b.http.get(format!("{}{path}", b.base)).send().await.unwrap();
        let h = r.headers();
        let csp = h.get("content-security-policy").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
        assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert_eq!(h.get("x-content-type-options").unwrap(), "nosniff", "{path}");
        assert_eq!(h.get("referrer-policy").unwrap(), "no-referrer", "{path}");
        answer_text(&format!("the page {path}"), r).await;
    }
    // Not signed in: the UI sends people to the sign-in page.
    let nr = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let r = nr.get(format!("{}/credentials", b.base)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/login");
    // A form post without the session's CSRF token is refused even with a valid cookie.
    let login_page = nr.get(format!("{}/login", b.base)).send().await.unwrap();
    let set = login_page.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"), "{set}");
    let csrf = set.split(';').next().unwrap().split_once('=').unwrap().1.to_owned();
    let r = nr
        .post(format!("{}/login", b.base))
        .header("cookie", format!("berth_login_csrf={csrf}"))
        .form(&[("csrf", csrf.as_str()), ("username", "admin"), ("password", ADMIN_PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let session = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("berth_session="))
        .unwrap();
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Strict") && session.contains("Max-Age=43200"),
        "{session}"
    );
    assert!(!session.contains("Secure"), "plain HTTP without a trusted TLS proxy");
    let cookie = session.split(';').next().unwrap().to_owned();
    let r = nr
        .post(format!("{}/credentials/new", b.base))
        .header("cookie", &cookie)
        .form(&[("csrf", "forged"), ("name", "x"), ("kind", "access_token"), ("secret", "t")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let (_, creds) = b.get("/api/v1/credentials").await;
    assert_eq!(creds.as_array().unwrap().len(), 0);
    b.stop().await;
}
