//! Admin > Users and the instance-wide security settings (use cases in `service::accounts`).

use super::{enc, fail, flash, form_error, layout, ok, see_other, Q};
use crate::auth::Role;
use crate::error::ApiError;
use crate::service::paging::PageRequest;
use crate::service::{accounts, Error};
use crate::state::AppState;
use crate::web::views::{when, UserRow, UsersPage};
use crate::web::{Posted, WebResult, WebUser};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use berth_core::Code;
use berth_proto::{Settings, UserCreate, UserUpdate};

/// Users on one page of Admin > Users.
pub const USERS_PAGE: i64 = 50;

/// The page of users after the cursor `after` (the first page without one).
async fn users_page(st: &AppState, wu: &WebUser, after: Option<String>) -> Result<UsersPage, Error> {
    let page = PageRequest { after, limit: Some(USERS_PAGE) };
    let list = accounts::users_page(st, &wu.cu, &page).await?;
    let settings = accounts::settings(st, &wu.cu).await?;
    Ok(UsersPage {
        l: layout(wu, "Users", "users"),
        total: list.total,
        next: list.next.map(|n| format!("/admin/users?after={}", enc(&n))),
        first: page.after.is_some().then(|| "/admin/users".to_owned()),
        users: list
            .items
            .into_iter()
            .map(|u| UserRow {
                is_me: u.id == wu.cu.user.id,
                id: u.id,
                username: u.username,
                role: u.role,
                totp: u.totp_enabled,
                sso: u.single_sign_on,
                locked: u.locked_until.map(when).unwrap_or_default(),
                failures: u.failed_logins,
                created: when(u.created_at),
            })
            .collect(),
        roles: Role::ALL.iter().map(|r| (r.as_str().to_owned(), r.describe().to_owned())).collect(),
        require_2fa: settings.require_2fa,
        problem: None,
    })
}

pub async fn users(State(st): State<AppState>, wu: WebUser, q: Q) -> WebResult {
    let after = q.0.get("after").filter(|a| !a.is_empty()).cloned();
    let mut page = users_page(&st, &wu, after).await.map_err(fail(&wu))?;
    if let Some(m) = q.0.get("done") {
        page.l = flash(std::mem::take(&mut page.l), "ok", m.chars().take(200).collect::<String>());
    }
    ok(&page)
}

/// Back to the list with what was done, or the list again with why it was refused.
async fn users_result(st: &AppState, wu: &WebUser, r: Result<String, impl Into<ApiError>>) -> WebResult {
    match r {
        Ok(msg) => Ok(see_other(&format!("/admin/users?done={}", enc(&msg)))),
        Err(e) => form_error(wu, e, users_page(st, wu, None)).await,
    }
}

pub async fn user_create(State(st): State<AppState>, p: Posted) -> WebResult {
    let req =
        UserCreate { username: p.form.get("username"), password: p.form.get("password"), role: p.form.get("role") };
    let r = accounts::create_user(&st, &p.user.cu, req).await.map(|u| format!("Added {} as {}.", u.username, u.role));
    users_result(&st, &p.user, r).await
}

pub async fn user_op(State(st): State<AppState>, Path((id, op)): Path<(i64, String)>, p: Posted) -> WebResult {
    let cu = &p.user.cu;
    let r = match op.as_str() {
        "role" => accounts::update_user(&st, cu, id, UserUpdate { role: Some(p.form.get("role")), password: None })
            .await
            .map(|u| format!("{} is now {}.", u.username, u.role)),
        "password" => {
            accounts::update_user(&st, cu, id, UserUpdate { role: None, password: Some(p.form.get("password")) })
                .await
                .map(|u| format!("Password of {} reset; their sessions ended.", u.username))
        }
        "unlock" => accounts::clear_lockout(&st, cu, id).await.map(|()| "Lockout cleared.".to_owned()),
        "totp-reset" => accounts::reset_totp(&st, cu, id).await.map(|()| "Two-factor sign-in removed.".to_owned()),
        "delete" => accounts::delete_user(&st, cu, id).await.map(|()| "User deleted.".to_owned()),
        _ => {
            let e = ApiError::new(StatusCode::NOT_FOUND, Code::NotFound, "no such user action", "");
            return users_result(&st, &p.user, Err::<String, _>(e)).await;
        }
    };
    users_result(&st, &p.user, r).await
}

pub async fn settings(State(st): State<AppState>, p: Posted) -> WebResult {
    let want = p.form.get("require_2fa") == "true";
    let r = accounts::update_settings(&st, &p.user.cu, Settings { require_2fa: want }).await.map(|s| {
        if s.require_2fa { "Two-factor sign-in is now required." } else { "Two-factor sign-in is optional." }.to_owned()
    });
    users_result(&st, &p.user, r).await
}
