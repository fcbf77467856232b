//! A scripted Server-Sent Events origin, so SSE clients (reconnects, `Last-Event-ID`, streams
//! cut mid-event) can be tested against real HTTP/1.1 on loopback instead of mocks.
//!
//! [`SseServer::start`] plays an [`SseScript`]: the i-th `GET` it receives (0-based, any path,
//! counted across connections) is answered by the script's i-th [`SseConnection`]. **Past the
//! end of the script every `GET` gets `204 No Content`**, the SSE signal for "stop
//! reconnecting", so a reconnecting client under test ends instead of looping. Other methods
//! get `405` and do not advance the script. Every request is recorded ([`SseRequest`]).
//!
//! Two generator modes serve benchmarks: [`SseServer::flood`] (throughput) and
//! [`SseServer::hold`] (many idle concurrent streams).

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::stream::{self, BoxStream, Stream, StreamExt};
use http::header::{ACCEPT, ALLOW, CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::listen::{self, Serving};
use crate::record::Recorder;

/// The `Last-Event-ID` request header a reconnecting SSE client sends.
pub const LAST_EVENT_ID: &str = "last-event-id";

/// The size the flood generator aims for in each body frame: large frames keep the server out
/// of the way of the client being measured.
const FLOOD_FRAME_BYTES: usize = 64 * 1024;

/// The smallest event `flood` can send: `data: \n\n`.
const EMPTY_EVENT_BYTES: usize = 8;

/// Renders one SSE event, so tests write events by meaning rather than by wire syntax.
///
/// Each line of `data` (split at `\n`, `\r\n` or `\r`) becomes its own `data:` line, so a client
/// that joins them with `\n` gets `data` back unchanged.
///
/// ```
/// use ep_test_servers::sse::event;
///
/// assert_eq!(event(Some("7"), Some("tick"), "a\nb"), "id: 7\nevent: tick\ndata: a\ndata: b\n\n");
/// assert_eq!(event(None, None, ""), "data: \n\n");
/// ```
#[must_use]
pub fn event(id: Option<&str>, event: Option<&str>, data: &str) -> String {
    let mut out = String::with_capacity(data.len() + 32);
    if let Some(id) = id {
        out.push_str("id: ");
        out.push_str(id);
        out.push('\n');
    }
    if let Some(event) = event {
        out.push_str("event: ");
        out.push_str(event);
        out.push('\n');
    }
    let normalized = data.replace("\r\n", "\n").replace('\r', "\n");
    for line in normalized.split('\n') {
        out.push_str("data: ");
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
    out
}

/// How a scripted response body ends, so clients can be tested on both clean ends and cuts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SseEnding {
    /// The body finishes normally (the terminating chunk is sent).
    #[default]
    End,
    /// The TCP connection is closed after the last chunk is written, without the terminating
    /// chunk: the client sees an incomplete body.
    Drop,
}

/// One raw body frame of a scripted response and the pause before it is sent.
#[derive(Clone, Debug, PartialEq, Eq)]
struct SseChunk {
    delay: Duration,
    bytes: Bytes,
}

/// The answer to one `GET`: status, raw body frames and how the body ends.
#[derive(Clone, Debug)]
#[must_use]
pub struct SseConnection {
    status: u16,
    content_type: String,
    chunks: Vec<SseChunk>,
    ending: SseEnding,
}

impl Default for SseConnection {
    fn default() -> Self {
        Self {
            status: 200,
            content_type: "text/event-stream".to_owned(),
            chunks: Vec::new(),
            ending: SseEnding::End,
        }
    }
}

impl SseConnection {
    /// A `200` `text/event-stream` response with no body frames that ends normally.
    pub fn new() -> Self {
        Self::default()
    }

    /// Answers with `status` instead of `200`, to test how clients treat error statuses
    /// ([`SseServer::start`] refuses a number that is no HTTP status).
    pub fn status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// Sends another `content-type` than `text/event-stream`, to test clients that must refuse
    /// a non-SSE answer ([`SseServer::start`] refuses one that is no header value).
    pub fn content_type(mut self, content_type: impl Into<String>) -> Self {
        self.content_type = content_type.into();
        self
    }

    /// Appends a body frame sent as soon as the previous one is.
    pub fn chunk(self, bytes: impl Into<Bytes>) -> Self {
        self.chunk_after(Duration::ZERO, bytes)
    }

    /// Appends a body frame sent `delay` after the previous one, so a client sees events arrive
    /// separately rather than coalesced.
    pub fn chunk_after(mut self, delay: Duration, bytes: impl Into<Bytes>) -> Self {
        self.chunks.push(SseChunk {
            delay,
            bytes: bytes.into(),
        });
        self
    }

    /// Sets how the body ends ([`SseEnding::End`] unless told).
    pub fn ending(mut self, ending: SseEnding) -> Self {
        self.ending = ending;
        self
    }

    /// Shorthand for `ending(SseEnding::Drop)`: cut the connection after the last frame.
    pub fn then_drop(self) -> Self {
        self.ending(SseEnding::Drop)
    }

    /// Checks the status and content type once, at start, so serving cannot fail on them.
    fn plan(&self, index: usize) -> io::Result<Planned> {
        let invalid = |what: String| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("SSE script, connection {index}: {what}"),
            )
        };
        let status = StatusCode::from_u16(self.status).map_err(|error| {
            invalid(format!("status {} is no HTTP status: {error}", self.status))
        })?;
        let content_type = HeaderValue::from_str(&self.content_type).map_err(|error| {
            invalid(format!(
                "content-type {:?} is no header value: {error}",
                self.content_type
            ))
        })?;
        Ok(Planned {
            status,
            content_type,
            chunks: self.chunks.clone(),
            ending: self.ending,
        })
    }
}

/// A checked [`SseConnection`], ready to be served.
#[derive(Debug)]
struct Planned {
    status: StatusCode,
    content_type: HeaderValue,
    chunks: Vec<SseChunk>,
    ending: SseEnding,
}

/// The answers to successive `GET`s, in order; past the end, `204 No Content`.
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct SseScript {
    connections: Vec<SseConnection>,
}

impl SseScript {
    /// An empty script: every `GET` gets `204`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends the answer to the next `GET`.
    pub fn connection(mut self, connection: SseConnection) -> Self {
        self.connections.push(connection);
        self
    }
}

/// One request the server received, so tests can assert what a client sent on each
/// (re)connection.
#[derive(Clone, Debug)]
pub struct SseRequest {
    /// The request method.
    pub method: Method,
    /// Path and query, as sent (`/events?x=1`).
    pub path_and_query: String,
    /// The `Last-Event-ID` header, when present and UTF-8.
    pub last_event_id: Option<String>,
    /// The `Accept` header, when present and UTF-8.
    pub accept: Option<String>,
    /// Every request header.
    pub headers: HeaderMap,
}

/// What the server answers, fixed at start.
#[derive(Debug)]
enum Mode {
    Script(Vec<Planned>),
    Flood { chunks: Vec<Bytes> },
    Hold,
}

/// State shared by the handle and the connection tasks.
#[derive(Debug)]
struct Shared {
    mode: Mode,
    gets: AtomicUsize,
    requests: Recorder<Vec<SseRequest>>,
    open: Recorder<usize>,
}

/// A running SSE origin on `127.0.0.1`; it stops (and cuts every open stream) when dropped.
#[derive(Debug)]
#[must_use = "the server stops when its handle is dropped"]
pub struct SseServer {
    serving: Serving,
    shared: Arc<Shared>,
}

impl SseServer {
    /// Serves `script` (see the module docs for what each `GET` gets).
    ///
    /// # Errors
    /// When a connection's status or content type is invalid, when called outside a tokio
    /// runtime, or when no loopback port can be bound.
    pub fn start(script: SseScript) -> io::Result<Self> {
        let planned = script
            .connections
            .iter()
            .enumerate()
            .map(|(index, connection)| connection.plan(index))
            .collect::<io::Result<Vec<_>>>()?;
        Self::serve(Mode::Script(planned))
    }

    /// Answers every `GET` with `n_events` identical events of `event_bytes` bytes each on the
    /// wire (`data: xxx…\n\n`; at least 8), sent as fast as possible in ~64 KiB body frames,
    /// then ends the body: for client throughput benchmarks.
    ///
    /// # Errors
    /// When called outside a tokio runtime, or when no loopback port can be bound.
    pub fn flood(n_events: usize, event_bytes: usize) -> io::Result<Self> {
        Self::serve(Mode::Flood {
            chunks: flood_chunks(n_events, event_bytes),
        })
    }

    /// Answers every `GET` with one event, `data: open\n\n`, then keeps the stream open until
    /// the client leaves or the server drops: for many-concurrent-streams tests, with
    /// [`SseServer::open_connections`] counting the streams still open.
    ///
    /// # Errors
    /// When called outside a tokio runtime, or when no loopback port can be bound.
    pub fn hold() -> io::Result<Self> {
        Self::serve(Mode::Hold)
    }

    fn serve(mode: Mode) -> io::Result<Self> {
        let shared = Arc::new(Shared {
            mode,
            gets: AtomicUsize::new(0),
            requests: Recorder::new(Vec::new()),
            open: Recorder::new(0),
        });
        let for_connections = Arc::clone(&shared);
        let serving = listen::spawn("sse", move |stream, peer| {
            serve_connection(stream, peer, Arc::clone(&for_connections))
        })?;
        Ok(Self { serving, shared })
    }

    /// The bound address, for clients that connect by address.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.serving.addr()
    }

    /// The stream's URL, `http://127.0.0.1:PORT/events`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}/events", self.addr())
    }

    /// Every request received so far, in order of arrival.
    #[must_use]
    pub fn requests(&self) -> Vec<SseRequest> {
        self.shared.requests.snapshot()
    }

    /// Waits until at least `n` requests have arrived and returns them all: lets a test wait
    /// for a client's reconnect without sleeping.
    pub async fn wait_for_requests(&self, n: usize) -> Vec<SseRequest> {
        self.shared
            .requests
            .wait_until(|requests| requests.len() >= n)
            .await
    }

    /// How many response bodies are still streaming (in `hold` mode: the open streams).
    #[must_use]
    pub fn open_connections(&self) -> usize {
        self.shared.open.snapshot()
    }

    /// Waits until exactly `n` response bodies are streaming.
    pub async fn wait_for_open_connections(&self, n: usize) {
        self.shared.open.wait_until(|open| *open == n).await;
    }
}

/// Splits `n_events` events of `event_bytes` wire bytes into frames of about
/// [`FLOOD_FRAME_BYTES`]; the full frames share one buffer.
fn flood_chunks(n_events: usize, event_bytes: usize) -> Vec<Bytes> {
    let event_len = event_bytes.max(EMPTY_EVENT_BYTES);
    let mut one = BytesMut::with_capacity(event_len);
    one.extend_from_slice(b"data: ");
    one.resize(event_len - 2, b'x');
    one.extend_from_slice(b"\n\n");
    let per_frame = (FLOOD_FRAME_BYTES / event_len).max(1);
    let frame_of = |events: usize| {
        let mut frame = BytesMut::with_capacity(events * event_len);
        for _ in 0..events {
            frame.extend_from_slice(&one);
        }
        frame.freeze()
    };
    let full = frame_of(per_frame.min(n_events));
    let mut chunks = vec![full; n_events / per_frame];
    let rest = n_events % per_frame;
    if rest > 0 {
        chunks.push(frame_of(rest));
    }
    chunks
}

type SseBody = UnsyncBoxBody<Bytes, io::Error>;
type FrameStream = BoxStream<'static, Result<Frame<Bytes>, io::Error>>;

async fn serve_connection(stream: TcpStream, peer: SocketAddr, shared: Arc<Shared>) {
    let cut = Arc::new(AtomicBool::new(false));
    let io = TokioIo::new(CuttableStream {
        inner: stream,
        cut: Arc::clone(&cut),
    });
    let service = service_fn(move |request: Request<Incoming>| {
        let response = respond(&shared, &request, &cut);
        async move { Ok::<_, Infallible>(response) }
    });
    if let Err(error) = hyper::server::conn::http1::Builder::new()
        .serve_connection(io, service)
        .await
    {
        tracing::debug!(%peer, %error, "SSE connection ended");
    }
}

fn respond(
    shared: &Arc<Shared>,
    request: &Request<Incoming>,
    cut: &Arc<AtomicBool>,
) -> Response<SseBody> {
    let headers = request.headers();
    let header_text = |name| {
        headers
            .get(name)
            .and_then(|value: &HeaderValue| value.to_str().ok())
            .map(str::to_owned)
    };
    shared.requests.push(SseRequest {
        method: request.method().clone(),
        path_and_query: request.uri().path_and_query().map_or_else(
            || request.uri().path().to_owned(),
            |pq| pq.as_str().to_owned(),
        ),
        last_event_id: header_text(LAST_EVENT_ID),
        accept: header_text(ACCEPT.as_str()),
        headers: headers.clone(),
    });

    if request.method() != Method::GET {
        let mut response = empty(StatusCode::METHOD_NOT_ALLOWED);
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET"));
        return response;
    }
    let index = shared.gets.fetch_add(1, Ordering::Relaxed);
    match &shared.mode {
        Mode::Script(connections) => match connections.get(index) {
            Some(connection) => streaming(
                connection.status,
                connection.content_type.clone(),
                scripted(connection, Arc::clone(cut)),
                shared,
            ),
            None => empty(StatusCode::NO_CONTENT),
        },
        Mode::Flood { chunks } => {
            let frames = stream::iter(chunks.clone()).map(|chunk| Ok(Frame::data(chunk)));
            streaming(StatusCode::OK, event_stream(), frames.boxed(), shared)
        }
        Mode::Hold => {
            let first = Frame::data(Bytes::from_static(b"data: open\n\n"));
            let frames = stream::once(async move { Ok(first) }).chain(stream::pending());
            streaming(StatusCode::OK, event_stream(), frames.boxed(), shared)
        }
    }
}

fn event_stream() -> HeaderValue {
    HeaderValue::from_static("text/event-stream")
}

fn empty(status: StatusCode) -> Response<SseBody> {
    let mut response = Response::new(Empty::new().map_err(|never| match never {}).boxed_unsync());
    *response.status_mut() = status;
    response
}

fn streaming(
    status: StatusCode,
    content_type: HeaderValue,
    frames: FrameStream,
    shared: &Arc<Shared>,
) -> Response<SseBody> {
    let body = StreamBody::new(Guarded {
        inner: frames,
        _open: OpenGuard::new(shared),
    });
    let mut response = Response::new(body.boxed_unsync());
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, content_type);
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// The body frames of one scripted connection; with [`SseEnding::Drop`], once the last frame
/// has been handed over it marks the connection to be cut and never ends.
fn scripted(connection: &Planned, cut: Arc<AtomicBool>) -> FrameStream {
    let chunks = stream::iter(connection.chunks.clone()).then(|chunk| async move {
        if !chunk.delay.is_zero() {
            tokio::time::sleep(chunk.delay).await;
        }
        Ok(Frame::data(chunk.bytes))
    });
    match connection.ending {
        SseEnding::End => chunks.boxed(),
        SseEnding::Drop => chunks
            .chain(stream::poll_fn(move |_| {
                cut.store(true, Ordering::Release);
                Poll::<Option<Result<Frame<Bytes>, io::Error>>>::Pending
            }))
            .boxed(),
    }
}

/// Counts a streaming response body as open for as long as it lives.
#[derive(Debug)]
struct OpenGuard {
    shared: Arc<Shared>,
}

impl OpenGuard {
    fn new(shared: &Arc<Shared>) -> Self {
        shared.open.modify(|open| *open += 1);
        Self {
            shared: Arc::clone(shared),
        }
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.shared
            .open
            .modify(|open| *open = open.saturating_sub(1));
    }
}

/// A frame stream that holds an [`OpenGuard`] until the body is dropped.
struct Guarded {
    inner: FrameStream,
    _open: OpenGuard,
}

impl Stream for Guarded {
    type Item = Result<Frame<Bytes>, io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.poll_next_unpin(cx)
    }
}

/// The connection's TCP stream, cut on the first flush after a scripted drop was requested.
///
/// hyper flushes the socket only once its own buffer is written out, so every frame handed over
/// before the drop reaches the client; failing that flush then makes hyper abandon the
/// connection without the body's terminating chunk.
struct CuttableStream {
    inner: TcpStream,
    cut: Arc<AtomicBool>,
}

impl AsyncRead for CuttableStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for CuttableStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.cut.load(Ordering::Acquire) {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "SSE script: connection dropped on purpose",
            )));
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
