//! One stream's life: connect (and reconnect), read the body as it arrives, parse it, hand out
//! one event per pull. Reads are bounded by the parser's line and event caps and by one chunk
//! (at most 64 KiB) at a time, so a server cannot grow the lane's memory without bound.

use std::collections::VecDeque;
use std::time::Duration;

use execution_plane_sdk::http::{self, BodyStream, HttpError, Method, Options};
use execution_plane_sdk::sse::SseParser;
use execution_plane_sdk::{Event, EventSource, FailureClass, Outcome, json, log};

use crate::payload::Plan;

/// The reconnect delay when the server never set `retry`.
const DEFAULT_RETRY_MS: u64 = 1_000;
/// The longest reconnect delay honoured (a server's `retry` beyond it is cut).
const MAX_RETRY_MS: u64 = 30_000;

/// A stream in progress.
pub struct Session {
    plan: Plan,
    parser: SseParser,
    body: Option<BodyStream>,
    ready: VecDeque<Event>,
    /// The id sent as `Last-Event-ID` on a reconnect.
    last_event_id: String,
    /// The parser's last event id when last looked at (a change is the server's).
    seen_id: String,
    retry_ms: Option<u64>,
    events: u64,
    connections: u32,
    reconnects: u32,
    /// Wait this long before the next connect (a reconnect).
    delay: Option<Duration>,
    end: Option<Outcome>,
}

impl Session {
    pub fn new(plan: Plan) -> Self {
        Self {
            last_event_id: plan.last_event_id.clone(),
            plan,
            parser: SseParser::new(),
            body: None,
            ready: VecDeque::new(),
            seen_id: String::new(),
            retry_ms: None,
            events: 0,
            connections: 0,
            reconnects: 0,
            delay: None,
            end: None,
        }
    }

    /// What every outcome's output holds.
    fn summary(&self) -> execution_plane_sdk::Value {
        json!({
            "events": self.events,
            "connections": self.connections,
            "reconnects": self.reconnects,
            "last_event_id": self.last_event_id,
        })
    }

    fn succeed(&mut self) {
        self.body = None;
        self.end = Some(Outcome::success(self.summary()));
    }

    fn fail(&mut self, class: FailureClass, reason: &str, mut details: execution_plane_sdk::Value) {
        self.body = None;
        if let Some(map) = details.as_object_mut() {
            map.insert("stream".to_owned(), self.summary());
        }
        self.end = Some(Outcome::failed(class, reason, details).with_output(self.summary()));
    }

    /// Opens the connection (after the reconnect delay, if any).
    fn connect(&mut self) {
        if let Some(delay) = self.delay.take() {
            std::thread::sleep(delay);
        }
        let mut request = http::Request::new(Method::Get, self.plan.url.clone())
            .header("accept", "text/event-stream")
            .header("cache-control", "no-cache");
        for (name, value) in &self.plan.headers {
            request = request.header(name.clone(), value.clone());
        }
        if !self.last_event_id.is_empty() {
            request = request.header("last-event-id", self.last_event_id.clone());
        }
        let wait = Duration::from_millis(self.plan.receive_timeout_ms);
        let mut options = Options::new().with_timeout(wait);
        options.between_bytes_timeout = Some(wait);
        match http::open(&request, &options) {
            Ok(response) if response.status == 204 => {
                // The server's way of saying "do not reconnect".
                self.ready.push_back(Event::new(
                    "sse.closed",
                    json!({"status": 204, "reason": "no_content"}),
                ));
                self.succeed();
            }
            Ok(response) if response.status != 200 => {
                self.fail(
                    FailureClass::SemanticRuntimeFailed,
                    "http_status",
                    json!({"status": response.status}),
                );
            }
            Ok(response) => {
                let content_type = response.header("content-type").unwrap_or_default();
                let essence = content_type.split(';').next().unwrap_or_default().trim();
                if !essence.eq_ignore_ascii_case("text/event-stream") {
                    self.fail(
                        FailureClass::ProtocolFramingFailed,
                        "not_an_event_stream",
                        json!({"content_type": content_type}),
                    );
                    return;
                }
                self.connections += 1;
                self.parser.reset_for_reconnect();
                log::debug(&format!(
                    "sse connection {} to {}",
                    self.connections, self.plan.url
                ));
                self.ready.push_back(Event::new(
                    "sse.open",
                    json!({
                        "status": response.status,
                        "connection": self.connections,
                        "last_event_id": self.last_event_id,
                    }),
                ));
                self.body = Some(response.body);
            }
            Err(HttpError::Denied(denial)) => {
                let (reason, message) = denial.map(|d| (d.reason, d.message)).unwrap_or_default();
                self.fail(
                    FailureClass::PolicyDenied,
                    "egress_denied",
                    json!({"denial": reason, "message": message}),
                );
            }
            Err(HttpError::Timeout(kind)) => self.fail(
                FailureClass::Timeout,
                "receive_timeout",
                json!({"phase": kind.as_str(), "timeout_ms": self.plan.receive_timeout_ms}),
            ),
            Err(error) => self.lost("connect_failed", &error.to_string()),
        }
    }

    /// The connection ended (`cause`): reconnect while the budget lasts.
    fn lost(&mut self, cause: &str, message: &str) {
        self.body = None;
        if self.reconnects >= self.plan.reconnects {
            if self.plan.reconnects == 0 && cause == "closed" {
                self.succeed();
            } else {
                self.fail(
                    FailureClass::TransportFailed,
                    if self.plan.reconnects == 0 {
                        cause
                    } else {
                        "reconnect_budget_exhausted"
                    },
                    json!({"cause": cause, "message": message, "attempts": self.reconnects}),
                );
            }
            return;
        }
        self.reconnects += 1;
        let delay_ms = self.retry_ms.unwrap_or(DEFAULT_RETRY_MS).min(MAX_RETRY_MS);
        self.delay = Some(Duration::from_millis(delay_ms));
        self.ready.push_back(Event::new(
            "sse.reconnecting",
            json!({
                "attempt": self.reconnects,
                "delay_ms": delay_ms,
                "cause": cause,
                "last_event_id": self.last_event_id,
            }),
        ));
    }

    /// Reads the next chunk of the body and parses it.
    fn read(&mut self) {
        let Some(body) = self.body.as_mut() else {
            return;
        };
        match body.read() {
            Ok(Some(chunk)) => self.parse(&chunk),
            Ok(None) => {
                let cut = self.parser.finish();
                self.lost(
                    if cut { "cut_mid_event" } else { "closed" },
                    "the server ended the body",
                );
            }
            Err(HttpError::Timeout(_)) => self.fail(
                FailureClass::Timeout,
                "receive_timeout",
                json!({"timeout_ms": self.plan.receive_timeout_ms}),
            ),
            Err(error) => self.lost("dropped", &error.to_string()),
        }
    }

    fn parse(&mut self, chunk: &[u8]) {
        let ready = &mut self.ready;
        let mut dispatched = 0u64;
        let parsed = self.parser.push_each(chunk, |event| {
            dispatched += 1;
            ready.push_back(Event::new(
                "sse.event",
                json!({"event": event.event, "data": event.data, "id": event.id}),
            ));
        });
        self.events += dispatched;
        if self.parser.last_event_id() != self.seen_id {
            self.seen_id = self.parser.last_event_id().to_owned();
            self.last_event_id.clone_from(&self.seen_id);
        }
        if self.parser.retry_ms() != self.retry_ms {
            self.retry_ms = self.parser.retry_ms();
            ready_retry(&mut self.ready, self.retry_ms);
        }
        if let Err(error) = parsed {
            self.fail(
                FailureClass::ProtocolFramingFailed,
                "event_stream_invalid",
                json!({"message": error.to_string()}),
            );
            return;
        }
        if let Some(max) = self.plan.max_events
            && self.events >= max
        {
            // Events past the cap in the same chunk are not handed out.
            let excess = usize::try_from(self.events - max).unwrap_or(usize::MAX);
            let keep = self.ready.len().saturating_sub(excess);
            self.ready.truncate(keep);
            self.events = max;
            self.succeed();
        }
    }
}

fn ready_retry(ready: &mut VecDeque<Event>, retry_ms: Option<u64>) {
    if let Some(retry_ms) = retry_ms {
        ready.push_back(Event::new("sse.retry", json!({"retry_ms": retry_ms})));
    }
}

impl EventSource for Session {
    fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Some(event);
            }
            if self.end.is_some() {
                return None;
            }
            if self.body.is_none() {
                self.connect();
            } else {
                self.read();
            }
        }
    }

    fn outcome(&mut self) -> Outcome {
        self.end
            .take()
            .unwrap_or_else(|| Outcome::success(self.summary()))
    }
}
