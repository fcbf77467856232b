//! The server's lifecycle: a [`RunningServer`] handle, the graceful shutdown it performs, and
//! the signal loop `serve` runs ([`run_until_signalled`]).
//!
//! Shutdown, in order: stop accepting; `/healthz` answers 503 `draining` and new executions 503
//! `shutting_down`; executions and streams in flight get up to the drain timeout to finish; the
//! rest are cancelled through the node (`execution.cancelled`; their results are `cancellation`
//! failures) and open streams are cut with a final `cancellation` result frame; connections
//! close gracefully (stragglers are aborted after a short grace); evidence is flushed
//! ([`Node::shutdown`]). SIGHUP reloads the policy and the plugin directory instead.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ep_contracts::boundary::ExecutionRef;
use ep_node::node::Node;
use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::api::Shared;
use crate::api::conn::Connections;
use crate::error::ServeError;
use crate::metrics::Metrics;
use crate::service::Service;

/// How long cancelled executions get to hand back their `cancellation` results.
const CANCEL_GRACE: Duration = Duration::from_secs(5);
/// How often executions still running after their cancel are cancelled again.
const RECANCEL_EVERY: Duration = Duration::from_millis(500);
/// How long connections get to close once asked to.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// Poll period while waiting (a safety net under the notifications).
const POLL: Duration = Duration::from_millis(20);

/// What a shutdown did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[must_use]
pub struct ShutdownReport {
    /// Executions and streams in flight when the drain began.
    pub in_flight: usize,
    /// Of those, how many finished within the drain timeout.
    pub drained: usize,
    /// Unary executions cancelled when the drain timed out.
    pub cancelled: usize,
    /// Streams cut when the drain timed out.
    pub streams_cut: usize,
    /// Connections aborted because they did not close in time.
    pub connections_aborted: usize,
    /// The evidence flush error, if any sink failed to flush.
    pub flush_error: Option<String>,
}

/// A server accepting connections; [`RunningServer::shutdown`] stops it.
#[must_use = "dropping the handle leaves the server running until the runtime stops"]
pub struct RunningServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop_accepting: watch::Sender<bool>,
    close_connections: watch::Sender<bool>,
    accept_task: JoinHandle<()>,
    connections: Arc<Connections>,
    service: Option<Arc<Service>>,
}

impl std::fmt::Debug for RunningServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl RunningServer {
    pub(crate) fn new(
        addr: SocketAddr,
        shared: Arc<Shared>,
        stop_accepting: watch::Sender<bool>,
        close_connections: watch::Sender<bool>,
        accept_task: JoinHandle<()>,
        connections: Arc<Connections>,
    ) -> Self {
        Self {
            addr,
            shared,
            stop_accepting,
            close_connections,
            accept_task,
            connections,
            service: None,
        }
    }

    pub(crate) fn with_service(mut self, service: Arc<Service>) -> Self {
        self.service = Some(service);
        self
    }

    /// The address it listens on (the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The node it serves.
    pub fn node(&self) -> &Node {
        &self.shared.node
    }

    /// Its metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.shared.metrics
    }

    /// The service it was started with by [`crate::start`] (none for [`crate::serve_node`]).
    pub fn service(&self) -> Option<&Arc<Service>> {
        self.service.as_ref()
    }

    /// Stops the server gracefully (see the module docs); `drain` bounds the wait for
    /// executions in flight.
    pub async fn shutdown(mut self, drain: Duration) -> ShutdownReport {
        let shared = &self.shared;
        shared
            .draining
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = self.stop_accepting.send(true);
        let _ = (&mut self.accept_task).await;
        let in_flight = shared.in_flight();
        tracing::info!(in_flight, drain_ms = drain.as_millis() as u64, "draining");
        let mut report = ShutdownReport {
            in_flight,
            ..ShutdownReport::default()
        };
        let drained = wait_until(Instant::now() + drain, || shared.in_flight() == 0).await;
        if drained {
            report.drained = in_flight;
        } else {
            let left = shared.in_flight();
            report.drained = in_flight.saturating_sub(left);
            report.streams_cut = shared.cut_streams();
            report.cancelled = cancel_running(shared).await;
            tracing::warn!(
                cancelled = report.cancelled,
                streams_cut = report.streams_cut,
                "drain timed out; executions in flight cancelled"
            );
            let deadline = Instant::now() + CANCEL_GRACE;
            while !wait_until((Instant::now() + RECANCEL_EVERY).min(deadline), || {
                shared.in_flight() == 0
            })
            .await
                && Instant::now() < deadline
            {
                cancel_running(shared).await;
            }
        }
        let _ = self.close_connections.send(true);
        let connections = &self.connections;
        if !wait_until(Instant::now() + CLOSE_GRACE, || connections.open() == 0).await {
            report.connections_aborted = connections.abort_all();
        }
        if let Some(service) = &self.service {
            service.stop().await;
        }
        if let Err(error) = shared.node.shutdown().await {
            report.flush_error = Some(error.to_string());
        }
        tracing::info!(?report, "server stopped");
        report
    }
}

/// Cancels every unary execution still running; returns how many.
async fn cancel_running(shared: &Shared) -> usize {
    let running = shared.metrics.running_executions();
    for reference in &running {
        if let Err(error) = shared
            .node
            .cancel_with_cause(&ExecutionRef::from_string(reference.as_str()), "shutdown")
            .await
        {
            tracing::warn!(execution_ref = reference.as_str(), %error, "cancel at shutdown failed");
        }
    }
    running.len()
}

/// Waits until `done()` or `deadline`; whether `done()` held.
async fn wait_until(deadline: Instant, done: impl Fn() -> bool) -> bool {
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL.min(deadline.saturating_duration_since(Instant::now()))).await;
    }
}

/// Serves until SIGINT or SIGTERM, then shuts down with `drain`; SIGHUP reloads the service's
/// configuration (policy and plugin directory) meanwhile. Install [`StopSignals`] before the
/// server announces itself instead, so no signal can arrive before it is handled.
pub async fn run_until_signalled(
    server: RunningServer,
    drain: Duration,
) -> Result<ShutdownReport, ServeError> {
    StopSignals::install()?.run(server, drain).await
}

/// The stop and reload signals, installed (so their default actions no longer apply) until
/// [`StopSignals::run`] handles them. Needs a tokio runtime.
#[derive(Debug)]
pub struct StopSignals {
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    hangup: tokio::signal::unix::Signal,
}

impl StopSignals {
    /// Installs the handlers for SIGTERM, SIGINT and SIGHUP (Ctrl-C elsewhere).
    pub fn install() -> Result<Self, ServeError> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let install = |kind: SignalKind, name: &str| {
                signal(kind).map_err(|source| ServeError::Io {
                    path: format!("<signal {name}>").into(),
                    source,
                })
            };
            Ok(Self {
                terminate: install(SignalKind::terminate(), "SIGTERM")?,
                interrupt: install(SignalKind::interrupt(), "SIGINT")?,
                hangup: install(SignalKind::hangup(), "SIGHUP")?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Self {})
        }
    }

    /// Serves until a stop signal, reloading on SIGHUP, then shuts `server` down with `drain`.
    pub async fn run(
        mut self,
        server: RunningServer,
        drain: Duration,
    ) -> Result<ShutdownReport, ServeError> {
        self.wait_for_stop(&server).await?;
        tracing::info!("stop signal received; shutting down");
        Ok(server.shutdown(drain).await)
    }

    #[cfg(unix)]
    async fn wait_for_stop(&mut self, server: &RunningServer) -> Result<(), ServeError> {
        loop {
            tokio::select! {
                _ = self.terminate.recv() => return Ok(()),
                _ = self.interrupt.recv() => return Ok(()),
                _ = self.hangup.recv() => {
                    if let Some(service) = server.service() {
                        let report = service.reload().await;
                        tracing::info!(
                            status = report.status,
                            errors = ?report.errors,
                            "SIGHUP reload"
                        );
                    }
                }
            }
        }
    }

    #[cfg(not(unix))]
    async fn wait_for_stop(&mut self, _server: &RunningServer) -> Result<(), ServeError> {
        tokio::signal::ctrl_c()
            .await
            .map_err(|source| ServeError::Io {
                path: "<ctrl-c>".into(),
                source,
            })
    }
}
