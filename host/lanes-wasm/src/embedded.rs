//! Lanes whose component and manifest are compiled into the host binary (the first-party lanes
//! of `plugins/`): loaded exactly like a plugin file, under the same operator policy, with a
//! `<built-in>/<name>.wasm` label in place of a path.

use std::path::PathBuf;

use crate::engine::WasmRuntime;
use crate::lane::{LaneSource, WasmLane};
use crate::manifest::LaneManifest;
use crate::plugins::{PluginError, load_with_manifest};
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
    load_with_manifest(
        runtime,
        &label,
        LaneSource::from(wasm),
        (manifest_path, manifest),
        policy,
    )
    .await
}
