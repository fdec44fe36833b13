//! Properties of the derived plan over generated configurations: the
//! paired telco always sees the shortest path, every anycast prefix goes
//! to every peer unless drained, and nothing goes to a peer that is not
//! configured.

#![allow(clippy::expect_used)] // a test may stop at what it cannot set up

use std::collections::BTreeSet;
use std::net::IpAddr;

use ixgate_policy::node::NodeFile;
use ixgate_policy::telco::TelcoFile;
use ixgate_policy::types::Name;
use ixgate_policy::{Config, Drained, plan};
use proptest::prelude::*;

mod common;
use common::NODE;

#[derive(Clone, Debug)]
struct TelcoSpec {
    v4: bool,
    v6: bool,
    paired: u8,
    not_paired: u8,
    fixed: Option<u8>,
}

fn telco_spec() -> impl Strategy<Value = TelcoSpec> {
    (
        any::<bool>(),
        any::<bool>(),
        0..=10_u8,
        0..=10_u8,
        proptest::option::of(0..=10_u8),
    )
        .prop_map(|(v4, v6, paired, not_paired, fixed)| TelcoSpec {
            // Every telco needs one session at least.
            v4: v4 || !v6,
            v6,
            paired,
            not_paired,
            fixed,
        })
}

fn telco_file(index: usize, spec: &TelcoSpec) -> TelcoFile {
    let mut lines = vec![
        format!("name = \"telco-{index}\""),
        format!("asn = {}", 65100 + index),
    ];
    if spec.v4 {
        lines.push(format!("neighbor_v4 = \"198.51.100.{}\"", 100 + index));
    }
    if spec.v6 {
        lines.push(format!("neighbor_v6 = \"2001:db8:ff::{}\"", 100 + index));
    }
    lines.push("[prepend]".into());
    lines.push(format!("paired = {}", spec.paired));
    lines.push(format!("not_paired = {}", spec.not_paired));
    if let Some(fixed) = spec.fixed {
        lines.push(format!("override = {fixed}"));
    }
    toml::from_str(&lines.join("\n")).expect("generated telco file parses")
}

fn effective(spec: &TelcoSpec, paired: bool) -> u8 {
    spec.fixed
        .unwrap_or(if paired { spec.paired } else { spec.not_paired })
}

proptest! {
    #[test]
    fn plan_properties(
        specs in proptest::collection::vec(telco_spec(), 1..6),
        paired_pick in any::<prop::sample::Index>(),
        drained_mask in any::<u8>(),
        drain_all in any::<bool>(),
    ) {
        let paired_index = paired_pick.index(specs.len());
        let node: NodeFile = toml::from_str(&NODE.replace("PAIRED", &format!("telco-{paired_index}")))
            .expect("generated node file parses");
        let telcos: Vec<TelcoFile> = specs.iter().enumerate().map(|(i, spec)| telco_file(i, spec)).collect();

        let paired_count = effective(&specs[paired_index], true);
        let shortest_for_paired = specs
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != paired_index)
            .all(|(_, spec)| effective(spec, false) > paired_count);

        let config = match Config::new(node, telcos) {
            Ok(config) => config,
            Err(findings) => {
                // Refused exactly when the paired telco would not see the
                // strictly shortest path, and for nothing else.
                prop_assert!(!shortest_for_paired, "refused a valid config: {findings:?}");
                prop_assert!(findings.iter().all(|f| f.message.contains("the paired telco must see the shortest path")), "{findings:?}");
                return Ok(());
            }
        };
        prop_assert!(shortest_for_paired, "accepted a config where the paired telco is not shortest");

        let drained = if drain_all {
            Drained::All
        } else {
            Drained::Telcos(
                (0..specs.len())
                    .filter(|i| drained_mask & (1 << i) != 0)
                    .map(|i| format!("telco-{i}").parse::<Name>().expect("name"))
                    .collect(),
            )
        };
        let plan = plan(&config, &drained);

        // Nothing is announced to a peer that is not configured: the peers
        // are exactly the configured sessions.
        let configured: BTreeSet<IpAddr> = config
            .telcos
            .iter()
            .flat_map(|t| [t.neighbor_v4.map(IpAddr::V4), t.neighbor_v6.map(IpAddr::V6)])
            .flatten()
            .collect();
        let planned: BTreeSet<IpAddr> = plan.peers.iter().map(|peer| peer.neighbor).collect();
        prop_assert_eq!(&planned, &configured);
        prop_assert_eq!(plan.peers.len(), configured.len());

        let paired_peer_prepends: Vec<u8> = plan.peers.iter().filter(|p| p.paired).map(|p| p.prepends.count()).collect();
        prop_assert!(!paired_peer_prepends.is_empty());
        for peer in &plan.peers {
            // The paired telco gets strictly fewer prepends than any other.
            if !peer.paired {
                for &paired in &paired_peer_prepends {
                    prop_assert!(paired < peer.prepends.count());
                }
            }
            prop_assert_eq!(peer.as_path.len(), 1 + usize::from(peer.prepends.count()));

            // Every anycast prefix of the session's family goes to every
            // peer, unless that peer's telco is drained.
            let expected: Vec<_> = if drained.contains(&peer.telco) {
                Vec::new()
            } else {
                config.node.anycast.prefixes.iter().copied().filter(|p| p.is_ipv4() == peer.neighbor.is_ipv4()).collect()
            };
            prop_assert_eq!(&peer.announce, &expected);
        }
    }
}
