//! `describe`: what the node reports about itself.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;

use async_trait::async_trait;
use ep_contracts::Contract;
use ep_contracts::boundary::{
    AdmissionRejection, ExecutionRequest, ExecutionResult, LaneCapabilities, NodeDescriptor,
    VersionRange,
};
use ep_node::node::Node;
use ep_node::{ConnectOptions, EventStream, ExecutionContext, LaneAdapter};
use serde_json::json;
use support::*;

#[tokio::test]
async fn describe_reports_contract_range_lanes_verifiers_targets_and_authority() {
    let rt = runtime().await;
    let descriptor = rt.node.describe();
    assert_eq!(descriptor.node_id.as_deref(), Some("node-test"));
    assert_eq!(
        descriptor.contract_version_range,
        VersionRange { min: 1, max: 1 }
    );
    assert_eq!(
        descriptor.to_value()["contract_version_range"],
        json!({"min": 1, "max": 1})
    );
    assert_eq!(descriptor.registered_lanes.len(), 1);
    let lane = &descriptor.registered_lanes[0];
    assert_eq!(lane.lane_id.as_deref(), Some("process"));
    assert_eq!(lane.protocols, ["process"]);
    assert_eq!(lane.surfaces, ["local_subprocess"]);
    assert!(lane.supports_stream);
    assert_eq!(descriptor.registered_target_verifiers.len(), 1);
    let verifier = &descriptor.registered_target_verifiers[0];
    assert_eq!(verifier.verifier_id, STUB_VERIFIER);
    assert_eq!(verifier.attestation_types, ["stub"]);
    assert_eq!(verifier.capability_classes, [WEAK, HTTP_STUB]);
    assert_eq!(descriptor.verified_targets.len(), 1);
    assert_eq!(descriptor.verified_targets[0].target_id, "target-1");
    assert_eq!(descriptor.authority_verifier.as_deref(), Some(AUTHORITY));
    assert!(descriptor.registration_complete);
    assert_eq!(
        NodeDescriptor::from_value(&descriptor.to_value()).unwrap(),
        descriptor
    );
}

#[test]
fn fresh_node_reports_empty_tables_and_incomplete_registration() {
    let descriptor = Node::new("node-empty").describe();
    assert_eq!(descriptor.node_id.as_deref(), Some("node-empty"));
    assert!(descriptor.registered_lanes.is_empty());
    assert!(descriptor.registered_target_verifiers.is_empty());
    assert!(descriptor.verified_targets.is_empty());
    assert_eq!(descriptor.authority_verifier, None);
    assert!(!descriptor.registration_complete);
}

#[test]
fn default_node_id_is_node_dash_unix_millis() {
    let node = Node::default();
    let millis = node.node_id().strip_prefix("node-").unwrap();
    assert!(millis.parse::<i64>().unwrap() > 0);
    assert_eq!(node.describe().node_id.as_deref(), Some(node.node_id()));
}

/// A lane whose capabilities name another lane id than its registration key.
struct MislabelledLane(&'static str);

#[async_trait]
impl LaneAdapter for MislabelledLane {
    fn lane_id(&self) -> &str {
        self.0
    }
    fn capabilities(&self) -> LaneCapabilities {
        LaneCapabilities {
            lane_id: Some("something-else".into()),
            ..LaneCapabilities::default()
        }
    }
    async fn validate(&self, _request: &ExecutionRequest) -> Result<(), AdmissionRejection> {
        Ok(())
    }
    async fn execute(&self, request: ExecutionRequest, _ctx: ExecutionContext) -> ExecutionResult {
        ExecutionResult::succeeded(request.execution_ref, Default::default())
    }
    async fn stream(
        &self,
        _request: ExecutionRequest,
        _ctx: ExecutionContext,
    ) -> Result<EventStream, AdmissionRejection> {
        Err(AdmissionRejection::new(
            ep_contracts::boundary::RejectionReason::NotSupported,
            "unary",
        ))
    }
}

#[test]
fn lanes_are_listed_by_registration_key_in_ascending_order() {
    let node = Node::new("n");
    node.register_lane(Arc::new(MislabelledLane("zeta")));
    node.register_lane(Arc::new(MislabelledLane("alpha")));
    let ids: Vec<_> = node
        .describe()
        .registered_lanes
        .into_iter()
        .map(|l| l.lane_id.unwrap())
        .collect();
    assert_eq!(ids, ["alpha", "zeta"]);
}

#[test]
fn re_registering_a_lane_replaces_it() {
    let node = Node::new("n");
    node.register_lane(Arc::new(FakeLane));
    node.register_lane(Arc::new(MislabelledLane("process")));
    let lanes = node.describe().registered_lanes;
    assert_eq!(lanes.len(), 1);
    assert_eq!(lanes[0].lane_id.as_deref(), Some("process"));
    assert!(!lanes[0].supports_stream, "the second registration won");
}

#[test]
fn verifiers_keep_registration_order_and_replace_in_place() {
    use ep_node::verifiers::local_weak::{LOCAL_WEAK_VERIFIER_ID, LocalWeakVerifier};
    let node = Node::new("n");
    node.register_target_verifier(Arc::new(StubTargetVerifier));
    node.register_target_verifier(Arc::new(LocalWeakVerifier::new()));
    node.register_target_verifier(Arc::new(StubTargetVerifier));
    let ids: Vec<_> = node
        .describe()
        .registered_target_verifiers
        .into_iter()
        .map(|v| v.verifier_id)
        .collect();
    assert_eq!(ids, [STUB_VERIFIER, LOCAL_WEAK_VERIFIER_ID]);
}

#[test]
fn authority_verifier_registration_replaces_the_previous_one() {
    struct Other;
    #[async_trait]
    impl ep_node::AuthorityVerifier for Other {
        fn verifier_id(&self) -> &str {
            "other-authority"
        }
        async fn verify(
            &self,
            _authority: &ep_contracts::boundary::AuthorityRef,
            _request: &ep_contracts::boundary::AdmissionRequest,
        ) -> Result<ep_contracts::boundary::Map, AdmissionRejection> {
            Ok(Default::default())
        }
    }
    let node = Node::new("n");
    node.register_authority_verifier(Arc::new(AllowAuthority));
    node.register_authority_verifier(Arc::new(Other));
    assert_eq!(
        node.describe().authority_verifier.as_deref(),
        Some("other-authority")
    );
}

#[tokio::test]
async fn verified_targets_are_listed_in_ascending_target_id() {
    let rt = runtime_without_target();
    for target_id in ["target-b", "target-a"] {
        rt.node
            .connect_in_process(
                stub_attestation(json!({"signature": "valid", "target_id": target_id})),
                ConnectOptions::default(),
            )
            .await
            .unwrap();
    }
    let ids: Vec<_> = rt
        .node
        .describe()
        .verified_targets
        .into_iter()
        .map(|t| t.target_id)
        .collect();
    assert_eq!(ids, ["target-a", "target-b"]);
}
