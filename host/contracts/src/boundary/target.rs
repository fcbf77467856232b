use serde::{Deserialize, Deserializer, Serialize};

use super::{Map, RootVersion};
use crate::inspect::inspect_opt;

/// Raw evidence a target presents before routing admission. Its claims are never trusted: only
/// a registered verifier's [`TargetDescriptor`] counts.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TargetAttestation {
    /// Always 1.
    pub contract_version: RootVersion,
    /// Attestation id.
    pub attestation_id: Option<String>,
    /// Type, used to pick a verifier.
    pub attestation_type: Option<String>,
    /// Verifier-specific evidence (signature, target id, ...).
    pub evidence: Map,
    /// When it was presented (RFC 3339).
    pub presented_at: Option<String>,
    /// Classes the target claims (untrusted).
    pub claimed_capability_classes: Vec<String>,
    /// Free-form metadata.
    pub metadata: Map,
}

crate::boundary_contract!(TargetAttestation, "target_attestation");

/// A verifier-minted routing descriptor: what the node routes on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetDescriptor {
    /// Always 1.
    pub contract_version: RootVersion,
    /// Target id (unique per node).
    pub target_id: String,
    /// The lane this target serves.
    pub lane_id: String,
    /// The verifier that minted this descriptor.
    pub verifier_id: String,
    /// Classes the verifier attests.
    pub attested_capability_classes: Vec<String>,
    /// The attestation this came from.
    pub attestation_id: Option<String>,
    /// When it was attested (RFC 3339).
    pub attested_at: Option<String>,
    /// When it stops being routable (RFC 3339).
    pub expires_at: Option<String>,
    /// Free-form metadata.
    pub metadata: Map,
    /// Verifier signature, when any.
    pub signature: Option<String>,
}

impl TargetDescriptor {
    /// A descriptor with the required fields and the given classes.
    pub fn new(
        target_id: impl Into<String>,
        lane_id: impl Into<String>,
        verifier_id: impl Into<String>,
        classes: Vec<String>,
    ) -> Self {
        Self {
            contract_version: RootVersion,
            target_id: target_id.into(),
            lane_id: lane_id.into(),
            verifier_id: verifier_id.into(),
            attested_capability_classes: classes,
            attestation_id: None,
            attested_at: None,
            expires_at: None,
            metadata: Map::new(),
            signature: None,
        }
    }
}

#[derive(Deserialize)]
#[serde(default)]
#[derive(Default)]
struct RawDescriptor {
    #[allow(dead_code)]
    contract_version: RootVersion,
    target_id: Option<String>,
    lane_id: Option<String>,
    verifier_id: Option<String>,
    attested_capability_classes: Vec<String>,
    attestation_id: Option<String>,
    attested_at: Option<String>,
    expires_at: Option<String>,
    metadata: Map,
    signature: Option<String>,
}

fn required<E: serde::de::Error>(field: &str, value: Option<String>) -> Result<String, E> {
    match value {
        Some(s) if !s.is_empty() => Ok(s),
        other => Err(E::custom(format!(
            "{field} must be a non-empty string, got: {}",
            inspect_opt(other.map(serde_json::Value::String).as_ref())
        ))),
    }
}

impl<'de> Deserialize<'de> for TargetDescriptor {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = RawDescriptor::deserialize(d)?;
        Ok(Self {
            contract_version: RootVersion,
            target_id: required("target_id", raw.target_id)?,
            lane_id: required("lane_id", raw.lane_id)?,
            verifier_id: required("verifier_id", raw.verifier_id)?,
            attested_capability_classes: raw.attested_capability_classes,
            attestation_id: raw.attestation_id,
            attested_at: raw.attested_at,
            expires_at: raw.expires_at,
            metadata: raw.metadata,
            signature: raw.signature,
        })
    }
}

crate::boundary_contract!(TargetDescriptor, "target_descriptor");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Contract;
    use serde_json::json;

    #[test]
    fn descriptor_requires_target_lane_and_verifier() {
        let err =
            TargetDescriptor::from_value(&json!({"lane_id": "l", "verifier_id": "v"})).unwrap_err();
        assert_eq!(
            err.to_string(),
            "target_id must be a non-empty string, got: nil"
        );
        let err = TargetDescriptor::from_value(
            &json!({"target_id": "t", "verifier_id": "v", "lane_id": ""}),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"lane_id must be a non-empty string, got: """#
        );
        let err =
            TargetDescriptor::from_value(&json!({"target_id": "t", "lane_id": "l"})).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("verifier_id must be a non-empty string")
        );
    }

    #[test]
    fn descriptor_round_trips() {
        let mut d = TargetDescriptor::new("t", "l", "v", vec!["c".into()]);
        d.expires_at = Some("2030-01-01T00:00:00Z".into());
        assert_eq!(TargetDescriptor::from_value(&d.to_value()).unwrap(), d);
    }
}
