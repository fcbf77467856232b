//! Bodies: the response body type, JSON answers, and reading a request body within
//! `server.max_body_bytes` and the body timing of `[server]` (a total time and a minimum rate)
//! as the contract value its route takes.

use std::convert::Infallible;
use std::future::Future;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use ep_contracts::Contract;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use serde_json::Value;

use super::ServerLimits;
use super::errors::ApiError;

/// Every response body the API sends (JSON, Prometheus text, or an event stream).
pub type ApiBody = UnsyncBoxBody<Bytes, Infallible>;

/// A whole body from bytes.
pub fn full(bytes: impl Into<Bytes>) -> ApiBody {
    Full::new(bytes.into()).boxed_unsync()
}

/// A JSON answer with `status`.
pub fn json_response(status: StatusCode, value: &Value) -> Response<ApiBody> {
    json_bytes(status, value.to_string())
}

/// `bytes` (JSON text) answered with `status` and the JSON content type.
fn json_bytes(status: StatusCode, bytes: impl Into<Bytes>) -> Response<ApiBody> {
    let mut response = Response::new(full(bytes));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// A JSON answer serialized straight from `value` (no intermediate JSON value: an execution's
/// result is written once). Object keys follow the type's field order.
pub fn serialized_response(status: StatusCode, value: &impl serde::Serialize) -> Response<ApiBody> {
    match serde_json::to_vec(value) {
        Ok(bytes) => json_bytes(status, bytes),
        Err(error) => {
            tracing::error!(%error, "an answer could not be serialized");
            error_response(&ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error: the answer could not be serialized (the host log has why)",
            ))
        }
    }
}

/// The envelope of `error`, with its status and headers.
pub fn error_response(error: &ApiError) -> Response<ApiBody> {
    let mut response = json_response(error.status, &error.body());
    if let Some(allow) = error.allow {
        response
            .headers_mut()
            .insert(http::header::ALLOW, HeaderValue::from_static(allow));
    }
    if let Some(seconds) = error.retry_after {
        response
            .headers_mut()
            .insert(http::header::RETRY_AFTER, HeaderValue::from(seconds));
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

/// How long a request body may take to arrive: `server.body_read_timeout_ms` in all, and once
/// `server.min_body_rate_grace_ms` has passed, at least `server.min_body_bytes_per_sec` on
/// average since the body began. The connection sets it around each request it serves
/// ([`BodyTiming::scope`]), so every body read through [`read_contract`] is bounded without the
/// handlers carrying the server's limits to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BodyTiming {
    total: Duration,
    min_bytes_per_sec: u64,
    grace: Duration,
}

tokio::task_local! {
    /// The body timing of the request being served on this task.
    static BODY_TIMING: BodyTiming;
}

/// Which bound a late body ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bound {
    Total,
    Rate,
}

impl BodyTiming {
    /// The body timing of `limits`.
    pub(crate) fn of(limits: &ServerLimits) -> Self {
        Self {
            total: limits.body_read_timeout,
            min_bytes_per_sec: limits.min_body_bytes_per_sec,
            grace: limits.min_body_rate_grace,
        }
    }

    /// Runs `future` (one request's handler) with this timing for its body reads.
    pub(crate) async fn scope<F: Future>(self, future: F) -> F::Output {
        BODY_TIMING.scope(self, future).await
    }

    /// The timing in force: the connection's, or the defaults outside one.
    fn current() -> Self {
        BODY_TIMING
            .try_with(|timing| *timing)
            .unwrap_or_else(|_| Self::of(&ServerLimits::default()))
    }

    /// By when more of the body must have arrived, `received` bytes after `started`, and which
    /// bound that is.
    fn deadline(&self, started: Instant, received: u64) -> (Instant, Bound) {
        let total = started + self.total;
        if self.min_bytes_per_sec == 0 {
            return (total, Bound::Total);
        }
        // `received` bytes buy `received / rate` seconds beyond the grace.
        let earned = Duration::from_millis(received.saturating_mul(1000) / self.min_bytes_per_sec);
        match started.checked_add(self.grace.saturating_add(earned)) {
            Some(rate) if rate < total => (rate, Bound::Rate),
            _ => (total, Bound::Total),
        }
    }

    /// The 408 for a body that ran into `bound` with `received` bytes after `started`.
    fn late(&self, bound: Bound, started: Instant, received: u64) -> ApiError {
        let elapsed = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let (limit, rule) = match bound {
            Bound::Total => (
                "body_read_timeout_ms",
                format!(
                    "the whole body must arrive within {} ms (server.body_read_timeout_ms)",
                    self.total.as_millis()
                ),
            ),
            Bound::Rate => (
                "min_body_bytes_per_sec",
                format!(
                    "after the first {} ms it must arrive at {} bytes/s or faster on average \
                     (server.min_body_bytes_per_sec)",
                    self.grace.as_millis(),
                    self.min_bytes_per_sec
                ),
            ),
        };
        ApiError::request_timeout(
            format!(
                "the request body did not arrive in time: {received} bytes in {elapsed} ms; \
                 {rule}; send the body with its head, without pauses"
            ),
            serde_json::json!({
                "limit": limit,
                "received_bytes": received,
                "body_read_timeout_ms": u64::try_from(self.total.as_millis()).unwrap_or(u64::MAX),
                "min_body_bytes_per_sec": self.min_bytes_per_sec,
            }),
        )
    }
}

/// Reads the body (JSON content type, at most `limit` bytes, within the [`BodyTiming`] in
/// force) and parses it as `T`.
pub async fn read_contract<T: Contract>(
    headers: &HeaderMap,
    body: Incoming,
    limit: u64,
) -> Result<T, ApiError> {
    let text = read_text(headers, body, limit).await?;
    ep_contracts::parse::<T>(&text).map_err(|e| ApiError::invalid_json(e.to_string()))
}

/// Reads the body like [`read_contract`] and deserializes it as `T` (an API value that is not
/// a contract).
pub async fn read_json<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: Incoming,
    limit: u64,
) -> Result<T, ApiError> {
    let text = read_text(headers, body, limit).await?;
    serde_json::from_str(&text).map_err(|e| ApiError::invalid_json(e.to_string()))
}

async fn read_text(headers: &HeaderMap, body: Incoming, limit: u64) -> Result<String, ApiError> {
    is_json(headers)?;
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let bytes = collect_limited(body, limit, declared.is_some_and(|length| length > limit)).await?;
    String::from_utf8(bytes.to_vec())
        .map_err(|_| ApiError::invalid_json("the request body is not UTF-8 JSON text"))
}

/// The whole body when it is at most `limit` bytes; otherwise 413, after reading and
/// discarding what the client sends (up to [`DRAIN_CAP`] / [`DRAIN_TIME`]) so it gets to read
/// the answer instead of a broken pipe. A body that arrives too slowly is 408.
async fn collect_limited(mut body: Incoming, limit: u64, over: bool) -> Result<Bytes, ApiError> {
    let timing = BodyTiming::current();
    let started = Instant::now();
    let mut reader = Reader {
        timing,
        started,
        buffer: BytesMut::new(),
    };
    if over {
        // Already refused: draining is best effort.
        let _ = tokio::time::timeout(DRAIN_TIME, reader.frames(&mut body, limit, true)).await;
        return Err(ApiError::body_too_large(limit));
    }
    if reader.frames(&mut body, limit, false).await? {
        return Err(ApiError::body_too_large(limit));
    }
    Ok(reader.buffer.freeze())
}

/// One body being read: what came so far, and the timing it must keep.
struct Reader {
    timing: BodyTiming,
    started: Instant,
    buffer: BytesMut,
}

impl Reader {
    /// Reads every frame into the buffer while the total stays within `limit`, then only
    /// counts and drops them (up to [`DRAIN_CAP`]); whether the body was over the limit. A
    /// frame that does not come by the timing's deadline is 408 (or, while draining, the end).
    async fn frames(
        &mut self,
        body: &mut Incoming,
        limit: u64,
        mut over: bool,
    ) -> Result<bool, ApiError> {
        let mut seen: u64 = 0;
        loop {
            let (deadline, bound) = self.timing.deadline(self.started, seen);
            let frame = match tokio::time::timeout_at(deadline.into(), body.frame()).await {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(_) if over => break,
                Err(_) => return Err(self.timing.late(bound, self.started, seen)),
            };
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
            self.buffer.extend_from_slice(&data);
        }
        Ok(over)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing(total_ms: u64, rate: u64, grace_ms: u64) -> BodyTiming {
        BodyTiming {
            total: Duration::from_millis(total_ms),
            min_bytes_per_sec: rate,
            grace: Duration::from_millis(grace_ms),
        }
    }

    #[test]
    fn the_rate_deadline_moves_with_each_byte_and_never_past_the_total() {
        let start = Instant::now();
        let t = timing(10_000, 1000, 500);
        assert_eq!(
            t.deadline(start, 0),
            (start + Duration::from_millis(500), Bound::Rate)
        );
        // 1000 bytes at 1000 B/s buy one more second.
        assert_eq!(
            t.deadline(start, 1000),
            (start + Duration::from_millis(1500), Bound::Rate)
        );
        assert_eq!(
            t.deadline(start, 1 << 30),
            (start + Duration::from_secs(10), Bound::Total)
        );
        // No rate: only the total.
        assert_eq!(
            timing(10_000, 0, 500).deadline(start, 0),
            (start + Duration::from_secs(10), Bound::Total)
        );
    }

    #[test]
    fn a_late_body_is_408_naming_the_bound_it_hit() {
        let t = timing(1000, 10, 0);
        let error = t.late(Bound::Rate, Instant::now(), 3);
        assert_eq!(error.status, StatusCode::REQUEST_TIMEOUT);
        assert_eq!(error.code, "request_timeout");
        assert_eq!(error.details["limit"], "min_body_bytes_per_sec");
        assert_eq!(error.details["received_bytes"], 3);
        assert!(error.message.contains("server.min_body_bytes_per_sec"));
        let error = t.late(Bound::Total, Instant::now(), 0);
        assert_eq!(error.details["limit"], "body_read_timeout_ms");
        assert!(error.message.contains("server.body_read_timeout_ms"));
    }
}
