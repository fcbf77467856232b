//! The network API over real TCP with a hyper client: every endpoint, every rejection reason and
//! failure class mapped to its status, the API's own error codes, the operator token, event
//! streams end to end, and a client that disconnects mid-stream.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use ep_contracts::boundary::{AdmissionRequest, Map, Provenance};
use http::Method;
use serde_json::{Value, json};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn node_healthz_and_metrics_answer() {
    let ts = TestServer::start(Setup::Full).await;
    let http = ts.client();

    let node = http.get("/v1/node").await;
    assert_eq!(node.status, 200);
    assert_eq!(node.header("content-type"), Some("application/json"));
    let described = node.json();
    assert_eq!(described["node_id"], "node-test");
    let lanes: Vec<&str> = described["registered_lanes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["lane_id"].as_str().unwrap())
        .collect();
    assert_eq!(lanes, ["process", "unary"]);
    assert!(node.header("x-request-id").is_some());

    let health = http.get("/healthz").await;
    assert_eq!(
        (health.status, health.json()),
        (200, json!({"status": "ok"}))
    );

    let ok = http
        .post("/v1/execute", &governed("process", json!({"n": 1})))
        .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let rejected = http.post("/v1/execute", &governed("nope", json!({}))).await;
    assert_eq!(rejected.status, 404);

    let metrics = http.get("/metrics").await;
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .header("content-type")
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = metrics.body;
    for needle in [
        "ep_admissions_total{outcome=\"accepted\",reason=\"\"} 1",
        "ep_admissions_total{outcome=\"rejected\",reason=\"lane_not_registered\"} 1",
        "ep_executions_total{lane=\"process\",kind=\"execute\",status=\"succeeded\"} 1",
        "ep_execution_duration_seconds_count{lane=\"process\",kind=\"execute\"} 1",
        "ep_executions_in_flight{kind=\"execute\"} 0",
        "ep_http_requests_total{route=\"node\",status=\"200\"} 1",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    ts.finish().await;
}

#[tokio::test]
async fn h2c_with_prior_knowledge_is_served() {
    let ts = TestServer::start(Setup::Full).await;
    let http = Http::h2(&ts.server.url());
    let reply = http
        .post("/v1/execute", &governed("process", json!({"h2": true})))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["output"]["echo"]["h2"], true);
    ts.finish().await;
}

#[tokio::test]
async fn admit_answers_the_decision_and_execute_the_result() {
    let ts = TestServer::start(Setup::Full).await;
    let http = ts.client();
    let admit = http
        .post("/v1/admit", &governed("process", json!({})))
        .await;
    assert_eq!(admit.status, 200, "{}", admit.body);
    let decision = admit.json();
    assert_eq!(decision["target_id"], "target-process");
    assert_eq!(decision["attestation_class"], WEAK);

    let execute = http
        .post("/v1/execute", &governed("process", json!({"x": 1})))
        .await;
    assert_eq!(execute.status, 200);
    let result = execute.json();
    assert_eq!(result["status"], "succeeded");
    assert_eq!(result["output"]["echo"], json!({"x": 1}));
    let parsed: ep_contracts::boundary::ExecutionResult =
        ep_contracts::parse(&execute.body).unwrap();
    assert_eq!(parsed.output["echo"], json!({"x": 1}));

    // Direct lower-lane-owner requests skip governed admission: over the network only the
    // operator may send them, on every route that admits.
    let mut direct = AdmissionRequest::new("process");
    direct.provenance = Provenance::direct_lower_lane_owner("test", Map::new());
    let body = ep_contracts::dump(&direct);
    let json = ("content-type", "application/json");
    for path in ["/v1/admit", "/v1/execute", "/v1/stream"] {
        let anonymous = http.send(Method::POST, path, &[json], Some(&body)).await;
        assert_eq!(anonymous.status, 401, "{path}: {}", anonymous.body);
        assert_eq!(anonymous.json()["error"]["code"], "unauthorized");
        assert!(
            anonymous.body.contains("direct lower-lane-owner"),
            "{}",
            anonymous.body
        );
        assert_eq!(anonymous.header("www-authenticate"), Some("Bearer"));
        let wrong = http
            .send(
                Method::POST,
                path,
                &[json, ("authorization", "Bearer nope")],
                Some(&body),
            )
            .await;
        assert_eq!(wrong.status, 403, "{path}: {}", wrong.body);
    }
    let auth = format!("Bearer {TOKEN}");
    let reply = http
        .send(
            Method::POST,
            "/v1/execute",
            &[json, ("authorization", &auth)],
            Some(&body),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["status"], "succeeded");
    ts.finish().await;
}

/// Each rejection reason the node produces, on `/v1/execute` (the result) and `/v1/admit` (the
/// envelope with the rejection).
#[tokio::test]
async fn every_rejection_reason_answers_its_status() {
    let full = TestServer::start(Setup::Full).await;
    let incomplete = TestServer::start(Setup::Incomplete).await;
    let no_authority = TestServer::start(Setup::NoAuthority).await;

    let mut wrong_version = governed("process", json!({}));
    wrong_version.contract_version = json!(2);
    let mut no_ref = governed("process", json!({}));
    no_ref.authority_ref = None;
    let mut denied = governed("process", json!({}));
    denied.authority_ref.as_mut().unwrap().reference = Some("deny".to_owned());
    let mut strong = governed("process", json!({}));
    strong.acceptable_attestation = ep_contracts::boundary::AcceptableAttestation::of([STRONG]);

    let cases: Vec<(&TestServer, AdmissionRequest, &str, u16)> = vec![
        (&full, wrong_version, "contract_version_mismatch", 400),
        (&full, no_ref, "authority_ref_missing", 401),
        (&full, denied, "authority_rejected", 403),
        (
            &full,
            governed("nope", json!({})),
            "lane_not_registered",
            404,
        ),
        (&full, strong, "no_satisfying_attested_target", 422),
        (
            &incomplete,
            governed("process", json!({})),
            "registration_incomplete",
            503,
        ),
        (
            &no_authority,
            governed("process", json!({})),
            "authority_verifier_missing",
            503,
        ),
    ];
    for (server, request, reason, status) in cases {
        let http = server.client();
        let execute = http.post("/v1/execute", &request).await;
        assert_eq!(execute.status, status, "{reason}: {}", execute.body);
        let result = execute.json();
        assert_eq!(result["status"], "rejected", "{reason}");
        assert_eq!(result["error"]["reason"], reason);

        let admit = http.post("/v1/admit", &request).await;
        assert_eq!(admit.status, status, "{reason}: {}", admit.body);
        let envelope = admit.json();
        assert_eq!(envelope["error"]["code"], reason);
        assert!(
            envelope["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
        assert_eq!(envelope["rejection"]["reason"], reason);

        let stream = http.post("/v1/stream", &request).await;
        assert_eq!(stream.status, status, "{reason}: {}", stream.body);
        assert_eq!(stream.json()["rejection"]["reason"], reason);
    }

    // The lane's own refusal (validate) is a rejected result too.
    let http = full.client();
    let invalid = http
        .post(
            "/v1/execute",
            &governed("process", json!({"invalid": true})),
        )
        .await;
    assert_eq!(invalid.status, 422);
    assert_eq!(invalid.json()["error"]["reason"], "invalid_lane_request");
    let stream = http
        .post("/v1/stream", &governed("process", json!({"invalid": true})))
        .await;
    assert_eq!(stream.status, 422);
    assert_eq!(stream.code(), "invalid_lane_request");
    // A unary lane refuses streams.
    let unary = http.post("/v1/stream", &governed("unary", json!({}))).await;
    assert_eq!(unary.status, 501, "{}", unary.body);
    assert_eq!(unary.code(), "not_supported");

    full.finish().await;
    incomplete.finish().await;
    no_authority.finish().await;
}

#[tokio::test]
async fn every_failure_class_answers_its_status() {
    let ts = TestServer::start(Setup::Full).await;
    let http = ts.client();
    for (class, status) in [
        ("policy_denied", 403),
        ("approval_expired", 403),
        ("route_unresolved", 422),
        ("lease_expired", 409),
        ("attach_mismatch", 409),
        ("cancellation", 409),
        ("semantic_runtime_failed", 500),
        ("launch_failed", 502),
        ("transport_failed", 502),
        ("protocol_framing_failed", 502),
        ("remote_disconnect", 502),
        ("placement_unavailable", 503),
        ("timeout", 504),
    ] {
        let reply = http
            .post("/v1/execute", &governed("process", json!({"fail": class})))
            .await;
        assert_eq!(reply.status, status, "{class}: {}", reply.body);
        let result = reply.json();
        assert_eq!(result["status"], "failed");
        assert_eq!(result["error"]["failure_class"], class);
    }
    ts.finish().await;
}

#[tokio::test]
async fn api_errors_have_their_codes_and_statuses() {
    let options = ep_server::ApiOptions {
        limits: ep_server::ServerLimits {
            max_body_bytes: 1024,
            max_header_bytes: 8192,
            ..ep_server::ServerLimits::default()
        },
        ..ep_server::ApiOptions::default()
    };
    let ts = TestServer::start_with(Setup::Full, options).await;
    let http = ts.client();
    let json_header = [("content-type", "application/json")];

    let missing = http.get("/v2/nothing").await;
    assert_eq!(
        (missing.status, missing.code()),
        (404, "not_found".to_owned())
    );

    let wrong_method = http.get("/v1/execute").await;
    assert_eq!(wrong_method.status, 405);
    assert_eq!(wrong_method.code(), "method_not_allowed");
    assert_eq!(wrong_method.header("allow"), Some("POST"));
    let wrong_method = http.send(Method::DELETE, "/v1/node", &[], None).await;
    assert_eq!(
        (wrong_method.status, wrong_method.header("allow")),
        (405, Some("GET"))
    );

    let malformed = http
        .send(Method::POST, "/v1/execute", &json_header, Some("{not json"))
        .await;
    assert_eq!(
        (malformed.status, malformed.code()),
        (400, "invalid_json".to_owned())
    );
    let not_a_request = http
        .send(
            Method::POST,
            "/v1/admit",
            &json_header,
            Some(r#"{"lane_id": 7}"#),
        )
        .await;
    assert_eq!(not_a_request.status, 400);
    assert!(
        not_a_request.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("lane_id"),
        "{}",
        not_a_request.body
    );

    let body = ep_contracts::dump(&governed("process", json!({})));
    let text = http
        .send(
            Method::POST,
            "/v1/execute",
            &[("content-type", "text/plain")],
            Some(&body),
        )
        .await;
    assert_eq!(
        (text.status, text.code()),
        (415, "unsupported_media_type".to_owned())
    );
    let none = http
        .send(Method::POST, "/v1/execute", &[], Some(&body))
        .await;
    assert_eq!(none.status, 415);
    let charset = http
        .send(
            Method::POST,
            "/v1/execute",
            &[("content-type", "application/json; charset=utf-8")],
            Some(&body),
        )
        .await;
    assert_eq!(charset.status, 200, "{}", charset.body);

    let big = ep_contracts::dump(&governed("process", json!({"pad": "x".repeat(2048)})));
    let too_large = http
        .send(Method::POST, "/v1/execute", &json_header, Some(&big))
        .await;
    assert_eq!(
        (too_large.status, too_large.code()),
        (413, "body_too_large".to_owned())
    );

    let anonymous = http
        .send(
            Method::POST,
            "/v1/executions/exec-unknown/cancel",
            &[],
            None,
        )
        .await;
    assert_eq!(
        (anonymous.status, anonymous.code()),
        (401, "unauthorized".to_owned())
    );
    let unknown = http
        .operator_post("/v1/executions/exec-unknown/cancel")
        .await;
    assert_eq!(
        (unknown.status, unknown.code()),
        (404, "unknown_execution_ref".to_owned())
    );

    // Headers over the limit: hyper answers 431 on HTTP/1.1.
    let huge = "h".repeat(16 << 10);
    let headers = http
        .send(
            Method::GET,
            "/healthz",
            &[("x-padding", huge.as_str())],
            None,
        )
        .await;
    assert_eq!(headers.status, 431);
    ts.finish().await;
}

#[tokio::test]
async fn oversized_chunked_bodies_are_refused_while_read() {
    let options = ep_server::ApiOptions {
        limits: ep_server::ServerLimits {
            max_body_bytes: 64,
            ..ep_server::ServerLimits::default()
        },
        ..ep_server::ApiOptions::default()
    };
    let ts = TestServer::start_with(Setup::Full, options).await;
    let mut socket = tokio::net::TcpStream::connect(ts.server.local_addr())
        .await
        .unwrap();
    let chunk = "x".repeat(100);
    let request = format!(
        "POST /v1/execute HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n\
         transfer-encoding: chunked\r\nconnection: close\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len()
    );
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    guarded(socket.read_to_string(&mut answer)).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("body_too_large"), "{answer}");
    ts.finish().await;
}

#[tokio::test]
async fn operator_routes_need_the_token() {
    let ts = TestServer::start(Setup::Full).await;
    let http = ts.client();
    for (method, path) in [
        (Method::GET, "/v1/lanes"),
        (Method::POST, "/v1/admin/reload"),
        (Method::POST, "/v1/lanes/process/rollback"),
    ] {
        let missing = http.send(method.clone(), path, &[], None).await;
        assert_eq!(
            (missing.status, missing.code()),
            (401, "unauthorized".to_owned()),
            "{path}"
        );
        assert_eq!(missing.header("www-authenticate"), Some("Bearer"));
        let wrong = http
            .send(
                method.clone(),
                path,
                &[("authorization", "Bearer wrong")],
                None,
            )
            .await;
        assert_eq!(
            (wrong.status, wrong.code()),
            (403, "forbidden".to_owned()),
            "{path}"
        );
    }
    // A bare node has no hot-swappable lanes.
    let lanes = http.operator_get("/v1/lanes").await;
    assert_eq!((lanes.status, lanes.json()), (200, json!({"lanes": []})));
    let rollback = http.operator_post("/v1/lanes/process/rollback").await;
    assert_eq!(
        (rollback.status, rollback.code()),
        (404, "unknown_lane".to_owned())
    );
    let reload = http.operator_post("/v1/admin/reload").await;
    assert_eq!(reload.status, 200);
    assert_eq!(reload.json()["status"], "reloaded");
    ts.finish().await;
}

#[tokio::test]
async fn cancel_reaches_a_running_execution() {
    let mut ts = TestServer::start(Setup::Full).await;
    let http = ts.client();
    let running = {
        let http = http.clone();
        tokio::spawn(async move {
            http.post("/v1/execute", &governed("process", json!({"hold": true})))
                .await
        })
    };
    let reference = guarded(ts.lane.started.recv()).await.unwrap();
    let path = format!("/v1/executions/{}/cancel", reference.as_str());
    let cancel = http.operator_post(&path).await;
    assert_eq!(cancel.status, 200, "{}", cancel.body);
    assert_eq!(
        cancel.json(),
        json!({"execution_ref": reference.as_str(), "cancelled": true})
    );
    let reply = guarded(running).await.unwrap();
    assert_eq!(reply.status, 409, "{}", reply.body);
    assert_eq!(reply.json()["error"]["failure_class"], "cancellation");
    let (_, records) = ts.stop().await;
    assert!(
        records
            .iter()
            .any(|r| record_type(r) == "execution.cancelled")
    );
}

#[tokio::test]
async fn a_stream_sends_its_events_then_the_result() {
    let ts = TestServer::start(Setup::Full).await;
    let http = ts.client();
    let reply = http
        .post("/v1/stream", &governed("process", json!({"events": 3})))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("content-type"), Some("text/event-stream"));
    let frames = parse_sse(&reply.body);
    let names: Vec<&str> = frames.iter().map(|f| f.event.as_str()).collect();
    assert_eq!(
        names,
        [
            "execution_event",
            "execution_event",
            "execution_event",
            "execution_event",
            "execution_event",
            "result"
        ]
    );
    // The node's dispatch events bracket the lane's three.
    assert_eq!(frames[0].data["event_type"], "dispatch.started");
    assert_eq!(frames[4].data["event_type"], "dispatch.completed");
    for (n, frame) in frames[1..4].iter().enumerate() {
        let event: ep_contracts::boundary::ExecutionEvent =
            ep_contracts::parse(&frame.data.to_string()).unwrap();
        assert_eq!(event.event_type.as_deref(), Some("fake.chunk"));
        assert_eq!(event.payload["n"], json!(n));
    }
    let result: ep_contracts::boundary::ExecutionResult =
        ep_contracts::parse(&frames[5].data.to_string()).unwrap();
    assert_eq!(result.status.as_str(), "succeeded");
    assert!(result.events.is_empty());
    assert_eq!(
        result.execution_ref.as_str(),
        frames[0].data["execution_ref"]["ref"].as_str().unwrap()
    );

    // A stream whose last event reports a failure ends with a failed result.
    let reply = http
        .post(
            "/v1/stream",
            &governed("process", json!({"events": 1, "fail": "timeout"})),
        )
        .await;
    let frames = parse_sse(&reply.body);
    let last = frames.last().unwrap();
    assert_eq!(last.event, "result");
    assert_eq!(last.data["status"], "failed");
    assert_eq!(last.data["error"]["failure_class"], "timeout");

    // Over HTTP/2 as well.
    let h2 = Http::h2(&ts.server.url());
    let reply = h2
        .post("/v1/stream", &governed("process", json!({"events": 2})))
        .await;
    // Two lane events, the two dispatch events, the result.
    assert_eq!(parse_sse(&reply.body).len(), 5);
    let metrics = http.get("/metrics").await.body;
    assert!(
        metrics.contains(
            "ep_executions_total{lane=\"process\",kind=\"stream\",status=\"succeeded\"} 2"
        ),
        "{metrics}"
    );
    ts.finish().await;
}

#[tokio::test]
async fn idle_streams_send_keep_alive_comments() {
    let options = ep_server::ApiOptions {
        sse_keep_alive: Duration::from_millis(5),
        ..ep_server::ApiOptions::default()
    };
    let mut ts = TestServer::start_with(Setup::Full, options).await;
    let mut socket = tokio::net::TcpStream::connect(ts.server.local_addr())
        .await
        .unwrap();
    let body = ep_contracts::dump(&governed(
        "process",
        json!({"hold": true, "tick_ms": 60_000}),
    ));
    write_post(&mut socket, "/v1/stream", &body).await;
    guarded(ts.lane.started.recv()).await.unwrap();
    let seen = read_until(&mut socket, ": keep-alive\n\n").await;
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    drop(socket);
    guarded(ts.lane.stopped.recv()).await.unwrap();
    ts.finish().await;
}

#[tokio::test]
async fn a_client_that_disconnects_mid_stream_cancels_the_execution() {
    let mut ts = TestServer::start(Setup::Full).await;
    let mut socket = tokio::net::TcpStream::connect(ts.server.local_addr())
        .await
        .unwrap();
    let body = ep_contracts::dump(&governed("process", json!({"hold": true})));
    write_post(&mut socket, "/v1/stream", &body).await;
    let reference = guarded(ts.lane.started.recv()).await.unwrap();
    read_until(&mut socket, "event: execution_event").await;
    drop(socket);

    // The lane sees its cancel signal fire...
    let stopped = guarded(ts.lane.stopped.recv()).await.unwrap();
    assert_eq!(stopped, reference);
    // ...and the host records why.
    guarded(async {
        let recorded = || {
            ts.server
                .metrics()
                .encode(&[], 0, None)
                .contains("cause=\"client_disconnected\"")
        };
        while !recorded() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    let (_, records) = ts.stop().await;
    let cancelled: Vec<&Value> = records
        .iter()
        .filter(|r| record_type(r) == "execution.cancelled")
        .collect();
    assert_eq!(cancelled.len(), 1, "{records:?}");
    let payload = record_payload(cancelled[0]);
    assert_eq!(payload["cause"], "client_disconnected");
    assert_eq!(payload["execution_ref"], reference.as_str());
    assert_eq!(
        cancelled[0]["evidence"]["execution_ref"]["ref"],
        reference.as_str()
    );
}

#[tokio::test]
async fn a_cancel_the_target_fails_answers_target_error() {
    let mut ts = TestServer::start(Setup::FailingCancel).await;
    let http = ts.client();
    let running = {
        let http = http.clone();
        tokio::spawn(async move {
            http.post("/v1/execute", &governed("process", json!({"hold": true})))
                .await
        })
    };
    let reference = guarded(ts.lane.started.recv()).await.unwrap();
    let path = format!("/v1/executions/{}/cancel", reference.as_str());
    let cancel = http.operator_post(&path).await;
    assert_eq!(
        (cancel.status, cancel.code()),
        (502, "target_error".to_owned())
    );
    let details = &cancel.json()["error"]["details"];
    assert_eq!(details["target_id"], "target-process");
    assert_eq!(details["target_message"], "connection refused");
    ts.lane.release.notify_waiters();
    assert_eq!(guarded(running).await.unwrap().status, 200);
    ts.finish().await;
}

#[tokio::test]
async fn slow_request_heads_and_idle_connections_are_closed() {
    let options = ep_server::ApiOptions {
        limits: ep_server::ServerLimits {
            header_read_timeout: Duration::from_millis(100),
            idle_timeout: Duration::from_millis(100),
            ..ep_server::ServerLimits::default()
        },
        ..ep_server::ApiOptions::default()
    };
    let ts = TestServer::start_with(Setup::Full, options).await;
    // A head that never ends: the server closes the connection.
    let mut slow = tokio::net::TcpStream::connect(ts.server.local_addr())
        .await
        .unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nhost: test\r\n")
        .await
        .unwrap();
    let mut rest = Vec::new();
    guarded(slow.read_to_end(&mut rest)).await.unwrap();

    // A keep-alive connection left idle after its answer: closed too.
    let mut idle = tokio::net::TcpStream::connect(ts.server.local_addr())
        .await
        .unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nhost: test\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until(&mut idle, "{\"status\":\"ok\"}").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let mut rest = Vec::new();
    guarded(idle.read_to_end(&mut rest)).await.unwrap();
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
    ts.finish().await;
}

#[tokio::test]
async fn connections_beyond_the_limit_wait_for_a_free_slot() {
    let options = ep_server::ApiOptions {
        limits: ep_server::ServerLimits {
            max_connections: 1,
            // Without a reserve: this test is about the backlog (tests/connections.rs has the
            // reserve).
            reserve_connections: 0,
            ..ep_server::ServerLimits::default()
        },
        ..ep_server::ApiOptions::default()
    };
    let ts = TestServer::start_with(Setup::Full, options).await;
    let mut first = tokio::net::TcpStream::connect(ts.server.local_addr())
        .await
        .unwrap();
    first
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: test\r\n\r\n")
        .await
        .unwrap();
    read_until(&mut first, "{\"status\":\"ok\"}").await;

    // The second connection is accepted by the kernel but not served while the first is open.
    let addr = ts.server.local_addr();
    let (answered_tx, mut answered) = tokio::sync::oneshot::channel();
    let second = tokio::spawn(async move {
        let mut second = tokio::net::TcpStream::connect(addr).await.unwrap();
        second
            .write_all(b"GET /healthz HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        second.read_to_string(&mut answer).await.unwrap();
        let _ = answered_tx.send(());
        answer
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        answered.try_recv().is_err(),
        "served beyond max_connections"
    );
    drop(first);
    let answer = guarded(second).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    ts.finish().await;
}

/// A host whose plugin lane `python` is still loading: it answers `/healthz` (naming the lane),
/// serves its other lanes, and answers a request for `python` `503 lane_loading` with
/// `retry-after` before it reaches the node (no admission, no evidence). Once loaded, the node
/// answers for the lane again.
#[tokio::test]
async fn a_lane_still_loading_is_named_and_its_requests_are_told_to_retry() {
    use std::sync::{Arc, Mutex};

    #[derive(Default)]
    struct Loading(Mutex<Vec<String>>);

    #[async_trait::async_trait]
    impl ep_server::LaneAdmin for Loading {
        fn lanes(&self) -> Vec<ep_server::LaneStatus> {
            Vec::new()
        }
        fn loading(&self) -> Vec<String> {
            self.0.lock().unwrap().clone()
        }
        fn is_loading(&self, lane_id: &str) -> bool {
            self.0.lock().unwrap().iter().any(|l| l == lane_id)
        }
        async fn rollback(
            &self,
            lane_id: &str,
        ) -> Result<ep_lanes_wasm::RollBack, ep_lanes_wasm::SwapError> {
            Err(ep_lanes_wasm::SwapError::UnknownLane {
                lane_id: lane_id.to_owned(),
            })
        }
        async fn reload(&self) -> ep_server::ReloadReport {
            ep_server::ReloadReport::default()
        }
        async fn reinstate(
            &self,
            lane_id: &str,
            digest: &str,
        ) -> Result<ep_server::Reinstated, ep_lanes_wasm::WithdrawalsError> {
            Err(ep_lanes_wasm::WithdrawalsError::NotWithdrawn {
                lane_id: lane_id.to_owned(),
                digest: digest.to_owned(),
            })
        }
    }

    let admin = Arc::new(Loading(Mutex::new(vec!["python".to_owned()])));
    let options = ep_server::ApiOptions {
        lanes: Some(Arc::clone(&admin) as Arc<dyn ep_server::LaneAdmin>),
        ..ep_server::ApiOptions::default()
    };
    let ts = TestServer::start_with(Setup::Full, options).await;
    let http = ts.client();

    let health = http.get("/healthz").await;
    assert_eq!(
        (health.status, health.json()),
        (200, json!({"status": "ok", "lanes_loading": ["python"]}))
    );
    let waiting = http
        .post("/v1/execute", &governed("python", json!({})))
        .await;
    assert_eq!(waiting.status, 503, "{}", waiting.body);
    assert_eq!(waiting.header("retry-after"), Some("1"));
    let error = &waiting.json()["error"];
    assert_eq!(error["code"], "lane_loading", "{error}");
    assert_eq!(error["details"]["lane_id"], "python", "{error}");
    for route in ["/v1/stream", "/v1/admit"] {
        let reply = http.post(route, &governed("python", json!({}))).await;
        assert_eq!(reply.status, 503, "{route}: {}", reply.body);
    }
    // The lanes that are ready serve meanwhile.
    let ready = http
        .post("/v1/execute", &governed("process", json!({"n": 1})))
        .await;
    assert_eq!(ready.status, 200, "{}", ready.body);
    // Nothing reached the node for the loading lane: no record names it.
    let log = std::fs::read_to_string(&ts.evidence).unwrap();
    assert!(!log.contains("\"python\""), "{log}");

    admin.0.lock().unwrap().clear();
    let health = http.get("/healthz").await;
    assert_eq!(health.json(), json!({"status": "ok"}));
    let unknown = http
        .post("/v1/execute", &governed("python", json!({})))
        .await;
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    assert_eq!(unknown.json()["error"]["reason"], "lane_not_registered");
}
