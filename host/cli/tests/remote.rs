//! The README quickstart as a new user runs it: `serve` (embedded defaults plus a policy that
//! lets the built-in HTTP lane reach one loopback server, and a streaming plugin lane), then
//! `describe`, `exec` (governed, with the development key `serve` generated), `exec --stream`,
//! and `lanes` against it with `--remote`, then the evidence it wrote, verified after a clean
//! stop.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use ep_lanes_wasm::test_server::TestServer;
use ep_lanes_wasm::testing::GUEST_WIT as WIT_PACKAGE;
use ep_lanes_wasm::testing::build_guest;
use serde_json::Value;

/// Hang guard only: generous, never a performance assertion.
const HANG_GUARD: Duration = Duration::from_secs(120);

/// Stops the server if the test fails before it does.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn cli(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_execution-plane"))
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Starts `serve --config <config>` in `cwd` on a free port; returns it and its URL.
fn serve(config: &Path, cwd: &Path) -> (Server, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_execution-plane"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(config)
        .current_dir(cwd)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(cwd.join("serve.log")).unwrap())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let server = Server(child);
    let (tx, lines) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        // Read to the end even when nobody listens any more, so the server never writes
        // into a closed pipe.
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // The address comes first; the plugin lanes serve once `lanes ready` is printed.
    let mut addr = None;
    loop {
        let line = lines
            .recv_timeout(HANG_GUARD)
            .expect("serve printed no address or never had its lanes ready");
        if let Some(url) = line.strip_prefix("listening on ") {
            addr = Some(url.to_owned());
        }
        if line.starts_with("lanes ready in ") {
            let addr = addr.expect("the address is printed before the lanes are ready");
            return (server, addr);
        }
    }
}

fn stop(mut server: Server, cwd: &Path) {
    let pid = server.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let started = std::time::Instant::now();
    loop {
        if let Some(status) = server.0.try_wait().unwrap() {
            let log = std::fs::read_to_string(cwd.join("serve.log")).unwrap_or_default();
            assert!(status.success(), "serve exited with {status:?}:\n{log}");
            return;
        }
        assert!(
            started.elapsed() < HANG_GUARD,
            "serve did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quickstart_runs_against_a_served_host_and_its_evidence_verifies() {
    let upstream = TestServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path().to_owned();
    let grant = format!("http://127.0.0.1:{}", upstream.addr().port());
    std::fs::write(
        cwd.join("policy.toml"),
        format!("[default]\nevents = true\n\n[lanes.http]\nhttp = [\"{grant}\"]\n"),
    )
    .unwrap();
    // A streaming lane from the plugin directory `serve` watches: the echo test guest.
    let echo = tokio::task::spawn_blocking(|| build_guest("echo"))
        .await
        .unwrap();
    let echo = echo.unwrap_or_else(|error| panic!("{error}"));
    std::fs::create_dir_all(cwd.join("plugins")).unwrap();
    std::fs::copy(echo, cwd.join("plugins/echo.wasm")).unwrap();
    std::fs::write(
        cwd.join("plugins/echo.toml"),
        format!(
            "lane_id = \"echo\"\nversion = \"1.0.0\"\nwit_version = \"{WIT_PACKAGE}\"\n\
             [grants]\nevents = true\n"
        ),
    )
    .unwrap();
    // A config names only what it changes; everything else keeps the embedded defaults.
    std::fs::write(cwd.join("serve.toml"), "[policy]\nfile = \"policy.toml\"\n").unwrap();
    let created = upstream.url("/created");

    let (server, url, outputs) = tokio::task::spawn_blocking(move || {
        let (server, url) = serve(&cwd.join("serve.toml"), &cwd);
        let payload = format!(r#"{{"url":"{created}","body":{{"ping":"pong"}}}}"#);
        let outputs = vec![
            cli(&["describe", "--remote", &url], &cwd),
            cli(
                &[
                    "exec",
                    "--remote",
                    &url,
                    "--authority-key",
                    ".execution-plane/dev-signing-key.json",
                    "--lane",
                    "http",
                    "--payload",
                    &payload,
                ],
                &cwd,
            ),
            cli(
                &[
                    "exec", "--remote", &url, "--direct", "--stream", "--lane", "http",
                ]
                .into_iter()
                .chain(["--payload", &payload])
                .collect::<Vec<_>>(),
                &cwd,
            ),
            cli(
                &[
                    "exec", "--remote", &url, "--direct", "--stream", "--lane", "echo",
                ]
                .into_iter()
                .chain(["--payload", r#"{"n":1}"#])
                .collect::<Vec<_>>(),
                &cwd,
            ),
            cli(&["lanes", "list", "--remote", &url], &cwd),
            cli(&["lanes", "rollback", "http", "--remote", &url], &cwd),
            cli(
                &[
                    "exec",
                    "--remote",
                    &url,
                    "--lane",
                    "http",
                    "--payload",
                    "{}",
                ],
                &cwd,
            ),
            cli(&["lanes", "reload", "--remote", &url], &cwd),
        ];
        // A policy that does not parse: the reload is refused and the command fails.
        std::fs::write(cwd.join("policy.toml"), "[default\n").unwrap();
        let refused = cli(&["lanes", "reload", "--remote", &url], &cwd);
        let outputs = outputs.into_iter().chain([refused]).collect::<Vec<_>>();
        (server, url, outputs)
    })
    .await
    .unwrap();
    let [
        describe,
        governed,
        streamed,
        echoed,
        lanes,
        rollback,
        no_mode,
        reloaded,
        reload_refused,
    ] = &outputs[..]
    else {
        panic!("nine commands");
    };

    assert!(describe.status.success(), "{}", stderr(describe));
    let node: Value = serde_json::from_str(&stdout(describe)).unwrap();
    assert_eq!(node["node_id"], "node-local");

    // Governed: the ref is signed for the host's node id with the key `serve` generated.
    assert!(governed.status.success(), "{}", stderr(governed));
    let result: Value = serde_json::from_str(&stdout(governed)).unwrap();
    assert_eq!(result["status"], "succeeded", "{result}");
    assert_eq!(result["output"]["status_code"], 201);
    let digest = result["evidence"][0]["component_digest"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(upstream.seen().len(), 1);

    // The HTTP lane is unary: the stream is refused, printed as a rejected result, exit 1.
    assert_eq!(streamed.status.code(), Some(1), "{}", stderr(streamed));
    let last = stdout(streamed)
        .lines()
        .last()
        .unwrap_or_default()
        .to_owned();
    let refused: Value = serde_json::from_str(&last).unwrap();
    assert_eq!(refused["status"], "rejected", "{refused}");
    assert_eq!(refused["error"]["reason"], "not_supported");
    assert_eq!(upstream.seen().len(), 1, "a refused stream reaches nothing");

    // A streaming lane: one JSON line per event as it arrives, then the result.
    assert!(echoed.status.success(), "{}", stderr(echoed));
    let lines: Vec<Value> = stdout(echoed)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let (result, events) = lines.split_last().unwrap();
    // The node's dispatch.started and dispatch.completed bracket the lane's events.
    let (first, events) = events.split_first().unwrap();
    let (closing, events) = events.split_last().unwrap();
    assert_eq!(first["event_type"], "dispatch.started", "{lines:?}");
    assert_eq!(closing["event_type"], "dispatch.completed", "{lines:?}");
    let indices: Vec<&Value> = events.iter().map(|e| &e["payload"]["index"]).collect();
    assert_eq!(indices, [0, 1, 2], "{lines:?}");
    assert!(
        events.iter().all(|e| e["event_type"] == "echo.chunk"),
        "{lines:?}"
    );
    assert_eq!(result["status"], "succeeded", "{result}");
    assert_eq!(result["execution_ref"], events[0]["execution_ref"]);

    // Operator commands find the token where `serve` wrote it.
    assert!(lanes.status.success(), "{}", stderr(lanes));
    let listed: Value = serde_json::from_str(&stdout(lanes)).unwrap();
    assert!(stdout(lanes).contains(&digest), "{listed}");
    assert_eq!(rollback.status.code(), Some(1));
    assert!(
        stderr(rollback).contains("no_previous_generation"),
        "{}",
        stderr(rollback)
    );

    // Choosing no mode is a one-line usage error, not a request.
    assert_eq!(no_mode.status.code(), Some(1));
    assert!(stderr(no_mode).contains("--direct"), "{}", stderr(no_mode));
    assert_eq!(upstream.seen().len(), 1);

    // Reload: the report, exit 0; a refused one prints its report too, then fails.
    assert!(reloaded.status.success(), "{}", stderr(reloaded));
    let report: Value = serde_json::from_str(&stdout(reloaded)).unwrap();
    assert_eq!(report["status"], "reloaded", "{report}");
    assert_eq!(
        reload_refused.status.code(),
        Some(1),
        "{}",
        stdout(reload_refused)
    );
    let report: Value = serde_json::from_str(&stdout(reload_refused)).unwrap();
    assert_eq!(report["status"], "refused", "{report}");
    assert!(
        stderr(reload_refused).contains("reload refused")
            && stderr(reload_refused).contains("policy.toml"),
        "{}",
        stderr(reload_refused)
    );

    stop(server, dir.path());
    let log = dir.path().join(".execution-plane/evidence/evidence.jsonl");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("admission.accepted"), "{text}");
    assert!(text.contains("execution.completed") && text.contains(&digest));
    // As the README checks it: the head signed by the node key `serve` keeps.
    let verified = cli(
        &[
            "evidence",
            "verify",
            "--key",
            ".execution-plane/node-key.json",
            log.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(verified.status.success(), "{}", stderr(&verified));
    assert!(
        stdout(&verified).contains("chain intact")
            && stdout(&verified).contains("signature verified"),
        "{}",
        stdout(&verified)
    );
    drop(url);
}

/// `exec --remote --stream --stdin` forwards the command's stdin to a running process (`cat`
/// with its stdin kept open) and its end as the end of the process's input, like
/// `docker exec -i`; the quickstart's `[process]` grant lets it run.
#[test]
fn exec_stream_stdin_feeds_a_running_process() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path().to_owned();
    std::fs::write(
        cwd.join("serve.toml"),
        "[process]\ncommands = [\"cat\"]\ncwd = [\".\"]\n",
    )
    .unwrap();
    let (server, url) = serve(&cwd.join("serve.toml"), &cwd);
    let mut child = Command::new(env!("CARGO_BIN_EXE_execution-plane"))
        .args([
            "exec", "--remote", &url, "--direct", "--lane", "process", "--stream", "--stdin",
        ])
        .args(["--payload", r#"{"command":"cat","close_stdin":false}"#])
        .current_dir(&cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"hello\nworld\n").unwrap();
        // Dropped here: the end of stdin is the end of the process's input.
    }
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    let out = finished
        .recv_timeout(HANG_GUARD)
        .expect("exec --stdin did not end")
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let echoed: Vec<&str> = lines
        .iter()
        .filter(|l| l["event_type"] == "process.stdout")
        .map(|l| l["payload"]["line"].as_str().unwrap())
        .collect();
    assert_eq!(echoed, ["hello", "world"], "{lines:?}");
    assert_eq!(lines.last().unwrap()["status"], "succeeded");
    stop(server, &cwd);
}

/// A served host offers `local-process-sandboxed` (its own binary is the launcher): a governed
/// caller that accepts only it runs `cat` confined (a file outside the grant is unreadable)
/// where a caller accepting the weak class reads it, and `serve` says the class is offered.
#[test]
fn a_served_host_runs_sandboxed_processes_for_callers_that_ask() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path().to_owned();
    std::fs::set_permissions(&cwd, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir(cwd.join("work")).unwrap();
    std::fs::set_permissions(cwd.join("work"), std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::write(cwd.join("secret.txt"), "the secret").unwrap();
    std::fs::set_permissions(
        cwd.join("secret.txt"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    std::fs::write(
        cwd.join("serve.toml"),
        "[process]\ncommands = [\"cat\", \"touch\"]\ncwd = [\"work\"]\n",
    )
    .unwrap();
    let (server, url) = serve(&cwd.join("serve.toml"), &cwd);
    let secret = cwd.join("secret.txt");
    let payload = format!(r#"{{"command":"cat","argv":["{}"]}}"#, secret.display());
    let governed = |class: &str| {
        cli(
            &[
                "exec",
                "--remote",
                &url,
                "--authority-key",
                ".execution-plane/dev-signing-key.json",
                "--lane",
                "process",
                "--class",
                class,
                "--payload",
                &payload,
            ],
            &cwd,
        )
    };
    let weak = governed("local-process-weak");
    assert!(weak.status.success(), "{}", stderr(&weak));
    let result: Value = serde_json::from_str(&stdout(&weak)).unwrap();
    assert_eq!(result["output"]["stdout"], "the secret", "{result}");

    let confined = governed("local-process-sandboxed");
    assert!(!confined.status.success(), "{}", stdout(&confined));
    let result: Value = serde_json::from_str(&stdout(&confined)).unwrap();
    assert_eq!(result["output"]["stdout"], "", "{result}");
    assert!(
        result["output"]["stderr"]
            .as_str()
            .unwrap()
            .contains("Permission denied"),
        "{result}"
    );
    assert_eq!(result["evidence"][0]["sandbox"], "local-process-sandboxed");

    // The remote client carries a lower simulation to the host's kernel: nothing runs.
    let marker = cwd.join("work/touched");
    std::fs::write(
        cwd.join("touch.json"),
        r#"{"scenario_ref": "lower-simulation://process/touch", "raw_payload": {"exit_code": 0}}"#,
    )
    .unwrap();
    let touch = format!(r#"{{"command":"touch","argv":["{}"]}}"#, marker.display());
    let simulated = cli(
        &[
            "exec",
            "--remote",
            &url,
            "--authority-key",
            ".execution-plane/dev-signing-key.json",
            "--lane",
            "process",
            "--class",
            "local-process-weak",
            "--simulate",
            "touch.json",
            "--payload",
            &touch,
        ],
        &cwd,
    );
    assert!(simulated.status.success(), "{}", stderr(&simulated));
    let result: Value = serde_json::from_str(&stdout(&simulated)).unwrap();
    assert_eq!(result["output"]["exit_code"], 0, "{result}");
    assert_eq!(result["evidence"][0]["kind"], "lower_simulation_evidence");
    assert!(!marker.exists(), "a simulated process ran on the host");
    stop(server, &cwd);
    let log = std::fs::read_to_string(cwd.join("serve.log")).unwrap();
    assert!(log.contains("local-process-sandboxed offered"), "{log}");
}
