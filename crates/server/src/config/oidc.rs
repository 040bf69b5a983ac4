//! `[oidc]`: single sign-on for the web UI through an OpenID Connect provider.
//!
//! ```toml
//! [oidc]
//! issuer = "https://id.example.com/realms/acme"
//! client_id = "berth"
//! client_secret_file = "/etc/berth/oidc-client-secret"   # or BERTH_OIDC_CLIENT_SECRET(_FILE)
//! scopes = ["openid", "profile", "email", "groups"]
//! role_claim = "groups"
//! role_map = { "platform-admins" = "admin", "developers" = "registrar" }
//! default_role = "viewer"          # absent: people without a mapped group are refused
//! display_name = "Acme SSO"        # the button reads "Sign in with Acme SSO"
//! local_sign_in = false            # passwords only for the break-glass names below
//! break_glass = ["admin"]
//! ```

use super::ConfigError;
use crate::auth::Role;
use secrecy::SecretString;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct OidcFileConfig {
    issuer: Option<String>,
    client_id: Option<String>,
    client_secret_file: Option<PathBuf>,
    scopes: Option<Vec<String>>,
    role_claim: Option<String>,
    #[serde(default)]
    role_map: BTreeMap<String, String>,
    default_role: Option<String>,
    display_name: Option<String>,
    local_sign_in: Option<bool>,
    #[serde(default)]
    break_glass: Vec<String>,
}

/// Single sign-on, checked when the configuration is loaded (nothing is fetched then: the
/// provider is discovered at the first sign-in, so Berth starts while the provider is away).
#[derive(Debug, Clone)]
pub struct OidcConfig {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: SecretString,
    /// Always holds `openid`.
    pub scopes: Vec<String>,
    /// The claim whose value (a string or a list of strings) names the person's groups.
    pub role_claim: String,
    /// Group to role; a person with several mapped groups gets the most capable role.
    pub role_map: Vec<(String, Role)>,
    pub default_role: Option<Role>,
    pub display_name: String,
    /// Password sign-in for everyone (`true`, the default) or only for `break_glass` names.
    pub local_sign_in: bool,
    pub break_glass: Vec<String>,
    /// `public_url` + `/login/oidc/callback`, registered at the provider.
    pub redirect_url: url::Url,
}

impl OidcConfig {
    /// Whether `username` may sign in with a password.
    pub fn password_allowed(&self, username: &str) -> bool {
        self.local_sign_in || self.break_glass.iter().any(|b| b == username.trim())
    }
}

fn bad(message: String) -> ConfigError {
    ConfigError::Env { var: "BERTH_CONFIG", message: format!("[oidc] {message}") }
}

fn role(name: &str, key: &str) -> Result<Role, ConfigError> {
    Role::parse(name.trim())
        .ok_or_else(|| bad(format!("{key} names {name:?}, which is not a role; use admin, registrar or viewer")))
}

/// The `[oidc]` table, if present: every key checked, the client secret read from its file or
/// the environment (never from the TOML file, which more people can read than the secret).
pub(super) fn oidc_config(
    f: Option<&OidcFileConfig>,
    public_url: Option<&url::Url>,
    env: super::EnvLookup<'_>,
) -> Result<Option<OidcConfig>, ConfigError> {
    let Some(f) = f else { return Ok(None) };
    let issuer =
        f.issuer.as_deref().map(str::trim).filter(|s| !s.is_empty()).ok_or_else(|| bad("needs issuer".into()))?;
    let parsed = url::Url::parse(issuer).map_err(|_| bad(format!("issuer {issuer:?} is not a URL")))?;
    let loopback = matches!(parsed.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    if !(parsed.scheme() == "https" || parsed.scheme() == "http" && loopback) {
        return Err(bad(format!("issuer {issuer:?} must be https (http only on this machine's loopback)")));
    }
    let client_id =
        f.client_id.as_deref().map(str::trim).filter(|s| !s.is_empty()).ok_or_else(|| bad("needs client_id".into()))?;
    let client_secret = match (
        env("BERTH_OIDC_CLIENT_SECRET"),
        env("BERTH_OIDC_CLIENT_SECRET_FILE"),
        &f.client_secret_file,
    ) {
        (Some(s), _, _) => SecretString::from(s),
        (None, Some(path), _) => super::network::read_secret(std::path::Path::new(&path))?,
        (None, None, Some(path)) => super::network::read_secret(path)?,
        (None, None, None) => return Err(bad(
            "needs the client secret: client_secret_file, BERTH_OIDC_CLIENT_SECRET_FILE or BERTH_OIDC_CLIENT_SECRET"
                .into(),
        )),
    };
    let Some(public_url) = public_url else {
        return Err(bad("needs public_url: the provider sends people back to public_url/login/oidc/callback".into()));
    };
    let redirect_url = url::Url::parse(&format!("{}/login/oidc/callback", public_url.as_str().trim_end_matches('/')))
        .map_err(|_| bad(format!("public_url {public_url} cannot carry the callback path")))?;
    let mut scopes: Vec<String> = f
        .scopes
        .clone()
        .unwrap_or_else(|| vec!["openid".into(), "profile".into(), "email".into(), "groups".into()])
        .into_iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    if !scopes.iter().any(|s| s == "openid") {
        scopes.insert(0, "openid".into());
    }
    let mut role_map = Vec::new();
    for (group, r) in &f.role_map {
        role_map.push((group.clone(), role(r, &format!("role_map.{group:?}"))?));
    }
    let default_role =
        f.default_role.as_deref().filter(|s| !s.trim().is_empty()).map(|r| role(r, "default_role")).transpose()?;
    if role_map.is_empty() && default_role.is_none() {
        return Err(bad("maps no group to a role: set role_map (and/or default_role)".into()));
    }
    let local_sign_in = f.local_sign_in.unwrap_or(true);
    let break_glass: Vec<String> =
        f.break_glass.iter().map(|b| b.trim().to_owned()).filter(|b| !b.is_empty()).collect();
    if !local_sign_in && break_glass.is_empty() {
        return Err(bad(
            "local_sign_in = false needs break_glass = [\"admin\"]: an administrator who can still sign in with a \
             password when the provider is down"
                .into(),
        ));
    }
    Ok(Some(OidcConfig {
        issuer: issuer.to_owned(),
        client_id: client_id.to_owned(),
        client_secret,
        scopes,
        role_claim: f.role_claim.as_deref().map(str::trim).filter(|s| !s.is_empty()).unwrap_or("groups").to_owned(),
        role_map,
        default_role,
        display_name: f
            .display_name
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .unwrap_or("single sign-on")
            .to_owned(),
        local_sign_in,
        break_glass,
        redirect_url,
    }))
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigError};
    use secrecy::ExposeSecret;

    /// Loads `toml` as the configuration file, with `BERTH_OIDC_CLIENT_SECRET` set.
    fn load(toml: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().map_err(|source| ConfigError::Read { path: "tempdir".into(), source })?;
        let path = dir.path().join("berth.toml");
        std::fs::write(&path, toml).map_err(|source| ConfigError::Read { path: path.clone(), source })?;
        let file = path.display().to_string();
        Config::load(&move |k| match k {
            "BERTH_CONFIG" => Some(file.clone()),
            "BERTH_OIDC_CLIENT_SECRET" => Some("client secret from the environment".into()),
            _ => None,
        })
    }

    const BASE: &str =
        "public_url = \"https://berth.example.com/\"\n[oidc]\nissuer = \"https://id.example.com/realms/acme\"\n\
                        client_id = \"berth\"\nrole_map = { \"ops\" = \"admin\", \"devs\" = \"Registrar\" }\n";

    fn refused(toml: &str) -> String {
        match load(toml) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_complete_table_gives_the_callback_the_roles_and_the_secret() -> Result<(), ConfigError> {
        let c = load(BASE)?;
        let o = c.oidc.as_ref().ok_or(ConfigError::Env { var: "test", message: "no [oidc]".into() })?;
        assert_eq!(o.redirect_url.as_str(), "https://berth.example.com/login/oidc/callback");
        assert_eq!(o.scopes, ["openid", "profile", "email", "groups"]);
        assert_eq!(o.role_claim, "groups");
        assert_eq!(o.client_secret.expose_secret(), "client secret from the environment");
        assert!(o.local_sign_in && o.password_allowed("anyone"));
        assert!(!format!("{c:?}").contains("client secret from the environment"), "Debug shows no secret");
        Ok(())
    }

    #[test]
    fn unsafe_or_incomplete_tables_are_refused_with_what_to_set() {
        assert!(refused(&format!("{BASE}local_sign_in = false\n")).contains("break_glass"));
        assert!(refused(&BASE.replace("https://id.", "http://id.")).contains("must be https"));
        assert!(
            refused(&BASE.replace("public_url = \"https://berth.example.com/\"\n", "")).contains("needs public_url")
        );
        assert!(refused(&BASE.replace("\"admin\"", "\"owner\"")).contains("not a role"));
        assert!(refused(&format!("{BASE}client_secret = \"inline\"\n")).contains("client_secret"));
        let glass = load(&format!("{BASE}local_sign_in = false\nbreak_glass = [\"root\"]\n"));
        let o = glass.ok().and_then(|c| c.oidc);
        assert!(o.is_some_and(|o| o.password_allowed("root") && !o.password_allowed("alice")));
    }
}
