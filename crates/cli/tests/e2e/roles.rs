//! Roles, personal API tokens, sign-in lockout and the audit log, through the typed
//! `ApiClient`. The role matrix asks every role for every action and expects either success or
//! 403 `forbidden`. The security-header test is raw HTTP: headers and cookies are its subject.

use crate::harness::web::{login_csrf, no_redirects, post_login, session_set_cookie};
use crate::harness::*;
use berth::client::ClientError;
use berth_core::{Code, CredentialKind};
use berth_proto::{
    ApiTokenCreate, CredentialUpdate, LoginResponse, RepositoryUpdate, Settings, UserCreate, UserUpdate,
};
use reqwest::StatusCode;

pub use crate::harness::{REGISTRAR_PASSWORD, VIEWER_PASSWORD};

/// A sign-in through the API; a token it hands out is registered for the leak scan.
async fn login(b: &Berth, username: &str, password: &str) -> Result<LoginResponse, ClientError> {
    let anonymous = Api::new(&b.base, "");
    let answer = anonymous.login(username, password).await;
    if let Ok(r) = &answer {
        register_token(&r.token);
    }
    answer
}

/// Creates a user with `role` as admin and returns their id.
pub async fn add_user(b: &Berth, username: &str, password: &str, role: &str) -> i64 {
    let req = UserCreate { username: username.into(), password: password.into(), role: role.into() };
    let u = b.api.create_user(&req).await.unwrap();
    assert_eq!(b.api.status(), 201);
    assert!(!b.api.body().contains(password), "the password came back");
    u.id
}

/// What each role's calls act on, made fresh by the administrator.
struct Targets {
    role: &'static str,
    cred: i64,
    spare: i64,
    repo: i64,
    tmp: i64,
    app_url: String,
    lib_url: String,
}

/// Takes `action` as `api`'s user.
async fn take(api: &Api, action: &str, t: &Targets) -> Result<(), ClientError> {
    let role = t.role;
    match action {
        "list credentials" => api.list_credentials().await.map(drop),
        "show credential" => api.get_credential(t.cred).await.map(drop),
        "create credential" => api
            .create_credential(&new_credential(&format!("new-{role}"), CredentialKind::AccessToken, ANOTHER_TOKEN))
            .await
            .map(drop),
        "update credential" => {
            let rename = CredentialUpdate { name: Some(format!("renamed-{role}")), ..CredentialUpdate::default() };
            api.update_credential(t.spare, &rename).await.map(drop)
        }
        "refresh branches" => api.remote_branches(&remote(&t.app_url, "shared")).await.map(drop),
        "list repositories" => api.list_repositories().await.map(drop),
        "show repository" => api.get_repository(t.repo).await.map(drop),
        "update repository" => {
            let branch = RepositoryUpdate { default_branch: Some("develop".into()), ..RepositoryUpdate::default() };
            api.update_repository(t.repo, &branch).await.map(drop)
        }
        "check repository" => api.check_repository(t.repo).await.map(drop),
        "delete repository" => api.delete_repository(t.tmp).await,
        "register repository" => {
            api.create_repository(&new_repository(&format!("lib-{role}"), &t.lib_url, "shared")).await.map(drop)
        }
        "delete credential" => api.delete_credential(t.spare).await,
        "list users" => api.list_users().await.map(drop),
        "create user" => {
            let req =
                UserCreate { username: format!("u-{role}"), password: NEW_USER_PASSWORD.into(), role: "viewer".into() };
            api.create_user(&req).await.map(drop)
        }
        "read settings" => api.settings().await.map(drop),
        "read audit" => api.audit(None, None).await.map(drop),
        "create own API token" => {
            api.create_token(&ApiTokenCreate { name: "t".into(), expires_in_days: None }).await.map(drop)
        }
        "list own API tokens" => api.list_tokens().await.map(drop),
        "who am I" => api.me().await.map(drop),
        _ => panic!("no such action: {action}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_times_every_action() {
    let b = Berth::start().await;
    add_user(&b, "reggie", REGISTRAR_PASSWORD, "registrar").await;
    add_user(&b, "vera", VIEWER_PASSWORD, "viewer").await;
    let clients = [
        ("admin", b.api.clone()),
        ("registrar", Api::login(&b.base, "reggie", REGISTRAR_PASSWORD).await),
        ("viewer", Api::login(&b.base, "vera", VIEWER_PASSWORD).await),
    ];
    let cred = b.api_token_credential("shared").await;
    let app_url = b.git.repo_url("team/app.git");
    let lib_url = b.git.repo_url("team/lib.git");
    let repo = b.register("app", "team/app.git", "shared").await;

    let all: &[&str] = &["admin", "registrar", "viewer"];
    let writers: &[&str] = &["admin", "registrar"];
    let admin: &[&str] = &["admin"];
    // In order: "register repository" runs after the temporary repository is gone, so lib.git
    // is free to register.
    let cases: [(&str, &[&str]); 19] = [
        ("list credentials", all),
        ("show credential", all),
        ("create credential", writers),
        ("update credential", writers),
        ("refresh branches", writers),
        ("list repositories", all),
        ("show repository", all),
        ("update repository", writers),
        ("check repository", writers),
        ("delete repository", writers),
        ("register repository", writers),
        ("delete credential", admin),
        ("list users", admin),
        ("create user", admin),
        ("read settings", admin),
        ("read audit", admin),
        ("create own API token", all),
        ("list own API tokens", all),
        ("who am I", all),
    ];
    let mut table = Vec::new();
    for (role, api) in &clients {
        let role: &'static str = role;
        // Fresh targets per role, made by the administrator, so each allowed call can succeed.
        let spare = b.api_token_credential(&format!("spare-{role}")).await;
        let tmp = b.register(&format!("tmp-{role}"), "team/lib.git", "shared").await;
        let targets = Targets { role, cred, spare, repo, tmp, app_url: app_url.clone(), lib_url: lib_url.clone() };
        for (action, allowed) in cases {
            let answer = take(api, action, &targets).await;
            let expect = allowed.contains(&role);
            match answer {
                Ok(()) => assert!(expect, "{role} must not {action}: it succeeded with {}", api.status()),
                Err(e) => {
                    assert!(!expect, "{role} may {action}: got {e}");
                    assert_eq!(status_code(&e), (Some(403), Some(Code::Forbidden)), "{role} must not {action}: {e}");
                    assert!(e.message().starts_with("You must have permission to"), "{e}");
                }
            }
            table.push(format!("{role:9} {action:22} {}", if expect { "allowed" } else { "403" }));
        }
        // Put lib.git back for the next role.
        for r in b.api.list_repositories().await.unwrap() {
            if r.name.starts_with("lib-") {
                b.api.delete_repository(r.id).await.unwrap();
            }
        }
    }
    println!("{}", table.join("\n"));
    // The product page's sentence, as the API says it.
    let viewer = &clients[2].1;
    let e = refused(viewer.create_repository(&new_repository("x", &app_url, "shared")).await);
    assert_eq!(e.status(), Some(403));
    assert!(e.message().starts_with("You must have permission to register a repository"), "{e}");
    let me = viewer.me().await.unwrap();
    assert_eq!(me.role, "viewer");
    assert!(!me.allowed.iter().any(|a| a == "register_repository"));
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn personal_tokens_are_shown_once_work_and_revoke() {
    let b = Berth::start().await;
    let created = b.api.create_token(&ApiTokenCreate { name: "ci".into(), expires_in_days: Some(30) }).await.unwrap();
    assert_eq!(b.api.status(), 201);
    let (token, id) = (created.token.clone(), created.info.id);
    assert!(token.starts_with("berthpat_"));
    let list = b.api.list_tokens().await.unwrap();
    assert!(!b.api.body().contains(&token), "the list shows the token");
    assert_eq!(list[0].name, "ci");
    // It works as a Bearer token, with its owner's role.
    let pat = b.api.with_token(&token);
    let me = pat.me().await.unwrap();
    assert_eq!((pat.status(), me.username.as_str()), (200, "admin"));
    let list = b.api.list_tokens().await.unwrap();
    assert!(list[0].last_used_at.is_some(), "{list:?}");
    // The database keeps only a hash (the file is read on SQLite).
    if let Some(path) = b.db_path() {
        let raw = std::fs::read(path).unwrap();
        assert!(!raw.windows(token.len()).any(|w| w == token.as_bytes()), "the token is stored in clear");
    }
    b.api.revoke_token(id).await.unwrap();
    assert_eq!(b.api.status(), 204);
    let e = refused(pat.me().await);
    assert_eq!(status_code(&e), (Some(401), Some(Code::Unauthenticated)), "{e}");
    // Another user cannot revoke (or even see) the admin's tokens.
    add_user(&b, "vera", VIEWER_PASSWORD, "viewer").await;
    let vt = Api::login(&b.base, "vera", VIEWER_PASSWORD).await;
    let second = b.api.create_token(&ApiTokenCreate { name: "second".into(), expires_in_days: None }).await.unwrap();
    let e = refused(vt.revoke_token(second.info.id).await);
    assert_eq!(e.status(), Some(404), "{e}");
    // A personal token cannot mint tokens.
    let vera_ci = vt.create_token(&ApiTokenCreate { name: "vera-ci".into(), expires_in_days: None }).await.unwrap();
    assert_eq!(vt.status(), 201);
    let vera_pat = vt.with_token(&vera_ci.token);
    let e = refused(vera_pat.create_token(&ApiTokenCreate { name: "child".into(), expires_in_days: None }).await);
    assert_eq!(status_code(&e), (Some(403), Some(Code::Forbidden)), "{e}");
    // An administrator's password reset revokes the user's tokens along with the sessions.
    let users = b.api.list_users().await.unwrap();
    let vera = users.iter().find(|u| u.username == "vera").unwrap().id;
    let reset = UserUpdate { password: Some(VERA_RESET_PASSWORD.into()), ..UserUpdate::default() };
    b.api.update_user(vera, &reset).await.unwrap();
    assert_eq!(b.api.status(), 200);
    for t in [&vt, &vera_pat] {
        let e = refused(t.me().await);
        assert_eq!(status_code(&e), (Some(401), Some(Code::Unauthenticated)), "{e}");
    }
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_lock_the_name_until_an_admin_clears_it() {
    let b = Berth::start().await;
    let id = add_user(&b, "reggie", REGISTRAR_PASSWORD, "registrar").await;
    for i in 1..=4 {
        let e = refused(login(&b, "reggie", WRONG_PASSWORD).await);
        assert_eq!(status_code(&e), (Some(401), Some(Code::Unauthenticated)), "attempt {i}");
    }
    let e = refused(login(&b, "reggie", WRONG_PASSWORD).await);
    assert_eq!(status_code(&e), (Some(429), Some(Code::AccountLocked)), "{e}");
    // Locked: even the right password is refused, with what to do.
    let e = refused(login(&b, "REGGIE", REGISTRAR_PASSWORD).await);
    assert_eq!(e.status(), Some(429), "{e}");
    assert!(e.remedy().contains("administrator"), "{e}");
    let users = b.api.list_users().await.unwrap();
    let reggie = users.iter().find(|u| u.username == "reggie").unwrap();
    assert!(reggie.locked_until.is_some(), "{reggie:?}");
    // Unknown names are limited too, so guessing names gains nothing.
    for _ in 0..5 {
        let _ = login(&b, "nobody", "x").await;
    }
    assert_eq!(refused(login(&b, "nobody", "x").await).status(), Some(429));
    b.api.clear_lockout(id).await.unwrap();
    assert_eq!(b.api.status(), 204);
    assert!(login(&b, "reggie", REGISTRAR_PASSWORD).await.is_ok());
    let audit = b.api.audit(None, None).await.unwrap();
    let actions: Vec<&str> = audit.iter().map(|e| e.action.as_str()).collect();
    for a in ["auth.login_failed", "auth.locked_out", "user.lockout_clear", "user.create"] {
        assert!(actions.contains(&a), "{a} missing from {actions:?}");
    }
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_is_audited_without_secrets() {
    let b = Berth::start().await;
    let cred = b.api_token_credential("ci").await;
    let repo = b.register("app", "team/app.git", "ci").await;
    let rotate = CredentialUpdate { secret: Some(TOKEN.into()), ..CredentialUpdate::default() };
    b.api.update_credential(cred, &rotate).await.unwrap();
    b.api.check_repository(repo).await.unwrap();
    b.api.delete_repository(repo).await.unwrap();
    b.api.delete_credential(cred).await.unwrap();
    let uid = add_user(&b, "vera", VIEWER_PASSWORD, "viewer").await;
    b.api.update_user(uid, &UserUpdate { role: Some("registrar".into()), ..UserUpdate::default() }).await.unwrap();
    let entries = b.api.audit(None, None).await.unwrap();
    assert_eq!(b.api.status(), 200);
    let text = b.api.body();
    for secret in [TOKEN, VIEWER_PASSWORD, ADMIN_PASSWORD] {
        assert!(!text.contains(secret), "the audit log holds a secret");
    }
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
        // (`at` is a timestamp, or the answer would not have decoded.)
        let e = entries.iter().find(|e| e.action == action).unwrap_or_else(|| panic!("{action} not audited: {text}"));
        assert_eq!(e.actor, "admin", "{e:?}");
        assert_eq!(e.remote_addr.as_deref(), Some("127.0.0.1"), "{e:?}");
    }
    let rot = entries.iter().find(|e| e.action == "credential.update").unwrap();
    assert!(rot.detail.contains("token replaced; re-checked 1 repository: 1 ok"), "{rot:?}");
    // Newest first, pageable.
    let first = entries[0].id;
    let older = b.api.audit(Some(first), Some(2)).await.unwrap();
    assert_eq!(older.len(), 2);
    assert!(older[0].id < first);
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_are_managed_by_admins_only_and_one_admin_remains() {
    let b = Berth::start().await;
    let user =
        |password: &str, role: &str| UserCreate { username: "x".into(), password: password.into(), role: role.into() };
    let e = refused(b.api.create_user(&UserCreate { password: "short".into(), ..user("", "viewer") }).await);
    assert_eq!(status_code(&e), (Some(422), Some(Code::InvalidInput)), "{e}");
    let e = refused(b.api.create_user(&user(LONG_ENOUGH_PASSWORD, "root")).await);
    assert_eq!(status_code(&e), (Some(422), Some(Code::InvalidInput)), "{e}");
    let users = b.api.list_users().await.unwrap();
    let admin_id = users[0].id;
    assert!(!b.api.body().contains("argon2"), "a password hash was listed");
    let demote = UserUpdate { role: Some("viewer".into()), ..UserUpdate::default() };
    let e = refused(b.api.update_user(admin_id, &demote).await);
    assert_eq!(e.status(), Some(409), "the last admin cannot be demoted");
    let e = refused(b.api.delete_user(admin_id).await);
    assert_eq!(e.status(), Some(409));
    // A role change ends the user's sessions, so it applies at once.
    let id = add_user(&b, "reggie", REGISTRAR_PASSWORD, "registrar").await;
    let t = Api::login(&b.base, "reggie", REGISTRAR_PASSWORD).await;
    b.api.update_user(id, &demote).await.unwrap();
    assert_eq!(refused(t.me().await).status(), Some(401));
    let t = Api::login(&b.base, "reggie", REGISTRAR_PASSWORD).await;
    assert_eq!(t.me().await.unwrap().role, "viewer");
    // Requiring two-factor sign-in closes the API's password login to users without it.
    let s = b.api.put_settings(&Settings { require_2fa: true }).await.unwrap();
    assert_eq!((b.api.status(), s.require_2fa), (200, true));
    let e = refused(login(&b, "reggie", REGISTRAR_PASSWORD).await);
    assert_eq!(e.status(), Some(401));
    assert!(e.remedy().contains("API token"), "{e}");
    b.api.put_settings(&Settings { require_2fa: false }).await.unwrap();
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
    let nr = no_redirects();
    let r = nr.get(format!("{}/credentials", b.base)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/login");
    // A form post without the session's CSRF token is refused even with a valid cookie.
    let (set, csrf) = login_csrf(&nr, &b.base).await;
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"), "{set}");
    let r = post_login(&nr, &b.base, &csrf, "admin", ADMIN_PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let session = session_set_cookie(&r);
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
    assert!(b.api.list_credentials().await.unwrap().is_empty());
    b.stop().await;
}
