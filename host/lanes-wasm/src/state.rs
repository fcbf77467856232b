//! The data of one execution's `Store`: a WASI context scoped to nothing, the resource table,
//! the limiter, the execution's bounded event buffer, its log attribution and its bounded
//! console capture, plus the deadline the epoch callback enforces.
//!
//! WASI p2 is linked because Rust's std needs clocks, random and cli, but the context grants
//! nothing ambient: no environment, no arguments, no preopened directories, no sockets or name
//! lookups, stdin closed, stdout and stderr captured into a small bounded buffer (its tail is
//! attached to trap details, so a guest panic message reaches the failure).

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use ep_contracts::boundary::ExecutionRef;
use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, Store, UpdateDeadline};
use wasmtime_wasi::WasiCtx;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

use crate::capability::{HttpState, ProcessState, States};
use crate::egress::RequestEgress;
use crate::egress::hooks::LaneHttpHooks;
use crate::limits::LaneLimits;

/// Per-store data of one execution (or one stream, or one probe).
pub(crate) struct LaneState {
    wasi: WasiCtx,
    table: ResourceTable,
    /// The per-execution state of each capability unit (`crate::capability`).
    pub(crate) caps: States,
    pub(crate) limiter: LaneLimiter,
    pub(crate) console: OutputCapture,
    /// When the running guest call must stop; the epoch callback interrupts past it.
    pub(crate) deadline: Instant,
    /// Set by the epoch callback when it interrupted the guest for the deadline.
    pub(crate) deadline_hit: bool,
    /// Set by a host import that ended the execution (a limit or a protocol violation).
    pub(crate) fault: Option<HostFault>,
}

/// Who a store belongs to, for log and event attribution.
#[derive(Debug, Clone)]
pub(crate) struct Attribution {
    pub(crate) lane_id: Arc<str>,
    pub(crate) execution_ref: ExecutionRef,
}

impl LaneState {
    pub(crate) fn new(
        who: Attribution,
        limits: &LaneLimits,
        deadline: Instant,
        hooks: LaneHttpHooks,
        process: ProcessState,
    ) -> Self {
        let console = OutputCapture::new(limits.max_console_bytes);
        let mut wasi = WasiCtx::builder();
        wasi.stdout(console.clone())
            .stderr(console.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .max_random_size(1 << 20);
        let mut table = ResourceTable::new();
        table.set_max_capacity(limits.max_host_resources);
        Self {
            wasi: wasi.build(),
            table,
            caps: States::new(who, limits, hooks, process),
            limiter: LaneLimiter::new(limits),
            console,
            deadline,
            deadline_hit: false,
            fault: None,
        }
    }

    /// A store over this state with the limiter, handle cap and epoch deadline installed.
    pub(crate) fn into_store(self, engine: &wasmtime::Engine, limits: &LaneLimits) -> Store<Self> {
        let mut store = Store::new(engine, self);
        store.limiter(|state| &mut state.limiter);
        store.set_max_component_handles(limits.max_component_handles);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|mut cx| {
            let state = cx.data_mut();
            if Instant::now() >= state.deadline {
                state.deadline_hit = true;
                Ok(UpdateDeadline::Interrupt)
            } else {
                // Yield every tick: a spinning guest still lets its task be cancelled or
                // timed out, and lets other tasks on the same worker run.
                Ok(UpdateDeadline::Yield(1))
            }
        });
        store
    }

    /// Narrows this store's outbound HTTP to `narrowing`, opens or closes its processes, and
    /// moves its deadline to `deadline`, returning what they were (validation runs closed to
    /// I/O under its own deadline, then execution gets the request's back).
    /// Moves the deadline of the running call: the epoch callback's and the one outbound
    /// requests are bounded by (a stream's pull, each with its own deadline).
    pub(crate) fn set_deadline(&mut self, deadline: Instant) {
        self.deadline = deadline;
        self.caps.http.hooks.set_deadline(deadline);
    }

    pub(crate) fn enter_phase(
        &mut self,
        narrowing: Arc<RequestEgress>,
        processes: bool,
        deadline: Instant,
    ) -> (Arc<RequestEgress>, bool, Instant) {
        let narrowing = self.caps.http.hooks.replace_narrowing(narrowing);
        let processes = std::mem::replace(&mut self.caps.process.open, processes);
        (
            narrowing,
            processes,
            std::mem::replace(&mut self.deadline, deadline),
        )
    }

    /// Log lines dropped beyond the per-execution cap.
    pub(crate) fn dropped_log_lines(&self) -> usize {
        self.caps.log.dropped()
    }

    /// The WASI context and the resource table, borrowed together.
    pub(crate) fn wasi_and_table(&mut self) -> (&mut WasiCtx, &mut ResourceTable) {
        (&mut self.wasi, &mut self.table)
    }

    /// The resource table (host resources a capability unit hands the guest).
    pub(crate) fn table_mut(&mut self) -> &mut ResourceTable {
        &mut self.table
    }

    /// The resource table and the `http` unit's state, borrowed together.
    pub(crate) fn table_and_http(&mut self) -> (&mut ResourceTable, &mut HttpState) {
        (&mut self.table, &mut self.caps.http)
    }
}

/// A host import ended the guest call; recorded in the state so the fault is classified from
/// data, not from error text.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum HostFault {
    /// `events.emit` beyond `max_events`.
    #[error("the lane emitted more than {limit} events in one execution")]
    TooManyEvents {
        /// The limit.
        limit: usize,
    },
    /// `events.emit` beyond `max_event_bytes`.
    #[error("the lane emitted more than {limit} bytes of event payload in one execution")]
    EventBytes {
        /// The limit.
        limit: usize,
    },
    /// An event whose payload is not a JSON object.
    #[error("event {event_type:?} has a payload-json that is not a JSON object: {message}")]
    EventNotJson {
        /// The event's type.
        event_type: String,
        /// The parse error.
        message: String,
    },
}

/// A limit a guest ran into (recorded even when the guest handles the failed grow itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LimitHit {
    /// Linear memory growth refused.
    Memory {
        /// The lane's cap over all memories.
        limit: usize,
        /// Total bytes the failed growth asked for.
        requested: usize,
    },
    /// Table growth refused.
    TableElements {
        /// The lane's cap over all tables.
        limit: usize,
        /// Total elements the failed growth asked for.
        requested: usize,
    },
}

/// Caps memory and table growth over *all* memories and tables of the store (wasmtime's
/// `StoreLimits` caps each one separately) and records which limit was hit.
pub(crate) struct LaneLimiter {
    max_memory: usize,
    max_table_elements: usize,
    memory_total: usize,
    table_total: usize,
    instances: usize,
    tables: usize,
    memories: usize,
    pub(crate) hit: Option<LimitHit>,
}

impl LaneLimiter {
    fn new(limits: &LaneLimits) -> Self {
        Self {
            max_memory: limits.max_memory_bytes,
            max_table_elements: limits.max_table_elements,
            memory_total: 0,
            table_total: 0,
            instances: limits.max_instances,
            tables: limits.max_tables,
            memories: limits.max_memories,
            hit: None,
        }
    }
}

impl ResourceLimiter for LaneLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self
            .memory_total
            .saturating_add(desired.saturating_sub(current));
        if total > self.max_memory || maximum.is_some_and(|max| desired > max) {
            self.hit = Some(LimitHit::Memory {
                limit: self.max_memory,
                requested: total,
            });
            return Ok(false);
        }
        self.memory_total = total;
        Ok(true)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        tracing::debug!(error = %error, "wasm memory growth failed");
        self.hit.get_or_insert(LimitHit::Memory {
            limit: self.max_memory,
            requested: self.memory_total,
        });
        Ok(())
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self
            .table_total
            .saturating_add(desired.saturating_sub(current));
        if total > self.max_table_elements || maximum.is_some_and(|max| desired > max) {
            self.hit = Some(LimitHit::TableElements {
                limit: self.max_table_elements,
                requested: total,
            });
            return Ok(false);
        }
        self.table_total = total;
        Ok(true)
    }

    fn instances(&self) -> usize {
        self.instances
    }

    fn tables(&self) -> usize {
        self.tables
    }

    fn memories(&self) -> usize {
        self.memories
    }
}

/// Guest stdout/stderr: keeps the last `capacity` bytes, counts the rest, never fails a write
/// (a chatty guest must not trap because its console is full).
#[derive(Clone)]
pub(crate) struct OutputCapture {
    inner: Arc<Mutex<Captured>>,
}

struct Captured {
    tail: Vec<u8>,
    capacity: usize,
    dropped: usize,
}

impl OutputCapture {
    fn new(capacity: usize) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Captured {
                tail: Vec::new(),
                capacity,
                dropped: 0,
            })),
        }
    }

    fn append(&self, bytes: &[u8]) {
        let mut captured = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let capacity = captured.capacity;
        if bytes.len() >= capacity {
            captured.dropped += captured.tail.len() + bytes.len() - capacity;
            captured.tail.clear();
            captured
                .tail
                .extend_from_slice(&bytes[bytes.len() - capacity..]);
            return;
        }
        let overflow = (captured.tail.len() + bytes.len()).saturating_sub(capacity);
        if overflow > 0 {
            captured.tail.drain(..overflow);
            captured.dropped += overflow;
        }
        captured.tail.extend_from_slice(bytes);
    }

    /// The captured tail as text, when the guest wrote anything.
    pub(crate) fn text(&self) -> Option<String> {
        let captured = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if captured.tail.is_empty() {
            return None;
        }
        let text = String::from_utf8_lossy(&captured.tail);
        Some(match captured.dropped {
            0 => text.trim_end().to_owned(),
            dropped => format!("[{dropped} earlier bytes dropped] {}", text.trim_end()),
        })
    }
}

impl IsTerminal for OutputCapture {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for OutputCapture {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl OutputStream for OutputCapture {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.append(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 << 10)
    }
}

#[async_trait::async_trait]
impl Pollable for OutputCapture {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for OutputCapture {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.append(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_capture_keeps_the_tail() {
        let capture = OutputCapture::new(8);
        capture.append(b"hello ");
        capture.append(b"world!");
        assert_eq!(
            capture.text().as_deref(),
            Some("[4 earlier bytes dropped] o world!")
        );
        capture.append(b"0123456789");
        assert_eq!(
            capture.text().as_deref(),
            Some("[14 earlier bytes dropped] 23456789")
        );
    }
}
