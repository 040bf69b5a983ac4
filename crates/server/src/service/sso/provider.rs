//! The OpenID provider, through the `openidconnect` crate: discovery (cached), the
//! authorization URL with PKCE, `state` and `nonce`, the code exchange, the ID token's
//! verification (signature against the provider's published keys, issuer, audience, expiry,
//! nonce) and, when the ID token does not carry the role claim, the userinfo endpoint (whose
//! subject must be the ID token's). No JWT is parsed or checked by hand here.

use crate::config::OidcConfig;
use openidconnect::core::{
    CoreClient, CoreGenderClaim, CoreIdTokenVerifier, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm,
    CoreProviderMetadata, CoreResponseType,
};
use openidconnect::reqwest;
use openidconnect::{
    AdditionalClaims, AuthenticationFlow, AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret,
    CsrfToken, IdToken, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl,
    RequestTokenError, Scope, SubjectIdentifier, TokenResponse, UserInfoClaims,
};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// How long discovered metadata (endpoints and signing keys) is used before it is fetched
/// again; a signature that no known key verifies fetches it at once (the provider rotated).
const METADATA_TTL: Duration = Duration::from_secs(600);

/// Every claim beyond the standard ones, so the configured `role_claim` can be any of them.
#[derive(Debug, Clone, Deserialize, Serialize)]
struct OtherClaims {
    #[serde(flatten)]
    claims: serde_json::Map<String, serde_json::Value>,
}
impl AdditionalClaims for OtherClaims {}

type ProviderIdToken =
    IdToken<OtherClaims, CoreGenderClaim, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm>;

/// Why the provider did not vouch for anyone.
#[derive(Debug)]
pub enum ProviderError {
    /// Not reached, or its answer was not OpenID Connect.
    Unreachable(String),
    /// It answered with a refusal (its error code and words).
    Refused(String),
    /// The ID token did not verify.
    IdToken(String),
}

/// A sign-in sent to the provider: the URL, and what the browser must bring back.
pub struct Started {
    pub url: String,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

/// Who the provider vouched for.
#[derive(Debug)]
pub struct Identity {
    pub subject: String,
    pub preferred_username: Option<String>,
    pub email: Option<String>,
    /// The role claim's values; `None` when neither the ID token nor userinfo has the claim.
    pub role_values: Option<Vec<String>>,
}

pub struct Provider {
    cfg: OidcConfig,
    http: reqwest::Client,
    metadata: tokio::sync::Mutex<Option<(Instant, CoreProviderMetadata)>>,
}

/// A claim's values: a string, or a list of strings (other members ignored).
fn claim_values(v: Option<&serde_json::Value>) -> Option<Vec<String>> {
    match v? {
        serde_json::Value::String(s) => Some(vec![s.clone()]),
        serde_json::Value::Array(a) => Some(a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect()),
        _ => None,
    }
}

/// An error and its causes in one line (the crate's top-level words are often just "Request failed").
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

fn describe_claims_error(e: &ClaimsVerificationError, client_id: &str) -> String {
    match e {
        ClaimsVerificationError::InvalidAudience(why) => {
            format!("the ID token was issued for another client, not for this Berth (client_id {client_id:?}): {why}")
        }
        ClaimsVerificationError::InvalidIssuer(why) => format!("the ID token names another issuer: {why}"),
        ClaimsVerificationError::InvalidNonce(why) => {
            format!("the ID token's nonce is not the one this sign-in sent (a replayed token?): {why}")
        }
        ClaimsVerificationError::Expired(why) => format!("the ID token has expired: {why}"),
        ClaimsVerificationError::SignatureVerification(why) => {
            format!("the ID token's signature does not verify with the provider's published keys: {why}")
        }
        other => format!("the ID token did not verify: {other}"),
    }
}

/// The ID token's claims once verified (signature, issuer, audience, expiry, nonce), owned.
fn verified(
    id_token: &ProviderIdToken,
    verifier: &CoreIdTokenVerifier<'_>,
    nonce: &Nonce,
    role_claim: &str,
) -> Result<Identity, ClaimsVerificationError> {
    let claims = id_token.claims(verifier, nonce)?;
    Ok(Identity {
        subject: claims.subject().as_str().to_owned(),
        preferred_username: claims.preferred_username().map(|u| u.as_str().to_owned()),
        email: claims.email().map(|e| e.as_str().to_owned()),
        role_values: claim_values(claims.additional_claims().claims.get(role_claim)),
    })
}

impl Provider {
    pub fn new(cfg: OidcConfig, extra_ca_pem: &[Vec<u8>]) -> Result<Provider, String> {
        let mut b = reqwest::Client::builder()
            // Redirects are not followed: an endpoint that redirects is answered as it is.
            .redirect(reqwest::redirect::Policy::none())
            // No idle connections kept: sign-ins are rare, and a provider closing a kept
            // connection just as the code exchange reuses it would fail that sign-in.
            .pool_max_idle_per_host(0)
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(15))
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")));
        for pem in extra_ca_pem {
            for cert in reqwest::Certificate::from_pem_bundle(pem).map_err(|e| e.to_string())? {
                b = b.add_root_certificate(cert);
            }
        }
        let http = b.build().map_err(|e| chain(&e))?;
        Ok(Provider { cfg, http, metadata: tokio::sync::Mutex::new(None) })
    }

    pub fn config(&self) -> &OidcConfig {
        &self.cfg
    }

    /// The provider's metadata and keys: cached, or discovered from the issuer's
    /// `/.well-known/openid-configuration` (which must name the same issuer).
    async fn metadata(&self, refresh: bool) -> Result<CoreProviderMetadata, ProviderError> {
        let mut cached = self.metadata.lock().await;
        if let Some((at, md)) = cached.as_ref() {
            if !refresh && at.elapsed() < METADATA_TTL {
                return Ok(md.clone());
            }
        }
        let issuer = IssuerUrl::new(self.cfg.issuer.clone()).map_err(|e| ProviderError::Unreachable(e.to_string()))?;
        let md = CoreProviderMetadata::discover_async(issuer, &self.http).await.map_err(|e| {
            ProviderError::Unreachable(format!(
                "discovery at {}/.well-known/openid-configuration: {}",
                self.cfg.issuer,
                chain(&e)
            ))
        })?;
        *cached = Some((Instant::now(), md.clone()));
        Ok(md)
    }

    fn client(
        &self,
        md: CoreProviderMetadata,
    ) -> openidconnect::core::CoreClient<
        openidconnect::EndpointSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointMaybeSet,
        openidconnect::EndpointMaybeSet,
    > {
        CoreClient::from_provider_metadata(
            md,
            ClientId::new(self.cfg.client_id.clone()),
            Some(ClientSecret::new(self.cfg.client_secret.expose_secret().to_owned())),
        )
        .set_redirect_uri(RedirectUrl::from_url(self.cfg.redirect_url.clone()))
    }

    /// The provider's sign-in URL for a new sign-in, with a fresh `state`, `nonce` and PKCE
    /// challenge (S256).
    pub async fn start(&self) -> Result<Started, ProviderError> {
        let client = self.client(self.metadata(false).await?);
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut req = client.authorize_url(
            AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        for s in self.cfg.scopes.iter().filter(|s| s.as_str() != "openid") {
            req = req.add_scope(Scope::new(s.clone()));
        }
        let (url, state, nonce) = req.set_pkce_challenge(challenge).url();
        Ok(Started {
            url: url.to_string(),
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        })
    }

    /// Exchanges the code (with the PKCE verifier and the client secret), verifies the ID
    /// token against `nonce`, and reads the person's names and role claim.
    pub async fn finish(&self, code: &str, nonce: &str, pkce_verifier: &str) -> Result<Identity, ProviderError> {
        let md = self.metadata(false).await?;
        let client = self.client(md);
        let token = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| ProviderError::Unreachable(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_owned()))
            .request_async(&self.http)
            .await
            .map_err(|e| match e {
                RequestTokenError::ServerResponse(r) => ProviderError::Refused(format!(
                    "its token endpoint refused the code: {}{}",
                    r.error().as_ref(),
                    r.error_description().map(|d| format!(" ({d})")).unwrap_or_default()
                )),
                other => ProviderError::Unreachable(format!("its token endpoint: {}", chain(&other))),
            })?;
        let raw = token
            .id_token()
            .ok_or_else(|| ProviderError::IdToken("the token endpoint answered without an ID token".into()))?
            .to_string();
        let id_token: ProviderIdToken =
            raw.parse().map_err(|e| ProviderError::IdToken(format!("the ID token cannot be read: {e}")))?;
        let nonce = Nonce::new(nonce.to_owned());
        let role_claim = self.cfg.role_claim.as_str();
        let mut identity = match verified(&id_token, &client.id_token_verifier(), &nonce, role_claim) {
            Ok(i) => i,
            // Keys may have rotated since discovery: fetch them once more before refusing.
            Err(ClaimsVerificationError::SignatureVerification(_)) => {
                let fresh = self.client(self.metadata(true).await?);
                let keys = fresh.id_token_verifier();
                let again = verified(&id_token, &keys, &nonce, role_claim);
                again.map_err(|e| ProviderError::IdToken(describe_claims_error(&e, &self.cfg.client_id)))?
            }
            Err(e) => return Err(ProviderError::IdToken(describe_claims_error(&e, &self.cfg.client_id))),
        };
        if identity.role_values.is_none() || identity.preferred_username.is_none() {
            // Many providers put groups and names only in userinfo when an access token is issued.
            let subject = SubjectIdentifier::new(identity.subject.clone());
            if let Ok(req) = client.user_info(token.access_token().clone(), Some(subject)) {
                let info: UserInfoClaims<OtherClaims, CoreGenderClaim> = req
                    .request_async(&self.http)
                    .await
                    .map_err(|e| ProviderError::Unreachable(format!("its userinfo endpoint: {}", chain(&e))))?;
                if identity.role_values.is_none() {
                    identity.role_values = claim_values(info.additional_claims().claims.get(&self.cfg.role_claim));
                }
                if identity.preferred_username.is_none() {
                    identity.preferred_username = info.preferred_username().map(|u| u.as_str().to_owned());
                }
                if identity.email.is_none() {
                    identity.email = info.email().map(|e| e.as_str().to_owned());
                }
            }
        }
        Ok(identity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_role_claim_is_a_string_or_a_list_of_strings() {
        assert_eq!(claim_values(Some(&serde_json::json!("admins"))), Some(vec!["admins".to_owned()]));
        assert_eq!(claim_values(Some(&serde_json::json!(["a", 1, "b"]))), Some(vec!["a".to_owned(), "b".to_owned()]));
        assert_eq!(claim_values(Some(&serde_json::json!({"a": 1}))), None);
        assert_eq!(claim_values(None), None);
    }
}
