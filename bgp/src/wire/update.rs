//! UPDATE messages as ixgate sees them: one set of path attributes, the
//! routes announced with it, and the routes withdrawn.

use std::net::IpAddr;

use ipnet::IpNet;
use ixgate_policy::types::{Community, LargeCommunity};

use super::flow::{FlowAction, FlowMatch};

/// ORIGIN (RFC 4271 §5.1.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Igp,
    Egp,
    Incomplete,
}

/// A route: a unicast prefix, or a Flowspec match.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Nlri {
    Unicast(IpNet),
    Flow(Box<FlowMatch>),
}

/// The path attributes of announced routes.
#[derive(Clone, Debug, PartialEq)]
pub struct Attributes {
    pub origin: Origin,
    /// AS_PATH as one AS_SEQUENCE of 4-octet AS numbers.
    pub as_path: Vec<u32>,
    /// The next hop of unicast routes; Flowspec routes carry none.
    pub next_hop: Option<IpAddr>,
    pub communities: Vec<Community>,
    pub large_communities: Vec<LargeCommunity>,
    /// Flowspec actions, carried as extended communities.
    pub flow_actions: Vec<FlowAction>,
}

/// One UPDATE.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Update {
    pub withdrawn: Vec<Nlri>,
    /// Present when the UPDATE announces routes.
    pub attributes: Option<Attributes>,
    pub announced: Vec<Nlri>,
}
