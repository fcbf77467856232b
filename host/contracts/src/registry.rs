//! The registry of every contract by name, so tools (the CLI, services) can validate a document
//! named at run time: `contracts validate execution_route.v1 route.json`.

use serde_json::Value;

use crate::contract::Contract;
use crate::error::ContractError;

/// Which style a registered contract follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContractKind {
    /// Strict `*.v1` packet (§2.4–§2.7).
    Packet,
    /// Permissive integer-versioned boundary value (§3).
    Boundary,
    /// Placement surface (`execution_surface.v1`).
    Surface,
    /// Enterprise metadata (§2.8).
    Metadata,
}

impl ContractKind {
    /// The name shown by `contracts list`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Packet => "packet",
            Self::Boundary => "boundary",
            Self::Surface => "surface",
            Self::Metadata => "metadata",
        }
    }
}

/// One registered contract.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    /// The name documents are validated under.
    pub name: &'static str,
    /// Alternative name accepted on input (the packet registry key, e.g. `execution_route_v1`).
    pub alias: Option<&'static str>,
    /// Its style.
    pub kind: ContractKind,
    normalize: fn(&Value) -> Result<Value, ContractError>,
}

impl Entry {
    /// Validates `value` and returns its normalized dump.
    pub fn normalize(&self, value: &Value) -> Result<Value, ContractError> {
        (self.normalize)(value)
    }
}

fn normalize<T: Contract>(value: &Value) -> Result<Value, ContractError> {
    T::from_value(value).map(|v| v.to_value())
}

/// The packet registry key (`execution_route_v1`) of a packet version string.
fn registry_key(name: &str) -> Option<&'static str> {
    crate::version::PACKET_VERSIONS
        .iter()
        .find(|(_, version)| *version == name)
        .map(|(key, _)| *key)
}

macro_rules! entry {
    ($kind:ident, $ty:ty) => {
        Entry {
            name: <$ty as Contract>::NAME,
            alias: registry_key(<$ty as Contract>::NAME),
            kind: ContractKind::$kind,
            normalize: normalize::<$ty>,
        }
    };
}

/// Every registered contract, packets first in registry order.
pub fn entries() -> Vec<Entry> {
    use crate::boundary as b;
    use crate::{flow, hazmat, intents, metadata as m, simulation as sim, surface};
    vec![
        entry!(Packet, flow::AuthorityDecision),
        entry!(Packet, flow::BoundarySessionDescriptor),
        entry!(Packet, flow::ExecutionIntentEnvelope),
        entry!(Packet, intents::HttpExecutionIntent),
        entry!(Packet, intents::ProcessExecutionIntent),
        entry!(Packet, intents::JsonRpcExecutionIntent),
        entry!(Packet, flow::ExecutionRoute),
        entry!(Packet, hazmat::AttachGrant),
        entry!(Packet, flow::CredentialHandleRef),
        entry!(Packet, flow::ExecutionEventV1),
        entry!(Packet, flow::ExecutionOutcome),
        entry!(Packet, sim::LowerSimulationScenario),
        entry!(Packet, sim::LowerSimulationEvidence),
        entry!(Packet, sim::ExecutionEvidenceBoundary),
        entry!(Packet, sim::NoEgressPolicy),
        entry!(Packet, sim::AdapterSelectionPolicy),
        entry!(Packet, hazmat::StreamBackpressure),
        entry!(Packet, hazmat::WorkerBudget),
        entry!(Packet, hazmat::NoBypassScan),
        entry!(Packet, hazmat::StreamAttachRevocation),
        entry!(Surface, surface::ExecutionSurface),
        entry!(Metadata, m::ExecutionActivityMetadata),
        entry!(Metadata, m::CancellationMetadata),
        entry!(Metadata, m::HeartbeatMetadata),
        entry!(Metadata, m::AttachGrantContract),
        entry!(Metadata, m::StreamLeaseContract),
        entry!(Metadata, m::RuntimeEvidenceRef),
        entry!(Metadata, m::ActivitySideEffectIdempotency),
        entry!(Boundary, b::Provenance),
        entry!(Boundary, b::ExecutionRef),
        entry!(Boundary, b::AuthorityRef),
        entry!(Boundary, b::SandboxProfile),
        entry!(Boundary, b::AcceptableAttestation),
        entry!(Boundary, b::PlacementSurface),
        entry!(Boundary, b::RuntimeConstraint),
        entry!(Boundary, b::LaneCapabilities),
        entry!(Boundary, b::TargetAttestation),
        entry!(Boundary, b::TargetDescriptor),
        entry!(Boundary, b::AdmissionRequest),
        entry!(Boundary, b::AdmissionDecision),
        entry!(Boundary, b::AdmissionRejection),
        entry!(Boundary, b::ExecutionRequest),
        entry!(Boundary, b::ExecutionEvent),
        entry!(Boundary, b::ExecutionResult),
        entry!(Boundary, b::Evidence),
        entry!(Boundary, b::NodeDescriptor),
    ]
}

/// Finds a contract by name or alias.
pub fn find(name: &str) -> Option<Entry> {
    entries()
        .into_iter()
        .find(|e| e.name == name || e.alias == Some(name))
}

/// Validates `value` as the contract called `name`, returning its normalized dump.
pub fn validate(name: &str, value: &Value) -> Result<Value, RegistryError> {
    let entry = find(name).ok_or_else(|| RegistryError::UnknownContract(name.to_owned()))?;
    entry.normalize(value).map_err(RegistryError::Invalid)
}

/// Why a named validation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// No contract has that name.
    #[error("unknown contract {0:?}; `execution-plane contracts list` shows the names")]
    UnknownContract(String),
    /// The document is not a valid value of the contract.
    #[error(transparent)]
    Invalid(ContractError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_packet_of_the_version_registry_is_registered_in_order() {
        let packets: Vec<&str> = entries()
            .iter()
            .filter(|e| e.kind == ContractKind::Packet)
            .map(|e| e.name)
            .collect();
        let expected: Vec<&str> = crate::version::PACKET_VERSIONS
            .iter()
            .map(|(_, v)| *v)
            .collect();
        assert_eq!(packets, expected);
        assert!(find("execution_route_v1").is_some());
    }

    #[test]
    fn names_are_unique() {
        let all = entries();
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a.name, b.name);
            }
        }
    }

    #[test]
    fn validate_normalizes_and_reports_unknown_names() {
        let out = validate("acceptable_attestation", &json!({"classes": ["a", "a"]})).unwrap();
        assert_eq!(out["classes"], json!(["a"]));
        assert!(matches!(
            validate("nope", &json!({})),
            Err(RegistryError::UnknownContract(_))
        ));
    }
}
