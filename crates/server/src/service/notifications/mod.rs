//! Notifications: channels an administrator manages, their delivery logs, a test event and
//! redelivery (these use cases), what a delivery says (`payload`), how it is sent (`send`),
//! the background sender and the expiry scan (`dispatch`), and the settings' rules
//! (`settings`).
//!
//! Events are raised by the store in the transaction of the change that caused them (a
//! recorded check, a credential's pause, a finished import, an expiry window entered), with
//! one delivery per channel whose subscription takes them; any instance's `dispatch` loop
//! leases due deliveries and sends each once.

pub mod dispatch;
pub mod payload;
pub mod send;
pub mod settings;

use super::credentials::resolve;
use super::{Entity, Error, Result};
use crate::auth::{Action, CurrentUser};
use crate::state::AppState;
use berth_proto::{Channel, ChannelCreate, ChannelKind, ChannelUpdate, CredentialRef, Delivery};
use berth_store::{ChannelPatch, ChannelRow, DeliveryRow, NewChannel, NewEvent};
use secrecy::SecretString;
use settings::ChannelSettings;

/// Rows a delivery log shows at most.
pub const LOG_LIMIT: i64 = 200;

async fn view(st: &AppState, row: ChannelRow) -> Result<Channel> {
    let settings = ChannelSettings::parse_stored(&row.settings)?;
    let credential = match row.credential_id {
        Some(id) => Some(match st.store.get_credential(id).await {
            Ok(c) => CredentialRef { id, name: c.name },
            // Deleted since: the filter still names it, and matches nothing.
            Err(_) => CredentialRef { id, name: format!("(deleted credential {id})") },
        }),
        None => None,
    };
    Ok(Channel {
        id: row.id,
        name: row.name,
        kind: row.kind,
        target: settings.target(),
        url: match &settings {
            ChannelSettings::Webhook { url } => Some(url.clone()),
            _ => None,
        },
        smtp: settings.smtp_view(),
        events: row.events,
        repository_pattern: row.repository_pattern,
        credential,
        enabled: row.enabled,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

pub fn delivery_view(d: DeliveryRow) -> Delivery {
    Delivery {
        id: d.id,
        channel_id: d.channel_id,
        event_id: d.event_id,
        event: d.event_kind,
        delivery_id: d.delivery_uuid,
        state: d.state,
        attempts: d.attempts,
        next_attempt_at: d.next_attempt_at,
        status_code: d.last_status,
        error: d.last_error,
        created_at: d.created_at,
        updated_at: d.updated_at,
    }
}

/// The settings and the secret to seal, from a create request.
fn settings_of(req: &ChannelCreate) -> Result<(ChannelSettings, SecretString)> {
    let Some(kind) = ChannelKind::parse(&req.kind) else {
        return Err(Error::invalid(
            format!("kind: {:?} is not a channel kind", req.kind.chars().take(30).collect::<String>()),
            "use webhook, slack or email",
        ));
    };
    match kind {
        ChannelKind::Webhook => {
            let url = settings::hook_url(req.url.as_deref().unwrap_or_default(), "url")?;
            let secret = settings::signing_secret(req.secret.as_deref())?;
            Ok((ChannelSettings::Webhook { url: url.to_string() }, SecretString::from(secret.to_owned())))
        }
        ChannelKind::Slack => {
            let url = settings::hook_url(req.url.as_deref().unwrap_or_default(), "url")?;
            let host = url.host_str().unwrap_or_default().to_owned();
            Ok((ChannelSettings::Slack { host }, SecretString::from(url.to_string())))
        }
        ChannelKind::Email => {
            let Some(smtp) = &req.smtp else {
                return Err(Error::invalid(
                    "smtp: an email channel needs its SMTP relay",
                    "give smtp.host, port, security, from and to",
                ));
            };
            let e = settings::email_settings(smtp)?;
            let password = smtp.password.clone().unwrap_or_default();
            if e.username.is_some() && password.is_empty() {
                return Err(Error::invalid("smtp.password: a user name needs its password", "give both, or neither"));
            }
            Ok((ChannelSettings::Email(e), SecretString::from(password)))
        }
    }
}

pub async fn create(st: &AppState, u: &CurrentUser, req: ChannelCreate) -> Result<Channel> {
    u.require(Action::ManageSettings)?;
    let name = settings::channel_name(&req.name)?;
    let (settings, secret) = settings_of(&req)?;
    let events = settings::event_kinds(&req.events)?;
    let pattern = settings::pattern(req.repository_pattern.as_deref())?;
    let credential = match &req.credential {
        Some(c) => Some(resolve(st, c).await?.id),
        None => None,
    };
    let settings_json = serde_json::to_string(&settings).map_err(|e| Error::internal(&e))?;
    let row = st
        .store
        .create_channel(NewChannel {
            name: &name,
            kind: settings.kind().as_str(),
            settings: &settings_json,
            events: &events,
            repository_pattern: pattern.as_deref(),
            credential_id: credential,
            enabled: req.enabled,
            secret: &secret,
        })
        .await?;
    tracing::info!(channel = row.id, kind = %row.kind, "notification channel created");
    let detail = format!("kind {}; target {}; events {}", row.kind, settings.target(), describe_events(&row.events));
    u.audit(&st.store, "channel.create", "notification_channel", Some(row.id), &row.name, detail).await;
    view(st, row).await
}

fn describe_events(events: &[String]) -> String {
    if events.is_empty() {
        "all".to_owned()
    } else {
        events.join(",")
    }
}

pub async fn list(st: &AppState, u: &CurrentUser) -> Result<Vec<Channel>> {
    u.require(Action::ManageSettings)?;
    let mut out = Vec::new();
    for row in st.store.list_channels().await? {
        out.push(view(st, row).await?);
    }
    Ok(out)
}

pub async fn show(st: &AppState, u: &CurrentUser, id: i64) -> Result<Channel> {
    u.require(Action::ManageSettings)?;
    let row = st.store.get_channel(id).await?;
    view(st, row).await
}

pub async fn update(st: &AppState, u: &CurrentUser, id: i64, req: ChannelUpdate) -> Result<Channel> {
    u.require(Action::ManageSettings)?;
    let cur = st.store.get_channel(id).await?;
    let current = ChannelSettings::parse_stored(&cur.settings)?;
    let mut patch = ChannelPatch::default();
    let mut changed: Vec<&str> = Vec::new();
    if let Some(n) = &req.name {
        patch.name = Some(settings::channel_name(n)?);
        changed.push("name");
    }
    match (&current, &req.url, &req.secret, &req.smtp) {
        (ChannelSettings::Webhook { .. }, url, secret, None) => {
            if let Some(url) = url {
                let u = settings::hook_url(url, "url")?;
                patch.settings = Some(json(&ChannelSettings::Webhook { url: u.to_string() })?);
                changed.push("url");
            }
            if let Some(s) = secret {
                patch.secret = Some(SecretString::from(settings::signing_secret(Some(s))?.to_owned()));
                changed.push("secret");
            }
        }
        (ChannelSettings::Slack { .. }, url, None, None) => {
            if let Some(url) = url {
                let u = settings::hook_url(url, "url")?;
                let host = u.host_str().unwrap_or_default().to_owned();
                patch.settings = Some(json(&ChannelSettings::Slack { host })?);
                patch.secret = Some(SecretString::from(u.to_string()));
                changed.push("url");
            }
        }
        (ChannelSettings::Email(_), None, None, smtp) => {
            if let Some(smtp) = smtp {
                let e = settings::email_settings(smtp)?;
                patch.settings = Some(json(&ChannelSettings::Email(e))?);
                if let Some(p) = &smtp.password {
                    patch.secret = Some(SecretString::from(p.clone()));
                }
                changed.push("smtp");
            }
        }
        _ => {
            return Err(Error::invalid(
                format!("a {} channel does not take these fields", cur.kind),
                "webhook: url and secret; slack: url; email: smtp",
            ))
        }
    }
    if let Some(ev) = &req.events {
        patch.events = Some(settings::event_kinds(ev)?);
        changed.push("events");
    }
    if let Some(p) = &req.repository_pattern {
        patch.repository_pattern = Some(settings::pattern(p.as_deref())?);
        changed.push("repository_pattern");
    }
    if let Some(c) = &req.credential {
        patch.credential_id = Some(match c {
            Some(c) => Some(resolve(st, c).await?.id),
            None => None,
        });
        changed.push("credential");
    }
    if let Some(e) = req.enabled {
        patch.enabled = Some(e);
        changed.push(if e { "enabled" } else { "disabled" });
    }
    let row = st.store.update_channel(id, patch).await?;
    u.audit(&st.store, "channel.update", "notification_channel", Some(id), &row.name, changed.join(", ")).await;
    view(st, row).await
}

fn json(s: &ChannelSettings) -> Result<String> {
    serde_json::to_string(s).map_err(|e| Error::internal(&e))
}

pub async fn delete(st: &AppState, u: &CurrentUser, id: i64) -> Result<Channel> {
    u.require(Action::ManageSettings)?;
    let row = st.store.get_channel(id).await?;
    let shown = view(st, row.clone()).await?;
    st.store.delete_channel(id).await?;
    u.audit(&st.store, "channel.delete", "notification_channel", Some(id), &row.name, format!("kind {}", row.kind))
        .await;
    Ok(shown)
}

/// Queues a test event for this channel alone; it is delivered like any other.
pub async fn send_test(st: &AppState, u: &CurrentUser, id: i64) -> Result<Delivery> {
    u.require(Action::ManageSettings)?;
    let row = st.store.get_channel(id).await?;
    let event = NewEvent {
        kind: berth_proto::TEST_EVENT.to_owned(),
        subject: "channel".to_owned(),
        subject_id: Some(row.id),
        subject_name: row.name.clone(),
        message: Some(format!("a test event sent by {} from Berth", u.user.username)),
        details: String::new(),
        ..NewEvent::default()
    };
    let queued = st.store.enqueue_event(&event, Some(row.id)).await?;
    st.instance.notifications_wake.notify_one();
    u.audit(&st.store, "channel.test", "notification_channel", Some(id), &row.name, String::new()).await;
    let Some(delivery) = queued.first() else { return Err(Error::NotFound(Entity::NotificationDelivery)) };
    Ok(delivery_view(st.store.get_delivery(*delivery).await?))
}

/// The channel's delivery log, newest first.
pub async fn deliveries(st: &AppState, u: &CurrentUser, id: i64) -> Result<Vec<Delivery>> {
    u.require(Action::ManageSettings)?;
    st.store.get_channel(id).await?;
    Ok(st.store.list_deliveries(id, LOG_LIMIT).await?.into_iter().map(delivery_view).collect())
}

/// Sends a delivery's event again, as a new delivery with its own id.
pub async fn redeliver(st: &AppState, u: &CurrentUser, delivery_id: i64) -> Result<Delivery> {
    u.require(Action::ManageSettings)?;
    let old = st.store.get_delivery(delivery_id).await?;
    let channel_id = old.channel_id;
    let channel = st.store.get_channel(channel_id).await?;
    let new = st.store.redeliver(delivery_id).await?;
    st.instance.notifications_wake.notify_one();
    let detail = format!("delivery {} of event {} as {}", old.id, old.event_kind, new.id);
    u.audit(&st.store, "channel.redeliver", "notification_channel", Some(channel_id), &channel.name, detail).await;
    Ok(delivery_view(new))
}
