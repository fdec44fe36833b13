//! Policy routing of `ixgate run` in the lab of examples/lab: replies
//! from the anycast addresses leave through the anycast interface and
//! never through transit; the origin is reached from the transit side
//! only; a flushed table is repaired within a second; what is not ours
//! is left alone.

#![allow(clippy::expect_used)] // a test may stop at what it cannot set up

use std::time::Duration;

use ixgate_testbed::Lab;
use ixgate_testbed::client::ClientOutcome;
use ixgate_testbed::example;
use ixgate_testbed::wait::{self, NotYet};
use serde_json::Value;

const NODE: &str = "node-1";
const CLIENT: &str = "client-a";
const ORIGIN: &str = "203.0.113.65";

/// Counters of packets from the anycast prefix leaving node-1, by
/// interface: a table of the test's own, which ixgate must leave alone.
const PROBE: &str = "table inet probe {
  counter via_transit { }
  counter via_anycast { }
  chain out {
    type filter hook postrouting priority 0; policy accept;
    oifname \"transit0\" ip saddr 192.0.2.0/24 counter name \"via_transit\"
    oifname \"ixp0\" ip saddr 192.0.2.0/24 counter name \"via_anycast\"
  }
}
";

fn probe_counter(lab: &Lab, name: &str) -> u64 {
    let output = lab
        .exec(
            NODE,
            "nft",
            &["-j", "list", "counter", "inet", "probe", name],
        )
        .expect("nft lists the counter");
    let listed: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    listed["nftables"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|item| item["counter"]["packets"].as_u64())
        .expect("a packet count")
}

fn routing(lab: &Lab) -> Value {
    lab.ctl(NODE, &["show", "routing"]).expect("ixgate ctl")
}

fn number(value: &Value) -> u64 {
    value.as_u64().unwrap_or_default()
}

#[test]
fn replies_stay_on_anycast_the_origin_stays_hidden_and_a_flush_is_repaired() {
    let lab = example::serving_client_a().expect("the lab serves client-a");
    let probe = lab.run_dir().join("probe.nft");
    std::fs::write(&probe, PROBE).expect("write the probe table");
    lab.exec(NODE, "nft", &["-f", &probe.to_string_lossy()])
        .expect("the probe table");
    runs_with_three_capabilities_only(&lab);
    replies_stay_on_anycast(&lab);
    the_origin_stays_hidden(&lab);
    a_flush_is_repaired_and_foreign_routes_stay(&lab);
    a_reconcile_with_nothing_to_do_writes_nothing(&lab);
}

/// `ixgate run` holds CAP_NET_BIND_SERVICE (10), CAP_NET_ADMIN (12) and
/// CAP_NET_RAW (13) and nothing else, as packaging/systemd grants, and all
/// of this works with them.
fn runs_with_three_capabilities_only(lab: &Lab) {
    let pid = lab.appliance_pid(NODE).expect("node-1's ixgate process");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("its status");
    let effective = status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))
        .map(str::trim)
        .unwrap_or_default();
    assert_eq!(effective, "0000000000003400", "{status}");
}

/// The app's request, and its replies out of the anycast interface only.
fn replies_stay_on_anycast(lab: &Lab) {
    let request = example::bank_a_app(lab);
    let outcome = lab.request(CLIENT, &request).expect("curl runs");
    assert!(
        matches!(outcome, ClientOutcome::Response { status: 200, .. }),
        "{outcome:?}"
    );
    assert!(probe_counter(lab, "via_anycast") > 0, "replies went out");
    assert_eq!(
        probe_counter(lab, "via_transit"),
        0,
        "not one anycast-sourced packet on transit"
    );
}

/// The origin answers the node's transit side, and no one else.
fn the_origin_stays_hidden(lab: &Lab) {
    for outsider in [CLIENT, "attacker", "telco-a", "telco-b"] {
        let reached = lab.exec(
            outsider,
            "ping",
            &["-n", "-q", "-c", "1", "-W", "1", ORIGIN],
        );
        assert!(reached.is_err(), "{outsider} reached the origin");
    }
    lab.exec(
        NODE,
        "ping",
        &[
            "-n",
            "-q",
            "-c",
            "1",
            "-W",
            "2",
            "-I",
            "203.0.113.11",
            ORIGIN,
        ],
    )
    .expect("node-1 reaches the origin from its transit source");
}

/// Desired and actual agree, rule by rule. Then someone else's route
/// beside ours, and the transit link flaps: the kernel flushes our transit
/// table's way out; it is back within 1 s, theirs is untouched.
fn a_flush_is_repaired_and_foreign_routes_stay(lab: &Lab) {
    let status = routing(lab);
    assert_eq!(status["in_sync"], true, "{status:#}");
    let rule = status["objects"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|object| object["object"] == "1000: from 192.0.2.0/24 lookup 100")
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        (&rule["desired"], &rule["actual"]),
        (&Value::Bool(true), &Value::Bool(true))
    );

    lab.exec(
        NODE,
        "ip",
        &[
            "route",
            "add",
            "unreachable",
            "10.0.0.0/8",
            "table",
            "101",
            "proto",
            "static",
        ],
    )
    .expect("a foreign route");
    // The interface's own addresses are the operator's: keep the IPv6 one
    // over the flap, as an operator would (by default the kernel drops it
    // on admin-down, and the IPv6 way out cannot come back without it).
    lab.exec(
        NODE,
        "sysctl",
        &["-qw", "net.ipv6.conf.transit0.keep_addr_on_down=1"],
    )
    .expect("sysctl");
    let writes = number(&routing(lab)["writes"]);
    lab.exec(NODE, "ip", &["link", "set", "transit0", "down"])
        .expect("down");
    lab.exec(NODE, "ip", &["link", "set", "transit0", "up"])
        .expect("up");
    wait::until(Duration::from_secs(1), "the transit table repaired", || {
        let status = routing(lab);
        if status["in_sync"] == true && number(&status["writes"]) > writes {
            Ok(())
        } else {
            Err(NotYet::Pending(status.to_string()))
        }
    })
    .expect("repaired within a second");
    let foreign = lab
        .exec(
            NODE,
            "ip",
            &["route", "show", "table", "101", "proto", "static"],
        )
        .expect("ip route");
    assert!(
        String::from_utf8_lossy(&foreign.stdout).contains("10.0.0.0/8"),
        "the foreign route stays"
    );
}

/// A reconcile with nothing to do (an unrelated address event) writes
/// nothing.
fn a_reconcile_with_nothing_to_do_writes_nothing(lab: &Lab) {
    let settled = routing(lab);
    lab.exec(NODE, "ip", &["addr", "add", "198.18.0.1/32", "dev", "lo"])
        .expect("an unrelated address: an event");
    let after = wait::until(Duration::from_secs(2), "another reconcile", || {
        let status = routing(lab);
        if number(&status["reconciles"]) > number(&settled["reconciles"]) {
            Ok(status)
        } else {
            Err(NotYet::Pending(status.to_string()))
        }
    })
    .expect("the event reconciled");
    assert_eq!(after["writes"], settled["writes"], "{after:#}");
}
