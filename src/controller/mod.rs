//! The controller, pure: events and `now` in, intents out, each with the
//! reason it was taken. No tokio, no sockets; `ixgate run` feeds it and
//! carries out what it decides, and its tests run on a virtual clock.
//! Whatever changes what the node announces or how its firewall holds
//! goes through here, the operator's commands included, so every change
//! is audited with its reason.
//!
//! - A flood gets a Flowspec rule from its signature (destination, and the
//!   protocol, port, TCP flags, packet lengths and concentrated sources
//!   that the samples showed). The export sends it only to the telcos
//!   whose file accepts Flowspec for that family, within their limit.
//!   While any flood lasts, the firewall's per-destination limits are
//!   tightened.
//! - Concentrated sources are also blackholed (source RTBH, RFC 5635)
//!   toward the telcos that accept it.
//! - Mitigations stay at least `min_active` from their start and
//!   `hold_down` after the flood ended; a flood that returns before then
//!   re-arms them.
//! - The proxy or its origins unhealthy, the anycast link down, the
//!   operator's drain or the shutdown: the anycast prefixes are withdrawn
//!   (other nodes serve), and announced again when none of these holds.
//! - A flood handed over by one telco's router at more than that telco's
//!   `withdraw_above_pps` (its share of the link spent) withdraws the
//!   prefixes from that telco alone, where its policy allows withdrawal;
//!   the others keep being served. The routers are told apart by their
//!   link-layer addresses on the peering LAN, which the samples carry.
//!   The prefixes go back to the telco once every flood that took them
//!   away has served its minimum active time and hold-down, unless the
//!   operator drained it.
//! - Shutdown: GRACEFUL_SHUTDOWN first (RFC 8326), then everything is
//!   withdrawn, then the proxy stops accepting and drains.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use ipnet::IpNet;
use ixgate_firewall::detector::{Class, DetectorEvent, Flood, LinkAddress};
use ixgate_policy::Config;
use ixgate_policy::types::Name;

use crate::control::FlowSpec;

/// What happened.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    Flood(DetectorEvent),
    /// The proxy and every service's origin can serve (or not).
    Health {
        healthy: bool,
    },
    AnycastLink {
        up: bool,
    },
    /// The telcos' routers on the peering LAN, by link-layer address.
    Routers(BTreeMap<LinkAddress, Name>),
    Operator(Command),
    /// A telco's BGP session came up (Established) or went down. The
    /// speaker re-sends everything in force when a session returns, so
    /// nothing is decided; decisions taken meanwhile say which telcos
    /// get them only then.
    Peer {
        telco: Name,
        up: bool,
    },
    /// The configuration was read again: the timers and the telcos'
    /// withdrawal rates change.
    Reload(Settings),
    Shutdown(ShutdownStep),
}

/// What the operator asked for (`ixgate ctl`).
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// Withdraw the anycast prefixes from one telco, or from all.
    Drain {
        telco: Option<Name>,
    },
    /// Announce them again to that telco, or to all.
    Undrain {
        telco: Option<Name>,
    },
    AddFlow(FlowSpec),
    RemoveFlow(FlowSpec),
    /// RTBH of a destination.
    AddBlackhole(IpNet),
    RemoveBlackhole(IpNet),
}

/// The steps of a planned shutdown, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShutdownStep {
    /// Tell the telcos to move traffic away (RFC 8326).
    Announce,
    /// Withdraw everything.
    Withdraw,
    /// Stop accepting apps and let the open connections finish.
    Drain,
}

/// What the appliance should do.
#[derive(Clone, Debug, PartialEq)]
pub enum Intent {
    AddFlow(FlowSpec),
    RemoveFlow(FlowSpec),
    /// RTBH: blackhole traffic to this prefix at the telcos.
    AddBlackhole(IpNet),
    RemoveBlackhole(IpNet),
    /// Source RTBH: blackhole traffic from this prefix at the telcos.
    AddSourceBlackhole(IpNet),
    RemoveSourceBlackhole(IpNet),
    /// Withdraw the anycast prefixes from every telco.
    WithdrawAll,
    AnnounceAll,
    /// Withdraw the anycast prefixes from this telco alone.
    WithdrawFrom(Name),
    AnnounceTo(Name),
    /// Mark every announcement GRACEFUL_SHUTDOWN (RFC 8326).
    GracefulShutdown,
    /// The firewall's per-destination limits divided for a flood.
    TightenFirewall,
    RelaxFirewall,
    /// The proxy takes no new connection and lets the open ones finish.
    StopAccepting,
}

impl std::fmt::Display for Intent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::AddFlow(flow) => write!(f, "add Flowspec {flow}"),
            Self::RemoveFlow(flow) => write!(f, "remove Flowspec {flow}"),
            Self::AddBlackhole(prefix) => write!(f, "add RTBH {prefix}"),
            Self::RemoveBlackhole(prefix) => write!(f, "remove RTBH {prefix}"),
            Self::AddSourceBlackhole(prefix) => write!(f, "add source RTBH {prefix}"),
            Self::RemoveSourceBlackhole(prefix) => write!(f, "remove source RTBH {prefix}"),
            Self::WithdrawAll => f.write_str("withdraw the anycast prefixes"),
            Self::AnnounceAll => f.write_str("announce the anycast prefixes"),
            Self::WithdrawFrom(telco) => write!(f, "withdraw the anycast prefixes from {telco}"),
            Self::AnnounceTo(telco) => write!(f, "announce the anycast prefixes to {telco} again"),
            Self::GracefulShutdown => f.write_str("announce GRACEFUL_SHUTDOWN"),
            Self::TightenFirewall => f.write_str("tighten the firewall's per-destination limits"),
            Self::RelaxFirewall => f.write_str("relax the firewall's per-destination limits"),
            Self::StopAccepting => f.write_str("stop accepting apps and drain their connections"),
        }
    }
}

/// One decision and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    pub intent: Intent,
    pub reason: String,
}

/// What the controller takes from the configuration, again on reload.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub min_active: Duration,
    pub hold_down: Duration,
    /// The flood rate through a telco above which its prefixes go, for
    /// the telcos whose policy allows withdrawal and names one.
    pub withdraw_above: BTreeMap<Name, f64>,
}

impl Settings {
    pub fn of(config: &Config) -> Self {
        Self {
            min_active: config.node.flood.min_active.duration(),
            hold_down: config.node.flood.hold_down.duration(),
            // Whole packets per second, far below 2^52.
            #[allow(clippy::cast_precision_loss)]
            withdraw_above: config
                .telcos
                .iter()
                .filter(|telco| telco.mitigation.withdraw)
                .filter_map(|telco| {
                    let rate = telco.mitigation.withdraw_above_pps?;
                    Some((telco.name.clone(), rate.per_second() as f64))
                })
                .collect(),
        }
    }
}

/// The mitigation of one flood (target and class).
#[derive(Clone, Debug)]
struct Mitigation {
    flow: FlowSpec,
    source_blackholes: Vec<IpNet>,
    started: Instant,
    /// When the detector said the flood ended; none while it goes on.
    ended: Option<Instant>,
    /// Packets per second each telco's router handed over, last heard.
    through: BTreeMap<Name, f64>,
    /// Telcos this flood took the prefixes away from.
    withdrew_from: BTreeSet<Name>,
}

/// What the operator asked for and still holds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OperatorState {
    pub drained: bool,
    pub drained_telcos: BTreeSet<Name>,
    pub flows: Vec<FlowSpec>,
    pub blackholes: Vec<IpNet>,
}

#[derive(Debug)]
pub struct Controller {
    settings: Settings,
    mitigations: BTreeMap<(IpAddr, Class), Mitigation>,
    operator: OperatorState,
    healthy: bool,
    link_up: bool,
    shutting_down: bool,
    routers: BTreeMap<LinkAddress, Name>,
    /// Telcos whose session is known to be down.
    sessions_down: BTreeSet<Name>,
    /// What the intents so far have made of the node.
    withdrawn: bool,
    withdrawn_telcos: BTreeSet<Name>,
    tightened: bool,
}

impl Controller {
    pub fn new(config: &Config) -> Self {
        Self {
            settings: Settings::of(config),
            mitigations: BTreeMap::new(),
            operator: OperatorState::default(),
            healthy: true,
            link_up: true,
            shutting_down: false,
            routers: BTreeMap::new(),
            sessions_down: BTreeSet::new(),
            withdrawn: false,
            withdrawn_telcos: BTreeSet::new(),
            tightened: false,
        }
    }

    /// What the operator holds now (for `ixgate ctl show mitigations`).
    pub fn operator(&self) -> &OperatorState {
        &self.operator
    }

    /// Takes one event at `now`.
    pub fn handle(&mut self, now: Instant, event: &Event) -> Vec<Decision> {
        let decisions = self.decide(now, event);
        self.noting_sessions_down(decisions)
    }

    /// Says, in the reason of every decision for the telcos, which of
    /// them get it only when their session returns.
    fn noting_sessions_down(&self, mut decisions: Vec<Decision>) -> Vec<Decision> {
        if self.sessions_down.is_empty() {
            return decisions;
        }
        let all_down: Vec<&str> = self.sessions_down.iter().map(Name::as_str).collect();
        let all_down = all_down.join(", ");
        for decision in &mut decisions {
            let waiting = match &decision.intent {
                Intent::WithdrawFrom(telco) | Intent::AnnounceTo(telco) => self
                    .sessions_down
                    .contains(telco)
                    .then(|| telco.as_str().to_owned()),
                // The node's own: no telco waits for these.
                Intent::TightenFirewall | Intent::RelaxFirewall | Intent::StopAccepting => None,
                _ => Some(all_down.clone()),
            };
            if let Some(waiting) = waiting {
                let _ = write!(
                    decision.reason,
                    " (session down: {waiting}; sent when it returns)"
                );
            }
        }
        decisions
    }

    fn decide(&mut self, now: Instant, event: &Event) -> Vec<Decision> {
        match event {
            Event::Flood(
                DetectorEvent::FloodStarted(flood) | DetectorEvent::FloodUpdated(flood),
            ) => self.flood_on(now, flood),
            Event::Flood(DetectorEvent::FloodEnded(flood)) => {
                if let Some(mitigation) = self.mitigations.get_mut(&(flood.target, flood.class)) {
                    mitigation.ended.get_or_insert(now);
                }
                self.firewall(&format!(
                    "{:?} flood to {} ended",
                    flood.class, flood.target
                ))
            }
            Event::Health { healthy } => {
                self.healthy = *healthy;
                self.serving()
            }
            Event::AnycastLink { up } => {
                self.link_up = *up;
                self.serving()
            }
            Event::Routers(routers) => {
                self.routers.clone_from(routers);
                Vec::new()
            }
            Event::Operator(command) => self.operator_command(command),
            Event::Peer { telco, up } => {
                if *up {
                    self.sessions_down.remove(telco);
                } else {
                    self.sessions_down.insert(telco.clone());
                }
                Vec::new()
            }
            Event::Reload(settings) => {
                self.settings = settings.clone();
                // A lower rate may already be exceeded.
                let spent = self.spent_links();
                self.telcos(&spent, "")
            }
            Event::Shutdown(step) => self.shutdown(*step),
        }
    }

    /// Expires what has served its time at `now`.
    pub fn tick(&mut self, now: Instant) -> Vec<Decision> {
        let Settings {
            min_active,
            hold_down,
            ..
        } = self.settings;
        let expired: Vec<(IpAddr, Class)> = self
            .mitigations
            .iter()
            .filter(|(_, m)| {
                m.ended
                    .is_some_and(|ended| now >= m.started + min_active && now >= ended + hold_down)
            })
            .map(|(key, _)| *key)
            .collect();
        let mut decisions = Vec::new();
        for key in expired {
            let Some(mitigation) = self.mitigations.remove(&key) else {
                continue;
            };
            let reason = format!(
                "{:?} flood to {} over for {} s (min active {} s, hold-down {} s)",
                key.1,
                key.0,
                mitigation
                    .ended
                    .map_or(0, |ended| now.saturating_duration_since(ended).as_secs()),
                min_active.as_secs(),
                hold_down.as_secs()
            );
            if !self.holds_flow(&mitigation.flow) {
                decisions.push(Decision {
                    intent: Intent::RemoveFlow(mitigation.flow),
                    reason: reason.clone(),
                });
            }
            for prefix in mitigation.source_blackholes {
                decisions.push(Decision {
                    intent: Intent::RemoveSourceBlackhole(prefix),
                    reason: reason.clone(),
                });
            }
            decisions.extend(self.telcos(&BTreeMap::new(), &reason));
        }
        self.noting_sessions_down(decisions)
    }

    fn flood_on(&mut self, now: Instant, flood: &Flood) -> Vec<Decision> {
        let key = (flood.target, flood.class);
        let through = self.through(flood);
        let reason = format!(
            "{:?} flood to {} at {:.0} pps, {:.0} bit/s",
            flood.class, flood.target, flood.pps, flood.bps
        );
        let mut decisions = Vec::new();
        if let Some(mitigation) = self.mitigations.get_mut(&key) {
            // Back before the rule went: it stays, timed from now on.
            mitigation.ended = None;
            mitigation.through = through;
        } else {
            let flow = flow_of(flood);
            if !self.holds_flow(&flow) {
                decisions.push(Decision {
                    intent: Intent::AddFlow(flow.clone()),
                    reason: reason.clone(),
                });
            }
            let source_blackholes = flood.signature.source_prefixes.clone();
            for prefix in &source_blackholes {
                decisions.push(Decision {
                    intent: Intent::AddSourceBlackhole(*prefix),
                    reason: format!("{reason}, concentrated in {prefix}"),
                });
            }
            self.mitigations.insert(
                key,
                Mitigation {
                    flow,
                    source_blackholes,
                    started: now,
                    ended: None,
                    through,
                    withdrew_from: BTreeSet::new(),
                },
            );
        }
        decisions.extend(self.firewall(&reason));
        let spent = self.spent_links();
        decisions.extend(self.telcos(&spent, ""));
        decisions
    }

    /// Whether an operator's rule or a flood's already holds `flow`.
    fn holds_flow(&self, flow: &FlowSpec) -> bool {
        self.operator.flows.contains(flow)
            || self
                .mitigations
                .values()
                .any(|mitigation| mitigation.flow == *flow)
    }

    /// Packets per second of `flood` each telco's router handed over.
    fn through(&self, flood: &Flood) -> BTreeMap<Name, f64> {
        let mut through: BTreeMap<Name, f64> = BTreeMap::new();
        for (address, share) in &flood.via {
            if let Some(telco) = self.routers.get(address) {
                *through.entry(telco.clone()).or_default() += flood.pps * share;
            }
        }
        through
    }

    /// The telcos whose running floods, all together, exceed their share,
    /// each with why; each of those floods holds the withdrawal until it
    /// has served its time.
    fn spent_links(&mut self) -> BTreeMap<Name, String> {
        let mut spent = BTreeMap::new();
        for (telco, limit) in &self.settings.withdraw_above {
            let rate: f64 = self
                .mitigations
                .values()
                .filter(|mitigation| mitigation.ended.is_none())
                .filter_map(|mitigation| mitigation.through.get(telco))
                .sum();
            if rate > *limit {
                for mitigation in self.mitigations.values_mut() {
                    if mitigation.ended.is_none() && mitigation.through.contains_key(telco) {
                        mitigation.withdrew_from.insert(telco.clone());
                    }
                }
                spent.insert(
                    telco.clone(),
                    format!(
                        "floods through {telco} at {rate:.0} pps, above its {limit:.0} pps share: \
                         the other telcos keep being served"
                    ),
                );
            }
        }
        spent
    }

    /// Withdraws from and announces to single telcos as the operator's
    /// drains and the floods now say; `newly_spent` are the telcos a flood
    /// just took, with why, `reason` the why of any other change.
    fn telcos(&mut self, newly_spent: &BTreeMap<Name, String>, reason: &str) -> Vec<Decision> {
        let mut want: BTreeSet<Name> = self.operator.drained_telcos.clone();
        for mitigation in self.mitigations.values() {
            want.extend(mitigation.withdrew_from.iter().cloned());
        }
        let mut decisions = Vec::new();
        for telco in want.difference(&self.withdrawn_telcos) {
            let why = newly_spent.get(telco).map_or_else(
                || {
                    if self.operator.drained_telcos.contains(telco) {
                        "the operator drained it".to_owned()
                    } else {
                        reason.to_owned()
                    }
                },
                Clone::clone,
            );
            decisions.push(Decision {
                intent: Intent::WithdrawFrom(telco.clone()),
                reason: why,
            });
        }
        for telco in self.withdrawn_telcos.difference(&want) {
            decisions.push(Decision {
                intent: Intent::AnnounceTo(telco.clone()),
                reason: if reason.is_empty() {
                    "the operator undrained it".to_owned()
                } else {
                    reason.to_owned()
                },
            });
        }
        self.withdrawn_telcos = want;
        decisions
    }

    /// Tightens the firewall while any flood lasts, relaxes it after.
    fn firewall(&mut self, reason: &str) -> Vec<Decision> {
        let flooded = self
            .mitigations
            .values()
            .any(|mitigation| mitigation.ended.is_none());
        if flooded == self.tightened {
            return Vec::new();
        }
        self.tightened = flooded;
        let (intent, reason) = if flooded {
            (Intent::TightenFirewall, reason.to_owned())
        } else {
            (Intent::RelaxFirewall, format!("{reason}: no flood left"))
        };
        vec![Decision { intent, reason }]
    }

    fn operator_command(&mut self, command: &Command) -> Vec<Decision> {
        let by_operator = |intent| {
            vec![Decision {
                intent,
                reason: "asked by the operator".to_owned(),
            }]
        };
        match command {
            Command::Drain { telco: None } => {
                self.operator.drained = true;
                self.serving()
            }
            Command::Undrain { telco: None } => {
                self.operator.drained = false;
                self.operator.drained_telcos.clear();
                let mut decisions = self.serving();
                decisions.extend(self.telcos(&BTreeMap::new(), ""));
                decisions
            }
            Command::Drain { telco: Some(telco) } => {
                self.operator.drained_telcos.insert(telco.clone());
                self.telcos(&BTreeMap::new(), "")
            }
            Command::Undrain { telco: Some(telco) } => {
                self.operator.drained_telcos.remove(telco);
                self.telcos(&BTreeMap::new(), "")
            }
            Command::AddFlow(flow) => {
                let held = self.holds_flow(flow);
                if !self.operator.flows.contains(flow) {
                    self.operator.flows.push(flow.clone());
                }
                if held {
                    Vec::new()
                } else {
                    by_operator(Intent::AddFlow(flow.clone()))
                }
            }
            Command::RemoveFlow(flow) => {
                self.operator.flows.retain(|held| held != flow);
                // A flood's rule stays until its flood is over.
                if self.holds_flow(flow) {
                    Vec::new()
                } else {
                    by_operator(Intent::RemoveFlow(flow.clone()))
                }
            }
            Command::AddBlackhole(prefix) => {
                if self.operator.blackholes.contains(prefix) {
                    return Vec::new();
                }
                self.operator.blackholes.push(*prefix);
                by_operator(Intent::AddBlackhole(*prefix))
            }
            Command::RemoveBlackhole(prefix) => {
                if !self.operator.blackholes.contains(prefix) {
                    return Vec::new();
                }
                self.operator.blackholes.retain(|held| held != prefix);
                by_operator(Intent::RemoveBlackhole(*prefix))
            }
        }
    }

    fn shutdown(&mut self, step: ShutdownStep) -> Vec<Decision> {
        let reason = "planned shutdown".to_owned();
        match step {
            ShutdownStep::Announce => vec![Decision {
                intent: Intent::GracefulShutdown,
                reason: format!("{reason}: the telcos move traffic away first (RFC 8326)"),
            }],
            ShutdownStep::Withdraw => {
                self.shutting_down = true;
                let mut decisions = self.serving();
                let mut removed: Vec<FlowSpec> = Vec::new();
                for flow in self
                    .operator
                    .flows
                    .drain(..)
                    .chain(self.mitigations.values().map(|m| m.flow.clone()))
                {
                    if !removed.contains(&flow) {
                        removed.push(flow);
                    }
                }
                let mut intents: Vec<Intent> =
                    removed.into_iter().map(Intent::RemoveFlow).collect();
                intents.extend(
                    self.operator
                        .blackholes
                        .drain(..)
                        .map(Intent::RemoveBlackhole),
                );
                for mitigation in std::mem::take(&mut self.mitigations).into_values() {
                    intents.extend(
                        mitigation
                            .source_blackholes
                            .into_iter()
                            .map(Intent::RemoveSourceBlackhole),
                    );
                }
                decisions.extend(intents.into_iter().map(|intent| Decision {
                    intent,
                    reason: reason.clone(),
                }));
                decisions
            }
            ShutdownStep::Drain => vec![Decision {
                intent: Intent::StopAccepting,
                reason: format!("{reason}: nothing is announced any more"),
            }],
        }
    }

    /// Withdraws or announces as health, link, the operator and the
    /// shutdown now say.
    fn serving(&mut self) -> Vec<Decision> {
        let why_not = if self.shutting_down {
            Some("planned shutdown: other nodes serve")
        } else if self.operator.drained {
            Some("the operator drained the node: other nodes serve")
        } else if !self.healthy {
            Some("the proxy or an origin is unhealthy: other nodes serve")
        } else if !self.link_up {
            Some("the anycast link is down: other nodes serve")
        } else {
            None
        };
        let withdraw = why_not.is_some();
        if withdraw == self.withdrawn {
            return Vec::new();
        }
        self.withdrawn = withdraw;
        let (intent, reason) = match why_not {
            Some(why) => (Intent::WithdrawAll, why.to_owned()),
            None => (
                Intent::AnnounceAll,
                "healthy, linked and not drained".to_owned(),
            ),
        };
        vec![Decision { intent, reason }]
    }
}

/// The Flowspec rule of a flood: its destination, and what its signature
/// says; the telcos discard what matches.
fn flow_of(flood: &Flood) -> FlowSpec {
    let signature = &flood.signature;
    FlowSpec {
        destination: IpNet::from(flood.target),
        source: match signature.source_prefixes.as_slice() {
            [one] => Some(*one),
            _ => None,
        },
        protocol: signature.protocol,
        destination_port: signature.destination_port,
        tcp_flags: signature.tcp_flags,
        packet_length: signature.length,
        rate_bytes: 0.0,
    }
}

#[cfg(test)]
mod tests;
