//! Test lane `spin`: execute loops forever (only the host's deadline or a cancel ends it);
//! operation `sleep` instead blocks in a host call (a WASI monotonic-clock wait) for an hour.

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
            lane_id: "spin".to_owned(),
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
        if request.operation.as_deref() == Some("sleep") {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
        let mut counter: u64 = 0;
        loop {
            counter =
                std::hint::black_box(counter.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }

    fn stream(_request: ExecutionRequest) -> Result<EventStream, Rejection> {
        Err(Rejection {
            reason: "not_supported".to_owned(),
            message: "spin is a unary lane".to_owned(),
            details_json: "{}".to_owned(),
        })
    }
}

export!(Lane);
