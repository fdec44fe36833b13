//! The planner, pure: from the configuration, the policy routing a node
//! needs. Replies from the anycast addresses leave through the anycast
//! interface toward the paired telco; everything from the transit
//! sources leaves through transit; each table ends in an unreachable
//! default, so neither ever falls through to `main`.

use std::net::IpAddr;

use ipnet::IpNet;
use ixgate_policy::Config;
use ixgate_policy::node::HolderKind;

use crate::state::{
    ANYCAST_RULES, ANYCAST_TABLE, AddressSpec, LinkKind, LinkSpec, ROUTE_METRIC, RouteSpec,
    RouteTarget, RoutingState, RuleSpec, TRANSIT_RULES, TRANSIT_TABLE, UNREACHABLE_METRIC,
};

/// A route a telco announced to us: the way back to its customers.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Learned {
    pub prefix: IpNet,
    /// The telco's router on the peering LAN.
    pub gateway: IpAddr,
}

/// The desired state of `config`'s node, with no routes learned yet.
pub fn desired(config: &Config) -> RoutingState {
    desired_with(config, &[])
}

/// The desired state of `config`'s node. Replies from the anycast
/// addresses go back through the telco that announced the client's
/// network (`learned`), whichever node the client's telco chose; the rest
/// through the paired telco. Learned routes that cover our own anycast
/// prefixes, or are defaults, are not taken.
pub fn desired_with(config: &Config, learned: &[Learned]) -> RoutingState {
    let node = &config.node;
    let mut state = RoutingState::default();
    let holder = node.interfaces.holder_name().to_owned();
    let kind = match node.interfaces.anycast_holder {
        HolderKind::Dummy => Some(LinkKind::Dummy),
        HolderKind::Bridge => Some(LinkKind::Bridge),
        HolderKind::Lo => None,
    };
    if let Some(kind) = kind {
        state.links.insert(LinkSpec {
            name: holder.clone(),
            kind,
        });
    }
    for &ip in &node.anycast.service_ips {
        state.addresses.insert(AddressSpec {
            interface: holder.clone(),
            address: IpNet::from(ip),
        });
    }

    let anycast = node.interfaces.anycast.as_str().to_owned();
    let transit = node.interfaces.transit.as_str().to_owned();
    let telco = config
        .telcos
        .iter()
        .find(|telco| telco.name == node.node.paired_telco);
    let telco_routers: Vec<IpAddr> = telco
        .map(|telco| {
            let v4 = telco.neighbor_v4.map(IpAddr::V4);
            let v6 = telco.neighbor_v6.map(IpAddr::V6);
            v4.into_iter().chain(v6).collect()
        })
        .unwrap_or_default();
    let families = [true, false];
    for ipv4 in families {
        add_table(&mut state, ANYCAST_TABLE, ipv4, &telco_routers, &anycast);
        add_table(
            &mut state,
            TRANSIT_TABLE,
            ipv4,
            &node.transit.gateways,
            &transit,
        );
    }

    let ours: Vec<IpNet> = node.anycast.prefixes.iter().map(|p| p.net()).collect();
    for route in learned {
        let overlaps = ours
            .iter()
            .any(|own| own.contains(&route.prefix) || route.prefix.contains(own));
        if overlaps || route.prefix.prefix_len() == 0 {
            continue;
        }
        if route.prefix.addr().is_ipv4() != route.gateway.is_ipv4() {
            continue;
        }
        state.routes.insert(RouteSpec {
            table: ANYCAST_TABLE,
            destination: route.prefix,
            metric: ROUTE_METRIC,
            target: RouteTarget::Via {
                gateway: route.gateway,
                interface: anycast.clone(),
            },
        });
    }
    let anycast_sources = node.anycast.prefixes.iter().map(|prefix| prefix.net());
    for (priority, from) in (ANYCAST_RULES..).zip(anycast_sources) {
        state.rules.insert(RuleSpec {
            priority,
            from,
            table: ANYCAST_TABLE,
        });
    }
    let transit_sources = node.transit.sources.iter().map(|&ip| IpNet::from(ip));
    for (priority, from) in (TRANSIT_RULES..).zip(transit_sources) {
        state.rules.insert(RuleSpec {
            priority,
            from,
            table: TRANSIT_TABLE,
        });
    }
    state
}

/// One family of `table`: a default via each gateway of that family (the
/// first preferred), and the unreachable default under them.
fn add_table(
    state: &mut RoutingState,
    table: u32,
    ipv4: bool,
    gateways: &[IpAddr],
    interface: &str,
) {
    let default = if ipv4 {
        IpNet::V4(ipnet::Ipv4Net::default())
    } else {
        IpNet::V6(ipnet::Ipv6Net::default())
    };
    let gateways = gateways.iter().filter(|gateway| gateway.is_ipv4() == ipv4);
    for (metric, &gateway) in (ROUTE_METRIC..).zip(gateways) {
        state.routes.insert(RouteSpec {
            table,
            destination: default,
            metric,
            target: RouteTarget::Via {
                gateway,
                interface: interface.to_owned(),
            },
        });
    }
    state.routes.insert(RouteSpec {
        table,
        destination: default,
        metric: UNREACHABLE_METRIC,
        target: RouteTarget::Unreachable,
    });
}

#[cfg(test)]
mod tests;
