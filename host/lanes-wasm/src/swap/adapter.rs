//! The slot as the node sees it: its [`LaneAdapter`] (each call on the generation the request
//! belongs to, or handed to the successor of a retired slot) and [`register_lane_slot`].

use std::sync::Arc;

use async_trait::async_trait;
use ep_contracts::boundary::{
    AdmissionRejection, ExecutionRequest, ExecutionResult, LaneCapabilities, RejectionReason,
    ResultStatus, TargetDescriptor,
};
use ep_contracts::{Failure, FailureClass};
use ep_lane_api::{ConnectOptions, EventStream, ExecutionContext, LaneAdapter, LaneHost};
use futures::StreamExt;

use super::{Activation, Binding, LANE_ACTIVATED, LaneSlot, Retirement, lock};
use crate::verifier::WasmEngineVerifier;

/// `details.cause` of a call refused because its lane was retired without a successor.
const RETIRED_CAUSE: &str = "lane_retired";

impl LaneSlot {
    fn refusal(&self, reason: &str) -> AdmissionRejection {
        AdmissionRejection::new(
            RejectionReason::LaneNotRegistered,
            format!("lane {} is no longer served: {reason}", self.inner.lane_id),
        )
        .with_detail("cause", RETIRED_CAUSE)
    }

    fn refused_result(&self, request: &ExecutionRequest, reason: &str) -> ExecutionResult {
        let failure = Failure::new(
            FailureClass::PolicyDenied,
            format!("lane {} is no longer served: {reason}", self.inner.lane_id),
        )
        .with_detail("cause", RETIRED_CAUSE);
        ExecutionResult {
            status: ResultStatus::Failed,
            error: Some(failure.to_value()),
            ..ExecutionResult::succeeded(request.execution_ref.clone(), Default::default())
        }
    }
}

#[async_trait]
impl LaneAdapter for LaneSlot {
    fn lane_id(&self) -> &str {
        &self.inner.lane_id
    }

    /// The serving generation's capabilities (their metadata names its digest).
    fn capabilities(&self) -> LaneCapabilities {
        if let Some(Retirement::Replaced(next)) = self.retirement() {
            return next.capabilities();
        }
        self.current().lane().capabilities()
    }

    /// Validates on the request's generation and pins the execution to it.
    async fn validate(&self, request: &ExecutionRequest) -> Result<(), AdmissionRejection> {
        match self.retirement() {
            Some(Retirement::Replaced(next)) => return next.validate(request).await,
            Some(Retirement::Refused(reason)) => return Err(self.refusal(&reason)),
            None => {}
        }
        let generation = self.generation_for(request);
        generation.lane().validate(request).await?;
        self.pin(request, generation);
        Ok(())
    }

    /// Runs on the generation that validated the request, then counts the result in that
    /// generation's usage and probation window (rolling it back when the window says so).
    async fn execute(&self, request: ExecutionRequest, ctx: ExecutionContext) -> ExecutionResult {
        match self.retirement() {
            Some(Retirement::Replaced(next)) => return next.execute(request, ctx).await,
            Some(Retirement::Refused(reason)) => return self.refused_result(&request, &reason),
            None => {}
        }
        let running = self.start(self.take_pin(&request));
        let generation = Arc::clone(running.generation());
        let observed = generation.lane().run_observed(request, ctx, false).await;
        self.finish(running, &observed).await;
        observed.result
    }

    /// Validates and executes in one instance of the request's generation, counted like
    /// `execute` (a refusal is not counted).
    async fn validate_and_execute(
        &self,
        request: ExecutionRequest,
        ctx: ExecutionContext,
    ) -> ExecutionResult {
        match self.retirement() {
            Some(Retirement::Replaced(next)) => {
                return next.validate_and_execute(request, ctx).await;
            }
            Some(Retirement::Refused(reason)) => return self.refused_result(&request, &reason),
            None => {}
        }
        let running = self.start(self.generation_for(&request));
        let generation = Arc::clone(running.generation());
        let observed = generation.lane().run_observed(request, ctx, true).await;
        self.finish(running, &observed).await;
        observed.result
    }

    /// Streams on the generation that validated the request; the stream keeps that
    /// generation alive (and counted as running) until it is dropped. Streams count in the
    /// generation's usage but not in its probation window.
    async fn stream(
        &self,
        request: ExecutionRequest,
        ctx: ExecutionContext,
    ) -> Result<EventStream, AdmissionRejection> {
        match self.retirement() {
            Some(Retirement::Replaced(next)) => return next.stream(request, ctx).await,
            Some(Retirement::Refused(reason)) => return Err(self.refusal(&reason)),
            None => {}
        }
        let running = self.start(self.take_pin(&request));
        let generation = Arc::clone(running.generation());
        let events = match generation.lane().stream(request, ctx).await {
            Ok(events) => events,
            Err(rejection) => {
                running.uncount();
                return Err(rejection);
            }
        };
        Ok(events
            .map(move |event| {
                let _running = &running;
                event
            })
            .boxed())
    }
}

/// Registers `slot` with `host` as the lane of its id, registers the runtime's
/// [`WasmEngineVerifier`], connects the serving generation as the host's in-process target
/// `wasm:<lane_id>` (re-connected on every swap and rollback, so the descriptor always names
/// the serving digest), and records `lane.activated` for the serving generation. From then on
/// the slot's transitions are recorded in the host's evidence.
pub async fn register_lane_slot(
    host: &dyn LaneHost,
    slot: &LaneSlot,
) -> Result<TargetDescriptor, AdmissionRejection> {
    host.register_lane(Arc::new(slot.clone()) as Arc<dyn LaneAdapter>);
    host.register_target_verifier(Arc::new(WasmEngineVerifier::new(&slot.inner.runtime)));
    let _turn = slot.inner.transitions.lock().await;
    let (current, previous) = {
        let state = slot.state();
        (Arc::clone(&state.current), state.previous.clone())
    };
    let descriptor = host
        .connect_in_process(current.lane().attestation(), ConnectOptions::default())
        .await?;
    *lock(&slot.inner.binding) = Some(Binding {
        host: host.weak(),
        target_id: descriptor.target_id.clone(),
    });
    let activation = Activation {
        lane_id: slot.inner.lane_id.clone(),
        old_digest: previous.map(|g| g.digest().to_owned()),
        new_digest: current.digest().to_owned(),
        generation: current.number(),
        source: current.source().to_owned(),
        version: current.lane().manifest().map(|m| m.version.to_string()),
    };
    slot.record(LANE_ACTIVATED, activation.to_json()).await;
    Ok(descriptor)
}
