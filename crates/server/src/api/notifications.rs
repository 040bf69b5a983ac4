//! `/api/v1/notification-channels` and `/api/v1/notification-deliveries`: adapters over
//! [`crate::service::notifications`]. Administrators only.

use super::extract::{ApiJson, ChannelId, DeliveryId};
use crate::auth::CurrentUser;
use crate::error::ApiResult;
use crate::service::notifications;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use berth_proto::{Channel, ChannelCreate, ChannelPage, ChannelUpdate, Delivery, DeliveryPage, ErrorBody, Page};

fn whole<T>(items: Vec<T>) -> Page<T> {
    let total = i64::try_from(items.len()).unwrap_or(i64::MAX);
    Page { items, next: None, total, total_exact: true }
}

/// Create a notification channel: `webhook` (a signed JSON `POST`), `slack` (an incoming
/// webhook) or `email` (SMTP over TLS). Secrets (the signing secret, the Slack hook URL, the
/// SMTP password) are sealed and never returned.
#[utoipa::path(post, path = "/api/v1/notification-channels", tag = "notifications", operation_id = "channels_create", request_body = ChannelCreate,
    responses((status = 201, body = Channel), (status = 403, description = "only administrators manage notifications (`forbidden`)", body = ErrorBody),
        (status = 409, description = "another channel has this name (`name_taken`)", body = ErrorBody),
        (status = 422, description = "a setting breaks a rule (`invalid_input`, `secret_in_url`), or no such credential (`credential_not_found`)", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create(
    State(st): State<AppState>,
    u: CurrentUser,
    ApiJson(req): ApiJson<ChannelCreate>,
) -> ApiResult<(StatusCode, Json<Channel>)> {
    Ok((StatusCode::CREATED, Json(notifications::create(&st, &u, req).await?)))
}

/// Every notification channel, by name (one page).
#[utoipa::path(get, path = "/api/v1/notification-channels", tag = "notifications", operation_id = "channels_list",
    responses((status = 200, body = ChannelPage), (status = 403, description = "only administrators manage notifications (`forbidden`)", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(State(st): State<AppState>, u: CurrentUser) -> ApiResult<Json<Page<Channel>>> {
    Ok(Json(whole(notifications::list(&st, &u).await?)))
}

#[utoipa::path(get, path = "/api/v1/notification-channels/{id}", tag = "notifications", operation_id = "channels_show", params(("id" = i64, Path)),
    responses((status = 200, body = Channel), (status = 403, description = "only administrators manage notifications (`forbidden`)", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn show(State(st): State<AppState>, u: CurrentUser, ChannelId(id): ChannelId) -> ApiResult<Json<Channel>> {
    Ok(Json(notifications::show(&st, &u, id).await?))
}

/// Change a channel: the fields given change; a secret given replaces the sealed one.
#[utoipa::path(patch, path = "/api/v1/notification-channels/{id}", tag = "notifications", operation_id = "channels_update", params(("id" = i64, Path)),
    request_body = ChannelUpdate,
    responses((status = 200, body = Channel), (status = 403, description = "only administrators manage notifications (`forbidden`)", body = ErrorBody),
        (status = 409, description = "another channel has this name (`name_taken`)", body = ErrorBody),
        (status = 422, description = "a setting breaks a rule (`invalid_input`, `secret_in_url`), or no such credential (`credential_not_found`)", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn update(
    State(st): State<AppState>,
    u: CurrentUser,
    ChannelId(id): ChannelId,
    ApiJson(req): ApiJson<ChannelUpdate>,
) -> ApiResult<Json<Channel>> {
    Ok(Json(notifications::update(&st, &u, id, req).await?))
}

/// Delete a channel and its delivery log; answers what was deleted.
#[utoipa::path(delete, path = "/api/v1/notification-channels/{id}", tag = "notifications", operation_id = "channels_delete", params(("id" = i64, Path)),
    responses((status = 200, body = Channel), (status = 403, description = "only administrators manage notifications (`forbidden`)", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn delete(State(st): State<AppState>, u: CurrentUser, ChannelId(id): ChannelId) -> ApiResult<Json<Channel>> {
    Ok(Json(notifications::delete(&st, &u, id).await?))
}

/// Queue a test event for this channel (enabled or not); it is delivered, retried and logged
/// like any other. Answers the queued delivery.
#[utoipa::path(post, path = "/api/v1/notification-channels/{id}/test", tag = "notifications", operation_id = "channels_test", params(("id" = i64, Path)),
    responses((status = 202, body = Delivery), (status = 403, description = "only administrators manage notifications (`forbidden`)", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn test(
    State(st): State<AppState>,
    u: CurrentUser,
    ChannelId(id): ChannelId,
) -> ApiResult<(StatusCode, Json<Delivery>)> {
    Ok((StatusCode::ACCEPTED, Json(notifications::send_test(&st, &u, id).await?)))
}

/// The channel's delivery log, newest first (the latest 200): state, attempts, the receiver's
/// last answer.
#[utoipa::path(get, path = "/api/v1/notification-channels/{id}/deliveries", tag = "notifications", operation_id = "channels_deliveries", params(("id" = i64, Path)),
    responses((status = 200, body = DeliveryPage), (status = 403, description = "only administrators manage notifications (`forbidden`)", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn deliveries(
    State(st): State<AppState>,
    u: CurrentUser,
    ChannelId(id): ChannelId,
) -> ApiResult<Json<Page<Delivery>>> {
    Ok(Json(whole(notifications::deliveries(&st, &u, id).await?)))
}

/// Send a delivery's event again, as a new delivery (a new `X-Berth-Delivery` id).
#[utoipa::path(post, path = "/api/v1/notification-deliveries/{id}/redeliver", tag = "notifications", operation_id = "deliveries_redeliver", params(("id" = i64, Path)),
    responses((status = 202, body = Delivery), (status = 403, description = "only administrators manage notifications (`forbidden`)", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn redeliver(
    State(st): State<AppState>,
    u: CurrentUser,
    DeliveryId(id): DeliveryId,
) -> ApiResult<(StatusCode, Json<Delivery>)> {
    Ok((StatusCode::ACCEPTED, Json(notifications::redeliver(&st, &u, id).await?)))
}
