//! Reading a log back: the chain record by record, then the head anchor and its signature.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use ep_contracts::canonical::{is_sha256_ref, sha256_ref};
use serde_json::Value;

use super::head::{Head, HeadKey, read_head};
use super::{
    ChainError, ChainErrorKind, ChainReport, GENESIS_HASH, HeadStatus, MAX_RECORD_BYTES, head_path,
};

/// What a verification requires beyond an intact chain.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// Accept a log without its head file (then records cut from the end, or removed and the
    /// rest re-chained, cannot be detected). Off by default: a missing head is a failure.
    pub allow_unanchored: bool,
    /// Require the head to be signed by this key (a keyed chain): rewriting the log and its head
    /// together is detected unless the writer had the key.
    pub key: Option<HeadKey>,
}

/// Verifies the log at `path` and its head anchor, strictly: a missing head, records past the
/// head, or any bad record is an error. The head's signature, if any, is not checked (use
/// [`verify_chain_with`] and a key for that).
pub fn verify_chain(path: impl AsRef<Path>) -> Result<ChainReport, ChainError> {
    verify_chain_with(path, &VerifyOptions::default())
}

/// Verifies the log at `path` and its head as `options` require; reports the first problem.
pub fn verify_chain_with(
    path: impl AsRef<Path>,
    options: &VerifyOptions,
) -> Result<ChainReport, ChainError> {
    let path = path.as_ref();
    let head = read_head(path)?;
    let file = File::open(path).map_err(|source| ChainError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    // A writer holding the lock is writing now: what it appended since its last head update
    // (at most the head interval's worth) is pending, not appended behind its back.
    // The probe's own lock is let go at once: a verify must never keep a writer from opening.
    let live = match file.try_lock_shared() {
        Ok(()) => {
            let _ = file.unlock();
            false
        }
        Err(std::fs::TryLockError::WouldBlock) => true,
        Err(std::fs::TryLockError::Error(_)) => false,
    };
    let scan = scan_chain(path, BufReader::new(file), head.as_ref())?;
    let Some(head) = head else {
        if !options.allow_unanchored {
            return Err(ChainError::MissingHead {
                path: path.to_path_buf(),
                records: scan.records,
            });
        }
        return Ok(ChainReport {
            records: scan.records,
            last_hash: scan.last_hash,
            anchored: false,
            head: HeadStatus::Missing,
            pending: 0,
        });
    };
    if scan.records > head.count && !live {
        return Err(appended(path, &head, scan.records));
    }
    if let Some(key) = &options.key {
        head.check(key)
            .map_err(|problem| ChainError::HeadSignature {
                path: head_path(path),
                problem,
            })?;
    }
    let status = HeadStatus::from_head(&head, options.key.is_some());
    Ok(ChainReport {
        records: scan.records,
        last_hash: scan.last_hash,
        anchored: true,
        head: status,
        pending: scan.records.saturating_sub(head.count),
    })
}

/// The error for records past the head's count.
pub(crate) fn appended(path: &Path, head: &Head, records: u64) -> ChainError {
    let first = head.count + 1;
    ChainError::Broken {
        path: path.to_path_buf(),
        record: first,
        kind: ChainErrorKind::Appended,
        message: format!(
            "record {first} was appended after the head anchor, which counts {} records \
             ({} unanchored): it was added behind the writer's back, or the writer stopped \
             between writing it and updating the head (reopening the log with its writer adopts \
             such a tail and records an `evidence.reanchored` record)",
            head.count,
            records - head.count
        ),
    }
}

/// What [`scan_chain`] read.
#[derive(Debug)]
pub(crate) struct Scan {
    /// How many records chain cleanly.
    pub(crate) records: u64,
    /// The hash of the last one ([`GENESIS_HASH`] when empty).
    pub(crate) last_hash: String,
}

/// One parsed record line: only what the chain needs.
#[cfg_attr(test, derive(Debug, PartialEq))]
struct RecordLink {
    seq: u64,
    prev_hash: String,
}

/// A record line as written: read without building the evidence (only checked to be an
/// object). Any line this refuses is parsed again the general way, which names the problem.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Line<'a> {
    seq: u64,
    #[serde(borrow)]
    prev_hash: std::borrow::Cow<'a, str>,
    evidence: AnyObject,
}

/// A JSON object, skipped.
struct AnyObject;

impl<'de> serde::Deserialize<'de> for AnyObject {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = AnyObject;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<AnyObject, A::Error> {
                while map
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(AnyObject)
            }
        }
        d.deserialize_map(Visitor)
    }
}

fn parse_record(line: &[u8]) -> Result<RecordLink, String> {
    if let Ok(record) = serde_json::from_slice::<Line<'_>>(line)
        && is_sha256_ref(&record.prev_hash)
    {
        let _ = record.evidence;
        return Ok(RecordLink {
            seq: record.seq,
            prev_hash: record.prev_hash.into_owned(),
        });
    }
    parse_record_slowly(line)
}

/// The general parse: builds the line as a value, so a refusal names what is wrong.
fn parse_record_slowly(line: &[u8]) -> Result<RecordLink, String> {
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

/// Reads the whole chain and checks it against `head` (when given) up to the head's count;
/// records past the head are left to the caller to judge.
pub(crate) fn scan_chain(
    path: &Path,
    mut reader: impl BufRead,
    head: Option<&Head>,
) -> Result<Scan, ChainError> {
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
        return Ok(Scan {
            records,
            last_hash: prev_hash,
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
    Ok(Scan {
        records,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quick_parse_answers_exactly_like_the_general_one() {
        let lines = [
            r#"{"seq":0,"prev_hash":"HASH","evidence":{"a":[1,{"b":null}]}}"#,
            r#"{"evidence":{},"seq":7,"prev_hash":"HASH"}"#,
            r#"{"seq":1,"seq":2,"prev_hash":"HASH","evidence":{}}"#,
            r#"{"seq":1,"prev_hash":"HASH","evidence":{},"extra":1}"#,
            r#"{"seq":-1,"prev_hash":"HASH","evidence":{}}"#,
            r#"{"seq":1.5,"prev_hash":"HASH","evidence":{}}"#,
            r#"{"seq":1,"prev_hash":"sha256:abc","evidence":{}}"#,
            r#"{"seq":1,"prev_hash":"HASH","evidence":[]}"#,
            r#"{"seq":1,"prev_hash":"HASH"}"#,
            r#"{"seq":1,"prev_h\u0061sh":"HASH","evidence":{}}"#,
            r#"[1,2]"#,
            r#"{"seq":1,"prev_hash":"HASH","evidence":{}"#,
        ];
        for line in lines {
            let line = line.replace("HASH", &format!("sha256:{}", "ab".repeat(32)));
            assert_eq!(
                parse_record(line.as_bytes()),
                parse_record_slowly(line.as_bytes()),
                "{line}"
            );
        }
    }
}
