//! The repository list against a real database (SQLite, or PostgreSQL with
//! `BERTH_TEST_DATABASE=postgres`): the status column follows checks, pauses and edits; every
//! filter matches what it says; a page is an index range in list order, never a sort of every
//! match. What the queries cost at 100,000 repositories is measured by `scripts/bench --fleet`
//! (the lists stage), not here: tests assert no time.

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use berth_core::{Check, CheckReason, Code, CredentialKind, Step, StepName};
use berth_store::{
    AuthResult, CredentialPatch, Dialect, NewCheck, NewCredential, NewRepository, RepositoryFilter, Store,
};
use berth_testkit::pg::test_database_url;
use chrono::Utc;
use secrecy::SecretString;

type R = Result<(), Box<dyn std::error::Error>>;

async fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let url = test_database_url(dir.path());
    let store = Store::open(&url, &dir.path().join("master.key")).await.unwrap().0;
    (dir, store)
}

async fn credential(store: &Store, name: &str) -> i64 {
    let scopes: Vec<String> = Vec::new();
    store
        .create_credential(NewCredential {
            name,
            kind: CredentialKind::BitbucketApiToken,
            host: None,
            username: None,
            email: Some("jo@example.com"),
            expires_on: None,
            scopes: &scopes,
            secret: &SecretString::from("s"),
            public_key: None,
        })
        .await
        .unwrap()
        .id
}

fn repo(name: &str, host: &str, provider: &str, credential_id: i64) -> NewRepository {
    NewRepository {
        name: name.into(),
        vcs: "git".into(),
        clone_url: format!("https://{host}/ws/{}.git", name.to_lowercase()),
        repo_key: format!("{provider}:{host}/ws/{}", name.to_lowercase()),
        provider: provider.into(),
        default_branch: "main".into(),
        credential_id,
        next_check_at: None,
    }
}

/// A check that passes, warns or fails (an authentication failure).
fn check(status: &str) -> Check {
    Check::completed(vec![match status {
        "ok" => Step::pass(StepName::Url, "fine"),
        "warn" => Step::warn(StepName::Url, Code::InsecureTransport, "plain HTTP", "use HTTPS"),
        _ => Step::fail(StepName::GitDiscovery, Code::AuthFailed, "no", "fix it"),
    }])
}

async fn record(store: &Store, repo: i64, cred: i64, status: &str) {
    let c = check(status);
    let new =
        NewCheck { check: &c, reason: CheckReason::Schedule, instance: "i", checked_at: Utc::now(), duration_ms: 1 };
    let auth = AuthResult { credential_id: cred, failed: status == "fail", pause_after: 2, now: Utc::now() };
    store.record_outcome(repo, &new, Some(auth), None).await.unwrap();
}

async fn names(store: &Store, f: RepositoryFilter) -> Vec<String> {
    store.repositories_page(&f, None, 1000).await.unwrap().into_iter().map(|r| r.name).collect()
}

fn status(s: &[&str]) -> RepositoryFilter {
    RepositoryFilter { statuses: s.iter().map(|x| (*x).to_owned()).collect(), ..RepositoryFilter::default() }
}

#[tokio::test]
async fn the_status_column_follows_checks_pauses_and_edits() -> R {
    let (_dir, store) = open().await;
    let a = credential(&store, "a").await;
    let b = credential(&store, "b").await;
    let one = store.create_repository(&repo("one", "h", "generic", a)).await?;
    let two = store.create_repository(&repo("two", "h", "generic", a)).await?;
    let three = store.create_repository(&repo("three", "h", "generic", b)).await?;
    assert_eq!(names(&store, status(&["unchecked"])).await, ["one", "three", "two"]);
    record(&store, one.id, a, "ok").await;
    record(&store, three.id, b, "warn").await;
    assert_eq!(names(&store, status(&["ok"])).await, ["one"]);
    assert_eq!(names(&store, status(&["warn", "unchecked"])).await, ["three", "two"]);
    assert_eq!(store.get_repository(one.id).await?.status, "ok");
    // Two authentication failures pause credential a: both its repositories are paused, the
    // one whose last check passed too.
    record(&store, two.id, a, "fail").await;
    assert_eq!(names(&store, status(&["fail"])).await, ["two"]);
    record(&store, two.id, a, "fail").await;
    assert_eq!(names(&store, status(&["paused"])).await, ["one", "two"]);
    assert_eq!(names(&store, status(&["ok", "fail"])).await, Vec::<String>::new());
    // A repository moved onto a paused credential is paused; moved back, it is its check's.
    store.update_repository(three.id, &repo("three", "h", "generic", a)).await?;
    assert_eq!(store.get_repository(three.id).await?.status, "paused");
    store.update_repository(three.id, &repo("three", "h", "generic", b)).await?;
    assert_eq!(store.get_repository(three.id).await?.status, "warn");
    // Editing the credential lifts the pause: each repository shows its own last check again.
    store.update_credential(a, CredentialPatch { secret: Some(SecretString::from("n")), ..Default::default() }).await?;
    assert_eq!(names(&store, status(&["ok"])).await, ["one"]);
    assert_eq!(names(&store, status(&["fail"])).await, ["two"]);
    // Pause again, then a passing check lifts it for all of the credential's repositories.
    record(&store, two.id, a, "fail").await;
    record(&store, two.id, a, "fail").await;
    assert_eq!(names(&store, status(&["paused"])).await, ["one", "two"]);
    record(&store, two.id, a, "ok").await;
    assert_eq!(names(&store, status(&["ok"])).await, ["one", "two"]);
    let counts = store.repository_status_counts(&RepositoryFilter::default()).await?;
    let mut counts: Vec<(String, i64)> = counts;
    counts.sort();
    assert_eq!(counts, [("ok".to_owned(), 2), ("warn".to_owned(), 1)]);
    Ok(())
}

#[tokio::test]
async fn filters_match_what_they_say_and_pages_follow_the_name_order() -> R {
    let (_dir, store) = open().await;
    let a = credential(&store, "a").await;
    let b = credential(&store, "b").await;
    let mut rows = Vec::new();
    for i in 0..30 {
        rows.push(repo(&format!("Alpha-{i:02}"), "github.com", "github", a));
        rows.push(repo(&format!("beta-{i:02}"), "Git.Example.com:8443", "generic", b));
    }
    assert_eq!(store.insert_repositories(&rows).await?, 60);
    let count = |f: RepositoryFilter| {
        let store = store.clone();
        async move { store.count_repositories(&f).await.unwrap() }
    };
    let all = RepositoryFilter::default();
    assert_eq!(count(all.clone()).await, 60);
    assert_eq!(count(RepositoryFilter { q: Some("ALPHA-1".into()), ..all.clone() }).await, 10);
    assert_eq!(count(RepositoryFilter { q: Some("example.com:8443/ws/beta-2".into()), ..all.clone() }).await, 10);
    assert_eq!(count(RepositoryFilter { q: Some("%".into()), ..all.clone() }).await, 0, "a literal %");
    assert_eq!(count(RepositoryFilter { credential_id: Some(a), ..all.clone() }).await, 30);
    assert_eq!(count(RepositoryFilter { provider: Some("generic".into()), ..all.clone() }).await, 30);
    assert_eq!(count(RepositoryFilter { host: Some("git.example.com:8443".into()), ..all.clone() }).await, 30);
    assert_eq!(
        count(RepositoryFilter { host: Some("git.example.com".into()), ..all.clone() }).await,
        0,
        "the port counts"
    );
    assert_eq!(count(status(&["unchecked"])).await, 60);
    // Keyset pages: Alpha-00..29 then beta-00..29, case-insensitively, each row once.
    let mut after: Option<String> = None;
    let mut seen = Vec::new();
    loop {
        let page = store.repositories_page(&all, after.as_deref(), 7).await?;
        if page.is_empty() {
            break;
        }
        after = page.last().map(|r| r.name.clone());
        seen.extend(page.into_iter().map(|r| r.name));
    }
    let mut want: Vec<String> = rows.iter().map(|r| r.name.clone()).collect();
    want.sort_by_key(|n| n.to_lowercase());
    assert_eq!(seen, want);
    // Taken names refuse the whole batch.
    assert!(store.insert_repositories(&[repo("ALPHA-00", "x", "generic", a)]).await.is_err());
    assert_eq!(count(all).await, 60);
    Ok(())
}

/// SQLite's plan for each filter: an index in list order (no temporary B-tree for ORDER BY),
/// never a scan of the table in storage order.
#[tokio::test]
async fn each_filter_is_an_index_range_in_list_order() -> R {
    let (_dir, store) = open().await;
    if store.dialect() != Dialect::Sqlite {
        // PostgreSQL's planner prefers a sequential scan on a table this small; its pages at
        // 100,000 rows are measured by the fleet benchmark.
        return Ok(());
    }
    let a = credential(&store, "a").await;
    let rows: Vec<NewRepository> = (0..500).map(|i| repo(&format!("r{i:04}"), "github.com", "github", a)).collect();
    store.insert_repositories(&rows).await?;
    let all = RepositoryFilter::default();
    for (what, f, after) in [
        ("first page", all.clone(), None),
        ("deep page", all.clone(), Some("r0400")),
        ("status", status(&["unchecked"]), Some("r0100")),
        ("credential", RepositoryFilter { credential_id: Some(a), ..all.clone() }, None),
        ("provider", RepositoryFilter { provider: Some("github".into()), ..all.clone() }, Some("r0100")),
        ("host", RepositoryFilter { host: Some("github.com".into()), ..all.clone() }, None),
        ("search", RepositoryFilter { q: Some("r01".into()), ..all.clone() }, Some("r0100")),
    ] {
        let plan = store.explain_repositories_page(&f, after).await?;
        let text = plan.join(" | ");
        assert!(!text.contains("TEMP B-TREE"), "{what}: sorts every match: {text}");
        let scan =
            plan.iter().find(|l| l.contains(" r ") || l.ends_with(" r")).unwrap_or_else(|| panic!("{what}: {text}"));
        assert!(scan.contains("INDEX"), "{what}: reads the table in storage order: {text}");
    }
    Ok(())
}
