//! Fake lanes, verifiers and target clients behind the node's traits, and the nodes the
//! conformance suite runs against. They answer from the request alone (no I/O), so what a
//! caller observes depends only on the node's behaviour and the client in between.
//!
//! Lanes of the standard node (each with its own verified target, class `local-process-weak`):
//!
//! | lane | execute | stream |
//! |---|---|---|
//! | `process` | echoes the request's lineage; `{"fail": class}` fails with that class; `{"invalid": true}` is refused at validate | `{"events": n}` events `fake.chunk`, `{"fail_event": class}` appends a failure event |
//! | `http` | `{"http": "ok"}` | `not_supported` |
//! | `batch` | `{"batch": "ok"}` | `stream_not_supported` |
//! | `slow` | reports its start, waits for cancel, fails with `cancellation` | pending until cancelled, then reports |
//! | `sticky` | reports its start, then runs until cancelled (at most [`STICKY_FALLBACK`]); its target's cancel always fails | `not_supported` |

use std::sync::Arc;

use async_trait::async_trait;
use ep_contracts::boundary::{
    AcceptableAttestation, AdmissionRejection, AdmissionRequest, AuthorityRef, ExecutionEvent,
    ExecutionRef, ExecutionRequest, ExecutionResult, LaneCapabilities, Map, RejectionReason,
    ResultStatus, TargetAttestation, TargetDescriptor,
};
use ep_contracts::{Contract, Failure, FailureClass};
use ep_node::local_client::InProcessTargetClient;
use ep_node::node::Node;
use ep_node::sinks::memory::MemorySink;
use ep_node::{
    AuthorityVerifier, ConnectOptions, Dispatch, EventStream, ExecutionContext, LaneAdapter,
    TargetClient, TargetError, TargetVerifier,
};
use futures::StreamExt;
use futures::future::BoxFuture;
use serde_json::{Value, json};
use tokio::sync::{Mutex, mpsc};

/// The honest weak class every fake target is attested with.
pub const WEAK: &str = "local-process-weak";
/// A class no fake verifier can attest.
pub const STRONG: &str = "spiffe://prod/microvm-strict@v1";
/// The fake target verifier's id.
pub const STUB_VERIFIER: &str = "conformance-target-verifier";
/// The fake authority verifier's id.
pub const AUTHORITY: &str = "conformance-authority";
/// The only authority ref the fake authority verifier accepts.
pub const ALLOWED_REF: &str = "allow";
/// The node id of every fixture node.
pub const NODE_ID: &str = "node-conformance";
/// The lanes of the standard node, each served by a target of its own.
pub const LANES: [&str; 5] = ["batch", "http", "process", "slow", "sticky"];

fn obj(value: Value) -> Map {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn caps(lane_id: &str, stream: bool) -> LaneCapabilities {
    LaneCapabilities {
        lane_id: Some(lane_id.to_owned()),
        protocols: vec![lane_id.to_owned()],
        surfaces: vec!["conformance".to_owned()],
        supports_execute: true,
        supports_stream: stream,
        ..LaneCapabilities::default()
    }
}

fn failure_class(payload: &Map, key: &str) -> Option<FailureClass> {
    payload
        .get(key)
        .and_then(Value::as_str)
        .and_then(FailureClass::parse)
}

/// What a lane saw of its request that a caller may rely on being carried: the lineage.
fn lineage_of(request: &ExecutionRequest) -> Value {
    let admission = request.admission_request.as_ref();
    json!({
        "lane_id": request.lane_id,
        "operation": request.operation,
        "payload": request.payload,
        "provenance": request.provenance.to_value(),
        "request_id": admission.map(|a| a.request_id.clone()),
        "metadata": admission.map(|a| Value::Object(a.metadata.clone())),
        "sandbox_profile": admission.and_then(|a| a.sandbox_profile.as_ref()).map(Contract::to_value),
        "target_id": request.target_descriptor.as_ref().map(|t| t.target_id.clone()),
    })
}

/// Lane `process`: the scripted lane most checks use (see the module table).
pub struct ScriptLane;

#[async_trait]
impl LaneAdapter for ScriptLane {
    fn lane_id(&self) -> &str {
        "process"
    }
    fn capabilities(&self) -> LaneCapabilities {
        caps("process", true)
    }
    async fn validate(&self, request: &ExecutionRequest) -> Result<(), AdmissionRejection> {
        if request.payload.get("invalid") == Some(&Value::Bool(true)) {
            return Err(AdmissionRejection::new(
                RejectionReason::InvalidLaneRequest,
                "script lane refuses payloads marked invalid",
            )
            .with_detail("field", "invalid"));
        }
        Ok(())
    }
    async fn execute(&self, request: ExecutionRequest, _ctx: ExecutionContext) -> ExecutionResult {
        if let Some(class) = failure_class(&request.payload, "fail") {
            let failure = Failure::new(class, format!("script lane failed with {class}"))
                .with_detail("scripted", true);
            return ExecutionResult {
                status: ResultStatus::Failed,
                error: Some(failure.to_value()),
                evidence: vec![json!({"kind": "script.failed", "class": class.as_str()})],
                provenance: request.provenance.clone(),
                ..ExecutionResult::succeeded(request.execution_ref, obj(json!({"partial": true})))
            };
        }
        let lineage = lineage_of(&request);
        let event = ExecutionEvent::new(
            request.execution_ref.clone(),
            "fake.progress",
            obj(json!({"step": 1})),
        );
        ExecutionResult {
            events: vec![event],
            evidence: vec![json!({"kind": "script.ran"})],
            provenance: request.provenance.clone(),
            ..ExecutionResult::succeeded(
                request.execution_ref,
                obj(json!({"ok": true, "lineage": lineage})),
            )
        }
    }
    async fn stream(
        &self,
        request: ExecutionRequest,
        _ctx: ExecutionContext,
    ) -> Result<EventStream, AdmissionRejection> {
        let count = request
            .payload
            .get("events")
            .and_then(Value::as_u64)
            .unwrap_or(1);
        let mut events: Vec<ExecutionEvent> = (0..count)
            .map(|seq| {
                ExecutionEvent::new(
                    request.execution_ref.clone(),
                    "fake.chunk",
                    obj(json!({"seq": seq, "text": format!("chunk {seq}\nline two")})),
                )
            })
            .collect();
        if let Some(class) = failure_class(&request.payload, "fail_event") {
            let failure = Failure::new(class, "script stream failed");
            events.push(ExecutionEvent::new(
                request.execution_ref.clone(),
                "fake.failed",
                obj(json!({"failure": failure.to_value()})),
            ));
        }
        Ok(futures::stream::iter(events).boxed())
    }
}

/// A unary lane: executes, refuses streams with `reason`.
pub struct UnaryLane {
    lane_id: &'static str,
    reason: RejectionReason,
}

impl UnaryLane {
    /// Lane `http`: refuses streams as `not_supported`.
    pub fn http() -> Self {
        Self {
            lane_id: "http",
            reason: RejectionReason::NotSupported,
        }
    }

    /// Lane `batch`: refuses streams as `stream_not_supported`.
    pub fn batch() -> Self {
        Self {
            lane_id: "batch",
            reason: RejectionReason::StreamNotSupported,
        }
    }
}

/// How long a `sticky` execution runs when nothing reaches it (its target's cancel fails).
pub const STICKY_FALLBACK: std::time::Duration = std::time::Duration::from_secs(5);

/// Lane `sticky`: like `slow`, but the target's cancel never reaches it, so an execution ends
/// by itself after [`STICKY_FALLBACK`]; refuses streams as `not_supported`.
pub struct StickyLane {
    signals: mpsc::UnboundedSender<Signal>,
}

#[async_trait]
impl LaneAdapter for StickyLane {
    fn lane_id(&self) -> &str {
        "sticky"
    }
    fn capabilities(&self) -> LaneCapabilities {
        caps("sticky", false)
    }
    async fn validate(&self, _request: &ExecutionRequest) -> Result<(), AdmissionRejection> {
        Ok(())
    }
    async fn execute(&self, request: ExecutionRequest, ctx: ExecutionContext) -> ExecutionResult {
        let _ = self
            .signals
            .send(Signal::Started(request.execution_ref.clone()));
        tokio::select! {
            () = ctx.cancel.cancelled() => {}
            () = tokio::time::sleep(STICKY_FALLBACK) => {}
        }
        ExecutionResult {
            provenance: request.provenance.clone(),
            ..ExecutionResult::succeeded(request.execution_ref, obj(json!({"sticky": "ok"})))
        }
    }
    async fn stream(
        &self,
        _request: ExecutionRequest,
        _ctx: ExecutionContext,
    ) -> Result<EventStream, AdmissionRejection> {
        Err(AdmissionRejection::new(
            RejectionReason::NotSupported,
            "lane sticky is unary only",
        ))
    }
}

#[async_trait]
impl LaneAdapter for UnaryLane {
    fn lane_id(&self) -> &str {
        self.lane_id
    }
    fn capabilities(&self) -> LaneCapabilities {
        caps(self.lane_id, false)
    }
    async fn validate(&self, _request: &ExecutionRequest) -> Result<(), AdmissionRejection> {
        Ok(())
    }
    async fn execute(&self, request: ExecutionRequest, _ctx: ExecutionContext) -> ExecutionResult {
        ExecutionResult {
            provenance: request.provenance.clone(),
            ..ExecutionResult::succeeded(request.execution_ref, obj(json!({self.lane_id: "ok"})))
        }
    }
    async fn stream(
        &self,
        _request: ExecutionRequest,
        _ctx: ExecutionContext,
    ) -> Result<EventStream, AdmissionRejection> {
        Err(AdmissionRejection::new(
            self.reason,
            format!("lane {} is unary only", self.lane_id),
        ))
    }
}

/// What the `slow` lane reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// An execution entered the lane.
    Started(ExecutionRef),
    /// A stream's cancel signal fired (its consumer went away).
    StreamCancelled(ExecutionRef),
}

/// Lane `slow`: runs until cancelled (see the module table).
pub struct SlowLane {
    signals: mpsc::UnboundedSender<Signal>,
}

#[async_trait]
impl LaneAdapter for SlowLane {
    fn lane_id(&self) -> &str {
        "slow"
    }
    fn capabilities(&self) -> LaneCapabilities {
        caps("slow", true)
    }
    async fn validate(&self, _request: &ExecutionRequest) -> Result<(), AdmissionRejection> {
        Ok(())
    }
    async fn execute(&self, request: ExecutionRequest, ctx: ExecutionContext) -> ExecutionResult {
        let _ = self
            .signals
            .send(Signal::Started(request.execution_ref.clone()));
        ctx.cancel.cancelled().await;
        let failure = Failure::new(FailureClass::Cancellation, "cancelled by the caller");
        ExecutionResult {
            status: ResultStatus::Failed,
            error: Some(failure.to_value()),
            provenance: request.provenance.clone(),
            ..ExecutionResult::succeeded(request.execution_ref, obj(json!({"cancelled": true})))
        }
    }
    async fn stream(
        &self,
        request: ExecutionRequest,
        ctx: ExecutionContext,
    ) -> Result<EventStream, AdmissionRejection> {
        let signals = self.signals.clone();
        let reference = request.execution_ref.clone();
        let _ = signals.send(Signal::Started(reference.clone()));
        tokio::spawn(async move {
            ctx.cancel.cancelled().await;
            let _ = signals.send(Signal::StreamCancelled(reference));
        });
        let first = ExecutionEvent::new(
            request.execution_ref,
            "slow.started",
            obj(json!({"waiting": true})),
        );
        Ok(futures::stream::iter([first])
            .chain(futures::stream::pending())
            .boxed())
    }
}

/// Authority verifier: only the ref [`ALLOWED_REF`] passes, else `authority_rejected`.
pub struct AllowAuthority;

#[async_trait]
impl AuthorityVerifier for AllowAuthority {
    fn verifier_id(&self) -> &str {
        AUTHORITY
    }
    async fn verify(
        &self,
        authority: &AuthorityRef,
        _request: &AdmissionRequest,
    ) -> Result<Map, AdmissionRejection> {
        if authority.reference.as_deref() == Some(ALLOWED_REF) {
            Ok(obj(json!({"ref": ALLOWED_REF})))
        } else {
            Err(AdmissionRejection::new(
                RejectionReason::AuthorityRejected,
                "authority ref is not allowed",
            )
            .with_detail("verifier", AUTHORITY))
        }
    }
}

/// Target verifier for attestation type `stub`: signature `valid` → a descriptor for the
/// `target_id` and `lane_id` in the evidence, class [`WEAK`].
pub struct StubTargetVerifier;

fn evidence_string(att: &TargetAttestation, key: &str) -> Option<String> {
    att.evidence
        .get(key)
        .and_then(Value::as_str)
        .map(str::to_owned)
}

#[async_trait]
impl TargetVerifier for StubTargetVerifier {
    fn verifier_id(&self) -> &str {
        STUB_VERIFIER
    }
    fn attestation_types(&self) -> Vec<String> {
        vec!["stub".to_owned()]
    }
    fn capability_classes(&self) -> Vec<String> {
        vec![WEAK.to_owned()]
    }
    fn handles(&self, attestation: &TargetAttestation) -> bool {
        attestation.attestation_type.as_deref() == Some("stub")
    }
    async fn verify(
        &self,
        att: &TargetAttestation,
        _options: &ConnectOptions,
    ) -> Result<TargetDescriptor, AdmissionRejection> {
        if evidence_string(att, "signature").as_deref() != Some("valid") {
            return Err(AdmissionRejection::new(
                RejectionReason::TargetAttestationUnverifiable,
                "stub attestation signature is not valid",
            ));
        }
        let mut descriptor = TargetDescriptor::new(
            evidence_string(att, "target_id").unwrap_or_else(|| "target-1".to_owned()),
            evidence_string(att, "lane_id").unwrap_or_else(|| "process".to_owned()),
            STUB_VERIFIER.to_owned(),
            vec![WEAK.to_owned()],
        );
        descriptor.signature = Some("valid".to_owned());
        Ok(descriptor)
    }
}

/// A target client whose cancel always fails (the target cannot be reached to cancel).
pub struct UnreachableCancelClient(pub InProcessTargetClient);

#[async_trait]
impl TargetClient for UnreachableCancelClient {
    async fn describe(&self) -> Result<Value, TargetError> {
        self.0.describe().await
    }
    async fn execute(&self, request: ExecutionRequest, dispatch: Dispatch) -> ExecutionResult {
        self.0.execute(request, dispatch).await
    }
    async fn stream(
        &self,
        request: ExecutionRequest,
        dispatch: Dispatch,
    ) -> Result<EventStream, AdmissionRejection> {
        self.0.stream(request, dispatch).await
    }
    async fn cancel(&self, _execution_ref: &ExecutionRef) -> Result<(), TargetError> {
        Err(TargetError::Unavailable {
            target_id: "target-sticky".to_owned(),
            message: "connection refused".to_owned(),
        })
    }
}

/// How a fixture node is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    /// Every lane, verifier and target; registration complete.
    Standard,
    /// As standard, but registration never completed.
    RegistrationIncomplete,
    /// As standard, but no authority verifier.
    NoAuthorityVerifier,
    /// Lanes and verifiers, but no verified target.
    NoTargets,
}

/// A node set up for one check, with what the test needs to watch it.
pub struct Fixture {
    /// The node.
    pub node: Node,
    /// Its memory evidence sink.
    pub sink: Arc<MemorySink>,
    /// What the `slow` lane reports.
    pub signals: Mutex<mpsc::UnboundedReceiver<Signal>>,
}

/// Builds the nodes the suite runs against.
pub trait NodeFactory: Send + Sync {
    /// A fresh node set up as `setup` says.
    fn build(&self, setup: Setup) -> BoxFuture<'_, Fixture>;
}

/// The fake-lane nodes of this module.
#[derive(Debug, Clone, Copy, Default)]
pub struct FakeNodes;

impl NodeFactory for FakeNodes {
    fn build(&self, setup: Setup) -> BoxFuture<'_, Fixture> {
        Box::pin(fake_node(setup))
    }
}

/// A `stub` attestation [`StubTargetVerifier`] accepts, for a target serving `lane_id`.
pub fn stub(target_id: &str, lane_id: &str) -> TargetAttestation {
    TargetAttestation {
        attestation_type: Some("stub".to_owned()),
        evidence: obj(json!({"signature": "valid", "target_id": target_id, "lane_id": lane_id})),
        ..TargetAttestation::default()
    }
}

/// A fake-lane node set up as `setup` says.
pub async fn fake_node(setup: Setup) -> Fixture {
    let node = Node::new(NODE_ID);
    let sink = Arc::new(MemorySink::new("conformance-sink"));
    node.register_evidence_sink(sink.clone());
    let (tx, rx) = mpsc::unbounded_channel();
    node.register_lane(Arc::new(ScriptLane));
    node.register_lane(Arc::new(UnaryLane::http()));
    node.register_lane(Arc::new(UnaryLane::batch()));
    node.register_lane(Arc::new(StickyLane {
        signals: tx.clone(),
    }));
    node.register_lane(Arc::new(SlowLane { signals: tx }));
    node.register_target_verifier(Arc::new(StubTargetVerifier));
    if setup != Setup::NoAuthorityVerifier {
        node.register_authority_verifier(Arc::new(AllowAuthority));
    }
    if setup != Setup::NoTargets {
        for lane in LANES {
            let client: Arc<dyn TargetClient> = if lane == "sticky" {
                Arc::new(UnreachableCancelClient(InProcessTargetClient::bound(
                    node.downgrade(),
                )))
            } else {
                node.in_process_client()
            };
            let target_id = format!("target-{lane}");
            // The stub verifier accepts every `valid` stub, so this cannot be refused; a
            // refusal would show up as `no_satisfying_attested_target` in the checks.
            if let Err(rejection) = node
                .connect_target(stub(&target_id, lane), client, ConnectOptions::default())
                .await
            {
                tracing::error!(%rejection, "fixture target refused");
            }
        }
    }
    if setup != Setup::RegistrationIncomplete {
        node.complete_registration();
    }
    sink.clear();
    Fixture {
        node,
        sink,
        signals: Mutex::new(rx),
    }
}

/// A governed request for `lane_id` with a fixed request id, the allowed authority ref and
/// the weak class.
pub fn governed(lane_id: &str, request_id: &str) -> AdmissionRequest {
    let mut request = AdmissionRequest::new(lane_id);
    request.request_id = request_id.to_owned();
    request.authority_ref = Some(AuthorityRef {
        reference: Some(ALLOWED_REF.to_owned()),
        ..AuthorityRef::default()
    });
    request.acceptable_attestation = AcceptableAttestation::of([WEAK]);
    request
}
