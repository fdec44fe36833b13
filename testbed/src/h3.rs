//! An app's HTTP/3 requests (quinn + h3): Debian's curl has no HTTP/3.
//!
//! `ixgate-testbed h3` runs inside a client node: one QUIC connection,
//! `count` requests on it one after the other, and optionally a move to
//! another source address between two of them (a phone changing
//! networks). It prints an [`H3Report`] as JSON.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Buf as _;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use serde::{Deserialize, Serialize};

use crate::client::{ClientOutcome, ClientRequest};

/// What one connection's requests got.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct H3Report {
    /// One per request that was answered, in order.
    pub responses: Vec<H3Response>,
    /// Why the connection or a request failed, if one did.
    pub error: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct H3Response {
    pub status: u16,
    pub body: String,
    /// The client's address when the request was sent.
    pub from: SocketAddr,
}

impl H3Report {
    /// The first request's outcome in curl's terms (exit 35: the TLS
    /// handshake or the connection failed).
    pub fn first_outcome(&self) -> ClientOutcome {
        match (self.responses.first(), &self.error) {
            (Some(response), _) => ClientOutcome::Response {
                status: response.status,
                body: response.body.clone(),
            },
            (None, error) => ClientOutcome::Failed {
                curl_exit: 35,
                message: error.clone().unwrap_or_default(),
            },
        }
    }
}

/// How one run goes (handed to `ixgate-testbed h3` as JSON).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct H3Run {
    pub request: ClientRequest,
    pub count: u32,
    /// Move to this source address after the first request.
    pub move_to: Option<IpAddr>,
    /// Hold the handshake this long at the server's certificate (a slow
    /// phone): the server counts a handshake in progress meanwhile.
    pub stall: Option<Duration>,
}

/// Runs `run` and reports; never fails, the failure is in the report.
pub async fn run(run: &H3Run) -> H3Report {
    let mut report = H3Report::default();
    if let Err(error) = requests(run, &mut report).await {
        report.error = Some(error);
    }
    report
}

async fn requests(run: &H3Run, report: &mut H3Report) -> Result<(), String> {
    let request = &run.request;
    let config = client_config(request, run.stall)?;
    let unspecified = match request.address {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    let mut endpoint = quinn::Endpoint::client(SocketAddr::new(unspecified, 0))
        .map_err(|error| format!("client endpoint: {error}"))?;
    endpoint.set_default_client_config(config);
    let target = SocketAddr::new(request.address, request.port);
    let connecting = endpoint
        .connect(target, &request.host)
        .map_err(|error| format!("connect: {error}"))?;
    let connection = tokio::time::timeout(request.timeout, connecting)
        .await
        .map_err(|_| "QUIC handshake timed out".to_owned())?
        .map_err(|error| format!("QUIC handshake: {error}"))?;
    let (mut driver, mut send) = h3::client::new(h3_quinn::Connection::new(connection.clone()))
        .await
        .map_err(|error| format!("HTTP/3 setup: {error}"))?;
    let driving = tokio::spawn(async move {
        let _ = std::future::poll_fn(|cx| driver.poll_close(cx)).await;
    });
    for index in 0..run.count {
        if index == 1
            && let Some(address) = run.move_to
        {
            let socket = std::net::UdpSocket::bind(SocketAddr::new(address, 0))
                .map_err(|error| format!("bind {address}: {error}"))?;
            endpoint
                .rebind(socket)
                .map_err(|error| format!("rebind to {address}: {error}"))?;
        }
        let from = endpoint
            .local_addr()
            .map_err(|error| format!("local address: {error}"))?;
        let answered = tokio::time::timeout(request.timeout, one(&mut send, request))
            .await
            .map_err(|_| format!("request {} timed out", index + 1))??;
        report.responses.push(H3Response {
            status: answered.0,
            body: answered.1,
            from,
        });
    }
    connection.close(quinn::VarInt::from_u32(0x100), b"done");
    driving.abort();
    endpoint.wait_idle().await;
    Ok(())
}

async fn one(
    send: &mut h3::client::SendRequest<h3_quinn::OpenStreams, bytes::Bytes>,
    request: &ClientRequest,
) -> Result<(u16, String), String> {
    // As curl: the default port is left out of the authority.
    let authority = if request.port == 443 {
        request.host.clone()
    } else {
        format!("{}:{}", request.host, request.port)
    };
    let mut builder = hyper::Request::get(format!("https://{authority}{}", request.path));
    for (name, value) in &request.headers {
        builder = builder.header(name, value);
    }
    let head = builder
        .body(())
        .map_err(|error| format!("request: {error}"))?;
    let mut stream = send
        .send_request(head)
        .await
        .map_err(|error| format!("send request: {error}"))?;
    if let Some(path) = &request.body {
        let bytes = std::fs::read(path).map_err(|error| format!("{}: {error}", path.display()))?;
        stream
            .send_data(bytes::Bytes::from(bytes))
            .await
            .map_err(|error| format!("send body: {error}"))?;
    }
    stream
        .finish()
        .await
        .map_err(|error| format!("finish request: {error}"))?;
    let response = stream
        .recv_response()
        .await
        .map_err(|error| format!("response: {error}"))?;
    let mut body = Vec::new();
    while let Some(mut chunk) = stream
        .recv_data()
        .await
        .map_err(|error| format!("response body: {error}"))?
    {
        let bytes = chunk.copy_to_bytes(chunk.remaining());
        body.extend_from_slice(&bytes);
    }
    Ok((
        response.status().as_u16(),
        String::from_utf8_lossy(&body).into_owned(),
    ))
}

fn client_config(
    request: &ClientRequest,
    stall: Option<Duration>,
) -> Result<quinn::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for certificate in read_certificates(&request.ca)? {
        roots
            .add(certificate)
            .map_err(|error| format!("{}: {error}", request.ca.display()))?;
    }
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|error| format!("server verifier: {error}"))?;
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|error| format!("TLS: {error}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyName { verifier, stall }));
    let mut config = match &request.certificate {
        Some((certificate, key)) => {
            let chain = read_certificates(certificate)?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|error| format!("{}: {error}", key.display()))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|error| format!("client certificate: {error}"))?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h3".to_vec()];
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(Arc::new(config))
        .map_err(|error| format!("QUIC TLS: {error}"))?;
    Ok(quinn::ClientConfig::new(Arc::new(crypto)))
}

fn read_certificates(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, String> {
    CertificateDer::pem_file_iter(path)
        .and_then(Iterator::collect)
        .map_err(|error| format!("{}: {error}", path.display()))
}

/// The server's chain checked against the CA, its name not: a client that
/// sends a name no service has must reach the server's own check.
#[derive(Debug)]
struct AnyName {
    verifier: Arc<WebPkiServerVerifier>,
    stall: Option<Duration>,
}

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(stall) = self.stall {
            // The whole client waits: it is a process of its own.
            std::thread::sleep(stall);
        }
        match self.verifier.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verifier.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verifier.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.verifier.supported_verify_schemes()
    }
}
