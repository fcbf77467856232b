//! Test lane `handle-bomb`: execute creates `event-stream` resources without dropping them until
//! the store's handle limit stops it.

wit_bindgen::generate!({ path: "../../../wit", world: "execution-plane:lane/lane@0.1.0", generate_all });

use exports::execution_plane::lane0_1_0::lane_adapter::{
    Event, EventStream, ExecutionRequest, Guest, GuestEventStream, LaneCapabilities, Outcome,
    Rejection,
};

struct Lane;

/// Never constructed by the unary guests; every lane must name a stream type.
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
            lane_id: "handle-bomb".to_owned(),
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

    fn execute(request: ExecutionRequest) -> Outcome {
        let _ = request;
        let mut held: Vec<EventStream> = Vec::new();
        loop {
            held.push(std::hint::black_box(EventStream::new(NoEvents)));
        }
    }

    fn stream(_request: ExecutionRequest) -> Result<EventStream, Rejection> {
        Err(Rejection {
            reason: "not_supported".to_owned(),
            message: "handle-bomb is a unary lane".to_owned(),
            details_json: "{}".to_owned(),
        })
    }
}

export!(Lane);
