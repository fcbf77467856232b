//! A lane's refusal of a request before any I/O.

use std::fmt;

use serde_json::{Map, Value};

use crate::PayloadError;

/// Why a lane refuses a request; the host returns it to the caller as an admission rejection.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    /// The reason code (`invalid_lane_request`, `not_supported`, ...); callers match on it.
    pub reason: String,
    /// A message for people: name the thing, the reason and what to do.
    pub message: String,
    /// The precise cause as data.
    pub details: Map<String, Value>,
}

impl Rejection {
    /// The reason code for a request the lane cannot read or run as given.
    pub const INVALID_REQUEST: &'static str = "invalid_lane_request";
    /// The reason code for something the lane does not do at all (e.g. streaming).
    pub const NOT_SUPPORTED: &'static str = "not_supported";

    /// A rejection with any reason code, for the rare case the two constructors below don't fit.
    pub fn new(reason: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            message: message.into(),
            details: Map::new(),
        }
    }

    /// `invalid_lane_request`: the payload is missing something or holds something wrong.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(Self::INVALID_REQUEST, message)
    }

    /// `not_supported`: the lane does not offer what was asked (an operation, streaming).
    pub fn not_supported(message: impl Into<String>) -> Self {
        Self::new(Self::NOT_SUPPORTED, message)
    }

    /// Adds one detail, so the caller gets the cause as data and not only as text.
    #[must_use]
    pub fn with_detail(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.details.insert(key.into(), value.into());
        self
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason, self.message)
    }
}

impl std::error::Error for Rejection {}

/// A payload that cannot be read is an `invalid_lane_request`, with the field and types as
/// details; this is what makes `req.payload_str("key")?` work in `validate` and `stream`.
impl From<PayloadError> for Rejection {
    fn from(error: PayloadError) -> Self {
        let mut rejection = Self::invalid_request(error.to_string());
        rejection.details = error.details();
        rejection
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn invalid_request_and_not_supported_use_the_host_reason_codes() {
        assert_eq!(
            Rejection::invalid_request("m").reason,
            "invalid_lane_request"
        );
        assert_eq!(Rejection::not_supported("m").reason, "not_supported");
    }

    #[test]
    fn with_detail_adds_data() {
        let r = Rejection::not_supported("no such operation").with_detail("operation", "frob");
        assert_eq!(Value::Object(r.details), json!({"operation": "frob"}));
    }

    #[test]
    fn payload_errors_become_invalid_requests_with_details() {
        let r = Rejection::from(PayloadError::Missing {
            key: "message".into(),
        });
        assert_eq!(r.reason, "invalid_lane_request");
        assert_eq!(
            r.message,
            "payload field `message` is missing; add it to the request payload"
        );
        assert_eq!(Value::Object(r.details), json!({"field": "message"}));
    }

    #[test]
    fn display_shows_reason_then_message() {
        assert_eq!(
            Rejection::not_supported("no").to_string(),
            "not_supported: no"
        );
    }
}
