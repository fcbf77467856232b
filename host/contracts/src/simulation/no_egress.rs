//! `NoEgressPolicy.v1`: what a lower simulation must deny and prove.

use super::*;

/// Surfaces a no-egress policy must deny, each mapped to `"deny"`.
pub const REQUIRED_DENIED_SURFACES: [&str; 4] = [
    "external_egress",
    "process_spawn",
    "unregistered_provider_route",
    "raw_external_saas_write_path",
];

/// The negative evidence every lower simulation must be able to show, sorted.
pub const REQUIRED_NEGATIVE_EVIDENCE: [&str; 2] = [
    "attempted_raw_external_saas_write_path",
    "attempted_unregistered_provider_route",
];

/// Fail-closed no-egress policy for lower-runtime simulation: what the lower boundary denies and
/// which negative evidence it must produce.
#[derive(Debug, Clone, PartialEq)]
pub struct NoEgressPolicy {
    /// Opaque ref of this policy (`no-egress-policy://...`).
    pub policy_ref: String,
    /// Always `execution_plane`.
    pub owner_repo: String,
    /// Always `deny`.
    pub mode: String,
    /// Where the policy is enforced (`lower_runtime`).
    pub enforcement_boundary: String,
    /// Surface → `"deny"`; the four required surfaces plus any extra keys given.
    pub denied_surfaces: Map<String, Value>,
    /// Exactly [`REQUIRED_NEGATIVE_EVIDENCE`], deduplicated and sorted.
    pub required_negative_evidence: Vec<String>,
}

impl NoEgressPolicy {
    /// The exact `contract_version` string.
    pub const VERSION: &'static str = "ExecutionPlane.NoEgressPolicy.v1";

    /// The policy the lower runtime applies by default: every required surface denied.
    pub fn default_lower_boundary_policy() -> Self {
        Self {
            policy_ref: "no-egress-policy://execution-plane/lower/v1".to_owned(),
            owner_repo: OWNER_REPO.to_owned(),
            mode: "deny".to_owned(),
            enforcement_boundary: "lower_runtime".to_owned(),
            denied_surfaces: REQUIRED_DENIED_SURFACES
                .iter()
                .map(|s| ((*s).to_owned(), Value::String("deny".to_owned())))
                .collect(),
            required_negative_evidence: REQUIRED_NEGATIVE_EVIDENCE
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
        }
    }
}

impl Contract for NoEgressPolicy {
    const NAME: &'static str = Self::VERSION;

    fn from_value(value: &Value) -> Result<Self, ContractError> {
        let attrs = Attrs::new(value)?;
        attrs.forbid_keys(
            &FORBIDDEN_SEMANTIC_KEYS,
            "NoEgressPolicy must not carry provider or model or budget semantics",
        )?;
        let denied_surfaces = attrs.required_map("denied_surfaces")?;
        for surface in REQUIRED_DENIED_SURFACES {
            if denied_surfaces.get(surface).and_then(Value::as_str) != Some("deny") {
                return Err(ContractError::rule(
                    format!("denied_surfaces.{surface}"),
                    format!("denied_surfaces.{surface} must be deny"),
                ));
            }
        }
        attrs.check_version(Self::VERSION)?;
        let policy_ref = required_ref(&attrs, "policy_ref")?;
        let owner_repo = exactly(&attrs, "owner_repo", OWNER_REPO)?;
        let mode = exactly(&attrs, "mode", "deny")?;
        let enforcement_boundary = attrs.required_string("enforcement_boundary")?;
        let mut evidence = attrs.required_list("required_negative_evidence", |v| {
            non_empty_string("required_negative_evidence", v)
        })?;
        evidence.sort();
        evidence.dedup();
        if evidence != REQUIRED_NEGATIVE_EVIDENCE {
            let expected: Vec<String> = REQUIRED_NEGATIVE_EVIDENCE
                .iter()
                .map(|s| (*s).to_owned())
                .collect();
            return Err(ContractError::rule(
                "required_negative_evidence",
                format!(
                    "required_negative_evidence must be {}, got: {}",
                    inspect(&strings(&expected)),
                    inspect(&strings(&evidence))
                ),
            ));
        }
        Ok(Self {
            policy_ref,
            owner_repo,
            mode,
            enforcement_boundary,
            denied_surfaces,
            required_negative_evidence: evidence,
        })
    }

    fn to_value(&self) -> Value {
        let mut map = Map::new();
        put_version(&mut map, Self::VERSION);
        put(&mut map, "policy_ref", self.policy_ref.clone());
        put(&mut map, "owner_repo", self.owner_repo.clone());
        put(&mut map, "mode", self.mode.clone());
        put(
            &mut map,
            "enforcement_boundary",
            self.enforcement_boundary.clone(),
        );
        put(
            &mut map,
            "denied_surfaces",
            Value::Object(self.denied_surfaces.clone()),
        );
        put(
            &mut map,
            "required_negative_evidence",
            strings(&self.required_negative_evidence),
        );
        Value::Object(map)
    }
}
