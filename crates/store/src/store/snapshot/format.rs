//! The snapshot file: JSON lines, the same for both databases.
//!
//! ```text
//! {"format":"berth-snapshot","version":1,"berth_version":"0.1.0","created_at":"…","source":"sqlite",
//!  "schema_version":11,"key_ids":["k-…"],"master_key":null}
//! {"table":"users","columns":["id","username",…]}
//! [1,"admin",…]
//! …
//! {"end":{"rows":{"users":1,…},"sha256":"<hex of every byte above this line>"}}
//! ```
//!
//! The last line's SHA-256 covers every byte before it, so a truncated or altered file is
//! found by reading it once, before anything is written; the vault's own seals (bound to their
//! rows) are what stop a deliberate forger from planting a secret.

use super::error::{SnapResult, SnapshotError};
use super::key::SealedKeys;
use super::schema::{self, Column, TableSpec};
use super::value::Val;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::{BufRead, Read as _, Write};
use std::path::{Path, PathBuf};

pub const FORMAT: &str = "berth-snapshot";
pub const VERSION: u32 = 1;
/// No line of a snapshot is longer (a row with a check's steps is a few kilobytes).
const MAX_LINE: u64 = 64 << 20;

/// The first line: what the snapshot is and what it needs to be opened.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Header {
    pub format: String,
    pub version: u32,
    pub berth_version: String,
    pub created_at: DateTime<Utc>,
    /// `sqlite` or `postgres`: the database it was taken from.
    pub source: String,
    /// The newest migration the source had run.
    pub schema_version: i64,
    /// The master keys the snapshot's sealed secrets need.
    pub key_ids: Vec<String>,
    /// The key file, sealed under a passphrase: only with `--include-key`.
    pub master_key: Option<SealedKeys>,
}

#[derive(Serialize, Deserialize)]
struct TableLine {
    table: String,
    columns: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct EndLine {
    end: End,
}

#[derive(Serialize, Deserialize)]
struct End {
    rows: BTreeMap<String, u64>,
    sha256: String,
}

/// Writes a snapshot line by line, hashing as it goes.
pub(crate) struct SnapshotWriter<W: Write> {
    out: W,
    hash: Sha256,
    rows: BTreeMap<String, u64>,
    table: Option<&'static str>,
    path: PathBuf,
}

impl<W: Write> SnapshotWriter<W> {
    pub fn new(out: W, path: &Path, header: &Header) -> SnapResult<Self> {
        let mut w = SnapshotWriter { out, hash: Sha256::new(), rows: BTreeMap::new(), table: None, path: path.into() };
        w.line(&serde_json::to_vec(header).map_err(|e| w.io(e.into()))?)?;
        Ok(w)
    }

    fn io(&self, source: std::io::Error) -> SnapshotError {
        SnapshotError::Io { what: "write", path: self.path.clone(), source }
    }

    fn line(&mut self, bytes: &[u8]) -> SnapResult<()> {
        self.hash.update(bytes);
        self.hash.update(b"\n");
        self.out.write_all(bytes).and_then(|_| self.out.write_all(b"\n")).map_err(|e| self.io(e))
    }

    pub fn table(&mut self, spec: &'static TableSpec) -> SnapResult<()> {
        let line = TableLine { table: spec.name.into(), columns: spec.columns.iter().map(|c| c.name.into()).collect() };
        self.table = Some(spec.name);
        self.rows.insert(spec.name.into(), 0);
        self.line(&serde_json::to_vec(&line).map_err(|e| self.io(e.into()))?)
    }

    pub fn row(&mut self, values: &[Val]) -> SnapResult<()> {
        let json = serde_json::Value::Array(values.iter().map(Val::to_json).collect());
        let bytes = serde_json::to_vec(&json).map_err(|e| self.io(e.into()))?;
        self.line(&bytes)?;
        if let Some(n) = self.table.and_then(|t| self.rows.get_mut(t)) {
            *n += 1;
        }
        Ok(())
    }

    /// Writes the last line and hands back the output and the rows written per table.
    pub fn finish(mut self) -> SnapResult<(W, BTreeMap<String, u64>, String)> {
        let sha256 = hex::encode(std::mem::take(&mut self.hash).finalize());
        let end = EndLine { end: End { rows: self.rows.clone(), sha256: sha256.clone() } };
        let bytes = serde_json::to_vec(&end).map_err(|e| self.io(e.into()))?;
        self.out.write_all(&bytes).and_then(|_| self.out.write_all(b"\n")).map_err(|e| self.io(e))?;
        Ok((self.out, self.rows, sha256))
    }
}

/// What a snapshot yields after its header.
pub(crate) enum Item {
    /// A table starts: its spec and the columns its rows carry, in their order.
    Table(&'static TableSpec, Vec<&'static Column>),
    Row(Vec<Val>),
}

/// Reads a snapshot line by line and refuses anything that does not fit; the last line's
/// checksum and row counts are proved before [`SnapshotReader::next`] answers `None`.
pub(crate) struct SnapshotReader<R: BufRead> {
    input: R,
    path: PathBuf,
    hash: Sha256,
    pub header: Header,
    columns: Vec<&'static Column>,
    table: Option<&'static TableSpec>,
    /// Index in `schema::TABLES` of the last table seen: tables come in that order, once.
    last_index: Option<usize>,
    rows: BTreeMap<String, u64>,
    line_no: u64,
    done: bool,
    /// The checksum, once the last line proved it.
    pub sha256: Option<String>,
}

impl<R: BufRead> SnapshotReader<R> {
    pub fn new(mut input: R, path: &Path) -> SnapResult<Self> {
        let not = |why: String| SnapshotError::NotASnapshot { path: path.into(), why };
        let mut hash = Sha256::new();
        let first = read_line(&mut input, path)?.ok_or_else(|| not("the file is empty".into()))?;
        hash.update(&first);
        let header: Header = serde_json::from_slice(trim_newline(&first))
            .map_err(|e| not(format!("its first line is not a snapshot header ({e})")))?;
        if header.format != FORMAT {
            return Err(not(format!("its format is {:?}", header.format)));
        }
        if header.version != VERSION {
            return Err(not(format!("its format version is {}, this Berth reads {VERSION}", header.version)));
        }
        let ours = crate::store::open::latest_migration();
        if header.schema_version > ours {
            return Err(not(format!(
                "it was made by Berth {} at schema {}, newer than this Berth's {ours}: restore it with that version or a later one",
                header.berth_version, header.schema_version
            )));
        }
        Ok(SnapshotReader {
            input,
            path: path.into(),
            hash,
            header,
            columns: Vec::new(),
            table: None,
            last_index: None,
            rows: BTreeMap::new(),
            line_no: 1,
            done: false,
            sha256: None,
        })
    }

    fn damaged(&self, why: impl Into<String>) -> SnapshotError {
        SnapshotError::Damaged { path: self.path.clone(), why: why.into() }
    }

    /// The next table or row; `None` once the last line has been read and proved.
    pub fn next(&mut self) -> SnapResult<Option<Item>> {
        if self.done {
            return Ok(None);
        }
        let Some(raw) = read_line(&mut self.input, &self.path)? else {
            return Err(self.damaged("it ends before its last line: the file is truncated"));
        };
        self.line_no += 1;
        if !raw.ends_with(b"\n") {
            return Err(self.damaged("its last line is cut off: the file is truncated"));
        }
        let line = trim_newline(&raw);
        if line.first() == Some(&b'[') {
            self.hash.update(&raw);
            return self.row(line).map(|r| Some(Item::Row(r)));
        }
        let value: serde_json::Value = serde_json::from_slice(line)
            .map_err(|e| self.damaged(format!("line {} is not JSON ({e})", self.line_no)))?;
        if value.get("end").is_some() {
            self.end(value)?;
            return Ok(None);
        }
        self.hash.update(&raw);
        let t: TableLine = serde_json::from_value(value)
            .map_err(|e| self.damaged(format!("line {} is neither a table nor a row ({e})", self.line_no)))?;
        self.start_table(t).map(Some)
    }

    fn start_table(&mut self, t: TableLine) -> SnapResult<Item> {
        let Some(index) = schema::TABLES.iter().position(|s| s.name == t.table) else {
            return Err(self.damaged(format!("line {} names a table Berth does not have: {:?}", self.line_no, t.table)));
        };
        if self.last_index.is_some_and(|last| index <= last) {
            return Err(self.damaged(format!("table {} comes out of order or twice (line {})", t.table, self.line_no)));
        }
        let spec = &schema::TABLES[index];
        let mut columns = Vec::with_capacity(t.columns.len());
        for name in &t.columns {
            let Some(col) = spec.columns.iter().find(|c| c.name == name) else {
                return Err(self.damaged(format!("table {} has no column {name:?} in this Berth", spec.name)));
            };
            if columns.iter().any(|c: &&Column| c.name == name) {
                return Err(self.damaged(format!("column {name:?} of {} comes twice", spec.name)));
            }
            columns.push(col);
        }
        self.last_index = Some(index);
        self.table = Some(spec);
        self.columns = columns.clone();
        self.rows.insert(spec.name.into(), 0);
        Ok(Item::Table(spec, columns))
    }

    fn row(&mut self, line: &[u8]) -> SnapResult<Vec<Val>> {
        let Some(spec) = self.table else {
            return Err(self.damaged(format!("line {} is a row before any table", self.line_no)));
        };
        let values: Vec<serde_json::Value> = serde_json::from_slice(line)
            .map_err(|e| self.damaged(format!("line {} is not a row ({e})", self.line_no)))?;
        if values.len() != self.columns.len() {
            return Err(self.damaged(format!(
                "line {} has {} values, table {} has {} columns",
                self.line_no,
                values.len(),
                spec.name,
                self.columns.len()
            )));
        }
        let mut out = Vec::with_capacity(values.len());
        for (col, v) in self.columns.iter().zip(&values) {
            out.push(Val::from_json(col.kind, v).map_err(|why| {
                self.damaged(format!("line {}, column {}.{}: {why}", self.line_no, spec.name, col.name))
            })?);
        }
        if let Some(n) = self.rows.get_mut(spec.name) {
            *n += 1;
        }
        Ok(out)
    }

    fn end(&mut self, value: serde_json::Value) -> SnapResult<()> {
        let end: EndLine =
            serde_json::from_value(value).map_err(|e| self.damaged(format!("its last line is malformed ({e})")))?;
        let actual = hex::encode(std::mem::take(&mut self.hash).finalize());
        if actual != end.end.sha256 {
            return Err(self.damaged("its SHA-256 checksum does not match its content: the file was altered"));
        }
        if end.end.rows != self.rows {
            return Err(self.damaged("its row counts do not match its rows"));
        }
        let mut rest = [0u8; 1];
        match self.input.read(&mut rest) {
            Ok(0) => {}
            Ok(_) => return Err(self.damaged("something follows its last line")),
            Err(source) => return Err(SnapshotError::Io { what: "read", path: self.path.clone(), source }),
        }
        self.done = true;
        self.sha256 = Some(actual);
        Ok(())
    }

    /// The rows read per table (all of them once `next` answered `None`).
    pub fn rows(&self) -> &BTreeMap<String, u64> {
        &self.rows
    }
}

fn trim_newline(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\n").unwrap_or(line)
}

/// One line, newline included; `None` at the end of the file. A line longer than
/// [`MAX_LINE`] is damage, not a reason to fill memory.
fn read_line(input: &mut impl BufRead, path: &Path) -> SnapResult<Option<Vec<u8>>> {
    let mut buf = Vec::new();
    let n = input.take(MAX_LINE).read_until(b'\n', &mut buf).map_err(|source| SnapshotError::Io {
        what: "read",
        path: path.into(),
        source,
    })?;
    if n == 0 {
        return Ok(None);
    }
    if n as u64 == MAX_LINE && !buf.ends_with(b"\n") {
        return Err(SnapshotError::Damaged { path: path.into(), why: "a line is longer than any Berth writes".into() });
    }
    Ok(Some(buf))
}
