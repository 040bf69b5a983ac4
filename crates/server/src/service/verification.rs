//! Verifying a credential on its host: is it accepted, who does the host say it is, does it
//! have the scopes Berth needs and this deployment wants. The verdict is stored with the
//! credential and shown with every answer about it, so a wrong token, a token without
//! `read:repository` and a good one no longer look alike.

use super::checks::open_secret;
use super::{Error, Refusal, Result};
use crate::checks::{Target, VerifyTarget};
use crate::state::AppState;
use berth_core::{Check, CloneUrl, Code, HostBase, Step, StepName, StepStatus, UrlError};
use berth_proto::{HostIdentity, Verification, VerificationStatus};
use berth_store::CredentialRow;
use chrono::Utc;

/// Where a verification runs: a base URL on the host, or a repository's clone URL (then the
/// Git steps run too).
enum Place {
    Host(HostBase),
    Repository(CloneUrl),
}

impl Place {
    fn host(&self) -> HostBase {
        match self {
            Place::Host(h) => h.clone(),
            Place::Repository(u) => HostBase::of(u),
        }
    }
}

/// What a person typed as a host, parsed; the error speaks of a host, not a clone URL.
pub(crate) fn parse_host(st: &AppState, input: &str) -> Result<HostBase> {
    HostBase::parse(input, &st.config.integrations).map_err(|e| host_refused(input, &e))
}

fn host_refused(input: &str, e: &UrlError) -> Error {
    let shown: String = input.chars().take(100).collect();
    let (code, message) = match e {
        UrlError::SecretInUrl => (Code::SecretInUrl, "the host contains a password or token".to_owned()),
        _ => (
            Code::InvalidUrl,
            format!("{shown:?} is not a host: give a base URL such as https://bitbucket.org or host:port"),
        ),
    };
    Error::Invalid(Refusal::new(code, message, e.remedy()))
}

/// A clone URL names a repository; anything else is taken as the host.
fn place_of(st: &AppState, input: &str) -> Result<Place> {
    match CloneUrl::parse(input, &st.config.integrations) {
        Ok(u) => Ok(Place::Repository(u)),
        Err(UrlError::SecretInUrl) => Err(host_refused(input, &UrlError::SecretInUrl)),
        Err(_) => Ok(Place::Host(parse_host(st, input)?)),
    }
}

/// Where the credential is verified without a URL: its host, else where it was verified last.
fn default_place(st: &AppState, cred: &CredentialRow) -> Option<Place> {
    let last = stored(cred).and_then(|v| v.host);
    let host = cred.host.clone().or(last)?;
    HostBase::parse(&host, &st.config.integrations).ok().map(Place::Host)
}

/// The stored verification, if any (a row written by an older version that no longer parses
/// counts as never verified).
pub(crate) fn stored(cred: &CredentialRow) -> Option<Verification> {
    cred.verification.as_deref().and_then(|j| serde_json::from_str(j).ok())
}

/// The verification a credential answer carries: the stored one, or why there is none.
pub(crate) fn current(cred: &CredentialRow) -> Verification {
    if let Some(v) = stored(cred) {
        return v;
    }
    if cred.kind == berth_core::CredentialKind::SshKey {
        return Verification::unverified(
            "not verified yet: an SSH key is verified by a check of an SSH clone URL",
            "add the public key to the host, then verify it with a repository's SSH clone URL (or register one)",
        );
    }
    match &cred.host {
        Some(h) => Verification {
            host: Some(h.clone()),
            ..Verification::unverified(
                format!("not verified on {h} yet"),
                "verify it (the Test button, or berth credential verify NAME)",
            )
        },
        None => Verification::unverified(
            "not verified: the credential names no host",
            "name the host it is for (such as https://bitbucket.org), or verify it with a repository's clone URL",
        ),
    }
}

/// Verifies the credential at `url` (or its own host) and stores the verdict. `None` when
/// there is nowhere to verify it (no URL, no host).
pub(crate) async fn run(st: &AppState, cred: &CredentialRow, url: Option<&str>) -> Result<Option<Verification>> {
    let place = match url.map(str::trim).filter(|u| !u.is_empty()) {
        Some(u) => place_of(st, u)?,
        None => match default_place(st, cred) {
            Some(p) => p,
            None => return Ok(None),
        },
    };
    // An SSH key cannot be asked about on a host's REST API: only a check of an SSH clone URL
    // says whether the host accepts it.
    if cred.kind == berth_core::CredentialKind::SshKey && matches!(place, Place::Host(_)) {
        return Ok(None);
    }
    let host = place.host();
    let secret = open_secret(st, cred).await;
    let (secret, own) = super::client_certs::prepare(st, Some(cred), secret).await;
    let checker = super::client_certs::checker_of(st, &own);
    let v = match &place {
        Place::Host(h) => {
            let found = checker.verify(VerifyTarget { host: h, credential: cred, secret }).await;
            let identity = found.identity.map(identity_of);
            verdict(&host, found.steps, found.rest_checked, identity, found.granted_scopes, found.missing_scopes)
        }
        Place::Repository(u) => {
            let host_keys = super::checks::host_keys_for(st, u).await;
            let out = checker
                .run(Target { url: u, credential: Some(cred), secret, wanted_branch: None, chosen_by: None, host_keys })
                .await;
            let steps = ran(out.check);
            let identity = out.identity.map(identity_of);
            verdict(&host, steps, true, identity, out.granted_scopes, out.missing_scopes)
        }
    };
    let json = serde_json::to_string(&v).map_err(|e| Error::Internal(e.to_string()))?;
    if !st.store.record_credential_verification(cred.id, cred.secret_updated_at, &json).await? {
        // The token was replaced meanwhile; its own verification says what counts.
        tracing::info!(credential = cred.id, "verification of a replaced token dropped");
    }
    Ok(Some(v))
}

fn identity_of(i: berth_forge::HostIdentity) -> HostIdentity {
    HostIdentity { display_name: i.display_name, username: i.username, email: i.email }
}

/// The steps that ran: a verification does not list what it never tried. A missing default
/// branch is the repository's matter, not the credential's.
fn ran(check: Check) -> Vec<Step> {
    check.checks.into_iter().filter(|s| s.status != StepStatus::Skip && s.step != StepName::DefaultBranch).collect()
}

/// One verdict from the steps: the first failure, else the first warning, else what the host
/// said the credential is.
fn verdict(
    host: &HostBase,
    steps: Vec<Step>,
    rest_checked: bool,
    identity: Option<HostIdentity>,
    granted_scopes: Option<Vec<String>>,
    missing_scopes: Vec<String>,
) -> Verification {
    let worst = steps
        .iter()
        .find(|s| s.status == StepStatus::Fail)
        .or_else(|| steps.iter().find(|s| s.status == StepStatus::Warn));
    let (status, code, message, remedy) = match worst {
        Some(s) => {
            let status = if s.status == StepStatus::Fail { VerificationStatus::Fail } else { VerificationStatus::Warn };
            (status, s.code, format!("{}: {}", s.step.title(), s.message), s.remedy.clone())
        }
        None if !rest_checked => (
            VerificationStatus::Unverified,
            Code::Ok,
            format!(
                "{} has no REST API Berth can ask about a credential; only a repository can tell whether it works",
                host.canonical()
            ),
            "verify it with the clone URL of a repository on that host: Git decides".to_owned(),
        ),
        None => {
            let said: Vec<&str> = steps
                .iter()
                .filter(|s| matches!(s.step, StepName::ApiCredential | StepName::ApiScopes | StepName::Branches))
                .map(|s| s.message.as_str())
                .collect();
            (VerificationStatus::Ok, Code::Ok, said.join("; "), String::new())
        }
    };
    Verification {
        status,
        code,
        message,
        remedy,
        identity,
        granted_scopes,
        missing_scopes,
        host: Some(host.canonical()),
        checked_at: Some(Utc::now()),
        steps,
    }
}
