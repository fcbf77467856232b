//! The default durable evidence sink: an append-only JSON-lines file with a hash chain, plus a
//! head anchor, so an edited, reordered, removed or truncated record is detected.
//!
//! # Format
//!
//! Each line of the log is one record, written as
//!
//! ```text
//! {"seq":<n>,"prev_hash":"sha256:<hex>","evidence":<Evidence as canonical JSON>}
//! ```
//!
//! * `seq` counts records from 0.
//! * The hash of a record is [`sha256_ref`] of the exact bytes of its line, without the newline.
//! * `prev_hash` is the hash of the previous record; the first record links to
//!   [`GENESIS_HASH`].
//!
//! Next to the log, `<log>.head` holds `{"count":<records>,"last_hash":"sha256:<hex>"}`. It is
//! rewritten atomically (temp file + rename) after every append, so removing whole records from
//! the end, or editing the last record, is detected too: the chain alone cannot see either.
//!
//! The chain is not keyed: whoever can rewrite the whole log and its head can forge a
//! consistent history. It proves the log was not altered *partially*, which is what a damaged
//! disk, a careless edit or a naive tamper produces; keep copies of the head elsewhere for
//! more.
//!
//! # Writing
//!
//! [`FileChainSink`] serializes appends behind a mutex (lines never interleave) and holds an
//! advisory lock on the log so a second process cannot append to it. Appends are handed to the
//! OS at once (one `write` per record) but fsynced only on [`EvidenceSink::flush`] and on drop.
//! Appends run inline in `emit`: a record is a few hundred bytes to the page cache plus a small
//! head rename, shorter than a hop to a blocking thread; `flush` (fsync) runs on tokio's
//! blocking pool when one is available.
//!
//! ```
//! use ep_node::sinks::file_chain::{FileChainSink, verify_chain};
//! use ep_node::EvidenceSink;
//! use ep_contracts::boundary::Evidence;
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("evidence.jsonl");
//! let sink = FileChainSink::open(&path).unwrap();
//! sink.emit(&Evidence::default()).await.unwrap();
//! sink.flush().await.unwrap();
//! let report = verify_chain(&path).unwrap();
//! assert_eq!((report.records, report.anchored), (1, true));
//! # });
//! ```

use std::ffi::OsString;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use ep_contracts::Contract as _;
use ep_contracts::boundary::Evidence;
use ep_contracts::canonical::{canonical_json, is_sha256_ref, sha256_ref};
use serde_json::Value;
use thiserror::Error;

use crate::error::SinkError;
use crate::traits::EvidenceSink;

/// The link of the first record: `sha256_ref(b"execution-plane evidence chain v1")`.
///
/// A fixed, documented value rather than an empty string, so a record claiming to be first
/// still carries a real hash and the chain format version is part of every chain.
pub const GENESIS_HASH: &str =
    "sha256:f3b200953ba75575d13010cd7a60a861dc66c246ece99e9047b4fb29313f90af";

/// The bytes [`GENESIS_HASH`] is the hash of.
pub const GENESIS_INPUT: &[u8] = b"execution-plane evidence chain v1";

/// What is appended to the log's file name to name its head anchor.
pub const HEAD_SUFFIX: &str = ".head";

/// Lines longer than this are refused on write and reported malformed on read.
pub const MAX_RECORD_BYTES: usize = 16 * 1024 * 1024;

/// Head files are tiny; anything larger is not one.
const MAX_HEAD_BYTES: u64 = 64 * 1024;

/// The head anchor path of the log at `log`: `<log>.head`.
pub fn head_path(log: &Path) -> PathBuf {
    let mut name: OsString = log.as_os_str().to_owned();
    name.push(HEAD_SUFFIX);
    PathBuf::from(name)
}

// ---------------------------------------------------------------------------------------------
// Errors and reports
// ---------------------------------------------------------------------------------------------

/// What is wrong with the first bad record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChainErrorKind {
    /// Not JSON, or missing/ill-typed `seq`, `prev_hash` or `evidence`.
    Malformed,
    /// Its bytes changed after it was written.
    Edited,
    /// A record appears before one that was written earlier.
    Reordered,
    /// One or more records are missing before it.
    Removed,
    /// The log ends early: a partial last line, or fewer records than the head counts.
    Truncated,
}

impl ChainErrorKind {
    /// The lowercase name used in messages and CLI output.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::Edited => "edited",
            Self::Reordered => "reordered",
            Self::Removed => "removed",
            Self::Truncated => "truncated",
        }
    }
}

impl fmt::Display for ChainErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a log does not verify, or could not be opened for appending.
#[derive(Debug, Error)]
pub enum ChainError {
    /// The log or its head could not be read or written.
    #[error("evidence log {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A record is bad; `record` is its 1-based line number.
    #[error("evidence log {}: {message}", path.display())]
    Broken {
        /// The log.
        path: PathBuf,
        /// 1-based line number of the first bad record.
        record: u64,
        /// What is wrong with it.
        kind: ChainErrorKind,
        /// The full explanation, e.g. "record 3 was edited: its hash no longer matches the
        /// link in record 4".
        message: String,
    },
    /// The head anchor exists but is not a valid anchor.
    #[error(
        "evidence head {}: {reason}; restore it from a copy, or verify the log without it (rename it away)",
        path.display()
    )]
    BadHead {
        /// The head file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Another process holds the log open for appending.
    #[error(
        "evidence log {}: locked by another process; stop the other writer or use another log file",
        path.display()
    )]
    Locked {
        /// The log.
        path: PathBuf,
    },
    /// `open` found records but no head anchor (it may have been deleted to hide truncation).
    #[error(
        "evidence log {}: has {records} records but no head anchor {}; verify it with `execution-plane evidence verify`, then reopen it with FileChainSink::open_reanchor or start a new log",
        path.display(),
        head_path(path).display()
    )]
    Unanchored {
        /// The log.
        path: PathBuf,
        /// How many records it has.
        records: u64,
    },
}

impl ChainError {
    /// The kind of the first bad record, when a record is to blame.
    pub fn kind(&self) -> Option<ChainErrorKind> {
        match self {
            Self::Broken { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    /// The 1-based line number of the first bad record, when a record is to blame.
    pub fn record(&self) -> Option<u64> {
        match self {
            Self::Broken { record, .. } => Some(*record),
            _ => None,
        }
    }
}

/// What a successful verification found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    /// How many records the log holds.
    pub records: u64,
    /// The hash of the last record ([`GENESIS_HASH`] for an empty log).
    pub last_hash: String,
    /// Whether a head anchor confirmed the count and the last record; `false` means truncation
    /// at a record boundary or an edit of the last record would not have been seen.
    pub anchored: bool,
}

// ---------------------------------------------------------------------------------------------
// Verification
// ---------------------------------------------------------------------------------------------

/// Verifies the log at `path` (and its head anchor, when present) and reports the first bad
/// record.
pub fn verify_chain(path: impl AsRef<Path>) -> Result<ChainReport, ChainError> {
    let path = path.as_ref();
    let head = read_head(path)?;
    let file = File::open(path).map_err(|source| ChainError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    verify_reader(path, BufReader::new(file), head.as_ref())
}

/// The head anchor's contents.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Head {
    count: u64,
    last_hash: String,
}

impl Head {
    fn to_line(&self) -> String {
        format!(
            "{{\"count\":{},\"last_hash\":\"{}\"}}\n",
            self.count, self.last_hash
        )
    }
}

/// Reads `<log>.head`; `None` when it does not exist.
fn read_head(log: &Path) -> Result<Option<Head>, ChainError> {
    let path = head_path(log);
    let bad = |reason: String| ChainError::BadHead {
        path: path.clone(),
        reason,
    };
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(ChainError::Io {
                path: path.clone(),
                source,
            });
        }
    };
    let mut bytes = Vec::new();
    file.take(MAX_HEAD_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| ChainError::Io {
            path: path.clone(),
            source,
        })?;
    if bytes.len() as u64 > MAX_HEAD_BYTES {
        return Err(bad(format!("larger than {MAX_HEAD_BYTES} bytes")));
    }
    let value: Value =
        serde_json::from_slice(&bytes).map_err(|e| bad(format!("not JSON ({e})")))?;
    let count = value
        .get("count")
        .and_then(Value::as_u64)
        .ok_or_else(|| bad("count must be a non-negative integer".to_owned()))?;
    let last_hash = value
        .get("last_hash")
        .and_then(Value::as_str)
        .filter(|h| is_sha256_ref(h))
        .ok_or_else(|| bad("last_hash must be a sha256:<64 hex> string".to_owned()))?;
    Ok(Some(Head {
        count,
        last_hash: last_hash.to_owned(),
    }))
}

/// One parsed record line: only what the chain needs.
struct RecordLink {
    seq: u64,
    prev_hash: String,
}

fn parse_record(line: &[u8]) -> Result<RecordLink, String> {
    let value: Value = serde_json::from_slice(line).map_err(|e| format!("not JSON ({e})"))?;
    let Value::Object(map) = value else {
        return Err("not a JSON object".to_owned());
    };
    for key in map.keys() {
        if !matches!(key.as_str(), "seq" | "prev_hash" | "evidence") {
            return Err(format!("unexpected field {key:?}"));
        }
    }
    let seq = map
        .get("seq")
        .and_then(Value::as_u64)
        .ok_or("seq is missing or not a non-negative integer")?;
    let prev_hash = map
        .get("prev_hash")
        .and_then(Value::as_str)
        .filter(|h| is_sha256_ref(h))
        .ok_or("prev_hash is missing or not a sha256:<64 hex> string")?;
    if !map.get("evidence").is_some_and(Value::is_object) {
        return Err("evidence is missing or not an object".to_owned());
    }
    Ok(RecordLink {
        seq,
        prev_hash: prev_hash.to_owned(),
    })
}

/// Reads one line (newline included) of at most [`MAX_RECORD_BYTES`] + 1 bytes.
fn read_line(reader: &mut impl BufRead, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    buf.clear();
    reader
        .by_ref()
        .take(MAX_RECORD_BYTES as u64 + 2)
        .read_until(b'\n', buf)
}

fn verify_reader(
    path: &Path,
    mut reader: impl BufRead,
    head: Option<&Head>,
) -> Result<ChainReport, ChainError> {
    let broken = |record: u64, kind: ChainErrorKind, message: String| ChainError::Broken {
        path: path.to_path_buf(),
        record,
        kind,
        message,
    };
    let io = |source| ChainError::Io {
        path: path.to_path_buf(),
        source,
    };

    let mut prev_hash = GENESIS_HASH.to_owned();
    let mut hash_at_anchor = head
        .filter(|h| h.count == 0)
        .map(|_| GENESIS_HASH.to_owned());
    let mut records: u64 = 0;
    let mut buf = Vec::new();
    loop {
        if read_line(&mut reader, &mut buf).map_err(io)? == 0 {
            break;
        }
        let number = records + 1;
        let Some(line) = buf.strip_suffix(b"\n") else {
            if buf.len() > MAX_RECORD_BYTES {
                return Err(broken(
                    number,
                    ChainErrorKind::Malformed,
                    format!("record {number} is malformed: longer than {MAX_RECORD_BYTES} bytes"),
                ));
            }
            return Err(broken(
                number,
                ChainErrorKind::Truncated,
                format!(
                    "record {number} was truncated: the log ends in the middle of it (no final \
                     newline)"
                ),
            ));
        };
        if line.len() > MAX_RECORD_BYTES {
            return Err(broken(
                number,
                ChainErrorKind::Malformed,
                format!("record {number} is malformed: longer than {MAX_RECORD_BYTES} bytes"),
            ));
        }
        let record = parse_record(line).map_err(|reason| {
            broken(
                number,
                ChainErrorKind::Malformed,
                format!("record {number} is malformed: {reason}"),
            )
        })?;

        let expected = records;
        if record.seq != expected {
            let (kind, message) = if record.prev_hash == prev_hash {
                // It links to the record before it, so it was written right after it: its own
                // seq field was changed.
                (
                    ChainErrorKind::Edited,
                    format!(
                        "record {number} was edited: its seq is {} but it links to {} (expected \
                         seq {expected})",
                        record.seq,
                        predecessor(number)
                    ),
                )
            } else if record.seq < expected || earlier_seq_follows(&mut reader, record.seq) {
                (
                    ChainErrorKind::Reordered,
                    format!(
                        "record {number} was reordered: expected seq {expected}, found seq {} \
                         which belongs elsewhere in the log",
                        record.seq
                    ),
                )
            } else {
                (
                    ChainErrorKind::Removed,
                    format!(
                        "record {number} follows removed records: expected seq {expected}, \
                         found seq {} ({} missing)",
                        record.seq,
                        record.seq - expected
                    ),
                )
            };
            return Err(broken(number, kind, message));
        }

        if record.prev_hash != prev_hash {
            return Err(if number == 1 {
                broken(
                    1,
                    ChainErrorKind::Edited,
                    "record 1 was edited: its link no longer matches the genesis value".to_owned(),
                )
            } else {
                let edited = number - 1;
                broken(
                    edited,
                    ChainErrorKind::Edited,
                    format!(
                        "record {edited} was edited: its hash no longer matches the link in \
                         record {number}"
                    ),
                )
            });
        }

        prev_hash = sha256_ref(line);
        records = number;
        if head.is_some_and(|h| h.count == records) {
            hash_at_anchor = Some(prev_hash.clone());
        }
    }

    let Some(head) = head else {
        return Ok(ChainReport {
            records,
            last_hash: prev_hash,
            anchored: false,
        });
    };
    if head.count > records {
        let first_missing = records + 1;
        return Err(broken(
            first_missing,
            ChainErrorKind::Truncated,
            format!(
                "record {first_missing} is missing: the log was truncated after {records} \
                 records but the head anchor counts {}",
                head.count
            ),
        ));
    }
    if hash_at_anchor.as_deref() != Some(head.last_hash.as_str()) {
        if head.count == 0 {
            return Err(ChainError::BadHead {
                path: head_path(path),
                reason: "it counts 0 records but its last_hash is not the genesis value".to_owned(),
            });
        }
        let edited = head.count;
        return Err(broken(
            edited,
            ChainErrorKind::Edited,
            format!("record {edited} was edited: its hash no longer matches the head anchor"),
        ));
    }
    Ok(ChainReport {
        records,
        // Records past the anchor (a crash between append and anchor update) verify by chain
        // only; report them as not anchored.
        anchored: head.count == records,
        last_hash: prev_hash,
    })
}

fn predecessor(number: u64) -> String {
    if number == 1 {
        "the genesis value".to_owned()
    } else {
        format!("record {}", number - 1)
    }
}

/// Error path only: whether a later line carries a seq lower than `seq` (then the record at
/// hand was moved, not preceded by a removal).
fn earlier_seq_follows(reader: &mut impl BufRead, seq: u64) -> bool {
    let mut buf = Vec::new();
    while let Ok(n) = read_line(reader, &mut buf) {
        if n == 0 {
            break;
        }
        let line = buf.strip_suffix(b"\n").unwrap_or(&buf);
        if let Ok(record) = parse_record(line)
            && record.seq < seq
        {
            return true;
        }
    }
    false
}

// ---------------------------------------------------------------------------------------------
// The sink
// ---------------------------------------------------------------------------------------------

/// Appends evidence to a hash-chained JSON-lines log with a head anchor.
#[derive(Debug)]
pub struct FileChainSink {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    head_path: PathBuf,
    sink_id: String,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// Holds the advisory lock for as long as the sink lives.
    writer: BufWriter<File>,
    count: u64,
    last_hash: String,
    /// Set when a write failed part-way: the log may end in a partial line.
    broken: Option<String>,
}

impl FileChainSink {
    /// Opens (or creates) the log at `path`, verifying an existing one first and continuing its
    /// chain; refuses a broken chain, a log locked by another process, and a non-empty log
    /// without its head anchor.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, ChainError> {
        Self::open_with(path.as_ref(), false)
    }

    /// Like [`FileChainSink::open`] but accepts a non-empty log whose head anchor is missing
    /// and writes a new one: only after an operator has checked the log.
    pub fn open_reanchor(path: impl AsRef<Path>) -> Result<Self, ChainError> {
        Self::open_with(path.as_ref(), true)
    }

    fn open_with(path: &Path, allow_unanchored: bool) -> Result<Self, ChainError> {
        let io = |source| ChainError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(ChainError::Locked {
                    path: path.to_path_buf(),
                });
            }
            // Filesystems without advisory locks: the in-process mutex still serializes.
            Err(std::fs::TryLockError::Error(e)) if e.kind() == std::io::ErrorKind::Unsupported => {
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }

        let head = read_head(path)?;
        let report =
            verify_reader(path, BufReader::new(&file), head.as_ref()).map_err(|e| match e {
                ChainError::Broken {
                    path,
                    record,
                    kind,
                    message,
                } => ChainError::Broken {
                    path,
                    record,
                    kind,
                    message: format!(
                        "{message}; refusing to append to a broken chain: move the log and its \
                         head aside (keep them as evidence) and start a new log"
                    ),
                },
                other => other,
            })?;
        if head.is_none() && report.records > 0 && !allow_unanchored {
            return Err(ChainError::Unanchored {
                path: path.to_path_buf(),
                records: report.records,
            });
        }

        let head_path = head_path(path);
        let anchor = Head {
            count: report.records,
            last_hash: report.last_hash.clone(),
        };
        write_head(&head_path, &anchor, true).map_err(|source| ChainError::Io {
            path: head_path.clone(),
            source,
        })?;

        Ok(Self {
            inner: Arc::new(Inner {
                sink_id: format!("file-chain:{}", path.display()),
                path: path.to_path_buf(),
                head_path,
                state: Mutex::new(State {
                    writer: BufWriter::new(file),
                    count: report.records,
                    last_hash: report.last_hash,
                    broken: None,
                }),
            }),
        })
    }

    /// The log file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The head anchor file.
    pub fn head_path(&self) -> &Path {
        &self.inner.head_path
    }

    /// How many records the log holds.
    pub fn record_count(&self) -> u64 {
        self.inner.lock().count
    }

    /// The hash of the last record ([`GENESIS_HASH`] when empty).
    pub fn last_hash(&self) -> String {
        self.inner.lock().last_hash.clone()
    }

    /// Appends one record (synchronously); see the module docs for why this is inline.
    fn append(&self, evidence: &Evidence) -> Result<(), SinkError> {
        let inner = &self.inner;
        let value = evidence.to_value();
        if !value.is_object() {
            return Err(SinkError::Encode {
                sink_id: inner.sink_id.clone(),
                message: "evidence did not serialize to a JSON object".to_owned(),
            });
        }
        let evidence_json = canonical_json(&value);

        let mut state = inner.lock();
        if let Some(reason) = &state.broken {
            return Err(inner.io_error(std::io::Error::other(format!(
                "an earlier write failed ({reason}); the log may end in a partial record, reopen \
                 it to verify"
            ))));
        }
        let line = format!(
            "{{\"seq\":{},\"prev_hash\":\"{}\",\"evidence\":{evidence_json}}}",
            state.count, state.last_hash
        );
        if line.len() > MAX_RECORD_BYTES {
            return Err(SinkError::Encode {
                sink_id: inner.sink_id.clone(),
                message: format!(
                    "record is {} bytes, over the {MAX_RECORD_BYTES}-byte limit; evidence must \
                     carry fingerprints, not bodies",
                    line.len()
                ),
            });
        }
        let hash = sha256_ref(line.as_bytes());
        let mut bytes = line.into_bytes();
        bytes.push(b'\n');
        let written = state
            .writer
            .write_all(&bytes)
            .and_then(|()| state.writer.flush());
        if let Err(e) = written {
            state.broken = Some(e.to_string());
            return Err(inner.io_error(e));
        }
        state.count += 1;
        state.last_hash = hash;
        let anchor = Head {
            count: state.count,
            last_hash: state.last_hash.clone(),
        };
        write_head(&inner.head_path, &anchor, false).map_err(|e| inner.io_error(e))
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn io_error(&self, source: std::io::Error) -> SinkError {
        SinkError::Io {
            sink_id: self.sink_id.clone(),
            source,
        }
    }

    /// Flushes and fsyncs the log, then durably rewrites the head.
    fn sync(&self) -> Result<(), SinkError> {
        let mut state = self.lock();
        state.writer.flush().map_err(|e| self.io_error(e))?;
        state
            .writer
            .get_ref()
            .sync_data()
            .map_err(|e| self.io_error(e))?;
        let anchor = Head {
            count: state.count,
            last_hash: state.last_hash.clone(),
        };
        write_head(&self.head_path, &anchor, true).map_err(|e| self.io_error(e))
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Best effort: nothing to report to at this point.
        let _ = self.sync();
    }
}

/// Writes the head atomically: a temp file beside it, then rename; `durable` adds fsyncs.
fn write_head(head_path: &Path, head: &Head, durable: bool) -> std::io::Result<()> {
    let mut tmp_name: OsString = head_path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    {
        let mut file = File::create(&tmp)?;
        file.write_all(head.to_line().as_bytes())?;
        if durable {
            file.sync_all()?;
        }
    }
    std::fs::rename(&tmp, head_path)?;
    if durable {
        sync_parent_dir(head_path);
    }
    Ok(())
}

/// Makes a rename durable (unix); best effort.
fn sync_parent_dir(path: &Path) {
    #[cfg(unix)]
    {
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        if let Ok(dir) = File::open(parent) {
            let _ = dir.sync_all();
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

#[async_trait]
impl EvidenceSink for FileChainSink {
    fn sink_id(&self) -> &str {
        &self.inner.sink_id
    }

    async fn emit(&self, evidence: &Evidence) -> Result<(), SinkError> {
        self.append(evidence)
    }

    async fn flush(&self) -> Result<(), SinkError> {
        let inner = Arc::clone(&self.inner);
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => match handle.spawn_blocking(move || inner.sync()).await {
                Ok(result) => result,
                Err(join) => Err(self
                    .inner
                    .io_error(std::io::Error::other(format!("flush task failed: {join}")))),
            },
            Err(_) => inner.sync(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn genesis_hash_is_the_documented_value() {
        assert_eq!(GENESIS_HASH, sha256_ref(GENESIS_INPUT));
    }

    #[test]
    fn head_path_appends_suffix() {
        assert_eq!(
            head_path(Path::new("/tmp/ev.jsonl")),
            PathBuf::from("/tmp/ev.jsonl.head")
        );
    }
}
