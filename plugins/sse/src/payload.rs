//! The payload of an `sse` stream, checked before any I/O: `url` (an absolute `http`/`https`
//! URL), `headers` (an object of strings; `accept`, `last-event-id` and `cache-control` are the
//! lane's), `last_event_id` (a string without NUL, CR or LF), `reconnect` (`false` (default),
//! `true` (3 attempts) or `{"attempts": 0..=100}`), `receive_timeout_ms` (1..=3 600 000, default
//! 30 000) and `max_events` (a positive count; the stream ends with success after it).

use execution_plane_sdk::http::Url;
use execution_plane_sdk::{Rejection, Request, Value};

/// Reconnects a `reconnect: true` stream gets.
pub const DEFAULT_RECONNECTS: u32 = 3;
/// Most reconnects a stream may ask for.
pub const MAX_RECONNECTS: u32 = 100;
/// The default longest wait for the next chunk of the stream.
pub const DEFAULT_RECEIVE_TIMEOUT_MS: u64 = 30_000;
/// The longest `receive_timeout_ms` accepted: one hour.
pub const MAX_RECEIVE_TIMEOUT_MS: u64 = 3_600_000;
/// Headers the lane sets itself.
const OWN_HEADERS: [&str; 3] = ["accept", "last-event-id", "cache-control"];

/// What one stream does.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub url: Url,
    pub headers: Vec<(String, String)>,
    pub last_event_id: String,
    pub reconnects: u32,
    pub receive_timeout_ms: u64,
    pub max_events: Option<u64>,
}

fn invalid(field: &str, problem: impl std::fmt::Display) -> Rejection {
    Rejection::invalid_request(format!("payload.{field} {problem}")).with_detail("field", field)
}

impl Plan {
    /// The plan of `req`, or why its payload is refused.
    pub fn from_request(req: &Request) -> Result<Self, Rejection> {
        let payload = &req.payload;
        let url_text = req.payload_str("url")?;
        let url = Url::parse(url_text).map_err(|error| invalid("url", error))?;
        let headers = headers(payload.get("headers"))?;
        let last_event_id = match payload.get("last_event_id") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(id)) if !id.contains(['\0', '\r', '\n']) => id.clone(),
            Some(_) => {
                return Err(invalid(
                    "last_event_id",
                    "must be a string without NUL, CR or LF",
                ));
            }
        };
        let reconnects = match payload.get("reconnect") {
            None | Some(Value::Null) | Some(Value::Bool(false)) => 0,
            Some(Value::Bool(true)) => DEFAULT_RECONNECTS,
            Some(Value::Object(options)) => match options.get("attempts") {
                None => DEFAULT_RECONNECTS,
                Some(value) => value
                    .as_u64()
                    .filter(|n| *n <= u64::from(MAX_RECONNECTS))
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| {
                        invalid(
                            "reconnect.attempts",
                            format!("must be an integer from 0 to {MAX_RECONNECTS}"),
                        )
                    })?,
            },
            Some(_) => {
                return Err(invalid(
                    "reconnect",
                    "must be true, false or {\"attempts\": n}",
                ));
            }
        };
        let receive_timeout_ms = match payload.get("receive_timeout_ms") {
            None | Some(Value::Null) => DEFAULT_RECEIVE_TIMEOUT_MS,
            Some(value) => value
                .as_u64()
                .filter(|ms| (1..=MAX_RECEIVE_TIMEOUT_MS).contains(ms))
                .ok_or_else(|| {
                    invalid(
                        "receive_timeout_ms",
                        format!("must be an integer from 1 to {MAX_RECEIVE_TIMEOUT_MS}"),
                    )
                })?,
        };
        let max_events = match payload.get("max_events") {
            None | Some(Value::Null) => None,
            Some(value) => Some(
                value
                    .as_u64()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| invalid("max_events", "must be a positive integer"))?,
            ),
        };
        Ok(Self {
            url,
            headers,
            last_event_id,
            reconnects,
            receive_timeout_ms,
            max_events,
        })
    }
}

/// `headers`: an object of string values, none of the lane's own.
fn headers(value: Option<&Value>) -> Result<Vec<(String, String)>, Rejection> {
    let map = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Object(map)) => map,
        Some(_) => return Err(invalid("headers", "must be an object of strings")),
    };
    let mut headers = Vec::with_capacity(map.len());
    for (name, value) in map {
        let Value::String(value) = value else {
            return Err(invalid(
                "headers",
                format!("value of {name:?} must be a string"),
            ));
        };
        if OWN_HEADERS.iter().any(|own| own.eq_ignore_ascii_case(name)) {
            return Err(invalid(
                "headers",
                format!("may not set {name:?}: the lane sets it (use last_event_id)"),
            ));
        }
        headers.push((name.clone(), value.clone()));
    }
    Ok(headers)
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
    fn defaults_fill_what_the_payload_leaves_out() {
        let p = plan(json!({"url": "http://127.0.0.1:8080/events"})).unwrap();
        assert_eq!(p.url.to_string(), "http://127.0.0.1:8080/events");
        assert!(p.headers.is_empty() && p.last_event_id.is_empty());
        assert_eq!(p.reconnects, 0);
        assert_eq!(p.receive_timeout_ms, DEFAULT_RECEIVE_TIMEOUT_MS);
        assert_eq!(p.max_events, None);
    }

    #[test]
    fn reconnect_takes_a_flag_or_a_count() {
        let base = |reconnect: Value| plan(json!({"url": "http://h/", "reconnect": reconnect}));
        assert_eq!(base(json!(true)).unwrap().reconnects, DEFAULT_RECONNECTS);
        assert_eq!(base(json!(false)).unwrap().reconnects, 0);
        assert_eq!(base(json!({"attempts": 7})).unwrap().reconnects, 7);
        assert!(base(json!({"attempts": 101})).is_err());
        assert!(base(json!("yes")).is_err());
    }

    #[test]
    fn bad_fields_are_refused_naming_the_field() {
        for (payload, field) in [
            (json!({}), "url"),
            (json!({"url": "ftp://h/"}), "url"),
            (json!({"url": "http://h/", "headers": ["a"]}), "headers"),
            (
                json!({"url": "http://h/", "headers": {"Accept": "x"}}),
                "headers",
            ),
            (json!({"url": "http://h/", "headers": {"x": 1}}), "headers"),
            (
                json!({"url": "http://h/", "last_event_id": "a\nb"}),
                "last_event_id",
            ),
            (
                json!({"url": "http://h/", "receive_timeout_ms": 0}),
                "receive_timeout_ms",
            ),
            (json!({"url": "http://h/", "max_events": 0}), "max_events"),
        ] {
            let rejection = plan(payload.clone()).unwrap_err();
            assert_eq!(rejection.reason, "invalid_lane_request", "{payload}");
            assert_eq!(rejection.details["field"], field, "{payload}");
        }
    }
}
