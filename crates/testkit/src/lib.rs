//! Test fixtures for Berth: a real Git smart-HTTP server, fault injection, a server that records
//! what reaches it, and repository builders. Everything listens on 127.0.0.1 only.
//!
//! This is test-support code: when a fixture cannot be set up (no `git` binary, a port that
//! cannot be bound) it panics with a message, which is what a failing test setup should do.
//!
//! # [`GitServer`] routes
//!
//! | path prefix | answer |
//! | --- | --- |
//! | `/git/<repo>/…` | `git http-backend` (CGI) over the repositories under `root`; Basic auth in front when users are configured (401 with `WWW-Authenticate: Basic realm="Berth test git"`) |
//! | `/login/…` | 200 `text/html` login page, for any path (an SSO proxy in front of Git) |
//! | `/dumb/…` | 200 `text/plain` ref list (a dumb HTTP server) |
//! | `/stall/…` | accepts the request and never answers, until the server shuts down |
//! | `/huge/…` | 200 with the smart content type and an endless, valid v0 ref advertisement |
//! | `/moved/<rest>` | 301 to `<target>/git/<rest>` on the origin given to [`GitServer::set_redirect_target`] |
//! | `/forbidden/…` | 403 `text/plain`, `remote: <message>` lines (see [`GitServerOptions::forbidden_message`]) |
//! | `/ratelimited/…` | 429 with `Retry-After: 17` |
//! | `/same-origin-redirect/<rest>` | 302 to `/git/<rest>` on this server (relative Location) |
//! | `/redirect-loop/…` | 302 to itself, forever |
//! | `/slowloris/…` | 200 with the smart content type and an endless, valid v0 advertisement sent one byte every [`SLOWLORIS_INTERVAL`] |
//! | `/status/<code>/…` | `<code>` (e.g. 500, 502, 503) with a `text/plain` body `remote: the test server answers <code>` |
//! | `/canned/<name>/…` | the [`Canned`] answers given to [`GitServer::set_canned`]: `…/info/refs` and `…/git-upload-pack` (malformed pkt-lines, wrong content types, redirects on the v2 command) |
//!
//! [`FaultServer`] is a raw TCP server for what an HTTP framework will not do: reset the
//! connection in the middle of an advertisement, close it short of the announced length, or
//! dribble the response headers forever ([`Fault`]).
//!
//! [`sim`] simulates Bitbucket Cloud, Bitbucket Data Center and GitHub (REST and Git); the
//! `berth-sim` binary serves a demo world.
//!
//! [`SshServer`] is a private OpenSSH `sshd` serving `git-upload-pack` (protocol v2 or only v0),
//! with keys authorised one by one: all repositories, one, a stalled or an endless answer.
//!
//! [`TlsServer`] presents certificates from a private CA (valid, wrong name, expired) for TLS
//! failure tests; it needs the `openssl` command line. [`MtlsServer`] demands a client
//! certificate and makes one it accepts and one it refuses.
//!
//! [`OidcProvider`] is a real OpenID provider (npm's `oidc-provider`, run by Node) for the
//! single sign-on tests.
//!
//! [`Tinyproxy`] is a private, real HTTP proxy (Debian's `tinyproxy`) whose log shows which
//! requests went through it.
//!
//! Every request is recorded ([`GitServer::requests`]) with whether it carried an
//! `Authorization` header and a SHA-256 of that header, never the header itself.

#![allow(clippy::expect_used, clippy::panic)]

mod capture;
mod fault;
mod mtls;
mod oidc;
pub mod pg;
mod receiver;
mod repos;
mod server;
pub mod sim;
pub mod smtp;
mod sshd;
mod tinyproxy;
mod tls;

pub use capture::CaptureServer;
pub use fault::{Fault, FaultServer};
pub use mtls::MtlsServer;
pub use oidc::{OidcClient, OidcProvider};
pub use receiver::{hmac_sha256, Received, Receiver};
pub use repos::{bare_repo, empty_repo, git_command, many_refs, rev_parse};
pub use server::{pkt_line, Canned, GitServer, GitServerOptions, SLOWLORIS_INTERVAL};
pub use smtp::SmtpServer;
pub use sshd::{keygen, SshAccess, SshServer, SSHD};
pub use tinyproxy::{Tinyproxy, TinyproxyOptions};
pub use tls::{make_certs, LeafCert, TlsServer};

use sha2::{Digest, Sha256};

/// One request a test server received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// Whether an `Authorization` header was present.
    pub authorization: bool,
    /// SHA-256 (hex) of the `Authorization` header value, so a test can check that a given
    /// credential did or did not arrive without the fixture ever storing it.
    pub authorization_sha256: Option<String>,
    /// The `Git-Protocol` header, e.g. `version=2`.
    pub git_protocol: Option<String>,
}

/// SHA-256 in hex, as used in [`RecordedRequest::authorization_sha256`].
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

pub(crate) fn record(req: &axum::extract::Request) -> RecordedRequest {
    let headers = req.headers();
    let auth = headers.get(axum::http::header::AUTHORIZATION);
    RecordedRequest {
        method: req.method().to_string(),
        path: req.uri().path().to_owned(),
        query: req.uri().query().map(str::to_owned),
        authorization: auth.is_some(),
        authorization_sha256: auth.map(|v| sha256_hex(v.as_bytes())),
        git_protocol: headers.get("git-protocol").and_then(|v| v.to_str().ok()).map(str::to_owned),
    }
}
