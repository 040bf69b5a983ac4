//! Admin > Credentials: the list, Create Credential, a credential's page, edits and token replacement.

use super::*;
use crate::auth::Action;
use crate::error::ApiError;
use crate::service::credentials;
use crate::service::paging::PageRequest;
use crate::state::AppState;
use crate::web::views::*;
use crate::web::{FormData, Posted, WebResult, WebUser};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use berth_core::credential::{self, FULL_SCOPES, REGISTRATION_SCOPES};
use berth_core::{Code, CredentialKind};
use berth_proto::{
    Credential, CredentialCreate, CredentialUpdate, CredentialVerify, ScopeNeed, Verification, VerificationStatus,
};
use chrono::NaiveDate;

fn credential_row(c: &Credential) -> CredentialRow {
    let (expires, note) = match (c.expires_on, c.days_until_expiry) {
        (None, _) => ("no expiry set".to_owned(), String::new()),
        (Some(d), Some(n)) if n < 0 => (d.to_string(), format!("expired {} days ago", -n)),
        (Some(d), Some(0)) => (d.to_string(), "expires today".to_owned()),
        (Some(d), Some(n)) if c.expiry_status == "expires_soon" => (d.to_string(), format!("expires in {n} days")),
        (Some(d), _) => (d.to_string(), String::new()),
    };
    CredentialRow {
        id: c.id,
        name: c.name.clone(),
        kind_label: c.kind_label.clone(),
        identity: match (&c.username, &c.email) {
            _ if c.app_id.is_some() => match c.installation_id {
                Some(i) => format!("app {}, installation {i}", c.app_id.as_deref().unwrap_or_default()),
                None => format!("app {}, installation per owner", c.app_id.as_deref().unwrap_or_default()),
            },
            (Some(u), Some(e)) => format!("{u} ({e})"),
            (Some(u), None) => u.clone(),
            (None, Some(e)) => e.clone(),
            (None, None) => "token only".to_owned(),
        },
        expires,
        expiry_status: c.expiry_status.clone(),
        expiry_note: note,
        used_by: usize::try_from(c.used_by_count).unwrap_or(c.used_by.len()),
        used_by_names: c.used_by.iter().map(|r| (r.id, r.name.clone())).collect(),
        scopes: c.scopes.clone(),
        missing_scopes: c.missing_scopes.clone(),
        secret_updated: when(c.secret_updated_at),
        expiry_warning: c.expiry_warning.as_ref().map(WarningView::from),
        auth_failures: c.auth_failures,
        paused_since: c.checks_paused_at.map(when).unwrap_or_default(),
        paused_ago: c.checks_paused_at.map(ago).unwrap_or_default(),
        host: c.host.clone().unwrap_or_default(),
        public_key: c.public_key.clone().unwrap_or_default(),
        fingerprint: c.fingerprint.clone().unwrap_or_default(),
        client_certificate: c
            .client_certificate
            .as_ref()
            .map(|x| format!("{} (until {})", x.subject, x.expires_at.format("%Y-%m-%d")))
            .unwrap_or_default(),
        verification: verification_view(&c.verification),
        host_identity: c.verification.identity.as_ref().map(berth_proto::HostIdentity::describe).unwrap_or_default(),
        wanted: c.wanted_capabilities.iter().map(|w| w.label().to_owned()).collect(),
        scope_gaps: c
            .scope_gaps
            .iter()
            .map(|g| {
                let need = match g.need {
                    ScopeNeed::Needed => "needed",
                    ScopeNeed::Wanted => "wanted",
                    ScopeNeed::Other => "other",
                };
                (g.scope.clone(), need.to_owned(), g.blocks.join(", "))
            })
            .collect(),
    }
}

fn verification_view(v: &Verification) -> VerificationView {
    let label = match v.status {
        VerificationStatus::Ok => "Verified",
        VerificationStatus::Warn => "Verified, with a warning",
        VerificationStatus::Fail => "Verification failed",
        VerificationStatus::Unverified => "Not verified",
    };
    VerificationView {
        status: v.status.as_str().to_owned(),
        label: label.to_owned(),
        code: if v.code == berth_core::Code::Ok { String::new() } else { v.code.as_str().to_owned() },
        message: v.message.clone(),
        remedy: v.remedy.clone(),
        checked_on: v.checked_at.map(|t| t.format("%Y-%m-%d").to_string()).unwrap_or_default(),
        checked: v.checked_at.map(when).unwrap_or_default(),
        host: v.host.clone().unwrap_or_default(),
        steps: steps(&v.steps),
    }
}

/// The flash after a save or a test: the verdict in one sentence.
fn verdict_flash(c: &Credential) -> (&'static str, String) {
    let v = &c.verification;
    let on = v.host.as_deref().map(|h| format!(" on {h}")).unwrap_or_default();
    let said = v.message.trim_end_matches('.');
    match v.status {
        VerificationStatus::Ok => ("ok", format!("Verified{on}: {said}.")),
        VerificationStatus::Warn => ("warn", format!("Verified{on}, with a warning: {said}.")),
        VerificationStatus::Fail => ("error", format!("Verification failed{on}: {said}.")),
        // Its message already says why it was not verified ("not verified: …").
        VerificationStatus::Unverified => {
            let mut chars = said.chars();
            let first = chars.next().map(|c| c.to_uppercase().collect::<String>()).unwrap_or_default();
            ("info", format!("{first}{}.", chars.as_str()))
        }
    }
}

/// The hosts a credential may be for: this deployment's integrations, then the cloud hosts.
fn host_choices(st: &AppState, chosen: &str) -> Vec<Choice> {
    let mut hosts: Vec<(String, String)> = vec![(String::new(), "None (verify it later with a clone URL)".to_owned())];
    for i in &st.config.integrations {
        hosts.push((i.host.clone(), format!("{} ({})", i.host, i.provider)));
    }
    for (h, label) in
        [("https://bitbucket.org", "Bitbucket Cloud (bitbucket.org)"), ("https://github.com", "GitHub (github.com)")]
    {
        hosts.push((h.to_owned(), label.to_owned()));
    }
    hosts.into_iter().map(|(value, label)| Choice { selected: value == chosen, value, label }).collect()
}

/// Credentials on one page of Admin > Credentials.
pub const CREDENTIALS_PAGE: i64 = 50;

pub async fn credentials(State(st): State<AppState>, wu: WebUser, q: Q) -> WebResult {
    let page =
        PageRequest { after: q.0.get("after").filter(|a| !a.is_empty()).cloned(), limit: Some(CREDENTIALS_PAGE) };
    let (list, attention) =
        tokio::try_join!(credentials::page(&st, &wu.cu, &page), credentials::attention(&st, &wu.cu))
            .map_err(fail(&wu))?;
    let mut l = layout(&wu, "Credentials", "credentials");
    if let Some(name) = q.0.get("created") {
        let verdict = q.0.get("verdict").map(|v| format!(" {v}")).unwrap_or_default();
        let kind = match q.0.get("verdict_kind").map(String::as_str) {
            Some("error") => "error",
            Some("warn") => "warn",
            _ => "ok",
        };
        l = flash(
            l,
            kind,
            format!("Saved credential {name}. Its token is encrypted and will not be shown again.{verdict}"),
        );
    } else if let Some(name) = q.0.get("deleted") {
        l = flash(l, "ok", format!("Deleted credential {name}."));
    } else if let Some(prefix) = q.0.get("template_added") {
        l = flash(l, "ok", format!("Added credential template {prefix}."));
    } else if let Some(prefix) = q.0.get("template_deleted") {
        l = flash(l, "ok", format!("Deleted credential template {prefix}."));
    } else if let Some(why) = q.0.get("template_error") {
        l = flash(l, "error", format!("The template was not added: {why}"));
    }
    let soon = usize::try_from(attention.expiring).unwrap_or(0);
    if soon > 0 && l.flash.is_empty() {
        l = flash(
            l,
            "error",
            format!(
                "{} expired or expire within {} days: replace their tokens.",
                berth_core::words::count(soon, "credential", "credentials"),
                credential::EXPIRY_WARNING_DAYS
            ),
        );
    }
    let can_create = wu.cu.may(Action::CreateCredential);
    let can_test = wu.cu.may(Action::UseCredential);
    let templates =
        super::templates::section(&st, &wu, q.0.get("match").map(String::as_str)).await.map_err(fail(&wu))?;
    ok(&CredentialsPage {
        l,
        creds: list.items.iter().map(credential_row).collect(),
        total: list.total,
        can_create,
        can_test,
        paused: attention.paused_total,
        paused_creds: attention.paused.iter().map(credential_row).collect(),
        templates,
        next: list.next.map(|n| format!("/credentials?after={}", enc(&n))),
        first: page.after.is_some().then(|| "/credentials".to_owned()),
    })
}

const KINDS: [CredentialKind; 6] = [
    CredentialKind::BitbucketApiToken,
    CredentialKind::AccessToken,
    CredentialKind::UsernamePassword,
    CredentialKind::GithubApp,
    CredentialKind::SshKey,
    CredentialKind::BitbucketAppPassword,
];

/// The scope Bitbucket's `GET /2.0/user` needs to say who a token belongs to. The product
/// page does not list it; the form offers it as optional.
const USER_SCOPE: &str = "read:user:bitbucket";

/// The scope checklist of Create Credential and of a credential's edit form: the product page's
/// scopes, the optional user scope, then any other scope stored (so an edit drops none unseen).
fn scope_boxes(chosen: &[String]) -> Vec<ScopeBox> {
    let offered = FULL_SCOPES.iter().copied().chain([USER_SCOPE]);
    let others = chosen.iter().map(String::as_str).filter(|c| *c != USER_SCOPE && !FULL_SCOPES.contains(c));
    offered
        .chain(others)
        .map(|s| ScopeBox {
            name: s.to_owned(),
            checked: chosen.iter().any(|c| c == s),
            required: REGISTRATION_SCOPES.contains(&s),
            optional: s == USER_SCOPE,
        })
        .collect()
}

fn credential_new_page(st: &AppState, wu: &WebUser, form: Option<&FormData>) -> CredentialNewPage {
    let get = |k: &str| form.map(|f| f.get(k)).unwrap_or_default();
    let kind = form.and_then(|f| CredentialKind::parse(&f.get("kind"))).unwrap_or(CredentialKind::BitbucketApiToken);
    let chosen: Vec<String> =
        form.map(|f| f.all("scopes")).unwrap_or_else(|| REGISTRATION_SCOPES.iter().map(|s| (*s).to_owned()).collect());
    CredentialNewPage {
        l: layout(wu, "Create Credential", "credentials"),
        name: get("name"),
        kinds: KINDS
            .iter()
            .map(|k| Choice { value: k.as_str().into(), label: k.label().into(), selected: *k == kind })
            .collect(),
        username: get("username"),
        email: get("email"),
        expires_on: get("expires_on"),
        scopes: scope_boxes(&chosen),
        problem: None,
        field: "",
        retired_on: credential::APP_PASSWORDS_RETIRED_ON.into(),
        app_password_selected: kind == CredentialKind::BitbucketAppPassword,
        hosts: host_choices(st, &get("host")),
        wanted: st.config.wanted_capabilities.iter().map(|w| w.label().to_owned()).collect(),
        app_id: get("app_id"),
        installation_id: get("installation_id"),
        client_certificate: get("client_certificate"),
    }
}

/// Create Credential shows a refusal beside the field at fault when one is (the form's script
/// keeps the typed token, which the server never echoes back).
impl FormPage for CredentialNewPage {
    fn show_problem(&mut self, problem: Problem) {
        self.field = match problem.code.as_str() {
            "name_taken" => "name",
            "app_password_retired" if self.app_password_selected => "kind",
            "app_password_retired" => "secret",
            _ => self.field,
        };
        self.problem = Some(problem);
    }
}

/// The field the core's credential rules blame for `form`, the same rules the use case ran.
fn rule_field(form: &FormData) -> &'static str {
    let Some(kind) = CredentialKind::parse(&form.get("kind")) else { return "kind" };
    let (username, email, scopes) = (form.opt("username"), form.opt("email"), form.all("scopes"));
    let rules = credential::CredentialRules {
        name: &form.get("name"),
        username: username.as_deref(),
        email: email.as_deref(),
        scopes: &scopes,
        secret_len: form.get("secret").len(),
    };
    // The scope list has no single element to mark: its refusal stays in the box above the form.
    match rules.validate(kind) {
        Err(e) if e.field != "scopes" => e.field,
        _ => "",
    }
}

pub async fn credential_form(State(st): State<AppState>, wu: WebUser) -> WebResult {
    wu.cu.require(Action::CreateCredential).map_err(fail(&wu))?;
    ok(&credential_new_page(&st, &wu, None))
}

fn parse_date(s: Option<String>) -> Result<Option<NaiveDate>, ApiError> {
    match s {
        None => Ok(None),
        Some(v) => NaiveDate::parse_from_str(&v, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| ApiError::invalid(format!("{v:?} is not a date"), "use the date picker or YYYY-MM-DD")),
    }
}

pub async fn credential_create(State(st): State<AppState>, p: Posted) -> WebResult {
    let wu = &p.user;
    wu.cu.require(Action::CreateCredential).map_err(fail(wu))?;
    let mut page = credential_new_page(&st, wu, Some(&p.form));
    let req = (|| -> Result<CredentialCreate, ApiError> {
        let kind = CredentialKind::parse(&p.form.get("kind"))
            .ok_or_else(|| ApiError::invalid("choose a Credential Type", "pick one from the list"))?;
        Ok(CredentialCreate {
            name: p.form.get("name"),
            kind,
            username: p.form.opt("username"),
            email: p.form.opt("email"),
            app_id: p.form.opt("app_id").filter(|_| kind == CredentialKind::GithubApp),
            installation_id: match p.form.opt("installation_id").filter(|_| kind == CredentialKind::GithubApp) {
                None => None,
                Some(i) => Some(i.trim().parse::<i64>().map_err(|_| {
                    ApiError::invalid(
                        "the installation id must be a number",
                        "leave it empty to find the installation on each repository's owner",
                    )
                })?),
            },
            // A GitHub App's key is several lines: its own text area.
            secret: if kind == CredentialKind::GithubApp { p.form.get("private_key") } else { p.form.get("secret") },
            expires_on: parse_date(p.form.opt("expires_on"))?,
            scopes: Some(p.form.all("scopes")).filter(|_| kind == CredentialKind::BitbucketApiToken),
            host: p.form.opt("host"),
            // The SSH fields count only for an SSH key: hidden fields of another type are ignored.
            // The SSH key's text area is `ssh_private_key`, apart from the GitHub App's key.
            private_key: p.form.opt("ssh_private_key").filter(|_| kind == CredentialKind::SshKey),
            passphrase: p.form.opt("passphrase").filter(|_| kind == CredentialKind::SshKey),
            generate: kind == CredentialKind::SshKey && p.form.opt("generate").is_some(),
            // Hidden fields of an SSH key's form are ignored, as above.
            client_certificate: p.form.opt("client_certificate").filter(|_| kind != CredentialKind::SshKey),
            client_key: p.form.opt("client_key").filter(|_| kind != CredentialKind::SshKey),
        })
    })();
    let result = match req {
        Ok(req) => credentials::create(&st, &wu.cu, req).await.map_err(ApiError::from),
        Err(e) => Err(e),
    };
    match result {
        // An SSH key's public key is what the person needs next (to add to the host): its
        // page shows it, with the verdict.
        Ok(c) if c.kind == CredentialKind::SshKey => {
            let (kind, verdict) = verdict_flash(&c);
            Ok(see_other(&format!("/credentials/{}?created=1&verdict={}&verdict_kind={kind}", c.id, enc(&verdict))))
        }
        // The verdict right after Save, in the flash of the list that shows its badge.
        Ok(c) => {
            let (kind, verdict) = verdict_flash(&c);
            Ok(see_other(&format!(
                "/credentials?created={}&verdict={}&verdict_kind={kind}",
                enc(&c.name),
                enc(&verdict)
            )))
        }
        Err(e) => {
            page.field = match e.code {
                Code::InvalidInput if parse_date(p.form.opt("expires_on")).is_err() => "expires_on",
                Code::InvalidInput => rule_field(&p.form),
                _ => "",
            };
            form_error(wu, e, async { Ok::<_, ApiError>(page) }).await
        }
    }
}

async fn credential_page(st: &AppState, wu: &WebUser, id: i64) -> Result<CredentialPage, ApiError> {
    let c = credentials::show(st, &wu.cu, id).await?;
    Ok(CredentialPage {
        l: layout(wu, &c.name, "credentials"),
        expires_on: c.expires_on.map(|d| d.to_string()).unwrap_or_default(),
        username: c.username.clone().unwrap_or_default(),
        email: c.email.clone().unwrap_or_default(),
        c: credential_row(&c),
        can_edit: wu.cu.may(Action::UpdateCredential),
        can_delete: wu.cu.may(Action::DeleteCredential),
        can_test: wu.cu.may(Action::UseCredential),
        kind: c.kind.as_str().to_owned(),
        scopes: scope_boxes(&c.scopes),
        app_id: c.app_id.clone().unwrap_or_default(),
        installation_id: c.installation_id.map(|i| i.to_string()).unwrap_or_default(),
        rechecks: Vec::new(),
        rechecked: false,
        problem: None,
    })
}

pub async fn credential(State(st): State<AppState>, wu: WebUser, Path(id): Path<i64>, q: Q) -> WebResult {
    let mut page = credential_page(&st, &wu, id).await.map_err(fail(&wu))?;
    if q.0.contains_key("saved") {
        page.l = flash(std::mem::take(&mut page.l), "ok", "Saved.");
    } else if q.0.contains_key("created") {
        // As on the list after Create Credential: the verdict, in its own colour.
        let kind = match q.0.get("verdict_kind").map(String::as_str) {
            Some("error") => "error",
            Some("warn") => "warn",
            _ => "ok",
        };
        let verdict = q.0.get("verdict").map(|v| format!(" {v}")).unwrap_or_default();
        let text = format!(
            "Saved credential {}. Its private key is encrypted and will not be shown again; add its public key \
             below to the host.{verdict}",
            page.c.name
        );
        page.l = flash(std::mem::take(&mut page.l), kind, text);
    }
    ok(&page)
}

pub async fn credential_token(State(st): State<AppState>, Path(id): Path<i64>, p: Posted) -> WebResult {
    let wu = &p.user;
    let req = CredentialUpdate {
        secret: Some(p.form.get("secret")),
        expires_on: p.form.opt("expires_on").map(|d| parse_date(Some(d))).transpose().map_err(fail(wu))?,
        ..CredentialUpdate::default()
    };
    match credentials::update(&st, &wu.cu, id, req).await.map_err(ApiError::from) {
        Ok((_, rechecks)) => {
            let mut page = credential_page(&st, wu, id).await.map_err(fail(wu))?;
            page.rechecked = true;
            page.rechecks = rechecks
                .into_iter()
                .map(|r| {
                    let warned = r.check.checks.iter().any(|s| s.status == berth_core::StepStatus::Warn);
                    let (status, status_label) = match (r.check.ok, warned) {
                        (false, _) => ("fail", "failed"),
                        (true, true) => ("warn", "passed with warnings"),
                        (true, false) => ("pass", "passed"),
                    };
                    RecheckRow {
                        id: r.repository.id,
                        name: r.repository.name,
                        status,
                        status_label,
                        steps: steps(&r.check.checks),
                    }
                })
                .collect();
            let (kind, text) = recheck_banner(&page.rechecks);
            page.l = flash(std::mem::take(&mut page.l), kind, text);
            ok(&page)
        }
        Err(e) if e.status == StatusCode::NOT_FOUND => Err(fail(wu)(e)),
        Err(e) => form_error(wu, e, credential_page(&st, wu, id)).await,
    }
}

/// "Token replaced. 2 repositories re-checked: 1 passed, 1 with warnings." Every outcome is
/// counted, so a warning is never reported as a plain pass.
fn recheck_banner(rows: &[RecheckRow]) -> (&'static str, String) {
    let n = |status: &str| rows.iter().filter(|r| r.status == status).count();
    let (passed, warned, failed) = (n("pass"), n("warn"), n("fail"));
    let total = plural(i64::try_from(rows.len()).unwrap_or(i64::MAX), "repository");
    if rows.is_empty() {
        return ("ok", "Token replaced. No repository uses this credential yet.".to_owned());
    }
    let mut parts = Vec::new();
    if passed > 0 {
        parts.push(format!("{passed} passed"));
    }
    if warned > 0 {
        parts.push(format!("{warned} with warnings"));
    }
    if failed > 0 {
        parts.push(format!("{failed} failed"));
    }
    let kind = if failed > 0 {
        "error"
    } else if warned > 0 {
        "warn"
    } else {
        "ok"
    };
    (kind, format!("Token replaced. {total} re-checked: {}.", parts.join(", ")))
}

pub async fn credential_edit(State(st): State<AppState>, Path(id): Path<i64>, p: Posted) -> WebResult {
    let wu = &p.user;
    // The checklist is only on an API token's form; without it the scopes stay as they are.
    let scopes = (p.form.get("scopes_shown") == "1").then(|| p.form.all("scopes"));
    // Likewise the GitHub App's fields, only on an app's form; an empty installation finds the
    // installation on each owner.
    let app = p.form.get("app_fields_shown") == "1";
    let installation_id = match p.form.opt("installation_id").filter(|_| app) {
        None => app.then_some(None),
        Some(i) => Some(Some(i.trim().parse::<i64>().map_err(|_| {
            fail(wu)(ApiError::invalid(
                "the installation id must be a number",
                "leave it empty to find the installation on each repository's owner",
            ))
        })?)),
    };
    let req = CredentialUpdate {
        name: p.form.opt("name"),
        username: Some(p.form.opt("username")),
        email: Some(p.form.opt("email")),
        expires_on: Some(parse_date(p.form.opt("expires_on")).map_err(fail(wu))?),
        scopes,
        secret: None,
        host: None,
        private_key: None,
        passphrase: None,
        app_id: p.form.opt("app_id").filter(|_| app),
        installation_id,
        client_certificate: None,
        client_key: None,
    };
    match credentials::update(&st, &wu.cu, id, req).await.map_err(ApiError::from) {
        Ok(_) => Ok(see_other(&format!("/credentials/{id}?saved=1"))),
        Err(e) if e.status == StatusCode::NOT_FOUND => Err(fail(wu)(e)),
        Err(e) => form_error(wu, e, credential_page(&st, wu, id)).await,
    }
}

/// The Test button: verify the credential on its host, or at the URL given, and show the
/// verdict on its page.
pub async fn credential_verify(State(st): State<AppState>, Path(id): Path<i64>, p: Posted) -> WebResult {
    let wu = &p.user;
    let req = CredentialVerify { url: p.form.opt("url") };
    match credentials::verify(&st, &wu.cu, id, req).await.map_err(ApiError::from) {
        Ok(c) => {
            let mut page = credential_page(&st, wu, id).await.map_err(fail(wu))?;
            let (kind, verdict) = verdict_flash(&c);
            page.l = flash(std::mem::take(&mut page.l), kind, verdict);
            ok(&page)
        }
        Err(e) if e.status == StatusCode::NOT_FOUND => Err(fail(wu)(e)),
        Err(e) => form_error(wu, e, credential_page(&st, wu, id)).await,
    }
}

pub async fn credential_delete(State(st): State<AppState>, Path(id): Path<i64>, p: Posted) -> WebResult {
    let c = credentials::delete(&st, &p.user.cu, id).await.map_err(fail(&p.user))?;
    Ok(see_other(&format!("/credentials?deleted={}", enc(&c.name))))
}
