//! The [`Contract`] trait every value implements, and the JSON codec with its size cap.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::ContractError;

/// Largest JSON document the codec accepts (4 MiB). Contracts are control-plane documents; bulk
/// data (bodies, stdout) travels through lanes, not through contract parsing.
pub const MAX_DOCUMENT_BYTES: usize = 4 * 1024 * 1024;

/// A contract value with a validating constructor and a JSON dump obeying `parse(dump(x)) == x`.
pub trait Contract: Sized + Clone + PartialEq + std::fmt::Debug {
    /// The name used by the registry and the CLI (`execution_route.v1`, `admission_request`, ...).
    const NAME: &'static str;

    /// Validates JSON attributes into the value, in the documented check order.
    fn from_value(value: &Value) -> Result<Self, ContractError>;

    /// Dumps the value as JSON with string keys, `contract_version` always included.
    fn to_value(&self) -> Value;

    /// Parses and validates JSON text (already within the size cap). The default goes through
    /// an untyped [`Value`]; values that can deserialize straight from text override it.
    fn from_json_text(text: &str) -> Result<Self, ContractError> {
        Self::from_value(&parse_json(text)?)
    }
}

/// Parses JSON text with the size cap, then validates it as `T`.
pub fn parse<T: Contract>(text: &str) -> Result<T, ContractError> {
    check_size(text)?;
    T::from_json_text(text)
}

fn check_size(text: &str) -> Result<(), ContractError> {
    if text.len() > MAX_DOCUMENT_BYTES {
        return Err(ContractError::TooLarge {
            actual: text.len(),
            limit: MAX_DOCUMENT_BYTES,
        });
    }
    Ok(())
}

/// Parses JSON text into a value, refusing documents over [`MAX_DOCUMENT_BYTES`].
pub fn parse_json(text: &str) -> Result<Value, ContractError> {
    check_size(text)?;
    serde_json::from_str(text).map_err(|e| {
        // serde_json appends " at line L column C"; the error carries those as fields.
        let full = e.to_string();
        let suffix = format!(" at line {} column {}", e.line(), e.column());
        let message = full.strip_suffix(&suffix).unwrap_or(&full).to_owned();
        ContractError::MalformedJson {
            line: e.line(),
            column: e.column(),
            message,
        }
    })
}

/// Dumps `value` as compact JSON text.
pub fn dump<T: Contract>(value: &T) -> String {
    value.to_value().to_string()
}

/// Serializes a strict packet struct and stamps its `contract_version` string.
pub(crate) fn dump_packet<T: Serialize>(value: &T, version: &str) -> Value {
    let mut map = match serde_json::to_value(value) {
        Ok(Value::Object(map)) => map,
        // A struct of strings, lists and maps always serializes to an object; keep the
        // version even if that ever changes.
        _ => Map::new(),
    };
    map.insert(
        "contract_version".to_owned(),
        Value::String(version.to_owned()),
    );
    Value::Object(map)
}

/// Implements [`Contract`] for a serde-derived boundary value, reporting the failing field path.
#[macro_export]
macro_rules! boundary_contract {
    ($ty:ty, $name:literal) => {
        impl $crate::Contract for $ty {
            const NAME: &'static str = $name;

            fn from_value(value: &serde_json::Value) -> Result<Self, $crate::ContractError> {
                $crate::contract::deserialize_boundary(value)
            }

            fn to_value(&self) -> serde_json::Value {
                serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
            }

            fn from_json_text(text: &str) -> Result<Self, $crate::ContractError> {
                $crate::contract::deserialize_boundary_text(text)
            }
        }
    };
}

/// Deserializes a boundary value straight from text, skipping the untyped [`Value`]. Any
/// failure is answered by the [`Value`] route, which is the reference: the fast path never
/// changes what is accepted or how an error reads.
pub fn deserialize_boundary_text<T: serde::de::DeserializeOwned>(
    text: &str,
) -> Result<T, ContractError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let fast = T::deserialize(&mut de).and_then(|value| de.end().map(|()| value));
    match fast {
        Ok(value) if text.trim_start().starts_with('{') => Ok(value),
        _ => deserialize_boundary(&parse_json(text)?),
    }
}

/// Deserializes a boundary value, naming the field path of the first problem.
pub fn deserialize_boundary<T: serde::de::DeserializeOwned>(
    value: &Value,
) -> Result<T, ContractError> {
    if !value.is_object() {
        return Err(ContractError::NotAnObject {
            got: crate::inspect::inspect(value),
        });
    }
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner().to_string();
        let field = if path == "." { String::new() } else { path };
        let message = if field.is_empty() {
            inner
        } else {
            format!("{field}: {inner}")
        };
        ContractError::Rule { field, message }
    })
}
