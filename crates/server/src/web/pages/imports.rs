//! Import repositories: the form (credential and source URL), the listing with checkboxes, the
//! progress (the script polls `/ui/imports/{id}`, which answers the API's `Import`; without
//! JavaScript the page refreshes itself) and the summary with each failure's finding.

use super::*;
use crate::auth::Action;
use crate::service::{credentials, imports};
use crate::state::AppState;
use crate::web::{Posted, WebUser};
use axum::extract::{Path, State};
use axum::Json;
use berth_proto::{CredentialSelector, Import, ImportCreate, ImportRegister};

async fn new_page(st: &AppState, wu: &WebUser, source: String, selected: &str) -> Result<ImportNewPage, ApiError> {
    let creds = credentials::list(st, &wu.cu).await?;
    let credentials = creds
        .iter()
        .map(|c| Choice {
            value: c.id.to_string(),
            label: format!("{} · {}", c.name, c.kind_label),
            selected: c.id.to_string() == selected,
        })
        .collect();
    Ok(ImportNewPage { l: layout(wu, "Import repositories", "repos"), credentials, source, problem: None })
}

impl FormPage for ImportNewPage {
    fn show_problem(&mut self, problem: Problem) {
        self.problem = Some(problem);
    }
}

impl FormPage for ImportPage {
    fn show_problem(&mut self, problem: Problem) {
        self.problem = Some(problem);
    }
}

pub async fn import_form(State(st): State<AppState>, wu: WebUser) -> WebResult {
    wu.cu.require(Action::RegisterRepository).map_err(fail(&wu))?;
    let page = new_page(&st, &wu, String::new(), "").await.map_err(fail(&wu))?;
    ok(&page)
}

pub async fn import_create(State(st): State<AppState>, p: Posted) -> WebResult {
    let source = p.form.get("source");
    let cred = p.form.get("credential");
    let credential = cred.trim().parse::<i64>().ok().map(CredentialSelector::Id);
    match imports::create(&st, &p.user.cu, ImportCreate { source: source.clone(), credential }).await {
        Ok(imp) => Ok(see_other(&format!("/imports/{}", imp.id))),
        Err(e) => form_error(&p.user, e, new_page(&st, &p.user, source, &cred)).await,
    }
}

fn page(wu: &WebUser, imp: Import) -> ImportPage {
    ImportPage { l: layout(wu, "Import repositories", "repos"), imp, problem: None }
}

pub async fn import_show(State(st): State<AppState>, wu: WebUser, Path(id): Path<String>) -> WebResult {
    let id =
        id.parse::<i64>().map_err(|_| fail(&wu)(ApiError::not_found_id(crate::service::Entity::Import, Some(&id))))?;
    let imp = imports::show(&st, &wu.cu, id).await.map_err(fail(&wu))?;
    ok(&page(&wu, imp))
}

pub async fn import_register(State(st): State<AppState>, Path(id): Path<i64>, p: Posted) -> WebResult {
    let repositories: Vec<String> = p.form.0.iter().filter(|(k, _)| k == "repo").map(|(_, v)| v.clone()).collect();
    let req = ImportRegister { repositories, all: false };
    match imports::register(&st, &p.user.cu, id, req).await {
        Ok(imp) => Ok(see_other(&format!("/imports/{}", imp.id))),
        Err(e) => {
            let e: ApiError = e.into();
            let e = if e.code == berth_core::Code::InvalidInput && p.form.get("repo").is_empty() {
                ApiError::invalid("no repository was ticked", "tick the repositories to register, or All")
            } else {
                e
            };
            let shown = imports::show(&st, &p.user.cu, id).await.map(|imp| page(&p.user, imp));
            form_error(&p.user, e, async { shown }).await
        }
    }
}

/// The progress for the page's script, in the API's shape.
pub async fn import_json(
    State(st): State<AppState>,
    wu: WebUser,
    Path(id): Path<i64>,
) -> Result<Json<Import>, ApiError> {
    Ok(Json(imports::show(&st, &wu.cu, id).await?))
}
