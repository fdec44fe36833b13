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

/// The topology of examples/lab, with `ixgate run` in the ixgate nodes.
pub fn topology() -> Result<Topology, LabError> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("topologies/lab.toml");
    Ok(Topology::load(&path)?.with_appliances())
}

/// The lab of examples/lab, running, with bank-a's service on node-1
/// answering client-a (behind telco-a) on TCP/443.
pub fn serving_client_a() -> Result<Lab, LabError> {
    let mut lab = Lab::start(topology()?)?;
    lab.start_anycast_service(
        "node-1",
        SocketAddr::new(IpAddr::V4(BANK_A), 443),
        "198.51.100.64/27",
        "198.51.100.1",
        "client-a",
    )?;
    Ok(lab)
}

/// A request of bank-a's app (the test PKI's good client) to bank-a's
/// service.
pub fn bank_a_app(lab: &Lab) -> ClientRequest {
    let pki = lab.pki_dir();
    ClientRequest::new(
        "api.bank-a.example",
        443,
        IpAddr::V4(BANK_A),
        pki.join("server-ca.pem"),
    )
    .certificate(
        pki.join("bank-a-client-good.pem"),
        pki.join("bank-a-client-good.key"),
    )
}
