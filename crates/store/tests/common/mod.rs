//! What several store test files need: a store on the suite's database (SQLite, or a fresh
//! PostgreSQL database with `BERTH_TEST_DATABASE=postgres`), a credential, a repository.

#![allow(dead_code, clippy::unwrap_used)]

use berth_core::CredentialKind;
use berth_store::{NewCredential, NewRepository, Store};
use berth_testkit::pg::test_database_url;
use secrecy::SecretString;

/// A store in `dir` (on PostgreSQL, a fresh database each call).
pub async fn open(dir: &std::path::Path) -> Store {
    Store::open(&test_database_url(dir), &dir.join("master.key")).await.unwrap().0
}

/// A Bitbucket API token credential named `name`.
pub async fn credential(store: &Store, name: &str) -> i64 {
    let scopes = vec!["read:repository:bitbucket".to_owned()];
    store
        .create_credential(NewCredential {
            name,
            kind: CredentialKind::BitbucketApiToken,
            host: None,
            username: None,
            email: Some("jo@example.com"),
            expires_on: None,
            scopes: &scopes,
            secret: &SecretString::from("ATATT3xFfGF0-store-test"),
            app_id: None,
            installation_id: None,
            public_key: None,
            client_certificate: None,
        })
        .await
        .unwrap()
        .id
}

/// A Bitbucket Cloud repository `acme/{name}` using the credential `cred`.
pub async fn repository(store: &Store, name: &str, cred: i64) -> i64 {
    store
        .create_repository(&NewRepository {
            name: name.into(),
            vcs: "git".into(),
            clone_url: format!("https://bitbucket.org/acme/{name}.git"),
            repo_key: format!("bitbucket.org/acme/{name}"),
            provider: "bitbucket-cloud".into(),
            default_branch: "main".into(),
            credential_id: Some(cred),
            next_check_at: None,
        })
        .await
        .unwrap()
        .id
}
