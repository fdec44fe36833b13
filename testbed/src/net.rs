//! Builds a topology's network inside a sandbox: a namespace per node, a
//! switch namespace with a bridge per shared segment, veth pairs, addresses
//! and routes. Everything is done with `ip` inside the sandbox, whose own
//! network namespace is a throw-away one: nothing touches the host's.

use crate::LabError;
use crate::sandbox::SandboxHandle;
use crate::topology::{Role, Topology};

/// The namespace holding a segment's bridge.
pub fn switch_namespace(segment: &str) -> String {
    format!("sw-{segment}")
}

/// The bridge in every switch namespace.
const BRIDGE: &str = "br0";

pub fn build(sandbox: &SandboxHandle, topology: &Topology) -> Result<(), LabError> {
    for segment in &topology.segments {
        let ns = switch_namespace(&segment.name);
        sandbox.ip(&["netns", "add", &ns])?;
        sandbox.ip(&["-n", &ns, "link", "add", BRIDGE, "type", "bridge"])?;
        sandbox.ip(&["-n", &ns, "link", "set", BRIDGE, "up"])?;
    }
    for node in &topology.nodes {
        sandbox.ip(&["netns", "add", &node.name])?;
        sandbox.ip(&["-n", &node.name, "link", "set", "lo", "up"])?;
        // The lab's addresses are unique by construction: duplicate address
        // detection would only hold every IPv6 address (link-local ones too,
        // which neighbour discovery needs) back for a second or two.
        let mut sysctl = sandbox.node_command(&node.name, "sysctl");
        sysctl.args([
            "-qw",
            "net.ipv6.conf.all.accept_dad=0",
            "net.ipv6.conf.default.accept_dad=0",
        ]);
        if matches!(node.role, Role::Telco { .. } | Role::Transit) {
            sysctl.args(["net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"]);
        }
        SandboxHandle::run(sysctl)?;
    }

    // Segment ports: the node end keeps the configured name, the switch end
    // is numbered, and joins the bridge.
    let mut port = 0;
    for node in &topology.nodes {
        for interface in &node.interfaces {
            let Some(segment) = &interface.segment else {
                continue;
            };
            let switch = switch_namespace(segment);
            let switch_end = format!("p{port}");
            port += 1;
            sandbox.ip(&[
                "link",
                "add",
                &interface.name,
                "netns",
                &node.name,
                "type",
                "veth",
                "peer",
                "name",
                &switch_end,
                "netns",
                &switch,
            ])?;
            sandbox.ip(&[
                "-n",
                &switch,
                "link",
                "set",
                &switch_end,
                "master",
                BRIDGE,
                "up",
            ])?;
        }
    }
    for ((node_a, if_a), (node_b, if_b)) in topology.links() {
        sandbox.ip(&[
            "link", "add", if_a, "netns", node_a, "type", "veth", "peer", "name", if_b, "netns",
            node_b,
        ])?;
    }

    for node in &topology.nodes {
        for interface in &node.interfaces {
            for address in &interface.addresses {
                let address = address.to_string();
                sandbox.ip(&[
                    "-n",
                    &node.name,
                    "address",
                    "add",
                    &address,
                    "dev",
                    &interface.name,
                ])?;
            }
            sandbox.ip(&["-n", &node.name, "link", "set", &interface.name, "up"])?;
        }
        for route in &node.routes {
            let mut args = vec!["-n", node.name.as_str(), "route", "add"];
            args.extend(route.split_whitespace());
            sandbox.ip(&args)?;
        }
    }
    Ok(())
}
