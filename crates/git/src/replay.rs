//! The client's parsers over a body held in memory: the same pkt-line decoder and the same
//! discovery and `ls-refs` parsers as [`crate::GitClient::ls_refs`], fed in chunks of `chunk`
//! bytes the way a network delivers a body, without the socket and the size cap. For fuzzing
//! (`fuzz/fuzz_targets/pktline.rs`) and for replaying recorded answers (the corpus test below).

use crate::advert::{Discovered, DiscoveryParser, LsRefsParser};
use crate::pktline::{Pkt, PktDecoder};
use crate::smart::{ended_early, pkt_error};
use crate::RemoteRefs;
use crate::{GitError, Stage};

const WHAT: &str = "the replayed body";

/// Parses a discovery answer (`GET …/info/refs?service=git-upload-pack`).
pub fn discovery(body: &[u8], chunk: usize) -> Result<Discovered, GitError> {
    let mut parser = DiscoveryParser::new();
    let stage = std::cell::Cell::new(Stage::Discovery);
    run(
        body,
        chunk,
        |pkt| {
            let r = parser.push(pkt);
            stage.set(parser.stage());
            r
        },
        || stage.get(),
    )
}

/// Parses the answer to the protocol v2 `ls-refs` command.
pub fn ls_refs(body: &[u8], chunk: usize) -> Result<RemoteRefs, GitError> {
    let mut parser = LsRefsParser::new();
    run(body, chunk, |pkt| parser.push(pkt), || Stage::LsRefs)
}

/// Feeds `body` in chunks to the decoder and every packet to `push` until it yields a result, as
/// `PktReader::next_required` does for a streaming body.
fn run<T>(
    body: &[u8],
    chunk: usize,
    mut push: impl FnMut(Pkt) -> Result<Option<T>, GitError>,
    stage: impl Fn() -> Stage,
) -> Result<T, GitError> {
    let mut dec = PktDecoder::new();
    let mut chunks = body.chunks(chunk.max(1));
    loop {
        match dec.next_pkt() {
            Ok(Some(pkt)) => {
                if let Some(done) = push(pkt)? {
                    return Ok(done);
                }
                continue;
            }
            Ok(None) => {}
            Err(e) => return Err(pkt_error(e, stage(), WHAT)),
        }
        match chunks.next() {
            Some(c) => dec.feed(c),
            None => {
                dec.finish().map_err(|e| pkt_error(e, stage(), WHAT))?;
                return Err(ended_early(stage(), WHAT));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_core::Code;

    /// `fuzz/corpus/pktline/`: every committed seed goes through both parsers in several chunk
    /// sizes with the same outcome; seeds named `discovery-ok-*` / `ls-refs-ok-*` must parse and
    /// `*-bad-*` must be refused with a protocol error (never a panic).
    #[test]
    fn fuzz_corpus_replays() -> std::io::Result<()> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/pktline");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("").to_owned();
            let body = std::fs::read(&path)?;
            let d = [1, 3, 4096, body.len().max(1)].map(|c| format!("{:?}", discovery(&body, c)));
            let l = [1, 3, 4096, body.len().max(1)].map(|c| format!("{:?}", ls_refs(&body, c)));
            assert!(d.iter().all(|x| *x == d[0]), "{name}: discovery depends on chunking: {d:?}");
            assert!(l.iter().all(|x| *x == l[0]), "{name}: ls-refs depends on chunking: {l:?}");
            let check = |what: &str, ok: bool, err: Option<Code>| {
                if name.starts_with(&format!("{what}-ok-")) {
                    assert!(ok, "{name} should parse: {}", if what == "discovery" { &d[0] } else { &l[0] });
                }
                if name.starts_with(&format!("{what}-bad-")) {
                    assert_eq!(err, Some(Code::ProtocolError), "{name}");
                }
            };
            let dr = discovery(&body, body.len().max(1));
            check("discovery", dr.is_ok(), dr.err().map(|e| e.code));
            let lr = ls_refs(&body, body.len().max(1));
            check("ls-refs", lr.is_ok(), lr.err().map(|e| e.code));
            seen += 1;
        }
        assert!(seen >= 10, "only {seen} seeds in {}", dir.display());
        Ok(())
    }

    #[test]
    fn real_v2_discovery_and_ls_refs() -> std::io::Result<()> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/pktline");
        let caps = discovery(&std::fs::read(dir.join("discovery-ok-git-2-v2"))?, 7);
        assert!(matches!(&caps, Ok(Discovered::V2(c)) if c.ls_refs_unborn() && c.agent), "{caps:?}");
        let refs = ls_refs(&std::fs::read(dir.join("ls-refs-ok-git-2-v2"))?, 5);
        let refs = refs.map_err(std::io::Error::other)?;
        assert_eq!(refs.default_branch.as_deref(), Some("main"));
        assert!(refs.branches.iter().any(|b| b.name == "feature/x"));
        let v0 = discovery(&std::fs::read(dir.join("discovery-ok-git-2-v0"))?, 11);
        assert!(
            matches!(&v0, Ok(Discovered::V0(r)) if r.default_branch.as_deref() == Some("main") && r.branches.len() == 3),
            "{v0:?}"
        );
        Ok(())
    }
}
