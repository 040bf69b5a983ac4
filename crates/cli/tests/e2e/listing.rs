//! Long lists page by cursor: the repository list with its filters and `total`, the other lists
//! (credentials, users, audit, check history), cursor stability while rows come and go, and the
//! VC Repos page (paged, searchable, filtered by status chips, small at any size). Repositories
//! beyond the few the test Git server holds are seeded straight into the store (registering
//! thousands through checks would test the checks, not the list); raw requests only for what the
//! typed client cannot send (malformed queries) and for the web pages.

use crate::harness::browser::Browser;
use crate::harness::web::signed_in;
use crate::harness::*;
use berth::client::RepoQuery;
use berth_core::Code;
use berth_store::{NewRepository, Store};
use reqwest::StatusCode;
use std::collections::{BTreeSet, HashMap};

/// The server's store, opened beside it (same database, same key file).
async fn store_of(b: &Berth) -> Store {
    Store::open(&b.database_url, &b.data.path().join("master.key")).await.unwrap().0
}

/// `name` on `host`, due in a day: the server's scheduler leaves seeded rows alone (their hosts
/// do not exist), so their status stays `unchecked` while the test reads it.
fn seeded(name: &str, host: &str, provider: &str, credential_id: i64) -> NewRepository {
    NewRepository {
        name: name.to_owned(),
        vcs: "git".into(),
        clone_url: format!("https://{host}/team/{}.git", name.to_lowercase()),
        repo_key: format!("{provider}:{host}/team/{}", name.to_lowercase()),
        provider: provider.into(),
        default_branch: "main".into(),
        credential_id: Some(credential_id),
        next_check_at: Some(chrono::Utc::now() + chrono::Duration::days(1)),
    }
}

fn names(list: &[berth_proto::Repository]) -> Vec<String> {
    list.iter().map(|r| r.name.clone()).collect()
}

fn query() -> RepoQuery {
    RepoQuery::default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_repository_list_pages_and_carries_summaries() {
    let b = Berth::start().await;
    b.api_token_credential("ci").await;
    for (name, path) in [("Zeta", "team/app.git"), ("alpha", "team/lib.git")] {
        b.register(name, path, "ci").await;
    }
    let all = b.api.list_repositories().await.unwrap();
    assert_eq!(names(&all), ["alpha", "Zeta"], "by name, whatever the case");
    // Summaries: the warned codes, no steps.
    let summary = all[0].last_check.as_ref().unwrap();
    assert_eq!(summary.warning_codes, [Code::InsecureTransport], "{all:?}");
    assert!(summary.checks.is_empty(), "{all:?}");
    let one = b.api.get_repository(all[0].id).await.unwrap();
    assert_eq!(one.last_check.as_ref().map(|c| c.checks.len()), Some(berth_core::StepName::ALL.len()), "{one:?}");

    let by_one = RepoQuery { limit: Some(1), ..query() };
    let first = b.api.repositories_page(&by_one, None).await.unwrap();
    assert_eq!((names(&first.items), first.total), (vec!["alpha".to_owned()], 2));
    let second = b.api.repositories_page(&by_one, first.next.as_deref()).await.unwrap();
    assert_eq!(names(&second.items), ["Zeta"]);
    assert_eq!(second.next, None, "the last page says so");
    let status = second.items[0].last_check.as_ref().map(|c| c.status.as_str());
    assert_eq!(status, Some("warn"), "a page carries its repositories' checks");
    assert_eq!(second.items[0].status, "warn");
    // Raw: queries the typed client cannot send.
    let (s, v) = b.raw_get("/api/v1/repositories?limit=many").await;
    assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_input")), "{v}");
    let (s, v) = b.raw_get(&format!("/api/v1/repositories/{}/checks?before=yesterday", all[0].id)).await;
    assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_input")), "{v}");
    b.stop().await;
}

/// Rows added and deleted between two pages: every row that stayed is seen exactly once, in
/// order, whatever came and went before or after the cursor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_neither_skips_nor_repeats_rows_while_others_come_and_go() {
    let b = Berth::start().await;
    let cred = b.api_token_credential("ci").await;
    let store = store_of(&b).await;
    // Mixed case, so the order is the case-insensitive one.
    let initial: Vec<String> =
        (0..240).map(|i| if i % 3 == 0 { format!("Repo-{i:04}") } else { format!("repo-{i:04}") }).collect();
    let rows: Vec<NewRepository> = initial.iter().map(|n| seeded(n, "git.example.com", "generic", cred)).collect();
    assert_eq!(store.insert_repositories(&rows).await.unwrap(), 240);

    let q = RepoQuery { limit: Some(7), ..query() };
    let mut pages = b.api.repositories(&q);
    let mut seen: Vec<String> = Vec::new();
    let mut deleted: BTreeSet<String> = BTreeSet::new();
    let mut round = 0;
    while let Some(items) = pages.next_page().await.unwrap() {
        seen.extend(names(&items));
        round += 1;
        // Between pages: new rows before and after the cursor, and deletions of rows already
        // seen and of rows still ahead.
        let fresh = [format!("repo-{:04}a", round * 9), format!("aaa-new-{round}"), format!("zzz-new-{round}")];
        let add: Vec<NewRepository> = fresh.iter().map(|n| seeded(n, "git.example.com", "generic", cred)).collect();
        store.insert_repositories(&add).await.unwrap();
        for victim in [format!("repo-{:04}", (round * 5) % 240), format!("repo-{:04}", (200 + round) % 240)] {
            let victim = initial.iter().find(|n| n.eq_ignore_ascii_case(&victim)).unwrap().clone();
            if deleted.insert(victim.to_lowercase()) {
                let id =
                    store.find_by_repo_key(&format!("generic:git.example.com/team/{}", victim.to_lowercase())).await;
                store.delete_repository(id.unwrap().unwrap().id).await.unwrap();
            }
        }
    }
    let mut uniq = BTreeSet::new();
    for n in &seen {
        assert!(uniq.insert(n.to_lowercase()), "{n} was shown twice");
    }
    let lower: Vec<String> = seen.iter().map(|n| n.to_lowercase()).collect();
    let mut sorted = lower.clone();
    sorted.sort();
    assert_eq!(lower, sorted, "pages follow one another in name order");
    for n in &initial {
        if !deleted.contains(&n.to_lowercase()) {
            assert!(uniq.contains(&n.to_lowercase()), "{n} stayed but was skipped");
        }
    }
    // Rows added ahead of the cursor were reached; those behind it were not (and were not repeated).
    assert!(seen.iter().any(|n| n.starts_with("zzz-new-")), "rows added ahead are reached");
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_filter_narrows_the_list_and_total_counts_the_matches() {
    let b = Berth::start().await;
    let ci = b.api_token_credential("ci").await;
    let other = b.api_token_credential("other").await;
    // Two registered (checked: `warn`, plain HTTP), the rest seeded (`unchecked`).
    b.register("app", "team/app.git", "ci").await;
    b.register("lib", "team/lib.git", "other").await;
    let store = store_of(&b).await;
    let mut rows = Vec::new();
    for i in 0..120 {
        rows.push(seeded(&format!("gh-{i:03}"), "github.com", "github", ci));
    }
    for i in 0..30 {
        rows.push(seeded(&format!("Bb-{i:03}"), "bitbucket.org", "bitbucket-cloud", other));
    }
    // LIKE's wildcards are taken literally.
    rows.push(seeded("odd_name%", "git.example.com:8443", "generic", other));
    store.insert_repositories(&rows).await.unwrap();
    let page = |q: RepoQuery| {
        let api = b.api.clone();
        async move { api.repositories_page(&q, None).await.unwrap() }
    };

    let all = page(query()).await;
    assert_eq!((all.items.len(), all.total), (100, 153), "100 a page by default; total counts all");
    assert!(all.next.is_some());
    let max = page(RepoQuery { limit: Some(1000), ..query() }).await;
    assert_eq!((max.items.len(), max.next), (153, None));

    let q = |s: &str| RepoQuery { q: Some(s.into()), ..query() };
    assert_eq!(page(q("GH-00")).await.total, 10, "a substring of the name, case-insensitive");
    assert_eq!(page(q("BITBUCKET.org/team/bb-02")).await.total, 10, "a substring of the clone URL");
    assert_eq!(names(&page(q("_name%")).await.items), ["odd_name%"], "wildcards are literal");
    assert_eq!(page(q("e_n")).await.total, 0);

    let status = |s: &[&str]| RepoQuery { statuses: s.iter().map(|x| (*x).to_owned()).collect(), ..query() };
    assert_eq!(names(&page(status(&["warn"])).await.items), ["app", "lib"]);
    assert_eq!(page(status(&["unchecked"])).await.total, 151);
    assert_eq!(page(status(&["warn", "fail"])).await.total, 2, "status repeats: any of them");
    assert_eq!(page(status(&["paused", "ok"])).await.total, 0);

    let cred = |c: &str| RepoQuery { credential: Some(c.into()), ..query() };
    assert_eq!(page(cred("other")).await.total, 32, "by name");
    assert_eq!(page(cred(&ci.to_string())).await.total, 121, "by id");
    let prov = |p: &str| RepoQuery { provider: Some(p.into()), ..query() };
    assert_eq!(page(prov("github")).await.total, 120);
    assert_eq!(page(prov("bitbucket-cloud")).await.total, 30);
    let host = |h: &str| RepoQuery { host: Some(h.into()), ..query() };
    assert_eq!(page(host("GitHub.com")).await.total, 120, "hosts compare case-insensitively");
    assert_eq!(names(&page(host("git.example.com:8443")).await.items), ["odd_name%"], "with its port");
    // Filters combine.
    let both = RepoQuery { q: Some("-00".into()), credential: Some("other".into()), limit: Some(3), ..query() };
    let p = page(both.clone()).await;
    assert_eq!((names(&p.items), p.total), (vec!["Bb-000".to_owned(), "Bb-001".into(), "Bb-002".into()], 10));
    let rest = b.api.repositories(&both).all().await.unwrap();
    assert_eq!(rest.len(), 10, "following next reaches every match");
    // A credential in a list names its first 20 repositories and counts them all; its own
    // answer names every one.
    let listed = b.api.list_credentials().await.unwrap();
    let c = listed.iter().find(|c| c.id == ci).unwrap();
    assert_eq!((c.used_by.len(), c.used_by_count), (20, 121));
    assert_eq!(c.used_by[0].name, "app", "by name");
    let shown = b.api.get_credential(other).await.unwrap();
    assert_eq!((shown.used_by.len(), shown.used_by_count), (32, 32));

    // Refusals, each with its code.
    for (path, status, code) in [
        ("/api/v1/repositories?status=broken", StatusCode::UNPROCESSABLE_ENTITY, "invalid_input"),
        ("/api/v1/repositories?provider=svn", StatusCode::UNPROCESSABLE_ENTITY, "invalid_input"),
        ("/api/v1/repositories?credential=nobody", StatusCode::UNPROCESSABLE_ENTITY, "credential_not_found"),
        ("/api/v1/repositories?after=%%%", StatusCode::UNPROCESSABLE_ENTITY, "invalid_cursor"),
        ("/api/v1/repositories?after=bm9wZQ", StatusCode::UNPROCESSABLE_ENTITY, "invalid_cursor"),
        ("/api/v1/repositories?limit=0", StatusCode::BAD_REQUEST, "invalid_input"),
        ("/api/v1/repositories?limit=1001", StatusCode::BAD_REQUEST, "invalid_input"),
        ("/api/v1/repositories?limit=-5", StatusCode::BAD_REQUEST, "invalid_input"),
    ] {
        let (s, v) = b.raw_get(path).await;
        assert_eq!((s, v["error"]["code"].as_str()), (status, Some(code)), "{path}: {v}");
    }
    // A cursor of another list is refused, not misread.
    let creds = b.raw_get("/api/v1/credentials?limit=1").await.1;
    let foreign = creds["next"].as_str().unwrap().to_owned();
    let (s, v) = b.raw_get(&format!("/api/v1/repositories?after={foreign}")).await;
    assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_cursor")), "{v}");
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_users_audit_and_history_page_by_cursor() {
    let b = Berth::start().await;
    for name in ["c-one", "C-two", "c-three"] {
        b.api_token_credential(name).await;
    }
    let creds = b.api.credentials(Some(1));
    let all = creds.all().await.unwrap();
    let got: Vec<&str> = all.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(got, ["c-one", "c-three", "C-two"], "one a page, by name whatever the case");
    let (s, v) = b.raw_get("/api/v1/credentials?limit=2").await;
    assert_eq!((s, v["total"].as_i64(), v["items"].as_array().map(Vec::len)), (StatusCode::OK, Some(3), Some(2)));

    for u in ["bob", "Carol"] {
        let req =
            berth_proto::UserCreate { username: u.into(), password: ADMIN_PASSWORD.into(), role: "viewer".into() };
        b.api.create_user(&req).await.unwrap();
    }
    let (_, v) = b.raw_get("/api/v1/users?limit=2").await;
    assert_eq!(v["total"].as_i64(), Some(3), "{v}");
    let users = b.api.list_users().await.unwrap();
    assert_eq!(users.iter().map(|u| u.username.as_str()).collect::<Vec<_>>(), ["admin", "bob", "Carol"]);

    let id = b.register("app", "team/app.git", "c-one").await;
    for _ in 0..4 {
        b.api.check_repository(id).await.unwrap();
    }
    let mut history = b.api.history(id, Some(2));
    let mut ids = Vec::new();
    while let Some(page) = history.next_page().await.unwrap() {
        assert!(page.len() <= 2);
        ids.extend(page.iter().map(|c| c.id));
    }
    assert_eq!(history.total, Some(5), "registration and four checks");
    assert_eq!(ids.len(), 5);
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    assert_eq!(b.api.check_history(id, 3).await.unwrap().len(), 3, "at most the number asked for");

    // The audit log: newest first, filtered, counted.
    let (_, v) = b.raw_get("/api/v1/audit?action=credential.create&limit=2").await;
    assert_eq!((v["total"].as_i64(), v["items"].as_array().map(Vec::len)), (Some(3), Some(2)), "{v}");
    let next = v["next"].as_str().unwrap();
    let (_, rest) = b.raw_get(&format!("/api/v1/audit?action=credential.create&limit=2&after={next}")).await;
    assert_eq!(rest["items"][0]["target_name"], "c-one", "{rest}");
    assert_eq!(rest["next"], serde_json::Value::Null);
    let mut pages = b.api.audit_pages(vec![("actor", "ADM".into()), ("limit", "3".into())]);
    let mut entries = Vec::new();
    while let Some(page) = pages.next_page().await.unwrap() {
        entries.extend(page);
    }
    assert!(entries.iter().all(|e| e.actor == "admin") && !entries.is_empty(), "{entries:?}");
    assert_eq!(pages.total, Some(i64::try_from(entries.len()).unwrap()));
    let (s, v) = b.raw_get(&format!("/api/v1/repositories/{id}/checks?after=xyz")).await;
    assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_cursor")), "{v}");
    b.stop().await;
}

/// VC Repos at a size no page can show at once: each page is small, the links reach the last
/// row, and the search and the status chips use the API's parameters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_vc_repos_page_is_paged_small_and_filtered_by_url() {
    let b = Berth::start().await;
    let cred = b.api_token_credential("ci").await;
    b.register("app", "team/app.git", "ci").await;
    let store = store_of(&b).await;
    let n = 1_200;
    // Long names and URLs: the size bound must hold for the widest rows.
    let rows: Vec<NewRepository> = (0..n)
        .map(|i| seeded(&format!("platform-services-{i:05}-{}", "x".repeat(40)), "git.example.com", "generic", cred))
        .collect();
    store.insert_repositories(&rows).await.unwrap();
    let web = signed_in(&b).await;

    let mut path = "/repositories".to_owned();
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let html = web.page(&path).await;
        assert!(html.len() < 100_000, "{path} is {} bytes", html.len());
        pages += 1;
        seen.extend(
            html.match_indices("<tr data-repo=\"").map(|(i, _)| html[i + 15..].split('"').next().unwrap().to_owned()),
        );
        let Some(next) = html.split("id=\"next_page\"").next().filter(|_| html.contains("id=\"next_page\"")) else {
            break;
        };
        path = next.rsplit("href=\"").next().unwrap().split('"').next().unwrap().replace("&amp;", "&");
    }
    assert_eq!(seen.len(), n + 1, "every row once, over {pages} pages");
    assert_eq!(seen.iter().collect::<BTreeSet<_>>().len(), n + 1);
    let last = b.api.repositories_page(&RepoQuery { limit: Some(1000), ..query() }, None).await.unwrap();
    assert_eq!(last.total, i64::try_from(n + 1).unwrap());

    // The chips count per status; a chip's link is the API's filter.
    let html = web.page("/repositories").await;
    let chip = |s: &str| {
        let at = html.find(&format!("data-status=\"{s}\"")).unwrap_or_else(|| panic!("chip {s}"));
        html[at..].split("class=\"count\">").nth(1).unwrap().split('<').next().unwrap().to_owned()
    };
    assert_eq!((chip("warn"), chip("unchecked"), chip("fail")), ("1".into(), n.to_string(), "0".into()));
    assert!(html.contains("href=\"/repositories?status=warn\""), "bookmarkable filter links");
    let warn = web.page("/repositories?status=warn").await;
    assert_eq!(warn.matches("<tr data-repo=").count(), 1);
    assert!(warn.contains(">app</a>"));
    // Search keeps the status filter; both appear in the links it leads to.
    let found = web.page("/repositories?q=00042-&status=unchecked").await;
    assert_eq!(found.matches("<tr data-repo=").count(), 1, "{found}");
    assert!(found.contains("name=\"status\" value=\"unchecked\""), "the search form keeps the chip");
    let counts: HashMap<&str, usize> =
        [("none", web.page("/repositories?q=no-such-repo").await.matches("id=\"no_match\"").count())].into();
    assert_eq!(counts["none"], 1, "an empty result says so");
    b.stop().await;
}

/// `berth repo list` follows `next` itself (all rows unless `--limit`), takes the API's filters
/// as flags, streams JSON that parses as one array, and stops quietly at a closed pipe.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_lists_every_page_with_the_filters_as_flags() {
    use crate::cli::{berth, berth_with, signed_in as cli_signed_in, With};
    let b = Berth::start().await;
    let cred = b.api_token_credential("ci").await;
    b.register("app", "team/app.git", "ci").await;
    let store = store_of(&b).await;
    let rows: Vec<NewRepository> =
        (0..250).map(|i| seeded(&format!("svc-{i:04}"), "github.com", "github", cred)).collect();
    store.insert_repositories(&rows).await.unwrap();
    let (_home, session) = cli_signed_in(&b).await;

    let r = berth(&b, &session, &["repo", "list"], None).await;
    assert_eq!(r.code, 0, "{}", r.all());
    let lines: Vec<&str> = r.stdout.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.iter().filter(|l| l.starts_with("ID ")).count(), 1, "one header for all pages");
    assert_eq!(lines.iter().filter(|l| l.contains("svc-")).count(), 250, "every page followed");
    assert!(r.stdout.contains(" app "), "{}", r.stdout);

    let r = berth(&b, &session, &["repo", "list", "--limit", "3"], None).await;
    assert_eq!(r.stdout.lines().filter(|l| l.contains("svc-") || l.contains(" app ")).count(), 3, "{}", r.stdout);

    let r = berth(&b, &session, &["--json", "repo", "list", "--status", "unchecked", "--search", "SVC-01"], None).await;
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.stdout));
    assert_eq!(v.as_array().map(Vec::len), Some(100), "svc-0100 to svc-0199");
    let r = berth(&b, &session, &["--json", "repo", "list", "--status", "warn", "--status", "fail"], None).await;
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v[0]["name"], "app");
    assert_eq!(v.as_array().map(Vec::len), Some(1));
    for (flag, value, want) in
        [("--credential", "ci", 251), ("--provider", "github", 250), ("--host", "github.com", 250)]
    {
        let r = berth(&b, &session, &["--json", "repo", "list", flag, value], None).await;
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        assert_eq!(v.as_array().map(Vec::len), Some(want), "{flag} {value}");
    }
    let r = berth(&b, &session, &["--json", "repo", "list", "--search", "nothing-like-it"], None).await;
    assert_eq!(r.stdout.trim(), "[]");
    let r = berth(&b, &session, &["repo", "list", "--search", "nothing-like-it"], None).await;
    assert_eq!(r.stdout, "No repository matches.\n");
    let r = berth(&b, &session, &["repo", "list", "--status", "bogus"], None).await;
    assert_ne!(r.code, 0);
    assert!(r.all().contains("invalid_input"), "{}", r.all());
    // A repository is found by name without listing them all.
    let r = berth(&b, &session, &["repo", "show", "svc-0249"], None).await;
    assert_eq!(r.code, 0, "{}", r.all());

    let status = r#"; echo "berth-exit=${PIPESTATUS[0]}" >&2"#;
    for script in [
        format!(r#""$BERTH" repo list | head -n 2 >/dev/null{status}"#),
        format!(r#""$BERTH" --json repo list | head -c 10 >/dev/null{status}"#),
    ] {
        let r = berth_with(&b, &session, &[], None, With { shell: Some(&script), ..With::default() }).await;
        assert!(r.stderr.contains("berth-exit=0"), "{script}: {}", r.all());
        assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    }
    b.stop().await;
}

/// VC Repos in Chromium, at desktop and phone width: search, a status chip, the next page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vc_repos_search_chips_and_next_page_in_a_browser() {
    let b = Berth::start().await;
    let cred = b.api_token_credential("ci").await;
    b.register("app", "team/app.git", "ci").await;
    let store = store_of(&b).await;
    let rows: Vec<NewRepository> =
        (0..180).map(|i| seeded(&format!("payments-{i:03}"), "bitbucket.org", "bitbucket-cloud", cred)).collect();
    store.insert_repositories(&rows).await.unwrap();
    let base = b.base.clone();
    let w = Browser::start("lists").await;
    w.sign_in(&base, "admin", ADMIN_PASSWORD).await;
    w.find("#repos").await;
    assert_eq!(w.text("#match_count").await, "181 repositories, 50 on this page.");
    w.shot("01-vc-repos-paged").await;

    w.fill("#f_q", "PAYMENTS-1").await;
    w.click("#search_button").await;
    w.until("the search applies", "return location.search.includes('q=PAYMENTS-1')").await;
    assert_eq!(w.text("#match_count").await, "80 repositories match, 50 on this page.");
    assert_eq!(w.value("#f_q").await, "PAYMENTS-1", "the box keeps the search");
    w.click("#status_chips a[data-status='warn']").await;
    w.until("the chip applies", "return location.search.includes('status=warn')").await;
    assert!(w.has("#no_match").await, "the search and the chip combine: app does not match");
    w.click("#status_chips a[data-status='unchecked']").await;
    w.until("the other chip applies", "return location.search.includes('status=unchecked')").await;
    let path = w.path().await;
    assert!(path.contains("q=PAYMENTS-1") && path.contains("status=unchecked"), "{path}");
    assert!(w.text("#status_chips a.on").await.starts_with("Not checked"));
    w.shot("02-search-and-chip").await;
    w.click("#next_page").await;
    w.until("the next page", "return location.search.includes('after=')").await;
    let first_row = w.text("#repos tbody tr th").await;
    assert_eq!(first_row, "payments-150", "page two starts after page one's last row");
    assert!(w.has("#first_page").await && !w.has("#next_page").await, "the last page");
    w.shot("03-next-page").await;

    // A phone: the same controls, stacked.
    w.c.set_window_size(390, 844).await.unwrap();
    w.goto(&format!("{base}/repositories?q=payments&status=unchecked")).await;
    w.find("#status_chips").await;
    let wide = w.c.execute("return document.documentElement.scrollWidth > window.innerWidth", vec![]).await.unwrap();
    assert_eq!(wide.as_bool(), Some(false), "no page scrolls sideways");
    w.shot("04-vc-repos-phone").await;
    w.click("#next_page").await;
    w.until("the next page on a phone", "return location.search.includes('after=')").await;
    w.shot("05-next-page-phone").await;
    w.close().await;
    b.stop().await;
}

/// Admin > Credentials and Users show 50 a page with next and first links; what the banners
/// count (credentials expiring, checks paused) is over every credential, not the page shown.
#[tokio::test]
async fn credentials_and_users_pages_are_paged_and_their_banners_count_all() {
    let b = Berth::start().await;
    let store = store_of(&b).await;
    let scopes: Vec<String> = Vec::new();
    let soon = chrono::Utc::now().date_naive() + chrono::Duration::days(3);
    for i in 0..60 {
        // The one that expires sorts last, onto the second page.
        let name = if i == 59 { "zz-expiring".to_owned() } else { format!("cred-{i:02}") };
        store
            .create_credential(berth_store::NewCredential {
                name: &name,
                kind: berth_core::CredentialKind::AccessToken,
                host: None,
                username: None,
                email: None,
                expires_on: (i == 59).then_some(soon),
                scopes: &scopes,
                secret: &secrecy::SecretString::from("s3cret-value"),
                app_id: None,
                installation_id: None,
                public_key: None,
                client_certificate: None,
            })
            .await
            .unwrap();
    }
    for i in 0..54 {
        store.create_user(&format!("user-{i:02}"), "not-a-hash", "viewer").await.unwrap();
    }
    let web = signed_in(&b).await;
    /// Every page from `first` on by its next links: the attribute values after `row`, and the pages.
    async fn walk(web: &crate::harness::web::Web<'_>, first: &str, row: &str) -> (Vec<String>, Vec<String>) {
        let (mut path, mut rows, mut pages) = (first.to_owned(), Vec::new(), Vec::new());
        loop {
            let html = web.page(&path).await;
            rows.extend(
                html.match_indices(row).map(|(i, _)| html[i + row.len()..].split('"').next().unwrap().to_owned()),
            );
            pages.push(html.clone());
            let Some(at) = html.find("id=\"next_page\"") else { break };
            path = html[..at].rsplit("href=\"").next().unwrap().split('"').next().unwrap().replace("&amp;", "&");
        }
        (rows, pages)
    }
    let (creds, pages) = walk(&web, "/credentials", "<tr data-credential=\"").await;
    assert_eq!((creds.len(), creds.iter().collect::<BTreeSet<_>>().len(), pages.len()), (60, 60, 2));
    assert!(pages[0].contains("60 credentials, 50 on this page."), "the count is over all pages");
    assert!(pages[1].contains("id=\"first_page\""), "the second page links back to the first");
    assert!(!pages[0].contains(">zz-expiring</a></th>"), "the expiring credential is listed on the second page");
    assert!(pages[1].contains(">zz-expiring</a></th>"));
    assert!(pages[0].contains("1 credential expired or expire within 30 days"), "its banner is on the first");

    let (users, pages) = walk(&web, "/admin/users", "<tr data-user=\"").await;
    assert_eq!(
        (users.len(), users.iter().collect::<BTreeSet<_>>().len(), pages.len()),
        (55, 55, 2),
        "54 added and the administrator"
    );
    assert!(pages[0].contains("55 users, 50 on this page."));
}
