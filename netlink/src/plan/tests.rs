use super::*;
use crate::state::TRANSIT_TABLE;
use crate::test_support::node_1_config;

fn rendered(state: &RoutingState) -> Vec<String> {
    let links = state
        .links
        .iter()
        .map(|link| format!("link {} {:?}", link.name, link.kind));
    let addresses = state.addresses.iter().map(|a| format!("address {a}"));
    let routes = state.routes.iter().map(|r| format!("route {r}"));
    let rules = state.rules.iter().map(|r| format!("rule {r}"));
    links.chain(addresses).chain(routes).chain(rules).collect()
}

#[test]
fn node_1_of_the_lab() {
    let state = desired(&node_1_config());
    assert_eq!(
        rendered(&state),
        [
            "link anyhold0 Bridge",
            "address 192.0.2.10/32 dev anyhold0",
            "address 192.0.2.20/32 dev anyhold0",
            "address 2001:db8:100::10/128 dev anyhold0",
            "address 2001:db8:100::20/128 dev anyhold0",
            "route table 100 0.0.0.0/0 via 198.51.100.1 dev ixp0 metric 100",
            "route table 100 unreachable 0.0.0.0/0 metric 4294967295",
            "route table 100 ::/0 via 2001:db8:ff::1 dev ixp0 metric 100",
            "route table 100 unreachable ::/0 metric 4294967295",
            "route table 101 0.0.0.0/0 via 203.0.113.1 dev transit0 metric 100",
            "route table 101 unreachable 0.0.0.0/0 metric 4294967295",
            "route table 101 ::/0 via 2001:db8:200::1 dev transit0 metric 100",
            "route table 101 unreachable ::/0 metric 4294967295",
            "rule 1000: from 192.0.2.0/24 lookup 100",
            "rule 1001: from 2001:db8:100::/48 lookup 100",
            "rule 1050: from 203.0.113.11/32 lookup 101",
            "rule 1051: from 2001:db8:200::11/128 lookup 101",
        ]
    );
}

#[test]
fn every_table_ends_unreachable_even_without_a_way_out() {
    let mut config = node_1_config();
    config.node.transit.gateways.clear();
    config.telcos.clear();
    let state = desired(&config);
    assert!(
        state
            .routes
            .iter()
            .all(|route| route.target == RouteTarget::Unreachable),
        "{state:#?}"
    );
    assert_eq!(state.routes.len(), 4, "two tables, two families");
    assert!(state.rules.iter().any(|rule| rule.table == TRANSIT_TABLE));
}

#[test]
fn learned_customer_routes_lead_back_through_their_telco_and_never_cover_ours() {
    let config = node_1_config();
    let learned = [
        Learned {
            prefix: "198.51.100.96/28".parse().expect("prefix"),
            gateway: "198.51.100.2".parse().expect("address"),
        },
        Learned {
            prefix: "192.0.2.0/25".parse().expect("prefix"),
            gateway: "198.51.100.2".parse().expect("address"),
        },
        Learned {
            prefix: "0.0.0.0/0".parse().expect("prefix"),
            gateway: "198.51.100.2".parse().expect("address"),
        },
    ];
    let state = desired_with(&config, &learned);
    let extra: Vec<String> = state
        .routes
        .difference(&desired(&config).routes)
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        extra,
        ["table 100 198.51.100.96/28 via 198.51.100.2 dev ixp0 metric 100"]
    );
}

#[test]
fn lo_as_holder_creates_no_link() {
    let mut config = node_1_config();
    config.node.interfaces.anycast_holder = HolderKind::Lo;
    let state = desired(&config);
    assert!(state.links.is_empty());
    assert!(
        state
            .addresses
            .iter()
            .all(|address| address.interface == "lo")
    );
}
