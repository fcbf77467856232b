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

impl Evidence {
    /// The canonical JSON of this record, the same text as
    /// `canonical_json(&self.to_value())`, written straight from the fields: an evidence log
    /// writes one per record, and building the value first (a deep copy of the payload) cost
    /// more than the rest of the encoding.
    pub fn canonical_json(&self) -> String {
        let mut out = Vec::with_capacity(512);
        let mut first = true;
        let mut key = |out: &mut Vec<u8>, name: &str| {
            out.push(if first { b'{' } else { b',' });
            first = false;
            out.push(b'"');
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b"\":");
        };
        // Field names in byte order, as canonical JSON sorts them.
        key(&mut out, "attestation_class");
        text(&mut out, self.attestation_class.as_deref());
        key(&mut out, "authority_verifier_id");
        text(&mut out, self.authority_verifier_id.as_deref());
        key(&mut out, "contract_version");
        out.extend_from_slice(crate::version::ROOT_CONTRACT_VERSION.to_string().as_bytes());
        key(&mut out, "emitted_at");
        text(&mut out, self.emitted_at.as_deref());
        key(&mut out, "evidence_id");
        text(&mut out, Some(&self.evidence_id));
        key(&mut out, "evidence_type");
        text(&mut out, self.evidence_type.as_deref());
        key(&mut out, "execution_ref");
        match &self.execution_ref {
            None => out.extend_from_slice(b"null"),
            Some(reference) => {
                out.extend_from_slice(b"{\"contract_version\":");
                out.extend_from_slice(crate::version::ROOT_CONTRACT_VERSION.to_string().as_bytes());
                out.extend_from_slice(b",\"ref\":");
                text(&mut out, Some(&reference.reference));
                out.push(b'}');
            }
        }
        key(&mut out, "lane_id");
        text(&mut out, self.lane_id.as_deref());
        key(&mut out, "payload");
        crate::canonical::write_canonical(&self.payload, &mut out);
        key(&mut out, "policy_bundle_hash");
        text(&mut out, self.policy_bundle_hash.as_deref());
        key(&mut out, "request_id");
        text(&mut out, self.request_id.as_deref());
        key(&mut out, "target_id");
        text(&mut out, self.target_id.as_deref());
        key(&mut out, "target_verifier_id");
        text(&mut out, self.target_verifier_id.as_deref());
        out.push(b'}');
        // serde_json writes UTF-8 only; the fallback is never taken.
        String::from_utf8(out)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }
}

/// A JSON string (escaped as serde_json does) or `null`.
fn text(out: &mut Vec<u8>, value: Option<&str>) {
    match value {
        // Writing into a Vec cannot fail.
        Some(value) => {
            let _ = serde_json::to_writer(&mut *out, value);
        }
        None => out.extend_from_slice(b"null"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::Contract as _;
    use crate::canonical::canonical_json;
    use proptest::prelude::*;

    fn some(text: String, present: bool) -> Option<String> {
        present.then_some(text)
    }

    proptest! {
        #[test]
        fn canonical_json_of_a_record_is_that_of_its_value(
            texts in proptest::collection::vec(".*", 11),
            present in proptest::collection::vec(any::<bool>(), 10),
            payload in proptest::collection::btree_map("[a-z\"\\\\]{0,6}", ".*", 0..6),
        ) {
            let evidence = Evidence {
                evidence_id: texts[0].clone(),
                evidence_type: some(texts[1].clone(), present[0]),
                execution_ref: present[1].then(|| ExecutionRef {
                    reference: texts[2].clone(),
                    ..ExecutionRef::default()
                }),
                request_id: some(texts[3].clone(), present[2]),
                policy_bundle_hash: some(texts[4].clone(), present[3]),
                target_id: some(texts[5].clone(), present[4]),
                target_verifier_id: some(texts[6].clone(), present[5]),
                attestation_class: some(texts[7].clone(), present[6]),
                lane_id: some(texts[8].clone(), present[7]),
                authority_verifier_id: some(texts[9].clone(), present[8]),
                payload: serde_json::json!({"nested": payload, "n": 1.5, "list": [null, true]}),
                emitted_at: some(texts[10].clone(), present[9]),
                ..Evidence::default()
            };
            prop_assert_eq!(evidence.canonical_json(), canonical_json(&evidence.to_value()));
        }
    }

    #[test]
    fn every_field_of_a_record_is_written() {
        // A field added to `Evidence` but not to `canonical_json` fails here: the dumped value
        // has a key the direct writer lacks.
        let full = Evidence {
            evidence_type: Some("t".into()),
            execution_ref: Some(ExecutionRef::mint()),
            request_id: Some("r".into()),
            policy_bundle_hash: Some("p".into()),
            target_id: Some("t".into()),
            target_verifier_id: Some("v".into()),
            attestation_class: Some("a".into()),
            lane_id: Some("l".into()),
            authority_verifier_id: Some("av".into()),
            emitted_at: Some("now".into()),
            ..Evidence::default()
        };
        assert_eq!(full.canonical_json(), canonical_json(&full.to_value()));
        let value: Value = serde_json::from_str(&full.canonical_json()).unwrap();
        assert_eq!(
            value.as_object().unwrap().len(),
            full.to_value().as_object().unwrap().len()
        );
    }
}
