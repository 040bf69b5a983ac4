//! [`GitServer`]: `git http-backend` behind axum, plus the fault routes listed in the crate docs.

use crate::RecordedRequest;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine;
use bytes::Bytes;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::watch;

const REALM: &str = "Berth test git";

#[derive(Debug, Clone)]
pub struct GitServerOptions {
    /// Basic auth users (name, password) for `/git/*`; empty means anonymous access.
    pub users: Vec<(String, String)>,
    /// `false` forces protocol v0: the client's `Git-Protocol` header is not passed to git.
    pub protocol_v2: bool,
    /// The `git` binary; `None` finds `git` on PATH. `git-http-backend` is taken from its
    /// `--exec-path`, falling back to `git http-backend`.
    pub git_binary: Option<PathBuf>,
    /// Text of the `/forbidden/*` answer; each line is sent as `remote: <line>`.
    pub forbidden_message: String,
}

impl Default for GitServerOptions {
    fn default() -> Self {
        GitServerOptions {
            users: Vec::new(),
            protocol_v2: true,
            git_binary: None,
            forbidden_message: "Your IP address is not allowed. An admin must whitelist your IP".to_owned(),
        }
    }
}

/// One canned HTTP answer for the `/canned/<name>/…` route (see [`GitServer::set_canned`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Canned {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Canned {
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Canned {
        Canned { status, headers: vec![("content-type".to_owned(), content_type.to_owned())], body: body.into() }
    }

    /// 200 with the discovery content type `application/x-git-upload-pack-advertisement`.
    pub fn advertisement(body: impl Into<Vec<u8>>) -> Canned {
        Canned::new(200, "application/x-git-upload-pack-advertisement", body)
    }

    /// 200 with the ls-refs answer's content type `application/x-git-upload-pack-result`.
    pub fn result(body: impl Into<Vec<u8>>) -> Canned {
        Canned::new(200, "application/x-git-upload-pack-result", body)
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Canned {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

/// The answers of one canned repository: discovery (`…/info/refs`) and, when set, the protocol
/// v2 command endpoint (`…/git-upload-pack`, else 404).
#[derive(Debug, Clone)]
struct CannedRepo {
    discovery: Canned,
    upload_pack: Option<Canned>,
}

/// One pkt-line: four hex digits of length (header included), then `data`.
pub fn pkt_line(data: &[u8]) -> Vec<u8> {
    let mut out = format!("{:04x}", data.len() + 4).into_bytes();
    out.extend_from_slice(data);
    out
}

/// How often `/slowloris/…` sends its next byte.
pub const SLOWLORIS_INTERVAL: Duration = Duration::from_millis(20);

struct Shared {
    root: PathBuf,
    opts: GitServerOptions,
    backend: (PathBuf, Vec<String>),
    requests: Mutex<Vec<RecordedRequest>>,
    redirect_target: Mutex<Option<String>>,
    canned: Mutex<HashMap<String, CannedRepo>>,
    slow_bytes: Arc<AtomicU64>,
    stopped: watch::Receiver<bool>,
}

/// A Git smart-HTTP server on 127.0.0.1 in the current tokio runtime. Dropping it (or
/// [`GitServer::shutdown`]) stops it, stalled and endless responses included.
pub struct GitServer {
    addr: std::net::SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl GitServer {
    pub async fn start(root: &Path, opts: GitServerOptions) -> GitServer {
        let backend = find_backend(opts.git_binary.as_deref()).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let (stop, stopped) = watch::channel(false);
        let shared = Arc::new(Shared {
            root: root.to_path_buf(),
            opts,
            backend,
            requests: Mutex::new(Vec::new()),
            redirect_target: Mutex::new(None),
            canned: Mutex::new(HashMap::new()),
            slow_bytes: Arc::new(AtomicU64::new(0)),
            stopped: stopped.clone(),
        });
        let app = Router::new().fallback(route).with_state(shared.clone());
        let mut on_stop = stopped;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = on_stop.wait_for(|s| *s).await;
                })
                .await;
        });
        GitServer { addr, shared, stop, task: Some(task) }
    }

    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `base_url() + "/git/" + rel`
    pub fn repo_url(&self, rel: &str) -> String {
        format!("{}/git/{}", self.base_url(), rel.trim_start_matches('/'))
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Where `/moved/*` points: another origin such as a [`crate::CaptureServer`]'s base URL.
    pub fn set_redirect_target(&self, base_url: &str) {
        if let Ok(mut t) = self.shared.redirect_target.lock() {
            *t = Some(base_url.trim_end_matches('/').to_owned());
        }
    }

    /// Serves `/canned/<name>/…/info/refs` with `discovery` and `/canned/<name>/…/git-upload-pack`
    /// with `upload_pack` (404 when `None`): a hostile or broken server, byte for byte.
    pub fn set_canned(&self, name: &str, discovery: Canned, upload_pack: Option<Canned>) {
        if let Ok(mut c) = self.shared.canned.lock() {
            c.insert(name.to_owned(), CannedRepo { discovery, upload_pack });
        }
    }

    /// Bytes the `/slowloris/…` route has sent so far, over all its requests.
    pub fn slowloris_bytes_sent(&self) -> u64 {
        self.shared.slow_bytes.load(Ordering::Relaxed)
    }

    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for GitServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// `(program, leading args)` to run http-backend.
pub(crate) async fn find_backend(git: Option<&Path>) -> (PathBuf, Vec<String>) {
    let git = git.map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("git"));
    let out = tokio::process::Command::new(&git).arg("--exec-path").output().await;
    if let Ok(out) = out {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        let backend = dir.join("git-http-backend");
        if out.status.success() && backend.is_file() {
            return (backend, Vec::new());
        }
    }
    (git, vec!["http-backend".to_owned()])
}

async fn route(State(st): State<Arc<Shared>>, req: Request) -> Response {
    let rec = crate::record(&req);
    if let Ok(mut r) = st.requests.lock() {
        r.push(rec);
    }
    let path = req.uri().path().to_owned();
    let query = req.uri().query().map(str::to_owned);
    let (prefix, rest) = match path.strip_prefix('/').and_then(|p| p.split_once('/')) {
        Some((prefix, rest)) => (prefix.to_owned(), rest.to_owned()),
        None => return StatusCode::NOT_FOUND.into_response(),
    };
    let with_query = |p: String| match &query {
        Some(q) => format!("{p}?{q}"),
        None => p,
    };
    match prefix.as_str() {
        "git" => git(&st, req, &rest, query.as_deref().unwrap_or("")).await,
        "login" => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            "<!DOCTYPE html>\n<html><head><title>Sign in - Example SSO</title></head>\n\
             <body><form method=\"post\" action=\"/login\"><input name=\"user\"><input name=\"password\" type=\"password\">\
             </form></body></html>\n",
        )
            .into_response(),
        "dumb" => (
            [(header::CONTENT_TYPE, "text/plain")],
            "1111111111111111111111111111111111111111\trefs/heads/main\n\
             2222222222222222222222222222222222222222\trefs/tags/v1\n",
        )
            .into_response(),
        "stall" => {
            let mut stopped = st.stopped.clone();
            let _ = stopped.wait_for(|s| *s).await;
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
        "huge" => huge(&st),
        "moved" => {
            let target = st.redirect_target.lock().ok().and_then(|t| t.clone());
            match target {
                Some(t) => redirect(StatusCode::MOVED_PERMANENTLY, &with_query(format!("{t}/git/{rest}"))),
                None => (StatusCode::INTERNAL_SERVER_ERROR, "set_redirect_target was not called").into_response(),
            }
        }
        "same-origin-redirect" => redirect(StatusCode::FOUND, &with_query(format!("/git/{rest}"))),
        // Points at itself, forever.
        "redirect-loop" => redirect(StatusCode::FOUND, &with_query(path.clone())),
        "slowloris" => slowloris(&st),
        "status" => {
            let (code, _) = rest.split_once('/').unwrap_or((rest.as_str(), ""));
            match code.parse::<u16>().ok().and_then(|c| StatusCode::from_u16(c).ok()) {
                Some(status) => (
                    status,
                    [(header::CONTENT_TYPE, "text/plain")],
                    format!("remote: the test server answers {}\n", status.as_u16()),
                )
                    .into_response(),
                None => StatusCode::NOT_FOUND.into_response(),
            }
        }
        "canned" => canned(&st, &rest),
        "forbidden" => {
            let body: String = st.opts.forbidden_message.lines().map(|l| format!("remote: {l}\n")).collect();
            (StatusCode::FORBIDDEN, [(header::CONTENT_TYPE, "text/plain")], body).into_response()
        }
        "ratelimited" => (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "17"), (header::CONTENT_TYPE, "text/plain")],
            "API rate limit exceeded\n",
        )
            .into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

fn canned(st: &Shared, rest: &str) -> Response {
    let (name, path) = rest.split_once('/').unwrap_or((rest, ""));
    let repo = st.canned.lock().ok().and_then(|c| c.get(name).cloned());
    let answer = match repo {
        Some(r) if path.ends_with("info/refs") => Some(r.discovery),
        Some(r) if path.ends_with("git-upload-pack") => r.upload_pack,
        _ => None,
    };
    let Some(a) = answer else { return StatusCode::NOT_FOUND.into_response() };
    let mut b = Response::builder().status(a.status);
    for (name, value) in &a.headers {
        b = b.header(name.as_str(), value.as_str());
    }
    b.body(Body::from(a.body)).unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// A valid, endless v0 advertisement sent one byte every [`SLOWLORIS_INTERVAL`]: every read
/// gets data in time, so only a limit on the whole request ends it.
fn slowloris(st: &Shared) -> Response {
    const OID: &str = "1111111111111111111111111111111111111111";
    let mut head = pkt(&format!("{OID} HEAD\0symref=HEAD:refs/heads/main agent=berth-testkit\n")).into_bytes();
    head.splice(0..0, format!("{}0000", pkt("# service=git-upload-pack\n")).into_bytes());
    let lines = futures_util::stream::iter(0u64..).flat_map(move |i| {
        let line = if i == 0 { head.clone() } else { pkt(&format!("{OID} refs/heads/slow-{i:08}\n")).into_bytes() };
        futures_util::stream::iter(line)
    });
    let counter = st.slow_bytes.clone();
    let bytes = lines.then(move |b| {
        let counter = counter.clone();
        async move {
            tokio::time::sleep(SLOWLORIS_INTERVAL).await;
            counter.fetch_add(1, Ordering::Relaxed);
            Ok::<Bytes, std::io::Error>(Bytes::copy_from_slice(&[b]))
        }
    });
    let mut stopped = st.stopped.clone();
    let body = bytes.take_until(async move {
        let _ = stopped.wait_for(|s| *s).await;
    });
    ([(header::CONTENT_TYPE, "application/x-git-upload-pack-advertisement")], Body::from_stream(body)).into_response()
}

fn redirect(status: StatusCode, location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(v) => (status, [(header::LOCATION, v)]).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

fn pkt(line: &str) -> String {
    format!("{:04x}{line}", line.len() + 4)
}

/// An endless, valid v0 advertisement, ended only by the client or by shutdown.
fn huge(st: &Shared) -> Response {
    const OID: &str = "1111111111111111111111111111111111111111";
    let head = format!(
        "{}0000{}",
        pkt("# service=git-upload-pack\n"),
        pkt(&format!("{OID} HEAD\0symref=HEAD:refs/heads/main agent=berth-testkit\n"))
    );
    let refs = futures_util::stream::iter(0u64..).map(|chunk| {
        let mut s = String::with_capacity(64 * 1024);
        for i in 0..1000u64 {
            s.push_str(&pkt(&format!("{OID} refs/heads/huge/{chunk:08}-{i:04}\n")));
        }
        Ok::<Bytes, std::io::Error>(Bytes::from(s))
    });
    let mut stopped = st.stopped.clone();
    let body = futures_util::stream::once(async move { Ok(Bytes::from(head)) })
        .chain(refs)
        .take_until(async move {
            let _ = stopped.wait_for(|s| *s).await;
        });
    ([(header::CONTENT_TYPE, "application/x-git-upload-pack-advertisement")], Body::from_stream(body)).into_response()
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, format!("Basic realm=\"{REALM}\"")), (header::CONTENT_TYPE, "text/plain".to_owned())],
        "Authentication required\n",
    )
        .into_response()
}

/// The user a valid `Authorization: Basic` header names.
fn basic_user(opts: &GitServerOptions, req: &Request) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    opts.users.iter().find(|(u, p)| u == user && p == password).map(|(u, _)| u.clone())
}

/// Runs `git http-backend` as a CGI program and streams its output back.
async fn git(st: &Shared, req: Request, rest: &str, query: &str) -> Response {
    let user = if st.opts.users.is_empty() {
        None
    } else {
        match basic_user(&st.opts, &req) {
            Some(u) => Some(u),
            None => return unauthorized(),
        }
    };
    http_backend(&st.backend, &st.root, req, &format!("/{rest}"), query, user.as_deref(), st.opts.protocol_v2).await
}

/// Runs `git http-backend` (`backend` from [`find_backend`]) as a CGI program over the
/// repositories under `root` and streams its output back. `path_info` starts with `/`;
/// `user` becomes `REMOTE_USER` (which also enables `git-receive-pack`).
pub(crate) async fn http_backend(
    backend: &(PathBuf, Vec<String>),
    root: &Path,
    req: Request,
    path_info: &str,
    query: &str,
    user: Option<&str>,
    protocol_v2: bool,
) -> Response {
    let method = req.method().to_string();
    let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let git_protocol = req.headers().get("git-protocol").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body = match axum::body::to_bytes(req.into_body(), 64 * 1024 * 1024).await {
        Ok(b) => b,
        Err(_) => return StatusCode::PAYLOAD_TOO_LARGE.into_response(),
    };

    let (program, args) = backend;
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", crate::repos::git_home())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("REQUEST_METHOD", &method)
        .env("PATH_INFO", path_info)
        .env("QUERY_STRING", query)
        .env("CONTENT_TYPE", &content_type)
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("REMOTE_ADDR", "127.0.0.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    if let Some(u) = user {
        cmd.env("REMOTE_USER", u);
    }
    if let (true, Some(p)) = (protocol_v2, &git_protocol) {
        cmd.env("GIT_PROTOCOL", p);
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, format!("cannot start git http-backend: {e}")).into_response(),
    };
    if let Some(mut stdin) = child.stdin.take() {
        tokio::spawn(async move {
            let _ = stdin.write_all(&body).await;
        });
    }
    let Some(stdout) = child.stdout.take() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let mut out = BufReader::new(stdout);

    // CGI headers, up to an empty line.
    let mut builder = Response::builder();
    let mut status = StatusCode::OK;
    loop {
        let mut line = String::new();
        match out.read_line(&mut line).await {
            Ok(0) | Err(_) => return (StatusCode::BAD_GATEWAY, "http-backend ended before its headers").into_response(),
            Ok(_) => {}
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(':') else { continue };
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            status = value.get(..3).and_then(|c| c.parse().ok()).and_then(|c| StatusCode::from_u16(c).ok()).unwrap_or(status);
        } else {
            builder = builder.header(name, value);
        }
    }

    // The body streams straight from the CGI's stdout; the child is reaped at its end.
    let body = futures_util::stream::unfold(Some((out, child)), |state| async move {
        let (mut out, mut child) = state?;
        let mut buf = vec![0u8; 64 * 1024];
        match out.read(&mut buf).await {
            Ok(0) | Err(_) => {
                let _ = child.wait().await;
                None
            }
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<Bytes, std::io::Error>(Bytes::from(buf)), Some((out, child))))
            }
        }
    });
    builder.status(status).body(Body::from_stream(body)).unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response())
}
