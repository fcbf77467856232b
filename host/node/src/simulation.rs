//! Lower simulation on the node's path (inventory §5.1): an `http` or `process` request whose
//! `metadata.lower_simulation` holds a scenario descriptor is answered by the kernel from that
//! scenario. The node builds the kernel's route and intent from the request (the descriptor as
//! the route's `resolved_target.lower_simulation`), plans it, and returns the kernel's execution:
//! the lane is never called, so nothing is sent, spawned or written. The bounded
//! `lower_simulation_evidence` artifact is the result's lane evidence.
//!
//! A descriptor that does not validate (in upstream's order) fails `route_unresolved` with
//! `side_effect_result: blocked_before_dispatch`, also without calling the lane.

use ep_contracts::boundary::{ExecutionRequest, ExecutionResult, Map, ResultStatus};
use ep_contracts::{Contract, Failure, FailureClass};
use ep_kernel::lane_support::{RouteSpec, build_envelope, build_lineage, build_route};
use ep_kernel::{DispatchOptions, Execution, build_dispatch, simulation};
use serde_json::{Value, json};

/// The metadata key a request names its scenario under.
pub const LOWER_SIMULATION_KEY: &str = "lower_simulation";

/// The scenario descriptor a request carries, when it asks for a simulation.
pub(crate) fn descriptor(request: &ExecutionRequest) -> Option<&Value> {
    fn from(metadata: &Map) -> Option<&Value> {
        metadata
            .get(LOWER_SIMULATION_KEY)
            .filter(|value| !value.is_null())
    }
    from(&request.metadata).or_else(|| {
        request
            .admission_request
            .as_ref()
            .and_then(|admission| from(&admission.metadata))
    })
}

fn object(value: Option<&Value>) -> Value {
    match value {
        Some(Value::Object(map)) => Value::Object(map.clone()),
        _ => json!({}),
    }
}

/// The kernel's family (also its protocol) and intent facts for the request's lane.
fn intent_facts(lane_id: &str, payload: &Map) -> Option<(&'static str, Value)> {
    match lane_id {
        "http" => Some((
            "http",
            json!({
                "request_shape": "request_response",
                "stream_mode": "unary",
                "headers": object(payload.get("headers")),
                "body": payload.get("body").cloned().unwrap_or(Value::Null),
                "egress_surface": {"surface_kind": "http"},
            }),
        )),
        "process" => Some((
            "process",
            json!({
                "command": payload.get("command").cloned().unwrap_or(Value::Null),
                "argv": payload.get("argv").cloned().unwrap_or_else(|| json!([])),
                "env_projection": object(payload.get("env")),
                "cwd": payload.get("cwd").cloned().unwrap_or(Value::Null),
                "stdin": payload.get("stdin").cloned().unwrap_or(Value::Null),
                "stdio_mode": if payload.get("pty").and_then(Value::as_bool) == Some(true) { "pty" } else { "pipe" },
                "execution_surface": {"surface_kind": "local_subprocess"},
            }),
        )),
        _ => None,
    }
}

fn failed(request: &ExecutionRequest, failure: &Failure, output: Map) -> ExecutionResult {
    ExecutionResult {
        status: ResultStatus::Failed,
        error: Some(failure.to_value()),
        output,
        provenance: request.provenance.clone(),
        ..ExecutionResult::succeeded(request.execution_ref.clone(), Map::new())
    }
}

/// Why the node could not plan the simulated dispatch.
fn unplanned(request: &ExecutionRequest, reason: impl std::fmt::Display) -> ExecutionResult {
    let failure = Failure::new(
        FailureClass::RouteUnresolved,
        "invalid lower simulation route",
    )
    .with_detail("lower_simulation_error", reason.to_string());
    let mut output = Map::new();
    output.insert(
        "side_effect_result".into(),
        "blocked_before_dispatch".into(),
    );
    failed(request, &failure, output)
}

/// The kernel's answer to a request that carries `descriptor`; the lane is not called.
pub(crate) fn simulate(request: &ExecutionRequest, descriptor: &Value) -> ExecutionResult {
    let lane_id = request.lane_id.as_deref().unwrap_or_default();
    let Some((family, facts)) = intent_facts(lane_id, &request.payload) else {
        return unplanned(
            request,
            format!("lane {lane_id:?} has no lower simulation (only http and process do)"),
        );
    };
    let (capability, transport) = match family {
        "http" => ("http.request", "http"),
        _ => ("process.run", "process"),
    };
    let mut lineage_attrs = Map::new();
    lineage_attrs.insert(
        "idempotency_key".into(),
        request.execution_ref.as_str().into(),
    );
    let planned = build_lineage(family, &lineage_attrs)
        .and_then(|lineage| {
            let envelope = build_envelope(family, family, capability, &lineage, &Map::new())?;
            let mut target = Map::new();
            target.insert("target_id".into(), "lower-simulation".into());
            for key in ["url", "method"] {
                if let Some(value) = request.payload.get(key) {
                    target.insert(key.into(), value.clone());
                }
            }
            target.insert(LOWER_SIMULATION_KEY.into(), descriptor.clone());
            let spec = RouteSpec {
                family: family.to_owned(),
                protocol: family.to_owned(),
                transport_family: transport.to_owned(),
                placement_family: "local".to_owned(),
                target,
                timeout_ms: None,
            };
            let route = build_route(&spec, &lineage, &Map::new())?;
            Ok((envelope, route))
        })
        .map_err(|error| error.to_string())
        .and_then(|(envelope, route)| {
            let mut intent = facts;
            intent["envelope"] = envelope.to_value();
            build_dispatch(&intent, &route.to_value(), &DispatchOptions::default())
                .map_err(|error| error.to_string())
        });
    let plan = match planned {
        Ok(plan) => plan,
        Err(reason) => return unplanned(request, reason),
    };
    match simulation::execute_if_configured(&plan) {
        Some(execution) => result_of(request, execution),
        None => unplanned(request, "the route holds no lower simulation"),
    }
}

/// The kernel's execution as the node's result: the scenario's raw payload as output, its
/// failure as the error, its artifact as evidence.
fn result_of(request: &ExecutionRequest, execution: Execution) -> ExecutionResult {
    let Execution {
        succeeded,
        mut raw_payload,
        metrics,
        failure,
        artifacts,
        ..
    } = execution;
    raw_payload.insert("metrics".into(), Value::Object(metrics));
    let mut result = if succeeded {
        ExecutionResult {
            output: raw_payload,
            provenance: request.provenance.clone(),
            ..ExecutionResult::succeeded(request.execution_ref.clone(), Map::new())
        }
    } else {
        let failure = failure
            .unwrap_or_else(|| Failure::new(FailureClass::TransportFailed, "simulated failure"));
        failed(request, &failure, raw_payload)
    };
    result.evidence = artifacts;
    result
}
