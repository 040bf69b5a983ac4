//! The store against a real database: SQLite by default, PostgreSQL with
//! `BERTH_TEST_DATABASE=postgres` (a private cluster started by the test kit). Secrets sealed
//! at rest, wrong keys refused without writing, rotation, uniqueness and reference rules, and
//! the background-check schedule: leases, history and the authentication-failure pause.

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use berth_core::{Check, CheckReason, CheckStatus, Code, CredentialKind, Step, StepName};
use berth_store::{
    AuditFilter, AuthResult, CredentialPatch, Dialect, Entity, ExistingRepo, NewAudit, NewCheck, NewCredential,
    NewRepository, Store, StoreError, VaultError,
};
use berth_testkit::pg::test_database_url;
use chrono::{Duration, Utc};
use secrecy::{ExposeSecret, SecretString};
use std::collections::HashSet;
use std::path::Path;

type R = Result<(), Box<dyn std::error::Error>>;

const SECRET: &str = "ATATT3xFfGF0-known-plaintext-secret-7f3a";

/// A database (SQLite file or PostgreSQL database) and a directory for its key files.
struct Fixture {
    dir: tempfile::TempDir,
    url: String,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let url = test_database_url(dir.path());
        Fixture { dir, url }
    }

    async fn open(&self, key: &str) -> Result<Store, StoreError> {
        Ok(Store::open(&self.url, &self.dir.path().join(key)).await?.0)
    }
}

async fn add_credential(store: &Store, name: &str, secret: &str) -> Result<i64, StoreError> {
    let scopes = vec!["read:repository:bitbucket".to_owned()];
    let row = store
        .create_credential(NewCredential {
            name,
            kind: CredentialKind::BitbucketApiToken,
            host: Some("https://bitbucket.org"),
            username: None,
            email: Some("jo@example.com"),
            expires_on: None,
            scopes: &scopes,
            secret: &SecretString::from(secret),
            app_id: None,
            installation_id: None,
            public_key: None,
            client_certificate: None,
        })
        .await?;
    Ok(row.id)
}

fn repo(name: &str, credential_id: i64) -> NewRepository {
    NewRepository {
        name: name.into(),
        vcs: "git".into(),
        clone_url: format!("https://bitbucket.org/ws/{name}.git"),
        repo_key: format!("bitbucket-cloud:ws/{name}"),
        provider: "bitbucket-cloud".into(),
        default_branch: "main".into(),
        credential_id: Some(credential_id),
        next_check_at: None,
    }
}

fn files_contain(dir: &Path, needle: &[u8]) -> Result<bool, std::io::Error> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_file() {
            let bytes = std::fs::read(&path)?;
            if bytes.windows(needle.len()).any(|w| w == needle) {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

#[tokio::test]
async fn a_verification_of_a_replaced_secret_is_not_recorded() -> R {
    let fx = Fixture::new();
    let store = fx.open("master.key").await?;
    let id = add_credential(&store, "ci", SECRET).await?;
    let seen = store.get_credential(id).await?;
    assert_eq!((seen.host.as_deref(), seen.verification.as_deref()), (Some("https://bitbucket.org"), None));
    assert!(store.record_credential_verification(id, seen.secret_updated_at, r#"{"status":"ok"}"#).await?);
    assert_eq!(store.get_credential(id).await?.verification.as_deref(), Some(r#"{"status":"ok"}"#));
    // The token is replaced while a verification of the old one is under way: its verdict is
    // about a token that is gone, and is dropped.
    store
        .update_credential(id, CredentialPatch { secret: Some(SecretString::from("new")), ..Default::default() })
        .await?;
    assert!(!store.record_credential_verification(id, seen.secret_updated_at, r#"{"status":"fail"}"#).await?);
    assert_eq!(store.get_credential(id).await?.verification.as_deref(), Some(r#"{"status":"ok"}"#));
    // Host: set, kept by other edits, cleared on request.
    store.update_credential(id, CredentialPatch { name: Some("ci2".into()), ..Default::default() }).await?;
    assert_eq!(store.get_credential(id).await?.host.as_deref(), Some("https://bitbucket.org"));
    store.update_credential(id, CredentialPatch { host: Some(None), ..Default::default() }).await?;
    assert_eq!(store.get_credential(id).await?.host, None);
    Ok(())
}

#[tokio::test]
async fn database_holds_no_plaintext_secret() -> R {
    let fx = Fixture::new();
    let store = fx.open("master.key").await?;
    let id = add_credential(&store, "ci", SECRET).await?;
    store
        .update_credential(
            id,
            CredentialPatch { secret: Some(SecretString::from(format!("{SECRET}-rotated"))), ..Default::default() },
        )
        .await?;
    assert_eq!(store.credential_secret(id).await?.expose_secret(), format!("{SECRET}-rotated"));
    store.close().await;
    if store.dialect() == Dialect::Sqlite {
        // The WAL is checkpointed on close; check the main file and any leftover WAL/SHM alike.
        assert!(!files_contain(fx.dir.path(), SECRET.as_bytes())?);
        assert!(!files_contain(fx.dir.path(), b"known-plaintext")?);
    }
    Ok(())
}

/// What a wrong key must not change: every sealed column and the schema version.
async fn fingerprint(store: &Store) -> Vec<String> {
    let mut out = Vec::new();
    for c in store.list_credentials().await.unwrap() {
        out.push(format!("{} {} {}", c.id, c.name, c.updated_at));
    }
    out.push(format!("users={}", store.count_users().await.unwrap()));
    out
}

#[tokio::test]
async fn wrong_master_key_fails_and_changes_nothing() -> R {
    let fx = Fixture::new();
    let store = fx.open("master.key").await?;
    add_credential(&store, "ci", SECRET).await?;
    let before_rows = fingerprint(&store).await;
    let sqlite = store.dialect() == Dialect::Sqlite;
    if sqlite {
        // Fold the WAL into the main file so that the file alone shows any later change.
        store.execute_unchecked("PRAGMA wal_checkpoint(TRUNCATE)", &[]).await?;
    }
    store.close().await;
    let digest =
        |p: &Path| std::fs::read(p).map(|b| (b.len(), b.iter().fold(0u64, |h, x| h.rotate_left(5) ^ u64::from(*x))));
    let db = fx.dir.path().join("berth.db");
    let before = if sqlite { Some(digest(&db)?) } else { None };
    // A missing key file is not replaced by a fresh one.
    let err = fx.open("other.key").await.err();
    assert!(matches!(err, Some(StoreError::Vault(VaultError::Keyring(_)))), "{err:?}");
    assert!(!fx.dir.path().join("other.key").exists());
    // Another database's key file is refused.
    let other = Fixture::new();
    other.open("master.key").await?.close().await;
    std::fs::copy(other.dir.path().join("master.key"), fx.dir.path().join("other.key"))?;
    let err = fx.open("other.key").await.err();
    assert!(matches!(err, Some(StoreError::Vault(VaultError::UnknownKey { .. }))), "{err:?}");
    if let Some(before) = before {
        assert_eq!(digest(&db)?, before, "the database file changed");
    }
    let store = fx.open("master.key").await?;
    assert_eq!(fingerprint(&store).await, before_rows, "the rows changed");
    Ok(())
}

/// Maintenance opens only a database that exists and is Berth's: a missing SQLite file or a
/// database with no vault is refused, and nothing (file, key, table) is created to find out.
#[tokio::test]
async fn open_existing_refuses_where_there_is_no_berth_database_and_creates_nothing() -> R {
    let f = Fixture::new();
    let key = f.dir.path().join("master.key");
    let refused = Store::open_existing(&f.url, &key).await;
    assert!(matches!(refused, Err(StoreError::NoDatabase(_))), "{:?}", refused.err());
    assert!(!key.exists(), "a key file was created");
    if !f.url.starts_with("postgres") {
        assert_eq!(std::fs::read_dir(f.dir.path())?.count(), 0, "a file was created");
        // An empty file is no Berth database either.
        let path = f.dir.path().join("berth.db");
        std::fs::write(&path, b"")?;
        assert!(matches!(Store::open_existing(&f.url, &key).await, Err(StoreError::NoDatabase(_))));
        assert!(!key.exists(), "a key file was created");
        std::fs::remove_file(&path)?;
        for extra in ["berth.db-wal", "berth.db-shm"] {
            let _ = std::fs::remove_file(f.dir.path().join(extra));
        }
    }
    // Once the server has created it, maintenance opens it with the same key.
    let store = f.open("master.key").await?;
    let id = add_credential(&store, "ci", SECRET).await?;
    store.close().await;
    let again = Store::open_existing(&f.url, &key).await?;
    assert_eq!(again.credential_secret(id).await?.expose_secret(), SECRET);
    Ok(())
}

#[tokio::test]
async fn rotation_rewraps_every_secret() -> R {
    let fx = Fixture::new();
    let store = fx.open("master.key").await?;
    let a = add_credential(&store, "a", "secret-a").await?;
    let b = add_credential(&store, "b", "secret-b").await?;
    store.vault().add_master_key()?;
    assert_eq!(store.rewrap_all().await?, 2);
    store.vault().retire_old_keys()?;
    store.close().await;
    let store = fx.open("master.key").await?;
    assert_eq!(store.credential_secret(a).await?.expose_secret(), "secret-a");
    assert_eq!(store.credential_secret(b).await?.expose_secret(), "secret-b");
    assert_eq!(store.vault().key_ids().len(), 1);
    Ok(())
}

#[tokio::test]
async fn a_credential_client_key_is_sealed_rotated_removed_and_deleted_with_it() -> R {
    const KEY: &str = "-----BEGIN PRIVATE KEY-----\nclient-key-known-plaintext-5e1c\n-----END PRIVATE KEY-----\n";
    let fx = Fixture::new();
    let store = fx.open("master.key").await?;
    let id = add_credential(&store, "a", "secret-a").await?;
    assert!(store.credential_client_key(id).await?.is_none());
    let not_after = Utc::now() + Duration::days(30);
    let cert = |pem: &str| berth_store::NewClientCertificate {
        pem: pem.to_owned(),
        subject: "CN=jo".to_owned(),
        not_after,
        key: SecretString::from(KEY),
    };
    let before = store.get_credential(id).await?.secret_updated_at;
    let row = store
        .update_credential(id, CredentialPatch { client_certificate: Some(Some(cert("CERT-1"))), ..Default::default() })
        .await?;
    let shown = row.client_certificate.expect("stored");
    assert_eq!((shown.pem.as_str(), shown.subject.as_str()), ("CERT-1", "CN=jo"));
    assert_eq!(shown.not_after.timestamp(), not_after.timestamp());
    assert!(row.secret_updated_at > before, "a new certificate is a new way to sign in");
    assert_eq!(store.credential_client_key(id).await?.map(|k| k.expose_secret().to_owned()).as_deref(), Some(KEY));
    // Replaced in place (one sealed row per credential), rewrapped with the rest on rotation.
    store
        .update_credential(id, CredentialPatch { client_certificate: Some(Some(cert("CERT-2"))), ..Default::default() })
        .await?;
    store.vault().add_master_key()?;
    assert_eq!(store.rewrap_all().await?, 2, "the credential's secret and its client key");
    store.vault().retire_old_keys()?;
    store.close().await;
    let store = fx.open("master.key").await?;
    assert_eq!(store.credential_client_key(id).await?.map(|k| k.expose_secret().to_owned()).as_deref(), Some(KEY));
    if store.dialect() == Dialect::Sqlite {
        assert!(!files_contain(fx.dir.path(), b"client-key-known-plaintext")?);
    }
    // Removed with `Some(None)`; deleted with the credential.
    let row =
        store.update_credential(id, CredentialPatch { client_certificate: Some(None), ..Default::default() }).await?;
    assert!(row.client_certificate.is_none());
    assert!(store.credential_client_key(id).await?.is_none());
    store
        .update_credential(id, CredentialPatch { client_certificate: Some(Some(cert("CERT-3"))), ..Default::default() })
        .await?;
    store.delete_credential(id).await?;
    assert!(store.credential_client_key(id).await?.is_none());
    Ok(())
}

#[tokio::test]
async fn swapped_ciphertext_rows_do_not_open() -> R {
    let fx = Fixture::new();
    let store = fx.open("master.key").await?;
    let a = add_credential(&store, "a", "secret-a").await?;
    let b = add_credential(&store, "b", "secret-b").await?;
    store
        .execute_unchecked(
            "UPDATE credentials SET ciphertext = (SELECT ciphertext FROM credentials WHERE id = $1), \
             wrapped_key = (SELECT wrapped_key FROM credentials WHERE id = $1) WHERE id = $2",
            &[a, b],
        )
        .await?;
    assert!(matches!(store.credential_secret(b).await, Err(StoreError::Vault(VaultError::Tampered { .. }))));
    Ok(())
}

#[tokio::test]
async fn credentials_in_use_and_duplicates() -> R {
    let fx = Fixture::new();
    let store = fx.open("master.key").await?;
    let id = add_credential(&store, "ci", "s").await?;
    // Names are unique whatever their case, on both databases.
    assert!(matches!(
        add_credential(&store, "CI", "s").await,
        Err(StoreError::NameTaken { what: Entity::Credential, name }) if name == "CI"
    ));
    assert_eq!(store.find_credential("Ci").await?.id, id);
    let created = store.create_repository(&repo("app", id)).await?;
    let again = store.create_repository(&NewRepository { name: "app2".into(), ..repo("app", id) }).await;
    match again {
        Err(StoreError::RepoKeyTaken { existing }) => assert_eq!(
            existing,
            ExistingRepo { id: created.id, name: "app".to_owned(), clone_url: created.clone_url.clone() }
        ),
        other => panic!("expected already_registered, got {other:?}"),
    }
    let same_name = store
        .create_repository(&NewRepository {
            repo_key: "bitbucket-cloud:ws/other".into(),
            name: "APP".into(),
            ..repo("app", id)
        })
        .await;
    assert!(
        matches!(&same_name, Err(StoreError::NameTaken { what: Entity::Repository, name }) if name == "APP"),
        "{same_name:?}"
    );
    match store.delete_credential(id).await {
        Err(StoreError::CredentialInUse { repositories }) => {
            assert_eq!(repositories, vec![(created.id, "app".to_owned())])
        }
        other => panic!("expected credential_in_use, got {other:?}"),
    }
    store.delete_repository(created.id).await?;
    store.delete_credential(id).await?;
    assert!(store.integrity_problems().await?.is_empty());
    Ok(())
}

/// Credential templates: one row per prefix, longest first, pointing at a credential that
/// exists, which cannot be deleted while a template uses it.
#[tokio::test]
async fn templates_are_unique_per_prefix_and_keep_their_credential() -> R {
    let f = Fixture::new();
    let store = f.open("master.key").await?;
    let ci = add_credential(&store, "ci", SECRET).await?;
    let other = add_credential(&store, "other", SECRET).await?;
    let wide = store.create_template("https://bitbucket.org/", ci, "admin").await?;
    let acme = store.create_template("https://bitbucket.org/acme/", ci, "admin").await?;
    assert_eq!(acme.credential_name, "ci");
    assert_eq!(acme.created_by, "admin");
    let listed: Vec<String> = store.list_templates().await?.into_iter().map(|t| t.url_prefix).collect();
    assert_eq!(listed, ["https://bitbucket.org/acme/", "https://bitbucket.org/"]);
    let again = store.create_template("https://bitbucket.org/acme/", other, "admin").await;
    assert!(
        matches!(&again, Err(StoreError::TemplateExists { prefix }) if prefix == "https://bitbucket.org/acme/"),
        "{again:?}"
    );
    let ghost = store.create_template("https://github.com/", 987_654, "admin").await;
    assert!(matches!(ghost, Err(StoreError::NotFound(Entity::Credential))), "{ghost:?}");
    match store.delete_credential(ci).await {
        Err(StoreError::CredentialInTemplates { templates }) => assert_eq!(templates.len(), 2, "{templates:?}"),
        other => panic!("expected the templates that use it, got {other:?}"),
    }
    let moved = store.set_template_credential(acme.id, other).await?;
    assert_eq!(moved.credential_name, "other");
    assert!(matches!(
        store.set_template_credential(acme.id, 987_654).await,
        Err(StoreError::NotFound(Entity::Credential))
    ));
    assert!(store.find_template_by_prefix("https://bitbucket.org/acme/").await?.is_some());
    store.delete_template(wide.id).await?;
    assert!(matches!(store.delete_template(wide.id).await, Err(StoreError::NotFound(Entity::Template))));
    store.delete_credential(ci).await?;
    assert!(store.integrity_problems().await?.is_empty());
    Ok(())
}

fn check(ok: bool) -> Check {
    let step = if ok {
        Step::pass(StepName::Url, "fine")
    } else {
        Step::fail(StepName::GitDiscovery, Code::AuthFailed, "no", "fix it")
    };
    Check::completed(vec![step])
}

#[tokio::test]
async fn a_due_check_is_leased_once_and_an_expired_lease_is_taken_over() -> R {
    let fx = Fixture::new();
    let a = fx.open("master.key").await?;
    // A second handle on the same database stands for a second instance.
    let b = fx.open("master.key").await?;
    let cred = add_credential(&a, "ci", "s").await?;
    for i in 0..20 {
        a.create_repository(&repo(&format!("r{i}"), cred)).await?;
    }
    let later = a
        .create_repository(&NewRepository {
            next_check_at: Some(Utc::now() + Duration::hours(1)),
            ..repo("later", cred)
        })
        .await?;
    let now = Utc::now();
    let lease = now + Duration::seconds(60);
    let (got_a, got_b) = tokio::join!(a.lease_due_checks("a", now, lease, 15), b.lease_due_checks("b", now, lease, 15));
    let (got_a, got_b) = (got_a?, got_b?);
    let ids_a: HashSet<i64> = got_a.iter().map(|r| r.id).collect();
    let ids_b: HashSet<i64> = got_b.iter().map(|r| r.id).collect();
    assert!(ids_a.is_disjoint(&ids_b), "a check was leased twice");
    assert!(got_a.len() <= 15 && got_b.len() <= 15, "a lease takes at most its limit: {} and {}", got_a.len(), got_b.len());
    assert_eq!(ids_a.len() + ids_b.len(), 20, "every due check is leased, the later one is not");
    assert!(!ids_a.contains(&later.id) && !ids_b.contains(&later.id));
    // Nothing is due while the leases live.
    assert!(a.lease_due_checks("c", now, lease, 100).await?.is_empty());
    // "a" finishes its checks; "b" dies without finishing.
    let next = now + Duration::hours(1);
    for id in &ids_a {
        assert!(a.finish_lease(*id, "a", next).await?);
    }
    // After b's leases expire, another instance takes those checks over, and b can no
    // longer finish them.
    let after = lease + Duration::seconds(1);
    let taken: HashSet<i64> =
        a.lease_due_checks("c", after, after + Duration::seconds(60), 100).await?.iter().map(|r| r.id).collect();
    assert_eq!(taken, ids_b);
    for id in &ids_b {
        assert!(!b.finish_lease(*id, "b", next).await?, "a lost lease must not finish");
        assert!(a.finish_lease(*id, "c", next).await?);
    }
    // Released leases are due again at once.
    let again = a.lease_due_checks("d", next, next + Duration::seconds(60), 3).await?;
    assert_eq!(again.len(), 3);
    a.release_leases("d", &again.iter().map(|r| r.id).collect::<Vec<_>>(), None).await?;
    assert_eq!(a.lease_due_checks("e", next, next + Duration::seconds(60), 100).await?.len(), 21);
    Ok(())
}

#[tokio::test]
async fn a_check_that_outlasted_its_lease_is_kept_but_leaves_the_new_lease_alone() -> R {
    let fx = Fixture::new();
    let store = fx.open("master.key").await?;
    let cred = add_credential(&store, "ci", "s").await?;
    let id = store.create_repository(&repo("slow", cred)).await?.id;
    let now = Utc::now();
    let lease = now + Duration::seconds(60);
    assert_eq!(store.lease_due_checks("a", now, lease, 10).await?.len(), 1);
    // "a" runs past its lease; "b" takes the check over.
    let after = lease + Duration::seconds(1);
    assert_eq!(store.lease_due_checks("b", after, after + Duration::seconds(60), 10).await?.len(), 1);
    let failed = Check::completed(vec![Step::fail(StepName::Connect, Code::ConnectFailed, "refused", "start it")]);
    let check =
        NewCheck { check: &failed, reason: CheckReason::Schedule, instance: "a", checked_at: now, duration_ms: 1 };
    let next = now + Duration::hours(1);
    let done = store.record_outcome(id, &check, None, Some(("a", next))).await?;
    assert_eq!(done.lease_kept, Some(false), "a's lease was lost");
    let row = store.get_repository(id).await?;
    assert_eq!(row.lease_owner.as_deref(), Some("b"), "b's lease stands");
    assert_ne!(row.next_check_at.map(|n| n.timestamp()), Some(next.timestamp()), "a did not reschedule it");
    assert_eq!(row.status, "fail", "a's result is kept and shown");
    // b finishes under its own lease.
    assert!(store.finish_lease(id, "b", next).await?);
    Ok(())
}

#[tokio::test]
async fn an_authentication_failure_with_a_credential_read_before_its_edit_is_not_counted() -> R {
    let fx = Fixture::new();
    let store = fx.open("master.key").await?;
    let cred = add_credential(&store, "ci", "old").await?;
    let id = store.create_repository(&repo("app", cred)).await?.id;
    let read_at = Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    store
        .update_credential(cred, CredentialPatch { secret: Some(SecretString::from("new")), ..Default::default() })
        .await?;
    let refused = Check::completed(vec![Step::fail(StepName::GitDiscovery, Code::AuthFailed, "refused", "renew it")]);
    let auth = AuthResult { credential_id: cred, failed: true, pause_after: 1, now: Utc::now() };
    let stale = berth_store::OutcomeToRecord { answers_since: read_at, ..outcome(id, &refused, auth, Utc::now()) };
    let done = store.record_outcomes(std::slice::from_ref(&stale)).await?;
    assert!(done[0].auth.is_none(), "the old token's failure is not counted");
    let row = store.get_credential(cred).await?;
    assert_eq!((row.auth_failures, row.checks_paused_at), (0, None), "the edited credential is not paused");
    // A check that read the edited credential counts, and pauses at the threshold of one.
    let fresh = outcome(id, &refused, AuthResult { now: Utc::now(), ..auth }, Utc::now());
    let done = store.record_outcomes(std::slice::from_ref(&fresh)).await?;
    assert!(done[0].auth.is_some_and(|a| a.paused_now));
    Ok(())
}

/// A scheduled check to record in a batch, handing its lease back with the next due time.
fn outcome(id: i64, c: &Check, auth: AuthResult, next: chrono::DateTime<Utc>) -> berth_store::OutcomeToRecord<'_> {
    berth_store::OutcomeToRecord {
        repository_id: id,
        check: NewCheck {
            check: c,
            reason: CheckReason::Schedule,
            instance: "i",
            checked_at: auth.now,
            duration_ms: 1,
        },
        auth: Some(auth),
        lease: Some(("i", next)),
        answers_since: auth.now,
        branches: None,
    }
}

/// `n` new repositories of credential `cred`, all leased to instance `i`, and when.
async fn leased_repositories(
    store: &Store,
    cred: i64,
    n: usize,
) -> Result<(Vec<i64>, chrono::DateTime<Utc>), StoreError> {
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(store.create_repository(&repo(&format!("r{i:02}"), cred)).await?.id);
    }
    let now = Utc::now();
    let leased = store.lease_due_checks("i", now, now + Duration::seconds(60), i64::try_from(n + 10).unwrap()).await?;
    assert_eq!(leased.len(), n, "every new repository is due and leased");
    Ok((ids, now))
}

#[tokio::test]
async fn a_batch_of_outcomes_is_recorded_all_or_none_and_counted() -> R {
    let fx = Fixture::new();
    let store = fx.open("master.key").await?;
    let cred = add_credential(&store, "ci", "s").await?;
    let (ids, now) = leased_repositories(&store, cred, 3).await?;
    let mark = store.last_check_id().await?;
    let (pass, fail) = (check(true), check(false));
    let next = now + Duration::hours(1);
    let item = |id: i64, c, failed: bool| {
        outcome(id, c, AuthResult { credential_id: cred, failed, pause_after: 2, now }, next)
    };
    let (pass, fail) = (&pass, &fail);
    // A batch naming a repository that is gone writes nothing at all.
    let gone = store.create_repository(&repo("gone", cred)).await?.id;
    store.delete_repository(gone).await?;
    assert!(store.record_outcomes(&[item(ids[0], pass, false), item(gone, pass, false)]).await.is_err());
    assert_eq!(store.last_check_id().await?, mark, "nothing of a failed batch is kept");
    // A whole batch: one result per check in order, the authentication count adding up in
    // order (the second failure in a row pauses), every lease handed back.
    let done =
        store.record_outcomes(&[item(ids[0], fail, true), item(ids[1], fail, true), item(ids[2], pass, false)]).await?;
    assert_eq!(done.len(), 3);
    assert_eq!(done.iter().map(|d| d.lease_kept).collect::<Vec<_>>(), vec![Some(true); 3]);
    assert_eq!(done[0].auth.map(|a| (a.failures, a.paused_now)), Some((1, false)));
    assert_eq!(done[1].auth.map(|a| (a.failures, a.paused_now)), Some((2, true)));
    assert_eq!(done[2].auth.map(|a| a.failures), Some(0));
    assert!(done[0].check_id < done[1].check_id && done[1].check_id < done[2].check_id);
    for id in &ids {
        let r = store.get_repository(*id).await?;
        let due_in = r.next_check_at.map(|t| (t - next).num_milliseconds().abs());
        assert!(r.lease_owner.is_none() && due_in.is_some_and(|ms| ms < 1000), "{r:?}");
    }
    let mut counts = store.check_counts_since(mark).await?;
    counts.sort_by_key(|c| c.repository_id);
    assert_eq!(
        counts.iter().map(|c| (c.repository_id, c.checks, c.failed)).collect::<Vec<_>>(),
        vec![(ids[0], 1, 1), (ids[1], 1, 1), (ids[2], 1, 0)]
    );
    assert_eq!(store.check_counts_by_instance_since(mark).await?, vec![("i".to_owned(), 3)]);
    assert!(store.check_counts_since(store.last_check_id().await?).await?.is_empty());
    Ok(())
}

/// A batch larger than one multi-row statement, mixing checks that hand a lease back with one
/// that has none, a branch list, and a repository checked twice: each repository ends as if its
/// checks had been recorded one by one.
#[tokio::test]
async fn a_large_mixed_batch_ends_as_if_its_checks_came_one_by_one() -> R {
    let fx = Fixture::new();
    let store = fx.open("master.key").await?;
    let cred = add_credential(&store, "ci", "s").await?;
    let (ids, now) = leased_repositories(&store, cred, 70).await?;
    let mark = store.last_check_id().await?;
    let (pass, fail) = (check(true), check(false));
    let next = now + Duration::hours(1);
    let list = berth_store::BranchList {
        default_branch: Some("main".to_owned()),
        branches: vec![berth_store::BranchEntry { name: "main".to_owned(), commit: "a".repeat(40) }],
    };
    let auth = |failed: bool| AuthResult { credential_id: cred, failed, pause_after: 100, now };
    let mut batch: Vec<_> = ids.iter().map(|id| outcome(*id, &pass, auth(false), next)).collect();
    batch[5] = outcome(ids[5], &fail, auth(true), next);
    batch[7].branches = Some(&list);
    // A person's re-check of the first repository, recorded in the same batch: no lease.
    let mut again = outcome(ids[0], &fail, auth(true), next);
    again.lease = None;
    batch.push(again);
    let done = store.record_outcomes(&batch).await?;
    assert_eq!(done.len(), 71);
    let check_ids: HashSet<i64> = done.iter().map(|d| d.check_id).collect();
    assert_eq!(check_ids.len(), 71, "each check has its own history row");
    assert!(done.windows(2).all(|w| w[0].check_id < w[1].check_id), "kept in the order of the batch");
    assert_eq!(done[70].lease_kept, None, "no lease to hand back");
    assert!(done[..70].iter().all(|d| d.lease_kept == Some(true)));
    // The failures count in order: two (the 6th check, then the re-check), reset in between.
    assert_eq!(done[5].auth.map(|a| a.failures), Some(1));
    assert_eq!(done[6].auth.map(|a| a.failures), Some(0));
    assert_eq!(done[70].auth.map(|a| a.failures), Some(1));
    for (i, id) in ids.iter().enumerate() {
        let r = store.get_repository(*id).await?;
        let want = if i == 0 || i == 5 { "fail" } else { "ok" };
        assert_eq!(r.status, want, "repository {i}");
        let due_in = r.next_check_at.map(|t| (t - next).num_milliseconds().abs());
        assert!(r.lease_owner.is_none() && due_in.is_some_and(|ms| ms < 1000), "repository {i}: {r:?}");
    }
    let head = store.branch_list_head(ids[7]).await?.expect("the listed branches are kept");
    assert_eq!((head.default_branch.as_deref(), head.branch_count), (Some("main"), 1));
    assert!(store.branch_list_head(ids[8]).await?.is_none());
    let counts = store.check_counts_since(mark).await?;
    assert_eq!(counts.len(), 70);
    assert!(counts.iter().all(|c| c.checks == if c.repository_id == ids[0] { 2 } else { 1 }));
    Ok(())
}

#[tokio::test]
async fn authentication_failures_pause_a_credential_until_it_is_edited() -> R {
    let fx = Fixture::new();
    let store = fx.open("master.key").await?;
    let cred = add_credential(&store, "ci", "s").await?;
    let r = store.create_repository(&repo("app", cred)).await?;
    let now = Utc::now();
    // One recorded check with its authentication verdict, as the scheduler records it.
    let verdict = |failed: bool| {
        let (store, c) = (&store, check(!failed));
        async move {
            // Each check reads the credential as it starts: after an edit, the edited one.
            let new = NewCheck {
                check: &c,
                reason: CheckReason::Schedule,
                instance: "i",
                checked_at: Utc::now(),
                duration_ms: 1,
            };
            let auth = AuthResult { credential_id: cred, failed, pause_after: 3, now };
            store.record_outcome(r.id, &new, Some(auth), None).await.map(|o| o.auth.expect("counted"))
        }
    };
    assert_eq!(verdict(true).await?.failures, 1);
    assert!(!verdict(true).await?.paused_now);
    let third = verdict(true).await?;
    assert!(third.paused_now && third.failures == 3, "{third:?}");
    assert!(!verdict(true).await?.paused_now, "paused once");
    assert!(store.get_credential(cred).await?.checks_paused_at.is_some());
    // A paused credential's repositories are not polled.
    let later = now + Duration::hours(2);
    assert!(store.lease_due_checks("i", later, later + Duration::seconds(60), 10).await?.is_empty());
    // Editing the credential resumes them at once.
    store
        .update_credential(cred, CredentialPatch { secret: Some(SecretString::from("new")), ..Default::default() })
        .await?;
    let c = store.get_credential(cred).await?;
    assert!(c.checks_paused_at.is_none() && c.auth_failures == 0);
    let due = store.lease_due_checks("i", Utc::now() + Duration::seconds(1), later, 10).await?;
    assert_eq!(due.iter().map(|x| x.id).collect::<Vec<_>>(), vec![r.id]);
    // A success resets the count.
    verdict(true).await?;
    verdict(false).await?;
    assert_eq!(store.get_credential(cred).await?.auth_failures, 0);
    Ok(())
}

#[tokio::test]
async fn check_history_is_kept_newest_first_and_pruned() -> R {
    let fx = Fixture::new();
    let store = fx.open("master.key").await?;
    let cred = add_credential(&store, "ci", "s").await?;
    let r = store.create_repository(&repo("app", cred)).await?;
    let old = Utc::now() - Duration::days(40);
    for (i, ok) in [true, false, true].into_iter().enumerate() {
        let c = check(ok);
        let at = old + Duration::days(i64::try_from(i).unwrap() * 15);
        store
            .record_check(
                r.id,
                &NewCheck { check: &c, reason: CheckReason::Schedule, instance: "i1", checked_at: at, duration_ms: 7 },
            )
            .await?;
    }
    let h = store.check_history(r.id, None, 10).await?;
    assert_eq!(
        h.iter().map(|c| c.status).collect::<Vec<_>>(),
        vec![CheckStatus::Ok, CheckStatus::Fail, CheckStatus::Ok]
    );
    assert_eq!(h[1].code, Code::AuthFailed);
    assert_eq!(h[0].reason, CheckReason::Schedule);
    assert_eq!(h[0].instance, "i1");
    assert_eq!(store.check_history(r.id, Some(h[0].id), 10).await?.len(), 2);
    assert_eq!(store.last_check_summaries().await?.get(&r.id).map(|c| c.id), Some(h[0].id));
    // Pruning older than 20 days drops the two old ones; the latest always stays.
    assert_eq!(store.prune_checks(Utc::now() - Duration::days(20)).await?, 2);
    assert_eq!(store.prune_checks(Utc::now() + Duration::days(1)).await?, 0);
    assert_eq!(store.check_history(r.id, None, 10).await?.len(), 1);
    Ok(())
}

#[tokio::test]
async fn postgres_over_tls_verifies_the_server_certificate() -> R {
    // Always PostgreSQL: the test kit's cluster speaks TLS with a certificate from its own CA.
    let cluster = berth_testkit::pg::PgCluster::shared();
    let dir = tempfile::tempdir()?;
    let url = cluster.create_database();
    let ca = cluster.ca_file();
    let verified = format!("{url}?sslmode=verify-full&sslrootcert={}", ca.display());
    let (store, _) = Store::open(&verified, &dir.path().join("master.key")).await?;
    assert_eq!(store.connection_encrypted().await?, Some(true));
    store.close().await;
    let (plain, _) = Store::open(&format!("{url}?sslmode=disable"), &dir.path().join("master.key")).await?;
    assert_eq!(plain.connection_encrypted().await?, Some(false), "the check tells the two apart");
    plain.close().await;
    // A server whose certificate no trusted CA signed is refused under verify-full.
    let other = tempfile::tempdir()?;
    berth_testkit::make_certs(other.path(), berth_testkit::LeafCert::Valid);
    let wrong = format!("{url}?sslmode=verify-full&sslrootcert={}", other.path().join("ca.pem").display());
    assert!(Store::open(&wrong, &dir.path().join("master.key")).await.is_err());
    Ok(())
}

#[tokio::test]
async fn concurrent_edits_of_different_fields_both_land() -> R {
    let fx = Fixture::new();
    let store = fx.open("master.key").await?;
    let id = add_credential(&store, "ci", "s").await?;
    for round in 0..20 {
        let (a, b) = tokio::join!(
            store.update_credential(
                id,
                CredentialPatch { email: Some(Some(format!("jo{round}@example.com"))), ..Default::default() }
            ),
            store.update_credential(
                id,
                CredentialPatch { username: Some(Some(format!("jo-bb-{round}"))), ..Default::default() }
            ),
        );
        a?;
        b?;
        let c = store.get_credential(id).await?;
        assert_eq!(c.email.as_deref(), Some(format!("jo{round}@example.com").as_str()), "round {round}");
        assert_eq!(c.username.as_deref(), Some(format!("jo-bb-{round}").as_str()), "round {round}");
        assert_eq!(c.name, "ci", "an unnamed field is left alone");
    }
    // Clearing is a change too, and a missing credential is not found.
    store.update_credential(id, CredentialPatch { username: Some(None), ..Default::default() }).await?;
    assert_eq!(store.get_credential(id).await?.username, None);
    assert!(matches!(
        store.update_credential(id + 100, CredentialPatch::default()).await,
        Err(StoreError::NotFound(Entity::Credential))
    ));
    Ok(())
}

#[tokio::test]
async fn the_last_administrator_cannot_be_demoted_or_deleted_even_concurrently() -> R {
    for round in 0..8 {
        // A fresh database each round: exactly two administrators.
        let fx = Fixture::new();
        let store = fx.open("master.key").await?;
        let a = store.create_user("a", "h", "admin").await?;
        let b = store.create_user("b", "h", "admin").await?;
        // Two demotions at once: exactly one may pass, whatever the interleaving.
        let (x, y) = tokio::join!(store.set_role(a.id, "viewer"), store.set_role(b.id, "viewer"));
        let refused = [&x, &y].iter().filter(|r| matches!(r, Err(StoreError::LastAdmin))).count();
        assert_eq!(refused, 1, "round {round}: {x:?} {y:?}");
        assert_eq!(store.count_admins().await?, 1);
        // The remaining one can be neither deleted nor demoted; the demoted one can go.
        let (admin, viewer) = if x.is_ok() { (b.id, a.id) } else { (a.id, b.id) };
        assert!(matches!(store.delete_user(admin).await, Err(StoreError::LastAdmin)));
        assert!(matches!(store.set_role(admin, "registrar").await, Err(StoreError::LastAdmin)));
        store.delete_user(viewer).await?;
        // Two deletions at once of two administrators: one stays.
        let c = store.create_user("c", "h", "admin").await?;
        let (x, y) = tokio::join!(store.delete_user(admin), store.delete_user(c.id));
        assert_eq!([&x, &y].iter().filter(|r| r.is_ok()).count(), 1, "round {round}: {x:?} {y:?}");
        assert_eq!(store.count_admins().await?, 1);
        assert!(matches!(store.delete_user(999_999).await, Err(StoreError::NotFound(Entity::User))));
        store.close().await;
    }
    Ok(())
}

#[tokio::test]
async fn the_audit_log_is_filtered_and_paged() -> R {
    let fx = Fixture::new();
    let store = fx.open("master.key").await?;
    let entry = |actor: &str, action: &str, kind: &str, name: &str| NewAudit {
        actor: actor.into(),
        action: action.into(),
        target_kind: kind.into(),
        target_name: name.into(),
        ..NewAudit::default()
    };
    for i in 0..5 {
        store.audit(&entry("Admin", "token.create", "api_token", &format!("t{i}"))).await?;
    }
    store.audit(&entry("vera", "auth.login_failed", "user", "vera")).await?;
    // LIKE's wildcards in a filter are taken literally.
    store.audit(&entry("admin", "credential.create", "credential", "bb_ci 100%")).await?;
    store.audit(&entry("admin", "credential.create", "credential", "bbXci")).await?;
    let search = |f: AuditFilter, before: Option<i64>, limit: i64| {
        let store = &store;
        async move {
            let rows = store.search_audit(&f, before, limit).await?;
            Ok::<_, StoreError>(rows.into_iter().map(|r| (r.id, r.entry.target_name)).collect::<Vec<_>>())
        }
    };
    let names = |rows: &[(i64, String)]| rows.iter().map(|r| r.1.clone()).collect::<Vec<_>>();
    let all = search(AuditFilter::default(), None, 100).await?;
    assert_eq!(all.len(), 8);
    // Actor: a substring, any case.
    let admin = search(AuditFilter { actor: Some("ADM".into()), ..AuditFilter::default() }, None, 100).await?;
    assert_eq!(admin.len(), 7);
    // Action: exact.
    let f = AuditFilter { action: Some("token.create".into()), ..AuditFilter::default() };
    let tokens = search(f.clone(), None, 100).await?;
    assert_eq!(names(&tokens), ["t4", "t3", "t2", "t1", "t0"], "newest first");
    assert!(search(AuditFilter { action: Some("token".into()), ..AuditFilter::default() }, None, 100)
        .await?
        .is_empty());
    // Pages of a filtered list.
    let first = search(f.clone(), None, 2).await?;
    assert_eq!(names(&first), ["t4", "t3"]);
    let second = search(f.clone(), Some(first[1].0), 2).await?;
    assert_eq!(names(&second), ["t2", "t1"]);
    let last = search(f, Some(second[1].0), 2).await?;
    assert_eq!(names(&last), ["t0"]);
    // Target: the kind and the name, with `_` and `%` literal.
    let t = |s: &str| AuditFilter { target: Some(s.into()), ..AuditFilter::default() };
    assert_eq!(names(&search(t("credential bb_ci"), None, 100).await?), ["bb_ci 100%"]);
    assert_eq!(names(&search(t("100%"), None, 100).await?), ["bb_ci 100%"]);
    assert_eq!(search(t("USER VERA"), None, 100).await?.len(), 1);
    // Time: from <= at < until.
    let now = Utc::now();
    let range = |from, until| AuditFilter { from, until, ..AuditFilter::default() };
    assert_eq!(
        search(range(Some(now - Duration::hours(1)), Some(now + Duration::hours(1))), None, 100).await?.len(),
        8
    );
    assert!(search(range(Some(now + Duration::hours(1)), None), None, 100).await?.is_empty());
    assert!(search(range(None, Some(now - Duration::hours(1))), None, 100).await?.is_empty());
    // Filters combine.
    let both = AuditFilter { actor: Some("admin".into()), target: Some("bbx".into()), ..AuditFilter::default() };
    assert_eq!(names(&search(both, None, 100).await?), ["bbXci"]);
    assert_eq!(store.audit_actions().await?, ["auth.login_failed", "credential.create", "token.create"]);
    Ok(())
}
