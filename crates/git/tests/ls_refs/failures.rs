use crate::common::*;
use berth_core::Code;
use berth_git::{GitClient, GitClientConfig, Stage};
use berth_testkit::{bare_repo, sha256_hex, CaptureServer};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_auth_failed_and_none_is_credential_required() {
    let f = fixture(with_user()).await;
    bare_repo(f.root.path(), "private.git", "main", &["main"]);
    let url = f.server.repo_url("private.git");

    let e = list_err(&client(), &url, Some(&basic("wrong-password"))).await;
    assert_eq!((e.code, e.stage, e.http_status), (Code::AuthFailed, Stage::Discovery, Some(401)));
    assert!(e.message.contains("refused the credential"), "{}", e.message);
    assert!(e.details.iter().any(|d| d.contains("Berth test git")), "{:?}", e.details);

    // Without a credential there is nothing to refuse: the host requires one.
    let e = list_err(&client(), &url, None).await;
    assert_eq!((e.code, e.http_status), (Code::CredentialRequired, Some(401)));
    assert!(e.message.contains("no credential was given"), "{}", e.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_repository() {
    let f = fixture(Default::default()).await;
    let e = list_err(&client(), &f.server.repo_url("nope/missing.git"), None).await;
    assert_eq!((e.code, e.http_status), (Code::RepositoryNotFoundOrNoAccess, Some(404)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_origin_redirect_is_reported_and_never_followed() {
    let f = fixture(with_user()).await;
    let capture = CaptureServer::start().await;
    f.server.set_redirect_target(&capture.base_url());
    let url = format!("{}/moved/team/app.git", f.server.base_url());
    let e = list_err(&client(), &url, Some(&basic(PASSWORD))).await;
    let expected = format!("{}/git/team/app.git", capture.base_url());
    assert_eq!((e.code, e.http_status), (Code::RepositoryMoved, Some(301)));
    assert_eq!(e.location.as_deref(), Some(expected.as_str()));
    assert_eq!(e.details, [expected.as_str()]);
    assert!(e.message.contains(&expected));
    assert!(capture.requests().is_empty(), "the other origin was contacted: {:?}", capture.requests());
    // The credential reached only the origin it was meant for.
    let header = format!("Basic {}", base64_of(&format!("{USER}:{PASSWORD}")));
    assert!(f.server.requests().iter().all(|r| r.authorization_sha256.as_deref() == Some(&*sha256_hex(header.as_bytes()))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_page_is_not_a_git_server() {
    let f = fixture(Default::default()).await;
    let e = list_err(&client(), &format!("{}/login/team/app.git", f.server.base_url()), None).await;
    assert_eq!((e.code, e.stage), (Code::NotAGitServer, Stage::Discovery));
    assert!(e.message.contains("HTML page"), "{}", e.message);
    assert!(e.details.iter().any(|d| d == "content type: text/html"), "{:?}", e.details);
    assert!(e.details.iter().any(|d| d.contains("Sign in - Example SSO")), "{:?}", e.details);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dumb_server_is_not_a_git_server() {
    let f = fixture(Default::default()).await;
    let e = list_err(&client(), &format!("{}/dumb/team/app.git", f.server.base_url()), None).await;
    assert_eq!(e.code, Code::NotAGitServer);
    assert!(e.message.contains("dumb"), "{}", e.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_server_times_out() {
    let f = fixture(Default::default()).await;
    let c = GitClient::new(GitClientConfig { request_timeout: Duration::from_secs(1), ..config() }).unwrap();
    let e = list_err(&c, &format!("{}/stall/team/app.git", f.server.base_url()), None).await;
    assert_eq!((e.code, e.stage), (Code::Timeout, Stage::Discovery));
    assert!(e.message.contains("GET") && e.message.contains("1 s"), "{}", e.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_advertisement_hits_the_cap() {
    let f = fixture(Default::default()).await;
    let c = GitClient::new(GitClientConfig { max_advertisement_bytes: 1024 * 1024, ..config() }).unwrap();
    let e = list_err(&c, &format!("{}/huge/team/app.git", f.server.base_url()), None).await;
    assert_eq!(e.code, Code::AdvertisementTooLarge);
    assert_eq!(e.details, ["limit: 1048576 bytes"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbidden_carries_the_remote_lines() {
    let f = fixture(Default::default()).await;
    let e = list_err(&client(), &format!("{}/forbidden/team/app.git", f.server.base_url()), None).await;
    assert_eq!((e.code, e.http_status), (Code::AccessDenied, Some(403)));
    assert_eq!(e.details, ["Your IP address is not allowed. An admin must whitelist your IP"]);
    assert!(e.message.contains("Your IP address is not allowed"), "{}", e.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limited_with_retry_after() {
    let f = fixture(Default::default()).await;
    let e = list_err(&client(), &format!("{}/ratelimited/team/app.git", f.server.base_url()), None).await;
    assert_eq!((e.code, e.http_status), (Code::RateLimited, Some(429)));
    assert_eq!(e.retry_after, Some(Duration::from_secs(17)));
    assert!(e.details.iter().any(|d| d.contains("17 seconds")), "{:?}", e.details);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_refused_is_connect_failed() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let e = list_err(&client(), &format!("http://127.0.0.1:{port}/git/app.git"), None).await;
    assert_eq!((e.code, e.stage), (Code::ConnectFailed, Stage::Connect));
    let e = client().probe("127.0.0.1", port).await.unwrap_err();
    assert_eq!((e.code, e.stage), (Code::ConnectFailed, Stage::Connect));
}

fn base64_of(s: &str) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut out = String::new();
    for c in b.chunks(3) {
        let n = (u32::from(c[0]) << 16) | (u32::from(*c.get(1).unwrap_or(&0)) << 8) | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

mod tls {
    use super::*;
    use berth_testkit::{LeafCert, TlsServer};

    async fn tls_server(leaf: LeafCert) -> Option<TlsServer> {
        let s = TlsServer::start(leaf).await;
        if s.is_none() {
            eprintln!("no openssl binary: TLS test not run");
        }
        s
    }

    fn trusting(ca: Vec<u8>) -> GitClient {
        GitClient::new(GitClientConfig { extra_root_certs_pem: vec![ca], ..config() }).unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unknown_certificate_authority() {
        let Some(s) = tls_server(LeafCert::Valid).await else { return };
        let e = list_err(&client(), &format!("{}/app.git", s.base_url()), None).await;
        assert_eq!((e.code, e.stage), (Code::TlsFailed, Stage::Tls), "{e:?}");
        assert!(e.message.contains("unknown certificate authority"), "{}", e.message);
        // With the operator's CA added, TLS succeeds and the next problem shows: no Git there.
        let e = list_err(&trusting(s.ca_pem()), &format!("{}/app.git", s.base_url()), None).await;
        assert_eq!(e.code, Code::NotAGitServer, "{e:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn certificate_for_another_name() {
        let Some(s) = tls_server(LeafCert::WrongName).await else { return };
        let e = list_err(&trusting(s.ca_pem()), &format!("{}/app.git", s.base_url()), None).await;
        assert_eq!((e.code, e.stage), (Code::TlsFailed, Stage::Tls), "{e:?}");
        assert!(e.message.contains("not valid for the host name"), "{}", e.message);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn expired_certificate() {
        let Some(s) = tls_server(LeafCert::Expired).await else { return };
        let e = list_err(&trusting(s.ca_pem()), &format!("{}/app.git", s.base_url()), None).await;
        assert_eq!((e.code, e.stage), (Code::TlsFailed, Stage::Tls), "{e:?}");
        assert!(e.message.contains("expired"), "{}", e.message);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn plain_http_on_an_https_url() {
        let f = fixture(Default::default()).await;
        let url = format!("https://127.0.0.1:{}/git/app.git", f.server.port());
        let e = list_err(&client(), &url, None).await;
        assert_eq!((e.code, e.stage), (Code::TlsFailed, Stage::Tls), "{e:?}");
        assert!(e.message.contains("plain HTTP"), "{}", e.message);
    }
}
