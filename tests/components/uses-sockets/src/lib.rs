//! Test lane `uses-sockets`: imports `wasi:sockets` (it opens a TCP connection); never granted: refused at load.

wit_bindgen::generate!({ path: "../../../wit", world: "execution-plane:lane/lane@0.1.0", generate_all });

use exports::execution_plane::lane0_1_0::lane_adapter::{
    Event, EventStream, ExecutionRequest, Guest, GuestEventStream, LaneCapabilities, Outcome,
    Rejection,
};

struct Lane;

/// Never constructed: every lane must name a stream type.
struct NoEvents;

impl GuestEventStream for NoEvents {
    fn next(&self) -> Option<Event> {
        None
    }
}

impl Guest for Lane {
    type EventStream = NoEvents;

    fn capabilities() -> LaneCapabilities {
        LaneCapabilities {
            lane_id: "uses-sockets".to_owned(),
            protocols: vec!["test".to_owned()],
            surfaces: vec!["wasm".to_owned()],
            supports_execute: true,
            supports_stream: false,
            metadata_json: "{}".to_owned(),
        }
    }

    fn validate(_request: ExecutionRequest) -> Result<(), Rejection> {
        Ok(())
    }

    fn execute(_request: ExecutionRequest) -> Outcome {
        let reached = std::net::TcpStream::connect("127.0.0.1:9").is_ok();
        Outcome {
            succeeded: true,
            output_json: format!("{{\"reached\":{reached}}}"),
            failure: None,
            metrics_json: "{}".to_owned(),
        }
    }

    fn stream(_request: ExecutionRequest) -> Result<EventStream, Rejection> {
        Err(Rejection {
            reason: "not_supported".to_owned(),
            message: "a unary lane".to_owned(),
            details_json: "{}".to_owned(),
        })
    }
}

export!(Lane);
