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
//!
//! Outbound HTTP works the same way: [`mock_http`] installs a handler that answers
//! [`http::send`](crate::http::send) on this thread (the body cap of the request's
//! [`Options`](crate::http::Options) is applied to its responses), and [`take_http_requests`]
//! returns what was sent. Without a handler, `send` fails with a `Transport` error that says so.
//!
//! ```
//! use execution_plane_sdk::http::{self, Method, Options, Request, Response, Url};
//! use execution_plane_sdk::testing;
//!
//! testing::mock_http(|request| {
//!     Ok(Response { status: 201, headers: vec![], body: request.body_bytes().to_vec() })
//! });
//! let url = Url::parse("http://example.test/echo").unwrap();
//! let response = http::send(&Request::new(Method::Post, url).body("hi"), &Options::new()).unwrap();
//! assert_eq!((response.status, response.body.as_slice()), (201, &b"hi"[..]));
//! assert_eq!(testing::take_http_requests().len(), 1);
//! ```

use std::cell::RefCell;

use crate::glue::{self, decode};
use crate::http::{self, HttpError};
use crate::log::Level;
use crate::{Event, Lane, Outcome, Rejection, Request};

/// What answers [`http::send`](crate::http::send) in native tests.
type HttpHandler = Box<dyn FnMut(&http::Request) -> Result<http::Response, HttpError>>;

thread_local! {
    static EVENTS: RefCell<Vec<Event>> = const { RefCell::new(Vec::new()) };
    static LOGS: RefCell<Vec<(Level, String)>> = const { RefCell::new(Vec::new()) };
    static HTTP_HANDLER: RefCell<Option<HttpHandler>> = const { RefCell::new(None) };
    static HTTP_SENT: RefCell<Vec<(http::Request, http::Options)>> =
        const { RefCell::new(Vec::new()) };
    static INPUTS: RefCell<std::collections::VecDeque<crate::input::Input>> =
        const { RefCell::new(std::collections::VecDeque::new()) };
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
    stream_to_end::<L>(req).map(|(events, _)| events)
}

/// Runs `stream` as the host would and drains it: its events, and the outcome it ended with.
pub fn stream_to_end<L: Lane>(req: Request) -> Result<(Vec<Event>, Outcome), Rejection> {
    use crate::bindings::exports::execution_plane::lane0_2_0::lane_adapter::StreamItem;
    let state = glue::open_stream::<L>(decode::request_to_wire(&req)).map_err(decode::rejection)?;
    let mut events = Vec::new();
    loop {
        match state.pull() {
            StreamItem::Event(event) => events.push(decode::event(event)),
            StreamItem::End(outcome) => return Ok((events, decode::outcome(outcome))),
        }
    }
}

/// Queues `input` as the caller's next input to the stream under test on this thread
/// ([`input::take`](crate::input::take) returns it). Has no effect in a wasm32 build.
pub fn push_input(input: crate::input::Input) {
    INPUTS.with(|inputs| inputs.borrow_mut().push_back(input));
}

/// The native stand-in for the `input` import.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn take_input() -> Option<crate::input::Input> {
    INPUTS.with(|inputs| inputs.borrow_mut().pop_front())
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

/// Answers every [`http::send`](crate::http::send) on this thread with `handler` (replacing
/// any earlier one), in place of the `wasi:http` import. The request's body cap applies to the
/// responses it returns. Has no effect in a wasm32 build.
pub fn mock_http<F>(handler: F)
where
    F: FnMut(&http::Request) -> Result<http::Response, HttpError> + 'static,
{
    HTTP_HANDLER.with(|slot| *slot.borrow_mut() = Some(Box::new(handler)));
}

/// The requests [`http::send`](crate::http::send) sent on this thread, with their options,
/// oldest first; clears the recording.
pub fn take_http_requests() -> Vec<(http::Request, http::Options)> {
    HTTP_SENT.with(|sent| sent.take())
}

/// The native stand-in for the `wasi:http` import: records the request and asks the handler.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn answer_http(
    request: &http::Request,
    options: &http::Options,
) -> Result<http::Response, HttpError> {
    HTTP_SENT.with(|sent| sent.borrow_mut().push((request.clone(), options.clone())));
    // Taken out while it runs, so a handler that sends again gets a clear error, not a panic.
    let Some(mut handler) = HTTP_HANDLER.with(|slot| slot.borrow_mut().take()) else {
        return Err(HttpError::Transport(
            "no HTTP handler on this thread; install one with testing::mock_http".to_owned(),
        ));
    };
    let answer = handler(request);
    HTTP_HANDLER.with(|slot| {
        let mut slot = slot.borrow_mut();
        if slot.is_none() {
            *slot = Some(handler);
        }
    });
    let response = answer?;
    let limit = options.max_response_bytes;
    if u64::try_from(response.body.len()).unwrap_or(u64::MAX) > limit {
        return Err(HttpError::BodyTooLarge { limit: Some(limit) });
    }
    Ok(response)
}

/// The native stand-in for [`http::open`](crate::http::open): the [`mock_http`] handler's
/// response, its body as one chunk (no size cap: a streamed body has none).
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn answer_http_stream(
    request: &http::Request,
    options: &http::Options,
) -> Result<http::StreamingResponse, HttpError> {
    let unlimited = http::Options {
        max_response_bytes: u64::MAX,
        ..options.clone()
    };
    let response = answer_http(request, &unlimited)?;
    Ok(http::StreamingResponse {
        status: response.status,
        headers: response.headers,
        body: http::BodyStream::from_chunks(vec![Ok(response.body)]),
    })
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

    fn url(text: &str) -> http::Url {
        http::Url::parse(text).unwrap()
    }

    #[test]
    fn mocked_http_answers_and_records_each_request_with_its_options() {
        mock_http(|request| {
            Ok(http::Response {
                status: 200,
                headers: vec![("x-path".into(), request.url().path_with_query().into())],
                body: b"ok".to_vec(),
            })
        });
        let request = http::Request::new(http::Method::Get, url("http://h/a?b=1"));
        let options = http::Options::new().with_max_response_bytes(2);
        let response = http::send(&request, &options).unwrap();
        assert_eq!(response.header("x-path"), Some("/a?b=1"));
        assert_eq!(take_http_requests(), [(request, options)]);
        assert!(take_http_requests().is_empty());
    }

    #[test]
    fn mocked_http_applies_the_body_cap() {
        mock_http(|_| {
            Ok(http::Response {
                status: 200,
                headers: Vec::new(),
                body: vec![0; 3],
            })
        });
        let request = http::Request::new(http::Method::Get, url("http://h/"));
        assert_eq!(
            http::send(&request, &http::Options::new().with_max_response_bytes(2)),
            Err(HttpError::BodyTooLarge { limit: Some(2) })
        );
    }

    #[test]
    fn http_without_a_handler_is_a_transport_error_naming_the_fix() {
        let request = http::Request::new(http::Method::Get, url("http://h/"));
        let Err(HttpError::Transport(message)) = http::send(&request, &http::Options::new()) else {
            panic!("expected a transport error")
        };
        assert!(message.contains("mock_http"), "{message}");
    }

    #[test]
    fn execute_through_the_wire_round_trips_failures() {
        let outcome = execute::<Chatty>(Request::new(json!("text")));
        let failure = outcome.failure().unwrap();
        assert_eq!(failure.class, crate::FailureClass::ProtocolFramingFailed);
        assert_eq!(failure.details["found"], "string");
    }
}
