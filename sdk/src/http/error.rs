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
    /// do not allow this URL (`error-code.HTTP-request-denied`).
    Denied,
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
            ErrorCode::HttpRequestDenied => Self::Denied,
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
            Self::Denied => f.write_str(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::wasi::http::types::DnsErrorPayload;

    #[test]
    fn request_denied_maps_to_denied() {
        assert_eq!(
            HttpError::from_error_code(&ErrorCode::HttpRequestDenied),
            HttpError::Denied
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
        assert!(HttpError::Denied.to_string().contains("grants"));
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
