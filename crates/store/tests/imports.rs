//! Bulk imports in the store, on SQLite and (with `BERTH_TEST_DATABASE=postgres`) PostgreSQL:
//! the listing and its counts, selection, items claimed under a lease, and what a stopped
//! instance leaves behind being taken again once its lease has passed.

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use berth_core::CredentialKind;
use berth_store::{Entity, ItemOutcome, NewCredential, NewImport, NewImportItem, Store, StoreError};
use berth_testkit::pg::test_database_url;
use chrono::{Duration, Utc};
use secrecy::SecretString;

type R = Result<(), Box<dyn std::error::Error>>;

fn item(full_name: &str, existing: Option<(i64, &str)>) -> NewImportItem {
    let slug = full_name.rsplit('/').next().unwrap().to_owned();
    NewImportItem {
        full_name: full_name.into(),
        name: slug.clone(),
        clone_url: format!("https://bitbucket.org/{full_name}.git"),
        slug,
        private: true,
        existing: existing.map(|(id, n)| (id, n.to_owned())),
    }
}

#[tokio::test]
async fn an_import_counts_claims_and_takes_back_what_a_stopped_instance_left() -> R {
    let dir = tempfile::tempdir()?;
    let store = Store::open(&test_database_url(dir.path()), &dir.path().join("master.key")).await?.0;
    let scopes = vec!["read:repository:bitbucket".to_owned()];
    let cred = store
        .create_credential(NewCredential {
            name: "bb",
            kind: CredentialKind::BitbucketApiToken,
            host: None,
            username: None,
            email: Some("jo@example.com"),
            expires_on: None,
            scopes: &scopes,
            secret: &SecretString::from("ATATT3xFfGF0-store-import-test"),
            app_id: None,
            installation_id: None,
            public_key: None,
            client_certificate: None,
        })
        .await?;
    let new = NewImport {
        credential_id: cred.id,
        credential_name: "bb".into(),
        source: "https://bitbucket.org/acme".into(),
        provider: "bitbucket-cloud".into(),
        created_by: "admin".into(),
    };
    let items = [item("acme/a", None), item("acme/b", None), item("acme/old", Some((7, "old"))), item("acme/a", None)];
    let imp = store.create_import(&new, &items).await?;
    assert_eq!(
        (imp.listed, imp.selected, imp.done, imp.state.as_str()),
        (3, 0, 0, "listed"),
        "a name listed twice is one item"
    );
    let rows = store.import_items(imp.id).await?;
    let id_of = |n: &str| rows.iter().find(|r| r.full_name == n).unwrap().id;
    let old = rows.iter().find(|r| r.full_name == "acme/old").unwrap();
    assert_eq!(
        (old.status.as_str(), old.code.as_deref(), old.existing_id),
        ("skipped", Some("already_registered"), Some(7))
    );

    let now = Utc::now();
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    assert_eq!(store.select_import_items(imp.id, &ids, now).await?, 2, "the registered one is not waiting");
    let imp = store.get_import(imp.id).await?;
    assert_eq!((imp.selected, imp.done, imp.skipped, imp.state.as_str()), (3, 1, 1, "registering"));

    // One claim wins; a second run (or instance) does not take the item while its lease lives.
    assert!(store.claim_import_item(id_of("acme/a"), now, now + Duration::minutes(5)).await?);
    assert!(!store.claim_import_item(id_of("acme/a"), now, now + Duration::minutes(5)).await?);
    assert!(store.claim_import_item(id_of("acme/b"), now, now + Duration::minutes(5)).await?);
    let done = ItemOutcome {
        status: "registered".into(),
        code: None,
        message: Some("registered as b".into()),
        remedy: None,
        repository: Some((42, "b".into())),
    };
    store.finish_import_item(id_of("acme/b"), &done).await?;
    assert!(!store.finish_import_if_idle(imp.id).await?, "acme/a is still registering");

    // The instance that held acme/a stopped: once the lease has passed, it is taken again.
    let later = now + Duration::minutes(6);
    assert!(store.claim_import_item(id_of("acme/a"), later, later + Duration::minutes(5)).await?);
    let failed = ItemOutcome {
        status: "failed".into(),
        code: Some("auth_failed".into()),
        message: Some("refused".into()),
        remedy: Some("check the token".into()),
        repository: None,
    };
    store.finish_import_item(id_of("acme/a"), &failed).await?;
    assert!(store.finish_import_if_idle(imp.id).await?);
    let imp = store.get_import(imp.id).await?;
    assert_eq!((imp.done, imp.registered, imp.failed, imp.skipped, imp.state.as_str()), (3, 1, 1, 1, "done"));

    // Selecting a failure again makes it pending (its old finding cleared); the rest stay.
    assert_eq!(store.select_import_items(imp.id, &[id_of("acme/a"), id_of("acme/b")], later).await?, 1);
    let a = store.import_items(imp.id).await?.into_iter().find(|r| r.full_name == "acme/a").unwrap();
    assert_eq!((a.status.as_str(), a.code), ("pending", None));
    assert!(matches!(store.get_import(imp.id + 100).await, Err(StoreError::NotFound(Entity::Import))));
    Ok(())
}
