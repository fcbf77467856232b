//! Enterprise precut metadata (§2.8): presence-only builders that list every missing field in
//! table order, plus the ActivitySideEffectIdempotency retry-scope helpers.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ep_contracts::fixtures::hazmat as fx;
use ep_contracts::metadata::{
    ActivitySideEffectIdempotency, AttachGrantContract, CancellationMetadata,
    ExecutionActivityMetadata, HeartbeatMetadata, IDEMPOTENCY_SCOPE, MetadataError,
    RuntimeEvidenceRef, StreamLeaseContract, is_present,
};
use ep_contracts::{Contract, ContractError};
use proptest::prelude::*;
use serde_json::{Value, json};

fn without(mut value: Value, keys: &[&str]) -> Value {
    for key in keys {
        value.as_object_mut().unwrap().remove(*key);
    }
    value
}

fn with(mut value: Value, key: &str, new: Value) -> Value {
    value.as_object_mut().unwrap().insert(key.to_owned(), new);
    value
}

fn missing(fields: &[&str]) -> MetadataError {
    MetadataError::MissingRequiredFields(fields.iter().map(|f| (*f).to_owned()).collect())
}

/// Checks the builder, the contract name, the round trip and the full missing list of one type.
fn check_metadata<T: Contract>(
    fixture: Value,
    build: fn(&Value) -> Result<T, MetadataError>,
    contract_name: &str,
    required: &[&str],
    optional: &[&str],
) {
    assert_eq!(T::NAME, contract_name);
    let value = build(&fixture).unwrap();
    let dump = value.to_value();
    assert_eq!(dump["contract_name"], json!(contract_name));
    assert_eq!(T::from_value(&dump), Ok(value.clone()), "{contract_name}");
    // Every required field dropped at once is reported, in table order.
    let empty = build(&json!({})).unwrap_err();
    assert_eq!(empty, missing(required), "{contract_name}");
    assert_eq!(
        empty.to_string(),
        format!("missing required fields: {}", required.join(", "))
    );
    // Optional fields may be absent; they dump as null.
    let trimmed = build(&without(fixture.clone(), optional)).unwrap();
    for field in optional {
        assert_eq!(
            trimmed.to_value()[*field],
            Value::Null,
            "{contract_name}.{field}"
        );
    }
    // Each required field: absent, null, empty and blank all count as missing.
    for field in required {
        for bad in [
            None,
            Some(Value::Null),
            Some(json!("")),
            Some(json!("  \t\n")),
        ] {
            let attrs = match &bad {
                None => without(fixture.clone(), &[field]),
                Some(v) => with(fixture.clone(), field, v.clone()),
            };
            assert_eq!(
                build(&attrs).unwrap_err(),
                missing(&[field]),
                "{contract_name}.{field} = {bad:?}"
            );
            let err = T::from_value(&attrs).unwrap_err();
            assert_eq!(err.field(), Some(*field));
            assert_eq!(err.to_string(), format!("missing required fields: {field}"));
        }
    }
    // Non-object attrs are invalid.
    assert_eq!(
        build(&json!(["x"])).unwrap_err(),
        MetadataError::InvalidAttrs
    );
    assert!(matches!(
        T::from_value(&json!(7)),
        Err(ContractError::NotAnObject { .. })
    ));
}

#[test]
fn every_metadata_builder_reports_all_missing_required_fields_in_table_order() {
    check_metadata(
        fx::execution_activity_metadata(),
        ExecutionActivityMetadata::new,
        "ExecutionPlane.ExecutionActivityMetadata.v1",
        &[
            "tenant_ref",
            "actor_ref",
            "resource_ref",
            "workflow_ref",
            "activity_call_ref",
            "lower_run_ref",
            "target_ref",
            "authority_packet_ref",
            "permission_decision_ref",
            "trace_id",
            "idempotency_key",
            "runtime_family",
            "timeout_policy",
            "heartbeat_policy",
        ],
        &[],
    );
    check_metadata(
        fx::cancellation_metadata(),
        CancellationMetadata::new,
        "ExecutionPlane.CancellationMetadata.v1",
        &[
            "cancellation_id",
            "tenant_ref",
            "actor_ref",
            "resource_ref",
            "workflow_ref",
            "lower_run_ref",
            "authority_packet_ref",
            "permission_decision_ref",
            "trace_id",
            "idempotency_key",
        ],
        &["activity_call_ref"],
    );
    check_metadata(
        fx::heartbeat_metadata(),
        HeartbeatMetadata::new,
        "ExecutionPlane.HeartbeatMetadata.v1",
        &[
            "heartbeat_id",
            "tenant_ref",
            "resource_ref",
            "workflow_ref",
            "activity_call_ref",
            "lower_run_ref",
            "trace_id",
            "lease_ref",
        ],
        &[],
    );
    check_metadata(
        fx::attach_grant_contract(),
        AttachGrantContract::new,
        "ExecutionPlane.AttachGrantLeaseBoundTraceable.v1",
        &[
            "attach_grant_id",
            "tenant_ref",
            "principal_ref",
            "resource_ref",
            "stream_ref",
            "lease_ref",
            "expires_at",
            "revocation_state",
            "authority_packet_ref",
            "permission_decision_ref",
            "trace_id",
        ],
        &[],
    );
    check_metadata(
        fx::stream_lease_contract(),
        StreamLeaseContract::new,
        "ExecutionPlane.StreamLeaseContract.v1",
        &[
            "stream_ref",
            "tenant_ref",
            "resource_ref",
            "lease_ref",
            "epoch_ref",
            "trace_id",
        ],
        &["revocation_state"],
    );
    check_metadata(
        fx::runtime_evidence_ref(),
        RuntimeEvidenceRef::new,
        "ExecutionPlane.RuntimeEvidenceRef.v1",
        &[
            "runtime_evidence_ref",
            "tenant_ref",
            "resource_ref",
            "lower_run_ref",
            "trace_id",
            "payload_hash",
            "redaction_posture",
        ],
        &[],
    );
    check_metadata(
        fx::activity_side_effect_idempotency(),
        ActivitySideEffectIdempotency::new,
        "ExecutionPlane.ActivitySideEffectIdempotency.v1",
        &[
            "tenant_ref",
            "actor_ref",
            "resource_ref",
            "workflow_ref",
            "activity_call_ref",
            "lower_run_ref",
            "intent_id",
            "idempotency_key",
            "authority_packet_ref",
            "permission_decision_ref",
            "trace_id",
            "lease_ref",
            "lease_evidence_ref",
            "heartbeat_policy",
            "timeout_policy",
            "retry_policy",
            "runtime_family",
            "side_effect_ref",
            "release_manifest_ref",
        ],
        &[],
    );
}

#[test]
fn required_fields_constant_matches_the_table() {
    assert_eq!(
        StreamLeaseContract::REQUIRED_FIELDS,
        [
            "stream_ref",
            "tenant_ref",
            "resource_ref",
            "lease_ref",
            "epoch_ref",
            "trace_id"
        ]
    );
    assert_eq!(CancellationMetadata::REQUIRED_FIELDS.len(), 10);
    assert!(!CancellationMetadata::REQUIRED_FIELDS.contains(&"activity_call_ref"));
    assert_eq!(CancellationMetadata::FIELDS.len(), 11);
}

#[test]
fn metadata_keeps_non_string_values_and_drops_unknown_keys() {
    let attrs = with(
        with(
            fx::execution_activity_metadata(),
            "timeout_policy",
            json!({"max_ms": 30000}),
        ),
        "colour",
        json!("blue"),
    );
    let attrs = with(attrs, "contract_name", json!("Someone.Else.v9"));
    let metadata = ExecutionActivityMetadata::new(&attrs).unwrap();
    assert_eq!(metadata.timeout_policy, json!({"max_ms": 30000}));
    assert_eq!(
        metadata.contract_name,
        "ExecutionPlane.ExecutionActivityMetadata.v1"
    );
    let dump = metadata.to_value();
    assert!(dump.get("colour").is_none());
    assert_eq!(
        dump["contract_name"],
        json!("ExecutionPlane.ExecutionActivityMetadata.v1")
    );
    // Zero and false are present values; only null and blank strings are missing.
    let zero = with(fx::heartbeat_metadata(), "lease_ref", json!(0));
    assert_eq!(HeartbeatMetadata::new(&zero).unwrap().lease_ref, json!(0));
    assert!(is_present(Some(&json!(false))));
    assert!(is_present(Some(&json!(" x "))));
    assert!(!is_present(Some(&json!(" "))));
    assert!(!is_present(None));
}

#[test]
fn side_effect_retry_scope_is_intent_id_plus_idempotency_key() {
    assert_eq!(
        ActivitySideEffectIdempotency::idempotency_scope(),
        "intent_id + idempotency_key"
    );
    assert_eq!(IDEMPOTENCY_SCOPE, "intent_id + idempotency_key");
    assert_eq!(
        ActivitySideEffectIdempotency::contract_name(),
        "ExecutionPlane.ActivitySideEffectIdempotency.v1"
    );
    let first =
        ActivitySideEffectIdempotency::new(&fx::activity_side_effect_idempotency()).unwrap();
    assert_eq!(first.lease_ref, json!("lease-100"));
    assert_eq!(first.heartbeat_policy, json!("lease_bound"));
    assert_eq!(
        first.side_effect_key(),
        (&json!("intent-100"), &json!("idem-exec-100"))
    );
}

#[test]
fn changing_only_activity_call_ref_keeps_the_same_retry_scope() {
    let first =
        ActivitySideEffectIdempotency::new(&fx::activity_side_effect_idempotency()).unwrap();
    let retry = ActivitySideEffectIdempotency::new(&with(
        fx::activity_side_effect_idempotency(),
        "activity_call_ref",
        json!("act-100-retry"),
    ))
    .unwrap();
    assert_ne!(first, retry);
    assert!(first.same_retry_scope(&retry));
    let other_key = ActivitySideEffectIdempotency::new(&with(
        fx::activity_side_effect_idempotency(),
        "idempotency_key",
        json!("idem-exec-101"),
    ))
    .unwrap();
    assert!(!first.same_retry_scope(&other_key));
    let other_intent = ActivitySideEffectIdempotency::new(&with(
        fx::activity_side_effect_idempotency(),
        "intent_id",
        json!("intent-101"),
    ))
    .unwrap();
    assert!(!first.same_retry_scope(&other_intent));
}

#[test]
fn dropping_intent_id_idempotency_key_and_lease_ref_lists_all_three() {
    let err = ActivitySideEffectIdempotency::new(&without(
        fx::activity_side_effect_idempotency(),
        &["intent_id", "idempotency_key", "lease_ref"],
    ))
    .unwrap_err();
    let MetadataError::MissingRequiredFields(fields) = &err else {
        panic!("expected missing fields, got {err:?}");
    };
    for field in ["intent_id", "idempotency_key", "lease_ref"] {
        assert!(fields.iter().any(|f| f == field), "{field} in {fields:?}");
    }
    assert_eq!(
        err.to_string(),
        "missing required fields: intent_id, idempotency_key, lease_ref"
    );
    let contract_err = ActivitySideEffectIdempotency::from_value(&without(
        fx::activity_side_effect_idempotency(),
        &["intent_id", "idempotency_key", "lease_ref"],
    ))
    .unwrap_err();
    assert_eq!(contract_err.field(), Some("intent_id"));
}

proptest! {
    #[test]
    fn random_metadata_values_round_trip(
        values in prop::collection::vec(
            prop_oneof![
                16 => "[a-zA-Z0-9_:/.-][a-zA-Z0-9 _:/.-]{0,15}".prop_map(Value::String),
                1 => "[ \t]{0,3}".prop_map(Value::String),
                1 => any::<i64>().prop_map(Value::from),
                1 => any::<bool>().prop_map(Value::Bool),
                1 => Just(Value::Null),
                1 => Just(json!({"nested": [1, "two"]})),
            ],
            20,
        ),
    ) {
        let mut attrs = serde_json::Map::new();
        for (field, value) in ActivitySideEffectIdempotency::FIELDS.iter().zip(&values) {
            attrs.insert((*field).to_owned(), value.clone());
        }
        let attrs = Value::Object(attrs);
        let expected_missing: Vec<String> = ActivitySideEffectIdempotency::REQUIRED_FIELDS
            .iter()
            .filter(|f| !is_present(attrs.get(**f)))
            .map(|f| (*f).to_owned())
            .collect();
        match ActivitySideEffectIdempotency::new(&attrs) {
            Ok(value) => {
                prop_assert!(expected_missing.is_empty());
                let text = value.to_value().to_string();
                let again = ActivitySideEffectIdempotency::from_value(&serde_json::from_str(&text).unwrap());
                prop_assert_eq!(again, Ok(value));
            }
            Err(err) => prop_assert_eq!(err, MetadataError::MissingRequiredFields(expected_missing)),
        }
        let mut lease = serde_json::Map::new();
        for (field, value) in StreamLeaseContract::FIELDS.iter().zip(&values) {
            lease.insert((*field).to_owned(), value.clone());
        }
        if let Ok(value) = StreamLeaseContract::new(&Value::Object(lease)) {
            prop_assert_eq!(StreamLeaseContract::from_value(&value.to_value()), Ok(value));
        }
    }
}
