//! Execution Plane's WebAssembly lane runtime: lanes are `wasm32-wasip2` components built
//! against the `execution-plane:lane` WIT package (`/wit`), loaded into one wasmtime engine per
//! host, run in a fresh pooled instance per call under memory, handle, event and deadline
//! limits, and registered with the node as targets of the class
//! `wasm-engine:wasmtime@<version>`.
//!
//! ```no_run
//! use std::sync::Arc;
//! use ep_lanes_wasm::{LaneLimits, RuntimeConfig, WasmLane, WasmRuntime, register_wasm_lane};
//! use ep_node::node::Node;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let runtime = WasmRuntime::new(RuntimeConfig::default())?;
//! let path = std::path::Path::new("plugins/echo.wasm");
//! let lane = WasmLane::load(&runtime, path, LaneLimits::default()).await?;
//! let node = Node::new("node-1");
//! let descriptor = register_wasm_lane(&node, Arc::new(lane)).await?;
//! assert_eq!(descriptor.attested_capability_classes, [ep_lanes_wasm::WASM_ENGINE_CLASS]);
//! # Ok(())
//! # }
//! ```
//!
//! # Faults
//!
//! Whatever a guest does ends only its own execution, as a `failed` result whose `error` is a
//! dumped `Failure` with the precise cause in `details.cause` (plus `component_digest`):
//!
//! | fault                                          | failure class             | `details.cause`  |
//! |------------------------------------------------|---------------------------|------------------|
//! | trap (panic, `unreachable`, host error)        | `semantic_runtime_failed` | `trap`           |
//! | memory growth refused by the lane limit        | `semantic_runtime_failed` | `memory_limit`   |
//! | handle / host resource / table / event cap     | `semantic_runtime_failed` | `resource_limit` |
//! | output, metrics, event or failure not a JSON object | `protocol_framing_failed` | `invalid_json` |
//! | deadline (epoch interrupt or wall-clock timeout) | `timeout`               | `deadline`       |
//! | the execution's cancel signal                  | `cancellation`            | `cancelled`      |
//! | instantiation failed                           | `launch_failed`           | `instantiation`  |
//! | lane busy and its wait queue full              | `placement_unavailable`   | `lane_saturated` |
//!
//! A guest's own `failed` outcome is passed through with its class and details. Every result
//! carries one evidence entry `{kind: "wasm_lane.execution", lane_id, component_digest, engine,
//! duration_ms, metrics, dropped_log_lines}`, plus `fault` (the `details.cause` above) when the
//! host ended the call.
//!
//! Module map: [`engine`] (engine, pooling, epochs, cache owner), [`bindings`] (bindgen of the
//! lane world), `state` (per-store data), [`grants`] (what a lane may import), [`limits`]
//! (per-lane limits and the concurrency gate), `fault` (faults → typed failures), [`lane`]
//! ([`WasmLane`]), [`stream`], [`verifier`] ([`WasmEngineVerifier`]), [`manifest`] (plugin
//! manifests), [`policy`] (the operator's [`HostPolicy`]), [`plugins`] (loading plugin files and
//! directories), [`swap`] ([`LaneSlot`]: generations, hot swap, rollback), [`generation`] (one
//! generation and its probation window), [`watch`] (reloading a watched plugin directory),
//! [`withdrawals`] (rolled-back digests kept out of service, across restarts).

/// The wasmtime version this crate is built against; must equal the `wasmtime` requirement in
/// the workspace `Cargo.toml` (a test checks it).
macro_rules! wasmtime_version {
    () => {
        "48.0.8"
    };
}

pub mod abi;
pub mod bindings;
mod cache;
mod capability;
mod convert;
mod digests;
pub mod egress;
pub mod embedded;
pub mod engine;
pub mod error;
mod fault;
pub mod generation;
pub mod grants;
pub mod lane;
pub mod limits;
pub mod manifest;
pub mod plugins;
pub mod policy;
mod state;
pub mod stream;
pub mod swap;
#[cfg(feature = "testing")]
pub mod test_server;
#[cfg(feature = "testing")]
pub mod testing;
pub mod verifier;
pub mod watch;
pub mod withdrawals;

pub use abi::AbiVersion;
pub use embedded::load_embedded;
pub use engine::{RuntimeConfig, WasmRuntime};
pub use error::{EngineError, LoadError};
pub use generation::{FaultCounts, Generation, RollbackPolicy, Usage};
pub use grants::Grants;
pub use lane::{LaneSource, WasmLane};
pub use limits::{DEFAULT_STREAM_EVENTS, DEFAULT_STREAM_LIFETIME, LaneLimits};
pub use manifest::{LaneManifest, ManifestError, WIT_PACKAGE};
pub use plugins::{PluginDirReport, PluginError, load_plugin, load_plugin_dir};
pub use policy::{HostPolicy, LanePolicy, PolicyError};
pub use swap::{
    Activation, LaneSlot, RollBack, RollbackReason, SwapError, SwapOutcome, register_lane_slot,
};
pub use verifier::{
    WASM_ATTESTATION_TYPE, WASM_VERIFIER_ID, WasmEngineVerifier, register_wasm_lane,
};
pub use watch::{PluginRefusal, PluginWatch, WatchConfig, WatchError, watch_plugin_dir};
pub use withdrawals::{Withdrawal, WithdrawalState, Withdrawals, WithdrawalsError};

/// The wasmtime version lanes run on.
pub const WASMTIME_VERSION: &str = wasmtime_version!();
/// The engine name in lane metadata and descriptors: `wasmtime@<version>`.
pub const ENGINE: &str = concat!("wasmtime@", wasmtime_version!());
/// The isolation class the wasm verifier attests: `wasm-engine:wasmtime@<version>`.
pub const WASM_ENGINE_CLASS: &str = concat!("wasm-engine:wasmtime@", wasmtime_version!());
