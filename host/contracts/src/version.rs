//! Contract version strings: the 20-entry packet registry, plus the root integer version.

/// Registry key → `contract_version` string, in the frozen upstream order.
pub const PACKET_VERSIONS: [(&str, &str); 20] = [
    ("authority_decision_v1", "authority_decision.v1"),
    (
        "boundary_session_descriptor_v1",
        "boundary_session_descriptor.v1",
    ),
    (
        "execution_intent_envelope_v1",
        "execution_intent_envelope.v1",
    ),
    ("http_execution_intent_v1", "http_execution_intent.v1"),
    ("process_execution_intent_v1", "process_execution_intent.v1"),
    ("jsonrpc_execution_intent_v1", "jsonrpc_execution_intent.v1"),
    ("execution_route_v1", "execution_route.v1"),
    ("attach_grant_v1", "ExecutionPlane.AttachGrant.v1"),
    ("credential_handle_ref_v1", "credential_handle_ref.v1"),
    ("execution_event_v1", "execution_event.v1"),
    ("execution_outcome_v1", "execution_outcome.v1"),
    (
        "lower_simulation_scenario_v1",
        "ExecutionPlane.LowerSimulationScenario.v1",
    ),
    (
        "lower_simulation_evidence_v1",
        "ExecutionPlane.LowerSimulationEvidence.v1",
    ),
    (
        "execution_evidence_boundary_v1",
        "ExecutionPlane.ExecutionEvidenceBoundary.v1",
    ),
    ("no_egress_policy_v1", "ExecutionPlane.NoEgressPolicy.v1"),
    (
        "adapter_selection_policy_v1",
        "ExecutionPlane.AdapterSelectionPolicy.v1",
    ),
    (
        "stream_backpressure_v1",
        "ExecutionPlane.StreamBackpressure.v1",
    ),
    ("worker_budget_v1", "ExecutionPlane.WorkerBudget.v1"),
    ("no_bypass_scan_v1", "ExecutionPlane.NoBypassScan.v1"),
    (
        "stream_attach_revocation_v1",
        "ExecutionPlane.StreamAttachRevocation.v1",
    ),
];

/// The `contract_version` string for a registry key, or `None` for an unknown key.
pub fn contract_version(key: &str) -> Option<&'static str> {
    PACKET_VERSIONS
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| *v)
}

/// The root (boundary-value) contract version.
pub const ROOT_CONTRACT_VERSION: i64 = 1;

/// Stability of the root version.
pub const ROOT_STABILITY: &str = "stable";

/// Normalizes a root contract version: an integer as-is, a decimal string parsed, else `None`.
pub fn normalize_root_version(value: &serde_json::Value) -> Option<i64> {
    match value {
        serde_json::Value::Number(n) => n.as_i64(),
        serde_json::Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse().ok()
        }
        _ => None,
    }
}

/// Whether a root contract version is the supported one.
pub fn root_version_compatible(value: &serde_json::Value) -> bool {
    normalize_root_version(value) == Some(ROOT_CONTRACT_VERSION)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn registry_has_twenty_v1_entries_with_exact_strings() {
        assert_eq!(PACKET_VERSIONS.len(), 20);
        assert!(PACKET_VERSIONS.iter().all(|(_, v)| v.ends_with(".v1")));
        assert_eq!(
            contract_version("attach_grant_v1"),
            Some("ExecutionPlane.AttachGrant.v1")
        );
        assert_eq!(contract_version("nope"), None);
    }

    #[test]
    fn root_version_normalizes_integers_and_decimal_strings_only() {
        assert_eq!(normalize_root_version(&json!(1)), Some(1));
        assert_eq!(normalize_root_version(&json!("1")), Some(1));
        assert_eq!(normalize_root_version(&json!("v1")), None);
        assert_eq!(normalize_root_version(&json!(null)), None);
        assert!(root_version_compatible(&json!("1")));
        assert!(!root_version_compatible(&json!(0)));
        assert!(!root_version_compatible(&json!(2)));
    }
}
