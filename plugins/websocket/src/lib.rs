//! The first-party `websocket` lane: a WebSocket session on a connection the host opens and
//! holds (`execution_plane_sdk::websocket`). It sends the payload's frames in order, then the
//! caller's input as it arrives (text when it is UTF-8, binary otherwise), and hands out every
//! message from the server as an event. The server's close ends the stream with its code; the
//! caller's end of input closes it from our side (1000). Pings are answered by the host.
//!
//! Payload: `url` (`ws://` or `wss://`, required), `headers`, `subprotocols`, `frames` (`[{"text":
//! "..."} | {"binary_base64": "..."}]`), `receive_timeout_ms` (default: as long as the lane's
//! pull budget), `max_messages`. `plugins/README.md` has the whole contract.

mod payload;
mod session;

use execution_plane_sdk::{Capabilities, EventSource, Lane, Rejection, Request, export_lane};

use crate::payload::Plan;

/// The lane id, in the manifest (`websocket.toml`) and in `capabilities()`.
pub const LANE_ID: &str = "websocket";

/// The WebSocket streaming lane.
pub struct WebSocketLane;

impl Lane for WebSocketLane {
    fn capabilities() -> Capabilities {
        Capabilities::new(LANE_ID)
            .protocol("websocket")
            .surface("ws")
            .surface("wss")
            .without_execute()
            .with_stream()
    }

    fn validate(req: &Request) -> Result<(), Rejection> {
        Plan::from_request(req).map(drop)
    }

    fn stream(req: Request) -> Result<Box<dyn EventSource>, Rejection> {
        Ok(Box::new(session::Session::new(Plan::from_request(&req)?)))
    }
}

export_lane!(WebSocketLane);
