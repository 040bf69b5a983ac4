//! A `berth serve` child process for the fleet benchmark, its API and web sessions, and `wrk`.

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};

pub const ADMIN_PASSWORD: &str = "berth-fleet-bench-admin-password";

/// A `berth serve` child process.
pub struct Server {
    child: tokio::process::Child,
    pub base: String,
    pub token: String,
    http: reqwest::Client,
}

impl Server {
    /// Starts `berth serve` on `database_url` with `checks` as the `[checks]` table of its
    /// configuration, logging to `<name>.log` in `data`, and signs in as the administrator.
    pub async fn start(bin: &Path, data: &Path, database_url: &str, name: &str, checks: &str) -> Result<Server> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let config = data.join(format!("{name}.toml"));
        std::fs::write(&config, format!("[checks]\n{checks}\n"))?;
        let log = data.join(format!("{name}.log"));
        let out = std::fs::File::create(&log)?;
        let child = tokio::process::Command::new(bin)
            .arg("serve")
            .env("BERTH_LISTEN", format!("127.0.0.1:{port}"))
            .env("BERTH_DATA_DIR", data)
            .env("BERTH_DATABASE_URL", database_url)
            .env("BERTH_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("BERTH_NETWORK_ALLOW", "127.0.0.0/8")
            .env("BERTH_CONFIG", &config)
            .env("BERTH_INSTANCE_ID", name)
            .env("RUST_LOG", "warn")
            .stdout(out.try_clone()?)
            .stderr(out)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if http.get(format!("{base}/readyz")).send().await.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            if Instant::now() > deadline {
                bail!("berth serve did not become ready: {}", std::fs::read_to_string(&log).unwrap_or_default());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let token = crate::berth::login(&http, &base, ADMIN_PASSWORD).await?;
        Ok(Server { child, base, token, http })
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value> {
        let mut req = self.http.request(method, format!("{}{path}", self.base)).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await?;
        let status = resp.status();
        let text = resp.text().await?;
        if !status.is_success() {
            bail!("{path} answered {status}: {text}");
        }
        Ok(if text.is_empty() { Value::Null } else { serde_json::from_str(&text)? })
    }

    /// The credential every benchmark repository uses (the local Git servers ignore it).
    pub async fn create_credential(&self) -> Result<()> {
        let body =
            json!({"name": "bench", "kind": "username_password", "username": "bench", "secret": "bench-password"});
        self.call(reqwest::Method::POST, "/api/v1/credentials", Some(body)).await.map(|_| ())
    }

    /// Signs in through the web form, as a browser does, and returns the session cookie's value.
    pub async fn web_session(&self) -> Result<String> {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
        let form = http.get(format!("{}/login", self.base)).send().await?;
        let csrf = set_cookie(&form, "berth_login_csrf").context("the sign-in form set no CSRF cookie")?;
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("username", "admin")
            .append_pair("password", ADMIN_PASSWORD)
            .append_pair("csrf", &csrf)
            .finish();
        let resp = http
            .post(format!("{}/login", self.base))
            .header(reqwest::header::COOKIE, format!("berth_login_csrf={csrf}"))
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await?;
        set_cookie(&resp, "berth_session")
            .with_context(|| format!("signing in answered {} and no session", resp.status()))
    }

    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

/// The value of the cookie `name` an answer sets.
fn set_cookie(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers().get_all(reqwest::header::SET_COOKIE).iter().find_map(|v| {
        let v = v.to_str().ok()?;
        let pair = v.split(';').next()?;
        let (k, value) = pair.split_once('=')?;
        (k.trim() == name && !value.is_empty()).then(|| value.to_owned())
    })
}

/// How a `wrk` run authenticates: the header goes in a Lua script file, never in argv.
pub enum Auth<'a> {
    Bearer(&'a str),
    Cookie(&'a str),
}

/// One `wrk` run (2 threads, 16 connections) against `path`: p50, p99 and requests per second.
/// Any answer that is not 2xx fails the run.
pub async fn wrk(base: &str, path: &str, auth: Auth<'_>, seconds: u64, dir: &Path) -> Result<Value> {
    let script = dir.join("wrk-auth.lua");
    let header = match auth {
        Auth::Bearer(t) => format!("wrk.headers[\"Authorization\"] = \"Bearer {t}\"\n"),
        Auth::Cookie(c) => format!("wrk.headers[\"Cookie\"] = \"berth_session={c}\"\n"),
    };
    std::fs::write(&script, header)?;
    let out = tokio::process::Command::new("wrk")
        .args(["-t2", "-c16", &format!("-d{seconds}s"), "--latency", "-s"])
        .arg(&script)
        .arg(format!("{base}{path}"))
        .output()
        .await
        .context("cannot run wrk (Debian package wrk; scripts/bench installs it)");
    let _ = std::fs::remove_file(&script);
    let out = out?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() || text.contains("Non-2xx") {
        bail!("wrk against {path} failed or saw errors: {text}{}", String::from_utf8_lossy(&out.stderr));
    }
    let pct = |p: &str| -> Option<f64> {
        let line = text.lines().find(|l| l.trim_start().starts_with(p))?;
        parse_wrk_time(line.split_whitespace().nth(1)?)
    };
    let rps = text
        .lines()
        .find(|l| l.starts_with("Requests/sec:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok());
    // wrk leaves requests slower than its 2 s timeout out of the latencies and counts them
    // here: such a run's percentiles describe only the fast answers, so they are not reported.
    let errors = text.lines().find(|l| l.trim_start().starts_with("Socket errors")).map(|l| l.trim().to_owned());
    let timed_out = errors.as_deref().is_some_and(|l| !l.ends_with("timeout 0"));
    if timed_out {
        return Ok(json!({"p50_ms": null, "p99_ms": null, "requests_per_s": rps, "errors": errors}));
    }
    Ok(json!({"p50_ms": pct("50%"), "p99_ms": pct("99%"), "requests_per_s": rps, "errors": errors}))
}

/// wrk prints `812.00us`, `3.21ms` or `1.02s`; milliseconds.
pub fn parse_wrk_time(v: &str) -> Option<f64> {
    if let Some(n) = v.strip_suffix("us") {
        return n.parse::<f64>().ok().map(|x| x / 1000.0);
    }
    if let Some(n) = v.strip_suffix("ms") {
        return n.parse().ok();
    }
    if let Some(n) = v.strip_suffix('s') {
        return n.parse::<f64>().ok().map(|x| x * 1000.0);
    }
    None
}

/// A `wrk` result in one line: `p50 1.2 ms, p99 3.4 ms, 5678 req/s`.
pub fn wrk_line(v: &Value) -> String {
    let f = |k: &str| v[k].as_f64().map_or("?".to_owned(), |x| format!("{x:.1}"));
    let errors = v["errors"].as_str().map(|e| format!(" ({e})")).unwrap_or_default();
    format!("p50 {} ms, p99 {} ms, {} req/s{errors}", f("p50_ms"), f("p99_ms"), f("requests_per_s"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_times() {
        assert_eq!(parse_wrk_time("812.00us"), Some(0.812));
        assert_eq!(parse_wrk_time("3.5ms"), Some(3.5));
        assert_eq!(parse_wrk_time("1.5s"), Some(1500.0));
        assert_eq!(parse_wrk_time("soon"), None);
    }
}
