//! A channel's settings: read from a request and checked once, stored as JSON beside the
//! sealed secret, shown without the secret.

use super::super::{Error, Result};
use berth_proto::{ChannelKind, SmtpSecurity, SmtpSettings, SmtpView};
use serde::{Deserialize, Serialize};

/// What a channel needs to deliver, besides its sealed secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChannelSettings {
    /// Events are posted to `url`, signed with the secret.
    Webhook {
        url: String,
    },
    /// The hook URL is the secret; only its host is kept in the clear, to show.
    Slack {
        host: String,
    },
    Email(EmailSettings),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmailSettings {
    pub host: String,
    pub port: u16,
    pub security: String,
    pub username: Option<String>,
    pub from: String,
    pub to: Vec<String>,
}

impl ChannelSettings {
    pub fn kind(&self) -> ChannelKind {
        match self {
            ChannelSettings::Webhook { .. } => ChannelKind::Webhook,
            ChannelSettings::Slack { .. } => ChannelKind::Slack,
            ChannelSettings::Email(_) => ChannelKind::Email,
        }
    }

    /// Where deliveries go, fit to show.
    pub fn target(&self) -> String {
        match self {
            ChannelSettings::Webhook { url } => url.clone(),
            ChannelSettings::Slack { host } => format!("Slack-compatible hook at {host}"),
            ChannelSettings::Email(e) => format!("smtp://{}:{} to {}", e.host, e.port, e.to.join(", ")),
        }
    }

    pub fn smtp_view(&self) -> Option<SmtpView> {
        match self {
            ChannelSettings::Email(e) => Some(SmtpView {
                host: e.host.clone(),
                port: e.port,
                security: e.security.clone(),
                username: e.username.clone(),
                from: e.from.clone(),
                to: e.to.clone(),
            }),
            _ => None,
        }
    }

    pub fn parse_stored(text: &str) -> Result<ChannelSettings> {
        serde_json::from_str(text)
            .map_err(|e| Error::internal(&format!("a channel's stored settings do not read: {e}")))
    }
}

/// An http(s) URL without user information: where a webhook or Slack hook is.
pub fn hook_url(raw: &str, field: &str) -> Result<url::Url> {
    let bad =
        |why: &str| Error::invalid(format!("{field}: {why}"), "give the full http(s) URL the receiver listens on");
    let u = url::Url::parse(raw.trim()).map_err(|_| bad("is not a URL"))?;
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
        return Err(bad("is not an http(s) URL with a host"));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(Error::Invalid(super::super::Refusal::new(
            berth_core::Code::SecretInUrl,
            format!("{field}: carries a user name or password"),
            "remove them from the URL; a webhook channel signs its deliveries with its secret instead",
        )));
    }
    Ok(u)
}

/// A signing secret: long enough that guessing it is hopeless.
pub fn signing_secret(raw: Option<&str>) -> Result<&str> {
    match raw {
        Some(s) if s.chars().count() >= 16 && s.len() <= 256 => Ok(s),
        _ => Err(Error::invalid(
            "secret: a webhook channel needs a signing secret of 16 to 256 characters",
            "generate one (for example `openssl rand -hex 32`) and give the receiver the same secret",
        )),
    }
}

pub fn email_settings(s: &SmtpSettings) -> Result<EmailSettings> {
    let host = s.host.trim();
    if host.is_empty() || host.len() > 253 || host.contains(['/', ' ', '@']) {
        return Err(Error::invalid(
            "smtp.host: give the SMTP relay's host name or address",
            "such as smtp.example.com",
        ));
    }
    if s.port == 0 {
        return Err(Error::invalid("smtp.port: 0 is not a port", "587 for STARTTLS, 465 for TLS"));
    }
    if SmtpSecurity::parse(&s.security).is_none() {
        return Err(Error::invalid(
            format!("smtp.security: {:?} is not starttls or tls", s.security.chars().take(20).collect::<String>()),
            "Berth sends mail only over TLS: starttls (port 587) or tls (port 465)",
        ));
    }
    let address = |a: &str, field: &str| -> Result<String> {
        a.trim().parse::<lettre::message::Mailbox>().map(|m| m.to_string()).map_err(|_| {
            Error::invalid(
                format!("{field}: {:?} is not an email address", a.chars().take(100).collect::<String>()),
                "write an address such as berth@example.com or \"Berth <berth@example.com>\"",
            )
        })
    };
    let from = address(&s.from, "smtp.from")?;
    if s.to.is_empty() || s.to.len() > 50 {
        return Err(Error::invalid("smtp.to: give 1 to 50 recipients", "list the addresses to notify"));
    }
    let to = s.to.iter().map(|a| address(a, "smtp.to")).collect::<Result<Vec<_>>>()?;
    let username = s.username.as_deref().map(str::trim).filter(|u| !u.is_empty()).map(str::to_owned);
    Ok(EmailSettings { host: host.to_owned(), port: s.port, security: s.security.clone(), username, from, to })
}

/// Event kinds, each known; empty means all.
pub fn event_kinds(kinds: &[String]) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for k in kinds {
        if !berth_proto::EVENT_KINDS.contains(&k.as_str()) {
            return Err(Error::invalid(
                format!("events: {:?} is not an event", k.chars().take(60).collect::<String>()),
                format!("use some of: {}", berth_proto::EVENT_KINDS.join(", ")),
            ));
        }
        if !out.contains(k) {
            out.push(k.clone());
        }
    }
    Ok(out)
}

pub fn pattern(raw: Option<&str>) -> Result<Option<String>> {
    match raw.map(str::trim) {
        None => Ok(None),
        Some(p) if p.is_empty() || p.chars().count() > 200 => Err(Error::invalid(
            "repository_pattern: give a pattern of 1 to 200 characters",
            "such as team-* (`*` any characters, `?` one, case ignored), or leave it out for every repository",
        )),
        Some(p) => Ok(Some(p.to_owned())),
    }
}

pub fn channel_name(raw: &str) -> Result<String> {
    let n = raw.trim();
    if n.is_empty() || n.chars().count() > 100 || n.chars().any(char::is_control) {
        return Err(Error::invalid("name: give the channel a name of 1 to 100 characters", "such as ops-webhook"));
    }
    Ok(n.to_owned())
}
