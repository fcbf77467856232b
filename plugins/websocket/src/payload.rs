//! The payload of a `websocket` stream, checked before any I/O.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use execution_plane_sdk::{Rejection, Request, Value};

/// Most frames a payload may carry.
pub const MAX_FRAMES: usize = 1024;

/// One outbound message of the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Text(String),
    Binary(Vec<u8>),
}

/// What one stream does.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub subprotocols: Vec<String>,
    pub frames: Vec<Frame>,
    pub receive_timeout_ms: Option<u64>,
    pub max_messages: Option<u64>,
}

fn invalid(field: &str, problem: impl std::fmt::Display) -> Rejection {
    Rejection::invalid_request(format!("payload.{field} {problem}")).with_detail("field", field)
}

fn positive(value: Option<&Value>, field: &str) -> Result<Option<u64>, Rejection> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value
            .as_u64()
            .filter(|n| *n > 0)
            .map(Some)
            .ok_or_else(|| invalid(field, "must be a positive integer")),
    }
}

impl Plan {
    /// The plan of `req`, or why its payload is refused.
    pub fn from_request(req: &Request) -> Result<Self, Rejection> {
        let payload = &req.payload;
        let url = req.payload_str("url")?;
        if !(url.starts_with("ws://") || url.starts_with("wss://")) {
            return Err(invalid("url", "must be a ws:// or wss:// URL"));
        }
        let headers = match payload.get("headers") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Object(map)) => map
                .iter()
                .map(|(name, value)| match value {
                    Value::String(value) => Ok((name.clone(), value.clone())),
                    _ => Err(invalid(
                        "headers",
                        format!("value of {name:?} must be a string"),
                    )),
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(invalid("headers", "must be an object of strings")),
        };
        let subprotocols = match payload.get("subprotocols") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| {
                    item.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| invalid("subprotocols", "must be a list of strings"))
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(invalid("subprotocols", "must be a list of strings")),
        };
        let frames = match payload.get("frames") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) if items.len() <= MAX_FRAMES => items
                .iter()
                .enumerate()
                .map(|(index, item)| frame(index, item))
                .collect::<Result<_, _>>()?,
            Some(Value::Array(_)) => {
                return Err(invalid(
                    "frames",
                    format!("holds more than {MAX_FRAMES} frames"),
                ));
            }
            Some(_) => return Err(invalid("frames", "must be a list")),
        };
        Ok(Self {
            url: url.to_owned(),
            headers,
            subprotocols,
            frames,
            receive_timeout_ms: positive(payload.get("receive_timeout_ms"), "receive_timeout_ms")?,
            max_messages: positive(payload.get("max_messages"), "max_messages")?,
        })
    }
}

fn frame(index: usize, item: &Value) -> Result<Frame, Rejection> {
    let field = format!("frames[{index}]");
    match (item.get("text"), item.get("binary_base64")) {
        (Some(Value::String(text)), None) => Ok(Frame::Text(text.clone())),
        (None, Some(Value::String(encoded))) => STANDARD
            .decode(encoded)
            .map(Frame::Binary)
            .map_err(|error| invalid(&field, format!("binary_base64 is not base64: {error}"))),
        _ => Err(invalid(
            &field,
            "must be {\"text\": \"...\"} or {\"binary_base64\": \"...\"}",
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use execution_plane_sdk::json;

    use super::*;

    fn plan(payload: Value) -> Result<Plan, Rejection> {
        Plan::from_request(&Request::new(payload))
    }

    #[test]
    fn frames_keep_their_order_and_kind() {
        let p = plan(
            json!({"url": "ws://h/echo", "frames": [{"text": "a"}, {"binary_base64": "AAE="}]}),
        )
        .unwrap();
        assert_eq!(
            p.frames,
            [Frame::Text("a".into()), Frame::Binary(vec![0, 1])]
        );
    }

    #[test]
    fn bad_fields_are_refused_naming_the_field() {
        for (payload, field) in [
            (json!({}), "url"),
            (json!({"url": "http://h/"}), "url"),
            (json!({"url": "ws://h/", "headers": {"a": 1}}), "headers"),
            (
                json!({"url": "ws://h/", "subprotocols": "chat"}),
                "subprotocols",
            ),
            (
                json!({"url": "ws://h/", "frames": [{"text": 1}]}),
                "frames[0]",
            ),
            (
                json!({"url": "ws://h/", "frames": [{"binary_base64": "%%"}]}),
                "frames[0]",
            ),
            (
                json!({"url": "ws://h/", "frames": [{"text": "a", "binary_base64": "AA=="}]}),
                "frames[0]",
            ),
            (
                json!({"url": "ws://h/", "receive_timeout_ms": 0}),
                "receive_timeout_ms",
            ),
        ] {
            let refused = plan(payload.clone()).unwrap_err();
            assert_eq!(refused.details["field"], field, "{payload}");
        }
    }
}
