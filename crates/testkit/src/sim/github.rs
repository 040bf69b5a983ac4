//! GitHub (Enterprise-style paths): REST under `/api/v3`, Git at `/{owner}/{repo}.git`.
//! Classic tokens report `X-OAuth-Scopes`; fine-grained tokens do not; expiring tokens carry
//! `GitHub-Authentication-Token-Expiration`.

use super::auth::{self, Presented};
use super::git::{self, Service};
use super::{github_apps, query_get, query_pairs, Cred, CredKind, Ctx, Host, Perm, RateDecision, Repo, User, World};
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

pub(crate) async fn handle(ctx: &Ctx, ip: IpAddr, req: Request) -> Response {
    match req.uri().path().strip_prefix("/api/v3") {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => {
            let rest = rest.to_owned();
            api(ctx, ip, req, &rest).await
        }
        _ => git_request(ctx, req).await,
    }
}

async fn api(ctx: &Ctx, ip: IpAddr, req: Request, rest: &str) -> Response {
    let segs: Vec<String> = rest.split('/').filter(|s| !s.is_empty()).map(super::pct_decode).collect();
    let pres = auth::presented(req.headers());
    // A GitHub App's JWT, or one of its installation tokens: the app's own rules.
    if let Some(jwt) = github_apps::jwt_of(&pres) {
        let s: Vec<&str> = segs.iter().map(String::as_str).collect();
        return github_apps::app_request(ctx, req.method(), &s, jwt);
    }
    if let Presented::Bearer(t) | Presented::Token(t) = &pres {
        if github_apps::is_installation_token(t) {
            let s: Vec<&str> = segs.iter().map(String::as_str).collect();
            let q = query_pairs(&req);
            return installation_request(ctx, req.method(), &s, &q, t).await;
        }
    }
    let w = ctx.world().clone();
    let Ok(p) = authenticate(&w, &pres, ctx.clock.now(), false) else {
        return message(StatusCode::UNAUTHORIZED, "Bad credentials", DOCS);
    };
    // One budget for everyone: tests that call anonymously must not run out where GitHub's 60
    // an hour would (the limit is per address there, and every test shares 127.0.0.1).
    let budget = w.github_rest_limit;
    let remaining = match ctx.rate_check("github-rest", &auth::rate_key(req.headers(), ip), &budget) {
        RateDecision::Allowed { remaining } => remaining,
        RateDecision::Exceeded { retry_after_secs } => return rate_limited(ctx, p.as_ref(), &budget, retry_after_secs),
    };
    let q = query_pairs(&req);
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
        (true, ["orgs", org, "repos"]) => (list_repos(ctx, &w, p.as_ref(), Listing::Org(org), &q), ""),
        (true, ["users", user, "repos"]) => (list_repos(ctx, &w, p.as_ref(), Listing::User(user), &q), ""),
        _ => (message(StatusCode::NOT_FOUND, "Not Found", DOCS), ""),
    };
    decorate(&mut resp, p.as_ref(), accepted, budget.budget, remaining);
    resp
}

/// Over the budget: 429 with `Retry-After` where the budget says so, else GitHub's primary
/// limit answer, 403 with `x-ratelimit-remaining: 0` and the reset time.
fn rate_limited(ctx: &Ctx, p: Option<&Principal>, budget: &super::RateLimit, retry_after_secs: i64) -> Response {
    let id = p.map(|p| p.user.id).unwrap_or(0);
    let text = format!("API rate limit exceeded for user ID {id}.");
    let mut resp = if budget.retry_after {
        let mut r =
            message(StatusCode::TOO_MANY_REQUESTS, &text, &format!("{DOCS}/overview/rate-limits-for-the-rest-api"));
        auth::set_header(&mut r, "retry-after", &retry_after_secs.to_string());
        r
    } else {
        message(StatusCode::FORBIDDEN, &text, &format!("{DOCS}/overview/rate-limits-for-the-rest-api"))
    };
    decorate(&mut resp, p, "", budget.budget, 0);
    let reset = ctx.clock.now().timestamp() + retry_after_secs;
    auth::set_header(&mut resp, "x-ratelimit-reset", &reset.to_string());
    resp
}

/// Whose repositories a listing asks for.
enum Listing<'a> {
    Org(&'a str),
    User(&'a str),
}

/// `GET /orgs/{org}/repos` (the organisation's repositories the caller can see) and
/// `GET /users/{user}/repos` (a user's public repositories), by full name, `per_page` 30 by
/// default and at most 100, `page` from 1, with a `Link` header naming the next and last pages.
/// An organisation is an owner of repositories that is not a user; `/orgs/` of a user is 404.
fn list_repos(ctx: &Ctx, w: &World, p: Option<&Principal>, who: Listing<'_>, q: &[(String, String)]) -> Response {
    let docs = format!("{DOCS}/repos/repos");
    let (owner, path) = match who {
        Listing::Org(o) => {
            let is_org = w.user(o).is_none()
                && w.repos.iter().any(|r| r.host == Host::GitHub && r.owner.eq_ignore_ascii_case(o));
            if !is_org {
                return message(StatusCode::NOT_FOUND, "Not Found", &docs);
            }
            (o, "orgs")
        }
        Listing::User(u) => {
            if w.user(u).is_none() {
                return message(StatusCode::NOT_FOUND, "Not Found", &docs);
            }
            (u, "users")
        }
    };
    let mut repos: Vec<&Repo> = w
        .repos
        .iter()
        .filter(|r| r.host == Host::GitHub && r.owner.eq_ignore_ascii_case(owner))
        .filter(|r| if path == "users" { !r.private } else { access(w, p, r).is_some() })
        .collect();
    repos.sort_by_key(|r| r.full_name().to_ascii_lowercase());
    let (per_page, page, last) = paging(w, q, repos.len());
    let values: Vec<Value> =
        repos.iter().skip((page - 1) * per_page).take(per_page).map(|r| repo_summary(ctx, w, p, r)).collect();
    let mut resp = auth::json(StatusCode::OK, &Value::Array(values));
    let base = format!("{}/api/v3/{path}/{owner}/repos", ctx.github_origin);
    set_page_links(&mut resp, &base, per_page, page, last);
    resp
}

/// `per_page` (30 by default, at most 100, and the world's page cap) and `page` (from 1) of
/// a listing of `total` items: the page size, the page, the last page.
fn paging(w: &World, q: &[(String, String)], total: usize) -> (usize, usize, usize) {
    let per_page = query_get(q, "per_page")
        .and_then(|v| v.parse().ok())
        .unwrap_or(30usize)
        .clamp(1, 100)
        .min(w.list_page_cap.max(1));
    let page = query_get(q, "page").and_then(|v| v.parse().ok()).unwrap_or(1usize).max(1);
    (per_page, page, total.div_ceil(per_page).max(1))
}

/// GitHub's `Link` header: the next and last pages, the first and previous ones.
fn set_page_links(resp: &mut Response, base: &str, per_page: usize, page: usize, last: usize) {
    let link = |n: usize, rel: &str| format!("<{base}?per_page={per_page}&page={n}>; rel=\"{rel}\"");
    let mut links = Vec::new();
    if page < last {
        links.push(link(page + 1, "next"));
        links.push(link(last, "last"));
    }
    if page > 1 {
        links.push(link(1, "first"));
        links.push(link(page - 1, "prev"));
    }
    if !links.is_empty() {
        auth::set_header(resp, "link", &links.join(", "));
    }
}

/// `GET /installation/repositories` with an installation token: the repositories the
/// installation can access (all of its account's, or those selected), by full name, paged as
/// every GitHub list, in GitHub's envelope (`total_count`, `repository_selection`,
/// `repositories`).
fn installation_repos(ctx: &Ctx, w: &World, inst: &github_apps::Installation, q: &[(String, String)]) -> Response {
    let mut repos: Vec<&Repo> =
        w.repos.iter().filter(|r| r.host == Host::GitHub && inst.covers(&r.owner, &r.name)).collect();
    repos.sort_by_key(|r| r.full_name().to_ascii_lowercase());
    let (per_page, page, last) = paging(w, q, repos.len());
    let values: Vec<Value> =
        repos.iter().skip((page - 1) * per_page).take(per_page).map(|r| repo_summary(ctx, w, None, r)).collect();
    let mut resp = auth::json(
        StatusCode::OK,
        &json!({
            "total_count": repos.len(),
            "repository_selection": inst.selection(),
            "repositories": values,
        }),
    );
    let base = format!("{}/api/v3/installation/repositories", ctx.github_origin);
    set_page_links(&mut resp, &base, per_page, page, last);
    resp
}

/// A repository as listings show it (the same fields as `GET /repos/…` without reading Git).
fn repo_summary(ctx: &Ctx, w: &World, p: Option<&Principal>, r: &Repo) -> Value {
    let origin = &ctx.github_origin;
    let owner_user = w.user(&r.owner);
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
        "default_branch": git::head(&r.path).unwrap_or_else(|| "main".to_owned()),
        "archived": false,
        "disabled": false,
        "fork": false,
    });
    if let Some(level) = p.and_then(|p| w.perm(&p.user.username, r)) {
        body["permissions"] = json!({
            "admin": level >= Perm::Admin,
            "maintain": level >= Perm::Admin,
            "push": level >= Perm::Write,
            "triage": level >= Perm::Write,
            "pull": true,
        });
    }
    body
}

fn decorate(resp: &mut Response, p: Option<&Principal>, accepted: &str, limit: u32, remaining: u32) {
    auth::set_header(resp, "x-github-media-type", "github.v3; format=json");
    auth::set_header(resp, "x-github-api-version-selected", "2022-11-28");
    auth::set_header(resp, "x-ratelimit-limit", &limit.to_string());
    auth::set_header(resp, "x-ratelimit-remaining", &remaining.to_string());
    auth::set_header(resp, "x-ratelimit-used", &(limit - remaining).to_string());
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

/// REST with an installation token: the installation's repositories, and nothing else.
async fn installation_request(
    ctx: &Ctx,
    method: &Method,
    segs: &[&str],
    q: &[(String, String)],
    token: &str,
) -> Response {
    let w = ctx.world().clone();
    let Some(inst) = github_apps::installation_of_token(&w, token, ctx.clock.now()) else {
        return message(StatusCode::UNAUTHORIZED, "Bad credentials", DOCS);
    };
    match (*method == Method::GET, segs) {
        (true, ["repos", owner, name]) => {
            let not_found =
                || message(StatusCode::NOT_FOUND, "Not Found", &format!("{DOCS}/repos/repos#get-a-repository"));
            match w.repo(Host::GitHub, owner, name) {
                Some(r) if github_apps::may_read(&inst, owner, name) => {
                    auth::json(StatusCode::OK, &repo_body(ctx, &w, r, None).await)
                }
                _ => not_found(),
            }
        }
        (true, ["installation", "repositories"]) => installation_repos(ctx, &w, &inst, q),
        _ => message(StatusCode::FORBIDDEN, "Resource not accessible by integration", DOCS),
    }
}

async fn repo(ctx: &Ctx, w: &World, p: Option<&Principal>, owner: &str, name: &str) -> Response {
    let not_found = || message(StatusCode::NOT_FOUND, "Not Found", &format!("{DOCS}/repos/repos#get-a-repository"));
    let Some(r) = w.repo(Host::GitHub, owner, name) else { return not_found() };
    let Some(level) = access(w, p, r) else { return not_found() };
    let user_level = p.map(|p| w.perm(&p.user.username, r).unwrap_or(level));
    auth::json(StatusCode::OK, &repo_body(ctx, w, r, user_level).await)
}

/// A repository as GitHub shows it; with `permissions` when the caller is a user.
async fn repo_body(ctx: &Ctx, w: &World, r: &Repo, user_level: Option<Perm>) -> Value {
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
    if let Some(user_level) = user_level {
        body["permissions"] = json!({
            "admin": user_level >= Perm::Admin,
            "maintain": user_level >= Perm::Admin,
            "push": user_level >= Perm::Write,
            "triage": user_level >= Perm::Write,
            "pull": true,
        });
    }
    body
}

async fn git_request(ctx: &Ctx, req: Request) -> Response {
    let Some(gp) = git::split(req.uri().path(), req.uri().query().unwrap_or("")) else {
        return auth::text(StatusCode::NOT_FOUND, "Not Found");
    };
    let pres = auth::presented(req.headers());
    // An installation token, as Git sends it: the password of `x-access-token`.
    if let Presented::Basic { pass, .. } = &pres {
        if github_apps::is_installation_token(pass) {
            let path = {
                let w = ctx.world();
                let Some(inst) = github_apps::installation_of_token(&w, pass, ctx.clock.now()) else {
                    return auth::challenge(
                        "GitHub",
                        "Invalid username or token. Password authentication is not supported for Git operations.",
                    );
                };
                match w.repo(Host::GitHub, &gp.owner, &gp.repo) {
                    Some(r) if gp.service == Service::Read && github_apps::may_read(&inst, &gp.owner, &gp.repo) => {
                        r.path.clone()
                    }
                    _ => return auth::text(StatusCode::NOT_FOUND, "Repository not found."),
                }
            };
            return git::backend(ctx, &path, req, &gp.rest, None).await;
        }
    }
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
