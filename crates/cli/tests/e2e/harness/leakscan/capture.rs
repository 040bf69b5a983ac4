//! What the scan watches as the suite runs: every log line of this process (a global trace
//! subscriber), panic messages, the output of child processes, and PostgreSQL's files.

use super::{assert_files_clean, files_under, record, report, scan, Source};
use std::collections::HashMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

struct Capture {
    file: Mutex<std::fs::File>,
    path: PathBuf,
    lines: AtomicU64,
    by_crate: Mutex<HashMap<String, u64>>,
}

static CAPTURE: OnceLock<Capture> = OnceLock::new();

/// The log of this test process: every event of every in-process Berth, one per line.
pub fn log_path() -> PathBuf {
    init();
    CAPTURE.get().map(|c| c.path.clone()).unwrap_or_default()
}

/// How many log lines were captured so far, in all and for a crate (`berth_server`, …).
pub fn captured_lines(krate: Option<&str>) -> u64 {
    init();
    let Some(c) = CAPTURE.get() else { return 0 };
    match krate {
        None => c.lines.load(Ordering::SeqCst),
        Some(k) => c.by_crate.lock().unwrap_or_else(|e| e.into_inner()).get(k).copied().unwrap_or(0),
    }
}

/// One log event, scanned when the formatter is done with it.
pub struct LineWriter {
    krate: String,
    buf: Vec<u8>,
}

impl std::io::Write for LineWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let Some(c) = CAPTURE.get() else { return };
        record(scan(&format!("a log line of {}", self.krate), &self.buf, Source::Log));
        c.lines.fetch_add(1, Ordering::SeqCst);
        *c.by_crate.lock().unwrap_or_else(|e| e.into_inner()).entry(std::mem::take(&mut self.krate)).or_default() += 1;
        let _ = c.file.lock().unwrap_or_else(|e| e.into_inner()).write_all(&self.buf);
    }
}

pub struct MakeCapture;

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for MakeCapture {
    type Writer = LineWriter;
    fn make_writer(&'a self) -> LineWriter {
        LineWriter { krate: "?".into(), buf: Vec::new() }
    }
    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> LineWriter {
        LineWriter { krate: meta.target().split("::").next().unwrap_or("?").to_owned(), buf: Vec::new() }
    }
}

/// Installs, once per test process, the global log subscriber (every event of the crates in
/// [`crate::harness::LOG_FILTER`] is scanned and appended to [`log_path`]) and the panic hook that
/// scans panic messages. Every test that starts a Berth calls it.
pub fn init() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        use tracing_subscriber::layer::SubscriberExt as _;
        use tracing_subscriber::util::SubscriberInitExt as _;
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("e2e-logs");
        std::fs::create_dir_all(&dir).unwrap();
        // Logs of earlier runs: keep the last few.
        let mut old: Vec<PathBuf> = files_under(&dir, None);
        old.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
        for p in old.iter().rev().skip(4) {
            let _ = std::fs::remove_file(p);
        }
        let path = dir.join(format!("e2e-{}.log", std::process::id()));
        let file = std::fs::File::create(&path).unwrap();
        let _ =
            CAPTURE.set(Capture { file: Mutex::new(file), path, lines: AtomicU64::new(0), by_crate: Mutex::default() });
        let filter: tracing_subscriber::filter::Targets = crate::harness::LOG_FILTER.parse().unwrap();
        use tracing_subscriber::Layer as _;
        let layer = tracing_subscriber::fmt::layer().with_ansi(false).with_writer(MakeCapture).with_filter(filter);
        tracing_subscriber::registry()
            .with(layer)
            .try_init()
            .expect("the leak scan must own the global log subscriber, or it would see no log line");

        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            record(scan("a panic message", info.to_string().as_bytes(), Source::Panic));
            default(info);
        }));
    });
}

/// The environment of every Berth child process: the suite's log filter, no colour codes.
pub fn child_log_env(cmd: &mut tokio::process::Command) {
    cmd.env("RUST_LOG", crate::harness::LOG_FILTER).env("NO_COLOR", "1");
}

/// Splits a `berth` command's stderr into its log lines (tracing's format: a timestamp and
/// a level) and the rest (what it says to a person).
pub fn split_log_lines(stderr: &str) -> (String, String) {
    let (mut logs, mut rest) = (String::new(), String::new());
    for line in stderr.lines() {
        let b = line.as_bytes();
        let is_log = b.len() > 28
            && b[..4].iter().all(u8::is_ascii_digit)
            && b[4] == b'-'
            && b[10] == b'T'
            && line.split_whitespace().nth(1).is_some_and(|l| ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"].contains(&l));
        let to = if is_log { &mut logs } else { &mut rest };
        to.push_str(line);
        to.push('\n');
    }
    (logs, rest)
}

/// Where PostgreSQL's write-ahead log is now (0 on SQLite): taken when a test starts, so
/// [`assert_postgres_clean`] can read what was written since.
pub fn postgres_wal_position(database_url: &str) -> u64 {
    if !database_url.starts_with("postgres") {
        return 0;
    }
    parse_lsn(&berth_testkit::pg::PgCluster::shared().psql("postgres", "SELECT pg_current_wal_insert_lsn()"))
}

fn parse_lsn(s: &str) -> u64 {
    let (hi, lo) = s.trim().split_once('/').expect("an LSN");
    (u64::from_str_radix(hi, 16).unwrap() << 32) | u64::from_str_radix(lo, 16).unwrap()
}

/// On PostgreSQL: every byte of write-ahead log written since `since` (a
/// [`postgres_wal_position`]), which holds every row any test wrote meanwhile (the WAL is
/// flushed first), and the cluster's shared catalogs. If a segment of that stretch was
/// already recycled, the test's whole database directory instead. Nothing on SQLite.
#[track_caller]
pub fn assert_postgres_clean(where_: &str, database_url: &str, since: u64) -> u64 {
    if !database_url.starts_with("postgres") {
        return 0;
    }
    let cluster = berth_testkit::pg::PgCluster::shared();
    let db = database_url.rsplit('/').next().unwrap_or_default().to_owned();
    let end = parse_lsn(&cluster.psql("postgres", "SELECT pg_current_wal_insert_lsn()"));
    // synchronous_commit is off: wait until the WAL writer has put it on disk.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while parse_lsn(&cluster.psql("postgres", "SELECT pg_current_wal_flush_lsn()")) < end {
        assert!(std::time::Instant::now() < deadline, "the WAL was not flushed");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let seg: u64 = cluster
        .psql("postgres", "SELECT setting FROM pg_settings WHERE name = 'wal_segment_size'")
        .trim()
        .parse()
        .unwrap();
    let per_id = 0x1_0000_0000 / seg;
    let data = cluster.data_dir().to_owned();
    let (mut hits, mut read, mut recycled) = (Vec::new(), 0u64, false);
    let page = 8192;
    let from = since.saturating_sub(page) / page * page;
    for n in from / seg..=end / seg {
        let path = data.join("pg_wal").join(format!("{:08X}{:08X}{:08X}", 1, n / per_id, n % per_id));
        let Ok(bytes) = std::fs::read(&path) else {
            recycled = true;
            continue;
        };
        let a = if n == from / seg { (from % seg) as usize } else { 0 };
        let b = if n == end / seg { ((end % seg + 2 * page) as usize).min(bytes.len()) } else { bytes.len() };
        read += (b - a) as u64;
        hits.extend(scan(&format!("{where_}: {} bytes {a}..{b}", path.display()), &bytes[a..b], Source::File));
    }
    assert!(hits.is_empty(), "a secret is in PostgreSQL's write-ahead log:\n{}", report(&hits));
    let mut files = files_under(&data.join("global"), None);
    if recycled {
        let oid = cluster.psql("postgres", &format!("SELECT oid FROM pg_database WHERE datname = '{db}'"));
        files.extend(files_under(&data.join("base").join(oid.trim()), None));
    }
    read + assert_files_clean(&format!("{where_} (PostgreSQL {db})"), &files)
}
