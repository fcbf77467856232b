//! Per-lane limits ([`LaneLimits`]) and the per-lane admission gate: at most
//! `max_concurrent` executions run at once, at most `max_queued` more wait for a turn, and
//! anything beyond is refused at once as a failed result (`placement_unavailable`,
//! cause `lane_saturated`) rather than queued without bound.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// What one lane generation may use. Per execution: memory, tables, instances, handles, events,
/// console bytes and the default deadline; per lane: concurrency and queue length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaneLimits {
    /// Bytes over all linear memories of one instance (capped by the runtime's
    /// `max_memory_per_instance`).
    pub max_memory_bytes: usize,
    /// Elements over all tables of one instance.
    pub max_table_elements: usize,
    /// Core instances one component instance may create.
    pub max_instances: usize,
    /// Tables one component instance may create.
    pub max_tables: usize,
    /// Linear memories one component instance may create.
    pub max_memories: usize,
    /// Live component-model handles (guest resources, borrows) in one store.
    pub max_component_handles: usize,
    /// Host resources (WASI streams, pollables, ...) in one store's resource table.
    pub max_host_resources: usize,
    /// Events one execution (or one stream pull) may emit through `events.emit`.
    pub max_events: usize,
    /// Bytes of event payload one execution may emit.
    pub max_event_bytes: usize,
    /// Bytes of guest stdout/stderr kept (the rest is counted and dropped).
    pub max_console_bytes: usize,
    /// Log lines one execution may write through `logging.log` (the rest are dropped).
    pub max_log_lines: usize,
    /// Deadline when the request's metadata has no `timeout_ms`.
    pub default_timeout: Duration,
    /// Upper bound on any deadline, whatever the request asks for.
    pub max_timeout: Duration,
    /// Deadline of the synchronous `validate` call and of the load-time `capabilities` probe.
    pub validate_timeout: Duration,
    /// Executions and streams of this lane running at once.
    pub max_concurrent: usize,
    /// Executions waiting for a turn; beyond it an execution fails with `lane_saturated`.
    pub max_queued: usize,
    /// Bytes of one outbound HTTP response body a lane may receive.
    pub max_response_bytes: u64,
    /// Events one stream may yield in all (its budget); the stream then ends with a
    /// `policy_denied` failure (cause `stream_event_budget`).
    pub max_stream_events: u64,
    /// How long one stream may live in all, whatever each pull's deadline; it then ends with a
    /// `timeout` failure (cause `stream_lifetime`).
    pub max_stream_lifetime: Duration,
}

/// Default event budget of one stream: a lane that needs more asks in its manifest and the
/// operator raises the policy ceiling.
pub const DEFAULT_STREAM_EVENTS: u64 = 100_000;
/// Default lifetime of one stream (5 minutes).
pub const DEFAULT_STREAM_LIFETIME: Duration = Duration::from_secs(300);

impl Default for LaneLimits {
    /// The defaults are consistent with each other: `max_memory_bytes` (64 MiB, the runtime's
    /// default `max_memory_per_instance` too) holds the HTTP lane's largest response,
    /// `max_response_bytes` (16 MiB), whatever its content. The guest holds the body, then its
    /// JSON output text: 34 MiB for a text body just under the cap, up to 60 MiB for a binary
    /// one (base64, twice); `docs/egress.md` has the measurements. Raise both together.
    fn default() -> Self {
        Self {
            max_memory_bytes: 64 << 20,
            max_table_elements: 20_000,
            max_instances: 16,
            max_tables: 8,
            max_memories: 2,
            max_component_handles: 10_000,
            max_host_resources: 10_000,
            max_events: 1024,
            max_event_bytes: 1 << 20,
            max_console_bytes: 8 << 10,
            max_log_lines: 256,
            default_timeout: Duration::from_secs(30),
            max_timeout: Duration::from_secs(600),
            validate_timeout: Duration::from_secs(1),
            max_concurrent: 16,
            max_queued: 64,
            max_response_bytes: 16 << 20,
            max_stream_events: DEFAULT_STREAM_EVENTS,
            max_stream_lifetime: DEFAULT_STREAM_LIFETIME,
        }
    }
}

/// The per-lane concurrency gate with a bounded wait queue.
#[derive(Debug)]
pub(crate) struct LaneGate {
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_concurrent: usize,
    max_queued: usize,
}

/// The wait queue is full.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Saturated {
    pub(crate) max_concurrent: usize,
    pub(crate) max_queued: usize,
}

impl LaneGate {
    pub(crate) fn new(limits: &LaneLimits) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(limits.max_concurrent.max(1))),
            waiting: AtomicUsize::new(0),
            max_concurrent: limits.max_concurrent.max(1),
            max_queued: limits.max_queued,
        }
    }

    /// Executions waiting for a turn now.
    pub(crate) fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }

    /// A turn to run: at once when one is free, after waiting when the queue has room, or
    /// [`Saturated`] at once.
    pub(crate) async fn enter(&self) -> Result<OwnedSemaphorePermit, Saturated> {
        if let Ok(permit) = Arc::clone(&self.permits).try_acquire_owned() {
            return Ok(permit);
        }
        let queued = self.waiting.fetch_add(1, Ordering::SeqCst);
        let _leave = Leave(&self.waiting);
        let saturated = Saturated {
            max_concurrent: self.max_concurrent,
            max_queued: self.max_queued,
        };
        if queued >= self.max_queued {
            return Err(saturated);
        }
        Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| saturated)
    }
}

/// Leaves the wait queue however the wait ends (turn, refusal, or the caller giving up).
struct Leave<'a>(&'a AtomicUsize);

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}
