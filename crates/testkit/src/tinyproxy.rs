//! A private, real HTTP proxy: Debian's `tinyproxy`, started in the foreground with its own
//! configuration file on a free port, optionally demanding Basic credentials or allowing
//! `CONNECT` to chosen ports only. Its log (level Connect) names every request it was asked,
//! which is how a test proves a request went through it, or did not.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

pub const TINYPROXY: &str = "/usr/bin/tinyproxy";

#[derive(Debug, Clone, Default)]
pub struct TinyproxyOptions {
    /// The address it listens on; 127.0.0.1 when `None`.
    pub listen: Option<&'static str>,
    /// `BasicAuth user password`: every request without them is answered 407.
    pub basic_auth: Option<(String, String)>,
    /// `ConnectPort` lines: `CONNECT` to any other port is refused (403). Every port when empty.
    pub connect_ports: Vec<u16>,
}

pub struct Tinyproxy {
    child: tokio::process::Child,
    pub addr: String,
    pub port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tinyproxy {
    /// Panics when tinyproxy is not installed: a proxy test that passed without a proxy would
    /// prove nothing (`scripts/test` installs it).
    pub async fn start(opts: TinyproxyOptions) -> Tinyproxy {
        assert!(
            std::path::Path::new(TINYPROXY).exists(),
            "the proxy tests need {TINYPROXY}: install Debian's tinyproxy (scripts/test does)"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let listen = opts.listen.unwrap_or("127.0.0.1");
        let port = std::net::TcpListener::bind((listen, 0)).and_then(|l| l.local_addr()).expect("free port").port();
        let log = dir.path().join("tinyproxy.log");
        let mut conf = format!(
            "Port {port}\nListen {listen}\nTimeout 30\nLogFile \"{}\"\nLogLevel Connect\nMaxClients 50\n\
             Allow 127.0.0.0/8\nDisableViaHeader Yes\n",
            log.display()
        );
        if let Some((user, pass)) = &opts.basic_auth {
            conf.push_str(&format!("BasicAuth {user} {pass}\n"));
        }
        for p in &opts.connect_ports {
            conf.push_str(&format!("ConnectPort {p}\n"));
        }
        let conf_path = dir.path().join("tinyproxy.conf");
        std::fs::write(&conf_path, conf).expect("write tinyproxy.conf");
        let child = tokio::process::Command::new(TINYPROXY)
            .arg("-d")
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start tinyproxy");
        let proxy = Tinyproxy { child, addr: listen.to_owned(), port, log, _dir: dir };
        for _ in 0..200 {
            if tokio::net::TcpStream::connect((listen, port)).await.is_ok() {
                return proxy;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("tinyproxy did not start listening on {listen}:{port}");
    }

    /// `http://ADDR:PORT`
    pub fn url(&self) -> String {
        format!("http://{}:{}", self.addr, self.port)
    }

    /// Every request line the proxy was asked (`GET http://…`, `CONNECT host:port HTTP/1.1`),
    /// from its log.
    pub fn requests(&self) -> Vec<String> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines()
            .filter_map(|l| l.split_once("): ").filter(|_| l.contains("Request (file descriptor")).map(|(_, r)| r))
            .map(str::to_owned)
            .collect()
    }

    /// The whole log, for assertion messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub async fn shutdown(mut self) {
        let _ = self.child.kill().await;
    }
}
