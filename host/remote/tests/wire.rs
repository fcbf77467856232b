//! The remote client against hand-written servers that misbehave in the ways a network does:
//! nobody listening, a connection closed mid-answer, answers that are not results, streams cut
//! before their result frame, error envelopes. No node or real server is needed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use ep_contracts::Contract;
use ep_contracts::boundary::{AdmissionRequest, ExecutionEvent, ExecutionRef, ResultStatus};
use ep_node::{RuntimeClient, RuntimeError};
use ep_remote::{RemoteError, RemoteRuntimeClient, StreamItem};
use futures::StreamExt;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// Hang guard only: generous, never a performance assertion.
const HANG_GUARD: Duration = Duration::from_secs(10);

/// Reads one request head and body (by content-length) and returns the head.
async fn read_request(socket: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = socket.read(&mut chunk).await.unwrap_or(0);
        if n == 0 {
            return String::from_utf8_lossy(&buf).into_owned();
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                return text;
            }
        }
    }
}

/// A server that answers every connection's first request with `answer` (raw bytes), then
/// closes; it reports each request head it read.
async fn raw_server(answer: Vec<u8>) -> (String, mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let answer = answer.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                let head = read_request(&mut socket).await;
                let _ = tx.send(head);
                let _ = socket.write_all(&answer).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    (url, rx)
}

fn http(status: &str, content_type: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn request() -> AdmissionRequest {
    let mut request = AdmissionRequest::new("process");
    request.request_id = "req-wire".to_owned();
    request
}

fn failure_class(result: &ep_contracts::boundary::ExecutionResult) -> String {
    result.error.as_ref().unwrap()["failure_class"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn execute_against_nobody_listening_is_a_transport_failure() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let client = RemoteRuntimeClient::new(&url).unwrap();
    let request = request();
    let provenance = request.provenance.clone();
    let result = client.execute(request).await;
    assert_eq!(result.status, ResultStatus::Failed);
    assert_eq!(failure_class(&result), "transport_failed");
    let reason = result.error.as_ref().unwrap()["reason"].as_str().unwrap();
    assert!(reason.contains("cannot reach"), "{reason}");
    assert_eq!(result.provenance, provenance);
    assert!(matches!(
        client.describe().await,
        Err(RuntimeError::Transport(_))
    ));
    assert!(matches!(
        client.stream(AdmissionRequest::new("process")).await,
        Err(RuntimeError::Transport(_))
    ));
}

#[tokio::test]
async fn a_connection_closed_before_the_answer_is_a_remote_disconnect() {
    let (url, _heads) = raw_server(Vec::new()).await;
    let client = RemoteRuntimeClient::new(&url).unwrap();
    let result = client.execute(request()).await;
    assert_eq!(result.status, ResultStatus::Failed);
    assert_eq!(failure_class(&result), "remote_disconnect");
}

#[tokio::test]
async fn a_body_cut_short_is_a_remote_disconnect() {
    let answer = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 500\r\n\r\n{\"execution_ref\":".to_vec();
    let (url, _heads) = raw_server(answer).await;
    let result = RemoteRuntimeClient::new(&url)
        .unwrap()
        .execute(request())
        .await;
    assert_eq!(failure_class(&result), "remote_disconnect");
}

#[tokio::test]
async fn an_answer_that_is_not_a_result_is_a_transport_failure_naming_it() {
    let envelope =
        json!({"error": {"code": "shutting_down", "message": "draining", "details": {}}});
    let (url, _heads) = raw_server(http(
        "503 Service Unavailable",
        "application/json",
        &envelope.to_string(),
    ))
    .await;
    let result = RemoteRuntimeClient::new(&url)
        .unwrap()
        .execute(request())
        .await;
    assert_eq!(result.status, ResultStatus::Failed);
    assert_eq!(failure_class(&result), "transport_failed");
    let error = result.error.unwrap();
    assert_eq!(error["details"]["code"], "shutting_down");
    assert_eq!(error["details"]["http_status"], 503);
    assert!(error["reason"].as_str().unwrap().contains("draining"));

    let (url, _heads) = raw_server(http("502 Bad Gateway", "text/html", "<h1>proxy</h1>")).await;
    let result = RemoteRuntimeClient::new(&url)
        .unwrap()
        .execute(request())
        .await;
    assert_eq!(failure_class(&result), "transport_failed");
    assert!(
        result.error.unwrap()["reason"]
            .as_str()
            .unwrap()
            .contains("proxy")
    );
}

#[tokio::test]
async fn a_result_body_is_returned_whatever_the_status() {
    let failed = json!({"contract_version": 1, "execution_ref": {"contract_version": 1, "ref": "exec-1-2"},
        "status": "failed", "error": {"failure_class": "timeout", "reason": "slow"}});
    let (url, mut heads) = raw_server(http(
        "504 Gateway Timeout",
        "application/json",
        &failed.to_string(),
    ))
    .await;
    let client = RemoteRuntimeClient::builder(&url)
        .default_header("x-tenant", "tenant-1")
        .build()
        .unwrap();
    let result = client.execute(request()).await;
    assert_eq!(result.status, ResultStatus::Failed);
    assert_eq!(result.execution_ref.as_str(), "exec-1-2");
    assert_eq!(failure_class(&result), "timeout");
    let head = heads.recv().await.unwrap().to_ascii_lowercase();
    assert!(head.starts_with("post /v1/execute http/1.1"), "{head}");
    assert!(head.contains("content-type: application/json"), "{head}");
    assert!(head.contains("x-tenant: tenant-1"), "{head}");
    assert!(head.contains("\"request_id\":\"req-wire\""), "{head}");
}

#[tokio::test]
async fn the_request_timeout_ends_execute_with_a_timeout_failure() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let client = RemoteRuntimeClient::builder(&url)
        .request_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let result = tokio::time::timeout(HANG_GUARD, client.execute(request()))
        .await
        .unwrap();
    assert_eq!(failure_class(&result), "timeout");
}

fn event_frame(seq: u64) -> String {
    let event = ExecutionEvent::new(
        ExecutionRef::from_string("exec-1-1"),
        "fake.chunk",
        json!({"seq": seq}).as_object().cloned().unwrap(),
    );
    format!(
        "event: execution_event\r\ndata: {}\r\n\r\n",
        event.to_value()
    )
}

fn sse_answer(body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\nconnection: close\r\n\r\n{body}"
    )
    .into_bytes()
}

#[tokio::test]
async fn a_stream_yields_events_then_ends_at_its_result_frame() {
    let result = json!({"contract_version": 1, "execution_ref": {"contract_version": 1, "ref": "exec-1-1"},
                        "status": "succeeded"});
    let body = format!(
        ": keep-alive\n\n{}{}event: result\ndata: {result}\n\n{}",
        event_frame(0),
        event_frame(1),
        event_frame(2)
    );
    let (url, _heads) = raw_server(sse_answer(&body)).await;
    let client = RemoteRuntimeClient::new(&url).unwrap();
    let items: Vec<StreamItem> = client
        .stream_items(request())
        .await
        .unwrap()
        .collect()
        .await;
    assert_eq!(items.len(), 3, "{items:?}");
    assert!(matches!(&items[2], StreamItem::Result(r) if r.status == ResultStatus::Succeeded));
    let events: Vec<_> = client.stream(request()).await.unwrap().collect().await;
    let seqs: Vec<_> = events.iter().map(|e| e.payload["seq"].clone()).collect();
    assert_eq!(
        seqs,
        [json!(0), json!(1)],
        "frames after the result are ignored"
    );
}

#[tokio::test]
async fn a_stream_cut_before_its_result_ends_after_the_events_it_had() {
    let body = format!("{}event: execution_event\ndata: {{\"trunc", event_frame(0));
    let (url, _heads) = raw_server(sse_answer(&body)).await;
    let client = RemoteRuntimeClient::new(&url).unwrap();
    let items: Vec<StreamItem> = client
        .stream_items(request())
        .await
        .unwrap()
        .collect()
        .await;
    assert_eq!(items.len(), 2, "{items:?}");
    assert!(matches!(&items[0], StreamItem::Event(_)));
    assert!(matches!(&items[1], StreamItem::Cut(_)));
    let events: Vec<_> = tokio::time::timeout(
        HANG_GUARD,
        client.stream(request()).await.unwrap().collect::<Vec<_>>(),
    )
    .await
    .unwrap();
    assert_eq!(events.len(), 1);
}

#[tokio::test]
async fn a_frame_that_is_not_an_event_cuts_the_stream() {
    let body = format!(
        "{}event: execution_event\ndata: [1,2]\n\n{}",
        event_frame(0),
        event_frame(1)
    );
    let (url, _heads) = raw_server(sse_answer(&body)).await;
    let items: Vec<StreamItem> = RemoteRuntimeClient::new(&url)
        .unwrap()
        .stream_items(request())
        .await
        .unwrap()
        .collect()
        .await;
    assert_eq!(items.len(), 2);
    assert!(matches!(&items[1], StreamItem::Cut(why) if why.contains("not an event")));
}

#[tokio::test]
async fn a_stream_refusal_is_a_rejection() {
    let refusal = json!({
        "error": {"code": "not_supported", "message": "unary", "details": {}},
        "rejection": {"contract_version": 1, "request_id": "req-wire", "reason": "not_supported",
                      "message": "unary", "details": {}}
    });
    let (url, mut heads) = raw_server(http(
        "501 Not Implemented",
        "application/json",
        &refusal.to_string(),
    ))
    .await;
    let client = RemoteRuntimeClient::new(&url).unwrap();
    let Err(RuntimeError::Rejected(rejection)) = client.stream(request()).await else {
        panic!("expected a rejection");
    };
    assert_eq!(rejection.reason, "not_supported");
    let head = heads.recv().await.unwrap().to_ascii_lowercase();
    assert!(head.starts_with("post /v1/stream http/1.1"), "{head}");
    assert!(head.contains("accept: text/event-stream"), "{head}");
}

#[tokio::test]
async fn dropping_a_stream_closes_its_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (closed_tx, mut closed_rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        read_request(&mut socket).await;
        socket
            .write_all(&sse_answer(&event_frame(0)))
            .await
            .unwrap();
        // Wait until the client goes away: read returns 0 (or an error) once it closes.
        let mut byte = [0u8; 1];
        let _ = socket.read(&mut byte).await;
        let _ = closed_tx.send(());
    });
    let client = RemoteRuntimeClient::new(&url).unwrap();
    let mut stream = client.stream(request()).await.unwrap();
    assert!(stream.next().await.is_some());
    drop(stream);
    tokio::time::timeout(HANG_GUARD, closed_rx.recv())
        .await
        .expect("the server saw the connection close")
        .unwrap();
}

#[tokio::test]
async fn cancel_maps_unknown_refs_and_other_codes() {
    let unknown =
        json!({"error": {"code": "unknown_execution_ref", "message": "no", "details": {}}});
    let (url, mut heads) = raw_server(http(
        "404 Not Found",
        "application/json",
        &unknown.to_string(),
    ))
    .await;
    let client = RemoteRuntimeClient::new(&url).unwrap();
    let error = client
        .cancel(&ExecutionRef::from_string("exec/1 2"))
        .await
        .unwrap_err();
    assert!(matches!(&error, RuntimeError::UnknownExecutionRef(r) if r == "exec/1 2"));
    let head = heads.recv().await.unwrap();
    assert!(
        head.starts_with("POST /v1/executions/exec%2F1%202/cancel HTTP/1.1"),
        "{head}"
    );

    let draining = json!({"error": {"code": "shutting_down", "message": "draining"}});
    let (url, _heads) = raw_server(http(
        "503 Service Unavailable",
        "application/json",
        &draining.to_string(),
    ))
    .await;
    let error = RemoteRuntimeClient::new(&url)
        .unwrap()
        .cancel(&ExecutionRef::from_string("exec-1-1"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, RuntimeError::Remote { status: 503, ref code, .. } if code == "shutting_down")
    );
}

#[tokio::test]
async fn operator_calls_send_the_bearer_token_and_surface_api_errors() {
    let (url, mut heads) = raw_server(http(
        "200 OK",
        "application/json",
        r#"{"lane_id":"echo","from_digest":"sha256:b","to_digest":"sha256:a"}"#,
    ))
    .await;
    let client = RemoteRuntimeClient::builder(&url)
        .operator_token("s3cret")
        .build()
        .unwrap();
    let rollback = client.rollback("echo").await.unwrap();
    assert_eq!(rollback.to_digest, "sha256:a");
    let head = heads.recv().await.unwrap().to_ascii_lowercase();
    assert!(head.contains("authorization: bearer s3cret"), "{head}");

    let unauthorized = json!({"error": {"code": "unauthorized", "message": "token"}});
    let (url, mut heads) = raw_server(http(
        "401 Unauthorized",
        "application/json",
        &unauthorized.to_string(),
    ))
    .await;
    let client = RemoteRuntimeClient::new(&url).unwrap();
    let Err(RemoteError::Api(error)) = client.lanes().await else {
        panic!("expected an API error");
    };
    assert_eq!((error.status, error.code.as_str()), (401, "unauthorized"));
    let head = heads.recv().await.unwrap().to_ascii_lowercase();
    assert!(!head.contains("authorization"), "{head}");
    // Unary non-operator calls never carry the token.
    let (url, mut heads) = raw_server(http("200 OK", "application/json", "{}")).await;
    let client = RemoteRuntimeClient::builder(&url)
        .operator_token("s3cret")
        .build()
        .unwrap();
    let _ = client.describe().await;
    let head = heads.recv().await.unwrap().to_ascii_lowercase();
    assert!(!head.contains("authorization"), "{head}");
}

#[tokio::test]
async fn the_connection_closes_once_the_result_arrived_even_if_the_stream_is_kept() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (closed_tx, mut closed_rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        read_request(&mut socket).await;
        let result = json!({"contract_version": 1, "execution_ref": {"contract_version": 1, "ref": "exec-1-1"},
                            "status": "succeeded"});
        let body = format!("{}event: result\ndata: {result}\n\n", event_frame(0));
        // Chunked, so the answer itself never ends the connection.
        let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
        let chunk = format!("{:x}\r\n{body}\r\n", body.len());
        socket.write_all(head.as_bytes()).await.unwrap();
        socket.write_all(chunk.as_bytes()).await.unwrap();
        let mut byte = [0u8; 1];
        let _ = socket.read(&mut byte).await;
        let _ = closed_tx.send(());
    });
    let client = RemoteRuntimeClient::new(&url).unwrap();
    let mut items = client.stream_items(request()).await.unwrap();
    assert!(matches!(items.next().await, Some(StreamItem::Event(_))));
    assert!(matches!(items.next().await, Some(StreamItem::Result(_))));
    tokio::time::timeout(HANG_GUARD, closed_rx.recv())
        .await
        .expect("the connection closed while the stream is still held")
        .unwrap();
    assert!(items.next().await.is_none());
}
