//! The controller, pure: events and `now` in, intents out, each with the
//! reason it was taken. No tokio, no sockets; `ixgate run` feeds it and
//! carries out what it decides, and its tests run on a virtual clock.
//!
//! - A flood gets a Flowspec rule from its signature (destination, and the
//!   protocol, port, TCP flags, packet lengths and concentrated sources
//!   that the samples showed). The export sends it only to the telcos
//!   whose file accepts Flowspec for that family, within their limit.
//! - Concentrated sources are also blackholed (source RTBH, RFC 5635)
//!   toward the telcos that accept it.
//! - Mitigations stay at least `min_active` from their start and
//!   `hold_down` after the flood ended; a flood that returns before then
//!   re-arms them.
//! - The proxy or its origins unhealthy, or the anycast link down: the
//!   anycast prefixes are withdrawn (other nodes serve), and announced
//!   again when all is well.
//! - A flood handed over by one telco's router at more than that telco's
//!   `withdraw_above_pps` (its share of the link spent) withdraws the
//!   prefixes from that telco alone, where its policy allows withdrawal;
//!   the others keep being served. The routers are told apart by their
//!   link-layer addresses on the peering LAN, which the samples carry.
//!   The prefixes go back to the telco once every flood that took them
//!   away has served its minimum active time and hold-down.

use std::collections::{BTreeMap, BTreeSet};
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
}

/// What the appliance should do.
#[derive(Clone, Debug, PartialEq)]
pub enum Intent {
    AddFlow(FlowSpec),
    RemoveFlow(FlowSpec),
    /// Source RTBH: blackhole traffic from this prefix at the telcos.
    AddSourceBlackhole(IpNet),
    RemoveSourceBlackhole(IpNet),
    /// Withdraw the anycast prefixes from every telco.
    WithdrawAll,
    AnnounceAll,
    /// Withdraw the anycast prefixes from this telco alone.
    WithdrawFrom(Name),
    AnnounceTo(Name),
}

impl std::fmt::Display for Intent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::AddFlow(flow) => write!(f, "add Flowspec {flow}"),
            Self::RemoveFlow(flow) => write!(f, "remove Flowspec {flow}"),
            Self::AddSourceBlackhole(prefix) => write!(f, "add source RTBH {prefix}"),
            Self::RemoveSourceBlackhole(prefix) => write!(f, "remove source RTBH {prefix}"),
            Self::WithdrawAll => f.write_str("withdraw the anycast prefixes"),
            Self::AnnounceAll => f.write_str("announce the anycast prefixes"),
            Self::WithdrawFrom(telco) => write!(f, "withdraw the anycast prefixes from {telco}"),
            Self::AnnounceTo(telco) => write!(f, "announce the anycast prefixes to {telco} again"),
        }
    }
}

/// One decision and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    pub intent: Intent,
    pub reason: String,
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

#[derive(Debug)]
pub struct Controller {
    min_active: Duration,
    hold_down: Duration,
    mitigations: BTreeMap<(IpAddr, Class), Mitigation>,
    healthy: bool,
    link_up: bool,
    /// Whether the prefixes are withdrawn for health or link.
    withdrawn: bool,
    /// The flood rate through a telco above which its prefixes go, for
    /// the telcos whose policy allows withdrawal and names one.
    withdraw_above: BTreeMap<Name, f64>,
    routers: BTreeMap<LinkAddress, Name>,
}

impl Controller {
    pub fn new(config: &Config) -> Self {
        Self {
            min_active: config.node.flood.min_active.duration(),
            hold_down: config.node.flood.hold_down.duration(),
            mitigations: BTreeMap::new(),
            healthy: true,
            link_up: true,
            withdrawn: false,
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
            routers: BTreeMap::new(),
        }
    }

    /// Takes one event at `now`.
    pub fn handle(&mut self, now: Instant, event: &Event) -> Vec<Decision> {
        match event {
            Event::Flood(
                DetectorEvent::FloodStarted(flood) | DetectorEvent::FloodUpdated(flood),
            ) => self.flood_on(now, flood),
            Event::Flood(DetectorEvent::FloodEnded(flood)) => {
                if let Some(mitigation) = self.mitigations.get_mut(&(flood.target, flood.class)) {
                    mitigation.ended.get_or_insert(now);
                }
                Vec::new()
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
        }
    }

    /// Expires what has served its time at `now`.
    pub fn tick(&mut self, now: Instant) -> Vec<Decision> {
        let (min_active, hold_down) = (self.min_active, self.hold_down);
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
            decisions.push(Decision {
                intent: Intent::RemoveFlow(mitigation.flow),
                reason: reason.clone(),
            });
            for prefix in mitigation.source_blackholes {
                decisions.push(Decision {
                    intent: Intent::RemoveSourceBlackhole(prefix),
                    reason: reason.clone(),
                });
            }
            for telco in mitigation.withdrew_from {
                let still_needed = self
                    .mitigations
                    .values()
                    .any(|other| other.withdrew_from.contains(&telco));
                if !still_needed {
                    decisions.push(Decision {
                        intent: Intent::AnnounceTo(telco),
                        reason: reason.clone(),
                    });
                }
            }
        }
        decisions
    }

    fn flood_on(&mut self, now: Instant, flood: &Flood) -> Vec<Decision> {
        let key = (flood.target, flood.class);
        let through = self.through(flood);
        let mut decisions = Vec::new();
        if let Some(mitigation) = self.mitigations.get_mut(&key) {
            // Back before the rule went: it stays, timed from now on.
            mitigation.ended = None;
            mitigation.through = through;
        } else {
            let flow = flow_of(flood);
            let reason = format!(
                "{:?} flood to {} at {:.0} pps, {:.0} bit/s",
                flood.class, flood.target, flood.pps, flood.bps
            );
            decisions.push(Decision {
                intent: Intent::AddFlow(flow.clone()),
                reason: reason.clone(),
            });
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
        decisions.extend(self.spent_links(key));
        decisions
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

    /// Withdraws from each telco whose floods, all running ones together,
    /// exceed its share; the flood `cause` is held responsible.
    fn spent_links(&mut self, cause: (IpAddr, Class)) -> Vec<Decision> {
        let withdrawn: BTreeSet<Name> = self
            .mitigations
            .values()
            .flat_map(|mitigation| mitigation.withdrew_from.iter().cloned())
            .collect();
        let mut decisions = Vec::new();
        for (telco, limit) in &self.withdraw_above {
            if withdrawn.contains(telco) {
                continue;
            }
            let rate: f64 = self
                .mitigations
                .values()
                .filter(|mitigation| mitigation.ended.is_none())
                .filter_map(|mitigation| mitigation.through.get(telco))
                .sum();
            if rate <= *limit {
                continue;
            }
            if let Some(mitigation) = self.mitigations.get_mut(&cause) {
                mitigation.withdrew_from.insert(telco.clone());
            }
            decisions.push(Decision {
                intent: Intent::WithdrawFrom(telco.clone()),
                reason: format!(
                    "floods through {telco} at {rate:.0} pps, above its {limit:.0} pps share: \
                     the other telcos keep being served"
                ),
            });
        }
        decisions
    }

    /// Withdraws or announces as health and link now say.
    fn serving(&mut self) -> Vec<Decision> {
        let can_serve = self.healthy && self.link_up;
        if can_serve != self.withdrawn {
            return Vec::new();
        }
        self.withdrawn = !can_serve;
        let (intent, reason) = match (self.healthy, self.link_up) {
            (true, true) => (Intent::AnnounceAll, "healthy and linked again".to_owned()),
            (false, _) => (
                Intent::WithdrawAll,
                "the proxy or an origin is unhealthy: other nodes serve".to_owned(),
            ),
            (true, false) => (
                Intent::WithdrawAll,
                "the anycast link is down: other nodes serve".to_owned(),
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
