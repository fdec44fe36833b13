//! The load generator of the proxy benchmark: app clients with a client
//! certificate (which h2load and wrk cannot present) making full or
//! resumed handshakes with one request each, keep-alive requests, or
//! holding idle connections; what they got is printed as JSON.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt as _, Empty};
use hyper::Request;
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::client::Resumption;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncBufReadExt as _;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::probe::percentile;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{what}: {message}")]
    Setup { what: String, message: String },
    #[error("tokio runtime: {0}")]
    Runtime(std::io::Error),
}

/// Whom the load goes to, and as which app.
#[derive(Clone, Debug)]
pub struct LoadTarget {
    pub address: SocketAddr,
    pub server_name: String,
    /// The CA of the proxy's server certificates.
    pub ca: PathBuf,
    pub certificate: PathBuf,
    pub key: PathBuf,
}

impl LoadTarget {
    /// `ixgate-testbed load`'s arguments for this target and `mode`.
    pub fn args(&self, mode: LoadMode) -> Vec<String> {
        let mut args = vec![
            "load".to_owned(),
            "--connect".to_owned(),
            self.address.to_string(),
            "--server-name".to_owned(),
            self.server_name.clone(),
        ];
        for (flag, path) in [
            ("--ca", &self.ca),
            ("--cert", &self.certificate),
            ("--key", &self.key),
        ] {
            args.extend([flag.to_owned(), path.to_string_lossy().into_owned()]);
        }
        let (kind, count, concurrency, duration) = match mode {
            LoadMode::Handshakes {
                count,
                concurrency,
                resume,
            } => (
                if resume { "resumed" } else { "full" },
                count,
                concurrency,
                Duration::ZERO,
            ),
            LoadMode::Requests {
                connections,
                duration,
            } => ("requests", 1, connections, duration),
            LoadMode::Idle { connections } => ("idle", connections, 1, Duration::ZERO),
            LoadMode::Paced { requests } => ("paced", requests, 1, Duration::ZERO),
        };
        args.extend([
            "--mode".to_owned(),
            kind.to_owned(),
            "--count".to_owned(),
            count.to_string(),
            "--concurrency".to_owned(),
            concurrency.to_string(),
            "--duration-ms".to_owned(),
            duration.as_millis().to_string(),
        ]);
        args
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadMode {
    /// `count` connections, `concurrency` at a time, each a handshake and
    /// one request; resumed from a session of an earlier one when `resume`.
    Handshakes {
        count: u64,
        concurrency: u64,
        resume: bool,
    },
    /// `connections` keep-alive connections sending requests back to back
    /// for `duration`.
    Requests {
        connections: u64,
        duration: Duration,
    },
    /// `connections` connections, each after one request held open until
    /// standard input closes; `ready` and the report are printed before.
    Idle { connections: u64 },
    /// `requests` requests on one keep-alive connection, each sent after
    /// a line on standard input, `answered STATUS` printed after each
    /// (`answered 0`: the connection failed), then held until standard
    /// input closes: whoever drives it looks at the proxy in between.
    /// Then it says close_notify and prints `closed: ` and what came back.
    Paced { requests: u64 },
}

/// What a load run got.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadReport {
    /// Requests answered 200.
    pub ok: u64,
    /// Connections or requests that failed, or answers other than 200
    /// (a 429 of a rate limit among them).
    pub failed: u64,
    /// Handshakes that resumed a session.
    pub resumed: u64,
    pub elapsed_s: f64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

type Body = Empty<Bytes>;
type AppTls = tokio_rustls::client::TlsStream<TcpStream>;
type AppConnection = hyper::client::conn::http1::Connection<TokioIo<AppTls>, Body>;

struct Client {
    target: LoadTarget,
    connector: TlsConnector,
    server_name: ServerName<'static>,
}

impl Client {
    fn new(target: LoadTarget, resume: bool) -> Result<Self, LoadError> {
        let setup = |what: &str| {
            let what = what.to_owned();
            move |error: &dyn std::fmt::Display| LoadError::Setup {
                what: what.clone(),
                message: error.to_string(),
            }
        };
        let mut roots = rustls::RootCertStore::empty();
        for ca in CertificateDer::pem_file_iter(&target.ca).map_err(|e| setup("CA")(&e))? {
            roots
                .add(ca.map_err(|e| setup("CA")(&e))?)
                .map_err(|e| setup("CA")(&e))?;
        }
        let chain = CertificateDer::pem_file_iter(&target.certificate)
            .map_err(|e| setup("certificate")(&e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| setup("certificate")(&e))?;
        let key = PrivateKeyDer::from_pem_file(&target.key).map_err(|e| setup("key")(&e))?;
        let mut config = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(|e| setup("client certificate")(&e))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        if !resume {
            config.resumption = Resumption::disabled();
        }
        let server_name = ServerName::try_from(target.server_name.clone())
            .map_err(|e| setup("server name")(&e))?;
        Ok(Self {
            target,
            connector: TlsConnector::from(Arc::new(config)),
            server_name,
        })
    }

    /// A new connection, its handshake done; whether it resumed.
    async fn connect(&self) -> Option<(SendRequest<Body>, bool)> {
        let (sender, connection, resumed) = self.open().await?;
        tokio::spawn(connection);
        Some((sender, resumed))
    }

    /// A new connection whose driver the caller runs; whether it resumed.
    async fn open(&self) -> Option<(SendRequest<Body>, AppConnection, bool)> {
        let tcp = TcpStream::connect(self.target.address).await.ok()?;
        let _ = tcp.set_nodelay(true);
        let tls = self
            .connector
            .connect(self.server_name.clone(), tcp)
            .await
            .ok()?;
        let resumed = tls.get_ref().1.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .ok()?;
        Some((sender, connection, resumed))
    }

    /// One GET: the answer's status, none when the connection failed.
    async fn get(&self, sender: &mut SendRequest<Body>) -> Option<u16> {
        let request = Request::get("/")
            .header(hyper::header::HOST, &self.target.server_name)
            .body(Empty::new())
            .ok()?;
        sender.ready().await.ok()?;
        let response = sender.send_request(request).await.ok()?;
        let status = response.status().as_u16();
        response.into_body().collect().await.ok()?;
        Some(status)
    }
}

/// Counts shared by the tasks of one run.
#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    failed: AtomicU64,
    resumed: AtomicU64,
}

impl Tally {
    /// One request's status (none: the connection failed).
    fn count(&self, status: Option<u16>) {
        let counter = if status == Some(200) {
            &self.ok
        } else {
            &self.failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn report(&self, elapsed: Duration, latencies: &[Duration]) -> LoadReport {
        let mut milliseconds: Vec<f64> = latencies
            .iter()
            .map(|latency| latency.as_secs_f64() * 1000.0)
            .collect();
        milliseconds.sort_by(f64::total_cmp);
        LoadReport {
            ok: self.ok.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            resumed: self.resumed.load(Ordering::Relaxed),
            elapsed_s: elapsed.as_secs_f64(),
            p50_ms: percentile(&milliseconds, 0.5),
            p99_ms: percentile(&milliseconds, 0.99),
        }
    }
}

/// Runs `mode` against `target` on a runtime of its own.
pub fn run(target: LoadTarget, mode: LoadMode) -> Result<LoadReport, LoadError> {
    let resume = matches!(mode, LoadMode::Handshakes { resume: true, .. });
    let client = Arc::new(Client::new(target, resume)?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(LoadError::Runtime)?;
    Ok(runtime.block_on(async move {
        match mode {
            LoadMode::Handshakes {
                count,
                concurrency,
                resume,
            } => handshakes(client, count, concurrency, resume).await,
            LoadMode::Requests {
                connections,
                duration,
            } => requests(client, connections, duration).await,
            LoadMode::Idle { connections } => idle(client, connections).await,
            LoadMode::Paced { requests } => paced(client, requests).await,
        }
    }))
}

async fn handshakes(client: Arc<Client>, count: u64, concurrency: u64, resume: bool) -> LoadReport {
    let tally = Arc::new(Tally::default());
    if resume {
        // One full handshake first: the session the others resume.
        if let Some((mut sender, _)) = client.connect().await {
            let _ = client.get(&mut sender).await;
        }
    }
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (client, tally, next) = (client.clone(), tally.clone(), next.clone());
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < count {
                let began = Instant::now();
                let status = match client.connect().await {
                    Some((mut sender, resumed)) => {
                        if resumed {
                            tally.resumed.fetch_add(1, Ordering::Relaxed);
                        }
                        client.get(&mut sender).await
                    }
                    None => None,
                };
                tally.count(status);
                latencies.push(began.elapsed());
            }
            latencies
        });
    }
    let latencies = tasks.join_all().await.concat();
    tally.report(started.elapsed(), &latencies)
}

/// Requests for `duration` from when every connection is up (a SYN lost
/// on the way would otherwise eat the time).
async fn requests(client: Arc<Client>, connections: u64, duration: Duration) -> LoadReport {
    let tally = Arc::new(Tally::default());
    let connections = connections.max(1);
    let all_up = Arc::new(tokio::sync::Barrier::new(
        usize::try_from(connections)
            .unwrap_or(usize::MAX)
            .saturating_add(1),
    ));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..connections {
        let (client, tally, all_up) = (client.clone(), tally.clone(), all_up.clone());
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            let connected = client.connect().await;
            all_up.wait().await;
            let Some((mut sender, _)) = connected else {
                tally.count(None);
                return latencies;
            };
            let deadline = Instant::now() + duration;
            while Instant::now() < deadline {
                let began = Instant::now();
                let status = client.get(&mut sender).await;
                tally.count(status);
                if status.is_none() {
                    break;
                }
                latencies.push(began.elapsed());
            }
            latencies
        });
    }
    all_up.wait().await;
    let started = Instant::now();
    let latencies = tasks.join_all().await.concat();
    tally.report(started.elapsed(), &latencies)
}

async fn idle(client: Arc<Client>, connections: u64) -> LoadReport {
    let tally = Tally::default();
    let started = Instant::now();
    let mut held = Vec::new();
    for _ in 0..connections {
        match client.connect().await {
            Some((mut sender, _)) => {
                tally.count(client.get(&mut sender).await);
                held.push(sender);
            }
            None => tally.count(None),
        }
    }
    let report = tally.report(started.elapsed(), &[]);
    println!(
        "ready {}",
        serde_json::to_string(&report).unwrap_or_default()
    );
    // Held until whoever measures closes our standard input.
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(_)) = lines.next_line().await {}
    drop(held);
    report
}

async fn paced(client: Arc<Client>, requests: u64) -> LoadReport {
    let tally = Tally::default();
    let started = Instant::now();
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let (mut sender, mut driver) = match client.open().await {
        Some((sender, connection, _)) => (
            Some(sender),
            Some(tokio::spawn(connection.without_shutdown())),
        ),
        None => (None, None),
    };
    for _ in 0..requests {
        if !matches!(lines.next_line().await, Ok(Some(_))) {
            break;
        }
        let status = match sender.as_mut() {
            Some(sender) => client.get(sender).await,
            None => None,
        };
        tally.count(status);
        println!("answered {}", status.unwrap_or(0));
        if status.is_none() {
            (sender, driver) = (None, None);
        }
    }
    // Held until standard input closes.
    while let Ok(Some(_)) = lines.next_line().await {}
    drop(sender);
    if let Some(driver) = driver
        && let Ok(Ok(parts)) = driver.await
    {
        println!("closed: {}", goodbye(parts.io.into_inner()).await);
    }
    tally.report(started.elapsed(), &[])
}

/// Says close_notify, closes TCP's sending side (RFC 8446 §6.1 lets the
/// other side go on) and reads what comes back: whether the proxy
/// answered with its own close_notify.
async fn goodbye(mut tls: AppTls) -> &'static str {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    tls.get_mut().1.send_close_notify();
    if tls.flush().await.is_err() || tls.get_mut().0.shutdown().await.is_err() {
        return "the app could not say close_notify";
    }
    let mut rest = Vec::new();
    match tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut rest)).await {
        Ok(Ok(_)) => "the proxy answered close_notify",
        Ok(Err(error)) if error.kind() == std::io::ErrorKind::UnexpectedEof => {
            "the proxy closed without close_notify"
        }
        Ok(Err(_)) => "the connection failed",
        Err(_) => "the proxy kept the connection open",
    }
}
