//! Route-configured lower simulation (§5.1): deterministic, side-effect-free answers for HTTP and
//! process routes whose `resolved_target.lower_simulation` holds a descriptor. Selected only by
//! route configuration, never by a request option. The outcome carries the normal raw payload
//! plus a bounded evidence artifact that hashes inputs and outputs instead of keeping them.
//!
//! Fingerprints are `sha256:` over canonical JSON (sorted keys; see
//! `ep_contracts::canonical`), so they are stable across hosts but not byte-compatible with the
//! upstream Erlang-term hashes.

use ep_contracts::canonical::fingerprint;
use ep_contracts::inspect::inspect;
use ep_contracts::simulation::{LowerSimulationEvidence, NoEgressPolicy};
use ep_contracts::{Contract, Failure, FailureClass};
use serde_json::{Map, Value};

use crate::facts::Execution;
use crate::plan::{DispatchPlan, Intent};
use crate::protocol::Protocol;

/// Why a lower-simulation descriptor was refused (first failure wins, in this order).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SimulationError {
    /// The descriptor is not a map.
    #[error("invalid_lower_simulation_descriptor: {}", inspect(.0))]
    InvalidDescriptor(Value),
    /// A required key is missing or empty.
    #[error("missing_required_lower_simulation_key: {0:?}")]
    MissingRequiredKey(&'static str),
    /// `status` is neither `succeeded` nor `failed`.
    #[error("unsupported_lower_simulation_status: {}", inspect(.0))]
    UnsupportedStatus(Value),
    /// `metrics` is not a map.
    #[error("invalid_lower_simulation_metrics: {}", inspect(.0))]
    InvalidMetrics(Value),
    /// A succeeded simulation carried a failure.
    #[error("successful_lower_simulation_cannot_have_failure")]
    SuccessCannotHaveFailure,
    /// The failure attrs are invalid.
    #[error("invalid_lower_simulation_failure: {0}")]
    InvalidFailure(String),
    /// The no-egress policy is invalid.
    #[error("invalid_no_egress_policy: {0}")]
    InvalidNoEgressPolicy(String),
    /// The side-effect policy is not the one for this protocol.
    #[error("invalid_lower_simulation_side_effect_policy: got {got}, expected {expected:?}")]
    InvalidSideEffectPolicy {
        /// The rendered value given.
        got: String,
        /// The policy this protocol requires.
        expected: &'static str,
    },
}

/// The side-effect policy a protocol's simulation must declare.
pub fn side_effect_policy_for(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Process => "deny_process_spawn",
        Protocol::Http | Protocol::JsonRpc => "deny_external_egress",
    }
}

struct Descriptor {
    scenario_ref: String,
    succeeded: bool,
    raw_payload: Map<String, Value>,
    metrics: Map<String, Value>,
    failure: Option<Failure>,
    policy: NoEgressPolicy,
    side_effect_policy: &'static str,
}

fn validate(protocol: Protocol, value: &Value) -> Result<Descriptor, SimulationError> {
    let Value::Object(map) = value else {
        return Err(SimulationError::InvalidDescriptor(value.clone()));
    };
    let scenario_ref = match map.get("scenario_ref") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return Err(SimulationError::MissingRequiredKey("scenario_ref")),
    };
    let succeeded = match map.get("status") {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) if s == "succeeded" => true,
        Some(Value::String(s)) if s == "failed" => false,
        Some(other) => return Err(SimulationError::UnsupportedStatus(other.clone())),
    };
    let raw_payload = match map.get("raw_payload") {
        Some(Value::Object(m)) => m.clone(),
        _ => return Err(SimulationError::MissingRequiredKey("raw_payload")),
    };
    let metrics = match map.get("metrics") {
        None | Some(Value::Null) => {
            let mut m = Map::new();
            m.insert("duration_ms".into(), 0.into());
            m
        }
        Some(Value::Object(m)) => m.clone(),
        Some(other) => return Err(SimulationError::InvalidMetrics(other.clone())),
    };
    let failure_attrs = map.get("failure").filter(|v| !v.is_null());
    let failure = match (succeeded, failure_attrs) {
        (true, Some(_)) => return Err(SimulationError::SuccessCannotHaveFailure),
        (true, None) => None,
        (false, None) => Some(Failure::new(
            FailureClass::TransportFailed,
            "simulated failure",
        )),
        (false, Some(attrs)) => Some(
            Failure::from_value(attrs)
                .map_err(|e| SimulationError::InvalidFailure(e.to_string()))?,
        ),
    };
    let policy = match map.get("no_egress_policy") {
        None | Some(Value::Null) => {
            return Err(SimulationError::MissingRequiredKey("no_egress_policy"));
        }
        Some(v) => NoEgressPolicy::from_value(v)
            .map_err(|e| SimulationError::InvalidNoEgressPolicy(e.to_string()))?,
    };
    let expected = side_effect_policy_for(protocol);
    match map.get("side_effect_policy") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s == expected => {}
        Some(other) => {
            return Err(SimulationError::InvalidSideEffectPolicy {
                got: inspect(other),
                expected,
            });
        }
    }
    Ok(Descriptor {
        scenario_ref,
        succeeded,
        raw_payload,
        metrics,
        failure,
        policy,
        side_effect_policy: expected,
    })
}

/// The input fact a simulation fingerprints: what the lower call would have sent.
pub fn input_fact(intent: &Intent) -> Value {
    let mut map = Map::new();
    match intent {
        Intent::Http(i) => {
            map.insert("family".into(), "http".into());
            map.insert("request_shape".into(), i.request_shape.clone().into());
            map.insert("stream_mode".into(), i.stream_mode.clone().into());
            map.insert("headers".into(), Value::Object(i.headers.clone()));
            map.insert("body".into(), i.body.clone());
        }
        Intent::Process(i) => {
            map.insert("family".into(), "process".into());
            map.insert("command".into(), i.command.clone().into());
            map.insert("argv".into(), i.argv.clone().into());
            map.insert(
                "env_projection".into(),
                Value::Object(i.env_projection.clone()),
            );
            map.insert(
                "cwd".into(),
                i.cwd.clone().map_or(Value::Null, Value::String),
            );
            map.insert("stdin".into(), i.stdin.clone());
        }
        Intent::JsonRpc(i) => {
            map.insert("family".into(), "process".into());
            map.insert("request".into(), Value::Object(i.request.clone()));
        }
    }
    Value::Object(map)
}

fn as_map(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// Answers the dispatch from the route's simulation descriptor, or `None` when the route has
/// none (absent or `null`, as everywhere in the contracts; or the protocol has no simulation):
/// then the real lower call proceeds.
pub fn execute_if_configured(plan: &DispatchPlan) -> Option<Execution> {
    if !plan.protocol.supports_lower_simulation() {
        return None;
    }
    let descriptor = plan
        .route
        .resolved_target
        .get("lower_simulation")
        .filter(|d| !d.is_null())?;
    Some(match validate(plan.protocol, descriptor) {
        Ok(d) => simulated(plan, d),
        Err(reason) => blocked(plan, &reason),
    })
}

fn blocked(plan: &DispatchPlan, reason: &SimulationError) -> Execution {
    let mut raw = Map::new();
    raw.insert("error".into(), reason.to_string().into());
    raw.insert(
        "side_effect_result".into(),
        "blocked_before_dispatch".into(),
    );
    let mut execution = Execution::failed(
        plan.family.clone(),
        raw,
        Some(
            Failure::new(
                FailureClass::RouteUnresolved,
                "invalid lower simulation route",
            )
            .with_detail("lower_simulation_error", reason.to_string()),
        ),
    );
    execution.metrics.insert("duration_ms".into(), 0.into());
    execution
}

fn simulated(plan: &DispatchPlan, d: Descriptor) -> Execution {
    let mut shape: Vec<String> = d.raw_payload.keys().cloned().collect();
    shape.sort();
    let evidence = LowerSimulationEvidence {
        scenario_ref: d.scenario_ref,
        route_id: plan.route_id.clone(),
        family: plan.family.clone(),
        protocol: plan.protocol.as_str().to_owned(),
        side_effect_policy: d.side_effect_policy.to_owned(),
        side_effect_result: "not_attempted".to_owned(),
        outcome_contract_version: "execution_outcome.v1".to_owned(),
        outcome_status: if d.succeeded { "succeeded" } else { "failed" }.to_owned(),
        outcome_family: plan.family.clone(),
        input_fingerprint: as_map(fingerprint(&input_fact(&plan.intent))),
        output_fingerprint: as_map(fingerprint(&Value::Object(d.raw_payload.clone()))),
        raw_payload_shape: shape,
        lineage: plan.route.lineage.clone(),
    };
    let mut artifact = Map::new();
    artifact.insert(
        "artifact_ref".into(),
        format!(
            "artifact://execution-plane/lower-simulation/{}",
            plan.route_id
        )
        .into(),
    );
    artifact.insert("kind".into(), "lower_simulation_evidence".into());
    artifact.insert(
        "contract_version".into(),
        LowerSimulationEvidence::VERSION.into(),
    );
    artifact.insert(
        "no_egress_policy_ref".into(),
        d.policy.policy_ref.clone().into(),
    );
    artifact.insert(
        "negative_evidence_refs".into(),
        d.policy.required_negative_evidence.clone().into(),
    );
    artifact.insert("evidence".into(), evidence.to_value());

    let mut metrics = d.metrics;
    metrics.entry("duration_ms").or_insert_with(|| 0.into());
    Execution {
        family: plan.family.clone(),
        succeeded: d.succeeded,
        raw_payload: d.raw_payload,
        metrics,
        failure: d.failure,
        artifacts: vec![Value::Object(artifact)],
    }
}
