//! Test lane `echo`: execute returns the payload as output and emits one `echo.received`
//! event; stream yields three `echo.chunk` events then ends (operation `forever`: events without
//! end); validate refuses operation `refuse` with `invalid_lane_request`.

use std::cell::Cell;

wit_bindgen::generate!({ path: "../../../wit", world: "execution-plane:lane/lane@0.1.0", generate_all });

use execution_plane::lane0_1_0::events;
use exports::execution_plane::lane0_1_0::lane_adapter::{
    Event, EventStream, ExecutionRequest, Guest, GuestEventStream, LaneCapabilities, Outcome,
    Rejection,
};

struct Echo;

/// Yields three events, then none (or never ends, when `forever`).
struct Chunks {
    sent: Cell<u32>,
    forever: bool,
}

impl GuestEventStream for Chunks {
    fn next(&self) -> Option<Event> {
        let index = self.sent.get();
        if index >= 3 && !self.forever {
            return None;
        }
        self.sent.set(index.wrapping_add(1));
        Some(Event {
            event_type: "echo.chunk".to_owned(),
            payload_json: format!(r#"{{"index":{index}}}"#),
        })
    }
}

impl Guest for Echo {
    type EventStream = Chunks;

    fn capabilities() -> LaneCapabilities {
        LaneCapabilities {
            lane_id: "echo".to_owned(),
            protocols: vec!["echo".to_owned()],
            surfaces: vec!["wasm".to_owned()],
            supports_execute: true,
            supports_stream: true,
            metadata_json: r#"{"guest":"echo"}"#.to_owned(),
        }
    }

    fn validate(request: ExecutionRequest) -> Result<(), Rejection> {
        if request.operation.as_deref() == Some("refuse") {
            return Err(Rejection {
                reason: "invalid_lane_request".to_owned(),
                message: "echo refuses operation \"refuse\"".to_owned(),
                details_json: r#"{"operation":"refuse"}"#.to_owned(),
            });
        }
        Ok(())
    }

    fn execute(request: ExecutionRequest) -> Outcome {
        events::emit(&Event {
            event_type: "echo.received".to_owned(),
            payload_json: format!(r#"{{"payload_bytes":{}}}"#, request.payload_json.len()),
        });
        Outcome {
            succeeded: true,
            output_json: request.payload_json,
            failure: None,
            metrics_json: format!(r#"{{"lineage_entries":{}}}"#, request.lineage.len()),
        }
    }

    fn stream(request: ExecutionRequest) -> Result<EventStream, Rejection> {
        let forever = request.operation.as_deref() == Some("forever");
        Ok(EventStream::new(Chunks {
            sent: Cell::new(0),
            forever,
        }))
    }
}

export!(Echo);
