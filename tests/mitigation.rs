//! The mitigation loop of `ixgate run` in the lab of examples/lab: a
//! spoofed SYN flood from the attacker behind telco-a is detected in
//! node-1's kernel counters, the controller originates a Flowspec rule
//! from the flood's signature, the telcos (BIRD and FRR) hold it within a
//! fraction of a second, and it is withdrawn after the hold-down once the
//! flood is over. Every decision is listed with its reason.

#![allow(clippy::expect_used)] // a test may stop at what it cannot set up

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use ixgate_testbed::Lab;
use ixgate_testbed::example;
use ixgate_testbed::flood::{Flood, FloodKind, FloodRate};
use ixgate_testbed::routers::{Family, FlowRoute};
use ixgate_testbed::wait::{self, NotYet};

/// One lab at a time: the 2 cores are for one lab's routers and floods.
static ONE_LAB: std::sync::Mutex<()> = std::sync::Mutex::new(());

const NODE: &str = "node-1";
const SERVICE: Ipv4Addr = example::BANK_A;
/// The lab's thresholds (examples/lab/node-1): SYN enter 5 000 pps; the
/// flood is paced at most four times that.
const FLOOD_PPS: u64 = 20_000;
/// examples/lab/node-1 `[flood]`: 3 s minimum, 5 s hold-down.
const HOLD_DOWN: Duration = Duration::from_secs(5);

/// The rule the flood's signature gives: SYNs to the service's port 443,
/// discarded. The routers' tables show destination, protocol and port.
fn expected_rule() -> FlowRoute {
    FlowRoute {
        from: None,
        destination: Some(IpAddr::V4(SERVICE).into()),
        source: None,
        protocol: Some(6),
        destination_port: Some(443),
        rate_bytes: Some(0.0),
        text: String::new(),
    }
}

/// Whether `telco` holds the flood's rule now.
fn holds_rule(lab: &Lab, telco: &str) -> Result<bool, NotYet> {
    let rules = lab
        .router(telco)
        .map_err(|error| NotYet::Failed(error.to_string()))?
        .flow_routes(Family::Ipv4)
        .map_err(|error| NotYet::Pending(error.to_string()))?;
    Ok(rules.iter().any(|rule| rule.matches(&expected_rule())))
}

/// Whether node-1's per-destination limits are tightened now.
fn firewall_tightened(lab: &Lab) -> Result<bool, NotYet> {
    let metrics = lab
        .metrics(NODE)
        .map_err(|error| NotYet::Failed(error.to_string()))?;
    Ok(metrics.value("ixgate_firewall_tightened") == Some(1.0))
}

/// Waits up to `within` until `holds` answers `want`.
fn until_it_is(
    within: Duration,
    what: &str,
    want: bool,
    holds: impl Fn() -> Result<bool, NotYet>,
) -> Result<(), ixgate_testbed::LabError> {
    wait::until(within, what, || {
        if holds()? == want {
            Ok(())
        } else {
            Err(NotYet::Pending(format!("not yet {want}")))
        }
    })
}

/// The controller's decisions as `show mitigations` lists them.
fn listed(lab: &Lab) -> (serde_json::Value, Vec<serde_json::Value>) {
    let mitigations = lab.ctl(NODE, &["show", "mitigations"]).expect("ctl");
    let decisions = mitigations["decisions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    (mitigations, decisions)
}

#[test]
fn a_spoofed_syn_flood_becomes_a_flowspec_rule_at_both_telcos_and_goes_after_the_hold_down() {
    let _one = ONE_LAB
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let lab = example::serving_client_a().expect("the lab serves client-a");
    assert!(
        !holds_rule(&lab, "telco-a").expect("query"),
        "no rule before"
    );

    let flood = Flood::new(
        FloodKind::Syn { port: 443 },
        SERVICE,
        FLOOD_PPS * 3,
        Duration::from_secs(3),
    )
    .rate(FloodRate::PacketsPerSecond(FLOOD_PPS));
    let (report, rule_after, tightened, flood_over) = std::thread::scope(|scope| {
        let flooding = scope.spawn(|| lab.flood("attacker", &flood));
        let started = Instant::now();
        let seen = wait::until(Duration::from_secs(3), "the rule at telco-a", || {
            if holds_rule(&lab, "telco-a")? {
                Ok(started.elapsed())
            } else {
                Err(NotYet::Pending("not yet".into()))
            }
        });
        // The controller tightens node-1's own limits while it lasts.
        let tightened = until_it_is(
            Duration::from_secs(1),
            "the firewall tightened",
            true,
            || firewall_tightened(&lab),
        );
        let report = flooding.join().expect("the flood thread");
        (report, seen, tightened, Instant::now())
    });
    tightened.expect("tightened during the flood");
    let report = report.expect("the flood ran");
    let rule_after = rule_after.expect("telco-a holds the rule during the flood");
    println!("{report:?}; rule at telco-a {rule_after:?} after the flood's start");
    until_it_is(Duration::from_secs(2), "the rule at telco-b", true, || {
        holds_rule(&lab, "telco-b")
    })
    .expect("telco-b (FRR) holds it too");

    let (mitigations, decisions) = listed(&lab);
    assert!(
        decisions.iter().any(|decision| {
            decision["intent"]
                .as_str()
                .is_some_and(|i| i.starts_with("add Flowspec dst 192.0.2.10/32 proto 6 dport 443"))
                && decision["reason"]
                    .as_str()
                    .is_some_and(|r| r.contains("Syn flood to 192.0.2.10"))
        }),
        "the decision and its reason are listed: {mitigations:#}"
    );

    assert!(
        decisions
            .iter()
            .any(|decision| decision["intent"] == "tighten the firewall's per-destination limits"),
        "the controller tightened the firewall: {mitigations:#}"
    );
    let metrics = lab.metrics(NODE).expect("metrics");
    for (sample, at_least) in [
        ("ixgate_mitigations_active{kind=\"flowspec\"}", 1.0),
        (
            "ixgate_bgp_session_up{telco=\"telco-a\",neighbor=\"198.51.100.1\"}",
            1.0,
        ),
        ("ixgate_controller_decisions_total", 1.0),
        (
            "ixgate_firewall_packets_total{target=\"192.0.2.10\",class=\"syn\"}",
            f64::from(u32::try_from(FLOOD_PPS).unwrap_or(u32::MAX)),
        ),
    ] {
        let value = metrics.value(sample).unwrap_or_default();
        assert!(value >= at_least, "{sample} = {value}\n{metrics}");
    }
    assert_eq!(metrics.0.matches("# EOF").count(), 1, "{metrics}");
    assert!(metrics.0.ends_with("# EOF\n"), "{metrics}");

    // The detector ends the flood ~3 s after it stops; the rule goes after
    // the hold-down.
    let gone = wait::until(Duration::from_secs(15), "the rule withdrawn", || {
        if holds_rule(&lab, "telco-a")? {
            Err(NotYet::Pending("still there".into()))
        } else {
            Ok(flood_over.elapsed())
        }
    })
    .expect("the rule is withdrawn");
    assert!(
        gone >= HOLD_DOWN,
        "withdrawn {gone:?} after the flood: before the hold-down"
    );
    assert!(
        !firewall_tightened(&lab).expect("metrics"),
        "relaxed once the flood ended"
    );
    println!("rule withdrawn {gone:?} after the flood stopped");
}

/// Whether `telco` holds node-1's route to the anycast prefix now.
fn holds_node_1_route(lab: &Lab, telco: &str) -> Result<bool, NotYet> {
    let routes = lab
        .router(telco)
        .map_err(|error| NotYet::Failed(error.to_string()))?
        .unicast_routes(Family::Ipv4)
        .map_err(|error| NotYet::Pending(error.to_string()))?;
    Ok(routes.iter().any(|route| {
        route.prefix.to_string() == "192.0.2.0/24" && route.from.to_string() == NODE_1_PEERING
    }))
}

/// node-1's address on the peering LAN, where the telcos see its routes.
const NODE_1_PEERING: &str = "198.51.100.11";

#[test]
fn a_flood_spending_telco_as_share_withdraws_node_1_from_telco_a_alone_and_comes_back() {
    let _one = ONE_LAB
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let lab = example::serving_client_a().expect("the lab serves client-a");
    for telco in ["telco-a", "telco-b"] {
        until_it_is(Duration::from_secs(10), "node-1's route", true, || {
            holds_node_1_route(&lab, telco)
        })
        .unwrap_or_else(|error| panic!("{telco} has node-1's route before: {error}"));
    }
    // Flat out through telco-a, far above its 30 000 pps share
    // (examples/lab/telcos/telco-a.toml); bounded in packets and time.
    let flood = Flood::new(
        FloodKind::Syn { port: 443 },
        SERVICE,
        400_000,
        Duration::from_secs(2),
    )
    .rate(FloodRate::FlatOut);
    let withdrawn = std::thread::scope(|scope| {
        let flooding = scope.spawn(|| lab.flood("attacker", &flood));
        let withdrawn = until_it_is(
            Duration::from_secs(5),
            "node-1 gone from telco-a",
            false,
            || holds_node_1_route(&lab, "telco-a"),
        );
        // telco-b was not flooded through: it keeps node-1.
        let kept = holds_node_1_route(&lab, "telco-b");
        let report = flooding.join().expect("the flood thread");
        (withdrawn, kept, report)
    });
    let (gone, kept, report) = withdrawn;
    let report = report.expect("the flood ran");
    gone.expect("node-1 withdrew from telco-a");
    assert!(
        kept.expect("query telco-b"),
        "telco-b keeps node-1's route: {report:?}"
    );
    let (mitigations, decisions) = listed(&lab);
    assert!(
        decisions.iter().any(|decision| {
            decision["intent"] == "withdraw the anycast prefixes from telco-a"
                && decision["reason"]
                    .as_str()
                    .is_some_and(|r| r.contains("floods through telco-a at"))
        }),
        "the withdrawal and its reason are listed: {mitigations:#}"
    );
    // Once the flood's mitigation has served its minimum and hold-down
    // (3 s and 5 s in the lab), node-1 is back at telco-a.
    until_it_is(
        Duration::from_secs(30),
        "node-1 back at telco-a",
        true,
        || holds_node_1_route(&lab, "telco-a"),
    )
    .expect("announced to telco-a again");
    let (mitigations, _) = listed(&lab);
    assert_eq!(
        mitigations["withdrawn_telcos"],
        serde_json::json!([]),
        "{mitigations:#}"
    );
}
