//! The bank's origin in a lab: an HTTPS server (rustls, hyper; HTTP/1.1
//! and HTTP/2) that answers every request and logs it with its headers as
//! one JSON line, so a test can prove what reached the bank, and that
//! nothing else did.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// What an origin serves and where it writes.
#[derive(Clone, Debug)]
pub struct OriginConfig {
    /// The service (bank) it is the origin of; it says so in each answer.
    pub name: String,
    pub listen: Vec<SocketAddr>,
    pub certificate: PathBuf,
    pub private_key: PathBuf,
    /// When given, a client certificate is asked for (not required) and,
    /// when signed by this CA, its subject is logged.
    pub client_ca: Option<PathBuf>,
    /// Requests, one JSON line each.
    pub log: PathBuf,
    /// Written once every listener is bound.
    pub ready: PathBuf,
}

/// One request as the origin saw it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct OriginRequest {
    pub peer: SocketAddr,
    pub local: SocketAddr,
    pub sni: Option<String>,
    /// The subject of the client certificate, when one was presented.
    pub client_certificate: Option<String>,
    pub method: String,
    pub path: String,
    pub version: String,
    /// Names in lower case, in the order received.
    pub headers: Vec<(String, String)>,
    pub body_bytes: usize,
}

impl OriginRequest {
    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OriginError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("TLS configuration: {0}")]
    Tls(String),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> OriginError {
    let what = what.into();
    move |source| OriginError::Io { what, source }
}

/// The largest request body the origin reads; more is refused.
const MAX_BODY: usize = 16 * 1024 * 1024;

fn tls_config(config: &OriginConfig) -> Result<rustls::ServerConfig, OriginError> {
    let tls = |error: &dyn std::fmt::Display| OriginError::Tls(error.to_string());
    let certs = CertificateDer::pem_file_iter(&config.certificate)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| tls(&e))?;
    let key = PrivateKeyDer::from_pem_file(&config.private_key).map_err(|e| tls(&e))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls(&e))?;
    let builder = match &config.client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(ca).map_err(|e| tls(&e))? {
                roots.add(cert.map_err(|e| tls(&e))?).map_err(|e| tls(&e))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()
                .map_err(|e| tls(&e))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut server = builder.with_single_cert(certs, key).map_err(|e| tls(&e))?;
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(server)
}

/// Serves until the process is ended.
pub fn run(config: &OriginConfig) -> Result<(), OriginError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(io("tokio runtime"))?;
    runtime.block_on(serve(config))
}

async fn serve(config: &OriginConfig) -> Result<(), OriginError> {
    let acceptor = TlsAcceptor::from(Arc::new(tls_config(config)?));
    let log = Arc::new(Mutex::new(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&config.log)
            .map_err(io(format!("open {}", config.log.display())))?,
    ));
    let mut listeners = Vec::new();
    for address in &config.listen {
        listeners.push(
            TcpListener::bind(address)
                .await
                .map_err(io(format!("bind {address}")))?,
        );
    }
    std::fs::write(&config.ready, "ready\n")
        .map_err(io(format!("write {}", config.ready.display())))?;
    let mut tasks = tokio::task::JoinSet::new();
    for listener in listeners {
        tasks.spawn(accept_loop(
            listener,
            acceptor.clone(),
            log.clone(),
            config.name.clone(),
        ));
    }
    while tasks.join_next().await.is_some() {}
    Ok(())
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    log: Arc<Mutex<std::fs::File>>,
    name: String,
) {
    loop {
        let Ok((tcp, peer)) = listener.accept().await else {
            continue;
        };
        let Ok(local) = tcp.local_addr() else {
            continue;
        };
        let acceptor = acceptor.clone();
        let log = log.clone();
        let name = name.clone();
        tokio::spawn(async move {
            // A failed handshake is the client's business; it reached no
            // handler, so nothing is logged.
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let (_, session) = tls.get_ref();
            let sni = session.server_name().map(str::to_owned);
            let client_certificate = session
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(subject);
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let seen = Seen {
                    peer,
                    local,
                    sni: sni.clone(),
                    client_certificate: client_certificate.clone(),
                };
                handle(request, seen, log.clone(), name.clone())
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
}

/// What the origin knows of a connection.
struct Seen {
    peer: SocketAddr,
    local: SocketAddr,
    sni: Option<String>,
    client_certificate: Option<String>,
}

/// The subject of a DER certificate, as text.
fn subject(der: &CertificateDer<'_>) -> String {
    use x509_parser::prelude::FromDer as _;
    x509_parser::certificate::X509Certificate::from_der(der).map_or_else(
        |_| "(unparseable)".to_owned(),
        |(_, cert)| cert.subject().to_string(),
    )
}

async fn handle(
    request: Request<Incoming>,
    seen: Seen,
    log: Arc<Mutex<std::fs::File>>,
    name: String,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let (parts, body) = request.into_parts();
    let Ok(body) = Limited::new(body, MAX_BODY).collect().await else {
        let mut refused =
            Response::new(Full::new(Bytes::from_static(b"body too large or broken\n")));
        *refused.status_mut() = hyper::StatusCode::PAYLOAD_TOO_LARGE;
        return Ok(refused);
    };
    let body_bytes = body.to_bytes().len();
    let logged = OriginRequest {
        peer: seen.peer,
        local: seen.local,
        sni: seen.sni,
        client_certificate: seen.client_certificate,
        method: parts.method.to_string(),
        path: parts
            .uri
            .path_and_query()
            .map_or_else(|| "/".to_owned(), ToString::to_string),
        version: format!("{:?}", parts.version),
        headers: parts
            .headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body_bytes,
    };
    if let (Ok(line), Ok(mut file)) = (serde_json::to_string(&logged), log.lock()) {
        use std::io::Write as _;
        let _ = writeln!(file, "{line}");
    }
    let answer = serde_json::json!({ "origin": name, "path": logged.path }).to_string();
    Ok(Response::new(Full::new(Bytes::from(answer))))
}
