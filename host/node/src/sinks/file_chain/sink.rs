//! The writer: appends records, keeps the head anchor (signed with the node key when it has
//! one), and decides on open whether an existing log may be continued.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use ep_contracts::Contract as _;
use ep_contracts::boundary::Evidence;
use ep_contracts::canonical::{canonical_json, sha256_ref};
use serde_json::{Value, json};

use super::head::{Head, NodeKey, SignatureProblem, read_head, write_head};
use super::verify::scan_chain;
use super::{ChainError, MAX_RECORD_BYTES, REANCHORED_EVIDENCE_TYPE, head_path};
use crate::error::SinkError;
use crate::traits::EvidenceSink;

/// How [`FileChainSink::open_with`] opens a log.
#[derive(Debug, Clone, Default)]
pub struct SinkOptions {
    /// Sign every head with this node key (a keyed chain). A signing writer refuses to continue
    /// a non-empty log whose head is not signed by this key; a writer without a key refuses one
    /// whose head is signed.
    pub key: Option<NodeKey>,
    /// Continue a non-empty log whose head is missing, unsigned or signed by another key than
    /// [`SinkOptions::key`], and write a fresh head: the operator's deliberate decision after
    /// checking the log; recorded in the chain as an `evidence.reanchored` record. A signed head
    /// is never replaced by an unsigned one (move it aside first if the key is lost).
    pub reanchor: bool,
}

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
    key: Option<NodeKey>,
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

/// Why a writer writes a fresh head over what it found.
#[derive(Debug)]
enum Reanchor {
    /// Records past the head chained cleanly (a crash between an append and the head update).
    Tail { head_count: u64 },
    /// The operator re-anchored a log without a head.
    HeadMissing,
    /// The operator re-anchored a log whose head this writer could not vouch for.
    Signature {
        head_count: u64,
        problem: SignatureProblem,
    },
}

impl Reanchor {
    fn payload(&self, records: u64, writer_key: Option<&NodeKey>) -> Value {
        let (reason, head_count, previous_key) = match self {
            Self::Tail { head_count } => ("tail_past_head", Some(*head_count), None),
            Self::HeadMissing => ("head_missing", None, None),
            Self::Signature {
                head_count,
                problem,
            } => {
                let (reason, key) = match problem {
                    SignatureProblem::Unsigned => ("head_unsigned", None),
                    SignatureProblem::OtherKey { found, .. } => {
                        ("head_signed_by_other_key", Some(found.clone()))
                    }
                    SignatureProblem::Invalid { key_id } => {
                        ("head_signature_invalid", Some(key_id.clone()))
                    }
                    // Refused by `judge`; named for completeness.
                    SignatureProblem::WriterHasNoKey { key_id } => {
                        ("head_signed_writer_unsigned", Some(key_id.clone()))
                    }
                };
                (reason, Some(*head_count), key)
            }
        };
        json!({
            "reason": reason,
            "records": records,
            "head_count": head_count,
            "head_key_id": previous_key,
            "writer_key_id": writer_key.map(NodeKey::key_id),
        })
    }
}

impl FileChainSink {
    /// Opens (or creates) the log at `path` with an unsigned head, verifying an existing one
    /// first and continuing its chain; refuses a broken chain, a log locked by another process,
    /// a non-empty log without its head anchor, and one whose head is signed.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, ChainError> {
        Self::open_with(path, SinkOptions::default())
    }

    /// Like [`FileChainSink::open`], every head signed with `key`; refuses a non-empty log whose
    /// head is not signed by it.
    pub fn open_signed(path: impl AsRef<Path>, key: NodeKey) -> Result<Self, ChainError> {
        Self::open_with(
            path,
            SinkOptions {
                key: Some(key),
                reanchor: false,
            },
        )
    }

    /// Like [`FileChainSink::open`] but accepts a non-empty log whose head anchor is missing
    /// and writes a new one: only after an operator has checked the log.
    pub fn open_reanchor(path: impl AsRef<Path>) -> Result<Self, ChainError> {
        Self::open_with(
            path,
            SinkOptions {
                key: None,
                reanchor: true,
            },
        )
    }

    /// Opens (or creates) the log at `path` as `options` say.
    pub fn open_with(path: impl AsRef<Path>, options: SinkOptions) -> Result<Self, ChainError> {
        let path = path.as_ref();
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
        let scan = scan_chain(path, BufReader::new(&file), head.as_ref()).map_err(|e| match e {
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
                    "{message}; refusing to append to a broken chain: move the log and its head \
                     aside (keep them as evidence) and start a new log"
                ),
            },
            other => other,
        })?;
        let reanchor = judge(path, head.as_ref(), scan.records, &options)?;

        let head_path = head_path(path);
        let anchor = make_head(options.key.as_ref(), scan.records, &scan.last_hash);
        write_head(&head_path, &anchor, true).map_err(|source| ChainError::Io {
            path: head_path.clone(),
            source,
        })?;
        let sink = Self {
            inner: Arc::new(Inner {
                sink_id: format!("file-chain:{}", path.display()),
                path: path.to_path_buf(),
                head_path,
                key: options.key,
                state: Mutex::new(State {
                    writer: BufWriter::new(file),
                    count: scan.records,
                    last_hash: scan.last_hash,
                    broken: None,
                }),
            }),
        };
        if let Some(reanchor) = reanchor {
            let payload = reanchor.payload(scan.records, sink.inner.key.as_ref());
            tracing::warn!(
                log = %path.display(),
                details = %payload,
                "evidence log re-anchored: records the old head did not vouch for are now anchored"
            );
            let record = Evidence {
                evidence_type: Some(REANCHORED_EVIDENCE_TYPE.to_owned()),
                payload,
                emitted_at: Some(crate::authority::format_rfc3339(chrono::Utc::now())),
                ..Evidence::default()
            };
            sink.append(&record).map_err(|e| ChainError::Io {
                path: path.to_path_buf(),
                source: std::io::Error::other(e),
            })?;
        }
        Ok(sink)
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

    /// The hash of the last record ([`super::GENESIS_HASH`] when empty).
    pub fn last_hash(&self) -> String {
        self.inner.lock().last_hash.clone()
    }

    /// The key that signs the head, if any.
    pub fn key(&self) -> Option<&NodeKey> {
        self.inner.key.as_ref()
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
        let anchor = inner.anchor(&state);
        write_head(&inner.head_path, &anchor, false).map_err(|e| inner.io_error(e))
    }
}

/// A head for `count` records ending in `last_hash`, signed when there is a key.
fn make_head(key: Option<&NodeKey>, count: u64, last_hash: &str) -> Head {
    match key {
        Some(key) => Head::signed(count, last_hash.to_owned(), key),
        None => Head::unsigned(count, last_hash.to_owned()),
    }
}

/// Whether a writer may continue the log it found, and if it writes a fresh head over what was
/// there, why.
fn judge(
    path: &Path,
    head: Option<&Head>,
    records: u64,
    options: &SinkOptions,
) -> Result<Option<Reanchor>, ChainError> {
    let Some(head) = head else {
        if records == 0 {
            return Ok(None);
        }
        if !options.reanchor {
            return Err(ChainError::Unanchored {
                path: path.to_path_buf(),
                records,
            });
        }
        return Ok(Some(Reanchor::HeadMissing));
    };
    let problem = match (&options.key, &head.signature) {
        (Some(key), _) => head.check(&key.verifier()).err(),
        (None, Some(sig)) => Some(SignatureProblem::WriterHasNoKey {
            key_id: sig.key_id.clone(),
        }),
        (None, None) => None,
    };
    // A head over an empty log vouches for nothing: continue it under this writer's key.
    let problem = problem.filter(|_| head.count > 0 || records > 0);
    if let Some(problem) = problem {
        // Re-anchoring never drops a signature: that takes moving the head aside on purpose.
        let downgrade = matches!(problem, SignatureProblem::WriterHasNoKey { .. });
        if !options.reanchor || downgrade {
            return Err(ChainError::HeadNotContinued {
                path: head_path(path),
                problem,
            });
        }
        return Ok(Some(Reanchor::Signature {
            head_count: head.count,
            problem,
        }));
    }
    if records > head.count {
        return Ok(Some(Reanchor::Tail {
            head_count: head.count,
        }));
    }
    Ok(None)
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

    /// The head for the state as it is: signed when the sink has a key.
    fn anchor(&self, state: &State) -> Head {
        make_head(self.key.as_ref(), state.count, &state.last_hash)
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
        let anchor = self.anchor(&state);
        write_head(&self.head_path, &anchor, true).map_err(|e| self.io_error(e))
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Best effort: nothing to report to at this point.
        let _ = self.sync();
    }
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
