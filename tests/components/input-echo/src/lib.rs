//! Test lane `input-echo` (ABI 0.2.0): its stream waits for the caller's input and yields one
//! `input.data` event per input (`{"text": ...}`); the end of input ends the stream with the
//! output `{"received": <count>}`, an interrupt ends it with a `cancellation` failure. With
//! `{"fail_after": n}` the stream fails as `transport_failed` after `n` events, and with
//! `{"events": n}` it yields `n` numbered events without reading input, then succeeds.

use execution_plane_sdk::input::{self, Input};
use execution_plane_sdk::{
    Capabilities, Event, EventSource, FailureClass, Lane, Outcome, Rejection, Request, export_lane,
    json,
};

struct InputEcho;

impl Lane for InputEcho {
    fn capabilities() -> Capabilities {
        Capabilities::new("input-echo")
            .protocol("test")
            .with_stream()
    }

    fn execute(req: Request) -> Outcome {
        Outcome::success(json!({ "payload": req.payload }))
    }

    fn stream(req: Request) -> Result<Box<dyn EventSource>, Rejection> {
        let number = |key: &str| req.payload.get(key).and_then(|v| v.as_u64());
        Ok(Box::new(Echo {
            received: 0,
            fail_after: number("fail_after"),
            count_to: number("events"),
            end: None,
        }))
    }
}

struct Echo {
    received: u64,
    fail_after: Option<u64>,
    count_to: Option<u64>,
    end: Option<Outcome>,
}

impl EventSource for Echo {
    fn next(&mut self) -> Option<Event> {
        if self.end.is_some() {
            return None;
        }
        if self.fail_after == Some(self.received) {
            self.end = Some(Outcome::failed(
                FailureClass::TransportFailed,
                "the transport broke on purpose",
                json!({ "after": self.received }),
            ));
            return None;
        }
        if let Some(limit) = self.count_to {
            if self.received == limit {
                self.end = Some(Outcome::success(json!({ "counted": limit })));
                return None;
            }
            self.received += 1;
            return Some(Event::new("input.count", json!({ "n": self.received })));
        }
        match input::wait() {
            Some(Input::Data(bytes)) => {
                self.received += 1;
                let text = String::from_utf8_lossy(&bytes).into_owned();
                Some(Event::new("input.data", json!({ "text": text })))
            }
            Some(Input::Interrupt) => {
                self.end = Some(Outcome::failed(
                    FailureClass::Cancellation,
                    "interrupted by the caller",
                    json!({ "received": self.received }),
                ));
                None
            }
            Some(Input::End) | None => {
                self.end = Some(Outcome::success(json!({ "received": self.received })));
                None
            }
        }
    }

    fn outcome(&mut self) -> Outcome {
        self.end
            .take()
            .unwrap_or_else(|| Outcome::success(json!({ "received": self.received })))
    }
}

export_lane!(InputEcho);
