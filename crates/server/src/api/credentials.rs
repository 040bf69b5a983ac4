//! `/api/v1/credentials`: adapters over [`crate::service::credentials`]. No response ever
//! carries the secret.

use super::extract::{ApiJson, ApiQuery, CredentialId, OptionalJson, PageQuery};
use crate::auth::CurrentUser;
use crate::error::ApiResult;
use crate::service::credentials;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use berth_proto::{Credential, CredentialCreate, CredentialPage, CredentialUpdate, CredentialVerify, ErrorBody, Page};

/// Store a credential. The secret is sealed by the vault and never shown again.
#[utoipa::path(post, path = "/api/v1/credentials", tag = "credentials", operation_id = "credentials_create", request_body = CredentialCreate,
    responses((status = 201, body = Credential), (status = 403, description = "the caller's role does not allow it (`forbidden`)", body = ErrorBody),
        (status = 409, description = "a credential has the name (`name_taken`)", body = ErrorBody),
        (status = 422, description = "a field breaks a rule (`invalid_input`), an app password (`app_password_retired`), a GitHub App key that is no RSA key (`invalid_private_key`), or a client certificate that cannot be read (`client_certificate_invalid`), whose key is not its key (`client_key_mismatch`) or that has expired (`client_certificate_expired`)", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create(
    State(st): State<AppState>,
    u: CurrentUser,
    ApiJson(req): ApiJson<CredentialCreate>,
) -> ApiResult<(StatusCode, Json<Credential>)> {
    Ok((StatusCode::CREATED, Json(credentials::create(&st, &u, req).await?)))
}

/// Credentials by name (case-insensitive), a page at a time.
#[utoipa::path(get, path = "/api/v1/credentials", tag = "credentials", operation_id = "credentials_list", params(PageQuery),
    responses((status = 200, body = CredentialPage),
        (status = 422, description = "a cursor this list did not hand out (`invalid_cursor`)", body = ErrorBody)), security(("bearer" = [])))]
pub async fn list(
    State(st): State<AppState>,
    u: CurrentUser,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<Credential>>> {
    Ok(Json(credentials::page(&st, &u, &q.page()?).await?))
}

#[utoipa::path(get, path = "/api/v1/credentials/{id}", tag = "credentials", operation_id = "credentials_show", params(("id" = i64, Path)),
    responses((status = 200, body = Credential)), security(("bearer" = [])))]
pub async fn show(
    State(st): State<AppState>,
    u: CurrentUser,
    CredentialId(id): CredentialId,
) -> ApiResult<Json<Credential>> {
    Ok(Json(credentials::show(&st, &u, id).await?))
}

/// Update a credential. Sending `secret` replaces the token and re-checks every repository
/// that uses it (their latest check shows the result).
#[utoipa::path(patch, path = "/api/v1/credentials/{id}", tag = "credentials", operation_id = "credentials_update",
    params(("id" = i64, Path)), request_body = CredentialUpdate,
    responses((status = 200, body = Credential), (status = 403, description = "the caller's role does not allow it (`forbidden`)", body = ErrorBody),
        (status = 409, description = "another credential has the name (`name_taken`)", body = ErrorBody),
        (status = 422, description = "a field breaks a rule (`invalid_input`), or a new client certificate cannot be read (`client_certificate_invalid`), its key is not its key (`client_key_mismatch`) or it has expired (`client_certificate_expired`)", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn update(
    State(st): State<AppState>,
    u: CurrentUser,
    CredentialId(id): CredentialId,
    ApiJson(req): ApiJson<CredentialUpdate>,
) -> ApiResult<Json<Credential>> {
    let (cred, _) = credentials::update(&st, &u, id, req).await?;
    Ok(Json(cred))
}

/// Delete a credential; refused while a repository uses it.
#[utoipa::path(delete, path = "/api/v1/credentials/{id}", tag = "credentials", operation_id = "credentials_delete", params(("id" = i64, Path)),
    responses((status = 204, description = "deleted"), (status = 403, description = "the caller's role does not allow it (`forbidden`)", body = ErrorBody),
        (status = 409, description = "repositories use it (`credential_in_use`, naming them)", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn delete(
    State(st): State<AppState>,
    u: CurrentUser,
    CredentialId(id): CredentialId,
) -> ApiResult<StatusCode> {
    credentials::delete(&st, &u, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Verify a credential on its host, or at `url`: whether the host accepts it, who it says it
/// is, and its scopes against what Berth needs and this deployment wants (a clone URL runs the
/// Git steps too). The verdict is kept with the credential and returned in `verification`.
#[utoipa::path(post, path = "/api/v1/credentials/{id}/verify", tag = "credentials", operation_id = "credentials_verify",
    params(("id" = i64, Path)),
    request_body(content = Option<CredentialVerify>, description = "Optional; without `url` the credential's host"),
    responses((status = 200, description = "verified; `verification` holds the verdict, which may be a failure", body = Credential),
        (status = 403, description = "the caller's role does not allow it (`forbidden`)", body = ErrorBody),
        (status = 422, description = "the URL is not a clone URL or host (`invalid_url`, `secret_in_url`), or no host is known (`invalid_input`)", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn verify(
    State(st): State<AppState>,
    u: CurrentUser,
    CredentialId(id): CredentialId,
    OptionalJson(body): OptionalJson<CredentialVerify>,
) -> ApiResult<Json<Credential>> {
    let req = body.unwrap_or_default();
    Ok(Json(credentials::verify(&st, &u, id, req).await?))
}
