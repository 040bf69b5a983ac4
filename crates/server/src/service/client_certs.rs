//! A credential's own TLS client certificate (issue 14 §2: hosts that tie certificates to
//! users). Read and judged when it is saved (its key must be its key, it must not have
//! expired); its key sealed like every secret; opened right before a check or a verification
//! with that credential, which then runs over an HTTP client presenting it to every host in
//! place of the host's `[[integrations]]` certificate.

use super::checks::checker;
use super::{Error, Refusal, Result};
use crate::checks::Checker;
use crate::state::AppState;
use berth_core::{Code, CredentialKind};
use berth_forge::Forge;
use berth_git::GitClient;
use berth_net::{ClientIdentity, IdentityProblem};
use berth_proto::ClientCertificateInfo;
use berth_store::{ClientCertificateRow, CredentialRow, NewClientCertificate};
use chrono::Utc;
use secrecy::SecretString;

/// Reads a client certificate and key given with a credential of `kind`: both or neither;
/// only for the kinds used over HTTPS.
pub(crate) fn read(
    kind: CredentialKind,
    certificate: Option<String>,
    key: Option<String>,
) -> Result<Option<NewClientCertificate>> {
    let certificate = certificate.filter(|c| !c.trim().is_empty());
    let key = key.filter(|k| !k.trim().is_empty()).map(SecretString::from);
    let (certificate, key) = match (certificate, key) {
        (None, None) => return Ok(None),
        (Some(c), Some(k)) => (c, k),
        (Some(_), None) => {
            return Err(invalid(
                Code::ClientCertificateInvalid,
                "a client certificate needs its private key (client_key)".to_owned(),
                "give the certificate's private key (PEM) with it",
            ))
        }
        (None, Some(_)) => {
            return Err(invalid(
                Code::ClientCertificateInvalid,
                "a client key was given without its certificate (client_certificate)".to_owned(),
                "give the PEM certificate with its key",
            ))
        }
    };
    if kind == CredentialKind::SshKey {
        return Err(Error::invalid(
            "an SSH key credential cannot carry a TLS client certificate",
            "client certificates are for credentials used over HTTPS; leave both fields out",
        ));
    }
    match berth_net::read_client_identity(&certificate, &key, Utc::now()) {
        Ok(facts) => {
            Ok(Some(NewClientCertificate { pem: certificate, subject: facts.subject, not_after: facts.not_after, key }))
        }
        Err(IdentityProblem::Certificate(why)) => Err(invalid(
            Code::ClientCertificateInvalid,
            format!("the client certificate cannot be read: {why}"),
            "paste the whole PEM certificate (-----BEGIN CERTIFICATE----- … -----END CERTIFICATE-----)",
        )),
        Err(IdentityProblem::Key(why)) => Err(invalid(
            Code::ClientCertificateInvalid,
            format!("the client key cannot be used: {why}"),
            "paste the certificate's unencrypted private key in PEM (-----BEGIN PRIVATE KEY-----, RSA or EC)",
        )),
        Err(IdentityProblem::KeyMismatch) => Err(invalid(
            Code::ClientKeyMismatch,
            "the client key is not the client certificate's key (their public keys differ)".to_owned(),
            "give the private key the certificate was issued for",
        )),
        Err(IdentityProblem::Expired { not_after }) => Err(invalid(
            Code::ClientCertificateExpired,
            format!("the client certificate expired on {}", not_after.format("%Y-%m-%d %H:%M UTC")),
            "ask the host's administrators for a new client certificate and give it with its key",
        )),
    }
}

fn invalid(code: Code, message: String, remedy: &str) -> Error {
    Error::Invalid(Refusal::new(code, message, remedy))
}

/// What an update does to the client certificate: `None` nothing, `Some(None)` removes it,
/// `Some(Some(_))` replaces it.
pub(crate) fn change(
    kind: CredentialKind,
    certificate: Option<Option<String>>,
    key: Option<String>,
) -> Result<Option<Option<NewClientCertificate>>> {
    match certificate {
        None if key.is_some() => Err(invalid(
            Code::ClientCertificateInvalid,
            "a client key was given without its certificate (client_certificate)".to_owned(),
            "give the PEM certificate with its key",
        )),
        None => Ok(None),
        Some(None) if key.is_some() => Err(Error::invalid(
            "a client key was given while the client certificate is removed",
            "leave client_key out to remove the certificate, or give a certificate with it",
        )),
        Some(None) => Ok(Some(None)),
        Some(Some(c)) => match read(kind, Some(c), key)? {
            Some(new) => Ok(Some(Some(new))),
            None => Ok(Some(None)),
        },
    }
}

/// What answers show of it.
pub(crate) fn info(c: &ClientCertificateRow) -> ClientCertificateInfo {
    ClientCertificateInfo { subject: c.subject.clone(), expires_at: c.not_after }
}

/// How findings name a credential's certificate.
pub(crate) fn shown(cred: &CredentialRow, c: &ClientCertificateRow) -> String {
    format!(
        "the client certificate of credential {:?} ({}, valid until {})",
        cred.name,
        c.subject,
        c.not_after.date_naive()
    )
}

/// For the audit log: "client certificate CN=jo (until 2027-01-31)".
pub(crate) fn audited(c: &NewClientCertificate) -> String {
    format!("client certificate {} (until {})", c.subject, c.not_after.date_naive())
}

/// The Git client and REST adapters of a check with a credential that carries its own client
/// certificate: the server's, over an HTTP client that presents it.
pub(crate) struct OwnClients {
    git: GitClient,
    forge: Forge,
}

impl OwnClients {
    pub(crate) fn checker(&self) -> Checker<'_> {
        Checker { git: &self.git, forge: &self.forge }
    }
}

/// The clients a check with `cred` runs over: `Ok(None)` for the server's own (no credential,
/// or one without a client certificate); `Err(())` when its key does not open (logged; the
/// credential step then says the credential cannot be decrypted).
pub(crate) async fn clients_for(
    st: &AppState,
    cred: Option<&CredentialRow>,
) -> std::result::Result<Option<OwnClients>, ()> {
    let Some((cred, cert)) = cred.and_then(|c| c.client_certificate.as_ref().map(|cert| (c, cert))) else {
        return Ok(None);
    };
    let key = match st.store.credential_client_key(cred.id).await {
        Ok(Some(key)) => key,
        Ok(None) => {
            tracing::error!(credential = cred.id, "the credential's client key is missing");
            return Err(());
        }
        Err(e) => {
            tracing::error!(credential = cred.id, "cannot open the credential's client key: {e}");
            return Err(());
        }
    };
    let identity = ClientIdentity { certificate_pem: cert.pem.clone().into_bytes(), key_pem: key };
    match st.git.net().with_credential_identity(&identity, shown(cred, cert)) {
        Ok(net) => Ok(Some(OwnClients { forge: st.forge.with_net(&net), git: st.git.with_net(net) })),
        Err(e) => {
            tracing::error!(credential = cred.id, "cannot use the credential's client certificate: {}", e.message);
            Err(())
        }
    }
}

/// The checker for `cred` and the secret it may use: the server's own clients, or clients
/// presenting the credential's certificate; no secret when that certificate cannot be used.
pub(crate) async fn prepare(
    st: &AppState,
    cred: Option<&CredentialRow>,
    secret: Option<SecretString>,
) -> (Option<SecretString>, Option<OwnClients>) {
    match clients_for(st, cred).await {
        Ok(own) => (secret, own),
        Err(()) => (None, None),
    }
}

/// The server's checker, or the credential's own.
pub(crate) fn checker_of<'a>(st: &'a AppState, own: &'a Option<OwnClients>) -> Checker<'a> {
    own.as_ref().map_or_else(|| checker(st), OwnClients::checker)
}
