//! Route-configured lower simulation (§5.1, scenario 23, the simulation half of scenario 22):
//! the no-egress success path and its bounded evidence artifact, descriptor validation in
//! order with one row per reason, failed simulations, process simulation without spawning,
//! JSON-RPC ignoring simulation, and deterministic fingerprints.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, Utc};
use ep_contracts::canonical::{canonical_json, fingerprint, is_sha256_ref};
use ep_contracts::fixtures::flow as fx;
use ep_contracts::flow::{ExecutionOutcome, ExecutionRoute};
use ep_contracts::simulation::{
    LowerSimulationEvidence, NoEgressPolicy, REQUIRED_NEGATIVE_EVIDENCE,
};
use ep_contracts::{Contract, FailureClass};
use ep_kernel::facts::{DISPATCH_COMPLETED, DISPATCH_FAILED, DISPATCH_STARTED};
use ep_kernel::simulation::{input_fact, side_effect_policy_for};
use ep_kernel::{
    DispatchOptions, DispatchPlan, Execution, KernelResult, Protocol, ProtocolDriver, execute,
};
use futures::executor::block_on;
use serde_json::{Map, Value, json};

const POLICY_REF: &str = "no-egress-policy://execution-plane/lower/v1";
const RAW_PROMPT: &str = "raw prompt text";
const SIMULATED_BODY: &str = "{\"simulated\":\"widget inventory response\"}";

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-04-10T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
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

/// A driver that must not be reached when a simulation answers; it counts the attempts.
struct CountingDriver {
    calls: AtomicUsize,
}

impl CountingDriver {
    fn new() -> Self {
        Self {
            calls: AtomicUsize::new(0),
        }
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl ProtocolDriver for CountingDriver {
    fn execute(&self, plan: &DispatchPlan) -> impl Future<Output = Execution> + Send {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let family = plan.family.clone();
        async move {
            let mut raw = Map::new();
            raw.insert("real".into(), json!(true));
            Execution::succeeded(family, raw)
        }
    }
}

fn run(intent: &Value, route: &Value, driver: &CountingDriver) -> KernelResult {
    let options = DispatchOptions {
        timeout_ms: None,
        now: Some(now()),
    };
    block_on(execute(intent, route, &options, driver, &mut |_| {})).unwrap()
}

fn policy() -> Value {
    NoEgressPolicy::default_lower_boundary_policy().to_value()
}

fn http_raw_payload() -> Value {
    json!({
        "status_code": 200,
        "headers": {"content-type": "application/json"},
        "body": SIMULATED_BODY,
    })
}

fn http_descriptor() -> Value {
    json!({
        "scenario_ref": "lower-simulation://http/success",
        "status": "succeeded",
        "raw_payload": http_raw_payload(),
        "metrics": {"duration_ms": 0},
        "no_egress_policy": policy(),
        "side_effect_policy": "deny_external_egress",
    })
}

fn http_route_with(descriptor: Value) -> Value {
    let mut route = fx::http_execution_route();
    set(
        &mut route,
        &["resolved_target", "url"],
        json!("http://127.0.0.1:1/should-not-egress"),
    );
    set(
        &mut route,
        &["resolved_target", "lower_simulation"],
        descriptor,
    );
    route
}

fn prompt_intent() -> Value {
    let mut intent = fx::http_execution_intent();
    set(
        &mut intent,
        &["body"],
        json!({"messages": [{"role": "user", "content": RAW_PROMPT}]}),
    );
    intent
}

fn process_descriptor() -> Value {
    json!({
        "scenario_ref": "lower-simulation://process/success",
        "raw_payload": {
            "stdout": "simulated stdout\n",
            "stderr": "",
            "exit": {"status": "exit", "code": 0},
        },
        "no_egress_policy": policy(),
    })
}

fn process_route_with(descriptor: Value) -> Value {
    let mut route = fx::process_execution_route();
    set(
        &mut route,
        &["resolved_target", "lower_simulation"],
        descriptor,
    );
    route
}

fn nonexistent_command_intent() -> Value {
    let mut intent = fx::process_execution_intent();
    set(
        &mut intent,
        &["command"],
        json!("/nonexistent/execution-plane/definitely-not-a-binary"),
    );
    intent
}

fn only_artifact(result: &KernelResult) -> &Map<String, Value> {
    assert_eq!(result.outcome.artifacts.len(), 1);
    result.outcome.artifacts[0].as_object().unwrap()
}

fn evidence_of(result: &KernelResult) -> LowerSimulationEvidence {
    LowerSimulationEvidence::from_value(&only_artifact(result)["evidence"]).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Scenario 23: the success path (checklist 44, 46, 47)

#[test]
fn http_simulation_answers_without_egress_with_the_raw_payload_verbatim() {
    let driver = CountingDriver::new();
    let route = http_route_with(http_descriptor());
    let result = run(&prompt_intent(), &route, &driver);
    assert_eq!(
        driver.calls(),
        0,
        "a simulated route must not reach the lane"
    );
    assert!(result.succeeded());
    assert_eq!(result.outcome.family, "http");
    assert_eq!(
        Value::Object(result.outcome.raw_payload.clone()),
        http_raw_payload()
    );
    assert_eq!(result.outcome.failure, None);
    let types: Vec<&str> = result
        .events
        .iter()
        .map(|e| e.event_type.as_str())
        .collect();
    assert_eq!(types, [DISPATCH_STARTED, DISPATCH_COMPLETED]);
    assert_eq!(
        ExecutionOutcome::from_value(&result.outcome.to_value()).unwrap(),
        result.outcome
    );
}

#[test]
fn http_simulation_produces_one_bounded_evidence_artifact() {
    let driver = CountingDriver::new();
    let route = http_route_with(http_descriptor());
    let result = run(&prompt_intent(), &route, &driver);
    let artifact = only_artifact(&result);
    assert_eq!(
        artifact["artifact_ref"],
        format!(
            "artifact://execution-plane/lower-simulation/{}",
            fx::HTTP_ROUTE_ID
        )
    );
    assert_eq!(artifact["kind"], "lower_simulation_evidence");
    assert_eq!(
        artifact["contract_version"],
        "ExecutionPlane.LowerSimulationEvidence.v1"
    );
    assert_eq!(artifact["no_egress_policy_ref"], POLICY_REF);
    assert_eq!(
        artifact["negative_evidence_refs"],
        json!([
            "attempted_raw_external_saas_write_path",
            "attempted_unregistered_provider_route"
        ])
    );
    assert_eq!(
        artifact["negative_evidence_refs"],
        json!(REQUIRED_NEGATIVE_EVIDENCE)
    );
    assert_eq!(artifact.len(), 6);

    let evidence = evidence_of(&result);
    assert_eq!(evidence.scenario_ref, "lower-simulation://http/success");
    assert_eq!(evidence.route_id, fx::HTTP_ROUTE_ID);
    assert_eq!(evidence.family, "http");
    assert_eq!(evidence.protocol, "http");
    assert_eq!(evidence.side_effect_policy, "deny_external_egress");
    assert_eq!(evidence.side_effect_result, "not_attempted");
    assert_eq!(evidence.outcome_contract_version, "execution_outcome.v1");
    assert_eq!(evidence.outcome_status, "succeeded");
    assert_eq!(evidence.outcome_family, "http");
    assert_eq!(
        evidence.raw_payload_shape,
        ["body", "headers", "status_code"]
    );
    assert_eq!(
        evidence.lineage,
        ExecutionRoute::from_value(&route).unwrap().lineage
    );
    for fp in [&evidence.input_fingerprint, &evidence.output_fingerprint] {
        assert!(is_sha256_ref(fp["sha256"].as_str().unwrap()), "{fp:?}");
        assert!(fp["byte_size"].as_u64().unwrap() > 0);
        assert_eq!(fp.len(), 2, "fingerprints carry only sha256 and byte_size");
    }
    // The dumped evidence is exactly what the contract would dump.
    assert_eq!(evidence.to_value(), artifact["evidence"]);
}

#[test]
fn the_evidence_artifact_never_carries_the_raw_input_or_output() {
    let driver = CountingDriver::new();
    let result = run(
        &prompt_intent(),
        &http_route_with(http_descriptor()),
        &driver,
    );
    let serialized = serde_json::to_string(&result.outcome.artifacts).unwrap();
    assert!(!serialized.contains(RAW_PROMPT), "{serialized}");
    assert!(
        !serialized.contains("widget inventory response"),
        "{serialized}"
    );
    assert!(!serialized.contains("application/json"), "{serialized}");
    // The raw response stays in the outcome's raw_payload, where it belongs.
    assert_eq!(result.outcome.raw_payload["body"], SIMULATED_BODY);
}

#[test]
fn fingerprints_are_sha256_over_canonical_json_of_the_input_fact_and_raw_payload() {
    let driver = CountingDriver::new();
    let result = run(
        &prompt_intent(),
        &http_route_with(http_descriptor()),
        &driver,
    );
    let evidence = evidence_of(&result);
    let input = input_fact(&result.plan.intent);
    assert_eq!(
        input,
        json!({
            "family": "http",
            "request_shape": "request_response",
            "stream_mode": "unary",
            "headers": {"accept": "application/json", "content-type": "application/json"},
            "body": {"messages": [{"role": "user", "content": RAW_PROMPT}]},
        })
    );
    assert_eq!(
        Value::Object(evidence.input_fingerprint.clone()),
        fingerprint(&input)
    );
    assert_eq!(
        Value::Object(evidence.output_fingerprint.clone()),
        fingerprint(&http_raw_payload())
    );
    assert_eq!(
        evidence.output_fingerprint["byte_size"],
        json!(canonical_json(&http_raw_payload()).len())
    );
}

#[test]
fn fingerprints_are_deterministic_and_follow_the_body() {
    let driver = CountingDriver::new();
    let route = http_route_with(http_descriptor());
    let a = evidence_of(&run(&prompt_intent(), &route, &driver));
    let b = evidence_of(&run(&prompt_intent(), &route, &driver));
    assert_eq!(a.input_fingerprint, b.input_fingerprint);
    assert_eq!(a.output_fingerprint, b.output_fingerprint);
    assert_eq!(a, b);

    let mut other_prompt = prompt_intent();
    set(
        &mut other_prompt,
        &["body"],
        json!({"messages": [{"role": "user", "content": "raw prompt text!"}]}),
    );
    let c = evidence_of(&run(&other_prompt, &route, &driver));
    assert_ne!(c.input_fingerprint["sha256"], a.input_fingerprint["sha256"]);
    assert_eq!(c.output_fingerprint, a.output_fingerprint);

    // Key order in the input does not matter: the encoding is canonical.
    let mut reordered = prompt_intent();
    set(
        &mut reordered,
        &["headers"],
        json!({"content-type": "application/json", "accept": "application/json"}),
    );
    let d = evidence_of(&run(&reordered, &route, &driver));
    assert_eq!(d.input_fingerprint, a.input_fingerprint);

    let mut other_response = http_descriptor();
    set(
        &mut other_response,
        &["raw_payload", "body"],
        json!("{\"simulated\":[]}"),
    );
    let e = evidence_of(&run(
        &prompt_intent(),
        &http_route_with(other_response),
        &driver,
    ));
    assert_ne!(
        e.output_fingerprint["sha256"],
        a.output_fingerprint["sha256"]
    );
    assert_eq!(e.input_fingerprint, a.input_fingerprint);
    assert_eq!(driver.calls(), 0);
}

#[test]
fn simulation_metrics_default_to_zero_duration_and_keep_descriptor_metrics() {
    let driver = CountingDriver::new();
    let mut without = http_descriptor();
    remove(&mut without, &["metrics"]);
    let result = run(&prompt_intent(), &http_route_with(without), &driver);
    assert_eq!(result.outcome.metrics["duration_ms"], 0);
    assert_eq!(result.outcome.metrics["timeout_ms"], 5000);
    assert!(result.outcome.metrics.contains_key("started_at"));
    assert!(result.outcome.metrics.contains_key("finished_at"));

    let mut custom = http_descriptor();
    set(
        &mut custom,
        &["metrics"],
        json!({"simulated_latency_ms": 7}),
    );
    let result = run(&prompt_intent(), &http_route_with(custom), &driver);
    assert_eq!(result.outcome.metrics["simulated_latency_ms"], 7);
    assert_eq!(result.outcome.metrics["duration_ms"], 0);

    let mut with_duration = http_descriptor();
    set(&mut with_duration, &["metrics"], json!({"duration_ms": 12}));
    let result = run(&prompt_intent(), &http_route_with(with_duration), &driver);
    assert_eq!(result.outcome.metrics["duration_ms"], 12);
}

#[test]
fn status_and_side_effect_policy_have_defaults() {
    let driver = CountingDriver::new();
    let mut minimal = http_descriptor();
    remove(&mut minimal, &["status"]);
    remove(&mut minimal, &["side_effect_policy"]);
    remove(&mut minimal, &["metrics"]);
    let result = run(&prompt_intent(), &http_route_with(minimal), &driver);
    assert!(result.succeeded());
    assert_eq!(
        evidence_of(&result).side_effect_policy,
        "deny_external_egress"
    );
    assert_eq!(
        side_effect_policy_for(Protocol::Http),
        "deny_external_egress"
    );
    assert_eq!(
        side_effect_policy_for(Protocol::Process),
        "deny_process_spawn"
    );
}

// ---------------------------------------------------------------------------------------------
// Failed simulations (checklist 46)

#[test]
fn a_failed_simulation_defaults_to_transport_failed_simulated_failure() {
    let driver = CountingDriver::new();
    let mut descriptor = http_descriptor();
    set(&mut descriptor, &["status"], json!("failed"));
    let result = run(&prompt_intent(), &http_route_with(descriptor), &driver);
    assert_eq!(driver.calls(), 0);
    assert_eq!(result.outcome.status, "failed");
    let failure = result.outcome.failure.clone().unwrap();
    assert_eq!(failure.failure_class, FailureClass::TransportFailed);
    assert_eq!(failure.reason.as_deref(), Some("simulated failure"));
    assert_eq!(
        Value::Object(result.outcome.raw_payload.clone()),
        http_raw_payload()
    );
    assert_eq!(evidence_of(&result).outcome_status, "failed");
    assert_eq!(evidence_of(&result).side_effect_result, "not_attempted");
    assert_eq!(result.events[1].event_type, DISPATCH_FAILED);
    assert_eq!(
        result.events[1].payload["failure_class"],
        "transport_failed"
    );
}

#[test]
fn a_failed_simulation_keeps_a_valid_failure() {
    let driver = CountingDriver::new();
    let mut descriptor = http_descriptor();
    set(&mut descriptor, &["status"], json!("failed"));
    set(
        &mut descriptor,
        &["failure"],
        json!({"failure_class": "timeout", "reason": "simulated timeout", "details": {"after_ms": 5}}),
    );
    let result = run(&prompt_intent(), &http_route_with(descriptor), &driver);
    let failure = result.outcome.failure.clone().unwrap();
    assert_eq!(failure.failure_class, FailureClass::Timeout);
    assert_eq!(failure.reason.as_deref(), Some("simulated timeout"));
    assert_eq!(failure.details["after_ms"], 5);
    assert_eq!(result.events[1].payload["failure_class"], "timeout");
    assert_eq!(only_artifact(&result)["kind"], "lower_simulation_evidence");
}

#[test]
fn a_succeeded_simulation_may_carry_a_null_failure() {
    let driver = CountingDriver::new();
    let mut descriptor = http_descriptor();
    set(&mut descriptor, &["failure"], Value::Null);
    let result = run(&prompt_intent(), &http_route_with(descriptor), &driver);
    assert!(result.succeeded());
}

// ---------------------------------------------------------------------------------------------
// Descriptor validation, in order (checklist 45)

type Mutation = fn(&mut Value);

fn one_item_negative_evidence(d: &mut Value) {
    set(
        d,
        &["no_egress_policy", "required_negative_evidence"],
        json!(["attempted_unregistered_provider_route"]),
    );
}

/// (name, mutation of a valid HTTP descriptor, the exact blocking reason)
fn http_rows() -> Vec<(&'static str, Mutation, String)> {
    vec![
        (
            "non-map descriptor",
            |d| *d = json!("simulate please"),
            r#"invalid_lower_simulation_descriptor: "simulate please""#.to_owned(),
        ),
        (
            "list descriptor",
            |d| *d = json!([1, 2]),
            "invalid_lower_simulation_descriptor: [1,2]".to_owned(),
        ),
        (
            "missing scenario_ref",
            |d| remove(d, &["scenario_ref"]),
            r#"missing_required_lower_simulation_key: "scenario_ref""#.to_owned(),
        ),
        (
            "empty scenario_ref",
            |d| set(d, &["scenario_ref"], json!("")),
            r#"missing_required_lower_simulation_key: "scenario_ref""#.to_owned(),
        ),
        (
            "bad status",
            |d| set(d, &["status"], json!("pending")),
            r#"unsupported_lower_simulation_status: "pending""#.to_owned(),
        ),
        (
            "non-string status",
            |d| set(d, &["status"], json!(true)),
            "unsupported_lower_simulation_status: true".to_owned(),
        ),
        (
            "missing raw_payload",
            |d| remove(d, &["raw_payload"]),
            r#"missing_required_lower_simulation_key: "raw_payload""#.to_owned(),
        ),
        (
            "non-map raw_payload",
            |d| set(d, &["raw_payload"], json!("200 OK")),
            r#"missing_required_lower_simulation_key: "raw_payload""#.to_owned(),
        ),
        (
            "bad metrics",
            |d| set(d, &["metrics"], json!([1])),
            "invalid_lower_simulation_metrics: [1]".to_owned(),
        ),
        (
            "succeeded with failure",
            |d| set(d, &["failure"], json!({"failure_class": "timeout"})),
            "successful_lower_simulation_cannot_have_failure".to_owned(),
        ),
        (
            "failed with an invalid failure",
            |d| {
                set(d, &["status"], json!("failed"));
                set(d, &["failure"], json!({"failure_class": "oops"}));
            },
            r#"invalid_lower_simulation_failure: unknown failure_class: "oops""#.to_owned(),
        ),
        (
            "failed with a non-map failure",
            |d| {
                set(d, &["status"], json!("failed"));
                set(d, &["failure"], json!("boom"));
            },
            r#"invalid_lower_simulation_failure: expected map attrs (a JSON object), got: "boom""#
                .to_owned(),
        ),
        (
            "missing no_egress_policy",
            |d| remove(d, &["no_egress_policy"]),
            r#"missing_required_lower_simulation_key: "no_egress_policy""#.to_owned(),
        ),
        (
            "one-item required_negative_evidence",
            one_item_negative_evidence,
            r#"invalid_no_egress_policy: required_negative_evidence must be ["attempted_raw_external_saas_write_path","attempted_unregistered_provider_route"], got: ["attempted_unregistered_provider_route"]"#.to_owned(),
        ),
        (
            "policy allowing external egress",
            |d| set(d, &["no_egress_policy", "denied_surfaces", "external_egress"], json!("allow")),
            "invalid_no_egress_policy: denied_surfaces.external_egress must be deny".to_owned(),
        ),
        (
            "policy with budget semantics",
            |d| set(d, &["no_egress_policy", "budget_profile_ref"], json!("budget://1")),
            "invalid_no_egress_policy: NoEgressPolicy must not carry provider or model or budget semantics".to_owned(),
        ),
        (
            "wrong side_effect_policy",
            |d| set(d, &["side_effect_policy"], json!("deny_process_spawn")),
            r#"invalid_lower_simulation_side_effect_policy: got "deny_process_spawn", expected "deny_external_egress""#.to_owned(),
        ),
        // Two violations: the earlier check wins.
        (
            "missing scenario_ref and bad status",
            |d| {
                remove(d, &["scenario_ref"]);
                set(d, &["status"], json!("pending"));
            },
            r#"missing_required_lower_simulation_key: "scenario_ref""#.to_owned(),
        ),
        (
            "bad status and missing raw_payload",
            |d| {
                set(d, &["status"], json!("pending"));
                remove(d, &["raw_payload"]);
            },
            r#"unsupported_lower_simulation_status: "pending""#.to_owned(),
        ),
        (
            "missing raw_payload and bad metrics",
            |d| {
                remove(d, &["raw_payload"]);
                set(d, &["metrics"], json!(0));
            },
            r#"missing_required_lower_simulation_key: "raw_payload""#.to_owned(),
        ),
        (
            "bad metrics and succeeded with failure",
            |d| {
                set(d, &["metrics"], json!("fast"));
                set(d, &["failure"], json!({"failure_class": "timeout"}));
            },
            r#"invalid_lower_simulation_metrics: "fast""#.to_owned(),
        ),
        (
            "succeeded with failure and missing policy",
            |d| {
                set(d, &["failure"], json!({"failure_class": "timeout"}));
                remove(d, &["no_egress_policy"]);
            },
            "successful_lower_simulation_cannot_have_failure".to_owned(),
        ),
        (
            "missing policy and wrong side_effect_policy",
            |d| {
                remove(d, &["no_egress_policy"]);
                set(d, &["side_effect_policy"], json!("allow_everything"));
            },
            r#"missing_required_lower_simulation_key: "no_egress_policy""#.to_owned(),
        ),
    ]
}

fn assert_blocked(name: &str, result: &KernelResult, family: &str, reason: &str) {
    assert_eq!(result.outcome.status, "failed", "{name}");
    assert_eq!(result.outcome.family, family, "{name}");
    let failure = result.outcome.failure.clone().unwrap();
    assert_eq!(
        failure.failure_class,
        FailureClass::RouteUnresolved,
        "{name}"
    );
    assert_eq!(
        failure.reason.as_deref(),
        Some("invalid lower simulation route"),
        "{name}"
    );
    assert_eq!(
        result.outcome.raw_payload["side_effect_result"], "blocked_before_dispatch",
        "{name}"
    );
    assert_eq!(result.outcome.raw_payload["error"], reason, "{name}");
    assert!(result.outcome.artifacts.is_empty(), "{name}");
    assert_eq!(result.outcome.metrics["duration_ms"], 0, "{name}");
    assert_eq!(result.events[1].event_type, DISPATCH_FAILED, "{name}");
    assert_eq!(
        result.events[1].payload["failure_class"], "route_unresolved",
        "{name}"
    );
    assert_eq!(
        ExecutionOutcome::from_value(&result.outcome.to_value()).unwrap(),
        result.outcome,
        "{name}"
    );
}

#[test]
fn an_invalid_http_descriptor_blocks_before_dispatch_with_its_reason() {
    for (name, mutate, reason) in http_rows() {
        let mut descriptor = http_descriptor();
        mutate(&mut descriptor);
        let driver = CountingDriver::new();
        let result = run(&prompt_intent(), &http_route_with(descriptor), &driver);
        assert_eq!(driver.calls(), 0, "{name}: nothing may be dispatched");
        assert_blocked(name, &result, "http", &reason);
    }
}

#[test]
fn the_invalid_policy_reason_mentions_required_negative_evidence() {
    let mut descriptor = http_descriptor();
    one_item_negative_evidence(&mut descriptor);
    let driver = CountingDriver::new();
    let result = run(&prompt_intent(), &http_route_with(descriptor), &driver);
    let error = result.outcome.raw_payload["error"].as_str().unwrap();
    assert!(error.contains("required_negative_evidence"), "{error}");
    assert_eq!(
        result.outcome.failure.unwrap().details["lower_simulation_error"],
        error
    );
}

// ---------------------------------------------------------------------------------------------
// Process simulation (checklist 44, 48)

#[test]
fn process_simulation_with_a_nonexistent_command_succeeds_without_spawning() {
    let driver = CountingDriver::new();
    let route = process_route_with(process_descriptor());
    let result = run(&nonexistent_command_intent(), &route, &driver);
    assert_eq!(driver.calls(), 0);
    assert!(result.succeeded());
    assert_eq!(result.outcome.family, "process");
    assert_eq!(result.outcome.raw_payload["stdout"], "simulated stdout\n");
    assert_eq!(result.outcome.raw_payload["exit"]["code"], 0);
    let evidence = evidence_of(&result);
    assert_eq!(evidence.side_effect_policy, "deny_process_spawn");
    assert_eq!(evidence.protocol, "process");
    assert_eq!(evidence.family, "process");
    assert_eq!(evidence.raw_payload_shape, ["exit", "stderr", "stdout"]);
    let input = input_fact(&result.plan.intent);
    assert_eq!(input["family"], "process");
    assert_eq!(
        input["command"],
        "/nonexistent/execution-plane/definitely-not-a-binary"
    );
    assert_eq!(input["argv"], json!(["exec", "--json"]));
    assert_eq!(input["cwd"], "/tmp/workspace");
    assert_eq!(input["env_projection"], json!({"CODEX_ENV": "test"}));
    assert_eq!(input["stdin"], Value::Null);
    assert_eq!(
        Value::Object(evidence.input_fingerprint),
        fingerprint(&input)
    );
    let serialized = serde_json::to_string(&result.outcome.artifacts).unwrap();
    assert!(!serialized.contains("simulated stdout"));
    assert!(!serialized.contains("definitely-not-a-binary"));
}

#[test]
fn process_simulation_with_a_one_item_negative_evidence_list_is_route_unresolved() {
    let mut descriptor = process_descriptor();
    one_item_negative_evidence(&mut descriptor);
    let driver = CountingDriver::new();
    let result = run(
        &nonexistent_command_intent(),
        &process_route_with(descriptor),
        &driver,
    );
    assert_eq!(driver.calls(), 0);
    let error = result.outcome.raw_payload["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(error.contains("required_negative_evidence"), "{error}");
    assert_blocked("process one-item evidence", &result, "process", &error);
}

#[test]
fn process_simulation_requires_deny_process_spawn() {
    let mut descriptor = process_descriptor();
    set(
        &mut descriptor,
        &["side_effect_policy"],
        json!("deny_external_egress"),
    );
    let driver = CountingDriver::new();
    let result = run(
        &nonexistent_command_intent(),
        &process_route_with(descriptor),
        &driver,
    );
    assert_eq!(driver.calls(), 0);
    assert_blocked(
        "process side effect policy",
        &result,
        "process",
        r#"invalid_lower_simulation_side_effect_policy: got "deny_external_egress", expected "deny_process_spawn""#,
    );

    let mut explicit = process_descriptor();
    set(
        &mut explicit,
        &["side_effect_policy"],
        json!("deny_process_spawn"),
    );
    let result = run(
        &nonexistent_command_intent(),
        &process_route_with(explicit),
        &driver,
    );
    assert!(result.succeeded());
}

#[test]
fn process_descriptor_validation_shares_the_order_and_reasons() {
    for (name, mutate, reason) in http_rows() {
        if name.contains("side_effect_policy") {
            continue; // the expected policy differs per protocol (tested above)
        }
        let mut descriptor = process_descriptor();
        set(&mut descriptor, &["status"], json!("succeeded"));
        set(&mut descriptor, &["metrics"], json!({"duration_ms": 0}));
        mutate(&mut descriptor);
        let driver = CountingDriver::new();
        let result = run(
            &nonexistent_command_intent(),
            &process_route_with(descriptor),
            &driver,
        );
        assert_eq!(driver.calls(), 0, "{name}");
        assert_blocked(name, &result, "process", &reason);
    }
}

// ---------------------------------------------------------------------------------------------
// Where simulation does not apply (checklist 44)

#[test]
fn jsonrpc_routes_ignore_lower_simulation() {
    for descriptor in [http_descriptor(), process_descriptor(), json!("garbage")] {
        let mut route = fx::jsonrpc_execution_route();
        set(
            &mut route,
            &["resolved_target", "lower_simulation"],
            descriptor,
        );
        let driver = CountingDriver::new();
        let result = run(&fx::jsonrpc_execution_intent(), &route, &driver);
        assert_eq!(driver.calls(), 1);
        assert!(result.succeeded());
        assert_eq!(result.outcome.raw_payload["real"], true);
        assert!(result.outcome.artifacts.is_empty());
    }
}

#[test]
fn routes_without_a_descriptor_run_the_real_lower_call() {
    for (intent, route) in [
        (fx::http_execution_intent(), fx::http_execution_route()),
        (
            fx::process_execution_intent(),
            fx::process_execution_route(),
        ),
    ] {
        let driver = CountingDriver::new();
        let result = run(&intent, &route, &driver);
        assert_eq!(driver.calls(), 1);
        assert_eq!(result.outcome.raw_payload["real"], true);
    }
}

#[test]
fn a_null_descriptor_counts_as_absent() {
    let driver = CountingDriver::new();
    let result = run(&prompt_intent(), &http_route_with(Value::Null), &driver);
    assert_eq!(driver.calls(), 1);
    assert!(result.succeeded());
    assert!(result.outcome.artifacts.is_empty());
}

#[test]
fn an_expired_deadline_wins_over_a_simulation() {
    let mut intent = prompt_intent();
    set(
        &mut intent,
        &["envelope", "deadline_at"],
        json!("2026-04-10T11:00:00Z"),
    );
    let driver = CountingDriver::new();
    let result = run(&intent, &http_route_with(http_descriptor()), &driver);
    assert_eq!(driver.calls(), 0);
    assert_eq!(
        result.outcome.failure.unwrap().failure_class,
        FailureClass::Timeout
    );
    assert!(result.outcome.artifacts.is_empty());
}
