//! The kernel objects policy routing is made of, as plain values: what
//! the planner wants and what a dump found (ours only, tagged with
//! [`PROTOCOL`]) are the same types, so they compare directly.

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

/// The routing protocol number on every address, route and rule we
/// install: how we know ours from everyone else's. Named `ixgate` by the
/// `rt_protos.d` file we ship; not used by any routing daemon.
pub const PROTOCOL: u8 = 250;

/// The routing table of traffic from the anycast prefixes.
pub const ANYCAST_TABLE: u32 = 100;
/// The routing table of traffic from the transit sources.
pub const TRANSIT_TABLE: u32 = 101;

/// Our rules' priorities: anycast prefixes from the first, transit
/// sources from `TRANSIT_RULES`; nothing of ours outside 1000–1099.
pub const ANYCAST_RULES: u32 = 1000;
pub const TRANSIT_RULES: u32 = 1050;
pub const LAST_RULE: u32 = 1099;

/// The metric of the way out of a table; the unreachable default sits
/// below it with the highest metric, so a missing way out fails the
/// lookup instead of falling through to `main`.
pub const ROUTE_METRIC: u32 = 100;
pub const UNREACHABLE_METRIC: u32 = u32::MAX;

/// An interface we create: the holder of the service addresses.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LinkSpec {
    pub name: String,
    pub kind: LinkKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LinkKind {
    Dummy,
    /// A bridge without ports, where the kernel has no dummy driver.
    Bridge,
}

/// An address on an interface.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AddressSpec {
    pub interface: String,
    pub address: IpNet,
}

/// A route in one of our tables.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RouteSpec {
    pub table: u32,
    pub destination: IpNet,
    pub metric: u32,
    pub target: RouteTarget,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RouteTarget {
    Via {
        gateway: IpAddr,
        interface: String,
    },
    Unreachable,
    /// A route of ours in a shape the planner never makes (found by a
    /// dump): it only goes.
    Unrecognized,
}

impl RouteSpec {
    /// What the kernel tells routes apart by (RTM_NEWROUTE with
    /// NLM_F_REPLACE changes the route with the same key).
    pub fn key(&self) -> (u32, IpNet, u32) {
        (self.table, self.destination, self.metric)
    }
}

/// A policy rule: traffic from `from` looks up `table`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RuleSpec {
    pub priority: u32,
    pub from: IpNet,
    pub table: u32,
}

/// A whole state: what the planner wants, or what the kernel holds of
/// ours.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoutingState {
    pub links: BTreeSet<LinkSpec>,
    pub addresses: BTreeSet<AddressSpec>,
    pub routes: BTreeSet<RouteSpec>,
    pub rules: BTreeSet<RuleSpec>,
}

impl fmt::Display for RouteSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.target {
            RouteTarget::Via { gateway, interface } => write!(
                f,
                "table {} {} via {gateway} dev {interface} metric {}",
                self.table, self.destination, self.metric
            ),
            RouteTarget::Unreachable => write!(
                f,
                "table {} unreachable {} metric {}",
                self.table, self.destination, self.metric
            ),
            RouteTarget::Unrecognized => write!(
                f,
                "table {} {} metric {} (not ours to keep)",
                self.table, self.destination, self.metric
            ),
        }
    }
}

impl fmt::Display for RuleSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: from {} lookup {}",
            self.priority, self.from, self.table
        )
    }
}

impl fmt::Display for AddressSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} dev {}", self.address, self.interface)
    }
}

#[cfg(test)]
mod tests {
    /// The name we ship for our protocol number is the number we use.
    #[test]
    fn rt_protos_names_our_protocol() {
        let file = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../packaging/iproute2/rt_protos.d/ixgate.conf"
        );
        let text = std::fs::read_to_string(file).expect("the rt_protos.d file");
        let entry = text
            .lines()
            .find(|line| !line.starts_with('#') && !line.trim().is_empty())
            .expect("an entry");
        let fields: Vec<&str> = entry.split_whitespace().collect();
        assert_eq!(fields, [super::PROTOCOL.to_string().as_str(), "ixgate"]);
    }
}
