//! One verified client connection: HTTP/1.1 or HTTP/2 (by ALPN) to the
//! app, each request forwarded to the bank's origin with the app's
//! identity.
//!
//! An HTTP/1.1 connection waiting for its next request is *parked*: hyper
//! hands the TLS session back (with any bytes it read but did not use)
//! and its buffers go (8 KiB of response-head buffer and up to 16 KiB of
//! read buffer, measured with heaptrack); the connection then costs its
//! TLS session and little else until the app's next request arrives. Apps
//! hold connections open for minutes between requests; 24 KiB each is
//! what a node of a 17-million-people country can least afford.
//!
//! A connection parks as soon as it waits, unless it came back within
//! [`PARK_AFTER`] of parking last time: a busy one then parks only after
//! that long without a request. Parking after every answer cost a busy
//! connection a fresh hyper connection per request (a fifth of the
//! proxy's CPU in the keep-alive benchmark); parking only after a delay
//! left every connection of a burst holding its buffers at once.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode, Uri, Version};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};
use tokio::time::Instant;
use tokio_rustls::server::TlsStream;

use crate::app_socket::AppSocket;
use crate::identity::ClientIdentity;
use crate::metrics::RequestLabels;
use crate::server::{Proxy, RunningService, drain_begins};
use crate::upstream::OriginBody;
use crate::watch::{Activity, InFlight, Watched};

/// After an idle connection is told to go (GOAWAY), how long it may take.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// An HTTP/1.1 connection back within this of parking is busy: it parks
/// next after this long without a request. Longer than the gaps within
/// an app's burst of requests.
const PARK_AFTER: Duration = Duration::from_secs(1);

/// A client's TLS session.
pub type ClientTls = TlsStream<AppSocket>;

/// A response body that keeps its request open until hyper has sent it.
pub struct ResponseBody {
    body: OriginBody,
    _open: InFlight,
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

type Answer = Pin<Box<dyn Future<Output = Result<Response<ResponseBody>, Infallible>> + Send>>;

/// One verified client connection and what its requests need.
pub struct Exchange {
    pub proxy: Arc<Proxy>,
    pub service: Arc<RunningService>,
    pub identity: ClientIdentity,
    pub peer: SocketAddr,
}

/// Counts a parked connection while it is parked.
struct Parked<'a>(&'a Proxy);

impl<'a> Parked<'a> {
    fn new(proxy: &'a Proxy) -> Self {
        proxy.metrics().connections_parked.inc();
        Self(proxy)
    }
}

impl Drop for Parked<'_> {
    fn drop(&mut self) {
        self.0.metrics().connections_parked.dec();
    }
}

impl Exchange {
    /// Serves the connection until it ends. Boxed, and apart for each
    /// version: an HTTP/2 connection's state is several times an HTTP/1.1
    /// one's, and a task is the size of its largest state. (The TLS
    /// session, 1.2 KiB, is held in one place only.)
    pub fn serve(self: Arc<Self>, tls: ClientTls) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        if tls.get_ref().1.alpn_protocol() == Some(b"h2") {
            Box::pin(self.serve_http2(tls))
        } else {
            Box::pin(self.serve_http1(tls))
        }
    }

    /// The requests of one connection, as hyper's service.
    fn requests(
        self: &Arc<Self>,
        activity: &Arc<Activity>,
    ) -> impl hyper::service::Service<
        Request<Incoming>,
        Response = Response<ResponseBody>,
        Error = Infallible,
        Future = Answer,
    > + Unpin
    + use<> {
        let (exchange, activity) = (self.clone(), activity.clone());
        hyper::service::service_fn(move |request| {
            let open = activity.open_request();
            let exchange = exchange.clone();
            Box::pin(async move {
                let response = exchange.forward(request, exchange.peer).await;
                let (parts, body) = response.into_parts();
                Ok(Response::from_parts(
                    parts,
                    ResponseBody { body, _open: open },
                ))
            }) as Answer
        })
    }

    async fn serve_http1(self: Arc<Self>, mut tls: ClientTls) {
        let (proxy, service, peer) = (self.proxy.clone(), self.service.clone(), self.peer);
        let idle = service.timeouts.client_idle.duration();
        let activity = Activity::new();
        let mut draining = proxy.drain_signal();
        let mut unread = Bytes::new();
        let mut busy = false;
        let mut from_handshake = Some(self);
        loop {
            activity.restart();
            // A parked connection let its identity go (1.5 KiB of headers):
            // made again from the certificate rustls holds.
            let exchange = if let Some(exchange) = from_handshake.take() {
                exchange
            } else {
                let Some(leaf) = tls.get_ref().1.peer_certificates().and_then(<[_]>::first) else {
                    return;
                };
                Arc::new(Self {
                    proxy: proxy.clone(),
                    service: service.clone(),
                    identity: ClientIdentity::from_der(leaf.as_ref()),
                    peer,
                })
            };
            // Boxed: the buffers and state go when the connection parks.
            let mut connection = Box::new(service.http1.serve_connection(
                Watched::new(TokioIo::new(tls), unread, activity.clone()),
                exchange.requests(&activity),
            ));
            drop(exchange);
            let mut parking = false;
            let mut closing_since = None;
            // A busy connection's next look at whether it may park.
            let mut park_check = busy.then(|| activity.last_moved() + PARK_AFTER);
            let ended = loop {
                let wake = match (closing_since, park_check) {
                    (Some(since), _) => since + CLOSE_GRACE,
                    (None, Some(check)) => check.min(activity.last_moved() + idle),
                    (None, None) => activity.last_moved() + idle,
                };
                tokio::select! {
                    ended = std::future::poll_fn(|cx| connection.poll_without_shutdown(cx)) => break ended,
                    () = drain_begins(&mut draining), if closing_since.is_none() => {
                        Pin::new(&mut *connection).graceful_shutdown();
                        closing_since = Some(Instant::now());
                    }
                    () = activity.waiting(), if closing_since.is_none() && !parking && !busy => {
                        if activity.is_waiting() {
                            Pin::new(&mut *connection).graceful_shutdown();
                            parking = true;
                        }
                    }
                    () = tokio::time::sleep_until(wake) => {
                        if closing_since.is_some() {
                            return;
                        }
                        let now = Instant::now();
                        if now >= activity.last_moved() + idle {
                            Pin::new(&mut *connection).graceful_shutdown();
                            closing_since = Some(now);
                        } else if park_check.is_some_and(|check| now >= check) {
                            park_check = if !activity.is_waiting() {
                                // A request is open (or none answered yet).
                                Some(now + PARK_AFTER)
                            } else if now >= activity.last_moved() + PARK_AFTER {
                                Pin::new(&mut *connection).graceful_shutdown();
                                parking = true;
                                None
                            } else {
                                Some(activity.last_moved() + PARK_AFTER)
                            };
                        }
                    }
                }
            };
            let read_buf;
            (tls, read_buf) = {
                let parts = connection.into_parts();
                (parts.io.into_inner().into_inner(), parts.read_buf)
            };
            if ended.is_err() || !parking || closing_since.is_some() {
                // hyper answered what it could; the app closed, erred or
                // idled out. Tell it the session is over, unless it left.
                if !app_hung_up(&mut tls) {
                    close_notify(&mut tls).await;
                }
                return;
            }
            // Copied out: the read buffer hyper leaves is its whole 8 KiB
            // allocation, however few bytes it still holds.
            unread = Bytes::copy_from_slice(&read_buf);
            drop(read_buf);
            let parked_at = Instant::now();
            if unread.is_empty() {
                let _parked = Parked::new(&proxy);
                let deadline = activity.last_moved() + idle;
                if !next_request(&mut tls, deadline, &mut draining).await {
                    return;
                }
            }
            busy = parked_at.elapsed() < PARK_AFTER;
        }
    }

    async fn serve_http2(self: Arc<Self>, tls: ClientTls) {
        let idle = self.service.timeouts.client_idle.duration();
        let activity = Activity::new();
        let io = Watched::new(TokioIo::new(tls), Bytes::new(), activity.clone());
        let connection = self
            .service
            .http2
            .serve_connection(io, self.requests(&activity));
        let mut connection = std::pin::pin!(connection);
        // Our own idle watchdog: hyper has none for HTTP/2.
        let mut told_to_go = None;
        let mut draining = self.proxy.drain_signal();
        loop {
            let wake = match told_to_go {
                Some(at) => at + CLOSE_GRACE,
                None => activity.last_moved() + idle,
            };
            tokio::select! {
                _ = connection.as_mut() => return,
                () = drain_begins(&mut draining), if told_to_go.is_none() => {
                    connection.as_mut().graceful_shutdown();
                    told_to_go = Some(Instant::now());
                }
                () = tokio::time::sleep_until(wake) => {
                    if told_to_go.is_some() {
                        return;
                    }
                    if Instant::now() >= activity.last_moved() + idle {
                        connection.as_mut().graceful_shutdown();
                        told_to_go = Some(Instant::now());
                    }
                }
            }
        }
    }

    /// Forwards one request of the app at `peer` (its address now: a QUIC
    /// connection may have moved) and counts the answer.
    pub(crate) async fn forward<B>(
        &self,
        request: Request<B>,
        peer: SocketAddr,
    ) -> Response<OriginBody>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let version = request.version();
        let protocol = match version {
            Version::HTTP_3 => "h3",
            Version::HTTP_2 => "h2",
            _ => "h1",
        };
        let mut response = self.forward_inner(request, peer).await;
        if let Some(quic) = &self.service.quic
            && version != Version::HTTP_3
        {
            // RFC 7838: the app may come back over HTTP/3.
            response
                .headers_mut()
                .insert(header::ALT_SVC, quic.alt_svc.clone());
        }
        self.proxy
            .metrics()
            .requests
            .get_or_create(&RequestLabels {
                service: self.service.name.clone(),
                protocol,
                status: response.status().as_u16(),
            })
            .inc();
        response
    }

    async fn forward_inner<B>(&self, request: Request<B>, peer: SocketAddr) -> Response<OriginBody>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let service = &self.service;
        let metrics = self.proxy.metrics();
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
        if let Ok(peer) = HeaderValue::from_str(&peer.ip().to_string()) {
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

/// Whether the app closed TCP without close_notify: a close_notify now
/// would only draw a reset (and costs a write and the reset's handling,
/// for every app that just goes).
fn app_hung_up(tls: &mut ClientTls) -> bool {
    let mut byte = [0_u8; 1];
    matches!(
        std::io::Read::read(&mut tls.get_mut().1.reader(), &mut byte),
        Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof
    )
}

/// Tells the app the session is over (RFC 8446 §6.1); the socket's close
/// that follows sends the FIN. A TCP shutdown as well would be one more
/// system call for every connection, for the same FIN (and fails when the
/// app has already gone).
async fn close_notify(tls: &mut ClientTls) {
    tls.get_mut().1.send_close_notify();
    let _ = tokio::time::timeout(CLOSE_GRACE, tls.flush()).await;
}

/// Waits on a parked connection until the app sends its next request:
/// `true`, the request's first bytes left in the session for hyper; or,
/// at `idle_deadline` or when the node drains, says close_notify, and
/// when the app says close_notify answers it, or hangs up goes without
/// one: `false`. Bytes are opened here, not by a new hyper connection: an
/// app's close_notify then costs no identity and no HTTP state.
async fn next_request(
    tls: &mut ClientTls,
    idle_deadline: Instant,
    draining: &mut tokio::sync::watch::Receiver<bool>,
) -> bool {
    loop {
        tokio::select! {
            ready = tls.get_ref().0.readable() => if ready.is_err() { return false },
            () = tokio::time::sleep_until(idle_deadline) => {
                close_notify(tls).await;
                return false;
            }
            () = drain_begins(draining) => {
                close_notify(tls).await;
                return false;
            }
        }
        // Readiness may be left from the last read: only bytes unpark (and
        // only then does rustls take a read buffer).
        match waiting_bytes(tls.get_ref().0).await {
            Waiting::Bytes => break,
            // Nobody left to read a close_notify (see `app_hung_up`).
            Waiting::End => return false,
            Waiting::Nothing => {}
        }
    }
    // A request, or the app's close_notify: rustls tells, keeping what it
    // opened for whoever reads next (so stopping the wait loses nothing).
    let opened = tokio::select! {
        opened = tokio::time::timeout_at(idle_deadline, tls.fill_buf()) => opened,
        // Bytes that are no request (a record cut off, a lone KeyUpdate)
        // do not hold up a drain.
        () = drain_begins(draining) => Ok(Ok(&[][..])),
    };
    match opened {
        Ok(Ok(request)) if !request.is_empty() => true,
        // The app's close_notify, the drain, or the idle time mid-record.
        Ok(Ok(_)) | Err(_) => {
            close_notify(tls).await;
            false
        }
        // Hung up without close_notify (nobody to tell), or a record
        // rustls refused (tokio-rustls sent its alert as it failed).
        Ok(Err(_)) => false,
    }
}

/// What waits on a socket.
enum Waiting {
    Nothing,
    Bytes,
    /// The end of the stream, or an error.
    End,
}

/// What waits on the app's socket, without taking it; `Nothing` clears a readiness
/// left from an earlier read.
async fn waiting_bytes(app: &AppSocket) -> Waiting {
    let mut byte = [0_u8; 1];
    std::future::poll_fn(|cx| {
        let mut buf = tokio::io::ReadBuf::new(&mut byte);
        Poll::Ready(match app.poll_peek(cx, &mut buf) {
            Poll::Pending => Waiting::Nothing,
            Poll::Ready(Ok(0) | Err(_)) => Waiting::End,
            Poll::Ready(Ok(_)) => Waiting::Bytes,
        })
    })
    .await
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
