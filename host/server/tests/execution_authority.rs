//! Who may name an execution over the API: a stranger's cancel is refused without saying
//! whether the execution exists, the owner (its stream's capability token) and the operator may
//! cancel, an ended execution cannot be cancelled, refs on the wire are unguessable, and every
//! stream leaves started and ended records.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::HashSet;

use serde_json::{Value, json};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A stream held open on a raw socket, with what its answer's head said.
struct OpenStream {
    socket: TcpStream,
    execution_ref: String,
    token: String,
    seen: String,
}

impl OpenStream {
    async fn open(ts: &TestServer, payload: Value) -> Self {
        let mut socket = TcpStream::connect(ts.server.local_addr()).await.unwrap();
        let body = ep_contracts::dump(&governed("process", payload));
        let head = format!(
            "POST /v1/stream HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n\
             content-length: {}\r\n\r\n{body}",
            body.len()
        );
        socket.write_all(head.as_bytes()).await.unwrap();
        let mut stream = Self {
            socket,
            execution_ref: String::new(),
            token: String::new(),
            seen: String::new(),
        };
        stream.read_until("\r\n\r\n").await;
        let header = |name: &str| {
            stream
                .seen
                .lines()
                .find_map(|line| {
                    let (key, value) = line.split_once(':')?;
                    key.eq_ignore_ascii_case(name)
                        .then(|| value.trim().to_owned())
                })
                .unwrap_or_default()
        };
        stream.execution_ref = header("x-execution-ref");
        stream.token = header("x-execution-token");
        assert!(stream.seen.starts_with("HTTP/1.1 200"), "{}", stream.seen);
        stream
    }

    /// Reads until `needle` appears after what was read so far.
    async fn read_until(&mut self, needle: &str) {
        let start = self.seen.len();
        let mut buffer = [0u8; 4096];
        guarded(async {
            while !self.seen[start..].contains(needle) {
                let n = self.socket.read(&mut buffer).await.unwrap();
                assert!(n > 0, "connection closed before {needle:?}: {}", self.seen);
                self.seen.push_str(&String::from_utf8_lossy(&buffer[..n]));
            }
        })
        .await;
    }
}

async fn cancel(http: &Http, reference: &str, bearer: Option<&str>) -> Reply {
    let path = format!("/v1/executions/{reference}/cancel");
    let auth = bearer.map(|token| format!("Bearer {token}"));
    let headers: Vec<(&str, &str)> = auth
        .as_deref()
        .map(|value| vec![("authorization", value)])
        .unwrap_or_default();
    http.send(http::Method::POST, &path, &headers, None).await
}

fn is_execution_ref(text: &str) -> bool {
    text.strip_prefix("exec-")
        .is_some_and(|hex| hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_cannot_cancel_a_running_stream_but_its_owner_and_the_operator_can() {
    let mut ts = TestServer::start(Setup::Full).await;
    let http = ts.client();
    let mut mine = OpenStream::open(&ts, json!({"hold": true})).await;
    let mut theirs = OpenStream::open(&ts, json!({"hold": true})).await;
    assert!(
        is_execution_ref(&mine.execution_ref),
        "{}",
        mine.execution_ref
    );
    assert!(mine.token.starts_with("ept-"), "{}", mine.seen);
    assert_ne!(mine.token, theirs.token);
    for _ in 0..2 {
        guarded(ts.lane.started.recv()).await.unwrap();
    }

    // No credential: 401, whether or not the execution exists.
    let anonymous = cancel(&http, &mine.execution_ref, None).await;
    assert_eq!(
        (anonymous.status, anonymous.code()),
        (401, "unauthorized".to_owned())
    );
    let anonymous_unknown = cancel(&http, "exec-00000000000000000000000000000000", None).await;
    assert_eq!(anonymous_unknown.status, 401);
    // Another execution's token, a guess, or a token for a guessed ref: the same 404 as for an
    // execution that does not exist.
    for (reference, token) in [
        (mine.execution_ref.as_str(), theirs.token.as_str()),
        (mine.execution_ref.as_str(), "ept-guess"),
        ("exec-00000000000000000000000000000000", mine.token.as_str()),
    ] {
        let refused = cancel(&http, reference, Some(token)).await;
        assert_eq!(
            (refused.status, refused.code()),
            (404, "unknown_execution_ref".to_owned()),
            "{}",
            refused.body
        );
    }
    // The stream carries on.
    mine.read_until("event: execution_event").await;

    // Its owner cancels it with its token.
    let owned = cancel(&http, &mine.execution_ref, Some(&mine.token)).await;
    assert_eq!(owned.status, 200, "{}", owned.body);
    assert_eq!(
        guarded(ts.lane.stopped.recv()).await.unwrap().as_str(),
        mine.execution_ref
    );
    // The operator may cancel any execution.
    let operated = cancel(&http, &theirs.execution_ref, Some(TOKEN)).await;
    assert_eq!(operated.status, 200, "{}", operated.body);
    assert_eq!(
        guarded(ts.lane.stopped.recv()).await.unwrap().as_str(),
        theirs.execution_ref
    );
    theirs.read_until("event: execution_event").await;
    drop(mine);
    drop(theirs);

    let (_, records) = ts.stop().await;
    let cancelled: Vec<&Value> = records
        .iter()
        .filter(|r| record_type(r) == "execution.cancelled")
        .collect();
    assert_eq!(
        cancelled.len(),
        2,
        "one record per cancel, none for the refusals"
    );
    let by: HashSet<&str> = cancelled
        .iter()
        .map(|r| record_payload(r)["cancelled_by"].as_str().unwrap())
        .collect();
    assert_eq!(by, HashSet::from(["owner", "operator"]));
    // Each stream then ended once, as a cancellation.
    let completed: Vec<&Value> = records
        .iter()
        .filter(|r| record_type(r) == "execution.completed")
        .collect();
    assert_eq!(completed.len(), 2, "{records:?}");
    for record in completed {
        assert_eq!(record_payload(record)["kind"], "stream");
        assert_eq!(
            record_payload(record)["error"]["failure_class"],
            "cancellation"
        );
    }
}

#[tokio::test]
async fn cancelling_an_ended_execution_is_refused_and_appends_nothing() {
    let ts = TestServer::start(Setup::Full).await;
    let http = ts.client();
    let executed = http
        .post("/v1/execute", &governed("process", json!({"n": 1})))
        .await;
    assert_eq!(executed.status, 200, "{}", executed.body);
    let reference = executed.json()["execution_ref"]["ref"]
        .as_str()
        .unwrap()
        .to_owned();
    let ended = cancel(&http, &reference, Some(TOKEN)).await;
    assert_eq!(
        (ended.status, ended.code()),
        (409, "execution_ended".to_owned())
    );

    // A stream read to its end: its owner's cancel is refused the same way.
    let streamed = http
        .post("/v1/stream", &governed("process", json!({"events": 1})))
        .await;
    assert_eq!(streamed.status, 200);
    let stream_ref = streamed.header("x-execution-ref").unwrap().to_owned();
    let token = streamed.header("x-execution-token").unwrap().to_owned();
    let ended = cancel(&http, &stream_ref, Some(&token)).await;
    assert_eq!(
        (ended.status, ended.code()),
        (409, "execution_ended".to_owned())
    );
    // A stranger still learns nothing.
    let stranger = cancel(&http, &stream_ref, Some("ept-guess")).await;
    assert_eq!(stranger.status, 404);

    let (_, records) = ts.stop().await;
    assert!(
        records
            .iter()
            .all(|r| record_type(r) != "execution.cancelled"),
        "a refused cancel writes nothing: {records:?}"
    );
}

#[tokio::test]
async fn refs_and_request_ids_on_the_wire_carry_no_counter() {
    let ts = TestServer::start(Setup::Full).await;
    let http = ts.client();
    let mut refs = Vec::new();
    let mut request_ids = HashSet::new();
    for _ in 0..64 {
        let mut request = governed("process", json!({}));
        request.authority_ref = None;
        let rejected = http.post("/v1/execute", &request).await;
        assert_eq!(rejected.status, 401);
        let reference = rejected.json()["execution_ref"]["ref"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(is_execution_ref(&reference), "{reference}");
        refs.push(u128::from_str_radix(&reference[5..], 16).unwrap());
        let request_id = rejected.header("x-request-id").unwrap().to_owned();
        let random = request_id.rsplit('-').next().unwrap();
        assert_eq!(random.len(), 16, "{request_id}");
        request_ids.insert(request_id);
    }
    assert_eq!(refs.iter().collect::<HashSet<_>>().len(), 64);
    assert_eq!(request_ids.len(), 64);
    // Neighbours are not one apart (as a counter would make them), nor close.
    let close = refs
        .windows(2)
        .filter(|w| w[0].abs_diff(w[1]) < 1 << 64)
        .count();
    assert_eq!(close, 0, "consecutive refs look sequential: {refs:x?}");
    ts.finish().await;
}

#[tokio::test]
async fn every_served_stream_leaves_started_and_ended_records() {
    let ts = TestServer::start(Setup::Full).await;
    let http = ts.client();
    let ok = http
        .post("/v1/stream", &governed("process", json!({"events": 2})))
        .await;
    let failing = http
        .post(
            "/v1/stream",
            &governed("process", json!({"events": 1, "fail": "transport_failed"})),
        )
        .await;
    let ok_ref = ok.header("x-execution-ref").unwrap().to_owned();
    let failing_ref = failing.header("x-execution-ref").unwrap().to_owned();
    let (_, records) = ts.stop().await;
    let of = |reference: &str| -> Vec<(String, Value)> {
        records
            .iter()
            .filter(|r| r["evidence"]["execution_ref"]["ref"] == reference)
            .map(|r| (record_type(r).to_owned(), record_payload(r).clone()))
            .collect()
    };
    let ok_records = of(&ok_ref);
    let types: Vec<&str> = ok_records.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        types,
        [
            "admission.accepted",
            "target.selected",
            "execution.started",
            "dispatch.started",
            "dispatch.completed",
            "execution.completed"
        ]
    );
    assert_eq!(ok_records[2].1["kind"], "stream");
    assert_eq!(ok_records[5].1["status"], "succeeded");
    assert_eq!(ok_records[5].1["event_count"], 2);
    let failing_records = of(&failing_ref);
    let (kind, completed) = failing_records.last().unwrap();
    assert_eq!(kind, "execution.completed");
    assert_eq!(completed["status"], "failed");
    assert_eq!(completed["error"]["failure_class"], "transport_failed");
    assert_eq!(completed["event_count"], 2);
}
