//! The SSE fixture, proven with a plain hyper client: scripted frames arrive as sent, a dropped
//! connection is an incomplete body, reconnects are recorded with their `Last-Event-ID`, the
//! script's end answers `204`, and the flood and hold generators do what benchmarks rely on.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use ep_test_servers::sse::{SseConnection, SseScript, SseServer, event};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::timeout;

/// Fails a hung test instead of letting it sit until CI's limit.
const HANG_GUARD: Duration = Duration::from_secs(30);

/// Sends one request on a fresh connection and returns the response head with its body.
async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Response<Incoming> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let request = builder.body(Empty::<Bytes>::new()).unwrap();
    timeout(HANG_GUARD, sender.send_request(request))
        .await
        .unwrap()
        .unwrap()
}

async fn get(addr: SocketAddr, path: &str) -> Response<Incoming> {
    request(addr, "GET", path, &[]).await
}

/// Reads body frames until the body ends (`Ok`) or fails (`Err`, with the frames before it).
async fn frames(response: Response<Incoming>) -> (Vec<Bytes>, Result<(), hyper::Error>) {
    let mut body = response.into_body();
    let mut seen = Vec::new();
    loop {
        match timeout(HANG_GUARD, body.frame()).await.unwrap() {
            None => return (seen, Ok(())),
            Some(Err(error)) => return (seen, Err(error)),
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    seen.push(data);
                }
            }
        }
    }
}

/// Whether a body error is the connection ending mid-body (EOF or reset), not something else.
fn is_cut(error: &hyper::Error) -> bool {
    use std::error::Error as _;
    let io_kind = error
        .source()
        .and_then(|source| source.downcast_ref::<std::io::Error>())
        .map(std::io::Error::kind);
    error.is_incomplete_message()
        || matches!(
            io_kind,
            Some(std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset)
        )
}

fn joined(frames: &[Bytes]) -> String {
    frames
        .iter()
        .map(|frame| String::from_utf8_lossy(frame).into_owned())
        .collect()
}

#[tokio::test]
async fn scripted_frames_arrive_in_order_and_the_body_ends_cleanly() {
    let first = event(Some("1"), Some("tick"), "one");
    let second = event(Some("2"), None, "two\nlines");
    let server = SseServer::start(
        SseScript::new().connection(
            SseConnection::new()
                .chunk(first.clone())
                .chunk_after(Duration::from_millis(20), second.clone()),
        ),
    )
    .unwrap();

    let response = get(server.addr(), "/events").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let (seen, end) = frames(response).await;
    end.unwrap();
    assert_eq!(joined(&seen), format!("{first}{second}"));
    assert!(
        seen.len() >= 2,
        "a delayed chunk is its own frame: {seen:?}"
    );
    assert!(server.url().ends_with("/events"));
    assert!(server.url().starts_with("http://127.0.0.1:"));
}

#[tokio::test]
async fn a_dropped_connection_is_an_incomplete_body_and_the_reconnect_records_last_event_id() {
    let server = SseServer::start(
        SseScript::new()
            .connection(
                SseConnection::new()
                    .chunk(event(Some("1"), None, "before the cut"))
                    .then_drop(),
            )
            .connection(SseConnection::new().chunk(event(Some("2"), None, "after"))),
    )
    .unwrap();

    let (seen, end) = frames(get(server.addr(), "/events?stream=a").await).await;
    assert_eq!(joined(&seen), event(Some("1"), None, "before the cut"));
    let error = end.expect_err("a dropped stream must not end cleanly");
    assert!(is_cut(&error), "unexpected error: {error:?}");

    let response = request(
        server.addr(),
        "GET",
        "/events?stream=a",
        &[("last-event-id", "1"), ("accept", "text/event-stream")],
    )
    .await;
    let (seen, end) = frames(response).await;
    end.unwrap();
    assert_eq!(joined(&seen), event(Some("2"), None, "after"));

    let requests = server.wait_for_requests(2).await;
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].last_event_id, None);
    assert_eq!(requests[1].path_and_query, "/events?stream=a");
    assert_eq!(requests[1].last_event_id.as_deref(), Some("1"));
    assert_eq!(requests[1].accept.as_deref(), Some("text/event-stream"));
    assert_eq!(requests[1].headers["last-event-id"], "1");
}

#[tokio::test]
async fn a_drop_with_no_frames_cuts_right_after_the_head() {
    let server =
        SseServer::start(SseScript::new().connection(SseConnection::new().then_drop())).unwrap();
    let response = get(server.addr(), "/events").await;
    assert_eq!(response.status(), StatusCode::OK);
    let (seen, end) = frames(response).await;
    assert!(seen.is_empty());
    assert!(is_cut(&end.unwrap_err()));
}

#[tokio::test]
async fn past_the_end_of_the_script_every_get_gets_no_content() {
    let server = SseServer::start(
        SseScript::new().connection(SseConnection::new().chunk(event(None, None, "only"))),
    )
    .unwrap();
    let (_, end) = frames(get(server.addr(), "/events").await).await;
    end.unwrap();
    for _ in 0..2 {
        let response = get(server.addr(), "/events").await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
    }
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test]
async fn status_and_content_type_are_scripted() {
    let server = SseServer::start(
        SseScript::new().connection(
            SseConnection::new()
                .status(503)
                .content_type("text/plain")
                .chunk("busy"),
        ),
    )
    .unwrap();
    let response = get(server.addr(), "/events").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["content-type"], "text/plain");
    let (seen, end) = frames(response).await;
    end.unwrap();
    assert_eq!(joined(&seen), "busy");
}

#[tokio::test]
async fn an_invalid_status_is_refused_at_start() {
    let error =
        SseServer::start(SseScript::new().connection(SseConnection::new().status(42))).unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
    assert!(error.to_string().contains("status 42"), "{error}");
}

#[tokio::test]
async fn other_methods_get_405_and_do_not_use_up_the_script() {
    let server = SseServer::start(
        SseScript::new().connection(SseConnection::new().chunk(event(None, None, "x"))),
    )
    .unwrap();
    let response = request(server.addr(), "POST", "/events", &[]).await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    let response = get(server.addr(), "/events").await;
    assert_eq!(response.status(), StatusCode::OK);
    let requests = server.requests();
    assert_eq!(requests[0].method, "POST");
    assert_eq!(requests[1].method, "GET");
}

#[test]
fn starting_outside_a_runtime_is_an_error_not_a_panic() {
    let error = SseServer::start(SseScript::new()).unwrap_err();
    assert!(error.to_string().contains("tokio runtime"), "{error}");
}

#[tokio::test]
async fn flood_sends_every_event_in_large_frames_then_ends() {
    let (n_events, event_bytes) = (5_000, 100);
    let server = SseServer::flood(n_events, event_bytes).unwrap();
    let (seen, end) = frames(get(server.addr(), "/events").await).await;
    end.unwrap();
    let body = joined(&seen);
    assert_eq!(body.len(), n_events * event_bytes);
    assert_eq!(body.matches("data: ").count(), n_events);
    assert_eq!(body.matches("\n\n").count(), n_events);
    assert!(
        seen.len() < n_events / 10,
        "events are batched: {} frames",
        seen.len()
    );
    // Every GET gets the same flood.
    let (seen, end) = frames(get(server.addr(), "/events").await).await;
    end.unwrap();
    assert_eq!(joined(&seen).len(), n_events * event_bytes);
}

#[tokio::test]
async fn flood_events_are_never_shorter_than_an_empty_event() {
    let server = SseServer::flood(3, 0).unwrap();
    let (seen, end) = frames(get(server.addr(), "/events").await).await;
    end.unwrap();
    assert_eq!(joined(&seen), "data: \n\n".repeat(3));
}

#[tokio::test]
async fn hold_counts_open_streams_and_notices_a_client_leaving() {
    let server = SseServer::hold().unwrap();
    let mut bodies = Vec::new();
    for _ in 0..3 {
        let mut body = get(server.addr(), "/events").await.into_body();
        let frame = timeout(HANG_GUARD, body.frame())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(frame.into_data().unwrap(), "data: open\n\n");
        bodies.push(body);
    }
    timeout(HANG_GUARD, server.wait_for_open_connections(3))
        .await
        .unwrap();
    assert_eq!(server.open_connections(), 3);

    // Dropping the body drops the client connection (its driver task ends with it).
    drop(bodies.pop());
    timeout(HANG_GUARD, server.wait_for_open_connections(2))
        .await
        .unwrap();

    // Dropping the server cuts the streams still open.
    drop(server);
    for mut body in bodies {
        let next = timeout(HANG_GUARD, body.frame()).await.unwrap();
        assert!(
            matches!(next, None | Some(Err(_))),
            "a held stream must end when the server drops"
        );
    }
}

#[tokio::test]
async fn hold_keeps_a_thousand_streams_open_at_once() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const STREAMS: usize = 1_000;
    let server = SseServer::hold().unwrap();
    let mut clients = Vec::with_capacity(STREAMS);
    for _ in 0..STREAMS {
        let mut stream = TcpStream::connect(server.addr()).await.unwrap();
        stream
            .write_all(b"GET /events HTTP/1.1\r\nhost: test\r\naccept: text/event-stream\r\n\r\n")
            .await
            .unwrap();
        let mut seen = Vec::new();
        let mut buf = [0_u8; 512];
        while !seen.windows(12).any(|w| w == b"data: open\n\n") {
            let read = timeout(HANG_GUARD, stream.read(&mut buf))
                .await
                .unwrap()
                .unwrap();
            assert_ne!(read, 0, "a held stream ended early");
            seen.extend_from_slice(&buf[..read]);
        }
        clients.push(stream);
    }
    timeout(HANG_GUARD, server.wait_for_open_connections(STREAMS))
        .await
        .unwrap();
    assert_eq!(server.requests().len(), STREAMS);

    drop(clients);
    timeout(HANG_GUARD, server.wait_for_open_connections(0))
        .await
        .unwrap();
}
