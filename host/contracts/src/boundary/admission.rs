use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::{
    AcceptableAttestation, AuthorityRef, ExecutionRef, Map, PlacementSurface, Provenance,
    RootVersion, SandboxProfile,
};
use crate::ids::stable_id;
use crate::inspect::inspect_opt;

/// A caller's request to run something on a lane; the input of admission.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AdmissionRequest {
    /// Kept as given (default 1) so admission can report `contract_version_mismatch`.
    pub contract_version: Value,
    /// Request id (minted `adm-<ms>-<n>` when absent).
    pub request_id: String,
    /// The lane to run on (required).
    pub lane_id: String,
    /// Lane operation.
    pub operation: Option<String>,
    /// Lane payload.
    pub payload: Map,
    /// Proof of authority.
    pub authority_ref: Option<AuthorityRef>,
    /// Governance bundle, carried.
    pub sandbox_profile: Option<SandboxProfile>,
    /// Accepted isolation classes.
    pub acceptable_attestation: AcceptableAttestation,
    /// Placement, carried.
    pub placement: Option<PlacementSurface>,
    /// Runtime constraints, carried raw.
    pub constraints: Vec<Value>,
    /// Where the request came from.
    pub provenance: Provenance,
    /// Free-form metadata.
    pub metadata: Map,
}

impl AdmissionRequest {
    /// A governed request for `lane_id` with a fresh request id.
    pub fn new(lane_id: impl Into<String>) -> Self {
        Self {
            contract_version: Value::from(crate::version::ROOT_CONTRACT_VERSION),
            request_id: stable_id("adm"),
            lane_id: lane_id.into(),
            operation: None,
            payload: Map::new(),
            authority_ref: None,
            sandbox_profile: None,
            acceptable_attestation: AcceptableAttestation::default(),
            placement: None,
            constraints: Vec::new(),
            provenance: Provenance::node_admitted(),
            metadata: Map::new(),
        }
    }
}

/// Unknown top-level keys are refused (upstream ignores them): a misspelt field such as
/// `metdata` would otherwise be dropped silently, and with it a narrowing the caller (and the
/// signer of its authority ref) meant to apply.
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct RawRequest {
    contract_version: Option<Value>,
    request_id: Option<String>,
    lane_id: Option<String>,
    operation: Option<String>,
    payload: Map,
    authority_ref: Option<AuthorityRef>,
    sandbox_profile: Option<SandboxProfile>,
    acceptable_attestation: Option<AcceptableAttestation>,
    placement: Option<PlacementSurface>,
    constraints: Vec<Value>,
    provenance: Option<Provenance>,
    metadata: Map,
}

impl<'de> Deserialize<'de> for AdmissionRequest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = RawRequest::deserialize(d)?;
        let lane_id = match raw.lane_id {
            Some(s) if !s.is_empty() => s,
            other => {
                return Err(serde::de::Error::custom(format!(
                    "lane_id must be a non-empty string, got: {}",
                    inspect_opt(other.map(Value::String).as_ref())
                )));
            }
        };
        Ok(Self {
            contract_version: raw
                .contract_version
                .filter(|v| !v.is_null())
                .unwrap_or_else(|| Value::from(crate::version::ROOT_CONTRACT_VERSION)),
            request_id: raw
                .request_id
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| stable_id("adm")),
            lane_id,
            operation: raw.operation,
            payload: raw.payload,
            authority_ref: raw.authority_ref,
            sandbox_profile: raw.sandbox_profile,
            acceptable_attestation: raw.acceptable_attestation.unwrap_or_default(),
            placement: raw.placement,
            constraints: raw.constraints,
            provenance: raw.provenance.unwrap_or_default(),
            metadata: raw.metadata,
        })
    }
}

crate::boundary_contract!(AdmissionRequest, "admission_request");

/// An accepted admission: the execution ref and the one target chosen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AdmissionDecision {
    /// Always 1.
    pub contract_version: RootVersion,
    /// The request this decides.
    pub request_id: Option<String>,
    /// `accepted`.
    pub status: String,
    /// The minted execution ref.
    pub execution_ref: Option<ExecutionRef>,
    /// The chosen target (none on the direct path).
    pub target_id: Option<String>,
    /// The lane.
    pub lane_id: Option<String>,
    /// The class the target was chosen under.
    pub attestation_class: Option<String>,
    /// Why, when not plain governed admission.
    pub reason: Option<String>,
    /// Attached evidence.
    pub evidence: Vec<Value>,
}

impl Default for AdmissionDecision {
    fn default() -> Self {
        Self {
            contract_version: RootVersion,
            request_id: None,
            status: "accepted".to_owned(),
            execution_ref: None,
            target_id: None,
            lane_id: None,
            attestation_class: None,
            reason: None,
            evidence: Vec::new(),
        }
    }
}

crate::boundary_contract!(AdmissionDecision, "admission_decision");

macro_rules! rejection_reasons {
    ($( $variant:ident => $name:literal, )*) => {
        /// The rejection reasons admission and lanes use.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum RejectionReason { $(
            #[doc = concat!("`", $name, "`")]
            $variant,
        )* }

        impl RejectionReason {
            /// All reasons.
            pub const ALL: &'static [RejectionReason] = &[$(RejectionReason::$variant,)*];

            /// The wire name.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $name,)* }
            }

            /// The reason for a wire name.
            pub fn parse(name: &str) -> Option<Self> {
                match name { $($name => Some(Self::$variant),)* _ => None }
            }
        }
    };
}

rejection_reasons! {
    ContractVersionMismatch => "contract_version_mismatch",
    RegistrationIncomplete => "registration_incomplete",
    AuthorityVerifierMissing => "authority_verifier_missing",
    LaneNotRegistered => "lane_not_registered",
    AuthorityRefMissing => "authority_ref_missing",
    AuthorityRejected => "authority_rejected",
    NoSatisfyingAttestedTarget => "no_satisfying_attested_target",
    TargetAttestationUnverifiable => "target_attestation_unverifiable",
    InvalidLaneRequest => "invalid_lane_request",
    StreamNotSupported => "stream_not_supported",
    NotSupported => "not_supported",
}

impl std::fmt::Display for RejectionReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refusal: the reason code, a message and details.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AdmissionRejection {
    /// Always 1.
    pub contract_version: RootVersion,
    /// The refused request, when known.
    pub request_id: Option<String>,
    /// Reason code (see [`RejectionReason`]; verifiers may add their own).
    pub reason: String,
    /// Human message.
    pub message: Option<String>,
    /// Details as data.
    pub details: Map,
}

impl AdmissionRejection {
    /// A rejection with `reason` and `message`, no request id.
    pub fn new(reason: RejectionReason, message: impl Into<String>) -> Self {
        Self {
            contract_version: RootVersion,
            request_id: None,
            reason: reason.as_str().to_owned(),
            message: Some(message.into()),
            details: Map::new(),
        }
    }

    /// Sets the request id.
    #[must_use]
    pub fn for_request(mut self, request_id: impl Into<String>) -> Self {
        self.request_id = Some(request_id.into());
        self
    }

    /// Adds one detail.
    #[must_use]
    pub fn with_detail(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.details.insert(key.to_owned(), value.into());
        self
    }

    /// The typed reason, when it is one of the known ones.
    pub fn reason_code(&self) -> Option<RejectionReason> {
        RejectionReason::parse(&self.reason)
    }
}

impl std::fmt::Display for AdmissionRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.message {
            Some(m) => write!(f, "{}: {m}", self.reason),
            None => f.write_str(&self.reason),
        }
    }
}

impl std::error::Error for AdmissionRejection {}

crate::boundary_contract!(AdmissionRejection, "admission_rejection");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Contract;
    use serde_json::json;

    #[test]
    fn request_requires_lane_and_mints_request_id() {
        let err = AdmissionRequest::from_value(&json!({})).unwrap_err();
        assert_eq!(
            err.to_string(),
            "lane_id must be a non-empty string, got: nil"
        );
        let r = AdmissionRequest::from_value(&json!({"lane_id": "process"})).unwrap();
        assert!(r.request_id.starts_with("adm-"));
        assert_eq!(r.contract_version, json!(1));
        assert_eq!(r.provenance, Provenance::node_admitted());
    }

    #[test]
    fn request_keeps_incoming_contract_version() {
        let r =
            AdmissionRequest::from_value(&json!({"lane_id": "p", "contract_version": 0})).unwrap();
        assert_eq!(r.contract_version, json!(0));
    }

    #[test]
    fn request_coerces_nested_values() {
        let r = AdmissionRequest::from_value(&json!({
            "lane_id": "process",
            "authority_ref": {"ref": "allow"},
            "acceptable_attestation": {"classes": ["local-process-weak"]},
            "sandbox_profile": {"profile_ref": "sandbox://test", "bundle_hash": "sha256:test"}
        }))
        .unwrap();
        assert_eq!(r.authority_ref.unwrap().reference.as_deref(), Some("allow"));
        assert_eq!(
            r.acceptable_attestation.classes,
            vec!["local-process-weak".to_owned()]
        );
        let back = AdmissionRequest::from_value(&AdmissionRequest::new("x").to_value()).unwrap();
        assert_eq!(back.lane_id, "x");
    }

    #[test]
    fn nested_type_errors_name_the_path() {
        let err = AdmissionRequest::from_value(&json!({
            "lane_id": "p", "acceptable_attestation": {"classes": [1]}
        }))
        .unwrap_err();
        assert_eq!(err.field(), Some("acceptable_attestation.classes[0]"));
    }

    #[test]
    fn rejection_helper_stringifies_reason() {
        let r = AdmissionRejection::new(RejectionReason::LaneNotRegistered, "nope");
        assert_eq!(r.to_value()["reason"], "lane_not_registered");
        assert_eq!(r.request_id, None);
    }
}
