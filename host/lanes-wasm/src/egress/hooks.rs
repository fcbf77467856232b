//! The `wasi:http` send hook of one execution: every outgoing request (so every redirect hop
//! the guest follows) is checked by the one egress decision ([`super::decision::decide`]: the
//! request's narrowing, then the lane's grant), then sent on the generation's pooled client for
//! the grant's reach, with first-byte and between-bytes timeouts bounded by the execution's
//! deadline and a response-size cap.
//!
//! A denial is an ordinary `HTTP-request-denied` error to the guest, never a trap, and is
//! recorded in the execution's [`EgressLog`] (which becomes `capability.denied` evidence). The
//! hook state also holds what the execution's other transports are checked against (the
//! WebSocket client asks [`LaneHttpHooks::admit`]), so every transport sees one narrowing.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use super::LaneEgress;
use super::client::{address_denied, has_io_kind};
use super::decision::{Allowed, Capability, Denial, decide};
use super::grants::RequestEgress;
pub(crate) use super::log::EgressLog;
use super::pattern::RequestTarget;
use crate::state::Attribution;

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

    /// Moves the deadline outbound requests are bounded by (a stream's next pull has its own).
    pub(crate) fn set_deadline(&mut self, deadline: Instant) {
        self.deadline = deadline;
    }

    /// The execution's egress log.
    pub(crate) fn log(&self) -> &EgressLog {
        &self.log
    }

    /// The execution's egress log, shared (a transport's connection task counts into it).
    pub(crate) fn shared_log(&self) -> Arc<EgressLog> {
        Arc::clone(&self.log)
    }

    /// Who the execution is, for the records of its transports.
    pub(crate) fn who(&self) -> &Attribution {
        &self.who
    }

    /// The one egress decision for a connection of `capability` to `target` (`None`: the URL
    /// has no host the host can check), under this execution's narrowing and its lane's grant;
    /// a refusal is recorded before it is returned.
    pub(crate) fn admit<'a>(
        &self,
        capability: Capability,
        target: Option<&'a RequestTarget>,
    ) -> Result<Allowed<'a>, Denial> {
        decide(target, &self.narrowing, self.egress.as_ref()).inspect_err(|denial| {
            self.log.deny(&self.who, capability, target, denial);
        })
    }

    /// Replaces the request's narrowing (closed while the guest validates), returning the old.
    pub(crate) fn replace_narrowing(
        &mut self,
        narrowing: Arc<RequestEgress>,
    ) -> Arc<RequestEgress> {
        std::mem::replace(&mut self.narrowing, narrowing)
    }

    fn denied() -> SendFuture {
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
        // `wasi:http` carries HTTP only: any other scheme has no destination to check.
        let target = RequestTarget::from_uri(request.uri()).filter(|t| t.scheme.is_http());
        // A refusal is recorded by `admit`.
        let Ok(allowed) = self.admit(Capability::Http, target.as_ref()) else {
            return Self::denied();
        };
        let Allowed {
            target,
            egress,
            reach,
        } = allowed;
        let target = target.clone();
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
                let denial = Denial::address_not_allowed(reach, &denied);
                log.deny(&who, Capability::Http, Some(&target), &denial);
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
