//! Git over SSH against a real OpenSSH `sshd` (berth-testkit's `SshServer`): protocol v2 and v0,
//! every key type (tags dropped), host keys judged before anything is authenticated, the server's refusals,
//! a stalled and an endless server, one that never sends its banner, and the SSRF spellings of
//! SSH URLs.

use crate::common::*;
use berth_core::{CloneUrl, Code, NetworkPolicy, StepName};
use berth_git::ssh::keys::{self, parse_private_key, parse_public_line};
use berth_git::ssh::{SshError, SshListing, SshRequest, TrustedKey};
use berth_git::{GitClient, GitClientConfig, Protocol};
use berth_testkit::{bare_repo, empty_repo, keygen, SshAccess, SshServer};
use russh::keys::PrivateKey;
use std::path::{Path, PathBuf};
use std::time::Duration;

struct Key {
    private: PrivateKey,
    public: String,
}

fn make_key(dir: &Path, t: &str, passphrase: &str) -> Key {
    let path = dir.join(format!("id_{t}_{}", passphrase.len()));
    let public = keygen(t, &path, passphrase);
    let text = std::fs::read_to_string(&path).unwrap();
    let pass = (!passphrase.is_empty()).then_some(passphrase);
    Key { private: parse_private_key(&text, pass).unwrap(), public }
}

fn trust_all(server: &SshServer) -> Vec<TrustedKey> {
    server
        .host_keys()
        .iter()
        .map(|l| TrustedKey { key: parse_public_line(l).unwrap(), source: "trusted by the test".to_owned() })
        .collect()
}

async fn list_ssh(
    client: &GitClient,
    server: &SshServer,
    path: &Path,
    key: &PrivateKey,
    trusted: &[TrustedKey],
) -> Result<SshListing, SshError> {
    let path = path.display().to_string();
    let req =
        SshRequest { host: "127.0.0.1", port: Some(server.port), path: &path, username: &server.user, key, trusted };
    client.ls_refs_ssh(req).await
}

fn ok(r: Result<SshListing, SshError>) -> SshListing {
    r.unwrap_or_else(|e| panic!("listing over SSH failed: {e:?}"))
}

fn err(r: Result<SshListing, SshError>) -> SshError {
    match r {
        Ok(l) => panic!("expected a failure, got {:?}", l.refs),
        Err(e) => e,
    }
}

struct Setup {
    _repos: tempfile::TempDir,
    repo: PathBuf,
    empty: PathBuf,
    keys_dir: tempfile::TempDir,
}

fn setup() -> Setup {
    let repos = tempfile::tempdir().unwrap();
    let repo = bare_repo(repos.path(), "team/app.git", "main", &["main", "develop", "feature/x"]);
    // Tags (a lightweight and an annotated one, with its peeled line in v0) are dropped while
    // the refs stream in, over SSH as over HTTPS: the branch lists below hold none.
    for args in [&["tag", "v1.0", "main"][..], &["tag", "-a", "-m", "release", "v2.0", "develop"][..]] {
        let out = std::process::Command::new("git")
            .arg("--git-dir")
            .arg(&repo)
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let empty = empty_repo(repos.path(), "team/empty.git", "trunk");
    Setup { _repos: repos, repo, empty, keys_dir: tempfile::tempdir().unwrap() }
}

#[tokio::test]
async fn lists_branches_and_default_over_v2_and_v0_with_every_key_type() {
    let s = setup();
    let mut v2 = SshServer::start(true);
    let mut v0 = SshServer::start(false);
    let client = client();
    let keys: Vec<Key> = vec![
        make_key(s.keys_dir.path(), "ed25519", ""),
        make_key(s.keys_dir.path(), "ecdsa", ""),
        make_key(s.keys_dir.path(), "rsa", ""),
        make_key(s.keys_dir.path(), "ed25519", "correct horse battery"),
    ];
    for k in &keys {
        v2.authorize(&k.public, SshAccess::All);
        v0.authorize(&k.public, SshAccess::All);
    }
    let generated = keys::generate_ed25519("berth").unwrap();
    v2.authorize(&generated.public_line, SshAccess::All);
    let generated_key = keys::open_secret(&keys::pack_secret(&generated.private_openssh, None)).unwrap();

    for (server, protocol) in [(&v2, Protocol::V2), (&v0, Protocol::V0)] {
        let trusted = trust_all(server);
        for k in &keys {
            let l = ok(list_ssh(&client, server, &s.repo, &k.private, &trusted).await);
            assert_eq!(l.refs.protocol, protocol, "{}", k.public);
            assert_eq!(l.refs.default_branch.as_deref(), Some("main"));
            let mut names: Vec<&str> = l.refs.branches.iter().map(|b| b.name.as_str()).collect();
            names.sort_unstable();
            assert_eq!(names, ["develop", "feature/x", "main"]);
            assert_eq!(l.trusted_by, "trusted by the test");
            assert!(l.host_key.fingerprint.starts_with("SHA256:"));
        }
        // An empty repository: no branches, HEAD names the unborn default.
        let l = ok(list_ssh(&client, server, &s.empty, &keys[0].private, &trusted).await);
        assert!(l.refs.branches.is_empty());
        if protocol == Protocol::V2 {
            assert_eq!(l.refs.default_branch.as_deref(), Some("trunk"));
        }
    }
    let l = ok(list_ssh(&client, &v2, &s.repo, &generated_key, &trust_all(&v2)).await);
    assert_eq!(l.refs.branches.len(), 3, "a key generated by Berth works as any other");
    let log = v2.log();
    assert!(log.contains(&format!("Accepted publickey for {}", v2.user)), "{log}");
}

#[tokio::test]
async fn unknown_and_changed_host_keys_stop_before_authentication() {
    let s = setup();
    let mut server = SshServer::start(true);
    let other = SshServer::start(true);
    let k = make_key(s.keys_dir.path(), "ed25519", "");
    server.authorize(&k.public, SshAccess::All);
    let client = client();

    let e = err(list_ssh(&client, &server, &s.repo, &k.private, &[]).await);
    assert_eq!((e.step, e.code), (StepName::SshHostKey, Code::HostKeyUnknown), "{e:?}");
    let presented = e.presented.clone().unwrap();
    assert_eq!(presented.host, server.host_label());
    assert!(e.message.contains(&presented.fingerprint) && e.message.contains(&presented.key_type), "{}", e.message);
    assert!(e.remedy.contains("berth known-hosts trust"), "{}", e.remedy);
    let served: Vec<String> =
        server.host_keys().iter().map(|l| keys::fingerprint(&parse_public_line(l).unwrap())).collect();
    assert!(served.contains(&presented.fingerprint), "the fingerprint shown is one the server has");

    // Another server's keys are trusted for this endpoint: the key presented has changed.
    let e = err(list_ssh(&client, &server, &s.repo, &k.private, &trust_all(&other)).await);
    assert_eq!((e.step, e.code), (StepName::SshHostKey, Code::HostKeyChanged), "{e:?}");
    assert!(e.details.iter().any(|d| d.starts_with("trusted: ")), "{:?}", e.details);
    assert!(e.details.iter().any(|d| d.starts_with("presented: ")), "{:?}", e.details);

    // Trusting only the RSA key makes Berth ask for RSA, so a host with several keys is not
    // mistaken for a changed one.
    let rsa_only: Vec<TrustedKey> = trust_all(&server).into_iter().filter(|t| t.key.algorithm().is_rsa()).collect();
    let l = ok(list_ssh(&client, &server, &s.repo, &k.private, &rsa_only).await);
    assert_eq!(l.host_key.key_type, "ssh-rsa");

    let log = server.log();
    assert_eq!(server.accepted_logins(), 1, "nothing was authenticated before trust: {log}");
    assert!(!log.contains("Failed publickey"), "the key was never offered to an untrusted host: {log}");
}

#[tokio::test]
async fn refusals_name_the_offered_key_and_the_servers_words() {
    let s = setup();
    let mut server = SshServer::start(true);
    let client = client();
    let trusted = trust_all(&server);
    let allowed = make_key(s.keys_dir.path(), "ed25519", "");
    let stranger = make_key(s.keys_dir.path(), "ecdsa", "");
    let narrow = make_key(s.keys_dir.path(), "rsa", "");
    server.authorize(&allowed.public, SshAccess::All);
    server.authorize(&narrow.public, SshAccess::Only(s.empty.clone()));

    let e = err(list_ssh(&client, &server, &s.repo, &stranger.private, &trusted).await);
    assert_eq!((e.step, e.code), (StepName::SshAuth, Code::AuthFailed), "{e:?}");
    let offered = keys::fingerprint(stranger.private.public_key());
    assert!(e.message.contains(&offered), "{}", e.message);

    let e = err(list_ssh(&client, &server, &s.repo, &narrow.private, &trusted).await);
    assert_eq!((e.step, e.code), (StepName::GitDiscovery, Code::AccessDenied), "{e:?}");
    assert!(e.message.contains("access denied or repository not exported"), "{}", e.message);

    let missing = s.repo.with_file_name("nope.git");
    let e = err(list_ssh(&client, &server, &missing, &allowed.private, &trusted).await);
    assert_eq!((e.step, e.code), (StepName::GitDiscovery, Code::RepositoryNotFoundOrNoAccess), "{e:?}");
}

#[tokio::test]
async fn stalled_and_endless_servers_are_cut_off() {
    let s = setup();
    let mut server = SshServer::start(false);
    let trusted = trust_all(&server);
    let stall = make_key(s.keys_dir.path(), "ed25519", "");
    let endless = make_key(s.keys_dir.path(), "ecdsa", "");
    server.authorize(&stall.public, SshAccess::Stall);
    server.authorize(&endless.public, SshAccess::Endless);
    let cfg = GitClientConfig {
        request_timeout: Duration::from_secs(3),
        max_advertisement_bytes: 2 * 1024 * 1024,
        ..config()
    };
    let client = GitClient::new(cfg).unwrap();
    let e = err(list_ssh(&client, &server, &s.repo, &stall.private, &trusted).await);
    assert_eq!((e.step, e.code), (StepName::GitDiscovery, Code::Timeout), "{e:?}");
    let e = err(list_ssh(&client, &server, &s.repo, &endless.private, &trusted).await);
    assert_eq!(e.code, Code::AdvertisementTooLarge, "{e:?}");
}

/// A server that accepts the TCP connection and never sends its SSH banner: the whole-request
/// deadline ends the handshake, named as a timeout at the handshake step, and nothing hangs.
#[tokio::test]
async fn a_server_that_never_sends_its_banner_is_a_handshake_timeout() {
    let s = setup();
    let k = make_key(s.keys_dir.path(), "ed25519", "");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((conn, _)) = listener.accept().await {
            open.push(conn); // kept open and silent
        }
    });
    let client = GitClient::new(GitClientConfig { request_timeout: Duration::from_secs(2), ..config() }).unwrap();
    let req = SshRequest {
        host: "127.0.0.1",
        port: Some(port),
        path: "/r.git",
        username: "git",
        key: &k.private,
        trusted: &[],
    };
    let e = err(client.ls_refs_ssh(req).await);
    assert_eq!((e.step, e.code), (StepName::SshHandshake, Code::Timeout), "{e:?}");
    assert!(e.message.contains(&format!("127.0.0.1:{port}")) || e.message.contains("127.0.0.1"), "{}", e.message);
    held.abort();
}

/// Every spelling of a loopback or metadata address in an SSH URL is refused before a TCP
/// connection is opened; the sshd listening there logs no connection.
#[tokio::test]
async fn ssrf_spellings_of_ssh_urls_are_refused_before_connecting() {
    let s = setup();
    let server = SshServer::start(true);
    let k = make_key(s.keys_dir.path(), "ed25519", "");
    let client = GitClient::new(GitClientConfig { policy: NetworkPolicy::default(), ..config() }).unwrap();
    let port = server.port;
    let spellings = [
        format!("ssh://git@127.0.0.1:{port}/r.git"),
        format!("ssh://git@127.1:{port}/r.git"),
        format!("ssh://git@2130706433:{port}/r.git"),
        format!("ssh://git@0x7f000001:{port}/r.git"),
        format!("ssh://git@0177.0.0.1:{port}/r.git"),
        format!("ssh://git@[::1]:{port}/r.git"),
        format!("ssh://git@[::ffff:127.0.0.1]:{port}/r.git"),
        format!("ssh://git@localhost:{port}/r.git"),
        "git@169.254.169.254:r.git".to_owned(),
        "git@[::ffff:169.254.169.254]:r.git".to_owned(),
    ];
    for spelling in &spellings {
        let Ok(u) = CloneUrl::parse(spelling, &[]) else { continue };
        let path = u.ssh_path();
        let req =
            SshRequest { host: &u.host, port: u.port, path: &path, username: "git", key: &k.private, trusted: &[] };
        let e = err(client.ls_refs_ssh(req).await);
        assert_eq!(e.code, Code::DestinationForbidden, "{spelling}: {e:?}");
    }
    assert!(!server.log().contains("Connection from"), "nothing reached sshd: {}", server.log());
}
