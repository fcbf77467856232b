//! A stream's lifetime and event budget: a guest that emits forever is ended by the host with a
//! typed failure event, and the node records the stream's start and its (failed) end.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use ep_contracts::boundary::{AdmissionRequest, ExecutionEvent, Map, Provenance};
use ep_lanes_wasm::LaneLimits;
use ep_lanes_wasm::stream::STREAM_FAILED_EVENT;
use ep_node::LaneAdapter;
use ep_node::node::Node;
use ep_node::sinks::memory::MemorySink;
use futures::StreamExt;
use serde_json::json;
use support::*;

fn failure(event: &ExecutionEvent) -> (String, String) {
    failure_in(&event.payload["error"])
}

/// Every event of the `forever` operation of the echo guest, streamed under `limits`.
async fn forever_events(limits: LaneLimits) -> Vec<ExecutionEvent> {
    let rt = runtime();
    let lane = load(&rt, "echo", limits).await;
    let stream = guarded(lane.stream(request(Some("forever"), json!({})), ctx()))
        .await
        .unwrap();
    guarded(stream.collect()).await
}

#[tokio::test]
async fn a_stream_that_spends_its_event_budget_ends_with_policy_denied() {
    let events = forever_events(LaneLimits {
        max_stream_events: 50,
        ..LaneLimits::default()
    })
    .await;
    assert_eq!(events.len(), 51, "the budget, then the failure");
    assert!(
        events[..50]
            .iter()
            .all(|e| e.event_type.as_deref() == Some("echo.chunk"))
    );
    let last = events.last().unwrap();
    assert_eq!(last.event_type.as_deref(), Some(STREAM_FAILED_EVENT));
    assert_eq!(
        failure(last),
        ("policy_denied".to_owned(), "stream_event_budget".to_owned())
    );
    assert_eq!(last.payload["error"]["details"]["max_stream_events"], 50);
}

#[tokio::test]
async fn a_stream_that_outlives_its_lifetime_ends_with_timeout() {
    let events = forever_events(LaneLimits {
        max_stream_lifetime: Duration::from_millis(200),
        max_stream_events: u64::MAX,
        ..LaneLimits::default()
    })
    .await;
    let last = events.last().unwrap();
    assert_eq!(last.event_type.as_deref(), Some(STREAM_FAILED_EVENT));
    assert_eq!(
        failure(last),
        ("timeout".to_owned(), "stream_lifetime".to_owned())
    );
    assert_eq!(last.payload["error"]["details"]["lifetime_ms"], 200);
    assert!(events.len() > 1, "it streamed until its lifetime ended");
}

#[tokio::test]
async fn a_stream_ended_by_its_limit_leaves_started_and_failed_ended_records() {
    let rt = runtime();
    let limits = LaneLimits {
        max_stream_events: 10,
        ..LaneLimits::default()
    };
    let lane = load(&rt, "echo", limits).await;
    let node = Node::new("node-limits");
    let sink = Arc::new(MemorySink::new("memory"));
    node.register_evidence_sink(sink.clone());
    node.register_lane(Arc::new(lane));
    let mut admission = AdmissionRequest::new("echo");
    admission.operation = Some("forever".to_owned());
    admission.provenance = Provenance::direct_lower_lane_owner("test", Map::new());
    let events: Vec<_> = guarded(node.stream(admission).await.unwrap().collect()).await;
    // dispatch.started, the 10 events of the budget, the budget's failure event, then the
    // closing dispatch.failed.
    assert_eq!(events.len(), 13);
    assert_eq!(events[0].event_type.as_deref(), Some("dispatch.started"));
    assert_eq!(events[12].event_type.as_deref(), Some("dispatch.failed"));
    assert_eq!(
        events[12].payload["error"]["failure_class"],
        "policy_denied"
    );
    assert_eq!(
        sink.evidence_types(),
        [
            "execution.started",
            "dispatch.started",
            "dispatch.failed",
            "execution.completed"
        ]
    );
    let completed = &sink.records()[3].payload;
    assert_eq!(completed["kind"], "stream");
    assert_eq!(completed["status"], "failed");
    assert_eq!(completed["error"]["failure_class"], "policy_denied");
    assert_eq!(completed["event_count"], 11);
}
