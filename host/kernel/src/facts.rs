//! Raw facts of a dispatch: what a protocol driver reports ([`Execution`]), the
//! `execution_event.v1` events and the `execution_outcome.v1` outcome built from it.

use chrono::{DateTime, SecondsFormat, Utc};
use ep_contracts::Failure;
use ep_contracts::flow::{ExecutionEventV1, ExecutionOutcome};
use ep_contracts::ids::unique_positive;
use serde_json::{Map, Value};

use crate::plan::DispatchPlan;

/// `dispatch.started`
pub const DISPATCH_STARTED: &str = "dispatch.started";
/// `dispatch.completed`
pub const DISPATCH_COMPLETED: &str = "dispatch.completed";
/// `dispatch.failed`
pub const DISPATCH_FAILED: &str = "dispatch.failed";

/// What a protocol driver reports: the lower family's raw result, verbatim.
#[derive(Debug, Clone, PartialEq)]
pub struct Execution {
    /// Family that produced the result.
    pub family: String,
    /// Whether the lower work succeeded.
    pub succeeded: bool,
    /// The raw result (status code, headers, body, exit, ...), never narrowed.
    pub raw_payload: Map<String, Value>,
    /// Metrics (`duration_ms`, ...).
    pub metrics: Map<String, Value>,
    /// The classified failure, when there is one (a process exiting non-zero is a failed
    /// execution without a failure class).
    pub failure: Option<Failure>,
    /// Artifacts (e.g. lower-simulation evidence).
    pub artifacts: Vec<Value>,
}

impl Execution {
    /// A successful execution.
    pub fn succeeded(family: impl Into<String>, raw_payload: Map<String, Value>) -> Self {
        Self {
            family: family.into(),
            succeeded: true,
            raw_payload,
            metrics: Map::new(),
            failure: None,
            artifacts: Vec::new(),
        }
    }

    /// A failed execution.
    pub fn failed(
        family: impl Into<String>,
        raw_payload: Map<String, Value>,
        failure: Option<Failure>,
    ) -> Self {
        Self {
            family: family.into(),
            succeeded: false,
            raw_payload,
            metrics: Map::new(),
            failure,
            artifacts: Vec::new(),
        }
    }
}

/// An RFC 3339 timestamp with microseconds.
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// A kernel event for `plan`: `event-<n>` id, the route lineage plus `event_id`.
pub fn dispatch_event(
    plan: &DispatchPlan,
    event_type: &str,
    payload: Map<String, Value>,
    at: DateTime<Utc>,
) -> ExecutionEventV1 {
    let event_id = format!("event-{}", unique_positive());
    ExecutionEventV1 {
        event_id: event_id.clone(),
        route_id: plan.route_id.clone(),
        event_type: event_type.to_owned(),
        timestamp: timestamp(at),
        lineage: plan.route.lineage.clone().with("event_id", event_id),
        payload,
    }
}

/// Payload of `dispatch.started`: family, protocol, timeout and placement family.
pub fn started_payload(plan: &DispatchPlan) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert("family".into(), plan.family.clone().into());
    map.insert("protocol".into(), plan.protocol.as_str().into());
    map.insert("timeout_ms".into(), plan.timeout_ms().into());
    map.insert(
        "placement_family".into(),
        plan.route.placement_family.clone().into(),
    );
    map
}

/// Type and payload of the terminal event for `execution`.
pub fn finished_event(execution: &Execution) -> (&'static str, Map<String, Value>) {
    let mut map = Map::new();
    map.insert("family".into(), execution.family.clone().into());
    if execution.succeeded {
        map.insert("status".into(), "succeeded".into());
        (DISPATCH_COMPLETED, map)
    } else {
        map.insert("status".into(), "failed".into());
        map.insert(
            "failure_class".into(),
            execution
                .failure
                .as_ref()
                .map_or(Value::Null, |f| f.failure_class.as_str().into()),
        );
        (DISPATCH_FAILED, map)
    }
}

/// The outcome: raw payload verbatim, metrics with `started_at`, `finished_at` and `timeout_ms`
/// added when absent, lineage equal to the route's.
pub fn outcome(
    plan: &DispatchPlan,
    execution: Execution,
    started_at: &str,
    finished_at: &str,
) -> ExecutionOutcome {
    let mut metrics = execution.metrics;
    metrics
        .entry("started_at")
        .or_insert_with(|| started_at.into());
    metrics
        .entry("finished_at")
        .or_insert_with(|| finished_at.into());
    metrics
        .entry("timeout_ms")
        .or_insert_with(|| plan.timeout_ms().into());
    ExecutionOutcome {
        route_id: plan.route_id.clone(),
        status: if execution.succeeded {
            "succeeded"
        } else {
            "failed"
        }
        .to_owned(),
        family: execution.family,
        raw_payload: execution.raw_payload,
        artifacts: execution.artifacts,
        metrics,
        failure: execution.failure,
        lineage: plan.route.lineage.clone(),
    }
}
