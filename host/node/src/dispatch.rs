//! Dispatch: `execute`, `stream` and `cancel` after admission (§7.5–§7.7).
//!
//! An accepted request becomes an [`ExecutionRequest`] (the decision's execution ref, the
//! admission request, the stored target descriptor, lane, operation, payload, provenance) and
//! goes to exactly one client: the target's bound client, or the built-in in-process client for
//! direct lower-lane-owner requests. No lock is held while a lane runs, so executions proceed
//! in parallel.
//!
//! Both `execute` and `stream` record the execution under its ref before the client is called,
//! so `cancel` reaches it while it runs, and both write `execution.started` before and exactly
//! one `execution.completed` after (a stream when it ends or is dropped; see
//! [`crate::execution`]). When it ends the record moves into a bounded set of recently ended
//! executions (see [`crate::node::NodeBuilder::recent_executions`]), so a cancel that comes
//! after the end is told so (`execution_ended`) instead of being mistaken for an unknown ref.

use std::sync::Arc;

use ep_contracts::boundary::{
    AdmissionRejection, AdmissionRequest, ExecutionEvent, ExecutionRef, ExecutionRequest,
    ExecutionResult, Map, Provenance, RejectionReason, ResultStatus, RootVersion,
};

use crate::admission::{Admitted, AuthorityUse};
use crate::budget::Budget;
use crate::error::RuntimeError;
use crate::evidence::{
    EXECUTION_CANCELLED, EXECUTION_INPUT, EXECUTION_STARTED, cancelled_payload, started_payload,
};
use crate::execution::{ExecutionRecord, ExecutionToken, RecordedStream};
use crate::node::Node;
use crate::traits::{Dispatch, EventStream, Input, InputSlot};

/// Who asked for a cancel, recorded in `execution.cancelled` as `cancelled_by`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Canceller {
    /// The caller that started the execution (it presented the execution's token).
    Owner,
    /// The host's operator, or an in-process caller holding the node.
    Operator,
    /// The host itself (a shutdown).
    Host,
}

impl Canceller {
    fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Operator => "operator",
            Self::Host => "host",
        }
    }
}

/// An admitted stream: its execution ref, the capability token for later calls that name it
/// (cancel), and its events.
pub struct OpenStream {
    /// The execution the stream runs as.
    pub execution_ref: ExecutionRef,
    /// Hand this to the caller that opened the stream, and to nobody else.
    pub token: ExecutionToken,
    /// The events; drop to end the stream early.
    pub events: EventStream,
}

impl std::fmt::Debug for OpenStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenStream")
            .field("execution_ref", &self.execution_ref)
            .finish_non_exhaustive()
    }
}

/// While `execute` runs: if the caller drops the future before the completion is written,
/// records the early end (the caller went away) instead of losing it.
struct Running {
    node: Node,
    record: ExecutionRecord,
    execution_ref: ExecutionRef,
    provenance: Provenance,
    done: bool,
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let node = self.node.clone();
        let record = self.record.clone();
        let execution_ref = self.execution_ref.clone();
        let provenance = self.provenance.clone();
        self.node.spawn_record(async move {
            node.record_early_end(&record, &execution_ref, &provenance, "execute", None)
                .await;
        });
    }
}

impl Node {
    /// Records `dispatch.started` for an execution about to be handed to its target, answering
    /// it as the execution's first event; its end (`dispatch.completed` / `dispatch.failed`) is
    /// then recorded with its completion.
    async fn record_dispatch(
        &self,
        record: &ExecutionRecord,
        request: &ExecutionRequest,
        admitted: &Admitted,
        dispatch: &Dispatch,
    ) -> ExecutionEvent {
        record.lifecycle.lock().await.dispatched = true;
        let payload = crate::evidence::dispatch_started_payload(
            request.lane_id.as_deref().unwrap_or_default(),
            admitted.descriptor.as_ref().map(|d| d.target_id.as_str()),
            dispatch.deadline,
        );
        let event = crate::evidence::dispatch_started_event(&request.execution_ref, &payload);
        self.emit_in(&record.context, crate::evidence::DISPATCH_STARTED, payload)
            .await;
        event
    }

    /// Admission then dispatch. A rejection is a `rejected` result (fresh execution ref, the
    /// dumped rejection as `error`, the request's provenance); otherwise the target client's
    /// result, verbatim, with `execution.started` / `execution.completed` evidence around it.
    pub async fn execute(&self, request: AdmissionRequest) -> ExecutionResult {
        let admitted = match self.admit_request(&request, AuthorityUse::Dispatch).await {
            Ok(admitted) => admitted,
            Err(rejection) => {
                return rejected_result(ExecutionRef::mint(), request.provenance, &rejection);
            }
        };
        let provenance = request.provenance.clone();
        let (execution_request, record) = self.start_execution(request, &admitted);
        let mut running = Running {
            node: self.clone(),
            record: record.clone(),
            execution_ref: execution_request.execution_ref.clone(),
            provenance,
            done: false,
        };
        self.emit_in(
            &record.context,
            EXECUTION_STARTED,
            with_kind(started_payload(&execution_request), "execute"),
        )
        .await;
        let lane_evidence = ep_lane_api::LaneEvidence::default();
        let lane_id = execution_request.lane_id.clone().unwrap_or_default();
        let mut result = match admitted.budget {
            Budget::Expired { overdue_ms } => {
                let mut result = ExecutionResult {
                    status: ResultStatus::Failed,
                    error: Some(expired_failure(overdue_ms)),
                    provenance: execution_request.provenance.clone(),
                    ..ExecutionResult::succeeded(
                        execution_request.execution_ref.clone(),
                        Map::new(),
                    )
                };
                result
                    .events
                    .push(crate::evidence::dispatch_finished_event(&result));
                result
            }
            budget => match crate::simulation::descriptor(&execution_request) {
                // The kernel answers from the scenario: the lane is never called.
                Some(descriptor) => crate::simulation::simulate(&execution_request, descriptor),
                None => {
                    let dispatch = Dispatch {
                        deadline: budget.deadline(),
                        evidence: lane_evidence.clone(),
                        ..Dispatch::default()
                    };
                    let started = self
                        .record_dispatch(&record, &execution_request, &admitted, &dispatch)
                        .await;
                    let mut result = admitted.client.execute(execution_request, dispatch).await;
                    // The execution's events: dispatch.started, the lane's, then how it ended.
                    result.events.insert(0, started);
                    result
                        .events
                        .push(crate::evidence::dispatch_finished_event(&result));
                    result
                }
            },
        };
        let denials = show_denials(&lane_evidence, &lane_id, &mut result.evidence);
        self.record_completion(
            &record,
            running.execution_ref.as_str(),
            &result,
            "execute",
            None,
            denials,
        )
        .await;
        running.done = true;
        result
    }

    /// Admission then the target client's stream. A rejection (by admission or by the lane)
    /// is [`RuntimeError::Rejected`]. The node records the stream's start and its end (when
    /// it ends, or when the stream is dropped before its end); drop the stream to end it.
    pub async fn stream(&self, request: AdmissionRequest) -> Result<EventStream, RuntimeError> {
        self.open_stream(request).await.map(|open| open.events)
    }

    /// [`Node::stream`], also answering the execution ref the stream runs under and the
    /// capability token a served caller needs to name it later (to cancel it).
    pub async fn open_stream(&self, request: AdmissionRequest) -> Result<OpenStream, RuntimeError> {
        let admitted = self
            .admit_request(&request, AuthorityUse::Dispatch)
            .await
            .map_err(RuntimeError::Rejected)?;
        let provenance = request.provenance.clone();
        let token = ExecutionToken::mint();
        let (input, slot) = InputSlot::channel();
        let lane_evidence = ep_lane_api::LaneEvidence::default();
        let (execution_request, record) =
            self.start_execution_with(request, &admitted, &token, Some(input));
        let execution_ref = execution_request.execution_ref.clone();
        let lane_id = execution_request.lane_id.clone().unwrap_or_default();
        self.emit_in(
            &record.context,
            EXECUTION_STARTED,
            with_kind(started_payload(&execution_request), "stream"),
        )
        .await;
        let mut started = None;
        let opened = match admitted.budget {
            Budget::Expired { overdue_ms } => Ok(expired_stream(&execution_ref, overdue_ms)),
            _ if crate::simulation::descriptor(&execution_request).is_some() => {
                let mut rejection = AdmissionRejection::new(
                    RejectionReason::InvalidLaneRequest,
                    "metadata.lower_simulation answers unary executions (/v1/execute); a process \
                     stream plays a scenario with payload surface_kind lower_simulation",
                );
                rejection
                    .details
                    .insert("field".to_owned(), "metadata.lower_simulation".into());
                Err(rejection)
            }
            budget => {
                let dispatch = Dispatch {
                    deadline: budget.deadline(),
                    input: slot,
                    evidence: lane_evidence.clone(),
                };
                started = Some(
                    self.record_dispatch(&record, &execution_request, &admitted, &dispatch)
                        .await,
                );
                admitted.client.stream(execution_request, dispatch).await
            }
        };
        match opened {
            Ok(events) => Ok(OpenStream {
                events: Box::pin(RecordedStream::new(
                    events,
                    self.clone(),
                    record,
                    execution_ref.clone(),
                    provenance,
                    (lane_evidence, lane_id),
                    started,
                )),
                execution_ref,
                token,
            }),
            Err(rejection) => {
                let mut result = rejected_result(execution_ref.clone(), provenance, &rejection);
                let denials = show_denials(&lane_evidence, &lane_id, &mut result.evidence);
                self.record_completion(
                    &record,
                    execution_ref.as_str(),
                    &result,
                    "stream",
                    Some(0),
                    denials,
                )
                .await;
                Err(RuntimeError::Rejected(rejection))
            }
        }
    }

    fn start_execution(
        &self,
        request: AdmissionRequest,
        admitted: &Admitted,
    ) -> (ExecutionRequest, ExecutionRecord) {
        self.start_execution_with(request, admitted, &ExecutionToken::mint(), None)
    }

    /// Records the execution as running (with the digest of `token`, and the sending end of
    /// its input channel for a stream) and builds its request.
    fn start_execution_with(
        &self,
        request: AdmissionRequest,
        admitted: &Admitted,
        token: &ExecutionToken,
        input: Option<tokio::sync::mpsc::Sender<Input>>,
    ) -> (ExecutionRequest, ExecutionRecord) {
        let execution_request = execution_request(request, admitted);
        let mut record = ExecutionRecord::new(
            Arc::clone(&admitted.client),
            admitted.context.clone(),
            token,
        );
        record.input = input;
        self.executions().start(
            execution_request.execution_ref.as_str().to_owned(),
            record.clone(),
        );
        (execution_request, record)
    }

    /// Whether `token` is the capability token of execution `execution_ref` (running or
    /// recently ended). `false` for an unknown ref too, so a caller learns nothing about
    /// executions it does not hold the token of.
    pub fn authorize_execution(&self, execution_ref: &ExecutionRef, token: &str) -> bool {
        self.executions()
            .lookup(execution_ref.as_str())
            .is_some_and(|record| record.token_matches(token))
    }

    /// Cancels a running execution through the client that runs it and records
    /// `execution.cancelled`. An unknown ref is [`RuntimeError::UnknownExecutionRef`]; an
    /// execution that already ended is [`RuntimeError::ExecutionEnded`] (and nothing is
    /// recorded); the client's error is [`RuntimeError::Target`]. The caller is trusted: an
    /// in-process caller or the host's operator (a served owner goes through
    /// [`Node::cancel_by`] after [`Node::authorize_execution`]).
    pub async fn cancel(&self, execution_ref: &ExecutionRef) -> Result<(), RuntimeError> {
        self.cancel_inner(execution_ref, Canceller::Operator, None)
            .await
    }

    /// [`Node::cancel`] naming who asked, recorded as `cancelled_by`.
    pub async fn cancel_by(
        &self,
        execution_ref: &ExecutionRef,
        by: Canceller,
    ) -> Result<(), RuntimeError> {
        self.cancel_inner(execution_ref, by, None).await
    }

    /// [`Node::cancel`] on the host's own initiative (`"shutdown"`, say): the
    /// `execution.cancelled` record names `cause`, so evidence tells it from a caller's cancel.
    pub async fn cancel_with_cause(
        &self,
        execution_ref: &ExecutionRef,
        cause: &str,
    ) -> Result<(), RuntimeError> {
        self.cancel_inner(execution_ref, Canceller::Host, Some(cause))
            .await
    }

    /// Sends `input` to the running stream `execution_ref` (waiting while the lane has
    /// [`ep_lane_api::INPUT_BUFFER`] inputs it has not taken) and records `execution.input`
    /// with its kind and size, never its bytes. The caller is trusted like [`Node::cancel`]'s:
    /// a served caller is authorized first ([`Node::authorize_execution`]).
    pub async fn send_input(
        &self,
        execution_ref: &ExecutionRef,
        input: Input,
    ) -> Result<(), RuntimeError> {
        let reference = execution_ref.as_str();
        let record = self
            .executions()
            .lookup(reference)
            .ok_or_else(|| RuntimeError::UnknownExecutionRef(reference.to_owned()))?;
        if record.lifecycle.lock().await.ended {
            return Err(RuntimeError::ExecutionEnded(reference.to_owned()));
        }
        let Some(sender) = record.input.clone() else {
            return Err(RuntimeError::InputNotAccepted(reference.to_owned()));
        };
        let kind = input.kind();
        let bytes = match &input {
            Input::Data(bytes) => bytes.len(),
            Input::End | Input::Interrupt => 0,
        };
        match tokio::time::timeout(INPUT_WAIT, sender.send(input)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(RuntimeError::InputNotAccepted(reference.to_owned())),
            Err(_) => return Err(RuntimeError::InputBusy(reference.to_owned())),
        }
        self.emit_in(
            &record.context,
            EXECUTION_INPUT,
            serde_json::json!({"execution_ref": reference, "input": kind, "bytes": bytes}),
        )
        .await;
        self.settle().await;
        Ok(())
    }

    async fn cancel_inner(
        &self,
        execution_ref: &ExecutionRef,
        by: Canceller,
        cause: Option<&str>,
    ) -> Result<(), RuntimeError> {
        let record = self
            .executions()
            .lookup(execution_ref.as_str())
            .ok_or_else(|| RuntimeError::UnknownExecutionRef(execution_ref.as_str().to_owned()))?;
        let mut life = record.lifecycle.lock().await;
        if life.ended {
            return Err(RuntimeError::ExecutionEnded(
                execution_ref.as_str().to_owned(),
            ));
        }
        let outcome = record.client.cancel(execution_ref).await;
        let mut payload = cancelled_payload(execution_ref, &outcome, cause);
        if let serde_json::Value::Object(map) = &mut payload {
            map.insert("cancelled_by".to_owned(), by.as_str().into());
        }
        self.emit_in(&record.context, EXECUTION_CANCELLED, payload)
            .await;
        if outcome.is_ok() && life.cancel_cause.is_none() {
            life.cancel_cause = Some(cause.unwrap_or("request").to_owned());
        }
        drop(life);
        self.settle().await;
        outcome.map_err(RuntimeError::from)
    }
}

/// Adds `"kind": "execute" | "stream"` to a started record, so readers of the evidence tell
/// the two apart.
fn with_kind(mut payload: serde_json::Value, kind: &str) -> serde_json::Value {
    if let serde_json::Value::Object(map) = &mut payload {
        map.insert("kind".to_owned(), kind.into());
    }
    payload
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

pub use ep_lane_api::rejected_result;

/// How long `send_input` waits for a lane that has not taken the inputs sent before.
pub const INPUT_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Event type of the one event of a stream whose deadline passed before dispatch.
pub const DISPATCH_FAILED: &str = "dispatch.failed";

/// The `timeout` failure of a request whose `deadline_at` passed `overdue_ms` before dispatch:
/// the lane was never called.
fn expired_failure(overdue_ms: u64) -> serde_json::Value {
    ep_contracts::Failure::new(
        ep_contracts::FailureClass::Timeout,
        "the request's deadline_at passed before it was dispatched; the lane was not called",
    )
    .with_detail("cause", "deadline_expired")
    .with_detail("overdue_ms", overdue_ms)
    .to_value()
}

/// The stream of a request whose deadline passed before dispatch: one final `dispatch.failed`
/// event reporting the `timeout`.
fn expired_stream(execution_ref: &ExecutionRef, overdue_ms: u64) -> EventStream {
    let result = ExecutionResult {
        status: ResultStatus::Failed,
        error: Some(expired_failure(overdue_ms)),
        ..ExecutionResult::succeeded(execution_ref.clone(), Map::new())
    };
    let event = crate::evidence::dispatch_finished_event(&result);
    Box::pin(futures::stream::iter([event]))
}

/// Takes the capability denials a lane reported through `lane_evidence`, appends their
/// entries to the evidence the caller sees (`shown`) and answers them for records of their own
/// (so a denial is never only a field inside a completion).
pub(crate) fn show_denials(
    lane_evidence: &ep_lane_api::LaneEvidence,
    lane_id: &str,
    shown: &mut Vec<serde_json::Value>,
) -> Vec<serde_json::Value> {
    let entries: Vec<serde_json::Value> = lane_evidence
        .take_denials()
        .iter()
        .map(|denial| denial.to_value(lane_id))
        .collect();
    shown.extend(entries.iter().cloned());
    entries
}
