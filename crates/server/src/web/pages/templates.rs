//! Credential templates on the Credentials page: the list, adding and deleting one, and the
//! "which credential would this URL use?" box (a GET form, so it works without the script and
//! its answer can be bookmarked).

use super::*;
use crate::auth::Action;
use crate::error::ApiError;
use crate::service::{credentials, templates};
use crate::state::AppState;
use crate::web::views::*;
use crate::web::{Posted, WebResult, WebUser};
use axum::extract::{Path, State};
use berth_proto::TemplateCreate;

/// What the Credentials page shows about templates.
pub(super) async fn section(
    st: &AppState,
    wu: &WebUser,
    match_url: Option<&str>,
) -> Result<TemplatesSection, ApiError> {
    let list = templates::list(st, &wu.cu).await?;
    let credential_names = credentials::names(st, &wu.cu).await?;
    let matched = match match_url.map(str::trim).filter(|u| !u.is_empty()) {
        None => None,
        Some(url) => Some(match templates::explain(st, &wu.cu, url).await {
            Ok(m) => MatchView {
                clone_url: m.clone_url,
                found: m.credential.is_some(),
                reason: sentence(&m.reason),
                candidates: m
                    .candidates
                    .into_iter()
                    .map(|c| CandidateView {
                        prefix: c.template.url_prefix,
                        credential: c.template.credential.name,
                        chosen: c.chosen,
                        why: sentence(&c.why),
                    })
                    .collect(),
                error: String::new(),
            },
            Err(e) => {
                let e = ApiError::from(e);
                MatchView { error: format!("{} ({})", sentence(&e.message), e.code), ..MatchView::default() }
            }
        }),
    };
    Ok(TemplatesSection {
        rows: list
            .into_iter()
            .map(|t| TemplateRowView {
                id: t.id,
                prefix: t.url_prefix,
                credential: t.credential.name,
                created_by: t.created_by,
            })
            .collect(),
        can_manage: wu.cu.may(Action::ManageTemplates),
        credential_names,
        match_url: match_url.unwrap_or_default().to_owned(),
        matched,
    })
}

pub async fn template_create(State(st): State<AppState>, p: Posted) -> WebResult {
    let req = TemplateCreate { url_prefix: p.form.get("url_prefix"), credential: p.form.get("credential").into() };
    match templates::create(&st, &p.user.cu, req).await {
        Ok(t) => Ok(see_other(&format!("/credentials?template_added={}#templates", enc(&t.url_prefix)))),
        Err(e) => {
            let e = ApiError::from(e);
            let why = format!("{} ({})", sentence(&e.message), e.code);
            Ok(see_other(&format!("/credentials?template_error={}#templates", enc(&why))))
        }
    }
}

pub async fn template_delete(State(st): State<AppState>, Path(id): Path<i64>, p: Posted) -> WebResult {
    let t = templates::delete(&st, &p.user.cu, id).await.map_err(fail(&p.user))?;
    Ok(see_other(&format!("/credentials?template_deleted={}#templates", enc(&t.url_prefix))))
}
