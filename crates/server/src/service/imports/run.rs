//! The background part of an import: register every pending selected item, each through the
//! registration use case, at most `checks.per_host` at a time per host (the same per-host
//! semaphores the scheduler uses, so an import and the background sweep share a host's limit).

use crate::auth::CurrentUser;
use crate::service::{repositories, templates, Conflict, Error};
use crate::state::AppState;
use berth_core::{CloneUrl, Code, StepStatus};
use berth_proto::{CredentialSelector, RepositoryCreate};
use berth_store::{ImportItemRow, ItemOutcome};
use chrono::Utc;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use tokio::task::JoinSet;

/// How long an item may stay `registering` before another run takes it again (an instance that
/// stopped mid-check). Every request of a check has a timeout, so a live check ends well before.
const ITEM_LEASE: chrono::Duration = chrono::Duration::minutes(5);
/// Name suffixes tried when a slug is taken: `app`, `app-2`, … `app-20`.
const MAX_SUFFIX: usize = 20;

pub(super) async fn register_pending(st: &AppState, u: &CurrentUser, import_id: i64) {
    let (items, cred) = match (st.store.import_items(import_id).await, st.store.get_import(import_id).await) {
        (Ok(items), Ok(row)) => (items, row.credential_id),
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(import = import_id, "cannot read the import: {e}");
            return;
        }
    };
    let Some(cred) = cred else { return };
    // Names handed out in this run, so two items with one slug (a fork in another project)
    // never race for the same name.
    let names: Arc<Mutex<HashSet<String>>> = Arc::default();
    let mut running = JoinSet::new();
    for item in items.into_iter().filter(|i| i.selected && matches!(i.status.as_str(), "pending" | "registering")) {
        let url = CloneUrl::parse(&item.clone_url, &st.config.integrations);
        let host = crate::service::scheduler::host_key(&url, &item.clone_url);
        let limit = st.instance.host_limit(&host, st.config.checks.per_host);
        let (st, u, names) = (st.clone(), u.clone(), names.clone());
        running.spawn(async move {
            let Ok(_slot) = limit.acquire_owned().await else { return };
            let now = Utc::now();
            match st.store.claim_import_item(item.id, now, now + ITEM_LEASE).await {
                Ok(true) => {}
                Ok(false) => return, // another run or instance has it
                Err(e) => {
                    tracing::warn!(import = import_id, "cannot claim an import item: {e}");
                    return;
                }
            }
            let outcome = register_one(&st, &u, cred, &item, &names).await;
            if let Err(e) = st.store.finish_import_item(item.id, &outcome).await {
                tracing::error!(import = import_id, "cannot record an import item: {e}");
            }
        });
    }
    while running.join_next().await.is_some() {}
    match st.store.finish_import_if_idle(import_id).await {
        Ok(true) => tracing::info!(import = import_id, "import finished"),
        Ok(false) => {}
        Err(e) => tracing::warn!(import = import_id, "cannot finish the import: {e}"),
    }
}

/// A free name for `slug`: the slug, else `slug-2`, `slug-3`, …
async fn free_name(st: &AppState, slug: &str, names: &Mutex<HashSet<String>>) -> Option<String> {
    for n in 1..=MAX_SUFFIX {
        let candidate = if n == 1 { slug.to_owned() } else { format!("{slug}-{n}") };
        let taken_here =
            names.lock().unwrap_or_else(std::sync::PoisonError::into_inner).contains(&candidate.to_lowercase());
        if taken_here || st.store.repository_name_taken(&candidate).await.unwrap_or(true) {
            continue;
        }
        if names.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(candidate.to_lowercase()) {
            return Some(candidate);
        }
    }
    None
}

async fn register_one(
    st: &AppState,
    u: &CurrentUser,
    cred: i64,
    item: &ImportItemRow,
    names: &Mutex<HashSet<String>>,
) -> ItemOutcome {
    // A name taken between the look-up and the save (another registration won) costs one more try.
    for _ in 0..2 {
        let Some(name) = free_name(st, &item.slug, names).await else {
            return failed(
                Code::NameTaken,
                format!("the names {0} to {0}-{MAX_SUFFIX} are all taken", item.slug),
                "register this repository on its own with a name of your choice",
            );
        };
        // When the credential templates would choose this very credential, let them: the
        // repository's check then says which template chose it, as a registration by hand does.
        let by_template = match CloneUrl::parse(&item.clone_url, &st.config.integrations) {
            Ok(url) => templates::choose(st, &url, None).await.is_ok_and(|c| c.credential.id == cred),
            Err(_) => false,
        };
        let req = RepositoryCreate {
            name,
            vcs: "git".to_owned(),
            clone_url: item.clone_url.clone(),
            credential: (!by_template).then_some(CredentialSelector::Id(cred)),
            anonymous: false,
            default_branch: None,
            webhook: false,
        };
        match repositories::register(st, u, req).await {
            Ok(r) => {
                return ItemOutcome {
                    status: "registered".into(),
                    code: None,
                    message: Some(format!("registered as {} with default branch {}", r.name, r.default_branch)),
                    remedy: None,
                    repository: Some((r.id, r.name)),
                }
            }
            Err(Error::Conflict(Conflict::NameTaken { .. })) => continue,
            Err(e) => return outcome_of(e),
        }
    }
    failed(Code::NameTaken, "the repository's name was taken twice while it registered", "register it again")
}

fn failed(code: Code, message: impl Into<String>, remedy: impl Into<String>) -> ItemOutcome {
    ItemOutcome {
        status: "failed".into(),
        code: Some(code.as_str().to_owned()),
        message: Some(message.into()),
        remedy: Some(remedy.into()),
        repository: None,
    }
}

/// A refused registration as the item's outcome: the failed step of a check, or the refusal.
fn outcome_of(e: Error) -> ItemOutcome {
    match e {
        Error::CheckFailed(steps) => match steps.iter().find(|s| s.status == StepStatus::Fail) {
            Some(s) => failed(s.code, format!("{}: {}", s.step.title(), s.message), s.remedy.clone()),
            None => failed(Code::Internal, "the check failed", ""),
        },
        Error::Conflict(Conflict::RepositoryRegistered { id, name, .. }) => ItemOutcome {
            status: "skipped".into(),
            code: Some(Code::AlreadyRegistered.as_str().to_owned()),
            message: Some(format!("registered already as {name:?} (id {id})")),
            remedy: None,
            repository: None,
        },
        Error::Conflict(Conflict::CredentialGone) => {
            failed(Code::CredentialNotFound, "the import's credential was deleted", "start a new import")
        }
        Error::Invalid(r) | Error::Refused(r) | Error::Unauthenticated(r) | Error::Locked(r) => {
            failed(r.code, r.message, r.remedy)
        }
        Error::Forbidden { .. } => {
            failed(Code::Forbidden, "the importing user may no longer register repositories", "")
        }
        Error::NotFound(entity) => failed(super::super::not_found_code(entity), format!("{entity} not found"), ""),
        Error::Conflict(other) => failed(Code::InvalidInput, format!("{other:?}"), ""),
        Error::Unavailable(_) => failed(
            Code::DatabaseUnavailable,
            "the database was unavailable, so this repository was not registered",
            "register it again once the database is back (the import's other repositories are unaffected)",
        ),
        Error::Internal(m) => {
            tracing::error!("import registration failed: {m}");
            failed(Code::Internal, "an internal error stopped this registration; the server log has it", "try again")
        }
    }
}
