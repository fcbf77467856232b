//! [`RemoteRuntimeClientBuilder`]: the client's settings, checked once when it is built, and
//! the base URL split into what requests need.

use std::sync::Arc;
use std::time::Duration;

use http::Uri;
use http::header::{AUTHORIZATION, HeaderName, HeaderValue};
use http::uri::{Authority, Scheme};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_FRAME_BYTES, DEFAULT_MAX_RESPONSE_BYTES, Inner,
    RemoteRuntimeClient,
};
use crate::error::{BuildError, CallError};
use crate::tokens::Tokens;

impl RemoteRuntimeClient {
    /// A client for the node at `base_url` (`http://host:port`, optionally with a path
    /// prefix) with default settings.
    pub fn new(base_url: impl Into<String>) -> Result<Self, BuildError> {
        Self::builder(base_url).build()
    }

    /// A builder for the less common settings.
    pub fn builder(base_url: impl Into<String>) -> RemoteRuntimeClientBuilder {
        RemoteRuntimeClientBuilder {
            base_url: base_url.into(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: None,
            stream_idle_timeout: None,
            http2_prior_knowledge: false,
            default_headers: Vec::new(),
            operator_token: None,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            pool_idle_timeout: Duration::from_secs(60),
            pool_max_idle_per_host: 128,
        }
    }
}

/// Builds a [`RemoteRuntimeClient`] with timeouts, HTTP/2, a default header and an operator
/// token.
#[derive(Debug, Clone)]
#[must_use]
pub struct RemoteRuntimeClientBuilder {
    base_url: String,
    connect_timeout: Duration,
    request_timeout: Option<Duration>,
    stream_idle_timeout: Option<Duration>,
    http2_prior_knowledge: bool,
    default_headers: Vec<(String, String)>,
    operator_token: Option<String>,
    max_response_bytes: usize,
    max_frame_bytes: usize,
    pool_idle_timeout: Duration,
    pool_max_idle_per_host: usize,
}

impl RemoteRuntimeClientBuilder {
    /// Time allowed to open a TCP connection (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Time allowed for a whole unary call, answer body included, and for a stream's answer
    /// head (default none: an execution may run as long as its lane allows). Expiry makes
    /// `execute` a `timeout` failure.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = Some(timeout);
        self
    }

    /// Ends a stream when no bytes (not even a keep-alive comment) arrive for this long
    /// (default none).
    pub fn stream_idle_timeout(mut self, timeout: Duration) -> Self {
        self.stream_idle_timeout = Some(timeout);
        self
    }

    /// Speak HTTP/2 with prior knowledge (h2c) instead of HTTP/1.1.
    pub fn http2_prior_knowledge(mut self, enabled: bool) -> Self {
        self.http2_prior_knowledge = enabled;
        self
    }

    /// A header sent with every request (a tenant or tracing header, say).
    pub fn default_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.default_headers.push((name.into(), value.into()));
        self
    }

    /// The bearer token the operator routes (`/v1/lanes`, reload, rollback) require.
    pub fn operator_token(mut self, token: impl Into<String>) -> Self {
        self.operator_token = Some(token.into());
        self
    }

    /// Largest answer body read (default 16 MiB); a larger one is a transport failure.
    pub fn max_response_bytes(mut self, limit: usize) -> Self {
        self.max_response_bytes = limit;
        self
    }

    /// Largest event-stream frame read (default 8 MiB); a larger one cuts the stream.
    pub fn max_frame_bytes(mut self, limit: usize) -> Self {
        self.max_frame_bytes = limit;
        self
    }

    /// How long an idle pooled connection is kept (default 60 s).
    pub fn pool_idle_timeout(mut self, timeout: Duration) -> Self {
        self.pool_idle_timeout = timeout;
        self
    }

    /// How many idle connections per host the pool keeps (default 128).
    pub fn pool_max_idle_per_host(mut self, count: usize) -> Self {
        self.pool_max_idle_per_host = count;
        self
    }

    /// Checks the settings and builds the client (no connection is opened yet). Must be called
    /// inside a Tokio runtime only when the client is used, not when it is built.
    pub fn build(self) -> Result<RemoteRuntimeClient, BuildError> {
        let base = Base::parse(&self.base_url)?;
        let mut headers = Vec::with_capacity(self.default_headers.len());
        for (name, value) in &self.default_headers {
            let invalid = |reason: String| BuildError::InvalidHeader {
                name: name.clone(),
                reason,
            };
            let header_name =
                HeaderName::from_bytes(name.as_bytes()).map_err(|e| invalid(e.to_string()))?;
            let header_value = HeaderValue::from_str(value).map_err(|e| invalid(e.to_string()))?;
            headers.push((header_name, header_value));
        }
        let authorization = match &self.operator_token {
            Some(token) => Some(HeaderValue::from_str(&format!("Bearer {token}")).map_err(
                |e| BuildError::InvalidHeader {
                    name: AUTHORIZATION.to_string(),
                    reason: e.to_string(),
                },
            )?),
            None => None,
        };
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(self.connect_timeout));
        connector.set_nodelay(true);
        let pool = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(self.pool_idle_timeout)
            .pool_max_idle_per_host(self.pool_max_idle_per_host)
            .http2_only(self.http2_prior_knowledge)
            .build(connector);
        Ok(RemoteRuntimeClient {
            inner: Arc::new(Inner {
                base,
                pool,
                headers,
                authorization,
                connect_timeout: self.connect_timeout,
                request_timeout: self.request_timeout,
                stream_idle_timeout: self.stream_idle_timeout,
                http2: self.http2_prior_knowledge,
                max_response_bytes: self.max_response_bytes,
                max_frame_bytes: self.max_frame_bytes,
                tokens: Tokens::default(),
            }),
        })
    }
}

/// The base URL split into what requests need.
#[derive(Debug, Clone)]
pub(super) struct Base {
    /// `http://host:port/prefix` without a trailing slash.
    pub(super) url: String,
    pub(super) authority: Authority,
    /// Path prefix without a trailing slash (empty for `/`).
    prefix: String,
}

impl Base {
    pub(super) fn parse(url: &str) -> Result<Self, BuildError> {
        let invalid = |reason: &str| BuildError::InvalidBaseUrl {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let uri: Uri =
            url.parse()
                .map_err(|e: http::uri::InvalidUri| BuildError::InvalidBaseUrl {
                    url: url.to_owned(),
                    reason: e.to_string(),
                })?;
        match uri.scheme() {
            Some(scheme) if *scheme == Scheme::HTTP => {}
            Some(_) => return Err(invalid("only http:// is supported")),
            None => return Err(invalid("no scheme")),
        }
        let authority = uri.authority().cloned().ok_or_else(|| invalid("no host"))?;
        if authority.as_str().contains('@') {
            return Err(invalid("credentials in the URL are not supported"));
        }
        if uri.query().is_some() {
            return Err(invalid("a query is not allowed"));
        }
        let prefix = uri.path().trim_end_matches('/').to_owned();
        Ok(Self {
            url: format!("http://{authority}{prefix}"),
            authority,
            prefix,
        })
    }

    pub(super) fn path(&self, path: &str) -> String {
        format!("{}{path}", self.prefix)
    }

    pub(super) fn uri(&self, path: &str) -> Result<Uri, CallError> {
        let text = format!("http://{}{}", self.authority, self.path(path));
        text.parse()
            .map_err(|e: http::uri::InvalidUri| CallError::Connect {
                url: text.clone(),
                reason: e.to_string(),
            })
    }

    pub(super) fn host_port(&self) -> String {
        let port = self.authority.port_u16().unwrap_or(80);
        format!("{}:{port}", self.authority.host())
    }
}
