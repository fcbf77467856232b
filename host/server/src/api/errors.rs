//! The error envelope and the status tables of `docs/api.md`: rejection reason → status,
//! failure class → status, and the API's own codes.

use ep_contracts::Contract;
use ep_contracts::boundary::{AdmissionRejection, ExecutionResult, ResultStatus};
use http::StatusCode;
use serde_json::{Value, json};

/// The status a rejection `reason` answers with (`docs/api.md`, "Rejection reason → status").
pub fn rejection_status(reason: &str) -> StatusCode {
    match reason {
        "contract_version_mismatch" => StatusCode::BAD_REQUEST,
        "authority_ref_missing" => StatusCode::UNAUTHORIZED,
        "authority_rejected" => StatusCode::FORBIDDEN,
        "lane_not_registered" => StatusCode::NOT_FOUND,
        "not_supported" => StatusCode::NOT_IMPLEMENTED,
        "registration_incomplete" | "authority_verifier_missing" => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

/// The status a failed execution of `class` answers with (`docs/api.md`, "Failure class →
/// status"); `None` or an unknown class is 500.
pub fn failure_status(class: Option<&str>) -> StatusCode {
    match class {
        Some("policy_denied" | "approval_expired") => StatusCode::FORBIDDEN,
        Some("route_unresolved") => StatusCode::UNPROCESSABLE_ENTITY,
        Some("lease_expired" | "attach_mismatch" | "cancellation") => StatusCode::CONFLICT,
        Some(
            "launch_failed" | "transport_failed" | "protocol_framing_failed" | "remote_disconnect",
        ) => StatusCode::BAD_GATEWAY,
        Some("placement_unavailable") => StatusCode::SERVICE_UNAVAILABLE,
        Some("timeout") => StatusCode::GATEWAY_TIMEOUT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The status `/v1/execute` answers `result` with: 200 when it succeeded, the reason's status
/// when rejected, the failure class's status when failed.
pub fn result_status(result: &ExecutionResult) -> StatusCode {
    let field = |key: &str| {
        result
            .error
            .as_ref()
            .and_then(|e| e.get(key))
            .and_then(Value::as_str)
    };
    match result.status {
        ResultStatus::Succeeded => StatusCode::OK,
        ResultStatus::Rejected => rejection_status(field("reason").unwrap_or_default()),
        _ => failure_status(field("failure_class")),
    }
}

/// A non-success answer: `{"error": {code, message, details}, "rejection"?}` with its status
/// and the headers some codes need.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// A rejection reason or an API code.
    pub code: String,
    /// What to do.
    pub message: String,
    /// Details as data.
    pub details: Value,
    /// The dumped rejection, when the node refused the request.
    pub rejection: Option<Value>,
    /// The `allow` header of a 405.
    pub allow: Option<&'static str>,
    /// The `retry-after` header (seconds) of a 503 that passes soon.
    pub retry_after: Option<u32>,
}

impl ApiError {
    /// An API error with `code` and `message`, no details.
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_owned(),
            message: message.into(),
            details: json!({}),
            rejection: None,
            allow: None,
            retry_after: None,
        }
    }

    /// The node refused the request: the reason's status, the rejection in `rejection`.
    pub fn rejected(rejection: &AdmissionRejection) -> Self {
        Self {
            status: rejection_status(&rejection.reason),
            code: rejection.reason.clone(),
            message: rejection
                .message
                .clone()
                .unwrap_or_else(|| format!("the node refused the request: {}", rejection.reason)),
            details: Value::Object(rejection.details.clone()),
            rejection: Some(rejection.to_value()),
            allow: None,
            retry_after: None,
        }
    }

    /// Adds details.
    #[must_use]
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    /// The JSON body.
    pub fn body(&self) -> Value {
        let mut body = json!({"error": {
            "code": self.code,
            "message": self.message,
            "details": self.details,
        }});
        if let (Some(rejection), Value::Object(map)) = (&self.rejection, &mut body) {
            map.insert("rejection".to_owned(), rejection.clone());
        }
        body
    }

    /// 400 `invalid_json`.
    pub fn invalid_json(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_json", message)
    }

    /// 404 `not_found`.
    pub fn not_found(path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no route {path}; see docs/api.md for the endpoints"),
        )
    }

    /// 405 `method_not_allowed` with `allow`.
    pub fn method_not_allowed(method: &str, path: &str, allow: &'static str) -> Self {
        Self {
            allow: Some(allow),
            ..Self::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!("{path} does not take {method}; use {allow}"),
            )
        }
    }

    /// 401 `unauthorized`.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this operator route needs `authorization: Bearer <token>` with the token from the \
             [operator] token_file",
        )
    }

    /// 403 `forbidden`.
    pub fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "the operator token is wrong; use the token from the [operator] token_file",
        )
    }

    /// 413 `body_too_large`.
    pub fn body_too_large(limit: u64) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the request body is over the {limit}-byte limit (server.max_body_bytes)"),
        )
        .with_details(json!({"limit": limit}))
    }

    /// 408 `request_timeout`: the body did not arrive within `server.body_read_timeout_ms` or
    /// fell below `server.min_body_bytes_per_sec`; `details` says which and how much came.
    pub fn request_timeout(message: impl Into<String>, details: Value) -> Self {
        Self::new(StatusCode::REQUEST_TIMEOUT, "request_timeout", message).with_details(details)
    }

    /// 503 `connections_exhausted`: a reserved connection (every `server.max_connections` is
    /// taken) serves only `/healthz`, `/metrics` and operator requests.
    pub fn connections_exhausted(max_connections: usize) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "connections_exhausted",
            format!(
                "the host is serving its {max_connections} connections (server.max_connections); \
                 this reserved connection serves only /healthz, /metrics and operator requests; \
                 retry shortly"
            ),
        )
        .with_details(json!({"max_connections": max_connections}))
    }

    /// 503 `lane_loading`: the plugin serving `lane_id` is still loading (compiling, the first
    /// time a large lane starts); it serves once loaded.
    pub fn lane_loading(lane_id: &str) -> Self {
        Self {
            retry_after: Some(1),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "lane_loading",
                format!(
                    "the lane {lane_id:?} is still loading (its plugin is being compiled); \
                     retry shortly (`/healthz` lists the lanes still loading)"
                ),
            )
            .with_details(json!({"lane_id": lane_id}))
        }
    }

    /// 415 `unsupported_media_type`.
    pub fn unsupported_media_type(found: Option<&str>) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "send the body as `content-type: application/json` (got {})",
                found.map_or_else(|| "none".to_owned(), |f| format!("{f:?}"))
            ),
        )
    }

    /// 503 `shutting_down`.
    pub fn shutting_down() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the host is draining for shutdown and takes no new executions; retry on another node",
        )
    }

    /// 500 `internal`, naming the request id the log carries.
    pub fn internal(request_id: &str) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("internal error; the host log has it under request id {request_id}"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rejection_reason_has_its_status() {
        use ep_contracts::boundary::RejectionReason;
        for reason in RejectionReason::ALL {
            let expected = match reason {
                RejectionReason::ContractVersionMismatch => 400,
                RejectionReason::AuthorityRefMissing => 401,
                RejectionReason::AuthorityRejected => 403,
                RejectionReason::LaneNotRegistered => 404,
                RejectionReason::NotSupported => 501,
                RejectionReason::RegistrationIncomplete
                | RejectionReason::AuthorityVerifierMissing => 503,
                _ => 422,
            };
            assert_eq!(
                rejection_status(reason.as_str()).as_u16(),
                expected,
                "{reason}"
            );
        }
        assert_eq!(rejection_status("verifier_specific").as_u16(), 422);
    }

    #[test]
    fn every_failure_class_has_its_status() {
        use ep_contracts::failure::FailureClass;
        for class in FailureClass::ALL {
            let status = failure_status(Some(class.as_str())).as_u16();
            assert_ne!(status, 200, "{class}");
        }
        assert_eq!(failure_status(Some("timeout")).as_u16(), 504);
        assert_eq!(
            failure_status(Some("semantic_runtime_failed")).as_u16(),
            500
        );
        assert_eq!(failure_status(None).as_u16(), 500);
        assert_eq!(failure_status(Some("made_up")).as_u16(), 500);
    }
}
