//! Phase-4 hazmat contracts (§2.6): the shared scope block with the actor rule checked first,
//! enums, non-negative integers, and the NoBypassScan clear/blocked semantics.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ep_contracts::fixtures::hazmat as fx;
use ep_contracts::hazmat::{
    AttachGrant, NoBypassScan, StreamAttachRevocation, StreamBackpressure, WorkerBudget,
};
use ep_contracts::{Contract, ContractError};
use proptest::prelude::*;
use serde_json::{Value, json};

mod support;
use support::{assert_round_trip, remove, run_table, set};

const SCOPE_STRINGS: [&str; 12] = [
    "tenant_ref",
    "installation_ref",
    "workspace_ref",
    "project_ref",
    "environment_ref",
    "resource_ref",
    "authority_packet_ref",
    "permission_decision_ref",
    "idempotency_key",
    "trace_id",
    "correlation_id",
    "release_manifest_ref",
];

fn check_scope_block<T: Contract>(base: fn() -> Value) {
    // The actor rule comes first, even before contract_version.
    let mut value = base();
    remove(&mut value, &["principal_ref"]);
    set(&mut value, &["contract_version"], json!("nope"));
    assert_eq!(
        T::from_value(&value).unwrap_err().to_string(),
        "principal_ref or system_actor_ref is required"
    );
    // Then contract_version, then the scope strings in order.
    let mut value = base();
    set(
        &mut value,
        &["contract_version"],
        json!("ExecutionPlane.Other.v1"),
    );
    remove(&mut value, &["tenant_ref"]);
    assert_eq!(
        T::from_value(&value).unwrap_err().to_string(),
        format!(
            "expected contract_version \"{}\", got: \"ExecutionPlane.Other.v1\"",
            T::NAME
        )
    );
    for (i, field) in SCOPE_STRINGS.iter().enumerate() {
        let mut value = base();
        remove(&mut value, &[field]);
        // A later scope field broken too must not win over the earlier one.
        if let Some(later) = SCOPE_STRINGS.get(i + 1) {
            set(&mut value, &[later], json!(""));
        }
        let err = T::from_value(&value).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("{field} must be a non-empty string, got: nil"),
            "{}",
            T::NAME
        );
        assert_eq!(err.field(), Some(*field));
    }
    // A system actor alone is enough, and is kept.
    let mut value = base();
    remove(&mut value, &["principal_ref"]);
    set(
        &mut value,
        &["system_actor_ref"],
        json!("system-actor://scheduler"),
    );
    let parsed = assert_round_trip::<T>(&value);
    let dumped = parsed.to_value();
    assert_eq!(dumped["principal_ref"], Value::Null);
    assert_eq!(
        dumped["system_actor_ref"],
        json!("system-actor://scheduler")
    );
    // An empty actor ref is an invalid string, not an absent one.
    let mut value = base();
    set(&mut value, &["principal_ref"], json!(""));
    assert_eq!(
        T::from_value(&value).unwrap_err().to_string(),
        "principal_ref must be a non-empty string, got: \"\""
    );
}

#[test]
fn every_hazmat_fixture_round_trips_with_flat_string_keyed_dumps() {
    assert_round_trip::<AttachGrant>(&fx::attach_grant());
    assert_round_trip::<StreamBackpressure>(&fx::stream_backpressure());
    assert_round_trip::<WorkerBudget>(&fx::worker_budget());
    assert_round_trip::<StreamAttachRevocation>(&fx::stream_attach_revocation());
    assert_round_trip::<NoBypassScan>(&fx::no_bypass_scan());
    assert_round_trip::<NoBypassScan>(&fx::no_bypass_scan_blocked());
    let dump = assert_round_trip::<AttachGrant>(&fx::attach_grant()).to_value();
    for key in SCOPE_STRINGS {
        assert!(
            dump[key].is_string(),
            "scope field {key} is flat in the dump"
        );
    }
}

#[test]
fn every_hazmat_contract_checks_actor_then_version_then_scope_block_in_order() {
    check_scope_block::<AttachGrant>(fx::attach_grant);
    check_scope_block::<StreamBackpressure>(fx::stream_backpressure);
    check_scope_block::<WorkerBudget>(fx::worker_budget);
    check_scope_block::<StreamAttachRevocation>(fx::stream_attach_revocation);
    check_scope_block::<NoBypassScan>(fx::no_bypass_scan);
}

#[test]
fn hazmat_contracts_refuse_non_object_input_and_ignore_unknown_keys() {
    assert!(matches!(
        AttachGrant::from_value(&json!(["x"])),
        Err(ContractError::NotAnObject { .. })
    ));
    let mut value = fx::worker_budget();
    set(&mut value, &["colour"], json!("blue"));
    let parsed = WorkerBudget::from_value(&value).unwrap();
    assert!(parsed.to_value().get("colour").is_none());
}

#[test]
fn attach_grant_keeps_grant_scope_and_rejects_each_bad_field() {
    let grant = assert_round_trip::<AttachGrant>(&fx::attach_grant());
    assert_eq!(grant.attach_grant_ref, "attach-grant://tenant-1/stream/1");
    assert_eq!(
        grant.grant_scope["capabilities"],
        json!(["stream.attach", "stdio.read"])
    );
    assert_eq!(grant.to_value()["lease_ref"], json!("lease://1"));
    run_table::<AttachGrant>(
        fx::attach_grant,
        &[
            (
                "attach_grant_ref missing",
                |v| remove(v, &["attach_grant_ref"]),
                "attach_grant_ref must be a non-empty string, got: nil",
            ),
            (
                "lease_ref empty",
                |v| set(v, &["lease_ref"], json!("")),
                "lease_ref must be a non-empty string, got: \"\"",
            ),
            (
                "hazmat_resource_ref number",
                |v| set(v, &["hazmat_resource_ref"], json!(7)),
                "hazmat_resource_ref must be a non-empty string, got: 7",
            ),
            (
                "grant_scope missing",
                |v| remove(v, &["grant_scope"]),
                "grant_scope must be a map",
            ),
            (
                "grant_scope list",
                |v| set(v, &["grant_scope"], json!([])),
                "grant_scope must be a map",
            ),
            (
                "expires_at missing",
                |v| remove(v, &["expires_at"]),
                "expires_at must be a non-empty string, got: nil",
            ),
            (
                "expires_at not a date-time",
                |v| set(v, &["expires_at"], json!("tomorrow")),
                "expires_at must be ISO8601, got: \"tomorrow\"",
            ),
            (
                "expires_at without offset",
                |v| set(v, &["expires_at"], json!("2026-04-10T12:10:00")),
                "expires_at must be ISO8601, got: \"2026-04-10T12:10:00\"",
            ),
            (
                "revocation_ref missing",
                |v| remove(v, &["revocation_ref"]),
                "revocation_ref must be a non-empty string, got: nil",
            ),
        ],
    );
}

#[test]
fn legacy_narrow_attach_grant_is_rejected_with_the_actor_message() {
    let err = AttachGrant::from_value(&fx::legacy_attach_grant()).unwrap_err();
    assert!(
        err.to_string()
            .contains("principal_ref or system_actor_ref")
    );
    assert_eq!(err.field(), Some("principal_ref"));
}

#[test]
fn stream_backpressure_accepts_only_known_pressure_classes() {
    for class in ["soft_pressure", "hard_pressure", "budget_exhausted"] {
        let mut value = fx::stream_backpressure();
        set(&mut value, &["pressure_class"], json!(class));
        assert_eq!(
            assert_round_trip::<StreamBackpressure>(&value).pressure_class,
            class
        );
    }
    let event = StreamBackpressure::from_value(&fx::stream_backpressure()).unwrap();
    assert_eq!(
        event.to_value()["termination_reason"],
        json!("budget_exhausted")
    );
    run_table::<StreamBackpressure>(
        fx::stream_backpressure,
        &[
            (
                "pressure_class unknown",
                |v| set(v, &["pressure_class"], json!("mild")),
                "pressure_class is not supported: \"mild\"",
            ),
            (
                "pressure_class missing",
                |v| remove(v, &["pressure_class"]),
                "pressure_class must be a non-empty string, got: nil",
            ),
            (
                "pressure_class checked before version",
                |v| {
                    set(v, &["pressure_class"], json!("mild"));
                    set(v, &["contract_version"], json!("x"));
                },
                "pressure_class is not supported: \"mild\"",
            ),
            (
                "stream_ref missing",
                |v| remove(v, &["stream_ref"]),
                "stream_ref must be a non-empty string, got: nil",
            ),
            (
                "budget_ref missing",
                |v| remove(v, &["budget_ref"]),
                "budget_ref must be a non-empty string, got: nil",
            ),
            (
                "termination_reason missing",
                |v| remove(v, &["termination_reason"]),
                "termination_reason must be a non-empty string, got: nil",
            ),
            (
                "last_heartbeat_at bad",
                |v| set(v, &["last_heartbeat_at"], json!("2026-13-40T00:00:00Z")),
                "last_heartbeat_at must be ISO8601, got: \"2026-13-40T00:00:00Z\"",
            ),
            (
                "diagnostics_ref missing",
                |v| remove(v, &["diagnostics_ref"]),
                "diagnostics_ref must be a non-empty string, got: nil",
            ),
        ],
    );
}

#[test]
fn worker_budget_requires_a_non_negative_integer_load() {
    let mut value = fx::worker_budget();
    set(&mut value, &["current_load"], json!(42));
    let budget = assert_round_trip::<WorkerBudget>(&value);
    assert_eq!(budget.current_load, 42);
    assert_eq!(budget.to_value()["current_load"], json!(42));
    run_table::<WorkerBudget>(
        fx::worker_budget,
        &[
            (
                "current_load negative",
                |v| set(v, &["current_load"], json!(-1)),
                "current_load must be a non-negative integer",
            ),
            (
                "current_load fractional",
                |v| set(v, &["current_load"], json!(1.5)),
                "current_load must be a non-negative integer",
            ),
            (
                "current_load string",
                |v| set(v, &["current_load"], json!("42")),
                "current_load must be a non-negative integer",
            ),
            (
                "current_load missing",
                |v| remove(v, &["current_load"]),
                "current_load must be a non-negative integer",
            ),
            (
                "worker_pool_ref missing",
                |v| remove(v, &["worker_pool_ref"]),
                "worker_pool_ref must be a non-empty string, got: nil",
            ),
            (
                "budget_ref missing",
                |v| remove(v, &["budget_ref"]),
                "budget_ref must be a non-empty string, got: nil",
            ),
            (
                "queue_ref missing",
                |v| remove(v, &["queue_ref"]),
                "queue_ref must be a non-empty string, got: nil",
            ),
            (
                "admission_decision_ref missing",
                |v| remove(v, &["admission_decision_ref"]),
                "admission_decision_ref must be a non-empty string, got: nil",
            ),
            (
                "shed_reason missing",
                |v| remove(v, &["shed_reason"]),
                "shed_reason must be a non-empty string, got: nil",
            ),
        ],
    );
    let mut value = fx::worker_budget();
    set(&mut value, &["current_load"], json!(-1));
    assert_eq!(
        WorkerBudget::from_value(&value).unwrap_err().field(),
        Some("current_load")
    );
}

#[test]
fn stream_attach_revocation_requires_a_non_negative_event_position() {
    assert_eq!(
        assert_round_trip::<StreamAttachRevocation>(&fx::stream_attach_revocation())
            .last_event_position,
        4
    );
    run_table::<StreamAttachRevocation>(
        fx::stream_attach_revocation,
        &[
            (
                "last_event_position negative",
                |v| set(v, &["last_event_position"], json!(-1)),
                "last_event_position must be a non-negative integer",
            ),
            (
                "last_event_position null",
                |v| set(v, &["last_event_position"], Value::Null),
                "last_event_position must be a non-negative integer",
            ),
            (
                "stream_ref missing",
                |v| remove(v, &["stream_ref"]),
                "stream_ref must be a non-empty string, got: nil",
            ),
            (
                "attach_grant_ref missing",
                |v| remove(v, &["attach_grant_ref"]),
                "attach_grant_ref must be a non-empty string, got: nil",
            ),
            (
                "lease_ref missing",
                |v| remove(v, &["lease_ref"]),
                "lease_ref must be a non-empty string, got: nil",
            ),
            (
                "revocation_ref missing",
                |v| remove(v, &["revocation_ref"]),
                "revocation_ref must be a non-empty string, got: nil",
            ),
            (
                "termination_ref missing",
                |v| remove(v, &["termination_ref"]),
                "termination_ref must be a non-empty string, got: nil",
            ),
        ],
    );
}

fn one_violation(v: &mut Value, violation: Value) {
    set(v, &["violations"], json!([violation]));
    set(v, &["scan_status"], json!("blocked"));
}

#[test]
fn no_bypass_scan_checks_status_paths_violations_and_semantics_in_order() {
    run_table::<NoBypassScan>(
        fx::no_bypass_scan,
        &[
            (
                "clear with a violation",
                |v| set(v, &["violations"], json!([fx::no_bypass_violation()])),
                "clear no-bypass scan must not carry violations",
            ),
            (
                "blocked without violations",
                |v| set(v, &["scan_status"], json!("blocked")),
                "blocked no-bypass scan must carry at least one violation",
            ),
            (
                "blocked with violations absent",
                |v| {
                    set(v, &["scan_status"], json!("blocked"));
                    remove(v, &["violations"]);
                },
                "blocked no-bypass scan must carry at least one violation",
            ),
            (
                "scan_status unknown",
                |v| set(v, &["scan_status"], json!("maybe")),
                "scan_status is not supported: \"maybe\"",
            ),
            (
                "scan_status missing before checked_paths",
                |v| {
                    remove(v, &["scan_status"]);
                    remove(v, &["checked_paths"]);
                },
                "scan_status must be a non-empty string, got: nil",
            ),
            (
                "checked_paths missing",
                |v| remove(v, &["checked_paths"]),
                "checked_paths must be a list",
            ),
            (
                "checked_paths not a list",
                |v| set(v, &["checked_paths"], json!("lib")),
                "checked_paths must be a list",
            ),
            (
                "checked_path empty",
                |v| set(v, &["checked_paths"], json!(["lib", ""])),
                "checked_path must be a non-empty string, got: \"\"",
            ),
            (
                "checked_paths before violations",
                |v| {
                    remove(v, &["checked_paths"]);
                    set(v, &["violations"], json!(7));
                },
                "checked_paths must be a list",
            ),
            (
                "violations not a list",
                |v| set(v, &["violations"], json!({})),
                "violations must be a list",
            ),
            (
                "violation not a map",
                |v| set(v, &["violations"], json!([5])),
                "violation must be a map, got: 5",
            ),
            (
                "violations before status enum",
                |v| {
                    set(v, &["scan_status"], json!("maybe"));
                    set(v, &["violations"], json!([{}]));
                },
                "violation.path is required",
            ),
            (
                "violation.path missing",
                |v| {
                    one_violation(
                        v,
                        json!({"line": 1, "forbidden_module": "M", "required_facade": "F"}),
                    )
                },
                "violation.path is required",
            ),
            (
                "violation.path null",
                |v| {
                    one_violation(
                        v,
                        json!({"path": null, "line": 1, "forbidden_module": "M", "required_facade": "F"}),
                    )
                },
                "violation.path must be a non-empty string, got: nil",
            ),
            (
                "violation.line missing",
                |v| {
                    one_violation(
                        v,
                        json!({"path": "a.ex", "forbidden_module": "M", "required_facade": "F"}),
                    )
                },
                "violation.line is required",
            ),
            (
                "violation.line zero",
                |v| {
                    one_violation(
                        v,
                        json!({"path": "a.ex", "line": 0, "forbidden_module": "M", "required_facade": "F"}),
                    )
                },
                "violation.line is required",
            ),
            (
                "violation.line negative",
                |v| {
                    one_violation(
                        v,
                        json!({"path": "a.ex", "line": -3, "forbidden_module": "M", "required_facade": "F"}),
                    )
                },
                "violation.line is required",
            ),
            (
                "violation.line string",
                |v| {
                    one_violation(
                        v,
                        json!({"path": "a.ex", "line": "12", "forbidden_module": "M", "required_facade": "F"}),
                    )
                },
                "violation.line is required",
            ),
            (
                "violation.forbidden_module empty",
                |v| {
                    one_violation(
                        v,
                        json!({"path": "a.ex", "line": 1, "forbidden_module": "", "required_facade": "F"}),
                    )
                },
                "violation.forbidden_module must be a non-empty string, got: \"\"",
            ),
            (
                "violation.required_facade missing",
                |v| {
                    one_violation(
                        v,
                        json!({"path": "a.ex", "line": 1, "forbidden_module": "M"}),
                    )
                },
                "violation.required_facade is required",
            ),
            (
                "semantics before version",
                |v| {
                    set(v, &["violations"], json!([fx::no_bypass_violation()]));
                    set(v, &["contract_version"], json!("x"));
                },
                "clear no-bypass scan must not carry violations",
            ),
            (
                "scan_ref missing",
                |v| remove(v, &["scan_ref"]),
                "scan_ref must be a non-empty string, got: nil",
            ),
            (
                "caller_repo missing",
                |v| remove(v, &["caller_repo"]),
                "caller_repo must be a non-empty string, got: nil",
            ),
            (
                "forbidden_module missing",
                |v| remove(v, &["forbidden_module"]),
                "forbidden_module must be a non-empty string, got: nil",
            ),
            (
                "required_facade missing",
                |v| remove(v, &["required_facade"]),
                "required_facade must be a non-empty string, got: nil",
            ),
            (
                "violation_ref missing",
                |v| remove(v, &["violation_ref"]),
                "violation_ref must be a non-empty string, got: nil",
            ),
        ],
    );
}

#[test]
fn no_bypass_scan_actor_rule_runs_before_scan_status() {
    let mut value = fx::no_bypass_scan();
    remove(&mut value, &["principal_ref"]);
    set(&mut value, &["scan_status"], json!("maybe"));
    assert_eq!(
        NoBypassScan::from_value(&value).unwrap_err().to_string(),
        "principal_ref or system_actor_ref is required"
    );
}

#[test]
fn clear_scan_dumps_clear_and_blocked_scan_keeps_its_violations_verbatim() {
    let clear = assert_round_trip::<NoBypassScan>(&fx::no_bypass_scan());
    assert!(clear.is_clear());
    assert_eq!(clear.to_value()["scan_status"], json!("clear"));
    assert_eq!(clear.to_value()["violations"], json!([]));
    let mut value = fx::no_bypass_scan_blocked();
    let mut violation = fx::no_bypass_violation();
    set(&mut violation, &["note"], json!("extra keys are kept"));
    set(&mut value, &["violations"], json!([violation.clone()]));
    let blocked = assert_round_trip::<NoBypassScan>(&value);
    assert!(!blocked.is_clear());
    assert_eq!(blocked.to_value()["violations"], json!([violation]));
}

// ---------------------------------------------------------------------------------------------
// Property: parse(dump(x)) == x for random valid values
// ---------------------------------------------------------------------------------------------

fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9:/._ -]{1,24}"
}

fn timestamp() -> impl Strategy<Value = String> {
    (
        2000u32..2100,
        1u32..13,
        1u32..29,
        0u32..24,
        0u32..60,
        0u32..60,
        prop::bool::ANY,
    )
        .prop_map(|(y, mo, d, h, mi, s, z)| {
            let offset = if z { "Z" } else { "+02:00" };
            format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{offset}")
        })
}

/// 0 = principal only, 1 = system actor only, 2 = both.
fn scope(strings: &[String], actors: u8) -> Value {
    let mut value = fx::phase4_scope();
    for (field, s) in SCOPE_STRINGS.iter().zip(strings) {
        set(&mut value, &[field], json!(s));
    }
    match actors {
        0 => set(&mut value, &["principal_ref"], json!(strings[12])),
        1 => {
            remove(&mut value, &["principal_ref"]);
            set(&mut value, &["system_actor_ref"], json!(strings[13]));
        }
        _ => {
            set(&mut value, &["principal_ref"], json!(strings[12]));
            set(&mut value, &["system_actor_ref"], json!(strings[13]));
        }
    }
    value
}

fn merge(mut base: Value, extra: &[(&str, Value)]) -> Value {
    for (k, v) in extra {
        set(&mut base, &[k], v.clone());
    }
    base
}

fn assert_law<T: Contract>(value: &Value) -> Result<(), TestCaseError> {
    let parsed = T::from_value(value).map_err(|e| TestCaseError::fail(format!("{e}")))?;
    let again = T::from_value(&serde_json::from_str(&parsed.to_value().to_string()).unwrap());
    prop_assert_eq!(again, Ok(parsed));
    Ok(())
}

proptest! {
    #[test]
    fn random_phase4_packets_round_trip(
        strings in prop::collection::vec(text(), 20),
        actors in 0u8..3,
        time in timestamp(),
        load in any::<u64>(),
        class in prop::sample::select(vec!["soft_pressure", "hard_pressure", "budget_exhausted"]),
        grant_scope in prop::collection::btree_map("[a-z_]{1,8}", text(), 0..4),
        lines in prop::collection::vec(1u64..100_000, 0..4),
    ) {
        let base = scope(&strings, actors);
        let s = |i: usize| json!(strings[14 + (i % 6)]);
        assert_law::<AttachGrant>(&merge(base.clone(), &[
            ("attach_grant_ref", s(0)), ("lease_ref", s(1)), ("hazmat_resource_ref", s(2)),
            ("grant_scope", json!(grant_scope)), ("expires_at", json!(time)),
            ("revocation_ref", s(3)),
        ]))?;
        assert_law::<StreamBackpressure>(&merge(base.clone(), &[
            ("stream_ref", s(0)), ("budget_ref", s(1)), ("pressure_class", json!(class)),
            ("termination_reason", s(2)), ("last_heartbeat_at", json!(time)),
            ("diagnostics_ref", s(3)),
        ]))?;
        assert_law::<WorkerBudget>(&merge(base.clone(), &[
            ("worker_pool_ref", s(0)), ("budget_ref", s(1)), ("queue_ref", s(2)),
            ("current_load", json!(load)), ("admission_decision_ref", s(3)),
            ("shed_reason", s(4)),
        ]))?;
        assert_law::<StreamAttachRevocation>(&merge(base.clone(), &[
            ("stream_ref", s(0)), ("attach_grant_ref", s(1)), ("lease_ref", s(2)),
            ("revocation_ref", s(3)), ("termination_ref", s(4)),
            ("last_event_position", json!(load)),
        ]))?;
        let violations: Vec<Value> = lines
            .iter()
            .map(|line| json!({
                "path": strings[14], "line": line,
                "forbidden_module": strings[15], "required_facade": strings[16]
            }))
            .collect();
        let status = if violations.is_empty() { "clear" } else { "blocked" };
        assert_law::<NoBypassScan>(&merge(base, &[
            ("scan_ref", s(0)), ("caller_repo", s(1)), ("forbidden_module", s(2)),
            ("required_facade", s(3)), ("violation_ref", s(4)), ("scan_status", json!(status)),
            ("checked_paths", json!(strings[14..].to_vec())), ("violations", json!(violations)),
        ]))?;
    }
}
