//! The routes that name a running execution: `POST /v1/executions/{ref}/cancel` and
//! `POST /v1/executions/{ref}/input`. Only the operator, or whoever holds the execution's
//! capability token (handed out when the stream opened, `x-execution-token`), may name it.
//! Without a credential the answer is 401; with one that does not fit this execution it is the
//! same 404 as for an execution that does not exist, so a caller learns nothing about
//! executions it cannot name.

use base64::Engine as _;
use ep_contracts::boundary::ExecutionRef;
use ep_node::{Canceller, Input, RuntimeError, TargetError};
use http::{HeaderMap, Response, StatusCode};
use hyper::body::Incoming;
use serde::Deserialize;
use serde_json::json;

use super::Shared;
use super::body::{ApiBody, check_optional_body, json_response, read_json};
use super::errors::ApiError;
use super::handlers::{bearer, constant_time_eq};

/// Who may name `reference`: the operator, its owner, or nobody (401 / 404).
fn caller(
    shared: &Shared,
    headers: &HeaderMap,
    execution_ref: &ExecutionRef,
    route: &str,
) -> Result<Canceller, ApiError> {
    let Some(presented) = bearer(headers) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            format!(
                "{route} needs `authorization: Bearer <token>`: the execution's \
                 x-execution-token or the operator token"
            ),
        ));
    };
    if shared
        .options
        .operator_token
        .as_deref()
        .is_some_and(|expected| constant_time_eq(presented.as_bytes(), expected.as_bytes()))
    {
        Ok(Canceller::Operator)
    } else if shared.node.authorize_execution(execution_ref, presented) {
        Ok(Canceller::Owner)
    } else {
        Err(unknown(execution_ref.as_str(), route))
    }
}

fn unknown(reference: &str, route: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "unknown_execution_ref",
        format!(
            "no execution {reference:?} that this credential may name (never started here, \
             ended long ago, or started by someone else); {route} with the x-execution-token \
             the stream answered with, or the operator token"
        ),
    )
}

fn ended(reference: &str, what: &str) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "execution_ended",
        format!("execution {reference:?} has already ended; there is nothing to {what}"),
    )
}

/// `POST /v1/executions/{ref}/cancel`.
pub(super) async fn cancel(
    shared: &Shared,
    headers: &HeaderMap,
    reference: &str,
) -> Result<Response<ApiBody>, ApiError> {
    check_optional_body(headers)?;
    let execution_ref = ExecutionRef::from_string(reference);
    let by = caller(shared, headers, &execution_ref, "cancel")?;
    match shared.node.cancel_by(&execution_ref, by).await {
        Ok(()) => Ok(json_response(
            StatusCode::OK,
            &json!({"execution_ref": reference, "cancelled": true}),
        )),
        Err(RuntimeError::UnknownExecutionRef(_)) => Err(unknown(reference, "cancel")),
        Err(RuntimeError::ExecutionEnded(_)) => Err(ended(reference, "cancel")),
        Err(RuntimeError::Target(TargetError::Unavailable { target_id, message })) => {
            Err(ApiError::new(
                StatusCode::BAD_GATEWAY,
                "target_error",
                format!("the target failed to cancel: target {target_id}: {message}"),
            )
            .with_details(json!({"target_id": target_id, "target_message": message})))
        }
        Err(other) => Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "target_error",
            format!("the target failed to cancel: {other}"),
        )),
    }
}

/// The body of `POST /v1/executions/{ref}/input`: exactly one of its keys.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct InputBody {
    /// Text for the execution's input.
    data: Option<String>,
    /// Bytes for it, base64.
    data_base64: Option<String>,
    /// `true`: no more input.
    end: bool,
    /// `true`: interrupt it.
    interrupt: bool,
}

impl InputBody {
    fn input(self) -> Result<Input, ApiError> {
        let given = [
            self.data.is_some(),
            self.data_base64.is_some(),
            self.end,
            self.interrupt,
        ];
        if given.iter().filter(|g| **g).count() != 1 {
            return Err(ApiError::invalid_json(
                "send exactly one of {\"data\": text}, {\"data_base64\": bytes}, \
                 {\"end\": true} or {\"interrupt\": true}",
            ));
        }
        if let Some(text) = self.data {
            return Ok(Input::Data(text.into_bytes()));
        }
        if let Some(encoded) = self.data_base64 {
            return base64::engine::general_purpose::STANDARD
                .decode(encoded.as_bytes())
                .map(Input::Data)
                .map_err(|e| ApiError::invalid_json(format!("data_base64 is not base64: {e}")));
        }
        Ok(if self.end {
            Input::End
        } else {
            Input::Interrupt
        })
    }
}

/// `POST /v1/executions/{ref}/input`: stdin bytes, the end of input, or an interrupt for a
/// running stream.
pub(super) async fn input(
    shared: &Shared,
    headers: &HeaderMap,
    body: Incoming,
    reference: &str,
) -> Result<Response<ApiBody>, ApiError> {
    let execution_ref = ExecutionRef::from_string(reference);
    caller(shared, headers, &execution_ref, "input")?;
    let body: InputBody = read_json(headers, body, shared.options.limits.max_body_bytes).await?;
    let input = body.input()?;
    let kind = input.kind();
    let bytes = match &input {
        Input::Data(bytes) => bytes.len(),
        Input::End | Input::Interrupt => 0,
    };
    match shared.node.send_input(&execution_ref, input).await {
        Ok(()) => Ok(json_response(
            StatusCode::OK,
            &json!({"execution_ref": reference, "input": kind, "bytes": bytes}),
        )),
        Err(RuntimeError::UnknownExecutionRef(_)) => Err(unknown(reference, "input")),
        Err(RuntimeError::ExecutionEnded(_)) => Err(ended(reference, "send input to")),
        Err(RuntimeError::InputBusy(_)) => Err(ApiError {
            retry_after: Some(1),
            ..ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "input_busy",
                format!(
                    "execution {reference:?} has not taken the input sent before; retry once \
                     it has read more"
                ),
            )
        }),
        Err(other) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "input_not_accepted",
            format!(
                "execution {reference:?} takes no input: only a running stream whose lane \
                 reads input does, until its input ends ({other})"
            ),
        )),
    }
}
