//! The kernel's effective timeout on the execution path: admission plans the budget of
//! `metadata.timeout_ms` and `metadata.deadline_at`, the lane gets it as a typed deadline, an
//! already-passed deadline is an immediate `timeout` that never reaches the lane (unary and
//! stream), and a budget that does not read is refused before the lane or the target is asked.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use ep_contracts::boundary::{
    AdmissionRejection, AdmissionRequest, ExecutionRequest, ExecutionResult, LaneCapabilities,
    ResultStatus,
};
use ep_node::{EventStream, ExecutionContext, LaneAdapter};
use futures::StreamExt;
use serde_json::{Value, json};
use support::*;

/// Lane `process` that reports the deadline it was handed and counts every call.
#[derive(Default)]
struct DeadlineLane {
    calls: AtomicUsize,
}

#[async_trait]
impl LaneAdapter for DeadlineLane {
    fn lane_id(&self) -> &str {
        "process"
    }
    fn capabilities(&self) -> LaneCapabilities {
        LaneCapabilities {
            lane_id: Some("process".to_owned()),
            supports_execute: true,
            supports_stream: true,
            ..LaneCapabilities::default()
        }
    }
    async fn validate(&self, _request: &ExecutionRequest) -> Result<(), AdmissionRejection> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    async fn execute(&self, request: ExecutionRequest, ctx: ExecutionContext) -> ExecutionResult {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let budget_ms = ctx
            .deadline
            .map(|deadline| u64::try_from(deadline.budget().as_millis()).unwrap());
        ExecutionResult::succeeded(request.execution_ref, obj(json!({"budget_ms": budget_ms})))
    }
    async fn stream(
        &self,
        _request: ExecutionRequest,
        _ctx: ExecutionContext,
    ) -> Result<EventStream, AdmissionRejection> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(futures::stream::empty().boxed())
    }
}

fn with_metadata(metadata: Value) -> AdmissionRequest {
    let mut request = governed_request();
    request.metadata = obj(metadata);
    request
}

#[tokio::test]
async fn the_lane_gets_the_smallest_planned_budget_as_a_typed_deadline() {
    let lane = Arc::new(DeadlineLane::default());
    let rt = runtime_on(Arc::clone(&lane) as Arc<dyn LaneAdapter>).await;
    let unset = rt.node.execute(governed_request()).await;
    assert_eq!(unset.status, ResultStatus::Succeeded, "{unset:?}");
    assert_eq!(
        unset.output["budget_ms"],
        Value::Null,
        "no budget: the lane's default"
    );
    let asked = rt
        .node
        .execute(with_metadata(json!({"timeout_ms": 250})))
        .await;
    assert_eq!(asked.output["budget_ms"], 250);
    // A deadline an hour away does not lengthen a 250 ms budget; a nearer one shortens it.
    let both = rt
        .node
        .execute(with_metadata(
            json!({"timeout_ms": 250, "deadline_at": rfc3339_in(3600)}),
        ))
        .await;
    assert_eq!(both.output["budget_ms"], 250);
    let near = rt
        .node
        .execute(with_metadata(
            json!({"timeout_ms": 60_000, "deadline_at": rfc3339_in(30)}),
        ))
        .await;
    let near_ms = near.output["budget_ms"].as_u64().unwrap();
    assert!((28_000..=30_000).contains(&near_ms), "{near:?}");
}

#[tokio::test]
async fn a_passed_deadline_is_an_immediate_timeout_that_never_reaches_the_lane() {
    let lane = Arc::new(DeadlineLane::default());
    let rt = runtime_on(Arc::clone(&lane) as Arc<dyn LaneAdapter>).await;
    let result = rt
        .node
        .execute(with_metadata(json!({"deadline_at": rfc3339_in(-5)})))
        .await;
    assert_eq!(result.status, ResultStatus::Failed, "{result:?}");
    let error = result.error.as_ref().unwrap();
    assert_eq!(error["failure_class"], "timeout", "{error}");
    assert_eq!(error["details"]["cause"], "deadline_expired", "{error}");
    assert!(
        error["details"]["overdue_ms"].as_u64().unwrap() >= 4_000,
        "{error}"
    );
    assert_eq!(lane.calls.load(Ordering::SeqCst), 0, "the lane was called");
    // Nothing was dispatched: the one event says the dispatch failed, with the failure.
    assert_eq!(result.events.len(), 1, "{:?}", result.events);
    assert_eq!(
        result.events[0].event_type.as_deref(),
        Some("dispatch.failed")
    );
    assert_eq!(
        result.events[0].payload["error"]["failure_class"],
        "timeout"
    );
    // The execution is recorded like any other: started, then completed with the timeout.
    let types = rt.evidence_types();
    assert!(types.contains(&"execution.started".to_owned()), "{types:?}");
    assert!(
        types.contains(&"execution.completed".to_owned()),
        "{types:?}"
    );

    // A stream: one final `dispatch.failed` event, the lane never asked.
    let events: Vec<_> = rt
        .node
        .stream(with_metadata(json!({"deadline_at": rfc3339_in(-1)})))
        .await
        .unwrap()
        .collect()
        .await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].event_type.as_deref(), Some("dispatch.failed"));
    assert_eq!(events[0].payload["status"], "failed");
    assert_eq!(events[0].payload["error"]["failure_class"], "timeout");
    assert_eq!(lane.calls.load(Ordering::SeqCst), 0, "the lane was called");
}

#[tokio::test]
async fn a_budget_that_does_not_read_is_refused_at_admission() {
    let lane = Arc::new(DeadlineLane::default());
    let rt = runtime_on(Arc::clone(&lane) as Arc<dyn LaneAdapter>).await;
    for (metadata, field) in [
        (json!({"timeout_ms": 0}), "metadata.timeout_ms"),
        (json!({"timeout_ms": "soon"}), "metadata.timeout_ms"),
        (json!({"deadline_at": "tomorrow"}), "metadata.deadline_at"),
    ] {
        let result = rt.node.execute(with_metadata(metadata.clone())).await;
        assert_eq!(result.status, ResultStatus::Rejected, "{metadata}");
        let error = result.error.as_ref().unwrap();
        assert_eq!(error["reason"], "invalid_lane_request", "{error}");
        assert_eq!(error["details"]["field"], field, "{error}");
    }
    assert_eq!(lane.calls.load(Ordering::SeqCst), 0);
    let types = rt.evidence_types();
    assert!(types.iter().all(|t| t != "execution.started"), "{types:?}");
    assert!(
        types.contains(&"admission.rejected".to_owned()),
        "{types:?}"
    );
}
