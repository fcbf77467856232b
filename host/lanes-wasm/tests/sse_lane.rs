//! The first-party `sse` lane (built from `plugins/sse`, embedded by `ep-builtin-lanes`)
//! against a real event-stream server on loopback: the WHATWG parsing end to end, reconnects
//! with `Last-Event-ID` honouring `retry`, the reconnect budget, the receive timeout, refused
//! answers, the host's grant check, and `execute` refused for a streaming lane.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use ep_contracts::boundary::{ExecutionEvent, ResultStatus};
use ep_lane_api::STREAM_COMPLETED_EVENT;
use ep_lanes_wasm::stream::STREAM_FAILED_EVENT;
use ep_lanes_wasm::{AbiVersion, WasmLane};
use ep_node::LaneAdapter;
use ep_test_servers::sse::{SseConnection, SseScript, SseServer, event};
use serde_json::{Value, json};
use support::*;

/// The `sse` lane granted loopback (`http_private`) or only public addresses.
async fn sse_lane(private: bool) -> WasmLane {
    builtin_lane(ep_builtin_lanes::sse().wasm, &["http://*:*"], private).await
}

/// The stream's events (denials the lane reported shown as the node shows them are not needed
/// here) once it ended.
fn sse_events(events: &[ExecutionEvent]) -> Vec<Value> {
    events
        .iter()
        .filter(|e| e.event_type.as_deref() == Some("sse.event"))
        .map(|e| Value::Object(e.payload.clone()))
        .collect()
}

#[tokio::test]
async fn events_are_parsed_as_whatwg_specifies_and_the_stream_ends_with_its_output() {
    let body = format!(
        "\u{feff}: a comment\r\nretry: 25\r\n\r\n{}{}data: no newline at the end\rid: 7\r\r{}",
        event(Some("1"), Some("greeting"), "hello\nworld"),
        event(None, None, "plain"),
        "data\n\n",
    );
    let server = SseServer::start(
        SseScript::new().connection(SseConnection::new().chunk(body.into_bytes())),
    )
    .unwrap();
    let lane = sse_lane(true).await;
    assert_eq!(lane.abi(), AbiVersion::V0_2);
    let events = stream_all(&lane, json!({"url": server.url()})).await;
    assert_eq!(
        kinds(&events),
        [
            "sse.open",
            "sse.event",
            "sse.event",
            "sse.event",
            "sse.event",
            // Reported after the events of the chunk that set it.
            "sse.retry",
            STREAM_COMPLETED_EVENT
        ],
        "{events:?}"
    );
    assert_eq!(events[5].payload["retry_ms"], 25);
    assert_eq!(
        sse_events(&events),
        [
            json!({"event": "greeting", "data": "hello\nworld", "id": "1"}),
            json!({"event": "message", "data": "plain", "id": "1"}),
            json!({"event": "message", "data": "no newline at the end", "id": "7"}),
            json!({"event": "message", "data": "", "id": "7"}),
        ]
    );
    let end = &events[6].payload;
    assert_eq!(end["status"], "succeeded");
    assert_eq!(
        end["output"],
        json!({"events": 4, "connections": 1, "reconnects": 0, "last_event_id": "7"})
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].accept.as_deref(), Some("text/event-stream"));
    assert_eq!(requests[0].last_event_id, None);
}

#[tokio::test]
async fn a_dropped_connection_is_resumed_with_last_event_id_after_the_servers_retry() {
    let first = format!(
        "retry: 10\n\n{}{}",
        event(Some("1"), None, "a"),
        event(Some("2"), None, "b")
    );
    let server = SseServer::start(
        SseScript::new()
            .connection(SseConnection::new().chunk(first.into_bytes()).then_drop())
            .connection(SseConnection::new().chunk(event(Some("3"), None, "c").into_bytes())),
    )
    .unwrap();
    let lane = sse_lane(true).await;
    let events = stream_all(
        &lane,
        json!({"url": server.url(), "last_event_id": "0", "reconnect": {"attempts": 3}}),
    )
    .await;
    let data: Vec<_> = sse_events(&events)
        .iter()
        .map(|e| e["data"].clone())
        .collect();
    assert_eq!(data, [json!("a"), json!("b"), json!("c")], "{events:?}");
    let requests = server.requests();
    // The first GET carries the payload's id; the resumption the last id seen; the third (after
    // a clean end) is answered 204, the server's "stop".
    let ids: Vec<_> = requests.iter().map(|r| r.last_event_id.clone()).collect();
    assert_eq!(
        ids,
        [
            Some("0".to_owned()),
            Some("2".to_owned()),
            Some("3".to_owned())
        ]
    );
    let reconnecting: Vec<_> = events
        .iter()
        .filter(|e| e.event_type.as_deref() == Some("sse.reconnecting"))
        .collect();
    assert_eq!(reconnecting.len(), 2);
    assert_eq!(reconnecting[0].payload["delay_ms"], 10);
    assert_eq!(reconnecting[0].payload["cause"], "dropped");
    assert_eq!(reconnecting[0].payload["last_event_id"], "2");
    let last = events.last().unwrap();
    assert_eq!(last.event_type.as_deref(), Some(STREAM_COMPLETED_EVENT));
    assert_eq!(last.payload["output"]["reconnects"], 2);
    assert_eq!(last.payload["output"]["connections"], 2);
}

#[tokio::test]
async fn past_its_reconnect_budget_a_stream_fails_as_transport_failed() {
    let server = SseServer::start(
        SseScript::new()
            .connection(
                SseConnection::new()
                    .chunk(format!("retry: 5\n\n{}", event(Some("1"), None, "a")).into_bytes())
                    .then_drop(),
            )
            .connection(SseConnection::new().then_drop()),
    )
    .unwrap();
    let lane = sse_lane(true).await;
    let events = stream_all(
        &lane,
        json!({"url": server.url(), "reconnect": {"attempts": 1}}),
    )
    .await;
    let last = events.last().unwrap();
    assert_eq!(
        last.event_type.as_deref(),
        Some(STREAM_FAILED_EVENT),
        "{events:?}"
    );
    let (class, _) = failure_in(&last.payload["error"]);
    assert_eq!(class, "transport_failed");
    assert_eq!(
        last.payload["error"]["reason"],
        "reconnect_budget_exhausted"
    );
    assert_eq!(last.payload["output"]["events"], 1);
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn a_silent_server_ends_the_stream_at_the_receive_timeout() {
    let server = SseServer::start(
        SseScript::new().connection(
            SseConnection::new()
                .chunk(event(None, None, "first").into_bytes())
                .chunk_after(
                    Duration::from_secs(30),
                    event(None, None, "late").into_bytes(),
                ),
        ),
    )
    .unwrap();
    let lane = sse_lane(true).await;
    let events = stream_all(
        &lane,
        json!({"url": server.url(), "receive_timeout_ms": 200}),
    )
    .await;
    assert_eq!(
        kinds(&events),
        ["sse.open", "sse.event", STREAM_FAILED_EVENT],
        "{events:?}"
    );
    let (class, _) = failure_in(&events[2].payload["error"]);
    assert_eq!(class, "timeout", "{:?}", events[2].payload);
    assert_eq!(events[2].payload["error"]["reason"], "receive_timeout");
}

#[tokio::test]
async fn an_error_status_or_another_content_type_fails_with_its_class() {
    let lane = sse_lane(true).await;
    for (connection, class, reason) in [
        (
            SseConnection::new().status(503),
            "semantic_runtime_failed",
            "http_status",
        ),
        (
            SseConnection::new().content_type("application/json"),
            "protocol_framing_failed",
            "not_an_event_stream",
        ),
    ] {
        let server = SseServer::start(SseScript::new().connection(connection)).unwrap();
        let events = stream_all(&lane, json!({"url": server.url(), "reconnect": true})).await;
        assert_eq!(kinds(&events), [STREAM_FAILED_EVENT], "{events:?}");
        let error = &events[0].payload["error"];
        assert_eq!(failure_in(error).0, class);
        assert_eq!(error["reason"], reason);
    }
}

#[tokio::test]
async fn max_events_ends_the_stream_after_that_many() {
    let server = SseServer::flood(1_000, 64).unwrap();
    let lane = sse_lane(true).await;
    let events = stream_all(&lane, json!({"url": server.url(), "max_events": 5})).await;
    assert_eq!(sse_events(&events).len(), 5);
    let last = events.last().unwrap();
    assert_eq!(last.event_type.as_deref(), Some(STREAM_COMPLETED_EVENT));
    assert_eq!(last.payload["output"]["events"], 5);
}

#[tokio::test]
async fn a_loopback_server_without_a_private_grant_is_refused_by_the_host() {
    let server = SseServer::start(SseScript::new()).unwrap();
    let lane = sse_lane(false).await;
    let ctx = ctx();
    let reported = ctx.evidence.clone();
    let events = stream_in(&lane, json!({"url": server.url()}), ctx).await;
    assert_eq!(kinds(&events), [STREAM_FAILED_EVENT], "{events:?}");
    let error = &events[0].payload["error"];
    assert_eq!(failure_in(error).0, "policy_denied");
    assert_eq!(error["details"]["denial"], "address_not_allowed");
    assert!(
        error["details"]["message"]
            .as_str()
            .unwrap()
            .contains("http_private"),
        "{error}"
    );
    let denials = reported.take_denials();
    assert_eq!(denials.len(), 1);
    assert_eq!(denials[0].reason, "address_not_allowed");
    assert!(server.requests().is_empty(), "nothing reached the server");
}

#[tokio::test]
async fn execute_on_the_streaming_lane_is_refused_as_not_supported() {
    let lane = sse_lane(true).await;
    assert!(!lane.capabilities().supports_execute);
    let result = lane
        .validate_and_execute(request(None, json!({"url": "http://127.0.0.1:1/"})), ctx())
        .await;
    assert_eq!(result.status, ResultStatus::Rejected);
    let error = result.error.unwrap();
    assert_eq!(error["reason"], "not_supported");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("streaming lane")
    );
}

#[tokio::test]
async fn a_bad_payload_is_refused_before_any_io() {
    let lane = sse_lane(true).await;
    let refused = lane
        .stream(request(None, json!({"url": "ftp://x/"})), ctx())
        .await
        .err()
        .unwrap();
    assert_eq!(refused.reason, "invalid_lane_request");
    assert_eq!(refused.details["field"], "url");
}
