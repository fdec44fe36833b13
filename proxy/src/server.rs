//! The proxy: listeners on the anycast service addresses, the mutual-TLS
//! handshake with the service chosen by SNI before it starts, then
//! HTTP/1.1 or HTTP/2 to the client and the pooled upstream to the
//! bank's origin.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode, Uri, Version};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use ixgate_policy::Config;
use ixgate_policy::files::{self, FileError};
use ixgate_policy::node::{Limits, Service, Timeouts};
use rustls::ServerConfig;
use rustls::server::Acceptor;
use tokio::io::AsyncWriteExt as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_rustls::LazyConfigAcceptor;

use prometheus_client::metrics::counter::Counter;

use crate::identity::ClientIdentity;
use crate::limits::{RequestRate, SourceConnections};
use crate::metrics::{HandshakeLabels, Metrics, RequestLabels, ServiceLabel};
use crate::tls::{self, Refusal, TlsError, UNRECOGNIZED_NAME_ALERT};
use crate::upstream::{OriginBody, Transit, Upstream, UpstreamError};

/// The port of every service: the firewall passes TCP/443 and nothing else.
pub const HTTPS_PORT: u16 = 443;
/// How often each origin is asked whether it is alive.
const HEALTH_INTERVAL: Duration = Duration::from_secs(2);
/// What the health check asks for.
const HEALTH_PATH: &str = "/";
/// How a health check is told from an app's request in the origin's logs.
pub const HEALTH_USER_AGENT: &str = "ixgate-health-check";
/// Streams one HTTP/2 client may have open at once.
const MAX_STREAMS: u32 = 100;
/// After an idle connection is told to go (GOAWAY), how long it may take.
const CLOSE_GRACE: Duration = Duration::from_secs(5);
/// Listen backlog: SYN-proxied connections arrive complete.
const BACKLOG: i32 = 4096;

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error(transparent)]
    File(#[from] FileError),
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: SocketAddr,
        source: io::Error,
    },
}

/// One service as it runs: TLS, upstream and limits.
struct RunningService {
    name: String,
    sni: Vec<String>,
    tls: Arc<ServerConfig>,
    upstream: Upstream,
    limits: Limits,
    timeouts: Timeouts,
    rate: Mutex<RequestRate>,
}

/// Everything a configuration says about the proxy, built as a whole
/// (nothing of a bad configuration is used).
struct Services {
    list: Vec<Arc<RunningService>>,
    by_sni: HashMap<String, usize>,
    /// The longest handshake timeout: the budget for a ClientHello, before
    /// the service (and so its own timeout) is known.
    hello_timeout: Duration,
}

impl Services {
    fn build(config: &Config, metrics: &Metrics) -> Result<Self, ProxyError> {
        let node = &config.node;
        let ticket_keys = files::read_ticket_keys(&node.tls.ticket_key_file)?;
        let transit = Transit {
            sources: node.transit.sources.clone(),
            device: Some(node.interfaces.transit.to_string()),
        };
        let mut list = Vec::new();
        let mut by_sni = HashMap::new();
        for (index, service) in node.services.iter().enumerate() {
            let opened = metrics
                .origin_connections_opened
                .get_or_create(&ServiceLabel {
                    service: service.name.to_string(),
                })
                .clone();
            list.push(Arc::new(RunningService::build(
                service,
                &ticket_keys,
                transit.clone(),
                opened,
            )?));
            for sni in &service.sni {
                by_sni.insert(sni.to_string().to_ascii_lowercase(), index);
            }
        }
        let hello_timeout = node
            .services
            .iter()
            .map(|service| service.timeouts.handshake.duration())
            .max()
            .unwrap_or(Duration::from_secs(5));
        Ok(Self {
            list,
            by_sni,
            hello_timeout,
        })
    }

    fn for_sni(&self, sni: &str) -> Option<&Arc<RunningService>> {
        self.by_sni
            .get(&sni.to_ascii_lowercase())
            .and_then(|&index| self.list.get(index))
    }
}

impl RunningService {
    fn build(
        service: &Service,
        ticket_keys: &[files::TicketKey],
        transit: Transit,
        origin_connections: Counter,
    ) -> Result<Self, ProxyError> {
        Ok(Self {
            name: service.name.to_string(),
            sni: service.sni.iter().map(ToString::to_string).collect(),
            tls: tls::server_config(service, ticket_keys)?,
            upstream: Upstream::new(service, transit, origin_connections)?,
            limits: service.limits.clone(),
            timeouts: service.timeouts.clone(),
            rate: Mutex::new(RequestRate::new(
                service
                    .limits
                    .requests_per_second_per_certificate
                    .per_second(),
            )),
        })
    }

    fn label(&self) -> ServiceLabel {
        ServiceLabel {
            service: self.name.clone(),
        }
    }
}

/// What `ixgate ctl show services` tells of one service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceStatus {
    pub name: String,
    pub sni: Vec<String>,
    /// Each origin's URL, and whether it passed its last health check.
    pub origins: Vec<(String, bool)>,
}

/// The running proxy. Reloads swap its services whole; connections keep
/// the services they started with.
pub struct Proxy {
    services: RwLock<Arc<Services>>,
    metrics: Metrics,
    sources: Mutex<SourceConnections>,
    /// Sources that completed mutual TLS, for the firewall's trusted set.
    trusted: Option<mpsc::Sender<IpAddr>>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy").finish_non_exhaustive()
    }
}

/// A connection's place in the per-source count, given back on drop.
struct SourceSlot<'a> {
    proxy: &'a Proxy,
    source: IpAddr,
}

impl Drop for SourceSlot<'_> {
    fn drop(&mut self) {
        if let Ok(mut sources) = self.proxy.sources.lock() {
            sources.close(self.source);
        }
    }
}

/// One open connection in the active-connections gauge.
struct Active<'a>(&'a Metrics);

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.0.connections_active.dec();
    }
}

impl Proxy {
    /// Builds every service of `config`; `trusted` receives the source of
    /// every client that completes mutual TLS.
    pub fn new(
        config: &Config,
        trusted: Option<mpsc::Sender<IpAddr>>,
    ) -> Result<Arc<Self>, ProxyError> {
        let metrics = Metrics::default();
        Ok(Arc::new(Self {
            services: RwLock::new(Arc::new(Services::build(config, &metrics)?)),
            metrics,
            sources: Mutex::new(SourceConnections::default()),
            trusted,
        }))
    }

    /// Replaces certificates, CAs, CRLs, ticket keys and services with
    /// those of `config`, or changes nothing if any of it is bad.
    /// Established connections carry on with what they started with.
    pub fn reload(self: &Arc<Self>, config: &Config) -> Result<(), ProxyError> {
        let services = Arc::new(Services::build(config, &self.metrics)?);
        self.start_health_checks(&services);
        if let Ok(mut current) = self.services.write() {
            *current = services;
        }
        Ok(())
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Whether every service has an origin that passes its health check.
    pub fn healthy(&self) -> bool {
        self.current()
            .list
            .iter()
            .all(|service| service.upstream.healthy())
    }

    /// The services as they run now.
    pub fn services(&self) -> Vec<ServiceStatus> {
        self.current()
            .list
            .iter()
            .map(|service| ServiceStatus {
                name: service.name.clone(),
                sni: service.sni.clone(),
                origins: service
                    .upstream
                    .origins
                    .iter()
                    .map(|origin| (origin.base.clone(), origin.healthy.load(Ordering::Relaxed)))
                    .collect(),
            })
            .collect()
    }

    fn current(&self) -> Arc<Services> {
        match self.services.read() {
            Ok(services) => services.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Binds a listener on every address (all or none), then serves them
    /// and checks the origins' health until the runtime ends.
    pub fn serve(self: &Arc<Self>, addresses: &[SocketAddr]) -> Result<(), ProxyError> {
        let listeners = addresses
            .iter()
            .map(|&address| {
                listen(address).map_err(|source| ProxyError::Listen { address, source })
            })
            .collect::<Result<Vec<_>, _>>()?;
        for listener in listeners {
            tokio::spawn(self.clone().accept_loop(listener));
        }
        self.start_health_checks(&self.current());
        Ok(())
    }

    async fn accept_loop(self: Arc<Self>, listener: TcpListener) {
        loop {
            match listener.accept().await {
                Ok((tcp, peer)) => {
                    tokio::spawn(self.clone().connection(tcp, peer));
                }
                // Out of descriptors or memory: give the connections that
                // hold them a moment to finish.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    }

    async fn connection(self: Arc<Self>, tcp: TcpStream, peer: SocketAddr) {
        self.metrics.connections_active.inc();
        let _active = Active(&self.metrics);
        let _ = tcp.set_nodelay(true);
        let services = self.current();
        let accepted_at = Instant::now();
        let acceptor = LazyConfigAcceptor::new(Acceptor::default(), tcp);
        let start =
            match tokio::time::timeout_at(accepted_at + services.hello_timeout, acceptor).await {
                Ok(Ok(start)) => start,
                Ok(Err(error)) => return self.metrics.refused("", Refusal::of(&error)),
                Err(_) => return self.metrics.refused("", Refusal::Timeout),
            };
        let service = start
            .client_hello()
            .server_name()
            .and_then(|sni| services.for_sni(sni))
            .cloned();
        let Some(service) = service else {
            let mut io = start.io;
            let _ = io.write_all(&UNRECOGNIZED_NAME_ALERT).await;
            let _ = io.shutdown().await;
            return self.metrics.refused("", Refusal::UnknownSni);
        };
        let Some(_slot) = self.open_slot(peer.ip(), service.limits.max_connections_per_source)
        else {
            return self.metrics.refused(&service.name, Refusal::SourceLimit);
        };
        let deadline = accepted_at + service.timeouts.handshake.duration();
        let tls =
            match tokio::time::timeout_at(deadline, start.into_stream(service.tls.clone())).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(error)) => return self.metrics.refused(&service.name, Refusal::of(&error)),
                Err(_) => return self.metrics.refused(&service.name, Refusal::Timeout),
            };
        let (_, session) = tls.get_ref();
        let Some(leaf) = session.peer_certificates().and_then(<[_]>::first) else {
            // Client authentication is mandatory: rustls already refused.
            return self
                .metrics
                .refused(&service.name, Refusal::NoClientCertificate);
        };
        let identity = ClientIdentity::from_der(leaf.as_ref());
        let resumed = session.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
        self.metrics
            .handshakes
            .get_or_create(&HandshakeLabels {
                service: service.name.clone(),
                kind: if resumed { "resumed" } else { "full" }.to_owned(),
                version: session
                    .protocol_version()
                    .map(|version| format!("{version:?}"))
                    .unwrap_or_default(),
            })
            .inc();
        if let Some(trusted) = &self.trusted
            && trusted.try_send(peer.ip()).is_err()
        {
            self.metrics.trusted_feed_dropped.inc();
        }
        let exchange = Arc::new(Exchange {
            proxy: self.clone(),
            service,
            identity,
            peer,
        });
        exchange.serve(TokioIo::new(tls)).await;
    }

    fn open_slot(&self, source: IpAddr, max: u32) -> Option<SourceSlot<'_>> {
        let mut sources = self.sources.lock().ok()?;
        sources.open(source, max).then_some(SourceSlot {
            proxy: self,
            source,
        })
    }

    fn start_health_checks(self: &Arc<Self>, services: &Arc<Services>) {
        for service in &services.list {
            tokio::spawn(health_checks(Arc::downgrade(self), Arc::downgrade(service)));
        }
    }
}

fn listen(address: SocketAddr) -> io::Result<TcpListener> {
    let domain = socket2::Domain::for_address(address);
    let socket = socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
    socket.set_nonblocking(true)?;
    socket.set_cloexec(true)?;
    socket.set_reuse_address(true)?;
    // The listeners come up before the service addresses are placed on
    // the anycast holder (and stay while an address is briefly gone).
    if address.is_ipv6() {
        socket.set_only_v6(true)?;
        socket.set_freebind_v6(true)?;
    } else {
        socket.set_freebind_v4(true)?;
    }
    socket.bind(&address.into())?;
    socket.listen(BACKLOG)?;
    TcpListener::from_std(socket.into())
}

/// Asks each origin of `service` whether it answers, until the service
/// is replaced by a reload or the proxy is gone.
async fn health_checks(proxy: Weak<Proxy>, service: Weak<RunningService>) {
    let mut interval = tokio::time::interval(HEALTH_INTERVAL);
    loop {
        interval.tick().await;
        let (Some(proxy), Some(service)) = (proxy.upgrade(), service.upgrade()) else {
            return;
        };
        let replaced = !proxy
            .current()
            .list
            .iter()
            .any(|running| Arc::ptr_eq(running, &service));
        if replaced {
            return;
        }
        for origin in &service.upstream.origins {
            let healthy = probe(&service, &origin.base).await;
            origin.healthy.store(healthy, Ordering::Relaxed);
        }
        proxy
            .metrics
            .origin_healthy
            .get_or_create(&service.label())
            .set(i64::from(service.upstream.healthy()));
    }
}

async fn probe(service: &RunningService, base: &str) -> bool {
    let Ok(uri) = format!("{base}{HEALTH_PATH}").parse::<Uri>() else {
        return false;
    };
    let mut request = Request::new(empty());
    *request.uri_mut() = uri;
    request.headers_mut().insert(
        header::USER_AGENT,
        HeaderValue::from_static(HEALTH_USER_AGENT),
    );
    let budget = service.timeouts.origin_connect.duration() + service.upstream.response_timeout;
    matches!(
        tokio::time::timeout(budget, service.upstream.client.request(request)).await,
        Ok(Ok(response)) if !response.status().is_server_error()
    )
}

fn empty() -> OriginBody {
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed_unsync()
}

fn answer(status: StatusCode, text: &'static str) -> Response<OriginBody> {
    let mut response = Response::new(
        Full::new(Bytes::from_static(text.as_bytes()))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// Headers of one hop only (RFC 9110 §7.6.1), never forwarded.
const HOP_BY_HOP: [HeaderName; 7] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::try_from(name.trim()).ok())
        .collect();
    for name in HOP_BY_HOP.iter().chain(&named) {
        headers.remove(name);
    }
}

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// One verified client connection and what its requests need.
struct Exchange {
    proxy: Arc<Proxy>,
    service: Arc<RunningService>,
    identity: ClientIdentity,
    peer: SocketAddr,
}

impl Exchange {
    async fn serve<I>(self: Arc<Self>, io: TokioIo<I>)
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let limits = &self.service.limits;
        let idle = self.service.timeouts.client_idle.duration();
        let activity = Arc::new(AtomicU64::new(0));
        let epoch = Instant::now();
        let io = crate::watch::Watched::new(io, activity.clone(), epoch);
        let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            // Slowloris: the head of each request, the first included,
            // must arrive within this.
            .header_read_timeout(idle.min(Duration::from_secs(10)))
            .max_buf_size(
                usize::try_from(limits.max_header_bytes)
                    .unwrap_or(usize::MAX)
                    .max(8192),
            );
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_header_list_size(limits.max_header_bytes)
            .max_concurrent_streams(MAX_STREAMS)
            .keep_alive_interval(None);
        let exchange = self.clone();
        let service = hyper::service::service_fn(move |request| {
            let exchange = exchange.clone();
            async move { Ok::<_, Infallible>(exchange.forward(request).await) }
        });
        let connection = builder.serve_connection(io, service);
        let mut connection = std::pin::pin!(connection);
        // Our own idle watchdog: hyper has none for HTTP/2.
        let mut told_to_go = None;
        loop {
            let last = Duration::from_millis(activity.load(Ordering::Relaxed));
            let wake = match told_to_go {
                Some(at) => at + CLOSE_GRACE,
                None => epoch + last + idle,
            };
            tokio::select! {
                _ = connection.as_mut() => return,
                () = tokio::time::sleep_until(wake) => {
                    if told_to_go.is_some() {
                        return;
                    }
                    let last = Duration::from_millis(activity.load(Ordering::Relaxed));
                    if Instant::now() >= epoch + last + idle {
                        connection.as_mut().graceful_shutdown();
                        told_to_go = Some(Instant::now());
                    }
                }
            }
        }
    }

    async fn forward(&self, request: Request<Incoming>) -> Response<OriginBody> {
        let protocol = match request.version() {
            Version::HTTP_2 => "h2",
            _ => "h1",
        };
        let response = self.forward_inner(request).await;
        self.proxy
            .metrics
            .requests
            .get_or_create(&RequestLabels {
                service: self.service.name.clone(),
                protocol: protocol.to_owned(),
                status: response.status().as_u16(),
            })
            .inc();
        response
    }

    async fn forward_inner(&self, request: Request<Incoming>) -> Response<OriginBody> {
        let service = &self.service;
        let metrics = &self.proxy.metrics;
        let admitted = service
            .rate
            .lock()
            .is_ok_and(|mut rate| rate.admit(self.identity.fingerprint, std::time::Instant::now()));
        if !admitted {
            metrics.rate_limited.get_or_create(&service.label()).inc();
            let mut response = answer(StatusCode::TOO_MANY_REQUESTS, "too many requests\n");
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return response;
        }
        let max_body = service.limits.max_body_bytes;
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u64>().ok());
        if declared.is_some_and(|length| length > max_body) {
            return answer(StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n");
        }
        let Some(origin) = service.upstream.pick() else {
            return answer(StatusCode::SERVICE_UNAVAILABLE, "origin unavailable\n");
        };
        let (mut parts, body) = request.into_parts();
        let authority = parts
            .uri
            .authority()
            .map(|authority| authority.as_str().to_owned())
            .or_else(|| {
                parts
                    .headers
                    .get(header::HOST)
                    .and_then(|host| host.to_str().ok())
                    .map(str::to_owned)
            });
        let path = parts
            .uri
            .path_and_query()
            .map_or("/", |path| path.as_str())
            .to_owned();
        let Ok(uri) = format!("{}{path}", origin.base).parse::<Uri>() else {
            return answer(StatusCode::BAD_REQUEST, "bad request target\n");
        };
        parts.uri = uri;
        parts.version = Version::HTTP_11;
        strip_hop_by_hop(&mut parts.headers);
        self.identity.apply(&mut parts.headers);
        if let Some(host) = authority.and_then(|host| HeaderValue::from_str(&host).ok()) {
            parts.headers.insert(header::HOST, host);
        }
        if let Ok(peer) = HeaderValue::from_str(&self.peer.ip().to_string()) {
            parts.headers.insert(X_FORWARDED_FOR, peer);
        }
        parts
            .headers
            .insert(X_FORWARDED_PROTO, HeaderValue::from_static("https"));
        let usize_max = usize::try_from(max_body).unwrap_or(usize::MAX);
        let body = Limited::new(body, usize_max).boxed_unsync();
        let upstream_request = Request::from_parts(parts, body);
        let sent = Instant::now();
        let result = tokio::time::timeout(
            service.upstream.response_timeout,
            service.upstream.client.request(upstream_request),
        )
        .await;
        match result {
            Ok(Ok(response)) => {
                metrics
                    .origin_latency
                    .get_or_create(&service.label())
                    .observe(sent.elapsed().as_secs_f64());
                let (mut parts, body) = response.into_parts();
                strip_hop_by_hop(&mut parts.headers);
                let body = body.map_err(Into::into).boxed_unsync();
                Response::from_parts(parts, body)
            }
            Ok(Err(error)) => {
                if is_body_too_large(&error) {
                    answer(StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n")
                } else {
                    answer(StatusCode::BAD_GATEWAY, "origin unreachable\n")
                }
            }
            Err(_) => answer(StatusCode::GATEWAY_TIMEOUT, "origin timed out\n"),
        }
    }
}

fn is_body_too_large(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(error);
    while let Some(error) = source {
        if error.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = error.source();
    }
    false
}
