//! The service `serve` runs, assembled from a [`ServeConfig`]: the node (local weak target
//! verifier, the Ed25519 authority verifier over the trust store), the hash-chained evidence
//! log, the wasm runtime, the lane plugin directory as hot-swappable [`LaneSlot`]s (watched when
//! configured), the first-party lanes built into the binary (a plugin with the same lane id
//! replaces one), the operator policy over all of them, the operator token and, in development,
//! a signing key.
//!
//! A fresh `serve` with no files starts: missing directories are created, a missing plugin
//! directory is skipped, a lane the policy refuses is logged and left out (and listed, with
//! why, in [`StartupInfo::refused`]).
//!
//! Rolled-back digests are kept out of service in `<data_dir>/lanes` ([`Withdrawals`]): a
//! reload or a restart never activates a digest an operator rolled back (until another
//! artifact arrives) or one an automatic rollback quarantined, until it is reinstated
//! ([`LaneAdmin::reinstate`]).
//!
//! Reloads ([`Service::reload`], SIGHUP, `POST /v1/admin/reload`) read the config file and its
//! policy again. A config or policy that does not load is refused and the serving lanes stay. An
//! unchanged policy rescans the plugin directory; a changed one reloads every lane under it: a
//! lane it still serves is replaced by a slot linked with the new grants (every later call,
//! even of an execution admitted before, runs on the new slot), and a lane it refuses stops
//! serving — unregistered, its target disconnected, named in the report's `refused`. Other
//! changed keys (listen address, limits, node id) need a restart.

mod keys;
mod lanes;
mod loading;
mod placement;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ep_lanes_wasm::{
    HostPolicy, LaneSlot, RollBack, RuntimeConfig, SwapError, WasmRuntime, Withdrawals,
    WithdrawalsError,
};
use ep_node::authority::TrustStore;
use ep_node::node::Node;
use ep_node::sinks::file_chain::FileChainSink;
use ep_node::verifiers::ed25519_authority::Ed25519AuthorityVerifier;
use ep_node::verifiers::local_weak::LocalWeakVerifier;

use crate::api::{
    ApiOptions, LaneAdmin, LaneStatus, RefusedLane, Reinstated, ReloadReport, ServerLimits,
    serve_node,
};
use crate::config::ServeConfig;
use crate::error::ServeError;
use crate::lifecycle::RunningServer;
pub use keys::node_key;
use keys::{operator_token, prepare_dev_key};
use lanes::{Loader, Plugins, wasm_files};
pub use loading::LoadReport;
use loading::{Loading, claimed_lane_ids};
pub use placement::{ProcessPlacement, local_launcher, register_process_lane};

/// The directory (in `data_dir`) of the withdrawn and quarantined lane digests.
pub const WITHDRAWALS_DIR: &str = "lanes";

/// File name of the development signing key in `data_dir`.
pub const DEV_KEY_FILE: &str = "dev-signing-key.json";
/// Key id of the development signing key.
pub const DEV_KEY_ID: &str = "dev";
/// File name of the node key in `data_dir`: the node's own key that signs the evidence head
/// (never an authority key).
pub const NODE_KEY_FILE: &str = "node-key.json";

/// What `serve` prints when it starts: where things are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartupInfo {
    /// The node id.
    pub node_id: String,
    /// The evidence log.
    pub evidence_log: PathBuf,
    /// The development signing key, when `dev_key` is on.
    pub dev_key: Option<PathBuf>,
    /// The node key that signs the evidence head.
    pub node_key: PathBuf,
    /// Its public key (base64), what `evidence verify --key` checks the head with.
    pub node_public_key: String,
    /// The trust store.
    pub trust_store: PathBuf,
    /// The operator token's file.
    pub token_file: PathBuf,
    /// The plugin directory, when it exists.
    pub plugins_dir: Option<PathBuf>,
    /// The sandboxed process class: offered, or why not.
    pub sandbox: String,
}

/// The lanes now serving.
struct Lanes {
    policy: HostPolicy,
    builtins: Vec<LaneSlot>,
    /// Built-in lanes the policy refuses.
    refused_builtins: Vec<RefusedLane>,
    plugins: Plugins,
}

impl Lanes {
    /// Every lane not served now: refused built-ins, then refused plugin files.
    fn refused(&self) -> Vec<RefusedLane> {
        let mut refused = self.refused_builtins.clone();
        refused.extend(self.plugins.refused());
        refused
    }
}

/// The assembled service; it is the API's [`LaneAdmin`].
pub struct Service {
    node: Node,
    runtime: WasmRuntime,
    withdrawals: Withdrawals,
    info: StartupInfo,
    config: Mutex<ServeConfig>,
    lanes: Mutex<Lanes>,
    /// The plugin lanes loading while the host serves.
    loading: Loading,
    /// The task loading them, until it is done.
    load_task: Mutex<Option<tokio::task::AbortHandle>>,
    /// Serializes reloads (and the first load of the plugin directory).
    reloading: Arc<tokio::sync::Mutex<()>>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("node", &self.node)
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ServeError + '_ {
    move |source| ServeError::Io {
        path: path.to_owned(),
        source,
    }
}

impl Service {
    /// Builds the node and its lanes from `config`, and the API options that serve them.
    pub async fn build(config: &ServeConfig) -> Result<(Arc<Self>, ApiOptions), ServeError> {
        std::fs::create_dir_all(&config.data_dir).map_err(io(&config.data_dir))?;
        std::fs::create_dir_all(&config.evidence.dir).map_err(io(&config.evidence.dir))?;
        let token = operator_token(&config.operator.token_file)?;
        let dev_key = prepare_dev_key(config)?;
        let node = build_node(config)?;
        let evidence_log = config.evidence.log_path();
        let node_key_path = config.data_dir.join(NODE_KEY_FILE);
        let node_key = node_key(&config.data_dir, &config.node.id)?;
        let node_public_key = node_key.public_key_base64();
        let sink_options = config.evidence.sink_options(node_key);
        let sink = FileChainSink::open_with(&evidence_log, sink_options).map_err(|e| {
            ServeError::Evidence {
                path: evidence_log.clone(),
                message: e.to_string(),
            }
        })?;
        node.register_evidence_sink(Arc::new(sink));
        let placement = register_process_lane(&node, config.process.clone()).await?;
        // Wasm lanes granted `process` start their children through the process placement:
        // its policy, its process slots, its sandbox.
        let runtime = WasmRuntime::new(RuntimeConfig {
            process_launcher: Some(Arc::clone(&placement.launcher) as _),
            ..config.runtime_config()
        })
        .map_err(|e| ServeError::Wasm(e.to_string()))?;
        let policy = load_policy(config)?;
        let withdrawals = Withdrawals::open(&config.data_dir.join(WITHDRAWALS_DIR))?;
        let loader = Loader {
            runtime: &runtime,
            node: &node,
            policy: &policy,
            withdrawals: &withdrawals,
        };
        // The built-in lanes serve at once, except those a plugin file claims: they wait for
        // the plugin directory (a plugin that loads replaces them; one that is refused does not).
        let claimed = claimed_lane_ids(&config.plugins.dir);
        let mut refused_builtins = Vec::new();
        let (waiting, unclaimed): (Vec<LaneSlot>, Vec<LaneSlot>) = loader
            .builtins(&mut refused_builtins)
            .await
            .into_iter()
            .partition(|slot| claimed.contains(slot.lane_id()));
        let builtins = loader
            .register_builtins(unclaimed, &BTreeSet::new(), &mut refused_builtins)
            .await;
        node.complete_registration();
        let lanes = Lanes {
            policy,
            builtins,
            refused_builtins,
            plugins: Plugins::None,
        };
        let info = StartupInfo {
            node_id: config.node.id.clone(),
            evidence_log,
            dev_key,
            node_key: node_key_path,
            node_public_key,
            trust_store: config.authority.trust_store.clone(),
            token_file: config.operator.token_file.clone(),
            plugins_dir: config
                .plugins
                .dir
                .is_dir()
                .then(|| config.plugins.dir.clone()),
            sandbox: placement.sandbox_summary(),
        };
        let reloading = Arc::new(tokio::sync::Mutex::new(()));
        // Taken before any reload can ask for it: a reload waits for the first load.
        let first_turn = Arc::clone(&reloading).try_lock_owned().map_err(|_| {
            ServeError::Wasm("the plugin directory's first load could not start".to_owned())
        })?;
        let service = Arc::new(Self {
            node,
            runtime: runtime.clone(),
            withdrawals,
            info,
            config: Mutex::new(config.clone()),
            lanes: Mutex::new(lanes),
            loading: Loading::new(claimed),
            load_task: Mutex::new(None),
            reloading,
        });
        let task =
            tokio::spawn(Arc::clone(&service).load_plugins(first_turn, config.clone(), waiting));
        *service
            .load_task
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(task.abort_handle());
        let options = ApiOptions {
            limits: ServerLimits::from(&config.server),
            operator_token: Some(token),
            lanes: Some(Arc::clone(&service) as Arc<dyn LaneAdmin>),
            wasm: Some(runtime),
            ..ApiOptions::default()
        };
        Ok((service, options))
    }

    /// The node it serves.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// The wasm runtime every lane runs on.
    pub fn runtime(&self) -> &WasmRuntime {
        &self.runtime
    }

    /// Where things are (what `serve` prints).
    pub fn info(&self) -> &StartupInfo {
        &self.info
    }

    /// What loading the plugin directory came to, once it is done (the host serves its
    /// built-in lanes, and each plugin lane as it loads, meanwhile).
    pub async fn loaded(&self) -> LoadReport {
        self.loading.wait().await
    }

    /// The plugin directory's first load, in the background: each plugin lane serves as it
    /// loads; then the built-in lanes in `waiting` serve unless a plugin replaced them.
    async fn load_plugins(
        self: Arc<Self>,
        _turn: tokio::sync::OwnedMutexGuard<()>,
        config: ServeConfig,
        waiting: Vec<LaneSlot>,
    ) {
        let started = Instant::now();
        let policy = self.lanes_state().policy.clone();
        let loader = self.loader(&policy);
        let mut refused_builtins = Vec::new();
        let plugins = match loader.plugins(&config).await {
            Ok(plugins) => plugins,
            Err(error) => {
                tracing::error!(dir = %config.plugins.dir.display(), %error, "the lane plugin directory cannot be served");
                refused_builtins.push(RefusedLane {
                    lane_id: None,
                    source: config.plugins.dir.display().to_string(),
                    reason: error,
                });
                Plugins::None
            }
        };
        let served = lane_ids(&plugins.slots());
        let builtins = loader
            .register_builtins(waiting, &served, &mut refused_builtins)
            .await;
        {
            let mut state = self.lanes_state();
            state.builtins.extend(builtins);
            state.builtins.sort_by(|a, b| a.lane_id().cmp(b.lane_id()));
            state.refused_builtins.extend(refused_builtins);
            state.plugins = plugins;
        }
        self.finish_loading(started);
    }

    /// Ends the loading state with what serves now.
    fn finish_loading(&self, started: Instant) {
        let report = LoadReport {
            served: self
                .slots()
                .iter()
                .map(|s| s.lane_id().to_owned())
                .collect(),
            refused: self.lanes_state().refused(),
            took: started.elapsed(),
        };
        tracing::info!(
            served = report.served.len(),
            refused = report.refused.len(),
            took_ms = report.took.as_millis() as u64,
            "lanes loaded"
        );
        self.loading.finish(report);
    }

    fn lanes_state(&self) -> MutexGuard<'_, Lanes> {
        self.lanes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every hot-swappable lane serving now: plugin slots, then the built-in ones no plugin
    /// replaced.
    fn slots(&self) -> Vec<LaneSlot> {
        let state = self.lanes_state();
        let mut slots = state.plugins.slots();
        let plugin_ids: BTreeSet<String> = slots.iter().map(|s| s.lane_id().to_owned()).collect();
        slots.extend(
            state
                .builtins
                .iter()
                .filter(|s| !plugin_ids.contains(s.lane_id()))
                .cloned(),
        );
        slots.sort_by(|a, b| a.lane_id().cmp(b.lane_id()));
        slots
    }

    /// The host's withdrawn and quarantined lane digests.
    pub fn withdrawals(&self) -> &Withdrawals {
        &self.withdrawals
    }

    fn loader<'a>(&'a self, policy: &'a HostPolicy) -> Loader<'a> {
        Loader {
            runtime: &self.runtime,
            node: &self.node,
            policy,
            withdrawals: &self.withdrawals,
        }
    }

    /// Stops watching the plugin directory (the lanes keep serving until the node goes).
    pub async fn stop(&self) {
        let load_task = self
            .load_task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(task) = load_task
            && !task.is_finished()
        {
            task.abort();
            self.finish_loading(Instant::now());
        }
        let plugins = std::mem::replace(&mut self.lanes_state().plugins, Plugins::None);
        if let Plugins::Watched(watch) = plugins {
            match Arc::try_unwrap(watch) {
                Ok(watch) => watch.stop().await,
                Err(shared) => drop(shared),
            }
        }
    }

    /// Reloads the config's policy and the plugin directory (see the module docs).
    pub async fn reload(&self) -> ReloadReport {
        let _turn = self.reloading.lock().await;
        let current = self
            .config
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let config_name = current
            .source
            .as_ref()
            .map_or_else(|| "embedded".to_owned(), |p| p.display().to_string());
        let refuse = |error: String, policy: String| {
            tracing::warn!(%error, "reload refused; the previous configuration keeps serving");
            ReloadReport {
                status: "refused".to_owned(),
                config: config_name.clone(),
                policy,
                errors: vec![error],
                lanes: self.slots().iter().map(LaneStatus::of).collect(),
                refused: self.lanes_state().refused(),
                ..ReloadReport::default()
            }
        };
        let old_policy = self.lanes_state().policy.clone();
        let config = match current.reread() {
            Ok(config) => config,
            Err(error) => return refuse(error.to_string(), old_policy.source().to_owned()),
        };
        let policy = match load_policy(&config) {
            Ok(policy) => policy,
            Err(error) => return refuse(error.to_string(), old_policy.source().to_owned()),
        };
        let mut errors = Vec::new();
        let policy_changed = policy != old_policy || config.plugins != current.plugins;
        if policy_changed {
            if let Err(error) = self.reload_all(&config, &policy).await {
                return refuse(error, old_policy.source().to_owned());
            }
        } else {
            self.rescan(&config, &policy, &mut errors).await;
        }
        *self.config.lock().unwrap_or_else(PoisonError::into_inner) = config;
        let refused = self.lanes_state().refused();
        tracing::info!(
            policy = policy.source(),
            policy_changed,
            refused = refused.len(),
            "configuration reloaded"
        );
        ReloadReport {
            status: "reloaded".to_owned(),
            config: config_name,
            policy: policy.source().to_owned(),
            policy_changed,
            errors,
            lanes: self.slots().iter().map(LaneStatus::of).collect(),
            refused,
        }
    }

    /// Same policy: pick up plugin files that changed (or a directory that appeared).
    async fn rescan(&self, config: &ServeConfig, policy: &HostPolicy, errors: &mut Vec<String>) {
        let (watch, fixed) = {
            let state = self.lanes_state();
            match &state.plugins {
                Plugins::Watched(watch) => (Some(Arc::clone(watch)), None),
                Plugins::Fixed { slots, refused } => (None, Some((slots.clone(), refused.clone()))),
                Plugins::None => (None, None),
            }
        };
        if let Some(watch) = watch {
            watch.rescan().await;
            return;
        }
        let loader = self.loader(policy);
        if let Some((mut slots, mut refused)) = fixed {
            for path in wasm_files(&config.plugins.dir) {
                match slots.get(&path) {
                    Some(slot) => {
                        if let Err(error) = slot.swap_plugin(&path, policy).await {
                            errors.push(error.to_string());
                        }
                    }
                    None => match loader.one(&path).await {
                        Ok(slot) => {
                            refused.remove(&path);
                            slots.insert(path, slot);
                        }
                        Err(refusal) => {
                            refused.insert(path, refusal);
                        }
                    },
                }
            }
            refused.retain(|path, _| path.is_file());
            self.lanes_state().plugins = Plugins::Fixed { slots, refused };
            return;
        }
        if config.plugins.dir.is_dir() {
            match loader.plugins(config).await {
                Ok(plugins) => self.lanes_state().plugins = plugins,
                Err(error) => errors.push(error),
            }
        }
    }

    /// A new policy: every lane loaded again under it, as new slots. The slots serving before
    /// are retired: each hands every later call to the slot of its lane under the new policy,
    /// or, for a lane the new policy refuses, stops serving.
    async fn reload_all(&self, config: &ServeConfig, policy: &HostPolicy) -> Result<(), String> {
        let before = self.slots();
        let loader = self.loader(policy);
        let mut refused_builtins = Vec::new();
        let builtins = loader.builtins(&mut refused_builtins).await;
        let plugins = loader.plugins(config).await?;
        let served = lane_ids(&plugins.slots());
        let builtins = loader
            .register_builtins(builtins, &served, &mut refused_builtins)
            .await;
        let (old, refused) = {
            let mut state = self.lanes_state();
            state.policy = policy.clone();
            state.builtins = builtins;
            state.refused_builtins = refused_builtins;
            let old = std::mem::replace(&mut state.plugins, plugins);
            (old, state.refused())
        };
        // The old watch must not swap anything into the old slots any more.
        if let Plugins::Watched(watch) = old {
            match Arc::try_unwrap(watch) {
                Ok(watch) => watch.stop().await,
                Err(shared) => drop(shared),
            }
        }
        let after = self.slots();
        for slot in before {
            let successor = after.iter().find(|s| s.lane_id() == slot.lane_id());
            let reason = refused
                .iter()
                .find(|r| r.lane_id.as_deref() == Some(slot.lane_id()))
                .map_or_else(
                    || {
                        "the policy was reloaded and the lane's plugin file is gone, so it \
                         cannot be loaded under the new policy"
                            .to_owned()
                    },
                    |r| format!("the reloaded policy refuses it: {}", r.reason),
                );
            slot.retire(successor, &reason).await;
        }
        Ok(())
    }
}

/// The lane ids of `slots`.
fn lane_ids(slots: &[LaneSlot]) -> BTreeSet<String> {
    slots.iter().map(|s| s.lane_id().to_owned()).collect()
}

#[async_trait]
impl LaneAdmin for Service {
    fn lanes(&self) -> Vec<LaneStatus> {
        self.slots().iter().map(LaneStatus::of).collect()
    }

    fn loading(&self) -> Vec<String> {
        self.loading.loading(&self.node)
    }

    fn is_loading(&self, lane_id: &str) -> bool {
        self.loading.is_loading(&self.node, lane_id)
    }

    async fn rollback(&self, lane_id: &str) -> Result<RollBack, SwapError> {
        match self.slots().into_iter().find(|s| s.lane_id() == lane_id) {
            Some(slot) => slot.rollback().await,
            None => Err(SwapError::UnknownLane {
                lane_id: lane_id.to_owned(),
            }),
        }
    }

    async fn reload(&self) -> ReloadReport {
        Service::reload(self).await
    }

    async fn reinstate(&self, lane_id: &str, digest: &str) -> Result<Reinstated, WithdrawalsError> {
        let _turn = self.reloading.lock().await;
        let watch = match &self.lanes_state().plugins {
            Plugins::Watched(watch) => Some(Arc::clone(watch)),
            _ => None,
        };
        let withdrawal = match watch {
            Some(watch) => watch.reinstate(lane_id, digest).await?,
            None => {
                let serving = self.slots().into_iter().find(|s| s.lane_id() == lane_id);
                let withdrawal = match serving {
                    Some(slot) => slot.reinstate(digest).await?,
                    None => {
                        let withdrawal = self.withdrawals.reinstate(lane_id, digest)?;
                        ep_lanes_wasm::withdrawals::record_reinstated(&self.node, &withdrawal)
                            .await;
                        withdrawal
                    }
                };
                let config = self
                    .config
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone();
                let policy = self.lanes_state().policy.clone();
                let mut errors = Vec::new();
                self.rescan(&config, &policy, &mut errors).await;
                withdrawal
            }
        };
        Ok(Reinstated {
            lane_id: withdrawal.lane_id,
            digest: withdrawal.digest,
            was: withdrawal.state,
            lane: self
                .slots()
                .iter()
                .find(|s| s.lane_id() == lane_id)
                .map(LaneStatus::of),
        })
    }
}

/// Builds the whole service from `config` and serves it on `[server] listen`.
pub async fn start(config: ServeConfig) -> Result<RunningServer, ServeError> {
    let (service, options) = Service::build(&config).await?;
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: config.server.listen,
            source,
        })?;
    let server = serve_node(service.node().clone(), options, listener).await?;
    Ok(server.with_service(service))
}

/// The node: the local weak target verifier, and the Ed25519 authority verifier when the trust
/// store exists (without one governed requests are refused).
fn build_node(config: &ServeConfig) -> Result<Node, ServeError> {
    node_with_verifiers(
        &config.node.id,
        &config.authority.trust_store,
        Duration::from_secs(config.authority.clock_skew_secs),
    )
}

/// A node named `node_id` with the verifiers every host registers: the local weak target
/// verifier, and the Ed25519 authority verifier over `trust_store` when that file exists
/// (without one governed requests are refused with `authority_verifier_missing`).
pub fn node_with_verifiers(
    node_id: &str,
    trust_store: &Path,
    clock_skew: Duration,
) -> Result<Node, ServeError> {
    let node = Node::new(node_id.to_owned());
    node.register_target_verifier(Arc::new(LocalWeakVerifier::new()));
    if trust_store.exists() {
        let store =
            TrustStore::load(trust_store).map_err(|e| ServeError::Authority(e.to_string()))?;
        let verifier =
            Ed25519AuthorityVerifier::new(node_id.to_owned(), store).with_clock_skew(clock_skew);
        node.register_authority_verifier(Arc::new(verifier));
    } else {
        tracing::warn!(
            path = %trust_store.display(),
            "no authority trust store: governed requests will be refused (authority_verifier_missing)"
        );
    }
    Ok(node)
}

/// The operator policy of `[policy] file`, or the built-in default.
fn load_policy(config: &ServeConfig) -> Result<HostPolicy, ServeError> {
    match &config.policy.file {
        None => Ok(HostPolicy::default()),
        Some(path) => HostPolicy::load(path).map_err(|e| ServeError::Policy(e.to_string())),
    }
}
