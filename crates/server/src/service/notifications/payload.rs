//! What a delivery says: the event as JSON (a `webhook` channel's body, and the data every
//! other form is made from), as a Slack incoming-webhook message, and as an email. Built from
//! the stored event alone, which holds names, statuses and a finding's words, never a secret.

use berth_proto::{EventFinding, EventSubject, NotificationEvent};
use berth_store::EventRow;

/// The event of `row` as delivery `delivery` sends it, with links under `public_url`.
pub fn event_json(row: &EventRow, delivery: &str, public_url: Option<&url::Url>) -> NotificationEvent {
    let e = &row.event;
    let page = match (e.subject.as_str(), e.subject_id) {
        ("repository", Some(id)) => Some(format!("/repositories/{id}")),
        ("credential", Some(id)) => Some(format!("/credentials/{id}")),
        ("import", Some(id)) => Some(format!("/imports/{id}")),
        _ => None,
    };
    let url = match (public_url, page) {
        (Some(base), Some(path)) => Some(format!("{}{path}", base.as_str().trim_end_matches('/'))),
        _ => None,
    };
    let finding = (e.code.is_some() || e.message.is_some() || e.remedy.is_some()).then(|| EventFinding {
        code: e.code.clone(),
        message: e.message.clone(),
        remedy: e.remedy.clone().filter(|r| !r.is_empty()),
    });
    NotificationEvent {
        id: row.id,
        event: e.kind.clone(),
        delivery: delivery.to_owned(),
        occurred_at: row.created_at,
        summary: summary(row),
        subject: EventSubject { kind: e.subject.clone(), id: e.subject_id, name: e.subject_name.clone(), url },
        credential_id: e.credential_id,
        old_status: e.old_status.clone(),
        new_status: e.new_status.clone(),
        finding,
        details: serde_json::from_str(&e.details).unwrap_or_else(|_| serde_json::json!({})),
    }
}

/// One line that says what happened, naming the subject.
pub fn summary(row: &EventRow) -> String {
    let e = &row.event;
    let name = &e.subject_name;
    let details: serde_json::Value = serde_json::from_str(&e.details).unwrap_or_default();
    match e.kind.as_str() {
        "repository.failed" => format!(
            "Repository {name} is failing ({} → fail): {}",
            e.old_status.as_deref().unwrap_or("ok"),
            e.code.as_deref().unwrap_or("check failed")
        ),
        "repository.recovered" => {
            format!("Repository {name} recovered (fail → {})", e.new_status.as_deref().unwrap_or("ok"))
        }
        "credential.expiring" => format!(
            "Credential {name} expires in {} (on {})",
            berth_core::words::plural(details["days_left"].as_i64().unwrap_or(0), "day", "days"),
            details["expires_on"].as_str().unwrap_or("?")
        ),
        "credential.expired" => {
            format!("Credential {name} expired on {}", details["expires_on"].as_str().unwrap_or("?"))
        }
        "credential.checks_paused" => {
            format!("Background checks of credential {name} are paused after repeated authentication failures")
        }
        "import.finished" => format!("Import from {name} finished"),
        berth_proto::TEST_EVENT => format!("Test event for notification channel {name}"),
        other => format!("{other}: {name}"),
    }
}

/// The lines under the summary: the finding and the link.
fn body_lines(ev: &NotificationEvent) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(f) = &ev.finding {
        match (&f.code, &f.message) {
            (Some(code), Some(msg)) => lines.push(format!("{code}: {msg}")),
            (None, Some(msg)) => lines.push(msg.clone()),
            (Some(code), None) => lines.push(code.clone()),
            (None, None) => {}
        }
        if let Some(r) = &f.remedy {
            lines.push(format!("What to do: {r}"));
        }
    }
    if let Some(u) = &ev.subject.url {
        lines.push(format!("Open in Berth: {u}"));
    }
    lines
}

/// Slack's incoming-webhook message: `text` (the notification and the fallback for clients
/// that show no blocks) and `blocks` with the same words as `mrkdwn` sections. Mattermost
/// reads `text` and ignores `blocks`.
pub fn slack_message(ev: &NotificationEvent) -> serde_json::Value {
    let lines = body_lines(ev);
    let mut text = ev.summary.clone();
    for l in &lines {
        text.push('\n');
        text.push_str(l);
    }
    let mut blocks = vec![serde_json::json!({
        "type": "section",
        "text": {"type": "mrkdwn", "text": format!("*{}*", slack_escape(&ev.summary))},
    })];
    if !lines.is_empty() {
        let body: Vec<String> = lines.iter().map(|l| slack_escape(l)).collect();
        blocks.push(serde_json::json!({
            "type": "section",
            "text": {"type": "mrkdwn", "text": body.join("\n")},
        }));
    }
    serde_json::json!({ "text": slack_escape(&text), "blocks": blocks })
}

/// Slack's three control characters in message text (`&`, `<`, `>`), escaped as it asks.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The subject and plain-text body of an email.
pub fn email(ev: &NotificationEvent) -> (String, String) {
    let mut body = ev.summary.clone();
    body.push_str("\n\n");
    for l in body_lines(ev) {
        body.push_str(&l);
        body.push('\n');
    }
    body.push_str(&format!("\nEvent: {} (id {}, delivery {})\n", ev.event, ev.id, ev.delivery));
    (format!("[Berth] {}", ev.summary), body)
}
