use serde::{Deserialize, Serialize};

use super::{Map, RootVersion};

/// Where a request came from: governed admission (`node_admitted`) or a lane owner calling its
/// own lane directly (`direct_lower_lane_owner`), which skips governed admission.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Provenance {
    /// Always 1.
    pub contract_version: RootVersion,
    /// `node_admitted` or `direct_lower_lane_owner`.
    pub kind: String,
    /// The direct lane owner, when direct.
    pub owner: Option<String>,
    /// Reference to the admission, when admitted.
    pub admission_ref: Option<String>,
    /// Free-form details.
    pub details: Map,
}

impl Provenance {
    /// Kind of governed requests.
    pub const NODE_ADMITTED: &'static str = "node_admitted";
    /// Kind of direct lane-owner requests.
    pub const DIRECT_LOWER_LANE_OWNER: &'static str = "direct_lower_lane_owner";

    /// Governed provenance.
    pub fn node_admitted() -> Self {
        Self::default()
    }

    /// Direct lane-owner provenance for `owner`.
    pub fn direct_lower_lane_owner(owner: impl Into<String>, details: Map) -> Self {
        Self {
            kind: Self::DIRECT_LOWER_LANE_OWNER.to_owned(),
            owner: Some(owner.into()),
            details,
            ..Self::default()
        }
    }

    /// Whether this is direct lane-owner provenance.
    pub fn is_direct(&self) -> bool {
        self.kind == Self::DIRECT_LOWER_LANE_OWNER
    }
}

impl Default for Provenance {
    fn default() -> Self {
        Self {
            contract_version: RootVersion,
            kind: Self::NODE_ADMITTED.to_owned(),
            owner: None,
            admission_ref: None,
            details: Map::new(),
        }
    }
}

crate::boundary_contract!(Provenance, "provenance");
