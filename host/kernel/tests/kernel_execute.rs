//! `execute` (§4.2) with fake protocol drivers: the two raw events and their payloads, lineage
//! continuity route → event → outcome, outcome metrics, the emit callback, typed planning
//! errors that never reach the driver, the expired-deadline divergence (§11 item 3), driver
//! prechecks, and the kernel halves of scenario 24.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, Utc};
use ep_contracts::fixtures::flow as fx;
use ep_contracts::flow::{ExecutionEventV1, ExecutionOutcome, ExecutionRoute};
use ep_contracts::simulation::NoEgressPolicy;
use ep_contracts::{Contract, Failure, FailureClass, Lineage};
use ep_kernel::facts::{DISPATCH_COMPLETED, DISPATCH_FAILED, DISPATCH_STARTED};
use ep_kernel::{
    DispatchOptions, DispatchPlan, Execution, KernelError, KernelResult, ProtocolDriver, execute,
};
use futures::executor::block_on;
use serde_json::{Map, Value, json};

const NOW: &str = "2026-04-10T12:00:00Z";
const NOW_MICROS: &str = "2026-04-10T12:00:00.000000Z";

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

fn set(v: &mut Value, path: &[&str], new: Value) {
    let (last, parents) = path.split_last().unwrap();
    let mut cur = v;
    for p in parents {
        cur = cur.get_mut(*p).unwrap();
    }
    cur.as_object_mut().unwrap().insert((*last).to_owned(), new);
}

fn map(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(m) => m,
        other => panic!("not a map: {other}"),
    }
}

/// A protocol driver that answers with a fixed execution and records every call.
struct FakeDriver {
    answer: Execution,
    precheck: Option<Execution>,
    prechecks: AtomicUsize,
    calls: AtomicUsize,
    seen_timeouts: Mutex<Vec<u64>>,
}

impl FakeDriver {
    fn answering(answer: Execution) -> Self {
        Self {
            answer,
            precheck: None,
            prechecks: AtomicUsize::new(0),
            calls: AtomicUsize::new(0),
            seen_timeouts: Mutex::new(Vec::new()),
        }
    }

    fn ok_http() -> Self {
        Self::answering(Execution::succeeded(
            "http",
            map(json!({
                "status_code": 200,
                "headers": {"content-type": "application/json"},
                "body": "{\"ok\":true}",
            })),
        ))
    }

    fn refusing_in_precheck(mut self, execution: Execution) -> Self {
        self.precheck = Some(execution);
        self
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn prechecks(&self) -> usize {
        self.prechecks.load(Ordering::SeqCst)
    }
}

impl ProtocolDriver for FakeDriver {
    fn precheck(&self, _plan: &DispatchPlan) -> Result<(), Execution> {
        self.prechecks.fetch_add(1, Ordering::SeqCst);
        match &self.precheck {
            Some(execution) => Err(execution.clone()),
            None => Ok(()),
        }
    }

    fn execute(&self, plan: &DispatchPlan) -> impl Future<Output = Execution> + Send {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.seen_timeouts.lock().unwrap().push(plan.timeout_ms());
        let answer = self.answer.clone();
        async move { answer }
    }
}

/// Runs one dispatch, returning the result and the events the emit callback saw.
fn run(
    intent: &Value,
    route: &Value,
    options: &DispatchOptions,
    driver: &FakeDriver,
) -> (Result<KernelResult, KernelError>, Vec<ExecutionEventV1>) {
    let mut seen = Vec::new();
    let result = block_on(execute(intent, route, options, driver, &mut |e| {
        seen.push(e.clone());
    }));
    (result, seen)
}

fn run_ok(intent: &Value, route: &Value, driver: &FakeDriver) -> KernelResult {
    run(intent, route, &at_now(), driver).0.unwrap()
}

fn route_lineage(route: &Value) -> Lineage {
    ExecutionRoute::from_value(route).unwrap().lineage
}

fn event_types(result: &KernelResult) -> Vec<&str> {
    result
        .events
        .iter()
        .map(|e| e.event_type.as_str())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Events (checklist 41)

#[test]
fn success_emits_started_then_completed_with_the_documented_payloads() {
    let driver = FakeDriver::ok_http();
    let result = run_ok(
        &fx::http_execution_intent(),
        &fx::http_execution_route(),
        &driver,
    );
    assert_eq!(event_types(&result), [DISPATCH_STARTED, DISPATCH_COMPLETED]);
    assert_eq!(
        Value::Object(result.events[0].payload.clone()),
        json!({"family": "http", "protocol": "http", "timeout_ms": 5000, "placement_family": "local"})
    );
    assert_eq!(
        Value::Object(result.events[1].payload.clone()),
        json!({"family": "http", "status": "succeeded"})
    );
    assert!(result.succeeded());
    assert_eq!(driver.calls(), 1);
    assert_eq!(driver.prechecks(), 1);
}

#[test]
fn driver_failure_emits_dispatch_failed_with_the_failure_class() {
    let failure = Failure::new(FailureClass::TransportFailed, "connection refused")
        .with_detail("errno", "ECONNREFUSED");
    let driver = FakeDriver::answering(Execution::failed(
        "http",
        map(json!({"error": "econnrefused"})),
        Some(failure.clone()),
    ));
    let result = run_ok(
        &fx::http_execution_intent(),
        &fx::http_execution_route(),
        &driver,
    );
    assert_eq!(event_types(&result), [DISPATCH_STARTED, DISPATCH_FAILED]);
    assert_eq!(
        Value::Object(result.events[1].payload.clone()),
        json!({"family": "http", "status": "failed", "failure_class": "transport_failed"})
    );
    assert!(!result.succeeded());
    assert_eq!(result.outcome.status, "failed");
    assert_eq!(result.outcome.failure, Some(failure));
    assert_eq!(
        result.outcome.raw_payload,
        map(json!({"error": "econnrefused"}))
    );
}

#[test]
fn every_event_carries_the_route_lineage_plus_its_own_event_id() {
    for (intent, route) in [
        (fx::http_execution_intent(), fx::http_execution_route()),
        (
            fx::process_execution_intent(),
            fx::process_execution_route(),
        ),
        (
            fx::jsonrpc_execution_intent(),
            fx::jsonrpc_execution_route(),
        ),
    ] {
        let driver = FakeDriver::answering(Execution::succeeded("x", Map::new()));
        let result = run_ok(&intent, &route, &driver);
        let lineage = route_lineage(&route);
        for event in &result.events {
            assert_eq!(event.lineage.get("event_id"), Some(event.event_id.as_str()));
            assert_eq!(
                event.lineage,
                lineage.clone().with("event_id", event.event_id.clone())
            );
            assert_eq!(event.route_id, result.plan.route_id);
            let n: u64 = event
                .event_id
                .strip_prefix("event-")
                .unwrap()
                .parse()
                .unwrap();
            assert!(n > 0);
        }
        assert_ne!(result.events[0].event_id, result.events[1].event_id);
    }
}

#[test]
fn events_and_outcome_pass_their_own_contracts() {
    let failing = FakeDriver::answering(Execution::failed(
        "http",
        map(json!({"error": "reset"})),
        Some(Failure::new(FailureClass::RemoteDisconnect, "peer reset")),
    ));
    for driver in [FakeDriver::ok_http(), failing] {
        let result = run_ok(
            &fx::http_execution_intent(),
            &fx::http_execution_route(),
            &driver,
        );
        for event in &result.events {
            assert_eq!(
                &ExecutionEventV1::from_value(&event.to_value()).unwrap(),
                event
            );
        }
        assert_eq!(
            ExecutionOutcome::from_value(&result.outcome.to_value()).unwrap(),
            result.outcome
        );
    }
}

#[test]
fn events_are_stamped_with_the_planning_time() {
    let driver = FakeDriver::ok_http();
    let result = run_ok(
        &fx::http_execution_intent(),
        &fx::http_execution_route(),
        &driver,
    );
    for event in &result.events {
        assert_eq!(event.timestamp, NOW_MICROS);
    }
}

#[test]
fn emit_sees_both_events_in_order() {
    let driver = FakeDriver::ok_http();
    let (result, seen) = run(
        &fx::http_execution_intent(),
        &fx::http_execution_route(),
        &at_now(),
        &driver,
    );
    let result = result.unwrap();
    assert_eq!(seen, result.events);
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].event_type, DISPATCH_STARTED);
    assert_eq!(seen[1].event_type, DISPATCH_COMPLETED);
}

/// A driver that checks, at execute time, that `dispatch.started` was already emitted.
struct OrderProbe<'a> {
    emitted: &'a Mutex<Vec<String>>,
}

impl ProtocolDriver for OrderProbe<'_> {
    fn execute(&self, _plan: &DispatchPlan) -> impl Future<Output = Execution> + Send {
        let seen = self.emitted.lock().unwrap().clone();
        async move {
            let mut raw = Map::new();
            raw.insert("emitted_before_execute".into(), json!(seen));
            Execution::succeeded("http", raw)
        }
    }
}

#[test]
fn started_is_emitted_before_the_driver_runs_and_completed_after() {
    let emitted = Mutex::new(Vec::new());
    let driver = OrderProbe { emitted: &emitted };
    let result = block_on(execute(
        &fx::http_execution_intent(),
        &fx::http_execution_route(),
        &at_now(),
        &driver,
        &mut |e| emitted.lock().unwrap().push(e.event_type.clone()),
    ))
    .unwrap();
    assert_eq!(
        result.outcome.raw_payload["emitted_before_execute"],
        json!([DISPATCH_STARTED])
    );
    assert_eq!(
        *emitted.lock().unwrap(),
        [DISPATCH_STARTED, DISPATCH_COMPLETED]
    );
}

#[test]
fn the_default_precheck_accepts() {
    // OrderProbe does not override precheck: the dispatch reaches execute.
    let emitted = Mutex::new(Vec::new());
    let driver = OrderProbe { emitted: &emitted };
    let result = block_on(execute(
        &fx::process_execution_intent(),
        &fx::process_execution_route(),
        &at_now(),
        &driver,
        &mut |_| {},
    ))
    .unwrap();
    assert!(result.succeeded());
}

// ---------------------------------------------------------------------------------------------
// Outcome (checklist 42)

#[test]
fn outcome_metrics_gain_started_at_finished_at_and_timeout_ms() {
    let mut answer = Execution::succeeded("http", Map::new());
    answer.metrics.insert("duration_ms".into(), json!(12));
    let driver = FakeDriver::answering(answer);
    let result = run_ok(
        &fx::http_execution_intent(),
        &fx::http_execution_route(),
        &driver,
    );
    let metrics = &result.outcome.metrics;
    assert_eq!(metrics["started_at"], json!(result.events[0].timestamp));
    assert_eq!(metrics["finished_at"], json!(result.events[1].timestamp));
    assert_eq!(metrics["timeout_ms"], json!(5000));
    assert_eq!(metrics["duration_ms"], json!(12));
    assert_eq!(metrics.len(), 4);
}

#[test]
fn outcome_metrics_keep_what_the_driver_reported() {
    let mut answer = Execution::succeeded("http", Map::new());
    answer.metrics.insert("timeout_ms".into(), json!(1));
    answer
        .metrics
        .insert("started_at".into(), json!("driver-start"));
    answer
        .metrics
        .insert("finished_at".into(), json!("driver-end"));
    let driver = FakeDriver::answering(answer);
    let result = run_ok(
        &fx::http_execution_intent(),
        &fx::http_execution_route(),
        &driver,
    );
    assert_eq!(result.outcome.metrics["timeout_ms"], json!(1));
    assert_eq!(result.outcome.metrics["started_at"], json!("driver-start"));
    assert_eq!(result.outcome.metrics["finished_at"], json!("driver-end"));
}

#[test]
fn outcome_lineage_and_route_id_are_the_routes() {
    for (intent, route) in [
        (fx::http_execution_intent(), fx::http_execution_route()),
        (
            fx::process_execution_intent(),
            fx::process_execution_route(),
        ),
        (
            fx::jsonrpc_execution_intent(),
            fx::jsonrpc_execution_route(),
        ),
    ] {
        let driver = FakeDriver::answering(Execution::succeeded("x", Map::new()));
        let result = run_ok(&intent, &route, &driver);
        assert_eq!(result.outcome.lineage, route_lineage(&route));
        assert_eq!(result.outcome.lineage.get("event_id"), None);
        assert_eq!(result.outcome.route_id, route["route_id"].as_str().unwrap());
    }
}

#[test]
fn outcome_carries_the_drivers_family_raw_payload_and_artifacts_verbatim() {
    let raw =
        map(json!({"status_code": 418, "headers": {"x": ["a", "b"]}, "body": [1, {"k": null}]}));
    let mut answer = Execution::succeeded("http", raw.clone());
    answer
        .artifacts
        .push(json!({"artifact_ref": "artifact://x"}));
    let driver = FakeDriver::answering(answer);
    let result = run_ok(
        &fx::http_execution_intent(),
        &fx::http_execution_route(),
        &driver,
    );
    assert_eq!(result.outcome.raw_payload, raw);
    assert_eq!(
        result.outcome.artifacts,
        [json!({"artifact_ref": "artifact://x"})]
    );
    assert_eq!(result.outcome.family, "http");
    assert_eq!(result.outcome.failure, None);
}

#[test]
fn jsonrpc_dispatch_reports_the_route_family_at_start_and_the_drivers_at_the_end() {
    // §11 item 6: the JSON-RPC protocol reports family "jsonrpc" while the route's is "process".
    let driver = FakeDriver::answering(Execution::succeeded(
        "jsonrpc",
        map(json!({"jsonrpc": "2.0", "id": "attempt://1", "method": "session.start"})),
    ));
    let result = run_ok(
        &fx::jsonrpc_execution_intent(),
        &fx::jsonrpc_execution_route(),
        &driver,
    );
    assert_eq!(
        Value::Object(result.events[0].payload.clone()),
        json!({"family": "process", "protocol": "jsonrpc", "timeout_ms": 5000, "placement_family": "local"})
    );
    assert_eq!(
        Value::Object(result.events[1].payload.clone()),
        json!({"family": "jsonrpc", "status": "succeeded"})
    );
    assert_eq!(result.outcome.family, "jsonrpc");
    assert_eq!(result.plan.family, "process");
}

// ---------------------------------------------------------------------------------------------
// Scenario 24 with fake drivers

#[test]
fn process_exiting_3_is_a_failed_outcome_without_a_failure_class() {
    let raw = map(json!({
        "stdout": "partial output\n",
        "stderr": "boom\n",
        "exit": {"status": "exit", "code": 3},
    }));
    let driver = FakeDriver::answering(Execution::failed("process", raw.clone(), None));
    let intent = fx::process_execution_intent();
    let route = fx::process_execution_route();
    let result = run_ok(&intent, &route, &driver);
    assert_eq!(result.outcome.status, "failed");
    assert_eq!(result.outcome.failure, None);
    assert_eq!(result.outcome.to_value()["failure"], Value::Null);
    assert_eq!(result.outcome.raw_payload, raw);
    assert_eq!(result.outcome.raw_payload["stdout"], "partial output\n");
    assert_eq!(result.outcome.raw_payload["stderr"], "boom\n");
    assert_eq!(result.outcome.raw_payload["exit"]["code"], 3);
    assert_eq!(result.outcome.lineage, route_lineage(&route));
    assert_eq!(event_types(&result), [DISPATCH_STARTED, DISPATCH_FAILED]);
    assert_eq!(
        Value::Object(result.events[1].payload.clone()),
        json!({"family": "process", "status": "failed", "failure_class": null})
    );
    assert_eq!(
        ExecutionOutcome::from_value(&result.outcome.to_value()).unwrap(),
        result.outcome
    );
}

#[test]
fn process_timeout_is_a_raw_fact_only_failure_with_partial_output() {
    let mut route = fx::process_execution_route();
    set(&mut route, &["resolved_budget", "timeout_ms"], json!(25));
    let driver = FakeDriver::answering(Execution::failed(
        "process",
        map(json!({"stdout": "tick\n", "stderr": "", "exit": null})),
        Some(Failure::new(FailureClass::Timeout, "process timed out")),
    ));
    let result = run_ok(&fx::process_execution_intent(), &route, &driver);
    assert_eq!(result.plan.timeout_ms(), 25);
    assert_eq!(*driver.seen_timeouts.lock().unwrap(), [25]);
    let failure = result.outcome.failure.clone().unwrap();
    assert_eq!(failure.failure_class, FailureClass::Timeout);
    assert_eq!(
        failure.to_value()["durable_truth_relevance"],
        "raw_fact_only"
    );
    assert_eq!(result.outcome.raw_payload["stdout"], "tick\n");
    assert_eq!(result.events.last().unwrap().event_type, DISPATCH_FAILED);
    assert_eq!(result.events[1].payload["failure_class"], "timeout");
}

#[test]
fn http_request_timeout_750_under_budget_1500_plans_750_and_completes() {
    let mut intent = fx::http_execution_intent();
    set(&mut intent, &["timeouts", "request_timeout_ms"], json!(750));
    let mut route = fx::http_execution_route();
    set(&mut route, &["resolved_budget", "timeout_ms"], json!(1500));
    set(
        &mut route,
        &["resolved_target", "url"],
        json!("http://127.0.0.1:4000/ok"),
    );
    let raw = map(json!({"status_code": 201, "headers": {}, "body": "{\"ok\":true}"}));
    let driver = FakeDriver::answering(Execution::succeeded("http", raw.clone()));
    let result = run_ok(&intent, &route, &driver);
    assert_eq!(result.plan.timeout_ms(), 750);
    assert_eq!(*driver.seen_timeouts.lock().unwrap(), [750]);
    assert_eq!(result.events[0].payload["timeout_ms"], 750);
    assert_eq!(event_types(&result), [DISPATCH_STARTED, DISPATCH_COMPLETED]);
    assert_eq!(result.outcome.raw_payload, raw);
    assert_eq!(result.outcome.metrics["timeout_ms"], 750);
}

#[test]
fn the_option_timeout_reaches_the_driver() {
    let driver = FakeDriver::ok_http();
    let options = DispatchOptions {
        timeout_ms: Some(90),
        now: Some(now()),
    };
    let (result, _) = run(
        &fx::http_execution_intent(),
        &fx::http_execution_route(),
        &options,
        &driver,
    );
    assert_eq!(result.unwrap().outcome.metrics["timeout_ms"], 90);
    assert_eq!(*driver.seen_timeouts.lock().unwrap(), [90]);
}

// ---------------------------------------------------------------------------------------------
// Planning errors (§11 item 4): typed, nothing emitted, driver untouched

#[test]
fn planning_errors_return_err_without_calling_the_driver_or_emitting() {
    let mut wrong_family = fx::http_execution_intent();
    set(&mut wrong_family, &["envelope", "family"], json!("process"));
    let mut grpc = fx::http_execution_route();
    set(&mut grpc, &["protocol"], json!("grpc"));
    let mut bad_lineage = fx::http_execution_route();
    set(&mut bad_lineage, &["route_id"], json!("route-9"));
    let mut ssh = fx::process_execution_intent();
    set(
        &mut ssh,
        &["execution_surface"],
        fx::ssh_execution_surface(),
    );
    let rows: [(&str, Value, Value, &str); 5] = [
        (
            "family mismatch",
            wrong_family,
            fx::http_execution_route(),
            r#"intent envelope family "process" does not match route family "http""#,
        ),
        (
            "unknown protocol",
            fx::http_execution_intent(),
            grpc,
            r#"unsupported lower protocol in Wave 1: "grpc""#,
        ),
        (
            "route lineage",
            fx::http_execution_intent(),
            bad_lineage,
            r#"invalid route: route_id must match lineage.route_id, got: "route-9""#,
        ),
        (
            "wrong intent type",
            fx::http_execution_intent(),
            fx::process_execution_route(),
            "invalid intent: command must be a non-empty string, got: nil",
        ),
        (
            "placement",
            ssh,
            fx::process_execution_route(),
            r#"route placement "local" does not match surface "ssh_exec""#,
        ),
    ];
    for (name, intent, route, expected) in rows {
        let driver = FakeDriver::ok_http();
        let (result, seen) = run(&intent, &route, &at_now(), &driver);
        let err = result.unwrap_err();
        assert_eq!(err.to_string(), expected, "{name}");
        assert_eq!(driver.calls(), 0, "{name}");
        assert_eq!(driver.prechecks(), 0, "{name}");
        assert!(seen.is_empty(), "{name}");
    }
}

// ---------------------------------------------------------------------------------------------
// Expired deadline (§11 item 3: divergence from upstream, an immediate timeout)

#[test]
fn an_expired_deadline_never_reaches_the_driver_and_fails_with_timeout() {
    let mut intent = fx::http_execution_intent();
    set(
        &mut intent,
        &["envelope", "deadline_at"],
        json!("2026-04-10T11:59:57Z"),
    );
    let driver = FakeDriver::ok_http();
    let (result, seen) = run(&intent, &fx::http_execution_route(), &at_now(), &driver);
    let result = result.unwrap();
    assert_eq!(driver.calls(), 0);
    assert_eq!(driver.prechecks(), 0);
    assert_eq!(seen, result.events);
    assert_eq!(event_types(&result), [DISPATCH_STARTED, DISPATCH_FAILED]);
    assert_eq!(result.events[0].payload["timeout_ms"], 0);
    assert_eq!(result.events[1].payload["failure_class"], "timeout");
    assert_eq!(result.outcome.status, "failed");
    assert_eq!(result.outcome.family, "http");
    let failure = result.outcome.failure.clone().unwrap();
    assert_eq!(failure.failure_class, FailureClass::Timeout);
    assert_eq!(
        failure.to_value()["durable_truth_relevance"],
        "raw_fact_only"
    );
    assert_eq!(failure.details["overdue_ms"], 3000);
    assert_eq!(failure.details["deadline_at"], "2026-04-10T11:59:57Z");
    assert_eq!(
        result.outcome.raw_payload["side_effect_result"],
        "blocked_before_dispatch"
    );
    assert!(result.outcome.artifacts.is_empty());
    assert_eq!(result.outcome.metrics["timeout_ms"], 0);
    assert_eq!(
        ExecutionOutcome::from_value(&result.outcome.to_value()).unwrap(),
        result.outcome
    );
}

#[test]
fn an_expired_deadline_on_a_process_route_reports_the_route_family() {
    let mut intent = fx::process_execution_intent();
    set(
        &mut intent,
        &["envelope", "deadline_at"],
        json!("2026-04-10T11:00:00+00:00"),
    );
    let driver = FakeDriver::answering(Execution::succeeded("process", Map::new()));
    let result = run_ok(&intent, &fx::process_execution_route(), &driver);
    assert_eq!(driver.calls(), 0);
    assert_eq!(result.outcome.family, "process");
    assert_eq!(result.events[1].payload["family"], "process");
}

// ---------------------------------------------------------------------------------------------
// Driver precheck (checklist 48, HTTP half)

fn valid_simulation() -> Value {
    json!({
        "scenario_ref": "lower-simulation://http/success",
        "raw_payload": {"status_code": 200, "headers": {}, "body": "simulated"},
        "no_egress_policy": NoEgressPolicy::default_lower_boundary_policy().to_value(),
    })
}

#[test]
fn a_precheck_error_ends_the_dispatch_before_simulation() {
    let mut route = fx::http_execution_route();
    set(&mut route, &["resolved_target", "method"], json!("BREW"));
    set(
        &mut route,
        &["resolved_target", "url"],
        json!("http://127.0.0.1:9/blocked"),
    );
    set(
        &mut route,
        &["resolved_target", "lower_simulation"],
        valid_simulation(),
    );
    let refusal = Execution::failed(
        "http",
        map(json!({"error": "invalid_http_method: \"BREW\""})),
        Some(Failure::new(
            FailureClass::TransportFailed,
            "invalid http method",
        )),
    );
    let driver = FakeDriver::ok_http().refusing_in_precheck(refusal.clone());
    let result = run_ok(&fx::http_execution_intent(), &route, &driver);
    assert_eq!(driver.prechecks(), 1);
    assert_eq!(driver.calls(), 0);
    assert_eq!(result.outcome.status, "failed");
    assert_eq!(result.outcome.raw_payload, refusal.raw_payload);
    assert_eq!(result.outcome.failure, refusal.failure);
    assert!(
        result.outcome.artifacts.is_empty(),
        "no simulation evidence"
    );
    assert_eq!(event_types(&result), [DISPATCH_STARTED, DISPATCH_FAILED]);
    assert_eq!(
        result.events[1].payload["failure_class"],
        "transport_failed"
    );
}

#[test]
fn a_passing_precheck_lets_the_simulation_answer() {
    let mut route = fx::http_execution_route();
    set(
        &mut route,
        &["resolved_target", "lower_simulation"],
        valid_simulation(),
    );
    let driver = FakeDriver::ok_http();
    let result = run_ok(&fx::http_execution_intent(), &route, &driver);
    assert_eq!(driver.prechecks(), 1);
    assert_eq!(driver.calls(), 0);
    assert!(result.succeeded());
    assert_eq!(result.outcome.raw_payload["body"], "simulated");
}
