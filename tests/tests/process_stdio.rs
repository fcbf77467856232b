//! A wasm lane speaking to a local process over its stdio, end to end: the `stdio-client` test
//! guest (ABI 0.2.0 `process`) loaded from its manifest under an operator policy, its children
//! started by the process lane's own launcher (`ep_placement_local::LocalLauncher`) with real
//! processes: `cat`, `sh`, the JSON-RPC stdio peer of `ep-test-servers`. What it may start is
//! the manifest's commands ∩ the operator's `[lanes.<id>] process`, then the `[process]` policy
//! again at spawn; a refusal names the key; a guest that spins or waits with its child running
//! ends at its deadline and leaves no process behind; a sandboxed lane's launcher confines the
//! child.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use ep_contracts::boundary::{ExecutionRef, ExecutionRequest, ExecutionResult, ResultStatus};
use ep_lane_api::{
    CancelSignal, Deadline, ExecutionContext, LaneAdapter, LaunchError, LaunchRequest,
    LaunchedChild, ProcessLauncher,
};
use ep_lanes_wasm::testing::build_guest;
use ep_lanes_wasm::{HostPolicy, RuntimeConfig, WasmLane, WasmRuntime, load_plugin};
use ep_placement_local::sandbox::{Sandbox, SandboxPolicy};
use ep_placement_local::{LocalLauncher, ProcessLane, ProcessPolicy};
use serde_json::{Value, json};

/// Hang guard only: generous, never a performance assertion.
const HANG_GUARD: Duration = Duration::from_secs(60);

async fn guarded<F: std::future::Future>(future: F) -> F::Output {
    tokio::time::timeout(HANG_GUARD, future)
        .await
        .expect("the hang guard fired: the test hung")
}

use ep_tests::binaries::helper;

/// A launcher that remembers the process group of every child it started.
#[derive(Debug)]
struct Recording {
    inner: LocalLauncher,
    groups: Mutex<Vec<u32>>,
}

#[async_trait]
impl ProcessLauncher for Recording {
    async fn launch(&self, request: LaunchRequest) -> Result<LaunchedChild, LaunchError> {
        let child = self.inner.launch(request).await?;
        if let Some(pgid) = child.control.id() {
            self.groups.lock().unwrap().push(pgid);
        }
        Ok(child)
    }

    fn sandbox(&self) -> &str {
        self.inner.sandbox()
    }
}

/// Whether a process other than a zombie is still in process group `pgid`.
fn group_alive(pgid: u32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|entry| {
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let Some((_, rest)) = stat.rsplit_once(") ") else {
            return false;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        fields.len() > 2 && fields[0] != "Z" && fields[2] == pgid.to_string()
    })
}

/// One host: a working directory, the `[process]` policy, the process lane's launcher and the
/// `stdio-client` lane loaded from its manifest under the operator's policy.
struct Host {
    _dir: tempfile::TempDir,
    work: PathBuf,
    launcher: Arc<Recording>,
    lane: WasmLane,
}

/// The manifest asks for `cat`, `sh`, `env`, `true` and the peer; the operator allows the lane
/// `cat`, `sh`, `ls`, `true` and the peer; `[process]` runs `cat`, `sh` and the peer.
async fn host(sandboxed: bool) -> Host {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    // Any uid may traverse and work in `work` (a root host runs sandboxed children as a uid of
    // their own): only the sandbox's Landlock rules stop what the tests try.
    for (path, mode) in [(dir.path(), 0o755), (work.as_path(), 0o777)] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let peer = helper("ep-jsonrpc-peer").display().to_string();
    let wasm = dir.path().join("stdio-client.wasm");
    std::fs::copy(build_guest("stdio-client").unwrap(), &wasm).unwrap();
    std::fs::write(
        dir.path().join("stdio-client.toml"),
        format!(
            "lane_id = \"stdio-client\"\nversion = \"0.1.0\"\n\
             wit_version = \"execution-plane:lane@0.2.0\"\n\
             [grants]\nprocess = [\"cat\", \"sh\", \"env\", \"true\", {peer:?}]\n"
        ),
    )
    .unwrap();
    let operator = HostPolicy::parse(
        &format!("[lanes.stdio-client]\nprocess = [\"cat\", \"sh\", \"ls\", \"true\", {peer:?}]\n"),
        "policy.toml",
    )
    .unwrap();
    let policy = ProcessPolicy {
        commands: vec!["cat".to_owned(), "sh".to_owned(), peer],
        cwd: vec![work.clone()],
        env: vec!["GREETING".to_owned()],
        ..ProcessPolicy::default()
    };
    let mut lane = ProcessLane::new(policy);
    if sandboxed {
        let sandbox = Sandbox::new(SandboxPolicy::default(), helper("ep-sandbox-exec"));
        sandbox
            .probe()
            .await
            .expect("the sandbox holds on this host");
        lane = lane.sandboxed(Arc::new(sandbox));
    }
    let launcher = Arc::new(Recording {
        inner: lane.launcher(),
        groups: Mutex::default(),
    });
    let runtime = WasmRuntime::new(RuntimeConfig {
        max_instances: 8,
        process_launcher: Some(Arc::clone(&launcher) as Arc<dyn ProcessLauncher>),
        ..RuntimeConfig::default()
    })
    .unwrap();
    let lane = load_plugin(&runtime, &wasm, &operator).await.unwrap();
    Host {
        _dir: dir,
        work,
        launcher,
        lane,
    }
}

fn request(operation: &str, payload: Value) -> ExecutionRequest {
    let Value::Object(payload) = payload else {
        panic!("payloads are objects")
    };
    ExecutionRequest {
        execution_ref: ExecutionRef::mint(),
        operation: Some(operation.to_owned()),
        payload,
        ..ExecutionRequest::default()
    }
}

/// Runs `operation` within `ms`, returning the result and the denials the lane reported.
async fn run(
    host: &Host,
    operation: &str,
    payload: Value,
    ms: u64,
) -> (ExecutionResult, Vec<ep_lane_api::CapabilityDenial>) {
    let ctx = ExecutionContext::new(
        CancelSignal::default(),
        Some(Deadline::after(Duration::from_millis(ms))),
    );
    let evidence = ctx.evidence.clone();
    let result = guarded(host.lane.execute(request(operation, payload), ctx)).await;
    (result, evidence.take_denials())
}

fn reason(result: &ExecutionResult) -> String {
    let error = result.error.as_ref().expect("a failed result");
    assert_eq!(error["failure_class"], "policy_denied", "{error}");
    error["reason"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_lane_gets_the_manifests_commands_the_operator_allows() {
    let host = host(false).await;
    assert_eq!(
        host.lane.grants().process,
        [
            "cat",
            "sh",
            "true",
            helper("ep-jsonrpc-peer").to_str().unwrap()
        ]
    );
}

#[tokio::test]
async fn a_granted_command_runs_and_its_output_comes_back() {
    let host = host(false).await;
    let (result, denials) = run(
        &host,
        "run",
        json!({"command": "cat", "stdin": "line one\nline two\n"}),
        30_000,
    )
    .await;
    assert_eq!(result.status, ResultStatus::Succeeded, "{result:?}");
    assert_eq!(result.output["stdout"], "line one\nline two\n");
    assert_eq!(result.output["exit"], json!({"code": 0, "signal": null}));
    assert!(denials.is_empty());
    let process = &result.evidence[0]["process"];
    assert_eq!(process["spawned"], 1);
    assert_eq!(process["sandbox"], "none");
    assert_eq!(process["bytes_out"], 18);
    assert_eq!(process["bytes_in"], 18);
    assert_eq!(process["exits"], json!([{"code": 0, "signal": null}]));

    // Arguments, a granted variable and a directory below the granted one.
    std::fs::create_dir(host.work.join("sub")).unwrap();
    let script = "echo \"$GREETING\"; pwd; echo to-stderr >&2; exit 4";
    let (result, _) = run(
        &host,
        "run",
        json!({"command": "sh", "args": ["-c", script], "env": {"GREETING": "hi"}, "cwd": "sub"}),
        30_000,
    )
    .await;
    let sub = std::fs::canonicalize(host.work.join("sub")).unwrap();
    assert_eq!(result.output["stdout"], format!("hi\n{}\n", sub.display()));
    assert_eq!(result.output["stderr"], "to-stderr\n");
    assert_eq!(result.output["exit"], json!({"code": 4, "signal": null}));
    let text = result.evidence[0].to_string();
    assert!(
        !text.contains("GREETING") && !text.contains("hi\\n"),
        "{text}"
    );
}

#[tokio::test]
async fn a_json_rpc_stdio_server_answers_the_lane() {
    let host = host(false).await;
    let peer = helper("ep-jsonrpc-peer");
    let request = r#"{"jsonrpc":"2.0","id":1,"method":"echo","params":{"x":1}}"#;
    let (result, _) = run(
        &host,
        "exchange",
        json!({"command": peer, "stdin": format!("{request}\n")}),
        30_000,
    )
    .await;
    assert_eq!(result.status, ResultStatus::Succeeded, "{result:?}");
    let line: Value = serde_json::from_str(result.output["line"].as_str().unwrap()).unwrap();
    assert_eq!(line["id"], 1);
    assert_eq!(line["result"], json!({"echo": {"x": 1}}));
    // Killed by the lane, then dropped before its streams.
    assert_eq!(result.output["exit"], json!({"code": null, "signal": 9}));
    assert_eq!(result.output["after_drop"], "closed");
}

#[tokio::test]
async fn a_command_outside_the_manifest_or_the_operator_policy_is_denied_naming_the_key() {
    let host = host(false).await;
    for command in ["env", "ls"] {
        let (result, denials) = run(&host, "run", json!({"command": command}), 30_000).await;
        let reason = reason(&result);
        assert!(
            reason.contains(&format!("{command:?}"))
                && reason.contains("[grants] process")
                && reason.contains("[lanes.stdio-client] process"),
            "{reason}"
        );
        assert_eq!(denials.len(), 1, "{denials:?}");
        assert_eq!(denials[0].capability, "process.command");
        assert_eq!(denials[0].detail["source"], "lane_grant");
        let process = &result.evidence[0]["process"];
        assert_eq!(
            (process["spawned"].clone(), process["denied"].clone()),
            (json!(0), json!(1))
        );
    }
    assert!(
        host.launcher.groups.lock().unwrap().is_empty(),
        "nothing started"
    );
}

#[tokio::test]
async fn what_the_process_policy_refuses_is_denied_naming_its_key() {
    let host = host(false).await;
    let cases = [
        (
            json!({"command": "true"}),
            "process.command",
            "[process] commands",
        ),
        (
            json!({"command": "cat", "cwd": "/etc"}),
            "process.cwd",
            "[process] cwd",
        ),
        (
            json!({"command": "cat", "env": {"LD_PRELOAD": "/tmp/evil.so"}}),
            "process.env",
            "[process] env",
        ),
    ];
    for (payload, capability, key) in cases {
        let (result, denials) = run(&host, "run", payload.clone(), 30_000).await;
        let reason = reason(&result);
        assert!(reason.contains(key), "{payload}: {reason}");
        assert_eq!(denials.len(), 1, "{payload}: {denials:?}");
        assert_eq!(denials[0].capability, capability);
        assert_eq!(denials[0].detail["source"], "process_policy");
        assert!(denials[0].detail.contains_key("command_sha256"));
        // Never the variable's value.
        assert!(!format!("{denials:?}").contains("evil.so"), "{denials:?}");
        assert_eq!(result.evidence[0]["process"]["denied"], 1);
    }
    assert!(
        host.launcher.groups.lock().unwrap().is_empty(),
        "nothing started"
    );
}

/// Runs `operation` until its deadline and checks that the child's whole group is gone after.
async fn ends_at_the_deadline_leaving_nothing(operation: &str) {
    let host = host(false).await;
    let script = "sleep 600 & while :; do echo busy; done";
    let (result, _) = run(
        &host,
        operation,
        json!({"command": "sh", "args": ["-c", script]}),
        1_000,
    )
    .await;
    let error = result.error.as_ref().expect("the deadline ends it");
    assert_eq!(error["failure_class"], "timeout", "{error}");
    assert_eq!(error["details"]["cause"], "deadline", "{error}");
    let groups = host.launcher.groups.lock().unwrap().clone();
    assert_eq!(groups.len(), 1);
    guarded(async {
        while group_alive(groups[0]) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn a_guest_spinning_with_its_child_running_ends_at_its_deadline_and_leaves_no_process() {
    ends_at_the_deadline_leaving_nothing("spin").await;
}

#[tokio::test]
async fn a_guest_waiting_on_a_child_it_never_reads_ends_at_its_deadline_and_leaves_no_process() {
    ends_at_the_deadline_leaving_nothing("wait-forever").await;
}

#[tokio::test]
async fn a_child_left_running_ends_with_its_execution() {
    let host = host(false).await;
    let (result, _) = run(
        &host,
        "spawn-only",
        json!({"command": "sh", "args": ["-c", "sleep 600 & sleep 600"]}),
        30_000,
    )
    .await;
    assert_eq!(result.status, ResultStatus::Succeeded, "{result:?}");
    assert_eq!(result.evidence[0]["process"]["exits"], json!([null]));
    let groups = host.launcher.groups.lock().unwrap().clone();
    guarded(async {
        while group_alive(groups[0]) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn a_sandboxed_lanes_launcher_confines_the_child() {
    let weak = host(false).await;
    let host = host(true).await;
    let secret = host.work.parent().unwrap().join("secret.txt");
    std::fs::write(&secret, "the secret\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    // The unsandboxed twin reads it: only the sandbox stops the lane's child.
    let (result, _) = run(
        &weak,
        "run",
        json!({"command": "cat", "args": [secret.display().to_string()]}),
        30_000,
    )
    .await;
    assert_eq!(result.output["stdout"], "the secret\n", "{result:?}");
    let (result, _) = run(
        &host,
        "run",
        json!({"command": "cat", "args": [secret.display().to_string()]}),
        30_000,
    )
    .await;
    assert_eq!(result.status, ResultStatus::Succeeded, "{result:?}");
    assert_eq!(result.output["stdout"], "");
    assert!(
        result.output["stderr"]
            .as_str()
            .unwrap()
            .contains("Permission denied"),
        "{result:?}"
    );
    assert_eq!(result.output["exit"]["code"], 1);
    assert_eq!(
        result.evidence[0]["process"]["sandbox"],
        "local-process-sandboxed"
    );
    // Its own working directory is writable, as for the process lane.
    let (result, _) = run(
        &host,
        "run",
        json!({"command": "sh", "args": ["-c", "echo kept > note && cat note"]}),
        30_000,
    )
    .await;
    assert_eq!(result.output["stdout"], "kept\n", "{result:?}");
}
