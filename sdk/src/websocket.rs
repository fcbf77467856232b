//! WebSocket client connections, owned by the host (ABI 0.2.0's `websocket` import): the host
//! holds the socket, checks the URL against the lane's grant (`http = ["wss://…"]` patterns),
//! answers pings and enforces the size cap; the lane sends and receives messages.
//!
//! [`Connection::receive`] never blocks; [`Connection::wait`] blocks until a message arrives,
//! and [`wait_any`] until a message or the caller's input does, whichever comes first.
//!
//! ```no_run
//! use execution_plane_sdk::websocket::{ConnectOptions, Connection, Message, WsError};
//!
//! # fn run() -> Result<(), WsError> {
//! let options = ConnectOptions::new()
//!     .header("authorization", "Bearer token")
//!     .subprotocol("chat.v1");
//! let connection = Connection::connect("wss://chat.example.com/socket", &options)?;
//! connection.send_text("hello")?;
//! match connection.wait()? {
//!     Message::Text(text) => { let _ = text; }
//!     Message::Binary(data) => { let _ = data; }
//!     Message::Close(frame) => { let _ = frame.code; }
//! }
//! connection.close(1000, "done")?;
//! # Ok(())
//! # }
//! ```
//!
//! Dropping a [`Connection`] closes the socket (the host sends close `1001`); so does the end of
//! the execution. Natively (`cargo test`) no connection can be opened: [`Connection::connect`]
//! fails with [`WsError::Unavailable`], so test the protocol logic apart from the connection.

use std::fmt;

use crate::input::Input;

#[cfg(target_arch = "wasm32")]
use crate::bindings::execution_plane::lane0_2_0::websocket as wit;

/// How to open a connection: extra request headers and the subprotocols to offer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[must_use]
pub struct ConnectOptions {
    headers: Vec<(String, String)>,
    subprotocols: Vec<String>,
}

impl ConnectOptions {
    /// No extra headers, no subprotocols.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a request header (`host`, `connection`, `upgrade` and `sec-websocket-*` are the
    /// host's: asking for one fails the connect with [`WsError::Other`]).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Offers a subprotocol (in preference order); [`Connection::subprotocol`] tells which
    /// one the server chose.
    pub fn subprotocol(mut self, protocol: impl Into<String>) -> Self {
        self.subprotocols.push(protocol.into());
        self
    }
}

/// A close frame: code and reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseFrame {
    /// The close code (`1000` normal, `1001` going away, `1009` too big, ...).
    pub code: u16,
    /// The reason, possibly empty.
    pub reason: String,
}

/// One message from the server (pings and pongs are the host's business).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message.
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
    /// The server closed the connection; nothing arrives after it.
    Close(CloseFrame),
}

/// Why a connection or an operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WsError {
    /// The host's egress policy refused the URL; the text names the reason and what to change.
    Denied(String),
    /// The URL is not a `ws://` or `wss://` URL the host can use.
    InvalidUrl(String),
    /// The TCP connection or TLS failed, or took too long.
    ConnectFailed(String),
    /// The server answered the upgrade with this HTTP status instead of switching protocols.
    HandshakeRefused(u16),
    /// A message or frame of this many bytes is over the host's cap.
    MessageTooLarge(u64),
    /// The connection is closed (by either side, or by the host at the deadline).
    Closed,
    /// Any other protocol or I/O failure, or a header or close code the host refused.
    Other(String),
    /// Not a wasm32 build: only the host can open WebSocket connections.
    Unavailable,
}

impl fmt::Display for WsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Denied(why) => write!(
                f,
                "the host refused the WebSocket connection: {why} (grant the URL as a ws:// or \
                 wss:// pattern in the manifest's [grants] http)"
            ),
            Self::InvalidUrl(why) => write!(f, "invalid WebSocket URL: {why}"),
            Self::ConnectFailed(why) => write!(
                f,
                "could not connect: {why}; check the URL and that the server is up and \
                 reachable from the node"
            ),
            Self::HandshakeRefused(status) => write!(
                f,
                "the server refused the WebSocket upgrade with HTTP {status}; check the path, \
                 the credentials in the headers and the offered subprotocols"
            ),
            Self::MessageTooLarge(bytes) => write!(
                f,
                "a WebSocket message of {bytes} bytes is over the host's cap (the lane's \
                 max_response_bytes); send or request smaller messages"
            ),
            Self::Closed => f.write_str("the WebSocket connection is closed"),
            Self::Other(why) => write!(f, "WebSocket failure: {why}"),
            Self::Unavailable => f.write_str(
                "WebSocket connections are only available in a wasm32 lane build (the host owns \
                 the socket); test the protocol logic natively without a connection",
            ),
        }
    }
}

impl std::error::Error for WsError {}

#[cfg(target_arch = "wasm32")]
impl From<wit::ErrorCode> for WsError {
    fn from(code: wit::ErrorCode) -> Self {
        match code {
            wit::ErrorCode::Denied(why) => Self::Denied(why),
            wit::ErrorCode::InvalidUrl(why) => Self::InvalidUrl(why),
            wit::ErrorCode::ConnectFailed(why) => Self::ConnectFailed(why),
            wit::ErrorCode::HandshakeRefused(status) => Self::HandshakeRefused(status),
            wit::ErrorCode::MessageTooLarge(bytes) => Self::MessageTooLarge(bytes),
            wit::ErrorCode::Closed => Self::Closed,
            wit::ErrorCode::Other(why) => Self::Other(why),
        }
    }
}

#[cfg(target_arch = "wasm32")]
impl From<wit::Message> for Message {
    fn from(message: wit::Message) -> Self {
        match message {
            wit::Message::Text(text) => Self::Text(text),
            wit::Message::Binary(data) => Self::Binary(data),
            wit::Message::Close(frame) => Self::Close(CloseFrame {
                code: frame.code,
                reason: frame.reason,
            }),
        }
    }
}

/// An open WebSocket connection; dropping it closes the socket.
pub struct Connection {
    #[cfg(target_arch = "wasm32")]
    inner: wit::Connection,
    /// Natively no connection exists.
    #[cfg(not(target_arch = "wasm32"))]
    never: std::convert::Infallible,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("subprotocol", &self.subprotocol())
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Connects to `url` (`ws://` or `wss://`) and performs the upgrade. Redirects are not
    /// followed: a `3xx` answer is [`WsError::HandshakeRefused`].
    pub fn connect(url: &str, options: &ConnectOptions) -> Result<Self, WsError> {
        #[cfg(target_arch = "wasm32")]
        {
            let options = wit::ConnectOptions {
                headers: options.headers.clone(),
                subprotocols: options.subprotocols.clone(),
            };
            let inner = wit::Connection::connect(url, &options)?;
            Ok(Self { inner })
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            let _ = (url, options);
            Err(WsError::Unavailable)
        }
    }

    /// The subprotocol the server chose, if any.
    pub fn subprotocol(&self) -> Option<String> {
        #[cfg(target_arch = "wasm32")]
        {
            self.inner.subprotocol()
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            match self.never {}
        }
    }

    /// Sends a text message (blocks while the host's send buffer is full).
    pub fn send_text(&self, text: &str) -> Result<(), WsError> {
        #[cfg(target_arch = "wasm32")]
        {
            Ok(self.inner.send_text(text)?)
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            let _ = text;
            match self.never {}
        }
    }

    /// Sends a binary message (blocks while the host's send buffer is full).
    pub fn send_binary(&self, data: &[u8]) -> Result<(), WsError> {
        #[cfg(target_arch = "wasm32")]
        {
            Ok(self.inner.send_binary(data)?)
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            let _ = data;
            match self.never {}
        }
    }

    /// The next message if one has arrived, without blocking. After a [`Message::Close`] (or
    /// an error) it fails with [`WsError::Closed`].
    pub fn receive(&self) -> Result<Option<Message>, WsError> {
        #[cfg(target_arch = "wasm32")]
        {
            Ok(self.inner.receive()?.map(Message::from))
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            match self.never {}
        }
    }

    /// Blocks until a message arrives and returns it.
    pub fn wait(&self) -> Result<Message, WsError> {
        #[cfg(target_arch = "wasm32")]
        {
            loop {
                if let Some(message) = self.receive()? {
                    return Ok(message);
                }
                self.subscribe().block();
            }
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            match self.never {}
        }
    }

    /// A pollable ready when [`Connection::receive`] has a message or an error: poll it with
    /// others (caller input, an HTTP body) to wait for whichever comes first.
    #[cfg(target_arch = "wasm32")]
    pub fn subscribe(&self) -> crate::bindings::wasi::io::poll::Pollable {
        self.inner.subscribe()
    }

    /// Sends a close frame (`1000` normal, `1001` going away, or an application code from
    /// `3000` to `4999`; a reason of at most 123 bytes). Messages already received can still
    /// be read, then the server's own close frame.
    pub fn close(&self, code: u16, reason: &str) -> Result<(), WsError> {
        #[cfg(target_arch = "wasm32")]
        {
            Ok(self.inner.close(code, reason)?)
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            let _ = (code, reason);
            match self.never {}
        }
    }
}

/// What [`wait_any`] woke for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Woken {
    /// A message from the server.
    Message(Message),
    /// Input from the caller.
    Input(Input),
}

/// Blocks until the caller sends input or `connection` has a message, and returns it. Input
/// is looked at first, so an interrupt is seen at once; once the caller's input has ended
/// (`Input::End` was returned) only the connection is waited on. A connection that failed or
/// closed is the error [`Connection::receive`] gives.
pub fn wait_any(connection: &Connection) -> Result<Woken, WsError> {
    #[cfg(target_arch = "wasm32")]
    {
        use crate::bindings::wasi::io::poll::poll;
        loop {
            if !crate::input::ended()
                && let Some(input) = crate::input::take()
            {
                return Ok(Woken::Input(input));
            }
            if let Some(message) = connection.receive()? {
                return Ok(Woken::Message(message));
            }
            let socket = connection.subscribe();
            if crate::input::ended() {
                socket.block();
            } else {
                let caller = crate::input::subscribe();
                poll(&[&socket, &caller]);
            }
        }
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        match connection.never {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natively_no_connection_opens_and_the_error_says_why() {
        let options = ConnectOptions::new().header("x-a", "1").subprotocol("chat");
        let error = Connection::connect("ws://127.0.0.1:1/", &options).unwrap_err();
        assert_eq!(error, WsError::Unavailable);
        assert!(
            error.to_string().contains("only available in a wasm32"),
            "{error}"
        );
    }

    #[test]
    fn errors_say_what_to_do() {
        let text = WsError::HandshakeRefused(403).to_string();
        assert!(
            text.contains("HTTP 403") && text.contains("credentials"),
            "{text}"
        );
        let text = WsError::Denied("ws://h:80 refused (no_matching_grant)".into()).to_string();
        assert!(
            text.contains("no_matching_grant") && text.contains("[grants] http"),
            "{text}"
        );
        assert!(WsError::MessageTooLarge(9).to_string().contains("9 bytes"));
    }
}
