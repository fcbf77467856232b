//! What the lane does with each message from the peer, in `execute` and in a stream alike:
//! correlate responses, answer the peer's requests by policy, report notifications. Pure but
//! for the reply it sends back through the transport.

use execution_plane_sdk::jsonrpc::{Inbound, PeerReply, ReplyError, Session, peer_reply};
use execution_plane_sdk::{Event, Value, json};

use crate::payload::{PeerPolicy, Plan};
use crate::transport::{Transport, TransportError};

/// A conversation's state: the JSON-RPC session, the policy, counters.
pub struct Conversation {
    pub session: Session,
    peer: PeerPolicy,
    pub sent: u64,
    pub received: u64,
    pub notifications: u64,
    pub peer_requests: u64,
}

/// What one inbound frame was.
#[derive(Debug, Clone, PartialEq)]
pub enum Handled {
    /// A response to one of our requests.
    Response {
        id: Value,
        message: Value,
        result: Result<Value, Value>,
    },
    /// Something else, reported as this event (a notification, a peer request answered, an
    /// object that is no JSON-RPC message).
    Reported(Event),
    /// Not a JSON-RPC message, or a response nobody asked for.
    Protocol(String),
}

impl Conversation {
    pub fn new(plan: &Plan) -> Self {
        let mut session = Session::new().with_first_id(1);
        if let Some(method) = plan.ready_method.clone() {
            session = session.with_ready_matcher(move |message: &Value| {
                message.get("method").and_then(Value::as_str) == Some(method.as_str())
            });
        }
        Self {
            session,
            peer: plan.peer.clone(),
            sent: 0,
            received: 0,
            notifications: 0,
            peer_requests: 0,
        }
    }

    /// Sends a request (allocating its id) and returns the id.
    pub fn request(
        &mut self,
        transport: &mut dyn Transport,
        request: &Value,
    ) -> Result<(Value, Value), Sent> {
        let (id, message) = self
            .session
            .request(request)
            .map_err(|e| Sent::Invalid(e.to_string()))?;
        transport.send(&message).map_err(Sent::Transport)?;
        self.sent += 1;
        Ok((id, message))
    }

    /// Handles one frame; `ready` is set when it was the peer's ready signal.
    pub fn handle(
        &mut self,
        transport: &mut dyn Transport,
        frame: &[u8],
    ) -> Result<(Handled, bool), TransportError> {
        self.received += 1;
        let received = self.session.receive(frame);
        let handled = match received.inbound {
            Inbound::Response { id, result } => {
                let message = serde_message(frame);
                Handled::Response {
                    id,
                    message,
                    result,
                }
            }
            Inbound::PeerRequest { id, message } => {
                self.peer_requests += 1;
                let method = message
                    .get("method")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let (reply, answered) = match &self.peer {
                    PeerPolicy::Answer(answers) if answers.contains_key(method) => (
                        PeerReply::Result(answers.get(method).cloned().unwrap_or(Value::Null)),
                        "answered",
                    ),
                    _ => (PeerReply::Error(ReplyError::Unsupported), "rejected"),
                };
                transport.send(&peer_reply(&id, reply))?;
                Handled::Reported(Event::new(
                    "jsonrpc.peer_request",
                    json!({"id": id, "method": method, "reply": answered}),
                ))
            }
            Inbound::Notification(message) => {
                self.notifications += 1;
                Handled::Reported(Event::new(
                    "jsonrpc.notification",
                    json!({
                        "method": message.get("method").cloned().unwrap_or(Value::Null),
                        "params": message.get("params").cloned().unwrap_or(Value::Null),
                    }),
                ))
            }
            Inbound::Ignored(message) => {
                Handled::Reported(Event::new("jsonrpc.ignored", json!({"message": message})))
            }
            Inbound::ProtocolError(error) => Handled::Protocol(error.to_string()),
        };
        Ok((handled, received.ready))
    }

    /// The counters, for outputs.
    pub fn counts(&self) -> Value {
        json!({
            "sent": self.sent,
            "received": self.received,
            "notifications": self.notifications,
            "peer_requests": self.peer_requests,
        })
    }
}

/// Why a request could not be sent.
#[derive(Debug)]
pub enum Sent {
    /// It is no valid request (caught at validation for `request`; possible for caller input).
    Invalid(String),
    Transport(TransportError),
}

/// The frame as a JSON value (it classified as a response, so it parses).
fn serde_message(frame: &[u8]) -> Value {
    execution_plane_sdk::serde_json::from_slice(frame).unwrap_or(Value::Null)
}
