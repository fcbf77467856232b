//! Governed admission (Ed25519 authority verification + target selection) over 1, 10 and 100
//! verified targets, against the baseline of the bare Ed25519 signature check it contains.
//! The matching target sorts last, so selection walks every target.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use ep_contracts::boundary::{
    AcceptableAttestation, AdmissionRejection, AdmissionRequest, ExecutionRequest, ExecutionResult,
    LaneCapabilities, Map, SandboxProfile,
};
use ep_node::authority::{SigningKeyFile, TrustStore, TrustedKey, sign_request, signing_message};
use ep_node::node::Node;
use ep_node::sinks::memory::MemorySink;
use ep_node::verifiers::ed25519_authority::Ed25519AuthorityVerifier;
use ep_node::verifiers::local_weak::{LocalWeakVerifier, MintOptions};
use ep_node::{ConnectOptions, EventStream, ExecutionContext, LaneAdapter};
use serde_json::json;
use std::hint::black_box;

struct NoopLane;

#[async_trait]
impl LaneAdapter for NoopLane {
    fn lane_id(&self) -> &str {
        "process"
    }
    fn capabilities(&self) -> LaneCapabilities {
        LaneCapabilities::default()
    }
    async fn validate(&self, _: &ExecutionRequest) -> Result<(), AdmissionRejection> {
        Ok(())
    }
    async fn execute(&self, request: ExecutionRequest, _: ExecutionContext) -> ExecutionResult {
        ExecutionResult::succeeded(request.execution_ref, Map::new())
    }
    async fn stream(
        &self,
        _: ExecutionRequest,
        _: ExecutionContext,
    ) -> Result<EventStream, AdmissionRejection> {
        Ok(Box::pin(futures::stream::empty()))
    }
}

struct Setup {
    node: Node,
    request: AdmissionRequest,
}

fn setup(rt: &tokio::runtime::Runtime, key: &SigningKeyFile, targets: usize) -> Setup {
    let trust = TrustStore::new()
        .with_key(TrustedKey {
            key_id: key.key_id().to_owned(),
            public_key: key.verifying_key(),
            not_after: None,
        })
        .unwrap_or_default();
    let node = Node::new("node-bench");
    node.register_lane(Arc::new(NoopLane));
    node.register_target_verifier(Arc::new(LocalWeakVerifier::new()));
    node.register_evidence_sink(Arc::new(MemorySink::new("bench-sink")));
    node.register_authority_verifier(Arc::new(Ed25519AuthorityVerifier::new("node-bench", trust)));
    rt.block_on(async {
        for i in 0..targets {
            let last = i + 1 == targets;
            let options = ConnectOptions {
                target_id: Some(format!("target-{i:04}")),
                lane_id: Some(if last { "process" } else { "other" }.to_owned()),
                extra: Map::new(),
            };
            let attestation = LocalWeakVerifier::mint_attestation(&MintOptions::default());
            let client = node.in_process_client();
            let _ = node.connect_target(attestation, client, options).await;
        }
    });
    node.complete_registration();
    let payload: Map = match json!({"command": "echo", "argv": ["ok"]}) {
        serde_json::Value::Object(m) => m,
        _ => Map::new(),
    };
    let mut request = AdmissionRequest::new("process");
    request.payload = payload;
    request.acceptable_attestation = AcceptableAttestation::of(["local-process-weak"]);
    request.sandbox_profile = Some(SandboxProfile {
        bundle_hash: Some("sha256:bench".to_owned()),
        ..SandboxProfile::default()
    });
    // `admit` only verifies (it does not use the ref up), so one ref serves every iteration.
    request.authority_ref = Some(sign_request(
        key,
        &request,
        "node-bench",
        Duration::from_secs(3600),
        chrono::Utc::now(),
    ));
    Setup { node, request }
}

fn bench_admission(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    let key = SigningKeyFile::from_seed("bench", [7u8; 32]);
    let mut group = c.benchmark_group("governed_admission");

    // Baseline: the Ed25519 check alone, over the same signed message.
    let probe = setup(&rt, &key, 1);
    let authority = probe.request.authority_ref.clone().unwrap_or_default();
    let meta = |key: &str| {
        authority
            .metadata
            .get(key)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned()
    };
    let fields = ep_node::authority::AuthorityFields {
        reference: authority.reference.clone().unwrap_or_default(),
        payload_hash: authority.payload_hash.clone().unwrap_or_default(),
        request_hash: meta("request_hash"),
        nonce: meta("nonce"),
        audience: authority.audience.clone().unwrap_or_default(),
        issued_at: authority.issued_at.clone().unwrap_or_default(),
        expires_at: authority.expires_at.clone().unwrap_or_default(),
    };
    let message = signing_message(key.key_id(), &fields);
    let signature_b64 = authority
        .metadata
        .get("signature")
        .and_then(|v| v.as_str())
        .unwrap_or("");
    use base64::Engine;
    let signature_bytes = base64::engine::general_purpose::STANDARD
        .decode(signature_b64)
        .unwrap_or_default();
    let signature = ed25519_dalek::Signature::from_slice(&signature_bytes)
        .unwrap_or_else(|e| panic!("signature: {e}"));
    let verifying = key.verifying_key();
    assert!(
        verifying
            .verify_strict(message.as_bytes(), &signature)
            .is_ok()
    );
    group.bench_function("baseline_ed25519_verify_strict", |b| {
        b.iter(|| black_box(verifying.verify_strict(black_box(message.as_bytes()), &signature)))
    });

    for targets in [1usize, 10, 100] {
        let s = setup(&rt, &key, targets);
        let decision = rt.block_on(s.node.admit(s.request.clone()));
        assert!(decision.is_ok(), "admission must accept: {decision:?}");
        group.bench_with_input(BenchmarkId::new("admit", targets), &targets, |b, _| {
            b.iter(|| rt.block_on(s.node.admit(black_box(s.request.clone()))))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = bench_admission
}
criterion_main!(benches);
