//! [`FaultServer`]: a raw TCP server on 127.0.0.1 speaking just enough HTTP/1.1 to misbehave in
//! ways an HTTP framework will not: a TCP reset in the middle of an advertisement, a clean close
//! short of the announced length, and headers dribbled one byte at a time.

use crate::RecordedRequest;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

/// What the server does after reading a request's headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 200 with the smart content type and `Content-Length: 1048576`, the valid start of a v0
    /// advertisement (service line, flush, `HEAD` with capabilities, some branches), then a TCP
    /// reset (`SO_LINGER` 0).
    ResetMidAdvertisement,
    /// The same start, then an orderly close (FIN) far short of the announced length.
    CloseMidAdvertisement,
    /// `HTTP/1.1 200 OK`, then one byte of a header value every [`FaultServer::INTERVAL`],
    /// forever: the headers never end, and every read gets data in time.
    SlowHeaders,
}

pub struct FaultServer {
    addr: std::net::SocketAddr,
    requests: Arc<Mutex<Vec<RecordedRequest>>>,
    bytes_sent: Arc<AtomicU64>,
    stop: watch::Sender<bool>,
}

impl FaultServer {
    /// How often [`Fault::SlowHeaders`] sends its next byte.
    pub const INTERVAL: Duration = Duration::from_millis(20);

    pub async fn start(fault: Fault) -> FaultServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let bytes_sent = Arc::new(AtomicU64::new(0));
        let (stop, stopped) = watch::channel(false);
        let (reqs, sent) = (requests.clone(), bytes_sent.clone());
        let mut on_stop = stopped.clone();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    a = listener.accept() => a,
                    _ = on_stop.wait_for(|s| *s) => return,
                };
                let Ok((stream, _)) = accepted else { continue };
                let (reqs, sent, mut stopped) = (reqs.clone(), sent.clone(), stopped.clone());
                tokio::spawn(async move {
                    tokio::select! {
                        _ = serve(stream, fault, reqs, sent) => {}
                        _ = stopped.wait_for(|s| *s) => {}
                    }
                });
            }
        });
        FaultServer { addr, requests, bytes_sent, stop }
    }

    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request whose headers arrived, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Bytes of response written so far, over all connections.
    pub fn bytes_sent(&self) -> u64 {
        self.bytes_sent.load(Ordering::Relaxed)
    }
}

impl Drop for FaultServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

const OID: &str = "1111111111111111111111111111111111111111";

fn pkt(line: &str) -> String {
    format!("{:04x}{line}", line.len() + 4)
}

/// The valid first part of a v0 advertisement.
fn advertisement_start() -> String {
    let mut s = format!("{}0000", pkt("# service=git-upload-pack\n"));
    s.push_str(&pkt(&format!("{OID} HEAD\0symref=HEAD:refs/heads/main agent=berth-testkit\n")));
    for i in 0..50 {
        s.push_str(&pkt(&format!("{OID} refs/heads/branch-{i:04}\n")));
    }
    s
}

async fn serve(mut stream: TcpStream, fault: Fault, requests: Arc<Mutex<Vec<RecordedRequest>>>, sent: Arc<AtomicU64>) {
    let Some(head) = read_head(&mut stream).await else { return };
    if let Ok(mut r) = requests.lock() {
        r.push(parse_head(&head));
    }
    match fault {
        Fault::ResetMidAdvertisement | Fault::CloseMidAdvertisement => {
            let head = "HTTP/1.1 200 OK\r\ncontent-type: application/x-git-upload-pack-advertisement\r\n\
                        content-length: 1048576\r\ncache-control: no-cache\r\n\r\n";
            let mut out = head.as_bytes().to_vec();
            out.extend_from_slice(advertisement_start().as_bytes());
            if send(&mut stream, &sent, out).await.is_err() {
                return;
            }
            // Let the client read what was sent before the connection goes.
            tokio::time::sleep(Duration::from_millis(100)).await;
            if fault == Fault::ResetMidAdvertisement {
                let _ = stream.set_zero_linger();
                drop(stream);
            } else {
                let _ = stream.shutdown().await;
            }
        }
        Fault::SlowHeaders => {
            if send(&mut stream, &sent, b"HTTP/1.1 200 OK\r\nx-slow: ".to_vec()).await.is_err() {
                return;
            }
            loop {
                tokio::time::sleep(FaultServer::INTERVAL).await;
                if send(&mut stream, &sent, b"a".to_vec()).await.is_err() {
                    return;
                }
            }
        }
    }
}

async fn send(stream: &mut TcpStream, sent: &AtomicU64, bytes: Vec<u8>) -> std::io::Result<()> {
    stream.write_all(&bytes).await?;
    stream.flush().await?;
    sent.fetch_add(bytes.len() as u64, Ordering::Relaxed);
    Ok(())
}

/// The request line and headers, up to the empty line (at most 64 KiB).
async fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        if buf.len() > 64 * 1024 {
            return None;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(String::from_utf8_lossy(&buf).into_owned())
}

fn parse_head(head: &str) -> RecordedRequest {
    let mut first = head.split("\r\n").next().unwrap_or("").split(' ');
    let method = first.next().unwrap_or("").to_owned();
    let target = first.next().unwrap_or("");
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
        None => (target.to_owned(), None),
    };
    let header = |name: &str| {
        head.split("\r\n")
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .find(|(n, _)| n.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_owned())
    };
    let auth = header("authorization");
    RecordedRequest {
        method,
        path,
        query,
        authorization: auth.is_some(),
        authorization_sha256: auth.map(|v| crate::sha256_hex(v.as_bytes())),
        git_protocol: header("git-protocol"),
    }
}
