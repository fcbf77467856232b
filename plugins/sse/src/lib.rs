//! The first-party `sse` lane: a `text/event-stream` read through `wasi:http` as it arrives,
//! parsed with the WHATWG algorithm ([`execution_plane_sdk::sse`]), one event per pull, with
//! reconnects after a dropped connection that send `Last-Event-ID` and honour the server's
//! `retry`.
//!
//! Payload: `url` (required), `headers`, `last_event_id`, `reconnect` (`true`, `false` or
//! `{"attempts": n}`), `receive_timeout_ms` (default 30 000), `max_events`. Events: `sse.open`
//! per connection, `sse.event` per dispatched event, `sse.retry` when the server sets `retry`,
//! `sse.reconnecting` before each reconnect. The stream's outcome is its output `{events,
//! reconnects, last_event_id}` or its failure. `plugins/README.md` has the whole contract.

mod payload;
mod session;

use execution_plane_sdk::{Capabilities, EventSource, Lane, Rejection, Request, export_lane};

use crate::payload::Plan;
use crate::session::Session;

/// The lane id, in the manifest (`sse.toml`) and in `capabilities()`.
pub const LANE_ID: &str = "sse";

/// The SSE streaming lane.
pub struct SseLane;

impl Lane for SseLane {
    fn capabilities() -> Capabilities {
        Capabilities::new(LANE_ID)
            .protocol("sse")
            .surface("http")
            .surface("https")
            .without_execute()
            .with_stream()
    }

    fn validate(req: &Request) -> Result<(), Rejection> {
        Plan::from_request(req).map(drop)
    }

    fn stream(req: Request) -> Result<Box<dyn EventSource>, Rejection> {
        let plan = Plan::from_request(&req)?;
        Ok(Box::new(Session::new(plan)))
    }
}

export_lane!(SseLane);
