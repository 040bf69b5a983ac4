//! A server on another origin that records every request and answers 404: the place a
//! cross-origin redirect points to, so a test can prove that nothing (and no credential) got there.

use crate::RecordedRequest;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::Router;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

pub struct CaptureServer {
    addr: std::net::SocketAddr,
    requests: Arc<Mutex<Vec<RecordedRequest>>>,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl CaptureServer {
    pub async fn start() -> CaptureServer {
        CaptureServer::start_on((std::net::Ipv4Addr::LOCALHOST, 0).into()).await
    }

    /// Listens on another local address, such as 127.0.0.2 (every 127.0.0.0/8 address is this
    /// machine on Linux), or on the port another server uses on 127.0.0.1: a test can then
    /// forbid that address and prove that no request reached it.
    pub async fn start_on(addr: std::net::SocketAddr) -> CaptureServer {
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind a local address");
        let addr = listener.local_addr().expect("local address");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (stop, mut stopped) = watch::channel(false);
        let app = Router::new().fallback(capture).with_state(requests.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.wait_for(|s| *s).await;
                })
                .await;
        });
        CaptureServer { addr, requests, stop, task: Some(task) }
    }

    /// `http://IP:PORT` (IPv6 in brackets).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }

    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for CaptureServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

async fn capture(State(requests): State<Arc<Mutex<Vec<RecordedRequest>>>>, req: Request) -> StatusCode {
    let rec = crate::record(&req);
    if let Ok(mut r) = requests.lock() {
        r.push(rec);
    }
    StatusCode::NOT_FOUND
}
