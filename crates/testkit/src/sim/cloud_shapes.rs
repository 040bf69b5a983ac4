//! Bitbucket Cloud response shapes (users, repositories, branches, permissions, webhooks),
//! `{pagelen, size, page, next, previous, values}` pages with absolute `next` links, and the
//! BBQL subset (`field op "value"` joined by `AND`) that `q=` accepts.

use super::cloud::{access, error, policy, with_fields, Principal, CREATED};
use super::git::{self, BranchRef};
use super::{query_get, Ctx, Host, Perm, Repo, User, World};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value};
use std::net::IpAddr;

fn link(href: String) -> Value {
    json!({"href": href})
}

fn enc_uuid(uuid: &str) -> String {
    uuid.replace('{', "%7B").replace('}', "%7D")
}

pub(super) fn user_json(origin: &str, u: &User) -> Value {
    json!({
        "type": "user",
        "display_name": u.display_name,
        "uuid": u.uuid,
        "account_id": u.account_id,
        "nickname": u.username,
        "username": u.username,
        "account_status": "active",
        "has_2fa_enabled": u.two_step,
        "is_staff": false,
        "created_on": CREATED,
        "location": null,
        "links": {
            "self": link(format!("{origin}/2.0/users/{}", enc_uuid(&u.uuid))),
            "html": link(format!("{origin}/{}/", enc_uuid(&u.uuid))),
            "avatar": link(format!("{origin}/account/{}/avatar", u.username)),
            "repositories": link(format!("{origin}/2.0/repositories/{}", enc_uuid(&u.uuid))),
        },
    })
}

fn repo_links(origin: &str, r: &Repo) -> Value {
    let (api, html) =
        (format!("{origin}/2.0/repositories/{}/{}", r.owner, r.slug), format!("{origin}/{}/{}", r.owner, r.slug));
    json!({"self": link(api), "html": link(html.clone()), "avatar": link(format!("{html}/avatar/32"))})
}

pub(super) fn repo_json(origin: &str, w: &World, r: &Repo, mainbranch: Option<&str>) -> Value {
    let ws = w.workspace(&r.owner);
    let (ws_name, ws_uuid) =
        ws.map(|ws| (ws.name.clone(), ws.uuid.clone())).unwrap_or_else(|| (r.owner.clone(), String::new()));
    let project_name = ws
        .and_then(|ws| ws.projects.iter().find(|(k, _)| *k == r.project))
        .map(|(_, n)| n.clone())
        .unwrap_or_else(|| r.project.clone());
    let api = format!("{origin}/2.0/repositories/{}/{}", r.owner, r.slug);
    let html = format!("{origin}/{}/{}", r.owner, r.slug);
    let host = origin.trim_start_matches("http://").split(':').next().unwrap_or("127.0.0.1");
    let ws_links = json!({
        "self": link(format!("{origin}/2.0/workspaces/{}", r.owner)),
        "html": link(format!("{origin}/{}/", r.owner)),
        "avatar": link(format!("{origin}/workspaces/{}/avatar", r.owner)),
    });
    json!({
        "type": "repository",
        "uuid": r.uuid,
        "full_name": r.full_name(),
        "name": r.name,
        "slug": r.slug,
        "description": "",
        "scm": "git",
        "website": null,
        "is_private": r.private,
        "fork_policy": if r.private { "no_public_forks" } else { "allow_forks" },
        "language": "",
        "size": 1024,
        "has_issues": false,
        "has_wiki": false,
        "created_on": CREATED,
        "updated_on": CREATED,
        "mainbranch": mainbranch.map(|b| json!({"type": "branch", "name": b})),
        "owner": {"type": "team", "display_name": ws_name, "uuid": ws_uuid, "username": r.owner, "links": ws_links.clone()},
        "workspace": {"type": "workspace", "slug": r.owner, "name": ws_name, "uuid": ws_uuid, "links": ws_links},
        "project": {
            "type": "project",
            "key": r.project,
            "name": project_name,
            "uuid": super::builder::stable_uuid(&format!("project:{}/{}", r.owner, r.project)),
            "links": {
                "html": link(format!("{origin}/{}/workspace/projects/{}", r.owner, r.project)),
                "avatar": link(format!("{origin}/{}/workspace/projects/{}/avatar/32", r.owner, r.project)),
            },
        },
        "links": {
            "self": link(api.clone()),
            "html": link(html.clone()),
            "avatar": link(format!("{html}/avatar/32")),
            "pullrequests": link(format!("{api}/pullrequests")),
            "commits": link(format!("{api}/commits")),
            "forks": link(format!("{api}/forks")),
            "watchers": link(format!("{api}/watchers")),
            "downloads": link(format!("{api}/downloads")),
            "hooks": link(format!("{api}/hooks")),
            "clone": [
                {"name": "https", "href": format!("{origin}/{}/{}.git", r.owner, r.slug)},
                {"name": "ssh", "href": format!("git@{host}:{}/{}.git", r.owner, r.slug)},
            ],
        },
    })
}

fn branch_json(origin: &str, r: &Repo, b: &BranchRef) -> Value {
    let api = format!("{origin}/2.0/repositories/{}/{}", r.owner, r.slug);
    let html = format!("{origin}/{}/{}", r.owner, r.slug);
    json!({
        "type": "branch",
        "name": b.name,
        "target": {
            "type": "commit",
            "hash": b.oid,
            "date": b.date,
            "message": format!("{}\n", b.subject),
            "author": {"type": "author", "raw": b.author},
            "parents": b.parents.iter().map(|p| json!({"type": "commit", "hash": p, "links": {"self": link(format!("{api}/commit/{p}"))}})).collect::<Vec<_>>(),
            "repository": {"type": "repository", "name": r.name, "full_name": r.full_name(), "uuid": r.uuid, "links": repo_links(origin, r)},
            "links": {"self": link(format!("{api}/commit/{}", b.oid)), "html": link(format!("{html}/commits/{}", b.oid))},
        },
        "links": {
            "self": link(format!("{api}/refs/branches/{}", b.name)),
            "commits": link(format!("{api}/commits/{}", b.name)),
            "html": link(format!("{html}/branch/{}", b.name)),
        },
        "merge_strategies": ["merge_commit", "squash", "fast_forward"],
        "default_merge_strategy": "merge_commit",
    })
}

/// A BBQL filter: `field op "value"` clauses joined by `AND`; ops `=`, `!=`, `~`, `!~`.
fn parse_q(q: &str) -> Result<Vec<(String, String, String)>, String> {
    let mut out = Vec::new();
    for clause in q.split(" AND ").flat_map(|c| c.split(" and ")) {
        let clause = clause.trim();
        let (pos, op) = ["!=", "!~", "=", "~"]
            .iter()
            .filter_map(|op| clause.find(op).map(|i| (i, *op)))
            .min_by_key(|(i, op)| (*i, std::cmp::Reverse(op.len())))
            .ok_or_else(|| format!("Invalid query: {clause}"))?;
        let field = clause[..pos].trim();
        let value = clause[pos + op.len()..].trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .ok_or_else(|| format!("Invalid query: expected a quoted string after {field} {op}"))?;
        out.push((field.to_owned(), op.to_owned(), value.replace("\\\"", "\"")));
    }
    Ok(out)
}

fn q_matches(op: &str, actual: &str, want: &str) -> bool {
    match op {
        "=" => actual == want,
        "!=" => actual != want,
        "~" => actual.to_lowercase().contains(&want.to_lowercase()),
        _ => !actual.to_lowercase().contains(&want.to_lowercase()),
    }
}

/// One page: `(pagelen, page, size, items, next, previous)` as a JSON object.
fn page(base: &str, q: &[(String, String)], items: Vec<Value>, pagelen: usize, page: usize) -> Value {
    let size = items.len();
    let values: Vec<Value> = items.into_iter().skip((page - 1) * pagelen).take(pagelen).collect();
    let url_for = |p: usize| {
        let mut ser = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in q.iter().filter(|(k, _)| k != "page") {
            ser.append_pair(k, v);
        }
        ser.append_pair("page", &p.to_string());
        format!("{base}?{}", ser.finish())
    };
    let mut out = json!({"pagelen": pagelen, "size": size, "page": page, "values": values});
    if page * pagelen < size {
        out["next"] = json!(url_for(page + 1));
    }
    if page > 1 {
        out["previous"] = json!(url_for(page - 1));
    }
    out
}

fn paging(q: &[(String, String)], min: usize) -> (usize, usize) {
    let pagelen = query_get(q, "pagelen").and_then(|v| v.parse().ok()).unwrap_or(10usize).clamp(min, 100);
    let page = query_get(q, "page").and_then(|v| v.parse().ok()).unwrap_or(1usize).max(1);
    (pagelen, page)
}

pub(super) async fn branches(ctx: &Ctx, repo: &Repo, q: &[(String, String)]) -> Response {
    let mut list = git::branches(&repo.path).await;
    if let Some(query) = query_get(q, "q") {
        let clauses = match parse_q(query) {
            Ok(c) => c,
            Err(e) => return error(StatusCode::BAD_REQUEST, &e),
        };
        for (field, op, value) in &clauses {
            if field != "name" {
                return error(StatusCode::BAD_REQUEST, &format!("Invalid field name: {field}"));
            }
            list.retain(|b| q_matches(op, &b.name, value));
        }
    }
    if query_get(q, "sort") == Some("-name") {
        list.reverse();
    }
    let (pagelen, pageno) = paging(q, 10);
    let origin = &ctx.cloud_origin;
    let items = list.iter().map(|b| branch_json(origin, repo, b)).collect();
    let base = format!("{origin}/2.0/repositories/{}/{}/refs/branches", repo.owner, repo.slug);
    with_fields(page(&base, q, items, pagelen, pageno), q)
}

pub(super) fn permissions(ctx: &Ctx, ip: IpAddr, ws: &str, p: &Principal, q: &[(String, String)]) -> Response {
    let Principal::User { user, .. } = p else { return error(StatusCode::UNAUTHORIZED, "Authentication required.") };
    let w = ctx.world();
    if let Some(msg) = policy(&w, ws, p, ip) {
        return error(StatusCode::FORBIDDEN, msg);
    }
    let Some(workspace) = w.workspace(ws) else {
        return error(StatusCode::NOT_FOUND, &format!("No workspace with identifier '{ws}'."));
    };
    let clauses = match query_get(q, "q").map(parse_q).transpose() {
        Ok(c) => c.unwrap_or_default(),
        Err(e) => return error(StatusCode::BAD_REQUEST, &e),
    };
    let origin = &ctx.cloud_origin;
    let mut items = Vec::new();
    let mut repos: Vec<&Repo> = w.repos.iter().filter(|r| r.host == Host::Cloud && r.owner == workspace.slug).collect();
    repos.sort_by_key(|r| r.full_name());
    for r in repos {
        let Some(perm) = w.perm(&user.username, r) else { continue };
        let mut keep = true;
        for (field, op, value) in &clauses {
            let actual = match field.as_str() {
                "repository.name" => r.name.clone(),
                "repository.full_name" => r.full_name(),
                "repository.uuid" => r.uuid.clone(),
                "permission" => perm.as_cloud_str().to_owned(),
                other => return error(StatusCode::BAD_REQUEST, &format!("Invalid field name: {other}")),
            };
            keep &= q_matches(op, &actual, value);
        }
        if keep {
            items.push(json!({
                "type": "repository_permission",
                "permission": perm.as_cloud_str(),
                "user": {"type": "user", "display_name": user.display_name, "uuid": user.uuid, "account_id": user.account_id, "nickname": user.username},
                "repository": {"type": "repository", "name": r.name, "full_name": r.full_name(), "uuid": r.uuid, "links": repo_links(origin, r)},
            }));
        }
    }
    let (pagelen, pageno) = paging(q, 1);
    let base = format!("{origin}/2.0/user/workspaces/{}/permissions/repositories", workspace.slug);
    with_fields(page(&base, q, items, pagelen, pageno), q)
}

/// `GET /2.0/repositories`: every public repository, or with `role=member` (or `contributor`,
/// `admin`) the ones the caller holds that role on, sorted by full name and paged.
pub(super) fn repositories(ctx: &Ctx, p: &Principal, q: &[(String, String)]) -> Response {
    let w = ctx.world();
    let role = query_get(q, "role");
    let least = match role {
        None => None,
        Some("member") => Some(Perm::Read),
        Some("contributor") => Some(Perm::Write),
        Some("admin") => Some(Perm::Admin),
        Some(other) => return error(StatusCode::BAD_REQUEST, &format!("Invalid role: {other}")),
    };
    let origin = &ctx.cloud_origin;
    let mut repos: Vec<&Repo> = w
        .repos
        .iter()
        .filter(|r| r.host == Host::Cloud)
        .filter(|r| match least {
            None => !r.private,
            Some(least) => access(&w, p, r).is_some_and(|perm| perm >= least),
        })
        .collect();
    repos.sort_by_key(|r| r.full_name());
    let items: Vec<Value> = repos.into_iter().map(|r| repo_json(origin, &w, r, None)).collect();
    let (pagelen, pageno) = paging(q, 1);
    with_fields(page(&format!("{origin}/2.0/repositories"), q, items, pagelen, pageno), q)
}

/// `GET /2.0/repositories/{workspace}`: the workspace's repositories the caller can read
/// (private ones through a grant or an access token that covers them, public ones for anyone),
/// sorted by full name, `pagelen` 10 by default and at most 100, `role=` narrowing as on
/// `/repositories`. An unknown workspace is 404; a workspace policy refuses with 403.
pub(super) fn workspace_repositories(
    ctx: &Ctx,
    ip: IpAddr,
    ws: &str,
    p: &Principal,
    q: &[(String, String)],
) -> Response {
    let w = ctx.world();
    let Some(workspace) = w.workspace(ws) else {
        return error(StatusCode::NOT_FOUND, &format!("No workspace with identifier '{ws}'."));
    };
    if let Some(msg) = policy(&w, ws, p, ip) {
        return error(StatusCode::FORBIDDEN, msg);
    }
    let least = match query_get(q, "role") {
        None | Some("member") => Perm::Read,
        Some("contributor") => Perm::Write,
        Some("admin" | "owner") => Perm::Admin,
        Some(other) => return error(StatusCode::BAD_REQUEST, &format!("Invalid role: {other}")),
    };
    let origin = &ctx.cloud_origin;
    let mut repos: Vec<&Repo> = w
        .repos
        .iter()
        .filter(|r| r.host == Host::Cloud && r.owner == workspace.slug)
        .filter(|r| access(&w, p, r).is_some_and(|perm| perm >= least))
        .collect();
    repos.sort_by_key(|r| r.full_name());
    let items: Vec<Value> =
        repos.into_iter().map(|r| repo_json(origin, &w, r, git::existing_head(&r.path).as_deref())).collect();
    let (pagelen, pageno) = paging(q, 10);
    let pagelen = pagelen.min(w.list_page_cap.max(1));
    with_fields(page(&format!("{origin}/2.0/repositories/{}", workspace.slug), q, items, pagelen, pageno), q)
}

pub(super) fn hooks(origin: &str, r: &Repo, q: &[(String, String)]) -> Response {
    let items = r
        .hooks
        .iter()
        .map(|h| {
            json!({
                "type": "webhook_subscription",
                "uuid": h.uuid,
                "url": h.url,
                "description": h.description,
                "subject_type": "repository",
                "subject": {"type": "repository", "name": r.name, "full_name": r.full_name(), "uuid": r.uuid, "links": repo_links(origin, r)},
                "active": h.active,
                "created_at": "2024-01-01T00:00:00.000000Z",
                "events": h.events,
                "secret_set": h.secret.is_some(),
            })
        })
        .collect();
    let (pagelen, pageno) = paging(q, 1);
    let base = format!("{origin}/2.0/repositories/{}/{}/hooks", r.owner, r.slug);
    with_fields(page(&base, q, items, pagelen, pageno), q)
}

#[cfg(test)]
mod tests {
    use super::parse_q;

    #[test]
    fn bbql() {
        assert_eq!(
            parse_q(r#"repository.name="app""#).ok(),
            Some(vec![("repository.name".into(), "=".into(), "app".into())])
        );
        assert_eq!(parse_q(r#"name ~ "feat" AND name != "x""#).map(|v| v.len()).ok(), Some(2));
        assert!(parse_q("name=app").is_err());
    }
}
