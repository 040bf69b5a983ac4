//! `/api/v1/credential-templates`: adapters over [`crate::service::templates`].

use super::extract::{ApiJson, ApiQuery, TemplateId};
use crate::auth::CurrentUser;
use crate::error::ApiResult;
use crate::service::templates;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use berth_proto::{CredentialTemplate, ErrorBody, TemplateCreate, TemplateMatch, TemplateMatchQuery};

/// Create a credential template: clone URLs under `url_prefix` use `credential` when a
/// registration, a Refresh or an import names none. Prefixes match on whole path segments of
/// the canonical clone URL; the longest matching prefix wins.
#[utoipa::path(post, path = "/api/v1/credential-templates", tag = "templates", operation_id = "templates_create", request_body = TemplateCreate,
    responses((status = 201, body = CredentialTemplate), (status = 403, description = "the caller's role does not allow it (`forbidden`)", body = ErrorBody),
        (status = 409, description = "a template has this URL prefix (`template_exists`)", body = ErrorBody),
        (status = 422, description = "the prefix is not a URL prefix (`invalid_url`, `secret_in_url`), or no such credential (`credential_not_found`)", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create(
    State(st): State<AppState>,
    u: CurrentUser,
    ApiJson(req): ApiJson<TemplateCreate>,
) -> ApiResult<(StatusCode, Json<CredentialTemplate>)> {
    Ok((StatusCode::CREATED, Json(templates::create(&st, &u, req).await?)))
}

/// Every credential template, longest prefix first (the order they are tried in).
#[utoipa::path(get, path = "/api/v1/credential-templates", tag = "templates", operation_id = "templates_list",
    responses((status = 200, body = Vec<CredentialTemplate>)), security(("bearer" = [])))]
pub async fn list(State(st): State<AppState>, u: CurrentUser) -> ApiResult<Json<Vec<CredentialTemplate>>> {
    Ok(Json(templates::list(&st, &u).await?))
}

/// Delete a credential template; answers what was deleted.
#[utoipa::path(delete, path = "/api/v1/credential-templates/{id}", tag = "templates", operation_id = "templates_delete", params(("id" = i64, Path)),
    responses((status = 200, body = CredentialTemplate), (status = 403, description = "the caller's role does not allow it (`forbidden`)", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn delete(
    State(st): State<AppState>,
    u: CurrentUser,
    TemplateId(id): TemplateId,
) -> ApiResult<Json<CredentialTemplate>> {
    Ok(Json(templates::delete(&st, &u, id).await?))
}

/// Which credential a clone URL would use without one named, and why: the template chosen and
/// every template compared, nearest first, each with why it was or was not chosen.
#[utoipa::path(get, path = "/api/v1/credential-templates/match", tag = "templates", operation_id = "templates_match", params(TemplateMatchQuery),
    responses((status = 200, body = TemplateMatch),
        (status = 422, description = "the URL is not a clone URL (`invalid_url`, `secret_in_url`)", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn explain(
    State(st): State<AppState>,
    u: CurrentUser,
    ApiQuery(q): ApiQuery<TemplateMatchQuery>,
) -> ApiResult<Json<TemplateMatch>> {
    Ok(Json(templates::explain(&st, &u, &q.url).await?))
}
