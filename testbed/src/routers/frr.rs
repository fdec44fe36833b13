//! FRR (zebra and bgpd) as a telco router, queried with `vtysh … json`.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

use serde_json::Value;

use super::{
    Family, FlowRoute, RouterSetup, SessionState, UnicastRoute, community_strings, spawn_daemon,
    write,
};
use crate::LabError;
use crate::sandbox::SandboxHandle;
use crate::wait::{self, NotYet};

pub fn afi(family: Family) -> &'static str {
    match family {
        Family::Ipv4 => "ipv4",
        Family::Ipv6 => "ipv6",
    }
}

/// The next hops RTBH routes are pointed at: documentation space for IPv4,
/// the discard-only prefix (RFC 6666) for IPv6. The router holds a
/// blackhole route for each.
pub const DISCARD_V4: &str = "203.0.113.255";
pub const DISCARD_V6: &str = "100::1";

pub fn config(setup: &RouterSetup, log: &Path) -> String {
    let mut out = format!(
        "! Written by ixgate-testbed for {node}.\nfrr defaults traditional\nhostname {node}\nlog file {log}\n!\n",
        node = setup.node,
        log = log.display()
    );
    // RTBH the way FRR does it (RFC 3882): a route with one of the RTBH
    // communities gets the well-known BLACKHOLE community (RFC 7999) and a
    // discard next hop, which resolves into a blackhole route.
    let mut rtbh: Vec<String> = setup
        .neighbors
        .iter()
        .flat_map(|n| community_strings(&n.rtbh_communities))
        .collect();
    rtbh.sort();
    rtbh.dedup();
    for community in &rtbh {
        // One line each: a line with several communities matches only
        // routes that carry all of them.
        let _ = writeln!(out, "bgp community-list standard RTBH permit {community}");
    }
    if !rtbh.is_empty() {
        for (family, next_hop) in [
            ("V4", format!("ip next-hop {DISCARD_V4}")),
            ("V6", format!("ipv6 next-hop global {DISCARD_V6}")),
        ] {
            let _ = write!(
                out,
                "!\nroute-map FROM-IXGATE-{family} permit 10\n match community RTBH\n set community blackhole additive\n set {next_hop}\nroute-map FROM-IXGATE-{family} permit 20\n"
            );
        }
        out.push_str("!\n");
    }
    let _ = write!(
        out,
        "router bgp {asn}\n bgp router-id {id}\n no bgp ebgp-requires-policy\n no bgp default ipv4-unicast\n no bgp network import-check\n",
        asn = setup.asn,
        id = setup.router_id
    );
    for neighbor in &setup.neighbors {
        let address = neighbor.address;
        let keepalive = (neighbor.hold_time / 3).max(1);
        let _ = write!(
            out,
            " neighbor {address} remote-as {asn}\n neighbor {address} update-source {local}\n neighbor {address} timers {keepalive} {hold}\n neighbor {address} timers connect 1\n",
            asn = neighbor.asn,
            local = neighbor.local,
            hold = neighbor.hold_time
        );
        if let Some(password) = &neighbor.password {
            let _ = writeln!(out, " neighbor {address} password {password}");
        }
        if neighbor.gtsm {
            let _ = writeln!(out, " neighbor {address} ttl-security hops 1");
        }
        if !neighbor.rtbh_communities.is_empty() {
            // The discard next hop is not on the peering LAN.
            let _ = writeln!(out, " neighbor {address} disable-connected-check");
        }
    }
    for family in ["ipv4", "ipv6"] {
        let members: Vec<_> = setup
            .neighbors
            .iter()
            .filter(|n| n.address.is_ipv4() == (family == "ipv4"))
            .collect();
        if members.is_empty() {
            continue;
        }
        let _ = writeln!(out, " address-family {family} unicast");
        // A telco's customer networks (connected, so they are in the RIB).
        for customer in &setup.customers {
            if customer.network.addr().is_ipv4() == (family == "ipv4") {
                let _ = writeln!(out, "  network {}", customer.network);
            }
        }
        for neighbor in &members {
            let _ = writeln!(out, "  neighbor {} activate", neighbor.address);
            if !neighbor.rtbh_communities.is_empty() {
                let suffix = if family == "ipv4" { "V4" } else { "V6" };
                let _ = writeln!(
                    out,
                    "  neighbor {} route-map FROM-IXGATE-{suffix} in",
                    neighbor.address
                );
            }
        }
        out.push_str(" exit-address-family\n");
        if members.iter().any(|n| n.flowspec) {
            let _ = writeln!(out, " address-family {family} flowspec");
            for neighbor in members.iter().filter(|n| n.flowspec) {
                let _ = writeln!(out, "  neighbor {} activate", neighbor.address);
            }
            out.push_str(" exit-address-family\n");
        }
    }
    out
}

fn zserv(run_dir: &Path) -> String {
    run_dir.join("zserv.api").to_string_lossy().into_owned()
}

pub fn start(
    setup: &RouterSetup,
    sandbox: &SandboxHandle,
    run_dir: &Path,
) -> Result<Vec<Child>, LabError> {
    let zebra_conf = run_dir.join("zebra.conf");
    let bgpd_conf = run_dir.join("bgpd.conf");
    write(&zebra_conf, &format!("hostname {}\n", setup.node))?;
    write(&bgpd_conf, &config(setup, &run_dir.join("bgpd.log")))?;
    let vty = run_dir.to_string_lossy().into_owned();
    let zserv = zserv(run_dir);
    // FRR drops to its own user (root would need the frrvty group), so the
    // router's run directory becomes that user's.
    let mut chown = Command::new("chown");
    chown.args(["-R", "frr:frr"]).arg(run_dir);
    SandboxHandle::run(chown)?;
    let common = ["-u", "frr", "-g", "frr", "--vty_socket", &vty, "-z", &zserv];
    // Before zebra starts, so that it reads them with the kernel's routes.
    if setup
        .neighbors
        .iter()
        .any(|n| !n.rtbh_communities.is_empty())
    {
        for discard in [DISCARD_V4, DISCARD_V6] {
            // `replace`: a restarted router finds them still there.
            sandbox.ip(&["-n", &setup.node, "route", "replace", "blackhole", discard])?;
        }
    }
    let zebra_conf = zebra_conf.to_string_lossy().into_owned();
    let zebra_pid = run_dir.join("zebra.pid").to_string_lossy().into_owned();
    let mut zebra_args = vec!["-f", zebra_conf.as_str(), "-i", zebra_pid.as_str()];
    zebra_args.extend(common);
    let zebra = spawn_daemon(
        sandbox,
        &setup.node,
        &run_dir.join("zebra.out"),
        "/usr/lib/frr/zebra",
        &zebra_args,
    )?;
    // bgpd must find zebra's socket, or it will not install routes.
    wait::until(Duration::from_secs(10), "zebra's socket", || {
        if Path::new(&zserv).exists() {
            Ok(())
        } else {
            Err(NotYet::Pending(format!("no {zserv}")))
        }
    })?;
    let bgpd_conf = bgpd_conf.to_string_lossy().into_owned();
    let bgpd_pid = run_dir.join("bgpd.pid").to_string_lossy().into_owned();
    let mut bgpd_args = vec![
        "-f",
        bgpd_conf.as_str(),
        "-i",
        bgpd_pid.as_str(),
        "-A",
        "127.0.0.1",
    ];
    bgpd_args.extend(common);
    let bgpd = spawn_daemon(
        sandbox,
        &setup.node,
        &run_dir.join("bgpd.out"),
        "/usr/lib/frr/bgpd",
        &bgpd_args,
    )?;
    Ok(vec![zebra, bgpd])
}

/// `vtysh -c "ARGS"` against this router's daemons.
pub fn cli(sandbox: &SandboxHandle, node: &str, run_dir: &Path, args: &[&str]) -> Command {
    let mut command = sandbox.node_command(node, "vtysh");
    command
        .arg("--vty_socket")
        .arg(run_dir)
        .arg("-c")
        .arg(args.join(" "));
    command
}

fn json(text: &str) -> Result<Value, String> {
    serde_json::from_str(text).map_err(|error| format!("vtysh printed no JSON ({error}): {text}"))
}

/// From `show bgp neighbors json`: `{ "<address>": { "bgpState": … } }`.
pub fn session_state(text: &str, neighbor: IpAddr) -> Result<SessionState, String> {
    let neighbors = json(text)?;
    let state = neighbors[neighbor.to_string()]["bgpState"]
        .as_str()
        .ok_or_else(|| format!("no neighbour {neighbor} in: {text}"))?;
    SessionState::parse(state).ok_or_else(|| format!("unknown BGP state {state}"))
}

/// From `show bgp ipv4 unicast json`: the prefixes in the table.
pub fn prefixes(text: &str) -> Result<Vec<String>, String> {
    let table = json(text)?;
    Ok(table["routes"]
        .as_object()
        .map(|routes| routes.keys().cloned().collect())
        .unwrap_or_default())
}

/// From `show bgp ipv4 unicast PREFIX json`: every path with its AS path
/// and communities.
pub fn unicast_routes(text: &str) -> Result<Vec<UnicastRoute>, String> {
    let detail = json(text)?;
    let prefix = detail["prefix"]
        .as_str()
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| format!("no prefix in: {text}"))?;
    let mut routes = Vec::new();
    for path in detail["paths"].as_array().into_iter().flatten() {
        let Some(from) = path["peer"]["peerId"].as_str().and_then(|p| p.parse().ok()) else {
            continue;
        };
        let words = |value: &Value| -> Vec<String> {
            value["string"]
                .as_str()
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_owned)
                .collect()
        };
        routes.push(UnicastRoute {
            prefix,
            from,
            as_path: words(&path["aspath"])
                .iter()
                .filter_map(|asn| asn.parse().ok())
                .collect(),
            communities: words(&path["community"])
                .iter()
                .filter_map(|c| community(c))
                .collect(),
            large_communities: words(&path["largeCommunity"])
                .iter()
                .filter_map(|c| c.parse().ok())
                .collect(),
        });
    }
    Ok(routes)
}

/// FRR names the well-known communities.
fn community(text: &str) -> Option<ixgate_policy::types::Community> {
    use ixgate_policy::types::Community;
    match text {
        "blackhole" => Some(Community::BLACKHOLE),
        "noExport" | "no-export" => Some(Community::NO_EXPORT),
        "gshut" | "graceful-shutdown" => Some(Community::GRACEFUL_SHUTDOWN),
        _ => text.parse().ok(),
    }
}

/// The match components FRR prints, as the key that ties a rule of the
/// detail list to its path in the summary.
fn flow_key(object: &Value) -> String {
    [
        "to", "from", "proto", "dstp", "srcp", "port", "len", "tcp", "icmp", "dscp", "fragment",
    ]
    .iter()
    .filter_map(|key| {
        object[key]
            .as_str()
            .map(|value| format!("{key} {}", value.trim()))
    })
    .collect::<Vec<_>>()
    .join(", ")
}

/// `"= 6 "` → 6: only equality matches are normalised.
fn equal<T: std::str::FromStr>(value: &Value) -> Option<T> {
    value
        .as_str()?
        .trim()
        .strip_prefix('=')?
        .trim()
        .parse()
        .ok()
}

/// From `show bgp … flowspec detail json` (a flat list: the rule's
/// components, then `ecomlist` with its actions, then `time`) and
/// `show bgp … flowspec json` (which names the peer of each path).
pub fn flow_routes(summary: &str, detail: &str) -> Result<Vec<FlowRoute>, String> {
    let mut peers = std::collections::BTreeMap::new();
    if !summary.trim().is_empty() {
        for paths in json(summary)?["routes"]
            .as_object()
            .into_iter()
            .flat_map(|routes| routes.values())
        {
            for path in paths.as_array().into_iter().flatten() {
                if let Some(peer) = path["peerId"]
                    .as_str()
                    .and_then(|p| p.parse::<IpAddr>().ok())
                {
                    peers.insert(flow_key(path), peer);
                }
            }
        }
    }
    // FRR prints nothing at all for a family it does not carry.
    if detail.trim().is_empty() {
        return Ok(Vec::new());
    }
    let mut routes: Vec<FlowRoute> = Vec::new();
    // One JSON array per rule, one after the other.
    let arrays = serde_json::Deserializer::from_str(detail)
        .into_iter::<Value>()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| format!("vtysh printed no JSON ({error}): {detail}"))?;
    for object in arrays.iter().filter_map(Value::as_array).flatten() {
        if let Some(actions) = object["ecomlist"].as_str() {
            if let Some(route) = routes.last_mut() {
                route.rate_bytes = actions
                    .split("FS:rate")
                    .nth(1)
                    .and_then(|rest| rest.split_whitespace().next())
                    .and_then(|rate| rate.parse().ok());
            }
            continue;
        }
        let key = flow_key(object);
        if key.is_empty() {
            continue;
        }
        routes.push(FlowRoute {
            from: peers.get(&key).copied(),
            destination: object["to"].as_str().and_then(|p| p.parse().ok()),
            source: object["from"].as_str().and_then(|p| p.parse().ok()),
            protocol: equal(&object["proto"]),
            destination_port: equal(&object["dstp"]),
            rate_bytes: None,
            text: key,
        });
    }
    Ok(routes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_routes_from_detail_and_summary() {
        let detail = r#"[{"to":"192.0.2.10/32","proto":"= 6 ","dstp":"= 443 "},{"ecomlist":"FS:rate 0.000000"},{"time":"00:00:03"}]"#;
        let summary = r#"{"routes": { "to 192.0.2.10/32 proto = 6  dstp = 443 /13": [{"valid":true,"to":"192.0.2.10/32","proto":"= 6 ","dstp":"= 443 ","peerId":"198.51.100.11"}]}}"#;
        let routes = flow_routes(summary, detail).unwrap();
        let expected = FlowRoute {
            from: Some("198.51.100.11".parse().unwrap()),
            ..FlowRoute::stand_in_discard()
        };
        assert_eq!(routes.len(), 1);
        assert!(routes[0].matches(&expected), "{routes:?}");
        assert_eq!(flow_routes("", "").unwrap(), []);
        // Two rules: two arrays, one after the other.
        let two = format!(
            "{detail}\n{}\n",
            r#"[{"to":"192.0.2.10/32","proto":"= 17 ","dstp":"= 53 "},{"ecomlist":"FS:rate 0.000000"}]"#
        );
        let routes = flow_routes("", &two).unwrap();
        assert_eq!(routes.len(), 2, "{routes:?}");
        assert_eq!(routes[1].protocol, Some(17));
        assert_eq!(routes[1].rate_bytes, Some(0.0));
    }

    #[test]
    fn unicast_paths_with_communities() {
        let detail = r#"{"prefix":"192.0.2.0/24","paths":[{"aspath":{"string":"65000 65000"},"community":{"string":"65010:100 blackhole"},"largeCommunity":{"string":"65010:1:100"},"peer":{"peerId":"198.51.100.12"}}]}"#;
        let routes = unicast_routes(detail).unwrap();
        assert_eq!(routes[0].as_path, [65000, 65000]);
        assert_eq!(
            routes[0].communities,
            [
                "65010:100".parse().unwrap(),
                ixgate_policy::types::Community::BLACKHOLE
            ]
        );
        assert_eq!(
            routes[0].large_communities,
            ["65010:1:100".parse().unwrap()]
        );
    }
}
