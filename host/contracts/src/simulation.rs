//! Phase-6 lower-simulation and evidence contracts: the no-egress policy, simulation scenarios and
//! their evidence, the bounded evidence boundary that is the only outcome shape safe to persist,
//! the adapter-selection policy, and the recursive raw-evidence scan that guards them.
//!
//! ```
//! use ep_contracts::Contract;
//! use ep_contracts::fixtures::simulation as fx;
//! use ep_contracts::simulation::{ExecutionEvidenceBoundary, FromOutcomeOptions, LowerSimulationEvidence};
//!
//! let evidence = LowerSimulationEvidence::from_value(&fx::lower_simulation_evidence())?;
//! let outcome = fx::http_outcome_with_raw_body();
//! let boundary =
//!     ExecutionEvidenceBoundary::from_outcome(&outcome, &evidence, FromOutcomeOptions::default())?;
//! let dump = boundary.to_value().to_string();
//! assert!(dump.contains(r#""raw_payload_shape":["body","headers","status_code"]"#));
//! assert!(!dump.contains("raw provider body"));
//!
//! let leak = serde_json::json!({"details": [{"prompt": "hi"}]});
//! assert_eq!(
//!     ep_contracts::simulation::scan_raw_evidence(&leak).unwrap_err().to_string(),
//!     "raw durable evidence is forbidden at details.0.prompt"
//! );
//! # Ok::<(), ep_contracts::ContractError>(())
//! ```

use serde_json::{Map, Value};

use crate::canonical::is_sha256_ref;
use crate::contract::Contract;
use crate::error::ContractError;
use crate::fields::{Attrs, EnumWording, non_empty_string, opaque_ref, put_opt};
use crate::inspect::inspect;
use crate::lineage::{Lineage, ROUTE_LINEAGE_KEYS};

// ---------------------------------------------------------------------------------------------
// Raw-evidence scan
// ---------------------------------------------------------------------------------------------

/// Keys that describe the *shape* of evidence rather than carrying it; the scan skips them (and
/// everything below them).
pub const SHAPE_ONLY_KEYS: [&str; 7] = [
    "checked_for",
    "header_keys",
    "raw_payload_included",
    "raw_payload_shape",
    "rejected_findings",
    "scan_scope",
    "scanner_ref",
];

/// Keys (compared lowercase) whose mere presence means raw durable evidence leaked.
pub const FORBIDDEN_RAW_KEYS: [&str; 11] = [
    "api_key",
    "authorization",
    "body",
    "payload",
    "prompt",
    "provider_body",
    "raw_body",
    "raw_payload",
    "secret",
    "semantic_body",
    "workflow_history",
];

/// Substrings (compared case-insensitively) that mark a string value as raw durable evidence.
pub const FORBIDDEN_RAW_SUBSTRINGS: [&str; 5] = [
    "raw prompt",
    "raw provider body",
    "sk-live",
    "workflow history",
    "unbounded semantic",
];

/// Why the raw-evidence scan flagged a location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawFindingReason {
    /// The key itself (lowercased) is one of [`FORBIDDEN_RAW_KEYS`]; carries the key as written.
    ForbiddenKey(String),
    /// A string value contains one of [`FORBIDDEN_RAW_SUBSTRINGS`]; carries the matched substring.
    ForbiddenSubstring(&'static str),
}

/// One place where raw durable evidence was found, so callers can report every leak at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFinding {
    /// Dotted path from the scanned root (`a.b.0.c`; empty for a root string).
    pub path: String,
    /// What was found there.
    pub reason: RawFindingReason,
}

/// Every raw-evidence finding in `value`, in document order (object keys in map iteration
/// order, list elements by index), skipping the shape-only allow-list keys.
pub fn raw_evidence_findings(value: &Value) -> Vec<RawFinding> {
    let mut findings = Vec::new();
    let mut path = Vec::new();
    scan_into(value, &mut path, &mut findings);
    findings
}

/// Refuses `value` when it carries raw durable evidence, naming the first offending path.
pub fn scan_raw_evidence(value: &Value) -> Result<(), ContractError> {
    scan_raw_evidence_at(value, "")
}

/// Like [`scan_raw_evidence`], with paths reported under `root` (`root.a.b`).
fn scan_raw_evidence_at(value: &Value, root: &str) -> Result<(), ContractError> {
    match raw_evidence_findings(value).into_iter().next() {
        None => Ok(()),
        Some(finding) => {
            let path = match (root.is_empty(), finding.path.is_empty()) {
                (true, _) => finding.path,
                (false, true) => root.to_owned(),
                (false, false) => format!("{root}.{}", finding.path),
            };
            let field = if path.is_empty() {
                "raw_evidence".to_owned()
            } else {
                path.clone()
            };
            Err(ContractError::rule(
                field,
                format!("raw durable evidence is forbidden at {path}"),
            ))
        }
    }
}

/// The first of [`FORBIDDEN_RAW_SUBSTRINGS`] that `s` contains, compared case-insensitively.
pub fn forbidden_substring(s: &str) -> Option<&'static str> {
    lowercase_contains(s, &FORBIDDEN_RAW_SUBSTRINGS)
}

/// One step of a path into a value; joined into text only when a finding names it.
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

fn joined(path: &[Step<'_>]) -> String {
    let mut out = String::new();
    for (i, step) in path.iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        match step {
            Step::Key(key) => out.push_str(key),
            Step::Index(index) => out.push_str(&index.to_string()),
        }
    }
    out
}

/// `s` lowercased (Unicode rules) is `word` (ASCII, lowercase); no allocation for ASCII `s`.
fn lowercase_is(s: &str, word: &str) -> bool {
    if s.is_ascii() {
        s.eq_ignore_ascii_case(word)
    } else {
        s.to_lowercase() == word
    }
}

/// The first of `needles` (ASCII, lowercase) that `s` lowercased (Unicode rules) contains.
fn lowercase_contains<'n>(s: &str, needles: &[&'n str]) -> Option<&'n str> {
    if s.is_ascii() {
        let bytes = s.as_bytes();
        needles.iter().copied().find(|needle| {
            let needle = needle.as_bytes();
            needle.is_empty()
                || bytes
                    .windows(needle.len())
                    .any(|window| window.eq_ignore_ascii_case(needle))
        })
    } else {
        let lower = s.to_lowercase();
        needles
            .iter()
            .copied()
            .find(|needle| lower.contains(needle))
    }
}

fn scan_into<'a>(value: &'a Value, path: &mut Vec<Step<'a>>, findings: &mut Vec<RawFinding>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                if SHAPE_ONLY_KEYS.contains(&key.as_str()) {
                    continue;
                }
                path.push(Step::Key(key));
                if FORBIDDEN_RAW_KEYS
                    .iter()
                    .any(|word| lowercase_is(key, word))
                {
                    findings.push(RawFinding {
                        path: joined(path),
                        reason: RawFindingReason::ForbiddenKey(key.clone()),
                    });
                } else {
                    scan_into(child, path, findings);
                }
                path.pop();
            }
        }
        Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                path.push(Step::Index(index));
                scan_into(child, path, findings);
                path.pop();
            }
        }
        Value::String(s) => {
            if let Some(hit) = forbidden_substring(s) {
                findings.push(RawFinding {
                    path: joined(path),
                    reason: RawFindingReason::ForbiddenSubstring(hit),
                });
            }
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// Shared pieces
// ---------------------------------------------------------------------------------------------

/// Keys that carry provider, model or budget semantics; lower contracts refuse them on sight.
pub const FORBIDDEN_SEMANTIC_KEYS: [&str; 6] = [
    "provider_refs",
    "model_refs",
    "budget_profile_ref",
    "meter_profile_ref",
    "semantic_policy",
    "cost_policy",
];

/// The only owner these contracts accept.
pub const OWNER_REPO: &str = "execution_plane";

/// A required string that must equal `expected`: `<field> must be <expected>, got: "<v>"`.
fn exactly(attrs: &Attrs<'_>, field: &str, expected: &str) -> Result<String, ContractError> {
    let value = attrs.required_string(field)?;
    if value == expected {
        return Ok(value);
    }
    Err(ContractError::rule(
        field,
        format!(
            "{field} must be {expected}, got: {}",
            inspect(&Value::String(value))
        ),
    ))
}

/// A required opaque handle ref, checked as a non-empty string first (upstream order).
fn required_ref(attrs: &Attrs<'_>, field: &str) -> Result<String, ContractError> {
    let value = attrs.required_string(field)?;
    opaque_ref(field, &Value::String(value))
}

/// An optional opaque handle ref: null stays `None`, anything else must be a non-empty ref.
fn optional_ref(attrs: &Attrs<'_>, field: &str) -> Result<Option<String>, ContractError> {
    match attrs.get(field) {
        None => Ok(None),
        Some(_) => required_ref(attrs, field).map(Some),
    }
}

fn put(map: &mut Map<String, Value>, key: &str, value: impl Into<Value>) {
    map.insert(key.to_owned(), value.into());
}

fn put_version(map: &mut Map<String, Value>, version: &str) {
    put(map, "contract_version", version);
}

fn strings(values: &[String]) -> Value {
    Value::Array(values.iter().cloned().map(Value::String).collect())
}

// ---------------------------------------------------------------------------------------------
// NoEgressPolicy.v1
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// LowerSimulationScenario.v1
// ---------------------------------------------------------------------------------------------

/// Protocol surfaces a lower scenario may simulate.
pub const PROTOCOL_SURFACES: [&str; 4] = ["process", "http", "graphql", "self_hosted"];

/// How a lower scenario matches its input.
pub const MATCHER_CLASSES: [&str; 3] =
    ["deterministic_over_input", "artifact_ref", "frozen_fixture"];

/// The projection target a scenario must never narrow in place.
const RAW_PAYLOAD_TARGET: &str = "ExecutionOutcome.v1.raw_payload";

/// One deterministic lower-runtime behaviour (status, exit, response, stream or fault shape) and
/// how its evidence is projected, with no provider semantics and no egress.
#[derive(Debug, Clone, PartialEq)]
pub struct LowerSimulationScenario {
    /// Scenario identity (`lower-scenario://...`).
    pub scenario_id: String,
    /// Semantic version of the scenario (`X.Y.Z`, SemVer 2.0).
    pub version: String,
    /// Always `execution_plane`.
    pub owner_repo: String,
    /// The kind of route this scenario answers (`execution_route`).
    pub route_kind: String,
    /// One of [`PROTOCOL_SURFACES`].
    pub protocol_surface: String,
    /// One of [`MATCHER_CLASSES`].
    pub matcher_class: String,
    /// The simulated result shape.
    pub status_or_exit_or_response_or_stream_or_chunk_or_fault_shape: Map<String, Value>,
    /// Must deny `external_egress` and `process_spawn`.
    pub no_egress_assertion: Map<String, Value>,
    /// Shape-only projection into `LowerSimulationEvidence.v1`.
    pub bounded_evidence_projection: Map<String, Value>,
    /// Opaque ref of the input fingerprint the scenario matches.
    pub input_fingerprint_ref: String,
    /// What is cleaned up after the run.
    pub cleanup_behavior: Map<String, Value>,
}

impl LowerSimulationScenario {
    /// The exact `contract_version` string.
    pub const VERSION: &'static str = "ExecutionPlane.LowerSimulationScenario.v1";
}

impl Contract for LowerSimulationScenario {
    const NAME: &'static str = Self::VERSION;

    fn from_value(value: &Value) -> Result<Self, ContractError> {
        let attrs = Attrs::new(value)?;
        attrs.forbid_keys(
            &FORBIDDEN_SEMANTIC_KEYS,
            "semantic provider policy must not be owned by Execution Plane lower scenarios",
        )?;
        let protocol_surface = attrs.one_of(
            "protocol_surface",
            &PROTOCOL_SURFACES,
            EnumWording::UnsupportedValue,
        )?;
        let matcher_class = attrs.one_of(
            "matcher_class",
            &MATCHER_CLASSES,
            EnumWording::UnsupportedValue,
        )?;
        attrs.check_version(Self::VERSION)?;
        let scenario_id = attrs.required_string("scenario_id")?;
        let version = attrs.required_string("version")?;
        if !is_semver(&version) {
            return Err(ContractError::rule(
                "version",
                format!(
                    "version must be semantic version, got: {}",
                    inspect(&Value::String(version))
                ),
            ));
        }
        let owner_repo = exactly(&attrs, "owner_repo", OWNER_REPO)?;
        let route_kind = attrs.required_string("route_kind")?;
        let shape =
            attrs.required_map("status_or_exit_or_response_or_stream_or_chunk_or_fault_shape")?;
        let no_egress_assertion = attrs.required_map("no_egress_assertion")?;
        for surface in ["external_egress", "process_spawn"] {
            if no_egress_assertion.get(surface).and_then(Value::as_str) != Some("deny") {
                return Err(ContractError::rule(
                    format!("no_egress_assertion.{surface}"),
                    format!("no_egress_assertion.{surface} must be deny"),
                ));
            }
        }
        let projection = attrs.required_map("bounded_evidence_projection")?;
        if projection.get("target_contract").and_then(Value::as_str) == Some(RAW_PAYLOAD_TARGET) {
            return Err(ContractError::rule(
                "bounded_evidence_projection.target_contract",
                format!("{RAW_PAYLOAD_TARGET} must not be narrowed in place"),
            ));
        }
        if projection.get("contract_version").and_then(Value::as_str)
            != Some(LowerSimulationEvidence::VERSION)
        {
            return Err(ContractError::rule(
                "bounded_evidence_projection.contract_version",
                format!(
                    "bounded_evidence_projection.contract_version must be {}",
                    LowerSimulationEvidence::VERSION
                ),
            ));
        }
        if projection
            .get("raw_payload_persistence")
            .and_then(Value::as_str)
            != Some("shape_only")
        {
            return Err(ContractError::rule(
                "bounded_evidence_projection.raw_payload_persistence",
                "bounded_evidence_projection.raw_payload_persistence must be shape_only",
            ));
        }
        let input_fingerprint_ref = required_ref(&attrs, "input_fingerprint_ref")?;
        let cleanup_behavior = attrs.required_map("cleanup_behavior")?;
        Ok(Self {
            scenario_id,
            version,
            owner_repo,
            route_kind,
            protocol_surface,
            matcher_class,
            status_or_exit_or_response_or_stream_or_chunk_or_fault_shape: shape,
            no_egress_assertion,
            bounded_evidence_projection: projection,
            input_fingerprint_ref,
            cleanup_behavior,
        })
    }

    fn to_value(&self) -> Value {
        let mut map = Map::new();
        put_version(&mut map, Self::VERSION);
        put(&mut map, "scenario_id", self.scenario_id.clone());
        put(&mut map, "version", self.version.clone());
        put(&mut map, "owner_repo", self.owner_repo.clone());
        put(&mut map, "route_kind", self.route_kind.clone());
        put(&mut map, "protocol_surface", self.protocol_surface.clone());
        put(&mut map, "matcher_class", self.matcher_class.clone());
        put(
            &mut map,
            "status_or_exit_or_response_or_stream_or_chunk_or_fault_shape",
            Value::Object(
                self.status_or_exit_or_response_or_stream_or_chunk_or_fault_shape
                    .clone(),
            ),
        );
        put(
            &mut map,
            "no_egress_assertion",
            Value::Object(self.no_egress_assertion.clone()),
        );
        put(
            &mut map,
            "bounded_evidence_projection",
            Value::Object(self.bounded_evidence_projection.clone()),
        );
        put(
            &mut map,
            "input_fingerprint_ref",
            self.input_fingerprint_ref.clone(),
        );
        put(
            &mut map,
            "cleanup_behavior",
            Value::Object(self.cleanup_behavior.clone()),
        );
        Value::Object(map)
    }
}

/// Whether `s` is a SemVer 2.0 version: `MAJOR.MINOR.PATCH` without leading zeros, with optional
/// `-pre.release` and `+build` parts (what Elixir's `Version.parse/1` accepts).
pub fn is_semver(s: &str) -> bool {
    let (rest, build) = match s.split_once('+') {
        Some((rest, build)) => (rest, Some(build)),
        None => (s, None),
    };
    let (core, pre) = match rest.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (rest, None),
    };
    let numeric = |part: &str| {
        !part.is_empty()
            && part.bytes().all(|b| b.is_ascii_digit())
            && (part == "0" || !part.starts_with('0'))
    };
    let ident = |part: &str| {
        !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    let parts: Vec<&str> = core.split('.').collect();
    if parts.len() != 3 || !parts.iter().all(|p| numeric(p)) {
        return false;
    }
    let pre_ok = pre.is_none_or(|pre| {
        pre.split('.')
            .all(|id| ident(id) && (!id.bytes().all(|b| b.is_ascii_digit()) || numeric(id)))
    });
    let build_ok = build.is_none_or(|build| build.split('.').all(ident));
    pre_ok && build_ok
}

// ---------------------------------------------------------------------------------------------
// LowerSimulationEvidence.v1
// ---------------------------------------------------------------------------------------------

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
fn fingerprint_map(attrs: &Attrs<'_>, field: &str) -> Result<Map<String, Value>, ContractError> {
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

// ---------------------------------------------------------------------------------------------
// ExecutionEvidenceBoundary.v1
// ---------------------------------------------------------------------------------------------

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
const OUTCOME_VERSION: &str = "execution_outcome.v1";

/// `raw_payload.exit.code`, else `raw_payload.exit_status`, when an integer.
fn exit_code(raw_payload: &Map<String, Value>) -> Option<Value> {
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

// ---------------------------------------------------------------------------------------------
// AdapterSelectionPolicy.v1
// ---------------------------------------------------------------------------------------------

/// Where an adapter (real or simulated) may be selected: owner registries and install profiles.
pub const SELECTION_SURFACES: [&str; 6] = [
    "application_config",
    "adapter_registry",
    "transport_registry",
    "provider_registry",
    "backend_manifest",
    "profile_registry_install",
];

/// How the lower adapter is chosen: only through owner registries or install-time profiles,
/// never through a public request-time `simulation` selector.
#[derive(Debug, Clone, PartialEq)]
pub struct AdapterSelectionPolicy {
    /// One of [`SELECTION_SURFACES`].
    pub selection_surface: String,
    /// Always `execution_plane`.
    pub owner_repo: String,
    /// The owner-side configuration key; never `simulation` nor `*.simulation*`.
    pub config_key: String,
    /// What is selected when the key is unset.
    pub default_value_when_unset: String,
    /// What happens when the configuration is wrong (fail closed).
    pub fail_closed_action_when_misconfigured: String,
}

impl AdapterSelectionPolicy {
    /// The exact `contract_version` string.
    pub const VERSION: &'static str = "ExecutionPlane.AdapterSelectionPolicy.v1";
}

impl Contract for AdapterSelectionPolicy {
    const NAME: &'static str = Self::VERSION;

    fn from_value(value: &Value) -> Result<Self, ContractError> {
        let attrs = Attrs::new(value)?;
        attrs.forbid_keys(
            &["simulation"],
            "public simulation selector is forbidden; use owner registry configuration",
        )?;
        let selection_surface = attrs.one_of(
            "selection_surface",
            &SELECTION_SURFACES,
            EnumWording::UnsupportedValue,
        )?;
        let config_key = attrs.required_string("config_key")?;
        if config_key == "simulation" || config_key.contains(".simulation") {
            return Err(ContractError::rule(
                "config_key",
                "config_key must not be a public simulation selector",
            ));
        }
        attrs.check_version(Self::VERSION)?;
        let owner_repo = exactly(&attrs, "owner_repo", OWNER_REPO)?;
        let default_value_when_unset = attrs.required_string("default_value_when_unset")?;
        let fail_closed_action_when_misconfigured =
            attrs.required_string("fail_closed_action_when_misconfigured")?;
        Ok(Self {
            selection_surface,
            owner_repo,
            config_key,
            default_value_when_unset,
            fail_closed_action_when_misconfigured,
        })
    }

    fn to_value(&self) -> Value {
        let mut map = Map::new();
        put_version(&mut map, Self::VERSION);
        put(
            &mut map,
            "selection_surface",
            self.selection_surface.clone(),
        );
        put(&mut map, "owner_repo", self.owner_repo.clone());
        put(&mut map, "config_key", self.config_key.clone());
        put(
            &mut map,
            "default_value_when_unset",
            self.default_value_when_unset.clone(),
        );
        put(
            &mut map,
            "fail_closed_action_when_misconfigured",
            self.fail_closed_action_when_misconfigured.clone(),
        );
        Value::Object(map)
    }
}
