//! The forge simulator behaves as `shared/reference/forge-facts.md` says: authentication,
//! scopes, policies, rate limits and pagination over REST (reqwest) and Git (the real `git`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use berth_testkit::sim::cloud_messages as cc;
use berth_testkit::sim::demo::{
    self, API_TOKEN, API_TOKEN_EXPIRED, API_TOKEN_LEE, API_TOKEN_NO_READ, APP_PASSWORD, REPO_ACCESS_TOKEN,
};
use berth_testkit::sim::{CloudEndpoint, Cred, Host, Perm, RateLimit, RejectStyle, RepoSpec, Sim, SimClock};
use reqwest::{Client, Response, StatusCode};
use serde_json::Value;

const JO_EMAIL: &str = "jo@example.com";

async fn sim() -> Sim {
    sim_with(|b| b).await
}

async fn sim_with(f: impl FnOnce(berth_testkit::sim::SimBuilder) -> berth_testkit::sim::SimBuilder) -> Sim {
    let (b, _) = demo::builder(SimClock::at("2026-08-01T00:00:00Z"));
    let many: Vec<String> = (0..24).map(|i| format!("topic/b{i:02}")).collect();
    let mut names: Vec<&str> = many.iter().map(String::as_str).collect();
    names.push("main");
    let b = b
        .cloud_repo("acme/many", RepoSpec::new(&names))
        .cloud_repo("acme/public-lib", RepoSpec::new(&["main"]).public())
        .grant(Host::Cloud, "jo", "acme/many", Perm::Read)
        .credential(Cred::classic_api_token("jo", "ATATT-classic"))
        .credential(Cred::api_token("jo", "ATATT-write-only", &["write:repository:bitbucket", "read:user:bitbucket"]))
        .credential(Cred::api_token("jo", "ATATT-text-401", &[]).expires("2026-01-01").reject_style(RejectStyle::Text))
        .credential(Cred::app_password("jo", "ATBB-401"));
    f(b).start().await
}

fn http() -> Client {
    Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

async fn get_basic(url: &str, user: &str, pass: &str) -> Response {
    http().get(url).basic_auth(user, Some(pass)).send().await.unwrap()
}

async fn get_bearer(url: &str, token: &str) -> Response {
    http().get(url).bearer_auth(token).send().await.unwrap()
}

fn header<'a>(r: &'a Response, name: &str) -> Option<&'a str> {
    r.headers().get(name).and_then(|v| v.to_str().ok())
}

async fn json(r: Response) -> Value {
    r.json().await.unwrap()
}

fn message(v: &Value) -> &str {
    v["error"]["message"].as_str().unwrap_or("")
}

// ---------------------------------------------------------------- Bitbucket Cloud REST

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloud_api_token_needs_the_email_on_rest() {
    let sim = sim().await;
    let repo = format!("{}/repositories/acme/app", sim.cloud_api_url());
    let ok = get_basic(&repo, JO_EMAIL, API_TOKEN).await;
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(header(&ok, "x-credential-type"), Some("api_token"));
    assert_eq!(header(&ok, "x-oauth-scopes"), None, "API tokens: scopes header not guaranteed, omitted");
    let body = json(ok).await;
    assert_eq!(body["full_name"], "acme/app");
    assert_eq!(body["mainbranch"]["name"], "main");
    assert_eq!(body["links"]["clone"][0]["href"], sim.cloud_git_url("acme/app"));

    let by_username = get_basic(&repo, "jo", API_TOKEN).await;
    assert_eq!(by_username.status(), StatusCode::UNAUTHORIZED);

    let user = json(get_basic(&format!("{}/user", sim.cloud_api_url()), JO_EMAIL, API_TOKEN).await).await;
    assert_eq!(user["nickname"], "jo");
    assert_eq!(user["display_name"], "Jo Example");
    assert!(user["account_id"].as_str().unwrap().starts_with("712020:"));

    // The secret never reaches the record; the user name does.
    let recs = sim.requests(Host::Cloud);
    assert!(recs.iter().all(|r| !format!("{r:?}").contains(API_TOKEN)));
    assert_eq!(recs[0].basic_username.as_deref(), Some(JO_EMAIL));
    assert_eq!(recs[0].auth_scheme.as_deref(), Some("Basic"));
    assert_eq!(recs[1].status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloud_refused_tokens_answer_401() {
    let sim = sim().await;
    let repo = format!("{}/repositories/acme/app", sim.cloud_api_url());

    let bearer = get_bearer(&repo, API_TOKEN).await;
    assert_eq!(bearer.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(message(&json(bearer).await), cc::TOKEN_INVALID);

    for (user, secret) in
        [(JO_EMAIL, "ATATT-classic"), ("jo", APP_PASSWORD), ("jo", "ATBB-401"), (JO_EMAIL, API_TOKEN_EXPIRED)]
    {
        assert_eq!(get_basic(&repo, user, secret).await.status(), StatusCode::UNAUTHORIZED, "{secret}");
    }

    // Expired and revoked answer exactly like a wrong token.
    let wrong = get_basic(&repo, JO_EMAIL, "ATATT-no-such-token").await;
    let expired = get_basic(&repo, JO_EMAIL, API_TOKEN_EXPIRED).await;
    assert_eq!(wrong.headers().get("content-type"), expired.headers().get("content-type"));
    assert_eq!(wrong.text().await.unwrap(), expired.text().await.unwrap());
    sim.update(|w| w.cred_mut(API_TOKEN).unwrap().revoked = true);
    let revoked = get_basic(&repo, JO_EMAIL, API_TOKEN).await;
    assert_eq!(revoked.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(message(&json(revoked).await), cc::TOKEN_INVALID);

    // A token configured for the text/plain flavour.
    let text = get_basic(&repo, JO_EMAIL, "ATATT-text-401").await;
    assert_eq!(text.status(), StatusCode::UNAUTHORIZED);
    assert!(header(&text, "content-type").unwrap().starts_with("text/plain"));
    assert_eq!(text.text().await.unwrap().trim(), cc::LOGIN_FAILED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloud_401_flavour_by_credential_is_deterministic() {
    let sim = sim().await;
    sim.update(|w| w.cloud.unauthorized_style = RejectStyle::ByCredential);
    let repo = format!("{}/repositories/acme/app", sim.cloud_api_url());
    let mut kinds = std::collections::BTreeSet::new();
    for i in 0..12 {
        let secret = format!("wrong-{i}");
        let a = get_basic(&repo, JO_EMAIL, &secret).await;
        let b = get_basic(&repo, JO_EMAIL, &secret).await;
        assert_eq!(a.status(), StatusCode::UNAUTHORIZED);
        let (ca, cb) = (header(&a, "content-type").unwrap().to_owned(), header(&b, "content-type").unwrap().to_owned());
        assert_eq!(ca, cb, "same credential, same flavour");
        kinds.insert(ca);
    }
    assert_eq!(kinds.len(), 2, "both JSON and text/plain occur: {kinds:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloud_scopes_do_not_imply_each_other() {
    let sim = sim().await;
    let api = sim.cloud_api_url();
    for (url, token) in [
        (format!("{api}/repositories/acme/app"), API_TOKEN_NO_READ),
        (format!("{api}/repositories/acme/app/refs/branches"), "ATATT-write-only"),
    ] {
        let r = get_basic(&url, JO_EMAIL, token).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let body = json(r).await;
        assert_eq!(message(&body), cc::SCOPES_LACKING);
        assert_eq!(body["error"]["detail"]["required"], serde_json::json!(["read:repository:bitbucket"]));
        assert!(body["error"]["detail"]["granted"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == "write:repository:bitbucket"));
    }
    // A token that works for repositories may still be refused on /user.
    let no_user = Cred::api_token("jo", "ATATT-repo-only", &["read:repository:bitbucket"]);
    sim.update(|w| w.creds.push(no_user));
    assert_eq!(
        get_basic(&format!("{api}/repositories/acme/app"), JO_EMAIL, "ATATT-repo-only").await.status(),
        StatusCode::OK
    );
    let user = get_basic(&format!("{api}/user"), JO_EMAIL, "ATATT-repo-only").await;
    assert_eq!(user.status(), StatusCode::FORBIDDEN);
    assert_eq!(json(user).await["error"]["detail"]["required"], serde_json::json!(["read:user:bitbucket"]));
    // Webhooks need read:webhook.
    let hooks = get_basic(&format!("{api}/repositories/acme/app/hooks"), JO_EMAIL, "ATATT-repo-only").await;
    assert_eq!(hooks.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        get_basic(&format!("{api}/repositories/acme/app/hooks"), JO_EMAIL, API_TOKEN).await.status(),
        StatusCode::OK
    );

    // Some endpoints answer 400 instead.
    sim.update(|w| w.cloud.scope_error_400 = vec![CloudEndpoint::Repository]);
    let r = get_basic(&format!("{api}/repositories/acme/app"), JO_EMAIL, API_TOKEN_NO_READ).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(message(&json(r).await), cc::SCOPES_LACKING);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloud_access_tokens_are_bearer_and_have_no_user() {
    let sim = sim().await;
    let api = sim.cloud_api_url();
    let r = get_bearer(&format!("{api}/repositories/acme/app/refs/branches"), REPO_ACCESS_TOKEN).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "x-credential-type"), Some("repo_access_token"));
    assert_eq!(header(&r, "x-oauth-scopes"), Some("repository, webhook"));
    assert_eq!(header(&r, "x-ratelimit-limit"), Some("1000"));

    let user = get_bearer(&format!("{api}/user"), REPO_ACCESS_TOKEN).await;
    assert_eq!(user.status(), StatusCode::FORBIDDEN);
    let perms = get_bearer(&format!("{api}/user/workspaces/acme/permissions/repositories"), REPO_ACCESS_TOKEN).await;
    assert_eq!(perms.status(), StatusCode::FORBIDDEN);
    // Another repository of the workspace: not visible.
    let other = get_bearer(&format!("{api}/repositories/acme/empty"), REPO_ACCESS_TOKEN).await;
    assert_eq!(other.status(), StatusCode::NOT_FOUND);
    // As Basic on REST: refused.
    assert_eq!(
        get_basic(&format!("{api}/repositories/acme/app"), "x-token-auth", REPO_ACCESS_TOKEN).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // A workspace token lacking the webhook scope.
    sim.update(|w| w.creds.push(Cred::workspace_access_token("acme", "ATCTT-ws", &["repository:write"])));
    let empty = get_bearer(&format!("{api}/repositories/acme/empty"), "ATCTT-ws").await;
    assert_eq!(header(&empty, "x-credential-type"), Some("workspace_access_token"));
    assert_eq!(empty.status(), StatusCode::OK);
    let hooks = get_bearer(&format!("{api}/repositories/acme/app/hooks"), "ATCTT-ws").await;
    assert_eq!(hooks.status(), StatusCode::FORBIDDEN);
    assert_eq!(json(hooks).await["error"]["detail"]["required"], serde_json::json!(["webhook"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloud_private_repository_is_404_and_policies_are_403() {
    let sim = sim().await;
    let api = sim.cloud_api_url();
    for path in
        ["repositories/acme/secret-repo", "repositories/acme/nope", "repositories/acme/secret-repo/refs/branches"]
    {
        let r = get_basic(&format!("{api}/{path}"), JO_EMAIL, API_TOKEN).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
        let body = json(r).await;
        assert_eq!(body["type"], "error");
        assert_eq!(message(&body), cc::REPO_NOT_VISIBLE);
    }
    // Public repositories are readable without credentials; private ones are not.
    assert_eq!(
        http().get(format!("{api}/repositories/acme/public-lib")).send().await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        http().get(format!("{api}/repositories/acme/app")).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );

    let ip = get_basic(&format!("{api}/repositories/locked/app"), JO_EMAIL, API_TOKEN).await;
    assert_eq!(ip.status(), StatusCode::FORBIDDEN);
    assert!(message(&json(ip).await).contains("an admin must whitelist your IP"));
    let two_step = get_basic(&format!("{api}/repositories/strict/app"), "lee@example.com", API_TOKEN_LEE).await;
    assert_eq!(two_step.status(), StatusCode::FORBIDDEN);
    assert!(message(&json(two_step).await).contains("enable two-step authentication"));
    // Two-step on: passes.
    sim.update(|w| w.users.iter_mut().find(|u| u.username == "lee").unwrap().two_step = true);
    assert_eq!(
        get_basic(&format!("{api}/repositories/strict/app"), "lee@example.com", API_TOKEN_LEE).await.status(),
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloud_rate_limit_per_credential() {
    let sim = sim().await;
    sim.update(|w| w.cloud.rest_limit = RateLimit::per_hour(3));
    let url = format!("{}/repositories/acme/app", sim.cloud_api_url());
    for _ in 0..3 {
        assert_eq!(get_basic(&url, JO_EMAIL, API_TOKEN).await.status(), StatusCode::OK);
    }
    let over = get_basic(&url, JO_EMAIL, API_TOKEN).await;
    assert_eq!(over.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&over, "retry-after"), None);
    assert_eq!(header(&over, "x-ratelimit-limit"), None, "X-RateLimit-* only for access tokens");
    assert_eq!(message(&json(over).await), cc::RATE_LIMITED);
    // Another credential has its own budget.
    assert_eq!(get_bearer(&url, REPO_ACCESS_TOKEN).await.status(), StatusCode::OK);

    sim.update(|w| w.cloud.rest_limit = RateLimit::per_hour(3).with_retry_after());
    sim.clock().advance(chrono::Duration::minutes(15));
    let over = get_basic(&url, JO_EMAIL, API_TOKEN).await;
    assert_eq!(over.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&over, "retry-after"), Some("2700"));
    for _ in 0..2 {
        get_bearer(&url, REPO_ACCESS_TOKEN).await;
    }
    let over = get_bearer(&url, REPO_ACCESS_TOKEN).await;
    assert_eq!(over.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&over, "x-ratelimit-limit"), Some("3"));
    // A new window.
    sim.clock().advance(chrono::Duration::hours(1));
    assert_eq!(get_basic(&url, JO_EMAIL, API_TOKEN).await.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloud_branches_paginate_with_absolute_next() {
    let sim = sim().await;
    let mut url = format!("{}/repositories/acme/many/refs/branches", sim.cloud_api_url());
    let mut names = Vec::new();
    let mut pages = 0;
    loop {
        let page = json(get_basic(&url, JO_EMAIL, API_TOKEN).await).await;
        pages += 1;
        assert_eq!(page["pagelen"], 10);
        assert_eq!(page["size"], 25);
        for v in page["values"].as_array().unwrap() {
            assert_eq!(v["type"], "branch");
            assert_eq!(v["target"]["type"], "commit");
            assert_eq!(v["target"]["hash"].as_str().unwrap().len(), 40);
            names.push(v["name"].as_str().unwrap().to_owned());
        }
        match page["next"].as_str() {
            Some(next) => {
                assert!(next.starts_with(&sim.cloud_api_url()), "{next}");
                url = next.to_owned();
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(names.len(), 25);
    assert!(names.contains(&"topic/b07".to_owned()));

    let big = json(
        get_basic(
            &format!("{}/repositories/acme/many/refs/branches?pagelen=500", sim.cloud_api_url()),
            JO_EMAIL,
            API_TOKEN,
        )
        .await,
    )
    .await;
    assert_eq!(big["pagelen"], 100);
    assert!(big.get("next").is_none());
    let q = json(
        get_basic(
            &format!("{}/repositories/acme/many/refs/branches?q=name%3D%22main%22", sim.cloud_api_url()),
            JO_EMAIL,
            API_TOKEN,
        )
        .await,
    )
    .await;
    assert_eq!(q["size"], 1);
    assert_eq!(q["values"][0]["name"], "main");
    // fields= trims; `+` must be %2B (a raw `+` is a space).
    let f = json(
        get_basic(
            &format!("{}/repositories/acme/app?fields=full_name,mainbranch.name", sim.cloud_api_url()),
            JO_EMAIL,
            API_TOKEN,
        )
        .await,
    )
    .await;
    assert_eq!(f, serde_json::json!({"full_name": "acme/app", "mainbranch": {"name": "main"}}));
    let empty =
        json(get_basic(&format!("{}/repositories/acme/empty", sim.cloud_api_url()), JO_EMAIL, API_TOKEN).await).await;
    assert!(empty["mainbranch"].is_null(), "empty repository: mainbranch null");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloud_permissions_query() {
    let sim = sim().await;
    let url = |q: &str| format!("{}/user/workspaces/acme/permissions/repositories?q={q}", sim.cloud_api_url());
    let r = json(get_basic(&url("repository.name%3D%22app%22"), JO_EMAIL, API_TOKEN).await).await;
    assert_eq!(r["values"].as_array().unwrap().len(), 1);
    assert_eq!(r["values"][0]["permission"], "admin");
    assert_eq!(r["values"][0]["repository"]["full_name"], "acme/app");
    // A public repository without a grant does not appear; neither does the secret one.
    for name in ["public-lib", "secret-repo"] {
        let r = json(get_basic(&url(&format!("repository.name%3D%22{name}%22")), JO_EMAIL, API_TOKEN).await).await;
        assert_eq!(r["values"].as_array().unwrap().len(), 0, "{name}");
    }
    let all = json(
        get_basic(
            &format!("{}/user/workspaces/acme/permissions/repositories", sim.cloud_api_url()),
            JO_EMAIL,
            API_TOKEN,
        )
        .await,
    )
    .await;
    assert_eq!(all["size"], 3, "app, empty, many");
    assert_eq!(get_basic(&url("nonsense"), JO_EMAIL, API_TOKEN).await.status(), StatusCode::BAD_REQUEST);
}

// ---------------------------------------------------------------- Bitbucket Data Center

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datacenter_tokens_permissions_and_pages() {
    let sim = sim_with(|b| {
        b.dc_repo("PROJ/hidden", RepoSpec::new(&["main"]))
            .dc_repo("OTHER/x", RepoSpec::new(&["main"]))
            .credential(Cred::dc_project_token("PROJ", "BBDC-proj", &["PROJECT_READ"]))
            .credential(Cred::dc_personal_token("jo", "BBDC-old", &["REPO_READ"]).expires("2026-07-01"))
            .grant(Host::DataCenter, "jo", "PROJ", Perm::Write)
    })
    .await;
    let api = format!("{}/rest/api/latest", sim.dc_url());
    assert!(api.contains("/bitbucket/rest/api/latest"));
    let repo = format!("{api}/projects/PROJ/repos/app");

    let r = get_bearer(&repo, demo::DC_PERSONAL_TOKEN).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "x-ausername"), Some("jo"));
    let body = json(r).await;
    assert_eq!(body["slug"], "app");
    assert_eq!(body["project"]["key"], "PROJ");
    assert!(body.get("defaultBranch").is_none(), "write-only field");
    assert_eq!(get_basic(&repo, "jo", demo::DC_PERSONAL_TOKEN).await.status(), StatusCode::OK);
    assert_eq!(get_basic(&repo, "someone", demo::DC_PERSONAL_TOKEN).await.status(), StatusCode::UNAUTHORIZED);
    // Project and repository tokens: Bearer only.
    assert_eq!(get_bearer(&repo, demo::DC_REPO_TOKEN).await.status(), StatusCode::OK);
    assert_eq!(get_bearer(&repo, "BBDC-proj").await.status(), StatusCode::OK);
    assert_eq!(get_basic(&repo, "jo", demo::DC_REPO_TOKEN).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(get_basic(&repo, "jo", "BBDC-proj").await.status(), StatusCode::UNAUTHORIZED);
    // Expired: 401 with the errors body.
    let old = get_bearer(&repo, "BBDC-old").await;
    assert_eq!(old.status(), StatusCode::UNAUTHORIZED);
    let e = json(old).await;
    assert!(e["errors"][0]["context"].is_null());
    assert!(e["errors"][0]["exceptionName"].as_str().unwrap().contains("Authentication"));
    // Insufficient permission: 401; missing: 404.
    let hidden = get_bearer(&format!("{api}/projects/OTHER/repos/x"), demo::DC_REPO_TOKEN).await;
    assert_eq!(hidden.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(json(hidden).await["errors"][0]["exceptionName"], "com.atlassian.bitbucket.AuthorisationException");
    assert_eq!(
        get_bearer(&format!("{api}/projects/PROJ/repos/hidden"), demo::DC_REPO_TOKEN).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get_bearer(&format!("{api}/projects/PROJ/repos/nope"), demo::DC_PERSONAL_TOKEN).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get_bearer(&format!("{api}/projects/NOPE/repos/app"), demo::DC_PERSONAL_TOKEN).await.status(),
        StatusCode::NOT_FOUND
    );

    let db = json(get_bearer(&format!("{repo}/default-branch"), demo::DC_PERSONAL_TOKEN).await).await;
    assert_eq!(db["id"], "refs/heads/main");
    assert_eq!(db["displayId"], "main");
    assert_eq!(db["type"], "BRANCH");
    assert_eq!(db["isDefault"], true);
    assert_eq!(db["latestCommit"].as_str().unwrap().len(), 40);

    let p1 = json(get_bearer(&format!("{repo}/branches?limit=2"), demo::DC_PERSONAL_TOKEN).await).await;
    assert_eq!(p1["size"], 2);
    assert_eq!(p1["isLastPage"], false);
    assert_eq!(p1["nextPageStart"], 2);
    let p2 = json(get_bearer(&format!("{repo}/branches?limit=2&start=2"), demo::DC_PERSONAL_TOKEN).await).await;
    assert_eq!(p2["isLastPage"], true);
    assert!(p2.get("nextPageStart").is_none());
    assert_eq!(p2["values"][0]["type"], "BRANCH");

    // The /1.0 alias and application-properties.
    assert_eq!(
        get_bearer(&format!("{}/rest/api/1.0/projects/PROJ/repos/app", sim.dc_url()), demo::DC_REPO_TOKEN)
            .await
            .status(),
        StatusCode::OK
    );
    let props = get_bearer(&format!("{api}/application-properties"), demo::DC_PERSONAL_TOKEN).await;
    assert_eq!(header(&props, "x-ausername"), Some("jo"));
    assert_eq!(json(props).await["version"], "9.2.0");
    let anon = http().get(format!("{api}/application-properties")).send().await.unwrap();
    assert_eq!(header(&anon, "x-ausername"), None);
}

// ---------------------------------------------------------------- GitHub

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_scopes_expiry_and_404() {
    let sim = sim_with(|b| b.github_repo("octo/private", RepoSpec::new(&["main"]))).await;
    let api = sim.github_api_url();
    let classic = http()
        .get(format!("{api}/user"))
        .header("authorization", format!("token {}", demo::GITHUB_CLASSIC))
        .send()
        .await
        .unwrap();
    assert_eq!(classic.status(), StatusCode::OK);
    assert_eq!(header(&classic, "x-oauth-scopes"), Some("repo, read:org"));
    assert_eq!(header(&classic, "github-authentication-token-expiration"), Some("2026-12-01 00:00:00 UTC"));
    assert_eq!(json(classic).await["login"], "jo");

    let fine = get_bearer(&format!("{api}/user"), demo::GITHUB_FINE_GRAINED).await;
    assert_eq!(fine.status(), StatusCode::OK);
    assert_eq!(header(&fine, "x-oauth-scopes"), None);
    assert_eq!(header(&fine, "github-authentication-token-expiration"), None);

    let repo = json(get_bearer(&format!("{api}/repos/octo/app"), demo::GITHUB_CLASSIC).await).await;
    assert_eq!(repo["default_branch"], "main");
    assert_eq!(repo["private"], true);
    assert_eq!(
        repo["permissions"],
        serde_json::json!({"admin": false, "maintain": false, "push": true, "triage": true, "pull": true})
    );
    let hidden = get_bearer(&format!("{api}/repos/octo/private"), demo::GITHUB_CLASSIC).await;
    assert_eq!(hidden.status(), StatusCode::NOT_FOUND);
    assert_eq!(json(hidden).await["message"], "Not Found");
    let bad = get_bearer(&format!("{api}/user"), "ghp_wrong").await;
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
    let bad = json(bad).await;
    assert_eq!(bad["message"], "Bad credentials");
    assert!(bad["documentation_url"].as_str().unwrap().starts_with("https://docs.github.com/"));
}

// ---------------------------------------------------------------- Git

enum GitAuth<'a> {
    Anonymous,
    Basic(&'a str, &'a str),
    Bearer(&'a str),
}

struct GitRun {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// `git ls-remote` with credentials from GIT_ASKPASS (Basic) or http.extraHeader via
/// GIT_CONFIG_* (Bearer): never on the command line.
async fn ls_remote(url: &str, auth: GitAuth<'_>) -> GitRun {
    let dir = tempfile::tempdir().unwrap();
    let askpass = dir.path().join("askpass.sh");
    std::fs::write(&askpass, "#!/bin/sh\ncase \"$1\" in\n  Username*) printf '%s\\n' \"$SIM_GIT_USER\" ;;\n  *) printf '%s\\n' \"$SIM_GIT_PASS\" ;;\nesac\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&askpass, std::fs::Permissions::from_mode(0o700)).unwrap();
    let mut cmd = berth_testkit::git_command();
    cmd.args(["ls-remote", url]).env("GIT_ASKPASS", &askpass).env("SIM_GIT_USER", "").env("SIM_GIT_PASS", "");
    match auth {
        GitAuth::Anonymous => {}
        GitAuth::Basic(user, pass) => {
            cmd.env("SIM_GIT_USER", user).env("SIM_GIT_PASS", pass);
        }
        GitAuth::Bearer(token) => {
            cmd.env("GIT_CONFIG_COUNT", "1")
                .env("GIT_CONFIG_KEY_0", "http.extraHeader")
                .env("GIT_CONFIG_VALUE_0", format!("Authorization: Bearer {token}"));
        }
    }
    let out = tokio::process::Command::from(cmd).output().await.unwrap();
    GitRun {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn git_cloud_identities() {
    let sim = sim_with(|b| b.credential(Cred::app_password("jo", "ATBB-gone-401"))).await;
    let url = sim.cloud_git_url("acme/app");
    for user in ["jo", "x-bitbucket-api-token-auth"] {
        let run = ls_remote(&url, GitAuth::Basic(user, API_TOKEN)).await;
        assert!(run.ok, "{user}: {}", run.stderr);
        assert!(run.stdout.contains("refs/heads/feature/login"), "{}", run.stdout);
    }
    let run = ls_remote(&url, GitAuth::Basic("x-token-auth", REPO_ACCESS_TOKEN)).await;
    assert!(run.ok, "{}", run.stderr);
    let run = ls_remote(&url, GitAuth::Bearer(REPO_ACCESS_TOKEN)).await;
    assert!(run.ok, "{}", run.stderr);

    // The email is the REST user name, not the Git one.
    let run = ls_remote(&url, GitAuth::Basic(JO_EMAIL, API_TOKEN)).await;
    assert!(!run.ok);
    assert!(run.stderr.contains("Authentication failed"), "{}", run.stderr);
    let recs = sim.requests(Host::Cloud);
    assert!(recs.iter().any(|r| r.basic_username.as_deref() == Some(JO_EMAIL) && r.status == 401));
    assert!(recs.iter().all(|r| !format!("{r:?}").contains(API_TOKEN)));

    // Missing read:repository: 403 with the scope message.
    let run = ls_remote(&url, GitAuth::Basic("jo", API_TOKEN_NO_READ)).await;
    assert!(!run.ok);
    assert!(run.stderr.contains(&format!("remote: {}", cc::SCOPES_LACKING)), "{}", run.stderr);

    // App passwords: retired, 410 or 401.
    let run = ls_remote(&url, GitAuth::Basic("jo", APP_PASSWORD)).await;
    assert!(!run.ok);
    assert!(run.stderr.contains("410"), "{}", run.stderr);
    let run = ls_remote(&url, GitAuth::Basic("jo", "ATBB-gone-401")).await;
    assert!(!run.ok);
    assert!(run.stderr.contains("Authentication failed"), "{}", run.stderr);

    // Someone else's private repository.
    let run = ls_remote(&sim.cloud_git_url("acme/secret-repo"), GitAuth::Basic("jo", API_TOKEN)).await;
    assert!(!run.ok);
    assert!(run.stderr.contains("remote: The requested repository either does not exist"), "{}", run.stderr);
    // Anonymous on a private repository: asked for credentials, none given.
    assert!(!ls_remote(&url, GitAuth::Anonymous).await.ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn git_cloud_policies_answer_403_with_remote_lines() {
    let sim = sim().await;
    let run = ls_remote(&sim.cloud_git_url("locked/app"), GitAuth::Basic("jo", API_TOKEN)).await;
    assert!(!run.ok);
    assert!(
        run.stderr.contains("remote: To access this repository, an admin must whitelist your IP."),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("403"), "{}", run.stderr);
    let run = ls_remote(&sim.cloud_git_url("strict/app"), GitAuth::Basic("lee", API_TOKEN_LEE)).await;
    assert!(!run.ok);
    assert!(
        run.stderr.contains("remote: To access this repository, enable two-step authentication."),
        "{}",
        run.stderr
    );
    // Allow 127.0.0.1: passes.
    sim.update(|w| w.workspace_mut("locked").unwrap().ip_allowlist = Some(vec!["127.0.0.1".parse().unwrap()]));
    assert!(ls_remote(&sim.cloud_git_url("locked/app"), GitAuth::Basic("jo", API_TOKEN)).await.ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn git_cloud_rate_limit() {
    let sim = sim().await;
    sim.update(|w| w.cloud.git_limit = RateLimit::per_hour(2).with_retry_after());
    let url = sim.cloud_git_url("acme/app");
    // ls-remote makes 2 requests when credentials come via extraHeader (discovery + ls-refs).
    assert!(ls_remote(&url, GitAuth::Bearer(REPO_ACCESS_TOKEN)).await.ok);
    let run = ls_remote(&url, GitAuth::Bearer(REPO_ACCESS_TOKEN)).await;
    assert!(!run.ok);
    assert!(run.stderr.contains("429") || run.stderr.contains(cc::RATE_LIMITED), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn git_datacenter_and_github() {
    let sim = sim().await;
    let dc = sim.dc_git_url("PROJ/app");
    assert!(dc.contains("/bitbucket/scm/proj/app.git"));
    let run = ls_remote(&dc, GitAuth::Basic("jo", demo::DC_PERSONAL_TOKEN)).await;
    assert!(run.ok, "{}", run.stderr);
    assert!(run.stdout.contains("refs/heads/develop"));
    assert!(ls_remote(&dc, GitAuth::Bearer(demo::DC_REPO_TOKEN)).await.ok);
    assert!(!ls_remote(&dc, GitAuth::Basic("jo", demo::DC_REPO_TOKEN)).await.ok, "repository tokens are Bearer only");

    let gh = sim.github_git_url("octo/app");
    for user in ["anything", "x-access-token"] {
        let run = ls_remote(&gh, GitAuth::Basic(user, demo::GITHUB_CLASSIC)).await;
        assert!(run.ok, "{}", run.stderr);
        assert!(run.stdout.contains("refs/heads/dev"));
    }
    let run = ls_remote(&gh, GitAuth::Basic("jo", "ghp_wrong")).await;
    assert!(!run.ok);
    assert!(run.stderr.contains("Authentication failed"), "{}", run.stderr);
}
