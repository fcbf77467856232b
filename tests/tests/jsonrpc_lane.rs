//! The first-party `jsonrpc` lane (plugins/jsonrpc, embedded by `ep-builtin-lanes`) end to end
//! with real peers: the JSON-RPC stdio peer of `ep-test-servers` as a local process started by
//! the process placement's launcher (newline-delimited JSON and `Content-Length` framing, a
//! peer that sends notifications and requests before answering, one that answers with another
//! id), and JSON-RPC servers over HTTP and WebSocket on loopback. `execute` is one call to its
//! matching response or upstream's typed failures; `stream` is a session fed by caller input.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use ep_contracts::boundary::{
    ExecutionEvent, ExecutionRef, ExecutionRequest, ExecutionResult, ResultStatus,
};
use ep_lane_api::{
    CancelSignal, Deadline, ExecutionContext, Input, InputSlot, LaneAdapter, ProcessLauncher,
    STREAM_COMPLETED_EVENT,
};
use ep_lanes_wasm::egress::HttpGrants;
use ep_lanes_wasm::{Grants, LaneLimits, LaneSource, RuntimeConfig, WasmLane, WasmRuntime};
use ep_placement_local::{ProcessLane, ProcessPolicy};
use ep_test_servers::jsonrpc::{
    FAIL_CODE, JsonRpcBehaviour, JsonRpcHttpServer, JsonRpcWsServer, PEER_METHOD, PROGRESS_METHOD,
};
use ep_tests::binaries::helper;
use futures::StreamExt;
use serde_json::{Value, json};

const HANG_GUARD: Duration = Duration::from_secs(60);

async fn guarded<F: std::future::Future>(future: F) -> F::Output {
    tokio::time::timeout(HANG_GUARD, future)
        .await
        .expect("the hang guard fired: the test hung")
}

/// The jsonrpc lane granted loopback HTTP and WebSocket and the peer binary, with the process
/// placement's launcher allowed to run the peer.
struct Host {
    _dir: tempfile::TempDir,
    peer: String,
    lane: WasmLane,
}

async fn host() -> Host {
    let dir = tempfile::tempdir().unwrap();
    let peer = helper("ep-jsonrpc-peer").display().to_string();
    let policy = ProcessPolicy {
        commands: vec![peer.clone(), "/no/such/server".to_owned()],
        cwd: vec![dir.path().to_owned()],
        ..ProcessPolicy::default()
    };
    let launcher: Arc<dyn ProcessLauncher> = Arc::new(ProcessLane::new(policy).launcher());
    let runtime = WasmRuntime::new(RuntimeConfig {
        max_instances: 8,
        process_launcher: Some(launcher),
        ..RuntimeConfig::default()
    })
    .unwrap();
    let any = ["http://*:*", "ws://*:*"];
    let mut grants = Grants::default().with_http(HttpGrants::parse(&any, &any).unwrap());
    grants.process = vec![peer.clone(), "/no/such/server".to_owned()];
    let wasm = ep_builtin_lanes::jsonrpc().wasm;
    let lane = WasmLane::load_with_grants(
        &runtime,
        LaneSource::from(wasm),
        LaneLimits::default(),
        grants,
    )
    .await
    .unwrap_or_else(|e| panic!("the jsonrpc lane loads: {e}"));
    Host {
        _dir: dir,
        peer,
        lane,
    }
}

fn request(payload: Value) -> ExecutionRequest {
    let Value::Object(payload) = payload else {
        panic!("payloads are objects")
    };
    ExecutionRequest {
        execution_ref: ExecutionRef::mint(),
        payload,
        ..ExecutionRequest::default()
    }
}

fn within(ms: u64) -> ExecutionContext {
    ExecutionContext::new(
        CancelSignal::default(),
        Some(Deadline::after(Duration::from_millis(ms))),
    )
}

async fn call(host: &Host, payload: Value) -> ExecutionResult {
    guarded(
        host.lane
            .validate_and_execute(request(payload), within(20_000)),
    )
    .await
}

fn stdio(host: &Host, request: Value, framing: &str, args: &[&str]) -> Value {
    let mut argv = vec!["--framing".to_owned(), framing.to_owned()];
    argv.extend(args.iter().map(|arg| (*arg).to_owned()));
    json!({
        "request": request,
        "command": host.peer,
        "argv": argv,
        "transport_binding": {"mode": "stdio", "framing": framing},
    })
}

fn failure(result: &ExecutionResult) -> (String, String) {
    assert_eq!(result.status, ResultStatus::Failed, "{result:?}");
    let error = result.error.as_ref().unwrap();
    (
        error["failure_class"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        error["reason"].as_str().unwrap_or_default().to_owned(),
    )
}

fn kinds(events: &[ExecutionEvent]) -> Vec<&str> {
    events
        .iter()
        .map(|event| event.event_type.as_deref().unwrap_or_default())
        .collect()
}

#[tokio::test]
async fn a_call_over_stdio_returns_the_matching_response_in_both_framings() {
    let host = host().await;
    for framing in ["ndjson", "content-length"] {
        let result = call(
            &host,
            stdio(
                &host,
                json!({"method": "echo", "params": {"n": 1}}),
                framing,
                &[],
            ),
        )
        .await;
        assert_eq!(
            result.status,
            ResultStatus::Succeeded,
            "{framing}: {result:?}"
        );
        assert_eq!(
            result.output["result"],
            json!({"echo": {"n": 1}}),
            "{framing}"
        );
        assert_eq!(result.output["response"]["jsonrpc"], "2.0");
        assert_eq!(result.output["transport"]["mode"], "stdio");
        assert_eq!(result.output["transport"]["framing"], framing);
    }
}

#[tokio::test]
async fn notifications_and_peer_requests_before_the_answer_are_events_and_answered_by_policy() {
    let host = host().await;
    let mut payload = stdio(
        &host,
        json!({"method": "echo", "params": [1]}),
        "ndjson",
        &["--chatty"],
    );
    payload["peer_requests"] = json!({PEER_METHOD: [{"setting": true}]});
    let result = call(&host, payload).await;
    assert_eq!(result.status, ResultStatus::Succeeded, "{result:?}");
    assert_eq!(result.output["result"], json!({"echo": [1]}));
    let notification = result
        .events
        .iter()
        .find(|e| e.event_type.as_deref() == Some("jsonrpc.notification"))
        .unwrap();
    assert_eq!(notification.payload["method"], PROGRESS_METHOD);
    let peer = result
        .events
        .iter()
        .find(|e| e.event_type.as_deref() == Some("jsonrpc.peer_request"))
        .unwrap();
    assert_eq!(peer.payload["method"], PEER_METHOD);
    assert_eq!(peer.payload["reply"], "answered");
    assert_eq!(result.output["counts"]["peer_requests"], 1);
}

#[tokio::test]
async fn an_unanswered_peer_request_is_rejected_as_unsupported_and_the_call_still_completes() {
    let host = host().await;
    let result = call(
        &host,
        stdio(&host, json!("echo"), "content-length", &["--chatty"]),
    )
    .await;
    assert_eq!(result.status, ResultStatus::Succeeded, "{result:?}");
    let peer = result
        .events
        .iter()
        .find(|e| e.event_type.as_deref() == Some("jsonrpc.peer_request"))
        .unwrap();
    assert_eq!(peer.payload["reply"], "rejected");
}

#[tokio::test]
async fn the_typed_failures_of_a_process_backed_call() {
    let host = host().await;
    let error = call(&host, stdio(&host, json!("fail"), "ndjson", &[])).await;
    assert_eq!(
        failure(&error),
        (
            "semantic_runtime_failed".into(),
            "jsonrpc response returned an error".into()
        )
    );
    assert_eq!(
        error.error.as_ref().unwrap()["details"]["error"]["code"],
        FAIL_CODE
    );

    let mismatched = call(
        &host,
        stdio(&host, json!("echo"), "ndjson", &["--mismatched-id"]),
    )
    .await;
    assert_eq!(
        failure(&mismatched),
        (
            "protocol_framing_failed".into(),
            "invalid jsonrpc response".into()
        )
    );

    let mut slow = stdio(
        &host,
        json!({"method": "sleep", "params": {"ms": 5000}}),
        "ndjson",
        &[],
    );
    slow["timeout_ms"] = json!(300);
    assert_eq!(failure(&call(&host, slow).await).0, "timeout");

    let missing = json!({"request": "echo", "command": "/no/such/server"});
    assert_eq!(failure(&call(&host, missing).await).0, "launch_failed");

    let exits = call(
        &host,
        stdio(&host, json!("echo"), "ndjson", &["--exit-after", "0"]),
    )
    .await;
    assert_eq!(failure(&exits).0, "transport_failed");
}

#[tokio::test]
async fn a_command_outside_the_grant_is_policy_denied() {
    let host = host().await;
    let result = call(&host, json!({"request": "echo", "command": "/bin/sh"})).await;
    assert_eq!(failure(&result).0, "policy_denied");
}

#[tokio::test]
async fn a_call_over_http_posts_the_request_and_checks_the_answers_id() {
    let host = host().await;
    let server = JsonRpcHttpServer::start(JsonRpcBehaviour::Echo).unwrap();
    let payload = |request: Value| json!({"request": request, "transport_binding": {"mode": "http", "url": server.url()}});
    let result = call(&host, payload(json!({"method": "sum", "params": [1, 2]}))).await;
    assert_eq!(result.status, ResultStatus::Succeeded, "{result:?}");
    assert_eq!(result.output["result"]["method"], "sum");
    let sent = server.requests()[0].json().unwrap();
    assert_eq!(sent["jsonrpc"], "2.0");
    assert_eq!(sent["id"], result.output["id"]);

    let wrong = JsonRpcHttpServer::start(JsonRpcBehaviour::MismatchedId).unwrap();
    let result = call(
        &host,
        json!({"request": "echo", "transport_binding": {"mode": "http", "url": wrong.url()}}),
    )
    .await;
    assert_eq!(failure(&result).0, "protocol_framing_failed");
}

#[tokio::test]
async fn a_call_over_websocket_handles_a_chatty_peer() {
    let host = host().await;
    let server = JsonRpcWsServer::start(JsonRpcBehaviour::ChattyFirst).unwrap();
    let result = call(
        &host,
        json!({"request": {"method": "echo", "params": {"a": 1}},
               "transport_binding": {"mode": "websocket", "url": server.url()}}),
    )
    .await;
    assert_eq!(result.status, ResultStatus::Succeeded, "{result:?}");
    assert_eq!(result.output["result"]["echo"], json!({"a": 1}));
    let record = server
        .wait_until(|record| !record.peer_replies.is_empty())
        .await;
    assert_eq!(record.peer_replies[0]["error"]["code"], -32601);
}

#[tokio::test]
async fn a_session_sends_caller_input_and_reports_every_inbound_message() {
    let host = host().await;
    let (sender, slot) = InputSlot::channel();
    let payload = stdio(
        &host,
        json!({"method": "echo", "params": ["first"]}),
        "ndjson",
        &[],
    );
    let mut events = host
        .lane
        .stream(request(payload), within(20_000).with_input(slot))
        .await
        .unwrap();
    let mut seen = Vec::new();
    while seen.len() < 3 {
        seen.push(guarded(events.next()).await.unwrap());
    }
    assert_eq!(
        kinds(&seen),
        ["jsonrpc.open", "jsonrpc.sent", "jsonrpc.response"]
    );
    assert_eq!(seen[2].payload["result"], json!({"echo": ["first"]}));
    sender
        .send(Input::Data(
            br#"{"method": "echo", "params": {"second": true}, "id": "mine"}"#.to_vec(),
        ))
        .await
        .unwrap();
    sender
        .send(Input::Data(b"not json".to_vec()))
        .await
        .unwrap();
    sender.send(Input::End).await.unwrap();
    let rest: Vec<_> = guarded(events.collect::<Vec<_>>()).await;
    // The peer's answer and the refusal of the bad input race; both come, before the end.
    let mut middle = kinds(&rest)[1..3].to_vec();
    middle.sort_unstable();
    assert_eq!(kinds(&rest)[0], "jsonrpc.sent", "{rest:?}");
    assert_eq!(
        middle,
        ["jsonrpc.input_refused", "jsonrpc.response"],
        "{rest:?}"
    );
    assert_eq!(kinds(&rest)[3], STREAM_COMPLETED_EVENT);
    let response = rest
        .iter()
        .find(|e| e.event_type.as_deref() == Some("jsonrpc.response"))
        .unwrap();
    assert_eq!(response.payload["id"], "mine");
    let output = &rest[3].payload["output"];
    assert_eq!(output["sent"], 2);
    assert_eq!(output["pending"], 0);
    assert_eq!(output["transport"]["exit"]["code"], 0);
}
