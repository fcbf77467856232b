//! The one `wasmtime::Engine` of a host and what lives as long as it: the pooling allocator
//! sized from a [`RuntimeConfig`], the epoch ticker that makes deadlines cut spinning guests, the
//! compiled-artifact cache, the set of loaded component digests the wasm verifier trusts, the
//! instance-slot gate.
//!
//! Every lane generation of a host is compiled by the same engine (mixing engines is unsound for
//! component types), so a host builds one [`WasmRuntime`] and loads every lane through it.
//!
//! ```no_run
//! use ep_lanes_wasm::{RuntimeConfig, WasmRuntime};
//!
//! let runtime = WasmRuntime::new(RuntimeConfig {
//!     max_instances: 32,
//!     max_memory_per_instance: 64 << 20,
//!     ..RuntimeConfig::default()
//! })?;
//! assert_eq!(runtime.compilations(), 0);
//! # Ok::<(), ep_lanes_wasm::EngineError>(())
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::Semaphore;
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::cache::ArtifactCache;
use crate::digests::LoadedDigests;
use crate::error::EngineError;

/// Core instances a Rust `wasm32-wasip2` component needs per component instance (the main
/// module plus wit-component's shim/fixup modules), with headroom.
const CORE_INSTANCES_PER_COMPONENT: u32 = 8;
/// Linear memories per component instance (one for a Rust guest; room for an adapter).
const MEMORIES_PER_COMPONENT: u32 = 2;
/// Tables per component instance (the main module's and the shim's, with headroom).
const TABLES_PER_COMPONENT: u32 = 4;
/// Bytes of a linear memory reset in place (not decommitted) when a store is dropped; with
/// PAGEMAP_SCAN only the dirty pages within it are written.
const KEEP_RESIDENT: usize = 1 << 20;

/// How big the runtime is: the pooling allocator reserves exactly this much.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Component instances alive at once across every lane (executions, validations, streams
    /// and load probes); beyond it callers wait for a slot.
    pub max_instances: u32,
    /// Bytes one linear memory may grow to (the pool's hard cap; lanes may set lower limits).
    pub max_memory_per_instance: usize,
    /// How often the epoch advances: the granularity of deadlines for running guests.
    pub epoch_tick: Duration,
    /// The outbound HTTP client's connect timeout and pool settings.
    pub egress: crate::egress::EgressConfig,
    /// Where compiled components are kept across restarts (`None`: memory only). Its contents
    /// are loaded as native code: it must be as trusted as the host binary (the runtime
    /// creates it private to the host's user).
    pub compiled_dir: Option<std::path::PathBuf>,
    /// Starts the local processes of lanes granted `process` (the host's process placement,
    /// under its `[process]` policy and sandbox). `None`: every spawn is denied ("this host runs
    /// no local processes").
    pub process_launcher: Option<Arc<dyn ep_lane_api::ProcessLauncher>>,
}

impl PartialEq for RuntimeConfig {
    /// Field by field; launchers are equal when they are the same one.
    fn eq(&self, other: &Self) -> bool {
        // Destructured, so a new field cannot be left out of the comparison.
        let Self {
            max_instances,
            max_memory_per_instance,
            epoch_tick,
            egress,
            compiled_dir,
            process_launcher,
        } = self;
        let launcher = match (process_launcher, &other.process_launcher) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        };
        launcher
            && *max_instances == other.max_instances
            && *max_memory_per_instance == other.max_memory_per_instance
            && *epoch_tick == other.epoch_tick
            && *egress == other.egress
            && *compiled_dir == other.compiled_dir
    }
}

impl Eq for RuntimeConfig {}

impl Default for RuntimeConfig {
    /// 32 instances of at most 64 MiB each, a 5 ms epoch.
    fn default() -> Self {
        Self {
            max_instances: 32,
            max_memory_per_instance: 64 << 20,
            epoch_tick: Duration::from_millis(5),
            egress: crate::egress::EgressConfig::default(),
            compiled_dir: None,
            process_launcher: None,
        }
    }
}

impl RuntimeConfig {
    fn check(&self) -> Result<(), EngineError> {
        if self.max_instances == 0 || self.max_instances > 10_000 {
            return Err(EngineError::InvalidConfig(format!(
                "max_instances must be between 1 and 10000, got {}",
                self.max_instances
            )));
        }
        if self.max_memory_per_instance < 64 << 10 {
            return Err(EngineError::InvalidConfig(format!(
                "max_memory_per_instance must be at least one wasm page (65536 bytes), got {}",
                self.max_memory_per_instance
            )));
        }
        if self.epoch_tick.is_zero() || self.epoch_tick > Duration::from_secs(1) {
            return Err(EngineError::InvalidConfig(format!(
                "epoch_tick must be between 1 ns and 1 s, got {:?}",
                self.epoch_tick
            )));
        }
        Ok(())
    }
}

/// A host's wasm lane runtime: one engine, its caches and threads. Cheap to clone; the epoch
/// ticker stops when the last clone (and the last lane loaded through it)
/// is dropped.
#[derive(Clone)]
pub struct WasmRuntime {
    pub(crate) inner: Arc<RuntimeInner>,
}

impl std::fmt::Debug for WasmRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmRuntime")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// What every clone of a [`WasmRuntime`] shares.
pub(crate) struct RuntimeInner {
    pub(crate) engine: Engine,
    pub(crate) config: RuntimeConfig,
    pub(crate) cache: ArtifactCache,
    pub(crate) digests: LoadedDigests,
    /// One permit per pooled component instance.
    pub(crate) slots: Arc<Semaphore>,
    /// Stores instantiated so far, by every lane (probes included).
    pub(crate) instantiations: Arc<AtomicU64>,
    _ticker: EpochTicker,
}

impl WasmRuntime {
    /// Builds the engine (pooling allocator, epoch interruption, no component-model
    /// concurrency) and starts the epoch ticker thread.
    pub fn new(config: RuntimeConfig) -> Result<Self, EngineError> {
        config.check()?;
        let engine = build_engine(&config)?;
        let ticker = EpochTicker::start(engine.clone(), config.epoch_tick)?;
        let cache = ArtifactCache::new(&engine, config.compiled_dir.clone());
        let slots = Arc::new(Semaphore::new(config.max_instances as usize));
        Ok(Self {
            inner: Arc::new(RuntimeInner {
                engine,
                config,
                cache,
                digests: LoadedDigests::default(),
                slots,
                instantiations: Arc::default(),
                _ticker: ticker,
            }),
        })
    }

    /// The configuration it was built with.
    pub fn config(&self) -> &RuntimeConfig {
        &self.inner.config
    }

    /// The engine every lane of this runtime is compiled by.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// How many components this runtime has compiled (cache misses); loading a digest again
    /// reuses the compiled artifact.
    pub fn compilations(&self) -> u64 {
        self.inner.cache.compilations()
    }

    /// How many components this runtime loaded already compiled from
    /// [`RuntimeConfig::compiled_dir`] instead of compiling them.
    pub fn compiled_loads(&self) -> u64 {
        self.inner.cache.disk_loads()
    }

    /// How many stores this runtime has instantiated (one per execution, stream, probe or
    /// separate `validate`): what an operator watches to see isolation cost.
    pub fn instantiations(&self) -> u64 {
        self.inner.instantiations.load(Ordering::Relaxed)
    }

    /// Whether a lane with this component digest is loaded now (what the wasm verifier checks).
    pub fn is_loaded(&self, digest: &str) -> bool {
        self.inner.digests.lane_of(digest).is_some()
    }
}

fn build_engine(config: &RuntimeConfig) -> Result<Engine, EngineError> {
    let n = config.max_instances;
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(n)
        .total_core_instances(n.saturating_mul(CORE_INSTANCES_PER_COMPONENT))
        .total_memories(n.saturating_mul(MEMORIES_PER_COMPONENT))
        .total_tables(n.saturating_mul(TABLES_PER_COMPONENT))
        .total_stacks(n)
        .max_memories_per_component(MEMORIES_PER_COMPONENT)
        .max_tables_per_component(TABLES_PER_COMPONENT)
        .max_memory_size(config.max_memory_per_instance)
        .max_unused_warm_slots(n.min(100))
        // Reset only the pages a store dirtied (PAGEMAP_SCAN, Linux 6.7+), in place up to
        // the keep-resident size: a store drop costs what the guest touched, not a fixed memset.
        .pagemap_scan(Enabled::Auto)
        .linear_memory_keep_resident(KEEP_RESIDENT)
        .table_keep_resident(64 << 10)
        .decommit_batch_size(32);
    let mut wasm = Config::new();
    wasm.epoch_interruption(true)
        .concurrency_support(false)
        .wasm_component_model(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&wasm).map_err(|e| EngineError::Engine(format!("{e:#}")))
}

/// Advances the engine's epoch every tick on a dedicated OS thread, so a guest spinning on a
/// tokio worker still reaches its deadline. Stops (and is joined) when dropped.
struct EpochTicker {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    fn start(engine: Engine, tick: Duration) -> Result<Self, EngineError> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("ep-wasm-epoch".to_owned())
            .spawn(move || {
                // Any message, or the runtime dropping the sender, stops the ticker.
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(tick) {
                    engine.increment_epoch();
                }
                tracing::debug!("wasm epoch ticker stopped");
            })
            .map_err(|source| EngineError::Thread {
                thread: "epoch ticker",
                source,
            })?;
        Ok(Self {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take()
            && thread.thread().id() != std::thread::current().id()
        {
            let _ = thread.join();
        }
    }
}
