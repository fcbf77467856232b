//! The `process` capability against a launcher made of pipes (no OS process: the real one, the
//! local process placement, is proven end to end in `tests/tests/process_stdio.rs`): linking is
//! the grant, a spawn is checked against the lane's grant before the launcher is asked, the
//! launcher's own refusals reach the guest and the evidence, the child's stdio are `wasi:io`
//! streams that may outlive it, and the end of the execution ends the child.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use ep_contracts::boundary::{ExecutionResult, ResultStatus};
use ep_lane_api::{
    ChildControl, ExitStatus, LaunchError, LaunchRequest, LaunchedChild, ProcessLauncher,
};
use ep_lanes_wasm::{Grants, LaneLimits, LoadError, RuntimeConfig, WasmLane, WasmRuntime};
use ep_node::LaneAdapter;
use serde_json::{Value, json};
use support::*;
use tokio::sync::watch;

/// A launcher whose every child is `cat` made of pipes: what it reads on stdin comes back on
/// stdout; it exits 0 at the end of its stdin, or by SIGKILL (9) when killed. A request with a
/// `cwd` is refused the way the process policy refuses a directory.
#[derive(Debug, Default)]
struct PipeCat {
    asked: Mutex<Vec<LaunchRequest>>,
    kills: Arc<AtomicUsize>,
}

#[derive(Debug)]
struct PipeChild {
    exit: watch::Sender<Option<ExitStatus>>,
    kills: Arc<AtomicUsize>,
}

#[async_trait]
impl ChildControl for PipeChild {
    fn id(&self) -> Option<u32> {
        None
    }

    fn try_exit(&self) -> Option<ExitStatus> {
        *self.exit.borrow()
    }

    async fn exited(&self) -> ExitStatus {
        let mut exit = self.exit.subscribe();
        exit.wait_for(Option::is_some).await.unwrap().unwrap()
    }

    fn kill(&self) {
        self.exit.send_if_modified(|exit| {
            if exit.is_none() {
                self.kills.fetch_add(1, Ordering::SeqCst);
                *exit = Some(ExitStatus::Signal(9));
                return true;
            }
            false
        });
    }
}

#[async_trait]
impl ProcessLauncher for PipeCat {
    async fn launch(&self, request: LaunchRequest) -> Result<LaunchedChild, LaunchError> {
        self.asked.lock().unwrap().push(request.clone());
        if let Some(cwd) = request.cwd {
            return Err(LaunchError::Denied {
                capability: "process.cwd".to_owned(),
                reason: format!("working directory {cwd:?} is outside [process] cwd"),
            });
        }
        let (stdin, mut child_in) = tokio::io::duplex(1 << 16);
        let (mut child_out, stdout) = tokio::io::duplex(1 << 16);
        let (exit, _) = watch::channel(None);
        let control = Arc::new(PipeChild {
            exit,
            kills: Arc::clone(&self.kills),
        });
        let ended = Arc::clone(&control);
        tokio::spawn(async move {
            let mut killed = ended.exit.subscribe();
            tokio::select! {
                _ = tokio::io::copy(&mut child_in, &mut child_out) => {
                    ended.exit.send_if_modified(|exit| {
                        exit.get_or_insert(ExitStatus::Code(0));
                        true
                    });
                }
                _ = killed.wait_for(Option::is_some) => {}
            }
        });
        Ok(LaunchedChild {
            stdin: Some(Box::new(stdin)),
            stdout: Some(Box::new(stdout)),
            stderr: Some(Box::new(tokio::io::empty())),
            control,
        })
    }
}

fn runtime_with(launcher: Option<Arc<PipeCat>>) -> WasmRuntime {
    WasmRuntime::new(RuntimeConfig {
        max_instances: 8,
        process_launcher: launcher.map(|l| l as Arc<dyn ProcessLauncher>),
        ..RuntimeConfig::default()
    })
    .unwrap()
}

async fn client(runtime: &WasmRuntime, commands: &[&str]) -> WasmLane {
    WasmLane::load_with_grants(
        runtime,
        guest("stdio-client"),
        LaneLimits::default(),
        Grants::none().with_process(commands.iter().copied()),
    )
    .await
    .unwrap()
}

fn process_entry(result: &ExecutionResult) -> &Value {
    &result.evidence[0]["process"]
}

#[tokio::test]
async fn a_component_importing_process_is_refused_without_the_grant() {
    let err = WasmLane::load_with_grants(
        &runtime_with(None),
        guest("stdio-client"),
        LaneLimits::default(),
        Grants::default(),
    )
    .await
    .unwrap_err();
    match err {
        LoadError::ImportNotGranted { import, grant, .. } => {
            assert!(
                import.starts_with("execution-plane:lane/process@0.2.0"),
                "{import}"
            );
            assert_eq!(grant, "process");
        }
        other => panic!("expected ImportNotGranted, got {other}"),
    }
}

#[tokio::test]
async fn a_granted_command_speaks_over_its_stdio_and_its_bytes_are_counted() {
    let launcher = Arc::new(PipeCat::default());
    let rt = runtime_with(Some(Arc::clone(&launcher)));
    let lane = client(&rt, &["cat"]).await;
    let payload = json!({"command": "cat", "args": ["-u"], "env": {"A": "1"}, "stdin": "hello\n"});
    let result = guarded(lane.execute(request(Some("run"), payload), ctx())).await;
    assert_eq!(result.status, ResultStatus::Succeeded, "{result:?}");
    assert_eq!(result.output["stdout"], "hello\n");
    assert_eq!(result.output["stderr"], "");
    assert_eq!(result.output["exit"], json!({"code": 0, "signal": null}));
    assert_eq!(
        result.output["pipes_once"], true,
        "each pipe is handed out once"
    );
    let asked = launcher.asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].program, "cat");
    assert_eq!(asked[0].args, ["-u"]);
    assert_eq!(asked[0].env, [("A".to_owned(), "1".to_owned())]);
    let entry = process_entry(&result);
    assert_eq!(entry["spawned"], 1);
    assert_eq!(entry["denied"], 0);
    assert_eq!(entry["bytes_out"], 6);
    assert_eq!(entry["bytes_in"], 6);
    assert_eq!(
        entry["commands"],
        json!([ep_contracts::canonical::sha256_ref(b"cat")])
    );
    assert_eq!(entry["exits"], json!([{"code": 0, "signal": null}]));
    // Evidence never carries what crossed the pipes, nor the variables.
    let text = result.evidence[0].to_string();
    assert!(!text.contains("hello") && !text.contains("\"A\""), "{text}");
}

#[tokio::test]
async fn a_command_outside_the_lane_grant_is_denied_before_the_launcher_is_asked() {
    let launcher = Arc::new(PipeCat::default());
    let rt = runtime_with(Some(Arc::clone(&launcher)));
    let lane = client(&rt, &["cat"]).await;
    let context = ctx();
    let evidence = context.evidence.clone();
    let result = guarded(lane.execute(request(None, json!({"command": "sh"})), context)).await;
    assert_eq!(result.status, ResultStatus::Failed);
    let error = result.error.as_ref().unwrap();
    assert_eq!(error["failure_class"], "policy_denied");
    let reason = error["reason"].as_str().unwrap();
    assert!(
        reason.contains("\"sh\"")
            && reason.contains("[grants] process")
            && reason.contains("[lanes.stdio-client] process"),
        "{reason}"
    );
    assert!(launcher.asked.lock().unwrap().is_empty());
    assert_eq!(process_entry(&result)["denied"], 1);
    assert_eq!(process_entry(&result)["spawned"], 0);
    let denials = evidence.take_denials();
    assert_eq!(denials.len(), 1, "{denials:?}");
    assert_eq!(denials[0].capability, "process.command");
    assert_eq!(denials[0].detail["source"], "lane_grant");
    assert_eq!(
        denials[0].detail["command_sha256"],
        ep_contracts::canonical::sha256_ref(b"sh")
    );
}

#[tokio::test]
async fn the_launchers_own_refusal_reaches_the_guest_and_the_evidence() {
    let launcher = Arc::new(PipeCat::default());
    let rt = runtime_with(Some(Arc::clone(&launcher)));
    let lane = client(&rt, &["cat"]).await;
    let context = ctx();
    let evidence = context.evidence.clone();
    let payload = json!({"command": "cat", "cwd": "/etc"});
    let result = guarded(lane.execute(request(None, payload), context)).await;
    let error = result.error.as_ref().unwrap();
    assert_eq!(error["failure_class"], "policy_denied");
    assert!(
        error["reason"]
            .as_str()
            .unwrap()
            .contains("outside [process] cwd"),
        "{error}"
    );
    let denials = evidence.take_denials();
    assert_eq!(denials.len(), 1);
    assert_eq!(denials[0].capability, "process.cwd");
    assert_eq!(denials[0].detail["source"], "process_policy");
}

#[tokio::test]
async fn without_a_launcher_every_spawn_is_denied() {
    let rt = runtime_with(None);
    let lane = client(&rt, &["cat"]).await;
    let result = guarded(lane.execute(request(None, json!({"command": "cat"})), ctx())).await;
    let error = result.error.as_ref().unwrap();
    assert_eq!(error["failure_class"], "policy_denied");
    assert_eq!(
        error["reason"],
        "this host runs no local processes; configure [process]"
    );
}

#[tokio::test]
async fn a_lane_starts_no_process_while_it_validates() {
    let launcher = Arc::new(PipeCat::default());
    let rt = runtime_with(Some(Arc::clone(&launcher)));
    let lane = client(&rt, &["cat"]).await;
    let refused = guarded(lane.validate(&request(
        Some("spawn-in-validate"),
        json!({"command": "cat"}),
    )))
    .await
    .unwrap_err();
    assert!(
        refused
            .message
            .as_deref()
            .unwrap_or_default()
            .contains("while it validates"),
        "{refused:?}"
    );
    assert!(launcher.asked.lock().unwrap().is_empty());
}

#[tokio::test]
async fn the_guest_may_drop_the_child_before_its_streams() {
    let launcher = Arc::new(PipeCat::default());
    let rt = runtime_with(Some(Arc::clone(&launcher)));
    let lane = client(&rt, &["cat"]).await;
    let payload = json!({"command": "cat", "stdin": "{\"jsonrpc\":\"2.0\"}\n"});
    let result = guarded(lane.execute(request(Some("exchange"), payload), ctx())).await;
    assert_eq!(result.status, ResultStatus::Succeeded, "{result:?}");
    assert_eq!(result.output["line"], "{\"jsonrpc\":\"2.0\"}\n");
    assert_eq!(result.output["exit"], json!({"code": null, "signal": 9}));
    assert_eq!(result.output["after_drop"], "closed");
    assert_eq!(launcher.kills.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn the_end_of_the_execution_ends_a_child_left_running() {
    let launcher = Arc::new(PipeCat::default());
    let rt = runtime_with(Some(Arc::clone(&launcher)));
    let lane = client(&rt, &["cat"]).await;
    let result = guarded(lane.execute(
        request(Some("spawn-only"), json!({"command": "cat"})),
        ctx(),
    ))
    .await;
    assert_eq!(result.status, ResultStatus::Succeeded, "{result:?}");
    // Still running when the execution reported; killed when its store went.
    assert_eq!(process_entry(&result)["exits"], json!([null]));
    assert_eq!(launcher.kills.load(Ordering::SeqCst), 1);
}
