use serde::{Deserialize, Serialize};

use super::{Map, RootVersion};

/// Admission-level placement (not `execution_surface.v1`); carried, not enforced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PlacementSurface {
    /// Always 1.
    pub contract_version: RootVersion,
    /// Kind of surface.
    pub surface_kind: String,
    /// Placement family.
    pub family: String,
    /// Free-form metadata.
    pub metadata: Map,
}

impl Default for PlacementSurface {
    fn default() -> Self {
        Self {
            contract_version: RootVersion,
            surface_kind: "local".to_owned(),
            family: "local".to_owned(),
            metadata: Map::new(),
        }
    }
}

crate::boundary_contract!(PlacementSurface, "placement_surface");

/// A named runtime constraint; carried, not enforced.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RuntimeConstraint {
    /// Always 1.
    pub contract_version: RootVersion,
    /// Constraint name.
    pub name: Option<String>,
    /// Constraint value.
    pub value: serde_json::Value,
    /// Free-form metadata.
    pub metadata: Map,
}

crate::boundary_contract!(RuntimeConstraint, "runtime_constraint");

/// What a lane can do; reported by `describe`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LaneCapabilities {
    /// Always 1.
    pub contract_version: RootVersion,
    /// The lane id.
    pub lane_id: Option<String>,
    /// Protocols the lane speaks.
    pub protocols: Vec<String>,
    /// Surfaces the lane runs on.
    pub surfaces: Vec<String>,
    /// Whether `execute` is supported.
    pub supports_execute: bool,
    /// Whether `stream` is supported.
    pub supports_stream: bool,
    /// Free-form metadata.
    pub metadata: Map,
}

impl Default for LaneCapabilities {
    fn default() -> Self {
        Self {
            contract_version: RootVersion,
            lane_id: None,
            protocols: Vec::new(),
            surfaces: Vec::new(),
            supports_execute: true,
            supports_stream: false,
            metadata: Map::new(),
        }
    }
}

crate::boundary_contract!(LaneCapabilities, "lane_capabilities");
