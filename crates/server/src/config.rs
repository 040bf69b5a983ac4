//! Configuration: defaults that need no set-up, a TOML file for the rest (`BERTH_CONFIG`),
//! and `BERTH_*` environment variables that win over both.

mod network;
mod oidc;

pub use oidc::OidcConfig;

use berth_core::{Capability, Integration, NetworkPolicy};
use berth_net::{HostSettings, ProxyRoute};
use secrecy::SecretString;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: DatabaseUrl,
    pub master_key_file: PathBuf,
    pub admin_password: Option<SecretString>,
    pub network: NetworkPolicy,
    pub integrations: Vec<Integration>,
    pub git_request_timeout: Duration,
    pub max_advertisement_bytes: u64,
    pub extra_ca_pem: Vec<Vec<u8>>,
    /// The proxy every host goes through unless excepted (`[network] proxy`, `BERTH_PROXY`).
    pub proxy: Option<ProxyRoute>,
    /// What integrations add for their hosts: a CA bundle, a client certificate, a proxy.
    pub hosts: Vec<HostSettings>,
    pub session_ttl: Duration,
    /// Believe `X-Forwarded-For` and `X-Forwarded-Proto`: only behind a proxy that sets them.
    pub trust_forwarded: bool,
    pub checks: ChecksConfig,
    /// The capabilities this deployment expects tokens to have beyond Berth's own job
    /// (`[scopes] want`): a missing scope of one of these warns; the rest is information.
    pub wanted_capabilities: Vec<Capability>,
    /// This process's name in leases and check history; unique per process by default.
    pub instance_id: String,
    /// Where people reach Berth (`public_url`, `BERTH_PUBLIC_URL`): the links in notifications.
    pub public_url: Option<url::Url>,
    pub notifications: NotificationsConfig,
    /// Single sign-on for the web UI (`[oidc]`), when configured.
    pub oidc: Option<OidcConfig>,
}

/// Sending notifications (`[notifications]` in the TOML file).
#[derive(Debug, Clone)]
pub struct NotificationsConfig {
    /// Off only where another instance sends them (`enabled = false`); events are still queued.
    pub enabled: bool,
    /// How often due deliveries are looked for.
    pub poll: Duration,
    /// How often credentials' expiry dates are compared with the 30, 7 and 1-day windows.
    pub expiry_scan: Duration,
    /// The wait before the first retry; each later one waits twice as long (at most an hour).
    pub first_retry: Duration,
    /// A delivery still failing this long after its event is given up.
    pub retry_for: Duration,
}

/// The database URL. It may carry a PostgreSQL password, so `Debug` shows it without one:
/// printing a `Config` can never put the password in a log line.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(pub String);

impl std::ops::Deref for DatabaseUrl {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<&str> for DatabaseUrl {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match url::Url::parse(&self.0) {
            Ok(mut u) if u.password().is_some() => {
                let _ = u.set_password(Some("***"));
                write!(f, "{:?}", u.as_str())
            }
            Ok(_) => write!(f, "{:?}", self.0),
            Err(_) => f.write_str("\"<not a URL>\""),
        }
    }
}

/// Background checks (`[checks]` in the TOML file).
#[derive(Debug, Clone)]
pub struct ChecksConfig {
    /// Off only where something else drives checks (`enabled = false`).
    pub enabled: bool,
    /// How often each repository is re-checked.
    pub interval: Duration,
    /// Each next check moves by up to this share of the interval, either way, so checks
    /// registered together spread out instead of hitting a host at once.
    pub jitter: f64,
    /// Checks running at once in this instance.
    pub concurrency: usize,
    /// Checks running at once against one host, in this instance.
    pub per_host: usize,
    /// How long a taken check stays this instance's before others may take it over; longer
    /// than any check can run (every request has a timeout).
    pub lease: Duration,
    /// How often the schedule is read when nothing wakes the scheduler earlier.
    pub poll: Duration,
    /// Authentication failures in a row after which a credential is no longer polled.
    pub pause_after_auth_failures: i64,
    /// How long check history is kept (the latest check of a repository always stays).
    pub history: Duration,
    /// How long `serve` waits for running checks when asked to stop.
    pub shutdown_grace: Duration,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChecksFileConfig {
    enabled: Option<bool>,
    interval_mins: Option<f64>,
    jitter_percent: Option<f64>,
    concurrency: Option<usize>,
    per_host: Option<usize>,
    lease_secs: Option<u64>,
    poll_secs: Option<f64>,
    pause_after_auth_failures: Option<i64>,
    history_days: Option<u64>,
    shutdown_grace_secs: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path} is invalid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{var} is invalid: {message}")]
    Env { var: &'static str, message: String },
}

/// The TOML file's shape. Every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    master_key_file: Option<PathBuf>,
    network_allow: Option<Vec<String>>,
    #[serde(default)]
    network: network::NetworkFileConfig,
    #[serde(default)]
    integrations: Vec<IntegrationEntry>,
    #[serde(default)]
    git: GitFileConfig,
    session_ttl_hours: Option<u64>,
    trust_forwarded: Option<bool>,
    #[serde(default)]
    checks: ChecksFileConfig,
    #[serde(default)]
    scopes: ScopesFileConfig,
    instance_id: Option<String>,
    public_url: Option<String>,
    #[serde(default)]
    notifications: NotificationsFileConfig,
    oidc: Option<oidc::OidcFileConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NotificationsFileConfig {
    enabled: Option<bool>,
    poll_secs: Option<f64>,
    expiry_scan_secs: Option<f64>,
    first_retry_secs: Option<f64>,
    retry_for_hours: Option<f64>,
}

fn notifications_config(f: &NotificationsFileConfig) -> Result<NotificationsConfig, ConfigError> {
    let secs = |v: Option<f64>, default: f64, key: &str| -> Result<Duration, ConfigError> {
        let v = v.unwrap_or(default);
        if !(v.is_finite() && v > 0.0) {
            return Err(ConfigError::Env {
                var: "BERTH_CONFIG",
                message: format!("[notifications] {key} must be above 0, not {v}"),
            });
        }
        Ok(Duration::from_secs_f64(v))
    };
    Ok(NotificationsConfig {
        enabled: f.enabled.unwrap_or(true),
        poll: secs(f.poll_secs, 2.0, "poll_secs")?,
        expiry_scan: secs(f.expiry_scan_secs, 600.0, "expiry_scan_secs")?,
        first_retry: secs(f.first_retry_secs, 30.0, "first_retry_secs")?,
        retry_for: secs(f.retry_for_hours.map(|h| h * 3600.0), 86_400.0, "retry_for_hours")?,
    })
}

/// `public_url`: an absolute http(s) URL; links are made by appending paths to it.
fn public_url(raw: Option<String>) -> Result<Option<url::Url>, ConfigError> {
    let Some(raw) = raw else { return Ok(None) };
    let bad = |why: &str| ConfigError::Env { var: "BERTH_PUBLIC_URL", message: format!("{raw:?} {why}") };
    let mut u = url::Url::parse(raw.trim()).map_err(|_| bad("is not a URL such as https://berth.example.com"))?;
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
        return Err(bad("is not an http(s) URL with a host"));
    }
    if !u.username().is_empty() || u.password().is_some() || u.query().is_some() || u.fragment().is_some() {
        return Err(bad("must not carry a user name, password, query or fragment"));
    }
    let path = u.path().trim_end_matches('/').to_owned();
    u.set_path(&path);
    Ok(Some(u))
}

/// An `[[integrations]]` entry: the host and its provider, and the way to it.
#[derive(Debug, Deserialize)]
struct IntegrationEntry {
    #[serde(flatten)]
    integration: Integration,
    #[serde(flatten)]
    net: network::IntegrationNetFile,
}

/// `[scopes]`: `want = ["webhooks", "pull_requests"]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScopesFileConfig {
    #[serde(default)]
    want: Vec<String>,
}

/// The wanted capabilities, each known and named once.
fn wanted_capabilities(names: &[String]) -> Result<Vec<Capability>, ConfigError> {
    let mut out = Vec::new();
    for name in names {
        let Some(c) = Capability::parse(name) else {
            let known: Vec<&str> = Capability::ALL.iter().map(|c| c.as_str()).collect();
            return Err(ConfigError::Env {
                var: "BERTH_CONFIG",
                message: format!("[scopes] want names {name:?}, which is not a capability; use: {}", known.join(", ")),
            });
        };
        if !out.contains(&c) {
            out.push(c);
        }
    }
    Ok(out)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct GitFileConfig {
    request_timeout_secs: Option<u64>,
    max_advertisement_mib: Option<u64>,
    /// PEM files with extra certificate authorities (a company CA for Bitbucket Data Center).
    #[serde(default)]
    extra_ca_files: Vec<PathBuf>,
}

/// Reads a variable, treating an empty value as unset.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

impl Config {
    /// Loads the configuration from the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::load(&|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    }

    pub fn load(env: EnvLookup<'_>) -> Result<Config, ConfigError> {
        let file = match env("BERTH_CONFIG") {
            Some(path) => {
                let path = PathBuf::from(path);
                let text = std::fs::read_to_string(&path)
                    .map_err(|source| ConfigError::Read { path: path.clone(), source })?;
                toml::from_str::<FileConfig>(&text)
                    .map_err(|e| ConfigError::Parse { path, message: e.message().to_owned() })?
            }
            None => FileConfig::default(),
        };

        let listen_s = env("BERTH_LISTEN").or(file.listen).unwrap_or_else(|| "127.0.0.1:8080".to_owned());
        let listen = listen_s.parse().map_err(|_| ConfigError::Env {
            var: "BERTH_LISTEN",
            message: format!("{listen_s:?} is not an address such as 127.0.0.1:8080"),
        })?;
        let data_dir =
            env("BERTH_DATA_DIR").map(PathBuf::from).or(file.data_dir).unwrap_or_else(|| PathBuf::from("berth-data"));
        let database_url = env("BERTH_DATABASE_URL")
            .or(file.database_url)
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("berth.db").display()));
        let master_key_file = env("BERTH_MASTER_KEY_FILE")
            .map(PathBuf::from)
            .or(file.master_key_file)
            .unwrap_or_else(|| data_dir.join("master.key"));
        let admin_password = match (env("BERTH_ADMIN_PASSWORD"), env("BERTH_ADMIN_PASSWORD_FILE")) {
            (Some(p), _) => Some(SecretString::from(p)),
            (None, Some(path)) => {
                let text = std::fs::read_to_string(&path)
                    .map_err(|source| ConfigError::Read { path: path.clone().into(), source })?;
                Some(SecretString::from(text.trim_end_matches(['\n', '\r']).to_owned()))
            }
            (None, None) => None,
        };
        let allow = env("BERTH_NETWORK_ALLOW").or_else(|| file.network_allow.map(|v| v.join(","))).unwrap_or_default();
        let network = NetworkPolicy::parse_allow_list(&allow)
            .map_err(|e| ConfigError::Env { var: "BERTH_NETWORK_ALLOW", message: e.to_string() })?;
        let mut hosts = Vec::new();
        for entry in &file.integrations {
            let host = entry.integration.host.trim();
            if host.is_empty() {
                return Err(ConfigError::Env {
                    var: "BERTH_CONFIG",
                    message: "an [[integrations]] entry has an empty host".into(),
                });
            }
            if let Some(settings) = network::host_settings(host, &entry.net)? {
                // The REST API may live on another host (api.github.example): same way there.
                let api_host =
                    entry.integration.api_url.as_deref().and_then(|u| url::Url::parse(u).ok()).and_then(|u| {
                        let h = u.host_str()?.to_owned();
                        Some(match u.port() {
                            Some(p) => format!("{h}:{p}"),
                            None => h,
                        })
                    });
                if let Some(api_host) = api_host.filter(|a| !a.eq_ignore_ascii_case(host)) {
                    hosts.push(berth_net::HostSettings { host: api_host, ..settings.clone() });
                }
                hosts.push(settings);
            }
        }
        let proxy = network::global_proxy(&file.network, env)?;
        let mut extra_ca_pem = Vec::new();
        for path in &file.git.extra_ca_files {
            extra_ca_pem.push(std::fs::read(path).map_err(|source| ConfigError::Read { path: path.clone(), source })?);
        }
        let git_timeout = Duration::from_secs(file.git.request_timeout_secs.unwrap_or(20).max(1));
        let public_url = public_url(env("BERTH_PUBLIC_URL").or(file.public_url))?;
        let oidc = oidc::oidc_config(file.oidc.as_ref(), public_url.as_ref(), env)?;
        Ok(Config {
            listen,
            data_dir,
            database_url: DatabaseUrl(database_url),
            master_key_file,
            admin_password,
            network,
            integrations: file.integrations.into_iter().map(|e| e.integration).collect(),
            git_request_timeout: git_timeout,
            max_advertisement_bytes: file.git.max_advertisement_mib.unwrap_or(32).max(1) * 1024 * 1024,
            extra_ca_pem,
            proxy,
            hosts,
            session_ttl: Duration::from_secs(3600 * file.session_ttl_hours.unwrap_or(12).max(1)),
            trust_forwarded: match env("BERTH_TRUST_FORWARDED") {
                Some(v) => v == "1" || v.eq_ignore_ascii_case("true"),
                None => file.trust_forwarded.unwrap_or(false),
            },
            checks: checks_config(&file.checks, git_timeout)?,
            wanted_capabilities: wanted_capabilities(&file.scopes.want)?,
            instance_id: env("BERTH_INSTANCE_ID").or(file.instance_id).unwrap_or_else(default_instance_id),
            public_url,
            notifications: notifications_config(&file.notifications)?,
            oidc,
        })
    }
}

fn checks_config(f: &ChecksFileConfig, git_timeout: Duration) -> Result<ChecksConfig, ConfigError> {
    let bad = |message: String| ConfigError::Env { var: "BERTH_CONFIG", message };
    let interval_mins = f.interval_mins.unwrap_or(60.0);
    if !(interval_mins.is_finite() && interval_mins > 0.0) {
        return Err(bad(format!("[checks] interval_mins must be above 0, not {interval_mins}")));
    }
    let jitter = f.jitter_percent.unwrap_or(10.0);
    if !(0.0..=50.0).contains(&jitter) {
        return Err(bad(format!("[checks] jitter_percent must be 0 to 50, not {jitter}")));
    }
    let poll = f.poll_secs.unwrap_or(5.0);
    if !(poll.is_finite() && poll > 0.0) {
        return Err(bad(format!("[checks] poll_secs must be above 0, not {poll}")));
    }
    // A check makes a few requests (REST identity, scopes, repository; Git), each bounded by
    // the request timeout; the default lease outlasts all of them together.
    let lease = f.lease_secs.map_or(git_timeout * 10, Duration::from_secs).max(Duration::from_secs(1));
    Ok(ChecksConfig {
        enabled: f.enabled.unwrap_or(true),
        interval: Duration::from_secs_f64(interval_mins * 60.0),
        jitter: jitter / 100.0,
        concurrency: f.concurrency.unwrap_or(32).clamp(1, 1024),
        per_host: f.per_host.unwrap_or(8).clamp(1, 256),
        lease,
        poll: Duration::from_secs_f64(poll),
        pause_after_auth_failures: f.pause_after_auth_failures.unwrap_or(3).max(1),
        history: Duration::from_secs(86_400 * f.history_days.unwrap_or(90).max(1)),
        shutdown_grace: Duration::from_secs(f.shutdown_grace_secs.unwrap_or(30)),
    })
}

/// `host-pid-random`: readable in logs, unique even when two hosts share a name.
fn default_instance_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "berth".to_owned());
    format!("{host}-{}-{:04x}", std::process::id(), rand::random::<u16>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Config::load(&move |k| map.get(k).cloned())
    }

    #[test]
    fn debug_never_shows_the_database_password() -> Result<(), ConfigError> {
        let c = load(&[("BERTH_DATABASE_URL", "postgres://berth:s3cret-db-pass@db.example.com/berth")])?;
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cret-db-pass"), "{shown}");
        assert!(shown.contains("postgres://berth:***@db.example.com/berth"), "{shown}");
        assert_eq!(
            &*c.database_url, "postgres://berth:s3cret-db-pass@db.example.com/berth",
            "the value itself is whole"
        );
        Ok(())
    }

    #[test]
    fn defaults_need_nothing() -> Result<(), ConfigError> {
        let c = load(&[])?;
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.database_url, "sqlite://berth-data/berth.db");
        assert_eq!(c.master_key_file, PathBuf::from("berth-data/master.key"));
        assert!(!c.network.allows("127.0.0.1".parse().unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]))));
        Ok(())
    }

    #[test]
    fn file_then_env() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("berth.toml");
        std::fs::write(
            &path,
            r#"
listen = "0.0.0.0:9000"
network_allow = ["10.0.0.0/8"]
[git]
request_timeout_secs = 5
[[integrations]]
host = "git.example.com:7990"
provider = "bitbucket-datacenter"
api_url = "https://git.example.com:7990/bitbucket/rest"
"#,
        )?;
        let p = path.display().to_string();
        let c = load(&[("BERTH_CONFIG", &p), ("BERTH_LISTEN", "127.0.0.1:1234")])?;
        assert_eq!(c.listen.to_string(), "127.0.0.1:1234");
        assert_eq!(c.git_request_timeout, Duration::from_secs(5));
        assert_eq!(c.integrations.len(), 1);
        assert!(c.network.allows("10.1.1.1".parse()?));
        assert!(matches!(load(&[("BERTH_NETWORK_ALLOW", "bogus")]), Err(ConfigError::Env { .. })));
        assert!(c.wanted_capabilities.is_empty(), "nothing beyond Berth's own job by default");
        Ok(())
    }

    #[test]
    fn scopes_want_names_capabilities() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("berth.toml");
        std::fs::write(&path, "[scopes]\nwant = [\"webhooks\", \"pull_requests\", \"webhooks\"]\n")?;
        let p = path.display().to_string();
        let c = load(&[("BERTH_CONFIG", &p)])?;
        assert_eq!(c.wanted_capabilities, [Capability::Webhooks, Capability::PullRequests]);
        std::fs::write(&path, "[scopes]\nwant = [\"web hooks\"]\n")?;
        let e = load(&[("BERTH_CONFIG", &p)]).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("\"web hooks\"") && e.contains("pull_requests"), "{e}");
        Ok(())
    }

    #[test]
    fn proxies_and_per_host_tls_are_read_with_their_secrets_from_files() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let pass = dir.path().join("proxy-password");
        std::fs::write(&pass, "s3cret-proxy-pass\n")?;
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "-----BEGIN CERTIFICATE-----\n")?;
        let path = dir.path().join("berth.toml");
        std::fs::write(
            &path,
            format!(
                "[network]\nproxy = \"http://berth@proxy.corp:3128\"\nproxy_password_file = \"{}\"\n\
                 no_proxy = [\"corp.example\", \"10.0.0.0/8\"]\n\
                 [[integrations]]\nhost = \"git.corp.example:7990\"\nprovider = \"bitbucket-datacenter\"\n\
                 ca_file = \"{}\"\nproxy = \"none\"\n",
                pass.display(),
                ca.display()
            ),
        )?;
        let p = path.display().to_string();
        let c = load(&[("BERTH_CONFIG", &p)])?;
        let route = c.proxy.clone().ok_or("no proxy")?;
        assert_eq!(route.proxy.shown(), "http://proxy.corp:3128");
        assert!(route.no_proxy.matches_host("git.corp.example") && route.no_proxy.matches_host("10.2.3.4"));
        assert_eq!(c.integrations.len(), 1);
        assert_eq!(c.hosts.len(), 1);
        assert_eq!(c.hosts[0].proxy, berth_net::ProxyChoice::Direct);
        assert!(c.hosts[0].ca_pem.is_some());
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cret-proxy-pass"), "{shown}");
        // The environment wins; a password in the file's URL is refused.
        let c = load(&[("BERTH_CONFIG", &p), ("BERTH_PROXY", "http://berth@other:8080"), ("BERTH_NO_PROXY", "*")])?;
        assert!(c.proxy.is_some_and(|r| r.proxy.shown() == "http://other:8080" && r.no_proxy.matches_host("x.y")));
        std::fs::write(&path, "[network]\nproxy = \"http://berth:inline@proxy.corp:3128\"\n")?;
        let e = load(&[("BERTH_CONFIG", &p)]).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("proxy_password_file") && !e.contains("inline"), "{e}");
        std::fs::write(&path, "[[integrations]]\nhost = \"h:1\"\nprovider = \"generic\"\nclient_key = \"k\"\n")?;
        let e = load(&[("BERTH_CONFIG", &p)]).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("client_certificate and client_key"), "{e}");
        Ok(())
    }
}
