//! What can go wrong talking to a remote node, and how the API's error envelope maps onto the
//! [`RuntimeError`] every runtime client returns (so callers handle local and remote alike).

use ep_contracts::Contract;
use ep_contracts::boundary::{AdmissionRejection, Map};
use ep_node::{RuntimeError, TargetError};
use serde_json::Value;
use thiserror::Error;

/// The client could not be built from its settings.
#[derive(Debug, Error)]
pub enum BuildError {
    /// The base URL is not an absolute `http://host[:port][/prefix]` URL.
    #[error("invalid base url {url:?}: {reason} (expected http://host[:port][/prefix])")]
    InvalidBaseUrl {
        /// The URL given.
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// A default header's name or value is not valid HTTP.
    #[error("invalid default header {name:?}: {reason}")]
    InvalidHeader {
        /// The header name given.
        name: String,
        /// Why it was refused.
        reason: String,
    },
}

/// A non-success answer in the API's error envelope
/// (`{"error": {"code", "message", "details"}, "rejection"?}`).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: u16,
    /// The rejection reason or API code (`not_found`, `invalid_json`, ...).
    pub code: String,
    /// The server's message.
    pub message: String,
    /// `error.details`.
    pub details: Map,
    /// The node's refusal, when the node refused the request.
    pub rejection: Option<AdmissionRejection>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

/// Code used when a non-success answer is not in the error envelope.
pub const UNEXPECTED_RESPONSE: &str = "unexpected_response";

impl ApiError {
    /// Reads an error answer; a body that is not the envelope still gives an error naming the
    /// status (code [`UNEXPECTED_RESPONSE`]) and the start of the body.
    pub fn from_response(status: u16, body: &[u8]) -> Self {
        let parsed: Option<Value> = serde_json::from_slice(body).ok();
        let envelope = parsed
            .as_ref()
            .and_then(|v| v.get("error"))
            .and_then(Value::as_object);
        let Some(error) = envelope else {
            return Self {
                status,
                code: UNEXPECTED_RESPONSE.to_owned(),
                message: format!(
                    "HTTP {status} without the API error envelope: {}",
                    snippet(body)
                ),
                details: Map::new(),
                rejection: None,
            };
        };
        let text = |key: &str| error.get(key).and_then(Value::as_str).map(str::to_owned);
        let rejection = parsed
            .as_ref()
            .and_then(|v| v.get("rejection"))
            .filter(|r| r.is_object())
            .and_then(|r| AdmissionRejection::from_value(r).ok());
        Self {
            status,
            code: text("code").unwrap_or_else(|| UNEXPECTED_RESPONSE.to_owned()),
            message: text("message").unwrap_or_default(),
            details: error
                .get("details")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
            rejection,
        }
    }

    /// The [`RuntimeError`] a local client would have returned for the same outcome: the
    /// node's refusal, an unknown execution ref, an execution that already ended, a target's
    /// cancel failure, or
    /// [`RuntimeError::Remote`] with the status and code.
    pub fn into_runtime_error(self, execution_ref: Option<&str>) -> RuntimeError {
        if let Some(rejection) = self.rejection {
            return RuntimeError::Rejected(rejection);
        }
        match self.code.as_str() {
            "unknown_execution_ref" => RuntimeError::UnknownExecutionRef(
                execution_ref
                    .map(str::to_owned)
                    .or_else(|| detail(&self.details, "execution_ref"))
                    .unwrap_or_default(),
            ),
            "execution_ended" => RuntimeError::ExecutionEnded(
                execution_ref
                    .map(str::to_owned)
                    .or_else(|| detail(&self.details, "execution_ref"))
                    .unwrap_or_default(),
            ),
            "input_not_accepted" => {
                RuntimeError::InputNotAccepted(execution_ref.map(str::to_owned).unwrap_or_default())
            }
            "input_busy" => {
                RuntimeError::InputBusy(execution_ref.map(str::to_owned).unwrap_or_default())
            }
            "target_error" => RuntimeError::Target(target_error(&self.message, &self.details)),
            _ => RuntimeError::Remote {
                status: self.status,
                code: self.code,
                message: self.message,
            },
        }
    }
}

/// The target's own error inside a `target_error` answer: from `details.target_id` and
/// `details.target_message` when the server gives them, else read back from the message
/// (`[the target failed to cancel: ]target <id>: <why>`), so a caller sees the same
/// [`TargetError`] as through the in-process client.
fn target_error(message: &str, details: &Map) -> TargetError {
    if let (Some(target_id), Some(message)) = (
        detail(details, "target_id"),
        detail(details, "target_message"),
    ) {
        return TargetError::Unavailable { target_id, message };
    }
    let text = message
        .strip_prefix("the target failed to cancel: ")
        .unwrap_or(message);
    match text
        .strip_prefix("target ")
        .and_then(|rest| rest.split_once(": "))
    {
        Some((target_id, why)) if !target_id.is_empty() && !target_id.contains(' ') => {
            TargetError::Unavailable {
                target_id: target_id.to_owned(),
                message: why.to_owned(),
            }
        }
        _ => TargetError::Unavailable {
            target_id: detail(details, "target_id").unwrap_or_else(|| "remote".to_owned()),
            message: text.to_owned(),
        },
    }
}

fn detail(details: &Map, key: &str) -> Option<String> {
    details.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// The first bytes of a body, for messages (never the whole of a large body).
pub(crate) fn snippet(body: &[u8]) -> String {
    const MAX: usize = 200;
    let text = String::from_utf8_lossy(&body[..body.len().min(MAX)]);
    if body.len() > MAX {
        format!("{text:?}…")
    } else {
        format!("{text:?}")
    }
}

/// A call that did not produce an answer to read.
#[derive(Debug, Clone, Error)]
pub enum CallError {
    /// No connection could be made.
    #[error("cannot reach {url}: {reason}")]
    Connect {
        /// Where.
        url: String,
        /// Why.
        reason: String,
    },
    /// The connection broke before the whole answer arrived.
    #[error("connection to {url} closed before the answer was complete: {reason}")]
    Disconnected {
        /// Where.
        url: String,
        /// Why.
        reason: String,
    },
    /// The configured request timeout passed.
    #[error("no answer from {url} within {millis} ms")]
    Timeout {
        /// Where.
        url: String,
        /// The timeout.
        millis: u128,
    },
    /// The answer was larger than the client accepts.
    #[error("answer from {url} exceeds {limit} bytes")]
    TooLarge {
        /// Where.
        url: String,
        /// The limit.
        limit: usize,
    },
}

/// An operator (or any non-trait) call failed.
#[derive(Debug, Error)]
pub enum RemoteError {
    /// The server answered with an error.
    #[error("{0}")]
    Api(ApiError),
    /// No usable answer arrived.
    #[error("{0}")]
    Call(#[from] CallError),
    /// A success answer was not the documented body.
    #[error("{url}: answer is not {expected}: {reason}")]
    Decode {
        /// Where.
        url: String,
        /// What was expected.
        expected: &'static str,
        /// Why it did not parse.
        reason: String,
    },
}

impl From<RemoteError> for RuntimeError {
    fn from(error: RemoteError) -> Self {
        match error {
            RemoteError::Api(api) => api.into_runtime_error(None),
            other => RuntimeError::Transport(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;
    use serde_json::json;

    fn envelope(value: Value) -> Vec<u8> {
        value.to_string().into_bytes()
    }

    #[test]
    fn a_refusal_maps_to_rejected_with_the_nodes_rejection() {
        let body = envelope(json!({
            "error": {"code": "authority_ref_missing", "message": "m", "details": {}},
            "rejection": {"contract_version": 1, "request_id": "r-1",
                          "reason": "authority_ref_missing", "message": "m", "details": {}}
        }));
        let error = ApiError::from_response(401, &body);
        assert_eq!(error.code, "authority_ref_missing");
        let RuntimeError::Rejected(rejection) = error.into_runtime_error(None) else {
            panic!("expected a rejection");
        };
        assert_eq!(rejection.reason, "authority_ref_missing");
        assert_eq!(rejection.request_id.as_deref(), Some("r-1"));
    }

    #[test]
    fn unknown_execution_ref_names_the_ref_asked_for() {
        let body = envelope(json!({"error": {"code": "unknown_execution_ref", "message": "x"}}));
        let error = ApiError::from_response(404, &body).into_runtime_error(Some("exec-0-0"));
        assert!(matches!(&error, RuntimeError::UnknownExecutionRef(r) if r == "exec-0-0"));
        assert_eq!(error.to_string(), "unknown_execution_ref: exec-0-0");
    }

    fn target(body: Value) -> (String, String) {
        let error = ApiError::from_response(502, &envelope(body)).into_runtime_error(None);
        let RuntimeError::Target(TargetError::Unavailable { target_id, message }) = error else {
            panic!("expected a target error");
        };
        (target_id, message)
    }

    #[test]
    fn target_error_maps_to_the_targets_own_error() {
        let from_message = target(json!({"error": {"code": "target_error",
            "message": "the target failed to cancel: target target-1: connection refused"}}));
        assert_eq!(
            from_message,
            ("target-1".into(), "connection refused".into())
        );
        let from_details = target(json!({"error": {"code": "target_error", "message": "x",
            "details": {"target_id": "t-2", "target_message": "reset"}}}));
        assert_eq!(from_details, ("t-2".into(), "reset".into()));
        let opaque = target(json!({"error": {"code": "target_error", "message": "it broke"}}));
        assert_eq!(opaque, ("remote".into(), "it broke".into()));
    }

    #[test]
    fn other_api_codes_keep_status_and_code() {
        let body = envelope(json!({"error": {"code": "shutting_down", "message": "draining"}}));
        let error = ApiError::from_response(503, &body).into_runtime_error(None);
        assert!(matches!(
            &error,
            RuntimeError::Remote { status: 503, code, message } if code == "shutting_down" && message == "draining"
        ));
        assert_eq!(error.to_string(), "remote 503 shutting_down: draining");
    }

    #[test]
    fn a_body_without_the_envelope_is_an_unexpected_response() {
        let error = ApiError::from_response(502, b"<html>bad gateway</html>");
        assert_eq!(error.code, UNEXPECTED_RESPONSE);
        assert!(error.message.contains("HTTP 502"), "{}", error.message);
        assert!(error.message.contains("bad gateway"), "{}", error.message);
        let error = ApiError::from_response(500, &[b'x'; 1000]);
        assert!(error.message.len() < 300);
    }

    #[test]
    fn a_malformed_rejection_is_ignored_not_fatal() {
        let body = envelope(
            json!({"error": {"code": "lane_not_registered", "message": "m"},
                                   "rejection": {"reason": 7}}),
        );
        let error = ApiError::from_response(404, &body);
        assert!(error.rejection.is_none());
        assert!(matches!(
            error.into_runtime_error(None),
            RuntimeError::Remote { status: 404, .. }
        ));
    }
}
