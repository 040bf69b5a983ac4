//! The SSH exchange: TCP under the policy, handshake, host key, public-key authentication,
//! `git-upload-pack`, and the pkt-lines of its answer.

use super::keys::{fingerprint, key_type, public_line};
use super::known_hosts::{host_label, judge, HostKeyVerdict, TrustedKey};
use super::{sq_quote, PresentedKey, SshError};
use crate::advert::{Discovered, DiscoveryParser, LsRefsParser};
use crate::pktline::{Pkt, PktDecoder, PktError};
use crate::{GitClient, Probe, RemoteRefs, Stage};
use berth_core::{Code, StepName};
use russh::client::{self, Handle, Msg};
use russh::keys::{Algorithm, HashAlg, PrivateKey, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::{Channel, ChannelMsg, Disconnect};
use std::borrow::Cow;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One listing over SSH.
pub struct SshRequest<'a> {
    pub host: &'a str,
    /// The URL's port; `None` is 22.
    pub port: Option<u16>,
    /// The repository path as `git-upload-pack` takes it (`/ws/repo.git`), unquoted.
    pub path: &'a str,
    pub username: &'a str,
    pub key: &'a PrivateKey,
    /// The keys trusted for this host (pinned and stored); empty when none is.
    pub trusted: &'a [TrustedKey],
}

/// What a listing over SSH found, with what each step took.
#[derive(Debug)]
pub struct SshListing {
    pub refs: RemoteRefs,
    pub probe: Probe,
    pub host_key: PresentedKey,
    /// Why the host key is trusted ("pinned in Berth …", "trusted by …").
    pub trusted_by: String,
    pub handshake: Duration,
    pub auth: Duration,
    pub listing: Duration,
}

/// How far the exchange got, shared with the handler russh calls and read when the deadline
/// passes.
#[derive(Debug, Default)]
struct Progress {
    step: Option<StepName>,
    presented: Option<PresentedKey>,
    verdict: Option<HostKeyVerdict>,
}

type Shared = Arc<Mutex<Progress>>;

fn update(p: &Shared, f: impl FnOnce(&mut Progress)) {
    if let Ok(mut g) = p.lock() {
        f(&mut g);
    }
}

fn read<T>(p: &Shared, f: impl FnOnce(&Progress) -> T) -> Option<T> {
    p.lock().ok().map(|g| f(&g))
}

struct Handler {
    label: String,
    trusted: Vec<TrustedKey>,
    progress: Shared,
}

impl client::Handler for Handler {
    type Error = russh::Error;

    async fn check_server_key(&mut self, key: &PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        let key = match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => key.clone(),
            // Host certificates are not asked for (no certificate algorithms are offered).
            PublicKeyOrCertificate::Certificate(c) => c.public_key().clone().into(),
        };
        let presented = PresentedKey {
            host: self.label.clone(),
            key_type: key_type(&key),
            fingerprint: fingerprint(&key),
            public_line: public_line(&key),
        };
        let verdict = judge(&key, &self.trusted);
        let ok = matches!(verdict, HostKeyVerdict::Trusted { .. });
        update(&self.progress, |p| {
            p.presented = Some(presented);
            p.verdict = Some(verdict);
            p.step = Some(if ok { StepName::SshAuth } else { StepName::SshHostKey });
        });
        Ok(ok)
    }
}

/// The host-key algorithms to ask for: those of the trusted keys when there are any, as
/// OpenSSH orders them after `known_hosts`, so a host with several keys presents one Berth
/// knows (rather than a newer type that would look like a changed key).
fn host_key_algorithms(trusted: &[TrustedKey]) -> Option<Vec<Algorithm>> {
    if trusted.is_empty() {
        return None;
    }
    let mut out = Vec::new();
    for t in trusted {
        let algs = match t.key.algorithm() {
            Algorithm::Rsa { .. } => {
                vec![Algorithm::Rsa { hash: Some(HashAlg::Sha512) }, Algorithm::Rsa { hash: Some(HashAlg::Sha256) }]
            }
            other => vec![other],
        };
        for a in algs {
            if !out.contains(&a) {
                out.push(a);
            }
        }
    }
    Some(out)
}

impl GitClient {
    /// Lists the branches and the default branch of a repository over SSH.
    pub async fn ls_refs_ssh(&self, req: SshRequest<'_>) -> Result<SshListing, SshError> {
        let port = req.port.unwrap_or(22);
        // One deadline for the whole request, the connection included (as for HTTPS): a name
        // with many slow addresses cannot stretch it past `request_timeout`.
        let limit = self.config().request_timeout;
        let deadline = tokio::time::Instant::now() + limit;
        let (stream, probe) = match tokio::time::timeout_at(deadline, self.net().connect_tcp(req.host, port)).await {
            Ok(connected) => connected?,
            Err(_) => {
                return Err(SshError::new(
                    StepName::SshHandshake,
                    Code::Timeout,
                    format!("{}:{port} could not be reached within {} s.", req.host, limit.as_secs_f64()),
                    "Check the host name and port, and that this machine may reach the host's SSH port (a \
                     firewall that drops packets looks like this).",
                ))
            }
        };
        let progress: Shared =
            Arc::new(Mutex::new(Progress { step: Some(StepName::SshHandshake), ..Progress::default() }));
        match tokio::time::timeout_at(deadline, self.exchange(stream, probe, &req, progress.clone())).await {
            Ok(r) => r,
            Err(_) => {
                let step = read(&progress, |p| p.step).flatten().unwrap_or(StepName::SshHandshake);
                let doing = match step {
                    StepName::SshHandshake | StepName::SshHostKey => "the SSH handshake",
                    StepName::SshAuth => "SSH authentication",
                    StepName::GitDiscovery => "the ref advertisement of git-upload-pack",
                    _ => "the branch listing of git-upload-pack",
                };
                Err(SshError::new(
                    step,
                    Code::Timeout,
                    format!("{} did not finish {doing} within {} s.", req.host, limit.as_secs_f64()),
                    "The SSH server accepted the connection but stalled. Try again later; if it persists, the host's \
                     administrator should look at its SSH service.",
                ))
            }
        }
    }

    async fn exchange(
        &self,
        stream: tokio::net::TcpStream,
        probe: Probe,
        req: &SshRequest<'_>,
        progress: Shared,
    ) -> Result<SshListing, SshError> {
        let label = host_label(req.host, req.port);
        let mut config = client::Config { inactivity_timeout: None, nodelay: true, ..client::Config::default() };
        config.client_id = russh::SshId::Standard(Cow::Owned(format!(
            "SSH-2.0-{}",
            crate::agent_of(&self.config().user_agent).replace([' ', '-'], "_")
        )));
        if let Some(algs) = host_key_algorithms(req.trusted) {
            config.preferred.key = Cow::Owned(algs);
        }
        let handler = Handler { label: label.clone(), trusted: req.trusted.to_vec(), progress: progress.clone() };
        let t = Instant::now();
        let connected = client::connect_stream(Arc::new(config), stream, handler).await;
        let handshake = t.elapsed();
        let (presented, verdict) = read(&progress, |p| (p.presented.clone(), p.verdict.clone())).unwrap_or_default();
        let mut session = match (connected, presented, verdict) {
            (Ok(s), Some(presented), Some(HostKeyVerdict::Trusted { source })) => {
                Handshaken { session: s, presented, source }
            }
            (_, Some(presented), Some(HostKeyVerdict::Unknown)) => return Err(unknown_key(presented)),
            (_, Some(presented), Some(HostKeyVerdict::Changed { expected })) => {
                return Err(changed_key(presented, expected))
            }
            (Err(e), _, _) => return Err(handshake_failed(req.host, &e)),
            (Ok(_), _, _) => {
                return Err(SshError::new(
                    StepName::SshHostKey,
                    Code::ProtocolError,
                    "the SSH server completed the handshake without presenting a host key",
                    "this is not a working SSH server; check the host and port",
                ))
            }
        };
        let host_key = session.presented.clone();
        let trusted_by = std::mem::take(&mut session.source);
        let mut session = session.session;

        let known = |mut e: SshError| {
            e.presented = Some(host_key.clone());
            e.trusted_by = Some(trusted_by.clone());
            e
        };
        let t = Instant::now();
        authenticate(&mut session, req).await.map_err(known)?;
        let auth = t.elapsed();
        update(&progress, |p| p.step = Some(StepName::GitDiscovery));

        let t = Instant::now();
        let refs = self.upload_pack(&session, req, &progress).await.map_err(known);
        let listing = t.elapsed();
        // A polite goodbye; the answer is already in hand, so its failure changes nothing.
        let _ = session.disconnect(Disconnect::ByApplication, "", "en").await;
        Ok(SshListing { refs: refs?, probe, host_key, trusted_by, handshake, auth, listing })
    }

    async fn upload_pack(
        &self,
        session: &Handle<Handler>,
        req: &SshRequest<'_>,
        progress: &Shared,
    ) -> Result<RemoteRefs, SshError> {
        let cfg = self.config();
        let channel_error = |e: russh::Error| {
            SshError::new(
                StepName::GitDiscovery,
                Code::ProtocolError,
                format!("the SSH server would not run git-upload-pack: {e}"),
                "check that the host serves Git over SSH on this port",
            )
        };
        let channel = session.channel_open_session().await.map_err(channel_error)?;
        // As git does: ask for v2 in the environment; a server that does not accept the
        // variable answers with a v0 advertisement.
        channel.set_env(false, "GIT_PROTOCOL", "version=2").await.map_err(channel_error)?;
        channel.exec(true, format!("git-upload-pack {}", sq_quote(req.path))).await.map_err(channel_error)?;
        let mut reader = ChannelPkts::new(channel, cfg.max_advertisement_bytes);
        let mut parser = DiscoveryParser::new();
        let found = loop {
            let pkt = reader.next_required().await?;
            if let Some(found) = parser.push(pkt)? {
                break found;
            }
            reader.stage = parser.stage();
            if parser.stage() == Stage::LsRefs {
                update(progress, |p| p.step = Some(StepName::Branches));
            }
        };
        let refs = match found {
            Discovered::V0(refs) => {
                // No wants: a flush ends the conversation.
                reader.send(b"0000").await;
                refs
            }
            Discovered::V2(caps) => {
                update(progress, |p| p.step = Some(StepName::Branches));
                let body = crate::ls_refs_request(&caps, &cfg.user_agent)?;
                reader.send(&body).await;
                reader.stage = Stage::LsRefs;
                let mut parser = LsRefsParser::new();
                let refs = loop {
                    if let Some(refs) = parser.push(reader.next_required().await?)? {
                        break refs;
                    }
                };
                reader.send(b"0000").await;
                refs
            }
        };
        reader.finish().await;
        Ok(refs)
    }
}

struct Handshaken {
    session: Handle<Handler>,
    presented: PresentedKey,
    source: String,
}

async fn authenticate(session: &mut Handle<Handler>, req: &SshRequest<'_>) -> Result<(), SshError> {
    let offered = fingerprint(req.key.public_key());
    let kind = key_type(req.key.public_key());
    let hash = session.best_supported_rsa_hash().await.ok().flatten().flatten();
    let key = PrivateKeyWithHashAlg::new(Arc::new(req.key.clone()), hash);
    let refused = |why: String| {
        SshError::new(
            StepName::SshAuth,
            Code::AuthFailed,
            format!("{} did not accept the {kind} key {offered} for user {:?}{why}", req.host, req.username),
            "add the credential's public key where the host takes it: Bitbucket repository settings > Access keys, \
             GitHub repository settings > Deploy keys, or the SSH keys of the account; check the username (git on \
             Bitbucket, GitHub and GitLab)",
        )
        .with_details(vec![format!("offered key: {kind} {offered}"), format!("user: {}", req.username)])
    };
    match session.authenticate_publickey(req.username, key).await {
        Ok(r) if r.success() => Ok(()),
        Ok(_) => Err(refused(String::new())),
        Err(e) => Err(refused(format!(" ({e})"))),
    }
}

fn unknown_key(presented: PresentedKey) -> SshError {
    let mut e = SshError::new(
        StepName::SshHostKey,
        Code::HostKeyUnknown,
        format!(
            "{} presented the {} host key {}, which Berth has no record of; nothing was authenticated",
            presented.host, presented.key_type, presented.fingerprint
        ),
        format!(
            "compare {} with the fingerprint the host publishes (its administrator or documentation), then trust it: \
             \"Trust this key\" on the page, or berth known-hosts trust {} --fingerprint {}",
            presented.fingerprint, presented.host, presented.fingerprint
        ),
    )
    .with_details(vec![
        format!("host: {}", presented.host),
        format!("key type: {}", presented.key_type),
        format!("fingerprint: {}", presented.fingerprint),
    ]);
    e.presented = Some(presented);
    e
}

fn changed_key(presented: PresentedKey, expected: Vec<String>) -> SshError {
    let mut details = vec![
        format!("host: {}", presented.host),
        format!("presented: {} {}", presented.key_type, presented.fingerprint),
    ];
    details.extend(expected.iter().map(|k| format!("trusted: {k}")));
    let mut e = SshError::new(
        StepName::SshHostKey,
        Code::HostKeyChanged,
        format!(
            "{} presented the {} host key {}, not the key trusted for it ({}); the credential was not offered",
            presented.host,
            presented.key_type,
            presented.fingerprint,
            expected.join(", ")
        ),
        "someone may be intercepting the connection, or the host replaced its key: confirm the new fingerprint with \
         the host's administrator or published keys before an administrator removes the old key and trusts the new one",
    )
    .with_details(details);
    e.presented = Some(presented);
    e
}

fn handshake_failed(host: &str, e: &russh::Error) -> SshError {
    let (code, remedy) = match e {
        russh::Error::IO(_) | russh::Error::Disconnect | russh::Error::HUP => (
            Code::ConnectFailed,
            "the server closed the connection during the SSH handshake; check the host and port (Git over SSH is \
             usually port 22) and that no firewall cuts SSH",
        ),
        russh::Error::NoCommonAlgo { .. } => (
            Code::ProtocolError,
            "the server and Berth share no SSH algorithm; the host's administrator should enable a current one",
        ),
        _ => (Code::ProtocolError, "check that the host and port in the URL are those of an SSH server"),
    };
    SshError::new(StepName::SshHandshake, code, format!("the SSH handshake with {host} failed: {e}"), remedy)
}

/// pkt-lines from the channel's standard output, under the advertisement cap; the server's
/// standard error is kept (bounded) to say why it refused.
struct ChannelPkts {
    channel: Channel<Msg>,
    dec: PktDecoder,
    received: u64,
    cap: u64,
    stderr: Vec<u8>,
    exit: Option<u32>,
    eof: bool,
    stage: Stage,
}

/// Bytes of the server's standard error kept for the finding.
const STDERR_KEPT: usize = 4096;

impl ChannelPkts {
    fn new(channel: Channel<Msg>, cap: u64) -> Self {
        ChannelPkts {
            channel,
            dec: PktDecoder::new(),
            received: 0,
            cap,
            stderr: Vec::new(),
            exit: None,
            eof: false,
            stage: Stage::Discovery,
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        // A server that already hung up is told nothing more; its answer decides.
        let _ = self.channel.data(bytes).await;
    }

    async fn finish(self) {
        let _ = self.channel.eof().await;
        let _ = self.channel.close().await;
    }

    async fn next_required(&mut self) -> Result<Pkt, SshError> {
        loop {
            match self.dec.next_pkt() {
                Ok(Some(p)) => return Ok(p),
                Ok(None) => {}
                Err(PktError::Remote(msg)) => return Err(self.refusal(&msg)),
                Err(e) => return Err(crate::smart::pkt_error(e, self.stage, "git-upload-pack over SSH").into()),
            }
            if self.eof {
                return Err(self.ended());
            }
            match self.channel.wait().await {
                Some(ChannelMsg::Data { data }) => {
                    self.received += data.len() as u64;
                    if self.received > self.cap {
                        return Err(self.too_large());
                    }
                    self.dec.feed(&data);
                }
                Some(ChannelMsg::ExtendedData { data, .. }) => {
                    let room = STDERR_KEPT.saturating_sub(self.stderr.len());
                    self.stderr.extend_from_slice(&data[..data.len().min(room)]);
                }
                Some(ChannelMsg::ExitStatus { exit_status }) => self.exit = Some(exit_status),
                Some(ChannelMsg::Failure) => {
                    return Err(SshError::new(
                        StepName::GitDiscovery,
                        Code::AccessDenied,
                        "the SSH server refused to run git-upload-pack",
                        "the account or key may only run other commands; use a key meant for Git access",
                    ))
                }
                Some(ChannelMsg::Eof | ChannelMsg::Close) | None => self.eof = true,
                Some(_) => {}
            }
        }
    }

    /// The answer ended before it was complete: the server's standard error says why, when
    /// it said anything.
    fn ended(&self) -> SshError {
        let text = String::from_utf8_lossy(&self.stderr).trim().to_owned();
        if !text.is_empty() {
            return self.refusal(&text);
        }
        let status = self.exit.map(|s| format!(" (exit status {s})")).unwrap_or_default();
        SshError::new(
            self.stage.step_name(),
            Code::ProtocolError,
            format!("git-upload-pack over SSH ended its answer early{status}"),
            "check that the URL names a Git repository and that the SSH account runs git-upload-pack",
        )
    }

    /// The server's words when it refused the repository (an `ERR` packet or its standard
    /// error): "not found" and access refusals are told apart where the words allow.
    fn refusal(&self, text: &str) -> SshError {
        let lines: Vec<String> = berth_net::text_lines(text.as_bytes(), "text/plain");
        let first = lines.first().cloned().unwrap_or_default();
        let lower = text.to_ascii_lowercase();
        let not_found = ["not found", "does not exist", "does not appear to be a git repository", "no such"]
            .iter()
            .any(|w| lower.contains(w));
        let e = if not_found {
            SshError::new(
                StepName::GitDiscovery,
                Code::RepositoryNotFoundOrNoAccess,
                format!("the repository does not exist or this key may not read it; the server said: {first}"),
                "check the path in the URL; if it is right, give the key read access to the repository (an access key \
                 or deploy key on this repository, or the account's SSH key)",
            )
        } else {
            SshError::new(
                StepName::GitDiscovery,
                Code::AccessDenied,
                format!("the key was accepted, but the server refused the repository: {first}"),
                "give the key read access to this repository (a deploy key is tied to one repository; an access key to \
                 the repositories it was added to)",
            )
        };
        e.with_details(lines)
    }

    fn too_large(&self) -> SshError {
        SshError::new(
            self.stage.step_name(),
            Code::AdvertisementTooLarge,
            format!(
                "the answer of git-upload-pack over SSH is larger than the {} byte limit; Berth stopped reading it",
                self.cap
            ),
            "The repository advertises an unusual number of refs (or the server sends endless data). An operator can \
             raise the limit; a server accepting Git protocol v2 (AcceptEnv GIT_PROTOCOL) sends far less.",
        )
        .with_details(vec![format!("limit: {} bytes", self.cap)])
    }
}
