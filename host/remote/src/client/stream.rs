//! Streams over the network API: `POST /v1/stream` on a connection of its own per stream, its
//! SSE frames parsed into typed [`StreamItem`]s (the events, then exactly one terminal item).
//! Dropping a stream closes its connection, which is how the server learns to cancel it.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use ep_contracts::boundary::{AdmissionRequest, ExecutionEvent, ExecutionRef, ExecutionResult};
use ep_node::RuntimeError;
use futures::StreamExt;
use futures::stream::BoxStream;
use http::header::{ACCEPT, CONTENT_TYPE, HOST, HeaderValue};
use http::{Method, Response};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::task::JoinHandle;

use super::{EXECUTION_REF_HEADER, EXECUTION_TOKEN_HEADER, RemoteRuntimeClient, error_chain};
use crate::error::{ApiError, CallError};
use crate::sse::SseParser;

/// One item of a remote stream: the execution's events, then exactly one terminal item.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamItem {
    /// An execution event frame.
    Event(ExecutionEvent),
    /// The `result` frame (no `events`; they were the frames before it). Terminal.
    Result(ExecutionResult),
    /// The stream ended without its `result` frame (why, for logs). Terminal.
    Cut(String),
}

/// A stream opened by [`RemoteRuntimeClient::open_items`].
pub struct OpenedItems {
    /// The execution the host named in `x-execution-ref` (none from a host that does not).
    pub execution_ref: Option<ExecutionRef>,
    /// Its frames, as typed items.
    pub items: BoxStream<'static, StreamItem>,
}

impl std::fmt::Debug for OpenedItems {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenedItems")
            .field("execution_ref", &self.execution_ref)
            .finish_non_exhaustive()
    }
}

impl RemoteRuntimeClient {
    /// Opens `POST /v1/stream` on a connection of its own and returns its frames as typed
    /// items: the events, then the result (or a cut). Dropping the stream closes the
    /// connection, which cancels the execution on the server.
    pub async fn stream_items(
        &self,
        request: AdmissionRequest,
    ) -> Result<BoxStream<'static, StreamItem>, RuntimeError> {
        self.open_items(request).await.map(|opened| opened.items)
    }

    /// [`RemoteRuntimeClient::stream_items`], also answering the execution ref the host named
    /// when the stream opened (before any event), so a caller can send it input
    /// ([`RuntimeClient::send_input`]) or cancel it at once.
    pub async fn open_items(&self, request: AdmissionRequest) -> Result<OpenedItems, RuntimeError> {
        let body = Bytes::from(ep_contracts::dump(&request));
        let opening = self.open_stream(body, request.provenance.is_direct());
        let opened = match self.inner.request_timeout {
            Some(limit) => tokio::time::timeout(limit, opening)
                .await
                .unwrap_or_else(|_| {
                    Err(CallError::Timeout {
                        url: self.inner.base.path("/v1/stream"),
                        millis: limit.as_millis(),
                    })
                }),
            None => opening.await,
        };
        let (response, connection) = opened.map_err(|e| RuntimeError::Transport(e.to_string()))?;
        let status = response.status();
        let is_event_stream = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let url = self.inner.base.path("/v1/stream");
        let mut named = None;
        if status.is_success() {
            let header = |name: &str| {
                response
                    .headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            if let (Some(reference), Some(token)) =
                (header(EXECUTION_REF_HEADER), header(EXECUTION_TOKEN_HEADER))
            {
                self.inner.tokens.remember(&reference, &token);
            }
            named = header(EXECUTION_REF_HEADER).map(ExecutionRef::from_string);
        }
        if !(status.is_success() && is_event_stream) {
            let answer = self
                .read(response, &url)
                .await
                .map_err(|e| RuntimeError::Transport(e.to_string()))?;
            drop(connection);
            return Err(
                ApiError::from_response(status.as_u16(), &answer.body).into_runtime_error(None)
            );
        }
        Ok(OpenedItems {
            execution_ref: named,
            items: frames(
                response.into_body(),
                connection,
                self.inner.max_frame_bytes,
                self.inner.stream_idle_timeout,
                url,
            ),
        })
    }

    /// A dedicated HTTP/1.1 (or h2c) connection for one stream and the answer's head; `direct`
    /// requests carry the operator token.
    async fn open_stream(
        &self,
        body: Bytes,
        direct: bool,
    ) -> Result<(Response<Incoming>, ConnectionGuard), CallError> {
        let base = &self.inner.base;
        let address = base.host_port();
        let tcp = tokio::time::timeout(
            self.inner.connect_timeout,
            tokio::net::TcpStream::connect(&address),
        )
        .await
        .map_err(|_| CallError::Connect {
            url: base.url.clone(),
            reason: format!(
                "connect timed out after {} ms",
                self.inner.connect_timeout.as_millis()
            ),
        })?
        .map_err(|e| CallError::Connect {
            url: base.url.clone(),
            reason: e.to_string(),
        })?;
        // Small frames must not wait for Nagle; a failure here only costs latency.
        let _ = tcp.set_nodelay(true);
        let io = TokioIo::new(tcp);
        let connect_error = |e: hyper::Error| CallError::Connect {
            url: base.url.clone(),
            reason: error_chain(&e),
        };
        let mut request = self.request(
            Method::POST,
            "/v1/stream",
            Some(body),
            self.operator_authorization(direct),
        )?;
        request
            .headers_mut()
            .insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
        let (response, task) = if self.inner.http2 {
            let (mut sender, connection) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                    .await
                    .map_err(connect_error)?;
            let guard = ConnectionGuard::spawn(connection);
            let response = sender.send_request(request).await;
            (response, guard)
        } else {
            let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
                .await
                .map_err(connect_error)?;
            let guard = ConnectionGuard::spawn(connection);
            // HTTP/1.1 wants the origin form plus a Host header.
            let path = base.path("/v1/stream");
            *request.uri_mut() =
                path.parse()
                    .map_err(|e: http::uri::InvalidUri| CallError::Connect {
                        url: base.url.clone(),
                        reason: e.to_string(),
                    })?;
            if let Ok(host) = HeaderValue::from_str(base.authority.as_str()) {
                request.headers_mut().insert(HOST, host);
            }
            let response = sender.send_request(request).await;
            (response, guard)
        };
        let response = response.map_err(|e| CallError::Disconnected {
            url: base.path("/v1/stream"),
            reason: error_chain(&e),
        })?;
        Ok((response, task))
    }
}

/// Aborts the stream's connection task when dropped, so the socket closes.
struct ConnectionGuard(JoinHandle<()>);

impl ConnectionGuard {
    /// Drives `connection` on a task of its own, aborted when the guard is dropped.
    fn spawn(
        connection: impl std::future::Future<Output = Result<(), hyper::Error>> + Send + 'static,
    ) -> Self {
        Self(tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "stream connection ended");
            }
        }))
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The parsing state of an open stream.
struct Frames {
    body: Incoming,
    parser: SseParser,
    ready: VecDeque<StreamItem>,
    /// The stream's own connection, closed as soon as the stream is done or dropped.
    connection: Option<ConnectionGuard>,
    max_frame_bytes: usize,
    idle_timeout: Option<Duration>,
    url: String,
    done: bool,
}

fn frames(
    body: Incoming,
    connection: ConnectionGuard,
    max_frame_bytes: usize,
    idle_timeout: Option<Duration>,
    url: String,
) -> BoxStream<'static, StreamItem> {
    let state = Frames {
        body,
        parser: SseParser::new(),
        ready: VecDeque::new(),
        connection: Some(connection),
        max_frame_bytes,
        idle_timeout,
        url,
        done: false,
    };
    futures::stream::unfold(state, |mut state| async move {
        let item = state.next_item().await?;
        Some((item, state))
    })
    .boxed()
}

impl Frames {
    async fn next_item(&mut self) -> Option<StreamItem> {
        loop {
            if let Some(item) = self.ready.pop_front() {
                if matches!(item, StreamItem::Result(_) | StreamItem::Cut(_)) {
                    self.finish();
                }
                return Some(item);
            }
            if self.done {
                return None;
            }
            let next = match self.idle_timeout {
                Some(limit) => match tokio::time::timeout(limit, self.body.frame()).await {
                    Ok(next) => next,
                    Err(_) => {
                        return Some(self.cut(format!(
                            "no bytes for {} ms (idle timeout)",
                            limit.as_millis()
                        )));
                    }
                },
                None => self.body.frame().await,
            };
            let chunk = match next {
                None => return Some(self.cut("the server closed the stream".to_owned())),
                Some(Err(error)) => return Some(self.cut(error_chain(&error))),
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => data,
                    // Trailers carry nothing this client uses.
                    Err(_) => continue,
                },
            };
            match self.parser.push_limited(&chunk, self.max_frame_bytes) {
                Ok(parsed) => {
                    for frame in parsed {
                        if let Some(item) = self.item(&frame.event, &frame.data) {
                            self.ready.push_back(item);
                        }
                    }
                }
                Err(error) => return Some(self.cut(error.to_string())),
            }
        }
    }

    /// One frame as an item (`None` for event names this client does not know).
    fn item(&self, event: &str, data: &str) -> Option<StreamItem> {
        match event {
            "execution_event" => Some(match ep_contracts::parse::<ExecutionEvent>(data) {
                Ok(event) => StreamItem::Event(event),
                Err(e) => StreamItem::Cut(format!("an execution_event frame is not an event: {e}")),
            }),
            "result" => Some(match ep_contracts::parse::<ExecutionResult>(data) {
                Ok(result) => StreamItem::Result(result),
                Err(e) => StreamItem::Cut(format!("the result frame is not a result: {e}")),
            }),
            other => {
                tracing::debug!(
                    event = other,
                    url = self.url,
                    "ignoring unknown stream frame"
                );
                None
            }
        }
    }

    fn cut(&mut self, why: String) -> StreamItem {
        self.finish();
        StreamItem::Cut(why)
    }

    /// Nothing more comes out; the connection is closed now rather than when the caller
    /// drops the stream.
    fn finish(&mut self) {
        self.done = true;
        self.ready.clear();
        self.connection = None;
    }
}
