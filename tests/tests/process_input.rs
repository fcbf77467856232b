//! Interactive input to a running process stream, end to end: a served host, the remote client
//! (`open_items`, then `send_input` with the stream's capability token) and `POST
//! /v1/executions/{ref}/input` itself: stdin bytes reach the process, the end of input closes
//! its stdin, an interrupt is its SIGINT; input to an execution that takes none, or from a
//! caller who may not name it, is refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::Duration;

use ep_contracts::boundary::{AdmissionRequest, ExecutionEvent, Map, Provenance};
use ep_node::{Input, RuntimeClient, RuntimeError};
use ep_remote::{RemoteRuntimeClient, StreamItem};
use ep_server::ServeConfig;
use ep_server::config::DEFAULT_CONFIG;
use futures::StreamExt;
use serde_json::{Value, json};

/// Hang guard only: generous, never a performance assertion.
const HANG_GUARD: Duration = Duration::from_secs(30);

fn setup(dir: &Path) -> ServeConfig {
    std::fs::create_dir_all(dir.join("work")).unwrap();
    let text = DEFAULT_CONFIG
        .replace("listen = \"127.0.0.1:8787\"", "listen = \"127.0.0.1:0\"")
        .replace("commands = []", "commands = [\"sh\", \"cat\"]")
        .replace("cwd = []", "cwd = [\"work\"]");
    let path = dir.join("serve.toml");
    std::fs::write(&path, text).unwrap();
    ServeConfig::load(Some(&path)).unwrap()
}

fn direct(payload: Value) -> AdmissionRequest {
    let mut request = AdmissionRequest::new("process");
    let Value::Object(payload) = payload else {
        panic!("payloads are objects")
    };
    request.payload = payload;
    request.provenance = Provenance::direct_lower_lane_owner("operator", Map::new());
    request
}

/// Every event left in `items`, read to the stream's end.
async fn collect_events(
    items: futures::stream::BoxStream<'static, StreamItem>,
) -> Vec<ExecutionEvent> {
    let collect = items
        .filter_map(|item| async move {
            match item {
                StreamItem::Event(event) => Some(event),
                _ => None,
            }
        })
        .collect::<Vec<_>>();
    tokio::time::timeout(HANG_GUARD, collect)
        .await
        .expect("the stream hung")
}

/// The lane's events of a stream, read to its end, after checking the node's dispatch events
/// around them.
async fn events_until_end(
    items: futures::stream::BoxStream<'static, StreamItem>,
) -> Vec<ExecutionEvent> {
    let mut events = collect_events(items).await;
    let first = events.remove(0);
    assert_eq!(first.event_type.as_deref(), Some("dispatch.started"));
    without_closing(events)
}

/// `events` (the rest of a stream whose first events were read already) without its closing
/// `dispatch.*` event, after checking it is there.
fn without_closing(mut events: Vec<ExecutionEvent>) -> Vec<ExecutionEvent> {
    let closing = events.pop().expect("a closing event");
    assert!(
        matches!(
            closing.event_type.as_deref(),
            Some("dispatch.completed" | "dispatch.failed")
        ),
        "{closing:?}"
    );
    events
}

fn lines(events: &[ExecutionEvent]) -> Vec<&str> {
    events
        .iter()
        .filter(|e| e.event_type.as_deref() == Some("process.stdout"))
        .map(|e| e.payload["line"].as_str().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_writes_stdin_ends_it_and_interrupts_a_running_process() {
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path());
    let server = ep_server::start(config.clone()).await.unwrap();
    let token = std::fs::read_to_string(&config.operator.token_file).unwrap();
    let client = RemoteRuntimeClient::builder(server.url())
        .operator_token(token.trim())
        .build()
        .unwrap();

    // `cat` echoes what it is sent and exits at the end of its input.
    let opened = client
        .open_items(direct(json!({"command": "cat", "close_stdin": false})))
        .await
        .unwrap();
    let reference = opened
        .execution_ref
        .clone()
        .expect("the host names the execution");
    client
        .send_input(&reference, Input::Data(b"hello\nwor".to_vec()))
        .await
        .unwrap();
    client
        .send_input(&reference, Input::Data(b"ld\n".to_vec()))
        .await
        .unwrap();
    client.send_input(&reference, Input::End).await.unwrap();
    let events = events_until_end(opened.items).await;
    assert_eq!(lines(&events), ["hello", "world"], "{events:?}");
    let last = events.last().unwrap();
    assert_eq!(last.payload["exit"]["status"], "success", "{last:?}");
    // It has ended: more input is refused.
    let late = client.send_input(&reference, Input::End).await.unwrap_err();
    assert!(
        matches!(
            late,
            RuntimeError::ExecutionEnded(_) | RuntimeError::InputNotAccepted(_)
        ),
        "{late:?}"
    );

    // An interrupt is the process group's SIGINT.
    let script = "trap 'echo interrupted; exit 130' INT; echo ready; while :; do sleep 0.05; done";
    let opened = client
        .open_items(direct(json!({"command": "sh", "argv": ["-c", script]})))
        .await
        .unwrap();
    let reference = opened.execution_ref.clone().unwrap();
    let mut items = opened.items;
    let mut next_event = async || {
        let item = tokio::time::timeout(HANG_GUARD, items.next())
            .await
            .unwrap()
            .unwrap();
        let StreamItem::Event(event) = item else {
            panic!("{item:?}")
        };
        event
    };
    let started = next_event().await;
    assert_eq!(started.event_type.as_deref(), Some("dispatch.started"));
    let ready = next_event().await;
    assert_eq!(ready.payload["line"], "ready");
    client
        .send_input(&reference, Input::Interrupt)
        .await
        .unwrap();
    let rest = collect_events(items).await;
    let events = without_closing(rest);
    assert_eq!(lines(&events), ["interrupted"]);
    let last = events.last().unwrap();
    assert_eq!(last.payload["exit"]["code"], 130, "{last:?}");

    // A unary execution takes no input; a stranger may not name a stream.
    let http = reqwest_like(&server.url());
    let opened = client
        .open_items(direct(json!({"command": "cat", "close_stdin": false})))
        .await
        .unwrap();
    let reference = opened.execution_ref.clone().unwrap();
    let path = format!("/v1/executions/{}/input", reference.as_str());
    assert_eq!(http.post(&path, None, r#"{"end": true}"#).await.0, 401);
    assert_eq!(
        http.post(&path, Some("ept-wrong"), r#"{"end": true}"#)
            .await
            .0,
        404
    );
    let (status, body) = http
        .post(&path, Some(token.trim()), r#"{"end": true, "data": "x"}"#)
        .await;
    assert_eq!(status, 400, "{body}");
    let token_of_stream = client.execution_token(&reference).unwrap();
    let (status, body) = http
        .post(&path, Some(&token_of_stream), r#"{"data_base64": "aGkK"}"#)
        .await;
    assert_eq!(
        (status, body["input"].as_str(), body["bytes"].as_u64()),
        (200, Some("data"), Some(3)),
        "{body}"
    );
    let (status, _) = http
        .post(&path, Some(&token_of_stream), r#"{"end": true}"#)
        .await;
    assert_eq!(status, 200);
    let events = events_until_end(opened.items).await;
    assert_eq!(lines(&events), ["hi"]);

    let report = server.shutdown(Duration::from_secs(5)).await;
    assert!(report.flush_error.is_none(), "{report:?}");
    let log = std::fs::read_to_string(config.evidence.log_path()).unwrap();
    let inputs: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r.to_string().contains("\"execution.input\""))
        .collect();
    assert!(
        inputs.len() >= 5,
        "every input is recorded: {}",
        inputs.len()
    );
    assert!(
        !log.contains("hello"),
        "input bytes never reach the evidence log"
    );
}

/// A tiny HTTP/1.1 client for raw answers (status and JSON body).
struct RawHttp {
    addr: String,
}

fn reqwest_like(url: &str) -> RawHttp {
    RawHttp {
        addr: url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned(),
    }
}

impl RawHttp {
    async fn post(&self, path: &str, bearer: Option<&str>, body: &str) -> (u16, Value) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut socket = tokio::net::TcpStream::connect(&self.addr).await.unwrap();
        let auth = bearer.map_or_else(String::new, |t| format!("authorization: Bearer {t}\r\n"));
        let request = format!(
            "POST {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\n{auth}\
             content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        socket.write_all(request.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        tokio::time::timeout(HANG_GUARD, socket.read_to_end(&mut answer))
            .await
            .unwrap()
            .unwrap();
        let text = String::from_utf8_lossy(&answer);
        let status = text[9..12].parse().unwrap();
        let json = text
            .split_once("\r\n\r\n")
            .and_then(|(_, body)| serde_json::from_str(body).ok())
            .unwrap_or(Value::Null);
        (status, json)
    }
}
