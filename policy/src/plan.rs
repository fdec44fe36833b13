//! The derived plan: per peer, what it gets and what it accepts. A pure
//! function of the configuration and the drain state.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

use serde::Serialize;

use crate::Config;
use crate::node::{Service, Threshold};
use crate::telco::TelcoFile;
use crate::types::{
    Asn, Community, DnsName, HoldTime, LargeCommunity, Name, OriginUrl, Prefix, Prepends,
};

/// Which telcos get no announcements right now.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Drained {
    #[default]
    Nothing,
    /// The whole node is drained: nobody gets the prefixes.
    All,
    /// These telcos are drained; the others are served.
    Telcos(BTreeSet<Name>),
}

impl Drained {
    pub fn contains(&self, telco: &Name) -> bool {
        match self {
            Self::Nothing => false,
            Self::All => true,
            Self::Telcos(names) => names.contains(telco),
        }
    }
}

/// Everything this node will do, derived from its configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub node: Name,
    pub asn: Asn,
    pub router_id: Ipv4Addr,
    pub paired_telco: Name,
    pub peers: Vec<PeerPlan>,
    pub services: Vec<ServicePlan>,
}

/// One BGP session: a telco's router on one address family.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PeerPlan {
    pub telco: Name,
    pub neighbor: IpAddr,
    pub local: IpAddr,
    pub remote_asn: Asn,
    pub paired: bool,
    pub hold_time: HoldTime,
    pub md5: bool,
    pub gtsm: bool,
    pub import_max_prefixes: u32,
    pub prepends: Prepends,
    /// The AS path the telco sees: our AS, once plus once per prepend.
    pub as_path: Vec<Asn>,
    /// The prefixes announced on this session; empty while drained.
    pub announce: Vec<Prefix>,
    pub drained: bool,
    pub communities: Vec<Community>,
    pub large_communities: Vec<LargeCommunity>,
    pub accepts: Accepts,
}

/// The mitigations a peer accepts from us, for its address family.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Accepts {
    pub flowspec: bool,
    /// The communities that ask for a blackhole, when RTBH is allowed.
    pub rtbh: Option<Vec<Community>>,
    pub source_rtbh: bool,
    pub withdraw: bool,
    pub max_active_rules: u16,
    pub thresholds: Thresholds,
}

/// The flood thresholds for traffic arriving through one telco.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Thresholds {
    pub syn: Threshold,
    pub tcp_other: Threshold,
    pub udp: Threshold,
    pub icmp: Threshold,
}

/// One bank service, as the summary shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ServicePlan {
    pub name: Name,
    pub sni: Vec<DnsName>,
    pub origins: Vec<OriginUrl>,
    pub origin_sni: DnsName,
    pub crls: usize,
    /// Addresses taking its HTTP/3 (none: TCP only).
    pub http3: Vec<IpAddr>,
}

/// The plan for `config` with `drained` telcos getting no announcements.
pub fn plan(config: &Config, drained: &Drained) -> Plan {
    let node = &config.node;
    let mut peers = Vec::new();
    for telco in &config.telcos {
        let sessions = [
            telco
                .neighbor_v4
                .map(IpAddr::V4)
                .zip(node.bgp.local_v4.map(IpAddr::V4)),
            telco
                .neighbor_v6
                .map(IpAddr::V6)
                .zip(node.bgp.local_v6.map(IpAddr::V6)),
        ];
        for (neighbor, local) in sessions.into_iter().flatten() {
            peers.push(peer_plan(config, telco, neighbor, local, drained));
        }
    }
    Plan {
        node: node.node.name.clone(),
        asn: node.node.asn,
        router_id: node.node.router_id,
        paired_telco: node.node.paired_telco.clone(),
        peers,
        services: node.services.iter().map(service_plan).collect(),
    }
}

fn peer_plan(
    config: &Config,
    telco: &TelcoFile,
    neighbor: IpAddr,
    local: IpAddr,
    drained: &Drained,
) -> PeerPlan {
    let node = &config.node;
    let paired = telco.name == node.node.paired_telco;
    let prepends = telco.prepend.effective(paired);
    let is_drained = drained.contains(&telco.name);
    let announce = if is_drained {
        Vec::new()
    } else {
        node.anycast
            .prefixes
            .iter()
            .copied()
            .filter(|prefix| prefix.is_ipv4() == neighbor.is_ipv4())
            .collect()
    };
    let mitigation = &telco.mitigation;
    let overrides = telco.thresholds;
    let flood = &node.flood;
    PeerPlan {
        telco: telco.name.clone(),
        neighbor,
        local,
        remote_asn: telco.asn,
        paired,
        hold_time: telco.hold_time,
        md5: telco.md5_password_file.is_some(),
        gtsm: telco.gtsm,
        import_max_prefixes: telco.import_max_prefixes,
        prepends,
        as_path: vec![node.node.asn; 1 + usize::from(prepends.count())],
        announce,
        drained: is_drained,
        communities: telco.communities.clone(),
        large_communities: telco.large_communities.clone(),
        accepts: Accepts {
            flowspec: if neighbor.is_ipv4() {
                mitigation.flowspec_v4
            } else {
                mitigation.flowspec_v6
            },
            rtbh: mitigation.rtbh.then(|| mitigation.rtbh_communities.clone()),
            source_rtbh: mitigation.source_rtbh,
            withdraw: mitigation.withdraw,
            max_active_rules: mitigation.max_active_rules,
            thresholds: Thresholds {
                syn: overrides.syn.unwrap_or(flood.syn),
                tcp_other: overrides.tcp_other.unwrap_or(flood.tcp_other),
                udp: overrides.udp.unwrap_or(flood.udp),
                icmp: overrides.icmp.unwrap_or(flood.icmp),
            },
        },
    }
}

fn service_plan(service: &Service) -> ServicePlan {
    ServicePlan {
        name: service.name.clone(),
        sni: service.sni.clone(),
        origins: service.origins.clone(),
        origin_sni: service.origin_sni.clone(),
        crls: service.crls.len(),
        http3: service
            .http3
            .as_ref()
            .map(|http3| http3.addresses.clone())
            .unwrap_or_default(),
    }
}
