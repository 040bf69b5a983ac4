//! Admin > Credentials: the list, Create Credential, a credential's page, edits and token replacement.

use super::*;
use crate::auth::Action;
use crate::error::ApiError;
use crate::service::credentials;
use crate::state::AppState;
use crate::web::views::*;
use crate::web::{FormData, Posted, WebResult, WebUser};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use berth_core::credential::{self, FULL_SCOPES, REGISTRATION_SCOPES};
use berth_core::CredentialKind;
use berth_proto::{Credential, CredentialCreate, CredentialUpdate};
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
            (Some(u), Some(e)) => format!("{u} ({e})"),
            (Some(u), None) => u.clone(),
            (None, Some(e)) => e.clone(),
            (None, None) => "token only".to_owned(),
        },
        expires,
        expiry_status: c.expiry_status.clone(),
        expiry_note: note,
        used_by: c.used_by.len(),
        used_by_names: c.used_by.iter().map(|r| (r.id, r.name.clone())).collect(),
        scopes: c.scopes.clone(),
        missing_scopes: c.missing_scopes.clone(),
        secret_updated: when(c.secret_updated_at),
        expiry_warning: c.expiry_warning.as_ref().map(WarningView::from),
        auth_failures: c.auth_failures,
        paused_since: c.checks_paused_at.map(when).unwrap_or_default(),
        paused_ago: c.checks_paused_at.map(ago).unwrap_or_default(),
    }
}

pub async fn credentials(State(st): State<AppState>, wu: WebUser, q: Q) -> WebResult {
    let list = credentials::list(&st, &wu.cu).await.map_err(fail(&wu))?;
    let mut l = layout(&wu, "Credentials", "credentials");
    if let Some(name) = q.0.get("created") {
        l = flash(l, "ok", format!("Saved credential {name}. Its token is encrypted and will not be shown again."));
    } else if let Some(name) = q.0.get("deleted") {
        l = flash(l, "ok", format!("Deleted credential {name}."));
    }
    let soon = list.iter().filter(|c| c.expiry_status == "expires_soon" || c.expiry_status == "expired").count();
    if soon > 0 && l.flash.is_empty() {
        l = flash(
            l,
            "error",
            format!(
                "{soon} credential(s) expired or expire within {} days: replace their tokens.",
                credential::EXPIRY_WARNING_DAYS
            ),
        );
    }
    let can_create = wu.cu.may(Action::CreateCredential);
    let paused = list.iter().filter(|c| c.checks_paused_at.is_some()).count();
    ok(&CredentialsPage { l, creds: list.iter().map(credential_row).collect(), can_create, paused })
}

const KINDS: [CredentialKind; 4] = [
    CredentialKind::BitbucketApiToken,
    CredentialKind::AccessToken,
    CredentialKind::UsernamePassword,
    CredentialKind::BitbucketAppPassword,
];

fn credential_new_page(wu: &WebUser, form: Option<&FormData>) -> CredentialNewPage {
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
        scopes: FULL_SCOPES
            .iter()
            .map(|s| ScopeBox {
                name: (*s).into(),
                checked: chosen.iter().any(|c| c == s),
                required: REGISTRATION_SCOPES.contains(s),
            })
            .collect(),
        problem: None,
        retired_on: credential::APP_PASSWORDS_RETIRED_ON.into(),
        app_password_selected: kind == CredentialKind::BitbucketAppPassword,
    }
}

pub async fn credential_form(wu: WebUser) -> WebResult {
    wu.cu.require(Action::CreateCredential).map_err(fail(&wu))?;
    ok(&credential_new_page(&wu, None))
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
    let page = credential_new_page(wu, Some(&p.form));
    let req = (|| -> Result<CredentialCreate, ApiError> {
        let kind = CredentialKind::parse(&p.form.get("kind"))
            .ok_or_else(|| ApiError::invalid("choose a Credential Type", "pick one from the list"))?;
        Ok(CredentialCreate {
            name: p.form.get("name"),
            kind,
            username: p.form.opt("username"),
            email: p.form.opt("email"),
            secret: p.form.get("secret"),
            expires_on: parse_date(p.form.opt("expires_on"))?,
            scopes: Some(p.form.all("scopes")).filter(|_| kind == CredentialKind::BitbucketApiToken),
            host: p.form.opt("host"),
        })
    })();
    let result = match req {
        Ok(req) => credentials::create(&st, &wu.cu, req).await.map_err(ApiError::from),
        Err(e) => Err(e),
    };
    match result {
        Ok(c) => Ok(see_other(&format!("/credentials?created={}", enc(&c.name)))),
        Err(e) => form_error(wu, e, async { Ok::<_, ApiError>(page) }).await,
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
        rechecks: Vec::new(),
        rechecked: false,
        problem: None,
    })
}

pub async fn credential(State(st): State<AppState>, wu: WebUser, Path(id): Path<i64>, q: Q) -> WebResult {
    let mut page = credential_page(&st, &wu, id).await.map_err(fail(&wu))?;
    if q.0.contains_key("saved") {
        page.l = flash(std::mem::take(&mut page.l), "ok", "Saved.");
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
            let failed = rechecks.iter().filter(|r| !r.check.ok).count();
            page.l = flash(
                std::mem::take(&mut page.l),
                if failed == 0 { "ok" } else { "error" },
                format!("Token replaced. {} repositories re-checked, {failed} failed.", rechecks.len()),
            );
            page.rechecked = true;
            page.rechecks = rechecks
                .into_iter()
                .map(|r| RecheckRow {
                    id: r.repository.id,
                    name: r.repository.name,
                    ok: r.check.ok,
                    steps: steps(&r.check.checks),
                })
                .collect();
            ok(&page)
        }
        Err(e) if e.status == StatusCode::NOT_FOUND => Err(fail(wu)(e)),
        Err(e) => form_error(wu, e, credential_page(&st, wu, id)).await,
    }
}

pub async fn credential_edit(State(st): State<AppState>, Path(id): Path<i64>, p: Posted) -> WebResult {
    let wu = &p.user;
    let scopes: Vec<String> = p
        .form
        .get("scopes_text")
        .split([' ', ',', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let req = CredentialUpdate {
        name: p.form.opt("name"),
        username: Some(p.form.opt("username")),
        email: Some(p.form.opt("email")),
        expires_on: Some(parse_date(p.form.opt("expires_on")).map_err(fail(wu))?),
        scopes: Some(scopes),
        secret: None,
        host: None,
    };
    match credentials::update(&st, &wu.cu, id, req).await.map_err(ApiError::from) {
        Ok(_) => Ok(see_other(&format!("/credentials/{id}?saved=1"))),
        Err(e) if e.status == StatusCode::NOT_FOUND => Err(fail(wu)(e)),
        Err(e) => form_error(wu, e, credential_page(&st, wu, id)).await,
    }
}

pub async fn credential_delete(State(st): State<AppState>, Path(id): Path<i64>, p: Posted) -> WebResult {
    let c = credentials::delete(&st, &p.user.cu, id).await.map_err(fail(&p.user))?;
    Ok(see_other(&format!("/credentials?deleted={}", enc(&c.name))))
}
