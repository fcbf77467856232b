//! The node as a [`LaneHost`]: what the lane and placement crates it loads see of it.

use std::sync::Arc;

use async_trait::async_trait;
use ep_contracts::boundary::{AdmissionRejection, TargetAttestation, TargetDescriptor};
use ep_lane_api::{LaneHost, WeakLaneHost};
use serde_json::Value;

use crate::node::{Node, WeakNode};
use crate::traits::{ConnectOptions, LaneAdapter, TargetClient, TargetVerifier};

#[async_trait]
impl LaneHost for Node {
    fn register_lane(&self, lane: Arc<dyn LaneAdapter>) {
        Node::register_lane(self, lane);
    }

    fn unregister_lane(&self, lane_id: &str) -> bool {
        Node::unregister_lane(self, lane_id)
    }

    fn register_target_verifier(&self, verifier: Arc<dyn TargetVerifier>) {
        Node::register_target_verifier(self, verifier);
    }

    async fn connect_target(
        &self,
        attestation: TargetAttestation,
        client: Arc<dyn TargetClient>,
        options: ConnectOptions,
    ) -> Result<TargetDescriptor, AdmissionRejection> {
        Node::connect_target(self, attestation, client, options).await
    }

    async fn connect_in_process(
        &self,
        attestation: TargetAttestation,
        options: ConnectOptions,
    ) -> Result<TargetDescriptor, AdmissionRejection> {
        Node::connect_in_process(self, attestation, options).await
    }

    fn disconnect_target(&self, target_id: &str) -> bool {
        Node::disconnect_target(self, target_id)
    }

    async fn record_evidence(&self, evidence_type: &str, lane_id: Option<&str>, payload: Value) {
        Node::record_evidence(self, evidence_type, lane_id, payload).await;
    }

    fn weak(&self) -> Arc<dyn WeakLaneHost> {
        Arc::new(self.downgrade())
    }
}

impl WeakLaneHost for WeakNode {
    fn upgrade(&self) -> Option<Arc<dyn LaneHost>> {
        WeakNode::upgrade(self).map(|node| Arc::new(node) as Arc<dyn LaneHost>)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_weak_host_lets_its_node_go() {
        let node = Node::new("node-lane-host");
        let weak = LaneHost::weak(&node);
        assert!(weak.upgrade().is_some());
        drop(node);
        assert!(weak.upgrade().is_none());
    }
}
