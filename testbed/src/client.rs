//! A mobile client's HTTPS request, made with curl: a real TLS stack that
//! sends a chosen client certificate and can be held to a TLS version
//! (TLS 1.1 included, which rustls does not speak).

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The TLS versions the client offers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum TlsVersions {
    /// What curl offers by default (1.2 and 1.3).
    #[default]
    Default,
    /// Exactly TLS 1.1: an outdated client.
    Only11,
    Only12,
    Only13,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum HttpVersion {
    #[default]
    Http11,
    Http2,
    /// Over QUIC, by the testbed's own client ([`crate::h3`]).
    Http3,
}

/// One request: `GET https://HOST:PORT/PATH`, HOST resolved to `address`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClientRequest {
    pub host: String,
    pub port: u16,
    pub path: String,
    pub address: IpAddr,
    /// The CA that signs the server's certificate.
    pub ca: PathBuf,
    /// Client certificate and key (PEM), if the client presents one.
    pub certificate: Option<(PathBuf, PathBuf)>,
    pub tls: TlsVersions,
    /// The key-exchange groups offered, in order (curl's `--curves`; the
    /// key share goes for the first): none, curl's own.
    #[serde(default)]
    pub groups: Option<String>,
    pub http: HttpVersion,
    pub headers: Vec<(String, String)>,
    /// A file whose bytes are POSTed; none: a GET.
    pub body: Option<PathBuf>,
    pub timeout: Duration,
}

impl ClientRequest {
    pub fn new(host: &str, port: u16, address: IpAddr, ca: PathBuf) -> Self {
        Self {
            host: host.to_owned(),
            port,
            path: "/".to_owned(),
            address,
            ca,
            certificate: None,
            tls: TlsVersions::Default,
            groups: None,
            http: HttpVersion::Http11,
            headers: Vec::new(),
            body: None,
            timeout: Duration::from_secs(5),
        }
    }

    #[must_use]
    pub fn path(mut self, path: &str) -> Self {
        path.clone_into(&mut self.path);
        self
    }

    #[must_use]
    pub fn certificate(mut self, certificate: PathBuf, key: PathBuf) -> Self {
        self.certificate = Some((certificate, key));
        self
    }

    #[must_use]
    pub fn tls(mut self, tls: TlsVersions) -> Self {
        self.tls = tls;
        self
    }

    /// Offers `groups` (`X448:X25519`: a key share the server has no use
    /// for, so it asks again, RFC 8446 §4.1.4).
    #[must_use]
    pub fn groups(mut self, groups: &str) -> Self {
        self.groups = Some(groups.to_owned());
        self
    }

    #[must_use]
    pub fn http(mut self, http: HttpVersion) -> Self {
        self.http = http;
        self
    }

    /// POSTs the bytes of `file`.
    #[must_use]
    pub fn body(mut self, file: PathBuf) -> Self {
        self.body = Some(file);
        self
    }

    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// curl's arguments. The status code is printed on a last line of its
    /// own after the body.
    pub fn curl_args(&self) -> Vec<String> {
        let address = match self.address {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => format!("[{v6}]"),
        };
        let mut args = vec![
            "--silent".to_owned(),
            "--show-error".to_owned(),
            "--max-time".to_owned(),
            format!("{:.3}", self.timeout.as_secs_f64()),
            "--cacert".to_owned(),
            self.ca.to_string_lossy().into_owned(),
            "--resolve".to_owned(),
            format!("{}:{}:{address}", self.host, self.port),
            "--write-out".to_owned(),
            "\n%{http_code}".to_owned(),
        ];
        if let Some((certificate, key)) = &self.certificate {
            args.extend([
                "--cert".to_owned(),
                certificate.to_string_lossy().into_owned(),
            ]);
            args.extend(["--key".to_owned(), key.to_string_lossy().into_owned()]);
        }
        match self.tls {
            TlsVersions::Default => {}
            // OpenSSL 3 refuses TLS 1.1 below security level 0.
            TlsVersions::Only11 => args.extend(
                [
                    "--tlsv1.1",
                    "--tls-max",
                    "1.1",
                    "--ciphers",
                    "DEFAULT@SECLEVEL=0",
                ]
                .map(str::to_owned),
            ),
            TlsVersions::Only12 => {
                args.extend(["--tlsv1.2", "--tls-max", "1.2"].map(str::to_owned));
            }
            TlsVersions::Only13 => {
                args.extend(["--tlsv1.3", "--tls-max", "1.3"].map(str::to_owned));
            }
        }
        if let Some(groups) = &self.groups {
            args.extend(["--curves".to_owned(), groups.clone()]);
        }
        args.push(match self.http {
            HttpVersion::Http11 => "--http1.1".to_owned(),
            HttpVersion::Http2 => "--http2".to_owned(),
            HttpVersion::Http3 => "--http3-only".to_owned(),
        });
        for (name, value) in &self.headers {
            args.extend(["--header".to_owned(), format!("{name}: {value}")]);
        }
        if let Some(body) = &self.body {
            args.extend([
                "--data-binary".to_owned(),
                format!("@{}", body.to_string_lossy()),
            ]);
        }
        args.push(format!("https://{}:{}{}", self.host, self.port, self.path));
        args
    }
}

/// One HTTP/1.1 request over `openssl s_client`, the client that keeps its
/// TLS session in a file and offers it on the next connection (to any
/// node): what resumption tests need, and curl cannot do across runs.
/// With `request.http` HTTP/2 it offers ALPN h2 and sends nothing of its
/// own: a connection that idles.
#[derive(Clone, Debug)]
pub struct SessionRequest {
    pub request: ClientRequest,
    /// Where the session (ticket) received is written.
    pub save: PathBuf,
    /// A session saved earlier, offered for resumption.
    pub resume: Option<PathBuf>,
}

impl SessionRequest {
    /// `openssl s_client`'s arguments; the request goes on standard input
    /// ([`Self::http_request`]).
    pub fn s_client_args(&self) -> Vec<String> {
        let request = &self.request;
        let address = match request.address {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => format!("[{v6}]"),
        };
        let mut args = [
            "s_client",
            "-connect",
            &format!("{address}:{}", request.port),
            "-servername",
            &request.host,
            "-CAfile",
            &request.ca.to_string_lossy(),
            "-verify_return_error",
            "-alpn",
            match request.http {
                HttpVersion::Http2 => "h2",
                HttpVersion::Http11 | HttpVersion::Http3 => "http/1.1",
            },
            // Read the answer to the end: the server closes after it.
            "-ign_eof",
            "-sess_out",
            &self.save.to_string_lossy(),
        ]
        .map(str::to_owned)
        .to_vec();
        if let Some(session) = &self.resume {
            args.extend([
                "-sess_in".to_owned(),
                session.to_string_lossy().into_owned(),
            ]);
        }
        if let Some((certificate, key)) = &request.certificate {
            args.extend([
                "-cert".to_owned(),
                certificate.to_string_lossy().into_owned(),
                "-key".to_owned(),
                key.to_string_lossy().into_owned(),
            ]);
        }
        match request.tls {
            TlsVersions::Default => {}
            TlsVersions::Only11 => args.push("-tls1_1".to_owned()),
            TlsVersions::Only12 => args.push("-tls1_2".to_owned()),
            TlsVersions::Only13 => args.push("-tls1_3".to_owned()),
        }
        args
    }

    /// The request written to the server once the handshake is done.
    pub fn http_request(&self) -> String {
        let mut text = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.request.path, self.request.host
        );
        for (name, value) in &self.request.headers {
            let _ = write!(text, "{name}: {value}\r\n");
        }
        text.push_str("\r\n");
        text
    }
}

/// What one [`SessionRequest`] got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionOutcome {
    /// The handshake resumed the offered session (no certificate check).
    pub resumed: bool,
    /// The HTTP status, when a response came back.
    pub status: Option<u16>,
    /// What s_client printed, for the messages of failed assertions.
    pub transcript: String,
}

/// Reads `openssl s_client`'s output: `Reused, TLSv1.3, …` or `New, …`
/// after the handshake, then the server's response. s_client writes the
/// response unbuffered and its own report buffered, so the response may
/// start in the middle of a report line.
pub fn session_outcome(stdout: &str) -> SessionOutcome {
    SessionOutcome {
        transcript: stdout.to_owned(),
        resumed: stdout.contains("Reused, TLS"),
        status: stdout
            .split_once("HTTP/1.1 ")
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .and_then(|code| code.parse().ok()),
    }
}

/// How a request ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientOutcome {
    /// An HTTP response came back.
    Response { status: u16, body: String },
    /// No response: the connection or the TLS handshake failed, or the
    /// server closed it. `curl_exit` is curl's reason code (35: TLS
    /// handshake, 56: closed while receiving, 7: no connection, 28: time-out).
    Failed { curl_exit: i32, message: String },
}

/// Reads curl's output.
pub fn outcome(exit: Option<i32>, stdout: &str, stderr: &str) -> ClientOutcome {
    match exit {
        Some(0) => {
            let (body, status) = stdout.rsplit_once('\n').unwrap_or(("", stdout));
            ClientOutcome::Response {
                status: status.trim().parse().unwrap_or(0),
                body: body.to_owned(),
            }
        }
        code => ClientOutcome::Failed {
            curl_exit: code.unwrap_or(-1),
            message: stderr.trim().to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The good app asking bank-a for /accounts.
    fn good_app() -> ClientRequest {
        ClientRequest::new(
            "api.bank-a.example",
            443,
            "192.0.2.10".parse().unwrap(),
            "ca.pem".into(),
        )
        .path("/accounts")
        .certificate("good.pem".into(), "good.key".into())
    }

    #[test]
    fn arguments_of_an_mtls_request() {
        let request = good_app().tls(TlsVersions::Only11).header("X-Test", "1");
        let args = request.curl_args();
        assert!(
            args.windows(2)
                .any(|w| w == ["--resolve", "api.bank-a.example:443:192.0.2.10"])
        );
        assert!(args.windows(2).any(|w| w == ["--cert", "good.pem"]));
        assert!(args.windows(2).any(|w| w == ["--tls-max", "1.1"]));
        assert_eq!(
            args.last().unwrap(),
            "https://api.bank-a.example:443/accounts"
        );
    }

    #[test]
    fn a_session_request_and_what_it_got() {
        let request = good_app();
        let session = SessionRequest {
            request,
            save: "new.session".into(),
            resume: Some("old.session".into()),
        };
        let args = session.s_client_args();
        assert!(args.windows(2).any(|w| w == ["-connect", "192.0.2.10:443"]));
        assert!(args.windows(2).any(|w| w == ["-sess_in", "old.session"]));
        assert!(args.windows(2).any(|w| w == ["-sess_out", "new.session"]));
        assert!(args.windows(2).any(|w| w == ["-cert", "good.pem"]));
        assert_eq!(
            session.http_request(),
            "GET /accounts HTTP/1.1\r\nHost: api.bank-a.example\r\nConnection: close\r\n\r\n"
        );
        let resumed = "---\nReused, TLSv1.3, Cipher is TLS_AES_256_GCM_SHA384\n---\n    0270 - f2 ac  ..HTTP/1.1 200 OK\r\n";
        let outcome = session_outcome(resumed);
        assert_eq!((outcome.resumed, outcome.status), (true, Some(200)));
        let outcome = session_outcome("---\nNew, TLSv1.3, Cipher is X\n");
        assert_eq!((outcome.resumed, outcome.status), (false, None));
    }

    #[test]
    fn outcomes() {
        assert_eq!(
            outcome(Some(0), "{\"ok\":1}\n200", ""),
            ClientOutcome::Response {
                status: 200,
                body: "{\"ok\":1}".into()
            }
        );
        assert_eq!(
            outcome(Some(35), "", "curl: (35) alert\n"),
            ClientOutcome::Failed {
                curl_exit: 35,
                message: "curl: (35) alert".into()
            }
        );
    }
}
