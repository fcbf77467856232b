//! Test lane `memory-bomb`: execute allocates (and touches) 1 MiB chunks until the memory limit
//! stops it.

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
            lane_id: "memory-bomb".to_owned(),
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
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            let mut chunk = vec![0u8; 1 << 20];
            for page in chunk.iter_mut().step_by(4096) {
                *page = 1;
            }
            hoard.push(std::hint::black_box(chunk));
        }
    }

    fn stream(_request: ExecutionRequest) -> Result<EventStream, Rejection> {
        Err(Rejection {
            reason: "not_supported".to_owned(),
            message: "memory-bomb is a unary lane".to_owned(),
            details_json: "{}".to_owned(),
        })
    }
}

export!(Lane);
