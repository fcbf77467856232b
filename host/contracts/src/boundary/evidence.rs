use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{ExecutionRef, RootVersion};
use crate::ids::stable_id;

/// One evidence record: a step the node took, with its full context, sent to every sink.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Evidence {
    /// Always 1.
    pub contract_version: RootVersion,
    /// Evidence id (minted `ev-<ms>-<n>` when absent).
    pub evidence_id: String,
    /// `admission.accepted`, `target.selected`, `execution.started`, ...
    pub evidence_type: Option<String>,
    /// The execution, once admitted.
    pub execution_ref: Option<ExecutionRef>,
    /// The admission request id.
    pub request_id: Option<String>,
    /// The sandbox profile's bundle hash.
    pub policy_bundle_hash: Option<String>,
    /// The chosen target.
    pub target_id: Option<String>,
    /// The verifier that attested the target.
    pub target_verifier_id: Option<String>,
    /// The class the target was chosen under.
    pub attestation_class: Option<String>,
    /// The lane.
    pub lane_id: Option<String>,
    /// The authority verifier in force.
    pub authority_verifier_id: Option<String>,
    /// Bounded payload (shapes and fingerprints, never bodies or secrets).
    pub payload: Value,
    /// When it was emitted (RFC 3339).
    pub emitted_at: Option<String>,
}

impl Default for Evidence {
    fn default() -> Self {
        Self {
            contract_version: RootVersion,
            evidence_id: stable_id("ev"),
            evidence_type: None,
            execution_ref: None,
            request_id: None,
            policy_bundle_hash: None,
            target_id: None,
            target_verifier_id: None,
            attestation_class: None,
            lane_id: None,
            authority_verifier_id: None,
            payload: Value::Object(serde_json::Map::new()),
            emitted_at: None,
        }
    }
}

crate::boundary_contract!(Evidence, "evidence");
