//! The network API of `docs/api.md` on hyper 1 (HTTP/1.1 and h2c on one listener):
//! [`router`] (the route table), [`handlers`] (one function per endpoint), [`errors`] (the
//! envelope and the status tables), [`sse`] (event streams), [`body`] (body limits and JSON),
//! [`conn`] (accepting and serving connections within the configured limits).
//!
//! [`serve_node`] serves any node: lane administration goes through an optional
//! [`LaneAdmin`] (without one `/v1/lanes` is empty and rollback answers `unknown_lane`).

// Handlers answer errors by value: an `ApiError` is built at most once per request, on the way
// out, so boxing it would buy nothing.
#![allow(clippy::result_large_err)]

pub mod body;
pub mod conn;
pub mod errors;
mod executions;
pub mod handlers;
pub mod router;
pub mod sse;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use ep_lanes_wasm::{
    LaneSlot, PluginWatch, RollBack, SwapError, WasmRuntime, Withdrawal, WithdrawalsError,
};
use ep_node::CancelSignal;
use ep_node::node::Node;
use serde::Serialize;
use tokio::sync::Notify;

use crate::config::ServerSection;
use crate::error::ServeError;
use crate::lifecycle::RunningServer;
use crate::metrics::Metrics;

/// The connection and request limits of `[server]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerLimits {
    /// Largest request body (413 above it).
    pub max_body_bytes: u64,
    /// Largest request head (431 above it); at least 8192.
    pub max_header_bytes: usize,
    /// Time to send a complete request head.
    pub header_read_timeout: Duration,
    /// Keep-alive connections idle this long are closed.
    pub idle_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
    /// Time to receive a whole request body once its head is read (408 after it).
    pub body_read_timeout: Duration,
    /// Slowest a body may arrive after `min_body_rate_grace`, in bytes per second (0: off).
    pub min_body_bytes_per_sec: u64,
    /// Time a body may take before the rate check starts.
    pub min_body_rate_grace: Duration,
    /// Connections beyond `max_connections` that serve only health, metrics and the operator.
    pub reserve_connections: usize,
    /// Time a reserved connection has to send its request head.
    pub reserve_header_timeout: Duration,
}

impl Default for ServerLimits {
    /// The defaults of `serve-default.toml`.
    fn default() -> Self {
        Self {
            max_body_bytes: 1 << 20,
            max_header_bytes: 16 << 10,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 1024,
            body_read_timeout: Duration::from_secs(30),
            min_body_bytes_per_sec: 1024,
            min_body_rate_grace: Duration::from_secs(5),
            reserve_connections: 16,
            reserve_header_timeout: Duration::from_secs(2),
        }
    }
}

impl From<&ServerSection> for ServerLimits {
    fn from(server: &ServerSection) -> Self {
        Self {
            max_body_bytes: server.max_body_bytes,
            max_header_bytes: usize::try_from(server.max_header_bytes).unwrap_or(usize::MAX),
            header_read_timeout: Duration::from_millis(server.header_read_timeout_ms),
            idle_timeout: Duration::from_millis(server.idle_timeout_ms),
            max_connections: usize::try_from(server.max_connections).unwrap_or(usize::MAX),
            body_read_timeout: Duration::from_millis(server.body_read_timeout_ms),
            min_body_bytes_per_sec: server.min_body_bytes_per_sec,
            min_body_rate_grace: Duration::from_millis(server.min_body_rate_grace_ms),
            reserve_connections: usize::try_from(server.reserve_connections).unwrap_or(usize::MAX),
            reserve_header_timeout: Duration::from_millis(server.reserve_header_timeout_ms),
        }
    }
}

/// How [`serve_node`] serves: limits, the operator token, lane administration and the wasm
/// runtime whose instantiations `/metrics` reports.
#[derive(Clone)]
pub struct ApiOptions {
    /// Connection and request limits.
    pub limits: ServerLimits,
    /// The operator routes' bearer token; `None` refuses every operator request.
    pub operator_token: Option<String>,
    /// Lane administration (`/v1/lanes`, rollback, reload); `None` for a bare node.
    pub lanes: Option<Arc<dyn LaneAdmin>>,
    /// The wasm runtime, for `ep_wasm_instantiations_total`.
    pub wasm: Option<WasmRuntime>,
    /// Interval of `: keep-alive` comments on an idle event stream.
    pub sse_keep_alive: Duration,
}

impl Default for ApiOptions {
    fn default() -> Self {
        Self {
            limits: ServerLimits::default(),
            operator_token: None,
            lanes: None,
            wasm: None,
            sse_keep_alive: Duration::from_secs(15),
        }
    }
}

impl std::fmt::Debug for ApiOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiOptions")
            .field("limits", &self.limits)
            .field(
                "operator_token",
                &self.operator_token.as_ref().map(|_| "<redacted>"),
            )
            .field("lanes", &self.lanes.is_some())
            .finish_non_exhaustive()
    }
}

/// One hot-swappable lane as `/v1/lanes` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LaneStatus {
    /// The lane id.
    pub lane_id: String,
    /// The serving generation's number.
    pub generation: u64,
    /// The serving generation's component digest.
    pub digest: String,
    /// The digest a rollback would restore.
    pub previous_digest: Option<String>,
    /// Where the serving generation came from (a path, `<built-in>/…`, or `bytes`).
    pub source: String,
    /// Every generation still alive (serving, kept for rollback, or finishing executions).
    pub live_generations: Vec<u64>,
    /// Executions waiting for a turn in the serving generation's gate.
    pub queued: usize,
    /// Digests of this lane rolled back and kept out of service: `withdrawn` (operator) or
    /// `quarantined` (automatic), until reinstated.
    pub withdrawn: Vec<Withdrawal>,
}

impl LaneStatus {
    /// The status of `slot` now.
    pub fn of(slot: &LaneSlot) -> Self {
        let current = slot.current();
        Self {
            lane_id: slot.lane_id().to_owned(),
            generation: current.number(),
            digest: current.digest().to_owned(),
            previous_digest: slot.previous().map(|g| g.digest().to_owned()),
            source: current.source().to_owned(),
            live_generations: slot.live_generations(),
            queued: current.lane().queued(),
            withdrawn: slot.withdrawn(),
        }
    }
}

/// A lane (or plugin file) the host does not serve, and why: in the start-up summary and in
/// every reload report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefusedLane {
    /// The lane id, when known (a plugin whose manifest does not parse has none).
    pub lane_id: Option<String>,
    /// The plugin file, or `<built-in>/<name>.wasm`.
    pub source: String,
    /// Why it is not served.
    pub reason: String,
}

impl std::fmt::Display for RefusedLane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.lane_id {
            Some(lane_id) => write!(f, "lane {lane_id} ({}): {}", self.source, self.reason),
            None => write!(f, "{}: {}", self.source, self.reason),
        }
    }
}

/// What a reinstatement did (`POST /v1/lanes/{lane_id}/digests/{digest}/reinstate`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reinstated {
    /// The lane.
    pub lane_id: String,
    /// The digest re-admitted.
    pub digest: String,
    /// What it was: `withdrawn` or `quarantined`.
    pub was: ep_lanes_wasm::WithdrawalState,
    /// The lane after the plugin files were reloaded (none when it serves from no slot).
    pub lane: Option<LaneStatus>,
}

/// What a reload did (`POST /v1/admin/reload`, SIGHUP).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReloadReport {
    /// `reloaded`, or `refused` (the previous configuration keeps serving).
    pub status: String,
    /// The config file read (`embedded` for the built-in defaults).
    pub config: String,
    /// The policy now in force.
    pub policy: String,
    /// Whether the policy changed (lanes were reloaded under it).
    pub policy_changed: bool,
    /// Why it was refused, or swaps that failed (those lanes keep serving what they served).
    pub errors: Vec<String>,
    /// The lanes served after the reload.
    pub lanes: Vec<LaneStatus>,
    /// Every lane (built-in or plugin) not served after the reload, with why: a lane the new
    /// policy refuses stops serving.
    pub refused: Vec<RefusedLane>,
}

/// Lane administration behind the operator routes.
#[async_trait]
pub trait LaneAdmin: Send + Sync {
    /// Every hot-swappable lane, by lane id.
    fn lanes(&self) -> Vec<LaneStatus>;

    /// The lanes still loading, sorted: `/healthz` names them while the host starts.
    fn loading(&self) -> Vec<String> {
        Vec::new()
    }

    /// Whether a request for `lane_id` gets `503 lane_loading` (its plugin is still loading)
    /// instead of reaching the node.
    fn is_loading(&self, _lane_id: &str) -> bool {
        false
    }

    /// Operator rollback of `lane_id` (`SwapError::UnknownLane` when not served from a slot).
    async fn rollback(&self, lane_id: &str) -> Result<RollBack, SwapError>;

    /// Reloads the configuration's policy and the plugin directory.
    async fn reload(&self) -> ReloadReport;

    /// Re-admits a withdrawn or quarantined `digest` of `lane_id` and reloads its plugin files
    /// (`WithdrawalsError::NotWithdrawn` when it is neither).
    async fn reinstate(&self, lane_id: &str, digest: &str) -> Result<Reinstated, WithdrawalsError>;
}

/// [`LaneAdmin`] over fixed slots and an optional plugin watch (a reload rescans the watch's
/// directory): for hosts assembled by hand.
#[derive(Default)]
pub struct SlotAdmin {
    slots: Vec<LaneSlot>,
    watch: Option<Arc<PluginWatch>>,
}

impl std::fmt::Debug for SlotAdmin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlotAdmin")
            .field("slots", &self.slots.len())
            .field("watch", &self.watch.is_some())
            .finish()
    }
}

impl SlotAdmin {
    /// Administration of `slots` and the lanes `watch` loads.
    pub fn new(slots: Vec<LaneSlot>, watch: Option<Arc<PluginWatch>>) -> Self {
        Self { slots, watch }
    }

    fn all(&self) -> Vec<LaneSlot> {
        let mut slots = self.slots.clone();
        if let Some(watch) = &self.watch {
            for slot in watch.slots() {
                if !slots.iter().any(|s| s.lane_id() == slot.lane_id()) {
                    slots.push(slot);
                }
            }
        }
        slots.sort_by(|a, b| a.lane_id().cmp(b.lane_id()));
        slots
    }
}

#[async_trait]
impl LaneAdmin for SlotAdmin {
    fn lanes(&self) -> Vec<LaneStatus> {
        self.all().iter().map(LaneStatus::of).collect()
    }

    async fn rollback(&self, lane_id: &str) -> Result<RollBack, SwapError> {
        let slot = self.all().into_iter().find(|s| s.lane_id() == lane_id);
        match slot {
            Some(slot) => slot.rollback().await,
            None => Err(SwapError::UnknownLane {
                lane_id: lane_id.to_owned(),
            }),
        }
    }

    async fn reload(&self) -> ReloadReport {
        let mut refused = Vec::new();
        if let Some(watch) = &self.watch {
            watch.rescan().await;
            refused = watch.refused().iter().map(RefusedLane::from).collect();
        }
        ReloadReport {
            status: "reloaded".to_owned(),
            config: "none".to_owned(),
            policy: "unchanged".to_owned(),
            lanes: self.lanes(),
            refused,
            ..ReloadReport::default()
        }
    }

    async fn reinstate(&self, lane_id: &str, digest: &str) -> Result<Reinstated, WithdrawalsError> {
        let fixed = self.slots.iter().find(|s| s.lane_id() == lane_id);
        let withdrawal = match (fixed, &self.watch) {
            (Some(slot), _) => slot.reinstate(digest).await?,
            (None, Some(watch)) => watch.reinstate(lane_id, digest).await?,
            (None, None) => {
                return Err(WithdrawalsError::NotWithdrawn {
                    lane_id: lane_id.to_owned(),
                    digest: digest.to_owned(),
                });
            }
        };
        Ok(Reinstated {
            lane_id: withdrawal.lane_id,
            digest: withdrawal.digest,
            was: withdrawal.state,
            lane: self
                .all()
                .iter()
                .find(|s| s.lane_id() == lane_id)
                .map(LaneStatus::of),
        })
    }
}

impl From<&ep_lanes_wasm::PluginRefusal> for RefusedLane {
    fn from(refusal: &ep_lanes_wasm::PluginRefusal) -> Self {
        Self {
            lane_id: refusal.lane_id.clone(),
            source: refusal.source.display().to_string(),
            reason: refusal.reason.clone(),
        }
    }
}

/// What every connection and request of one server shares.
pub(crate) struct Shared {
    pub(crate) node: Node,
    pub(crate) options: ApiOptions,
    pub(crate) metrics: Arc<Metrics>,
    /// Set when shutdown begins: `/healthz` 503, new executions 503.
    pub(crate) draining: AtomicBool,
    /// Open event streams and the signal that cuts each at the end of the drain.
    streams: Mutex<HashMap<u64, CancelSignal>>,
    /// `/v1/execute` handlers running.
    pub(crate) executing: AtomicUsize,
    /// Notified whenever an execution handler or a stream ends.
    pub(crate) quiet: Notify,
    next_id: AtomicU64,
}

impl Shared {
    pub(crate) fn new(node: Node, options: ApiOptions, metrics: Arc<Metrics>) -> Self {
        Self {
            node,
            options,
            metrics,
            draining: AtomicBool::new(false),
            streams: Mutex::new(HashMap::new()),
            executing: AtomicUsize::new(0),
            quiet: Notify::new(),
            next_id: AtomicU64::new(1),
        }
    }

    /// A process-unique number (request ids, stream ids).
    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    fn stream_table(&self) -> MutexGuard<'_, HashMap<u64, CancelSignal>> {
        self.streams.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers an open stream; the signal fires when the drain ends with it still open.
    pub(crate) fn open_stream(&self, id: u64) -> CancelSignal {
        let signal = CancelSignal::default();
        self.stream_table().insert(id, signal.clone());
        signal
    }

    pub(crate) fn close_stream(&self, id: u64) {
        self.stream_table().remove(&id);
        self.quiet.notify_waiters();
    }

    pub(crate) fn streams_open(&self) -> usize {
        self.stream_table().len()
    }

    /// Cuts every open stream (the end of the drain).
    pub(crate) fn cut_streams(&self) -> usize {
        let table = self.stream_table();
        for signal in table.values() {
            signal.cancel();
        }
        table.len()
    }

    /// Executions and streams the API is serving now.
    pub(crate) fn in_flight(&self) -> usize {
        self.executing.load(Ordering::SeqCst) + self.streams_open()
    }

    pub(crate) fn lanes(&self) -> Vec<LaneStatus> {
        self.options
            .lanes
            .as_ref()
            .map(|admin| admin.lanes())
            .unwrap_or_default()
    }
}

/// Serves `node` (any node, however it was assembled) on `listener` with `api` options. A
/// metrics sink is registered on the node so `/metrics` counts what it does.
pub async fn serve_node(
    node: Node,
    api: ApiOptions,
    listener: tokio::net::TcpListener,
) -> Result<RunningServer, ServeError> {
    let metrics = Metrics::new();
    node.register_evidence_sink(Arc::new(metrics.sink()));
    let shared = Arc::new(Shared::new(node, api, metrics));
    conn::spawn(shared, listener)
}
