//! The rendered ruleset: its shape from policy (pure), and, in a network
//! namespace of the test's own, the kernel holding exactly the ruleset
//! written out by hand below in nft's syntax.

use std::net::IpAddr;
use std::path::Path;
use std::process::Command;

use ixgate_policy::node::Firewall;

use super::*;
use crate::install::{Installer, batch_for};
use crate::nft::tests::{assert_same_as_nft_after, in_new_namespace, nft_file, nft_json};

/// node-1 of the lab, cut down to one service address per family and one
/// telco, with the default firewall settings.
fn small_config() -> Config {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/lab/node-1");
    let mut config = ixgate_policy::load(&dir).expect("the lab configuration loads");
    config.node.anycast.service_ips = vec![
        "192.0.2.10".parse().expect("address"),
        "2001:db8:100::10".parse().expect("address"),
    ];
    config
        .telcos
        .retain(|telco| telco.name.as_str() == "telco-a");
    config.node.firewall = Firewall::default();
    config
}

/// The ruleset of [`small_config`] with default knobs, as an operator
/// would write it for nft.
const INTENDED: &str = r#"table netdev ixgate {
  set trusted_v4 { type ipv4_addr; size 65536; flags timeout; timeout 10m; }
  set syn_v4 { type ipv4_addr; size 65536; flags dynamic,timeout; timeout 10s; }
  set udp_v4 { type ipv4_addr; size 65536; flags dynamic,timeout; timeout 10s; }
  set icmp_v4 { type ipv4_addr; size 65536; flags dynamic,timeout; timeout 10s; }
  set trusted_v6 { type ipv6_addr; size 65536; flags timeout; timeout 10m; }
  set syn_v6 { type ipv6_addr; size 65536; flags dynamic,timeout; timeout 10s; }
  set udp_v6 { type ipv6_addr; size 65536; flags dynamic,timeout; timeout 10s; }
  set icmp_v6 { type ipv6_addr; size 65536; flags dynamic,timeout; timeout 10s; }
  counter svc_192_0_2_10_syn { }
  counter svc_192_0_2_10_tcp_other { }
  counter svc_192_0_2_10_udp { }
  counter svc_192_0_2_10_icmp { }
  counter svc_192_0_2_10_fragment { }
  counter svc_192_0_2_10_dropped_filter { }
  counter svc_192_0_2_10_dropped_limit { }
  counter anycast_v4_dropped_filter { }
  counter svc_2001_db8_100__10_syn { }
  counter svc_2001_db8_100__10_tcp_other { }
  counter svc_2001_db8_100__10_udp { }
  counter svc_2001_db8_100__10_icmp { }
  counter svc_2001_db8_100__10_fragment { }
  counter svc_2001_db8_100__10_dropped_filter { }
  counter svc_2001_db8_100__10_dropped_limit { }
  counter anycast_v6_dropped_filter { }
  chain ingress {
    type filter hook ingress device "ixp0" priority -500; policy accept;
    meta protocol arp accept
    meta protocol ip6 icmpv6 type nd-router-solicit accept
    meta protocol ip6 icmpv6 type nd-router-advert accept
    meta protocol ip6 icmpv6 type nd-neighbor-solicit accept
    meta protocol ip6 icmpv6 type nd-neighbor-advert accept
    meta protocol ip6 icmpv6 type nd-redirect accept
    meta protocol ip goto ipv4
    meta protocol ip6 goto ipv6
  }
  chain sample {
    numgen random mod 1024 == 0 limit rate 2000/second burst 200 packets log group 4242 snaplen 128
  }
  chain ipv4 {
    meta protocol ip ip saddr 198.51.100.1 tcp dport 179 accept
    meta protocol ip ip saddr 198.51.100.1 tcp sport 179 accept
    meta protocol ip ip daddr 192.0.2.10 goto svc_192_0_2_10
    meta protocol ip ip daddr 192.0.2.0/24 counter name "anycast_v4_dropped_filter" drop
  }
  chain svc_192_0_2_10 {
    meta protocol ip ip frag-off & 0x3fff != 0 counter name "svc_192_0_2_10_fragment" drop
    jump sample
    tcp flags & (fin|syn|rst|ack) == syn counter name "svc_192_0_2_10_syn" goto svc_192_0_2_10_syn
    meta l4proto tcp counter name "svc_192_0_2_10_tcp_other" goto svc_192_0_2_10_tcp
    meta l4proto udp counter name "svc_192_0_2_10_udp" goto svc_192_0_2_10_udp
    meta l4proto icmp counter name "svc_192_0_2_10_icmp" goto svc_192_0_2_10_icmp
    counter name "svc_192_0_2_10_dropped_filter" drop
  }
  chain svc_192_0_2_10_syn {
    tcp dport != 443 counter name "svc_192_0_2_10_dropped_filter" drop
    meta protocol ip add @syn_v4 { ip saddr limit rate over 200/second burst 20 packets } counter name "svc_192_0_2_10_dropped_limit" drop
    meta protocol ip ip saddr @trusted_v4 notrack accept
    limit rate over 20000/second burst 2000 packets counter name "svc_192_0_2_10_dropped_limit" drop
    notrack accept
  }
  chain svc_192_0_2_10_tcp {
    tcp dport 443 accept
    counter name "svc_192_0_2_10_dropped_filter" drop
  }
  chain svc_192_0_2_10_udp {
    udp dport != 443 counter name "svc_192_0_2_10_dropped_filter" drop
    meta protocol ip add @udp_v4 { ip saddr limit rate over 5000/second burst 500 packets } counter name "svc_192_0_2_10_dropped_limit" drop
    limit rate over 200000/second burst 20000 packets counter name "svc_192_0_2_10_dropped_limit" drop
    notrack accept
  }
  chain svc_192_0_2_10_icmp {
    meta protocol ip add @icmp_v4 { ip saddr limit rate over 10/second burst 5 packets } counter name "svc_192_0_2_10_dropped_limit" drop
    limit rate over 1000/second burst 100 packets counter name "svc_192_0_2_10_dropped_limit" drop
    notrack accept
  }
  chain ipv6 {
    meta protocol ip6 ip6 saddr 2001:db8:ff::1 tcp dport 179 accept
    meta protocol ip6 ip6 saddr 2001:db8:ff::1 tcp sport 179 accept
    meta protocol ip6 ip6 daddr 2001:db8:100::10 goto svc_2001_db8_100__10
    meta protocol ip6 ip6 daddr 2001:db8:100::/48 counter name "anycast_v6_dropped_filter" drop
  }
  chain svc_2001_db8_100__10 {
    meta protocol ip6 exthdr frag exists counter name "svc_2001_db8_100__10_fragment" drop
    jump sample
    tcp flags & (fin|syn|rst|ack) == syn counter name "svc_2001_db8_100__10_syn" goto svc_2001_db8_100__10_syn
    meta l4proto tcp counter name "svc_2001_db8_100__10_tcp_other" goto svc_2001_db8_100__10_tcp
    meta l4proto udp counter name "svc_2001_db8_100__10_udp" goto svc_2001_db8_100__10_udp
    meta l4proto ipv6-icmp counter name "svc_2001_db8_100__10_icmp" goto svc_2001_db8_100__10_icmp
    counter name "svc_2001_db8_100__10_dropped_filter" drop
  }
  chain svc_2001_db8_100__10_syn {
    tcp dport != 443 counter name "svc_2001_db8_100__10_dropped_filter" drop
    meta protocol ip6 add @syn_v6 { ip6 saddr limit rate over 200/second burst 20 packets } counter name "svc_2001_db8_100__10_dropped_limit" drop
    meta protocol ip6 ip6 saddr @trusted_v6 notrack accept
    limit rate over 20000/second burst 2000 packets counter name "svc_2001_db8_100__10_dropped_limit" drop
    notrack accept
  }
  chain svc_2001_db8_100__10_tcp {
    tcp dport 443 accept
    counter name "svc_2001_db8_100__10_dropped_filter" drop
  }
  chain svc_2001_db8_100__10_udp {
    udp dport != 443 counter name "svc_2001_db8_100__10_dropped_filter" drop
    meta protocol ip6 add @udp_v6 { ip6 saddr limit rate over 5000/second burst 500 packets } counter name "svc_2001_db8_100__10_dropped_limit" drop
    limit rate over 200000/second burst 20000 packets counter name "svc_2001_db8_100__10_dropped_limit" drop
    notrack accept
  }
  chain svc_2001_db8_100__10_icmp {
    meta protocol ip6 add @icmp_v6 { ip6 saddr limit rate over 10/second burst 5 packets } counter name "svc_2001_db8_100__10_dropped_limit" drop
    limit rate over 1000/second burst 100 packets counter name "svc_2001_db8_100__10_dropped_limit" drop
    notrack accept
  }
}
table inet ixgate {
  chain input {
    type filter hook input priority filter; policy accept;
    ip daddr 192.0.2.10 tcp dport 443 ct state invalid,untracked synproxy mss 1460
    ip daddr 192.0.2.10 tcp dport 443 ct state invalid drop
    ip6 daddr 2001:db8:100::10 tcp dport 443 ct state invalid,untracked synproxy mss 1440
    ip6 daddr 2001:db8:100::10 tcp dport 443 ct state invalid drop
  }
}
"#;

/// The anycast interface of the lab's nodes, as a veth pair.
fn make_ixp0() {
    let status = Command::new("ip")
        .args([
            "link",
            "add",
            "ixp0",
            "type",
            "veth",
            "peer",
            "name",
            "ixp0-peer",
        ])
        .status()
        .expect("ip runs");
    assert!(status.success(), "veth ixp0");
}

#[test]
fn the_rendered_ruleset_reads_back_as_the_intended_one() {
    let ruleset = render(&small_config(), Knobs::default());
    assert_same_as_nft_after(
        make_ixp0,
        move |batch| *batch = batch_for(None, &ruleset),
        INTENDED,
    );
}

fn rule_with<'a>(ruleset: &'a Ruleset, chain: &str, wanted: &Expression) -> &'a Rule {
    ruleset
        .tables
        .iter()
        .flat_map(|table| &table.rules)
        .find(|rule| rule.chain == chain && rule.expressions.contains(wanted))
        .unwrap_or_else(|| panic!("a rule in {chain} with {wanted:?}"))
}

#[test]
fn every_service_address_gets_a_counter_per_class_and_the_rest_of_the_prefixes_one() {
    let config = small_config();
    let ruleset = render(&config, Knobs::default());
    for service in &config.node.anycast.service_ips {
        let counted: Vec<Counted> = ruleset
            .counters
            .iter()
            .filter(|counter| counter.target == Some(*service))
            .map(|counter| counter.counted)
            .collect();
        assert_eq!(counted, Counted::ALL, "{service}");
    }
    let others = ruleset
        .counters
        .iter()
        .filter(|counter| counter.target.is_none())
        .count();
    assert_eq!(others, 2, "one per family");
    // The table creates every counter the list names.
    let netdev: Vec<&String> = ruleset.tables[0].counters.iter().collect();
    let listed: Vec<&String> = ruleset.counters.iter().map(|c| &c.name).collect();
    assert_eq!(netdev, listed);
}

#[test]
fn tightening_divides_only_the_per_destination_limits() {
    let config = small_config();
    let normal = render(&config, Knobs::default());
    let tight = render(
        &config,
        Knobs {
            tightened: true,
            ..Knobs::default()
        },
    );
    let limit = |rate: u64| Expression::Limit {
        rate,
        burst: burst_of(rate),
        over: true,
    };
    rule_with(&normal, "svc_192_0_2_10_syn", &limit(20_000));
    rule_with(&tight, "svc_192_0_2_10_syn", &limit(5_000));
    rule_with(&tight, "svc_192_0_2_10_udp", &limit(50_000));
    rule_with(&tight, "svc_192_0_2_10_icmp", &limit(250));
    // Sets, counters and chains are the same: only rules change in place.
    for (a, b) in normal.tables.iter().zip(&tight.tables) {
        assert_eq!(a.sets, b.sets);
        assert_eq!(a.counters, b.counters);
        assert_eq!(a.chains, b.chains);
    }
}

#[test]
fn the_sampling_rate_is_the_numgen_modulus() {
    let ruleset = render(
        &small_config(),
        Knobs {
            sample_one_in: 64,
            ..Knobs::default()
        },
    );
    rule_with(
        &ruleset,
        "sample",
        &Expression::RandomNumber { modulus: 64 },
    );
}

#[test]
fn a_prefix_that_is_not_whole_bytes_is_masked_as_nft_reads_it() {
    let mut config = small_config();
    config.node.anycast.prefixes = vec![
        ixgate_policy::types::Prefix::new("192.0.2.0/23".parse().expect("net")).expect("prefix"),
    ];
    config.node.anycast.service_ips = vec!["192.0.2.10".parse().expect("address")];
    let ruleset = render(&config, Knobs::default());
    let rule = rule_with(
        &ruleset,
        "ipv4",
        &Expression::NamedCounter("anycast_v4_dropped_filter".into()),
    );
    assert!(
        rule.expressions.contains(&Expression::Mask {
            mask: vec![0xff, 0xff, 0xfe, 0x00]
        }),
        "{rule:?}"
    );
    let listed = in_new_namespace(move || {
        make_ixp0();
        Installer::default().apply(&ruleset).expect("applied");
        let output = Command::new("nft")
            .args(["list", "chain", "netdev", "ixgate", "ipv4"])
            .output()
            .expect("nft");
        String::from_utf8_lossy(&output.stdout).into_owned()
    });
    assert!(
        listed.contains(r#"ip daddr 192.0.2.0/23 counter name "anycast_v4_dropped_filter" drop"#),
        "{listed}"
    );
}

/// Names of the tables in the listing, as "family name".
fn tables(listing: &serde_json::Value) -> Vec<String> {
    listing["nftables"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|item| item.get("table"))
        .map(|table| format!("{} {}", table["family"], table["name"]))
        .collect()
}

#[test]
fn apply_reapply_tighten_and_remove_leave_foreign_tables_alone_and_keep_counters() {
    let (foreign_before, foreign_after, counters, tables_after) = in_new_namespace(|| {
        crate::nft::tests::bring_lo_up();
        let foreign = "table inet operator {\n  counter seen { }\n  chain input {\n    type filter hook input priority 10; policy accept;\n    counter name \"seen\"\n  }\n}\ntable netdev operator {\n  chain ingress {\n    type filter hook ingress device \"lo\" priority 0; policy accept;\n  }\n}\n";
        nft_file(foreign);
        let foreign_only = || {
            let mut value = nft_json(&["list", "table", "inet", "operator"]);
            strip_counts(&mut value);
            (value, nft_json(&["list", "table", "netdev", "operator"]))
        };
        let before = foreign_only();

        // Our chain on lo, where the test can send packets through it.
        let mut config = small_config();
        config.node.interfaces.anycast = "lo".parse().expect("name");
        let mut installer = Installer::default();
        installer
            .apply(&render(&config, Knobs::default()))
            .expect("first apply");
        // The counter of the anycast rest counts what the rule drops.
        send_udp_to("192.0.2.99");
        let read = || {
            crate::nft::read_counters(Family::Netdev, TABLE, &["anycast_v4_dropped_filter"])
                .expect("counter")[0]
                .packets
        };
        let counted = read();
        installer
            .apply(&render(&config, Knobs::default()))
            .expect("re-apply");
        let after_reapply = read();
        installer
            .apply(&render(
                &config,
                Knobs {
                    tightened: true,
                    sample_one_in: 8,
                },
            ))
            .expect("tighten");
        let after_tighten = read();
        installer
            .trust(&["198.51.100.66".parse::<IpAddr>().expect("ip")])
            .expect("trust");
        installer.remove().expect("remove");
        let after = foreign_only();
        (
            before,
            after,
            (counted, after_reapply, after_tighten),
            tables(&nft_json(&["list", "ruleset"])),
        )
    });
    assert_eq!(foreign_before, foreign_after, "foreign tables untouched");
    let (counted, after_reapply, after_tighten) = counters;
    assert!(counted >= 1, "the drop was counted: {counted}");
    assert_eq!(counted, after_reapply, "re-apply keeps counters");
    assert_eq!(counted, after_tighten, "tightening keeps counters");
    assert_eq!(
        tables_after,
        vec![r#""inet" "operator""#, r#""netdev" "operator""#],
        "only ours removed"
    );
}

/// Packets counted by a foreign rule vary with what the kernel sends; the
/// comparison is about structure.
fn strip_counts(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            map.remove("packets");
            map.remove("bytes");
            map.remove("handle");
            map.values_mut().for_each(strip_counts);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(strip_counts),
        _ => {}
    }
}

/// One UDP datagram over lo to `target`, which lo then holds: it passes
/// lo's ingress on the way in.
fn send_udp_to(target: &str) {
    let status = Command::new("ip")
        .args(["addr", "add", &format!("{target}/32"), "dev", "lo"])
        .status()
        .expect("ip");
    assert!(status.success());
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket.send_to(b"x", format!("{target}:53")).expect("sent");
}

#[test]
fn a_new_configuration_changes_sets_counters_and_chains_in_place() {
    let listed = in_new_namespace(|| {
        make_ixp0();
        let mut installer = Installer::default();
        let config = small_config();
        installer
            .apply(&render(&config, Knobs::default()))
            .expect("first apply");
        // One service fewer, bigger meters.
        let mut changed = config.clone();
        changed.node.anycast.service_ips.truncate(1);
        changed.node.firewall.meter_size = 1024;
        let next = render(&changed, Knobs::default());
        let in_place = batch_for(installer.applied(), &next);
        in_place
            .apply()
            .expect("the kernel takes the in-place batch");
        nft_json(&["list", "table", "netdev", TABLE])
    });
    let items = listed["nftables"].as_array().expect("items");
    let names = |kind: &str| -> Vec<String> {
        items
            .iter()
            .filter_map(|item| item.get(kind))
            .map(|object| object["name"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    assert!(
        !names("chain")
            .iter()
            .any(|chain| chain.starts_with("svc_2001"))
    );
    assert!(
        !names("counter")
            .iter()
            .any(|counter| counter.starts_with("svc_2001"))
    );
    let syn_v4 = items
        .iter()
        .filter_map(|item| item.get("set"))
        .find(|set| set["name"] == "syn_v4")
        .expect("syn_v4");
    assert_eq!(syn_v4["size"], 1024);
}
