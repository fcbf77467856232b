//! The hash-chained evidence log: real records written through the sink, then tampered with.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};

use ep_contracts::boundary::Evidence;
use ep_contracts::canonical::{canonical_json, sha256_ref};
use ep_node::EvidenceSink;
use ep_node::authority::SigningKeyFile;
use ep_node::sinks::file_chain::{
    ChainError, ChainErrorKind, FileChainSink, GENESIS_HASH, HeadKey, HeadStatus, NodeKey,
    REANCHORED_EVIDENCE_TYPE, SignatureProblem, SinkOptions, VerifyOptions, head_path,
    verify_chain, verify_chain_with,
};
use proptest::prelude::*;
use serde_json::{Value, json};

fn evidence(i: usize) -> Evidence {
    Evidence {
        evidence_type: Some(format!("step-{i}")),
        lane_id: Some("process".into()),
        request_id: Some(format!("adm-{i}")),
        payload: json!({"n": i, "note": "line\nbreak \"quoted\""}),
        ..Evidence::default()
    }
}

/// Writes `n` records through a fresh sink in `dir`, flushes and closes it.
async fn write_log(dir: &Path, n: usize) -> PathBuf {
    let path = dir.join("evidence.jsonl");
    let sink = FileChainSink::open(&path).unwrap();
    for i in 0..n {
        sink.emit(&evidence(i)).await.unwrap();
    }
    sink.flush().await.unwrap();
    path
}

/// The node key of these tests (a fixed seed).
fn node_key() -> NodeKey {
    NodeKey::from_key_file(&SigningKeyFile::from_seed("node-test", [5; 32])).unwrap()
}

/// Writes `n` records through a fresh sink signing with [`node_key`], flushes and closes it.
async fn write_signed_log(dir: &Path, n: usize) -> PathBuf {
    let path = dir.join("evidence.jsonl");
    let sink = FileChainSink::open_signed(&path, node_key()).unwrap();
    for i in 0..n {
        sink.emit(&evidence(i)).await.unwrap();
    }
    sink.flush().await.unwrap();
    path
}

fn with_key(key: HeadKey) -> VerifyOptions {
    VerifyOptions {
        key: Some(key),
        ..VerifyOptions::default()
    }
}

/// Rewrites `lines` into a chain that links cleanly (seq and prev_hash recomputed): what
/// someone who removed or changed records would do to hide it.
fn re_chain(lines: &[String]) -> Vec<String> {
    let mut prev = GENESIS_HASH.to_owned();
    lines
        .iter()
        .enumerate()
        .map(|(seq, line)| {
            let record: Value = serde_json::from_str(line).unwrap();
            let line = format!(
                "{{\"seq\":{seq},\"prev_hash\":\"{prev}\",\"evidence\":{}}}",
                canonical_json(&record["evidence"])
            );
            prev = sha256_ref(line.as_bytes());
            line
        })
        .collect()
}

/// The head someone without the key writes for `lines`: unsigned, count and hash right.
fn forged_head(lines: &[String]) -> String {
    let last = lines
        .last()
        .map_or_else(|| GENESIS_HASH.to_owned(), |l| sha256_ref(l.as_bytes()));
    format!("{{\"count\":{},\"last_hash\":\"{last}\"}}\n", lines.len())
}

/// A record forged to chain after the last of `lines`.
fn forged_next(lines: &[String]) -> String {
    let prev = sha256_ref(lines.last().unwrap().as_bytes());
    format!(
        "{{\"seq\":{},\"prev_hash\":\"{prev}\",\"evidence\":{}}}",
        lines.len(),
        canonical_json(&json!({"contract_version": 1, "evidence_type": "execution.completed"}))
    )
}

fn read_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    let mut text = String::new();
    for line in lines {
        text.push_str(line);
        text.push('\n');
    }
    std::fs::write(path, text).unwrap();
}

fn assert_broken(err: &ChainError, record: u64, kind: ChainErrorKind, needle: &str) {
    assert_eq!(err.kind(), Some(kind), "{err}");
    assert_eq!(err.record(), Some(record), "{err}");
    let msg = err.to_string();
    assert!(msg.contains(needle), "{msg:?} lacks {needle:?}");
}

#[tokio::test]
async fn intact_log_verifies_with_the_right_count() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("evidence.jsonl");
    let sink = FileChainSink::open(&path).unwrap();
    for i in 0..5 {
        sink.emit(&evidence(i)).await.unwrap();
    }
    sink.flush().await.unwrap();
    let report = verify_chain(&path).unwrap();
    assert_eq!(report.records, 5);
    assert!(report.anchored);
    assert_eq!(report.last_hash, sink.last_hash());
    assert_eq!(sink.record_count(), 5);
    assert!(sink.sink_id().starts_with("file-chain:"));

    let lines = read_lines(&path);
    let first: Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(first["seq"], 0);
    assert_eq!(first["prev_hash"], GENESIS_HASH);
    assert_eq!(first["evidence"]["evidence_type"], "step-0");
    assert_eq!(first["evidence"]["contract_version"], 1);
    let second: Value = serde_json::from_str(&lines[1]).unwrap();
    assert_eq!(
        second["prev_hash"],
        ep_contracts::canonical::sha256_ref(lines[0].as_bytes())
    );
    let head: Value =
        serde_json::from_str(&std::fs::read_to_string(head_path(&path)).unwrap()).unwrap();
    assert_eq!(head, json!({"count": 5, "last_hash": report.last_hash}));
}

#[tokio::test]
async fn new_log_is_anchored_at_genesis() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_log(dir.path(), 0).await;
    let report = verify_chain(&path).unwrap();
    assert_eq!((report.records, report.anchored), (0, true));
    assert_eq!(report.last_hash, GENESIS_HASH);
}

#[tokio::test]
async fn records_are_durable_after_drop_without_flush() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("evidence.jsonl");
    {
        let sink = FileChainSink::open(&path).unwrap();
        sink.emit(&evidence(0)).await.unwrap();
        sink.emit(&evidence(1)).await.unwrap();
    }
    assert_eq!(verify_chain(&path).unwrap().records, 2);
}

#[tokio::test]
async fn edited_middle_record_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_log(dir.path(), 5).await;
    let mut lines = read_lines(&path);
    lines[2] = lines[2].replace("step-2", "step-X");
    write_lines(&path, &lines);
    let err = verify_chain(&path).unwrap_err();
    assert_broken(
        &err,
        3,
        ChainErrorKind::Edited,
        "record 3 was edited: its hash no longer matches the link in record 4",
    );
}

#[tokio::test]
async fn edited_first_record_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_log(dir.path(), 3).await;
    let mut lines = read_lines(&path);
    lines[0] = lines[0].replace("adm-0", "adm-9");
    write_lines(&path, &lines);
    let err = verify_chain(&path).unwrap_err();
    assert_broken(&err, 1, ChainErrorKind::Edited, "record 1 was edited");
}

#[tokio::test]
async fn edited_last_record_is_caught_by_the_head() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_log(dir.path(), 5).await;
    let mut lines = read_lines(&path);
    lines[4] = lines[4].replace("step-4", "step-X");
    write_lines(&path, &lines);
    let err = verify_chain(&path).unwrap_err();
    assert_broken(
        &err,
        5,
        ChainErrorKind::Edited,
        "record 5 was edited: its hash no longer matches the head anchor",
    );
}

#[tokio::test]
async fn edited_seq_is_an_edit_not_a_removal() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_log(dir.path(), 5).await;
    let mut lines = read_lines(&path);
    lines[2] = lines[2].replacen("\"seq\":2", "\"seq\":7", 1);
    write_lines(&path, &lines);
    let err = verify_chain(&path).unwrap_err();
    assert_broken(
        &err,
        3,
        ChainErrorKind::Edited,
        "record 3 was edited: its seq is 7 but it links to record 2",
    );
}

#[tokio::test]
async fn swapped_records_are_reordered() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_log(dir.path(), 5).await;
    let mut lines = read_lines(&path);
    lines.swap(1, 2);
    write_lines(&path, &lines);
    let err = verify_chain(&path).unwrap_err();
    assert_broken(&err, 2, ChainErrorKind::Reordered, "record 2 was reordered");

    // Non-adjacent swap, and moving a record back.
    let mut lines = read_lines(&path);
    lines.swap(1, 2);
    lines.swap(1, 3);
    write_lines(&path, &lines);
    let err = verify_chain(&path).unwrap_err();
    assert_broken(
        &err,
        2,
        ChainErrorKind::Reordered,
        "expected seq 1, found seq 3",
    );
}

#[tokio::test]
async fn deleted_middle_record_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_log(dir.path(), 5).await;
    let mut lines = read_lines(&path);
    lines.remove(2);
    write_lines(&path, &lines);
    let err = verify_chain(&path).unwrap_err();
    assert_broken(
        &err,
        3,
        ChainErrorKind::Removed,
        "record 3 follows removed records: expected seq 2, found seq 3 (1 missing)",
    );
}

#[tokio::test]
async fn deleted_first_record_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_log(dir.path(), 3).await;
    let mut lines = read_lines(&path);
    lines.remove(0);
    write_lines(&path, &lines);
    let err = verify_chain(&path).unwrap_err();
    assert_broken(
        &err,
        1,
        ChainErrorKind::Removed,
        "expected seq 0, found seq 1",
    );
}

#[tokio::test]
async fn deleted_last_records_are_truncation() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_log(dir.path(), 5).await;
    let lines = read_lines(&path);

    write_lines(&path, &lines[..4]);
    let err = verify_chain(&path).unwrap_err();
    assert_broken(
        &err,
        5,
        ChainErrorKind::Truncated,
        "record 5 is missing: the log was truncated after 4 records but the head anchor counts 5",
    );

    write_lines(&path, &lines[..2]);
    let err = verify_chain(&path).unwrap_err();
    assert_broken(&err, 3, ChainErrorKind::Truncated, "after 2 records");

    write_lines(&path, &[]);
    let err = verify_chain(&path).unwrap_err();
    assert_broken(&err, 1, ChainErrorKind::Truncated, "record 1 is missing");
}

#[tokio::test]
async fn file_cut_mid_line_is_truncation() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_log(dir.path(), 5).await;
    let bytes = std::fs::read(&path).unwrap();
    let lines = read_lines(&path);
    let start_of_4: usize = lines[..3].iter().map(|l| l.len() + 1).sum();
    std::fs::write(&path, &bytes[..start_of_4 + lines[3].len() / 2]).unwrap();
    let err = verify_chain(&path).unwrap_err();
    assert_broken(
        &err,
        4,
        ChainErrorKind::Truncated,
        "record 4 was truncated: the log ends in the middle of it",
    );
    // Cut just before the final newline: still a partial write.
    std::fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
    let err = verify_chain(&path).unwrap_err();
    assert_broken(&err, 5, ChainErrorKind::Truncated, "record 5 was truncated");
}

#[tokio::test]
async fn malformed_lines_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_log(dir.path(), 3).await;
    let lines = read_lines(&path);
    let cases: Vec<(String, &str)> = vec![
        ("not json".into(), "record 2 is malformed: not JSON"),
        ("[1,2]".into(), "not a JSON object"),
        (
            r#"{"seq":1,"evidence":{}}"#.into(),
            "prev_hash is missing or not a sha256:<64 hex> string",
        ),
        (
            format!(r#"{{"seq":"1","prev_hash":"{GENESIS_HASH}","evidence":{{}}}}"#),
            "seq is missing or not a non-negative integer",
        ),
        (
            format!(r#"{{"seq":1,"prev_hash":"{GENESIS_HASH}","evidence":3}}"#),
            "evidence is missing or not an object",
        ),
        (
            format!(r#"{{"seq":1,"prev_hash":"{GENESIS_HASH}","evidence":{{}},"x":1}}"#),
            "unexpected field \"x\"",
        ),
        (String::new(), "record 2 is malformed"),
    ];
    for (bad, needle) in cases {
        let mut tampered = lines.clone();
        tampered[1] = bad.clone();
        write_lines(&path, &tampered);
        let err = verify_chain(&path).unwrap_err();
        assert_broken(&err, 2, ChainErrorKind::Malformed, needle);
    }
}

#[tokio::test]
async fn a_log_without_its_head_fails_unless_unanchored_is_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_log(dir.path(), 4).await;
    std::fs::remove_file(head_path(&path)).unwrap();
    let err = verify_chain(&path).unwrap_err();
    assert!(
        matches!(err, ChainError::MissingHead { records: 4, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("--allow-unanchored"), "{err}");
    // A signed log whose head is gone fails the same way, with or without its key.
    let signed_dir = tempfile::tempdir().unwrap();
    let signed = write_signed_log(signed_dir.path(), 2).await;
    std::fs::remove_file(head_path(&signed)).unwrap();
    let err = verify_chain_with(&signed, &with_key(node_key().verifier())).unwrap_err();
    assert!(matches!(err, ChainError::MissingHead { .. }), "{err}");

    let allow = VerifyOptions {
        allow_unanchored: true,
        ..VerifyOptions::default()
    };
    let report = verify_chain_with(&path, &allow).unwrap();
    assert_eq!((report.records, report.anchored), (4, false));
    assert_eq!(report.head, HeadStatus::Missing);
    // Without the head a clean truncation is invisible: that is what the flag accepts.
    let lines = read_lines(&path);
    write_lines(&path, &lines[..2]);
    assert_eq!(verify_chain_with(&path, &allow).unwrap().records, 2);
    // An empty log without its head is no exception.
    write_lines(&path, &[]);
    assert!(matches!(
        verify_chain(&path).unwrap_err(),
        ChainError::MissingHead { records: 0, .. }
    ));
}

#[tokio::test]
async fn removed_and_re_chained_records_are_caught_by_the_head() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_log(dir.path(), 5).await;
    let mut lines = read_lines(&path);
    lines.remove(2);
    write_lines(&path, &re_chain(&lines));
    let err = verify_chain(&path).unwrap_err();
    assert_broken(&err, 5, ChainErrorKind::Truncated, "head anchor counts 5");
}

#[tokio::test]
async fn a_record_forged_after_the_anchored_ones_is_appended() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_log(dir.path(), 5).await;
    let mut lines = read_lines(&path);
    lines.push(forged_next(&lines));
    write_lines(&path, &lines);
    let err = verify_chain(&path).unwrap_err();
    assert_broken(
        &err,
        6,
        ChainErrorKind::Appended,
        "record 6 was appended after the head anchor, which counts 5 records (1 unanchored)",
    );
    assert!(!err.to_string().contains("no head"), "{err}");
    // The same with a signed head and its key: the head still counts 5.
    let signed_dir = tempfile::tempdir().unwrap();
    let signed = write_signed_log(signed_dir.path(), 5).await;
    let mut lines = read_lines(&signed);
    lines.push(forged_next(&lines));
    write_lines(&signed, &lines);
    let err = verify_chain_with(&signed, &with_key(node_key().verifier())).unwrap_err();
    assert_eq!(err.kind(), Some(ChainErrorKind::Appended), "{err}");
}

#[tokio::test]
async fn bad_head_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_log(dir.path(), 2).await;
    std::fs::write(head_path(&path), "{\"count\": -1}").unwrap();
    let err = verify_chain(&path).unwrap_err();
    assert!(matches!(err, ChainError::BadHead { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("count must be a non-negative integer")
    );
}

#[tokio::test]
async fn a_tail_past_the_head_fails_verify_and_its_writer_adopts_it_on_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_signed_log(dir.path(), 3).await;
    let head = std::fs::read(head_path(&path)).unwrap();
    {
        let sink = FileChainSink::open_signed(&path, node_key()).unwrap();
        sink.emit(&evidence(3)).await.unwrap();
    }
    // Simulate a crash between the append and the anchor update.
    std::fs::write(head_path(&path), head).unwrap();
    let err = verify_chain(&path).unwrap_err();
    assert_broken(&err, 4, ChainErrorKind::Appended, "which counts 3 records");
    let err = verify_chain_with(&path, &with_key(node_key().verifier())).unwrap_err();
    assert_eq!(err.kind(), Some(ChainErrorKind::Appended), "{err}");

    // The writer's recovery: it adopts the tail and says so in the chain itself.
    let sink = FileChainSink::open_signed(&path, node_key()).unwrap();
    assert_eq!(sink.record_count(), 5);
    drop(sink);
    let report = verify_chain_with(&path, &with_key(node_key().verifier())).unwrap();
    assert_eq!((report.records, report.anchored), (5, true));
    let last: Value = serde_json::from_str(read_lines(&path).last().unwrap()).unwrap();
    assert_eq!(last["evidence"]["evidence_type"], REANCHORED_EVIDENCE_TYPE);
    assert_eq!(
        last["evidence"]["payload"],
        json!({
            "reason": "tail_past_head",
            "records": 4,
            "head_count": 3,
            "head_key_id": null,
            "writer_key_id": "node-test",
        })
    );
    assert!(last["evidence"]["emitted_at"].is_string());
}

#[tokio::test]
async fn reopening_continues_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_log(dir.path(), 3).await;
    let first_last = verify_chain(&path).unwrap().last_hash;
    {
        let sink = FileChainSink::open(&path).unwrap();
        assert_eq!(sink.record_count(), 3);
        assert_eq!(sink.last_hash(), first_last);
        for i in 3..6 {
            sink.emit(&evidence(i)).await.unwrap();
        }
        sink.flush().await.unwrap();
    }
    let report = verify_chain(&path).unwrap();
    assert_eq!((report.records, report.anchored), (6, true));
    let seqs: Vec<u64> = read_lines(&path)
        .iter()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(seqs, vec![0, 1, 2, 3, 4, 5]);
    let fourth: Value = serde_json::from_str(&read_lines(&path)[3]).unwrap();
    assert_eq!(fourth["prev_hash"], Value::from(first_last));
}

#[tokio::test]
async fn opening_a_broken_chain_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_log(dir.path(), 4).await;
    let mut lines = read_lines(&path);
    lines[1] = lines[1].replace("step-1", "step-X");
    write_lines(&path, &lines);
    let err = FileChainSink::open(&path).unwrap_err();
    assert_broken(
        &err,
        2,
        ChainErrorKind::Edited,
        "refusing to append to a broken chain",
    );
    // Nothing was appended.
    assert_eq!(read_lines(&path).len(), 4);
}

#[tokio::test]
async fn opening_a_log_without_its_head_needs_reanchor() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_log(dir.path(), 2).await;
    std::fs::remove_file(head_path(&path)).unwrap();
    let err = FileChainSink::open(&path).unwrap_err();
    assert!(
        matches!(err, ChainError::Unanchored { records: 2, .. }),
        "{err}"
    );
    let sink = FileChainSink::open_reanchor(&path).unwrap();
    sink.emit(&evidence(2)).await.unwrap();
    drop(sink);
    let report = verify_chain(&path).unwrap();
    assert_eq!((report.records, report.anchored), (4, true));
    let lines = read_lines(&path);
    let reanchored: Value = serde_json::from_str(&lines[2]).unwrap();
    assert_eq!(
        reanchored["evidence"]["evidence_type"],
        REANCHORED_EVIDENCE_TYPE
    );
    assert_eq!(reanchored["evidence"]["payload"]["reason"], "head_missing");
    assert_eq!(reanchored["evidence"]["payload"]["records"], 2);
}

#[tokio::test]
async fn a_log_has_one_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("evidence.jsonl");
    let sink = FileChainSink::open(&path).unwrap();
    let err = FileChainSink::open(&path).unwrap_err();
    assert!(matches!(err, ChainError::Locked { .. }), "{err}");
    drop(sink);
    FileChainSink::open(&path).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_emits_produce_a_valid_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("evidence.jsonl");
    let sink = Arc::new(FileChainSink::open(&path).unwrap());
    let mut tasks = Vec::new();
    for t in 0..16 {
        let sink = Arc::clone(&sink);
        tasks.push(tokio::spawn(async move {
            for i in 0..40 {
                sink.emit(&evidence(t * 1000 + i)).await.unwrap();
                if i % 10 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    sink.flush().await.unwrap();
    let report = verify_chain(&path).unwrap();
    assert_eq!((report.records, report.anchored), (640, true));
    let mut types: Vec<String> = read_lines(&path)
        .iter()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["evidence"]["evidence_type"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    types.sort();
    types.dedup();
    assert_eq!(types.len(), 640);
}

// --- the keyed head -------------------------------------------------------------------------------

#[tokio::test]
async fn a_signed_head_verifies_with_its_key_in_every_spelling() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_signed_log(dir.path(), 5).await;
    let head: Value =
        serde_json::from_str(&std::fs::read_to_string(head_path(&path)).unwrap()).unwrap();
    let fields: Vec<&str> = head
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        fields,
        ["count", "key_id", "last_hash", "signature", "signed_at"]
    );
    assert_eq!(head["count"], 5);
    assert_eq!(head["key_id"], "node-test");

    let key = node_key();
    let file_key = HeadKey::from_key_file(&SigningKeyFile::from_seed("node-test", [5; 32]));
    let public = HeadKey::from_public_key_base64(&key.public_key_base64()).unwrap();
    assert_eq!(public.key_id(), None);
    for verifier in [key.verifier(), file_key, public] {
        let report = verify_chain_with(&path, &with_key(verifier)).unwrap();
        assert_eq!((report.records, report.anchored), (5, true));
        assert!(
            matches!(&report.head, HeadStatus::Signed { key_id, verified: true, .. } if key_id == "node-test"),
            "{:?}",
            report.head
        );
    }
    // Without a key the head's structure is still checked, its signature is not.
    let report = verify_chain(&path).unwrap();
    assert!(matches!(
        report.head,
        HeadStatus::Signed {
            verified: false,
            ..
        }
    ));
    // An unsigned head says so.
    let plain_dir = tempfile::tempdir().unwrap();
    let plain = write_log(plain_dir.path(), 1).await;
    assert_eq!(verify_chain(&plain).unwrap().head, HeadStatus::Unsigned);
}

#[tokio::test]
async fn a_log_and_head_rewritten_without_the_key_fail_with_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_signed_log(dir.path(), 5).await;
    let original = read_lines(&path);
    let original_head = std::fs::read_to_string(head_path(&path)).unwrap();
    let key = with_key(node_key().verifier());

    // 1. A middle record removed, the rest re-chained, an unsigned head written to match.
    let mut lines = original.clone();
    lines.remove(2);
    let lines = re_chain(&lines);
    write_lines(&path, &lines);
    std::fs::write(head_path(&path), forged_head(&lines)).unwrap();
    assert_eq!(verify_chain(&path).unwrap().records, 4);
    let err = verify_chain_with(&path, &key).unwrap_err();
    assert!(
        matches!(
            &err,
            ChainError::HeadSignature {
                problem: SignatureProblem::Unsigned,
                ..
            }
        ),
        "{err}"
    );

    // 2. The old signature fields kept, count and hash changed to match the rewrite.
    let mut head: Value = serde_json::from_str(&original_head).unwrap();
    head["count"] = json!(4);
    head["last_hash"] = json!(sha256_ref(lines[3].as_bytes()));
    std::fs::write(head_path(&path), head.to_string()).unwrap();
    assert!(verify_chain(&path).is_ok());
    let err = verify_chain_with(&path, &key).unwrap_err();
    assert!(
        matches!(
            &err,
            ChainError::HeadSignature {
                problem: SignatureProblem::Invalid { .. },
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("without the node key"), "{err}");

    // 3. Signed with another key under the node's key id, and under another id.
    for (id, seed) in [("node-test", [6u8; 32]), ("mallory", [6u8; 32])] {
        let forger = NodeKey::from_key_file(&SigningKeyFile::from_seed(id, seed)).unwrap();
        let forged = tempfile::tempdir().unwrap();
        let forged_log = forged.path().join("evidence.jsonl");
        let sink = FileChainSink::open_signed(&forged_log, forger).unwrap();
        for line in &lines {
            let record: Value = serde_json::from_str(line).unwrap();
            let evidence: Evidence = ep_contracts::parse(&record["evidence"].to_string()).unwrap();
            sink.emit(&evidence).await.unwrap();
        }
        drop(sink);
        assert!(verify_chain(&forged_log).is_ok());
        let err = verify_chain_with(&forged_log, &key).unwrap_err();
        let expected_other_key = id != "node-test";
        assert!(
            matches!(
                &err,
                ChainError::HeadSignature {
                    problem: SignatureProblem::OtherKey { .. },
                    ..
                }
            ) == expected_other_key,
            "{id}: {err}"
        );
        // With only the public key the key id is not known: the signature fails instead.
        let public = HeadKey::from_public_key_base64(&node_key().public_key_base64()).unwrap();
        let err = verify_chain_with(&forged_log, &with_key(public)).unwrap_err();
        assert!(
            matches!(
                &err,
                ChainError::HeadSignature {
                    problem: SignatureProblem::Invalid { .. },
                    ..
                }
            ),
            "{id}: {err}"
        );
    }

    // 4. Truncated, with the head rewritten to match: only the key sees it.
    write_lines(&path, &original[..3]);
    std::fs::write(head_path(&path), forged_head(&original[..3])).unwrap();
    assert!(verify_chain(&path).is_ok());
    assert!(verify_chain_with(&path, &key).is_err());
}

#[tokio::test]
async fn restarting_the_writer_does_not_launder_a_rewritten_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_signed_log(dir.path(), 4).await;
    let mut lines = read_lines(&path);
    lines.remove(1);
    let lines = re_chain(&lines);
    write_lines(&path, &lines);
    std::fs::write(head_path(&path), forged_head(&lines)).unwrap();
    let err = FileChainSink::open_signed(&path, node_key()).unwrap_err();
    assert!(
        matches!(
            &err,
            ChainError::HeadNotContinued {
                problem: SignatureProblem::Unsigned,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("evidence reanchor"), "{err}");
    // Nothing was appended and the forged head is still unsigned: verify --key still fails.
    assert_eq!(read_lines(&path), lines);
    assert!(verify_chain_with(&path, &with_key(node_key().verifier())).is_err());

    // Another node's key is refused the same way, and a writer without a key refuses a signed
    // head rather than downgrade it.
    let other_dir = tempfile::tempdir().unwrap();
    let other = write_signed_log(other_dir.path(), 2).await;
    let stranger =
        NodeKey::from_key_file(&SigningKeyFile::from_seed("node-other", [7; 32])).unwrap();
    let err = FileChainSink::open_signed(&other, stranger).unwrap_err();
    assert!(
        matches!(
            &err,
            ChainError::HeadNotContinued {
                problem: SignatureProblem::OtherKey { .. },
                ..
            }
        ),
        "{err}"
    );
    // ... not even when asked to re-anchor: that would drop the signature.
    for err in [
        FileChainSink::open(&other).unwrap_err(),
        FileChainSink::open_reanchor(&other).unwrap_err(),
    ] {
        assert!(
            matches!(
                &err,
                ChainError::HeadNotContinued {
                    problem: SignatureProblem::WriterHasNoKey { .. },
                    ..
                }
            ),
            "{err}"
        );
    }
    assert!(verify_chain_with(&other, &with_key(node_key().verifier())).is_ok());
}

#[tokio::test]
async fn an_operator_can_re_anchor_an_unsigned_log_under_the_node_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_log(dir.path(), 3).await;
    let options = SinkOptions {
        key: Some(node_key()),
        reanchor: true,
        ..SinkOptions::default()
    };
    let sink = FileChainSink::open_with(&path, options).unwrap();
    assert_eq!(sink.key().map(NodeKey::key_id), Some("node-test"));
    drop(sink);
    let report = verify_chain_with(&path, &with_key(node_key().verifier())).unwrap();
    assert_eq!(report.records, 4);
    let last: Value = serde_json::from_str(read_lines(&path).last().unwrap()).unwrap();
    assert_eq!(last["evidence"]["payload"]["reason"], "head_unsigned");
    assert_eq!(last["evidence"]["payload"]["head_count"], 3);
    // From then on a signing writer continues it without ceremony.
    let sink = FileChainSink::open_signed(&path, node_key()).unwrap();
    assert_eq!(sink.record_count(), 4);
}

#[tokio::test]
async fn an_old_signed_head_restored_after_truncation_shows_its_age() {
    // Not detectable by the signature alone (the head is genuine, only old): the report
    // carries when it was signed, which is what an operator compares with a copy.
    let dir = tempfile::tempdir().unwrap();
    let path = write_signed_log(dir.path(), 2).await;
    let old_head = std::fs::read_to_string(head_path(&path)).unwrap();
    let old: Value = serde_json::from_str(&old_head).unwrap();
    {
        let sink = FileChainSink::open_signed(&path, node_key()).unwrap();
        sink.emit(&evidence(2)).await.unwrap();
    }
    let lines = read_lines(&path);
    write_lines(&path, &lines[..2]);
    std::fs::write(head_path(&path), &old_head).unwrap();
    let report = verify_chain_with(&path, &with_key(node_key().verifier())).unwrap();
    assert_eq!(report.records, 2);
    assert!(
        matches!(&report.head, HeadStatus::Signed { signed_at, .. } if *signed_at == old["signed_at"]),
        "{:?}",
        report.head
    );
}

// --- any single-byte change is detected ---------------------------------------------------------

const PROP_RECORDS: usize = 6;

/// A log written once through the sink, which every case tampers with a copy of.
struct BaseLog {
    log: Vec<u8>,
    head: Vec<u8>,
    /// (byte offset where each line starts, its length without the newline).
    spans: Vec<(usize, usize)>,
}

static BASE: LazyLock<BaseLog> = LazyLock::new(|| {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let path = rt.block_on(write_log(dir.path(), PROP_RECORDS));
    let log = std::fs::read(&path).unwrap();
    let head = std::fs::read(head_path(&path)).unwrap();
    let mut spans = Vec::new();
    let mut start = 0;
    for line in log.split_inclusive(|b| *b == b'\n') {
        spans.push((start, line.len() - 1));
        start += line.len();
    }
    BaseLog { log, head, spans }
});

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn any_single_byte_change_is_detected(
        record in 0..PROP_RECORDS,
        offset in any::<prop::sample::Index>(),
        replacement in any::<u8>(),
    ) {
        let BaseLog { log, head, spans } = &*BASE;
        let (start, len) = spans[record];
        let at = start + offset.index(len);
        prop_assume!(log[at] != replacement);
        let mut tampered = log.clone();
        tampered[at] = replacement;

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("evidence.jsonl");
        std::fs::write(&path, &tampered).unwrap();
        std::fs::write(head_path(&path), head).unwrap();
        let result = verify_chain(&path);
        prop_assert!(result.is_err(), "byte {at} of record {} -> {replacement:#04x} undetected", record + 1);
        let err = result.unwrap_err();
        // The blame lands on the changed record or its neighbour.
        let blamed = err.record().unwrap();
        let changed = record as u64 + 1;
        prop_assert!(blamed + 1 >= changed && blamed <= changed + 1, "{err}");
    }
}

/// A signed log written once, whose head every case tampers with a copy of.
static SIGNED: LazyLock<(Vec<u8>, Vec<u8>)> = LazyLock::new(|| {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let path = rt.block_on(write_signed_log(dir.path(), 3));
    (
        std::fs::read(&path).unwrap(),
        std::fs::read(head_path(&path)).unwrap(),
    )
});

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn any_single_byte_change_of_a_signed_head_is_detected_with_the_key(
        offset in any::<prop::sample::Index>(),
        replacement in any::<u8>(),
    ) {
        let (log, head) = &*SIGNED;
        // The final newline is not part of the head's JSON.
        let at = offset.index(head.len() - 1);
        prop_assume!(head[at] != replacement);
        let mut tampered = head.clone();
        tampered[at] = replacement;

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("evidence.jsonl");
        std::fs::write(&path, log).unwrap();
        std::fs::write(head_path(&path), &tampered).unwrap();
        let result = verify_chain_with(&path, &with_key(node_key().verifier()));
        prop_assert!(
            result.is_err(),
            "head byte {at} -> {replacement:#04x} undetected: {}",
            String::from_utf8_lossy(&tampered)
        );
    }
}
