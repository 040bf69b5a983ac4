//! `/api/v1/credentials`: store, list, show, update (rotate) and delete credentials.
//! No response ever carries the secret.

use super::extract::{ApiJson, IdPath};
use crate::auth::{Action, CurrentUser};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use berth_core::credential::{self, CredentialRules, Expiry};
use berth_core::{Check, CredentialKind};
use berth_proto::{Credential, CredentialCreate, CredentialUpdate, ErrorBody, RepositoryRef};
use berth_store::{CredentialPatch, CredentialRow, NewCredential};
use secrecy::SecretString;
use std::collections::HashMap;

pub(crate) fn to_wire(row: CredentialRow, used_by: Vec<RepositoryRef>) -> Credential {
    let today = chrono::Utc::now().date_naive();
    let (status, days) = match credential::expiry(row.expires_on, today) {
        Expiry::Unknown => ("unknown", None),
        Expiry::Valid { days_left } => ("valid", Some(days_left)),
        Expiry::ExpiresSoon { days_left } => ("expires_soon", Some(days_left)),
        Expiry::Expired { days_ago } => ("expired", Some(-days_ago)),
    };
    // Recorded scopes are what the user says they granted; with none recorded there is
    // nothing to compare (the REST check reports what the host says instead).
    let scope_gaps = if row.kind == CredentialKind::BitbucketApiToken && !row.scopes.is_empty() {
        credential::missing_scopes(credential::FULL_SCOPES, &row.scopes)
            .into_iter()
            .map(|s| berth_proto::ScopeGap {
                scope: s.to_owned(),
                blocks: berth_core::scopes::capabilities_of(s).iter().map(|c| (*c).to_owned()).collect(),
            })
            .collect()
    } else {
        Vec::new()
    };
    let missing_scopes = if row.kind == CredentialKind::BitbucketApiToken {
        credential::missing_scopes(credential::REGISTRATION_SCOPES, &row.scopes).into_iter().map(str::to_owned).collect()
    } else {
        Vec::new()
    };
    let expiry_warning = credential::ExpiryWarning::of(row.expires_on, today).map(|w| berth_proto::Warning {
        code: w.code(),
        message: w.message(&row.name),
        remedy: w.remedy().to_owned(),
    });
    Credential {
        id: row.id,
        name: row.name,
        kind: row.kind,
        kind_label: row.kind.label().to_owned(),
        username: row.username,
        email: row.email,
        expires_on: row.expires_on,
        expiry_status: status.to_owned(),
        days_until_expiry: days,
        scopes: row.scopes,
        missing_scopes,
        scope_gaps,
        used_by,
        created_at: row.created_at,
        updated_at: row.updated_at,
        secret_updated_at: row.secret_updated_at,
        expiry_warning,
        auth_failures: row.auth_failures,
        checks_paused_at: row.checks_paused_at,
    }
}

fn clean(s: Option<String>) -> Option<String> {
    s.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

fn clean_scopes(scopes: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = scopes.into_iter().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect();
    out.sort();
    out.dedup();
    out
}

/// Store a credential. The secret is sealed by the vault and never shown again.
#[utoipa::path(post, path = "/api/v1/credentials", tag = "credentials", request_body = CredentialCreate,
    responses((status = 201, body = Credential), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create(State(st): State<AppState>, u: CurrentUser, ApiJson(req): ApiJson<CredentialCreate>) -> ApiResult<(StatusCode, Json<Credential>)> {
    Ok((StatusCode::CREATED, Json(create_credential(&st, &u, req).await?)))
}

pub async fn create_credential(st: &AppState, u: &CurrentUser, req: CredentialCreate) -> ApiResult<Credential> {
    u.require(Action::CreateCredential)?;
    let username = clean(req.username);
    let email = clean(req.email);
    let scopes = clean_scopes(req.scopes.unwrap_or_default());
    let name = req.name.trim().to_owned();
    CredentialRules { name: &name, username: username.as_deref(), email: email.as_deref(), scopes: &scopes, secret_len: req.secret.len() }
        .validate(req.kind)?;
    refuse_app_password(req.kind, &req.secret)?;
    let secret = SecretString::from(req.secret);
    let row = st
        .store
        .create_credential(NewCredential {
            name: &name,
            kind: req.kind,
            username: username.as_deref(),
            email: email.as_deref(),
            expires_on: req.expires_on,
            scopes: &scopes,
            secret: &secret,
        })
        .await?;
    tracing::info!(credential = row.id, kind = row.kind.as_str(), "credential stored");
    let detail = format!(
        "kind {}; identity {}; expires {}; {} scope(s)",
        row.kind.as_str(),
        row.username.as_deref().or(row.email.as_deref()).unwrap_or("-"),
        row.expires_on.map_or_else(|| "-".to_owned(), |d| d.to_string()),
        row.scopes.len()
    );
    u.audit(&st.store, "credential.create", "credential", Some(row.id), &row.name, detail).await;
    Ok(to_wire(row, Vec::new()))
}

#[utoipa::path(get, path = "/api/v1/credentials", tag = "credentials",
    responses((status = 200, body = Vec<Credential>), (status = 403, body = ErrorBody)), security(("bearer" = [])))]
pub async fn list(State(st): State<AppState>, u: CurrentUser) -> ApiResult<Json<Vec<Credential>>> {
    Ok(Json(list_credentials(&st, &u).await?))
}

pub async fn list_credentials(st: &AppState, u: &CurrentUser) -> ApiResult<Vec<Credential>> {
    u.require(Action::ReadCredentials)?;
    let mut used: HashMap<i64, Vec<RepositoryRef>> = HashMap::new();
    for r in st.store.list_repositories().await? {
        used.entry(r.credential_id).or_default().push(RepositoryRef { id: r.id, name: r.name });
    }
    let rows = st.store.list_credentials().await?;
    Ok(rows
        .into_iter()
        .map(|c| {
            let u = used.remove(&c.id).unwrap_or_default();
            to_wire(c, u)
        })
        .collect())
}

async fn with_usage(st: &AppState, row: CredentialRow) -> ApiResult<Credential> {
    let used = st.store.repositories_using(row.id).await?.into_iter().map(|(id, name)| RepositoryRef { id, name }).collect();
    Ok(to_wire(row, used))
}

#[utoipa::path(get, path = "/api/v1/credentials/{id}", tag = "credentials", params(("id" = i64, Path)),
    responses((status = 200, body = Credential), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn show(State(st): State<AppState>, u: CurrentUser, IdPath(id): IdPath) -> ApiResult<Json<Credential>> {
    Ok(Json(show_credential(&st, &u, id).await?))
}

pub async fn show_credential(st: &AppState, u: &CurrentUser, id: i64) -> ApiResult<Credential> {
    u.require(Action::ReadCredentials)?;
    let row = st.store.get_credential(id).await?;
    with_usage(st, row).await
}

/// A repository re-checked after its credential's token was replaced.
pub struct Recheck {
    pub repository: RepositoryRef,
    pub check: Check,
}

/// Update a credential. Sending `secret` replaces the token and re-checks every repository
/// that uses it (their latest check shows the result).
#[utoipa::path(patch, path = "/api/v1/credentials/{id}", tag = "credentials", params(("id" = i64, Path)), request_body = CredentialUpdate,
    responses((status = 200, body = Credential), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn update(State(st): State<AppState>, u: CurrentUser, IdPath(id): IdPath, ApiJson(req): ApiJson<CredentialUpdate>) -> ApiResult<Json<Credential>> {
    let (cred, _) = update_credential(&st, &u, id, req).await?;
    Ok(Json(cred))
}

/// Atlassian API tokens start with ATATT and app passwords with ATBB: an "API token" with the
/// app-password prefix is the retired kind, and would fail at its first request. Checked on
/// create and on every token replacement.
fn refuse_app_password(kind: berth_core::CredentialKind, secret: &str) -> ApiResult<()> {
    if kind == berth_core::CredentialKind::BitbucketApiToken && berth_core::scopes::looks_like_app_password(kind, None, None, secret) {
        let mut e = ApiError::from(berth_core::credential::app_password_retired());
        e.message = format!("this looks like a Bitbucket app password (it starts with ATBB), not an API token. {}", e.message);
        return Err(e);
    }
    Ok(())
}

pub async fn update_credential(st: &AppState, u: &CurrentUser, id: i64, req: CredentialUpdate) -> ApiResult<(Credential, Vec<Recheck>)> {
    u.require(Action::UpdateCredential)?;
    let cur = st.store.get_credential(id).await?;
    let name = req.name.map(|n| n.trim().to_owned()).unwrap_or_else(|| cur.name.clone());
    let username = match req.username { Some(u) => clean(u), None => cur.username.clone() };
    let email = match req.email { Some(e) => clean(e), None => cur.email.clone() };
    let scopes = req.scopes.map(clean_scopes).unwrap_or_else(|| cur.scopes.clone());
    // The secret is optional on update; validate the other fields as if it were present.
    let secret_len = req.secret.as_ref().map_or(1, String::len);
    CredentialRules { name: &name, username: username.as_deref(), email: email.as_deref(), scopes: &scopes, secret_len }.validate(cur.kind)?;
    if let Some(secret) = &req.secret {
        refuse_app_password(cur.kind, secret)?;
    }
    let rotated = req.secret.is_some();
    let mut changed = Vec::new();
    if name != cur.name {
        changed.push(format!("name {:?} -> {:?}", cur.name, name));
    }
    if username != cur.username {
        changed.push("username".to_owned());
    }
    if email != cur.email {
        changed.push("email".to_owned());
    }
    if scopes != cur.scopes {
        changed.push(format!("scopes ({})", scopes.len()));
    }
    if let Some(x) = req.expires_on.filter(|x| *x != cur.expires_on) {
        changed.push(format!("expiry {}", x.map_or_else(|| "none".to_owned(), |d| d.to_string())));
    }
    if rotated {
        changed.push("token replaced".to_owned());
    }
    let row = st
        .store
        .update_credential(
            id,
            CredentialPatch {
                name: Some(name),
                username: Some(username),
                email: Some(email),
                expires_on: req.expires_on,
                scopes: Some(scopes),
                secret: req.secret.map(SecretString::from),
            },
        )
        .await?;
    tracing::info!(credential = id, rotated, "credential updated");
    let mut rechecks = Vec::new();
    if rotated {
        for (rid, rname) in st.store.repositories_using(id).await? {
            let check = super::repositories::recheck(st, rid, berth_store::CheckReason::Credential).await?;
            rechecks.push(Recheck { repository: RepositoryRef { id: rid, name: rname }, check });
        }
        let ok = rechecks.iter().filter(|r| r.check.ok).count();
        changed.push(format!("re-checked {} repositories: {ok} ok, {} failed", rechecks.len(), rechecks.len() - ok));
    } else {
        // The store made every repository of this credential due; run them now, not at the
        // next poll.
        st.background.wake();
    }
    u.audit(&st.store, "credential.update", "credential", Some(id), &row.name, changed.join("; ")).await;
    Ok((with_usage(st, row).await?, rechecks))
}

/// Delete a credential; refused while a repository uses it.
#[utoipa::path(delete, path = "/api/v1/credentials/{id}", tag = "credentials", params(("id" = i64, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)), security(("bearer" = [])))]
pub async fn delete(State(st): State<AppState>, u: CurrentUser, IdPath(id): IdPath) -> ApiResult<StatusCode> {
    delete_credential(&st, &u, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn delete_credential(st: &AppState, u: &CurrentUser, id: i64) -> ApiResult<()> {
    u.require(Action::DeleteCredential)?;
    let row = st.store.get_credential(id).await?;
    st.store.delete_credential(id).await?;
    tracing::info!(credential = id, "credential deleted");
    u.audit(&st.store, "credential.delete", "credential", Some(id), &row.name, format!("kind {}", row.kind.as_str())).await;
    Ok(())
}

pub(crate) async fn resolve(st: &AppState, reference: &str) -> ApiResult<CredentialRow> {
    match st.store.find_credential(reference).await {
        Ok(c) => Ok(c),
        Err(berth_store::StoreError::NotFound(_)) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            berth_core::Code::CredentialNotFound,
            format!("no credential with id or name {:?}", reference.chars().take(100).collect::<String>()),
            "store the credential first (Admin > Credentials > Create Credential), then pick it here",
        )),
        Err(e) => Err(e.into()),
    }
}
