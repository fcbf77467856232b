//! The local sandboxed target verifier: it attests `local-process-sandboxed` for a local
//! process target whose sandbox this host's probe saw the kernel enforce. It is built from that
//! probe's report and attests nothing else: an attestation whose enforcement differs from what
//! the probe saw is refused. A host whose kernel cannot enforce the sandbox never builds one, so
//! the class is never offered there (a caller accepting only it is rejected with
//! `no_satisfying_attested_target`).

use async_trait::async_trait;
use ep_contracts::boundary::{
    AdmissionRejection, Map, RejectionReason, TargetAttestation, TargetDescriptor,
};
use serde_json::Value;

use crate::traits::{ConnectOptions, TargetVerifier};

/// The verifier id recorded in its descriptors and in evidence.
pub const LOCAL_SANDBOXED_VERIFIER_ID: &str = "execution-plane:local-sandboxed-verifier:v1";
/// The one class (and attestation type) it handles.
pub const LOCAL_SANDBOXED_CLASS: &str = "local-process-sandboxed";
/// Its target's id.
pub const SANDBOXED_TARGET_ID: &str = "local-process-sandboxed";
/// The lane its target serves.
pub const SANDBOXED_LANE_ID: &str = "process";
/// What the descriptor says confines the target's processes.
pub const SANDBOX_MECHANISMS: &str = "landlock+seccomp+rlimits+no_new_privs";

/// Verifies `local-process-sandboxed` attestations against the probe it was built from.
#[derive(Debug, Clone)]
pub struct LocalSandboxedVerifier {
    enforcement: Map,
    signature: String,
}

fn fingerprint(enforcement: &Map) -> String {
    let canonical = ep_contracts::canonical::canonical_json(&Value::Object(enforcement.clone()));
    format!(
        "local-sandbox-probe:{}",
        ep_contracts::canonical::sha256_ref(canonical.as_bytes())
    )
}

impl LocalSandboxedVerifier {
    /// A verifier for the sandbox a probe saw enforced (`enforcement` is the probe's report).
    pub fn new(enforcement: Map) -> Self {
        let signature = fingerprint(&enforcement);
        Self {
            enforcement,
            signature,
        }
    }

    /// The attestation of this host's sandboxed target, presented now.
    pub fn mint_attestation(&self) -> TargetAttestation {
        let mut evidence = Map::new();
        evidence.insert("class".to_owned(), Value::from(LOCAL_SANDBOXED_CLASS));
        evidence.insert("target_id".to_owned(), Value::from(SANDBOXED_TARGET_ID));
        evidence.insert("lane_id".to_owned(), Value::from(SANDBOXED_LANE_ID));
        evidence.insert(
            "enforcement".to_owned(),
            Value::Object(self.enforcement.clone()),
        );
        evidence.insert("signature".to_owned(), Value::from(self.signature.clone()));
        TargetAttestation {
            attestation_id: Some(ep_contracts::ids::stable_id("att-sandbox")),
            attestation_type: Some(LOCAL_SANDBOXED_CLASS.to_owned()),
            evidence,
            presented_at: Some(ep_contracts::ids::now_iso8601()),
            claimed_capability_classes: vec![LOCAL_SANDBOXED_CLASS.to_owned()],
            ..TargetAttestation::default()
        }
    }
}

#[async_trait]
impl TargetVerifier for LocalSandboxedVerifier {
    fn verifier_id(&self) -> &str {
        LOCAL_SANDBOXED_VERIFIER_ID
    }

    fn attestation_types(&self) -> Vec<String> {
        vec![LOCAL_SANDBOXED_CLASS.to_owned()]
    }

    fn capability_classes(&self) -> Vec<String> {
        vec![LOCAL_SANDBOXED_CLASS.to_owned()]
    }

    fn handles(&self, attestation: &TargetAttestation) -> bool {
        attestation.attestation_type.as_deref() == Some(LOCAL_SANDBOXED_CLASS)
    }

    /// Requires the enforcement this verifier's probe saw, signed with its fingerprint.
    async fn verify(
        &self,
        attestation: &TargetAttestation,
        _options: &ConnectOptions,
    ) -> Result<TargetDescriptor, AdmissionRejection> {
        let enforcement = attestation.evidence.get("enforcement");
        let signature = attestation
            .evidence
            .get("signature")
            .and_then(Value::as_str);
        if enforcement != Some(&Value::Object(self.enforcement.clone()))
            || signature != Some(self.signature.as_str())
        {
            return Err(AdmissionRejection::new(
                RejectionReason::TargetAttestationUnverifiable,
                "the attested sandbox is not the one this host's probe saw the kernel enforce",
            ));
        }
        let mut descriptor = TargetDescriptor::new(
            SANDBOXED_TARGET_ID.to_owned(),
            SANDBOXED_LANE_ID.to_owned(),
            LOCAL_SANDBOXED_VERIFIER_ID,
            vec![LOCAL_SANDBOXED_CLASS.to_owned()],
        );
        descriptor.attestation_id = attestation.attestation_id.clone();
        descriptor.attested_at = attestation.presented_at.clone();
        descriptor
            .metadata
            .insert("local".to_owned(), Value::Bool(true));
        descriptor
            .metadata
            .insert("sandbox".to_owned(), Value::from(SANDBOX_MECHANISMS));
        descriptor.metadata.insert(
            "enforcement".to_owned(),
            Value::Object(self.enforcement.clone()),
        );
        descriptor.signature = Some(self.signature.clone());
        Ok(descriptor)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    fn report() -> Map {
        match json!({"landlock_abi": 7, "no_new_privs": true, "seccomp": true}) {
            Value::Object(map) => map,
            _ => unreachable!(),
        }
    }

    #[tokio::test]
    async fn attests_only_the_enforcement_its_probe_saw() {
        let verifier = LocalSandboxedVerifier::new(report());
        let attestation = verifier.mint_attestation();
        let descriptor = verifier
            .verify(&attestation, &ConnectOptions::default())
            .await
            .unwrap();
        assert_eq!(
            descriptor.attested_capability_classes,
            [LOCAL_SANDBOXED_CLASS]
        );
        assert_eq!(descriptor.metadata["sandbox"], SANDBOX_MECHANISMS);

        let mut claimed = attestation.clone();
        claimed
            .evidence
            .insert("enforcement".to_owned(), json!({"landlock_abi": 9}));
        let refused = verifier
            .verify(&claimed, &ConnectOptions::default())
            .await
            .unwrap_err();
        assert_eq!(
            refused.reason,
            RejectionReason::TargetAttestationUnverifiable.as_str()
        );
        let other = LocalSandboxedVerifier::new(Map::new());
        assert!(
            other
                .verify(&attestation, &ConnectOptions::default())
                .await
                .is_err()
        );
    }
}
