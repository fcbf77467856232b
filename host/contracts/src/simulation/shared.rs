//! Field readers and writers the simulation contracts share.

use super::*;

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
pub(super) fn exactly(
    attrs: &Attrs<'_>,
    field: &str,
    expected: &str,
) -> Result<String, ContractError> {
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
pub(super) fn required_ref(attrs: &Attrs<'_>, field: &str) -> Result<String, ContractError> {
    let value = attrs.required_string(field)?;
    opaque_ref(field, &Value::String(value))
}

/// An optional opaque handle ref: null stays `None`, anything else must be a non-empty ref.
pub(super) fn optional_ref(
    attrs: &Attrs<'_>,
    field: &str,
) -> Result<Option<String>, ContractError> {
    match attrs.get(field) {
        None => Ok(None),
        Some(_) => required_ref(attrs, field).map(Some),
    }
}

pub(super) fn put(map: &mut Map<String, Value>, key: &str, value: impl Into<Value>) {
    map.insert(key.to_owned(), value.into());
}

pub(super) fn put_version(map: &mut Map<String, Value>, version: &str) {
    put(map, "contract_version", version);
}

pub(super) fn strings(values: &[String]) -> Value {
    Value::Array(values.iter().cloned().map(Value::String).collect())
}
