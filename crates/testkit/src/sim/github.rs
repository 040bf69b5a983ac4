//! GitHub (Enterprise-style paths): REST under `/api/v3`, Git at `/{owner}/{repo}.git`.
//! Classic tokens report `X-OAuth-Scopes`; fine-grained tokens do not; expiring tokens carry
//! `GitHub-Authentication-Token-Expiration`.

use super::auth::{self, Presented};
use super::git::{self, Service};
use super::{Cred, CredKind, Ctx, Host, Perm, Repo, User, World};
use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};
use std::net::IpAddr;

const DOCS: &str = "https://docs.github.com/rest";

#[derive(Debug, Clone)]
struct Principal {
    user: User,
    cred: Cred,
}

/// `Ok(None)`: anonymous.
fn authenticate(
    w: &World,
    pres: &Presented,
    now: chrono::DateTime<chrono::Utc>,
    git: bool,
) -> Result<Option<Principal>, ()> {
    let secret = match pres {
        Presented::None => return Ok(None),
        Presented::Basic { pass, .. } => pass,
        Presented::Bearer(t) | Presented::Token(t) if !git => t,
        _ => return Err(()),
    };
    let cred = w.cred(Host::GitHub, secret).filter(|c| c.live(now)).ok_or(())?;
    let user = match &cred.kind {
        CredKind::GitHubClassic { user } | CredKind::GitHubFineGrained { user, .. } => w.user(user).ok_or(())?,
        _ => return Err(()),
    };
    Ok(Some(Principal { user: user.clone(), cred: cred.clone() }))
}

/// The principal's permission on `repo`; `None`: it cannot see it (404).
fn access(w: &World, p: Option<&Principal>, repo: &Repo) -> Option<Perm> {
    let public = (!repo.private).then_some(Perm::Read);
    let own = p.and_then(|p| {
        let perm = w.perm(&p.user.username, repo)?;
        match &p.cred.kind {
            CredKind::GitHubClassic { .. } => {
                (!repo.private || p.cred.scopes.iter().any(|s| s == "repo")).then_some(perm)
            }
            CredKind::GitHubFineGrained { repos, .. } => {
                (repos.is_empty() || repos.iter().any(|r| r.eq_ignore_ascii_case(&repo.full_name()))).then_some(perm)
            }
            _ => None,
        }
    });
    own.max(public)
}

fn message(status: StatusCode, message: &str, docs: &str) -> Response {
    auth::json(status, &json!({"message": message, "documentation_url": docs, "status": status.as_u16().to_string()}))
}

pub(crate) async fn handle(ctx: &Ctx, _ip: IpAddr, req: Request) -> Response {
    match req.uri().path().strip_prefix("/api/v3") {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => {
            let rest = rest.to_owned();
            api(ctx, req, &rest).await
        }
        _ => git_request(ctx, req).await,
    }
}

async fn api(ctx: &Ctx, req: Request, rest: &str) -> Response {
    let segs: Vec<String> = rest.split('/').filter(|s| !s.is_empty()).map(super::pct_decode).collect();
    let pres = auth::presented(req.headers());
    let w = ctx.world().clone();
    let Ok(p) = authenticate(&w, &pres, ctx.clock.now(), false) else {
        return message(StatusCode::UNAUTHORIZED, "Bad credentials", DOCS);
    };
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let (mut resp, accepted) = match (req.method() == Method::GET, s.as_slice()) {
        (true, ["user"]) => match &p {
            Some(p) => (auth::json(StatusCode::OK, &user_json(&ctx.github_origin, &p.user)), ""),
            None => (
                message(
                    StatusCode::UNAUTHORIZED,
                    "Requires authentication",
                    &format!("{DOCS}/users/users#get-the-authenticated-user"),
                ),
                "",
            ),
        },
        (true, ["repos", owner, name]) => (repo(ctx, &w, p.as_ref(), owner, name).await, "repo"),
        _ => (message(StatusCode::NOT_FOUND, "Not Found", DOCS), ""),
    };
    decorate(&mut resp, p.as_ref(), accepted);
    resp
}

fn decorate(resp: &mut Response, p: Option<&Principal>, accepted: &str) {
    auth::set_header(resp, "x-github-media-type", "github.v3; format=json");
    auth::set_header(resp, "x-github-api-version-selected", "2022-11-28");
    let limit = if p.is_some() { 5000 } else { 60 };
    auth::set_header(resp, "x-ratelimit-limit", &limit.to_string());
    auth::set_header(resp, "x-ratelimit-remaining", &(limit - 1).to_string());
    auth::set_header(resp, "x-ratelimit-used", "1");
    auth::set_header(resp, "x-ratelimit-resource", "core");
    let Some(p) = p else { return };
    if let CredKind::GitHubClassic { .. } = p.cred.kind {
        auth::set_header(resp, "x-oauth-scopes", &p.cred.scopes.join(", "));
        auth::set_header(resp, "x-accepted-oauth-scopes", accepted);
    }
    if let Some(e) = p.cred.expires {
        auth::set_header(
            resp,
            "github-authentication-token-expiration",
            &e.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        );
    }
}

fn user_json(origin: &str, u: &User) -> Value {
    json!({
        "login": u.username,
        "id": u.id,
        "node_id": format!("U_sim{}", u.id),
        "avatar_url": format!("{origin}/avatars/u/{}", u.id),
        "url": format!("{origin}/api/v3/users/{}", u.username),
        "html_url": format!("{origin}/{}", u.username),
        "type": "User",
        "site_admin": false,
        "name": u.display_name,
        "email": u.email,
        "created_at": "2024-01-01T00:00:00Z",
        "updated_at": "2024-01-01T00:00:00Z",
    })
}

async fn repo(ctx: &Ctx, w: &World, p: Option<&Principal>, owner: &str, name: &str) -> Response {
    let not_found = || message(StatusCode::NOT_FOUND, "Not Found", &format!("{DOCS}/repos/repos#get-a-repository"));
    let Some(r) = w.repo(Host::GitHub, owner, name) else { return not_found() };
    let Some(level) = access(w, p, r) else { return not_found() };
    let origin = &ctx.github_origin;
    let owner_user = w.user(&r.owner);
    let default_branch = git::head(&r.path).unwrap_or_else(|| "main".to_owned());
    let empty = git::branches(&r.path).await.is_empty();
    let mut body = json!({
        "id": r.id,
        "node_id": format!("R_sim{}", r.id),
        "name": r.name,
        "full_name": r.full_name(),
        "private": r.private,
        "visibility": if r.private { "private" } else { "public" },
        "owner": {
            "login": r.owner,
            "id": owner_user.map(|u| u.id).unwrap_or(1),
            "type": if owner_user.is_some() { "User" } else { "Organization" },
            "site_admin": false,
        },
        "html_url": format!("{origin}/{}", r.full_name()),
        "url": format!("{origin}/api/v3/repos/{}", r.full_name()),
        "clone_url": format!("{origin}/{}.git", r.full_name()),
        "git_url": format!("git://{}/{}.git", origin.trim_start_matches("http://"), r.full_name()),
        "default_branch": default_branch,
        "size": if empty { 0 } else { 1 },
        "archived": false,
        "disabled": false,
        "fork": false,
        "created_at": "2024-01-01T00:00:00Z",
        "pushed_at": if empty { Value::Null } else { json!("2024-01-01T00:00:00Z") },
    });
    if p.is_some() {
        let user_level = p.and_then(|p| w.perm(&p.user.username, r)).unwrap_or(level);
        body["permissions"] = json!({
            "admin": user_level >= Perm::Admin,
            "maintain": user_level >= Perm::Admin,
            "push": user_level >= Perm::Write,
            "triage": user_level >= Perm::Write,
            "pull": true,
        });
    }
    auth::json(StatusCode::OK, &body)
}

async fn git_request(ctx: &Ctx, req: Request) -> Response {
    let Some(gp) = git::split(req.uri().path(), req.uri().query().unwrap_or("")) else {
        return auth::text(StatusCode::NOT_FOUND, "Not Found");
    };
    let pres = auth::presented(req.headers());
    let (path, user) = {
        let w = ctx.world();
        let Ok(p) = authenticate(&w, &pres, ctx.clock.now(), true) else {
            return auth::challenge(
                "GitHub",
                "Invalid username or token. Password authentication is not supported for Git operations.",
            );
        };
        let repo = w.repo(Host::GitHub, &gp.owner, &gp.repo);
        let level = repo.and_then(|r| access(&w, p.as_ref(), r));
        let need = if gp.service == Service::Write { Perm::Write } else { Perm::Read };
        match (repo, level, &p) {
            (Some(r), Some(l), _) if l >= need => (r.path.clone(), p.as_ref().map(|p| p.user.username.clone())),
            (_, _, None) => return auth::challenge("GitHub", "Authentication required"),
            (Some(_), Some(_), Some(p)) => {
                return auth::text(
                    StatusCode::FORBIDDEN,
                    &format!("Permission to {}/{} denied to {}.", gp.owner, gp.repo, p.user.username),
                )
            }
            _ => return auth::text(StatusCode::NOT_FOUND, "Repository not found."),
        }
    };
    git::backend(ctx, &path, req, &gp.rest, user.as_deref()).await
}
