//! Shared field validators for the strict packet contracts, in upstream order and wording.
//!
//! Every strict contract reads its input through [`Attrs`], so a field is validated the same way
//! wherever it appears and error text stays stable.

use serde_json::{Map, Value};

use crate::error::ContractError;
use crate::inspect::{inspect, inspect_opt};

/// A JSON object being read into a strict contract.
#[derive(Debug, Clone, Copy)]
pub struct Attrs<'a> {
    map: &'a Map<String, Value>,
}

impl<'a> Attrs<'a> {
    /// Accepts only a JSON object; anything else is [`ContractError::NotAnObject`].
    pub fn new(value: &'a Value) -> Result<Self, ContractError> {
        match value {
            Value::Object(map) => Ok(Self { map }),
            other => Err(ContractError::NotAnObject {
                got: inspect(other),
            }),
        }
    }

    /// The underlying object.
    pub fn map(&self) -> &'a Map<String, Value> {
        self.map
    }

    /// The raw value of `field`; `null` counts as absent.
    pub fn get(&self, field: &str) -> Option<&'a Value> {
        self.map.get(field).filter(|v| !v.is_null())
    }

    /// Whether the key is present at all (even as null): forbidden-key checks use this.
    pub fn has_key(&self, field: &str) -> bool {
        self.map.contains_key(field)
    }

    /// `contract_version` is optional, but when present must be exactly `expected`.
    pub fn check_version(&self, expected: &str) -> Result<(), ContractError> {
        match self.get("contract_version") {
            None => Ok(()),
            Some(Value::String(s)) if s == expected => Ok(()),
            Some(other) => Err(ContractError::VersionMismatch {
                expected: format!("{expected:?}"),
                got: inspect(other),
            }),
        }
    }

    /// A required non-empty string.
    pub fn required_string(&self, field: &str) -> Result<String, ContractError> {
        match self.map.get(field) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            other => Err(ContractError::NonEmptyString {
                field: field.to_owned(),
                got: inspect_opt(other),
            }),
        }
    }

    /// An optional string: absent/null → `None`, otherwise it must be non-empty.
    pub fn optional_string(&self, field: &str) -> Result<Option<String>, ContractError> {
        match self.get(field) {
            None => Ok(None),
            Some(_) => self.required_string(field).map(Some),
        }
    }

    /// A required JSON object.
    pub fn required_map(&self, field: &str) -> Result<Map<String, Value>, ContractError> {
        match self.get(field) {
            Some(Value::Object(m)) => Ok(m.clone()),
            _ => Err(ContractError::WrongType {
                field: field.to_owned(),
                expected: "a map",
            }),
        }
    }

    /// An optional JSON object, `{}` when absent.
    pub fn optional_map(&self, field: &str) -> Result<Map<String, Value>, ContractError> {
        match self.get(field) {
            None => Ok(Map::new()),
            Some(_) => self.required_map(field),
        }
    }

    /// A list (absent → empty) whose elements each pass `element`.
    pub fn list<T>(
        &self,
        field: &str,
        mut element: impl FnMut(&'a Value) -> Result<T, ContractError>,
    ) -> Result<Vec<T>, ContractError> {
        match self.get(field) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items.iter().map(&mut element).collect(),
            Some(_) => Err(ContractError::WrongType {
                field: field.to_owned(),
                expected: "a list",
            }),
        }
    }

    /// A required list: absent is an error too.
    pub fn required_list<T>(
        &self,
        field: &str,
        element: impl FnMut(&'a Value) -> Result<T, ContractError>,
    ) -> Result<Vec<T>, ContractError> {
        match self.get(field) {
            Some(Value::Array(_)) => self.list(field, element),
            _ => Err(ContractError::WrongType {
                field: field.to_owned(),
                expected: "a list",
            }),
        }
    }

    /// A list of non-empty strings; `element_field` names each element in errors.
    pub fn string_list(
        &self,
        field: &str,
        element_field: &str,
    ) -> Result<Vec<String>, ContractError> {
        self.list(field, |v| non_empty_string(element_field, v))
    }

    /// A boolean with a default when absent.
    pub fn boolean(&self, field: &str, default: bool) -> Result<bool, ContractError> {
        match self.get(field) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(ContractError::WrongType {
                field: field.to_owned(),
                expected: "a boolean",
            }),
        }
    }

    /// A required integer ≥ 0.
    pub fn non_negative_integer(&self, field: &str) -> Result<u64, ContractError> {
        match self.get(field).and_then(Value::as_u64) {
            Some(n) => Ok(n),
            None => Err(ContractError::WrongType {
                field: field.to_owned(),
                expected: "a non-negative integer",
            }),
        }
    }

    /// A required opaque handle ref (`scheme://...` or `urn:...`).
    pub fn opaque_ref(&self, field: &str) -> Result<String, ContractError> {
        opaque_ref(field, self.map.get(field).unwrap_or(&Value::Null))
    }

    /// An optional opaque handle ref.
    pub fn optional_opaque_ref(&self, field: &str) -> Result<Option<String>, ContractError> {
        match self.get(field) {
            None => Ok(None),
            Some(v) => opaque_ref(field, v).map(Some),
        }
    }

    /// A required ISO 8601 date-time with offset.
    pub fn iso8601(&self, field: &str) -> Result<String, ContractError> {
        iso8601(field, self.map.get(field).unwrap_or(&Value::Null))
    }

    /// An optional ISO 8601 date-time with offset.
    pub fn optional_iso8601(&self, field: &str) -> Result<Option<String>, ContractError> {
        match self.get(field) {
            None => Ok(None),
            Some(v) => iso8601(field, v).map(Some),
        }
    }

    /// Any JSON value, `null` when absent (bodies, stdin).
    pub fn any(&self, field: &str) -> Value {
        self.get(field).cloned().unwrap_or(Value::Null)
    }

    /// Actor refs of the Phase-4 contracts: at least one of `principal_ref` / `system_actor_ref`.
    pub fn actor_refs(&self) -> Result<(Option<String>, Option<String>), ContractError> {
        let principal = self.optional_string("principal_ref")?;
        let system = self.optional_string("system_actor_ref")?;
        if principal.is_none() && system.is_none() {
            return Err(ContractError::rule(
                "principal_ref",
                "principal_ref or system_actor_ref is required",
            ));
        }
        Ok((principal, system))
    }

    /// Refuses any of `keys` being present (as a key, whatever its value), with `message`.
    pub fn forbid_keys(&self, keys: &[&str], message: &str) -> Result<(), ContractError> {
        match keys.iter().find(|k| self.has_key(k)) {
            Some(key) => Err(ContractError::rule(*key, message)),
            None => Ok(()),
        }
    }

    /// A required string that must be one of `allowed`; otherwise `<field> <suffix>` where the
    /// suffix is `is not supported: "<v>"` or `unsupported value: "<v>"`.
    pub fn one_of(
        &self,
        field: &str,
        allowed: &[&str],
        wording: EnumWording,
    ) -> Result<String, ContractError> {
        let value = self.required_string(field)?;
        if allowed.contains(&value.as_str()) {
            return Ok(value);
        }
        let message = match wording {
            EnumWording::NotSupported => {
                format!(
                    "{field} is not supported: {}",
                    inspect(&Value::String(value))
                )
            }
            EnumWording::UnsupportedValue => {
                format!(
                    "{field} unsupported value: {}",
                    inspect(&Value::String(value))
                )
            }
        };
        Err(ContractError::rule(field, message))
    }
}

/// How an enum violation is worded (upstream uses two phrasings).
#[derive(Debug, Clone, Copy)]
pub enum EnumWording {
    /// `<field> is not supported: "<v>"`
    NotSupported,
    /// `<field> unsupported value: "<v>"`
    UnsupportedValue,
}

/// A non-empty string element.
pub fn non_empty_string(field: &str, value: &Value) -> Result<String, ContractError> {
    match value {
        Value::String(s) if !s.is_empty() => Ok(s.clone()),
        other => Err(ContractError::NonEmptyString {
            field: field.to_owned(),
            got: inspect(other),
        }),
    }
}

/// A plain string element (argv): empty strings allowed.
pub fn plain_string(field: &str, value: &Value) -> Result<String, ContractError> {
    match value {
        Value::String(s) => Ok(s.clone()),
        _ => Err(ContractError::WrongType {
            field: field.to_owned(),
            expected: "a string",
        }),
    }
}

/// Whether `s` has the shape of an opaque handle ref.
pub fn is_opaque_ref(s: &str) -> bool {
    !s.is_empty() && (s.contains("://") || s.starts_with("urn:"))
}

/// An opaque handle ref: a non-empty string containing `://` or starting with `urn:`.
pub fn opaque_ref(field: &str, value: &Value) -> Result<String, ContractError> {
    match value {
        Value::String(s) if is_opaque_ref(s) => Ok(s.clone()),
        other => Err(ContractError::NotOpaqueRef {
            field: field.to_owned(),
            got: inspect(other),
        }),
    }
}

/// Whether `s` is an ISO 8601 / RFC 3339 date-time with an offset (`Z` or `±hh:mm`).
pub fn is_iso8601(s: &str) -> bool {
    chrono::DateTime::parse_from_rfc3339(s).is_ok()
}

/// An ISO 8601 date-time with offset, kept verbatim.
pub fn iso8601(field: &str, value: &Value) -> Result<String, ContractError> {
    match value {
        Value::String(s) if is_iso8601(s) => Ok(s.clone()),
        other => Err(ContractError::NotIso8601 {
            field: field.to_owned(),
            got: inspect(other),
        }),
    }
}

/// Inserts `Some` values as strings and `None` as null, so dumps keep every field.
pub fn put_opt(map: &mut Map<String, Value>, key: &str, value: &Option<String>) {
    map.insert(
        key.to_owned(),
        value.clone().map_or(Value::Null, Value::String),
    );
}
