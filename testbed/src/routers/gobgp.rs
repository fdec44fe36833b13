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

pub fn unicast_routes(text: &str) -> Result<Vec<UnicastRoute>, String> {
    let _ = json(text)?;
    Err(format!(
        "unicast routes from GoBGP are not parsed yet: {text}"
    ))
}

pub fn flow_routes(text: &str) -> Result<Vec<FlowRoute>, String> {
    let _ = json(text)?;
    Err(format!("flow routes from GoBGP are not parsed yet: {text}"))
}
