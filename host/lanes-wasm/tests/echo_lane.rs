//! The echo guest through `WasmLane` directly: execute, capabilities, validate and stream.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use ep_contracts::boundary::{RejectionReason, ResultStatus};
use ep_lanes_wasm::{ENGINE, LaneLimits};
use ep_node::LaneAdapter;
use futures::StreamExt;
use serde_json::json;
use support::*;

#[tokio::test]
async fn echo_execute_returns_the_payload_and_its_event() {
    let rt = runtime();
    let lane = load(&rt, "echo", LaneLimits::default()).await;
    let request = request(None, json!({"hello": "wasm", "n": [1, 2, 3]}));
    let reference = request.execution_ref.clone();
    let result = guarded(lane.execute(request, ctx())).await;
    assert_eq!(result.status, ResultStatus::Succeeded, "{result:?}");
    assert_eq!(result.execution_ref, reference);
    assert_eq!(
        json!(result.output),
        json!({"hello": "wasm", "n": [1, 2, 3]})
    );
    assert_eq!(result.error, None);
    assert_eq!(result.events.len(), 1);
    let event = &result.events[0];
    assert_eq!(event.event_type.as_deref(), Some("echo.received"));
    assert_eq!(event.execution_ref.as_ref(), Some(&reference));
    assert!(event.payload["payload_bytes"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn results_carry_the_component_digest_and_guest_metrics_as_evidence() {
    let rt = runtime();
    let lane = load(&rt, "echo", LaneLimits::default()).await;
    let mut request = request(None, json!({}));
    request.metadata = obj(json!({"lineage": {"trace_id": "t-1", "request_id": "r-1"}}));
    let result = guarded(lane.execute(request, ctx())).await;
    assert_eq!(result.status, ResultStatus::Succeeded, "{result:?}");
    let evidence = &result.evidence[0];
    assert_eq!(evidence["kind"], "wasm_lane.execution");
    assert_eq!(evidence["component_digest"], lane.digest());
    assert_eq!(evidence["engine"], ENGINE);
    // The echo guest reports how many lineage entries it received.
    assert_eq!(evidence["metrics"]["lineage_entries"], 2);
}

#[tokio::test]
async fn capabilities_are_probed_at_load_with_digest_and_engine_metadata() {
    let rt = runtime();
    let lane = load(&rt, "echo", LaneLimits::default()).await;
    assert_eq!(lane.lane_id(), "echo");
    let caps = lane.capabilities();
    assert_eq!(caps.lane_id.as_deref(), Some("echo"));
    assert_eq!(caps.protocols, ["echo"]);
    assert!(caps.supports_execute && caps.supports_stream);
    assert_eq!(caps.metadata["guest"], "echo");
    assert_eq!(caps.metadata["engine"], "wasmtime@48.0.8");
    let digest = caps.metadata["component_digest"].as_str().unwrap();
    assert_eq!(digest, lane.digest());
    let bytes = std::fs::read(guest("echo")).unwrap();
    assert_eq!(digest, ep_contracts::canonical::sha256_ref(&bytes));
}

#[tokio::test]
async fn validate_passes_the_guests_rejection_through() {
    let rt = runtime();
    let lane = load(&rt, "echo", LaneLimits::default()).await;
    assert_eq!(
        lane.validate(&request(Some("echo"), json!({}))).await,
        Ok(())
    );
    let rejection = lane
        .validate(&request(Some("refuse"), json!({})))
        .await
        .expect_err("echo refuses operation refuse");
    assert_eq!(
        rejection.reason_code(),
        Some(RejectionReason::InvalidLaneRequest)
    );
    assert_eq!(
        rejection.message.as_deref(),
        Some("echo refuses operation \"refuse\"")
    );
    assert_eq!(rejection.details["operation"], "refuse");
}

#[tokio::test]
async fn validate_and_execute_runs_both_in_one_instance() {
    let rt = runtime();
    let lane = load(&rt, "echo", LaneLimits::default()).await;
    let before = rt.instantiations();
    let result =
        guarded(lane.validate_and_execute(request(Some("echo"), json!({"a": 1})), ctx())).await;
    assert_eq!(result.status, ResultStatus::Succeeded, "{result:?}");
    assert_eq!(json!(result.output), json!({"a": 1}));
    assert_eq!(
        rt.instantiations() - before,
        1,
        "validate and execute share a store"
    );
    // The separate path costs two.
    let request = request(Some("echo"), json!({}));
    lane.validate(&request).await.unwrap();
    guarded(lane.execute(request, ctx())).await;
    assert_eq!(rt.instantiations() - before, 3);
}

#[tokio::test]
async fn validate_and_execute_turns_a_guest_refusal_into_a_rejected_result() {
    let rt = runtime();
    let lane = load(&rt, "echo", LaneLimits::default()).await;
    let request = request(Some("refuse"), json!({}));
    let reference = request.execution_ref.clone();
    let result = guarded(lane.validate_and_execute(request, ctx())).await;
    assert_eq!(result.status, ResultStatus::Rejected, "{result:?}");
    assert_eq!(result.execution_ref, reference);
    let error = result.error.expect("a rejection");
    assert_eq!(error["reason"], "invalid_lane_request");
    assert_eq!(error["message"], "echo refuses operation \"refuse\"");
    // Refused before execute: no output, no events.
    assert!(result.output.is_empty() && result.events.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_works_from_a_multi_thread_runtime_worker() {
    let rt = runtime();
    let lane = std::sync::Arc::new(load(&rt, "echo", LaneLimits::default()).await);
    let task =
        tokio::spawn(async move { lane.validate(&request(Some("refuse"), json!({}))).await });
    let rejection = guarded(task).await.unwrap().unwrap_err();
    assert_eq!(rejection.reason, "invalid_lane_request");
}

#[tokio::test]
async fn stream_yields_three_events_then_ends() {
    let rt = runtime();
    let lane = load(&rt, "echo", LaneLimits::default()).await;
    let request = request(None, json!({}));
    let reference = request.execution_ref.clone();
    let stream = guarded(lane.stream(request, ctx())).await.unwrap();
    let events: Vec<_> = guarded(stream.collect()).await;
    let indices: Vec<_> = events.iter().map(|e| e.payload["index"].clone()).collect();
    assert_eq!(indices, [json!(0), json!(1), json!(2)]);
    assert!(
        events
            .iter()
            .all(|e| e.event_type.as_deref() == Some("echo.chunk"))
    );
    assert!(
        events
            .iter()
            .all(|e| e.execution_ref.as_ref() == Some(&reference))
    );
}

#[tokio::test]
async fn stream_on_a_unary_guest_is_its_not_supported_rejection() {
    let rt = runtime();
    let lane = load(&rt, "bad-json", LaneLimits::default()).await;
    let rejection = match guarded(lane.stream(request(None, json!({})), ctx())).await {
        Err(rejection) => rejection,
        Ok(_) => panic!("a unary guest refuses to stream"),
    };
    assert_eq!(rejection.reason_code(), Some(RejectionReason::NotSupported));
    assert_eq!(
        rejection.message.as_deref(),
        Some("bad-json is a unary lane")
    );
}

#[tokio::test]
async fn dropping_a_stream_midway_leaves_the_lane_usable() {
    let rt = runtime();
    let lane = load(&rt, "echo", LaneLimits::default()).await;
    for _ in 0..3 {
        let mut stream = guarded(lane.stream(request(None, json!({})), ctx()))
            .await
            .unwrap();
        let first = guarded(stream.next()).await.unwrap();
        assert_eq!(first.payload["index"], 0);
        drop(stream);
    }
    let result = guarded(lane.execute(request(None, json!({"after": true})), ctx())).await;
    assert_eq!(result.status, ResultStatus::Succeeded);
}
