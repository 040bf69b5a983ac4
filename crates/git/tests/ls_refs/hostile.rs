//! Hostile and broken remotes: each misbehaviour ends in its own finding, within the configured
//! limits, and the credential goes only to the origin it was given for.
//!
//! Timing: the client gets a short request timeout (1 s) and every test is wrapped in a generous
//! bound (30 s) so that a regression hangs no test run; nothing here measures speed.

use crate::common::*;
use berth_core::Code;
use berth_git::{GitAuth, GitClient, GitClientConfig, GitError, Stage};
use berth_testkit::{pkt_line, sha256_hex, Canned, CaptureServer, Fault, FaultServer, RecordedRequest, SLOWLORIS_INTERVAL};
use std::future::Future;
use std::time::{Duration, Instant};

const OID: &str = "1111111111111111111111111111111111111111";
const LIMIT: Duration = Duration::from_secs(1);
const BOUND: Duration = Duration::from_secs(30);

fn quick() -> GitClient {
    GitClient::new(GitClientConfig { request_timeout: LIMIT, ..config() }).unwrap()
}

/// Runs `fut`, failing the test if it has not ended within [`BOUND`].
async fn bounded<T>(what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(BOUND, fut).await {
        Ok(v) => v,
        Err(_) => panic!("{what} did not end within {BOUND:?}: a limit is not enforced"),
    }
}

fn pkts(lines: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for l in lines {
        match *l {
            "0000" | "0001" | "0002" => out.extend_from_slice(l.as_bytes()),
            _ => out.extend(pkt_line(l.as_bytes())),
        }
    }
    out
}

/// A protocol v2 discovery answer as git http-backend sends it.
fn v2_discovery() -> Vec<u8> {
    pkts(&["# service=git-upload-pack\n", "0000", "version 2\n", "agent=git/2.47\n", "ls-refs=unborn\n", "fetch=shallow\n", "object-format=sha1\n", "0000"])
}

fn v0_preamble() -> Vec<u8> {
    pkts(&["# service=git-upload-pack\n", "0000", &format!("{OID} HEAD\0multi_ack symref=HEAD:refs/heads/main agent=x\n")])
}

fn basic_header() -> String {
    let auth = format!("{USER}:{PASSWORD}");
    format!("Basic {}", base64(auth.as_bytes()))
}

fn base64(b: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in b.chunks(3) {
        let n = (u32::from(c[0]) << 16) | (u32::from(*c.get(1).unwrap_or(&0)) << 8) | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            out.push(if i <= c.len() { T[((n >> (18 - 6 * i)) & 63) as usize] as char } else { '=' });
        }
    }
    out
}

/// Every request carried exactly our Basic credential (it went where it was meant to go).
fn all_carry_our_credential(reqs: &[RecordedRequest]) {
    let want = sha256_hex(basic_header().as_bytes());
    assert!(!reqs.is_empty());
    for r in reqs {
        assert_eq!(r.authorization_sha256.as_deref(), Some(want.as_str()), "{r:?}");
    }
}

async fn err_within(c: &GitClient, url: &str, auth: Option<&GitAuth>) -> (GitError, Duration) {
    let started = Instant::now();
    let e = bounded(url, list_err(c, url, auth)).await;
    (e, started.elapsed())
}

// ---------------------------------------------------------------------------------------------
// Time

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_body_hits_the_whole_request_timeout() {
    let f = fixture(Default::default()).await;
    let url = format!("{}/slowloris/team/app.git", f.server.base_url());
    let (e, took) = err_within(&quick(), &url, Some(&basic(PASSWORD))).await;
    assert_eq!(e.code, Code::Timeout, "{e:?}");
    assert!(e.message.contains("did not finish answering") && e.message.contains("1 s"), "{}", e.message);
    assert!(took >= LIMIT, "ended before the limit: {took:?}");
    // Data kept arriving far more often than the limit: a timeout reset by every read would
    // never have fired. The limit covers the whole request.
    let sent = f.server.slowloris_bytes_sent();
    assert!(sent >= 10, "only {sent} bytes were sent");
    assert!(SLOWLORIS_INTERVAL * 10 < LIMIT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_dribbled_forever_hit_the_request_timeout() {
    let s = FaultServer::start(Fault::SlowHeaders).await;
    let url = format!("{}/team/app.git", s.base_url());
    let (e, took) = err_within(&quick(), &url, Some(&basic(PASSWORD))).await;
    assert_eq!((e.code, e.stage), (Code::Timeout, Stage::Discovery), "{e:?}");
    assert!(took >= LIMIT, "ended before the limit: {took:?}");
    assert!(s.bytes_sent() >= 10, "only {} bytes were sent", s.bytes_sent());
    assert!(FaultServer::INTERVAL * 10 < LIMIT);
    all_carry_our_credential(&s.requests());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stall_ends_with_timeout_within_the_limit() {
    let f = fixture(Default::default()).await;
    let url = format!("{}/stall/team/app.git", f.server.base_url());
    let (e, took) = err_within(&quick(), &url, None).await;
    assert_eq!((e.code, e.stage), (Code::Timeout, Stage::Discovery), "{e:?}");
    assert!(took >= LIMIT, "{took:?}");
}

// ---------------------------------------------------------------------------------------------
// Broken connections

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_reset_mid_advertisement_is_connect_failed() {
    let s = FaultServer::start(Fault::ResetMidAdvertisement).await;
    let (e, _) = err_within(&quick(), &format!("{}/team/app.git", s.base_url()), Some(&basic(PASSWORD))).await;
    assert_eq!(e.code, Code::ConnectFailed, "{e:?}");
    assert!(e.message.contains("reset the connection"), "{}", e.message);
    all_carry_our_credential(&s.requests());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_closed_short_of_its_length_is_reported() {
    let s = FaultServer::start(Fault::CloseMidAdvertisement).await;
    let (e, _) = err_within(&quick(), &format!("{}/team/app.git", s.base_url()), None).await;
    assert_eq!(e.code, Code::ConnectFailed, "{e:?}");
    assert!(e.message.contains("closed the connection in the middle of the answer"), "{}", e.message);
}

// ---------------------------------------------------------------------------------------------
// Size

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_v0_advertisement_stops_at_the_cap() {
    let f = fixture(Default::default()).await;
    let c = GitClient::new(GitClientConfig { max_advertisement_bytes: 256 * 1024, ..config() }).unwrap();
    let (e, _) = err_within(&c, &format!("{}/huge/team/app.git", f.server.base_url()), None).await;
    assert_eq!((e.code, e.stage), (Code::AdvertisementTooLarge, Stage::LsRefs), "{e:?}");
    assert!(e.message.contains("256 KiB"), "{}", e.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_v2_ls_refs_answer_stops_at_the_cap() {
    let f = fixture(Default::default()).await;
    let mut answer = Vec::new();
    for i in 0..40_000 {
        answer.extend(pkt_line(format!("{OID} refs/heads/b-{i:06}\n").as_bytes()));
    }
    answer.extend_from_slice(b"0000");
    assert!(answer.len() > 2 * 1024 * 1024);
    f.server.set_canned("big", Canned::advertisement(v2_discovery()), Some(Canned::result(answer)));
    let url = format!("{}/canned/big/app.git", f.server.base_url());
    let c = GitClient::new(GitClientConfig { max_advertisement_bytes: 1024 * 1024, ..config() }).unwrap();
    let (e, _) = err_within(&c, &url, None).await;
    assert_eq!((e.code, e.stage), (Code::AdvertisementTooLarge, Stage::LsRefs), "{e:?}");
    assert_eq!(e.details, ["limit: 1048576 bytes"]);
    // The same answer under a cap it fits in is understood: the cap, not the content, failed it.
    let r = list_ok(&client(), &url, None).await;
    assert_eq!(r.branches.len(), 40_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pkt_line_longer_than_the_maximum_is_refused() {
    let f = fixture(Default::default()).await;
    for (name, header) in [("fff1", "fff1"), ("ffff", "ffff")] {
        let mut body = v0_preamble();
        body.extend_from_slice(header.as_bytes());
        body.extend(std::iter::repeat_n(b'x', 70_000));
        f.server.set_canned(name, Canned::advertisement(body), None);
        let (e, _) = err_within(&client(), &format!("{}/canned/{name}/app.git", f.server.base_url()), None).await;
        assert_eq!(e.code, Code::ProtocolError, "{e:?}");
        assert!(e.message.contains("exceeds the 65520-byte maximum"), "{name}: {}", e.message);
    }
}

// ---------------------------------------------------------------------------------------------
// Malformed pkt-lines

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_discovery_answers_are_protocol_errors() {
    let f = fixture(Default::default()).await;
    let svc = pkts(&["# service=git-upload-pack\n", "0000"]);
    let with_svc = |rest: &[u8]| [svc.as_slice(), rest].concat();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("bad-hex", b"00zzhello".to_vec(), "not four hex digits"),
        ("html", b"<!DOCTYPE html><html><body>hi</body></html>".to_vec(), "not four hex digits"),
        ("len3", b"0003abc".to_vec(), "lengths 1 to 3 are reserved"),
        ("len3-after-svc", with_svc(b"0003"), "lengths 1 to 3 are reserved"),
        ("delim", with_svc(b"0001"), "Unexpected Delim"),
        ("response-end", b"0002".to_vec(), "Unexpected ResponseEnd"),
        ("svc-no-flush", pkts(&["# service=git-upload-pack\n", "version 2\n"]), "not followed by a flush"),
        ("truncated", with_svc(b"00ffabc"), "ended inside a pkt-line"),
        ("short-header", with_svc(b"00"), "ended inside a pkt-line"),
        ("ends-early", v0_preamble(), "ended early"),
        ("err", with_svc(&pkt_line(b"ERR upload-pack: not our ref\n")), "The server reported an error: upload-pack: not our ref"),
        ("bad-oid", with_svc(&pkts(&["zz11 HEAD\0caps\n", "0000"])), "invalid object id"),
        ("no-space", with_svc(&pkts(&["nospace\n", "0000"])), "without a space"),
        ("v2-caps-delim", pkts(&["version 2\n", "ls-refs\n", "0001"]), "Unexpected Delim in the v2 capabilities"),
        ("v2-without-ls-refs", pkts(&["version 2\n", "fetch\n", "0000"]), "does not offer the ls-refs command"),
    ];
    for (name, body, says) in cases {
        f.server.set_canned(name, Canned::advertisement(body), None);
        let (e, _) = err_within(&client(), &format!("{}/canned/{name}/app.git", f.server.base_url()), None).await;
        assert_eq!(e.code, Code::ProtocolError, "{name}: {e:?}");
        assert!(e.message.contains(says), "{name}: {}", e.message);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_ls_refs_answers_are_protocol_errors() {
    let f = fixture(Default::default()).await;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("bad-hex", b"0g00".to_vec(), "not four hex digits"),
        ("len3", b"0003".to_vec(), "lengths 1 to 3 are reserved"),
        ("oversized", [b"fff5".as_slice(), &[b'x'; 70_000]].concat(), "exceeds the 65520-byte maximum"),
        ("delim", pkts(&[&format!("{OID} refs/heads/main\n"), "0001"]), "Unexpected delimiter"),
        ("no-end", pkts(&[&format!("{OID} refs/heads/main\n")]), "ended early"),
        ("bad-oid", pkts(&["nothex refs/heads/main\n", "0000"]), "invalid object id"),
        ("no-name", pkts(&[&format!("{OID}\n"), "0000"]), "without a ref name"),
        ("err", pkt_line(b"ERR ls-refs: nope\n"), "The server reported an error: ls-refs: nope"),
    ];
    for (name, body, says) in cases {
        f.server.set_canned(name, Canned::advertisement(v2_discovery()), Some(Canned::result(body)));
        let (e, _) = err_within(&client(), &format!("{}/canned/{name}/app.git", f.server.base_url()), None).await;
        assert_eq!((e.code, e.stage), (Code::ProtocolError, Stage::LsRefs), "{name}: {e:?}");
        assert!(e.message.contains(says), "{name}: {}", e.message);
    }
}

/// The canned answers are understood when they are well-formed, so the failures above come from
/// the malformation and not from the fixture.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn well_formed_canned_answers_are_understood() {
    let f = fixture(Default::default()).await;
    let answer = pkts(&[&format!("{OID} HEAD symref-target:refs/heads/main\n"), &format!("{OID} refs/heads/main\n"), "0000"]);
    f.server.set_canned("v2", Canned::advertisement(v2_discovery()), Some(Canned::result(answer)));
    let r = list_ok(&client(), &format!("{}/canned/v2/app.git", f.server.base_url()), None).await;
    assert_eq!((names(&r), r.default_branch.as_deref()), (vec!["main"], Some("main")));

    let v0 = [v0_preamble(), pkts(&[&format!("{OID} refs/heads/main\n"), "0000"])].concat();
    f.server.set_canned("v0", Canned::advertisement(v0), None);
    let r = list_ok(&client(), &format!("{}/canned/v0/app.git", f.server.base_url()), None).await;
    assert_eq!((names(&r), r.default_branch.as_deref()), (vec!["main"], Some("main")));
}

// ---------------------------------------------------------------------------------------------
// Content types

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_content_types_are_named() {
    let f = fixture(Default::default()).await;
    f.server.set_canned("json", Canned::new(200, "application/json", br#"{"message":"hello"}"#.to_vec()), None);
    let (e, _) = err_within(&client(), &format!("{}/canned/json/app.git", f.server.base_url()), None).await;
    assert_eq!((e.code, e.stage), (Code::NotAGitServer, Stage::Discovery), "{e:?}");
    assert!(e.message.contains("content of type application/json"), "{}", e.message);

    // A valid advertisement under the wrong type is still not trusted as one.
    f.server.set_canned("plain", Canned::new(200, "text/plain", v2_discovery()), None);
    let (e, _) = err_within(&client(), &format!("{}/canned/plain/app.git", f.server.base_url()), None).await;
    assert_eq!(e.code, Code::NotAGitServer, "{e:?}");

    let none = Canned { status: 200, headers: vec![], body: v2_discovery() };
    f.server.set_canned("none", none, None);
    let (e, _) = err_within(&client(), &format!("{}/canned/none/app.git", f.server.base_url()), None).await;
    assert_eq!(e.code, Code::NotAGitServer, "{e:?}");
    assert!(e.message.contains("without a content type"), "{}", e.message);

    let answer = pkts(&[&format!("{OID} refs/heads/main\n"), "0000"]);
    f.server.set_canned("v2-html", Canned::advertisement(v2_discovery()), Some(Canned::new(200, "text/html", answer)));
    let (e, _) = err_within(&client(), &format!("{}/canned/v2-html/app.git", f.server.base_url()), None).await;
    assert_eq!((e.code, e.stage), (Code::ProtocolError, Stage::LsRefs), "{e:?}");
    assert!(e.message.contains("\"text/html\""), "{}", e.message);
}

// ---------------------------------------------------------------------------------------------
// Redirects

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_loop_ends_after_the_allowed_hops() {
    let f = fixture(with_user()).await;
    for max in [5u8, 1] {
        let before = f.server.requests().len();
        let c = GitClient::new(GitClientConfig { max_redirects: max, ..config() }).unwrap();
        let (e, _) = err_within(&c, &format!("{}/redirect-loop/team/app.git", f.server.base_url()), Some(&basic(PASSWORD))).await;
        assert_eq!((e.code, e.http_status), (Code::ProtocolError, Some(302)), "{e:?}");
        assert!(e.message.contains(&format!("more than {max} times")), "{}", e.message);
        // The first request and `max` redirects followed, no more.
        assert_eq!(f.server.requests().len() - before, usize::from(max) + 1);
    }
    all_carry_our_credential(&f.server.requests());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_origin_redirects_never_carry_a_credential_there() {
    let f = fixture(with_user()).await;
    let capture = CaptureServer::start().await;
    let there = format!("{}/git/team/app.git/git-upload-pack", capture.base_url());
    for status in [301u16, 302, 303, 307, 308] {
        let name = format!("r{status}");
        let redirect = Canned::new(status, "text/plain", b"moved".to_vec()).with_header("location", &there);
        f.server.set_canned(&name, Canned::advertisement(v2_discovery()), Some(redirect.clone()));
        f.server.set_canned(&format!("{name}-discovery"), redirect, None);
        for auth in [basic(PASSWORD), GitAuth::Bearer(PASSWORD.to_owned().into())] {
            for (path, stage) in [(name.clone(), Stage::LsRefs), (format!("{name}-discovery"), Stage::Discovery)] {
                let url = format!("{}/canned/{path}/app.git", f.server.base_url());
                let (e, _) = err_within(&client(), &url, Some(&auth)).await;
                assert_eq!((e.code, e.stage, e.http_status), (Code::RepositoryMoved, stage, Some(status)), "{path}: {e:?}");
                assert!(e.message.contains(&capture.base_url()), "{}", e.message);
            }
        }
    }
    // Through discovery, the v2 command, every status and both kinds of credential: nothing at all
    // reached the other origin.
    assert!(capture.requests().is_empty(), "the other origin was contacted: {:?}", capture.requests());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_without_a_location_is_a_protocol_error() {
    let f = fixture(Default::default()).await;
    f.server.set_canned("noloc", Canned::new(302, "text/plain", b"".to_vec()), None);
    let (e, _) = err_within(&client(), &format!("{}/canned/noloc/app.git", f.server.base_url()), None).await;
    assert_eq!((e.code, e.http_status), (Code::ProtocolError, Some(302)), "{e:?}");
    assert!(e.message.contains("without a usable Location"), "{}", e.message);
}

// ---------------------------------------------------------------------------------------------
// Statuses

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_server_error_with_the_servers_words() {
    let f = fixture(Default::default()).await;
    for status in [500u16, 502, 503, 504] {
        let (e, _) = err_within(&client(), &format!("{}/status/{status}/team/app.git", f.server.base_url()), None).await;
        assert_eq!((e.code, e.stage, e.http_status), (Code::ServerError, Stage::Discovery, Some(status)), "{e:?}");
        assert_eq!(e.details, [format!("the test server answers {status}")]);
    }
    f.server.set_canned("v2-503", Canned::advertisement(v2_discovery()), Some(Canned::new(503, "text/plain", b"remote: maintenance\n".to_vec())));
    let (e, _) = err_within(&client(), &format!("{}/canned/v2-503/app.git", f.server.base_url()), None).await;
    assert_eq!((e.code, e.stage, e.http_status), (Code::ServerError, Stage::LsRefs, Some(503)), "{e:?}");
    assert_eq!(e.details, ["maintenance"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_on_the_v2_command() {
    let f = fixture(Default::default()).await;
    let limited = Canned::new(429, "text/plain", b"slow down\n".to_vec()).with_header("retry-after", "5");
    f.server.set_canned("v2-429", Canned::advertisement(v2_discovery()), Some(limited));
    let (e, _) = err_within(&client(), &format!("{}/canned/v2-429/app.git", f.server.base_url()), None).await;
    assert_eq!((e.code, e.stage, e.http_status), (Code::RateLimited, Stage::LsRefs, Some(429)), "{e:?}");
    assert_eq!(e.retry_after, Some(Duration::from_secs(5)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unexpected_status_is_a_protocol_error() {
    let f = fixture(Default::default()).await;
    let (e, _) = err_within(&client(), &format!("{}/status/418/team/app.git", f.server.base_url()), None).await;
    assert_eq!((e.code, e.http_status), (Code::ProtocolError, Some(418)), "{e:?}");
}
