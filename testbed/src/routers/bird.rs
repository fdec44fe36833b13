//! BIRD 2 as a telco router. BIRD 2.0 has no JSON output, so the answers of
//! `birdc show …` are parsed as text.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::Path;
use std::process::{Child, Command};

use ipnet::IpNet;
use ixgate_policy::types::{Community, LargeCommunity};

use super::{FlowRoute, Neighbor, RouterSetup, SessionState, UnicastRoute, spawn_daemon, write};
use crate::LabError;
use crate::sandbox::SandboxHandle;

fn socket(run_dir: &Path) -> std::path::PathBuf {
    run_dir.join("bird.ctl")
}

pub fn config(setup: &RouterSetup, log: &Path) -> String {
    let mut out = format!(
        "# Written by ixgate-testbed for {node}.\nrouter id {id};\nlog \"{log}\" all;\n\nprotocol device {{ }}\n\n\
         # Flowspec validation (RFC 8955 §6) needs a trie on the unicast tables.\n\
         ipv4 table master4 {{ trie on; }};\nipv6 table master6 {{ trie on; }};\nflow4 table flowtab4;\nflow6 table flowtab6;\n\n\
         # Learned routes go to the kernel: the telco forwards its customers' traffic by them.\n\
         protocol kernel {{ ipv4 {{ export all; }}; }}\nprotocol kernel {{ ipv6 {{ export all; }}; }}\n",
        node = setup.node,
        id = setup.router_id,
        log = log.display(),
    );
    if !setup.customers.is_empty() {
        let mut interfaces: Vec<String> = setup
            .customers
            .iter()
            .map(|customer| format!("\"{}\"", customer.interface))
            .collect();
        interfaces.dedup();
        // The customer networks as BIRD sees them on the interfaces (BIRD
        // does not give device routes back to the kernel).
        let _ = writeln!(
            out,
            "\nprotocol direct customers {{ ipv4; ipv6; interface {}; }}",
            interfaces.join(", ")
        );
    }
    for (name, family, is_v4) in [("originate4", "ipv4", true), ("originate6", "ipv6", false)] {
        let routes: Vec<String> = setup
            .originate
            .iter()
            .filter(|prefix| prefix.addr().is_ipv4() == is_v4)
            .map(|prefix| format!("route {prefix} blackhole;"))
            .collect();
        if !routes.is_empty() {
            let _ = writeln!(
                out,
                "\nprotocol static {name} {{ {family}; {} }}",
                routes.join(" ")
            );
        }
    }
    for neighbor in &setup.neighbors {
        let (unicast, flow, table) = if neighbor.address.is_ipv4() {
            ("ipv4", "flow4", "4")
        } else {
            ("ipv6", "flow6", "6")
        };
        // RFC 7999: a route carrying one of the RTBH communities is
        // turned into a blackhole.
        let filter = format!("from_{}", neighbor.name);
        let _ = write!(out, "\nfilter {filter} {{\n");
        for community in &neighbor.rtbh_communities {
            let _ = writeln!(
                out,
                "  if (({asn},{value}) ~ bgp_community) then dest = RTD_BLACKHOLE;",
                asn = community.asn,
                value = community.value
            );
        }
        out.push_str("  accept;\n}\n");
        let export = export_filter(&mut out, setup, neighbor);
        let _ = write!(
            out,
            "\nprotocol bgp {name} {{\n  local {local} as {asn};\n  neighbor {address} as {peer_asn};\n  hold time {hold};\n  connect retry time 1;\n",
            name = neighbor.name,
            local = neighbor.local,
            asn = setup.asn,
            address = neighbor.address,
            peer_asn = neighbor.asn,
            hold = neighbor.hold_time,
        );
        if let Some(password) = &neighbor.password {
            let _ = writeln!(out, "  password {password:?};");
        }
        if neighbor.gtsm {
            out.push_str("  ttl security on;\n");
        }
        let _ = writeln!(
            out,
            "  {unicast} {{ import filter {filter}; export {export}; }};"
        );
        if neighbor.flowspec {
            let _ = writeln!(
                out,
                "  {flow} {{ table flowtab{table}; import all; export none; validate on; base table master{table}; }};"
            );
        }
        out.push_str("}\n");
    }
    out
}

pub fn start(
    setup: &RouterSetup,
    sandbox: &SandboxHandle,
    run_dir: &Path,
) -> Result<Vec<Child>, LabError> {
    let config_path = run_dir.join("bird.conf");
    write(&config_path, &config(setup, &run_dir.join("bird.log")))?;
    let daemon = spawn_daemon(
        sandbox,
        &setup.node,
        &run_dir.join("bird.out"),
        "bird",
        &[
            "-f",
            "-c",
            &config_path.to_string_lossy(),
            "-s",
            &socket(run_dir).to_string_lossy(),
            "-P",
            &run_dir.join("bird.pid").to_string_lossy(),
        ],
    )?;
    Ok(vec![daemon])
}

pub fn cli(sandbox: &SandboxHandle, node: &str, run_dir: &Path, args: &[&str]) -> Command {
    let mut command = sandbox.node_command(node, "birdc");
    command.arg("-s").arg(socket(run_dir)).args(args);
    command
}

/// From `show protocols all NAME`: the `BGP state:` line.
pub fn session_state(text: &str) -> Result<SessionState, String> {
    text.lines()
        .find_map(|line| line.trim().strip_prefix("BGP state:"))
        .and_then(|state| SessionState::parse(state.trim()))
        .ok_or_else(|| format!("no BGP state in: {text}"))
}

/// One route of `show route all`: its first line and its attribute lines.
struct Block<'a> {
    /// The network: a prefix, or `flow4 { … }`.
    network: String,
    /// The protocol (session) it came from.
    protocol: String,
    attributes: Vec<(&'a str, &'a str)>,
}

/// Splits `show route all` into routes. A line at column 0 starts a new
/// network; a line indented with spaces starts another route of the same
/// network; a line indented with a tab is an attribute of the route.
fn blocks(text: &str) -> Vec<Block<'_>> {
    let mut blocks: Vec<Block<'_>> = Vec::new();
    let mut network = String::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with("Table ") || line.starts_with("BIRD ") {
            continue;
        }
        if let Some(attribute) = line.strip_prefix('\t') {
            if let (Some(block), Some((key, value))) =
                (blocks.last_mut(), attribute.split_once(':'))
            {
                block.attributes.push((key.trim(), value.trim()));
            }
            continue;
        }
        // "<network>  unicast [proto time] * (100) [AS65000i]"
        let Some(open) = line.find(" [") else {
            continue;
        };
        let head = line[..open].trim();
        let protocol = line[open + 2..]
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned();
        if !line.starts_with(' ') {
            // Unicast routes name their type after the network; flow
            // routes do not.
            match head.rsplit_once(char::is_whitespace) {
                Some((kept, "unicast" | "blackhole" | "unreachable" | "prohibit")) => kept.trim(),
                _ => head,
            }
            .clone_into(&mut network);
        }
        blocks.push(Block {
            network: network.clone(),
            protocol,
            attributes: Vec::new(),
        });
    }
    blocks
}

fn neighbor_of(protocol: &str, sessions: &BTreeMap<IpAddr, String>) -> Option<IpAddr> {
    sessions
        .iter()
        .find(|(_, name)| name.as_str() == protocol)
        .map(|(address, _)| *address)
}

/// `(65010,100) (65535,666)`
fn communities(text: &str) -> Vec<Community> {
    text.split(')')
        .filter_map(|part| part.trim().strip_prefix('('))
        .filter_map(|pair| pair.replace(' ', "").replace(',', ":").parse().ok())
        .collect()
}

/// `(65010, 1, 100) (65010, 2, 200)`
fn large_communities(text: &str) -> Vec<LargeCommunity> {
    text.split(')')
        .filter_map(|part| part.trim().strip_prefix('('))
        .filter_map(|triple| triple.replace(' ', "").replace(',', ":").parse().ok())
        .collect()
}

pub fn unicast_routes(text: &str, sessions: &BTreeMap<IpAddr, String>) -> Vec<UnicastRoute> {
    let mut routes = Vec::new();
    for block in blocks(text) {
        let Ok(prefix) = block.network.parse::<IpNet>() else {
            continue;
        };
        let Some(from) = neighbor_of(&block.protocol, sessions) else {
            continue;
        };
        let mut route = UnicastRoute {
            prefix,
            from,
            as_path: Vec::new(),
            communities: Vec::new(),
            large_communities: Vec::new(),
        };
        for (key, value) in block.attributes {
            match key {
                "BGP.as_path" => {
                    route.as_path = value
                        .split_whitespace()
                        .filter_map(|asn| asn.parse().ok())
                        .collect();
                }
                "BGP.community" => route.communities = communities(value),
                "BGP.large_community" => route.large_communities = large_communities(value),
                _ => {}
            }
        }
        routes.push(route);
    }
    routes
}

/// `flow4 { dst 192.0.2.10/32; proto 6; dport 443; }` with
/// `BGP.ext_community: (generic, 0x80060000, 0x0)`.
pub fn flow_routes(text: &str, sessions: &BTreeMap<IpAddr, String>) -> Vec<FlowRoute> {
    let mut routes = Vec::new();
    for block in blocks(text) {
        let Some(body) = block
            .network
            .split_once('{')
            .and_then(|(_, rest)| rest.rsplit_once('}'))
            .map(|(body, _)| body)
        else {
            continue;
        };
        let mut route = FlowRoute {
            from: neighbor_of(&block.protocol, sessions),
            text: block.network.clone(),
            ..FlowRoute::default()
        };
        for component in body.split(';').map(str::trim) {
            let (name, value) = component.rsplit_once(' ').unwrap_or((component, ""));
            match name {
                "dst" => route.destination = value.parse().ok(),
                "src" => route.source = value.parse().ok(),
                "proto" | "next header" => route.protocol = value.parse().ok(),
                "dport" => route.destination_port = value.parse().ok(),
                _ => {}
            }
        }
        for (key, value) in block.attributes {
            if key == "BGP.ext_community" {
                route.rate_bytes = traffic_rate(value);
            }
        }
        routes.push(route);
    }
    routes
}

/// RFC 8955 §7.3 traffic-rate-bytes from `(generic, 0x8006AAAA, 0xRRRRRRRR)`:
/// type 0x80, subtype 0x06, 2 bytes of AS, the rate as an IEEE float.
fn traffic_rate(text: &str) -> Option<f32> {
    text.split(')').find_map(|part| {
        let fields: Vec<&str> = part
            .trim()
            .trim_start_matches('(')
            .split(',')
            .map(str::trim)
            .collect();
        match fields.as_slice() {
            ["generic", high, low] => {
                let high = u32::from_str_radix(high.trim_start_matches("0x"), 16).ok()?;
                let low = u32::from_str_radix(low.trim_start_matches("0x"), 16).ok()?;
                (high >> 16 == 0x8006).then(|| f32::from_bits(low))
            }
            _ => None,
        }
    })
}

/// The export of one neighbour: a telco's customer networks as they are,
/// or a stand-in's originated prefixes with this neighbour's prepends and
/// communities; written into `out`, named in the result.
fn export_filter(out: &mut String, setup: &RouterSetup, neighbor: &Neighbor) -> String {
    if !setup.customers.is_empty() {
        // A telco: its customer networks, as they are.
        let name = format!("to_{}", neighbor.name);
        let _ = write!(
            out,
            "\nfilter {name} {{\n  if proto = \"customers\" then accept;\n  reject;\n}}\n"
        );
        format!("filter {name}")
    } else if setup.originate.is_empty() {
        "none".to_owned()
    } else {
        let name = format!("to_{}", neighbor.name);
        let _ = write!(
            out,
            "\nfilter {name} {{\n  if proto = \"originate4\" || proto = \"originate6\" then {{\n"
        );
        for _ in 0..neighbor.prepends {
            let _ = writeln!(out, "    bgp_path.prepend({});", setup.asn);
        }
        for community in &neighbor.communities {
            let _ = writeln!(
                out,
                "    bgp_community.add(({},{}));",
                community.asn, community.value
            );
        }
        for large in &neighbor.large_communities {
            let _ = writeln!(
                out,
                "    bgp_large_community.add(({},{},{}));",
                large.global, large.local1, large.local2
            );
        }
        out.push_str("    accept;\n  }\n  reject;\n}\n");
        format!("filter {name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTES: &str = "Table master4:
192.0.2.0/24         unicast [node_1_v4 18:20:01.123] * (100) [AS65000i]
\tvia 198.51.100.11 on ixp0
\tType: BGP univ
\tBGP.origin: IGP
\tBGP.as_path: 65000
\tBGP.next_hop: 198.51.100.11
\tBGP.community: (65010,100) (65535,666)
\tBGP.large_community: (65010, 1, 100)
                     unicast [node_2_v4 18:20:02.456] (100) [AS65000i]
\tvia 198.51.100.12 on ixp0
\tBGP.as_path: 65000 65000 65000
";

    #[test]
    fn parses_routes_of_two_sessions() {
        let sessions = BTreeMap::from([
            ("198.51.100.11".parse().unwrap(), "node_1_v4".to_owned()),
            ("198.51.100.12".parse().unwrap(), "node_2_v4".to_owned()),
        ]);
        let routes = unicast_routes(ROUTES, &sessions);
        assert_eq!(routes.len(), 2);
        assert_eq!(routes[0].as_path, [65000]);
        assert_eq!(
            routes[0].communities,
            ["65010:100".parse().unwrap(), Community::BLACKHOLE]
        );
        assert_eq!(
            routes[0].large_communities,
            ["65010:1:100".parse().unwrap()]
        );
        assert_eq!(routes[1].prefix, "192.0.2.0/24".parse::<IpNet>().unwrap());
        assert_eq!(routes[1].as_path, [65000, 65000, 65000]);
        assert_eq!(routes[1].from, "198.51.100.12".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn parses_flow_routes() {
        let text = "Table flowtab4:
flow4 { dst 192.0.2.10/32; proto 6; dport 443; }  [node_1_v4 18:18:59.043 from 198.51.100.11] * (100) [AS65000?]
\tType: BGP univ
\tBGP.ext_community: (generic, 0x80060000, 0x0)
";
        let sessions = BTreeMap::from([("198.51.100.11".parse().unwrap(), "node_1_v4".to_owned())]);
        let routes = flow_routes(text, &sessions);
        let expected = FlowRoute {
            from: Some("198.51.100.11".parse().unwrap()),
            ..FlowRoute::stand_in_discard()
        };
        assert_eq!(routes.len(), 1);
        assert!(routes[0].matches(&expected), "{routes:?}");
    }

    #[test]
    fn traffic_rate_is_an_ieee_float() {
        assert_eq!(
            traffic_rate("(generic, 0x80060000, 0x447a0000)"),
            Some(1000.0)
        );
        assert_eq!(traffic_rate("(generic, 0x80090000, 0xa)"), None);
    }

    #[test]
    fn session_state_line() {
        let text = "Name       Proto      Table      State  Since         Info\nnode_1_v4  BGP        ---        up     18:20:01.123  Established\n  BGP state:          Established\n";
        assert_eq!(session_state(text), Ok(SessionState::Established));
    }
}
