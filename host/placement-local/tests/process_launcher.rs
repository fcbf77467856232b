//! The process lane's launcher ([`ep_placement_local::LocalLauncher`], the lane API's
//! `ProcessLauncher` for wasm lanes) with real processes: stdio piped with stdin kept open, the
//! process lane's policy denials word for word, its process slots shared, the whole group killed
//! by `kill`, by dropping the control, and when the child exits, and the lane's sandbox applied
//! when the lane is sandboxed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ep_contracts::boundary::ExecutionRequest;
use ep_lane_api::{
    CancelSignal, ExecutionContext, ExitStatus, LaneAdapter, LaunchError, LaunchRequest,
    ProcessLauncher,
};
use ep_placement_local::sandbox::{Sandbox, SandboxPolicy};
use ep_placement_local::{ProcessLane, ProcessPolicy};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Hang guard only: generous, never a performance assertion.
const HANG_GUARD: Duration = Duration::from_secs(30);

async fn guarded<F: std::future::Future>(future: F) -> F::Output {
    tokio::time::timeout(HANG_GUARD, future)
        .await
        .expect("the test hung")
}

fn policy(dir: &Path) -> ProcessPolicy {
    ProcessPolicy {
        commands: ["sh", "cat", "sleep"].map(str::to_owned).to_vec(),
        cwd: vec![dir.to_owned()],
        env: vec!["GREETING".to_owned()],
        ..ProcessPolicy::default()
    }
}

fn sh(script: &str) -> LaunchRequest {
    LaunchRequest::new("sh").arg("-c").arg(script)
}

/// Whether a process other than a zombie is still in process group `pgid`.
fn group_alive(pgid: u32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|entry| {
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // `pid (comm) state ppid pgrp ...`; comm may hold spaces, so split after the last `)`.
        let Some((_, rest)) = stat.rsplit_once(") ") else {
            return false;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        fields.len() > 2 && fields[0] != "Z" && fields[2] == pgid.to_string()
    })
}

/// Waits (under the hang guard) until nothing of group `pgid` runs.
async fn gone(pgid: u32) {
    guarded(async {
        while group_alive(pgid) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn a_child_speaks_over_its_pipes_and_exits_at_the_end_of_its_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let launcher = ProcessLane::new(policy(dir.path())).launcher();
    assert_eq!(launcher.sandbox(), "none");
    let mut child = guarded(launcher.launch(LaunchRequest::new("cat")))
        .await
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    stdin.write_all(b"{\"jsonrpc\":\"2.0\"}\n").await.unwrap();
    stdin.flush().await.unwrap();
    let mut line = vec![0u8; 18];
    guarded(stdout.read_exact(&mut line)).await.unwrap();
    assert_eq!(line, b"{\"jsonrpc\":\"2.0\"}\n");
    // Kept open until dropped: the child is still there.
    assert_eq!(child.control.try_exit(), None);
    drop(stdin);
    assert_eq!(guarded(child.control.exited()).await, ExitStatus::Code(0));
    assert_eq!(child.control.try_exit(), Some(ExitStatus::Code(0)));
    let mut rest = Vec::new();
    stdout.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty());
}

#[tokio::test]
async fn variables_and_the_directory_come_from_the_policy() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let launcher = ProcessLane::new(policy(dir.path())).launcher();
    let request = sh("echo \"$GREETING\"; pwd; echo oops >&2; exit 3")
        .env("GREETING", "hello")
        .cwd("sub");
    let mut child = guarded(launcher.launch(request)).await.unwrap();
    let mut out = String::new();
    let mut err = String::new();
    guarded(child.stdout.take().unwrap().read_to_string(&mut out))
        .await
        .unwrap();
    guarded(child.stderr.take().unwrap().read_to_string(&mut err))
        .await
        .unwrap();
    let sub = std::fs::canonicalize(dir.path().join("sub")).unwrap();
    assert_eq!(out, format!("hello\n{}\n", sub.display()));
    assert_eq!(err, "oops\n");
    assert_eq!(guarded(child.control.exited()).await, ExitStatus::Code(3));
}

#[tokio::test]
async fn refusals_are_the_process_lanes_word_for_word() {
    let dir = tempfile::tempdir().unwrap();
    let lane = ProcessLane::new(policy(dir.path()));
    let launcher = lane.launcher();
    let cases = [
        (
            LaunchRequest::new("touch"),
            json!({"command": "touch"}),
            "process.command",
        ),
        (
            sh("true").cwd("/"),
            json!({"command": "sh", "cwd": "/"}),
            "process.cwd",
        ),
        (
            sh("true").env("LD_PRELOAD", "/tmp/evil.so"),
            json!({"command": "sh", "env": {"LD_PRELOAD": "/tmp/evil.so"}}),
            "process.env",
        ),
    ];
    for (asked, payload, capability) in cases {
        let Err(LaunchError::Denied {
            capability: denied,
            reason,
        }) = guarded(launcher.launch(asked.clone())).await
        else {
            panic!("{asked:?} was not denied")
        };
        assert_eq!(denied, capability, "{asked:?}");
        let Value::Object(payload) = payload else {
            unreachable!()
        };
        let request = ExecutionRequest {
            payload,
            ..ExecutionRequest::default()
        };
        let ctx = ExecutionContext::new(CancelSignal::default(), None);
        let result = guarded(lane.execute(request, ctx)).await;
        assert_eq!(
            result.error.as_ref().unwrap()["reason"],
            reason,
            "{asked:?}"
        );
    }
    assert!(
        matches!(
            guarded(launcher.launch(LaunchRequest::new("/nonexistent/tool"))).await,
            Err(LaunchError::Denied { .. })
        ),
        "an absolute path is checked against the policy first"
    );
}

#[tokio::test]
async fn a_missing_directory_fails_to_launch() {
    let dir = tempfile::tempdir().unwrap();
    let launcher = ProcessLane::new(policy(dir.path())).launcher();
    let failed = guarded(launcher.launch(sh("true").cwd("missing"))).await;
    let Err(LaunchError::LaunchFailed { reason }) = failed else {
        panic!("{failed:?}")
    };
    assert!(reason.contains("cwd not found"), "{reason}");
}

#[tokio::test]
async fn the_lane_and_its_launcher_share_max_processes() {
    let dir = tempfile::tempdir().unwrap();
    let lane = ProcessLane::new(ProcessPolicy {
        max_processes: 1,
        ..policy(dir.path())
    });
    let launcher = lane.launcher();
    let first = guarded(launcher.launch(LaunchRequest::new("cat")))
        .await
        .unwrap();
    let second = guarded(launcher.launch(LaunchRequest::new("cat"))).await;
    let Err(LaunchError::Unavailable { reason }) = second else {
        panic!("{second:?}")
    };
    assert!(reason.contains("[process] max_processes"), "{reason}");
    // The process lane counts the same slot.
    let Value::Object(payload) = json!({"command": "sh", "argv": ["-c", "true"]}) else {
        unreachable!()
    };
    let request = ExecutionRequest {
        payload,
        ..ExecutionRequest::default()
    };
    let ctx = ExecutionContext::new(CancelSignal::default(), None);
    let result = guarded(lane.execute(request, ctx)).await;
    assert_eq!(
        result.error.as_ref().unwrap()["failure_class"],
        "placement_unavailable"
    );
    // The slot comes back once the child has exited.
    first.control.kill();
    guarded(first.control.exited()).await;
    drop(first);
    let third = guarded(async {
        loop {
            match launcher.launch(LaunchRequest::new("cat")).await {
                Err(LaunchError::Unavailable { .. }) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                other => return other,
            }
        }
    })
    .await;
    assert!(third.is_ok(), "{third:?}");
}

#[tokio::test]
async fn kill_and_drop_end_the_whole_group_and_an_exit_ends_what_it_left() {
    let dir = tempfile::tempdir().unwrap();
    let launcher = ProcessLane::new(policy(dir.path())).launcher();
    // `kill`: SIGKILL to the group, the leader and its background sleep alike.
    let child = guarded(launcher.launch(sh("sleep 600 & sleep 600")))
        .await
        .unwrap();
    let pgid = child.control.id().unwrap();
    assert!(group_alive(pgid));
    child.control.kill();
    assert_eq!(guarded(child.control.exited()).await, ExitStatus::Signal(9));
    gone(pgid).await;

    // Dropping the child's control (its pipes with it) does the same.
    let child = guarded(launcher.launch(sh("sleep 600 & sleep 600")))
        .await
        .unwrap();
    let pgid = child.control.id().unwrap();
    drop(child);
    gone(pgid).await;

    // A leader that exits takes what it left running in its group with it.
    let mut child = guarded(launcher.launch(sh("sleep 600 & echo $!")))
        .await
        .unwrap();
    let pgid = child.control.id().unwrap();
    let mut out = String::new();
    guarded(child.stdout.take().unwrap().read_to_string(&mut out))
        .await
        .unwrap();
    assert_eq!(guarded(child.control.exited()).await, ExitStatus::Code(0));
    gone(pgid).await;
}

fn sandbox_launcher() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ep-sandbox-exec"))
}

#[tokio::test]
async fn the_launcher_of_a_sandboxed_lane_is_sandboxed_too() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    let work = root.join("work");
    std::fs::create_dir(&work).unwrap();
    std::fs::write(root.join("secret.txt"), "the secret\n").unwrap();
    // Any uid may traverse, work in `work` and read the secret: only Landlock stops it (a root
    // host runs sandboxed children as a uid of their own).
    for (path, mode) in [
        (&root, 0o755),
        (&work, 0o777),
        (&root.join("secret.txt"), 0o644),
    ] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let sandbox = Sandbox::new(SandboxPolicy::default(), sandbox_launcher());
    // Only where the kernel enforces it (this class is attested only from a probe that held).
    sandbox
        .probe()
        .await
        .expect("the sandbox holds on this host");
    let weak = ProcessLane::new(policy(&work));
    let sandboxed = weak.sandboxed(Arc::new(sandbox));
    let secret = root.join("secret.txt").display().to_string();
    let read_secret = || LaunchRequest::new("cat").arg(secret.clone());

    let launcher = weak.launcher();
    let mut child = guarded(launcher.launch(read_secret())).await.unwrap();
    let mut out = String::new();
    guarded(child.stdout.take().unwrap().read_to_string(&mut out))
        .await
        .unwrap();
    assert_eq!(out, "the secret\n");

    let launcher = sandboxed.launcher();
    assert_eq!(launcher.sandbox(), "local-process-sandboxed");
    let mut child = guarded(launcher.launch(read_secret())).await.unwrap();
    let (mut out, mut err) = (String::new(), String::new());
    guarded(child.stdout.take().unwrap().read_to_string(&mut out))
        .await
        .unwrap();
    guarded(child.stderr.take().unwrap().read_to_string(&mut err))
        .await
        .unwrap();
    assert_eq!(out, "");
    assert!(err.contains("Permission denied"), "{err}");
    assert_ne!(guarded(child.control.exited()).await, ExitStatus::Code(0));
}
