//! `stream`: a conversation. The payload's `request` (if any) goes first; then each caller input
//! is one message to send: a JSON request (an object with `method`; its `id`, or an allocated
//! one; `"jsonrpc": "2.0"` added), or with `"notification": true` a notification. Every message
//! from the peer is an event. The peer's
//! requests are answered by policy. The caller's end of input closes the conversation from our
//! side (stdin closed, close frame sent) and the stream ends when the peer has gone, with
//! the counts as output; an interrupt ends it as `cancellation`.

use std::collections::VecDeque;

use execution_plane_sdk::input::{self, Input};
use execution_plane_sdk::{Event, EventSource, FailureClass, Outcome, Value, json};

use crate::conversation::{Conversation, Handled, Sent};
use crate::exchange::transport_failure;
use crate::payload::Plan;
use crate::transport::{self, Arrived, Transport};

/// A session in progress.
pub struct SessionStream {
    plan: Plan,
    transport: Option<Box<dyn Transport>>,
    conversation: Conversation,
    ready: VecDeque<Event>,
    /// Our side is closed (end of input): wait for the peer to go.
    closing: bool,
    end: Option<Outcome>,
}

impl SessionStream {
    pub fn new(plan: Plan) -> Self {
        Self {
            conversation: Conversation::new(&plan),
            plan,
            transport: None,
            ready: VecDeque::new(),
            closing: false,
            end: None,
        }
    }

    fn output(&self) -> Value {
        let mut output = self.conversation.counts();
        if let (Some(map), Some(transport)) = (output.as_object_mut(), self.transport.as_ref()) {
            map.insert("transport".to_owned(), transport.summary());
            map.insert(
                "pending".to_owned(),
                Value::from(self.conversation.session.pending().len()),
            );
        }
        output
    }

    fn finish(&mut self, outcome: Outcome) {
        let output = self.output();
        if let Some(transport) = self.transport.as_mut() {
            transport.close();
        }
        self.end = Some(outcome.with_output(output));
    }

    fn open(&mut self) {
        let transport = match transport::open(&self.plan.binding, None) {
            Ok(transport) => transport,
            Err(error) => {
                self.finish(transport_failure(&error, None));
                return;
            }
        };
        self.ready.push_back(Event::new(
            "jsonrpc.open",
            json!({"mode": self.plan.binding.mode()}),
        ));
        self.transport = Some(transport);
        if let Some(request) = self.plan.request.clone() {
            self.send(&request);
        }
    }

    /// Sends a message the payload or the caller gave: with an id (or a bare request form) a
    /// request, an object without `id` a notification.
    fn send(&mut self, message: &Value) {
        let Some(transport) = self.transport.as_mut() else {
            return;
        };
        let is_notification = message.as_object().is_some_and(|m| !m.contains_key("id"))
            && message.get("method").is_some()
            && message.get("notification") == Some(&Value::Bool(true));
        let sent = if is_notification {
            let mut message = message.clone();
            if let Some(map) = message.as_object_mut() {
                map.remove("notification");
            }
            match self.conversation.session.notification(&message) {
                Ok(encoded) => transport
                    .send(&encoded)
                    .map(|()| (Value::Null, encoded))
                    .map_err(Sent::Transport),
                Err(error) => Err(Sent::Invalid(error.to_string())),
            }
        } else {
            self.conversation.request(transport.as_mut(), message)
        };
        match sent {
            Ok((id, encoded)) => self.ready.push_back(Event::new(
                "jsonrpc.sent",
                json!({"id": id, "method": encoded.get("method").cloned().unwrap_or(Value::Null)}),
            )),
            Err(Sent::Invalid(error)) => self
                .ready
                .push_back(Event::new("jsonrpc.input_refused", json!({"error": error}))),
            Err(Sent::Transport(error)) => self.finish(transport_failure(&error, None)),
        }
    }

    fn on_frame(&mut self, frame: &[u8]) {
        let Some(transport) = self.transport.as_mut() else {
            return;
        };
        match self.conversation.handle(transport.as_mut(), frame) {
            Err(error) => self.finish(transport_failure(&error, None)),
            Ok((handled, ready)) => {
                if ready {
                    self.ready.push_back(Event::new("jsonrpc.ready", json!({})));
                }
                let event = match handled {
                    Handled::Response {
                        id,
                        result: Ok(result),
                        ..
                    } => Event::new("jsonrpc.response", json!({"id": id, "result": result})),
                    Handled::Response {
                        id,
                        result: Err(error),
                        ..
                    } => Event::new("jsonrpc.response", json!({"id": id, "error": error})),
                    Handled::Reported(event) => event,
                    Handled::Protocol(message) => {
                        Event::new("jsonrpc.protocol_error", json!({"message": message}))
                    }
                };
                self.ready.push_back(event);
            }
        }
    }

    fn on_input(&mut self, input: Input) {
        match input {
            Input::Data(bytes) => {
                match execution_plane_sdk::serde_json::from_slice::<Value>(&bytes) {
                    Ok(message) => self.send(&message),
                    Err(error) => self.ready.push_back(Event::new(
                        "jsonrpc.input_refused",
                        json!({"error": format!("the input is not JSON: {error}")}),
                    )),
                }
            }
            Input::End => {
                self.closing = true;
                if let Some(transport) = self.transport.as_mut() {
                    transport.close();
                }
            }
            Input::Interrupt => self.finish(Outcome::failed(
                FailureClass::Cancellation,
                "interrupted by the caller",
                json!({}),
            )),
        }
    }

    /// One step: something arrived, or the caller sent something, or wait for either.
    fn step(&mut self) {
        let Some(transport) = self.transport.as_mut() else {
            self.open();
            return;
        };
        match transport.try_receive() {
            Err(error) => self.finish(transport_failure(&error, None)),
            Ok(Some(Arrived::Frame(frame))) => self.on_frame(&frame),
            Ok(Some(Arrived::Closed)) => {
                let pending = self.conversation.session.pending().len();
                if pending == 0 || self.closing {
                    self.finish(Outcome::success(json!({})));
                } else {
                    self.finish(Outcome::failed(
                        FailureClass::TransportFailed,
                        "the peer closed with requests unanswered",
                        json!({"pending": pending}),
                    ));
                }
            }
            Ok(None) => {
                if !self.closing
                    && let Some(input) = input::take()
                {
                    self.on_input(input);
                    return;
                }
                transport.wait(None, !self.closing);
            }
        }
    }
}

impl EventSource for SessionStream {
    fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Some(event);
            }
            if self.end.is_some() {
                return None;
            }
            self.step();
        }
    }

    fn outcome(&mut self) -> Outcome {
        self.end
            .take()
            .unwrap_or_else(|| Outcome::success(self.output()))
    }
}
