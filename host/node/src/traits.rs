//! The traits the node talks through: lanes (from `ep-lane-api`), target verifiers, target
//! clients, the authority verifier, evidence sinks, and the runtime client callers use. Hosts
//! register their own implementations; the node never depends on a concrete lane or verifier.

use std::sync::Arc;

use async_trait::async_trait;
use ep_contracts::boundary::{
    AdmissionDecision, AdmissionRejection, AdmissionRequest, AuthorityRef, Evidence, ExecutionRef,
    ExecutionRequest, ExecutionResult, Map, NodeDescriptor, TargetAttestation, TargetDescriptor,
};

use crate::error::{RuntimeError, SinkError, TargetError};

pub use ep_lane_api::{Deadline, EventStream, ExecutionContext, Input, InputSlot, LaneAdapter};

/// Options a host passes when connecting a target (e.g. the target id to assign).
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    /// Target id override.
    pub target_id: Option<String>,
    /// Lane id override.
    pub lane_id: Option<String>,
    /// Anything else a verifier needs.
    pub extra: Map,
}

/// Turns a target's raw attestation into a routing descriptor, or refuses it.
#[async_trait]
pub trait TargetVerifier: Send + Sync {
    /// Verifier id (recorded in descriptors and evidence).
    fn verifier_id(&self) -> &str;

    /// Attestation types it handles.
    fn attestation_types(&self) -> Vec<String>;

    /// The only classes its descriptors may carry.
    fn capability_classes(&self) -> Vec<String>;

    /// Whether it handles this attestation.
    fn handles(&self, attestation: &TargetAttestation) -> bool;

    /// Verifies the attestation and mints a descriptor.
    async fn verify(
        &self,
        attestation: &TargetAttestation,
        options: &ConnectOptions,
    ) -> Result<TargetDescriptor, AdmissionRejection>;
}

/// What the node planned for one execution, handed to its target with the request (typed
/// values, never request metadata).
#[derive(Debug, Clone, Default)]
pub struct Dispatch {
    /// When the execution must end (the kernel's effective timeout); `None` when the request
    /// set no budget, so the lane's default applies.
    pub deadline: Option<Deadline>,
    /// The caller's input to the execution (a stream's; empty for a unary execution).
    pub input: InputSlot,
}

/// The node's link to a target: in-process, or a remote agent.
#[async_trait]
pub trait TargetClient: Send + Sync {
    /// What the target says about itself.
    async fn describe(&self) -> Result<serde_json::Value, TargetError>;

    /// Runs an admitted request on `lane` at the target, within `dispatch`.
    async fn execute(
        &self,
        request: ExecutionRequest,
        lane: Arc<dyn LaneAdapter>,
        dispatch: Dispatch,
    ) -> ExecutionResult;

    /// Streams an admitted request on `lane` at the target, within `dispatch`.
    async fn stream(
        &self,
        request: ExecutionRequest,
        lane: Arc<dyn LaneAdapter>,
        dispatch: Dispatch,
    ) -> Result<EventStream, AdmissionRejection>;

    /// Cancels a running execution.
    async fn cancel(&self, execution_ref: &ExecutionRef) -> Result<(), TargetError>;
}

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
