//! Streaming runs of the process lane against real processes (inventory §8.8–§8.9 scenarios):
//! tagged stdout lines and the exit, a line far over the read size delivered intact, the fatal
//! overflow with its context, the trailing fragment, raw chunks, a timeout with partial output,
//! a consumer that stops reading, a dropped stream that ends its process, and a denial.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::Duration;

use ep_contracts::boundary::{ExecutionEvent, ExecutionRequest};
use ep_lane_api::{CancelSignal, Deadline, EventStream, ExecutionContext, LaneAdapter};
use ep_placement_local::{ProcessLane, ProcessPolicy};
use futures::StreamExt;
use serde_json::{Value, json};

/// Hang guard only: generous, never a performance assertion.
const HANG_GUARD: Duration = Duration::from_secs(30);

fn lane_in(dir: &Path) -> ProcessLane {
    ProcessLane::new(ProcessPolicy {
        commands: vec!["sh".to_owned()],
        cwd: vec![dir.to_owned()],
        ..ProcessPolicy::default()
    })
}

async fn open(lane: &ProcessLane, payload: Value, ms: Option<u64>) -> EventStream {
    let Value::Object(payload) = payload else {
        panic!("payloads are objects")
    };
    let request = ExecutionRequest {
        payload,
        ..ExecutionRequest::default()
    };
    let deadline = ms.map(|ms| Deadline::after(Duration::from_millis(ms)));
    lane.stream(
        request,
        ExecutionContext::new(CancelSignal::default(), deadline),
    )
    .await
    .unwrap()
}

async fn all(stream: EventStream) -> Vec<ExecutionEvent> {
    tokio::time::timeout(HANG_GUARD, stream.collect::<Vec<_>>())
        .await
        .expect("the stream hung")
}

fn sh(script: &str) -> Value {
    json!({"command": "sh", "argv": ["-c", script]})
}

fn kinds(events: &[ExecutionEvent]) -> Vec<&str> {
    events
        .iter()
        .filter_map(|e| e.event_type.as_deref())
        .collect()
}

fn lines(events: &[ExecutionEvent]) -> Vec<&str> {
    events
        .iter()
        .filter(|e| e.event_type.as_deref() == Some("process.stdout"))
        .map(|e| e.payload["line"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn stdout_lines_stderr_chunks_and_the_exit_arrive_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let lane = lane_in(dir.path());
    let events = all(open(
        &lane,
        sh(r"printf 'a\nb\r\nc\rd'; sleep 0.05; printf 'err\n' >&2"),
        None,
    )
    .await)
    .await;
    assert_eq!(lines(&events), ["a", "b", "c", "d"], "{events:?}");
    let stderr: String = events
        .iter()
        .filter(|e| e.event_type.as_deref() == Some("process.stderr"))
        .map(|e| e.payload["chunk"].as_str().unwrap())
        .collect();
    assert_eq!(stderr, "err\n");
    let last = events.last().unwrap();
    assert_eq!(last.event_type.as_deref(), Some("process.exit"));
    assert_eq!(last.payload["status"], "succeeded");
    assert_eq!(last.payload["exit"]["status"], "success");
    assert_eq!(last.payload["stderr_tail"], "err\n");

    let failed = all(open(&lane, sh("echo boom >&2; exit 4"), None).await).await;
    let last = failed.last().unwrap();
    assert_eq!(last.payload["status"], "failed");
    assert_eq!(last.payload["exit"]["code"], 4);
    assert_eq!(
        last.payload["error"]["failure_class"],
        "semantic_runtime_failed"
    );
    assert_eq!(last.payload["stderr_tail"], "boom\n");
}

#[tokio::test]
async fn a_line_written_in_small_pieces_is_delivered_whole_and_the_fragment_at_the_end_too() {
    let dir = tempfile::tempdir().unwrap();
    let lane = lane_in(dir.path());
    // A 64-byte line in four 16-byte writes, then a last fragment without a newline.
    let script = r"for i in 1 2 3 4; do printf 'xxxxxxxxxxxxxxxx'; sleep 0.02; done; printf '\nlast-no-newline'";
    let events = all(open(&lane, sh(script), None).await).await;
    assert_eq!(lines(&events), ["x".repeat(64).as_str(), "last-no-newline"]);
}

#[tokio::test]
async fn a_line_over_the_limit_fails_the_stream_with_its_context() {
    let dir = tempfile::tempdir().unwrap();
    let lane = lane_in(dir.path());
    let mut payload = sh("head -c 5000 /dev/zero | tr '\\0' x; sleep 30");
    payload["max_recoverable_line_bytes"] = json!(1000);
    let events = all(open(&lane, payload, None).await).await;
    let last = events.last().unwrap();
    assert_eq!(
        last.event_type.as_deref(),
        Some("process.error"),
        "{events:?}"
    );
    let error = &last.payload["error"];
    assert_eq!(error["failure_class"], "protocol_framing_failed");
    assert_eq!(error["details"]["cause"], "buffer_overflow");
    assert_eq!(error["details"]["max_recoverable_line_bytes"], 1000);
    assert!(error["details"]["seen_bytes"].as_u64().unwrap() > 1000);
}

#[tokio::test]
async fn raw_mode_delivers_the_bytes_as_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let lane = lane_in(dir.path());
    let mut payload = sh(r"printf 'one\ntwo'; sleep 0.02; printf '\r\nthree'");
    payload["stdout_mode"] = json!("raw");
    let events = all(open(&lane, payload, None).await).await;
    let data: String = events
        .iter()
        .filter(|e| e.event_type.as_deref() == Some("process.data"))
        .map(|e| e.payload["chunk"].as_str().unwrap())
        .collect();
    assert_eq!(data, "one\ntwo\r\nthree");
    assert!(lines(&events).is_empty());
}

#[tokio::test]
async fn a_timeout_keeps_what_was_streamed_and_ends_with_an_error_event() {
    let dir = tempfile::tempdir().unwrap();
    let lane = lane_in(dir.path());
    let events = all(open(&lane, sh("echo tick; sleep 10"), Some(1500)).await).await;
    assert_eq!(lines(&events), ["tick"]);
    let last = events.last().unwrap();
    assert_eq!(last.event_type.as_deref(), Some("process.error"));
    assert_eq!(last.payload["error"]["failure_class"], "timeout");
}

#[tokio::test]
async fn a_consumer_that_stops_reading_ends_the_run_after_the_headless_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let lane = lane_in(dir.path());
    let mut payload = sh("while :; do echo line; done");
    payload["headless_timeout_ms"] = json!(200);
    let mut stream = open(&lane, payload, None).await;
    // Take one event, then stop reading for longer than the headless timeout.
    assert!(stream.next().await.is_some());
    tokio::time::sleep(Duration::from_millis(800)).await;
    let rest = all(stream).await;
    let last = rest.last().unwrap();
    assert_eq!(
        last.event_type.as_deref(),
        Some("process.error"),
        "{:?}",
        kinds(&rest)
    );
    assert_eq!(last.payload["error"]["details"]["cause"], "headless");
    assert!(
        rest.len() <= ep_placement_local::stream::MAX_BUFFERED_EVENTS + 2,
        "buffered at most the channel: {}",
        rest.len()
    );
}

#[tokio::test]
async fn dropping_the_stream_ends_its_process() {
    let dir = tempfile::tempdir().unwrap();
    let lane = lane_in(dir.path());
    let mut stream = open(&lane, sh("echo $$; exec sleep 30"), None).await;
    let first = tokio::time::timeout(HANG_GUARD, stream.next())
        .await
        .unwrap()
        .unwrap();
    let pid: u32 = first.payload["line"].as_str().unwrap().parse().unwrap();
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    drop(stream);
    let gone = async {
        loop {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            if stat.is_empty() || stat.contains(") Z ") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(HANG_GUARD, gone)
        .await
        .expect("the process outlived its stream");
}

#[tokio::test]
async fn a_denied_stream_is_one_error_event_and_reports_the_denial() {
    let dir = tempfile::tempdir().unwrap();
    let lane = lane_in(dir.path());
    let ctx = ExecutionContext::default();
    let reported = ctx.evidence.clone();
    let Value::Object(payload) = json!({"command": "touch", "argv": ["x"]}) else {
        unreachable!()
    };
    let request = ExecutionRequest {
        payload,
        ..ExecutionRequest::default()
    };
    let events = all(lane.stream(request, ctx).await.unwrap()).await;
    assert_eq!(kinds(&events), ["process.error"]);
    assert_eq!(events[0].payload["error"]["failure_class"], "policy_denied");
    let denials = reported.take_denials();
    assert_eq!(denials.len(), 1);
    assert_eq!(denials[0].capability, "process.command");
    assert!(!dir.path().join("x").exists());
}

#[tokio::test]
async fn line_batch_mode_delivers_the_same_lines_a_read_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let lane = lane_in(dir.path());
    let mut payload = sh(r"printf 'a\nb\n'; sleep 0.05; printf 'c\r\nlast'");
    payload["stdout_mode"] = json!("line_batch");
    let events = all(open(&lane, payload, None).await).await;
    let batches: Vec<Vec<String>> = events
        .iter()
        .filter(|e| e.event_type.as_deref() == Some("process.stdout_lines"))
        .map(|e| serde_json::from_value(e.payload["lines"].clone()).unwrap())
        .collect();
    assert_eq!(batches.concat(), ["a", "b", "c", "last"], "{events:?}");
    assert!(
        batches.len() >= 2,
        "one event a read, not one for everything: {batches:?}"
    );
    assert!(lines(&events).is_empty());
}

#[tokio::test]
async fn a_simulated_stream_plays_its_frames_unsplit_then_the_exit() {
    let dir = tempfile::tempdir().unwrap();
    let lane = lane_in(dir.path());
    let payload = json!({"command": "not-granted-and-never-run",
        "execution_surface": {"surface_kind": "lower_simulation", "transport_options":
            {"scenario_ref": "sim-1", "stdout_frames": ["a\nb", "c"], "stderr_frames": ["e"],
             "exit_code": 0}}});
    let events = all(open(&lane, payload, None).await).await;
    assert_eq!(lines(&events), ["a\nb", "c"], "frames are not re-split");
    assert_eq!(
        kinds(&events),
        [
            "process.stdout",
            "process.stdout",
            "process.stderr",
            "process.exit"
        ]
    );
    let last = events.last().unwrap();
    assert_eq!(last.payload["status"], "succeeded");
    assert_eq!(last.evidence[0]["scenario_ref"], "sim-1");
}

fn output_text(events: &[ExecutionEvent]) -> String {
    lines(events).join("\n")
}

#[tokio::test]
async fn on_a_terminal_the_process_sees_a_tty_of_the_asked_size() {
    let dir = tempfile::tempdir().unwrap();
    let lane = ProcessLane::new(ProcessPolicy {
        commands: vec!["sh".to_owned(), "cat".to_owned()],
        cwd: vec![dir.path().to_owned()],
        ..ProcessPolicy::default()
    });
    let mut payload = sh("tty; stty size");
    payload["pty"] = json!(true);
    payload["rows"] = json!(30);
    payload["cols"] = json!(100);
    let events = all(open(&lane, payload, None).await).await;
    let text = output_text(&events);
    assert!(text.contains("/dev/pts/"), "{events:?}");
    assert!(text.contains("30 100"), "{events:?}");
    assert_eq!(events.last().unwrap().payload["exit"]["status"], "success");
}

#[tokio::test]
async fn on_a_terminal_input_is_typed_ctrl_c_interrupts_and_ctrl_d_ends_input() {
    let dir = tempfile::tempdir().unwrap();
    let lane = ProcessLane::new(ProcessPolicy {
        commands: vec!["sh".to_owned(), "cat".to_owned()],
        cwd: vec![dir.path().to_owned()],
        ..ProcessPolicy::default()
    });
    let (sender, slot) = ep_lane_api::InputSlot::channel();
    let open_with_input = |payload: Value, slot| {
        let Value::Object(payload) = payload else {
            panic!()
        };
        let request = ExecutionRequest {
            payload,
            ..ExecutionRequest::default()
        };
        let ctx = ExecutionContext::new(CancelSignal::default(), None).with_input(slot);
        let lane = &lane;
        async move { lane.stream(request, ctx).await.unwrap() }
    };
    // `cat` on a terminal: a typed line comes back (echoed, then cat's copy); Ctrl-D ends it.
    let stream = open_with_input(json!({"command": "cat", "pty": true}), slot).await;
    sender
        .send(ep_lane_api::Input::Data(b"typed\n".to_vec()))
        .await
        .unwrap();
    sender.send(ep_lane_api::Input::End).await.unwrap();
    let events = all(stream).await;
    assert!(
        lines(&events).iter().filter(|l| **l == "typed").count() >= 1,
        "{events:?}"
    );
    assert_eq!(
        events.last().unwrap().payload["exit"]["status"],
        "success",
        "{events:?}"
    );

    // Ctrl-C is the terminal's SIGINT to the foreground group.
    let (sender, slot) = ep_lane_api::InputSlot::channel();
    let script = "trap 'echo got-int; exit 130' INT; echo ready; while :; do sleep 0.05; done";
    let mut payload = sh(script);
    payload["pty"] = json!(true);
    let mut stream = open_with_input(payload, slot).await;
    let first = tokio::time::timeout(HANG_GUARD, stream.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.payload["line"], "ready");
    sender.send(ep_lane_api::Input::Interrupt).await.unwrap();
    let events = all(stream).await;
    assert!(output_text(&events).contains("got-int"), "{events:?}");
    assert_eq!(events.last().unwrap().payload["exit"]["code"], 130);
}
