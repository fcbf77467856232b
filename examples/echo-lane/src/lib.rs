//! `example-echo`: a lane built only from the SDK and the WIT. `execute` echoes the payload and
//! the operation back; `stream` sends the message one word per event.

use execution_plane_sdk::{
    Capabilities, Event, EventSource, Lane, Outcome, Rejection, Request, events, export_lane, json,
    log, stream,
};

/// The echo lane.
pub struct EchoLane;

impl Lane for EchoLane {
    fn capabilities() -> Capabilities {
        Capabilities::new("example-echo")
            .protocol("echo")
            .surface("local")
            .with_stream()
    }

    fn validate(req: &Request) -> Result<(), Rejection> {
        req.payload_str("message")?;
        Ok(())
    }

    fn execute(req: Request) -> Outcome {
        let words = req
            .payload_str("message")
            .map_or(0, |m| m.split_whitespace().count());
        events::emit("echo.received", &json!({ "words": words }));
        log::info(&format!("echoing {words} words for {}", req.execution_ref));
        Outcome::success(json!({ "echo": req.payload, "operation": req.operation }))
            .with_metric("words", words)
    }

    fn stream(req: Request) -> Result<Box<dyn EventSource>, Rejection> {
        let words: Vec<String> = req
            .payload_str("message")?
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        let events = words
            .into_iter()
            .enumerate()
            .map(|(index, word)| Event::new("echo.word", json!({ "index": index, "word": word })));
        Ok(stream::from_iter(events))
    }
}

export_lane!(EchoLane);

#[cfg(test)]
mod tests {
    use execution_plane_sdk::log::Level;
    use execution_plane_sdk::{FailureClass, testing};

    use super::*;

    #[test]
    fn execute_echoes_payload_and_operation() {
        let req = Request::new(json!({"message": "hello there", "n": 1})).with_operation("say");
        let outcome = testing::execute::<EchoLane>(req);
        assert!(outcome.is_success());
        assert_eq!(
            json!(outcome.output()),
            json!({"echo": {"message": "hello there", "n": 1}, "operation": "say"})
        );
        assert_eq!(outcome.metrics()["words"], 2);
    }

    #[test]
    fn execute_emits_an_event_and_a_log_line() {
        let mut req = Request::new(json!({"message": "a b c"}));
        req.execution_ref = "exec-7".into();
        assert!(testing::execute::<EchoLane>(req).is_success());
        assert_eq!(
            testing::take_events(),
            [Event::new("echo.received", json!({"words": 3}))]
        );
        assert_eq!(
            testing::take_logs(),
            [(Level::Info, "echoing 3 words for exec-7".to_owned())]
        );
    }

    #[test]
    fn execute_without_an_operation_echoes_null() {
        let outcome = testing::execute::<EchoLane>(Request::new(json!({"message": "x"})));
        assert_eq!(outcome.output()["operation"], json!(null));
    }

    #[test]
    fn a_payload_without_a_message_string_is_an_invalid_lane_request() {
        for payload in [json!({}), json!({"message": 5}), json!({"message": null})] {
            let rejection = testing::validate::<EchoLane>(&Request::new(payload)).unwrap_err();
            assert_eq!(rejection.reason, "invalid_lane_request");
            assert_eq!(rejection.details["field"], "message");
        }
    }

    #[test]
    fn execute_on_an_invalid_request_fails_without_echoing() {
        let outcome = testing::execute::<EchoLane>(Request::new(json!({"msg": "typo"})));
        let failure = outcome.failure().unwrap();
        assert_eq!(failure.class, FailureClass::ProtocolFramingFailed);
        assert_eq!(failure.reason, "invalid_lane_request");
        assert!(testing::take_events().is_empty());
    }

    #[test]
    fn stream_sends_one_event_per_word() {
        let events =
            testing::stream::<EchoLane>(Request::new(json!({"message": " to  be\tor "}))).unwrap();
        assert_eq!(
            events,
            [
                Event::new("echo.word", json!({"index": 0, "word": "to"})),
                Event::new("echo.word", json!({"index": 1, "word": "be"})),
                Event::new("echo.word", json!({"index": 2, "word": "or"})),
            ]
        );
    }

    #[test]
    fn stream_of_an_empty_message_ends_at_once() {
        let events = testing::stream::<EchoLane>(Request::new(json!({"message": ""}))).unwrap();
        assert!(events.is_empty());
    }

    #[test]
    fn stream_refuses_a_request_without_a_message() {
        let rejection = testing::stream::<EchoLane>(Request::new(json!({}))).unwrap_err();
        assert_eq!(rejection.reason, "invalid_lane_request");
    }

    #[test]
    fn capabilities_name_the_lane_and_its_stream_support() {
        let caps = EchoLane::capabilities();
        assert_eq!(caps.lane_id(), "example-echo");
        assert!(caps.supports_execute() && caps.supports_stream());
    }
}
