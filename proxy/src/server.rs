//! The proxy: listeners on the anycast service addresses, the mutual-TLS
//! handshake with the service chosen by SNI before it starts, then
//! HTTP/1.1 or HTTP/2 to the client and the pooled upstream to the
//! bank's origin.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper::header::{self, HeaderValue};
use hyper::{Request, Uri};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use ixgate_policy::Config;
use ixgate_policy::files::{self, FileError};
use ixgate_policy::node::{Limits, Quic, Service, Timeouts};
use rustls::ServerConfig;
use rustls::server::Acceptor;
use tokio::io::AsyncWriteExt as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_rustls::LazyConfigAcceptor;

use prometheus_client::metrics::counter::Counter;

use crate::app_socket::AppSocket;
use crate::exchange::{ClientTls, Exchange};
use crate::identity::ClientIdentity;
use crate::limits::{RequestRate, SourceConnections};
use crate::metrics::{HandshakeLabels, Metrics, ServiceLabel, Transport};
use crate::quic::QuicService;
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
/// Resolves once the proxy drains (at once if it already does).
pub(crate) async fn drain_begins(draining: &mut tokio::sync::watch::Receiver<bool>) {
    let already = *draining.borrow_and_update();
    if !already {
        // An error is the proxy gone: nothing left to serve for either.
        let _ = draining.changed().await;
    }
}

/// How often a drain looks whether connections are left.
const DRAIN_CHECK: Duration = Duration::from_millis(50);
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

/// One service as it runs: TLS, HTTP, upstream and limits.
pub(crate) struct RunningService {
    /// Also the `service` label of its metrics.
    pub(crate) name: Arc<str>,
    pub(crate) sni: Vec<String>,
    tls: Arc<ServerConfig>,
    pub(crate) http1: hyper::server::conn::http1::Builder,
    pub(crate) http2: hyper::server::conn::http2::Builder<TokioExecutor>,
    pub(crate) upstream: Upstream,
    pub(crate) limits: Limits,
    pub(crate) timeouts: Timeouts,
    pub(crate) rate: Mutex<RequestRate>,
    /// HTTP/3, where the service has it.
    pub(crate) quic: Option<QuicService>,
}

/// Everything a configuration says about the proxy, built as a whole
/// (nothing of a bad configuration is used).
pub(crate) struct Services {
    list: Vec<Arc<RunningService>>,
    by_sni: HashMap<String, usize>,
    /// The service of each HTTP/3 address.
    by_quic_address: HashMap<IpAddr, usize>,
    pub(crate) quic: Quic,
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
        let mut by_quic_address = HashMap::new();
        for (index, service) in node.services.iter().enumerate() {
            let opened = metrics
                .origin_connections_opened
                .get_or_create(&ServiceLabel {
                    service: Arc::from(service.name.as_str()),
                })
                .clone();
            list.push(Arc::new(RunningService::build(
                service,
                &ticket_keys,
                transit.clone(),
                opened,
                node.quic.max_handshakes,
            )?));
            for sni in &service.sni {
                by_sni.insert(sni.to_string().to_ascii_lowercase(), index);
            }
            for address in service.http3.iter().flat_map(|http3| &http3.addresses) {
                by_quic_address.insert(*address, index);
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
            by_quic_address,
            quic: node.quic.clone(),
            hello_timeout,
        })
    }

    pub(crate) fn for_quic_address(&self, address: IpAddr) -> Option<&Arc<RunningService>> {
        self.by_quic_address
            .get(&address)
            .and_then(|&index| self.list.get(index))
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
        max_quic_handshakes: u32,
    ) -> Result<Self, ProxyError> {
        let limits = &service.limits;
        let idle = service.timeouts.client_idle.duration();
        let mut http1 = hyper::server::conn::http1::Builder::new();
        http1
            .timer(TokioTimer::new())
            // Slowloris: the head of each request, the first included,
            // must arrive within this.
            .header_read_timeout(idle.min(Duration::from_secs(10)))
            .max_buf_size(
                usize::try_from(limits.max_header_bytes)
                    .unwrap_or(usize::MAX)
                    .max(8192),
            );
        let mut http2 = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
        http2
            .timer(TokioTimer::new())
            .max_header_list_size(limits.max_header_bytes)
            .max_concurrent_streams(MAX_STREAMS)
            .keep_alive_interval(None);
        Ok(Self {
            name: Arc::from(service.name.as_str()),
            sni: service.sni.iter().map(ToString::to_string).collect(),
            tls: tls::server_config(service, ticket_keys)?,
            http1,
            http2,
            upstream: Upstream::new(service, transit, origin_connections)?,
            limits: service.limits.clone(),
            timeouts: service.timeouts.clone(),
            rate: Mutex::new(RequestRate::new(
                service
                    .limits
                    .requests_per_second_per_certificate
                    .per_second(),
            )),
            quic: QuicService::build(service, ticket_keys, max_quic_handshakes)?,
        })
    }

    pub(crate) fn label(&self) -> ServiceLabel {
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
    /// `true` once the node shuts down: listeners close, connections
    /// finish what they carry and go.
    draining: tokio::sync::watch::Sender<bool>,
    /// A QUIC endpoint per HTTP/3 address, once bound.
    quic_endpoints: Mutex<HashMap<IpAddr, quinn::Endpoint>>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy").finish_non_exhaustive()
    }
}

/// A connection's place in the per-source count, given back on drop.
pub(crate) struct SourceSlot<'a> {
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
pub(crate) struct Active<'a>(pub(crate) &'a Metrics);

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
            draining: tokio::sync::watch::Sender::new(false),
            quic_endpoints: Mutex::new(HashMap::new()),
        }))
    }

    /// Replaces certificates, CAs, CRLs, ticket keys and services with
    /// those of `config`, or changes nothing if any of it is bad.
    /// Established connections carry on with what they started with.
    pub fn reload(self: &Arc<Self>, config: &Config) -> Result<(), ProxyError> {
        let services = Arc::new(Services::build(config, &self.metrics)?);
        self.serve_quic(&services)?;
        self.start_health_checks(&services);
        if let Ok(mut current) = self.services.write() {
            *current = services;
        }
        Ok(())
    }

    /// Binds an endpoint for every HTTP/3 address of `services` that has
    /// none yet (all or none of them), then gives each endpoint its
    /// service's configuration (none where HTTP/3 went).
    fn serve_quic(self: &Arc<Self>, services: &Services) -> Result<(), ProxyError> {
        let Ok(mut endpoints) = self.quic_endpoints.lock() else {
            return Ok(());
        };
        let mut bound = Vec::new();
        for &address in services.by_quic_address.keys() {
            if !endpoints.contains_key(&address) {
                bound.push((address, crate::quic::endpoint(address, None)?));
            }
        }
        for (address, endpoint) in bound {
            tokio::spawn(self.clone().quic_accept_loop(endpoint.clone()));
            endpoints.insert(address, endpoint);
        }
        for (address, endpoint) in endpoints.iter() {
            let config = services
                .for_quic_address(*address)
                .and_then(|service| service.quic.as_ref())
                .map(|quic| quinn::ServerConfig::clone(&quic.config));
            endpoint.set_server_config(config);
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
                name: service.name.to_string(),
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

    pub(crate) fn current(&self) -> Arc<Services> {
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
        let services = self.current();
        self.serve_quic(&services)?;
        for listener in listeners {
            tokio::spawn(self.clone().accept_loop(listener));
        }
        self.start_health_checks(&services);
        Ok(())
    }

    async fn accept_loop(self: Arc<Self>, listener: TcpListener) {
        let mut draining = self.drain_signal();
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((tcp, peer)) => {
                        tokio::spawn(self.clone().connection(tcp, peer));
                    }
                    // Out of descriptors or memory: give the connections
                    // that hold them a moment to finish.
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                },
                // The listener closes with the loop.
                () = drain_begins(&mut draining) => return,
            }
        }
    }

    /// Follows the shutdown: `true` once [`Self::stop_accepting`] was called.
    pub(crate) fn drain_signal(&self) -> tokio::sync::watch::Receiver<bool> {
        self.draining.subscribe()
    }

    /// Closes the listeners and asks every connection to finish: an idle
    /// HTTP/1.1 one closes at once, one with a request in flight after its
    /// answer (`Connection: close`), HTTP/2 ones by GOAWAY.
    pub fn stop_accepting(&self) {
        self.draining.send_replace(true);
    }

    /// After [`Self::stop_accepting`]: waits until no connection is left
    /// or `within` has passed; returns how many were left.
    pub async fn drained(&self, within: Duration) -> i64 {
        let deadline = Instant::now() + within;
        let mut check = tokio::time::interval(DRAIN_CHECK);
        loop {
            check.tick().await;
            let open = self.metrics.connections_active.get();
            if open == 0 || Instant::now() >= deadline {
                return open;
            }
        }
    }

    async fn connection(self: Arc<Self>, tcp: TcpStream, peer: SocketAddr) {
        self.metrics.connections_active.inc();
        let _active = Active(&self.metrics);
        // Boxed: the handshake's state (at its largest two TLS sessions'
        // worth) is freed once it is done, so an idle connection costs
        // its session and little else.
        let (serving, _slot) = {
            let Some((tls, service, slot)) = Box::pin(self.handshake(tcp, peer)).await else {
                return;
            };
            let Some(exchange) = self.verified(&tls, service, peer) else {
                return;
            };
            // The session moves into the boxed future: the task holds it
            // nowhere else while the connection lives.
            (exchange.serve(tls), slot)
        };
        serving.await;
    }

    /// The app's identity from the certificate the handshake verified;
    /// the handshake counted, the source told to the firewall.
    fn verified(
        self: &Arc<Self>,
        tls: &ClientTls,
        service: Arc<RunningService>,
        peer: SocketAddr,
    ) -> Option<Arc<Exchange>> {
        let (_, session) = tls.get_ref();
        let Some(leaf) = session.peer_certificates().and_then(<[_]>::first) else {
            // Client authentication is mandatory: rustls already refused.
            self.metrics
                .refused(Transport::Tcp, &service.name, Refusal::NoClientCertificate);
            return None;
        };
        let identity = ClientIdentity::from_der(leaf.as_ref());
        let resumed = session.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
        self.metrics
            .handshakes
            .get_or_create(&HandshakeLabels {
                service: service.name.clone(),
                kind: if resumed { "resumed" } else { "full" },
                version: match session.protocol_version() {
                    Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1_3",
                    Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1_2",
                    // Not offered (tls::versions), so never seen.
                    _ => "other",
                },
            })
            .inc();
        self.tell_trusted(peer.ip());
        Some(Arc::new(Exchange {
            proxy: self.clone(),
            service,
            identity,
            peer,
        }))
    }

    /// The service chosen by SNI, a place in the per-source count and
    /// the mutual-TLS handshake; `None` when refused (and counted).
    async fn handshake(
        &self,
        tcp: TcpStream,
        peer: SocketAddr,
    ) -> Option<(ClientTls, Arc<RunningService>, SourceSlot<'_>)> {
        let services = self.current();
        let accepted_at = Instant::now();
        let acceptor = LazyConfigAcceptor::new(Acceptor::default(), AppSocket::new(tcp));
        let refused = |service: &str, refusal| {
            self.metrics.refused(Transport::Tcp, service, refusal);
            None
        };
        let start =
            match tokio::time::timeout_at(accepted_at + services.hello_timeout, acceptor).await {
                Ok(Ok(start)) => start,
                Ok(Err(error)) => return refused("", Refusal::of(&error)),
                Err(_) => return refused("", Refusal::Timeout),
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
            return refused("", Refusal::UnknownSni);
        };
        let Some(slot) = self.open_slot(peer.ip(), service.limits.max_connections_per_source)
        else {
            return refused(&service.name, Refusal::SourceLimit);
        };
        let deadline = accepted_at + service.timeouts.handshake.duration();
        let handshake = start.into_stream(service.tls.clone()).into_fallible();
        match tokio::time::timeout_at(deadline, handshake).await {
            Ok(Ok(mut tls)) => {
                tls.get_mut().0.handshake_over();
                Some((tls, service, slot))
            }
            Ok(Err((error, mut app))) => {
                // rustls' alert, encrypted in TLS 1.3, was held like a
                // ticket: one try to send it, as tokio-rustls does.
                let _ = std::future::poll_fn(|cx| Poll::Ready(app.poll_release(cx))).await;
                refused(&service.name, Refusal::of(&error))
            }
            Err(_) => refused(&service.name, Refusal::Timeout),
        }
    }

    /// A source that completed mutual TLS, for the firewall's trusted set.
    pub(crate) fn tell_trusted(&self, source: IpAddr) {
        if let Some(trusted) = &self.trusted
            && trusted.try_send(source).is_err()
        {
            self.metrics.trusted_feed_dropped.inc();
        }
    }

    pub(crate) fn open_slot(&self, source: IpAddr, max: u32) -> Option<SourceSlot<'_>> {
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
    // Linux hands TCP_NODELAY on to every accepted socket: one system call
    // per listener instead of one per connection.
    socket.set_tcp_nodelay(true)?;
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[tokio::test]
    async fn accepted_connections_send_without_delay() {
        let listener = listen(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
        let address = listener.local_addr().unwrap();
        let _app = TcpStream::connect(address).await.unwrap();
        let (accepted, _) = listener.accept().await.unwrap();
        assert!(
            accepted.nodelay().unwrap(),
            "TCP_NODELAY came from the listener"
        );
    }
}
