//! In-process clients: [`InProcessTargetClient`], the target that runs lanes inside this
//! process (direct executions and in-process targets), and [`LocalRuntimeClient`], the
//! runtime client that calls a [`Node`] directly (the remote client implements the same trait).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use ep_contracts::boundary::{
    AdmissionDecision, AdmissionRejection, AdmissionRequest, ExecutionRef, ExecutionRequest,
    ExecutionResult, NodeDescriptor, RejectionReason,
};
use futures::StreamExt;

use crate::error::{RuntimeError, TargetError};
use crate::node::{Node, WeakNode};
use crate::traits::{
    Dispatch, EventStream, ExecutionContext, Input, LaneAdapter, RuntimeClient, TargetClient,
};
use ep_lane_api::{CancelSignal, rejected_result};

type Signals = Arc<Mutex<HashMap<String, (u64, CancelSignal)>>>;

/// The target that runs lanes inside this process (direct executions and in-process targets):
/// `validate`, then `execute` or `stream` with a [`CancelSignal`] registered under the
/// execution ref, which [`TargetClient::cancel`] fires.
///
/// The target owns what it runs: a client [`bound`](Self::bound) to a node runs each request on
/// the lane the node has registered under the request's lane id; a client built
/// [`owning`](Self::owning) a lane runs every request on that lane (the sandboxed process
/// target runs its own sandboxed lane, not the node's registered one).
#[derive(Clone)]
pub struct InProcessTargetClient {
    signals: Signals,
    lanes: Lanes,
}

/// Where an in-process target finds the lane of a request.
#[derive(Clone)]
enum Lanes {
    /// The lanes registered with a node (held weakly: the node holds its targets).
    Node(WeakNode),
    /// One lane of the target's own.
    Owned(Arc<dyn LaneAdapter>),
}

impl std::fmt::Debug for InProcessTargetClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let lanes = match &self.lanes {
            Lanes::Node(_) => "node".to_owned(),
            Lanes::Owned(lane) => lane.lane_id().to_owned(),
        };
        f.debug_struct("InProcessTargetClient")
            .field("lanes", &lanes)
            .finish_non_exhaustive()
    }
}

/// Unregisters an execution's signal when it ends; for streams it also fires the signal, so a
/// lane learns that its consumer dropped the stream.
struct Registration {
    signals: Signals,
    reference: String,
    id: u64,
    signal: CancelSignal,
    fire_on_drop: bool,
}

impl Drop for Registration {
    fn drop(&mut self) {
        {
            let mut signals = lock(&self.signals);
            // Remove only our own entry (refs are unique per execution, but stay safe).
            if signals
                .get(&self.reference)
                .is_some_and(|(id, _)| *id == self.id)
            {
                signals.remove(&self.reference);
            }
        }
        if self.fire_on_drop {
            self.signal.cancel();
        }
    }
}

fn lock(signals: &Signals) -> MutexGuard<'_, HashMap<String, (u64, CancelSignal)>> {
    signals.lock().unwrap_or_else(PoisonError::into_inner)
}

impl InProcessTargetClient {
    /// A target running the lanes registered with the node behind `node`.
    pub fn bound(node: WeakNode) -> Self {
        Self {
            signals: Signals::default(),
            lanes: Lanes::Node(node),
        }
    }

    /// A target that runs every request on `lane`, its own.
    pub fn owning(lane: Arc<dyn LaneAdapter>) -> Self {
        Self {
            signals: Signals::default(),
            lanes: Lanes::Owned(lane),
        }
    }

    /// The lane `request` runs on here, or the refusal of a request this target cannot run.
    fn lane(&self, request: &ExecutionRequest) -> Result<Arc<dyn LaneAdapter>, AdmissionRejection> {
        let lane_id = request.lane_id.as_deref().unwrap_or_default();
        let lane = match &self.lanes {
            Lanes::Owned(lane) => Some(Arc::clone(lane)),
            Lanes::Node(node) => node.upgrade().and_then(|node| node.lane(lane_id)),
        };
        lane.ok_or_else(|| {
            AdmissionRejection::new(
                RejectionReason::LaneNotRegistered,
                format!("lane {lane_id:?} is not served by this in-process target"),
            )
        })
    }

    /// How many executions and streams are running through this client now.
    pub fn running(&self) -> usize {
        lock(&self.signals).len()
    }

    fn register(&self, execution_ref: &ExecutionRef, fire_on_drop: bool) -> Registration {
        let signal = CancelSignal::default();
        let reference = execution_ref.as_str().to_owned();
        let id = ep_contracts::ids::unique_positive();
        lock(&self.signals).insert(reference.clone(), (id, signal.clone()));
        Registration {
            signals: Arc::clone(&self.signals),
            reference,
            id,
            signal,
            fire_on_drop,
        }
    }
}

#[async_trait]
impl TargetClient for InProcessTargetClient {
    async fn describe(&self) -> Result<serde_json::Value, TargetError> {
        Ok(serde_json::json!({"client": "in_process", "running": self.running()}))
    }

    async fn execute(&self, request: ExecutionRequest, dispatch: Dispatch) -> ExecutionResult {
        let lane = match self.lane(&request) {
            Ok(lane) => lane,
            Err(rejection) => {
                return rejected_result(request.execution_ref, request.provenance, &rejection);
            }
        };
        let registration = self.register(&request.execution_ref, false);
        let ctx = ExecutionContext::for_dispatch(registration.signal.clone(), dispatch);
        let result = lane.validate_and_execute(request, ctx).await;
        drop(registration);
        result
    }

    async fn stream(
        &self,
        request: ExecutionRequest,
        dispatch: Dispatch,
    ) -> Result<EventStream, AdmissionRejection> {
        let lane = self.lane(&request)?;
        lane.validate(&request).await?;
        let registration = self.register(&request.execution_ref, true);
        let ctx = ExecutionContext::for_dispatch(registration.signal.clone(), dispatch);
        let events = lane.stream(request, ctx).await?;
        // The registration lives as long as the stream: dropping the stream unregisters it
        // and fires the signal.
        Ok(events
            .map(move |event| {
                let _alive = &registration;
                event
            })
            .boxed())
    }

    async fn cancel(&self, execution_ref: &ExecutionRef) -> Result<(), TargetError> {
        let signal = lock(&self.signals)
            .get(execution_ref.as_str())
            .map(|(_, signal)| signal.clone());
        if let Some(signal) = signal {
            signal.cancel();
        }
        Ok(())
    }
}

/// The runtime client for callers in the same process: every call goes straight to the node.
#[derive(Debug, Clone)]
pub struct LocalRuntimeClient {
    node: Node,
}

impl LocalRuntimeClient {
    /// A client for `node`.
    pub fn new(node: Node) -> Self {
        Self { node }
    }

    /// The node it calls.
    pub fn node(&self) -> &Node {
        &self.node
    }
}

#[async_trait]
impl RuntimeClient for LocalRuntimeClient {
    async fn describe(&self) -> Result<NodeDescriptor, RuntimeError> {
        Ok(self.node.describe())
    }

    async fn admit(&self, request: AdmissionRequest) -> Result<AdmissionDecision, RuntimeError> {
        self.node
            .admit(request)
            .await
            .map_err(RuntimeError::Rejected)
    }

    async fn execute(&self, request: AdmissionRequest) -> ExecutionResult {
        self.node.execute(request).await
    }

    /// The node records how the stream ends, including a drop before its end (cause
    /// `client_disconnected`), exactly as for a served stream.
    async fn stream(&self, request: AdmissionRequest) -> Result<EventStream, RuntimeError> {
        self.node.stream(request).await
    }

    async fn cancel(&self, execution_ref: &ExecutionRef) -> Result<(), RuntimeError> {
        self.node.cancel(execution_ref).await
    }

    async fn send_input(
        &self,
        execution_ref: &ExecutionRef,
        input: Input,
    ) -> Result<(), RuntimeError> {
        self.node.send_input(execution_ref, input).await
    }
}
