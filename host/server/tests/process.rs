//! The `process` lane through `serve`: a governed request signed with the development key runs
//! on the local weak target (`local-process-weak`), a direct one with the operator token, one
//! outside the `[process]` policy is `403 policy_denied` with a `capability.denied` record and
//! spawns nothing, and the evidence carries the run's shape, never its output.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod served;
mod support;

use std::time::Duration;

use ep_contracts::boundary::AdmissionRequest;
use ep_node::authority::SigningKeyFile;
use ep_node::verifiers::local_weak::LOCAL_WEAK_CLASS;
use ep_server::ServeConfig;
use serde_json::{Value, json};
use served::direct;
use support::*;

/// A governed `process` request for `payload`, signed with `key`, accepting the local weak class.
fn signed(key: &SigningKeyFile, payload: Value) -> AdmissionRequest {
    served::signed_for(key, "process", LOCAL_WEAK_CLASS, payload)
}

/// A config in `dir` whose `[process]` policy grants `sh` in `dir/work`.
fn config(dir: &std::path::Path) -> ServeConfig {
    let config = served::setup(dir, false);
    std::fs::create_dir_all(dir.join("work")).unwrap();
    // The written config is the embedded defaults with every key: grant in its [process].
    let text = std::fs::read_to_string(dir.join("serve.toml"))
        .unwrap()
        .replace("commands = []", "commands = [\"sh\"]")
        .replace("cwd = []", "cwd = [\"work\"]")
        .replace("env = []", "env = [\"GREETING\"]");
    std::fs::write(dir.join("serve.toml"), text).unwrap();
    let config = ServeConfig::load(config.source.as_deref()).unwrap();
    served::use_test_token(&config);
    config
}

/// A host on `config(dir)`, loaded, with its development key and a client.
async fn host(
    dir: &std::path::Path,
) -> (ServeConfig, ep_server::RunningServer, SigningKeyFile, Http) {
    let config = config(dir);
    let server = served::start_loaded(config.clone()).await;
    let info = server.service().unwrap().info().clone();
    let key = SigningKeyFile::load(info.dev_key.as_ref().unwrap()).unwrap();
    let http = Http::new(&server.url());
    (config, server, key, http)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_run_governed_and_direct_and_outside_the_policy_nothing_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (config, server, key, http) = host(dir.path()).await;

    let script = json!({"command": "sh", "argv": ["-c", "printf \"$GREETING from $(pwd)\""],
                        "env": {"GREETING": "hello"}});
    let reply = http
        .post("/v1/execute", &signed(&key, script.clone()))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let result = reply.json();
    let work = std::fs::canonicalize(dir.path().join("work")).unwrap();
    assert_eq!(
        result["output"]["stdout"],
        format!("hello from {}", work.display())
    );
    assert_eq!(result["output"]["exit"]["status"], "success");

    let reply = http.post("/v1/execute", &direct("process", script)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);

    // Outside the policy: a command it does not grant.
    let marker = dir.path().join("work/touched");
    let touch = json!({"command": "touch", "argv": [marker.to_str().unwrap()]});
    let reply = http.post("/v1/execute", &signed(&key, touch)).await;
    assert_eq!(reply.status, 403, "{}", reply.body);
    let error = &reply.json()["error"];
    assert_eq!(error["failure_class"], "policy_denied", "{error}");
    assert_eq!(error["details"]["capability"], "process.command", "{error}");
    assert!(!marker.exists(), "a denied command ran");

    // A lower simulation of the same command answers its scenario and touches nothing.
    let simulated = json!({"command": "touch", "argv": [marker.to_str().unwrap()],
        "execution_surface": {"surface_kind": "lower_simulation",
                              "transport_options": {"scenario_ref": "touch", "stdout": "ok"}}});
    let reply = http.post("/v1/execute", &signed(&key, simulated)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["output"]["stdout"], "ok");
    assert!(!marker.exists(), "a simulation ran the command");

    // A payload that does not read is refused before anything runs.
    let reply = http
        .post(
            "/v1/execute",
            &signed(&key, json!({"command": "sh", "argv": "-c"})),
        )
        .await;
    assert_eq!(reply.status, 422, "{}", reply.body);
    assert_eq!(reply.json()["error"]["details"]["field"], "payload.argv");

    // The evidence has the denial as a record of its own, and no process output anywhere.
    let report = server.shutdown(Duration::from_secs(5)).await;
    assert!(report.flush_error.is_none(), "{report:?}");
    let log = std::fs::read_to_string(config.evidence.log_path()).unwrap();
    let records: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<&str> = records.iter().map(record_type).collect();
    assert!(kinds.contains(&"capability.denied"), "{kinds:?}");
    assert!(
        !log.contains("hello from"),
        "process output reached the evidence log"
    );
    assert!(
        log.contains("process.run"),
        "the run's shape is in the evidence"
    );
}

/// A process stream through `POST /v1/stream`: its lines as `execution_event` frames, then the
/// result; a denied stream ends failed and its denial is a `capability.denied` record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_streams_its_lines_over_sse_and_a_denied_stream_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let (config, server, key, http) = host(dir.path()).await;

    let script = json!({"command": "sh", "argv": ["-c", "echo one; echo two; exit 0"]});
    let reply = http.post("/v1/stream", &signed(&key, script)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let frames = parse_sse(&reply.body);
    let lines: Vec<&str> = frames
        .iter()
        .filter(|f| f.data["event_type"] == "process.stdout")
        .map(|f| f.data["payload"]["line"].as_str().unwrap())
        .collect();
    assert_eq!(lines, ["one", "two"], "{frames:?}");
    let result = &frames.last().unwrap().data;
    assert_eq!(result["status"], "succeeded", "{result}");

    let denied = json!({"command": "touch", "argv": ["x"]});
    let reply = http.post("/v1/stream", &signed(&key, denied)).await;
    let frames = parse_sse(&reply.body);
    let result = &frames.last().unwrap().data;
    assert_eq!(result["status"], "failed", "{frames:?}");
    assert_eq!(result["error"]["failure_class"], "policy_denied");

    let report = server.shutdown(Duration::from_secs(5)).await;
    assert!(report.flush_error.is_none(), "{report:?}");
    let log = std::fs::read_to_string(config.evidence.log_path()).unwrap();
    let denials = log
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| record_type(r) == "capability.denied")
        .count();
    assert_eq!(denials, 1, "the stream's denial is a record of its own");
}
