//! `LowerSimulationScenario.v1`: the scenario a lower simulation answers from.

use super::*;

/// Protocol surfaces a lower scenario may simulate.
pub const PROTOCOL_SURFACES: [&str; 4] = ["process", "http", "graphql", "self_hosted"];

/// How a lower scenario matches its input.
pub const MATCHER_CLASSES: [&str; 3] =
    ["deterministic_over_input", "artifact_ref", "frozen_fixture"];

/// The projection target a scenario must never narrow in place.
pub(super) const RAW_PAYLOAD_TARGET: &str = "ExecutionOutcome.v1.raw_payload";

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
