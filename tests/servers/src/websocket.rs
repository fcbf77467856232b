//! A WebSocket echo peer whose replies are steered by what the client sends, so a WebSocket
//! client (echo, ping/pong, close codes, size limits, subprotocols, refused handshakes) can be
//! tested against real frames on loopback.
//!
//! Text and binary messages are echoed back, except two text commands:
//!
//! | the client sends | the server |
//! |---|---|
//! | `close:<code>:<reason>` | closes with that code and reason (a `<code>` that is no `u16` makes it an ordinary echo) |
//! | `ping:<payload>` | sends a Ping with `<payload>` and records the client's Pong ([`WsConnection::pongs`]) |
//!
//! A frame or message over the configured limits ([`WsOptions`]) is answered with close `1009`
//! (message too big), then the connection is closed. Everything the server saw is recorded per
//! connection ([`WsConnection`]).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http::header::{HeaderValue, SEC_WEBSOCKET_PROTOCOL};
use http::{HeaderMap, StatusCode};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::listen::{self, Serving};
use crate::record::Recorder;

/// How long the server keeps reading (and discarding) after refusing an oversize frame, so the
/// unread rest of it does not turn the socket's close into a reset that could destroy the
/// close frame before the client reads it.
const DRAIN_AFTER_REFUSAL: Duration = Duration::from_secs(2);

/// The close code for a message over the limits (RFC 6455, 7.4.1).
pub const CLOSE_TOO_BIG: u16 = 1009;

/// The close code recorded when the client's Close frame carried no code (RFC 6455, 7.1.5).
pub const CLOSE_NO_STATUS: u16 = 1005;

/// Limits and subprotocols of a [`WsEchoServer`], so size-limit and negotiation behaviour of a
/// client can be provoked.
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct WsOptions {
    max_frame_size: Option<usize>,
    max_message_size: Option<usize>,
    subprotocols: Vec<String>,
}

impl WsOptions {
    /// tungstenite's default limits (16 MiB frames, 64 MiB messages) and no subprotocols.
    pub fn new() -> Self {
        Self::default()
    }

    /// Refuses (close `1009`) any frame whose payload is larger than `bytes`.
    pub fn max_frame_size(mut self, bytes: usize) -> Self {
        self.max_frame_size = Some(bytes);
        self
    }

    /// Refuses (close `1009`) any message, all its fragments together, larger than `bytes`.
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = Some(bytes);
        self
    }

    /// Accepts `protocol` as a subprotocol: the first protocol the client offers that is
    /// accepted is echoed in `Sec-WebSocket-Protocol`.
    pub fn subprotocol(mut self, protocol: impl Into<String>) -> Self {
        self.subprotocols.push(protocol.into());
        self
    }

    fn config(&self) -> WebSocketConfig {
        let defaults = WebSocketConfig::default();
        WebSocketConfig::default()
            .max_frame_size(self.max_frame_size.or(defaults.max_frame_size))
            .max_message_size(self.max_message_size.or(defaults.max_message_size))
    }
}

/// The kind of a frame received from the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WsFrameKind {
    /// A text message.
    Text,
    /// A binary message.
    Binary,
    /// A Ping.
    Ping,
    /// A Pong.
    Pong,
    /// A Close.
    Close,
}

/// One frame received from the client, so tests can assert on what crossed the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WsFrame {
    /// What it was.
    pub kind: WsFrameKind,
    /// Its payload length in bytes (for a Close: the reason's length).
    pub len: usize,
}

/// A close code and reason, as sent by the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WsClose {
    /// The close code ([`CLOSE_NO_STATUS`] when the Close frame had none).
    pub code: u16,
    /// The close reason.
    pub reason: String,
}

/// Everything the server saw on one connection, in the order connections arrived.
#[derive(Clone, Debug, Default)]
pub struct WsConnection {
    /// The request path and query of the upgrade (`/echo?x=1`).
    pub path: String,
    /// The upgrade request's headers.
    pub headers: HeaderMap,
    /// The subprotocol the server chose, if any.
    pub subprotocol: Option<String>,
    /// Every frame received, in order.
    pub frames: Vec<WsFrame>,
    /// The payloads of the Pongs received.
    pub pongs: Vec<Bytes>,
    /// The client's Close, once received.
    pub close: Option<WsClose>,
    /// Why the connection failed, if it did (an oversize frame, a protocol error, …).
    pub error: Option<String>,
    /// Whether the server is done with the connection.
    pub ended: bool,
}

/// What the server does with an upgrade request.
#[derive(Debug)]
enum Mode {
    Echo {
        config: WebSocketConfig,
        subprotocols: Vec<String>,
    },
    Refuse(StatusCode),
}

#[derive(Debug)]
struct Shared {
    mode: Mode,
    connections: Recorder<Vec<WsConnection>>,
}

/// A running WebSocket echo peer on `127.0.0.1`; it stops (and drops every connection) when
/// dropped.
#[derive(Debug)]
#[must_use = "the server stops when its handle is dropped"]
pub struct WsEchoServer {
    serving: Serving,
    shared: Arc<Shared>,
}

impl WsEchoServer {
    /// Serves the echo peer with `options`.
    ///
    /// # Errors
    /// When called outside a tokio runtime, or when no loopback port can be bound.
    pub fn start(options: WsOptions) -> io::Result<Self> {
        Self::serve(Mode::Echo {
            config: options.config(),
            subprotocols: options.subprotocols,
        })
    }

    /// Answers every upgrade request with a plain HTTP `status` (say `403`) instead of
    /// switching protocols, to test a client's handshake failure; requests are still recorded.
    ///
    /// # Errors
    /// When `status` is no HTTP status, when called outside a tokio runtime, or when no
    /// loopback port can be bound.
    pub fn refuse(status: u16) -> io::Result<Self> {
        let status = StatusCode::from_u16(status).map_err(|error| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("WebSocket refusal: {status} is no HTTP status: {error}"),
            )
        })?;
        Self::serve(Mode::Refuse(status))
    }

    fn serve(mode: Mode) -> io::Result<Self> {
        let shared = Arc::new(Shared {
            mode,
            connections: Recorder::new(Vec::new()),
        });
        let for_connections = Arc::clone(&shared);
        let serving = listen::spawn("websocket", move |stream, peer| {
            serve_connection(stream, peer, Arc::clone(&for_connections))
        })?;
        Ok(Self { serving, shared })
    }

    /// The bound address, for clients that connect by address.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.serving.addr()
    }

    /// The echo URL, `ws://127.0.0.1:PORT/echo` (any path is served the same).
    #[must_use]
    pub fn url(&self) -> String {
        format!("ws://{}/echo", self.addr())
    }

    /// What the server saw on each connection so far.
    #[must_use]
    pub fn connections(&self) -> Vec<WsConnection> {
        self.shared.connections.snapshot()
    }

    /// Waits until `done` holds for the recorded connections and returns them: lets a test wait
    /// for a Pong or a Close to reach the server without sleeping.
    pub async fn wait_until(
        &self,
        mut done: impl FnMut(&[WsConnection]) -> bool,
    ) -> Vec<WsConnection> {
        self.shared
            .connections
            .wait_until(|connections| done(connections))
            .await
    }
}

/// The subprotocols offered by the client, in order (one header or several, comma-separated).
fn offered_subprotocols(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|protocol| !protocol.is_empty())
        .map(str::to_owned)
        .collect()
}

async fn serve_connection(stream: TcpStream, peer: SocketAddr, shared: Arc<Shared>) {
    let mut index = None;
    let config = match &shared.mode {
        Mode::Echo { config, .. } => Some(*config),
        Mode::Refuse(_) => None,
    };
    #[expect(
        clippy::result_large_err,
        reason = "the signature of tungstenite's handshake callback"
    )]
    let callback = |request: &Request, mut response: Response| {
        let mut record = WsConnection {
            path: request.uri().path_and_query().map_or_else(
                || request.uri().path().to_owned(),
                |pq| pq.as_str().to_owned(),
            ),
            headers: request.headers().clone(),
            ..WsConnection::default()
        };
        let outcome = match &shared.mode {
            Mode::Refuse(status) => {
                record.ended = true;
                let mut refusal = ErrorResponse::new(Some(format!("refused with {status}")));
                *refusal.status_mut() = *status;
                Err(refusal)
            }
            Mode::Echo { subprotocols, .. } => {
                let chosen = offered_subprotocols(request.headers())
                    .into_iter()
                    .find(|offered| subprotocols.contains(offered));
                if let Some(value) = chosen
                    .as_deref()
                    .and_then(|p| HeaderValue::from_str(p).ok())
                {
                    response.headers_mut().insert(SEC_WEBSOCKET_PROTOCOL, value);
                }
                record.subprotocol = chosen;
                Ok(response)
            }
        };
        index = Some(shared.connections.push(record));
        outcome
    };
    let accepted = tokio_tungstenite::accept_hdr_async_with_config(stream, callback, config).await;
    let ws = match accepted {
        Ok(ws) => ws,
        Err(error) => {
            tracing::debug!(%peer, %error, "WebSocket handshake did not complete");
            return;
        }
    };
    let Some(index) = index else {
        return;
    };
    let connection = Connection {
        shared: &shared,
        index,
    };
    echo(ws, &connection).await;
    connection.record(|record| record.ended = true);
}

/// One connection's place in the record.
struct Connection<'a> {
    shared: &'a Shared,
    index: usize,
}

impl Connection<'_> {
    fn record(&self, change: impl FnOnce(&mut WsConnection)) {
        self.shared.connections.update(self.index, change);
    }

    fn frame(&self, kind: WsFrameKind, len: usize) {
        self.record(|record| record.frames.push(WsFrame { kind, len }));
    }

    fn failed(&self, error: &WsError) {
        tracing::debug!(%error, "WebSocket echo connection failed");
        let text = error.to_string();
        self.record(|record| record.error = Some(text));
    }
}

/// Parses `close:<code>:<reason>` (the reason may be empty or hold further colons).
fn close_command(text: &str) -> Option<CloseFrame> {
    let rest = text.strip_prefix("close:")?;
    let (code, reason) = rest.split_once(':').unwrap_or((rest, ""));
    let code = code.parse::<u16>().ok()?;
    Some(CloseFrame {
        code: CloseCode::from(code),
        reason: reason.to_owned().into(),
    })
}

async fn echo(mut ws: WebSocketStream<TcpStream>, connection: &Connection<'_>) {
    while let Some(message) = ws.next().await {
        let sent = match message {
            Ok(Message::Text(text)) => {
                connection.frame(WsFrameKind::Text, text.len());
                if let Some(close) = close_command(&text) {
                    // Keep reading: the client's Close reply is recorded below.
                    ws.close(Some(close)).await
                } else if let Some(payload) = text.strip_prefix("ping:") {
                    ws.send(Message::Ping(Bytes::copy_from_slice(payload.as_bytes())))
                        .await
                } else {
                    ws.send(Message::Text(text)).await
                }
            }
            Ok(Message::Binary(data)) => {
                connection.frame(WsFrameKind::Binary, data.len());
                ws.send(Message::Binary(data)).await
            }
            Ok(Message::Ping(payload)) => {
                connection.frame(WsFrameKind::Ping, payload.len());
                // tungstenite queues the Pong; flushing sends it now.
                ws.flush().await
            }
            Ok(Message::Pong(payload)) => {
                connection.frame(WsFrameKind::Pong, payload.len());
                connection.record(|record| record.pongs.push(payload));
                Ok(())
            }
            Ok(Message::Close(frame)) => {
                let close = frame.map_or_else(
                    || WsClose {
                        code: CLOSE_NO_STATUS,
                        reason: String::new(),
                    },
                    |frame| WsClose {
                        code: frame.code.into(),
                        reason: frame.reason.as_str().to_owned(),
                    },
                );
                connection.frame(WsFrameKind::Close, close.reason.len());
                connection.record(|record| record.close = Some(close));
                // tungstenite queues the Close reply; the next read sends it and ends the stream.
                Ok(())
            }
            Ok(Message::Frame(_)) => Ok(()),
            Err(error @ WsError::Capacity(_)) => {
                connection.failed(&error);
                refuse_oversize(ws).await;
                return;
            }
            Err(error) => {
                connection.failed(&error);
                return;
            }
        };
        if let Err(error) = sent {
            connection.failed(&error);
            return;
        }
    }
}

/// Closes with `1009` after an oversize frame, then reads and discards what the client still
/// sends for a bounded time, so the close frame is not lost to a reset.
async fn refuse_oversize(mut ws: WebSocketStream<TcpStream>) {
    let close = CloseFrame {
        code: CloseCode::from(CLOSE_TOO_BIG),
        reason: "message too big".into(),
    };
    if let Err(error) = ws.close(Some(close)).await {
        tracing::debug!(%error, "could not send close 1009");
        return;
    }
    let mut stream = ws.into_inner();
    let drain = async {
        let mut sink = vec![0_u8; 16 * 1024];
        while let Ok(read) = stream.read(&mut sink).await {
            if read == 0 {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_AFTER_REFUSAL, drain).await;
}
