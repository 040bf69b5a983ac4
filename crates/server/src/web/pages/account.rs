//! My account: password, personal API tokens and two-factor sign-in (use cases in
//! `service::accounts` and `service::tokens`).

use super::{fail, flash, form_error, layout, ok, see_other, Q};
use crate::auth;
use crate::error::ApiError;
use crate::service::accounts::{self, TotpConfirm};
use crate::service::tokens;
use crate::state::AppState;
use crate::web::views::{ago, when, AccountPage, Problem, TokenView, TotpPage};
use crate::web::{set_cookie, Posted, WebResult, WebUser, SESSION_COOKIE};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap};
use berth_proto::ApiTokenCreate;
use chrono::Utc;
use secrecy::{ExposeSecret, SecretString};

async fn account_page(st: &AppState, wu: &WebUser, new_token: String) -> Result<AccountPage, crate::service::Error> {
    let tokens = tokens::list(st, &wu.cu).await?;
    let second = accounts::second_factor(st, &wu.cu).await?;
    Ok(AccountPage {
        l: layout(wu, "My account", "account"),
        role_description: wu.cu.role.describe().to_owned(),
        totp_enabled: wu.totp_enabled,
        recovery_left: second.recovery_codes_left,
        require_2fa: second.required,
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
        problem: None,
    })
}

/// The account page again, showing why a form on it was refused.
async fn account_refused(st: &AppState, wu: &WebUser, e: impl Into<ApiError>) -> WebResult {
    form_error(wu, e, account_page(st, wu, String::new())).await
}

pub async fn account(State(st): State<AppState>, wu: WebUser, q: Q) -> WebResult {
    let mut page = account_page(&st, &wu, String::new()).await.map_err(fail(&wu))?;
    if q.0.contains_key("revoked") {
        page.l = flash(std::mem::take(&mut page.l), "ok", "Token revoked: it no longer works.");
    } else if q.0.contains_key("2fa_off") {
        page.l = flash(std::mem::take(&mut page.l), "ok", "Two-factor sign-in is off.");
    }
    ok(&page)
}

pub async fn password(State(st): State<AppState>, headers: HeaderMap, p: Posted) -> WebResult {
    let (current, new) = (SecretString::from(p.form.get("current")), SecretString::from(p.form.get("new")));
    match accounts::change_own_password(&st, &p.user.cu, &current, new).await {
        Ok(()) => {
            let mut resp = see_other("/login?signed_out=1");
            resp.headers_mut()
                .append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, "", 0, auth::came_over_tls(&headers)));
            Ok(resp)
        }
        Err(e) => account_refused(&st, &p.user, e).await,
    }
}

pub async fn token_create(State(st): State<AppState>, p: Posted) -> WebResult {
    let wu = &p.user;
    // A value that is present but not a number of days is refused, never read as "no expiry".
    let days = match p.form.opt("expires_in_days").map(|d| d.trim().parse::<u32>()) {
        None => None,
        Some(Ok(d)) => Some(d),
        Some(Err(_)) => {
            let e = ApiError::invalid(
                "the expiry must be a whole number of days",
                "enter for example 90, or leave it empty",
            );
            return account_refused(&st, wu, e).await;
        }
    };
    match tokens::create(&st, &wu.cu, ApiTokenCreate { name: p.form.get("name"), expires_in_days: days }).await {
        Ok(t) => {
            let mut page = account_page(&st, wu, t.token).await.map_err(fail(wu))?;
            page.l = flash(std::mem::take(&mut page.l), "ok", format!("Created token {}.", t.info.name));
            ok(&page)
        }
        Err(e) => account_refused(&st, wu, e).await,
    }
}

pub async fn token_revoke(State(st): State<AppState>, Path(id): Path<i64>, p: Posted) -> WebResult {
    tokens::revoke(&st, &p.user.cu, id).await.map_err(fail(&p.user))?;
    Ok(see_other("/account?revoked=1"))
}

async fn totp_view(st: &AppState, wu: &WebUser) -> Result<TotpPage, crate::service::Error> {
    Ok(TotpPage {
        l: layout(wu, "Two-factor sign-in", "account"),
        enabled: wu.totp_enabled,
        required: accounts::second_factor(st, &wu.cu).await?.required,
        secret: String::new(),
        uri: String::new(),
        qr_svg: String::new(),
        recovery_codes: Vec::new(),
        recovery_download: String::new(),
        problem: None,
    })
}

pub async fn totp_page(State(st): State<AppState>, wu: WebUser) -> WebResult {
    ok(&totp_view(&st, &wu).await.map_err(fail(&wu))?)
}

fn show_secret(page: &mut TotpPage, user: &str, secret: &SecretString) {
    let secret = secret.expose_secret();
    page.secret = secret
        .chars()
        .collect::<Vec<_>>()
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join(" ");
    page.uri = auth::totp::otpauth_uri("Berth", user, secret);
    page.qr_svg = qr_svg(&page.uri);
}

/// `data` as a QR code in inline SVG, labelled for screen readers; empty if it cannot be
/// encoded (the setup key beside it still works).
fn qr_svg(data: &str) -> String {
    use qrcode::render::svg;
    let Ok(code) = qrcode::QrCode::new(data.as_bytes()) else { return String::new() };
    let drawn = code
        .render::<svg::Color<'_>>()
        .min_dimensions(200, 200)
        .dark_color(svg::Color("#000000"))
        .light_color(svg::Color("#ffffff"))
        .build();
    // The renderer writes a standalone XML document; inside HTML only the <svg> element belongs.
    match drawn.find("<svg") {
        Some(at) => drawn[at..].replacen(
            "<svg",
            "<svg role=\"img\" aria-label=\"QR code of the setup key for your authenticator app\"",
            1,
        ),
        None => String::new(),
    }
}

/// The recovery codes as a `data:` URL of a text file, one code a line.
fn recovery_file(codes: &[String]) -> String {
    let text = format!(
        "Berth recovery codes. Each signs you in once, in place of a code from your authenticator app.\n\n{}\n",
        codes.join("\n")
    );
    let encoded: String = url::form_urlencoded::byte_serialize(text.as_bytes()).collect();
    // form_urlencoded writes spaces as '+', which a data: URL would keep literally.
    format!("data:text/plain;charset=utf-8,{}", encoded.replace('+', "%20"))
}

pub async fn totp_start(State(st): State<AppState>, p: Posted) -> WebResult {
    let wu = &p.user;
    let secret = accounts::start_totp(&st, &wu.cu).await.map_err(fail(wu))?;
    let mut page = totp_view(&st, wu).await.map_err(fail(wu))?;
    if let Some(secret) = secret {
        show_secret(&mut page, &wu.cu.user.username, &secret);
    }
    ok(&page)
}

pub async fn totp_confirm(State(st): State<AppState>, p: Posted) -> WebResult {
    let wu = &p.user;
    let confirmed = accounts::confirm_totp(&st, &wu.cu, &p.form.get("code")).await.map_err(fail(wu))?;
    let mut page = totp_view(&st, wu).await.map_err(fail(wu))?;
    match confirmed {
        TotpConfirm::NothingPending => ok(&page),
        TotpConfirm::Mismatch { secret } => {
            show_secret(&mut page, &wu.cu.user.username, &secret);
            page.problem = Some(Problem {
                message: "That code does not match.".into(),
                remedy: "Check that the phone's clock is right and enter the code currently shown.".into(),
                ..Problem::default()
            });
            Ok(super::render(axum::http::StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
        TotpConfirm::Enabled { recovery_codes } => {
            page.enabled = true;
            page.recovery_download = recovery_file(&recovery_codes);
            page.recovery_codes = recovery_codes;
            ok(&page)
        }
    }
}

pub async fn totp_disable(State(st): State<AppState>, p: Posted) -> WebResult {
    let wu = &p.user;
    match accounts::disable_totp(&st, &wu.cu, &p.form.get("code")).await {
        Ok(()) => Ok(see_other("/account?2fa_off=1")),
        Err(e) => form_error(wu, e, totp_view(&st, wu)).await,
    }
}
