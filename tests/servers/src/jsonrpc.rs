//! JSON-RPC 2.0 peers over HTTP, WebSocket and stdio, so JSON-RPC clients (id matching, error
//! responses, interleaved notifications and server-to-client requests, framing) can be tested
//! against real transports.
//!
//! Over HTTP and WebSocket every request is answered with
//! `{"jsonrpc":"2.0","id":<its id>,"result":{"echo":<params>,"method":<method>}}`, except
//! method `fail`, answered with error [`FAIL_CODE`] ([`FAIL_MESSAGE`]). A [`JsonRpcBehaviour`]
//! bends that: [`JsonRpcBehaviour::MismatchedId`] answers with another id,
//! [`JsonRpcBehaviour::ChattyFirst`] (WebSocket only) first sends a [`PROGRESS_METHOD`]
//! notification and a [`PEER_METHOD`] request of its own, and answers only once the client
//! has replied to it.
//!
//! The stdio peer ([`run_stdio_peer`], binary `ep-jsonrpc-peer`) has its own small method
//! table; see its docs.
//!
//! Malformed input is answered as JSON-RPC says (`-32700` parse error, `-32600` invalid
//! request, both with id `null` when none can be read); it never ends a server task.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::io::{self, BufRead, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{
    Request as WsRequest, Response as WsResponse,
};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::listen::{self, Serving};
use crate::record::Recorder;

/// The error code of method `fail`.
pub const FAIL_CODE: i64 = -32001;
/// The error message of method `fail`.
pub const FAIL_MESSAGE: &str = "failed on purpose";
/// The method of the notification a chatty peer sends before each answer.
pub const PROGRESS_METHOD: &str = "progress";
/// The method of the request a chatty peer sends the client before each answer.
pub const PEER_METHOD: &str = "workspace/configuration";

/// JSON-RPC's "parse error" code.
const PARSE_ERROR: i64 = -32700;
/// JSON-RPC's "invalid request" code.
const INVALID_REQUEST: i64 = -32600;
/// JSON-RPC's "method not found" code.
const METHOD_NOT_FOUND: i64 = -32601;
/// JSON-RPC's "invalid params" code.
const INVALID_PARAMS: i64 = -32602;

/// The largest message any peer here reads (an HTTP body, an NDJSON line, a Content-Length
/// body): bounded, so a runaway client cannot exhaust memory.
const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;
/// The largest Content-Length header line the stdio peer reads.
const MAX_HEADER_LINE_BYTES: usize = 8 * 1024;
/// The longest `sleep` the stdio peer honours, so a typo cannot hang a test for hours.
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// How a peer bends its answers, so a client's handling of misbehaving servers can be tested.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum JsonRpcBehaviour {
    /// Answer every request as the module docs say.
    #[default]
    Echo,
    /// Answer with an id the request did not have.
    MismatchedId,
    /// Before each answer, send a progress notification and a request of the peer's own, and
    /// wait for the client's reply to it (WebSocket only: HTTP cannot carry it).
    ChattyFirst,
}

// ---------------------------------------------------------------------------------------------
// Messages shared by every transport.

/// A JSON-RPC message, sorted by what the peer must do with it.
enum Inbound {
    /// A call to answer.
    Request {
        id: Value,
        method: String,
        params: Value,
    },
    /// A notification or a response: nothing to answer.
    Other,
    /// Not a JSON-RPC message: answer with an invalid-request error.
    Invalid { id: Value, reason: &'static str },
}

fn classify(message: &Value) -> Inbound {
    let Some(object) = message.as_object() else {
        let reason = if message.is_array() {
            "batches are not supported"
        } else {
            "a message must be a JSON object"
        };
        return Inbound::Invalid {
            id: Value::Null,
            reason,
        };
    };
    let id = object.get("id").cloned();
    match (object.get("method"), id) {
        (Some(Value::String(method)), Some(id)) => Inbound::Request {
            id,
            method: method.clone(),
            params: object.get("params").cloned().unwrap_or(Value::Null),
        },
        (Some(Value::String(_)), None) => Inbound::Other,
        (Some(_), id) => Inbound::Invalid {
            id: id.unwrap_or(Value::Null),
            reason: "method must be a string",
        },
        (None, Some(_)) if object.contains_key("result") || object.contains_key("error") => {
            Inbound::Other
        }
        (None, id) => Inbound::Invalid {
            id: id.unwrap_or(Value::Null),
            reason: "a request needs a method",
        },
    }
}

/// Whether `message` is the client's reply to the peer's request `peer_id`.
fn is_reply_to(message: &Value, peer_id: &str) -> bool {
    message.get("method").is_none()
        && message.get("id").and_then(Value::as_str) == Some(peer_id)
        && (message.get("result").is_some() || message.get("error").is_some())
}

/// An id the request did not have.
fn mismatched(id: &Value) -> Value {
    match id {
        Value::String(id) => Value::String(format!("mismatched-{id}")),
        other => Value::String(format!("mismatched-{other}")),
    }
}

fn answer_id(id: Value, mismatch: bool) -> Value {
    if mismatch { mismatched(&id) } else { id }
}

fn result(id: Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

fn error(id: Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

fn progress(request_id: &Value) -> Value {
    json!({
        "jsonrpc": "2.0",
        "method": PROGRESS_METHOD,
        "params": {"request": request_id, "message": "working on it"},
    })
}

fn peer_request(peer_id: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": peer_id, "method": PEER_METHOD, "params": {}})
}

/// The HTTP and WebSocket answer to a request.
fn echo_answer(id: Value, method: &str, params: Value, behaviour: JsonRpcBehaviour) -> Value {
    let id = answer_id(id, behaviour == JsonRpcBehaviour::MismatchedId);
    if method == "fail" {
        error(id, FAIL_CODE, FAIL_MESSAGE)
    } else {
        result(id, json!({"echo": params, "method": method}))
    }
}

// ---------------------------------------------------------------------------------------------
// (a) HTTP: one request per POST.

/// One HTTP request the JSON-RPC server received.
#[derive(Clone, Debug)]
pub struct JsonRpcHttpRequest {
    /// The HTTP method.
    pub method: Method,
    /// Path and query, as sent.
    pub path_and_query: String,
    /// Every request header.
    pub headers: HeaderMap,
    /// The request body, as received.
    pub body: Bytes,
}

impl JsonRpcHttpRequest {
    /// The body as JSON, when it is JSON.
    #[must_use]
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

#[derive(Debug)]
struct HttpShared {
    behaviour: JsonRpcBehaviour,
    requests: Recorder<Vec<JsonRpcHttpRequest>>,
}

/// A running JSON-RPC-over-HTTP peer on `127.0.0.1`: each `POST` body is one request, answered
/// in the response body (`204` for a notification). It stops when dropped.
#[derive(Debug)]
#[must_use = "the server stops when its handle is dropped"]
pub struct JsonRpcHttpServer {
    serving: Serving,
    shared: Arc<HttpShared>,
}

impl JsonRpcHttpServer {
    /// Serves with `behaviour` ([`JsonRpcBehaviour::ChattyFirst`] is refused: a server cannot
    /// call the client back within one HTTP exchange).
    ///
    /// # Errors
    /// For `ChattyFirst`, when called outside a tokio runtime, or when no loopback port can be
    /// bound.
    pub fn start(behaviour: JsonRpcBehaviour) -> io::Result<Self> {
        if behaviour == JsonRpcBehaviour::ChattyFirst {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "JSON-RPC over HTTP: ChattyFirst needs a transport the server can speak first \
                 on; use JsonRpcWsServer or the stdio peer",
            ));
        }
        let shared = Arc::new(HttpShared {
            behaviour,
            requests: Recorder::new(Vec::new()),
        });
        let for_connections = Arc::clone(&shared);
        let serving = listen::spawn("jsonrpc-http", move |stream, peer| {
            serve_http(stream, peer, Arc::clone(&for_connections))
        })?;
        Ok(Self { serving, shared })
    }

    /// The bound address.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.serving.addr()
    }

    /// The endpoint, `http://127.0.0.1:PORT/rpc` (any path is served the same).
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}/rpc", self.addr())
    }

    /// Every request received so far.
    #[must_use]
    pub fn requests(&self) -> Vec<JsonRpcHttpRequest> {
        self.shared.requests.snapshot()
    }

    /// Waits until at least `n` requests have arrived and returns them all.
    pub async fn wait_for_requests(&self, n: usize) -> Vec<JsonRpcHttpRequest> {
        self.shared
            .requests
            .wait_until(|requests| requests.len() >= n)
            .await
    }
}

async fn serve_http(stream: TcpStream, peer: SocketAddr, shared: Arc<HttpShared>) {
    let service = service_fn(move |request: Request<Incoming>| {
        let shared = Arc::clone(&shared);
        async move { Ok::<_, Infallible>(answer_http(&shared, request).await) }
    });
    if let Err(error) = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await
    {
        tracing::debug!(%peer, %error, "JSON-RPC HTTP connection ended");
    }
}

async fn answer_http(shared: &HttpShared, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let (head, body) = request.into_parts();
    let body = match Limited::new(body, MAX_MESSAGE_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) => {
            tracing::debug!(%error, "JSON-RPC HTTP body not read");
            return plain(StatusCode::PAYLOAD_TOO_LARGE, Bytes::new());
        }
    };
    shared.requests.push(JsonRpcHttpRequest {
        method: head.method.clone(),
        path_and_query: head
            .uri
            .path_and_query()
            .map_or_else(|| head.uri.path().to_owned(), |pq| pq.as_str().to_owned()),
        headers: head.headers,
        body: body.clone(),
    });
    if head.method != Method::POST {
        return plain(StatusCode::METHOD_NOT_ALLOWED, Bytes::new());
    }
    let answer = match serde_json::from_slice::<Value>(&body) {
        Err(_) => Some(error(Value::Null, PARSE_ERROR, "parse error")),
        Ok(message) => match classify(&message) {
            Inbound::Request { id, method, params } => {
                Some(echo_answer(id, &method, params, shared.behaviour))
            }
            Inbound::Other => None,
            Inbound::Invalid { id, reason } => Some(error(id, INVALID_REQUEST, reason)),
        },
    };
    match answer {
        None => plain(StatusCode::NO_CONTENT, Bytes::new()),
        Some(answer) => {
            let mut response = plain(StatusCode::OK, Bytes::from(answer.to_string()));
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            response
        }
    }
}

fn plain(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
}

// ---------------------------------------------------------------------------------------------
// (b) WebSocket: one message per text frame, in both directions.

/// One WebSocket upgrade the JSON-RPC server accepted.
#[derive(Clone, Debug)]
pub struct JsonRpcWsHandshake {
    /// Path and query of the upgrade request.
    pub path: String,
    /// The upgrade request's headers.
    pub headers: HeaderMap,
}

/// Everything the JSON-RPC WebSocket server saw, across connections, in order.
#[derive(Clone, Debug, Default)]
pub struct JsonRpcWsRecord {
    /// The accepted upgrades.
    pub handshakes: Vec<JsonRpcWsHandshake>,
    /// Every JSON message received from clients (requests, notifications, replies).
    pub received: Vec<Value>,
    /// The client requests answered (or being answered).
    pub requests: Vec<Value>,
    /// The clients' replies to the peer's own requests ([`JsonRpcBehaviour::ChattyFirst`]).
    pub peer_replies: Vec<Value>,
}

#[derive(Debug)]
struct WsShared {
    behaviour: JsonRpcBehaviour,
    record: Recorder<JsonRpcWsRecord>,
}

/// A running JSON-RPC-over-WebSocket peer on `127.0.0.1`; it stops when dropped.
#[derive(Debug)]
#[must_use = "the server stops when its handle is dropped"]
pub struct JsonRpcWsServer {
    serving: Serving,
    shared: Arc<WsShared>,
}

impl JsonRpcWsServer {
    /// Serves with `behaviour`.
    ///
    /// # Errors
    /// When called outside a tokio runtime, or when no loopback port can be bound.
    pub fn start(behaviour: JsonRpcBehaviour) -> io::Result<Self> {
        let shared = Arc::new(WsShared {
            behaviour,
            record: Recorder::new(JsonRpcWsRecord::default()),
        });
        let for_connections = Arc::clone(&shared);
        let serving = listen::spawn("jsonrpc-ws", move |stream, peer| {
            serve_ws(stream, peer, Arc::clone(&for_connections))
        })?;
        Ok(Self { serving, shared })
    }

    /// The bound address.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.serving.addr()
    }

    /// The endpoint, `ws://127.0.0.1:PORT/rpc` (any path is served the same).
    #[must_use]
    pub fn url(&self) -> String {
        format!("ws://{}/rpc", self.addr())
    }

    /// What the server saw so far.
    #[must_use]
    pub fn record(&self) -> JsonRpcWsRecord {
        self.shared.record.snapshot()
    }

    /// Waits until `done` holds for the record and returns it: lets a test wait for a reply to
    /// reach the server without sleeping.
    pub async fn wait_until(&self, done: impl FnMut(&JsonRpcWsRecord) -> bool) -> JsonRpcWsRecord {
        self.shared.record.wait_until(done).await
    }
}

async fn serve_ws(stream: TcpStream, peer: SocketAddr, shared: Arc<WsShared>) {
    #[expect(
        clippy::result_large_err,
        reason = "the signature of tungstenite's handshake callback"
    )]
    let record_handshake = |request: &WsRequest, response: WsResponse| {
        let handshake = JsonRpcWsHandshake {
            path: request.uri().path_and_query().map_or_else(
                || request.uri().path().to_owned(),
                |pq| pq.as_str().to_owned(),
            ),
            headers: request.headers().clone(),
        };
        shared
            .record
            .modify(|record| record.handshakes.push(handshake));
        Ok(response)
    };
    let ws = match tokio_tungstenite::accept_hdr_async(stream, record_handshake).await {
        Ok(ws) => ws,
        Err(error) => {
            tracing::debug!(%peer, %error, "JSON-RPC WebSocket handshake did not complete");
            return;
        }
    };
    let mut peer = WsPeer {
        ws,
        shared: &shared,
    };
    peer.converse().await;
}

/// One WebSocket connection, from the peer's side.
struct WsPeer<'a> {
    ws: WebSocketStream<TcpStream>,
    shared: &'a WsShared,
}

impl WsPeer<'_> {
    async fn converse(&mut self) {
        let chatty = self.shared.behaviour == JsonRpcBehaviour::ChattyFirst;
        let mut backlog = VecDeque::new();
        let mut peer_requests = 0_u64;
        loop {
            let message = match backlog.pop_front() {
                Some(message) => message,
                None => match self.receive().await {
                    Some(message) => message,
                    None => return,
                },
            };
            let answer = match classify(&message) {
                Inbound::Request { id, method, params } => {
                    self.shared
                        .record
                        .modify(|record| record.requests.push(message.clone()));
                    if chatty {
                        peer_requests += 1;
                        let peer_id = format!("peer-{peer_requests}");
                        if !self.send(&progress(&id)).await
                            || !self.send(&peer_request(&peer_id)).await
                        {
                            return;
                        }
                        // Requests that arrive meanwhile wait their turn in the backlog.
                        loop {
                            let Some(reply) = self.receive().await else {
                                return;
                            };
                            if is_reply_to(&reply, &peer_id) {
                                self.shared
                                    .record
                                    .modify(|record| record.peer_replies.push(reply));
                                break;
                            }
                            backlog.push_back(reply);
                        }
                    }
                    echo_answer(id, &method, params, self.shared.behaviour)
                }
                Inbound::Other => continue,
                Inbound::Invalid { id, reason } => error(id, INVALID_REQUEST, reason),
            };
            if !self.send(&answer).await {
                return;
            }
        }
    }

    /// The next JSON message from the client (recorded); `None` once the connection is over.
    /// Text that is not JSON is answered with a parse error here.
    async fn receive(&mut self) -> Option<Value> {
        loop {
            let message = match self.ws.next().await? {
                Ok(message) => message,
                Err(error) => {
                    tracing::debug!(%error, "JSON-RPC WebSocket connection failed");
                    return None;
                }
            };
            match message {
                Message::Text(text) => match serde_json::from_str::<Value>(&text) {
                    Ok(value) => {
                        self.shared
                            .record
                            .modify(|record| record.received.push(value.clone()));
                        return Some(value);
                    }
                    Err(_) => {
                        if !self
                            .send(&error(Value::Null, PARSE_ERROR, "parse error"))
                            .await
                        {
                            return None;
                        }
                    }
                },
                Message::Binary(_) => {
                    let close = CloseFrame {
                        code: CloseCode::Unsupported,
                        reason: "JSON-RPC travels in text frames".into(),
                    };
                    if let Err(error) = self.ws.close(Some(close)).await {
                        tracing::debug!(%error, "could not close after a binary frame");
                        return None;
                    }
                }
                Message::Ping(_) => {
                    if let Err(error) = self.ws.flush().await {
                        tracing::debug!(%error, "could not answer a ping");
                        return None;
                    }
                }
                Message::Pong(_) | Message::Close(_) | Message::Frame(_) => {}
            }
        }
    }

    /// Sends one message; `false` when the connection is gone.
    async fn send(&mut self, message: &Value) -> bool {
        match self.ws.send(Message::text(message.to_string())).await {
            Ok(()) => true,
            Err(error) => {
                tracing::debug!(%error, "JSON-RPC WebSocket send failed");
                false
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// (c) stdio: a child process speaking on its stdin and stdout.

/// How stdio messages are delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    /// One compact JSON value per line.
    Ndjson,
    /// `Content-Length: N\r\n\r\n` and N bytes (other headers are read and ignored).
    ContentLength,
}

/// The stdio peer's options, from its arguments.
#[derive(Clone, Debug)]
struct StdioOptions {
    framing: Framing,
    chatty: bool,
    mismatched_id: bool,
    exit_after: Option<u64>,
    stderr_noise: bool,
}

const STDIO_USAGE: &str = "usage: ep-jsonrpc-peer [--framing ndjson|content-length] [--chatty] \
                           [--mismatched-id] [--exit-after N] [--stderr-noise]";

impl StdioOptions {
    fn parse(args: &[String]) -> Result<Self, String> {
        let mut options = Self {
            framing: Framing::Ndjson,
            chatty: false,
            mismatched_id: false,
            exit_after: None,
            stderr_noise: false,
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((flag, value)) => (flag, Some(value.to_owned())),
                None => (arg.as_str(), None),
            };
            let mut value = |name: &str| {
                inline
                    .clone()
                    .or_else(|| args.next().cloned())
                    .ok_or_else(|| format!("{name} needs a value"))
            };
            match flag {
                "--framing" => {
                    options.framing = match value("--framing")?.as_str() {
                        "ndjson" => Framing::Ndjson,
                        "content-length" => Framing::ContentLength,
                        other => {
                            return Err(format!(
                                "--framing {other}: expected ndjson or content-length"
                            ));
                        }
                    };
                }
                "--exit-after" => {
                    let count = value("--exit-after")?;
                    let count = count.parse::<u64>().map_err(|_| {
                        format!("--exit-after {count}: expected a count of requests")
                    })?;
                    options.exit_after = Some(count);
                }
                "--chatty" => options.chatty = true,
                "--mismatched-id" => options.mismatched_id = true,
                "--stderr-noise" => options.stderr_noise = true,
                other => return Err(format!("unknown argument {other}")),
            }
        }
        Ok(options)
    }
}

/// Runs the stdio JSON-RPC peer on this process's stdin and stdout until stdin ends, and
/// returns the exit code: lets tests of process-spawning clients use a real child process.
///
/// Methods: `echo` → `{"echo": params}`; `fail` → error [`FAIL_CODE`]; `sleep` with
/// `{"ms": N}` → waits N ms (at most 60 s), then `{"slept_ms": N}`; anything else → `-32601`.
/// Every message written is flushed at once.
///
/// Arguments: `--framing ndjson|content-length` (default `ndjson`); `--chatty` (before each
/// answer, a [`PROGRESS_METHOD`] notification and a [`PEER_METHOD`] request with id
/// `peer-1`, `peer-2`, …, then wait for the client's reply, which is logged to stderr);
/// `--mismatched-id`; `--exit-after N` (exit 0 after answering N requests);
/// `--stderr-noise` (one stderr line per request).
///
/// Exit codes: 0 when stdin ends between messages (or after `--exit-after`), 1 for broken
/// framing or I/O errors, 2 for bad arguments.
#[must_use]
pub fn run_stdio_peer(args: &[String]) -> i32 {
    let options = match StdioOptions::parse(args) {
        Ok(options) => options,
        Err(problem) => {
            eprintln!("ep-jsonrpc-peer: {problem}\n{STDIO_USAGE}");
            return 2;
        }
    };
    let stdin = io::stdin().lock();
    let stdout = io::stdout().lock();
    match serve_stdio(&options, stdin, stdout, &mut io::stderr()) {
        Ok(()) => 0,
        Err(error) => {
            eprintln!("ep-jsonrpc-peer: {error}");
            1
        }
    }
}

/// The stdio peer's loop, over any reader and writer.
fn serve_stdio(
    options: &StdioOptions,
    mut input: impl BufRead,
    mut output: impl Write,
    log: &mut impl Write,
) -> io::Result<()> {
    let mut answered = 0_u64;
    let mut peer_requests = 0_u64;
    let mut backlog: VecDeque<Vec<u8>> = VecDeque::new();
    loop {
        if options.exit_after.is_some_and(|limit| answered >= limit) {
            return Ok(());
        }
        let raw = match backlog.pop_front() {
            Some(raw) => raw,
            None => match read_message(options.framing, &mut input)? {
                Some(raw) => raw,
                None => return Ok(()),
            },
        };
        let Ok(message) = serde_json::from_slice::<Value>(&raw) else {
            write_message(
                options.framing,
                &mut output,
                &error(Value::Null, PARSE_ERROR, "parse error"),
            )?;
            continue;
        };
        let answer = match classify(&message) {
            Inbound::Request { id, method, params } => {
                if options.stderr_noise {
                    writeln!(log, "ep-jsonrpc-peer: request {method} id {id}")?;
                }
                if options.chatty {
                    peer_requests += 1;
                    let peer_id = format!("peer-{peer_requests}");
                    write_message(options.framing, &mut output, &progress(&id))?;
                    write_message(options.framing, &mut output, &peer_request(&peer_id))?;
                    loop {
                        let Some(raw) = read_message(options.framing, &mut input)? else {
                            return Ok(());
                        };
                        match serde_json::from_slice::<Value>(&raw) {
                            Ok(reply) if is_reply_to(&reply, &peer_id) => {
                                writeln!(log, "ep-jsonrpc-peer: peer reply {reply}")?;
                                break;
                            }
                            _ => backlog.push_back(raw),
                        }
                    }
                }
                answered += 1;
                stdio_answer(answer_id(id, options.mismatched_id), &method, &params)
            }
            Inbound::Other => continue,
            Inbound::Invalid { id, reason } => error(id, INVALID_REQUEST, reason),
        };
        write_message(options.framing, &mut output, &answer)?;
    }
}

/// The stdio peer's method table.
fn stdio_answer(id: Value, method: &str, params: &Value) -> Value {
    match method {
        "echo" => result(id, json!({"echo": params})),
        "fail" => error(id, FAIL_CODE, FAIL_MESSAGE),
        "sleep" => match params.get("ms").and_then(Value::as_u64) {
            Some(ms) => {
                std::thread::sleep(Duration::from_millis(ms).min(MAX_SLEEP));
                result(id, json!({"slept_ms": ms}))
            }
            None => error(id, INVALID_PARAMS, "sleep needs params {\"ms\": N}"),
        },
        other => error(id, METHOD_NOT_FOUND, &format!("method not found: {other}")),
    }
}

/// Reads one framed message; `None` when the input ends cleanly between messages.
fn read_message(framing: Framing, input: &mut impl BufRead) -> io::Result<Option<Vec<u8>>> {
    match framing {
        Framing::Ndjson => loop {
            let Some(line) = read_line(input, MAX_MESSAGE_BYTES)? else {
                return Ok(None);
            };
            if !line.iter().all(u8::is_ascii_whitespace) {
                return Ok(Some(line));
            }
        },
        Framing::ContentLength => {
            let mut length = None;
            let mut in_header = false;
            loop {
                let Some(line) = read_line(input, MAX_HEADER_LINE_BYTES)? else {
                    if in_header {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "stdin ended inside a message header",
                        ));
                    }
                    return Ok(None);
                };
                if line.is_empty() {
                    if in_header {
                        break;
                    }
                    continue;
                }
                in_header = true;
                let line = String::from_utf8_lossy(&line);
                if let Some((name, value)) = line.split_once(':') {
                    if name.trim().eq_ignore_ascii_case("content-length") {
                        length = Some(value.trim().parse::<usize>().map_err(|_| {
                            invalid(format!("Content-Length {:?} is not a length", value.trim()))
                        })?);
                    }
                } else {
                    return Err(invalid(format!("header line {line:?} has no colon")));
                }
            }
            let length =
                length.ok_or_else(|| invalid("a message header without Content-Length".into()))?;
            if length > MAX_MESSAGE_BYTES {
                return Err(invalid(format!(
                    "Content-Length {length} is over the limit of {MAX_MESSAGE_BYTES} bytes"
                )));
            }
            let mut body = vec![0; length];
            input.read_exact(&mut body)?;
            Ok(Some(body))
        }
    }
}

/// Reads one line without its `\n` or `\r\n`, at most `limit` bytes; `None` at end of input.
fn read_line(input: &mut impl BufRead, limit: usize) -> io::Result<Option<Vec<u8>>> {
    let mut line = Vec::new();
    let read = input
        .by_ref()
        .take(u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1))
        .read_until(b'\n', &mut line)?;
    if read == 0 {
        return Ok(None);
    }
    if line.last() == Some(&b'\n') {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
    } else if line.len() > limit {
        return Err(invalid(format!("a line longer than {limit} bytes")));
    }
    Ok(Some(line))
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// Writes one framed message and flushes it.
fn write_message(framing: Framing, output: &mut impl Write, message: &Value) -> io::Result<()> {
    let body = serde_json::to_vec(message)?;
    match framing {
        Framing::Ndjson => {
            output.write_all(&body)?;
            output.write_all(b"\n")?;
        }
        Framing::ContentLength => {
            write!(output, "Content-Length: {}\r\n\r\n", body.len())?;
            output.write_all(&body)?;
        }
    }
    output.flush()
}
