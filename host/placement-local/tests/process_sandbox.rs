//! The sandboxed process class against the running kernel: the probe sees every part of the
//! sandbox enforced (and a launcher that cannot apply it is not offered), and real processes in
//! it cannot read outside their grant, write outside their working directory, connect to a
//! loopback port or send UDP unless the port is granted, or fork past their limit, while the
//! same commands on the weak lane can; on a terminal and in a stream as in a one-shot run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ep_contracts::boundary::{ExecutionRequest, ExecutionResult, ResultStatus};
use ep_lane_api::{CancelSignal, ExecutionContext, LaneAdapter};
use ep_placement_local::sandbox::{Sandbox, SandboxError, SandboxPolicy};
use ep_placement_local::{ProcessLane, ProcessPolicy};
use serde_json::{Value, json};

/// Hang guard only: generous, never a performance assertion.
const HANG_GUARD: Duration = Duration::from_secs(30);

fn launcher() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ep-sandbox-exec"))
}

/// A directory tree the sandbox's uid can use: `root` (0755) holding `work` (0777, the
/// working directory) and `secret.txt` (0644: any uid may read it; only Landlock stops it).
struct Tree {
    _dir: tempfile::TempDir,
    root: PathBuf,
    work: PathBuf,
}

fn tree() -> Tree {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    let work = root.join("work");
    std::fs::create_dir(&work).unwrap();
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&work, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::write(root.join("secret.txt"), "the secret\n").unwrap();
    std::fs::set_permissions(
        root.join("secret.txt"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    Tree {
        _dir: dir,
        root,
        work,
    }
}

fn policy(work: &Path, sandbox: SandboxPolicy) -> ProcessPolicy {
    ProcessPolicy {
        commands: ["sh", "bash", "cat", "id"].map(str::to_owned).to_vec(),
        cwd: vec![work.to_owned()],
        users: vec!["nobody".to_owned()],
        sandbox,
        ..ProcessPolicy::default()
    }
}

/// The weak lane and its sandboxed twin, under one policy.
fn lanes(work: &Path, sandbox: SandboxPolicy) -> (ProcessLane, ProcessLane) {
    let weak = ProcessLane::new(policy(work, sandbox.clone()));
    let sandboxed = weak.sandboxed(Arc::new(Sandbox::new(sandbox, launcher())));
    (weak, sandboxed)
}

async fn run(lane: &ProcessLane, payload: Value) -> ExecutionResult {
    let Value::Object(payload) = payload else {
        panic!("payloads are objects")
    };
    let request = ExecutionRequest {
        payload,
        ..ExecutionRequest::default()
    };
    lane.validate(&request).await.unwrap();
    let ctx = ExecutionContext::new(CancelSignal::default(), None);
    tokio::time::timeout(HANG_GUARD, lane.execute(request, ctx))
        .await
        .expect("the test hung")
}

fn sh(script: &str) -> Value {
    json!({"command": "sh", "argv": ["-c", script]})
}

fn stdout(result: &ExecutionResult) -> &str {
    result.output["stdout"].as_str().unwrap_or_default()
}

fn stderr(result: &ExecutionResult) -> &str {
    result.output["stderr"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn the_probe_sees_the_kernel_enforce_every_part() {
    let sandbox = Sandbox::new(SandboxPolicy::default(), launcher());
    let enforcement = sandbox.probe().await.unwrap();
    assert!(enforcement.landlock_abi >= 6, "{enforcement:?}");
    assert!(enforcement.no_new_privs && enforcement.seccomp);
    assert!(enforcement.failed_checks().is_empty(), "{enforcement:?}");
    for check in [
        "read_outside_grant",
        "proc",
        "tcp_connect",
        "udp",
        "new_namespace",
    ] {
        assert_eq!(enforcement.stopped.get(check), Some(&true), "{check}");
    }
    assert_eq!(
        enforcement.user.is_some(),
        rustix::process::getuid().is_root(),
        "a root host runs sandboxed processes as a uid of their own"
    );
}

#[tokio::test]
async fn a_sandbox_that_cannot_be_applied_is_not_offered() {
    // A launcher that applies nothing: the probe sees no report and refuses.
    let fake = Sandbox::new(SandboxPolicy::default(), PathBuf::from("/bin/true"));
    assert!(
        matches!(fake.probe().await, Err(SandboxError::NotApplied(_))),
        "a launcher that reports nothing is not a sandbox"
    );
    let missing = Sandbox::new(
        SandboxPolicy::default(),
        PathBuf::from("/nonexistent/launcher"),
    );
    assert!(matches!(
        missing.probe().await,
        Err(SandboxError::Launcher { .. })
    ));
    let off = Sandbox::new(
        SandboxPolicy {
            enabled: false,
            ..SandboxPolicy::default()
        },
        launcher(),
    );
    assert!(matches!(off.probe().await, Err(SandboxError::Disabled)));
}

#[tokio::test]
async fn a_sandboxed_process_reads_and_writes_only_what_it_is_granted() {
    let tree = tree();
    let (weak, sandboxed) = lanes(&tree.work, SandboxPolicy::default());
    let secret = tree.root.join("secret.txt");
    let read_secret = json!({"command": "cat", "argv": [secret.to_str().unwrap()]});

    let control = run(&weak, read_secret.clone()).await;
    assert_eq!(stdout(&control), "the secret\n", "{control:?}");

    let confined = run(&sandboxed, read_secret).await;
    assert_eq!(confined.status, ResultStatus::Failed, "{confined:?}");
    assert_eq!(stdout(&confined), "");
    assert!(
        stderr(&confined).contains("Permission denied"),
        "{confined:?}"
    );
    assert_eq!(confined.evidence[0]["sandbox"], "local-process-sandboxed");

    // Its working directory is its own; outside it (even in /tmp) nothing is written.
    let outside = std::env::temp_dir().join(format!("ep-sandbox-{}", std::process::id()));
    let script = format!(
        "echo kept > note && cat note; echo lost > {} || echo refused",
        outside.display()
    );
    let wrote = run(&sandboxed, sh(&script)).await;
    assert_eq!(stdout(&wrote), "kept\nrefused\n", "{wrote:?}");
    assert!(!outside.exists(), "the sandbox wrote outside its grant");
    assert_eq!(
        std::fs::read_to_string(tree.work.join("note")).unwrap(),
        "kept\n"
    );

    // The system's programs run; the host's /proc is out of reach.
    let proc = run(
        &sandboxed,
        sh("cat /proc/1/environ >/dev/null 2>&1 || echo no-proc"),
    )
    .await;
    assert_eq!(stdout(&proc), "no-proc\n", "{proc:?}");
}

#[tokio::test]
async fn a_root_host_runs_each_sandboxed_execution_as_a_uid_of_its_own() {
    if !rustix::process::getuid().is_root() {
        // Without root there is no uid to switch to: the process keeps the host's (the class
        // says so in its enforcement report, asserted by the probe test).
        let sandbox = Sandbox::new(SandboxPolicy::default(), launcher());
        assert!(!sandbox.switches_user());
        return;
    }
    let tree = tree();
    let (_, sandboxed) = lanes(&tree.work, SandboxPolicy::default());
    let ids = run(&sandboxed, json!({"command": "id", "argv": ["-u"]})).await;
    let uid: u32 = stdout(&ids).trim().parse().unwrap();
    assert!(uid >= SandboxPolicy::default().uid_base, "{ids:?}");
    let asked = run(&sandboxed, json!({"command": "id", "user": "nobody"})).await;
    assert_eq!(asked.status, ResultStatus::Failed);
    assert_eq!(
        asked.error.as_ref().unwrap()["failure_class"],
        "launch_failed",
        "{asked:?}"
    );
}

#[tokio::test]
async fn a_sandboxed_process_cannot_reach_a_loopback_port_unless_granted() {
    let tree = tree();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_nonblocking(true).unwrap();
    let udp_port = udp.local_addr().unwrap().port();
    let connect = json!({"command": "bash", "argv": ["-c", format!(
        "exec 3<>/dev/tcp/127.0.0.1/{port} && echo connected"
    )]});
    let datagram = json!({"command": "bash", "argv": ["-c", format!(
        "echo hello > /dev/udp/127.0.0.1/{udp_port} && echo sent"
    )]});

    let (weak, sandboxed) = lanes(&tree.work, SandboxPolicy::default());
    let control = run(&weak, connect.clone()).await;
    assert_eq!(stdout(&control), "connected\n", "{control:?}");
    assert!(listener.accept().is_ok(), "the weak lane connected");

    let refused = run(&sandboxed, connect.clone()).await;
    assert_eq!(refused.status, ResultStatus::Failed, "{refused:?}");
    assert_eq!(stdout(&refused), "");
    let sent = run(&sandboxed, datagram.clone()).await;
    assert_eq!(stdout(&sent), "", "{sent:?}");
    std::thread::sleep(Duration::from_millis(50));
    assert!(
        listener.accept().is_err(),
        "a sandboxed process reached the listener"
    );
    let mut buffer = [0u8; 16];
    assert!(
        udp.recv(&mut buffer).is_err(),
        "a datagram left the sandbox"
    );

    // With the port granted it connects, and UDP stays closed.
    let granted = SandboxPolicy {
        connect_tcp: vec![port],
        ..SandboxPolicy::default()
    };
    let (_, open) = lanes(&tree.work, granted);
    let connected = run(&open, connect).await;
    assert_eq!(stdout(&connected), "connected\n", "{connected:?}");
    assert!(listener.accept().is_ok(), "the granted port was reached");
    let sent = run(&open, datagram).await;
    assert_eq!(stdout(&sent), "", "{sent:?}");
}

#[tokio::test]
async fn a_sandboxed_process_cannot_fork_past_its_limit() {
    let tree = tree();
    let limited = SandboxPolicy {
        limits: ep_placement_local::sandbox::Limits {
            processes: 6,
            ..ep_placement_local::sandbox::Limits::default()
        },
        ..SandboxPolicy::default()
    };
    let (weak, sandboxed) = lanes(&tree.work, limited);
    let script = "i=0; while [ $i -lt 20 ]; do sleep 2 & i=$((i+1)); echo started; done";
    let control = run(&weak, sh(script)).await;
    assert_eq!(stdout(&control).lines().count(), 20, "{control:?}");

    let bomb = run(&sandboxed, sh(script)).await;
    let started = stdout(&bomb).lines().count();
    assert!(
        started < 6,
        "{started} processes started under a limit of 6: {bomb:?}"
    );
    assert!(stderr(&bomb).contains("fork"), "{bomb:?}");
    assert_eq!(bomb.status, ResultStatus::Failed);
}

#[tokio::test]
async fn a_sandboxed_process_runs_on_a_terminal_too() {
    let tree = tree();
    let (_, sandboxed) = lanes(&tree.work, SandboxPolicy::default());
    let script =
        "[ -t 1 ] && echo on-a-terminal; cat /proc/1/environ >/dev/null 2>&1 || echo confined";
    let result = run(
        &sandboxed,
        json!({"command": "sh", "argv": ["-c", script], "pty": true}),
    )
    .await;
    assert_eq!(result.status, ResultStatus::Succeeded, "{result:?}");
    assert_eq!(
        stdout(&result).replace('\r', ""),
        "on-a-terminal\nconfined\n",
        "{result:?}"
    );
}

#[tokio::test]
async fn a_sandboxed_stream_confines_its_process_like_a_unary_run() {
    use futures::StreamExt as _;
    let tree = tree();
    let (_, sandboxed) = lanes(&tree.work, SandboxPolicy::default());
    let secret = tree.root.join("secret.txt");
    let script = format!("echo started; cat {} || echo refused", secret.display());
    let Value::Object(payload) = sh(&script) else {
        unreachable!()
    };
    let request = ExecutionRequest {
        payload,
        ..ExecutionRequest::default()
    };
    let ctx = ExecutionContext::new(CancelSignal::default(), None);
    let events = sandboxed.stream(request, ctx).await.unwrap();
    let events: Vec<_> = tokio::time::timeout(HANG_GUARD, events.collect())
        .await
        .expect("the stream hung");
    let lines: Vec<&str> = events
        .iter()
        .filter(|e| e.event_type.as_deref() == Some("process.stdout"))
        .filter_map(|e| e.payload["line"].as_str())
        .collect();
    assert_eq!(lines, ["started", "refused"], "{events:?}");
}
