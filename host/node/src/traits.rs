//! The traits the node talks through: lanes (from `ep-lane-api`), target verifiers, target
//! clients, the authority verifier, evidence sinks, and the runtime client callers use. Hosts
//! register their own implementations; the node never depends on a concrete lane or verifier.

use async_trait::async_trait;
use ep_contracts::boundary::{
    AdmissionDecision, AdmissionRejection, AdmissionRequest, AuthorityRef, Evidence, ExecutionRef,
    ExecutionResult, Map, NodeDescriptor,
};

use crate::error::{RuntimeError, SinkError};

pub use ep_lane_api::{
    ConnectOptions, Deadline, Dispatch, EventStream, ExecutionContext, Input, InputSlot,
    LaneAdapter, TargetClient, TargetVerifier,
};

/// Checks a caller's authority ref against the request it authorizes.
#[async_trait]
pub trait AuthorityVerifier: Send + Sync {
    /// Verifier id (recorded in evidence).
    fn verifier_id(&self) -> &str;

    /// Verifies `authority` for `request`; returns the verified claims. Admission only
    /// (`/v1/admit`) stops here: it must not use a single-use ref up.
    async fn verify(
        &self,
        authority: &AuthorityRef,
        request: &AdmissionRequest,
    ) -> Result<Map, AdmissionRejection>;

    /// Uses up a ref that `verify` accepted (its `claims`) because `request` is about to be
    /// dispatched; a refusal (the ref was already used) is the admission's rejection. The
    /// default keeps nothing: a verifier that does not override it accepts a ref again and
    /// again until it expires.
    async fn consume(
        &self,
        claims: &Map,
        request: &AdmissionRequest,
    ) -> Result<(), AdmissionRejection> {
        let _ = (claims, request);
        Ok(())
    }
}

/// Receives every evidence record the node emits.
#[async_trait]
pub trait EvidenceSink: Send + Sync {
    /// Sink id.
    fn sink_id(&self) -> &str;

    /// Records one piece of evidence. A sink may queue it (in order) and write it later:
    /// [`EvidenceSink::settle`] waits for it.
    async fn emit(&self, evidence: &Evidence) -> Result<(), SinkError>;

    /// Waits until everything this caller emitted is written as durably as the sink promises;
    /// the node calls it before it answers an execution, so no caller sees a result whose
    /// evidence could still be lost with the host process. Sinks that write in `emit` need
    /// not override it.
    async fn settle(&self) -> Result<(), SinkError> {
        Ok(())
    }

    /// Makes everything emitted so far durable (on stable storage).
    async fn flush(&self) -> Result<(), SinkError>;
}

/// What callers use to run executions; the in-process and remote clients both implement it and
/// pass the same conformance tests.
#[async_trait]
pub trait RuntimeClient: Send + Sync {
    /// The node's descriptor.
    async fn describe(&self) -> Result<NodeDescriptor, RuntimeError>;

    /// Admission only: no dispatch, nothing recorded.
    async fn admit(&self, request: AdmissionRequest) -> Result<AdmissionDecision, RuntimeError>;

    /// Admission then dispatch; a rejection is a `rejected` result.
    async fn execute(&self, request: AdmissionRequest) -> ExecutionResult;

    /// Admission then a stream of events.
    async fn stream(&self, request: AdmissionRequest) -> Result<EventStream, RuntimeError>;

    /// Cancels an execution by ref.
    async fn cancel(&self, execution_ref: &ExecutionRef) -> Result<(), RuntimeError>;

    /// Sends `input` (stdin bytes, end of input, an interrupt) to a running stream.
    async fn send_input(
        &self,
        execution_ref: &ExecutionRef,
        input: Input,
    ) -> Result<(), RuntimeError>;
}
