//! Snapshots (backup, restore, migration) against real databases: SQLite by default, and
//! PostgreSQL with `BERTH_TEST_DATABASE=postgres`; the SQLite-to-PostgreSQL migration always
//! uses the test kit's private PostgreSQL. Every table covered, every row back with its id,
//! damaged snapshots and used targets refused before anything is written, and the master key
//! only ever sealed under a passphrase.

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use berth_core::{Check, CheckReason, Code, CredentialKind, Step, StepName};
use berth_store::snapshot::{self, coverage, Coverage, SnapshotError};
use berth_store::{NewAudit, NewChannel, NewCheck, NewCredential, NewRepository, RepositoryFilter, Store};
use berth_testkit::pg::{test_database_url, PgCluster};
use chrono::Utc;
use secrecy::{ExposeSecret, SecretString};
use std::path::{Path, PathBuf};

type R = Result<(), Box<dyn std::error::Error>>;

const TOKEN: &str = "ATATT3xFfGF0-snapshot-token-secret-91c2";
const CHANNEL_SECRET: &str = "whsec-snapshot-signing-secret-5d1e";
const TOTP_SECRET: &str = "JBSWY3DPEHPK3PXPSNAPSHOT";
const PASSPHRASE: &str = "correct horse battery staple";

struct Place {
    dir: tempfile::TempDir,
    url: String,
}

impl Place {
    fn new() -> Place {
        let dir = tempfile::tempdir().unwrap();
        let url = test_database_url(dir.path());
        Place { dir, url }
    }
    fn sqlite() -> Place {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("berth.db").display());
        Place { dir, url }
    }
    fn key(&self) -> PathBuf {
        self.dir.path().join("master.key")
    }
    async fn open(&self) -> Store {
        Store::open(&self.url, &self.key()).await.unwrap().0
    }
}

fn no_passphrase() -> impl FnMut() -> Result<SecretString, String> {
    || panic!("no passphrase should be asked for")
}

/// An installation with a row in every table a person's work fills.
async fn populate(store: &Store) -> (i64, Vec<i64>) {
    let user = store.create_user("Vera", "$argon2id$v=19$not-a-real-hash", "admin").await.unwrap();
    store.set_pending_totp(user.id, &SecretString::from(TOTP_SECRET)).await.unwrap();
    let scopes = vec!["read:repository:bitbucket".to_owned()];
    let cred = store
        .create_credential(NewCredential {
            name: "bb-ci",
            kind: CredentialKind::BitbucketApiToken,
            host: Some("https://bitbucket.org"),
            username: None,
            email: Some("ci@example.com"),
            expires_on: Some(chrono::NaiveDate::from_ymd_opt(2027, 3, 1).unwrap()),
            scopes: &scopes,
            secret: &SecretString::from(TOKEN),
            app_id: None,
            installation_id: None,
            public_key: None,
            client_certificate: None,
        })
        .await
        .unwrap()
        .id;
    let mut repos = Vec::new();
    for (i, c) in [Some(cred), Some(cred), None].into_iter().enumerate() {
        let r = store
            .create_repository(&NewRepository {
                name: format!("app-{i}"),
                vcs: "git".into(),
                clone_url: format!("https://bitbucket.org/ws/app-{i}.git"),
                repo_key: format!("bitbucket-cloud:ws/app-{i}"),
                provider: "bitbucket-cloud".into(),
                default_branch: "main".into(),
                credential_id: c,
                next_check_at: Some(Utc::now()),
            })
            .await
            .unwrap();
        let step = if i == 1 {
            Step::fail(StepName::GitDiscovery, Code::AuthFailed, "refused", "replace the token")
        } else {
            Step::pass(StepName::Url, "fine")
        };
        let check = Check::completed(vec![step]);
        let new = NewCheck {
            check: &check,
            reason: CheckReason::Manual,
            instance: "i1",
            checked_at: Utc::now(),
            duration_ms: 7,
        };
        store.record_outcome(r.id, &new, None, None).await.unwrap();
        repos.push(r.id);
    }
    store.create_template("https://bitbucket.org/ws/", cred, "vera").await.unwrap();
    let events = vec!["repository.failed".to_owned()];
    store
        .create_channel(NewChannel {
            name: "ops",
            kind: "webhook",
            settings: r#"{"kind":"webhook","url":"https://hooks.example.com/x"}"#,
            events: &events,
            repository_pattern: None,
            credential_id: None,
            enabled: true,
            secret: &SecretString::from(CHANNEL_SECRET),
        })
        .await
        .unwrap();
    for action in ["credential.create", "repository.create"] {
        store
            .audit(&NewAudit {
                actor: "vera".into(),
                action: action.into(),
                target_kind: "credential".into(),
                target_name: "bb-ci".into(),
                ..NewAudit::default()
            })
            .await
            .unwrap();
    }
    store.set_setting("session_hours", "12").await.unwrap();
    (cred, repos)
}

fn contains(path: &Path, needle: &str) -> bool {
    let bytes = std::fs::read(path).unwrap();
    bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn every_table_and_column_the_migrations_create_is_copied_or_said_why_not() -> R {
    let place = Place::new();
    let store = place.open().await;
    let tables = store.table_columns().await?;
    assert!(tables.iter().any(|(t, _)| t == "repositories"), "{tables:?}");
    for (table, columns) in &tables {
        assert_ne!(
            coverage(table, None),
            Coverage::Unknown,
            "table {table} is not in the snapshot: add it to store/snapshot/schema.rs (TABLES or NOT_COPIED)"
        );
        if coverage(table, None) != Coverage::Copied {
            continue;
        }
        for c in columns {
            assert_ne!(
                coverage(table, Some(c)),
                Coverage::Unknown,
                "column {table}.{c} is not in the snapshot: add it to store/snapshot/schema.rs"
            );
        }
    }
    // And the other way: every table and column the snapshot names exists.
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("s.snapshot");
    snapshot::backup(&store, &path, None).await?;
    let (_, rows) = snapshot::inspect(&path)?;
    for t in rows.keys() {
        assert!(tables.iter().any(|(name, _)| name == t), "the snapshot copies {t}, which no migration creates");
    }
    Ok(())
}

#[tokio::test]
async fn a_snapshot_restores_every_row_with_its_id_and_opens_with_the_same_key() -> R {
    let source = Place::new();
    let store = source.open().await;
    let (cred, repos) = populate(&store).await;
    let before = store.verify().await?;
    assert!(before.problems.is_empty(), "{:?}", before.problems);

    let out = tempfile::tempdir()?;
    let path = out.path().join("berth.snapshot");
    let made = snapshot::backup(&store, &path, None).await?;
    assert_eq!(made.header.key_ids, store.vault().key_ids());
    assert!(made.header.master_key.is_none());
    for secret in [TOKEN, CHANNEL_SECRET, TOTP_SECRET] {
        assert!(!contains(&path, secret), "a secret in plaintext in the snapshot");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path)?.permissions().mode() & 0o777, 0o600);
    }

    // The target gets a copy of the key file: "the key it was given".
    let target = Place::new();
    std::fs::copy(source.key(), target.key())?;
    let done = snapshot::restore(&path, &target.url, &target.key(), &mut no_passphrase()).await?;
    assert!(!done.key_file_written);
    assert!(done.verify.problems.is_empty(), "{:?}", done.verify.problems);
    assert_eq!(done.verify.counts, before.counts, "every table has as many rows as before");
    assert_eq!(done.verify.secrets_opened, before.secrets_opened);
    assert_eq!(done.rows.get("sessions"), None, "sessions are not copied");

    let restored = Store::open_existing(&target.url, &target.key()).await?;
    assert_eq!(restored.credential_secret(cred).await?.expose_secret(), TOKEN);
    for id in &repos {
        let (a, b) = (store.get_repository(*id).await?, restored.get_repository(*id).await?);
        assert_eq!((a.name, a.credential_id, a.status), (b.name, b.credential_id, b.status));
        assert_eq!(store.count_checks(*id).await?, restored.count_checks(*id).await?);
    }
    // The kept counts and the search index came out right, through the triggers.
    let all = RepositoryFilter::default();
    assert_eq!(restored.count_repositories(&all).await?.n, 3);
    let failing = RepositoryFilter { statuses: vec!["fail".into()], ..all.clone() };
    assert_eq!(restored.count_repositories(&failing).await?.n, 1);
    let found = RepositoryFilter { q: Some("app-2".into()), ..all.clone() };
    assert_eq!(restored.count_repositories(&found).await?.n, 1);
    assert_eq!(restored.setting("session_hours").await?.as_deref(), Some("12"));
    // New rows get ids after the copied ones (PostgreSQL's sequences were moved on).
    let user = restored.create_user("newcomer", "x", "viewer").await?;
    assert!(user.id > 1, "id {} reused", user.id);
    restored.close().await;
    Ok(())
}

#[tokio::test]
async fn a_truncated_or_altered_snapshot_is_refused_before_anything_is_written() -> R {
    let source = Place::new();
    let store = source.open().await;
    populate(&store).await;
    let out = tempfile::tempdir()?;
    let path = out.path().join("good.snapshot");
    snapshot::backup(&store, &path, None).await?;
    let good = std::fs::read_to_string(&path)?;

    let lines: Vec<&str> = good.lines().collect();
    let without_end = lines[..lines.len() - 1].join("\n") + "\n";
    let cut = &good[..good.len() * 2 / 3];
    let altered = good.replacen("\"app-1\"", "\"app-X\"", 1);
    let dropped_row = good.replacen(&format!("{}\n", lines.iter().find(|l| l.contains("app-2")).unwrap()), "", 1);
    for (what, text) in
        [("no last line", without_end), ("cut", cut.to_owned()), ("altered", altered), ("row gone", dropped_row)]
    {
        let bad = out.path().join(format!("{what}.snapshot"));
        std::fs::write(&bad, &text)?;
        let target = Place::sqlite();
        std::fs::copy(source.key(), target.key())?;
        let refused = snapshot::restore(&bad, &target.url, &target.key(), &mut no_passphrase()).await;
        assert!(matches!(refused, Err(SnapshotError::Damaged { .. })), "{what}: {refused:?}");
        assert!(!target.dir.path().join("berth.db").exists(), "{what}: the target was written");
    }
    // A snapshot of a newer Berth (a schema this one does not know) says so, not "damaged".
    let mut header: serde_json::Value = serde_json::from_str(lines[0])?;
    header["schema_version"] = serde_json::Value::from(9999);
    let newer = out.path().join("newer.snapshot");
    std::fs::write(&newer, format!("{header}\n{}\n", lines[1..].join("\n")))?;
    let target = Place::sqlite();
    std::fs::copy(source.key(), target.key())?;
    let refused = snapshot::restore(&newer, &target.url, &target.key(), &mut no_passphrase()).await;
    assert!(
        matches!(&refused, Err(e @ SnapshotError::NotASnapshot { .. }) if e.to_string().contains("newer")),
        "{refused:?}"
    );
    let not = out.path().join("not.snapshot");
    std::fs::write(&not, "hello\n")?;
    let target = Place::sqlite();
    let refused = snapshot::restore(&not, &target.url, &target.key(), &mut no_passphrase()).await;
    assert!(matches!(refused, Err(SnapshotError::NotASnapshot { .. })), "{refused:?}");
    Ok(())
}

#[tokio::test]
async fn restore_refuses_a_target_that_holds_anything() -> R {
    let source = Place::new();
    let store = source.open().await;
    populate(&store).await;
    let out = tempfile::tempdir()?;
    let path = out.path().join("s.snapshot");
    snapshot::backup(&store, &path, None).await?;
    // The source itself, and a fresh installation that only has its first start behind it.
    let refused = snapshot::restore(&path, &source.url, &source.key(), &mut no_passphrase()).await;
    assert!(matches!(refused, Err(SnapshotError::TargetNotEmpty(_))), "{refused:?}");
    let used = Place::new();
    used.open().await.close().await;
    let refused = snapshot::restore(&path, &used.url, &used.key(), &mut no_passphrase()).await;
    assert!(matches!(refused, Err(SnapshotError::TargetNotEmpty(_))), "{refused:?}");
    assert_eq!(store.verify().await?.count("users"), Some(1), "the source is as it was");
    Ok(())
}

#[tokio::test]
async fn the_master_key_travels_only_sealed_under_a_passphrase() -> R {
    let source = Place::new();
    let store = source.open().await;
    let (cred, _) = populate(&store).await;
    let out = tempfile::tempdir()?;
    let path = out.path().join("with-key.snapshot");

    let weak = snapshot::backup(&store, &path, Some(&SecretString::from("short"))).await;
    assert!(matches!(weak, Err(SnapshotError::WeakPassphrase { .. })), "{weak:?}");
    assert!(!path.exists());
    let made = snapshot::backup(&store, &path, Some(&SecretString::from(PASSPHRASE))).await?;
    assert!(made.header.master_key.is_some());
    let key_text = std::fs::read_to_string(source.key())?;
    let key_b64 = key_text.lines().find(|l| l.starts_with("k-")).unwrap().split_whitespace().nth(1).unwrap();
    for secret in [TOKEN, CHANNEL_SECRET, TOTP_SECRET, key_b64, PASSPHRASE] {
        assert!(!contains(&path, secret), "plaintext in the snapshot");
    }

    // Without a key file: a wrong passphrase is refused and nothing is written.
    let target = Place::sqlite();
    let mut wrong = || Ok(SecretString::from("not the passphrase at all"));
    let refused = snapshot::restore(&path, &target.url, &target.key(), &mut wrong).await;
    assert!(matches!(refused, Err(SnapshotError::WrongPassphrase)), "{refused:?}");
    assert_eq!(std::fs::read_dir(target.dir.path())?.count(), 0, "something was written");
    // The right one writes the key file and restores.
    let mut right = || Ok(SecretString::from(PASSPHRASE));
    let done = snapshot::restore(&path, &target.url, &target.key(), &mut right).await?;
    assert!(done.key_file_written && done.verify.problems.is_empty(), "{:?}", done.verify.problems);
    let restored = Store::open_existing(&target.url, &target.key()).await?;
    assert_eq!(restored.credential_secret(cred).await?.expose_secret(), TOKEN);
    restored.close().await;

    // A snapshot without the key, and no key file at the target: refused, saying what is needed.
    let plain = out.path().join("plain.snapshot");
    snapshot::backup(&store, &plain, None).await?;
    let bare = Place::sqlite();
    let refused = snapshot::restore(&plain, &bare.url, &bare.key(), &mut no_passphrase()).await;
    assert!(matches!(refused, Err(SnapshotError::KeyNeeded { .. })), "{refused:?}");
    // A key file that is not this installation's: refused before anything is written.
    let other = Place::sqlite();
    other.open().await.close().await;
    let stranger = Place::sqlite();
    std::fs::copy(other.key(), stranger.key())?;
    let refused = snapshot::restore(&plain, &stranger.url, &stranger.key(), &mut no_passphrase()).await;
    assert!(matches!(refused, Err(SnapshotError::KeyMissing { .. })), "{refused:?}");
    assert!(!stranger.dir.path().join("berth.db").exists());
    Ok(())
}

#[tokio::test]
async fn sqlite_migrates_into_an_empty_postgresql_once() -> R {
    let source = Place::sqlite();
    let store = source.open().await;
    let (cred, repos) = populate(&store).await;
    let before = store.verify().await?;
    let pg = PgCluster::shared().create_database();

    let done = snapshot::migrate(&store, &pg, &source.key(), source.dir.path()).await?;
    assert!(done.verify.problems.is_empty(), "{:?}", done.verify.problems);
    assert_eq!(done.verify.counts, before.counts);
    let leftovers: Vec<_> = std::fs::read_dir(source.dir.path())?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("migrate"))
        .collect();
    assert!(leftovers.is_empty(), "the migration's snapshot was left behind: {leftovers:?}");

    let target = Store::open_existing(&pg, &source.key()).await?;
    assert_eq!(target.credential_secret(cred).await?.expose_secret(), TOKEN);
    assert_eq!(target.get_repository(repos[1]).await?.status, "fail");
    let found = RepositoryFilter { q: Some("app-1".into()), ..RepositoryFilter::default() };
    assert_eq!(target.count_repositories(&found).await?.n, 1);
    target.close().await;

    let again = snapshot::migrate(&store, &pg, &source.key(), source.dir.path()).await;
    assert!(matches!(again, Err(SnapshotError::TargetNotEmpty(_))), "{again:?}");
    Ok(())
}

#[tokio::test]
async fn verify_names_each_problem_it_finds() -> R {
    let place = Place::new();
    let store = place.open().await;
    let (cred, _) = populate(&store).await;
    assert!(store.verify().await?.problems.is_empty());
    store.execute_unchecked("UPDATE credentials SET ciphertext = wrapped_key WHERE id = $1", &[cred]).await?;
    store.execute_unchecked("UPDATE repository_counts SET n = n + 5", &[]).await?;
    let report = store.verify().await?;
    assert_eq!(report.problems.len(), 2, "{:?}", report.problems);
    assert!(report.problems[0].contains(&format!("credentials row {cred}")), "{:?}", report.problems);
    assert!(report.problems[1].contains("repository_counts"), "{:?}", report.problems);
    for p in &report.problems {
        assert!(!p.contains(TOKEN), "a problem quotes the secret");
    }
    Ok(())
}

/// A snapshot taken before migration 0020 holds an SSH repository on a cloud host under its
/// HTTPS key: restored, it has the SSH key (the migration's own statements), and the same
/// repository over HTTPS can then be registered beside it. Other keys are left as they were.
#[tokio::test]
async fn a_snapshot_from_before_migration_0020_gets_the_ssh_repository_keys() -> R {
    let source = Place::new();
    let store = source.open().await;
    let old = [
        ("ssh://git@github.com/octo/app.git", "github:octo/app", "github:ssh:octo/app"),
        ("ssh://git@bitbucket.org/ws/App.git", "bitbucket-cloud:ws/app", "bitbucket-cloud:ssh:ws/app"),
        (
            "ssh://git@ssh.dev.azure.com/v3/org/project/repo",
            "https://dev.azure.com/org/project/_git/repo",
            "ssh:https://dev.azure.com/org/project/_git/repo",
        ),
        ("ssh://git@git.example.com/a/b.git", "ssh://git@git.example.com/a/b.git", "ssh://git@git.example.com/a/b.git"),
        ("https://github.com/octo/site.git", "github:octo/site", "github:octo/site"),
    ];
    let mut ids = Vec::new();
    for (i, (url, key, _)) in old.iter().enumerate() {
        let row = store
            .create_repository(&NewRepository {
                name: format!("r{i}"),
                vcs: "git".into(),
                clone_url: (*url).into(),
                repo_key: (*key).into(),
                provider: "github".into(),
                default_branch: "main".into(),
                credential_id: None,
                next_check_at: None,
            })
            .await?;
        ids.push(row.id);
    }
    let out = tempfile::tempdir()?;
    // Backs `store` up and restores it into a new place with the same key.
    let copy = |store: Store, key: PathBuf, name: &'static str| {
        let path = out.path().join(name);
        async move {
            snapshot::backup(&store, &path, None).await?;
            store.close().await;
            let target = Place::new();
            std::fs::copy(&key, target.key())?;
            snapshot::restore(&path, &target.url, &target.key(), &mut no_passphrase()).await?;
            let restored = Store::open_existing(&target.url, &target.key()).await?;
            Ok::<_, Box<dyn std::error::Error>>((target, restored))
        }
    };
    let (target, restored) = copy(store, source.key(), "berth.snapshot").await?;
    for (id, (_, _, want)) in ids.iter().zip(old) {
        assert_eq!(restored.get_repository(*id).await?.repo_key, want);
    }
    // Restoring twice changes nothing more: the statements only move keys of before.
    let (_third, thrice) = copy(restored, target.key(), "again.snapshot").await?;
    for (id, (_, _, want)) in ids.iter().zip(old) {
        assert_eq!(thrice.get_repository(*id).await?.repo_key, want);
    }
    thrice.close().await;
    Ok(())
}
