//! Test lane `echo`, version 2: the same lane id and behaviour as the `echo` guest (execute
//! returns the payload as output, validate refuses operation `refuse`) with different bytes, so
//! hot-swap tests can tell the two generations apart by digest. Its metrics say
//! `{"guest_version": 2}`.

wit_bindgen::generate!({ path: "../../../wit", world: "execution-plane:lane/lane@0.1.0", generate_all });

use exports::execution_plane::lane0_1_0::lane_adapter::{
    Event, EventStream, ExecutionRequest, Guest, GuestEventStream, LaneCapabilities, Outcome,
    Rejection,
};

struct EchoV2;

/// Yields one event, then none.
struct Once {
    sent: std::cell::Cell<bool>,
}

impl GuestEventStream for Once {
    fn next(&self) -> Option<Event> {
        if self.sent.replace(true) {
            return None;
        }
        Some(Event {
            event_type: "echo.chunk".to_owned(),
            payload_json: r#"{"index":0,"guest_version":2}"#.to_owned(),
        })
    }
}

impl Guest for EchoV2 {
    type EventStream = Once;

    fn capabilities() -> LaneCapabilities {
        LaneCapabilities {
            lane_id: "echo".to_owned(),
            protocols: vec!["echo".to_owned()],
            surfaces: vec!["wasm".to_owned()],
            supports_execute: true,
            supports_stream: true,
            metadata_json: r#"{"guest":"echo-v2"}"#.to_owned(),
        }
    }

    fn validate(request: ExecutionRequest) -> Result<(), Rejection> {
        if request.operation.as_deref() == Some("refuse") {
            return Err(Rejection {
                reason: "invalid_lane_request".to_owned(),
                message: "echo v2 refuses operation \"refuse\"".to_owned(),
                details_json: r#"{"operation":"refuse"}"#.to_owned(),
            });
        }
        Ok(())
    }

    fn execute(request: ExecutionRequest) -> Outcome {
        Outcome {
            succeeded: true,
            output_json: request.payload_json,
            failure: None,
            metrics_json: r#"{"guest_version":2}"#.to_owned(),
        }
    }

    fn stream(_request: ExecutionRequest) -> Result<EventStream, Rejection> {
        Ok(EventStream::new(Once {
            sent: std::cell::Cell::new(false),
        }))
    }
}

export!(EchoV2);
