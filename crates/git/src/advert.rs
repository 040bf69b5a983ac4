//! Parsing what the server says, one pkt-line at a time: the discovery preamble, protocol v2
//! capabilities, v2 `ls-refs` output and v0 ref advertisements. Only branches (`refs/heads/*`)
//! and `HEAD` are kept; tags and everything else are counted and dropped on the spot, so memory
//! grows with the number of branches, not with the size of the advertisement.

use crate::pktline::{trim_lf, Pkt};
use crate::{GitError, Stage};
use berth_net::truncate_chars;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    V2,
    /// The original protocol (also used for a server that answered `version 1`).
    V0,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteBranch {
    /// Short name, e.g. `feature/x`.
    pub name: String,
    /// Object id: 40 hex digits (SHA-1) or 64 (SHA-256).
    pub commit: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteRefs {
    pub protocol: Protocol,
    /// Short name of the branch `HEAD` points to, e.g. `main`. `None` when the server did not say
    /// (v0 servers only SHOULD send `symref=`), or `HEAD` is detached or points outside `refs/heads/`.
    pub default_branch: Option<String>,
    /// `HEAD` names a branch that has no commit yet: an empty repository (or a `HEAD` pointing to a
    /// branch that does not exist).
    pub head_unborn: bool,
    /// Sorted by name.
    pub branches: Vec<RemoteBranch>,
    /// Ref lines the server sent, before keeping only branches: shows whether a v2 server honoured
    /// `ref-prefix` (it sends only `HEAD` and branches) and how big a v0 advertisement was.
    pub refs_received: usize,
}

/// Capabilities a v2 server advertised in answer to discovery.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct V2Caps {
    /// `Some` when `ls-refs` is advertised; holds its features (e.g. `unborn`).
    pub ls_refs: Option<Vec<String>>,
    pub object_format: Option<String>,
    /// The server advertised `agent`; only then may the client send its own.
    pub agent: bool,
}

impl V2Caps {
    pub fn line(&mut self, line: &[u8]) {
        let line = String::from_utf8_lossy(line);
        let (key, value) = match line.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (line.as_ref(), None),
        };
        match key {
            "ls-refs" => {
                self.ls_refs = Some(value.map(|v| v.split(' ').map(str::to_owned).collect()).unwrap_or_default());
            }
            "object-format" => self.object_format = value.map(str::to_owned),
            "agent" => self.agent = true,
            _ => {}
        }
    }

    pub fn ls_refs_unborn(&self) -> bool {
        self.ls_refs.as_ref().is_some_and(|f| f.iter().any(|x| x == "unborn"))
    }
}

/// What a discovery answer (`GET …/info/refs?service=git-upload-pack`) said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Discovered {
    /// A protocol v2 server: its capabilities; the refs come from the `ls-refs` command.
    V2(V2Caps),
    /// A v0 (or v1) advertisement, which already holds the refs.
    V0(RemoteRefs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DiscoveryState {
    Start,
    /// After `# service=git-upload-pack`: a flush must follow.
    ServiceHeader,
    /// After the service preamble: the first line of the real answer.
    First,
    V2Caps,
    V0Refs,
}

/// The discovery answer, one packet at a time, as the body streams in: the optional
/// `# service=` preamble, then either `version 2` and capabilities up to a flush, or a v0/v1
/// ref advertisement up to a flush.
#[derive(Debug)]
pub struct DiscoveryParser {
    state: DiscoveryState,
    caps: V2Caps,
    refs: RefCollector,
}

impl Default for DiscoveryParser {
    fn default() -> Self {
        DiscoveryParser::new()
    }
}

impl DiscoveryParser {
    pub fn new() -> Self {
        DiscoveryParser {
            state: DiscoveryState::Start,
            caps: V2Caps::default(),
            refs: RefCollector::new(Protocol::V0, Stage::LsRefs),
        }
    }

    /// The stage errors from here on belong to: the v0 refs are the branch listing.
    pub fn stage(&self) -> Stage {
        match self.state {
            DiscoveryState::V0Refs => Stage::LsRefs,
            _ => Stage::Discovery,
        }
    }

    /// Takes the next packet; `Some` once the answer is complete (later packets are not read).
    pub fn push(&mut self, pkt: Pkt) -> Result<Option<Discovered>, GitError> {
        match self.state {
            DiscoveryState::Start => {
                if matches!(&pkt, Pkt::Data(d) if is_service_header(trim_lf(d))) {
                    self.state = DiscoveryState::ServiceHeader;
                    return Ok(None);
                }
                self.first(pkt)
            }
            DiscoveryState::ServiceHeader => {
                if pkt != Pkt::Flush {
                    return Err(GitError::protocol(
                        Stage::Discovery,
                        "The service announcement is not followed by a flush packet.",
                    ));
                }
                self.state = DiscoveryState::First;
                Ok(None)
            }
            DiscoveryState::First => self.first(pkt),
            DiscoveryState::V2Caps => match pkt {
                Pkt::Data(d) => {
                    self.caps.line(trim_lf(&d));
                    Ok(None)
                }
                Pkt::Flush => Ok(Some(Discovered::V2(std::mem::take(&mut self.caps)))),
                other => {
                    Err(GitError::protocol(Stage::Discovery, format!("Unexpected {other:?} in the v2 capabilities.")))
                }
            },
            DiscoveryState::V0Refs => self.v0(pkt),
        }
    }

    fn first(&mut self, pkt: Pkt) -> Result<Option<Discovered>, GitError> {
        if matches!(&pkt, Pkt::Data(d) if trim_lf(d) == b"version 2") {
            self.state = DiscoveryState::V2Caps;
            return Ok(None);
        }
        self.state = DiscoveryState::V0Refs;
        // A server that only knows v1 says so first and then advertises like v0.
        if matches!(&pkt, Pkt::Data(d) if trim_lf(d) == b"version 1") {
            return Ok(None);
        }
        self.v0(pkt)
    }

    fn v0(&mut self, pkt: Pkt) -> Result<Option<Discovered>, GitError> {
        match pkt {
            Pkt::Data(d) => {
                self.refs.v0_line(trim_lf(&d))?;
                Ok(None)
            }
            Pkt::Flush => {
                let refs = std::mem::replace(&mut self.refs, RefCollector::new(Protocol::V0, Stage::LsRefs));
                Ok(Some(Discovered::V0(refs.finish())))
            }
            other => Err(GitError::protocol(Stage::LsRefs, format!("Unexpected {other:?} in the ref advertisement."))),
        }
    }
}

/// The answer to the v2 `ls-refs` command, one packet at a time, up to its flush.
#[derive(Debug)]
pub struct LsRefsParser {
    refs: RefCollector,
}

impl Default for LsRefsParser {
    fn default() -> Self {
        LsRefsParser::new()
    }
}

impl LsRefsParser {
    pub fn new() -> Self {
        LsRefsParser { refs: RefCollector::new(Protocol::V2, Stage::LsRefs) }
    }

    /// Takes the next packet; `Some` once the answer is complete.
    pub fn push(&mut self, pkt: Pkt) -> Result<Option<RemoteRefs>, GitError> {
        match pkt {
            Pkt::Data(d) => {
                self.refs.v2_line(trim_lf(&d))?;
                Ok(None)
            }
            Pkt::Flush | Pkt::ResponseEnd => {
                let refs = std::mem::replace(&mut self.refs, RefCollector::new(Protocol::V2, Stage::LsRefs));
                Ok(Some(refs.finish()))
            }
            Pkt::Delim => Err(GitError::protocol(Stage::LsRefs, "Unexpected delimiter packet in the ls-refs answer.")),
        }
    }
}

/// The `# service=git-upload-pack` line that v0 (and some v2) discovery answers start with.
pub(crate) fn is_service_header(line: &[u8]) -> bool {
    line == b"# service=git-upload-pack"
}

/// Accumulates refs from either protocol.
#[derive(Debug)]
pub(crate) struct RefCollector {
    protocol: Protocol,
    stage: Stage,
    branches: Vec<RemoteBranch>,
    head_target: Option<String>,
    head_has_commit: bool,
    refs_received: usize,
    seen_first_v0_line: bool,
}

impl RefCollector {
    pub fn new(protocol: Protocol, stage: Stage) -> Self {
        RefCollector {
            protocol,
            stage,
            branches: Vec::new(),
            head_target: None,
            head_has_commit: false,
            refs_received: 0,
            seen_first_v0_line: false,
        }
    }

    /// One v0 advertisement line: `<oid> <refname>`, the first one followed by NUL and
    /// capabilities; an empty repository sends `<zero-id> capabilities^{}` instead of refs.
    pub fn v0_line(&mut self, line: &[u8]) -> Result<(), GitError> {
        let (refline, caps) = match line.iter().position(|b| *b == 0) {
            Some(nul) if !self.seen_first_v0_line => (&line[..nul], Some(&line[nul + 1..])),
            _ => (line, None),
        };
        self.seen_first_v0_line = true;
        if let Some(caps) = caps {
            for cap in String::from_utf8_lossy(caps).split(' ') {
                if let Some(target) = cap.strip_prefix("symref=HEAD:") {
                    self.head_target = Some(target.to_owned());
                }
            }
        }
        let Some((oid, name)) = split_once(refline, b' ') else {
            return Err(self.bad_line("a ref line without a space", line));
        };
        if name == b"capabilities^{}" {
            return Ok(());
        }
        let oid = self.oid(oid, line)?;
        self.refs_received += 1;
        self.keep(oid, name, true);
        Ok(())
    }

    /// One v2 `ls-refs` line: `<oid> <refname>[ symref-target:<t>][ peeled:<oid>]` or
    /// `unborn <refname>[ symref-target:<t>]`.
    pub fn v2_line(&mut self, line: &[u8]) -> Result<(), GitError> {
        let mut parts = line.split(|b| *b == b' ');
        let (Some(first), Some(name)) = (parts.next(), parts.next()) else {
            return Err(self.bad_line("an ls-refs line without a ref name", line));
        };
        let symref = parts.find_map(|a| a.strip_prefix(b"symref-target:".as_slice()));
        if name == b"HEAD" {
            self.head_target = symref.map(|t| String::from_utf8_lossy(t).into_owned());
        }
        self.refs_received += 1;
        if first == b"unborn" {
            // Only HEAD can be unborn in practice; an unborn anything has no commit to list.
            return Ok(());
        }
        let oid = self.oid(first, line)?;
        self.keep(oid, name, false);
        Ok(())
    }

    fn keep(&mut self, oid: String, name: &[u8], v0: bool) {
        if name == b"HEAD" {
            self.head_has_commit = true;
            return;
        }
        let Some(short) = name.strip_prefix(b"refs/heads/".as_slice()) else { return };
        // `^{}` lines are peeled tags; a branch never has one, but a v0 server cannot be trusted
        // to be tidy and such a line is not a branch either way.
        if v0 && short.ends_with(b"^{}") {
            return;
        }
        self.branches.push(RemoteBranch { name: String::from_utf8_lossy(short).into_owned(), commit: oid });
    }

    fn oid(&self, raw: &[u8], line: &[u8]) -> Result<String, GitError> {
        let ok = matches!(raw.len(), 40 | 64) && raw.iter().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b));
        if ok {
            Ok(String::from_utf8_lossy(raw).into_owned())
        } else {
            Err(self.bad_line("an invalid object id", line))
        }
    }

    fn bad_line(&self, what: &str, line: &[u8]) -> GitError {
        let mut shown = String::from_utf8_lossy(line).into_owned();
        truncate_chars(&mut shown, 200);
        GitError::protocol(self.stage, format!("The server sent {what} in its ref list.")).with_details(vec![shown])
    }

    pub fn finish(mut self) -> RemoteRefs {
        self.branches.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        self.branches.dedup_by(|a, b| a.name == b.name);
        self.branches.shrink_to_fit();
        let default_branch = self.head_target.as_deref().and_then(|t| t.strip_prefix("refs/heads/")).map(str::to_owned);
        RemoteRefs {
            protocol: self.protocol,
            default_branch,
            head_unborn: !self.head_has_commit,
            branches: self.branches,
            refs_received: self.refs_received,
        }
    }
}

fn split_once(b: &[u8], sep: u8) -> Option<(&[u8], &[u8])> {
    let i = b.iter().position(|c| *c == sep)?;
    Some((&b[..i], &b[i + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "1111111111111111111111111111111111111111";
    const B: &str = "2222222222222222222222222222222222222222";
    const ZERO: &str = "0000000000000000000000000000000000000000";

    fn names(r: &RemoteRefs) -> Vec<&str> {
        r.branches.iter().map(|b| b.name.as_str()).collect()
    }

    #[test]
    fn v0_advertisement_with_symref() -> Result<(), GitError> {
        let mut c = RefCollector::new(Protocol::V0, Stage::Discovery);
        c.v0_line(format!("{A} HEAD\0multi_ack symref=HEAD:refs/heads/trunk agent=git/2.47").as_bytes())?;
        c.v0_line(format!("{B} refs/heads/zeta").as_bytes())?;
        c.v0_line(format!("{A} refs/heads/trunk").as_bytes())?;
        c.v0_line(format!("{A} refs/tags/v1").as_bytes())?;
        c.v0_line(format!("{B} refs/tags/v1^{{}}").as_bytes())?;
        c.v0_line(format!("{A} refs/pull/1/head").as_bytes())?;
        let r = c.finish();
        assert_eq!(r.default_branch.as_deref(), Some("trunk"));
        assert!(!r.head_unborn);
        assert_eq!(names(&r), ["trunk", "zeta"]);
        assert_eq!(r.refs_received, 6);
        Ok(())
    }

    #[test]
    fn v0_empty_repository() -> Result<(), GitError> {
        let mut c = RefCollector::new(Protocol::V0, Stage::Discovery);
        c.v0_line(format!("{ZERO} capabilities^{{}}\0multi_ack agent=git/2.47").as_bytes())?;
        let r = c.finish();
        assert!(r.head_unborn);
        assert!(r.branches.is_empty());
        assert_eq!(r.default_branch, None);
        Ok(())
    }

    #[test]
    fn v2_lines_with_unborn_head() -> Result<(), GitError> {
        let mut c = RefCollector::new(Protocol::V2, Stage::LsRefs);
        c.v2_line(b"unborn HEAD symref-target:refs/heads/main")?;
        let r = c.finish();
        assert!(r.head_unborn);
        assert_eq!(r.default_branch.as_deref(), Some("main"));
        assert!(r.branches.is_empty());
        Ok(())
    }

    #[test]
    fn v2_filters_refs_a_server_sent_despite_ref_prefix() -> Result<(), GitError> {
        let mut c = RefCollector::new(Protocol::V2, Stage::LsRefs);
        c.v2_line(format!("{A} HEAD symref-target:refs/heads/main").as_bytes())?;
        c.v2_line(format!("{A} refs/heads/main").as_bytes())?;
        c.v2_line(format!("{B} refs/tags/v1 peeled:{A}").as_bytes())?;
        c.v2_line(format!("{B} refs/heads/feature/x").as_bytes())?;
        let r = c.finish();
        assert_eq!(names(&r), ["feature/x", "main"]);
        assert_eq!(r.branches[0].commit, B);
        assert_eq!(r.default_branch.as_deref(), Some("main"));
        Ok(())
    }

    #[test]
    fn detached_head_has_no_default() -> Result<(), GitError> {
        let mut c = RefCollector::new(Protocol::V2, Stage::LsRefs);
        c.v2_line(format!("{A} HEAD").as_bytes())?;
        let r = c.finish();
        assert_eq!(r.default_branch, None);
        assert!(!r.head_unborn);
        Ok(())
    }

    #[test]
    fn bad_object_id_is_a_protocol_error() {
        let mut c = RefCollector::new(Protocol::V2, Stage::LsRefs);
        let e = c.v2_line(b"xyz refs/heads/main").err();
        assert_eq!(e.map(|e| e.code), Some(berth_core::Code::ProtocolError));
        let mut c = RefCollector::new(Protocol::V0, Stage::Discovery);
        assert!(c.v0_line(b"no-space-here").is_err());
    }

    #[test]
    fn sha256_object_ids_are_accepted() -> Result<(), GitError> {
        let mut c = RefCollector::new(Protocol::V2, Stage::LsRefs);
        let oid = "a".repeat(64);
        c.v2_line(format!("{oid} refs/heads/main").as_bytes())?;
        assert_eq!(c.finish().branches[0].commit, oid);
        Ok(())
    }

    #[test]
    fn v2_capabilities() {
        let mut caps = V2Caps::default();
        for l in ["agent=git/2.47", "ls-refs=unborn", "fetch=shallow wait-for-done", "object-format=sha1"] {
            caps.line(l.as_bytes());
        }
        assert!(caps.ls_refs_unborn());
        assert_eq!(caps.object_format.as_deref(), Some("sha1"));
        let mut plain = V2Caps::default();
        plain.line(b"ls-refs");
        assert!(plain.ls_refs.is_some() && !plain.ls_refs_unborn());
    }
}
