//! The lanes a service serves: the plugin directory (watched, or loaded once) and the built-in
//! lanes no plugin replaces, each a [`LaneSlot`] whose rollbacks go to the host's withdrawals,
//! and the lanes it does not serve, with why.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ep_lanes_wasm::{
    HostPolicy, LaneSlot, PluginWatch, RollbackPolicy, WasmRuntime, WatchConfig, Withdrawals,
    load_embedded, register_lane_slot, watch_plugin_dir,
};
use ep_node::node::Node;

use crate::api::RefusedLane;
use crate::config::ServeConfig;

/// Where the plugin lanes come from.
pub(super) enum Plugins {
    /// No plugin directory.
    None,
    /// A watched directory.
    Watched(Arc<PluginWatch>),
    /// A directory loaded once (reloads swap changed files): `.wasm` path → slot, and the
    /// files refused.
    Fixed {
        slots: BTreeMap<PathBuf, LaneSlot>,
        refused: BTreeMap<PathBuf, RefusedLane>,
    },
}

impl Plugins {
    pub(super) fn slots(&self) -> Vec<LaneSlot> {
        match self {
            Self::None => Vec::new(),
            Self::Watched(watch) => watch.slots(),
            Self::Fixed { slots, .. } => slots.values().cloned().collect(),
        }
    }

    /// The plugin files that serve no lane, and why.
    pub(super) fn refused(&self) -> Vec<RefusedLane> {
        match self {
            Self::None => Vec::new(),
            Self::Watched(watch) => watch.refused().iter().map(RefusedLane::from).collect(),
            Self::Fixed { refused, .. } => refused.values().cloned().collect(),
        }
    }
}

/// What every lane loaded for one host shares.
pub(super) struct Loader<'a> {
    pub(super) runtime: &'a WasmRuntime,
    pub(super) node: &'a Node,
    pub(super) policy: &'a HostPolicy,
    pub(super) withdrawals: &'a Withdrawals,
}

impl Loader<'_> {
    /// The first-party lanes that load under the policy, each in a slot of its own (not
    /// registered); the others in `refused`.
    pub(super) async fn builtins(&self, refused: &mut Vec<RefusedLane>) -> Vec<LaneSlot> {
        let mut slots = Vec::new();
        for builtin in ep_builtin_lanes::all() {
            let label = format!("<built-in>/{}.wasm", builtin.name);
            let refusal = |reason: String| RefusedLane {
                lane_id: Some(builtin.name.to_owned()),
                source: label.clone(),
                reason,
            };
            let lane = match load_embedded(
                self.runtime,
                builtin.name,
                builtin.wasm,
                builtin.manifest,
                self.policy,
            )
            .await
            {
                Ok(lane) => lane,
                Err(error) => {
                    tracing::warn!(lane = builtin.name, %error, "built-in lane not served");
                    refused.push(refusal(error.to_string()));
                    continue;
                }
            };
            match LaneSlot::new(lane, label.clone(), RollbackPolicy::default()) {
                Ok(slot) => slots.push(slot.with_withdrawals(self.withdrawals.clone())),
                Err(error) => refused.push(refusal(error.to_string())),
            }
        }
        slots
    }

    /// Registers the built-in slots whose lane no plugin serves; returns the ones registered.
    pub(super) async fn register_builtins(
        &self,
        builtins: Vec<LaneSlot>,
        served_by_plugins: &BTreeSet<String>,
        refused: &mut Vec<RefusedLane>,
    ) -> Vec<LaneSlot> {
        let mut registered = Vec::new();
        for slot in builtins {
            if served_by_plugins.contains(slot.lane_id()) {
                tracing::info!(lane = slot.lane_id(), "a plugin replaces the built-in lane");
                continue;
            }
            match register_lane_slot(self.node, &slot).await {
                Ok(_) => registered.push(slot),
                Err(rejection) => refused.push(RefusedLane {
                    lane_id: Some(slot.lane_id().to_owned()),
                    source: format!("<built-in>/{}.wasm", slot.lane_id()),
                    reason: rejection.message.unwrap_or_default(),
                }),
            }
        }
        registered
    }

    /// The plugin directory's lanes: watched, loaded once, or none when the directory is
    /// absent. Only a watch that cannot start is an error.
    pub(super) async fn plugins(&self, config: &ServeConfig) -> Result<Plugins, String> {
        let dir = &config.plugins.dir;
        if !dir.is_dir() {
            tracing::info!(dir = %dir.display(), "no lane plugin directory; serving the built-in lanes");
            return Ok(Plugins::None);
        }
        if config.plugins.watch {
            let watch_config = WatchConfig {
                withdrawals: self.withdrawals.clone(),
                ..WatchConfig::default()
            };
            let watch = watch_plugin_dir(
                self.runtime,
                self.node,
                dir,
                self.policy.clone(),
                watch_config,
            )
            .await
            .map_err(|e| e.to_string())?;
            return Ok(Plugins::Watched(Arc::new(watch)));
        }
        let mut slots = BTreeMap::new();
        let mut refused = BTreeMap::new();
        for path in wasm_files(dir) {
            match self.one(&path).await {
                Ok(slot) => {
                    slots.insert(path, slot);
                }
                Err(refusal) => {
                    refused.insert(path, refusal);
                }
            }
        }
        Ok(Plugins::Fixed { slots, refused })
    }

    /// One plugin file as a registered slot, or why not.
    pub(super) async fn one(&self, path: &Path) -> Result<LaneSlot, RefusedLane> {
        let lane_id = || {
            ep_lanes_wasm::LaneManifest::load(&ep_lanes_wasm::LaneManifest::path_for(path))
                .ok()
                .map(|m| m.lane_id)
        };
        let refusal = |lane_id: Option<String>, reason: String| RefusedLane {
            lane_id,
            source: path.display().to_string(),
            reason,
        };
        let slot = match LaneSlot::open_plugin(
            self.runtime,
            path,
            self.policy,
            RollbackPolicy::default(),
            self.withdrawals,
        )
        .await
        {
            Ok(slot) => slot,
            Err(error) => {
                tracing::warn!(plugin = %path.display(), %error, "lane plugin refused");
                return Err(refusal(lane_id(), error.to_string()));
            }
        };
        match register_lane_slot(self.node, &slot).await {
            Ok(_) => Ok(slot),
            Err(rejection) => Err(refusal(
                Some(slot.lane_id().to_owned()),
                rejection.message.unwrap_or_default(),
            )),
        }
    }
}

/// The `*.wasm` files of `dir`, sorted (none when unreadable).
pub(super) fn wasm_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "wasm") && p.is_file())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}
