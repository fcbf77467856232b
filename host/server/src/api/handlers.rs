//! One function per endpoint of `docs/api.md`, behind [`handle`]: request id, tracing span,
//! routing, the operator token, and the error envelope for anything that is not a success.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use ep_contracts::Contract;
use ep_contracts::boundary::AdmissionRequest;
use ep_lanes_wasm::SwapError;
use ep_node::RuntimeError;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::{Value, json};
use tracing::Instrument;
use tracing::field::Empty;

use super::Shared;
use super::body::{
    ApiBody, check_optional_body, error_response, full, json_response, read_contract,
    serialized_response,
};
use super::errors::{ApiError, result_status};
use super::router::{Route, route};
use super::{executions, sse};
use crate::metrics::SPAN_ANNOTATED;

/// Longest caller-supplied `x-request-id` kept (longer ones are replaced).
const MAX_REQUEST_ID: usize = 128;

/// Answers one request.
pub(crate) async fn handle(
    shared: Arc<Shared>,
    request: Request<Incoming>,
    peer: SocketAddr,
) -> Response<ApiBody> {
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= MAX_REQUEST_ID)
        .map_or_else(|| ep_contracts::ids::stable_id("req"), str::to_owned);
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %request.method(),
        path = %request.uri().path(),
        %peer,
        route = Empty,
        status = Empty,
    );
    let (name, mut response) = dispatch(&shared, request, &request_id)
        .instrument(span.clone())
        .await;
    let status = response.status().as_u16();
    span.record("route", name);
    span.record("status", status);
    span.in_scope(|| tracing::debug!(status, "answered"));
    shared.metrics.count_request(name, status);
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

async fn dispatch(
    shared: &Arc<Shared>,
    request: Request<Incoming>,
    request_id: &str,
) -> (&'static str, Response<ApiBody>) {
    let (parts, body) = request.into_parts();
    let route = match route(&parts.method, parts.uri.path()) {
        Ok(route) => route,
        Err(error) => return ("unmatched", error_response(&error)),
    };
    let name = route.name();
    if route.is_operator()
        && let Err(error) = check_operator(&parts.headers, shared.options.operator_token.as_deref())
    {
        return (name, error_response(&error));
    }
    let answer = match route {
        Route::Node => Ok(json_response(
            StatusCode::OK,
            &shared.node.describe().to_value(),
        )),
        Route::Admit => admit(shared, &parts.headers, body).await,
        Route::Execute => execute(shared, &parts.headers, body).await,
        Route::Stream => stream(shared, &parts.headers, body).await,
        Route::Cancel(reference) => executions::cancel(shared, &parts.headers, &reference).await,
        Route::Input(reference) => {
            executions::input(shared, &parts.headers, body, &reference).await
        }
        Route::Lanes => Ok(json_response(
            StatusCode::OK,
            &json!({"lanes": shared.lanes()}),
        )),
        Route::Reload => reload(shared, &parts.headers).await,
        Route::Rollback(lane_id) => rollback(shared, &parts.headers, &lane_id, request_id).await,
        Route::Reinstate { lane_id, digest } => {
            reinstate(shared, &parts.headers, &lane_id, &digest, request_id).await
        }
        Route::Healthz => Ok(healthz(shared)),
        Route::Metrics => Ok(metrics(shared)),
    };
    (name, answer.unwrap_or_else(|error| error_response(&error)))
}

/// The non-empty token of `authorization: Bearer <token>`, if the request carries one.
pub(super) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        })
        .filter(|p| !p.is_empty())
}

/// `authorization: Bearer <token>` must carry the operator token (compared in constant time).
fn check_operator(headers: &HeaderMap, token: Option<&str>) -> Result<(), ApiError> {
    let Some(presented) = bearer(headers) else {
        return Err(ApiError::unauthorized());
    };
    match token {
        Some(expected) if constant_time_eq(presented.as_bytes(), expected.as_bytes()) => Ok(()),
        _ => Err(ApiError::forbidden()),
    }
}

/// The `AdmissionRequest` body of `/v1/admit`, `/v1/execute` and `/v1/stream`, refused unless
/// its sender may send it (see [`check_direct`]).
async fn read_admission(
    shared: &Shared,
    headers: &HeaderMap,
    body: Incoming,
) -> Result<AdmissionRequest, ApiError> {
    let request: AdmissionRequest =
        read_contract(headers, body, shared.options.limits.max_body_bytes).await?;
    check_direct(shared, headers, &request)?;
    if let Some(lanes) = &shared.options.lanes
        && lanes.is_loading(&request.lane_id)
    {
        return Err(ApiError::lane_loading(&request.lane_id));
    }
    Ok(request)
}

/// A direct lower-lane-owner request skips governed admission (no authority ref, no target
/// attestation), so over the network only the operator may send one.
fn check_direct(
    shared: &Shared,
    headers: &HeaderMap,
    request: &AdmissionRequest,
) -> Result<(), ApiError> {
    if !request.provenance.is_direct() {
        return Ok(());
    }
    check_operator(headers, shared.options.operator_token.as_deref()).map_err(|error| {
        ApiError::new(
            error.status,
            &error.code,
            "a direct lower-lane-owner request skips governed admission, so it needs \
             `authorization: Bearer <token>` with the operator token; send a governed request \
             (authority_ref) instead",
        )
    })
}

/// Whether `a` and `b` are equal, in time that depends only on their lengths.
pub(super) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq as _;
    bool::from(a.ct_eq(b))
}

async fn admit(
    shared: &Shared,
    headers: &HeaderMap,
    body: Incoming,
) -> Result<Response<ApiBody>, ApiError> {
    let request = read_admission(shared, headers, body).await?;
    match shared.node.admit(request).await {
        Ok(decision) => Ok(json_response(StatusCode::OK, &decision.to_value())),
        Err(rejection) => Err(ApiError::rejected(&rejection)),
    }
}

/// Counts a `/v1/execute` handler as in flight until dropped.
struct Executing<'a>(&'a Shared);

impl Drop for Executing<'_> {
    fn drop(&mut self) {
        self.0.executing.fetch_sub(1, Ordering::SeqCst);
        self.0.quiet.notify_waiters();
    }
}

async fn execute(
    shared: &Shared,
    headers: &HeaderMap,
    body: Incoming,
) -> Result<Response<ApiBody>, ApiError> {
    if shared.is_draining() {
        return Err(ApiError::shutting_down());
    }
    let request = read_admission(shared, headers, body).await?;
    shared.executing.fetch_add(1, Ordering::SeqCst);
    let _executing = Executing(shared);
    // Checked again once counted, so the drain never misses an execution it must wait for.
    if shared.is_draining() {
        return Err(ApiError::shutting_down());
    }
    let span = tracing::info_span!(
        "execution",
        lane = %request.lane_id,
        request_id = %request.request_id,
        execution_ref = Empty,
        target = Empty,
        generation_digest = Empty,
        status = Empty,
    );
    let (result, annotated) = SPAN_ANNOTATED
        .scope(std::cell::Cell::new(false), async {
            let result = shared.node.execute(request).await;
            (result, SPAN_ANNOTATED.with(std::cell::Cell::get))
        })
        .instrument(span.clone())
        .await;
    // Refused before it started: nothing filled the span in yet.
    if !annotated {
        span.record("execution_ref", result.execution_ref.as_str());
        if let Some(digest) = result
            .evidence
            .iter()
            .find_map(|e| e.get("component_digest").and_then(Value::as_str))
        {
            span.record("generation_digest", digest);
        }
    }
    span.record("status", result.status.as_str());
    span.in_scope(|| tracing::info!("execution ended"));
    Ok(serialized_response(result_status(&result), &result))
}

async fn stream(
    shared: &Arc<Shared>,
    headers: &HeaderMap,
    body: Incoming,
) -> Result<Response<ApiBody>, ApiError> {
    if shared.is_draining() {
        return Err(ApiError::shutting_down());
    }
    let request = read_admission(shared, headers, body).await?;
    let lane_id = request.lane_id.clone();
    let provenance = request.provenance.clone();
    // Counted as an open stream from here, before the lane starts: a drain that begins while
    // the stream is being set up waits for it (and can cut it) instead of missing it.
    let slot = sse::StreamSlot::open(shared);
    if shared.is_draining() {
        return Err(ApiError::shutting_down());
    }
    match shared.node.open_stream(request).await {
        Ok(open) => Ok(sse::response(slot, open, lane_id, provenance)),
        Err(RuntimeError::Rejected(rejection)) => Err(ApiError::rejected(&rejection)),
        Err(other) => Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "target_error",
            other.to_string(),
        )),
    }
}

async fn reload(shared: &Shared, headers: &HeaderMap) -> Result<Response<ApiBody>, ApiError> {
    check_optional_body(headers)?;
    let report = match &shared.options.lanes {
        Some(admin) => admin.reload().await,
        None => super::ReloadReport {
            status: "reloaded".to_owned(),
            config: "none".to_owned(),
            policy: "unchanged".to_owned(),
            ..super::ReloadReport::default()
        },
    };
    let value = serde_json::to_value(&report).unwrap_or_else(|_| json!({}));
    Ok(json_response(StatusCode::OK, &value))
}

async fn rollback(
    shared: &Shared,
    headers: &HeaderMap,
    lane_id: &str,
    request_id: &str,
) -> Result<Response<ApiBody>, ApiError> {
    check_optional_body(headers)?;
    let unknown = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_lane",
            format!("the host serves no hot-swappable lane {lane_id:?}; see GET /v1/lanes"),
        )
    };
    let Some(admin) = &shared.options.lanes else {
        return Err(unknown());
    };
    match admin.rollback(lane_id).await {
        Ok(rollback) => Ok(json_response(
            StatusCode::OK,
            &json!({
                "lane_id": rollback.lane_id,
                "from_digest": rollback.from_digest,
                "to_digest": rollback.to_digest,
            }),
        )),
        Err(SwapError::UnknownLane { .. }) => Err(unknown()),
        Err(error @ (SwapError::NoPreviousGeneration { .. } | SwapError::NotServing { .. })) => {
            Err(ApiError::new(
                StatusCode::CONFLICT,
                "no_previous_generation",
                error.to_string(),
            ))
        }
        Err(error @ SwapError::Target { .. }) => Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "target_error",
            error.to_string(),
        )),
        Err(error) => {
            tracing::error!(request_id, %error, "rollback failed");
            Err(ApiError::internal(request_id))
        }
    }
}

/// `POST /v1/lanes/{lane_id}/digests/{digest}/reinstate`: re-admits a withdrawn or quarantined
/// digest (404 `not_withdrawn` when it is neither).
async fn reinstate(
    shared: &Shared,
    headers: &HeaderMap,
    lane_id: &str,
    digest: &str,
    request_id: &str,
) -> Result<Response<ApiBody>, ApiError> {
    check_optional_body(headers)?;
    let not_withdrawn =
        |message: String| ApiError::new(StatusCode::NOT_FOUND, "not_withdrawn", message);
    let Some(admin) = &shared.options.lanes else {
        return Err(not_withdrawn(format!(
            "the host keeps no withdrawn digests of lane {lane_id:?}"
        )));
    };
    match admin.reinstate(lane_id, digest).await {
        Ok(reinstated) => {
            let value = serde_json::to_value(&reinstated).unwrap_or_else(|_| json!({}));
            Ok(json_response(StatusCode::OK, &value))
        }
        Err(error @ ep_lanes_wasm::WithdrawalsError::NotWithdrawn { .. }) => {
            Err(not_withdrawn(error.to_string()))
        }
        Err(error) => {
            tracing::error!(request_id, %error, "reinstate failed");
            Err(ApiError::internal(request_id))
        }
    }
}

fn healthz(shared: &Shared) -> Response<ApiBody> {
    if shared.is_draining() {
        json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"status": "draining"}),
        )
    } else {
        let loading = shared
            .options
            .lanes
            .as_ref()
            .map(|lanes| lanes.loading())
            .unwrap_or_default();
        if loading.is_empty() {
            json_response(StatusCode::OK, &json!({"status": "ok"}))
        } else {
            json_response(
                StatusCode::OK,
                &json!({"status": "ok", "lanes_loading": loading}),
            )
        }
    }
}

fn metrics(shared: &Shared) -> Response<ApiBody> {
    let text = shared.metrics.encode(
        &shared.lanes(),
        shared.streams_open(),
        shared.options.wasm.as_ref().map(|w| w.instantiations()),
    );
    let mut response = Response::new(full(text));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}
