//! Test lane `stdio-client` (ABI 0.2.0, the `lane-process` world): starts the payload's
//! `command` (with `args`, `env` and `cwd`) through the host's `process` import and speaks to
//! it over its stdio. Operations:
//!
//! * `run` (default): writes `stdin`, closes it, reads stdout and stderr to their end and
//!   answers `{stdout, stderr, exit: {code, signal}}`;
//! * `exchange`: writes `stdin` and keeps it open, reads one line of stdout, kills the child,
//!   waits for its exit, drops the child *before* its streams and reads stdout once more;
//!   answers `{line, exit, after_drop}` (`after_drop`: `closed` or `data`);
//! * `spin`: starts the child, then loops forever with it running (the deadline ends it);
//! * `wait-forever`: starts the child, never reads it, and waits for an exit that never comes;
//! * `spawn-only`: starts the child and answers at once, never dropping it (the end of the
//!   execution ends it).
//!
//! A spawn the host refuses ends in a failed outcome: `policy_denied` (`denied`),
//! `launch_failed` (`launch-failed`) or `placement_unavailable` (`other`), the host's text as
//! the reason and `{"error": <kind>}` as details.

use serde_json::{Value, json};

wit_bindgen::generate!({ path: "../../../wit", world: "lane-process", generate_all });

use execution_plane::lane0_2_0::process::{Child, Command, ErrorCode};
use execution_plane::lane0_2_0::types::{Failure, FailureClass};
use exports::execution_plane::lane0_2_0::lane_adapter::{
    EventStream, ExecutionRequest, Guest, GuestEventStream, LaneCapabilities, Outcome, Rejection,
    StreamItem,
};
use wasi::io::streams::{InputStream, OutputStream, StreamError};

/// Largest slice handed to `blocking-write-and-flush` (the WASI limit for one call).
const WRITE_CHUNK: usize = 4096;

struct StdioClient;

struct NoStream;

impl GuestEventStream for NoStream {
    fn next(&self) -> StreamItem {
        StreamItem::End(outcome(json!({})))
    }
}

fn outcome(output: Value) -> Outcome {
    Outcome {
        succeeded: true,
        output_json: output.to_string(),
        failure: None,
        metrics_json: "{}".to_owned(),
    }
}

fn failed(class: FailureClass, reason: String, kind: &str) -> Outcome {
    Outcome {
        succeeded: false,
        output_json: "{}".to_owned(),
        failure: Some(Failure {
            class,
            reason,
            details_json: json!({ "error": kind }).to_string(),
        }),
        metrics_json: "{}".to_owned(),
    }
}

fn refused(error: ErrorCode) -> Outcome {
    match error {
        ErrorCode::Denied(text) => failed(FailureClass::PolicyDenied, text, "denied"),
        ErrorCode::LaunchFailed(text) => failed(FailureClass::LaunchFailed, text, "launch-failed"),
        ErrorCode::Other(text) => failed(FailureClass::PlacementUnavailable, text, "other"),
    }
}

fn command(payload: &Value) -> Command {
    let strings = |key: &str| -> Vec<String> {
        payload[key]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|item| item.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let env = payload["env"]
        .as_object()
        .map(|vars| {
            vars.iter()
                .map(|(name, value)| (name.clone(), value.as_str().unwrap_or("").to_owned()))
                .collect()
        })
        .unwrap_or_default();
    Command {
        program: payload["command"].as_str().unwrap_or("").to_owned(),
        args: strings("args"),
        env,
        cwd: payload["cwd"].as_str().map(str::to_owned),
    }
}

fn write_all(stream: &OutputStream, bytes: &[u8]) -> Result<(), StreamError> {
    for chunk in bytes.chunks(WRITE_CHUNK) {
        stream.blocking_write_and_flush(chunk)?;
    }
    Ok(())
}

/// Everything `stream` gives until its end.
fn read_to_end(stream: &InputStream) -> Vec<u8> {
    let mut all = Vec::new();
    while let Ok(chunk) = stream.blocking_read(64 * 1024) {
        all.extend_from_slice(&chunk);
    }
    all
}

/// Bytes up to and including the first newline (or the end).
fn read_line(stream: &InputStream) -> Vec<u8> {
    let mut line = Vec::new();
    while !line.contains(&b'\n') {
        match stream.blocking_read(1) {
            Ok(chunk) => line.extend_from_slice(&chunk),
            Err(_) => break,
        }
    }
    line
}

fn exit_of(child: &Child) -> Value {
    match child.exit_status() {
        Some(status) => json!({ "code": status.code, "signal": status.signal }),
        None => Value::Null,
    }
}

fn run(payload: &Value) -> Outcome {
    let child = match Child::spawn(&command(payload)) {
        Ok(child) => child,
        Err(error) => return refused(error),
    };
    let (Some(stdin), Some(stdout), Some(stderr)) = (child.stdin(), child.stdout(), child.stderr())
    else {
        return failed(
            FailureClass::SemanticRuntimeFailed,
            "a pipe was missing".into(),
            "pipes",
        );
    };
    let again = child.stdin().is_none() && child.stdout().is_none();
    let input = payload["stdin"].as_str().unwrap_or("");
    let _ = write_all(&stdin, input.as_bytes());
    drop(stdin);
    let out = read_to_end(&stdout);
    let err = read_to_end(&stderr);
    child.subscribe_exit().block();
    outcome(json!({
        "stdout": String::from_utf8_lossy(&out),
        "stderr": String::from_utf8_lossy(&err),
        "exit": exit_of(&child),
        "pipes_once": again,
    }))
}

fn exchange(payload: &Value) -> Outcome {
    let child = match Child::spawn(&command(payload)) {
        Ok(child) => child,
        Err(error) => return refused(error),
    };
    let (Some(stdin), Some(stdout)) = (child.stdin(), child.stdout()) else {
        return failed(
            FailureClass::SemanticRuntimeFailed,
            "a pipe was missing".into(),
            "pipes",
        );
    };
    let input = payload["stdin"].as_str().unwrap_or("");
    let _ = write_all(&stdin, input.as_bytes());
    let line = read_line(&stdout);
    let exited = child.subscribe_exit();
    child.kill();
    exited.block();
    let exit = exit_of(&child);
    // The child goes first; its streams and its pollable stay valid.
    drop(child);
    let after_drop = match stdout.blocking_read(64 * 1024) {
        Ok(chunk) if !chunk.is_empty() => "data",
        _ => "closed",
    };
    drop(exited);
    drop(stdin);
    drop(stdout);
    outcome(json!({
        "line": String::from_utf8_lossy(&line),
        "exit": exit,
        "after_drop": after_drop,
    }))
}

fn spin(payload: &Value) -> Outcome {
    let child = match Child::spawn(&command(payload)) {
        Ok(child) => child,
        Err(error) => return refused(error),
    };
    let mut turns: u64 = 0;
    loop {
        turns = std::hint::black_box(turns.wrapping_add(1));
        if turns == u64::MAX {
            break;
        }
    }
    drop(child);
    outcome(json!({ "turns": turns }))
}

fn wait_forever(payload: &Value) -> Outcome {
    let child = match Child::spawn(&command(payload)) {
        Ok(child) => child,
        Err(error) => return refused(error),
    };
    let _unread = child.stdout();
    child.subscribe_exit().block();
    outcome(json!({ "exit": exit_of(&child) }))
}

fn spawn_only(payload: &Value) -> Outcome {
    match Child::spawn(&command(payload)) {
        Ok(child) => {
            // Neither is dropped by the guest: only the end of the execution ends them.
            std::mem::forget(child.stdout());
            std::mem::forget(child);
            outcome(json!({ "spawned": true }))
        }
        Err(error) => refused(error),
    }
}

impl Guest for StdioClient {
    type EventStream = NoStream;

    fn capabilities() -> LaneCapabilities {
        LaneCapabilities {
            lane_id: "stdio-client".to_owned(),
            protocols: vec!["test".to_owned()],
            surfaces: vec![],
            supports_execute: true,
            supports_stream: false,
            metadata_json: "{}".to_owned(),
        }
    }

    fn validate(request: ExecutionRequest) -> Result<(), Rejection> {
        // A spawn while validating is refused by the host (validation does no I/O).
        if request.operation.as_deref() == Some("spawn-in-validate") {
            let payload: Value = serde_json::from_str(&request.payload_json).unwrap_or_default();
            if let Err(ErrorCode::Denied(text)) = Child::spawn(&command(&payload)) {
                return Err(Rejection {
                    reason: "invalid_lane_request".to_owned(),
                    message: text,
                    details_json: "{}".to_owned(),
                });
            }
        }
        Ok(())
    }

    fn execute(request: ExecutionRequest) -> Outcome {
        let payload: Value = serde_json::from_str(&request.payload_json).unwrap_or_default();
        match request.operation.as_deref() {
            Some("exchange") => exchange(&payload),
            Some("spin") => spin(&payload),
            Some("wait-forever") => wait_forever(&payload),
            Some("spawn-only") => spawn_only(&payload),
            _ => run(&payload),
        }
    }

    fn stream(_: ExecutionRequest) -> Result<EventStream, Rejection> {
        Ok(EventStream::new(NoStream))
    }
}

export!(StdioClient);
