//! The way out (issue 14, sections 1 and 2): a real proxy (Debian's `tinyproxy`, started
//! privately with its own configuration; its log shows what it was asked), with and without
//! proxy authentication, `no_proxy` exceptions, the network policy applied to the destination's
//! addresses before the proxy is asked, and TLS hosts with a private CA that demand a client
//! certificate (made in the test by `openssl`), per `[[integrations]]` entry: an entry's own
//! proxy with its password, and a host that is down behind a proxy. Through the API.

use crate::harness::*;
use berth_core::{Code, StepName, StepStatus};
use berth_testkit::{LeafCert, MtlsServer, Tinyproxy, TinyproxyOptions, TlsServer};

const PROXY_USER: &str = "berth-proxy";

/// A file outside Berth's data directory (which the leak scan reads) holding `secret`.
fn secret_file(dir: &tempfile::TempDir, name: &str, secret: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, format!("{secret}\n")).unwrap();
    path.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_go_through_the_proxy_except_no_proxy_destinations() {
    // The proxy listens on 127.0.0.2, which the network policy does not allow: the proxy's
    // address is the operator's choice. The Git server (127.0.0.1) is allowed.
    let proxy = Tinyproxy::start(TinyproxyOptions { listen: Some("127.0.0.2"), ..Default::default() }).await;
    let toml = format!("[network]\nproxy = \"{}\"\nno_proxy = [\"localhost\", \".corp.example\"]\n", proxy.url());
    let b = Berth::start_with(Options {
        network_allow: Some("127.0.0.1/32"),
        config_toml: Some(toml),
        ..Options::default()
    })
    .await;
    b.api_token_credential("ci").await;

    // Through the proxy: the check says so, and the proxy's log has the requests.
    let url = b.git.repo_url("team/app.git");
    let v = b.api.remote_branches(&remote(&url, "ci")).await.unwrap();
    assert_eq!(v.default_branch.as_deref(), Some("trunk"));
    let connect = step(&v.checks, StepName::Connect);
    assert!(connect.message.contains(&format!("proxy {}", proxy.url())), "{}", connect.message);
    let asked = proxy.requests();
    let discovery = format!("GET {url}/info/refs?service=git-upload-pack");
    assert!(asked.iter().any(|r| r.starts_with(&discovery)), "{asked:?}\n{}", proxy.log());
    assert!(asked.iter().any(|r| r.starts_with(&format!("POST {url}/git-upload-pack"))), "{asked:?}");

    // A no_proxy name goes directly: the proxy hears nothing more.
    let before = proxy.requests().len();
    let direct = url.replace("127.0.0.1", "localhost");
    let v = b.api.remote_branches(&remote(&direct, "ci")).await.unwrap();
    assert_eq!(v.default_branch.as_deref(), Some("trunk"));
    assert!(!step(&v.checks, StepName::Connect).message.contains("proxy"), "{:?}", v.checks);
    assert_eq!(proxy.requests().len(), before, "a no_proxy destination went through the proxy: {:?}", proxy.requests());

    // Registration and the background path use the same way out.
    let id = b.register("app", "team/app.git", "ci").await;
    assert!(id > 0);
    assert!(proxy.requests().len() > before, "registration did not go through the proxy");
    b.stop().await;
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_resolving_to_a_forbidden_address_is_refused_before_the_proxy_is_asked() {
    let proxy = Tinyproxy::start(TinyproxyOptions { listen: Some("127.0.0.2"), ..Default::default() }).await;
    // The default policy: loopback is forbidden, but the proxy's own address is allowed.
    let toml = format!("[network]\nproxy = \"{}\"\n", proxy.url());
    let b = Berth::start_with(Options { network_allow: None, config_toml: Some(toml), ..Options::default() }).await;
    b.api_token_credential("ci").await;
    // `localhost` resolves to 127.0.0.1: Berth resolves it itself and refuses, although the
    // proxy would have resolved and connected on its own.
    let url = b.git.repo_url("team/app.git").replace("127.0.0.1", "localhost");
    let e = refused(b.api.remote_branches(&remote(&url, "ci")).await);
    assert_eq!(status_code(&e), (Some(422), Some(Code::DestinationForbidden)), "{}", error_json(&e));
    let st = step(e.checks(), StepName::Destination);
    assert_eq!(st.status, StepStatus::Fail, "{}", codes(e.checks()));
    assert!(st.details.iter().any(|d| d.contains(&proxy.url())), "the proxy is named: {:?}", st.details);
    // And an IP literal as before.
    let e = refused(b.api.remote_branches(&remote(&b.git.repo_url("team/app.git"), "ci")).await);
    assert_eq!(e.code(), Some(Code::DestinationForbidden), "{}", error_json(&e));
    assert!(proxy.requests().is_empty(), "the proxy was asked: {:?}", proxy.requests());
    assert!(b.git.requests().is_empty(), "the forbidden server was contacted");
    b.stop().await;
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_failures_have_their_own_findings() {
    let auth = Some((PROXY_USER.to_owned(), PROXY_PASSWORD.to_owned()));
    // CONNECT only to port 443: a tunnel to the TLS test server's port is refused (403).
    let proxy =
        Tinyproxy::start(TinyproxyOptions { basic_auth: auth, connect_ports: vec![443], ..Default::default() }).await;
    let Some(tls) = TlsServer::start(LeafCert::Valid).await else { return };
    let secrets = tempfile::tempdir().unwrap();
    let with_user = proxy.url().replace("http://", &format!("http://{PROXY_USER}@"));

    // The right password, from a file: plain HTTP goes through; the refused CONNECT is
    // reported with the proxy's status and words.
    let right = secret_file(&secrets, "right", PROXY_PASSWORD);
    let toml = format!("[network]\nproxy = \"{with_user}\"\nproxy_password_file = \"{right}\"\n");
    let b = Berth::start_with(Options { config_toml: Some(toml), ..Options::default() }).await;
    b.api_token_credential("ci").await;
    let url = b.git.repo_url("team/app.git");
    let v = b.api.remote_branches(&remote(&url, "ci")).await.unwrap();
    assert_eq!(v.default_branch.as_deref(), Some("trunk"));
    assert!(proxy.requests().iter().any(|r| r.starts_with(&format!("GET {url}/info/refs"))), "{}", proxy.log());
    let https = format!("{}/team/app.git", tls.base_url());
    let e = refused(b.api.remote_branches(&remote(&https, "ci")).await);
    assert_eq!(e.code(), Some(Code::ProxyRefused), "{}", error_json(&e));
    let st = step(e.checks(), StepName::Connect);
    assert!(st.message.contains("HTTP 403") && st.message.contains("Access violation"), "{}", st.message);
    assert!(
        proxy
            .requests()
            .iter()
            .any(|r| r
                .starts_with(&format!("CONNECT 127.0.0.1:{}", tls.base_url().rsplit(':').next().unwrap_or_default()))),
        "{}",
        proxy.log()
    );
    b.stop().await;

    // No credentials, then wrong ones: the proxy's refusal is proxy_auth_failed, never the host's
    // auth_failed. (tinyproxy answers wrong credentials 401 instead of 407; to plain HTTP that
    // cannot be told from the host's own 401, so only the tunnel is asked with them.)
    let wrong = secret_file(&secrets, "wrong", WRONG_PROXY_PASSWORD);
    for (toml, plain_too) in [
        (format!("[network]\nproxy = \"{}\"\n", proxy.url()), true),
        (format!("[network]\nproxy = \"{with_user}\"\nproxy_password_file = \"{wrong}\"\n"), false),
    ] {
        let b = Berth::start_with(Options { config_toml: Some(toml.clone()), ..Options::default() }).await;
        b.api_token_credential("ci").await;
        let targets = if plain_too { vec![b.git.repo_url("team/app.git"), https.clone()] } else { vec![https.clone()] };
        for target in targets {
            let e = refused(b.api.remote_branches(&remote(&target, "ci")).await);
            assert_eq!(e.code(), Some(Code::ProxyAuthFailed), "{toml}{target}: {}", error_json(&e));
            assert!(e.remedy().contains("proxy_password_file"), "{}", e.remedy());
        }
        b.stop().await;
    }

    // A proxy that does not run.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let toml = format!("[network]\nproxy = \"http://127.0.0.1:{closed}\"\n");
    let b = Berth::start_with(Options { config_toml: Some(toml), ..Options::default() }).await;
    b.api_token_credential("ci").await;
    for target in [b.git.repo_url("team/app.git"), https.clone()] {
        let e = refused(b.api.remote_branches(&remote(&target, "ci")).await);
        assert_eq!(e.code(), Some(Code::ProxyConnectFailed), "{target}: {}", error_json(&e));
        assert_eq!(step(e.checks(), StepName::Connect).status, StepStatus::Fail);
    }
    assert!(b.git.requests().is_empty(), "with the proxy down nothing may reach the host directly");
    b.stop().await;
    tls.shutdown().await;
    proxy.shutdown().await;
}

/// `[[integrations]]` for one TLS host: its CA and, optionally, a client certificate.
fn tls_integration(
    port: u16,
    ca: &std::path::Path,
    client: Option<(std::path::PathBuf, std::path::PathBuf)>,
) -> String {
    let mut s = format!(
        "[[integrations]]\nhost = \"127.0.0.1:{port}\"\nprovider = \"generic\"\nca_file = \"{}\"\n",
        ca.display()
    );
    if let Some((cert, key)) = client {
        s.push_str(&format!("client_certificate = \"{}\"\nclient_key = \"{}\"\n", cert.display(), key.display()));
    }
    s
}

/// The private key's base64 lines, which the leak scan must never find anywhere.
fn register_key(path: &std::path::Path) {
    let pem = std::fs::read_to_string(path).unwrap();
    for line in pem.lines().filter(|l| !l.starts_with("-----") && l.len() >= 16) {
        register_secret("a client key", line);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_cas_and_client_certificates_are_set_per_host() {
    let (Some(unknown), Some(required), Some(stray), Some(good)) =
        (MtlsServer::start().await, MtlsServer::start().await, MtlsServer::start().await, MtlsServer::start().await)
    else {
        return;
    };
    register_key(&stray.stray_client_files().1);
    register_key(&good.client_files().1);
    let proxy = Tinyproxy::start(TinyproxyOptions::default()).await;
    let toml = [
        tls_integration(required.port(), &required.ca_file(), None),
        tls_integration(stray.port(), &stray.ca_file(), Some(stray.stray_client_files())),
        tls_integration(good.port(), &good.ca_file(), Some(good.client_files())),
    ]
    .join("\n");
    let b = Berth::start_with(Options { config_toml: Some(toml), ..Options::default() }).await;
    b.api_token_credential("ci").await;
    let url = |s: &MtlsServer| format!("{}/team/app.git", s.base_url());

    // No ca_file for this host: the unknown CA is named and the remedy says where to set one.
    let e = refused(b.api.remote_branches(&remote(&url(&unknown), "ci")).await);
    assert_eq!(e.code(), Some(Code::TlsFailed), "{}", error_json(&e));
    let st = step(e.checks(), StepName::Tls);
    assert!(st.message.contains("unknown certificate authority"), "{}", st.message);
    assert!(st.message.contains("issued by CN=Berth Test CA"), "the issuer is named: {}", st.message);
    assert!(
        st.remedy.contains("ca_file") && st.remedy.contains(&format!("127.0.0.1:{}", unknown.port())),
        "{}",
        st.remedy
    );

    // The CA is trusted for that host only; the host wants a client certificate.
    let e = refused(b.api.remote_branches(&remote(&url(&required), "ci")).await);
    assert_eq!(e.code(), Some(Code::ClientCertificateRequired), "{}", error_json(&e));
    assert!(e.remedy().contains("client_certificate"), "{}", e.remedy());

    // A certificate from a CA the host does not trust.
    let e = refused(b.api.remote_branches(&remote(&url(&stray), "ci")).await);
    assert_eq!(e.code(), Some(Code::ClientCertificateRefused), "{}", error_json(&e));
    assert_eq!(step(e.checks(), StepName::Tls).status, StepStatus::Fail);

    // The right one: TLS passes, and what answers is a TLS test page, not Git.
    let e = refused(b.api.remote_branches(&remote(&url(&good), "ci")).await);
    assert_eq!(e.code(), Some(Code::NotAGitServer), "{}", error_json(&e));
    assert_eq!(step(e.checks(), StepName::Tls).status, StepStatus::Pass, "{}", codes(e.checks()));
    b.stop().await;

    // The same hosts through a proxy: CONNECT, then TLS with the host's CA and certificate.
    let toml = format!(
        "[network]\nproxy = \"{}\"\n{}\n{}",
        proxy.url(),
        tls_integration(required.port(), &required.ca_file(), None),
        tls_integration(good.port(), &good.ca_file(), Some(good.client_files()))
    );
    let b = Berth::start_with(Options { config_toml: Some(toml), ..Options::default() }).await;
    b.api_token_credential("ci").await;
    let e = refused(b.api.remote_branches(&remote(&url(&good), "ci")).await);
    assert_eq!(e.code(), Some(Code::NotAGitServer), "{}", error_json(&e));
    assert!(step(e.checks(), StepName::Connect).message.contains("tunnel"), "{}", codes(e.checks()));
    let e = refused(b.api.remote_branches(&remote(&url(&required), "ci")).await);
    assert_eq!(e.code(), Some(Code::ClientCertificateRequired), "{}", error_json(&e));
    assert!(step(e.checks(), StepName::Tls).details.iter().any(|d| d.contains(&proxy.url())), "{}", error_json(&e));
    let asked = proxy.requests();
    for s in [&good, &required] {
        assert!(asked.iter().any(|r| r.starts_with(&format!("CONNECT 127.0.0.1:{}", s.port()))), "{asked:?}");
    }
    b.stop().await;
    proxy.shutdown().await;
    for s in [unknown, required, stray, good] {
        s.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_integration_has_its_own_proxy_and_a_host_down_behind_a_proxy_is_named() {
    let Some(good) = MtlsServer::start().await else { return };
    register_key(&good.client_files().1);
    // Every host through `open`; the TLS host through `guarded`, which wants a password.
    let open = Tinyproxy::start(TinyproxyOptions { listen: Some("127.0.0.2"), ..Default::default() }).await;
    let auth = Some((PROXY_USER.to_owned(), PROXY_PASSWORD.to_owned()));
    let guarded = Tinyproxy::start(TinyproxyOptions { basic_auth: auth, ..Default::default() }).await;
    let secrets = tempfile::tempdir().unwrap();
    let right = secret_file(&secrets, "right", PROXY_PASSWORD);
    let with_user = guarded.url().replace("http://", &format!("http://{PROXY_USER}@"));
    let toml = format!(
        "[network]\nproxy = \"{}\"\n\n{}proxy = \"{with_user}\"\nproxy_password_file = \"{right}\"\n",
        open.url(),
        tls_integration(good.port(), &good.ca_file(), Some(good.client_files())),
    );
    let b = Berth::start_with(Options { config_toml: Some(toml), ..Options::default() }).await;
    b.api_token_credential("ci").await;

    // The TLS host: a tunnel through its own proxy, opened with the proxy password; TLS with the
    // host's CA and client certificate passes, and what answers is a TLS test page, not Git.
    let tls_url = format!("{}/team/app.git", good.base_url());
    let e = refused(b.api.remote_branches(&remote(&tls_url, "ci")).await);
    assert_eq!(e.code(), Some(Code::NotAGitServer), "{}", error_json(&e));
    let connect = step(e.checks(), StepName::Connect);
    assert!(connect.message.contains("tunnel") && connect.message.contains(&guarded.url()), "{}", connect.message);
    assert_eq!(step(e.checks(), StepName::Tls).status, StepStatus::Pass);
    let tunnel = format!("CONNECT 127.0.0.1:{}", good.port());
    assert!(guarded.requests().iter().any(|r| r.starts_with(&tunnel)), "{}", guarded.log());
    assert!(!open.requests().iter().any(|r| r.starts_with(&tunnel)), "{:?}", open.requests());

    // The suite's Git server has no entry: the global proxy.
    let url = b.git.repo_url("team/app.git");
    let v = b.api.remote_branches(&remote(&url, "ci")).await.unwrap();
    assert!(step(&v.checks, StepName::Connect).message.contains(&open.url()), "{:?}", v.checks);
    assert!(open.requests().iter().any(|r| r.starts_with(&format!("GET {url}/info/refs"))), "{}", open.log());
    assert!(!guarded.requests().iter().any(|r| r.contains("/info/refs")), "{:?}", guarded.requests());

    // A host that is down behind the proxy: the proxy answers for it (tinyproxy: 500 "Unable to
    // connect"), to a tunnel and to plain HTTP alike. Both read as the host not reachable, with
    // the same code, never as the proxy refusing nor as the host's own server error.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    for (down, at) in [
        (format!("https://127.0.0.1:{closed}/team/app.git"), StepName::Connect),
        (format!("http://127.0.0.1:{closed}/team/app.git"), StepName::GitDiscovery),
    ] {
        let e = refused(b.api.remote_branches(&remote(&down, "ci")).await);
        assert_eq!(e.code(), Some(Code::ConnectFailed), "{down}: {}", error_json(&e));
        let st = step(e.checks(), at);
        assert_eq!(st.status, StepStatus::Fail, "{down}: {}", codes(e.checks()));
        let words = format!("The proxy {} could not connect to 127.0.0.1:{closed} (HTTP 500)", open.url());
        assert!(st.message.contains(&words), "{down}: {}", st.message);
        assert!(st.details.iter().any(|d| d.contains("Unable to connect")), "{down}: {:?}", st.details);
    }
    b.stop().await;
    good.shutdown().await;
    open.shutdown().await;
    guarded.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_ca_still_refuses_a_certificate_for_another_name_or_an_expired_one() {
    let (Some(wrong), Some(expired)) =
        (TlsServer::start(LeafCert::WrongName).await, TlsServer::start(LeafCert::Expired).await)
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let port = |s: &TlsServer| s.base_url().rsplit(':').next().unwrap_or_default().parse::<u16>().unwrap();
    let mut toml = String::new();
    for (name, s) in [("wrong", &wrong), ("expired", &expired)] {
        let ca = dir.path().join(format!("{name}-ca.pem"));
        std::fs::write(&ca, s.ca_pem()).unwrap();
        toml.push_str(&tls_integration(port(s), &ca, None));
        toml.push('\n');
    }
    let b = Berth::start_with(Options { config_toml: Some(toml), ..Options::default() }).await;
    b.api_token_credential("ci").await;
    for (s, words) in [(&wrong, "not valid for the host name"), (&expired, "expired")] {
        let e = refused(b.api.remote_branches(&remote(&format!("{}/team/app.git", s.base_url()), "ci")).await);
        assert_eq!(e.code(), Some(Code::TlsFailed), "{}", error_json(&e));
        let st = step(e.checks(), StepName::Tls);
        assert!(st.message.contains(words), "{}", st.message);
        assert!(!st.message.contains("unknown certificate authority"), "the CA is trusted: {}", st.message);
    }
    b.stop().await;
    wrong.shutdown().await;
    expired.shutdown().await;
}
