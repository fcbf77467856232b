//! Test lane `minimal-v2`: the `lane-minimal` world of ABI 0.2.0 (what a toolchain that keeps
//! every import of its world, like componentize-py, produces for a lane with no grants).
//! Execute answers `{"minimal": true}`; the stream yields one `minimal.tick` event, then ends
//! with the output `{"ticks": 1}`.

use std::cell::Cell;

wit_bindgen::generate!({ path: "../../../wit", world: "lane-minimal", generate_all });

use exports::execution_plane::lane0_2_0::lane_adapter::{
    Event, EventStream, ExecutionRequest, Guest, GuestEventStream, LaneCapabilities, Outcome,
    Rejection, StreamItem,
};

struct Minimal;

struct Ticks(Cell<u32>);

impl GuestEventStream for Ticks {
    fn next(&self) -> StreamItem {
        let sent = self.0.get();
        self.0.set(sent.wrapping_add(1));
        if sent == 0 {
            StreamItem::Event(Event {
                event_type: "minimal.tick".to_owned(),
                payload_json: "{}".to_owned(),
            })
        } else {
            StreamItem::End(Outcome {
                succeeded: true,
                output_json: r#"{"ticks":1}"#.to_owned(),
                failure: None,
                metrics_json: "{}".to_owned(),
            })
        }
    }
}

impl Guest for Minimal {
    type EventStream = Ticks;

    fn capabilities() -> LaneCapabilities {
        LaneCapabilities {
            lane_id: "minimal-v2".to_owned(),
            protocols: vec!["test".to_owned()],
            surfaces: vec![],
            supports_execute: true,
            supports_stream: true,
            metadata_json: "{}".to_owned(),
        }
    }

    fn validate(_: ExecutionRequest) -> Result<(), Rejection> {
        Ok(())
    }

    fn execute(_: ExecutionRequest) -> Outcome {
        Outcome {
            succeeded: true,
            output_json: r#"{"minimal":true}"#.to_owned(),
            failure: None,
            metrics_json: "{}".to_owned(),
        }
    }

    fn stream(_: ExecutionRequest) -> Result<EventStream, Rejection> {
        Ok(EventStream::new(Ticks(Cell::new(0))))
    }
}

export!(Minimal);
