//! Notification channels (`/api/v1/notification-channels`), their delivery logs, and the
//! event every channel receives (the JSON a `webhook` channel is sent).

use crate::*;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

wire_enum! {
    /// How a channel delivers.
    ChannelKind {
        /// A JSON `POST` of the event, signed with HMAC-SHA256 (`X-Berth-Signature: sha256=<hex>`).
        Webhook = "webhook",
        /// A message in Slack's incoming-webhook format (Mattermost and Teams' Slack-compatible
        /// hooks take it too).
        Slack = "slack",
        /// An email through an SMTP relay (STARTTLS or TLS).
        Email = "email",
    }
}

wire_enum! {
    /// How an email channel secures its SMTP connection; never plain text.
    SmtpSecurity {
        /// Connect in plain text, then STARTTLS, which the server must offer (port 587, 25).
        Starttls = "starttls",
        /// TLS from the first byte (port 465).
        Tls = "tls",
    }
}

wire_enum! {
    /// Where a delivery stands.
    DeliveryState {
        /// Waiting for its first or next attempt.
        Pending = "pending",
        Delivered = "delivered",
        /// Given up after retrying for a day, or refused for good.
        Failed = "failed",
    }
}

/// Every event kind, as `events` subscriptions and `X-Berth-Event` spell them.
pub const EVENT_KINDS: &[&str] = &[
    "repository.failed",
    "repository.recovered",
    "credential.expiring",
    "credential.expired",
    "credential.checks_paused",
    "import.finished",
];

/// The kind of the event "send a test event" sends.
pub const TEST_EVENT: &str = "test";

/// An email channel's SMTP relay and addresses.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    #[schema(value_type = SmtpSecurity)]
    pub security: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Write-only: never returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    pub from: String,
    pub to: Vec<String>,
}

/// `POST /api/v1/notification-channels`.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelCreate {
    pub name: String,
    #[schema(value_type = ChannelKind)]
    pub kind: String,
    /// `webhook`: where events are posted. `slack`: the incoming-webhook URL, which is itself
    /// a secret: it is sealed like one and only its host is shown afterwards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// `webhook`: the signing secret (at least 16 characters). Write-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// `email`: the relay and the addresses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp: Option<SmtpSettings>,
    /// Event kinds to send (see `EVENT_KINDS`); absent or empty: all.
    #[serde(default)]
    pub events: Vec<String>,
    /// Only events of repositories whose name matches this pattern (`*`, `?`, case ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository_pattern: Option<String>,
    /// Only events about this credential and its repositories.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<CredentialSelector>,
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
}

fn enabled_by_default() -> bool {
    true
}

/// `PATCH /api/v1/notification-channels/{id}`: the fields given change.
#[derive(Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Replaces the SMTP settings; a missing `password` keeps the stored one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp: Option<SmtpSettings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<String>>,
    /// `null` removes the pattern.
    #[serde(default, with = "double_option", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub repository_pattern: Option<Option<String>>,
    /// `null` removes the credential filter.
    #[serde(default, with = "double_option", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<CredentialSelector>)]
    pub credential: Option<Option<CredentialSelector>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// An email channel's settings as shown: no password.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SmtpView {
    pub host: String,
    pub port: u16,
    #[schema(value_type = SmtpSecurity)]
    pub security: String,
    pub username: Option<String>,
    pub from: String,
    pub to: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Channel {
    pub id: i64,
    pub name: String,
    #[schema(value_type = ChannelKind)]
    pub kind: String,
    /// Where deliveries go, fit to show: the webhook URL, the Slack hook's host, or
    /// `smtp://host:port`.
    pub target: String,
    /// `webhook`: the URL events are posted to.
    pub url: Option<String>,
    pub smtp: Option<SmtpView>,
    /// Event kinds sent; empty: all.
    pub events: Vec<String>,
    pub repository_pattern: Option<String>,
    pub credential: Option<CredentialRef>,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One delivery of one event to one channel.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Delivery {
    pub id: i64,
    pub channel_id: i64,
    pub event_id: i64,
    /// The event kind (`X-Berth-Event`).
    pub event: String,
    /// The `X-Berth-Delivery` id.
    pub delivery_id: String,
    #[schema(value_type = DeliveryState)]
    pub state: String,
    pub attempts: i64,
    /// When the next attempt is due (pending deliveries).
    pub next_attempt_at: DateTime<Utc>,
    /// The receiver's answer to the last attempt: its HTTP status, or the SMTP reply code.
    pub status_code: Option<i64>,
    /// Why the last attempt failed.
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What the event is about.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EventSubject {
    /// `repository`, `credential`, `import` or `channel` (a test event).
    #[serde(rename = "type")]
    pub kind: String,
    pub id: Option<i64>,
    pub name: String,
    /// Its page in Berth, when `public_url` is configured.
    pub url: Option<String>,
}

/// The failing step of a check, or what the event asks a person to do.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EventFinding {
    pub code: Option<String>,
    pub message: Option<String>,
    pub remedy: Option<String>,
}

/// The JSON body a `webhook` channel receives (and the data of every other kind). Never holds
/// a secret.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NotificationEvent {
    /// The event id; the same in every delivery of the event.
    pub id: i64,
    /// The event kind (as `X-Berth-Event`).
    pub event: String,
    /// This delivery's id (as `X-Berth-Delivery`).
    pub delivery: String,
    pub occurred_at: DateTime<Utc>,
    /// A one-line summary, as the Slack and email channels say it.
    pub summary: String,
    pub subject: EventSubject,
    pub credential_id: Option<i64>,
    pub old_status: Option<String>,
    pub new_status: Option<String>,
    pub finding: Option<EventFinding>,
    /// What else the event says: an expiry window, an import's counts.
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}
