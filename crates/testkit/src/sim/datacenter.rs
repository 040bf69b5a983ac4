//! Bitbucket Data Center behind a context path: REST `{ctx}/rest/api/latest/…` (and `/1.0`),
//! Git `{ctx}/scm/{project}/{slug}.git`. HTTP access tokens: personal (Bearer, or Basic with
//! the username), project and repository (Bearer only).

use super::auth::{self, Presented};
use super::git::{self, Service};
use super::{query_get, query_pairs, CredKind, Ctx, Host, Perm, RateDecision, Repo, User, World};
use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};
use std::net::IpAddr;

const REALM: &str = "Atlassian Bitbucket";
pub const AUTH_FAILED: &str = "Authentication failed. Please check your credentials and try again.";
pub const NOT_PERMITTED: &str = "You are not permitted to access this resource";

#[derive(Debug, Clone)]
enum Principal {
    Anonymous,
    /// A user by password (`token: None`) or personal token (its permissions).
    User {
        user: User,
        token: Option<Vec<String>>,
    },
    Project {
        key: String,
        perms: Vec<String>,
    },
    Repository {
        key: String,
        slug: String,
        perms: Vec<String>,
    },
}

fn authenticate(w: &World, pres: &Presented, now: chrono::DateTime<chrono::Utc>) -> Result<Principal, ()> {
    match pres {
        Presented::None => Ok(Principal::Anonymous),
        Presented::Basic { user, pass } => {
            let u = w.user(user).ok_or(())?;
            if u.password.as_deref() == Some(pass.as_str()) {
                return Ok(Principal::User { user: u.clone(), token: None });
            }
            match w.cred(Host::DataCenter, pass) {
                Some(c)
                    if c.live(now)
                        && matches!(&c.kind, CredKind::DcPersonal { user: owner } if owner.eq_ignore_ascii_case(&u.username)) =>
                {
                    Ok(Principal::User { user: u.clone(), token: Some(c.scopes.clone()) })
                }
                _ => Err(()),
            }
        }
        Presented::Bearer(t) => {
            let c = w.cred(Host::DataCenter, t).filter(|c| c.live(now)).ok_or(())?;
            match &c.kind {
                CredKind::DcPersonal { user } => {
                    Ok(Principal::User { user: w.user(user).ok_or(())?.clone(), token: Some(c.scopes.clone()) })
                }
                CredKind::DcProject { key } => Ok(Principal::Project { key: key.clone(), perms: c.scopes.clone() }),
                CredKind::DcRepository { key, slug } => {
                    Ok(Principal::Repository { key: key.clone(), slug: slug.clone(), perms: c.scopes.clone() })
                }
                _ => Err(()),
            }
        }
        Presented::Token(_) | Presented::Other => Err(()),
    }
}

/// The repository permission token permissions give (`PROJECT_*` implies the same on its repositories).
fn token_level(perms: &[String]) -> Option<Perm> {
    perms
        .iter()
        .filter_map(|p| match p.trim_start_matches("PROJECT_").trim_start_matches("REPO_") {
            "READ" => Some(Perm::Read),
            "WRITE" => Some(Perm::Write),
            "ADMIN" => Some(Perm::Admin),
            _ => None,
        })
        .max()
}

fn access(w: &World, p: &Principal, repo: &Repo) -> Option<Perm> {
    let project_public = w.dc_project(&repo.owner).is_some_and(|p| p.public);
    let public = (!repo.private || project_public).then_some(Perm::Read);
    let own = match p {
        Principal::Anonymous => None,
        Principal::User { user, token } => {
            let granted = w.perm(&user.username, repo);
            match token {
                None => granted,
                Some(t) => granted.zip(token_level(t)).map(|(a, b)| a.min(b)),
            }
        }
        Principal::Project { key, perms } => repo.owner.eq_ignore_ascii_case(key).then(|| token_level(perms)).flatten(),
        Principal::Repository { key, slug, perms } => (repo.owner.eq_ignore_ascii_case(key)
            && repo.slug.eq_ignore_ascii_case(slug))
        .then(|| token_level(perms))
        .flatten(),
    };
    own.max(public)
}

/// `{"errors":[{"context":null,"message":…,"exceptionName":…}]}`
pub(crate) fn error(status: StatusCode, message: &str, exception: &str) -> Response {
    auth::json(status, &json!({"errors": [{"context": null, "message": message, "exceptionName": exception}]}))
}

pub(crate) async fn handle(ctx: &Ctx, ip: IpAddr, req: Request) -> Response {
    let context = ctx.world().dc_context_path.clone();
    let path = req.uri().path().to_owned();
    let Some(rest) = path.strip_prefix(&context).filter(|r| r.starts_with('/')) else {
        return auth::text(StatusCode::NOT_FOUND, "Not Found");
    };
    for api in ["/rest/api/latest/", "/rest/api/1.0/"] {
        if let Some(r) = rest.strip_prefix(api) {
            let segs: Vec<String> = r.split('/').filter(|s| !s.is_empty()).map(super::pct_decode).collect();
            return api_request(ctx, ip, req, &segs).await;
        }
    }
    match rest.strip_prefix("/scm/") {
        Some(r) => git_request(ctx, req, r).await,
        None => error(
            StatusCode::NOT_FOUND,
            "The requested resource was not found.",
            "com.atlassian.bitbucket.NoSuchResourceException",
        ),
    }
}

async fn api_request(ctx: &Ctx, ip: IpAddr, req: Request, segs: &[String]) -> Response {
    let limit = ctx.world().dc_rest_limit;
    if let RateDecision::Exceeded { retry_after_secs } =
        ctx.rate_check("dc-rest", &auth::rate_key(req.headers(), ip), &limit)
    {
        let mut resp = error(
            StatusCode::TOO_MANY_REQUESTS,
            "You have been rate limited. Please wait before making further requests.",
            "com.atlassian.bitbucket.ratelimit.RateLimitedException",
        );
        if limit.retry_after {
            auth::set_header(&mut resp, "retry-after", &retry_after_secs.to_string());
        }
        return resp;
    }
    let pres = auth::presented(req.headers());
    let authn = authenticate(&ctx.world(), &pres, ctx.clock.now());
    let Ok(p) = authn else {
        return error(
            StatusCode::UNAUTHORIZED,
            AUTH_FAILED,
            "com.atlassian.bitbucket.auth.IncorrectPasswordAuthenticationException",
        );
    };
    let mut resp = if req.method() != Method::GET {
        error(
            StatusCode::METHOD_NOT_ALLOWED,
            "Method not allowed.",
            "com.atlassian.bitbucket.rest.MethodNotAllowedException",
        )
    } else {
        route(ctx, &p, segs, &query_pairs(&req)).await
    };
    if let Principal::User { user, .. } = &p {
        auth::set_header(&mut resp, "x-ausername", &user.username);
        auth::set_header(&mut resp, "x-auserid", &user.id.to_string());
    }
    auth::set_header(&mut resp, "x-arequestid", "@SIM1x1x1");
    resp
}

async fn route(ctx: &Ctx, p: &Principal, segs: &[String], q: &[(String, String)]) -> Response {
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let (key, slug, tail) = match s.as_slice() {
        ["application-properties"] => {
            return auth::json(
                StatusCode::OK,
                &json!({"version": "9.2.0", "buildNumber": "9002000", "buildDate": "1718000000000", "displayName": "Bitbucket"}),
            )
        }
        ["projects", key, "repos"] => return project_repos(ctx, p, key, q),
        ["projects", key, "repos", slug] => (*key, *slug, None),
        ["projects", key, "repos", slug, tail @ ("default-branch" | "branches")] => (*key, *slug, Some(*tail)),
        _ => {
            return error(
                StatusCode::NOT_FOUND,
                "The requested resource was not found.",
                "com.atlassian.bitbucket.NoSuchResourceException",
            )
        }
    };
    let (repo, body) = {
        let w = ctx.world();
        let Some(project) = w.dc_project(key) else {
            return error(
                StatusCode::NOT_FOUND,
                &format!("Project {key} does not exist."),
                "com.atlassian.bitbucket.project.NoSuchProjectException",
            );
        };
        let Some(repo) = w.repo(Host::DataCenter, &project.key, slug) else {
            return error(
                StatusCode::NOT_FOUND,
                &format!("Repository {}/{slug} does not exist.", project.key),
                "com.atlassian.bitbucket.repository.NoSuchRepositoryException",
            );
        };
        if access(&w, p, repo).is_none() {
            return error(StatusCode::UNAUTHORIZED, NOT_PERMITTED, "com.atlassian.bitbucket.AuthorisationException");
        }
        (repo.clone(), repo_json(ctx, &w, repo))
    };
    match tail {
        None => auth::json(StatusCode::OK, &body),
        Some("default-branch") => {
            let head = git::head(&repo.path);
            let branches = git::branches(&repo.path).await;
            match branches.iter().find(|b| Some(&b.name) == head.as_ref()) {
                Some(b) => auth::json(StatusCode::OK, &branch_json(&b.name, &b.oid, true)),
                None => error(
                    StatusCode::NOT_FOUND,
                    &format!("Repository {}/{} does not have a default branch.", repo.owner, repo.slug),
                    "com.atlassian.bitbucket.repository.NoDefaultBranchException",
                ),
            }
        }
        _ => branches(&repo, q).await,
    }
}

/// `GET …/projects/{key}/repos`: the project's repositories the caller can see, by slug, paged
/// with `start` and `limit` (25 by default, at most 1,000) as Data Center pages. An unknown
/// project is 404; a project the caller can see nothing of is 401, as Data Center answers a
/// missing PROJECT_READ.
fn project_repos(ctx: &Ctx, p: &Principal, key: &str, q: &[(String, String)]) -> Response {
    let w = ctx.world();
    let Some(project) = w.dc_project(key) else {
        return error(
            StatusCode::NOT_FOUND,
            &format!("Project {key} does not exist."),
            "com.atlassian.bitbucket.project.NoSuchProjectException",
        );
    };
    let mut all: Vec<&Repo> =
        w.repos.iter().filter(|r| r.host == Host::DataCenter && r.owner.eq_ignore_ascii_case(&project.key)).collect();
    let total = all.len();
    all.retain(|r| access(&w, p, r).is_some());
    if all.is_empty() && total > 0 && !project.public {
        return error(StatusCode::UNAUTHORIZED, NOT_PERMITTED, "com.atlassian.bitbucket.AuthorisationException");
    }
    all.sort_by_key(|r| r.slug.to_ascii_lowercase());
    let start = query_get(q, "start").and_then(|v| v.parse().ok()).unwrap_or(0usize);
    let limit = query_get(q, "limit")
        .and_then(|v| v.parse().ok())
        .unwrap_or(25usize)
        .clamp(1, 1000)
        .min(w.list_page_cap.max(1));
    let values: Vec<Value> = all.iter().skip(start).take(limit).map(|r| repo_json(ctx, &w, r)).collect();
    let size = values.len();
    let last = start + size >= all.len();
    let mut page = json!({"size": size, "limit": limit, "isLastPage": last, "start": start, "values": values});
    if !last {
        page["nextPageStart"] = json!(start + size);
    }
    auth::json(StatusCode::OK, &page)
}

fn branch_json(name: &str, oid: &str, is_default: bool) -> Value {
    json!({
        "id": format!("refs/heads/{name}"),
        "displayId": name,
        "type": "BRANCH",
        "latestCommit": oid,
        "latestChangeset": oid,
        "isDefault": is_default,
    })
}

fn repo_json(ctx: &Ctx, w: &World, r: &Repo) -> Value {
    let base = format!("{}{}", ctx.dc_origin, w.dc_context_path);
    let project = w.dc_project(&r.owner);
    let host = ctx.dc_origin.trim_start_matches("http://").split(':').next().unwrap_or("127.0.0.1");
    json!({
        "slug": r.slug,
        "id": r.id,
        "name": r.name,
        "hierarchyId": &crate::sha256_hex(r.uuid.as_bytes())[..20],
        "scmId": "git",
        "state": "AVAILABLE",
        "statusMessage": "Available",
        "forkable": true,
        "project": {
            "key": r.owner,
            "id": project.map(|p| p.id).unwrap_or(1),
            "name": project.map(|p| p.name.clone()).unwrap_or_else(|| r.owner.clone()),
            "public": project.is_some_and(|p| p.public),
            "type": "NORMAL",
            "links": {"self": [{"href": format!("{base}/projects/{}", r.owner)}]},
        },
        "public": !r.private,
        "archived": false,
        "links": {
            "clone": [
                {"href": format!("{base}/scm/{}/{}.git", r.owner.to_ascii_lowercase(), r.slug), "name": "http"},
                {"href": format!("ssh://git@{host}:7999/{}/{}.git", r.owner.to_ascii_lowercase(), r.slug), "name": "ssh"},
            ],
            "self": [{"href": format!("{base}/projects/{}/repos/{}/browse", r.owner, r.slug)}],
        },
    })
}

async fn branches(repo: &Repo, q: &[(String, String)]) -> Response {
    let head = git::head(&repo.path);
    let mut list = git::branches(&repo.path).await;
    if let Some(f) = query_get(q, "filterText").map(str::to_lowercase) {
        list.retain(|b| b.name.to_lowercase().contains(&f));
    }
    if query_get(q, "orderBy") != Some("ALPHABETICAL") {
        // MODIFICATION (the default): newest first; the default branch first among equals.
        list.sort_by(|a, b| {
            b.date.cmp(&a.date).then_with(|| (Some(&b.name) == head.as_ref()).cmp(&(Some(&a.name) == head.as_ref())))
        });
    }
    let start = query_get(q, "start").and_then(|v| v.parse().ok()).unwrap_or(0usize);
    let limit = query_get(q, "limit").and_then(|v| v.parse().ok()).unwrap_or(25usize).clamp(1, 1000);
    let values: Vec<Value> = list
        .iter()
        .skip(start)
        .take(limit)
        .map(|b| branch_json(&b.name, &b.oid, Some(&b.name) == head.as_ref()))
        .collect();
    let size = values.len();
    let last = start + size >= list.len();
    let mut page = json!({"size": size, "limit": limit, "isLastPage": last, "start": start, "values": values});
    if !last {
        page["nextPageStart"] = json!(start + size);
    }
    auth::json(StatusCode::OK, &page)
}

async fn git_request(ctx: &Ctx, req: Request, rest: &str) -> Response {
    let Some(gp) = git::split(rest, req.uri().query().unwrap_or("")) else {
        return auth::text(StatusCode::NOT_FOUND, "Not Found");
    };
    let pres = auth::presented(req.headers());
    let (path, user) = {
        let w = ctx.world();
        let Ok(p) = authenticate(&w, &pres, ctx.clock.now()) else { return auth::challenge(REALM, AUTH_FAILED) };
        let Some(repo) = w.repo(Host::DataCenter, &gp.owner, &gp.repo) else {
            return match p {
                Principal::Anonymous => auth::challenge(REALM, "Authentication required"),
                _ => auth::text(StatusCode::NOT_FOUND, "Repository not found"),
            };
        };
        let need = if gp.service == Service::Write { Perm::Write } else { Perm::Read };
        match access(&w, &p, repo) {
            Some(level) if level >= need => {}
            _ if matches!(p, Principal::Anonymous) => return auth::challenge(REALM, "Authentication required"),
            Some(_) => return auth::text(StatusCode::FORBIDDEN, "You are not permitted to push to this repository."),
            None => return auth::challenge(REALM, NOT_PERMITTED),
        }
        let user = match &p {
            Principal::User { user, .. } => Some(user.username.clone()),
            Principal::Anonymous => None,
            _ => Some("x-token-auth".to_owned()),
        };
        (repo.path.clone(), user)
    };
    git::backend(ctx, &path, req, &gp.rest, user.as_deref()).await
}
