//! A webhook receiver for tests: records every request it is sent (path, headers, body) and
//! answers with planned statuses, 200 once the plan runs out, so a test can make it refuse the
//! first attempts and see the sender retry. `hmac_sha256` recomputes a signature the way
//! Berth's webhook channels and the Git hosts sign their deliveries.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::Router;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    /// Header names in lower case; a repeated header keeps its last value.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().rev().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// `sha256=<hex>` of HMAC-SHA256 over `body` under `secret`.
pub fn hmac_sha256(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[derive(Default)]
struct Inner {
    got: Vec<Received>,
    plan: VecDeque<u16>,
}

#[derive(Clone)]
pub struct Receiver {
    base: String,
    inner: Arc<Mutex<Inner>>,
}

async fn record(State(inner): State<Arc<Mutex<Inner>>>, uri: Uri, headers: HeaderMap, body: Bytes) -> StatusCode {
    let headers = headers
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let mut g = inner.lock().unwrap_or_else(|e| e.into_inner());
    g.got.push(Received { path: uri.path().to_owned(), headers, body: body.to_vec() });
    let status = g.plan.pop_front().unwrap_or(200);
    StatusCode::from_u16(status).unwrap_or(StatusCode::OK)
}

impl Receiver {
    pub async fn start() -> Receiver {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new().fallback(record).with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { base, inner }
    }

    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The next requests are answered with these statuses, in order (then 200).
    pub fn answer_next(&self, statuses: &[u16]) {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).plan.extend(statuses);
    }

    /// Every request so far, oldest first.
    pub fn received(&self) -> Vec<Received> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).got.clone()
    }

    /// The requests sent to `path`.
    pub fn at(&self, path: &str) -> Vec<Received> {
        self.received().into_iter().filter(|r| r.path == path).collect()
    }
}
