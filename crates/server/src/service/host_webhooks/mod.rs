//! Webhooks on the host: registering the hook through which a repository's host tells Berth
//! about pushes (a secret Berth generates, sealed in the vault, the host told to post to
//! `public_url` + `/hooks/{provider}/{repository id}`), removing it, and reading the stored
//! branch list it keeps current. `receive.rs` is the receiver.

pub mod receive;

use super::{Conflict, Entity, Error, Refusal, Result};
use crate::auth::{Action, CurrentUser};
use crate::service::paging::{self, Kind, PageRequest};
use crate::state::AppState;
use berth_core::{credential, CloneUrl, Code, Provider};
use berth_forge::{hooks_supported, CredentialView, HookRefusal, HookTarget, NewHook};
use berth_proto::{BranchListSummary, Page, RepositoryWebhook, StoredBranch, Warning};
use berth_store::{CredentialRow, NewWebhook, RepositoryRow, WebhookRow};
use rand::RngCore;
use secrecy::SecretString;

/// What the host is asked to show as the hook's name.
const HOOK_DESCRIPTION: &str = "Berth: branch changes";

/// The URL a repository's host posts deliveries to, or why there is none.
pub(crate) fn hook_url(st: &AppState, provider: Provider, repository_id: i64) -> Result<String> {
    let Some(base) = &st.config.public_url else {
        return Err(Error::Invalid(Refusal::new(
            Code::PublicUrlMissing,
            "Berth's public_url is not set, so the host cannot be told where to send webhook deliveries",
            "set public_url in the configuration (or BERTH_PUBLIC_URL) to the address the host reaches Berth at, \
             then register the webhook again",
        )));
    };
    Ok(format!("{}/hooks/{}/{repository_id}", base.as_str().trim_end_matches('/'), provider.as_str()))
}

/// A repository's clone URL, credential and opened secret, when Berth can manage its hook.
struct HookAccess {
    url: CloneUrl,
    api_url: String,
    cred: CredentialRow,
    secret: SecretString,
}

fn not_supported(message: String) -> Error {
    Error::Invalid(Refusal::new(
        Code::WebhookNotSupported,
        message,
        "Berth registers webhooks on Bitbucket Cloud, Bitbucket Data Center and GitHub with a token or password \
         credential; register the hook on the host by hand otherwise, or rely on the scheduled checks",
    ))
}

/// Refuses what cannot have a Berth-managed hook before anything is asked of the host: a
/// provider without webhook support, a repository without a credential, a GitHub App.
pub(crate) async fn prerequisites(st: &AppState, url: &CloneUrl, cred: Option<&CredentialRow>) -> Result<()> {
    hook_url(st, url.provider, 0)?;
    let Some(cred) = cred else {
        return Err(not_supported(
            "the repository has no credential (it is checked anonymously), and a host only lets a credential create webhooks"
                .to_owned(),
        ));
    };
    if !hooks_supported(url.provider, cred.kind) || url.api_url.is_none() {
        return Err(not_supported(format!(
            "Berth cannot register webhooks on {} with a {} credential",
            url.provider,
            cred.kind.as_str()
        )));
    }
    Ok(())
}

async fn access(st: &AppState, row: &RepositoryRow) -> Result<HookAccess> {
    let url = CloneUrl::parse(&row.clone_url, &st.config.integrations)?;
    let cred = match row.credential_id {
        Some(id) => Some(st.store.get_credential(id).await?),
        None => None,
    };
    prerequisites(st, &url, cred.as_ref()).await?;
    let cred = cred.ok_or_else(|| Error::internal(&"a credential was checked for"))?;
    let secret = st.store.credential_secret(cred.id).await.map_err(|e| Error::internal(&e))?;
    let api_url = url.api_url.clone().ok_or_else(|| Error::internal(&"an API URL was checked for"))?;
    Ok(HookAccess { url, api_url, cred, secret })
}

fn view_of(a: &HookAccess) -> CredentialView<'_> {
    CredentialView {
        kind: a.cred.kind,
        username: a.cred.username.as_deref(),
        email: a.cred.email.as_deref(),
        secret: &a.secret,
        declared_scopes: &a.cred.scopes,
        expiry: credential::expiry(a.cred.expires_on, chrono::Utc::now().date_naive()),
    }
}

fn target(a: &HookAccess) -> HookTarget<'_> {
    HookTarget { provider: a.url.provider, api_url: &a.api_url, repo_path: &a.url.path }
}

fn refused(r: HookRefusal) -> Error {
    Error::Invalid(Refusal::new(r.code, r.message, r.remedy))
}

/// A fresh signing secret: 32 random bytes as hex (Bitbucket Cloud takes at most 128 characters).
fn new_secret() -> SecretString {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    SecretString::from(hex::encode(bytes))
}

/// Creates the hook on the host and keeps it with its sealed secret. When the store cannot keep
/// it, the hook is deleted from the host again, so no hook is left that Berth cannot verify.
pub(crate) async fn create(st: &AppState, row: &RepositoryRow) -> Result<WebhookRow> {
    if st.store.webhook(row.id).await?.is_some() {
        return Err(Error::Conflict(Conflict::WebhookExists));
    }
    let a = access(st, row).await?;
    let url = hook_url(st, a.url.provider, row.id)?;
    let secret = new_secret();
    let hook = NewHook { url: &url, secret: &secret, description: HOOK_DESCRIPTION };
    let hook_id = st.forge.create_hook(target(&a), &view_of(&a), hook).await.map_err(refused)?;
    let new = NewWebhook {
        repository_id: row.id,
        provider: a.url.provider.as_str(),
        hook_id: &hook_id,
        url: &url,
        secret: &secret,
    };
    match st.store.create_webhook(new).await {
        Ok(w) => Ok(w),
        Err(e) => {
            if let Err(r) = st.forge.delete_hook(target(&a), &view_of(&a), &hook_id).await {
                tracing::warn!(repository = row.id, hook = %hook_id, "could not delete a webhook Berth failed to keep: {}", r.message);
            }
            Err(e.into())
        }
    }
}

/// Register the repository's webhook on its host.
pub async fn register(st: &AppState, u: &CurrentUser, id: i64) -> Result<RepositoryWebhook> {
    u.require(Action::UpdateRepository)?;
    let row = st.store.get_repository(id).await?;
    let w = create(st, &row).await?;
    u.audit(
        &st.store,
        "repository.webhook.register",
        "repository",
        Some(id),
        &row.name,
        format!("hook {} posting to {}", w.hook_id, w.url),
    )
    .await;
    Ok(webhook_view(w))
}

/// Remove the repository's webhook from its host, then forget it. A host that refuses leaves
/// both as they are, and says why.
pub async fn remove(st: &AppState, u: &CurrentUser, id: i64) -> Result<()> {
    u.require(Action::UpdateRepository)?;
    let row = st.store.get_repository(id).await?;
    let w = st.store.webhook(id).await?.ok_or(Error::NotFound(Entity::Webhook))?;
    let a = access(st, &row).await?;
    st.forge.delete_hook(target(&a), &view_of(&a), &w.hook_id).await.map_err(refused)?;
    st.store.delete_webhook(id).await?;
    u.audit(&st.store, "repository.webhook.remove", "repository", Some(id), &row.name, format!("hook {}", w.hook_id))
        .await;
    Ok(())
}

/// Best effort at a repository's deletion: removes its webhook from the host. `Some` warning
/// when there was one and the host did not take it away (the repository is deleted anyway).
pub(crate) async fn remove_before_delete(st: &AppState, row: &RepositoryRow) -> Option<Warning> {
    let w = st.store.webhook(row.id).await.ok().flatten()?;
    let outcome = match access(st, row).await {
        Ok(a) => st.forge.delete_hook(target(&a), &view_of(&a), &w.hook_id).await.map_err(refused),
        Err(e) => Err(e),
    };
    let Err(e) = outcome else { return None };
    let why = match e {
        Error::Invalid(r) => r.message,
        other => format!("{other:?}"),
    };
    tracing::warn!(repository = row.id, hook = %w.hook_id, "the repository's webhook could not be removed from the host: {why}");
    Some(Warning {
        code: Code::WebhookRefused,
        message: format!("the webhook (id {}) could not be removed from the host: {why}", w.hook_id),
        remedy: format!("delete the webhook posting to {} in the repository's settings on the host", w.url),
    })
}

pub(crate) fn webhook_view(w: WebhookRow) -> RepositoryWebhook {
    RepositoryWebhook {
        hook_id: w.hook_id,
        url: w.url,
        deliveries: w.deliveries,
        rejected_deliveries: w.rejected,
        last_delivery_at: w.last_delivery_at,
        last_rejected_at: w.last_rejected_at,
        created_at: w.created_at,
    }
}

/// The stored branch list's summary and the webhook, for one repository's page.
pub(crate) async fn summary(st: &AppState, id: i64) -> Result<(Option<BranchListSummary>, Option<RepositoryWebhook>)> {
    let (head, hook) = tokio::try_join!(st.store.branch_list_head(id), st.store.webhook(id))?;
    let summary = head.map(|h| BranchListSummary {
        remote_default_branch: h.default_branch,
        branch_count: h.branch_count,
        source: h.source,
        updated_at: h.updated_at,
    });
    Ok((summary, hook.map(webhook_view)))
}

/// A page of a repository's stored branches by name, as its last check or push left them.
pub async fn branches(st: &AppState, u: &CurrentUser, id: i64, page: &PageRequest) -> Result<Page<StoredBranch>> {
    u.require(Action::ReadRepositories)?;
    st.store.get_repository(id).await?;
    let after = page.key(Kind::Branches)?;
    let limit = page.limit();
    let (rows, head) =
        tokio::try_join!(st.store.branches_page(id, after.as_deref(), limit + 1), st.store.branch_list_head(id))?;
    let total = head.map_or(0, |h| h.branch_count);
    Ok(paging::page_of(
        rows,
        limit,
        total,
        Kind::Branches,
        |b| b.name.clone(),
        |b| StoredBranch { name: b.name, commit: b.commit },
    ))
}
