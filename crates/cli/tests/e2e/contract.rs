//! The API contract: `/api/openapi.json` passes a standard OpenAPI validator, names every
//! operation once, documents every error an operation can answer, spells enumerations as
//! enums; and the server keeps what the document says (query ranges, one not-found code per
//! resource, 405 in the error shape, a credential named by its integer id).
//!
//! Raw HTTP on purpose for the document itself, malformed queries, bad ids and wrong methods:
//! the typed client cannot send them. The credential reference goes through the typed client
//! too, since its type is the point.

use crate::abuse::{assert_api_error, operations};
use crate::harness::*;
use berth_core::Code;
use berth_proto::{CredentialSelector, RepositoryCreate, RepositoryUpdate};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::PathBuf;

/// Set (to anything but `0`) to skip the validator run where it cannot be installed; the test
/// then says so loudly. Without it a missing validator fails the test.
const SKIP_VALIDATOR: &str = "BERTH_SKIP_OPENAPI_VALIDATOR";
/// The validator's executable, when not at the place `scripts/test` installs it.
const VALIDATOR: &str = "BERTH_OPENAPI_VALIDATOR";

/// `openapi-spec-validator`: `$BERTH_OPENAPI_VALIDATOR`, else the virtual environment
/// `scripts/test` makes under `target/openapi-venv`, else one on `PATH`.
fn find_validator() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(VALIDATOR) {
        return Some(PathBuf::from(p));
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/openapi-venv/bin/openapi-spec-validator");
    if venv.is_file() {
        return Some(venv);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join("openapi-spec-validator")).find(|p| p.is_file())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_passes_a_standard_validator() {
    let b = Berth::start().await;
    let (s, doc) = b.raw_get("/api/openapi.json").await;
    assert_eq!(s, StatusCode::OK, "{doc}");
    let Some(validator) = find_validator() else {
        if std::env::var(SKIP_VALIDATOR).is_ok_and(|v| !v.is_empty() && v != "0") {
            eprintln!(
                "\n!!!!!! {SKIP_VALIDATOR} is set: /api/openapi.json was NOT checked by openapi-spec-validator !!!!!!\n"
            );
            b.stop().await;
            return;
        }
        panic!(
            "openapi-spec-validator not found (looked at ${VALIDATOR}, target/openapi-venv and PATH). \
             scripts/test installs it: python3 -m venv target/openapi-venv && \
             target/openapi-venv/bin/pip install openapi-spec-validator; set {SKIP_VALIDATOR}=1 to skip it knowingly"
        );
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    let out = std::process::Command::new(&validator)
        .args(["--validation-errors", "all"])
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", validator.display()));
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "openapi-spec-validator refused /api/openapi.json:\n{said}");
    assert!(said.contains("OK"), "{said}");
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_has_a_unique_noun_verb_operation_id() {
    let b = Berth::start().await;
    let (_, doc) = b.raw_get("/api/openapi.json").await;
    let mut seen = BTreeSet::new();
    for (path, method, op) in operations(&doc) {
        let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path} has no operationId"));
        let words: Vec<&str> = id.split('_').collect();
        assert!(
            words.len() >= 2 && words.iter().all(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_lowercase())),
            "{method} {path}: operationId {id:?} is not snake_case noun_verb"
        );
        assert!(seen.insert(id.to_owned()), "{method} {path}: operationId {id:?} is used twice");
    }
    for id in ["repositories_list", "repositories_create", "credentials_create", "credentials_list", "users_list"] {
        assert!(seen.contains(id), "{id} missing: {seen:?}");
    }
    b.stop().await;
}

/// The schema a response documents for `application/json`, if any.
fn json_schema(response: &Value) -> &Value {
    &response["content"]["application/json"]["schema"]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_documents_its_errors_in_the_error_shape() {
    let b = Berth::start().await;
    let (_, doc) = b.raw_get("/api/openapi.json").await;
    let mut protected = 0;
    for (path, method, op) in operations(&doc) {
        let what = format!("{method} {path}");
        let responses = op["responses"].as_object().unwrap();
        // Every documented refusal carries the error body and says when it happens.
        for (status, response) in responses {
            if status.starts_with('4') {
                assert_eq!(json_schema(response)["$ref"], "#/components/schemas/ErrorBody", "{what} {status}");
                assert!(response["description"].as_str().is_some_and(|d| !d.is_empty()), "{what} {status}");
            }
        }
        let has = |status: &str| responses.contains_key(status);
        if op.get("security").and_then(Value::as_array).is_some_and(|s| !s.is_empty()) {
            assert!(has("401"), "{what} needs a token but does not document 401");
            protected += 1;
        }
        if op.get("requestBody").is_some() {
            for status in ["400", "413", "415", "422"] {
                assert!(has(status), "{what} reads a JSON body but does not document {status}");
            }
        }
        let query = op["parameters"].as_array().into_iter().flatten().any(|p| p["in"] == "query");
        if query {
            assert!(has("400"), "{what} reads query parameters but does not document 400");
        }
        if path.contains("{id}") {
            assert!(has("404"), "{what} names a resource by id but does not document 404");
        }
    }
    assert!(protected >= 25, "only {protected} protected operations");
    // Spot checks of what the handlers' own errors add.
    let op = |path: &str, m: &str| doc["paths"][path][m].clone();
    for status in ["403", "409", "422"] {
        assert!(op("/api/v1/repositories", "post")["responses"][status].is_object(), "register {status}");
    }
    assert!(op("/api/v1/credentials/{id}", "delete")["responses"]["409"].is_object());
    assert!(op("/api/v1/auth/login", "post")["responses"]["429"].is_object());
    b.stop().await;
}

/// Follows `$ref`, `allOf`/`oneOf`/`anyOf` (past `null`) and array items to the schema that
/// says what a value is.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        return resolve(doc, &doc["components"]["schemas"][r.rsplit('/').next().unwrap()]);
    }
    for key in ["allOf", "oneOf", "anyOf"] {
        if let Some(list) = schema.get(key).and_then(Value::as_array) {
            if let Some(s) = list.iter().find(|s| s.get("type") != Some(&json!("null"))) {
                return resolve(doc, s);
            }
        }
    }
    if schema.get("type") == Some(&json!("array")) {
        return resolve(doc, &schema["items"]);
    }
    schema
}

/// The documented values of `component.property`; fails when it is not an enum.
fn enum_of(doc: &Value, component: &str, property: &str) -> BTreeSet<String> {
    let schema = resolve(doc, &doc["components"]["schemas"][component]["properties"][property]);
    let values = schema["enum"].as_array().unwrap_or_else(|| panic!("{component}.{property} is not an enum: {schema}"));
    values.iter().map(|v| v.as_str().unwrap().to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enumerations_are_enums_and_no_component_is_named_after_a_rust_type() {
    let b = Berth::start().await;
    let (_, doc) = b.raw_get("/api/openapi.json").await;
    let rust = [
        "i8", "i16", "i32", "i64", "i128", "isize", "u8", "u16", "u32", "u64", "u128", "usize", "f32", "f64", "bool",
        "char", "str", "String", "Vec", "Option", "HashMap", "BTreeMap", "Value",
    ];
    for name in doc["components"]["schemas"].as_object().unwrap().keys() {
        assert!(!rust.contains(&name.as_str()), "component {name:?} is named after a Rust type");
        assert!(name.starts_with(|c: char| c.is_ascii_uppercase()), "component {name:?}");
    }
    for (component, property) in [
        ("User", "role"),
        ("UserCreate", "role"),
        ("UserUpdate", "role"),
        ("Me", "role"),
        ("Me", "allowed"),
        ("Repository", "status"),
        ("Repository", "vcs"),
        ("RepositoryCreate", "vcs"),
        ("StoredCheck", "status"),
        ("StoredCheck", "reason"),
        ("StoredCheck", "code"),
        ("StoredCheck", "warning_codes"),
        ("Credential", "kind"),
        ("Credential", "expiry_status"),
        ("CredentialCreate", "kind"),
        ("RemoteBranches", "protocol"),
        ("RemoteBranches", "provider"),
        ("Step", "step"),
        ("Step", "status"),
        ("Step", "code"),
        ("Warning", "code"),
        ("ApiError", "code"),
        ("AuditEntry", "outcome"),
        ("ConfigChange", "action"),
        ("ConfigChange", "kind"),
        ("ConfigChange", "status"),
    ] {
        assert!(!enum_of(&doc, component, property).is_empty(), "{component}.{property}");
    }
    assert_eq!(
        enum_of(&doc, "User", "role"),
        ["admin", "registrar", "viewer"].map(str::to_owned).into(),
        "roles as the server names them"
    );
    assert!(enum_of(&doc, "ApiError", "code").contains("method_not_allowed"));

    // The values the server really sends are among the documented ones.
    b.api_token_credential("ci").await;
    let repo = b.register("app", "team/app.git", "ci").await;
    let me = b.api.me().await.unwrap();
    assert!(enum_of(&doc, "Me", "role").contains(&me.role), "{me:?}");
    let actions = enum_of(&doc, "Me", "allowed");
    assert!(me.allowed.iter().all(|a| actions.contains(a)), "{me:?} vs {actions:?}");
    let r = b.api.get_repository(repo).await.unwrap();
    assert!(enum_of(&doc, "Repository", "status").contains(&r.status), "{r:?}");
    let last = r.last_check.unwrap();
    assert!(enum_of(&doc, "StoredCheck", "status").contains(&last.status), "{last:?}");
    assert!(enum_of(&doc, "StoredCheck", "reason").contains(&last.reason), "{last:?}");
    let c = &b.api.list_credentials().await.unwrap()[0];
    assert!(enum_of(&doc, "Credential", "expiry_status").contains(&c.expiry_status), "{c:?}");
    let rb = b.api.remote_branches(&remote(&b.git.repo_url("team/app.git"), "ci")).await.unwrap();
    assert!(enum_of(&doc, "RemoteBranches", "protocol").contains(&rb.protocol), "{}", rb.protocol);
    // A failed sign-in is audited with an outcome other than `ok`: documented too.
    let _ = b.api.login("admin", WRONG_ADMIN_PASSWORD).await;
    let outcomes = enum_of(&doc, "AuditEntry", "outcome");
    let audit = b.api.audit(None, None).await.unwrap();
    assert!(audit.iter().any(|e| e.outcome != "ok"), "{audit:?}");
    assert!(audit.iter().all(|e| outcomes.contains(&e.outcome)), "{audit:?} vs {outcomes:?}");
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_parameters_out_of_range_are_400_invalid_input() {
    let b = Berth::start().await;
    let (_, doc) = b.raw_get("/api/openapi.json").await;
    b.api_token_credential("ci").await;
    let repo = b.register("app", "team/app.git", "ci").await;
    let mut tried = 0;
    for (path, method, op) in operations(&doc) {
        let params: Vec<&str> = op["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["in"] == "query")
            .filter_map(|p| p["name"].as_str())
            .collect();
        let concrete = path.replace("{id}", &repo.to_string());
        let mut bad = Vec::new();
        if params.contains(&"limit") {
            bad.extend(["limit=0", "limit=-1", "limit=-9223372036854775808", "limit=99999999"]);
        }
        for query in bad {
            let got = b.raw(method.clone(), &format!("{concrete}?{query}"), Some(&b.token), None, None).await;
            assert_api_error(&got, StatusCode::BAD_REQUEST, "invalid_input", &format!("{method} {path}?{query}"));
            tried += 1;
        }
        if params.contains(&"limit") {
            // The edges of the documented range are taken.
            let schema = &op["parameters"].as_array().unwrap().iter().find(|p| p["name"] == "limit").unwrap()["schema"];
            let (min, max) = (schema["minimum"].as_i64().unwrap(), schema["maximum"].as_i64().unwrap());
            assert_eq!(min, 1, "{path}: {schema}");
            for ok in [min, max] {
                let (s, v) = b.raw_get(&format!("{concrete}?limit={ok}")).await;
                assert_eq!(s, StatusCode::OK, "{path}?limit={ok}: {v}");
            }
            let (s, v) = b.raw_get(&format!("{concrete}?limit={}", max + 1)).await;
            assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_input")), "{v}");
        }
    }
    assert!(tried >= 20, "only {tried} refusals tried: which list endpoints take limit?");
    let (_, v) = b.raw_get("/api/v1/repositories?limit=0").await;
    assert_eq!(v["error"]["message"], "limit must be from 1 to 1000, not 0", "{v}");
    // A query that does not parse is refused in the same shape everywhere, the audit log too.
    let got = b.raw(Method::GET, "/api/v1/audit?limit=lots", Some(&b.token), None, None).await;
    assert_api_error(&got, StatusCode::BAD_REQUEST, "invalid_input", "audit limit=lots");
    // And a valid page still pages.
    let page = b
        .api
        .repositories_page(&berth::client::RepoQuery { limit: Some(1), ..Default::default() }, None)
        .await
        .unwrap();
    assert_eq!((page.items.len(), page.total), (1, 1));
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_resource_has_one_code_whether_its_id_is_a_number_or_not() {
    let b = Berth::start().await;
    let (_, doc) = b.raw_get("/api/openapi.json").await;
    let mut tried = 0;
    for (path, method, op) in operations(&doc) {
        // The hosts' webhook receiver (`/hooks/{provider}/{id}`) is not the API: host_webhooks.rs.
        if !path.contains("{id}") || !path.starts_with("/api/v1/") {
            continue;
        }
        let collection = path.trim_start_matches("/api/v1/").split('/').next().unwrap();
        let code = match collection {
            "credentials" => "credential_not_found",
            "repositories" => "repository_not_found",
            "users" => "user_not_found",
            "tokens" => "token_not_found",
            "credential-templates" => "template_not_found",
            "imports" => "import_not_found",
            "notification-channels" => "channel_not_found",
            "notification-deliveries" => "delivery_not_found",
            "known-hosts" => "known_host_not_found",
            other => panic!("{method} {path}: which code does a missing {other} answer? add it here"),
        };
        assert!(op["responses"]["404"].is_object(), "{method} {path}");
        let body = op.get("requestBody").map(|_| "{}");
        for id in ["987654", "abc", "-1", "1.5", "99999999999999999999"] {
            let concrete = path.replace("{id}", id);
            let got = b
                .raw(
                    method.clone(),
                    &concrete,
                    Some(&b.token),
                    body.map(|_| "application/json"),
                    body.map(reqwest::Body::from),
                )
                .await;
            let what = format!("{method} {concrete}");
            assert_api_error(&got, StatusCode::NOT_FOUND, code, &what);
            let remedy = got.1["error"]["remedy"].as_str().unwrap();
            // Deliveries are listed per channel.
            let listed = if collection == "notification-deliveries" { "notification-channels" } else { collection };
            assert!(remedy.contains(&format!("GET /api/v1/{listed}")), "{what}: {}", got.1);
            tried += 1;
        }
    }
    assert!(tried >= 60, "{tried}");
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_methods_and_unknown_paths_answer_in_the_error_shape() {
    let b = Berth::start().await;
    for (method, path) in [
        (Method::PUT, "/api/v1/credentials"),
        (Method::DELETE, "/api/v1/repositories"),
        (Method::POST, "/api/v1/repositories/1"),
        (Method::GET, "/api/v1/auth/login"),
        (Method::PATCH, "/api/v1/audit"),
    ] {
        let resp =
            b.http.request(method.clone(), format!("{}{path}", b.base)).bearer_auth(&b.token).send().await.unwrap();
        let allow = resp.headers().get("allow").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        let ct = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        let status = resp.status();
        let v: Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap_or(Value::Null);
        assert_api_error(&(status, v.clone(), ct), StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", path);
        assert!(v["error"]["message"].as_str().unwrap().contains(method.as_str()), "{v}");
        assert!(!allow.is_empty() && !allow.contains(method.as_str()), "{method} {path}: Allow {allow:?}");
    }
    for path in ["/api/v1/nothing", "/api/v2/repositories", "/api/v1/repositories/1/nothing"] {
        let got = b.raw(Method::GET, path, Some(&b.token), None, None).await;
        assert_api_error(&got, StatusCode::NOT_FOUND, "not_found", path);
    }
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credential_is_named_by_its_integer_id_its_name_or_its_id_as_text() {
    let b = Berth::start().await;
    let (_, doc) = b.raw_get("/api/openapi.json").await;
    // The schema says both forms.
    for component in ["RepositoryCreate", "RemoteBranchesRequest", "RepositoryUpdate"] {
        let prop = &doc["components"]["schemas"][component]["properties"]["credential"];
        let text = prop.to_string();
        assert!(text.contains("CredentialSelector"), "{component}.credential: {prop}");
    }
    let selector = &doc["components"]["schemas"]["CredentialSelector"];
    let types: BTreeSet<&str> =
        selector["oneOf"].as_array().unwrap().iter().filter_map(|s| s["type"].as_str()).collect();
    assert_eq!(types, ["integer", "string"].into(), "{selector}");

    let id = b.api_token_credential("ci").await;
    let url = b.git.repo_url("team/app.git");
    // The integer a list answer carries, through the typed client.
    let listed = b.api.list_credentials().await.unwrap()[0].id;
    assert_eq!(listed, id);
    let by_id =
        RepositoryCreate { credential: Some(CredentialSelector::Id(listed)), ..new_repository("app", &url, "") };
    let r = b.api.create_repository(&by_id).await.unwrap();
    assert_eq!(b.api.status(), 201);
    assert_eq!(r.credential.as_ref().map(|c| c.id), Some(id));
    assert!(b.api.body().contains(&format!("\"id\":{id}")), "{}", b.api.body());
    let rb = berth_proto::RemoteBranchesRequest { credential: Some(CredentialSelector::Id(id)), ..remote(&url, "") };
    assert!(!b.api.remote_branches(&rb).await.unwrap().branches.is_empty());
    let update = RepositoryUpdate { credential: Some(CredentialSelector::Id(id)), ..RepositoryUpdate::default() };
    assert_eq!(b.api.update_repository(r.id, &update).await.unwrap().credential.map(|c| c.id), Some(id));

    // Raw: the same request as a script would write it, with each form of reference.
    let lib = b.git.repo_url("team/lib.git");
    for (credential, name) in [(json!(id), "by-int"), (json!(id.to_string()), "by-text"), (json!("ci"), "by-name")] {
        let body = json!({"clone_url": lib, "credential": credential});
        let got = b
            .raw(
                Method::POST,
                "/api/v1/remote-branches",
                Some(&b.token),
                Some("application/json"),
                Some(body.to_string().into()),
            )
            .await;
        assert_eq!(got.0, StatusCode::OK, "{name}: {}", got.1);
    }
    // An integer that names no credential is the request's mistake, as an unknown name is.
    for credential in [json!(987654), json!("nobody")] {
        let body = json!({"clone_url": lib, "credential": credential});
        let got = b
            .raw(
                Method::POST,
                "/api/v1/remote-branches",
                Some(&b.token),
                Some("application/json"),
                Some(body.to_string().into()),
            )
            .await;
        assert_api_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "credential_not_found", &credential.to_string());
    }
    // Neither an integer nor a string: the body does not fit, and says what would.
    for credential in [json!(1.5), json!(true), json!({"id": id}), json!(-1.0e30)] {
        let body = json!({"name": "x", "clone_url": lib, "credential": credential});
        let got = b
            .raw(
                Method::POST,
                "/api/v1/repositories",
                Some(&b.token),
                Some("application/json"),
                Some(body.to_string().into()),
            )
            .await;
        assert_api_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_input", &credential.to_string());
        assert!(got.1["error"]["message"].as_str().unwrap().contains("credential id"), "{}", got.1);
    }
    let e = refused(b.api.get_repository(987654).await);
    assert_eq!(status_code(&e), (Some(404), Some(Code::RepositoryNotFound)), "{e}");
    b.stop().await;
}
