//! Lock order (on PostgreSQL; SQLite runs one writer at a time): a credential edit locks the
//! credential, then its repositories; recording checks locks the credentials whose counts it
//! writes first too. Both at once, over and over, never deadlock: PostgreSQL would abort one
//! side with 40P01, and a recorded batch is not run again.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use berth_core::{Check, CheckReason, Code, Step, StepName};
use berth_store::{AuthResult, CredentialPatch, NewCheck, OutcomeToRecord};
use chrono::Utc;

const ROUNDS: usize = 120;
const REPOS: usize = 6;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn credential_edits_and_recorded_checks_never_deadlock() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::open(dir.path()).await;
    let cred = common::credential(&store, "shared").await;
    let mut repos = Vec::new();
    for i in 0..REPOS {
        repos.push(common::repository(&store, &format!("r{i}"), cred).await);
    }

    let editor = {
        let store = store.clone();
        tokio::spawn(async move {
            for i in 0..ROUNDS {
                let patch = CredentialPatch { name: Some(format!("shared-{}", i % 2)), ..CredentialPatch::default() };
                store.update_credential(cred, patch).await.expect("an edit");
            }
        })
    };
    let recorders: Vec<_> = (0..2)
        .map(|half| {
            let store = store.clone();
            let mine: Vec<i64> = repos.iter().copied().skip(half).step_by(2).collect();
            tokio::spawn(async move {
                let failed = Check::completed(vec![Step::fail(
                    StepName::GitDiscovery,
                    Code::AuthFailed,
                    "refused",
                    "replace the token",
                )]);
                for i in 0..ROUNDS {
                    let check = NewCheck {
                        check: &failed,
                        reason: CheckReason::Schedule,
                        instance: "i",
                        checked_at: Utc::now(),
                        duration_ms: 1,
                    };
                    let auth = Some(AuthResult {
                        credential_id: cred,
                        failed: i % 3 != 0,
                        pause_after: 1000,
                        now: Utc::now(),
                    });
                    let batch: Vec<OutcomeToRecord<'_>> = mine
                        .iter()
                        .map(|&repository_id| OutcomeToRecord {
                            repository_id,
                            check: NewCheck { ..check },
                            auth,
                            lease: None,
                            answers_since: check.checked_at,
                            branches: None,
                        })
                        .collect();
                    if let Err(e) = store.record_outcomes(&batch).await {
                        panic!("round {i}: recording a batch failed beside a credential edit: {e}");
                    }
                }
            })
        })
        .collect();
    editor.await.unwrap();
    for r in recorders {
        r.await.unwrap();
    }
    for id in repos {
        assert_eq!(
            store.check_history(id, None, 1000).await.unwrap().len(),
            ROUNDS,
            "every check of repository {id} is kept"
        );
    }
}
