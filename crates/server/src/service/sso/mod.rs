//! Single sign-on for the web UI through an OpenID provider (`[oidc]`, issue 16 §4).
//!
//! [`start`] sends the browser to the provider with a fresh `state`, `nonce` and PKCE
//! challenge; the three travel back in the browser's own short-lived cookie
//! ([`PENDING_COOKIE`]), so whichever instance receives the callback can finish it and a
//! callback that did not start in this browser is refused. [`finish`] checks `state`, lets the
//! provider module exchange the code and verify the ID token, maps the role claim to a role,
//! makes the user at the first sign-in (known by issuer and subject, never by the name the
//! provider gives) or moves their role to what the claim says now, audits both, and starts a
//! web session. The provider's own second factor stands in for Berth's.

mod provider;

use crate::auth::{self, CurrentUser, Role, Via};
use crate::config::{Config, OidcConfig};
use crate::service::sessions::{self, NewWebSession};
use crate::service::{audit, Error, Refusal, Result};
use crate::state::AppState;
use berth_core::Code;
use berth_proto::AuditOutcome;
use berth_store::StoreError;
use provider::{Identity, Provider, ProviderError};
use secrecy::SecretString;
use std::sync::Arc;

/// The cookie that carries a started sign-in's `state`, `nonce` and PKCE verifier back to
/// the callback (HttpOnly, `SameSite=Lax` so the provider's redirect brings it).
pub const PENDING_COOKIE: &str = "berth_sso";
/// How long a started sign-in may take at the provider.
pub const PENDING_MAX_AGE_SECS: u64 = 600;
/// Where the provider sends people back (registered at the provider as the redirect URI).
pub const CALLBACK_PATH: &str = "/login/oidc/callback";

/// Single sign-on as configured: the provider and the rules.
pub struct Sso {
    provider: Provider,
}

impl Sso {
    /// From the configuration; `None` without `[oidc]`. Nothing is fetched yet.
    pub fn from_config(config: &Config) -> std::result::Result<Option<Arc<Sso>>, String> {
        let Some(cfg) = config.oidc.clone() else { return Ok(None) };
        Ok(Some(Arc::new(Sso { provider: Provider::new(cfg, &config.extra_ca_pem)? })))
    }

    pub fn config(&self) -> &OidcConfig {
        self.provider.config()
    }
}

/// A sign-in sent to the provider: where the browser goes, and the cookie value it keeps.
pub struct Started {
    pub authorize_url: String,
    pub pending: String,
}

/// What the provider sent the browser back with.
#[derive(Debug, Default)]
pub struct Callback {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

fn sso_of(st: &AppState) -> Result<&Arc<Sso>> {
    st.sso.as_ref().ok_or_else(|| {
        Error::Refused(Refusal::new(
            Code::NotFound,
            "single sign-on is not configured on this Berth",
            "sign in with your password, or ask an administrator to set up [oidc] (README: Single sign-on)",
        ))
    })
}

fn refused(code: Code, message: impl Into<String>, remedy: impl Into<String>) -> Error {
    Error::Unauthenticated(Refusal::new(code, message, remedy))
}

fn provider_error(e: ProviderError, display: &str) -> Error {
    match e {
        ProviderError::Unreachable(why) => refused(
            Code::SsoProviderUnreachable,
            format!("{display} could not be reached, or did not answer as an OpenID provider: {why}"),
            "try again in a minute; if it lasts, an administrator should check [oidc] issuer and that Berth can reach \
             the provider (a private CA goes in [git] extra_ca_files)",
        ),
        ProviderError::Refused(why) => refused(
            Code::SsoProviderError,
            format!("{display} refused the sign-in: {why}"),
            "start again with the sign-in button; if it is refused again, an administrator should compare [oidc] \
             client_id, the client secret and the redirect URI with the client registered at the provider",
        ),
        ProviderError::IdToken(why) => refused(
            Code::SsoIdTokenInvalid,
            format!("the ID token from {display} was refused, so nobody was signed in: {why}"),
            "start again with the sign-in button; if it happens again, an administrator should check that [oidc] \
             issuer and client_id are exactly those registered at the provider",
        ),
    }
}

/// `GET /login/oidc`: a new sign-in at the provider.
pub async fn start(st: &AppState) -> Result<Started> {
    let sso = sso_of(st)?;
    let s = sso.provider.start().await.map_err(|e| provider_error(e, &sso.config().display_name))?;
    Ok(Started { authorize_url: s.url, pending: format!("{}.{}.{}", s.state, s.nonce, s.pkce_verifier) })
}

/// The role a person's claim values give: the most capable mapped one, else `default_role`.
fn role_for(cfg: &OidcConfig, values: &[String]) -> Option<Role> {
    let rank = |r: Role| match r {
        Role::Admin => 3,
        Role::Registrar => 2,
        Role::Viewer => 1,
    };
    cfg.role_map
        .iter()
        .filter(|(group, _)| values.iter().any(|v| v == group))
        .map(|(_, r)| *r)
        .max_by_key(|r| rank(*r))
        .or(cfg.default_role)
}

/// The name a new user gets: the provider's `preferred_username`, else the e-mail address,
/// else the subject, whichever first fits Berth's rules for names.
fn username_for(identity: &Identity) -> Option<String> {
    [identity.preferred_username.as_deref(), identity.email.as_deref(), Some(identity.subject.as_str())]
        .into_iter()
        .flatten()
        .map(str::trim)
        .find(|n| {
            !n.is_empty() && n.chars().count() <= 64 && n.chars().all(|c| c.is_alphanumeric() || "._-@".contains(c))
        })
        .map(str::to_owned)
}

/// `GET /login/oidc/callback`: the provider's answer, checked against the sign-in this
/// browser started (`pending`, the cookie's value). Answers a web session, or why not.
pub async fn finish(
    st: &AppState,
    cb: Callback,
    pending: Option<&str>,
    remote: Option<String>,
) -> Result<NewWebSession> {
    let sso = sso_of(st)?;
    let cfg = sso.config();
    let display = cfg.display_name.as_str();
    // `state` first: nothing else of an answer this browser did not ask for is believed or shown.
    let mut parts = pending.unwrap_or_default().splitn(3, '.');
    let (expected, nonce, verifier) = (parts.next(), parts.next(), parts.next());
    let (Some(expected), Some(nonce), Some(verifier)) = (expected, nonce, verifier) else {
        return Err(refused(
            Code::SsoStateMismatch,
            "this single sign-on answer belongs to no sign-in started in this browser (or it was started more than 10 \
             minutes ago)",
            format!("start again with \"Sign in with {display}\" in the same browser"),
        ));
    };
    let state = cb.state.as_deref().unwrap_or_default();
    if expected.is_empty() || !auth::constant_time_eq(expected, state) {
        tracing::warn!("single sign-on answer refused: its state is not this browser's");
        return Err(refused(
            Code::SsoStateMismatch,
            "this single sign-on answer does not carry the state this browser's sign-in started with (tampered, \
             replayed, or meant for another browser), so it was not used",
            format!("start again with \"Sign in with {display}\"; if this keeps happening, someone may be trying to sign you in as them"),
        ));
    }
    if let Some(err) = cb.error.as_deref() {
        let err: String = err.chars().take(100).collect();
        let desc: String = cb.error_description.as_deref().unwrap_or_default().chars().take(300).collect();
        let why = if desc.is_empty() { err.clone() } else { format!("{err}: {desc}") };
        // The person said no, or the provider would not let them in: nothing for an
        // administrator of Berth to fix.
        if err == "access_denied" {
            return Err(refused(
                Code::SsoProviderError,
                format!("the sign-in was cancelled or refused at {display} ({why})"),
                format!(
                    "start again with \"Sign in with {display}\"; if {display} refuses you, ask its administrators to \
                     give you access to Berth"
                ),
            ));
        }
        return Err(provider_error(ProviderError::Refused(why), display));
    }
    let Some(code) = cb.code.as_deref().filter(|c| !c.is_empty()) else {
        return Err(provider_error(ProviderError::Refused("it answered without a code".into()), display));
    };
    let identity = sso.provider.finish(code, nonce, verifier).await.map_err(|e| provider_error(e, display))?;
    let issuer = cfg.issuer.as_str();
    let values = identity.role_values.clone().unwrap_or_default();
    let known = st.store.sso_user(issuer, &identity.subject).await?;
    let who = known
        .as_ref()
        .map(|u| u.username.clone())
        .or_else(|| username_for(&identity))
        .unwrap_or_else(|| identity.subject.chars().take(64).collect());
    let Some(role) = role_for(cfg, &values) else {
        let detail = format!("single sign-on: no role for {} {:?}", cfg.role_claim, values);
        audit::unproven(&st.store, &who, "auth.sso_refused", AuditOutcome::Denied, detail, remote.as_deref()).await?;
        let groups: Vec<&str> = cfg.role_map.iter().map(|(g, _)| g.as_str()).collect();
        return Err(Error::Refused(Refusal::new(
            Code::SsoNoRole,
            format!(
                "{display} signed you in as {who}, but none of your {} ({}) has a role in Berth",
                cfg.role_claim,
                if values.is_empty() { "none".to_owned() } else { values.join(", ") }
            ),
            format!("ask your administrator to add you to one of the groups Berth maps: {}", groups.join(", ")),
        )));
    };
    let user = match known {
        Some(user) => {
            if user.role != role.as_str() {
                let from = user.role.clone();
                st.store.set_role(user.id, role.as_str()).await.map_err(|e| match e {
                    StoreError::LastAdmin => Error::Refused(Refusal::new(
                        Code::SsoNoRole,
                        format!(
                            "{display} now gives {who} the role {}, but {who} is Berth's last administrator",
                            role.as_str()
                        ),
                        "make another user an administrator first (Admin > Users), or give this person back the \
                         administrators' group at the provider",
                    )),
                    other => other.into(),
                })?;
                let actor = CurrentUser::new(user.clone(), remote.clone(), Via::Web);
                let detail =
                    format!("role {from} -> {} (single sign-on: {} {:?})", role.as_str(), cfg.role_claim, values);
                actor.audit(&st.store, "user.update", "user", Some(user.id), &user.username, detail).await;
            }
            berth_store::User { role: role.as_str().to_owned(), ..user }
        }
        None => {
            let Some(name) = username_for(&identity) else {
                return Err(Error::Refused(Refusal::new(
                    Code::SsoAccountConflict,
                    format!("{display} gave no name Berth can use (preferred_username, email or subject)"),
                    "ask the provider's administrator to release preferred_username or email to Berth",
                )));
            };
            let unusable = auth::hash_password_async(SecretString::from(auth::secrets::random_b64(32))).await?;
            let user = match st.store.create_sso_user(&name, &unusable, role.as_str(), issuer, &identity.subject).await
            {
                Ok(u) => u,
                Err(StoreError::NameTaken { .. }) => {
                    let detail = format!("single sign-on: a local account is named {name}");
                    audit::unproven(
                        &st.store,
                        &name,
                        "auth.sso_refused",
                        AuditOutcome::Denied,
                        detail,
                        remote.as_deref(),
                    )
                    .await?;
                    return Err(Error::Refused(Refusal::new(
                        Code::SsoAccountConflict,
                        format!("Berth has a local account named {name}; it is not taken over by single sign-on"),
                        "sign in with that account's password, or ask an administrator to rename or delete the local \
                         account (Admin > Users) so single sign-on can make yours",
                    )));
                }
                Err(e) => return Err(e.into()),
            };
            let actor = CurrentUser::new(user.clone(), remote.clone(), Via::Web);
            let detail =
                format!("role {} (single sign-on, first sign-in: {} {:?})", role.as_str(), cfg.role_claim, values);
            actor.audit(&st.store, "user.create", "user", Some(user.id), &user.username, detail).await;
            user
        }
    };
    sessions::sso_signed_in(st, &user, remote, display).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(map: &[(&str, Role)], default_role: Option<Role>) -> OidcConfig {
        OidcConfig {
            issuer: "https://id.example.com".into(),
            client_id: "berth".into(),
            client_secret: SecretString::from("s".to_owned()),
            scopes: vec!["openid".into()],
            role_claim: "groups".into(),
            role_map: map.iter().map(|(g, r)| ((*g).to_owned(), *r)).collect(),
            default_role,
            display_name: "SSO".into(),
            local_sign_in: true,
            break_glass: vec![],
            redirect_url: url::Url::parse("https://berth.example.com/login/oidc/callback")
                .unwrap_or_else(|_| unreachable!()),
        }
    }

    #[test]
    fn the_most_capable_mapped_role_wins_and_the_default_covers_the_rest() {
        let c = cfg(&[("devs", Role::Registrar), ("ops", Role::Admin), ("all", Role::Viewer)], None);
        let v = |xs: &[&str]| xs.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(role_for(&c, &v(&["all", "ops", "devs"])), Some(Role::Admin));
        assert_eq!(role_for(&c, &v(&["devs", "marketing"])), Some(Role::Registrar));
        assert_eq!(role_for(&c, &v(&["marketing"])), None);
        assert_eq!(role_for(&cfg(&[], Some(Role::Viewer)), &v(&["marketing"])), Some(Role::Viewer));
    }

    #[test]
    fn a_new_user_is_named_by_the_first_usable_name() {
        let id = |p: Option<&str>, e: Option<&str>| Identity {
            subject: "248289761001".into(),
            preferred_username: p.map(str::to_owned),
            email: e.map(str::to_owned),
            role_values: None,
        };
        assert_eq!(username_for(&id(Some("alice"), Some("a@x.test"))).as_deref(), Some("alice"));
        assert_eq!(username_for(&id(Some("Alice Smith"), Some("a@x.test"))).as_deref(), Some("a@x.test"));
        assert_eq!(username_for(&id(None, None)).as_deref(), Some("248289761001"));
    }
}
