//! Notifications in the store, on SQLite and (with `BERTH_TEST_DATABASE=postgres`)
//! PostgreSQL: events raised in the transaction of the change that caused them, once per
//! transition and only for channels whose subscription takes them; deliveries leased once by
//! one of two handles (two instances), retried when due, given up for good; expiry windows
//! announced once; a finished import's event.

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

mod common;

use berth_core::{Check, CheckReason, Code, Step, StepName};
use berth_store::{
    AttemptOutcome, AuthResult, ChannelPatch, ItemOutcome, NewChannel, NewCheck, NewEvent, NewImport, NewImportItem, NewRepository,
    Store,
};
use berth_testkit::pg::test_database_url;
use chrono::{Duration, Utc};
use secrecy::{ExposeSecret, SecretString};
use std::collections::HashSet;

type R = Result<(), Box<dyn std::error::Error>>;

/// Two handles on one database (two instances): the URL is made once, as on PostgreSQL
/// each call makes a fresh database.
async fn open_twice(dir: &std::path::Path) -> (Store, Store) {
    let url = test_database_url(dir);
    let a = Store::open(&url, &dir.join("master.key")).await.unwrap().0;
    let b = Store::open(&url, &dir.join("master.key")).await.unwrap().0;
    (a, b)
}

async fn open(dir: &std::path::Path) -> Store {
    open_twice(dir).await.0
}

use common::{credential, repository};

async fn channel(store: &Store, name: &str, events: &[&str], pattern: Option<&str>, cred: Option<i64>) -> i64 {
    let events: Vec<String> = events.iter().map(|e| (*e).to_owned()).collect();
    store
        .create_channel(NewChannel {
            name,
            kind: "webhook",
            settings: r#"{"kind":"webhook","url":"https://hooks.example.com/x"}"#,
            events: &events,
            repository_pattern: pattern,
            credential_id: cred,
            enabled: true,
            secret: &SecretString::from(format!("signing-secret-of-{name}")),
        })
        .await
        .unwrap()
        .id
}

fn check(ok: bool, auth: bool) -> Check {
    let step = match (ok, auth) {
        (true, _) => Step::pass(StepName::Url, "fine"),
        (false, true) => Step::fail(StepName::GitDiscovery, Code::AuthFailed, "refused", "replace the token"),
        (false, false) => Step::fail(StepName::GitDiscovery, Code::ConnectFailed, "no answer", "try later"),
    };
    Check::completed(vec![step])
}

async fn record(store: &Store, repo: i64, c: &Check, auth: Option<AuthResult>) {
    let new = NewCheck { check: c, reason: CheckReason::Manual, instance: "i", checked_at: Utc::now(), duration_ms: 1 };
    store.record_outcome(repo, &new, auth, None).await.unwrap();
}

/// (event kind, subject name) of every delivery of a channel, oldest first.
async fn log(store: &Store, channel: i64) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for d in store.list_deliveries(channel, 100).await.unwrap().into_iter().rev() {
        let e = store.get_event(d.event_id).await.unwrap();
        out.push((d.event_kind, e.event.subject_name));
    }
    out
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect()
}

#[tokio::test]
async fn transitions_raise_one_event_each_for_the_channels_that_take_them() -> R {
    let dir = tempfile::tempdir()?;
    let store = open(dir.path()).await;
    let ci = credential(&store, "ci").await;
    let other = credential(&store, "other").await;
    let app = repository(&store, "team-app", ci).await;
    let lib = repository(&store, "lib", other).await;
    let all = channel(&store, "all", &[], None, None).await;
    let team = channel(&store, "team", &["repository.failed"], Some("TEAM-*"), None).await;
    let by_cred = channel(&store, "other-cred", &[], None, Some(other)).await;
    assert_eq!(store.channel_secret(all).await?.expose_secret(), "signing-secret-of-all");

    // The first check of a repository is no transition; ok to fail is, fail to fail is not.
    for (repo, ok) in [(app, true), (lib, true), (app, false), (app, false), (lib, false), (app, true)] {
        record(&store, repo, &check(ok, false), None).await;
    }
    assert_eq!(
        log(&store, all).await,
        pairs(&[("repository.failed", "team-app"), ("repository.failed", "lib"), ("repository.recovered", "team-app")])
    );
    assert_eq!(log(&store, team).await, pairs(&[("repository.failed", "team-app")]));
    assert_eq!(log(&store, by_cred).await, pairs(&[("repository.failed", "lib")]));
    let failed = store.list_deliveries(all, 100).await?.pop().unwrap();
    let ev = store.get_event(failed.event_id).await?.event;
    assert_eq!(
        (ev.old_status.as_deref(), ev.new_status.as_deref(), ev.code.as_deref(), ev.remedy.as_deref()),
        (Some("ok"), Some("fail"), Some("connect_failed"), Some("try later"))
    );

    // An authentication failure that pauses the credential: its event once.
    let auth = |failed| AuthResult { credential_id: other, failed, pause_after: 2, now: Utc::now() };
    for _ in 0..3 {
        record(&store, lib, &check(false, true), Some(auth(true))).await;
    }
    let paused: Vec<_> =
        log(&store, by_cred).await.into_iter().filter(|(k, _)| k == "credential.checks_paused").collect();
    assert_eq!(paused, pairs(&[("credential.checks_paused", "other")]));

    // A disabled channel takes nothing; a test event goes to its one channel all the same.
    store.update_channel(team, ChannelPatch { enabled: Some(false), ..ChannelPatch::default() }).await?;
    record(&store, app, &check(false, false), None).await;
    assert_eq!(log(&store, team).await.len(), 1);
    let test =
        NewEvent { kind: "test".into(), subject: "channel".into(), subject_name: "team".into(), ..NewEvent::default() };
    assert_eq!(store.enqueue_event(&test, Some(team)).await?.len(), 1);
    assert_eq!(log(&store, team).await.last().map(|(k, _)| k.as_str()), Some("test"));
    store.delete_channel(team).await?;
    assert!(store.list_deliveries(team, 10).await?.is_empty(), "a channel's log goes with it");
    assert!(store.integrity_problems().await?.is_empty());
    Ok(())
}

/// A public repository checked without a credential has its failures and recoveries told like
/// any other (its status used to be read through the credential, which it has none of).
#[tokio::test]
async fn a_repository_without_a_credential_raises_its_transitions() -> R {
    let dir = tempfile::tempdir()?;
    let store = open(dir.path()).await;
    let public = store
        .create_repository(&NewRepository {
            name: "public-lib".into(),
            vcs: "git".into(),
            clone_url: "https://github.com/acme/public-lib.git".into(),
            repo_key: "github.com/acme/public-lib".into(),
            provider: "github".into(),
            default_branch: "main".into(),
            credential_id: None,
            next_check_at: None,
        })
        .await?
        .id;
    let all = channel(&store, "all", &[], None, None).await;
    for ok in [true, false, false, true] {
        record(&store, public, &check(ok, false), None).await;
    }
    assert_eq!(
        log(&store, all).await,
        pairs(&[("repository.failed", "public-lib"), ("repository.recovered", "public-lib")])
    );
    let failed = store.list_deliveries(all, 100).await?.pop().unwrap();
    assert_eq!(store.get_event(failed.event_id).await?.event.credential_id, None);
    Ok(())
}

#[tokio::test]
async fn deliveries_are_leased_once_retried_when_due_and_given_up() -> R {
    let dir = tempfile::tempdir()?;
    // A second handle on the same database stands for a second instance.
    let (a, b) = open_twice(dir.path()).await;
    let ch = channel(&a, "hook", &[], None, None).await;
    for i in 0..10 {
        let e = NewEvent {
            kind: "test".into(),
            subject: "channel".into(),
            subject_name: format!("e{i}"),
            ..NewEvent::default()
        };
        a.enqueue_event(&e, Some(ch)).await?;
    }
    let now = Utc::now() + Duration::seconds(1);
    let lease = now + Duration::seconds(60);
    let (got_a, got_b) =
        tokio::join!(a.lease_due_deliveries("a", now, lease, 6), b.lease_due_deliveries("b", now, lease, 6));
    let ids_a: HashSet<i64> = got_a?.iter().map(|l| l.delivery.id).collect();
    let ids_b: HashSet<i64> = got_b?.iter().map(|l| l.delivery.id).collect();
    assert!(ids_a.is_disjoint(&ids_b), "a delivery was leased twice");
    assert_eq!(ids_a.len() + ids_b.len(), 10);
    assert!(a.lease_due_deliveries("c", now, lease, 100).await?.is_empty(), "nothing is due while leased");

    let retry = now + Duration::seconds(30);
    for id in &ids_a {
        let failed = AttemptOutcome::Failed { status: Some(500), error: "HTTP 500".into(), retry_at: Some(retry) };
        assert!(a.finish_delivery(*id, "a", &failed).await?);
    }
    for id in &ids_b {
        assert!(!a.finish_delivery(*id, "a", &AttemptOutcome::Delivered { status: Some(200) }).await?, "not a's lease");
        assert!(b.finish_delivery(*id, "b", &AttemptOutcome::Delivered { status: Some(200) }).await?);
    }
    assert!(
        a.lease_due_deliveries("c", now + Duration::seconds(1), lease, 100).await?.is_empty(),
        "the retry is not due yet"
    );
    let again = a.lease_due_deliveries("c", retry, retry + Duration::seconds(60), 100).await?;
    assert_eq!(again.iter().map(|l| l.delivery.id).collect::<HashSet<_>>(), ids_a);
    assert!(again.iter().all(|l| l.delivery.attempts == 1 && l.delivery.last_status == Some(500)));
    for l in &again {
        let give_up = AttemptOutcome::Failed { status: None, error: "gone".into(), retry_at: None };
        a.finish_delivery(l.delivery.id, "c", &give_up).await?;
    }
    let states: Vec<(String, i64)> =
        a.list_deliveries(ch, 100).await?.into_iter().map(|d| (d.state, d.attempts)).collect();
    assert_eq!(states.iter().filter(|(s, n)| s == "failed" && *n == 2).count(), ids_a.len());
    assert_eq!(states.iter().filter(|(s, n)| s == "delivered" && *n == 1).count(), ids_b.len());
    assert!(a.lease_due_deliveries("c", retry + Duration::days(2), lease + Duration::days(2), 100).await?.is_empty());

    // Redelivery: the same event under a new delivery id, due at once.
    let old = a.get_delivery(*ids_a.iter().next().unwrap()).await?;
    let new = a.redeliver(old.id).await?;
    assert_eq!((new.event_id, new.state.as_str(), new.attempts), (old.event_id, "pending", 0));
    assert_ne!(new.delivery_uuid, old.delivery_uuid);

    // Pruning forgets settled events with their deliveries; the one redelivered is pending
    // again, so it stays, with both of its deliveries.
    assert_eq!(a.prune_notifications(Utc::now() - Duration::days(1)).await?, 0, "nothing is that old");
    assert_eq!(a.prune_notifications(Utc::now() + Duration::days(1)).await?, 9);
    let left: Vec<(i64, String)> =
        a.list_deliveries(ch, 100).await?.into_iter().map(|d| (d.event_id, d.state)).collect();
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(left.iter().all(|(e, _)| *e == old.event_id) && left.iter().any(|(_, s)| s == "pending"));
    Ok(())
}

#[tokio::test]
async fn expiry_windows_are_announced_once_and_a_finished_import_raises_its_event() -> R {
    let dir = tempfile::tempdir()?;
    let (a, b) = open_twice(dir.path()).await;
    let ci = credential(&a, "ci").await;
    let ch = channel(&a, "all", &[], None, None).await;
    let on = Utc::now().date_naive() + chrono::Days::new(5);
    let event = NewEvent {
        kind: "credential.expiring".into(),
        subject: "credential".into(),
        subject_id: Some(ci),
        subject_name: "ci".into(),
        credential_id: Some(ci),
        ..NewEvent::default()
    };
    let (x, y) = tokio::join!(a.announce_expiry(ci, on, "7d", &event), b.announce_expiry(ci, on, "7d", &event));
    assert_ne!(x?, y?, "exactly one of two instances announces a window");
    assert!(!a.announce_expiry(ci, on, "7d", &event).await?);
    assert!(a.announce_expiry(ci, on, "1d", &event).await?, "the next window is its own");
    assert!(a.announce_expiry(ci, on + chrono::Days::new(90), "7d", &event).await?, "a renewed token's windows");
    assert_eq!(log(&a, ch).await.len(), 3);

    let imp = a
        .create_import(
            &NewImport {
                credential_id: ci,
                credential_name: "ci".into(),
                source: "https://bitbucket.org/acme".into(),
                provider: "bitbucket-cloud".into(),
                created_by: "admin".into(),
            },
            &[NewImportItem {
                full_name: "acme/a".into(),
                slug: "a".into(),
                name: "a".into(),
                clone_url: "https://bitbucket.org/acme/a.git".into(),
                private: true,
                existing: None,
            }],
        )
        .await?;
    let item = a.import_items(imp.id).await?[0].id;
    let now = Utc::now();
    a.select_import_items(imp.id, &[item], now).await?;
    a.claim_import_item(item, now, now + Duration::minutes(5)).await?;
    let outcome = ItemOutcome {
        status: "registered".into(),
        code: None,
        message: None,
        remedy: None,
        repository: Some((1, "a".into())),
    };
    a.finish_import_item(item, &outcome).await?;
    let (x, y) = tokio::join!(a.finish_import_if_idle(imp.id), b.finish_import_if_idle(imp.id));
    assert_ne!(x?, y?, "one instance finishes the import");
    let last = a.list_deliveries(ch, 1).await?.remove(0);
    let ev = a.get_event(last.event_id).await?.event;
    assert_eq!((ev.kind.as_str(), ev.subject_name.as_str()), ("import.finished", "https://bitbucket.org/acme"));
    let details: serde_json::Value = serde_json::from_str(&ev.details)?;
    assert_eq!((details["selected"].as_i64(), details["registered"].as_i64()), (Some(1), Some(1)));
    Ok(())
}
