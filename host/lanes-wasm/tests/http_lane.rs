//! The first-party HTTP lane (built from `plugins/http` and embedded by `ep-builtin-lanes`)
//! against a real HTTP server on loopback: unary semantics, timeouts, and the grant denial
//! matrix enforced by the host's `wasi:http` send hook.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;

use ep_contracts::boundary::{
    AdmissionRejection, AdmissionRequest, AuthorityRef, ExecutionResult, Map, ResultStatus,
};
use ep_lanes_wasm::egress::HttpGrants;
use ep_lanes_wasm::test_server::TestServer;
use ep_lanes_wasm::{Grants, LaneLimits, LaneSource, WasmLane, WasmRuntime, register_wasm_lane};
use ep_node::node::Node;
use ep_node::sinks::memory::MemorySink;
use ep_node::{AuthorityVerifier, LaneAdapter};
use serde_json::{Value, json};
use support::*;

/// The HTTP lane granted `public` and `private` patterns.
async fn http_lane(rt: &WasmRuntime, public: &[&str], private: &[&str]) -> WasmLane {
    http_lane_with(rt, public, private, LaneLimits::default()).await
}

async fn http_lane_with(
    rt: &WasmRuntime,
    public: &[&str],
    private: &[&str],
    limits: LaneLimits,
) -> WasmLane {
    let grants = Grants::default().with_http(HttpGrants::parse(public, private).unwrap());
    let wasm = ep_builtin_lanes::http().wasm;
    WasmLane::load_with_grants(rt, LaneSource::from(wasm), limits, grants)
        .await
        .unwrap_or_else(|e| panic!("the http lane loads: {e}"))
}

async fn run(lane: &WasmLane, payload: Value) -> ExecutionResult {
    guarded(lane.execute(request(None, payload), ctx())).await
}

fn output(result: &ExecutionResult) -> &Map {
    assert_eq!(result.status, ResultStatus::Succeeded, "{result:?}");
    &result.output
}

/// The `capability.denied` entries of a result's evidence.
fn denials(result: &ExecutionResult) -> Vec<&Value> {
    result
        .evidence
        .iter()
        .filter(|e| e["kind"] == "capability.denied")
        .collect()
}

fn denied_reason(result: &ExecutionResult) -> String {
    let (class, cause) = failure_of(result);
    assert_eq!(
        (class.as_str(), cause.as_str()),
        ("policy_denied", "capability_denied"),
        "{result:?}"
    );
    let found = denials(result);
    assert_eq!(found.len(), 1, "{:?}", result.evidence);
    found[0]["reason"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn get_reaches_the_server_and_returns_status_headers_and_body() {
    let server = TestServer::start().await.unwrap();
    let rt = runtime();
    let lane = http_lane(&rt, &["http://127.0.0.1:*"], &[]).await;
    let result = run(
        &lane,
        json!({"url": server.url("/echo?a=1"), "method": "get"}),
    )
    .await;
    let out = output(&result);
    assert_eq!(out["status_code"], 200);
    assert_eq!(out["headers"]["content-type"], "application/json");
    let body: Value = serde_json::from_str(out["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["method"], "GET");
    assert_eq!(body["query"], "a=1");
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, "GET");
    assert!(seen[0].body.is_empty(), "GET with no body sends none");
    // Evidence names the component and counts the request.
    assert_eq!(result.evidence[0]["http"]["requests"], 1);
    assert_eq!(result.evidence[0]["http"]["denied"], 0);
    assert!(denials(&result).is_empty());
}

#[tokio::test]
async fn post_sends_a_json_body_with_the_default_content_type() {
    let server = TestServer::start().await.unwrap();
    let rt = runtime();
    let lane = http_lane(&rt, &["http://127.0.0.1:*"], &[]).await;
    let result = run(
        &lane,
        json!({"url": server.url("/created"), "body": {"ping": "pong"}}),
    )
    .await;
    let out = output(&result);
    assert_eq!(out["status_code"], 201);
    assert_eq!(out["body"], r#"{"ok":true}"#);
    let seen = server.seen();
    assert_eq!(seen[0].method, "POST", "POST is the default method");
    assert_eq!(seen[0].header("content-type"), Some("application/json"));
    let sent: Value = serde_json::from_slice(&seen[0].body).unwrap();
    assert_eq!(sent, json!({"ping": "pong"}));
}

#[tokio::test]
async fn headers_are_forwarded_and_content_type_can_be_overridden() {
    let server = TestServer::start().await.unwrap();
    let rt = runtime();
    let lane = http_lane(&rt, &["http://127.0.0.1:*"], &[]).await;
    let result = run(
        &lane,
        json!({
            "url": server.url("/echo"),
            "method": "PUT",
            "headers": {"x-trace": "abc", "content-type": "text/plain"},
            "body": "raw text",
        }),
    )
    .await;
    assert_eq!(output(&result)["status_code"], 200);
    let seen = &server.seen()[0];
    assert_eq!(seen.method, "PUT");
    assert_eq!(seen.header("x-trace"), Some("abc"));
    assert_eq!(seen.header("content-type"), Some("text/plain"));
    assert_eq!(seen.body, b"raw text");
}

#[tokio::test]
async fn client_and_server_errors_are_lower_successes() {
    let server = TestServer::start().await.unwrap();
    let rt = runtime();
    let lane = http_lane(&rt, &["http://127.0.0.1:*"], &[]).await;
    for code in [404, 418, 500, 503] {
        let result = run(
            &lane,
            json!({"url": server.url(&format!("/status/{code}")), "method": "GET"}),
        )
        .await;
        assert_eq!(output(&result)["status_code"], code);
        assert_eq!(output(&result)["body"], format!("status {code}"));
    }
}

#[tokio::test]
async fn a_slow_server_ends_in_a_timeout_failure() {
    let server = TestServer::start().await.unwrap();
    let rt = runtime();
    let lane = http_lane(&rt, &["http://127.0.0.1:*"], &[]).await;
    let slow = with_timeout(
        request(
            None,
            json!({"url": server.url("/slow/10000"), "method": "GET"}),
        ),
        300,
    );
    let result = guarded(lane.execute(slow, ctx())).await;
    let (class, _) = failure_of(&result);
    assert_eq!(class, "timeout", "{result:?}");
    // A body that stalls between bytes is cut the same way.
    let stall = with_timeout(
        request(None, json!({"url": server.url("/stall"), "method": "GET"})),
        300,
    );
    let result = guarded(lane.execute(stall, ctx())).await;
    assert_eq!(failure_of(&result).0, "timeout", "{result:?}");
    // The lane goes on serving.
    let ok = run(&lane, json!({"url": server.url("/hello"), "method": "GET"})).await;
    assert_eq!(output(&ok)["body"], "hello");
}

#[tokio::test]
async fn an_invalid_method_fails_before_any_io() {
    let server = TestServer::start().await.unwrap();
    let rt = runtime();
    let lane = http_lane(&rt, &["http://127.0.0.1:*"], &[]).await;
    let result = run(&lane, json!({"url": server.url("/echo"), "method": "BREW"})).await;
    let (class, _) = failure_of(&result);
    assert_eq!(class, "transport_failed");
    let error = result.error.as_ref().unwrap();
    assert_eq!(error["reason"], "invalid http method");
    assert_eq!(error["details"]["error"], "invalid_http_method: \"BREW\"");
    assert!(server.seen().is_empty(), "nothing reached the server");
}

#[tokio::test]
async fn a_host_that_is_not_granted_is_denied_without_a_connection() {
    let server = TestServer::start().await.unwrap();
    let rt = runtime();
    let lane = http_lane(&rt, &["http://127.0.0.1:*"], &[]).await;
    let url = format!("http://localhost:{}/echo", server.addr().port());
    let result = run(&lane, json!({"url": url, "method": "GET"})).await;
    assert_eq!(denied_reason(&result), "no_matching_grant");
    assert!(server.seen().is_empty());
}

#[tokio::test]
async fn a_port_that_is_not_granted_is_denied() {
    let server = TestServer::start().await.unwrap();
    let rt = runtime();
    let granted = format!("http://127.0.0.1:{}", server.addr().port() ^ 1);
    let lane = http_lane(&rt, &[granted.as_str()], &[]).await;
    let result = run(&lane, json!({"url": server.url("/echo"), "method": "GET"})).await;
    assert_eq!(denied_reason(&result), "no_matching_grant");
    assert!(server.seen().is_empty());
}

#[tokio::test]
async fn a_granted_name_resolving_to_loopback_needs_a_private_grant() {
    let server = TestServer::start().await.unwrap();
    let port = server.addr().port();
    let rt = runtime();
    let pattern = format!("http://localhost:{port}");
    let url = format!("http://localhost:{port}/echo");
    let public = http_lane(&rt, &[pattern.as_str()], &[]).await;
    let result = run(&public, json!({"url": url, "method": "GET"})).await;
    assert_eq!(denied_reason(&result), "address_not_allowed");
    let detail = &denials(&result)[0]["detail"];
    assert_eq!(detail["reach"], "public");
    assert!(
        detail["addresses"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["class"] == "loopback"),
        "{detail}"
    );
    assert!(server.seen().is_empty());
    // The same name as an explicit private grant reaches the server.
    let private = http_lane(&rt, &[], &[pattern.as_str()]).await;
    let result = run(&private, json!({"url": url, "method": "GET"})).await;
    assert_eq!(output(&result)["status_code"], 200);
}

#[tokio::test]
async fn the_metadata_endpoint_is_refused_even_under_a_wildcard_grant() {
    let rt = runtime();
    let lane = http_lane(&rt, &["http://*:*"], &["http://*:*"]).await;
    let result = run(
        &lane,
        json!({"url": "http://169.254.169.254/latest/meta-data/", "method": "GET"}),
    )
    .await;
    assert_eq!(denied_reason(&result), "address_not_allowed");
}

#[tokio::test]
async fn redirects_are_followed_only_within_the_grants() {
    let server = TestServer::start().await.unwrap();
    let port = server.addr().port();
    let rt = runtime();
    let lane = http_lane(&rt, &["http://127.0.0.1:*"], &[]).await;
    // Within the grant: followed, and each hop reached the server.
    let inside = server.url(&format!("/redirect?to=http://127.0.0.1:{port}/echo"));
    let result = run(&lane, json!({"url": inside, "method": "GET"})).await;
    let out = output(&result);
    assert_eq!(out["status_code"], 200);
    assert_eq!(out["redirects"].as_array().unwrap().len(), 1);
    assert_eq!(server.seen().len(), 2);
    // To a host outside the grant: the hop is denied; only the first request went out.
    let outside = server.url(&format!("/redirect?to=http://localhost:{port}/echo"));
    let result = run(&lane, json!({"url": outside, "method": "GET"})).await;
    assert_eq!(denied_reason(&result), "no_matching_grant");
    assert_eq!(server.seen().len(), 3);
}

#[tokio::test]
async fn a_request_can_narrow_its_lane_egress_to_nothing_or_to_a_prefix() {
    let server = TestServer::start().await.unwrap();
    let rt = runtime();
    let lane = http_lane(&rt, &["http://127.0.0.1:*"], &[]).await;
    let mut none = request(None, json!({"url": server.url("/echo"), "method": "GET"}));
    none.metadata.insert("egress".into(), json!("none"));
    let result = guarded(lane.execute(none, ctx())).await;
    assert_eq!(denied_reason(&result), "request_denies_egress");
    let narrowed = |path: &str| {
        let mut r = request(None, json!({"url": server.url(path), "method": "GET"}));
        r.metadata
            .insert("egress".into(), json!([server.url("/status")]));
        r
    };
    let result = guarded(lane.execute(narrowed("/status/204"), ctx())).await;
    assert_eq!(output(&result)["status_code"], 204);
    let result = guarded(lane.execute(narrowed("/echo"), ctx())).await;
    assert_eq!(denied_reason(&result), "outside_request_egress");
    assert_eq!(server.seen().len(), 1);
}

#[tokio::test]
async fn a_response_over_the_cap_fails_the_execution() {
    let server = TestServer::start().await.unwrap();
    let rt = runtime();
    let limits = LaneLimits {
        max_response_bytes: 64 << 10,
        ..LaneLimits::default()
    };
    let lane = http_lane_with(&rt, &["http://127.0.0.1:*"], &[], limits).await;
    let result = run(
        &lane,
        json!({"url": server.url("/big/1000000"), "method": "GET"}),
    )
    .await;
    assert_eq!(failure_of(&result).0, "transport_failed", "{result:?}");
    let ok = run(
        &lane,
        json!({"url": server.url("/big/1000"), "method": "GET"}),
    )
    .await;
    assert_eq!(output(&ok)["body"].as_str().unwrap().len(), 1000);
}

#[tokio::test]
async fn a_lane_without_the_http_grant_cannot_load_the_http_component() {
    let rt = runtime();
    let wasm = ep_builtin_lanes::http().wasm;
    let error = WasmLane::load_with_grants(
        &rt,
        LaneSource::from(wasm),
        LaneLimits::default(),
        Grants::default(),
    )
    .await
    .expect_err("wasi:http is not granted");
    assert!(error.to_string().contains("wasi:http"), "{error}");
}

/// Allows every authority ref (authority is not what this test is about).
struct AllowAll;

#[async_trait::async_trait]
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

#[tokio::test]
async fn a_denial_through_a_node_is_its_own_capability_denied_evidence_record() {
    let server = TestServer::start().await.unwrap();
    let rt = runtime();
    let lane = Arc::new(http_lane(&rt, &["http://127.0.0.1:*"], &[]).await);
    let node = Node::new("node-http");
    let sink = Arc::new(MemorySink::new("memory"));
    node.register_evidence_sink(sink.clone());
    node.register_authority_verifier(Arc::new(AllowAll));
    node.complete_registration();
    register_wasm_lane(&node, Arc::clone(&lane)).await.unwrap();
    let mut admission = AdmissionRequest::new(lane.lane_id());
    admission.payload = obj(json!({
        "url": format!("http://localhost:{}/secret-token-123", server.addr().port()),
        "method": "GET",
    }));
    admission.authority_ref = Some(AuthorityRef {
        reference: Some("allow".to_owned()),
        ..AuthorityRef::default()
    });
    admission.acceptable_attestation =
        ep_contracts::boundary::AcceptableAttestation::of([ep_lanes_wasm::WASM_ENGINE_CLASS]);
    let result = guarded(node.execute(admission)).await;
    assert_eq!(result.status, ResultStatus::Failed);
    let types = sink.evidence_types();
    let denied = types.iter().position(|t| t == "capability.denied");
    let completed = types.iter().position(|t| t == "execution.completed");
    assert!(
        matches!((denied, completed), (Some(d), Some(c)) if d < c),
        "{types:?}"
    );
    let record = sink
        .records()
        .into_iter()
        .find(|r| r.evidence_type.as_deref() == Some("capability.denied"))
        .unwrap();
    assert_eq!(record.payload["reason"], "no_matching_grant");
    assert_eq!(record.lane_id.as_deref(), Some("http"));
    // The path may carry secrets: evidence keeps its fingerprint only.
    let text = serde_json::to_string(&record).unwrap();
    assert!(!text.contains("secret-token-123"), "{text}");
}
