//! Git over HTTP on Bitbucket Cloud: `/{workspace}/{slug}.git/…`.
//!
//! Basic with the Bitbucket username or `x-bitbucket-api-token-auth` and an API token,
//! `x-token-auth` (or Bearer) with an access token; the email as user name gets 401; app
//! passwords get 401 or 410. Policies and missing scopes answer 403 with plain-text lines,
//! which git prints as `remote: …`.

use super::auth;
use super::cloud::{
    access, authenticate, oauth_implies, policy, Principal, LOGIN_FAILED, RATE_LIMITED, REALM, REPO_NOT_VISIBLE,
    SCOPES_LACKING,
};
use super::git::{self, Service};
use super::{Ctx, Host, Perm, RateDecision};
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::Response;
use std::net::IpAddr;

pub(super) async fn request(ctx: &Ctx, ip: IpAddr, req: Request) -> Response {
    let Some(gp) = git::split(req.uri().path(), req.uri().query().unwrap_or("")) else {
        return auth::text(StatusCode::NOT_FOUND, "Not Found");
    };
    let key = auth::rate_key(req.headers(), ip);
    let pres = auth::presented(req.headers());
    let (authn, limit) = {
        let w = ctx.world();
        (authenticate(&w, &pres, ctx.clock.now(), true), w.cloud.git_limit)
    };
    if let RateDecision::Exceeded { retry_after_secs } = ctx.rate_check("cloud-git", &key, &limit) {
        let mut resp = auth::text(StatusCode::TOO_MANY_REQUESTS, RATE_LIMITED);
        if limit.retry_after {
            auth::set_header(&mut resp, "retry-after", &retry_after_secs.to_string());
        }
        return resp;
    }
    let p = match authn {
        Ok(p) => p,
        Err(rej) if rej.git_status == 410 => {
            return auth::text(StatusCode::GONE, "App passwords are no longer supported. Use an API token instead.");
        }
        Err(_) => return auth::challenge(REALM, LOGIN_FAILED),
    };
    let (path, user) = {
        let w = ctx.world();
        let repo = w.repo(Host::Cloud, &gp.owner, &gp.repo);
        if let Principal::Anonymous = p {
            match repo {
                Some(r) if !r.private && gp.service == Service::Read => (r.path.clone(), None),
                _ => return auth::challenge(REALM, "Authentication required"),
            }
        } else {
            if let Some(msg) = policy(&w, &gp.owner, &p, ip) {
                return auth::text(StatusCode::FORBIDDEN, msg);
            }
            let (api_scope, oauth_scope) = match gp.service {
                Service::Read => ("read:repository:bitbucket", "repository"),
                Service::Write => ("write:repository:bitbucket", "repository:write"),
            };
            let scoped = match &p {
                Principal::User { scopes, .. } => scopes.iter().any(|s| s == api_scope),
                Principal::Access { scopes, .. } => scopes.iter().any(|s| oauth_implies(s, oauth_scope)),
                Principal::Anonymous => true,
            };
            if !scoped {
                return auth::text(StatusCode::FORBIDDEN, SCOPES_LACKING);
            }
            let not_visible = || {
                auth::text(
                    StatusCode::FORBIDDEN,
                    &format!("{REPO_NOT_VISIBLE} If you believe this repository exists and you have access, make sure you're authenticated."),
                )
            };
            let Some(repo) = repo else { return not_visible() };
            let Some(perm) = access(&w, &p, repo) else { return not_visible() };
            if gp.service == Service::Write && perm < Perm::Write {
                return auth::text(StatusCode::FORBIDDEN, "You do not have write access to this repository.");
            }
            let user = match &p {
                Principal::User { user, .. } => user.username.clone(),
                _ => "x-token-auth".to_owned(),
            };
            (repo.path.clone(), Some(user))
        }
    };
    git::backend(ctx, &path, req, &gp.rest, user.as_deref()).await
}
