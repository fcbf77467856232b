//! The one place that calls the wasi:http imports: a [`Request`] out through
//! `outgoing-handler.handle`, the [`Response`] back in. Resource lifetimes follow the host's
//! rules: every child (output stream, input stream, pollable, header fields) is dropped before
//! its parent, so the host's resource table never refuses a delete.

use std::time::Duration;

use super::{HttpError, Method, Options, Request, Response};
use crate::bindings::wasi::http::outgoing_handler;
use crate::bindings::wasi::http::types::{
    Fields, FutureIncomingResponse, HeaderError, IncomingBody, IncomingResponse, OutgoingBody,
    OutgoingRequest, RequestOptions, Scheme, http_error_code,
};
use crate::bindings::wasi::io::streams::{InputStream, StreamError};

/// Largest slice handed to `blocking-write-and-flush` (the WASI limit for one call).
const WRITE_CHUNK: usize = 4096;

/// Largest read asked of the host at once (the host caps reads at 64 KiB anyway).
const READ_CHUNK: u64 = 64 * 1024;

/// Sends `request` and reads the whole response.
pub(super) fn send(request: &Request, options: &Options) -> Result<Response, HttpError> {
    let response = start(request, options)?;
    read_response(response, request.method(), options.max_response_bytes)
}

/// A response body read as it arrives. Fields drop in declaration order: the stream before the
/// body, the body before the response (children before parents).
pub(super) struct OpenBody {
    stream: InputStream,
    _body: IncomingBody,
    _response: IncomingResponse,
}

impl OpenBody {
    /// The next chunk (blocking until one arrives), or `None` at the end of the body.
    pub(super) fn read(&mut self) -> Result<Option<Vec<u8>>, HttpError> {
        match self.stream.blocking_read(READ_CHUNK) {
            Ok(chunk) => Ok(Some(chunk)),
            Err(StreamError::Closed) => Ok(None),
            Err(error) => Err(stream_failure(error)),
        }
    }

    /// Whatever has arrived, without blocking (empty when nothing has), or `None` at the end.
    pub(super) fn try_read(&mut self) -> Result<Option<Vec<u8>>, HttpError> {
        match self.stream.read(READ_CHUNK) {
            Ok(chunk) => Ok(Some(chunk)),
            Err(StreamError::Closed) => Ok(None),
            Err(error) => Err(stream_failure(error)),
        }
    }

    /// A pollable ready when [`OpenBody::try_read`] has something (or the body ended).
    pub(super) fn subscribe(&self) -> crate::bindings::wasi::io::poll::Pollable {
        self.stream.subscribe()
    }
}

/// A response whose head has arrived: status, headers, and the body to read as it arrives.
pub(super) struct Opened {
    pub(super) status: u16,
    pub(super) headers: Vec<(String, String)>,
    pub(super) body: OpenBody,
}

/// Sends `request` and returns once the response head has arrived.
pub(super) fn open(request: &Request, options: &Options) -> Result<Opened, HttpError> {
    let response = start(request, options)?;
    let status = response.status();
    let headers = head(&response);
    let body = response
        .consume()
        .map_err(|()| HttpError::Transport("the response body was already taken".to_owned()))?;
    let stream = body.stream().map_err(|()| {
        HttpError::Transport("the response body stream could not be opened".to_owned())
    })?;
    Ok(Opened {
        status,
        headers,
        body: OpenBody {
            stream,
            _body: body,
            _response: response,
        },
    })
}

/// The response's headers, values as lossy UTF-8.
fn head(response: &IncomingResponse) -> Vec<(String, String)> {
    // The fields are the response's child: dropped at the end of this function.
    let fields = response.headers();
    fields
        .entries()
        .into_iter()
        .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
        .collect()
}

/// Sends `request` and waits for the response head.
fn start(request: &Request, options: &Options) -> Result<IncomingResponse, HttpError> {
    let outgoing = outgoing_request(request)?;
    // Take the body resource before `handle` consumes the request; an empty body is never
    // taken, so the request goes out with no body at all.
    let body = if request.body_bytes().is_empty() {
        None
    } else {
        Some(outgoing.body().map_err(|()| {
            HttpError::Transport("the request body could not be opened".to_owned())
        })?)
    };
    let future = outgoing_handler::handle(outgoing, Some(request_options(options)?))
        .map_err(|code| HttpError::from_error_code(&code))?;
    // Stream the body only once the host is sending, so a body larger than the host's buffer
    // cannot stall. A failed write means either that the request failed (its error-code, read
    // from the future, says why better than the write error) or that the server answered
    // before reading the whole body (its response is the answer); either way the future
    // decides.
    if let Some(body) = body {
        let _ = write_body(body, request.body_bytes());
    }
    let response = wait(&future);
    drop(future);
    response
}

/// The `outgoing-request` for `request`: headers, method, scheme, authority, path.
fn outgoing_request(request: &Request) -> Result<OutgoingRequest, HttpError> {
    let fields = Fields::new();
    for (name, value) in request.headers() {
        fields
            .append(name, value.as_bytes())
            .map_err(|error| header_error(name, &error))?;
    }
    let has_length = request
        .headers()
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("content-length"));
    if !request.body_bytes().is_empty() && !has_length {
        // A known length lets the host send the body without chunked encoding.
        let length = request.body_bytes().len().to_string();
        fields
            .append("content-length", length.as_bytes())
            .map_err(|error| header_error("content-length", &error))?;
    }
    let outgoing = OutgoingRequest::new(fields);
    let url = request.url();
    outgoing
        .set_method(&wasi_method(request.method()))
        .map_err(|()| HttpError::InvalidMethod {
            method: request.method().as_str().to_owned(),
        })?;
    let scheme = match url.scheme() {
        super::Scheme::Http => Scheme::Http,
        super::Scheme::Https => Scheme::Https,
    };
    let invalid_url = |reason: &str| HttpError::InvalidUrl {
        url: url.to_string(),
        reason: reason.to_owned(),
    };
    outgoing
        .set_scheme(Some(&scheme))
        .map_err(|()| invalid_url("the host refused its scheme"))?;
    outgoing
        .set_authority(Some(&url.authority()))
        .map_err(|()| invalid_url("the host refused its authority"))?;
    outgoing
        .set_path_with_query(Some(url.path_with_query()))
        .map_err(|()| invalid_url("the host refused its path"))?;
    Ok(outgoing)
}

/// wasi:http `request-options` carrying the timeouts that are set.
fn request_options(options: &Options) -> Result<RequestOptions, HttpError> {
    let wasi = RequestOptions::new();
    let unsupported =
        |which: &str| HttpError::Transport(format!("the host does not support a {which} timeout"));
    if let Some(timeout) = options.connect_timeout {
        wasi.set_connect_timeout(Some(nanos(timeout)))
            .map_err(|()| unsupported("connect"))?;
    }
    if let Some(timeout) = options.first_byte_timeout {
        wasi.set_first_byte_timeout(Some(nanos(timeout)))
            .map_err(|()| unsupported("first-byte"))?;
    }
    if let Some(timeout) = options.between_bytes_timeout {
        wasi.set_between_bytes_timeout(Some(nanos(timeout)))
            .map_err(|()| unsupported("between-bytes"))?;
    }
    Ok(wasi)
}

/// A wasi:clocks duration (nanoseconds), saturating.
fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

fn wasi_method(method: &Method) -> crate::bindings::wasi::http::types::Method {
    use crate::bindings::wasi::http::types::Method as W;
    match method {
        Method::Get => W::Get,
        Method::Head => W::Head,
        Method::Post => W::Post,
        Method::Put => W::Put,
        Method::Delete => W::Delete,
        Method::Connect => W::Connect,
        Method::Options => W::Options,
        Method::Trace => W::Trace,
        Method::Patch => W::Patch,
        Method::Other(other) => W::Other(other.clone()),
    }
}

fn header_error(name: &str, error: &HeaderError) -> HttpError {
    let reason = match error {
        HeaderError::InvalidSyntax => "the name or value is not valid header syntax",
        HeaderError::Forbidden => "the host forbids lanes to set it",
        HeaderError::Immutable => "the header fields are immutable",
    };
    HttpError::InvalidHeader {
        name: name.to_owned(),
        reason: reason.to_owned(),
    }
}

/// Writes `bytes` to the outgoing body in chunks the host accepts, then finishes it.
fn write_body(body: OutgoingBody, bytes: &[u8]) -> Result<(), HttpError> {
    {
        // The output stream is the body's child: it must be gone before `finish`.
        let stream = body.write().map_err(|()| {
            HttpError::Transport("the request body stream could not be opened".to_owned())
        })?;
        for chunk in bytes.chunks(WRITE_CHUNK) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(stream_failure)?;
        }
    }
    OutgoingBody::finish(body, None).map_err(|code| HttpError::from_error_code(&code))
}

/// Blocks until the response head arrives.
fn wait(future: &FutureIncomingResponse) -> Result<IncomingResponse, HttpError> {
    {
        // The pollable is the future's child: dropped at the end of this block.
        let ready = future.subscribe();
        ready.block();
    }
    match future.get() {
        Some(Ok(Ok(response))) => Ok(response),
        Some(Ok(Err(code))) => Err(HttpError::from_error_code(&code)),
        Some(Err(())) => Err(HttpError::Transport(
            "the response was already taken".to_owned(),
        )),
        None => Err(HttpError::Transport(
            "the response was not ready after waiting for it".to_owned(),
        )),
    }
}

/// Status, headers and up to `max_bytes` of body.
fn read_response(
    response: IncomingResponse,
    method: &Method,
    max_bytes: u64,
) -> Result<Response, HttpError> {
    let status = response.status();
    let headers = head(&response);
    // A declared length over the cap fails before reading, except where the length describes
    // a body that is not sent (a HEAD response, 204, 304).
    let has_body = method != &Method::Head && !matches!(status, 204 | 304);
    let declared = headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse::<u64>().ok());
    if has_body && declared.is_some_and(|length| length > max_bytes) {
        return Err(HttpError::BodyTooLarge {
            limit: Some(max_bytes),
        });
    }
    let body = response
        .consume()
        .map_err(|()| HttpError::Transport("the response body was already taken".to_owned()))?;
    // A declared length (within the cap) sizes the buffer once: growing it by doubling would
    // briefly hold the old and the new buffer in the lane's memory.
    let expected = declared.filter(|_| has_body).unwrap_or(0).min(max_bytes);
    let bytes = read_body(&body, max_bytes, expected);
    // Child before parent: the stream went with `read_body`, now the body, then the response.
    drop(body);
    drop(response);
    Ok(Response {
        status,
        headers,
        body: bytes?,
    })
}

/// Reads the body to its end, failing once it passes `max_bytes`; `expected` bytes are
/// reserved up front.
fn read_body(body: &IncomingBody, max_bytes: u64, expected: u64) -> Result<Vec<u8>, HttpError> {
    let stream: InputStream = body.stream().map_err(|()| {
        HttpError::Transport("the response body stream could not be opened".to_owned())
    })?;
    let mut bytes = Vec::with_capacity(usize::try_from(expected).unwrap_or(0));
    // The buffer never grows past one byte over the cap (the byte that tells a body over it).
    let ceiling = usize::try_from(max_bytes.saturating_add(1)).unwrap_or(usize::MAX);
    loop {
        let read = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        // Ask for one byte past the cap, so a body of exactly `max_bytes` still ends cleanly.
        let want = READ_CHUNK.min(max_bytes.saturating_sub(read).saturating_add(1));
        match stream.blocking_read(want) {
            Ok(chunk) => {
                reserve_within(&mut bytes, chunk.len(), ceiling);
                bytes.extend_from_slice(&chunk);
                if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > max_bytes {
                    return Err(HttpError::BodyTooLarge {
                        limit: Some(max_bytes),
                    });
                }
            }
            Err(StreamError::Closed) => return Ok(bytes),
            Err(error) => return Err(stream_failure(error)),
        }
    }
}

/// Makes room for `more` bytes: doubling, as `Vec` does, but never past `ceiling` (unless
/// `more` itself needs it), so a body just under the cap is held in a buffer of about its size
/// instead of one twice as large.
fn reserve_within(bytes: &mut Vec<u8>, more: usize, ceiling: usize) {
    let needed = bytes.len().saturating_add(more);
    if needed <= bytes.capacity() {
        return;
    }
    let target = bytes
        .capacity()
        .saturating_mul(2)
        .max(READ_CHUNK as usize)
        .min(ceiling)
        .max(needed);
    bytes.reserve_exact(target - bytes.len());
}

/// A failed stream as an [`HttpError`]: the wasi:http error-code when the host attached one.
fn stream_failure(error: StreamError) -> HttpError {
    match error {
        StreamError::Closed => HttpError::Transport("the stream closed early".to_owned()),
        StreamError::LastOperationFailed(io_error) => match http_error_code(&io_error) {
            Some(code) => HttpError::from_error_code(&code),
            None => HttpError::from_body_error_text(&io_error.to_debug_string()),
        },
    }
}
