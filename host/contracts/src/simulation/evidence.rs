//! `LowerSimulationEvidence.v1`: the bounded evidence of one simulated execution.

use super::*;

/// Side-effect policies a lower simulation may run under.
pub const SIDE_EFFECT_POLICIES: [&str; 2] = ["deny_external_egress", "deny_process_spawn"];

/// What happened to the side effect a lower simulation stood in for.
pub const SIDE_EFFECT_RESULTS: [&str; 2] = ["not_attempted", "blocked_before_dispatch"];

/// Keys a fingerprint map must never carry: they would be the raw material itself.
pub const FORBIDDEN_FINGERPRINT_KEYS: [&str; 9] = [
    "body", "raw_body", "payload", "prompt", "input", "stdin", "stdout", "stderr", "headers",
];

/// Bounded proof that a lower simulation produced an `execution_outcome.v1` with no external
/// side effect: hashes, shapes and side-effect facts only, never the raw inputs or outputs.
#[derive(Debug, Clone, PartialEq)]
pub struct LowerSimulationEvidence {
    /// The scenario that answered.
    pub scenario_ref: String,
    /// The route it answered (matches `lineage.route_id`).
    pub route_id: String,
    /// Route family; equals `outcome_family`.
    pub family: String,
    /// Route protocol.
    pub protocol: String,
    /// One of [`SIDE_EFFECT_POLICIES`].
    pub side_effect_policy: String,
    /// One of [`SIDE_EFFECT_RESULTS`].
    pub side_effect_result: String,
    /// The outcome's contract version (`execution_outcome.v1`).
    pub outcome_contract_version: String,
    /// The outcome's status.
    pub outcome_status: String,
    /// The outcome's family.
    pub outcome_family: String,
    /// `{"sha256": "sha256:<hex>", "byte_size": n}` of the input.
    pub input_fingerprint: Map<String, Value>,
    /// `{"sha256": "sha256:<hex>", "byte_size": n}` of the output.
    pub output_fingerprint: Map<String, Value>,
    /// Sorted top-level keys of the outcome's raw payload.
    pub raw_payload_shape: Vec<String>,
    /// Route lineage (all keys but `event_id`).
    pub lineage: Lineage,
}

impl LowerSimulationEvidence {
    /// The exact `contract_version` string.
    pub const VERSION: &'static str = "ExecutionPlane.LowerSimulationEvidence.v1";
}

impl Contract for LowerSimulationEvidence {
    const NAME: &'static str = Self::VERSION;

    fn from_value(value: &Value) -> Result<Self, ContractError> {
        let attrs = Attrs::new(value)?;
        let route_id = attrs.required_string("route_id")?;
        let outcome_family = attrs.required_string("outcome_family")?;
        let family = attrs.required_string("family")?;
        let lineage_attrs = attrs.required_map("lineage")?;
        let lineage = Lineage::normalize(&Value::Object(lineage_attrs), &ROUTE_LINEAGE_KEYS)?;
        lineage.check_matches("route_id", &route_id)?;
        if family != outcome_family {
            return Err(ContractError::rule(
                "family",
                format!(
                    "family must match outcome_family, got: {} and {}",
                    inspect(&Value::String(family)),
                    inspect(&Value::String(outcome_family))
                ),
            ));
        }
        attrs.check_version(Self::VERSION)?;
        let scenario_ref = attrs.required_string("scenario_ref")?;
        let protocol = attrs.required_string("protocol")?;
        let side_effect_policy = attrs.one_of(
            "side_effect_policy",
            &SIDE_EFFECT_POLICIES,
            EnumWording::NotSupported,
        )?;
        let side_effect_result = attrs.one_of(
            "side_effect_result",
            &SIDE_EFFECT_RESULTS,
            EnumWording::NotSupported,
        )?;
        let outcome_contract_version = attrs.required_string("outcome_contract_version")?;
        let outcome_status = attrs.required_string("outcome_status")?;
        let input_fingerprint = fingerprint_map(&attrs, "input_fingerprint")?;
        let output_fingerprint = fingerprint_map(&attrs, "output_fingerprint")?;
        let mut raw_payload_shape = attrs.required_list("raw_payload_shape", |v| {
            non_empty_string("raw_payload_shape", v)
        })?;
        raw_payload_shape.sort();
        Ok(Self {
            scenario_ref,
            route_id,
            family,
            protocol,
            side_effect_policy,
            side_effect_result,
            outcome_contract_version,
            outcome_status,
            outcome_family,
            input_fingerprint,
            output_fingerprint,
            raw_payload_shape,
            lineage,
        })
    }

    fn to_value(&self) -> Value {
        let mut map = Map::new();
        put_version(&mut map, Self::VERSION);
        put(&mut map, "scenario_ref", self.scenario_ref.clone());
        put(&mut map, "route_id", self.route_id.clone());
        put(&mut map, "family", self.family.clone());
        put(&mut map, "protocol", self.protocol.clone());
        put(
            &mut map,
            "side_effect_policy",
            self.side_effect_policy.clone(),
        );
        put(
            &mut map,
            "side_effect_result",
            self.side_effect_result.clone(),
        );
        put(
            &mut map,
            "outcome_contract_version",
            self.outcome_contract_version.clone(),
        );
        put(&mut map, "outcome_status", self.outcome_status.clone());
        put(&mut map, "outcome_family", self.outcome_family.clone());
        put(
            &mut map,
            "input_fingerprint",
            Value::Object(self.input_fingerprint.clone()),
        );
        put(
            &mut map,
            "output_fingerprint",
            Value::Object(self.output_fingerprint.clone()),
        );
        put(
            &mut map,
            "raw_payload_shape",
            strings(&self.raw_payload_shape),
        );
        put(&mut map, "lineage", self.lineage.to_value());
        Value::Object(map)
    }
}

/// A fingerprint map: no raw material keys, a `sha256:` ref and a non-negative `byte_size`.
pub(super) fn fingerprint_map(
    attrs: &Attrs<'_>,
    field: &str,
) -> Result<Map<String, Value>, ContractError> {
    let fingerprint = attrs.required_map(field)?;
    if let Some(key) = FORBIDDEN_FINGERPRINT_KEYS
        .iter()
        .find(|k| fingerprint.contains_key(**k))
    {
        return Err(ContractError::rule(
            format!("{field}.{key}"),
            format!("{field} must not carry raw {key}"),
        ));
    }
    let sha_ok = fingerprint
        .get("sha256")
        .and_then(Value::as_str)
        .is_some_and(is_sha256_ref);
    let size_ok = fingerprint
        .get("byte_size")
        .and_then(Value::as_u64)
        .is_some();
    if sha_ok && size_ok {
        Ok(fingerprint)
    } else {
        Err(ContractError::rule(
            field,
            format!("{field} must include sha256 and non-negative byte_size"),
        ))
    }
}

/// `fingerprint://execution-plane/input/<hex>` for a fingerprint map's `sha256` ref, or `None`
/// when the map has no well-formed `sha256:` ref.
pub fn input_fingerprint_ref(fingerprint: &Map<String, Value>) -> Option<String> {
    let sha = fingerprint.get("sha256").and_then(Value::as_str)?;
    if !is_sha256_ref(sha) {
        return None;
    }
    let hex = sha.strip_prefix("sha256:")?;
    Some(format!("fingerprint://execution-plane/input/{hex}"))
}
