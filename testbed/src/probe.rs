//! A plain service and its probe, for what the firewall lets through: the
//! service answers every TCP connection with one line and echoes every
//! UDP datagram; the probe counts what got an answer and how fast. A TCP
//! probe sends one line and takes any bytes or an orderly close as the
//! answer, so the appliance's proxy (which answers a line that is no
//! ClientHello with an alert and a close) is probed the same way.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// What the service answers a TCP connection with.
const GREETING: &[u8] = b"ixgate-testbed\n";

/// Serves UDP, and TCP when `tcp`, on `listen` until the process is
/// killed; writes `ready` once the sockets are bound.
pub fn serve(listen: SocketAddr, ready: &Path, tcp: bool) -> std::io::Result<()> {
    let tcp = if tcp {
        Some(TcpListener::bind(listen)?)
    } else {
        None
    };
    let udp = UdpSocket::bind(listen)?;
    std::fs::write(ready, b"ready\n")?;
    let echo = move || {
        let mut buffer = [0_u8; 2048];
        while let Ok((length, from)) = udp.recv_from(&mut buffer) {
            let _ = udp.send_to(&buffer[..length], from);
        }
    };
    let Some(tcp) = tcp else {
        echo();
        return Ok(());
    };
    std::thread::spawn(echo);
    for stream in tcp.incoming() {
        let Ok(mut stream) = stream else { continue };
        let _ = stream.write_all(GREETING);
    }
    Ok(())
}

/// Which way to probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// Connect, send a line, read an answer.
    Tcp,
    /// Send a datagram, read the echo.
    Udp,
}

/// What a probe run saw.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProbeReport {
    pub attempts: u32,
    pub succeeded: u32,
    /// Of the attempts that succeeded, in milliseconds.
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

impl ProbeReport {
    pub fn success_rate(&self) -> f64 {
        if self.attempts == 0 {
            0.0
        } else {
            f64::from(self.succeeded) / f64::from(self.attempts)
        }
    }
}

/// `count` attempts at `target`, one every `interval`, each given
/// `timeout` to be answered.
pub fn probe(
    transport: Transport,
    target: SocketAddr,
    count: u32,
    interval: Duration,
    timeout: Duration,
) -> ProbeReport {
    let mut latencies = Vec::new();
    let mut next = Instant::now();
    for _ in 0..count {
        let started = Instant::now();
        let answered = match transport {
            Transport::Tcp => tcp_once(target, timeout),
            Transport::Udp => udp_once(target, timeout),
        };
        if answered.is_ok() {
            latencies.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        next += interval;
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    latencies.sort_by(f64::total_cmp);
    ProbeReport {
        attempts: count,
        succeeded: u32::try_from(latencies.len()).unwrap_or(u32::MAX),
        p50_ms: percentile(&latencies, 0.5),
        p99_ms: percentile(&latencies, 0.99),
    }
}

/// The `p` quantile (0 to 1) of `sorted` by nearest rank; none of nothing.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    // The index is within the slice by construction.
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted.get(rank - 1).copied()
}

fn tcp_once(target: SocketAddr, timeout: Duration) -> std::io::Result<()> {
    let started = Instant::now();
    let mut stream = TcpStream::connect_timeout(&target, timeout)?;
    let left = timeout
        .saturating_sub(started.elapsed())
        .max(Duration::from_millis(1));
    stream.set_read_timeout(Some(left))?;
    stream.write_all(b"probe\n")?;
    // The greeting, a TLS alert or a FIN: the service is there. A reset
    // (nothing listens behind the SYN proxy) or silence is no answer.
    let mut answer = [0_u8; GREETING.len()];
    stream.read(&mut answer).map(drop)
}

fn udp_once(target: SocketAddr, timeout: Duration) -> std::io::Result<()> {
    let local: SocketAddr = if target.is_ipv4() {
        "0.0.0.0:0".parse().map_err(std::io::Error::other)?
    } else {
        "[::]:0".parse().map_err(std::io::Error::other)?
    };
    let socket = UdpSocket::bind(local)?;
    socket.connect(target)?;
    socket.set_read_timeout(Some(timeout))?;
    socket.send(b"probe")?;
    let mut buffer = [0_u8; 16];
    let length = socket.recv(&mut buffer)?;
    if buffer.get(..length) == Some(b"probe".as_slice()) {
        Ok(())
    } else {
        Err(std::io::Error::other("not the echo"))
    }
}
