//! The first-party `http` lane: one HTTP request per execution through the SDK's
//! [`http::send`], redirects followed as new requests (each checked against the lane's grants
//! by the host), any status a success.
//!
//! Payload: `url` (required), `method` (default `POST`), `headers`, `body`, `max_redirects`
//! (default 5, at most 20), `max_response_bytes` (default 8 MiB), `cross_origin_headers`
//! (headers a redirect to another origin keeps beyond the safe ones). Output: `status_code`,
//! `headers`, `body` (+ `body_encoding`), `url`, `redirects`. `plugins/README.md` has the whole
//! contract, failures included.

mod failure;
mod output;
mod plan;
mod redirect;

use std::time::{Duration, Instant};

use execution_plane_sdk::http::{self, Options};
use execution_plane_sdk::{
    Capabilities, EventSource, Lane, Outcome, Rejection, Request, events, export_lane, json, log,
};

use crate::failure::Context;
use crate::plan::{Plan, PlanError};

/// The lane id, in the manifest (`http.toml`) and in `capabilities()`.
pub const LANE_ID: &str = "http";

/// The HTTP unary lane.
pub struct HttpLane;

impl Lane for HttpLane {
    fn capabilities() -> Capabilities {
        Capabilities::new(LANE_ID)
            .protocol("http")
            .surface("http")
            .surface("https")
    }

    fn validate(req: &Request) -> Result<(), Rejection> {
        plan::check(req)
    }

    fn execute(req: Request) -> Outcome {
        let started = Instant::now();
        let plan = match Plan::from_request(&req) {
            Ok(plan) => plan,
            Err(PlanError::Rejected(rejection)) => return Outcome::from(rejection),
            Err(PlanError::InvalidMethod(given)) => return failure::invalid_method(&given),
        };
        let deadline =
            (req.timeout_ms > 0).then(|| started + Duration::from_millis(req.timeout_ms));
        let exchange = Exchange {
            plan,
            deadline,
            timeout_ms: req.timeout_ms,
        };
        let (outcome, redirects, response_bytes) = exchange.run();
        outcome
            .with_metric("duration_ms", elapsed_ms(started))
            .with_metric("redirects", redirects)
            .with_metric("response_bytes", response_bytes)
    }

    fn stream(_: Request) -> Result<Box<dyn EventSource>, Rejection> {
        Err(Rejection::not_supported("HTTP unary lane does not stream")
            .with_detail("lane_id", LANE_ID))
    }
}

export_lane!(HttpLane);

/// One execution's requests, from the first to the final response.
struct Exchange {
    plan: Plan,
    deadline: Option<Instant>,
    timeout_ms: u64,
}

impl Exchange {
    /// Sends the first request and follows redirects; returns the outcome, the number of
    /// redirects followed and the final body's size.
    fn run(self) -> (Outcome, usize, usize) {
        let mut request = self.plan.request.clone();
        let mut redirects: Vec<String> = Vec::new();
        loop {
            let at = Context {
                url: request.url(),
                redirects: &redirects,
                timeout_ms: self.timeout_ms,
                max_response_bytes: self.plan.max_response_bytes,
            };
            let Some(options) = self.options() else {
                return (failure::deadline(at), redirects.len(), 0);
            };
            let response = match http::send(&request, &options) {
                Ok(response) => response,
                Err(error) => return (failure::from_http_error(&error, at), redirects.len(), 0),
            };
            let location = redirect::is_redirect(response.status)
                .then(|| response.header("location"))
                .flatten()
                .filter(|_| self.plan.max_redirects > 0);
            let Some(location) = location else {
                log::debug(&format!(
                    "{} answered {} after {} redirects",
                    request.method(),
                    response.status,
                    redirects.len()
                ));
                let size = response.body.len();
                let shaped = output::shape(response, request.url(), &redirects);
                return (Outcome::success(shaped), redirects.len(), size);
            };
            if redirects.len() >= self.plan.max_redirects as usize {
                return (
                    failure::too_many_redirects(self.plan.max_redirects, at),
                    redirects.len(),
                    0,
                );
            }
            let next = match redirect::follow(
                &request,
                response.status,
                location,
                &self.plan.cross_origin_headers,
            ) {
                Ok(next) => next,
                Err(error) => {
                    return (
                        failure::invalid_redirect(location, &error, at),
                        redirects.len(),
                        0,
                    );
                }
            };
            events::emit(
                "http.redirect",
                &json!({
                    "from": request.url().to_string(),
                    "to": next.url().to_string(),
                    "status": response.status,
                }),
            );
            redirects.push(next.url().to_string());
            request = next;
        }
    }

    /// The next request's options: timeouts bounded by what is left of the execution's time,
    /// or `None` when nothing is left.
    fn options(&self) -> Option<Options> {
        let options = Options::new().with_max_response_bytes(self.plan.max_response_bytes);
        match self.deadline {
            None => Some(options),
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                (!left.is_zero()).then(|| options.with_timeout(left))
            }
        }
    }
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use execution_plane_sdk::http::{HttpError, Method, Response};
    use execution_plane_sdk::{Event, FailureClass, Value, testing};

    use super::*;

    fn response(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Response {
        Response {
            status,
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
            body: body.to_vec(),
        }
    }

    /// Answers requests by path from `routes`; unknown paths are 404.
    fn serve(routes: Vec<(&'static str, Response)>) {
        testing::mock_http(move |request| {
            let path = request.url().path_with_query();
            Ok(routes
                .iter()
                .find(|(p, _)| *p == path)
                .map_or_else(|| response(404, &[], b""), |(_, r)| r.clone()))
        });
    }

    fn execute(payload: Value) -> Outcome {
        testing::execute::<HttpLane>(Request::new(payload))
    }

    fn failure_of(outcome: &Outcome) -> (FailureClass, String, Value) {
        let f = outcome.failure().expect("a failure");
        (f.class, f.reason.clone(), Value::Object(f.details.clone()))
    }

    #[test]
    fn capabilities_describe_a_unary_http_lane() {
        let c = HttpLane::capabilities();
        assert_eq!(c.lane_id(), "http");
        assert_eq!(c.protocols(), ["http"]);
        assert_eq!(c.surfaces(), ["http", "https"]);
        assert!(c.supports_execute() && !c.supports_stream());
    }

    #[test]
    fn stream_is_not_supported_and_names_the_lane() {
        let r = testing::stream::<HttpLane>(Request::new(json!({"url": "http://h/"}))).unwrap_err();
        assert_eq!(r.reason, "not_supported");
        assert_eq!(r.message, "HTTP unary lane does not stream");
        assert_eq!(r.details["lane_id"], "http");
    }

    #[test]
    fn validate_refuses_a_missing_url_before_any_io() {
        let r = testing::validate::<HttpLane>(&Request::new(json!({"method": "GET"}))).unwrap_err();
        assert_eq!(r.reason, "invalid_lane_request");
        assert!(r.message.contains("`url`"), "{}", r.message);
        assert!(testing::take_http_requests().is_empty());
    }

    #[test]
    fn a_post_sends_json_and_any_status_is_a_success() {
        serve(vec![(
            "/echo",
            response(
                201,
                &[("Content-Type", "application/json")],
                b"{\"ok\":true}",
            ),
        )]);
        let outcome = execute(json!({"url": "http://h/echo", "body": {"ping": "pong"}}));
        assert!(outcome.is_success(), "{outcome:?}");
        assert_eq!(
            json!(outcome.output()),
            json!({
                "status_code": 201,
                "headers": {"content-type": "application/json"},
                "body": "{\"ok\":true}",
                "body_encoding": "utf8",
                "url": "http://h/echo",
                "redirects": [],
            })
        );
        let sent = testing::take_http_requests();
        let (request, _) = &sent[0];
        assert_eq!(request.method(), &Method::Post);
        assert_eq!(request.body_bytes(), br#"{"ping":"pong"}"#);
        assert_eq!(
            request.headers(),
            [("content-type".to_owned(), "application/json".to_owned())]
        );
        assert_eq!(outcome.metrics()["redirects"], 0);
        assert_eq!(outcome.metrics()["response_bytes"], 11);
        assert!(outcome.metrics()["duration_ms"].is_u64());
    }

    #[test]
    fn error_statuses_are_successes_too() {
        serve(vec![("/boom", response(503, &[], b"down"))]);
        let outcome = execute(json!({"url": "http://h/boom", "method": "get"}));
        assert!(outcome.is_success());
        assert_eq!(outcome.output()["status_code"], 503);
    }

    #[test]
    fn a_binary_body_comes_back_as_base64() {
        serve(vec![("/bin", response(200, &[], &[0xff, 0xfe]))]);
        let outcome = execute(json!({"url": "http://h/bin", "method": "GET"}));
        assert_eq!(outcome.output()["body"], "//4=");
        assert_eq!(outcome.output()["body_encoding"], "base64");
    }

    #[test]
    fn an_invalid_method_fails_before_any_io() {
        let outcome = execute(json!({"url": "http://h/", "method": "BREW"}));
        let (class, reason, details) = failure_of(&outcome);
        assert_eq!(class, FailureClass::TransportFailed);
        assert_eq!(reason, "invalid http method");
        assert_eq!(
            details,
            json!({"error": "invalid_http_method: \"BREW\"", "cause": "invalid_method"})
        );
        assert!(testing::take_http_requests().is_empty());
    }

    #[test]
    fn redirects_are_followed_as_new_requests_with_an_event_per_hop() {
        serve(vec![
            ("/a", response(302, &[("location", "/b")], b"")),
            (
                "/b",
                response(307, &[("Location", "http://other/c?x=1")], b""),
            ),
            ("/c?x=1", response(200, &[], b"done")),
        ]);
        let outcome = execute(json!({"url": "http://h/a", "body": "payload"}));
        assert!(outcome.is_success(), "{outcome:?}");
        assert_eq!(outcome.output()["url"], "http://other/c?x=1");
        assert_eq!(
            outcome.output()["redirects"],
            json!(["http://h/b", "http://other/c?x=1"])
        );
        assert_eq!(outcome.metrics()["redirects"], 2);
        let methods: Vec<(Method, Vec<u8>)> = testing::take_http_requests()
            .into_iter()
            .map(|(r, _)| (r.method().clone(), r.body_bytes().to_vec()))
            .collect();
        // 302 after POST switches to GET without a body; 307 keeps GET.
        assert_eq!(
            methods,
            [
                (Method::Post, b"payload".to_vec()),
                (Method::Get, Vec::new()),
                (Method::Get, Vec::new()),
            ]
        );
        assert_eq!(
            testing::take_events(),
            [
                Event::new(
                    "http.redirect",
                    json!({"from": "http://h/a", "to": "http://h/b", "status": 302})
                ),
                Event::new(
                    "http.redirect",
                    json!({"from": "http://h/b", "to": "http://other/c?x=1", "status": 307})
                ),
            ]
        );
    }

    #[test]
    fn too_many_redirects_fail_with_the_cause() {
        serve(vec![
            ("/a", response(301, &[("location", "/b")], b"")),
            ("/b", response(301, &[("location", "/a")], b"")),
        ]);
        let outcome = execute(json!({"url": "http://h/a", "method": "GET", "max_redirects": 3}));
        let (class, reason, details) = failure_of(&outcome);
        assert_eq!(class, FailureClass::TransportFailed);
        assert_eq!(reason, "too many redirects");
        assert_eq!(details["cause"], "too_many_redirects");
        assert_eq!(details["max_redirects"], 3);
        assert_eq!(testing::take_http_requests().len(), 4);
    }

    #[test]
    fn max_redirects_zero_returns_the_redirect_itself() {
        serve(vec![("/a", response(302, &[("location", "/b")], b""))]);
        let outcome = execute(json!({"url": "http://h/a", "max_redirects": 0}));
        assert_eq!(outcome.output()["status_code"], 302);
        assert_eq!(outcome.output()["headers"]["location"], "/b");
        assert_eq!(testing::take_http_requests().len(), 1);
    }

    #[test]
    fn a_redirect_without_location_is_the_answer() {
        serve(vec![("/a", response(301, &[], b"moved"))]);
        let outcome = execute(json!({"url": "http://h/a"}));
        assert_eq!(outcome.output()["status_code"], 301);
    }

    #[test]
    fn a_location_the_lane_cannot_follow_fails_as_invalid_redirect() {
        serve(vec![(
            "/a",
            response(302, &[("location", "ftp://h/f")], b""),
        )]);
        let (class, _, details) = failure_of(&execute(json!({"url": "http://h/a"})));
        assert_eq!(class, FailureClass::TransportFailed);
        assert_eq!(details["cause"], "invalid_redirect");
        assert_eq!(details["location"], "ftp://h/f");
    }

    #[test]
    fn a_denied_hop_is_policy_denied_naming_its_url() {
        testing::mock_http(|request| {
            if request.url().host() == "h" {
                Ok(response(302, &[("location", "http://forbidden/x")], b""))
            } else {
                Err(HttpError::Denied(None))
            }
        });
        let (class, reason, details) = failure_of(&execute(json!({"url": "http://h/a"})));
        assert_eq!(class, FailureClass::PolicyDenied);
        assert_eq!(reason, "http request denied by the lane's grants");
        assert_eq!(details["cause"], "capability_denied");
        assert_eq!(details["url"], "http://forbidden/x");
        assert_eq!(details["redirects"], json!(["http://forbidden/x"]));
    }

    #[test]
    fn timeouts_and_transport_errors_map_to_their_classes() {
        testing::mock_http(|_| Err(HttpError::Timeout(http::TimeoutKind::Read)));
        let (class, _, details) = failure_of(&execute(json!({"url": "http://h/"})));
        assert_eq!(class, FailureClass::Timeout);
        assert_eq!(
            (details["cause"].as_str(), details["timeout"].as_str()),
            (Some("deadline"), Some("read"))
        );
        testing::mock_http(|_| Err(HttpError::Transport("ConnectionRefused".into())));
        let (class, reason, details) = failure_of(&execute(json!({"url": "http://h/"})));
        assert_eq!(class, FailureClass::TransportFailed);
        assert_eq!(reason, "http request failed");
        assert_eq!(details["error"], "ConnectionRefused");
        assert_eq!(details["cause"], "transport");
    }

    #[test]
    fn a_body_over_the_cap_is_response_too_large() {
        serve(vec![("/big", response(200, &[], &[b'x'; 11]))]);
        let outcome = execute(json!({"url": "http://h/big", "max_response_bytes": 10}));
        let (class, _, details) = failure_of(&outcome);
        assert_eq!(class, FailureClass::TransportFailed);
        assert_eq!(details["cause"], "response_too_large");
        assert_eq!(details["max_response_bytes"], 10);
    }

    #[test]
    fn the_execution_timeout_bounds_every_request_timeout() {
        serve(vec![("/", response(200, &[], b""))]);
        let mut req = Request::new(json!({"url": "http://h/"}));
        req.timeout_ms = 60_000;
        assert!(testing::execute::<HttpLane>(req).is_success());
        let sent = testing::take_http_requests();
        let options = &sent[0].1;
        for timeout in [
            options.connect_timeout,
            options.first_byte_timeout,
            options.between_bytes_timeout,
        ] {
            let timeout = timeout.expect("a timeout");
            assert!(timeout <= Duration::from_secs(60) && timeout > Duration::from_secs(59));
        }
        assert_eq!(options.max_response_bytes, 8 * 1024 * 1024);
    }

    #[test]
    fn redirects_share_one_deadline() {
        let seen = Rc::new(RefCell::new(0));
        let counter = Rc::clone(&seen);
        testing::mock_http(move |_| {
            *counter.borrow_mut() += 1;
            std::thread::sleep(Duration::from_millis(30));
            Ok(response(307, &[("location", "/again")], b""))
        });
        let mut req = Request::new(json!({"url": "http://h/", "max_redirects": 20}));
        req.timeout_ms = 50;
        let (class, _, details) = failure_of(&testing::execute::<HttpLane>(req));
        assert_eq!(class, FailureClass::Timeout);
        assert_eq!(details["timeout"], "execution");
        assert_eq!(*seen.borrow(), 2);
    }
}
