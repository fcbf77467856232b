//! Replies to the peer's requests, with upstream's table that turns every way a handler can fail
//! into a well-formed JSON-RPC error object, so the peer always gets an answer it can parse.

use serde_json::{Map, Value};

use super::message::VERSION;

/// JSON-RPC's "server error" code, used for every handler failure without a code of its own.
pub const SERVER_ERROR: i64 = -32000;

/// JSON-RPC's "method not found" code, used for peer requests the lane does not handle.
pub const METHOD_NOT_FOUND: i64 = -32601;

/// How a lane answers one peer request.
#[derive(Debug, Clone, PartialEq)]
pub enum PeerReply {
    /// The request succeeded with this result.
    Result(Value),
    /// The request failed; see [`ReplyError`] for the error object each case becomes.
    Error(ReplyError),
}

/// Why a peer request failed, in upstream's shapes; [`ReplyError::to_error_object`] gives the
/// error object each one becomes.
#[derive(Debug, Clone, PartialEq)]
pub enum ReplyError {
    /// A complete error object. Used as is (only `code`, `message` and `data` are kept) when
    /// `code` is an integer and `message` a string; a bare string becomes
    /// [`ReplyError::Message`]; anything else becomes `-32000` with its JSON text as message.
    Object(Value),
    /// An error code and message, without data.
    Code {
        /// The JSON-RPC error code.
        code: i64,
        /// A short description for the peer.
        message: String,
    },
    /// An error code, message and data.
    CodeData {
        /// The JSON-RPC error code.
        code: i64,
        /// A short description for the peer.
        message: String,
        /// Details for the peer.
        data: Value,
    },
    /// The handler ran out of time: `-32000 "peer request handler timed out"`.
    Timeout,
    /// The handler stopped without answering: `-32000 "peer request handler exited"` with the
    /// reason as `data` (left out when `null`).
    HandlerExit(Value),
    /// The handler could not be started: `-32000 "peer request handler failed to start"` with
    /// the reason as `data` (left out when `null`).
    HandlerStartFailed(Value),
    /// The lane does not handle this method: `-32601 "unsupported peer request"`.
    Unsupported,
    /// Any other failure, in words: `-32000` with this message.
    Message(String),
}

impl ReplyError {
    /// The JSON-RPC error object (`code`, `message`, optional `data`) the peer receives.
    #[must_use]
    pub fn to_error_object(&self) -> Value {
        match self {
            Self::Object(object) => from_object(object),
            Self::Code { code, message } => error_object(*code, message, None),
            Self::CodeData {
                code,
                message,
                data,
            } => error_object(*code, message, Some(data)),
            Self::Timeout => error_object(SERVER_ERROR, "peer request handler timed out", None),
            Self::HandlerExit(data) => {
                error_object(SERVER_ERROR, "peer request handler exited", non_null(data))
            }
            Self::HandlerStartFailed(data) => error_object(
                SERVER_ERROR,
                "peer request handler failed to start",
                non_null(data),
            ),
            Self::Unsupported => error_object(METHOD_NOT_FOUND, "unsupported peer request", None),
            Self::Message(message) => error_object(SERVER_ERROR, message, None),
        }
    }
}

/// The reply message to the peer request `id`, with `"jsonrpc": "2.0"`; frame it with
/// [`encode_frame`](super::encode_frame).
#[must_use]
pub fn peer_reply(id: &Value, reply: PeerReply) -> Value {
    let mut message = Map::new();
    message.insert("jsonrpc".to_owned(), Value::from(VERSION));
    message.insert("id".to_owned(), id.clone());
    match reply {
        PeerReply::Result(result) => message.insert("result".to_owned(), result),
        PeerReply::Error(error) => message.insert("error".to_owned(), error.to_error_object()),
    };
    Value::Object(message)
}

/// [`ReplyError::Object`]'s rules.
fn from_object(value: &Value) -> Value {
    if let Value::String(message) = value {
        return error_object(SERVER_ERROR, message, None);
    }
    let code = value.get("code").and_then(Value::as_i64);
    let message = value.get("message").and_then(Value::as_str);
    match (code, message) {
        (Some(code), Some(message)) => error_object(code, message, value.get("data")),
        _ => error_object(SERVER_ERROR, &value.to_string(), None),
    }
}

/// `data` unless it is `null`, for the handler cases whose reason may be absent.
fn non_null(data: &Value) -> Option<&Value> {
    (!data.is_null()).then_some(data)
}

/// A JSON-RPC error object.
fn error_object(code: i64, message: &str, data: Option<&Value>) -> Value {
    let mut object = Map::new();
    object.insert("code".to_owned(), Value::from(code));
    object.insert("message".to_owned(), Value::from(message));
    if let Some(data) = data {
        object.insert("data".to_owned(), data.clone());
    }
    Value::Object(object)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn error(reply: ReplyError) -> Value {
        peer_reply(&json!(9), PeerReply::Error(reply))
    }

    #[test]
    fn result_reply_carries_id_result_and_version() {
        assert_eq!(
            peer_reply(&json!("p1"), PeerReply::Result(json!({"ok": true}))),
            json!({"jsonrpc": "2.0", "id": "p1", "result": {"ok": true}})
        );
        assert_eq!(
            peer_reply(&json!(1), PeerReply::Result(Value::Null)),
            json!({"jsonrpc": "2.0", "id": 1, "result": null})
        );
    }

    #[test]
    fn full_error_object_is_used_as_is_with_data() {
        assert_eq!(
            error(ReplyError::Object(
                json!({"code": 4, "message": "m", "data": [1]})
            )),
            json!({"jsonrpc": "2.0", "id": 9, "error": {"code": 4, "message": "m", "data": [1]}})
        );
        assert_eq!(
            ReplyError::Object(json!({"code": -32602, "message": "bad", "extra": 1}))
                .to_error_object(),
            json!({"code": -32602, "message": "bad"})
        );
    }

    #[test]
    fn malformed_error_object_becomes_a_server_error_with_its_text() {
        for object in [
            json!({"code": "4", "message": "m"}),
            json!({"code": 4.5, "message": "m"}),
            json!({"code": 4}),
            json!([1]),
        ] {
            assert_eq!(
                ReplyError::Object(object.clone()).to_error_object(),
                json!({"code": -32000, "message": object.to_string()})
            );
        }
        assert_eq!(
            ReplyError::Object(json!("went wrong")).to_error_object(),
            json!({"code": -32000, "message": "went wrong"})
        );
    }

    #[test]
    fn code_and_message_with_and_without_data() {
        assert_eq!(
            ReplyError::Code {
                code: 12,
                message: "m".into()
            }
            .to_error_object(),
            json!({"code": 12, "message": "m"})
        );
        assert_eq!(
            ReplyError::CodeData {
                code: 12,
                message: "m".into(),
                data: json!({"k": 1})
            }
            .to_error_object(),
            json!({"code": 12, "message": "m", "data": {"k": 1}})
        );
    }

    #[test]
    fn handler_failures_map_to_the_upstream_table() {
        assert_eq!(
            ReplyError::Timeout.to_error_object(),
            json!({"code": -32000, "message": "peer request handler timed out"})
        );
        assert_eq!(
            ReplyError::HandlerExit(json!("killed")).to_error_object(),
            json!({"code": -32000, "message": "peer request handler exited", "data": "killed"})
        );
        assert_eq!(
            ReplyError::HandlerStartFailed(json!({"errno": 2})).to_error_object(),
            json!({
                "code": -32000,
                "message": "peer request handler failed to start",
                "data": {"errno": 2}
            })
        );
        assert_eq!(
            ReplyError::Unsupported.to_error_object(),
            json!({"code": -32601, "message": "unsupported peer request"})
        );
        assert_eq!(
            ReplyError::Message("disk full".into()).to_error_object(),
            json!({"code": -32000, "message": "disk full"})
        );
    }

    #[test]
    fn null_handler_reason_leaves_data_out() {
        assert_eq!(
            ReplyError::HandlerExit(Value::Null).to_error_object(),
            json!({"code": -32000, "message": "peer request handler exited"})
        );
        assert_eq!(
            ReplyError::HandlerStartFailed(Value::Null).to_error_object(),
            json!({"code": -32000, "message": "peer request handler failed to start"})
        );
    }
}
