//! The guest-side crates (the lane SDK, the first-party plugins and the example lane) live
//! outside the host workspace because they target `wasm32-wasip2`. This suite runs their own
//! tests natively and builds the example lane as a real component, so the one workspace test
//! command covers them too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn target_dir() -> PathBuf {
    let base = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target"));
    base.join("guest-crates")
}

fn cargo(args: &[&str]) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args(args)
        .arg("--target-dir")
        .arg(target_dir())
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "cargo {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn sdk_tests_pass() {
    cargo(&["test", "--manifest-path", "sdk/Cargo.toml"]);
}

#[test]
fn first_party_plugin_tests_pass() {
    cargo(&["test", "--locked", "--manifest-path", "plugins/Cargo.toml"]);
}

#[test]
fn example_lane_tests_pass_and_it_builds_as_a_component() {
    cargo(&["test", "--manifest-path", "examples/echo-lane/Cargo.toml"]);
    cargo(&[
        "build",
        "--release",
        "--target",
        "wasm32-wasip2",
        "--manifest-path",
        "examples/echo-lane/Cargo.toml",
    ]);
    let wasm = target_dir().join("wasm32-wasip2/release/example_echo.wasm");
    let bytes = std::fs::read(&wasm).unwrap();
    // A component (not a core module): magic, then layer 1 / version 0x0d.
    assert_eq!(
        &bytes[..8],
        b"\0asm\x0d\x00\x01\x00",
        "{} is not a component",
        wasm.display()
    );
    run_example_lane_in_a_node(bytes);
}

/// The third-party lane, loaded by the host runtime and run through a node like any lane.
fn run_example_lane_in_a_node(bytes: Vec<u8>) {
    use ep_contracts::boundary::{AdmissionRequest, Provenance, ResultStatus};
    use futures::StreamExt;
    use std::sync::Arc;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let runtime =
            ep_lanes_wasm::WasmRuntime::new(ep_lanes_wasm::RuntimeConfig::default()).unwrap();
        let lane =
            ep_lanes_wasm::WasmLane::load(&runtime, bytes, ep_lanes_wasm::LaneLimits::default())
                .await
                .unwrap();
        let digest = lane.digest().to_owned();
        let node = ep_node::node::Node::new("node-example");
        let sink = Arc::new(ep_node::sinks::memory::MemorySink::new("memory"));
        node.register_evidence_sink(sink.clone());
        let descriptor = ep_lanes_wasm::register_wasm_lane(&node, Arc::new(lane))
            .await
            .unwrap();
        assert_eq!(descriptor.lane_id, "example-echo");
        assert_eq!(
            descriptor.attested_capability_classes,
            [ep_lanes_wasm::WASM_ENGINE_CLASS]
        );

        let request = |payload: serde_json::Value| {
            let mut r = AdmissionRequest::new("example-echo");
            r.provenance = Provenance::direct_lower_lane_owner("example-test", Default::default());
            r.payload = payload.as_object().cloned().unwrap();
            r
        };
        let result = node
            .execute(request(serde_json::json!({"message": "hello wasm world"})))
            .await;
        assert_eq!(result.status, ResultStatus::Succeeded, "{result:?}");
        assert_eq!(result.output["echo"]["message"], "hello wasm world");
        // The execution's evidence names the exact component that ran.
        let completed = sink
            .records()
            .into_iter()
            .find(|e| e.evidence_type.as_deref() == Some("execution.completed"))
            .unwrap();
        assert_eq!(
            completed.payload["lane_evidence"][0]["component_digest"],
            digest.as_str()
        );
        assert_eq!(
            completed.payload["lane_evidence"][0]["engine"],
            "wasmtime@48.0.8"
        );

        let refused = node
            .execute(request(serde_json::json!({"no_message": 1})))
            .await;
        assert_eq!(refused.status, ResultStatus::Rejected);
        assert_eq!(refused.error.unwrap()["reason"], "invalid_lane_request");

        let events: Vec<_> = node
            .stream(request(serde_json::json!({"message": "one two three"})))
            .await
            .unwrap()
            .collect()
            .await;
        // The lane's three and its outcome (ABI 0.2.0: `lane.completed`), between the node's
        // dispatch.started and dispatch.completed.
        assert_eq!(events.len(), 6, "{events:?}");
        assert_eq!(events[0].event_type.as_deref(), Some("dispatch.started"));
        assert_eq!(events[4].event_type.as_deref(), Some("lane.completed"));
        assert_eq!(events[4].payload["status"], "succeeded");
        assert_eq!(events[5].event_type.as_deref(), Some("dispatch.completed"));
    });
}
