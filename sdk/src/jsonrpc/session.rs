//! One conversation with a peer: the codec, the outstanding requests and the optional ready
//! signal together, so a lane sends and receives through one value and every response is
//! checked against what it asked.

use std::fmt;

use serde_json::Value;

use super::correlation::Pending;
use super::inbound::{Inbound, ProtocolError, classify_value};
use super::message::{Codec, EncodeError};

/// Decides whether a message from the peer is the signal that it is ready for requests.
type ReadyMatcher = Box<dyn Fn(&Value) -> bool>;

/// The state of one JSON-RPC conversation (upstream's adapter state plus correlation).
#[derive(Default)]
pub struct Session {
    codec: Codec,
    pending: Pending,
    ready: Option<ReadyMatcher>,
    ready_seen: bool,
}

/// What [`Session::receive`] made of one frame.
#[derive(Debug, Clone, PartialEq)]
#[must_use = "an inbound message may need an answer or be a protocol failure"]
pub struct Received {
    /// `true` when this message is the peer's ready signal, reported before [`Received::inbound`]
    /// is handled; at most once per session.
    pub ready: bool,
    /// The message itself, classified; a response whose id matches no outstanding request is
    /// [`ProtocolError::UnexpectedResponse`].
    pub inbound: Inbound,
}

impl Session {
    /// A session whose first allocated id is 0 and which waits for no ready signal.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts allocating ids at `first`, for peers that reserve low ids.
    #[must_use]
    pub fn with_first_id(mut self, first: i64) -> Self {
        self.codec = Codec::with_first_id(first);
        self
    }

    /// Waits for the peer's ready signal: the first message object `matcher` accepts is
    /// reported as [`Received::ready`] (upstream reported every match; ready is one moment).
    #[must_use]
    pub fn with_ready_matcher(mut self, matcher: impl Fn(&Value) -> bool + 'static) -> Self {
        self.ready = Some(Box::new(matcher));
        self
    }

    /// Whether requests may be sent: no ready signal is awaited, or it has arrived.
    #[must_use]
    pub fn is_ready(&self) -> bool {
        self.ready.is_none() || self.ready_seen
    }

    /// Encodes a request like [`Codec::encode_request`] and records its id as outstanding;
    /// an id already outstanding is [`EncodeError::DuplicateId`] and changes nothing.
    pub fn request(&mut self, request: &Value) -> Result<(Value, Value), EncodeError> {
        let mut codec = self.codec.clone();
        let (id, message) = codec.encode_request(request)?;
        if !self.pending.insert(&id) {
            return Err(EncodeError::DuplicateId { id });
        }
        self.codec = codec;
        Ok((id, message))
    }

    /// Encodes a notification like [`Codec::encode_notification`]; nothing is recorded.
    pub fn notification(&self, request: &Value) -> Result<Value, EncodeError> {
        self.codec.encode_notification(request)
    }

    /// Classifies one frame from the peer, settling the request a response answers.
    pub fn receive(&mut self, frame: &[u8]) -> Received {
        match serde_json::from_slice::<Value>(frame) {
            Ok(value) => self.receive_value(value),
            Err(error) => Received {
                ready: false,
                inbound: Inbound::ProtocolError(ProtocolError::InvalidJson {
                    message: error.to_string(),
                }),
            },
        }
    }

    /// Like [`Session::receive`], for a message already parsed.
    pub fn receive_value(&mut self, value: Value) -> Received {
        let ready = !self.ready_seen
            && value.is_object()
            && self.ready.as_ref().is_some_and(|matcher| matcher(&value));
        self.ready_seen |= ready;
        let inbound = match classify_value(value) {
            Inbound::Response { id, .. } if !self.pending.take(&id) => {
                Inbound::ProtocolError(ProtocolError::UnexpectedResponse { id })
            }
            inbound => inbound,
        };
        Received { ready, inbound }
    }

    /// The requests still waiting for a response, so a lane knows when it may stop reading.
    #[must_use]
    pub fn pending(&self) -> &Pending {
        &self.pending
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("codec", &self.codec)
            .field("pending", &self.pending)
            .field("ready_matcher", &self.ready.is_some())
            .field("ready_seen", &self.ready_seen)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn response_to_a_sent_request_settles_it() {
        let mut session = Session::new().with_first_id(5);
        let (id, message) = session.request(&json!(["sum", [1, 2]])).unwrap();
        assert_eq!((id.clone(), message["id"].clone()), (json!(5), json!(5)));
        assert!(session.pending().contains(&id));
        let received = session.receive(br#"{"jsonrpc":"2.0","id":5,"result":3}"#);
        assert_eq!(
            received,
            Received {
                ready: false,
                inbound: Inbound::Response {
                    id: json!(5),
                    result: Ok(json!(3))
                }
            }
        );
        assert!(session.pending().is_empty());
    }

    #[test]
    fn response_matching_no_request_is_a_protocol_error() {
        let mut session = Session::new();
        session.request(&json!("a")).unwrap();
        for frame in [&br#"{"id":1,"result":1}"#[..], br#"{"id":"0","result":1}"#] {
            let Inbound::ProtocolError(error) = session.receive(frame).inbound else {
                panic!("expected a protocol error")
            };
            assert!(matches!(error, ProtocolError::UnexpectedResponse { .. }));
            assert!(
                error.to_string().contains("matches no outstanding request"),
                "{error}"
            );
        }
        assert!(matches!(
            session
                .receive(br#"{"id":0,"error":{"code":1,"message":"m"}}"#)
                .inbound,
            Inbound::Response { result: Err(_), .. }
        ));
        assert!(matches!(
            session.receive(br#"{"id":0,"result":1}"#).inbound,
            Inbound::ProtocolError(ProtocolError::UnexpectedResponse { .. })
        ));
    }

    #[test]
    fn duplicate_outstanding_id_is_refused() {
        let mut session = Session::new();
        session.request(&json!({"method": "a", "id": "x"})).unwrap();
        let error = session
            .request(&json!({"method": "b", "id": "x"}))
            .unwrap_err();
        assert_eq!(error, EncodeError::DuplicateId { id: json!("x") });
        session.request(&json!({"method": "c", "id": 0})).unwrap();
        let error = session
            .request(&json!({"method": "d", "id": 0}))
            .unwrap_err();
        assert!(
            error.to_string().contains("already waiting for a response"),
            "{error}"
        );
        assert_eq!(session.request(&json!("e")).unwrap().0, json!(1));
    }

    #[test]
    fn ready_signal_is_reported_once_before_the_classification() {
        let mut session = Session::new()
            .with_ready_matcher(|message| message.get("method") == Some(&json!("ready")));
        assert!(!session.is_ready());
        assert!(!session.receive(br#"{"method":"log"}"#).ready);
        assert!(!session.receive(b"[1]").ready);
        let received = session.receive(br#"{"jsonrpc":"2.0","method":"ready"}"#);
        assert!(received.ready);
        assert!(matches!(received.inbound, Inbound::Notification(_)));
        assert!(session.is_ready());
        assert!(!session.receive(br#"{"method":"ready"}"#).ready);
    }

    #[test]
    fn session_without_a_matcher_is_ready_and_never_reports_ready() {
        let mut session = Session::new();
        assert!(session.is_ready());
        assert!(!session.receive(br#"{"method":"ready"}"#).ready);
        assert!(format!("{session:?}").contains("ready_matcher: false"));
    }

    #[test]
    fn peer_requests_notifications_and_bad_frames_pass_through() {
        let mut session = Session::new();
        assert!(matches!(
            session.receive(br#"{"id":"p","method":"ask"}"#).inbound,
            Inbound::PeerRequest { .. }
        ));
        assert!(matches!(
            session.receive(b"{oops").inbound,
            Inbound::ProtocolError(ProtocolError::InvalidJson { .. })
        ));
        assert_eq!(
            session.notification(&json!("exit")).unwrap(),
            json!({"jsonrpc": "2.0", "method": "exit"})
        );
        assert!(session.pending().is_empty());
    }
}
