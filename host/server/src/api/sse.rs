//! `POST /v1/stream` as `text/event-stream`: one `execution_event` frame per event, `: keep-alive`
//! comments while idle, and a final `result` frame (an `ExecutionResult` without `events`).
//!
//! The answer's headers name the execution (`x-execution-ref`) and carry its capability token
//! (`x-execution-token`), the caller's credential to cancel it.
//!
//! The body polls the node's event stream itself, so when hyper drops the body because the
//! client went away, the event stream is dropped with it: the node fires the execution's cancel
//! signal and records `execution.cancelled` with `"cause": "client_disconnected"` and the
//! `execution.completed` that follows. When the shutdown drain ends with the stream still open,
//! it is cut: the node cancels it with cause `shutdown`, the lane's stream is dropped and the
//! result frame is a `cancellation` failure. A stream that ends by itself is recorded by the
//! node before the result frame is sent.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ep_contracts::boundary::{
    ExecutionEvent, ExecutionRef, ExecutionResult, Provenance, ResultStatus,
};
use ep_contracts::{Contract, Failure, FailureClass};
use ep_node::{CancelSignal, EventStream, OpenStream, StreamEnding};
use futures::StreamExt;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Response};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use serde_json::Value;
use tracing::Instrument;

use super::Shared;
use super::body::ApiBody;

/// Counts a served stream's end in the metrics when it is dropped without having sent its
/// result (the node records the execution's end itself).
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
    }
}

/// The state the body stream carries between frames.
struct State {
    events: Option<EventStream>,
    ending: StreamEnding,
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

/// Header naming the execution a stream runs as.
pub(crate) const EXECUTION_REF_HEADER: &str = "x-execution-ref";
/// Header carrying the stream's capability token: the caller's credential for later calls
/// that name the execution (cancel).
pub(crate) const EXECUTION_TOKEN_HEADER: &str = "x-execution-token";

/// The `200 text/event-stream` answer for an admitted stream in `slot`; its headers name the
/// execution and carry its capability token.
pub(crate) fn response(
    slot: StreamSlot,
    open: OpenStream,
    lane_id: String,
    provenance: Provenance,
) -> Response<ApiBody> {
    let OpenStream {
        execution_ref,
        token,
        events,
    } = open;
    let (shared, id, cut) = slot.take();
    let keep_alive = shared.options.sse_keep_alive;
    let span = tracing::info_span!(
        "execution",
        lane = %lane_id,
        execution_ref = execution_ref.as_str(),
        kind = "stream",
    );
    let reference_header = HeaderValue::from_str(execution_ref.as_str());
    let token_header = HeaderValue::from_str(token.as_str());
    let state = State {
        events: Some(events),
        ending: StreamEnding::default(),
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
    // Refs and tokens are ASCII hex; a value that somehow is not is left out, not a panic.
    if let (Ok(reference), Ok(token)) = (reference_header, token_header) {
        headers.insert(EXECUTION_REF_HEADER, reference);
        headers.insert(EXECUTION_TOKEN_HEADER, token);
    }
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
            state.ending.observe(&event);
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
            // The node records the cancel (cause `shutdown`) and fires the lane's signal;
            // dropping the lane's stream then records its end.
            let guard = &state.guard;
            if let Err(error) = guard
                .shared
                .node
                .cancel_with_cause(&guard.execution_ref, "shutdown")
                .await
            {
                tracing::debug!(%error, "stream cut at shutdown had already ended");
            }
            state.events = None;
            state.done = true;
            state.guard.finished = true;
            let guard = &state.guard;
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

/// `succeeded`, or `failed` with the failure the last event reported, exactly as the node
/// records the stream's end.
fn final_result(state: &State) -> ExecutionResult {
    state
        .ending
        .result(&state.guard.execution_ref, &state.provenance)
}

/// One SSE frame: `event: <name>\ndata: <json>\n\n`.
fn frame(event: &str, data: &Value) -> Bytes {
    Bytes::from(format!("event: {event}\ndata: {data}\n\n"))
}
