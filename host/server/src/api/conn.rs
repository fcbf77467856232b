//! Accepting and serving connections: at most `max_connections` at once, HTTP/1.1 or h2c per
//! connection (`hyper_util`'s auto builder), the header size and header read timeout of
//! `[server]`, the body timing of [`BodyTiming`] (a late body is 408 and closes its
//! connection), and an idle timeout that closes a keep-alive connection with no request in
//! flight. Closing is graceful: a connection asked to close finishes the requests it is serving
//! first.
//!
//! When every one of the `max_connections` is taken (a flood of stalled clients, say), up to
//! `reserve_connections` more are accepted as *reserved* connections, so the host stays
//! manageable: HTTP/1.1 only, one request each, a short header timeout
//! (`reserve_header_timeout_ms`), serving only `/healthz`, `/metrics` and requests carrying the
//! operator token; anything else answers 503 `connections_exhausted` at once. A reserved
//! connection that is not serving an operator request is cut once
//! [`RESERVE_LIFETIME_FACTOR`] header timeouts have passed, so clients that never read their
//! answer cannot keep the reserve either. Beyond the reserve, connections wait in the kernel's
//! accept backlog.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{CONNECTION, RETRY_AFTER};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, Version};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::AbortHandle;

use super::Shared;
use super::body::{ApiBody, BodyTiming, error_response};
use super::errors::ApiError;
use super::router::{Route, route};
use crate::error::ServeError;
use crate::lifecycle::RunningServer;

/// hyper's smallest HTTP/1.1 read buffer.
const MIN_HEADER_BUFFER: usize = 8192;

/// A reserved connection not serving an operator request lives at most this many
/// `reserve_header_timeout`s.
pub(crate) const RESERVE_LIFETIME_FACTOR: u32 = 3;

/// Which share of the connections one connection holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// One of `max_connections`: every route.
    Normal,
    /// One of `reserve_connections`: health, metrics and the operator, one request.
    Reserved,
}

/// The permit a connection holds while it is open.
struct Slot {
    kind: Kind,
    _permit: OwnedSemaphorePermit,
}

/// The two pools of connection permits.
struct Permits {
    normal: Arc<Semaphore>,
    reserved: Arc<Semaphore>,
}

impl Permits {
    /// A normal permit when one is free, else a reserved one; waits while neither is.
    async fn acquire(&self) -> Option<Slot> {
        if let Some(slot) = self.try_normal() {
            return Some(slot);
        }
        if let Ok(permit) = Arc::clone(&self.reserved).try_acquire_owned() {
            return Some(Slot {
                kind: Kind::Reserved,
                _permit: permit,
            });
        }
        tokio::select! {
            biased;
            permit = Arc::clone(&self.normal).acquire_owned() => permit.ok().map(|permit| Slot {
                kind: Kind::Normal,
                _permit: permit,
            }),
            permit = Arc::clone(&self.reserved).acquire_owned() => permit.ok().map(|permit| Slot {
                kind: Kind::Reserved,
                _permit: permit,
            }),
        }
    }

    fn try_normal(&self) -> Option<Slot> {
        Arc::clone(&self.normal)
            .try_acquire_owned()
            .ok()
            .map(|permit| Slot {
                kind: Kind::Normal,
                _permit: permit,
            })
    }
}

/// The connection tasks of one server, so shutdown can wait for them and abort stragglers.
#[derive(Default)]
pub(crate) struct Connections {
    tasks: Mutex<HashMap<u64, AbortHandle>>,
    next: AtomicUsize,
    pub(crate) closed: Notify,
}

impl Connections {
    fn tasks(&self) -> MutexGuard<'_, HashMap<u64, AbortHandle>> {
        self.tasks.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Connections open now.
    pub(crate) fn open(&self) -> usize {
        self.tasks().len()
    }

    /// Aborts every connection still open; returns how many.
    pub(crate) fn abort_all(&self) -> usize {
        let tasks = std::mem::take(&mut *self.tasks());
        for task in tasks.values() {
            task.abort();
        }
        self.closed.notify_waiters();
        tasks.len()
    }

    fn finished(&self, id: u64) {
        self.tasks().remove(&id);
        self.closed.notify_waiters();
    }
}

/// Starts the accept loop on `listener` and hands back the running server.
pub(crate) fn spawn(
    shared: Arc<Shared>,
    listener: TcpListener,
) -> Result<RunningServer, ServeError> {
    let addr = listener.local_addr().map_err(|source| ServeError::Bind {
        addr: SocketAddr::from(([0, 0, 0, 0], 0)),
        source,
    })?;
    let (stop_accepting, accepting) = watch::channel(false);
    let (close_connections, closing) = watch::channel(false);
    let connections = Arc::new(Connections::default());
    let task = tokio::spawn(accept_loop(
        Arc::clone(&shared),
        listener,
        accepting,
        closing,
        Arc::clone(&connections),
    ));
    tracing::info!(%addr, "serving the execution plane API");
    Ok(RunningServer::new(
        addr,
        shared,
        stop_accepting,
        close_connections,
        task,
        connections,
    ))
}

async fn accept_loop(
    shared: Arc<Shared>,
    listener: TcpListener,
    mut stop: watch::Receiver<bool>,
    closing: watch::Receiver<bool>,
    connections: Arc<Connections>,
) {
    let limits = &shared.options.limits;
    let permits = Permits {
        normal: Arc::new(Semaphore::new(limits.max_connections.max(1))),
        reserved: Arc::new(Semaphore::new(limits.reserve_connections)),
    };
    loop {
        if *stop.borrow() {
            break;
        }
        let slot = tokio::select! {
            _ = stop.changed() => break,
            slot = permits.acquire() => match slot {
                Some(slot) => slot,
                None => break,
            },
        };
        let (stream, peer) = tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        // A normal slot freed while this one waited for a connection: take it instead.
        let slot = match slot.kind {
            Kind::Reserved => permits.try_normal().unwrap_or(slot),
            Kind::Normal => slot,
        };
        if slot.kind == Kind::Reserved {
            tracing::debug!(%peer, "every connection is taken; serving a reserved one");
        }
        let id = connections.next.fetch_add(1, Ordering::Relaxed) as u64;
        let task = {
            let shared = Arc::clone(&shared);
            let closing = closing.clone();
            let connections = Arc::clone(&connections);
            tokio::spawn(async move {
                serve_connection(shared, stream, peer, closing, slot).await;
                connections.finished(id);
            })
        };
        connections.tasks().insert(id, task.abort_handle());
        if task.is_finished() {
            connections.finished(id);
        }
    }
    tracing::info!("stopped accepting connections");
}

/// Whether a connection is serving a request, and since when it has not.
struct Activity {
    active: AtomicUsize,
    last: Mutex<Instant>,
}

impl Activity {
    fn idle_for(&self) -> Duration {
        if self.active.load(Ordering::SeqCst) > 0 {
            return Duration::ZERO;
        }
        self.last
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .elapsed()
    }

    fn enter(self: &Arc<Self>) -> ActivityGuard {
        self.active.fetch_add(1, Ordering::SeqCst);
        ActivityGuard(Arc::clone(self))
    }
}

/// One request in flight, until its response body is done.
struct ActivityGuard(Arc<Activity>);

impl Drop for ActivityGuard {
    fn drop(&mut self) {
        *self.0.last.lock().unwrap_or_else(PoisonError::into_inner) = Instant::now();
        self.0.active.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A response body that keeps its request counted as active until it ends.
struct GuardedBody {
    inner: ApiBody,
    _guard: ActivityGuard,
}

impl Body for GuardedBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Whether a reserved connection may serve `request`: `/healthz`, `/metrics`, or any request
/// carrying the operator token.
fn reserve_admits(shared: &Shared, request: &Request<Incoming>) -> Admitted {
    if matches!(
        route(request.method(), request.uri().path()),
        Ok(Route::Healthz | Route::Metrics)
    ) {
        return Admitted::Health;
    }
    match shared.options.operator_token.as_deref() {
        Some(token) if carries_token(request.headers(), token) => Admitted::Operator,
        _ => Admitted::No,
    }
}

/// What a reserved connection does with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Admitted {
    Health,
    Operator,
    No,
}

/// `authorization: Bearer <token>` with exactly `token` (compared in constant time); the
/// handlers check it again with their own answers for a wrong one.
fn carries_token(headers: &HeaderMap, token: &str) -> bool {
    super::handlers::bearer(headers).is_some_and(|presented| {
        super::handlers::constant_time_eq(presented.as_bytes(), token.as_bytes())
    })
}

/// The 503 a reserved connection answers a request it does not serve.
fn reserve_refusal(shared: &Shared, request: &Request<Incoming>) -> Response<ApiBody> {
    let name = route(request.method(), request.uri().path()).map_or("unmatched", |r| r.name());
    let mut response = error_response(&ApiError::connections_exhausted(
        shared.options.limits.max_connections,
    ));
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from_static("1"));
    shared
        .metrics
        .count_request(name, StatusCode::SERVICE_UNAVAILABLE.as_u16());
    response
}

/// Answers one request of a connection of `kind`; `operator` is set when a reserved
/// connection starts serving an operator request (which then may take as long as it needs).
async fn answer(
    shared: Arc<Shared>,
    request: Request<Incoming>,
    peer: SocketAddr,
    kind: Kind,
    operator: &AtomicBool,
) -> Response<ApiBody> {
    let http1 = request.version() < Version::HTTP_2;
    let mut response = match kind {
        Kind::Reserved => match reserve_admits(&shared, &request) {
            Admitted::No => reserve_refusal(&shared, &request),
            admitted => {
                if admitted == Admitted::Operator {
                    operator.store(true, Ordering::SeqCst);
                }
                let timing = BodyTiming::of(&shared.options.limits);
                timing
                    .scope(super::handlers::handle(shared, request, peer))
                    .await
            }
        },
        Kind::Normal => {
            let timing = BodyTiming::of(&shared.options.limits);
            timing
                .scope(super::handlers::handle(shared, request, peer))
                .await
        }
    };
    // A late body leaves the connection mid-request, and a reserved connection serves one
    // request: both close once answered.
    if http1 && (kind == Kind::Reserved || response.status() == StatusCode::REQUEST_TIMEOUT) {
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

async fn serve_connection(
    shared: Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    mut close: watch::Receiver<bool>,
    slot: Slot,
) {
    let limits = shared.options.limits.clone();
    let kind = slot.kind;
    let activity = Arc::new(Activity {
        active: AtomicUsize::new(0),
        last: Mutex::new(Instant::now()),
    });
    let operator = Arc::new(AtomicBool::new(false));
    let service = {
        let activity = Arc::clone(&activity);
        let operator = Arc::clone(&operator);
        service_fn(move |request| {
            let shared = Arc::clone(&shared);
            let operator = Arc::clone(&operator);
            let guard = activity.enter();
            async move {
                let response = answer(shared, request, peer, kind, &operator).await;
                Ok::<_, Infallible>(response.map(|inner| {
                    GuardedBody {
                        inner,
                        _guard: guard,
                    }
                    .boxed_unsync()
                }))
            }
        })
    };
    let (header_timeout, idle) = match kind {
        Kind::Normal => (limits.header_read_timeout, limits.idle_timeout),
        Kind::Reserved => (limits.reserve_header_timeout, limits.reserve_header_timeout),
    };
    let mut builder = auto::Builder::new(TokioExecutor::new());
    if kind == Kind::Reserved {
        builder = builder.http1_only();
    }
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .max_buf_size(limits.max_header_bytes.max(MIN_HEADER_BUFFER))
        .keep_alive(kind == Kind::Normal);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    let opened = Instant::now();
    let lifetime = header_timeout.saturating_mul(RESERVE_LIFETIME_FACTOR);
    let mut ticker =
        tokio::time::interval((idle / 4).clamp(Duration::from_millis(10), Duration::from_secs(1)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut closing = false;
    if *close.borrow() {
        closing = true;
        connection.as_mut().graceful_shutdown();
    }
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%peer, %error, "connection ended with an error");
                }
                break;
            }
            _ = close.changed(), if !closing => {
                closing = true;
                connection.as_mut().graceful_shutdown();
            }
            _ = ticker.tick() => {
                if kind == Kind::Reserved
                    && !operator.load(Ordering::SeqCst)
                    && opened.elapsed() >= lifetime
                {
                    tracing::debug!(%peer, "cutting a reserved connection that outlived its time");
                    break;
                }
                if !closing && activity.idle_for() >= idle {
                    tracing::debug!(%peer, "closing idle connection");
                    closing = true;
                    connection.as_mut().graceful_shutdown();
                }
            }
        }
    }
}
