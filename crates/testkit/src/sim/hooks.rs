//! Webhooks on the simulated hosts: creating and deleting them as each host's API does, and
//! real signed deliveries in each host's own payload format and headers when a branch is
//! pushed, created or deleted ([`Sim::push_branch`], [`Sim::delete_branch`]).
//!
//! | host | create | delete | signs with |
//! | --- | --- | --- | --- |
//! | Bitbucket Cloud | `POST /2.0/repositories/{ws}/{slug}/hooks` → 201 | `DELETE …/hooks/{uid}` → 204 | `X-Hub-Signature: sha256=` |
//! | Data Center | `POST {ctx}/rest/api/{1.0,latest}/projects/{key}/repos/{slug}/webhooks` → 200 | `DELETE …/webhooks/{id}` → 204 | `X-Hub-Signature: sha256=` |
//! | GitHub | `POST /api/v3/repos/{owner}/{repo}/hooks` → 201 | `DELETE …/hooks/{id}` → 204 | `X-Hub-Signature-256: sha256=` |
//!
//! Scopes: Cloud API tokens need `read:webhook:bitbucket` + `write:webhook:bitbucket` to create
//! and `delete:webhook:bitbucket` to delete (the spec's `x-atlassian-oauth2-scopes`), access
//! tokens `webhook`, and the user repository admin; Data Center needs `REPO_ADMIN` (401 without);
//! GitHub classic tokens `admin:repo_hook`, `write:repo_hook` or `repo`, and admin rights.

use super::auth::{self, Presented};
use super::{Ctx, Hook, Host, Perm, Sim};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

/// A hook request: which repository, and the hook's id for a delete.
pub(crate) struct HookRoute {
    owner: String,
    slug: String,
    delete: Option<String>,
}

/// Whether `method path` is one of the hook endpoints this module answers.
pub(crate) fn route(host: Host, method: &Method, path: &str, dc_context: &str) -> Option<HookRoute> {
    let rest = match host {
        Host::Cloud => path.strip_prefix("/2.0/")?,
        Host::DataCenter => path.strip_prefix(dc_context)?.strip_prefix("/rest/api/")?,
        Host::GitHub => path.strip_prefix("/api/v3/")?,
    };
    let segs: Vec<String> = rest.split('/').filter(|s| !s.is_empty()).map(super::pct_decode).collect();
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let (owner, slug, id) = match (host, s.as_slice()) {
        (Host::Cloud, ["repositories", o, r, "hooks"]) => (*o, *r, None),
        (Host::Cloud, ["repositories", o, r, "hooks", id]) => (*o, *r, Some(*id)),
        (Host::DataCenter, [_, "projects", k, "repos", r, "webhooks"]) => (*k, *r, None),
        (Host::DataCenter, [_, "projects", k, "repos", r, "webhooks", id]) => (*k, *r, Some(*id)),
        (Host::GitHub, ["repos", o, r, "hooks"]) => (*o, *r, None),
        (Host::GitHub, ["repos", o, r, "hooks", id]) => (*o, *r, Some(*id)),
        _ => return None,
    };
    let wanted = match id {
        None => Method::POST,
        Some(_) => Method::DELETE,
    };
    (method == wanted).then(|| HookRoute {
        owner: owner.to_owned(),
        slug: slug.to_owned(),
        delete: id.map(str::to_owned),
    })
}

fn cloud_error(status: StatusCode, message: &str) -> Response {
    auth::json(status, &json!({"type": "error", "error": {"message": message}}))
}

fn refuse(host: Host, status: StatusCode, message: &str) -> Response {
    match host {
        Host::Cloud => cloud_error(status, message),
        Host::DataCenter => super::datacenter::error(status, message, "com.atlassian.bitbucket.AuthorisationException"),
        Host::GitHub => auth::json(
            status,
            &json!({"message": message, "documentation_url": "https://docs.github.com/rest/repos/webhooks", "status": status.as_str()}),
        ),
    }
}

/// Answers a hook request: the credential, its scopes and the user's permission, then the change.
pub(crate) fn handle(ctx: &Ctx, host: Host, r: HookRoute, headers: &HeaderMap, body: &[u8]) -> Response {
    let now = ctx.clock.now();
    let secret = match auth::presented(headers) {
        Presented::Basic { pass, .. } => Some(pass),
        Presented::Bearer(t) | Presented::Token(t) => Some(t),
        _ => None,
    };
    let mut w = ctx.world();
    let cred = secret.and_then(|s| w.cred(host, &s).cloned()).filter(|c| c.live(now));
    let Some(cred) = cred else {
        return refuse(host, StatusCode::UNAUTHORIZED, "Authentication required");
    };
    let Some(repo) = w.repo(host, &r.owner, &r.slug).cloned() else {
        return refuse(host, StatusCode::NOT_FOUND, "Not Found");
    };
    let has = |s: &str| cred.scopes.iter().any(|g| g == s);
    let user_admin = |user: &str| w.perm(user, &repo).is_some_and(|p| p >= Perm::Admin);
    use super::CredKind as K;
    match (host, &cred.kind) {
        (Host::Cloud, K::ApiToken { user, .. }) => {
            let required: &[&str] = if r.delete.is_some() {
                &["delete:webhook:bitbucket"]
            } else {
                &["read:webhook:bitbucket", "write:webhook:bitbucket"]
            };
            if !required.iter().all(|s| has(s)) {
                let body = json!({"type": "error", "error": {"message": super::cloud::SCOPES_LACKING,
                    "detail": {"required": required, "granted": cred.scopes}}});
                return auth::json(StatusCode::FORBIDDEN, &body);
            }
            if !user_admin(user) {
                return cloud_error(
                    StatusCode::FORBIDDEN,
                    "You must be an administrator of this repository to manage its webhooks.",
                );
            }
        }
        (Host::Cloud, K::AccessToken(_)) => {
            if !cred.scopes.iter().any(|s| super::cloud::oauth_implies(s, "webhook")) {
                let body = json!({"type": "error", "error": {"message": super::cloud::SCOPES_LACKING,
                    "detail": {"required": ["webhook"], "granted": cred.scopes}}});
                return auth::json(StatusCode::FORBIDDEN, &body);
            }
        }
        (Host::DataCenter, kind) => {
            let admin_scope = has("REPO_ADMIN") || has("PROJECT_ADMIN");
            let admin_user = match kind {
                K::DcPersonal { user } => user_admin(user),
                _ => true,
            };
            if !admin_scope || !admin_user {
                return refuse(host, StatusCode::UNAUTHORIZED, super::datacenter::NOT_PERMITTED);
            }
        }
        (Host::GitHub, K::GitHubClassic { user }) => {
            if !["admin:repo_hook", "write:repo_hook", "repo"].iter().any(|s| has(s)) {
                let mut resp = refuse(host, StatusCode::FORBIDDEN, "Resource not accessible by personal access token");
                auth::set_header(
                    &mut resp,
                    "x-accepted-oauth-scopes",
                    "admin:repo_hook, public_repo, repo, write:repo_hook",
                );
                auth::set_header(&mut resp, "x-oauth-scopes", &cred.scopes.join(", "));
                return resp;
            }
            if !user_admin(user) {
                return refuse(host, StatusCode::NOT_FOUND, "Not Found");
            }
        }
        (Host::GitHub, K::GitHubFineGrained { user, .. }) => {
            if !user_admin(user) {
                return refuse(host, StatusCode::FORBIDDEN, "Resource not accessible by personal access token");
            }
        }
        _ => return refuse(host, StatusCode::FORBIDDEN, "This credential cannot manage webhooks"),
    }
    let Some(stored) = w.repos.iter_mut().find(|x| x.host == repo.host && x.path == repo.path) else {
        return refuse(host, StatusCode::NOT_FOUND, "Not Found");
    };
    if let Some(id) = &r.delete {
        let before = stored.hooks.len();
        stored.hooks.retain(|h| !hook_named(host, h, id));
        if stored.hooks.len() == before {
            return refuse(host, StatusCode::NOT_FOUND, "Not Found");
        }
        return Response::builder().status(StatusCode::NO_CONTENT).body(axum::body::Body::empty()).unwrap_or_default();
    }
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return refuse(host, StatusCode::BAD_REQUEST, "The request body is not valid JSON");
    };
    let s = |p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_owned);
    let (url, secret, events) = match host {
        Host::Cloud => (s("/url"), s("/secret"), v.get("events")),
        Host::DataCenter => (s("/url"), s("/configuration/secret"), v.get("events")),
        Host::GitHub => (s("/config/url"), s("/config/secret"), v.get("events")),
    };
    let events: Vec<String> = events
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|e| e.as_str().map(str::to_owned)).collect())
        .unwrap_or_else(|| if host == Host::GitHub { vec!["push".to_owned()] } else { Vec::new() });
    let Some(url) = url.filter(|u| u.starts_with("http://") || u.starts_with("https://")) else {
        return refuse(host, StatusCode::BAD_REQUEST, "url: a valid URL is required");
    };
    if events.is_empty() {
        return refuse(host, StatusCode::BAD_REQUEST, "events: at least one event is required");
    }
    if host == Host::Cloud && secret.as_ref().is_some_and(|s| s.len() > 128) {
        return refuse(host, StatusCode::BAD_REQUEST, "secret: at most 128 characters");
    }
    let next_id = stored.hooks.iter().map(|h| h.id).max().unwrap_or(0) + 1;
    let mut hook = Hook::new(&url, &events.iter().map(String::as_str).collect::<Vec<_>>());
    hook.id = next_id;
    hook.uuid = super::builder::stable_uuid(&format!("hook:{}:{next_id}:{url}", stored.full_name()));
    hook.secret = secret;
    hook.description = s("/description").or_else(|| s("/name")).unwrap_or_default();
    let shape = hook_json(host, &hook, &stored.full_name());
    stored.hooks.push(hook);
    let status = if host == Host::DataCenter { StatusCode::OK } else { StatusCode::CREATED };
    auth::json(status, &shape)
}

fn hook_named(host: Host, h: &Hook, id: &str) -> bool {
    match host {
        Host::Cloud => {
            h.uuid == id || h.uuid.trim_matches(|c| c == '{' || c == '}') == id.trim_matches(|c| c == '{' || c == '}')
        }
        _ => h.id.to_string() == id,
    }
}

/// A hook as the host shows it (never its secret).
fn hook_json(host: Host, h: &Hook, full_name: &str) -> Value {
    match host {
        Host::Cloud => {
            json!({"type": "webhook_subscription", "uuid": h.uuid, "url": h.url, "description": h.description,
            "subject_type": "repository", "active": h.active, "events": h.events, "secret_set": h.secret.is_some(),
            "created_at": "2026-01-01T00:00:00.000000Z"})
        }
        Host::DataCenter => {
            json!({"id": h.id, "name": h.description, "url": h.url, "active": h.active, "events": h.events,
            "configuration": {}, "createdDate": 1_767_225_600_000_i64, "updatedDate": 1_767_225_600_000_i64,
            "scopeType": "repository", "sslVerificationRequired": true})
        }
        Host::GitHub => json!({"type": "Repository", "id": h.id, "name": "web", "active": h.active, "events": h.events,
            "config": {"url": h.url, "content_type": "json", "insecure_ssl": "0"},
            "url": format!("/repos/{full_name}/hooks/{}", h.id), "created_at": "2026-01-01T00:00:00Z"}),
    }
}

/// One delivery the simulator sent: where, with which event, and the receiver's status
/// (0 when it could not be reached).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentDelivery {
    pub url: String,
    pub event: String,
    pub status: u16,
}

impl Sim {
    /// Pushes a new commit to `branch` of `full_name` on `host` (creating the branch when it
    /// does not exist), then sends every matching hook its signed delivery.
    pub async fn push_branch(&self, host: Host, full_name: &str, branch: &str) -> Vec<SentDelivery> {
        let path = self.repo_path(host, full_name).unwrap_or_else(|| panic!("no repository {full_name} on {host:?}"));
        let before = crate::repos::try_rev_parse(&path, &format!("refs/heads/{branch}"));
        let after = crate::repos::add_commit(&path, branch, &format!("push to {branch}"));
        self.deliver(host, full_name, branch, before, Some(after)).await
    }

    /// Deletes `branch`, then sends every matching hook its signed delivery.
    pub async fn delete_branch(&self, host: Host, full_name: &str, branch: &str) -> Vec<SentDelivery> {
        let path = self.repo_path(host, full_name).unwrap_or_else(|| panic!("no repository {full_name} on {host:?}"));
        let before = crate::repos::try_rev_parse(&path, &format!("refs/heads/{branch}"));
        crate::repos::delete_branch(&path, branch);
        self.deliver(host, full_name, branch, before, None).await
    }

    async fn deliver(
        &self,
        host: Host,
        full_name: &str,
        branch: &str,
        before: Option<String>,
        after: Option<String>,
    ) -> Vec<SentDelivery> {
        let (repo, hooks) = {
            let w = self.ctx.world();
            let (o, s) = full_name.split_once('/').unwrap_or((full_name, ""));
            let repo = w.repo(host, o, s).cloned().expect("repository");
            let hooks = repo.hooks.clone();
            (repo, hooks)
        };
        let default = super::git::head(&repo.path).unwrap_or_else(|| "main".to_owned());
        let zero = "0".repeat(40);
        let mut sent = Vec::new();
        for h in hooks.iter().filter(|h| h.active) {
            let (event, body) = match host {
                Host::GitHub => {
                    ("push", github_push(&repo, &default, branch, before.as_deref(), after.as_deref(), &zero))
                }
                Host::Cloud => ("repo:push", cloud_push(&repo, branch, before.as_deref(), after.as_deref())),
                Host::DataCenter => {
                    ("repo:refs_changed", dc_refs_changed(&repo, branch, before.as_deref(), after.as_deref(), &zero))
                }
            };
            if !h.events.iter().any(|e| e == event) {
                continue;
            }
            let body = body.to_string().into_bytes();
            let mut headers: Vec<(&str, String)> = vec![("Content-Type", "application/json".to_owned())];
            let delivery = super::builder::stable_uuid(&format!("delivery:{}:{}", h.uuid, self.ctx.clock.now()));
            match host {
                Host::GitHub => {
                    headers.push(("User-Agent", "GitHub-Hookshot/sim".to_owned()));
                    headers.push(("X-GitHub-Event", event.to_owned()));
                    headers.push(("X-GitHub-Delivery", delivery));
                    headers.push(("X-GitHub-Hook-ID", h.id.to_string()));
                    if let Some(s) = &h.secret {
                        headers.push(("X-Hub-Signature-256", crate::receiver::hmac_sha256(s, &body)));
                    }
                }
                Host::Cloud => {
                    headers.push(("User-Agent", "Bitbucket-Webhooks/2.0".to_owned()));
                    headers.push(("X-Event-Key", event.to_owned()));
                    headers.push(("X-Hook-UUID", h.uuid.clone()));
                    headers.push(("X-Request-UUID", delivery));
                    headers.push(("X-Attempt-Number", "1".to_owned()));
                    if let Some(s) = &h.secret {
                        headers.push(("X-Hub-Signature", crate::receiver::hmac_sha256(s, &body)));
                    }
                }
                Host::DataCenter => {
                    headers.push(("User-Agent", "Atlassian HttpClient".to_owned()));
                    headers.push(("X-Event-Key", event.to_owned()));
                    headers.push(("X-Request-Id", delivery));
                    if let Some(s) = &h.secret {
                        headers.push(("X-Hub-Signature", crate::receiver::hmac_sha256(s, &body)));
                    }
                }
            }
            let status = post(&h.url, &headers, &body).await;
            sent.push(SentDelivery { url: h.url.clone(), event: event.to_owned(), status });
        }
        sent
    }

    /// The hooks of `full_name` on `host` as the simulator keeps them (secrets included, for tests).
    pub fn hooks(&self, host: Host, full_name: &str) -> Vec<Hook> {
        let (o, s) = full_name.split_once('/').unwrap_or((full_name, ""));
        self.ctx.world().repo(host, o, s).map(|r| r.hooks.clone()).unwrap_or_default()
    }
}

fn github_push(
    repo: &super::Repo,
    default: &str,
    branch: &str,
    before: Option<&str>,
    after: Option<&str>,
    zero: &str,
) -> Value {
    json!({
        "ref": format!("refs/heads/{branch}"),
        "before": before.unwrap_or(zero),
        "after": after.unwrap_or(zero),
        "created": before.is_none(),
        "deleted": after.is_none(),
        "forced": false,
        "base_ref": null,
        "compare": format!("https://github.com/{}/compare/{}...{}", repo.full_name(), &before.unwrap_or(zero)[..12], &after.unwrap_or(zero)[..12]),
        "commits": [],
        "head_commit": null,
        "pusher": {"name": "sim", "email": "sim@example.com"},
        "repository": {"id": repo.id, "name": repo.slug, "full_name": repo.full_name(), "private": repo.private,
            "default_branch": default, "master_branch": default},
        "sender": {"login": "sim", "type": "User"},
    })
}

fn cloud_push(repo: &super::Repo, branch: &str, before: Option<&str>, after: Option<&str>) -> Value {
    let state = |hash: Option<&str>| {
        hash.map_or(Value::Null, |h| json!({"type": "branch", "name": branch, "target": {"type": "commit", "hash": h}}))
    };
    json!({
        "push": {"changes": [{
            "new": state(after), "old": state(before),
            "created": before.is_none(), "closed": after.is_none(), "forced": false,
            "commits": [], "truncated": false,
        }]},
        "repository": {"type": "repository", "name": repo.name, "full_name": repo.full_name(), "uuid": repo.uuid,
            "is_private": repo.private},
        "actor": {"type": "user", "display_name": "Sim", "nickname": "sim"},
    })
}

fn dc_refs_changed(repo: &super::Repo, branch: &str, before: Option<&str>, after: Option<&str>, zero: &str) -> Value {
    let kind = match (before, after) {
        (None, _) => "ADD",
        (_, None) => "DELETE",
        _ => "UPDATE",
    };
    json!({
        "eventKey": "repo:refs_changed",
        "date": "2026-01-01T00:00:00+0000",
        "actor": {"name": "sim", "displayName": "Sim", "type": "NORMAL"},
        "repository": {"slug": repo.slug, "id": repo.id, "name": repo.name, "project": {"key": repo.owner}},
        "changes": [{
            "ref": {"id": format!("refs/heads/{branch}"), "displayId": branch, "type": "BRANCH"},
            "refId": format!("refs/heads/{branch}"),
            "fromHash": before.unwrap_or(zero),
            "toHash": after.unwrap_or(zero),
            "type": kind,
        }],
    })
}

/// A plain HTTP/1.1 POST (the receivers in tests are `http://127.0.0.1:PORT/…`); the answer's
/// status, 0 when there was none.
async fn post(url: &str, headers: &[(&str, String)], body: &[u8]) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(u) = url::Url::parse(url) else { return 0 };
    let (Some(host), Some(port)) = (u.host_str(), u.port_or_known_default()) else { return 0 };
    let Ok(mut stream) = tokio::net::TcpStream::connect((host, port)).await else { return 0 };
    let mut req = format!(
        "POST {} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        u.path(),
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    if stream.write_all(req.as_bytes()).await.is_err() || stream.write_all(body).await.is_err() {
        return 0;
    }
    let mut answer = Vec::new();
    let read = tokio::time::timeout(std::time::Duration::from_secs(30), stream.read_to_end(&mut answer)).await;
    if read.is_err() {
        return 0;
    }
    let text = String::from_utf8_lossy(&answer);
    text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}
