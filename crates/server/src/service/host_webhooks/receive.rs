//! The receiver of the hosts' webhook deliveries, `POST /hooks/{provider}/{repository id}`.
//!
//! No session or token: the HMAC-SHA256 signature over the body with the repository's own
//! secret is the only proof (Bitbucket Cloud and Data Center `X-Hub-Signature`, GitHub
//! `X-Hub-Signature-256`, both `sha256=<hex>`), compared in constant time. Refusing is cheap:
//! a repository without a Berth webhook is one indexed read; a delivery without a signature is
//! refused before its body is read; the body is read under a cap before the signature is
//! computed. Refusals are counted on the repository and in the metrics.
//!
//! A push applies the branches the payload names at once and makes the repository due for a
//! check with reason `webhook`, which the scheduler runs (under its leases and per-host
//! limits, so a burst of pushes is one check): the payload says what moved, the check says
//! whether the repository still works, and replaces the list with the host's whole list.

use super::super::{Entity, Error, Refusal, Result};
use crate::state::AppState;
use berth_core::{Code, Provider};
use berth_proto::HookReceipt;
use berth_store::{BranchChange, WebhookRow};
use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use serde_json::Value;
use sha2::Sha256;

/// The largest delivery body read (GitHub sends up to 25 MB, but a push's branch changes come
/// first in every host's payload and a bigger body is refused with 413: the next scheduled
/// check still sees the push).
pub const MAX_DELIVERY_BYTES: usize = 5 * 1024 * 1024;

/// At most this many branch changes are taken from one delivery.
const MAX_CHANGES: usize = 1000;

/// A delivery that passed the cheap checks: the repository has a Berth webhook for this
/// provider, and a signature was sent.
pub struct Gate {
    hook: WebhookRow,
    provider: Provider,
}

fn unsigned(why: &str) -> Error {
    Error::Unauthenticated(Refusal::new(
        Code::WebhookSignatureInvalid,
        format!("the delivery is refused: {why}"),
        "the host signs deliveries with the secret Berth gave it; register the webhook again \
         (DELETE then POST /api/v1/repositories/{id}/webhook) if the hook on the host was changed",
    ))
}

/// The signature header each host sends.
pub fn signature_header(provider: Provider) -> &'static str {
    match provider {
        Provider::Github => "x-hub-signature-256",
        _ => "x-hub-signature",
    }
}

/// The first checks, before the body is read: a known provider, a repository with Berth's
/// webhook for it, and a signature header. A missing signature is counted and refused.
pub async fn gate(st: &AppState, provider: &str, id: i64, signature: Option<&str>) -> Result<Gate> {
    let provider = Provider::parse(provider).ok_or(Error::NotFound(Entity::Webhook))?;
    let hook = st.store.webhook(id).await?.filter(|h| h.provider == provider.as_str());
    let Some(hook) = hook else { return Err(Error::NotFound(Entity::Webhook)) };
    if signature.is_none_or(|s| s.trim().is_empty()) {
        reject(st, id).await;
        return Err(unsigned(&format!("it has no {} header", signature_header(provider))));
    }
    Ok(Gate { hook, provider })
}

async fn reject(st: &AppState, id: i64) {
    st.instance.metrics.webhook_rejected();
    if let Err(e) = st.store.count_rejected_delivery(id, chrono::Utc::now()).await {
        tracing::warn!(repository = id, "could not count a refused webhook delivery: {e}");
    }
}

/// Whether `header` (`sha256=<hex>`) is the HMAC-SHA256 of `body` under `secret`; compared in
/// constant time by the `hmac` crate.
pub fn signature_matches(secret: &[u8], body: &[u8], header: &str) -> bool {
    let Some(hex_sig) = header.trim().strip_prefix("sha256=") else { return false };
    let Ok(sig) = hex::decode(hex_sig) else { return false };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else { return false };
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

/// Verifies the delivery and acts on it.
pub async fn deliver(
    st: &AppState,
    gate: Gate,
    signature: &str,
    event: Option<&str>,
    body: &[u8],
) -> Result<HookReceipt> {
    let id = gate.hook.repository_id;
    let secret = st.store.webhook_secret(id).await?;
    if !signature_matches(secret.expose_secret().as_bytes(), body, signature) {
        reject(st, id).await;
        return Err(unsigned("its signature does not match the repository's webhook secret"));
    }
    st.instance.metrics.webhook_delivery();
    let event = event.unwrap_or("").trim();
    let now = chrono::Utc::now();
    let push = matches!(
        (gate.provider, event),
        (Provider::Github, "push")
            | (Provider::BitbucketCloud, "repo:push")
            | (Provider::BitbucketDatacenter, "repo:refs_changed")
    );
    if !push {
        // A ping, a test or an event that moves no branch: taken, nothing changes.
        st.store.count_delivery(id, now).await?;
        return Ok(HookReceipt { outcome: "ignored".to_owned(), branches_changed: 0 });
    }
    let payload: Value = serde_json::from_slice(body).map_err(|e| {
        Error::invalid(format!("the push event is not JSON: {e}"), "the host sends JSON; check the hook's content type")
    })?;
    let (changes, default_branch) = match gate.provider {
        Provider::Github => github_changes(&payload),
        Provider::BitbucketCloud => (cloud_changes(&payload), None),
        _ => (datacenter_changes(&payload), None),
    };
    st.store.apply_branch_push(id, &changes, default_branch.as_deref(), now).await?;
    // The repository is due now with reason `webhook`: this instance's scheduler starts at once.
    st.instance.wake();
    tracing::info!(repository = id, changes = changes.len(), "push event from the host applied; a check follows");
    Ok(HookReceipt { outcome: "push".to_owned(), branches_changed: changes.len() })
}

fn branch_of_ref(r: &str) -> Option<&str> {
    r.strip_prefix("refs/heads/").filter(|b| !b.is_empty())
}

fn text<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_str()
}

/// GitHub `push`: one ref, `deleted` or moved to `after`; the repository's `default_branch`.
fn github_changes(v: &Value) -> (Vec<BranchChange>, Option<String>) {
    let default = text(v, &["repository", "default_branch"]).map(str::to_owned);
    let Some(name) = text(v, &["ref"]).and_then(branch_of_ref) else { return (Vec::new(), default) };
    let deleted = v.get("deleted").and_then(Value::as_bool).unwrap_or(false);
    let commit = if deleted { None } else { text(v, &["after"]).map(str::to_owned) };
    if !deleted && commit.is_none() {
        return (Vec::new(), default);
    }
    (vec![BranchChange { name: name.to_owned(), commit }], default)
}

/// Bitbucket Cloud `repo:push`: `push.changes[]`, each with `new` (null when deleted) and `old`.
fn cloud_changes(v: &Value) -> Vec<BranchChange> {
    let Some(changes) = v.pointer("/push/changes").and_then(Value::as_array) else { return Vec::new() };
    changes
        .iter()
        .take(MAX_CHANGES)
        .filter_map(|c| {
            let new = c.get("new").filter(|n| !n.is_null());
            match new {
                Some(n) if text(n, &["type"]) == Some("branch") => Some(BranchChange {
                    name: text(n, &["name"])?.to_owned(),
                    commit: Some(text(n, &["target", "hash"])?.to_owned()),
                }),
                Some(_) => None,
                None => {
                    let old = c.get("old")?;
                    (text(old, &["type"]) == Some("branch"))
                        .then(|| Some(BranchChange { name: text(old, &["name"])?.to_owned(), commit: None }))?
                }
            }
        })
        .collect()
}

/// Bitbucket Data Center `repo:refs_changed`: `changes[]` with `ref`, `toHash` and `type`.
fn datacenter_changes(v: &Value) -> Vec<BranchChange> {
    let Some(changes) = v.get("changes").and_then(Value::as_array) else { return Vec::new() };
    changes
        .iter()
        .take(MAX_CHANGES)
        .filter_map(|c| {
            if text(c, &["ref", "type"]) != Some("BRANCH") {
                return None;
            }
            let name = text(c, &["ref", "displayId"])
                .or_else(|| text(c, &["ref", "id"]).and_then(branch_of_ref))
                .or_else(|| text(c, &["refId"]).and_then(branch_of_ref))?;
            let commit = match text(c, &["type"]) {
                Some("DELETE") => None,
                _ => Some(text(c, &["toHash"])?.to_owned()),
            };
            Some(BranchChange { name: name.to_owned(), commit })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn github_documents_its_signature_example() {
        // docs.github.com, "Validating webhook deliveries": this secret and body give this digest.
        let sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert!(signature_matches(b"It's a Secret to Everybody", b"Hello, World!", sig));
        assert!(!signature_matches(b"It's a Secret to Everybody", b"Hello, World?", sig));
        assert!(!signature_matches(b"another secret", b"Hello, World!", sig));
        assert!(!signature_matches(b"It's a Secret to Everybody", b"Hello, World!", &sig[7..]));
        assert!(!signature_matches(b"It's a Secret to Everybody", b"Hello, World!", "sha256=zz"));
    }

    #[test]
    fn payloads_name_the_changed_branches() {
        let gh = json!({"ref": "refs/heads/feature", "after": "abc", "deleted": false, "repository": {"default_branch": "main"}});
        assert_eq!(
            github_changes(&gh),
            (vec![BranchChange { name: "feature".into(), commit: Some("abc".into()) }], Some("main".into()))
        );
        let gh_tag = json!({"ref": "refs/tags/v1", "after": "abc"});
        assert!(github_changes(&gh_tag).0.is_empty());
        let cloud = json!({"push": {"changes": [
            {"new": {"type": "branch", "name": "x", "target": {"hash": "h1"}}, "old": null},
            {"new": null, "old": {"type": "branch", "name": "gone", "target": {"hash": "h0"}}},
            {"new": {"type": "tag", "name": "v1", "target": {"hash": "h2"}}, "old": null}
        ]}});
        assert_eq!(
            cloud_changes(&cloud),
            vec![
                BranchChange { name: "x".into(), commit: Some("h1".into()) },
                BranchChange { name: "gone".into(), commit: None }
            ]
        );
        let dc = json!({"changes": [
            {"ref": {"id": "refs/heads/y", "displayId": "y", "type": "BRANCH"}, "toHash": "h3", "type": "ADD"},
            {"ref": {"id": "refs/heads/z", "displayId": "z", "type": "BRANCH"}, "toHash": "0000", "type": "DELETE"},
            {"ref": {"id": "refs/tags/t", "displayId": "t", "type": "TAG"}, "toHash": "h4", "type": "ADD"}
        ]});
        assert_eq!(
            datacenter_changes(&dc),
            vec![
                BranchChange { name: "y".into(), commit: Some("h3".into()) },
                BranchChange { name: "z".into(), commit: None }
            ]
        );
    }
}
