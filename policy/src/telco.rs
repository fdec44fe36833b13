//! One file per telco, `telcos/<name>.toml`: how we peer with that telco
//! and what it lets us ask of it during a flood.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::node::Threshold;
use crate::types::{Asn, Community, HoldTime, LargeCommunity, Name, Prepends, Rate};

/// The whole telco file.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TelcoFile {
    pub name: Name,
    pub asn: Asn,
    /// The telco router's address on the peering LAN (IPv4 session).
    pub neighbor_v4: Option<Ipv4Addr>,
    /// The telco router's address on the peering LAN (IPv6 session).
    pub neighbor_v6: Option<Ipv6Addr>,
    /// A file holding the TCP-MD5 password (RFC 2385), if the telco uses one.
    pub md5_password_file: Option<PathBuf>,
    /// GTSM (RFC 5082): send TTL 255, accept only TTL 254 or more.
    #[serde(default)]
    pub gtsm: bool,
    #[serde(default)]
    pub hold_time: HoldTime,
    /// More routes than this from the telco closes the session (Cease/1).
    #[serde(default = "default_import_max_prefixes")]
    pub import_max_prefixes: u32,
    /// Attached to every announcement to this telco.
    #[serde(default)]
    pub communities: Vec<Community>,
    #[serde(default)]
    pub large_communities: Vec<LargeCommunity>,
    #[serde(default)]
    pub prepend: Prepend,
    #[serde(default)]
    pub mitigation: Mitigation,
    /// Flood thresholds for traffic through this telco, where they differ
    /// from the node's.
    #[serde(default)]
    pub thresholds: ThresholdOverrides,
}

fn default_import_max_prefixes() -> u32 {
    1000
}

/// `[prepend]`: AS-path prepends toward this telco.
#[derive(Clone, Copy, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Prepend {
    /// When this telco is the node's paired telco.
    pub paired: Prepends,
    /// When it is not.
    pub not_paired: Prepends,
    /// Always this count, whatever the pairing.
    #[serde(rename = "override")]
    pub fixed: Option<Prepends>,
}

impl Default for Prepend {
    fn default() -> Self {
        Self {
            paired: Prepends::NONE,
            not_paired: Prepends::DEFAULT_NOT_PAIRED,
            fixed: None,
        }
    }
}

impl Prepend {
    /// The count that applies on a node that is, or is not, paired with
    /// this telco.
    pub fn effective(self, paired: bool) -> Prepends {
        match (self.fixed, paired) {
            (Some(fixed), _) => fixed,
            (None, true) => self.paired,
            (None, false) => self.not_paired,
        }
    }
}

/// `[mitigation]`: what this telco accepts from us during a flood. Nothing
/// is allowed unless the file says so.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Mitigation {
    /// Flowspec rules for IPv4 (RFC 8955).
    pub flowspec_v4: bool,
    /// Flowspec rules for IPv6 (RFC 8956).
    pub flowspec_v6: bool,
    /// Remotely triggered blackholing of a destination.
    pub rtbh: bool,
    /// The communities that ask for a blackhole.
    pub rtbh_communities: Vec<Community>,
    /// Blackholing by source prefix (RFC 5635).
    pub source_rtbh: bool,
    /// Withdrawing the anycast prefixes from this telco alone.
    pub withdraw: bool,
    /// With `withdraw`: the flood rate through this telco (packets per
    /// second handed to this node by its router) above which the node
    /// withdraws from it alone, its share of the link spent; the other
    /// telcos keep being served. None: never for a flood.
    pub withdraw_above_pps: Option<Rate>,
    /// Flowspec and RTBH routes active toward this telco at once.
    pub max_active_rules: u16,
}

impl Default for Mitigation {
    fn default() -> Self {
        Self {
            flowspec_v4: false,
            flowspec_v6: false,
            rtbh: false,
            rtbh_communities: vec![Community::BLACKHOLE],
            source_rtbh: false,
            withdraw: false,
            withdraw_above_pps: None,
            max_active_rules: 8,
        }
    }
}

/// `[thresholds]`: per-class overrides of the node's `[flood]` thresholds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdOverrides {
    pub syn: Option<Threshold>,
    pub tcp_other: Option<Threshold>,
    pub udp: Option<Threshold>,
    pub icmp: Option<Threshold>,
}
