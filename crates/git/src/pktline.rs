//! pkt-line framing (gitprotocol-common): every packet starts with four hex digits giving its
//! length *including* those four digits. `0000` is a flush, `0001` a delimiter and `0002` the end of
//! a response; lengths 1 to 3 can never be valid. A data packet is at most 65520 bytes.
//!
//! The decoder is incremental and synchronous: the transport feeds it body chunks as they arrive
//! and takes packets out, so a quarter of a million refs never sit in memory as one body. Data
//! packets are handed out as `Bytes` split off the receive buffer (no copy).

use bytes::{Buf, Bytes, BytesMut};
use std::fmt;

/// Largest packet, header included (LARGE_PACKET_MAX in git).
pub const MAX_PKT_LEN: usize = 65520;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pkt {
    Flush,
    Delim,
    ResponseEnd,
    /// Payload without the length header; a trailing newline is kept (see [`trim_lf`]).
    Data(Bytes),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PktError {
    /// The length header is not four hex digits.
    NotHex([u8; 4]),
    /// Lengths 1..=3 are reserved and never valid on the wire.
    InvalidLength(usize),
    /// Longer than [`MAX_PKT_LEN`].
    TooLong(usize),
    /// The input ended inside a packet.
    Truncated { missing: usize },
    /// The server sent `ERR <message>`.
    Remote(String),
}

impl fmt::Display for PktError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PktError::NotHex(h) => {
                write!(f, "invalid pkt-line length {:?}: not four hex digits", String::from_utf8_lossy(h))
            }
            PktError::InvalidLength(n) => write!(f, "invalid pkt-line length {n} (lengths 1 to 3 are reserved)"),
            PktError::TooLong(n) => write!(f, "pkt-line of {n} bytes exceeds the {MAX_PKT_LEN}-byte maximum"),
            PktError::Truncated { missing } => write!(f, "response ended inside a pkt-line ({missing} bytes missing)"),
            PktError::Remote(msg) => write!(f, "the server reported an error: {msg}"),
        }
    }
}

impl std::error::Error for PktError {}

/// Incremental pkt-line decoder.
#[derive(Debug, Default)]
pub struct PktDecoder {
    buf: BytesMut,
}

impl PktDecoder {
    pub fn new() -> Self {
        PktDecoder::default()
    }

    /// Appends received bytes.
    pub fn feed(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// Bytes received but not yet consumed as packets.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next complete packet, or `None` when more input is needed.
    pub fn next_pkt(&mut self) -> Result<Option<Pkt>, PktError> {
        if self.buf.len() < 4 {
            return Ok(None);
        }
        let len = parse_len(&self.buf[..4])?;
        match len {
            0 => {
                self.buf.advance(4);
                return Ok(Some(Pkt::Flush));
            }
            1 => {
                self.buf.advance(4);
                return Ok(Some(Pkt::Delim));
            }
            2 => {
                self.buf.advance(4);
                return Ok(Some(Pkt::ResponseEnd));
            }
            3 => return Err(PktError::InvalidLength(len)),
            n if n > MAX_PKT_LEN => return Err(PktError::TooLong(n)),
            _ => {}
        }
        if self.buf.len() < len {
            return Ok(None);
        }
        let mut pkt = self.buf.split_to(len);
        pkt.advance(4);
        let data = pkt.freeze();
        if let Some(msg) = data.strip_prefix(b"ERR ") {
            return Err(PktError::Remote(String::from_utf8_lossy(trim_lf(msg)).into_owned()));
        }
        Ok(Some(Pkt::Data(data)))
    }

    /// Call at end of input: fails when a partial packet is left over.
    pub fn finish(&self) -> Result<(), PktError> {
        match self.buf.len() {
            0 => Ok(()),
            n if n < 4 => Err(PktError::Truncated { missing: 4 - n }),
            n => {
                let len = parse_len(&self.buf[..4])?;
                Err(PktError::Truncated { missing: len.saturating_sub(n) })
            }
        }
    }
}

fn parse_len(h: &[u8]) -> Result<usize, PktError> {
    let mut n = 0usize;
    for &c in h {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => {
                let mut raw = [0u8; 4];
                raw.copy_from_slice(&h[..4]);
                return Err(PktError::NotHex(raw));
            }
        };
        n = n * 16 + usize::from(d);
    }
    Ok(n)
}

/// Strips one trailing `\n`: senders SHOULD add it and receivers must not require it.
pub fn trim_lf(b: &[u8]) -> &[u8] {
    b.strip_suffix(b"\n").unwrap_or(b)
}

/// Encodes one data packet. Only used for our small ls-refs request, whose lines are far below
/// the maximum.
pub fn encode(out: &mut Vec<u8>, line: &str) {
    let len = line.len() + 4;
    out.extend_from_slice(format!("{len:04x}").as_bytes());
    out.extend_from_slice(line.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(input: &[u8]) -> Result<Vec<Pkt>, PktError> {
        let mut d = PktDecoder::new();
        d.feed(input);
        let mut out = Vec::new();
        while let Some(p) = d.next_pkt()? {
            out.push(p);
        }
        d.finish()?;
        Ok(out)
    }

    fn data(s: &str) -> Pkt {
        Pkt::Data(Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn special_packets() {
        assert_eq!(all(b"000000010002"), Ok(vec![Pkt::Flush, Pkt::Delim, Pkt::ResponseEnd]));
    }

    #[test]
    fn data_packets_keep_payload_and_accept_upper_case_hex() {
        assert_eq!(
            all(b"000ahello\n0009abcde000A12345\n0000"),
            Ok(vec![data("hello\n"), data("abcde"), data("12345\n"), Pkt::Flush])
        );
        assert_eq!(all(b"0004"), Ok(vec![Pkt::Data(Bytes::new())]));
    }

    #[test]
    fn lengths_one_to_three_are_invalid_unless_special() {
        // 0001 and 0002 carry meaning (delim, response-end); 0003 has none and can never be valid,
        // even when bytes follow that would make it look like a short data packet.
        assert_eq!(all(b"0003"), Err(PktError::InvalidLength(3)));
        assert_eq!(all(b"0003abc"), Err(PktError::InvalidLength(3)));
        assert_eq!(all(b"0001"), Ok(vec![Pkt::Delim]));
    }

    #[test]
    fn non_hex_length() {
        assert_eq!(all(b"00g1"), Err(PktError::NotHex(*b"00g1")));
        assert_eq!(all(b"<htm"), Err(PktError::NotHex(*b"<htm")));
    }

    #[test]
    fn too_long() {
        assert_eq!(all(b"fff1"), Err(PktError::TooLong(0xfff1)));
        let mut ok = format!("{MAX_PKT_LEN:04x}").into_bytes();
        ok.resize(MAX_PKT_LEN, b'x');
        assert!(matches!(all(&ok).as_deref(), Ok([Pkt::Data(d)]) if d.len() == MAX_PKT_LEN - 4));
    }

    #[test]
    fn err_packet_carries_the_message() {
        assert_eq!(all(b"0016ERR access denied\n0000"), Err(PktError::Remote("access denied".into())));
        // "ERR" needs the space: a ref named ERRATA is data.
        assert_eq!(all(b"000aERRATA"), Ok(vec![data("ERRATA")]));
    }

    #[test]
    fn truncated_input() {
        assert_eq!(all(b"000ahel"), Err(PktError::Truncated { missing: 3 }));
        assert_eq!(all(b"00"), Err(PktError::Truncated { missing: 2 }));
    }

    #[test]
    fn incremental_feeding_byte_by_byte() {
        let input = b"000ahello\n00010000";
        let mut d = PktDecoder::new();
        let mut out = Vec::new();
        for b in input {
            d.feed(std::slice::from_ref(b));
            while let Ok(Some(p)) = d.next_pkt() {
                out.push(p);
            }
        }
        assert_eq!(out, vec![data("hello\n"), Pkt::Delim, Pkt::Flush]);
        assert_eq!(d.finish(), Ok(()));
    }

    #[test]
    fn encode_roundtrip() {
        let mut v = Vec::new();
        encode(&mut v, "command=ls-refs\n");
        assert_eq!(v, b"0014command=ls-refs\n");
        assert_eq!(all(&v), Ok(vec![data("command=ls-refs\n")]));
    }
}
