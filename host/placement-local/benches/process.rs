//! The local process placement against the same work done natively, in the same run:
//!
//! * `one_shot`: `/bin/true` as a direct execution of the `process` lane through a node (admission,
//!   the policy, a process group, pipes, exit normalization, evidence into a memory sink)
//!   against `std::process::Command::new("/bin/true").output()` (aim: ≤ 1.3x), and the same
//!   through the sandboxed lane (the launcher's exec, Landlock, seccomp, rlimits, a uid);
//! * `stream_100mb`: 100 MB of 40-byte lines streamed as `process.stdout` events through the lane
//!   (framing, one event per line, the channel) against reading the same command's stdout
//!   natively and splitting it into lines (aim: ≥ 0.7x the native throughput), once with an
//!   event per line and once with `stdout_mode: line_batch` (an event per read).
//!
//! The bench runs on the allocator the `execution-plane` binary ships with (mimalloc): a stream
//! allocates a string per line on the reading task and frees it on the consumer's, which the
//! system allocator serializes on its arena lock (half the time of a `line_batch` stream).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::Read as _;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ep_contracts::boundary::{AdmissionRequest, Map, Provenance, ResultStatus};
use ep_node::node::Node;
use ep_node::sinks::memory::MemorySink;
use ep_placement_local::sandbox::{Sandbox, SandboxPolicy};
use ep_placement_local::{ProcessLane, ProcessPolicy};
use futures::StreamExt;
use serde_json::{Value, json};

const LINES_SCRIPT: &str = "yes 012345678901234567890123456789012345678 | head -c 100000000";
const STREAM_BYTES: u64 = 100_000_000;

fn policy() -> ProcessPolicy {
    ProcessPolicy {
        commands: vec!["/bin/true".to_owned(), "sh".to_owned()],
        cwd: vec![std::env::temp_dir()],
        ..ProcessPolicy::default()
    }
}

fn node() -> Node {
    let node = Node::new("bench");
    node.register_evidence_sink(Arc::new(MemorySink::new("bench")));
    node.register_lane(Arc::new(ProcessLane::new(policy())));
    node
}

/// A node whose `process` lane runs every process in the sandbox.
fn sandboxed_node() -> Node {
    let node = Node::new("bench-sandboxed");
    node.register_evidence_sink(Arc::new(MemorySink::new("bench")));
    let launcher = std::path::PathBuf::from(env!("CARGO_BIN_EXE_ep-sandbox-exec"));
    let sandbox = Sandbox::new(SandboxPolicy::default(), launcher);
    node.register_lane(Arc::new(
        ProcessLane::new(policy()).sandboxed(Arc::new(sandbox)),
    ));
    node
}

fn direct(payload: Value) -> AdmissionRequest {
    let mut request = AdmissionRequest::new("process");
    let Value::Object(payload) = payload else {
        unreachable!("payloads are objects")
    };
    request.payload = payload;
    request.provenance = Provenance::direct_lower_lane_owner("bench", Map::new());
    request
}

fn one_shot(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let node = node();
    let request = direct(json!({"command": "/bin/true"}));
    assert_eq!(
        rt.block_on(node.execute(request.clone())).status,
        ResultStatus::Succeeded
    );
    let mut group = c.benchmark_group("one_shot");
    group.sample_size(50);
    group.bench_function("baseline: std::process::Command /bin/true", |b| {
        b.iter(|| Command::new("/bin/true").output().unwrap())
    });
    group.bench_function("process lane through the node", |b| {
        b.iter(|| rt.block_on(node.execute(request.clone())))
    });
    let sandboxed = sandboxed_node();
    let ran = rt.block_on(sandboxed.execute(request.clone()));
    assert_eq!(ran.status, ResultStatus::Succeeded, "{ran:?}");
    assert_eq!(ran.evidence_sandbox(), "local-process-sandboxed");
    group.bench_function("sandboxed process lane through the node", |b| {
        b.iter(|| rt.block_on(sandboxed.execute(request.clone())))
    });
    group.finish();
}

fn stream_100mb(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let node = node();
    let request = direct(json!({"command": "sh", "argv": ["-c", LINES_SCRIPT]}));
    let mut group = c.benchmark_group("stream_100mb");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Bytes(STREAM_BYTES));
    group.bench_function("baseline: native pipe read into lines", |b| {
        b.iter(|| {
            let mut child = Command::new("sh")
                .args(["-c", LINES_SCRIPT])
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            let mut out = Vec::new();
            child.stdout.take().unwrap().read_to_end(&mut out).unwrap();
            child.wait().unwrap();
            out.split(|b| *b == b'\n').filter(|l| !l.is_empty()).count()
        })
    });
    group.bench_function("process lane stream through the node", |b| {
        b.iter(|| {
            rt.block_on(async {
                let events = node.stream(request.clone()).await.unwrap();
                events.count().await
            })
        })
    });
    let batched = direct(json!({"command": "sh", "argv": ["-c", LINES_SCRIPT],
                                "stdout_mode": "line_batch"}));
    group.bench_function("process lane stream, line_batch", |b| {
        b.iter(|| {
            rt.block_on(async {
                let events = node.stream(batched.clone()).await.unwrap();
                events.count().await
            })
        })
    });
    group.finish();
}

/// The sandbox a result's run evidence names.
trait RunSandbox {
    fn evidence_sandbox(&self) -> String;
}

impl RunSandbox for ep_contracts::boundary::ExecutionResult {
    fn evidence_sandbox(&self) -> String {
        self.evidence
            .iter()
            .find(|record| record["kind"] == "process.run")
            .and_then(|record| record["sandbox"].as_str())
            .unwrap_or_default()
            .to_owned()
    }
}

criterion_group!(benches, one_shot, stream_100mb);
criterion_main!(benches);
