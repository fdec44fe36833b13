//! Waits for what tests expect of a lab's routers: a state with a deadline,
//! and on time-out what was seen instead.

use std::net::IpAddr;
use std::time::Duration;

use crate::routers::{Family, FlowRoute, Router, SessionState, UnicastRoute};
use crate::wait::{self, NotYet};
use crate::{Lab, LabError};

/// Sessions come up within seconds (connect retry is short everywhere);
/// the deadline is generous for a loaded CI machine.
pub const SESSION_DEADLINE: Duration = Duration::from_mins(1);
/// Routes follow within a second or two of a change.
pub const ROUTE_DEADLINE: Duration = Duration::from_secs(30);

fn address(text: &str) -> Result<IpAddr, LabError> {
    text.parse()
        .map_err(|_| LabError::NoSuchNode(text.to_owned()))
}

/// Waits until `router` has an Established session with every neighbour.
pub fn established(router: &Router, neighbors: &[&str]) -> Result<(), LabError> {
    for neighbor in neighbors {
        let neighbor_ip = address(neighbor)?;
        wait::until(
            SESSION_DEADLINE,
            &format!("{} ↔ {neighbor} Established", router.node),
            || match router.session_state(neighbor_ip) {
                Ok(SessionState::Established) => Ok(()),
                Ok(state) => Err(NotYet::Pending(format!("{state:?}"))),
                Err(error) => Err(NotYet::Pending(error.to_string())),
            },
        )?;
    }
    Ok(())
}

/// Waits until `router` holds `prefix` from each neighbour with exactly the
/// AS path given, and returns those routes.
pub fn as_paths(
    router: &Router,
    family: Family,
    prefix: &str,
    expected: &[(&str, Vec<u32>)],
) -> Result<Vec<UnicastRoute>, LabError> {
    let expected: Vec<(IpAddr, &Vec<u32>)> = expected
        .iter()
        .map(|(neighbor, path)| address(neighbor).map(|ip| (ip, path)))
        .collect::<Result<_, _>>()?;
    wait::until(
        ROUTE_DEADLINE,
        &format!("{}: {prefix} with the expected AS paths", router.node),
        || {
            let table = router
                .unicast_routes(family)
                .map_err(|e| NotYet::Pending(e.to_string()))?;
            let matching: Vec<UnicastRoute> = expected
                .iter()
                .filter_map(|(from, path)| {
                    table
                        .iter()
                        .find(|r| {
                            r.prefix.to_string() == prefix && r.from == *from && r.as_path == **path
                        })
                        .cloned()
                })
                .collect();
            if matching.len() == expected.len() {
                Ok(matching)
            } else {
                Err(NotYet::Pending(format!("{table:?}")))
            }
        },
    )
}

/// Waits until every telco router holds every ixgate node's anycast
/// prefixes with the AS path the node's plan gives for that telco: the
/// paired node's shortest, the others with their prepends.
pub fn anycast_as_planned(lab: &Lab) -> Result<(), LabError> {
    for node in &lab.topology().nodes {
        let crate::topology::Role::Telco { telco, .. } = &node.role else {
            continue;
        };
        let router = lab.router(&node.name)?;
        for family in [Family::Ipv4, Family::Ipv6] {
            let mut expected: Vec<(String, String, Vec<u32>)> = Vec::new();
            for config in lab.site().values() {
                let plan = ixgate_policy::plan(config, &ixgate_policy::Drained::Nothing);
                for peer in plan.peers.iter().filter(|p| {
                    p.telco.as_str() == telco && p.neighbor.is_ipv4() == (family == Family::Ipv4)
                }) {
                    for prefix in &peer.announce {
                        let path = peer.as_path.iter().map(|asn| asn.get()).collect();
                        expected.push((prefix.to_string(), peer.local.to_string(), path));
                    }
                }
            }
            let mut prefixes: Vec<&String> = expected.iter().map(|(prefix, ..)| prefix).collect();
            prefixes.sort();
            prefixes.dedup();
            for prefix in prefixes {
                let paths: Vec<(&str, Vec<u32>)> = expected
                    .iter()
                    .filter(|(p, ..)| p == prefix)
                    .map(|(_, from, path)| (from.as_str(), path.clone()))
                    .collect();
                as_paths(router, family, prefix, &paths)?;
            }
        }
    }
    Ok(())
}

/// Waits until `router` no longer holds `prefix` from `from`.
pub fn gone(router: &Router, family: Family, prefix: &str, from: &str) -> Result<(), LabError> {
    let from = address(from)?;
    wait::until(
        ROUTE_DEADLINE,
        &format!("{}: {prefix} from {from} to go", router.node),
        || {
            let table = router
                .unicast_routes(family)
                .map_err(|e| NotYet::Pending(e.to_string()))?;
            if table
                .iter()
                .any(|r| r.prefix.to_string() == prefix && r.from == from)
            {
                Err(NotYet::Pending(format!("{table:?}")))
            } else {
                Ok(())
            }
        },
    )
}

/// Waits until `router` holds a Flowspec rule like `expected` (its `from`,
/// when set, included), and returns it.
pub fn flow(router: &Router, family: Family, expected: &FlowRoute) -> Result<FlowRoute, LabError> {
    wait::until(
        ROUTE_DEADLINE,
        &format!("{}: {family:?} rule {expected:?}", router.node),
        || {
            let table = router
                .flow_routes(family)
                .map_err(|e| NotYet::Pending(e.to_string()))?;
            table
                .iter()
                .find(|route| route.matches(expected))
                .cloned()
                .ok_or_else(|| NotYet::Pending(format!("{table:?}")))
        },
    )
}

/// Waits until `router` holds no Flowspec rule of `family`.
pub fn no_flows(router: &Router, family: Family) -> Result<(), LabError> {
    wait::until(
        ROUTE_DEADLINE,
        &format!("{}: no {family:?} rules", router.node),
        || {
            let table = router
                .flow_routes(family)
                .map_err(|e| NotYet::Pending(e.to_string()))?;
            if table.is_empty() {
                Ok(())
            } else {
                Err(NotYet::Pending(format!("{table:?}")))
            }
        },
    )
}

/// The kernel route type for `prefix` in `node`: "blackhole", "unicast", …
pub fn kernel_route_type(lab: &Lab, node: &str, prefix: &str) -> Result<String, String> {
    let family = if prefix.contains(':') { "-6" } else { "-4" };
    let output = lab
        .exec(node, "ip", &[family, "-j", "route", "show", prefix])
        .map_err(|error| error.to_string())?;
    let routes: serde_json::Value =
        serde_json::from_slice(&output.stdout).map_err(|error| error.to_string())?;
    let route = routes
        .as_array()
        .and_then(|routes| routes.first())
        .ok_or_else(|| format!("no route in {routes}"))?;
    Ok(route["type"].as_str().unwrap_or("unicast").to_owned())
}

/// Waits until `node`'s kernel routes `prefix` as `kind`.
pub fn kernel_route(lab: &Lab, node: &str, prefix: &str, kind: &str) -> Result<(), LabError> {
    wait::until(
        ROUTE_DEADLINE,
        &format!("{node}: {prefix} as {kind}"),
        || match kernel_route_type(lab, node, prefix) {
            Ok(seen) if seen == kind => Ok(()),
            seen => Err(NotYet::Pending(format!("{seen:?}"))),
        },
    )
}
