//! `ExecutionEvidenceBoundary.v1`: the only outcome shape safe to persist.

use super::*;

/// Scanner id recorded in every scan result.
pub const RAW_SCAN_REF: &str = "ExecutionPlane.ExecutionEvidenceBoundary.v1.raw_payload_scan";

/// Default schema ref of a projected boundary.
pub const EVIDENCE_BOUNDARY_SCHEMA_REF: &str =
    "schema://execution-plane/execution-evidence-boundary/v1";

/// Options of [`ExecutionEvidenceBoundary::from_outcome`]; `None` takes the documented default.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FromOutcomeOptions {
    /// Defaults to `execution-outcome://<route_id>`.
    pub outcome_ref: Option<String>,
    /// A claim-check ref for the raw payload held elsewhere; default none.
    pub claim_check_ref_or_null: Option<String>,
    /// A ref to a redacted preview; default none.
    pub redacted_preview_ref_or_null: Option<String>,
    /// Defaults to [`EVIDENCE_BOUNDARY_SCHEMA_REF`].
    pub schema_ref: Option<String>,
}

/// The bounded, persistable projection of an outcome: shapes, refs and a passed raw scan, the
/// only outcome form safe to keep in reports.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionEvidenceBoundary {
    /// Always `execution_plane`.
    pub owner_repo: String,
    /// Opaque ref of the projected outcome.
    pub outcome_ref: String,
    /// The outcome's status.
    pub bounded_status: String,
    /// Family, raw payload key shape, status code / exit code; raw-scanned.
    pub bounded_exit_code_or_response_shape: Map<String, Value>,
    /// Opaque ref of the input fingerprint.
    pub input_fingerprint_ref: String,
    /// Claim-check ref for the raw payload, when one exists.
    pub claim_check_ref_or_null: Option<String>,
    /// Redacted preview ref, when one exists.
    pub redacted_preview_ref_or_null: Option<String>,
    /// Opaque schema ref.
    pub schema_ref: String,
    /// `status == "passed"`, `raw_payload_included == false`; raw-scanned.
    pub scan_result: Map<String, Value>,
}

impl ExecutionEvidenceBoundary {
    /// The exact `contract_version` string.
    pub const VERSION: &'static str = "ExecutionPlane.ExecutionEvidenceBoundary.v1";

    /// A scan result with `status`, recording what the raw scan checked for.
    pub fn scan_result(status: &str) -> Map<String, Value> {
        let mut map = Map::new();
        put(&mut map, "status", status);
        put(&mut map, "raw_payload_included", false);
        put(&mut map, "scanner_ref", RAW_SCAN_REF);
        put(&mut map, "scan_scope", "bounded_evidence_fields");
        put(
            &mut map,
            "checked_for",
            Value::Array(
                [
                    "raw_prompt",
                    "provider_body",
                    "secret",
                    "workflow_history",
                    "unbounded_semantic_body",
                ]
                .iter()
                .map(|s| Value::String((*s).to_owned()))
                .collect(),
            ),
        );
        put(&mut map, "rejected_findings", Value::Array(Vec::new()));
        map
    }

    /// The scan result every valid boundary carries: `scan_result("passed")`.
    pub fn scan_result_passed() -> Map<String, Value> {
        Self::scan_result("passed")
    }

    /// Projects a dumped `execution_outcome.v1` into a boundary, keeping only its status, family,
    /// sorted raw-payload keys, `status_code` and integer exit code; never the payload itself.
    pub fn from_outcome(
        outcome: &Value,
        evidence: &LowerSimulationEvidence,
        options: FromOutcomeOptions,
    ) -> Result<Self, ContractError> {
        let attrs = Attrs::new(outcome)?;
        attrs.check_version(OUTCOME_VERSION)?;
        let route_id = attrs.required_string("route_id")?;
        let status = attrs.required_string("status")?;
        let family = attrs.required_string("family")?;
        let raw_payload = attrs.optional_map("raw_payload")?;

        let mut shape = Map::new();
        put(&mut shape, "family", family);
        let mut keys: Vec<String> = raw_payload.keys().cloned().collect();
        keys.sort();
        put(&mut shape, "raw_payload_shape", strings(&keys));
        if let Some(code) = raw_payload.get("status_code").filter(|v| !v.is_null()) {
            shape.insert("status_code".to_owned(), code.clone());
        }
        if let Some(code) = exit_code(&raw_payload) {
            shape.insert("exit_code".to_owned(), code);
        }

        let input_ref = input_fingerprint_ref(&evidence.input_fingerprint).ok_or_else(|| {
            ContractError::rule(
                "input_fingerprint",
                "input_fingerprint must include sha256 and non-negative byte_size",
            )
        })?;
        let mut map = Map::new();
        put(&mut map, "owner_repo", OWNER_REPO);
        put(
            &mut map,
            "outcome_ref",
            options
                .outcome_ref
                .unwrap_or_else(|| format!("execution-outcome://{route_id}")),
        );
        put(&mut map, "bounded_status", status);
        put(
            &mut map,
            "bounded_exit_code_or_response_shape",
            Value::Object(shape),
        );
        put(&mut map, "input_fingerprint_ref", input_ref);
        put(
            &mut map,
            "claim_check_ref_or_null",
            options
                .claim_check_ref_or_null
                .map_or(Value::Null, Value::String),
        );
        put(
            &mut map,
            "redacted_preview_ref_or_null",
            options
                .redacted_preview_ref_or_null
                .map_or(Value::Null, Value::String),
        );
        put(
            &mut map,
            "schema_ref",
            options
                .schema_ref
                .unwrap_or_else(|| EVIDENCE_BOUNDARY_SCHEMA_REF.to_owned()),
        );
        put(
            &mut map,
            "scan_result",
            Value::Object(Self::scan_result_passed()),
        );
        Self::from_value(&Value::Object(map))
    }
}

/// The `contract_version` of the outcome `from_outcome` projects.
pub(super) const OUTCOME_VERSION: &str = "execution_outcome.v1";

/// `raw_payload.exit.code`, else `raw_payload.exit_status`, when an integer.
pub(super) fn exit_code(raw_payload: &Map<String, Value>) -> Option<Value> {
    let integer = |v: &Value| (v.is_i64() || v.is_u64()).then(|| v.clone());
    raw_payload
        .get("exit")
        .and_then(|exit| exit.get("code"))
        .and_then(integer)
        .or_else(|| raw_payload.get("exit_status").and_then(integer))
}

impl Contract for ExecutionEvidenceBoundary {
    const NAME: &'static str = Self::VERSION;

    fn from_value(value: &Value) -> Result<Self, ContractError> {
        let attrs = Attrs::new(value)?;
        attrs.forbid_keys(
            &FORBIDDEN_SEMANTIC_KEYS,
            "ExecutionEvidenceBoundary must not carry provider or model or budget semantics",
        )?;
        let shape = attrs.required_map("bounded_exit_code_or_response_shape")?;
        scan_raw_evidence_at(
            &Value::Object(shape.clone()),
            "bounded_exit_code_or_response_shape",
        )?;
        attrs.check_version(Self::VERSION)?;
        let owner_repo = exactly(&attrs, "owner_repo", OWNER_REPO)?;
        let outcome_ref = required_ref(&attrs, "outcome_ref")?;
        let bounded_status = attrs.required_string("bounded_status")?;
        let input_fingerprint_ref = required_ref(&attrs, "input_fingerprint_ref")?;
        let claim_check_ref_or_null = optional_ref(&attrs, "claim_check_ref_or_null")?;
        let redacted_preview_ref_or_null = optional_ref(&attrs, "redacted_preview_ref_or_null")?;
        let schema_ref = required_ref(&attrs, "schema_ref")?;
        let scan_result = attrs.required_map("scan_result")?;
        if scan_result.get("status").and_then(Value::as_str) != Some("passed") {
            return Err(ContractError::rule(
                "scan_result.status",
                "scan_result.status must be passed",
            ));
        }
        if scan_result.get("raw_payload_included") != Some(&Value::Bool(false)) {
            return Err(ContractError::rule(
                "scan_result.raw_payload_included",
                "scan_result.raw_payload_included must be false",
            ));
        }
        scan_raw_evidence_at(&Value::Object(scan_result.clone()), "scan_result")?;
        Ok(Self {
            owner_repo,
            outcome_ref,
            bounded_status,
            bounded_exit_code_or_response_shape: shape,
            input_fingerprint_ref,
            claim_check_ref_or_null,
            redacted_preview_ref_or_null,
            schema_ref,
            scan_result,
        })
    }

    fn to_value(&self) -> Value {
        let mut map = Map::new();
        put_version(&mut map, Self::VERSION);
        put(&mut map, "owner_repo", self.owner_repo.clone());
        put(&mut map, "outcome_ref", self.outcome_ref.clone());
        put(&mut map, "bounded_status", self.bounded_status.clone());
        put(
            &mut map,
            "bounded_exit_code_or_response_shape",
            Value::Object(self.bounded_exit_code_or_response_shape.clone()),
        );
        put(
            &mut map,
            "input_fingerprint_ref",
            self.input_fingerprint_ref.clone(),
        );
        put_opt(
            &mut map,
            "claim_check_ref_or_null",
            &self.claim_check_ref_or_null,
        );
        put_opt(
            &mut map,
            "redacted_preview_ref_or_null",
            &self.redacted_preview_ref_or_null,
        );
        put(&mut map, "schema_ref", self.schema_ref.clone());
        put(
            &mut map,
            "scan_result",
            Value::Object(self.scan_result.clone()),
        );
        Value::Object(map)
    }
}
