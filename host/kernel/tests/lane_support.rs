//! `lane_support` (§4.3, checklist 43): lineage defaults and the caller-owned idempotency key,
//! envelope ids and capability list, route target/budget merging, and that the built pieces
//! plan and run through the kernel.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;

use ep_contracts::flow::{ExecutionIntentEnvelope, ExecutionRoute};
use ep_contracts::{Contract, ContractError, Lineage};
use ep_kernel::lane_support::{RouteSpec, build_envelope, build_lineage, build_route};
use ep_kernel::{
    DispatchOptions, DispatchPlan, Execution, Protocol, ProtocolDriver, Timeout, build_dispatch,
    execute,
};
use futures::executor::block_on;
use serde_json::{Map, Value, json};

fn attrs(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(m) => m,
        other => panic!("not a map: {other}"),
    }
}

fn idem() -> Map<String, Value> {
    attrs(json!({"idempotency_key": "idem-lane-1"}))
}

fn lineage(family: &str) -> Lineage {
    build_lineage(family, &idem()).unwrap()
}

fn http_spec() -> RouteSpec {
    RouteSpec {
        family: "http".into(),
        protocol: "http".into(),
        transport_family: "http".into(),
        placement_family: "local".into(),
        target: attrs(json!({"url": "https://example.test/widgets", "method": "GET"})),
        timeout_ms: Some(1500),
    }
}

fn process_spec() -> RouteSpec {
    RouteSpec {
        family: "process".into(),
        protocol: "process".into(),
        transport_family: "process".into(),
        placement_family: "local".into(),
        target: Map::new(),
        timeout_ms: None,
    }
}

// ---------------------------------------------------------------------------------------------
// build_lineage

#[test]
fn build_lineage_requires_the_callers_idempotency_key() {
    let err = build_lineage("http", &Map::new()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "idempotency_key must be a non-empty string, got: nil"
    );
    assert_eq!(err.field(), Some("idempotency_key"));
    let rows = [
        (json!({"idempotency_key": null}), "nil"),
        (json!({"idempotency_key": ""}), r#""""#),
        (json!({"idempotency_key": 7}), "7"),
        (json!({"tenant_id": "t"}), "nil"),
    ];
    for (overrides, got) in rows {
        let err = build_lineage("process", &attrs(overrides.clone())).unwrap_err();
        assert_eq!(
            err,
            ContractError::NonEmptyString {
                field: "idempotency_key".into(),
                got: got.into()
            },
            "{overrides}"
        );
    }
}

#[test]
fn build_lineage_fills_every_other_key_with_defaults() {
    let lineage = lineage("http");
    assert_eq!(lineage.get("tenant_id"), Some("tenant:auto"));
    assert_eq!(lineage.get("idempotency_key"), Some("idem-lane-1"));
    let trace = lineage.get("trace_id").unwrap();
    assert_eq!(trace.len(), 32);
    assert!(
        trace
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "{trace}"
    );
    let n = lineage
        .get("request_id")
        .unwrap()
        .strip_prefix("http-request-")
        .unwrap()
        .to_owned();
    assert!(n.parse::<u64>().unwrap() > 0);
    assert_eq!(
        lineage.get("decision_id"),
        Some(format!("http-decision-{n}").as_str())
    );
    assert_eq!(
        lineage.get("boundary_session_id"),
        Some(format!("http-boundary-session-{n}").as_str())
    );
    assert_eq!(
        lineage.get("attempt_ref"),
        Some(format!("attempt://http/{n}").as_str())
    );
    assert_eq!(
        lineage.get("route_id"),
        Some(format!("http-route-{n}").as_str())
    );
    assert_eq!(lineage.get("event_id"), None);
    assert_eq!(lineage.extensions(), None);
}

#[test]
fn build_lineage_mints_fresh_ids_per_call() {
    let a = lineage("process");
    let b = lineage("process");
    assert_ne!(a.get("request_id"), b.get("request_id"));
    assert_ne!(a.get("route_id"), b.get("route_id"));
    assert_ne!(a.get("trace_id"), b.get("trace_id"));
    assert_eq!(a.get("idempotency_key"), b.get("idempotency_key"));
    assert!(a.get("request_id").unwrap().starts_with("process-request-"));
}

#[test]
fn build_lineage_overrides_win_and_null_overrides_keep_the_default() {
    let overrides = attrs(json!({
        "idempotency_key": "idem-9",
        "tenant_id": "tenant-9",
        "trace_id": "trace-9",
        "request_id": "request-9",
        "decision_id": "decision-9",
        "boundary_session_id": "bs-9",
        "attempt_ref": "attempt://9",
        "route_id": "route-9",
        "extensions": {"lane": {"owner": "cli"}},
    }));
    let lineage = build_lineage("http", &overrides).unwrap();
    for (key, value) in &overrides {
        if key != "extensions" {
            assert_eq!(lineage.get(key), value.as_str(), "{key}");
        }
    }
    assert_eq!(
        lineage.extensions().unwrap()["lane"],
        json!({"owner": "cli"})
    );

    let lineage = build_lineage(
        "http",
        &attrs(json!({"idempotency_key": "k", "tenant_id": null})),
    )
    .unwrap();
    assert_eq!(lineage.get("tenant_id"), Some("tenant:auto"));
}

#[test]
fn build_lineage_normalizes_overrides() {
    let err = build_lineage(
        "http",
        &attrs(json!({"idempotency_key": "k", "colour": "blue"})),
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "unknown lineage key: colour");
    let err = build_lineage(
        "http",
        &attrs(json!({"idempotency_key": "k", "tenant_id": ""})),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "lineage.tenant_id must be a non-empty string"
    );
}

// ---------------------------------------------------------------------------------------------
// build_envelope

#[test]
fn build_envelope_copies_the_lineage_ids() {
    let lineage = lineage("http");
    let envelope = build_envelope("http", "http", "http.unary", &lineage, &Map::new()).unwrap();
    assert_eq!(envelope.family, "http");
    assert_eq!(envelope.protocol, "http");
    assert_eq!(envelope.trace_id.as_deref(), lineage.get("trace_id"));
    assert_eq!(envelope.idempotency_key, "idem-lane-1");
    assert_eq!(
        Some(envelope.boundary_session_id.as_str()),
        lineage.get("boundary_session_id")
    );
    assert_eq!(
        Some(envelope.decision_id.as_str()),
        lineage.get("decision_id")
    );
    assert_eq!(envelope.attempt_ref.as_deref(), lineage.get("attempt_ref"));
    assert!(envelope.intent_id.starts_with("http-intent-"));
    assert_eq!(envelope.requested_capabilities, ["http.unary"]);
    assert_eq!(
        ExecutionIntentEnvelope::from_value(&envelope.to_value()).unwrap(),
        envelope
    );
}

#[test]
fn build_envelope_appends_the_capability_once() {
    let lineage = lineage("http");
    let rows = [
        (json!(null), vec!["http.unary"]),
        (json!([]), vec!["http.unary"]),
        (json!(["http.unary"]), vec!["http.unary"]),
        (json!(["http.stream"]), vec!["http.stream", "http.unary"]),
        (
            json!(["http.unary", "http.stream", "http.unary", "http.stream"]),
            vec!["http.unary", "http.stream"],
        ),
    ];
    for (requested, expected) in rows {
        let given = attrs(json!({"requested_capabilities": requested}));
        let envelope = build_envelope("http", "http", "http.unary", &lineage, &given).unwrap();
        assert_eq!(envelope.requested_capabilities, expected, "{requested}");
    }
    let err = build_envelope(
        "http",
        "http",
        "http.unary",
        &lineage,
        &attrs(json!({"requested_capabilities": "http.unary"})),
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "requested_capabilities must be a list");
}

#[test]
fn build_envelope_takes_optional_attrs_and_keeps_lineage_ids_authoritative() {
    let lineage = lineage("process");
    let given = attrs(json!({
        "intent_id": "intent-7",
        "trace_id": "trace-override",
        "idempotency_key": "not-the-lineage-key",
        "decision_id": "not-the-lineage-decision",
        "lease_ref": "lease://7",
        "route_template_ref": "route-template://process",
        "credential_handle_refs": ["credential-handle://tenant/x"],
        "deadline_at": "2099-01-01T00:00:00Z",
        "cancellation_ref": "cancel://7",
        "extensions": {"k": 1},
    }));
    let envelope = build_envelope("process", "process", "process.run", &lineage, &given).unwrap();
    assert_eq!(envelope.intent_id, "intent-7");
    assert_eq!(envelope.trace_id.as_deref(), Some("trace-override"));
    assert_eq!(envelope.idempotency_key, "idem-lane-1");
    assert_eq!(
        Some(envelope.decision_id.as_str()),
        lineage.get("decision_id")
    );
    assert_eq!(envelope.lease_ref.as_deref(), Some("lease://7"));
    assert_eq!(
        envelope.route_template_ref.as_deref(),
        Some("route-template://process")
    );
    assert_eq!(
        envelope.credential_handle_refs,
        ["credential-handle://tenant/x"]
    );
    assert_eq!(
        envelope.deadline_at.as_deref(),
        Some("2099-01-01T00:00:00Z")
    );
    assert_eq!(envelope.cancellation_ref.as_deref(), Some("cancel://7"));
    assert_eq!(envelope.extensions["k"], 1);
}

#[test]
fn build_envelope_defaults_a_null_intent_id() {
    let lineage = lineage("http");
    let envelope = build_envelope(
        "http",
        "http",
        "http.unary",
        &lineage,
        &attrs(json!({"intent_id": null, "trace_id": null})),
    )
    .unwrap();
    assert!(envelope.intent_id.starts_with("http-intent-"));
    assert_eq!(envelope.trace_id.as_deref(), lineage.get("trace_id"));
}

#[test]
fn build_envelope_validates_through_the_envelope_contract() {
    let lineage = lineage("http");
    let rows = [
        (
            json!({"credential_handle_refs": ["sk-live-secret"]}),
            r#"credential_handle_ref must be an opaque handle ref, got: "sk-live-secret""#,
        ),
        (
            json!({"deadline_at": "tomorrow"}),
            r#"deadline_at must be ISO8601, got: "tomorrow""#,
        ),
        (
            json!({"intent_id": ""}),
            r#"intent_id must be a non-empty string, got: """#,
        ),
    ];
    for (given, expected) in rows {
        let err = build_envelope(
            "http",
            "http",
            "http.unary",
            &lineage,
            &attrs(given.clone()),
        )
        .unwrap_err();
        assert_eq!(err.to_string(), expected, "{given}");
    }
}

// ---------------------------------------------------------------------------------------------
// build_route

#[test]
fn build_route_takes_its_id_and_lineage_from_the_lineage() {
    let lineage = lineage("http");
    let route = build_route(&http_spec(), &lineage, &Map::new()).unwrap();
    assert_eq!(Some(route.route_id.as_str()), lineage.get("route_id"));
    assert_eq!(route.lineage, lineage);
    assert_eq!(route.family, "http");
    assert_eq!(route.protocol, "http");
    assert_eq!(route.transport_family, "http");
    assert_eq!(route.placement_family, "local");
    assert_eq!(
        ExecutionRoute::from_value(&route.to_value()).unwrap(),
        route
    );
}

#[test]
fn build_route_merges_the_target_with_the_lane_target_winning() {
    let given = attrs(json!({
        "resolved_target": {"url": "https://attrs.test/", "target_id": "from-attrs", "headers": {"x": 1}},
    }));
    let route = build_route(&http_spec(), &lineage("http"), &given).unwrap();
    assert_eq!(
        Value::Object(route.resolved_target),
        json!({
            "url": "https://example.test/widgets",
            "method": "GET",
            "target_id": "from-attrs",
            "headers": {"x": 1},
        })
    );
}

#[test]
fn build_route_adds_the_budget_timeout_only_when_positive() {
    let given = attrs(json!({"resolved_budget": {"timeout_ms": 9000, "max_bytes": 10}}));
    let rows = [
        (Some(1500), json!({"timeout_ms": 1500, "max_bytes": 10})),
        (Some(0), json!({"timeout_ms": 9000, "max_bytes": 10})),
        (Some(-5), json!({"timeout_ms": 9000, "max_bytes": 10})),
        (None, json!({"timeout_ms": 9000, "max_bytes": 10})),
    ];
    for (timeout_ms, expected) in rows {
        let spec = RouteSpec {
            timeout_ms,
            ..http_spec()
        };
        let route = build_route(&spec, &lineage("http"), &given).unwrap();
        assert_eq!(
            Value::Object(route.resolved_budget),
            expected,
            "{timeout_ms:?}"
        );
    }
    for timeout_ms in [None, Some(0), Some(-1)] {
        let spec = RouteSpec {
            timeout_ms,
            ..http_spec()
        };
        let route = build_route(&spec, &lineage("http"), &Map::new()).unwrap();
        assert!(route.resolved_budget.is_empty(), "{timeout_ms:?}");
    }
}

#[test]
fn build_route_families_are_overridable_by_attrs() {
    let given = attrs(json!({"transport_family": "ssh", "placement_family": "ssh"}));
    let route = build_route(&process_spec(), &lineage("process"), &given).unwrap();
    assert_eq!(route.transport_family, "ssh");
    assert_eq!(route.placement_family, "ssh");
    let given = attrs(json!({"transport_family": null}));
    let route = build_route(&process_spec(), &lineage("process"), &given).unwrap();
    assert_eq!(route.transport_family, "process");
}

// ---------------------------------------------------------------------------------------------
// The built pieces plan and run

fn http_intent(envelope: &ExecutionIntentEnvelope) -> Value {
    json!({
        "envelope": envelope.to_value(),
        "request_shape": "request_response",
        "stream_mode": "unary",
        "headers": {},
        "body": null,
        "timeouts": {"request_timeout_ms": 750},
    })
}

#[test]
fn built_http_route_and_envelope_pass_build_dispatch() {
    let lineage = lineage("http");
    let envelope = build_envelope("http", "http", "http.unary", &lineage, &Map::new()).unwrap();
    let route = build_route(&http_spec(), &lineage, &Map::new()).unwrap();
    let plan = build_dispatch(
        &http_intent(&envelope),
        &route.to_value(),
        &DispatchOptions::default(),
    )
    .unwrap();
    assert_eq!(plan.protocol, Protocol::Http);
    assert_eq!(plan.route, route);
    assert_eq!(plan.timeout, Timeout::Budget(750));
    assert_eq!(plan.intent.envelope(), &envelope);
}

#[test]
fn built_process_route_and_envelope_pass_build_dispatch() {
    let lineage = lineage("process");
    let envelope =
        build_envelope("process", "process", "process.run", &lineage, &Map::new()).unwrap();
    let route = build_route(&process_spec(), &lineage, &Map::new()).unwrap();
    let intent = json!({
        "envelope": envelope.to_value(),
        "command": "echo",
        "argv": ["hi"],
        "stdio_mode": "pipe",
    });
    let plan = build_dispatch(&intent, &route.to_value(), &DispatchOptions::default()).unwrap();
    assert_eq!(plan.protocol, Protocol::Process);
    assert_eq!(plan.timeout, Timeout::Budget(30_000));
}

#[test]
fn pieces_built_from_different_lineages_do_not_plan() {
    let envelope =
        build_envelope("http", "http", "http.unary", &lineage("http"), &Map::new()).unwrap();
    let other = build_lineage("http", &attrs(json!({"idempotency_key": "idem-other"}))).unwrap();
    let route = build_route(&http_spec(), &other, &Map::new()).unwrap();
    let err = build_dispatch(
        &http_intent(&envelope),
        &route.to_value(),
        &DispatchOptions::default(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "intent idempotency_key does not match route lineage"
    );
}

struct Echo;

impl ProtocolDriver for Echo {
    fn execute(&self, plan: &DispatchPlan) -> impl Future<Output = Execution> + Send {
        let mut raw = Map::new();
        raw.insert("timeout_ms".into(), plan.timeout_ms().into());
        async move { Execution::succeeded("http", raw) }
    }
}

#[test]
fn built_pieces_run_through_execute_with_continuous_lineage() {
    let lineage = lineage("http");
    let envelope = build_envelope("http", "http", "http.unary", &lineage, &Map::new()).unwrap();
    let route = build_route(&http_spec(), &lineage, &Map::new()).unwrap();
    let result = block_on(execute(
        &http_intent(&envelope),
        &route.to_value(),
        &DispatchOptions::default(),
        &Echo,
        &mut |_| {},
    ))
    .unwrap();
    assert!(result.succeeded());
    assert_eq!(result.outcome.raw_payload["timeout_ms"], 750);
    assert_eq!(result.outcome.lineage, lineage);
    for event in &result.events {
        assert_eq!(
            event.lineage,
            lineage.clone().with("event_id", event.event_id.clone())
        );
    }
}
