//! Lower-simulation and evidence contracts (§2.7): fail-closed no-egress policy, scenarios,
//! simulation evidence, the bounded evidence boundary with its recursive raw-evidence scan and
//! `from_outcome` projection, and the adapter-selection policy.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ep_contracts::canonical::{fingerprint, is_sha256_ref};
use ep_contracts::fixtures::simulation as fx;
use ep_contracts::simulation::{
    AdapterSelectionPolicy, ExecutionEvidenceBoundary, FromOutcomeOptions, LowerSimulationEvidence,
    LowerSimulationScenario, NoEgressPolicy, RawFinding, RawFindingReason, is_semver,
    raw_evidence_findings, scan_raw_evidence,
};
use ep_contracts::{Contract, ContractError};
use proptest::prelude::*;
use serde_json::{Value, json};

mod support;
use support::{assert_round_trip, remove, run_table, set};

fn all_keys(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                out.push(k.clone());
                all_keys(v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| all_keys(v, out)),
        _ => {}
    }
}

const SEMANTIC_KEYS: [&str; 6] = [
    "provider_refs",
    "model_refs",
    "budget_profile_ref",
    "meter_profile_ref",
    "semantic_policy",
    "cost_policy",
];

#[test]
fn every_simulation_fixture_round_trips_as_json_text() {
    assert_round_trip::<NoEgressPolicy>(&fx::no_egress_policy());
    assert_round_trip::<LowerSimulationScenario>(&fx::lower_simulation_scenario());
    assert_round_trip::<LowerSimulationEvidence>(&fx::lower_simulation_evidence());
    assert_round_trip::<ExecutionEvidenceBoundary>(&fx::execution_evidence_boundary());
    assert_round_trip::<AdapterSelectionPolicy>(&fx::adapter_selection_policy());
}

#[test]
fn simulation_contracts_refuse_non_object_input() {
    for value in [json!(null), json!("x"), json!([1])] {
        assert!(matches!(
            NoEgressPolicy::from_value(&value),
            Err(ContractError::NotAnObject { .. })
        ));
        assert!(matches!(
            ExecutionEvidenceBoundary::from_value(&value),
            Err(ContractError::NotAnObject { .. })
        ));
    }
}

// ---------------------------------------------------------------------------------------------
// NoEgressPolicy.v1
// ---------------------------------------------------------------------------------------------

#[test]
fn default_lower_boundary_policy_denies_all_four_surfaces_and_assert_round_trip() {
    let policy = NoEgressPolicy::default_lower_boundary_policy();
    assert_eq!(
        policy.policy_ref,
        "no-egress-policy://execution-plane/lower/v1"
    );
    assert_eq!(policy.enforcement_boundary, "lower_runtime");
    assert_eq!(policy.mode, "deny");
    assert_eq!(policy.owner_repo, "execution_plane");
    for surface in [
        "external_egress",
        "process_spawn",
        "unregistered_provider_route",
        "raw_external_saas_write_path",
    ] {
        assert_eq!(policy.denied_surfaces[surface], json!("deny"));
    }
    assert_eq!(
        policy.required_negative_evidence,
        [
            "attempted_raw_external_saas_write_path",
            "attempted_unregistered_provider_route"
        ]
    );
    assert_eq!(
        NoEgressPolicy::from_value(&policy.to_value()),
        Ok(policy.clone())
    );
    assert_eq!(
        NoEgressPolicy::from_value(&fx::no_egress_policy()),
        Ok(policy)
    );
}

#[test]
fn no_egress_policy_dedupes_and_sorts_negative_evidence_and_keeps_extra_surfaces() {
    let mut value = fx::no_egress_policy();
    set(
        &mut value,
        &["required_negative_evidence"],
        json!([
            "attempted_unregistered_provider_route",
            "attempted_raw_external_saas_write_path",
            "attempted_unregistered_provider_route"
        ]),
    );
    set(
        &mut value,
        &["denied_surfaces", "dns_lookup"],
        json!("deny"),
    );
    let policy = assert_round_trip::<NoEgressPolicy>(&value);
    assert_eq!(
        policy.required_negative_evidence,
        [
            "attempted_raw_external_saas_write_path",
            "attempted_unregistered_provider_route"
        ]
    );
    assert_eq!(policy.denied_surfaces["dns_lookup"], json!("deny"));
}

#[test]
fn no_egress_policy_rejects_each_bad_field_with_upstream_wording() {
    for key in SEMANTIC_KEYS {
        let mut value = fx::no_egress_policy();
        set(&mut value, &[key], Value::Null);
        remove(&mut value, &["denied_surfaces"]);
        let err = NoEgressPolicy::from_value(&value).unwrap_err();
        assert_eq!(
            err.to_string(),
            "NoEgressPolicy must not carry provider or model or budget semantics"
        );
        assert_eq!(err.field(), Some(key));
    }
    for surface in [
        "external_egress",
        "process_spawn",
        "unregistered_provider_route",
        "raw_external_saas_write_path",
    ] {
        for bad in [json!("allow"), Value::Null] {
            let mut value = fx::no_egress_policy();
            set(&mut value, &["denied_surfaces", surface], bad);
            assert_eq!(
                NoEgressPolicy::from_value(&value).unwrap_err().to_string(),
                format!("denied_surfaces.{surface} must be deny")
            );
        }
    }
    run_table::<NoEgressPolicy>(
        fx::no_egress_policy,
        &[
            (
                "denied_surfaces missing",
                |v| remove(v, &["denied_surfaces"]),
                "denied_surfaces must be a map",
            ),
            (
                "surface missing",
                |v| remove(v, &["denied_surfaces", "process_spawn"]),
                "denied_surfaces.process_spawn must be deny",
            ),
            (
                "surfaces checked before version",
                |v| {
                    set(v, &["denied_surfaces", "external_egress"], json!("allow"));
                    set(v, &["contract_version"], json!("x"));
                },
                "denied_surfaces.external_egress must be deny",
            ),
            (
                "wrong version",
                |v| {
                    set(
                        v,
                        &["contract_version"],
                        json!("ExecutionPlane.NoEgressPolicy.v2"),
                    )
                },
                "expected contract_version \"ExecutionPlane.NoEgressPolicy.v1\", got: \"ExecutionPlane.NoEgressPolicy.v2\"",
            ),
            (
                "policy_ref missing",
                |v| remove(v, &["policy_ref"]),
                "policy_ref must be a non-empty string, got: nil",
            ),
            (
                "policy_ref not opaque",
                |v| set(v, &["policy_ref"], json!("lower-v1")),
                "policy_ref must be an opaque handle ref, got: \"lower-v1\"",
            ),
            (
                "owner_repo foreign",
                |v| set(v, &["owner_repo"], json!("stack_lab")),
                "owner_repo must be execution_plane, got: \"stack_lab\"",
            ),
            (
                "mode allow",
                |v| set(v, &["mode"], json!("allow")),
                "mode must be deny, got: \"allow\"",
            ),
            (
                "enforcement_boundary missing",
                |v| remove(v, &["enforcement_boundary"]),
                "enforcement_boundary must be a non-empty string, got: nil",
            ),
            (
                "one negative evidence item",
                |v| {
                    set(
                        v,
                        &["required_negative_evidence"],
                        json!(["attempted_unregistered_provider_route"]),
                    )
                },
                "required_negative_evidence must be [\"attempted_raw_external_saas_write_path\",\"attempted_unregistered_provider_route\"], got: [\"attempted_unregistered_provider_route\"]",
            ),
            (
                "extra negative evidence item",
                |v| {
                    set(
                        v,
                        &["required_negative_evidence"],
                        json!([
                            "attempted_unregistered_provider_route",
                            "attempted_raw_external_saas_write_path",
                            "attempted_dns"
                        ]),
                    )
                },
                "required_negative_evidence must be [\"attempted_raw_external_saas_write_path\",\"attempted_unregistered_provider_route\"], got: [\"attempted_dns\",\"attempted_raw_external_saas_write_path\",\"attempted_unregistered_provider_route\"]",
            ),
            (
                "negative evidence missing",
                |v| remove(v, &["required_negative_evidence"]),
                "required_negative_evidence must be a list",
            ),
            (
                "negative evidence empty string",
                |v| set(v, &["required_negative_evidence"], json!([""])),
                "required_negative_evidence must be a non-empty string, got: \"\"",
            ),
        ],
    );
}

#[test]
fn scenario_17_no_egress_policy_rejects_allow_missing_negative_and_budget_semantics() {
    let base = NoEgressPolicy::default_lower_boundary_policy().to_value();
    let mut allow = base.clone();
    set(
        &mut allow,
        &["denied_surfaces", "external_egress"],
        json!("allow"),
    );
    assert!(
        NoEgressPolicy::from_value(&allow)
            .unwrap_err()
            .to_string()
            .contains("denied_surfaces.external_egress must be deny")
    );
    let mut one = base.clone();
    set(
        &mut one,
        &["required_negative_evidence"],
        json!(["attempted_unregistered_provider_route"]),
    );
    assert!(
        NoEgressPolicy::from_value(&one)
            .unwrap_err()
            .to_string()
            .contains("required_negative_evidence")
    );
    let mut budget = base;
    set(
        &mut budget,
        &["budget_profile_ref"],
        json!("budget://phase6"),
    );
    assert!(
        NoEgressPolicy::from_value(&budget)
            .unwrap_err()
            .to_string()
            .contains("provider or model or budget semantics")
    );
}

// ---------------------------------------------------------------------------------------------
// LowerSimulationScenario.v1
// ---------------------------------------------------------------------------------------------

#[test]
fn scenario_fixture_parses_with_its_enums_and_json_safe_dump() {
    let scenario = assert_round_trip::<LowerSimulationScenario>(&fx::lower_simulation_scenario());
    assert_eq!(scenario.owner_repo, "execution_plane");
    assert_eq!(scenario.protocol_surface, "http");
    assert_eq!(scenario.matcher_class, "deterministic_over_input");
    assert_eq!(
        scenario.to_value()["bounded_evidence_projection"]["contract_version"],
        json!(LowerSimulationEvidence::VERSION)
    );
    for surface in ["process", "http", "graphql", "self_hosted"] {
        let mut value = fx::lower_simulation_scenario();
        set(&mut value, &["protocol_surface"], json!(surface));
        assert_round_trip::<LowerSimulationScenario>(&value);
    }
    for matcher in ["deterministic_over_input", "artifact_ref", "frozen_fixture"] {
        let mut value = fx::lower_simulation_scenario();
        set(&mut value, &["matcher_class"], json!(matcher));
        assert_round_trip::<LowerSimulationScenario>(&value);
    }
}

#[test]
fn scenario_rejects_each_bad_field_with_upstream_wording() {
    for key in SEMANTIC_KEYS {
        let mut value = fx::lower_simulation_scenario();
        set(&mut value, &[key], json!(["openai"]));
        set(&mut value, &["protocol_surface"], json!("provider"));
        assert_eq!(
            LowerSimulationScenario::from_value(&value)
                .unwrap_err()
                .to_string(),
            "semantic provider policy must not be owned by Execution Plane lower scenarios"
        );
    }
    run_table::<LowerSimulationScenario>(
        fx::lower_simulation_scenario,
        &[
            (
                "protocol_surface provider",
                |v| set(v, &["protocol_surface"], json!("provider")),
                "protocol_surface unsupported value: \"provider\"",
            ),
            (
                "protocol_surface missing",
                |v| remove(v, &["protocol_surface"]),
                "protocol_surface must be a non-empty string, got: nil",
            ),
            (
                "matcher_class semantic",
                |v| set(v, &["matcher_class"], json!("semantic_provider")),
                "matcher_class unsupported value: \"semantic_provider\"",
            ),
            (
                "enums before version",
                |v| {
                    set(v, &["matcher_class"], json!("semantic_provider"));
                    set(v, &["contract_version"], json!("x"));
                },
                "matcher_class unsupported value: \"semantic_provider\"",
            ),
            (
                "wrong version",
                |v| {
                    set(
                        v,
                        &["contract_version"],
                        json!("ExecutionPlane.LowerSimulationEvidence.v1"),
                    )
                },
                "expected contract_version \"ExecutionPlane.LowerSimulationScenario.v1\", got: \"ExecutionPlane.LowerSimulationEvidence.v1\"",
            ),
            (
                "scenario_id missing",
                |v| remove(v, &["scenario_id"]),
                "scenario_id must be a non-empty string, got: nil",
            ),
            (
                "version missing",
                |v| remove(v, &["version"]),
                "version must be a non-empty string, got: nil",
            ),
            (
                "version two parts",
                |v| set(v, &["version"], json!("1.0")),
                "version must be semantic version, got: \"1.0\"",
            ),
            (
                "version prefixed",
                |v| set(v, &["version"], json!("v1.0.0")),
                "version must be semantic version, got: \"v1.0.0\"",
            ),
            (
                "version leading zero",
                |v| set(v, &["version"], json!("01.0.0")),
                "version must be semantic version, got: \"01.0.0\"",
            ),
            (
                "owner_repo foreign",
                |v| set(v, &["owner_repo"], json!("jido_integration")),
                "owner_repo must be execution_plane, got: \"jido_integration\"",
            ),
            (
                "route_kind missing",
                |v| remove(v, &["route_kind"]),
                "route_kind must be a non-empty string, got: nil",
            ),
            (
                "shape missing",
                |v| {
                    remove(
                        v,
                        &["status_or_exit_or_response_or_stream_or_chunk_or_fault_shape"],
                    )
                },
                "status_or_exit_or_response_or_stream_or_chunk_or_fault_shape must be a map",
            ),
            (
                "no_egress_assertion missing",
                |v| remove(v, &["no_egress_assertion"]),
                "no_egress_assertion must be a map",
            ),
            (
                "external_egress allow",
                |v| {
                    set(
                        v,
                        &["no_egress_assertion"],
                        json!({"external_egress": "allow"}),
                    )
                },
                "no_egress_assertion.external_egress must be deny",
            ),
            (
                "process_spawn missing",
                |v| remove(v, &["no_egress_assertion", "process_spawn"]),
                "no_egress_assertion.process_spawn must be deny",
            ),
            (
                "projection missing",
                |v| remove(v, &["bounded_evidence_projection"]),
                "bounded_evidence_projection must be a map",
            ),
            (
                "projection narrows raw_payload",
                |v| {
                    set(
                        v,
                        &["bounded_evidence_projection", "target_contract"],
                        json!("ExecutionOutcome.v1.raw_payload"),
                    )
                },
                "ExecutionOutcome.v1.raw_payload must not be narrowed in place",
            ),
            (
                "projection wrong evidence version",
                |v| {
                    set(
                        v,
                        &["bounded_evidence_projection", "contract_version"],
                        json!("execution_outcome.v1"),
                    )
                },
                "bounded_evidence_projection.contract_version must be ExecutionPlane.LowerSimulationEvidence.v1",
            ),
            (
                "projection persists raw body",
                |v| {
                    set(
                        v,
                        &["bounded_evidence_projection", "raw_payload_persistence"],
                        json!("raw_body"),
                    )
                },
                "bounded_evidence_projection.raw_payload_persistence must be shape_only",
            ),
            (
                "input_fingerprint_ref missing",
                |v| remove(v, &["input_fingerprint_ref"]),
                "input_fingerprint_ref must be a non-empty string, got: nil",
            ),
            (
                "input_fingerprint_ref not opaque",
                |v| set(v, &["input_fingerprint_ref"], json!("sha256")),
                "input_fingerprint_ref must be an opaque handle ref, got: \"sha256\"",
            ),
            (
                "cleanup_behavior missing",
                |v| remove(v, &["cleanup_behavior"]),
                "cleanup_behavior must be a map",
            ),
        ],
    );
}

#[test]
fn semver_accepts_prerelease_and_build_but_not_partial_versions() {
    for ok in [
        "0.0.0",
        "1.0.0",
        "10.20.30",
        "1.0.0-rc.1",
        "1.0.0-alpha-1+build.5",
        "1.0.0+20260410",
    ] {
        assert!(is_semver(ok), "{ok}");
    }
    for bad in [
        "",
        "1",
        "1.0",
        "1.0.0.0",
        "v1.0.0",
        "1.0.0-",
        "1.0.0+",
        "1.0.0-01",
        "1.a.0",
        "1.0.0-rc..1",
        " 1.0.0",
    ] {
        assert!(!is_semver(bad), "{bad}");
    }
}

#[test]
fn scenario_18_lower_scenario_and_adapter_policy_rejections() {
    let cases: [(&str, Value, &[&str]); 6] = [
        (
            "owner_repo",
            json!("jido_integration"),
            &["owner_repo", "execution_plane"],
        ),
        (
            "protocol_surface",
            json!("provider"),
            &["protocol_surface", "unsupported"],
        ),
        (
            "matcher_class",
            json!("semantic_provider"),
            &["matcher_class", "unsupported"],
        ),
        (
            "provider_refs",
            json!(["openai"]),
            &["semantic provider policy", "Execution Plane"],
        ),
        (
            "no_egress_assertion",
            json!({"external_egress": "allow"}),
            &["no_egress_assertion", "external_egress", "deny"],
        ),
        (
            "bounded_evidence_projection",
            json!({"contract_version": LowerSimulationEvidence::VERSION, "raw_payload_persistence": "raw_body"}),
            &["bounded_evidence_projection", "raw_payload_persistence"],
        ),
    ];
    for (key, bad, fragments) in cases {
        let mut value = fx::lower_simulation_scenario();
        set(&mut value, &[key], bad);
        let message = LowerSimulationScenario::from_value(&value)
            .unwrap_err()
            .to_string();
        for fragment in fragments {
            assert!(message.contains(fragment), "{key}: {message}");
        }
    }
    let mut narrowing = fx::lower_simulation_scenario();
    set(
        &mut narrowing,
        &["bounded_evidence_projection"],
        json!({
            "contract_version": LowerSimulationEvidence::VERSION,
            "target_contract": "ExecutionOutcome.v1.raw_payload",
            "raw_payload_persistence": "shape_only"
        }),
    );
    assert!(
        LowerSimulationScenario::from_value(&narrowing)
            .unwrap_err()
            .to_string()
            .contains("must not be narrowed")
    );

    let mut selector = fx::adapter_selection_policy();
    set(&mut selector, &["simulation"], json!("service_mode"));
    assert!(
        AdapterSelectionPolicy::from_value(&selector)
            .unwrap_err()
            .to_string()
            .contains("public simulation selector")
    );
    let mut config = fx::adapter_selection_policy();
    set(&mut config, &["config_key"], json!("request.simulation"));
    let message = AdapterSelectionPolicy::from_value(&config)
        .unwrap_err()
        .to_string();
    assert!(message.contains("config_key") && message.contains("public simulation selector"));
}

// ---------------------------------------------------------------------------------------------
// LowerSimulationEvidence.v1
// ---------------------------------------------------------------------------------------------

#[test]
fn evidence_records_hashes_and_sorted_shape_never_raw_material() {
    let evidence = assert_round_trip::<LowerSimulationEvidence>(&fx::lower_simulation_evidence());
    assert_eq!(evidence.side_effect_policy, "deny_external_egress");
    assert_eq!(evidence.side_effect_result, "not_attempted");
    assert_eq!(
        evidence.raw_payload_shape,
        ["body", "headers", "status_code"]
    );
    assert_eq!(
        evidence.input_fingerprint,
        *fingerprint(&fx::http_simulation_input())
            .as_object()
            .unwrap()
    );
    assert!(is_sha256_ref(
        evidence.output_fingerprint["sha256"].as_str().unwrap()
    ));
    let dump = evidence.to_value();
    assert!(dump["input_fingerprint"].get("body").is_none());
    assert!(dump["output_fingerprint"].get("body").is_none());
    assert_eq!(
        dump["outcome_contract_version"],
        json!("execution_outcome.v1")
    );
    assert!(dump["lineage"].get("event_id").is_none());
}

#[test]
fn evidence_backfills_trace_id_from_request_id() {
    let mut value = fx::lower_simulation_evidence();
    remove(&mut value, &["lineage", "trace_id"]);
    let evidence = LowerSimulationEvidence::from_value(&value).unwrap();
    assert_eq!(evidence.lineage.get("trace_id"), Some("request-1"));
}

#[test]
fn evidence_rejects_each_bad_field_in_documented_order() {
    for key in [
        "body", "raw_body", "payload", "prompt", "input", "stdin", "stdout", "stderr", "headers",
    ] {
        for field in ["input_fingerprint", "output_fingerprint"] {
            let mut value = fx::lower_simulation_evidence();
            set(&mut value, &[field, key], json!("raw prompt"));
            let err = LowerSimulationEvidence::from_value(&value).unwrap_err();
            assert_eq!(err.to_string(), format!("{field} must not carry raw {key}"));
        }
    }
    run_table::<LowerSimulationEvidence>(
        fx::lower_simulation_evidence,
        &[
            (
                "route_id missing",
                |v| remove(v, &["route_id"]),
                "route_id must be a non-empty string, got: nil",
            ),
            (
                "route_id first",
                |v| {
                    remove(v, &["route_id"]);
                    remove(v, &["outcome_family"]);
                },
                "route_id must be a non-empty string, got: nil",
            ),
            (
                "outcome_family before family",
                |v| {
                    remove(v, &["outcome_family"]);
                    remove(v, &["family"]);
                },
                "outcome_family must be a non-empty string, got: nil",
            ),
            (
                "family missing",
                |v| remove(v, &["family"]),
                "family must be a non-empty string, got: nil",
            ),
            (
                "lineage missing",
                |v| remove(v, &["lineage"]),
                "lineage must be a map",
            ),
            (
                "lineage key missing",
                |v| remove(v, &["lineage", "attempt_ref"]),
                "lineage.attempt_ref is required",
            ),
            (
                "lineage unknown key",
                |v| set(v, &["lineage", "colour"], json!("blue")),
                "unknown lineage key: colour",
            ),
            (
                "lineage route mismatch",
                |v| set(v, &["lineage", "route_id"], json!("route-other")),
                "route_id must match lineage.route_id, got: \"route-1\"",
            ),
            (
                "lineage before family match",
                |v| {
                    remove(v, &["lineage", "idempotency_key"]);
                    set(v, &["family"], json!("process"));
                },
                "lineage.idempotency_key is required",
            ),
            (
                "family mismatch",
                |v| set(v, &["family"], json!("process")),
                "family must match outcome_family, got: \"process\" and \"http\"",
            ),
            (
                "family match before version",
                |v| {
                    set(v, &["family"], json!("process"));
                    set(v, &["contract_version"], json!("x"));
                },
                "family must match outcome_family, got: \"process\" and \"http\"",
            ),
            (
                "wrong version",
                |v| set(v, &["contract_version"], json!("x")),
                "expected contract_version \"ExecutionPlane.LowerSimulationEvidence.v1\", got: \"x\"",
            ),
            (
                "scenario_ref missing",
                |v| remove(v, &["scenario_ref"]),
                "scenario_ref must be a non-empty string, got: nil",
            ),
            (
                "protocol missing",
                |v| remove(v, &["protocol"]),
                "protocol must be a non-empty string, got: nil",
            ),
            (
                "side_effect_policy unknown",
                |v| set(v, &["side_effect_policy"], json!("allow_egress")),
                "side_effect_policy is not supported: \"allow_egress\"",
            ),
            (
                "side_effect_result unknown",
                |v| set(v, &["side_effect_result"], json!("attempted")),
                "side_effect_result is not supported: \"attempted\"",
            ),
            (
                "outcome_contract_version missing",
                |v| remove(v, &["outcome_contract_version"]),
                "outcome_contract_version must be a non-empty string, got: nil",
            ),
            (
                "outcome_status missing",
                |v| remove(v, &["outcome_status"]),
                "outcome_status must be a non-empty string, got: nil",
            ),
            (
                "input_fingerprint missing",
                |v| remove(v, &["input_fingerprint"]),
                "input_fingerprint must be a map",
            ),
            (
                "input sha256 short",
                |v| set(v, &["input_fingerprint", "sha256"], json!("sha256:abc")),
                "input_fingerprint must include sha256 and non-negative byte_size",
            ),
            (
                "input sha256 wrong algorithm",
                |v| {
                    set(
                        v,
                        &["input_fingerprint", "sha256"],
                        json!(format!("md5:{}", "1".repeat(64))),
                    )
                },
                "input_fingerprint must include sha256 and non-negative byte_size",
            ),
            (
                "input sha256 missing",
                |v| remove(v, &["input_fingerprint", "sha256"]),
                "input_fingerprint must include sha256 and non-negative byte_size",
            ),
            (
                "input byte_size negative",
                |v| set(v, &["input_fingerprint", "byte_size"], json!(-1)),
                "input_fingerprint must include sha256 and non-negative byte_size",
            ),
            (
                "input byte_size string",
                |v| set(v, &["input_fingerprint", "byte_size"], json!("12")),
                "input_fingerprint must include sha256 and non-negative byte_size",
            ),
            (
                "output byte_size missing",
                |v| remove(v, &["output_fingerprint", "byte_size"]),
                "output_fingerprint must include sha256 and non-negative byte_size",
            ),
            (
                "raw_payload_shape missing",
                |v| remove(v, &["raw_payload_shape"]),
                "raw_payload_shape must be a list",
            ),
            (
                "raw_payload_shape empty element",
                |v| set(v, &["raw_payload_shape"], json!(["body", ""])),
                "raw_payload_shape must be a non-empty string, got: \"\"",
            ),
        ],
    );
}

#[test]
fn scenario_19_evidence_rejects_raw_body_fingerprint_and_route_lineage_mismatch() {
    let base = LowerSimulationEvidence::from_value(&fx::lower_simulation_evidence())
        .unwrap()
        .to_value();
    let mut raw = base.clone();
    set(
        &mut raw,
        &["input_fingerprint"],
        json!({"sha256": format!("sha256:{}", "1".repeat(64)), "byte_size": 1, "body": "raw prompt"}),
    );
    assert!(
        LowerSimulationEvidence::from_value(&raw)
            .unwrap_err()
            .to_string()
            .contains("input_fingerprint must not carry raw body")
    );
    let mut mismatch = base;
    set(
        &mut mismatch,
        &["lineage", "route_id"],
        json!("route-other"),
    );
    assert!(
        LowerSimulationEvidence::from_value(&mismatch)
            .unwrap_err()
            .to_string()
            .contains("route_id must match lineage.route_id")
    );
}

// ---------------------------------------------------------------------------------------------
// Raw-evidence scan
// ---------------------------------------------------------------------------------------------

#[test]
fn raw_scan_finds_forbidden_keys_case_insensitively_and_substrings_with_dotted_paths() {
    // Keys written in sorted order, so document order is the same with or without
    // serde_json's `preserve_order`.
    let value = json!({
        "a": {"b": [{"c": "fine"}, {"Authorization": "Bearer x"}]},
        "list": ["ok", "token sk-live-123"],
        "note": "contains a RAW PROMPT here",
        "z": {"payload": {"prompt": "never descended into"}}
    });
    let findings = raw_evidence_findings(&value);
    assert_eq!(
        findings,
        vec![
            RawFinding {
                path: "a.b.1.Authorization".into(),
                reason: RawFindingReason::ForbiddenKey("Authorization".into())
            },
            RawFinding {
                path: "list.1".into(),
                reason: RawFindingReason::ForbiddenSubstring("sk-live")
            },
            RawFinding {
                path: "note".into(),
                reason: RawFindingReason::ForbiddenSubstring("raw prompt")
            },
            RawFinding {
                path: "z.payload".into(),
                reason: RawFindingReason::ForbiddenKey("payload".into())
            },
        ]
    );
    assert_eq!(
        scan_raw_evidence(&value).unwrap_err().to_string(),
        "raw durable evidence is forbidden at a.b.1.Authorization"
    );
}

#[test]
fn raw_scan_flags_every_forbidden_key_and_substring() {
    for key in [
        "api_key",
        "authorization",
        "body",
        "payload",
        "prompt",
        "provider_body",
        "raw_body",
        "raw_payload",
        "secret",
        "semantic_body",
        "workflow_history",
        "BODY",
        "Raw_Payload",
    ] {
        assert_eq!(
            scan_raw_evidence(&json!({ key: 1 }))
                .unwrap_err()
                .to_string(),
            format!("raw durable evidence is forbidden at {key}")
        );
    }
    for text in [
        "raw prompt",
        "Raw Provider Body",
        "SK-LIVE",
        "workflow history dump",
        "an unbounded semantic blob",
    ] {
        assert_eq!(
            scan_raw_evidence(&json!({"x": {"y": text}}))
                .unwrap_err()
                .to_string(),
            "raw durable evidence is forbidden at x.y"
        );
    }
    assert!(scan_raw_evidence(&json!({"x": "raw-prompt", "n": 1, "b": true, "nil": null})).is_ok());
}

#[test]
fn raw_scan_skips_the_shape_only_allow_list_entirely() {
    let value = json!({
        "checked_for": ["raw prompt", {"body": 1}],
        "header_keys": ["authorization"],
        "raw_payload_included": "raw prompt",
        "raw_payload_shape": ["body", "prompt", "raw_payload"],
        "rejected_findings": [{"secret": "sk-live"}],
        "scan_scope": "workflow history",
        "scanner_ref": "unbounded semantic"
    });
    assert!(raw_evidence_findings(&value).is_empty());
    assert!(scan_raw_evidence(&value).is_ok());
    // The allow-list is about keys: the same words as values elsewhere are still scanned.
    assert!(scan_raw_evidence(&json!({"shape": {"raw_payload": []}})).is_err());
}

#[test]
fn raw_scan_of_a_bare_string_reports_the_empty_root_path() {
    assert_eq!(
        raw_evidence_findings(&json!("raw prompt")),
        vec![RawFinding {
            path: String::new(),
            reason: RawFindingReason::ForbiddenSubstring("raw prompt")
        }]
    );
}

// ---------------------------------------------------------------------------------------------
// ExecutionEvidenceBoundary.v1
// ---------------------------------------------------------------------------------------------

#[test]
fn scan_result_passed_is_the_documented_constant() {
    assert_eq!(
        Value::Object(ExecutionEvidenceBoundary::scan_result_passed()),
        json!({
            "status": "passed",
            "raw_payload_included": false,
            "scanner_ref": "ExecutionPlane.ExecutionEvidenceBoundary.v1.raw_payload_scan",
            "scan_scope": "bounded_evidence_fields",
            "checked_for": ["raw_prompt", "provider_body", "secret", "workflow_history", "unbounded_semantic_body"],
            "rejected_findings": []
        })
    );
    assert_eq!(
        fx::execution_evidence_boundary()["scan_result"],
        Value::Object(ExecutionEvidenceBoundary::scan_result_passed())
    );
}

#[test]
fn evidence_boundary_rejects_each_bad_field_with_upstream_wording() {
    for key in SEMANTIC_KEYS {
        let mut value = fx::execution_evidence_boundary();
        set(&mut value, &[key], json!(["forbidden"]));
        remove(&mut value, &["bounded_exit_code_or_response_shape"]);
        assert_eq!(
            ExecutionEvidenceBoundary::from_value(&value)
                .unwrap_err()
                .to_string(),
            "ExecutionEvidenceBoundary must not carry provider or model or budget semantics"
        );
    }
    run_table::<ExecutionEvidenceBoundary>(
        fx::execution_evidence_boundary,
        &[
            (
                "shape missing",
                |v| remove(v, &["bounded_exit_code_or_response_shape"]),
                "bounded_exit_code_or_response_shape must be a map",
            ),
            (
                "shape carries prompt",
                |v| {
                    set(
                        v,
                        &["bounded_exit_code_or_response_shape", "prompt"],
                        json!("raw prompt"),
                    )
                },
                "raw durable evidence is forbidden at bounded_exit_code_or_response_shape.prompt",
            ),
            (
                "shape carries nested header",
                |v| {
                    set(
                        v,
                        &["bounded_exit_code_or_response_shape", "details"],
                        json!([{"ok": 1}, {"Authorization": "x"}]),
                    )
                },
                "raw durable evidence is forbidden at bounded_exit_code_or_response_shape.details.1.Authorization",
            ),
            (
                "shape value mentions sk-live",
                |v| {
                    set(
                        v,
                        &["bounded_exit_code_or_response_shape", "family"],
                        json!("sk-live-http"),
                    )
                },
                "raw durable evidence is forbidden at bounded_exit_code_or_response_shape.family",
            ),
            (
                "raw scan before version",
                |v| {
                    set(
                        v,
                        &["bounded_exit_code_or_response_shape", "secret"],
                        json!("x"),
                    );
                    set(v, &["contract_version"], json!("x"));
                },
                "raw durable evidence is forbidden at bounded_exit_code_or_response_shape.secret",
            ),
            (
                "wrong version",
                |v| set(v, &["contract_version"], json!("x")),
                "expected contract_version \"ExecutionPlane.ExecutionEvidenceBoundary.v1\", got: \"x\"",
            ),
            (
                "owner_repo stack_lab",
                |v| set(v, &["owner_repo"], json!("stack_lab")),
                "owner_repo must be execution_plane, got: \"stack_lab\"",
            ),
            (
                "owner_repo missing",
                |v| remove(v, &["owner_repo"]),
                "owner_repo must be a non-empty string, got: nil",
            ),
            (
                "outcome_ref not opaque",
                |v| set(v, &["outcome_ref"], json!("route-1")),
                "outcome_ref must be an opaque handle ref, got: \"route-1\"",
            ),
            (
                "bounded_status missing",
                |v| remove(v, &["bounded_status"]),
                "bounded_status must be a non-empty string, got: nil",
            ),
            (
                "input_fingerprint_ref missing",
                |v| remove(v, &["input_fingerprint_ref"]),
                "input_fingerprint_ref must be a non-empty string, got: nil",
            ),
            (
                "claim_check empty",
                |v| set(v, &["claim_check_ref_or_null"], json!("")),
                "claim_check_ref_or_null must be a non-empty string, got: \"\"",
            ),
            (
                "claim_check not opaque",
                |v| set(v, &["claim_check_ref_or_null"], json!("claim-1")),
                "claim_check_ref_or_null must be an opaque handle ref, got: \"claim-1\"",
            ),
            (
                "redacted_preview not opaque",
                |v| set(v, &["redacted_preview_ref_or_null"], json!(5)),
                "redacted_preview_ref_or_null must be a non-empty string, got: 5",
            ),
            (
                "schema_ref missing",
                |v| remove(v, &["schema_ref"]),
                "schema_ref must be a non-empty string, got: nil",
            ),
            (
                "scan_result missing",
                |v| remove(v, &["scan_result"]),
                "scan_result must be a map",
            ),
            (
                "scan_result failed",
                |v| set(v, &["scan_result", "status"], json!("failed")),
                "scan_result.status must be passed",
            ),
            (
                "scan_result includes raw payload",
                |v| set(v, &["scan_result", "raw_payload_included"], json!(true)),
                "scan_result.raw_payload_included must be false",
            ),
            (
                "scan_result raw_payload_included missing",
                |v| remove(v, &["scan_result", "raw_payload_included"]),
                "scan_result.raw_payload_included must be false",
            ),
            (
                "scan_result carries payload",
                |v| set(v, &["scan_result", "payload"], json!({})),
                "raw durable evidence is forbidden at scan_result.payload",
            ),
        ],
    );
}

#[test]
fn evidence_boundary_accepts_opaque_claim_check_and_preview_refs() {
    let mut value = fx::execution_evidence_boundary();
    set(
        &mut value,
        &["claim_check_ref_or_null"],
        json!("claim-check://execution-plane/route-1"),
    );
    set(
        &mut value,
        &["redacted_preview_ref_or_null"],
        json!("urn:preview:route-1"),
    );
    let boundary = assert_round_trip::<ExecutionEvidenceBoundary>(&value);
    assert_eq!(
        boundary.claim_check_ref_or_null.as_deref(),
        Some("claim-check://execution-plane/route-1")
    );
    let fixture =
        assert_round_trip::<ExecutionEvidenceBoundary>(&fx::execution_evidence_boundary());
    assert_eq!(fixture.to_value()["claim_check_ref_or_null"], Value::Null);
}

#[test]
fn scenario_16_evidence_boundary_refuses_raw_evidence_foreign_owner_and_semantics() {
    let base = ExecutionEvidenceBoundary::from_value(&fx::execution_evidence_boundary())
        .unwrap()
        .to_value();
    for (key, value) in [
        ("prompt", json!("raw prompt")),
        ("provider_body", json!("{\"wire\":true}")),
        ("secret", json!("sk-live")),
        ("semantic_body", json!("semantic ".repeat(16))),
    ] {
        let mut attrs = base.clone();
        set(
            &mut attrs,
            &["bounded_exit_code_or_response_shape", key],
            value,
        );
        assert!(
            ExecutionEvidenceBoundary::from_value(&attrs)
                .unwrap_err()
                .to_string()
                .contains("raw durable evidence"),
            "{key}"
        );
    }
    let mut foreign = base.clone();
    set(&mut foreign, &["owner_repo"], json!("stack_lab"));
    assert!(
        ExecutionEvidenceBoundary::from_value(&foreign)
            .unwrap_err()
            .to_string()
            .contains("owner_repo must be execution_plane")
    );
    for key in ["provider_refs", "model_refs", "budget_profile_ref"] {
        let mut attrs = base.clone();
        set(&mut attrs, &[key], json!(["forbidden"]));
        assert!(
            ExecutionEvidenceBoundary::from_value(&attrs)
                .unwrap_err()
                .to_string()
                .contains("provider or model or budget semantics")
        );
    }
}

fn sim_evidence() -> LowerSimulationEvidence {
    LowerSimulationEvidence::from_value(&fx::lower_simulation_evidence()).unwrap()
}

#[test]
fn from_outcome_projects_an_http_outcome_to_its_shape_without_the_body() {
    let outcome = fx::http_outcome_with_raw_body();
    let evidence = sim_evidence();
    let boundary =
        ExecutionEvidenceBoundary::from_outcome(&outcome, &evidence, FromOutcomeOptions::default())
            .unwrap();
    assert_eq!(boundary.owner_repo, "execution_plane");
    assert_eq!(boundary.bounded_status, "succeeded");
    assert_eq!(boundary.outcome_ref, "execution-outcome://route-1");
    assert_eq!(
        boundary.schema_ref,
        "schema://execution-plane/execution-evidence-boundary/v1"
    );
    assert_eq!(
        boundary.scan_result,
        ExecutionEvidenceBoundary::scan_result_passed()
    );
    let hex = evidence.input_fingerprint["sha256"]
        .as_str()
        .unwrap()
        .strip_prefix("sha256:")
        .unwrap();
    assert_eq!(
        boundary.input_fingerprint_ref,
        format!("fingerprint://execution-plane/input/{hex}")
    );
    assert_eq!(
        Value::Object(boundary.bounded_exit_code_or_response_shape.clone()),
        json!({"family": "http", "raw_payload_shape": ["body", "headers", "status_code"], "status_code": 200})
    );

    let dump = boundary.to_value();
    let text = dump.to_string();
    assert!(!text.contains("raw provider body kept"), "{text}");
    let mut keys = Vec::new();
    all_keys(&dump, &mut keys);
    assert!(!keys.iter().any(|k| k == "raw_payload"), "{keys:?}");
    assert_eq!(ExecutionEvidenceBoundary::from_value(&dump), Ok(boundary));
    // The outcome itself is untouched.
    assert_eq!(
        outcome["raw_payload"]["body"],
        json!("raw provider body kept in ExecutionOutcome.v1 only")
    );
    // The boundary fixture is exactly this projection.
    assert_eq!(
        ExecutionEvidenceBoundary::from_value(&fx::execution_evidence_boundary())
            .unwrap()
            .to_value(),
        dump
    );
}

#[test]
fn from_outcome_takes_exit_code_from_exit_code_then_exit_status_integers_only() {
    let evidence = sim_evidence();
    let project = |raw: Value| {
        let mut outcome = fx::process_outcome_exit_3();
        set(&mut outcome, &["raw_payload"], raw);
        ExecutionEvidenceBoundary::from_outcome(&outcome, &evidence, FromOutcomeOptions::default())
            .unwrap()
            .bounded_exit_code_or_response_shape
    };
    let shape = ExecutionEvidenceBoundary::from_outcome(
        &fx::process_outcome_exit_3(),
        &evidence,
        FromOutcomeOptions::default(),
    )
    .unwrap()
    .bounded_exit_code_or_response_shape;
    assert_eq!(shape["exit_code"], json!(3));
    assert_eq!(
        shape["raw_payload_shape"],
        json!(["exit", "stderr", "stdout"])
    );
    assert!(shape.get("status_code").is_none());
    assert_eq!(project(json!({"exit_status": 1}))["exit_code"], json!(1));
    assert_eq!(
        project(json!({"exit": {"code": 7}, "exit_status": 1}))["exit_code"],
        json!(7)
    );
    assert_eq!(
        project(json!({"exit": {"code": "7"}, "exit_status": 2}))["exit_code"],
        json!(2)
    );
    assert!(
        project(json!({"exit": {"code": 1.5}}))
            .get("exit_code")
            .is_none()
    );
    assert!(
        project(json!({"exit_status": "1"}))
            .get("exit_code")
            .is_none()
    );
    assert!(project(json!({})).get("exit_code").is_none());
    assert_eq!(project(json!({}))["raw_payload_shape"], json!([]));
    assert_eq!(project(json!({"exit_status": -1}))["exit_code"], json!(-1));
}

#[test]
fn from_outcome_honours_options_and_still_scans_the_projection() {
    let evidence = sim_evidence();
    let options = FromOutcomeOptions {
        outcome_ref: Some("execution-outcome://custom".into()),
        claim_check_ref_or_null: Some("claim-check://store/1".into()),
        redacted_preview_ref_or_null: Some("preview://store/1".into()),
        schema_ref: Some("schema://custom/v1".into()),
    };
    let boundary = ExecutionEvidenceBoundary::from_outcome(
        &fx::http_outcome_with_raw_body(),
        &evidence,
        options,
    )
    .unwrap();
    assert_eq!(boundary.outcome_ref, "execution-outcome://custom");
    assert_eq!(
        boundary.claim_check_ref_or_null.as_deref(),
        Some("claim-check://store/1")
    );
    assert_eq!(
        boundary.redacted_preview_ref_or_null.as_deref(),
        Some("preview://store/1")
    );
    assert_eq!(boundary.schema_ref, "schema://custom/v1");

    let bad_ref = FromOutcomeOptions {
        outcome_ref: Some("plain".into()),
        ..Default::default()
    };
    assert_eq!(
        ExecutionEvidenceBoundary::from_outcome(
            &fx::http_outcome_with_raw_body(),
            &evidence,
            bad_ref
        )
        .unwrap_err()
        .to_string(),
        "outcome_ref must be an opaque handle ref, got: \"plain\""
    );
    let mut leaky = fx::http_outcome_with_raw_body();
    set(
        &mut leaky,
        &["raw_payload", "status_code"],
        json!("raw prompt"),
    );
    assert_eq!(
        ExecutionEvidenceBoundary::from_outcome(&leaky, &evidence, FromOutcomeOptions::default())
            .unwrap_err()
            .to_string(),
        "raw durable evidence is forbidden at bounded_exit_code_or_response_shape.status_code"
    );
}

#[test]
fn from_outcome_refuses_malformed_outcomes() {
    let evidence = sim_evidence();
    let run = |outcome: Value| {
        ExecutionEvidenceBoundary::from_outcome(&outcome, &evidence, FromOutcomeOptions::default())
            .unwrap_err()
            .to_string()
    };
    assert!(run(json!([])).starts_with("expected map attrs"));
    let mut wrong = fx::http_outcome_with_raw_body();
    set(
        &mut wrong,
        &["contract_version"],
        json!("execution_event.v1"),
    );
    assert_eq!(
        run(wrong),
        "expected contract_version \"execution_outcome.v1\", got: \"execution_event.v1\""
    );
    for field in ["route_id", "status", "family"] {
        let mut outcome = fx::http_outcome_with_raw_body();
        remove(&mut outcome, &[field]);
        assert_eq!(
            run(outcome),
            format!("{field} must be a non-empty string, got: nil")
        );
    }
    let mut outcome = fx::http_outcome_with_raw_body();
    set(&mut outcome, &["raw_payload"], json!("body"));
    assert_eq!(run(outcome), "raw_payload must be a map");
    let mut bad_evidence = evidence.clone();
    bad_evidence
        .input_fingerprint
        .insert("sha256".into(), json!("nope"));
    assert!(
        ExecutionEvidenceBoundary::from_outcome(
            &fx::http_outcome_with_raw_body(),
            &bad_evidence,
            FromOutcomeOptions::default()
        )
        .is_err()
    );
}

// ---------------------------------------------------------------------------------------------
// AdapterSelectionPolicy.v1
// ---------------------------------------------------------------------------------------------

#[test]
fn adapter_selection_policy_accepts_every_owner_surface() {
    for surface in [
        "application_config",
        "adapter_registry",
        "transport_registry",
        "provider_registry",
        "backend_manifest",
        "profile_registry_install",
    ] {
        let mut value = fx::adapter_selection_policy();
        set(&mut value, &["selection_surface"], json!(surface));
        assert_eq!(
            assert_round_trip::<AdapterSelectionPolicy>(&value).selection_surface,
            surface
        );
    }
    let mut value = fx::adapter_selection_policy();
    // Mentioning simulation is fine; only `simulation` itself or a `.simulation` segment is a selector.
    set(
        &mut value,
        &["config_key"],
        json!("execution_plane.lower_runtime_simulation_registry"),
    );
    assert_round_trip::<AdapterSelectionPolicy>(&value);
}

#[test]
fn adapter_selection_policy_rejects_each_bad_field_with_upstream_wording() {
    run_table::<AdapterSelectionPolicy>(
        fx::adapter_selection_policy,
        &[
            (
                "simulation key",
                |v| set(v, &["simulation"], json!("service_mode")),
                "public simulation selector is forbidden; use owner registry configuration",
            ),
            (
                "simulation key null",
                |v| set(v, &["simulation"], Value::Null),
                "public simulation selector is forbidden; use owner registry configuration",
            ),
            (
                "simulation key first",
                |v| {
                    set(v, &["simulation"], json!(true));
                    remove(v, &["selection_surface"]);
                },
                "public simulation selector is forbidden; use owner registry configuration",
            ),
            (
                "selection_surface request",
                |v| set(v, &["selection_surface"], json!("request_param")),
                "selection_surface unsupported value: \"request_param\"",
            ),
            (
                "selection_surface missing",
                |v| remove(v, &["selection_surface"]),
                "selection_surface must be a non-empty string, got: nil",
            ),
            (
                "config_key simulation",
                |v| set(v, &["config_key"], json!("simulation")),
                "config_key must not be a public simulation selector",
            ),
            (
                "config_key dotted simulation",
                |v| set(v, &["config_key"], json!("request.simulation")),
                "config_key must not be a public simulation selector",
            ),
            (
                "config_key contains .simulation",
                |v| set(v, &["config_key"], json!("a.simulation_mode.b")),
                "config_key must not be a public simulation selector",
            ),
            (
                "config_key missing",
                |v| remove(v, &["config_key"]),
                "config_key must be a non-empty string, got: nil",
            ),
            (
                "config_key before version",
                |v| {
                    set(v, &["config_key"], json!("simulation"));
                    set(v, &["contract_version"], json!("x"));
                },
                "config_key must not be a public simulation selector",
            ),
            (
                "wrong version",
                |v| set(v, &["contract_version"], json!("x")),
                "expected contract_version \"ExecutionPlane.AdapterSelectionPolicy.v1\", got: \"x\"",
            ),
            (
                "owner_repo foreign",
                |v| set(v, &["owner_repo"], json!("jido_integration")),
                "owner_repo must be execution_plane, got: \"jido_integration\"",
            ),
            (
                "default_value_when_unset missing",
                |v| remove(v, &["default_value_when_unset"]),
                "default_value_when_unset must be a non-empty string, got: nil",
            ),
            (
                "fail_closed_action missing",
                |v| remove(v, &["fail_closed_action_when_misconfigured"]),
                "fail_closed_action_when_misconfigured must be a non-empty string, got: nil",
            ),
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// Property: parse(dump(x)) == x for random valid values
// ---------------------------------------------------------------------------------------------

fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_.:-]{1,20}"
}

fn opaque() -> impl Strategy<Value = String> {
    "[a-z]{1,8}://[a-z0-9/_-]{1,20}"
}

fn safe_map() -> impl Strategy<Value = serde_json::Map<String, Value>> {
    prop::collection::btree_map(
        "[a-z_]{1,8}".prop_filter("not a forbidden key", |k| {
            ![
                "body",
                "payload",
                "prompt",
                "secret",
                "api_key",
                "raw_body",
                "raw_payload",
                "provider_body",
                "semantic_body",
                "authorization",
                "workflow_history",
            ]
            .contains(&k.as_str())
        }),
        prop_oneof![
            text().prop_map(Value::String),
            any::<i64>().prop_map(Value::from),
            any::<bool>().prop_map(Value::Bool)
        ],
        0..5,
    )
    .prop_map(|m| m.into_iter().collect())
}

fn assert_law<T: Contract>(value: &Value) -> Result<T, TestCaseError> {
    let parsed =
        T::from_value(value).map_err(|e| TestCaseError::fail(format!("{}: {e}", T::NAME)))?;
    let again = T::from_value(&serde_json::from_str(&parsed.to_value().to_string()).unwrap());
    prop_assert_eq!(again, Ok(parsed.clone()));
    Ok(parsed)
}

proptest! {
    #[test]
    fn random_no_egress_policies_round_trip(
        policy_ref in opaque(),
        boundary in text(),
        extra in safe_map(),
        order in prop::collection::vec(0usize..2, 2..6),
    ) {
        let mut value = fx::no_egress_policy();
        set(&mut value, &["policy_ref"], json!(policy_ref));
        set(&mut value, &["enforcement_boundary"], json!(boundary));
        let mut surfaces = value["denied_surfaces"].as_object().unwrap().clone();
        for (k, v) in extra { surfaces.entry(k).or_insert(v); }
        set(&mut value, &["denied_surfaces"], Value::Object(surfaces));
        let names = ["attempted_unregistered_provider_route", "attempted_raw_external_saas_write_path"];
        let mut items: Vec<&str> = order.iter().map(|i| names[*i]).collect();
        items.extend(names);
        set(&mut value, &["required_negative_evidence"], json!(items));
        let policy = assert_law::<NoEgressPolicy>(&value)?;
        prop_assert_eq!(policy.required_negative_evidence.len(), 2);
    }

    #[test]
    fn random_scenarios_round_trip(
        strings in prop::collection::vec(text(), 3),
        fp in opaque(),
        (major, minor, patch) in (0u32..50, 0u32..50, 0u32..50),
        surface in prop::sample::select(vec!["process", "http", "graphql", "self_hosted"]),
        matcher in prop::sample::select(vec!["deterministic_over_input", "artifact_ref", "frozen_fixture"]),
        shape in safe_map(),
        cleanup in safe_map(),
    ) {
        let mut value = fx::lower_simulation_scenario();
        set(&mut value, &["scenario_id"], json!(strings[0]));
        set(&mut value, &["route_kind"], json!(strings[1]));
        set(&mut value, &["version"], json!(format!("{major}.{minor}.{patch}")));
        set(&mut value, &["protocol_surface"], json!(surface));
        set(&mut value, &["matcher_class"], json!(matcher));
        set(&mut value, &["status_or_exit_or_response_or_stream_or_chunk_or_fault_shape"], Value::Object(shape));
        set(&mut value, &["cleanup_behavior"], Value::Object(cleanup));
        set(&mut value, &["input_fingerprint_ref"], json!(fp));
        assert_law::<LowerSimulationScenario>(&value)?;
    }

    #[test]
    fn random_evidence_and_its_boundary_projection_round_trip(
        strings in prop::collection::vec(text(), 5),
        family in "[a-z]{1,10}",
        input in safe_map(),
        raw_payload in safe_map(),
        status_code in prop::option::of(100u16..600),
        exit_status in prop::option::of(any::<i32>()),
        policy in prop::sample::select(vec!["deny_external_egress", "deny_process_spawn"]),
        result in prop::sample::select(vec!["not_attempted", "blocked_before_dispatch"]),
    ) {
        let mut raw_payload = raw_payload;
        if let Some(code) = status_code { raw_payload.insert("status_code".into(), json!(code)); }
        if let Some(code) = exit_status { raw_payload.insert("exit_status".into(), json!(code)); }
        let raw_payload = Value::Object(raw_payload);
        let route_id = strings[0].clone();
        let mut value = fx::lower_simulation_evidence();
        set(&mut value, &["route_id"], json!(route_id));
        set(&mut value, &["lineage", "route_id"], json!(route_id));
        set(&mut value, &["family"], json!(family));
        set(&mut value, &["outcome_family"], json!(family));
        set(&mut value, &["scenario_ref"], json!(strings[1]));
        set(&mut value, &["protocol"], json!(strings[2]));
        set(&mut value, &["outcome_status"], json!(strings[3]));
        set(&mut value, &["side_effect_policy"], json!(policy));
        set(&mut value, &["side_effect_result"], json!(result));
        set(&mut value, &["input_fingerprint"], fingerprint(&Value::Object(input)));
        set(&mut value, &["output_fingerprint"], fingerprint(&raw_payload));
        let keys: Vec<&String> = raw_payload.as_object().unwrap().keys().rev().collect();
        set(&mut value, &["raw_payload_shape"], json!(keys));
        let evidence = assert_law::<LowerSimulationEvidence>(&value)?;
        let mut sorted = evidence.raw_payload_shape.clone();
        sorted.sort();
        prop_assert_eq!(&evidence.raw_payload_shape, &sorted);

        let outcome = json!({
            "contract_version": "execution_outcome.v1",
            "route_id": route_id, "status": strings[4], "family": family,
            "raw_payload": raw_payload,
            "lineage": fx::route_lineage(&route_id),
        });
        let boundary = ExecutionEvidenceBoundary::from_outcome(&outcome, &evidence, FromOutcomeOptions::default())
            .map_err(|e| TestCaseError::fail(format!("{e}")))?;
        prop_assert_eq!(&boundary.bounded_exit_code_or_response_shape["raw_payload_shape"], &json!(sorted));
        let expected_exit = exit_status.map(|c| json!(c));
        prop_assert_eq!(boundary.bounded_exit_code_or_response_shape.get("exit_code"), expected_exit.as_ref());
        assert_law::<ExecutionEvidenceBoundary>(&boundary.to_value())?;
    }

    #[test]
    fn random_adapter_selection_policies_round_trip(
        surface in prop::sample::select(vec!["application_config", "adapter_registry", "transport_registry", "provider_registry", "backend_manifest", "profile_registry_install"]),
        config_key in "[a-z_]{1,10}(\\.[a-z_]{1,10}){0,3}".prop_filter("no selector", |k| k != "simulation" && !k.contains(".simulation")),
        default in text(),
        action in text(),
    ) {
        let mut value = fx::adapter_selection_policy();
        set(&mut value, &["selection_surface"], json!(surface));
        set(&mut value, &["config_key"], json!(config_key));
        set(&mut value, &["default_value_when_unset"], json!(default));
        set(&mut value, &["fail_closed_action_when_misconfigured"], json!(action));
        assert_law::<AdapterSelectionPolicy>(&value)?;
    }

    #[test]
    fn raw_scan_never_panics_and_findings_agree_with_scan(value in arb_json()) {
        let findings = raw_evidence_findings(&value);
        prop_assert_eq!(findings.is_empty(), scan_raw_evidence(&value).is_ok());
    }
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        prop_oneof![
            Just("raw prompt".to_owned()),
            Just("sk-live".to_owned()),
            "[a-z ]{0,12}"
        ]
        .prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("body".to_owned()),
                    Just("checked_for".to_owned()),
                    "[a-z]{1,6}"
                ],
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}
