//! Outbound messages: what a lane asks for (a request object, a method name or a
//! `[method, params]` pair) becomes a JSON-RPC 2.0 request or notification object, with request
//! ids allocated so they never collide with the ids a lane picked itself.

use std::fmt;

use serde_json::{Map, Value};

/// The protocol version every message this module builds carries in its `jsonrpc` member.
pub const VERSION: &str = "2.0";

/// Why a request or notification could not be encoded; nothing was allocated or sent.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum EncodeError {
    /// The input is not an object with a string `method`, a method string or a
    /// `[method, params]` pair, or one of its members has the wrong type.
    InvalidRequest {
        /// What is wrong, in words.
        reason: String,
    },
    /// A notification was given a non-null `id`: it would be a request whose reply nobody waits
    /// for, so it is refused rather than silently stripped.
    NotificationWithId {
        /// The id as given.
        id: Value,
    },
    /// The next allocated id would pass `i64::MAX`.
    IdsExhausted,
    /// The request's id is already waiting for a response (only [`Session`](super::Session)
    /// tracks outstanding ids, so only it reports this).
    DuplicateId {
        /// The id as given.
        id: Value,
    },
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidRequest { reason } => write!(
                f,
                "invalid JSON-RPC request: {reason}; pass an object such as \
                 {{\"method\": \"name\", \"params\": [..]}}, a method name, or a \
                 [method, params] pair"
            ),
            Self::NotificationWithId { id } => write!(
                f,
                "a JSON-RPC notification cannot carry an id (got {id}); drop the id, or send \
                 it as a request to get a reply"
            ),
            Self::IdsExhausted => f.write_str(
                "the JSON-RPC request ids are used up (the next id would pass i64::MAX); give \
                 the request an explicit id or start a new codec",
            ),
            Self::DuplicateId { id } => write!(
                f,
                "JSON-RPC request id {id} is already waiting for a response; use another id or \
                 leave `id` out so one is allocated"
            ),
        }
    }
}

impl std::error::Error for EncodeError {}

/// Builds outbound messages and owns the request-id counter, so ids a lane does not choose are
/// unique within one connection.
///
/// Ids start at 0 (or [`Codec::with_first_id`]) and count up. A request that brings its own
/// integer id moves the counter past it, so later allocated ids never repeat it; string ids
/// leave the counter alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Codec {
    /// Wider than the ids, so "one past `i64::MAX`" is representable and reported, not wrapped.
    next_id: i128,
}

impl Codec {
    /// A codec whose first allocated id is 0, as upstream's default.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A codec whose first allocated id is `first`, for peers that reserve low ids.
    #[must_use]
    pub fn with_first_id(first: i64) -> Self {
        Self {
            next_id: i128::from(first),
        }
    }

    /// The id the next request without one will get, or `None` once ids are used up.
    #[must_use]
    pub fn next_id(&self) -> Option<i64> {
        i64::try_from(self.next_id).ok()
    }

    /// Encodes a request and returns `(id, message)`, so the caller can wait for the reply.
    ///
    /// Accepted forms: an object with a string `method` (every other member is kept), a bare
    /// method string, or a `[method, params]` pair. The id is the object's `id` (a string or a
    /// number; `null` or absent means "allocate one"). `params` is left out when it is `null` or
    /// `[]`, and must otherwise be an array or an object. `"jsonrpc": "2.0"` is added when
    /// absent (upstream omitted it; JSON-RPC 2.0 requires it) and any other version is refused.
    pub fn encode_request(&mut self, request: &Value) -> Result<(Value, Value), EncodeError> {
        let mut message = normalize(request)?;
        let id = match message.remove("id") {
            None | Some(Value::Null) => {
                Value::from(self.next_id().ok_or(EncodeError::IdsExhausted)?)
            }
            Some(id @ (Value::String(_) | Value::Number(_))) => id,
            Some(other) => {
                return Err(invalid(format!(
                    "`id` must be a string or a number, not {}",
                    kind(&other)
                )));
            }
        };
        let integer = id
            .as_i64()
            .map(i128::from)
            .or_else(|| id.as_u64().map(i128::from));
        if let Some(integer) = integer {
            self.next_id = self.next_id.max(integer + 1);
        }
        message.insert("id".to_owned(), id.clone());
        Ok((id, Value::Object(message)))
    }

    /// Encodes a notification (a message the peer never answers) from the same forms as
    /// [`Codec::encode_request`].
    ///
    /// An `id` of `null` is dropped; any other `id` is [`EncodeError::NotificationWithId`],
    /// because stripping it would leave the caller waiting for a reply that never comes.
    pub fn encode_notification(&self, request: &Value) -> Result<Value, EncodeError> {
        let mut message = normalize(request)?;
        match message.remove("id") {
            None | Some(Value::Null) => Ok(Value::Object(message)),
            Some(id) => Err(EncodeError::NotificationWithId { id }),
        }
    }
}

/// Encodes one request with a fresh codec (id 0 unless the request has one), for lanes that
/// send exactly one request per connection, like upstream's `encode_once`.
pub fn encode_once(request: &Value) -> Result<Value, EncodeError> {
    Codec::new()
        .encode_request(request)
        .map(|(_, message)| message)
}

/// The accepted input forms as one message object, checked, without the id rules applied.
fn normalize(request: &Value) -> Result<Map<String, Value>, EncodeError> {
    let mut message = match request {
        Value::Object(object) => object.clone(),
        Value::String(method) => {
            Map::from_iter([("method".to_owned(), Value::from(method.as_str()))])
        }
        Value::Array(pair) => match pair.as_slice() {
            [Value::String(method), params] => Map::from_iter([
                ("method".to_owned(), Value::from(method.as_str())),
                ("params".to_owned(), params.clone()),
            ]),
            _ => {
                return Err(invalid(
                    "an array must be a [method, params] pair with a string method",
                ));
            }
        },
        other => {
            return Err(invalid(format!(
                "expected an object, a method name or a [method, params] pair, not {}",
                kind(other)
            )));
        }
    };
    match message.get("method") {
        Some(Value::String(_)) => {}
        Some(other) => {
            return Err(invalid(format!(
                "`method` must be a string, not {}",
                kind(other)
            )));
        }
        None => return Err(invalid("the request has no `method`")),
    }
    match message.get("params") {
        Some(params) if params.is_null() || params.as_array().is_some_and(Vec::is_empty) => {
            message.remove("params");
        }
        None | Some(Value::Array(_) | Value::Object(_)) => {}
        Some(other) => {
            return Err(invalid(format!(
                "`params` must be an array or an object, not {}",
                kind(other)
            )));
        }
    }
    match message.get("jsonrpc") {
        None => {
            message.insert("jsonrpc".to_owned(), Value::from(VERSION));
        }
        Some(Value::String(version)) if version == VERSION => {}
        Some(other) => return Err(invalid(format!("`jsonrpc` must be \"2.0\", not {other}"))),
    }
    Ok(message)
}

/// The error for a malformed request.
fn invalid(reason: impl Into<String>) -> EncodeError {
    EncodeError::InvalidRequest {
        reason: reason.into(),
    }
}

/// The kind of a JSON value in words, for error messages that say what was found.
pub(super) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reason(error: EncodeError) -> String {
        match error {
            EncodeError::InvalidRequest { reason } => reason,
            other => panic!("expected InvalidRequest, got {other:?}"),
        }
    }

    #[test]
    fn object_request_keeps_its_members_and_gets_the_next_id_and_version() {
        let mut codec = Codec::new();
        let (id, message) = codec
            .encode_request(&json!({"method": "sum", "params": [1, 2], "meta": {"x": 1}}))
            .unwrap();
        assert_eq!(id, json!(0));
        assert_eq!(
            message,
            json!({"jsonrpc": "2.0", "id": 0, "method": "sum", "params": [1, 2], "meta": {"x": 1}})
        );
        assert_eq!(codec.next_id(), Some(1));
    }

    #[test]
    fn bare_method_string_and_pair_are_requests() {
        let mut codec = Codec::new();
        let (_, bare) = codec.encode_request(&json!("ping")).unwrap();
        assert_eq!(bare, json!({"jsonrpc": "2.0", "id": 0, "method": "ping"}));
        let (_, pair) = codec.encode_request(&json!(["sum", {"a": 1}])).unwrap();
        assert_eq!(
            pair,
            json!({"jsonrpc": "2.0", "id": 1, "method": "sum", "params": {"a": 1}})
        );
    }

    #[test]
    fn allocated_ids_count_up_from_the_first_id() {
        let mut codec = Codec::with_first_id(10);
        assert_eq!(codec.encode_request(&json!("a")).unwrap().0, json!(10));
        assert_eq!(codec.encode_request(&json!("b")).unwrap().0, json!(11));
    }

    #[test]
    fn explicit_integer_id_moves_the_counter_past_it_but_never_back() {
        let mut codec = Codec::new();
        let (id, _) = codec
            .encode_request(&json!({"method": "a", "id": 7}))
            .unwrap();
        assert_eq!(id, json!(7));
        assert_eq!(codec.next_id(), Some(8));
        codec
            .encode_request(&json!({"method": "b", "id": 3}))
            .unwrap();
        assert_eq!(codec.next_id(), Some(8));
        assert_eq!(codec.encode_request(&json!("c")).unwrap().0, json!(8));
    }

    #[test]
    fn string_and_fractional_ids_leave_the_counter_alone() {
        let mut codec = Codec::new();
        let (id, message) = codec
            .encode_request(&json!({"method": "a", "id": "attempt://1"}))
            .unwrap();
        assert_eq!(id, json!("attempt://1"));
        assert_eq!(message["id"], json!("attempt://1"));
        codec
            .encode_request(&json!({"method": "a", "id": 5.5}))
            .unwrap();
        assert_eq!(codec.next_id(), Some(0));
    }

    #[test]
    fn null_id_means_allocate_one() {
        let mut codec = Codec::new();
        let (id, _) = codec
            .encode_request(&json!({"method": "a", "id": null}))
            .unwrap();
        assert_eq!(id, json!(0));
    }

    #[test]
    fn ids_past_i64_max_are_reported_not_wrapped() {
        let mut codec = Codec::with_first_id(i64::MAX);
        assert_eq!(
            codec.encode_request(&json!("a")).unwrap().0,
            json!(i64::MAX)
        );
        assert_eq!(codec.next_id(), None);
        assert_eq!(
            codec.encode_request(&json!("b")),
            Err(EncodeError::IdsExhausted)
        );
        let (id, _) = codec
            .encode_request(&json!({"method": "c", "id": "s"}))
            .unwrap();
        assert_eq!(id, json!("s"));
    }

    #[test]
    fn null_and_empty_array_params_are_omitted_but_empty_object_is_kept() {
        let mut codec = Codec::new();
        for params in [json!(null), json!([])] {
            let (_, message) = codec
                .encode_request(&json!({"method": "a", "params": params}))
                .unwrap();
            assert!(message.get("params").is_none(), "{message}");
            let (_, pair) = codec.encode_request(&json!(["a", params])).unwrap();
            assert!(pair.get("params").is_none(), "{pair}");
        }
        let (_, message) = codec
            .encode_request(&json!({"method": "a", "params": {}}))
            .unwrap();
        assert_eq!(message["params"], json!({}));
    }

    #[test]
    fn existing_version_is_kept_and_another_version_is_refused() {
        let mut codec = Codec::new();
        let (_, message) = codec
            .encode_request(&json!({"method": "a", "jsonrpc": "2.0"}))
            .unwrap();
        assert_eq!(message["jsonrpc"], json!("2.0"));
        let error = codec
            .encode_request(&json!({"method": "a", "jsonrpc": "1.0"}))
            .unwrap_err();
        assert!(reason(error).contains("`jsonrpc` must be \"2.0\""));
    }

    #[test]
    fn malformed_requests_are_invalid_and_allocate_nothing() {
        let mut codec = Codec::new();
        for (request, expected) in [
            (json!({"params": []}), "no `method`"),
            (
                json!({"method": 1}),
                "`method` must be a string, not a number",
            ),
            (
                json!({"method": "a", "params": 3}),
                "`params` must be an array or an object",
            ),
            (
                json!({"method": "a", "id": [1]}),
                "`id` must be a string or a number, not an array",
            ),
            (json!(["a"]), "[method, params] pair"),
            (json!([1, []]), "[method, params] pair"),
            (json!(["a", [], 3]), "[method, params] pair"),
            (json!(42), "not a number"),
            (json!(null), "not null"),
        ] {
            let error = codec.encode_request(&request).unwrap_err();
            assert!(
                error.to_string().contains("pass an object such as"),
                "{error}"
            );
            let text = reason(error);
            assert!(text.contains(expected), "{request}: {text}");
        }
        assert_eq!(codec.next_id(), Some(0));
    }

    #[test]
    fn notifications_have_no_id_and_the_version() {
        let codec = Codec::new();
        assert_eq!(
            codec.encode_notification(&json!(["log", ["hi"]])).unwrap(),
            json!({"jsonrpc": "2.0", "method": "log", "params": ["hi"]})
        );
        assert_eq!(
            codec
                .encode_notification(&json!({"method": "log", "id": null}))
                .unwrap(),
            json!({"jsonrpc": "2.0", "method": "log"})
        );
        assert_eq!(
            codec.encode_notification(&json!("exit")).unwrap(),
            json!({"jsonrpc": "2.0", "method": "exit"})
        );
    }

    #[test]
    fn notification_with_an_id_is_refused() {
        let error = Codec::new()
            .encode_notification(&json!({"method": "log", "id": 1}))
            .unwrap_err();
        assert_eq!(error, EncodeError::NotificationWithId { id: json!(1) });
        assert!(error.to_string().contains("cannot carry an id (got 1)"));
        assert!(Codec::new().encode_notification(&json!(7)).is_err());
    }

    #[test]
    fn encode_once_uses_a_fresh_codec() {
        assert_eq!(
            encode_once(&json!({"method": "session.start"})).unwrap(),
            json!({"jsonrpc": "2.0", "id": 0, "method": "session.start"})
        );
        assert!(encode_once(&json!({"params": {}})).is_err());
    }
}
