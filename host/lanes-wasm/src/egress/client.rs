//! The pooled keep-alive client behind a lane's `wasi:http`: hyper-util's pooled client over a
//! connector that resolves names itself, checks every resolved address against the grant's
//! [`Reach`] before connecting (so a name cannot be rebound to a private address between check
//! and connect), bounds the connect with a timeout, and speaks TLS with the webpki roots.
//!
//! One client per reach level per lane generation: pooled connections are only reused by
//! requests that the same grants allow to reach the same addresses. The same connector opens the
//! host-owned WebSocket connections ([`EgressClients::connector`]): one address screen, one TLS
//! configuration for every transport.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
use wasmtime_wasi_http::WasiBody;

use super::address::{AddressClass, Reach};
use super::pattern::Scheme;

/// Host-wide settings of the outbound HTTP client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressConfig {
    /// Longest a DNS lookup plus TCP connect plus TLS handshake may take.
    pub connect_timeout: Duration,
    /// How long an idle pooled connection is kept.
    pub pool_idle_timeout: Duration,
    /// Idle pooled connections kept per host.
    pub pool_max_idle_per_host: usize,
}

impl Default for EgressConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            pool_idle_timeout: Duration::from_secs(30),
            pool_max_idle_per_host: 32,
        }
    }
}

/// The connector refused every address of a host: carried inside the client's error so the
/// send hook can tell an address denial from a transport failure.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{host} resolves to {addresses:?}, which the lane's grant does not allow")]
pub struct AddressDenied {
    /// The host asked for.
    pub host: String,
    /// Each resolved address with its class.
    pub addresses: Vec<(IpAddr, AddressClass)>,
}

/// The clients of one lane generation, one per reach level, and what their connectors share.
#[derive(Clone)]
pub(crate) struct EgressClients {
    public: Client<GuardedConnector, WasiBody>,
    private: Client<GuardedConnector, WasiBody>,
    named: Client<GuardedConnector, WasiBody>,
    connect_timeout: Duration,
    tls: TlsConnector,
}

impl std::fmt::Debug for EgressClients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EgressClients").finish_non_exhaustive()
    }
}

impl EgressClients {
    /// Clients sharing one TLS configuration.
    pub(crate) fn new(config: &EgressConfig) -> Result<Self, rustls::Error> {
        let tls = TlsConnector::from(tls_config()?);
        let client = |reach| {
            Client::builder(TokioExecutor::new())
                .pool_idle_timeout(config.pool_idle_timeout)
                .pool_max_idle_per_host(config.pool_max_idle_per_host)
                .pool_timer(hyper_util::rt::TokioTimer::new())
                .build(GuardedConnector {
                    reach,
                    connect_timeout: config.connect_timeout,
                    tls: tls.clone(),
                })
        };
        Ok(Self {
            public: client(Reach::Public),
            private: client(Reach::Private),
            named: client(Reach::Named),
            connect_timeout: config.connect_timeout,
            tls,
        })
    }

    /// The connector for connections a grant lets go as far as `reach`, for transports that
    /// hold their own connection (WebSocket): it resolves, screens every address and connects
    /// (TLS for `https` / `wss`) exactly as the pooled clients do.
    pub(crate) fn connector(&self, reach: Reach) -> GuardedConnector {
        GuardedConnector {
            reach,
            connect_timeout: self.connect_timeout,
            tls: self.tls.clone(),
        }
    }

    /// The client for requests a grant lets go as far as `reach`.
    pub(crate) fn for_reach(&self, reach: Reach) -> &Client<GuardedConnector, WasiBody> {
        match reach {
            Reach::Public => &self.public,
            Reach::Private => &self.private,
            Reach::Named => &self.named,
        }
    }
}

fn tls_config() -> Result<Arc<ClientConfig>, rustls::Error> {
    let roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.into(),
    };
    let mut config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Resolves, checks and connects.
#[derive(Clone)]
pub(crate) struct GuardedConnector {
    reach: Reach,
    connect_timeout: Duration,
    tls: TlsConnector,
}

impl tower_service::Service<http::Uri> for GuardedConnector {
    type Response = TokioIo<Stream>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { this.open(uri).await.map(TokioIo::new) })
    }
}

impl GuardedConnector {
    /// The longest [`Self::open`] may take.
    pub(crate) fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// Resolves, screens and connects to `uri` (`http`, `https`, `ws` or `wss`; TLS for the
    /// secure ones) within the connect timeout. A refused address is a `PermissionDenied`
    /// error carrying [`AddressDenied`] (find it with [`address_denied`]).
    pub(crate) async fn open(self, uri: http::Uri) -> io::Result<Stream> {
        let timeout = self.connect_timeout;
        match tokio::time::timeout(timeout, self.connect(uri)).await {
            Ok(result) => result,
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("connecting took longer than {} ms", timeout.as_millis()),
            )),
        }
    }

    async fn connect(self, uri: http::Uri) -> io::Result<Stream> {
        let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidInput, what.to_owned());
        let host = uri.host().ok_or_else(|| invalid("the URL has no host"))?;
        let scheme = uri
            .scheme_str()
            .and_then(Scheme::parse)
            .ok_or_else(|| invalid("the URL's scheme is not http, https, ws or wss"))?;
        let tls = scheme.is_tls();
        let port = uri.port_u16().unwrap_or(scheme.default_port());
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let addresses: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::net::lookup_host((bare, port)).await?.collect(),
        };
        if addresses.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{host} resolves to no address"),
            ));
        }
        let classes: Vec<(IpAddr, AddressClass)> = addresses
            .iter()
            .map(|a| (a.ip(), AddressClass::of(a.ip())))
            .collect();
        // One refused address refuses the name: a public name that also answers with a private
        // address is a rebinding attempt, not a fallback.
        if classes.iter().any(|(_, class)| !self.reach.allows(*class)) {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                AddressDenied {
                    host: host.to_owned(),
                    addresses: classes,
                },
            ));
        }
        let tcp = connect_any(&addresses).await?;
        tcp.set_nodelay(true)?;
        if !tls {
            return Ok(Stream::Plain(tcp));
        }
        let name = ServerName::try_from(bare.to_owned())
            .map_err(|_| invalid("the host is not a valid TLS server name"))?;
        let tls = self.tls.connect(name, tcp).await?;
        Ok(Stream::Tls(Box::new(tls)))
    }
}

/// Tries each (already checked) address in turn.
async fn connect_any(addresses: &[SocketAddr]) -> io::Result<TcpStream> {
    let mut last = None;
    for address in addresses {
        match TcpStream::connect(address).await {
            Ok(stream) => return Ok(stream),
            Err(error) => last = Some(error),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address")))
}

/// A plain or TLS connection.
pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Connection for Stream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Finds an [`AddressDenied`] anywhere in an error's source chain.
pub(crate) fn address_denied(error: &(dyn std::error::Error + 'static)) -> Option<AddressDenied> {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(denied) = error.downcast_ref::<AddressDenied>() {
            return Some(denied.clone());
        }
        if let Some(io) = error.downcast_ref::<io::Error>()
            && let Some(denied) = io
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<AddressDenied>())
        {
            return Some(denied.clone());
        }
        current = error.source();
    }
    None
}

/// Whether an error's source chain holds an I/O error of `kind` (a timeout, a refusal).
pub(crate) fn has_io_kind(error: &(dyn std::error::Error + 'static), kind: io::ErrorKind) -> bool {
    let mut current = Some(error);
    while let Some(error) = current {
        if error
            .downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == kind)
        {
            return true;
        }
        current = error.source();
    }
    false
}
