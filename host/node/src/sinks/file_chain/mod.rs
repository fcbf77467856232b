//! The default durable evidence sink: an append-only JSON-lines file with a hash chain, plus a
//! head anchor (signed by the node's key when the writer has one), so an edited, reordered,
//! removed, truncated or appended record is detected, and, with the key, so is a log rewritten
//! together with its head.
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
//! Next to the log, `<log>.head` holds `{"count":<records>,"last_hash":"sha256:<hex>"}`, and
//! when the writer has a [`NodeKey`] also `key_id`, `signed_at` and an Ed25519 `signature` over
//! all of them (see [`head`] for the exact message). It is rewritten atomically (temp file +
//! rename) as records are appended (at most [`HEAD_INTERVAL`] behind the log while records
//! flow), so removing whole records from the end, editing the last record or appending one
//! behind the writer's back is detected too: the chain alone sees none of them.
//!
//! # Verifying
//!
//! [`verify_chain`] is strict: a missing head, records past the head's count and any bad record
//! are errors. [`verify_chain_with`] can accept a missing head ([`VerifyOptions::allow_unanchored`])
//! and can require the head to be signed by a given key ([`VerifyOptions::key`]). Without the
//! key, whoever can rewrite the log *and* its head can forge a consistent history; with it, only
//! whoever holds the node key can. `docs/evidence.md` lists what is and is not detectable.
//!
//! # Writing
//!
//! [`FileChainSink`] holds an advisory lock on the log so a second process cannot append to
//! it, and commits in groups (see [`writer`]): `emit` encodes the record in the caller and
//! queues it, waking nobody; [`EvidenceSink::settle`] writes everything queued (its own records
//! and those of every execution that emitted meanwhile) with one `write`, chained in queue
//! order, so many executions share a write and none waits for another thread. A full queue is
//! written by the caller that fills it (bounded memory). One background thread syncs as
//! [`SinkOptions::durability`] says ([`Durability`]: every batch, on an interval, or never) and
//! rewrites the head at most every [`HEAD_INTERVAL`], so no execution waits for a rename or a
//! signature. [`EvidenceSink::flush`] (and closing the sink) syncs the log and durably
//! rewrites the head.
//!
//! Reopening a log verifies it and continues its chain. Records that chain cleanly past the head
//! (the writer stopped between an append and the head update) are adopted: the writer's crash
//! recovery, logged as a warning and recorded in the chain as an `evidence.reanchored` record.
//!
//! ```
//! use ep_node::sinks::file_chain::{FileChainSink, NodeKey, VerifyOptions, verify_chain_with};
//! use ep_node::authority::SigningKeyFile;
//! use ep_node::EvidenceSink;
//! use ep_contracts::boundary::Evidence;
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("evidence.jsonl");
//! let key = NodeKey::from_key_file(&SigningKeyFile::from_seed("node-a", [1; 32])).unwrap();
//! let sink = FileChainSink::open_signed(&path, key.clone()).unwrap();
//! sink.emit(&Evidence::default()).await.unwrap();
//! sink.flush().await.unwrap();
//! let options = VerifyOptions { key: Some(key.verifier()), ..VerifyOptions::default() };
//! let report = verify_chain_with(&path, &options).unwrap();
//! assert_eq!((report.records, report.anchored), (1, true));
//! # });
//! ```

pub mod head;
mod sink;
mod verify;
pub mod writer;

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

#[cfg(doc)]
use ep_contracts::canonical::sha256_ref;
use thiserror::Error;

#[cfg(doc)]
use crate::traits::EvidenceSink;

pub use head::{HeadKey, HeadKeyError, NodeKey, SignatureProblem};
pub use sink::{DEFAULT_QUEUE_RECORDS, FileChainSink, SinkOptions};
pub use verify::{VerifyOptions, verify_chain, verify_chain_with};
pub use writer::{Durability, HEAD_INTERVAL};

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

/// The evidence type of the record a writer appends when it re-anchors a log (a tail past the
/// head adopted after a crash, or an operator's deliberate re-anchoring).
pub const REANCHORED_EVIDENCE_TYPE: &str = "evidence.reanchored";

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
    /// It chains cleanly but comes after the records the head anchors: added behind the
    /// writer's back (or by a writer that stopped before anchoring it).
    Appended,
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
            Self::Appended => "appended",
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
    /// Verification found no head anchor (it may have been deleted to hide a truncation).
    #[error(
        "evidence log {}: no head anchor {} ({records} records): without it, records cut from the end or removed and re-chained cannot be detected; restore the head from a copy, or check the chain alone with `evidence verify --allow-unanchored`",
        path.display(),
        head_path(path).display()
    )]
    MissingHead {
        /// The log.
        path: PathBuf,
        /// How many records chain cleanly.
        records: u64,
    },
    /// The head is not signed by the key required (the verifier's `--key`, or the writer's).
    #[error("evidence head {}: {problem}", path.display())]
    HeadSignature {
        /// The head file.
        path: PathBuf,
        /// What is wrong with its signature.
        problem: SignatureProblem,
    },
    /// A writer refuses to continue a log whose head it cannot vouch for.
    #[error(
        "evidence head {}: {problem}; refusing to continue this log: check it with `execution-plane evidence verify`, then move the log and its head aside (keep them) to start a new log, or re-anchor it deliberately with `execution-plane evidence reanchor`",
        path.display()
    )]
    HeadNotContinued {
        /// The head file.
        path: PathBuf,
        /// What is wrong with its signature.
        problem: SignatureProblem,
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
        "evidence log {}: has {records} records but no head anchor {}; check it with `execution-plane evidence verify --allow-unanchored`, then re-anchor it with `execution-plane evidence reanchor` or start a new log",
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

/// What the head of a verified log is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadStatus {
    /// No head file: accepted only with [`VerifyOptions::allow_unanchored`].
    Missing,
    /// A head without a signature.
    Unsigned,
    /// A signed head.
    Signed {
        /// The key id it names.
        key_id: String,
        /// When the writer signed it (RFC 3339).
        signed_at: String,
        /// Whether its signature was checked against a key (and held).
        verified: bool,
    },
}

impl HeadStatus {
    fn from_head(head: &head::Head, verified: bool) -> Self {
        match &head.signature {
            None => Self::Unsigned,
            Some(sig) => Self::Signed {
                key_id: sig.key_id.clone(),
                signed_at: sig.signed_at.clone(),
                verified,
            },
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
    /// Whether a head anchor confirmed the count and the last record; `false` (only with
    /// [`VerifyOptions::allow_unanchored`]) means truncation at a record boundary or an edit of
    /// the last record would not have been seen.
    pub anchored: bool,
    /// The head, and whether its signature was checked.
    pub head: HeadStatus,
    /// Records past the head that chain cleanly in a log a live writer holds (written since
    /// its last head update, which trails the log by at most [`HEAD_INTERVAL`]); always 0 for a
    /// log nobody is writing, where such records are an error.
    pub pending: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use ep_contracts::canonical::sha256_ref;

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
