//! Export policy: what each peer's Adj-RIB-Out holds, from the node's plan
//! and what the controller asked for. Pure.

use ipnet::IpNet;
use ixgate_policy::plan::{PeerPlan, Plan};
use ixgate_policy::types::Community;

use crate::wire::{Attributes, FlowFamily, FlowRule, Nlri, Origin};

/// What the controller has asked the speaker to originate besides the
/// plan's anycast prefixes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Originate {
    /// RFC 8326: announce with GRACEFUL_SHUTDOWN before withdrawing.
    pub graceful_shutdown: bool,
    /// Flowspec rules, sent to the peers whose telco accepts Flowspec for
    /// the rule's family.
    pub flows: Vec<FlowRule>,
    /// Destinations to blackhole, sent with each telco's RTBH communities
    /// to the telcos that accept RTBH.
    pub blackholes: Vec<IpNet>,
    /// Sources to blackhole (RFC 5635: the telco drops traffic from them
    /// by uRPF), the same way, to the telcos that accept source RTBH.
    pub source_blackholes: Vec<IpNet>,
}

/// The routes for `peer` (a session of the plan).
pub fn routes_for(plan: &Plan, peer: &PeerPlan, originate: &Originate) -> Vec<(Nlri, Attributes)> {
    let own_path = vec![plan.asn.get()];
    let mut routes = Vec::new();

    let mut communities = peer.communities.clone();
    if originate.graceful_shutdown {
        communities.push(Community::GRACEFUL_SHUTDOWN);
    }
    let anycast = Attributes {
        origin: Origin::Igp,
        as_path: peer.as_path.iter().map(|asn| asn.get()).collect(),
        next_hop: Some(peer.local),
        communities,
        large_communities: peer.large_communities.clone(),
        flow_actions: Vec::new(),
    };
    for prefix in &peer.announce {
        routes.push((Nlri::Unicast(prefix.net()), anycast.clone()));
    }

    // Mitigations carry our AS alone (no prepends) and share the telco's
    // limit, Flowspec first.
    let mitigation = |next_hop, communities, flow_actions| Attributes {
        origin: Origin::Igp,
        as_path: own_path.clone(),
        next_hop,
        communities,
        large_communities: Vec::new(),
        flow_actions,
    };
    let family = if peer.neighbor.is_ipv4() {
        FlowFamily::Ipv4
    } else {
        FlowFamily::Ipv6
    };
    let flows = originate
        .flows
        .iter()
        .filter(|rule| peer.accepts.flowspec && rule.matches.family == family)
        .map(|rule| {
            (
                Nlri::Flow(Box::new(rule.matches.clone())),
                mitigation(None, Vec::new(), rule.actions.clone()),
            )
        });
    // RFC 7999 §3.2: a blackhole route must not leave the telco.
    let rtbh_communities = peer.accepts.rtbh.as_ref().map(|communities| {
        let mut communities = communities.clone();
        communities.push(Community::NO_EXPORT);
        communities
    });
    let source_blackholes = originate
        .source_blackholes
        .iter()
        .filter(|_| peer.accepts.source_rtbh);
    let blackholes = originate
        .blackholes
        .iter()
        .chain(source_blackholes)
        .filter(|prefix| prefix.addr().is_ipv4() == peer.neighbor.is_ipv4())
        .filter_map(|prefix| {
            let communities = rtbh_communities.clone()?;
            Some((
                Nlri::Unicast(*prefix),
                mitigation(Some(peer.local), communities, Vec::new()),
            ))
        });
    routes.extend(
        flows
            .chain(blackholes)
            .take(usize::from(peer.accepts.max_active_rules)),
    );
    routes
}

#[cfg(test)]
mod tests;
