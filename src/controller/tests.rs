use std::path::Path;

use ixgate_firewall::detector::Signature;
use ixgate_policy::types::Interval;

use super::*;

const MIN_ACTIVE: Duration = Duration::from_secs(10);
const HOLD_DOWN: Duration = Duration::from_secs(20);

fn controller() -> Controller {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/lab/node-1");
    let mut config = ixgate_policy::load(&dir).expect("the lab configuration");
    config.node.flood.min_active = Interval::from_secs(MIN_ACTIVE.as_secs());
    config.node.flood.hold_down = Interval::from_secs(HOLD_DOWN.as_secs());
    Controller::new(&config)
}

fn syn_flood(sources: Vec<IpNet>) -> Flood {
    Flood {
        target: "192.0.2.10".parse().expect("address"),
        class: Class::Syn,
        pps: 20_000.0,
        bps: 6_400_000.0,
        signature: Signature {
            protocol: Some(6),
            destination_port: Some(443),
            tcp_flags: Some(0x02),
            length: Some((40, 40)),
            source_prefixes: sources,
        },
        via: Vec::new(),
    }
}

fn just_before(at: Instant) -> Instant {
    at.checked_sub(Duration::from_millis(1))
        .expect("a time after the start")
}

fn intents(decisions: &[Decision]) -> Vec<Intent> {
    decisions.iter().map(|d| d.intent.clone()).collect()
}

fn started(flood: &Flood) -> Event {
    Event::Flood(DetectorEvent::FloodStarted(flood.clone()))
}

fn ended(flood: &Flood) -> Event {
    Event::Flood(DetectorEvent::FloodEnded(flood.clone()))
}

#[test]
fn a_spoofed_flood_gets_a_rule_from_its_signature_and_loses_it_after_the_hold_down() {
    let mut controller = controller();
    let t0 = Instant::now();
    let flood = syn_flood(vec![]);
    let decisions = controller.handle(t0, &started(&flood));
    let rule = FlowSpec {
        destination: "192.0.2.10/32".parse().expect("prefix"),
        source: None,
        protocol: Some(6),
        destination_port: Some(443),
        tcp_flags: Some(0x02),
        packet_length: Some((40, 40)),
        rate_bytes: 0.0,
    };
    assert_eq!(
        intents(&decisions),
        [Intent::AddFlow(rule.clone()), Intent::TightenFirewall]
    );
    assert_eq!(
        decisions[0].intent.to_string(),
        "add Flowspec dst 192.0.2.10/32 proto 6 dport 443 flags 0x02 length 40 → discard"
    );
    assert!(decisions[0].reason.contains("192.0.2.10"), "{decisions:?}");

    // Updates change nothing; the end starts the hold-down.
    let update = Event::Flood(DetectorEvent::FloodUpdated(flood.clone()));
    assert!(
        controller
            .handle(t0 + Duration::from_secs(1), &update)
            .is_empty()
    );
    let end = t0 + Duration::from_secs(15);
    assert_eq!(
        intents(&controller.handle(end, &ended(&flood))),
        [Intent::RelaxFirewall],
        "the firewall relaxes when the flood ends, the rule stays"
    );
    assert!(controller.tick(just_before(end + HOLD_DOWN)).is_empty());
    let expired = controller.tick(end + HOLD_DOWN);
    assert_eq!(intents(&expired), [Intent::RemoveFlow(rule)]);
    assert!(
        controller.tick(end + HOLD_DOWN * 2).is_empty(),
        "removed once"
    );
}

#[test]
fn a_short_flood_keeps_its_rule_for_the_minimum_active_time() {
    let mut controller = controller();
    let t0 = Instant::now();
    let flood = syn_flood(vec![]);
    controller.handle(t0, &started(&flood));
    controller.handle(t0 + Duration::from_millis(500), &ended(&flood));
    // The hold-down has run out long before; the minimum has not.
    let long_hold = controller.tick(t0 + Duration::from_millis(500) + HOLD_DOWN);
    assert_eq!(
        long_hold.len(),
        1,
        "hold-down (20 s) outlasts min active (10 s)"
    );
    let mut controller = self::controller();
    controller.settings.min_active = Duration::from_mins(1);
    controller.handle(t0, &started(&flood));
    controller.handle(t0 + Duration::from_secs(1), &ended(&flood));
    assert!(controller.tick(t0 + Duration::from_secs(59)).is_empty());
    assert_eq!(controller.tick(t0 + Duration::from_mins(1)).len(), 1);
}

#[test]
fn a_flood_that_returns_in_the_hold_down_re_arms_its_rule() {
    let mut controller = controller();
    let t0 = Instant::now();
    let flood = syn_flood(vec![]);
    controller.handle(t0, &started(&flood));
    let first_end = t0 + Duration::from_secs(12);
    controller.handle(first_end, &ended(&flood));
    let back = first_end + Duration::from_secs(5);
    assert_eq!(
        intents(&controller.handle(back, &started(&flood))),
        [Intent::TightenFirewall],
        "the rule is still there; the firewall tightens again"
    );
    assert!(
        controller.tick(first_end + HOLD_DOWN).is_empty(),
        "no removal while the flood is back"
    );
    let second_end = back + Duration::from_secs(3);
    controller.handle(second_end, &ended(&flood));
    assert!(
        controller
            .tick(just_before(second_end + HOLD_DOWN))
            .is_empty()
    );
    assert_eq!(controller.tick(second_end + HOLD_DOWN).len(), 1);
}

#[test]
fn concentrated_sources_are_blackholed_and_named_in_the_rule() {
    let mut controller = controller();
    let t0 = Instant::now();
    let source: IpNet = "198.51.100.80/28".parse().expect("prefix");
    let flood = syn_flood(vec![source]);
    let decisions = intents(&controller.handle(t0, &started(&flood)));
    assert!(
        matches!(&decisions[0], Intent::AddFlow(rule) if rule.source == Some(source)),
        "{decisions:?}"
    );
    assert_eq!(decisions[1], Intent::AddSourceBlackhole(source));
    controller.handle(t0 + MIN_ACTIVE, &ended(&flood));
    let removed = intents(&controller.tick(t0 + MIN_ACTIVE + HOLD_DOWN));
    assert_eq!(removed.len(), 2);
    assert_eq!(removed[1], Intent::RemoveSourceBlackhole(source));
}

#[test]
fn unhealthy_or_unlinked_withdraws_once_and_announces_when_all_is_well() {
    let mut controller = controller();
    let now = Instant::now();
    let sick = controller.handle(now, &Event::Health { healthy: false });
    assert_eq!(intents(&sick), [Intent::WithdrawAll]);
    assert!(sick[0].reason.contains("unhealthy"));
    assert!(
        controller
            .handle(now, &Event::Health { healthy: false })
            .is_empty()
    );
    assert!(
        controller
            .handle(now, &Event::AnycastLink { up: false })
            .is_empty(),
        "already withdrawn"
    );
    assert!(
        controller
            .handle(now, &Event::Health { healthy: true })
            .is_empty(),
        "the link is still down"
    );
    let back = controller.handle(now, &Event::AnycastLink { up: true });
    assert_eq!(intents(&back), [Intent::AnnounceAll]);
}

const TELCO_A_ROUTER: LinkAddress = [0x02, 0, 0, 0, 0, 0x0a];
const TELCO_B_ROUTER: LinkAddress = [0x02, 0, 0, 0, 0, 0x0b];

fn telco(name: &str) -> Name {
    name.parse().expect("a telco name")
}

/// The lab's controller with both routers known, telco-a withdrawing at
/// 10 000 pps through it (telco-b names no rate).
fn controller_with_routers() -> Controller {
    let mut controller = controller();
    controller.settings.withdraw_above = BTreeMap::from([(telco("telco-a"), 10_000.0)]);
    controller.handle(
        Instant::now(),
        &Event::Routers(BTreeMap::from([
            (TELCO_A_ROUTER, telco("telco-a")),
            (TELCO_B_ROUTER, telco("telco-b")),
        ])),
    );
    controller
}

fn via(flood: Flood, via: Vec<(LinkAddress, f64)>) -> Flood {
    Flood { via, ..flood }
}

#[test]
fn a_flood_spending_one_telcos_share_withdraws_from_that_telco_alone_until_the_hold_down() {
    let mut controller = controller_with_routers();
    let t0 = Instant::now();
    // 20 000 pps, 80 % through telco-a: 16 000 pps, above its 10 000.
    let flood = via(
        syn_flood(vec![]),
        vec![(TELCO_A_ROUTER, 0.8), (TELCO_B_ROUTER, 0.2)],
    );
    let decisions = controller.handle(t0, &started(&flood));
    assert_eq!(
        intents(&decisions)[1..],
        [
            Intent::TightenFirewall,
            Intent::WithdrawFrom(telco("telco-a"))
        ]
    );
    assert!(
        decisions[2]
            .reason
            .contains("telco-a at 16000 pps, above its 10000 pps share"),
        "{decisions:?}"
    );
    assert_eq!(
        decisions[2].intent.to_string(),
        "withdraw the anycast prefixes from telco-a"
    );
    // Withdrawn, the flood no longer comes through telco-a: no second
    // withdrawal, and no return while the flood's mitigation lasts.
    let quiet = via(syn_flood(vec![]), vec![(TELCO_B_ROUTER, 1.0)]);
    let update = Event::Flood(DetectorEvent::FloodUpdated(quiet.clone()));
    assert!(
        controller
            .handle(t0 + Duration::from_secs(1), &update)
            .is_empty()
    );
    let end = t0 + Duration::from_secs(15);
    controller.handle(end, &ended(&quiet));
    assert!(controller.tick(just_before(end + HOLD_DOWN)).is_empty());
    let expired = intents(&controller.tick(end + HOLD_DOWN));
    assert!(
        expired.contains(&Intent::AnnounceTo(telco("telco-a"))),
        "{expired:?}"
    );
}

#[test]
fn a_flood_within_every_share_withdraws_from_no_one() {
    let mut controller = controller_with_routers();
    let t0 = Instant::now();
    // 20 000 pps, 40 % through telco-a (8 000 pps), the rest through
    // telco-b, which names no rate to withdraw at.
    let flood = via(
        syn_flood(vec![]),
        vec![(TELCO_A_ROUTER, 0.4), (TELCO_B_ROUTER, 0.6)],
    );
    let decisions = intents(&controller.handle(t0, &started(&flood)));
    assert!(
        decisions
            .iter()
            .all(|intent| matches!(intent, Intent::AddFlow(_) | Intent::TightenFirewall)),
        "{decisions:?}"
    );
    // Unknown routers count for no telco.
    let mut controller = self::controller();
    controller.settings.withdraw_above = BTreeMap::from([(telco("telco-a"), 10_000.0)]);
    let flood = via(syn_flood(vec![]), vec![(TELCO_A_ROUTER, 1.0)]);
    let decisions = intents(&controller.handle(t0, &started(&flood)));
    assert_eq!(decisions.len(), 2, "{decisions:?}");
}

fn operator(command: Command) -> Event {
    Event::Operator(command)
}

#[test]
fn the_operators_drain_holds_whatever_the_health_says() {
    let mut controller = controller();
    let now = Instant::now();
    let drained = controller.handle(now, &operator(Command::Drain { telco: None }));
    assert_eq!(intents(&drained), [Intent::WithdrawAll]);
    assert!(
        drained[0].reason.contains("operator drained"),
        "{drained:?}"
    );
    // Sick and well again: still drained.
    controller.handle(now, &Event::Health { healthy: false });
    assert!(
        controller
            .handle(now, &Event::Health { healthy: true })
            .is_empty()
    );
    // One telco drained, then everything undrained.
    let one = controller.handle(
        now,
        &operator(Command::Drain {
            telco: Some(telco("telco-b")),
        }),
    );
    assert_eq!(intents(&one), [Intent::WithdrawFrom(telco("telco-b"))]);
    let undrained = intents(&controller.handle(now, &operator(Command::Undrain { telco: None })));
    assert_eq!(
        undrained,
        [Intent::AnnounceAll, Intent::AnnounceTo(telco("telco-b"))]
    );
    assert_eq!(controller.operator(), &OperatorState::default());
}

#[test]
fn an_operators_rule_and_a_floods_rule_are_one_rule_until_both_let_go() {
    let mut controller = controller();
    let t0 = Instant::now();
    let flood = syn_flood(vec![]);
    let rule = flow_of(&flood);
    assert_eq!(
        intents(&controller.handle(t0, &operator(Command::AddFlow(rule.clone())))),
        [Intent::AddFlow(rule.clone())]
    );
    // The flood's own rule is the same: not added twice, not removed
    // when its flood is over while the operator holds it.
    assert_eq!(
        intents(&controller.handle(t0, &started(&flood))),
        [Intent::TightenFirewall]
    );
    controller.handle(t0 + MIN_ACTIVE, &ended(&flood));
    assert!(controller.tick(t0 + MIN_ACTIVE + HOLD_DOWN).is_empty());
    assert_eq!(
        intents(&controller.handle(t0, &operator(Command::RemoveFlow(rule.clone())))),
        [Intent::RemoveFlow(rule)]
    );
    let prefix: IpNet = "192.0.2.10/32".parse().expect("prefix");
    assert_eq!(
        intents(&controller.handle(t0, &operator(Command::AddBlackhole(prefix)))),
        [Intent::AddBlackhole(prefix)]
    );
    assert!(
        controller
            .handle(t0, &operator(Command::AddBlackhole(prefix)))
            .is_empty(),
        "held once"
    );
}

#[test]
fn a_shutdown_announces_graceful_shutdown_then_withdraws_everything_then_drains() {
    let mut controller = controller();
    let t0 = Instant::now();
    let flood = syn_flood(vec![]);
    controller.handle(t0, &started(&flood));
    let prefix: IpNet = "192.0.2.10/32".parse().expect("prefix");
    controller.handle(t0, &operator(Command::AddBlackhole(prefix)));
    assert_eq!(
        intents(&controller.handle(t0, &Event::Shutdown(ShutdownStep::Announce))),
        [Intent::GracefulShutdown]
    );
    let withdrawn = intents(&controller.handle(t0, &Event::Shutdown(ShutdownStep::Withdraw)));
    assert_eq!(
        withdrawn,
        [
            Intent::WithdrawAll,
            Intent::RemoveFlow(flow_of(&flood)),
            Intent::RemoveBlackhole(prefix)
        ]
    );
    // Healthy again on the way out: nothing comes back.
    assert!(
        controller
            .handle(t0, &Event::Health { healthy: true })
            .is_empty()
    );
    assert_eq!(
        intents(&controller.handle(t0, &Event::Shutdown(ShutdownStep::Drain))),
        [Intent::StopAccepting]
    );
}

#[test]
fn a_reload_brings_the_telcos_new_withdrawal_rates() {
    let mut controller = controller_with_routers();
    let t0 = Instant::now();
    // 20 000 pps, half through telco-a: within its 10 000 ...
    let flood = via(syn_flood(vec![]), vec![(TELCO_A_ROUTER, 0.5)]);
    let decisions = intents(&controller.handle(t0, &started(&flood)));
    assert!(
        !decisions.contains(&Intent::WithdrawFrom(telco("telco-a"))),
        "{decisions:?}"
    );
    // ... until the reloaded file halves the share.
    let mut settings = controller.settings.clone();
    settings.withdraw_above = BTreeMap::from([(telco("telco-a"), 5_000.0)]);
    assert_eq!(
        intents(&controller.handle(t0, &Event::Reload(settings))),
        [Intent::WithdrawFrom(telco("telco-a"))]
    );
}

#[test]
fn decisions_taken_while_a_session_is_down_say_who_gets_them_later() {
    let mut controller = controller();
    let t0 = Instant::now();
    let down = Event::Peer {
        telco: telco("telco-b"),
        up: false,
    };
    assert!(controller.handle(t0, &down).is_empty(), "nothing to decide");
    let flood = syn_flood(vec![]);
    let decisions = controller.handle(t0, &started(&flood));
    let reason_of = |decisions: &[Decision], intent: &Intent| {
        decisions
            .iter()
            .find(|decision| decision.intent == *intent)
            .map(|decision| decision.reason.clone())
            .unwrap_or_default()
    };
    let rule = reason_of(&decisions, &Intent::AddFlow(flow_of(&flood)));
    assert!(
        rule.ends_with("(session down: telco-b; sent when it returns)"),
        "{rule}"
    );
    // The firewall is the node's own: no telco waits for it.
    let firewall = reason_of(&decisions, &Intent::TightenFirewall);
    assert!(!firewall.contains("session down"), "{firewall}");
    let up = Event::Peer {
        telco: telco("telco-b"),
        up: true,
    };
    assert!(controller.handle(t0, &up).is_empty());
    let drained = controller.handle(t0, &Event::Operator(Command::Drain { telco: None }));
    let withdraw = reason_of(&drained, &Intent::WithdrawAll);
    assert!(
        !withdraw.is_empty() && !withdraw.contains("session down"),
        "{withdraw}"
    );
}

#[test]
fn a_decision_for_one_telco_names_only_that_telcos_session() {
    let mut controller = controller();
    let t0 = Instant::now();
    for name in ["telco-a", "telco-b"] {
        let down = Event::Peer {
            telco: telco(name),
            up: false,
        };
        assert!(controller.handle(t0, &down).is_empty());
    }
    let drained = controller.handle(
        t0,
        &Event::Operator(Command::Drain {
            telco: Some(telco("telco-b")),
        }),
    );
    assert_eq!(intents(&drained), [Intent::WithdrawFrom(telco("telco-b"))]);
    assert!(
        drained[0]
            .reason
            .ends_with("(session down: telco-b; sent when it returns)"),
        "{}",
        drained[0].reason
    );
}
