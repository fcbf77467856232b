//! The `websocket` capability (ABI 0.2.0): host-owned WebSocket client connections. `wasi:http`
//! forbids the upgrade, so the host holds the socket: the guest gets a `connection` resource,
//! a pollable ready when a message has arrived, and non-blocking `receive`.
//!
//! * **Grant**: the lane's `http` / `http_private` patterns with a `ws://` or `wss://` scheme.
//!   Each `connect` asks the one egress decision outbound HTTP asks
//!   ([`crate::egress::hooks::LaneHttpHooks::admit`]: the request's `metadata.egress`, then the
//!   grant) and connects through the same resolved-address screen and TLS configuration
//!   ([`crate::egress::client::GuardedConnector`]); a refusal reads and is recorded exactly as an
//!   HTTP one (same reasons, `capability: "websocket"`).
//! * **Connection task**: one tokio task per connection owns the socket. It writes what the guest
//!   queues (the queue is bounded in bytes: a guest sending faster than the peer reads waits in
//!   `send-*`), reads into a bounded inbox (while the inbox is full it stops reading, so the peer
//!   sees TCP backpressure), answers pings at once, ignores pongs, and turns the peer's close into
//!   `message.close` followed by `closed`.
//! * **Caps**: a message or frame over the lane's `max_response_bytes` is `message-too-large`
//!   (and the host closes with `1009`); at most [`MAX_OPEN_CONNECTIONS`] at once per execution.
//! * **End**: dropping the resource (the guest's drop, or the store's at the end of the
//!   execution, its cancellation or its deadline) makes the task send close `1001` and wait for
//!   the reply for at most [`CLOSE_GRACE`]; the task never outlives its execution by more.
//! * **Evidence**: `websocket: {connections, denied, failed, messages_sent, messages_received,
//!   bytes_sent, bytes_received, pings_answered, closes: [{by, code}]}` in the execution's entry
//!   (never a payload), plus one `capability.denied` record per refusal, reported with HTTP's.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use http::header::{HeaderName, HeaderValue, SEC_WEBSOCKET_PROTOCOL};
use serde_json::{Map, Value};
use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::error::{CapacityError, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame as WireClose, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WireError, Message as Wire};
use wasmtime::component::{HasSelf, Linker, Resource};
use wasmtime_wasi::p2::{DynPollable, Pollable};

use super::Unit;
use crate::bindings::v2_0::websocket::{
    self, CloseFrame, ConnectOptions, ErrorCode, HostConnection, Message,
};
use crate::egress::RequestTarget;
use crate::egress::client::{Stream, address_denied};
use crate::egress::decision::{Capability, Denial};
use crate::egress::hooks::EgressLog;
use crate::egress::log::destination;
use crate::state::LaneState;

/// Import-name prefix of the `websocket` interface.
pub const WEBSOCKET_IMPORT: &str = "execution-plane:lane/websocket@";

/// Connections one execution may hold open at once.
pub const MAX_OPEN_CONNECTIONS: usize = 16;

/// How long a dropped connection's task may spend on its close handshake (close `1001`, then
/// the peer's reply) before it drops the socket.
pub const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Accounting bytes per queued message on top of its payload, so the byte budgets also bound
/// the number of queued messages.
const MESSAGE_OVERHEAD: usize = 64;

/// Room for this many small messages on top of one message at the cap, in each direction.
const QUEUE_SLACK: usize = 64;

/// The largest message cap the host accepts whatever the limits say (byte budgets are
/// semaphores counted in `u32`).
const MAX_MESSAGE_CEILING: usize = 1 << 30;

/// The most one socket read asks for. tungstenite zeroes this much of its buffer before every
/// read attempt (128 KiB by default, a measurable share of an echo round trip); a larger
/// message still arrives whole, its buffer reserved from the frame's length.
const READ_BUFFER_BYTES: usize = 8 << 10;

/// Total bytes of extra request headers a guest may ask for.
const MAX_HEADER_BYTES: usize = 16 << 10;

/// Subprotocols a guest may offer.
const MAX_SUBPROTOCOLS: usize = 32;

/// Request headers the host sets (or that make no sense on an upgrade): a guest may not.
const SET_BY_HOST: &[&str] = &[
    "host",
    "upgrade",
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "content-length",
    "http2-settings",
];

/// The unit: granted by `[grants] http` / `http_private` holding a `ws://` or `wss://` pattern.
pub(crate) const WEBSOCKET: Unit = Unit {
    grant: "http (a ws:// or wss:// pattern)",
    imports: &[WEBSOCKET_IMPORT],
    granted: |grants| grants.http.has_websocket(),
    link,
    optional_as: Some("http"),
};

fn link(linker: &mut Linker<LaneState>) -> wasmtime::Result<()> {
    websocket::add_to_linker::<LaneState, HasSelf<LaneState>>(linker, |state| state)
}

/// One execution's WebSocket state: how many of its connections are open.
#[derive(Debug, Default)]
pub(crate) struct WebSocketState {
    open: Arc<AtomicUsize>,
}

impl WebSocketState {
    /// A slot for one more open connection, or `None` at [`MAX_OPEN_CONNECTIONS`].
    fn reserve(&self) -> Option<OpenSlot> {
        self.open
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |open| {
                (open < MAX_OPEN_CONNECTIONS).then_some(open + 1)
            })
            .ok()
            .map(|_| OpenSlot(Arc::clone(&self.open)))
    }
}

/// Counts one open connection until dropped.
#[derive(Debug)]
struct OpenSlot(Arc<AtomicUsize>);

impl Drop for OpenSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The execution's WebSocket evidence: the `websocket: {...}` summary into `entry` (the
/// execution's evidence entry). Its denials are in `log` with HTTP's and are reported with them
/// (`super::http::report`, `super::http::StreamDenials`).
pub(crate) fn report(log: &EgressLog, entry: Option<&mut Map<String, Value>>) {
    if let Some(entry) = entry {
        let counts = serde_json::to_value(log.websocket_counts()).unwrap_or(Value::Null);
        entry.insert("websocket".to_owned(), counts);
    }
}

/// A message of the guest's, queued for the connection task with its share of the send budget.
enum Outgoing {
    Text(String),
    Binary(Vec<u8>),
    Close(u16, String),
}

/// What `receive` hands out: a message, or the failure that ended the connection.
type Incoming = Result<Message, ErrorCode>;

/// An [`Incoming`] with its share of the inbox budget (released when the guest takes it).
type Queued = (Incoming, OwnedSemaphorePermit);

/// An open connection, as the guest's `connection` resource. Dropping it ends the connection
/// task (close `1001`, bounded by [`CLOSE_GRACE`]).
pub struct Connection {
    outgoing: mpsc::Sender<(Outgoing, OwnedSemaphorePermit)>,
    send_budget: Arc<Semaphore>,
    inbox: Arc<Mutex<Inbox>>,
    subprotocol: Option<String>,
    max_message: usize,
    /// `close` was called: nothing more may be sent.
    closing: bool,
    /// Dropped with the connection: tells the task to go away.
    _gone: oneshot::Sender<()>,
    _slot: OpenSlot,
}

/// The receiving end of a connection's inbox.
struct Inbox {
    receiver: mpsc::UnboundedReceiver<Queued>,
    /// An item received while a pollable waited, not taken yet.
    waiting: Option<Queued>,
    /// Nothing more arrives: the task is gone and everything it sent was taken, or the peer's
    /// close or a failure was taken.
    ended: bool,
}

impl Inbox {
    /// The next item if one is there; `Err(())` once nothing more can arrive (the task is
    /// gone, or the peer's close or a failure was taken: nothing follows either).
    fn take(&mut self) -> Result<Option<Queued>, ()> {
        let item = match self.waiting.take() {
            Some(item) => item,
            None if self.ended => return Err(()),
            None => match self.receiver.try_recv() {
                Ok(item) => item,
                Err(mpsc::error::TryRecvError::Empty) => return Ok(None),
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    self.ended = true;
                    return Err(());
                }
            },
        };
        if matches!(item.0, Ok(Message::Close(_)) | Err(_)) {
            self.ended = true;
        }
        Ok(Some(item))
    }
}

/// The pollable's parent: ready when `receive` has a message or an error.
struct Ready(Arc<Mutex<Inbox>>);

#[async_trait::async_trait]
impl Pollable for Ready {
    async fn ready(&mut self) {
        let mut inbox = self.0.lock().await;
        if inbox.waiting.is_some() || inbox.ended {
            return;
        }
        match inbox.receiver.recv().await {
            Some(item) => inbox.waiting = Some(item),
            // The task is gone: `receive` answers `closed` at once.
            None => inbox.ended = true,
        }
    }
}

impl websocket::Host for LaneState {}

impl HostConnection for LaneState {
    async fn connect(
        &mut self,
        url: String,
        options: ConnectOptions,
    ) -> wasmtime::Result<Result<Resource<Connection>, ErrorCode>> {
        let opened = match self.open_connection(&url, options).await {
            Ok(opened) => opened,
            Err(code) => return Ok(Err(code)),
        };
        Ok(Ok(self.table_mut().push(opened)?))
    }

    async fn subprotocol(
        &mut self,
        connection: Resource<Connection>,
    ) -> wasmtime::Result<Option<String>> {
        Ok(self.table_mut().get(&connection)?.subprotocol.clone())
    }

    async fn send_text(
        &mut self,
        connection: Resource<Connection>,
        text: String,
    ) -> wasmtime::Result<Result<(), ErrorCode>> {
        let connection = self.table_mut().get(&connection)?;
        Ok(queue(connection, text.len(), Outgoing::Text(text)).await)
    }

    async fn send_binary(
        &mut self,
        connection: Resource<Connection>,
        data: Vec<u8>,
    ) -> wasmtime::Result<Result<(), ErrorCode>> {
        let connection = self.table_mut().get(&connection)?;
        Ok(queue(connection, data.len(), Outgoing::Binary(data)).await)
    }

    async fn subscribe(
        &mut self,
        connection: Resource<Connection>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        let inbox = Arc::clone(&self.table_mut().get(&connection)?.inbox);
        let table = self.table_mut();
        let parent = table.push(Ready(inbox))?;
        wasmtime_wasi::p2::subscribe(table, parent)
    }

    async fn receive(
        &mut self,
        connection: Resource<Connection>,
    ) -> wasmtime::Result<Result<Option<Message>, ErrorCode>> {
        let inbox = Arc::clone(&self.table_mut().get(&connection)?.inbox);
        let mut inbox = inbox.lock().await;
        Ok(match inbox.take() {
            Ok(None) => Ok(None),
            // The permit goes with the item: taking it frees its room in the inbox.
            Ok(Some((item, _permit))) => item.map(Some),
            Err(()) => Err(ErrorCode::Closed),
        })
    }

    async fn close(
        &mut self,
        connection: Resource<Connection>,
        code: u16,
        reason: String,
    ) -> wasmtime::Result<Result<(), ErrorCode>> {
        let connection = self.table_mut().get_mut(&connection)?;
        if let Err(why) = check_close(code, &reason) {
            return Ok(Err(ErrorCode::Other(why)));
        }
        let cost = reason.len();
        let queued = queue(connection, cost, Outgoing::Close(code, reason)).await;
        if queued.is_ok() {
            connection.closing = true;
        }
        Ok(queued)
    }

    async fn drop(&mut self, connection: Resource<Connection>) -> wasmtime::Result<()> {
        // Dropping the value tells its task to close the socket.
        self.table_mut().delete(connection)?;
        Ok(())
    }
}

/// Queues one outgoing message, waiting while the send budget is spent (backpressure).
async fn queue(connection: &Connection, len: usize, message: Outgoing) -> Result<(), ErrorCode> {
    if connection.closing {
        return Err(ErrorCode::Closed);
    }
    if len > connection.max_message {
        return Err(ErrorCode::MessageTooLarge(len as u64));
    }
    let permit = Arc::clone(&connection.send_budget)
        .acquire_many_owned(cost(len))
        .await
        .map_err(|_| ErrorCode::Closed)?;
    connection
        .outgoing
        .send((message, permit))
        .await
        .map_err(|_| ErrorCode::Closed)
}

/// A message's share of a byte budget (at most the budget: the cap is below
/// [`MAX_MESSAGE_CEILING`]).
fn cost(len: usize) -> u32 {
    u32::try_from(len.saturating_add(MESSAGE_OVERHEAD)).unwrap_or(u32::MAX)
}

/// A byte budget with room for one message at `max_message` and [`QUEUE_SLACK`] small ones.
fn budget(max_message: usize) -> Arc<Semaphore> {
    Arc::new(Semaphore::new(
        max_message + MESSAGE_OVERHEAD * (QUEUE_SLACK + 1),
    ))
}

/// Whether a guest may send close `code` with `reason` (RFC 6455, 7.4: the codes an endpoint
/// may send; a close frame's reason fits its 125-byte payload).
fn check_close(code: u16, reason: &str) -> Result<(), String> {
    let sendable = matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999);
    if !sendable {
        return Err(format!(
            "close code {code} may not be sent; use 1000 (normal closure), 1001 (going away) or an \
             application code from 3000 to 4999"
        ));
    }
    if reason.len() > 123 {
        return Err(format!(
            "the close reason is {} bytes; a close frame holds at most 123",
            reason.len()
        ));
    }
    Ok(())
}

/// What `connect` checked about its URL: the URI to connect to and its grant-relevant parts.
struct Destination {
    uri: http::Uri,
    target: Option<RequestTarget>,
}

/// Parses a `ws://` / `wss://` URL (a missing path is `/`).
fn destination_of(url: &str) -> Result<Destination, ErrorCode> {
    let invalid = |why: &str| ErrorCode::InvalidUrl(format!("{url:?} {why}"));
    let uri: http::Uri = url
        .parse()
        .map_err(|e| invalid(&format!("is not a URL: {e}")))?;
    let websocket = uri
        .scheme_str()
        .and_then(crate::egress::Scheme::parse)
        .is_some_and(crate::egress::Scheme::is_websocket);
    if !websocket {
        return Err(invalid(
            "is not a ws:// or wss:// URL (outbound HTTP goes through wasi:http)",
        ));
    }
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(invalid(
            "holds user info; send credentials in a header (`connect-options.headers`)",
        ));
    }
    let mut parts = uri.into_parts();
    if parts.path_and_query.is_none() {
        parts.path_and_query = Some(http::uri::PathAndQuery::from_static("/"));
    }
    let uri = http::Uri::from_parts(parts).map_err(|e| invalid(&format!("is not a URL: {e}")))?;
    let target = RequestTarget::from_uri(&uri);
    Ok(Destination { uri, target })
}

/// The extra request headers and the subprotocol offer of `options`, checked.
fn request_headers(options: ConnectOptions) -> Result<Vec<(HeaderName, HeaderValue)>, ErrorCode> {
    let refuse = |why: String| Err(ErrorCode::Other(why));
    let total: usize = options
        .headers
        .iter()
        .map(|(name, value)| name.len() + value.len())
        .sum();
    if total > MAX_HEADER_BYTES {
        return refuse(format!(
            "the extra headers are {total} bytes; at most {MAX_HEADER_BYTES} are sent"
        ));
    }
    let mut headers = Vec::with_capacity(options.headers.len() + 1);
    for (name, value) in options.headers {
        let Ok(header) = HeaderName::from_bytes(name.as_bytes()) else {
            return refuse(format!("{name:?} is not a valid HTTP header name"));
        };
        let lower = header.as_str();
        if SET_BY_HOST.contains(&lower) || lower.starts_with("sec-websocket-") {
            return refuse(format!(
                "header `{lower}` is set by the host; remove it (offer subprotocols in \
                 `connect-options.subprotocols`)"
            ));
        }
        let Ok(value) = HeaderValue::from_str(&value) else {
            return refuse(format!(
                "the value of header `{lower}` is not a valid HTTP header value (visible \
                 ASCII and spaces only: no control characters, line breaks or non-ASCII)"
            ));
        };
        headers.push((header, value));
    }
    if options.subprotocols.len() > MAX_SUBPROTOCOLS {
        return refuse(format!(
            "{} subprotocols offered; at most {MAX_SUBPROTOCOLS}",
            options.subprotocols.len()
        ));
    }
    if let Some(bad) = options.subprotocols.iter().find(|p| !is_token(p)) {
        return refuse(format!(
            "subprotocol {bad:?} is not an HTTP token (letters, digits and !#$%&'*+-.^_`|~)"
        ));
    }
    if !options.subprotocols.is_empty() {
        let offer = options.subprotocols.join(", ");
        let value = HeaderValue::from_str(&offer)
            .map_err(|_| ErrorCode::Other(format!("the subprotocol offer {offer:?} is invalid")))?;
        headers.push((SEC_WEBSOCKET_PROTOCOL, value));
    }
    Ok(headers)
}

/// An RFC 7230 token.
fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A refusal as the guest sees it: the same words as the evidence.
fn denied(denial: &Denial, target: Option<&RequestTarget>) -> ErrorCode {
    let destination = target.map(destination);
    ErrorCode::Denied(super::http::denial_message(
        denial.reason,
        destination.as_deref(),
    ))
}

impl LaneState {
    /// `connect`: checks, connects through the address screen, upgrades, and starts the task.
    async fn open_connection(
        &mut self,
        url: &str,
        options: ConnectOptions,
    ) -> Result<Connection, ErrorCode> {
        let Destination { uri, target } = destination_of(url)?;
        let headers = request_headers(options)?;
        let slot = self.caps.websocket.reserve().ok_or_else(|| {
            ErrorCode::Other(format!(
                "this execution already holds {MAX_OPEN_CONNECTIONS} open WebSocket connections; \
                 drop one first"
            ))
        })?;
        let hooks = &self.caps.http.hooks;
        let allowed = hooks
            .admit(Capability::WebSocket, target.as_ref())
            .map_err(|denial| denied(&denial, target.as_ref()))?;
        let (reach, target) = (allowed.reach, allowed.target.clone());
        let log = hooks.shared_log();
        let who = hooks.who().clone();
        let max_message = usize::try_from(allowed.egress.max_response_bytes)
            .unwrap_or(usize::MAX)
            .min(MAX_MESSAGE_CEILING);
        let connector = allowed.egress.clients.connector(reach);
        // Connect and upgrade within the connect timeout, and never past the deadline.
        let bound = connector
            .connect_timeout()
            .min(self.deadline.saturating_duration_since(Instant::now()));
        let mut request = uri
            .clone()
            .into_client_request()
            .map_err(|e| ErrorCode::InvalidUrl(format!("{url:?} cannot be requested: {e}")))?;
        request.headers_mut().extend(headers);
        let config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER_BYTES)
            .max_message_size(Some(max_message))
            .max_frame_size(Some(max_message));
        let opening = async {
            let stream = match connector.open(uri).await {
                Ok(stream) => stream,
                Err(error) => {
                    if let Some(refused) = address_denied(&error) {
                        let denial = Denial::address_not_allowed(reach, &refused);
                        log.deny(&who, Capability::WebSocket, Some(&target), &denial);
                        return Err(denied(&denial, Some(&target)));
                    }
                    return Err(ErrorCode::ConnectFailed(error.to_string()));
                }
            };
            tokio_tungstenite::client_async_with_config(request, stream, Some(config))
                .await
                .map_err(|error| upgrade_failed(&error))
        };
        let opened = match tokio::time::timeout(bound, opening).await {
            Ok(opened) => opened,
            Err(_) => Err(ErrorCode::ConnectFailed(format!(
                "connecting and upgrading took longer than {} ms (the connect timeout or the \
                 execution's deadline)",
                bound.as_millis()
            ))),
        };
        let (socket, response) = match opened {
            Ok(opened) => opened,
            Err(code) => {
                if !matches!(code, ErrorCode::Denied(_)) {
                    log.websocket(|counts| counts.failed += 1);
                }
                return Err(code);
            }
        };
        log.websocket(|counts| counts.connections += 1);
        let subprotocol = response
            .headers()
            .get(SEC_WEBSOCKET_PROTOCOL)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        Ok(Connection::start(
            socket,
            subprotocol,
            max_message,
            log,
            slot,
        ))
    }
}

/// Why the upgrade failed, for the guest.
fn upgrade_failed(error: &WireError) -> ErrorCode {
    match error {
        WireError::Http(response) => ErrorCode::HandshakeRefused(response.status().as_u16()),
        WireError::Io(error) => ErrorCode::ConnectFailed(format!("the upgrade failed: {error}")),
        WireError::Protocol(ProtocolError::SecWebSocketSubProtocolError(error)) => {
            ErrorCode::Other(format!(
                "the subprotocol negotiation failed: {error} (the server must choose one of the \
                 offered subprotocols)"
            ))
        }
        other => ErrorCode::Other(format!("the upgrade failed: {other}")),
    }
}

impl Connection {
    /// Starts the task that owns `socket`.
    fn start(
        socket: WebSocketStream<Stream>,
        subprotocol: Option<String>,
        max_message: usize,
        log: Arc<EgressLog>,
        slot: OpenSlot,
    ) -> Self {
        // The byte budget bounds the queue; the count only keeps the channel small.
        let (outgoing, queued) = mpsc::channel(QUEUE_SLACK);
        let (inbox_sender, receiver) = mpsc::unbounded_channel();
        let (gone, dropped) = oneshot::channel();
        let send_budget = budget(max_message);
        let task = Task {
            socket,
            queued,
            send_budget: Arc::clone(&send_budget),
            inbox: inbox_sender,
            inbox_budget: budget(max_message),
            pending: VecDeque::new(),
            reading: true,
            close_sent: false,
            peer_closed: false,
            log,
        };
        tokio::spawn(task.run(dropped));
        Self {
            outgoing,
            send_budget,
            inbox: Arc::new(Mutex::new(Inbox {
                receiver,
                waiting: None,
                ended: false,
            })),
            subprotocol,
            max_message,
            closing: false,
            _gone: gone,
            _slot: slot,
        }
    }
}

/// The task that owns one connection's socket.
struct Task {
    socket: WebSocketStream<Stream>,
    queued: mpsc::Receiver<(Outgoing, OwnedSemaphorePermit)>,
    send_budget: Arc<Semaphore>,
    inbox: mpsc::UnboundedSender<Queued>,
    inbox_budget: Arc<Semaphore>,
    /// Read but not yet in the inbox (it was full): at most a message and the failure after it.
    pending: VecDeque<Incoming>,
    /// Whether the socket may still yield frames.
    reading: bool,
    close_sent: bool,
    peer_closed: bool,
    log: Arc<EgressLog>,
}

impl Task {
    /// Serves the connection until it ends or the guest drops it.
    async fn run(mut self, dropped: oneshot::Receiver<()>) {
        let gone = tokio::select! {
            biased;
            _ = dropped => true,
            () = self.serve() => false,
        };
        if gone {
            self.go_away().await;
        }
    }

    /// Writes, reads and delivers until the socket has ended and the guest has everything.
    async fn serve(&mut self) {
        while self.reading || !self.pending.is_empty() {
            let room = self.pending.front().map(incoming_cost);
            tokio::select! {
                queued = self.queued.recv(), if !self.send_budget.is_closed() => {
                    match queued {
                        Some((message, _permit)) => self.write(message).await,
                        None => self.stop_sending(),
                    }
                }
                permit = acquire(&self.inbox_budget, room), if room.is_some() => {
                    if let (Some(permit), Some(item)) = (permit, self.pending.pop_front()) {
                        // A guest gone takes nothing: the drop signal ends the task.
                        let _ = self.inbox.send((item, permit));
                    }
                }
                frame = self.socket.next(), if self.reading && self.pending.is_empty() => {
                    self.read(frame).await;
                }
            }
        }
    }

    /// Sends one of the guest's messages.
    async fn write(&mut self, message: Outgoing) {
        let (wire, data) = match message {
            Outgoing::Text(text) => {
                let len = text.len();
                (Wire::text(text), Some(len))
            }
            Outgoing::Binary(data) => {
                let len = data.len();
                (Wire::binary(data), Some(len))
            }
            Outgoing::Close(code, reason) => {
                let frame = WireClose {
                    code: CloseCode::from(code),
                    reason: reason.into(),
                };
                self.close_sent = true;
                self.log.websocket(|counts| counts.closed("lane", code));
                (Wire::Close(Some(frame)), None)
            }
        };
        match self.socket.send(wire).await {
            Ok(()) => {
                if let Some(len) = data {
                    self.log.websocket(|counts| {
                        counts.messages_sent += 1;
                        counts.bytes_sent += len as u64;
                    });
                }
            }
            // The connection closed meanwhile: the reading side reports it.
            Err(
                WireError::ConnectionClosed
                | WireError::AlreadyClosed
                | WireError::Protocol(ProtocolError::SendAfterClosing),
            ) => self.stop_sending(),
            Err(error) => self.fail(ErrorCode::Other(format!("sending failed: {error}"))),
        }
    }

    /// Handles what the socket yielded.
    async fn read(&mut self, frame: Option<Result<Wire, WireError>>) {
        match frame {
            Some(Ok(Wire::Text(text))) => {
                self.received(text.len());
                self.pending
                    .push_back(Ok(Message::Text(text.as_str().to_owned())));
            }
            Some(Ok(Wire::Binary(data))) => {
                self.received(data.len());
                self.pending.push_back(Ok(Message::Binary(Vec::from(data))));
            }
            Some(Ok(Wire::Ping(_))) => {
                // tungstenite queued the pong; flush it now rather than at the next read.
                self.log.websocket(|counts| counts.pings_answered += 1);
                if let Err(error) = self.socket.flush().await {
                    self.read_failed(error).await;
                }
            }
            Some(Ok(Wire::Pong(_) | Wire::Frame(_))) => {}
            Some(Ok(Wire::Close(frame))) => {
                let (code, reason) = frame.map_or((1005, String::new()), |frame| {
                    (u16::from(frame.code), frame.reason.as_str().to_owned())
                });
                self.peer_closed = true;
                self.log.websocket(|counts| counts.closed("peer", code));
                self.pending
                    .push_back(Ok(Message::Close(CloseFrame { code, reason })));
                self.stop_sending();
                // Send tungstenite's reply now, whether or not the guest reads; reading on
                // then ends the stream when the peer closes the socket.
                let _ = self.socket.flush().await;
            }
            Some(Err(error)) => self.read_failed(error).await,
            None => {
                self.reading = false;
                self.stop_sending();
            }
        }
    }

    fn received(&self, len: usize) {
        self.log.websocket(|counts| {
            counts.messages_received += 1;
            counts.bytes_received += len as u64;
        });
    }

    /// The socket failed while reading.
    async fn read_failed(&mut self, error: WireError) {
        let code = match error {
            WireError::ConnectionClosed | WireError::AlreadyClosed => {
                self.reading = false;
                self.stop_sending();
                return;
            }
            WireError::Capacity(CapacityError::MessageTooLong { size, .. }) => {
                // Said to the peer by `close_too_big` once the failure is queued.
                ErrorCode::MessageTooLarge(size as u64)
            }
            WireError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => ErrorCode::Other(
                "the peer reset the connection without a close handshake".to_owned(),
            ),
            WireError::Utf8(_) => {
                ErrorCode::Other("the peer sent a text message that is not UTF-8".to_owned())
            }
            other => ErrorCode::Other(format!("receiving failed: {other}")),
        };
        let too_big = matches!(code, ErrorCode::MessageTooLarge(_));
        self.fail(code);
        if too_big {
            self.close_too_big().await;
        }
    }

    /// Tells the peer its message was over the cap (close `1009`), best-effort within
    /// [`CLOSE_GRACE`]: the failure is already the guest's, and the socket is dropped when the
    /// task ends.
    async fn close_too_big(&mut self) {
        if self.close_sent || self.peer_closed {
            return;
        }
        self.close_sent = true;
        self.log.websocket(|counts| counts.closed("host", 1009));
        let frame = WireClose {
            code: CloseCode::Size,
            reason: "message too big".into(),
        };
        let _ = tokio::time::timeout(CLOSE_GRACE, self.socket.send(Wire::Close(Some(frame)))).await;
    }

    /// Ends the connection with `code` for the guest: nothing more is read or sent.
    fn fail(&mut self, code: ErrorCode) {
        self.pending.push_back(Err(code));
        self.reading = false;
        self.stop_sending();
    }

    /// Refuses the guest's further sends (`closed`) and drops what is queued.
    fn stop_sending(&mut self) {
        self.send_budget.close();
        self.queued.close();
    }

    /// The guest dropped the connection: what it queued before still goes out, then close
    /// `1001` (unless a close frame was already sent or received), then the peer's reply is
    /// awaited; all of it within [`CLOSE_GRACE`], after which the socket is dropped.
    async fn go_away(&mut self) {
        let goodbye = async {
            while !self.send_budget.is_closed()
                && let Ok((message, _permit)) = self.queued.try_recv()
            {
                self.write(message).await;
            }
            if !self.close_sent && !self.peer_closed {
                self.close_sent = true;
                self.log.websocket(|counts| counts.closed("host", 1001));
                let frame = WireClose {
                    code: CloseCode::Away,
                    reason: "going away".into(),
                };
                if self.socket.send(Wire::Close(Some(frame))).await.is_err() {
                    return;
                }
            }
            while let Some(Ok(_)) = self.socket.next().await {}
        };
        let _ = tokio::time::timeout(CLOSE_GRACE, goodbye).await;
    }
}

/// Room for the next pending item in the inbox (`None` when nothing is pending or the guest is
/// gone).
async fn acquire(budget: &Arc<Semaphore>, room: Option<u32>) -> Option<OwnedSemaphorePermit> {
    Arc::clone(budget).acquire_many_owned(room?).await.ok()
}

/// An incoming item's share of the inbox budget.
fn incoming_cost(item: &Incoming) -> u32 {
    cost(match item {
        Ok(Message::Text(text)) => text.len(),
        Ok(Message::Binary(data)) => data.len(),
        Ok(Message::Close(frame)) => frame.reason.len(),
        Err(_) => 0,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn options(headers: &[(&str, &str)], subprotocols: &[&str]) -> ConnectOptions {
        ConnectOptions {
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
            subprotocols: subprotocols.iter().map(|p| (*p).to_owned()).collect(),
        }
    }

    fn refusal(result: Result<impl std::fmt::Debug, ErrorCode>) -> String {
        match result {
            Err(ErrorCode::Other(why) | ErrorCode::InvalidUrl(why)) => why,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn headers_the_host_sets_and_malformed_ones_are_refused() {
        for name in [
            "Host",
            "upgrade",
            "Connection",
            "Sec-WebSocket-Key",
            "sec-websocket-protocol",
        ] {
            let why = refusal(request_headers(options(&[(name, "x")], &[])));
            assert!(why.contains("is set by the host"), "{name}: {why}");
        }
        let why = refusal(request_headers(options(&[("bad name", "x")], &[])));
        assert!(why.contains("not a valid HTTP header name"), "{why}");
        let why = refusal(request_headers(options(&[("x-a", "line\r\nbreak")], &[])));
        assert!(why.contains("not a valid HTTP header value"), "{why}");
        let why = refusal(request_headers(options(&[], &["chat, v2"])));
        assert!(why.contains("not an HTTP token"), "{why}");
        let headers = request_headers(options(
            &[("Authorization", "Bearer t")],
            &["chat.v2", "chat"],
        ))
        .unwrap();
        assert_eq!(headers.len(), 2);
        assert_eq!(headers[0].0.as_str(), "authorization");
        assert_eq!(
            headers[1],
            (
                SEC_WEBSOCKET_PROTOCOL,
                HeaderValue::from_static("chat.v2, chat")
            )
        );
    }

    #[test]
    fn only_websocket_urls_without_user_info_are_accepted() {
        for (url, why) in [
            ("http://127.0.0.1/", "is not a ws:// or wss:// URL"),
            ("not a url", "is not a URL"),
            ("ws://user:pw@127.0.0.1/", "holds user info"),
        ] {
            let got = refusal(destination_of(url).map(|d| d.uri));
            assert!(got.contains(why), "{url}: {got}");
        }
        let bare = destination_of("wss://stream.example.com").unwrap();
        assert_eq!(bare.uri.to_string(), "wss://stream.example.com/");
        assert_eq!(bare.target.unwrap().port, 443);
    }

    #[test]
    fn only_sendable_close_codes_and_short_reasons_are_accepted() {
        for code in [1000, 1001, 1011, 3000, 4999] {
            assert!(check_close(code, "bye").is_ok(), "{code}");
        }
        for code in [0, 999, 1004, 1005, 1006, 1015, 2000, 5000] {
            assert!(check_close(code, "").is_err(), "{code}");
        }
        assert!(check_close(1000, &"x".repeat(124)).is_err());
    }

    #[test]
    fn a_message_at_the_cap_fits_its_budget() {
        let cap = 1 << 20;
        let budget = budget(cap);
        assert!(budget.available_permits() >= cost(cap) as usize);
        assert_eq!(cost(usize::MAX), u32::MAX);
    }
}
