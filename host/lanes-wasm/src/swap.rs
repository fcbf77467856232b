//! Hot swap: a [`LaneSlot`] is one lane id and its generations. It is registered in the node
//! once, as the lane ([`register_lane_slot`]), and replaces the generation behind it while the
//! host runs:
//!
//! 1. a new artifact arrives ([`LaneSlot::swap_plugin`] for `<name>.wasm` + `<name>.toml`, or
//!    [`LaneSlot::swap_component`] for bytes or a path, keeping the serving grants and limits);
//! 2. it is read and digested; a plugin's manifest is read and checked (WIT version, keys) and
//!    its lane id must be the slot's; an artifact identical to the serving one is a no-op, and
//!    so is one whose digest was rolled back ([`crate::withdrawals`]: it stays out until the
//!    operator reinstates it);
//! 3. the component is compiled through the runtime's cache (off the async workers), linked
//!    with the effective grants, pre-instantiated, and probed (`capabilities`: the lane id must
//!    stay the same);
//! 4. the slot's target is re-connected so its descriptor names the new digest, then the new
//!    generation is published (one pointer swap) and `lane.activated` is recorded.
//!
//! A failure at any step leaves the serving generation untouched and records `lane.rejected`
//! with the stage, the reason, the refused digest and the digest still serving.
//!
//! **Which generation runs an execution.** The descriptor a request was admitted under names a
//! digest; `validate` picks the live generation with that digest (the serving one, or the one
//! it replaced while the request was being admitted), and `execute`/`stream` run on the very
//! generation `validate` picked. So each execution runs entirely on one generation and its
//! evidence (`component_digest`) names it. Requests without a descriptor (direct lane-owner
//! calls) run on the serving generation. Only if two publishes complete between admission and
//! dispatch, or the admitted generation was rolled back, does the execution run on the serving
//! generation instead: its evidence then names that digest, the one that actually ran.
//!
//! **Dropping.** The slot holds the serving generation and the one before it (for rollback).
//! Every execution holds its generation until it ends, so an older generation is dropped when
//! its last execution finishes.
//!
//! **Rollback.** The first executions of a new generation are its probation window
//! ([`RollbackPolicy`]); when its host faults reach the threshold it is rolled back to the
//! previous generation automatically (`lane.rolled_back`, reason `automatic`) and its digest is
//! quarantined. Operators roll back with [`LaneSlot::rollback`] (reason `operator`) and the
//! digest is withdrawn. A rolled-back generation is withdrawn at once (no execution starts on
//! it any more, so the record counts every execution that ran on it) and there is no previous
//! generation until the next publish.
//!
//! **Retiring.** A policy reload replaces a slot by a new one (its successor), or refuses the
//! lane: [`LaneSlot::retire`]. A retired slot hands every later call to its successor, or
//! refuses it, so nothing runs under the grants it was linked with any more.
//!
//! ```no_run
//! use std::path::Path;
//! use ep_lanes_wasm::{HostPolicy, LaneSlot, RollbackPolicy, RuntimeConfig, WasmRuntime};
//! use ep_lanes_wasm::swap::{SwapOutcome, register_lane_slot};
//! use ep_node::node::Node;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let runtime = WasmRuntime::new(RuntimeConfig::default())?;
//! let policy = HostPolicy::default();
//! let path = Path::new("plugins/echo.wasm");
//! let slot = LaneSlot::load_plugin(&runtime, path, &policy, RollbackPolicy::default()).await?;
//! let node = Node::new("node-1");
//! register_lane_slot(&node, &slot).await?;
//! // Later, with a new echo.wasm in place:
//! if let SwapOutcome::Activated(activation) = slot.swap_plugin(path, &policy).await? {
//!     println!("generation {} serves {}", activation.generation, activation.new_digest);
//! }
//! slot.rollback().await?;
//! # Ok(())
//! # }
//! ```

mod adapter;
mod open;
mod records;
mod transitions;

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, Weak};

use ep_contracts::boundary::{ExecutionRef, ExecutionRequest};
use ep_lane_api::{ConnectOptions, LaneAdapter, WeakLaneHost};
use serde_json::{Value, json};

pub use adapter::register_lane_slot;
pub use records::{
    Activation, LANE_ACTIVATED, LANE_REINSTATED, LANE_REJECTED, LANE_RETIRED, LANE_ROLLED_BACK,
    RollBack, RollbackReason, SwapError, SwapOutcome,
};

use crate::engine::WasmRuntime;
use crate::generation::{Artifact, Generation, RollbackPolicy, Running};
use crate::lane::{LaneSource, WasmLane};
use crate::plugins;
use crate::policy::HostPolicy;
use crate::withdrawals::{Withdrawal, Withdrawals};

/// Validated-but-not-yet-started executions remembered with their generation; beyond this the
/// oldest are forgotten (they then run on the serving generation).
const MAX_PINS: usize = 4096;
/// Longest rejection reason kept in evidence (longer ones are cut at a char boundary).
const MAX_REASON_BYTES: usize = 480;

/// One lane id and its generations; register it with a node once ([`register_lane_slot`]) and
/// swap or roll back behind it. Cheap to clone (clones share the slot).
#[derive(Clone)]
pub struct LaneSlot {
    inner: Arc<SlotInner>,
}

impl std::fmt::Debug for LaneSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let current = self.current();
        f.debug_struct("LaneSlot")
            .field("lane_id", &self.inner.lane_id)
            .field("generation", &current.number())
            .field("component_digest", &current.digest())
            .finish_non_exhaustive()
    }
}

struct SlotInner {
    lane_id: String,
    runtime: WasmRuntime,
    rollback: RollbackPolicy,
    state: RwLock<SlotState>,
    /// Serializes publishes, rollbacks and retiring (loading runs outside it).
    transitions: tokio::sync::Mutex<()>,
    /// Every generation published and not yet dropped.
    live: Mutex<Vec<Weak<Generation>>>,
    pins: Mutex<Pins>,
    binding: Mutex<Option<Binding>>,
    withdrawals: Mutex<Withdrawals>,
    retired: RwLock<Option<Retirement>>,
}

struct SlotState {
    current: Arc<Generation>,
    previous: Option<Arc<Generation>>,
    next_number: u64,
}

/// What became of a retired slot.
#[derive(Clone)]
enum Retirement {
    /// A new slot serves the lane: every later call goes there.
    Replaced(LaneSlot),
    /// The lane is no longer served, for this reason.
    Refused(String),
}

/// The host the slot is registered with, and its target there.
#[derive(Clone)]
struct Binding {
    host: Arc<dyn WeakLaneHost>,
    target_id: String,
}

/// Validated executions and the generation that validated them, until they start.
#[derive(Default)]
struct Pins {
    by_ref: HashMap<String, Arc<Generation>>,
    order: VecDeque<String>,
}

impl Pins {
    fn insert(&mut self, reference: &ExecutionRef, generation: Arc<Generation>) {
        let key = reference.as_str().to_owned();
        if self.by_ref.insert(key.clone(), generation).is_none() {
            self.order.push_back(key);
        }
        while self.order.len() > MAX_PINS {
            if let Some(oldest) = self.order.pop_front() {
                self.by_ref.remove(&oldest);
            }
        }
    }

    fn take(&mut self, reference: &ExecutionRef) -> Option<Arc<Generation>> {
        self.by_ref.remove(reference.as_str())
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section is a few assignments, so a poisoned lock is still consistent.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `s` cut to at most [`MAX_REASON_BYTES`] at a char boundary.
pub(crate) fn clip(mut s: String) -> String {
    if s.len() > MAX_REASON_BYTES {
        let mut end = MAX_REASON_BYTES;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

async fn read(path: &Path) -> Result<Arc<[u8]>, SwapError> {
    tokio::fs::read(path)
        .await
        .map(Arc::from)
        .map_err(|source| SwapError::Read {
            path: path.to_owned(),
            source,
        })
}

impl LaneSlot {
    /// A slot serving `first` as generation 1; `source` says where it came from (a path, or
    /// `bytes`).
    pub fn new(
        first: WasmLane,
        source: impl Into<String>,
        rollback: RollbackPolicy,
    ) -> Result<Self, SwapError> {
        Self::with_first(first, source.into(), None, rollback)
    }

    fn with_first(
        first: WasmLane,
        source: String,
        artifact: Option<Artifact>,
        rollback: RollbackPolicy,
    ) -> Result<Self, SwapError> {
        let lane_id = first.lane_id().to_owned();
        if let Some(message) = rollback.problem() {
            return Err(SwapError::InvalidPolicy { lane_id, message });
        }
        let runtime = first.runtime().clone();
        let generation = Arc::new(Generation::new(1, first, source, artifact, &rollback));
        Ok(Self {
            inner: Arc::new(SlotInner {
                lane_id,
                runtime,
                rollback,
                live: Mutex::new(vec![Arc::downgrade(&generation)]),
                state: RwLock::new(SlotState {
                    current: generation,
                    previous: None,
                    next_number: 2,
                }),
                transitions: tokio::sync::Mutex::new(()),
                pins: Mutex::new(Pins::default()),
                binding: Mutex::new(None),
                withdrawals: Mutex::new(Withdrawals::in_memory()),
                retired: RwLock::new(None),
            }),
        })
    }

    /// Sends this slot's rollbacks to `withdrawals` (a host's store, shared by its slots)
    /// and consults it before every swap.
    #[must_use]
    pub fn with_withdrawals(self, withdrawals: Withdrawals) -> Self {
        *lock(&self.inner.withdrawals) = withdrawals;
        self
    }

    /// The store this slot's rollbacks go to.
    pub fn withdrawals(&self) -> Withdrawals {
        lock(&self.inner.withdrawals).clone()
    }

    /// The withdrawn and quarantined digests of this lane.
    pub fn withdrawn(&self) -> Vec<Withdrawal> {
        self.withdrawals().for_lane(&self.inner.lane_id)
    }

    /// The lane id every generation serves.
    pub fn lane_id(&self) -> &str {
        &self.inner.lane_id
    }

    /// The generation new executions go to.
    pub fn current(&self) -> Arc<Generation> {
        Arc::clone(&self.state().current)
    }

    /// The generation a rollback would restore, if any.
    pub fn previous(&self) -> Option<Arc<Generation>> {
        self.state().previous.clone()
    }

    /// The rollback policy new generations are judged by.
    pub fn rollback_policy(&self) -> &RollbackPolicy {
        &self.inner.rollback
    }

    /// Whether a policy reload retired it ([`LaneSlot::retire`]).
    pub fn is_retired(&self) -> bool {
        self.retirement().is_some()
    }

    /// The numbers of every generation still alive (serving, kept for rollback, or still
    /// running an execution), ascending.
    pub fn live_generations(&self) -> Vec<u64> {
        let mut numbers: Vec<u64> = self.live().iter().map(|g| g.number()).collect();
        numbers.sort_unstable();
        numbers
    }

    fn state(&self) -> std::sync::RwLockReadGuard<'_, SlotState> {
        self.inner
            .state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn state_mut(&self) -> std::sync::RwLockWriteGuard<'_, SlotState> {
        self.inner
            .state
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn retirement(&self) -> Option<Retirement> {
        self.inner
            .retired
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn live(&self) -> Vec<Arc<Generation>> {
        let mut live = lock(&self.inner.live);
        live.retain(|weak| weak.strong_count() > 0);
        live.iter().filter_map(Weak::upgrade).collect()
    }

    fn check_serving(&self) -> Result<(), SwapError> {
        match self.retirement() {
            None => Ok(()),
            Some(_) => Err(SwapError::Retired {
                lane_id: self.inner.lane_id.clone(),
            }),
        }
    }

    /// Replaces the generation with the plugin at `wasm_path` and its manifest, under
    /// `policy`. Refusals are recorded as `lane.rejected` and returned; the serving generation
    /// stays. A digest that was rolled back is not activated ([`SwapOutcome::Withdrawn`]).
    pub async fn swap_plugin(
        &self,
        wasm_path: &Path,
        policy: &HostPolicy,
    ) -> Result<SwapOutcome, SwapError> {
        let origin = wasm_path.display().to_string();
        let mut digest = None;
        let attempt = self
            .try_swap_plugin(wasm_path, policy, &origin, &mut digest)
            .await;
        self.settle(attempt, digest, &origin).await
    }

    async fn try_swap_plugin(
        &self,
        wasm_path: &Path,
        policy: &HostPolicy,
        origin: &str,
        digest_out: &mut Option<String>,
    ) -> Result<SwapOutcome, SwapError> {
        self.check_serving()?;
        let bytes = read(wasm_path).await?;
        let digest = ep_contracts::canonical::sha256_ref(&bytes);
        *digest_out = Some(digest.clone());
        let (manifest_path, manifest, text) = plugins::read_manifest_text(wasm_path)?;
        self.check_lane_id(&manifest.lane_id, origin)?;
        if let Some(outcome) = self.withdrawn_outcome(&digest, origin) {
            return Ok(outcome);
        }
        let current = self.current();
        if current.digest() == digest && current.lane().manifest() == Some(&manifest) {
            self.withdrawals().arrived(&self.inner.lane_id, &digest);
            return Ok(self.unchanged(&current));
        }
        let lane = plugins::load_with_manifest(
            &self.inner.runtime,
            wasm_path,
            LaneSource::Bytes(Arc::clone(&bytes)),
            (manifest_path, manifest),
            policy,
        )
        .await?;
        let artifact = Artifact {
            bytes,
            manifest: Some(text),
        };
        let activation = self
            .publish(lane, origin.to_owned(), Some(artifact))
            .await?;
        self.withdrawals().arrived(&self.inner.lane_id, &digest);
        Ok(SwapOutcome::Activated(activation))
    }

    /// Replaces the generation with a component given as bytes or a path, linked with the
    /// serving generation's grants and limits (no manifest). Refusals are recorded as
    /// `lane.rejected` and returned; the serving generation stays. A digest that was rolled
    /// back is not activated ([`SwapOutcome::Withdrawn`]).
    pub async fn swap_component(
        &self,
        source: impl Into<LaneSource>,
    ) -> Result<SwapOutcome, SwapError> {
        let source = source.into();
        let origin = match &source {
            LaneSource::Bytes(_) => "bytes".to_owned(),
            LaneSource::Path(path) => path.display().to_string(),
        };
        let mut digest = None;
        let attempt = self.try_swap_component(source, &origin, &mut digest).await;
        self.settle(attempt, digest, &origin).await
    }

    async fn try_swap_component(
        &self,
        source: LaneSource,
        origin: &str,
        digest_out: &mut Option<String>,
    ) -> Result<SwapOutcome, SwapError> {
        self.check_serving()?;
        let bytes = match source {
            LaneSource::Bytes(bytes) => bytes,
            LaneSource::Path(path) => read(&path).await?,
        };
        let digest = ep_contracts::canonical::sha256_ref(&bytes);
        *digest_out = Some(digest.clone());
        if let Some(outcome) = self.withdrawn_outcome(&digest, origin) {
            return Ok(outcome);
        }
        let current = self.current();
        if current.digest() == digest {
            return Ok(self.unchanged(&current));
        }
        let serving = current.lane();
        let lane = WasmLane::load_with_grants(
            &self.inner.runtime,
            LaneSource::Bytes(Arc::clone(&bytes)),
            serving.limits().clone(),
            serving.grants().to_owned(),
        )
        .await
        .map_err(|source| SwapError::Load {
            lane_id: self.inner.lane_id.clone(),
            source,
        })?;
        drop(current);
        self.check_lane_id(lane.lane_id(), origin)?;
        let artifact = Artifact {
            bytes,
            manifest: None,
        };
        self.publish(lane, origin.to_owned(), Some(artifact))
            .await
            .map(SwapOutcome::Activated)
    }

    /// [`SwapOutcome::Withdrawn`] when `digest` is out of service in this lane.
    fn withdrawn_outcome(&self, digest: &str, origin: &str) -> Option<SwapOutcome> {
        let withdrawal = self.withdrawals().get(&self.inner.lane_id, digest)?;
        let serving = self.current();
        tracing::info!(
            lane_id = self.inner.lane_id,
            source = origin,
            digest,
            state = %withdrawal.state,
            serving_digest = serving.digest(),
            "lane artifact was rolled back; it stays out until reinstated"
        );
        Some(SwapOutcome::Withdrawn {
            digest: digest.to_owned(),
            state: withdrawal.state,
            serving_generation: serving.number(),
        })
    }

    fn unchanged(&self, current: &Generation) -> SwapOutcome {
        tracing::debug!(
            lane_id = self.inner.lane_id,
            component_digest = current.digest(),
            "lane artifact unchanged; nothing to swap"
        );
        SwapOutcome::Unchanged {
            generation: current.number(),
            digest: current.digest().to_owned(),
        }
    }

    fn check_lane_id(&self, candidate: &str, origin: &str) -> Result<(), SwapError> {
        if candidate == self.inner.lane_id {
            return Ok(());
        }
        Err(SwapError::LaneIdChanged {
            lane_id: self.inner.lane_id.clone(),
            candidate: candidate.to_owned(),
            origin: origin.to_owned(),
        })
    }

    /// Records a refusal (`lane.rejected`) and passes the attempt through (a retired slot
    /// records nothing: its successor serves).
    async fn settle(
        &self,
        attempt: Result<SwapOutcome, SwapError>,
        refused_digest: Option<String>,
        origin: &str,
    ) -> Result<SwapOutcome, SwapError> {
        let Err(error) = attempt else {
            return attempt;
        };
        if matches!(error, SwapError::Retired { .. }) {
            return Err(error);
        }
        let serving = self.current();
        tracing::warn!(
            lane_id = self.inner.lane_id,
            source = origin,
            stage = error.stage(),
            %error,
            serving_digest = serving.digest(),
            "lane generation refused; the serving generation stays"
        );
        let payload = json!({
            "lane_id": self.inner.lane_id,
            "source": origin,
            "stage": error.stage(),
            "reason": clip(error.to_string()),
            "refused_digest": refused_digest,
            "serving_digest": serving.digest(),
            "serving_generation": serving.number(),
        });
        self.record(LANE_REJECTED, payload).await;
        Err(error)
    }

    /// Re-connects the slot's target (when registered) so its descriptor names `generation`.
    async fn connect(&self, generation: &Generation) -> Result<(), SwapError> {
        let Some(binding) = lock(&self.inner.binding).clone() else {
            return Ok(());
        };
        let Some(host) = binding.host.upgrade() else {
            return Ok(());
        };
        let options = ConnectOptions {
            target_id: Some(binding.target_id),
            ..ConnectOptions::default()
        };
        host.connect_in_process(generation.lane().attestation(), options)
            .await
            .map(|_| ())
            .map_err(|rejection| SwapError::Target {
                lane_id: self.inner.lane_id.clone(),
                message: rejection.message.unwrap_or_default(),
            })
    }

    /// Sends a transition record to the bound node's sinks (a slot not registered anywhere only
    /// logs).
    pub(crate) async fn record(&self, evidence_type: &str, payload: Value) {
        let host = lock(&self.inner.binding)
            .as_ref()
            .and_then(|binding| binding.host.upgrade());
        if let Some(host) = host {
            host.record_evidence(evidence_type, Some(&self.inner.lane_id), payload)
                .await;
        }
    }

    /// The generation `request` belongs to: the live, not withdrawn generation whose digest
    /// its target descriptor names, else the serving one.
    fn generation_for(&self, request: &ExecutionRequest) -> Arc<Generation> {
        let current = self.current();
        let wanted = request
            .target_descriptor
            .as_ref()
            .and_then(|descriptor| descriptor.metadata.get("component_digest"))
            .and_then(Value::as_str);
        let Some(wanted) = wanted else {
            return current;
        };
        if current.digest() == wanted {
            return current;
        }
        self.live()
            .into_iter()
            .filter(|g| g.digest() == wanted && !g.is_withdrawn())
            .max_by_key(|g| g.number())
            .unwrap_or(current)
    }

    /// Starts an execution on `chosen`, or on the serving generation when `chosen` was
    /// withdrawn meanwhile (a rollback never serves a withdrawn generation, so that start
    /// cannot be refused; it is counted either way).
    fn start(&self, chosen: Arc<Generation>) -> Running {
        if let Some(running) = chosen.begin() {
            return running;
        }
        let current = self.current();
        current.begin().unwrap_or_else(|| current.begin_anyway())
    }

    /// Counts a finished execution, rolling its generation back when the window says so.
    async fn finish(&self, running: Running, observed: &crate::lane::Observed) {
        let generation = Arc::clone(running.generation());
        if let crate::generation::Verdict::RollBack(counts) =
            running.finish(observed, &self.inner.rollback)
        {
            self.roll_back_automatically(&generation, counts).await;
        }
    }

    /// The generation a validated execution was pinned to (unless it was withdrawn since),
    /// else the one its descriptor names.
    fn take_pin(&self, request: &ExecutionRequest) -> Arc<Generation> {
        let pinned = lock(&self.inner.pins).take(&request.execution_ref);
        pinned
            .filter(|generation| !generation.is_withdrawn())
            .unwrap_or_else(|| self.generation_for(request))
    }

    fn pin(&self, request: &ExecutionRequest, generation: Arc<Generation>) {
        lock(&self.inner.pins).insert(&request.execution_ref, generation);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_reasons_are_clipped_at_a_char_boundary() {
        let reason = "é".repeat(MAX_REASON_BYTES);
        let clipped = clip(reason);
        assert!(clipped.len() <= MAX_REASON_BYTES + '…'.len_utf8());
        assert!(clipped.ends_with('…'));
        assert_eq!(clip("short".to_owned()), "short");
    }
}
