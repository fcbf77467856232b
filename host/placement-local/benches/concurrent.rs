//! Benchmark (c) of the local process placement: 1,000 concurrent streaming processes through a
//! node, each `echo start; sleep 2; echo end`, all read to their end. Reports errors (must be
//! zero), the wall time and the peak RSS of this process, against the baseline in the same run:
//! the same 1,000 processes spawned with `std::process::Command` and waited on. Not criterion:
//! one run of each is the measurement (they are seconds long), printed as a ratio.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Instant;

use ep_contracts::boundary::{AdmissionRequest, Map, Provenance};
use ep_node::node::Node;
use ep_node::sinks::memory::MemorySink;
use ep_placement_local::{ProcessLane, ProcessPolicy};
use futures::StreamExt;
use serde_json::json;

const PROCESSES: usize = 1000;
const SCRIPT: &str = "echo start; sleep 2; echo end";

/// Peak resident set of this process so far, in MiB (`VmHWM`).
fn peak_rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
        .unwrap_or(0)
        / 1024
}

fn main() {
    // The baseline first, so its peak is not the lane's.
    let started = Instant::now();
    let children: Vec<_> = (0..PROCESSES)
        .map(|_| {
            std::process::Command::new("sh")
                .args(["-c", SCRIPT])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut native_errors = 0;
    for child in children {
        let out = child.wait_with_output().unwrap();
        if out.stdout != b"start\nend\n" {
            native_errors += 1;
        }
    }
    let native = started.elapsed();
    let native_rss = peak_rss_mib();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let node = Node::new("bench");
    node.register_evidence_sink(Arc::new(MemorySink::new("bench")));
    node.register_lane(Arc::new(ProcessLane::new(ProcessPolicy {
        commands: vec!["sh".to_owned()],
        cwd: vec![std::env::temp_dir()],
        max_processes: PROCESSES,
        ..ProcessPolicy::default()
    })));
    let started = Instant::now();
    let errors = rt.block_on(async {
        let runs = (0..PROCESSES).map(|_| {
            let node = node.clone();
            tokio::spawn(async move {
                let mut request = AdmissionRequest::new("process");
                request.payload = match json!({"command": "sh", "argv": ["-c", SCRIPT]}) {
                    serde_json::Value::Object(map) => map,
                    _ => unreachable!("an object"),
                };
                request.provenance = Provenance::direct_lower_lane_owner("bench", Map::new());
                let events: Vec<_> = node.stream(request).await.unwrap().collect().await;
                let lines: Vec<_> = events
                    .iter()
                    .filter(|e| e.event_type.as_deref() == Some("process.stdout"))
                    .map(|e| e.payload["line"].as_str().unwrap_or_default().to_owned())
                    .collect();
                let ok = lines == ["start", "end"]
                    && events
                        .last()
                        .is_some_and(|e| e.payload["status"] == "succeeded");
                usize::from(!ok)
            })
        });
        let mut errors = 0;
        for run in futures::future::join_all(runs).await {
            errors += run.unwrap_or(1);
        }
        errors
    });
    let lane = started.elapsed();
    let lane_rss = peak_rss_mib();
    println!("1,000 concurrent streaming processes (`{SCRIPT}`)");
    println!(
        "baseline std::process::Command: {:.2} s, errors {native_errors}, peak RSS {native_rss} MiB",
        native.as_secs_f64()
    );
    println!(
        "process lane streams through a node: {:.2} s, errors {errors}, peak RSS {lane_rss} MiB",
        lane.as_secs_f64()
    );
    println!(
        "ratio (lane / baseline wall time): {:.2}x; RSS the lane added: {} MiB",
        lane.as_secs_f64() / native.as_secs_f64(),
        lane_rss.saturating_sub(native_rss)
    );
    assert_eq!(
        errors, 0,
        "every stream ends with its two lines and success"
    );
}
