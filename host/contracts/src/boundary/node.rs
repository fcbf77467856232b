use serde::{Deserialize, Serialize};

use super::{LaneCapabilities, Map, RootVersion, TargetDescriptor};

/// The contract versions a node accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionRange {
    /// Lowest accepted.
    pub min: i64,
    /// Highest accepted.
    pub max: i64,
}

impl Default for VersionRange {
    fn default() -> Self {
        Self {
            min: crate::version::ROOT_CONTRACT_VERSION,
            max: crate::version::ROOT_CONTRACT_VERSION,
        }
    }
}

/// A registered target verifier as `describe` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct VerifierSummary {
    /// Verifier id.
    pub verifier_id: String,
    /// Attestation types it handles.
    pub attestation_types: Vec<String>,
    /// Classes it can attest.
    pub capability_classes: Vec<String>,
}

/// What a node is and what it can run; callers pick nodes by it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct NodeDescriptor {
    /// Always 1.
    pub contract_version: RootVersion,
    /// Node id.
    pub node_id: Option<String>,
    /// Accepted contract versions.
    pub contract_version_range: VersionRange,
    /// Lanes with their capabilities.
    pub registered_lanes: Vec<LaneCapabilities>,
    /// Target verifiers.
    pub registered_target_verifiers: Vec<VerifierSummary>,
    /// Verified targets.
    pub verified_targets: Vec<TargetDescriptor>,
    /// Authority verifier id.
    pub authority_verifier: Option<String>,
    /// Whether registration is complete.
    pub registration_complete: bool,
    /// Free-form metadata.
    pub metadata: Map,
}

crate::boundary_contract!(NodeDescriptor, "node_descriptor");
