//! Page handlers, one module per area as in the API. Each page decodes the form, calls the
//! service layer (which checks the role and writes the audit log) and renders the answer.

mod account;
mod audit;
mod credentials;
mod imports;
mod known_hosts;
mod notifications;
mod repositories;
mod repository_list;
mod session;
mod templates;
mod users;

pub use account::*;
pub use audit::*;
pub use credentials::*;
pub use imports::*;
pub use known_hosts::*;
pub use notifications::*;
pub use repositories::*;
pub use repository_list::*;
pub use session::*;
pub use templates::{template_create, template_delete};
pub use users::*;

use crate::auth::Action;
use crate::error::ApiError;
use crate::web::views::*;
use crate::web::{WebError, WebResult, WebUser};
use askama::Template;
use axum::extract::Query;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

use std::collections::HashMap;

type Q = Query<HashMap<String, String>>;

// ------------------------------------------------------------------------------- rendering

fn render<T: Template>(status: StatusCode, t: &T) -> Response {
    match t.render() {
        Ok(html) => {
            let mut resp = (status, [(header::CACHE_CONTROL, "no-store")], axum::response::Html(html)).into_response();
            // A page answers 503 only when the database is away (`database_unavailable`).
            if status == StatusCode::SERVICE_UNAVAILABLE {
                crate::error::mark_database_unavailable(&mut resp);
            }
            resp
        }
        Err(e) => ApiError::internal(&e).into_response(),
    }
}

// Handlers return `WebResult` anyway; a page answer is cheap next to rendering it.
#[allow(clippy::result_large_err)]
fn ok<T: Template>(t: &T) -> WebResult {
    Ok(render(StatusCode::OK, t))
}

fn layout(wu: &WebUser, title: &str, active: &'static str) -> Layout {
    Layout {
        title: title.to_owned(),
        user: wu.cu.user.username.clone(),
        role: wu.cu.role.as_str().to_owned(),
        csrf: wu.csrf.clone(),
        active,
        is_admin: wu.cu.may(Action::ManageUsers),
        can_register: wu.cu.may(Action::RegisterRepository),
        can_credentials: wu.cu.may(Action::CreateCredential),
        flash: String::new(),
        flash_kind: "ok",
    }
}

fn flash(mut l: Layout, kind: &'static str, text: impl Into<String>) -> Layout {
    l.flash = text.into();
    l.flash_kind = kind;
    l
}

/// An error page without a signed-in frame (used where no session is known).
pub fn error_page(e: ApiError) -> Response {
    let status = e.status;
    let page = ErrorPage {
        l: Layout { title: "Error".into(), ..Layout::default() },
        status: status.as_u16(),
        problem: Problem::from_api(&e),
    };
    render(status, &page)
}

/// An error page inside the signed-in frame: "You must have permission to …" and the like.
fn fail<E: Into<ApiError>>(wu: &WebUser) -> impl FnOnce(E) -> WebError + '_ {
    move |e| {
        let e: ApiError = e.into();
        let status = e.status;
        let title = if status == StatusCode::FORBIDDEN { "Not allowed" } else { "Error" };
        let page = ErrorPage { l: layout(wu, title, ""), status: status.as_u16(), problem: Problem::from_api(&e) };
        WebError::Rendered(render(status, &page))
    }
}

/// A page with a form that can show why it was refused.
pub trait FormPage: Template {
    /// Puts the refusal into the page's problem box (a page may also clear a field it must not echo).
    fn show_problem(&mut self, problem: Problem);
}

macro_rules! form_pages {
    ($($page:ty),* $(,)?) => {$(
        impl FormPage for $page {
            fn show_problem(&mut self, problem: Problem) {
                self.problem = Some(problem);
            }
        }
    )*};
}

form_pages!(AccountPage, TotpPage, UsersPage, CredentialPage);

/// Re-renders a form page with the error its use case answered: the page (built by `page`, only
/// when needed) shows the problem, under the error's status. A refusal of the role is the "Not
/// allowed" page in the signed-in frame instead, as the form itself is not the caller's to use.
async fn form_error<P: FormPage, E: Into<ApiError>>(
    wu: &WebUser,
    e: impl Into<ApiError>,
    page: impl std::future::Future<Output = Result<P, E>>,
) -> WebResult {
    let e = e.into();
    if e.status == StatusCode::FORBIDDEN {
        return Err(fail(wu)(e));
    }
    let mut page = page.await.map_err(fail(wu))?;
    page.show_problem(Problem::from_api(&e));
    Ok(render(e.status, &page))
}

fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

// ------------------------------------------------------------------------------- static files

pub async fn css() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")],
        include_str!("../../../static/app.css"),
    )
}

pub async fn js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")],
        include_str!("../../../static/app.js"),
    )
}
