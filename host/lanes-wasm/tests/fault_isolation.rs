//! Guest faults end only their own execution, with the documented failure class and cause,
//! while concurrent executions succeed and the runtime stays usable.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use ep_contracts::boundary::ResultStatus;
use ep_lanes_wasm::{LaneLimits, WasmLane, WasmRuntime};
use ep_node::{CancelSignal, LaneAdapter};
use futures::StreamExt;
use futures::future::join_all;
use serde_json::json;
use support::*;

/// A 200 ms deadline for faults that would otherwise run forever.
const SHORT_MS: u64 = 200;

fn fault_limits() -> LaneLimits {
    LaneLimits {
        max_memory_bytes: 16 << 20,
        max_component_handles: 1000,
        ..LaneLimits::default()
    }
}

/// Runs one execution of `faulty` (with `operation`) next to 8 echo executions; returns the
/// faulty result after checking every echo succeeded, then checks the runtime still serves.
async fn fault_beside_echoes(
    rt: &WasmRuntime,
    faulty: &str,
    operation: Option<&str>,
) -> ep_contracts::boundary::ExecutionResult {
    let echo = Arc::new(load(rt, "echo", LaneLimits::default()).await);
    let bad = load(rt, faulty, fault_limits()).await;
    let fault = bad.execute(request(operation, json!({})), within(SHORT_MS));
    let echoes = join_all((0..8).map(|i| {
        let echo = Arc::clone(&echo);
        async move { echo.execute(request(None, json!({"i": i})), ctx()).await }
    }));
    let (fault, echoes) = guarded(async { tokio::join!(fault, echoes) }).await;
    for (i, result) in echoes.iter().enumerate() {
        assert_eq!(
            result.status,
            ResultStatus::Succeeded,
            "echo {i}: {result:?}"
        );
        assert_eq!(result.output["i"], i);
    }
    // The faulty lane and the runtime carry on.
    let again = guarded(echo.execute(request(None, json!({"after": faulty})), ctx())).await;
    assert_eq!(again.status, ResultStatus::Succeeded);
    let caps = bad.capabilities();
    assert_eq!(caps.lane_id.as_deref(), Some(faulty));
    fault
}

#[tokio::test]
async fn trap_fails_only_its_execution_with_the_trap_cause() {
    let rt = runtime();
    let result = fault_beside_echoes(&rt, "trap", None).await;
    assert_eq!(
        failure_of(&result),
        ("semantic_runtime_failed".to_owned(), "trap".to_owned())
    );
    let details = &result.error.as_ref().unwrap()["details"];
    assert_eq!(
        details["trap"],
        "wasm trap: wasm `unreachable` instruction executed"
    );
    // The guest's panic message reaches the failure through the bounded console capture.
    let console = details["console"].as_str().unwrap();
    assert!(
        console.contains("the trap guest panics on purpose"),
        "{console}"
    );
    assert!(
        details["component_digest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spin_is_cut_by_its_deadline() {
    let rt = runtime();
    let result = fault_beside_echoes(&rt, "spin", None).await;
    assert_eq!(
        failure_of(&result),
        ("timeout".to_owned(), "deadline".to_owned())
    );
    let details = &result.error.as_ref().unwrap()["details"];
    // What was left of the planned deadline when the call started: at most its budget.
    let timeout_ms = details["timeout_ms"].as_u64().unwrap();
    assert!((1..=SHORT_MS).contains(&timeout_ms), "{details}");
    assert_eq!(details["phase"], "running");
}

#[tokio::test]
async fn a_guest_blocked_in_a_host_call_is_cut_by_its_deadline() {
    let rt = runtime();
    let result = fault_beside_echoes(&rt, "spin", Some("sleep")).await;
    assert_eq!(
        failure_of(&result),
        ("timeout".to_owned(), "deadline".to_owned())
    );
}

#[tokio::test]
async fn memory_bomb_hits_its_memory_limit() {
    let rt = runtime();
    let result = fault_beside_echoes(&rt, "memory-bomb", None).await;
    assert_eq!(
        failure_of(&result),
        (
            "semantic_runtime_failed".to_owned(),
            "memory_limit".to_owned()
        )
    );
    let details = &result.error.as_ref().unwrap()["details"];
    assert_eq!(details["limit_bytes"], 16 << 20);
    assert!(details["requested_bytes"].as_u64().unwrap() > 16 << 20);
}

#[tokio::test]
async fn handle_bomb_hits_its_handle_limit() {
    let rt = runtime();
    let result = fault_beside_echoes(&rt, "handle-bomb", None).await;
    assert_eq!(
        failure_of(&result),
        (
            "semantic_runtime_failed".to_owned(),
            "resource_limit".to_owned()
        )
    );
    let details = &result.error.as_ref().unwrap()["details"];
    assert_eq!(details["limit"], "component_handles");
}

#[tokio::test]
async fn output_that_is_not_json_is_a_framing_failure() {
    let rt = runtime();
    let result = fault_beside_echoes(&rt, "bad-json", None).await;
    assert_eq!(
        failure_of(&result),
        (
            "protocol_framing_failed".to_owned(),
            "invalid_json".to_owned()
        )
    );
    assert_eq!(
        result.error.as_ref().unwrap()["details"]["field"],
        "output-json"
    );
}

#[tokio::test]
async fn cancel_mid_spin_ends_with_cancellation() {
    let rt = runtime();
    let spin = Arc::new(load(&rt, "spin", LaneLimits::default()).await);
    let cancel = CancelSignal::default();
    let running = {
        let spin = Arc::clone(&spin);
        // A deadline far beyond the hang guard: only the cancel can end it.
        let ctx = within_cancellable(600_000, cancel.clone());
        tokio::spawn(async move { spin.execute(request(None, json!({})), ctx).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    cancel.cancel();
    let result = guarded(running).await.unwrap();
    assert_eq!(
        failure_of(&result),
        ("cancellation".to_owned(), "cancelled".to_owned())
    );
    // The lane still runs (and is cut by a deadline) afterwards.
    let after = guarded(spin.execute(request(None, json!({})), within(SHORT_MS))).await;
    assert_eq!(failure_of(&after).1, "deadline");
}

#[tokio::test]
async fn executions_beyond_the_lane_queue_fail_as_lane_saturated() {
    let rt = runtime();
    let limits = LaneLimits {
        max_concurrent: 1,
        max_queued: 0,
        ..LaneLimits::default()
    };
    let spin = Arc::new(WasmLane::load(&rt, guest("spin"), limits).await.unwrap());
    let cancel = CancelSignal::default();
    let running = {
        let spin = Arc::clone(&spin);
        let ctx = within_cancellable(600_000, cancel.clone());
        tokio::spawn(async move { spin.execute(request(None, json!({})), ctx).await })
    };
    // Let the first execution take the lane's only slot (it does on its first poll).
    tokio::time::sleep(Duration::from_millis(50)).await;
    let refused = guarded(async {
        loop {
            assert!(!running.is_finished(), "the long spin ended early");
            let result = spin
                .execute(request(None, json!({})), within(SHORT_MS))
                .await;
            if failure_of(&result).1 == "lane_saturated" {
                break result;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert_eq!(failure_of(&refused).0, "placement_unavailable");
    let details = &refused.error.as_ref().unwrap()["details"];
    assert_eq!(details["max_concurrent"], 1);
    assert_eq!(details["max_queued"], 0);
    cancel.cancel();
    assert_eq!(failure_of(&guarded(running).await.unwrap()).1, "cancelled");
}

#[tokio::test]
async fn queued_executions_wait_for_a_turn() {
    let rt = runtime();
    let limits = LaneLimits {
        max_concurrent: 1,
        max_queued: 16,
        ..LaneLimits::default()
    };
    let echo = Arc::new(WasmLane::load(&rt, guest("echo"), limits).await.unwrap());
    let results = guarded(join_all((0..6).map(|i| {
        let echo = Arc::clone(&echo);
        async move { echo.execute(request(None, json!({"i": i})), ctx()).await }
    })))
    .await;
    assert!(results.iter().all(|r| r.status == ResultStatus::Succeeded));
}

#[tokio::test]
async fn a_trap_in_validate_refuses_the_request_with_its_cause() {
    let rt = runtime();
    let trap = load(&rt, "trap", LaneLimits::default()).await;
    assert_eq!(trap.validate(&request(None, json!({}))).await, Ok(()));
    let rejection = trap
        .validate(&request(Some("validate"), json!({})))
        .await
        .expect_err("a trapping validate refuses");
    assert_eq!(rejection.reason, "invalid_lane_request");
    assert_eq!(rejection.details["cause"], "trap");
    assert_eq!(
        rejection.details["failure"]["failure_class"],
        "semantic_runtime_failed"
    );
    // The lane is still usable.
    assert_eq!(trap.validate(&request(None, json!({}))).await, Ok(()));
}

#[tokio::test]
async fn a_trap_in_validate_before_execute_is_a_rejected_result_with_its_cause() {
    let rt = runtime();
    let trap = load(&rt, "trap", LaneLimits::default()).await;
    let result =
        guarded(trap.validate_and_execute(request(Some("validate"), json!({})), ctx())).await;
    assert_eq!(result.status, ResultStatus::Rejected, "{result:?}");
    let error = result.error.expect("a rejection");
    assert_eq!(error["reason"], "invalid_lane_request");
    assert_eq!(error["details"]["cause"], "trap");
    assert_eq!(
        error["details"]["failure"]["failure_class"],
        "semantic_runtime_failed"
    );
}

#[tokio::test]
async fn events_beyond_the_lane_limit_are_a_resource_limit() {
    let rt = runtime();
    let limits = LaneLimits {
        max_events: 0,
        ..LaneLimits::default()
    };
    let echo = WasmLane::load(&rt, guest("echo"), limits).await.unwrap();
    let result = guarded(echo.execute(request(None, json!({})), ctx())).await;
    assert_eq!(
        failure_of(&result),
        (
            "semantic_runtime_failed".to_owned(),
            "resource_limit".to_owned()
        )
    );
    assert_eq!(result.error.as_ref().unwrap()["details"]["limit"], "events");
}

#[tokio::test]
async fn a_stream_that_cannot_start_ends_with_one_failure_event() {
    let rt = runtime();
    let limits = LaneLimits {
        max_concurrent: 1,
        max_queued: 0,
        ..LaneLimits::default()
    };
    let echo = WasmLane::load(&rt, guest("echo"), limits).await.unwrap();
    let mut holder = guarded(echo.stream(request(None, json!({})), ctx()))
        .await
        .unwrap();
    let refused: Vec<_> = guarded(
        guarded(echo.stream(request(None, json!({})), ctx()))
            .await
            .unwrap()
            .collect::<Vec<_>>(),
    )
    .await;
    assert_eq!(refused.len(), 1);
    assert_eq!(
        refused[0].event_type.as_deref(),
        Some(ep_lanes_wasm::stream::STREAM_FAILED_EVENT)
    );
    assert_eq!(refused[0].payload["status"], "failed");
    assert_eq!(
        refused[0].payload["error"]["details"]["cause"],
        "lane_saturated"
    );
    // The first stream is unaffected and drains normally.
    let mut indices = Vec::new();
    while let Some(event) = guarded(holder.next()).await {
        indices.push(event.payload["index"].clone());
    }
    assert_eq!(indices, [json!(0), json!(1), json!(2)]);
}
