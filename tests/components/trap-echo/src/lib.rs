//! Test lane `echo` that traps: it probes and validates like the `echo` guest but panics in
//! execute (a wasm trap), so a hot swap to it is rolled back automatically.

wit_bindgen::generate!({ path: "../../../wit", world: "execution-plane:lane/lane@0.1.0", generate_all });

use exports::execution_plane::lane0_1_0::lane_adapter::{
    Event, EventStream, ExecutionRequest, Guest, GuestEventStream, LaneCapabilities, Outcome,
    Rejection,
};

struct TrapEcho;

/// Never constructed: the stream call refuses.
struct NoEvents;

impl GuestEventStream for NoEvents {
    fn next(&self) -> Option<Event> {
        None
    }
}

impl Guest for TrapEcho {
    type EventStream = NoEvents;

    fn capabilities() -> LaneCapabilities {
        LaneCapabilities {
            lane_id: "echo".to_owned(),
            protocols: vec!["echo".to_owned()],
            surfaces: vec!["wasm".to_owned()],
            supports_execute: true,
            supports_stream: false,
            metadata_json: r#"{"guest":"trap-echo"}"#.to_owned(),
        }
    }

    fn validate(_request: ExecutionRequest) -> Result<(), Rejection> {
        Ok(())
    }

    fn execute(request: ExecutionRequest) -> Outcome {
        let _ = request;
        panic!("the trap-echo guest panics on purpose");
    }

    fn stream(_request: ExecutionRequest) -> Result<EventStream, Rejection> {
        Err(Rejection {
            reason: "not_supported".to_owned(),
            message: "trap-echo does not stream".to_owned(),
            details_json: "{}".to_owned(),
        })
    }
}

export!(TrapEcho);
