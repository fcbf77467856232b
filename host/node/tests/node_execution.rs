//! Dispatch: execute, stream and cancel through the node and its runtime clients.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use ep_contracts::boundary::{
    AcceptableAttestation, AdmissionRequest, ExecutionRef, Map, Provenance, ResultStatus,
};
use ep_node::local_client::LocalRuntimeClient;
use ep_node::node::Node;
use ep_node::{ConnectOptions, RuntimeClient, RuntimeError};
use futures::StreamExt;
use serde_json::json;
use support::*;
use tokio::sync::{Barrier, mpsc};

/// Hang guard only: generous, never a performance assertion.
const HANG_GUARD: Duration = Duration::from_secs(10);

fn direct_request() -> AdmissionRequest {
    let mut request = AdmissionRequest::new("process");
    request.provenance = Provenance::direct_lower_lane_owner("cli_subprocess_core", Map::new());
    request
}

#[tokio::test]
async fn governed_execute_against_a_matching_target_succeeds() {
    let rt = runtime().await;
    let request = governed_request();
    let result = rt.node.execute(request).await;
    assert_eq!(result.status, ResultStatus::Succeeded);
    assert_eq!(result.output["ok"], json!(true));
    assert!(
        rt.evidence_types()
            .contains(&"admission.accepted".to_owned())
    );
    // The dispatch facts are the execution's events too.
    assert_eq!(
        event_types(&result.events),
        ["dispatch.started", "dispatch.completed"]
    );
    assert_eq!(result.events[0].payload["lane_id"], "process");
    assert_eq!(
        result.events[0].execution_ref,
        Some(result.execution_ref.clone())
    );
    assert_eq!(result.events[1].payload["status"], "succeeded");
}

#[tokio::test]
async fn a_failed_execution_ends_with_a_dispatch_failed_event_carrying_the_failure() {
    let rt = runtime().await;
    let mut request = governed_request();
    request.payload.insert("fail".into(), json!("timeout"));
    let result = rt.node.execute(request).await;
    assert_eq!(result.status, ResultStatus::Failed, "{result:?}");
    let types = event_types(&result.events);
    assert_eq!(types.first(), Some(&"dispatch.started"), "{types:?}");
    assert_eq!(types.last(), Some(&"dispatch.failed"), "{types:?}");
    let closing = &result.events[result.events.len() - 1].payload;
    assert_eq!(closing["status"], "failed");
    assert_eq!(closing["failure_class"], "timeout");
    assert_eq!(Some(&closing["error"]), result.error.as_ref());
}

#[tokio::test]
async fn execute_passes_the_decision_ref_descriptor_and_request_to_the_target() {
    let (rt, frames) = remote_runtime(&["remote-target-1"]).await;
    let request = governed_request();
    let request_id = request.request_id.clone();
    let result = rt.node.execute(request).await;
    assert_eq!(result.status, ResultStatus::Succeeded);
    let frames = frames.lock().unwrap().clone();
    assert_eq!(frames.len(), 1);
    let frame = &frames[0];
    assert_eq!(frame["transport"], "jsonrpc_over_websocket");
    assert_eq!(frame["jsonrpc"], "2.0");
    assert_eq!(frame["method"], "execution.execute");
    let params = &frame["params"];
    assert_eq!(params["lane_id"], "process");
    assert_eq!(params["target_descriptor"]["target_id"], "remote-target-1");
    assert_eq!(params["target_descriptor"]["verifier_id"], STUB_VERIFIER);
    assert_eq!(
        params["execution_ref"]["ref"],
        result.execution_ref.as_str()
    );
    assert_eq!(
        params["admission_request"]["request_id"],
        request_id.as_str()
    );
    assert_eq!(
        params["payload"],
        json!({"command": "echo", "argv": ["ok"]})
    );
    assert_eq!(params["provenance"]["kind"], "node_admitted");
}

#[tokio::test]
async fn node_with_no_verified_target_returns_a_rejected_result() {
    let rt = runtime_without_target();
    let request = governed_request();
    let provenance = request.provenance.clone();
    let result = rt.node.execute(request).await;
    assert_eq!(result.status, ResultStatus::Rejected);
    let error = result.error.unwrap();
    assert_eq!(error["reason"], "no_satisfying_attested_target");
    assert_eq!(result.provenance, provenance);
    assert!(result.execution_ref.as_str().starts_with("exec-"));
    assert!(rt.node.describe().verified_targets.is_empty());
    assert_eq!(rt.evidence_types(), ["admission.rejected"]);
}

#[tokio::test]
async fn rejected_executions_get_fresh_refs_that_cancel_does_not_know() {
    let rt = runtime_without_target();
    let a = rt.node.execute(governed_request()).await;
    let b = rt.node.execute(governed_request()).await;
    assert_ne!(a.execution_ref, b.execution_ref);
    assert!(matches!(
        rt.node.cancel(&a.execution_ref).await,
        Err(RuntimeError::UnknownExecutionRef(_))
    ));
}

#[tokio::test]
async fn acceptable_set_excluding_the_weak_class_is_rejected_on_execute() {
    let rt = runtime().await;
    let mut request = governed_request();
    request.acceptable_attestation = AcceptableAttestation::of([STRONG]);
    let result = rt.node.execute(request).await;
    assert_eq!(result.status, ResultStatus::Rejected);
    assert_eq!(
        result.error.unwrap()["reason"],
        "no_satisfying_attested_target"
    );
}

#[tokio::test]
async fn one_execute_dispatches_to_exactly_one_of_two_equivalent_targets() {
    let (rt, frames) = remote_runtime(&["remote-target-1", "remote-target-2"]).await;
    let result = rt.node.execute(governed_request()).await;
    assert_eq!(result.status, ResultStatus::Succeeded);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let frames = frames.lock().unwrap().clone();
    assert_eq!(frames.len(), 1, "no fallback, no fan-out: {frames:?}");
    assert_eq!(frames[0]["method"], "execution.execute");
    let target_id = frames[0]["params"]["target_descriptor"]["target_id"]
        .as_str()
        .unwrap();
    assert!(["remote-target-1", "remote-target-2"].contains(&target_id));
}

#[tokio::test]
async fn failed_target_is_not_retried_on_another_target() {
    let (rt, frames) = remote_runtime(&["remote-target-1", "remote-target-2"]).await;
    let mut request = governed_request();
    request.payload.insert("invalid".into(), json!(true));
    let result = rt.node.execute(request).await;
    assert_eq!(result.status, ResultStatus::Rejected);
    assert_eq!(result.error.unwrap()["reason"], "invalid_lane_request");
    assert_eq!(frames.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn governed_http_request_reaches_the_attested_http_target() {
    let rt = http_runtime().await;
    let mut request = governed_request();
    request.lane_id = "http".into();
    request.payload =
        serde_json::from_value(json!({"method": "GET", "url": "https://example.test"})).unwrap();
    request.acceptable_attestation = AcceptableAttestation::of([HTTP_STUB]);
    let result = LocalRuntimeClient::new(rt.node.clone())
        .execute(request)
        .await;
    assert_eq!(result.status, ResultStatus::Succeeded);
    assert_eq!(
        serde_json::Value::Object(result.output),
        json!({"http": "ok"})
    );
    let selected = rt
        .sink
        .records()
        .into_iter()
        .find(|e| e.evidence_type.as_deref() == Some("target.selected"))
        .unwrap();
    assert_eq!(selected.target_id.as_deref(), Some("http-target-1"));
    assert_eq!(selected.attestation_class.as_deref(), Some(HTTP_STUB));
}

#[tokio::test]
async fn lane_validation_refusal_is_a_rejected_result() {
    let rt = runtime().await;
    let mut request = governed_request();
    request.payload.insert("invalid".into(), json!(true));
    let result = rt.node.execute(request).await;
    assert_eq!(result.status, ResultStatus::Rejected);
    let error = result.error.unwrap();
    assert_eq!(error["reason"], "invalid_lane_request");
    assert_eq!(error["message"], "fake lane refuses invalid payloads");
}

#[tokio::test]
async fn direct_execution_runs_through_the_built_in_in_process_client() {
    let rt = Runtime::empty();
    rt.node.register_lane(Arc::new(FakeLane));
    let result = rt.node.execute(direct_request()).await;
    assert_eq!(result.status, ResultStatus::Succeeded);
    assert_eq!(result.output["ok"], json!(true));
    assert_eq!(
        rt.evidence_types(),
        [
            "execution.started",
            "dispatch.started",
            "dispatch.completed",
            "execution.completed"
        ],
        "direct executions skip admission evidence only"
    );
    let started = &rt.sink.records()[0];
    assert_eq!(started.target_id, None);
    assert!(started.payload["target_descriptor"].is_null());
    assert!(matches!(
        rt.node.cancel(&result.execution_ref).await,
        Err(RuntimeError::ExecutionEnded(_))
    ));
}

#[tokio::test]
async fn cancel_after_the_end_is_execution_ended_and_records_nothing() {
    let rt = runtime().await;
    let result = rt.node.execute(governed_request()).await;
    let before = rt.evidence_types();
    let err = rt.node.cancel(&result.execution_ref).await.unwrap_err();
    assert!(matches!(&err, RuntimeError::ExecutionEnded(r) if r == result.execution_ref.as_str()));
    assert_eq!(rt.evidence_types(), before);
    assert_eq!(
        before.last().map(String::as_str),
        Some("execution.completed")
    );
}

#[tokio::test]
async fn cancel_of_an_unknown_ref_is_unknown_execution_ref() {
    let rt = runtime().await;
    let err = rt
        .node
        .cancel(&ExecutionRef::from_string("exec-0-0"))
        .await
        .unwrap_err();
    assert!(matches!(&err, RuntimeError::UnknownExecutionRef(r) if r == "exec-0-0"));
    assert_eq!(err.to_string(), "unknown_execution_ref: exec-0-0");
    assert!(rt.sink.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_fires_the_running_lanes_cancel_signal() {
    let (started_tx, mut started_rx) = mpsc::unbounded_channel();
    let rt = runtime_on(Arc::new(CancelAwareLane {
        started: started_tx,
    }))
    .await;
    let node = rt.node.clone();
    let running = tokio::spawn(async move { node.execute(governed_request()).await });
    let reference = tokio::time::timeout(HANG_GUARD, started_rx.recv())
        .await
        .unwrap()
        .unwrap();
    rt.node.cancel(&reference).await.unwrap();
    let result = tokio::time::timeout(HANG_GUARD, running)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(result.status, ResultStatus::Failed);
    assert_eq!(result.output["cancelled"], json!(true));
    assert_eq!(result.execution_ref, reference);
    // Causal order: the cancel is written before the completion it caused, every time.
    assert_eq!(
        rt.evidence_types(),
        [
            "admission.accepted",
            "target.selected",
            "execution.started",
            "dispatch.started",
            "execution.cancelled",
            "dispatch.failed",
            "execution.completed"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executions_run_in_parallel() {
    let rt = runtime_on(Arc::new(BarrierLane(Arc::new(Barrier::new(2))))).await;
    let a = tokio::spawn({
        let node = rt.node.clone();
        async move { node.execute(governed_request()).await }
    });
    let b = tokio::spawn({
        let node = rt.node.clone();
        async move { node.execute(governed_request()).await }
    });
    let (a, b) = tokio::time::timeout(HANG_GUARD, async { (a.await, b.await) })
        .await
        .expect("both executions must be inside the lane at once");
    assert_eq!(a.unwrap().status, ResultStatus::Succeeded);
    assert_eq!(b.unwrap().status, ResultStatus::Succeeded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admission_and_describe_proceed_while_a_lane_runs() {
    let (started_tx, mut started_rx) = mpsc::unbounded_channel();
    let rt = runtime_on(Arc::new(CancelAwareLane {
        started: started_tx,
    }))
    .await;
    let node = rt.node.clone();
    let running = tokio::spawn(async move { node.execute(governed_request()).await });
    let reference = tokio::time::timeout(HANG_GUARD, started_rx.recv())
        .await
        .unwrap()
        .unwrap();
    // While the lane waits, the node keeps answering.
    assert!(rt.node.admit(governed_request()).await.is_ok());
    assert_eq!(rt.node.describe().verified_targets.len(), 1);
    rt.node.register_lane(Arc::new(FakeLane));
    rt.node.cancel(&reference).await.unwrap();
    tokio::time::timeout(HANG_GUARD, running)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn ended_executions_are_remembered_only_within_the_bounded_history() {
    let node = Node::builder()
        .node_id("node-bounded")
        .recent_executions(2)
        .build();
    node.register_lane(Arc::new(FakeLane));
    let refs: Vec<ExecutionRef> = {
        let mut refs = Vec::new();
        for _ in 0..3 {
            refs.push(node.execute(direct_request()).await.execution_ref);
        }
        refs
    };
    assert!(matches!(
        node.cancel(&refs[0]).await,
        Err(RuntimeError::UnknownExecutionRef(_))
    ));
    for reference in &refs[1..] {
        assert!(matches!(
            node.cancel(reference).await,
            Err(RuntimeError::ExecutionEnded(_))
        ));
    }
}

#[tokio::test]
async fn cancel_reports_the_target_clients_error() {
    let rt = runtime_without_target();
    rt.node
        .connect_target(
            valid_stub(),
            Arc::new(UnreachableCancelClient(
                ep_node::local_client::InProcessTargetClient::bound(rt.node.downgrade()),
            )),
            ConnectOptions::default(),
        )
        .await
        .unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    rt.node
        .register_lane(Arc::new(CancelAwareLane { started: tx }));
    let node = rt.node.clone();
    let running = tokio::spawn(async move { node.execute(governed_request()).await });
    let reference = tokio::time::timeout(HANG_GUARD, rx.recv())
        .await
        .unwrap()
        .unwrap();
    let err = rt.node.cancel(&reference).await.unwrap_err();
    running.abort();
    assert!(matches!(err, RuntimeError::Target(_)));
    let cancelled = rt
        .sink
        .records()
        .into_iter()
        .find(|e| e.evidence_type.as_deref() == Some("execution.cancelled"))
        .unwrap();
    assert_eq!(
        cancelled.evidence_type.as_deref(),
        Some("execution.cancelled")
    );
    assert_eq!(
        cancelled.payload["cancel_result"],
        "target target-1: connection refused"
    );
}

// ---------------------------------------------------------------------------------------------
// stream
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn stream_yields_the_lanes_events_and_records_its_start_and_end() {
    let rt = runtime().await;
    let events: Vec<_> = rt
        .node
        .stream(governed_request())
        .await
        .unwrap()
        .collect()
        .await;
    assert_eq!(
        event_types(&events),
        ["dispatch.started", "fake.chunk", "dispatch.completed"]
    );
    // The completion is written before the stream yields its closing event and its end.
    assert_eq!(
        rt.evidence_types(),
        [
            "admission.accepted",
            "target.selected",
            "execution.started",
            "dispatch.started",
            "dispatch.completed",
            "execution.completed"
        ]
    );
    let records = rt.sink.records();
    assert_eq!(records[2].payload["kind"], "stream");
    assert_eq!(records[5].payload["kind"], "stream");
    assert_eq!(records[5].payload["status"], "succeeded");
    assert_eq!(records[5].payload["event_count"], 1);
    assert_eq!(records[5].execution_ref, events[0].execution_ref);
    assert!(matches!(
        rt.node
            .cancel(events[0].execution_ref.as_ref().unwrap())
            .await,
        Err(RuntimeError::ExecutionEnded(_))
    ));
}

#[tokio::test]
async fn stream_rejected_by_admission_is_a_rejected_error() {
    let rt = runtime_without_target();
    let Err(RuntimeError::Rejected(rejection)) = rt.node.stream(governed_request()).await else {
        panic!("expected a rejection");
    };
    assert_eq!(rejection.reason, "no_satisfying_attested_target");
}

#[tokio::test]
async fn stream_on_a_unary_lane_is_not_supported() {
    let rt = http_runtime().await;
    let mut request = governed_request();
    request.lane_id = "http".into();
    request.acceptable_attestation = AcceptableAttestation::of([HTTP_STUB]);
    let Err(RuntimeError::Rejected(rejection)) = rt.node.stream(request).await else {
        panic!("expected a rejection");
    };
    assert_eq!(rejection.reason, "not_supported");
}

#[tokio::test]
async fn stream_goes_through_the_target_client_protocol() {
    let (rt, frames) = remote_runtime(&["remote-target-1"]).await;
    let events: Vec<_> = rt
        .node
        .stream(governed_request())
        .await
        .unwrap()
        .collect()
        .await;
    assert_eq!(
        event_types(&events),
        ["dispatch.started", "fake.chunk", "dispatch.completed"]
    );
    let frames = frames.lock().unwrap().clone();
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0]["method"], "execution.stream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_stream_fires_the_lanes_cancel_signal() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let rt = runtime_on(Arc::new(CancelAwareLane { started: tx })).await;
    let stream = rt.node.stream(governed_request()).await.unwrap();
    drop(stream);
    let reference = tokio::time::timeout(HANG_GUARD, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(reference.as_str().starts_with("exec-"));
}

// ---------------------------------------------------------------------------------------------
// runtime clients
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn local_runtime_client_delegates_to_the_node() {
    let rt = runtime().await;
    let client = LocalRuntimeClient::new(rt.node.clone());
    assert_eq!(client.describe().await.unwrap(), rt.node.describe());
    let decision = client.admit(governed_request()).await.unwrap();
    assert_eq!(decision.target_id.as_deref(), Some("target-1"));
    let result = client.execute(governed_request()).await;
    assert_eq!(result.status, ResultStatus::Succeeded);
    assert!(matches!(
        client.cancel(&result.execution_ref).await,
        Err(RuntimeError::ExecutionEnded(_))
    ));
    let events: Vec<_> = client
        .stream(governed_request())
        .await
        .unwrap()
        .collect()
        .await;
    assert_eq!(
        events.len(),
        3,
        "the lane's event between the two dispatch events"
    );
    // Read to its end: nothing records it as cancelled (an early drop would, off this task).
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    let cancels = rt
        .evidence_types()
        .into_iter()
        .filter(|t| t == "execution.cancelled")
        .count();
    assert_eq!(cancels, 0, "a stream read to its end is not cancelled");
    let mut request = governed_request();
    request.authority_ref = None;
    let Err(RuntimeError::Rejected(rejection)) = client.admit(request).await else {
        panic!("expected a rejection");
    };
    assert_eq!(rejection.reason, "authority_ref_missing");
}

async fn drive(client: &dyn RuntimeClient) -> (ResultStatus, serde_json::Value, String) {
    let result = client.execute(governed_request()).await;
    assert!(client.cancel(&result.execution_ref).await.is_err());
    let mut rejected = governed_request();
    rejected.acceptable_attestation = AcceptableAttestation::of([STRONG]);
    let rejection = client.execute(rejected).await;
    (
        result.status,
        serde_json::Value::Object(result.output),
        rejection.error.unwrap()["reason"]
            .as_str()
            .unwrap()
            .to_owned(),
    )
}

#[tokio::test]
async fn remote_runtime_client_can_replace_the_local_runtime_client() {
    let rt = runtime().await;
    let local = LocalRuntimeClient::new(rt.node.clone());
    let remote = JsonRoundTripClient(LocalRuntimeClient::new(rt.node.clone()));
    let via_local = drive(&local).await;
    let via_remote = drive(&remote).await;
    assert_eq!(via_local, via_remote);
    assert_eq!(via_local.0, ResultStatus::Succeeded);
    assert_eq!(via_local.2, "no_satisfying_attested_target");
    assert_eq!(
        remote.describe().await.unwrap(),
        local.describe().await.unwrap()
    );
}

// ---------------------------------------------------------------------------------------------
// how executions end: tokens, early drops, causal order
// ---------------------------------------------------------------------------------------------

/// Polls `rt`'s sink until `count` records are there (records of an early end are written off
/// the dropping task).
async fn wait_for_records(rt: &Runtime, count: usize) -> Vec<String> {
    tokio::time::timeout(HANG_GUARD, async {
        loop {
            let types = rt.evidence_types();
            if types.len() >= count {
                return types;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap_or_else(|_| rt.evidence_types())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_dropped_early_records_its_cancel_then_its_end() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let rt = runtime_on(Arc::new(CancelAwareLane { started: tx })).await;
    let open = rt.node.open_stream(governed_request()).await.unwrap();
    let reference = open.execution_ref.clone();
    drop(open);
    tokio::time::timeout(HANG_GUARD, rx.recv()).await.unwrap();
    let types = wait_for_records(&rt, 7).await;
    assert_eq!(
        types,
        [
            "admission.accepted",
            "target.selected",
            "execution.started",
            "dispatch.started",
            "execution.cancelled",
            "dispatch.failed",
            "execution.completed"
        ]
    );
    let records = rt.sink.records();
    assert_eq!(records[4].payload["cause"], "client_disconnected");
    assert_eq!(records[6].payload["status"], "failed");
    assert_eq!(records[6].payload["error"]["failure_class"], "cancellation");
    assert_eq!(records[6].execution_ref.as_ref(), Some(&reference));
    // Node::shutdown waits for such records before it flushes.
    rt.node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_stream_is_cancelled_once_and_ends_once() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let rt = runtime_on(Arc::new(CancelAwareLane { started: tx })).await;
    let open = rt.node.open_stream(governed_request()).await.unwrap();
    rt.node
        .cancel_with_cause(&open.execution_ref, "shutdown")
        .await
        .unwrap();
    tokio::time::timeout(HANG_GUARD, rx.recv()).await.unwrap();
    drop(open.events);
    let types = wait_for_records(&rt, 7).await;
    assert_eq!(
        types[3..],
        [
            "dispatch.started",
            "execution.cancelled",
            "dispatch.failed",
            "execution.completed"
        ]
    );
    let records = rt.sink.records();
    assert_eq!(records[4].payload["cause"], "shutdown");
    assert_eq!(records[4].payload["cancelled_by"], "host");
    assert_eq!(
        records[6].payload["error"]["failure_class"], "cancellation",
        "{:?}",
        records[6].payload
    );
    // Ended: a second cancel is refused and writes nothing.
    assert!(matches!(
        rt.node.cancel(&open.execution_ref).await,
        Err(RuntimeError::ExecutionEnded(_))
    ));
    assert_eq!(rt.sink.records().len(), 7);
}

#[tokio::test]
async fn only_the_execution_token_authorizes_a_call_that_names_the_execution() {
    let (tx, _rx) = mpsc::unbounded_channel();
    let rt = runtime_on(Arc::new(CancelAwareLane { started: tx })).await;
    let open = rt.node.open_stream(governed_request()).await.unwrap();
    let other = rt.node.open_stream(governed_request()).await.unwrap();
    assert!(open.token.as_str().starts_with("ept-"));
    assert_eq!(open.token.as_str().len(), 4 + 64);
    assert!(
        !format!("{:?}", open.token).contains(open.token.as_str()),
        "Debug redacts the token"
    );
    assert!(
        rt.node
            .authorize_execution(&open.execution_ref, open.token.as_str())
    );
    assert!(
        !rt.node
            .authorize_execution(&open.execution_ref, other.token.as_str())
    );
    assert!(!rt.node.authorize_execution(&open.execution_ref, ""));
    assert!(!rt.node.authorize_execution(
        &ExecutionRef::from_string("exec-unknown"),
        open.token.as_str()
    ));
    assert_ne!(open.execution_ref, other.execution_ref);
}
