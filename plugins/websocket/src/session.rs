//! One WebSocket session: connect, send the payload's frames, then relay — caller input out,
//! server messages in as events — until a close, an error or the receive timeout. Errors and
//! timeouts end the stream with a typed outcome, never a trap.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use execution_plane_sdk::input::{self, Input};
use execution_plane_sdk::websocket::{CloseFrame, ConnectOptions, Connection, Message, WsError};
use execution_plane_sdk::{Event, EventSource, FailureClass, Outcome, Value, json, log};

use crate::payload::{Frame, Plan};

/// The close code of a normal end.
const NORMAL: u16 = 1000;

/// A session in progress.
pub struct Session {
    plan: Plan,
    connection: Option<Connection>,
    ready: VecDeque<Event>,
    sent: u64,
    received: u64,
    bytes_sent: u64,
    bytes_received: u64,
    /// We sent our close (end of input, max_messages): wait for the server's.
    closing: bool,
    close: Option<CloseFrame>,
    end: Option<Outcome>,
}

impl Session {
    pub fn new(plan: Plan) -> Self {
        Self {
            plan,
            connection: None,
            ready: VecDeque::new(),
            sent: 0,
            received: 0,
            bytes_sent: 0,
            bytes_received: 0,
            closing: false,
            close: None,
            end: None,
        }
    }

    fn output(&self) -> Value {
        json!({
            "sent": self.sent,
            "received": self.received,
            "bytes_sent": self.bytes_sent,
            "bytes_received": self.bytes_received,
            "close": self.close.as_ref().map(|c| json!({"code": c.code, "reason": c.reason})),
        })
    }

    fn succeed(&mut self) {
        self.end = Some(Outcome::success(self.output()));
        self.connection = None;
    }

    fn fail(&mut self, error: &WsError) {
        let (class, reason) = match error {
            WsError::Denied(_) => (FailureClass::PolicyDenied, "egress_denied"),
            WsError::InvalidUrl(_) => (FailureClass::ProtocolFramingFailed, "invalid_url"),
            WsError::ConnectFailed(_) => (FailureClass::TransportFailed, "connect_failed"),
            WsError::HandshakeRefused(_) => {
                (FailureClass::SemanticRuntimeFailed, "handshake_refused")
            }
            WsError::MessageTooLarge(_) => {
                (FailureClass::ProtocolFramingFailed, "message_too_large")
            }
            WsError::Closed => (FailureClass::TransportFailed, "closed_without_close_frame"),
            WsError::Unavailable => (FailureClass::PlacementUnavailable, "websocket_unavailable"),
            _ => (FailureClass::TransportFailed, "transport_failed"),
        };
        let mut details = json!({"message": error.to_string()});
        if let WsError::HandshakeRefused(status) = error {
            details["status"] = Value::from(*status);
        }
        self.end = Some(Outcome::failed(class, reason, details).with_output(self.output()));
        self.connection = None;
    }

    fn connect(&mut self) {
        let mut options = ConnectOptions::new();
        for (name, value) in &self.plan.headers {
            options = options.header(name.clone(), value.clone());
        }
        for protocol in &self.plan.subprotocols {
            options = options.subprotocol(protocol.clone());
        }
        let connection = match Connection::connect(&self.plan.url, &options) {
            Ok(connection) => connection,
            Err(error) => return self.fail(&error),
        };
        log::debug(&format!("websocket connected to {}", self.plan.url));
        self.ready.push_back(Event::new(
            "websocket.open",
            json!({"subprotocol": connection.subprotocol()}),
        ));
        let frames = std::mem::take(&mut self.plan.frames);
        self.connection = Some(connection);
        for frame in frames {
            if let Err(error) = self.send(frame) {
                return self.fail(&error);
            }
        }
    }

    fn send(&mut self, frame: Frame) -> Result<(), WsError> {
        let Some(connection) = self.connection.as_ref() else {
            return Err(WsError::Closed);
        };
        let bytes = match &frame {
            Frame::Text(text) => {
                connection.send_text(text)?;
                text.len()
            }
            Frame::Binary(data) => {
                connection.send_binary(data)?;
                data.len()
            }
        };
        self.sent += 1;
        self.bytes_sent += bytes as u64;
        Ok(())
    }

    fn on_message(&mut self, message: Message) {
        let full = self
            .plan
            .max_messages
            .is_some_and(|max| self.received >= max);
        if full && !matches!(message, Message::Close(_)) {
            // Past `max_messages` (our close is on its way): what was in flight is dropped.
            return;
        }
        match message {
            Message::Text(text) => {
                self.count(text.len());
                self.ready
                    .push_back(Event::new("websocket.text", json!({"text": text})));
            }
            Message::Binary(data) => {
                self.count(data.len());
                self.ready.push_back(Event::new(
                    "websocket.binary",
                    json!({"data_base64": STANDARD.encode(&data), "bytes": data.len()}),
                ));
            }
            Message::Close(frame) => {
                self.ready.push_back(Event::new(
                    "websocket.close",
                    json!({"code": frame.code, "reason": frame.reason}),
                ));
                self.close = Some(frame);
                self.succeed();
                return;
            }
        }
        if self
            .plan
            .max_messages
            .is_some_and(|max| self.received >= max)
            && !self.closing
        {
            self.close_ours(NORMAL, "");
        }
    }

    fn count(&mut self, bytes: usize) {
        self.received += 1;
        self.bytes_received += bytes as u64;
    }

    /// Sends our close frame; the server's answer ends the session.
    fn close_ours(&mut self, code: u16, reason: &str) {
        self.closing = true;
        if let Some(connection) = self.connection.as_ref()
            && let Err(error) = connection.close(code, reason)
            && error != WsError::Closed
        {
            self.fail(&error);
        }
    }

    fn on_input(&mut self, input: Input) {
        match input {
            Input::Data(bytes) => {
                let frame = match String::from_utf8(bytes) {
                    Ok(text) => Frame::Text(text),
                    Err(error) => Frame::Binary(error.into_bytes()),
                };
                if let Err(error) = self.send(frame) {
                    self.fail(&error);
                }
            }
            Input::End => self.close_ours(NORMAL, ""),
            Input::Interrupt => {
                self.close_ours(NORMAL, "interrupted");
                self.end = Some(
                    Outcome::failed(
                        FailureClass::Cancellation,
                        "interrupted by the caller",
                        json!({}),
                    )
                    .with_output(self.output()),
                );
                self.connection = None;
            }
        }
    }

    /// One step: a message, an input, or a wait for either (or the receive timeout).
    fn step(&mut self, until: Option<Instant>) {
        let Some(connection) = self.connection.as_ref() else {
            return;
        };
        match connection.receive() {
            Ok(Some(message)) => return self.on_message(message),
            Ok(None) => {}
            Err(WsError::Closed) if self.closing => return self.succeed(),
            Err(error) => return self.fail(&error),
        }
        let with_input = !self.closing && !input::ended();
        if with_input && let Some(item) = input::take() {
            return self.on_input(item);
        }
        if until.is_some_and(|until| Instant::now() >= until) {
            let timeout_ms = self.plan.receive_timeout_ms;
            self.end = Some(
                Outcome::failed(
                    FailureClass::Timeout,
                    "receive_timeout",
                    json!({"timeout_ms": timeout_ms}),
                )
                .with_output(self.output()),
            );
            self.connection = None;
            return;
        }
        wait(connection, with_input, until);
    }
}

/// Blocks until the connection or (`with_input`) the caller has something, or `until`.
#[cfg(target_arch = "wasm32")]
fn wait(connection: &Connection, with_input: bool, until: Option<Instant>) {
    use execution_plane_sdk::bindings::wasi::clocks::monotonic_clock;
    use execution_plane_sdk::bindings::wasi::io::poll;
    let socket = connection.subscribe();
    let caller = with_input.then(input::subscribe);
    let timer = until.map(|until| {
        let left = until.saturating_duration_since(Instant::now());
        monotonic_clock::subscribe_duration(u64::try_from(left.as_nanos()).unwrap_or(u64::MAX))
    });
    let list: Vec<&poll::Pollable> = [Some(&socket), caller.as_ref(), timer.as_ref()]
        .into_iter()
        .flatten()
        .collect();
    poll::poll(&list);
}

/// Natively no connection opens, so nothing is waited on.
#[cfg(not(target_arch = "wasm32"))]
fn wait(_: &Connection, _: bool, _: Option<Instant>) {}

impl EventSource for Session {
    fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Some(event);
            }
            if self.end.is_some() {
                return None;
            }
            if self.connection.is_none() {
                self.connect();
                continue;
            }
            // The receive timeout counts from each pull: the longest quiet spell allowed.
            let until = self
                .plan
                .receive_timeout_ms
                .map(|ms| Instant::now() + Duration::from_millis(ms));
            while self.ready.is_empty() && self.end.is_none() {
                self.step(until);
            }
        }
    }

    fn outcome(&mut self) -> Outcome {
        self.end
            .take()
            .unwrap_or_else(|| Outcome::success(self.output()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::panic)]
    use execution_plane_sdk::{Request, json, testing};

    use crate::WebSocketLane;

    #[test]
    fn natively_the_stream_ends_as_placement_unavailable() {
        let (events, outcome) = testing::stream_to_end::<WebSocketLane>(Request::new(
            json!({"url": "ws://127.0.0.1:1/", "frames": [{"text": "a"}]}),
        ))
        .unwrap_or_else(|r| panic!("{r:?}"));
        assert!(events.is_empty());
        let failure = outcome.failure().unwrap_or_else(|| panic!("failed"));
        assert_eq!(failure.reason, "websocket_unavailable");
    }
}
