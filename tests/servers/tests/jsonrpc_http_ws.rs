//! The JSON-RPC HTTP and WebSocket fixtures, proven with a plain hyper client and
//! tokio-tungstenite: echo and `fail` answers, a mismatched id, malformed input answered as
//! JSON-RPC says, and the chatty peer that waits for the client's reply before answering.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use ep_test_servers::jsonrpc::{
    FAIL_CODE, FAIL_MESSAGE, JsonRpcBehaviour, JsonRpcHttpServer, JsonRpcWsServer, PEER_METHOD,
    PROGRESS_METHOD,
};
use futures::{SinkExt, StreamExt};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

/// Fails a hung test instead of letting it sit until CI's limit.
const HANG_GUARD: Duration = Duration::from_secs(30);

/// Sends `body` with `method` and returns the status, content type and body.
async fn http(addr: SocketAddr, method: &str, body: &str) -> (StatusCode, Option<String>, Bytes) {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let request = Request::builder()
        .method(method)
        .uri("/rpc?v=1")
        .header("host", addr.to_string())
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    let response = timeout(HANG_GUARD, sender.send_request(request))
        .await
        .unwrap()
        .unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|value| value.to_str().unwrap().to_owned());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, content_type, body)
}

async fn call(addr: SocketAddr, request: &Value) -> Value {
    let (status, content_type, body) = http(addr, "POST", &request.to_string()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type.as_deref(), Some("application/json"));
    serde_json::from_slice(&body).unwrap()
}

#[tokio::test]
async fn http_requests_are_echoed_with_their_method_and_recorded() {
    let server = JsonRpcHttpServer::start(JsonRpcBehaviour::Echo).unwrap();
    let request =
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"a": [1, 2]}});
    let answer = call(server.addr(), &request).await;
    assert_eq!(
        answer,
        json!({"jsonrpc": "2.0", "id": 1, "result": {"echo": {"a": [1, 2]}, "method": "tools/call"}})
    );
    // No params: echoed as null.
    let answer = call(
        server.addr(),
        &json!({"jsonrpc": "2.0", "id": "s", "method": "ping"}),
    )
    .await;
    assert_eq!(answer["id"], "s");
    assert_eq!(answer["result"]["echo"], Value::Null);

    let requests = server.wait_for_requests(2).await;
    assert_eq!(requests[0].method, "POST");
    assert_eq!(requests[0].path_and_query, "/rpc?v=1");
    assert_eq!(requests[0].headers["content-type"], "application/json");
    assert_eq!(requests[0].json(), Some(request));
    assert!(server.url().ends_with("/rpc"));
}

#[tokio::test]
async fn http_method_fail_is_an_error_response() {
    let server = JsonRpcHttpServer::start(JsonRpcBehaviour::Echo).unwrap();
    let answer = call(
        server.addr(),
        &json!({"jsonrpc": "2.0", "id": 9, "method": "fail", "params": {}}),
    )
    .await;
    assert_eq!(
        answer,
        json!({"jsonrpc": "2.0", "id": 9, "error": {"code": FAIL_CODE, "message": FAIL_MESSAGE}})
    );
    assert_eq!(FAIL_CODE, -32001);
}

#[tokio::test]
async fn http_mismatched_id_answers_with_another_id() {
    let server = JsonRpcHttpServer::start(JsonRpcBehaviour::MismatchedId).unwrap();
    for id in [json!(1), json!("abc")] {
        let answer = call(
            server.addr(),
            &json!({"jsonrpc": "2.0", "id": id, "method": "echo"}),
        )
        .await;
        assert_ne!(answer["id"], id);
        assert!(answer.get("result").is_some());
    }
}

#[tokio::test]
async fn http_malformed_input_is_answered_as_json_rpc_says() {
    let server = JsonRpcHttpServer::start(JsonRpcBehaviour::Echo).unwrap();
    let (status, _, body) = http(server.addr(), "POST", "{not json").await;
    assert_eq!(status, StatusCode::OK);
    let answer: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(answer["error"]["code"], -32700);
    assert_eq!(answer["id"], Value::Null);

    let (_, _, body) = http(server.addr(), "POST", "[]").await;
    let answer: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(answer["error"]["code"], -32600);

    let (_, _, body) = http(server.addr(), "POST", r#"{"jsonrpc":"2.0","id":3}"#).await;
    let answer: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(answer["error"]["code"], -32600);
    assert_eq!(answer["id"], 3);

    // A notification gets no answer; another method is refused.
    let (status, _, body) = http(
        server.addr(),
        "POST",
        r#"{"jsonrpc":"2.0","method":"note"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(body.is_empty());
    let (status, _, _) = http(server.addr(), "GET", "").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(server.requests().len(), 5);
}

#[tokio::test]
async fn http_cannot_be_chatty() {
    let error = JsonRpcHttpServer::start(JsonRpcBehaviour::ChattyFirst).unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
}

type Client = WebSocketStream<TcpStream>;

async fn ws_connect(server: &JsonRpcWsServer) -> Client {
    let tcp = TcpStream::connect(server.addr()).await.unwrap();
    let (ws, _) = tokio_tungstenite::client_async(server.url(), tcp)
        .await
        .unwrap();
    ws
}

async fn ws_send(ws: &mut Client, message: &Value) {
    ws.send(Message::text(message.to_string())).await.unwrap();
}

async fn ws_recv(ws: &mut Client) -> Value {
    loop {
        match timeout(HANG_GUARD, ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            Message::Text(text) => return serde_json::from_str(&text).unwrap(),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn ws_requests_are_echoed_failed_and_recorded() {
    let server = JsonRpcWsServer::start(JsonRpcBehaviour::Echo).unwrap();
    let mut ws = ws_connect(&server).await;
    ws_send(
        &mut ws,
        &json!({"jsonrpc": "2.0", "id": 1, "method": "hello", "params": [1]}),
    )
    .await;
    assert_eq!(
        ws_recv(&mut ws).await,
        json!({"jsonrpc": "2.0", "id": 1, "result": {"echo": [1], "method": "hello"}})
    );
    ws_send(&mut ws, &json!({"jsonrpc": "2.0", "method": "note"})).await;
    ws_send(
        &mut ws,
        &json!({"jsonrpc": "2.0", "id": 2, "method": "fail"}),
    )
    .await;
    let answer = ws_recv(&mut ws).await;
    assert_eq!(answer["id"], 2);
    assert_eq!(answer["error"]["code"], FAIL_CODE);

    let record = server.record();
    assert_eq!(record.handshakes.len(), 1);
    assert_eq!(record.handshakes[0].path, "/rpc");
    assert_eq!(record.received.len(), 3);
    assert_eq!(record.requests.len(), 2);
    assert!(record.peer_replies.is_empty());
}

#[tokio::test]
async fn ws_mismatched_id_answers_with_another_id() {
    let server = JsonRpcWsServer::start(JsonRpcBehaviour::MismatchedId).unwrap();
    let mut ws = ws_connect(&server).await;
    ws_send(&mut ws, &json!({"jsonrpc": "2.0", "id": 5, "method": "x"})).await;
    let answer = ws_recv(&mut ws).await;
    assert_ne!(answer["id"], 5);
    assert_eq!(answer["result"]["method"], "x");
}

#[tokio::test]
async fn ws_chatty_peer_answers_only_after_the_client_replied_to_its_request() {
    let server = JsonRpcWsServer::start(JsonRpcBehaviour::ChattyFirst).unwrap();
    let mut ws = ws_connect(&server).await;
    ws_send(
        &mut ws,
        &json!({"jsonrpc": "2.0", "id": 7, "method": "work", "params": {"n": 1}}),
    )
    .await;

    let notification = ws_recv(&mut ws).await;
    assert_eq!(notification["method"], PROGRESS_METHOD);
    assert!(notification.get("id").is_none());
    assert_eq!(notification["params"]["request"], 7);
    let peer_request = ws_recv(&mut ws).await;
    assert_eq!(
        peer_request,
        json!({"jsonrpc": "2.0", "id": "peer-1", "method": PEER_METHOD, "params": {}})
    );

    // A second request sent before the reply waits its turn.
    ws_send(
        &mut ws,
        &json!({"jsonrpc": "2.0", "id": 8, "method": "more"}),
    )
    .await;
    let reply = json!({"jsonrpc": "2.0", "id": "peer-1", "result": [{"setting": true}]});
    ws_send(&mut ws, &reply).await;

    let answer = ws_recv(&mut ws).await;
    assert_eq!(answer["id"], 7);
    assert_eq!(answer["result"]["echo"], json!({"n": 1}));
    // The reply was recorded before the answer was sent.
    assert_eq!(server.record().peer_replies, [reply]);

    // Then the queued request gets its own round.
    assert_eq!(ws_recv(&mut ws).await["method"], PROGRESS_METHOD);
    let peer_request = ws_recv(&mut ws).await;
    assert_eq!(peer_request["id"], "peer-2");
    ws_send(
        &mut ws,
        &json!({"jsonrpc": "2.0", "id": "peer-2", "error": {"code": 1, "message": "no"}}),
    )
    .await;
    assert_eq!(ws_recv(&mut ws).await["id"], 8);
    assert_eq!(server.record().peer_replies.len(), 2);
}

#[tokio::test]
async fn ws_malformed_input_is_answered_and_binary_frames_close_the_connection() {
    let server = JsonRpcWsServer::start(JsonRpcBehaviour::Echo).unwrap();
    let mut ws = ws_connect(&server).await;
    ws.send(Message::text("{oops")).await.unwrap();
    assert_eq!(ws_recv(&mut ws).await["error"]["code"], -32700);
    ws_send(&mut ws, &json!(42)).await;
    assert_eq!(ws_recv(&mut ws).await["error"]["code"], -32600);

    ws.send(Message::binary(vec![1_u8])).await.unwrap();
    match timeout(HANG_GUARD, ws.next()).await.unwrap() {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(u16::from(frame.code), 1003),
        other => panic!("expected close 1003, got {other:?}"),
    }
}
