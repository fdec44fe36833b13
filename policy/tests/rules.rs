//! The rules that span keys and files, checked on configurations built in
//! memory (the golden examples in examples/invalid cover the listed ones
//! end to end; these cover the rest).

#![allow(clippy::expect_used)] // a test may stop at what it cannot set up

mod common;

use common::{TELCO_A, TELCO_B, node_with};
use ixgate_policy::node::NodeFile;
use ixgate_policy::telco::TelcoFile;
use ixgate_policy::{Config, Finding};

fn findings(node: &str, telcos: &[&str]) -> Vec<Finding> {
    let node: NodeFile = toml::from_str(node).expect("node file parses");
    let telcos: Vec<TelcoFile> = telcos
        .iter()
        .map(|text| toml::from_str(text).expect("telco file parses"))
        .collect();
    Config::new(node, telcos).err().unwrap_or_default()
}

/// The one finding for `node` with the lab's two telcos, as "path: message".
fn only_finding(edit: impl Fn(String) -> String) -> String {
    let found = findings(&node_with("telco-a", edit), &[TELCO_A, TELCO_B]);
    assert_eq!(found.len(), 1, "{found:#?}");
    found[0].to_string()
}

#[test]
fn the_template_is_valid() {
    assert_eq!(
        findings(&node_with("telco-a", |n| n), &[TELCO_A, TELCO_B]),
        []
    );
}

#[test]
fn a_withdrawal_rate_needs_withdrawal_allowed() {
    let telco = format!("{TELCO_A}[mitigation]\nwithdraw_above_pps = 5000\n");
    let found = findings(&node_with("telco-a", |n| n), &[&telco, TELCO_B]);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0]
            .to_string()
            .contains("mitigation.withdraw_above_pps: a flood rate to withdraw at is given"),
        "{}",
        found[0]
    );
    let allowed = format!("{TELCO_A}[mitigation]\nwithdraw = true\nwithdraw_above_pps = 5000\n");
    assert_eq!(
        findings(&node_with("telco-a", |n| n), &[&allowed, TELCO_B]),
        []
    );
}

#[test]
fn anycast_and_transit_interfaces_differ() {
    let found = only_finding(|n| n.replace("transit = \"transit0\"", "transit = \"ixp0\""));
    assert!(
        found.contains(
            "interfaces.transit: the transit interface must not be the anycast interface"
        ),
        "{found}"
    );
}

#[test]
fn lo_takes_no_holder_name() {
    let found = only_finding(|n| {
        n.replace(
            "anycast_holder = \"lo\"",
            "anycast_holder = \"lo\"\nanycast_holder_name = \"x0\"",
        )
    });
    assert!(found.contains("interfaces.anycast_holder_name"), "{found}");
}

#[test]
fn overlapping_prefixes() {
    let found = only_finding(|n| {
        n.replace(
            "\"2001:db8:200::/48\"]",
            "\"2001:db8:200::/48\", \"2001:db8:100::/47\"]",
        )
    });
    assert!(
        found.contains("anycast.prefixes[3]: 2001:db8:100::/47 overlaps 2001:db8:100::/48"),
        "{found}"
    );
}

#[test]
fn transit_source_inside_anycast() {
    let found =
        only_finding(|n| n.replace("sources = [\"203.0.113.11\"]", "sources = [\"192.0.2.99\"]"));
    assert!(
        found.contains(
            "transit.sources[0]: transit source 192.0.2.99 is inside anycast prefix 192.0.2.0/24"
        ),
        "{found}"
    );
}

#[test]
fn transit_source_without_gateway() {
    let found = only_finding(|n| {
        n.replace(
            "sources = [\"203.0.113.11\"]",
            "sources = [\"203.0.113.11\", \"2001:db8:300::11\"]",
        )
    });
    assert!(
        found.contains("no IPv6 gateway for transit source 2001:db8:300::11"),
        "{found}"
    );
}

#[test]
fn metrics_never_on_every_address_or_anycast() {
    let found = only_finding(|n| n.replace("127.0.0.1:9180", "0.0.0.0:9180"));
    assert!(
        found.contains("management.metrics: 0.0.0.0 would serve metrics on every address"),
        "{found}"
    );
    let found = only_finding(|n| n.replace("127.0.0.1:9180", "192.0.2.10:9180"));
    assert!(
        found.contains("inside anycast prefix 192.0.2.0/24"),
        "{found}"
    );
}

/// The template's service as a second one, `bank-b`, answering `sni`.
fn bank_b_like_bank_a(node: &str, sni: &str) -> String {
    node.split("[[services]]")
        .nth(1)
        .expect("a service")
        .replace("bank-a\"", "bank-b\"")
        .replace("api.bank-a.example", sni)
}

#[test]
fn one_service_per_sni_name() {
    let found = only_finding(|n| {
        let service = bank_b_like_bank_a(&n, "api.bank-a.example");
        format!("{n}\n[[services]]{service}")
    });
    assert!(
        found.contains(
            "services[1].sni[0]: SNI name api.bank-a.example is already served by service bank-a"
        ),
        "{found}"
    );
}

#[test]
fn a_neighbour_family_needs_a_local_address() {
    let found = only_finding(|n| n.replace("local_v6 = \"2001:db8:ff::11\"\n", ""));
    assert!(
        found.starts_with("Telco(0) neighbor_v6: an IPv6 neighbour needs bgp.local_v6"),
        "{found}"
    );
}

#[test]
fn telcos_peer_over_ebgp_only() {
    let found = findings(
        &node_with("telco-a", |n| n),
        &[&TELCO_A.replace("65010", "65000"), TELCO_B],
    );
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(found[0].to_string().contains("AS65000 is our own AS"));
}

#[test]
fn rtbh_needs_a_community() {
    let telco = format!("{TELCO_B}[mitigation]\nrtbh = true\nrtbh_communities = []\n");
    let found = findings(&node_with("telco-a", |n| n), &[TELCO_A, &telco]);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0]
            .to_string()
            .contains("mitigation.rtbh_communities: RTBH is allowed but no RTBH community")
    );
}

#[test]
fn paired_telco_must_be_strictly_shortest() {
    let telco_b = format!("{TELCO_B}[prepend]\nnot_paired = 0\n");
    let found = findings(&node_with("telco-a", |n| n), &[TELCO_A, &telco_b]);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0]
            .to_string()
            .starts_with("Telco(1) prepend.not_paired: telco telco-b would get 0 prepends")
    );
}

#[test]
fn http3_takes_service_addresses_each_for_one_service_only() {
    let http3 = |addresses: &str| {
        let addresses = addresses.to_owned();
        move |n: String| {
            let service = bank_b_like_bank_a(&n, "api.bank-b.example");
            format!(
                "{n}\n[services.http3]\naddresses = [\"192.0.2.10\"]\n\n[[services]]{service}\n\
                 [services.http3]\naddresses = [{addresses}]\n"
            )
        }
    };
    assert_eq!(
        findings(
            &node_with("telco-a", http3("\"192.0.2.10\"")),
            &[TELCO_A, TELCO_B]
        )
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>(),
        [
            "Node services[1].http3.addresses[0]: 192.0.2.10 already takes HTTP/3 for service \
          bank-a: QUIC chooses the bank by address, so each service needs its own"
        ]
    );
    let found = only_finding(http3("\"192.0.2.99\""));
    assert!(
        found.contains(
            "services[1].http3.addresses[0]: 192.0.2.99 is not one of [anycast] service_ips"
        ),
        "{found}"
    );
    let found = only_finding(http3(""));
    assert!(
        found.contains("services[1].http3.addresses: HTTP/3 needs at least one service address"),
        "{found}"
    );
    let found = only_finding(|n| format!("{n}\n[quic]\nmax_handshakes = 0\n"));
    assert!(found.contains("quic.max_handshakes"), "{found}");
}

#[test]
fn proxy_threads_are_one_or_more() {
    let found = only_finding(|n| format!("{n}\n[proxy]\nthreads = 0\n"));
    assert!(
        found.contains("proxy.threads: between 1 and 256 proxy threads"),
        "{found}"
    );
    assert_eq!(
        findings(
            &node_with("telco-a", |n| format!("{n}\n[proxy]\nthreads = 2\n")),
            &[TELCO_A, TELCO_B]
        ),
        []
    );
}
