//! How a failed exchange ends: each [`HttpError`] and each lane-side limit mapped to its
//! failure class, a short reason and a `cause` in the details that callers match on.

use execution_plane_sdk::http::{HttpError, Url};
use execution_plane_sdk::{FailureClass, Map, Outcome, Value, json};

/// Where the exchange was when it failed.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The URL of the request that failed (the last hop).
    pub url: &'a Url,
    /// The redirects followed before it.
    pub redirects: &'a [String],
    /// The execution's timeout, in milliseconds (0 when none).
    pub timeout_ms: u64,
    /// The response body cap.
    pub max_response_bytes: u64,
}

/// The failure for an error [`send`](execution_plane_sdk::http::send) returned.
pub fn from_http_error(error: &HttpError, at: Context<'_>) -> Outcome {
    match error {
        HttpError::Denied(_) => failed(
            FailureClass::PolicyDenied,
            "http request denied by the lane's grants",
            "capability_denied",
            at,
            json!({}),
        ),
        HttpError::Timeout(kind) => failed(
            FailureClass::Timeout,
            "http request timed out",
            "deadline",
            at,
            json!({"timeout": kind.as_str(), "timeout_ms": at.timeout_ms}),
        ),
        HttpError::BodyTooLarge { limit } => failed(
            FailureClass::TransportFailed,
            "http response too large",
            "response_too_large",
            at,
            json!({"max_response_bytes": limit.unwrap_or(at.max_response_bytes)}),
        ),
        HttpError::InvalidHeader { name, reason } => failed(
            FailureClass::TransportFailed,
            "http request header refused",
            "invalid_header",
            at,
            json!({"header": name, "error": reason}),
        ),
        HttpError::ContentLengthMismatch { declared, actual } => failed(
            FailureClass::TransportFailed,
            "http request content-length does not match its body",
            "content_length_mismatch",
            at,
            json!({"declared": declared, "body_bytes": actual}),
        ),
        HttpError::InvalidMethod { method } => {
            invalid_method(&Value::from(method.as_str()).to_string())
        }
        other => failed(
            FailureClass::TransportFailed,
            "http request failed",
            "transport",
            at,
            json!({"error": transport_text(other)}),
        ),
    }
}

/// `method` is not one the lane sends; `given` is its JSON text. Fails before any I/O.
pub fn invalid_method(given: &str) -> Outcome {
    Outcome::failed(
        FailureClass::TransportFailed,
        "invalid http method",
        json!({
            "error": format!("invalid_http_method: {given}"),
            "cause": "invalid_method",
        }),
    )
}

/// A redirect arrived after `max_redirects` were followed.
pub fn too_many_redirects(max_redirects: u32, at: Context<'_>) -> Outcome {
    failed(
        FailureClass::TransportFailed,
        "too many redirects",
        "too_many_redirects",
        at,
        json!({"max_redirects": max_redirects}),
    )
}

/// A redirect's `Location` is not a URL the lane can follow.
pub fn invalid_redirect(location: &str, error: &HttpError, at: Context<'_>) -> Outcome {
    failed(
        FailureClass::TransportFailed,
        "http redirect location is invalid",
        "invalid_redirect",
        at,
        json!({"location": location, "error": transport_text(error)}),
    )
}

/// The execution's time ran out before the next hop could be sent.
pub fn deadline(at: Context<'_>) -> Outcome {
    failed(
        FailureClass::Timeout,
        "http request timed out",
        "deadline",
        at,
        json!({"timeout": "execution", "timeout_ms": at.timeout_ms}),
    )
}

/// The error-code text of a transport error; other errors' messages.
fn transport_text(error: &HttpError) -> String {
    match error {
        HttpError::Transport(text) => text.clone(),
        other => other.to_string(),
    }
}

/// A failure with `cause`, the URL and redirects so far, and `extra` details.
fn failed(
    class: FailureClass,
    reason: &str,
    cause: &str,
    at: Context<'_>,
    extra: Value,
) -> Outcome {
    let mut details = Map::new();
    details.insert("cause".to_owned(), Value::from(cause));
    details.insert("url".to_owned(), Value::from(at.url.to_string()));
    if !at.redirects.is_empty() {
        details.insert("redirects".to_owned(), Value::from(at.redirects.to_vec()));
    }
    if let Value::Object(extra) = extra {
        details.extend(extra);
    }
    Outcome::failed(class, reason, Value::Object(details))
}

#[cfg(test)]
mod tests {
    use execution_plane_sdk::http::TimeoutKind;

    use super::*;

    fn check(outcome: &Outcome, class: FailureClass, reason: &str, details: &Value) {
        let failure = outcome.failure().unwrap();
        assert_eq!(failure.class, class);
        assert_eq!(failure.reason, reason);
        assert_eq!(&Value::Object(failure.details.clone()), details);
    }

    fn at(url: &Url) -> Context<'_> {
        Context {
            url,
            redirects: &[],
            timeout_ms: 750,
            max_response_bytes: 100,
        }
    }

    #[test]
    fn denied_is_policy_denied_with_the_url() {
        let url = Url::parse("http://h/x").unwrap();
        check(
            &from_http_error(&HttpError::Denied(None), at(&url)),
            FailureClass::PolicyDenied,
            "http request denied by the lane's grants",
            &json!({"cause": "capability_denied", "url": "http://h/x"}),
        );
    }

    #[test]
    fn timeouts_are_the_timeout_class_with_the_kind() {
        let url = Url::parse("http://h/x").unwrap();
        check(
            &from_http_error(&HttpError::Timeout(TimeoutKind::Connect), at(&url)),
            FailureClass::Timeout,
            "http request timed out",
            &json!({"cause": "deadline", "url": "http://h/x", "timeout": "connect", "timeout_ms": 750}),
        );
        check(
            &deadline(at(&url)),
            FailureClass::Timeout,
            "http request timed out",
            &json!({"cause": "deadline", "url": "http://h/x", "timeout": "execution", "timeout_ms": 750}),
        );
    }

    #[test]
    fn transport_errors_carry_the_error_code_text() {
        let url = Url::parse("http://h/x").unwrap();
        check(
            &from_http_error(&HttpError::Transport("ConnectionRefused".into()), at(&url)),
            FailureClass::TransportFailed,
            "http request failed",
            &json!({"cause": "transport", "url": "http://h/x", "error": "ConnectionRefused"}),
        );
    }

    #[test]
    fn an_oversized_body_is_response_too_large_with_the_cap() {
        let url = Url::parse("http://h/x").unwrap();
        check(
            &from_http_error(&HttpError::BodyTooLarge { limit: None }, at(&url)),
            FailureClass::TransportFailed,
            "http response too large",
            &json!({"cause": "response_too_large", "url": "http://h/x", "max_response_bytes": 100}),
        );
    }

    #[test]
    fn a_content_length_mismatch_names_both_lengths() {
        let url = Url::parse("http://h/x").unwrap();
        let error = HttpError::ContentLengthMismatch {
            declared: "3".into(),
            actual: 10,
        };
        check(
            &from_http_error(&error, at(&url)),
            FailureClass::TransportFailed,
            "http request content-length does not match its body",
            &json!({
                "cause": "content_length_mismatch",
                "url": "http://h/x",
                "declared": "3",
                "body_bytes": 10,
            }),
        );
    }

    #[test]
    fn invalid_method_names_the_value_given() {
        check(
            &invalid_method("\"BREW\""),
            FailureClass::TransportFailed,
            "invalid http method",
            &json!({"error": "invalid_http_method: \"BREW\"", "cause": "invalid_method"}),
        );
    }

    #[test]
    fn too_many_redirects_lists_the_redirects_followed() {
        let url = Url::parse("http://h/3").unwrap();
        let redirects = ["http://h/2".to_owned(), "http://h/3".to_owned()];
        let context = Context {
            redirects: &redirects,
            ..at(&url)
        };
        check(
            &too_many_redirects(2, context),
            FailureClass::TransportFailed,
            "too many redirects",
            &json!({
                "cause": "too_many_redirects",
                "url": "http://h/3",
                "redirects": ["http://h/2", "http://h/3"],
                "max_redirects": 2,
            }),
        );
    }
}
