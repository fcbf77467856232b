//! Lineage: the ids that tie a route, its events and its outcome together, with the
//! `trace_id` backfill from `request_id`.

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Map, Value};

use crate::error::ContractError;

/// Canonical lineage keys, in order.
pub const LINEAGE_KEYS: [&str; 9] = [
    "tenant_id",
    "trace_id",
    "request_id",
    "decision_id",
    "boundary_session_id",
    "attempt_ref",
    "route_id",
    "event_id",
    "idempotency_key",
];

/// Keys required on routes, outcomes and lower-simulation evidence: all but `event_id`.
pub const ROUTE_LINEAGE_KEYS: [&str; 8] = [
    "tenant_id",
    "trace_id",
    "request_id",
    "decision_id",
    "boundary_session_id",
    "attempt_ref",
    "route_id",
    "idempotency_key",
];

/// Keys required on events: all nine.
pub const EVENT_LINEAGE_KEYS: [&str; 9] = LINEAGE_KEYS;

static BACKFILL_COUNT: AtomicU64 = AtomicU64::new(0);

/// How many times `trace_id` was backfilled from `request_id` in this process; the metric side
/// of the `lower_gateway.trace_id.backfill` signal.
pub fn trace_id_backfill_count() -> u64 {
    BACKFILL_COUNT.load(Ordering::Relaxed)
}

/// Normalized lineage: canonical keys only, each a non-empty string, plus optional extensions.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Lineage {
    values: [Option<String>; 9],
    extensions: Option<Map<String, Value>>,
}

impl Lineage {
    /// Normalizes `value` and checks `required` keys, backfilling `trace_id` from `request_id`
    /// when `trace_id` is required and absent.
    pub fn normalize(value: &Value, required: &[&str]) -> Result<Self, ContractError> {
        let Value::Object(map) = value else {
            return Err(ContractError::WrongType {
                field: "lineage".to_owned(),
                expected: "a map",
            });
        };
        let mut lineage = Lineage::default();
        for (key, v) in map {
            if key == "extensions" {
                match v {
                    Value::Object(ext) => lineage.extensions = Some(ext.clone()),
                    Value::Null => {}
                    _ => {
                        return Err(ContractError::WrongType {
                            field: "lineage.extensions".to_owned(),
                            expected: "a map",
                        });
                    }
                }
                continue;
            }
            let Some(index) = LINEAGE_KEYS.iter().position(|k| k == key) else {
                return Err(ContractError::UnknownLineageKey { key: key.clone() });
            };
            match v {
                Value::String(s) if !s.is_empty() => lineage.values[index] = Some(s.clone()),
                _ => {
                    return Err(ContractError::rule(
                        format!("lineage.{key}"),
                        format!("lineage.{key} must be a non-empty string"),
                    ));
                }
            }
        }
        if required.contains(&"trace_id") && lineage.get("trace_id").is_none() {
            lineage.backfill_trace_id();
        }
        for key in required {
            if lineage.get(key).is_none() {
                let key = LINEAGE_KEYS
                    .iter()
                    .find(|k| *k == key)
                    .copied()
                    .unwrap_or("trace_id");
                return Err(ContractError::LineageKeyRequired { key });
            }
        }
        Ok(lineage)
    }

    fn backfill_trace_id(&mut self) {
        let Some(request_id) = self.get("request_id").map(str::to_owned) else {
            return;
        };
        BACKFILL_COUNT.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            target: "lower_gateway::trace_id::backfill",
            count = 1u64,
            consumer = "execution_plane_contracts",
            source = "request_id",
            trace_id = %request_id,
            tenant_id = self.get("tenant_id").unwrap_or_default(),
            request_id = %request_id,
            decision_id = self.get("decision_id").unwrap_or_default(),
            boundary_session_id = self.get("boundary_session_id").unwrap_or_default(),
            route_id = self.get("route_id").unwrap_or_default(),
            "trace_id backfilled from request_id"
        );
        self.set("trace_id", request_id);
    }

    /// The value of a canonical key.
    pub fn get(&self, key: &str) -> Option<&str> {
        LINEAGE_KEYS
            .iter()
            .position(|k| *k == key)
            .and_then(|i| self.values[i].as_deref())
    }

    /// Sets a canonical key; unknown keys are ignored (they cannot be represented).
    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        if let Some(i) = LINEAGE_KEYS.iter().position(|k| *k == key) {
            self.values[i] = Some(value.into());
        }
    }

    /// A copy with `key` set.
    #[must_use]
    pub fn with(mut self, key: &str, value: impl Into<String>) -> Self {
        self.set(key, value);
        self
    }

    /// The extensions map, when present.
    pub fn extensions(&self) -> Option<&Map<String, Value>> {
        self.extensions.as_ref()
    }

    /// Checks that a top-level `field` equals its lineage copy when the lineage carries one.
    pub fn check_matches(&self, field: &'static str, top_level: &str) -> Result<(), ContractError> {
        match self.get(field) {
            Some(v) if v != top_level => Err(ContractError::LineageMismatch {
                field,
                got: format!("{top_level:?}"),
            }),
            _ => Ok(()),
        }
    }

    /// Dumps present keys (and extensions) as a string-keyed map.
    pub fn to_value(&self) -> Value {
        let mut map = Map::new();
        for (key, value) in LINEAGE_KEYS.iter().zip(&self.values) {
            if let Some(v) = value {
                map.insert((*key).to_owned(), Value::String(v.clone()));
            }
        }
        if let Some(ext) = &self.extensions {
            map.insert("extensions".to_owned(), Value::Object(ext.clone()));
        }
        Value::Object(map)
    }
}

impl serde::Serialize for Lineage {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_value().serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn full() -> Value {
        json!({
            "tenant_id": "tenant-1", "trace_id": "trace-1", "request_id": "req-1",
            "decision_id": "dec-1", "boundary_session_id": "bs-1", "attempt_ref": "attempt://1",
            "route_id": "route-1", "idempotency_key": "idem-1"
        })
    }

    #[test]
    fn unknown_key_is_rejected() {
        let mut v = full();
        v["colour"] = json!("blue");
        let err = Lineage::normalize(&v, &ROUTE_LINEAGE_KEYS).unwrap_err();
        assert_eq!(err.to_string(), "unknown lineage key: colour");
    }

    #[test]
    fn empty_value_is_rejected() {
        let mut v = full();
        v["tenant_id"] = json!("");
        let err = Lineage::normalize(&v, &ROUTE_LINEAGE_KEYS).unwrap_err();
        assert_eq!(
            err.to_string(),
            "lineage.tenant_id must be a non-empty string"
        );
    }

    #[test]
    fn missing_required_key_is_named() {
        let mut v = full();
        v.as_object_mut().unwrap().remove("idempotency_key");
        let err = Lineage::normalize(&v, &ROUTE_LINEAGE_KEYS).unwrap_err();
        assert_eq!(err.to_string(), "lineage.idempotency_key is required");
    }

    #[test]
    fn extensions_must_be_a_map() {
        let mut v = full();
        v["extensions"] = json!([1]);
        let err = Lineage::normalize(&v, &ROUTE_LINEAGE_KEYS).unwrap_err();
        assert_eq!(err.to_string(), "lineage.extensions must be a map");
    }

    #[test]
    fn trace_id_is_backfilled_from_request_id_and_counted() {
        let mut v = full();
        v.as_object_mut().unwrap().remove("trace_id");
        let before = trace_id_backfill_count();
        let lineage = Lineage::normalize(&v, &ROUTE_LINEAGE_KEYS).unwrap();
        assert_eq!(lineage.get("trace_id"), Some("req-1"));
        assert!(trace_id_backfill_count() > before);
    }

    #[test]
    fn trace_id_is_not_backfilled_when_not_required() {
        let lineage = Lineage::normalize(&json!({"request_id": "r"}), &[]).unwrap();
        assert_eq!(lineage.get("trace_id"), None);
    }

    #[test]
    fn dump_round_trips() {
        let mut v = full();
        v["extensions"] = json!({"x": 1});
        let lineage = Lineage::normalize(&v, &ROUTE_LINEAGE_KEYS).unwrap();
        assert_eq!(lineage.to_value(), v);
        assert_eq!(
            Lineage::normalize(&lineage.to_value(), &ROUTE_LINEAGE_KEYS).unwrap(),
            lineage
        );
    }
}
