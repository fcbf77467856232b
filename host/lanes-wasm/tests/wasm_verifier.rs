//! The wasm target verifier trusts only digests the runtime has loaded, and a loaded lane runs
//! through a real node as an attested `wasm-engine:wasmtime@48.0.8` target.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;

use async_trait::async_trait;
use ep_contracts::boundary::{
    AcceptableAttestation, AdmissionRejection, AdmissionRequest, AuthorityRef, Map,
    RejectionReason, ResultStatus, TargetAttestation,
};
use ep_lanes_wasm::{
    LaneLimits, WASM_ATTESTATION_TYPE, WASM_ENGINE_CLASS, WASM_VERIFIER_ID, WasmEngineVerifier,
    register_wasm_lane,
};
use ep_node::node::Node;
use ep_node::sinks::memory::MemorySink;
use ep_node::{AuthorityVerifier, ConnectOptions, TargetVerifier};
use serde_json::json;
use support::*;

/// Allows every authority ref (authority is not what these tests are about).
struct AllowAll;

#[async_trait]
impl AuthorityVerifier for AllowAll {
    fn verifier_id(&self) -> &str {
        "allow-all"
    }
    async fn verify(
        &self,
        _authority: &AuthorityRef,
        _request: &AdmissionRequest,
    ) -> Result<Map, AdmissionRejection> {
        Ok(Map::new())
    }
}

fn governed(lane_id: &str, classes: &[&str], payload: serde_json::Value) -> AdmissionRequest {
    let mut request = AdmissionRequest::new(lane_id);
    request.payload = obj(payload);
    request.authority_ref = Some(AuthorityRef {
        reference: Some("allow".to_owned()),
        ..AuthorityRef::default()
    });
    request.acceptable_attestation = AcceptableAttestation::of(classes.iter().copied());
    request
}

fn wasm_attestation(evidence: serde_json::Value) -> TargetAttestation {
    TargetAttestation {
        attestation_type: Some(WASM_ATTESTATION_TYPE.to_owned()),
        evidence: obj(evidence),
        claimed_capability_classes: vec![WASM_ENGINE_CLASS.to_owned()],
        ..TargetAttestation::default()
    }
}

#[tokio::test]
async fn a_governed_request_runs_on_the_attested_wasm_target() {
    let rt = runtime();
    let lane = Arc::new(load(&rt, "echo", LaneLimits::default()).await);
    let digest = lane.digest().to_owned();
    let node = Node::new("node-wasm");
    let sink = Arc::new(MemorySink::new("memory"));
    node.register_evidence_sink(sink.clone());
    node.register_authority_verifier(Arc::new(AllowAll));
    node.complete_registration();
    let descriptor = register_wasm_lane(&node, lane).await.unwrap();
    assert_eq!(descriptor.target_id, "wasm:echo");
    assert_eq!(descriptor.lane_id, "echo");
    assert_eq!(descriptor.verifier_id, WASM_VERIFIER_ID);
    assert_eq!(
        descriptor.attested_capability_classes,
        ["wasm-engine:wasmtime@48.0.8"]
    );
    assert_eq!(descriptor.metadata["component_digest"], digest.as_str());
    assert_eq!(descriptor.metadata["engine"], "wasmtime@48.0.8");

    let result = guarded(node.execute(governed(
        "echo",
        &[WASM_ENGINE_CLASS],
        json!({"through": "node"}),
    )))
    .await;
    assert_eq!(result.status, ResultStatus::Succeeded, "{result:?}");
    assert_eq!(result.output["through"], "node");
    assert_eq!(result.evidence[0]["component_digest"], digest.as_str());
    let kinds = sink.evidence_types();
    assert!(
        kinds.contains(&"admission.accepted".to_owned()),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&"execution.completed".to_owned()),
        "{kinds:?}"
    );

    let described = node.describe();
    let lane = &described.registered_lanes[0];
    assert_eq!(lane.lane_id.as_deref(), Some("echo"));
    assert_eq!(lane.metadata["component_digest"], digest.as_str());
}

#[tokio::test]
async fn a_request_accepting_only_the_weak_local_class_finds_no_wasm_target() {
    let rt = runtime();
    let lane = Arc::new(load(&rt, "echo", LaneLimits::default()).await);
    let node = Node::new("node-wasm");
    node.register_authority_verifier(Arc::new(AllowAll));
    node.complete_registration();
    register_wasm_lane(&node, lane).await.unwrap();
    let result = guarded(node.execute(governed("echo", &["local-process-weak"], json!({})))).await;
    assert_eq!(result.status, ResultStatus::Rejected);
    assert_eq!(
        result.error.as_ref().unwrap()["reason"],
        RejectionReason::NoSatisfyingAttestedTarget.as_str()
    );
}

#[tokio::test]
async fn a_lane_validation_refusal_through_the_node_is_a_rejected_result() {
    let rt = runtime();
    let lane = Arc::new(load(&rt, "echo", LaneLimits::default()).await);
    let node = Node::new("node-wasm");
    node.register_authority_verifier(Arc::new(AllowAll));
    node.complete_registration();
    register_wasm_lane(&node, lane).await.unwrap();
    let mut request = governed("echo", &[WASM_ENGINE_CLASS], json!({}));
    request.operation = Some("refuse".to_owned());
    let result = guarded(node.execute(request)).await;
    assert_eq!(result.status, ResultStatus::Rejected);
    assert_eq!(
        result.error.as_ref().unwrap()["reason"],
        "invalid_lane_request"
    );
}

#[tokio::test]
async fn the_verifier_refuses_a_digest_that_was_never_loaded() {
    let rt = runtime();
    let _lane = load(&rt, "echo", LaneLimits::default()).await;
    let verifier = WasmEngineVerifier::new(&rt);
    let never_loaded = ep_contracts::canonical::sha256_ref(b"some other component");
    let attestation =
        wasm_attestation(json!({"component_digest": never_loaded, "lane_id": "echo"}));
    assert!(verifier.handles(&attestation));
    let rejection = verifier
        .verify(&attestation, &ConnectOptions::default())
        .await
        .unwrap_err();
    assert_eq!(
        rejection.reason_code(),
        Some(RejectionReason::TargetAttestationUnverifiable)
    );
    assert!(
        rejection
            .message
            .as_deref()
            .unwrap()
            .contains("is not loaded by this wasm runtime"),
        "{rejection}"
    );
}

#[tokio::test]
async fn the_verifier_refuses_an_attestation_without_a_digest() {
    let rt = runtime();
    let verifier = WasmEngineVerifier::new(&rt);
    for evidence in [
        json!({"lane_id": "echo"}),
        json!({"component_digest": "sha256:nothex"}),
    ] {
        let rejection = verifier
            .verify(&wasm_attestation(evidence), &ConnectOptions::default())
            .await
            .unwrap_err();
        assert_eq!(
            rejection.reason_code(),
            Some(RejectionReason::TargetAttestationUnverifiable)
        );
        assert!(
            rejection
                .message
                .as_deref()
                .unwrap()
                .contains("component_digest"),
            "{rejection}"
        );
    }
}

#[tokio::test]
async fn the_verifier_takes_the_lane_id_from_the_runtime_not_the_claim() {
    let rt = runtime();
    let lane = load(&rt, "echo", LaneLimits::default()).await;
    let verifier = WasmEngineVerifier::new(&rt);
    let claim = wasm_attestation(json!({"component_digest": lane.digest(), "lane_id": "http"}));
    let descriptor = verifier
        .verify(&claim, &ConnectOptions::default())
        .await
        .unwrap();
    assert_eq!(descriptor.lane_id, "echo");
    let options = ConnectOptions {
        lane_id: Some("http".to_owned()),
        ..ConnectOptions::default()
    };
    let rejection = verifier.verify(&claim, &options).await.unwrap_err();
    assert!(
        rejection
            .message
            .as_deref()
            .unwrap()
            .contains("serves lane \"echo\"")
    );
    let options = ConnectOptions {
        target_id: Some("edge-echo".to_owned()),
        ..ConnectOptions::default()
    };
    assert_eq!(
        verifier.verify(&claim, &options).await.unwrap().target_id,
        "edge-echo"
    );
}

#[tokio::test]
async fn the_verifier_refuses_a_digest_once_its_generation_is_dropped() {
    let rt = runtime();
    let lane = load(&rt, "echo", LaneLimits::default()).await;
    let attestation = lane.attestation();
    let verifier = WasmEngineVerifier::new(&rt);
    verifier
        .verify(&attestation, &ConnectOptions::default())
        .await
        .unwrap();
    drop(lane);
    verifier
        .verify(&attestation, &ConnectOptions::default())
        .await
        .unwrap_err();
}
