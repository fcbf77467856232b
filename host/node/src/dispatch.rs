//! Dispatch: `execute`, `stream` and `cancel` after admission (§7.5–§7.7).
//!
//! An accepted request becomes an [`ExecutionRequest`] (the decision's execution ref, the
//! admission request, the stored target descriptor, lane, operation, payload, provenance) and
//! goes to exactly one client: the target's bound client, or the built-in in-process client for
//! direct lower-lane-owner requests. No lock is held while a lane runs, so executions proceed
//! in parallel.
//!
//! `execute` records the execution under its ref before the client is called, so `cancel`
//! reaches it while it runs; when it ends the record moves into a bounded set of recently
//! completed executions (see [`crate::node::NodeBuilder::recent_executions`]), so a cancel right
//! after completion still answers `Ok` without the table growing forever. `stream` records
//! nothing and emits no started/completed evidence (as upstream): the caller ends a stream by
//! dropping it.

use std::sync::Arc;

use ep_contracts::Contract;
use ep_contracts::boundary::{
    AdmissionRejection, AdmissionRequest, ExecutionRef, ExecutionRequest, ExecutionResult,
    Provenance, ResultStatus, RootVersion,
};

use crate::admission::Admitted;
use crate::error::RuntimeError;
use crate::evidence::{
    CAPABILITY_DENIED, EXECUTION_CANCELLED, EXECUTION_COMPLETED, EXECUTION_STARTED,
    EvidenceContext, bound, cancelled_payload, completed_payload, started_payload,
};
use crate::node::Node;
use crate::traits::{EventStream, TargetClient};

/// What the node remembers of an execution for `cancel`: the client that runs it and the
/// evidence context its cancellation is recorded in.
#[derive(Clone)]
pub(crate) struct ExecutionRecord {
    pub(crate) client: Arc<dyn TargetClient>,
    pub(crate) context: EvidenceContext,
}

/// Moves the execution from running to recent when `execute` ends, however it ends (even if
/// the caller drops the future).
struct Running {
    node: Node,
    reference: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.node.executions().finish(&self.reference);
    }
}

impl Node {
    /// Admission then dispatch. A rejection is a `rejected` result (fresh execution ref, the
    /// dumped rejection as `error`, the request's provenance); otherwise the target client's
    /// result, verbatim, with `execution.started` / `execution.completed` evidence around it.
    pub async fn execute(&self, request: AdmissionRequest) -> ExecutionResult {
        let admitted = match self.admit_request(&request).await {
            Ok(admitted) => admitted,
            Err(rejection) => {
                return rejected_result(ExecutionRef::mint(), request.provenance, &rejection);
            }
        };
        let Admitted {
            client,
            lane,
            context,
            ..
        } = &admitted;
        let execution_request = execution_request(request, &admitted);
        let reference = execution_request.execution_ref.as_str().to_owned();
        self.executions().start(
            reference.clone(),
            ExecutionRecord {
                client: Arc::clone(client),
                context: context.clone(),
            },
        );
        let _running = Running {
            node: self.clone(),
            reference,
        };
        self.emit_in(
            context,
            EXECUTION_STARTED,
            started_payload(&execution_request),
        )
        .await;
        let result = client.execute(execution_request, Arc::clone(lane)).await;
        for denial in capability_denials(&result) {
            self.emit_in(context, CAPABILITY_DENIED, bound(denial.clone()))
                .await;
        }
        self.emit_in(context, EXECUTION_COMPLETED, completed_payload(&result))
            .await;
        result
    }

    /// Admission then the target client's stream. A rejection (by admission or by the lane)
    /// is [`RuntimeError::Rejected`]. Drop the stream to end it; nothing records how it ended
    /// (the caller's part: `LocalRuntimeClient` records an early drop, the API its own causes).
    pub async fn stream(&self, request: AdmissionRequest) -> Result<EventStream, RuntimeError> {
        self.stream_with_ref(request)
            .await
            .map(|(_, events)| events)
    }

    /// [`Node::stream`], also answering the execution ref the stream runs under, so a host
    /// that serves the stream can name the execution even before its first event (to record
    /// how the stream ended).
    pub async fn stream_with_ref(
        &self,
        request: AdmissionRequest,
    ) -> Result<(ExecutionRef, EventStream), RuntimeError> {
        let admitted = self
            .admit_request(&request)
            .await
            .map_err(RuntimeError::Rejected)?;
        let client = Arc::clone(&admitted.client);
        let lane = Arc::clone(&admitted.lane);
        let execution_request = execution_request(request, &admitted);
        let execution_ref = execution_request.execution_ref.clone();
        client
            .stream(execution_request, lane)
            .await
            .map(|events| (execution_ref, events))
            .map_err(RuntimeError::Rejected)
    }

    /// Cancels a running (or recently completed) execution through the client that runs it
    /// and records `execution.cancelled`. An unknown ref is
    /// [`RuntimeError::UnknownExecutionRef`]; the client's error is [`RuntimeError::Target`].
    pub async fn cancel(&self, execution_ref: &ExecutionRef) -> Result<(), RuntimeError> {
        self.cancel_inner(execution_ref, None).await
    }

    /// [`Node::cancel`] on the host's own initiative (`"shutdown"`, say): the
    /// `execution.cancelled` record names `cause`, so evidence tells it from a caller's cancel.
    pub async fn cancel_with_cause(
        &self,
        execution_ref: &ExecutionRef,
        cause: &str,
    ) -> Result<(), RuntimeError> {
        self.cancel_inner(execution_ref, Some(cause)).await
    }

    async fn cancel_inner(
        &self,
        execution_ref: &ExecutionRef,
        cause: Option<&str>,
    ) -> Result<(), RuntimeError> {
        let record = self
            .executions()
            .lookup(execution_ref.as_str())
            .ok_or_else(|| RuntimeError::UnknownExecutionRef(execution_ref.as_str().to_owned()))?;
        let outcome = record.client.cancel(execution_ref).await;
        self.emit_in(
            &record.context,
            EXECUTION_CANCELLED,
            cancelled_payload(execution_ref, &outcome, cause),
        )
        .await;
        outcome.map_err(RuntimeError::from)
    }
}

/// The request a target client receives for an accepted admission.
fn execution_request(request: AdmissionRequest, admitted: &Admitted) -> ExecutionRequest {
    ExecutionRequest {
        contract_version: RootVersion,
        execution_ref: admitted
            .decision
            .execution_ref
            .clone()
            .unwrap_or_else(ExecutionRef::mint),
        target_descriptor: admitted.descriptor.clone(),
        lane_id: Some(request.lane_id.clone()),
        operation: request.operation.clone(),
        payload: request.payload.clone(),
        provenance: request.provenance.clone(),
        admission_request: Some(request),
        metadata: ep_contracts::boundary::Map::new(),
    }
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

/// The lane evidence entries that report a refused capability (`"kind": "capability.denied"`):
/// each becomes a `capability.denied` record of its own, so a denial is never only a field
/// inside a completion.
fn capability_denials(result: &ExecutionResult) -> impl Iterator<Item = &serde_json::Value> {
    result.evidence.iter().filter(|entry| {
        entry.get("kind").and_then(serde_json::Value::as_str) == Some(CAPABILITY_DENIED)
    })
}
