//! Graceful shutdown with executions in flight: the drain waits for them; past the drain
//! timeout they are cancelled with a recorded outcome; the evidence chain verifies afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use support::*;

/// A request sent on its own HTTP/1.1 connection, opened now (so it works after the listener
/// closes).
struct Connection {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
}

impl Connection {
    async fn open(ts: &TestServer) -> Self {
        let stream = tokio::net::TcpStream::connect(ts.server.local_addr())
            .await
            .unwrap();
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(connection);
        Self { sender }
    }

    async fn send(&mut self, method: &str, path: &str, body: Option<String>) -> (u16, String) {
        guarded(self.sender.ready()).await.unwrap();
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "test");
        if body.is_some() {
            builder = builder.header("content-type", "application/json");
        }
        let request = builder
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .unwrap();
        let response = guarded(self.sender.send_request(request)).await.unwrap();
        let status = response.status().as_u16();
        let bytes = guarded(response.into_body().collect())
            .await
            .unwrap()
            .to_bytes();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }
}

fn held() -> String {
    ep_contracts::dump(&governed("process", json!({"hold": true})))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_waits_for_executions_in_flight_and_refuses_new_ones() {
    let mut ts = TestServer::start(Setup::Full).await;
    let mut probe = Connection::open(&ts).await;
    let (status, _) = probe.send("GET", "/healthz", None).await;
    assert_eq!(status, 200);

    let http = ts.client();
    let in_flight: Vec<_> = (0..4)
        .map(|_| {
            let http = http.clone();
            tokio::spawn(async move {
                http.post("/v1/execute", &governed("process", json!({"hold": true})))
                    .await
            })
        })
        .collect();
    for _ in 0..4 {
        guarded(ts.lane.started.recv()).await.unwrap();
    }

    let server = ts.server;
    let stopping = tokio::spawn(server.shutdown(Duration::from_secs(600)));
    // Draining: health says so, and new executions are refused.
    guarded(async {
        loop {
            let (status, body) = probe.send("GET", "/healthz", None).await;
            if status == 503 {
                assert_eq!(
                    serde_json::from_str::<Value>(&body).unwrap()["status"],
                    "draining"
                );
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    let (status, body) = probe.send("POST", "/v1/execute", Some(held())).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["error"]["code"],
        "shutting_down"
    );
    let (status, _) = probe.send("POST", "/v1/stream", Some(held())).await;
    assert_eq!(status, 503);

    // Let the executions finish: every one succeeds.
    ts.lane.release.notify_waiters();
    for task in in_flight {
        let reply = guarded(task).await.unwrap();
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    let report = guarded(stopping).await.unwrap();
    assert_eq!(
        (report.in_flight, report.drained, report.cancelled),
        (4, 4, 0)
    );
    assert_eq!(report.flush_error, None);

    let records = read_chain(&ts.evidence);
    let count = |kind: &str| records.iter().filter(|r| record_type(r) == kind).count();
    assert_eq!(count("execution.started"), 4);
    assert_eq!(count("execution.completed"), 4);
    assert_eq!(count("execution.cancelled"), 0);
    drop(ts.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executions_that_outlive_the_drain_are_cancelled_with_a_recorded_outcome() {
    let mut ts = TestServer::start(Setup::Full).await;
    let http = ts.client();
    let unary: Vec<_> = (0..3)
        .map(|_| {
            let http = http.clone();
            tokio::spawn(async move {
                http.post("/v1/execute", &governed("process", json!({"hold": true})))
                    .await
            })
        })
        .collect();
    let stream = {
        let http = http.clone();
        tokio::spawn(async move {
            http.post("/v1/stream", &governed("process", json!({"hold": true})))
                .await
        })
    };
    for _ in 0..4 {
        guarded(ts.lane.started.recv()).await.unwrap();
    }
    // The lane never finishes on its own: the drain runs out.
    let report = guarded(ts.server.shutdown(Duration::from_millis(50))).await;
    assert_eq!(report.in_flight, 4);
    assert_eq!(report.drained, 0);
    assert_eq!(report.cancelled, 3);
    assert_eq!(report.streams_cut, 1);
    assert_eq!(report.flush_error, None);

    for task in unary {
        let reply = guarded(task).await.unwrap();
        assert_eq!(reply.status, 409, "{}", reply.body);
        assert_eq!(reply.json()["error"]["failure_class"], "cancellation");
    }
    let reply = guarded(stream).await.unwrap();
    assert_eq!(reply.status, 200);
    let frames = parse_sse(&reply.body);
    let last = frames.last().unwrap();
    assert_eq!(last.event, "result");
    assert_eq!(last.data["status"], "failed");
    assert_eq!(last.data["error"]["failure_class"], "cancellation");
    assert_eq!(last.data["error"]["details"]["cause"], "shutdown");

    // Every execution has a recorded outcome and the chain verifies.
    let records = read_chain(&ts.evidence);
    let of =
        |kind: &str| -> Vec<&Value> { records.iter().filter(|r| record_type(r) == kind).collect() };
    // Streams are executions too: four started, four ended.
    assert_eq!(of("execution.started").len(), 4);
    assert_eq!(of("execution.completed").len(), 4);
    for completed in of("execution.completed") {
        assert_eq!(record_payload(completed)["status"], "failed");
    }
    // Causal order, for every execution: its cancel is written before its completion.
    for completed in of("execution.completed") {
        let reference = &completed["evidence"]["execution_ref"]["ref"];
        let seq_of = |kind: &str| {
            records
                .iter()
                .find(|r| {
                    record_type(r) == kind && &r["evidence"]["execution_ref"]["ref"] == reference
                })
                .map(|r| r["seq"].as_u64().unwrap())
                .unwrap()
        };
        assert!(
            seq_of("execution.cancelled") < seq_of("execution.completed"),
            "{reference}: completed before cancelled"
        );
    }
    let cancelled = of("execution.cancelled");
    assert_eq!(cancelled.len(), 4, "{records:?}");
    // The host cancelled all four (three unary, one stream), and says so in each record.
    for record in &cancelled {
        assert_eq!(record_payload(record)["cause"], "shutdown", "{record}");
    }
}
