//! The first-party `websocket` lane (built from `plugins/websocket`, embedded by
//! `ep-builtin-lanes`) against a real WebSocket echo server on loopback: the payload's frames
//! in order, caller input relayed, server messages as events, close codes, a refused upgrade,
//! the receive timeout and the host's grant check.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use ep_contracts::boundary::ResultStatus;
use ep_lane_api::{Input, InputSlot, STREAM_COMPLETED_EVENT};
use ep_lanes_wasm::WasmLane;
use ep_lanes_wasm::stream::STREAM_FAILED_EVENT;
use ep_node::LaneAdapter;
use ep_test_servers::websocket::{WsEchoServer, WsOptions};
use futures::StreamExt;
use serde_json::json;
use support::*;

async fn ws_lane(private: bool) -> WasmLane {
    builtin_lane(
        ep_builtin_lanes::websocket().wasm,
        &["ws://*:*", "wss://*:*"],
        private,
    )
    .await
}

#[tokio::test]
async fn the_payloads_frames_go_out_in_order_and_the_servers_close_ends_the_stream() {
    let server = WsEchoServer::start(WsOptions::new()).unwrap();
    let lane = ws_lane(true).await;
    let events = stream_all(
        &lane,
        json!({"url": server.url(), "frames": [
            {"text": "one"},
            {"binary_base64": "AAEC"},
            {"text": "close:4000:done here"}
        ]}),
    )
    .await;
    assert_eq!(
        kinds(&events),
        [
            "websocket.open",
            "websocket.text",
            "websocket.binary",
            "websocket.close",
            STREAM_COMPLETED_EVENT
        ],
        "{events:?}"
    );
    assert_eq!(events[1].payload["text"], "one");
    assert_eq!(events[2].payload["data_base64"], "AAEC");
    assert_eq!(events[3].payload["code"], 4000);
    assert_eq!(events[3].payload["reason"], "done here");
    let output = &events[4].payload["output"];
    assert_eq!(output["sent"], 3);
    assert_eq!(output["received"], 2);
    assert_eq!(output["close"]["code"], 4000);
}

#[tokio::test]
async fn caller_input_is_relayed_and_the_end_of_input_closes_normally() {
    let server = WsEchoServer::start(WsOptions::new()).unwrap();
    let lane = ws_lane(true).await;
    let (sender, slot) = InputSlot::channel();
    let mut events = lane
        .stream(
            request(None, json!({"url": server.url()})),
            ctx().with_input(slot),
        )
        .await
        .unwrap();
    let open = guarded(events.next()).await.unwrap();
    assert_eq!(open.event_type.as_deref(), Some("websocket.open"));
    sender.send(Input::Data(b"hello".to_vec())).await.unwrap();
    let echoed = guarded(events.next()).await.unwrap();
    assert_eq!(echoed.event_type.as_deref(), Some("websocket.text"));
    assert_eq!(echoed.payload["text"], "hello");
    sender.send(Input::Data(vec![0xff, 0x00])).await.unwrap();
    let binary = guarded(events.next()).await.unwrap();
    assert_eq!(binary.event_type.as_deref(), Some("websocket.binary"));
    sender.send(Input::End).await.unwrap();
    let rest: Vec<_> = guarded(events.collect::<Vec<_>>()).await;
    assert_eq!(
        kinds(&rest),
        ["websocket.close", STREAM_COMPLETED_EVENT],
        "{rest:?}"
    );
    assert_eq!(rest[0].payload["code"], 1000);
    let connections = server
        .wait_until(|connections| connections.iter().any(|c| c.close.is_some()))
        .await;
    assert_eq!(connections[0].close.as_ref().map(|c| c.code), Some(1000));
}

#[tokio::test]
async fn a_refused_upgrade_fails_with_the_status() {
    let server = WsEchoServer::refuse(403).unwrap();
    let lane = ws_lane(true).await;
    let events = stream_all(&lane, json!({"url": server.url()})).await;
    assert_eq!(kinds(&events), [STREAM_FAILED_EVENT], "{events:?}");
    let error = &events[0].payload["error"];
    assert_eq!(failure_in(error).0, "semantic_runtime_failed");
    assert_eq!(error["reason"], "handshake_refused");
    assert_eq!(error["details"]["status"], 403);
}

#[tokio::test]
async fn a_quiet_server_ends_the_stream_at_the_receive_timeout() {
    let server = WsEchoServer::start(WsOptions::new()).unwrap();
    let lane = ws_lane(true).await;
    let events = stream_all(
        &lane,
        json!({"url": server.url(), "receive_timeout_ms": 200}),
    )
    .await;
    assert_eq!(
        kinds(&events),
        ["websocket.open", STREAM_FAILED_EVENT],
        "{events:?}"
    );
    let error = &events[1].payload["error"];
    assert_eq!(failure_in(error).0, "timeout");
    assert_eq!(error["reason"], "receive_timeout");
}

#[tokio::test]
async fn loopback_without_a_private_grant_is_denied_before_any_connection() {
    let server = WsEchoServer::start(WsOptions::new()).unwrap();
    let lane = ws_lane(false).await;
    let ctx = ctx();
    let reported = ctx.evidence.clone();
    let events = stream_in(&lane, json!({"url": server.url()}), ctx).await;
    assert_eq!(kinds(&events), [STREAM_FAILED_EVENT], "{events:?}");
    assert_eq!(failure_in(&events[0].payload["error"]).0, "policy_denied");
    let denials = reported.take_denials();
    assert_eq!(denials.len(), 1);
    assert_eq!(denials[0].reason, "address_not_allowed");
    assert!(server.connections().is_empty());
}

#[tokio::test]
async fn max_messages_closes_from_our_side_after_that_many() {
    let server = WsEchoServer::start(WsOptions::new()).unwrap();
    let lane = ws_lane(true).await;
    let events = stream_all(
        &lane,
        json!({"url": server.url(), "max_messages": 2,
               "frames": [{"text": "a"}, {"text": "b"}, {"text": "c"}]}),
    )
    .await;
    let texts = events
        .iter()
        .filter(|e| e.event_type.as_deref() == Some("websocket.text"))
        .count();
    assert_eq!(texts, 2, "{events:?}");
    let last = events.last().unwrap();
    assert_eq!(last.event_type.as_deref(), Some(STREAM_COMPLETED_EVENT));
}

#[tokio::test]
async fn execute_is_refused_for_the_streaming_lane() {
    let lane = ws_lane(true).await;
    let result = lane
        .validate_and_execute(request(None, json!({"url": "ws://127.0.0.1:1/"})), ctx())
        .await;
    assert_eq!(result.status, ResultStatus::Rejected);
    assert_eq!(result.error.unwrap()["reason"], "not_supported");
}
