//! A browser-less web session: the sign-in form with its CSRF cookie, the session cookie, and
//! pages and forms read and posted with it. Raw HTTP on purpose: these are the web UI's forms,
//! not the API.

use super::{answer_text, register_token, Berth, ADMIN_PASSWORD, WRONG_ADMIN_PASSWORD};
use reqwest::StatusCode;

/// A client that does not follow redirects, so a test sees each `303`.
pub fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// The sign-in page's `Set-Cookie` header and the CSRF token it carries.
pub async fn login_csrf(http: &reqwest::Client, base: &str) -> (String, String) {
    let page = http.get(format!("{base}/login")).send().await.unwrap();
    let set = page.headers()["set-cookie"].to_str().unwrap().to_owned();
    answer_text("the sign-in page", page).await;
    let csrf = set.split(';').next().unwrap().split_once('=').unwrap().1.to_owned();
    (set, csrf)
}

/// Posts the sign-in form with the CSRF token of [`login_csrf`].
pub async fn post_login(
    http: &reqwest::Client,
    base: &str,
    csrf: &str,
    user: &str,
    password: &str,
) -> reqwest::Response {
    http.post(format!("{base}/login"))
        .header("cookie", format!("berth_login_csrf={csrf}"))
        .form(&[("csrf", csrf), ("username", user), ("password", password)])
        .send()
        .await
        .unwrap()
}

/// The `Set-Cookie` header of a successful sign-in that starts the session.
pub fn session_set_cookie(signed_in: &reqwest::Response) -> String {
    signed_in
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("berth_session="))
        .expect("a session cookie")
}

pub struct Web<'a> {
    b: &'a Berth,
    http: reqwest::Client,
    cookie: String,
}

impl Web<'_> {
    pub async fn page(&self, path: &str) -> String {
        let r = self.http.get(format!("{}{path}", self.b.base)).header("cookie", &self.cookie).send().await.unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        answer_text(&format!("the page {path}"), r).await
    }

    /// Posts a form with the page's CSRF token; returns the status and the body.
    pub async fn post(&self, path: &str, csrf_from: &str, fields: &[(&str, &str)]) -> (StatusCode, String) {
        let page = self.page(csrf_from).await;
        let csrf = page
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .expect("a CSRF token")
            .to_owned();
        let mut form: Vec<(&str, &str)> = vec![("csrf", &csrf)];
        form.extend_from_slice(fields);
        let r = self
            .http
            .post(format!("{}{path}", self.b.base))
            .header("cookie", &self.cookie)
            .form(&form)
            .send()
            .await
            .unwrap();
        let s = r.status();
        (s, answer_text(&format!("the answer to the form {path}"), r).await)
    }
}

/// The administrator signed in through the web form, after one wrong password (the page that
/// answers it must not hold it).
pub async fn signed_in(b: &Berth) -> Web<'_> {
    let http = no_redirects();
    let (_, csrf) = login_csrf(&http, &b.base).await;
    let r = post_login(&http, &b.base, &csrf, "admin", WRONG_ADMIN_PASSWORD).await;
    answer_text("a failed web sign-in", r).await;
    let r = post_login(&http, &b.base, &csrf, "admin", ADMIN_PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let cookie = session_set_cookie(&r).split(';').next().unwrap().to_owned();
    register_token(cookie.split_once('=').unwrap().1);
    answer_text("a web sign-in", r).await;
    Web { b, http, cookie }
}
