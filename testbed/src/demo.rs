//! The story `make demo` tells, until the appliance tells its own: the lab
//! of `examples/lab` with GoBGP standing in for the ixgate nodes.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use ixgate_testbed::client::{ClientOutcome, ClientRequest};
use ixgate_testbed::flood::{Flood, FloodKind, FloodRate};
use ixgate_testbed::routers::{Family, SessionState};
use ixgate_testbed::topology::{Role, Topology};
use ixgate_testbed::wait::{self, NotYet};
use ixgate_testbed::{Lab, LabError};

const DEADLINE: Duration = Duration::from_mins(1);
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
    let lab = Lab::start(topology)?;
    println!(
        "   up in {:.1} s, run directory {}",
        started.elapsed().as_secs_f64(),
        lab.run_dir().display()
    );
    show_nodes(&lab);
    sessions(&lab, started)?;
    anycast(&lab)?;
    flowspec(&lab)?;
    hidden_origin(&lab)?;
    flood(&lab)?;
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
            Role::Ixgate { node, .. } => format!("ixgate {node} (GoBGP stand-in)"),
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

fn flowspec(lab: &Lab) -> Result<(), LabError> {
    step("Flowspec: node-1 asks to discard TCP/443 toward 192.0.2.10");
    let asked = Instant::now();
    lab.router("node-1")?
        .cli(&ixgate_testbed::routers::STAND_IN_DISCARD_RULE)?;
    for telco in ["telco-a", "telco-b"] {
        let router = lab.router(telco)?;
        let rule = wait::until(DEADLINE, &format!("{telco} to hold the rule"), || {
            let rules = router
                .flow_routes(Family::Ipv4)
                .map_err(|e| NotYet::Pending(e.to_string()))?;
            rules
                .into_iter()
                .next()
                .ok_or_else(|| NotYet::Pending("no rule yet".into()))
        })?;
        let action = match rule.rate_bytes {
            Some(rate) if rate > 0.0 => format!("limit to {rate} bytes/s"),
            Some(_) => "discard".to_owned(),
            None => "no action".to_owned(),
        };
        println!(
            "   {telco} holds {} → {action}, {} ms after the ask",
            rule.text,
            asked.elapsed().as_millis()
        );
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

fn flood(lab: &Lab) -> Result<(), LabError> {
    step(
        "A bounded flood: 20 000 spoofed SYNs at 20 kpps from the attacker, through telco-a to node-1",
    );
    let target = std::net::Ipv4Addr::new(192, 0, 2, 10);
    let flood = Flood::new(
        FloodKind::Syn { port: 443 },
        target,
        20_000,
        Duration::from_secs(5),
    )
    .rate(FloodRate::PacketsPerSecond(20_000));
    let report = lab.flood("attacker", &flood)?;
    println!(
        "   {} packets sent in {:.2} s",
        report.packets_sent,
        report.elapsed.as_secs_f64()
    );
    Ok(())
}
