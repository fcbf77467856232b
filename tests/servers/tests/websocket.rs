//! The WebSocket echo fixture, proven with tokio-tungstenite's own client: echoes, the `ping:`
//! and `close:` commands, client pings and closes, the size limit's close `1009`, subprotocol
//! negotiation and a refused handshake.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use bytes::Bytes;
use ep_test_servers::websocket::{
    CLOSE_TOO_BIG, WsClose, WsEchoServer, WsFrame, WsFrameKind, WsOptions,
};
use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// Fails a hung test instead of letting it sit until CI's limit.
const HANG_GUARD: Duration = Duration::from_secs(30);

type Client = WebSocketStream<TcpStream>;

async fn connect(server: &WsEchoServer, path: &str, protocols: Option<&str>) -> Client {
    let mut request = format!("ws://{}{path}", server.addr())
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("x-test", "yes".parse().unwrap());
    if let Some(protocols) = protocols {
        request
            .headers_mut()
            .insert("sec-websocket-protocol", protocols.parse().unwrap());
    }
    let tcp = TcpStream::connect(server.addr()).await.unwrap();
    let (ws, _) = timeout(HANG_GUARD, tokio_tungstenite::client_async(request, tcp))
        .await
        .unwrap()
        .unwrap();
    ws
}

async fn next(ws: &mut Client) -> Option<Result<Message, WsError>> {
    timeout(HANG_GUARD, ws.next()).await.unwrap()
}

#[tokio::test]
async fn text_and_binary_messages_are_echoed_and_recorded() {
    let server = WsEchoServer::start(WsOptions::new()).unwrap();
    let mut ws = connect(&server, "/echo?room=1", None).await;

    ws.send(Message::text("hello")).await.unwrap();
    assert_eq!(
        next(&mut ws).await.unwrap().unwrap(),
        Message::text("hello")
    );
    ws.send(Message::binary(vec![1_u8, 2, 3])).await.unwrap();
    assert_eq!(
        next(&mut ws).await.unwrap().unwrap(),
        Message::binary(vec![1_u8, 2, 3])
    );

    let connections = server
        .wait_until(|connections| connections.first().is_some_and(|c| c.frames.len() == 2))
        .await;
    let connection = &connections[0];
    assert_eq!(connection.path, "/echo?room=1");
    assert_eq!(connection.headers["x-test"], "yes");
    assert_eq!(connection.subprotocol, None);
    assert_eq!(
        connection.frames,
        [
            WsFrame {
                kind: WsFrameKind::Text,
                len: 5
            },
            WsFrame {
                kind: WsFrameKind::Binary,
                len: 3
            },
        ]
    );
    assert!(server.url().starts_with("ws://127.0.0.1:"));
}

#[tokio::test]
async fn the_ping_command_sends_a_ping_and_records_the_clients_pong() {
    let server = WsEchoServer::start(WsOptions::new()).unwrap();
    let mut ws = connect(&server, "/echo", None).await;

    ws.send(Message::text("ping:are you there")).await.unwrap();
    assert_eq!(
        next(&mut ws).await.unwrap().unwrap(),
        Message::Ping(Bytes::from_static(b"are you there"))
    );
    // tungstenite queued the Pong; flushing sends it.
    ws.flush().await.unwrap();

    let connections = server
        .wait_until(|connections| connections.first().is_some_and(|c| !c.pongs.is_empty()))
        .await;
    assert_eq!(connections[0].pongs, [Bytes::from_static(b"are you there")]);
    assert!(connections[0].frames.contains(&WsFrame {
        kind: WsFrameKind::Pong,
        len: 13
    }));
}

#[tokio::test]
async fn a_client_ping_is_answered_with_a_pong() {
    let server = WsEchoServer::start(WsOptions::new()).unwrap();
    let mut ws = connect(&server, "/echo", None).await;
    ws.send(Message::Ping(Bytes::from_static(b"hb")))
        .await
        .unwrap();
    assert_eq!(
        next(&mut ws).await.unwrap().unwrap(),
        Message::Pong(Bytes::from_static(b"hb"))
    );
    let connections = server
        .wait_until(|connections| connections.first().is_some_and(|c| !c.frames.is_empty()))
        .await;
    assert_eq!(connections[0].frames[0].kind, WsFrameKind::Ping);
}

#[tokio::test]
async fn the_close_command_closes_with_that_code_and_reason() {
    let server = WsEchoServer::start(WsOptions::new()).unwrap();
    let mut ws = connect(&server, "/echo", None).await;

    ws.send(Message::text("close:4001:bye: now")).await.unwrap();
    match next(&mut ws).await.unwrap().unwrap() {
        Message::Close(Some(frame)) => {
            assert_eq!(u16::from(frame.code), 4001);
            assert_eq!(frame.reason.as_str(), "bye: now");
        }
        other => panic!("expected a Close, got {other:?}"),
    }
    // The client's automatic Close reply completes the handshake; the stream then ends.
    assert!(next(&mut ws).await.is_none());

    let connections = server
        .wait_until(|connections| connections.first().is_some_and(|c| c.ended))
        .await;
    assert_eq!(
        connections[0].close,
        Some(WsClose {
            code: 4001,
            reason: "bye: now".to_owned()
        })
    );
    assert_eq!(connections[0].error, None);
}

#[tokio::test]
async fn a_close_sent_by_the_client_is_recorded() {
    let server = WsEchoServer::start(WsOptions::new()).unwrap();
    let mut ws = connect(&server, "/echo", None).await;
    ws.close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "done".into(),
    }))
    .await
    .unwrap();
    // The server's Close reply arrives, then the stream ends.
    while let Some(message) = next(&mut ws).await {
        if message.is_err() {
            break;
        }
    }
    let connections = server
        .wait_until(|connections| connections.first().is_some_and(|c| c.ended))
        .await;
    assert_eq!(
        connections[0].close,
        Some(WsClose {
            code: 1000,
            reason: "done".to_owned()
        })
    );
}

#[tokio::test]
async fn a_frame_over_the_limit_is_refused_with_close_1009() {
    let server = WsEchoServer::start(WsOptions::new().max_frame_size(1024)).unwrap();
    let mut ws = connect(&server, "/echo", None).await;

    ws.send(Message::binary(vec![0_u8; 512])).await.unwrap();
    assert!(matches!(next(&mut ws).await, Some(Ok(Message::Binary(_)))));

    ws.send(Message::binary(vec![0_u8; 64 * 1024]))
        .await
        .unwrap();
    match next(&mut ws).await.unwrap().unwrap() {
        Message::Close(Some(frame)) => assert_eq!(u16::from(frame.code), CLOSE_TOO_BIG),
        other => panic!("expected close 1009, got {other:?}"),
    }
    drop(ws);

    let connections = server
        .wait_until(|connections| connections.first().is_some_and(|c| c.ended))
        .await;
    let error = connections[0].error.as_deref().unwrap();
    assert!(error.contains("Space limit exceeded"), "{error}");
}

#[tokio::test]
async fn a_message_over_the_limit_is_refused_with_close_1009() {
    let server = WsEchoServer::start(WsOptions::new().max_message_size(100)).unwrap();
    let mut ws = connect(&server, "/echo", None).await;
    ws.send(Message::text("x".repeat(101))).await.unwrap();
    match next(&mut ws).await.unwrap().unwrap() {
        Message::Close(Some(frame)) => assert_eq!(u16::from(frame.code), CLOSE_TOO_BIG),
        other => panic!("expected close 1009, got {other:?}"),
    }
}

#[tokio::test]
async fn the_first_offered_accepted_subprotocol_is_chosen() {
    let server = WsEchoServer::start(
        WsOptions::new()
            .subprotocol("graphql-ws")
            .subprotocol("jsonrpc"),
    )
    .unwrap();
    let mut request = server.url().into_client_request().unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "mqtt, jsonrpc, graphql-ws".parse().unwrap(),
    );
    let tcp = TcpStream::connect(server.addr()).await.unwrap();
    let (mut ws, response) = tokio_tungstenite::client_async(request, tcp).await.unwrap();
    assert_eq!(response.headers()["sec-websocket-protocol"], "jsonrpc");
    ws.send(Message::text("still echoes")).await.unwrap();
    assert_eq!(
        next(&mut ws).await.unwrap().unwrap(),
        Message::text("still echoes")
    );
    assert_eq!(
        server.connections()[0].subprotocol.as_deref(),
        Some("jsonrpc")
    );

    // Nothing accepted offered: no subprotocol, and the connection still works.
    let mut ws = connect(&server, "/echo", None).await;
    ws.send(Message::text("plain")).await.unwrap();
    assert_eq!(
        next(&mut ws).await.unwrap().unwrap(),
        Message::text("plain")
    );
    assert_eq!(server.connections()[1].subprotocol, None);
}

#[tokio::test]
async fn a_refusing_server_answers_the_upgrade_with_a_plain_status() {
    let server = WsEchoServer::refuse(403).unwrap();
    let request = format!("ws://{}/guarded", server.addr())
        .into_client_request()
        .unwrap();
    let tcp = TcpStream::connect(server.addr()).await.unwrap();
    match tokio_tungstenite::client_async(request, tcp).await {
        Err(WsError::Http(response)) => assert_eq!(response.status(), 403),
        Err(other) => panic!("expected an HTTP refusal, got {other}"),
        Ok(_) => panic!("the upgrade must be refused"),
    }
    let connections = server.connections();
    assert_eq!(connections.len(), 1);
    assert_eq!(connections[0].path, "/guarded");
}

#[tokio::test]
async fn refusing_with_a_number_that_is_no_status_is_an_error() {
    let error = WsEchoServer::refuse(1_000).unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
}
