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

    let family = if peer.neighbor.is_ipv4() {
        FlowFamily::Ipv4
    } else {
        FlowFamily::Ipv6
    };
    let limit = usize::from(peer.accepts.max_active_rules);
    let mut rules = 0;
    if peer.accepts.flowspec {
        for rule in originate
            .flows
            .iter()
            .filter(|rule| rule.matches.family == family)
        {
            if rules == limit {
                break;
            }
            rules += 1;
            let attributes = Attributes {
                origin: Origin::Igp,
                as_path: own_path.clone(),
                next_hop: None,
                communities: Vec::new(),
                large_communities: Vec::new(),
                flow_actions: rule.actions.clone(),
            };
            routes.push((Nlri::Flow(Box::new(rule.matches.clone())), attributes));
        }
    }
    if let Some(rtbh_communities) = &peer.accepts.rtbh {
        // RFC 7999 §3.2: a blackhole route must not leave the telco.
        let mut communities = rtbh_communities.clone();
        communities.push(Community::NO_EXPORT);
        for prefix in originate
            .blackholes
            .iter()
            .filter(|p| p.addr().is_ipv4() == peer.neighbor.is_ipv4())
        {
            if rules == limit {
                break;
            }
            rules += 1;
            let attributes = Attributes {
                origin: Origin::Igp,
                as_path: own_path.clone(),
                next_hop: Some(peer.local),
                communities: communities.clone(),
                large_communities: Vec::new(),
                flow_actions: Vec::new(),
            };
            routes.push((Nlri::Unicast(*prefix), attributes));
        }
    }
    routes
}

#[cfg(test)]
mod tests;
