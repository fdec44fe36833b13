//! HTTP/3: the apps over QUIC (quinn + h3) with the same mutual TLS, the
//! same upstream pool, identity headers, limits and metrics as over TCP.
//!
//! quinn cannot choose a TLS configuration by SNI (quinn#2024), so the
//! service address does: each service address has its own endpoint, and
//! a service's `[services.http3] addresses` are its alone.
//!
//! Before any handshake work each Initial is weighed: beyond
//! `retry_above_handshakes` handshakes in progress a client must first
//! echo a Retry token (RFC 9000 §8.1.2), so a spoofed Initial costs one
//! small packet and no handshake; beyond `max_handshakes` Initials are
//! dropped unanswered.

use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf as _, Bytes};
use http_body_util::BodyExt as _;
use hyper::body::{Body, Frame};
use hyper::{Request, Response};
use ixgate_policy::files::TicketKey;
use ixgate_policy::node::Service;
use prometheus_client::metrics::gauge::Gauge;
use tokio::time::Instant;

use crate::exchange::Exchange;
use crate::identity::ClientIdentity;
use crate::metrics::{HandshakeLabels, Initial, Transport};
use crate::server::{HTTPS_PORT, Proxy, ProxyError, RunningService, drain_begins};
use crate::tls::{self, Refusal, TlsError};

/// Streams (requests) one HTTP/3 client may have open at once.
const MAX_STREAMS: u32 = 100;
/// After a connection is told to go (GOAWAY), how long it may take.
const CLOSE_GRACE: Duration = Duration::from_secs(5);
/// The HTTP/3 error code of a clean close (RFC 9114 §8.1: H3_NO_ERROR).
const H3_NO_ERROR: u32 = 0x100;
/// RFC 9114 §8.1: H3_REQUEST_REJECTED, nothing of it was processed.
const H3_REQUEST_REJECTED: u32 = 0x10b;

/// The QUIC side of one service.
pub(crate) struct QuicService {
    pub(crate) config: Arc<quinn::ServerConfig>,
    /// What the TCP listeners advertise (RFC 7838).
    pub(crate) alt_svc: hyper::header::HeaderValue,
}

impl QuicService {
    pub(crate) fn build(
        service: &Service,
        ticket_keys: &[TicketKey],
        max_handshakes: u32,
    ) -> Result<Option<Self>, ProxyError> {
        let Some(http3) = &service.http3 else {
            return Ok(None);
        };
        let fail = |message: String| TlsError::Build {
            service: service.name.to_string(),
            message,
        };
        let tls = tls::quic_server_config(service, ticket_keys)?;
        let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls)
            .map_err(|error| fail(error.to_string()))?;
        let mut transport = quinn::TransportConfig::default();
        let idle = quinn::IdleTimeout::try_from(service.timeouts.client_idle.duration())
            .map_err(|error| fail(format!("client idle timeout: {error}")))?;
        transport
            .max_idle_timeout(Some(idle))
            .max_concurrent_bidi_streams(quinn::VarInt::from_u32(MAX_STREAMS));
        let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
        config
            .transport_config(Arc::new(transport))
            // Phones change networks: the connection follows (RFC 9000 §9).
            .migration(true)
            .max_incoming(usize::try_from(max_handshakes).unwrap_or(usize::MAX));
        let alt_svc = hyper::header::HeaderValue::from_str(&format!(
            "h3=\":{HTTPS_PORT}\"; ma={}",
            http3.alt_svc_max_age.duration().as_secs()
        ))
        .map_err(|error| fail(error.to_string()))?;
        Ok(Some(Self {
            config: Arc::new(config),
            alt_svc,
        }))
    }
}

/// Binds UDP/443 on `address`, the endpoint taking the configuration of
/// the service that has the address (none: Initials go unanswered).
pub(crate) fn endpoint(
    address: IpAddr,
    config: Option<quinn::ServerConfig>,
) -> Result<quinn::Endpoint, ProxyError> {
    let socket_address = SocketAddr::new(address, HTTPS_PORT);
    let listen_error = |source| ProxyError::Listen {
        address: socket_address,
        source,
    };
    let domain = socket2::Domain::for_address(socket_address);
    let socket = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))
        .map_err(listen_error)?;
    // As the TCP listeners: up before the address is on the holder.
    let options = if address.is_ipv6() {
        socket
            .set_only_v6(true)
            .and_then(|()| socket.set_freebind_v6(true))
    } else {
        socket.set_freebind_v4(true)
    };
    options
        .and_then(|()| socket.set_cloexec(true))
        .and_then(|()| socket.bind(&socket_address.into()))
        .map_err(listen_error)?;
    quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        config,
        socket.into(),
        Arc::new(quinn::TokioRuntime),
    )
    .map_err(listen_error)
}

/// One handshake in the in-progress count until it ends.
struct Handshaking(Gauge);

impl Drop for Handshaking {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Proxy {
    /// Takes the QUIC connections to one service address until the proxy
    /// drains.
    pub(crate) async fn quic_accept_loop(self: Arc<Self>, endpoint: quinn::Endpoint) {
        let mut draining = self.drain_signal();
        let Ok(local) = endpoint.local_addr() else {
            return;
        };
        loop {
            let incoming = tokio::select! {
                incoming = endpoint.accept() => match incoming {
                    Some(incoming) => incoming,
                    None => return,
                },
                () = drain_begins(&mut draining) => {
                    // New connections are refused; open ones finish.
                    endpoint.set_server_config(None);
                    return;
                }
            };
            self.weigh_initial(incoming, local.ip());
        }
    }

    /// Retry, drop or take one new connection.
    fn weigh_initial(self: &Arc<Self>, incoming: quinn::Incoming, local: IpAddr) {
        let metrics = self.metrics();
        let services = self.current();
        let in_progress =
            u32::try_from(metrics.quic_handshakes_in_progress.get().max(0)).unwrap_or(u32::MAX);
        if in_progress >= services.quic.max_handshakes {
            metrics.quic_initial(Initial::DroppedHandshakeCap);
            incoming.ignore();
            return;
        }
        if in_progress >= services.quic.retry_above_handshakes
            && !incoming.remote_address_validated()
            && incoming.may_retry()
        {
            metrics.quic_initial(Initial::Retry);
            // An error is a client that already echoed a token: dropped.
            let _ = incoming.retry();
            return;
        }
        let Some(service) = services.for_quic_address(local).cloned() else {
            metrics.quic_initial(Initial::NoService);
            incoming.ignore();
            return;
        };
        metrics.quic_initial(Initial::Accepted);
        metrics.quic_handshakes_in_progress.inc();
        let handshaking = Handshaking(metrics.quic_handshakes_in_progress.clone());
        tokio::spawn(self.clone().quic_connection(incoming, service, handshaking));
    }

    async fn quic_connection(
        self: Arc<Self>,
        incoming: quinn::Incoming,
        service: Arc<RunningService>,
        handshaking: Handshaking,
    ) {
        let metrics = self.metrics();
        let peer = incoming.remote_address();
        let Some(_slot) = self.open_slot(peer.ip(), service.limits.max_connections_per_source)
        else {
            metrics.refused(Transport::Quic, &service.name, Refusal::SourceLimit);
            incoming.refuse();
            return;
        };
        metrics.connections_active.inc();
        let _active = crate::server::Active(metrics);
        let Some(quic) = &service.quic else {
            return;
        };
        let deadline = Instant::now() + service.timeouts.handshake.duration();
        let connecting = match incoming.accept_with(quic.config.clone()) {
            Ok(connecting) => connecting,
            Err(error) => {
                metrics.refused(Transport::Quic, &service.name, Refusal::of_quic(&error));
                return;
            }
        };
        let connection = match tokio::time::timeout_at(deadline, connecting).await {
            Ok(Ok(connection)) => connection,
            Ok(Err(error)) => {
                metrics.refused(Transport::Quic, &service.name, Refusal::of_quic(&error));
                return;
            }
            Err(_) => {
                metrics.refused(Transport::Quic, &service.name, Refusal::Timeout);
                return;
            }
        };
        drop(handshaking);
        // The address chose the bank; the name the app asked for must be
        // one of that bank's, as over TCP.
        let asked = connection
            .handshake_data()
            .and_then(|data| data.downcast::<quinn::crypto::rustls::HandshakeData>().ok())
            .and_then(|data| data.server_name);
        let known = asked.is_some_and(|name| {
            service
                .sni
                .iter()
                .any(|sni| sni.eq_ignore_ascii_case(&name))
        });
        if !known {
            metrics.refused(Transport::Quic, &service.name, Refusal::UnknownSni);
            connection.close(
                quinn::VarInt::from_u32(H3_REQUEST_REJECTED),
                b"unknown server name",
            );
            return;
        }
        let leaf = connection
            .peer_identity()
            .and_then(|identity| {
                identity
                    .downcast::<Vec<rustls_pki_types::CertificateDer<'static>>>()
                    .ok()
            })
            .and_then(|chain| {
                chain
                    .first()
                    .map(|leaf| ClientIdentity::from_der(leaf.as_ref()))
            });
        let Some(identity) = leaf else {
            // Client authentication is mandatory: rustls already refused.
            metrics.refused(Transport::Quic, &service.name, Refusal::NoClientCertificate);
            connection.close(quinn::VarInt::from_u32(H3_NO_ERROR), b"");
            return;
        };
        metrics
            .handshakes
            .get_or_create(&HandshakeLabels {
                service: service.name.clone(),
                // quinn does not tell whether rustls resumed.
                kind: Transport::Quic.label(),
                version: "TLSv1_3",
            })
            .inc();
        let peer = connection.remote_address();
        self.tell_trusted(peer.ip());
        let exchange = Arc::new(Exchange {
            proxy: self.clone(),
            service,
            identity,
            peer,
        });
        exchange.serve_http3(connection).await;
    }
}

impl Exchange {
    /// The requests of one QUIC connection, each on its own task, until the
    /// app closes it, it idles out (quinn's idle timeout) or the node
    /// drains (GOAWAY, then a grace period).
    async fn serve_http3(self: Arc<Self>, connection: quinn::Connection) {
        let mut builder = h3::server::builder();
        builder.max_field_section_size(u64::from(self.service.limits.max_header_bytes));
        let Ok(mut h3) = builder
            .build::<_, Bytes>(h3_quinn::Connection::new(connection.clone()))
            .await
        else {
            return;
        };
        let mut draining = self.proxy.drain_signal();
        let mut told_to_go: Option<Instant> = None;
        loop {
            // Only waited on once the connection was told to go.
            let grace = told_to_go.map_or_else(Instant::now, |at| at + CLOSE_GRACE);
            tokio::select! {
                accepted = h3.accept() => match accepted {
                    Ok(Some(resolver)) => {
                        let exchange = self.clone();
                        let connection = connection.clone();
                        tokio::spawn(async move {
                            if let Ok((request, stream)) = resolver.resolve_request().await {
                                exchange.answer_http3(request, stream, &connection).await;
                            }
                        });
                    }
                    // Closed by the app, idled out, or an error on the
                    // connection as a whole.
                    Ok(None) | Err(_) => return,
                },
                () = drain_begins(&mut draining), if told_to_go.is_none() => {
                    // GOAWAY: requests under way finish, no new ones.
                    let _ = h3.shutdown(0).await;
                    told_to_go = Some(Instant::now());
                }
                () = tokio::time::sleep_until(grace), if told_to_go.is_some() => {
                    connection.close(quinn::VarInt::from_u32(H3_NO_ERROR), b"");
                    return;
                }
            }
        }
    }

    async fn answer_http3(
        &self,
        request: Request<()>,
        stream: h3::server::RequestStream<h3_quinn::BidiStream<Bytes>, Bytes>,
        connection: &quinn::Connection,
    ) {
        let (mut sending, receive) = stream.split();
        let request = request.map(|()| RequestBody { stream: receive });
        // The address now: a phone that moved shows where it is.
        let response = self.forward(request, connection.remote_address()).await;
        let (parts, mut body) = response.into_parts();
        if sending
            .send_response(Response::from_parts(parts, ()))
            .await
            .is_err()
        {
            return;
        }
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else {
                // The origin broke off: so does the stream.
                sending.stop_stream(h3::error::Code::H3_INTERNAL_ERROR);
                return;
            };
            let sent = match frame.into_data() {
                Ok(data) => sending.send_data(data).await,
                Err(frame) => match frame.into_trailers() {
                    Ok(trailers) => sending.send_trailers(trailers).await,
                    Err(_) => Ok(()),
                },
            };
            if sent.is_err() {
                return;
            }
        }
        let _ = sending.finish().await;
    }
}

/// An HTTP/3 request's body, as hyper's client sends it on.
struct RequestBody {
    stream: h3::server::RequestStream<h3_quinn::RecvStream, Bytes>,
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = h3::error::StreamError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.get_mut().stream.poll_recv_data(cx) {
            Poll::Ready(Ok(Some(mut data))) => {
                let bytes = data.copy_to_bytes(data.remaining());
                Poll::Ready(Some(Ok(Frame::data(bytes))))
            }
            Poll::Ready(Ok(None)) => Poll::Ready(None),
            Poll::Ready(Err(error)) => Poll::Ready(Some(Err(error))),
            Poll::Pending => Poll::Pending,
        }
    }
}
