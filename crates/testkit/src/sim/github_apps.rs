//! GitHub Apps on the simulated GitHub, as GitHub documents them (forge-facts-next.md §4):
//!
//! * an app authenticates with an RS256 JWT (`iss` = app id, `iat` in the past, `exp` at most
//!   10 minutes ahead of GitHub's clock, here the simulator's), verified with the app's public
//!   key; a JWT refused for its time says which claim, as GitHub does;
//! * `GET /app`, `GET /app/installations`, `GET /repos/{o}/{r}/installation` (404 when the app is
//!   not installed on the owner *or* the repository is not selected), and
//!   `POST /app/installations/{id}/access_tokens` (201 `{token, expires_at, permissions,
//!   repository_selection}`, tokens valid one hour, formatted `ghs_<app id>_…` so no client may
//!   assume 40 characters);
//! * an installation token reads the installation's repositories through REST (Bearer or
//!   `token`) and Git (Basic `x-access-token`), and nothing else.

use super::auth::{self, Presented};
use super::{Ctx, Host, World};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

const APPS_DOCS: &str = "https://docs.github.com/rest/apps/apps";

/// A GitHub App: GitHub keeps only its public key.
#[derive(Debug, Clone)]
pub struct GitHubApp {
    pub id: i64,
    pub slug: String,
    pub name: String,
    /// The account that owns the app.
    pub owner: String,
    /// DER `RSAPublicKey`.
    pub public_key_der: Vec<u8>,
}

impl GitHubApp {
    /// An app whose key pair's private half is `private_key_pem` (the test keeps it; the
    /// simulator keeps the public half only).
    pub fn new(id: i64, slug: &str, name: &str, owner: &str, private_key_pem: &str) -> GitHubApp {
        let key = berth_forge_key(private_key_pem);
        GitHubApp { id, slug: slug.to_owned(), name: name.to_owned(), owner: owner.to_owned(), public_key_der: key }
    }
}

/// The public half of a PEM private key, with ring (as GitHub derives it when a key is made).
fn berth_forge_key(pem: &str) -> Vec<u8> {
    use base64::Engine;
    use ring::signature::KeyPair;
    let body: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .flat_map(|l| l.chars().filter(|c| !c.is_whitespace()))
        .collect();
    let der = base64::engine::general_purpose::STANDARD.decode(body).expect("a PEM private key");
    let pair = if pem.contains("BEGIN RSA PRIVATE KEY") {
        ring::signature::RsaKeyPair::from_der(&der)
    } else {
        ring::signature::RsaKeyPair::from_pkcs8(&der)
    }
    .expect("an RSA private key");
    pair.public_key().as_ref().to_vec()
}

/// Makes an RSA private key (2048 bits, PKCS#1 PEM, as GitHub hands out) with the system's
/// `openssl`: a real key from a real tool, not one checked into the tests.
pub fn make_app_private_key() -> String {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("app.pem");
    let out = std::process::Command::new("openssl")
        .args(["genrsa", "-traditional", "-out"])
        .arg(&path)
        .arg("2048")
        .output()
        .expect("openssl (Debian package openssl) makes the app's key");
    assert!(out.status.success(), "openssl genrsa: {}", String::from_utf8_lossy(&out.stderr));
    std::fs::read_to_string(&path).expect("the key openssl wrote")
}

/// An installation of an app on an account.
#[derive(Debug, Clone)]
pub struct Installation {
    pub id: i64,
    pub app_id: i64,
    /// The user or organisation it is installed on.
    pub account: String,
    /// `None`: all the account's repositories; else these (`owner/repo`).
    pub repositories: Option<Vec<String>>,
    /// Granted permissions (`contents: read`, …).
    pub permissions: Vec<(String, String)>,
}

impl Installation {
    /// On every repository of `account`, with `contents: read` and `metadata: read`.
    pub fn all(id: i64, app_id: i64, account: &str) -> Installation {
        Installation {
            id,
            app_id,
            account: account.to_owned(),
            repositories: None,
            permissions: vec![("contents".into(), "read".into()), ("metadata".into(), "read".into())],
        }
    }

    /// On the listed repositories of `account` only.
    pub fn selected(id: i64, app_id: i64, account: &str, repositories: &[&str]) -> Installation {
        Installation {
            repositories: Some(repositories.iter().map(|r| (*r).to_owned()).collect()),
            ..Installation::all(id, app_id, account)
        }
    }

    pub fn permissions(mut self, permissions: &[(&str, &str)]) -> Installation {
        self.permissions = permissions.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        self
    }

    /// Whether the installation may use `owner/repo`.
    pub fn covers(&self, owner: &str, repo: &str) -> bool {
        self.account.eq_ignore_ascii_case(owner)
            && match &self.repositories {
                None => true,
                Some(list) => list.iter().any(|r| r.eq_ignore_ascii_case(&format!("{owner}/{repo}"))),
            }
    }

    pub(crate) fn selection(&self) -> &'static str {
        if self.repositories.is_some() {
            "selected"
        } else {
            "all"
        }
    }

    fn can_read_contents(&self) -> bool {
        self.permissions.iter().any(|(k, v)| k == "contents" && (v == "read" || v == "write"))
    }
}

/// A minted installation token.
#[derive(Debug, Clone)]
pub struct InstallationToken {
    pub token: String,
    pub installation_id: i64,
    pub expires_at: DateTime<Utc>,
}

fn message(status: StatusCode, text: &str) -> Response {
    auth::json(status, &json!({"message": text, "documentation_url": APPS_DOCS, "status": status.as_u16().to_string()}))
}

/// The app a JWT authenticates, or GitHub's 401 for it (the answer itself: a simulator's
/// handler returns it as is, so boxing it would only add a step).
#[allow(clippy::result_large_err)]
fn app_of_jwt(w: &World, jwt: &str, now: DateTime<Utc>) -> Result<GitHubApp, Response> {
    let undecodable = || message(StatusCode::UNAUTHORIZED, "A JSON web token could not be decoded");
    let claims = berth_jwt::claims(jwt).ok_or_else(undecodable)?;
    let iss = match &claims["iss"] {
        Value::String(s) => s.parse::<i64>().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
    .ok_or_else(undecodable)?;
    let app = w.github_apps.iter().find(|a| a.id == iss).ok_or_else(undecodable)?;
    let claims = berth_jwt::verified(jwt, &app.public_key_der).ok_or_else(undecodable)?;
    let now = now.timestamp();
    let iat = claims["iat"].as_i64();
    let exp = claims["exp"].as_i64();
    match (iat, exp) {
        (Some(iat), _) if iat > now => Err(message(
            StatusCode::UNAUTHORIZED,
            "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued",
        )),
        (_, Some(exp)) if exp > now + 600 => {
            Err(message(StatusCode::UNAUTHORIZED, "'Expiration time' claim ('exp') is too far in the future"))
        }
        (_, Some(exp)) if exp <= now => Err(message(
            StatusCode::UNAUTHORIZED,
            "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the \
             assertion expires",
        )),
        (Some(_), Some(_)) => Ok(app.clone()),
        _ => Err(undecodable()),
    }
}

/// JWT decoding and RS256 verification: the same small functions Berth uses would make the
/// simulator agree with Berth by construction, so the simulator has its own.
mod berth_jwt {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use serde_json::Value;

    pub(super) fn claims(jwt: &str) -> Option<Value> {
        let payload = jwt.split('.').nth(1)?;
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
    }

    pub(super) fn verified(jwt: &str, public_key_der: &[u8]) -> Option<Value> {
        let parts: Vec<&str> = jwt.split('.').collect();
        let [header, payload, sig] = parts.as_slice() else { return None };
        let head: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
        if head["alg"] != "RS256" {
            return None;
        }
        let sig = URL_SAFE_NO_PAD.decode(sig).ok()?;
        ring::signature::UnparsedPublicKey::new(&ring::signature::RSA_PKCS1_2048_8192_SHA256, public_key_der)
            .verify(format!("{header}.{payload}").as_bytes(), &sig)
            .ok()?;
        claims(jwt)
    }
}

/// Whether a request presents a JWT (three dot-separated parts): then it is the app's.
pub(crate) fn jwt_of(pres: &Presented) -> Option<&str> {
    match pres {
        Presented::Bearer(t) if t.split('.').count() == 3 => Some(t),
        _ => None,
    }
}

/// The installation a live installation token belongs to.
pub(crate) fn installation_of_token(w: &World, token: &str, now: DateTime<Utc>) -> Option<Installation> {
    let t = w.installation_tokens.iter().find(|t| t.token == token && now < t.expires_at)?;
    w.installations.iter().find(|i| i.id == t.installation_id).cloned()
}

/// Whether `secret` looks like an installation token (known or not): `ghs_`.
pub(crate) fn is_installation_token(secret: &str) -> bool {
    secret.starts_with("ghs_")
}

/// REST requests that carry the app's JWT.
pub(crate) fn app_request(ctx: &Ctx, method: &Method, segs: &[&str], jwt: &str) -> Response {
    let now = ctx.clock.now();
    let mut w = ctx.world();
    let app = match app_of_jwt(&w, jwt, now) {
        Ok(a) => a,
        Err(refused) => return refused,
    };
    let origin = ctx.github_origin.clone();
    match (*method == Method::GET, *method == Method::POST, segs) {
        (true, _, ["app"]) => auth::json(StatusCode::OK, &app_json(&origin, &app)),
        (true, _, ["app", "installations"]) => {
            let list: Vec<Value> = w
                .installations
                .iter()
                .filter(|i| i.app_id == app.id)
                .map(|i| installation_json(&origin, &w, &app, i))
                .collect();
            auth::json(StatusCode::OK, &Value::Array(list))
        }
        (true, _, ["repos", owner, repo, "installation"]) => {
            let exists = w.repo(Host::GitHub, owner, repo).is_some();
            match w.installations.iter().find(|i| i.app_id == app.id && i.covers(owner, repo)) {
                Some(i) if exists => auth::json(StatusCode::OK, &installation_json(&origin, &w, &app, i)),
                _ => message(StatusCode::NOT_FOUND, "Not Found"),
            }
        }
        (_, true, ["app", "installations", id, "access_tokens"]) => {
            let Some(inst) = id
                .parse::<i64>()
                .ok()
                .and_then(|id| w.installations.iter().find(|i| i.id == id && i.app_id == app.id).cloned())
            else {
                return message(StatusCode::NOT_FOUND, "Not Found");
            };
            let token = format!("ghs_{}_{}", app.id, random_suffix());
            let expires_at = now + chrono::Duration::hours(1);
            w.installation_tokens.push(InstallationToken {
                token: token.clone(),
                installation_id: inst.id,
                expires_at,
            });
            let permissions: serde_json::Map<String, Value> =
                inst.permissions.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
            auth::json(
                StatusCode::CREATED,
                &json!({
                    "token": token,
                    "expires_at": expires_at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                    "permissions": permissions,
                    "repository_selection": inst.selection(),
                }),
            )
        }
        // A JWT authenticates as the app only: anything else is refused as GitHub refuses it.
        _ => message(
            StatusCode::FORBIDDEN,
            "Resource not accessible by integration: a JSON web token authenticates as the app only",
        ),
    }
}

/// Whether an installation token may read `owner/repo` (through REST or Git).
pub(crate) fn may_read(inst: &Installation, owner: &str, repo: &str) -> bool {
    inst.covers(owner, repo) && inst.can_read_contents()
}

fn random_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let nanos = Utc::now().timestamp_subsec_nanos();
    crate::sha256_hex(format!("{n}-{nanos}-{}", std::process::id()).as_bytes())[..36].to_owned()
}

fn app_json(origin: &str, app: &GitHubApp) -> Value {
    json!({
        "id": app.id,
        "slug": app.slug,
        "node_id": format!("A_sim{}", app.id),
        "name": app.name,
        "owner": {"login": app.owner, "type": "Organization"},
        "html_url": format!("{origin}/apps/{}", app.slug),
        "created_at": "2024-01-01T00:00:00Z",
        "updated_at": "2024-01-01T00:00:00Z",
        "permissions": {"contents": "read", "metadata": "read"},
        "events": [],
    })
}

fn installation_json(origin: &str, w: &World, app: &GitHubApp, i: &Installation) -> Value {
    let user = w.user(&i.account);
    let permissions: serde_json::Map<String, Value> =
        i.permissions.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
    json!({
        "id": i.id,
        "account": {
            "login": i.account,
            "type": if user.is_some() { "User" } else { "Organization" },
        },
        "app_id": app.id,
        "app_slug": app.slug,
        "target_type": if user.is_some() { "User" } else { "Organization" },
        "repository_selection": i.selection(),
        "access_tokens_url": format!("{origin}/api/v3/app/installations/{}/access_tokens", i.id),
        "html_url": format!("{origin}/settings/installations/{}", i.id),
        "permissions": permissions,
        "events": [],
        "created_at": "2024-01-01T00:00:00Z",
        "updated_at": "2024-01-01T00:00:00Z",
    })
}
