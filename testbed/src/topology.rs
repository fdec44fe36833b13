//! The topology file: which nodes a lab has, how they are wired, and what
//! each one runs. One TOML file a newcomer can read as a map of the network.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::Deserialize;

/// A whole lab.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    /// Short name; labs started from one topology get unique run names.
    pub name: String,
    /// The ixgate configuration the lab runs (a site directory, as
    /// `examples/lab`), relative to the topology file.
    pub config: PathBuf,
    /// Shared LANs: each is a bridge in a switch namespace of its own.
    #[serde(default)]
    pub segments: Vec<Segment>,
    pub nodes: Vec<Node>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Segment {
    pub name: String,
}

/// One network namespace and what runs in it.
#[derive(Clone, Debug, Deserialize)]
#[serde(try_from = "RawNode")]
pub struct Node {
    pub name: String,
    pub role: Role,
    pub interfaces: Vec<Interface>,
    /// `ip route add` arguments, e.g. `"default via 198.51.100.65"`.
    pub routes: Vec<String>,
}

/// What a node is. The role decides what the lab starts in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// A telco's router, configured from the telco's policy file.
    Telco {
        software: RouterSoftware,
        telco: String,
    },
    /// An ixgate node, configured from a node directory of the config.
    Ixgate { node: String, runs: IxgateRuns },
    /// Routes between the ixgate nodes' transit side and the origins.
    Transit,
    /// A bank's origin server.
    Origin { service: String },
    /// A mobile client behind a telco.
    Client,
    /// A flood source behind a telco.
    Attacker,
}

#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
enum RoleName {
    Telco,
    Ixgate,
    Transit,
    Origin,
    Client,
    Attacker,
}

/// A node as written: the keys of every role, checked against the role.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNode {
    name: String,
    role: RoleName,
    /// telco: the router software.
    software: Option<RouterSoftware>,
    /// telco: the telco file's name.
    telco: Option<String>,
    /// ixgate: the node directory in the configuration.
    node: Option<String>,
    /// ixgate: what runs in it.
    runs: Option<IxgateRuns>,
    /// origin: the service it is the origin of.
    service: Option<String>,
    interfaces: Vec<Interface>,
    #[serde(default)]
    routes: Vec<String>,
}

impl TryFrom<RawNode> for Node {
    type Error = String;

    fn try_from(raw: RawNode) -> Result<Self, Self::Error> {
        let name = raw.name;
        let needs = |key: &str| format!("node {name}: a {:?} node needs `{key}`", raw.role);
        let role = match raw.role {
            RoleName::Telco => Role::Telco {
                software: raw.software.ok_or_else(|| needs("software"))?,
                telco: raw.telco.clone().ok_or_else(|| needs("telco"))?,
            },
            RoleName::Ixgate => Role::Ixgate {
                node: raw.node.clone().ok_or_else(|| needs("node"))?,
                runs: raw.runs.unwrap_or_default(),
            },
            RoleName::Origin => Role::Origin {
                service: raw.service.clone().ok_or_else(|| needs("service"))?,
            },
            RoleName::Transit => Role::Transit,
            RoleName::Client => Role::Client,
            RoleName::Attacker => Role::Attacker,
        };
        let given = [
            (
                "software",
                raw.software.is_some(),
                matches!(role, Role::Telco { .. }),
            ),
            (
                "telco",
                raw.telco.is_some(),
                matches!(role, Role::Telco { .. }),
            ),
            (
                "node",
                raw.node.is_some(),
                matches!(role, Role::Ixgate { .. }),
            ),
            (
                "runs",
                raw.runs.is_some(),
                matches!(role, Role::Ixgate { .. }),
            ),
            (
                "service",
                raw.service.is_some(),
                matches!(role, Role::Origin { .. }),
            ),
        ];
        if let Some((key, ..)) = given.iter().find(|(_, given, allowed)| *given && !allowed) {
            return Err(format!(
                "node {name}: `{key}` does not belong to a {:?} node",
                raw.role
            ));
        }
        Ok(Self {
            name,
            role,
            interfaces: raw.interfaces,
            routes: raw.routes,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RouterSoftware {
    Bird,
    Frr,
    Gobgp,
}

impl std::fmt::Display for RouterSoftware {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Bird => "BIRD",
            Self::Frr => "FRR",
            Self::Gobgp => "GoBGP",
        })
    }
}

/// What an ixgate node namespace runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IxgateRuns {
    /// GoBGP announcing what the node's plan says, standing in for the
    /// appliance's own BGP speaker.
    #[default]
    GobgpStandIn,
    /// `ixgate run` itself.
    Appliance,
    /// BIRD announcing what the node's plan says: the yardstick the
    /// appliance's speaker is measured against.
    BirdStandIn,
    /// Nothing: the test starts what it needs.
    Nothing,
}

/// One interface of a node: on a shared segment, or one end of a
/// point-to-point link to another node's interface.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Interface {
    pub name: String,
    /// The shared segment this interface is plugged into.
    pub segment: Option<String>,
    /// The other end of a point-to-point link, as `node:interface`.
    pub peer: Option<String>,
    #[serde(default)]
    pub addresses: Vec<IpNet>,
}

/// One end of a point-to-point link: (node, interface).
pub type LinkEnd<'a> = (&'a str, &'a str);

#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("{0}")]
    Invalid(String),
}

/// Linux interface names are at most 15 bytes.
const MAX_IFNAME: usize = 15;

impl Topology {
    /// The same lab with `ixgate run` in every ixgate node.
    #[must_use]
    pub fn with_appliances(mut self) -> Self {
        for node in &mut self.nodes {
            if let Role::Ixgate { runs, .. } = &mut node.role {
                *runs = IxgateRuns::Appliance;
            }
        }
        self
    }

    /// Reads a topology file; `config` is resolved against its directory.
    pub fn load(path: &Path) -> Result<Self, TopologyError> {
        let text = std::fs::read_to_string(path).map_err(|source| TopologyError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut topology: Self = toml::from_str(&text).map_err(|source| TopologyError::Parse {
            path: path.to_owned(),
            source: Box::new(source),
        })?;
        if let Some(dir) = path.parent() {
            topology.config = dir.join(&topology.config);
        }
        topology.validate()?;
        Ok(topology)
    }

    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|node| node.name == name)
    }

    /// Every wiring mistake at once, so a topology is fixed in one go.
    fn validate(&self) -> Result<(), TopologyError> {
        let mut errors = Vec::new();
        let mut names = BTreeSet::new();
        for name in self
            .segments
            .iter()
            .map(|s| &s.name)
            .chain(self.nodes.iter().map(|n| &n.name))
        {
            if !names.insert(name.as_str()) {
                errors.push(format!("the name {name} is used twice"));
            }
            if name.len() > 12 || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                errors.push(format!("{name}: names are 1 to 12 letters, digits or '-'"));
            }
        }
        let segments: BTreeSet<&str> = self.segments.iter().map(|s| s.name.as_str()).collect();
        let mut ends = BTreeMap::new();
        for node in &self.nodes {
            for interface in &node.interfaces {
                let here = format!("{}:{}", node.name, interface.name);
                if interface.name.len() > MAX_IFNAME {
                    errors.push(format!(
                        "{here}: interface names are at most {MAX_IFNAME} bytes"
                    ));
                }
                match (&interface.segment, &interface.peer) {
                    (Some(segment), None) if !segments.contains(segment.as_str()) => {
                        errors.push(format!("{here}: no segment named {segment}"));
                    }
                    (None, Some(peer)) => {
                        ends.insert(here, peer.clone());
                    }
                    (Some(_), None) => {}
                    _ => errors.push(format!("{here}: give either segment or peer")),
                }
            }
        }
        for (here, peer) in &ends {
            if ends.get(peer) != Some(here) {
                errors.push(format!("{here}: its peer {peer} must name it back as peer"));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(TopologyError::Invalid(errors.join("\n")))
        }
    }

    /// Point-to-point links, each once, as pairs of ends.
    pub fn links(&self) -> Vec<(LinkEnd<'_>, LinkEnd<'_>)> {
        let mut links = Vec::new();
        for node in &self.nodes {
            for interface in &node.interfaces {
                let Some((peer_node, peer_interface)) =
                    interface.peer.as_deref().and_then(|p| p.split_once(':'))
                else {
                    continue;
                };
                let here = (node.name.as_str(), interface.name.as_str());
                let there = (peer_node, peer_interface);
                if here < there {
                    links.push((here, there));
                }
            }
        }
        links
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Topology, TopologyError> {
        let topology: Topology = toml::from_str(text).map_err(|source| TopologyError::Parse {
            path: "t.toml".into(),
            source: Box::new(source),
        })?;
        topology.validate().map(|()| topology)
    }

    #[test]
    fn the_lab_topology_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("topologies/lab.toml");
        let topology = Topology::load(&path).unwrap();
        assert!(topology.node("telco-a").is_some());
        assert!(!topology.links().is_empty());
    }

    #[test]
    fn unknown_node_keys_are_refused() {
        let error = parse(
            r#"
            name = "t"
            config = "."
            [[nodes]]
            name = "a"
            role = "client"
            colour = "blue"
            interfaces = []
            "#,
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("unknown field `colour`"), "{error}");
        let error = parse(
            r#"
            name = "t"
            config = "."
            [[nodes]]
            name = "a"
            role = "client"
            software = "bird"
            interfaces = []
            "#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("`software` does not belong to a Client node"),
            "{error}"
        );
    }

    #[test]
    fn wiring_mistakes_are_all_reported() {
        let error = parse(
            r#"
            name = "t"
            config = "."
            [[nodes]]
            name = "a"
            role = "client"
            interfaces = [{ name = "eth0", peer = "b:eth0" }, { name = "eth1", segment = "nowhere" }]
            [[nodes]]
            name = "b"
            role = "client"
            interfaces = [{ name = "eth0", peer = "a:eth9" }]
            "#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("a:eth1: no segment named nowhere"),
            "{error}"
        );
        assert!(
            error.contains("a:eth0: its peer b:eth0 must name it back"),
            "{error}"
        );
    }
}
