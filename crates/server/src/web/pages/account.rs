//! My account: password, personal API tokens and two-factor sign-in.

use super::*;
use crate::api::tokens as token_api;
use crate::auth::{self, Action};
use crate::error::ApiError;
use crate::state::AppState;
use crate::web::views::*;
use crate::web::{set_cookie, Posted, WebResult, WebUser, SESSION_COOKIE};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use berth_core::Code;
use berth_proto::ApiTokenCreate;
use chrono::Utc;
use secrecy::{ExposeSecret, SecretString};

async fn account_page(
    st: &AppState,
    wu: &WebUser,
    new_token: String,
    problem: Option<Problem>,
) -> Result<AccountPage, ApiError> {
    let tokens = token_api::list_tokens(st, &wu.cu).await?;
    Ok(AccountPage {
        l: layout(wu, "My account", "account"),
        role_description: wu.cu.role.describe().to_owned(),
        totp_enabled: wu.totp_enabled,
        recovery_left: st.store.recovery_codes_left(wu.cu.user.id).await?,
        require_2fa: auth::require_2fa(&st.store).await?,
        tokens: tokens
            .into_iter()
            .map(|t| TokenView {
                id: t.id,
                name: t.name,
                created: when(t.created_at),
                expires: t.expires_at.map_or_else(|| "never".to_owned(), when),
                last_used: t.last_used_at.map_or_else(|| "never".to_owned(), ago),
                revoked: t.revoked_at.is_some() || t.expires_at.is_some_and(|e| e < Utc::now()),
            })
            .collect(),
        new_token,
        problem,
    })
}

pub async fn account(State(st): State<AppState>, wu: WebUser, q: Q) -> WebResult {
    let mut page = account_page(&st, &wu, String::new(), None).await.map_err(fail(&wu))?;
    if q.0.contains_key("revoked") {
        page.l = flash(std::mem::take(&mut page.l), "ok", "Token revoked: it no longer works.");
    } else if q.0.contains_key("2fa_off") {
        page.l = flash(std::mem::take(&mut page.l), "ok", "Two-factor sign-in is off.");
    }
    ok(&page)
}

pub async fn password(State(st): State<AppState>, headers: HeaderMap, p: Posted) -> WebResult {
    let wu = &p.user;
    let result: Result<(), ApiError> = async {
        wu.cu.require(Action::ManageOwnAccount)?;
        let current = SecretString::from(p.form.get("current"));
        // Counted like a failed sign-in, so a stolen session cannot guess the password freely.
        match auth::password_login(&st.store, &wu.cu.user.username, &current, wu.cu.remote.as_deref()).await {
            Ok(_) => {}
            Err(e) if e.code == Code::Unauthenticated => {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    Code::InvalidInput,
                    "the current password is wrong",
                    "type your current password again",
                ));
            }
            Err(e) => return Err(e),
        }
        let new = p.form.get("new");
        auth::validate_password(&new)?;
        let hash = auth::hash_password_async(SecretString::from(new)).await?;
        st.store.set_password(wu.cu.user.id, &hash, false).await?;
        wu.cu
            .audit(
                &st.store,
                "user.password_change",
                "user",
                Some(wu.cu.user.id),
                &wu.cu.user.username,
                "own password; sessions ended",
            )
            .await;
        Ok(())
    }
    .await;
    match result {
        Ok(()) => {
            let mut resp = see_other("/login?signed_out=1");
            resp.headers_mut().append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, "", 0, secure(&headers)));
            Ok(resp)
        }
        Err(e) => {
            let page = account_page(&st, wu, String::new(), Some(Problem::from_api(&e))).await.map_err(fail(wu))?;
            Ok(render(e.status, &page))
        }
    }
}

pub async fn token_create(State(st): State<AppState>, p: Posted) -> WebResult {
    let wu = &p.user;
    // A value that is present but not a number of days is refused, never read as "no expiry".
    let days = match p.form.opt("expires_in_days").map(|d| d.trim().parse::<u32>()) {
        None => Ok(None),
        Some(Ok(d)) => Ok(Some(d)),
        Some(Err(_)) => Err(ApiError::invalid(
            "the expiry must be a whole number of days",
            "enter for example 90, or leave it empty",
        )),
    };
    let created = match days {
        Ok(days) => {
            token_api::create_token(&st, &wu.cu, ApiTokenCreate { name: p.form.get("name"), expires_in_days: days })
                .await
        }
        Err(e) => Err(e),
    };
    match created {
        Ok(t) => {
            let mut page = account_page(&st, wu, t.token, None).await.map_err(fail(wu))?;
            page.l = flash(std::mem::take(&mut page.l), "ok", format!("Created token {}.", t.info.name));
            ok(&page)
        }
        Err(e) => {
            let page = account_page(&st, wu, String::new(), Some(Problem::from_api(&e))).await.map_err(fail(wu))?;
            Ok(render(e.status, &page))
        }
    }
}

pub async fn token_revoke(State(st): State<AppState>, Path(id): Path<i64>, p: Posted) -> WebResult {
    token_api::revoke_token(&st, &p.user.cu, id).await.map_err(fail(&p.user))?;
    Ok(see_other("/account?revoked=1"))
}

async fn totp_view(st: &AppState, wu: &WebUser) -> Result<TotpPage, ApiError> {
    Ok(TotpPage {
        l: layout(wu, "Two-factor sign-in", "account"),
        enabled: wu.totp_enabled,
        required: auth::require_2fa(&st.store).await?,
        secret: String::new(),
        uri: String::new(),
        recovery_codes: Vec::new(),
        problem: None,
    })
}

pub async fn totp_page(State(st): State<AppState>, wu: WebUser) -> WebResult {
    ok(&totp_view(&st, &wu).await.map_err(fail(&wu))?)
}

fn show_secret(page: &mut TotpPage, user: &str, secret: &str) {
    page.secret = secret
        .chars()
        .collect::<Vec<_>>()
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join(" ");
    page.uri = auth::totp::otpauth_uri("Berth", user, secret);
}

pub async fn totp_start(State(st): State<AppState>, p: Posted) -> WebResult {
    let wu = &p.user;
    wu.cu.require(Action::ManageOwnAccount).map_err(fail(wu))?;
    let mut page = totp_view(&st, wu).await.map_err(fail(wu))?;
    if wu.totp_enabled {
        return ok(&page);
    }
    let secret = auth::totp::generate_secret();
    st.store.set_pending_totp(wu.cu.user.id, &SecretString::from(secret.clone())).await?;
    show_secret(&mut page, &wu.cu.user.username, &secret);
    ok(&page)
}

pub async fn totp_confirm(State(st): State<AppState>, p: Posted) -> WebResult {
    let wu = &p.user;
    wu.cu.require(Action::ManageOwnAccount).map_err(fail(wu))?;
    let uid = wu.cu.user.id;
    let mut page = totp_view(&st, wu).await.map_err(fail(wu))?;
    if wu.totp_enabled || st.store.totp_state(uid).await?.is_none() {
        return ok(&page);
    }
    let secret = st.store.totp_secret(uid).await?;
    let code = p.form.get("code").chars().filter(char::is_ascii_digit).collect::<String>();
    let step = auth::totp::verify(secret.expose_secret(), &code, Utc::now().timestamp());
    let accepted = match step {
        Some(s) => st.store.use_totp_step(uid, s).await?,
        None => false,
    };
    if !accepted {
        show_secret(&mut page, &wu.cu.user.username, secret.expose_secret());
        page.problem = Some(Problem {
            message: "That code does not match.".into(),
            remedy: "check that the phone's clock is right and enter the code currently shown".into(),
            ..Problem::default()
        });
        return Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page));
    }
    let codes = auth::new_recovery_codes();
    let hashes: Vec<String> = codes.iter().map(|c| auth::recovery_code_hash(c)).collect();
    st.store.enable_totp(uid, &hashes).await?;
    wu.cu
        .audit(
            &st.store,
            "user.2fa_enable",
            "user",
            Some(uid),
            &wu.cu.user.username,
            "TOTP on; 10 recovery codes issued",
        )
        .await;
    page.enabled = true;
    page.recovery_codes = codes;
    ok(&page)
}

pub async fn totp_disable(State(st): State<AppState>, p: Posted) -> WebResult {
    let wu = &p.user;
    wu.cu.require(Action::ManageOwnAccount).map_err(fail(wu))?;
    let mut page = totp_view(&st, wu).await.map_err(fail(wu))?;
    if page.required {
        page.problem = Some(Problem {
            message: "Two-factor sign-in is required here.".into(),
            remedy: "an administrator can change that under Admin > Users".into(),
            ..Problem::default()
        });
        return Ok(render(StatusCode::CONFLICT, &page));
    }
    if let Err(e) = auth::second_factor(&st.store, &wu.cu.user, &p.form.get("code"), wu.cu.remote.as_deref()).await {
        page.problem = Some(Problem::from_api(&e));
        return Ok(render(e.status, &page));
    }
    st.store.disable_totp(wu.cu.user.id).await?;
    wu.cu.audit(&st.store, "user.2fa_disable", "user", Some(wu.cu.user.id), &wu.cu.user.username, "by the user").await;
    Ok(see_other("/account?2fa_off=1"))
}
