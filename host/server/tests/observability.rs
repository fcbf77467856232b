//! JSON logs carry the request and execution spans: request id, route and status; lane,
//! execution ref and target of each execution.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use support::*;

/// A log writer into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn json_logs_carry_the_request_and_execution_spans() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_span_list(true)
        .with_env_filter("ep_server=debug")
        .with_writer(move || writer.clone())
        .init();

    let ts = TestServer::start(Setup::Full).await;
    let http = ts.client();
    let reply = http
        .send(
            http::Method::POST,
            "/v1/execute",
            &[
                ("content-type", "application/json"),
                ("x-request-id", "req-from-the-caller"),
            ],
            Some(&ep_contracts::dump(&governed("process", json!({})))),
        )
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("x-request-id"), Some("req-from-the-caller"));
    let reference = reply.json()["execution_ref"]["ref"]
        .as_str()
        .unwrap()
        .to_owned();
    ts.finish().await;

    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ended = lines
        .iter()
        .find(|l| l["fields"]["message"] == "execution ended")
        .unwrap_or_else(|| panic!("no execution log line in:\n{text}"));
    // Each field once: the execution span appears as `span` and in `spans`, nothing more.
    let raw = text
        .lines()
        .find(|l| l.contains("execution ended"))
        .unwrap();
    for field in [
        "\"execution_ref\":",
        "\"target\":\"target-process\"",
        "\"status\":",
    ] {
        assert_eq!(raw.matches(field).count(), 2, "{field} in {raw}");
    }
    let spans = ended["spans"].as_array().unwrap();
    let request = spans.iter().find(|s| s["name"] == "request").unwrap();
    assert_eq!(request["request_id"], "req-from-the-caller");
    assert_eq!(request["path"], "/v1/execute");
    let execution = &ended["span"];
    assert_eq!(execution["name"], "execution");
    assert_eq!(execution["lane"], "process");
    assert_eq!(execution["execution_ref"], reference.as_str());
    assert_eq!(execution["target"], "target-process");
    assert_eq!(execution["status"], "succeeded");
}
