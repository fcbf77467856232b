//! Outbound HTTP from a lane, over the `wasi:http/outgoing-handler` import: build a
//! [`Request`], [`send`] it with [`Options`], get a [`Response`] or a typed [`HttpError`].
//!
//! The host checks every request against the lane's `http` grants and its address policy; a
//! refused request is [`HttpError::Denied`], never a trap. Redirects are not followed: a 3xx
//! comes back as a response, and a lane that follows it sends a new request (checked again).
//!
//! ```no_run
//! use std::time::Duration;
//! use execution_plane_sdk::http::{self, HttpError, Method, Options, Request, Url};
//!
//! # fn run() -> Result<(), HttpError> {
//! let request = Request::new(Method::Post, Url::parse("https://api.example.com/v1/items")?)
//!     .header("content-type", "application/json")
//!     .body(r#"{"name": "x"}"#);
//! let options = Options::new()
//!     .with_timeout(Duration::from_secs(5))
//!     .with_max_response_bytes(1 << 20);
//! match http::send(&request, &options) {
//!     Ok(response) => println!("{} with {} bytes", response.status, response.body.len()),
//!     Err(HttpError::Denied(why)) => println!("not granted: {why:?}"),
//!     Err(other) => println!("{other}"),
//! }
//! # Ok(()) }
//! ```
//!
//! On the host target (native `cargo test`) requests go to the handler installed with
//! [`testing::mock_http`](crate::testing::mock_http) instead of the network.

mod error;
mod url;
#[cfg(target_arch = "wasm32")]
mod wasi;

use std::fmt;
use std::time::Duration;

pub use error::{Denial, HttpError, TimeoutKind};
pub use url::{Scheme, Url};

/// The response body cap [`Options::new`] starts with: 8 MiB.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 8 << 20;

/// An HTTP method.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    /// `GET`
    Get,
    /// `HEAD`
    Head,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `DELETE`
    Delete,
    /// `CONNECT`
    Connect,
    /// `OPTIONS`
    Options,
    /// `TRACE`
    Trace,
    /// `PATCH`
    Patch,
    /// Any other method token, sent as given (the host refuses one that is not a valid token).
    Other(String),
}

impl Method {
    /// The method named `name`, case-insensitively for the standard ones; any other name is
    /// [`Method::Other`] as given.
    pub fn parse(name: &str) -> Self {
        const STANDARD: [Method; 9] = [
            Method::Get,
            Method::Head,
            Method::Post,
            Method::Put,
            Method::Delete,
            Method::Connect,
            Method::Options,
            Method::Trace,
            Method::Patch,
        ];
        STANDARD
            .into_iter()
            .find(|method| method.as_str().eq_ignore_ascii_case(name))
            .unwrap_or_else(|| Self::Other(name.to_owned()))
    }

    /// The method as sent (`GET`, `POST`, ...).
    pub fn as_str(&self) -> &str {
        match self {
            Self::Get => "GET",
            Self::Head => "HEAD",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Delete => "DELETE",
            Self::Connect => "CONNECT",
            Self::Options => "OPTIONS",
            Self::Trace => "TRACE",
            Self::Patch => "PATCH",
            Self::Other(other) => other,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An outbound request: method, URL, headers (sent in order, repeats allowed) and body bytes.
///
/// When the body is not empty and no `content-length` header is given, [`send`] adds one; an
/// empty body is not sent at all.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Request {
    method: Method,
    url: Url,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    /// A `method` request to `url` with no headers and no body.
    pub fn new(method: Method, url: Url) -> Self {
        Self {
            method,
            url,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Adds a header (repeats are sent as separate fields).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// The method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The URL.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The headers, in the order added.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// The body bytes.
    pub fn body_bytes(&self) -> &[u8] {
        &self.body
    }

    /// Every `content-length` header given must state the body's length exactly (the host
    /// would otherwise send a body cut to the header, or leave the server waiting);
    /// [`send`] checks this before any I/O.
    pub fn check_content_length(&self) -> Result<(), HttpError> {
        let actual = self.body.len();
        for (name, value) in &self.headers {
            if name.eq_ignore_ascii_case("content-length")
                && value.trim().parse::<u64>().ok() != u64::try_from(actual).ok()
            {
                return Err(HttpError::ContentLengthMismatch {
                    declared: value.clone(),
                    actual,
                });
            }
        }
        Ok(())
    }
}

/// How [`send`] treats one request: timeouts (passed to the host as wasi:http
/// `request-options`; unset means the host's defaults) and how much body it will read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Options {
    /// Longest the connection may take to open.
    pub connect_timeout: Option<Duration>,
    /// Longest from sending the request to the first byte of the response.
    pub first_byte_timeout: Option<Duration>,
    /// Longest between two chunks of the response body.
    pub between_bytes_timeout: Option<Duration>,
    /// Largest response body read; a longer one is [`HttpError::BodyTooLarge`].
    pub max_response_bytes: u64,
}

impl Options {
    /// No timeouts of its own and a [`DEFAULT_MAX_RESPONSE_BYTES`] body cap.
    pub fn new() -> Self {
        Self {
            connect_timeout: None,
            first_byte_timeout: None,
            between_bytes_timeout: None,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        }
    }

    /// Sets the connect, first-byte and between-bytes timeouts to `timeout`.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self.first_byte_timeout = Some(timeout);
        self.between_bytes_timeout = Some(timeout);
        self
    }

    /// Sets the response body cap.
    pub fn with_max_response_bytes(mut self, max_response_bytes: u64) -> Self {
        self.max_response_bytes = max_response_bytes;
        self
    }
}

impl Default for Options {
    fn default() -> Self {
        Self::new()
    }
}

/// A response: every status (1xx aside) is a response, 4xx and 5xx included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The header fields in the order received; names as the host reports them (lowercase
    /// for HTTP/1 through wasmtime), values decoded as UTF-8 (lossily).
    pub headers: Vec<(String, String)>,
    /// The whole body, at most [`Options::max_response_bytes`] long.
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(field, _)| field.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// Sends `request` and reads the whole response (up to `options.max_response_bytes`).
///
/// Blocks the lane until the response is read. The host may refuse the request
/// ([`HttpError::Denied`]); any HTTP status is `Ok`. A `content-length` header that does not
/// match the body is [`HttpError::ContentLengthMismatch`] before anything is sent.
pub fn send(request: &Request, options: &Options) -> Result<Response, HttpError> {
    request.check_content_length()?;
    #[cfg(target_arch = "wasm32")]
    {
        wasi::send(request, options)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        crate::testing::answer_http(request, options)
    }
}

/// A response whose body is read as it arrives ([`open`]): server-sent events, long polls,
/// downloads larger than the lane wants to hold.
pub struct StreamingResponse {
    /// The status code.
    pub status: u16,
    /// The header fields in the order received (as [`Response::headers`]).
    pub headers: Vec<(String, String)>,
    /// The body, chunk by chunk.
    pub body: BodyStream,
}

impl StreamingResponse {
    /// The first value of header `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(field, _)| field.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// A response body being read; dropping it closes the connection.
pub struct BodyStream {
    #[cfg(target_arch = "wasm32")]
    inner: wasi::OpenBody,
    #[cfg(not(target_arch = "wasm32"))]
    inner: std::collections::VecDeque<Result<Vec<u8>, HttpError>>,
}

impl BodyStream {
    /// The next chunk, blocking until one arrives (at most 64 KiB), or `None` at the end of
    /// the body. A gap longer than [`Options::between_bytes_timeout`] is
    /// [`HttpError::Timeout`]; a connection that broke is an error too.
    pub fn read(&mut self) -> Result<Option<Vec<u8>>, HttpError> {
        #[cfg(target_arch = "wasm32")]
        {
            self.inner.read()
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            self.inner.pop_front().transpose()
        }
    }

    /// Whatever has arrived, without blocking (an empty chunk when nothing has), or `None` at
    /// the end of the body.
    pub fn try_read(&mut self) -> Result<Option<Vec<u8>>, HttpError> {
        #[cfg(target_arch = "wasm32")]
        {
            self.inner.try_read()
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            self.inner.pop_front().transpose()
        }
    }

    /// A pollable ready when [`BodyStream::try_read`] has something: poll it with others
    /// (caller input, a WebSocket) to wait for whichever comes first.
    #[cfg(target_arch = "wasm32")]
    pub fn subscribe(&self) -> crate::bindings::wasi::io::poll::Pollable {
        self.inner.subscribe()
    }

    /// A body of the given chunks, each `Ok` or the error the read returns (native tests).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn from_chunks(chunks: Vec<Result<Vec<u8>, HttpError>>) -> Self {
        Self {
            inner: chunks.into(),
        }
    }
}

/// Sends `request` and returns as soon as the response head arrives; read the body with
/// [`BodyStream::read`] as it comes. No total size cap applies (each read is bounded): the
/// lane decides how much it keeps. The host's grant check and timeouts apply as for [`send`].
pub fn open(request: &Request, options: &Options) -> Result<StreamingResponse, HttpError> {
    request.check_content_length()?;
    #[cfg(target_arch = "wasm32")]
    {
        let opened = wasi::open(request, options)?;
        Ok(StreamingResponse {
            status: opened.status,
            headers: opened.headers,
            body: BodyStream { inner: opened.body },
        })
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        crate::testing::answer_http_stream(request, options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_parse_is_case_insensitive_for_standard_methods() {
        assert_eq!(Method::parse("get"), Method::Get);
        assert_eq!(Method::parse("PaTcH"), Method::Patch);
        assert_eq!(Method::parse("options").as_str(), "OPTIONS");
        assert_eq!(Method::parse("BREW"), Method::Other("BREW".into()));
        assert_eq!(Method::parse("brew").to_string(), "brew");
    }

    #[test]
    fn request_builder_keeps_headers_in_order_and_the_body() {
        let url = Url::parse("http://h/x").unwrap();
        let r = Request::new(Method::Put, url.clone())
            .header("a", "1")
            .header("a", "2")
            .body("hi");
        assert_eq!(r.method(), &Method::Put);
        assert_eq!(r.url(), &url);
        assert_eq!(
            r.headers(),
            [
                ("a".to_owned(), "1".to_owned()),
                ("a".to_owned(), "2".to_owned())
            ]
        );
        assert_eq!(r.body_bytes(), b"hi");
    }

    #[test]
    fn a_content_length_must_state_the_body_length() {
        let url = Url::parse("http://h/x").unwrap();
        let with = |length: &str, body: &str| {
            Request::new(Method::Post, url.clone())
                .header("Content-Length", length)
                .body(body.as_bytes().to_vec())
                .check_content_length()
        };
        assert_eq!(with("5", "hello"), Ok(()));
        assert_eq!(with(" 0 ", ""), Ok(()));
        for (length, body) in [
            ("3", "hello"),
            ("9", "hello"),
            ("5", ""),
            ("x", "a"),
            ("", ""),
        ] {
            assert_eq!(
                with(length, body),
                Err(HttpError::ContentLengthMismatch {
                    declared: length.to_owned(),
                    actual: body.len(),
                }),
                "{length:?} for {body:?}"
            );
        }
        // Every copy must agree, and no header is no check.
        let twice = Request::new(Method::Post, url.clone())
            .header("content-length", "2")
            .header("content-length", "3")
            .body("ab");
        assert!(twice.check_content_length().is_err());
        assert_eq!(
            Request::new(Method::Post, url)
                .body("ab")
                .check_content_length(),
            Ok(())
        );
    }

    #[test]
    fn send_refuses_a_mismatched_content_length_before_any_io() {
        crate::testing::mock_http(|_| panic!("nothing may be sent"));
        let request = Request::new(Method::Post, Url::parse("http://h/x").unwrap())
            .header("content-length", "2")
            .body("abcdef");
        assert!(matches!(
            send(&request, &Options::new()),
            Err(HttpError::ContentLengthMismatch { actual: 6, .. })
        ));
        assert!(crate::testing::take_http_requests().is_empty());
    }

    #[test]
    fn options_start_with_host_timeouts_and_an_8_mib_cap() {
        let o = Options::new();
        assert_eq!(o, Options::default());
        assert_eq!(o.connect_timeout, None);
        assert_eq!(o.max_response_bytes, 8 * 1024 * 1024);
        let o = o
            .with_timeout(Duration::from_millis(250))
            .with_max_response_bytes(10);
        let t = Some(Duration::from_millis(250));
        assert_eq!(
            (
                o.connect_timeout,
                o.first_byte_timeout,
                o.between_bytes_timeout
            ),
            (t, t, t)
        );
        assert_eq!(o.max_response_bytes, 10);
    }

    #[test]
    fn response_header_lookup_ignores_case_and_takes_the_first() {
        let r = Response {
            status: 200,
            headers: vec![
                ("Set-Cookie".into(), "a".into()),
                ("set-cookie".into(), "b".into()),
            ],
            body: Vec::new(),
        };
        assert_eq!(r.header("SET-COOKIE"), Some("a"));
        assert_eq!(r.header("location"), None);
    }
}
