//! Targets: where an execution runs. A [`TargetVerifier`] turns a target's attestation into a
//! routing descriptor; a [`TargetClient`] runs admitted requests where the target lives. A
//! client is handed the request and the node's plan for it, never a lane object: an SSH host or
//! a guest agent cannot take one, and the in-process target owns the lanes it runs.

use async_trait::async_trait;
use ep_contracts::boundary::{
    AdmissionRejection, ExecutionRef, ExecutionRequest, ExecutionResult, Map, TargetAttestation,
    TargetDescriptor,
};
use thiserror::Error;

use crate::context::Deadline;
use crate::evidence::LaneEvidence;
use crate::input::InputSlot;
use crate::lane::EventStream;

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
    /// Where the lane reports what it refused or observed; the node records it.
    pub evidence: LaneEvidence,
}

/// A target client call failed.
#[derive(Debug, Error)]
pub enum TargetError {
    /// The target could not be reached or answered wrongly.
    #[error("target {target_id}: {message}")]
    Unavailable {
        /// The target.
        target_id: String,
        /// Why.
        message: String,
    },
}

/// The node's link to a target: in-process, or a remote agent. The target runs the request on
/// the lane the request names, where it lives.
#[async_trait]
pub trait TargetClient: Send + Sync {
    /// What the target says about itself.
    async fn describe(&self) -> Result<serde_json::Value, TargetError>;

    /// Runs an admitted request at the target, within `dispatch`.
    async fn execute(&self, request: ExecutionRequest, dispatch: Dispatch) -> ExecutionResult;

    /// Streams an admitted request at the target, within `dispatch`.
    async fn stream(
        &self,
        request: ExecutionRequest,
        dispatch: Dispatch,
    ) -> Result<EventStream, AdmissionRejection>;

    /// Cancels a running execution.
    async fn cancel(&self, execution_ref: &ExecutionRef) -> Result<(), TargetError>;
}
