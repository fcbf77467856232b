//! A lane: one kind of lower I/O (HTTP, a process, ...). Wasm and native lanes both implement
//! [`LaneAdapter`].

use async_trait::async_trait;
use ep_contracts::Contract;
use ep_contracts::boundary::{
    AdmissionRejection, ExecutionEvent, ExecutionRef, ExecutionRequest, ExecutionResult,
    LaneCapabilities, Provenance, ResultStatus,
};
use futures::stream::BoxStream;

use crate::context::ExecutionContext;

/// Event type of the final event of a stream whose lane reported a successful outcome:
/// payload `{"status": "succeeded", "output": {...}, "metrics": {...}}`; the stream's result
/// carries that output.
pub const STREAM_COMPLETED_EVENT: &str = "lane.completed";

/// A stream of execution events; ends when the execution ends.
pub type EventStream = BoxStream<'static, ExecutionEvent>;

/// A lane: one kind of lower I/O (HTTP, process, ...). Wasm and native lanes both implement it.
#[async_trait]
pub trait LaneAdapter: Send + Sync {
    /// The lane id requests name.
    fn lane_id(&self) -> &str;

    /// What the lane can do (reported by `describe`).
    fn capabilities(&self) -> LaneCapabilities;

    /// Refuses requests the lane cannot run, before any I/O. Async, because a lane may need to
    /// ask something that answers later (a wasm guest, a remote agent) to decide.
    async fn validate(&self, request: &ExecutionRequest) -> Result<(), AdmissionRejection>;

    /// Runs the request to completion; failures are a `failed` result, never a panic.
    async fn execute(&self, request: ExecutionRequest, ctx: ExecutionContext) -> ExecutionResult;

    /// `validate`, then `execute`, as one call: a lane whose validation needs an isolate of its
    /// own (a wasm lane) overrides it to validate and execute in one. A refusal is a `rejected`
    /// result carrying the rejection, exactly as if `validate` had refused.
    async fn validate_and_execute(
        &self,
        request: ExecutionRequest,
        ctx: ExecutionContext,
    ) -> ExecutionResult {
        if let Err(rejection) = self.validate(&request).await {
            return rejected_result(request.execution_ref, request.provenance, &rejection);
        }
        self.execute(request, ctx).await
    }

    /// Starts a stream of events, or refuses (`not_supported` for unary-only lanes).
    async fn stream(
        &self,
        request: ExecutionRequest,
        ctx: ExecutionContext,
    ) -> Result<EventStream, AdmissionRejection>;
}

/// The `rejected` result of a refused request, carrying the dumped rejection as `error`.
pub fn rejected_result(
    execution_ref: ExecutionRef,
    provenance: Provenance,
    rejection: &AdmissionRejection,
) -> ExecutionResult {
    ExecutionResult {
        execution_ref,
        status: ResultStatus::Rejected,
        error: Some(rejection.to_value()),
        provenance,
        ..ExecutionResult::default()
    }
}
