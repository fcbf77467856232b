//! A governed execution end to end through the real parts: an Ed25519-signed authority ref, the
//! local weak target verifier, admission, a lane, and evidence in the hash-chained file log
//! (checked by `verify_chain`), with no body or secret anywhere in it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ep_contracts::boundary::{
    AcceptableAttestation, AdmissionRejection, AdmissionRequest, ExecutionRequest, ExecutionResult,
    LaneCapabilities, Map, ResultStatus, SandboxProfile,
};
use ep_node::authority::{SigningKeyFile, TrustStore, TrustedKey, sign_request};
use ep_node::node::Node;
use ep_node::sinks::file_chain::{FileChainSink, verify_chain};
use ep_node::sinks::memory::MemorySink;
use ep_node::verifiers::ed25519_authority::Ed25519AuthorityVerifier;
use ep_node::verifiers::local_weak::{LocalWeakVerifier, MintOptions};
use ep_node::{ConnectOptions, EventStream, ExecutionContext, LaneAdapter};
use serde_json::{Value, json};

const NODE_ID: &str = "node-e2e";
const SECRET_BODY: &str = "top secret body: sk-live-1234567890";

/// A lane that echoes the payload back as output (as an HTTP lane returns a response body).
struct EchoLane;

#[async_trait]
impl LaneAdapter for EchoLane {
    fn lane_id(&self) -> &str {
        "echo"
    }
    fn capabilities(&self) -> LaneCapabilities {
        LaneCapabilities {
            lane_id: Some("echo".into()),
            protocols: vec!["echo".into()],
            ..LaneCapabilities::default()
        }
    }
    async fn validate(&self, _: &ExecutionRequest) -> Result<(), AdmissionRejection> {
        Ok(())
    }
    async fn execute(&self, request: ExecutionRequest, _: ExecutionContext) -> ExecutionResult {
        let mut output = Map::new();
        output.insert(
            "body".into(),
            request.payload.get("body").cloned().unwrap_or(Value::Null),
        );
        ExecutionResult::succeeded(request.execution_ref, output)
    }
    async fn stream(
        &self,
        _: ExecutionRequest,
        _: ExecutionContext,
    ) -> Result<EventStream, AdmissionRejection> {
        Ok(Box::pin(futures::stream::empty()))
    }
}

struct Host {
    node: Node,
    key: SigningKeyFile,
    log: std::path::PathBuf,
    memory: Arc<MemorySink>,
    _dir: tempfile::TempDir,
}

async fn host() -> Host {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKeyFile::generate("ops").unwrap();
    let trust = TrustStore::new()
        .with_key(TrustedKey {
            key_id: "ops".into(),
            public_key: key.verifying_key(),
            not_after: None,
        })
        .unwrap();
    let log = dir.path().join("evidence.jsonl");
    let node = Node::new(NODE_ID);
    let memory = Arc::new(MemorySink::new("memory"));
    node.register_lane(Arc::new(EchoLane));
    node.register_target_verifier(Arc::new(LocalWeakVerifier::new()));
    node.register_evidence_sink(Arc::new(FileChainSink::open(&log).unwrap()));
    node.register_evidence_sink(memory.clone());
    node.register_authority_verifier(Arc::new(Ed25519AuthorityVerifier::new(NODE_ID, trust)));
    let attestation = LocalWeakVerifier::mint_attestation(&MintOptions {
        target_id: Some("local-1".into()),
        lane_id: Some("echo".into()),
        signature: None,
    });
    let client = node.in_process_client();
    node.connect_target(attestation, client, ConnectOptions::default())
        .await
        .unwrap();
    node.complete_registration();
    Host {
        node,
        key,
        log,
        memory,
        _dir: dir,
    }
}

fn payload() -> Map {
    match json!({"method": "POST", "url": "https://api.example.test/v1", "body": SECRET_BODY, "prompt": "raw prompt: tell me"})
    {
        Value::Object(m) => m,
        _ => unreachable!(),
    }
}

/// The governed request carrying `payload()`, with a ref signed for the same request but
/// carrying `signed_payload` (the two differ only when a test replays a ref on another payload).
fn request(
    host: &Host,
    signed_payload: &Map,
    audience: &str,
    ttl: Duration,
    now: chrono::DateTime<chrono::Utc>,
) -> AdmissionRequest {
    request_with(host, signed_payload, audience, ttl, now, |_| {})
}

/// [`request`] with `shape` applied before signing.
fn request_with(
    host: &Host,
    signed_payload: &Map,
    audience: &str,
    ttl: Duration,
    now: chrono::DateTime<chrono::Utc>,
    shape: impl Fn(&mut AdmissionRequest),
) -> AdmissionRequest {
    let mut request = AdmissionRequest::new("echo");
    request.acceptable_attestation = AcceptableAttestation::of(["local-process-weak"]);
    request.sandbox_profile = Some(SandboxProfile {
        profile_ref: Some("sandbox://default".into()),
        bundle_hash: Some("sha256:bundle".into()),
        ..SandboxProfile::default()
    });
    shape(&mut request);
    request.payload = signed_payload.clone();
    let authority = sign_request(&host.key, &request, audience, ttl, now);
    request.payload = payload();
    request.authority_ref = Some(authority);
    request
}

#[tokio::test]
async fn signed_governed_execution_runs_and_leaves_a_verifiable_bounded_evidence_chain() {
    let host = host().await;
    let result = host
        .node
        .execute(request(
            &host,
            &payload(),
            NODE_ID,
            Duration::from_secs(60),
            chrono::Utc::now(),
        ))
        .await;
    assert_eq!(result.status, ResultStatus::Succeeded, "{result:?}");
    assert_eq!(
        result.output["body"], SECRET_BODY,
        "the caller gets the output"
    );
    host.node.shutdown().await.unwrap();

    assert_eq!(
        host.memory.evidence_types(),
        [
            "admission.accepted",
            "target.selected",
            "execution.started",
            "dispatch.started",
            "dispatch.completed",
            "execution.completed"
        ]
    );
    for record in host.memory.records() {
        assert_eq!(
            record.authority_verifier_id.as_deref(),
            Some("execution-plane:ed25519-authority:v1")
        );
        assert_eq!(record.target_id.as_deref(), Some("local-1"));
        assert_eq!(
            record.attestation_class.as_deref(),
            Some("local-process-weak")
        );
        assert_eq!(record.policy_bundle_hash.as_deref(), Some("sha256:bundle"));
        assert!(record.emitted_at.is_some());
    }
    let report = verify_chain(&host.log).unwrap();
    assert_eq!(report.records, 6);
    assert!(report.anchored);
    let text = std::fs::read_to_string(&host.log).unwrap();
    for secret in [SECRET_BODY, "sk-live", "raw prompt", "tell me"] {
        assert!(!text.contains(secret), "evidence log leaks {secret:?}");
    }
    for line in text.lines() {
        let record: Value = serde_json::from_str(line).unwrap();
        ep_contracts::simulation::scan_raw_evidence(&record["evidence"]["payload"]).unwrap();
    }
}

#[tokio::test]
async fn a_ref_signed_for_another_payload_cannot_be_replayed() {
    let host = host().await;
    let mut other = payload();
    other.insert("url".into(), "https://evil.example.test/".into());
    let result = host
        .node
        .execute(request(
            &host,
            &other,
            NODE_ID,
            Duration::from_secs(60),
            chrono::Utc::now(),
        ))
        .await;
    assert_eq!(result.status, ResultStatus::Rejected);
    let error = result.error.unwrap();
    assert_eq!(error["reason"], "authority_rejected");
    assert_eq!(error["details"]["check"], "payload_hash");
    host.node.shutdown().await.unwrap();
    assert_eq!(host.memory.evidence_types(), ["admission.rejected"]);
    assert_eq!(verify_chain(&host.log).unwrap().records, 1);
}

#[tokio::test]
async fn refs_for_another_node_or_past_their_expiry_are_rejected() {
    let host = host().await;
    let wrong_audience = host
        .node
        .execute(request(
            &host,
            &payload(),
            "node-other",
            Duration::from_secs(60),
            chrono::Utc::now(),
        ))
        .await;
    assert_eq!(
        wrong_audience.error.unwrap()["details"]["check"],
        "audience"
    );
    let expired = host
        .node
        .execute(request(
            &host,
            &payload(),
            NODE_ID,
            Duration::from_secs(1),
            chrono::Utc::now() - chrono::TimeDelta::seconds(30),
        ))
        .await;
    assert_eq!(expired.status, ResultStatus::Rejected);
    assert_eq!(expired.error.unwrap()["details"]["check"], "expires_at");
}

#[tokio::test]
async fn a_class_the_target_does_not_attest_is_never_downgraded() {
    let host = host().await;
    let req = request_with(
        &host,
        &payload(),
        NODE_ID,
        Duration::from_secs(60),
        chrono::Utc::now(),
        |r| r.acceptable_attestation = AcceptableAttestation::of(["wasm-engine:wasmtime@48"]),
    );
    let result = host.node.execute(req).await;
    assert_eq!(
        result.error.unwrap()["reason"],
        "no_satisfying_attested_target"
    );
}

#[tokio::test]
async fn a_ref_runs_one_execution_only() {
    let host = host().await;
    let request = request(
        &host,
        &payload(),
        NODE_ID,
        Duration::from_secs(60),
        chrono::Utc::now(),
    );
    // Admission alone does not use the ref up.
    host.node.admit(request.clone()).await.unwrap();
    let first = host.node.execute(request.clone()).await;
    assert_eq!(first.status, ResultStatus::Succeeded, "{first:?}");
    let replayed = host.node.execute(request.clone()).await;
    assert_eq!(replayed.status, ResultStatus::Rejected);
    assert_eq!(replayed.error.unwrap()["details"]["check"], "replayed");
    let Err(ep_node::RuntimeError::Rejected(rejection)) = host.node.stream(request).await else {
        panic!("a used ref must not open a stream either");
    };
    assert_eq!(rejection.details["check"], "replayed");
}

#[tokio::test]
async fn a_ref_for_a_narrowed_request_does_not_admit_the_widened_one() {
    let host = host().await;
    let mut narrowed = request_with(
        &host,
        &payload(),
        NODE_ID,
        Duration::from_secs(60),
        chrono::Utc::now(),
        |r| {
            r.metadata.insert("egress".into(), json!("none"));
        },
    );
    narrowed.metadata.remove("egress");
    let result = host.node.execute(narrowed).await;
    assert_eq!(result.status, ResultStatus::Rejected);
    assert_eq!(result.error.unwrap()["details"]["check"], "request_hash");
    assert_eq!(host.memory.evidence_types(), ["admission.rejected"]);
}
