//! The writer: appends records, keeps the head anchor (signed with the node key when it has
//! one), and decides on open whether an existing log may be continued.

use std::fs::OpenOptions;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use ep_contracts::boundary::Evidence;
use serde_json::{Value, json};

use super::head::{Head, NodeKey, SignatureProblem, read_head, write_head};
use super::verify::scan_chain;
use super::writer::{self, Durability, Log, Shared, WriteFailure};
use super::{ChainError, MAX_RECORD_BYTES, REANCHORED_EVIDENCE_TYPE, head_path};
use crate::error::SinkError;
use crate::traits::EvidenceSink;

/// How [`FileChainSink::open_with`] opens a log.
#[derive(Debug, Clone)]
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
    /// When a record counts as written, and so what a power loss can take.
    pub durability: Durability,
    /// How many encoded records may wait to be written; the caller whose record fills the
    /// queue writes it (back pressure when the disk is slower than the executions, and
    /// bounded memory). At least 1.
    pub queue_records: usize,
}

impl Default for SinkOptions {
    fn default() -> Self {
        Self {
            key: None,
            reanchor: false,
            durability: Durability::default(),
            queue_records: DEFAULT_QUEUE_RECORDS,
        }
    }
}

/// Records that may wait to be written by default (a few MiB of evidence at most).
pub const DEFAULT_QUEUE_RECORDS: usize = 16_384;

/// Records bigger than a line's own framing (`seq`, `prev_hash`) leaves room for.
const LINE_FRAMING_BYTES: usize = 128;

/// Appends evidence to a hash-chained JSON-lines log with a head anchor.
#[derive(Debug)]
pub struct FileChainSink {
    path: PathBuf,
    head_path: PathBuf,
    sink_id: String,
    key: Option<NodeKey>,
    shared: Arc<Shared>,
    queue_records: usize,
    sync_thread: Option<std::thread::JoinHandle<()>>,
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
                ..SinkOptions::default()
            },
        )
    }

    /// Like [`FileChainSink::open`] but accepts a non-empty log whose head anchor is missing
    /// and writes a new one: only after an operator has checked the log.
    pub fn open_reanchor(path: impl AsRef<Path>) -> Result<Self, ChainError> {
        Self::open_with(
            path,
            SinkOptions {
                reanchor: true,
                ..SinkOptions::default()
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
        let io_at = |at: &Path| {
            let at = at.to_path_buf();
            move |source| ChainError::Io { path: at, source }
        };
        let anchor = Head::of_writer(options.key.as_ref(), scan.records, &scan.last_hash);
        write_head(&head_path, &anchor, true).map_err(io_at(&head_path))?;
        let mut log = Log::new(file, scan.records, scan.last_hash);
        if let Some(reanchor) = reanchor {
            let payload = reanchor.payload(scan.records, options.key.as_ref());
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
            let json = encode(&record).map_err(|message| ChainError::Io {
                path: path.to_path_buf(),
                source: std::io::Error::other(message),
            })?;
            log.queue(json);
            log.write_queued()
                .map_err(|failure| io_at(path)(failure.into_io()))?;
            let anchor = Head::of_writer(options.key.as_ref(), log.count(), log.last_hash());
            write_head(&head_path, &anchor, false).map_err(io_at(&head_path))?;
        }
        let shared = Arc::new(Shared::new(log, options.durability));
        let sync_thread =
            writer::start(Arc::clone(&shared), head_path.clone(), options.key.clone())
                .map_err(io_at(path))?;
        Ok(Self {
            sink_id: format!("file-chain:{}", path.display()),
            path: path.to_path_buf(),
            head_path,
            key: options.key,
            shared,
            queue_records: options.queue_records.max(1),
            sync_thread: Some(sync_thread),
        })
    }

    /// The log file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The head anchor file.
    pub fn head_path(&self) -> &Path {
        &self.head_path
    }

    /// How many records the log holds (written ones: after `settle` or `flush`, everything
    /// emitted before it).
    pub fn record_count(&self) -> u64 {
        self.shared.log().count()
    }

    /// The hash of the last written record ([`super::GENESIS_HASH`] when empty).
    pub fn last_hash(&self) -> String {
        self.shared.log().last_hash().to_owned()
    }

    /// The key that signs the head, if any.
    pub fn key(&self) -> Option<&NodeKey> {
        self.key.as_ref()
    }

    fn io_error(&self, source: std::io::Error) -> SinkError {
        SinkError::Io {
            sink_id: self.sink_id.clone(),
            source,
        }
    }

    fn failed(&self, failure: WriteFailure) -> SinkError {
        self.io_error(std::io::Error::new(
            failure.kind,
            format!(
                "{} (the log may end in a partial record: reopen it to verify it)",
                failure.message
            ),
        ))
    }
}

/// The canonical JSON of `evidence` as a record carries it, or why it cannot be one.
fn encode(evidence: &Evidence) -> Result<String, String> {
    let json = evidence.canonical_json();
    if json.len() + LINE_FRAMING_BYTES > MAX_RECORD_BYTES {
        return Err(format!(
            "record is {} bytes, over the {MAX_RECORD_BYTES}-byte limit; evidence must carry \
             fingerprints, not bodies",
            json.len() + LINE_FRAMING_BYTES
        ));
    }
    Ok(json)
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

impl Drop for FileChainSink {
    fn drop(&mut self) {
        // What is still queued is written, then the sync thread syncs the log and durably
        // rewrites the head before it stops; waiting for it keeps "dropped" meaning "on disk"
        // (and releases the lock).
        let _ = self.shared.write_queued();
        self.shared.close();
        if let Some(thread) = self.sync_thread.take() {
            let _ = thread.join();
        }
    }
}

#[async_trait]
impl EvidenceSink for FileChainSink {
    fn sink_id(&self) -> &str {
        &self.sink_id
    }

    async fn emit(&self, evidence: &Evidence) -> Result<(), SinkError> {
        let json = encode(evidence).map_err(|message| SinkError::Encode {
            sink_id: self.sink_id.clone(),
            message,
        })?;
        let full = {
            let mut log = self.shared.log();
            if let Some(failure) = log.broken() {
                return Err(self.failed(failure.clone()));
            }
            log.queue(json);
            log.queued() >= self.queue_records
        };
        if full {
            self.shared.write_queued().map_err(|f| self.failed(f))?;
        }
        Ok(())
    }

    async fn settle(&self) -> Result<(), SinkError> {
        let count = self.shared.write_queued().map_err(|f| self.failed(f))?;
        if self.shared.durability() == Durability::Batch {
            self.shared
                .synced(count, false)
                .await
                .map_err(|f| self.failed(f))?;
        }
        Ok(())
    }

    async fn flush(&self) -> Result<(), SinkError> {
        let count = self.shared.write_queued().map_err(|f| self.failed(f))?;
        self.shared
            .synced(count, true)
            .await
            .map_err(|f| self.failed(f))
    }
}
