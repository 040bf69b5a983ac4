//! The simulator's responses validate against Atlassian's OpenAPI documents
//! (`shared/reference/bitbucket/`): each served endpoint's response schema for 200 and for the
//! error statuses the spec defines, `$ref`s resolved inside the whole document. GitHub has no
//! spec here: its shapes are checked by hand.
//!
//! Allowed deviations, each asserted explicitly before the rest is validated:
//! - Cloud scope errors: `error.detail` is an object `{required, granted}` (the spec types it
//!   string; forge-facts: "parse it as any JSON").
//! - Cloud empty repository: `mainbranch` is `null` (forge-facts: "may be null on an empty
//!   repository"; the spec has no `nullable`).
//! - Data Center errors: `context` is `null` (as Data Center sends it; the spec types it string).
//!
//! Formats (`uri`, `date-time`) are not asserted: OpenAPI 3.0 treats them as annotations, and
//! Bitbucket's own SSH clone link `git@host:ws/repo.git` is no RFC 3986 URI.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use berth_testkit::sim::demo::{self, API_TOKEN, API_TOKEN_NO_READ, REPO_ACCESS_TOKEN};
use berth_testkit::sim::{CloudEndpoint, Cred, Host, Perm, RepoSpec, Sim, SimClock};
use reqwest::{Client, RequestBuilder, StatusCode};
use serde_json::{json, Value};

const JO: &str = "jo@example.com";

struct Spec {
    name: &'static str,
    doc: Value,
}

impl Spec {
    fn load(file: &'static str) -> Spec {
        let path = format!("{}/../../../shared/reference/bitbucket/{file}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
        Spec { name: file, doc: serde_json::from_str(&text).unwrap() }
    }

    /// `paths[path].get.responses[status].content["application/json"].schema` (a `$ref` or inline).
    fn response_schema(&self, path: &str, status: u16) -> Value {
        let op = &self.doc["paths"][path]["get"];
        assert!(op.is_object(), "{}: no GET {path}", self.name);
        let schema = &op["responses"][status.to_string()]["content"]["application/json"]["schema"];
        assert!(schema.is_object(), "{}: GET {path} defines no JSON response for {status}", self.name);
        schema.clone()
    }

    /// Validates `instance` against the response schema, with the whole document as the root
    /// resource so every `#/components/schemas/…` resolves.
    fn check(&self, path: &str, status: u16, instance: &Value) {
        let errors = self.errors(path, status, instance);
        assert!(
            errors.is_empty(),
            "{}: GET {path} {status} does not validate:\n{}\n{instance:#}",
            self.name,
            errors.join("\n")
        );
    }

    fn errors(&self, path: &str, status: u16, instance: &Value) -> Vec<String> {
        let mut doc = self.doc.clone();
        doc["components"]["schemas"]["__sim_response"] = self.response_schema(path, status);
        doc["$ref"] = json!("#/components/schemas/__sim_response");
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft4)
            .should_validate_formats(false)
            .build(&doc)
            .unwrap_or_else(|e| panic!("{}: schema for GET {path} {status}: {e}", self.name));
        validator.iter_errors(instance).map(|e| format!("{e} (at {})", e.instance_path())).collect()
    }
}

async fn start() -> Sim {
    let (b, _) = demo::builder(SimClock::at("2026-08-01T00:00:00Z"));
    b.cloud_repo("acme/many", RepoSpec::new(&["main", "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"]))
        .grant(Host::Cloud, "jo", "acme/many", Perm::Read)
        .dc_repo("OTHER/x", RepoSpec::new(&["main"]))
        .dc_repo("PROJ/empty", RepoSpec::empty())
        .credential(Cred::api_token("jo", "ATATT-no-webhook", &["read:repository:bitbucket"]))
        .start()
        .await
}

async fn fetch(req: RequestBuilder, status: StatusCode) -> Value {
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), status, "{:?}", resp.url().to_string());
    let ct = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    assert!(ct.starts_with("application/json"), "{ct}");
    resp.json().await.unwrap()
}

/// Cloud scope error: checks the object `detail`, then hands back the body with `detail` as a
/// string, which is what the spec describes.
fn scope_error_as_spec(mut body: Value) -> Value {
    let detail = body["error"]["detail"].take();
    assert!(detail["required"].is_array() && detail["granted"].is_array(), "{detail}");
    body["error"]["detail"] = json!(detail.to_string());
    body
}

/// Data Center error: checks `context: null`, then drops it.
fn dc_error_as_spec(mut body: Value) -> Value {
    for e in body["errors"].as_array_mut().unwrap() {
        assert!(e["context"].is_null(), "{e}");
        e.as_object_mut().unwrap().remove("context");
        assert!(e["message"].is_string() && e["exceptionName"].is_string());
    }
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scope_tables_match_the_cloud_spec() {
    let spec = Spec::load("cloud-openapi.v3.json");
    for ep in CloudEndpoint::ALL {
        let op = &spec.doc["paths"][ep.spec_path()]["get"];
        let mut api: Vec<&str> = op["x-atlassian-oauth2-scopes"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["scopes"].as_array().unwrap().iter().filter_map(Value::as_str))
            .collect();
        api.sort_unstable();
        assert_eq!(api, ep.api_token_scopes(), "{ep:?} API-token scopes");
        let oauth: Vec<&str> = op["security"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| s["oauth2"].as_array())
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(oauth, ep.oauth_scopes(), "{ep:?} OAuth scopes");
    }
}

/// The validation is not vacuous: wrong shapes fail, refs into `#/components/schemas` included.
#[test]
fn the_validator_rejects_wrong_shapes() {
    let cloud = Spec::load("cloud-openapi.v3.json");
    let repo = CloudEndpoint::Repository.spec_path();
    assert!(cloud.errors(repo, 200, &json!({"type": "repository", "full_name": "a/b"})).is_empty());
    assert!(!cloud.errors(repo, 200, &json!({"type": "repository", "is_private": "yes"})).is_empty());
    assert!(!cloud.errors(repo, 200, &json!({"full_name": "a/b"})).is_empty(), "type is required (allOf object)");
    assert!(
        !cloud.errors(repo, 200, &json!({"type": "repository", "mainbranch": null})).is_empty(),
        "why mainbranch is a deviation"
    );
    assert!(!cloud.errors(repo, 200, &json!({"type": "repository", "owner": {"type": 3}})).is_empty(), "nested $ref");
    let branches = CloudEndpoint::Branches.spec_path();
    assert!(
        !cloud.errors(branches, 200, &json!({"values": [], "pagelen": 10, "extra": 1})).is_empty(),
        "additionalProperties: false"
    );
    assert!(!cloud.errors(branches, 200, &json!({"values": [{"name": "x"}]})).is_empty(), "branch needs type");
    let scope = json!({"type": "error", "error": {"message": "m", "detail": {"required": [], "granted": []}}});
    assert!(!cloud.errors(repo, 403, &scope).is_empty(), "why detail is a deviation");
    let dc = Spec::load("datacenter-9.2-openapi.v3.json");
    let p = "/api/latest/projects/{projectKey}/repos/{repositorySlug}";
    assert!(
        !dc.errors(p, 401, &json!({"errors": [{"context": null, "message": "m"}]})).is_empty(),
        "why context is a deviation"
    );
    assert!(!dc.errors(p, 200, &json!({"project": {"name": "x"}})).is_empty(), "project.key is required");
    assert!(!dc.errors(p, 200, &json!({"state": "BROKEN"})).is_empty(), "enum");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloud_responses_match_the_spec() {
    let spec = Spec::load("cloud-openapi.v3.json");
    let sim = start().await;
    let http = Client::new();
    let api = sim.cloud_api_url();
    let get = |path: &str| http.get(format!("{api}{path}"));
    let p_user = CloudEndpoint::User.spec_path();
    let p_repo = CloudEndpoint::Repository.spec_path();
    let p_branches = CloudEndpoint::Branches.spec_path();
    let p_perms = CloudEndpoint::Permissions.spec_path();
    let p_hooks = CloudEndpoint::Hooks.spec_path();

    // GET /user
    spec.check(p_user, 200, &fetch(get("/user").basic_auth(JO, Some(API_TOKEN)), StatusCode::OK).await);
    spec.check(p_user, 401, &fetch(get("/user").basic_auth(JO, Some("ATATT-wrong")), StatusCode::UNAUTHORIZED).await);

    // GET /repositories/{workspace}/{repo_slug}
    spec.check(
        p_repo,
        200,
        &fetch(get("/repositories/acme/app").basic_auth(JO, Some(API_TOKEN)), StatusCode::OK).await,
    );
    spec.check(p_repo, 200, &fetch(get("/repositories/acme/app").bearer_auth(REPO_ACCESS_TOKEN), StatusCode::OK).await);
    let mut empty = fetch(get("/repositories/acme/empty").basic_auth(JO, Some(API_TOKEN)), StatusCode::OK).await;
    assert!(empty["mainbranch"].is_null());
    empty.as_object_mut().unwrap().remove("mainbranch");
    spec.check(p_repo, 200, &empty);
    spec.check(
        p_repo,
        404,
        &fetch(get("/repositories/acme/secret-repo").basic_auth(JO, Some(API_TOKEN)), StatusCode::NOT_FOUND).await,
    );
    spec.check(
        p_repo,
        403,
        &fetch(get("/repositories/locked/app").basic_auth(JO, Some(API_TOKEN)), StatusCode::FORBIDDEN).await,
    );
    let scope =
        fetch(get("/repositories/acme/app").basic_auth(JO, Some(API_TOKEN_NO_READ)), StatusCode::FORBIDDEN).await;
    spec.check(p_repo, 403, &scope_error_as_spec(scope));

    // GET …/refs/branches, every page
    let mut url = format!("{api}/repositories/acme/many/refs/branches");
    loop {
        let page = fetch(http.get(&url).basic_auth(JO, Some(API_TOKEN)), StatusCode::OK).await;
        spec.check(p_branches, 200, &page);
        match page["next"].as_str() {
            Some(n) => url = n.to_owned(),
            None => break,
        }
    }
    spec.check(
        p_branches,
        404,
        &fetch(get("/repositories/acme/nope/refs/branches").basic_auth(JO, Some(API_TOKEN)), StatusCode::NOT_FOUND)
            .await,
    );
    let scope = fetch(
        get("/repositories/acme/app/refs/branches").basic_auth(JO, Some(API_TOKEN_NO_READ)),
        StatusCode::FORBIDDEN,
    )
    .await;
    spec.check(p_branches, 403, &scope_error_as_spec(scope));

    // GET /repositories/{workspace}, every page of one; an empty repository's mainbranch is null
    // (the deviation above), the rest validates as it comes.
    let p_ws = CloudEndpoint::WorkspaceRepositories.spec_path();
    let mut url = format!("{api}/repositories/acme?pagelen=1");
    let mut seen = Vec::new();
    loop {
        let mut page = fetch(http.get(&url).basic_auth(JO, Some(API_TOKEN)), StatusCode::OK).await;
        for v in page["values"].as_array_mut().unwrap() {
            seen.push(v["full_name"].as_str().unwrap().to_owned());
            if v["mainbranch"].is_null() {
                v.as_object_mut().unwrap().remove("mainbranch");
            }
        }
        spec.check(p_ws, 200, &page);
        match page["next"].as_str() {
            Some(n) => url = n.to_owned(),
            None => break,
        }
    }
    assert!(seen.len() > 1 && seen.contains(&"acme/app".to_owned()), "{seen:?}");
    assert!(!seen.contains(&"acme/secret-repo".to_owned()), "hidden repositories are not listed: {seen:?}");
    spec.check(
        p_ws,
        404,
        &fetch(get("/repositories/no-such-ws").basic_auth(JO, Some(API_TOKEN)), StatusCode::NOT_FOUND).await,
    );

    // GET /user/workspaces/{workspace}/permissions/repositories
    let perms = "/user/workspaces/acme/permissions/repositories";
    spec.check(
        p_perms,
        200,
        &fetch(get(&format!("{perms}?q=repository.name%3D%22app%22")).basic_auth(JO, Some(API_TOKEN)), StatusCode::OK)
            .await,
    );
    spec.check(p_perms, 200, &fetch(get(perms).basic_auth(JO, Some(API_TOKEN)), StatusCode::OK).await);
    spec.check(
        p_perms,
        400,
        &fetch(get(&format!("{perms}?q=garbage")).basic_auth(JO, Some(API_TOKEN)), StatusCode::BAD_REQUEST).await,
    );
    spec.check(p_perms, 401, &fetch(get(perms).basic_auth(JO, Some("ATATT-wrong")), StatusCode::UNAUTHORIZED).await);
    spec.check(p_perms, 403, &fetch(get(perms).bearer_auth(REPO_ACCESS_TOKEN), StatusCode::FORBIDDEN).await);

    // GET …/hooks
    spec.check(
        p_hooks,
        200,
        &fetch(get("/repositories/acme/app/hooks").basic_auth(JO, Some(API_TOKEN)), StatusCode::OK).await,
    );
    spec.check(
        p_hooks,
        404,
        &fetch(get("/repositories/acme/secret-repo/hooks").basic_auth(JO, Some(API_TOKEN)), StatusCode::NOT_FOUND)
            .await,
    );
    let scope =
        fetch(get("/repositories/acme/app/hooks").basic_auth(JO, Some("ATATT-no-webhook")), StatusCode::FORBIDDEN)
            .await;
    spec.check(p_hooks, 403, &scope_error_as_spec(scope));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datacenter_responses_match_the_spec() {
    let spec = Spec::load("datacenter-9.2-openapi.v3.json");
    let sim = start().await;
    let http = Client::new();
    let api = format!("{}/rest/api/latest", sim.dc_url());
    let get = |path: &str| http.get(format!("{api}{path}")).bearer_auth(demo::DC_PERSONAL_TOKEN);
    let p_props = "/api/latest/application-properties";
    let p_repo = "/api/latest/projects/{projectKey}/repos/{repositorySlug}";
    let p_default = "/api/latest/projects/{projectKey}/repos/{repositorySlug}/default-branch";
    let p_branches = "/api/latest/projects/{projectKey}/repos/{repositorySlug}/branches";

    spec.check(p_props, 200, &fetch(get("/application-properties"), StatusCode::OK).await);
    for (path, tail) in [(p_repo, ""), (p_default, "/default-branch"), (p_branches, "/branches")] {
        spec.check(path, 200, &fetch(get(&format!("/projects/PROJ/repos/app{tail}")), StatusCode::OK).await);
        let denied = fetch(get(&format!("/projects/OTHER/repos/x{tail}")), StatusCode::UNAUTHORIZED).await;
        spec.check(path, 401, &dc_error_as_spec(denied));
        let missing = fetch(get(&format!("/projects/PROJ/repos/nope{tail}")), StatusCode::NOT_FOUND).await;
        spec.check(path, 404, &dc_error_as_spec(missing));
    }
    // Pages of one, and the empty repository's missing default branch.
    let mut start = 0;
    loop {
        let page =
            fetch(get(&format!("/projects/PROJ/repos/app/branches?limit=1&start={start}")), StatusCode::OK).await;
        spec.check(p_branches, 200, &page);
        if page["isLastPage"] == true {
            break;
        }
        start = page["nextPageStart"].as_u64().unwrap();
    }
    // The project's repositories, pages of one.
    let p_list = "/api/latest/projects/{projectKey}/repos";
    let (mut start, mut listed) = (0, 0);
    loop {
        let page = fetch(get(&format!("/projects/PROJ/repos?limit=1&start={start}")), StatusCode::OK).await;
        spec.check(p_list, 200, &page);
        listed += page["values"].as_array().unwrap().len();
        if page["isLastPage"] == true {
            break;
        }
        start = page["nextPageStart"].as_u64().unwrap();
    }
    assert!(listed >= 2, "{listed}");
    spec.check(p_list, 401, &dc_error_as_spec(fetch(get("/projects/OTHER/repos"), StatusCode::UNAUTHORIZED).await));
    spec.check(p_list, 404, &dc_error_as_spec(fetch(get("/projects/NOPE/repos"), StatusCode::NOT_FOUND).await));
    let no_default = fetch(get("/projects/PROJ/repos/empty/default-branch"), StatusCode::NOT_FOUND).await;
    spec.check(p_default, 404, &dc_error_as_spec(no_default));
    let bad =
        fetch(http.get(format!("{api}/projects/PROJ/repos/app")).bearer_auth("BBDC-wrong"), StatusCode::UNAUTHORIZED)
            .await;
    spec.check(p_repo, 401, &dc_error_as_spec(bad));
}

fn assert_types(v: &Value, fields: &[(&str, &str)]) {
    for (name, ty) in fields {
        let f = &v[*name];
        let ok = match *ty {
            "string" => f.is_string(),
            "number" => f.is_u64(),
            "bool" => f.is_boolean(),
            "object" => f.is_object(),
            "string|null" => f.is_string() || f.is_null(),
            _ => false,
        };
        assert!(ok, "{name} should be {ty}: {v:#}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_shapes() {
    let sim = start().await;
    let http = Client::new();
    let api = sim.github_api_url();
    let user = fetch(http.get(format!("{api}/user")).bearer_auth(demo::GITHUB_CLASSIC), StatusCode::OK).await;
    assert_types(
        &user,
        &[
            ("login", "string"),
            ("id", "number"),
            ("node_id", "string"),
            ("type", "string"),
            ("site_admin", "bool"),
            ("name", "string|null"),
            ("html_url", "string"),
        ],
    );
    let repo = fetch(http.get(format!("{api}/repos/octo/app")).bearer_auth(demo::GITHUB_CLASSIC), StatusCode::OK).await;
    assert_types(
        &repo,
        &[
            ("id", "number"),
            ("name", "string"),
            ("full_name", "string"),
            ("private", "bool"),
            ("owner", "object"),
            ("default_branch", "string"),
            ("permissions", "object"),
            ("clone_url", "string"),
            ("visibility", "string"),
        ],
    );
    for key in ["admin", "maintain", "push", "triage", "pull"] {
        assert!(repo["permissions"][key].is_boolean(), "permissions.{key}");
    }
    assert_types(&repo["owner"], &[("login", "string"), ("id", "number"), ("type", "string")]);
    for (url, token, status) in [
        (format!("{api}/user"), "ghp_wrong", StatusCode::UNAUTHORIZED),
        (format!("{api}/repos/octo/nope"), demo::GITHUB_CLASSIC, StatusCode::NOT_FOUND),
    ] {
        let body = fetch(http.get(url).bearer_auth(token), status).await;
        assert_types(&body, &[("message", "string"), ("documentation_url", "string"), ("status", "string")]);
        assert_eq!(body["status"], status.as_u16().to_string());
    }
}
