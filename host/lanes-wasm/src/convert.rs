//! Crossing the ABI: host contracts ⇄ the lane world's WIT records. Open-ended values cross as
//! JSON text; text coming back from a guest is parsed strictly (a JSON object where the WIT says
//! so), and a guest that breaks that framing gets a `protocol_framing_failed` failure, never a
//! host panic.

use std::time::Duration;

use ep_contracts::boundary::{
    AdmissionRejection, ExecutionRequest, LaneCapabilities, Map, RejectionReason,
};
use ep_contracts::{Failure, FailureClass};
use serde_json::Value;

use ep_lane_api::ExecutionContext;

use crate::bindings::types;
use crate::fault::Fault;
use crate::limits::LaneLimits;

/// How long a call may take: what is left of the deadline the node planned for the execution
/// (the kernel's effective timeout), else the lane's default; never above the lane's
/// `max_timeout` and never zero.
pub(crate) fn timeout_for(ctx: &ExecutionContext, limits: &LaneLimits) -> Duration {
    ctx.time_left(limits.default_timeout, limits.max_timeout)
        .max(Duration::from_millis(1))
}

/// Lineage entries from `metadata.lineage` (execution request first, then admission request);
/// string values as they are, numbers and booleans as their JSON text, anything else skipped.
fn lineage(request: &ExecutionRequest) -> Vec<types::LineageEntry> {
    let from = |metadata: &Map| match metadata.get("lineage") {
        Some(Value::Object(map)) => Some(map.clone()),
        _ => None,
    };
    let map = from(&request.metadata)
        .or_else(|| {
            request
                .admission_request
                .as_ref()
                .and_then(|a| from(&a.metadata))
        })
        .unwrap_or_default();
    map.into_iter()
        .filter_map(|(key, value)| {
            let value = match value {
                Value::String(s) => s,
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => return None,
            };
            Some(types::LineageEntry { key, value })
        })
        .collect()
}

/// The WIT request for `request` with the effective deadline.
pub(crate) fn wit_request(
    request: &ExecutionRequest,
    lane_id: &str,
    timeout: Duration,
) -> types::ExecutionRequest {
    types::ExecutionRequest {
        execution_ref: request.execution_ref.as_str().to_owned(),
        lane_id: request
            .lane_id
            .clone()
            .unwrap_or_else(|| lane_id.to_owned()),
        operation: request.operation.clone(),
        lineage: lineage(request),
        timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
        payload_json: Value::Object(request.payload.clone()).to_string(),
    }
}

/// Parses guest JSON text that must be an object.
pub(crate) fn json_object(what: &'static str, text: &str) -> Result<Map, Fault> {
    serde_json::from_str::<Map>(text).map_err(|e| Fault::InvalidJson {
        what,
        message: e.to_string(),
    })
}

/// What a guest's outcome means for the host.
pub(crate) struct Outcome {
    pub(crate) succeeded: bool,
    pub(crate) output: Map,
    /// The lane's own failure (for `succeeded: false`).
    pub(crate) failure: Option<Failure>,
    pub(crate) metrics: Map,
}

/// Validates the guest's outcome framing.
pub(crate) fn outcome(raw: types::Outcome) -> Result<Outcome, Fault> {
    let output = json_object("output-json", &raw.output_json)?;
    let metrics = json_object("metrics-json", &raw.metrics_json)?;
    let failure = match raw.failure {
        Some(failure) => Some(Failure {
            failure_class: failure_class(failure.class),
            reason: Some(failure.reason),
            details: json_object("failure details-json", &failure.details_json)?,
        }),
        None if !raw.succeeded => Some(
            Failure::new(
                FailureClass::SemanticRuntimeFailed,
                "the lane reported failure without a failure record",
            )
            .with_detail("cause", "unclassified"),
        ),
        None => None,
    };
    Ok(Outcome {
        succeeded: raw.succeeded,
        output,
        failure,
        metrics,
    })
}

/// The contracts' class for a WIT class (same 13, same order).
pub(crate) fn failure_class(class: types::FailureClass) -> FailureClass {
    use types::FailureClass as W;
    match class {
        W::PolicyDenied => FailureClass::PolicyDenied,
        W::RouteUnresolved => FailureClass::RouteUnresolved,
        W::PlacementUnavailable => FailureClass::PlacementUnavailable,
        W::LaunchFailed => FailureClass::LaunchFailed,
        W::TransportFailed => FailureClass::TransportFailed,
        W::ProtocolFramingFailed => FailureClass::ProtocolFramingFailed,
        W::SemanticRuntimeFailed => FailureClass::SemanticRuntimeFailed,
        W::ApprovalExpired => FailureClass::ApprovalExpired,
        W::LeaseExpired => FailureClass::LeaseExpired,
        W::AttachMismatch => FailureClass::AttachMismatch,
        W::RemoteDisconnect => FailureClass::RemoteDisconnect,
        W::Cancellation => FailureClass::Cancellation,
        W::Timeout => FailureClass::Timeout,
    }
}

/// The guest's rejection as an admission rejection (an empty reason becomes
/// `invalid_lane_request`; unparsable details are reported, not dropped silently).
pub(crate) fn rejection(raw: types::Rejection) -> AdmissionRejection {
    let reason = if raw.reason.is_empty() {
        RejectionReason::InvalidLaneRequest.as_str().to_owned()
    } else {
        raw.reason
    };
    let details = match serde_json::from_str::<Map>(&raw.details_json) {
        Ok(details) => details,
        Err(error) => {
            let mut details = Map::new();
            details.insert(
                "details_json_error".to_owned(),
                Value::String(error.to_string()),
            );
            details
        }
    };
    AdmissionRejection {
        reason,
        message: Some(raw.message),
        details,
        ..AdmissionRejection::default()
    }
}

/// The guest's capabilities plus the host's metadata about the generation.
pub(crate) fn capabilities(
    raw: types::LaneCapabilities,
    host_metadata: &Map,
) -> Result<LaneCapabilities, Fault> {
    let mut metadata = json_object("capabilities metadata-json", &raw.metadata_json)?;
    for (key, value) in host_metadata {
        metadata.insert(key.clone(), value.clone());
    }
    Ok(LaneCapabilities {
        lane_id: Some(raw.lane_id),
        protocols: raw.protocols,
        surfaces: raw.surfaces,
        supports_execute: raw.supports_execute,
        supports_stream: raw.supports_stream,
        metadata,
        ..LaneCapabilities::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(value: Value) -> Map {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn timeout_comes_from_the_planned_deadline_else_the_default_and_is_capped() {
        use ep_lane_api::{CancelSignal, Deadline};
        let limits = LaneLimits::default();
        assert_eq!(
            timeout_for(&ExecutionContext::default(), &limits),
            limits.default_timeout
        );
        let planned =
            |budget| ExecutionContext::new(CancelSignal::default(), Some(Deadline::after(budget)));
        assert_eq!(
            timeout_for(&planned(Duration::from_millis(250)), &limits),
            Duration::from_millis(250)
        );
        assert_eq!(
            timeout_for(&planned(Duration::from_secs(100_000)), &limits),
            limits.max_timeout
        );
        let passed = planned(Duration::from_millis(5));
        tokio::time::advance(Duration::from_millis(10)).await;
        assert_eq!(timeout_for(&passed, &limits), Duration::from_millis(1));
    }

    #[test]
    fn lineage_takes_scalar_entries_of_metadata_lineage() {
        let request = ExecutionRequest {
            metadata: obj(json!({"lineage": {"trace_id": "t-1", "attempt": 2, "x": [1]}})),
            ..ExecutionRequest::default()
        };
        let wit = wit_request(&request, "echo", Duration::from_millis(5));
        let entries: Vec<(String, String)> =
            wit.lineage.into_iter().map(|e| (e.key, e.value)).collect();
        assert_eq!(
            entries,
            [
                ("attempt".to_owned(), "2".to_owned()),
                ("trace_id".to_owned(), "t-1".to_owned())
            ]
        );
        assert_eq!(wit.lane_id, "echo");
        assert_eq!(wit.timeout_ms, 5);
        assert_eq!(wit.payload_json, "{}");
    }

    #[test]
    fn outcome_framing_is_strict() {
        let raw = |output: &str| types::Outcome {
            succeeded: true,
            output_json: output.to_owned(),
            failure: None,
            metrics_json: "{}".to_owned(),
        };
        assert!(outcome(raw(r#"{"a":1}"#)).is_ok());
        for bad in ["not json", "[1]", "\"s\""] {
            match outcome(raw(bad)) {
                Err(Fault::InvalidJson { what, .. }) => assert_eq!(what, "output-json"),
                _ => panic!("{bad} must be a framing fault"),
            }
        }
    }
}
