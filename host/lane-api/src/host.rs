//! [`LaneHost`]: what a host of lanes (the node) offers the lane and placement crates it loads:
//! registration, its in-process target and its evidence log. A lane crate is written against
//! this trait, so it never names the node and can be hosted by anything that implements it.

use std::sync::Arc;

use async_trait::async_trait;
use ep_contracts::boundary::{AdmissionRejection, TargetAttestation, TargetDescriptor};
use serde_json::Value;

use crate::lane::LaneAdapter;
use crate::target::{ConnectOptions, TargetClient, TargetVerifier};

/// A host of lanes, targets and their verifiers.
#[async_trait]
pub trait LaneHost: Send + Sync {
    /// Registers `lane` under its `lane_id()` (replacing a lane with the same id).
    fn register_lane(&self, lane: Arc<dyn LaneAdapter>);

    /// Stops serving the lane `lane_id`; whether one was registered.
    fn unregister_lane(&self, lane_id: &str) -> bool;

    /// Registers a target verifier (an id registered again replaces the earlier one).
    fn register_target_verifier(&self, verifier: Arc<dyn TargetVerifier>);

    /// Verifies `attestation` and routes its target to `client`.
    async fn connect_target(
        &self,
        attestation: TargetAttestation,
        client: Arc<dyn TargetClient>,
        options: ConnectOptions,
    ) -> Result<TargetDescriptor, AdmissionRejection>;

    /// Verifies `attestation` and routes its target to the host's in-process target, which
    /// runs each request on the lane registered under the request's lane id.
    async fn connect_in_process(
        &self,
        attestation: TargetAttestation,
        options: ConnectOptions,
    ) -> Result<TargetDescriptor, AdmissionRejection>;

    /// Removes the target `target_id` from routing; whether it was there.
    fn disconnect_target(&self, target_id: &str) -> bool;

    /// Records one evidence record of `evidence_type` about lane `lane_id` and waits until it
    /// is written.
    async fn record_evidence(&self, evidence_type: &str, lane_id: Option<&str>, payload: Value);

    /// A handle that does not keep the host alive (for parts the host itself holds, so no
    /// reference cycle outlives it).
    fn weak(&self) -> Arc<dyn WeakLaneHost>;
}

/// A [`LaneHost`] that may be gone.
pub trait WeakLaneHost: Send + Sync {
    /// The host, while it is still alive.
    fn upgrade(&self) -> Option<Arc<dyn LaneHost>>;
}
