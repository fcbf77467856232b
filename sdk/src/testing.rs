//! Native unit tests for lanes: drive a [`Lane`] through the same wire conversions the component
//! exports use, and read back what it emitted and logged.
//!
//! Events and log lines are recorded only on the host target (`cargo test` on your machine); in a
//! wasm32 build they go to the real host imports and the recordings stay empty. The module exists
//! on every target so `cargo check --all-targets --target wasm32-wasip2` compiles lane tests.
//!
//! ```
//! use execution_plane_sdk::{Capabilities, Lane, Outcome, Request, events, json, testing};
//!
//! struct Ping;
//! impl Lane for Ping {
//!     fn capabilities() -> Capabilities { Capabilities::new("ping") }
//!     fn execute(_: Request) -> Outcome {
//!         events::emit("ping.sent", &json!({}));
//!         Outcome::success(json!({"pong": true}))
//!     }
//! }
//!
//! let outcome = testing::execute::<Ping>(Request::new(json!({})));
//! assert!(outcome.is_success());
//! assert_eq!(testing::take_events()[0].event_type, "ping.sent");
//! ```
//!
//! Recordings are per thread, and the test harness runs each test on its own thread, so tests
//! don't see each other's events.

use std::cell::RefCell;

use crate::glue::{self, decode};
use crate::log::Level;
use crate::{Event, Lane, Outcome, Rejection, Request};

thread_local! {
    static EVENTS: RefCell<Vec<Event>> = const { RefCell::new(Vec::new()) };
    static LOGS: RefCell<Vec<(Level, String)>> = const { RefCell::new(Vec::new()) };
}

/// Runs `validate` as the host would: the request crosses as WIT text, then back.
pub fn validate<L: Lane>(req: &Request) -> Result<(), Rejection> {
    glue::validate::<L>(decode::request_to_wire(req)).map_err(decode::rejection)
}

/// Runs `execute` as the host would (payload parsing and re-validation included).
pub fn execute<L: Lane>(req: Request) -> Outcome {
    decode::outcome(glue::execute::<L>(decode::request_to_wire(&req)))
}

/// Runs `stream` as the host would and drains it, one pull per event.
pub fn stream<L: Lane>(req: Request) -> Result<Vec<Event>, Rejection> {
    let state = glue::open_stream::<L>(decode::request_to_wire(&req)).map_err(decode::rejection)?;
    Ok(std::iter::from_fn(|| state.pull())
        .map(decode::event)
        .collect())
}

/// The events [`events::emit`](crate::events::emit) recorded on this thread, oldest first;
/// clears the recording.
pub fn take_events() -> Vec<Event> {
    EVENTS.with(|events| events.take())
}

/// The log lines recorded on this thread, oldest first; clears the recording.
pub fn take_logs() -> Vec<(Level, String)> {
    LOGS.with(|logs| logs.take())
}

/// Records an emitted event (the native stand-in for the `events` import).
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn record_event(event: Event) {
    EVENTS.with(|events| events.borrow_mut().push(event));
}

/// Records a log line (the native stand-in for the `logging` import).
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn record_log(level: Level, message: &str) {
    LOGS.with(|logs| logs.borrow_mut().push((level, message.to_owned())));
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::{Capabilities, EventSource, events, log, stream};

    struct Chatty;

    impl Lane for Chatty {
        fn capabilities() -> Capabilities {
            Capabilities::new("chatty")
        }
        fn execute(req: Request) -> Outcome {
            events::emit("chatty.start", &json!({"op": req.operation}));
            log::info("starting");
            log::warn("careful");
            Outcome::success(json!({"ok": true}))
        }
        fn stream(_: Request) -> Result<Box<dyn EventSource>, Rejection> {
            Ok(stream::from_iter(
                (0..3).map(|i| Event::new("tick", json!({"i": i}))),
            ))
        }
    }

    #[test]
    fn emitted_events_and_logs_are_recorded_then_cleared() {
        let outcome = execute::<Chatty>(Request::new(json!({})).with_operation("go"));
        assert!(outcome.is_success());
        assert_eq!(
            take_events(),
            [Event::new("chatty.start", json!({"op": "go"}))]
        );
        assert_eq!(
            take_logs(),
            [
                (Level::Info, "starting".to_owned()),
                (Level::Warn, "careful".to_owned())
            ]
        );
        assert!(take_events().is_empty() && take_logs().is_empty());
    }

    #[test]
    fn stream_drains_every_event_in_order() {
        let events = stream::<Chatty>(Request::new(json!({}))).unwrap();
        let indexes: Vec<_> = events.iter().map(|e| e.payload["i"].clone()).collect();
        assert_eq!(indexes, [json!(0), json!(1), json!(2)]);
    }

    #[test]
    fn validate_through_the_wire_refuses_a_non_object_payload() {
        let r = validate::<Chatty>(&Request::new(json!([1]))).unwrap_err();
        assert_eq!(r.reason, "invalid_lane_request");
        assert_eq!(r.details["found"], "array");
    }

    #[test]
    fn execute_through_the_wire_round_trips_failures() {
        let outcome = execute::<Chatty>(Request::new(json!("text")));
        let failure = outcome.failure().unwrap();
        assert_eq!(failure.class, crate::FailureClass::ProtocolFramingFailed);
        assert_eq!(failure.details["found"], "string");
    }
}
