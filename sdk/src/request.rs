//! The request a lane receives, with its payload already parsed, and the typed errors of the
//! payload helpers (each turns into an `invalid_lane_request` rejection with `?`).

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde_json::{Map, Value};

/// An admitted execution as the lane sees it: who it is, how long it may take and what to do.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The execution this call belongs to (for logs and events; the host stamps them anyway).
    pub execution_ref: String,
    /// The lane id the request named.
    pub lane_id: String,
    /// The lane operation, when the request names one.
    pub operation: Option<String>,
    /// Lineage keys and values (`trace_id`, `idempotency_key`, ...); a repeated key keeps its
    /// last value.
    pub lineage: BTreeMap<String, String>,
    /// Milliseconds the execution may take; the host ends it when they run out.
    pub timeout_ms: u64,
    /// The request payload: always a JSON object once the SDK hands it to the lane.
    pub payload: Value,
}

impl Request {
    /// A request with `payload` and empty identifiers, for tests and tools that drive a lane
    /// directly; a non-object payload is kept as given, so tests can probe the helpers with it.
    pub fn new(payload: Value) -> Self {
        Self {
            execution_ref: String::new(),
            lane_id: String::new(),
            operation: None,
            lineage: BTreeMap::new(),
            timeout_ms: 0,
            payload,
        }
    }

    /// Sets the operation, so a test can build a request in one expression.
    #[must_use]
    pub fn with_operation(mut self, operation: impl Into<String>) -> Self {
        self.operation = Some(operation.into());
        self
    }

    /// The string field `key` of the payload; a missing or non-string field is a typed error.
    pub fn payload_str(&self, key: &str) -> Result<&str, PayloadError> {
        match self.field(key)? {
            Value::String(text) => Ok(text),
            other => Err(PayloadError::WrongType {
                key: key.to_owned(),
                expected: "string",
                found: json_type(other),
            }),
        }
    }

    /// The field `key` of the payload read as `T`; a missing field or one `T` cannot be read
    /// from is a typed error.
    pub fn payload_field<'a, T: Deserialize<'a>>(&'a self, key: &str) -> Result<T, PayloadError> {
        let value = self.field(key)?;
        T::deserialize(value).map_err(|error| PayloadError::Invalid {
            key: Some(key.to_owned()),
            error: error.to_string(),
        })
    }

    /// The optional field `key` read as `T`: `None` when it is absent or `null`, a typed error
    /// when it is present but unreadable.
    pub fn payload_opt<'a, T: Deserialize<'a>>(
        &'a self,
        key: &str,
    ) -> Result<Option<T>, PayloadError> {
        match self.object()?.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => T::deserialize(value)
                .map(Some)
                .map_err(|error| PayloadError::Invalid {
                    key: Some(key.to_owned()),
                    error: error.to_string(),
                }),
        }
    }

    /// The whole payload read as `T` (typically a `#[derive(Deserialize)]` struct).
    pub fn payload_as<'a, T: Deserialize<'a>>(&'a self) -> Result<T, PayloadError> {
        self.object()?;
        T::deserialize(&self.payload).map_err(|error| PayloadError::Invalid {
            key: None,
            error: error.to_string(),
        })
    }

    /// The payload as an object map; the SDK guarantees this, hand-built requests may not.
    fn object(&self) -> Result<&Map<String, Value>, PayloadError> {
        match &self.payload {
            Value::Object(map) => Ok(map),
            other => Err(PayloadError::NotAnObject {
                found: json_type(other),
            }),
        }
    }

    /// A required field: present and not `null`.
    fn field(&self, key: &str) -> Result<&Value, PayloadError> {
        match self.object()?.get(key) {
            None | Some(Value::Null) => Err(PayloadError::Missing {
                key: key.to_owned(),
            }),
            Some(value) => Ok(value),
        }
    }
}

/// Parses `payload-json` text into the object the lane sees; empty text reads as `{}`.
pub(crate) fn parse_payload(text: &str) -> Result<Value, PayloadError> {
    if text.trim().is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    match serde_json::from_str::<Value>(text) {
        Ok(value @ Value::Object(_)) => Ok(value),
        Ok(other) => Err(PayloadError::NotAnObject {
            found: json_type(&other),
        }),
        Err(error) => Err(PayloadError::NotJson {
            error: error.to_string(),
        }),
    }
}

/// The JSON type name of a value, for error messages.
pub(crate) fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Why a payload (or one of its fields) could not be read; `?` turns it into an
/// `invalid_lane_request` [`Rejection`](crate::Rejection) or a failed [`Outcome`](crate::Outcome).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PayloadError {
    /// The payload text is not JSON at all.
    NotJson {
        /// The parser's message, with line and column.
        error: String,
    },
    /// The payload is JSON but not an object.
    NotAnObject {
        /// The JSON type it is instead.
        found: &'static str,
    },
    /// A required field is absent or `null`.
    Missing {
        /// The field.
        key: String,
    },
    /// A field has the wrong JSON type.
    WrongType {
        /// The field.
        key: String,
        /// The JSON type the lane needs.
        expected: &'static str,
        /// The JSON type it has.
        found: &'static str,
    },
    /// A field (or, with no key, the whole payload) cannot be read as the type the lane asked
    /// for.
    Invalid {
        /// The field, or `None` for the whole payload.
        key: Option<String>,
        /// Serde's message.
        error: String,
    },
}

impl PayloadError {
    /// The payload field the error is about, when it is about one.
    pub fn key(&self) -> Option<&str> {
        match self {
            Self::Missing { key } | Self::WrongType { key, .. } => Some(key),
            Self::Invalid { key, .. } => key.as_deref(),
            Self::NotJson { .. } | Self::NotAnObject { .. } => None,
        }
    }

    /// The error as data, for rejection and failure details.
    pub(crate) fn details(&self) -> Map<String, Value> {
        let mut details = Map::new();
        if let Some(key) = self.key() {
            details.insert("field".to_owned(), Value::from(key));
        }
        match self {
            Self::NotJson { error } | Self::Invalid { error, .. } => {
                details.insert("error".to_owned(), Value::from(error.as_str()));
            }
            Self::NotAnObject { found } => {
                details.insert("expected".to_owned(), Value::from("object"));
                details.insert("found".to_owned(), Value::from(*found));
            }
            Self::WrongType {
                expected, found, ..
            } => {
                details.insert("expected".to_owned(), Value::from(*expected));
                details.insert("found".to_owned(), Value::from(*found));
            }
            Self::Missing { .. } => {}
        }
        details
    }
}

impl fmt::Display for PayloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotJson { error } => {
                write!(
                    f,
                    "the payload is not valid JSON ({error}); send a JSON object"
                )
            }
            Self::NotAnObject { found } => {
                write!(
                    f,
                    "the payload is a JSON {found}, not an object; send a JSON object"
                )
            }
            Self::Missing { key } => {
                write!(
                    f,
                    "payload field `{key}` is missing; add it to the request payload"
                )
            }
            Self::WrongType {
                key,
                expected,
                found,
            } => {
                write!(f, "payload field `{key}` is a {found}; send a {expected}")
            }
            Self::Invalid {
                key: Some(key),
                error,
            } => {
                write!(f, "payload field `{key}` is invalid: {error}")
            }
            Self::Invalid { key: None, error } => write!(f, "the payload is invalid: {error}"),
        }
    }
}

impl std::error::Error for PayloadError {}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    fn req(payload: Value) -> Request {
        Request::new(payload)
    }

    #[test]
    fn object_payload_text_parses() {
        assert_eq!(parse_payload(r#"{"a": 1}"#), Ok(json!({"a": 1})));
    }

    #[test]
    fn empty_payload_text_reads_as_an_empty_object() {
        assert_eq!(parse_payload(""), Ok(json!({})));
        assert_eq!(parse_payload("  \n"), Ok(json!({})));
    }

    #[test]
    fn malformed_payload_text_is_not_json_with_position() {
        let Err(PayloadError::NotJson { error }) = parse_payload(r#"{"a": "#) else {
            panic!("expected NotJson");
        };
        assert!(error.contains("line 1"), "{error}");
    }

    #[test]
    fn non_object_payload_text_is_refused_with_its_type() {
        assert_eq!(
            parse_payload("[1, 2]"),
            Err(PayloadError::NotAnObject { found: "array" })
        );
        assert_eq!(
            parse_payload("\"hi\""),
            Err(PayloadError::NotAnObject { found: "string" })
        );
        assert_eq!(
            parse_payload("null"),
            Err(PayloadError::NotAnObject { found: "null" })
        );
    }

    #[test]
    fn payload_str_reads_a_string_field() {
        assert_eq!(
            req(json!({"message": "hi"})).payload_str("message"),
            Ok("hi")
        );
    }

    #[test]
    fn payload_str_on_a_missing_or_null_field_is_missing() {
        let expected = Err(PayloadError::Missing {
            key: "message".into(),
        });
        assert_eq!(req(json!({})).payload_str("message"), expected);
        assert_eq!(
            req(json!({"message": null})).payload_str("message"),
            expected
        );
    }

    #[test]
    fn payload_str_on_a_number_is_wrong_type() {
        assert_eq!(
            req(json!({"message": 5})).payload_str("message"),
            Err(PayloadError::WrongType {
                key: "message".into(),
                expected: "string",
                found: "number"
            })
        );
    }

    #[test]
    fn payload_helpers_on_a_non_object_payload_say_so() {
        assert_eq!(
            req(json!([1])).payload_str("message"),
            Err(PayloadError::NotAnObject { found: "array" })
        );
        assert_eq!(
            req(json!(3)).payload_opt::<u32>("n"),
            Err(PayloadError::NotAnObject { found: "number" })
        );
    }

    #[test]
    fn payload_field_reads_typed_values_and_borrows_strings() {
        let r = req(json!({"n": 7, "tags": ["a", "b"], "name": "x"}));
        assert_eq!(r.payload_field::<u32>("n"), Ok(7));
        assert_eq!(
            r.payload_field::<Vec<String>>("tags"),
            Ok(vec!["a".into(), "b".into()])
        );
        assert_eq!(r.payload_field::<&str>("name"), Ok("x"));
    }

    #[test]
    fn payload_field_with_an_unreadable_value_is_invalid_with_serde_message() {
        let err = req(json!({"n": "seven"}))
            .payload_field::<u32>("n")
            .unwrap_err();
        assert_eq!(err.key(), Some("n"));
        assert!(
            matches!(&err, PayloadError::Invalid { error, .. } if error.contains("invalid type"))
        );
    }

    #[test]
    fn payload_field_on_a_missing_field_is_missing() {
        assert_eq!(
            req(json!({})).payload_field::<u32>("n"),
            Err(PayloadError::Missing { key: "n".into() })
        );
    }

    #[test]
    fn payload_opt_is_none_for_absent_or_null_and_reads_present_values() {
        assert_eq!(req(json!({})).payload_opt::<u32>("n"), Ok(None));
        assert_eq!(req(json!({"n": null})).payload_opt::<u32>("n"), Ok(None));
        assert_eq!(req(json!({"n": 3})).payload_opt::<u32>("n"), Ok(Some(3)));
        assert!(req(json!({"n": true})).payload_opt::<u32>("n").is_err());
    }

    #[test]
    fn payload_as_reads_the_whole_payload_into_a_struct() {
        #[derive(Debug, Deserialize, PartialEq)]
        struct Call {
            method: String,
            #[serde(default)]
            retries: u8,
        }
        assert_eq!(
            req(json!({"method": "ping"})).payload_as::<Call>(),
            Ok(Call {
                method: "ping".into(),
                retries: 0
            })
        );
        let err = req(json!({"retries": 1})).payload_as::<Call>().unwrap_err();
        assert_eq!(err.key(), None);
        assert!(err.to_string().contains("missing field `method`"), "{err}");
    }

    #[test]
    fn payload_error_messages_name_the_field_reason_and_fix() {
        assert_eq!(
            PayloadError::Missing {
                key: "message".into()
            }
            .to_string(),
            "payload field `message` is missing; add it to the request payload"
        );
        assert_eq!(
            PayloadError::WrongType {
                key: "message".into(),
                expected: "string",
                found: "number"
            }
            .to_string(),
            "payload field `message` is a number; send a string"
        );
        assert_eq!(
            PayloadError::NotAnObject { found: "array" }.to_string(),
            "the payload is a JSON array, not an object; send a JSON object"
        );
    }

    #[test]
    fn payload_error_details_carry_field_and_types() {
        let details = PayloadError::WrongType {
            key: "m".into(),
            expected: "string",
            found: "bool",
        }
        .details();
        assert_eq!(
            Value::Object(details),
            json!({"field": "m", "expected": "string", "found": "bool"})
        );
    }
}
