//! Secrets never leak (issue 6). The whole suite runs with the known secrets of
//! `harness::KNOWN_SECRETS`; the harness scans every log line, answer, page, data file and
//! panic message for them in every form (raw, base64 and URL-safe base64 of the value and of
//! any text containing it, such as `user:secret`, percent-encoded, HTML-escaped). Here: the
//! paths most likely to leak, driven on purpose and then scanned; a positive control proving
//! the scan catches a planted value in each form in a log line, an answer, a file and a panic
//! message; and a guard that no secret literal in the suite escapes the list.

use crate::harness::web::signed_in;
use crate::harness::*;
use berth_core::{Code, CredentialKind};
use berth_proto::{CredentialCreate, CredentialUpdate, RepositoryCreate, UserCreate, UserUpdate};
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::collections::BTreeSet;

/// The forms of `value` as other code writes them: base64 from reqwest's Basic
/// authentication (not the harness's encoder), percent-encoding from the `url` crate (as a URL
/// path segment and as a form field), HTML escaping by hand.
fn independent_forms(user: &str, value: &str) -> Vec<(&'static str, String)> {
    let req = reqwest::Client::new().get("http://127.0.0.1/").basic_auth(user, Some(value)).build().unwrap();
    let header = req.headers()["authorization"].to_str().unwrap().to_owned();
    let b64 = header.strip_prefix("Basic ").unwrap().to_owned();
    // (Not as a URL password: the url crate leaves `%` alone there, which is not an encoding.)
    let mut url = reqwest::Url::parse("https://host.example/ws/").unwrap();
    url.path_segments_mut().unwrap().push(value);
    let mut form = reqwest::Url::parse("http://x/").unwrap();
    form.query_pairs_mut().append_pair("password", value);
    let html = value.replace('&', "&amp;").replace('/', "&#x2F;").replace('<', "&lt;").replace('"', "&quot;");
    vec![
        ("raw", format!("the value {value} as it is")),
        ("base64", format!("Authorization: {header}")),
        ("base64url", format!("a URL-safe token {}", b64.trim_end_matches('=').replace('+', "-").replace('/', "_"))),
        ("percent-encoded", format!("cloning {url}")),
        ("form-encoded", format!("a form body {}", form.query().unwrap())),
        ("HTML-escaped", format!("<input value=\"{html}\">")),
    ]
}

#[test]
fn the_encoders_agree_with_the_standard() {
    // RFC 4648 §10.
    for (plain, enc) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ] {
        assert_eq!(base64(plain.as_bytes()), enc);
    }
    assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
    assert_eq!(percent_encode("a b/+&=%~"), "a%20b%2F%2B%26%3D%25~");
}

#[test]
fn the_scan_catches_a_planted_value_in_every_form() {
    init();
    // The planted value and a real secret are changed by every encoding, so each form is a
    // different string from the raw value and from the others.
    for value in [CANARY, ALICE_PASSWORD] {
        let forms = independent_forms("control-user", value);
        let texts: BTreeSet<&String> = forms.iter().map(|(_, t)| t).collect();
        assert_eq!(texts.len(), forms.len(), "two forms are the same text");
        for (name, text) in &forms[1..] {
            assert!(!text.contains(value), "the {name} form still holds the raw value: {text}");
        }
        let b64 = forms[1].1.trim_start_matches("Authorization: Basic ");
        assert!(b64[4..b64.len() - 4].contains(['+', '/']), "URL-safe base64 must differ from the standard: {b64}");
    }

    // A real secret in any form fails `assert_no_secret` (and `assert_no_secret_in_output`),
    // naming the form, without printing the value.
    for (form, text) in independent_forms("control-user", ALICE_PASSWORD) {
        for check in
            [assert_no_secret as fn(&str, &str), |w: &str, t: &str| assert_no_secret_in_output(w, t.as_bytes())]
        {
            let err = std::panic::catch_unwind(|| check("the positive control", &text)).expect_err(form);
            let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
            assert!(msg.contains("ALICE_PASSWORD") && msg.contains(&format!("({form})")), "{form}: {msg}");
            assert!(!msg.contains(ALICE_PASSWORD), "the report repeats the secret");
        }
    }
    // The same with a user the scan does not know: base64 of any text containing a secret.
    let r = std::panic::catch_unwind(|| assert_no_secret("control", &independent_forms("nobody-known", TOKEN)[1].1));
    assert!(r.is_err(), "base64 of an unknown user's pair");
    // And nothing is found where nothing is: one character off is not the secret.
    let near = ALICE_PASSWORD.replace('7', "8");
    for (_, text) in independent_forms("control-user", &near) {
        assert_no_secret("a near miss", &text);
    }

    // A log line (through the global subscriber, as a Berth would write it).
    for (form, text) in independent_forms("control-user", CANARY) {
        tracing::info!(target: "berth_server::leak_control", form, "{text}");
    }
    assert_found(
        "a log line of berth_server",
        &["raw", "base64", "base64url", "percent-encoded", "form-encoded", "HTML-escaped"],
    );

    // A panic message.
    let forms = independent_forms("control-user", CANARY);
    for (_, text) in forms.clone() {
        let _ = std::thread::spawn(move || panic!("planted: {text}")).join();
    }
    assert_found("a panic message", &["raw", "base64", "base64url", "percent-encoded", "form-encoded", "HTML-escaped"]);

    // Child process output, as `cli.rs`, `crash.rs` and `instances.rs` scan it.
    let all: String = forms.iter().map(|(_, t)| format!("{t}\n")).collect();
    assert_no_secret_in_output("a child's output", all.as_bytes());
    assert_found(
        "a child's output",
        &["raw", "base64", "base64url", "percent-encoded", "form-encoded", "HTML-escaped"],
    );
    assert_no_leaks_recorded();
}

/// The planted value was found in `where_` in each of these forms.
#[track_caller]
fn assert_found(where_: &str, forms: &[&str]) {
    let hits = canary_hits();
    for form in forms {
        assert!(
            hits.iter().any(|h| h.where_.starts_with(where_) && h.form.split(" and ").any(|f| f == *form)),
            "the planted value in {form} form was not found in {where_}: {:?}",
            hits.iter().map(|h| format!("{} / {}", h.where_, h.form)).collect::<Vec<_>>()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scan_catches_a_planted_value_in_answers_and_files() {
    let b = Berth::start().await;
    let forms = independent_forms("control-user", CANARY);
    // Credential names are echoed in answers and pages and stored as they are.
    for (i, (form, text)) in forms.iter().enumerate() {
        let name: String = format!("{i} {form} {text}").chars().take(100).collect();
        b.api.create_credential(&new_credential(&name, CredentialKind::AccessToken, ANOTHER_TOKEN)).await.unwrap();
        assert_eq!(b.api.status(), 201);
    }
    assert_found(
        "the answer to /api/v1/credentials",
        &["raw", "base64", "base64url", "percent-encoded", "form-encoded", "HTML-escaped"],
    );
    // A page: the names as HTML.
    let web = signed_in(&b).await;
    let page = web.page("/credentials").await;
    assert!(page.contains("credentials") || page.contains("Credentials"));
    assert_found("the page /credentials", &["base64", "percent-encoded", "form-encoded", "HTML-escaped"]);
    // A file in the data directory, scanned when the server stops.
    let planted: String = forms.iter().map(|(_, t)| format!("{t}\n")).collect();
    std::fs::write(b.data.path().join("planted.txt"), planted).unwrap();
    let data = b.data.path().to_owned();
    let sqlite = b.db_path().is_some();
    let _keep = b.stop_keep_data().await;
    assert!(data.join("planted.txt").exists());
    assert_found("a Berth's data directory: ", &["raw", "base64", "base64url", "percent-encoded"]);
    // The names are in the database as they were sent, and the scan of its files saw them.
    let hits = canary_hits();
    if sqlite {
        assert!(hits.iter().any(|h| h.where_.contains("berth.db")), "the database file was not scanned");
    } else {
        assert!(hits.iter().any(|h| h.where_.contains("pg_wal")), "PostgreSQL's write-ahead log was not scanned");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_paths_most_likely_to_leak_leak_nothing() {
    let b = Berth::start().await;
    let lines_before =
        (captured_lines(Some("berth_server")), captured_lines(Some("tower_http")), captured_lines(Some("berth_git")));
    let app = b.git.repo_url("team/app.git");
    let base = b.git.base_url();

    // Credentials: created, listed, shown, updated; every answer is scanned as it arrives.
    let ci = b.api_token_credential("ci").await;
    let alice = CredentialCreate {
        username: Some("alice".into()),
        ..new_credential("alice", CredentialKind::UsernamePassword, ALICE_PASSWORD)
    };
    let alice = b.api.create_credential(&alice).await.unwrap().id;
    assert_eq!(b.api.status(), 201);
    b.api.create_credential(&bitbucket_api_token("wrong", LEAK_WRONG_TOKEN)).await.unwrap();
    assert_eq!(b.api.status(), 201);
    let update = CredentialUpdate {
        secret: Some(TOKEN.into()),
        username: Some(Some("jo".into())),
        ..CredentialUpdate::default()
    };
    b.api.update_credential(ci, &update).await.unwrap();
    assert_eq!(b.api.status(), 200);
    b.api.list_credentials().await.unwrap();
    b.api.get_credential(alice).await.unwrap();
    // Refused credentials: the error must not echo what was sent.
    let e = refused(
        b.api.create_credential(&new_credential("x1", CredentialKind::BitbucketApiToken, LEAK_WRONG_TOKEN)).await,
    );
    assert_eq!(e.status(), Some(422), "{e}");
    let e = refused(b.api.create_credential(&bitbucket_api_token("x2", SIM_APP_PASSWORD)).await);
    assert_eq!(e.status(), Some(422), "{e}");
    // Raw: bodies the typed client cannot send.
    for body in [
        json!({"name": "x3", "kind": "access_token", "secret": [LEAK_WRONG_TOKEN]}),
        json!({"name": "x4", "kind": "no_such_kind", "secret": LEAK_WRONG_TOKEN}),
        json!({"name": "x5", "kind": "access_token", "secret": 5, "note": LEAK_WRONG_TOKEN}),
    ] {
        let (s, _, _) = b
            .raw(
                Method::POST,
                "/api/v1/credentials",
                Some(&b.token),
                Some("application/json"),
                Some(body.to_string().into()),
            )
            .await;
        assert!(s.is_client_error());
    }

    // Refresh: a password with every special character works through Basic authentication;
    // a wrong token fails authentication at the Git server; hostile answers fail their way.
    let v = b.api.remote_branches(&remote(&app, "alice")).await;
    assert!(v.is_ok(), "alice's password works: {}", b.api.body());
    for (url, cred) in [
        (app.clone(), "wrong"),
        (format!("{base}/login/team/app.git"), "ci"),
        (format!("{base}/forbidden/team/app.git"), "wrong"),
        (format!("{base}/ratelimited/team/app.git"), "alice"),
        (format!("{base}/dumb/team/app.git"), "alice"),
        (b.git.repo_url("team/missing.git"), "alice"),
        // A password inside the clone URL, plainly and percent-encoded.
        (format!("https://jo:{URL_PASSWORD}@bitbucket.org/ws/app.git"), "ci"),
        (app.replace("http://", &format!("http://alice:{}@", percent_encode(ALICE_PASSWORD))), "alice"),
        (app.replace("http://", &format!("http://x-bitbucket-api-token-auth:{TOKEN}@")), "ci"),
        (format!("git clone https://alice:{}@bitbucket.org/ws/app.git", percent_encode(ALICE_PASSWORD)), "alice"),
    ] {
        let e = refused(b.api.remote_branches(&remote(&url, cred)).await);
        assert_eq!(e.status(), Some(422), "{cred}: {e}");
    }
    let e = refused(b.api.remote_branches(&remote(&app, "wrong")).await);
    assert_eq!(step(e.checks(), berth_core::StepName::GitDiscovery).code, Code::AuthFailed, "{e}");

    // Registration: failures (wrong token, password in the URL, no such branch), then one
    // that passes, re-checked with a broken secret.
    for req in [
        new_repository("r1", &app, "wrong"),
        new_repository("r2", &format!("https://jo:{URL_PASSWORD}@bitbucket.org/ws/app.git"), "ci"),
        RepositoryCreate { default_branch: Some("nope".into()), ..new_repository("r3", &app, "alice") },
    ] {
        let e = refused(b.api.create_repository(&req).await);
        assert_eq!(e.status(), Some(422), "{e}");
    }
    let repo = b.api.create_repository(&new_repository("app", &app, "alice")).await.unwrap().id;
    assert_eq!(b.api.status(), 201);
    let secret = |s: &str| CredentialUpdate { secret: Some(s.to_owned()), ..CredentialUpdate::default() };
    b.api.update_credential(alice, &secret(LEAK_WRONG_TOKEN)).await.unwrap();
    assert_eq!(b.api.status(), 200);
    let c = b.api.check_repository(repo).await.unwrap();
    assert!(!c.ok, "{}", codes(&c.checks));
    b.api.update_credential(alice, &secret(ALICE_PASSWORD)).await.unwrap();
    assert_eq!(b.api.status(), 200);
    b.api.check_history(repo, 100).await.unwrap();
    b.api.list_repositories().await.unwrap();

    // Users and sign-ins: failures, a lockout, a password change.
    let vera = UserCreate { username: "vera".into(), password: VIEWER_PASSWORD.into(), role: "viewer".into() };
    let vera = b.api.create_user(&vera).await.unwrap().id;
    assert_eq!(b.api.status(), 201);
    let anonymous = Api::new(&b.base, "");
    for password in
        [WRONG_PASSWORD, WRONG_ADMIN_PASSWORD, WRONG_PASSWORD, WRONG_ADMIN_PASSWORD, WRONG_PASSWORD, VIEWER_PASSWORD]
    {
        let _ = anonymous.login("vera", password).await;
    }
    let reset = UserUpdate { password: Some(VERA_RESET_PASSWORD.into()), ..UserUpdate::default() };
    b.api.update_user(vera, &reset).await.unwrap();
    assert_eq!(b.api.status(), 200);
    let bad = UserCreate { username: "bad name!".into(), password: NEW_USER_PASSWORD.into(), role: "viewer".into() };
    assert_eq!(refused(b.api.create_user(&bad).await).status(), Some(422));
    b.api.list_users().await.unwrap();

    // The audit log, metrics, the OpenAPI document, health (the last three raw: they are
    // documents and probes, not API calls).
    let audit = b.api.audit(None, Some(1000)).await.unwrap();
    assert_eq!(b.api.status(), 200);
    assert!(audit.len() > 10, "{audit:?}");
    for path in ["/metrics", "/api/openapi.json", "/readyz", "/healthz"] {
        let r = b.http.get(format!("{}{path}", b.base)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        answer_text(path, r).await;
    }
    b.api.schedule_all_checks().await.unwrap();
    assert_eq!(b.api.status(), 200);

    // The web UI: pages, a refused credential form (the page answering it must not hold the
    // secret typed into it), Refresh with a password in the URL.
    let web = signed_in(&b).await;
    for path in [
        "/",
        "/credentials",
        "/credentials/new",
        &format!("/credentials/{alice}"),
        &format!("/repositories/{repo}"),
        "/admin/users",
        "/admin/audit",
        "/account",
    ] {
        web.page(path).await;
    }
    let (s, page) = web
        .post(
            "/credentials/new",
            "/credentials/new",
            &[("name", "web"), ("kind", "bitbucket_api_token"), ("email", "not an email"), ("secret", LEAK_WEB_SECRET)],
        )
        .await;
    assert!(!s.is_server_error(), "{s}: {page}");
    let (s, _) = web
        .post(
            "/credentials/new",
            "/credentials/new",
            &[("name", "web-ok"), ("kind", "username_password"), ("username", "alice"), ("secret", LEAK_WEB_SECRET)],
        )
        .await;
    assert!(!s.is_server_error(), "{s}");
    for url in [
        format!("https://jo:{URL_PASSWORD}@bitbucket.org/ws/app.git"),
        app.replace("http://", &format!("http://alice:{}@", percent_encode(ALICE_PASSWORD))),
    ] {
        let (s, _) =
            web.post("/ui/remote-branches", "/repositories/new", &[("clone_url", &url), ("credential", "alice")]).await;
        assert!(!s.is_server_error(), "{s}");
    }
    let (s, _) = web
        .post(
            "/account/password",
            "/account",
            &[
                ("current_password", WRONG_ADMIN_PASSWORD),
                ("new_password", NEW_USER_PASSWORD),
                ("confirm_password", NEW_USER_PASSWORD),
            ],
        )
        .await;
    assert!(!s.is_server_error(), "{s}");
    web.page("/admin/audit").await;

    // Everything captured so far: the logs did receive this test's lines, and neither they
    // (scanned as written, and once more as a whole) nor any panic message holds a secret.
    let lines_after =
        (captured_lines(Some("berth_server")), captured_lines(Some("tower_http")), captured_lines(Some("berth_git")));
    assert!(lines_after.0 > lines_before.0, "no berth_server log line was captured");
    assert!(lines_after.1 > lines_before.1, "no tower_http log line was captured");
    assert!(
        captured_lines(Some("reqwest")) + captured_lines(Some("hyper_util")) > 0,
        "no HTTP client log line was captured"
    );
    let log = std::fs::read(log_path()).unwrap();
    assert!(log.len() > 10_000, "the log file holds {} bytes", log.len());
    assert_no_secret_in_output("the whole log of this process", &log);
    assert_no_leaks_recorded();
    if let Some(db) = b.db_path() {
        assert!(std::fs::metadata(db).unwrap().len() > 0);
    }
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_cluster_holds_no_secret() {
    if berth_testkit::pg::TestDatabase::from_env() != berth_testkit::pg::TestDatabase::Postgres {
        return;
    }
    // One Berth's worth of secrets written first, so the cluster is not empty of them.
    let b = Berth::start().await;
    b.api_token_credential("ci").await;
    b.stop().await;
    let cluster = berth_testkit::pg::PgCluster::shared();
    cluster.psql("postgres", "CHECKPOINT");
    let read = assert_dir_clean("the PostgreSQL cluster", cluster.data_dir());
    assert!(read > 10_000_000, "the cluster's files are {read} bytes");
}

/// Every string literal the suite sends as a secret or password is in the harness's list (or
/// too short to search for, and then listed in `NOT_SCANNED` with why).
#[test]
fn every_secret_literal_in_the_suite_is_registered() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e");
    let known: BTreeSet<&str> =
        KNOWN_SECRETS.iter().map(|(_, v)| *v).chain(NOT_SCANNED.iter().map(|(v, _)| *v)).collect();
    for (label, v) in KNOWN_SECRETS {
        assert!(v.len() >= MIN_SECRET_LEN, "{label} is too short to search for");
    }
    assert_eq!(
        KNOWN_SECRETS.iter().map(|(_, v)| *v).collect::<BTreeSet<_>>().len(),
        KNOWN_SECRETS.len(),
        "a value is listed twice"
    );
    let keys = [
        "\"secret\": \"",
        "\"secret\":\"",
        "\"password\": \"",
        "\"password\":\"",
        "(\"secret\", \"",
        "(\"password\", \"",
        "(\"new_password\", \"",
        "fill(\"#secret\", \"",
        "fill(\"#new_secret\", \"",
        "fill(\"#password\", \"",
        "fill(\"#new_password\", \"",
        "-stdin\"], Some(\"",
        // Struct fields of the typed requests: `secret: "…".into()`, `password: "…".into()`.
        "secret: \"",
        "password: \"",
    ];
    // Helper calls whose last argument is the secret: `new_credential(name, kind, secret)`,
    // `bitbucket_api_token(name, secret)`, `login(…, user, password)`.
    let calls = ["new_credential(", "bitbucket_api_token(", "login("];
    let mut found = 0;
    // The harness is a directory of modules: every file of the suite, at any depth.
    for path in files_under(&dir, None) {
        if path.ends_with("leaks.rs") || path.extension().is_none_or(|e| e != "rs") {
            continue; // the keys above
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let mut literals: Vec<&str> = Vec::new();
        for key in keys {
            for (at, _) in text.match_indices(key) {
                literals.push(text[at + key.len()..].split('"').next().unwrap().trim_end_matches("\\n"));
            }
        }
        for key in calls {
            for (at, _) in text.match_indices(key) {
                let call = text[at + key.len()..].split(')').next().unwrap();
                let last = call.rsplit(',').next().unwrap_or_default().trim();
                if let Some(lit) = last.strip_prefix('"').and_then(|l| l.strip_suffix('"')) {
                    literals.push(lit);
                }
            }
        }
        for lit in literals {
            if lit.contains('{') || lit.is_empty() {
                continue; // a format string or not a literal
            }
            found += 1;
            assert!(
                known.contains(lit),
                "{}: the secret literal {lit:?} is not in harness::KNOWN_SECRETS",
                path.display()
            );
        }
    }
    assert!(found >= 3, "the guard found only {found} literals: it no longer reads the suite");
}
