//! Git smart HTTP over berth-net: the content types, what a discovery answer that is not an
//! advertisement was, and a streaming pkt-line reader over a response body.

use crate::pktline::{Pkt, PktDecoder, PktError};
use crate::{GitError, Stage};
use berth_core::Code;
use berth_net::{classify, html_title, looks_like_html, mime_of, read_prefix, Exchange, DIAGNOSIS_BYTES};
use reqwest::Response;
use std::time::Duration;

pub(crate) const ADVERTISEMENT_TYPE: &str = "application/x-git-upload-pack-advertisement";
pub(crate) const REQUEST_TYPE: &str = "application/x-git-upload-pack-request";
pub(crate) const RESULT_TYPE: &str = "application/x-git-upload-pack-result";

/// Discovery answered 200 but not with a smart-HTTP advertisement: say what it was.
pub(crate) async fn not_a_git_server(ex: Exchange) -> GitError {
    let mime = mime_of(ex.response.headers());
    let host = ex.url.host_str().unwrap_or("the server").to_owned();
    let body = read_prefix(ex.response, DIAGNOSIS_BYTES).await;
    let text = String::from_utf8_lossy(&body);
    let mut details = vec![format!("content type: {}", if mime.is_empty() { "(none)" } else { &mime })];
    let what = if mime == "text/html" || looks_like_html(&text) {
        if let Some(t) = html_title(&text) {
            details.push(format!("page title: {t}"));
        }
        "an HTML page (often the login page of a single sign-on proxy, or a web page rather than the clone URL)"
            .to_owned()
    } else if is_dumb_ref_list(&text) {
        "a plain ref list: a \"dumb\" HTTP Git server, which Berth does not support (it needs smart HTTP)".to_owned()
    } else if mime.is_empty() {
        "a response without a content type".to_owned()
    } else {
        format!("content of type {mime}")
    };
    GitError::new(
        Stage::Discovery,
        Code::NotAGitServer,
        format!("{host} did not answer as a Git smart HTTP server: it returned {what}."),
        "Use the repository's HTTPS clone URL as the host shows it (usually ending in .git). If a login page or proxy \
         sits in front of the Git server, Berth must reach the Git server itself.",
    )
    .with_status(200)
    .with_details(details)
}

/// Dumb servers serve `info/refs` as a file: `<oid>\t<refname>` lines.
fn is_dumb_ref_list(text: &str) -> bool {
    text.lines().next().and_then(|l| l.split_once('\t')).is_some_and(|(oid, name)| {
        matches!(oid.len(), 40 | 64) && oid.bytes().all(|b| b.is_ascii_hexdigit()) && name.starts_with("refs/")
    })
}

/// Reads pkt-lines from a response body as it arrives, enforcing the size cap while streaming.
pub(crate) struct PktReader {
    resp: Response,
    dec: PktDecoder,
    received: u64,
    cap: u64,
    stage: Stage,
    what: String,
    limit: Duration,
    eof: bool,
}

impl PktReader {
    pub fn new(ex: Exchange, cap: u64, stage: Stage, limit: Duration) -> Self {
        PktReader {
            resp: ex.response,
            dec: PktDecoder::new(),
            received: 0,
            cap,
            stage,
            what: ex.what,
            limit,
            eof: false,
        }
    }

    /// Later packets belong to another stage (e.g. the v0 refs after the discovery preamble).
    pub fn set_stage(&mut self, stage: Stage) {
        self.stage = stage;
    }

    /// The next packet; `None` at the end of the body.
    pub async fn next(&mut self) -> Result<Option<Pkt>, GitError> {
        loop {
            match self.dec.next_pkt() {
                Ok(Some(p)) => return Ok(Some(p)),
                Ok(None) => {}
                Err(e) => return Err(self.pkt_error(e)),
            }
            if self.eof {
                return self.dec.finish().map(|()| None).map_err(|e| self.pkt_error(e));
            }
            match self.resp.chunk().await {
                Ok(Some(chunk)) => {
                    self.received += chunk.len() as u64;
                    if self.received > self.cap {
                        return Err(self.too_large());
                    }
                    self.dec.feed(&chunk);
                }
                Ok(None) => self.eof = true,
                Err(e) => return Err(classify(&e, self.stage, &self.what, self.limit)),
            }
        }
    }

    /// The next packet, which must exist: the body ending here is a protocol error.
    pub async fn next_required(&mut self) -> Result<Pkt, GitError> {
        match self.next().await? {
            Some(p) => Ok(p),
            None => Err(ended_early(self.stage, &self.what)),
        }
    }

    fn too_large(&self) -> GitError {
        let size = if self.cap >= 1024 * 1024 {
            format!("{:.1} MiB", self.cap as f64 / (1024.0 * 1024.0))
        } else {
            format!("{} KiB", self.cap / 1024)
        };
        GitError::new(
            self.stage,
            Code::AdvertisementTooLarge,
            format!("The answer to {} is larger than the {size} limit; Berth stopped reading it.", self.what),
            "The repository advertises an unusual number of refs (or the server sends endless data). An operator can \
             raise the limit; a server supporting Git protocol v2 sends far less, because it lists only branches.",
        )
        .with_details(vec![format!("limit: {} bytes", self.cap)])
    }

    fn pkt_error(&self, e: PktError) -> GitError {
        pkt_error(e, self.stage, &self.what)
    }
}

/// A pkt-line framing error as a finding.
pub(crate) fn pkt_error(e: PktError, stage: Stage, what: &str) -> GitError {
    match e {
        PktError::Remote(msg) => {
            GitError::protocol(stage, format!("The server reported an error: {msg}")).with_details(vec![msg])
        }
        other => GitError::protocol(stage, format!("The answer to {what} is not valid Git protocol: {other}.")),
    }
}

/// The body ended before the answer was complete.
pub(crate) fn ended_early(stage: Stage, what: &str) -> GitError {
    GitError::protocol(stage, format!("The answer to {what} ended early."))
}
