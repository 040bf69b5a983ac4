//! Single sign-on (issue 16 §4) against a real OpenID provider: npm's `oidc-provider` (OpenID
//! Certified) from the test kit, driven through Chromium's real sign-in flow. A `berth serve`
//! process with `[oidc]`, password sign-in turned off except for the break-glass `admin`:
//!
//! - people are made at their first sign-in with the role their `groups` claim maps to, and the
//!   role follows the claim at each later sign-in (audited);
//! - a person whose groups map to no role is refused with a page that says so, and no user is made;
//! - an answer whose `state` is not the one this browser started with is refused before the code
//!   is used;
//! - an ID token the provider issued for another client is refused;
//! - the break-glass administrator signs in with a password (audited as such), a local user's
//!   password is refused on the web and the API with `local_sign_in_disabled`.

use crate::harness::browser::Browser;
use crate::harness::{self, Api, OIDC_CLIENT_SECRET, OIDC_OTHER_CLIENT_SECRET, SSO_ADMIN_PASSWORD, SSO_LOCAL_PASSWORD};
use berth_proto::UserCreate;
use berth_testkit::{OidcClient, OidcProvider};
use std::path::Path;

struct Server {
    base: String,
    log: std::path::PathBuf,
    _child: tokio::process::Child,
}

fn spawn(port: u16, dir: &Path, issuer: &str) -> Server {
    let base = format!("http://127.0.0.1:{port}");
    let secret_file = dir.join("oidc-client-secret");
    std::fs::write(&secret_file, format!("{OIDC_CLIENT_SECRET}\n")).unwrap();
    let config = format!(
        "public_url = \"{base}\"\n\n[oidc]\nissuer = \"{issuer}\"\nclient_id = \"berth\"\n\
         client_secret_file = \"{}\"\nrole_claim = \"groups\"\n\
         role_map = {{ \"platform-admins\" = \"admin\", \"developers\" = \"registrar\" }}\n\
         display_name = \"Test IdP\"\nlocal_sign_in = false\nbreak_glass = [\"admin\"]\n",
        secret_file.display()
    );
    let config_path = dir.join("berth.toml");
    std::fs::write(&config_path, config).unwrap();
    let log = dir.join("serve.log");
    let db = berth_testkit::pg::test_database_url(dir);
    let child = harness::serve_command(port, &db, dir, &log)
        .env("BERTH_ADMIN_PASSWORD", SSO_ADMIN_PASSWORD)
        .env("BERTH_CONFIG", &config_path)
        .spawn()
        .unwrap();
    Server { base, log, _child: child }
}

/// Forgets the provider's own session (its cookies on `localhost`), so the next sign-in asks
/// who is signing in.
async fn leave_provider(b: &Browser, issuer: &str) {
    b.goto(&format!("{issuer}/.well-known/openid-configuration")).await;
    b.c.delete_all_cookies().await.unwrap();
}

/// "Sign in with Test IdP", then the provider's sign-in page as `login`.
async fn sso_sign_in(b: &Browser, base: &str, login: &str) {
    b.goto(&format!("{base}/login")).await;
    b.click("#sso_sign_in").await;
    provider_sign_in(b, login).await;
}

async fn provider_sign_in(b: &Browser, login: &str) {
    b.fill("input[name='login']", login).await;
    b.fill("input[name='password']", "the provider's development page checks no password").await;
    b.click("button[type='submit']").await;
}

/// The page once the flow has come back to Berth: `/` signed in, or the refusal.
async fn back_at_berth(b: &Browser, base: &str) -> String {
    let host = base.trim_start_matches("http://").to_owned();
    b.until("the browser is back at Berth", &format!("return location.host === '{host}' && document.readyState === 'complete' && !document.querySelector('meta[http-equiv=refresh]')")).await;
    let html = b.c.source().await.unwrap();
    b.scan("the page after single sign-on").await;
    html
}

async fn role_of(api: &Api, username: &str) -> Option<String> {
    api.list_users().await.unwrap().into_iter().find(|u| u.username == username).map(|u| u.role)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_sign_on_maps_roles_and_refuses_what_it_must() {
    harness::init();
    let port = harness::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let idp = OidcProvider::start(
        &[
            OidcClient {
                client_id: "berth".into(),
                client_secret: OIDC_CLIENT_SECRET.into(),
                redirect_uri: format!("{base}/login/oidc/callback"),
            },
            OidcClient {
                client_id: "other".into(),
                client_secret: OIDC_OTHER_CLIENT_SECRET.into(),
                redirect_uri: "http://127.0.0.1:9/elsewhere".into(),
            },
        ],
        &[("alice", &["platform-admins", "everyone"]), ("bob", &["developers"]), ("carol", &["marketing"])],
    );
    let dir = tempfile::tempdir().unwrap();
    let server = spawn(port, dir.path(), &idp.issuer);
    assert!(harness::serve_ready(&server.base).await, "not ready: {:?}", std::fs::read_to_string(&server.log));

    // The break-glass administrator signs in with a password on the API; a local user cannot.
    let admin = Api::login(&base, "admin", SSO_ADMIN_PASSWORD).await;
    let local = UserCreate { username: "dev".into(), password: SSO_LOCAL_PASSWORD.into(), role: "registrar".into() };
    admin.create_user(&local).await.unwrap();
    let refused = harness::refused(Api::new(&base, "").login("dev", SSO_LOCAL_PASSWORD).await);
    assert_eq!(harness::status_code(&refused), (Some(403), Some(berth_core::Code::LocalSignInDisabled)), "{refused}");

    let b = Browser::start("sso").await;
    // The sign-in page: the provider's button first; passwords behind "Break-glass administrator".
    b.goto(&format!("{base}/login")).await;
    assert!(b.text("#sso_sign_in").await.contains("Sign in with Test IdP"));
    assert!(!b.find("#username").await.is_displayed().await.unwrap(), "the password form is folded away");
    b.shot("login").await;
    b.c.set_window_size(390, 844).await.unwrap();
    b.shot("login-phone").await;
    b.c.set_window_size(1366, 900).await.unwrap();

    // First sign-in: alice is made, an administrator (platform-admins).
    sso_sign_in(&b, &base, "alice").await;
    let page = back_at_berth(&b, &base).await;
    assert_eq!(
        b.path().await,
        "/",
        "signed in lands on VC Repos: {page}\n{}\n{}",
        idp.log(),
        std::fs::read_to_string(&server.log).unwrap_or_default()
    );
    assert!(b.has("header form[action='/logout']").await);
    b.shot("signed-in-alice").await;
    assert_eq!(role_of(&admin, "alice").await.as_deref(), Some("admin"));
    b.sign_out().await;
    leave_provider(&b, &idp.issuer).await;

    // bob is a registrar; after the provider moves him to platform-admins, his next sign-in
    // makes him an administrator, and the audit log says where the change came from.
    sso_sign_in(&b, &base, "bob").await;
    back_at_berth(&b, &base).await;
    assert_eq!(role_of(&admin, "bob").await.as_deref(), Some("registrar"));
    b.sign_out().await;
    idp.set_groups("bob", &["platform-admins"]).await;
    // Still signed in at the provider: the button comes straight back, with the new claim.
    b.goto(&format!("{base}/login")).await;
    b.click("#sso_sign_in").await;
    back_at_berth(&b, &base).await;
    assert_eq!(role_of(&admin, "bob").await.as_deref(), Some("admin"), "the role follows the claim");
    let audit = admin.audit(None, Some(50)).await.unwrap();
    assert!(
        audit.iter().any(|e| e.action == "user.update"
            && e.target_name == "bob"
            && e.detail.contains("registrar -> admin")
            && e.detail.contains("single sign-on")),
        "{audit:?}"
    );
    assert!(audit.iter().any(|e| e.action == "auth.login" && e.actor == "bob" && e.detail.contains("single sign-on")));
    b.sign_out().await;
    leave_provider(&b, &idp.issuer).await;

    // carol's groups map to no role: refused with a page that says so; no user is made.
    sso_sign_in(&b, &base, "carol").await;
    let page = back_at_berth(&b, &base).await;
    assert!(page.contains("sso_no_role") && page.contains("marketing") && page.contains("platform-admins"), "{page}");
    assert!(!b.has("header form[action='/logout']").await, "not signed in");
    b.shot("no-role").await;
    assert_eq!(role_of(&admin, "carol").await, None);
    leave_provider(&b, &idp.issuer).await;

    // A tampered state: this browser starts a sign-in (its own state in its cookie), then is
    // sent through the provider with a sign-in another browser started. The answer comes back
    // with that other state and is refused before its code is used.
    let other = harness::web::no_redirects();
    let started = other.get(format!("{base}/login/oidc")).send().await.unwrap();
    let foreign_authorize = started.headers()["location"].to_str().unwrap().to_owned();
    assert!(foreign_authorize.starts_with(&idp.issuer) && foreign_authorize.contains("code_challenge_method=S256"));
    b.goto(&format!("{base}/login")).await;
    b.click("#sso_sign_in").await;
    b.find("input[name='login']").await;
    b.goto(&foreign_authorize).await;
    provider_sign_in(&b, "alice").await;
    let page = back_at_berth(&b, &base).await;
    assert!(page.contains("sso_state_mismatch"), "{page}");
    assert!(!b.has("header form[action='/logout']").await, "not signed in");
    b.shot("state-mismatch").await;
    leave_provider(&b, &idp.issuer).await;

    // Cancelled at the provider: its `error=access_denied` comes back with this browser's state.
    let started = other.get(format!("{base}/login/oidc")).send().await.unwrap();
    let pending = started.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let state = pending.trim_start_matches("berth_sso=").split('.').next().unwrap().to_owned();
    let cancelled = other
        .get(format!("{base}/login/oidc/callback?error=access_denied&error_description=End-User+aborted&state={state}"))
        .header("cookie", &pending)
        .send()
        .await
        .unwrap();
    assert_eq!(cancelled.status(), reqwest::StatusCode::UNAUTHORIZED);
    let page = cancelled.text().await.unwrap();
    assert!(page.contains("cancelled or refused at Test IdP") && page.contains("sso_provider_error"), "{page}");

    // An ID token the provider issued for another client (signed with its real keys).
    idp.issue_id_tokens_for(Some("other")).await;
    sso_sign_in(&b, &base, "alice").await;
    let page = back_at_berth(&b, &base).await;
    assert!(page.contains("sso_id_token_invalid") && page.contains("issued for another client"), "{page}");
    assert!(!b.has("header form[action='/logout']").await, "not signed in");
    idp.issue_id_tokens_for(None).await;
    leave_provider(&b, &idp.issuer).await;

    // Break glass: the administrator's password still works on the web, audited as such; the
    // local user's does not.
    b.goto(&format!("{base}/login")).await;
    b.click("#break_glass summary").await;
    b.fill("#username", "dev").await;
    b.fill("#password", SSO_LOCAL_PASSWORD).await;
    b.click("#sign_in").await;
    b.find("#problem").await; // the refusal's page, not the form it was sent from
    let page = b.c.source().await.unwrap();
    assert!(page.contains("local_sign_in_disabled") && page.contains("Sign in with Test IdP"), "{page}");
    b.goto(&format!("{base}/login")).await;
    b.click("#break_glass summary").await;
    b.fill("#username", "admin").await;
    b.fill("#password", SSO_ADMIN_PASSWORD).await;
    b.click("#sign_in").await;
    b.find("header form[action='/logout']").await;
    assert_eq!(b.path().await, "/");
    let audit = admin.audit(None, Some(50)).await.unwrap();
    assert!(audit.iter().any(|e| e.action == "auth.login" && e.actor == "admin" && e.detail.contains("break-glass")));
    // Admin > Users tells single sign-on users apart (API and page).
    let users = admin.list_users().await.unwrap();
    let sso: Vec<&str> = users.iter().filter(|u| u.single_sign_on).map(|u| u.username.as_str()).collect();
    assert_eq!(sso, ["alice", "bob"], "{users:?}");
    b.goto(&format!("{base}/admin/users")).await;
    let row = b.text("tbody tr:nth-child(1)").await;
    assert!(row.starts_with("admin") && !row.contains("single sign-on"), "{row}");
    assert!(b.text("tbody tr:nth-child(2)").await.contains("single sign-on"), "alice's row");
    b.shot("users").await;
    b.close().await;

    let log = std::fs::read_to_string(&server.log).unwrap();
    harness::assert_no_secret_in_output("the SSO server's log", log.as_bytes());
    assert!(log.contains("break-glass password sign-in"), "{log}");
}
