//! Test lane `ws-client` (ABI 0.2.0, built with the SDK): a WebSocket client over the host's
//! `websocket` import, through the SDK's client (`sdk/src/websocket.rs`, compiled in here).
//!
//! Payload: `url`; `frames`, sent in order after connecting (`repeat` times, default once), each
//! `{"text": s}`, `{"binary": [bytes]}`, `{"text_len": n}` or `{"binary_len": n}`; `headers`
//! (`{name: value}`) and `subprotocols` for the upgrade; `expect`, how many messages `execute`
//! waits for; `close` (`{"code", "reason"}`), sent after them.
//!
//! * `execute`: connects, sends the frames, receives `expect` messages (stopping at a close),
//!   then sends `close` when given and waits for the server's close. Output: `subprotocol`,
//!   `received` (a summary per message), `after` (the error kind of one more `receive`).
//! * `execute` with operation `spin`: connects, sends the frames, then loops forever.
//! * `execute` with operation `ignore`: connects, sends the frames, then sleeps without ever
//!   reading the connection.
//! * `execute` with operation `drop`: connects, sends the frames and `close`, and drops the
//!   connection at once.
//! * `stream`: connects (event `ws.open`), sends the frames, then forwards the caller's input
//!   as text messages (its end as close `1000`) and yields `ws.text` / `ws.binary` / `ws.close`
//!   per message; the server's close ends it with the output `{"received": n}`.
//!
//! A failure ends the execution (or the stream) with a failed outcome: `policy_denied` for a
//! refused URL, `transport_failed` otherwise, with `details.error` the error's kind.

// The SDK's WebSocket client, compiled into this guest until the SDK exports it; it reaches the
// generated bindings and the input functions through these two paths.
use execution_plane_sdk::{bindings, input};

#[path = "../../../../sdk/src/websocket.rs"]
#[allow(dead_code)]
mod websocket;

use execution_plane_sdk::input::Input;
use execution_plane_sdk::{
    Capabilities, Event, EventSource, FailureClass, Lane, Map, Outcome, Rejection, Request, Value,
    export_lane, json,
};
use websocket::{ConnectOptions, Connection, Message, Woken, WsError, wait_any};

struct WsClient;

/// What the payload asks for.
struct Plan {
    url: String,
    options: ConnectOptions,
    frames: Vec<Frame>,
    expect: u64,
    close: Option<(u16, String)>,
}

enum Frame {
    Text(String),
    Binary(Vec<u8>),
}

fn plan(req: &Request) -> Plan {
    let payload = &req.payload;
    let mut options = ConnectOptions::new();
    if let Some(headers) = payload.get("headers").and_then(Value::as_object) {
        for (name, value) in headers {
            options = options.header(name.as_str(), value.as_str().unwrap_or_default());
        }
    }
    for protocol in payload
        .get("subprotocols")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        options = options.subprotocol(protocol.as_str().unwrap_or_default());
    }
    let mut once = Vec::new();
    for frame in payload
        .get("frames")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let len = |key: &str| frame.get(key).and_then(Value::as_u64).map(|n| n as usize);
        if let Some(text) = frame.get("text").and_then(Value::as_str) {
            once.push(Frame::Text(text.to_owned()));
        } else if let Some(bytes) = frame.get("binary").and_then(Value::as_array) {
            let bytes = bytes
                .iter()
                .map(|b| b.as_u64().unwrap_or(0) as u8)
                .collect();
            once.push(Frame::Binary(bytes));
        } else if let Some(n) = len("text_len") {
            once.push(Frame::Text("x".repeat(n)));
        } else if let Some(n) = len("binary_len") {
            once.push(Frame::Binary((0..n).map(|i| i as u8).collect()));
        }
    }
    let repeat = payload.get("repeat").and_then(Value::as_u64).unwrap_or(1);
    let mut frames = Vec::new();
    for _ in 0..repeat {
        for frame in &once {
            frames.push(match frame {
                Frame::Text(text) => Frame::Text(text.clone()),
                Frame::Binary(data) => Frame::Binary(data.clone()),
            });
        }
    }
    let close = payload
        .get("close")
        .and_then(Value::as_object)
        .map(|close| {
            let code = close.get("code").and_then(Value::as_u64).unwrap_or(1000) as u16;
            let reason = close.get("reason").and_then(Value::as_str).unwrap_or("");
            (code, reason.to_owned())
        });
    Plan {
        url: payload
            .get("url")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        options,
        frames,
        expect: payload.get("expect").and_then(Value::as_u64).unwrap_or(0),
        close,
    }
}

/// The error's kind, as the details name it.
fn kind(error: &WsError) -> &'static str {
    match error {
        WsError::Denied(_) => "denied",
        WsError::InvalidUrl(_) => "invalid_url",
        WsError::ConnectFailed(_) => "connect_failed",
        WsError::HandshakeRefused(_) => "handshake_refused",
        WsError::MessageTooLarge(_) => "message_too_large",
        WsError::Closed => "closed",
        WsError::Unavailable => "unavailable",
        _ => "other",
    }
}

fn failed(error: &WsError) -> Outcome {
    let class = match error {
        WsError::Denied(_) => FailureClass::PolicyDenied,
        _ => FailureClass::TransportFailed,
    };
    let mut details = json!({ "error": kind(error), "message": error.to_string() });
    match error {
        WsError::Denied(_) => details["cause"] = json!("capability_denied"),
        WsError::HandshakeRefused(status) => details["status"] = json!(status),
        WsError::MessageTooLarge(size) => details["size"] = json!(size),
        _ => {}
    }
    Outcome::failed(class, "websocket failed", details)
}

fn summary(message: &Message) -> Value {
    match message {
        Message::Text(text) if text.len() <= 256 => json!({ "type": "text", "text": text }),
        Message::Text(text) => json!({ "type": "text", "len": text.len() }),
        Message::Binary(data) if data.len() <= 64 => {
            json!({ "type": "binary", "len": data.len(), "bytes": data })
        }
        Message::Binary(data) => json!({ "type": "binary", "len": data.len() }),
        Message::Close(frame) => {
            json!({ "type": "close", "code": frame.code, "reason": frame.reason })
        }
    }
}

/// Connects and sends the plan's frames.
fn open(plan: &Plan) -> Result<Connection, WsError> {
    let connection = Connection::connect(&plan.url, &plan.options)?;
    for frame in &plan.frames {
        match frame {
            Frame::Text(text) => connection.send_text(text)?,
            Frame::Binary(data) => connection.send_binary(data)?,
        }
    }
    Ok(connection)
}

fn execute(plan: &Plan, operation: Option<&str>) -> Result<Map<String, Value>, WsError> {
    let connection = open(plan)?;
    match operation {
        Some("spin") => {
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        Some("ignore") => loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        },
        Some("drop") => {
            if let Some((code, reason)) = &plan.close {
                connection.close(*code, reason)?;
            }
            drop(connection);
            return Ok(Map::new());
        }
        _ => {}
    }
    let mut received = Vec::new();
    let mut closed = false;
    while (received.len() as u64) < plan.expect {
        let message = connection.wait()?;
        closed = matches!(message, Message::Close(_));
        received.push(summary(&message));
        if closed {
            break;
        }
    }
    if let Some((code, reason)) = &plan.close
        && !closed
    {
        connection.close(*code, reason)?;
        loop {
            let message = connection.wait()?;
            let done = matches!(message, Message::Close(_));
            received.push(summary(&message));
            if done {
                break;
            }
        }
    }
    let after = match connection.receive() {
        Ok(Some(message)) => summary(&message),
        Ok(None) => json!("nothing"),
        Err(error) => json!(kind(&error)),
    };
    let mut output = Map::new();
    output.insert("subprotocol".into(), json!(connection.subprotocol()));
    output.insert("received".into(), Value::Array(received));
    output.insert("after".into(), after);
    Ok(output)
}

impl Lane for WsClient {
    fn capabilities() -> Capabilities {
        Capabilities::new("ws-client")
            .protocol("websocket")
            .with_stream()
    }

    fn execute(req: Request) -> Outcome {
        let plan = plan(&req);
        match execute(&plan, req.operation.as_deref()) {
            Ok(output) => Outcome::success(Value::Object(output)),
            Err(error) => failed(&error),
        }
    }

    fn stream(req: Request) -> Result<Box<dyn EventSource>, Rejection> {
        Ok(Box::new(Session {
            plan: plan(&req),
            connection: None,
            received: 0,
            end: None,
        }))
    }
}

/// A stream's connection and what it has seen.
struct Session {
    plan: Plan,
    connection: Option<Connection>,
    received: u64,
    end: Option<Outcome>,
}

impl Session {
    fn step(&mut self) -> Result<Option<Event>, WsError> {
        let Some(connection) = &self.connection else {
            let connection = open(&self.plan)?;
            let subprotocol = connection.subprotocol();
            self.connection = Some(connection);
            return Ok(Some(Event::new(
                "ws.open",
                json!({ "subprotocol": subprotocol }),
            )));
        };
        loop {
            match wait_any(connection)? {
                Woken::Input(Input::Data(bytes)) => {
                    connection.send_text(&String::from_utf8_lossy(&bytes))?;
                }
                Woken::Input(Input::End) => connection.close(1000, "input ended")?,
                Woken::Input(Input::Interrupt) => connection.close(1001, "interrupted")?,
                Woken::Message(message) => {
                    self.received += 1;
                    let event = match &message {
                        Message::Text(_) => "ws.text",
                        Message::Binary(_) => "ws.binary",
                        Message::Close(_) => {
                            self.end = Some(Outcome::success(json!({ "received": self.received })));
                            "ws.close"
                        }
                    };
                    return Ok(Some(Event::new(event, summary(&message))));
                }
            }
        }
    }
}

impl EventSource for Session {
    fn next(&mut self) -> Option<Event> {
        if self.end.is_some() {
            return None;
        }
        match self.step() {
            Ok(event) => event,
            Err(error) => {
                self.end = Some(failed(&error));
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

export_lane!(WsClient);
