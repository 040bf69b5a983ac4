//! A repository's webhook on its host (`/api/v1/repositories/{id}/webhook`), its stored branch
//! list (`/api/v1/repositories/{id}/branches`), and the receiver the hosts post deliveries to
//! (`/hooks/{provider}/{id}`): adapters over [`crate::service::host_webhooks`].

use super::extract::{in_range, ApiQuery, RepositoryId};
use crate::auth::CurrentUser;
use crate::error::{ApiError, ApiResult};
use crate::service::host_webhooks::{self, receive};
use crate::service::paging::{self, PageRequest};
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use berth_core::{Code, Provider};
use berth_proto::{BranchPage, ErrorBody, HookReceipt, Page, RepositoryWebhook, StoredBranch};

/// Register the repository's webhook on its host: Berth generates the secret, seals it, and
/// asks the host to post branch pushes to `public_url` + `/hooks/{provider}/{id}`.
#[utoipa::path(post, path = "/api/v1/repositories/{id}/webhook", tag = "repositories", operation_id = "repository_webhook_create",
    params(("id" = i64, Path)),
    responses((status = 201, body = RepositoryWebhook),
        (status = 403, description = "the caller's role does not allow it (`forbidden`)", body = ErrorBody),
        (status = 409, description = "the repository has a Berth webhook already (`webhook_exists`)", body = ErrorBody),
        (status = 422, description = "`public_url` is not set (`public_url_missing`), the host or credential kind has no webhook support (`webhook_not_supported`), or the host refused: the credential lacks the scope, named in the message (`scope_missing`), `access_denied`, `auth_failed`, `repository_not_found_or_no_access`, `webhook_refused`", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create(
    State(st): State<AppState>,
    u: CurrentUser,
    RepositoryId(id): RepositoryId,
) -> ApiResult<(StatusCode, Json<RepositoryWebhook>)> {
    Ok((StatusCode::CREATED, Json(host_webhooks::register(&st, &u, id).await?)))
}

/// Remove the repository's webhook from its host and forget it. When the host refuses, both
/// stay as they are.
#[utoipa::path(delete, path = "/api/v1/repositories/{id}/webhook", tag = "repositories", operation_id = "repository_webhook_delete",
    params(("id" = i64, Path)),
    responses((status = 204, description = "removed from the host and from Berth"),
        (status = 403, description = "the caller's role does not allow it (`forbidden`)", body = ErrorBody),
        (status = 422, description = "the host refused (`scope_missing`, `access_denied`, `auth_failed`, `webhook_refused`)", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn delete(
    State(st): State<AppState>,
    u: CurrentUser,
    RepositoryId(id): RepositoryId,
) -> ApiResult<StatusCode> {
    host_webhooks::remove(&st, &u, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The repository's stored branches by name, a page at a time, as its last check or the
/// host's last push left them (`total` is the list's size).
#[utoipa::path(get, path = "/api/v1/repositories/{id}/branches", tag = "repositories", operation_id = "repository_branches_list",
    params(("id" = i64, Path), BranchesQuery),
    responses((status = 200, body = BranchPage),
        (status = 422, description = "a cursor this list did not hand out (`invalid_cursor`)", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn branches(
    State(st): State<AppState>,
    u: CurrentUser,
    RepositoryId(id): RepositoryId,
    ApiQuery(q): ApiQuery<BranchesQuery>,
) -> ApiResult<Json<Page<StoredBranch>>> {
    let limit = in_range("limit", q.limit, 1, paging::MAX_LIMIT)?;
    let page = PageRequest { after: q.after, limit };
    Ok(Json(host_webhooks::branches(&st, &u, id, &page).await?))
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BranchesQuery {
    /// At most this many (1 to 1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// The `next` of the previous page; left out for the first page.
    pub after: Option<String>,
}

/// Where a repository's host posts webhook deliveries. No session or token: only a valid
/// HMAC-SHA256 signature of the body with the repository's webhook secret
/// (`X-Hub-Signature-256` from GitHub, `X-Hub-Signature` from Bitbucket, `sha256=<hex>`).
#[utoipa::path(post, path = "/hooks/{provider}/{id}", tag = "webhooks", operation_id = "host_webhook_receive",
    params(("provider" = Provider, Path), ("id" = i64, Path)),
    request_body(content = serde_json::Value, description = "the host's own event payload (GitHub `push`, Bitbucket Cloud `repo:push`, Data Center `repo:refs_changed`; pings are taken and change nothing)"),
    responses((status = 200, body = HookReceipt),
        (status = 400, description = "a signed push event that is not JSON (`invalid_input`)", body = ErrorBody),
        (status = 401, description = "no signature, or one that does not match (`webhook_signature_invalid`); counted on the repository", body = ErrorBody),
        (status = 404, description = "no repository with this id has a Berth webhook for this provider (`webhook_not_found`)", body = ErrorBody),
        (status = 413, description = "the body is larger than 5 MiB (`invalid_input`)", body = ErrorBody)))]
pub async fn receive(
    State(st): State<AppState>,
    Path((provider, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<HookReceipt>> {
    let Ok(id) = id.parse::<i64>() else {
        return Err(crate::service::Error::NotFound(crate::service::Entity::Webhook).into());
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let sig_name = Provider::parse(&provider).map_or("x-hub-signature", receive::signature_header);
    let signature = header(sig_name);
    let gate = receive::gate(&st, &provider, id, signature.as_deref()).await?;
    let bytes = axum::body::to_bytes(body, receive::MAX_DELIVERY_BYTES).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            Code::InvalidInput,
            "the delivery is larger than Berth reads (5 MiB)",
            "nothing to do: the next scheduled check reads the branches",
        )
    })?;
    let event = header("x-github-event").or_else(|| header("x-event-key"));
    let receipt =
        receive::deliver(&st, gate, signature.as_deref().unwrap_or_default(), event.as_deref(), &bytes).await?;
    Ok(Json(receipt))
}
