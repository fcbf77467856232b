//! The honest local weak verifier: ids, classes, the signature requirement, descriptor
//! derivation and minted attestations.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;

use ep_contracts::boundary::{AcceptableAttestation, ResultStatus, TargetAttestation};
use ep_node::verifiers::local_weak::{
    DEFAULT_SIGNATURE, LOCAL_WEAK_CLASS, LOCAL_WEAK_VERIFIER_ID, LocalWeakVerifier,
    MSG_SIGNATURE_REQUIRED, MintOptions,
};
use ep_node::{ConnectOptions, TargetVerifier};
use serde_json::json;
use support::*;

fn attestation(evidence: serde_json::Value) -> TargetAttestation {
    TargetAttestation {
        attestation_id: Some("att-1".into()),
        attestation_type: Some(LOCAL_WEAK_CLASS.into()),
        presented_at: Some("2030-01-01T00:00:00Z".into()),
        evidence: serde_json::from_value(evidence).unwrap(),
        ..TargetAttestation::default()
    }
}

#[test]
fn verifier_has_its_id_and_only_the_honest_weak_class() {
    let v = LocalWeakVerifier::new();
    assert_eq!(v.verifier_id(), "execution-plane:local-weak-verifier:v1");
    assert_eq!(
        LOCAL_WEAK_VERIFIER_ID,
        "execution-plane:local-weak-verifier:v1"
    );
    assert_eq!(v.attestation_types(), ["local-process-weak"]);
    assert_eq!(v.capability_classes(), ["local-process-weak"]);
}

#[test]
fn verifier_handles_only_local_process_weak_attestations() {
    let v = LocalWeakVerifier::new();
    assert!(v.handles(&attestation(json!({}))));
    for other in [Some("local-erlexec-weak"), Some("stub"), None] {
        let mut att = attestation(json!({}));
        att.attestation_type = other.map(str::to_owned);
        assert!(!v.handles(&att), "{other:?}");
    }
}

#[tokio::test]
async fn attestation_without_a_signature_is_unverifiable() {
    let v = LocalWeakVerifier::new();
    for evidence in [
        json!({}),
        json!({"signature": ""}),
        json!({"signature": null}),
        json!({"signature": 42}),
    ] {
        let rejection = v
            .verify(&attestation(evidence.clone()), &ConnectOptions::default())
            .await
            .unwrap_err();
        assert_eq!(
            rejection.reason, "target_attestation_unverifiable",
            "{evidence}"
        );
        assert_eq!(rejection.message.as_deref(), Some(MSG_SIGNATURE_REQUIRED));
        assert_eq!(
            MSG_SIGNATURE_REQUIRED,
            "local weak target attestation requires a verifier signature"
        );
    }
}

#[tokio::test]
async fn descriptor_defaults_to_local_process_on_the_process_lane() {
    let d = LocalWeakVerifier::new()
        .verify(
            &attestation(json!({"signature": "sig"})),
            &ConnectOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(d.target_id, "local-process");
    assert_eq!(d.lane_id, "process");
    assert_eq!(d.verifier_id, LOCAL_WEAK_VERIFIER_ID);
    assert_eq!(d.attested_capability_classes, ["local-process-weak"]);
    assert_eq!(d.attestation_id.as_deref(), Some("att-1"));
    assert_eq!(d.attested_at.as_deref(), Some("2030-01-01T00:00:00Z"));
    assert_eq!(d.signature.as_deref(), Some("sig"));
    assert_eq!(
        serde_json::Value::Object(d.metadata),
        json!({"local": true, "sandbox": "none"})
    );
    assert_eq!(d.expires_at, None);
}

#[tokio::test]
async fn evidence_ids_apply_and_connect_options_override_them() {
    let v = LocalWeakVerifier::new();
    let att =
        attestation(json!({"signature": "sig", "target_id": "ev-target", "lane_id": "ev-lane"}));
    let d = v.verify(&att, &ConnectOptions::default()).await.unwrap();
    assert_eq!(
        (d.target_id.as_str(), d.lane_id.as_str()),
        ("ev-target", "ev-lane")
    );
    let options = ConnectOptions {
        target_id: Some("opt-target".into()),
        lane_id: Some("opt-lane".into()),
        ..ConnectOptions::default()
    };
    let d = v.verify(&att, &options).await.unwrap();
    assert_eq!(
        (d.target_id.as_str(), d.lane_id.as_str()),
        ("opt-target", "opt-lane")
    );
}

#[tokio::test]
async fn claimed_classes_never_widen_the_descriptor() {
    let mut att = attestation(json!({"signature": "sig", "classes": [STRONG]}));
    att.claimed_capability_classes = vec![STRONG.into()];
    let d = LocalWeakVerifier::new()
        .verify(&att, &ConnectOptions::default())
        .await
        .unwrap();
    assert_eq!(d.attested_capability_classes, ["local-process-weak"]);
}

#[test]
fn minted_attestation_uses_the_documented_defaults() {
    let before = chrono::Utc::now();
    let att = LocalWeakVerifier::mint_attestation(&MintOptions::default());
    assert!(
        att.attestation_id
            .as_deref()
            .unwrap()
            .starts_with("att-local-")
    );
    assert_eq!(att.attestation_type.as_deref(), Some("local-process-weak"));
    assert_eq!(att.claimed_capability_classes, ["local-process-weak"]);
    let presented = chrono::DateTime::parse_from_rfc3339(att.presented_at.as_deref().unwrap())
        .unwrap()
        .with_timezone(&chrono::Utc);
    assert!(presented >= before);
    assert_eq!(
        serde_json::Value::Object(att.evidence),
        json!({
            "class": "local-process-weak",
            "target_id": "local-process",
            "lane_id": "process",
            "signature": DEFAULT_SIGNATURE,
        })
    );
    assert_eq!(DEFAULT_SIGNATURE, "local-weak-stub-signature");
}

#[test]
fn minted_attestation_takes_overrides() {
    let att = LocalWeakVerifier::mint_attestation(&MintOptions {
        target_id: Some("t".into()),
        lane_id: Some("l".into()),
        signature: Some("s".into()),
    });
    assert_eq!(att.evidence["target_id"], "t");
    assert_eq!(att.evidence["lane_id"], "l");
    assert_eq!(att.evidence["signature"], "s");
}

#[tokio::test]
async fn minted_attestation_connects_and_routes_weak_local_traffic() {
    let rt = Runtime::empty();
    rt.node.register_lane(Arc::new(FakeLane));
    rt.node
        .register_target_verifier(Arc::new(LocalWeakVerifier::new()));
    rt.node
        .register_authority_verifier(Arc::new(AllowAuthority));
    let descriptor = rt
        .node
        .connect_in_process(
            LocalWeakVerifier::mint_attestation(&MintOptions::default()),
            ConnectOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(descriptor.target_id, "local-process");
    rt.node.complete_registration();

    let result = rt.node.execute(governed_request()).await;
    assert_eq!(result.status, ResultStatus::Succeeded);
    let selected = rt
        .sink
        .records()
        .into_iter()
        .find(|e| e.evidence_type.as_deref() == Some("target.selected"))
        .unwrap();
    assert_eq!(
        selected.target_verifier_id.as_deref(),
        Some(LOCAL_WEAK_VERIFIER_ID)
    );
    assert_eq!(
        selected.attestation_class.as_deref(),
        Some(LOCAL_WEAK_CLASS)
    );

    let mut strong = governed_request();
    strong.acceptable_attestation = AcceptableAttestation::of([STRONG]);
    assert_eq!(rt.node.execute(strong).await.status, ResultStatus::Rejected);
}
