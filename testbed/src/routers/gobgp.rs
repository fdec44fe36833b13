//! GoBGP 3: as a telco router, or standing in for an ixgate node until the
//! appliance speaks BGP itself. Queried through `gobgp … -j`.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::Path;
use std::process::{Child, Command};

use serde_json::Value;

use super::{
    Family, FlowRoute, RouterSetup, SessionState, UnicastRoute, community_strings, spawn_daemon,
    write,
};
use crate::LabError;
use crate::sandbox::SandboxHandle;

/// The gRPC API listens on the node's own loopback; every namespace has
/// its own, so every GoBGP in the lab can use the same port.
const API: &str = "127.0.0.1:50051";

pub fn family(family: Family) -> &'static str {
    match family {
        Family::Ipv4 => "ipv4",
        Family::Ipv6 => "ipv6",
    }
}

pub fn config(setup: &RouterSetup) -> String {
    let mut out = format!(
        "# Written by ixgate-testbed for {node}.\n[global.config]\n  as = {asn}\n  router-id = \"{id}\"\n  port = 179\n",
        node = setup.node,
        asn = setup.asn,
        id = setup.router_id,
    );
    // Per-neighbour prepends and communities: one export statement each.
    let mut statements = String::new();
    for neighbor in &setup.neighbors {
        let _ = write!(
            out,
            "\n[[defined-sets.neighbor-sets]]\n  neighbor-set-name = \"{name}\"\n  neighbor-info-list = [\"{address}\"]\n",
            name = neighbor.name,
            address = neighbor.address
        );
        let _ = write!(
            statements,
            "\n  [[policy-definitions.statements]]\n    name = \"{name}\"\n    [policy-definitions.statements.conditions.match-neighbor-set]\n      neighbor-set = \"{name}\"\n    [policy-definitions.statements.actions]\n      route-disposition = \"accept-route\"\n",
            name = neighbor.name
        );
        if neighbor.prepends > 0 {
            let _ = write!(
                statements,
                "    [policy-definitions.statements.actions.bgp-actions.set-as-path-prepend]\n      as = \"{asn}\"\n      repeat-n = {count}\n",
                asn = setup.asn,
                count = neighbor.prepends
            );
        }
        if !neighbor.communities.is_empty() {
            let _ = write!(
                statements,
                "    [policy-definitions.statements.actions.bgp-actions.set-community]\n      options = \"add\"\n      [policy-definitions.statements.actions.bgp-actions.set-community.set-community-method]\n        communities-list = {list:?}\n",
                list = community_strings(&neighbor.communities)
            );
        }
        if !neighbor.large_communities.is_empty() {
            let list: Vec<String> = neighbor
                .large_communities
                .iter()
                .map(ToString::to_string)
                .collect();
            let _ = write!(
                statements,
                "    [policy-definitions.statements.actions.bgp-actions.set-large-community]\n      options = \"add\"\n      [policy-definitions.statements.actions.bgp-actions.set-large-community.set-large-community-method]\n        communities-list = {list:?}\n"
            );
        }
    }
    if !setup.neighbors.is_empty() {
        let _ = write!(
            out,
            "\n[[policy-definitions]]\n  name = \"per-neighbor-export\"{statements}\n[global.apply-policy.config]\n  export-policy-list = [\"per-neighbor-export\"]\n  default-export-policy = \"accept-route\"\n  default-import-policy = \"accept-route\"\n"
        );
    }
    for neighbor in &setup.neighbors {
        let family = if neighbor.address.is_ipv4() {
            "ipv4"
        } else {
            "ipv6"
        };
        let keepalive = (neighbor.hold_time / 3).max(1);
        let _ = write!(
            out,
            "\n[[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"{address}\"\n    peer-as = {asn}\n",
            address = neighbor.address,
            asn = neighbor.asn
        );
        if let Some(password) = &neighbor.password {
            let _ = writeln!(out, "    auth-password = {password:?}");
        }
        let _ = write!(
            out,
            "  [neighbors.transport.config]\n    local-address = \"{local}\"\n  [neighbors.timers.config]\n    hold-time = {hold}\n    keepalive-interval = {keepalive}\n    connect-retry = 1\n",
            local = neighbor.local,
            hold = neighbor.hold_time
        );
        if neighbor.gtsm {
            out.push_str(
                "  [neighbors.ttl-security.config]\n    enabled = true\n    ttl-min = 255\n",
            );
        }
        let _ = write!(
            out,
            "  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = \"{family}-unicast\"\n"
        );
        if neighbor.flowspec {
            let _ = write!(
                out,
                "  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = \"{family}-flowspec\"\n"
            );
        }
    }
    out
}

pub fn start(
    setup: &RouterSetup,
    sandbox: &SandboxHandle,
    run_dir: &Path,
) -> Result<Vec<Child>, LabError> {
    let config_path = run_dir.join("gobgpd.toml");
    write(&config_path, &config(setup))?;
    let config_arg = config_path.to_string_lossy();
    let daemon = spawn_daemon(
        sandbox,
        &setup.node,
        &run_dir.join("gobgpd.log"),
        "gobgpd",
        &[
            "-f",
            &config_arg,
            "-t",
            "toml",
            "--api-hosts",
            API,
            "--log-plain",
        ],
    )?;
    // Originate once the API answers.
    let originate = |prefix: &ipnet::IpNet| -> Result<(), LabError> {
        let family = if prefix.addr().is_ipv4() {
            "ipv4"
        } else {
            "ipv6"
        };
        let prefix = prefix.to_string();
        crate::wait::until(
            std::time::Duration::from_secs(10),
            "GoBGP's API to answer",
            || {
                SandboxHandle::run(cli(
                    sandbox,
                    &setup.node,
                    &[
                        "global", "rib", "add", "-a", family, &prefix, "origin", "igp",
                    ],
                ))
                .map(drop)
                .map_err(|error| crate::wait::NotYet::Pending(error.to_string()))
            },
        )
    };
    for prefix in &setup.originate {
        originate(prefix)?;
    }
    Ok(vec![daemon])
}

pub fn cli(sandbox: &SandboxHandle, node: &str, args: &[&str]) -> Command {
    let mut command = sandbox.node_command(node, "gobgp");
    command.args(["-u", "127.0.0.1", "-p", "50051"]).args(args);
    command
}

fn json(text: &str) -> Result<Value, String> {
    serde_json::from_str(text).map_err(|error| format!("gobgp printed no JSON ({error}): {text}"))
}

pub fn session_state(text: &str, neighbor: IpAddr) -> Result<SessionState, String> {
    let peers = json(text)?;
    let peer = peers
        .as_array()
        .into_iter()
        .flatten()
        .find(|peer| {
            peer["conf"]["neighbor_address"].as_str() == Some(neighbor.to_string().as_str())
        })
        .ok_or_else(|| format!("no neighbour {neighbor}"))?;
    let state = &peer["state"]["session_state"];
    // A protobuf enum: printed as its number (1 idle … 6 established).
    let state = match state.as_u64() {
        Some(1) => Some(SessionState::Idle),
        Some(2) => Some(SessionState::Connect),
        Some(3) => Some(SessionState::Active),
        Some(4) => Some(SessionState::OpenSent),
        Some(5) => Some(SessionState::OpenConfirm),
        Some(6) => Some(SessionState::Established),
        _ => state.as_str().and_then(SessionState::parse),
    };
    state.ok_or_else(|| format!("unknown session state {}", peer["state"]))
}

/// Path attribute type codes (IANA BGP Path Attributes registry).
const AS_PATH: u64 = 2;
const COMMUNITIES: u64 = 8;
const EXTENDED_COMMUNITIES: u64 = 16;
const LARGE_COMMUNITY: u64 = 32;

/// The neighbour a path of `gobgp global rib -j` was learned from; none for
/// a locally originated path.
fn learned_from(path: &Value) -> Option<IpAddr> {
    path["neighbor-ip"]
        .as_str()
        .or_else(|| path["neighbor_ip"].as_str())
        .and_then(|ip| ip.parse::<IpAddr>().ok())
        .filter(|ip| !ip.is_unspecified())
}

/// Every path of `gobgp global rib -j`: `{ "<nlri>": [path, …] }`.
fn paths(text: &str) -> Result<Vec<(String, Value)>, String> {
    let table = json(text)?;
    let mut paths = Vec::new();
    for (nlri, list) in table.as_object().into_iter().flatten() {
        for path in list.as_array().into_iter().flatten() {
            paths.push((nlri.clone(), path.clone()));
        }
    }
    Ok(paths)
}

fn attribute(path: &Value, code: u64) -> Option<&Value> {
    path["attrs"]
        .as_array()?
        .iter()
        .find(|attr| attr["type"].as_u64() == Some(code))
}

fn numbers(value: &Value) -> impl Iterator<Item = u64> + '_ {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_u64)
}

pub fn unicast_routes(text: &str) -> Result<Vec<UnicastRoute>, String> {
    let mut routes = Vec::new();
    for (_, path) in paths(text)? {
        let Some(from) = learned_from(&path) else {
            continue;
        };
        let Some(prefix) = path["nlri"]["prefix"].as_str().and_then(|p| p.parse().ok()) else {
            continue;
        };
        let as_path = attribute(&path, AS_PATH)
            .and_then(|attr| attr["as_paths"].as_array())
            .into_iter()
            .flatten()
            .flat_map(|segment| numbers(&segment["asns"]))
            .filter_map(|asn| u32::try_from(asn).ok())
            .collect();
        let communities = attribute(&path, COMMUNITIES)
            .into_iter()
            .flat_map(|attr| numbers(&attr["communities"]).collect::<Vec<_>>())
            .filter_map(|value| {
                let value = u32::try_from(value).ok()?;
                format!("{}:{}", value >> 16, value & 0xffff).parse().ok()
            })
            .collect();
        let large_communities = attribute(&path, LARGE_COMMUNITY)
            .and_then(|attr| attr["value"].as_array())
            .into_iter()
            .flatten()
            .filter_map(|c| {
                let part = |keys: [&str; 2]| keys.iter().find_map(|key| c[*key].as_u64());
                let global = part(["ASN", "global_admin"])?;
                let local1 = part(["LocalData1", "local_data1"])?;
                let local2 = part(["LocalData2", "local_data2"])?;
                format!("{global}:{local1}:{local2}").parse().ok()
            })
            .collect();
        routes.push(UnicastRoute {
            prefix,
            from,
            as_path,
            communities,
            large_communities,
        });
    }
    Ok(routes)
}

/// Flowspec component types (RFC 8955 §4.2.2).
const DESTINATION_PREFIX: u64 = 1;
const SOURCE_PREFIX: u64 = 2;
const IP_PROTOCOL: u64 = 3;
const DESTINATION_PORT: u64 = 5;

/// The value of a numeric component that is one equality match: the
/// operator byte has its end-of-list bit and, of `<`, `>` and `=`, only
/// `=` (RFC 8955 §4.2.1.1).
fn single_equal(items: &Value) -> Option<u64> {
    match items.as_array()?.as_slice() {
        [item] if item["op"].as_u64()? & 0x87 == 0x81 => item["value"].as_u64(),
        _ => None,
    }
}

pub fn flow_routes(text: &str) -> Result<Vec<FlowRoute>, String> {
    let mut routes = Vec::new();
    for (rule, path) in paths(text)? {
        let mut route = FlowRoute {
            from: learned_from(&path),
            text: rule,
            ..FlowRoute::default()
        };
        for component in path["nlri"]["value"].as_array().into_iter().flatten() {
            let value = &component["value"];
            let prefix = || value["prefix"].as_str().and_then(|p| p.parse().ok());
            match component["type"].as_u64() {
                Some(DESTINATION_PREFIX) => route.destination = prefix(),
                Some(SOURCE_PREFIX) => route.source = prefix(),
                Some(IP_PROTOCOL) => {
                    route.protocol = single_equal(value).and_then(|v| u8::try_from(v).ok());
                }
                Some(DESTINATION_PORT) => {
                    route.destination_port =
                        single_equal(value).and_then(|v| u16::try_from(v).ok());
                }
                _ => {}
            }
        }
        // RFC 8955 §7.3 traffic-rate-bytes: type 0x80, subtype 0x06.
        route.rate_bytes = attribute(&path, EXTENDED_COMMUNITIES)
            .and_then(|attr| attr["value"].as_array())
            .into_iter()
            .flatten()
            .find(|ec| ec["type"].as_u64() == Some(0x80) && ec["subtype"].as_u64() == Some(0x06))
            .and_then(|ec| ec["rate"].as_f64())
            // RFC 8955 §7.3 carries the rate as a 4-byte float.
            .map(|rate| {
                #[allow(clippy::cast_possible_truncation)]
                let rate = rate as f32;
                rate
            });
        routes.push(route);
    }
    Ok(routes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_rule_as_gobgp_prints_it() {
        let text = r#"{"[destination: 192.0.2.10/32][protocol: ==tcp][destination-port: ==443]":[{"nlri":{"value":[{"type":1,"value":{"prefix":"192.0.2.10/32"}},{"type":3,"value":[{"op":129,"value":6}]},{"type":5,"value":[{"op":145,"value":443}]}]},"best":true,"attrs":[{"type":1,"value":2},{"type":16,"value":[{"type":128,"subtype":6,"as":0,"rate":0}]}],"stale":false}]}"#;
        let routes = flow_routes(text).unwrap();
        assert_eq!(routes.len(), 1);
        assert!(
            routes[0].matches(&FlowRoute::stand_in_discard()),
            "{routes:?}"
        );
    }

    #[test]
    fn locally_originated_paths_are_not_learned() {
        let text = r#"{"192.0.2.0/24":[{"nlri":{"prefix":"192.0.2.0/24"},"best":true,"attrs":[{"type":1,"value":0},{"type":3,"nexthop":"0.0.0.0"}]}]}"#;
        assert_eq!(unicast_routes(text).unwrap(), []);
    }
}
