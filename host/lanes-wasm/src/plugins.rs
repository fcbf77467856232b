//! Lane plugins: `<name>.wasm` plus its manifest `<name>.toml`, loaded under the operator's
//! [`HostPolicy`]. [`load_plugin`] loads one; [`load_plugin_dir`] loads every `*.wasm` of a
//! directory (sorted by file name) and reports each refusal with its reason instead of stopping
//! at the first bad plugin.

use std::path::{Path, PathBuf};

use ep_lane_api::LaneAdapter;
use thiserror::Error;

use crate::engine::WasmRuntime;
use crate::error::LoadError;
use crate::lane::{LaneSource, WasmLane};
use crate::manifest::{LaneManifest, ManifestError};
use crate::policy::{HostPolicy, PolicyError};

/// A plugin was refused; the message names the file and what to do.
#[derive(Debug, Error)]
pub enum PluginError {
    /// No `<stem>.toml` beside the component.
    #[error(
        "lane plugin {wasm} has no manifest: expected {expected} (see \
         examples/echo-lane/example-echo.toml)"
    )]
    ManifestMissing {
        /// The component file.
        wasm: PathBuf,
        /// Where the manifest was looked for.
        expected: PathBuf,
    },
    /// The manifest names a different ABI version than the component exports.
    #[error(
        "lane plugin {wasm} exports {component_abi} but its manifest {manifest} says \
         `wit_version = \"{manifest_abi}\"`; set `wit_version = \"{component_abi}\"`"
    )]
    AbiMismatch {
        /// The component file.
        wasm: PathBuf,
        /// The manifest file.
        manifest: PathBuf,
        /// What the manifest says.
        manifest_abi: String,
        /// What the component exports.
        component_abi: crate::AbiVersion,
    },
    /// The manifest is unreadable or invalid.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The policy refuses what the manifest asks for.
    #[error("lane plugin {wasm}: {source}")]
    Policy {
        /// The component file.
        wasm: PathBuf,
        /// Why.
        #[source]
        source: PolicyError,
    },
    /// The component did not load (not a component, ungranted import, failed probe, ...).
    #[error("lane plugin {wasm}: {source}")]
    Load {
        /// The component file.
        wasm: PathBuf,
        /// Why.
        #[source]
        source: LoadError,
    },
    /// The manifest names a different lane than the component reports.
    #[error(
        "lane plugin {wasm}: the manifest {manifest} says lane_id {manifest_lane_id:?} but the \
         component's capabilities report {component_lane_id:?}; make them equal"
    )]
    LaneIdMismatch {
        /// The component file.
        wasm: PathBuf,
        /// The manifest file.
        manifest: PathBuf,
        /// The manifest's `lane_id`.
        manifest_lane_id: String,
        /// The id `capabilities()` reports.
        component_lane_id: String,
    },
    /// The plugin directory (or one of its entries) could not be read.
    #[error("cannot read lane plugin directory {path}: {source}")]
    ReadDir {
        /// The directory or entry.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// What loading a plugin directory did.
#[derive(Debug, Default)]
pub struct PluginDirReport {
    /// Lanes loaded, in file-name order; each carries its manifest ([`WasmLane::manifest`]).
    pub loaded: Vec<WasmLane>,
    /// Plugins refused, in file-name order, with the reason.
    pub refused: Vec<(PathBuf, PluginError)>,
}

/// Loads the component at `wasm_path` with its manifest `<same stem>.toml`, narrowed by
/// `policy`. The manifest's `lane_id` must equal the id the component reports.
pub async fn load_plugin(
    runtime: &WasmRuntime,
    wasm_path: &Path,
    policy: &HostPolicy,
) -> Result<WasmLane, PluginError> {
    let (manifest_path, manifest) = read_manifest(wasm_path)?;
    load_with_manifest(
        runtime,
        wasm_path,
        LaneSource::Path(wasm_path.to_owned()),
        (manifest_path, manifest),
        policy,
    )
    .await
}

/// The manifest `<same stem>.toml` beside `wasm_path`, read and checked, with its path.
pub(crate) fn read_manifest(wasm_path: &Path) -> Result<(PathBuf, LaneManifest), PluginError> {
    read_manifest_text(wasm_path).map(|(path, manifest, _)| (path, manifest))
}

/// [`read_manifest`], with the manifest's text.
pub(crate) fn read_manifest_text(
    wasm_path: &Path,
) -> Result<(PathBuf, LaneManifest, String), PluginError> {
    let manifest_path = LaneManifest::path_for(wasm_path);
    if !manifest_path.is_file() {
        return Err(PluginError::ManifestMissing {
            wasm: wasm_path.to_owned(),
            expected: manifest_path,
        });
    }
    let (manifest, text) = LaneManifest::load_with_text(&manifest_path)?;
    Ok((manifest_path, manifest, text))
}

/// Loads the plugin component from `source` (the file `wasm_path` or bytes already read from
/// it) with its already-read manifest, narrowed by `policy`; the manifest's `lane_id` must equal
/// the id the component reports.
pub(crate) async fn load_with_manifest(
    runtime: &WasmRuntime,
    wasm_path: &Path,
    source: LaneSource,
    (manifest_path, manifest): (PathBuf, LaneManifest),
    policy: &HostPolicy,
) -> Result<WasmLane, PluginError> {
    let effective = policy
        .effective(&manifest)
        .map_err(|source| PluginError::Policy {
            wasm: wasm_path.to_owned(),
            source,
        })?;
    let lane = WasmLane::load_with_grants(runtime, source, effective.limits, effective.grants)
        .await
        .map_err(|source| PluginError::Load {
            wasm: wasm_path.to_owned(),
            source,
        })?;
    if lane.abi().package() != manifest.wit_version {
        return Err(PluginError::AbiMismatch {
            wasm: wasm_path.to_owned(),
            manifest: manifest_path,
            manifest_abi: manifest.wit_version,
            component_abi: lane.abi(),
        });
    }
    if lane.lane_id() != manifest.lane_id {
        return Err(PluginError::LaneIdMismatch {
            wasm: wasm_path.to_owned(),
            manifest: manifest_path,
            manifest_lane_id: manifest.lane_id,
            component_lane_id: lane.lane_id().to_owned(),
        });
    }
    Ok(lane.with_manifest(manifest))
}

/// Loads every `*.wasm` in `dir` (sorted by file name), never stopping at a bad plugin. An
/// unreadable directory is reported as one refusal of `dir` itself.
pub async fn load_plugin_dir(
    runtime: &WasmRuntime,
    dir: &Path,
    policy: &HostPolicy,
) -> PluginDirReport {
    let mut report = PluginDirReport::default();
    let components = match wasm_files(dir) {
        Ok(components) => components,
        Err(error) => {
            report.refused.push((dir.to_owned(), error));
            return report;
        }
    };
    for path in components {
        match load_plugin(runtime, &path, policy).await {
            Ok(lane) => report.loaded.push(lane),
            Err(error) => {
                tracing::warn!(plugin = %path.display(), %error, "lane plugin refused");
                report.refused.push((path, error));
            }
        }
    }
    report
}

/// The `*.wasm` files of `dir`, sorted by name.
fn wasm_files(dir: &Path) -> Result<Vec<PathBuf>, PluginError> {
    let read_dir = |source| PluginError::ReadDir {
        path: dir.to_owned(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_dir)? {
        let path = entry.map_err(read_dir)?.path();
        if path.extension().is_some_and(|ext| ext == "wasm") && !path.is_dir() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}
