//! A drain in the lab of examples/lab: node-1 withdraws the anycast
//! prefixes, telco-a sends its customers to node-2, and node-2's replies go
//! back through telco-a (the route telco-a announced for its customers),
//! so client-a is served by node-2; after the undrain, by node-1 again.

#![allow(clippy::expect_used)] // a test may stop at what it cannot set up

use std::net::IpAddr;
use std::time::Duration;

use ixgate_testbed::Lab;
use ixgate_testbed::client::ClientOutcome;
use ixgate_testbed::example;
use ixgate_testbed::routers::Family;
use ixgate_testbed::wait::{self, NotYet};

/// Who announces the anycast prefix to telco-a now.
fn telco_a_hears(lab: &Lab) -> Result<Vec<IpAddr>, NotYet> {
    let routes = lab
        .router("telco-a")
        .map_err(|error| NotYet::Failed(error.to_string()))?
        .unicast_routes(Family::Ipv4)
        .map_err(|error| NotYet::Pending(error.to_string()))?;
    Ok(routes
        .iter()
        .filter(|route| route.prefix.to_string() == "192.0.2.0/24")
        .map(|route| route.from)
        .collect())
}

/// client-a's request to bank-a; the transit address the origin saw it from.
fn served_by(lab: &Lab, path: &str) -> String {
    let request = example::bank_a_app(lab).path(path);
    let outcome = lab.request("client-a", &request).expect("curl runs");
    assert!(
        matches!(outcome, ClientOutcome::Response { status: 200, .. }),
        "{path}: {outcome:?}"
    );
    lab.origin_requests("origin-a")
        .expect("the origin's log")
        .iter()
        .find(|logged| logged.path == path)
        .map(|logged| logged.peer.ip().to_string())
        .unwrap_or_default()
}

fn until_telco_a_hears(lab: &Lab, nodes: &[&str]) {
    let expected: Vec<IpAddr> = nodes
        .iter()
        .map(|node| node.parse().expect("address"))
        .collect();
    wait::until(Duration::from_secs(10), "telco-a's routes", || {
        let mut heard = telco_a_hears(lab)?;
        heard.sort();
        if heard == expected {
            Ok(())
        } else {
            Err(NotYet::Pending(format!("{heard:?}")))
        }
    })
    .expect("telco-a's view of the anycast prefix");
}

#[test]
fn a_drained_node_hands_its_telcos_customers_to_the_other_node_and_back() {
    let lab = example::serving_client_a().expect("the lab serves client-a");
    until_telco_a_hears(&lab, &["198.51.100.11", "198.51.100.12"]);
    assert_eq!(served_by(&lab, "/before"), "203.0.113.11", "node-1 first");

    lab.ctl("node-1", &["drain"]).expect("drain");
    until_telco_a_hears(&lab, &["198.51.100.12"]);
    assert_eq!(
        served_by(&lab, "/drained"),
        "203.0.113.12",
        "node-2 serves client-a, its replies back through telco-a"
    );
    let routing = lab.ctl("node-2", &["show", "routing"]).expect("ctl");
    let learned = routing["objects"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|object| {
            object["object"] == "table 100 198.51.100.64/28 via 198.51.100.1 dev ixp0 metric 100"
                && object["actual"] == true
        });
    assert!(
        learned,
        "node-2 routes client-a's network back through telco-a: {routing:#}"
    );

    lab.ctl("node-1", &["undrain"]).expect("undrain");
    until_telco_a_hears(&lab, &["198.51.100.11", "198.51.100.12"]);
    assert_eq!(
        served_by(&lab, "/undrained"),
        "203.0.113.11",
        "node-1 again"
    );
}
