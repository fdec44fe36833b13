//! The lab of examples/lab with GoBGP standing in for the ixgate nodes:
//! real BIRD and FRR telco routers get the anycast prefixes (the paired
//! node's path shortest) and a Flowspec rule; the origins stay out of reach
//! of the clients and the attacker.

#![allow(clippy::expect_used)] // a test may stop at what it cannot set up

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use ixgate_testbed::routers::{Family, FlowRoute, Router, STAND_IN_DISCARD_RULE};
use ixgate_testbed::topology::{Role, RouterSoftware, Topology};
use ixgate_testbed::wait::{self, NotYet};
use ixgate_testbed::{Lab, expect};

/// Sessions come up within a few seconds (connect retry is 1 s); the
/// deadline is generous for a loaded CI machine.
const NODE_ADDRESSES: [&str; 4] = [
    "198.51.100.11",
    "198.51.100.12",
    "2001:db8:ff::11",
    "2001:db8:ff::12",
];
const ROUTE_DEADLINE: Duration = expect::ROUTE_DEADLINE;

fn wait_established(lab: &Lab, telco: &str) {
    expect::established(lab.router(telco).expect("router"), &NODE_ADDRESSES).expect("sessions up");
}

/// Every telco hears the anycast prefixes from both nodes as the plans
/// say; and, spelled out once, telco-a hears node-1 plain and node-2 with
/// its 2 prepends.
fn wait_anycast_with_prepends(lab: &Lab) {
    expect::anycast_as_planned(lab).expect("anycast prefixes with the planned prepends");
    expect::as_paths(
        lab.router("telco-a").expect("router"),
        Family::Ipv4,
        "192.0.2.0/24",
        &[
            ("198.51.100.11", vec![65000]),
            ("198.51.100.12", vec![65000; 3]),
        ],
    )
    .expect("telco-a: node-1 shortest");
}

fn wait_flow(router: &Router, family: Family, expected: &FlowRoute) -> FlowRoute {
    expect::flow(router, family, expected).expect("flow rule arrives")
}

fn kernel_route_type(lab: &Lab, node: &str, prefix: &str) -> Result<String, String> {
    expect::kernel_route_type(lab, node, prefix)
}

fn topology() -> Topology {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("topologies/lab.toml");
    Topology::load(&path).expect("topology")
}

fn lab() -> Lab {
    Lab::start(topology()).expect("lab starts")
}

/// Has node-1's stand-in originate a discard rule for TCP port 443 to
/// `192.0.2.10` and a 1000 bytes/s limit for UDP port 443 to
/// `2001:db8:100::10`.
fn originate_flow_rules(lab: &Lab) {
    let stand_in = lab.router("node-1").expect("stand-in");
    stand_in.cli(&STAND_IN_DISCARD_RULE).expect("v4 rule");
    stand_in
        .cli(&[
            "global",
            "rib",
            "-a",
            "ipv6-flowspec",
            "add",
            "match",
            "destination",
            "2001:db8:100::10/128",
            "protocol",
            "udp",
            "destination-port",
            "==443",
            "then",
            "rate-limit",
            "1000",
        ])
        .expect("v6 rule");
}

fn limit_udp_443_v6() -> FlowRoute {
    FlowRoute {
        destination: Some("2001:db8:100::10/128".parse().expect("prefix")),
        protocol: Some(17),
        destination_port: Some(443),
        rate_bytes: Some(1000.0),
        ..FlowRoute::default()
    }
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("address")
}

#[test]
fn telcos_get_the_anycast_prefixes_and_a_flowspec_rule_from_the_stand_in() {
    let lab = lab();
    wait_established(&lab, "telco-a");
    wait_established(&lab, "telco-b");
    wait_anycast_with_prepends(&lab);

    originate_flow_rules(&lab);
    // BIRD (telco-a) takes Flowspec for both families.
    let bird = lab.router("telco-a").expect("router");
    wait_flow(bird, Family::Ipv4, &FlowRoute::stand_in_discard());
    wait_flow(bird, Family::Ipv6, &limit_udp_443_v6());
    // FRR (telco-b) takes IPv4 Flowspec only: its policy file says
    // flowspec_v6 = false, so the session does not carry it.
    let frr = lab.router("telco-b").expect("router");
    wait_flow(frr, Family::Ipv4, &FlowRoute::stand_in_discard());
    assert_eq!(
        frr.flow_routes(Family::Ipv6).expect("query"),
        [],
        "telco-b refuses IPv6 Flowspec"
    );
}

#[test]
fn a_gobgp_telco_gets_the_same() {
    let mut topology = topology();
    for node in &mut topology.nodes {
        if let Role::Telco { software, telco } = &mut node.role
            && telco == "telco-b"
        {
            *software = RouterSoftware::Gobgp;
        }
    }
    let lab = Lab::start(topology).expect("lab starts");
    wait_established(&lab, "telco-b");
    wait_anycast_with_prepends(&lab);
    originate_flow_rules(&lab);
    let gobgp = lab.router("telco-b").expect("router");
    wait_flow(gobgp, Family::Ipv4, &FlowRoute::stand_in_discard());
}

#[test]
fn origins_are_out_of_reach_of_clients_and_the_attacker() {
    let lab = lab();
    let ping =
        |from: &str, to: &str| lab.exec(from, "ping", &["-n", "-q", "-c", "1", "-W", "1", to]);
    // Reachable: polled, since the first neighbour solicitation of a
    // fresh lab may go unanswered and is only retried a second later.
    let wait_reachable = |from: &str, to: &str| {
        wait::until(ROUTE_DEADLINE, &format!("{from} to reach {to}"), || {
            ping(from, to)
                .map(drop)
                .map_err(|error| NotYet::Pending(error.to_string()))
        })
        .expect("reachable");
    };
    for origin in [
        "203.0.113.65",
        "203.0.113.66",
        "2001:db8:201::65",
        "2001:db8:201::66",
    ] {
        // The control: the ixgate nodes reach the origins over transit.
        wait_reachable("node-1", origin);
        wait_reachable("node-2", origin);
    }
    // The outsiders reach their telco, so a failure below is the missing
    // route, not a lab that is not ready.
    wait_reachable("client-a", "198.51.100.65");
    wait_reachable("attacker", "198.51.100.81");
    wait_reachable("client-b", "198.51.100.97");
    for origin in [
        "203.0.113.65",
        "203.0.113.66",
        "2001:db8:201::65",
        "2001:db8:201::66",
    ] {
        for outsider in ["client-a", "client-b", "attacker"] {
            assert!(
                ping(outsider, origin).is_err(),
                "{outsider} reached origin {origin}"
            );
        }
    }
}

#[test]
fn floods_are_bounded_counted_and_delivered() {
    use ixgate_testbed::flood::{Flood, FloodKind, FloodRate, Sources};
    let lab = lab();
    wait_established(&lab, "telco-a");
    wait_anycast_with_prepends(&lab);
    let target = "192.0.2.10".parse().expect("address");
    let received = || {
        lab.exec("node-1", "ip", &["-j", "-s", "link", "show", "dev", "ixp0"])
            .map(|output| {
                let link: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
                link[0]["stats64"]["rx"]["packets"]
                    .as_u64()
                    .expect("counter")
            })
    };

    // Bounded by count: exactly that many leave, and telco-a forwards them
    // to node-1 (its paired node), which it only does for well-formed
    // packets.
    for kind in [
        FloodKind::Syn { port: 443 },
        FloodKind::Udp {
            port: 443,
            payload: 64,
        },
        FloodKind::Icmp { payload: 32 },
    ] {
        let before = received().expect("counter");
        let flood = Flood::new(kind, target, 2000, Duration::from_secs(20))
            .rate(FloodRate::PacketsPerSecond(20_000));
        let report = lab.flood("attacker", &flood).expect("flood runs");
        // A stray neighbour-discovery packet may leave during the flood.
        assert!(
            (2000..=2005).contains(&report.packets_sent),
            "{kind:?}: {report:?}"
        );
        let arrived = wait::until(ROUTE_DEADLINE, "the flood to reach node-1", || {
            let delta = received().map_err(|e| NotYet::Failed(e.to_string()))? - before;
            if delta >= 1980 {
                Ok(delta)
            } else {
                Err(NotYet::Pending(format!("{delta} packets")))
            }
        })
        .expect("flood delivered");
        assert!(arrived <= 2010, "{kind:?}: {arrived} arrived for 2000 sent");
    }

    // Bounded by time: flat out with an unreachable count stops at 1 s.
    let flood = Flood::new(
        FloodKind::Syn { port: 443 },
        target,
        u64::MAX / 2,
        Duration::from_secs(1),
    )
    .sources(Sources::Fixed(vec![
        "198.51.100.82".parse().expect("address"),
    ]));
    let report = lab.flood("attacker", &flood).expect("flood runs");
    assert!(report.packets_sent > 1000, "{report:?}");
    assert!(report.elapsed < Duration::from_secs(4), "{report:?}");

    // Only attacker nodes flood.
    assert!(lab.flood("client-a", &flood).is_err());
}

#[test]
fn the_origin_logs_every_request_and_sees_the_clients_certificate() {
    use ixgate_testbed::client::{ClientOutcome, ClientRequest, HttpVersion};
    let lab = lab();
    let pki = lab.pki_dir();
    let to_origin_a = |address: &str| {
        ClientRequest::new(
            "origin.bank-a.example",
            8443,
            ip(address),
            pki.join("origin-ca.pem"),
        )
    };

    // Over transit from node-1: IPv4, HTTP/1.1, a header of our own.
    let first = to_origin_a("203.0.113.65")
        .path("/hello?x=1")
        .header("X-Test", "one");
    let body = wait::until(ROUTE_DEADLINE, "origin-a to answer node-1", || {
        match lab.request("node-1", &first) {
            Ok(ClientOutcome::Response { status: 200, body }) => Ok(body),
            other => Err(NotYet::Pending(format!("{other:?}"))),
        }
    })
    .expect("origin answers");
    assert!(body.contains(r#""origin":"bank-a""#), "{body}");

    // IPv6, HTTP/2, presenting bank-a's good app certificate.
    let second = to_origin_a("2001:db8:201::65")
        .http(HttpVersion::Http2)
        .certificate(
            pki.join("bank-a-client-good.pem"),
            pki.join("bank-a-client-good.key"),
        );
    assert!(matches!(
        lab.request("node-2", &second),
        Ok(ClientOutcome::Response { status: 200, .. })
    ));

    // A client that does not trust the origin's CA gets no answer, and the
    // origin logs nothing for it.
    let distrusting = ClientRequest::new(
        "origin.bank-a.example",
        8443,
        ip("203.0.113.65"),
        pki.join("server-ca.pem"),
    );
    match lab.request("node-1", &distrusting).expect("curl runs") {
        ClientOutcome::Failed { curl_exit: 60, .. } => {}
        other => panic!("expected a certificate verification failure, got {other:?}"),
    }

    let log = lab.origin_requests("origin-a").expect("origin log");
    assert_eq!(log.len(), 2, "{log:#?}");
    assert_eq!(log[0].path, "/hello?x=1");
    assert_eq!(log[0].version, "HTTP/1.1");
    assert_eq!(log[0].header("x-test"), Some("one"));
    assert_eq!(log[0].sni.as_deref(), Some("origin.bank-a.example"));
    assert_eq!(log[0].client_certificate, None);
    assert_eq!(log[0].peer.ip(), ip("203.0.113.11"));
    assert_eq!(log[1].version, "HTTP/2.0");
    assert_eq!(log[1].peer.ip(), ip("2001:db8:200::12"));
    let subject = log[1]
        .client_certificate
        .as_deref()
        .expect("client certificate seen");
    assert!(subject.contains("bank-a app good"), "{subject}");

    // Each bank has its own origin.
    let to_b = ClientRequest::new(
        "origin.bank-b.example",
        8443,
        ip("203.0.113.66"),
        pki.join("origin-ca.pem"),
    );
    match lab.request("node-1", &to_b).expect("curl runs") {
        ClientOutcome::Response { status: 200, body } => {
            assert!(body.contains(r#""origin":"bank-b""#));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(lab.origin_requests("origin-a").expect("log").len(), 2);
}

#[test]
fn rtbh_routes_become_blackholes_where_the_telco_allows_and_communities_arrive() {
    let lab = lab();
    wait_established(&lab, "telco-a");
    wait_established(&lab, "telco-b");
    wait_anycast_with_prepends(&lab);

    // telco-a's file attaches 65010:100 and 65010:1:100 to what it gets.
    let bird = lab.router("telco-a").expect("router");
    let anycast = bird.unicast_routes(Family::Ipv4).expect("routes");
    let from_node_1 = anycast
        .iter()
        .find(|r| r.from == ip("198.51.100.11"))
        .expect("route from node-1");
    assert_eq!(
        from_node_1.communities,
        ["65010:100".parse().expect("community")]
    );
    assert_eq!(
        from_node_1.large_communities,
        ["65010:1:100".parse().expect("large community")]
    );

    // node-1 asks for a blackhole with RFC 7999's community, node-2 with
    // telco-b's own.
    let add = |node: &str, family: &str, prefix: &str, community: &str| {
        lab.router(node)
            .expect("stand-in")
            .cli(&[
                "global",
                "rib",
                "add",
                "-a",
                family,
                prefix,
                "community",
                community,
            ])
            .expect("announced");
    };
    add("node-1", "ipv4", "192.0.2.10/32", "65535:666");
    add("node-1", "ipv6", "2001:db8:100::10/128", "65535:666");
    add("node-2", "ipv4", "192.0.2.20/32", "65020:666");

    // telco-a (BIRD) honours 65535:666 only; telco-b (FRR) both.
    for (telco, prefix, expected) in [
        ("telco-a", "192.0.2.10/32", "blackhole"),
        ("telco-a", "2001:db8:100::10/128", "blackhole"),
        ("telco-a", "192.0.2.20/32", "unicast"),
        ("telco-b", "192.0.2.10/32", "blackhole"),
        ("telco-b", "2001:db8:100::10/128", "blackhole"),
        ("telco-b", "192.0.2.20/32", "blackhole"),
    ] {
        wait::until(
            ROUTE_DEADLINE,
            &format!("{telco}: {prefix} as {expected}"),
            || match kernel_route_type(&lab, telco, prefix) {
                Ok(kind) if kind == expected => Ok(()),
                seen => Err(NotYet::Pending(format!("{seen:?}"))),
            },
        )
        .expect("route installed as expected");
    }
    // The covering anycast prefix still forwards.
    assert_eq!(
        kernel_route_type(&lab, "telco-b", "192.0.2.0/24").as_deref(),
        Ok("unicast")
    );
    assert_eq!(
        kernel_route_type(&lab, "telco-a", "192.0.2.0/24").as_deref(),
        Ok("unicast")
    );
}
