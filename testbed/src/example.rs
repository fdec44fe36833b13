//! The lab of `examples/lab` as tests and benchmarks use it: its topology
//! (`topologies/lab.toml`) with `ixgate run` in the ixgate nodes, and
//! bank-a's service on node-1 answering client-a through telco-a.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;

use crate::client::ClientRequest;
use crate::topology::Topology;
use crate::{Lab, LabError};

/// bank-a's anycast service address (examples/lab).
pub const BANK_A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
/// bank-b's service address (no HTTP/3 in the lab).
pub const BANK_B: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 20);

/// The topology of examples/lab, with `ixgate run` in the ixgate nodes.
pub fn topology() -> Result<Topology, LabError> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("topologies/lab.toml");
    Ok(Topology::load(&path)?.with_appliances())
}

/// The lab of examples/lab, running, with bank-a's service on node-1
/// answering client-a (behind telco-a) on TCP/443.
pub fn serving_client_a() -> Result<Lab, LabError> {
    serving(topology()?)
}

/// As [`serving_client_a`], with no telco withdrawing for a flood: for
/// measuring the firewall alone under floods that would otherwise move
/// the traffic to node-2 (`withdraw_above_pps` left out of the telcos'
/// files).
pub fn serving_client_a_without_flood_withdrawal() -> Result<Lab, LabError> {
    let mut topology = topology()?;
    let copy = std::env::temp_dir().join(format!("ixgate-lab-config-{}", std::process::id()));
    crate::lab::copy_config(&topology.config, &copy)?;
    let telcos = copy.join("telcos");
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| LabError::Io { path, source }
    };
    for entry in std::fs::read_dir(&telcos).map_err(io(&telcos))? {
        let path = entry.map_err(io(&telcos))?.path();
        let text = std::fs::read_to_string(&path).map_err(io(&path))?;
        let mut kept = String::new();
        for line in text.lines() {
            if !line.starts_with("withdraw_above_pps") {
                kept.push_str(line);
                kept.push('\n');
            }
        }
        std::fs::write(&path, kept).map_err(io(&path))?;
    }
    topology.config.clone_from(&copy);
    // The lab runs a copy of its own: this one is done with either way.
    let lab = serving(topology);
    let _ = std::fs::remove_dir_all(&copy);
    lab
}

fn serving(topology: Topology) -> Result<Lab, LabError> {
    let mut lab = Lab::start(topology)?;
    lab.start_anycast_service(
        "node-1",
        SocketAddr::new(IpAddr::V4(BANK_A), 443),
        "198.51.100.64/27",
        "198.51.100.1",
        "client-a",
    )?;
    Ok(lab)
}

/// A request to `host` at `address`, port 443, trusting ixgate's server
/// CA, with the test PKI's app certificate `client` (`bank-a-client-good`,
/// …) when given.
pub fn app_request(lab: &Lab, host: &str, address: IpAddr, client: Option<&str>) -> ClientRequest {
    let pki = lab.pki_dir();
    let request = ClientRequest::new(host, 443, address, pki.join("server-ca.pem"));
    match client {
        Some(stem) => request.certificate(
            pki.join(format!("{stem}.pem")),
            pki.join(format!("{stem}.key")),
        ),
        None => request,
    }
}

/// A request of bank-a's app (the test PKI's good client) to bank-a's
/// service.
pub fn bank_a_app(lab: &Lab) -> ClientRequest {
    app_request(
        lab,
        "api.bank-a.example",
        IpAddr::V4(BANK_A),
        Some("bank-a-client-good"),
    )
}
