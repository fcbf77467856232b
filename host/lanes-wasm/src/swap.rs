//! Hot swap: a [`LaneSlot`] is one lane id and its generations. It is registered in the node
//! once, as the lane ([`register_lane_slot`]), and replaces the generation behind it while the
//! host runs:
//!
//! 1. a new artifact arrives ([`LaneSlot::swap_plugin`] for `<name>.wasm` + `<name>.toml`, or
//!    [`LaneSlot::swap_component`] for bytes or a path, keeping the serving grants and limits);
//! 2. it is read and digested; a plugin's manifest is read and checked (WIT version, keys) and
//!    its lane id must be the slot's; an artifact identical to the serving one is a no-op;
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
//! previous generation automatically (`lane.rolled_back`, reason `automatic`). Operators roll
//! back with [`LaneSlot::rollback`] (reason `operator`). A rolled-back generation is withdrawn
//! and there is no previous generation until the next publish.
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

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, Weak};

use async_trait::async_trait;
use ep_contracts::boundary::{
    AdmissionRejection, ExecutionRef, ExecutionRequest, ExecutionResult, LaneCapabilities,
    ResultStatus, TargetDescriptor,
};
use ep_node::local_client::InProcessTargetClient;
use ep_node::node::{Node, WeakNode};
use ep_node::{ConnectOptions, EventStream, ExecutionContext, LaneAdapter, TargetClient};
use futures::StreamExt;
use serde_json::{Value, json};
use thiserror::Error;

use crate::engine::WasmRuntime;
use crate::error::LoadError;
use crate::generation::{FaultCounts, Generation, RollbackPolicy, Verdict};
use crate::lane::{LaneSource, WasmLane};
use crate::plugins::{self, PluginError};
use crate::policy::HostPolicy;
use crate::verifier::WasmEngineVerifier;

/// Evidence type of a published generation: `{lane_id, old_digest, new_digest, generation,
/// source, version}`.
pub const LANE_ACTIVATED: &str = "lane.activated";
/// Evidence type of a refused artifact: `{lane_id, source, stage, reason, refused_digest,
/// serving_digest, serving_generation}`.
pub const LANE_REJECTED: &str = "lane.rejected";
/// Evidence type of a rollback: `{lane_id, from_digest, to_digest, from_generation,
/// to_generation, reason, executions, faults, fault_causes}`.
pub const LANE_ROLLED_BACK: &str = "lane.rolled_back";

/// Validated-but-not-yet-started executions remembered with their generation; beyond this the
/// oldest are forgotten (they then run on the serving generation).
const MAX_PINS: usize = 4096;
/// Longest rejection reason kept in evidence (longer ones are cut at a char boundary).
const MAX_REASON_BYTES: usize = 480;

/// Why a swap or a rollback did not happen; the serving generation is untouched.
#[derive(Debug, Error)]
pub enum SwapError {
    /// The component file could not be read.
    #[error("cannot read lane component {path}: {source}; check that it exists and is readable")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The plugin's manifest, the policy or the component refused it.
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// The component did not load (not a component, does not compile, ungranted import,
    /// failed probe, ...).
    #[error("lane {lane_id}: the new component was refused: {source}")]
    Load {
        /// The slot's lane id.
        lane_id: String,
        /// Why.
        #[source]
        source: LoadError,
    },
    /// The artifact serves another lane id than the slot.
    #[error(
        "lane {lane_id} cannot be replaced by {origin}, which serves lane {candidate:?}: a new \
         generation must keep its lane id (load it as a lane of its own instead)"
    )]
    LaneIdChanged {
        /// The slot's lane id.
        lane_id: String,
        /// The lane id the artifact names.
        candidate: String,
        /// The artifact (path or `bytes`).
        origin: String,
    },
    /// The node refused to re-connect the slot's target for the new generation.
    #[error("lane {lane_id}: the node refused the new generation as its target: {message}")]
    Target {
        /// The slot's lane id.
        lane_id: String,
        /// The node's rejection message.
        message: String,
    },
    /// A rollback was asked for but only one generation is kept.
    #[error(
        "lane {lane_id} has no previous generation to roll back to (there is none before the \
         first publish, and none right after a rollback)"
    )]
    NoPreviousGeneration {
        /// The slot's lane id.
        lane_id: String,
    },
    /// An automatic rollback found that the faulty generation no longer serves.
    #[error("lane {lane_id}: generation {generation} no longer serves; nothing to roll back")]
    NotServing {
        /// The slot's lane id.
        lane_id: String,
        /// The generation that faulted.
        generation: u64,
    },
    /// No lane of that id is known (to the plugin watch).
    #[error("no hot-swappable lane {lane_id} is loaded; check the lane id (`lanes list`)")]
    UnknownLane {
        /// The lane id asked for.
        lane_id: String,
    },
    /// A new plugin names a lane id another plugin file already serves.
    #[error(
        "{origin} names lane {lane_id}, which another plugin file already serves; give it a \
         lane id of its own or replace that plugin's files instead"
    )]
    LaneIdTaken {
        /// The lane id.
        lane_id: String,
        /// The new plugin file.
        origin: String,
    },
    /// The rollback policy is unusable.
    #[error("invalid rollback policy for lane {lane_id}: {message}")]
    InvalidPolicy {
        /// The slot's lane id.
        lane_id: String,
        /// What is wrong.
        message: String,
    },
}

impl SwapError {
    /// The step that refused: `read`, `manifest`, `policy`, `load`, `lane_id`, `target`,
    /// `rollback` or `config` (the `stage` of `lane.rejected`).
    pub fn stage(&self) -> &'static str {
        match self {
            Self::Read { .. } | Self::Plugin(PluginError::ReadDir { .. }) => "read",
            Self::Plugin(PluginError::ManifestMissing { .. } | PluginError::Manifest(_)) => {
                "manifest"
            }
            Self::Plugin(PluginError::Policy { .. }) => "policy",
            Self::Plugin(PluginError::Load { .. }) | Self::Load { .. } => "load",
            Self::Plugin(PluginError::LaneIdMismatch { .. })
            | Self::LaneIdChanged { .. }
            | Self::LaneIdTaken { .. } => "lane_id",
            Self::Target { .. } => "target",
            Self::NoPreviousGeneration { .. }
            | Self::NotServing { .. }
            | Self::UnknownLane { .. } => "rollback",
            Self::InvalidPolicy { .. } => "config",
        }
    }
}

/// A published generation, as recorded in `lane.activated`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activation {
    /// The lane id.
    pub lane_id: String,
    /// The digest it replaced (none for a lane's first generation).
    pub old_digest: Option<String>,
    /// The digest now serving.
    pub new_digest: String,
    /// The new generation's number.
    pub generation: u64,
    /// Where it came from: the component file's path, or `bytes`.
    pub source: String,
    /// The plugin manifest's version, when it came with one.
    pub version: Option<String>,
}

impl Activation {
    fn to_json(&self) -> Value {
        json!({
            "lane_id": self.lane_id,
            "old_digest": self.old_digest,
            "new_digest": self.new_digest,
            "generation": self.generation,
            "source": self.source,
            "version": self.version,
        })
    }
}

/// What a swap did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum SwapOutcome {
    /// A new generation serves.
    Activated(Activation),
    /// The artifact is the one serving (same digest, same manifest): nothing changed and
    /// nothing was recorded.
    Unchanged {
        /// The serving generation.
        generation: u64,
        /// Its digest.
        digest: String,
    },
}

/// Who asked for a rollback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RollbackReason {
    /// The new generation's faults reached the [`RollbackPolicy`] threshold.
    Automatic,
    /// [`LaneSlot::rollback`].
    Operator,
}

impl RollbackReason {
    /// `automatic` or `operator`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Automatic => "automatic",
            Self::Operator => "operator",
        }
    }
}

/// A rollback, as recorded in `lane.rolled_back`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollBack {
    /// The lane id.
    pub lane_id: String,
    /// The digest withdrawn.
    pub from_digest: String,
    /// The digest serving again.
    pub to_digest: String,
    /// The generation withdrawn.
    pub from_generation: u64,
    /// The generation serving again.
    pub to_generation: u64,
    /// Who asked.
    pub reason: RollbackReason,
    /// What the withdrawn generation's probation window counted.
    pub counts: FaultCounts,
}

impl RollBack {
    fn to_json(&self) -> Value {
        let mut value = json!({
            "lane_id": self.lane_id,
            "from_digest": self.from_digest,
            "to_digest": self.to_digest,
            "from_generation": self.from_generation,
            "to_generation": self.to_generation,
            "reason": self.reason.as_str(),
        });
        if let (Value::Object(map), Value::Object(counts)) = (&mut value, self.counts.to_json()) {
            map.extend(counts);
        }
        value
    }
}

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
    /// Serializes publishes and rollbacks (loading runs outside it).
    transitions: tokio::sync::Mutex<()>,
    /// Every generation published and not yet dropped.
    live: Mutex<Vec<Weak<Generation>>>,
    pins: Mutex<Pins>,
    binding: Mutex<Option<Binding>>,
}

struct SlotState {
    current: Arc<Generation>,
    previous: Option<Arc<Generation>>,
    next_number: u64,
}

/// The node the slot is registered with, and its target there.
#[derive(Clone)]
struct Binding {
    node: WeakNode,
    client: Arc<InProcessTargetClient>,
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
        let lane_id = first.lane_id().to_owned();
        if let Some(message) = rollback.problem() {
            return Err(SwapError::InvalidPolicy { lane_id, message });
        }
        let runtime = first.runtime().clone();
        let generation = Arc::new(Generation::new(1, first, source.into(), &rollback));
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
            }),
        })
    }

    /// A slot whose first generation is the plugin at `wasm_path` (with its manifest, under
    /// `policy`; see [`crate::plugins::load_plugin`]).
    pub async fn load_plugin(
        runtime: &WasmRuntime,
        wasm_path: &Path,
        policy: &HostPolicy,
        rollback: RollbackPolicy,
    ) -> Result<Self, SwapError> {
        let lane = plugins::load_plugin(runtime, wasm_path, policy).await?;
        Self::new(lane, wasm_path.display().to_string(), rollback)
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

    fn live(&self) -> Vec<Arc<Generation>> {
        let mut live = lock(&self.inner.live);
        live.retain(|weak| weak.strong_count() > 0);
        live.iter().filter_map(Weak::upgrade).collect()
    }

    /// Replaces the generation with the plugin at `wasm_path` and its manifest, under
    /// `policy`. Refusals are recorded as `lane.rejected` and returned; the serving generation
    /// stays.
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
        let bytes = read(wasm_path).await?;
        let digest = ep_contracts::canonical::sha256_ref(&bytes);
        *digest_out = Some(digest.clone());
        let (manifest_path, manifest) = plugins::read_manifest(wasm_path)?;
        self.check_lane_id(&manifest.lane_id, origin)?;
        let current = self.current();
        if current.digest() == digest && current.lane().manifest() == Some(&manifest) {
            return Ok(self.unchanged(&current));
        }
        let lane = plugins::load_with_manifest(
            &self.inner.runtime,
            wasm_path,
            LaneSource::Bytes(bytes),
            (manifest_path, manifest),
            policy,
        )
        .await?;
        self.publish(lane, origin.to_owned())
            .await
            .map(SwapOutcome::Activated)
    }

    /// Replaces the generation with a component given as bytes or a path, linked with the
    /// serving generation's grants and limits (no manifest). Refusals are recorded as
    /// `lane.rejected` and returned; the serving generation stays.
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
        let bytes = match source {
            LaneSource::Bytes(bytes) => bytes,
            LaneSource::Path(path) => read(&path).await?,
        };
        let digest = ep_contracts::canonical::sha256_ref(&bytes);
        *digest_out = Some(digest.clone());
        let current = self.current();
        if current.digest() == digest {
            return Ok(self.unchanged(&current));
        }
        let serving = current.lane();
        let lane = WasmLane::load_with_grants(
            &self.inner.runtime,
            LaneSource::Bytes(bytes),
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
        self.publish(lane, origin.to_owned())
            .await
            .map(SwapOutcome::Activated)
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

    /// Records a refusal (`lane.rejected`) and passes the attempt through.
    async fn settle(
        &self,
        attempt: Result<SwapOutcome, SwapError>,
        refused_digest: Option<String>,
        origin: &str,
    ) -> Result<SwapOutcome, SwapError> {
        let Err(error) = attempt else {
            return attempt;
        };
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

    /// Re-points the target, publishes `lane` as the next generation and records it.
    async fn publish(&self, lane: WasmLane, source: String) -> Result<Activation, SwapError> {
        let _turn = self.inner.transitions.lock().await;
        let (old, number) = {
            let state = self.state();
            (Arc::clone(&state.current), state.next_number)
        };
        let version = lane.manifest().map(|m| m.version.to_string());
        let generation = Arc::new(Generation::new(number, lane, source, &self.inner.rollback));
        {
            let mut live = lock(&self.inner.live);
            live.retain(|weak| weak.strong_count() > 0);
            live.push(Arc::downgrade(&generation));
        }
        self.connect(&generation).await?;
        {
            let mut state = self.state_mut();
            state.previous = Some(std::mem::replace(
                &mut state.current,
                Arc::clone(&generation),
            ));
            state.next_number = number + 1;
        }
        let activation = Activation {
            lane_id: self.inner.lane_id.clone(),
            old_digest: Some(old.digest().to_owned()),
            new_digest: generation.digest().to_owned(),
            generation: number,
            source: generation.source().to_owned(),
            version,
        };
        tracing::info!(
            lane_id = activation.lane_id,
            generation = number,
            old_digest = old.digest(),
            new_digest = activation.new_digest,
            "lane generation activated"
        );
        self.record(LANE_ACTIVATED, activation.to_json()).await;
        Ok(activation)
    }

    /// Rolls back to the previous generation (reason `operator`) and records
    /// `lane.rolled_back`. The withdrawn generation finishes what it runs and is dropped.
    pub async fn rollback(&self) -> Result<RollBack, SwapError> {
        self.roll_back(None, RollbackReason::Operator).await
    }

    async fn roll_back(
        &self,
        faulty: Option<(&Arc<Generation>, FaultCounts)>,
        reason: RollbackReason,
    ) -> Result<RollBack, SwapError> {
        let _turn = self.inner.transitions.lock().await;
        let (from, to) = {
            let state = self.state();
            if let Some((generation, _)) = &faulty
                && !Arc::ptr_eq(&state.current, generation)
            {
                return Err(SwapError::NotServing {
                    lane_id: self.inner.lane_id.clone(),
                    generation: generation.number(),
                });
            }
            let Some(previous) = &state.previous else {
                return Err(SwapError::NoPreviousGeneration {
                    lane_id: self.inner.lane_id.clone(),
                });
            };
            (Arc::clone(&state.current), Arc::clone(previous))
        };
        self.connect(&to).await?;
        {
            let mut state = self.state_mut();
            state.current = Arc::clone(&to);
            state.previous = None;
        }
        from.withdraw();
        let rollback = RollBack {
            lane_id: self.inner.lane_id.clone(),
            from_digest: from.digest().to_owned(),
            to_digest: to.digest().to_owned(),
            from_generation: from.number(),
            to_generation: to.number(),
            reason,
            counts: faulty.map_or_else(|| from.fault_counts(), |(_, counts)| counts),
        };
        tracing::warn!(
            lane_id = rollback.lane_id,
            reason = reason.as_str(),
            from_generation = rollback.from_generation,
            to_generation = rollback.to_generation,
            faults = rollback.counts.faults,
            "lane generation rolled back"
        );
        self.record(LANE_ROLLED_BACK, rollback.to_json()).await;
        Ok(rollback)
    }

    /// Rolls back `generation` after its window said so; a generation that no longer serves,
    /// or has nothing to go back to, is only logged.
    async fn roll_back_automatically(&self, generation: &Arc<Generation>, counts: FaultCounts) {
        if let Err(error) = self
            .roll_back(Some((generation, counts)), RollbackReason::Automatic)
            .await
        {
            tracing::warn!(
                lane_id = self.inner.lane_id,
                generation = generation.number(),
                %error,
                "automatic rollback not done"
            );
        }
    }

    /// Re-connects the slot's target (when registered) so its descriptor names `generation`.
    async fn connect(&self, generation: &Generation) -> Result<(), SwapError> {
        let Some(binding) = lock(&self.inner.binding).clone() else {
            return Ok(());
        };
        let Some(node) = binding.node.upgrade() else {
            return Ok(());
        };
        let options = ConnectOptions {
            target_id: Some(binding.target_id),
            ..ConnectOptions::default()
        };
        node.connect_target(
            generation.lane().attestation(),
            binding.client as Arc<dyn TargetClient>,
            options,
        )
        .await
        .map(|_| ())
        .map_err(|rejection| SwapError::Target {
            lane_id: self.inner.lane_id.clone(),
            message: rejection.message.unwrap_or_default(),
        })
    }

    /// Sends a transition record to the bound node's sinks (a slot not registered anywhere only
    /// logs).
    async fn record(&self, evidence_type: &str, payload: Value) {
        let node = lock(&self.inner.binding)
            .as_ref()
            .and_then(|binding| binding.node.upgrade());
        if let Some(node) = node {
            node.record_evidence(evidence_type, Some(&self.inner.lane_id), payload)
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

    /// Counts `result` in `generation`'s probation window, rolling it back when the window
    /// says so.
    async fn observe(&self, generation: &Arc<Generation>, result: &ExecutionResult) {
        if result.status == ResultStatus::Rejected {
            return;
        }
        if let Verdict::RollBack(counts) = generation.observe(result, &self.inner.rollback) {
            self.roll_back_automatically(generation, counts).await;
        }
    }

    fn take_pin(&self, request: &ExecutionRequest) -> Arc<Generation> {
        let pinned = lock(&self.inner.pins).take(&request.execution_ref);
        pinned.unwrap_or_else(|| self.generation_for(request))
    }
}

#[async_trait]
impl LaneAdapter for LaneSlot {
    fn lane_id(&self) -> &str {
        &self.inner.lane_id
    }

    /// The serving generation's capabilities (their metadata names its digest).
    fn capabilities(&self) -> LaneCapabilities {
        self.current().lane().capabilities()
    }

    /// Validates on the request's generation and pins the execution to it.
    fn validate(&self, request: &ExecutionRequest) -> Result<(), AdmissionRejection> {
        let generation = self.generation_for(request);
        generation.lane().validate(request)?;
        lock(&self.inner.pins).insert(&request.execution_ref, generation);
        Ok(())
    }

    /// Runs on the generation that validated the request, then counts the result in that
    /// generation's probation window (rolling it back when the window says so).
    async fn execute(&self, request: ExecutionRequest, ctx: ExecutionContext) -> ExecutionResult {
        let generation = self.take_pin(&request);
        let result = generation.lane().execute(request, ctx).await;
        self.observe(&generation, &result).await;
        result
    }

    /// Validates and executes in one instance of the request's generation, counted in its
    /// probation window like `execute` (a refusal is not counted).
    async fn validate_and_execute(
        &self,
        request: ExecutionRequest,
        ctx: ExecutionContext,
    ) -> ExecutionResult {
        let generation = self.generation_for(&request);
        let result = generation.lane().validate_and_execute(request, ctx).await;
        self.observe(&generation, &result).await;
        result
    }

    /// Streams on the generation that validated the request; the stream keeps that
    /// generation alive until it is dropped. Streams are not counted in the probation window.
    async fn stream(
        &self,
        request: ExecutionRequest,
        ctx: ExecutionContext,
    ) -> Result<EventStream, AdmissionRejection> {
        let generation = self.take_pin(&request);
        let events = generation.lane().stream(request, ctx).await?;
        Ok(events
            .map(move |event| {
                let _alive = &generation;
                event
            })
            .boxed())
    }
}

/// Registers `slot` with `node` as the lane of its id, registers the runtime's
/// [`WasmEngineVerifier`], connects the serving generation as the in-process target
/// `wasm:<lane_id>` (re-connected on every swap and rollback, so the descriptor always names
/// the serving digest), and records `lane.activated` for the serving generation. From then on
/// the slot's transitions are recorded in the node's evidence.
pub async fn register_lane_slot(
    node: &Node,
    slot: &LaneSlot,
) -> Result<TargetDescriptor, AdmissionRejection> {
    node.register_lane(Arc::new(slot.clone()) as Arc<dyn LaneAdapter>);
    node.register_target_verifier(Arc::new(WasmEngineVerifier::new(&slot.inner.runtime)));
    let _turn = slot.inner.transitions.lock().await;
    let client = Arc::new(InProcessTargetClient::new());
    let (current, previous) = {
        let state = slot.state();
        (Arc::clone(&state.current), state.previous.clone())
    };
    let descriptor = node
        .connect_target(
            current.lane().attestation(),
            Arc::clone(&client) as Arc<dyn TargetClient>,
            ConnectOptions::default(),
        )
        .await?;
    *lock(&slot.inner.binding) = Some(Binding {
        node: node.downgrade(),
        client,
        target_id: descriptor.target_id.clone(),
    });
    let activation = Activation {
        lane_id: slot.inner.lane_id.clone(),
        old_digest: previous.map(|g| g.digest().to_owned()),
        new_digest: current.digest().to_owned(),
        generation: current.number(),
        source: current.source().to_owned(),
        version: current.lane().manifest().map(|m| m.version.to_string()),
    };
    slot.record(LANE_ACTIVATED, activation.to_json()).await;
    Ok(descriptor)
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

    #[test]
    fn rollback_evidence_carries_the_counts() {
        let mut counts = FaultCounts {
            executions: 3,
            faults: 3,
            ..FaultCounts::default()
        };
        counts.by_cause.insert("trap".to_owned(), 3);
        let rollback = RollBack {
            lane_id: "echo".to_owned(),
            from_digest: "sha256:b".to_owned(),
            to_digest: "sha256:a".to_owned(),
            from_generation: 2,
            to_generation: 1,
            reason: RollbackReason::Automatic,
            counts,
        };
        let value = rollback.to_json();
        assert_eq!(value["reason"], "automatic");
        assert_eq!(value["faults"], 3);
        assert_eq!(value["fault_causes"]["trap"], 3);
        assert_eq!(value["to_digest"], "sha256:a");
    }
}
