//! The secret-leak scan (issue 6): the registry of known values, the search for them in every
//! form (raw, base64 and URL-safe base64 of the value and of any text holding it, percent- and
//! form-encoded, HTML-escaped), and the assertions over answers, output and files.

mod capture;

pub use capture::*;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

/// Where a value may not appear.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    /// A known secret: nowhere.
    Secret,
    /// A session or API token Berth issued: it is the answer to a sign-in, so not in answers'
    /// scans, but never in a log, a file or a panic.
    Token,
    /// The positive controls' planted value: recorded apart.
    Canary,
}

/// What is being scanned, which decides which values count.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Source {
    Answer,
    Log,
    File,
    Panic,
}

/// One value found where it must not be.
#[derive(Clone, Debug)]
pub struct Hit {
    pub where_: String,
    pub label: String,
    pub kind: Kind,
    /// raw, base64, base64url, base64 of user:secret, percent-encoded, HTML-escaped
    pub form: String,
    /// The text around the hit, with the value itself replaced by its label.
    pub context: String,
}

impl std::fmt::Display for Hit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}) in {}: …{}…", self.label, self.form, self.where_, self.context)
    }
}

struct Entry {
    label: String,
    value: String,
    kind: Kind,
}

struct Pattern {
    bytes: Vec<u8>,
    entry: usize,
    form: String,
}

/// A multi-pattern search: patterns indexed by their first two bytes.
struct Matcher {
    entries: Vec<(String, Kind)>,
    /// The longest value, in bytes.
    longest: usize,
    patterns: Vec<Pattern>,
    bits: Vec<u64>,
    by_key: HashMap<u16, Vec<usize>>,
}

struct Registry {
    entries: Vec<Entry>,
    matcher: Option<Arc<Matcher>>,
}

fn registry() -> &'static RwLock<Registry> {
    static R: OnceLock<RwLock<Registry>> = OnceLock::new();
    R.get_or_init(|| {
        let mut entries: Vec<Entry> = crate::harness::KNOWN_SECRETS
            .iter()
            .map(|(l, v)| Entry { label: (*l).to_owned(), value: (*v).to_owned(), kind: Kind::Secret })
            .collect();
        entries.push(Entry { label: "CANARY".into(), value: crate::harness::CANARY.into(), kind: Kind::Canary });
        RwLock::new(Registry { entries, matcher: None })
    })
}

/// Adds a secret made while the suite runs (e.g. a rotated secret in `crash.rs`).
pub fn register_secret(label: &str, value: &str) {
    register(label, value, Kind::Secret);
}

/// Adds a session or API token Berth handed out.
pub fn register_token(value: &str) {
    register("a session or API token", value, Kind::Token);
}

fn register(label: &str, value: &str, kind: Kind) {
    assert!(value.len() >= crate::harness::MIN_SECRET_LEN, "{label} is too short to search for");
    let mut r = registry().write().unwrap_or_else(|e| e.into_inner());
    if r.entries.iter().any(|e| e.value == value) {
        return;
    }
    r.entries.push(Entry { label: label.to_owned(), value: value.to_owned(), kind });
    r.matcher = None;
}

fn matcher() -> Arc<Matcher> {
    if let Some(m) = registry().read().unwrap_or_else(|e| e.into_inner()).matcher.clone() {
        return m;
    }
    let mut r = registry().write().unwrap_or_else(|e| e.into_inner());
    if let Some(m) = r.matcher.clone() {
        return m;
    }
    let m = Arc::new(Matcher::new(&r.entries));
    r.matcher = Some(m.clone());
    m
}

const STD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub fn base64(data: &[u8]) -> String {
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(STD[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// URL-safe base64 (RFC 4648 §5) without padding.
pub fn base64url(data: &[u8]) -> String {
    base64(data).trim_end_matches('=').replace('+', "-").replace('/', "_")
}

/// Every byte outside RFC 3986's unreserved set as `%XX`.
pub fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The parts of the base64 of any text containing `value`, whatever precedes it: for each
/// of the three alignments, the characters that only the value's bits decide.
fn base64_fragments(value: &[u8]) -> Vec<String> {
    (0..3usize)
        .map(|k| {
            let mut padded = vec![0u8; k];
            padded.extend_from_slice(value);
            let enc = base64(&padded);
            let start = (8 * k).div_ceil(6);
            let end = (8 * (k + value.len())) / 6;
            enc[start..end].to_owned()
        })
        .collect()
}

impl Matcher {
    fn new(entries: &[Entry]) -> Matcher {
        let mut patterns = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (i, e) in entries.iter().enumerate() {
            let mut add = |bytes: String, form: &str| {
                if seen.insert((i, bytes.clone())) {
                    patterns.push(Pattern { bytes: bytes.into_bytes(), entry: i, form: form.to_owned() });
                }
            };
            let v = e.value.as_bytes();
            add(e.value.clone(), "raw");
            for f in base64_fragments(v) {
                add(f.clone(), "base64");
                add(f.replace('+', "-").replace('/', "_"), "base64url");
            }
            add(base64(v), "base64");
            add(base64url(v), "base64url");
            for user in crate::harness::BASIC_AUTH_USERS {
                let pair = format!("{user}:{}", e.value);
                add(base64(pair.as_bytes()), "base64 of user:secret");
                add(base64url(pair.as_bytes()), "base64url of user:secret");
            }
            // Percent-encoded forms are found by decoding what is scanned (any encode set,
            // either case); these are searched as they are too.
            add(percent_encode(&e.value), "percent-encoded");
            add(percent_encode(&e.value).replace("%20", "+"), "percent-encoded");
        }
        let mut bits = vec![0u64; 1024];
        let mut by_key: HashMap<u16, Vec<usize>> = HashMap::new();
        for (i, p) in patterns.iter().enumerate() {
            let key = (u16::from(p.bytes[0]) << 8) | u16::from(p.bytes[1]);
            bits[usize::from(key) >> 6] |= 1 << (key & 63);
            by_key.entry(key).or_default().push(i);
        }
        let longest = entries.iter().map(|e| e.value.len()).max().unwrap_or(0);
        Matcher {
            entries: entries.iter().map(|e| (e.label.clone(), e.kind)).collect(),
            longest,
            patterns,
            bits,
            by_key,
        }
    }

    /// (entry, offset, length, form) of every match.
    fn find(&self, text: &[u8], form_override: Option<&str>, out: &mut Vec<(usize, usize, usize, String)>) {
        if text.len() < 2 {
            return;
        }
        let bits: &[u64] = &self.bits;
        let mut prev = text[0] as usize;
        for (i, &b) in text.iter().enumerate().skip(1) {
            let key = (prev << 8) | b as usize;
            prev = b as usize;
            if bits[key >> 6] & (1 << (key & 63)) == 0 {
                continue;
            }
            let i = i - 1;
            for &p in &self.by_key[&(key as u16)] {
                let pat = &self.patterns[p];
                if text[i..].starts_with(&pat.bytes) {
                    let form = form_override.map_or_else(|| pat.form.clone(), str::to_owned);
                    out.push((pat.entry, i, pat.bytes.len(), form));
                }
            }
        }
    }
}

/// `%XX` decoded (either case); everything else kept. With, for each decoded byte (and
/// the end), where it came from in `text`.
fn percent_decode(text: &[u8]) -> (Vec<u8>, Vec<usize>) {
    decode_percent(text, false)
}

/// As [`percent_decode`], and `+` is a space (`application/x-www-form-urlencoded`).
fn form_decode(text: &[u8]) -> (Vec<u8>, Vec<usize>) {
    decode_percent(text, true)
}

fn decode_percent(text: &[u8], plus_is_space: bool) -> (Vec<u8>, Vec<usize>) {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let (mut out, mut from) = (Vec::with_capacity(text.len()), Vec::with_capacity(text.len() + 1));
    let mut i = 0;
    while i < text.len() {
        from.push(i);
        if text[i] == b'%' && i + 2 < text.len() {
            if let (Some(h), Some(l)) = (hex(text[i + 1]), hex(text[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(if plus_is_space && text[i] == b'+' { b' ' } else { text[i] });
        i += 1;
    }
    from.push(text.len());
    (out, from)
}

/// HTML character references (`&amp;`, `&#x2F;`, `&#47;`, …) decoded, with the origins as
/// [`percent_decode`] gives them.
fn html_unescape(text: &[u8]) -> (Vec<u8>, Vec<usize>) {
    let (mut out, mut from) = (Vec::with_capacity(text.len()), Vec::with_capacity(text.len() + 1));
    let mut i = 0;
    while i < text.len() {
        if text[i] == b'&' {
            if let Some(len) = text[i..].iter().take(12).position(|&c| c == b';') {
                let name = String::from_utf8_lossy(&text[i + 1..i + len]).to_ascii_lowercase();
                let c = match name.as_str() {
                    "amp" => Some('&'),
                    "lt" => Some('<'),
                    "gt" => Some('>'),
                    "quot" => Some('"'),
                    "apos" => Some('\''),
                    n if n.starts_with("#x") => u32::from_str_radix(&n[2..], 16).ok().and_then(char::from_u32),
                    n if n.starts_with('#') => n[1..].parse().ok().and_then(char::from_u32),
                    _ => None,
                };
                if let Some(c) = c {
                    let mut b = [0u8; 4];
                    for byte in c.encode_utf8(&mut b).as_bytes() {
                        from.push(i);
                        out.push(*byte);
                    }
                    i += len + 1;
                    continue;
                }
            }
        }
        from.push(i);
        out.push(text[i]);
        i += 1;
    }
    from.push(text.len());
    (out, from)
}

fn context(text: &[u8], at: usize, len: usize, label: &str) -> String {
    let from = at.saturating_sub(60);
    let to = (at + len + 60).min(text.len());
    let clean =
        |b: &[u8]| String::from_utf8_lossy(b).chars().map(|c| if c.is_control() { ' ' } else { c }).collect::<String>();
    format!("{}[{label}]{}", clean(&text[from..at]), clean(&text[(at + len).min(text.len())..to]))
}

/// Every known value in `text`, in any of its forms.
pub fn scan(where_: &str, text: &[u8], source: Source) -> Vec<Hit> {
    let m = matcher();
    let mut hits = Vec::new();
    // The text as it is, then decoded; a value found in a decoded text counts only where
    // decoding changed it (else it is the raw hit again). Only the stretches around
    // something a decoder changes (`%XX`, `&…;`, `+`) are decoded: no value can be found
    // decoded anywhere else. Files (large, binary) are decoded for percent-encoding only.
    type Decoder = fn(&[u8]) -> (Vec<u8>, Vec<usize>);
    let html: (&str, Decoder) = ("HTML-escaped", html_unescape);
    let pct: (&str, Decoder) = ("percent-encoded", percent_decode);
    let form: (&str, Decoder) = ("form-encoded", form_decode);
    let is_hex = |c: u8| c.is_ascii_hexdigit();
    let pct_at = |i: usize| text[i] == b'%' && i + 2 < text.len() && is_hex(text[i + 1]) && is_hex(text[i + 2]);
    let amp_at = |i: usize| text[i] == b'&' && text[i + 1..].iter().take(11).any(|&c| c == b';');
    // Each chain: the decoders to apply in order, and where in the text they may matter.
    type Chain<'a> = (Vec<(&'a str, Decoder)>, Vec<usize>);
    let mut chains: Vec<Chain<'_>> = Vec::new();
    let triggers = |want: &dyn Fn(usize) -> bool| (0..text.len()).filter(|&i| want(i)).collect::<Vec<usize>>();
    let pcts = if text.contains(&b'%') { triggers(&pct_at) } else { Vec::new() };
    if !pcts.is_empty() {
        chains.push((vec![pct], pcts.clone()));
    }
    if source != Source::File {
        let plus = triggers(&|i| text[i] == b'+' || pct_at(i));
        if !plus.is_empty() {
            chains.push((vec![form], plus));
        }
        let amps = if text.contains(&b'&') { triggers(&amp_at) } else { Vec::new() };
        if !amps.is_empty() {
            chains.push((vec![html], amps.clone()));
            chains.push((vec![html, pct], amps.clone()));
            chains.push((vec![html, form], amps));
        }
    }
    let reach = 12 * m.longest + 16;
    // Each variant: the decoding's name, the decoded bytes, and the offsets it covers.
    type Variant = (Option<String>, Vec<u8>, Option<Vec<usize>>);
    let mut variants: Vec<Variant> = vec![(None, text.to_vec(), None)];
    for (chain, at) in chains {
        let name = chain.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(" and ");
        // Merged windows around the triggers.
        let mut windows: Vec<(usize, usize)> = Vec::new();
        for i in at {
            let (a, b) = (i.saturating_sub(reach), (i + reach).min(text.len()));
            match windows.last_mut() {
                Some(w) if a <= w.1 => w.1 = b,
                _ => windows.push((a, b)),
            }
        }
        for (a, b) in windows {
            let (mut t, mut from): (Vec<u8>, Vec<usize>) = (text[a..b].to_vec(), (a..=b).collect());
            for (_, decode) in &chain {
                let (next, step) = decode(&t);
                from = step.iter().map(|&j| from[j]).collect();
                t = next;
            }
            variants.push((Some(name.clone()), t, Some(from)));
        }
    }
    for (form, t, from) in &variants {
        let mut found = Vec::new();
        m.find(t, form.as_deref(), &mut found);
        for (entry, at, len, form) in &found {
            if from.as_ref().is_some_and(|f| f[at + len] - f[*at] == *len) {
                continue;
            }
            let (label, kind) = &m.entries[*entry];
            if *kind == Kind::Token && source == Source::Answer {
                continue;
            }
            let hit = Hit {
                where_: where_.to_owned(),
                label: label.clone(),
                kind: *kind,
                form: form.clone(),
                context: context(t, *at, *len, label),
            };
            if !hits.iter().any(|h: &Hit| h.label == hit.label && h.form == hit.form) {
                hits.push(hit);
            }
        }
    }
    // Planted values are kept for the positive controls; the rest are leaks.
    let (canary, leaks): (Vec<Hit>, Vec<Hit>) = hits.into_iter().partition(|h| h.kind == Kind::Canary);
    canaries().lock().unwrap_or_else(|e| e.into_inner()).extend(canary);
    leaks
}

fn canaries() -> &'static Mutex<Vec<Hit>> {
    static C: OnceLock<Mutex<Vec<Hit>>> = OnceLock::new();
    C.get_or_init(Mutex::default)
}

/// Every planted value found so far (positive controls only).
pub fn canary_hits() -> Vec<Hit> {
    canaries().lock().unwrap_or_else(|e| e.into_inner()).clone()
}

fn recorded() -> &'static Mutex<Vec<Hit>> {
    static L: OnceLock<Mutex<Vec<Hit>>> = OnceLock::new();
    L.get_or_init(Mutex::default)
}

fn record(hits: Vec<Hit>) {
    if !hits.is_empty() {
        recorded().lock().unwrap_or_else(|e| e.into_inner()).extend(hits);
    }
}

fn report(hits: &[Hit]) -> String {
    hits.iter().map(|h| format!("  - {h}")).collect::<Vec<_>>().join("\n")
}

/// Fails if `text` (an answer, a page, command output) holds a known secret in any form.
/// The failure names the secret and the form, never the value.
#[track_caller]
pub fn assert_no_secret(where_: &str, text: &str) {
    let hits = scan(where_, text.as_bytes(), Source::Answer);
    assert!(hits.is_empty(), "a secret leaked:\n{}", report(&hits));
}

/// As [`assert_no_secret`], for bytes that are not an answer to this client (output of a
/// child process, a file): tokens Berth issued count too.
#[track_caller]
pub fn assert_no_secret_in_output(where_: &str, text: &[u8]) {
    let hits = scan(where_, text, Source::Log);
    assert!(hits.is_empty(), "a secret leaked:\n{}", report(&hits));
}

/// Fails if any log line or panic message of this process so far held a secret (they are
/// scanned as they are written, and the hits kept until here).
#[track_caller]
pub fn assert_no_leaks_recorded() {
    let hits = recorded().lock().unwrap_or_else(|e| e.into_inner()).clone();
    assert!(hits.is_empty(), "secrets leaked into this test process's logs or panic messages:\n{}", report(&hits));
}

/// Scans every file under `dir` (database, WAL, key file, logs); returns how many bytes
/// it read.
#[track_caller]
pub fn assert_dir_clean(where_: &str, dir: &Path) -> u64 {
    assert_files_clean(where_, &files_under(dir, None))
}

/// Scans these files; returns how many bytes it read.
#[track_caller]
pub fn assert_files_clean(where_: &str, files: &[PathBuf]) -> u64 {
    let mut hits = Vec::new();
    let mut bytes = 0;
    for f in files {
        // A file may go away (SQLite's WAL at close, PostgreSQL recycling a segment).
        let Ok(data) = std::fs::read(f) else { continue };
        bytes += data.len() as u64;
        hits.extend(scan(&format!("{where_}: {}", f.display()), &data, Source::File));
    }
    assert!(hits.is_empty(), "a secret is stored in a file:\n{}", report(&hits));
    bytes
}

/// Regular files under `dir`, modified at or after `since` when given.
pub fn files_under(dir: &Path, since: Option<std::time::SystemTime>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let Ok(meta) = std::fs::symlink_metadata(e.path()) else { continue };
            if meta.is_dir() {
                stack.push(e.path());
            } else if meta.is_file() && since.is_none_or(|s| meta.modified().is_ok_and(|m| m >= s)) {
                out.push(e.path());
            }
        }
    }
    out
}
