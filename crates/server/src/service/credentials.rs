//! Credentials: store, list, show, update (rotate) and delete. No answer ever carries the
//! secret; the vault seals it on the way in and only the check pipeline opens it.

use super::checks::recheck;
use super::paging::{self, Kind, PageRequest};
use super::verification;
use super::{client_certs, ssh_keys, Error, Refusal, Result};
use crate::auth::{Action, CurrentUser};
use crate::state::AppState;
use berth_core::credential::{self, CredentialRules, Expiry, ExpiryWarning};
use berth_core::words::plural;
use berth_core::{scopes, Capability};
use berth_core::{Check, CheckReason, Code, CredentialKind};
use berth_proto::{
    Credential, CredentialCreate, CredentialSelector, CredentialUpdate, CredentialVerify, ExpiryStatus, Page,
    RepositoryCheck, RepositoryRef, ScopeGap, ScopeNeed, Warning,
};
use berth_store::{CredentialPatch, CredentialRow, NewCredential, StoreError};
use chrono::Utc;
use secrecy::SecretString;

/// What needs attention on a repository now, from its credential: the expiry warning of
/// today (30, 7, 1 days before, or expired) and paused background checks.
pub(crate) fn warnings_of(cred: &CredentialRow, pause_after: i64) -> Vec<Warning> {
    let mut out = Vec::new();
    if let Some(w) = ExpiryWarning::of(cred.expires_on, Utc::now().date_naive()) {
        out.push(Warning { code: w.code(), message: w.message(&cred.name), remedy: w.remedy().to_owned() });
    }
    if let Some(at) = cred.checks_paused_at {
        out.push(Warning {
            code: Code::AuthFailed,
            message: format!(
                "background checks with credential {:?} are paused since {}: they failed authentication {} in a row \
                 (the limit is {}, [checks] pause_after_auth_failures), and polling on could lock the account",
                cred.name,
                at.format("%Y-%m-%d %H:%M UTC"),
                plural(cred.auth_failures, "time", "times"),
                pause_after
            ),
            remedy: "replace the token or fix the credential (editing it resumes the checks at once), or re-check a repository by hand".to_owned(),
        });
    }
    out
}

fn view(st: &AppState, row: CredentialRow, used_by: Vec<RepositoryRef>, used_by_count: i64) -> Credential {
    let today = Utc::now().date_naive();
    let (status, days) = match credential::expiry(row.expires_on, today) {
        Expiry::Unknown => (ExpiryStatus::Unknown, None),
        Expiry::Valid { days_left } => (ExpiryStatus::Valid, Some(days_left)),
        Expiry::ExpiresSoon { days_left } => (ExpiryStatus::ExpiresSoon, Some(days_left)),
        Expiry::Expired { days_ago } => (ExpiryStatus::Expired, Some(-days_ago)),
    };
    let wanted = &st.config.wanted_capabilities;
    let verification = verification::current(&row);
    // What the token lacks: the host's word when it said (granted scopes), else the scopes the
    // person recorded. Each gap says who needs the scope, so only what matters is a warning.
    let evidence = verification.granted_scopes.clone().or_else(|| (!row.scopes.is_empty()).then(|| row.scopes.clone()));
    let scope_gaps = match evidence {
        Some(granted) if row.kind == CredentialKind::BitbucketApiToken => scope_gaps(&granted, wanted),
        _ => Vec::new(),
    };
    let missing_scopes = if row.kind == CredentialKind::BitbucketApiToken {
        credential::missing_scopes(credential::REGISTRATION_SCOPES, &row.scopes)
            .into_iter()
            .map(str::to_owned)
            .collect()
    } else {
        Vec::new()
    };
    let expiry_warning = ExpiryWarning::of(row.expires_on, today).map(|w| berth_proto::Warning {
        code: w.code(),
        message: w.message(&row.name),
        remedy: w.remedy().to_owned(),
    });
    Credential {
        id: row.id,
        name: row.name,
        kind: row.kind,
        kind_label: row.kind.label().to_owned(),
        username: row.username,
        email: row.email,
        app_id: row.app_id,
        installation_id: row.installation_id,
        expires_on: row.expires_on,
        expiry_status: status.as_str().to_owned(),
        days_until_expiry: days,
        scopes: row.scopes,
        missing_scopes,
        scope_gaps,
        used_by,
        used_by_count,
        created_at: row.created_at,
        updated_at: row.updated_at,
        secret_updated_at: row.secret_updated_at,
        expiry_warning,
        auth_failures: row.auth_failures,
        checks_paused_at: row.checks_paused_at,
        host: row.host,
        verification,
        wanted_capabilities: wanted.clone(),
        fingerprint: row.public_key.as_deref().and_then(ssh_keys::fingerprint_of),
        public_key: row.public_key,
        client_certificate: row.client_certificate.as_ref().map(client_certs::info),
        rechecked: Vec::new(),
    }
}

/// Every Bitbucket scope the token lacks, with what it blocks and who needs it.
fn scope_gaps(granted: &[String], wanted: &[Capability]) -> Vec<ScopeGap> {
    let a = scopes::bitbucket_assessment(granted, wanted);
    let gap = |s: &&str, need: ScopeNeed| ScopeGap {
        scope: (*s).to_owned(),
        blocks: scopes::capabilities_of(s).into_iter().map(str::to_owned).collect(),
        need,
    };
    let mut out: Vec<ScopeGap> = a.missing_needed.iter().map(|s| gap(s, ScopeNeed::Needed)).collect();
    out.extend(a.missing_wanted.iter().map(|s| gap(s, ScopeNeed::Wanted)));
    out.extend(a.missing_other.iter().map(|s| gap(s, ScopeNeed::Other)));
    out
}

fn clean(s: Option<String>) -> Option<String> {
    s.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

fn clean_scopes(scopes: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = scopes.into_iter().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect();
    out.sort();
    out.dedup();
    out
}

/// A GitHub App's id and installation, checked: the id is required and numeric, the key must
/// read as an RSA private key (it is parsed, never shown); other kinds take neither field.
fn github_app_fields(
    kind: CredentialKind,
    app_id: Option<String>,
    installation_id: Option<i64>,
    secret: &str,
) -> Result<(Option<String>, Option<i64>)> {
    let ids = github_app_ids(kind, app_id, installation_id)?;
    if kind == CredentialKind::GithubApp {
        refuse_unusable_app_key(secret)?;
    }
    Ok(ids)
}

/// The id and installation alone (an edit of them keeps the stored key).
fn github_app_ids(
    kind: CredentialKind,
    app_id: Option<String>,
    installation_id: Option<i64>,
) -> Result<(Option<String>, Option<i64>)> {
    let invalid = |message: &str, remedy: &str| Err(Error::invalid(message.to_owned(), remedy.to_owned()));
    if kind != CredentialKind::GithubApp {
        if app_id.is_some() || installation_id.is_some() {
            return invalid(
                "app_id and installation_id belong to GitHub App credentials",
                "choose the kind github_app, or leave both out",
            );
        }
        return Ok((None, None));
    }
    let Some(id) = app_id.filter(|a| !a.is_empty() && a.len() <= 20 && a.chars().all(|c| c.is_ascii_digit())) else {
        return invalid(
            "a GitHub App credential needs the app's id (a number)",
            "copy the App ID from the app's settings page (General > About)",
        );
    };
    if installation_id.is_some_and(|i| i <= 0) {
        return invalid("the installation id must be a positive number", "leave it out to find it per owner");
    }
    Ok((Some(id), installation_id))
}

fn refuse_unusable_app_key(secret: &str) -> Result<()> {
    if let Err(e) = berth_forge::github_app::AppKey::from_pem(secret) {
        return Err(Error::Invalid(Refusal::new(
            Code::InvalidPrivateKey,
            format!("the GitHub App's private key cannot be used: {e}"),
            "paste the whole .pem file from the app's settings page (Private keys > Generate a private key)",
        )));
    }
    Ok(())
}

/// Store a credential. The secret is sealed by the vault and never shown again.
pub async fn create(st: &AppState, u: &CurrentUser, req: CredentialCreate) -> Result<Credential> {
    u.require(Action::CreateCredential)?;
    let username = clean(req.username);
    let email = clean(req.email);
    let scopes = clean_scopes(req.scopes.unwrap_or_default());
    let name = req.name.trim().to_owned();
    ssh_keys::refuse_for_other_kinds(req.kind, req.private_key.as_ref(), req.passphrase.as_ref(), req.generate)?;
    // An SSH key is judged by opening it, not by the length of a token.
    let ssh = req.kind == CredentialKind::SshKey;
    CredentialRules {
        name: &name,
        username: username.as_deref(),
        email: email.as_deref(),
        scopes: &scopes,
        secret_len: if ssh { 1 } else { req.secret.len() },
    }
    .validate(req.kind)?;
    refuse_app_password(req.kind, &req.secret)?;
    let (app_id, installation_id) = github_app_fields(req.kind, clean(req.app_id), req.installation_id, &req.secret)?;
    let host = clean(req.host).map(|h| verification::parse_host(st, &h)).transpose()?.map(|h| h.canonical());
    let client_certificate = client_certs::read(req.kind, req.client_certificate, req.client_key)?;
    let cert_detail = client_certificate.as_ref().map(|c| format!("; {}", client_certs::audited(c)));
    let (secret, public_key) = if ssh {
        let m = ssh_keys::material(&req.secret, req.private_key, req.passphrase, req.generate)?;
        (m.secret, Some(m.public_key))
    } else {
        (SecretString::from(req.secret), None)
    };
    let row = st
        .store
        .create_credential(NewCredential {
            name: &name,
            kind: req.kind,
            host: host.as_deref(),
            username: username.as_deref(),
            email: email.as_deref(),
            expires_on: req.expires_on,
            scopes: &scopes,
            secret: &secret,
            app_id: app_id.as_deref(),
            installation_id,
            public_key: public_key.as_deref(),
            client_certificate,
        })
        .await?;
    tracing::info!(credential = row.id, kind = row.kind.as_str(), "credential stored");
    let detail = format!(
        "kind {}; identity {}; expires {}; {} scope(s)",
        row.kind.as_str(),
        row.username.as_deref().or(row.email.as_deref()).unwrap_or("-"),
        row.expires_on.map_or_else(|| "-".to_owned(), |d| d.to_string()),
        row.scopes.len()
    ) + cert_detail.as_deref().unwrap_or_default();
    u.audit(&st.store, "credential.create", "credential", Some(row.id), &row.name, detail).await;
    // Saved first, verified second: a credential the host refuses is still stored (the answer
    // says so), so a person can fix its fields without typing the token again.
    let row = verified(st, row, None).await?;
    Ok(view(st, row, Vec::new(), 0))
}

/// Verifies the credential where it can be (see [`verification::run`]) and reads it back
/// with the verdict.
async fn verified(st: &AppState, row: CredentialRow, url: Option<&str>) -> Result<CredentialRow> {
    if verification::run(st, &row, url).await?.is_none() {
        return Ok(row);
    }
    Ok(st.store.get_credential(row.id).await?)
}

/// Verify a credential on its host, or at `url` (a clone URL also runs the Git steps), and
/// keep the verdict with it.
pub async fn verify(st: &AppState, u: &CurrentUser, id: i64, req: CredentialVerify) -> Result<Credential> {
    u.require(Action::UseCredential)?;
    let row = st.store.get_credential(id).await?;
    let no_url = req.url.as_deref().map(str::trim).filter(|u| !u.is_empty()).is_none();
    if no_url && row.host.is_none() && verification::stored(&row).and_then(|v| v.host).is_none() {
        return Err(Error::Invalid(Refusal::new(
            Code::InvalidInput,
            format!("credential {:?} names no host to verify it on", row.name),
            "give a URL on the host (a clone URL or a base URL such as https://bitbucket.org), or name the \
             credential's host",
        )));
    }
    let row = verified(st, row, req.url.as_deref()).await?;
    let v = verification::current(&row);
    let detail = format!("{} on {}: {}", v.status.as_str(), v.host.as_deref().unwrap_or("-"), v.code);
    u.audit(&st.store, "credential.verify", "credential", Some(id), &row.name, detail).await;
    with_usage(st, row).await
}

/// How many repositories a credential in a list names (`used_by`); `used_by_count` has them all.
pub const USED_BY_LISTED: i64 = 20;

/// Every credential by name, each with the first [`USED_BY_LISTED`] repositories that use it
/// and their number: a few queries whatever the number of repositories.
pub async fn list(st: &AppState, u: &CurrentUser) -> Result<Vec<Credential>> {
    u.require(Action::ReadCredentials)?;
    let rows = st.store.list_credentials().await?;
    listed(st, rows).await
}

/// What needs a person's attention across every credential, whichever page of them is shown:
/// how many are expired or expire within the warning window, and those whose background checks
/// are paused (the first hundred by name, and how many in all).
pub struct Attention {
    pub expiring: i64,
    pub paused: Vec<Credential>,
    pub paused_total: i64,
}

pub async fn attention(st: &AppState, u: &CurrentUser) -> Result<Attention> {
    u.require(Action::ReadCredentials)?;
    let last_day = Utc::now().date_naive() + chrono::Duration::days(berth_core::credential::EXPIRY_WARNING_DAYS);
    let ((expiring, paused_total), paused) =
        tokio::try_join!(st.store.credential_attention_counts(last_day), st.store.paused_credentials(100))?;
    Ok(Attention { expiring, paused: listed(st, paused).await?, paused_total })
}

/// Every credential's name, by name: the choices of a form that picks a credential.
pub async fn names(st: &AppState, u: &CurrentUser) -> Result<Vec<String>> {
    u.require(Action::ReadCredentials)?;
    Ok(st.store.credential_names().await?)
}

/// A page of credentials by name (case-insensitive), each as [`list`] shows it.
pub async fn page(st: &AppState, u: &CurrentUser, page: &PageRequest) -> Result<Page<Credential>> {
    u.require(Action::ReadCredentials)?;
    let after = page.key(Kind::Credentials)?;
    let limit = page.limit();
    let rows = st.store.credentials_page(after.as_deref(), limit + 1).await?;
    let total = st.store.count_credentials().await?;
    let shown = paging::page_of(rows, limit, total, Kind::Credentials, |c| c.name.clone(), |c| c);
    Ok(Page { items: listed(st, shown.items).await?, next: shown.next, total, total_exact: true })
}

async fn listed(st: &AppState, rows: Vec<CredentialRow>) -> Result<Vec<Credential>> {
    let ids: Vec<i64> = rows.iter().map(|c| c.id).collect();
    let counts = st.store.repository_counts_by_credential(&ids).await?;
    let mut out = Vec::with_capacity(rows.len());
    for c in rows {
        let n = counts.get(&c.id).copied().unwrap_or(0);
        let used = if n == 0 { Vec::new() } else { st.store.repositories_using_first(c.id, USED_BY_LISTED).await? };
        let used = used.into_iter().map(|(id, name)| RepositoryRef { id, name }).collect();
        out.push(view(st, c, used, n));
    }
    Ok(out)
}

async fn with_usage(st: &AppState, row: CredentialRow) -> Result<Credential> {
    let used: Vec<RepositoryRef> =
        st.store.repositories_using(row.id).await?.into_iter().map(|(id, name)| RepositoryRef { id, name }).collect();
    let n = i64::try_from(used.len()).unwrap_or(i64::MAX);
    Ok(view(st, row, used, n))
}

pub async fn show(st: &AppState, u: &CurrentUser, id: i64) -> Result<Credential> {
    u.require(Action::ReadCredentials)?;
    let row = st.store.get_credential(id).await?;
    with_usage(st, row).await
}

/// A repository re-checked after its credential's token was replaced.
pub struct Recheck {
    pub repository: RepositoryRef,
    pub check: Check,
}

/// Atlassian API tokens start with ATATT and app passwords with ATBB: an "API token" with the
/// app-password prefix is the retired kind, and would fail at its first request. Checked on
/// create and on every token replacement.
fn refuse_app_password(kind: CredentialKind, secret: &str) -> Result<()> {
    if kind == CredentialKind::BitbucketApiToken
        && berth_core::scopes::looks_like_app_password(kind, None, None, secret)
    {
        let retired = credential::app_password_retired();
        return Err(Error::Invalid(Refusal::new(
            retired.code,
            format!(
                "this looks like a Bitbucket app password (it starts with ATBB), not an API token. {}",
                retired.message
            ),
            retired.remedy,
        )));
    }
    Ok(())
}

/// Update a credential. Sending `secret` replaces the token and re-checks every repository
/// that uses it, answering each result; other edits make them due for the scheduler.
pub async fn update(
    st: &AppState,
    u: &CurrentUser,
    id: i64,
    req: CredentialUpdate,
) -> Result<(Credential, Vec<Recheck>)> {
    u.require(Action::UpdateCredential)?;
    let cur = st.store.get_credential(id).await?;
    let name = req.name.map(|n| n.trim().to_owned()).unwrap_or_else(|| cur.name.clone());
    let username = match req.username {
        Some(u) => clean(u),
        None => cur.username.clone(),
    };
    let email = match req.email {
        Some(e) => clean(e),
        None => cur.email.clone(),
    };
    let scopes = req.scopes.map(clean_scopes).unwrap_or_else(|| cur.scopes.clone());
    let host = match req.host {
        Some(h) => Some(clean(h).map(|h| verification::parse_host(st, &h)).transpose()?.map(|h| h.canonical())),
        None => None,
    };
    let host_changed = host.as_ref().is_some_and(|h| *h != cur.host);
    let cert_change = client_certs::change(cur.kind, req.client_certificate, req.client_key)?;
    let cert_changed =
        matches!(&cert_change, Some(Some(_))) || (cert_change.is_some() && cur.client_certificate.is_some());
    // A GitHub App's id or installation: checked as on create; the stored key stays.
    let (app_id, installation_id) = if req.app_id.is_some() || req.installation_id.is_some() {
        let app_id = req.app_id.map(|a| a.trim().to_owned()).or_else(|| cur.app_id.clone());
        github_app_ids(cur.kind, app_id, req.installation_id.unwrap_or(cur.installation_id))?
    } else {
        (cur.app_id.clone(), cur.installation_id)
    };
    let app_changed = app_id != cur.app_id || installation_id != cur.installation_id;
    ssh_keys::refuse_for_other_kinds(cur.kind, req.private_key.as_ref(), req.passphrase.as_ref(), false)?;
    // An SSH key credential's secret is a new private key (a key rotation).
    let ssh = if cur.kind == CredentialKind::SshKey && (req.private_key.is_some() || req.secret.is_some()) {
        let secret = req.secret.clone().unwrap_or_default();
        Some(ssh_keys::material(&secret, req.private_key.clone(), req.passphrase.clone(), false)?)
    } else {
        None
    };
    // The secret is optional on update; validate the other fields as if it were present.
    let secret_len = if cur.kind == CredentialKind::SshKey { 1 } else { req.secret.as_ref().map_or(1, String::len) };
    CredentialRules {
        name: &name,
        username: username.as_deref(),
        email: email.as_deref(),
        scopes: &scopes,
        secret_len,
    }
    .validate(cur.kind)?;
    if let Some(secret) = &req.secret {
        refuse_app_password(cur.kind, secret)?;
        if cur.kind == CredentialKind::GithubApp {
            github_app_fields(cur.kind, cur.app_id.clone(), cur.installation_id, secret)?;
        }
    }
    let rotated = req.secret.is_some() || ssh.is_some();
    let mut changed = Vec::new();
    if name != cur.name {
        changed.push(format!("name {:?} -> {:?}", cur.name, name));
    }
    if username != cur.username {
        changed.push("username".to_owned());
    }
    if email != cur.email {
        changed.push("email".to_owned());
    }
    if scopes != cur.scopes {
        changed.push(format!("scopes ({})", scopes.len()));
    }
    if let Some(x) = req.expires_on.filter(|x| *x != cur.expires_on) {
        changed.push(format!("expiry {}", x.map_or_else(|| "none".to_owned(), |d| d.to_string())));
    }
    if host_changed {
        changed.push(format!("host {}", host.clone().flatten().unwrap_or_else(|| "none".to_owned())));
    }
    if rotated {
        changed.push("token replaced".to_owned());
    }
    if app_id != cur.app_id {
        changed.push(format!("app id {}", app_id.as_deref().unwrap_or("-")));
    }
    if installation_id != cur.installation_id {
        changed
            .push(installation_id.map_or_else(|| "installation per owner".to_owned(), |i| format!("installation {i}")));
    }
    match &cert_change {
        Some(Some(c)) => changed.push(client_certs::audited(c)),
        Some(None) if cert_changed => changed.push("client certificate removed".to_owned()),
        _ => {}
    }
    let row = st
        .store
        .update_credential(
            id,
            CredentialPatch {
                name: Some(name),
                username: Some(username),
                email: Some(email),
                expires_on: req.expires_on,
                scopes: Some(scopes),
                public_key: ssh.as_ref().map(|m| Some(m.public_key.clone())),
                secret: match ssh {
                    Some(m) => Some(m.secret),
                    None => req.secret.map(SecretString::from),
                },
                host,
                app_id: app_changed.then(|| app_id.clone()).flatten(),
                installation_id: app_changed.then_some(installation_id),
                client_certificate: cert_change,
            },
        )
        .await?;
    tracing::info!(credential = id, rotated, "credential updated");
    let mut rechecks = Vec::new();
    if rotated {
        for (rid, rname) in st.store.repositories_using(id).await? {
            let row = match st.store.get_repository(rid).await {
                Ok(row) => row,
                // Deleted since it was listed: nothing to re-check, and the new token is saved.
                Err(StoreError::NotFound(_)) => continue,
                Err(e) => return Err(e.into()),
            };
            let check = recheck(st, &row, CheckReason::Credential).await?;
            rechecks.push(Recheck { repository: RepositoryRef { id: rid, name: rname }, check });
        }
        let ok = rechecks.iter().filter(|r| r.check.ok).count();
        changed.push(format!(
            "re-checked {}: {ok} ok, {} failed",
            berth_core::words::count(rechecks.len(), "repository", "repositories"),
            rechecks.len() - ok
        ));
    } else {
        // The store made every repository of this credential due; run them now, not at the
        // next poll.
        st.instance.wake();
    }
    // A new token, host, client certificate or app id is verified at once; other edits keep
    // the verdict.
    let row = if rotated || host_changed || cert_changed || app_changed { verified(st, row, None).await? } else { row };
    u.audit(&st.store, "credential.update", "credential", Some(id), &row.name, changed.join("; ")).await;
    let mut answer = with_usage(st, row).await?;
    answer.rechecked =
        rechecks.iter().map(|r| RepositoryCheck { repository: r.repository.clone(), check: r.check.clone() }).collect();
    Ok((answer, rechecks))
}

/// Delete a credential; refused while a repository uses it. Answers what was deleted.
pub async fn delete(st: &AppState, u: &CurrentUser, id: i64) -> Result<Credential> {
    u.require(Action::DeleteCredential)?;
    let row = st.store.get_credential(id).await?;
    st.store.delete_credential(id).await?;
    tracing::info!(credential = id, "credential deleted");
    u.audit(&st.store, "credential.delete", "credential", Some(id), &row.name, format!("kind {}", row.kind.as_str()))
        .await;
    Ok(view(st, row, Vec::new(), 0))
}

/// The credential a request names by id or name. An unknown one is a mistake in the request
/// (422), not a missing resource of the URL (404).
pub(crate) async fn resolve(st: &AppState, reference: &CredentialSelector) -> Result<CredentialRow> {
    let found = match reference {
        CredentialSelector::Id(id) => st.store.get_credential(*id).await,
        CredentialSelector::Name(name) => st.store.find_credential(name).await,
    };
    match found {
        Ok(c) => Ok(c),
        Err(StoreError::NotFound(_)) => Err(Error::Invalid(Refusal::new(
            Code::CredentialNotFound,
            match reference {
                CredentialSelector::Id(id) => format!("no credential with id {id}"),
                CredentialSelector::Name(name) => {
                    format!("no credential with id or name {:?}", name.chars().take(100).collect::<String>())
                }
            },
            "store the credential first, then give its id or name",
        ))),
        Err(e) => Err(e.into()),
    }
}
