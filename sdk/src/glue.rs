//! The bridge between the generated WIT bindings and the [`Lane`] trait: conversions both ways
//! and the four export bodies [`export_lane!`](crate::export_lane) calls.

use std::cell::RefCell;

use crate::bindings::execution_plane::lane0_2_0::types as wire;
use crate::bindings::exports::execution_plane::lane0_2_0::lane_adapter::{
    EventStream, GuestEventStream, StreamItem,
};
use crate::json::{into_object, to_text};
use crate::request::parse_payload;
use crate::{Capabilities, Event, EventSource, FailureClass, Lane, Outcome, Rejection, Request};

/// The `capabilities` export.
pub fn capabilities<L: Lane>() -> wire::LaneCapabilities {
    capabilities_to_wire(L::capabilities())
}

/// The `validate` export: parse the payload, then the lane's own checks.
pub fn validate<L: Lane>(request: wire::ExecutionRequest) -> Result<(), wire::Rejection> {
    admit::<L>(request).map(drop).map_err(rejection_to_wire)
}

/// The `execute` export: a request that fails parsing or validation becomes a failed outcome.
pub fn execute<L: Lane>(request: wire::ExecutionRequest) -> wire::Outcome {
    let outcome = match admit::<L>(request) {
        Ok(request) => L::execute(request),
        Err(rejection) => Outcome::from(rejection),
    };
    outcome_to_wire(outcome)
}

/// The `stream` export: the lane's source wrapped in the `event-stream` resource.
pub fn stream<L: Lane>(request: wire::ExecutionRequest) -> Result<EventStream, wire::Rejection> {
    open_stream::<L>(request).map(EventStream::new)
}

/// The part of `stream` that does not touch the component model, so it runs natively in tests.
pub(crate) fn open_stream<L: Lane>(
    request: wire::ExecutionRequest,
) -> Result<StreamState, wire::Rejection> {
    admit::<L>(request)
        .and_then(L::stream)
        .map(|source| StreamState(RefCell::new(source)))
        .map_err(rejection_to_wire)
}

/// What the `event-stream` resource holds: the lane's source (the WIT method takes `&self`, and
/// the host never calls `next` re-entrantly, so a `RefCell` is enough).
pub struct StreamState(RefCell<Box<dyn EventSource>>);

impl StreamState {
    /// The next item on the wire: an event, or the end with the source's outcome.
    pub(crate) fn pull(&self) -> StreamItem {
        // A failed borrow would mean a re-entrant call; ending the stream beats panicking.
        let Ok(mut source) = self.0.try_borrow_mut() else {
            return StreamItem::End(outcome_to_wire(Outcome::failed(
                FailureClass::SemanticRuntimeFailed,
                "stream_reentered",
                serde_json::json!({}),
            )));
        };
        match source.next() {
            Some(event) => StreamItem::Event(event_to_wire(event)),
            None => StreamItem::End(outcome_to_wire(source.outcome())),
        }
    }
}

impl GuestEventStream for StreamState {
    fn next(&self) -> StreamItem {
        self.pull()
    }
}

/// Turns the wire request into a [`Request`] that passed the lane's `validate`.
fn admit<L: Lane>(request: wire::ExecutionRequest) -> Result<Request, Rejection> {
    let request = request_from_wire(request)?;
    L::validate(&request)?;
    Ok(request)
}

/// The wire request as a [`Request`]; a payload that is not a JSON object is refused.
pub(crate) fn request_from_wire(request: wire::ExecutionRequest) -> Result<Request, Rejection> {
    let payload = parse_payload(&request.payload_json)?;
    Ok(Request {
        execution_ref: request.execution_ref,
        lane_id: request.lane_id,
        operation: request.operation,
        lineage: request
            .lineage
            .into_iter()
            .map(|entry| (entry.key, entry.value))
            .collect(),
        timeout_ms: request.timeout_ms,
        payload,
    })
}

/// [`Capabilities`] on the wire.
pub(crate) fn capabilities_to_wire(capabilities: Capabilities) -> wire::LaneCapabilities {
    wire::LaneCapabilities {
        lane_id: capabilities.lane_id().to_owned(),
        protocols: capabilities.protocols().to_vec(),
        surfaces: capabilities.surfaces().to_vec(),
        supports_execute: capabilities.supports_execute(),
        supports_stream: capabilities.supports_stream(),
        metadata_json: to_text(capabilities.metadata_map()),
    }
}

/// A [`Rejection`] on the wire.
pub(crate) fn rejection_to_wire(rejection: Rejection) -> wire::Rejection {
    wire::Rejection {
        reason: rejection.reason,
        message: rejection.message,
        details_json: to_text(&rejection.details),
    }
}

/// An [`Outcome`] on the wire.
pub(crate) fn outcome_to_wire(outcome: Outcome) -> wire::Outcome {
    wire::Outcome {
        succeeded: outcome.is_success(),
        output_json: to_text(outcome.output()),
        failure: outcome.failure().map(|failure| wire::Failure {
            class: class_to_wire(failure.class),
            reason: failure.reason.clone(),
            details_json: to_text(&failure.details),
        }),
        metrics_json: to_text(outcome.metrics()),
    }
}

/// An [`Event`] on the wire.
pub(crate) fn event_to_wire(event: Event) -> wire::Event {
    wire::Event {
        event_type: event.event_type,
        payload_json: to_text(&into_object(event.payload)),
    }
}

/// A [`FailureClass`] on the wire.
fn class_to_wire(class: FailureClass) -> wire::FailureClass {
    match class {
        FailureClass::PolicyDenied => wire::FailureClass::PolicyDenied,
        FailureClass::RouteUnresolved => wire::FailureClass::RouteUnresolved,
        FailureClass::PlacementUnavailable => wire::FailureClass::PlacementUnavailable,
        FailureClass::LaunchFailed => wire::FailureClass::LaunchFailed,
        FailureClass::TransportFailed => wire::FailureClass::TransportFailed,
        FailureClass::ProtocolFramingFailed => wire::FailureClass::ProtocolFramingFailed,
        FailureClass::SemanticRuntimeFailed => wire::FailureClass::SemanticRuntimeFailed,
        FailureClass::ApprovalExpired => wire::FailureClass::ApprovalExpired,
        FailureClass::LeaseExpired => wire::FailureClass::LeaseExpired,
        FailureClass::AttachMismatch => wire::FailureClass::AttachMismatch,
        FailureClass::RemoteDisconnect => wire::FailureClass::RemoteDisconnect,
        FailureClass::Cancellation => wire::FailureClass::Cancellation,
        FailureClass::Timeout => wire::FailureClass::Timeout,
    }
}

/// Decoding the wire types back into the SDK's, for the test harness that drives a lane
/// the way the host does.
pub(crate) mod decode {
    use super::wire;
    use crate::json::from_text;
    use crate::{Event, Failure, FailureClass, Outcome, Rejection, Request};

    /// A [`Request`] on the wire, as the host would send it.
    pub(crate) fn request_to_wire(request: &Request) -> wire::ExecutionRequest {
        wire::ExecutionRequest {
            execution_ref: request.execution_ref.clone(),
            lane_id: request.lane_id.clone(),
            operation: request.operation.clone(),
            lineage: request
                .lineage
                .iter()
                .map(|(key, value)| wire::LineageEntry {
                    key: key.clone(),
                    value: value.clone(),
                })
                .collect(),
            timeout_ms: request.timeout_ms,
            payload_json: request.payload.to_string(),
        }
    }

    /// A wire rejection as a [`Rejection`].
    pub(crate) fn rejection(rejection: wire::Rejection) -> Rejection {
        Rejection {
            reason: rejection.reason,
            message: rejection.message,
            details: from_text(&rejection.details_json),
        }
    }

    /// A wire outcome as an [`Outcome`].
    pub(crate) fn outcome(outcome: wire::Outcome) -> Outcome {
        let failure = outcome.failure.map(|failure| Failure {
            class: class(failure.class),
            reason: failure.reason,
            details: from_text(&failure.details_json),
        });
        Outcome::from_parts(
            from_text(&outcome.output_json),
            failure,
            from_text(&outcome.metrics_json),
        )
    }

    /// A wire event as an [`Event`].
    pub(crate) fn event(event: wire::Event) -> Event {
        Event::new(
            event.event_type,
            serde_json::Value::Object(from_text(&event.payload_json)),
        )
    }

    /// A wire failure class as a [`FailureClass`]; exhaustive, so a class added to the WIT
    /// fails to compile here until the SDK knows it.
    pub(super) fn class(class: wire::FailureClass) -> FailureClass {
        use wire::FailureClass as W;
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
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::stream::from_iter;

    struct Strict;

    impl Lane for Strict {
        fn capabilities() -> Capabilities {
            Capabilities::new("strict")
                .protocol("test")
                .with_stream()
                .metadata("k", 1)
        }
        fn validate(req: &Request) -> Result<(), Rejection> {
            req.payload_str("message")?;
            Ok(())
        }
        fn execute(req: Request) -> Outcome {
            Outcome::success(json!({"got": req.payload, "lineage": req.lineage}))
                .with_metric("n", 1)
        }
        fn stream(req: Request) -> Result<Box<dyn EventSource>, Rejection> {
            let message = req.payload_str("message")?.to_owned();
            Ok(from_iter(vec![
                Event::new("said", json!({"m": message})),
                Event::new("done", Value::Null),
            ]))
        }
    }

    struct Unary;

    impl Lane for Unary {
        fn capabilities() -> Capabilities {
            Capabilities::new("unary")
        }
        fn execute(_: Request) -> Outcome {
            Outcome::failed(FailureClass::Timeout, "slow", json!({"after_ms": 5}))
        }
    }

    fn wire_request(payload_json: &str) -> wire::ExecutionRequest {
        wire::ExecutionRequest {
            execution_ref: "exec-1".into(),
            lane_id: "strict".into(),
            operation: Some("say".into()),
            lineage: vec![
                wire::LineageEntry {
                    key: "trace_id".into(),
                    value: "t-old".into(),
                },
                wire::LineageEntry {
                    key: "trace_id".into(),
                    value: "t-1".into(),
                },
            ],
            timeout_ms: 1500,
            payload_json: payload_json.into(),
        }
    }

    fn parse(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn wire_request_maps_every_field_and_last_lineage_value_wins() {
        let r = request_from_wire(wire_request(r#"{"message": "hi"}"#)).unwrap();
        assert_eq!(r.execution_ref, "exec-1");
        assert_eq!(r.lane_id, "strict");
        assert_eq!(r.operation.as_deref(), Some("say"));
        assert_eq!(r.lineage.get("trace_id").map(String::as_str), Some("t-1"));
        assert_eq!(r.timeout_ms, 1500);
        assert_eq!(r.payload, json!({"message": "hi"}));
    }

    #[test]
    fn capabilities_cross_with_metadata_as_json_text() {
        let c = capabilities::<Strict>();
        assert_eq!(c.lane_id, "strict");
        assert_eq!(c.protocols, ["test"]);
        assert!(c.supports_execute && c.supports_stream);
        assert_eq!(parse(&c.metadata_json), json!({"k": 1}));
    }

    #[test]
    fn validate_accepts_a_good_payload() {
        assert!(validate::<Strict>(wire_request(r#"{"message": "hi"}"#)).is_ok());
    }

    #[test]
    fn validate_refuses_malformed_payload_text_as_invalid_lane_request() {
        let r = validate::<Strict>(wire_request("{not json")).unwrap_err();
        assert_eq!(r.reason, "invalid_lane_request");
        assert!(
            r.message.starts_with("the payload is not valid JSON"),
            "{}",
            r.message
        );
        assert!(parse(&r.details_json)["error"].is_string());
    }

    #[test]
    fn validate_passes_on_the_lanes_own_rejection() {
        let r = validate::<Strict>(wire_request(r#"{"message": 3}"#)).unwrap_err();
        assert_eq!(r.reason, "invalid_lane_request");
        assert_eq!(
            parse(&r.details_json),
            json!({"field": "message", "expected": "string", "found": "number"})
        );
    }

    #[test]
    fn execute_success_crosses_output_and_metrics_as_json_text() {
        let o = execute::<Strict>(wire_request(r#"{"message": "hi"}"#));
        assert!(o.succeeded);
        assert!(o.failure.is_none());
        assert_eq!(
            parse(&o.output_json),
            json!({"got": {"message": "hi"}, "lineage": {"trace_id": "t-1"}})
        );
        assert_eq!(parse(&o.metrics_json), json!({"n": 1}));
    }

    #[test]
    fn execute_revalidates_and_fails_as_protocol_framing_without_calling_the_lane() {
        let o = execute::<Strict>(wire_request(r#"{}"#));
        assert!(!o.succeeded);
        let f = o.failure.unwrap();
        assert_eq!(f.class, wire::FailureClass::ProtocolFramingFailed);
        assert_eq!(f.reason, "invalid_lane_request");
        assert_eq!(parse(&f.details_json)["field"], "message");
        assert_eq!(parse(&o.output_json), json!({}));
    }

    #[test]
    fn execute_with_malformed_payload_text_fails_instead_of_panicking() {
        let o = execute::<Unary>(wire_request("[1,"));
        assert_eq!(
            o.failure.unwrap().class,
            wire::FailureClass::ProtocolFramingFailed
        );
    }

    #[test]
    fn execute_failure_crosses_its_class_and_details() {
        let o = execute::<Unary>(wire_request("{}"));
        assert!(!o.succeeded);
        let f = o.failure.unwrap();
        assert_eq!(f.class, wire::FailureClass::Timeout);
        assert_eq!(f.reason, "slow");
        assert_eq!(parse(&f.details_json), json!({"after_ms": 5}));
    }

    #[test]
    fn every_failure_class_maps_to_the_wire_enum_in_frozen_order_and_back() {
        for (index, class) in FailureClass::ALL.into_iter().enumerate() {
            assert_eq!(class_to_wire(class) as usize, index);
            assert_eq!(decode::class(class_to_wire(class)), class);
        }
    }

    #[test]
    fn stream_pulls_the_lanes_events_then_ends() {
        let state = open_stream::<Strict>(wire_request(r#"{"message": "hi"}"#))
            .ok()
            .unwrap();
        let event = |item: StreamItem| match item {
            StreamItem::Event(event) => event,
            StreamItem::End(_) => panic!("ended early"),
        };
        let first = event(state.pull());
        assert_eq!(first.event_type, "said");
        assert_eq!(parse(&first.payload_json), json!({"m": "hi"}));
        let second = event(state.pull());
        assert_eq!(
            (second.event_type.as_str(), second.payload_json.as_str()),
            ("done", "{}")
        );
        let StreamItem::End(outcome) = state.pull() else {
            panic!("expected the end")
        };
        assert!(outcome.succeeded);
        assert_eq!(parse(&outcome.output_json), json!({}));
    }

    #[test]
    fn stream_on_a_unary_lane_is_not_supported() {
        let Err(r) = open_stream::<Unary>(wire_request("{}")) else {
            panic!("expected refusal")
        };
        assert_eq!(r.reason, "not_supported");
    }

    #[test]
    fn stream_revalidates_the_request() {
        let Err(r) = open_stream::<Strict>(wire_request("{}")) else {
            panic!("expected refusal")
        };
        assert_eq!(r.reason, "invalid_lane_request");
    }
}
