//! [`RemoteRuntimeClient`]: the [`RuntimeClient`] trait over the network API of `docs/api.md`.
//!
//! Unary calls share a pool of keep-alive connections (hyper-util's legacy client; HTTP/1.1,
//! or HTTP/2 with prior knowledge when asked). Each stream gets a connection of its own, owned
//! by the returned stream: dropping the stream closes that connection, which is how the server
//! learns to cancel the execution.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use bytes::Bytes;
use ep_contracts::Contract;
use ep_contracts::boundary::{
    AdmissionDecision, AdmissionRequest, ExecutionRef, ExecutionResult, NodeDescriptor, Provenance,
    ResultStatus,
};
use ep_contracts::{Failure, FailureClass};
use ep_node::{EventStream, Input, RuntimeClient, RuntimeError};
use futures::StreamExt;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::Value;

mod builder;
mod stream;

use builder::Base;
pub use builder::RemoteRuntimeClientBuilder;
pub use stream::{OpenedItems, StreamItem};

use crate::error::{ApiError, CallError, RemoteError, snippet};
use crate::tokens::Tokens;

/// Header of a stream's answer naming its execution.
const EXECUTION_REF_HEADER: &str = "x-execution-ref";
/// Header of a stream's answer carrying its capability token.
const EXECUTION_TOKEN_HEADER: &str = "x-execution-token";

/// Default time to establish a TCP connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default largest answer body the client reads (results can carry lane output).
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;
/// Default largest single event-stream frame.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 8 * 1024 * 1024;

const USER_AGENT: &str = concat!("ep-remote/", env!("CARGO_PKG_VERSION"));

struct Inner {
    base: Base,
    pool: Client<HttpConnector, Full<Bytes>>,
    headers: Vec<(HeaderName, HeaderValue)>,
    authorization: Option<HeaderValue>,
    connect_timeout: Duration,
    request_timeout: Option<Duration>,
    stream_idle_timeout: Option<Duration>,
    http2: bool,
    max_response_bytes: usize,
    max_frame_bytes: usize,
    /// Capability tokens of the streams this client opened (its credential to cancel them).
    tokens: Tokens,
}

/// A [`RuntimeClient`] for a node served over the network API. Cheap to clone (clones share
/// the connection pool).
///
/// ```no_run
/// use ep_node::RuntimeClient;
/// use ep_remote::RemoteRuntimeClient;
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let client = RemoteRuntimeClient::new("http://127.0.0.1:8750")?;
/// let node = client.describe().await?;
/// println!("{:?} serves {} lanes", node.node_id, node.registered_lanes.len());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RemoteRuntimeClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RemoteRuntimeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteRuntimeClient")
            .field("base_url", &self.inner.base.url)
            .field("http2", &self.inner.http2)
            .finish_non_exhaustive()
    }
}

/// A successful answer: status and whole body.
struct Answer {
    status: StatusCode,
    body: Bytes,
}

impl RemoteRuntimeClient {
    /// The base URL requests go to (normalized, no trailing slash).
    pub fn base_url(&self) -> &str {
        &self.inner.base.url
    }

    fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
        authorization: Option<&HeaderValue>,
    ) -> Result<Request<Full<Bytes>>, CallError> {
        let mut builder = Request::builder()
            .method(method)
            .uri(self.inner.base.uri(path)?)
            .header(ACCEPT, "application/json")
            .header(http::header::USER_AGENT, USER_AGENT);
        for (name, value) in &self.inner.headers {
            builder = builder.header(name, value);
        }
        if let Some(authorization) = authorization {
            builder = builder.header(AUTHORIZATION, authorization);
        }
        if body.is_some() {
            builder = builder.header(CONTENT_TYPE, "application/json");
        }
        builder
            .body(Full::new(body.unwrap_or_default()))
            .map_err(|e| CallError::Connect {
                url: self.inner.base.url.clone(),
                reason: e.to_string(),
            })
    }

    /// The operator token goes on operator routes and on direct lower-lane-owner requests
    /// (which the host accepts only from the operator), never on governed ones.
    fn operator_authorization(&self, operator: bool) -> Option<&HeaderValue> {
        if operator {
            self.inner.authorization.as_ref()
        } else {
            None
        }
    }

    /// Sends a unary request through the pool and reads the whole answer.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
        operator: bool,
    ) -> Result<Answer, CallError> {
        let authorization = self.operator_authorization(operator).cloned();
        self.call_with(method, path, body, authorization).await
    }

    /// [`Self::call`] with an explicit `authorization` header (or none).
    async fn call_with(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
        authorization: Option<HeaderValue>,
    ) -> Result<Answer, CallError> {
        let url = self.inner.base.path(path);
        let exchange = async {
            let request = self.request(method, path, body, authorization.as_ref())?;
            let response = self.inner.pool.request(request).await.map_err(|e| {
                let reason = error_chain(&e);
                if e.is_connect() {
                    CallError::Connect {
                        url: self.inner.base.url.clone(),
                        reason,
                    }
                } else {
                    CallError::Disconnected {
                        url: url.clone(),
                        reason,
                    }
                }
            })?;
            self.read(response, &url).await
        };
        match self.inner.request_timeout {
            Some(limit) => tokio::time::timeout(limit, exchange)
                .await
                .unwrap_or_else(|_| {
                    Err(CallError::Timeout {
                        url: url.clone(),
                        millis: limit.as_millis(),
                    })
                }),
            None => exchange.await,
        }
    }

    async fn read(&self, response: Response<Incoming>, url: &str) -> Result<Answer, CallError> {
        let status = response.status();
        let limit = self.inner.max_response_bytes;
        let body = Limited::new(response.into_body(), limit)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    CallError::TooLarge {
                        url: url.to_owned(),
                        limit,
                    }
                } else {
                    CallError::Disconnected {
                        url: url.to_owned(),
                        reason: e.to_string(),
                    }
                }
            })?
            .to_bytes();
        Ok(Answer { status, body })
    }

    /// A unary call whose success body is the contract value `T`.
    async fn call_contract<T: Contract>(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
        operator: bool,
    ) -> Result<T, RemoteError> {
        let answer = self.call(method, path, body, operator).await?;
        if !answer.status.is_success() {
            return Err(RemoteError::Api(ApiError::from_response(
                answer.status.as_u16(),
                &answer.body,
            )));
        }
        decode_contract(&answer.body).map_err(|reason| RemoteError::Decode {
            url: self.inner.base.path(path),
            expected: T::NAME,
            reason,
        })
    }

    /// A unary operator call whose success body is JSON.
    async fn call_json(
        &self,
        method: Method,
        path: &str,
        operator: bool,
    ) -> Result<Value, RemoteError> {
        let answer = self.call(method, path, None, operator).await?;
        if !answer.status.is_success() {
            return Err(RemoteError::Api(ApiError::from_response(
                answer.status.as_u16(),
                &answer.body,
            )));
        }
        serde_json::from_slice(&answer.body).map_err(|e| RemoteError::Decode {
            url: self.inner.base.path(path),
            expected: "JSON",
            reason: e.to_string(),
        })
    }

    /// `POST /v1/execute`, keeping the raw outcome: the result, or why there is none.
    async fn execute_call(&self, request: &AdmissionRequest) -> Result<ExecutionResult, Synth> {
        let body = Bytes::from(ep_contracts::dump(request));
        let answer = self
            .call(
                Method::POST,
                "/v1/execute",
                Some(body),
                request.provenance.is_direct(),
            )
            .await
            .map_err(Synth::Call)?;
        if looks_like_result(&answer.body) {
            return decode_contract::<ExecutionResult>(&answer.body).map_err(|reason| {
                Synth::NotAResult {
                    status: answer.status.as_u16(),
                    code: "invalid_result".to_owned(),
                    message: reason,
                }
            });
        }
        let error = ApiError::from_response(answer.status.as_u16(), &answer.body);
        Err(Synth::NotAResult {
            status: error.status,
            code: error.code,
            message: error.message,
        })
    }

    /// `GET /v1/lanes`: the lanes the host serves (operator token).
    pub async fn lanes(&self) -> Result<Value, RemoteError> {
        self.call_json(Method::GET, "/v1/lanes", true).await
    }

    /// `POST /v1/admin/reload`: rescans plugins and configuration, as SIGHUP does (operator
    /// token); returns the reload report.
    pub async fn reload(&self) -> Result<Value, RemoteError> {
        self.call_json(Method::POST, "/v1/admin/reload", true).await
    }

    /// `POST /v1/lanes/{lane_id}/rollback`: serves the lane's previous generation again
    /// (operator token).
    pub async fn rollback(&self, lane_id: &str) -> Result<Rollback, RemoteError> {
        let path = format!("/v1/lanes/{}/rollback", encode_segment(lane_id));
        let value = self.call_json(Method::POST, &path, true).await?;
        serde_json::from_value(value).map_err(|e| RemoteError::Decode {
            url: self.inner.base.path(&path),
            expected: "a rollback report",
            reason: e.to_string(),
        })
    }

    /// `POST /v1/lanes/{lane_id}/digests/{digest}/reinstate`: re-admits a digest a rollback
    /// withdrew or quarantined (operator token); returns the answer.
    pub async fn reinstate(&self, lane_id: &str, digest: &str) -> Result<Value, RemoteError> {
        let path = format!(
            "/v1/lanes/{}/digests/{}/reinstate",
            encode_segment(lane_id),
            encode_segment(digest)
        );
        self.call_json(Method::POST, &path, true).await
    }

    /// `GET /healthz`: `{"status": "ok"}`; a draining host answers 503, returned as
    /// [`RemoteError::Api`] with code `unexpected_response` when it has no envelope.
    pub async fn health(&self) -> Result<Value, RemoteError> {
        self.call_json(Method::GET, "/healthz", false).await
    }

    /// `GET /metrics`: the Prometheus text exposition.
    pub async fn metrics(&self) -> Result<String, RemoteError> {
        let answer = self.call(Method::GET, "/metrics", None, false).await?;
        if !answer.status.is_success() {
            return Err(RemoteError::Api(ApiError::from_response(
                answer.status.as_u16(),
                &answer.body,
            )));
        }
        Ok(String::from_utf8_lossy(&answer.body).into_owned())
    }
}

/// What `POST /v1/lanes/{lane_id}/rollback` answers.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct Rollback {
    /// The lane rolled back.
    pub lane_id: String,
    /// The digest served before.
    pub from_digest: String,
    /// The digest served now.
    pub to_digest: String,
}

/// Why `execute` has no result from the server.
enum Synth {
    Call(CallError),
    NotAResult {
        status: u16,
        code: String,
        message: String,
    },
}

impl Synth {
    /// The `failed` result standing in for the missing one.
    fn into_result(self, provenance: Provenance, base_url: &str) -> ExecutionResult {
        let failure = match self {
            Synth::Call(error) => {
                let class = match &error {
                    CallError::Connect { .. } | CallError::TooLarge { .. } => {
                        FailureClass::TransportFailed
                    }
                    CallError::Disconnected { .. } => FailureClass::RemoteDisconnect,
                    CallError::Timeout { .. } => FailureClass::Timeout,
                };
                Failure::new(class, error.to_string())
            }
            Synth::NotAResult {
                status,
                code,
                message,
            } => Failure::new(
                FailureClass::TransportFailed,
                format!("{base_url} answered HTTP {status} {code} instead of a result: {message}"),
            )
            .with_detail("http_status", status)
            .with_detail("code", code),
        }
        .with_detail("remote", base_url);
        ExecutionResult {
            execution_ref: ExecutionRef::mint(),
            status: ResultStatus::Failed,
            error: Some(failure.to_value()),
            provenance,
            ..ExecutionResult::default()
        }
    }
}

/// Whether a body is shaped like an `ExecutionResult` rather than the error envelope.
fn looks_like_result(body: &[u8]) -> bool {
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) else {
        return false;
    };
    map.contains_key("execution_ref") && map.contains_key("status")
}

fn decode_contract<T: Contract>(body: &[u8]) -> Result<T, String> {
    let text =
        std::str::from_utf8(body).map_err(|e| format!("not UTF-8 ({e}): {}", snippet(body)))?;
    ep_contracts::parse::<T>(text).map_err(|e| e.to_string())
}

/// An error and its sources on one line (hyper's top-level messages say little alone).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Percent-encodes one path segment (everything but RFC 3986 unreserved characters).
fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[async_trait]
impl RuntimeClient for RemoteRuntimeClient {
    async fn describe(&self) -> Result<NodeDescriptor, RuntimeError> {
        Ok(self
            .call_contract::<NodeDescriptor>(Method::GET, "/v1/node", None, false)
            .await?)
    }

    async fn admit(&self, request: AdmissionRequest) -> Result<AdmissionDecision, RuntimeError> {
        let body = Bytes::from(ep_contracts::dump(&request));
        Ok(self
            .call_contract::<AdmissionDecision>(
                Method::POST,
                "/v1/admit",
                Some(body),
                request.provenance.is_direct(),
            )
            .await?)
    }

    async fn execute(&self, request: AdmissionRequest) -> ExecutionResult {
        match self.execute_call(&request).await {
            Ok(result) => result,
            Err(synth) => {
                let result = synth.into_result(request.provenance, &self.inner.base.url);
                tracing::warn!(
                    request_id = request.request_id,
                    error = ?result.error,
                    "remote execute produced no result"
                );
                result
            }
        }
    }

    async fn stream(&self, request: AdmissionRequest) -> Result<EventStream, RuntimeError> {
        let request_id = request.request_id.clone();
        let items = self.stream_items(request).await?;
        Ok(items
            .scan((), move |(), item| {
                let next = match item {
                    StreamItem::Event(event) => Some(event),
                    StreamItem::Result(_) => None,
                    StreamItem::Cut(why) => {
                        tracing::warn!(
                            request_id,
                            why,
                            "remote stream cut without its result (remote_disconnect)"
                        );
                        None
                    }
                };
                futures::future::ready(next)
            })
            .boxed())
    }

    /// Sends the capability token of a stream this client opened, else the operator token, else
    /// no credential (the host then answers 401). See [`RemoteRuntimeClient::cancel_with_token`]
    /// for a token obtained elsewhere.
    async fn cancel(&self, execution_ref: &ExecutionRef) -> Result<(), RuntimeError> {
        let token = self.inner.tokens.get(execution_ref.as_str());
        self.cancel_as(execution_ref, token.as_deref()).await
    }

    /// `POST /v1/executions/{ref}/input` with the stream's capability token (else the
    /// operator token).
    async fn send_input(
        &self,
        execution_ref: &ExecutionRef,
        input: Input,
    ) -> Result<(), RuntimeError> {
        let token = self.inner.tokens.get(execution_ref.as_str());
        let path = format!(
            "/v1/executions/{}/input",
            encode_segment(execution_ref.as_str())
        );
        let body = match &input {
            Input::Data(bytes) => match std::str::from_utf8(bytes) {
                Ok(text) => serde_json::json!({"data": text}),
                Err(_) => serde_json::json!({
                    "data_base64": base64::engine::general_purpose::STANDARD.encode(bytes)
                }),
            },
            Input::End => serde_json::json!({"end": true}),
            Input::Interrupt => serde_json::json!({"interrupt": true}),
        };
        self.post_for_execution(execution_ref, &path, Some(body), token.as_deref())
            .await
    }
}

impl RemoteRuntimeClient {
    /// The capability token the host handed out with a stream this client opened: the
    /// credential to cancel that execution (from this or another client).
    pub fn execution_token(&self, execution_ref: &ExecutionRef) -> Option<String> {
        self.inner.tokens.get(execution_ref.as_str())
    }

    /// Cancels `execution_ref` with `token`, its capability token (`x-execution-token`).
    pub async fn cancel_with_token(
        &self,
        execution_ref: &ExecutionRef,
        token: &str,
    ) -> Result<(), RuntimeError> {
        self.cancel_as(execution_ref, Some(token)).await
    }

    async fn cancel_as(
        &self,
        execution_ref: &ExecutionRef,
        token: Option<&str>,
    ) -> Result<(), RuntimeError> {
        let path = format!(
            "/v1/executions/{}/cancel",
            encode_segment(execution_ref.as_str())
        );
        self.post_for_execution(execution_ref, &path, None, token)
            .await
    }

    /// POSTs `body` to `path`, a route naming `execution_ref`, with `token` (else the
    /// operator token) as the bearer.
    async fn post_for_execution(
        &self,
        execution_ref: &ExecutionRef,
        path: &str,
        body: Option<serde_json::Value>,
        token: Option<&str>,
    ) -> Result<(), RuntimeError> {
        let authorization = match token {
            Some(token) => Some(HeaderValue::from_str(&format!("Bearer {token}")).map_err(
                |_| RuntimeError::Transport("the execution token is not a valid header".into()),
            )?),
            None => self.inner.authorization.clone(),
        };
        let body = body.map(|value| Bytes::from(value.to_string()));
        let answer = self
            .call_with(Method::POST, path, body, authorization)
            .await
            .map_err(|e| RuntimeError::Transport(e.to_string()))?;
        if answer.status.is_success() {
            return Ok(());
        }
        Err(
            ApiError::from_response(answer.status.as_u16(), &answer.body)
                .into_runtime_error(Some(execution_ref.as_str())),
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;
    use crate::error::BuildError;

    #[test]
    fn base_urls_are_normalized_and_checked() {
        let base = Base::parse("http://127.0.0.1:8750/").unwrap();
        assert_eq!(base.url, "http://127.0.0.1:8750");
        assert_eq!(base.path("/v1/node"), "/v1/node");
        let base = Base::parse("http://node.test/api/").unwrap();
        assert_eq!(base.path("/v1/node"), "/api/v1/node");
        assert_eq!(base.host_port(), "node.test:80");
        for bad in [
            "https://x",
            "127.0.0.1:1",
            "/v1",
            "http://u:p@x",
            "http://x/?q=1",
        ] {
            assert!(Base::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(encode_segment("exec-1-2"), "exec-1-2");
        assert_eq!(encode_segment("a/b c?"), "a%2Fb%20c%3F");
    }

    #[test]
    fn invalid_default_headers_are_refused() {
        let error = RemoteRuntimeClient::builder("http://x")
            .default_header("bad header", "v")
            .build()
            .unwrap_err();
        assert!(matches!(error, BuildError::InvalidHeader { .. }));
    }

    #[test]
    fn results_and_envelopes_are_told_apart() {
        assert!(looks_like_result(
            br#"{"execution_ref":{"ref":"e"},"status":"failed","error":{}}"#
        ));
        assert!(!looks_like_result(br#"{"error":{"code":"internal"}}"#));
        assert!(!looks_like_result(b"not json"));
    }

    #[test]
    fn synthesized_results_name_the_class_and_reason() {
        let result = Synth::Call(CallError::Connect {
            url: "http://127.0.0.1:1".into(),
            reason: "connection refused".into(),
        })
        .into_result(Provenance::node_admitted(), "http://127.0.0.1:1");
        assert_eq!(result.status, ResultStatus::Failed);
        let error = result.error.unwrap();
        assert_eq!(error["failure_class"], "transport_failed");
        assert!(
            error["reason"]
                .as_str()
                .unwrap()
                .contains("connection refused")
        );
        let result = Synth::NotAResult {
            status: 503,
            code: "shutting_down".into(),
            message: "draining".into(),
        }
        .into_result(Provenance::node_admitted(), "http://x");
        let error = result.error.unwrap();
        assert_eq!(error["failure_class"], "transport_failed");
        assert_eq!(error["details"]["code"], "shutting_down");
        assert_eq!(error["details"]["http_status"], 503);
        let result = Synth::Call(CallError::Disconnected {
            url: "u".into(),
            reason: "r".into(),
        })
        .into_result(Provenance::node_admitted(), "http://x");
        assert_eq!(result.error.unwrap()["failure_class"], "remote_disconnect");
    }
}
