//! Test lane `stream-fetch`: on its stream's first pull it sends `GET http://192.0.2.1/` (a
//! documentation address no test grants), then yields one `fetch.done` event saying whether the
//! request was refused, then ends. `execute` is not supported.

use std::cell::Cell;

wit_bindgen::generate!({ path: "../../../wit", world: "execution-plane:lane/lane@0.1.0", generate_all });

use exports::execution_plane::lane0_1_0::lane_adapter::{
    Event, EventStream, ExecutionRequest, Guest, GuestEventStream, LaneCapabilities, Outcome,
    Rejection,
};
use wasi::http::outgoing_handler;
use wasi::http::types::{Fields, OutgoingRequest, Scheme};

struct StreamFetch;

/// Sends the request on the first pull, reports it, then ends.
struct Fetch {
    sent: Cell<bool>,
}

/// Whether the host refused `GET http://192.0.2.1/`.
fn refused() -> bool {
    let request = OutgoingRequest::new(Fields::new());
    let _ = request.set_scheme(Some(&Scheme::Http));
    let _ = request.set_authority(Some("192.0.2.1"));
    let _ = request.set_path_with_query(Some("/"));
    match outgoing_handler::handle(request, None) {
        Err(_) => true,
        Ok(response) => {
            response.subscribe().block();
            !matches!(response.get(), Some(Ok(Ok(_))))
        }
    }
}

impl GuestEventStream for Fetch {
    fn next(&self) -> Option<Event> {
        if self.sent.replace(true) {
            return None;
        }
        Some(Event {
            event_type: "fetch.done".to_owned(),
            payload_json: format!(r#"{{"refused":{}}}"#, refused()),
        })
    }
}

impl Guest for StreamFetch {
    type EventStream = Fetch;

    fn capabilities() -> LaneCapabilities {
        LaneCapabilities {
            lane_id: "stream-fetch".to_owned(),
            protocols: vec!["http".to_owned()],
            surfaces: vec!["wasm".to_owned()],
            supports_execute: false,
            supports_stream: true,
            metadata_json: r#"{"guest":"stream-fetch"}"#.to_owned(),
        }
    }

    fn validate(_request: ExecutionRequest) -> Result<(), Rejection> {
        Ok(())
    }

    fn execute(_request: ExecutionRequest) -> Outcome {
        Outcome {
            succeeded: false,
            output_json: "{}".to_owned(),
            failure: None,
            metrics_json: "{}".to_owned(),
        }
    }

    fn stream(_request: ExecutionRequest) -> Result<EventStream, Rejection> {
        Ok(EventStream::new(Fetch {
            sent: Cell::new(false),
        }))
    }
}

export!(StreamFetch);
