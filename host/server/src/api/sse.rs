//! `POST /v1/stream` as `text/event-stream`: one `execution_event` frame per event, `: keep-alive`
//! comments while idle, and a final `result` frame (an `ExecutionResult` without `events`).
//!
//! The body polls the node's event stream itself, so when hyper drops the body because the
//! client went away, the event stream is dropped with it (which fires the execution's cancel
//! signal) and `execution.cancelled` is recorded with `"cause": "client_disconnected"`. When the
//! shutdown drain ends with the stream still open, it is cut: the lane's stream is dropped,
//! `execution.cancelled` is recorded with `"cause": "shutdown"` and the result frame is a
//! `cancellation` failure.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ep_contracts::boundary::{
    ExecutionEvent, ExecutionRef, ExecutionResult, Provenance, ResultStatus,
};
use ep_contracts::{Contract, Failure, FailureClass};
use ep_node::{CancelSignal, EventStream};
use futures::StreamExt;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Response};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use serde_json::{Value, json};
use tracing::Instrument;

use super::Shared;
use super::body::ApiBody;

/// Evidence type recorded when a served stream ends early.
const EXECUTION_CANCELLED: &str = "execution.cancelled";

/// Records how a stream ended when it is dropped without having sent its result.
struct StreamGuard {
    shared: Arc<Shared>,
    id: u64,
    execution_ref: ExecutionRef,
    lane_id: String,
    started: Instant,
    finished: bool,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.shared.close_stream(self.id);
        if self.finished {
            return;
        }
        tracing::info!(
            execution_ref = self.execution_ref.as_str(),
            lane = %self.lane_id,
            "stream client disconnected; execution cancelled"
        );
        self.shared
            .metrics
            .count_stream(&self.lane_id, "cancelled", self.started.elapsed());
        let node = self.shared.node.clone();
        let shared = Arc::clone(&self.shared);
        let execution_ref = self.execution_ref.clone();
        let lane_id = self.lane_id.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            shared.pending_records.fetch_add(1, Ordering::SeqCst);
            runtime.spawn(async move {
                node.record_execution_evidence(
                    EXECUTION_CANCELLED,
                    &execution_ref,
                    Some(&lane_id),
                    json!({
                        "execution_ref": execution_ref.as_str(),
                        "cause": "client_disconnected",
                    }),
                )
                .await;
                shared.pending_records.fetch_sub(1, Ordering::SeqCst);
            });
        }
    }
}

/// The state the body stream carries between frames.
struct State {
    events: Option<EventStream>,
    last: Option<ExecutionEvent>,
    provenance: Provenance,
    cut: CancelSignal,
    keep_alive: Duration,
    done: bool,
    guard: StreamGuard,
}

/// A stream counted as open (and cuttable by the drain) from before the lane starts until its
/// response takes it over; dropped unused, it closes again.
pub(crate) struct StreamSlot {
    shared: Arc<Shared>,
    id: u64,
    cut: CancelSignal,
    taken: bool,
}

impl StreamSlot {
    /// Registers a new open stream.
    pub(crate) fn open(shared: &Arc<Shared>) -> Self {
        let id = shared.next_id();
        let cut = shared.open_stream(id);
        Self {
            shared: Arc::clone(shared),
            id,
            cut,
            taken: false,
        }
    }

    fn take(mut self) -> (Arc<Shared>, u64, CancelSignal) {
        self.taken = true;
        (Arc::clone(&self.shared), self.id, self.cut.clone())
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        if !self.taken {
            self.shared.close_stream(self.id);
        }
    }
}

/// The `200 text/event-stream` answer for an admitted stream in `slot`.
pub(crate) fn response(
    slot: StreamSlot,
    execution_ref: ExecutionRef,
    lane_id: String,
    provenance: Provenance,
    events: EventStream,
) -> Response<ApiBody> {
    let (shared, id, cut) = slot.take();
    let keep_alive = shared.options.sse_keep_alive;
    let span = tracing::info_span!(
        "execution",
        lane = %lane_id,
        execution_ref = execution_ref.as_str(),
        kind = "stream",
    );
    let state = State {
        events: Some(events),
        last: None,
        provenance,
        cut,
        keep_alive,
        done: false,
        guard: StreamGuard {
            shared,
            id,
            execution_ref,
            lane_id,
            started: Instant::now(),
            finished: false,
        },
    };
    let frames = futures::stream::unfold(state, move |state| {
        next_frame(state).instrument(span.clone())
    })
    .map(|bytes| Ok::<_, std::convert::Infallible>(Frame::data(bytes)));
    let mut response = Response::new(StreamBody::new(frames).boxed_unsync());
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// What woke the body up.
enum Next {
    /// The drain ended with the stream still open.
    Cut,
    /// The lane's stream yielded (or ended).
    Event(Option<ExecutionEvent>),
    /// Nothing happened for a keep-alive interval.
    Idle,
}

async fn next_frame(mut state: State) -> Option<(Bytes, State)> {
    if state.done {
        return None;
    }
    let next = {
        let events = state.events.as_mut()?;
        tokio::select! {
            biased;
            () = state.cut.cancelled() => Next::Cut,
            next = events.next() => Next::Event(next),
            () = tokio::time::sleep(state.keep_alive) => Next::Idle,
        }
    };
    match next {
        Next::Idle => Some((Bytes::from_static(b": keep-alive\n\n"), state)),
        Next::Event(Some(event)) => {
            let frame = frame("execution_event", &event.to_value());
            state.last = Some(event);
            Some((frame, state))
        }
        Next::Event(None) => {
            state.events = None;
            state.done = true;
            state.guard.finished = true;
            let result = final_result(&state);
            let guard = &state.guard;
            guard.shared.metrics.count_stream(
                &guard.lane_id,
                result.status.as_str(),
                guard.started.elapsed(),
            );
            tracing::info!(status = result.status.as_str(), "stream ended");
            let frame = frame("result", &result.to_value());
            Some((frame, state))
        }
        Next::Cut => {
            // Dropping the lane's stream fires its cancel signal.
            state.events = None;
            state.done = true;
            state.guard.finished = true;
            let guard = &state.guard;
            guard
                .shared
                .node
                .record_execution_evidence(
                    EXECUTION_CANCELLED,
                    &guard.execution_ref,
                    Some(&guard.lane_id),
                    json!({"execution_ref": guard.execution_ref.as_str(), "cause": "shutdown"}),
                )
                .await;
            let failure = Failure::new(
                FailureClass::Cancellation,
                "the host shut down before the stream ended",
            )
            .with_detail("cause", "shutdown");
            let result = ExecutionResult {
                status: ResultStatus::Failed,
                error: Some(failure.to_value()),
                provenance: state.provenance.clone(),
                ..ExecutionResult::succeeded(guard.execution_ref.clone(), Default::default())
            };
            guard
                .shared
                .metrics
                .count_stream(&guard.lane_id, "failed", guard.started.elapsed());
            tracing::info!("stream cut at shutdown");
            let frame = frame("result", &result.to_value());
            Some((frame, state))
        }
    }
}

/// `succeeded`, or `failed` with the failure the last event reported
/// (`{"status": "failed", "error": …}`).
fn final_result(state: &State) -> ExecutionResult {
    let execution_ref = state.guard.execution_ref.clone();
    let failure = state.last.as_ref().and_then(|event| {
        let payload = &event.payload;
        (payload.get("status").and_then(Value::as_str) == Some("failed"))
            .then(|| payload.get("error").cloned().unwrap_or_else(|| json!({})))
    });
    let base = ExecutionResult {
        provenance: state.provenance.clone(),
        ..ExecutionResult::succeeded(execution_ref, Default::default())
    };
    match failure {
        Some(error) => ExecutionResult {
            status: ResultStatus::Failed,
            error: Some(error),
            ..base
        },
        None => base,
    }
}

/// One SSE frame: `event: <name>\ndata: <json>\n\n`.
fn frame(event: &str, data: &Value) -> Bytes {
    Bytes::from(format!("event: {event}\ndata: {data}\n\n"))
}
