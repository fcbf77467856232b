//! Connection limits over raw sockets against a served host: request bodies that stall or
//! trickle are cut with 408 after the configured body timing, a steady slow body is served, and
//! a flood of stalled bodies filling every `max_connections` leaves `/healthz`, `/metrics` and
//! the operator served on the reserve, which serves nothing else and cannot be held either.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use ep_server::{ApiOptions, ServeConfig, ServerLimits, start};
use serde_json::json;
use support::*;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

fn with_limits(limits: ServerLimits) -> ApiOptions {
    ApiOptions {
        limits,
        ..ApiOptions::default()
    }
}

async fn connect(addr: SocketAddr) -> TcpStream {
    guarded(TcpStream::connect(addr)).await.unwrap()
}

/// Sends the head of a POST to `path` declaring all of `body`, and only its first `sent`
/// bytes.
async fn write_partial(socket: &mut TcpStream, path: &str, body: &str, sent: usize) {
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n",
        body.len()
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    socket.write_all(&body.as_bytes()[..sent]).await.unwrap();
}

/// A GET on its own connection; the whole answer up to the close.
async fn get(addr: SocketAddr, path: &str, token: Option<&str>) -> String {
    let mut socket = connect(addr).await;
    let auth = token.map_or_else(String::new, |t| format!("authorization: Bearer {t}\r\n"));
    let request = format!("GET {path} HTTP/1.1\r\nhost: test\r\n{auth}connection: close\r\n\r\n");
    socket.write_all(request.as_bytes()).await.unwrap();
    read_to_close(&mut socket).await
}

#[tokio::test]
async fn a_stalled_body_is_408_after_the_body_timeout_and_its_connection_closes() {
    let ts = TestServer::start_with(
        Setup::Full,
        with_limits(ServerLimits {
            body_read_timeout: Duration::from_millis(300),
            min_body_bytes_per_sec: 0,
            ..ServerLimits::default()
        }),
    )
    .await;
    let body = ep_contracts::dump(&governed("process", json!({"n": 1})));
    let mut socket = connect(ts.server.local_addr()).await;
    write_partial(&mut socket, "/v1/execute", &body, 10).await;
    let answer = read_to_close(&mut socket).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
    let envelope = raw_body(&answer);
    assert_eq!(envelope["error"]["code"], "request_timeout", "{envelope}");
    assert_eq!(
        envelope["error"]["details"]["limit"],
        "body_read_timeout_ms"
    );
    assert_eq!(envelope["error"]["details"]["received_bytes"], 10);
    assert_eq!(envelope["error"]["details"]["body_read_timeout_ms"], 300);
    // Nothing was admitted: no execution evidence.
    let (_, records) = ts.stop().await;
    assert!(
        records
            .iter()
            .all(|r| record_type(r) != "execution.started"),
        "{records:?}"
    );
}

#[tokio::test]
async fn a_body_below_the_minimum_rate_is_408_long_before_the_total_timeout() {
    let ts = TestServer::start_with(
        Setup::Full,
        with_limits(ServerLimits {
            // Far beyond the hang guard: only the rate check can end this body in time.
            body_read_timeout: Duration::from_secs(3600),
            min_body_bytes_per_sec: 1000,
            min_body_rate_grace: Duration::from_millis(200),
            ..ServerLimits::default()
        }),
    )
    .await;
    let body = ep_contracts::dump(&governed("process", json!({"n": 1})));
    let mut socket = connect(ts.server.local_addr()).await;
    write_partial(&mut socket, "/v1/execute", &body, 5).await;
    let answer = read_to_close(&mut socket).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let envelope = raw_body(&answer);
    assert_eq!(envelope["error"]["code"], "request_timeout");
    assert_eq!(
        envelope["error"]["details"]["limit"],
        "min_body_bytes_per_sec"
    );
    assert_eq!(envelope["error"]["details"]["min_body_bytes_per_sec"], 1000);
    ts.finish().await;
}

#[tokio::test]
async fn a_slow_but_steady_body_above_the_minimum_rate_is_served() {
    let ts = TestServer::start_with(
        Setup::Full,
        with_limits(ServerLimits {
            min_body_bytes_per_sec: 100,
            min_body_rate_grace: Duration::from_millis(200),
            ..ServerLimits::default()
        }),
    )
    .await;
    let padding = "p".repeat(600);
    let body = ep_contracts::dump(&governed("process", json!({"padding": padding})));
    let mut socket = connect(ts.server.local_addr()).await;
    write_partial(&mut socket, "/v1/execute", &body, 0).await;
    // 40 bytes every 20 ms: about 2000 B/s, twenty times the minimum, for longer than the
    // grace. Every chunk buys 400 ms more at the minimum rate.
    for chunk in body.as_bytes().chunks(40) {
        socket.write_all(chunk).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let answer = read_until(&mut socket, "\"status\":\"succeeded\"").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains(&padding), "the lane saw the whole body");
    ts.finish().await;
}

#[tokio::test]
async fn the_reserve_serves_health_metrics_and_the_operator_but_no_normal_execution() {
    let ts = TestServer::start_with(
        Setup::Full,
        with_limits(ServerLimits {
            max_connections: 2,
            reserve_connections: 2,
            min_body_bytes_per_sec: 0,
            body_read_timeout: Duration::from_secs(3600),
            ..ServerLimits::default()
        }),
    )
    .await;
    let addr = ts.server.local_addr();
    let body = ep_contracts::dump(&governed("process", json!({"n": 1})));
    let mut stalled = Vec::new();
    for _ in 0..2 {
        let mut socket = connect(addr).await;
        write_partial(&mut socket, "/v1/execute", &body, 1).await;
        stalled.push(socket);
    }
    // Every normal connection is taken: a normal execution on the reserve is refused at once,
    // before its body is read...
    let mut normal = connect(addr).await;
    write_partial(&mut normal, "/v1/execute", &body, 0).await;
    let answer = read_to_close(&mut normal).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("retry-after: 1"),
        "{answer}"
    );
    assert_eq!(raw_body(&answer)["error"]["code"], "connections_exhausted");
    // ...and so is an operator route with a wrong token.
    let wrong = get(addr, "/v1/lanes", Some("not-the-token")).await;
    assert!(wrong.starts_with("HTTP/1.1 503"), "{wrong}");

    // Health, metrics and the operator are served, one request per connection.
    let health = get(addr, "/healthz", None).await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert_eq!(raw_body(&health), json!({"status": "ok"}));
    let metrics = get(addr, "/metrics", None).await;
    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
    assert!(
        metrics.contains("route=\"execute\",status=\"503\""),
        "{metrics}"
    );
    let lanes = get(addr, "/v1/lanes", Some(TOKEN)).await;
    assert!(lanes.starts_with("HTTP/1.1 200"), "{lanes}");
    // The operator may even execute through the reserve.
    let mut operator = connect(addr).await;
    let head = format!(
        "POST /v1/execute HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n\
         authorization: Bearer {TOKEN}\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    operator.write_all(head.as_bytes()).await.unwrap();
    let answer = read_to_close(&mut operator).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(raw_body(&answer)["status"], "succeeded");

    // The stalled connections were held all along, each inside its request: finishing one
    // body gets it served.
    let mut first = stalled.remove(0);
    first.write_all(&body.as_bytes()[1..]).await.unwrap();
    let answer = read_until(&mut first, "\"status\":\"succeeded\"").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    drop(first);
    drop(stalled);
    ts.finish().await;
}

#[tokio::test]
async fn idle_connections_cannot_hold_the_reserve() {
    let ts = TestServer::start_with(
        Setup::Full,
        with_limits(ServerLimits {
            max_connections: 1,
            reserve_connections: 2,
            reserve_header_timeout: Duration::from_millis(300),
            min_body_bytes_per_sec: 0,
            body_read_timeout: Duration::from_secs(3600),
            ..ServerLimits::default()
        }),
    )
    .await;
    let addr = ts.server.local_addr();
    let body = ep_contracts::dump(&governed("process", json!({"n": 1})));
    let mut stalled = connect(addr).await;
    write_partial(&mut stalled, "/v1/execute", &body, 1).await;
    // Both reserved connections taken by clients that never send a head, and one that sends
    // half a head...
    let mut idle = vec![connect(addr).await, connect(addr).await];
    idle[1]
        .write_all(b"GET /healthz HTTP/1.1\r\n")
        .await
        .unwrap();
    // ...are closed by the reserve's header timeout, so a health check behind them is served.
    let health = get(addr, "/healthz", None).await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    for socket in &mut idle {
        let rest = read_to_close(socket).await;
        assert!(!rest.contains("200 OK"), "{rest}");
    }
    drop(stalled);
    ts.finish().await;
}

/// The configured host (`[server]` keys from a file, `start`): sixteen stalled bodies take
/// every connection, yet `/healthz` and an operator call answer on the reserve.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_stalled_bodies_do_not_lock_out_health_or_the_operator() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("serve.toml");
    std::fs::write(
        &path,
        "[server]\nlisten = \"127.0.0.1:0\"\nmax_connections = 16\nreserve_connections = 4\n\
         body_read_timeout_ms = 3600000\nmin_body_bytes_per_sec = 0\n\
         [log]\nformat = \"json\"\n",
    )
    .unwrap();
    let config = ServeConfig::load(Some(&path)).unwrap();
    let server = guarded(start(config)).await.unwrap();
    let addr = server.local_addr();
    let token = std::fs::read_to_string(&server.service().unwrap().info().token_file).unwrap();
    let token = token.trim();
    let body = ep_contracts::dump(&governed("http", json!({"url": "http://127.0.0.1:1/"})));
    let mut stalled = Vec::new();
    for _ in 0..16 {
        let mut socket = connect(addr).await;
        write_partial(&mut socket, "/v1/execute", &body, 1).await;
        stalled.push(socket);
    }
    let mut normal = connect(addr).await;
    write_partial(&mut normal, "/v1/execute", &body, 0).await;
    let answer = read_to_close(&mut normal).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert_eq!(raw_body(&answer)["error"]["code"], "connections_exhausted");
    let health = get(addr, "/healthz", None).await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let lanes = get(addr, "/v1/lanes", Some(token)).await;
    assert!(lanes.starts_with("HTTP/1.1 200"), "{lanes}");
    assert!(lanes.contains("\"lanes\""), "{lanes}");
    drop(stalled);
    let report = guarded(server.shutdown(Duration::from_secs(30))).await;
    assert_eq!(report.flush_error, None);
}
