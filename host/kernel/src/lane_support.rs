//! Helpers lane owners use to build a lineage, an envelope and a route for a direct call
//! (§4.3). The caller's `idempotency_key` is required and never minted: minting one would make
//! every retry look like a new request.

use ep_contracts::flow::{ExecutionIntentEnvelope, ExecutionRoute};
use ep_contracts::ids::{random_hex, unique_positive};
use ep_contracts::lineage::ROUTE_LINEAGE_KEYS;
use ep_contracts::{Contract, ContractError, Lineage};
use serde_json::{Map, Value};

/// Builds a route lineage for `family`: defaults for every key but `idempotency_key`, which
/// must come from `overrides`.
pub fn build_lineage(
    family: &str,
    overrides: &Map<String, Value>,
) -> Result<Lineage, ContractError> {
    match overrides.get("idempotency_key") {
        Some(Value::String(s)) if !s.is_empty() => {}
        other => {
            return Err(ContractError::NonEmptyString {
                field: "idempotency_key".to_owned(),
                got: ep_contracts::inspect::inspect_opt(other),
            });
        }
    }
    let n = unique_positive();
    let mut attrs = Map::new();
    let defaults = [
        ("tenant_id", "tenant:auto".to_owned()),
        ("trace_id", random_hex(16)),
        ("request_id", format!("{family}-request-{n}")),
        ("decision_id", format!("{family}-decision-{n}")),
        (
            "boundary_session_id",
            format!("{family}-boundary-session-{n}"),
        ),
        ("attempt_ref", format!("attempt://{family}/{n}")),
        ("route_id", format!("{family}-route-{n}")),
    ];
    for (key, value) in defaults {
        attrs.insert(key.to_owned(), Value::String(value));
    }
    for (key, value) in overrides {
        if !value.is_null() {
            attrs.insert(key.clone(), value.clone());
        }
    }
    Lineage::normalize(&Value::Object(attrs), &ROUTE_LINEAGE_KEYS)
}

/// Builds an intent envelope from a lineage: ids copied from the lineage, `intent_id` defaulted,
/// and `capability` appended to the requested capabilities (de-duplicated).
pub fn build_envelope(
    family: &str,
    protocol: &str,
    capability: &str,
    lineage: &Lineage,
    attrs: &Map<String, Value>,
) -> Result<ExecutionIntentEnvelope, ContractError> {
    let mut map = Map::new();
    let intent_id = attrs
        .get("intent_id")
        .filter(|v| !v.is_null())
        .cloned()
        .unwrap_or_else(|| format!("{family}-intent-{}", unique_positive()).into());
    map.insert("intent_id".into(), intent_id);
    map.insert("family".into(), family.into());
    map.insert("protocol".into(), protocol.into());
    for key in [
        "trace_id",
        "idempotency_key",
        "boundary_session_id",
        "decision_id",
        "attempt_ref",
    ] {
        if let Some(v) = lineage.get(key) {
            map.insert(key.into(), v.into());
        }
    }
    for key in [
        "trace_id",
        "lease_ref",
        "route_template_ref",
        "credential_handle_refs",
        "deadline_at",
        "cancellation_ref",
        "extensions",
    ] {
        if let Some(v) = attrs.get(key).filter(|v| !v.is_null()) {
            map.insert(key.into(), v.clone());
        }
    }
    let mut capabilities: Vec<Value> = match attrs.get("requested_capabilities") {
        Some(Value::Array(items)) => items.clone(),
        Some(Value::Null) | None => Vec::new(),
        Some(_) => {
            return Err(ContractError::WrongType {
                field: "requested_capabilities".to_owned(),
                expected: "a list",
            });
        }
    };
    capabilities.push(capability.into());
    let mut unique: Vec<Value> = Vec::new();
    for c in capabilities {
        if !unique.contains(&c) {
            unique.push(c);
        }
    }
    map.insert("requested_capabilities".into(), Value::Array(unique));
    ExecutionIntentEnvelope::from_value(&Value::Object(map))
}

/// What a lane owner knows about the route it wants.
#[derive(Debug, Clone, Default)]
pub struct RouteSpec {
    /// Lower family.
    pub family: String,
    /// Lower protocol.
    pub protocol: String,
    /// Default transport family (overridable by `attrs.transport_family`).
    pub transport_family: String,
    /// Default placement family (overridable by `attrs.placement_family`).
    pub placement_family: String,
    /// Lane-resolved target fields; they win over `attrs.resolved_target`.
    pub target: Map<String, Value>,
    /// Timeout budget, added to `resolved_budget` when positive.
    pub timeout_ms: Option<i64>,
}

/// Builds a route: `route_id` from the lineage, target merged with `attrs.resolved_target`
/// (the lane's target wins), budget from `attrs.resolved_budget` plus `timeout_ms`.
pub fn build_route(
    spec: &RouteSpec,
    lineage: &Lineage,
    attrs: &Map<String, Value>,
) -> Result<ExecutionRoute, ContractError> {
    let pick = |key: &str, default: &str| -> Value {
        attrs
            .get(key)
            .filter(|v| !v.is_null())
            .cloned()
            .unwrap_or_else(|| default.into())
    };
    let mut target = match attrs.get("resolved_target") {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    };
    target.extend(spec.target.clone());
    let mut budget = match attrs.get("resolved_budget") {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    };
    if let Some(ms) = spec.timeout_ms.filter(|ms| *ms > 0) {
        budget.insert("timeout_ms".into(), ms.into());
    }
    let mut map = Map::new();
    map.insert(
        "route_id".into(),
        lineage.get("route_id").map_or(Value::Null, Value::from),
    );
    map.insert("family".into(), spec.family.clone().into());
    map.insert("protocol".into(), spec.protocol.clone().into());
    map.insert(
        "transport_family".into(),
        pick("transport_family", &spec.transport_family),
    );
    map.insert(
        "placement_family".into(),
        pick("placement_family", &spec.placement_family),
    );
    map.insert("resolved_target".into(), Value::Object(target));
    map.insert("resolved_budget".into(), Value::Object(budget));
    map.insert("lineage".into(), lineage.to_value());
    ExecutionRoute::from_value(&Value::Object(map))
}
