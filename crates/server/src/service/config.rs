//! Configuration as code: make credentials, templates and repositories match a document
//! (`berth apply`), and write the current set as one (`berth export`).
//!
//! An apply is one change set: planned against the store, then made through the same use cases
//! a person calls (so a repository is created by registration and its check must pass), each
//! use case's own audit entry naming the change set, and one more entry for the whole set.
//! Secrets arrive beside the document (the CLI read them from their references); a given
//! secret is compared with the stored one by digest, and no plan, answer or audit entry ever
//! holds one. Deletions (`prune`) run last and in dependency order: repositories, templates,
//! credentials.

use super::templates::parse_prefix;
use super::{credentials, repositories, templates, Error, Refusal, Result};
use crate::auth::{Action, CurrentUser};
use crate::state::AppState;
use berth_core::{CloneUrl, Code};
use berth_proto::{
    ConfigAction, ConfigApply, ConfigChange, ConfigCredential, ConfigDocument, ConfigError, ConfigKind, ConfigPlan,
    ConfigRepository, ConfigStatus, ConfigTemplate, CredentialCreate, CredentialSelector, CredentialUpdate,
    RepositoryCreate, RepositoryUpdate, SecretRef, TemplateCreate,
};
use berth_store::{CredentialRow, RepositoryRow, TemplateRow};
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap, HashSet};

/// The environment variable an exported credential's secret is read from.
pub fn secret_env_name(credential: &str) -> String {
    let mut out = String::from("BERTH_SECRET_");
    out.extend(credential.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }));
    out
}

/// The current set as a document: secrets as references to environment variables.
pub async fn export(st: &AppState, u: &CurrentUser) -> Result<ConfigDocument> {
    u.require(Action::ReadCredentials)?;
    u.require(Action::ReadRepositories)?;
    let mut used_envs = HashSet::new();
    let credentials = st
        .store
        .list_credentials()
        .await?
        .into_iter()
        .map(|c| {
            // Two names that differ only in punctuation would share a variable: number the later.
            let base = secret_env_name(&c.name);
            let mut env = base.clone();
            let mut n = 2;
            while !used_envs.insert(env.clone()) {
                env = format!("{base}_{n}");
                n += 1;
            }
            ConfigCredential {
                name: c.name,
                kind: c.kind,
                username: c.username,
                email: c.email,
                host: c.host,
                expires_on: c.expires_on,
                scopes: c.scopes,
                app_id: c.app_id,
                installation_id: c.installation_id,
                secret: SecretRef::Env(env),
            }
        })
        .collect();
    let templates = st
        .store
        .list_templates()
        .await?
        .into_iter()
        .map(|t| ConfigTemplate { url_prefix: t.url_prefix, credential: t.credential_name })
        .collect();
    let repositories = st
        .store
        .list_repositories()
        .await?
        .into_iter()
        .map(|r| ConfigRepository {
            name: r.name,
            clone_url: r.clone_url,
            anonymous: r.credential_name.is_none(),
            credential: r.credential_name,
            default_branch: Some(r.default_branch),
        })
        .collect();
    Ok(ConfigDocument { credentials, templates, repositories })
}

/// One change to make, with what it needs.
struct Planned {
    change: ConfigChange,
    op: Op,
}

enum Op {
    CreateCredential(ConfigCredential),
    UpdateCredential(i64, CredentialUpdate),
    DeleteCredential(i64),
    CreateTemplate(String, String),
    /// Template id, old credential name, new credential name.
    RetargetTemplate(i64, String),
    DeleteTemplate(i64),
    CreateRepository(ConfigRepository),
    UpdateRepository(i64, RepositoryUpdate),
    DeleteRepository(i64),
    /// Planned already failed (the document cannot be applied for this object).
    Refused,
}

impl Op {
    fn action(&self) -> Option<Action> {
        Some(match self {
            Op::CreateCredential(_) => Action::CreateCredential,
            Op::UpdateCredential(..) => Action::UpdateCredential,
            Op::DeleteCredential(_) => Action::DeleteCredential,
            Op::CreateTemplate(..) | Op::RetargetTemplate(..) | Op::DeleteTemplate(_) => Action::ManageTemplates,
            Op::CreateRepository(_) => Action::RegisterRepository,
            Op::UpdateRepository(..) => Action::UpdateRepository,
            Op::DeleteRepository(_) => Action::DeleteRepository,
            Op::Refused => return None,
        })
    }
}

fn change(action: ConfigAction, kind: ConfigKind, name: &str, fields: Vec<String>) -> ConfigChange {
    ConfigChange {
        action: action.as_str().to_owned(),
        kind: kind.as_str().to_owned(),
        name: name.to_owned(),
        fields,
        status: ConfigStatus::Planned.as_str().to_owned(),
        error: None,
    }
}

fn invalid_config(message: impl Into<String>, remedy: impl Into<String>) -> Error {
    Error::Invalid(Refusal::new(Code::InvalidConfig, message, remedy))
}

fn refusal(code: Code, message: impl Into<String>, remedy: impl Into<String>) -> ConfigError {
    ConfigError { code, message: message.into(), remedy: remedy.into(), checks: Vec::new() }
}

/// Equal secrets, judged on their SHA-256 digests: the comparison takes the same time wherever
/// two secrets differ, and neither is copied anywhere but the hasher.
fn same_secret(a: &str, b: &str) -> bool {
    let (x, y) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    x.iter().zip(y.iter()).fold(0u8, |acc, (p, q)| acc | (p ^ q)) == 0
}

fn key(name: &str) -> String {
    name.trim().to_lowercase()
}

/// Refuses a document that names one object twice or points at a credential it cannot have.
fn validate(doc: &ConfigDocument, stored: &[CredentialRow]) -> Result<()> {
    let mut seen = HashSet::new();
    for c in &doc.credentials {
        if c.name.trim().is_empty() {
            return Err(invalid_config("a credential has an empty name", "give every credential a name"));
        }
        if !seen.insert(key(&c.name)) {
            return Err(invalid_config(format!("credential {:?} is named twice", c.name), "name each credential once"));
        }
    }
    let known = |name: &str| seen.contains(&key(name)) || stored.iter().any(|s| key(&s.name) == key(name));
    let mut prefixes = HashSet::new();
    for t in &doc.templates {
        let p = parse_prefix(&t.url_prefix)?.to_string();
        if !prefixes.insert(p.clone()) {
            return Err(invalid_config(format!("template {p} is named twice"), "name each URL prefix once"));
        }
        if !known(&t.credential) {
            return Err(invalid_config(
                format!("template {p} names credential {:?}, which neither the document nor Berth has", t.credential),
                "add the credential to the document's credentials",
            ));
        }
    }
    let mut repos = HashSet::new();
    for r in &doc.repositories {
        if !repos.insert(key(&r.name)) {
            return Err(invalid_config(format!("repository {:?} is named twice", r.name), "name each repository once"));
        }
        if r.anonymous && r.credential.is_some() {
            return Err(invalid_config(
                format!("repository {:?} names a credential and anonymous access at once", r.name),
                "keep `credential` to use it, or `anonymous: true` for a public repository",
            ));
        }
        if let Some(c) = r.credential.as_deref().filter(|c| !known(c)) {
            return Err(invalid_config(
                format!("repository {:?} names credential {c:?}, which neither the document nor Berth has", r.name),
                "add the credential to the document's credentials, or leave `credential` out to let a template choose",
            ));
        }
    }
    Ok(())
}

/// Apply a document (or, with `dry_run`, say what applying it would change).
pub async fn apply(st: &AppState, u: &CurrentUser, req: ConfigApply) -> Result<ConfigPlan> {
    u.require(Action::ApplyConfig)?;
    let stored_creds = st.store.list_credentials().await?;
    validate(&req.document, &stored_creds)?;
    let stored_templates = st.store.list_templates().await?;
    let stored_repos = st.store.list_repositories().await?;
    let (mut plan, unchanged) =
        plan(st, &req.document, &req.secrets, req.prune, &stored_creds, &stored_templates, &stored_repos).await?;
    // Every change needs its own permission: refuse the whole set before anything is made.
    for p in &plan {
        if let Some(a) = p.op.action() {
            u.require(a)?;
        }
    }
    let change_set = format!("{:016x}", rand::random::<u64>());
    if !req.dry_run {
        let mut actor = u.clone();
        actor.change_set = Some(change_set.clone());
        for p in &mut plan {
            let result = match std::mem::replace(&mut p.op, Op::Refused) {
                Op::Refused => continue,
                op => make(st, &actor, op, &req.secrets).await,
            };
            match result {
                Ok(()) => p.change.status = ConfigStatus::Done.as_str().to_owned(),
                Err(e) => {
                    p.change.status = ConfigStatus::Failed.as_str().to_owned();
                    p.change.error = Some(config_error(e));
                }
            }
        }
    }
    let changes: Vec<ConfigChange> = plan.into_iter().map(|p| p.change).collect();
    let failed = changes.iter().filter(|c| c.status == ConfigStatus::Failed.as_str()).count() as u64;
    if !req.dry_run {
        let summary: Vec<String> =
            changes.iter().map(|c| format!("{} {} {} ({})", c.action, c.kind, c.name, c.status)).collect();
        let detail = format!(
            "{} changes, {failed} failed, {unchanged} unchanged{}{}",
            changes.len(),
            if summary.is_empty() { "" } else { ": " },
            summary.join("; ")
        );
        u.audit(&st.store, "config.apply", "change_set", None, &change_set, detail).await;
    }
    Ok(ConfigPlan { change_set, dry_run: req.dry_run, changes, unchanged, failed })
}

/// The failure of one change in the words the API would give it.
fn config_error(e: Error) -> ConfigError {
    let api = crate::error::ApiError::from(e);
    ConfigError { code: api.code, message: api.message, remedy: api.remedy, checks: api.checks }
}

#[allow(clippy::too_many_arguments)]
async fn plan(
    st: &AppState,
    doc: &ConfigDocument,
    secrets: &BTreeMap<String, String>,
    prune: bool,
    creds: &[CredentialRow],
    tpls: &[TemplateRow],
    repos: &[RepositoryRow],
) -> Result<(Vec<Planned>, u64)> {
    let mut out = Vec::new();
    let mut unchanged = 0u64;
    let by_name: HashMap<String, &CredentialRow> = creds.iter().map(|c| (key(&c.name), c)).collect();

    for c in &doc.credentials {
        let secret = secrets.get(&c.name);
        match by_name.get(&key(&c.name)) {
            None => {
                let mut ch = change(ConfigAction::Create, ConfigKind::Credential, &c.name, Vec::new());
                let op = if secret.is_some() {
                    Op::CreateCredential(c.clone())
                } else {
                    ch.status = ConfigStatus::Failed.as_str().to_owned();
                    ch.error = Some(refusal(
                        Code::InvalidConfig,
                        format!("no secret was sent for the new credential {:?}", c.name),
                        format!("set the {} that the document names", c.secret.describe()),
                    ));
                    Op::Refused
                };
                out.push(Planned { change: ch, op });
            }
            Some(row) => {
                if row.kind != c.kind {
                    let mut ch = change(ConfigAction::Update, ConfigKind::Credential, &c.name, vec!["kind".into()]);
                    ch.status = ConfigStatus::Failed.as_str().to_owned();
                    ch.error = Some(refusal(
                        Code::InvalidConfig,
                        format!("credential {:?} is of kind {}; its kind cannot change", c.name, row.kind.as_str()),
                        "give the new kind another name, or delete the credential first",
                    ));
                    out.push(Planned { change: ch, op: Op::Refused });
                    continue;
                }
                let (fields, mut patch) = credential_diff(st, row, c)?;
                let mut fields = fields;
                if let Some(s) = secret {
                    let stored = st.store.credential_secret(row.id).await?;
                    if !same_secret(stored.expose_secret(), s) {
                        fields.push("secret".to_owned());
                        patch.secret = Some(s.clone());
                    }
                }
                if fields.is_empty() {
                    unchanged += 1;
                } else {
                    let ch = change(ConfigAction::Update, ConfigKind::Credential, &c.name, fields);
                    out.push(Planned { change: ch, op: Op::UpdateCredential(row.id, patch) });
                }
            }
        }
    }

    let mut doc_prefixes = HashSet::new();
    for t in &doc.templates {
        let prefix = parse_prefix(&t.url_prefix)?.to_string();
        doc_prefixes.insert(prefix.clone());
        match tpls.iter().find(|s| s.url_prefix == prefix) {
            None => out.push(Planned {
                change: change(
                    ConfigAction::Create,
                    ConfigKind::Template,
                    &prefix,
                    vec![format!("credential {}", t.credential)],
                ),
                op: Op::CreateTemplate(prefix, t.credential.clone()),
            }),
            Some(s) if key(&s.credential_name) != key(&t.credential) => out.push(Planned {
                change: change(
                    ConfigAction::Update,
                    ConfigKind::Template,
                    &prefix,
                    vec![format!("credential {} -> {}", s.credential_name, t.credential)],
                ),
                op: Op::RetargetTemplate(s.id, t.credential.clone()),
            }),
            Some(_) => unchanged += 1,
        }
    }

    for r in &doc.repositories {
        match repos.iter().find(|s| key(&s.name) == key(&r.name)) {
            None => out.push(Planned {
                change: change(ConfigAction::Create, ConfigKind::Repository, &r.name, Vec::new()),
                op: Op::CreateRepository(r.clone()),
            }),
            Some(s) => {
                let mut fields = Vec::new();
                let mut patch = RepositoryUpdate::default();
                match CloneUrl::parse(&r.clone_url, &st.config.integrations) {
                    Ok(url) if url.canonical() != s.clone_url => {
                        fields.push(format!("clone URL {} -> {}", s.clone_url, url.canonical()));
                        patch.clone_url = Some(url.canonical());
                    }
                    Ok(_) => {}
                    Err(e) => {
                        let mut ch = change(ConfigAction::Update, ConfigKind::Repository, &r.name, Vec::new());
                        ch.status = ConfigStatus::Failed.as_str().to_owned();
                        ch.error = Some(refusal(e.code(), e.to_string(), e.remedy()));
                        out.push(Planned { change: ch, op: Op::Refused });
                        continue;
                    }
                }
                let stored = s.credential_name.as_deref().unwrap_or("none");
                if let Some(c) =
                    r.credential.as_deref().filter(|c| s.credential_name.as_deref().map(key) != Some(key(c)))
                {
                    fields.push(format!("credential {stored} -> {c}"));
                    patch.credential = Some(CredentialSelector::Name(c.to_owned()));
                }
                if r.anonymous && s.credential_name.is_some() {
                    fields.push(format!("credential {stored} -> none"));
                    patch.anonymous = true;
                }
                if let Some(b) = r.default_branch.as_deref().filter(|b| *b != s.default_branch) {
                    fields.push(format!("default branch {} -> {b}", s.default_branch));
                    patch.default_branch = Some(b.to_owned());
                }
                if fields.is_empty() {
                    unchanged += 1;
                } else {
                    let ch = change(ConfigAction::Update, ConfigKind::Repository, &r.name, fields);
                    out.push(Planned { change: ch, op: Op::UpdateRepository(s.id, patch) });
                }
            }
        }
    }

    if prune {
        let doc_repos: HashSet<String> = doc.repositories.iter().map(|r| key(&r.name)).collect();
        for s in repos.iter().filter(|s| !doc_repos.contains(&key(&s.name))) {
            out.push(Planned {
                change: change(ConfigAction::Delete, ConfigKind::Repository, &s.name, Vec::new()),
                op: Op::DeleteRepository(s.id),
            });
        }
        for s in tpls.iter().filter(|s| !doc_prefixes.contains(&s.url_prefix)) {
            out.push(Planned {
                change: change(ConfigAction::Delete, ConfigKind::Template, &s.url_prefix, Vec::new()),
                op: Op::DeleteTemplate(s.id),
            });
        }
        let doc_creds: HashSet<String> = doc.credentials.iter().map(|c| key(&c.name)).collect();
        for s in creds.iter().filter(|s| !doc_creds.contains(&key(&s.name))) {
            out.push(Planned {
                change: change(ConfigAction::Delete, ConfigKind::Credential, &s.name, Vec::new()),
                op: Op::DeleteCredential(s.id),
            });
        }
    }
    Ok((out, unchanged))
}

/// The fields of a stored credential that differ from the document's (never the secret), and
/// the patch that makes them equal.
fn credential_diff(
    st: &AppState,
    row: &CredentialRow,
    c: &ConfigCredential,
) -> Result<(Vec<String>, CredentialUpdate)> {
    let clean = |s: &Option<String>| s.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned);
    let mut fields = Vec::new();
    let mut patch = CredentialUpdate::default();
    let (username, email) = (clean(&c.username), clean(&c.email));
    if username != row.username {
        fields.push("username".to_owned());
        patch.username = Some(username);
    }
    if email != row.email {
        fields.push("email".to_owned());
        patch.email = Some(email);
    }
    let host = clean(&c.host).map(|h| super::verification::parse_host(st, &h)).transpose()?.map(|h| h.canonical());
    if host != row.host {
        fields.push("host".to_owned());
        patch.host = Some(host);
    }
    if c.expires_on != row.expires_on {
        fields.push("expires_on".to_owned());
        patch.expires_on = Some(c.expires_on);
    }
    let mut scopes: Vec<String> = c.scopes.iter().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect();
    scopes.sort();
    scopes.dedup();
    let mut stored = row.scopes.clone();
    stored.sort();
    if scopes != stored {
        fields.push("scopes".to_owned());
        patch.scopes = Some(scopes);
    }
    // A GitHub App's id and installation (the use case refuses them on other kinds).
    let app_id = clean(&c.app_id);
    if app_id.is_some() && app_id != row.app_id {
        fields.push(format!("app id {} -> {}", row.app_id.as_deref().unwrap_or("-"), app_id.as_deref().unwrap_or("-")));
        patch.app_id = app_id;
    }
    if c.installation_id != row.installation_id && (c.installation_id.is_some() || row.app_id.is_some()) {
        let shown = |i: Option<i64>| i.map_or_else(|| "per owner".to_owned(), |i| i.to_string());
        fields.push(format!("installation {} -> {}", shown(row.installation_id), shown(c.installation_id)));
        patch.installation_id = Some(c.installation_id);
    }
    Ok((fields, patch))
}

/// Makes one change through the use case a person would call.
async fn make(st: &AppState, u: &CurrentUser, op: Op, secrets: &BTreeMap<String, String>) -> Result<()> {
    match op {
        Op::CreateCredential(c) => {
            let secret = secrets.get(&c.name).cloned().unwrap_or_default();
            let req = CredentialCreate {
                name: c.name,
                kind: c.kind,
                username: c.username,
                email: c.email,
                app_id: c.app_id,
                installation_id: c.installation_id,
                secret,
                expires_on: c.expires_on,
                scopes: Some(c.scopes),
                host: c.host,
                private_key: None,
                passphrase: None,
                generate: false,
                client_certificate: None,
                client_key: None,
            };
            credentials::create(st, u, req).await.map(drop)
        }
        Op::UpdateCredential(id, patch) => credentials::update(st, u, id, patch).await.map(drop),
        Op::DeleteCredential(id) => credentials::delete(st, u, id).await.map(drop),
        Op::CreateTemplate(prefix, credential) => {
            let req = TemplateCreate { url_prefix: prefix, credential: CredentialSelector::Name(credential) };
            templates::create(st, u, req).await.map(drop)
        }
        Op::RetargetTemplate(id, credential) => {
            templates::retarget(st, u, id, &CredentialSelector::Name(credential)).await.map(drop)
        }
        Op::DeleteTemplate(id) => templates::delete(st, u, id).await.map(drop),
        Op::CreateRepository(r) => {
            let req = RepositoryCreate {
                name: r.name,
                vcs: "git".to_owned(),
                clone_url: r.clone_url,
                credential: r.credential.map(CredentialSelector::Name),
                anonymous: r.anonymous,
                default_branch: r.default_branch,
                webhook: false,
            };
            repositories::register(st, u, req).await.map(drop)
        }
        Op::UpdateRepository(id, patch) => repositories::update(st, u, id, patch).await.map(drop),
        Op::DeleteRepository(id) => repositories::delete(st, u, id).await.map(drop),
        Op::Refused => Ok(()),
    }
}
