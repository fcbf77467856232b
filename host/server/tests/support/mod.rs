//! Shared helpers for the service tests: fake lanes and verifiers behind the node's traits, a
//! node on them served over a real socket, a hyper client, SSE parsing and evidence reading.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use ep_contracts::boundary::{
    AcceptableAttestation, AdmissionRejection, AdmissionRequest, AuthorityRef, ExecutionEvent,
    ExecutionRef, ExecutionRequest, ExecutionResult, LaneCapabilities, Map, RejectionReason,
    ResultStatus, TargetAttestation, TargetDescriptor,
};
use ep_contracts::{Failure, FailureClass};
use ep_node::local_client::InProcessTargetClient;
use ep_node::node::Node;
use ep_node::sinks::file_chain::FileChainSink;
use ep_node::{
    AuthorityVerifier, ConnectOptions, Dispatch, EventStream, ExecutionContext, LaneAdapter,
    TargetClient, TargetError, TargetVerifier,
};
use ep_server::{ApiOptions, RunningServer, serve_node};
use futures::StreamExt;
use http::{HeaderMap, Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};

/// Hang guard only: generous, never a performance assertion.
pub const HANG_GUARD: Duration = Duration::from_secs(60);

/// The class the stub verifier attests.
pub const WEAK: &str = "local-process-weak";
/// A class no verifier here can attest.
pub const STRONG: &str = "spiffe://prod/microvm-strict@v1";
/// The operator token the test servers use.
pub const TOKEN: &str = "test-operator-token";

/// Runs `future` under the hang guard.
pub async fn guarded<F: std::future::Future>(future: F) -> F::Output {
    tokio::time::timeout(HANG_GUARD, future)
        .await
        .expect("the hang guard fired: the test hung")
}

pub fn obj(value: Value) -> Map {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

fn caps(lane_id: &str, stream: bool) -> LaneCapabilities {
    LaneCapabilities {
        lane_id: Some(lane_id.to_owned()),
        protocols: vec!["process".to_owned()],
        surfaces: vec!["local_subprocess".to_owned()],
        supports_execute: true,
        supports_stream: stream,
        ..LaneCapabilities::default()
    }
}

/// The failed result of `class` for `reference`.
pub fn failed(reference: ExecutionRef, class: FailureClass, cause: &str) -> ExecutionResult {
    ExecutionResult {
        status: ResultStatus::Failed,
        error: Some(
            Failure::new(class, cause)
                .with_detail("cause", cause)
                .to_value(),
        ),
        ..ExecutionResult::succeeded(reference, Map::new())
    }
}

/// Lane `process`, driven by its payload:
/// * `{"invalid": true}` → refused at validate (`invalid_lane_request`);
/// * `{"fail": "<class>"}` → a failed result of that class;
/// * `{"hold": true}` → reports its ref on `started`, then waits for `release` (succeeds) or
///   its cancel signal (fails with `cancellation`);
/// * anything else → succeeds with `{"echo": <payload>}`.
///
/// Streams: `{"events": n}` yields n `fake.chunk` events and ends; `{"events": n, "fail":
/// "<class>"}` ends with a `lane.failed` event reporting that failure; `{"hold": true}` yields
/// one event every `tick_ms` (default 10) until dropped, reporting its ref on `started` and on
/// `stopped` when its cancel signal fires.
pub struct TestLane {
    pub started: mpsc::UnboundedSender<ExecutionRef>,
    pub stopped: mpsc::UnboundedSender<ExecutionRef>,
    pub release: Arc<Notify>,
}

/// A [`TestLane`] and the ends the test keeps.
pub struct LaneHandles {
    pub started: mpsc::UnboundedReceiver<ExecutionRef>,
    pub stopped: mpsc::UnboundedReceiver<ExecutionRef>,
    pub release: Arc<Notify>,
}

impl TestLane {
    pub fn new() -> (Self, LaneHandles) {
        let (started, started_rx) = mpsc::unbounded_channel();
        let (stopped, stopped_rx) = mpsc::unbounded_channel();
        let release = Arc::new(Notify::new());
        (
            Self {
                started,
                stopped,
                release: Arc::clone(&release),
            },
            LaneHandles {
                started: started_rx,
                stopped: stopped_rx,
                release,
            },
        )
    }
}

fn fail_class(payload: &Map) -> Option<FailureClass> {
    payload
        .get("fail")
        .and_then(Value::as_str)
        .and_then(FailureClass::parse)
}

#[async_trait]
impl LaneAdapter for TestLane {
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
                "the test lane refuses invalid payloads",
            ));
        }
        Ok(())
    }
    async fn execute(&self, request: ExecutionRequest, ctx: ExecutionContext) -> ExecutionResult {
        let reference = request.execution_ref.clone();
        if let Some(class) = fail_class(&request.payload) {
            return failed(reference, class, "asked to fail");
        }
        if request.payload.get("hold") == Some(&Value::Bool(true)) {
            // Waiting for the release from before `started` is sent: a `notify_waiters` the
            // test sends as soon as it hears `started` must not fall between the two.
            let released = self.release.notified();
            let _ = self.started.send(reference.clone());
            tokio::select! {
                () = released => {}
                () = ctx.cancel.cancelled() => {
                    let _ = self.stopped.send(reference.clone());
                    return failed(reference, FailureClass::Cancellation, "cancelled");
                }
            }
        }
        ExecutionResult::succeeded(
            reference,
            obj(json!({"echo": Value::Object(request.payload.clone())})),
        )
    }
    async fn stream(
        &self,
        request: ExecutionRequest,
        ctx: ExecutionContext,
    ) -> Result<EventStream, AdmissionRejection> {
        let reference = request.execution_ref.clone();
        let payload = request.payload.clone();
        if payload.get("hold") == Some(&Value::Bool(true)) {
            let _ = self.started.send(reference.clone());
            let stopped = self.stopped.clone();
            let watcher_ref = reference.clone();
            tokio::spawn(async move {
                ctx.cancel.cancelled().await;
                let _ = stopped.send(watcher_ref);
            });
            let tick = payload.get("tick_ms").and_then(Value::as_u64).unwrap_or(10);
            let events = futures::stream::unfold(0u64, move |n| {
                let reference = reference.clone();
                async move {
                    tokio::time::sleep(Duration::from_millis(tick)).await;
                    let event = ExecutionEvent::new(reference, "fake.tick", obj(json!({"n": n})));
                    Some((event, n + 1))
                }
            });
            return Ok(events.boxed());
        }
        let count = payload.get("events").and_then(Value::as_u64).unwrap_or(1);
        let mut events: Vec<ExecutionEvent> = (0..count)
            .map(|n| ExecutionEvent::new(reference.clone(), "fake.chunk", obj(json!({"n": n}))))
            .collect();
        if let Some(class) = fail_class(&payload) {
            let failure = Failure::new(class, "asked to fail").to_value();
            events.push(ExecutionEvent::new(
                reference,
                "lane.failed",
                obj(json!({"status": "failed", "error": failure})),
            ));
        }
        Ok(futures::stream::iter(events).boxed())
    }
}

/// Lane `unary`: executes, refuses streams with `not_supported`.
pub struct UnaryLane;

#[async_trait]
impl LaneAdapter for UnaryLane {
    fn lane_id(&self) -> &str {
        "unary"
    }
    fn capabilities(&self) -> LaneCapabilities {
        caps("unary", false)
    }
    async fn validate(&self, _request: &ExecutionRequest) -> Result<(), AdmissionRejection> {
        Ok(())
    }
    async fn execute(&self, request: ExecutionRequest, _ctx: ExecutionContext) -> ExecutionResult {
        ExecutionResult::succeeded(request.execution_ref, Map::new())
    }
    async fn stream(
        &self,
        _request: ExecutionRequest,
        _ctx: ExecutionContext,
    ) -> Result<EventStream, AdmissionRejection> {
        Err(AdmissionRejection::new(
            RejectionReason::NotSupported,
            "the unary lane does not stream",
        ))
    }
}

/// Authority verifier: only the ref `allow` passes.
pub struct AllowAuthority;

#[async_trait]
impl AuthorityVerifier for AllowAuthority {
    fn verifier_id(&self) -> &str {
        "test-authority"
    }
    async fn verify(
        &self,
        authority: &AuthorityRef,
        _request: &AdmissionRequest,
    ) -> Result<Map, AdmissionRejection> {
        if authority.reference.as_deref() == Some("allow") {
            Ok(Map::new())
        } else {
            Err(AdmissionRejection::new(
                RejectionReason::AuthorityRejected,
                "authority ref is not allowed",
            ))
        }
    }
}

/// Target verifier for type `stub`: a target of lane `evidence.lane_id`, class weak.
pub struct StubVerifier;

#[async_trait]
impl TargetVerifier for StubVerifier {
    fn verifier_id(&self) -> &str {
        "test-target-verifier"
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
        attestation: &TargetAttestation,
        _options: &ConnectOptions,
    ) -> Result<TargetDescriptor, AdmissionRejection> {
        let lane = attestation
            .evidence
            .get("lane_id")
            .and_then(Value::as_str)
            .unwrap_or("process");
        Ok(TargetDescriptor::new(
            format!("target-{lane}"),
            lane,
            "test-target-verifier",
            vec![WEAK.to_owned()],
        ))
    }
}

/// How to assemble the test node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setup {
    /// Lanes, verifiers, targets, authority, registration complete.
    Full,
    /// Like `Full` without completing registration.
    Incomplete,
    /// Like `Full` without an authority verifier.
    NoAuthority,
    /// Like `Full`, with a target client whose cancel always fails.
    FailingCancel,
}

/// A target client whose cancel always fails (the target is unreachable for it).
pub struct FailingCancelClient(pub InProcessTargetClient);

#[async_trait]
impl TargetClient for FailingCancelClient {
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
            target_id: "target-process".to_owned(),
            message: "connection refused".to_owned(),
        })
    }
}

/// A test node with a file-chain evidence log, served on a free port.
pub struct TestServer {
    pub server: RunningServer,
    pub node: Node,
    pub lane: LaneHandles,
    pub evidence: PathBuf,
    pub dir: tempfile::TempDir,
}

impl TestServer {
    pub async fn start(setup: Setup) -> Self {
        Self::start_with(setup, ApiOptions::default()).await
    }

    pub async fn start_with(setup: Setup, mut options: ApiOptions) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let evidence = dir.path().join("evidence.jsonl");
        let node = Node::new("node-test");
        node.register_evidence_sink(Arc::new(FileChainSink::open(&evidence).unwrap()));
        let (lane, handles) = TestLane::new();
        node.register_lane(Arc::new(lane));
        node.register_lane(Arc::new(UnaryLane));
        node.register_target_verifier(Arc::new(StubVerifier));
        for lane_id in ["process", "unary"] {
            let attestation = TargetAttestation {
                attestation_type: Some("stub".to_owned()),
                evidence: obj(json!({"lane_id": lane_id})),
                ..TargetAttestation::default()
            };
            let client: Arc<dyn TargetClient> = if setup == Setup::FailingCancel {
                Arc::new(FailingCancelClient(InProcessTargetClient::bound(
                    node.downgrade(),
                )))
            } else {
                node.in_process_client()
            };
            node.connect_target(attestation, client, ConnectOptions::default())
                .await
                .unwrap();
        }
        if setup != Setup::NoAuthority {
            node.register_authority_verifier(Arc::new(AllowAuthority));
        }
        if setup != Setup::Incomplete {
            node.complete_registration();
        }
        if options.operator_token.is_none() {
            options.operator_token = Some(TOKEN.to_owned());
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = serve_node(node.clone(), options, listener).await.unwrap();
        Self {
            server,
            node,
            lane: handles,
            evidence,
            dir,
        }
    }

    pub fn client(&self) -> Http {
        Http::new(&self.server.url())
    }

    /// Shuts down, checks the evidence was flushed and the chain verifies.
    pub async fn finish(self) {
        let (report, _) = self.stop().await;
        assert_eq!(report.flush_error, None);
    }

    /// Shuts down and returns the evidence records (the chain verified).
    pub async fn stop(self) -> (ep_server::ShutdownReport, Vec<Value>) {
        let report = guarded(self.server.shutdown(Duration::from_secs(30))).await;
        let records = read_chain(&self.evidence);
        (report, records)
    }
}

/// Verifies the hash chain of `path` and returns its records.
pub fn read_chain(path: &Path) -> Vec<Value> {
    let report =
        ep_node::sinks::file_chain::verify_chain(path).expect("the evidence chain verifies");
    let text = std::fs::read_to_string(path).unwrap();
    let records: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len() as u64, report.records);
    records
}

/// The evidence type of a chain record (records may wrap the evidence).
pub fn record_type(record: &Value) -> &str {
    record["evidence_type"]
        .as_str()
        .or_else(|| record["evidence"]["evidence_type"].as_str())
        .unwrap_or_default()
}

/// The payload of a chain record.
pub fn record_payload(record: &Value) -> &Value {
    if record.get("payload").is_some() {
        &record["payload"]
    } else {
        &record["evidence"]["payload"]
    }
}

/// A governed request for `lane` with `payload`, ref `allow`, class weak.
pub fn governed(lane: &str, payload: Value) -> AdmissionRequest {
    let mut request = AdmissionRequest::new(lane);
    request.payload = obj(payload);
    request.authority_ref = Some(AuthorityRef {
        reference: Some("allow".to_owned()),
        ..AuthorityRef::default()
    });
    request.acceptable_attestation = AcceptableAttestation::of([WEAK]);
    request
}

/// An answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `error.code` of an error envelope.
    pub fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

/// A hyper client bound to one server.
#[derive(Clone)]
pub struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
}

impl Http {
    pub fn new(base: &str) -> Self {
        Self {
            client: Client::builder(TokioExecutor::new()).build_http(),
            base: base.to_owned(),
        }
    }

    /// HTTP/2 with prior knowledge (h2c).
    pub fn h2(base: &str) -> Self {
        Self {
            client: Client::builder(TokioExecutor::new())
                .http2_only(true)
                .build_http(),
            base: base.to_owned(),
        }
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Reply {
        let mut builder = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let body = Full::new(Bytes::from(body.unwrap_or_default().to_owned()));
        let response = guarded(self.client.request(builder.body(body).unwrap()))
            .await
            .unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = guarded(response.into_body().collect())
            .await
            .unwrap()
            .to_bytes();
        Reply {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, &[], None).await
    }

    pub async fn operator_get(&self, path: &str) -> Reply {
        let auth = format!("Bearer {TOKEN}");
        self.send(Method::GET, path, &[("authorization", &auth)], None)
            .await
    }

    pub async fn operator_post(&self, path: &str) -> Reply {
        let auth = format!("Bearer {TOKEN}");
        self.send(Method::POST, path, &[("authorization", &auth)], None)
            .await
    }

    /// Posts `request`; a direct one carries the operator token, as only the operator may
    /// send those.
    pub async fn post(&self, path: &str, request: &AdmissionRequest) -> Reply {
        let body = ep_contracts::dump(request);
        let auth = format!("Bearer {TOKEN}");
        let mut headers = vec![("content-type", "application/json")];
        if request.provenance.is_direct() {
            headers.push(("authorization", &auth));
        }
        self.send(Method::POST, path, &headers, Some(&body)).await
    }
}

/// One SSE frame.
#[derive(Debug, Clone)]
pub struct SseFrame {
    pub event: String,
    pub data: Value,
}

/// Parses a whole `text/event-stream` body; comment lines are skipped.
pub fn parse_sse(body: &str) -> Vec<SseFrame> {
    let mut frames = Vec::new();
    for block in body.split("\n\n") {
        let mut event = None;
        let mut data = String::new();
        for line in block.lines() {
            if line.starts_with(':') {
                continue;
            }
            if let Some(name) = line.strip_prefix("event: ") {
                event = Some(name.to_owned());
            } else if let Some(text) = line.strip_prefix("data: ") {
                data.push_str(text);
            }
        }
        if let Some(event) = event {
            frames.push(SseFrame {
                event,
                data: serde_json::from_str(&data).unwrap(),
            });
        }
    }
    frames
}

/// Writes a POST of `body` (JSON, with its `content-length`) on a raw connection.
pub async fn write_post(socket: &mut tokio::net::TcpStream, path: &str, body: &str) {
    use tokio::io::AsyncWriteExt;
    let request = format!(
        "POST {path} HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n{body}",
        body.len()
    );
    socket.write_all(request.as_bytes()).await.unwrap();
}

/// Reads from `socket` until `needle` has been seen; returns everything read.
pub async fn read_until(socket: &mut tokio::net::TcpStream, needle: &str) -> String {
    use tokio::io::AsyncReadExt;
    let mut seen = String::new();
    let mut buffer = [0u8; 4096];
    guarded(async {
        while !seen.contains(needle) {
            let n = socket.read(&mut buffer).await.unwrap();
            assert!(n > 0, "connection closed before {needle:?}: {seen}");
            seen.push_str(&String::from_utf8_lossy(&buffer[..n]));
        }
    })
    .await;
    seen
}

/// Reads from `socket` until the server closes it; returns everything read (a reset after the
/// answer counts as the close).
pub async fn read_to_close(socket: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut seen = Vec::new();
    let mut buffer = [0u8; 4096];
    guarded(async {
        loop {
            match socket.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await;
    String::from_utf8_lossy(&seen).into_owned()
}

/// The JSON body of a raw HTTP/1.1 answer (after the blank line).
pub fn raw_body(answer: &str) -> Value {
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {answer:?}"))
}
