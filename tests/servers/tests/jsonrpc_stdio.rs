//! The stdio JSON-RPC peer, proven as a real child process (`ep-jsonrpc-peer`) in both framings:
//! its method table, the chatty, mismatched-id, exit-after and stderr-noise modes, broken
//! input and bad arguments.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::Duration;

use ep_test_servers::jsonrpc::{FAIL_CODE, PEER_METHOD, PROGRESS_METHOD};
use serde_json::{Value, json};

/// Fails a hung test instead of letting it sit until CI's limit.
const HANG_GUARD: Duration = Duration::from_secs(60);

const PEER: &str = env!("CARGO_BIN_EXE_ep-jsonrpc-peer");

/// Runs `test` on a thread of its own and fails if it has not finished within [`HANG_GUARD`]
/// (blocking pipe reads cannot time out by themselves).
fn within_deadline(test: impl FnOnce() + Send + 'static) {
    let (done, finished) = mpsc::channel();
    let handle = thread::spawn(move || {
        test();
        let _ = done.send(());
    });
    match finished.recv_timeout(HANG_GUARD) {
        Ok(()) | Err(RecvTimeoutError::Disconnected) => {
            if let Err(panic) = handle.join() {
                std::panic::resume_unwind(panic);
            }
        }
        Err(RecvTimeoutError::Timeout) => panic!("the stdio peer test hung"),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Framing {
    Ndjson,
    ContentLength,
}

impl Framing {
    fn arg(self) -> &'static str {
        match self {
            Self::Ndjson => "ndjson",
            Self::ContentLength => "content-length",
        }
    }
}

/// The peer as a child process, with this test's own framing code on the other end.
struct Peer {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    framing: Framing,
}

impl Peer {
    fn spawn(framing: Framing, extra: &[&str]) -> Self {
        let mut child = Command::new(PEER)
            .arg("--framing")
            .arg(framing.arg())
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Self {
            child,
            stdin,
            stdout,
            framing,
        }
    }

    fn send_raw(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(bytes).unwrap();
        stdin.flush().unwrap();
    }

    fn send(&mut self, message: &Value) {
        let body = message.to_string();
        let framed = match self.framing {
            Framing::Ndjson => format!("{body}\n"),
            Framing::ContentLength => format!("Content-Length: {}\r\n\r\n{body}", body.len()),
        };
        self.send_raw(framed.as_bytes());
    }

    /// The next message, or `None` when the peer closed its stdout.
    fn recv(&mut self) -> Option<Value> {
        match self.framing {
            Framing::Ndjson => {
                let mut line = String::new();
                if self.stdout.read_line(&mut line).unwrap() == 0 {
                    return None;
                }
                assert!(line.ends_with('\n'), "NDJSON lines end with a newline");
                assert_eq!(line.matches('\n').count(), 1, "one compact value per line");
                Some(serde_json::from_str(&line).unwrap())
            }
            Framing::ContentLength => {
                let mut length = None;
                loop {
                    let mut line = String::new();
                    if self.stdout.read_line(&mut line).unwrap() == 0 {
                        assert!(length.is_none(), "stdout ended inside a header");
                        return None;
                    }
                    if line == "\r\n" {
                        break;
                    }
                    let (name, value) = line.trim_end().split_once(": ").unwrap();
                    assert_eq!(name, "Content-Length");
                    length = Some(value.parse::<usize>().unwrap());
                }
                let mut body = vec![0; length.unwrap()];
                self.stdout.read_exact(&mut body).unwrap();
                Some(serde_json::from_slice(&body).unwrap())
            }
        }
    }

    fn call(&mut self, message: &Value) -> Value {
        self.send(message);
        self.recv().unwrap()
    }

    /// Closes stdin and returns the exit status and everything written to stderr.
    fn finish(mut self) -> (ExitStatus, String) {
        drop(self.stdin.take());
        let mut rest = Vec::new();
        self.stdout.read_to_end(&mut rest).unwrap();
        assert!(
            rest.is_empty(),
            "unexpected output: {:?}",
            String::from_utf8_lossy(&rest)
        );
        let mut stderr = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        (self.child.wait().unwrap(), stderr)
    }
}

fn request(id: impl Into<Value>, method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id.into(), "method": method, "params": params})
}

fn method_table_in(framing: Framing) {
    let mut peer = Peer::spawn(framing, &[]);
    assert_eq!(
        peer.call(&request(1, "echo", json!({"text": "hi\nthere"}))),
        json!({"jsonrpc": "2.0", "id": 1, "result": {"echo": {"text": "hi\nthere"}}})
    );
    let failed = peer.call(&request("f", "fail", json!({})));
    assert_eq!(failed["id"], "f");
    assert_eq!(failed["error"]["code"], FAIL_CODE);
    assert_eq!(
        peer.call(&request(2, "sleep", json!({"ms": 5}))),
        json!({"jsonrpc": "2.0", "id": 2, "result": {"slept_ms": 5}})
    );
    assert_eq!(
        peer.call(&request(3, "sleep", json!({})))["error"]["code"],
        -32602
    );
    assert_eq!(
        peer.call(&request(4, "nope", Value::Null))["error"]["code"],
        -32601
    );
    // A notification is not answered: the next answer is the next request's.
    peer.send(&json!({"jsonrpc": "2.0", "method": "note"}));
    assert_eq!(peer.call(&request(5, "echo", json!(null)))["id"], 5);
    let (status, stderr) = peer.finish();
    assert!(status.success(), "exit {status}, stderr {stderr}");
    assert!(stderr.is_empty(), "{stderr}");
}

#[test]
fn ndjson_peer_answers_its_method_table_and_exits_0_at_end_of_stdin() {
    within_deadline(|| method_table_in(Framing::Ndjson));
}

#[test]
fn content_length_peer_answers_its_method_table_and_exits_0_at_end_of_stdin() {
    within_deadline(|| method_table_in(Framing::ContentLength));
}

fn chatty_in(framing: Framing) {
    let mut peer = Peer::spawn(framing, &["--chatty"]);
    peer.send(&request(1, "echo", json!({"q": 1})));
    let notification = peer.recv().unwrap();
    assert_eq!(notification["method"], PROGRESS_METHOD);
    assert!(notification.get("id").is_none());
    assert_eq!(
        peer.recv().unwrap(),
        json!({"jsonrpc": "2.0", "id": "peer-1", "method": PEER_METHOD, "params": {}})
    );
    // A request sent before the reply waits its turn.
    peer.send(&request(2, "echo", json!("second")));
    peer.send(&json!({"jsonrpc": "2.0", "id": "peer-1", "result": {"answer": 42}}));
    assert_eq!(peer.recv().unwrap()["result"]["echo"], json!({"q": 1}));

    assert_eq!(peer.recv().unwrap()["method"], PROGRESS_METHOD);
    assert_eq!(peer.recv().unwrap()["id"], "peer-2");
    peer.send(&json!({"jsonrpc": "2.0", "id": "peer-2", "result": null}));
    assert_eq!(peer.recv().unwrap()["result"]["echo"], "second");

    let (status, stderr) = peer.finish();
    assert!(status.success(), "exit {status}, stderr {stderr}");
    assert!(
        stderr.contains(r#""answer":42"#),
        "the reply is logged: {stderr}"
    );
    assert_eq!(stderr.matches("peer reply").count(), 2, "{stderr}");
}

#[test]
fn chatty_ndjson_peer_waits_for_the_reply_to_its_own_request() {
    within_deadline(|| chatty_in(Framing::Ndjson));
}

#[test]
fn chatty_content_length_peer_waits_for_the_reply_to_its_own_request() {
    within_deadline(|| chatty_in(Framing::ContentLength));
}

#[test]
fn mismatched_id_peer_answers_with_another_id() {
    within_deadline(|| {
        let mut peer = Peer::spawn(Framing::Ndjson, &["--mismatched-id"]);
        for id in [json!(1), json!("one")] {
            let answer = peer.call(&request(id.clone(), "echo", json!(1)));
            assert_ne!(answer["id"], id);
            assert_eq!(answer["result"]["echo"], 1);
        }
        assert!(peer.finish().0.success());
    });
}

#[test]
fn exit_after_n_requests_stops_answering_and_exits_0() {
    within_deadline(|| {
        let mut peer = Peer::spawn(Framing::ContentLength, &["--exit-after", "2"]);
        peer.send(&request(1, "echo", json!(1)));
        peer.send(&request(2, "echo", json!(2)));
        peer.send(&request(3, "echo", json!(3)));
        assert_eq!(peer.recv().unwrap()["id"], 1);
        assert_eq!(peer.recv().unwrap()["id"], 2);
        assert_eq!(peer.recv(), None, "no answer past the limit");
        let status = peer.child.wait().unwrap();
        assert_eq!(status.code(), Some(0));
    });
}

#[test]
fn stderr_noise_writes_one_line_per_request() {
    within_deadline(|| {
        let mut peer = Peer::spawn(Framing::Ndjson, &["--stderr-noise"]);
        for id in 0..3 {
            peer.call(&request(id, "echo", json!(id)));
        }
        peer.send(&json!({"jsonrpc": "2.0", "method": "note"}));
        let (status, stderr) = peer.finish();
        assert!(status.success());
        assert_eq!(stderr.lines().count(), 3, "{stderr}");
    });
}

#[test]
fn broken_messages_are_answered_and_the_peer_keeps_going() {
    within_deadline(|| {
        let mut peer = Peer::spawn(Framing::Ndjson, &[]);
        peer.send_raw(b"{nope\n\n   \n");
        let answer = peer.recv().unwrap();
        assert_eq!(answer["error"]["code"], -32700);
        assert_eq!(answer["id"], Value::Null);
        peer.send(&json!([1]));
        assert_eq!(peer.recv().unwrap()["error"]["code"], -32600);
        assert_eq!(
            peer.call(&request(1, "echo", json!("ok")))["result"]["echo"],
            "ok"
        );
        assert!(peer.finish().0.success());
    });
}

#[test]
fn content_length_headers_other_than_the_length_are_ignored() {
    within_deadline(|| {
        let mut peer = Peer::spawn(Framing::ContentLength, &[]);
        let body = request(1, "echo", json!("typed")).to_string();
        peer.send_raw(
            format!(
                "Content-Type: application/vscode-jsonrpc; charset=utf-8\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        );
        assert_eq!(peer.recv().unwrap()["result"]["echo"], "typed");
        assert!(peer.finish().0.success());
    });
}

#[test]
fn a_header_cut_short_by_end_of_stdin_exits_1() {
    within_deadline(|| {
        let mut peer = Peer::spawn(Framing::ContentLength, &[]);
        peer.send_raw(b"Content-Length: 10\r\n");
        let (status, stderr) = peer.finish();
        assert_eq!(status.code(), Some(1));
        assert!(stderr.contains("inside a message header"), "{stderr}");
    });
}

#[test]
fn bad_arguments_exit_2_with_usage() {
    within_deadline(|| {
        for args in [&["--framing", "xml"][..], &["--bogus"], &["--exit-after"]] {
            let output = Command::new(PEER).args(args).output().unwrap();
            assert_eq!(output.status.code(), Some(2), "{args:?}");
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(stderr.contains("usage: ep-jsonrpc-peer"), "{stderr}");
        }
    });
}
