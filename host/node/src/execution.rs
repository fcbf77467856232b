//! What the node keeps of each execution it dispatched, unary or stream: the client that runs
//! it, its evidence context, the digest of the capability token handed to whoever started it,
//! and its lifecycle — whether it ended and whether (and why) it was cancelled.
//!
//! The lifecycle sits behind one async lock per execution, taken by every step that writes
//! one of the execution's own records (a cancel, the completion, an early drop). So the records
//! of one execution land in causal order (a cancel that fired the lane's signal is written
//! before the completion the signal caused), and a cancel that arrives after the completion
//! sees that the execution ended, is refused and writes nothing.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use ep_contracts::boundary::{ExecutionEvent, ExecutionRef, ExecutionResult, Provenance};
use ep_contracts::{Failure, FailureClass};
use futures::future::BoxFuture;
use futures::{FutureExt, Stream, StreamExt};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::evidence::{
    EXECUTION_CANCELLED, EXECUTION_COMPLETED, EvidenceContext, completed_payload,
};
use crate::node::Node;
use crate::traits::{EventStream, TargetClient};

/// Cause recorded when whoever read an execution's answer went away before its end.
pub const CAUSE_CLIENT_DISCONNECTED: &str = "client_disconnected";

/// A per-execution capability: whoever holds it may cancel (and later, send input to) the
/// execution it was minted for. The node keeps only its SHA-256; the token itself is handed
/// once to the caller that started the execution.
#[derive(Clone, PartialEq, Eq)]
pub struct ExecutionToken(String);

impl std::fmt::Debug for ExecutionToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExecutionToken(<redacted>)")
    }
}

impl ExecutionToken {
    /// `ept-` and 256 bits of OS randomness.
    pub(crate) fn mint() -> Self {
        Self(format!("ept-{}", ep_contracts::ids::random_hex(32)))
    }

    /// The token as the caller sends it back (`authorization: Bearer <token>` over the API).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub(crate) fn digest(&self) -> [u8; 32] {
        digest_of(&self.0)
    }
}

fn digest_of(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Whether the execution ended and whether a cancel was recorded for it (and with what cause).
#[derive(Debug, Default)]
pub(crate) struct Lifecycle {
    pub(crate) ended: bool,
    /// The target was called (`dispatch.started` recorded): its end is recorded too.
    pub(crate) dispatched: bool,
    /// `Some` once a cancel was recorded: its cause (`request` for a caller's cancel).
    pub(crate) cancel_cause: Option<String>,
}

/// What the node remembers of an execution, running or recently ended.
#[derive(Clone)]
pub(crate) struct ExecutionRecord {
    pub(crate) client: Arc<dyn TargetClient>,
    pub(crate) context: EvidenceContext,
    pub(crate) token_digest: [u8; 32],
    pub(crate) lifecycle: Arc<tokio::sync::Mutex<Lifecycle>>,
    /// The sending end of a stream's input channel (none for a unary execution).
    pub(crate) input: Option<tokio::sync::mpsc::Sender<ep_lane_api::Input>>,
}

impl ExecutionRecord {
    pub(crate) fn new(
        client: Arc<dyn TargetClient>,
        context: EvidenceContext,
        token: &ExecutionToken,
    ) -> Self {
        Self {
            client,
            context,
            token_digest: token.digest(),
            lifecycle: Arc::default(),
            input: None,
        }
    }

    /// Whether `presented` is this execution's token (compared in constant time).
    pub(crate) fn token_matches(&self, presented: &str) -> bool {
        use subtle::ConstantTimeEq as _;
        bool::from(digest_of(presented)[..].ct_eq(&self.token_digest[..]))
    }
}

/// The `failed` result of an execution whose reader went away, or that a cancel ended, before
/// it produced its own result.
pub(crate) fn ended_early_result(
    execution_ref: &ExecutionRef,
    provenance: &Provenance,
    cause: &str,
) -> ExecutionResult {
    let failure = Failure::new(
        FailureClass::Cancellation,
        format!("the execution ended before its result: {cause}"),
    )
    .with_detail("cause", cause);
    ExecutionResult {
        status: ep_contracts::boundary::ResultStatus::Failed,
        error: Some(failure.to_value()),
        provenance: provenance.clone(),
        ..ExecutionResult::succeeded(execution_ref.clone(), Default::default())
    }
}

pub use ep_lane_api::STREAM_COMPLETED_EVENT;

/// What the events of a stream said about its end so far: the failure or the output its last
/// event reported.
#[derive(Debug, Clone, Default)]
pub struct StreamEnding {
    failure: Option<Value>,
    output: Option<serde_json::Map<String, Value>>,
}

impl StreamEnding {
    /// Takes in the stream's latest event: the last one decides whether it failed; the output
    /// is the last lane event's (the node's closing `dispatch.*` record keeps it).
    pub fn observe(&mut self, event: &ExecutionEvent) {
        self.failure = event_failure(event);
        let kind = event.event_type.as_deref().unwrap_or_default();
        if !kind.starts_with("dispatch.") {
            self.output = event_output(event);
        }
    }

    /// The result the stream ended with (see [`stream_end_result`]).
    pub fn result(&self, execution_ref: &ExecutionRef, provenance: &Provenance) -> ExecutionResult {
        stream_end_result(execution_ref, provenance, self)
    }
}

/// The result a stream ended with: `succeeded` (with the output a final `lane.completed` event
/// reported, if one did), or `failed` with the failure its last event reported (`{"status":
/// "failed", "error": …}`), as the API's `result` frame reports it.
pub fn stream_end_result(
    execution_ref: &ExecutionRef,
    provenance: &Provenance,
    ending: &StreamEnding,
) -> ExecutionResult {
    let base = ExecutionResult {
        provenance: provenance.clone(),
        ..ExecutionResult::succeeded(
            execution_ref.clone(),
            ending.output.clone().unwrap_or_default(),
        )
    };
    match &ending.failure {
        Some(error) => ExecutionResult {
            status: ep_contracts::boundary::ResultStatus::Failed,
            error: Some(error.clone()),
            ..base
        },
        None => base,
    }
}

/// The failure an event reports, when it reports one (a final `{"status": "failed"}` event).
pub fn event_failure(event: &ExecutionEvent) -> Option<Value> {
    let payload = &event.payload;
    (payload.get("status").and_then(Value::as_str) == Some("failed"))
        .then(|| payload.get("error").cloned().unwrap_or_else(|| json!({})))
}

/// The output a final `lane.completed` event reports.
fn event_output(event: &ExecutionEvent) -> Option<serde_json::Map<String, Value>> {
    if event.event_type.as_deref() != Some(STREAM_COMPLETED_EVENT) {
        return None;
    }
    match event.payload.get("output") {
        Some(Value::Object(output)) => Some(output.clone()),
        _ => None,
    }
}

impl Node {
    /// Writes the completion of an execution that produced `result` (after any cancel being
    /// recorded), marks it ended and moves it to the recent set.
    pub(crate) async fn record_completion(
        &self,
        record: &ExecutionRecord,
        reference: &str,
        result: &ExecutionResult,
        kind: &str,
        event_count: Option<usize>,
        capability_denials: Vec<Value>,
    ) {
        let mut life = record.lifecycle.lock().await;
        for denial in capability_denials {
            self.emit_in(
                &record.context,
                crate::evidence::CAPABILITY_DENIED,
                crate::evidence::bound(denial),
            )
            .await;
        }
        if life.dispatched {
            let (kind, payload) = crate::evidence::dispatch_finished(result);
            self.emit_in(&record.context, kind, payload).await;
        }
        let mut payload = completed_payload(result);
        if let Value::Object(map) = &mut payload {
            map.insert("kind".to_owned(), Value::from(kind));
            if let Some(count) = event_count {
                map.insert("event_count".to_owned(), Value::from(count));
            }
        }
        self.emit_in(&record.context, EXECUTION_COMPLETED, payload)
            .await;
        life.ended = true;
        drop(life);
        self.executions().finish(reference);
        self.settle().await;
    }

    /// Writes how an execution ended when its reader dropped it before its result:
    /// `execution.cancelled` with cause `client_disconnected` (unless a cancel was already
    /// recorded), then a `failed` completion of class `cancellation`.
    pub(crate) async fn record_early_end(
        &self,
        record: &ExecutionRecord,
        execution_ref: &ExecutionRef,
        provenance: &Provenance,
        kind: &str,
        event_count: Option<usize>,
    ) {
        let life = record.lifecycle.lock().await;
        if life.ended {
            return;
        }
        let cause = match &life.cancel_cause {
            Some(cause) => cause.clone(),
            None => {
                self.emit_in(
                    &record.context,
                    EXECUTION_CANCELLED,
                    json!({
                        "execution_ref": execution_ref.as_str(),
                        "cause": CAUSE_CLIENT_DISCONNECTED,
                    }),
                )
                .await;
                CAUSE_CLIENT_DISCONNECTED.to_owned()
            }
        };
        drop(life);
        let result = ended_early_result(execution_ref, provenance, &cause);
        self.record_completion(
            record,
            execution_ref.as_str(),
            &result,
            kind,
            event_count,
            Vec::new(),
        )
        .await;
    }

    /// Runs `record` off the caller's path (a `Drop` cannot wait), counted so that
    /// [`Node::shutdown`] waits for it before it flushes the sinks.
    pub(crate) fn spawn_record(&self, record: impl Future<Output = ()> + Send + 'static) {
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let pending = Arc::clone(&self.inner.pending);
                pending.begin();
                runtime.spawn(async move {
                    record.await;
                    pending.end();
                });
            }
            Err(_) => tracing::warn!(
                "an execution ended outside a tokio runtime; its end is not recorded"
            ),
        }
    }
}

/// The node's stream of an admitted execution: `dispatch.started`, the lane's events (counted),
/// then `dispatch.completed` / `dispatch.failed`. When the lane's stream ends it writes the
/// completion before it yields that last event and the end, so a reader that saw the end finds
/// the record. Dropped before its end, it drops the lane's stream (which fires the
/// execution's cancel signal) and records the early end.
pub(crate) struct RecordedStream {
    events: Option<EventStream>,
    node: Node,
    record: ExecutionRecord,
    execution_ref: ExecutionRef,
    provenance: Provenance,
    count: usize,
    outcome: StreamEnding,
    /// Where the lane reports capability denials, and the lane's id for their entries.
    lane_evidence: (ep_lane_api::LaneEvidence, String),
    /// Capability denials the lane reported (at most [`MAX_STREAM_DENIALS`]).
    denials: Vec<Value>,
    ending: Option<BoxFuture<'static, ()>>,
    ended: bool,
    /// Whether the execution was dispatched, so the stream ends with `dispatch.completed` /
    /// `dispatch.failed` (an expired deadline's stream is that one event already).
    dispatched: bool,
    /// The `dispatch.started` event, yielded before the lane's first.
    opening: Option<ExecutionEvent>,
    /// The closing `dispatch.*` event, yielded once the completion is recorded.
    closing: Option<ExecutionEvent>,
}

/// Most capability denials of one stream recorded as records of their own.
const MAX_STREAM_DENIALS: usize = 16;

impl RecordedStream {
    pub(crate) fn new(
        events: EventStream,
        node: Node,
        record: ExecutionRecord,
        execution_ref: ExecutionRef,
        provenance: Provenance,
        lane_evidence: (ep_lane_api::LaneEvidence, String),
        started: Option<ExecutionEvent>,
    ) -> Self {
        Self {
            lane_evidence,
            dispatched: started.is_some(),
            opening: started,
            closing: None,
            events: Some(events),
            node,
            record,
            execution_ref,
            provenance,
            count: 0,
            outcome: StreamEnding::default(),
            denials: Vec::new(),
            ending: None,
            ended: false,
        }
    }

    fn completion(&mut self) -> BoxFuture<'static, ()> {
        let node = self.node.clone();
        let record = self.record.clone();
        let result = self.outcome.result(&self.execution_ref, &self.provenance);
        if self.dispatched {
            self.closing = Some(crate::evidence::dispatch_finished_event(&result));
        }
        let count = self.count;
        let denials = self.denials.clone();
        async move {
            node.record_completion(
                &record,
                result.execution_ref.as_str(),
                &result,
                "stream",
                Some(count),
                denials,
            )
            .await;
        }
        .boxed()
    }
}

impl Stream for RecordedStream {
    type Item = ExecutionEvent;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ExecutionEvent>> {
        let this = self.get_mut();
        loop {
            if this.ended {
                return Poll::Ready(None);
            }
            if let Some(ending) = this.ending.as_mut() {
                return match ending.poll_unpin(cx) {
                    Poll::Ready(()) => {
                        this.ending = None;
                        this.ended = true;
                        // The record is written: the reader may now learn how it ended.
                        Poll::Ready(this.closing.take())
                    }
                    Poll::Pending => Poll::Pending,
                };
            }
            if let Some(opening) = this.opening.take() {
                return Poll::Ready(Some(opening));
            }
            let Some(events) = this.events.as_mut() else {
                return Poll::Ready(None);
            };
            match events.poll_next_unpin(cx) {
                Poll::Ready(Some(mut event)) => {
                    this.count += 1;
                    this.outcome.observe(&event);
                    // A denial the lane reported shows in the event it came with.
                    let (lane_evidence, lane_id) = &this.lane_evidence;
                    let denials =
                        crate::dispatch::show_denials(lane_evidence, lane_id, &mut event.evidence);
                    let room = MAX_STREAM_DENIALS.saturating_sub(this.denials.len());
                    this.denials.extend(denials.into_iter().take(room));
                    return Poll::Ready(Some(event));
                }
                Poll::Ready(None) => {
                    this.events = None;
                    this.ending = Some(this.completion());
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl Drop for RecordedStream {
    fn drop(&mut self) {
        if self.ended {
            return;
        }
        // Dropping the lane's stream fires the execution's cancel signal.
        self.events = None;
        if let Some(ending) = self.ending.take() {
            self.node.spawn_record(ending);
            return;
        }
        let node = self.node.clone();
        let record = self.record.clone();
        let execution_ref = self.execution_ref.clone();
        let provenance = self.provenance.clone();
        let count = self.count;
        self.node.spawn_record(async move {
            node.record_early_end(&record, &execution_ref, &provenance, "stream", Some(count))
                .await;
        });
    }
}

/// Counts evidence records written off the request path, so shutdown can wait for them.
#[derive(Debug, Default)]
pub(crate) struct PendingRecords {
    count: std::sync::atomic::AtomicUsize,
    quiet: tokio::sync::Notify,
}

impl PendingRecords {
    fn begin(&self) {
        self.count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    fn end(&self) {
        self.count.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        self.quiet.notify_waiters();
    }

    /// Waits until no record is pending, or `limit` passed; whether none is.
    pub(crate) async fn settle(&self, limit: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let quiet = self.quiet.notified();
            if self.count.load(std::sync::atomic::Ordering::SeqCst) == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, quiet).await.is_err() {
                return self.count.load(std::sync::atomic::Ordering::SeqCst) == 0;
            }
        }
    }

    /// How many records are being written now.
    pub(crate) fn count(&self) -> usize {
        self.count.load(std::sync::atomic::Ordering::SeqCst)
    }
}
