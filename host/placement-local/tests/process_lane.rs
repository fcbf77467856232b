//! The process lane against real processes (inventory §8.6 scenarios): exit codes and exact
//! output, stdin bytes, `clear_env`, timeouts that kill the whole group and keep partial output,
//! launch failures, policy denials that spawn nothing, output caps, user switching, and many
//! processes at once with none left behind.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::Duration;

use ep_contracts::boundary::{ExecutionRequest, ExecutionResult, ResultStatus};
use ep_lane_api::{CancelSignal, CapabilityDenial, Deadline, ExecutionContext, LaneAdapter};
use ep_placement_local::{ProcessLane, ProcessPolicy};
use serde_json::{Value, json};

/// Hang guard only: generous, never a performance assertion.
const HANG_GUARD: Duration = Duration::from_secs(30);

fn lane_in(dir: &Path) -> ProcessLane {
    ProcessLane::new(ProcessPolicy {
        commands: vec!["sh".to_owned(), "id".to_owned()],
        cwd: vec![dir.to_owned()],
        env: vec!["ONLY_ME".to_owned()],
        users: vec!["nobody".to_owned()],
        ..ProcessPolicy::default()
    })
}

fn request(payload: Value) -> ExecutionRequest {
    let Value::Object(payload) = payload else {
        panic!("payloads are objects")
    };
    ExecutionRequest {
        payload,
        ..ExecutionRequest::default()
    }
}

async fn run_within(lane: &ProcessLane, payload: Value, ms: Option<u64>) -> ExecutionResult {
    run_reporting(lane, payload, ms).await.0
}

/// Runs `payload` and answers the result with the capability denials the lane reported.
async fn run_reporting(
    lane: &ProcessLane,
    payload: Value,
    ms: Option<u64>,
) -> (ExecutionResult, Vec<CapabilityDenial>) {
    let deadline = ms.map(|ms| Deadline::after(Duration::from_millis(ms)));
    let ctx = ExecutionContext::new(CancelSignal::default(), deadline);
    let reported = ctx.evidence.clone();
    let request = request(payload);
    lane.validate(&request).await.unwrap();
    let result = tokio::time::timeout(HANG_GUARD, lane.execute(request, ctx))
        .await
        .expect("the test hung");
    (result, reported.take_denials())
}

async fn run(lane: &ProcessLane, payload: Value) -> ExecutionResult {
    run_within(lane, payload, None).await
}

fn error(result: &ExecutionResult) -> &Value {
    result
        .error
        .as_ref()
        .unwrap_or_else(|| panic!("no error: {result:?}"))
}

fn sh(script: &str) -> Value {
    json!({"command": "sh", "argv": ["-c", script]})
}

#[tokio::test]
async fn an_exit_code_fails_the_execution_and_keeps_the_exact_output() {
    let dir = tempfile::tempdir().unwrap();
    let lane = lane_in(dir.path());
    let result = run(&lane, sh("echo out-line; echo err-line >&2; exit 3")).await;
    assert_eq!(result.status, ResultStatus::Failed, "{result:?}");
    assert_eq!(error(&result)["failure_class"], "semantic_runtime_failed");
    assert_eq!(result.output["stdout"], "out-line\n");
    assert_eq!(result.output["stderr"], "err-line\n");
    assert_eq!(
        result.output["output"], "out-line\n",
        "stderr_mode separate"
    );
    assert_eq!(
        result.output["exit"],
        json!({"status": "exit", "code": 3, "signal": null})
    );
    let ran = &result.evidence[0];
    assert_eq!(ran["kind"], "process.run");
    assert_eq!(
        (ran["stdout_bytes"].as_u64(), ran["stderr_bytes"].as_u64()),
        (Some(9), Some(9))
    );
    assert!(
        !ran.to_string().contains("out-line"),
        "evidence carries no output: {ran}"
    );

    let ok = run(&lane, sh("printf done")).await;
    assert_eq!(ok.status, ResultStatus::Succeeded, "{ok:?}");
    assert_eq!(ok.output["exit"]["status"], "success");
}

#[tokio::test]
async fn stdin_is_written_exactly_and_clear_env_starts_from_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let lane = lane_in(dir.path());
    let mut payload = sh(
        r#"cat > got; printf "${ONLY_ME:-missing}\n"; printf "${HOME:-no-home}"; printf stderr-line >&2"#,
    );
    let map = payload.as_object_mut().unwrap();
    map.insert("env".to_owned(), json!({"ONLY_ME": "env-ok"}));
    map.insert("clear_env".to_owned(), json!(true));
    map.insert("stdin".to_owned(), json!("payload-without-newline"));
    // With clear_env the PATH is gone too: the policy resolved `sh` itself.
    let result = run(&lane, payload).await;
    assert_eq!(result.status, ResultStatus::Succeeded, "{result:?}");
    assert_eq!(result.output["stdout"], "env-ok\nno-home");
    assert_eq!(result.output["stderr"], "stderr-line");
    assert_eq!(
        std::fs::read(dir.path().join("got")).unwrap(),
        b"payload-without-newline"
    );
    assert_eq!(result.output["invocation"]["env_keys"], json!(["ONLY_ME"]));
    // Without clear_env the inherited variables come through.
    let inherited = run(&lane, sh(r#"printf "${PATH:+has-path}""#)).await;
    assert_eq!(inherited.output["stdout"], "has-path");
}

#[tokio::test]
async fn stderr_can_join_the_combined_output() {
    let dir = tempfile::tempdir().unwrap();
    let lane = lane_in(dir.path());
    let mut payload = sh("printf a; sleep 0.3; printf b >&2; sleep 0.3; printf c");
    payload["stderr_mode"] = json!("stdout");
    let result = run(&lane, payload).await;
    assert_eq!(result.output["output"], "abc");
    assert_eq!(result.output["stdout"], "ac");
    assert_eq!(result.output["stderr"], "b");
}

#[tokio::test]
async fn a_timeout_keeps_partial_output_and_kills_the_whole_group() {
    let dir = tempfile::tempdir().unwrap();
    let lane = lane_in(dir.path());
    let result = run_within(&lane, sh("echo tick; sleep 10"), Some(1500)).await;
    assert_eq!(result.status, ResultStatus::Failed);
    assert_eq!(error(&result)["failure_class"], "timeout", "{result:?}");
    assert_eq!(result.output["stdout"], "tick\n");
    assert_eq!(result.output["exit"], Value::Null);

    // A grandchild that ignores SIGTERM is gone once the timeout is handled.
    let script = r#"(trap "" TERM; exec sleep 30) & echo $!; trap "" TERM; sleep 30"#;
    let result = run_within(&lane, sh(script), Some(1500)).await;
    assert_eq!(error(&result)["failure_class"], "timeout");
    let pid: i32 = result.output["stdout"]
        .as_str()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .unwrap_or_default()
                .contains(") Z "),
        "grandchild {pid} outlived the timeout"
    );
    // The payload's own timeout_ms bounds it too.
    let mut payload = sh("sleep 5");
    payload["timeout_ms"] = json!(100);
    let result = run(&lane, payload).await;
    assert_eq!(error(&result)["failure_class"], "timeout");
}

#[tokio::test]
async fn cancelling_kills_the_process_and_reports_cancellation() {
    let dir = tempfile::tempdir().unwrap();
    let lane = std::sync::Arc::new(lane_in(dir.path()));
    let cancel = CancelSignal::default();
    let running = {
        let lane = std::sync::Arc::clone(&lane);
        let ctx = ExecutionContext::new(cancel.clone(), None);
        let script = sh("echo started; touch ready; sleep 30");
        tokio::spawn(async move { lane.execute(request(script), ctx).await })
    };
    // Cancelled once it is certainly running (it has written its line).
    let ready = dir.path().join("ready");
    tokio::time::timeout(HANG_GUARD, async {
        while !ready.exists() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the process never started");
    cancel.cancel();
    let result = tokio::time::timeout(HANG_GUARD, running)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        error(&result)["failure_class"],
        "cancellation",
        "{result:?}"
    );
    assert_eq!(result.output["stdout"], "started\n");
}

#[tokio::test]
async fn a_missing_command_or_directory_fails_to_launch() {
    let dir = tempfile::tempdir().unwrap();
    let lane = ProcessLane::new(ProcessPolicy {
        commands: vec![
            "no-such-command".to_owned(),
            "/nonexistent/tool".to_owned(),
            "sh".to_owned(),
        ],
        cwd: vec![dir.path().to_owned()],
        ..ProcessPolicy::default()
    });
    for (payload, reason) in [
        (json!({"command": "no-such-command"}), "command not found"),
        (json!({"command": "/nonexistent/tool"}), "command not found"),
        (
            json!({"command": "sh", "cwd": "missing-dir"}),
            "cwd not found",
        ),
    ] {
        let result = run(&lane, payload.clone()).await;
        assert_eq!(
            error(&result)["failure_class"],
            "launch_failed",
            "{payload}"
        );
        assert_eq!(error(&result)["reason"], reason, "{payload}");
    }
    let refused = lane
        .validate(&request(json!({"command": ""})))
        .await
        .unwrap_err();
    assert_eq!(refused.reason, "invalid_lane_request");
    assert_eq!(refused.details["field"], "payload.command");
}

#[tokio::test]
async fn a_request_outside_the_policy_is_denied_and_spawns_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let lane = lane_in(dir.path());
    let marker = dir.path().join("touched");
    let touch = |extra: Value| {
        let mut payload = json!({"command": "touch", "argv": [marker.to_str().unwrap()]});
        if let (Value::Object(payload), Value::Object(extra)) = (&mut payload, extra) {
            payload.extend(extra);
        }
        payload
    };
    let mut cases = vec![(touch(json!({})), "process.command")];
    let mut sh_touch = sh(&format!("touch {}", marker.display()));
    sh_touch["cwd"] = json!("/");
    cases.push((sh_touch.clone(), "process.cwd"));
    sh_touch["cwd"] = Value::Null;
    sh_touch["env"] = json!({"LD_PRELOAD": "/tmp/evil.so"});
    cases.push((sh_touch.clone(), "process.env"));
    sh_touch["env"] = Value::Null;
    sh_touch["user"] = json!("root");
    cases.push((sh_touch, "process.user"));
    for (payload, capability) in cases {
        let (result, denials) = run_reporting(&lane, payload.clone(), None).await;
        assert_eq!(
            error(&result)["failure_class"],
            "policy_denied",
            "{payload}"
        );
        assert_eq!(
            error(&result)["details"]["capability"],
            capability,
            "{payload}"
        );
        // The denial is reported to the execution's evidence as a typed value, once.
        assert_eq!(denials.len(), 1, "{payload}");
        assert_eq!(denials[0].capability, capability);
        assert!(
            denials[0].detail.contains_key("command_sha256"),
            "{payload}"
        );
        assert!(result.evidence.is_empty(), "{:?}", result.evidence);
    }
    assert!(!marker.exists(), "a denied request ran");
    let nothing = ProcessLane::new(ProcessPolicy::default());
    let result = run(&nothing, sh("true")).await;
    assert_eq!(error(&result)["failure_class"], "policy_denied");
}

#[tokio::test]
async fn output_beyond_the_cap_is_read_and_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let lane = ProcessLane::new(ProcessPolicy {
        max_output_bytes: 1000,
        ..lane_in(dir.path()).policy().clone()
    });
    // 1 MB: far over the cap and over a pipe's buffer, so the process would block if the lane
    // stopped reading.
    let result = run(&lane, sh("head -c 1000000 /dev/zero | tr '\\0' x")).await;
    assert_eq!(result.status, ResultStatus::Succeeded, "{result:?}");
    assert_eq!(result.output["stdout"].as_str().unwrap().len(), 1000);
    assert_eq!(result.output["stdout_truncated"], true);
    assert_eq!(result.evidence[0]["stdout_bytes"], 1_000_000);
}

#[tokio::test]
async fn a_user_switch_needs_a_root_host() {
    let dir = tempfile::tempdir().unwrap();
    let lane = lane_in(dir.path());
    let result = run(
        &lane,
        json!({"command": "id", "argv": ["-u"], "user": "nobody"}),
    )
    .await;
    if rustix::process::getuid().is_root() {
        assert_eq!(result.status, ResultStatus::Succeeded, "{result:?}");
        let nobody = std::fs::read_to_string("/etc/passwd")
            .unwrap()
            .lines()
            .find_map(|l| {
                l.strip_prefix("nobody:x:")
                    .map(|r| r.split(':').next().unwrap().to_owned())
            })
            .unwrap();
        assert_eq!(result.output["stdout"], format!("{nobody}\n"));
    } else {
        assert_eq!(error(&result)["failure_class"], "launch_failed");
        assert_eq!(error(&result)["reason"], "user switch requires root");
        assert_eq!(error(&result)["details"]["required_privilege"], "root");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_processes_at_once_all_finish_and_leave_no_zombie() {
    let dir = tempfile::tempdir().unwrap();
    let lane = std::sync::Arc::new(ProcessLane::new(ProcessPolicy {
        max_processes: 100,
        ..lane_in(dir.path()).policy().clone()
    }));
    let runs = (0..100).map(|i| {
        let lane = std::sync::Arc::clone(&lane);
        tokio::spawn(async move { run(&lane, sh(&format!("echo {i}"))).await })
    });
    let results = futures_join(runs.collect()).await;
    for (i, result) in results.iter().enumerate() {
        assert_eq!(result.output["stdout"], format!("{i}\n"), "{result:?}");
    }
    // Every child was reaped: none of this process's children is a zombie.
    let me = std::process::id().to_string();
    let zombies: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| std::fs::read_to_string(entry.ok()?.path().join("stat")).ok())
        .filter(|stat| {
            let after = stat
                .rsplit_once(") ")
                .map(|(_, rest)| rest)
                .unwrap_or_default();
            let fields: Vec<&str> = after.split_whitespace().collect();
            fields.first() == Some(&"Z") && fields.get(1) == Some(&me.as_str())
        })
        .collect();
    assert!(zombies.is_empty(), "{zombies:?}");
    // Beyond max_processes an execution is refused, not queued.
    let one = ProcessLane::new(ProcessPolicy {
        max_processes: 0,
        ..lane_in(dir.path()).policy().clone()
    });
    let result = run(&one, sh("true")).await;
    assert_eq!(error(&result)["failure_class"], "placement_unavailable");
}

async fn futures_join(
    handles: Vec<tokio::task::JoinHandle<ExecutionResult>>,
) -> Vec<ExecutionResult> {
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.unwrap());
    }
    out
}

/// `surface_kind: lower_simulation` (§8.12) plays its scenario back with nothing spawned: a
/// simulated `touch` creates no file, even a command the policy does not grant "runs", and the
/// evidence says the side effect was not attempted.
#[tokio::test]
async fn a_lower_simulation_plays_its_scenario_and_spawns_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let lane = lane_in(dir.path());
    let marker = dir.path().join("touched");
    let simulated = |options: Value| {
        json!({"command": "touch", "argv": [marker.to_str().unwrap()],
               "execution_surface": {"surface_kind": "lower_simulation",
                                     "transport_options": options}})
    };
    let result = run(
        &lane,
        simulated(
            json!({"scenario_ref": "touch-ok", "stdout_frames": ["done", "\n"],
                         "stderr": "warned", "exit_code": 0}),
        ),
    )
    .await;
    assert_eq!(result.status, ResultStatus::Succeeded, "{result:?}");
    assert_eq!(result.output["stdout"], "done\n");
    assert_eq!(result.output["stderr"], "warned");
    assert!(!marker.exists(), "a simulation spawned the command");
    let evidence = &result.evidence[0];
    assert_eq!(evidence["kind"], "process.simulated");
    assert_eq!(evidence["scenario_ref"], "touch-ok");
    assert_eq!(evidence["side_effect_result"], "not_attempted");

    let failed = run(
        &lane,
        simulated(json!({"scenario_ref": "s", "exit_code": 2})),
    )
    .await;
    assert_eq!(error(&failed)["failure_class"], "semantic_runtime_failed");
    assert_eq!(failed.output["exit"]["code"], 2);
    // Without its scenario_ref the request is refused before anything.
    let refused = lane
        .validate(&request(simulated(json!({"stdout": "x"}))))
        .await
        .unwrap_err();
    assert_eq!(
        refused.details["field"],
        "payload.execution_surface.transport_options"
    );
    assert!(!marker.exists());
}

#[tokio::test]
async fn a_unary_run_on_a_terminal_sees_a_terminal_and_keeps_its_exit() {
    let dir = tempfile::tempdir().unwrap();
    let lane = lane_in(dir.path());
    let script = "tty; [ -t 0 ] && [ -t 1 ] && echo interactive; stty size; exit 4";
    let result = run(
        &lane,
        json!({"command": "sh", "argv": ["-c", script], "pty": true, "rows": 30, "cols": 100}),
    )
    .await;
    assert_eq!(result.status, ResultStatus::Failed, "{result:?}");
    assert_eq!(result.output["exit"]["code"], 4, "{result:?}");
    let shown = result.output["stdout"].as_str().unwrap();
    let lines: Vec<&str> = shown.lines().map(str::trim_end).collect();
    assert!(lines[0].starts_with("/dev/pts/"), "{shown:?}");
    assert_eq!(lines[1..], ["interactive", "30 100"], "{shown:?}");
    assert_eq!(result.output["stderr"], "", "stderr is the same terminal");

    // Typed stdin is read (and echoed, as on a real terminal); Ctrl-D ends it.
    let read = run(
        &lane,
        json!({"command": "sh", "argv": ["-c", "read line; echo \"got $line\"; cat"],
               "pty": true, "stdin": "typed\n"}),
    )
    .await;
    assert_eq!(read.status, ResultStatus::Succeeded, "{read:?}");
    let shown = read.output["stdout"].as_str().unwrap().replace('\r', "");
    assert_eq!(shown, "typed\ngot typed\n", "{read:?}");

    // Out of time, the session is ended and what it showed is kept.
    let slow = run_within(
        &lane,
        json!({"command": "sh", "argv": ["-c", "echo tick; sleep 30"], "pty": true}),
        Some(300),
    )
    .await;
    assert_eq!(error(&slow)["failure_class"], "timeout", "{slow:?}");
    assert!(
        slow.output["stdout"].as_str().unwrap().starts_with("tick"),
        "{slow:?}"
    );
}
