//! `/api/v1/credentials`: store, list, show, update (rotate) and delete credentials.
//! No response ever carries the secret.

use super::extract::{ApiJson, IdPath};
use crate::auth::CurrentUser;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use berth_core::credential::{self, CredentialRules, Expiry};
use berth_core::CredentialKind;
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
    let missing_scopes = if row.kind == CredentialKind::BitbucketApiToken {
        credential::missing_scopes(credential::REGISTRATION_SCOPES, &row.scopes).into_iter().map(str::to_owned).collect()
    } else {
        Vec::new()
    };
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
        used_by,
        created_at: row.created_at,
        updated_at: row.updated_at,
        secret_updated_at: row.secret_updated_at,
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
    responses((status = 201, body = Credential), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create(State(st): State<AppState>, _u: CurrentUser, ApiJson(req): ApiJson<CredentialCreate>) -> ApiResult<(StatusCode, Json<Credential>)> {
    let username = clean(req.username);
    let email = clean(req.email);
    let scopes = clean_scopes(req.scopes.unwrap_or_default());
    let name = req.name.trim().to_owned();
    CredentialRules { name: &name, username: username.as_deref(), email: email.as_deref(), scopes: &scopes, secret_len: req.secret.len() }
        .validate(req.kind)?;
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
    Ok((StatusCode::CREATED, Json(to_wire(row, Vec::new()))))
}

#[utoipa::path(get, path = "/api/v1/credentials", tag = "credentials",
    responses((status = 200, body = Vec<Credential>)), security(("bearer" = [])))]
pub async fn list(State(st): State<AppState>, _u: CurrentUser) -> ApiResult<Json<Vec<Credential>>> {
    let mut used: HashMap<i64, Vec<RepositoryRef>> = HashMap::new();
    for r in st.store.list_repositories().await? {
        used.entry(r.credential_id).or_default().push(RepositoryRef { id: r.id, name: r.name });
    }
    let rows = st.store.list_credentials().await?;
    Ok(Json(rows.into_iter().map(|c| {
        let u = used.remove(&c.id).unwrap_or_default();
        to_wire(c, u)
    }).collect()))
}

async fn with_usage(st: &AppState, row: CredentialRow) -> ApiResult<Credential> {
    let used = st.store.repositories_using(row.id).await?.into_iter().map(|(id, name)| RepositoryRef { id, name }).collect();
    Ok(to_wire(row, used))
}

#[utoipa::path(get, path = "/api/v1/credentials/{id}", tag = "credentials", params(("id" = i64, Path)),
    responses((status = 200, body = Credential), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn show(State(st): State<AppState>, _u: CurrentUser, IdPath(id): IdPath) -> ApiResult<Json<Credential>> {
    let row = st.store.get_credential(id).await?;
    Ok(Json(with_usage(&st, row).await?))
}

/// Update a credential. Sending `secret` rotates the token.
#[utoipa::path(patch, path = "/api/v1/credentials/{id}", tag = "credentials", params(("id" = i64, Path)), request_body = CredentialUpdate,
    responses((status = 200, body = Credential), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn update(State(st): State<AppState>, _u: CurrentUser, IdPath(id): IdPath, ApiJson(req): ApiJson<CredentialUpdate>) -> ApiResult<Json<Credential>> {
    let cur = st.store.get_credential(id).await?;
    let name = req.name.map(|n| n.trim().to_owned()).unwrap_or_else(|| cur.name.clone());
    let username = match req.username { Some(u) => clean(u), None => cur.username.clone() };
    let email = match req.email { Some(e) => clean(e), None => cur.email.clone() };
    let scopes = req.scopes.map(clean_scopes).unwrap_or_else(|| cur.scopes.clone());
    // The secret is optional on update; validate the other fields as if it were present.
    let secret_len = req.secret.as_ref().map_or(1, String::len);
    CredentialRules { name: &name, username: username.as_deref(), email: email.as_deref(), scopes: &scopes, secret_len }.validate(cur.kind)?;
    let rotated = req.secret.is_some();
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
    Ok(Json(with_usage(&st, row).await?))
}

/// Delete a credential; refused while a repository uses it.
#[utoipa::path(delete, path = "/api/v1/credentials/{id}", tag = "credentials", params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)), security(("bearer" = [])))]
pub async fn delete(State(st): State<AppState>, _u: CurrentUser, IdPath(id): IdPath) -> ApiResult<StatusCode> {
    st.store.delete_credential(id).await?;
    tracing::info!(credential = id, "credential deleted");
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn resolve(st: &AppState, reference: &str) -> ApiResult<CredentialRow> {
    match st.store.find_credential(reference).await {
        Ok(c) => Ok(c),
        Err(berth_store::StoreError::NotFound { .. }) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            berth_core::Code::CredentialNotFound,
            format!("no credential with id or name {:?}", reference.chars().take(100).collect::<String>()),
            "store the credential first (Admin > Credentials > Create Credential), then pick it here",
        )),
        Err(e) => Err(e.into()),
    }
}
