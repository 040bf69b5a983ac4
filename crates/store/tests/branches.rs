//! Stored branch lists and repository webhooks, on SQLite and (with
//! `BERTH_TEST_DATABASE=postgres`) PostgreSQL: a recorded check writes its list in the same
//! transaction, an unchanged list writes nothing, a changed one only what changed; pages in
//! byte order; a push event's changes at once with the repository made due for a `webhook`
//! check; the webhook's secret sealed to its row; everything gone with the repository.

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

mod common;

use berth_core::{Check, CheckReason, Step, StepName};
use berth_store::{BranchChange, BranchEntry, BranchList, NewCheck, NewWebhook, OutcomeToRecord, Store};
use berth_testkit::pg::test_database_url;
use chrono::Utc;
use secrecy::{ExposeSecret, SecretString};

use common::open;

/// A repository `acme/{name}` with a credential of its own, named alike.
async fn repository(store: &Store, name: &str) -> i64 {
    let cred = common::credential(store, name).await;
    common::repository(store, name, cred).await
}

fn list(default: &str, branches: &[(&str, &str)]) -> BranchList {
    BranchList {
        default_branch: Some(default.to_owned()),
        branches: branches.iter().map(|(n, c)| BranchEntry { name: (*n).into(), commit: (*c).into() }).collect(),
    }
}

/// A scheduled check of `repo` that began at `at`, with nothing else to record.
fn scheduled(repo: i64, check: &Check, at: chrono::DateTime<Utc>) -> OutcomeToRecord<'_> {
    OutcomeToRecord {
        repository_id: repo,
        check: NewCheck { check, reason: CheckReason::Schedule, instance: "i", checked_at: at, duration_ms: 1 },
        auth: None,
        lease: None,
        answers_since: at,
        branches: None,
    }
}

async fn record(store: &Store, repo: i64, branches: &BranchList) {
    let check = Check::completed(vec![Step::pass(StepName::Url, "ok")]);
    let one = OutcomeToRecord { branches: Some(branches), ..scheduled(repo, &check, Utc::now()) };
    store.record_outcomes(std::slice::from_ref(&one)).await.unwrap();
}

async fn all(store: &Store, repo: i64) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        // Pages of two: the keyset continues after the last name.
        let page = store.branches_page(repo, after.as_deref(), 2).await.unwrap();
        if page.is_empty() {
            return out;
        }
        after = page.last().map(|b| b.name.clone());
        out.extend(page.into_iter().map(|b| (b.name, b.commit)));
    }
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect()
}

#[tokio::test]
async fn a_check_writes_the_branch_list_and_a_push_changes_it_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    let repo = repository(&store, "app").await;
    assert!(store.branch_list_head(repo).await.unwrap().is_none(), "no list before the first check");

    // Byte order on both databases: upper case before lower case, `/` before letters.
    let first = list("main", &[("main", "c1"), ("feature/x", "c2"), ("Zeta", "c3"), ("develop", "c4"), ("a", "c5")]);
    record(&store, repo, &first).await;
    assert_eq!(
        all(&store, repo).await,
        pairs(&[("Zeta", "c3"), ("a", "c5"), ("develop", "c4"), ("feature/x", "c2"), ("main", "c1")])
    );
    let head = store.branch_list_head(repo).await.unwrap().unwrap();
    assert_eq!((head.default_branch.as_deref(), head.branch_count, head.source.as_str()), (Some("main"), 5, "check"));

    // The same list again writes nothing: the head keeps its time.
    record(&store, repo, &first).await;
    assert_eq!(store.branch_list_head(repo).await.unwrap().unwrap().updated_at, head.updated_at);

    // A changed list: one moved, one gone, one new, the default changed.
    let second = list("develop", &[("main", "c9"), ("Zeta", "c3"), ("develop", "c4"), ("a", "c5"), ("new", "c6")]);
    record(&store, repo, &second).await;
    assert_eq!(
        all(&store, repo).await,
        pairs(&[("Zeta", "c3"), ("a", "c5"), ("develop", "c4"), ("main", "c9"), ("new", "c6")])
    );
    let head = store.branch_list_head(repo).await.unwrap().unwrap();
    assert_eq!((head.default_branch.as_deref(), head.branch_count), (Some("develop"), 5));

    // A push event: applied at once, the repository due for a webhook check.
    let changes = [
        BranchChange { name: "pushed".into(), commit: Some("p1".into()) },
        BranchChange { name: "main".into(), commit: Some("m2".into()) },
        BranchChange { name: "a".into(), commit: None },
    ];
    let now = Utc::now();
    store.apply_branch_push(repo, &changes, Some("main"), now).await.unwrap();
    assert_eq!(
        all(&store, repo).await,
        pairs(&[("Zeta", "c3"), ("develop", "c4"), ("main", "m2"), ("new", "c6"), ("pushed", "p1")])
    );
    let head = store.branch_list_head(repo).await.unwrap().unwrap();
    assert_eq!((head.default_branch.as_deref(), head.branch_count, head.source.as_str()), (Some("main"), 5, "webhook"));
    let row = store.get_repository(repo).await.unwrap();
    assert_eq!(row.due_reason, Some(CheckReason::Webhook));
    assert!(row.next_check_at.is_some_and(|t| t <= Utc::now()));

    // The next check's list replaces the push's, even when it equals the list before the push.
    record(&store, repo, &second).await;
    assert_eq!(
        all(&store, repo).await,
        pairs(&[("Zeta", "c3"), ("a", "c5"), ("develop", "c4"), ("main", "c9"), ("new", "c6")])
    );
    assert_eq!(store.branch_list_head(repo).await.unwrap().unwrap().source, "check");

    // Many branches: written in several statements, read back whole.
    let many: Vec<(String, String)> = (0..1234).map(|i| (format!("b-{i:05}"), format!("c{i}"))).collect();
    let big = BranchList {
        default_branch: None,
        branches: many.iter().map(|(n, c)| BranchEntry { name: n.clone(), commit: c.clone() }).collect(),
    };
    record(&store, repo, &big).await;
    assert_eq!(store.branches_page(repo, None, 1001).await.unwrap().len(), 1001);
    assert_eq!(store.branch_list_head(repo).await.unwrap().unwrap().branch_count, 1234);
    assert_eq!(store.branches_page(repo, Some("b-01233"), 10).await.unwrap().len(), 0);

    // Gone with the repository.
    store.delete_repository(repo).await.unwrap();
    assert!(store.branch_list_head(repo).await.unwrap().is_none());
    assert!(store.branches_page(repo, None, 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_webhook_keeps_its_secret_sealed_and_counts_deliveries() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    let repo = repository(&store, "hooked").await;
    let secret = SecretString::from("store-test-webhook-secret-0123456789");
    let new = NewWebhook {
        repository_id: repo,
        provider: "github",
        hook_id: "42",
        url: "https://berth.example/hooks/github/1",
        secret: &secret,
    };
    let w = store.create_webhook(new).await.unwrap();
    assert_eq!((w.hook_id.as_str(), w.deliveries, w.rejected), ("42", 0, 0));
    assert_eq!(store.webhook_secret(repo).await.unwrap().expose_secret(), secret.expose_secret());
    let again = NewWebhook { repository_id: repo, provider: "github", hook_id: "43", url: "u", secret: &secret };
    assert!(store.create_webhook(again).await.is_err(), "one webhook per repository");

    store.count_rejected_delivery(repo, Utc::now()).await.unwrap();
    store.count_rejected_delivery(repo, Utc::now()).await.unwrap();
    store.count_delivery(repo, Utc::now()).await.unwrap();
    let w = store.webhook(repo).await.unwrap().unwrap();
    assert_eq!((w.deliveries, w.rejected), (1, 2));
    assert!(w.last_rejected_at.is_some() && w.last_delivery_at.is_some());

    // The secret never sits in the database in the clear.
    if let Some(path) = test_database_url(dir.path()).strip_prefix("sqlite://") {
        let path = path.split('?').next().unwrap_or(path);
        if let Ok(bytes) = std::fs::read(path) {
            let needle = secret.expose_secret().as_bytes();
            assert!(!bytes.windows(needle.len()).any(|w| w == needle));
        }
    }

    store.delete_webhook(repo).await.unwrap();
    assert!(store.webhook(repo).await.unwrap().is_none());
    assert!(store.delete_webhook(repo).await.is_err());
}

#[tokio::test]
async fn a_push_during_a_running_check_keeps_the_repository_due() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    let repo = repository(&store, "busy").await;
    let leased = store.lease_due_checks("i", Utc::now(), Utc::now() + chrono::Duration::minutes(5), 10).await.unwrap();
    assert_eq!(leased.iter().map(|r| r.id).collect::<Vec<_>>(), [repo]);

    // The check starts; a push arrives while it runs; the check finishes and hands its lease back.
    let started = Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let pushed_at = Utc::now();
    store.apply_branch_push(repo, &[], None, pushed_at).await.unwrap();
    let ok = Check::completed(vec![Step::pass(StepName::Url, "fine")]);
    let check =
        NewCheck { check: &ok, reason: CheckReason::Schedule, instance: "i", checked_at: started, duration_ms: 1 };
    let hour_later = Utc::now() + chrono::Duration::hours(1);
    let done = store.record_outcome(repo, &check, None, Some(("i", hour_later))).await.unwrap();
    assert_eq!(done.lease_kept, Some(true));
    let row = store.get_repository(repo).await.unwrap();
    assert_eq!(row.due_reason, Some(CheckReason::Webhook), "the push still asks for its check");
    assert!(row.next_check_at.is_some_and(|n| n < hour_later), "due now, not in an hour: {:?}", row.next_check_at);
    assert!(row.lease_owner.is_none());

    // A check that started after the push answered it: the schedule takes over.
    let leased = store.lease_due_checks("i", Utc::now(), Utc::now() + chrono::Duration::minutes(5), 10).await.unwrap();
    assert_eq!(leased.len(), 1);
    let check = NewCheck { checked_at: Utc::now(), ..check };
    store.record_outcome(repo, &check, None, Some(("i", hour_later))).await.unwrap();
    let row = store.get_repository(repo).await.unwrap();
    assert_eq!((row.due_reason, row.next_check_at.map(|n| n.timestamp())), (None, Some(hour_later.timestamp())));
}

/// The scheduler reads a leased batch's credential once, before its checks start: a reason to
/// check again that arrived after that read (an edit of the credential, a push) is not what a
/// check that began later answered, since it ran with what was read before.
#[tokio::test]
async fn a_reason_after_the_checks_credential_was_read_keeps_the_repository_due() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    let repo = repository(&store, "read-early").await;
    store.lease_due_checks("i", Utc::now(), Utc::now() + chrono::Duration::minutes(5), 10).await.unwrap();
    let read_at = Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    store.apply_branch_push(repo, &[], None, Utc::now()).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let ok = Check::completed(vec![Step::pass(StepName::Url, "fine")]);
    let hour_later = Utc::now() + chrono::Duration::hours(1);
    // Began after the push, but with what was read before it.
    let one =
        OutcomeToRecord { lease: Some(("i", hour_later)), answers_since: read_at, ..scheduled(repo, &ok, Utc::now()) };
    let done = store.record_outcomes(std::slice::from_ref(&one)).await.unwrap();
    assert_eq!(done[0].lease_kept, Some(true));
    let row = store.get_repository(repo).await.unwrap();
    assert_eq!(row.due_reason, Some(CheckReason::Webhook), "the push still asks for its check");
    assert!(row.next_check_at.is_some_and(|n| n < hour_later), "due now, not in an hour: {:?}", row.next_check_at);
    assert!(row.lease_owner.is_none());
}

#[tokio::test]
async fn a_check_that_listed_the_remote_before_a_push_does_not_undo_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    let repo = repository(&store, "raced").await;
    record(&store, repo, &list("main", &[("main", "m1"), ("feature", "f1")])).await;

    // A check lists the remote (main at m1, feature still there); then a push deletes the
    // branch and moves main; then the check records what it listed.
    let started = Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let changes = [
        BranchChange { name: "feature".into(), commit: None },
        BranchChange { name: "main".into(), commit: Some("m2".into()) },
    ];
    store.apply_branch_push(repo, &changes, None, Utc::now()).await.unwrap();
    let ok = Check::completed(vec![Step::pass(StepName::Url, "fine")]);
    let stale = list("main", &[("main", "m1"), ("feature", "f1")]);
    let one = OutcomeToRecord { branches: Some(&stale), ..scheduled(repo, &ok, started) };
    store.record_outcomes(std::slice::from_ref(&one)).await.unwrap();
    assert_eq!(all(&store, repo).await, vec![("main".to_owned(), "m2".to_owned())], "the push's list stands");
    let head = store.branch_list_head(repo).await.unwrap().unwrap();
    assert_eq!(head.source, "webhook");
    assert_eq!(store.get_repository(repo).await.unwrap().due_reason, Some(CheckReason::Webhook), "still due");

    // A check that started after the push writes its list.
    record(&store, repo, &list("main", &[("main", "m3")])).await;
    assert_eq!(all(&store, repo).await, vec![("main".to_owned(), "m3".to_owned())]);
    assert_eq!(store.branch_list_head(repo).await.unwrap().unwrap().source, "check");
}
