//! The runtime's threads live exactly as long as the runtime: dropping the last runtime clone
//! and the last lane stops the epoch ticker, the one thread it starts. (Its own test binary, so
//! no other test's runtime is alive while threads are counted.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use ep_lanes_wasm::LaneLimits;
use serde_json::json;
use support::*;

/// Threads of this process whose name is `name` (Linux `/proc`).
fn threads_named(name: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|comm| comm.trim_end() == name)
        .count()
}

#[tokio::test]
async fn dropping_the_runtime_and_its_lanes_stops_its_threads() {
    let rt = runtime();
    let lane = load(&rt, "echo", LaneLimits::default()).await;
    assert_eq!(threads_named("ep-wasm-epoch"), 1);
    assert_eq!(lane_validate(&lane).await, Ok(()));
    drop(rt);
    // The lane keeps the runtime alive.
    assert_eq!(threads_named("ep-wasm-epoch"), 1);
    assert_eq!(lane_validate(&lane).await, Ok(()));
    drop(lane);
    guarded(async {
        while threads_named("ep-wasm-epoch") > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

async fn lane_validate(
    lane: &ep_lanes_wasm::WasmLane,
) -> Result<(), ep_contracts::boundary::AdmissionRejection> {
    ep_node::LaneAdapter::validate(lane, &request(None, json!({}))).await
}
