//! The honest local weak target verifier: it admits targets that run lanes as local processes
//! on this host and attests the class `local-process-weak`, which claims **no** sandbox. A
//! caller that lists this class in its acceptable set accepts unisolated local execution.
//!
//! It is a stub in the upstream sense: the "signature" it requires is only checked for
//! presence. Hosts that need real isolation attest other classes through other verifiers.
//!
//! ```
//! use ep_node::verifiers::local_weak::{LocalWeakVerifier, MintOptions};
//!
//! let attestation = LocalWeakVerifier::mint_attestation(&MintOptions::default());
//! assert_eq!(attestation.attestation_type.as_deref(), Some("local-process-weak"));
//! ```

use async_trait::async_trait;
use ep_contracts::boundary::{
    AdmissionRejection, Map, RejectionReason, TargetAttestation, TargetDescriptor,
};
use serde_json::Value;

use crate::traits::{ConnectOptions, TargetVerifier};

/// The verifier id recorded in its descriptors and in evidence.
pub const LOCAL_WEAK_VERIFIER_ID: &str = "execution-plane:local-weak-verifier:v1";
/// The one class (and attestation type) it handles: local processes, no sandbox.
pub const LOCAL_WEAK_CLASS: &str = "local-process-weak";
/// Target id when neither the connect options nor the evidence name one.
pub const DEFAULT_TARGET_ID: &str = "local-process";
/// Lane id when neither the connect options nor the evidence name one.
pub const DEFAULT_LANE_ID: &str = "process";
/// Signature `mint_attestation` uses when none is given.
pub const DEFAULT_SIGNATURE: &str = "local-weak-stub-signature";
/// Message of the rejection when the evidence has no signature.
pub const MSG_SIGNATURE_REQUIRED: &str =
    "local weak target attestation requires a verifier signature";

/// Verifies `local-process-weak` attestations into descriptors for local targets.
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalWeakVerifier;

/// What `mint_attestation` puts in the attestation's evidence (all optional).
#[derive(Debug, Clone, Default)]
pub struct MintOptions {
    /// Target id (default `local-process`).
    pub target_id: Option<String>,
    /// Lane id (default `process`).
    pub lane_id: Option<String>,
    /// Signature (default `local-weak-stub-signature`).
    pub signature: Option<String>,
}

impl LocalWeakVerifier {
    /// A verifier (it has no state).
    pub fn new() -> Self {
        Self
    }

    /// A `local-process-weak` attestation for this host, presented now: id
    /// `att-local-<ms>-<n>`, claimed classes `[local-process-weak]`, evidence `{class,
    /// target_id, lane_id, signature}` with the documented defaults.
    pub fn mint_attestation(options: &MintOptions) -> TargetAttestation {
        let mut evidence = Map::new();
        evidence.insert("class".to_owned(), Value::from(LOCAL_WEAK_CLASS));
        evidence.insert(
            "target_id".to_owned(),
            Value::from(options.target_id.as_deref().unwrap_or(DEFAULT_TARGET_ID)),
        );
        evidence.insert(
            "lane_id".to_owned(),
            Value::from(options.lane_id.as_deref().unwrap_or(DEFAULT_LANE_ID)),
        );
        evidence.insert(
            "signature".to_owned(),
            Value::from(options.signature.as_deref().unwrap_or(DEFAULT_SIGNATURE)),
        );
        TargetAttestation {
            attestation_id: Some(ep_contracts::ids::stable_id("att-local")),
            attestation_type: Some(LOCAL_WEAK_CLASS.to_owned()),
            evidence,
            presented_at: Some(ep_contracts::ids::now_iso8601()),
            claimed_capability_classes: vec![LOCAL_WEAK_CLASS.to_owned()],
            ..TargetAttestation::default()
        }
    }
}

/// A non-empty string in the evidence under `key`.
fn evidence_str<'a>(attestation: &'a TargetAttestation, key: &str) -> Option<&'a str> {
    attestation
        .evidence
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// The first present, non-empty choice.
fn first_non_empty(option: Option<&str>, evidence: Option<&str>, default: &str) -> String {
    option
        .filter(|s| !s.is_empty())
        .or(evidence)
        .unwrap_or(default)
        .to_owned()
}

#[async_trait]
impl TargetVerifier for LocalWeakVerifier {
    fn verifier_id(&self) -> &str {
        LOCAL_WEAK_VERIFIER_ID
    }

    fn attestation_types(&self) -> Vec<String> {
        vec![LOCAL_WEAK_CLASS.to_owned()]
    }

    fn capability_classes(&self) -> Vec<String> {
        vec![LOCAL_WEAK_CLASS.to_owned()]
    }

    fn handles(&self, attestation: &TargetAttestation) -> bool {
        attestation.attestation_type.as_deref() == Some(LOCAL_WEAK_CLASS)
    }

    /// Requires a non-empty string `signature` in the evidence; target id and lane id come
    /// from the options, else the evidence, else `local-process` / `process`.
    async fn verify(
        &self,
        attestation: &TargetAttestation,
        options: &ConnectOptions,
    ) -> Result<TargetDescriptor, AdmissionRejection> {
        let Some(signature) = evidence_str(attestation, "signature") else {
            return Err(AdmissionRejection::new(
                RejectionReason::TargetAttestationUnverifiable,
                MSG_SIGNATURE_REQUIRED,
            ));
        };
        let target_id = first_non_empty(
            options.target_id.as_deref(),
            evidence_str(attestation, "target_id"),
            DEFAULT_TARGET_ID,
        );
        let lane_id = first_non_empty(
            options.lane_id.as_deref(),
            evidence_str(attestation, "lane_id"),
            DEFAULT_LANE_ID,
        );
        let mut descriptor = TargetDescriptor::new(
            target_id,
            lane_id,
            LOCAL_WEAK_VERIFIER_ID,
            vec![LOCAL_WEAK_CLASS.to_owned()],
        );
        descriptor.attestation_id = attestation.attestation_id.clone();
        descriptor.attested_at = attestation.presented_at.clone();
        descriptor
            .metadata
            .insert("local".to_owned(), Value::Bool(true));
        descriptor
            .metadata
            .insert("sandbox".to_owned(), Value::from("none"));
        descriptor.signature = Some(signature.to_owned());
        Ok(descriptor)
    }
}
