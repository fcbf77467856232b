//! Governed admission and routing-table admission (`connect_target`): the order of checks,
//! every rejection with its message, target selection, and the hardening of connect.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;

use ep_contracts::Contract;
use ep_contracts::boundary::{
    AcceptableAttestation, AdmissionRejection, AdmissionRequest, AuthorityRef, Map, Provenance,
};
use ep_node::admission::{
    DIRECT_DECISION_REASON, MSG_AUTHORITY_REF, MSG_AUTHORITY_VERIFIER, MSG_CONTRACT_VERSION,
    MSG_DIRECT_LANE, MSG_LANE, MSG_NO_TARGET, MSG_REGISTRATION,
};
use ep_node::evidence::{ADMISSION_ACCEPTED, ADMISSION_REJECTED, TARGET_SELECTED};
use ep_node::{ConnectOptions, RuntimeError};
use serde_json::json;
use support::*;

fn direct_request(lane_id: &str) -> AdmissionRequest {
    let mut request = AdmissionRequest::new(lane_id);
    request.payload.insert("command".into(), json!("echo"));
    request.provenance = Provenance::direct_lower_lane_owner("cli_subprocess_core", Map::new());
    request
}

async fn rejection_of(rt: &Runtime, request: AdmissionRequest) -> AdmissionRejection {
    rt.node
        .admit(request)
        .await
        .expect_err("expected a rejection")
}

#[tokio::test]
async fn governed_request_before_registration_completes_is_rejected() {
    let rt = Runtime::empty();
    rt.node.register_lane(Arc::new(FakeLane));
    let rejection = rejection_of(&rt, governed_request()).await;
    assert_eq!(rejection.reason, "registration_incomplete");
}

#[tokio::test]
async fn governed_request_without_authority_verifier_is_rejected() {
    let rt = runtime_without_authority_on(Arc::new(FakeLane)).await;
    rt.node.complete_registration();
    let rejection = rejection_of(&rt, governed_request()).await;
    assert_eq!(rejection.reason, "authority_verifier_missing");
}

#[tokio::test]
async fn governed_request_with_contract_version_zero_is_rejected() {
    let rt = runtime().await;
    let mut request = governed_request();
    request.contract_version = json!(0);
    let rejection = rejection_of(&rt, request).await;
    assert_eq!(rejection.reason, "contract_version_mismatch");
}

#[tokio::test]
async fn direct_lower_lane_owner_request_needs_only_the_lane() {
    let rt = Runtime::empty();
    rt.node.register_lane(Arc::new(FakeLane));
    let request = direct_request("process");
    let request_id = request.request_id.clone();
    let decision = rt.node.admit(request).await.unwrap();
    assert_eq!(decision.reason.as_deref(), Some(DIRECT_DECISION_REASON));
    assert_eq!(decision.request_id.as_deref(), Some(request_id.as_str()));
    assert_eq!(decision.lane_id.as_deref(), Some("process"));
    assert_eq!(decision.target_id, None);
    assert_eq!(decision.attestation_class, None);
    assert!(decision.execution_ref.is_some());
    assert_eq!(decision.status, "accepted");
    assert!(
        rt.sink.is_empty(),
        "direct admission emits no admission evidence"
    );
}

struct Case {
    name: &'static str,
    reason: &'static str,
    message: &'static str,
}

/// Builds the node and request for one rejection case.
async fn setup(case: &str) -> (Runtime, AdmissionRequest) {
    match case {
        "version" => {
            let mut request = governed_request();
            request.contract_version = json!("2");
            (runtime().await, request)
        }
        "direct-lane" => (Runtime::empty(), direct_request("process")),
        "registration" => {
            let rt = Runtime::empty();
            rt.node.register_lane(Arc::new(FakeLane));
            rt.node
                .register_authority_verifier(Arc::new(AllowAuthority));
            (rt, governed_request())
        }
        "authority-verifier" => {
            let rt = runtime_without_authority_on(Arc::new(FakeLane)).await;
            rt.node.complete_registration();
            (rt, governed_request())
        }
        "lane" => (runtime().await, {
            let mut r = governed_request();
            r.lane_id = "ssh".into();
            r
        }),
        "authority-ref" => (runtime().await, {
            let mut r = governed_request();
            r.authority_ref = None;
            r
        }),
        "authority-rejected" => (runtime().await, {
            let mut r = governed_request();
            r.authority_ref = Some(AuthorityRef {
                reference: Some("deny".into()),
                ..AuthorityRef::default()
            });
            r
        }),
        "no-target" => (runtime_without_target(), governed_request()),
        other => panic!("unknown case {other}"),
    }
}

#[tokio::test]
async fn every_rejection_reason_carries_its_message_request_id_and_evidence() {
    let cases = [
        Case {
            name: "version",
            reason: "contract_version_mismatch",
            message: MSG_CONTRACT_VERSION,
        },
        Case {
            name: "direct-lane",
            reason: "lane_not_registered",
            message: MSG_DIRECT_LANE,
        },
        Case {
            name: "registration",
            reason: "registration_incomplete",
            message: MSG_REGISTRATION,
        },
        Case {
            name: "authority-verifier",
            reason: "authority_verifier_missing",
            message: MSG_AUTHORITY_VERIFIER,
        },
        Case {
            name: "lane",
            reason: "lane_not_registered",
            message: MSG_LANE,
        },
        Case {
            name: "authority-ref",
            reason: "authority_ref_missing",
            message: MSG_AUTHORITY_REF,
        },
        Case {
            name: "authority-rejected",
            reason: "authority_rejected",
            message: "authority ref is not allowed",
        },
        Case {
            name: "no-target",
            reason: "no_satisfying_attested_target",
            message: MSG_NO_TARGET,
        },
    ];
    for case in cases {
        let (rt, request) = setup(case.name).await;
        let request_id = request.request_id.clone();
        let rejection = rejection_of(&rt, request).await;
        assert_eq!(rejection.reason, case.reason, "case {}", case.name);
        assert_eq!(
            rejection.message.as_deref(),
            Some(case.message),
            "case {}",
            case.name
        );
        assert_eq!(
            rejection.request_id.as_deref(),
            Some(request_id.as_str()),
            "case {}",
            case.name
        );
        let records = rt.sink.records();
        assert_eq!(records.len(), 1, "case {}", case.name);
        let evidence = &records[0];
        assert_eq!(evidence.evidence_type.as_deref(), Some(ADMISSION_REJECTED));
        assert_eq!(evidence.payload, rejection.to_value(), "case {}", case.name);
        assert_eq!(evidence.request_id.as_deref(), Some(request_id.as_str()));
        assert_eq!(evidence.execution_ref, None, "no decision context");
        assert_eq!(evidence.target_id, None);
    }
}

#[tokio::test]
async fn registration_is_checked_before_the_authority_verifier() {
    let rt = Runtime::empty();
    rt.node.register_lane(Arc::new(FakeLane));
    let rejection = rejection_of(&rt, governed_request()).await;
    assert_eq!(rejection.reason, "registration_incomplete");
}

#[tokio::test]
async fn contract_version_is_checked_first_even_for_direct_requests() {
    let rt = Runtime::empty();
    let mut request = direct_request("not-registered");
    request.contract_version = json!(0);
    let rejection = rejection_of(&rt, request).await;
    assert_eq!(rejection.reason, "contract_version_mismatch");
}

#[tokio::test]
async fn lane_is_checked_before_the_authority_ref() {
    let rt = runtime().await;
    let mut request = governed_request();
    request.lane_id = "ssh".into();
    request.authority_ref = None;
    let rejection = rejection_of(&rt, request).await;
    assert_eq!(rejection.reason, "lane_not_registered");
}

#[tokio::test]
async fn authority_is_checked_before_target_selection() {
    let rt = runtime_without_target();
    let mut request = governed_request();
    request.authority_ref = None;
    let rejection = rejection_of(&rt, request).await;
    assert_eq!(rejection.reason, "authority_ref_missing");
}

#[tokio::test]
async fn accepted_admission_emits_accepted_then_selected_evidence() {
    let rt = runtime().await;
    let decision = rt.node.admit(governed_request()).await.unwrap();
    assert_eq!(decision.target_id.as_deref(), Some("target-1"));
    assert_eq!(decision.attestation_class.as_deref(), Some(WEAK));
    assert_eq!(decision.reason, None);
    assert_eq!(rt.evidence_types(), [ADMISSION_ACCEPTED, TARGET_SELECTED]);
    let records = rt.sink.records();
    assert_eq!(records[0].payload, decision.to_value());
    assert_eq!(records[1].payload["target_id"], "target-1");
    assert_eq!(records[1].payload["verifier_id"], STUB_VERIFIER);
}

#[tokio::test]
async fn admit_records_nothing_for_cancel() {
    let rt = runtime().await;
    let decision = rt.node.admit(governed_request()).await.unwrap();
    let err = rt
        .node
        .cancel(decision.execution_ref.as_ref().unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, RuntimeError::UnknownExecutionRef(_)));
}

#[tokio::test]
async fn acceptable_set_without_the_attested_class_is_never_downgraded() {
    let rt = runtime().await;
    let mut request = governed_request();
    request.acceptable_attestation = AcceptableAttestation::of([STRONG]);
    let rejection = rejection_of(&rt, request).await;
    assert_eq!(rejection.reason, "no_satisfying_attested_target");
}

#[tokio::test]
async fn empty_acceptable_set_matches_no_target() {
    let rt = runtime().await;
    let mut request = governed_request();
    request.acceptable_attestation = AcceptableAttestation::default();
    let rejection = rejection_of(&rt, request).await;
    assert_eq!(rejection.reason, "no_satisfying_attested_target");
}

#[tokio::test]
async fn target_for_another_lane_is_not_selected() {
    let rt = runtime_without_target();
    let attestation = stub_attestation(json!({"signature": "valid", "lane_id": "http"}));
    rt.node
        .connect_in_process(attestation, ConnectOptions::default())
        .await
        .unwrap();
    let rejection = rejection_of(&rt, governed_request()).await;
    assert_eq!(rejection.reason, "no_satisfying_attested_target");
}

#[tokio::test]
async fn priority_order_picks_the_preferred_class() {
    let rt = runtime_without_target();
    let attestation = stub_attestation(json!({"signature": "valid", "classes": [WEAK, HTTP_STUB]}));
    rt.node
        .connect_in_process(attestation, ConnectOptions::default())
        .await
        .unwrap();

    let mut request = governed_request();
    request.acceptable_attestation = AcceptableAttestation::of([WEAK, HTTP_STUB]);
    let decision = rt.node.admit(request).await.unwrap();
    assert_eq!(decision.attestation_class.as_deref(), Some(WEAK));

    let mut request = governed_request();
    request.acceptable_attestation = AcceptableAttestation::new(
        vec![WEAK.into(), HTTP_STUB.into()],
        Some(vec![HTTP_STUB.into(), WEAK.into()]),
    );
    let decision = rt.node.admit(request).await.unwrap();
    assert_eq!(decision.attestation_class.as_deref(), Some(HTTP_STUB));
}

#[tokio::test]
async fn first_matching_target_in_ascending_target_id_wins() {
    let rt = runtime_without_target();
    for target_id in ["target-c", "target-a", "target-b"] {
        let attestation = stub_attestation(json!({"signature": "valid", "target_id": target_id}));
        rt.node
            .connect_in_process(attestation, ConnectOptions::default())
            .await
            .unwrap();
    }
    for _ in 0..3 {
        let decision = rt.node.admit(governed_request()).await.unwrap();
        assert_eq!(decision.target_id.as_deref(), Some("target-a"));
    }
}

#[tokio::test]
async fn each_admission_mints_a_fresh_execution_ref() {
    let rt = runtime().await;
    let a = rt.node.admit(governed_request()).await.unwrap();
    let b = rt.node.admit(governed_request()).await.unwrap();
    assert_ne!(a.execution_ref, b.execution_ref);
}

// ---------------------------------------------------------------------------------------------
// connect_target
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn target_enters_routing_table_only_after_a_valid_attestation() {
    let rt = Runtime::empty();
    rt.node
        .register_target_verifier(Arc::new(StubTargetVerifier));
    let invalid = stub_attestation(json!({"signature": "not-valid"}));
    let rejection = rt
        .node
        .connect_in_process(invalid, ConnectOptions::default())
        .await
        .unwrap_err();
    assert_eq!(rejection.reason, "target_attestation_unverifiable");
    assert!(rt.node.describe().verified_targets.is_empty());

    let descriptor = rt
        .node
        .connect_in_process(valid_stub(), ConnectOptions::default())
        .await
        .unwrap();
    assert_eq!(descriptor.attested_capability_classes, [WEAK]);
    assert_eq!(rt.node.describe().verified_targets, [descriptor]);
}

#[tokio::test]
async fn claims_without_a_matching_verifier_are_rejected_and_never_route() {
    let rt = Runtime::empty();
    rt.node
        .register_target_verifier(Arc::new(StubTargetVerifier));
    let mut attestation = stub_attestation(json!({"signature": "valid"}));
    attestation.attestation_type = Some("unsigned-strong-claim".into());
    attestation.claimed_capability_classes = vec![STRONG.into()];
    let rejection = rt
        .node
        .connect_in_process(attestation, ConnectOptions::default())
        .await
        .unwrap_err();
    assert_eq!(rejection.reason, "target_attestation_unverifiable");
    assert_eq!(
        rejection.message.as_deref(),
        Some(r#"no target verifier handles attestation type "unsigned-strong-claim""#)
    );
    assert!(rt.node.describe().verified_targets.is_empty());
}

#[tokio::test]
async fn strong_claim_with_a_bad_signature_is_rejected() {
    let rt = Runtime::empty();
    rt.node
        .register_target_verifier(Arc::new(StubTargetVerifier));
    let mut attestation = stub_attestation(json!({"signature": "not-valid", "classes": [STRONG]}));
    attestation.claimed_capability_classes = vec![STRONG.into()];
    let rejection = rt
        .node
        .connect_in_process(attestation, ConnectOptions::default())
        .await
        .unwrap_err();
    assert_eq!(rejection.reason, "target_attestation_unverifiable");
    assert_eq!(
        rejection.message.as_deref(),
        Some("stub attestation signature is not valid"),
        "the verifier's rejection passes through"
    );
    assert!(rt.node.describe().verified_targets.is_empty());
}

#[tokio::test]
async fn descriptor_with_classes_outside_the_verifier_set_is_refused() {
    let rt = Runtime::empty();
    rt.node
        .register_target_verifier(Arc::new(StubTargetVerifier));
    let attestation = stub_attestation(json!({"signature": "valid", "classes": [WEAK, STRONG]}));
    let rejection = rt
        .node
        .connect_in_process(attestation, ConnectOptions::default())
        .await
        .unwrap_err();
    assert_eq!(rejection.reason, "target_attestation_unverifiable");
    let message = rejection.message.unwrap();
    assert!(message.contains(STRONG), "{message}");
    assert!(!message.contains(WEAK), "{message}");
    assert_eq!(rejection.details["unattested_classes"], json!([STRONG]));
    assert!(rt.node.describe().verified_targets.is_empty());
}

#[tokio::test]
async fn descriptor_naming_another_verifier_is_refused() {
    let rt = Runtime::empty();
    rt.node
        .register_target_verifier(Arc::new(StubTargetVerifier));
    let attestation =
        stub_attestation(json!({"signature": "valid", "verifier_id": "someone-else"}));
    let rejection = rt
        .node
        .connect_in_process(attestation, ConnectOptions::default())
        .await
        .unwrap_err();
    assert_eq!(rejection.reason, "target_attestation_unverifiable");
    assert!(rejection.message.unwrap().contains("someone-else"));
}

#[tokio::test]
async fn already_expired_descriptor_is_refused_at_connect() {
    let rt = Runtime::empty();
    rt.node
        .register_target_verifier(Arc::new(StubTargetVerifier));
    let attestation =
        stub_attestation(json!({"signature": "valid", "expires_at": rfc3339_in(-60)}));
    let rejection = rt
        .node
        .connect_in_process(attestation, ConnectOptions::default())
        .await
        .unwrap_err();
    assert_eq!(rejection.reason, "target_attestation_unverifiable");
    assert!(rejection.message.unwrap().contains("expired"));
    assert!(rt.node.describe().verified_targets.is_empty());
}

#[tokio::test]
async fn unparseable_expiry_is_refused_at_connect() {
    let rt = Runtime::empty();
    rt.node
        .register_target_verifier(Arc::new(StubTargetVerifier));
    let attestation = stub_attestation(json!({"signature": "valid", "expires_at": "tomorrow"}));
    let rejection = rt
        .node
        .connect_in_process(attestation, ConnectOptions::default())
        .await
        .unwrap_err();
    assert_eq!(rejection.reason, "target_attestation_unverifiable");
    assert!(rejection.message.unwrap().contains("RFC 3339"));
}

#[tokio::test]
async fn descriptor_expiring_after_connect_no_longer_routes() {
    let rt = runtime_without_target();
    let expires_at = rfc3339_in(2);
    let attestation = stub_attestation(json!({"signature": "valid", "expires_at": expires_at}));
    rt.node
        .connect_in_process(attestation, ConnectOptions::default())
        .await
        .unwrap();
    assert!(rt.node.admit(governed_request()).await.is_ok());

    let deadline = chrono::DateTime::parse_from_rfc3339(&expires_at).unwrap();
    let wait = (deadline.with_timezone(&chrono::Utc) - chrono::Utc::now())
        .to_std()
        .unwrap_or_default()
        + std::time::Duration::from_millis(50);
    tokio::time::sleep(wait).await;

    let rejection = rejection_of(&rt, governed_request()).await;
    assert_eq!(rejection.reason, "no_satisfying_attested_target");
    assert!(rt.node.describe().verified_targets.is_empty());
}

#[tokio::test]
async fn connecting_the_same_target_id_replaces_the_target() {
    let rt = runtime_without_target();
    rt.node
        .connect_in_process(valid_stub(), ConnectOptions::default())
        .await
        .unwrap();
    let replacement = stub_attestation(json!({"signature": "valid", "classes": [HTTP_STUB]}));
    rt.node
        .connect_in_process(replacement, ConnectOptions::default())
        .await
        .unwrap();
    let targets = rt.node.describe().verified_targets;
    assert_eq!(targets.len(), 1);
    assert_eq!(targets[0].attested_capability_classes, [HTTP_STUB]);
    let rejection = rejection_of(&rt, governed_request()).await;
    assert_eq!(rejection.reason, "no_satisfying_attested_target");
}

#[tokio::test]
async fn the_first_registered_verifier_that_handles_an_attestation_verifies_it() {
    use ep_node::verifiers::local_weak::{LocalWeakVerifier, MintOptions};
    let rt = Runtime::empty();
    rt.node
        .register_target_verifier(Arc::new(StubTargetVerifier));
    rt.node
        .register_target_verifier(Arc::new(LocalWeakVerifier::new()));
    let descriptor = rt
        .node
        .connect_in_process(
            LocalWeakVerifier::mint_attestation(&MintOptions::default()),
            ConnectOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        descriptor.verifier_id,
        ep_node::verifiers::local_weak::LOCAL_WEAK_VERIFIER_ID
    );
    let descriptor = rt
        .node
        .connect_in_process(valid_stub(), ConnectOptions::default())
        .await
        .unwrap();
    assert_eq!(descriptor.verifier_id, STUB_VERIFIER);
}
