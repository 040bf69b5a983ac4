//! Sending one delivery: a signed JSON `POST` (webhook), a Slack message, or an email. HTTP
//! goes through berth-net's `NetClient` like every other outbound request (network policy on
//! resolved addresses, timeouts, no redirects followed); SMTP connects to the address the same
//! policy allowed (`NetClient::probe`) and checks the certificate against the host's name.

use super::payload;
use super::settings::{ChannelSettings, EmailSettings};
use crate::state::AppState;
use berth_net::{Redirects, Request, Stage};
use berth_proto::NotificationEvent;
use hmac::{Hmac, Mac};
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE, USER_AGENT};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

/// How one attempt ended: the receiver's answer code (HTTP status or SMTP reply) when there
/// was one, and the reason when it failed.
#[derive(Debug)]
pub struct Attempt {
    pub status: Option<i64>,
    pub error: Option<String>,
}

impl Attempt {
    fn failed(status: Option<i64>, error: impl Into<String>) -> Attempt {
        Attempt { status, error: Some(error.into()) }
    }
}

/// `sha256=<hex>`: HMAC-SHA256 of `body` under `secret`, as `X-Berth-Signature` carries it.
pub fn signature(secret: &SecretString, body: &[u8]) -> String {
    match Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes()) {
        Ok(mut mac) => {
            mac.update(body);
            format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
        }
        // HMAC takes a key of any length; this arm cannot run.
        Err(_) => String::new(),
    }
}

pub async fn deliver(
    st: &AppState,
    settings: &ChannelSettings,
    secret: &SecretString,
    ev: &NotificationEvent,
) -> Attempt {
    match settings {
        ChannelSettings::Webhook { url } => {
            let body = match serde_json::to_vec(ev) {
                Ok(b) => b,
                Err(e) => return Attempt::failed(None, format!("cannot write the event: {e}")),
            };
            let sig = signature(secret, &body);
            let headers = [
                ("x-berth-signature", sig.as_str()),
                ("x-berth-event", ev.event.as_str()),
                ("x-berth-delivery", ev.delivery.as_str()),
            ];
            post_json(st, url, body, &headers, None).await
        }
        ChannelSettings::Slack { host } => {
            // The whole hook URL is the secret; it is opened here and goes nowhere else, so a
            // failure is told by the host alone.
            let body = serde_json::to_vec(&payload::slack_message(ev)).unwrap_or_default();
            post_json(st, secret.expose_secret(), body, &[], Some(host)).await
        }
        ChannelSettings::Email(e) => send_email(st, e, secret, ev).await,
    }
}

/// Posts `body` as JSON. `secret_url_host`: the URL is a secret, so a failure names only
/// this host instead of the words of the error (which quote the URL).
async fn post_json(
    st: &AppState,
    url: &str,
    body: Vec<u8>,
    extra: &[(&str, &str)],
    secret_url_host: Option<&str>,
) -> Attempt {
    let Ok(url) = url::Url::parse(url) else {
        return Attempt::failed(None, "the channel's URL does not parse");
    };
    let mut req = Request::new(http::Method::POST, url, Stage::Discovery, None);
    req.redirects = Redirects::Report;
    req.secret_path = secret_url_host.is_some();
    req.body = Some(body.into());
    req.headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(ua) = HeaderValue::from_str(&format!("Berth-Notifications/{}", env!("CARGO_PKG_VERSION"))) {
        req.headers.insert(USER_AGENT, ua);
    }
    for (name, value) in extra {
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value)) {
            req.headers.insert(n, v);
        }
    }
    match st.git.net().send(req).await {
        Ok(ex) => {
            let status = ex.response.status().as_u16();
            if (200..300).contains(&status) {
                Attempt { status: Some(i64::from(status)), error: None }
            } else {
                Attempt::failed(Some(i64::from(status)), format!("the receiver answered HTTP {status}"))
            }
        }
        Err(e) => {
            let why = match secret_url_host {
                Some(host) => format!("{}: the hook at {host} could not be reached", e.code),
                None => format!("{}: {}", e.code, e.message),
            };
            Attempt::failed(e.http_status.map(i64::from), why)
        }
    }
}

async fn send_email(st: &AppState, e: &EmailSettings, password: &SecretString, ev: &NotificationEvent) -> Attempt {
    use lettre::message::{header::ContentType, Mailbox};
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
    use lettre::{Message, SmtpTransport, Transport};

    // The network policy decides where Berth may connect; lettre is handed the address it
    // allowed, and checks the certificate against the configured name.
    let probe = match st.git.net().probe(&e.host, e.port).await {
        Ok(p) => p,
        Err(err) => return Attempt::failed(None, format!("{}: {}", err.code, err.message)),
    };
    let mut tls = TlsParameters::builder(e.host.clone());
    for pem in &st.config.extra_ca_pem {
        match Certificate::from_pem(pem) {
            Ok(c) => tls = tls.add_root_certificate(c),
            Err(err) => return Attempt::failed(None, format!("an extra CA file does not read: {err}")),
        }
    }
    let tls = match tls.build_rustls() {
        Ok(t) => t,
        Err(err) => return Attempt::failed(None, format!("TLS cannot be set up: {err}")),
    };
    let mut builder = SmtpTransport::builder_dangerous(probe.connected_to.ip().to_string())
        .port(e.port)
        .timeout(Some(st.config.git_request_timeout))
        .tls(match e.security.as_str() {
            "tls" => Tls::Wrapper(tls),
            _ => Tls::Required(tls),
        });
    if let Some(user) = &e.username {
        builder = builder.credentials(Credentials::new(user.clone(), password.expose_secret().to_owned()));
    }
    let mailer = builder.build();
    let (subject, body) = payload::email(ev);
    let from: Mailbox = match e.from.parse() {
        Ok(m) => m,
        Err(err) => return Attempt::failed(None, format!("the sender {:?} is not an address: {err}", e.from)),
    };
    let mut msg = Message::builder().from(from).subject(subject).header(ContentType::TEXT_PLAIN);
    for to in &e.to {
        match to.parse::<Mailbox>() {
            Ok(m) => msg = msg.to(m),
            Err(err) => return Attempt::failed(None, format!("the recipient {to:?} is not an address: {err}")),
        }
    }
    let msg = match msg.body(body) {
        Ok(m) => m,
        Err(err) => return Attempt::failed(None, format!("the message cannot be built: {err}")),
    };
    // lettre's blocking transport, on tokio's blocking pool; each SMTP command is bounded by
    // the timeout set above.
    let sent = tokio::task::spawn_blocking(move || mailer.send(&msg)).await;
    match sent {
        Ok(Ok(resp)) => Attempt { status: reply_code(&resp.code().to_string()), error: None },
        Ok(Err(err)) => Attempt::failed(err.status().and_then(|c| reply_code(&c.to_string())), format!("SMTP: {err}")),
        Err(err) => Attempt::failed(None, format!("the mail could not be sent: {err}")),
    }
}

fn reply_code(s: &str) -> Option<i64> {
    s.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// GitHub's documented example of its identical scheme (`X-Hub-Signature-256`).
    #[test]
    fn signature_matches_the_documented_example() {
        let s = signature(&SecretString::from("It's a Secret to Everybody"), b"Hello, World!");
        assert_eq!(s, "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17");
    }
}
