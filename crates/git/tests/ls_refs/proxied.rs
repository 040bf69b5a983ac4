//! Through a real proxy (Debian's tinyproxy, started by the test kit): the destination's every
//! address is judged before the proxy is asked, and the proxy's refusals reach the finding with
//! its status and words, whichever request meets them (not only the connect step's own CONNECT).

use crate::common::*;
use crate::ssrf::Names;
use berth_core::{Code, NetworkPolicy};
use berth_git::{GitClient, GitClientConfig, Lookup, ProxyRoute, Stage};
use berth_net::{NoProxy, Proxy};
use berth_testkit::{bare_repo, LeafCert, Tinyproxy, TinyproxyOptions, TlsServer};
use std::sync::Arc;

const PROXY_PASSWORD: &str = "ci-proxy-pass-5e1b";

fn through(proxy: &Tinyproxy, policy: NetworkPolicy, names: Option<Arc<Names>>) -> GitClient {
    let route = ProxyRoute { proxy: Proxy::parse(&proxy.url(), None).unwrap(), no_proxy: NoProxy::default() };
    let lookup = names.map(|n| n as Arc<dyn Lookup>);
    GitClient::new(GitClientConfig { policy, lookup, proxy: Some(route), ..config() }).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_forbidden_address_refuses_a_name_before_the_proxy_is_asked() {
    let proxy = Tinyproxy::start(TinyproxyOptions { listen: Some("127.0.0.2"), ..Default::default() }).await;
    let f = fixture(Default::default()).await;
    bare_repo(f.root.path(), "app.git", "main", &["main"]);
    let port = f.server.port();
    // Directly, Berth would skip the metadata address and use 127.0.0.1; through a proxy it
    // cannot choose, so the name is refused.
    let dns = Names::with(&[("mixed.test", &[&["127.0.0.1", "169.254.169.254"]])]);
    let only_local = NetworkPolicy::parse_allow_list("127.0.0.1/32").unwrap();
    let c = through(&proxy, only_local.clone(), Some(dns.clone()));
    let e = list_err(&c, &format!("http://mixed.test:{port}/git/app.git"), None).await;
    assert_eq!((e.code, e.stage), (Code::DestinationForbidden, Stage::Dns), "{e:?}");
    assert!(e.message.contains("169.254.169.254") && e.details.iter().any(|d| d.contains(&proxy.url())), "{e:?}");
    let e = c.probe_url(false, "mixed.test", port).await.unwrap_err();
    assert_eq!(e.code, Code::DestinationForbidden);
    assert!(proxy.requests().is_empty(), "the proxy was asked: {:?}", proxy.requests());
    assert!(f.server.requests().is_empty());

    // Control: an allowed name goes through the proxy (at 127.0.0.2, which the policy does not
    // allow: the proxy's address is the operator's choice), and the proxy's log shows it.
    let r = list_ok(&c, &format!("http://127.0.0.1:{port}/git/app.git"), None).await;
    assert_eq!(names(&r), ["main"]);
    assert!(proxy.requests().iter().any(|l| l.starts_with("GET http://127.0.0.1")), "{}", proxy.log());
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_tunnel_is_reported_with_the_proxys_status_and_words() {
    // tinyproxy's BasicAuth takes letters, digits, `_`, `.` and `-` only.
    let auth = Some(("ci-proxy".to_owned(), PROXY_PASSWORD.to_owned()));
    let open = Tinyproxy::start(TinyproxyOptions { connect_ports: vec![443], ..Default::default() }).await;
    let locked = Tinyproxy::start(TinyproxyOptions { basic_auth: auth, ..Default::default() }).await;
    let Some(tls) = TlsServer::start(LeafCert::Valid).await else { return };
    let url = format!("{}/app.git", tls.base_url());

    // The request's own CONNECT, not the connect step's: reqwest drops the status, Berth asks again.
    let e = list_err(&through(&open, local_policy(), None), &url, None).await;
    assert_eq!((e.code, e.http_status), (Code::ProxyRefused, Some(403)), "{e:?}");
    assert!(e.message.contains("Access violation"), "{}", e.message);
    let e = list_err(&through(&locked, local_policy(), None), &url, None).await;
    assert_eq!((e.code, e.http_status), (Code::ProxyAuthFailed, Some(407)), "{e:?}");
    assert!(!format!("{e:?}").contains(PROXY_PASSWORD));
    tls.shutdown().await;
    open.shutdown().await;
    locked.shutdown().await;
}
