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
    run_request(lane, request(None, payload)).await
}

/// Runs `request` on `lane` and shows the capability denials the lane reported (typed, through
/// the context's evidence handle) in the result's evidence, as the node does.
async fn run_request(
    lane: &WasmLane,
    request: ep_contracts::boundary::ExecutionRequest,
) -> ExecutionResult {
    let ctx = ctx();
    let reported = ctx.evidence.clone();
    let mut result = guarded(lane.execute(request, ctx)).await;
    let lane_id = lane.lane_id().to_owned();
    result.evidence.extend(
        reported
            .take_denials()
            .iter()
            .map(|denial| denial.to_value(&lane_id)),
    );
    result
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
    let slow = request(
        None,
        json!({"url": server.url("/slow/10000"), "method": "GET"}),
    );
    let result = guarded(lane.execute(slow, within(300))).await;
    let (class, _) = failure_of(&result);
    assert_eq!(class, "timeout", "{result:?}");
    // A body that stalls between bytes is cut the same way.
    let stall = request(None, json!({"url": server.url("/stall"), "method": "GET"}));
    let result = guarded(lane.execute(stall, within(300))).await;
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
    let result = run_request(&lane, none).await;
    assert_eq!(denied_reason(&result), "request_denies_egress");
    let narrowed = |path: &str| {
        let mut r = request(None, json!({"url": server.url(path), "method": "GET"}));
        r.metadata
            .insert("egress".into(), json!([server.url("/status")]));
        r
    };
    let result = run_request(&lane, narrowed("/status/204")).await;
    assert_eq!(output(&result)["status_code"], 204);
    let result = run_request(&lane, narrowed("/echo")).await;
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

/// A node serving `lane` (authority allowed, registration complete) and its evidence sink.
async fn node_serving(lane: Arc<WasmLane>) -> (Node, Arc<MemorySink>) {
    let node = Node::new("node-http");
    let sink = Arc::new(MemorySink::new("memory"));
    node.register_evidence_sink(sink.clone());
    node.register_authority_verifier(Arc::new(AllowAll));
    node.complete_registration();
    register_wasm_lane(&node, lane).await.unwrap();
    (node, sink)
}

/// A governed admission request for `lane_id` with `payload`.
fn admission(lane_id: &str, payload: Value) -> AdmissionRequest {
    let mut admission = AdmissionRequest::new(lane_id);
    admission.payload = obj(payload);
    admission.authority_ref = Some(AuthorityRef {
        reference: Some("allow".to_owned()),
        ..AuthorityRef::default()
    });
    admission.acceptable_attestation =
        ep_contracts::boundary::AcceptableAttestation::of([ep_lanes_wasm::WASM_ENGINE_CLASS]);
    admission
}

#[tokio::test]
async fn a_denial_through_a_node_is_its_own_capability_denied_evidence_record() {
    let server = TestServer::start().await.unwrap();
    let rt = runtime();
    let lane = Arc::new(http_lane(&rt, &["http://127.0.0.1:*"], &[]).await);
    let (node, sink) = node_serving(Arc::clone(&lane)).await;
    let admission = admission(
        lane.lane_id(),
        json!({
            "url": format!("http://localhost:{}/secret-token-123", server.addr().port()),
            "method": "GET",
        }),
    );
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

/// A stream's refused request is a `capability.denied` record too, shown in the event that
/// came with it (the denial is reported pull by pull, not only at a unary result).
#[tokio::test]
async fn a_denial_during_a_stream_is_recorded_and_shown_in_its_event() {
    let rt = runtime();
    let grants =
        Grants::default().with_http(HttpGrants::parse(&["http://127.0.0.1:*"], &[]).unwrap());
    let lane = WasmLane::load_with_grants(
        &rt,
        LaneSource::from(guest("stream-fetch")),
        LaneLimits::default(),
        grants,
    )
    .await
    .unwrap();
    let (node, sink) = node_serving(Arc::new(lane)).await;
    let events: Vec<_> = guarded(async {
        use futures::StreamExt as _;
        node.stream(admission("stream-fetch", json!({})))
            .await
            .unwrap()
            .collect::<Vec<_>>()
            .await
    })
    .await;
    let done = events
        .iter()
        .find(|e| e.event_type.as_deref() == Some("fetch.done"))
        .unwrap_or_else(|| panic!("{events:?}"));
    assert_eq!(done.payload["refused"], true, "{done:?}");
    assert_eq!(done.evidence.len(), 1, "{done:?}");
    assert_eq!(done.evidence[0]["kind"], "capability.denied");
    assert_eq!(done.evidence[0]["reason"], "no_matching_grant");
    assert_eq!(done.evidence[0]["lane_id"], "stream-fetch");
    let denials: Vec<_> = sink
        .records()
        .into_iter()
        .filter(|r| r.evidence_type.as_deref() == Some("capability.denied"))
        .collect();
    assert_eq!(denials.len(), 1, "{:?}", sink.evidence_types());
    assert_eq!(denials[0].payload["destination"], "http://192.0.2.1:80");
}

#[tokio::test]
async fn a_content_length_that_does_not_match_the_body_is_refused_before_any_io() {
    let server = TestServer::start().await.unwrap();
    let rt = runtime();
    let lane = Arc::new(http_lane(&rt, &["http://127.0.0.1:*"], &[]).await);
    let (node, _) = node_serving(Arc::clone(&lane)).await;
    for declared in ["3", "64"] {
        let payload = json!({
            "url": server.url("/echo"),
            "headers": {"Content-Length": declared},
            "body": "hello world",
        });
        // Through a node: refused at admission.
        let result = guarded(node.execute(admission("http", payload.clone()))).await;
        assert_eq!(result.status, ResultStatus::Rejected, "{result:?}");
        let error = result.error.as_ref().unwrap();
        assert_eq!(error["reason"], "invalid_lane_request", "{error}");
        assert_eq!(error["details"]["header"], "Content-Length", "{error}");
        assert_eq!(error["details"]["declared"], declared, "{error}");
        assert_eq!(error["details"]["body_bytes"], 11, "{error}");
        // Straight to the lane, skipping validation: it fails, it does not send.
        let result = run(&lane, payload).await;
        assert_eq!(result.status, ResultStatus::Failed, "{result:?}");
        assert_eq!(
            result.error.as_ref().unwrap()["reason"],
            "invalid_lane_request"
        );
    }
    assert!(server.seen().is_empty(), "nothing reached the server");
    // A matching one is sent as given.
    let result = run(
        &lane,
        json!({"url": server.url("/echo"), "headers": {"content-length": "5"}, "body": "hello"}),
    )
    .await;
    assert_eq!(output(&result)["status_code"], 200);
    assert_eq!(server.seen()[0].body, b"hello");
}

#[tokio::test]
async fn a_redirect_to_another_origin_forwards_only_safe_headers_unless_asked() {
    let first = TestServer::start().await.unwrap();
    let other = TestServer::start().await.unwrap();
    let rt = runtime();
    let lane = http_lane(&rt, &["http://127.0.0.1:*"], &[]).await;
    let payload = |keep: Value| {
        json!({
            "url": first.url(&format!("/redirect?code=307&to={}", other.url("/echo"))),
            "headers": {
                "authorization": "Bearer secret",
                "cookie": "session=1",
                "x-api-key": "key-1",
                "accept": "application/json",
                "user-agent": "lane-test",
                "content-type": "text/plain",
            },
            "body": "hello",
            "cross_origin_headers": keep,
        })
    };
    let result = run(&lane, payload(Value::Null)).await;
    assert_eq!(output(&result)["status_code"], 200);
    // The first origin got every header it was sent...
    let sent = &first.seen()[0];
    for name in ["authorization", "cookie", "x-api-key", "accept"] {
        assert!(sent.header(name).is_some(), "{name}: {sent:?}");
    }
    // ...the other origin (another port) only the safe ones, with the 307's body.
    let hop = &other.seen()[0];
    assert_eq!(hop.method, "POST");
    assert_eq!(hop.body, b"hello");
    assert_eq!(hop.header("accept"), Some("application/json"));
    assert_eq!(hop.header("user-agent"), Some("lane-test"));
    assert_eq!(hop.header("content-type"), Some("text/plain"));
    for name in ["authorization", "cookie", "x-api-key"] {
        assert_eq!(hop.header(name), None, "{name} crossed origins: {hop:?}");
    }
    // The payload may name a header to keep across origins: that one crosses, no other.
    let result = run(&lane, payload(json!(["X-Api-Key"]))).await;
    assert_eq!(output(&result)["status_code"], 200);
    let hop = &other.seen()[1];
    assert_eq!(hop.header("x-api-key"), Some("key-1"));
    assert_eq!(hop.header("authorization"), None);
    assert_eq!(hop.header("cookie"), None);
    // Within one origin every header follows the redirect.
    let same = json!({
        "url": first.url(&format!("/redirect?code=307&to={}", first.url("/echo"))),
        "headers": {"x-api-key": "key-1", "authorization": "Bearer secret"},
        "method": "GET",
    });
    let result = run(&lane, same).await;
    assert_eq!(output(&result)["status_code"], 200);
    let hop = first.seen().pop().unwrap();
    assert_eq!(hop.path, "/echo");
    assert_eq!(hop.header("x-api-key"), Some("key-1"));
    assert_eq!(hop.header("authorization"), Some("Bearer secret"));
}

/// A loopback upstream that answers every request with `size` bytes, `binary` (every byte
/// value) or text, with a `content-length` or chunked.
async fn raw_upstream(size: usize, binary: bool, chunked: bool) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if socket.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let body: Vec<u8> = if binary {
                    (0..size).map(|i| (i % 256) as u8).collect()
                } else {
                    vec![b'x'; size]
                };
                let framing = if chunked {
                    "transfer-encoding: chunked".to_owned()
                } else {
                    format!("content-length: {size}")
                };
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\n{framing}\r\n\r\n"
                );
                if socket.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                if chunked {
                    for chunk in body.chunks(64 << 10) {
                        let mut frame = format!("{:x}\r\n", chunk.len()).into_bytes();
                        frame.extend_from_slice(chunk);
                        frame.extend_from_slice(b"\r\n");
                        if socket.write_all(&frame).await.is_err() {
                            return;
                        }
                    }
                    let _ = socket.write_all(b"0\r\n\r\n").await;
                } else {
                    let _ = socket.write_all(&body).await;
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn a_response_just_under_the_cap_succeeds_on_the_default_limits() {
    let rt = runtime();
    let limits = LaneLimits::default();
    let cap = limits.max_response_bytes;
    let lane = http_lane_with(&rt, &["http://127.0.0.1:*"], &[], limits).await;
    let size = usize::try_from(cap).unwrap() - 4096;
    // Text and binary (base64 in the output: the most memory), sized or chunked.
    for (binary, chunked) in [(false, false), (false, true), (true, false), (true, true)] {
        let addr = raw_upstream(size, binary, chunked).await;
        let result = run(
            &lane,
            json!({"url": format!("http://{addr}/"), "method": "GET", "max_response_bytes": cap}),
        )
        .await;
        let case = format!("binary={binary} chunked={chunked}");
        assert_eq!(result.status, ResultStatus::Succeeded, "{case}: {result:?}");
        let out = output(&result);
        let body = out["body"].as_str().unwrap();
        if binary {
            assert_eq!(out["body_encoding"], "base64", "{case}");
            assert_eq!(body.len(), size.div_ceil(3) * 4, "{case}");
            assert!(body.starts_with("AAECAwQF"), "{case}");
        } else {
            assert_eq!(out["body_encoding"], "utf8", "{case}");
            assert_eq!(body.len(), size, "{case}");
        }
    }
}
