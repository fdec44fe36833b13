//! What each router of a lab is configured with, derived from the ixgate
//! configuration the topology names: telco routers peer with every ixgate
//! node as the telco files say; a stand-in announces what its node's plan
//! says.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use ixgate_policy::telco::TelcoFile;
use ixgate_policy::{Config, Drained};

use crate::LabError;
use crate::routers::{Customer, Neighbor, RouterSetup};
use crate::topology::{Node, Role, Topology};

/// The ixgate configuration of every ixgate node of a topology, by node.
pub fn load_site(topology: &Topology) -> Result<BTreeMap<String, Config>, LabError> {
    let mut site = BTreeMap::new();
    for node in &topology.nodes {
        if let Role::Ixgate { node: dir, .. } = &node.role {
            let dir = topology.config.join(dir);
            let config = ixgate_policy::load(&dir).map_err(|error| LabError::Config {
                message: match error {
                    ixgate_policy::LoadError::Invalid(errors) => errors
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("\n"),
                    error @ ixgate_policy::LoadError::Unreadable { .. } => error.to_string(),
                },
                dir,
            })?;
            site.insert(node.name.clone(), config);
        }
    }
    Ok(site)
}

/// A session name both routers' configs accept: letters, digits, `_`.
fn session_name(name: &str, address: IpAddr) -> String {
    let family = if address.is_ipv4() { "v4" } else { "v6" };
    format!("{}_{family}", name.replace('-', "_"))
}

fn password(telco: &TelcoFile) -> Result<Option<String>, LabError> {
    telco
        .md5_password_file
        .as_deref()
        .map(|path| {
            std::fs::read_to_string(path)
                .map(|text| text.trim_end_matches('\n').to_owned())
                .map_err(|source| LabError::Io {
                    path: path.to_owned(),
                    source,
                })
        })
        .transpose()
}

/// The node's first IPv4 address, as its router ID.
fn router_id(node: &Node) -> Ipv4Addr {
    node.interfaces
        .iter()
        .flat_map(|interface| &interface.addresses)
        .find_map(|address| match address.addr() {
            IpAddr::V4(v4) => Some(v4),
            IpAddr::V6(_) => None,
        })
        .unwrap_or(Ipv4Addr::LOCALHOST)
}

/// A telco router: a session per ixgate node and family, as the telco
/// file says.
pub fn telco_setup(
    node: &Node,
    telco_name: &str,
    site: &BTreeMap<String, Config>,
) -> Result<RouterSetup, LabError> {
    let telco = site
        .values()
        .flat_map(|config| &config.telcos)
        .find(|telco| telco.name.as_str() == telco_name)
        .ok_or_else(|| LabError::Config {
            dir: Path::new(telco_name).to_owned(),
            message: format!("no telco file names telco {telco_name}"),
        })?;
    let password = password(telco)?;
    let mitigation = &telco.mitigation;
    let mut neighbors = Vec::new();
    for (ixgate_node, config) in site {
        let sessions = [
            (
                telco.neighbor_v4.map(IpAddr::V4),
                config.node.bgp.local_v4.map(IpAddr::V4),
                mitigation.flowspec_v4,
            ),
            (
                telco.neighbor_v6.map(IpAddr::V6),
                config.node.bgp.local_v6.map(IpAddr::V6),
                mitigation.flowspec_v6,
            ),
        ];
        for (local, address, flowspec) in sessions {
            let (Some(local), Some(address)) = (local, address) else {
                continue;
            };
            neighbors.push(Neighbor {
                name: session_name(ixgate_node, address),
                address,
                local,
                asn: config.node.node.asn.get(),
                password: password.clone(),
                gtsm: telco.gtsm,
                hold_time: telco.hold_time.seconds(),
                flowspec,
                rtbh_communities: if mitigation.rtbh {
                    mitigation.rtbh_communities.clone()
                } else {
                    Vec::new()
                },
                prepends: 0,
                communities: Vec::new(),
                large_communities: Vec::new(),
            });
        }
    }
    // Every link that is not the peering LAN leads to customers.
    let customers = node
        .interfaces
        .iter()
        .filter(|interface| interface.segment.is_none())
        .flat_map(|interface| {
            interface.addresses.iter().map(|address| Customer {
                interface: interface.name.clone(),
                network: address.trunc(),
            })
        })
        .collect();
    Ok(RouterSetup {
        node: node.name.clone(),
        asn: telco.asn.get(),
        router_id: router_id(node),
        neighbors,
        originate: Vec::new(),
        customers,
    })
}

/// The GoBGP stand-in for an ixgate node: the sessions, prepends and
/// communities of the node's plan, originating its anycast prefixes.
pub fn stand_in_setup(node: &Node, config: &Config) -> Result<RouterSetup, LabError> {
    let plan = ixgate_policy::plan(config, &Drained::Nothing);
    let mut neighbors = Vec::new();
    for peer in &plan.peers {
        let telco = config.telcos.iter().find(|telco| telco.name == peer.telco);
        neighbors.push(Neighbor {
            name: session_name(peer.telco.as_str(), peer.neighbor),
            address: peer.neighbor,
            local: peer.local,
            asn: peer.remote_asn.get(),
            password: telco.map(password).transpose()?.flatten(),
            gtsm: peer.gtsm,
            hold_time: peer.hold_time.seconds(),
            flowspec: peer.accepts.flowspec,
            rtbh_communities: Vec::new(),
            prepends: peer.prepends.count(),
            communities: peer.communities.clone(),
            large_communities: peer.large_communities.clone(),
        });
    }
    Ok(RouterSetup {
        node: node.name.clone(),
        asn: plan.asn.get(),
        router_id: plan.router_id,
        neighbors,
        originate: config
            .node
            .anycast
            .prefixes
            .iter()
            .map(|prefix| prefix.net())
            .collect(),
        customers: Vec::new(),
    })
}
