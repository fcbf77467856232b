//! `build_dispatch` (§4.1): protocol routing, intent typing by the route's protocol, placement
//! surfaces, every envelope ↔ route check with its exact message, the order of checks, the
//! effective timeout, and a property test over consistent and mismatched route/intent pairs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::{DateTime, Utc};
use ep_contracts::Contract;
use ep_contracts::fixtures::flow as fx;
use ep_contracts::flow::ExecutionRoute;
use ep_contracts::intents::{HttpExecutionIntent, JsonRpcExecutionIntent, ProcessExecutionIntent};
use ep_contracts::surface::{ExecutionSurface, SurfaceKind};
use ep_kernel::{
    DEFAULT_TIMEOUT_MS, DispatchOptions, DispatchPlan, Intent, KernelError, Protocol, Timeout,
    build_dispatch,
};
use proptest::prelude::*;
use serde_json::{Value, json};

const NOW: &str = "2026-04-10T12:00:00Z";

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(NOW)
        .unwrap()
        .with_timezone(&Utc)
}

fn at_now() -> DispatchOptions {
    DispatchOptions {
        timeout_ms: None,
        now: Some(now()),
    }
}

fn planned(intent: &Value, route: &Value) -> Result<DispatchPlan, KernelError> {
    build_dispatch(intent, route, &at_now())
}

fn plan_err(intent: &Value, route: &Value) -> KernelError {
    match planned(intent, route) {
        Ok(p) => panic!("expected a planning error, got plan {p:?}"),
        Err(e) => e,
    }
}

fn set(v: &mut Value, path: &[&str], new: Value) {
    let (last, parents) = path.split_last().unwrap();
    let mut cur = v;
    for p in parents {
        cur = cur.get_mut(*p).unwrap();
    }
    cur.as_object_mut().unwrap().insert((*last).to_owned(), new);
}

fn remove(v: &mut Value, path: &[&str]) {
    let (last, parents) = path.split_last().unwrap();
    let mut cur = v;
    for p in parents {
        cur = cur.get_mut(*p).unwrap();
    }
    cur.as_object_mut().unwrap().remove(*last);
}

/// The three fixture pairs, by protocol.
fn pair(protocol: Protocol) -> (Value, Value) {
    match protocol {
        Protocol::Http => (fx::http_execution_intent(), fx::http_execution_route()),
        Protocol::JsonRpc => (
            fx::jsonrpc_execution_intent(),
            fx::jsonrpc_execution_route(),
        ),
        Protocol::Process => (
            fx::process_execution_intent(),
            fx::process_execution_route(),
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// Protocol routing and intent typing (checklist 36, 37; scenario 21)

#[test]
fn http_fixture_plans_the_http_protocol_with_the_route_id_and_no_surface() {
    let (intent, route) = pair(Protocol::Http);
    let plan = planned(&intent, &route).unwrap();
    assert_eq!(plan.protocol, Protocol::Http);
    assert_eq!(plan.route_id, fx::HTTP_ROUTE_ID);
    assert_eq!(plan.family, "http");
    assert!(plan.placement_surface.is_none());
    assert!(matches!(plan.intent, Intent::Http(_)));
}

#[test]
fn jsonrpc_fixture_plans_jsonrpc_in_the_process_family_on_a_local_subprocess() {
    let (intent, route) = pair(Protocol::JsonRpc);
    let plan = planned(&intent, &route).unwrap();
    assert_eq!(plan.protocol, Protocol::JsonRpc);
    assert_eq!(plan.family, "process");
    assert_eq!(plan.route_id, fx::JSONRPC_ROUTE_ID);
    assert!(matches!(plan.intent, Intent::JsonRpc(_)));
    assert_eq!(
        plan.placement_surface,
        Some(ExecutionSurface::of_kind(SurfaceKind::LocalSubprocess))
    );
}

#[test]
fn jsonrpc_route_without_a_target_surface_defaults_to_local_subprocess() {
    let (intent, mut route) = pair(Protocol::JsonRpc);
    remove(&mut route, &["resolved_target", "execution_surface"]);
    let surface = planned(&intent, &route).unwrap().placement_surface.unwrap();
    assert_eq!(surface.surface_kind, SurfaceKind::LocalSubprocess);
    set(
        &mut route,
        &["resolved_target", "execution_surface"],
        Value::Null,
    );
    let surface = planned(&intent, &route).unwrap().placement_surface.unwrap();
    assert_eq!(surface.surface_kind, SurfaceKind::LocalSubprocess);
}

#[test]
fn jsonrpc_surface_comes_from_the_route_target_not_the_intent() {
    let (intent, mut route) = pair(Protocol::JsonRpc);
    set(
        &mut route,
        &["resolved_target", "execution_surface"],
        fx::ssh_execution_surface(),
    );
    set(&mut route, &["placement_family"], json!("ssh"));
    let surface = planned(&intent, &route).unwrap().placement_surface.unwrap();
    assert_eq!(surface.surface_kind, SurfaceKind::SshExec);
    assert_eq!(surface.transport_options["destination"], "ssh.example");
}

#[test]
fn process_fixture_plans_the_process_protocol_with_its_intent_surface() {
    let (intent, route) = pair(Protocol::Process);
    let plan = planned(&intent, &route).unwrap();
    assert_eq!(plan.protocol, Protocol::Process);
    assert_eq!(plan.family, "process");
    assert!(matches!(plan.intent, Intent::Process(_)));
    assert_eq!(
        plan.placement_surface.unwrap().surface_kind,
        SurfaceKind::LocalSubprocess
    );
}

#[test]
fn process_intent_with_an_empty_execution_surface_runs_on_local_subprocess() {
    let (mut intent, route) = pair(Protocol::Process);
    for empty in [json!({}), Value::Null] {
        set(&mut intent, &["execution_surface"], empty);
        let plan = planned(&intent, &route).unwrap();
        assert_eq!(
            plan.placement_surface,
            Some(ExecutionSurface::of_kind(SurfaceKind::LocalSubprocess))
        );
    }
    remove(&mut intent, &["execution_surface"]);
    let plan = planned(&intent, &route).unwrap();
    assert_eq!(
        plan.placement_surface,
        Some(ExecutionSurface::of_kind(SurfaceKind::LocalSubprocess))
    );
}

#[test]
fn process_intent_with_an_ssh_surface_plans_on_an_ssh_route() {
    let (mut intent, mut route) = pair(Protocol::Process);
    set(
        &mut intent,
        &["execution_surface"],
        fx::ssh_execution_surface(),
    );
    set(&mut route, &["placement_family"], json!("ssh"));
    let surface = planned(&intent, &route).unwrap().placement_surface.unwrap();
    assert_eq!(surface.surface_kind, SurfaceKind::SshExec);
    assert_eq!(surface.target_id.as_deref(), Some("ssh-target-1"));
}

#[test]
fn unknown_protocol_is_unsupported_in_wave_1() {
    for name in ["grpc", "HTTP", "sse", "websocket"] {
        let (intent, mut route) = pair(Protocol::Http);
        set(&mut route, &["protocol"], json!(name));
        let err = plan_err(&intent, &route);
        assert_eq!(err, KernelError::UnsupportedProtocol(name.to_owned()));
        assert_eq!(
            err.to_string(),
            format!("unsupported lower protocol in Wave 1: {name:?}")
        );
    }
    let (intent, mut route) = pair(Protocol::Http);
    set(&mut route, &["protocol"], json!("grpc"));
    assert_eq!(
        plan_err(&intent, &route).to_string(),
        r#"unsupported lower protocol in Wave 1: "grpc""#
    );
}

#[test]
fn protocol_names_round_trip_and_only_http_and_process_simulate() {
    for p in [Protocol::Http, Protocol::JsonRpc, Protocol::Process] {
        assert_eq!(Protocol::parse(p.as_str()), Some(p));
        assert_eq!(p.to_string(), p.as_str());
    }
    assert_eq!(Protocol::parse("grpc"), None);
    assert!(Protocol::Http.supports_lower_simulation());
    assert!(Protocol::Process.supports_lower_simulation());
    assert!(!Protocol::JsonRpc.supports_lower_simulation());
}

#[test]
fn intent_is_validated_as_the_routes_protocol_intent() {
    // (intent, route, exact error)
    let rows: [(&str, Value, Value, &str); 6] = [
        (
            "http intent on a process route misses command",
            fx::http_execution_intent(),
            fx::process_execution_route(),
            "invalid intent: command must be a non-empty string, got: nil",
        ),
        (
            "jsonrpc intent on a process route misses command",
            fx::jsonrpc_execution_intent(),
            fx::process_execution_route(),
            "invalid intent: command must be a non-empty string, got: nil",
        ),
        (
            "process intent on an http route misses request_shape",
            fx::process_execution_intent(),
            fx::http_execution_route(),
            "invalid intent: request_shape must be a non-empty string, got: nil",
        ),
        (
            "jsonrpc intent on an http route misses request_shape",
            fx::jsonrpc_execution_intent(),
            fx::http_execution_route(),
            "invalid intent: request_shape must be a non-empty string, got: nil",
        ),
        (
            "intent without an envelope",
            json!({"request_shape": "request_response", "stream_mode": "unary"}),
            fx::http_execution_route(),
            "invalid intent: envelope must be a map",
        ),
        (
            "intent that is not a map",
            json!("GET /"),
            fx::http_execution_route(),
            r#"invalid intent: expected map attrs (a JSON object), got: "GET /""#,
        ),
    ];
    for (name, intent, route, expected) in rows {
        let err = plan_err(&intent, &route);
        assert!(matches!(err, KernelError::Intent(_)), "{name}: {err:?}");
        assert_eq!(err.to_string(), expected, "{name}");
    }
}

#[test]
fn an_http_intent_on_a_jsonrpc_route_parses_and_then_fails_on_family() {
    // A JSON-RPC intent has no required field beyond its envelope, so the typed parse accepts
    // an HTTP intent and the envelope check is what refuses it.
    let err = plan_err(&fx::http_execution_intent(), &fx::jsonrpc_execution_route());
    assert_eq!(
        err.to_string(),
        r#"intent envelope family "http" does not match route family "process""#
    );
}

#[test]
fn intent_with_a_malformed_envelope_field_is_an_intent_error() {
    let (mut intent, route) = pair(Protocol::Http);
    set(&mut intent, &["envelope", "deadline_at"], json!("tomorrow"));
    let err = plan_err(&intent, &route);
    assert!(matches!(err, KernelError::Intent(_)));
    assert_eq!(
        err.to_string(),
        r#"invalid intent: deadline_at must be ISO8601, got: "tomorrow""#
    );
}

// ---------------------------------------------------------------------------------------------
// Envelope ↔ route checks (checklist 38, 39)

type Mutation = fn(&mut Value, &mut Value);

#[test]
fn every_envelope_route_check_has_its_exact_message() {
    let rows: [(&str, Protocol, Mutation, &str); 8] = [
        (
            "family",
            Protocol::Http,
            |i, _| set(i, &["envelope", "family"], json!("process")),
            r#"intent envelope family "process" does not match route family "http""#,
        ),
        (
            "family on the route side",
            Protocol::Process,
            |_, r| set(r, &["family"], json!("shell")),
            r#"intent envelope family "process" does not match route family "shell""#,
        ),
        (
            "protocol",
            Protocol::Http,
            |i, _| set(i, &["envelope", "protocol"], json!("jsonrpc")),
            r#"intent envelope protocol "jsonrpc" does not match route protocol "http""#,
        ),
        (
            "protocol of a jsonrpc intent",
            Protocol::JsonRpc,
            |i, _| set(i, &["envelope", "protocol"], json!("process")),
            r#"intent envelope protocol "process" does not match route protocol "jsonrpc""#,
        ),
        (
            "idempotency_key on the envelope",
            Protocol::Http,
            |i, _| set(i, &["envelope", "idempotency_key"], json!("idem-2")),
            "intent idempotency_key does not match route lineage",
        ),
        (
            "idempotency_key on the route lineage",
            Protocol::Process,
            |_, r| set(r, &["lineage", "idempotency_key"], json!("idem-other")),
            "intent idempotency_key does not match route lineage",
        ),
        (
            "trace_id present and different",
            Protocol::Http,
            |i, _| set(i, &["envelope", "trace_id"], json!("other-trace")),
            r#"intent trace_id must match route lineage.trace_id, got: "other-trace""#,
        ),
        (
            "trace_id present while the route lineage backfilled it from request_id",
            Protocol::JsonRpc,
            |_, r| remove(r, &["lineage", "trace_id"]),
            r#"intent trace_id must match route lineage.trace_id, got: "0123456789abcdef0123456789abcdef""#,
        ),
    ];
    for (name, protocol, mutate, expected) in rows {
        let (mut intent, mut route) = pair(protocol);
        mutate(&mut intent, &mut route);
        let err = plan_err(&intent, &route);
        assert_eq!(err.to_string(), expected, "{name}");
    }
}

#[test]
fn envelope_check_errors_are_typed() {
    let (mut intent, route) = pair(Protocol::Http);
    set(&mut intent, &["envelope", "family"], json!("process"));
    assert_eq!(
        plan_err(&intent, &route),
        KernelError::FamilyMismatch {
            intent: "process".into(),
            route: "http".into()
        }
    );
    let (mut intent, route) = pair(Protocol::Http);
    set(&mut intent, &["envelope", "protocol"], json!("process"));
    assert_eq!(
        plan_err(&intent, &route),
        KernelError::ProtocolMismatch {
            intent: "process".into(),
            route: "http".into()
        }
    );
    let (mut intent, route) = pair(Protocol::Http);
    set(&mut intent, &["envelope", "idempotency_key"], json!("x"));
    assert_eq!(plan_err(&intent, &route), KernelError::IdempotencyMismatch);
    let (mut intent, route) = pair(Protocol::Http);
    set(&mut intent, &["envelope", "trace_id"], json!("t"));
    assert_eq!(
        plan_err(&intent, &route),
        KernelError::TraceIdMismatch { got: "t".into() }
    );
}

#[test]
fn an_absent_envelope_trace_id_is_fine() {
    for protocol in [Protocol::Http, Protocol::JsonRpc, Protocol::Process] {
        let (mut intent, route) = pair(protocol);
        remove(&mut intent, &["envelope", "trace_id"]);
        assert!(planned(&intent, &route).is_ok(), "{protocol}");
        set(&mut intent, &["envelope", "trace_id"], Value::Null);
        assert!(planned(&intent, &route).is_ok(), "{protocol} null trace");
    }
    // Absent on both sides: the route lineage backfills from request_id and nothing compares.
    let (mut intent, mut route) = pair(Protocol::Http);
    remove(&mut intent, &["envelope", "trace_id"]);
    remove(&mut route, &["lineage", "trace_id"]);
    let plan = planned(&intent, &route).unwrap();
    assert_eq!(plan.route.lineage.get("trace_id"), Some(fx::REQUEST_ID));
}

#[test]
fn the_envelope_ids_the_kernel_does_not_compare_may_differ() {
    // Upstream compares family, protocol, idempotency_key and trace_id only.
    let (mut intent, route) = pair(Protocol::Http);
    set(
        &mut intent,
        &["envelope", "decision_id"],
        json!("decision-9"),
    );
    set(
        &mut intent,
        &["envelope", "boundary_session_id"],
        json!("bs-9"),
    );
    set(
        &mut intent,
        &["envelope", "attempt_ref"],
        json!("attempt://9"),
    );
    assert!(planned(&intent, &route).is_ok());
}

#[test]
fn placement_family_must_match_the_surface() {
    let rows: [(&str, Protocol, Mutation, &str); 5] = [
        (
            "ssh_exec surface on a local route",
            Protocol::Process,
            |i, _| set(i, &["execution_surface"], fx::ssh_execution_surface()),
            r#"route placement "local" does not match surface "ssh_exec""#,
        ),
        (
            "default local surface on an ssh route",
            Protocol::Process,
            |i, r| {
                set(i, &["execution_surface"], json!({}));
                set(r, &["placement_family"], json!("ssh"));
            },
            r#"route placement "ssh" does not match surface "local_subprocess""#,
        ),
        (
            "guest_bridge surface on an ssh route",
            Protocol::Process,
            |i, r| {
                set(
                    i,
                    &["execution_surface"],
                    json!({"surface_kind": "guest_bridge"}),
                );
                set(r, &["placement_family"], json!("ssh"));
            },
            r#"route placement "ssh" does not match surface "guest_bridge""#,
        ),
        (
            "jsonrpc target surface ssh_exec on a local route",
            Protocol::JsonRpc,
            |_, r| {
                set(
                    r,
                    &["resolved_target", "execution_surface"],
                    fx::ssh_execution_surface(),
                )
            },
            r#"route placement "local" does not match surface "ssh_exec""#,
        ),
        (
            "jsonrpc default surface on a guest route",
            Protocol::JsonRpc,
            |_, r| {
                remove(r, &["resolved_target", "execution_surface"]);
                set(r, &["placement_family"], json!("guest"));
            },
            r#"route placement "guest" does not match surface "local_subprocess""#,
        ),
    ];
    for (name, protocol, mutate, expected) in rows {
        let (mut intent, mut route) = pair(protocol);
        mutate(&mut intent, &mut route);
        let err = plan_err(&intent, &route);
        assert!(
            matches!(err, KernelError::PlacementMismatch { .. }),
            "{name}: {err:?}"
        );
        assert_eq!(err.to_string(), expected, "{name}");
    }
}

#[test]
fn placement_mismatch_names_the_route_placement_and_the_surface_kind() {
    let (mut intent, route) = pair(Protocol::Process);
    set(
        &mut intent,
        &["execution_surface"],
        fx::ssh_execution_surface(),
    );
    assert_eq!(
        plan_err(&intent, &route),
        KernelError::PlacementMismatch {
            placement: "local".into(),
            surface: "ssh_exec".into()
        }
    );
}

#[test]
fn http_has_no_surface_so_any_placement_family_plans() {
    let (intent, mut route) = pair(Protocol::Http);
    for placement in ["local", "ssh", "guest", "anywhere"] {
        set(&mut route, &["placement_family"], json!(placement));
        assert!(
            planned(&intent, &route)
                .unwrap()
                .placement_surface
                .is_none()
        );
    }
}

#[test]
fn an_invalid_surface_is_refused_with_the_surface_message() {
    let rows: [(&str, Protocol, Mutation, &str); 5] = [
        (
            "unknown kind on a process intent",
            Protocol::Process,
            |i, _| set(i, &["execution_surface"], json!({"surface_kind": "docker"})),
            r#"invalid execution surface: invalid surface_kind "docker""#,
        ),
        (
            "wrong contract version on a process intent",
            Protocol::Process,
            |i, _| {
                set(
                    i,
                    &["execution_surface"],
                    json!({"contract_version": "execution_surface.v0"}),
                );
            },
            r#"invalid execution surface: invalid contract_version "execution_surface.v0""#,
        ),
        (
            "non-map transport options",
            Protocol::Process,
            |i, _| set(i, &["execution_surface"], json!({"transport_options": "x"})),
            r#"invalid execution surface: invalid transport_options "x""#,
        ),
        (
            "non-map surface on a jsonrpc route target",
            Protocol::JsonRpc,
            |_, r| set(r, &["resolved_target", "execution_surface"], json!("local")),
            r#"invalid execution surface: expected a map, got: "local""#,
        ),
        (
            "empty target id on a jsonrpc route target",
            Protocol::JsonRpc,
            |_, r| {
                set(
                    r,
                    &["resolved_target", "execution_surface"],
                    json!({"surface_kind": "local_subprocess", "target_id": ""}),
                );
            },
            r#"invalid execution surface: invalid target_id """#,
        ),
    ];
    for (name, protocol, mutate, expected) in rows {
        let (mut intent, mut route) = pair(protocol);
        mutate(&mut intent, &mut route);
        let err = plan_err(&intent, &route);
        assert!(matches!(err, KernelError::Surface(_)), "{name}: {err:?}");
        assert_eq!(err.to_string(), expected, "{name}");
    }
}

#[test]
fn a_non_map_process_execution_surface_is_an_intent_error() {
    // The process intent contract types `execution_surface` as a map before the kernel sees it.
    let (mut intent, route) = pair(Protocol::Process);
    set(&mut intent, &["execution_surface"], json!("ssh_exec"));
    let err = plan_err(&intent, &route);
    assert!(matches!(err, KernelError::Intent(_)));
    assert_eq!(
        err.to_string(),
        "invalid intent: execution_surface must be a map"
    );
}

#[test]
fn route_contract_errors_surface_as_route_errors() {
    let rows: [(&str, Mutation, &str); 7] = [
        (
            "route_id differs from lineage.route_id",
            |_, r| set(r, &["route_id"], json!("route-9")),
            r#"invalid route: route_id must match lineage.route_id, got: "route-9""#,
        ),
        (
            "lineage misses idempotency_key",
            |_, r| remove(r, &["lineage", "idempotency_key"]),
            "invalid route: lineage.idempotency_key is required",
        ),
        (
            "lineage misses tenant_id",
            |_, r| remove(r, &["lineage", "tenant_id"]),
            "invalid route: lineage.tenant_id is required",
        ),
        (
            "lineage has an unknown key",
            |_, r| set(r, &["lineage", "colour"], json!("blue")),
            "invalid route: unknown lineage key: colour",
        ),
        (
            "lineage is not a map",
            |_, r| set(r, &["lineage"], json!("route-1")),
            "invalid route: lineage must be a map",
        ),
        (
            "missing protocol",
            |_, r| remove(r, &["protocol"]),
            "invalid route: protocol must be a non-empty string, got: nil",
        ),
        (
            "wrong contract version",
            |_, r| set(r, &["contract_version"], json!("execution_route.v2")),
            r#"invalid route: expected contract_version "execution_route.v1", got: "execution_route.v2""#,
        ),
    ];
    for (name, mutate, expected) in rows {
        let (mut intent, mut route) = pair(Protocol::Http);
        mutate(&mut intent, &mut route);
        let err = plan_err(&intent, &route);
        assert!(matches!(err, KernelError::Route(_)), "{name}: {err:?}");
        assert_eq!(err.to_string(), expected, "{name}");
    }
    let err = plan_err(&fx::http_execution_intent(), &json!(["not", "a", "route"]));
    assert!(matches!(err, KernelError::Route(_)));
}

// ---------------------------------------------------------------------------------------------
// Order of checks: an input violating two rules reports the earlier one.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Route,
    UnsupportedProtocol,
    Intent,
    Surface,
    Family,
    Protocol,
    Idempotency,
    Trace,
    Placement,
}

fn kind(err: &KernelError) -> Kind {
    match err {
        KernelError::Route(_) => Kind::Route,
        KernelError::UnsupportedProtocol(_) => Kind::UnsupportedProtocol,
        KernelError::Intent(_) => Kind::Intent,
        KernelError::Surface(_) => Kind::Surface,
        KernelError::FamilyMismatch { .. } => Kind::Family,
        KernelError::ProtocolMismatch { .. } => Kind::Protocol,
        KernelError::IdempotencyMismatch => Kind::Idempotency,
        KernelError::TraceIdMismatch { .. } => Kind::Trace,
        KernelError::PlacementMismatch { .. } => Kind::Placement,
    }
}

#[test]
fn an_input_violating_two_rules_reports_the_earlier_one() {
    let rows: [(&str, Protocol, Mutation, Kind); 11] = [
        (
            "invalid route beats unknown protocol",
            Protocol::Http,
            |_, r| {
                set(r, &["protocol"], json!("grpc"));
                set(r, &["route_id"], json!("route-9"));
            },
            Kind::Route,
        ),
        (
            "unknown protocol beats an invalid intent",
            Protocol::Http,
            |i, r| {
                set(r, &["protocol"], json!("grpc"));
                *i = json!(42);
            },
            Kind::UnsupportedProtocol,
        ),
        (
            "invalid intent beats a family mismatch",
            Protocol::Http,
            |i, _| {
                set(i, &["envelope", "family"], json!("process"));
                remove(i, &["stream_mode"]);
            },
            Kind::Intent,
        ),
        (
            "invalid surface beats a family mismatch",
            Protocol::Process,
            |i, _| {
                set(i, &["envelope", "family"], json!("http"));
                set(i, &["execution_surface"], json!({"surface_kind": "docker"}));
            },
            Kind::Surface,
        ),
        (
            "invalid surface beats a trace mismatch on jsonrpc",
            Protocol::JsonRpc,
            |i, r| {
                set(i, &["envelope", "trace_id"], json!("t"));
                set(r, &["resolved_target", "execution_surface"], json!(1));
            },
            Kind::Surface,
        ),
        (
            "family beats protocol",
            Protocol::Http,
            |i, _| {
                set(i, &["envelope", "family"], json!("process"));
                set(i, &["envelope", "protocol"], json!("process"));
            },
            Kind::Family,
        ),
        (
            "protocol beats idempotency",
            Protocol::Http,
            |i, _| {
                set(i, &["envelope", "protocol"], json!("jsonrpc"));
                set(i, &["envelope", "idempotency_key"], json!("idem-9"));
            },
            Kind::Protocol,
        ),
        (
            "idempotency beats trace",
            Protocol::Http,
            |i, _| {
                set(i, &["envelope", "idempotency_key"], json!("idem-9"));
                set(i, &["envelope", "trace_id"], json!("t"));
            },
            Kind::Idempotency,
        ),
        (
            "trace beats placement",
            Protocol::Process,
            |i, _| {
                set(i, &["envelope", "trace_id"], json!("t"));
                set(i, &["execution_surface"], fx::ssh_execution_surface());
            },
            Kind::Trace,
        ),
        (
            "family beats placement",
            Protocol::Process,
            |i, r| {
                set(r, &["family"], json!("shell"));
                set(r, &["placement_family"], json!("guest"));
                let _ = i;
            },
            Kind::Family,
        ),
        (
            "a mismatch beats an already-passed deadline",
            Protocol::Http,
            |i, _| {
                set(
                    i,
                    &["envelope", "deadline_at"],
                    json!("2000-01-01T00:00:00Z"),
                );
                set(i, &["envelope", "idempotency_key"], json!("idem-9"));
            },
            Kind::Idempotency,
        ),
    ];
    for (name, protocol, mutate, expected) in rows {
        let (mut intent, mut route) = pair(protocol);
        mutate(&mut intent, &mut route);
        let err = plan_err(&intent, &route);
        assert_eq!(kind(&err), expected, "{name}: {err}");
    }
}

// ---------------------------------------------------------------------------------------------
// Effective timeout (checklist 40; §11 item 3)

#[test]
fn plan_carries_the_validated_route_and_intent() {
    let (intent, route) = pair(Protocol::Http);
    let plan = planned(&intent, &route).unwrap();
    assert_eq!(plan.route, ExecutionRoute::from_value(&route).unwrap());
    assert_eq!(
        plan.intent,
        Intent::Http(HttpExecutionIntent::from_value(&intent).unwrap())
    );
    assert_eq!(plan.intent.envelope().intent_id, "intent-1");

    let (intent, route) = pair(Protocol::Process);
    let plan = planned(&intent, &route).unwrap();
    assert_eq!(
        plan.intent,
        Intent::Process(ProcessExecutionIntent::from_value(&intent).unwrap())
    );
    let (intent, route) = pair(Protocol::JsonRpc);
    let plan = planned(&intent, &route).unwrap();
    assert_eq!(
        plan.intent,
        Intent::JsonRpc(JsonRpcExecutionIntent::from_value(&intent).unwrap())
    );
}

/// Strips every timeout source from the HTTP fixtures.
fn no_budgets(i: &mut Value, r: &mut Value) {
    remove(i, &["timeouts"]);
    remove(i, &["envelope", "deadline_at"]);
    remove(r, &["resolved_budget"]);
}

#[test]
fn effective_timeout_is_the_smallest_positive_budget() {
    // (name, protocol, option timeout, mutation, expected)
    let rows: [(&str, Protocol, Option<i64>, Mutation, Timeout); 20] = [
        (
            "fixtures: route 5000, request 5000, far deadline",
            Protocol::Http,
            None,
            |_, _| {},
            Timeout::Budget(5000),
        ),
        (
            "option is smallest",
            Protocol::Http,
            Some(100),
            |_, _| {},
            Timeout::Budget(100),
        ),
        (
            "option larger than the rest",
            Protocol::Http,
            Some(60_000),
            |_, _| {},
            Timeout::Budget(5000),
        ),
        (
            "option 0 ignored",
            Protocol::Http,
            Some(0),
            |_, _| {},
            Timeout::Budget(5000),
        ),
        (
            "option negative ignored",
            Protocol::Http,
            Some(-1),
            |_, _| {},
            Timeout::Budget(5000),
        ),
        (
            "http request timeout 750 beats budget 1500",
            Protocol::Http,
            None,
            |i, r| {
                set(i, &["timeouts", "request_timeout_ms"], json!(750));
                set(r, &["resolved_budget", "timeout_ms"], json!(1500));
            },
            Timeout::Budget(750),
        ),
        (
            "route budget beats request timeout",
            Protocol::Http,
            None,
            |_, r| set(r, &["resolved_budget", "timeout_ms"], json!(1200)),
            Timeout::Budget(1200),
        ),
        (
            "deadline remaining is smallest",
            Protocol::Http,
            Some(10_000),
            |i, _| {
                set(
                    i,
                    &["envelope", "deadline_at"],
                    json!("2026-04-10T12:00:02Z"),
                )
            },
            Timeout::Budget(2000),
        ),
        (
            "deadline in another offset",
            Protocol::Http,
            None,
            |i, _| {
                set(
                    i,
                    &["envelope", "deadline_at"],
                    json!("2026-04-10T14:00:01.5+02:00"),
                )
            },
            Timeout::Budget(1500),
        ),
        (
            "nothing set → default",
            Protocol::Http,
            None,
            no_budgets,
            Timeout::Budget(DEFAULT_TIMEOUT_MS),
        ),
        (
            "all non-positive → default",
            Protocol::Http,
            Some(0),
            |i, r| {
                no_budgets(i, r);
                set(i, &["timeouts"], json!({"request_timeout_ms": 0}));
                set(r, &["resolved_budget"], json!({"timeout_ms": -5}));
            },
            Timeout::Budget(30_000),
        ),
        (
            "non-integer budgets ignored",
            Protocol::Http,
            None,
            |i, r| {
                no_budgets(i, r);
                set(i, &["timeouts"], json!({"request_timeout_ms": "750"}));
                set(r, &["resolved_budget"], json!({"timeout_ms": 1.5}));
            },
            Timeout::Budget(30_000),
        ),
        (
            "negative route budget ignored",
            Protocol::Http,
            None,
            |_, r| set(r, &["resolved_budget", "timeout_ms"], json!(-10)),
            Timeout::Budget(5000),
        ),
        (
            "only the option",
            Protocol::Http,
            Some(42),
            no_budgets,
            Timeout::Budget(42),
        ),
        (
            "passed deadline → expired",
            Protocol::Http,
            Some(100),
            |i, _| {
                set(
                    i,
                    &["envelope", "deadline_at"],
                    json!("2026-04-10T11:59:57Z"),
                )
            },
            Timeout::Expired { overdue_ms: 3000 },
        ),
        (
            "deadline exactly now → expired",
            Protocol::Http,
            None,
            |i, _| set(i, &["envelope", "deadline_at"], json!(NOW)),
            Timeout::Expired { overdue_ms: 0 },
        ),
        (
            "process: option beats route budget",
            Protocol::Process,
            Some(200),
            |_, _| {},
            Timeout::Budget(200),
        ),
        (
            "process: route budget 25",
            Protocol::Process,
            None,
            |_, r| set(r, &["resolved_budget", "timeout_ms"], json!(25)),
            Timeout::Budget(25),
        ),
        (
            "process: deadline remaining without a route budget",
            Protocol::Process,
            None,
            |i, r| {
                remove(r, &["resolved_budget"]);
                set(
                    i,
                    &["envelope", "deadline_at"],
                    json!("2026-04-10T12:00:09Z"),
                );
            },
            Timeout::Budget(9000),
        ),
        (
            "jsonrpc: passed deadline → expired",
            Protocol::JsonRpc,
            None,
            |i, _| {
                set(
                    i,
                    &["envelope", "deadline_at"],
                    json!("2026-04-10T11:00:00Z"),
                )
            },
            Timeout::Expired {
                overdue_ms: 3_600_000,
            },
        ),
    ];
    for (name, protocol, option, mutate, expected) in rows {
        let (mut intent, mut route) = pair(protocol);
        mutate(&mut intent, &mut route);
        let options = DispatchOptions {
            timeout_ms: option,
            now: Some(now()),
        };
        let plan = build_dispatch(&intent, &route, &options).unwrap();
        assert_eq!(plan.timeout, expected, "{name}");
        assert_eq!(plan.timeout_ms(), expected.as_ms(), "{name}");
    }
}

#[test]
fn an_expired_deadline_plans_zero_milliseconds() {
    let (mut intent, route) = pair(Protocol::Http);
    set(
        &mut intent,
        &["envelope", "deadline_at"],
        json!("2026-04-10T11:59:59Z"),
    );
    let plan = planned(&intent, &route).unwrap();
    assert!(matches!(
        plan.timeout,
        Timeout::Expired { overdue_ms: 1000 }
    ));
    assert_eq!(plan.timeout_ms(), 0);
}

#[test]
fn without_a_fixed_now_planning_uses_the_clock() {
    // The fixtures' deadline is in 2099, so the wall clock never expires them.
    let (intent, route) = pair(Protocol::Http);
    let plan = build_dispatch(&intent, &route, &DispatchOptions::default()).unwrap();
    assert_eq!(plan.timeout, Timeout::Budget(5000));
}

// ---------------------------------------------------------------------------------------------
// Property: consistent random pairs plan and round-trip; an injected mismatch fails with the
// matching error kind.

#[derive(Debug, Clone)]
struct Ids {
    tenant: String,
    trace: String,
    request: String,
    decision: String,
    session: String,
    attempt: String,
    route: String,
    idem: String,
    intent: String,
}

fn id() -> impl Strategy<Value = String> {
    "[A-Za-z0-9][A-Za-z0-9:/._-]{0,23}"
}

fn ids() -> impl Strategy<Value = Ids> {
    ((id(), id(), id(), id(), id()), (id(), id(), id(), id())).prop_map(
        |((tenant, trace, request, decision, session), (attempt, route, idem, intent))| Ids {
            tenant,
            trace,
            request,
            decision,
            session,
            attempt,
            route,
            idem,
            intent,
        },
    )
}

fn protocol() -> impl Strategy<Value = Protocol> {
    prop_oneof![
        Just(Protocol::Http),
        Just(Protocol::JsonRpc),
        Just(Protocol::Process)
    ]
}

/// A consistent pair for `protocol` with `ids`; `with_trace` keeps the envelope trace id.
fn consistent_pair(protocol: Protocol, ids: &Ids, with_trace: bool) -> (Value, Value) {
    let (mut intent, mut route) = pair(protocol);
    set(&mut route, &["route_id"], json!(ids.route));
    set(
        &mut route,
        &["lineage"],
        json!({
            "tenant_id": ids.tenant,
            "trace_id": ids.trace,
            "request_id": ids.request,
            "decision_id": ids.decision,
            "boundary_session_id": ids.session,
            "attempt_ref": ids.attempt,
            "route_id": ids.route,
            "idempotency_key": ids.idem,
        }),
    );
    set(&mut intent, &["envelope", "intent_id"], json!(ids.intent));
    set(
        &mut intent,
        &["envelope", "idempotency_key"],
        json!(ids.idem),
    );
    set(
        &mut intent,
        &["envelope", "decision_id"],
        json!(ids.decision),
    );
    set(
        &mut intent,
        &["envelope", "boundary_session_id"],
        json!(ids.session),
    );
    set(
        &mut intent,
        &["envelope", "attempt_ref"],
        json!(ids.attempt),
    );
    if with_trace {
        set(&mut intent, &["envelope", "trace_id"], json!(ids.trace));
    } else {
        remove(&mut intent, &["envelope", "trace_id"]);
    }
    (intent, route)
}

fn assert_round_trips(plan: &DispatchPlan) -> Result<(), TestCaseError> {
    prop_assert_eq!(
        &ExecutionRoute::from_value(&plan.route.to_value()).unwrap(),
        &plan.route
    );
    match &plan.intent {
        Intent::Http(i) => {
            prop_assert_eq!(&HttpExecutionIntent::from_value(&i.to_value()).unwrap(), i);
        }
        Intent::JsonRpc(i) => {
            prop_assert_eq!(
                &JsonRpcExecutionIntent::from_value(&i.to_value()).unwrap(),
                i
            );
        }
        Intent::Process(i) => {
            prop_assert_eq!(
                &ProcessExecutionIntent::from_value(&i.to_value()).unwrap(),
                i
            );
        }
    }
    Ok(())
}

proptest! {
    #[test]
    fn consistent_random_pairs_plan_and_round_trip(
        protocol in protocol(),
        ids in ids(),
        with_trace in any::<bool>(),
    ) {
        let (intent, route) = consistent_pair(protocol, &ids, with_trace);
        let plan = planned(&intent, &route).unwrap();
        prop_assert_eq!(plan.protocol, protocol);
        prop_assert_eq!(&plan.route_id, &ids.route);
        prop_assert_eq!(plan.route.lineage.get("idempotency_key"), Some(ids.idem.as_str()));
        prop_assert_eq!(&plan.route, &ExecutionRoute::from_value(&route).unwrap());
        prop_assert_eq!(&plan.intent.envelope().intent_id, &ids.intent);
        prop_assert_eq!(plan.placement_surface.is_some(), protocol != Protocol::Http);
        assert_round_trips(&plan)?;
    }

    #[test]
    fn an_injected_mismatch_fails_with_the_matching_error_kind(
        protocol in protocol(),
        ids in ids(),
        mismatch in 0usize..8,
        suffix in "[a-z0-9]{1,6}",
    ) {
        let (mut intent, mut route) = consistent_pair(protocol, &ids, true);
        let other = |s: &str| json!(format!("{s}~{suffix}"));
        let expected = match mismatch {
            0 => {
                let family = route["family"].as_str().unwrap().to_owned();
                set(&mut intent, &["envelope", "family"], other(&family));
                Kind::Family
            }
            1 => {
                set(&mut intent, &["envelope", "protocol"], other(protocol.as_str()));
                Kind::Protocol
            }
            2 => {
                set(&mut intent, &["envelope", "idempotency_key"], other(&ids.idem));
                Kind::Idempotency
            }
            3 => {
                set(&mut intent, &["envelope", "trace_id"], other(&ids.trace));
                Kind::Trace
            }
            4 => {
                set(&mut route, &["route_id"], other(&ids.route));
                Kind::Route
            }
            5 => {
                set(&mut route, &["protocol"], other(protocol.as_str()));
                Kind::UnsupportedProtocol
            }
            6 if protocol == Protocol::Http => {
                // No surface on HTTP: inject a wrong-typed intent instead.
                intent = consistent_pair(Protocol::Process, &ids, true).0;
                Kind::Intent
            }
            6 => {
                set(&mut route, &["placement_family"], json!("ssh"));
                Kind::Placement
            }
            _ => {
                set(&mut route, &["lineage", "idempotency_key"], other(&ids.idem));
                Kind::Idempotency
            }
        };
        let err = planned(&intent, &route).unwrap_err();
        prop_assert_eq!(kind(&err), expected, "{}", err);
    }
}
