//! Shared fakes for the node tests: lanes, verifiers, target clients and sinks behind the
//! node's traits, plus helpers that register the runtimes the upstream tests use.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use ep_contracts::Contract;
use ep_contracts::boundary::{
    AcceptableAttestation, AdmissionDecision, AdmissionRejection, AdmissionRequest, AuthorityRef,
    ExecutionEvent, ExecutionRef, ExecutionRequest, ExecutionResult, LaneCapabilities, Map,
    NodeDescriptor, RejectionReason, ResultStatus, SandboxProfile, TargetAttestation,
    TargetDescriptor,
};
use ep_node::local_client::{InProcessTargetClient, LocalRuntimeClient};
use ep_node::node::Node;
use ep_node::sinks::memory::MemorySink;
use ep_node::{
    AuthorityVerifier, ConnectOptions, Dispatch, EventStream, EvidenceSink, ExecutionContext,
    LaneAdapter, RuntimeClient, RuntimeError, SinkError, TargetClient, TargetError, TargetVerifier,
};
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::{Barrier, mpsc};

/// Our honest weak class.
pub const WEAK: &str = "local-process-weak";
/// The HTTP stub class.
pub const HTTP_STUB: &str = "http-stub";
/// A strong class no test verifier can attest.
pub const STRONG: &str = "spiffe://prod/microvm-strict@v1";
/// The stub verifier's id.
pub const STUB_VERIFIER: &str = "test-target-verifier";
/// The fake authority verifier's id.
pub const AUTHORITY: &str = "test-authority";
/// The sink's id.
pub const SINK: &str = "test-sink";

pub fn obj(value: Value) -> Map {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn caps(lane_id: &str, protocols: &[&str], surfaces: &[&str], stream: bool) -> LaneCapabilities {
    LaneCapabilities {
        lane_id: Some(lane_id.to_owned()),
        protocols: protocols.iter().map(|s| (*s).to_owned()).collect(),
        surfaces: surfaces.iter().map(|s| (*s).to_owned()).collect(),
        supports_execute: true,
        supports_stream: stream,
        ..LaneCapabilities::default()
    }
}

fn refuse_invalid(request: &ExecutionRequest) -> Result<(), AdmissionRejection> {
    if request.payload.get("invalid") == Some(&Value::Bool(true)) {
        return Err(AdmissionRejection::new(
            RejectionReason::InvalidLaneRequest,
            "fake lane refuses invalid payloads",
        ));
    }
    Ok(())
}

/// Lane `process`: execute → `{"ok": true}` (failed with class `"fail"` when the payload names
/// one); stream → one `fake.chunk` event. Refuses payloads
/// with `"invalid": true` at validate.
pub struct FakeLane;

#[async_trait]
impl LaneAdapter for FakeLane {
    fn lane_id(&self) -> &str {
        "process"
    }
    fn capabilities(&self) -> LaneCapabilities {
        caps("process", &["process"], &["local_subprocess"], true)
    }
    async fn validate(&self, request: &ExecutionRequest) -> Result<(), AdmissionRejection> {
        refuse_invalid(request)
    }
    async fn execute(&self, request: ExecutionRequest, _ctx: ExecutionContext) -> ExecutionResult {
        if let Some(class) = request.payload.get("fail") {
            return ExecutionResult {
                status: ResultStatus::Failed,
                error: Some(json!({"failure_class": class, "message": "fake lane failure"})),
                ..ExecutionResult::succeeded(request.execution_ref, Map::new())
            };
        }
        ExecutionResult::succeeded(request.execution_ref, obj(json!({"ok": true})))
    }
    async fn stream(
        &self,
        request: ExecutionRequest,
        _ctx: ExecutionContext,
    ) -> Result<EventStream, AdmissionRejection> {
        let event = ExecutionEvent::new(request.execution_ref, "fake.chunk", Map::new());
        Ok(futures::stream::iter(vec![event]).boxed())
    }
}

/// Lane `http`, unary only: execute → `{"http": "ok"}`; stream → `not_supported`.
pub struct FakeHttpLane;

#[async_trait]
impl LaneAdapter for FakeHttpLane {
    fn lane_id(&self) -> &str {
        "http"
    }
    fn capabilities(&self) -> LaneCapabilities {
        caps("http", &["http"], &["remote_http"], false)
    }
    async fn validate(&self, _request: &ExecutionRequest) -> Result<(), AdmissionRejection> {
        Ok(())
    }
    async fn execute(&self, request: ExecutionRequest, _ctx: ExecutionContext) -> ExecutionResult {
        ExecutionResult::succeeded(request.execution_ref, obj(json!({"http": "ok"})))
    }
    async fn stream(
        &self,
        _request: ExecutionRequest,
        _ctx: ExecutionContext,
    ) -> Result<EventStream, AdmissionRejection> {
        Err(AdmissionRejection::new(
            RejectionReason::NotSupported,
            "fake http lane is unary only",
        ))
    }
}

/// Lane `process` whose output echoes the payload (to prove outputs stay out of evidence).
pub struct EchoLane;

#[async_trait]
impl LaneAdapter for EchoLane {
    fn lane_id(&self) -> &str {
        "process"
    }
    fn capabilities(&self) -> LaneCapabilities {
        caps("process", &["process"], &["local_subprocess"], false)
    }
    async fn validate(&self, _request: &ExecutionRequest) -> Result<(), AdmissionRejection> {
        Ok(())
    }
    async fn execute(&self, request: ExecutionRequest, _ctx: ExecutionContext) -> ExecutionResult {
        let payload = request.payload.clone();
        ExecutionResult::succeeded(request.execution_ref, payload)
    }
    async fn stream(
        &self,
        _request: ExecutionRequest,
        _ctx: ExecutionContext,
    ) -> Result<EventStream, AdmissionRejection> {
        Err(AdmissionRejection::new(
            RejectionReason::NotSupported,
            "unary",
        ))
    }
}

/// Lane `process` that waits on a shared barrier: it only completes once as many executions as
/// the barrier counts are inside the lane at the same time.
pub struct BarrierLane(pub Arc<Barrier>);

#[async_trait]
impl LaneAdapter for BarrierLane {
    fn lane_id(&self) -> &str {
        "process"
    }
    fn capabilities(&self) -> LaneCapabilities {
        caps("process", &["process"], &["local_subprocess"], false)
    }
    async fn validate(&self, _request: &ExecutionRequest) -> Result<(), AdmissionRejection> {
        Ok(())
    }
    async fn execute(&self, request: ExecutionRequest, _ctx: ExecutionContext) -> ExecutionResult {
        self.0.wait().await;
        ExecutionResult::succeeded(request.execution_ref, obj(json!({"ok": true})))
    }
    async fn stream(
        &self,
        _request: ExecutionRequest,
        _ctx: ExecutionContext,
    ) -> Result<EventStream, AdmissionRejection> {
        Err(AdmissionRejection::new(
            RejectionReason::NotSupported,
            "unary",
        ))
    }
}

/// Lane `process` that reports its execution ref when it starts, then waits for its cancel
/// signal and fails with `{"cancelled": true}`. Its stream yields nothing until cancelled and
/// then reports `fake.cancelled` on the channel.
pub struct CancelAwareLane {
    /// Receives each execution's ref when the lane starts it.
    pub started: mpsc::UnboundedSender<ExecutionRef>,
}

#[async_trait]
impl LaneAdapter for CancelAwareLane {
    fn lane_id(&self) -> &str {
        "process"
    }
    fn capabilities(&self) -> LaneCapabilities {
        caps("process", &["process"], &["local_subprocess"], true)
    }
    async fn validate(&self, _request: &ExecutionRequest) -> Result<(), AdmissionRejection> {
        Ok(())
    }
    async fn execute(&self, request: ExecutionRequest, ctx: ExecutionContext) -> ExecutionResult {
        let _ = self.started.send(request.execution_ref.clone());
        ctx.cancel.cancelled().await;
        ExecutionResult {
            status: ResultStatus::Failed,
            ..ExecutionResult::succeeded(request.execution_ref, obj(json!({"cancelled": true})))
        }
    }
    async fn stream(
        &self,
        request: ExecutionRequest,
        ctx: ExecutionContext,
    ) -> Result<EventStream, AdmissionRejection> {
        let started = self.started.clone();
        let reference = request.execution_ref.clone();
        tokio::spawn(async move {
            ctx.cancel.cancelled().await;
            let _ = started.send(reference);
        });
        Ok(futures::stream::pending().boxed())
    }
}

/// Authority verifier `test-authority`: only the ref `allow` passes, else `authority_rejected`.
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
        if authority.reference.as_deref() == Some("allow") {
            Ok(obj(json!({"ref": "allow"})))
        } else {
            Err(AdmissionRejection::new(
                RejectionReason::AuthorityRejected,
                "authority ref is not allowed",
            ))
        }
    }
}

/// Target verifier `test-target-verifier` for type `stub`: signature `valid` → a descriptor
/// whose target id, lane id, classes, verifier id and expiry come from the evidence (defaults
/// `target-1`, `process`, `[local-process-weak]`, its own id, none); else
/// `target_attestation_unverifiable`.
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
        vec![WEAK.to_owned(), HTTP_STUB.to_owned()]
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
        let classes = att
            .evidence
            .get("classes")
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_else(|| vec![WEAK.to_owned()]);
        let mut descriptor = TargetDescriptor::new(
            evidence_string(att, "target_id").unwrap_or_else(|| "target-1".to_owned()),
            evidence_string(att, "lane_id").unwrap_or_else(|| "process".to_owned()),
            evidence_string(att, "verifier_id").unwrap_or_else(|| STUB_VERIFIER.to_owned()),
            classes,
        );
        descriptor.expires_at = evidence_string(att, "expires_at");
        descriptor.signature = Some("valid".to_owned());
        Ok(descriptor)
    }
}

/// A remote-style target client: wraps each call in a JSON-RPC-over-WebSocket shaped frame
/// (recorded in a shared list), then runs it in process.
#[derive(Clone)]
pub struct RecordingTargetClient {
    inner: InProcessTargetClient,
    /// Frames seen by every client sharing this list.
    pub frames: Arc<Mutex<Vec<Value>>>,
}

impl RecordingTargetClient {
    /// A client recording into `frames`, running requests on `node`'s lanes.
    pub fn sharing(node: &Node, frames: Arc<Mutex<Vec<Value>>>) -> Self {
        Self {
            inner: InProcessTargetClient::bound(node.downgrade()),
            frames,
        }
    }

    fn record(&self, method: &str, params: Value) {
        self.frames.lock().unwrap().push(json!({
            "transport": "jsonrpc_over_websocket",
            "jsonrpc": "2.0",
            "method": method,
            "params": params,
        }));
    }
}

#[async_trait]
impl TargetClient for RecordingTargetClient {
    async fn describe(&self) -> Result<Value, TargetError> {
        self.inner.describe().await
    }
    async fn execute(&self, request: ExecutionRequest, dispatch: Dispatch) -> ExecutionResult {
        self.record("execution.execute", request.to_value());
        self.inner.execute(request, dispatch).await
    }
    async fn stream(
        &self,
        request: ExecutionRequest,
        dispatch: Dispatch,
    ) -> Result<EventStream, AdmissionRejection> {
        self.record("execution.stream", request.to_value());
        self.inner.stream(request, dispatch).await
    }
    async fn cancel(&self, execution_ref: &ExecutionRef) -> Result<(), TargetError> {
        self.record("execution.cancel", json!({"ref": execution_ref.as_str()}));
        self.inner.cancel(execution_ref).await
    }
}

/// A target client whose cancel always fails.
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
            target_id: "target-1".to_owned(),
            message: "connection refused".to_owned(),
        })
    }
}

/// A sink that fails every emit and flush.
pub struct FailingSink;

#[async_trait]
impl EvidenceSink for FailingSink {
    fn sink_id(&self) -> &str {
        "failing-sink"
    }
    async fn emit(&self, _evidence: &ep_contracts::boundary::Evidence) -> Result<(), SinkError> {
        Err(SinkError::Encode {
            sink_id: "failing-sink".to_owned(),
            message: "disk full".to_owned(),
        })
    }
    async fn flush(&self) -> Result<(), SinkError> {
        Err(SinkError::Encode {
            sink_id: "failing-sink".to_owned(),
            message: "disk full".to_owned(),
        })
    }
}

/// A runtime client that talks to the node as a remote client would: every request and answer
/// crosses as JSON text.
pub struct JsonRoundTripClient(pub LocalRuntimeClient);

fn across<T: Contract>(value: &T) -> T {
    ep_contracts::parse::<T>(&ep_contracts::dump(value)).unwrap()
}

#[async_trait]
impl RuntimeClient for JsonRoundTripClient {
    async fn describe(&self) -> Result<NodeDescriptor, RuntimeError> {
        self.0.describe().await.map(|d| across(&d))
    }
    async fn admit(&self, request: AdmissionRequest) -> Result<AdmissionDecision, RuntimeError> {
        self.0.admit(across(&request)).await.map(|d| across(&d))
    }
    async fn execute(&self, request: AdmissionRequest) -> ExecutionResult {
        across(&self.0.execute(across(&request)).await)
    }
    async fn stream(&self, request: AdmissionRequest) -> Result<EventStream, RuntimeError> {
        self.0.stream(across(&request)).await
    }
    async fn cancel(&self, execution_ref: &ExecutionRef) -> Result<(), RuntimeError> {
        self.0.cancel(&across(execution_ref)).await
    }
    async fn send_input(
        &self,
        execution_ref: &ExecutionRef,
        input: ep_node::Input,
    ) -> Result<(), RuntimeError> {
        self.0.send_input(&across(execution_ref), input).await
    }
}

/// The governed request of the upstream tests.
pub fn governed_request() -> AdmissionRequest {
    let mut request = AdmissionRequest::new("process");
    request.payload = obj(json!({"command": "echo", "argv": ["ok"]}));
    request.authority_ref = Some(AuthorityRef {
        reference: Some("allow".to_owned()),
        ..AuthorityRef::default()
    });
    request.acceptable_attestation = AcceptableAttestation::of([WEAK]);
    request.sandbox_profile = Some(SandboxProfile {
        profile_ref: Some("sandbox://test".to_owned()),
        bundle_hash: Some("sha256:test".to_owned()),
        ..SandboxProfile::default()
    });
    request
}

/// A `stub` attestation with `evidence`.
pub fn stub_attestation(evidence: Value) -> TargetAttestation {
    TargetAttestation {
        attestation_type: Some("stub".to_owned()),
        evidence: obj(evidence),
        ..TargetAttestation::default()
    }
}

/// A valid `stub` attestation for `target-1` on lane `process`, class `local-process-weak`.
pub fn valid_stub() -> TargetAttestation {
    stub_attestation(json!({"signature": "valid"}))
}

/// A node and the memory sink registered on it.
pub struct Runtime {
    /// The node.
    pub node: Node,
    /// Its `test-sink`.
    pub sink: Arc<MemorySink>,
}

impl Runtime {
    /// A fresh node with the memory sink only.
    pub fn empty() -> Self {
        let node = Node::new("node-test");
        let sink = Arc::new(MemorySink::new(SINK));
        node.register_evidence_sink(sink.clone());
        Self { node, sink }
    }

    /// Evidence types recorded so far.
    pub fn evidence_types(&self) -> Vec<String> {
        self.sink.evidence_types()
    }
}

/// Lane, target verifier, sink and a valid in-process `target-1`; no authority verifier, not
/// completed.
pub async fn runtime_without_authority_on(lane: Arc<dyn LaneAdapter>) -> Runtime {
    let rt = Runtime::empty();
    rt.node.register_lane(lane);
    rt.node
        .register_target_verifier(Arc::new(StubTargetVerifier));
    rt.node
        .connect_in_process(valid_stub(), ConnectOptions::default())
        .await
        .unwrap();
    rt
}

/// The full upstream runtime on `lane`: registered, connected, authority, completed.
pub async fn runtime_on(lane: Arc<dyn LaneAdapter>) -> Runtime {
    let rt = runtime_without_authority_on(lane).await;
    rt.node
        .register_authority_verifier(Arc::new(AllowAuthority));
    rt.node.complete_registration();
    rt
}

/// The full upstream runtime on [`FakeLane`].
pub async fn runtime() -> Runtime {
    runtime_on(Arc::new(FakeLane)).await
}

/// Everything but a verified target.
pub fn runtime_without_target() -> Runtime {
    let rt = Runtime::empty();
    rt.node.register_lane(Arc::new(FakeLane));
    rt.node
        .register_target_verifier(Arc::new(StubTargetVerifier));
    rt.node
        .register_authority_verifier(Arc::new(AllowAuthority));
    rt.node.complete_registration();
    rt
}

/// A runtime whose targets (one per id, all equivalent) use recording remote-style clients
/// sharing the returned frame list.
pub async fn remote_runtime(target_ids: &[&str]) -> (Runtime, Arc<Mutex<Vec<Value>>>) {
    let frames = Arc::new(Mutex::new(Vec::new()));
    let rt = runtime_without_target();
    for target_id in target_ids {
        let attestation = stub_attestation(json!({
            "signature": "valid", "target_id": target_id, "lane_id": "process", "classes": [WEAK]
        }));
        rt.node
            .connect_target(
                attestation,
                Arc::new(RecordingTargetClient::sharing(&rt.node, frames.clone())),
                ConnectOptions::default(),
            )
            .await
            .unwrap();
    }
    (rt, frames)
}

/// The HTTP runtime: lane `http`, target `http-target-1` attested `http-stub`.
pub async fn http_runtime() -> Runtime {
    let rt = Runtime::empty();
    rt.node.register_lane(Arc::new(FakeHttpLane));
    rt.node
        .register_target_verifier(Arc::new(StubTargetVerifier));
    rt.node
        .register_authority_verifier(Arc::new(AllowAuthority));
    let attestation = stub_attestation(json!({
        "signature": "valid", "target_id": "http-target-1", "lane_id": "http", "classes": [HTTP_STUB]
    }));
    rt.node
        .connect_in_process(attestation, ConnectOptions::default())
        .await
        .unwrap();
    rt.node.complete_registration();
    rt
}

/// An RFC 3339 time `seconds` from now (negative for the past).
pub fn rfc3339_in(seconds: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::seconds(seconds))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The event types of `events`, in order.
pub fn event_types(events: &[ExecutionEvent]) -> Vec<&str> {
    events
        .iter()
        .map(|event| event.event_type.as_deref().unwrap_or_default())
        .collect()
}
