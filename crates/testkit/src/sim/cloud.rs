//! Bitbucket Cloud: REST under `/2.0`, Git at `/{workspace}/{slug}.git` (see `cloud_git`);
//! response shapes, pagination and BBQL filters are in `cloud_shapes`.
//!
//! Order of checks, REST: credentials → rate limit → 401 → scopes (403, or 400 where
//! configured) → workspace policies (403) → repository visibility (404) → answer.
//! Git: credentials → rate limit → 401/410 → policies (403) → scopes (403) → visibility (403).

use super::auth::{self, Presented};
use super::cloud_shapes::{branches, hooks, permissions, repo_json, repositories, user_json, workspace_repositories};
use super::git;
use super::{
    fields, query_get, query_pairs, AccessScope, Cred, CredKind, Ctx, Host, Perm, RateDecision, RejectStyle, Repo,
    User, World,
};
use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};
use std::net::IpAddr;

pub const TOKEN_INVALID: &str = "Token is invalid, expired, or not supported for this endpoint.";
pub const LOGIN_FAILED: &str = "Login failed due to incorrect login credentials or method.";
pub const SCOPES_LACKING: &str = "Your credentials lack one or more required privilege scopes.";
pub const REPO_NOT_VISIBLE: &str = "The requested repository either does not exist or you do not have access.";
pub const IP_NOT_ALLOWED: &str = "To access this repository, an admin must whitelist your IP.";
pub const TWO_STEP_REQUIRED: &str = "To access this repository, enable two-step authentication.";
pub const RATE_LIMITED: &str = "Rate limit for this resource has been exceeded";
/// Access tokens have no user: `/2.0/user` and the user's permissions refuse them (modelled text).
pub const NO_USER_FOR_TOKEN: &str =
    "This API is only accessible with the following authentication types: session, api_token";
pub(super) const REALM: &str = "Bitbucket.org HTTP";
pub(super) const CREATED: &str = "2024-01-01T00:00:00.000000+00:00";

/// The REST endpoints the simulator serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloudEndpoint {
    User,
    Repository,
    Branches,
    Permissions,
    Hooks,
    /// `GET /repositories`: public repositories, or with `role=member` those the caller may read.
    Repositories,
    /// `GET /repositories/{workspace}`: the workspace's repositories the caller may read.
    WorkspaceRepositories,
}

impl CloudEndpoint {
    pub const ALL: [CloudEndpoint; 7] = [
        CloudEndpoint::User,
        CloudEndpoint::Repositories,
        CloudEndpoint::WorkspaceRepositories,
        CloudEndpoint::Repository,
        CloudEndpoint::Branches,
        CloudEndpoint::Permissions,
        CloudEndpoint::Hooks,
    ];

    /// The path as the OpenAPI document names it.
    pub fn spec_path(self) -> &'static str {
        match self {
            CloudEndpoint::User => "/user",
            CloudEndpoint::Repository => "/repositories/{workspace}/{repo_slug}",
            CloudEndpoint::Branches => "/repositories/{workspace}/{repo_slug}/refs/branches",
            CloudEndpoint::Permissions => "/user/workspaces/{workspace}/permissions/repositories",
            CloudEndpoint::Hooks => "/repositories/{workspace}/{repo_slug}/hooks",
            CloudEndpoint::Repositories => "/repositories",
            CloudEndpoint::WorkspaceRepositories => "/repositories/{workspace}",
        }
    }

    /// API-token scopes (the spec's `x-atlassian-oauth2-scopes`); all are required, none implies another.
    pub fn api_token_scopes(self) -> &'static [&'static str] {
        match self {
            CloudEndpoint::User => &["read:user:bitbucket"],
            CloudEndpoint::Repository
            | CloudEndpoint::Branches
            | CloudEndpoint::Permissions
            | CloudEndpoint::Repositories
            | CloudEndpoint::WorkspaceRepositories => &["read:repository:bitbucket"],
            CloudEndpoint::Hooks => &["read:webhook:bitbucket"],
        }
    }

    /// OAuth scopes for access tokens (the spec's `security: [{oauth2: […]}]`).
    pub fn oauth_scopes(self) -> &'static [&'static str] {
        match self {
            CloudEndpoint::User => &["account"],
            CloudEndpoint::Repository
            | CloudEndpoint::Branches
            | CloudEndpoint::Repositories
            | CloudEndpoint::WorkspaceRepositories => &["repository"],
            CloudEndpoint::Permissions => &["account", "repository"],
            CloudEndpoint::Hooks => &["webhook"],
        }
    }

    fn route(segs: &[String]) -> Option<CloudEndpoint> {
        let s: Vec<&str> = segs.iter().map(String::as_str).collect();
        Some(match s.as_slice() {
            ["user"] => CloudEndpoint::User,
            ["repositories"] => CloudEndpoint::Repositories,
            ["repositories", _] => CloudEndpoint::WorkspaceRepositories,
            ["repositories", _, _] => CloudEndpoint::Repository,
            ["repositories", _, _, "refs", "branches"] => CloudEndpoint::Branches,
            ["user", "workspaces", _, "permissions", "repositories"] => CloudEndpoint::Permissions,
            ["repositories", _, _, "hooks"] => CloudEndpoint::Hooks,
            _ => return None,
        })
    }
}

/// Who a request authenticated as.
#[derive(Debug, Clone)]
pub(super) enum Principal {
    Anonymous,
    User { user: User, scopes: Vec<String> },
    Access { scope: AccessScope, scopes: Vec<String> },
}

impl Principal {
    fn cred_type(&self) -> Option<&'static str> {
        match self {
            Principal::Anonymous => None,
            Principal::User { .. } => Some("api_token"),
            Principal::Access { scope: AccessScope::Repository { .. }, .. } => Some("repo_access_token"),
            Principal::Access { scope: AccessScope::Project { .. }, .. } => Some("project_access_token"),
            Principal::Access { scope: AccessScope::Workspace { .. }, .. } => Some("workspace_access_token"),
        }
    }
}

/// Why credentials were refused, and how to say it.
pub(crate) struct Rejection {
    style: RejectStyle,
    pub(super) git_status: u16,
}

pub(super) fn authenticate(
    w: &World,
    pres: &Presented,
    now: chrono::DateTime<chrono::Utc>,
    git: bool,
) -> Result<Principal, Rejection> {
    let reject = |c: Option<&Cred>| Rejection {
        style: c.and_then(|c| c.reject_style).unwrap_or(w.cloud.unauthorized_style),
        git_status: 401,
    };
    let (name, secret, bearer) = match pres {
        Presented::None => return Ok(Principal::Anonymous),
        Presented::Basic { user, pass } => (user.as_str(), pass.as_str(), false),
        Presented::Bearer(t) => ("", t.as_str(), true),
        Presented::Token(_) | Presented::Other => return Err(reject(None)),
    };
    let Some(c) = w.cred(Host::Cloud, secret) else { return Err(reject(None)) };
    if !c.live(now) {
        return Err(reject(Some(c)));
    }
    match &c.kind {
        CredKind::ApiToken { user, classic: false } if !bearer => {
            let Some(u) = w.user(user) else { return Err(reject(Some(c))) };
            let ok = if git {
                name.eq_ignore_ascii_case(&u.username) || name == "x-bitbucket-api-token-auth"
            } else {
                name.eq_ignore_ascii_case(&u.email)
            };
            if ok {
                Ok(Principal::User { user: u.clone(), scopes: c.scopes.clone() })
            } else {
                Err(reject(Some(c)))
            }
        }
        CredKind::AccessToken(scope) if bearer || (git && name == "x-token-auth") => {
            Ok(Principal::Access { scope: scope.clone(), scopes: c.scopes.clone() })
        }
        CredKind::AppPassword { .. } => Err(Rejection { git_status: c.git_status, ..reject(Some(c)) }),
        _ => Err(reject(Some(c))),
    }
}

/// Whether an OAuth scope grants another: `X:admin` ⊇ `X:write` ⊇ `X`; `pullrequest` ⊇ `repository`.
pub(super) fn oauth_implies(granted: &str, required: &str) -> bool {
    let level = |s: &str| match s.split_once(':') {
        Some((b, "write")) => (b.to_owned(), 1),
        Some((b, "admin")) => (b.to_owned(), 2),
        _ => (s.to_owned(), 0),
    };
    let ((gb, gl), (rb, rl)) = (level(granted), level(required));
    gl >= rl && (gb == rb || (gb == "pullrequest" && rb == "repository"))
}

fn covers(scope: &AccessScope, repo: &Repo) -> bool {
    match scope {
        AccessScope::Repository { workspace, slug } => {
            repo.owner.eq_ignore_ascii_case(workspace) && repo.slug.eq_ignore_ascii_case(slug)
        }
        AccessScope::Project { workspace, key } => {
            repo.owner.eq_ignore_ascii_case(workspace) && repo.project.eq_ignore_ascii_case(key)
        }
        AccessScope::Workspace { workspace } => repo.owner.eq_ignore_ascii_case(workspace),
    }
}

/// The principal's permission on `repo`; `None`: it cannot see it.
pub(super) fn access(w: &World, p: &Principal, repo: &Repo) -> Option<Perm> {
    let public = (!repo.private).then_some(Perm::Read);
    let own = match p {
        Principal::Anonymous => None,
        Principal::User { user, .. } => w.perm(&user.username, repo),
        Principal::Access { scope, scopes } => covers(scope, repo).then(|| {
            if scopes.iter().any(|s| oauth_implies(s, "repository:admin")) {
                Perm::Admin
            } else if scopes.iter().any(|s| oauth_implies(s, "repository:write")) {
                Perm::Write
            } else {
                Perm::Read
            }
        }),
    };
    own.max(public)
}

/// The workspace policy that refuses this request, if any.
pub(super) fn policy(w: &World, workspace: &str, p: &Principal, ip: IpAddr) -> Option<&'static str> {
    let ws = w.workspace(workspace)?;
    if matches!(p, Principal::Anonymous) {
        return None;
    }
    if !super::ip_allowed(&ws.ip_allowlist, ip) {
        return Some(IP_NOT_ALLOWED);
    }
    match p {
        Principal::User { user, .. } if ws.require_two_step && !user.two_step => Some(TWO_STEP_REQUIRED),
        _ => None,
    }
}

/// The standard error body.
pub(crate) fn error(status: StatusCode, message: &str) -> Response {
    auth::json(status, &json!({"type": "error", "error": {"message": message}}))
}

fn unauthorized(style: RejectStyle, key: &str) -> Response {
    let text = match style {
        RejectStyle::Json => false,
        RejectStyle::Text => true,
        RejectStyle::ByCredential => crate::sha256_hex(key.as_bytes()).as_bytes()[0] % 2 == 1,
    };
    if text {
        auth::text(StatusCode::UNAUTHORIZED, LOGIN_FAILED)
    } else {
        error(StatusCode::UNAUTHORIZED, TOKEN_INVALID)
    }
}

fn decorate(resp: &mut Response, p: &Principal, ep: Option<CloudEndpoint>, rate: Option<(u32, u32, &str)>) {
    if let Some(t) = p.cred_type() {
        auth::set_header(resp, "x-credential-type", t);
    }
    if let Principal::Access { scopes, .. } = p {
        auth::set_header(resp, "x-oauth-scopes", &scopes.join(", "));
        if let Some(ep) = ep {
            auth::set_header(resp, "x-accepted-oauth-scopes", &ep.oauth_scopes().join(", "));
        }
        if let Some((budget, remaining, resource)) = rate {
            auth::set_header(resp, "x-ratelimit-limit", &budget.to_string());
            auth::set_header(resp, "x-ratelimit-resource", resource);
            auth::set_header(resp, "x-ratelimit-nearlimit", if remaining < budget / 20 { "true" } else { "false" });
        }
    }
}

pub(crate) async fn handle(ctx: &Ctx, ip: IpAddr, req: Request) -> Response {
    let path = req.uri().path();
    if path == "/2.0" || path.starts_with("/2.0/") {
        rest(ctx, ip, req).await
    } else {
        super::cloud_git::request(ctx, ip, req).await
    }
}

async fn rest(ctx: &Ctx, ip: IpAddr, req: Request) -> Response {
    let segs: Vec<String> =
        req.uri().path()["/2.0".len()..].split('/').filter(|s| !s.is_empty()).map(super::pct_decode).collect();
    let Some(ep) = CloudEndpoint::route(&segs) else { return error(StatusCode::NOT_FOUND, "Resource not found") };
    if req.method() != Method::GET {
        return error(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed");
    }
    let key = auth::rate_key(req.headers(), ip);
    let pres = auth::presented(req.headers());
    let (authn, limit) = {
        let w = ctx.world();
        (authenticate(&w, &pres, ctx.clock.now(), false), w.cloud.rest_limit)
    };
    let who = authn.as_ref().map(Clone::clone).unwrap_or(Principal::Anonymous);
    let remaining = match ctx.rate_check("cloud-rest", &key, &limit) {
        RateDecision::Allowed { remaining } => remaining,
        RateDecision::Exceeded { retry_after_secs } => {
            let mut resp = error(StatusCode::TOO_MANY_REQUESTS, RATE_LIMITED);
            if limit.retry_after {
                auth::set_header(&mut resp, "retry-after", &retry_after_secs.to_string());
            }
            decorate(&mut resp, &who, Some(ep), Some((limit.budget, 0, "api")));
            return resp;
        }
    };
    let principal = match authn {
        Ok(p) => p,
        Err(rej) => return unauthorized(rej.style, &key),
    };
    let mut resp = match scope_refusal(ctx, ep, &principal) {
        Some(r) => r,
        None => endpoint(ctx, ip, ep, &segs, &principal, &query_pairs(&req)).await,
    };
    decorate(&mut resp, &principal, Some(ep), Some((limit.budget, remaining, "api")));
    resp
}

fn scope_error(ctx: &Ctx, ep: CloudEndpoint, required: &[&str], granted: &[String]) -> Response {
    let status =
        if ctx.world().cloud.scope_error_400.contains(&ep) { StatusCode::BAD_REQUEST } else { StatusCode::FORBIDDEN };
    let body = json!({"type": "error", "error": {"message": SCOPES_LACKING, "detail": {"required": required, "granted": granted}}});
    auth::json(status, &body)
}

fn scope_refusal(ctx: &Ctx, ep: CloudEndpoint, p: &Principal) -> Option<Response> {
    match p {
        Principal::Anonymous => None,
        Principal::User { scopes, .. } => {
            let required = ep.api_token_scopes();
            let complete = required.iter().all(|r| scopes.iter().any(|s| s == r));
            (!complete).then(|| scope_error(ctx, ep, required, scopes))
        }
        Principal::Access { scopes, .. } => {
            if matches!(ep, CloudEndpoint::User | CloudEndpoint::Permissions) {
                return Some(error(StatusCode::FORBIDDEN, NO_USER_FOR_TOKEN));
            }
            let required = ep.oauth_scopes();
            let complete = required.iter().all(|r| scopes.iter().any(|s| oauth_implies(s, r)));
            (!complete).then(|| scope_error(ctx, ep, required, scopes))
        }
    }
}

async fn endpoint(
    ctx: &Ctx,
    ip: IpAddr,
    ep: CloudEndpoint,
    segs: &[String],
    p: &Principal,
    q: &[(String, String)],
) -> Response {
    let origin = &ctx.cloud_origin;
    if ep == CloudEndpoint::User {
        return match p {
            Principal::User { user, .. } => with_fields(user_json(origin, user), q),
            _ => error(StatusCode::UNAUTHORIZED, "Authentication required."),
        };
    }
    if ep == CloudEndpoint::Permissions {
        return permissions(ctx, ip, &segs[2], p, q);
    }
    if ep == CloudEndpoint::Repositories {
        return repositories(ctx, p, q);
    }
    if ep == CloudEndpoint::WorkspaceRepositories {
        return workspace_repositories(ctx, ip, &segs[1], p, q);
    }
    let (ws, slug) = (&segs[1], &segs[2]);
    let repo = {
        let w = ctx.world();
        if let Some(msg) = policy(&w, ws, p, ip) {
            return error(StatusCode::FORBIDDEN, msg);
        }
        let Some(repo) = w.repo(Host::Cloud, ws, slug) else { return error(StatusCode::NOT_FOUND, REPO_NOT_VISIBLE) };
        let Some(perm) = access(&w, p, repo) else { return error(StatusCode::NOT_FOUND, REPO_NOT_VISIBLE) };
        if ep == CloudEndpoint::Hooks && perm < Perm::Admin && !matches!(p, Principal::Access { .. }) {
            return error(
                StatusCode::FORBIDDEN,
                "You must be an administrator of this repository to view its webhooks.",
            );
        }
        (repo.clone(), repo_json(origin, &w, repo, None))
    };
    let (repo, mut full) = repo;
    match ep {
        CloudEndpoint::Repository => {
            let has_commits = !git::branches(&repo.path).await.is_empty();
            full["mainbranch"] = match git::head(&repo.path) {
                Some(b) if has_commits => json!({"type": "branch", "name": b}),
                _ => Value::Null,
            };
            with_fields(full, q)
        }
        CloudEndpoint::Branches => branches(ctx, &repo, q).await,
        _ => hooks(origin, &repo, q),
    }
}

pub(super) fn with_fields(v: Value, q: &[(String, String)]) -> Response {
    let v = match query_get(q, "fields") {
        Some(f) => fields::apply(v, f),
        None => v,
    };
    auth::json(StatusCode::OK, &v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oauth_scopes_imply_downwards_only() {
        assert!(oauth_implies("repository:admin", "repository"));
        assert!(oauth_implies("repository:write", "repository"));
        assert!(oauth_implies("pullrequest", "repository"));
        assert!(!oauth_implies("repository", "repository:write"));
        assert!(!oauth_implies("webhook", "repository"));
    }
}
