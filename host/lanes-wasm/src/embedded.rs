//! Lanes whose component and manifest are compiled into the host binary (the first-party lanes
//! of `plugins/`): loaded exactly like a plugin file, under the same operator policy, with a
//! `<built-in>/<name>.wasm` label in place of a path.

use std::path::PathBuf;

use ep_node::LaneAdapter;

use crate::engine::WasmRuntime;
use crate::lane::{LaneSource, WasmLane};
use crate::manifest::LaneManifest;
use crate::plugins::PluginError;
use crate::policy::HostPolicy;

/// Loads an embedded component `wasm` with its manifest text, narrowed by `policy`.
pub async fn load_embedded(
    runtime: &WasmRuntime,
    name: &str,
    wasm: &'static [u8],
    manifest_text: &str,
    policy: &HostPolicy,
) -> Result<WasmLane, PluginError> {
    let label = PathBuf::from(format!("<built-in>/{name}.wasm"));
    let manifest_path = LaneManifest::path_for(&label);
    let manifest = LaneManifest::parse(manifest_text, &manifest_path)?;
    let effective = policy
        .effective(&manifest)
        .map_err(|source| PluginError::Policy {
            wasm: label.clone(),
            source,
        })?;
    let lane = WasmLane::load_with_grants(
        runtime,
        LaneSource::from(wasm),
        effective.limits,
        effective.grants,
    )
    .await
    .map_err(|source| PluginError::Load {
        wasm: label.clone(),
        source,
    })?;
    if lane.lane_id() != manifest.lane_id {
        return Err(PluginError::LaneIdMismatch {
            wasm: label,
            manifest: manifest_path,
            manifest_lane_id: manifest.lane_id,
            component_lane_id: lane.lane_id().to_owned(),
        });
    }
    Ok(lane.with_manifest(manifest))
}
