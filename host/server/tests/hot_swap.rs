//! Hot swap of a real wasm lane while several clients hammer `/v1/execute` over the API: no
//! request fails, both generations serve, and the operator routes list and roll back the lane.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use ep_contracts::boundary::{
    AcceptableAttestation, AdmissionRejection, AdmissionRequest, AuthorityRef, Map,
};
use ep_lanes_wasm::testing::build_guest;
use ep_lanes_wasm::{
    LaneLimits, LaneSlot, LaneSource, RollbackPolicy, RuntimeConfig, SwapOutcome,
    WASM_ENGINE_CLASS, WasmLane, WasmRuntime, register_lane_slot,
};
use ep_node::AuthorityVerifier;
use ep_node::node::Node;
use ep_node::sinks::file_chain::FileChainSink;
use ep_server::{ApiOptions, SlotAdmin, serve_node};
use serde_json::{Value, json};
use support::*;

struct AllowAll;

#[async_trait]
impl AuthorityVerifier for AllowAll {
    fn verifier_id(&self) -> &str {
        "allow-all"
    }
    async fn verify(
        &self,
        _authority: &AuthorityRef,
        _request: &AdmissionRequest,
    ) -> Result<Map, AdmissionRejection> {
        Ok(Map::new())
    }
}

fn echo_request(payload: Value) -> AdmissionRequest {
    let mut request = AdmissionRequest::new("echo");
    request.payload = obj(payload);
    request.authority_ref = Some(AuthorityRef {
        reference: Some("allow".to_owned()),
        ..AuthorityRef::default()
    });
    request.acceptable_attestation = AcceptableAttestation::of([WASM_ENGINE_CLASS]);
    request
}

fn guest(name: &str) -> std::path::PathBuf {
    match build_guest(name) {
        Ok(path) => path,
        Err(error) => panic!("{error}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn swapping_a_wasm_lane_under_api_load_fails_no_request() {
    let echo: Arc<[u8]> = std::fs::read(guest("echo")).unwrap().into();
    let echo_v2: Arc<[u8]> = std::fs::read(guest("echo-v2")).unwrap().into();
    let a = ep_contracts::canonical::sha256_ref(&echo);
    let b = ep_contracts::canonical::sha256_ref(&echo_v2);

    let runtime = WasmRuntime::new(RuntimeConfig {
        max_instances: 24,
        ..RuntimeConfig::default()
    })
    .unwrap();
    let lane = WasmLane::load(
        &runtime,
        LaneSource::Bytes(Arc::clone(&echo)),
        LaneLimits::default(),
    )
    .await
    .unwrap();
    let slot = LaneSlot::new(lane, "bytes", RollbackPolicy::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let evidence = dir.path().join("evidence.jsonl");
    let node = Node::new("node-hot-swap");
    node.register_evidence_sink(Arc::new(FileChainSink::open(&evidence).unwrap()));
    node.register_authority_verifier(Arc::new(AllowAll));
    register_lane_slot(&node, &slot).await.unwrap();
    node.complete_registration();
    let options = ApiOptions {
        operator_token: Some(TOKEN.to_owned()),
        lanes: Some(Arc::new(SlotAdmin::new(vec![slot.clone()], None))),
        wasm: Some(runtime.clone()),
        ..ApiOptions::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = serve_node(node, options, listener).await.unwrap();
    let url = server.url();

    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..6)
        .map(|worker| {
            let http = if worker % 2 == 0 {
                Http::new(&url)
            } else {
                Http::h2(&url)
            };
            let stop = Arc::clone(&stop);
            tokio::spawn(async move {
                let mut replies = Vec::new();
                while !stop.load(Ordering::Relaxed) || replies.is_empty() {
                    let n = replies.len();
                    let reply = http
                        .post(
                            "/v1/execute",
                            &echo_request(json!({"worker": worker, "n": n})),
                        )
                        .await;
                    replies.push(reply);
                }
                replies
            })
        })
        .collect();
    for swap in 0..10 {
        let bytes = if swap % 2 == 0 { &echo_v2 } else { &echo };
        let outcome = guarded(slot.swap_component(LaneSource::Bytes(Arc::clone(bytes))))
            .await
            .unwrap();
        assert!(matches!(outcome, SwapOutcome::Activated(_)), "{outcome:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut digests = BTreeSet::new();
    let mut total = 0;
    for client in clients {
        for reply in guarded(client).await.unwrap() {
            assert_eq!(reply.status, 200, "{}", reply.body);
            let result = reply.json();
            assert_eq!(result["status"], "succeeded");
            digests.insert(
                result["evidence"][0]["component_digest"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
            total += 1;
        }
    }
    assert!(digests.iter().all(|d| *d == a || *d == b), "{digests:?}");
    eprintln!("{total} executions over 11 generations, digests {digests:?}");

    // The operator view: generation 11 serves `a` (echo), `b` can be rolled back to.
    let http = Http::new(&url);
    let lanes = http.operator_get("/v1/lanes").await;
    assert_eq!(lanes.status, 200);
    let listed = &lanes.json()["lanes"][0];
    assert_eq!(listed["lane_id"], "echo");
    assert_eq!(listed["generation"], 11);
    assert_eq!(listed["digest"], a.as_str());
    assert_eq!(listed["previous_digest"], b.as_str());
    let metrics = http.get("/metrics").await.body;
    assert!(
        metrics.contains(&format!(
            "ep_lane_generation{{lane=\"echo\",digest=\"{a}\"}} 11"
        )),
        "{metrics}"
    );
    assert!(
        metrics.contains("ep_wasm_instantiations_total"),
        "{metrics}"
    );
    assert!(
        metrics
            .contains("ep_lane_transitions_total{lane=\"echo\",transition=\"lane.activated\"} 10"),
        "{metrics}"
    );
    assert!(
        metrics.contains("ep_lane_queue_depth{lane=\"echo\"} 0"),
        "{metrics}"
    );

    let rollback = http.operator_post("/v1/lanes/echo/rollback").await;
    assert_eq!(rollback.status, 200, "{}", rollback.body);
    assert_eq!(
        rollback.json(),
        json!({"lane_id": "echo", "from_digest": a, "to_digest": b})
    );
    let again = http.operator_post("/v1/lanes/echo/rollback").await;
    assert_eq!(
        (again.status, again.code()),
        (409, "no_previous_generation".to_owned())
    );
    let after = http.post("/v1/execute", &echo_request(json!({}))).await;
    assert_eq!(after.status, 200);
    assert_eq!(after.json()["evidence"][0]["component_digest"], b.as_str());

    let report = guarded(server.shutdown(Duration::from_secs(30))).await;
    assert_eq!(report.flush_error, None);
    let records = read_chain(&evidence);
    let completed = records
        .iter()
        .filter(|r| record_type(r) == "execution.completed")
        .count();
    assert_eq!(completed, total + 1);
}
