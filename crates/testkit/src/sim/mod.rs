//! A simulator of Bitbucket Cloud, Bitbucket Data Center and GitHub: each host is its own axum
//! server on 127.0.0.1 serving its REST API and Git over HTTP (the real `git http-backend`,
//! with the host's own authentication in front), behaving as `shared/reference/forge-facts.md`
//! describes.
//!
//! ```no_run
//! # async fn f() {
//! use berth_testkit::sim::{Cred, Host, Perm, RepoSpec, Sim, SimClock, User};
//! let sim = Sim::builder()
//!     .clock(SimClock::at("2026-08-01"))
//!     .user(User::new("jo", "jo@example.com", "Jo Example"))
//!     .cloud_repo("acme/app", RepoSpec::new(&["main", "feature/x"]))
//!     .grant(Host::Cloud, "jo", "acme/app", Perm::Write)
//!     .credential(Cred::api_token("jo", "ATATT-secret", &["read:repository:bitbucket"]))
//!     .start()
//!     .await;
//! let api = sim.cloud_api_url(); // http://127.0.0.1:PORT/2.0
//! # }
//! ```
//!
//! | host | REST | Git |
//! | --- | --- | --- |
//! | Bitbucket Cloud | `/2.0/…` | `/{workspace}/{slug}.git/…` |
//! | Bitbucket Data Center | `{ctx}/rest/api/latest/…` and `{ctx}/rest/api/1.0/…` | `{ctx}/scm/{project}/{slug}.git/…` |
//! | GitHub (Enterprise style) | `/api/v3/…` | `/{owner}/{repo}.git/…` |
//!
//! `{ctx}` is the Data Center context path, `/bitbucket` unless set otherwise.

mod auth;
mod builder;
mod clock;
mod cloud;
mod cloud_git;
mod cloud_shapes;
mod datacenter;
pub mod demo;
mod fields;
mod git;
mod github;
mod github_apps;
mod hooks;
mod model;

pub use github_apps::{make_app_private_key, GitHubApp, Installation, InstallationToken};

pub use clock::{parse_time, SimClock};
pub use hooks::SentDelivery;

/// Bitbucket Cloud's messages, as the simulator sends them.
pub mod cloud_messages {
    pub use super::cloud::{
        IP_NOT_ALLOWED, LOGIN_FAILED, NO_USER_FOR_TOKEN, RATE_LIMITED, REPO_NOT_VISIBLE, SCOPES_LACKING, TOKEN_INVALID,
        TWO_STEP_REQUIRED,
    };
}

/// Bitbucket Data Center's messages, as the simulator sends them.
pub mod datacenter_messages {
    pub use super::datacenter::{AUTH_FAILED, NOT_PERMITTED};
}
pub use builder::SimBuilder;
pub use cloud::CloudEndpoint;
pub use model::*;

use axum::extract::{ConnectInfo, Request, State};
use axum::response::Response;
use axum::Router;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::watch;

/// One request a simulated host received. Never holds a secret: only the scheme, whether
/// credentials came, the Basic user name and a SHA-256 of the `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimRequest {
    pub host: Host,
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// `Basic`, `Bearer`, `token`, … as sent; `None` without an `Authorization` header.
    pub auth_scheme: Option<String>,
    /// Whether an `Authorization` header was present.
    pub credentials: bool,
    /// The user name of a Basic header (an email, a Bitbucket username, `x-token-auth`, …).
    pub basic_username: Option<String>,
    /// SHA-256 (hex) of the `Authorization` header value.
    pub authorization_sha256: Option<String>,
    pub git_protocol: Option<String>,
    /// The status the simulator answered with.
    pub status: u16,
}

/// Ports to listen on; 0 picks any free port.
#[derive(Debug, Clone, Copy, Default)]
pub struct SimPorts {
    pub cloud: u16,
    pub dc: u16,
    pub github: u16,
}

/// (budget name, credential key) → (window start, requests in the window).
type RateWindows = HashMap<(String, String), (DateTime<Utc>, u32)>;

/// State shared by the three servers.
pub(crate) struct Ctx {
    world: Mutex<World>,
    pub(crate) clock: SimClock,
    pub(crate) backend: (PathBuf, Vec<String>),
    requests: Mutex<Vec<SimRequest>>,
    rate: Mutex<RateWindows>,
    /// Origins, `http://127.0.0.1:PORT`.
    pub(crate) cloud_origin: String,
    pub(crate) dc_origin: String,
    pub(crate) github_origin: String,
}

/// What a rate-limit check decided.
pub(crate) enum RateDecision {
    Allowed { remaining: u32 },
    Exceeded { retry_after_secs: i64 },
}

impl Ctx {
    pub(crate) fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts one request against `budget` for `key` and says whether it may go on.
    pub(crate) fn rate_check(&self, budget: &str, key: &str, limit: &RateLimit) -> RateDecision {
        let now = self.clock.now();
        let window = chrono::Duration::seconds(limit.window_secs.max(1));
        let mut rate = self.rate.lock().unwrap_or_else(|p| p.into_inner());
        let entry = rate.entry((budget.to_owned(), key.to_owned())).or_insert((now, 0));
        if now >= entry.0 + window || now < entry.0 {
            *entry = (now, 0);
        }
        if entry.1 >= limit.budget {
            // Rounded up: a client that waits this long finds the window over.
            let left = ((entry.0 + window - now).num_milliseconds() + 999).div_euclid(1000).max(1);
            return RateDecision::Exceeded { retry_after_secs: left };
        }
        entry.1 += 1;
        RateDecision::Allowed { remaining: limit.budget - entry.1 }
    }
}

struct HostServer {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

/// A running simulator: three servers on 127.0.0.1. Dropping it (or [`Sim::shutdown`]) stops them.
pub struct Sim {
    ctx: Arc<Ctx>,
    cloud: HostServer,
    dc: HostServer,
    github: HostServer,
    stop: watch::Sender<bool>,
    _root: Option<tempfile::TempDir>,
    root: PathBuf,
}

impl Sim {
    pub fn builder() -> SimBuilder {
        SimBuilder::new()
    }

    pub(crate) async fn start(b: SimBuilder, ports: SimPorts) -> Sim {
        let backend = crate::server::find_backend(None).await;
        let bind = |port: u16| async move {
            tokio::net::TcpListener::bind(("127.0.0.1", port))
                .await
                .unwrap_or_else(|e| panic!("bind 127.0.0.1:{port}: {e}"))
        };
        let (lc, ld, lg) = (bind(ports.cloud).await, bind(ports.dc).await, bind(ports.github).await);
        let origin = |l: &tokio::net::TcpListener| format!("http://{}", l.local_addr().expect("local address"));
        let ctx = Arc::new(Ctx {
            world: Mutex::new(b.world),
            clock: b.clock,
            backend,
            requests: Mutex::new(Vec::new()),
            rate: Mutex::new(HashMap::new()),
            cloud_origin: origin(&lc),
            dc_origin: origin(&ld),
            github_origin: origin(&lg),
        });
        let (stop, stopped) = watch::channel(false);
        let cloud = spawn(lc, ctx.clone(), Host::Cloud, stopped.clone());
        let dc = spawn(ld, ctx.clone(), Host::DataCenter, stopped.clone());
        let github = spawn(lg, ctx.clone(), Host::GitHub, stopped);
        let root = b.root.path().to_path_buf();
        Sim { ctx, cloud, dc, github, stop, _root: Some(b.root), root }
    }

    /// Bitbucket Cloud origin, `http://127.0.0.1:PORT` (Git lives here).
    pub fn cloud_url(&self) -> String {
        self.ctx.cloud_origin.clone()
    }

    /// Bitbucket Cloud REST base, `http://127.0.0.1:PORT/2.0` (Berth's `api_url`).
    pub fn cloud_api_url(&self) -> String {
        format!("{}/2.0", self.ctx.cloud_origin)
    }

    /// `http://127.0.0.1:PORT/{workspace}/{slug}.git` for `full_name` = `workspace/slug`.
    pub fn cloud_git_url(&self, full_name: &str) -> String {
        format!("{}/{}.git", self.ctx.cloud_origin, full_name)
    }

    /// Data Center base URL with its context path, `http://127.0.0.1:PORT/bitbucket`.
    pub fn dc_url(&self) -> String {
        format!("{}{}", self.ctx.dc_origin, self.ctx.world().dc_context_path)
    }

    /// Data Center REST root, `http://127.0.0.1:PORT/bitbucket/rest` (Berth's `api_url`).
    pub fn dc_api_url(&self) -> String {
        format!("{}/rest", self.dc_url())
    }

    /// `http://127.0.0.1:PORT/bitbucket/scm/{project}/{slug}.git` for `PROJECT/slug`
    /// (the project key lower-cased, as Data Center shows it).
    pub fn dc_git_url(&self, full_name: &str) -> String {
        let (key, slug) = full_name.split_once('/').unwrap_or((full_name, ""));
        format!("{}/scm/{}/{}.git", self.dc_url(), key.to_ascii_lowercase(), slug)
    }

    /// GitHub origin, `http://127.0.0.1:PORT`.
    pub fn github_url(&self) -> String {
        self.ctx.github_origin.clone()
    }

    /// GitHub REST base, `http://127.0.0.1:PORT/api/v3` (Berth's `api_url`).
    pub fn github_api_url(&self) -> String {
        format!("{}/api/v3", self.ctx.github_origin)
    }

    /// `http://127.0.0.1:PORT/{owner}/{repo}.git`.
    pub fn github_git_url(&self, full_name: &str) -> String {
        format!("{}/{}.git", self.ctx.github_origin, full_name)
    }

    pub fn cloud_port(&self) -> u16 {
        self.cloud.addr.port()
    }

    pub fn dc_port(&self) -> u16 {
        self.dc.addr.port()
    }

    pub fn github_port(&self) -> u16 {
        self.github.addr.port()
    }

    pub fn clock(&self) -> &SimClock {
        &self.ctx.clock
    }

    /// Where the bare repositories live.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The bare repository behind `full_name` on `host`, to change it with `git`.
    pub fn repo_path(&self, host: Host, full_name: &str) -> Option<PathBuf> {
        let (owner, slug) = full_name.split_once('/')?;
        self.ctx.world().repo(host, owner, slug).map(|r| r.path.clone())
    }

    /// Changes the model while the simulator runs (revoke a token, turn a policy on, …).
    pub fn update<T>(&self, f: impl FnOnce(&mut World) -> T) -> T {
        f(&mut self.ctx.world())
    }

    /// Every request `host` received so far, in order.
    pub fn requests(&self, host: Host) -> Vec<SimRequest> {
        let all = self.ctx.requests.lock().map(|r| r.clone()).unwrap_or_default();
        all.into_iter().filter(|r| r.host == host).collect()
    }

    pub fn clear_requests(&self) {
        if let Ok(mut r) = self.ctx.requests.lock() {
            r.clear();
        }
    }

    /// Forgets every rate-limit window.
    pub fn reset_rate_limits(&self) {
        if let Ok(mut r) = self.ctx.rate.lock() {
            r.clear();
        }
    }

    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for s in [&self.cloud, &self.dc, &self.github] {
            s.task.abort();
        }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

fn spawn(
    listener: tokio::net::TcpListener,
    ctx: Arc<Ctx>,
    host: Host,
    mut stopped: watch::Receiver<bool>,
) -> HostServer {
    let addr = listener.local_addr().expect("local address");
    let app = Router::new().fallback(serve).with_state((ctx, host));
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(async move {
                let _ = stopped.wait_for(|s| *s).await;
            })
            .await;
    });
    HostServer { addr, task }
}

async fn serve(
    State((ctx, host)): State<(Arc<Ctx>, Host)>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let mut rec = record(host, &req);
    let dc_context = ctx.world().dc_context_path.clone();
    if let Some(route) = hooks::route(host, req.method(), req.uri().path(), &dc_context) {
        let (parts, body) = req.into_parts();
        let body = axum::body::to_bytes(body, 1024 * 1024).await.unwrap_or_default();
        let resp = hooks::handle(&ctx, host, route, &parts.headers, &body);
        rec.status = resp.status().as_u16();
        if let Ok(mut r) = ctx.requests.lock() {
            r.push(rec);
        }
        return resp;
    }
    let resp = match host {
        Host::Cloud => cloud::handle(&ctx, peer.ip(), req).await,
        Host::DataCenter => datacenter::handle(&ctx, peer.ip(), req).await,
        Host::GitHub => github::handle(&ctx, peer.ip(), req).await,
    };
    rec.status = resp.status().as_u16();
    if let Ok(mut r) = ctx.requests.lock() {
        r.push(rec);
    }
    resp
}

fn record(host: Host, req: &Request) -> SimRequest {
    let headers = req.headers();
    let auth = headers.get(axum::http::header::AUTHORIZATION);
    let presented = auth::presented(headers);
    SimRequest {
        host,
        method: req.method().to_string(),
        path: req.uri().path().to_owned(),
        query: req.uri().query().map(str::to_owned),
        auth_scheme: auth.and_then(|v| v.to_str().ok()).and_then(|v| v.split_whitespace().next()).map(str::to_owned),
        credentials: auth.is_some(),
        basic_username: match presented {
            auth::Presented::Basic { user, .. } => Some(user),
            _ => None,
        },
        authorization_sha256: auth.map(|v| crate::sha256_hex(v.as_bytes())),
        git_protocol: headers.get("git-protocol").and_then(|v| v.to_str().ok()).map(str::to_owned),
        status: 0,
    }
}

/// Decodes `%XX` escapes (and leaves anything malformed as it is).
pub(crate) fn pct_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The query string as (name, value) pairs, decoded.
pub(crate) fn query_pairs(req: &Request) -> Vec<(String, String)> {
    url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes()).into_owned().collect()
}

pub(crate) fn query_get<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Whether `ip` passes a workspace's IP allowlist (`None`: no allowlist).
pub(crate) fn ip_allowed(allowlist: &Option<Vec<IpAddr>>, ip: IpAddr) -> bool {
    allowlist.as_ref().is_none_or(|l| l.contains(&ip))
}
