//! Hot swap of a real wasm lane while several clients hammer `/v1/execute` over the API: no
//! request fails, both generations serve, and the operator routes list and roll back the lane.
//! Rollbacks stick: an unchanged reload, and a restart on the same state and plugin
//! directories, keep a rolled-back version out until the operator reinstates it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod served;
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

/// A host started by `start` on `config`, with the tests' operator token.
async fn serve(config: &ep_server::ServeConfig) -> (ep_server::RunningServer, Http) {
    served::use_test_token(config);
    let server = served::start_loaded(config.clone()).await;
    let http = Http::new(&server.url());
    (server, http)
}

async fn stop(server: ep_server::RunningServer) {
    let report = guarded(server.shutdown(Duration::from_secs(30))).await;
    assert_eq!(report.flush_error, None);
}

/// Asserts the lane `echo` serves `digest` (listed and executed) and lists `withdrawn` as
/// `(digest, state)`.
async fn assert_echo(http: &Http, digest: &str, withdrawn: &[(&str, &str)]) {
    let lane = served::listed(http, "echo").await.unwrap();
    assert_eq!(lane["digest"], digest, "{lane}");
    let listed: Vec<(String, String)> = lane["withdrawn"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w["digest"].as_str().unwrap().to_owned(),
                w["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = withdrawn
        .iter()
        .map(|(d, s)| ((*d).to_owned(), (*s).to_owned()))
        .collect();
    assert_eq!(listed, expected, "{lane}");
    assert_eq!(served::echo_digest(http).await, digest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unchanged_reload_keeps_rolled_back_versions_out_also_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = served::setup(dir.path(), false);
    let plugins = dir.path().join("plugins");
    let (echo, echo_v2, trap) = (
        served::bytes_of("echo"),
        served::bytes_of("echo-v2"),
        served::bytes_of("trap-echo"),
    );
    let (a, b, t) = (
        served::sha256(&echo),
        served::sha256(&echo_v2),
        served::sha256(&trap),
    );

    // Operator rollback: v2 deployed and reloaded, rolled back; unchanged reloads keep it out.
    let (server, http) = serve(&config).await;
    assert_echo(&http, &a, &[]).await;
    served::deploy(&plugins, "echo", &echo_v2);
    assert_eq!(
        served::reload(&http).await["lanes"][0]["digest"],
        b.as_str()
    );
    let rollback = http.operator_post("/v1/lanes/echo/rollback").await;
    assert_eq!(
        rollback.json()["to_digest"],
        a.as_str(),
        "{}",
        rollback.body
    );
    for _ in 0..2 {
        let report = served::reload(&http).await;
        assert_eq!(report["status"], "reloaded", "{report}");
        assert_echo(&http, &a, &[(&b, "withdrawn")]).await;
    }
    stop(server).await;

    // A new host on the same state and plugin directories: v2 is still in the file, still out.
    let (server, http) = serve(&config).await;
    assert_echo(&http, &a, &[(&b, "withdrawn")]).await;
    served::reload(&http).await;
    assert_echo(&http, &a, &[(&b, "withdrawn")]).await;

    // Automatic rollback: a version that traps on every call is deployed (another artifact:
    // the operator's withdrawal of v2 ends) and rolled back after its first faults.
    served::deploy(&plugins, "echo", &trap);
    assert_eq!(
        served::reload(&http).await["lanes"][0]["digest"],
        t.as_str()
    );
    let callers: Vec<_> = (0..8)
        .map(|n| {
            let http = http.clone();
            tokio::spawn(async move {
                let reply = http
                    .post("/v1/execute", &served::direct("echo", json!({"n": n})))
                    .await;
                reply.json()["evidence"][0]["component_digest"]
                    .as_str()
                    .map(str::to_owned)
            })
        })
        .collect();
    let mut ran_on_trap = 0;
    for caller in callers {
        if guarded(caller).await.unwrap().as_deref() == Some(t.as_str()) {
            ran_on_trap += 1;
        }
    }
    guarded(async {
        while served::listed(&http, "echo").await.unwrap()["digest"] != a.as_str() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    for _ in 0..2 {
        served::reload(&http).await;
        assert_echo(&http, &a, &[(&t, "quarantined")]).await;
    }
    stop(server).await;

    // The rollback record counts every execution that ran on the trapping generation.
    let records = read_chain(&config.evidence.log_path());
    let rolled_back: Vec<&Value> = records
        .iter()
        .filter(|r| record_type(r) == "lane.rolled_back")
        .map(record_payload)
        .collect();
    assert_eq!(rolled_back.len(), 2, "{rolled_back:?}");
    let automatic = rolled_back[1];
    assert_eq!(automatic["reason"], "automatic");
    assert_eq!(automatic["withdrawal"], "quarantined");
    let completed_on_trap = records
        .iter()
        .filter(|r| record_type(r) == "execution.completed")
        .filter(|r| record_payload(r)["lane_evidence"][0]["component_digest"] == t.as_str())
        .count();
    assert_eq!(completed_on_trap, ran_on_trap);
    assert_eq!(automatic["executions"], ran_on_trap, "{automatic}");
    assert!(ran_on_trap >= 3, "{automatic}");

    // And across another restart; until the operator reinstates it.
    let (server, http) = serve(&config).await;
    assert_echo(&http, &a, &[(&t, "quarantined")]).await;
    let path = format!("/v1/lanes/echo/digests/{t}/reinstate");
    let reinstated = http.operator_post(&path).await;
    assert_eq!(reinstated.status, 200, "{}", reinstated.body);
    let answer = reinstated.json();
    assert_eq!(answer["was"], "quarantined", "{answer}");
    assert_eq!(answer["lane"]["digest"], t.as_str(), "{answer}");
    let again = http.operator_post(&path).await;
    assert_eq!(
        (again.status, again.code()),
        (404, "not_withdrawn".to_owned())
    );
    stop(server).await;
    let records = read_chain(&config.evidence.log_path());
    assert!(records.iter().any(|r| record_type(r) == "lane.reinstated"));
}
