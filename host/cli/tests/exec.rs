//! `execution-plane exec` end to end: the built-in HTTP lane (embedded in the binary) against a
//! real loopback server, in direct and governed mode, with the evidence chain it writes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Output};

use ep_lanes_wasm::test_server::TestServer;
use serde_json::Value;

fn exec(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_execution-plane"))
        .arg("exec")
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap()
}

fn json_out(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn verify(log: &Path, cwd: &Path) -> String {
    verify_with(log, &[], cwd)
}

fn verify_with(log: &Path, extra: &[&str], cwd: &Path) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_execution-plane"))
        .args(["evidence", "verify"])
        .arg(log)
        .args(extra)
        .current_dir(cwd)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_exec_runs_the_embedded_http_lane_and_records_evidence() {
    let server = TestServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let grant = format!("http://127.0.0.1:{}", server.addr().port());
    let payload = format!(
        r#"{{"url":"{}","body":{{"ping":"pong"}}}}"#,
        server.url("/created")
    );
    let cwd = dir.path().to_owned();
    let o = tokio::task::spawn_blocking(move || {
        exec(
            &[
                "--lane",
                "http",
                "--direct",
                "--allow-http",
                &grant,
                "--payload",
                &payload,
                "--evidence",
                "ev/log.jsonl",
            ],
            &cwd,
        )
    })
    .await
    .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let result = json_out(&o);
    assert_eq!(result["status"], "succeeded");
    assert_eq!(result["output"]["status_code"], 201);
    assert_eq!(result["output"]["body"], r#"{"ok":true}"#);
    let digest = result["evidence"][0]["component_digest"].as_str().unwrap();
    assert!(digest.starts_with("sha256:"), "{digest}");
    assert_eq!(server.seen().len(), 1);
    assert_eq!(server.seen()[0].method, "POST");
    let log = dir.path().join("ev/log.jsonl");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("execution.completed") && text.contains(digest),
        "{text}"
    );
    assert!(verify(&log, dir.path()).contains("chain intact"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_outside_the_grant_fails_with_exit_1_and_a_denial_record() {
    let server = TestServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let grant = format!("http://127.0.0.1:{}/status", server.addr().port());
    let payload = format!(r#"{{"url":"{}","method":"GET"}}"#, server.url("/echo"));
    let cwd = dir.path().to_owned();
    let o = tokio::task::spawn_blocking(move || {
        exec(
            &[
                "--lane",
                "http",
                "--direct",
                "--allow-http",
                &grant,
                "--payload",
                &payload,
                "--evidence",
                "log.jsonl",
            ],
            &cwd,
        )
    })
    .await
    .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let result = json_out(&o);
    assert_eq!(result["status"], "failed");
    assert_eq!(result["error"]["failure_class"], "policy_denied");
    assert!(server.seen().is_empty());
    let text = std::fs::read_to_string(dir.path().join("log.jsonl")).unwrap();
    assert!(text.contains("capability.denied"), "{text}");
}

#[test]
fn without_an_http_grant_the_http_lane_is_refused_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let o = exec(
        &[
            "--lane",
            "http",
            "--direct",
            "--payload",
            r#"{"url":"http://127.0.0.1:9/"}"#,
            "--evidence",
            "log.jsonl",
        ],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("--allow-http") && err.contains("(none)"),
        "{err}"
    );
}

#[test]
fn bad_arguments_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    for (args, expected) in [
        (vec!["--lane", "http", "--payload", "{}"], "choose a mode"),
        (
            vec!["--lane", "http", "--direct", "--payload", "[1]"],
            "must be a JSON object",
        ),
        (
            vec!["--lane", "http", "--direct", "--payload", "{"],
            "not JSON",
        ),
        (
            vec!["--lane", "http", "--direct", "--payload", "@missing.json"],
            "missing.json",
        ),
        (
            vec![
                "--lane",
                "http",
                "--direct",
                "--allow-http",
                "ftp://x",
                "--payload",
                "{}",
            ],
            "ftp://x",
        ),
        (
            vec![
                "--lane",
                "nope",
                "--direct",
                "--payload",
                "{}",
                "--evidence",
                "l.jsonl",
            ],
            "no lane \"nope\"",
        ),
    ] {
        let o = exec(&args, dir.path());
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        let err = stderr(&o);
        assert!(err.contains(expected), "{args:?}: {err}");
        assert!(o.stdout.is_empty(), "{args:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn governed_exec_signs_a_ref_the_configured_trust_store_verifies() {
    let server = TestServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let keygen = Command::new(env!("CARGO_BIN_EXE_execution-plane"))
        .args(["authority", "keygen", "--key-id", "ops", "--out", "ops.key"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(keygen.status.success(), "{}", stderr(&keygen));
    std::fs::write(dir.path().join("keys.toml"), &keygen.stdout).unwrap();
    // The config `serve` reads, naming only what it changes.
    std::fs::write(
        dir.path().join("host.toml"),
        "data_dir = \".\"\n[node]\nid = \"node-exec\"\n[authority]\ntrust_store = \"keys.toml\"\nclock_skew_secs = 5\n[evidence]\ndir = \"ev\"\n",
    )
    .unwrap();
    let grant = "http://127.0.0.1:*".to_owned();
    let payload = format!(r#"{{"url":"{}","method":"GET"}}"#, server.url("/hello"));
    let cwd = dir.path().to_owned();
    let (ok, wrong_class) = tokio::task::spawn_blocking(move || {
        let base = [
            "--lane",
            "http",
            "--config",
            "host.toml",
            "--authority-key",
            "ops.key",
            "--allow-http",
            &grant,
            "--payload",
            &payload,
        ];
        let ok = exec(&base, &cwd);
        let mut args = base.to_vec();
        args.extend(["--class", "local-process-weak"]);
        (ok, exec(&args, &cwd))
    })
    .await
    .unwrap();
    assert!(ok.status.success(), "{}", stderr(&ok));
    let result = json_out(&ok);
    assert_eq!(result["output"]["body"], "hello");
    // The evidence went to the configured directory and records the governed admission.
    let text = std::fs::read_to_string(dir.path().join("ev/evidence.jsonl")).unwrap();
    assert!(
        text.contains("admission.accepted") && text.contains("wasm-engine:wasmtime@"),
        "{text}"
    );
    // Asking only for a class no target has is a rejection, exit 1.
    assert_eq!(
        wrong_class.status.code(),
        Some(1),
        "{}",
        stderr(&wrong_class)
    );
    let rejected = json_out(&wrong_class);
    assert_ne!(rejected["status"], "succeeded");
    assert!(wrong_class.stdout.len() > 2);
    assert!(
        serde_json::to_string(&rejected)
            .unwrap()
            .contains("no_satisfying_attested_target"),
        "{rejected}"
    );
    assert_eq!(server.seen().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_keeps_its_state_where_serve_does_and_signs_the_evidence_head() {
    let server = TestServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let grant = format!("http://127.0.0.1:{}", server.addr().port());
    let payload = format!(r#"{{"url":"{}","method":"GET"}}"#, server.url("/hello"));
    let cwd = dir.path().to_owned();
    let o = tokio::task::spawn_blocking(move || {
        let args = [
            "--lane",
            "http",
            "--direct",
            "--allow-http",
            &grant,
            "--payload",
            &payload,
        ];
        // Twice: the second run continues the chain under the same node key.
        let first = exec(&args, &cwd);
        assert!(first.status.success(), "{}", stderr(&first));
        exec(&args, &cwd)
    })
    .await
    .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let state = dir.path().join(".execution-plane");
    let log = state.join("evidence/evidence.jsonl");
    let key = state.join("node-key.json");
    assert!(log.is_file() && key.is_file());
    assert!(!dir.path().join("evidence").exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(text.matches("execution.completed").count(), 2, "{text}");
    let report = verify_with(&log, &["--key", key.to_str().unwrap()], dir.path());
    assert!(report.contains("signature verified"), "{report}");
}

#[test]
fn exec_into_a_closed_pipe_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_execution-plane"))
        .args([
            "exec",
            "--lane",
            "http",
            "--direct",
            "--allow-http",
            "http://127.0.0.1:9/granted",
            "--payload",
            r#"{"url":"http://127.0.0.1:9/elsewhere"}"#,
        ])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Closed before the execution has printed anything, as `| head -c 0` would.
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        !err.contains("panicked") && !err.contains("Broken pipe"),
        "{err}"
    );
    // The execution ran and left its evidence.
    let text = std::fs::read_to_string(dir.path().join(".execution-plane/evidence/evidence.jsonl"))
        .unwrap();
    assert!(text.contains("capability.denied"), "{text}");
}

/// `exec --lane process` in process: nothing runs without a grant; `--allow-command` and
/// `--allow-cwd` grant it for this one execution (direct), and a governed caller that accepts
/// `local-process-weak` runs it on the local target.
#[test]
fn exec_runs_a_local_process_only_with_a_grant() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let payload = r#"{"command":"sh","argv":["-c","printf \"hi from $(basename $(pwd))\""]}"#;
    let denied = exec(
        &["--lane", "process", "--direct", "--payload", payload],
        dir.path(),
    );
    assert!(!denied.status.success());
    let result = json_out(&denied);
    assert_eq!(
        result["error"]["failure_class"], "policy_denied",
        "{result}"
    );

    let work_arg = work.to_str().unwrap();
    let granted = [
        "--lane",
        "process",
        "--allow-command",
        "sh",
        "--allow-cwd",
        work_arg,
    ];
    let ran = exec(
        &[&granted[..], &["--direct", "--payload", payload]].concat(),
        dir.path(),
    );
    assert!(ran.status.success(), "{}", stderr(&ran));
    assert_eq!(json_out(&ran)["output"]["stdout"], "hi from work");

    let keygen = Command::new(env!("CARGO_BIN_EXE_execution-plane"))
        .args(["authority", "keygen", "--key-id", "dev", "--out", "dev.key"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(keygen.status.success(), "{}", stderr(&keygen));
    std::fs::create_dir_all(dir.path().join(".execution-plane")).unwrap();
    std::fs::write(
        dir.path().join(".execution-plane/authority-keys.toml"),
        &keygen.stdout,
    )
    .unwrap();
    let governed = [
        &granted[..],
        &[
            "--authority-key",
            "dev.key",
            "--class",
            "local-process-weak",
            "--payload",
            payload,
        ],
    ]
    .concat();
    let ran = exec(&governed, dir.path());
    assert!(ran.status.success(), "{}", stderr(&ran));
    assert_eq!(json_out(&ran)["output"]["stdout"], "hi from work");
    // Without accepting the weak class, no target satisfies a governed request.
    let strict = [
        &granted[..],
        &["--authority-key", "dev.key", "--payload", payload],
    ]
    .concat();
    let refused = exec(&strict, dir.path());
    assert!(!refused.status.success());
    assert_eq!(
        json_out(&refused)["error"]["reason"],
        "no_satisfying_attested_target"
    );

    // The sandboxed class runs it confined, the binary its own launcher.
    let sandboxed = [
        &granted[..],
        &[
            "--authority-key",
            "dev.key",
            "--class",
            "local-process-sandboxed",
            "--payload",
            payload,
        ],
    ]
    .concat();
    let ran = exec(&sandboxed, dir.path());
    assert!(ran.status.success(), "{}", stderr(&ran));
    let result = json_out(&ran);
    assert_eq!(result["output"]["stdout"], "hi from work", "{result}");
    assert_eq!(result["evidence"][0]["sandbox"], "local-process-sandboxed");
    // Where the sandbox is not offered, a caller that accepts only it is refused.
    std::fs::write(
        dir.path().join("no-sandbox.toml"),
        "[process.sandbox]\nenabled = false\n",
    )
    .unwrap();
    let off = [&["--config", "no-sandbox.toml"][..], &sandboxed[..]].concat();
    let refused = exec(&off, dir.path());
    assert!(!refused.status.success());
    assert_eq!(
        json_out(&refused)["error"]["reason"],
        "no_satisfying_attested_target"
    );
}

/// `exec --stream --stdin` in process: the node's stream of a local `cat`, fed with this
/// command's stdin, each event a JSON line, then the result.
#[test]
fn exec_streams_in_process_and_forwards_stdin() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_execution-plane"))
        .args([
            "exec",
            "--lane",
            "process",
            "--allow-command",
            "cat",
            "--allow-cwd",
        ])
        .arg(&work)
        .args(["--direct", "--stream", "--stdin"])
        .args(["--payload", r#"{"command":"cat","close_stdin":false}"#])
        .current_dir(dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"one\ntwo\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let echoed: Vec<&str> = lines
        .iter()
        .filter(|l| l["event_type"] == "process.stdout")
        .map(|l| l["payload"]["line"].as_str().unwrap())
        .collect();
    assert_eq!(echoed, ["one", "two"], "{lines:?}");
    assert_eq!(lines.last().unwrap()["status"], "succeeded");
}

/// `exec --simulate`: the kernel answers an HTTP or process request from a scenario and the
/// lane is never called — a listening loopback server gets no connection, `touch` creates no
/// file — with the `lower_simulation_evidence` artifact as the result's evidence; a scenario
/// that does not validate fails `route_unresolved` before anything is dispatched.
#[test]
fn exec_simulate_answers_from_the_scenario_with_no_io() {
    let dir = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}/widgets", listener.local_addr().unwrap());
    std::fs::write(
        dir.path().join("http.json"),
        r#"{"scenario_ref": "lower-simulation://http/widgets",
            "raw_payload": {"status_code": 200, "headers": {}, "body": "{\"widgets\":3}"}}"#,
    )
    .unwrap();
    let payload = format!(r#"{{"url":"{url}","method":"GET"}}"#);
    let out = exec(
        &[
            "--lane",
            "http",
            "--allow-http-private",
            &url,
            "--direct",
            "--simulate",
            "http.json",
            "--payload",
            &payload,
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let result = json_out(&out);
    assert_eq!(result["output"]["status_code"], 200, "{result}");
    assert_eq!(result["output"]["body"], "{\"widgets\":3}");
    let artifact = &result["evidence"][0];
    assert_eq!(artifact["kind"], "lower_simulation_evidence", "{result}");
    assert_eq!(artifact["evidence"]["side_effect_result"], "not_attempted");
    assert_eq!(
        artifact["evidence"]["side_effect_policy"],
        "deny_external_egress"
    );
    assert!(
        listener.accept().is_err(),
        "the simulated request reached the server"
    );

    let marker = dir.path().join("work/touched");
    std::fs::create_dir(dir.path().join("work")).unwrap();
    std::fs::write(
        dir.path().join("process.json"),
        r#"{"scenario_ref": "lower-simulation://process/touch", "status": "failed",
            "raw_payload": {"exit_code": 1, "stdout": "", "stderr": "simulated"}}"#,
    )
    .unwrap();
    let touch = format!(r#"{{"command":"touch","argv":["{}"]}}"#, marker.display());
    let out = exec(
        &[
            "--lane",
            "process",
            "--allow-command",
            "touch",
            "--allow-cwd",
            dir.path().join("work").to_str().unwrap(),
            "--direct",
            "--simulate",
            "process.json",
            "--payload",
            &touch,
        ],
        dir.path(),
    );
    assert!(
        !out.status.success(),
        "a failed scenario fails the execution"
    );
    let result = json_out(&out);
    assert_eq!(result["status"], "failed", "{result}");
    assert_eq!(result["output"]["stderr"], "simulated");
    assert_eq!(
        result["evidence"][0]["evidence"]["side_effect_policy"],
        "deny_process_spawn"
    );
    assert!(!marker.exists(), "the simulated process ran");

    // A scenario without its scenario_ref is blocked before dispatch.
    std::fs::write(dir.path().join("bad.json"), r#"{"raw_payload": {}}"#).unwrap();
    let out = exec(
        &[
            "--lane",
            "process",
            "--allow-command",
            "touch",
            "--allow-cwd",
            dir.path().join("work").to_str().unwrap(),
            "--direct",
            "--simulate",
            "bad.json",
            "--payload",
            &touch,
        ],
        dir.path(),
    );
    let result = json_out(&out);
    assert_eq!(
        result["error"]["failure_class"], "route_unresolved",
        "{result}"
    );
    assert_eq!(
        result["output"]["side_effect_result"],
        "blocked_before_dispatch"
    );
    assert!(
        result["error"]["details"]["lower_simulation_error"]
            .as_str()
            .unwrap()
            .contains("scenario_ref"),
        "{result}"
    );
    assert!(!marker.exists());
    let refused = exec(
        &[
            "--lane",
            "process",
            "--direct",
            "--simulate",
            "missing.json",
            "--payload",
            &touch,
        ],
        dir.path(),
    );
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("missing.json"),
        "{}",
        stderr(&refused)
    );
}

/// `exec --stream` in process with a wasm streaming lane: the embedded `sse` lane reads a real
/// event stream on loopback under `--allow-http`, prints `dispatch.started`, `sse.open`, one
/// `sse.event` per event, `lane.completed` and `dispatch.completed` as JSON lines, then the succeeded result; without the grant it is
/// refused before any connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_streams_the_embedded_sse_lane_in_process() {
    let server = ep_test_servers::sse::SseServer::flood(5, 16).unwrap();
    let grant = format!("http://127.0.0.1:{}", server.addr().port());
    let payload = format!(r#"{{"url":"{}"}}"#, server.url());
    tokio::task::spawn_blocking(move || sse_exec_checks(&grant, &payload))
        .await
        .unwrap();
}

fn sse_exec_checks(grant: &str, payload: &str) {
    let dir = tempfile::tempdir().unwrap();
    let out = exec(
        &[
            "--lane",
            "sse",
            "--direct",
            "--stream",
            "--allow-http",
            grant,
            "--payload",
            payload,
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<&str> = lines
        .iter()
        .filter_map(|l| l["event_type"].as_str())
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "sse.event").count(),
        5,
        "{lines:?}"
    );
    let kinds: Vec<&str> = kinds.into_iter().filter(|k| *k != "sse.event").collect();
    assert_eq!(
        kinds,
        [
            "dispatch.started",
            "sse.open",
            "lane.completed",
            "dispatch.completed"
        ],
        "{lines:?}"
    );
    assert_eq!(lines.last().unwrap()["status"], "succeeded", "{lines:?}");

    let denied = exec(
        &[
            "--lane",
            "sse",
            "--direct",
            "--stream",
            "--payload",
            payload,
        ],
        dir.path(),
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&denied.stdout),
        stderr(&denied)
    );
    assert!(
        text.contains("denied") || text.contains("--allow-http"),
        "{text}"
    );
    assert!(!text.contains("sse.event"), "{text}");
}
