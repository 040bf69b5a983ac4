//! Chromium driven through chromedriver (WebDriver) by fantoccini, for the browser tests in
//! `ui.rs`: every page visited is scanned for secrets and may be saved as a PNG under
//! `target/screenshots/`.
//!
//! Chromium and chromedriver must be installed (`scripts/test` installs them); without them
//! these tests fail rather than pass silently.

use super::free_port;
use fantoccini::{Client, ClientBuilder, Locator};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A chromedriver process (own process group, killed on drop) and a browser session.
pub struct Browser {
    pub c: Client,
    driver: Child,
    _profile: tempfile::TempDir,
    shots: PathBuf,
    prefix: &'static str,
}

fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let dir = target.join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

impl Browser {
    pub async fn start(prefix: &'static str) -> Browser {
        for (path, what) in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")] {
            assert!(
                std::path::Path::new(path).exists(),
                "{path} is missing: the browser tests need Debian's {what}. Run scripts/test, which installs chromium and chromium-driver"
            );
        }
        let port = free_port();
        let mut cmd = Command::new(CHROMEDRIVER);
        cmd.arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let driver = cmd.spawn().expect("chromedriver starts");
        let profile = tempfile::tempdir().unwrap();
        let caps = serde_json::json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1366,900", "--hide-scrollbars",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            },
        });
        let caps = caps.as_object().unwrap().clone();
        let url = format!("http://127.0.0.1:{port}");
        let mut last = String::new();
        let mut browser = None;
        for _ in 0..100 {
            match ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(c) => {
                    browser = Some(c);
                    break;
                }
                Err(e) => {
                    last = e.to_string();
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        let mut me = Browser {
            c: browser.unwrap_or_else(|| panic!("no WebDriver session from chromedriver: {last}")),
            driver,
            _profile: profile,
            shots: screenshot_dir(),
            prefix,
        };
        me.c.set_window_size(1366, 900).await.unwrap();
        me.driver_alive();
        me
    }

    fn driver_alive(&mut self) {
        assert!(self.driver.try_wait().unwrap().is_none(), "chromedriver exited");
    }

    pub async fn goto(&self, url: &str) {
        self.c.goto(url).await.unwrap();
        self.scan(url).await;
    }

    /// The page as the browser holds it (forms' values included) carries no known secret.
    pub async fn scan(&self, what: &str) {
        let html = self.c.source().await.unwrap();
        crate::harness::assert_no_secret(&format!("the page at {what}"), &html);
    }

    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.c
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css} not found: {e}"))
    }

    pub async fn has(&self, css: &str) -> bool {
        self.c.find(Locator::Css(css)).await.is_ok()
    }

    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.unwrap()
    }

    pub async fn fill(&self, css: &str, value: &str) {
        let e = self.find(css).await;
        e.clear().await.unwrap();
        e.send_keys(value).await.unwrap();
    }

    pub async fn click(&self, css: &str) {
        self.find(css).await.click().await.unwrap();
    }

    pub async fn value(&self, css: &str) -> String {
        self.find(css).await.prop("value").await.unwrap().unwrap_or_default()
    }

    pub async fn path(&self) -> String {
        let u = self.c.current_url().await.unwrap();
        match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_owned(),
        }
    }

    /// Polls `cond` (JavaScript returning a boolean) until true, for at most 20 seconds.
    pub async fn until(&self, what: &str, js: &str) {
        for _ in 0..200 {
            if self.c.execute(js, vec![]).await.unwrap().as_bool() == Some(true) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("timed out waiting until {what}");
    }

    pub async fn shot(&self, name: &str) {
        eprintln!("screenshot {}-{name}", self.prefix);
        self.scan(name).await;
        let png = self.c.screenshot().await.unwrap();
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        std::fs::write(self.shots.join(format!("{}-{name}.png", self.prefix)), png).unwrap();
    }

    /// A screenshot of the whole page: the window grows to the page's height for it.
    pub async fn shot_full(&self, name: &str) {
        let (w, h) = self.c.get_window_size().await.unwrap();
        self.c.execute("window.scrollTo(0, 0)", vec![]).await.unwrap();
        let height = self.c.execute("return document.documentElement.scrollHeight", vec![]).await.unwrap();
        let height = u32::try_from(height.as_u64().unwrap_or(900)).unwrap_or(900).clamp(200, 8000);
        self.c.set_window_size(u32::try_from(w).unwrap(), height + 100).await.unwrap();
        self.shot(name).await;
        self.c.set_window_size(u32::try_from(w).unwrap(), u32::try_from(h).unwrap()).await.unwrap();
    }

    pub async fn sign_in(&self, base: &str, user: &str, password: &str) {
        self.goto(&format!("{base}/login")).await;
        self.fill("#username", user).await;
        self.fill("#password", password).await;
        self.click("#sign_in").await;
        // The form's POST and its redirect must finish before the caller's next `goto`: a
        // navigation started while the sign-in is in flight can cancel it and land on /login.
        self.until("the sign-in leaves the login page", "return location.pathname !== '/login'").await;
    }

    pub async fn sign_out(&self) {
        self.click("header form[action='/logout'] button").await;
        self.find("#sign_in").await;
    }

    pub async fn close(mut self) {
        let c = self.c.clone();
        let _ = c.close().await;
        self.kill();
    }

    fn kill(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        // Browser processes left behind (a test that failed before closing its session) are
        // found by their unique profile directory and ended by id.
        let marker = format!("--user-data-dir={}", self._profile.path().display());
        if let Ok(dir) = std::fs::read_dir("/proc") {
            for e in dir.flatten() {
                let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                    continue;
                };
                let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
                if cmdline.split(|b| *b == 0).any(|arg| arg == marker.as_bytes()) {
                    let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
                }
            }
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if self.driver.try_wait().ok().flatten().is_none() {
            self.kill();
        }
    }
}
