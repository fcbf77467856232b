//! Test lane `trap`: execute panics, which aborts the guest with a wasm trap; validate panics
//! too for operation `validate`.

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
            lane_id: "trap".to_owned(),
            protocols: vec!["test".to_owned()],
            surfaces: vec!["wasm".to_owned()],
            supports_execute: true,
            supports_stream: false,
            metadata_json: "{}".to_owned(),
        }
    }

    fn validate(request: ExecutionRequest) -> Result<(), Rejection> {
        if request.operation.as_deref() == Some("validate") {
            panic!("the trap guest panics in validate on purpose");
        }
        Ok(())
    }

    fn execute(request: ExecutionRequest) -> Outcome {
        let _ = request;
        panic!("the trap guest panics on purpose");
    }

    fn stream(_request: ExecutionRequest) -> Result<EventStream, Rejection> {
        Err(Rejection {
            reason: "not_supported".to_owned(),
            message: "trap is a unary lane".to_owned(),
            details_json: "{}".to_owned(),
        })
    }
}

export!(Lane);
