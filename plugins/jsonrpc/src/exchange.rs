//! `execute`: one call, its matching response. Notifications and peer requests that come
//! first are reported as events (and the peer's requests answered by policy); the outcome is
//! the response's `result`, or the typed failure of upstream's process-backed JSON-RPC
//! (`semantic_runtime_failed` for an error response, `protocol_framing_failed` for a bad or
//! mismatched one, `timeout`, `launch_failed`, `transport_failed`).

use std::time::{Duration, Instant};

use execution_plane_sdk::{FailureClass, Outcome, Value, events, json};

use crate::conversation::{Conversation, Handled, Sent};
use crate::payload::Plan;
use crate::transport::{self, Arrived, Transport, TransportError};

/// Runs the call of `plan` (whose `request` validation made sure of) within `budget`.
pub fn call(plan: &Plan, budget: Option<Duration>) -> Outcome {
    let started = Instant::now();
    let timeout = plan.timeout_ms.map(Duration::from_millis).or(budget);
    let until = timeout.map(|timeout| started + timeout);
    let mut transport = match transport::open(&plan.binding, timeout) {
        Ok(transport) => transport,
        Err(error) => return transport_failure(&error, None),
    };
    let mut conversation = Conversation::new(plan);
    let outcome = run(plan, &mut conversation, transport.as_mut(), until, timeout);
    transport.close();
    let summary = transport.summary();
    let counts = conversation.counts();
    let mut output = outcome.output().clone();
    output.insert("transport".to_owned(), summary);
    output.insert("counts".to_owned(), counts);
    outcome.with_output(Value::Object(output)).with_metric(
        "duration_ms",
        u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    )
}

fn run(
    plan: &Plan,
    conversation: &mut Conversation,
    transport: &mut dyn Transport,
    until: Option<Instant>,
    timeout: Option<Duration>,
) -> Outcome {
    let Some(request) = plan.request.as_ref() else {
        return Outcome::failed(
            FailureClass::ProtocolFramingFailed,
            "invalid_lane_request",
            json!({"field": "request"}),
        );
    };
    if plan.ready_method.is_some()
        && let Err(outcome) =
            receive_until(conversation, transport, until, timeout, &mut |_, ready| {
                ready
            })
    {
        return outcome;
    }
    let id = match conversation.request(transport, request) {
        Ok((id, _)) => id,
        Err(Sent::Invalid(message)) => {
            return Outcome::failed(
                FailureClass::ProtocolFramingFailed,
                "invalid_lane_request",
                json!({"message": message}),
            );
        }
        Err(Sent::Transport(error)) => return transport_failure(&error, None),
    };
    let mut answer = None;
    let waited = receive_until(
        conversation,
        transport,
        until,
        timeout,
        &mut |handled, _| {
            if let Handled::Response {
                id: answered,
                message,
                result,
            } = handled
                && *answered == id
            {
                answer = Some((message.clone(), result.clone()));
                return true;
            }
            false
        },
    );
    if let Err(outcome) = waited {
        return outcome;
    }
    match answer {
        Some((response, Ok(result))) => {
            Outcome::success(json!({"id": id, "result": result, "response": response}))
        }
        Some((response, Err(error))) => Outcome::failed(
            FailureClass::SemanticRuntimeFailed,
            "jsonrpc response returned an error",
            json!({"id": id, "error": error, "response": response}),
        ),
        None => Outcome::failed(
            FailureClass::TransportFailed,
            "transport_failed",
            json!({"id": id}),
        ),
    }
}

/// Receives and handles frames until `done` says so; a frame that is no JSON-RPC message (or
/// answers nothing we asked), the peer leaving, or the time running out ends the call.
fn receive_until(
    conversation: &mut Conversation,
    transport: &mut dyn Transport,
    until: Option<Instant>,
    timeout: Option<Duration>,
    done: &mut dyn FnMut(&Handled, bool) -> bool,
) -> Result<(), Outcome> {
    loop {
        match transport.try_receive() {
            Err(error) => return Err(transport_failure(&error, None)),
            Ok(Some(Arrived::Frame(frame))) => {
                let (handled, ready) = conversation
                    .handle(transport, &frame)
                    .map_err(|error| transport_failure(&error, None))?;
                if done(&handled, ready) {
                    return Ok(());
                }
                match handled {
                    Handled::Reported(event) => events::emit(&event.event_type, &event.payload),
                    Handled::Protocol(message) => {
                        return Err(Outcome::failed(
                            FailureClass::ProtocolFramingFailed,
                            "invalid jsonrpc response",
                            json!({"message": message}),
                        ));
                    }
                    Handled::Response { id, .. } => {
                        events::emit("jsonrpc.response", &json!({"id": id}))
                    }
                }
            }
            Ok(Some(Arrived::Closed)) => {
                return Err(Outcome::failed(
                    FailureClass::TransportFailed,
                    "the peer closed before answering",
                    json!({"transport": transport.summary()}),
                ));
            }
            Ok(None) => {
                if until.is_some_and(|until| Instant::now() >= until) {
                    return Err(Outcome::failed(
                        FailureClass::Timeout,
                        "jsonrpc call timed out",
                        json!({"timeout_ms": timeout.map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX))}),
                    ));
                }
                transport.wait(until, false);
            }
        }
    }
}

/// The outcome of a transport failure.
pub fn transport_failure(error: &TransportError, id: Option<&Value>) -> Outcome {
    let (class, reason) = error.class();
    Outcome::failed(class, reason, json!({"message": error.message(), "id": id}))
}
