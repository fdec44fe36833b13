//! The story `make demo` tells: the lab of `examples/lab` with `ixgate run`
//! in both ixgate nodes, real BIRD and FRR telco routers, the banks'
//! origins, clients and an attacker.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use ixgate_testbed::client::{ClientOutcome, ClientRequest, HttpVersion};
use ixgate_testbed::example::BANK_A;
use ixgate_testbed::flood::{Flood, FloodKind, FloodRate};
use ixgate_testbed::routers::{Family, SessionState};
use ixgate_testbed::topology::{Role, Topology};
use ixgate_testbed::wait::{self, NotYet};
use ixgate_testbed::{Lab, LabError};

const DEADLINE: Duration = Duration::from_mins(1);

const FLOOD_TIME: Duration = Duration::from_secs(3);
const ANYCAST_V4: &str = "192.0.2.0/24";
const NODE_ADDRESSES: [&str; 4] = [
    "198.51.100.11",
    "198.51.100.12",
    "2001:db8:ff::11",
    "2001:db8:ff::12",
];

fn step(title: &str) {
    println!("\n== {title}");
}

fn ip(text: &str) -> IpAddr {
    text.parse()
        .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
}

/// Runs the story; the lab is gone when this returns, whatever happened.
pub fn run(topology: Topology) -> Result<(), LabError> {
    step("Building the lab: a namespace per node, inside a sandbox that dies with this process");
    let started = Instant::now();
    let lab = Lab::start(topology.with_appliances())?;
    println!(
        "   up in {:.1} s, run directory {}",
        started.elapsed().as_secs_f64(),
        lab.run_dir().display()
    );
    show_nodes(&lab);
    sessions(&lab, started)?;
    anycast(&lab)?;
    mutual_tls(&lab)?;
    hidden_origin(&lab)?;
    floods(&lab)?;
    drain(&lab)?;
    step("Tearing down: ending the sandbox ends every process and namespace of the lab");
    drop(lab);
    println!("   done; nothing is left running.");
    Ok(())
}

fn show_nodes(lab: &Lab) {
    for node in &lab.topology().nodes {
        let addresses: Vec<String> = node
            .interfaces
            .iter()
            .flat_map(|interface| interface.addresses.iter().map(ToString::to_string))
            .collect();
        let role = match &node.role {
            Role::Telco { software, telco } => format!("telco router ({software}) for {telco}"),
            Role::Ixgate { node, .. } => format!("ixgate {node} (ixgate run)"),
            Role::Transit => "transit router".into(),
            Role::Origin { service } => format!("origin of {service}"),
            Role::Client => "mobile client".into(),
            Role::Attacker => "attacker".into(),
        };
        println!("   {:<9} {:<36} {}", node.name, role, addresses.join(" "));
    }
}

fn sessions(lab: &Lab, started: Instant) -> Result<(), LabError> {
    step("BGP: each telco peers with both ixgate nodes (TCP-MD5 and GTSM toward telco-a)");
    for telco in ["telco-a", "telco-b"] {
        let router = lab.router(telco)?;
        for neighbor in NODE_ADDRESSES {
            wait::until(DEADLINE, &format!("{telco} ↔ {neighbor}"), || match router
                .session_state(ip(neighbor))
            {
                Ok(SessionState::Established) => Ok(()),
                Ok(state) => Err(NotYet::Pending(format!("{state:?}"))),
                Err(error) => Err(NotYet::Pending(error.to_string())),
            })?;
        }
        println!(
            "   {telco}: 4 sessions Established after {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

fn anycast(lab: &Lab) -> Result<(), LabError> {
    step(
        "Anycast: every telco hears 192.0.2.0/24 from both nodes; its paired node's path is shortest",
    );
    for telco in ["telco-a", "telco-b"] {
        let router = lab.router(telco)?;
        let heard = wait::until(DEADLINE, &format!("{telco} to hear both nodes"), || {
            let table = router
                .unicast_routes(Family::Ipv4)
                .map_err(|e| NotYet::Pending(e.to_string()))?;
            let heard: Vec<_> = table
                .into_iter()
                .filter(|r| r.prefix.to_string() == ANYCAST_V4)
                .collect();
            if heard.len() >= 2 {
                Ok(heard)
            } else {
                Err(NotYet::Pending(format!("{heard:?}")))
            }
        })?;
        for route in heard {
            let path: Vec<String> = route.as_path.iter().map(ToString::to_string).collect();
            println!(
                "   {telco} hears {} from {:<14} AS path {}",
                route.prefix,
                route.from,
                path.join(" ")
            );
        }
    }
    Ok(())
}

/// An app request from `client` to bank-a's service, as the app (with its
/// certificate) or without one.
fn app_request(lab: &Lab, with_certificate: bool) -> ClientRequest {
    let mut request = ixgate_testbed::example::bank_a_app(lab).path("/demo");
    if !with_certificate {
        request.certificate = None;
    }
    request
}

/// The transit address bank-a's origin saw the last request come from.
fn last_origin_peer(lab: &Lab) -> Result<String, LabError> {
    Ok(lab
        .origin_requests("origin-a")?
        .iter()
        .rev()
        .find(|request| request.path == "/demo")
        .map_or_else(|| "-".to_owned(), |request| request.peer.ip().to_string()))
}

fn mutual_tls(lab: &Lab) -> Result<(), LabError> {
    step("Mutual TLS: each client's request lands on the node paired with its telco");
    for (client, telco) in [("client-a", "telco-a"), ("client-b", "telco-b")] {
        let asked = Instant::now();
        let status = wait::until(
            DEADLINE,
            &format!("{client} to get an answer"),
            || match lab.request(client, &app_request(lab, true)) {
                Ok(ClientOutcome::Response { status, .. }) => Ok(status),
                other => Err(NotYet::Pending(format!("{other:?}"))),
            },
        )?;
        println!(
            "   {client} (behind {telco}) → 192.0.2.10: HTTP {status} in {} ms; the origin saw it from {} (that node's transit side)",
            asked.elapsed().as_millis(),
            last_origin_peer(lab)?
        );
    }
    match lab.request("client-a", &app_request(lab, false))? {
        ClientOutcome::Failed { message, .. } => {
            println!("   client-a without a certificate: refused at the handshake ({message})");
        }
        ClientOutcome::Response { status, .. } => {
            println!("   client-a without a certificate: UNEXPECTED answer {status}");
        }
    }
    // The same app over QUIC: bank-a's service address takes HTTP/3.
    let h3 = app_request(lab, true).http(HttpVersion::Http3);
    let asked = Instant::now();
    match lab.request("client-a", &h3)? {
        ClientOutcome::Response { status, .. } => println!(
            "   client-a over HTTP/3 (QUIC, the same mutual TLS): HTTP {status} in {} ms",
            asked.elapsed().as_millis()
        ),
        ClientOutcome::Failed { message, .. } => {
            println!("   client-a over HTTP/3: UNEXPECTED failure ({message})");
        }
    }
    Ok(())
}

fn hidden_origin(lab: &Lab) -> Result<(), LabError> {
    step("The hidden origin: reachable over transit, out of reach of the clients");
    let request = ClientRequest::new(
        "origin.bank-a.example",
        8443,
        ip("203.0.113.65"),
        lab.pki_dir().join("origin-ca.pem"),
    )
    .path("/demo")
    .header("X-Demo", "over transit");
    let answer = wait::until(DEADLINE, "origin-a to answer node-1", || {
        match lab.request("node-1", &request) {
            Ok(ClientOutcome::Response { status, body }) => Ok(format!("{status} {body}")),
            other => Err(NotYet::Pending(format!("{other:?}"))),
        }
    })?;
    println!("   node-1 → origin-a: {answer}");
    match lab.request("client-a", &request)? {
        ClientOutcome::Failed { message, .. } => {
            println!("   client-a → origin-a: refused ({message})");
        }
        ClientOutcome::Response { status, .. } => {
            println!("   client-a → origin-a: UNEXPECTED answer {status}");
        }
    }
    for logged in lab.origin_requests("origin-a")? {
        println!(
            "   origin-a logged {} {} from {} with x-demo: {}",
            logged.method,
            logged.path,
            logged.peer.ip(),
            logged.header("x-demo").unwrap_or("-")
        );
    }
    Ok(())
}

/// Whether `telco` holds a Flowspec rule for `protocol` to bank-a.
fn holds_rule(lab: &Lab, telco: &str, protocol: u8) -> Result<Option<String>, NotYet> {
    let rules = lab
        .router(telco)
        .map_err(|error| NotYet::Failed(error.to_string()))?
        .flow_routes(Family::Ipv4)
        .map_err(|error| NotYet::Pending(error.to_string()))?;
    Ok(rules
        .into_iter()
        .find(|rule| rule.protocol == Some(protocol))
        .map(|rule| rule.text))
}

fn floods(lab: &Lab) -> Result<(), LabError> {
    step(
        "Floods: spoofed SYNs to 443 and UDP to 53 from the attacker behind telco-a, 3 s each, at once",
    );
    let syn = Flood::new(FloodKind::Syn { port: 443 }, BANK_A, 60_000, FLOOD_TIME)
        .rate(FloodRate::PacketsPerSecond(20_000));
    let udp = Flood::new(
        FloodKind::Udp {
            port: 53,
            payload: 64,
        },
        BANK_A,
        90_000,
        FLOOD_TIME,
    )
    .rate(FloodRate::PacketsPerSecond(30_000));
    let stopped = std::thread::scope(|scope| -> Result<Instant, LabError> {
        let syn_flood = scope.spawn(|| lab.flood("attacker", &syn));
        let udp_flood = scope.spawn(|| lab.flood("attacker", &udp));
        let started = Instant::now();
        for (what, protocol) in [("SYN", 6), ("UDP", 17)] {
            for telco in ["telco-a", "telco-b"] {
                let rule = wait::until(FLOOD_TIME, &format!("{telco}: the {what} rule"), || {
                    holds_rule(lab, telco, protocol)?
                        .ok_or_else(|| NotYet::Pending("not yet".into()))
                })?;
                println!(
                    "   {:>5} ms  {telco} holds {rule} → discard ({what} flood)",
                    started.elapsed().as_millis()
                );
            }
        }
        let asked = Instant::now();
        match lab.request("client-a", &app_request(lab, true))? {
            ClientOutcome::Response { status, .. } => println!(
                "   during the floods client-a (verified before: in the trusted set) gets HTTP {status} in {} ms",
                asked.elapsed().as_millis()
            ),
            ClientOutcome::Failed { message, .. } => {
                println!("   during the floods client-a FAILED: {message}");
            }
        }
        for flood in [syn_flood, udp_flood] {
            let report = flood.join().map_err(|_| LabError::CommandFailed {
                command: "trafgen".into(),
                status: None,
                stderr: "the flood thread panicked".into(),
            })??;
            println!(
                "   flood over: {} packets in {:.1} s",
                report.packets_sent,
                report.elapsed.as_secs_f64()
            );
        }
        Ok(Instant::now())
    })?;
    for telco in ["telco-a", "telco-b"] {
        wait::until(DEADLINE, &format!("{telco}: the rules withdrawn"), || {
            let left = [6, 17]
                .iter()
                .filter_map(|protocol| holds_rule(lab, telco, *protocol).transpose())
                .count();
            if left == 0 {
                Ok(())
            } else {
                Err(NotYet::Pending(format!("{left} rules left")))
            }
        })?;
        println!(
            "   {telco}: rules withdrawn {:.1} s after the floods stopped (detector exit, then the 5 s hold-down)",
            stopped.elapsed().as_secs_f64()
        );
    }
    let decisions = lab.ctl("node-1", &["show", "mitigations"])?;
    for decision in decisions["decisions"].as_array().into_iter().flatten() {
        println!(
            "   node-1 decided {}: {}",
            decision["intent"].as_str().unwrap_or("-"),
            decision["reason"].as_str().unwrap_or("-")
        );
    }
    Ok(())
}

fn drain(lab: &Lab) -> Result<(), LabError> {
    step(
        "Drain: node-1 withdraws the anycast prefixes; telco-a sends client-a to node-2, whose replies go back through telco-a",
    );
    lab.ctl("node-1", &["drain"])?;
    let router = lab.router("telco-a")?;
    let via = wait::until(
        DEADLINE,
        "telco-a to hear 192.0.2.0/24 from node-2 only",
        || {
            let heard: Vec<_> = router
                .unicast_routes(Family::Ipv4)
                .map_err(|e| NotYet::Pending(e.to_string()))?
                .into_iter()
                .filter(|route| route.prefix.to_string() == ANYCAST_V4)
                .collect();
            match heard.as_slice() {
                [only] => Ok(only.from),
                _ => Err(NotYet::Pending(format!("{heard:?}"))),
            }
        },
    )?;
    println!("   telco-a hears {ANYCAST_V4} only from {via} (node-2)");
    match lab.request("client-a", &app_request(lab, true))? {
        ClientOutcome::Response { status, .. } => println!(
            "   client-a → 192.0.2.10: HTTP {status}; the origin saw it from {} (node-2)",
            last_origin_peer(lab)?
        ),
        ClientOutcome::Failed { message, .. } => {
            println!("   client-a → 192.0.2.10 while node-1 is drained: FAILED ({message})");
        }
    }
    lab.ctl("node-1", &["undrain"])?;
    println!("   node-1 undrained: it announces again");
    Ok(())
}
