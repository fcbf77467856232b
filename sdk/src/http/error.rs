//! Why an outbound request failed, as a typed enum, and the table that maps wasi:http's
//! `error-code` onto it. The table is pure, so it is tested natively.

use std::fmt;

use crate::bindings::wasi::http::types::ErrorCode;

/// Why [`send`](super::send) failed. Match on the variant; the `Display` text names the thing,
/// the reason and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HttpError {
    /// The URL is not an absolute `http`/`https` URL the SDK can send to.
    InvalidUrl {
        /// The text as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The method is not a valid HTTP method token.
    InvalidMethod {
        /// The method as given.
        method: String,
    },
    /// A header name or value is malformed, or the host forbids setting that header
    /// (`host`, `connection`, `transfer-encoding`, ...).
    InvalidHeader {
        /// The header name.
        name: String,
        /// Why it was refused.
        reason: String,
    },
    /// A `content-length` header does not match the body: the request is refused before it is
    /// sent, instead of going out with a body cut short (or a server left waiting for bytes
    /// that never come).
    ContentLengthMismatch {
        /// The header's value as given.
        declared: String,
        /// The body's length in bytes.
        actual: usize,
    },
    /// The host refused the request: the lane's `http` grants (or the host's address policy)
    /// do not allow this URL (`error-code.HTTP-request-denied`). The host's reason, when it
    /// gave one (`http-egress.last-denial`), says which rule refused it.
    Denied(Option<Denial>),
    /// A timeout ran out before the exchange completed.
    Timeout(TimeoutKind),
    /// The response body is larger than [`Options::max_response_bytes`](super::Options) (or
    /// the host's own response cap, `error-code.HTTP-response-body-size`).
    BodyTooLarge {
        /// The cap in bytes, when known.
        limit: Option<u64>,
    },
    /// Anything else that broke the exchange (DNS, refused connection, TLS, protocol errors):
    /// the wasi:http `error-code` (or stream error) as debug text.
    Transport(String),
}

/// Why the host refused a request, in the words of its `capability.denied` evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// `no_matching_grant`, `address_not_allowed`, `outside_request_egress`, ...
    pub reason: String,
    /// The destination and what to change to allow it.
    pub message: String,
}

impl Denial {
    /// The host's reason for the most recent refused request of this execution.
    pub fn last() -> Option<Self> {
        #[cfg(target_arch = "wasm32")]
        {
            crate::bindings::execution_plane::lane0_2_0::http_egress::last_denial().map(|denial| {
                Self {
                    reason: denial.reason,
                    message: denial.message,
                }
            })
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            None
        }
    }
}

/// Which timeout ran out, after the wasi:http `error-code` that reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimeoutKind {
    /// `DNS-timeout`: resolving the host took too long.
    Dns,
    /// `connection-timeout`: connecting took longer than the connect timeout.
    Connect,
    /// `connection-read-timeout`: the response (its first byte, or the next chunk of the body)
    /// took longer than the first-byte or between-bytes timeout.
    Read,
    /// `connection-write-timeout`: sending the request took too long.
    Write,
    /// `HTTP-response-timeout`: the response as a whole took too long.
    Response,
}

impl TimeoutKind {
    /// A stable name for details and logs: `dns`, `connect`, `read`, `write`, `response`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dns => "dns",
            Self::Connect => "connect",
            Self::Read => "read",
            Self::Write => "write",
            Self::Response => "response",
        }
    }
}

impl fmt::Display for TimeoutKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl HttpError {
    /// The error for a wasi:http `error-code`; codes without a variant of their own become
    /// [`HttpError::Transport`] with the code's debug text.
    pub fn from_error_code(code: &ErrorCode) -> Self {
        match code {
            ErrorCode::HttpRequestDenied => Self::Denied(Denial::last()),
            ErrorCode::DnsTimeout => Self::Timeout(TimeoutKind::Dns),
            ErrorCode::ConnectionTimeout => Self::Timeout(TimeoutKind::Connect),
            ErrorCode::ConnectionReadTimeout => Self::Timeout(TimeoutKind::Read),
            ErrorCode::ConnectionWriteTimeout => Self::Timeout(TimeoutKind::Write),
            ErrorCode::HttpResponseTimeout => Self::Timeout(TimeoutKind::Response),
            ErrorCode::HttpResponseBodySize(limit) => Self::BodyTooLarge { limit: *limit },
            other => Self::Transport(format!("{other:?}")),
        }
    }
}

impl HttpError {
    /// The error for a failed body read whose `io-error` carries no `error-code`: wasmtime 48's
    /// `wasi:http` stores a response body's error in its own embedder type, which
    /// `http-error-code` does not recognise, so only the error's text crosses. The texts of the
    /// timeouts (the host's between-bytes timeout ends a silent stream this way) are that
    /// type's `Display`; anything else stays [`HttpError::Transport`] with the text.
    pub fn from_body_error_text(text: &str) -> Self {
        // The debug text may carry the host's backtrace after the first line: only the
        // message reaches the lane.
        let text = text.lines().next().unwrap_or_default();
        match text {
            "connection read timeout" => Self::Timeout(TimeoutKind::Read),
            "connection timeout" => Self::Timeout(TimeoutKind::Connect),
            "connection write timeout" => Self::Timeout(TimeoutKind::Write),
            "DNS lookup timed out" => Self::Timeout(TimeoutKind::Dns),
            other => Self::Transport(other.to_owned()),
        }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidUrl { url, reason } => write!(f, "URL {url:?} is invalid: {reason}"),
            Self::InvalidMethod { method } => write!(
                f,
                "HTTP method {method:?} is not a valid method token; use GET, POST, ..."
            ),
            Self::InvalidHeader { name, reason } => {
                write!(f, "HTTP header {name:?} was refused: {reason}")
            }
            Self::ContentLengthMismatch { declared, actual } => write!(
                f,
                "the request's content-length header says {declared:?} but its body is {actual} \
                 bytes; drop the header (the SDK sets it from the body) or make it match"
            ),
            Self::Denied(Some(denial)) => write!(
                f,
                "the host denied the HTTP request: {}; ask the operator to grant it",
                denial.message
            ),
            Self::Denied(None) => f.write_str(
                "the host denied the HTTP request: the lane's `http` grants do not allow this \
                 URL; ask the operator to grant it",
            ),
            Self::Timeout(kind) => write!(
                f,
                "the HTTP request timed out ({kind}); raise the request's timeout or check the \
                 server"
            ),
            Self::BodyTooLarge { limit: Some(limit) } => write!(
                f,
                "the HTTP response body is over the {limit}-byte cap; raise the cap or ask for \
                 less"
            ),
            Self::BodyTooLarge { limit: None } => {
                f.write_str("the HTTP response body is over the host's cap; ask for less")
            }
            Self::Transport(error) => write!(f, "the HTTP request failed: {error}"),
        }
    }
}

impl std::error::Error for HttpError {}

impl HttpError {
    /// The failure class an execution ends with when this error ends it: `policy_denied` for
    /// a refusal, `timeout` for a timeout, `transport_failed` for the rest (a malformed
    /// request is `protocol_framing_failed`: the lane built it wrong).
    pub fn failure_class(&self) -> crate::FailureClass {
        use crate::FailureClass as C;
        match self {
            Self::Denied(_) => C::PolicyDenied,
            Self::Timeout(_) => C::Timeout,
            Self::InvalidUrl { .. }
            | Self::InvalidMethod { .. }
            | Self::InvalidHeader { .. }
            | Self::ContentLengthMismatch { .. } => C::ProtocolFramingFailed,
            Self::BodyTooLarge { .. } | Self::Transport(_) => C::TransportFailed,
        }
    }

    /// A stable name for the failure's reason: `http_denied`, `http_timeout`, ...
    pub fn reason(&self) -> &'static str {
        match self {
            Self::InvalidUrl { .. } => "http_invalid_url",
            Self::InvalidMethod { .. } => "http_invalid_method",
            Self::InvalidHeader { .. } => "http_invalid_header",
            Self::ContentLengthMismatch { .. } => "http_content_length_mismatch",
            Self::Denied(_) => "http_denied",
            Self::Timeout(_) => "http_timeout",
            Self::BodyTooLarge { .. } => "http_body_too_large",
            Self::Transport(_) => "http_transport_failed",
        }
    }
}

/// `?` on an [`HttpError`] inside [`Lane::execute`](crate::Lane::execute): the execution fails
/// with the error's class ([`HttpError::failure_class`]) and its message in the details.
impl From<HttpError> for crate::Outcome {
    fn from(error: HttpError) -> Self {
        let mut details = serde_json::json!({"message": error.to_string()});
        if let HttpError::Denied(Some(denial)) = &error {
            details["denial"] = serde_json::Value::from(denial.reason.as_str());
        }
        crate::Outcome::failed(error.failure_class(), error.reason(), details)
    }
}

/// `?` on an [`HttpError`] inside [`Lane::validate`](crate::Lane::validate) or
/// [`Lane::stream`](crate::Lane::stream): the request is refused as `invalid_lane_request`
/// (a URL or header that does not build) with the error's message.
impl From<HttpError> for crate::Rejection {
    fn from(error: HttpError) -> Self {
        crate::Rejection::invalid_request(error.to_string()).with_detail("error", error.reason())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::wasi::http::types::DnsErrorPayload;

    #[test]
    fn request_denied_maps_to_denied() {
        assert_eq!(
            HttpError::from_error_code(&ErrorCode::HttpRequestDenied),
            HttpError::Denied(None)
        );
    }

    #[test]
    fn body_errors_known_only_by_their_text_keep_their_timeout_kind() {
        assert_eq!(
            HttpError::from_body_error_text("connection read timeout"),
            HttpError::Timeout(TimeoutKind::Read)
        );
        assert_eq!(
            HttpError::from_body_error_text("connection terminated"),
            HttpError::Transport("connection terminated".into())
        );
        assert_eq!(
            HttpError::from_body_error_text("connection read timeout\nStack backtrace:\n   0: x"),
            HttpError::Timeout(TimeoutKind::Read)
        );
    }

    #[test]
    fn timeout_codes_map_to_their_timeout_kind() {
        for (code, kind) in [
            (ErrorCode::DnsTimeout, TimeoutKind::Dns),
            (ErrorCode::ConnectionTimeout, TimeoutKind::Connect),
            (ErrorCode::ConnectionReadTimeout, TimeoutKind::Read),
            (ErrorCode::ConnectionWriteTimeout, TimeoutKind::Write),
            (ErrorCode::HttpResponseTimeout, TimeoutKind::Response),
        ] {
            assert_eq!(HttpError::from_error_code(&code), HttpError::Timeout(kind));
        }
    }

    #[test]
    fn response_body_size_maps_to_body_too_large_with_the_limit() {
        assert_eq!(
            HttpError::from_error_code(&ErrorCode::HttpResponseBodySize(Some(10))),
            HttpError::BodyTooLarge { limit: Some(10) }
        );
        assert_eq!(
            HttpError::from_error_code(&ErrorCode::HttpResponseBodySize(None)),
            HttpError::BodyTooLarge { limit: None }
        );
    }

    #[test]
    fn other_codes_map_to_transport_with_the_debug_text() {
        let HttpError::Transport(text) = HttpError::from_error_code(&ErrorCode::ConnectionRefused)
        else {
            panic!("expected Transport")
        };
        assert!(text.contains("ConnectionRefused"), "{text}");
        let HttpError::Transport(text) =
            HttpError::from_error_code(&ErrorCode::DnsError(DnsErrorPayload {
                rcode: Some("NXDOMAIN".into()),
                info_code: None,
            }))
        else {
            panic!("expected Transport")
        };
        assert!(
            text.contains("DnsError") && text.contains("NXDOMAIN"),
            "{text}"
        );
        assert!(matches!(
            HttpError::from_error_code(&ErrorCode::InternalError(Some("x".into()))),
            HttpError::Transport(_)
        ));
    }

    #[test]
    fn messages_name_the_thing_and_what_to_do() {
        assert!(HttpError::Denied(None).to_string().contains("grants"));
        let denial = Denial {
            reason: "no_matching_grant".into(),
            message: "http://h:80 refused (no_matching_grant): no grant matches".into(),
        };
        assert!(
            HttpError::Denied(Some(denial))
                .to_string()
                .contains("refused (no_matching_grant)")
        );
        assert!(
            HttpError::Timeout(TimeoutKind::Connect)
                .to_string()
                .contains("(connect)")
        );
        assert!(
            HttpError::BodyTooLarge { limit: Some(5) }
                .to_string()
                .contains("5-byte cap")
        );
        assert!(
            HttpError::ContentLengthMismatch {
                declared: "3".into(),
                actual: 10
            }
            .to_string()
            .contains("says \"3\" but its body is 10 bytes")
        );
        assert_eq!(
            HttpError::InvalidUrl {
                url: "x".into(),
                reason: "no".into()
            }
            .to_string(),
            "URL \"x\" is invalid: no"
        );
    }
}
