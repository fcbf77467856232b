//! Core flow packets (§2.4): every validation rule with its exact message, the upstream [RUN]
//! scenarios, fixture round-trips and property round-trips.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ep_contracts::fixtures::flow as fx;
use ep_contracts::flow::{
    AuthorityDecision, BoundarySessionDescriptor, CredentialHandleRef, ExecutionEventV1,
    ExecutionIntentEnvelope, ExecutionOutcome, ExecutionRoute, STATUS_FAILED, STATUS_SUCCEEDED,
};
use ep_contracts::lineage::{EVENT_LINEAGE_KEYS, ROUTE_LINEAGE_KEYS};
use ep_contracts::{Contract, Failure, FailureClass, Lineage};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

mod support;
use support::{
    Row, assert_round_trip, json_map, json_value, opt_text, remove, run_table, set, text,
};

// ---------------------------------------------------------------------------------------------
// ExecutionIntentEnvelope.v1

#[test]
fn envelope_rejects_each_invalid_field_with_the_upstream_message() {
    let rows: &[Row] = &[
        (
            "other version",
            |v| {
                set(
                    v,
                    &["contract_version"],
                    json!("execution_intent_envelope.v0"),
                )
            },
            r#"expected contract_version "execution_intent_envelope.v1", got: "execution_intent_envelope.v0""#,
        ),
        (
            "missing intent_id",
            |v| remove(v, &["intent_id"]),
            "intent_id must be a non-empty string, got: nil",
        ),
        (
            "empty family",
            |v| set(v, &["family"], json!("")),
            r#"family must be a non-empty string, got: """#,
        ),
        (
            "numeric protocol",
            |v| set(v, &["protocol"], json!(5)),
            "protocol must be a non-empty string, got: 5",
        ),
        (
            "empty trace_id",
            |v| set(v, &["trace_id"], json!("")),
            r#"trace_id must be a non-empty string, got: """#,
        ),
        (
            "nil idempotency_key",
            |v| set(v, &["idempotency_key"], Value::Null),
            "idempotency_key must be a non-empty string, got: nil",
        ),
        (
            "missing boundary_session_id",
            |v| remove(v, &["boundary_session_id"]),
            "boundary_session_id must be a non-empty string, got: nil",
        ),
        (
            "missing decision_id",
            |v| remove(v, &["decision_id"]),
            "decision_id must be a non-empty string, got: nil",
        ),
        (
            "empty lease_ref",
            |v| set(v, &["lease_ref"], json!("")),
            r#"lease_ref must be a non-empty string, got: """#,
        ),
        (
            "list route_template_ref",
            |v| set(v, &["route_template_ref"], json!([])),
            "route_template_ref must be a non-empty string, got: []",
        ),
        (
            "raw secret credential ref",
            |v| set(v, &["credential_handle_refs"], json!(["sk-live-secret"])),
            r#"credential_handle_ref must be an opaque handle ref, got: "sk-live-secret""#,
        ),
        (
            "empty credential ref",
            |v| set(v, &["credential_handle_refs"], json!([""])),
            r#"credential_handle_ref must be a non-empty string, got: """#,
        ),
        (
            "credential refs not a list",
            |v| set(v, &["credential_handle_refs"], json!("cred://1")),
            "credential_handle_refs must be a list",
        ),
        (
            "empty attempt_ref",
            |v| set(v, &["attempt_ref"], json!("")),
            r#"attempt_ref must be a non-empty string, got: """#,
        ),
        (
            "deadline not a date",
            |v| set(v, &["deadline_at"], json!("tomorrow")),
            r#"deadline_at must be ISO8601, got: "tomorrow""#,
        ),
        (
            "deadline without time",
            |v| set(v, &["deadline_at"], json!("2026-04-10")),
            r#"deadline_at must be ISO8601, got: "2026-04-10""#,
        ),
        (
            "deadline without offset",
            |v| set(v, &["deadline_at"], json!("2026-04-10T12:00:00")),
            r#"deadline_at must be ISO8601, got: "2026-04-10T12:00:00""#,
        ),
        (
            "numeric deadline",
            |v| set(v, &["deadline_at"], json!(1_700_000_000)),
            "deadline_at must be a non-empty string, got: 1700000000",
        ),
        (
            "empty cancellation_ref",
            |v| set(v, &["cancellation_ref"], json!("")),
            r#"cancellation_ref must be a non-empty string, got: """#,
        ),
        (
            "empty requested capability",
            |v| set(v, &["requested_capabilities"], json!(["http.unary", ""])),
            r#"requested_capability must be a non-empty string, got: """#,
        ),
        (
            "requested capabilities not a list",
            |v| set(v, &["requested_capabilities"], json!({})),
            "requested_capabilities must be a list",
        ),
        (
            "extensions not a map",
            |v| set(v, &["extensions"], json!([])),
            "extensions must be a map",
        ),
    ];
    run_table::<ExecutionIntentEnvelope>(fx::execution_intent_envelope, rows);
}

#[test]
fn envelope_rejects_raw_secrets_and_accepts_opaque_credential_handles() {
    let mut attrs = json!({
        "intent_id": "intent-1", "family": "process", "protocol": "jsonrpc",
        "idempotency_key": "idem-1", "boundary_session_id": "boundary-session-1",
        "decision_id": "decision-1", "credential_handle_refs": ["sk-live-secret"],
        "requested_capabilities": ["session.resume"]
    });
    let err = ExecutionIntentEnvelope::from_value(&attrs).unwrap_err();
    assert!(err.to_string().contains("opaque handle ref"));
    assert_eq!(err.field(), Some("credential_handle_ref"));

    attrs["credential_handle_refs"] = json!([
        "credential-handle://tenant-1/workload-identity/session-1",
        "urn:credential-handle:tenant-1:github:lease-1"
    ]);
    let envelope = ExecutionIntentEnvelope::from_value(&attrs).unwrap();
    assert_eq!(
        envelope.credential_handle_refs,
        [
            "credential-handle://tenant-1/workload-identity/session-1",
            "urn:credential-handle:tenant-1:github:lease-1"
        ]
    );
}

#[test]
fn envelope_optional_fields_default_when_absent_or_null() {
    let envelope = ExecutionIntentEnvelope::from_value(&json!({
        "intent_id": "i", "family": "http", "protocol": "http", "idempotency_key": "k",
        "boundary_session_id": "b", "decision_id": "d", "trace_id": null, "extensions": null
    }))
    .unwrap();
    assert_eq!(envelope.trace_id, None);
    assert!(envelope.credential_handle_refs.is_empty());
    assert!(envelope.requested_capabilities.is_empty());
    assert!(envelope.extensions.is_empty());
    let dumped = envelope.to_value();
    assert_eq!(dumped["deadline_at"], Value::Null);
    assert_eq!(dumped["credential_handle_refs"], json!([]));
}

#[test]
fn deadline_accepts_offsets_and_fractional_seconds() {
    for deadline in [
        "2026-04-10T12:00:00Z",
        "2026-04-10T12:00:00.123456Z",
        "2026-04-10T12:00:00+02:00",
        "2026-04-10T12:00:00-05:30",
    ] {
        let mut attrs = fx::execution_intent_envelope();
        attrs["deadline_at"] = json!(deadline);
        let envelope = ExecutionIntentEnvelope::from_value(&attrs).unwrap();
        assert_eq!(envelope.deadline_at.as_deref(), Some(deadline));
    }
}

// ---------------------------------------------------------------------------------------------
// ExecutionRoute.v1

#[test]
fn route_rejects_each_invalid_field_with_the_upstream_message() {
    let rows: &[Row] = &[
        (
            "other version",
            |v| set(v, &["contract_version"], json!("execution_route.v2")),
            r#"expected contract_version "execution_route.v1", got: "execution_route.v2""#,
        ),
        (
            "missing route_id",
            |v| remove(v, &["route_id"]),
            "route_id must be a non-empty string, got: nil",
        ),
        (
            "missing lineage",
            |v| remove(v, &["lineage"]),
            "lineage must be a map",
        ),
        (
            "lineage not a map",
            |v| set(v, &["lineage"], json!(["route-1"])),
            "lineage must be a map",
        ),
        (
            "lineage unknown key",
            |v| set(v, &["lineage", "colour"], json!("blue")),
            "unknown lineage key: colour",
        ),
        (
            "lineage empty value",
            |v| set(v, &["lineage", "tenant_id"], json!("")),
            "lineage.tenant_id must be a non-empty string",
        ),
        (
            "lineage extensions not a map",
            |v| set(v, &["lineage", "extensions"], json!("x")),
            "lineage.extensions must be a map",
        ),
        (
            "lineage missing idempotency_key",
            |v| remove(v, &["lineage", "idempotency_key"]),
            "lineage.idempotency_key is required",
        ),
        (
            "lineage missing attempt_ref",
            |v| remove(v, &["lineage", "attempt_ref"]),
            "lineage.attempt_ref is required",
        ),
        (
            "lineage missing trace_id and request_id",
            |v| {
                remove(v, &["lineage", "trace_id"]);
                remove(v, &["lineage", "request_id"]);
            },
            "lineage.trace_id is required",
        ),
        (
            "lineage route_id differs",
            |v| set(v, &["lineage", "route_id"], json!("route-other")),
            r#"route_id must match lineage.route_id, got: "route-1""#,
        ),
        (
            "missing family",
            |v| remove(v, &["family"]),
            "family must be a non-empty string, got: nil",
        ),
        (
            "empty protocol",
            |v| set(v, &["protocol"], json!("")),
            r#"protocol must be a non-empty string, got: """#,
        ),
        (
            "missing transport_family",
            |v| remove(v, &["transport_family"]),
            "transport_family must be a non-empty string, got: nil",
        ),
        (
            "boolean placement_family",
            |v| set(v, &["placement_family"], json!(true)),
            "placement_family must be a non-empty string, got: true",
        ),
        (
            "resolved_target not a map",
            |v| set(v, &["resolved_target"], json!([])),
            "resolved_target must be a map",
        ),
        (
            "resolved_budget not a map",
            |v| set(v, &["resolved_budget"], json!(5000)),
            "resolved_budget must be a map",
        ),
    ];
    run_table::<ExecutionRoute>(fx::http_execution_route, rows);
}

#[test]
fn route_lineage_trace_id_is_backfilled_from_request_id() {
    let mut attrs = fx::http_execution_route();
    remove(&mut attrs, &["lineage", "trace_id"]);
    let route = ExecutionRoute::from_value(&attrs).unwrap();
    assert_eq!(route.lineage.get("trace_id"), Some(fx::REQUEST_ID));
    assert_eq!(route.to_value()["lineage"]["trace_id"], fx::REQUEST_ID);
}

#[test]
fn route_lineage_without_event_id_is_complete_and_maps_default_to_empty() {
    let mut attrs = fx::http_execution_route();
    remove(&mut attrs, &["resolved_target"]);
    set(&mut attrs, &["resolved_budget"], Value::Null);
    let route = ExecutionRoute::from_value(&attrs).unwrap();
    assert_eq!(route.lineage.get("event_id"), None);
    assert!(route.resolved_target.is_empty());
    assert!(route.resolved_budget.is_empty());
}

#[test]
fn http_route_fixture_resolves_url_method_and_timeout() {
    let route = ExecutionRoute::from_value(&fx::http_execution_route()).unwrap();
    assert_eq!(route.resolved_target["url"], fx::HTTP_URL);
    assert_eq!(route.resolved_target["method"], "POST");
    assert_eq!(route.resolved_budget["timeout_ms"], 5000);
}

// ---------------------------------------------------------------------------------------------
// ExecutionEvent.v1

#[test]
fn event_rejects_each_invalid_field_with_the_upstream_message() {
    let rows: &[Row] = &[
        (
            "other version",
            |v| set(v, &["contract_version"], json!(1)),
            r#"expected contract_version "execution_event.v1", got: 1"#,
        ),
        (
            "missing event_id",
            |v| remove(v, &["event_id"]),
            "event_id must be a non-empty string, got: nil",
        ),
        (
            "missing route_id",
            |v| remove(v, &["route_id"]),
            "route_id must be a non-empty string, got: nil",
        ),
        (
            "missing lineage",
            |v| remove(v, &["lineage"]),
            "lineage must be a map",
        ),
        (
            "lineage without event_id",
            |v| remove(v, &["lineage", "event_id"]),
            "lineage.event_id is required",
        ),
        (
            "lineage event_id differs",
            |v| set(v, &["lineage", "event_id"], json!("event-2")),
            r#"event_id must match lineage.event_id, got: "event-1""#,
        ),
        (
            "lineage route_id differs",
            |v| set(v, &["lineage", "route_id"], json!("route-2")),
            r#"route_id must match lineage.route_id, got: "route-1""#,
        ),
        (
            "missing event_type",
            |v| remove(v, &["event_type"]),
            "event_type must be a non-empty string, got: nil",
        ),
        (
            "missing timestamp",
            |v| remove(v, &["timestamp"]),
            "timestamp must be a non-empty string, got: nil",
        ),
        (
            "timestamp not ISO8601",
            |v| set(v, &["timestamp"], json!("yesterday")),
            r#"timestamp must be ISO8601, got: "yesterday""#,
        ),
        (
            "payload not a map",
            |v| set(v, &["payload"], json!("connected")),
            "payload must be a map",
        ),
    ];
    run_table::<ExecutionEventV1>(fx::execution_event, rows);
}

#[test]
fn event_fixture_is_a_transport_connected_fact() {
    let event = assert_round_trip::<ExecutionEventV1>(&fx::execution_event());
    assert_eq!(event.event_type, "transport.connected");
    for key in EVENT_LINEAGE_KEYS {
        assert!(event.lineage.get(key).is_some(), "lineage.{key}");
    }
}

// ---------------------------------------------------------------------------------------------
// ExecutionOutcome.v1

#[test]
fn outcome_rejects_each_invalid_field_with_the_upstream_message() {
    let rows: &[Row] = &[
        (
            "other version",
            |v| set(v, &["contract_version"], json!("execution_event.v1")),
            r#"expected contract_version "execution_outcome.v1", got: "execution_event.v1""#,
        ),
        (
            "missing route_id",
            |v| remove(v, &["route_id"]),
            "route_id must be a non-empty string, got: nil",
        ),
        (
            "missing lineage",
            |v| remove(v, &["lineage"]),
            "lineage must be a map",
        ),
        (
            "lineage missing decision_id",
            |v| remove(v, &["lineage", "decision_id"]),
            "lineage.decision_id is required",
        ),
        (
            "lineage route_id differs",
            |v| set(v, &["lineage", "route_id"], json!("x")),
            r#"route_id must match lineage.route_id, got: "route-1""#,
        ),
        (
            "missing status",
            |v| remove(v, &["status"]),
            "status must be a non-empty string, got: nil",
        ),
        (
            "missing family",
            |v| remove(v, &["family"]),
            "family must be a non-empty string, got: nil",
        ),
        (
            "raw_payload not a map",
            |v| set(v, &["raw_payload"], json!("HTTP/1.1 200 OK")),
            "raw_payload must be a map",
        ),
        (
            "artifacts not a list",
            |v| set(v, &["artifacts"], json!({"artifact_ref": "artifact://x"})),
            "artifacts must be a list",
        ),
        (
            "metrics not a map",
            |v| set(v, &["metrics"], json!([42])),
            "metrics must be a map",
        ),
        (
            "failure not a map",
            |v| set(v, &["failure"], json!("launch_failed")),
            "failure must be a map",
        ),
        (
            "failure with unknown class",
            |v| set(v, &["failure"], json!({"failure_class": "oops"})),
            r#"unknown failure_class: "oops""#,
        ),
        (
            "failure without class",
            |v| set(v, &["failure"], json!({"reason": "spawn failed"})),
            "unknown failure_class: nil",
        ),
        (
            "failure with empty reason",
            |v| {
                set(
                    v,
                    &["failure"],
                    json!({"failure_class": "timeout", "reason": ""}),
                )
            },
            r#"reason must be a non-empty string, got: """#,
        ),
        (
            "failure details not a map",
            |v| {
                set(
                    v,
                    &["failure"],
                    json!({"failure_class": "timeout", "details": []}),
                )
            },
            "details must be a map",
        ),
    ];
    run_table::<ExecutionOutcome>(fx::execution_outcome, rows);
}

#[test]
fn outcome_failure_is_coerced_from_attrs_with_derived_fields() {
    let outcome = assert_round_trip::<ExecutionOutcome>(&fx::execution_failure_outcome());
    assert_eq!(outcome.status, STATUS_FAILED);
    assert!(!outcome.succeeded());
    let failure = outcome.failure.clone().unwrap();
    assert_eq!(failure.failure_class, FailureClass::LaunchFailed);
    assert_eq!(failure.reason.as_deref(), Some("spawn failed"));
    let dumped = outcome.to_value();
    assert_eq!(dumped["failure"]["primary_owner"], "execution_plane");
    assert_eq!(dumped["failure"]["retryable?"], true);
    assert_eq!(
        dumped["failure"]["durable_truth_relevance"],
        "durable_truth"
    );
}

#[test]
fn outcome_keeps_raw_payload_verbatim_and_defaults_artifacts() {
    let mut attrs = fx::execution_outcome();
    let raw = json!({"body": "\u{0}\u{1}binary-ish", "nested": {"deep": [1, {"x": null}]}});
    attrs["raw_payload"] = raw.clone();
    attrs["artifacts"] = Value::Null;
    let outcome = ExecutionOutcome::from_value(&attrs).unwrap();
    assert_eq!(Value::Object(outcome.raw_payload.clone()), raw);
    assert!(outcome.artifacts.is_empty());
    assert!(outcome.failure.is_none());
    assert!(outcome.succeeded());
    assert_eq!(outcome.status, STATUS_SUCCEEDED);
    let dumped = outcome.to_value();
    assert_eq!(dumped["raw_payload"], raw);
    assert_eq!(dumped["failure"], Value::Null);
    assert_eq!(dumped["artifacts"], json!([]));
}

#[test]
fn outcome_status_is_carried_not_narrowed() {
    let mut attrs = fx::execution_outcome();
    attrs["status"] = json!("checkpointed");
    assert_eq!(
        ExecutionOutcome::from_value(&attrs).unwrap().status,
        "checkpointed"
    );
}

// ---------------------------------------------------------------------------------------------
// AuthorityDecision.v1, BoundarySessionDescriptor.v1, CredentialHandleRef.v1

#[test]
fn authority_decision_requires_all_eleven_strings_and_a_map_of_extensions() {
    let rows: &[Row] = &[
        (
            "other version",
            |v| set(v, &["contract_version"], json!("authority_decision.v0")),
            r#"expected contract_version "authority_decision.v1", got: "authority_decision.v0""#,
        ),
        (
            "decision_id",
            |v| remove(v, &["decision_id"]),
            "decision_id must be a non-empty string, got: nil",
        ),
        (
            "tenant_id",
            |v| remove(v, &["tenant_id"]),
            "tenant_id must be a non-empty string, got: nil",
        ),
        (
            "request_id",
            |v| remove(v, &["request_id"]),
            "request_id must be a non-empty string, got: nil",
        ),
        (
            "policy_version",
            |v| set(v, &["policy_version"], json!(3)),
            "policy_version must be a non-empty string, got: 3",
        ),
        (
            "boundary_class",
            |v| remove(v, &["boundary_class"]),
            "boundary_class must be a non-empty string, got: nil",
        ),
        (
            "trust_profile",
            |v| remove(v, &["trust_profile"]),
            "trust_profile must be a non-empty string, got: nil",
        ),
        (
            "approval_profile",
            |v| remove(v, &["approval_profile"]),
            "approval_profile must be a non-empty string, got: nil",
        ),
        (
            "egress_profile",
            |v| remove(v, &["egress_profile"]),
            "egress_profile must be a non-empty string, got: nil",
        ),
        (
            "workspace_profile",
            |v| remove(v, &["workspace_profile"]),
            "workspace_profile must be a non-empty string, got: nil",
        ),
        (
            "resource_profile",
            |v| set(v, &["resource_profile"], json!("")),
            r#"resource_profile must be a non-empty string, got: """#,
        ),
        (
            "decision_hash",
            |v| remove(v, &["decision_hash"]),
            "decision_hash must be a non-empty string, got: nil",
        ),
        (
            "extensions",
            |v| set(v, &["extensions"], json!("brain")),
            "extensions must be a map",
        ),
    ];
    run_table::<AuthorityDecision>(fx::authority_decision, rows);
}

#[test]
fn boundary_session_descriptor_rejects_each_invalid_field() {
    let rows: &[Row] = &[
        (
            "other version",
            |v| {
                set(
                    v,
                    &["contract_version"],
                    json!("boundary_session_descriptor.v2"),
                )
            },
            r#"expected contract_version "boundary_session_descriptor.v1", got: "boundary_session_descriptor.v2""#,
        ),
        (
            "boundary_session_id",
            |v| remove(v, &["boundary_session_id"]),
            "boundary_session_id must be a non-empty string, got: nil",
        ),
        (
            "decision_id",
            |v| remove(v, &["decision_id"]),
            "decision_id must be a non-empty string, got: nil",
        ),
        (
            "session_status",
            |v| remove(v, &["session_status"]),
            "session_status must be a non-empty string, got: nil",
        ),
        (
            "attach_state",
            |v| set(v, &["attach_state"], json!("")),
            r#"attach_state must be a non-empty string, got: """#,
        ),
        (
            "workspace_ref",
            |v| remove(v, &["workspace_ref"]),
            "workspace_ref must be a non-empty string, got: nil",
        ),
        (
            "empty artifact ref",
            |v| set(v, &["artifact_refs"], json!([""])),
            r#"artifact_ref must be a non-empty string, got: """#,
        ),
        (
            "artifact refs not a list",
            |v| set(v, &["artifact_refs"], json!("artifact://plan-1")),
            "artifact_refs must be a list",
        ),
        (
            "numeric lease ref",
            |v| set(v, &["lease_refs"], json!([1])),
            "lease_ref must be a non-empty string, got: 1",
        ),
        (
            "null approval ref",
            |v| set(v, &["approval_refs"], json!([null])),
            "approval_ref must be a non-empty string, got: nil",
        ),
        (
            "policy_echo not a map",
            |v| set(v, &["policy_echo"], json!([])),
            "policy_echo must be a map",
        ),
        (
            "extensions not a map",
            |v| set(v, &["extensions"], json!(1)),
            "extensions must be a map",
        ),
    ];
    run_table::<BoundarySessionDescriptor>(fx::boundary_session_descriptor, rows);
}

#[test]
fn credential_handle_ref_rejects_each_invalid_field() {
    let rows: &[Row] = &[
        (
            "other version",
            |v| set(v, &["contract_version"], json!("credential_handle_ref.v0")),
            r#"expected contract_version "credential_handle_ref.v1", got: "credential_handle_ref.v0""#,
        ),
        (
            "raw github token",
            |v| set(v, &["handle_ref"], json!("ghp_super_secret_value")),
            r#"handle_ref must be an opaque handle ref, got: "ghp_super_secret_value""#,
        ),
        (
            "missing handle_ref",
            |v| remove(v, &["handle_ref"]),
            "handle_ref must be a non-empty string, got: nil",
        ),
        (
            "empty handle_ref",
            |v| set(v, &["handle_ref"], json!("")),
            r#"handle_ref must be a non-empty string, got: """#,
        ),
        (
            "missing kind",
            |v| remove(v, &["kind"]),
            "kind must be a non-empty string, got: nil",
        ),
        (
            "missing audience",
            |v| remove(v, &["audience"]),
            "audience must be a non-empty string, got: nil",
        ),
        (
            "expires_at not ISO8601",
            |v| set(v, &["expires_at"], json!("in an hour")),
            r#"expires_at must be ISO8601, got: "in an hour""#,
        ),
        (
            "empty rotation_policy",
            |v| set(v, &["rotation_policy"], json!("")),
            r#"rotation_policy must be a non-empty string, got: """#,
        ),
    ];
    run_table::<CredentialHandleRef>(fx::credential_handle_ref, rows);
}

#[test]
fn credential_handle_ref_accepts_handle_and_urn_refs_but_not_raw_secrets() {
    let base = json!({"kind": "oauth_bearer", "audience": "github_api"});
    let with = |handle: &str| {
        let mut attrs = base.clone();
        attrs["handle_ref"] = json!(handle);
        CredentialHandleRef::from_value(&attrs)
    };
    let err = with("ghp_super_secret_value").unwrap_err();
    assert!(err.to_string().contains("opaque handle ref"));
    assert_eq!(
        with("credential-handle://tenant-1/github/lease-1")
            .unwrap()
            .handle_ref,
        "credential-handle://tenant-1/github/lease-1"
    );
    assert!(with("urn:credential-handle:tenant-1:github:lease-1").is_ok());
    let minimal = with("cred://1").unwrap();
    assert_eq!(minimal.expires_at, None);
    assert_eq!(minimal.rotation_policy, None);
}

// ---------------------------------------------------------------------------------------------
// Shared mechanics

#[test]
fn every_flow_packet_refuses_non_object_attrs() {
    fn refuses<T: Contract>() {
        for input in [json!(null), json!([]), json!("attrs"), json!(1)] {
            let err = T::from_value(&input).unwrap_err();
            assert!(
                err.to_string().starts_with("expected map attrs"),
                "{}: {err}",
                T::NAME
            );
        }
    }
    refuses::<ExecutionIntentEnvelope>();
    refuses::<ExecutionRoute>();
    refuses::<ExecutionEventV1>();
    refuses::<ExecutionOutcome>();
    refuses::<AuthorityDecision>();
    refuses::<BoundarySessionDescriptor>();
    refuses::<CredentialHandleRef>();
}

#[test]
fn unknown_keys_are_ignored_and_matching_version_is_accepted() {
    fn tolerant<T: Contract>(base: fn() -> Value) {
        let mut attrs = base();
        attrs["colour"] = json!("blue");
        attrs["contract_version"] = json!(T::NAME);
        assert_eq!(
            T::from_value(&attrs).unwrap(),
            T::from_value(&base()).unwrap()
        );
    }
    tolerant::<ExecutionIntentEnvelope>(fx::execution_intent_envelope);
    tolerant::<ExecutionRoute>(fx::execution_route);
    tolerant::<ExecutionEventV1>(fx::execution_event);
    tolerant::<ExecutionOutcome>(fx::execution_outcome);
    tolerant::<AuthorityDecision>(fx::authority_decision);
    tolerant::<BoundarySessionDescriptor>(fx::boundary_session_descriptor);
    tolerant::<CredentialHandleRef>(fx::credential_handle_ref);
}

#[test]
fn every_flow_fixture_round_trips_through_its_dump() {
    assert_round_trip::<AuthorityDecision>(&fx::authority_decision());
    assert_round_trip::<BoundarySessionDescriptor>(&fx::boundary_session_descriptor());
    assert_round_trip::<ExecutionIntentEnvelope>(&fx::execution_intent_envelope());
    assert_round_trip::<ExecutionRoute>(&fx::execution_route());
    assert_round_trip::<ExecutionRoute>(&fx::http_execution_route());
    assert_round_trip::<ExecutionRoute>(&fx::process_execution_route());
    assert_round_trip::<ExecutionRoute>(&fx::jsonrpc_execution_route());
    assert_round_trip::<CredentialHandleRef>(&fx::credential_handle_ref());
    assert_round_trip::<ExecutionEventV1>(&fx::execution_event());
    assert_round_trip::<ExecutionOutcome>(&fx::execution_outcome());
    assert_round_trip::<ExecutionOutcome>(&fx::execution_failure_outcome());
}

#[test]
fn dumps_emit_every_field_with_nulls_kept() {
    let envelope = ExecutionIntentEnvelope::from_value(&json!({
        "intent_id": "i", "family": "http", "protocol": "http", "idempotency_key": "k",
        "boundary_session_id": "b", "decision_id": "d"
    }))
    .unwrap();
    let dumped = envelope.to_value();
    let keys: Vec<&str> = dumped
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut expected = vec![
        "attempt_ref",
        "boundary_session_id",
        "cancellation_ref",
        "contract_version",
        "credential_handle_refs",
        "deadline_at",
        "decision_id",
        "extensions",
        "family",
        "idempotency_key",
        "intent_id",
        "lease_ref",
        "protocol",
        "requested_capabilities",
        "route_template_ref",
        "trace_id",
    ];
    expected.sort_unstable();
    assert_eq!(keys, expected);

    let route = ExecutionRoute::from_value(&fx::http_execution_route()).unwrap();
    let route_keys: Vec<String> = route
        .to_value()
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(
        route_keys,
        [
            "contract_version",
            "family",
            "lineage",
            "placement_family",
            "protocol",
            "resolved_budget",
            "resolved_target",
            "route_id",
            "transport_family"
        ]
    );
}

#[test]
fn fixtures_agree_on_lineage_identity() {
    let envelope = ExecutionIntentEnvelope::from_value(&fx::execution_intent_envelope()).unwrap();
    for route_attrs in [
        fx::http_execution_route(),
        fx::process_execution_route(),
        fx::jsonrpc_execution_route(),
    ] {
        let route = ExecutionRoute::from_value(&route_attrs).unwrap();
        assert_eq!(
            route.lineage.get("idempotency_key"),
            Some(envelope.idempotency_key.as_str())
        );
        assert_eq!(route.lineage.get("trace_id"), envelope.trace_id.as_deref());
        for key in ROUTE_LINEAGE_KEYS {
            assert!(route.lineage.get(key).is_some(), "lineage.{key}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Property round-trips

fn timestamp() -> impl Strategy<Value = String> {
    (
        1970u32..2100,
        1u32..=12,
        1u32..=28,
        0u32..24,
        0u32..60,
        0u32..60,
        prop_oneof![
            Just("Z".to_owned()),
            Just(".123456Z".to_owned()),
            Just("+02:00".to_owned()),
            Just("-05:30".to_owned()),
        ],
    )
        .prop_map(|(y, mo, d, h, mi, s, tail)| {
            format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{tail}")
        })
}

fn opaque_ref() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9/._-]{0,16}".prop_map(|s| format!("credential-handle://{s}")),
        "[a-z0-9:._-]{0,16}".prop_map(|s| format!("urn:{s}")),
    ]
}

/// A lineage with `keys` set to random strings (route_id/event_id forced), maybe extensions.
fn lineage(
    keys: &'static [&'static str],
    route_id: String,
    event_id: Option<String>,
) -> impl Strategy<Value = Lineage> {
    (
        prop::collection::vec(text(), keys.len()),
        proptest::option::of(json_map()),
    )
        .prop_map(move |(values, extensions)| {
            let mut map = Map::new();
            for (key, value) in keys.iter().zip(values) {
                map.insert((*key).to_owned(), Value::String(value));
            }
            map.insert("route_id".into(), Value::String(route_id.clone()));
            if let Some(event_id) = &event_id {
                map.insert("event_id".into(), Value::String(event_id.clone()));
            }
            if let Some(ext) = extensions {
                map.insert("extensions".into(), Value::Object(ext));
            }
            Lineage::normalize(&Value::Object(map), keys).unwrap()
        })
}

fn envelope() -> impl Strategy<Value = ExecutionIntentEnvelope> {
    (
        (text(), text(), text(), opt_text(), text(), text(), text()),
        (opt_text(), opt_text(), opt_text(), opt_text()),
        (
            prop::collection::vec(opaque_ref(), 0..3),
            proptest::option::of(timestamp()),
            prop::collection::vec(text(), 0..3),
            json_map(),
        ),
    )
        .prop_map(
            |(
                (intent_id, family, protocol, trace_id, idempotency_key, bsid, decision_id),
                (lease_ref, route_template_ref, attempt_ref, cancellation_ref),
                (credential_handle_refs, deadline_at, requested_capabilities, extensions),
            )| ExecutionIntentEnvelope {
                intent_id,
                family,
                protocol,
                trace_id,
                idempotency_key,
                boundary_session_id: bsid,
                decision_id,
                lease_ref,
                route_template_ref,
                credential_handle_refs,
                attempt_ref,
                deadline_at,
                cancellation_ref,
                requested_capabilities,
                extensions,
            },
        )
}

fn route() -> impl Strategy<Value = ExecutionRoute> {
    text().prop_flat_map(|route_id| {
        (
            (text(), text(), text(), text()),
            json_map(),
            json_map(),
            lineage(&ROUTE_LINEAGE_KEYS, route_id.clone(), None),
        )
            .prop_map(
                move |((family, protocol, transport_family, placement_family), t, b, lineage)| {
                    ExecutionRoute {
                        route_id: route_id.clone(),
                        family,
                        protocol,
                        transport_family,
                        placement_family,
                        resolved_target: t,
                        resolved_budget: b,
                        lineage,
                    }
                },
            )
    })
}

fn event() -> impl Strategy<Value = ExecutionEventV1> {
    (text(), text()).prop_flat_map(|(route_id, event_id)| {
        (
            text(),
            timestamp(),
            json_map(),
            lineage(
                &EVENT_LINEAGE_KEYS,
                route_id.clone(),
                Some(event_id.clone()),
            ),
        )
            .prop_map(
                move |(event_type, timestamp, payload, lineage)| ExecutionEventV1 {
                    event_id: event_id.clone(),
                    route_id: route_id.clone(),
                    event_type,
                    timestamp,
                    lineage,
                    payload,
                },
            )
    })
}

fn failure() -> impl Strategy<Value = Failure> {
    (0..FailureClass::ALL.len(), opt_text(), json_map()).prop_map(|(i, reason, details)| Failure {
        failure_class: FailureClass::ALL[i],
        reason,
        details,
    })
}

fn outcome() -> impl Strategy<Value = ExecutionOutcome> {
    text().prop_flat_map(|route_id| {
        (
            (text(), text()),
            json_map(),
            prop::collection::vec(json_value(), 0..3),
            json_map(),
            proptest::option::of(failure()),
            lineage(&ROUTE_LINEAGE_KEYS, route_id.clone(), None),
        )
            .prop_map(
                move |((status, family), raw_payload, artifacts, metrics, failure, lineage)| {
                    ExecutionOutcome {
                        route_id: route_id.clone(),
                        status,
                        family,
                        raw_payload,
                        artifacts,
                        metrics,
                        failure,
                        lineage,
                    }
                },
            )
    })
}

fn authority_decision() -> impl Strategy<Value = AuthorityDecision> {
    (prop::collection::vec(text(), 11), json_map()).prop_map(|(s, extensions)| AuthorityDecision {
        decision_id: s[0].clone(),
        tenant_id: s[1].clone(),
        request_id: s[2].clone(),
        policy_version: s[3].clone(),
        boundary_class: s[4].clone(),
        trust_profile: s[5].clone(),
        approval_profile: s[6].clone(),
        egress_profile: s[7].clone(),
        workspace_profile: s[8].clone(),
        resource_profile: s[9].clone(),
        decision_hash: s[10].clone(),
        extensions,
    })
}

fn boundary_session() -> impl Strategy<Value = BoundarySessionDescriptor> {
    (
        prop::collection::vec(text(), 5),
        prop::collection::vec(prop::collection::vec(text(), 0..3), 3),
        json_map(),
        json_map(),
    )
        .prop_map(
            |(s, lists, policy_echo, extensions)| BoundarySessionDescriptor {
                boundary_session_id: s[0].clone(),
                decision_id: s[1].clone(),
                session_status: s[2].clone(),
                attach_state: s[3].clone(),
                workspace_ref: s[4].clone(),
                artifact_refs: lists[0].clone(),
                lease_refs: lists[1].clone(),
                approval_refs: lists[2].clone(),
                policy_echo,
                extensions,
            },
        )
}

fn credential() -> impl Strategy<Value = CredentialHandleRef> {
    (
        opaque_ref(),
        text(),
        text(),
        proptest::option::of(timestamp()),
        opt_text(),
    )
        .prop_map(
            |(handle_ref, kind, audience, expires_at, rotation_policy)| CredentialHandleRef {
                handle_ref,
                kind,
                audience,
                expires_at,
                rotation_policy,
            },
        )
}

fn all_keys_are_strings_and_version_is_stamped<T: Contract>(value: &T) {
    let text = ep_contracts::dump(value);
    let reparsed: Value = serde_json::from_str(&text).unwrap();
    assert!(reparsed.is_object());
    assert_eq!(reparsed["contract_version"], T::NAME);
}

fn law<T: Contract>(value: T) -> Result<(), TestCaseError> {
    prop_assert_eq!(T::from_value(&value.to_value()), Ok(value.clone()));
    prop_assert_eq!(
        ep_contracts::parse::<T>(&ep_contracts::dump(&value)),
        Ok(value.clone())
    );
    all_keys_are_strings_and_version_is_stamped(&value);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn envelope_round_trips_for_any_valid_value(value in envelope()) { law(value)?; }

    #[test]
    fn route_round_trips_for_any_valid_value(value in route()) { law(value)?; }

    #[test]
    fn event_round_trips_for_any_valid_value(value in event()) { law(value)?; }

    #[test]
    fn outcome_round_trips_for_any_valid_value(value in outcome()) { law(value)?; }

    #[test]
    fn authority_decision_round_trips_for_any_valid_value(value in authority_decision()) {
        law(value)?;
    }

    #[test]
    fn boundary_session_round_trips_for_any_valid_value(value in boundary_session()) {
        law(value)?;
    }

    #[test]
    fn credential_ref_round_trips_for_any_valid_value(value in credential()) { law(value)?; }

    #[test]
    fn parsing_arbitrary_json_never_panics(input in json_value()) {
        let _ = ExecutionIntentEnvelope::from_value(&input);
        let _ = ExecutionRoute::from_value(&input);
        let _ = ExecutionEventV1::from_value(&input);
        let _ = ExecutionOutcome::from_value(&input);
        let _ = AuthorityDecision::from_value(&input);
        let _ = BoundarySessionDescriptor::from_value(&input);
        let _ = CredentialHandleRef::from_value(&input);
    }

    #[test]
    fn fixture_fields_replaced_by_arbitrary_json_never_panic(
        key in prop_oneof![
            Just("route_id"), Just("lineage"), Just("failure"), Just("artifacts"),
            Just("raw_payload"), Just("status"), Just("timestamp"), Just("event_id"),
        ],
        replacement in json_value(),
    ) {
        for base in [fx::execution_outcome(), fx::execution_event(), fx::execution_route()] {
            let mut attrs = base;
            attrs[key] = replacement.clone();
            let _ = ExecutionOutcome::from_value(&attrs);
            let _ = ExecutionEventV1::from_value(&attrs);
            let _ = ExecutionRoute::from_value(&attrs);
        }
    }
}
