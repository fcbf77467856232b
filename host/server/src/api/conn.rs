//! Accepting and serving connections: at most `max_connections` at once (more wait in the
//! kernel's accept backlog), HTTP/1.1 or h2c per connection (`hyper_util`'s auto builder), the
//! header size and header read timeout of `[server]`, and an idle timeout that closes a
//! keep-alive connection with no request in flight. Closing is graceful: a connection asked to
//! close finishes the requests it is serving first.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::AbortHandle;

use super::Shared;
use super::body::ApiBody;
use crate::error::ServeError;
use crate::lifecycle::RunningServer;

/// hyper's smallest HTTP/1.1 read buffer.
const MIN_HEADER_BUFFER: usize = 8192;

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
    let permits = Arc::new(Semaphore::new(shared.options.limits.max_connections.max(1)));
    loop {
        if *stop.borrow() {
            break;
        }
        let permit = tokio::select! {
            _ = stop.changed() => break,
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
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
        let id = connections.next.fetch_add(1, Ordering::Relaxed) as u64;
        let task = {
            let shared = Arc::clone(&shared);
            let closing = closing.clone();
            let connections = Arc::clone(&connections);
            tokio::spawn(async move {
                serve_connection(shared, stream, peer, closing, permit).await;
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

async fn serve_connection(
    shared: Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    mut close: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
) {
    let limits = shared.options.limits.clone();
    let activity = Arc::new(Activity {
        active: AtomicUsize::new(0),
        last: Mutex::new(Instant::now()),
    });
    let service = {
        let activity = Arc::clone(&activity);
        service_fn(move |request| {
            let shared = Arc::clone(&shared);
            let guard = activity.enter();
            async move {
                let response = super::handlers::handle(shared, request, peer).await;
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
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(MIN_HEADER_BUFFER))
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    let idle = limits.idle_timeout;
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
            _ = ticker.tick(), if !closing => {
                if activity.idle_for() >= idle {
                    tracing::debug!(%peer, "closing idle connection");
                    closing = true;
                    connection.as_mut().graceful_shutdown();
                }
            }
        }
    }
}
