//! Lane ABI 0.2.0 beside 0.1.0: which version a component targets, caller input reaching a
//! stream through the `input` pollable, and streams that end with an outcome (an output, or a
//! classified failure mid-way). The 0.1.0 guests of the rest of the suite keep running.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use ep_contracts::boundary::ResultStatus;
use ep_lane_api::{Input, InputSlot, STREAM_COMPLETED_EVENT};
use ep_lanes_wasm::stream::STREAM_FAILED_EVENT;
use ep_lanes_wasm::{AbiVersion, Grants, HostPolicy, LaneLimits, PluginError, WasmLane};
use ep_node::LaneAdapter;
use futures::StreamExt;
use serde_json::json;
use support::*;

async fn load_none(name: &str) -> WasmLane {
    WasmLane::load_with_grants(
        &runtime(),
        guest(name),
        LaneLimits::default(),
        Grants::none(),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn each_component_is_run_under_the_abi_version_it_exports() {
    let rt = runtime();
    let old = load(&rt, "echo", LaneLimits::default()).await;
    assert_eq!(old.abi(), AbiVersion::V0_1);
    let new = load(&rt, "input-echo", LaneLimits::default()).await;
    assert_eq!(new.abi(), AbiVersion::V0_2);
    assert_eq!(new.abi().package(), "execution-plane:lane@0.2.0");
    // Both run side by side in one runtime.
    let a = guarded(old.execute(request(None, json!({"v": 1})), ctx())).await;
    let b = guarded(new.execute(request(None, json!({"v": 2})), ctx())).await;
    assert_eq!(
        (a.status, b.status),
        (ResultStatus::Succeeded, ResultStatus::Succeeded)
    );
    assert_eq!(json!(b.output), json!({"payload": {"v": 2}}));
}

#[tokio::test]
async fn a_lane_minimal_component_loads_with_no_grants_and_imports_only_input() {
    let lane = load_none("minimal-v2").await;
    assert_eq!(lane.abi(), AbiVersion::V0_2);
    let lane_imports: Vec<&String> = lane
        .imports()
        .iter()
        .filter(|name| name.starts_with("execution-plane:"))
        .collect();
    // The world imports only `input` (needs no grant); Rust's linker drops it when unused.
    assert!(
        lane_imports
            .iter()
            .all(|name| name.starts_with("execution-plane:lane/types@0.2.0")
                || name.starts_with("execution-plane:lane/input@0.2.0")),
        "{lane_imports:?}"
    );
    let events: Vec<_> = lane
        .stream(request(None, json!({})), ctx())
        .await
        .unwrap()
        .collect()
        .await;
    assert_eq!(kinds(&events), ["minimal.tick", STREAM_COMPLETED_EVENT]);
    assert_eq!(events[1].payload["status"], "succeeded");
    assert_eq!(events[1].payload["output"], json!({"ticks": 1}));
}

#[tokio::test]
async fn caller_input_reaches_the_stream_and_its_end_is_the_outcome() {
    let lane = load_none("input-echo").await;
    let (sender, slot) = InputSlot::channel();
    let mut events = lane
        .stream(request(None, json!({})), ctx().with_input(slot))
        .await
        .unwrap();
    sender.send(Input::Data(b"one".to_vec())).await.unwrap();
    let first = guarded(events.next()).await.unwrap();
    assert_eq!(first.event_type.as_deref(), Some("input.data"));
    assert_eq!(first.payload["text"], "one");
    // The guest waits (in its poll) until the next input arrives.
    sender
        .send(Input::Data("twö".as_bytes().to_vec()))
        .await
        .unwrap();
    sender.send(Input::End).await.unwrap();
    let rest: Vec<_> = guarded(events.collect::<Vec<_>>()).await;
    assert_eq!(kinds(&rest), ["input.data", STREAM_COMPLETED_EVENT]);
    assert_eq!(rest[0].payload["text"], "twö");
    assert_eq!(rest[1].payload["output"], json!({"received": 2}));
}

#[tokio::test]
async fn an_interrupt_ends_the_stream_with_the_guests_classified_failure() {
    let lane = load_none("input-echo").await;
    let (sender, slot) = InputSlot::channel();
    let events = lane
        .stream(request(None, json!({})), ctx().with_input(slot))
        .await
        .unwrap();
    sender.send(Input::Interrupt).await.unwrap();
    let events: Vec<_> = guarded(events.collect::<Vec<_>>()).await;
    assert_eq!(kinds(&events), [STREAM_FAILED_EVENT]);
    let payload = &events[0].payload;
    assert_eq!(payload["status"], "failed");
    let (class, _) = failure_in(&payload["error"]);
    assert_eq!(class, "cancellation");
    assert_eq!(payload["error"]["reason"], "interrupted by the caller");
    assert_eq!(payload["error"]["details"]["received"], 0);
    assert_eq!(
        payload["error"]["details"]["component_digest"],
        lane.digest()
    );
}

#[tokio::test]
async fn a_stream_can_fail_mid_way_with_a_class_after_its_events() {
    let lane = load_none("input-echo").await;
    let events: Vec<_> = lane
        .stream(request(None, json!({"events": 5, "fail_after": 2})), ctx())
        .await
        .unwrap()
        .collect()
        .await;
    assert_eq!(
        kinds(&events),
        ["input.count", "input.count", STREAM_FAILED_EVENT]
    );
    let (class, _) = failure_in(&events[2].payload["error"]);
    assert_eq!(class, "transport_failed");
    assert_eq!(events[2].payload["error"]["details"]["after"], 2);
}

#[tokio::test]
async fn a_stream_without_input_never_sees_any_and_ends_by_its_own_outcome() {
    let lane = load_none("input-echo").await;
    let events: Vec<_> = lane
        .stream(request(None, json!({"events": 3})), ctx())
        .await
        .unwrap()
        .collect()
        .await;
    assert_eq!(
        kinds(&events),
        [
            "input.count",
            "input.count",
            "input.count",
            STREAM_COMPLETED_EVENT
        ]
    );
    assert_eq!(events[3].payload["output"], json!({"counted": 3}));
}

#[tokio::test]
async fn a_stream_waiting_on_input_that_never_comes_ends_at_its_deadline() {
    let lane = load_none("input-echo").await;
    let (_sender, slot) = InputSlot::channel();
    let events: Vec<_> = lane
        .stream(request(None, json!({})), within(300).with_input(slot))
        .await
        .unwrap()
        .collect()
        .await;
    assert_eq!(kinds(&events), [STREAM_FAILED_EVENT]);
    let (class, _) = failure_in(&events[0].payload["error"]);
    assert_eq!(class, "timeout");
}

#[tokio::test]
async fn a_manifest_naming_another_abi_than_the_component_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("minimal-v2.wasm");
    std::fs::copy(guest("minimal-v2"), &wasm).unwrap();
    std::fs::write(
        dir.path().join("minimal-v2.toml"),
        "lane_id = \"minimal-v2\"\nversion = \"1.0.0\"\nwit_version = \"execution-plane:lane@0.1.0\"\n",
    )
    .unwrap();
    let error = ep_lanes_wasm::load_plugin(&runtime(), &wasm, &HostPolicy::default())
        .await
        .unwrap_err();
    let PluginError::AbiMismatch { component_abi, .. } = &error else {
        panic!("expected AbiMismatch, got {error:?}");
    };
    assert_eq!(*component_abi, AbiVersion::V0_2);
    assert!(
        error
            .to_string()
            .contains("set `wit_version = \"execution-plane:lane@0.2.0\"`"),
        "{error}"
    );
}
