//! Server-side request forgery: a clone URL (or a redirect, or a DNS answer) pointing at an address
//! the network policy forbids is refused as `destination_forbidden`, before any request is sent.
//!
//! None of these tests allows 127.0.0.0/8. Where a test needs a reachable server it allows exactly
//! 127.0.0.1/32 and puts the server that must never be reached on 127.0.0.2 (every 127.0.0.0/8
//! address is this machine on Linux), so "nothing arrived" is observed, not assumed.

use crate::common::*;
use berth_core::{Code, NetworkPolicy};
use berth_net::ApiRequest;
use berth_git::{GitClient, GitClientConfig, GitError, Lookup, Stage};
use berth_testkit::{bare_repo, Canned, CaptureServer};
use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};

/// A resolver whose answers the test chooses: each lookup of a name takes the next answer in its
/// list, and the last answer repeats.
#[derive(Debug, Default)]
pub(crate) struct Names {
    answers: Mutex<HashMap<String, Vec<Vec<IpAddr>>>>,
    lookups: Mutex<Vec<String>>,
}

impl Names {
    pub(crate) fn with(pairs: &[(&str, &[&[&str]])]) -> Arc<Names> {
        let n = Names::default();
        for (name, answers) in pairs {
            let answers = answers.iter().map(|a| a.iter().map(|ip| ip.parse().unwrap()).collect()).collect();
            n.answers.lock().unwrap().insert((*name).to_owned(), answers);
        }
        Arc::new(n)
    }
}

impl Lookup for Names {
    fn lookup(&self, host: String) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send>> {
        self.lookups.lock().unwrap().push(host.clone());
        let mut answers = self.answers.lock().unwrap();
        let found = answers.get_mut(&host).map(|list| if list.len() > 1 { list.remove(0) } else { list[0].clone() });
        Box::pin(async move { found.ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no such host")) })
    }
}

fn client_with(policy: NetworkPolicy, names: Option<Arc<Names>>) -> GitClient {
    let lookup = names.map(|n| n as Arc<dyn Lookup>);
    GitClient::new(GitClientConfig { policy, lookup, ..config() }).unwrap()
}

/// Allows 127.0.0.1 only (not the rest of 127.0.0.0/8, not ::1).
fn only_127_0_0_1() -> NetworkPolicy {
    NetworkPolicy::parse_allow_list("127.0.0.1/32").unwrap()
}

fn assert_forbidden(e: &GitError, what: &str) {
    assert_eq!(e.code, Code::DestinationForbidden, "{what}: {e:?}");
    assert!(e.remedy.contains("BERTH_NETWORK_ALLOW"), "{what}: {}", e.remedy);
}

async fn api_get(c: &GitClient, url: &str) -> Result<berth_net::ApiResponse, GitError> {
    c.net().api_request(ApiRequest::get(url::Url::parse(url).unwrap(), Some(&basic(PASSWORD)))).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_forbidden_literal_is_refused_before_connecting() {
    // Listening on 127.0.0.1, where most of these spellings would really connect.
    let capture = CaptureServer::start().await;
    let p = capture.port();
    let c = client_with(NetworkPolicy::default(), None);
    let urls = [
        format!("http://127.0.0.1:{p}/app.git"),
        format!("http://127.1:{p}/app.git"),
        format!("http://2130706433:{p}/app.git"),
        format!("http://0x7f000001:{p}/app.git"),
        format!("http://0177.0.0.1:{p}/app.git"),
        format!("http://127.255.255.254:{p}/app.git"),
        format!("http://0.0.0.0:{p}/app.git"),
        format!("http://0:{p}/app.git"),
        format!("http://0.1.2.3:{p}/app.git"),
        format!("http://[::1]:{p}/app.git"),
        format!("http://[::]:{p}/app.git"),
        format!("http://[::ffff:127.0.0.1]:{p}/app.git"),
        format!("http://[::ffff:7f00:1]:{p}/app.git"),
        format!("http://[::127.0.0.1]:{p}/app.git"),
        format!("http://[64:ff9b::7f00:1]:{p}/app.git"),
        format!("http://[2002:7f00:1::]:{p}/app.git"),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://[::ffff:169.254.169.254]/latest/meta-data/".to_owned(),
        "http://[fe80::a9fe:a9fe]/".to_owned(),
        "http://[fd00:ec2::254]/latest/meta-data/".to_owned(),
        "http://100.100.100.200/latest/meta-data/".to_owned(),
        "http://168.63.129.16/machine".to_owned(),
        "http://224.0.0.1/".to_owned(),
        "http://255.255.255.255/".to_owned(),
        format!("https://127.0.0.1:{p}/app.git"),
    ];
    for url in &urls {
        let e = list_err(&c, url, Some(&basic(PASSWORD))).await;
        assert_forbidden(&e, url);
        assert_eq!(e.stage, Stage::Dns, "{url}");
        // The same rule for REST calls (the forge adapters' path).
        let e = api_get(&c, url).await.err().unwrap_or_else(|| panic!("{url}: API request was sent"));
        assert_forbidden(&e, url);
    }
    for host in ["127.0.0.1", "127.1", "2130706433", "0x7f.0.0.1", "0.0.0.0", "::1", "[::1]", "::ffff:127.0.0.1", "169.254.169.254"] {
        let e = c.probe(host, p).await.err().unwrap_or_else(|| panic!("probe {host} connected"));
        assert_forbidden(&e, host);
    }
    assert!(capture.requests().is_empty(), "a forbidden address was contacted: {:?}", capture.requests());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_resolving_to_forbidden_addresses_are_refused() {
    let capture = CaptureServer::start().await;
    let p = capture.port();
    // The system resolver: localhost is 127.0.0.1 here (and perhaps ::1).
    let c = client_with(NetworkPolicy::default(), None);
    for host in ["localhost", "LOCALHOST", "LocalHost"] {
        let url = format!("http://{host}:{p}/app.git");
        let e = list_err(&c, &url, Some(&basic(PASSWORD))).await;
        assert_forbidden(&e, &url);
        assert!(e.message.contains("resolves to a loopback address"), "{}", e.message);
        assert_forbidden(&api_get(&c, &url).await.unwrap_err(), &url);
        assert_forbidden(&c.probe(host, p).await.unwrap_err(), host);
    }

    // Chosen answers: every address a name has must be forbidden for the name to be refused, and
    // all of them are named.
    let dns = Names::with(&[
        ("metadata.test", &[&["169.254.169.254"]]),
        ("mapped.test", &[&["::ffff:127.0.0.1"]]),
        ("nat64.test", &[&["64:ff9b::a9fe:a9fe"]]),
        ("aws6.test", &[&["fd00:ec2::254"]]),
        ("everything-local.test", &[&["127.0.0.1", "::1", "0.0.0.0", "fe80::1"]]),
    ]);
    let c = client_with(NetworkPolicy::default(), Some(dns.clone()));
    for host in ["metadata.test", "mapped.test", "nat64.test", "aws6.test", "everything-local.test"] {
        let url = format!("http://{host}:{p}/app.git");
        let e = list_err(&c, &url, Some(&basic(PASSWORD))).await;
        assert_forbidden(&e, &url);
        assert!(e.message.contains(&format!("{host} resolves to")), "{}", e.message);
        assert_forbidden(&api_get(&c, &url).await.unwrap_err(), &url);
        assert_forbidden(&c.probe(host, p).await.unwrap_err(), host);
    }
    let e = list_err(&c, &format!("http://everything-local.test:{p}/app.git"), None).await;
    assert_eq!(e.details, ["address: 127.0.0.1", "address: ::1", "address: 0.0.0.0", "address: fe80::1"]);
    // The substitute resolver really was asked (the refusals above are about its answers).
    assert!(dns.lookups.lock().unwrap().iter().any(|h| h == "metadata.test"));
    assert!(capture.requests().is_empty(), "a forbidden address was contacted: {:?}", capture.requests());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_allowed_addresses_of_a_name_are_contacted() {
    let f = fixture(Default::default()).await;
    bare_repo(f.root.path(), "app.git", "main", &["main"]);
    let port = f.server.port();
    // On the forbidden address, the same port: the address a careless client would try first.
    let trap = CaptureServer::start_on(SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)), port)).await;
    let dns = Names::with(&[("git.test", &[&["127.0.0.2", "127.0.0.1"]])]);
    let url = format!("http://git.test:{port}/git/app.git");

    let c = client_with(only_127_0_0_1(), Some(dns.clone()));
    let r = list_ok(&c, &url, None).await;
    assert_eq!(names(&r), ["main"]);
    let probe = c.probe("git.test", port).await.unwrap();
    assert_eq!(probe.addrs.len(), 2);
    assert_eq!(probe.allowed, ["127.0.0.1".parse::<IpAddr>().unwrap()]);
    assert_eq!(probe.connected_to, SocketAddr::new("127.0.0.1".parse().unwrap(), port));
    assert!(trap.requests().is_empty(), "the forbidden address was contacted: {:?}", trap.requests());

    // Control: when policy allows 127.0.0.2 too, the first address is used and the trap sees it,
    // so the emptiness above is evidence.
    let open = client_with(NetworkPolicy::parse_allow_list("127.0.0.1/32,127.0.0.2/32").unwrap(), Some(dns));
    let _ = list(&open, &url, None).await;
    assert!(!trap.requests().is_empty(), "the trap cannot observe a connection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_rebound_to_a_forbidden_address_after_the_check_is_refused() {
    let f = fixture(with_user()).await;
    bare_repo(f.root.path(), "app.git", "main", &["main"]);
    let port = f.server.port();
    let trap = CaptureServer::start_on(SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)), port)).await;
    // The first answer passes the dns/connect steps of a check; the next one points inside.
    let dns = Names::with(&[("rebind.test", &[&["127.0.0.1"], &["127.0.0.2"]])]);
    let c = client_with(only_127_0_0_1(), Some(dns.clone()));
    let probe = c.probe("rebind.test", port).await.unwrap();
    assert_eq!(probe.connected_to.ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
    let e = list_err(&c, &format!("http://rebind.test:{port}/git/app.git"), Some(&basic(PASSWORD))).await;
    assert_forbidden(&e, "rebound name");
    assert!(e.message.contains("rebind.test resolves to a loopback address (127.0.0.2)"), "{}", e.message);
    assert_eq!(dns.lookups.lock().unwrap().len(), 2, "the Git request resolved the name again");
    assert!(trap.requests().is_empty() && f.server.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_into_forbidden_addresses_are_refused() {
    let f = fixture(with_user()).await;
    let trap = CaptureServer::start_on(SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)), 0)).await;
    let t = trap.port();
    let g = f.server.port();
    let c = client_with(only_127_0_0_1(), None);
    let targets = [
        format!("http://127.0.0.2:{t}"),
        format!("http://[::ffff:127.0.0.2]:{t}"),
        format!("http://2130706434:{t}"),
        // 0.0.0.0 reaches this machine's listeners on Linux: here, the Git server itself.
        format!("http://0.0.0.0:{g}"),
        format!("http://[::1]:{g}"),
        "http://169.254.169.254".to_owned(),
        "http://[fd00:ec2::254]".to_owned(),
    ];
    for target in &targets {
        f.server.set_redirect_target(target);
        let before = f.server.requests().len();
        let e = list_err(&c, &format!("{}/moved/team/app.git", f.server.base_url()), Some(&basic(PASSWORD))).await;
        assert_forbidden(&e, target);
        assert_eq!((e.stage, e.http_status), (Stage::Discovery, Some(301)), "{target}");
        assert!(e.message.contains("redirected (HTTP 301) to") && e.message.contains("sent nothing there"), "{}", e.message);
        // Only the redirecting request reached the Git server: 0.0.0.0 and ::1 were not followed.
        assert_eq!(f.server.requests().len() - before, 1, "{target}");
        assert!(f.server.requests().iter().all(|r| r.path.starts_with("/moved/")));

        // The REST path reports the same.
        let e = api_get(&c, &format!("{}/moved/team/app.git/info/refs", f.server.base_url())).await.unwrap_err();
        assert_forbidden(&e, target);
    }

    // On the v2 command too.
    let v2 = [
        berth_testkit::pkt_line(b"# service=git-upload-pack\n"),
        b"0000".to_vec(),
        berth_testkit::pkt_line(b"version 2\n"),
        berth_testkit::pkt_line(b"ls-refs\n"),
        b"0000".to_vec(),
    ]
    .concat();
    let to_metadata = Canned::new(307, "text/plain", b"".to_vec()).with_header("location", "http://169.254.169.254/latest/api/token");
    f.server.set_canned("v2", Canned::advertisement(v2), Some(to_metadata));
    let e = list_err(&c, &format!("{}/canned/v2/app.git", f.server.base_url()), Some(&basic(PASSWORD))).await;
    assert_forbidden(&e, "v2 command");
    assert_eq!((e.stage, e.http_status), (Stage::LsRefs, Some(307)));
    assert!(trap.requests().is_empty(), "the forbidden address was contacted: {:?}", trap.requests());
}
