//! Starts Berth and a test Git server with known users and repositories, and watches
//! everything the suite sees for the suite's known secrets (see [`KNOWN_SECRETS`]): every log
//! line of every in-process Berth, every answer the helpers here receive, every file a Berth
//! leaves in its data directory (and, on PostgreSQL, the cluster's files) and every panic
//! message.

use berth_server::config::Config;
use berth_testkit::{bare_repo, empty_repo, GitServer, GitServerOptions};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::PathBuf;
use tempfile::TempDir;


pub struct Berth {
    pub base: String,
    /// SQLite in `data` by default; a fresh PostgreSQL database with
    /// `BERTH_TEST_DATABASE=postgres` (the suite runs on both).
    pub database_url: String,
    pub data: TempDir,
    pub token: String,
    pub git: GitServer,
    pub repos: TempDir,
    pub http: reqwest::Client,
    /// Where PostgreSQL's WAL was when this Berth started (0 on SQLite).
    wal_start: u64,
    scanned: bool,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

pub struct Options {
    pub network_allow: Option<&'static str>,
    pub protocol_v2: bool,
    /// Contents of a `BERTH_CONFIG` file, e.g. `[[integrations]]` for a simulated host.
    pub config_toml: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options { network_allow: Some("127.0.0.0/8,::1"), protocol_v2: true, config_toml: None }
    }
}

impl Berth {
    pub async fn start() -> Berth {
        Berth::start_with(Options::default()).await
    }

    pub async fn start_with(opts: Options) -> Berth {
        leakscan::init();
        let repos = tempfile::tempdir().unwrap();
        bare_repo(repos.path(), "team/app.git", "trunk", &["trunk", "develop", "release/1.0", "feature/login"]);
        bare_repo(repos.path(), "team/lib.git", "main", &["main"]);
        empty_repo(repos.path(), "team/empty.git", "main");
        let git = GitServer::start(
            repos.path(),
            GitServerOptions {
                users: vec![("x-bitbucket-api-token-auth".into(), TOKEN.into()), ("alice".into(), ALICE_PASSWORD.into())],
                protocol_v2: opts.protocol_v2,
                ..GitServerOptions::default()
            },
        )
        .await;

        let data = tempfile::tempdir().unwrap();
        let mut env: HashMap<String, String> = HashMap::new();
        env.insert("BERTH_DATA_DIR".into(), data.path().display().to_string());
        let database_url = berth_testkit::pg::test_database_url(data.path());
        let wal_start = postgres_wal_position(&database_url);
        env.insert("BERTH_DATABASE_URL".into(), database_url.clone());
        env.insert("BERTH_ADMIN_PASSWORD".into(), ADMIN_PASSWORD.into());
        env.insert("BERTH_LISTEN".into(), "127.0.0.1:0".into());
        if let Some(toml) = &opts.config_toml {
            let path = data.path().join("berth.toml");
            std::fs::write(&path, toml).unwrap();
            env.insert("BERTH_CONFIG".into(), path.display().to_string());
        }
        if let Some(a) = opts.network_allow {
            env.insert("BERTH_NETWORK_ALLOW".into(), a.into());
        }
        let config = Config::load(&move |k| env.get(k).cloned()).unwrap();
        let ready = berth_server::prepare(config).await.unwrap();
        assert!(ready.generated_admin_password.is_none(), "the configured admin password is used");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            berth_server::serve_listener(listener, ready.state, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        let http = reqwest::Client::new();
        let login = http
            .post(format!("{base}/api/v1/auth/login"))
            .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
            .send()
            .await
            .unwrap();
        let login: Value = serde_json::from_str(&answer_text("the first sign-in", login).await).unwrap();
        let token = login["token"].as_str().expect("login token").to_owned();
        register_token(&token);
        Berth {
            base,
            database_url,
            data,
            token,
            git,
            repos,
            http,
            wal_start,
            scanned: false,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    /// The SQLite file, when the suite runs on SQLite.
    pub fn db_path(&self) -> Option<PathBuf> {
        self.database_url.starts_with("sqlite:").then(|| self.data.path().join("berth.db"))
    }

    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base)).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = answer_text(&format!("the answer to {path}"), resp).await;
        let value = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        (status, value)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::DELETE, path, None).await
    }

    /// Stores the API-token credential the test Git server accepts.
    pub async fn api_token_credential(&self, name: &str) -> i64 {
        let (s, v) = self
            .post(
                "/api/v1/credentials",
                json!({"name": name, "kind": "bitbucket_api_token", "email": "jo@example.com", "secret": TOKEN,
                       "scopes": ["read:repository:bitbucket"]}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["id"].as_i64().unwrap()
    }

    /// Stops the server and hands back its data directory for inspection.
    pub async fn stop_keep_data(mut self) -> TempDir {
        self.halt().await;
        let empty = tempfile::tempdir().unwrap();
        std::mem::replace(&mut self.data, empty)
    }

    pub async fn stop(mut self) {
        self.halt().await;
    }

    async fn halt(&mut self) {
        // While it runs (SQLite's WAL and shared memory are there), then once it has stopped.
        assert_dir_clean("a running Berth's data directory", self.data.path());
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
        self.final_scan();
    }

    /// The data directory (database, WAL, key file), the PostgreSQL files this Berth wrote,
    /// and every log line and panic message of the process so far.
    fn final_scan(&mut self) {
        if std::mem::replace(&mut self.scanned, true) {
            return;
        }
        let read = assert_dir_clean("a Berth's data directory", self.data.path());
        assert!(read > 0, "the data directory holds nothing to scan");
        assert_postgres_clean("a Berth's database", &self.database_url, self.wal_start);
        assert!(captured_lines(Some("berth_server")) + captured_lines(Some("tower_http")) > 0, "no log line was captured");
        assert_no_leaks_recorded();
    }
}

impl Drop for Berth {
    /// A test that never calls `stop` still has its files and logs scanned.
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.final_scan();
        }
    }
}

/// The body of an answer, after checking it holds no known secret.
pub async fn answer_text(where_: &str, resp: reqwest::Response) -> String {
    let text = resp.text().await.unwrap();
    assert_no_secret(where_, &text);
    text
}

/// Whether a `berth serve` process at `base` answered `/readyz` with 200 within 30 seconds.
pub async fn serve_ready(http: &reqwest::Client, base: &str) -> bool {
    for _ in 0..300 {
        if http.get(format!("{base}/readyz")).send().await.is_ok_and(|r| r.status() == StatusCode::OK) {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    false
}

/// An API session token for `username`, registered as a known secret for the leak scan.
pub async fn login(http: &reqwest::Client, base: &str, username: &str, password: &str) -> String {
    let resp = http.post(format!("{base}/api/v1/auth/login")).json(&json!({"username": username, "password": password})).send().await.unwrap();
    let v: Value = resp.json().await.unwrap();
    let token = v["token"].as_str().unwrap_or_else(|| panic!("no token in the login answer: {v}")).to_owned();
    register_token(&token);
    token
}

/// The code of the first failing step of an error answer.
pub fn error_code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("<none>")
}

/// The step named `step` in a list of checks.
pub fn step<'a>(checks: &'a Value, name: &str) -> &'a Value {
    checks.as_array().and_then(|a| a.iter().find(|s| s["step"] == name)).unwrap_or(&Value::Null)
}

// ---------------------------------------------------------------------------------------------
// Secrets never leak (issue 6): the one list of the suite's known secrets, and the scan of
// every log line, answer, page, file and panic message for them.
// ---------------------------------------------------------------------------------------------

/// Every secret value the end-to-end suite sends to Berth (or that Berth's test hosts accept),
/// by name. Tests use these constants rather than literals; `leaks.rs`
/// `every_secret_literal_in_the_suite_is_registered` fails on a secret literal that is not here.
pub const KNOWN_SECRETS: &[(&str, &str)] = &[
    ("ADMIN_PASSWORD", ADMIN_PASSWORD),
    ("TOKEN", TOKEN),
    ("ALICE_PASSWORD", ALICE_PASSWORD),
    ("REGISTRAR_PASSWORD", REGISTRAR_PASSWORD),
    ("VIEWER_PASSWORD", VIEWER_PASSWORD),
    ("WRONG_ADMIN_PASSWORD", WRONG_ADMIN_PASSWORD),
    ("WRONG_PASSWORD", WRONG_PASSWORD),
    ("WRONG_TOKEN", WRONG_TOKEN),
    ("WRONG_TOKEN_FROM_STDIN", WRONG_TOKEN_FROM_STDIN),
    ("REVOKED_TOKEN", REVOKED_TOKEN),
    ("ROTATED_SECRET", ROTATED_SECRET),
    ("OLD_TOKEN", OLD_TOKEN),
    ("APP_PASSWORD", APP_PASSWORD),
    ("UI_APP_PASSWORD", UI_APP_PASSWORD),
    ("UI_WRONG_PASSWORD", UI_WRONG_PASSWORD),
    ("ANOTHER_TOKEN", ANOTHER_TOKEN),
    ("DUPLICATE_NAME_SECRET", DUPLICATE_NAME_SECRET),
    ("ABUSE_TOKEN", ABUSE_TOKEN),
    ("ABUSE_SHORT_TOKEN", ABUSE_SHORT_TOKEN),
    ("NEW_USER_PASSWORD", NEW_USER_PASSWORD),
    ("LONG_ENOUGH_PASSWORD", LONG_ENOUGH_PASSWORD),
    ("VERA_RESET_PASSWORD", VERA_RESET_PASSWORD),
    ("RESET_ADMIN_PASSWORD", RESET_ADMIN_PASSWORD),
    ("URL_PASSWORD", URL_PASSWORD),
    ("CRASH_TOKEN", CRASH_TOKEN),
    ("CRASH_ADMIN_PASSWORD", CRASH_ADMIN_PASSWORD),
    ("INSTANCES_TOKEN", INSTANCES_TOKEN),
    ("INSTANCES_ADMIN_PASSWORD", INSTANCES_ADMIN_PASSWORD),
    ("SIM_GOOD", SIM_GOOD),
    ("SIM_LEE", SIM_LEE),
    ("SIM_NOREAD", SIM_NOREAD),
    ("SIM_CLASSIC", SIM_CLASSIC),
    ("SIM_EXPIRED", SIM_EXPIRED),
    ("SIM_APP_PASSWORD", SIM_APP_PASSWORD),
    ("SIM_REPO_ACCESS_TOKEN", SIM_REPO_ACCESS_TOKEN),
    ("SIM_DC_TOKEN", SIM_DC_TOKEN),
    ("SIM_GITHUB_TOKEN", SIM_GITHUB_TOKEN),
    ("LEAK_WRONG_TOKEN", LEAK_WRONG_TOKEN),
    ("LEAK_WEB_SECRET", LEAK_WEB_SECRET),
];

/// Secret literals the suite uses that are too short or too common to search for (the scan
/// would find them in ordinary text). Each is refused before Berth stores or uses it.
pub const NOT_SCANNED: &[(&str, &str)] = &[
    ("short", "a password refused for being too short"),
    ("x", "a sign-in attempt for an unknown name"),
    ("t", "the secret of a form refused for its missing CSRF token"),
];

/// User names the suite pairs with secrets in HTTP Basic authentication: the scan also looks
/// for the base64 of every `user:secret` pair (the alignment fragments below find any base64
/// text that contains a secret; these are the whole headers, searched as well).
pub const BASIC_AUTH_USERS: &[&str] =
    &["x-bitbucket-api-token-auth", "alice", "jo", "jo@example.com", "lee", "lee@example.com", "admin", "vera", "reggie"];

/// The log filter of every Berth this suite runs, in this process or as a child (`RUST_LOG`).
pub const LOG_FILTER: &str = "warn,berth=trace,berth_server=trace,berth_store=trace,berth_git=trace,berth_forge=trace,\
     berth_core=trace,berth_proto=trace,tower_http=debug,reqwest=debug,hyper=debug,hyper_util=debug,axum=debug,sqlx=debug";

/// The shortest value the scan searches for; shorter literals are in [`NOT_SCANNED`].
pub const MIN_SECRET_LEN: usize = 8;

pub const ADMIN_PASSWORD: &str = "admin-password-e2e-9c1f";
/// The API token the test Git server accepts for `x-bitbucket-api-token-auth`.
pub const TOKEN: &str = "ATATT3xFfGF0e2e-known-secret-4d8b1a";
/// Alice's password on the test Git server. It has characters that percent-encoding, form
/// encoding, HTML escaping and URL-safe base64 each change, so each of those forms is searched
/// for something different from the raw value.
pub const ALICE_PASSWORD: &str = "alice>>>?~known pass/word+&=%77aa";
pub const REGISTRAR_PASSWORD: &str = "registrar-password-3b7e";
pub const VIEWER_PASSWORD: &str = "viewer-password-a41c90";
pub const WRONG_ADMIN_PASSWORD: &str = "wrong-admin-password-e2e-51";
pub const WRONG_PASSWORD: &str = "wrong-password";
pub const WRONG_TOKEN: &str = "wrong-token";
pub const WRONG_TOKEN_FROM_STDIN: &str = "wrong-token-from-stdin";
pub const REVOKED_TOKEN: &str = "revoked-token-0000000000";
pub const ROTATED_SECRET: &str = "rotated-secret-value-123";
pub const OLD_TOKEN: &str = "an-old-token";
pub const APP_PASSWORD: &str = "apppw-retired-e2e-0c4d";
/// The app password `ui.rs` types into the web form.
pub const UI_APP_PASSWORD: &str = "app-password-value";
/// The wrong password `ui.rs` signs in with.
pub const UI_WRONG_PASSWORD: &str = "wrong password";
pub const ANOTHER_TOKEN: &str = "tok-123456";
pub const DUPLICATE_NAME_SECRET: &str = "dup-name-secret-e2e-7f";
pub const ABUSE_TOKEN: &str = "tok-abuse-123456";
pub const ABUSE_SHORT_TOKEN: &str = "t-123456";
pub const NEW_USER_PASSWORD: &str = "a-long-password-1";
pub const LONG_ENOUGH_PASSWORD: &str = "long-enough-pass";
pub const VERA_RESET_PASSWORD: &str = "a-fresh-password-for-vera";
pub const RESET_ADMIN_PASSWORD: &str = "a-brand-new-password";
/// The password pasted inside a clone URL (refused as `secret_in_url`).
pub const URL_PASSWORD: &str = "hunter2secret";
pub const CRASH_TOKEN: &str = "ATATT3xFfGF0-crash-known-secret-93d1";
pub const CRASH_ADMIN_PASSWORD: &str = "admin-password-crash-5e0a";
pub const INSTANCES_TOKEN: &str = "ATATT3xFfGF0-instances-known-secret-51c2";
pub const INSTANCES_ADMIN_PASSWORD: &str = "admin-password-instances-2b7e";
pub const SIM_GOOD: &str = "ATATT3xFfGF0-sim-good-token-0001";
pub const SIM_NOREAD: &str = "ATATT3xFfGF0-sim-noread-0002";
pub const SIM_CLASSIC: &str = "ATATT3xFfGF0-sim-classic-0003";
pub const SIM_EXPIRED: &str = "ATATT3xFfGF0-sim-expired-0004";
pub const SIM_APP_PASSWORD: &str = "ATBBsimAppPassword00000000005";
pub const SIM_REPO_ACCESS_TOKEN: &str = "sim-repo-access-token-0006";
pub const SIM_DC_TOKEN: &str = "dc-personal-token-0007";
pub const SIM_GITHUB_TOKEN: &str = "ghp_simClassicToken00000000000000000008";
pub const SIM_LEE: &str = "ATATT3xFfGF0-sim-lee-0009";
pub const LEAK_WRONG_TOKEN: &str = "ATATT3xFfGF0-leaks-wrong-token-6a2e";
pub const LEAK_WEB_SECRET: &str = "web form secret/+&=%-leaks-88b0";

/// A value no test may leak, planted on purpose by the positive controls in `leaks.rs`: its
/// hits are kept apart (see [`canary_hits`]) instead of failing the suite.
pub const CANARY: &str = "canary>>>?~leak/+ &=%4fd2-e2e";

pub use leakscan::*;

pub mod leakscan {
    use std::collections::HashMap;
    use std::io::Write as _;
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex, OnceLock, RwLock};

    /// Where a value may not appear.
    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    pub enum Kind {
        /// A known secret: nowhere.
        Secret,
        /// A session or API token Berth issued: it is the answer to a sign-in, so not in answers'
        /// scans, but never in a log, a file or a panic.
        Token,
        /// The positive controls' planted value: recorded apart.
        Canary,
    }

    /// What is being scanned, which decides which values count.
    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    pub enum Source {
        Answer,
        Log,
        File,
        Panic,
    }

    /// One value found where it must not be.
    #[derive(Clone, Debug)]
    pub struct Hit {
        pub where_: String,
        pub label: String,
        pub kind: Kind,
        /// raw, base64, base64url, base64 of user:secret, percent-encoded, HTML-escaped
        pub form: String,
        /// The text around the hit, with the value itself replaced by its label.
        pub context: String,
    }

    impl std::fmt::Display for Hit {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{} ({}) in {}: …{}…", self.label, self.form, self.where_, self.context)
        }
    }

    struct Entry {
        label: String,
        value: String,
        kind: Kind,
    }

    struct Pattern {
        bytes: Vec<u8>,
        entry: usize,
        form: String,
    }

    /// A multi-pattern search: patterns indexed by their first two bytes.
    struct Matcher {
        entries: Vec<(String, Kind)>,
        /// The longest value, in bytes.
        longest: usize,
        patterns: Vec<Pattern>,
        bits: Vec<u64>,
        by_key: HashMap<u16, Vec<usize>>,
    }

    struct Registry {
        entries: Vec<Entry>,
        matcher: Option<Arc<Matcher>>,
    }

    fn registry() -> &'static RwLock<Registry> {
        static R: OnceLock<RwLock<Registry>> = OnceLock::new();
        R.get_or_init(|| {
            let mut entries: Vec<Entry> = super::KNOWN_SECRETS
                .iter()
                .map(|(l, v)| Entry { label: (*l).to_owned(), value: (*v).to_owned(), kind: Kind::Secret })
                .collect();
            entries.push(Entry { label: "CANARY".into(), value: super::CANARY.into(), kind: Kind::Canary });
            RwLock::new(Registry { entries, matcher: None })
        })
    }

    /// Adds a secret made while the suite runs (e.g. a rotated secret in `crash.rs`).
    pub fn register_secret(label: &str, value: &str) {
        register(label, value, Kind::Secret);
    }

    /// Adds a session or API token Berth handed out.
    pub fn register_token(value: &str) {
        register("a session or API token", value, Kind::Token);
    }

    fn register(label: &str, value: &str, kind: Kind) {
        assert!(value.len() >= super::MIN_SECRET_LEN, "{label} is too short to search for");
        let mut r = registry().write().unwrap_or_else(|e| e.into_inner());
        if r.entries.iter().any(|e| e.value == value) {
            return;
        }
        r.entries.push(Entry { label: label.to_owned(), value: value.to_owned(), kind });
        r.matcher = None;
    }

    fn matcher() -> Arc<Matcher> {
        if let Some(m) = registry().read().unwrap_or_else(|e| e.into_inner()).matcher.clone() {
            return m;
        }
        let mut r = registry().write().unwrap_or_else(|e| e.into_inner());
        if let Some(m) = r.matcher.clone() {
            return m;
        }
        let m = Arc::new(Matcher::new(&r.entries));
        r.matcher = Some(m.clone());
        m
    }

    const STD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    /// Standard base64 with padding.
    pub fn base64(data: &[u8]) -> String {
        let mut out = String::new();
        for chunk in data.chunks(3) {
            let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(char::from(STD[((n >> (18 - 6 * i)) & 63) as usize]));
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    /// URL-safe base64 (RFC 4648 §5) without padding.
    pub fn base64url(data: &[u8]) -> String {
        base64(data).trim_end_matches('=').replace('+', "-").replace('/', "_")
    }

    /// Every byte outside RFC 3986's unreserved set as `%XX`.
    pub fn percent_encode(s: &str) -> String {
        s.bytes()
            .map(|b| if b.is_ascii_alphanumeric() || b"-._~".contains(&b) { char::from(b).to_string() } else { format!("%{b:02X}") })
            .collect()
    }

    /// The parts of the base64 of any text containing `value`, whatever precedes it: for each
    /// of the three alignments, the characters that only the value's bits decide.
    fn base64_fragments(value: &[u8]) -> Vec<String> {
        (0..3usize)
            .map(|k| {
                let mut padded = vec![0u8; k];
                padded.extend_from_slice(value);
                let enc = base64(&padded);
                let start = (8 * k).div_ceil(6);
                let end = (8 * (k + value.len())) / 6;
                enc[start..end].to_owned()
            })
            .collect()
    }

    impl Matcher {
        fn new(entries: &[Entry]) -> Matcher {
            let mut patterns = Vec::new();
            let mut seen = std::collections::HashSet::new();
            for (i, e) in entries.iter().enumerate() {
                let mut add = |bytes: String, form: &str| {
                    if seen.insert((i, bytes.clone())) {
                        patterns.push(Pattern { bytes: bytes.into_bytes(), entry: i, form: form.to_owned() });
                    }
                };
                let v = e.value.as_bytes();
                add(e.value.clone(), "raw");
                for f in base64_fragments(v) {
                    add(f.clone(), "base64");
                    add(f.replace('+', "-").replace('/', "_"), "base64url");
                }
                add(base64(v), "base64");
                add(base64url(v), "base64url");
                for user in super::BASIC_AUTH_USERS {
                    let pair = format!("{user}:{}", e.value);
                    add(base64(pair.as_bytes()), "base64 of user:secret");
                    add(base64url(pair.as_bytes()), "base64url of user:secret");
                }
                // Percent-encoded forms are found by decoding what is scanned (any encode set,
                // either case); these are searched as they are too.
                add(percent_encode(&e.value), "percent-encoded");
                add(percent_encode(&e.value).replace("%20", "+"), "percent-encoded");
            }
            let mut bits = vec![0u64; 1024];
            let mut by_key: HashMap<u16, Vec<usize>> = HashMap::new();
            for (i, p) in patterns.iter().enumerate() {
                let key = (u16::from(p.bytes[0]) << 8) | u16::from(p.bytes[1]);
                bits[usize::from(key) >> 6] |= 1 << (key & 63);
                by_key.entry(key).or_default().push(i);
            }
            let longest = entries.iter().map(|e| e.value.len()).max().unwrap_or(0);
            Matcher { entries: entries.iter().map(|e| (e.label.clone(), e.kind)).collect(), longest, patterns, bits, by_key }
        }

        /// (entry, offset, length, form) of every match.
        fn find(&self, text: &[u8], form_override: Option<&str>, out: &mut Vec<(usize, usize, usize, String)>) {
            if text.len() < 2 {
                return;
            }
            let bits: &[u64] = &self.bits;
            let mut prev = text[0] as usize;
            for (i, &b) in text.iter().enumerate().skip(1) {
                let key = (prev << 8) | b as usize;
                prev = b as usize;
                if bits[key >> 6] & (1 << (key & 63)) == 0 {
                    continue;
                }
                let i = i - 1;
                for &p in &self.by_key[&(key as u16)] {
                    let pat = &self.patterns[p];
                    if text[i..].starts_with(&pat.bytes) {
                        let form = form_override.map_or_else(|| pat.form.clone(), str::to_owned);
                        out.push((pat.entry, i, pat.bytes.len(), form));
                    }
                }
            }
        }
    }

    /// `%XX` decoded (either case); everything else kept. With, for each decoded byte (and
    /// the end), where it came from in `text`.
    fn percent_decode(text: &[u8]) -> (Vec<u8>, Vec<usize>) {
        decode_percent(text, false)
    }

    /// As [`percent_decode`], and `+` is a space (`application/x-www-form-urlencoded`).
    fn form_decode(text: &[u8]) -> (Vec<u8>, Vec<usize>) {
        decode_percent(text, true)
    }

    fn decode_percent(text: &[u8], plus_is_space: bool) -> (Vec<u8>, Vec<usize>) {
        let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
        let (mut out, mut from) = (Vec::with_capacity(text.len()), Vec::with_capacity(text.len() + 1));
        let mut i = 0;
        while i < text.len() {
            from.push(i);
            if text[i] == b'%' && i + 2 < text.len() {
                if let (Some(h), Some(l)) = (hex(text[i + 1]), hex(text[i + 2])) {
                    out.push(h * 16 + l);
                    i += 3;
                    continue;
                }
            }
            out.push(if plus_is_space && text[i] == b'+' { b' ' } else { text[i] });
            i += 1;
        }
        from.push(text.len());
        (out, from)
    }

    /// HTML character references (`&amp;`, `&#x2F;`, `&#47;`, …) decoded, with the origins as
    /// [`percent_decode`] gives them.
    fn html_unescape(text: &[u8]) -> (Vec<u8>, Vec<usize>) {
        let (mut out, mut from) = (Vec::with_capacity(text.len()), Vec::with_capacity(text.len() + 1));
        let mut i = 0;
        while i < text.len() {
            if text[i] == b'&' {
                if let Some(len) = text[i..].iter().take(12).position(|&c| c == b';') {
                    let name = String::from_utf8_lossy(&text[i + 1..i + len]).to_ascii_lowercase();
                    let c = match name.as_str() {
                        "amp" => Some('&'),
                        "lt" => Some('<'),
                        "gt" => Some('>'),
                        "quot" => Some('"'),
                        "apos" => Some('\''),
                        n if n.starts_with("#x") => u32::from_str_radix(&n[2..], 16).ok().and_then(char::from_u32),
                        n if n.starts_with('#') => n[1..].parse().ok().and_then(char::from_u32),
                        _ => None,
                    };
                    if let Some(c) = c {
                        let mut b = [0u8; 4];
                        for byte in c.encode_utf8(&mut b).as_bytes() {
                            from.push(i);
                            out.push(*byte);
                        }
                        i += len + 1;
                        continue;
                    }
                }
            }
            from.push(i);
            out.push(text[i]);
            i += 1;
        }
        from.push(text.len());
        (out, from)
    }

    fn context(text: &[u8], at: usize, len: usize, label: &str) -> String {
        let from = at.saturating_sub(60);
        let to = (at + len + 60).min(text.len());
        let clean = |b: &[u8]| String::from_utf8_lossy(b).chars().map(|c| if c.is_control() { ' ' } else { c }).collect::<String>();
        format!("{}[{label}]{}", clean(&text[from..at]), clean(&text[(at + len).min(text.len())..to]))
    }

    /// Every known value in `text`, in any of its forms.
    pub fn scan(where_: &str, text: &[u8], source: Source) -> Vec<Hit> {
        let m = matcher();
        let mut hits = Vec::new();
        // The text as it is, then decoded; a value found in a decoded text counts only where
        // decoding changed it (else it is the raw hit again). Only the stretches around
        // something a decoder changes (`%XX`, `&…;`, `+`) are decoded: no value can be found
        // decoded anywhere else. Files (large, binary) are decoded for percent-encoding only.
        type Decoder = fn(&[u8]) -> (Vec<u8>, Vec<usize>);
        let html: (&str, Decoder) = ("HTML-escaped", html_unescape);
        let pct: (&str, Decoder) = ("percent-encoded", percent_decode);
        let form: (&str, Decoder) = ("form-encoded", form_decode);
        let is_hex = |c: u8| c.is_ascii_hexdigit();
        let pct_at = |i: usize| text[i] == b'%' && i + 2 < text.len() && is_hex(text[i + 1]) && is_hex(text[i + 2]);
        let amp_at = |i: usize| text[i] == b'&' && text[i + 1..].iter().take(11).any(|&c| c == b';');
        // Each chain: the decoders to apply in order, and where in the text they may matter.
        type Chain<'a> = (Vec<(&'a str, Decoder)>, Vec<usize>);
        let mut chains: Vec<Chain<'_>> = Vec::new();
        let triggers = |want: &dyn Fn(usize) -> bool| (0..text.len()).filter(|&i| want(i)).collect::<Vec<usize>>();
        let pcts = if text.contains(&b'%') { triggers(&pct_at) } else { Vec::new() };
        if !pcts.is_empty() {
            chains.push((vec![pct], pcts.clone()));
        }
        if source != Source::File {
            let plus = triggers(&|i| text[i] == b'+' || pct_at(i));
            if !plus.is_empty() {
                chains.push((vec![form], plus));
            }
            let amps = if text.contains(&b'&') { triggers(&amp_at) } else { Vec::new() };
            if !amps.is_empty() {
                chains.push((vec![html], amps.clone()));
                chains.push((vec![html, pct], amps.clone()));
                chains.push((vec![html, form], amps));
            }
        }
        let reach = 12 * m.longest + 16;
        // Each variant: the decoding's name, the decoded bytes, and the offsets it covers.
        type Variant = (Option<String>, Vec<u8>, Option<Vec<usize>>);
        let mut variants: Vec<Variant> = vec![(None, text.to_vec(), None)];
        for (chain, at) in chains {
            let name = chain.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(" and ");
            // Merged windows around the triggers.
            let mut windows: Vec<(usize, usize)> = Vec::new();
            for i in at {
                let (a, b) = (i.saturating_sub(reach), (i + reach).min(text.len()));
                match windows.last_mut() {
                    Some(w) if a <= w.1 => w.1 = b,
                    _ => windows.push((a, b)),
                }
            }
            for (a, b) in windows {
                let (mut t, mut from): (Vec<u8>, Vec<usize>) = (text[a..b].to_vec(), (a..=b).collect());
                for (_, decode) in &chain {
                    let (next, step) = decode(&t);
                    from = step.iter().map(|&j| from[j]).collect();
                    t = next;
                }
                variants.push((Some(name.clone()), t, Some(from)));
            }
        }
        for (form, t, from) in &variants {
            let mut found = Vec::new();
            m.find(t, form.as_deref(), &mut found);
            for (entry, at, len, form) in &found {
                if from.as_ref().is_some_and(|f| f[at + len] - f[*at] == *len) {
                    continue;
                }
                let (label, kind) = &m.entries[*entry];
                if *kind == Kind::Token && source == Source::Answer {
                    continue;
                }
                let hit = Hit {
                    where_: where_.to_owned(),
                    label: label.clone(),
                    kind: *kind,
                    form: form.clone(),
                    context: context(t, *at, *len, label),
                };
                if !hits.iter().any(|h: &Hit| h.label == hit.label && h.form == hit.form) {
                    hits.push(hit);
                }
            }
        }
        // Planted values are kept for the positive controls; the rest are leaks.
        let (canary, leaks): (Vec<Hit>, Vec<Hit>) = hits.into_iter().partition(|h| h.kind == Kind::Canary);
        canaries().lock().unwrap_or_else(|e| e.into_inner()).extend(canary);
        leaks
    }

    fn canaries() -> &'static Mutex<Vec<Hit>> {
        static C: OnceLock<Mutex<Vec<Hit>>> = OnceLock::new();
        C.get_or_init(Mutex::default)
    }

    /// Every planted value found so far (positive controls only).
    pub fn canary_hits() -> Vec<Hit> {
        canaries().lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn recorded() -> &'static Mutex<Vec<Hit>> {
        static L: OnceLock<Mutex<Vec<Hit>>> = OnceLock::new();
        L.get_or_init(Mutex::default)
    }

    fn record(hits: Vec<Hit>) {
        if !hits.is_empty() {
            recorded().lock().unwrap_or_else(|e| e.into_inner()).extend(hits);
        }
    }

    fn report(hits: &[Hit]) -> String {
        hits.iter().map(|h| format!("  - {h}")).collect::<Vec<_>>().join("\n")
    }

    /// Fails if `text` (an answer, a page, command output) holds a known secret in any form.
    /// The failure names the secret and the form, never the value.
    #[track_caller]
    pub fn assert_no_secret(where_: &str, text: &str) {
        let hits = scan(where_, text.as_bytes(), Source::Answer);
        assert!(hits.is_empty(), "a secret leaked:\n{}", report(&hits));
    }

    /// As [`assert_no_secret`], for bytes that are not an answer to this client (output of a
    /// child process, a file): tokens Berth issued count too.
    #[track_caller]
    pub fn assert_no_secret_in_output(where_: &str, text: &[u8]) {
        let hits = scan(where_, text, Source::Log);
        assert!(hits.is_empty(), "a secret leaked:\n{}", report(&hits));
    }

    /// Fails if any log line or panic message of this process so far held a secret (they are
    /// scanned as they are written, and the hits kept until here).
    #[track_caller]
    pub fn assert_no_leaks_recorded() {
        let hits = recorded().lock().unwrap_or_else(|e| e.into_inner()).clone();
        assert!(hits.is_empty(), "secrets leaked into this test process's logs or panic messages:\n{}", report(&hits));
    }

    /// Scans every file under `dir` (database, WAL, key file, logs); returns how many bytes
    /// it read.
    #[track_caller]
    pub fn assert_dir_clean(where_: &str, dir: &Path) -> u64 {
        assert_files_clean(where_, &files_under(dir, None))
    }

    /// Scans these files; returns how many bytes it read.
    #[track_caller]
    pub fn assert_files_clean(where_: &str, files: &[PathBuf]) -> u64 {
        let mut hits = Vec::new();
        let mut bytes = 0;
        for f in files {
            // A file may go away (SQLite's WAL at close, PostgreSQL recycling a segment).
            let Ok(data) = std::fs::read(f) else { continue };
            bytes += data.len() as u64;
            hits.extend(scan(&format!("{where_}: {}", f.display()), &data, Source::File));
        }
        assert!(hits.is_empty(), "a secret is stored in a file:\n{}", report(&hits));
        bytes
    }

    /// Regular files under `dir`, modified at or after `since` when given.
    pub fn files_under(dir: &Path, since: Option<std::time::SystemTime>) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_owned()];
        while let Some(d) = stack.pop() {
            let Ok(rd) = std::fs::read_dir(&d) else { continue };
            for e in rd.flatten() {
                let Ok(meta) = std::fs::symlink_metadata(e.path()) else { continue };
                if meta.is_dir() {
                    stack.push(e.path());
                } else if meta.is_file() && since.is_none_or(|s| meta.modified().is_ok_and(|m| m >= s)) {
                    out.push(e.path());
                }
            }
        }
        out
    }

    // --- logs -----------------------------------------------------------------------------

    struct Capture {
        file: Mutex<std::fs::File>,
        path: PathBuf,
        lines: AtomicU64,
        by_crate: Mutex<HashMap<String, u64>>,
    }

    static CAPTURE: OnceLock<Capture> = OnceLock::new();

    /// The log of this test process: every event of every in-process Berth, one per line.
    pub fn log_path() -> PathBuf {
        init();
        CAPTURE.get().map(|c| c.path.clone()).unwrap_or_default()
    }

    /// How many log lines were captured so far, in all and for a crate (`berth_server`, …).
    pub fn captured_lines(krate: Option<&str>) -> u64 {
        init();
        let Some(c) = CAPTURE.get() else { return 0 };
        match krate {
            None => c.lines.load(Ordering::SeqCst),
            Some(k) => c.by_crate.lock().unwrap_or_else(|e| e.into_inner()).get(k).copied().unwrap_or(0),
        }
    }

    /// One log event, scanned when the formatter is done with it.
    pub struct LineWriter {
        krate: String,
        buf: Vec<u8>,
    }

    impl std::io::Write for LineWriter {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.buf.extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Drop for LineWriter {
        fn drop(&mut self) {
            if self.buf.is_empty() {
                return;
            }
            let Some(c) = CAPTURE.get() else { return };
            record(scan(&format!("a log line of {}", self.krate), &self.buf, Source::Log));
            c.lines.fetch_add(1, Ordering::SeqCst);
            *c.by_crate.lock().unwrap_or_else(|e| e.into_inner()).entry(std::mem::take(&mut self.krate)).or_default() += 1;
            let _ = c.file.lock().unwrap_or_else(|e| e.into_inner()).write_all(&self.buf);
        }
    }

    pub struct MakeCapture;

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for MakeCapture {
        type Writer = LineWriter;
        fn make_writer(&'a self) -> LineWriter {
            LineWriter { krate: "?".into(), buf: Vec::new() }
        }
        fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> LineWriter {
            LineWriter { krate: meta.target().split("::").next().unwrap_or("?").to_owned(), buf: Vec::new() }
        }
    }

    /// Installs, once per test process, the global log subscriber (every event of the crates in
    /// [`super::LOG_FILTER`] is scanned and appended to [`log_path`]) and the panic hook that
    /// scans panic messages. Every test that starts a Berth calls it.
    pub fn init() {
        static ONCE: OnceLock<()> = OnceLock::new();
        ONCE.get_or_init(|| {
            use tracing_subscriber::layer::SubscriberExt as _;
            use tracing_subscriber::util::SubscriberInitExt as _;
            let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("e2e-logs");
            std::fs::create_dir_all(&dir).unwrap();
            // Logs of earlier runs: keep the last few.
            let mut old: Vec<PathBuf> = files_under(&dir, None);
            old.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
            for p in old.iter().rev().skip(4) {
                let _ = std::fs::remove_file(p);
            }
            let path = dir.join(format!("e2e-{}.log", std::process::id()));
            let file = std::fs::File::create(&path).unwrap();
            let _ = CAPTURE.set(Capture { file: Mutex::new(file), path, lines: AtomicU64::new(0), by_crate: Mutex::default() });
            let filter: tracing_subscriber::filter::Targets = super::LOG_FILTER.parse().unwrap();
            use tracing_subscriber::Layer as _;
            let layer = tracing_subscriber::fmt::layer().with_ansi(false).with_writer(MakeCapture).with_filter(filter);
            tracing_subscriber::registry()
                .with(layer)
                .try_init()
                .expect("the leak scan must own the global log subscriber, or it would see no log line");

            let default = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                record(scan("a panic message", info.to_string().as_bytes(), Source::Panic));
                default(info);
            }));
        });
    }

    /// The environment of every Berth child process: the suite's log filter, no colour codes.
    pub fn child_log_env(cmd: &mut tokio::process::Command) {
        cmd.env("RUST_LOG", super::LOG_FILTER).env("NO_COLOR", "1");
    }

    /// Splits a `berth` command's stderr into its log lines (tracing's format: a timestamp and
    /// a level) and the rest (what it says to a person).
    pub fn split_log_lines(stderr: &str) -> (String, String) {
        let (mut logs, mut rest) = (String::new(), String::new());
        for line in stderr.lines() {
            let b = line.as_bytes();
            let is_log = b.len() > 28
                && b[..4].iter().all(u8::is_ascii_digit)
                && b[4] == b'-'
                && b[10] == b'T'
                && line.split_whitespace().nth(1).is_some_and(|l| ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"].contains(&l));
            let to = if is_log { &mut logs } else { &mut rest };
            to.push_str(line);
            to.push('\n');
        }
        (logs, rest)
    }

    /// Where PostgreSQL's write-ahead log is now (0 on SQLite): taken when a test starts, so
    /// [`assert_postgres_clean`] can read what was written since.
    pub fn postgres_wal_position(database_url: &str) -> u64 {
        if !database_url.starts_with("postgres") {
            return 0;
        }
        parse_lsn(&berth_testkit::pg::PgCluster::shared().psql("postgres", "SELECT pg_current_wal_insert_lsn()"))
    }

    fn parse_lsn(s: &str) -> u64 {
        let (hi, lo) = s.trim().split_once('/').expect("an LSN");
        (u64::from_str_radix(hi, 16).unwrap() << 32) | u64::from_str_radix(lo, 16).unwrap()
    }

    /// On PostgreSQL: every byte of write-ahead log written since `since` (a
    /// [`postgres_wal_position`]), which holds every row any test wrote meanwhile (the WAL is
    /// flushed first), and the cluster's shared catalogs. If a segment of that stretch was
    /// already recycled, the test's whole database directory instead. Nothing on SQLite.
    #[track_caller]
    pub fn assert_postgres_clean(where_: &str, database_url: &str, since: u64) -> u64 {
        if !database_url.starts_with("postgres") {
            return 0;
        }
        let cluster = berth_testkit::pg::PgCluster::shared();
        let db = database_url.rsplit('/').next().unwrap_or_default().to_owned();
        let end = parse_lsn(&cluster.psql("postgres", "SELECT pg_current_wal_insert_lsn()"));
        // synchronous_commit is off: wait until the WAL writer has put it on disk.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while parse_lsn(&cluster.psql("postgres", "SELECT pg_current_wal_flush_lsn()")) < end {
            assert!(std::time::Instant::now() < deadline, "the WAL was not flushed");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let seg: u64 = cluster.psql("postgres", "SELECT setting FROM pg_settings WHERE name = 'wal_segment_size'").trim().parse().unwrap();
        let per_id = 0x1_0000_0000 / seg;
        let data = cluster.data_dir().to_owned();
        let (mut hits, mut read, mut recycled) = (Vec::new(), 0u64, false);
        let page = 8192;
        let from = since.saturating_sub(page) / page * page;
        for n in from / seg..=end / seg {
            let path = data.join("pg_wal").join(format!("{:08X}{:08X}{:08X}", 1, n / per_id, n % per_id));
            let Ok(bytes) = std::fs::read(&path) else {
                recycled = true;
                continue;
            };
            let a = if n == from / seg { (from % seg) as usize } else { 0 };
            let b = if n == end / seg { ((end % seg + 2 * page) as usize).min(bytes.len()) } else { bytes.len() };
            read += (b - a) as u64;
            hits.extend(scan(&format!("{where_}: {} bytes {a}..{b}", path.display()), &bytes[a..b], Source::File));
        }
        assert!(hits.is_empty(), "a secret is in PostgreSQL's write-ahead log:\n{}", report(&hits));
        let mut files = files_under(&data.join("global"), None);
        if recycled {
            let oid = cluster.psql("postgres", &format!("SELECT oid FROM pg_database WHERE datname = '{db}'"));
            files.extend(files_under(&data.join("base").join(oid.trim()), None));
        }
        read + assert_files_clean(&format!("{where_} (PostgreSQL {db})"), &files)
    }
}
