//! ixgate's mTLS proxy against HAProxy 2.6 (Debian's, OpenSSL 3.0),
//! configured alike, side by side in one run. Prints figures and ratios;
//! asserts nothing.
//!
//! Both run in node-1 of the lab of examples/lab, each on a service
//! address of its own on node-1's loopback (ixgate: `ixgate proxy`, the
//! proxy alone, with node-1's configuration; HAProxy: the same
//! certificates, the bank's CAs and CRLs with `verify required`, the same
//! identity headers, re-encrypting to the same origin over transit with
//! the origin CA pinned, from the same transit source; both choose the
//! cipher suite in their own order, AES-128-GCM-SHA256 first). The load comes
//! from `ixgate-testbed load` in node-1 (app clients with a certificate,
//! which h2load and wrk cannot present). CPU is each proxy process's user
//! plus system time (/proc/PID/stat); memory is its resident set.
//!
//! Two rounds: one thread each (`[proxy] threads = 1`, HAProxy's
//! `nbthread 1`), where a proxy can have a core while the load generator
//! has the other, then two each, where all three share both cores.
//!
//! The per-certificate request rate is raised for this run, so that
//! ixgate's limit does not stop the keep-alive test; everything else is
//! node-1's configuration.
//!
//! For keep-alive it also prints the CPU per request of each proxy and of
//! the rest of the machine (load generator, origin, kernel, from
//! /proc/stat), and what ixgate's own cost would have to be for 1.5×
//! HAProxy's rate once the shared cores are saturated.
//!
//! Then HTTP/3 against HTTP/2 and HTTP/1.1, ixgate alone (Debian's HAProxy
//! has no QUIC): requests one after another on one connection, the
//! proxy's CPU per request and the time per request; HTTP/1.1 and HTTP/2
//! from curl, HTTP/3 from `ixgate-testbed h3`.
//!
//! `make bench` (or `cargo bench --bench proxy` after
//! `cargo build --release --workspace --bins`; `-- http3` for the HTTP/3
//! part alone).

// Counts and sizes here are far below 2^52.
#![allow(clippy::cast_precision_loss)]

use std::fmt::Write as _;
use std::io::{BufRead as _, BufReader};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use ixgate_testbed::client::HttpVersion;
use ixgate_testbed::h3::H3Run;
use ixgate_testbed::load::{LoadMode, LoadReport, LoadTarget};
use ixgate_testbed::wait::{self, NotYet};
use ixgate_testbed::{Lab, sibling_binary};
use ixgate_testbed::{cpu, example};

type Error = Box<dyn std::error::Error>;

const NODE: &str = "node-1";
const IXGATE_ADDRESS: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 30);
const HAPROXY_ADDRESS: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 31);
const SERVER_NAME: &str = "api.bank-a.example";
const APP: &str = "bank-a-client-good";
/// node-1's transit side (examples/lab/node-1).
const TRANSIT_SOURCE: &str = "203.0.113.11";
const TRANSIT_DEVICE: &str = "transit0";
const ORIGIN: &str = "203.0.113.65:8443";

const FULL_HANDSHAKES: u64 = 3_000;
const RESUMED_HANDSHAKES: u64 = 6_000;
const HANDSHAKE_CONCURRENCY: u64 = 8;
const KEEPALIVE_CONNECTIONS: u64 = 16;
const KEEPALIVE_TIME: Duration = Duration::from_secs(5);
/// Below ixgate's default of 256 connections per source.
const IDLE_CONNECTIONS: u64 = 200;
/// Requests per protocol, one after another on one connection.
const SEQUENTIAL_REQUESTS: u32 = 2_000;

/// One proxy under test.
struct Proxy {
    name: &'static str,
    address: Ipv4Addr,
    pid: u32,
    /// The process as started (a wrapper entering node-1), waited for
    /// once the proxy is stopped.
    child: Child,
}

fn main() -> Result<(), Error> {
    let lab = Lab::start(example::topology()?)?;
    for address in [IXGATE_ADDRESS, HAPROXY_ADDRESS] {
        lab.exec(
            NODE,
            "ip",
            &["addr", "add", &format!("{address}/32"), "dev", "lo"],
        )?;
    }
    if std::env::args().any(|arg| arg == "http3") {
        let proxies = start_both(&lab, 2)?;
        let measured = http3_against_http2(&lab, &proxies[0]);
        stop_both(proxies)?;
        return measured;
    }
    // One thread each (the proxy has a core while the load generator has
    // the other), then two each (all three share both cores).
    for threads in [1, 2] {
        let proxies = start_both(&lab, threads)?;
        compare(&lab, &proxies, threads)?;
        if threads == 2 {
            println!();
            http3_against_http2(&lab, &proxies[0])?;
        }
        stop_both(proxies)?;
        println!();
    }
    Ok(())
}

/// ixgate and HAProxy, `threads` threads each, answering.
fn start_both(lab: &Lab, threads: u32) -> Result<[Proxy; 2], Error> {
    let dir = lab.run_dir().join(format!("bench-proxy-{threads}"));
    std::fs::create_dir_all(&dir)?;
    let ixgate_config = ixgate_config(lab, &dir, threads)?;
    let ixgate = start(
        lab,
        "ixgate",
        IXGATE_ADDRESS,
        &sibling_binary("ixgate", "IXGATE_BIN")?.to_string_lossy(),
        &["proxy".into(), "--config".into(), ixgate_config],
        &dir,
    )?;
    let haproxy_config = haproxy_config(lab, &dir, threads)?;
    let haproxy = start(
        lab,
        "HAProxy 2.6",
        HAPROXY_ADDRESS,
        "haproxy",
        &["-db".into(), "-f".into(), haproxy_config],
        &dir,
    )?;
    Ok([ixgate, haproxy])
}

/// Stops both proxies (processes this benchmark started, by PID) and
/// waits until they are gone.
fn stop_both(proxies: [Proxy; 2]) -> Result<(), Error> {
    for mut proxy in proxies {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &proxy.pid.to_string()])
            .status()?;
        if !status.success() {
            return Err(format!("cannot stop {} ({})", proxy.name, proxy.pid).into());
        }
        proxy.child.wait()?;
    }
    Ok(())
}

/// The side-by-side table of ixgate and HAProxy with `threads` threads.
fn compare(lab: &Lab, proxies: &[Proxy; 2], threads: u32) -> Result<(), Error> {
    println!(
        "== mTLS proxies with {threads} thread(s) each, bank-a's service, node-1 (2 cores shared with the load generator)"
    );
    println!(
        "{:<44} {:>14} {:>14} {:>8}",
        "", proxies[0].name, proxies[1].name, "ratio"
    );
    let full = per_proxy(proxies, |proxy| {
        handshakes(lab, proxy, false, FULL_HANDSHAKES)
    })?;
    print_row(
        "full handshakes + 1 request / CPU-s",
        full.each_ref().map(|(report, cpu)| report.ok as f64 / cpu),
    );
    print_failures(proxies, &full);
    let resumed = per_proxy(proxies, |proxy| {
        handshakes(lab, proxy, true, RESUMED_HANDSHAKES)
    })?;
    print_row(
        "resumed handshakes + 1 request / CPU-s",
        resumed
            .each_ref()
            .map(|(report, cpu)| report.ok as f64 / cpu),
    );
    print_row(
        "  of them resumed (%)",
        resumed
            .each_ref()
            .map(|(report, _)| 100.0 * report.resumed as f64 / report.ok.max(1) as f64),
    );
    print_failures(proxies, &resumed);
    // The whole machine's CPU during each run, to tell what the rest of
    // it (load generator, origin, kernel) costs per request.
    let machine = std::cell::RefCell::new(Vec::new());
    let keepalive = per_proxy(proxies, |proxy| {
        let before = cpu::machine()?.busy();
        let report = keepalive_requests(lab, proxy)?;
        machine.borrow_mut().push(cpu::machine()?.busy() - before);
        Ok(report)
    })?;
    print_row(
        &format!("keep-alive requests/s ({KEEPALIVE_CONNECTIONS} connections)"),
        keepalive
            .each_ref()
            .map(|(report, _)| report.ok as f64 / report.elapsed_s),
    );
    print_row(
        "  p99 latency (ms)",
        keepalive
            .each_ref()
            .map(|(report, _)| report.p99_ms.unwrap_or(f64::NAN)),
    );
    print_row(
        "  requests / CPU-s",
        keepalive
            .each_ref()
            .map(|(report, cpu)| report.ok as f64 / cpu),
    );
    print_failures(proxies, &keepalive);
    print_keepalive_costs(&keepalive, &machine.into_inner());
    let memory = [
        idle_memory(lab, &proxies[0])?,
        idle_memory(lab, &proxies[1])?,
    ];
    print_row(
        &format!("memory per idle mTLS connection (KiB, {IDLE_CONNECTIONS})"),
        memory,
    );
    println!();
    println!(
        "ratio: ixgate / HAProxy (higher is better for rates, lower for latency and memory). \
         Targets: full ≥ 4, resumed ≥ 5, keep-alive ≥ 1.5 with p99 no worse, memory ≤ 0.6."
    );
    Ok(())
}

/// What HTTP/3 costs per request against HTTP/2 (and HTTP/1.1).
fn http3_against_http2(lab: &Lab, ixgate: &Proxy) -> Result<(), Error> {
    println!(
        "== ixgate, {SEQUENTIAL_REQUESTS} requests one after another on one mTLS connection \
         (node-1, the client on the same 2 cores)"
    );
    println!(
        "{:<10} {:>10} {:>20} {:>18}",
        "", "answered", "proxy CPU µs/request", "wall ms/request"
    );
    let mut rows = Vec::new();
    for http in [HttpVersion::Http11, HttpVersion::Http2, HttpVersion::Http3] {
        let before = cpu::process(ixgate.pid)?;
        let started = std::time::Instant::now();
        let answered = sequential(lab, ixgate, http)?;
        let wall = started.elapsed().as_secs_f64();
        let spent = cpu::process(ixgate.pid)? - before;
        let per = f64::from(answered.max(1));
        let row = (1e6 * spent / per, 1e3 * wall / per);
        println!(
            "{:<10} {answered:>10} {:>20.1} {:>18.3}",
            format!("{http:?}"),
            row.0,
            row.1
        );
        rows.push(row);
    }
    if let [_, h2, h3] = rows.as_slice() {
        println!(
            "HTTP/3 / HTTP/2: proxy CPU per request {:.2}, time per request {:.2} \
             (CPU from /proc in 10 ms ticks)",
            h3.0 / h2.0,
            h3.1 / h2.1
        );
    }
    Ok(())
}

/// `SEQUENTIAL_REQUESTS` requests on one connection; how many were
/// answered 200.
fn sequential(lab: &Lab, ixgate: &Proxy, http: HttpVersion) -> Result<u32, Error> {
    let request = example::app_request(lab, SERVER_NAME, IpAddr::V4(ixgate.address), Some(APP))
        .http(http)
        .timeout(Duration::from_mins(2));
    if http == HttpVersion::Http3 {
        let run = H3Run {
            request,
            count: SEQUENTIAL_REQUESTS,
            move_to: None,
            stall: None,
        };
        let report = lab.h3(NODE, &run)?;
        if let Some(error) = report.error {
            return Err(format!("HTTP/3: {error}").into());
        }
        return Ok(u32::try_from(
            report
                .responses
                .iter()
                .filter(|response| response.status == 200)
                .count(),
        )?);
    }
    // curl takes the URLs one after another on one connection.
    let mut args = request.curl_args();
    let url = args.pop().ok_or("no URL")?;
    // Each status on a line of its own, whatever the bodies end with.
    args.extend(["--write-out".to_owned(), "\n%{http_code}\n".to_owned()]);
    for _ in 0..SEQUENTIAL_REQUESTS {
        args.push(url.clone());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = lab.exec(NODE, "curl", &args)?;
    let text = String::from_utf8_lossy(&output.stdout);
    Ok(u32::try_from(
        text.lines().filter(|line| *line == "200").count(),
    )?)
}

/// Node-1's configuration as the lab runs it, with ixgate's address for
/// this run, the per-certificate rate raised and `threads` proxy threads;
/// returns node-1's dir.
fn ixgate_config(lab: &Lab, dir: &Path, threads: u32) -> Result<String, Error> {
    let copy = dir.join("ixgate-config");
    let status = std::process::Command::new("cp")
        .arg("-r")
        .arg(lab.run_dir().join("config"))
        .arg(&copy)
        .status()?;
    if !status.success() {
        return Err("cannot copy the lab's configuration".into());
    }
    let node_file = copy.join(NODE).join("ixgate.toml");
    let text = std::fs::read_to_string(&node_file)?;
    let mut changed = String::new();
    let mut replaced = 0;
    for line in text.lines() {
        if line.starts_with("service_ips = ") {
            let _ = writeln!(changed, "service_ips = [\"{IXGATE_ADDRESS}\"]");
            replaced += 1;
        } else if line.starts_with("addresses = ") {
            // HTTP/3 on ixgate's address of this run.
            let _ = writeln!(changed, "addresses = [\"{IXGATE_ADDRESS}\"]");
        } else if line.starts_with("requests_per_second_per_certificate = ") {
            changed.push_str("requests_per_second_per_certificate = 1000000\n");
            replaced += 1;
        } else {
            changed.push_str(line);
            changed.push('\n');
        }
    }
    if replaced != 2 {
        return Err(format!(
            "{} changed: service_ips or the rate not found",
            node_file.display()
        )
        .into());
    }
    let _ = write!(changed, "\n[proxy]\nthreads = {threads}\n");
    std::fs::write(&node_file, changed)?;
    Ok(copy.join(NODE).to_string_lossy().into_owned())
}

/// HAProxy configured as node-1's ixgate: per-SNI certificates with each
/// bank's CAs and CRLs (verify required, TLS 1.2 and 1.3), identity
/// headers (it has no SAN fetch), re-encryption to the origin with its CA
/// pinned and its name, from the transit source and device, pooled.
fn haproxy_config(lab: &Lab, dir: &Path, threads: u32) -> Result<String, Error> {
    let pki = lab.pki_dir();
    let pki = pki.to_string_lossy();
    let mut crt_list = String::new();
    for bank in ["bank-a", "bank-b"] {
        let combined = dir.join(format!("{bank}-server.pem"));
        let certificate = std::fs::read_to_string(format!("{pki}/{bank}-server.pem"))?;
        let key = std::fs::read_to_string(format!("{pki}/{bank}-server.key"))?;
        std::fs::write(&combined, format!("{certificate}{key}"))?;
        let _ = writeln!(
            crt_list,
            "{} [verify required ca-file {pki}/{bank}-app-ca.pem crl-file {pki}/{bank}.crl-chain.pem \
             ssl-min-ver TLSv1.2 alpn h2,http/1.1] api.{bank}.example",
            combined.display()
        );
    }
    let crt_list_path = dir.join("crt-list.txt");
    std::fs::write(&crt_list_path, crt_list)?;
    let backend = |bank: &str, origin: &str| {
        format!(
            "backend {bank}\n    http-reuse always\n    \
             server origin {origin} ssl verify required ca-file {pki}/origin-ca.pem \
             sni str(origin.{bank}.example) alpn h2,http/1.1 \
             source {TRANSIT_SOURCE} interface {TRANSIT_DEVICE}\n"
        )
    };
    let config = format!(
        "global\n    nbthread {threads}\n    maxconn 5000\n    tune.ssl.cachesize 20000\n    \
         ssl-default-bind-ciphersuites \
         TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384\n    \
         ssl-default-bind-ciphers \
         ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES256-GCM-SHA384\n\n\
         defaults\n    mode http\n    timeout connect 5s\n    timeout client 60s\n    \
         timeout server 30s\n    timeout http-request 10s\n    timeout http-keep-alive 60s\n\n\
         frontend apps\n    bind {HAPROXY_ADDRESS}:443 ssl crt-list {} strict-sni\n    \
         http-request del-header client-cert\n    \
         http-request del-header x-client-cert-subject\n    \
         http-request del-header x-client-cert-serial\n    \
         http-request del-header x-client-cert-sha256\n    \
         http-request set-header Client-Cert :%[ssl_c_der,base64]:\n    \
         http-request set-header X-Client-Cert-Subject %{{+Q}}[ssl_c_s_dn]\n    \
         http-request set-header X-Client-Cert-Serial %[ssl_c_serial,hex]\n    \
         http-request set-header X-Client-Cert-Sha256 %[ssl_c_der,digest(sha256),hex]\n    \
         http-request set-header X-Forwarded-For %[src]\n    \
         http-request set-header X-Forwarded-Proto https\n    \
         use_backend bank-b if {{ ssl_fc_sni -i api.bank-b.example }}\n    \
         default_backend bank-a\n\n{}\n{}",
        crt_list_path.display(),
        backend("bank-a", ORIGIN),
        backend("bank-b", "203.0.113.66:8443"),
    );
    let path = dir.join("haproxy.cfg");
    std::fs::write(&path, config)?;
    Ok(path.to_string_lossy().into_owned())
}

/// Starts `program ARGS` in node-1 and waits until an app gets an answer
/// through it.
fn start(
    lab: &Lab,
    name: &'static str,
    address: Ipv4Addr,
    program: &str,
    args: &[String],
    dir: &Path,
) -> Result<Proxy, Error> {
    let log_path = dir.join(format!("{}.log", name.replace(' ', "-")));
    let log = std::fs::File::create(&log_path)?;
    let with_log = |error: ixgate_testbed::LabError| -> Error {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        format!("{error}; its log:\n{log}").into()
    };
    let child = lab
        .command(NODE, program)?
        .args(args)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()?;
    let marker = args.last().cloned().unwrap_or_default();
    let binary = Path::new(program)
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let pid = wait::until(Duration::from_secs(10), &format!("{name} to run"), || {
        pid_of(&binary, &marker).ok_or_else(|| NotYet::Pending("not yet".into()))
    })
    .map_err(with_log)?;
    let proxy = Proxy {
        name,
        address,
        pid,
        child,
    };
    let one = LoadMode::Handshakes {
        count: 1,
        concurrency: 1,
        resume: false,
    };
    wait::until(
        Duration::from_secs(20),
        &format!("{name} to answer"),
        || match lab.load(NODE, &app(lab, &proxy), one) {
            Ok(report) if report.ok == 1 => Ok(()),
            Ok(report) => Err(NotYet::Pending(format!("{report:?}"))),
            Err(error) => Err(NotYet::Pending(error.to_string())),
        },
    )
    .map_err(with_log)?;
    Ok(proxy)
}

/// The process whose program is `binary` and whose arguments end with
/// `marker` (a path of this run), found in /proc.
fn pid_of(binary: &str, marker: &str) -> Option<u32> {
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let args: Vec<&[u8]> = cmdline
                .split(|&b| b == 0)
                .filter(|a| !a.is_empty())
                .collect();
            let program = Path::new(std::str::from_utf8(args.first()?).ok()?).file_name()?;
            let last = std::str::from_utf8(args.last()?).ok()?;
            (program == binary && last == marker).then_some(pid)
        })
}

/// What the rest of the machine (load generator, origin, kernel) costs
/// per keep-alive request, and so what a proxy's own cost would have to
/// be for 1.5× HAProxy's requests/s once the shared cores are saturated:
/// there each request costs the proxy's CPU plus the rest's.
fn print_keepalive_costs(keepalive: &[(LoadReport, f64); 2], machine: &[f64]) {
    let per_request = |seconds: f64, report: &LoadReport| 1e6 * seconds / report.ok.max(1) as f64;
    let rest: Vec<f64> = keepalive
        .iter()
        .zip(machine)
        .map(|((report, proxy_cpu), busy)| per_request(busy - proxy_cpu, report))
        .collect();
    let rest = rest.iter().sum::<f64>() / rest.len().max(1) as f64;
    let [(ixgate, ixgate_cpu), (haproxy, haproxy_cpu)] = keepalive;
    let ixgate = per_request(*ixgate_cpu, ixgate);
    let haproxy = per_request(*haproxy_cpu, haproxy);
    println!(
        "  CPU µs per request: ixgate {ixgate:.1}, HAProxy {haproxy:.1}, the rest of the machine \
         {rest:.1}; 1.5× HAProxy with the cores saturated needs ixgate at {:.1}",
        (haproxy + rest) / 1.5 - rest
    );
}

/// Resident memory of `pid`, KiB.
fn rss_kib(pid: u32) -> Result<f64, Error> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .ok_or("no VmRSS")?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .ok_or("no VmRSS value")?
        .parse()?)
}

/// The app client of this benchmark, toward `proxy`.
fn app(lab: &Lab, proxy: &Proxy) -> LoadTarget {
    let pki = lab.pki_dir();
    LoadTarget {
        address: SocketAddr::new(IpAddr::V4(proxy.address), 443),
        server_name: SERVER_NAME.to_owned(),
        ca: pki.join("server-ca.pem"),
        certificate: pki.join(format!("{APP}.pem")),
        key: pki.join(format!("{APP}.key")),
    }
}

/// Runs `measure` on each proxy: its report and the proxy's CPU seconds.
fn per_proxy(
    proxies: &[Proxy; 2],
    measure: impl Fn(&Proxy) -> Result<LoadReport, Error>,
) -> Result<[(LoadReport, f64); 2], Error> {
    let mut results = Vec::new();
    for proxy in proxies {
        let before = cpu::process(proxy.pid)?;
        let report = measure(proxy)?;
        let spent = (cpu::process(proxy.pid)? - before).max(cpu::tick_seconds()?);
        results.push((report, spent));
    }
    let second = results.pop().ok_or("no result")?;
    let first = results.pop().ok_or("no result")?;
    Ok([first, second])
}

fn handshakes(lab: &Lab, proxy: &Proxy, resume: bool, count: u64) -> Result<LoadReport, Error> {
    let mode = LoadMode::Handshakes {
        count,
        concurrency: HANDSHAKE_CONCURRENCY,
        resume,
    };
    Ok(lab.load(NODE, &app(lab, proxy), mode)?)
}

fn keepalive_requests(lab: &Lab, proxy: &Proxy) -> Result<LoadReport, Error> {
    let mode = LoadMode::Requests {
        connections: KEEPALIVE_CONNECTIONS,
        duration: KEEPALIVE_TIME,
    };
    Ok(lab.load(NODE, &app(lab, proxy), mode)?)
}

/// Resident memory each idle connection adds (one request done on each,
/// then held), KiB.
fn idle_memory(lab: &Lab, proxy: &Proxy) -> Result<f64, Error> {
    let before = rss_kib(proxy.pid)?;
    let idle = LoadMode::Idle {
        connections: IDLE_CONNECTIONS,
    };
    let mut holder = lab
        .load_command(NODE, &app(lab, proxy), idle)?
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut stdout = BufReader::new(holder.stdout.take().ok_or("no stdout")?);
    let mut ready = String::new();
    stdout.read_line(&mut ready)?;
    let report: LoadReport = serde_json::from_str(ready.trim_start_matches("ready ").trim())?;
    let held = rss_kib(proxy.pid)?;
    drop(holder.stdin.take());
    // Read to the end: the holder prints its report again as it goes.
    std::io::Read::read_to_string(&mut stdout, &mut String::new())?;
    holder.wait()?;
    if report.ok != IDLE_CONNECTIONS {
        return Err(format!(
            "{}: {report:?} of {IDLE_CONNECTIONS} idle connections",
            proxy.name
        )
        .into());
    }
    Ok((held - before) / IDLE_CONNECTIONS as f64)
}

fn print_row(label: &str, values: [f64; 2]) {
    let ratio = if values[1] > 0.0 {
        values[0] / values[1]
    } else {
        f64::NAN
    };
    println!(
        "{label:<44} {:>14.1} {:>14.1} {:>8.2}",
        values[0], values[1], ratio
    );
}

fn print_failures(proxies: &[Proxy; 2], results: &[(LoadReport, f64); 2]) {
    for (proxy, (report, _)) in proxies.iter().zip(results) {
        if report.failed > 0 {
            println!("  ({}: {} failed)", proxy.name, report.failed);
        }
    }
}
