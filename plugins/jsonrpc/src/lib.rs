//! The first-party `jsonrpc` lane: JSON-RPC 2.0 to a peer over HTTP POST, a WebSocket, or a
//! local process's stdio with newline-delimited JSON or LSP-style `Content-Length` framing (a
//! language server, an MCP server), on the SDK's codec and correlation state machine
//! ([`execution_plane_sdk::jsonrpc`]).
//!
//! `execute` makes one call and returns its matching response; `stream` holds a conversation
//! (caller input messages out, every inbound message as an event). `plugins/README.md` has the
//! whole contract: payload, events, outputs, failures.

mod conversation;
mod duplex;
mod exchange;
mod payload;
mod session;
mod transport;

use std::time::Duration;

use execution_plane_sdk::{
    Capabilities, EventSource, Lane, Outcome, Rejection, Request, export_lane,
};

use crate::payload::Plan;

/// The lane id, in the manifest (`jsonrpc.toml`) and in `capabilities()`.
pub const LANE_ID: &str = "jsonrpc";

/// The JSON-RPC lane.
pub struct JsonRpcLane;

impl Lane for JsonRpcLane {
    fn capabilities() -> Capabilities {
        Capabilities::new(LANE_ID)
            .protocol("jsonrpc")
            .surface("http")
            .surface("https")
            .surface("ws")
            .surface("wss")
            .surface("local_subprocess")
            .with_stream()
            .metadata("process_backed", true)
    }

    fn validate(req: &Request) -> Result<(), Rejection> {
        // `execute` needs a request; a stream may start without one: both are checked when
        // they run, this checks what both need.
        Plan::from_request(req, false).map(drop)
    }

    fn execute(req: Request) -> Outcome {
        match Plan::from_request(&req, true) {
            Ok(plan) => {
                let budget = (req.timeout_ms > 0).then(|| Duration::from_millis(req.timeout_ms));
                exchange::call(&plan, budget)
            }
            Err(rejection) => Outcome::from(rejection),
        }
    }

    fn stream(req: Request) -> Result<Box<dyn EventSource>, Rejection> {
        let plan = Plan::from_request(&req, false)?;
        Ok(Box::new(session::SessionStream::new(plan)))
    }
}

export_lane!(JsonRpcLane);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use execution_plane_sdk::http::Response;
    use execution_plane_sdk::{FailureClass, Value, json, testing};

    use super::*;

    fn over_http(request: Value) -> Value {
        json!({"request": request, "transport_binding": {"mode": "http", "url": "http://rpc.test/rpc"}})
    }

    fn answer(body: Value) {
        testing::mock_http(move |_| {
            Ok(Response {
                status: 200,
                headers: vec![],
                body: body.to_string().into_bytes(),
            })
        });
    }

    #[test]
    fn a_call_returns_the_matching_responses_result() {
        answer(json!({"jsonrpc": "2.0", "id": 1, "result": {"echo": [1, 2]}}));
        let outcome = testing::execute::<JsonRpcLane>(Request::new(over_http(
            json!({"method": "echo", "params": [1, 2]}),
        )));
        assert!(outcome.is_success(), "{outcome:?}");
        assert_eq!(outcome.output()["result"], json!({"echo": [1, 2]}));
        assert_eq!(outcome.output()["id"], 1);
        let sent = testing::take_http_requests();
        assert_eq!(sent.len(), 1);
        let body: Value =
            execution_plane_sdk::serde_json::from_slice(sent[0].0.body_bytes()).unwrap();
        assert_eq!(
            body,
            json!({"jsonrpc": "2.0", "id": 1, "method": "echo", "params": [1, 2]})
        );
    }

    #[test]
    fn an_error_response_is_a_semantic_runtime_failure_with_the_error() {
        answer(json!({"jsonrpc": "2.0", "id": 1, "error": {"code": -32001, "message": "no"}}));
        let outcome = testing::execute::<JsonRpcLane>(Request::new(over_http(json!("fail"))));
        let failure = outcome.failure().unwrap();
        assert_eq!(failure.class, FailureClass::SemanticRuntimeFailed);
        assert_eq!(failure.reason, "jsonrpc response returned an error");
        assert_eq!(failure.details["error"]["code"], -32001);
    }

    #[test]
    fn a_response_with_another_id_is_a_framing_failure() {
        answer(json!({"jsonrpc": "2.0", "id": "mismatched-1", "result": 1}));
        let outcome = testing::execute::<JsonRpcLane>(Request::new(over_http(json!("echo"))));
        let failure = outcome.failure().unwrap();
        assert_eq!(failure.class, FailureClass::ProtocolFramingFailed);
        assert_eq!(failure.reason, "invalid jsonrpc response");
    }

    #[test]
    fn an_answer_that_is_not_json_is_a_framing_failure() {
        testing::mock_http(|_| {
            Ok(Response {
                status: 200,
                headers: vec![],
                body: b"<html>".to_vec(),
            })
        });
        let outcome = testing::execute::<JsonRpcLane>(Request::new(over_http(json!("echo"))));
        assert_eq!(
            outcome.failure().unwrap().class,
            FailureClass::ProtocolFramingFailed
        );
    }

    #[test]
    fn an_empty_answer_means_the_peer_will_not_answer() {
        testing::mock_http(|_| {
            Ok(Response {
                status: 204,
                headers: vec![],
                body: vec![],
            })
        });
        let outcome = testing::execute::<JsonRpcLane>(Request::new(over_http(json!("echo"))));
        let failure = outcome.failure().unwrap();
        assert_eq!(failure.class, FailureClass::TransportFailed);
    }

    #[test]
    fn a_denied_url_is_policy_denied() {
        testing::mock_http(|_| Err(execution_plane_sdk::http::HttpError::Denied(None)));
        let outcome = testing::execute::<JsonRpcLane>(Request::new(over_http(json!("echo"))));
        assert_eq!(outcome.failure().unwrap().class, FailureClass::PolicyDenied);
    }

    #[test]
    fn a_stream_over_http_sends_the_request_and_reports_the_response() {
        // The peer answers each request with its method name.
        testing::mock_http(|request| {
            let asked: Value =
                execution_plane_sdk::serde_json::from_slice(request.body_bytes()).unwrap();
            let body = json!({"jsonrpc": "2.0", "id": asked["id"], "result": asked["method"]});
            Ok(Response {
                status: 200,
                headers: vec![],
                body: body.to_string().into_bytes(),
            })
        });
        testing::push_input(execution_plane_sdk::input::Input::Data(
            br#"{"method": "second", "params": {"n": 2}}"#.to_vec(),
        ));
        testing::push_input(execution_plane_sdk::input::Input::Data(
            b"not json".to_vec(),
        ));
        testing::push_input(execution_plane_sdk::input::Input::End);
        let (events, outcome) =
            testing::stream_to_end::<JsonRpcLane>(Request::new(over_http(json!("ping")))).unwrap();
        let kinds: Vec<_> = events.iter().map(|e| e.event_type.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "jsonrpc.open",
                "jsonrpc.sent",
                "jsonrpc.response",
                "jsonrpc.sent",
                "jsonrpc.response",
                "jsonrpc.input_refused"
            ]
        );
        assert_eq!(events[2].payload, json!({"id": 1, "result": "ping"}));
        assert_eq!(events[4].payload, json!({"id": 2, "result": "second"}));
        assert!(outcome.is_success(), "{outcome:?}");
        assert_eq!(outcome.output()["pending"], 0);
        assert_eq!(outcome.output()["sent"], 2);
    }
}
