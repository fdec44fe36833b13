//! The lab of examples/lab with GoBGP standing in for the ixgate nodes:
//! real BIRD and FRR telco routers get the anycast prefixes (the paired
//! node's path shortest) and a Flowspec rule; the origins stay out of reach
//! of the clients and the attacker.

#![allow(clippy::expect_used)] // a test may stop at what it cannot set up

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use ixgate_testbed::Lab;
use ixgate_testbed::routers::{Family, SessionState};
use ixgate_testbed::topology::Topology;
use ixgate_testbed::wait::{self, NotYet};

/// Sessions come up within a few seconds (connect retry is 1 s); the
/// deadline is generous for a loaded CI machine.
const SESSION_DEADLINE: Duration = Duration::from_secs(60);
const ROUTE_DEADLINE: Duration = Duration::from_secs(30);

fn lab() -> Lab {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("topologies/lab.toml");
    Lab::start(Topology::load(&path).expect("topology")).expect("lab starts")
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("address")
}

#[test]
fn telcos_get_the_anycast_prefixes_and_a_flowspec_rule_from_the_stand_in() {
    let lab = lab();
    // (telco, [(node address, node)]) over both families.
    let sessions = [
        (
            "telco-a",
            [
                "198.51.100.11",
                "198.51.100.12",
                "2001:db8:ff::11",
                "2001:db8:ff::12",
            ],
        ),
        (
            "telco-b",
            [
                "198.51.100.11",
                "198.51.100.12",
                "2001:db8:ff::11",
                "2001:db8:ff::12",
            ],
        ),
    ];
    for (telco, neighbors) in sessions {
        let router = lab.router(telco).expect("router");
        for neighbor in neighbors {
            wait::until(
                SESSION_DEADLINE,
                &format!("{telco} ↔ {neighbor} Established"),
                || match router.session_state(ip(neighbor)) {
                    Ok(SessionState::Established) => Ok(()),
                    Ok(state) => Err(NotYet::Pending(format!("{state:?}"))),
                    Err(error) => Err(NotYet::Pending(error.to_string())),
                },
            )
            .expect("session up");
        }
    }

    // Each telco sees both nodes' path; its paired node's has no prepends.
    for (telco, family, prefix, paired, other, other_prepends) in [
        (
            "telco-a",
            Family::Ipv4,
            "192.0.2.0/24",
            "198.51.100.11",
            "198.51.100.12",
            2,
        ),
        (
            "telco-a",
            Family::Ipv6,
            "2001:db8:100::/48",
            "2001:db8:ff::11",
            "2001:db8:ff::12",
            2,
        ),
        (
            "telco-b",
            Family::Ipv4,
            "192.0.2.0/24",
            "198.51.100.12",
            "198.51.100.11",
            3,
        ),
        (
            "telco-b",
            Family::Ipv6,
            "2001:db8:100::/48",
            "2001:db8:ff::12",
            "2001:db8:ff::11",
            3,
        ),
    ] {
        let router = lab.router(telco).expect("router");
        wait::until(
            ROUTE_DEADLINE,
            &format!("{telco}: {prefix} from both nodes"),
            || {
                let routes = router
                    .unicast_routes(family)
                    .map_err(|e| NotYet::Pending(e.to_string()))?;
                let path_from = |node: &str| {
                    routes
                        .iter()
                        .find(|r| r.prefix.to_string() == prefix && r.from == ip(node))
                        .map(|r| r.as_path.clone())
                };
                match (path_from(paired), path_from(other)) {
                    (Some(short), Some(long))
                        if short == [65000] && long == vec![65000; 1 + other_prepends] =>
                    {
                        Ok(())
                    }
                    seen => Err(NotYet::Pending(format!("{seen:?} in {routes:?}"))),
                }
            },
        )
        .expect("anycast prefix with the planned prepends");
    }
}
