//! ixgate's own BGP speaker in the lab of examples/lab, against real telco
//! routers: BIRD (telco-a: TCP-MD5, GTSM) and FRR (telco-b), and GoBGP in
//! place of FRR. Sessions, prepends, drain, Flowspec and RTBH.

#![allow(clippy::expect_used)] // a test may stop at what it cannot set up

use ixgate_testbed::Lab;
use ixgate_testbed::example;
use ixgate_testbed::expect;
use ixgate_testbed::routers::{Family, FlowRoute};
use ixgate_testbed::topology::{Role, RouterSoftware};

const NODES: [&str; 4] = [
    "198.51.100.11",
    "198.51.100.12",
    "2001:db8:ff::11",
    "2001:db8:ff::12",
];

/// The lab with `ixgate run` in both ixgate nodes and `telco_b` as
/// telco-b's router.
fn lab(telco_b: RouterSoftware) -> Lab {
    let mut topology = example::topology().expect("topology");
    for node in &mut topology.nodes {
        if let Role::Telco { software, telco } = &mut node.role
            && telco == "telco-b"
        {
            *software = telco_b;
        }
    }
    Lab::start(topology).expect("lab starts")
}

/// Every telco hears the anycast prefixes from both nodes as the plans
/// say; and, spelled out once, telco-b hears node-2 plain and node-1 with
/// its 3 prepends.
fn expect_anycast_with_prepends(lab: &Lab) {
    expect::anycast_as_planned(lab).expect("anycast prefixes with the planned prepends");
    expect::as_paths(
        lab.router("telco-b").expect("router"),
        Family::Ipv6,
        "2001:db8:100::/48",
        &[
            ("2001:db8:ff::12", vec![65000]),
            ("2001:db8:ff::11", vec![65000; 4]),
        ],
    )
    .expect("telco-b: node-2 shortest");
}

fn rule(destination: &str, protocol: u8, port: u16, rate: f32) -> FlowRoute {
    FlowRoute {
        destination: Some(destination.parse().expect("prefix")),
        protocol: Some(protocol),
        destination_port: Some(port),
        rate_bytes: Some(rate),
        ..FlowRoute::default()
    }
}

#[test]
fn ixgate_speaks_bgp_with_bird_and_frr_and_drains() {
    let lab = lab(RouterSoftware::Frr);
    let bird = lab.router("telco-a").expect("router");
    let frr = lab.router("telco-b").expect("router");
    expect::established(bird, &NODES).expect("sessions with BIRD (TCP-MD5, GTSM)");
    expect::established(frr, &NODES).expect("sessions with FRR");
    expect_anycast_with_prepends(&lab);

    // ixgate's own view: four sessions Established, and telco-a's
    // communities on what it sends there.
    let peers = lab.ctl("node-1", &["show", "peers"]).expect("show peers");
    let states: Vec<&str> = peers
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|p| p["state"].as_str())
        .collect();
    assert_eq!(states, ["Established"; 4], "{peers:#}");
    let routes = lab
        .ctl("node-1", &["show", "routes", "198.51.100.1"])
        .expect("show routes");
    assert_eq!(routes["advertised"][0]["route"], "192.0.2.0/24");
    assert_eq!(routes["advertised"][0]["communities"][0], "65010:100");

    // Drain node-1: telco-a keeps only node-2's longer path; undrain: back.
    lab.ctl("node-1", &["drain"]).expect("drain");
    expect::gone(bird, Family::Ipv4, "192.0.2.0/24", "198.51.100.11")
        .expect("withdrawal seen by BIRD");
    expect::gone(frr, Family::Ipv6, "2001:db8:100::/48", "2001:db8:ff::11")
        .expect("withdrawal seen by FRR");
    expect::as_paths(
        bird,
        Family::Ipv4,
        "192.0.2.0/24",
        &[("198.51.100.12", vec![65000; 3])],
    )
    .expect("node-2 still there");
    lab.ctl("node-1", &["undrain"]).expect("undrain");
    expect_anycast_with_prepends(&lab);

    // Drain toward telco-a only: telco-b keeps node-1's path.
    lab.ctl("node-1", &["drain", "--telco", "telco-a"])
        .expect("drain telco-a");
    expect::gone(bird, Family::Ipv4, "192.0.2.0/24", "198.51.100.11")
        .expect("withdrawn from telco-a");
    expect::as_paths(
        frr,
        Family::Ipv4,
        "192.0.2.0/24",
        &[("198.51.100.11", vec![65000; 4])],
    )
    .expect("telco-b keeps it");
    lab.ctl("node-1", &["undrain", "--telco", "telco-a"])
        .expect("undrain telco-a");
    expect_anycast_with_prepends(&lab);

    // A ROUTE-REFRESH from BIRD (RFC 2918) is answered.
    bird.cli(&["reload", "in", "node_1_v4"])
        .expect("BIRD asks for a refresh");
    ixgate_testbed::wait::until(expect::ROUTE_DEADLINE, "the refresh to be answered", || {
        let peers = lab
            .ctl("node-1", &["show", "peers"])
            .map_err(|e| ixgate_testbed::wait::NotYet::Pending(e.to_string()))?;
        let answered = peers
            .as_array()
            .and_then(|peers| peers.iter().find(|p| p["neighbor"] == "198.51.100.1"))
            .and_then(|peer| peer["refreshes_answered"].as_u64())
            .unwrap_or_default();
        if answered >= 1 {
            Ok(())
        } else {
            Err(ixgate_testbed::wait::NotYet::Pending(format!("{peers}")))
        }
    })
    .expect("refresh answered");
}

#[test]
fn sigterm_announces_graceful_shutdown_then_withdraws() {
    use ixgate_testbed::wait::{self, NotYet};
    let lab = lab(RouterSoftware::Frr);
    let bird = lab.router("telco-a").expect("router");
    expect::established(bird, &NODES).expect("sessions with BIRD");
    expect_anycast_with_prepends(&lab);

    lab.terminate_appliance("node-1").expect("SIGTERM");
    // RFC 8326: first the route carries GRACEFUL_SHUTDOWN (65535:0) …
    wait::until(
        expect::ROUTE_DEADLINE,
        "node-1's route with GRACEFUL_SHUTDOWN",
        || {
            let table = bird
                .unicast_routes(Family::Ipv4)
                .map_err(|e| NotYet::Pending(e.to_string()))?;
            let from_node_1 = table.iter().find(|r| r.from.to_string() == "198.51.100.11");
            match from_node_1 {
                Some(route)
                    if route
                        .communities
                        .contains(&"65535:0".parse().expect("community")) =>
                {
                    Ok(())
                }
                _ => Err(NotYet::Pending(format!("{table:?}"))),
            }
        },
    )
    .expect("graceful shutdown announced");
    // … then it is withdrawn, and node-2's path remains.
    expect::gone(bird, Family::Ipv4, "192.0.2.0/24", "198.51.100.11").expect("then withdrawn");
    expect::as_paths(
        bird,
        Family::Ipv4,
        "192.0.2.0/24",
        &[("198.51.100.12", vec![65000; 3])],
    )
    .expect("node-2 still announces");
}

#[test]
fn ixgate_originates_flowspec_and_rtbh_as_each_telco_allows() {
    let lab = lab(RouterSoftware::Frr);
    let bird = lab.router("telco-a").expect("router");
    let frr = lab.router("telco-b").expect("router");
    expect::established(bird, &NODES[..1]).expect("session with BIRD");
    expect::established(frr, &NODES[..1]).expect("session with FRR");

    // Flowspec: IPv4 to both telcos, IPv6 only to telco-a (telco-b's file
    // says flowspec_v6 = false).
    lab.ctl(
        "node-1",
        &[
            "mitigate",
            "add",
            "flowspec",
            "--dst",
            "192.0.2.10/32",
            "--proto",
            "6",
            "--dport",
            "443",
        ],
    )
    .expect("flowspec v4");
    lab.ctl(
        "node-1",
        &[
            "mitigate",
            "add",
            "flowspec",
            "--dst",
            "2001:db8:100::10/128",
            "--proto",
            "17",
            "--dport",
            "443",
            "--rate",
            "125000",
        ],
    )
    .expect("flowspec v6");
    expect::flow(bird, Family::Ipv4, &rule("192.0.2.10/32", 6, 443, 0.0))
        .expect("BIRD holds the v4 rule");
    expect::flow(
        bird,
        Family::Ipv6,
        &rule("2001:db8:100::10/128", 17, 443, 125_000.0),
    )
    .expect("BIRD holds the v6 rule");
    expect::flow(frr, Family::Ipv4, &rule("192.0.2.10/32", 6, 443, 0.0))
        .expect("FRR holds the v4 rule");
    assert_eq!(
        frr.flow_routes(Family::Ipv6).expect("query"),
        [],
        "telco-b takes no IPv6 Flowspec"
    );

    // RTBH: both telcos blackhole the destination (telco-a on 65535:666,
    // telco-b on 65020:666); the covering anycast prefix still forwards.
    lab.ctl("node-1", &["mitigate", "add", "blackhole", "192.0.2.10/32"])
        .expect("blackhole");
    expect::kernel_route(&lab, "telco-a", "192.0.2.10/32", "blackhole").expect("BIRD blackholes");
    expect::kernel_route(&lab, "telco-b", "192.0.2.10/32", "blackhole").expect("FRR blackholes");
    assert_eq!(
        expect::kernel_route_type(&lab, "telco-a", "192.0.2.0/24").as_deref(),
        Ok("unicast")
    );

    // Taking the mitigations back.
    lab.ctl(
        "node-1",
        &[
            "mitigate",
            "remove",
            "flowspec",
            "--dst",
            "192.0.2.10/32",
            "--proto",
            "6",
            "--dport",
            "443",
        ],
    )
    .expect("remove flowspec");
    lab.ctl(
        "node-1",
        &["mitigate", "remove", "blackhole", "192.0.2.10/32"],
    )
    .expect("remove blackhole");
    expect::no_flows(frr, Family::Ipv4).expect("FRR drops the rule");
    expect::gone(bird, Family::Ipv4, "192.0.2.10/32", "198.51.100.11")
        .expect("BIRD drops the blackhole");
}

#[test]
fn ixgate_speaks_bgp_with_gobgp() {
    let lab = lab(RouterSoftware::Gobgp);
    let gobgp = lab.router("telco-b").expect("router");
    expect::established(gobgp, &NODES).expect("sessions with GoBGP");
    expect_anycast_with_prepends(&lab);
    lab.ctl(
        "node-2",
        &[
            "mitigate",
            "add",
            "flowspec",
            "--dst",
            "192.0.2.20/32",
            "--proto",
            "17",
            "--dport",
            "53",
        ],
    )
    .expect("flowspec");
    let seen = expect::flow(gobgp, Family::Ipv4, &rule("192.0.2.20/32", 17, 53, 0.0))
        .expect("GoBGP holds the rule");
    assert_eq!(seen.from, Some("198.51.100.12".parse().expect("address")));
}

/// What node-1 says of its sessions: (neighbour, state, times established).
fn sessions(lab: &Lab) -> Vec<(String, String, u64)> {
    let peers = lab.ctl("node-1", &["show", "peers"]).expect("show peers");
    peers
        .as_array()
        .expect("list")
        .iter()
        .map(|peer| {
            (
                peer["neighbor"].as_str().unwrap_or_default().to_owned(),
                peer["state"].as_str().unwrap_or_default().to_owned(),
                peer["established_count"].as_u64().unwrap_or_default(),
            )
        })
        .collect()
}

#[test]
fn a_telco_restart_brings_its_sessions_and_routes_back_and_leaves_the_other_alone() {
    let mut lab = lab(RouterSoftware::Frr);
    expect::established(lab.router("telco-a").expect("router"), &NODES)
        .expect("sessions with BIRD");
    expect::established(lab.router("telco-b").expect("router"), &NODES).expect("sessions with FRR");
    expect_anycast_with_prepends(&lab);
    let before = sessions(&lab);
    assert!(
        before
            .iter()
            .all(|(_, state, count)| state == "Established" && *count == 1),
        "{before:?}"
    );

    lab.restart_router("telco-a").expect("BIRD restarts");
    let bird = lab.router("telco-a").expect("router");
    expect::established(bird, &NODES).expect("sessions back");
    expect_anycast_with_prepends(&lab);

    let after = sessions(&lab);
    for (neighbor, state, count) in &after {
        assert_eq!(state, "Established", "{after:?}");
        // telco-a's sessions came up a second time; telco-b's never went down.
        let expected = if neighbor.ends_with("::1") || neighbor.ends_with(".1") {
            2
        } else {
            1
        };
        assert_eq!(*count, expected, "{neighbor}: {after:?}");
    }
}
