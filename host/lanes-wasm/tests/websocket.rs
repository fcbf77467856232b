//! The host-owned WebSocket client (ABI 0.2.0's `websocket` import) against a real echo peer on
//! loopback (`ep_test_servers::websocket`): messages both ways, pings, close codes, size caps,
//! subprotocols, refused upgrades, caller input forwarded by a stream, a guest that spins or
//! never reads with a socket open, and the same grant matrix and denial evidence as outbound
//! HTTP (one egress decision for both).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::BTreeSet;

use ep_contracts::boundary::{ExecutionEvent, ExecutionRequest, ExecutionResult, ResultStatus};
use ep_lane_api::{Input, InputSlot, STREAM_COMPLETED_EVENT};
use ep_lanes_wasm::egress::HttpGrants;
use ep_lanes_wasm::{Grants, LaneLimits, LaneSource, LoadError, WasmLane, WasmRuntime};
use ep_node::LaneAdapter;
use ep_test_servers::websocket::{WsEchoServer, WsFrameKind, WsOptions};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use support::*;

/// The `ws-client` guest granted `public` and `private` patterns.
async fn ws_lane(rt: &WasmRuntime, public: &[&str], private: &[&str]) -> WasmLane {
    ws_lane_with(rt, public, private, LaneLimits::default()).await
}

async fn ws_lane_with(
    rt: &WasmRuntime,
    public: &[&str],
    private: &[&str],
    limits: LaneLimits,
) -> WasmLane {
    let grants = Grants::none().with_http(HttpGrants::parse(public, private).unwrap());
    WasmLane::load_with_grants(rt, guest("ws-client"), limits, grants)
        .await
        .unwrap_or_else(|e| panic!("ws-client loads: {e}"))
}

/// Runs `request` and shows the denials the lane reported in the result's evidence, as the
/// node does.
async fn run_request(lane: &WasmLane, request: ExecutionRequest) -> ExecutionResult {
    run_in(lane, request, ctx()).await
}

async fn run_in(
    lane: &WasmLane,
    request: ExecutionRequest,
    ctx: ep_node::ExecutionContext,
) -> ExecutionResult {
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

async fn run(lane: &WasmLane, payload: Value) -> ExecutionResult {
    run_request(lane, request(None, payload)).await
}

fn output(result: &ExecutionResult) -> Value {
    assert_eq!(result.status, ResultStatus::Succeeded, "{result:?}");
    json!(result.output)
}

/// The `websocket` summary of a result's evidence entry.
fn counts(result: &ExecutionResult) -> &Value {
    &result.evidence[0]["websocket"]
}

/// The `capability.denied` entries of a result's evidence.
fn denials(result: &ExecutionResult) -> Vec<&Value> {
    result
        .evidence
        .iter()
        .filter(|e| e["kind"] == "capability.denied")
        .collect()
}

/// The one denial of a refused connect, after checking the failure the guest reported.
fn denial(result: &ExecutionResult) -> Value {
    let (class, cause) = failure_of(result);
    assert_eq!(
        (class.as_str(), cause.as_str()),
        ("policy_denied", "capability_denied"),
        "{result:?}"
    );
    let found = denials(result);
    assert_eq!(found.len(), 1, "{:?}", result.evidence);
    found[0].clone()
}

fn error_kind(result: &ExecutionResult) -> String {
    result.error.as_ref().unwrap()["details"]["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn text_and_binary_messages_are_echoed_and_counted_without_payloads() {
    let server = WsEchoServer::start(WsOptions::new()).unwrap();
    let rt = runtime();
    let lane = ws_lane(&rt, &["ws://127.0.0.1:*"], &[]).await;
    let result = run(
        &lane,
        json!({
            "url": server.url(),
            "frames": [{"text": "hello"}, {"binary": [1, 2, 3]}],
            "expect": 2,
            "close": {"code": 1000, "reason": "done"},
        }),
    )
    .await;
    let out = output(&result);
    assert_eq!(
        out["received"],
        json!([
            {"type": "text", "text": "hello"},
            {"type": "binary", "len": 3, "bytes": [1, 2, 3]},
            {"type": "close", "code": 1000, "reason": "done"},
        ])
    );
    // Nothing arrives after the close.
    assert_eq!(out["after"], "closed");
    assert_eq!(out["subprotocol"], Value::Null);
    assert_eq!(
        *counts(&result),
        json!({
            "connections": 1, "denied": 0, "failed": 0,
            "messages_sent": 2, "messages_received": 2, "bytes_sent": 8, "bytes_received": 8,
            "pings_answered": 0,
            "closes": [{"by": "lane", "code": 1000}, {"by": "peer", "code": 1000}],
        })
    );
    let text = serde_json::to_string(&result.evidence).unwrap();
    assert!(!text.contains("hello"), "no payload in evidence: {text}");
    let seen = guarded(server.wait_until(|c| c.first().is_some_and(|c| c.ended))).await;
    let kinds: Vec<_> = seen[0].frames.iter().map(|f| (f.kind, f.len)).collect();
    assert_eq!(
        kinds,
        [
            (WsFrameKind::Text, 5),
            (WsFrameKind::Binary, 3),
            (WsFrameKind::Close, 4)
        ]
    );
    assert_eq!(seen[0].close.as_ref().unwrap().code, 1000);
    assert_eq!(seen[0].path, "/echo");
}

#[tokio::test]
async fn a_ping_from_the_server_is_answered_by_the_host_and_never_reaches_the_lane() {
    let server = WsEchoServer::start(WsOptions::new()).unwrap();
    let rt = runtime();
    let lane = ws_lane(&rt, &["ws://127.0.0.1:*"], &[]).await;
    let result = run(
        &lane,
        json!({
            "url": server.url(),
            "frames": [{"text": "ping:abc"}, {"text": "after"}],
            "expect": 1,
            "close": {"code": 1000},
        }),
    )
    .await;
    let out = output(&result);
    assert_eq!(out["received"][0], json!({"type": "text", "text": "after"}));
    assert_eq!(counts(&result)["pings_answered"], 1);
    let seen = guarded(server.wait_until(|c| c.first().is_some_and(|c| c.ended))).await;
    assert_eq!(seen[0].pongs, [bytes::Bytes::from_static(b"abc")]);
}

#[tokio::test]
async fn close_codes_travel_both_ways() {
    let rt = runtime();
    let lane = ws_lane(&rt, &["ws://127.0.0.1:*"], &[]).await;
    // The server closes: the lane reads the close, then nothing.
    let server = WsEchoServer::start(WsOptions::new()).unwrap();
    let result = run(
        &lane,
        json!({"url": server.url(), "frames": [{"text": "close:4000:server says bye"}], "expect": 1}),
    )
    .await;
    let out = output(&result);
    assert_eq!(
        out["received"],
        json!([{"type": "close", "code": 4000, "reason": "server says bye"}])
    );
    assert_eq!(out["after"], "closed");
    assert_eq!(
        counts(&result)["closes"],
        json!([{"by": "peer", "code": 4000}])
    );
    // The lane closes: the server reads its code and reason.
    let server = WsEchoServer::start(WsOptions::new()).unwrap();
    let result = run(
        &lane,
        json!({"url": server.url(), "close": {"code": 3001, "reason": "lane done"}}),
    )
    .await;
    assert_eq!(
        output(&result)["received"],
        json!([{"type": "close", "code": 3001, "reason": "lane done"}])
    );
    let seen = guarded(server.wait_until(|c| c.first().is_some_and(|c| c.ended))).await;
    let close = seen[0].close.clone().unwrap();
    assert_eq!((close.code, close.reason.as_str()), (3001, "lane done"));
    // A code a lane may not send is refused before anything is sent.
    let server = WsEchoServer::start(WsOptions::new()).unwrap();
    let result = run(&lane, json!({"url": server.url(), "close": {"code": 1005}})).await;
    assert_eq!(error_kind(&result), "other", "{result:?}");
    let message = result.error.as_ref().unwrap()["details"]["message"].to_string();
    assert!(
        message.contains("close code 1005 may not be sent"),
        "{message}"
    );
}

#[tokio::test]
async fn a_frame_over_the_servers_limit_is_closed_with_1009() {
    let server = WsEchoServer::start(WsOptions::new().max_frame_size(100)).unwrap();
    let rt = runtime();
    let lane = ws_lane(&rt, &["ws://127.0.0.1:*"], &[]).await;
    let result = run(
        &lane,
        json!({"url": server.url(), "frames": [{"binary_len": 1000}], "expect": 1}),
    )
    .await;
    let out = output(&result);
    assert_eq!(
        out["received"],
        json!([{"type": "close", "code": 1009, "reason": "message too big"}])
    );
    assert_eq!(
        counts(&result)["closes"],
        json!([{"by": "peer", "code": 1009}])
    );
}

#[tokio::test]
async fn a_message_over_the_hosts_cap_is_message_too_large_both_ways() {
    let rt = runtime();
    let limits = LaneLimits {
        max_response_bytes: 1024,
        ..LaneLimits::default()
    };
    let lane = ws_lane_with(&rt, &["ws://127.0.0.1:*"], &[], limits).await;
    // Sending: refused by the host, nothing reaches the server.
    let server = WsEchoServer::start(WsOptions::new()).unwrap();
    let result = run(
        &lane,
        json!({"url": server.url(), "frames": [{"text_len": 1025}], "expect": 1}),
    )
    .await;
    assert_eq!(error_kind(&result), "message_too_large", "{result:?}");
    assert_eq!(result.error.as_ref().unwrap()["details"]["size"], 1025);
    assert_eq!(counts(&result)["messages_sent"], 0);
    // Receiving: a peer sending more than the cap gets close 1009 and the lane the error.
    let (url, peer) = oversize_peer(4096).await;
    let result = run(&lane, json!({"url": url, "expect": 1})).await;
    assert_eq!(error_kind(&result), "message_too_large", "{result:?}");
    assert_eq!(result.error.as_ref().unwrap()["details"]["size"], 4096);
    assert_eq!(
        counts(&result)["closes"],
        json!([{"by": "host", "code": 1009}])
    );
    assert_eq!(guarded(peer).await.unwrap(), Some(1009));
}

/// A peer that sends one binary message of `size` bytes and reports the close code it then
/// receives.
async fn oversize_peer(size: usize) -> (String, tokio::task::JoinHandle<Option<u16>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/big", listener.local_addr().unwrap());
    let peer = tokio::spawn(async move {
        let (socket, _) = listener.accept().await.ok()?;
        let mut ws = tokio_tungstenite::accept_async(socket).await.ok()?;
        let message = tokio_tungstenite::tungstenite::Message::binary(vec![7_u8; size]);
        ws.send(message).await.ok()?;
        while let Some(Ok(message)) = ws.next().await {
            if let tokio_tungstenite::tungstenite::Message::Close(frame) = message {
                return frame.map(|frame| u16::from(frame.code));
            }
        }
        None
    });
    (url, peer)
}

#[tokio::test]
async fn a_subprotocol_the_server_accepts_is_negotiated_and_headers_are_sent() {
    let server = WsEchoServer::start(WsOptions::new().subprotocol("chat.v2")).unwrap();
    let rt = runtime();
    let lane = ws_lane(&rt, &["ws://127.0.0.1:*"], &[]).await;
    let result = run(
        &lane,
        json!({
            "url": format!("{}?room=1", server.url()),
            "subprotocols": ["chat.v1", "chat.v2"],
            "headers": {"x-trace": "t-1", "Authorization": "Bearer secret"},
            "close": {"code": 1000},
        }),
    )
    .await;
    assert_eq!(output(&result)["subprotocol"], "chat.v2");
    let seen = server.connections();
    assert_eq!(seen[0].subprotocol.as_deref(), Some("chat.v2"));
    assert_eq!(seen[0].path, "/echo?room=1");
    assert_eq!(seen[0].headers["x-trace"], "t-1");
    assert_eq!(seen[0].headers["authorization"], "Bearer secret");
}

#[tokio::test]
async fn a_header_the_host_sets_is_refused_before_any_io() {
    let server = WsEchoServer::start(WsOptions::new()).unwrap();
    let rt = runtime();
    let lane = ws_lane(&rt, &["ws://127.0.0.1:*"], &[]).await;
    for name in ["Upgrade", "Sec-WebSocket-Key", "host"] {
        let result = run(&lane, json!({"url": server.url(), "headers": {name: "x"}})).await;
        assert_eq!(error_kind(&result), "other", "{result:?}");
        let message = result.error.as_ref().unwrap()["details"]["message"].to_string();
        assert!(message.contains("is set by the host"), "{message}");
    }
    assert!(
        server.connections().is_empty(),
        "nothing reached the server"
    );
}

#[tokio::test]
async fn a_refused_upgrade_is_handshake_refused_with_its_status() {
    let server = WsEchoServer::refuse(403).unwrap();
    let rt = runtime();
    let lane = ws_lane(&rt, &["ws://127.0.0.1:*"], &[]).await;
    let result = run(&lane, json!({"url": server.url()})).await;
    assert_eq!(failure_of(&result).0, "transport_failed");
    assert_eq!(error_kind(&result), "handshake_refused", "{result:?}");
    assert_eq!(result.error.as_ref().unwrap()["details"]["status"], 403);
    assert_eq!(counts(&result)["failed"], 1);
    assert_eq!(counts(&result)["connections"], 0);
    assert_eq!(
        server.connections().len(),
        1,
        "the upgrade request was sent"
    );
}

#[tokio::test]
async fn wss_speaks_tls_through_the_shared_connector() {
    // A plain server: the TLS handshake the host starts for wss:// cannot succeed.
    let server = WsEchoServer::start(WsOptions::new()).unwrap();
    let rt = runtime();
    let lane = ws_lane(&rt, &["wss://127.0.0.1:*"], &[]).await;
    let url = format!("wss://{}/echo", server.addr());
    let result = run(&lane, json!({"url": url})).await;
    assert_eq!(error_kind(&result), "connect_failed", "{result:?}");
    assert!(
        server.connections().is_empty(),
        "no upgrade was sent in the clear"
    );
}

#[tokio::test]
async fn a_host_or_port_that_is_not_granted_is_denied_without_a_connection() {
    let server = WsEchoServer::start(WsOptions::new()).unwrap();
    let port = server.addr().port();
    let rt = runtime();
    let lane = ws_lane(&rt, &["ws://127.0.0.1:*"], &[]).await;
    let result = run(&lane, json!({"url": format!("ws://localhost:{port}/echo")})).await;
    let found = denial(&result);
    assert_eq!(found["reason"], "no_matching_grant");
    assert_eq!(found["capability"], "websocket");
    assert_eq!(found["destination"], format!("ws://localhost:{port}"));
    assert_eq!(found["detail"]["grants"], "ws://127.0.0.1:*");
    let message = result.error.as_ref().unwrap()["details"]["message"].to_string();
    assert!(message.contains("no_matching_grant"), "{message}");
    assert_eq!(counts(&result)["denied"], 1);
    // Another port than the granted one.
    let granted = format!("ws://127.0.0.1:{}", port ^ 1);
    let lane = ws_lane(&rt, &[granted.as_str()], &[]).await;
    let result = run(&lane, json!({"url": server.url()})).await;
    assert_eq!(denial(&result)["reason"], "no_matching_grant");
    assert!(server.connections().is_empty());
}

#[tokio::test]
async fn a_granted_name_resolving_to_loopback_needs_a_private_grant() {
    let server = WsEchoServer::start(WsOptions::new()).unwrap();
    let port = server.addr().port();
    let rt = runtime();
    let pattern = format!("ws://localhost:{port}");
    let url = format!("ws://localhost:{port}/echo");
    let public = ws_lane(&rt, &[pattern.as_str()], &[]).await;
    let result = run(&public, json!({"url": url})).await;
    let found = denial(&result);
    assert_eq!(found["reason"], "address_not_allowed");
    assert_eq!(found["detail"]["reach"], "public");
    assert!(
        found["detail"]["addresses"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["class"] == "loopback"),
        "{found}"
    );
    assert!(server.connections().is_empty());
    // The same name as an explicit private grant reaches the server.
    let private = ws_lane(&rt, &[], &[pattern.as_str()]).await;
    let result = run(&private, json!({"url": url, "close": {"code": 1000}})).await;
    assert_eq!(output(&result)["received"][0]["type"], "close");
    assert_eq!(server.connections().len(), 1);
}

#[tokio::test]
async fn a_request_can_narrow_websocket_egress_like_http() {
    let server = WsEchoServer::start(WsOptions::new()).unwrap();
    let rt = runtime();
    let lane = ws_lane(&rt, &["ws://127.0.0.1:*"], &[]).await;
    let narrowed = |egress: Value| {
        let mut r = request(None, json!({"url": server.url(), "close": {"code": 1000}}));
        r.metadata.insert("egress".into(), egress);
        r
    };
    let result = run_request(&lane, narrowed(json!("none"))).await;
    assert_eq!(denial(&result)["reason"], "request_denies_egress");
    let other_path = format!("ws://{}/other", server.addr());
    let result = run_request(&lane, narrowed(json!([other_path]))).await;
    assert_eq!(denial(&result)["reason"], "outside_request_egress");
    // An http pattern in the narrowing does not allow a ws connection.
    let http = format!("http://{}/echo", server.addr());
    let result = run_request(&lane, narrowed(json!([http]))).await;
    assert_eq!(denial(&result)["reason"], "outside_request_egress");
    let result = run_request(&lane, narrowed(json!(["bad"]))).await;
    assert_eq!(denial(&result)["reason"], "request_egress_invalid");
    assert!(server.connections().is_empty());
    let result = run_request(&lane, narrowed(json!([server.url()]))).await;
    assert_eq!(output(&result)["received"][0]["type"], "close");
}

#[tokio::test]
async fn a_ws_pattern_never_allows_http_and_an_http_pattern_never_allows_ws() {
    let server = WsEchoServer::start(WsOptions::new()).unwrap();
    let port = server.addr().port();
    let rt = runtime();
    // Only http patterns: the websocket import is not even linked.
    let grants = Grants::none().with_http(HttpGrants::parse(&["http://127.0.0.1:*"], &[]).unwrap());
    let error = WasmLane::load_with_grants(&rt, guest("ws-client"), LaneLimits::default(), grants)
        .await
        .expect_err("a ws-less grant does not link websocket");
    let LoadError::ImportNotGranted { import, grant, .. } = &error else {
        panic!("expected ImportNotGranted, got {error:?}");
    };
    assert!(
        import.starts_with("execution-plane:lane/websocket@0.2.0"),
        "{import}"
    );
    assert_eq!(*grant, "http (a ws:// or wss:// pattern)");
    // Both kinds linked, for different hosts: each transport matches its own scheme only.
    let both = ["ws://localhost:*", "http://127.0.0.1:*"];
    let lane = ws_lane(&rt, &both, &[]).await;
    let ws = run(&lane, json!({"url": format!("ws://127.0.0.1:{port}/echo")})).await;
    let ws_denial = denial(&ws);
    assert_eq!(ws_denial["reason"], "no_matching_grant");
    let http_lane = WasmLane::load_with_grants(
        &rt,
        LaneSource::from(ep_builtin_lanes::http().wasm),
        LaneLimits::default(),
        Grants::default().with_http(
            HttpGrants::parse(&["ws://127.0.0.1:*", "http://localhost:*"], &[]).unwrap(),
        ),
    )
    .await
    .unwrap();
    let http = run(
        &http_lane,
        json!({"url": format!("http://127.0.0.1:{port}/echo"), "method": "GET"}),
    )
    .await;
    let http_denial = denial(&http);
    assert_eq!(http_denial["reason"], "no_matching_grant");
    assert!(server.connections().is_empty());
    // A denial reads the same whichever transport was refused: same keys, same shapes.
    let keys = |v: &Value| {
        v.as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(keys(&ws_denial), keys(&http_denial));
    assert_eq!(keys(&ws_denial["detail"]), keys(&http_denial["detail"]));
    assert_eq!(
        (
            ws_denial["capability"].as_str(),
            http_denial["capability"].as_str()
        ),
        (Some("websocket"), Some("http"))
    );
    for (denial, scheme) in [(&ws_denial, "ws"), (&http_denial, "http")] {
        assert!(
            denial["path_sha256"]
                .as_str()
                .unwrap()
                .starts_with("sha256:"),
            "{denial}"
        );
        assert_eq!(
            denial["destination"],
            format!("{scheme}://127.0.0.1:{port}")
        );
        assert_eq!(
            denial["lane_id"],
            if scheme == "ws" { "ws-client" } else { "http" }
        );
    }
}

#[tokio::test]
async fn a_guest_spinning_with_a_socket_open_ends_at_its_deadline_and_the_socket_closes() {
    let server = WsEchoServer::start(WsOptions::new()).unwrap();
    let rt = runtime();
    let lane = ws_lane(&rt, &["ws://127.0.0.1:*"], &[]).await;
    let result = run_in(
        &lane,
        request(
            Some("spin"),
            json!({"url": server.url(), "frames": [{"text": "hi"}]}),
        ),
        within(500),
    )
    .await;
    assert_eq!(failure_of(&result).0, "timeout", "{result:?}");
    assert_eq!(counts(&result)["connections"], 1);
    // The store's drop closed the socket: the server got the host's going-away close.
    let seen = guarded(server.wait_until(|c| c.first().is_some_and(|c| c.ended))).await;
    let close = seen[0].close.clone().unwrap();
    assert_eq!((close.code, close.reason.as_str()), (1001, "going away"));
}

#[tokio::test]
async fn what_a_lane_sent_before_dropping_its_connection_still_goes_out() {
    let server = WsEchoServer::start(WsOptions::new()).unwrap();
    let rt = runtime();
    let lane = ws_lane(&rt, &["ws://127.0.0.1:*"], &[]).await;
    let result = run_request(
        &lane,
        request(
            Some("drop"),
            json!({
                "url": server.url(),
                "frames": [{"text": "one"}, {"text": "two"}],
                "close": {"code": 4001, "reason": "bye"},
            }),
        ),
    )
    .await;
    assert_eq!(result.status, ResultStatus::Succeeded, "{result:?}");
    let seen = guarded(server.wait_until(|c| c.first().is_some_and(|c| c.ended))).await;
    let texts = seen[0]
        .frames
        .iter()
        .filter(|f| f.kind == WsFrameKind::Text)
        .count();
    assert_eq!(texts, 2);
    let close = seen[0].close.clone().unwrap();
    assert_eq!((close.code, close.reason.as_str()), (4001, "bye"));
}

#[tokio::test]
async fn a_guest_that_never_reads_holds_the_peer_back_and_ends_at_its_deadline() {
    let server = WsEchoServer::start(WsOptions::new()).unwrap();
    let rt = runtime();
    // A small cap: the inbox holds a handful of 1000-byte messages.
    let limits = LaneLimits {
        max_response_bytes: 4096,
        ..LaneLimits::default()
    };
    let lane = ws_lane_with(&rt, &["ws://127.0.0.1:*"], &[], limits).await;
    let sent = 500;
    let result = run_in(
        &lane,
        request(
            Some("ignore"),
            json!({"url": server.url(), "frames": [{"text_len": 1000}], "repeat": sent}),
        ),
        within(1000),
    )
    .await;
    assert_eq!(failure_of(&result).0, "timeout", "{result:?}");
    // The host stopped reading once the inbox was full: TCP holds the rest back.
    let received = counts(&result)["messages_received"].as_u64().unwrap();
    assert!(
        received < 16,
        "the host read {received} messages for a lane that reads none"
    );
    let seen = guarded(server.wait_until(|c| c.first().is_some_and(|c| c.ended))).await;
    assert!(!seen[0].frames.is_empty());
}

#[tokio::test]
async fn caller_input_is_forwarded_and_the_stream_ends_with_the_close() {
    let server = WsEchoServer::start(WsOptions::new()).unwrap();
    let rt = runtime();
    let lane = ws_lane(&rt, &["ws://127.0.0.1:*"], &[]).await;
    let (sender, slot) = InputSlot::channel();
    let mut events = lane
        .stream(
            request(
                None,
                json!({"url": server.url(), "frames": [{"text": "first"}]}),
            ),
            ctx().with_input(slot),
        )
        .await
        .unwrap();
    let next = |event: Option<ExecutionEvent>| {
        let event = event.unwrap();
        (
            event.event_type.clone().unwrap_or_default(),
            json!(event.payload),
        )
    };
    assert_eq!(next(guarded(events.next()).await).0, "ws.open");
    assert_eq!(
        next(guarded(events.next()).await),
        (
            "ws.text".to_owned(),
            json!({"type": "text", "text": "first"})
        )
    );
    sender
        .send(Input::Data(b"from the caller".to_vec()))
        .await
        .unwrap();
    assert_eq!(
        next(guarded(events.next()).await),
        (
            "ws.text".to_owned(),
            json!({"type": "text", "text": "from the caller"})
        )
    );
    // The end of input is the lane's close; the server's reply ends the stream.
    sender.send(Input::End).await.unwrap();
    let rest: Vec<_> = guarded(events.collect::<Vec<_>>()).await;
    let kinds: Vec<_> = rest
        .iter()
        .map(|e| e.event_type.as_deref().unwrap_or_default())
        .collect();
    assert_eq!(kinds, ["ws.close", STREAM_COMPLETED_EVENT]);
    assert_eq!(rest[0].payload["code"], 1000);
    assert_eq!(rest[0].payload["reason"], "input ended");
    assert_eq!(rest[1].payload["output"], json!({"received": 3}));
    let seen = guarded(server.wait_until(|c| c.first().is_some_and(|c| c.ended))).await;
    let texts = seen[0]
        .frames
        .iter()
        .filter(|f| f.kind == WsFrameKind::Text)
        .count();
    assert_eq!(texts, 2);
}
