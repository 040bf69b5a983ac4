//! The store against a real SQLite file: secrets sealed at rest, wrong keys refused without
//! writing, rotation, uniqueness and reference rules.

#![allow(clippy::panic)]

use berth_core::{Code, CredentialKind};
use berth_store::{CredentialPatch, NewCredential, NewRepository, Store, StoreError, VaultError};
use secrecy::{ExposeSecret, SecretString};
use std::path::Path;

type R = Result<(), Box<dyn std::error::Error>>;

const SECRET: &str = "ATATT3xFfGF0-known-plaintext-secret-7f3a";

async fn open(dir: &Path, key: &str) -> Result<Store, StoreError> {
    Ok(Store::open(&format!("sqlite://{}", dir.join("berth.db").display()), &dir.join(key)).await?.0)
}

async fn add_credential(store: &Store, name: &str, secret: &str) -> Result<i64, StoreError> {
    let scopes = vec!["read:repository:bitbucket".to_owned()];
    let row = store
        .create_credential(NewCredential {
            name,
            kind: CredentialKind::BitbucketApiToken,
            username: None,
            email: Some("jo@example.com"),
            expires_on: None,
            scopes: &scopes,
            secret: &SecretString::from(secret),
        })
        .await?;
    Ok(row.id)
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
async fn database_files_hold_no_plaintext_secret() -> R {
    let dir = tempfile::tempdir()?;
    let store = open(dir.path(), "master.key").await?;
    let id = add_credential(&store, "ci", SECRET).await?;
    store.update_credential(id, CredentialPatch { secret: Some(SecretString::from(format!("{SECRET}-rotated"))), ..Default::default() }).await?;
    assert_eq!(store.credential_secret(id).await?.expose_secret(), format!("{SECRET}-rotated"));
    store.pool().close().await;
    // The WAL is checkpointed on close; check the main file and any leftover WAL/SHM alike.
    assert!(!files_contain(dir.path(), SECRET.as_bytes())?);
    assert!(!files_contain(dir.path(), b"known-plaintext")?);
    Ok(())
}

#[tokio::test]
async fn wrong_master_key_fails_and_changes_nothing() -> R {
    let dir = tempfile::tempdir()?;
    let store = open(dir.path(), "master.key").await?;
    add_credential(&store, "ci", SECRET).await?;
    // Fold the WAL into the main file so that the file alone shows any later change.
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(store.pool()).await?;
    store.pool().close().await;
    let digest = |p: &Path| std::fs::read(p).map(|b| (b.len(), b.iter().fold(0u64, |h, x| h.rotate_left(5) ^ u64::from(*x))));
    let db = dir.path().join("berth.db");
    let before = digest(&db)?;
    // A missing key file is not replaced by a fresh one.
    let err = open(dir.path(), "other.key").await.err();
    assert!(matches!(err, Some(StoreError::Vault(VaultError::Keyring(_)))), "{err:?}");
    assert!(!dir.path().join("other.key").exists());
    // Another database's key file is refused.
    let other = tempfile::tempdir()?;
    open(other.path(), "master.key").await?.pool().close().await;
    std::fs::copy(other.path().join("master.key"), dir.path().join("other.key"))?;
    let err = open(dir.path(), "other.key").await.err();
    assert!(matches!(err, Some(StoreError::Vault(VaultError::UnknownKey { .. }))), "{err:?}");
    assert_eq!(digest(&db)?, before, "the database file changed");
    Ok(())
}

#[tokio::test]
async fn rotation_rewraps_every_secret() -> R {
    let dir = tempfile::tempdir()?;
    let store = open(dir.path(), "master.key").await?;
    let a = add_credential(&store, "a", "secret-a").await?;
    let b = add_credential(&store, "b", "secret-b").await?;
    store.vault().add_master_key()?;
    assert_eq!(store.rewrap_all().await?, 2);
    store.vault().retire_old_keys()?;
    store.pool().close().await;
    let store = open(dir.path(), "master.key").await?;
    assert_eq!(store.credential_secret(a).await?.expose_secret(), "secret-a");
    assert_eq!(store.credential_secret(b).await?.expose_secret(), "secret-b");
    assert_eq!(store.vault().key_ids().len(), 1);
    Ok(())
}

#[tokio::test]
async fn swapped_ciphertext_rows_do_not_open() -> R {
    let dir = tempfile::tempdir()?;
    let store = open(dir.path(), "master.key").await?;
    let a = add_credential(&store, "a", "secret-a").await?;
    let b = add_credential(&store, "b", "secret-b").await?;
    sqlx::query(
        "UPDATE credentials SET ciphertext = (SELECT ciphertext FROM credentials WHERE id = ?), \
         wrapped_key = (SELECT wrapped_key FROM credentials WHERE id = ?) WHERE id = ?",
    )
    .bind(a)
    .bind(a)
    .bind(b)
    .execute(store.pool())
    .await?;
    assert!(matches!(store.credential_secret(b).await, Err(StoreError::Vault(VaultError::Tampered { .. }))));
    Ok(())
}

#[tokio::test]
async fn credentials_in_use_and_duplicates() -> R {
    let dir = tempfile::tempdir()?;
    let store = open(dir.path(), "master.key").await?;
    let id = add_credential(&store, "ci", "s").await?;
    assert!(matches!(add_credential(&store, "CI", "s").await, Err(StoreError::Conflict { code: Code::NameTaken, .. })));
    let repo = NewRepository {
        name: "app".into(),
        vcs: "git".into(),
        clone_url: "https://bitbucket.org/ws/app.git".into(),
        repo_key: "bitbucket-cloud:ws/app".into(),
        provider: "bitbucket-cloud".into(),
        default_branch: "main".into(),
        credential_id: id,
    };
    let created = store.create_repository(&repo).await?;
    let again = store.create_repository(&NewRepository { name: "app2".into(), ..repo.clone() }).await;
    match again {
        Err(StoreError::Conflict { code: Code::AlreadyRegistered, message }) => assert!(message.contains("\"app\"")),
        other => panic!("expected already_registered, got {other:?}"),
    }
    match store.delete_credential(id).await {
        Err(StoreError::CredentialInUse { repositories }) => assert_eq!(repositories, vec![(created.id, "app".to_owned())]),
        other => panic!("expected credential_in_use, got {other:?}"),
    }
    store.delete_repository(created.id).await?;
    store.delete_credential(id).await?;
    Ok(())
}
