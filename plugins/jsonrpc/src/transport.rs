//! How the lane reaches its peer: one trait, three bindings. [`Transport::send`] writes one
//! message; [`Transport::try_receive`] hands out what has arrived without blocking;
//! [`Transport::wait`] blocks until something may have arrived, the caller's input has, or the
//! wait ends. HTTP is request/response (the answer to a POST is queued as the next frame);
//! WebSocket and stdio are full duplex.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use execution_plane_sdk::http::{self, HttpError, Method, Options};
use execution_plane_sdk::{FailureClass, Value, json};

use crate::payload::{Binding, MAX_FRAME_BYTES};

/// Why the transport failed, each with the failure class it ends an execution with.
#[derive(Debug, Clone, PartialEq)]
pub enum TransportError {
    /// The host refused the destination or the command (`policy_denied`).
    Denied(String),
    /// The process could not start (`launch_failed`).
    Launch(String),
    /// The peer's bytes are not frames (`protocol_framing_failed`).
    Framing(String),
    /// The connection or the pipe broke (`transport_failed`).
    Broken(String),
}

impl TransportError {
    /// The failure class and reason an execution ends with.
    pub fn class(&self) -> (FailureClass, &'static str) {
        match self {
            Self::Denied(_) => (FailureClass::PolicyDenied, "transport_denied"),
            Self::Launch(_) => (FailureClass::LaunchFailed, "launch_failed"),
            Self::Framing(_) => (
                FailureClass::ProtocolFramingFailed,
                "invalid jsonrpc response",
            ),
            Self::Broken(_) => (FailureClass::TransportFailed, "transport_failed"),
        }
    }

    /// The message, for details.
    pub fn message(&self) -> &str {
        match self {
            Self::Denied(text) | Self::Launch(text) | Self::Framing(text) | Self::Broken(text) => {
                text
            }
        }
    }
}

/// What [`Transport::try_receive`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum Arrived {
    /// One frame (one JSON text) from the peer.
    Frame(Vec<u8>),
    /// The peer ended the conversation (closed, exited).
    Closed,
}

/// A conversation's byte path to the peer.
pub trait Transport {
    /// Sends one message.
    fn send(&mut self, message: &Value) -> Result<(), TransportError>;
    /// What has arrived, without blocking.
    fn try_receive(&mut self) -> Result<Option<Arrived>, TransportError>;
    /// Blocks until the peer may have sent something, the caller's input may have arrived
    /// (`with_input`), or `until` passed (`None`: as long as the host lets the lane run).
    fn wait(&mut self, until: Option<Instant>, with_input: bool);
    /// Ends the conversation from our side (closes stdin, sends a close frame).
    fn close(&mut self);
    /// What evidence the transport adds to the output (exit status, close code, counts).
    fn summary(&self) -> Value;
}

/// Opens the transport of `binding`.
pub fn open(
    binding: &Binding,
    timeout: Option<Duration>,
) -> Result<Box<dyn Transport>, TransportError> {
    match binding {
        Binding::Http { url, headers } => Ok(Box::new(HttpTransport {
            url: url.clone(),
            headers: headers.clone(),
            timeout,
            answers: VecDeque::new(),
            posts: 0,
            closed: false,
        })),
        Binding::WebSocket { .. } => crate::duplex::open_websocket(binding, timeout),
        Binding::Stdio { .. } => crate::duplex::open_stdio(binding),
    }
}

/// JSON-RPC over HTTP: each message is one POST; a non-empty 2xx body is the peer's answer.
struct HttpTransport {
    url: http::Url,
    headers: Vec<(String, String)>,
    timeout: Option<Duration>,
    answers: VecDeque<Vec<u8>>,
    posts: u64,
    /// Our side ended: once the answers are handed out, the conversation is over.
    closed: bool,
}

impl Transport for HttpTransport {
    fn send(&mut self, message: &Value) -> Result<(), TransportError> {
        let mut request = http::Request::new(Method::Post, self.url.clone())
            .header("content-type", "application/json")
            .header("accept", "application/json");
        for (name, value) in &self.headers {
            request = request.header(name.clone(), value.clone());
        }
        let request = request.body(message.to_string());
        let mut options = Options::new().with_max_response_bytes(MAX_FRAME_BYTES as u64);
        if let Some(timeout) = self.timeout {
            options = options.with_timeout(timeout);
        }
        self.posts += 1;
        match http::send(&request, &options) {
            Ok(response) if (200..300).contains(&response.status) => {
                if !response.body.iter().all(u8::is_ascii_whitespace) {
                    self.answers.push_back(response.body);
                }
                Ok(())
            }
            Ok(response) => Err(TransportError::Broken(format!(
                "the server answered HTTP {}",
                response.status
            ))),
            Err(HttpError::Denied(denial)) => Err(TransportError::Denied(
                denial.map_or_else(|| "the host refused the URL".to_owned(), |d| d.message),
            )),
            Err(error) => Err(TransportError::Broken(error.to_string())),
        }
    }

    fn try_receive(&mut self) -> Result<Option<Arrived>, TransportError> {
        Ok(match self.answers.pop_front() {
            Some(frame) => Some(Arrived::Frame(frame)),
            None if self.closed => Some(Arrived::Closed),
            None => None,
        })
    }

    fn wait(&mut self, until: Option<Instant>, with_input: bool) {
        // Nothing arrives unasked over HTTP: a wait for the peer alone would never end, so the
        // conversation is over; otherwise only the caller's input or the time can end it.
        if !with_input {
            self.closed = true;
            return;
        }
        crate::duplex::wait_for(&[], until, with_input);
    }

    fn close(&mut self) {
        self.closed = true;
    }

    fn summary(&self) -> Value {
        json!({"mode": "http", "posts": self.posts})
    }
}
