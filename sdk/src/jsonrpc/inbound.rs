//! Inbound messages: one decoded frame from the peer becomes exactly one [`Inbound`], by
//! upstream's rules, so a lane matches on what the peer meant instead of probing members.

use std::fmt;

use serde_json::{Map, Value};

use super::message::kind;

/// What one message from the peer is, decided by which members it has.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    /// The reply to one of our requests: `Ok(result)` (even `null`) or `Err(error object)`.
    Response {
        /// The id the peer echoed; compare it with the ids you sent.
        id: Value,
        /// The `result` member, or the `error` member as the peer sent it.
        result: Result<Value, Value>,
    },
    /// The peer asks us something and waits: answer with [`peer_reply`](super::peer_reply).
    PeerRequest {
        /// The id to echo in the reply.
        id: Value,
        /// The whole message, `method` and `params` included.
        message: Value,
    },
    /// The peer tells us something and expects no reply.
    Notification(Value),
    /// An object that is none of the above (say, an `id` alone): upstream drops it silently,
    /// here it is handed back so a lane can log it.
    Ignored(Value),
    /// The frame is not a JSON-RPC message at all.
    ProtocolError(ProtocolError),
}

/// Why a frame from the peer is not a JSON-RPC message, or does not fit the conversation.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The frame is not valid JSON.
    InvalidJson {
        /// The parser's description of the problem.
        message: String,
    },
    /// The frame is JSON but not an object (nor an array, see [`ProtocolError::Batch`]).
    NotAnObject {
        /// The value as sent.
        value: Value,
    },
    /// The frame is a JSON array, a JSON-RPC batch; batches are not supported.
    Batch {
        /// The array as sent.
        value: Value,
    },
    /// A response whose id matches no outstanding request (only
    /// [`Session`](super::Session) tracks outstanding ids, so only it reports this).
    UnexpectedResponse {
        /// The id the peer sent.
        id: Value,
    },
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidJson { message } => write!(
                f,
                "the peer sent a frame that is not valid JSON ({message}); check that the peer \
                 speaks JSON-RPC with the framing the lane is configured for"
            ),
            Self::NotAnObject { value } => write!(
                f,
                "the peer sent JSON that is {}, not a JSON-RPC message object; check that the \
                 peer speaks JSON-RPC",
                kind(value)
            ),
            Self::Batch { value } => write!(
                f,
                "the peer sent a JSON-RPC batch of {} messages; batches are not supported, ask \
                 the peer to send one message per frame",
                value.as_array().map_or(0, Vec::len)
            ),
            Self::UnexpectedResponse { id } => write!(
                f,
                "the peer sent a response with id {id}, which matches no outstanding request; \
                 the peer is out of step with this lane, so restart the conversation"
            ),
        }
    }
}

impl std::error::Error for ProtocolError {}

/// Classifies one frame's bytes (one NDJSON line or one Content-Length body).
#[must_use]
pub fn classify(bytes: &[u8]) -> Inbound {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(value) => classify_value(value),
        Err(error) => Inbound::ProtocolError(ProtocolError::InvalidJson {
            message: error.to_string(),
        }),
    }
}

/// Classifies an already parsed message, by upstream's rules in order: `id` and `method` →
/// peer request; `id` and `result` → response ok (`result` wins if `error` is also there);
/// `id` and `error` → response error; `method` → notification; any other object → ignored.
/// Members are tested for presence, so `"id": null` counts as an id.
#[must_use]
pub fn classify_value(value: Value) -> Inbound {
    match value {
        Value::Object(object) => classify_object(object),
        value @ Value::Array(_) => Inbound::ProtocolError(ProtocolError::Batch { value }),
        value => Inbound::ProtocolError(ProtocolError::NotAnObject { value }),
    }
}

/// The member rules of [`classify_value`].
fn classify_object(mut object: Map<String, Value>) -> Inbound {
    let Some(id) = object.get("id").cloned() else {
        return if object.contains_key("method") {
            Inbound::Notification(Value::Object(object))
        } else {
            Inbound::Ignored(Value::Object(object))
        };
    };
    if object.contains_key("method") {
        return Inbound::PeerRequest {
            id,
            message: Value::Object(object),
        };
    }
    if let Some(result) = object.remove("result") {
        return Inbound::Response {
            id,
            result: Ok(result),
        };
    }
    if let Some(error) = object.remove("error") {
        return Inbound::Response {
            id,
            result: Err(error),
        };
    }
    Inbound::Ignored(Value::Object(object))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn of(text: &str) -> Inbound {
        classify(text.as_bytes())
    }

    #[test]
    fn id_and_method_is_a_peer_request() {
        let text = r#"{"jsonrpc":"2.0","id":"p1","method":"fs/read","params":{"path":"a"}}"#;
        assert_eq!(
            of(text),
            Inbound::PeerRequest {
                id: json!("p1"),
                message: serde_json::from_str(text).unwrap()
            }
        );
    }

    #[test]
    fn id_and_result_is_an_ok_response_even_when_null() {
        assert_eq!(
            of(r#"{"jsonrpc":"2.0","id":1,"result":{"x":1}}"#),
            Inbound::Response {
                id: json!(1),
                result: Ok(json!({"x": 1}))
            }
        );
        assert_eq!(
            of(r#"{"id":1,"result":null}"#),
            Inbound::Response {
                id: json!(1),
                result: Ok(Value::Null)
            }
        );
    }

    #[test]
    fn id_and_error_is_an_error_response() {
        assert_eq!(
            of(r#"{"id":"a","error":{"code":-32601,"message":"nope"}}"#),
            Inbound::Response {
                id: json!("a"),
                result: Err(json!({"code": -32601, "message": "nope"}))
            }
        );
    }

    #[test]
    fn result_wins_over_error_when_both_are_present() {
        assert_eq!(
            of(r#"{"id":1,"result":2,"error":{"code":1,"message":"m"}}"#),
            Inbound::Response {
                id: json!(1),
                result: Ok(json!(2))
            }
        );
    }

    #[test]
    fn null_id_still_counts_as_an_id() {
        assert!(matches!(
            of(r#"{"id":null,"error":{"code":-32700,"message":"parse"}}"#),
            Inbound::Response {
                id: Value::Null,
                result: Err(_)
            }
        ));
        assert!(matches!(
            of(r#"{"id":null,"method":"m"}"#),
            Inbound::PeerRequest { .. }
        ));
    }

    #[test]
    fn method_without_id_is_a_notification() {
        assert_eq!(
            of(r#"{"jsonrpc":"2.0","method":"progress","params":[1]}"#),
            Inbound::Notification(json!({"jsonrpc": "2.0", "method": "progress", "params": [1]}))
        );
    }

    #[test]
    fn other_objects_are_ignored_and_kept_whole() {
        assert_eq!(of(r#"{"id":3}"#), Inbound::Ignored(json!({"id": 3})));
        assert_eq!(
            of(r#"{"hello":"x"}"#),
            Inbound::Ignored(json!({"hello": "x"}))
        );
        assert_eq!(of("{}"), Inbound::Ignored(json!({})));
    }

    #[test]
    fn non_object_json_is_a_protocol_error() {
        for text in ["42", "\"hi\"", "null", "true"] {
            let Inbound::ProtocolError(error @ ProtocolError::NotAnObject { .. }) = of(text) else {
                panic!("{text} should be NotAnObject")
            };
            assert!(
                error.to_string().contains("not a JSON-RPC message object"),
                "{error}"
            );
        }
    }

    #[test]
    fn arrays_are_unsupported_batches() {
        let Inbound::ProtocolError(error) = of(r#"[{"id":1,"result":1},{"method":"m"}]"#) else {
            panic!("a batch should be a protocol error")
        };
        assert!(matches!(error, ProtocolError::Batch { .. }));
        assert!(
            error
                .to_string()
                .contains("batch of 2 messages; batches are not supported")
        );
    }

    #[test]
    fn invalid_json_is_a_protocol_error_with_the_parser_message() {
        for text in ["{\"id\":", "not json", "", "{} {}"] {
            let Inbound::ProtocolError(ProtocolError::InvalidJson { message }) = of(text) else {
                panic!("{text:?} should be InvalidJson")
            };
            assert!(!message.is_empty());
        }
        assert!(matches!(
            classify(b"\xff\xfe"),
            Inbound::ProtocolError(ProtocolError::InvalidJson { .. })
        ));
    }
}
