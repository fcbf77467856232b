//! The payload read into the first request: URL, method, headers, body and the redirect and
//! size limits. Pure: `validate` and `execute` both use it, and it is tested natively.

use execution_plane_sdk::http::{self, Method, Url};
use execution_plane_sdk::{Rejection, Request, Value};

/// Redirects followed when the payload names no `max_redirects`.
pub const DEFAULT_MAX_REDIRECTS: u32 = 5;

/// The most redirects a payload may ask to follow.
pub const MAX_REDIRECTS_LIMIT: u32 = 20;

/// The most header names `cross_origin_headers` may list.
pub const MAX_CROSS_ORIGIN_HEADERS: usize = 64;

/// The methods the lane sends; anything else fails before any I/O.
const METHODS: [Method; 8] = [
    Method::Delete,
    Method::Get,
    Method::Head,
    Method::Options,
    Method::Patch,
    Method::Post,
    Method::Put,
    Method::Trace,
];

/// What one execution sends first, and the limits for the whole exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The first request.
    pub request: http::Request,
    /// Redirects to follow at most; 0 returns a 3xx as it is.
    pub max_redirects: u32,
    /// Largest response body read.
    pub max_response_bytes: u64,
    /// Headers (lowercase) a redirect to another origin keeps beyond the safe ones.
    pub cross_origin_headers: Vec<String>,
}

/// Why a payload cannot be planned.
#[derive(Debug, Clone, PartialEq)]
pub enum PlanError {
    /// The payload is malformed (`invalid_lane_request`).
    Rejected(Rejection),
    /// `method` is not one the lane sends; the JSON text of the value given.
    InvalidMethod(String),
}

impl From<Rejection> for PlanError {
    fn from(rejection: Rejection) -> Self {
        Self::Rejected(rejection)
    }
}

impl Plan {
    /// Reads the whole payload; the method is checked last, so a payload that is malformed in
    /// other ways is always a rejection.
    pub fn from_request(req: &Request) -> Result<Self, PlanError> {
        check(req)?;
        let url = url(req)?;
        let headers = headers(req.payload.get("headers"))?;
        let max_redirects = max_redirects(req)?;
        let max_response_bytes = max_response_bytes(req)?;
        let cross_origin_headers = cross_origin_headers(req.payload.get("cross_origin_headers"))?;
        let method = method(req.payload.get("method")).map_err(PlanError::InvalidMethod)?;
        let body = body(req.payload.get("body"));
        let mut request = http::Request::new(method.clone(), url);
        let sends_body = !body.is_empty() || !matches!(method, Method::Get | Method::Delete);
        let has_content_type = headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("content-type"));
        for (name, value) in headers {
            request = request.header(name, value);
        }
        if sends_body && !has_content_type {
            request = request.header("content-type", "application/json");
        }
        Ok(Self {
            request: request.body(body),
            max_redirects,
            max_response_bytes,
            cross_origin_headers,
        })
    }
}

/// The checks `validate` runs: everything but the method, which fails in `execute` as a
/// `transport_failed` outcome (so callers see the same failure the HTTP lane always gave).
pub fn check(req: &Request) -> Result<(), Rejection> {
    url(req)?;
    let headers = headers(req.payload.get("headers"))?;
    content_length(&headers, &body(req.payload.get("body")))?;
    max_redirects(req)?;
    max_response_bytes(req)?;
    cross_origin_headers(req.payload.get("cross_origin_headers"))?;
    Ok(())
}

/// A `content-length` in `headers` must be the length of `body` exactly: a shorter one would
/// send the body cut short (and report success), a longer one would leave the server waiting.
fn content_length(headers: &[(String, String)], body: &[u8]) -> Result<(), Rejection> {
    for (name, value) in headers {
        if name.eq_ignore_ascii_case("content-length")
            && value.trim().parse::<u64>().ok() != u64::try_from(body.len()).ok()
        {
            return Err(Rejection::invalid_request(format!(
                "payload field `headers` declares content-length {value:?} but `body` is {} \
                 bytes; omit content-length (the lane sets it from the body) or make it match",
                body.len()
            ))
            .with_detail("field", "headers")
            .with_detail("header", name.as_str())
            .with_detail("declared", value.as_str())
            .with_detail("body_bytes", body.len()));
        }
    }
    Ok(())
}

/// `cross_origin_headers`: absent, or a list of at most [`MAX_CROSS_ORIGIN_HEADERS`] header
/// names a redirect to another origin keeps; lowercased.
pub fn cross_origin_headers(value: Option<&Value>) -> Result<Vec<String>, Rejection> {
    let refuse = |reason: String| {
        Rejection::invalid_request(format!(
            "payload field `cross_origin_headers` is invalid: {reason}; send a list of header \
             names to keep when a redirect leaves the origin, e.g. [\"x-api-key\"]"
        ))
        .with_detail("field", "cross_origin_headers")
    };
    let items = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(refuse("it is not a list".to_owned())),
    };
    if items.len() > MAX_CROSS_ORIGIN_HEADERS {
        return Err(refuse(format!(
            "it names {} headers, more than {MAX_CROSS_ORIGIN_HEADERS}",
            items.len()
        )));
    }
    items
        .iter()
        .enumerate()
        .map(|(index, item)| match item {
            Value::String(name) if !name.is_empty() && name.bytes().all(is_token_byte) => {
                Ok(name.to_ascii_lowercase())
            }
            other => Err(
                refuse(format!("entry {index} ({other}) is not a header name"))
                    .with_detail("index", index),
            ),
        })
        .collect()
}

/// `url`: required, an absolute http:// or https:// URL.
fn url(req: &Request) -> Result<Url, Rejection> {
    let text = req.payload_str("url")?;
    Url::parse(text).map_err(|error| {
        let reason = match error {
            http::HttpError::InvalidUrl { reason, .. } => reason,
            other => other.to_string(),
        };
        Rejection::invalid_request(format!(
            "payload field `url` is invalid: {reason}; send an absolute http:// or https:// URL"
        ))
        .with_detail("field", "url")
        .with_detail("url", text)
    })
}

/// `method`: absent or `null` is POST; otherwise one of [`METHODS`], any case. The error is
/// the JSON text of what was given (`"BREW"`, `5`).
pub fn method(value: Option<&Value>) -> Result<Method, String> {
    match value {
        None | Some(Value::Null) => Ok(Method::Post),
        Some(Value::String(name)) => {
            let method = Method::parse(name);
            if METHODS.contains(&method) {
                Ok(method)
            } else {
                Err(Value::from(name.as_str()).to_string())
            }
        }
        Some(other) => Err(other.to_string()),
    }
}

/// `headers`: an object (name → value) or a list of `[name, value]` pairs; values are
/// stringified, names must be header tokens.
pub fn headers(value: Option<&Value>) -> Result<Vec<(String, String)>, Rejection> {
    let pairs: Vec<(String, String)> = match value {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(name, value)| (name.clone(), stringify(value)))
            .collect(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(index, item)| match item.as_array().map(Vec::as_slice) {
                Some([Value::String(name), value]) => Ok((name.clone(), stringify(value))),
                _ => Err(headers_rejection(format!(
                    "entry {index} is not a [name, value] pair with a string name"
                ))
                .with_detail("index", index)),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(headers_rejection(
                "it is neither an object nor a list of [name, value] pairs".to_owned(),
            ));
        }
    };
    for (name, value) in &pairs {
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return Err(headers_rejection(format!(
                "header name {name:?} is not a valid header name"
            ))
            .with_detail("header", name.as_str()));
        }
        if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
            return Err(headers_rejection(format!(
                "the value of header {name:?} contains a line break or NUL"
            ))
            .with_detail("header", name.as_str()));
        }
    }
    Ok(pairs)
}

fn headers_rejection(reason: String) -> Rejection {
    Rejection::invalid_request(format!(
        "payload field `headers` is invalid: {reason}; send an object of header names to values \
         or a list of [name, value] pairs"
    ))
    .with_detail("field", "headers")
}

/// RFC 9110 `tchar`.
fn is_token_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

/// A header value as text: strings as they are, `null` empty, anything else its JSON text.
fn stringify(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// `body` as bytes: objects and arrays as JSON text (`{}` and `[]` as nothing), strings as
/// they are, `null` or absent as nothing, numbers and booleans as their text.
pub fn body(value: Option<&Value>) -> Vec<u8> {
    match value {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(text)) => text.clone().into_bytes(),
        Some(Value::Object(map)) if map.is_empty() => Vec::new(),
        Some(Value::Array(items)) if items.is_empty() => Vec::new(),
        Some(other) => other.to_string().into_bytes(),
    }
}

/// `max_redirects`: 0 to [`MAX_REDIRECTS_LIMIT`], default [`DEFAULT_MAX_REDIRECTS`].
fn max_redirects(req: &Request) -> Result<u32, Rejection> {
    match req.payload_opt::<u32>("max_redirects")? {
        None => Ok(DEFAULT_MAX_REDIRECTS),
        Some(n) if n <= MAX_REDIRECTS_LIMIT => Ok(n),
        Some(n) => Err(Rejection::invalid_request(format!(
            "payload field `max_redirects` is {n}; send 0 to {MAX_REDIRECTS_LIMIT}"
        ))
        .with_detail("field", "max_redirects")),
    }
}

/// `max_response_bytes`: a positive byte count, default 8 MiB.
fn max_response_bytes(req: &Request) -> Result<u64, Rejection> {
    match req.payload_opt::<u64>("max_response_bytes")? {
        None => Ok(http::DEFAULT_MAX_RESPONSE_BYTES),
        Some(0) => Err(Rejection::invalid_request(
            "payload field `max_response_bytes` is 0; send a positive byte count or omit it",
        )
        .with_detail("field", "max_response_bytes")),
        Some(n) => Ok(n),
    }
}

#[cfg(test)]
mod tests {
    use execution_plane_sdk::json;

    use super::*;

    fn plan(payload: Value) -> Result<Plan, PlanError> {
        Plan::from_request(&Request::new(payload))
    }

    fn rejection(payload: Value) -> Rejection {
        match plan(payload) {
            Err(PlanError::Rejected(r)) => r,
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    fn header_list(request: &http::Request) -> Vec<(&str, &str)> {
        request
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect()
    }

    #[test]
    fn method_defaults_to_post_and_accepts_the_eight_methods_in_any_case() {
        assert_eq!(method(None), Ok(Method::Post));
        assert_eq!(method(Some(&Value::Null)), Ok(Method::Post));
        for (name, expected) in [
            ("delete", Method::Delete),
            ("GET", Method::Get),
            ("Head", Method::Head),
            ("options", Method::Options),
            ("pAtCh", Method::Patch),
            ("post", Method::Post),
            ("PUT", Method::Put),
            ("trace", Method::Trace),
        ] {
            assert_eq!(method(Some(&json!(name))), Ok(expected), "{name}");
        }
    }

    #[test]
    fn other_methods_are_refused_with_their_json_text() {
        assert_eq!(method(Some(&json!("BREW"))), Err("\"BREW\"".to_owned()));
        assert_eq!(
            method(Some(&json!("CONNECT"))),
            Err("\"CONNECT\"".to_owned())
        );
        assert_eq!(method(Some(&json!(""))), Err("\"\"".to_owned()));
        assert_eq!(method(Some(&json!(5))), Err("5".to_owned()));
    }

    #[test]
    fn body_encodes_each_json_kind() {
        assert_eq!(body(None), b"");
        assert_eq!(body(Some(&Value::Null)), b"");
        assert_eq!(body(Some(&json!({}))), b"");
        assert_eq!(body(Some(&json!([]))), b"");
        assert_eq!(body(Some(&json!({"ping": "pong"}))), br#"{"ping":"pong"}"#);
        assert_eq!(body(Some(&json!([1, "a"]))), br#"[1,"a"]"#);
        assert_eq!(body(Some(&json!("raw text"))), b"raw text");
        assert_eq!(body(Some(&json!(""))), b"");
        assert_eq!(body(Some(&json!(4.5))), b"4.5");
        assert_eq!(body(Some(&json!(true))), b"true");
    }

    #[test]
    fn headers_read_objects_and_pair_lists_and_stringify_values() {
        assert_eq!(
            headers(Some(
                &json!({"x-n": 1, "x-s": "a", "x-b": false, "x-z": null})
            ))
            .unwrap(),
            [
                ("x-b".to_owned(), "false".to_owned()),
                ("x-n".to_owned(), "1".to_owned()),
                ("x-s".to_owned(), "a".to_owned()),
                ("x-z".to_owned(), String::new()),
            ]
        );
        assert_eq!(
            headers(Some(
                &json!([["accept", "a"], ["accept", "b"], ["x-o", {"k": 1}]])
            ))
            .unwrap(),
            [
                ("accept".to_owned(), "a".to_owned()),
                ("accept".to_owned(), "b".to_owned()),
                ("x-o".to_owned(), r#"{"k":1}"#.to_owned()),
            ]
        );
        assert!(headers(None).unwrap().is_empty());
    }

    #[test]
    fn malformed_headers_are_refused_naming_the_field() {
        for value in [
            json!("accept: x"),
            json!(5),
            json!([["only-name"]]),
            json!([[1, "x"]]),
            json!(["accept", "x"]),
            json!({"bad name": "x"}),
            json!({"": "x"}),
            json!({"x-a": "line\r\nbreak"}),
        ] {
            let r = headers(Some(&value)).unwrap_err();
            assert_eq!(r.reason, "invalid_lane_request", "{value}");
            assert_eq!(r.details["field"], "headers", "{value}");
            assert!(r.message.contains("`headers`"), "{}", r.message);
        }
    }

    #[test]
    fn content_type_defaults_to_json_and_a_given_one_is_sent_once() {
        let p = plan(json!({"url": "http://h/", "body": {"a": 1}})).unwrap();
        assert_eq!(
            header_list(&p.request),
            [("content-type", "application/json")]
        );
        let p = plan(
            json!({"url": "http://h/", "body": "x", "headers": {"content-type": "text/plain"}}),
        )
        .unwrap();
        assert_eq!(header_list(&p.request), [("content-type", "text/plain")]);
        let p = plan(json!({"url": "http://h/", "body": "x", "headers": [["Content-Type", "text/csv"], ["x-a", "1"]]}))
            .unwrap();
        assert_eq!(
            header_list(&p.request),
            [("Content-Type", "text/csv"), ("x-a", "1")]
        );
    }

    #[test]
    fn get_and_delete_without_a_body_send_no_body_and_no_content_type() {
        for name in ["GET", "delete"] {
            let p = plan(json!({"url": "http://h/", "method": name, "body": {}})).unwrap();
            assert!(p.request.body_bytes().is_empty());
            assert!(p.request.headers().is_empty(), "{name}");
        }
        let p = plan(json!({"url": "http://h/", "method": "get", "body": "q"})).unwrap();
        assert_eq!(p.request.body_bytes(), b"q");
        assert_eq!(
            header_list(&p.request),
            [("content-type", "application/json")]
        );
    }

    #[test]
    fn plan_defaults_to_post_five_redirects_and_an_8_mib_cap() {
        let p = plan(json!({"url": "https://h/x?y=1"})).unwrap();
        assert_eq!(p.request.method(), &Method::Post);
        assert_eq!(p.request.url().to_string(), "https://h/x?y=1");
        assert_eq!(p.max_redirects, 5);
        assert_eq!(p.max_response_bytes, 8 * 1024 * 1024);
    }

    #[test]
    fn plan_reads_redirect_and_size_limits() {
        let p = plan(json!({"url": "http://h/", "max_redirects": 0, "max_response_bytes": 10}))
            .unwrap();
        assert_eq!((p.max_redirects, p.max_response_bytes), (0, 10));
        assert_eq!(
            plan(json!({"url": "http://h/", "max_redirects": 20}))
                .unwrap()
                .max_redirects,
            20
        );
    }

    #[test]
    fn out_of_range_limits_are_refused_naming_the_field() {
        for (payload, field) in [
            (
                json!({"url": "http://h/", "max_redirects": 21}),
                "max_redirects",
            ),
            (
                json!({"url": "http://h/", "max_redirects": -1}),
                "max_redirects",
            ),
            (
                json!({"url": "http://h/", "max_redirects": "5"}),
                "max_redirects",
            ),
            (
                json!({"url": "http://h/", "max_response_bytes": 0}),
                "max_response_bytes",
            ),
            (
                json!({"url": "http://h/", "max_response_bytes": 1.5}),
                "max_response_bytes",
            ),
        ] {
            let r = rejection(payload);
            assert_eq!(r.details["field"], field);
            assert!(r.message.contains(field), "{}", r.message);
        }
    }

    #[test]
    fn a_missing_or_bad_url_is_refused_naming_the_field() {
        for payload in [
            json!({}),
            json!({"url": 5}),
            json!({"url": "/relative"}),
            json!({"url": "ftp://h/x"}),
            json!({"url": "http://"}),
        ] {
            let r = rejection(payload.clone());
            assert_eq!(r.reason, "invalid_lane_request", "{payload}");
            assert_eq!(r.details["field"], "url", "{payload}");
            assert!(r.message.contains("`url`"), "{}", r.message);
        }
    }

    #[test]
    fn a_content_length_that_does_not_match_the_body_is_refused() {
        for (length, body) in [
            ("3", json!("hello")),
            ("9", json!("hello")),
            ("2", json!(null)),
        ] {
            let payload = json!({
                "url": "http://h/",
                "headers": {"Content-Length": length},
                "body": body,
            });
            let r = check(&Request::new(payload.clone())).unwrap_err();
            assert_eq!(r.reason, "invalid_lane_request", "{payload}");
            assert_eq!(r.details["field"], "headers");
            assert_eq!(r.details["header"], "Content-Length");
            assert_eq!(r.details["declared"], length);
            assert!(r.message.contains("content-length"), "{}", r.message);
            assert!(matches!(plan(payload), Err(PlanError::Rejected(_))));
        }
        let ok =
            plan(json!({"url": "http://h/", "headers": {"content-length": "5"}, "body": "hello"}))
                .unwrap();
        assert_eq!(ok.request.body_bytes(), b"hello");
    }

    #[test]
    fn cross_origin_headers_are_a_list_of_header_names() {
        let p = plan(json!({"url": "http://h/", "cross_origin_headers": ["X-Api-Key", "x-b"]}))
            .unwrap();
        assert_eq!(p.cross_origin_headers, ["x-api-key", "x-b"]);
        assert!(
            plan(json!({"url": "http://h/"}))
                .unwrap()
                .cross_origin_headers
                .is_empty()
        );
        for value in [
            json!("x-api-key"),
            json!([1]),
            json!(["bad name"]),
            json!([""]),
        ] {
            let r = rejection(json!({"url": "http://h/", "cross_origin_headers": value}));
            assert_eq!(r.details["field"], "cross_origin_headers", "{value}");
        }
        let many: Vec<String> = (0..65).map(|n| format!("x-{n}")).collect();
        let r = rejection(json!({"url": "http://h/", "cross_origin_headers": many}));
        assert!(r.message.contains("more than 64"), "{}", r.message);
    }

    #[test]
    fn a_bad_method_is_reported_only_after_the_rest_of_the_payload_is_valid() {
        assert_eq!(
            plan(json!({"url": "http://h/", "method": "BREW"})),
            Err(PlanError::InvalidMethod("\"BREW\"".to_owned()))
        );
        assert!(matches!(
            plan(json!({"method": "BREW"})),
            Err(PlanError::Rejected(_))
        ));
        assert!(check(&Request::new(json!({"url": "http://h/", "method": "BREW"}))).is_ok());
    }
}
