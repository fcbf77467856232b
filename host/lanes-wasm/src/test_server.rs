//! A real HTTP/1.1 server on loopback for the outbound-HTTP tests and benchmarks (behind the
//! `testing` feature). Keep-alive on; every request is recorded so a test can see exactly what
//! reached the wire.
//!
//! Routes:
//! * `/echo` (any method): 200 with `{"method", "path", "query", "headers", "body"}`.
//! * `/created`: 201 with `{"ok":true}` (the upstream POST scenario).
//! * `/status/<code>`: that status, body `status <code>`.
//! * `/slow/<ms>`: waits, then 200 `slow`.
//! * `/stall`: sends headers and one chunk, then nothing for a minute.
//! * `/big/<bytes>`: 200 with that many bytes of `x`.
//! * `/redirect?to=<url>[&code=<3xx>]`: a redirect to `to` (default 302).
//! * `/hello`: 200 `hello` (the benchmark's request).
//! * anything else: 404.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct SeenRequest {
    /// The method.
    pub method: String,
    /// The path.
    pub path: String,
    /// Header names (lowercase) and values.
    pub headers: Vec<(String, String)>,
    /// The body bytes.
    pub body: Vec<u8>,
}

impl SeenRequest {
    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A running server; stops when dropped.
#[derive(Debug)]
pub struct TestServer {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<SeenRequest>>>,
    connections: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Body = BoxBody<Bytes, Infallible>;

impl TestServer {
    /// Binds 127.0.0.1 on a free port and serves until dropped.
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let recorder = Arc::clone(&seen);
        let connections = Arc::new(AtomicUsize::new(0));
        let accepted = Arc::clone(&connections);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                accepted.fetch_add(1, Ordering::SeqCst);
                let _ = stream.set_nodelay(true);
                let recorder = Arc::clone(&recorder);
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        let recorder = Arc::clone(&recorder);
                        async move { Ok::<_, Infallible>(route(request, addr, &recorder).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self {
            addr,
            seen,
            connections,
            task,
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// How many connections it accepted so far (a request that never left the host made none).
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Every request seen so far.
    pub fn seen(&self) -> Vec<SeenRequest> {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

fn full(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(Full::new(body.into()).boxed());
    *response.status_mut() = status;
    if let Ok(value) = content_type.parse() {
        response.headers_mut().insert("content-type", value);
    }
    response
}

async fn route(
    request: Request<Incoming>,
    addr: SocketAddr,
    seen: &Mutex<Vec<SeenRequest>>,
) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|c| c.to_bytes().to_vec())
        .unwrap_or_default();
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().unwrap_or_default().to_owned();
    seen.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(SeenRequest {
            method: parts.method.to_string(),
            path: path.clone(),
            headers: headers.clone(),
            body: body.clone(),
        });
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["hello"] => full(StatusCode::OK, "text/plain", "hello"),
        ["echo"] => {
            let value = json!({
                "method": parts.method.as_str(),
                "path": path,
                "query": query,
                "headers": headers.iter().cloned().collect::<std::collections::BTreeMap<_, _>>(),
                "body": String::from_utf8_lossy(&body),
            });
            full(StatusCode::OK, "application/json", value.to_string())
        }
        ["created"] => full(StatusCode::CREATED, "application/json", r#"{"ok":true}"#),
        ["status", code] => {
            let status = code
                .parse::<u16>()
                .ok()
                .and_then(|c| StatusCode::from_u16(c).ok())
                .unwrap_or(StatusCode::BAD_REQUEST);
            full(status, "text/plain", format!("status {}", status.as_u16()))
        }
        ["slow", ms] => {
            let ms = ms.parse::<u64>().unwrap_or(1000);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            full(StatusCode::OK, "text/plain", "slow")
        }
        ["stall"] => {
            let chunks = futures::stream::unfold(0u8, |step| async move {
                match step {
                    0 => Some((
                        Ok::<_, Infallible>(Frame::data(Bytes::from_static(b"first"))),
                        1,
                    )),
                    _ => {
                        tokio::time::sleep(Duration::from_secs(60)).await;
                        None
                    }
                }
            });
            Response::new(StreamBody::new(chunks).boxed())
        }
        ["big", bytes] => {
            let size = bytes.parse::<usize>().unwrap_or(0).min(256 << 20);
            full(StatusCode::OK, "application/octet-stream", vec![b'x'; size])
        }
        ["redirect"] => {
            let mut to = format!("http://{addr}/echo");
            let mut code = 302;
            for pair in query.split('&') {
                if let Some(value) = pair.strip_prefix("to=") {
                    to = percent_decode(value);
                } else if let Some(value) = pair.strip_prefix("code=") {
                    code = value.parse().unwrap_or(302);
                }
            }
            let mut response = full(
                StatusCode::from_u16(code).unwrap_or(StatusCode::FOUND),
                "text/plain",
                "moved",
            );
            if let Ok(value) = to.parse() {
                response.headers_mut().insert("location", value);
            }
            response
        }
        _ => full(StatusCode::NOT_FOUND, "text/plain", "not found"),
    }
}

/// Decodes `%XX` escapes (enough for URLs in a query).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(Ok(byte)) = text.get(i + 1..i + 3).map(|h| u8::from_str_radix(h, 16))
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
