//! Streams: the guest's pull-based `event-stream` resource as the node's `EventStream`. The host
//! calls `next()` only when the consumer polls, so a slow consumer slows the guest (backpressure
//! for free). The stream owns its store, its pooled instance slot and its turn in the lane's
//! concurrency gate; dropping the stream drops them all.
//!
//! Each pull gets the request's full deadline budget (epochs + a tokio timeout), measured from
//! the pull, cut short by the stream's lifetime (`LaneLimits::max_stream_lifetime`); and a
//! stream yields at most `LaneLimits::max_stream_events` events. Either end is a final
//! `lane.failed` event (`timeout` cause `stream_lifetime`, `policy_denied` cause
//! `stream_event_budget`), so no stream runs or streams without bound. Events the guest emits
//! through `events.emit` while a pull runs come out before the pulled item. A fault during setup
//! or a pull ends the stream with one final `lane.failed` event whose payload is
//! `{"status": "failed", "error": <dumped failure>}`; the guest's own refusal of the stream is
//! the usual rejection.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ep_contracts::boundary::{
    AdmissionRejection, ExecutionEvent, ExecutionRef, ExecutionRequest, Map,
};
use ep_lane_api::{CancelSignal, EventStream, ExecutionContext, STREAM_COMPLETED_EVENT};
use futures::StreamExt;
use serde_json::Value;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::timeout_at;
use wasmtime::component::ResourceAny;

use crate::abi::{AbiVersion, Pulled};
use crate::bindings::types;
use crate::capability::http::StreamDenials;
use crate::convert;
use crate::fault::{Fault, Phase, classify};
use crate::lane::{Instance, LaneCore};

/// Event type of the final event of a stream that ended in a fault.
pub const STREAM_FAILED_EVENT: &str = "lane.failed";

/// A running stream: the store, the guest resource, and what is ready to hand out.
struct Running {
    core: Arc<LaneCore>,
    instance: Instance,
    resource: ResourceAny,
    execution_ref: ExecutionRef,
    timeout: Duration,
    cancel: CancelSignal,
    ready: VecDeque<ExecutionEvent>,
    done: bool,
    /// When the stream's lifetime ends.
    ends_at: Instant,
    /// Events handed out so far, against `core.limits.max_stream_events`.
    yielded: u64,
    /// The host's final failure event, handed out after `ready` whatever the budget (kept
    /// apart so a guest cannot dodge the budget by naming its events like it).
    last: Option<ExecutionEvent>,
    /// Where the outbound HTTP it was refused is reported, pull by pull.
    denials: StreamDenials,
    _turn: OwnedSemaphorePermit,
}

/// Opens a stream on a fresh instance; see the module docs for how faults surface.
pub(crate) async fn open(
    core: Arc<LaneCore>,
    request: ExecutionRequest,
    ctx: ExecutionContext,
) -> Result<EventStream, AdmissionRejection> {
    let timeout = convert::timeout_for(&ctx, &core.limits);
    let opened_at = Instant::now();
    let ends_at = opened_at + core.limits.max_stream_lifetime;
    let deadline = (opened_at + timeout).min(ends_at);
    let wit = convert::wit_request(&request, &core.lane_id, timeout);
    let execution_ref = request.execution_ref.clone();
    let egress = crate::lane::EgressScope::of(&request);
    let denials = StreamDenials::new(Arc::clone(&egress.log), ctx.evidence.clone());
    let setup = async {
        let turn = match timeout_at(deadline.into(), core.gate.enter()).await {
            Err(_) => {
                return Err(Fault::Deadline {
                    timeout,
                    phase: Phase::Queued,
                });
            }
            Ok(Err(saturated)) => {
                return Err(Fault::Saturated {
                    max_concurrent: saturated.max_concurrent,
                    max_queued: saturated.max_queued,
                });
            }
            Ok(Ok(turn)) => turn,
        };
        let mut instance = core
            .instantiate(&execution_ref, deadline, timeout, egress)
            .await?;
        if core.abi == AbiVersion::V0_2 {
            // 0.1.0 has no `input`: its streams leave the channel untaken.
            instance.store.data().caps.input.attach(&ctx.input);
        }
        let call = instance.lane.stream(&mut instance.store, &wit);
        let answer = timeout_at(deadline.into(), call).await;
        match answer {
            Ok(Ok(Ok(resource))) => Ok(Ok((instance, resource, turn))),
            Ok(Ok(Err(rejection))) => Ok(Err(convert::rejection(rejection))),
            Ok(Err(error)) => Err(classify(&error, instance.store.data(), timeout)),
            Err(_) => Err(Fault::Deadline {
                timeout,
                phase: Phase::Running,
            }),
        }
    };
    let opened = tokio::select! {
        biased;
        () = ctx.cancel.cancelled() => Err(Fault::Cancelled),
        opened = setup => opened,
    };
    denials.report_new();
    let (mut instance, resource, turn) = match opened {
        Ok(Ok(running)) => running,
        Ok(Err(rejection)) => return Err(rejection),
        Err(fault) => {
            let event = failed_event(&core, &execution_ref, &fault);
            return Ok(futures::stream::iter([event]).boxed());
        }
    };
    let ready: VecDeque<ExecutionEvent> = instance.store.data_mut().caps.events.drain().into();
    let running = Running {
        core,
        instance,
        resource,
        execution_ref,
        timeout,
        cancel: ctx.cancel,
        ready,
        done: false,
        ends_at,
        yielded: 0,
        last: None,
        denials,
        _turn: turn,
    };
    Ok(futures::stream::unfold(running, next).boxed())
}

/// Hands out the next ready event, pulling from the guest when none is ready.
async fn next(mut running: Running) -> Option<(ExecutionEvent, Running)> {
    loop {
        if let Some(event) = running.ready.pop_front() {
            let budget = running.core.limits.max_stream_events;
            if running.yielded >= budget {
                let event = end_with(&mut running, &Fault::StreamEventBudget { budget });
                return Some((event, running));
            }
            running.yielded += 1;
            return Some((event, running));
        }
        if running.done {
            return running.last.take().map(|event| (event, running));
        }
        if Instant::now() >= running.ends_at {
            let fault = Fault::StreamLifetime {
                lifetime: running.core.limits.max_stream_lifetime,
            };
            return Some((end_with(&mut running, &fault), running));
        }
        pull(&mut running).await;
    }
}

/// Ends the stream with the failure event of `fault`: nothing after it is handed out.
fn end_with(running: &mut Running, fault: &Fault) -> ExecutionEvent {
    running.ready.clear();
    running.done = true;
    failed_event(&running.core, &running.execution_ref, fault)
}

/// One `next()` call on the guest under a fresh deadline.
async fn pull(running: &mut Running) {
    let timeout = running.timeout;
    let deadline = (Instant::now() + timeout).min(running.ends_at);
    let lifetime_cut = deadline == running.ends_at;
    running.instance.store.data_mut().set_deadline(deadline);
    let resource = running.resource;
    let cancel = running.cancel.clone();
    let instance = &mut running.instance;
    let call = async {
        let pulled = instance.lane.next(&mut instance.store, resource);
        match timeout_at(deadline.into(), pulled).await {
            Ok(Ok(item)) => Ok(item),
            Ok(Err(error)) => Err(classify(&error, instance.store.data(), timeout)),
            Err(_) => Err(Fault::Deadline {
                timeout,
                phase: Phase::Running,
            }),
        }
    };
    let answer = tokio::select! {
        biased;
        () = cancel.cancelled() => Err(Fault::Cancelled),
        answer = call => answer,
    };
    running.denials.report_new();
    let emitted = running.instance.store.data_mut().caps.events.drain();
    running.ready.extend(emitted);
    let fault = match answer {
        Ok(Pulled::Event(raw)) => match event(&running.execution_ref, raw) {
            Ok(event) => {
                running.ready.push_back(event);
                return;
            }
            Err(fault) => fault,
        },
        Ok(Pulled::End(None)) => {
            running.done = true;
            return;
        }
        Ok(Pulled::End(Some(outcome))) => {
            running.done = true;
            match ended_event(&running.core, &running.execution_ref, outcome) {
                Ok(event) => {
                    running.last = Some(event);
                    return;
                }
                Err(fault) => fault,
            }
        }
        Err(Fault::Deadline { .. }) if lifetime_cut => Fault::StreamLifetime {
            lifetime: running.core.limits.max_stream_lifetime,
        },
        Err(fault) => fault,
    };
    running.last = Some(failed_event(&running.core, &running.execution_ref, &fault));
    running.done = true;
}

/// The final event of a stream the guest ended with `outcome`: `lane.completed` with its output
/// and metrics, or `lane.failed` with its classified failure (the guest's, plus the digest).
fn ended_event(
    core: &LaneCore,
    execution_ref: &ExecutionRef,
    outcome: types::Outcome,
) -> Result<ExecutionEvent, Fault> {
    let outcome = convert::outcome(outcome)?;
    let mut payload = Map::new();
    // `convert::outcome` gives every unsuccessful outcome a failure.
    if let Some(failure) = outcome.failure.filter(|_| !outcome.succeeded) {
        let failure = failure.with_detail("component_digest", core.digest.as_str());
        payload.insert("status".to_owned(), Value::from("failed"));
        payload.insert("error".to_owned(), failure.to_value());
        payload.insert("output".to_owned(), Value::Object(outcome.output));
        return Ok(ExecutionEvent::new(
            execution_ref.clone(),
            STREAM_FAILED_EVENT,
            payload,
        ));
    }
    payload.insert("status".to_owned(), Value::from("succeeded"));
    payload.insert("output".to_owned(), Value::Object(outcome.output));
    payload.insert("metrics".to_owned(), Value::Object(outcome.metrics));
    Ok(ExecutionEvent::new(
        execution_ref.clone(),
        STREAM_COMPLETED_EVENT,
        payload,
    ))
}

/// A guest stream item as an execution event (its payload must be a JSON object).
fn event(execution_ref: &ExecutionRef, raw: types::Event) -> Result<ExecutionEvent, Fault> {
    let payload = convert::json_object("event payload-json", &raw.payload_json)?;
    Ok(ExecutionEvent::new(
        execution_ref.clone(),
        raw.event_type,
        payload,
    ))
}

/// The final event of a stream that ended in `fault`.
fn failed_event(core: &LaneCore, execution_ref: &ExecutionRef, fault: &Fault) -> ExecutionEvent {
    let mut payload = Map::new();
    payload.insert("status".to_owned(), Value::from("failed"));
    payload.insert("error".to_owned(), core.failure(fault).to_value());
    ExecutionEvent::new(execution_ref.clone(), STREAM_FAILED_EVENT, payload)
}
