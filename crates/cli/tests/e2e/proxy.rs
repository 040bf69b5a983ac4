//! A TCP forwarder in front of the test Git server whose behaviour a test switches at run
//! time, on new and kept-alive connections alike: pass everything, stall (swallow every request
//! so a check hangs until its request timeout: a check "in flight"), slow (pass each request
//! on after a second: checks in flight that still succeed), or answer every request with 429
//! and `Retry-After: 3600`.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    Pass = 0,
    Stall = 1,
    RateLimit = 2,
    /// Each read from the client is passed on after [`SLOW_DELAY`].
    Slow = 3,
}

/// How long [`Mode::Slow`] holds each request.
pub const SLOW_DELAY: std::time::Duration = std::time::Duration::from_secs(1);

pub struct FaultyProxy {
    pub port: u16,
    mode: Arc<AtomicU8>,
}

const RATE_LIMITED: &[u8] = b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 3600\r\nContent-Type: text/plain\r\n\
Content-Length: 0\r\nConnection: close\r\n\r\n";

impl FaultyProxy {
    /// Forwards to `git_base` (`http://127.0.0.1:PORT`), passing everything at first.
    pub async fn start(git_base: &str) -> FaultyProxy {
        let target = git_base.trim_start_matches("http://").to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mode = Arc::new(AtomicU8::new(Mode::Pass as u8));
        let shared = mode.clone();
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let (mode, target) = (shared.clone(), target.clone());
                tokio::spawn(async move {
                    let Ok(outbound) = TcpStream::connect(&target).await else { return };
                    let (mut ri, mut wi) = inbound.into_split();
                    let (mut ro, mut wo) = outbound.into_split();
                    // Client to server, judged per read: true when the answer is to be a 429.
                    let up = async {
                        let mut buf = vec![0u8; 16 * 1024];
                        loop {
                            match ri.read(&mut buf).await {
                                Ok(0) | Err(_) => return false,
                                Ok(n) => match mode.load(Ordering::SeqCst) {
                                    m if m == Mode::Stall as u8 => {} // swallowed
                                    m if m == Mode::RateLimit as u8 => return true,
                                    m => {
                                        if m == Mode::Slow as u8 {
                                            tokio::time::sleep(SLOW_DELAY).await;
                                        }
                                        if wo.write_all(&buf[..n]).await.is_err() {
                                            return false;
                                        }
                                    }
                                },
                            }
                        }
                    };
                    let down = tokio::io::copy(&mut ro, &mut wi);
                    let rate_limited = tokio::select! {
                        r = up => r,
                        _ = down => false,
                    };
                    if rate_limited {
                        let _ = wi.write_all(RATE_LIMITED).await;
                    }
                });
            }
        });
        FaultyProxy { port, mode }
    }

    pub fn set(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }

    /// The URL of `path` on the Git server, through this proxy.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{}", self.port, path.trim_start_matches('/'))
    }
}
