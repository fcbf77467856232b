//! The wasm target verifier: admits loaded lane generations as routing targets with the
//! isolation class `wasm-engine:wasmtime@<version>`. It trusts no claim in an attestation: the
//! component digest must be one this runtime has loaded and still serves, and the lane id comes
//! from the runtime's own record of that digest, not from the evidence.
//!
//! [`register_wasm_lane`] does the whole dance for a host: register the lane, register this
//! verifier, and connect the generation as an in-process target.

use std::sync::Arc;

use async_trait::async_trait;
use ep_contracts::boundary::{
    AdmissionRejection, Map, RejectionReason, TargetAttestation, TargetDescriptor,
};
use ep_contracts::canonical::is_sha256_ref;
use ep_lane_api::{ConnectOptions, LaneAdapter, LaneHost, TargetVerifier};
use serde_json::Value;

use crate::digests::LoadedDigests;
use crate::engine::WasmRuntime;
use crate::lane::WasmLane;

/// The verifier id recorded in its descriptors and in evidence.
pub const WASM_VERIFIER_ID: &str = "execution-plane:wasm-engine-verifier:v1";
/// The attestation type it handles.
pub const WASM_ATTESTATION_TYPE: &str = "wasm-component";

/// Verifies `wasm-component` attestations against the runtime's loaded digests.
#[derive(Debug, Clone)]
pub struct WasmEngineVerifier {
    digests: LoadedDigests,
}

impl WasmEngineVerifier {
    /// A verifier that believes exactly the digests `runtime` has loaded.
    pub fn new(runtime: &WasmRuntime) -> Self {
        Self {
            digests: runtime.inner.digests.clone(),
        }
    }
}

impl WasmLane {
    /// The attestation a host presents to connect this generation as a target: type
    /// `wasm-component`, evidence `{component_digest, lane_id, engine}`.
    pub fn attestation(&self) -> TargetAttestation {
        let mut evidence = self.host_metadata();
        evidence.insert("lane_id".to_owned(), Value::from(self.lane_id()));
        TargetAttestation {
            attestation_id: Some(ep_contracts::ids::stable_id("att-wasm")),
            attestation_type: Some(WASM_ATTESTATION_TYPE.to_owned()),
            evidence,
            presented_at: Some(ep_contracts::ids::now_iso8601()),
            claimed_capability_classes: vec![crate::WASM_ENGINE_CLASS.to_owned()],
            ..TargetAttestation::default()
        }
    }
}

fn unverifiable(message: String) -> AdmissionRejection {
    AdmissionRejection::new(RejectionReason::TargetAttestationUnverifiable, message)
        .with_detail("verifier_id", WASM_VERIFIER_ID)
}

#[async_trait]
impl TargetVerifier for WasmEngineVerifier {
    fn verifier_id(&self) -> &str {
        WASM_VERIFIER_ID
    }

    fn attestation_types(&self) -> Vec<String> {
        vec![WASM_ATTESTATION_TYPE.to_owned()]
    }

    fn capability_classes(&self) -> Vec<String> {
        vec![crate::WASM_ENGINE_CLASS.to_owned()]
    }

    fn handles(&self, attestation: &TargetAttestation) -> bool {
        attestation.attestation_type.as_deref() == Some(WASM_ATTESTATION_TYPE)
    }

    /// Requires `evidence.component_digest` (a `sha256:` ref) of a loaded generation; the
    /// descriptor's lane id is the runtime's record for that digest (a conflicting
    /// `options.lane_id` is refused), its target id `options.target_id` or `wasm:<lane_id>`.
    async fn verify(
        &self,
        attestation: &TargetAttestation,
        options: &ConnectOptions,
    ) -> Result<TargetDescriptor, AdmissionRejection> {
        let digest = match attestation.evidence.get("component_digest") {
            Some(Value::String(digest)) if is_sha256_ref(digest) => digest.as_str(),
            Some(other) => {
                return Err(unverifiable(format!(
                    "wasm-component attestation evidence.component_digest must be a sha256: \
                     ref, got {other}"
                )));
            }
            None => {
                return Err(unverifiable(
                    "wasm-component attestation requires evidence.component_digest (the \
                     sha256: digest of a loaded lane component)"
                        .to_owned(),
                ));
            }
        };
        let Some(lane_id) = self.digests.lane_of(digest) else {
            return Err(unverifiable(format!(
                "component digest {digest} is not loaded by this wasm runtime; load the lane \
                 before connecting it as a target"
            ))
            .with_detail("component_digest", digest));
        };
        if let Some(asked) = options.lane_id.as_deref().filter(|s| !s.is_empty())
            && asked != lane_id
        {
            return Err(unverifiable(format!(
                "component {digest} serves lane {lane_id:?}, not {asked:?}"
            )));
        }
        let target_id = options
            .target_id
            .clone()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| format!("wasm:{lane_id}"));
        let mut descriptor = TargetDescriptor::new(
            target_id,
            lane_id,
            WASM_VERIFIER_ID,
            vec![crate::WASM_ENGINE_CLASS.to_owned()],
        );
        descriptor.attestation_id = attestation.attestation_id.clone();
        descriptor.attested_at = attestation.presented_at.clone();
        let mut metadata = Map::new();
        metadata.insert("component_digest".to_owned(), Value::from(digest));
        metadata.insert("engine".to_owned(), Value::from(crate::ENGINE));
        descriptor.metadata = metadata;
        Ok(descriptor)
    }
}

/// Registers `lane` with `host`, registers the lane's runtime's [`WasmEngineVerifier`], and
/// connects the generation as the host's in-process target (`wasm:<lane_id>`).
pub async fn register_wasm_lane(
    host: &dyn LaneHost,
    lane: Arc<WasmLane>,
) -> Result<TargetDescriptor, AdmissionRejection> {
    host.register_lane(Arc::clone(&lane) as Arc<dyn LaneAdapter>);
    host.register_target_verifier(Arc::new(WasmEngineVerifier::new(lane.runtime())));
    host.connect_in_process(lane.attestation(), ConnectOptions::default())
        .await
}
