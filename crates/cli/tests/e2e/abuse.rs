//! API abuse: oversized, deeply nested, non-UTF-8, mistyped and over-specified bodies, bad ids,
//! and every route of the OpenAPI document asked by an anonymous caller and by a viewer. Each
//! refusal must be a clear 4xx in the API's error shape (`{"error":{"code","message","remedy"}}`)
//! with a stable code, never a 500 and never a success.
//!
//! Raw HTTP on purpose (`Berth::raw`, and a plain socket): the malformed requests are the
//! subject, and the typed client cannot send them. Set-up and read-back go through the typed
//! `ApiClient`.

use crate::harness::*;
use crate::roles::{add_user, VIEWER_PASSWORD};
use berth_proto::ApiTokenCreate;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// Speaks HTTP/1.1 over a plain socket: `head` (request line and headers, without the empty
/// line), then `chunks` as a chunked body when given. The client stops writing when the server
/// has answered, so a refusal before the body is read cannot turn into a broken pipe.
async fn socket_request(b: &Berth, head: &str, chunks: Option<&[u8]>) -> (StatusCode, Value, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = b.base.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("{head}\r\nhost: {addr}\r\nconnection: close\r\n\r\n").as_bytes()).await.unwrap();
    if let Some(body) = chunks {
        for c in body.chunks(16 * 1024) {
            let chunk = [format!("{:x}\r\n", c.len()).as_bytes(), c, b"\r\n"].concat();
            if s.write_all(&chunk).await.is_err() {
                break;
            }
        }
        let _ = s.write_all(b"0\r\n\r\n").await;
    }
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    // Until the server closes (or resets, once it has answered).
    while let Ok(Ok(n)) = tokio::time::timeout(std::time::Duration::from_secs(10), s.read(&mut buf)).await {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&out).into_owned();
    assert_no_secret("an answer read from a socket", &text);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).and_then(|c| c.parse::<u16>().ok()).and_then(|c| StatusCode::from_u16(c).ok());
    let status = status.unwrap_or_else(|| panic!("no HTTP answer: {text:?}"));
    let ct = head
        .lines()
        .find_map(|l| {
            l.split_once(':').filter(|(n, _)| n.eq_ignore_ascii_case("content-type")).map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_default();
    // The answer itself may be chunked: take the JSON object inside.
    let json = body.find('{').and_then(|i| body.rfind('}').map(|j| &body[i..=j])).unwrap_or("");
    (status, serde_json::from_str(json).unwrap_or(Value::Null), ct)
}

/// POSTs `body` with `Transfer-Encoding: chunked`, no Content-Length.
async fn chunked_post(b: &Berth, path: &str, body: &[u8]) -> (StatusCode, Value, String) {
    let head = format!(
        "POST {path} HTTP/1.1\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\ntransfer-encoding: chunked",
        b.token
    );
    socket_request(b, &head, Some(body)).await
}

/// Announces a body of `len` bytes and sends none of it: a limit on the length must answer at once.
async fn announced_post(b: &Berth, path: &str, token: Option<&str>, len: usize) -> (StatusCode, Value, String) {
    let auth = token.map(|t| format!("\r\nauthorization: Bearer {t}")).unwrap_or_default();
    let head = format!("POST {path} HTTP/1.1{auth}\r\ncontent-type: application/json\r\ncontent-length: {len}");
    socket_request(b, &head, None).await
}

async fn post_bytes(b: &Berth, path: &str, body: Vec<u8>) -> (StatusCode, Value, String) {
    b.raw(Method::POST, path, Some(&b.token), Some("application/json"), Some(body.into())).await
}

/// The API's error shape with this status and code.
#[track_caller]
pub(crate) fn assert_api_error(got: &(StatusCode, Value, String), status: StatusCode, code: &str, what: &str) {
    let (s, v, ct) = got;
    assert_eq!(*s, status, "{what}: {v}");
    assert!(ct.starts_with("application/json"), "{what}: content type {ct:?}");
    assert_eq!(v["error"]["code"], code, "{what}: {v}");
    assert!(v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{what}: {v}");
    assert!(v["error"]["remedy"].is_string(), "{what}: {v}");
}

async fn credential_count(b: &Berth) -> usize {
    b.api.list_credentials().await.unwrap().len()
}

fn credential_body(name: &str) -> Value {
    json!({"name": name, "kind": "access_token", "secret": ABUSE_TOKEN})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_are_refused() {
    let b = Berth::start().await;
    // Just over the 256 KiB limit, as one JSON string.
    let mut big = credential_body("big");
    big["secret"] = json!("x".repeat(300 * 1024));
    let bytes = serde_json::to_vec(&big).unwrap();

    // Streamed without a length: the JSON extractor hits the limit while reading.
    let got = chunked_post(&b, "/api/v1/credentials", &bytes).await;
    assert_api_error(&got, StatusCode::PAYLOAD_TOO_LARGE, "invalid_input", "chunked oversized body");

    // With a Content-Length over the limit the request is refused before it is read.
    let got = announced_post(&b, "/api/v1/credentials", Some(&b.token), bytes.len()).await;
    assert_eq!(got.0, StatusCode::PAYLOAD_TOO_LARGE, "{:?}", got.1);

    // Unauthenticated callers are refused too, and nothing was stored by either.
    let got = announced_post(&b, "/api/v1/auth/login", None, 1 << 30).await;
    assert_eq!(got.0, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(credential_count(&b).await, 0);
    // Just under the limit is read (and refused for what it says, not for its size).
    let mut fits = credential_body("fits");
    fits["name"] = json!("n".repeat(200 * 1024));
    let got = post_bytes(&b, "/api/v1/credentials", serde_json::to_vec(&fits).unwrap()).await;
    assert_ne!(got.0, StatusCode::PAYLOAD_TOO_LARGE, "{}", got.1);
    assert!(got.0.is_client_error(), "a 200 KiB name was accepted: {}", got.1);
    b.stop().await;
}

/// With a Content-Length over the limit, tower-http's RequestBodyLimitLayer answers before any
/// handler runs; the answer must still be the API's JSON error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_body_with_a_length_answers_in_the_api_error_shape() {
    let b = Berth::start().await;
    let got = announced_post(&b, "/api/v1/credentials", Some(&b.token), 300 * 1024).await;
    assert_api_error(&got, StatusCode::PAYLOAD_TOO_LARGE, "invalid_input", "oversized body with Content-Length");
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deeply_nested_json_is_refused_and_the_server_stays_up() {
    let b = Berth::start().await;
    // Deep enough to overflow a naive recursive parser, small enough to stay under the body limit.
    let depth = 40_000;
    let arrays = format!("{{\"name\":{}{}}}", "[".repeat(depth), "]".repeat(depth));
    let objects = format!("{}1{}", "{\"a\":".repeat(depth / 4), "}".repeat(depth / 4));
    let top = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    for (what, body) in [("arrays in a field", arrays), ("objects", objects), ("arrays", top)] {
        for path in ["/api/v1/credentials", "/api/v1/auth/login"] {
            let got = post_bytes(&b, path, body.clone().into_bytes()).await;
            // Refused as malformed (400) or as not fitting the schema (422): never a crash.
            assert!(
                matches!(got.0, StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY),
                "{what} to {path}: {:?}",
                got
            );
            assert_api_error(&got, got.0, "invalid_input", what);
        }
    }
    b.api.me().await.unwrap();
    assert_eq!(b.api.status(), 200);
    assert_eq!(credential_count(&b).await, 0);
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_and_non_json_are_refused() {
    let b = Berth::start().await;
    let mut body = br#"{"name":""#.to_vec();
    body.extend_from_slice(&[0xff, 0xfe, 0xc3]);
    body.extend_from_slice(format!(r#"","kind":"access_token","secret":"{ABUSE_TOKEN}"}}"#).as_bytes());
    let got = post_bytes(&b, "/api/v1/credentials", body.clone()).await;
    assert_api_error(&got, StatusCode::BAD_REQUEST, "invalid_input", "invalid UTF-8 in a string");
    // A lone surrogate escape is not a character either.
    let got = post_bytes(
        &b,
        "/api/v1/credentials",
        format!(r#"{{"name":"\udc00","kind":"access_token","secret":"{ABUSE_SHORT_TOKEN}"}}"#).into_bytes(),
    )
    .await;
    assert_api_error(&got, StatusCode::BAD_REQUEST, "invalid_input", "lone surrogate");
    let got = post_bytes(&b, "/api/v1/credentials", b"name=x&kind=access_token".to_vec()).await;
    assert_api_error(&got, StatusCode::BAD_REQUEST, "invalid_input", "a form body labelled JSON");
    let got = post_bytes(&b, "/api/v1/credentials", br#"{"name":"x""#.to_vec()).await;
    assert_api_error(&got, StatusCode::BAD_REQUEST, "invalid_input", "truncated JSON");
    let got = post_bytes(&b, "/api/v1/credentials", Vec::new()).await;
    assert_api_error(&got, StatusCode::BAD_REQUEST, "invalid_input", "empty body");
    for ct in [None, Some("text/plain"), Some("application/x-www-form-urlencoded")] {
        let got = b
            .raw(
                Method::POST,
                "/api/v1/credentials",
                Some(&b.token),
                ct,
                Some(serde_json::to_vec(&credential_body("ct")).unwrap().into()),
            )
            .await;
        assert_api_error(&got, StatusCode::UNSUPPORTED_MEDIA_TYPE, "invalid_input", &format!("content type {ct:?}"));
    }
    // Invalid UTF-8 in a path id: no such repository, as for any other id that is not one
    // (this was 400 or 404 `not_found`; one code per resource now).
    let got = b.raw(Method::GET, "/api/v1/repositories/%FF%FE", Some(&b.token), None, None).await;
    assert_api_error(&got, StatusCode::NOT_FOUND, "repository_not_found", "invalid UTF-8 in a path");
    assert!(got.1["error"]["message"].as_str().unwrap().contains("not UTF-8"), "{}", got.1);
    assert_eq!(credential_count(&b).await, 0);
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_types_are_refused_naming_the_field() {
    let b = Berth::start().await;
    let cases = [
        (json!({"name": 5, "kind": "access_token", "secret": ABUSE_TOKEN}), "name"),
        (json!({"name": "x", "kind": "access_token", "secret": ["tok"]}), "secret"),
        (json!({"name": "x", "kind": "no_such_kind", "secret": ABUSE_TOKEN}), "kind"),
        (json!({"name": "x", "kind": "access_token", "secret": ABUSE_TOKEN, "scopes": "read"}), "scopes"),
        (json!({"name": null, "kind": "access_token", "secret": ABUSE_TOKEN}), "name"),
        (json!({"kind": "access_token", "secret": ABUSE_TOKEN}), "name"),
        (json!([credential_body("array")]), ""),
        (json!("a string"), ""),
        (json!(null), ""),
    ];
    for (body, field) in cases {
        let got = post_bytes(&b, "/api/v1/credentials", serde_json::to_vec(&body).unwrap()).await;
        assert_api_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_input", &body.to_string());
        assert!(got.1["error"]["message"].as_str().unwrap().contains(field), "{body}: {}", got.1);
    }
    let got = post_bytes(
        &b,
        "/api/v1/repositories",
        serde_json::to_vec(&json!({"name": "x", "clone_url": 7, "credential": "c"})).unwrap(),
    )
    .await;
    assert_api_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_input", "clone_url as a number");
    let got = b
        .raw(
            Method::PUT,
            "/api/v1/settings",
            Some(&b.token),
            Some("application/json"),
            Some(r#"{"require_2fa":"yes"}"#.into()),
        )
        .await;
    assert_api_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_input", "a boolean as a string");
    assert_eq!(credential_count(&b).await, 0);
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_ids_are_clear_404s() {
    let b = Berth::start().await;
    let cred = b.api_token_credential("real").await;
    let bad = [
        "abc",
        "-1",
        "0",
        "99999999999999999999",
        "9223372036854775807",
        "1.5",
        "1e3",
        "0x10",
        "%20",
        "1%3BDROP%20TABLE",
        "%00",
        "%FF",
    ];
    let routes = [
        (Method::GET, "/api/v1/credentials/{}"),
        (Method::PATCH, "/api/v1/credentials/{}"),
        (Method::DELETE, "/api/v1/credentials/{}"),
        (Method::GET, "/api/v1/repositories/{}"),
        (Method::PATCH, "/api/v1/repositories/{}"),
        (Method::DELETE, "/api/v1/repositories/{}"),
        (Method::POST, "/api/v1/repositories/{}/check"),
        (Method::GET, "/api/v1/repositories/{}/checks"),
        (Method::PATCH, "/api/v1/users/{}"),
        (Method::DELETE, "/api/v1/users/{}"),
        (Method::DELETE, "/api/v1/users/{}/lockout"),
        (Method::DELETE, "/api/v1/users/{}/totp"),
        (Method::DELETE, "/api/v1/tokens/{}"),
    ];
    for (method, template) in &routes {
        // One code per resource, whatever the id looks like (was `not_found` for text ids).
        let code = match template.split('/').nth(3) {
            Some("credentials") => "credential_not_found",
            Some("repositories") => "repository_not_found",
            Some("users") => "user_not_found",
            _ => "token_not_found",
        };
        for id in bad {
            let path = template.replace("{}", id);
            let body = matches!(*method, Method::PATCH | Method::POST).then(|| reqwest::Body::from("{}"));
            let got = b.raw(method.clone(), &path, Some(&b.token), Some("application/json"), body).await;
            assert_api_error(&got, StatusCode::NOT_FOUND, code, &format!("{method} {path}"));
        }
        // No id at all: no such endpoint, in the same shape.
        let path = template.replace("{}", "");
        let got = b.raw(method.clone(), &path, Some(&b.token), None, None).await;
        assert!(got.0.is_client_error(), "{method} {path}: {:?}", got);
        assert!(got.1["error"]["code"].is_string(), "{method} {path}: {:?}", got);
    }
    // The real one is untouched by all of that.
    b.api.get_credential(cred).await.unwrap();
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_fields_are_refused_on_every_documented_body() {
    let b = Berth::start().await;
    let (s, doc) = b.raw_get("/api/openapi.json").await;
    assert_eq!(s, StatusCode::OK);
    let cred = b.api_token_credential("real").await;
    let mut tried = 0;
    for (path, method, op) in operations(&doc) {
        // The hosts' webhook receiver reads the host's own payload, not an API body.
        let Some(schema) = body_schema(op).filter(|_| path.starts_with("/api/v1/")) else { continue };
        let sample = sample_value(&doc, schema, 0);
        let Value::Object(fields) = &sample else { continue };
        // Put the unknown field first, so it is met before anything else can fail.
        let mut text = String::from(r#"{"berth_abuse_unknown_field":1"#);
        for (k, v) in fields {
            text.push_str(&format!(",{}:{v}", Value::String(k.clone())));
        }
        text.push('}');
        let concrete = path.replace("{id}", &cred.to_string());
        let got =
            b.raw(method.clone(), &concrete, Some(&b.token), Some("application/json"), Some(text.clone().into())).await;
        assert_api_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_input", &format!("{method} {path} {text}"));
        assert!(
            got.1["error"]["message"].as_str().unwrap().contains("berth_abuse_unknown_field"),
            "{method} {path}: {}",
            got.1
        );
        tried += 1;
    }
    assert!(tried >= 8, "only {tried} operations take a body");
    b.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Every documented route, anonymous and as a viewer

/// The action each documented operation requires (as its handler calls `CurrentUser::require`),
/// by its API name, `None` for operations any signed-in user may call. Whether a viewer may is
/// then whether the viewer's `allowed` list (`GET /api/v1/me`) names it.
fn required_action(method: &Method, path: &str) -> Option<Option<&'static str>> {
    let m = method.as_str();
    Some(match (m, path) {
        ("GET", "/api/v1/credentials" | "/api/v1/credentials/{id}") => Some("read_credentials"),
        ("POST", "/api/v1/credentials") => Some("create_credential"),
        ("PATCH", "/api/v1/credentials/{id}") => Some("update_credential"),
        ("POST", "/api/v1/credentials/{id}/verify") => Some("use_credential"),
        ("DELETE", "/api/v1/credentials/{id}") => Some("delete_credential"),
        ("POST", "/api/v1/remote-branches") => Some("use_credential"),
        ("GET", "/api/v1/repositories" | "/api/v1/repositories/{id}" | "/api/v1/repositories/{id}/checks") => {
            Some("read_repositories")
        }
        ("POST", "/api/v1/repositories") => Some("register_repository"),
        ("PATCH", "/api/v1/repositories/{id}") | ("POST" | "DELETE", "/api/v1/repositories/{id}/webhook") => {
            Some("update_repository")
        }
        ("GET", "/api/v1/repositories/{id}/branches") => Some("read_repositories"),
        ("DELETE", "/api/v1/repositories/{id}") => Some("delete_repository"),
        ("POST", "/api/v1/repositories/{id}/check" | "/api/v1/checks/schedule") => Some("check_repository"),
        ("GET" | "POST", "/api/v1/users") | ("PATCH" | "DELETE", "/api/v1/users/{id}") => Some("manage_users"),
        ("DELETE", "/api/v1/users/{id}/lockout" | "/api/v1/users/{id}/totp") => Some("manage_users"),
        ("GET" | "PUT", "/api/v1/settings") => Some("manage_settings"),
        ("GET" | "POST", "/api/v1/tokens") | ("DELETE", "/api/v1/tokens/{id}") => Some("manage_own_account"),
        ("GET", "/api/v1/audit") => Some("read_audit"),
        ("GET" | "POST", "/api/v1/known-hosts") | ("DELETE", "/api/v1/known-hosts/{id}") => Some("manage_known_hosts"),
        ("GET", "/api/v1/credential-templates" | "/api/v1/credential-templates/match") => Some("read_credentials"),
        ("POST", "/api/v1/credential-templates") | ("DELETE", "/api/v1/credential-templates/{id}") => {
            Some("manage_templates")
        }
        ("POST", "/api/v1/config/apply") => Some("apply_config"),
        // Needs read_repositories as well, which every role that reads credentials has.
        ("GET", "/api/v1/config/export") => Some("read_credentials"),
        ("POST", "/api/v1/imports" | "/api/v1/imports/{id}/register") => Some("register_repository"),
        ("GET", "/api/v1/imports/{id}") => Some("read_repositories"),
        (_, p) if p.starts_with("/api/v1/notification-") => Some("manage_settings"),
        ("GET", "/api/v1/me") | ("POST", "/api/v1/auth/logout") => None,
        _ => return None,
    })
}

/// Operations open to anyone.
const PUBLIC: [(&str, &str); 4] =
    [("GET", "/healthz"), ("GET", "/readyz"), ("POST", "/api/v1/auth/login"), ("POST", "/hooks/{provider}/{id}")];

pub(crate) fn operations(doc: &Value) -> Vec<(String, Method, &Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (m, op) in item.as_object().unwrap() {
            if let Ok(method) = m.to_ascii_uppercase().parse::<Method>() {
                out.push((path.clone(), method, op));
            }
        }
    }
    // Logging out ends the caller's session: last.
    out.sort_by_key(|(p, _, _)| p == "/api/v1/auth/logout");
    out
}

fn body_schema(op: &Value) -> Option<&Value> {
    op.pointer("/requestBody/content/application~1json/schema")
}

/// A value of `schema` with its required fields only, of the right types.
fn sample_value(doc: &Value, schema: &Value, depth: usize) -> Value {
    if depth > 10 {
        return Value::Null;
    }
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap();
        return sample_value(doc, &doc["components"]["schemas"][name], depth + 1);
    }
    for key in ["allOf", "oneOf", "anyOf"] {
        if let Some(list) = schema.get(key).and_then(Value::as_array) {
            if let Some(s) = list.iter().find(|s| s.get("type") != Some(&json!("null"))) {
                return sample_value(doc, s, depth + 1);
            }
        }
    }
    if let Some(first) = schema.get("enum").and_then(Value::as_array).and_then(|e| e.first()) {
        return first.clone();
    }
    let ty = match schema.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) => {
            ts.iter().filter_map(Value::as_str).find(|t| *t != "null").unwrap_or("null").to_owned()
        }
        _ => "object".to_owned(),
    };
    match ty.as_str() {
        "string" => match schema.get("format").and_then(Value::as_str) {
            Some("date") => json!("2030-01-01"),
            Some("date-time") => json!("2030-01-01T00:00:00Z"),
            _ => json!("abuse-sample"),
        },
        "integer" | "number" => json!(1),
        "boolean" => json!(false),
        "array" => json!([]),
        "null" => Value::Null,
        _ => {
            let mut obj = serde_json::Map::new();
            let required: Vec<&str> =
                schema["required"].as_array().map(|r| r.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
            for name in required {
                obj.insert(name.to_owned(), sample_value(doc, &schema["properties"][name], depth + 1));
            }
            Value::Object(obj)
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_route_refuses_anonymous_callers_and_viewers_where_it_must() {
    let b = Berth::start().await;
    let (s, doc) = b.raw_get("/api/openapi.json").await;
    assert_eq!(s, StatusCode::OK, "{doc}");
    // Real targets, so that a wrongly allowed call would really act.
    let cred = b.api_token_credential("shared").await;
    let repo = b.register("app", "team/app.git", "shared").await;
    let admin_id = b.api.list_users().await.unwrap()[0].id;
    let admin_token_id =
        b.api.create_token(&ApiTokenCreate { name: "admin-ci".into(), expires_in_days: None }).await.unwrap().info.id;
    add_user(&b, "vera", VIEWER_PASSWORD, "viewer").await;
    let viewer_api = Api::login(&b.base, "vera", VIEWER_PASSWORD).await;
    let viewer = viewer_api.token().to_owned();
    // What a viewer may do, as the server says: the one rule (`Role::allows`), not a copy.
    let viewer_allowed = viewer_api.me().await.unwrap().allowed;

    let mut table = Vec::new();
    let mut public = Vec::new();
    for (path, method, op) in operations(&doc) {
        let id = if path.starts_with("/api/v1/credentials") {
            cred
        } else if path.starts_with("/api/v1/repositories") {
            repo
        } else if path.starts_with("/api/v1/users") {
            admin_id
        } else {
            admin_token_id
        };
        let concrete = path.replace("{id}", &id.to_string());
        let body = body_schema(op).map(|s| sample_value(&doc, s, 0).to_string());
        let send = |token: Option<String>| {
            let (b, method, concrete, body) = (&b, method.clone(), concrete.clone(), body.clone());
            async move {
                b.raw(
                    method,
                    &concrete,
                    token.as_deref(),
                    body.as_ref().map(|_| "application/json"),
                    body.map(reqwest::Body::from),
                )
                .await
            }
        };
        let documented_secured = op.get("security").and_then(Value::as_array).is_some_and(|s| !s.is_empty());
        if PUBLIC.contains(&(method.as_str(), path.as_str())) {
            assert!(!documented_secured, "{method} {path} is public but documented with a security requirement");
            let got = send(None).await;
            // Login answers a made-up user with 401, in the error shape; the others answer.
            if path == "/api/v1/auth/login" {
                assert_api_error(&got, StatusCode::UNAUTHORIZED, "unauthenticated", "login with unknown user");
            } else if path.starts_with("/hooks/") {
                // Only a host's signature opens it; no provider is called `{provider}`.
                assert_api_error(&got, StatusCode::NOT_FOUND, "webhook_not_found", "the webhook receiver");
            } else {
                assert!(got.0.is_success(), "{method} {path} anonymous: {:?}", got);
            }
            public.push(format!("{method} {path}"));
            continue;
        }
        let Some(action) = required_action(&method, &path) else {
            panic!("{method} {path} is documented but this test does not know which action it requires: add it to required_action");
        };
        assert!(documented_secured, "{method} {path} needs a signed-in caller but documents no security requirement");

        // Anonymous, and with tokens that are not tokens.
        for token in [None, Some("not-a-token".to_owned()), Some(format!("{}x", b.token))] {
            let got = send(token.clone()).await;
            assert_api_error(
                &got,
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                &format!("{method} {path} with {token:?}"),
            );
        }

        let viewer_may = action.is_none_or(|a| viewer_allowed.iter().any(|x| x == a));
        let got = send(Some(viewer.clone())).await;
        if viewer_may {
            assert!(
                got.0 != StatusCode::UNAUTHORIZED && got.0 != StatusCode::FORBIDDEN && !got.0.is_server_error(),
                "{method} {path}: a viewer may, got {:?}",
                got
            );
        } else {
            assert_api_error(&got, StatusCode::FORBIDDEN, "forbidden", &format!("{method} {path} as a viewer"));
            assert!(op["responses"]["403"].is_object(), "{method} {path} refuses viewers but does not document 403");
        }
        table.push(format!("{method:6} {path:40} {}", if viewer_may { "viewer allowed" } else { "viewer 403" }));
    }
    println!("{}", table.join("\n"));
    assert_eq!(public.len(), PUBLIC.len(), "documented public routes: {public:?}");
    assert!(table.len() >= 25, "only {} secured operations documented", table.len());
    // Nothing a viewer was refused happened: the targets are all still there.
    b.api.get_credential(cred).await.unwrap();
    b.api.get_repository(repo).await.unwrap();
    let users = b.api.list_users().await.unwrap();
    assert_eq!(users.len(), 2, "{users:?}");
    b.stop().await;
}
