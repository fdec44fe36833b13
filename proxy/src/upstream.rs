//! The bank's hidden origin: pooled connections over transit, TLS with
//! the origin's CA pinned and its name checked, HTTP/2 or HTTP/1.1 by
//! ALPN, each socket bound to the node's transit source address.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::Uri;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use ixgate_policy::files::{self, FileError};
use ixgate_policy::node::Service;
use ixgate_policy::types::{OriginHost, OriginUrl};
use prometheus_client::metrics::counter::Counter;
use rustls_pki_types::ServerName;
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::tls::{ALPN, provider};

/// Bodies sent to the origin: the client's, size-limited, or none.
pub type OriginBody = UnsyncBoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error(transparent)]
    File(#[from] FileError),
    #[error("service {service}: {message}")]
    Build { service: String, message: String },
    #[error("cannot connect to the origin {address}: {source}")]
    Connect {
        address: SocketAddr,
        source: io::Error,
    },
    #[error("connecting to the origin {address} timed out")]
    ConnectTimeout { address: SocketAddr },
    #[error("the origin {authority} resolves to no address")]
    Resolve { authority: String },
    #[error("no transit source address of the family of {address}")]
    NoSource { address: SocketAddr },
    #[error("TLS with the origin {address}: {source}")]
    Tls {
        address: SocketAddr,
        source: io::Error,
    },
}

/// Where the node's sockets toward the origins come from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Transit {
    /// One source address per family.
    pub sources: Vec<IpAddr>,
    /// When set, sockets are also bound to this device (SO_BINDTODEVICE).
    pub device: Option<String>,
}

impl Transit {
    fn source_for(&self, address: &SocketAddr) -> Option<IpAddr> {
        self.sources
            .iter()
            .copied()
            .find(|source| source.is_ipv4() == address.is_ipv4())
    }
}

struct ConnectorState {
    tls: TlsConnector,
    server_name: ServerName<'static>,
    transit: Transit,
    connect_timeout: Duration,
    /// Connections opened: with requests, the pool's reuse.
    connects: Counter,
}

/// Opens TLS connections to an origin for the pool.
#[derive(Clone)]
pub struct OriginConnector(Arc<ConnectorState>);

impl std::fmt::Debug for OriginConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OriginConnector")
            .field("server_name", &self.0.server_name)
            .field("transit", &self.0.transit)
            .finish_non_exhaustive()
    }
}

impl OriginConnector {
    async fn connect(state: Arc<ConnectorState>, uri: Uri) -> Result<OriginStream, UpstreamError> {
        let address = resolve(&uri).await?;
        let source = state
            .transit
            .source_for(&address)
            .ok_or(UpstreamError::NoSource { address })?;
        let socket = transit_socket(source, state.transit.device.as_deref())
            .map_err(|source| UpstreamError::Connect { address, source })?;
        let tcp = tokio::time::timeout(state.connect_timeout, socket.connect(address))
            .await
            .map_err(|_| UpstreamError::ConnectTimeout { address })?
            .map_err(|source| UpstreamError::Connect { address, source })?;
        let _ = tcp.set_nodelay(true);
        let tls = tokio::time::timeout(
            state.connect_timeout,
            state.tls.connect(state.server_name.clone(), tcp),
        )
        .await
        .map_err(|_| UpstreamError::ConnectTimeout { address })?
        .map_err(|source| UpstreamError::Tls { address, source })?;
        state.connects.inc();
        let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
        Ok(OriginStream {
            io: TokioIo::new(tls),
            h2,
        })
    }
}

async fn resolve(uri: &Uri) -> Result<SocketAddr, UpstreamError> {
    let authority = || UpstreamError::Resolve {
        authority: uri.authority().map(ToString::to_string).unwrap_or_default(),
    };
    let host = uri.host().ok_or_else(authority)?;
    let port = uri.port_u16().unwrap_or(443);
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    tokio::net::lookup_host((bare, port))
        .await
        .ok()
        .and_then(|mut addresses| addresses.next())
        .ok_or_else(authority)
}

/// A socket bound to the transit source (and device): never the
/// anycast side, whatever the routing table says.
pub fn transit_socket(source: IpAddr, device: Option<&str>) -> io::Result<TcpSocket> {
    let domain = if source.is_ipv4() {
        socket2::Domain::IPV4
    } else {
        socket2::Domain::IPV6
    };
    let socket = socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
    socket.set_nonblocking(true)?;
    socket.set_cloexec(true)?;
    if let Some(device) = device {
        socket.bind_device(Some(device.as_bytes()))?;
    }
    socket.bind(&SocketAddr::new(source, 0).into())?;
    Ok(TcpSocket::from_std_stream(std::net::TcpStream::from(
        socket,
    )))
}

impl tower_service::Service<Uri> for OriginConnector {
    type Response = OriginStream;
    type Error = UpstreamError;
    type Future = Pin<Box<dyn Future<Output = Result<OriginStream, UpstreamError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        Box::pin(Self::connect(self.0.clone(), uri))
    }
}

/// One TLS connection to an origin.
#[derive(Debug)]
pub struct OriginStream {
    io: TokioIo<TlsStream<TcpStream>>,
    h2: bool,
}

impl Connection for OriginStream {
    fn connected(&self) -> Connected {
        if self.h2 {
            Connected::new().negotiated_h2()
        } else {
            Connected::new()
        }
    }
}

impl hyper::rt::Read for OriginStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for OriginStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// One origin of a service, with what the health checks last saw.
#[derive(Debug)]
pub struct Origin {
    /// `https://HOST:PORT`, without a path.
    pub base: String,
    pub healthy: AtomicBool,
}

/// A service's origins and the pool of connections to them.
pub struct Upstream {
    pub client: Client<OriginConnector, OriginBody>,
    pub origins: Vec<Origin>,
    next: AtomicUsize,
    pub response_timeout: Duration,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("origins", &self.origins)
            .finish_non_exhaustive()
    }
}

fn base_url(origin: &OriginUrl) -> String {
    match &origin.host {
        OriginHost::Ip(IpAddr::V6(v6)) => format!("https://[{v6}]:{}", origin.port),
        OriginHost::Ip(IpAddr::V4(v4)) => format!("https://{v4}:{}", origin.port),
        OriginHost::Name(name) => format!("https://{name}:{}", origin.port),
    }
}

impl Upstream {
    /// The upstream of `service`; `connects` counts the connections it opens.
    pub fn new(
        service: &Service,
        transit: Transit,
        connects: Counter,
    ) -> Result<Self, UpstreamError> {
        let build = |message: &dyn std::fmt::Display| UpstreamError::Build {
            service: service.name.to_string(),
            message: message.to_string(),
        };
        let mut roots = rustls::RootCertStore::empty();
        for ca in files::read_ca_bundle(&service.origin_ca)? {
            roots.add(ca).map_err(|error| build(&error))?;
        }
        let mut tls = rustls::ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|error| build(&error))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        tls.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
        let server_name =
            ServerName::try_from(service.origin_sni.to_string()).map_err(|error| build(&error))?;
        let connector = OriginConnector(Arc::new(ConnectorState {
            tls: TlsConnector::from(Arc::new(tls)),
            server_name,
            transit,
            connect_timeout: service.timeouts.origin_connect.duration(),
            connects,
        }));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(service.timeouts.origin_idle.duration())
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .http2_keep_alive_interval(Some(Duration::from_secs(20)))
            .build(connector);
        Ok(Self {
            client,
            origins: service
                .origins
                .iter()
                .map(|origin| Origin {
                    base: base_url(origin),
                    healthy: AtomicBool::new(true),
                })
                .collect(),
            next: AtomicUsize::new(0),
            response_timeout: service.timeouts.origin_response.duration(),
        })
    }

    /// The next healthy origin, round robin; `None` when none is.
    pub fn pick(&self) -> Option<&Origin> {
        let count = self.origins.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..count)
            .map(|offset| &self.origins[(start + offset) % count])
            .find(|origin| origin.healthy.load(Ordering::Relaxed))
    }

    pub fn healthy(&self) -> bool {
        self.origins
            .iter()
            .any(|origin| origin.healthy.load(Ordering::Relaxed))
    }
}
