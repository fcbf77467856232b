//! Bodies: the response body type, JSON answers, and reading a request body within
//! `server.max_body_bytes` as the contract value its route takes.

use std::convert::Infallible;

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use ep_contracts::Contract;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use serde_json::Value;

use super::errors::ApiError;

/// Every response body the API sends (JSON, Prometheus text, or an event stream).
pub type ApiBody = UnsyncBoxBody<Bytes, Infallible>;

/// A whole body from bytes.
pub fn full(bytes: impl Into<Bytes>) -> ApiBody {
    Full::new(bytes.into()).boxed_unsync()
}

/// A JSON answer with `status`.
pub fn json_response(status: StatusCode, value: &Value) -> Response<ApiBody> {
    let mut response = Response::new(full(value.to_string()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// The envelope of `error`, with its status and headers.
pub fn error_response(error: &ApiError) -> Response<ApiBody> {
    let mut response = json_response(error.status, &error.body());
    if let Some(allow) = error.allow {
        response
            .headers_mut()
            .insert(http::header::ALLOW, HeaderValue::from_static(allow));
    }
    if error.status == StatusCode::UNAUTHORIZED && error.code == "unauthorized" {
        response.headers_mut().insert(
            http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer"),
        );
    }
    response
}

/// Whether `headers` say the body is JSON (`application/json`, parameters allowed).
fn is_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let found = headers.get(CONTENT_TYPE).map(|v| v.to_str().unwrap_or("?"));
    let essence = found
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    match essence.as_deref() {
        Some("application/json") => Ok(()),
        _ => Err(ApiError::unsupported_media_type(found)),
    }
}

/// Whether the request carries a body at all (a length over zero, or chunked).
pub fn has_body(headers: &HeaderMap) -> bool {
    match headers.get(CONTENT_LENGTH) {
        Some(length) => length.to_str().ok().and_then(|v| v.parse::<u64>().ok()) != Some(0),
        None => headers.contains_key(http::header::TRANSFER_ENCODING),
    }
}

/// A route without a body may still be sent one: then it must be JSON (415 otherwise); it is
/// ignored either way.
pub fn check_optional_body(headers: &HeaderMap) -> Result<(), ApiError> {
    if has_body(headers) {
        is_json(headers)?;
    }
    Ok(())
}

/// How much of an over-limit body is read and thrown away so the client can finish sending
/// and read the 413 (beyond it the connection is closed instead).
const DRAIN_CAP: u64 = 64 << 20;
/// How long an over-limit body may take to drain.
const DRAIN_TIME: Duration = Duration::from_secs(5);

/// Reads the body (JSON content type, at most `limit` bytes) and parses it as `T`.
pub async fn read_contract<T: Contract>(
    headers: &HeaderMap,
    body: Incoming,
    limit: u64,
) -> Result<T, ApiError> {
    is_json(headers)?;
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let bytes = collect_limited(body, limit, declared.is_some_and(|length| length > limit)).await?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| ApiError::invalid_json("the request body is not UTF-8 JSON text"))?;
    ep_contracts::parse::<T>(text).map_err(|e| ApiError::invalid_json(e.to_string()))
}

/// The whole body when it is at most `limit` bytes; otherwise 413, after reading and
/// discarding what the client sends (up to [`DRAIN_CAP`] / [`DRAIN_TIME`]) so it gets to read
/// the answer instead of a broken pipe.
async fn collect_limited(mut body: Incoming, limit: u64, over: bool) -> Result<Bytes, ApiError> {
    let mut buffer = BytesMut::new();
    if over {
        // Already refused: draining is best effort.
        let _ = tokio::time::timeout(DRAIN_TIME, read_frames(&mut body, limit, true, &mut buffer))
            .await;
        return Err(ApiError::body_too_large(limit));
    }
    if read_frames(&mut body, limit, false, &mut buffer).await? {
        return Err(ApiError::body_too_large(limit));
    }
    Ok(buffer.freeze())
}

/// Reads every frame into `buffer` while the total stays within `limit`, then only counts and
/// drops them (up to [`DRAIN_CAP`]); whether the body was over the limit.
async fn read_frames(
    body: &mut Incoming,
    limit: u64,
    mut over: bool,
    buffer: &mut BytesMut,
) -> Result<bool, ApiError> {
    let mut seen: u64 = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            ApiError::invalid_json(format!("the request body could not be read: {e}"))
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen = seen.saturating_add(data.len() as u64);
        over |= seen > limit;
        if over {
            if seen > DRAIN_CAP {
                break;
            }
            continue;
        }
        buffer.extend_from_slice(&data);
    }
    Ok(over)
}
