//! The `wasi:http` send hook of one execution: every outgoing request (so every redirect hop
//! the guest follows) is checked against the request's narrowing and the lane's grant, then
//! sent on the generation's pooled client for the grant's reach, with first-byte and
//! between-bytes timeouts bounded by the execution's deadline and a response-size cap.
//!
//! A denial is an ordinary `HTTP-request-denied` error to the guest, never a trap, and is
//! recorded in the execution's [`EgressLog`] (which becomes `capability.denied` evidence).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ep_lane_api::CapabilityDenial;
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use super::LaneEgress;
use super::client::{address_denied, has_io_kind};
use super::grants::RequestEgress;
use super::pattern::RequestTarget;
use crate::state::Attribution;

/// Denials kept per execution (the rest are counted).
const MAX_DENIALS_KEPT: usize = 16;

/// What one execution did with outbound HTTP: counters and the denials, for evidence.
#[derive(Debug, Default)]
pub(crate) struct EgressLog {
    inner: Mutex<LogInner>,
}

#[derive(Debug, Default)]
struct LogInner {
    requests: u64,
    denied: u64,
    denials: Vec<CapabilityDenial>,
    /// The most recent denial's reason and destination, for the guest to ask about.
    last: Option<(String, Option<String>)>,
}

impl EgressLog {
    fn sent(&self) {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .requests += 1;
    }

    fn deny(&self, who: &Attribution, target: Option<&RequestTarget>, reason: &str, detail: Value) {
        let destination = target.map(|t| format!("{}://{}:{}", t.scheme.as_str(), t.host, t.port));
        tracing::warn!(
            lane_id = &*who.lane_id,
            execution_ref = who.execution_ref.as_str(),
            destination,
            reason,
            "outbound http request denied"
        );
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.requests += 1;
        inner.denied += 1;
        inner.last = Some((reason.to_owned(), destination.clone()));
        if inner.denials.len() < MAX_DENIALS_KEPT {
            // The path may carry tokens: only its fingerprint enters evidence.
            let path = target.map(|t| ep_contracts::canonical::sha256_ref(t.path.as_bytes()));
            inner.denials.push(
                CapabilityDenial::new("http", reason)
                    .with("destination", destination)
                    .with("path_sha256", path)
                    .with("detail", detail),
            );
        }
    }

    /// The denials kept since the last call (the counters stay).
    pub(crate) fn take_denials(&self) -> Vec<CapabilityDenial> {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        std::mem::take(&mut inner.denials)
    }

    /// The reason and destination of the most recent denial (kept however many were counted).
    pub(crate) fn last_denial(&self) -> Option<(String, Option<String>)> {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.last.clone()
    }

    /// `(requests, denied)` so far.
    pub(crate) fn counts(&self) -> (u64, u64) {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        (inner.requests, inner.denied)
    }
}

/// The hook state of one store.
pub(crate) struct LaneHttpHooks {
    egress: Option<Arc<LaneEgress>>,
    narrowing: Arc<RequestEgress>,
    deadline: Instant,
    log: Arc<EgressLog>,
    who: Attribution,
}

impl LaneHttpHooks {
    pub(crate) fn new(
        egress: Option<Arc<LaneEgress>>,
        narrowing: Arc<RequestEgress>,
        deadline: Instant,
        log: Arc<EgressLog>,
        who: Attribution,
    ) -> Self {
        Self {
            egress,
            narrowing,
            deadline,
            log,
            who,
        }
    }

    /// The execution's egress log.
    pub(crate) fn log(&self) -> &EgressLog {
        &self.log
    }

    /// Replaces the request's narrowing (closed while the guest validates), returning the old.
    pub(crate) fn replace_narrowing(
        &mut self,
        narrowing: Arc<RequestEgress>,
    ) -> Arc<RequestEgress> {
        std::mem::replace(&mut self.narrowing, narrowing)
    }

    fn denied(&self, target: Option<&RequestTarget>, reason: &str, detail: Value) -> SendFuture {
        self.log.deny(&self.who, target, reason, detail);
        Box::new(async { Err(HttpError::HttpRequestDenied) })
    }
}

type IoFuture = Box<dyn Future<Output = Result<(), HttpError>> + Send>;
type SendFuture =
    Box<dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), HttpError>> + Send>;

impl WasiHttpHooks for LaneHttpHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: IoFuture,
    ) -> SendFuture {
        drop(fut);
        let Some(target) = RequestTarget::from_uri(request.uri()) else {
            return self.denied(None, "invalid_destination", json!({}));
        };
        if !self.narrowing.allows(&target) {
            let (reason, detail) = match &*self.narrowing {
                RequestEgress::Invalid(why) => ("request_egress_invalid", json!({ "error": why })),
                RequestEgress::Nothing => ("request_denies_egress", json!({})),
                RequestEgress::Lane | RequestEgress::Only(_) => {
                    ("outside_request_egress", json!({}))
                }
            };
            return self.denied(Some(&target), reason, detail);
        }
        let Some(egress) = self.egress.clone() else {
            return self.denied(Some(&target), "no_http_grant", json!({}));
        };
        let Some(reach) = egress.grants.reach(&target) else {
            return self.denied(
                Some(&target),
                "no_matching_grant",
                json!({ "grants": egress.grants.to_string() }),
            );
        };
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        // The guest's own timeouts apply, never beyond the execution's deadline; connect and
        // first byte are bounded together (the pooled client may reuse a connection).
        let options = options.unwrap_or_default();
        let first_byte = match (options.connect_timeout, options.first_byte_timeout) {
            (Some(connect), Some(first)) => connect.saturating_add(first).min(remaining),
            _ => remaining,
        };
        let between_bytes = options
            .between_bytes_timeout
            .map_or(remaining, |asked| asked.min(remaining));
        let client = egress.clients.for_reach(reach).clone();
        let log = Arc::clone(&self.log);
        let who = self.who.clone();
        let cap = egress.max_response_bytes;
        Box::new(async move {
            let answer = tokio::time::timeout(first_byte, client.request(request)).await;
            if let Ok(Err(error)) = &answer
                && let Some(denied) = address_denied(error)
            {
                let addresses: Vec<Value> = denied
                    .addresses
                    .iter()
                    .map(
                        |(ip, class)| json!({ "address": ip.to_string(), "class": class.as_str() }),
                    )
                    .collect();
                log.deny(
                    &who,
                    Some(&target),
                    "address_not_allowed",
                    json!({ "reach": reach.as_str(), "addresses": addresses }),
                );
                return Err(HttpError::HttpRequestDenied);
            }
            log.sent();
            let response = match answer {
                Err(_) => return Err(HttpError::ConnectionReadTimeout),
                Ok(Ok(response)) => response,
                Ok(Err(error)) => {
                    tracing::debug!(error = %error_text(&error), "outbound http request failed");
                    return Err(if has_io_kind(&error, std::io::ErrorKind::TimedOut) {
                        HttpError::ConnectionTimeout
                    } else if has_io_kind(&error, std::io::ErrorKind::ConnectionRefused) {
                        HttpError::ConnectionRefused
                    } else if error.is_connect() {
                        HttpError::DestinationUnavailable
                    } else {
                        HttpError::ConnectionTerminated
                    });
                }
            };
            let response = response
                .map(|incoming| GuardedBody::new(incoming, between_bytes, cap).boxed_unsync());
            Ok((response, Box::new(async { Ok(()) }) as IoFuture))
        })
    }
}

/// An error and its sources on one line.
fn error_text(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

/// A response body with a between-bytes timeout and a size cap.
struct GuardedBody {
    inner: hyper::body::Incoming,
    between_bytes: Duration,
    idle: Pin<Box<tokio::time::Sleep>>,
    received: u64,
    cap: u64,
    done: bool,
}

impl GuardedBody {
    fn new(inner: hyper::body::Incoming, between_bytes: Duration, cap: u64) -> Self {
        Self {
            inner,
            between_bytes,
            idle: Box::pin(tokio::time::sleep(between_bytes)),
            received: 0,
            cap,
            done: false,
        }
    }
}

impl Body for GuardedBody {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(None) => {
                this.done = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(error))) => {
                this.done = true;
                Poll::Ready(Some(Err(HttpError::from(error))))
            }
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received = this.received.saturating_add(data.len() as u64);
                    if this.received > this.cap {
                        this.done = true;
                        return Poll::Ready(Some(Err(HttpError::HttpResponseBodySize(Some(
                            this.received,
                        )))));
                    }
                }
                let next = tokio::time::Instant::now() + this.between_bytes;
                this.idle.as_mut().reset(next);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => match this.idle.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    this.done = true;
                    Poll::Ready(Some(Err(HttpError::ConnectionReadTimeout)))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.is_end_stream()
    }
}
