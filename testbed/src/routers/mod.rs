//! Telco routers (BIRD 2, FRR, GoBGP) and the GoBGP stand-in for an ixgate
//! node: configuration written from the policy files, and typed queries of
//! what each router holds.

mod bird;
mod frr;
mod gobgp;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::Child;

use ipnet::IpNet;
use ixgate_policy::types::{Community, LargeCommunity};
use serde::Serialize;

use crate::LabError;
use crate::sandbox::SandboxHandle;
use crate::topology::RouterSoftware;

/// `gobgp` arguments for the stand-in's example Flowspec rule: discard
/// TCP/443 to 192.0.2.10.
pub const STAND_IN_DISCARD_RULE: [&str; 14] = [
    "global",
    "rib",
    "-a",
    "ipv4-flowspec",
    "add",
    "match",
    "destination",
    "192.0.2.10/32",
    "protocol",
    "tcp",
    "destination-port",
    "==443",
    "then",
    "discard",
];

/// One BGP neighbour as a router's configuration sees it.
#[derive(Clone, Debug)]
pub struct Neighbor {
    /// A name for the session (a node or telco name plus the family).
    pub name: String,
    pub address: IpAddr,
    pub local: IpAddr,
    pub asn: u32,
    pub password: Option<String>,
    pub gtsm: bool,
    pub hold_time: u16,
    /// Carry Flowspec for the session's family.
    pub flowspec: bool,
    /// Routes from this neighbour with one of these become blackholes.
    pub rtbh_communities: Vec<Community>,
    /// What we attach when announcing to this neighbour.
    pub prepends: u8,
    pub communities: Vec<Community>,
    pub large_communities: Vec<LargeCommunity>,
}

/// Everything a router is configured with.
#[derive(Clone, Debug)]
pub struct RouterSetup {
    pub node: String,
    pub asn: u32,
    pub router_id: Ipv4Addr,
    pub neighbors: Vec<Neighbor>,
    /// Prefixes this router originates (the stand-in's anycast prefixes).
    pub originate: Vec<IpNet>,
    /// A telco's customer networks (its links to clients and attackers),
    /// announced to the ixgate nodes: the way back to the customers.
    pub customers: Vec<Customer>,
}

/// One customer network of a telco router, on one of its interfaces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Customer {
    pub interface: String,
    pub network: IpNet,
}

/// RFC 4271 §8.2.2 session states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum SessionState {
    Idle,
    Connect,
    Active,
    OpenSent,
    OpenConfirm,
    Established,
}

impl SessionState {
    fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "idle" => Some(Self::Idle),
            "connect" => Some(Self::Connect),
            "active" => Some(Self::Active),
            "opensent" => Some(Self::OpenSent),
            "openconfirm" => Some(Self::OpenConfirm),
            "established" => Some(Self::Established),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Ipv4,
    Ipv6,
}

/// A unicast route as a router holds it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct UnicastRoute {
    pub prefix: IpNet,
    /// The neighbour it was learned from.
    pub from: IpAddr,
    pub as_path: Vec<u32>,
    pub communities: Vec<Community>,
    pub large_communities: Vec<LargeCommunity>,
}

/// A Flowspec rule as a router holds it, normalised across routers.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct FlowRoute {
    pub from: Option<IpAddr>,
    pub destination: Option<IpNet>,
    pub source: Option<IpNet>,
    /// IP protocol (IPv4) or next header (IPv6), when matched for equality.
    pub protocol: Option<u8>,
    /// Destination port, when matched for equality.
    pub destination_port: Option<u16>,
    /// RFC 8955 §7.3 traffic-rate-bytes; 0 means discard.
    pub rate_bytes: Option<f32>,
    /// The router's own text of the rule, for messages.
    pub text: String,
}

impl FlowRoute {
    /// The route [`STAND_IN_DISCARD_RULE`] becomes in a router's table.
    #[must_use]
    pub fn stand_in_discard() -> Self {
        Self {
            destination: Some(IpNet::from(ipnet::Ipv4Net::from(Ipv4Addr::new(
                192, 0, 2, 10,
            )))),
            protocol: Some(6),
            destination_port: Some(443),
            rate_bytes: Some(0.0),
            ..Self::default()
        }
    }

    /// Whether this route is `expected`: the same match and rate, and
    /// the same neighbour when `expected` names one. (The router's text
    /// differs between routers, so it is not compared.)
    #[must_use]
    pub fn matches(&self, expected: &FlowRoute) -> bool {
        self.destination == expected.destination
            && self.protocol == expected.protocol
            && self.destination_port == expected.destination_port
            && self.rate_bytes == expected.rate_bytes
            && (expected.from.is_none() || self.from == expected.from)
    }
}

/// A running router and how to ask it things.
#[derive(Debug)]
pub struct Router {
    pub node: String,
    pub software: RouterSoftware,
    sandbox: SandboxHandle,
    run_dir: PathBuf,
    /// The session name of each neighbour (BIRD answers by protocol name).
    sessions: BTreeMap<IpAddr, String>,
}

impl Router {
    /// Writes the configuration and starts the router in its namespace.
    /// Returns the router and the processes to keep (and reap) for it.
    pub fn start(
        software: RouterSoftware,
        setup: &RouterSetup,
        sandbox: &SandboxHandle,
        run_dir: &Path,
    ) -> Result<(Self, Vec<Child>), LabError> {
        std::fs::create_dir_all(run_dir).map_err(|source| LabError::Io {
            path: run_dir.to_owned(),
            source,
        })?;
        let children = match software {
            RouterSoftware::Bird => bird::start(setup, sandbox, run_dir)?,
            RouterSoftware::Frr => frr::start(setup, sandbox, run_dir)?,
            RouterSoftware::Gobgp => gobgp::start(setup, sandbox, run_dir)?,
        };
        let router = Self {
            node: setup.node.clone(),
            software,
            sandbox: sandbox.clone(),
            run_dir: run_dir.to_owned(),
            sessions: setup
                .neighbors
                .iter()
                .map(|n| (n.address, n.name.clone()))
                .collect(),
        };
        Ok((router, children))
    }

    /// Runs the router's own command-line client with `args`.
    pub fn cli(&self, args: &[&str]) -> Result<String, LabError> {
        let command = match self.software {
            RouterSoftware::Bird => bird::cli(&self.sandbox, &self.node, &self.run_dir, args),
            RouterSoftware::Frr => frr::cli(&self.sandbox, &self.node, &self.run_dir, args),
            RouterSoftware::Gobgp => gobgp::cli(&self.sandbox, &self.node, args),
        };
        let output = SandboxHandle::run(command)?;
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    pub fn session_state(&self, neighbor: IpAddr) -> Result<SessionState, LabError> {
        match self.software {
            RouterSoftware::Bird => {
                let name = self
                    .sessions
                    .get(&neighbor)
                    .ok_or_else(|| LabError::Router {
                        router: self.node.clone(),
                        message: format!("no session with {neighbor}"),
                    })?;
                bird::session_state(&self.cli(&["show", "protocols", "all", name])?)
            }
            RouterSoftware::Frr => {
                frr::session_state(&self.cli(&["show bgp neighbors json"])?, neighbor)
            }
            RouterSoftware::Gobgp => {
                gobgp::session_state(&self.cli(&["neighbor", "-j"])?, neighbor)
            }
        }
        .map_err(|message| self.error(message))
    }

    pub fn unicast_routes(&self, family: Family) -> Result<Vec<UnicastRoute>, LabError> {
        match self.software {
            RouterSoftware::Bird => {
                let table = match family {
                    Family::Ipv4 => "master4",
                    Family::Ipv6 => "master6",
                };
                Ok(bird::unicast_routes(
                    &self.cli(&["show", "route", "all", "table", table])?,
                    &self.sessions,
                ))
            }
            RouterSoftware::Frr => {
                let afi = frr::afi(family);
                let summary = self.cli(&[&format!("show bgp {afi} unicast json")])?;
                let mut routes = Vec::new();
                for prefix in frr::prefixes(&summary).map_err(|m| self.error(m))? {
                    let detail = self.cli(&[&format!("show bgp {afi} unicast {prefix} json")])?;
                    routes.extend(frr::unicast_routes(&detail).map_err(|m| self.error(m))?);
                }
                Ok(routes)
            }
            RouterSoftware::Gobgp => gobgp::unicast_routes(&self.cli(&[
                "global",
                "rib",
                "-a",
                gobgp::family(family),
                "-j",
            ])?),
        }
        .map_err(|message| self.error(message))
    }

    pub fn flow_routes(&self, family: Family) -> Result<Vec<FlowRoute>, LabError> {
        match self.software {
            RouterSoftware::Bird => {
                let table = match family {
                    Family::Ipv4 => "flowtab4",
                    Family::Ipv6 => "flowtab6",
                };
                Ok(bird::flow_routes(
                    &self.cli(&["show", "route", "all", "table", table])?,
                    &self.sessions,
                ))
            }
            RouterSoftware::Frr => {
                let afi = frr::afi(family);
                frr::flow_routes(
                    &self.cli(&[&format!("show bgp {afi} flowspec json")])?,
                    &self.cli(&[&format!("show bgp {afi} flowspec detail json")])?,
                )
            }
            RouterSoftware::Gobgp => gobgp::flow_routes(&self.cli(&[
                "global",
                "rib",
                "-a",
                &format!("{}-flowspec", gobgp::family(family)),
                "-j",
            ])?),
        }
        .map_err(|message| self.error(message))
    }

    fn error(&self, message: String) -> LabError {
        LabError::Router {
            router: self.node.clone(),
            message,
        }
    }
}

/// Writes a file of the lab's run directory.
fn write(path: &Path, contents: &str) -> Result<(), LabError> {
    std::fs::write(path, contents).map_err(|source| LabError::Io {
        path: path.to_owned(),
        source,
    })
}

/// Starts `program` in `node` with its output in `log`, returning the
/// `nsenter` process that waits for it.
fn spawn_daemon(
    sandbox: &SandboxHandle,
    node: &str,
    log: &Path,
    program: &str,
    args: &[&str],
) -> Result<Child, LabError> {
    let log_file = std::fs::File::create(log).map_err(|source| LabError::Io {
        path: log.to_owned(),
        source,
    })?;
    let err_file = log_file.try_clone().map_err(|source| LabError::Io {
        path: log.to_owned(),
        source,
    })?;
    let mut command = sandbox.node_command(node, program);
    command
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(log_file)
        .stderr(err_file);
    command.spawn().map_err(|source| LabError::Spawn {
        what: format!("{program} in {node}"),
        source,
    })
}

/// "65010:100" strings of communities, for configs.
fn community_strings(communities: &[Community]) -> Vec<String> {
    communities.iter().map(ToString::to_string).collect()
}
