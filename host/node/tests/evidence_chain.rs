//! The hash-chained evidence log: real records written through the sink, then tampered with.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};

use ep_contracts::boundary::Evidence;
use ep_node::EvidenceSink;
use ep_node::sinks::file_chain::{
    ChainError, ChainErrorKind, FileChainSink, GENESIS_HASH, head_path, verify_chain,
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
async fn log_without_head_verifies_unanchored() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_log(dir.path(), 4).await;
    std::fs::remove_file(head_path(&path)).unwrap();
    let report = verify_chain(&path).unwrap();
    assert_eq!((report.records, report.anchored), (4, false));
    // Without the head a clean truncation is invisible, but still unanchored.
    let lines = read_lines(&path);
    write_lines(&path, &lines[..2]);
    assert_eq!(verify_chain(&path).unwrap().records, 2);
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
async fn stale_head_after_crash_verifies_unanchored_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_log(dir.path(), 3).await;
    let head = std::fs::read(head_path(&path)).unwrap();
    {
        let sink = FileChainSink::open(&path).unwrap();
        sink.emit(&evidence(3)).await.unwrap();
    }
    // Simulate a crash between the append and the anchor update.
    std::fs::write(head_path(&path), head).unwrap();
    let report = verify_chain(&path).unwrap();
    assert_eq!((report.records, report.anchored), (4, false));
    let sink = FileChainSink::open(&path).unwrap();
    assert_eq!(sink.record_count(), 4);
    drop(sink);
    assert!(verify_chain(&path).unwrap().anchored);
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
    assert_eq!((report.records, report.anchored), (3, true));
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
