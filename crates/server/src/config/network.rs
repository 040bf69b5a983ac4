//! The outbound network settings: `[network]` (a proxy for every host and its exceptions) and
//! what an `[[integrations]]` entry adds for its host (a proxy of its own or none, a CA bundle,
//! a client certificate). Secrets (the proxy password, the client key) come from files or the
//! environment, never from the TOML text itself, and `Debug` never shows them.

use super::{ConfigError, EnvLookup};
use berth_net::{ClientIdentity, HostSettings, NoProxy, Proxy, ProxyChoice, ProxyRoute};
use secrecy::SecretString;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// `[network]` in the TOML file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NetworkFileConfig {
    /// `http://[user@]host:port`; `BERTH_PROXY` wins.
    proxy: Option<String>,
    /// Comma-separated, or a list; `BERTH_NO_PROXY` wins.
    no_proxy: Option<NoProxyList>,
    /// The proxy user's password; `BERTH_PROXY_PASSWORD` and `BERTH_PROXY_PASSWORD_FILE` win.
    proxy_password_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum NoProxyList {
    Text(String),
    List(Vec<String>),
}

impl NoProxyList {
    fn text(&self) -> String {
        match self {
            NoProxyList::Text(t) => t.clone(),
            NoProxyList::List(l) => l.join(","),
        }
    }
}

/// The keys an `[[integrations]]` entry adds for the way to its host.
#[derive(Debug, Default, Deserialize)]
pub(super) struct IntegrationNetFile {
    /// `http://[user@]host:port`, or `"none"` to reach this host directly.
    proxy: Option<String>,
    no_proxy: Option<NoProxyList>,
    proxy_password_file: Option<PathBuf>,
    /// PEM bundle of certificate authorities trusted for this host only.
    ca_file: Option<PathBuf>,
    /// PEM client certificate (with its chain) presented to this host.
    client_certificate: Option<PathBuf>,
    /// PEM private key of `client_certificate`.
    client_key: Option<PathBuf>,
}

impl IntegrationNetFile {
    fn is_empty(&self) -> bool {
        self.proxy.is_none()
            && self.no_proxy.is_none()
            && self.proxy_password_file.is_none()
            && self.ca_file.is_none()
            && self.client_certificate.is_none()
            && self.client_key.is_none()
    }
}

fn bad(message: String) -> ConfigError {
    ConfigError::Env { var: "BERTH_CONFIG", message }
}

fn read_file(path: &Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })
}

pub(super) fn read_secret(path: &Path) -> Result<SecretString, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
    Ok(SecretString::from(text.trim_end_matches(['\n', '\r']).to_owned()))
}

/// A proxy URL written in the TOML file must not hold a password: the file is configuration,
/// often readable by more people than the secret should be.
fn refuse_inline_password(text: &str, whose: &str) -> Result<(), ConfigError> {
    let with_scheme = if text.contains("://") { text.to_owned() } else { format!("http://{text}") };
    match url::Url::parse(&with_scheme) {
        Ok(u) if u.password().is_some() => Err(bad(format!(
            "{whose} proxy URL holds a password; write the user in the URL (http://user@host:port) and the password \
             in proxy_password_file or BERTH_PROXY_PASSWORD"
        ))),
        _ => Ok(()),
    }
}

/// `[network]` and the `BERTH_PROXY*` variables: the proxy for every host, if any.
pub(super) fn global_proxy(file: &NetworkFileConfig, env: EnvLookup<'_>) -> Result<Option<ProxyRoute>, ConfigError> {
    let password = match (env("BERTH_PROXY_PASSWORD"), env("BERTH_PROXY_PASSWORD_FILE")) {
        (Some(p), _) => Some(SecretString::from(p)),
        (None, Some(path)) => Some(read_secret(Path::new(&path))?),
        (None, None) => file.proxy_password_file.as_deref().map(read_secret).transpose()?,
    };
    let (text, var) = match (env("BERTH_PROXY"), &file.proxy) {
        (Some(t), _) => (t, "BERTH_PROXY"),
        (None, Some(t)) => {
            refuse_inline_password(t, "[network]")?;
            (t.clone(), "BERTH_CONFIG")
        }
        (None, None) => return Ok(None),
    };
    if text.trim().is_empty() || text.trim() == "none" {
        return Ok(None);
    }
    let proxy = Proxy::parse(&text, password).map_err(|m| ConfigError::Env { var, message: m })?;
    let no_proxy_text = env("BERTH_NO_PROXY").or_else(|| file.no_proxy.as_ref().map(NoProxyList::text));
    let no_proxy = NoProxy::parse(no_proxy_text.as_deref().unwrap_or(""))
        .map_err(|m| ConfigError::Env { var: "BERTH_NO_PROXY", message: m })?;
    Ok(Some(ProxyRoute { proxy, no_proxy }))
}

/// The settings of one integration's host, or `None` when it adds none.
pub(super) fn host_settings(host: &str, f: &IntegrationNetFile) -> Result<Option<HostSettings>, ConfigError> {
    if f.is_empty() {
        return Ok(None);
    }
    let whose = format!("the integration {host}'s");
    let proxy = match f.proxy.as_deref().map(str::trim) {
        None => {
            if f.no_proxy.is_some() || f.proxy_password_file.is_some() {
                return Err(bad(format!(
                    "the integration {host} sets no_proxy or proxy_password_file without its own proxy; set proxy \
                     too, or use [network] no_proxy"
                )));
            }
            ProxyChoice::Inherit
        }
        Some("none") | Some("") => ProxyChoice::Direct,
        Some(text) => {
            refuse_inline_password(text, &whose)?;
            let password = f.proxy_password_file.as_deref().map(read_secret).transpose()?;
            let proxy = Proxy::parse(text, password).map_err(|m| bad(format!("{whose} proxy: {m}")))?;
            let no_proxy = NoProxy::parse(&f.no_proxy.as_ref().map(NoProxyList::text).unwrap_or_default())
                .map_err(|m| bad(format!("{whose} no_proxy: {m}")))?;
            ProxyChoice::Via(ProxyRoute { proxy, no_proxy })
        }
    };
    let client_identity = match (&f.client_certificate, &f.client_key) {
        (Some(cert), Some(key)) => {
            Some(ClientIdentity { certificate_pem: read_file(cert)?, key_pem: read_secret(key)? })
        }
        (None, None) => None,
        _ => {
            return Err(bad(format!(
                "the integration {host} needs both client_certificate and client_key (PEM files), or neither"
            )))
        }
    };
    let ca_pem = f.ca_file.as_deref().map(read_file).transpose()?;
    Ok(Some(HostSettings { host: host.to_owned(), ca_pem, client_identity, proxy }))
}
