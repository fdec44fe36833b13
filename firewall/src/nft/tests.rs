//! The builder against the real kernel, in a network namespace of the
//! test's own (on a thread of its own: namespaces are per thread), with
//! `nft -j` reading back what was applied.

use std::process::Command;

use serde_json::Value;

use super::*;

/// Runs `body` on a new thread in a new, empty network namespace.
pub(crate) fn in_new_namespace<T: Send + 'static>(body: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare (root needed)");
        body()
    })
    .join()
    .expect("the namespace thread")
}

pub(crate) fn nft_json(args: &[&str]) -> Value {
    let output = Command::new("nft")
        .arg("-j")
        .args(args)
        .output()
        .expect("nft runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON")
}

fn drop_to(target: [u8; 4]) -> Vec<Expression> {
    vec![
        Expression::Meta {
            key: meta::PROTOCOL,
        },
        Expression::equals(vec![0x08, 0x00]),
        Expression::ipv4_destination(),
        Expression::equals(target.to_vec()),
        Expression::NamedCounter("dropped".into()),
        Expression::Verdict(Verdict::Drop),
    ]
}

/// In an inet table: IPv4 TCP to 192.0.2.10 port 443.
fn tcp_to_service() -> Vec<Expression> {
    vec![
        Expression::Meta { key: meta::NFPROTO },
        Expression::equals(vec![2]),
        Expression::ipv4_destination(),
        Expression::equals(vec![192, 0, 2, 10]),
        Expression::Meta { key: meta::L4PROTO },
        Expression::equals(vec![6]),
        Expression::Payload {
            header: Header::Transport,
            offset: 2,
            length: 2,
        },
        Expression::equals(443_u16.to_be_bytes().to_vec()),
    ]
}

/// Brings up lo (127.0.0.1/8) in the current namespace.
pub(crate) fn bring_lo_up() {
    let up = Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status()
        .expect("ip runs");
    assert!(up.success());
}

/// At netdev ingress: IPv4 to 127.0.0.2 (sent over lo, unanswered).
pub(crate) fn to_127_0_0_2() -> Vec<Expression> {
    vec![
        Expression::Meta {
            key: meta::PROTOCOL,
        },
        Expression::equals(vec![0x08, 0x00]),
        Expression::ipv4_destination(),
        Expression::equals(vec![127, 0, 0, 2]),
    ]
}

/// The smallest whole table: a counter and an ingress chain on lo that
/// drops and counts IPv4 to 192.0.2.10.
fn drop_to_192_0_2_10(batch: &mut Batch) {
    batch
        .add_table(Family::Netdev, "ixgate")
        .add_counter(Family::Netdev, "ixgate", "dropped")
        .add_chain(Family::Netdev, "ixgate", &ingress_on_lo())
        .add_rule(
            Family::Netdev,
            "ixgate",
            "ingress",
            &drop_to([192, 0, 2, 10]),
        );
}

pub(crate) fn ingress_on_lo() -> Chain {
    Chain {
        name: "ingress".into(),
        hook: Some(Hook {
            number: 0,
            priority: -500,
            device: Some("lo".into()),
            accept_by_default: true,
        }),
    }
}

/// The same table in nft's own syntax: what ours must list as.
const INTENDED: &str = r#"table netdev ixgate {
  counter dropped { }
  chain ingress {
    type filter hook ingress device "lo" priority -500; policy accept;
    meta protocol ip ip daddr 192.0.2.10 counter name "dropped" drop
  }
}
"#;

/// Drops what numbers objects in creation order (handles) and says which
/// nft printed the listing (metainfo): neither carries meaning.
fn strip(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.remove("handle");
            map.remove("metainfo");
            map.values_mut().for_each(strip);
        }
        Value::Array(items) => {
            items.retain(|item| item.get("metainfo").is_none());
            items.iter_mut().for_each(strip);
        }
        _ => {}
    }
}

/// `nft list ruleset` as text and as JSON without handles.
pub(crate) fn listing() -> (String, Value) {
    let text = Command::new("nft")
        .args(["list", "ruleset"])
        .output()
        .expect("nft runs");
    let mut json = nft_json(&["list", "ruleset"]);
    strip(&mut json);
    (String::from_utf8_lossy(&text.stdout).into_owned(), json)
}

/// Applies `build` in one namespace and `intended` (nft syntax) with
/// `nft -f` in another, and requires the two listings to be identical.
/// Returns the text listing.
fn assert_same_as_nft(build: fn(&mut Batch), intended: &'static str) -> String {
    assert_same_as_nft_after(|| {}, build, intended)
}

/// Applies `ruleset` (nft syntax) with `nft -f`; it must be taken.
pub(crate) fn nft_file(ruleset: &str) {
    let path = std::env::temp_dir().join(format!(
        "ixgate-nft-{}-{:?}.nft",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::write(&path, ruleset).expect("written");
    let output = Command::new("nft")
        .arg("-f")
        .arg(&path)
        .output()
        .expect("nft runs");
    let _ = std::fs::remove_file(&path);
    assert!(
        output.status.success(),
        "nft refused the ruleset: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// [`assert_same_as_nft`], with `setup` run first in both namespaces (to
/// make the devices the chains name).
pub(crate) fn assert_same_as_nft_after(
    setup: fn(),
    build: impl FnOnce(&mut Batch) + Send + 'static,
    intended: &'static str,
) -> String {
    let ours = in_new_namespace(move || {
        setup();
        let mut batch = Batch::default();
        build(&mut batch);
        batch.apply().expect("the kernel takes the batch");
        listing()
    });
    let nfts = in_new_namespace(move || {
        setup();
        nft_file(intended);
        listing()
    });
    assert_eq!(ours.1, nfts.1, "JSON listings differ");
    assert_eq!(ours.0, nfts.0, "text listings differ");
    ours.0
}

#[test]
fn a_netdev_table_reads_back_as_nft_itself_builds_it() {
    let text = assert_same_as_nft(drop_to_192_0_2_10, INTENDED);
    // nft's JSON leaves the device out; the text shows it.
    assert!(
        text.contains(r#"type filter hook ingress device "lo" priority -500; policy accept;"#),
        "{text}"
    );
}

#[test]
fn limits_sampling_and_logging() {
    assert_same_as_nft(
        |batch| {
            let mut over_limit = drop_to([192, 0, 2, 10]);
            over_limit.insert(
                4,
                Expression::Limit {
                    rate: 1000,
                    burst: 100,
                    over: true,
                },
            );
            batch
                .add_table(Family::Netdev, "ixgate")
                .add_counter(Family::Netdev, "ixgate", "dropped")
                .add_chain(Family::Netdev, "ixgate", &ingress_on_lo())
                .add_rule(
                    Family::Netdev,
                    "ixgate",
                    "ingress",
                    &[
                        Expression::RandomNumber { modulus: 1000 },
                        Expression::equals(0_u32.to_ne_bytes().to_vec()),
                        Expression::Log {
                            group: 7,
                            snaplen: 128,
                        },
                    ],
                )
                .add_rule(Family::Netdev, "ixgate", "ingress", &over_limit);
        },
        r#"table netdev ixgate {
  counter dropped { }
  chain ingress {
    type filter hook ingress device "lo" priority -500; policy accept;
    numgen random mod 1000 == 0 log group 7 snaplen 128
    meta protocol ip ip daddr 192.0.2.10 limit rate over 1000/second burst 100 packets counter name "dropped" drop
  }
}
"#,
    );
}

#[test]
fn notrack_in_an_inet_prerouting_chain() {
    assert_same_as_nft(
        |batch| {
            let raw = Chain {
                name: "raw".into(),
                hook: Some(Hook {
                    number: 0,
                    priority: -300,
                    device: None,
                    accept_by_default: true,
                }),
            };
            batch
                .add_table(Family::Inet, "ixgate")
                .add_chain(Family::Inet, "ixgate", &raw)
                .add_rule(
                    Family::Inet,
                    "ixgate",
                    "raw",
                    &[tcp_to_service(), vec![Expression::Notrack]].concat(),
                );
        },
        "table inet ixgate {
  chain raw {
    type filter hook prerouting priority raw; policy accept;
    ip daddr 192.0.2.10 tcp dport 443 notrack
  }
}
",
    );
}

#[test]
fn a_refused_batch_changes_nothing() {
    let (error, rules) = in_new_namespace(|| {
        let mut batch = Batch::default();
        drop_to_192_0_2_10(&mut batch);
        batch.apply().expect("first batch");
        // A second rule, then one naming a chain that does not exist: the
        // whole batch is refused, the first rule of it included.
        let mut bad = Batch::default();
        bad.add_rule(
            Family::Netdev,
            "ixgate",
            "ingress",
            &drop_to([192, 0, 2, 20]),
        )
        .add_rule(
            Family::Netdev,
            "ixgate",
            "no-such-chain",
            &drop_to([192, 0, 2, 30]),
        );
        let error = bad.apply().expect_err("refused").to_string();
        let listed = nft_json(&["list", "table", "netdev", "ixgate"]);
        let rules = listed["nftables"]
            .as_array()
            .expect("items")
            .iter()
            .filter(|item| item.get("rule").is_some())
            .count();
        (error, rules)
    });
    assert!(error.contains("No such file or directory"), "{error}");
    assert_eq!(rules, 1, "the refused batch left nothing behind");
}

#[test]
fn replacing_the_table_in_one_batch_leaves_exactly_one() {
    let listed = in_new_namespace(|| {
        for target in [[192, 0, 2, 10], [192, 0, 2, 20]] {
            // Create-or-keep, delete, create: one atomic replace.
            let mut batch = Batch::default();
            batch
                .add_table(Family::Netdev, "ixgate")
                .delete_table(Family::Netdev, "ixgate")
                .add_table(Family::Netdev, "ixgate")
                .add_counter(Family::Netdev, "ixgate", "dropped")
                .add_chain(Family::Netdev, "ixgate", &ingress_on_lo())
                .add_rule(Family::Netdev, "ixgate", "ingress", &drop_to(target));
            batch.apply().expect("replace");
        }
        nft_json(&["list", "ruleset"])
    });
    let items = listed["nftables"].as_array().expect("items");
    assert_eq!(
        items
            .iter()
            .filter(|item| item.get("table").is_some())
            .count(),
        1
    );
    let rules: Vec<&Value> = items.iter().filter_map(|item| item.get("rule")).collect();
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0]["expr"][0]["match"]["right"], "192.0.2.20");
}

#[test]
fn synproxy_and_conntrack_state_in_an_inet_input_chain() {
    assert_same_as_nft(
        |batch| {
            let input = Chain {
                name: "in".into(),
                hook: Some(Hook {
                    number: 1,
                    priority: 0,
                    device: None,
                    accept_by_default: true,
                }),
            };
            let state_has = |bits: u32| {
                [
                    Expression::ConntrackState,
                    Expression::Mask {
                        mask: bits.to_ne_bytes().to_vec(),
                    },
                    Expression::Compare {
                        not: true,
                        data: 0_u32.to_ne_bytes().to_vec(),
                    },
                ]
            };
            let mut syn_proxy = tcp_to_service();
            syn_proxy.extend(state_has(0x41));
            syn_proxy.push(Expression::Synproxy { mss: 1460 });
            let mut invalid = state_has(0x01).to_vec();
            invalid.push(Expression::Verdict(Verdict::Drop));
            batch
                .add_table(Family::Inet, "ixgate")
                .add_chain(Family::Inet, "ixgate", &input)
                .add_rule(Family::Inet, "ixgate", "in", &syn_proxy)
                .add_rule(Family::Inet, "ixgate", "in", &invalid);
        },
        "table inet ixgate {
  chain in {
    type filter hook input priority filter; policy accept;
    ip daddr 192.0.2.10 tcp dport 443 ct state invalid,untracked synproxy mss 1460
    ct state invalid drop
  }
}
",
    );
}

#[test]
fn a_meter_and_a_trusted_set() {
    assert_same_as_nft(
        |batch| {
            let meter = Set {
                name: "syn_meter".into(),
                id: 1,
                ipv6: false,
                size: 65535,
                timeout: Some(std::time::Duration::from_secs(10)),
                dynamic: true,
            };
            let trusted = Set {
                name: "trusted".into(),
                id: 2,
                ipv6: false,
                size: 65535,
                timeout: Some(std::time::Duration::from_mins(5)),
                dynamic: false,
            };
            let ipv4 = [
                Expression::Meta {
                    key: meta::PROTOCOL,
                },
                Expression::equals(vec![0x08, 0x00]),
            ];
            let mut from_trusted = ipv4.to_vec();
            from_trusted.extend([
                Expression::ipv4_source(),
                Expression::Lookup {
                    set: "trusted".into(),
                    set_id: 2,
                    inverted: false,
                },
                Expression::Verdict(Verdict::Accept),
            ]);
            let mut metered = ipv4.to_vec();
            metered.extend([
                Expression::ipv4_destination(),
                Expression::equals(vec![192, 0, 2, 10]),
                Expression::ipv4_source(),
                Expression::AddToSet {
                    set: "syn_meter".into(),
                    set_id: 1,
                    per_element: Box::new(Expression::Limit {
                        rate: 100,
                        burst: 50,
                        over: true,
                    }),
                },
                Expression::Verdict(Verdict::Drop),
            ]);
            batch
                .add_table(Family::Netdev, "ixgate")
                .add_set(Family::Netdev, "ixgate", &meter)
                .add_set(Family::Netdev, "ixgate", &trusted)
                .add_chain(Family::Netdev, "ixgate", &ingress_on_lo())
                .add_rule(Family::Netdev, "ixgate", "ingress", &from_trusted)
                .add_rule(Family::Netdev, "ixgate", "ingress", &metered);
        },
        r#"table netdev ixgate {
  set syn_meter { type ipv4_addr; size 65535; flags dynamic,timeout; timeout 10s; }
  set trusted { type ipv4_addr; size 65535; flags timeout; timeout 5m; }
  chain ingress {
    type filter hook ingress device "lo" priority -500; policy accept;
    meta protocol ip ip saddr @trusted accept
    meta protocol ip ip daddr 192.0.2.10 add @syn_meter { ip saddr limit rate over 100/second burst 50 packets } drop
  }
}
"#,
    );
}

#[test]
fn counters_read_back_as_nft_reports_them() {
    let (ours, nfts) = in_new_namespace(|| {
        bring_lo_up();
        let mut batch = Batch::default();
        batch
            .add_table(Family::Netdev, "ixgate")
            .add_counter(Family::Netdev, "ixgate", "seen")
            .add_counter(Family::Netdev, "ixgate", "idle")
            .add_chain(Family::Netdev, "ixgate", &ingress_on_lo())
            .add_rule(
                Family::Netdev,
                "ixgate",
                "ingress",
                &[
                    to_127_0_0_2(),
                    vec![Expression::NamedCounter("seen".into())],
                ]
                .concat(),
            );
        batch.apply().expect("the kernel takes the batch");
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bound");
        for _ in 0..5 {
            socket.send_to(&[0; 100], "127.0.0.2:9").expect("sent");
        }
        let ours = dump_counters(Family::Netdev, "ixgate").expect("read");
        let asked = read_counters(Family::Netdev, "ixgate", &["idle", "seen"]).expect("read");
        assert_eq!(
            asked.iter().map(|count| count.packets).collect::<Vec<_>>(),
            [0, 5]
        );
        let listed = nft_json(&["list", "counters", "table", "netdev", "ixgate"]);
        let nfts: Vec<(String, Count)> = listed["nftables"]
            .as_array()
            .expect("a list")
            .iter()
            .filter_map(|item| item.get("counter"))
            .map(|counter| {
                (
                    counter["name"].as_str().expect("a name").to_owned(),
                    Count {
                        packets: counter["packets"].as_u64().expect("packets"),
                        bytes: counter["bytes"].as_u64().expect("bytes"),
                    },
                )
            })
            .collect();
        (ours, nfts)
    });
    assert_eq!(ours, nfts);
    let seen = ours.iter().find(|(name, _)| name == "seen").expect("seen");
    assert_eq!(seen.1.packets, 5);
    // IPv4 and UDP headers and the payload: lo has no link header at ingress.
    assert_eq!(seen.1.bytes, 5 * (20 + 8 + 100));
    let idle = ours.iter().find(|(name, _)| name == "idle").expect("idle");
    assert_eq!(idle.1, Count::default());
}

#[test]
fn a_missing_table_is_a_missing_counter_not_a_zero() {
    let result = in_new_namespace(|| read_counters(Family::Netdev, "absent", &["seen"]));
    assert!(
        matches!(&result, Err(NftError::MissingCounter { name, .. }) if name == "seen"),
        "{result:?}"
    );
}

#[test]
fn truncated_netlink_input_ends_the_walk() {
    // One whole message (kind 3, NLMSG_DONE) then a header claiming more
    // than is there, then a length below the header's own.
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&20_u32.to_ne_bytes());
    bytes.extend_from_slice(&3_u16.to_ne_bytes());
    bytes.extend_from_slice(&[0; 14]);
    bytes.extend_from_slice(&200_u32.to_ne_bytes());
    bytes.extend_from_slice(&[0; 12]);
    let walked: Vec<u16> = messages(&bytes).map(|message| message.kind).collect();
    assert_eq!(walked, [3]);
    assert_eq!(messages(&8_u32.to_ne_bytes().repeat(4)).count(), 0);
    // An attribute of length 2 (below its header) and one past the end.
    assert_eq!(attributes(&[2, 0, 1, 0, 9, 9, 9, 9]).count(), 0);
    assert_eq!(attributes(&[12, 0, 1, 0, 9, 9]).count(), 0);
    assert_eq!(
        attributes(&[6, 0, 1, 0, 9, 9, 0, 0, 5, 0, 2, 0, 7]).count(),
        2
    );
}
