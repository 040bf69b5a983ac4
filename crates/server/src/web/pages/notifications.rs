//! Admin > Notifications: the channels, adding one, a channel's delivery log with "send a test
//! event" and "redeliver" (use cases in `service::notifications`).

use super::{enc, fail, layout, ok, see_other, Q};
use crate::error::ApiError;
use crate::service::notifications;
use crate::state::AppState;
use crate::web::views::{when, ChannelDetailPage, ChannelRowView, DeliveryView, NotificationsPage, Problem};
use crate::web::{Posted, WebResult, WebUser};
use axum::extract::{Path, State};
use berth_proto::{Channel, ChannelCreate, CredentialSelector, SmtpSettings};

fn row(c: &Channel) -> ChannelRowView {
    let mut only = Vec::new();
    if let Some(p) = &c.repository_pattern {
        only.push(format!("repositories {p}"));
    }
    if let Some(r) = &c.credential {
        only.push(format!("credential {}", r.name));
    }
    ChannelRowView {
        id: c.id,
        name: c.name.clone(),
        kind: c.kind.clone(),
        target: c.target.clone(),
        events: if c.events.is_empty() { "all".to_owned() } else { c.events.join(", ") },
        filter: if only.is_empty() { "-".to_owned() } else { only.join("; ") },
        enabled: c.enabled,
    }
}

pub async fn notifications(State(st): State<AppState>, wu: WebUser, q: Q) -> WebResult {
    let channels = notifications::list(&st, &wu.cu).await.map_err(fail(&wu))?;
    let problem = q.0.get("error").map(|m| Problem { message: m.clone(), ..Problem::default() });
    let mut l = layout(&wu, "Notifications", "notifications");
    if let Some(name) = q.0.get("added") {
        l = super::flash(l, "ok", format!("Added channel {name}."));
    } else if let Some(name) = q.0.get("deleted") {
        l = super::flash(l, "ok", format!("Deleted channel {name}."));
    }
    ok(&NotificationsPage {
        l,
        channels: channels.iter().map(row).collect(),
        event_kinds: berth_proto::EVENT_KINDS.to_vec(),
        problem,
    })
}

/// The form as the API's request; secrets are passed on, never written back into a page.
fn request_of(p: &Posted) -> ChannelCreate {
    let f = &p.form;
    let kind = f.get("kind");
    let smtp = (kind == "email").then(|| SmtpSettings {
        host: f.get("smtp_host"),
        port: f.get("smtp_port").trim().parse().unwrap_or(0),
        security: f.get("smtp_security"),
        username: f.opt("smtp_user"),
        password: Some(f.get("smtp_password")).filter(|s| !s.is_empty()),
        from: f.get("from"),
        to: f.get("to").split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect(),
    });
    ChannelCreate {
        name: f.get("name"),
        url: (kind != "email").then(|| f.get("url")),
        secret: (kind == "webhook").then(|| f.get("secret")),
        kind,
        smtp,
        events: f.all("events"),
        repository_pattern: f.opt("repository_pattern"),
        credential: f.opt("credential").map(|c| match c.parse::<i64>() {
            Ok(id) => CredentialSelector::Id(id),
            Err(_) => CredentialSelector::Name(c),
        }),
        enabled: true,
    }
}

pub async fn notification_create(State(st): State<AppState>, p: Posted) -> WebResult {
    match notifications::create(&st, &p.user.cu, request_of(&p)).await {
        Ok(c) => Ok(see_other(&format!("/admin/notifications?added={}", enc(&c.name)))),
        Err(e) => {
            let e = ApiError::from(e);
            if e.status == axum::http::StatusCode::FORBIDDEN {
                return Err(fail(&p.user)(e));
            }
            let why = format!("{}. {} ({})", e.message, e.remedy, e.code);
            Ok(see_other(&format!("/admin/notifications?error={}", enc(&why))))
        }
    }
}

pub async fn notification_channel(State(st): State<AppState>, wu: WebUser, Path(id): Path<i64>, q: Q) -> WebResult {
    let c = notifications::show(&st, &wu.cu, id).await.map_err(fail(&wu))?;
    let log = notifications::deliveries(&st, &wu.cu, id).await.map_err(fail(&wu))?;
    let mut l = layout(&wu, &format!("Channel {}", c.name), "notifications");
    if q.0.contains_key("queued") {
        l = super::flash(l, "ok", "Queued; it is sent within seconds. Reload to see its answer.");
    }
    ok(&ChannelDetailPage {
        l,
        channel: row(&c),
        deliveries: log
            .into_iter()
            .map(|d| DeliveryView {
                id: d.id,
                event: d.event,
                state: d.state,
                attempts: d.attempts,
                answer: d.status_code.map_or("-".to_owned(), |s| s.to_string()),
                when: when(d.updated_at),
                error: d.error.unwrap_or_default(),
                delivery_id: d.delivery_id,
            })
            .collect(),
    })
}

pub async fn notification_test(State(st): State<AppState>, Path(id): Path<i64>, p: Posted) -> WebResult {
    notifications::send_test(&st, &p.user.cu, id).await.map_err(fail(&p.user))?;
    Ok(see_other(&format!("/admin/notifications/{id}?queued=1")))
}

pub async fn notification_delete(State(st): State<AppState>, Path(id): Path<i64>, p: Posted) -> WebResult {
    let c = notifications::delete(&st, &p.user.cu, id).await.map_err(fail(&p.user))?;
    Ok(see_other(&format!("/admin/notifications?deleted={}", enc(&c.name))))
}

pub async fn notification_redeliver(State(st): State<AppState>, Path(id): Path<i64>, p: Posted) -> WebResult {
    let d = notifications::redeliver(&st, &p.user.cu, id).await.map_err(fail(&p.user))?;
    Ok(see_other(&format!("/admin/notifications/{}?queued=1", d.channel_id)))
}
