//! Export policy against the lab's node-1 plan: paired with telco-a (BIRD,
//! both Flowspec families, RTBH 65535:666), telco-b (FRR, IPv4 Flowspec
//! only, RTBH 65020:666 and 65535:666, at most 8 rules).

use std::path::Path;

use ipnet::IpNet;
use ixgate_policy::plan::{PeerPlan, Plan};
use ixgate_policy::types::Community;
use ixgate_policy::{Drained, plan};

use super::*;
use crate::wire::flow::NumericTerm;
use crate::wire::{FlowAction, FlowMatch};

fn lab_plan(drained: &Drained) -> Plan {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/lab/node-1");
    plan(&ixgate_policy::load(&dir).unwrap(), drained)
}

fn peer<'a>(plan: &'a Plan, neighbor: &str) -> &'a PeerPlan {
    plan.peers
        .iter()
        .find(|p| p.neighbor.to_string() == neighbor)
        .unwrap()
}

fn rule(family: FlowFamily, destination: &str) -> FlowRule {
    let mut matches = FlowMatch::new(family);
    matches.destination = Some(destination.parse().unwrap());
    matches.protocols = vec![NumericTerm::eq(6)];
    FlowRule {
        matches,
        actions: vec![FlowAction::RateBytes(0.0)],
    }
}

fn unicast(routes: &[(Nlri, Attributes)]) -> Vec<(IpNet, Attributes)> {
    routes
        .iter()
        .filter_map(|(nlri, attributes)| match nlri {
            Nlri::Unicast(net) => Some((*net, attributes.clone())),
            Nlri::Flow(_) => None,
        })
        .collect()
}

#[test]
fn anycast_with_prepends_communities_and_next_hop_self() {
    let plan = lab_plan(&Drained::Nothing);
    let routes = routes_for(&plan, peer(&plan, "198.51.100.1"), &Originate::default());
    let [(prefix, attributes)] = unicast(&routes).try_into().unwrap();
    assert_eq!(prefix, "192.0.2.0/24".parse::<IpNet>().unwrap());
    assert_eq!(attributes.as_path, [65000]);
    assert_eq!(attributes.next_hop, Some("198.51.100.11".parse().unwrap()));
    assert_eq!(attributes.communities, ["65010:100".parse().unwrap()]);
    assert_eq!(
        attributes.large_communities,
        ["65010:1:100".parse().unwrap()]
    );

    let to_b = routes_for(&plan, peer(&plan, "2001:db8:ff::2"), &Originate::default());
    let [(prefix, attributes)] = unicast(&to_b).try_into().unwrap();
    assert_eq!(prefix, "2001:db8:100::/48".parse::<IpNet>().unwrap());
    assert_eq!(
        attributes.as_path, [65000; 4],
        "three prepends toward the unpaired telco"
    );
    assert_eq!(
        attributes.next_hop,
        Some("2001:db8:ff::11".parse().unwrap())
    );
}

#[test]
fn drained_peers_get_no_anycast() {
    let plan = lab_plan(&Drained::All);
    assert!(routes_for(&plan, peer(&plan, "198.51.100.1"), &Originate::default()).is_empty());
}

#[test]
fn graceful_shutdown_adds_rfc_8326_community() {
    let plan = lab_plan(&Drained::Nothing);
    let originate = Originate {
        graceful_shutdown: true,
        ..Originate::default()
    };
    let routes = routes_for(&plan, peer(&plan, "198.51.100.2"), &originate);
    assert!(
        routes[0]
            .1
            .communities
            .contains(&Community::GRACEFUL_SHUTDOWN)
    );
}

#[test]
fn flows_go_where_the_telco_accepts_their_family() {
    let plan = lab_plan(&Drained::Nothing);
    let originate = Originate {
        flows: vec![
            rule(FlowFamily::Ipv4, "192.0.2.10/32"),
            rule(FlowFamily::Ipv6, "2001:db8:100::10/128"),
        ],
        ..Originate::default()
    };
    let flows = |neighbor: &str| {
        routes_for(&plan, peer(&plan, neighbor), &originate)
            .into_iter()
            .filter(|(nlri, _)| matches!(nlri, Nlri::Flow(_)))
            .count()
    };
    assert_eq!(flows("198.51.100.1"), 1);
    assert_eq!(flows("2001:db8:ff::1"), 1);
    assert_eq!(flows("198.51.100.2"), 1);
    assert_eq!(flows("2001:db8:ff::2"), 0, "telco-b takes no IPv6 Flowspec");
}

#[test]
fn blackholes_carry_each_telcos_communities_and_no_export() {
    let plan = lab_plan(&Drained::Nothing);
    let originate = Originate {
        blackholes: vec!["192.0.2.10/32".parse().unwrap()],
        ..Originate::default()
    };
    let routes = routes_for(&plan, peer(&plan, "198.51.100.2"), &originate);
    let blackhole = unicast(&routes)
        .into_iter()
        .find(|(net, _)| net.prefix_len() == 32)
        .unwrap()
        .1;
    assert_eq!(
        blackhole.communities,
        [
            "65020:666".parse().unwrap(),
            Community::BLACKHOLE,
            Community::NO_EXPORT
        ]
    );
    assert_eq!(blackhole.as_path, [65000], "no prepends on a blackhole");
    // Not to the IPv6 session.
    assert_eq!(
        unicast(&routes_for(
            &plan,
            peer(&plan, "2001:db8:ff::2"),
            &originate
        ))
        .len(),
        1
    );
}

#[test]
fn source_blackholes_go_only_where_source_rtbh_is_accepted() {
    let plan = lab_plan(&Drained::Nothing);
    let originate = Originate {
        source_blackholes: vec!["203.0.113.128/28".parse().unwrap()],
        ..Originate::default()
    };
    let blackholed = |neighbor| {
        unicast(&routes_for(&plan, peer(&plan, neighbor), &originate))
            .iter()
            .any(|(net, _)| net.to_string() == "203.0.113.128/28")
    };
    // telco-b accepts source RTBH; telco-a does not.
    assert!(blackholed("198.51.100.2"));
    assert!(!blackholed("198.51.100.1"));
}

#[test]
fn mitigations_stop_at_the_telcos_limit() {
    let plan = lab_plan(&Drained::Nothing);
    let originate = Originate {
        flows: (1..=10)
            .map(|host| rule(FlowFamily::Ipv4, &format!("192.0.2.{host}/32")))
            .collect(),
        blackholes: vec!["192.0.2.200/32".parse().unwrap()],
        ..Originate::default()
    };
    // telco-b allows 8 rules at once: 8 flows, no room for the blackhole.
    let routes = routes_for(&plan, peer(&plan, "198.51.100.2"), &originate);
    assert_eq!(routes.len(), 1 + 8);
}
