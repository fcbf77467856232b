//! Group commit of the evidence log: many writers at once, each durability, a full queue, and
//! the node answering only once its records are written.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ep_contracts::boundary::Evidence;
use ep_node::EvidenceSink;
use ep_node::authority::SigningKeyFile;
use ep_node::sinks::file_chain::{
    Durability, FileChainSink, NodeKey, SinkOptions, VerifyOptions, head_path, verify_chain_with,
};
use serde_json::{Value, json};

fn evidence(writer: usize, i: usize) -> Evidence {
    Evidence {
        evidence_type: Some("step".to_owned()),
        request_id: Some(format!("w{writer}-{i}")),
        payload: json!({"writer": writer, "i": i}),
        ..Evidence::default()
    }
}

fn node_key() -> NodeKey {
    NodeKey::from_key_file(&SigningKeyFile::from_seed("node-group", [9; 32])).unwrap()
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// The head once it counts `count` records: polled (a liveness check, not a timing one).
async fn wait_for_head(path: &Path, count: u64) -> Value {
    let mut head = Value::Null;
    for _ in 0..1000 {
        head = serde_json::from_slice(&std::fs::read(head_path(path)).unwrap()).unwrap();
        if head["count"] == count {
            return head;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the head never reached {count} records: {head}");
}

/// Verification that requires the head signed by [`node_key`].
fn keyed() -> VerifyOptions {
    VerifyOptions {
        key: Some(node_key().verifier()),
        ..VerifyOptions::default()
    }
}

fn options(durability: Durability, queue_records: usize) -> SinkOptions {
    SinkOptions {
        key: Some(node_key()),
        durability,
        queue_records,
        ..SinkOptions::default()
    }
}

/// `writers` tasks on a multi-thread runtime each emit `per_writer` records and settle.
async fn emit_concurrently(sink: &Arc<FileChainSink>, writers: usize, per_writer: usize) {
    let mut tasks = Vec::new();
    for writer in 0..writers {
        let sink = Arc::clone(sink);
        tasks.push(tokio::spawn(async move {
            for i in 0..per_writer {
                sink.emit(&evidence(writer, i)).await.unwrap();
            }
            sink.settle().await.unwrap();
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_make_one_verified_chain_in_every_durability() {
    let durabilities = [
        Durability::Batch,
        Durability::Interval(Duration::from_millis(20)),
        Durability::Never,
    ];
    for durability in durabilities {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("evidence.jsonl");
        let sink = Arc::new(FileChainSink::open_with(&path, options(durability, 64)).unwrap());
        emit_concurrently(&sink, 16, 50).await;

        // Settled means written: every record is in the file before any flush or close.
        let written = lines(&path);
        assert_eq!(written.len(), 16 * 50, "{durability:?}");
        assert_eq!(sink.record_count(), 16 * 50);
        let seqs: Vec<u64> = written.iter().map(|l| l["seq"].as_u64().unwrap()).collect();
        assert_eq!(seqs, (0..16 * 50).collect::<Vec<u64>>());
        // Each writer's records keep their order and none is lost or doubled.
        let ids: BTreeSet<String> = written
            .iter()
            .map(|l| l["evidence"]["request_id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(ids.len(), 16 * 50);
        for writer in 0..16 {
            let mine: Vec<u64> = written
                .iter()
                .filter(|l| l["evidence"]["payload"]["writer"] == writer)
                .map(|l| l["evidence"]["payload"]["i"].as_u64().unwrap())
                .collect();
            assert_eq!(mine, (0..50).collect::<Vec<u64>>());
        }

        sink.flush().await.unwrap();
        let verify = keyed();
        let report = verify_chain_with(&path, &verify).unwrap();
        assert_eq!((report.records, report.anchored), (16 * 50, true));
        assert_eq!(report.last_hash, sink.last_hash());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_is_written_by_the_caller_that_fills_it_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("evidence.jsonl");
    // One record may wait: every emit writes.
    let sink = Arc::new(FileChainSink::open_with(&path, options(Durability::Batch, 1)).unwrap());
    emit_concurrently(&sink, 8, 40).await;
    drop(Arc::into_inner(sink).unwrap());
    let verify = keyed();
    let report = verify_chain_with(&path, &verify).unwrap();
    assert_eq!((report.records, report.anchored), (320, true));
}

#[tokio::test]
async fn closing_the_sink_writes_what_was_queued_and_anchors_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("evidence.jsonl");
    let sink = FileChainSink::open_with(&path, options(Durability::Never, 4096)).unwrap();
    for i in 0..200 {
        sink.emit(&evidence(0, i)).await.unwrap();
    }
    // No settle, no flush: dropping it drains the queue, syncs and rewrites the head.
    drop(sink);
    let head: Value = serde_json::from_slice(&std::fs::read(head_path(&path)).unwrap()).unwrap();
    assert_eq!(head["count"], 200);
    let verify = keyed();
    assert_eq!(verify_chain_with(&path, &verify).unwrap().records, 200);
    // And the lock is released: the log opens again and continues.
    let sink = FileChainSink::open_signed(&path, node_key()).unwrap();
    assert_eq!(sink.record_count(), 200);
}

#[tokio::test]
async fn a_record_too_big_for_a_line_is_refused_at_emit_and_the_chain_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("evidence.jsonl");
    let sink = FileChainSink::open_signed(&path, node_key()).unwrap();
    let huge = Evidence {
        payload: json!({"blob": "x".repeat(17 << 20)}),
        ..Evidence::default()
    };
    let err = sink.emit(&huge).await.unwrap_err();
    assert!(err.to_string().contains("over the"), "{err}");
    sink.emit(&evidence(0, 0)).await.unwrap();
    sink.flush().await.unwrap();
    assert_eq!(sink.record_count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_head_catches_up_with_settled_records_without_a_flush() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("evidence.jsonl");
    let sink = FileChainSink::open_with(&path, options(Durability::Never, 4096)).unwrap();
    for i in 0..30 {
        sink.emit(&evidence(0, i)).await.unwrap();
    }
    sink.settle().await.unwrap();
    // The sync thread anchors what was written on its own, within its head interval.
    let head = wait_for_head(&path, 30).await;
    assert_eq!(head["last_hash"], sink.last_hash());
    assert_eq!(head["key_id"], "node-group");
    let verify = keyed();
    // The live log verifies as it is, no flush needed.
    assert_eq!(verify_chain_with(&path, &verify).unwrap().records, 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_log_verifies_with_its_unanchored_tail_pending_and_a_stopped_one_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("evidence.jsonl");
    let sink = FileChainSink::open_with(&path, options(Durability::Never, 4096)).unwrap();
    for i in 0..10 {
        sink.emit(&evidence(0, i)).await.unwrap();
    }
    sink.flush().await.unwrap();
    let anchored_head = std::fs::read(head_path(&path)).unwrap();
    for i in 10..15 {
        sink.emit(&evidence(0, i)).await.unwrap();
    }
    sink.settle().await.unwrap();
    // Once the sync thread has anchored all 15, put the older head back, as if its next update
    // were still to come (the thread rewrites it only after another write).
    wait_for_head(&path, 15).await;
    std::fs::write(head_path(&path), &anchored_head).unwrap();
    let verify = keyed();
    let report = verify_chain_with(&path, &verify).unwrap();
    assert_eq!((report.records, report.pending), (15, 5));
    // A verify never keeps the writer from going on.
    sink.emit(&evidence(0, 15)).await.unwrap();
    sink.settle().await.unwrap();

    // Nobody writes it any more: records past the head are an error again.
    drop(sink);
    std::fs::write(head_path(&path), &anchored_head).unwrap();
    let err = verify_chain_with(&path, &verify).unwrap_err();
    assert_eq!(
        err.kind(),
        Some(ep_node::sinks::file_chain::ChainErrorKind::Appended),
        "{err}"
    );
}
