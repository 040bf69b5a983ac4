//! Bulk imports: list the repositories a credential can see in a Bitbucket Cloud workspace, a
//! Bitbucket Data Center project or a GitHub organisation or user, mark those registered
//! already, and register a selection of them in the background, each through
//! [`super::repositories::register`] (the use case of `POST /api/v1/repositories`: the same
//! checks, its own verdict and audit entry), concurrently within this instance's per-host limits.
//!
//! Progress is in the database (`imports`, `import_items`), so any instance answers
//! `GET /api/v1/imports/{id}` and a restart loses nothing: registering again takes the items
//! still pending, and those a stopped instance left half-done once their lease has passed.

mod run;

use super::checks::open_secret;
use super::credentials::resolve;
use super::{Conflict, Error, Refusal, Result};
use crate::auth::{Action, CurrentUser};
use crate::state::AppState;
use berth_core::ImportSource;
use berth_core::{credential, CloneUrl, Code, CredentialKind, ImportScope, Provider};
use berth_proto::{CredentialRef, Import, ImportCreate, ImportItem, ImportItemStatus, ImportRegister, RepositoryRef};
use berth_store::{ImportItemRow, ImportRow, NewImport, NewImportItem};
use chrono::Utc;
use std::collections::HashMap;

fn item_view(row: ImportItemRow) -> ImportItem {
    let name = row.repository_name.clone().or_else(|| row.existing_name.clone()).unwrap_or_else(|| row.slug.clone());
    ImportItem {
        full_name: row.full_name,
        name,
        clone_url: row.clone_url,
        private: row.private,
        selected: row.selected,
        code: row.code.as_deref().and_then(|c| serde_json::from_value(serde_json::Value::String(c.to_owned())).ok()),
        status: row.status,
        message: row.message,
        remedy: row.remedy,
        already_registered: row.existing_id.zip(row.existing_name).map(|(id, name)| RepositoryRef { id, name }),
        repository: row.repository_id.zip(row.repository_name).map(|(id, name)| RepositoryRef { id, name }),
    }
}

fn view(row: ImportRow, items: Vec<ImportItemRow>) -> Import {
    Import {
        id: row.id,
        source: row.source,
        provider: Provider::parse(&row.provider).unwrap_or(Provider::Generic),
        credential: row.credential_id.map(|id| CredentialRef { id, name: row.credential_name }),
        state: row.state,
        listed: row.listed,
        total: row.selected,
        done: row.done,
        registered: row.registered,
        failed: row.failed,
        skipped: row.skipped,
        created_by: row.created_by,
        created_at: row.created_at,
        updated_at: row.updated_at,
        repositories: items.into_iter().map(item_view).collect(),
    }
}

async fn load(st: &AppState, id: i64) -> Result<Import> {
    let row = st.store.get_import(id).await?;
    let items = st.store.import_items(id).await?;
    Ok(view(row, items))
}

/// List a workspace, project or organisation and keep what was found as a new import.
pub async fn create(st: &AppState, u: &CurrentUser, req: ImportCreate) -> Result<Import> {
    u.require(Action::RegisterRepository)?;
    let source = ImportSource::parse(&req.source, &st.config.integrations)
        .map_err(|e| Error::Invalid(Refusal::new(e.code, e.message, e.remedy)))?;
    // Without a credential, the template covering the source's clone URLs chooses one, as it
    // would for each repository registered from it.
    let cred = match req.credential.as_ref() {
        Some(selector) => resolve(st, selector).await?,
        None => {
            let prefix = super::templates::parse_prefix(&source.clone_url_prefix())?;
            super::templates::choose_for_prefix(st, &prefix, None)
                .await
                .map_err(|e| super::checks::fit_error(u, e))?
                .credential
        }
    };
    let Some(api_url) = source.host.api_url.clone() else {
        return Err(Error::Invalid(Refusal::new(
            Code::InvalidImportSource,
            format!("Berth knows no REST API for {}", source.host.canonical()),
            "declare the host as an integration with its api_url",
        )));
    };
    let Some(secret) = open_secret(st, &cred).await else {
        return Err(Error::Internal(format!("the secret of credential {} does not open", cred.id)));
    };
    let view_cred = berth_forge::CredentialView {
        kind: cred.kind,
        username: cred.username.as_deref(),
        email: cred.email.as_deref(),
        secret: &secret,
        declared_scopes: &cred.scopes,
        expiry: credential::expiry(cred.expires_on, Utc::now().date_naive()),
    };
    // A credential with its own client certificate lists over clients presenting it.
    let own = super::client_certs::clients_for(st, Some(&cred))
        .await
        .map_err(|()| Error::Internal(format!("the client key of credential {} does not open", cred.id)))?;
    let forge = own.as_ref().map_or(&st.forge, |o| o.checker().forge);
    let listed = match (&source.scope, cred.kind) {
        // A GitHub App lists what its installation on the owner may use.
        (ImportScope::Owner(owner), CredentialKind::GithubApp) if source.host.provider == Provider::Github => {
            let app = berth_forge::github_app::GithubApp {
                app_id: cred.app_id.as_deref().unwrap_or_default(),
                installation_id: cred.installation_id,
                private_key: &secret,
            };
            forge.github_app_list(&api_url, owner, &app).await
        }
        _ => forge.list_repositories(source.host.provider, &api_url, &source.scope, &view_cred).await,
    }
    .map_err(|f| super::checks::fit_error(u, Error::CheckFailed(vec![f.step])))?;
    let mut items = Vec::with_capacity(listed.len());
    for r in listed {
        // Stored canonical, so the registration's duplicate check and this mark agree.
        let (clone_url, existing) = match CloneUrl::parse(&r.clone_url, &st.config.integrations) {
            Ok(url) => {
                let existing = st.store.find_by_repo_key(&url.repository_key()).await?.map(|e| (e.id, e.name));
                (url.canonical(), existing)
            }
            Err(_) => (r.clone_url, None),
        };
        items.push(NewImportItem {
            full_name: r.full_name,
            slug: r.slug,
            name: r.name,
            clone_url,
            private: r.private,
            existing,
        });
    }
    let new = NewImport {
        credential_id: cred.id,
        credential_name: cred.name.clone(),
        source: source.canonical(),
        provider: source.host.provider.as_str().to_owned(),
        created_by: u.user.username.clone(),
    };
    let row = st.store.create_import(&new, &items).await?;
    tracing::info!(import = row.id, listed = row.listed, "import listed");
    let detail = format!("{} with credential {:?}: {} repositories listed", row.source, cred.name, row.listed);
    u.audit(&st.store, "import.create", "import", Some(row.id), &row.source, detail).await;
    load(st, row.id).await
}

/// An import with every listed repository and its progress.
pub async fn show(st: &AppState, u: &CurrentUser, id: i64) -> Result<Import> {
    u.require(Action::ReadRepositories)?;
    load(st, id).await
}

/// Select repositories of an import and register them in the background; answers at once with
/// the import (its progress is read with [`show`]).
pub async fn register(st: &AppState, u: &CurrentUser, id: i64, req: ImportRegister) -> Result<Import> {
    u.require(Action::RegisterRepository)?;
    let row = st.store.get_import(id).await?;
    // Exactly one of the two: a list, or all.
    if req.all != req.repositories.is_empty() {
        return Err(Error::invalid(
            "give either repositories (full names as listed) or all: true",
            "name the repositories to register, such as {\"repositories\": [\"acme/app\"]}, or send {\"all\": true}",
        ));
    }
    if row.credential_id.is_none() {
        return Err(Error::Conflict(Conflict::CredentialGone));
    }
    let items = st.store.import_items(id).await?;
    let by_name: HashMap<String, &ImportItemRow> = items.iter().map(|i| (i.full_name.to_lowercase(), i)).collect();
    let chosen: Vec<&ImportItemRow> = if req.all {
        items.iter().collect()
    } else {
        let mut chosen = Vec::new();
        let mut unknown = Vec::new();
        for name in &req.repositories {
            match by_name.get(&name.trim().to_lowercase()) {
                Some(i) => chosen.push(*i),
                None => unknown.push(name.chars().take(100).collect::<String>()),
            }
        }
        if !unknown.is_empty() {
            let shown: Vec<String> = unknown.iter().take(10).map(|n| format!("{n:?}")).collect();
            return Err(Error::invalid(
                format!("the import did not list {}", shown.join(", ")),
                "use the full names the import lists (GET /api/v1/imports/{id}), such as acme/app",
            ));
        }
        chosen
    };
    let ids: Vec<i64> = chosen.iter().map(|i| i.id).collect();
    let waiting = st.store.select_import_items(id, &ids, Utc::now()).await?;
    let detail = format!("{} of {} repositories selected, {waiting} to register", ids.len(), items.len());
    u.audit(&st.store, "import.register", "import", Some(id), &row.source, detail).await;
    tracing::info!(import = id, waiting, "import registering");
    let (st2, u2) = (st.clone(), u.clone());
    tokio::spawn(async move { run::register_pending(&st2, &u2, id).await });
    load(st, id).await
}

/// Whether an item is finished (for callers that poll).
pub fn is_final(status: &str) -> bool {
    matches!(
        ImportItemStatus::parse(status),
        Some(ImportItemStatus::Registered | ImportItemStatus::Failed | ImportItemStatus::Skipped)
    )
}
