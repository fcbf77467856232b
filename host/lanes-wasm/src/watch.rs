//! Watching a lane plugin directory: every `<name>.wasm` (with its `<name>.toml`) becomes a
//! [`LaneSlot`] registered with the node, and a change to either file hot-swaps that lane.
//!
//! Changes are seen two ways: filesystem notifications (`notify`: inotify on Linux), debounced
//! per plugin so a file written in several steps is loaded once, and a periodic rescan that
//! compares each plugin's file sizes and modification times, so an event the OS dropped (or a
//! filesystem that sends none) is still picked up; where the OS gives no notifications at all
//! the watch runs on rescans alone. A plugin whose files did not change since its last attempt
//! is not reloaded, and an artifact identical to the serving one is a no-op.
//!
//! * a new `<name>.wasm` loads as a new lane (its first generation, `lane.activated`);
//! * a changed `.wasm` or `.toml` swaps that lane ([`LaneSlot::swap_plugin`]); a refusal is
//!   `lane.rejected` and the serving generation stays;
//! * a removed `.wasm` is logged and its lane **keeps serving** its current generation: a
//!   file disappearing (a deploy that deletes before it copies, an editor's save) must not take
//!   a lane out of service; the lane stops only when the host unregisters it. A file put back
//!   later swaps into the same lane;
//! * a new plugin claiming a lane id another plugin file already serves is refused;
//! * a plugin whose digest was rolled back ([`crate::withdrawals`]) is not activated again
//!   until the operator reinstates it ([`PluginWatch::reinstate`]).
//!
//! The directory is resolved to an absolute path once, before it is watched: notifications
//! name files by absolute path, and a relative directory would match none of them (changes
//! would then wait for the rescan). Every reload logs what triggered it (`notification` or
//! `rescan`), and a watch that gets no notifications says so with a warning.
//!
//! The watch is a tokio task owned by [`PluginWatch`]; dropping the handle stops it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use ep_lane_api::LaneHost;
use notify::Watcher;
use serde_json::json;
use thiserror::Error;
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;

use crate::engine::WasmRuntime;
use crate::generation::RollbackPolicy;
use crate::manifest::LaneManifest;
use crate::plugins;
use crate::policy::HostPolicy;
use crate::swap::{LANE_REJECTED, LaneSlot, RollBack, SwapError, SwapOutcome, register_lane_slot};
use crate::withdrawals::{Withdrawal, Withdrawals, WithdrawalsError};

/// Notification batches buffered for the watch task; beyond it events are dropped and the
/// periodic rescan finds the change instead.
const EVENT_BUFFER: usize = 1024;

/// How a plugin directory is watched.
///
/// ```
/// use std::time::Duration;
/// use ep_lanes_wasm::WatchConfig;
///
/// let config = WatchConfig { rescan: Duration::from_secs(10), ..WatchConfig::default() };
/// assert_eq!(config.debounce, Duration::from_millis(200));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct WatchConfig {
    /// Quiet time after the last change to a plugin's files before it is reloaded.
    pub debounce: Duration,
    /// How often the whole directory is rescanned for changes notifications missed.
    pub rescan: Duration,
    /// The rollback policy of every lane the watch loads.
    pub rollback: RollbackPolicy,
    /// Where the lanes' rollbacks are kept (withdrawn and quarantined digests).
    pub withdrawals: Withdrawals,
}

impl Default for WatchConfig {
    /// 200 ms debounce, a rescan every 2 s, the default rollback policy, withdrawals in memory.
    fn default() -> Self {
        Self {
            debounce: Duration::from_millis(200),
            rescan: Duration::from_secs(2),
            rollback: RollbackPolicy::default(),
            withdrawals: Withdrawals::in_memory(),
        }
    }
}

/// What triggered a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    Notification,
    Rescan,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Self::Notification => "notification",
            Self::Rescan => "rescan",
        }
    }
}

/// A plugin file of the directory that serves no lane, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginRefusal {
    /// The `.wasm` file.
    pub source: PathBuf,
    /// The lane id its manifest names, when it could be read.
    pub lane_id: Option<String>,
    /// The step that refused it (see [`SwapError::stage`]).
    pub stage: &'static str,
    /// Why.
    pub reason: String,
}

/// The directory cannot be watched.
#[derive(Debug, Error)]
pub enum WatchError {
    /// The path is not a readable directory.
    #[error(
        "cannot watch lane plugin directory {path}: {message}; check that it exists and is a \
         readable directory"
    )]
    Watch {
        /// The directory.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// A zero debounce or rescan period, or an unusable rollback policy.
    #[error("invalid plugin watch config: {0}")]
    InvalidConfig(String),
}

/// A running watch of a plugin directory; dropping it stops the watch (the lanes it loaded
/// stay registered and serving).
pub struct PluginWatch {
    shared: Arc<Shared>,
    stop: Arc<Notify>,
    task: Option<tokio::task::JoinHandle<()>>,
    /// None when the OS gave no notifications (rescans only).
    _watcher: Option<notify::RecommendedWatcher>,
}

impl std::fmt::Debug for PluginWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginWatch")
            .field("dir", &self.shared.dir)
            .field("lanes", &self.shared.slots().keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Drop for PluginWatch {
    fn drop(&mut self) {
        self.stop.notify_one();
    }
}

/// Sizes and modification times of a plugin's two files (none: absent).
type FileStamp = Option<(u64, SystemTime)>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fingerprint {
    wasm: FileStamp,
    manifest: FileStamp,
}

impl Fingerprint {
    fn of(wasm: &Path) -> Self {
        let stamp = |path: &Path| {
            let meta = std::fs::metadata(path).ok().filter(|m| m.is_file())?;
            Some((meta.len(), meta.modified().ok()?))
        };
        Self {
            wasm: stamp(wasm),
            manifest: stamp(&LaneManifest::path_for(wasm)),
        }
    }
}

/// One plugin file name (stem) the watch knows.
struct Plugin {
    seen: Fingerprint,
    slot: Option<LaneSlot>,
    /// Why it serves no lane (none while it serves one, or was never tried).
    refusal: Option<PluginRefusal>,
}

struct Shared {
    runtime: WasmRuntime,
    host: Arc<dyn LaneHost>,
    dir: PathBuf,
    policy: HostPolicy,
    config: WatchConfig,
    /// Stem → plugin; held across a reload so reloads never interleave.
    plugins: tokio::sync::Mutex<BTreeMap<String, Plugin>>,
    /// Lane id → slot, for lookups that must not wait for a reload.
    slots: Mutex<BTreeMap<String, LaneSlot>>,
    /// Refused plugin files by stem, for lookups that must not wait for a reload.
    refused: Mutex<BTreeMap<String, PluginRefusal>>,
    /// Whether filesystem notifications arrive (false: rescans only).
    notifying: AtomicBool,
}

/// Loads every plugin of `dir` as a hot-swappable lane registered with `host`, then watches
/// the directory and reloads a plugin whenever its `.wasm` or `.toml` changes (see the module
/// docs). Plugins that fail to load are recorded as `lane.rejected` and retried when their
/// files change. A relative `dir` is resolved against the working directory once, here. Must
/// be called inside a tokio runtime.
pub async fn watch_plugin_dir<H: LaneHost + Clone + 'static>(
    runtime: &WasmRuntime,
    host: &H,
    dir: &Path,
    policy: HostPolicy,
    config: WatchConfig,
) -> Result<PluginWatch, WatchError> {
    if config.debounce.is_zero() || config.rescan.is_zero() {
        return Err(WatchError::InvalidConfig(
            "debounce and rescan must both be longer than zero".to_owned(),
        ));
    }
    if let Some(problem) = config.rollback.problem() {
        return Err(WatchError::InvalidConfig(problem));
    }
    if !dir.is_dir() {
        return Err(WatchError::Watch {
            path: dir.to_owned(),
            message: "it is not a directory".to_owned(),
        });
    }
    // Notifications name files by absolute path: watch (and compare against) one.
    let dir = std::path::absolute(dir).map_err(|error| WatchError::Watch {
        path: dir.to_owned(),
        message: format!("cannot resolve it to an absolute path: {error}"),
    })?;
    let dir = dir.as_path();
    let (events, receiver) = mpsc::channel::<Vec<PathBuf>>(EVENT_BUFFER);
    let watcher = match notifications(dir, events) {
        Ok(watcher) => Some(watcher),
        Err(error) => {
            // Out of inotify watches, or a filesystem without notifications: rescans alone
            // still pick every change up, only later.
            tracing::warn!(
                dir = %dir.display(),
                %error,
                rescan_ms = config.rescan.as_millis() as u64,
                "no filesystem notifications for the lane plugin directory; rescanning only"
            );
            None
        }
    };
    if watcher.is_some() {
        tracing::debug!(dir = %dir.display(), "watching the lane plugin directory");
    }
    let shared = Arc::new(Shared {
        runtime: runtime.clone(),
        host: Arc::new(host.clone()),
        dir: dir.to_owned(),
        policy,
        config,
        plugins: tokio::sync::Mutex::new(BTreeMap::new()),
        slots: Mutex::new(BTreeMap::new()),
        refused: Mutex::new(BTreeMap::new()),
        notifying: AtomicBool::new(watcher.is_some()),
    });
    // Watching started first, so nothing written during this scan is missed.
    shared.rescan().await;
    let stop = Arc::new(Notify::new());
    let task = tokio::spawn(run(Arc::clone(&shared), receiver, Arc::clone(&stop)));
    Ok(PluginWatch {
        shared,
        stop,
        task: Some(task),
        _watcher: watcher,
    })
}

/// Starts filesystem notifications for `dir`, each batch of paths sent to `events`.
fn notifications(
    dir: &Path,
    events: mpsc::Sender<Vec<PathBuf>>,
) -> notify::Result<notify::RecommendedWatcher> {
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event {
            // A full buffer only delays the change to the next rescan.
            let _ = events.try_send(event.paths);
        }
    })?;
    watcher.watch(dir, notify::RecursiveMode::NonRecursive)?;
    Ok(watcher)
}

impl PluginWatch {
    /// The watched directory (absolute).
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// Whether filesystem notifications arrive; false when the watch runs on rescans alone
    /// (it said so in the log).
    pub fn notifications(&self) -> bool {
        self.shared.notifying.load(Ordering::Relaxed)
    }

    /// The plugin files that serve no lane now, and why, by file name.
    pub fn refused(&self) -> Vec<PluginRefusal> {
        self.shared.refused().values().cloned().collect()
    }

    /// The slot serving `lane_id`, if a plugin of this directory loaded it.
    pub fn slot(&self, lane_id: &str) -> Option<LaneSlot> {
        self.shared.slots().get(lane_id).cloned()
    }

    /// Every slot the watch loaded, by lane id.
    pub fn slots(&self) -> Vec<LaneSlot> {
        self.shared.slots().values().cloned().collect()
    }

    /// Operator rollback of `lane_id` to its previous generation ([`LaneSlot::rollback`]).
    pub async fn rollback(&self, lane_id: &str) -> Result<RollBack, SwapError> {
        let slot = self.slot(lane_id).ok_or_else(|| SwapError::UnknownLane {
            lane_id: lane_id.to_owned(),
        })?;
        slot.rollback().await
    }

    /// Rescans the directory now (as the periodic rescan does) and reloads what changed.
    pub async fn rescan(&self) {
        self.shared.rescan().await;
    }

    /// Re-admits `digest` of `lane_id` ([`Withdrawals::reinstate`]), records
    /// `lane.reinstated`, and reloads the plugin files of that lane (and those serving no lane)
    /// so a file holding the digest is activated now.
    pub async fn reinstate(
        &self,
        lane_id: &str,
        digest: &str,
    ) -> Result<Withdrawal, WithdrawalsError> {
        let withdrawal = self.shared.config.withdrawals.reinstate(lane_id, digest)?;
        crate::withdrawals::record_reinstated(self.shared.host.as_ref(), &withdrawal).await;
        self.shared.retry(lane_id).await;
        Ok(withdrawal)
    }

    /// Stops the watch and waits for a reload in progress to finish.
    pub async fn stop(mut self) {
        self.stop.notify_one();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

/// The watch task: debounced notifications plus periodic rescans, until stopped.
async fn run(shared: Arc<Shared>, mut events: mpsc::Receiver<Vec<PathBuf>>, stop: Arc<Notify>) {
    let mut due: BTreeMap<String, Instant> = BTreeMap::new();
    let mut rescan =
        tokio::time::interval_at(Instant::now() + shared.config.rescan, shared.config.rescan);
    rescan.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut notifications = true;
    loop {
        let next_due = due.values().min().copied();
        tokio::select! {
            () = stop.notified() => break,
            batch = events.recv(), if notifications => match batch {
                Some(paths) => {
                    let at = Instant::now() + shared.config.debounce;
                    for stem in paths.iter().filter_map(|p| shared.plugin_stem(p)) {
                        due.insert(stem, at);
                    }
                }
                // The watcher is gone: carry on with rescans until stopped.
                None => {
                    notifications = false;
                    if shared.notifying.swap(false, Ordering::Relaxed) {
                        tracing::warn!(
                            dir = %shared.dir.display(),
                            rescan_ms = shared.config.rescan.as_millis() as u64,
                            "filesystem notifications for the lane plugin directory stopped; rescanning only"
                        );
                    }
                }
            },
            () = sleep_until(next_due), if next_due.is_some() => {
                let now = Instant::now();
                let ready: Vec<String> = due
                    .iter()
                    .filter(|(_, at)| **at <= now)
                    .map(|(stem, _)| stem.clone())
                    .collect();
                for stem in ready {
                    due.remove(&stem);
                    shared.reload(&stem, Trigger::Notification).await;
                }
            },
            _ = rescan.tick() => shared.rescan().await,
        }
    }
    tracing::debug!(dir = %shared.dir.display(), "lane plugin watch stopped");
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Shared {
    fn slots(&self) -> MutexGuard<'_, BTreeMap<String, LaneSlot>> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn refused(&self) -> MutexGuard<'_, BTreeMap<String, PluginRefusal>> {
        self.refused.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Forgets what was seen of the plugins of `lane_id` and of those serving no lane, then
    /// rescans: those files are tried again.
    async fn retry(&self, lane_id: &str) {
        {
            let mut plugins = self.plugins.lock().await;
            for plugin in plugins.values_mut() {
                let ours = plugin.slot.as_ref().is_none_or(|s| s.lane_id() == lane_id);
                if ours {
                    plugin.seen = Fingerprint {
                        wasm: None,
                        manifest: None,
                    };
                }
            }
        }
        self.rescan().await;
    }

    /// The plugin stem of a `<stem>.wasm` or `<stem>.toml` directly in the directory.
    fn plugin_stem(&self, path: &Path) -> Option<String> {
        let extension = path.extension()?.to_str()?;
        if extension != "wasm" && extension != "toml" {
            return None;
        }
        if path.parent()? != self.dir.as_path() {
            return None;
        }
        path.file_stem()?.to_str().map(str::to_owned)
    }

    /// Every stem with a `.wasm` in the directory or already known, reloaded when changed.
    async fn rescan(&self) {
        let mut stems: BTreeSet<String> = self.plugins.lock().await.keys().cloned().collect();
        match std::fs::read_dir(&self.dir) {
            Ok(entries) => stems.extend(entries.filter_map(|entry| {
                let path = entry.ok()?.path();
                let stem = self.plugin_stem(&path)?;
                (path.extension()? == "wasm").then_some(stem)
            })),
            Err(error) => {
                tracing::warn!(dir = %self.dir.display(), %error, "cannot rescan lane plugin directory");
            }
        }
        for stem in stems {
            self.reload(&stem, Trigger::Rescan).await;
        }
    }

    /// Loads, swaps or leaves the plugin `stem` according to what changed on disk.
    async fn reload(&self, stem: &str, trigger: Trigger) {
        let wasm = self.dir.join(format!("{stem}.wasm"));
        let mut plugins = self.plugins.lock().await;
        let seen = Fingerprint::of(&wasm);
        let plugin = plugins.entry(stem.to_owned()).or_insert_with(|| Plugin {
            seen: Fingerprint {
                wasm: None,
                manifest: None,
            },
            slot: None,
            refusal: None,
        });
        if plugin.seen == seen {
            return;
        }
        plugin.seen = seen;
        tracing::debug!(plugin = %wasm.display(), trigger = trigger.as_str(), "lane plugin changed");
        if seen.wasm.is_none() {
            if let Some(slot) = &plugin.slot {
                tracing::warn!(
                    plugin = %wasm.display(),
                    lane_id = slot.lane_id(),
                    generation = slot.current().number(),
                    "lane plugin file removed; the lane keeps serving its current generation"
                );
            }
            plugin.refusal = None;
            self.refused().remove(stem);
            return;
        }
        match &plugin.slot {
            Some(slot) => match slot.swap_plugin(&wasm, &self.policy).await {
                Ok(SwapOutcome::Activated(activation)) => tracing::info!(
                    plugin = %wasm.display(),
                    lane_id = activation.lane_id,
                    generation = activation.generation,
                    trigger = trigger.as_str(),
                    "lane plugin reloaded"
                ),
                // Logged by the slot.
                Ok(SwapOutcome::Unchanged { .. } | SwapOutcome::Withdrawn { .. }) => {}
                // Recorded as lane.rejected by the slot.
                Err(_) => {}
            },
            None => match self.load_new(&wasm, trigger).await {
                Ok(slot) => {
                    plugin.slot = Some(slot);
                    plugin.refusal = None;
                    self.refused().remove(stem);
                }
                Err(refusal) => {
                    self.refused().insert(stem.to_owned(), refusal.clone());
                    plugin.refusal = Some(refusal);
                }
            },
        }
    }

    /// A plugin file the watch has not served yet: a new lane, registered with the node, or
    /// why not.
    async fn load_new(&self, wasm: &Path, trigger: Trigger) -> Result<LaneSlot, PluginRefusal> {
        let rollback = self.config.rollback.clone();
        let loaded = LaneSlot::open_plugin(
            &self.runtime,
            wasm,
            &self.policy,
            rollback,
            &self.config.withdrawals,
        )
        .await;
        let slot = match loaded {
            Ok(slot) => slot,
            Err(error) => {
                let lane_id = plugins::read_manifest(wasm).ok().map(|(_, m)| m.lane_id);
                return Err(self.reject_new(wasm, lane_id.as_deref(), &error).await);
            }
        };
        let taken = self.slots().contains_key(slot.lane_id());
        if taken {
            let error = SwapError::LaneIdTaken {
                lane_id: slot.lane_id().to_owned(),
                origin: wasm.display().to_string(),
            };
            return Err(self.reject_new(wasm, Some(slot.lane_id()), &error).await);
        }
        if let Err(rejection) = register_lane_slot(self.host.as_ref(), &slot).await {
            let error = SwapError::Target {
                lane_id: slot.lane_id().to_owned(),
                message: rejection.message.unwrap_or_default(),
            };
            return Err(self.reject_new(wasm, Some(slot.lane_id()), &error).await);
        }
        tracing::info!(
            plugin = %wasm.display(),
            lane_id = slot.lane_id(),
            trigger = trigger.as_str(),
            "lane plugin loaded"
        );
        self.slots().insert(slot.lane_id().to_owned(), slot.clone());
        Ok(slot)
    }

    /// Records `lane.rejected` for a plugin that serves no lane yet; returns the refusal.
    async fn reject_new(
        &self,
        wasm: &Path,
        lane_id: Option<&str>,
        error: &SwapError,
    ) -> PluginRefusal {
        tracing::warn!(plugin = %wasm.display(), stage = error.stage(), %error, "lane plugin refused");
        let refused_digest = tokio::fs::read(wasm)
            .await
            .ok()
            .map(|bytes| ep_contracts::canonical::sha256_ref(&bytes));
        let payload = json!({
            "lane_id": lane_id,
            "source": wasm.display().to_string(),
            "stage": error.stage(),
            "reason": crate::swap::clip(error.to_string()),
            "refused_digest": refused_digest,
            "serving_digest": null,
            "serving_generation": null,
        });
        self.host
            .record_evidence(LANE_REJECTED, lane_id, payload)
            .await;
        PluginRefusal {
            source: wasm.to_owned(),
            lane_id: lane_id.map(str::to_owned),
            stage: error.stage(),
            reason: error.to_string(),
        }
    }
}
