//! Slots whose first generation is a plugin file, under a host's withdrawals: a file holding a
//! rolled-back digest serves the version its rollback restored instead.

use std::path::Path;
use std::sync::Arc;

use super::{LaneSlot, SwapError, read};
use crate::engine::WasmRuntime;
use crate::generation::{Artifact, RollbackPolicy};
use crate::lane::LaneSource;
use crate::manifest::LaneManifest;
use crate::plugins::{self, PluginError};
use crate::policy::HostPolicy;
use crate::withdrawals::Withdrawals;

impl LaneSlot {
    /// A slot whose first generation is the plugin at `wasm_path` (with its manifest, under
    /// `policy`; see [`crate::plugins::load_plugin`]). Its withdrawals live in memory; see
    /// [`LaneSlot::open_plugin`] for a host's store.
    pub async fn load_plugin(
        runtime: &WasmRuntime,
        wasm_path: &Path,
        policy: &HostPolicy,
        rollback: RollbackPolicy,
    ) -> Result<Self, SwapError> {
        Self::open_plugin(
            runtime,
            wasm_path,
            policy,
            rollback,
            &Withdrawals::in_memory(),
        )
        .await
    }

    /// A slot for the plugin at `wasm_path` whose rollbacks go to `withdrawals`. When the
    /// file's digest is withdrawn or quarantined there, the slot serves the artifact the lane's
    /// last rollback restored (kept by a persisted store) instead; without one the plugin is
    /// refused ([`SwapError::Withdrawn`]).
    pub async fn open_plugin(
        runtime: &WasmRuntime,
        wasm_path: &Path,
        policy: &HostPolicy,
        rollback: RollbackPolicy,
        withdrawals: &Withdrawals,
    ) -> Result<Self, SwapError> {
        let bytes = read(wasm_path).await?;
        let digest = ep_contracts::canonical::sha256_ref(&bytes);
        let (manifest_path, manifest, text) = plugins::read_manifest_text(wasm_path)?;
        let lane_id = manifest.lane_id.clone();
        let Some(withdrawal) = withdrawals.get(&lane_id, &digest) else {
            let lane = plugins::load_with_manifest(
                runtime,
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
            let source = wasm_path.display().to_string();
            let slot = Self::with_first(lane, source, Some(artifact), rollback)?
                .with_withdrawals(withdrawals.clone());
            withdrawals.arrived(&lane_id, &digest);
            return Ok(slot);
        };
        let withdrawn = || SwapError::Withdrawn {
            lane_id: lane_id.clone(),
            digest: digest.clone(),
            state: withdrawal.state,
            origin: wasm_path.display().to_string(),
        };
        let Some(kept) = withdrawals.kept(&lane_id) else {
            return Err(withdrawn());
        };
        let (kept_manifest, kept_text) = match &kept.manifest {
            Some(text) => (
                LaneManifest::parse(text, &kept.path).map_err(PluginError::from)?,
                text.clone(),
            ),
            None => (manifest, text),
        };
        if kept_manifest.lane_id != lane_id {
            return Err(withdrawn());
        }
        let lane = plugins::load_with_manifest(
            runtime,
            &kept.path,
            LaneSource::Bytes(Arc::clone(&kept.bytes)),
            (kept.path.clone(), kept_manifest),
            policy,
        )
        .await?;
        tracing::warn!(
            lane_id,
            plugin = %wasm_path.display(),
            withdrawn_digest = digest,
            state = %withdrawal.state,
            serving_digest = kept.digest,
            "the plugin file holds a rolled-back digest; serving the version its rollback restored"
        );
        let artifact = Artifact {
            bytes: kept.bytes,
            manifest: Some(kept_text),
        };
        let source = kept.path.display().to_string();
        Ok(Self::with_first(lane, source, Some(artifact), rollback)?
            .with_withdrawals(withdrawals.clone()))
    }
}
