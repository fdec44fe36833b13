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

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use ipnet::IpNet;
use ixgate_firewall::detector::{Class, DetectorEvent, Flood};
use ixgate_policy::Config;

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
        }
        decisions
    }

    fn flood_on(&mut self, now: Instant, flood: &Flood) -> Vec<Decision> {
        if let Some(mitigation) = self.mitigations.get_mut(&(flood.target, flood.class)) {
            // Back before the rule went: it stays, timed from now on.
            mitigation.ended = None;
            return Vec::new();
        }
        let flow = flow_of(flood);
        let reason = format!(
            "{:?} flood to {} at {:.0} pps, {:.0} bit/s",
            flood.class, flood.target, flood.pps, flood.bps
        );
        let mut decisions = vec![Decision {
            intent: Intent::AddFlow(flow.clone()),
            reason: reason.clone(),
        }];
        let source_blackholes = flood.signature.source_prefixes.clone();
        for prefix in &source_blackholes {
            decisions.push(Decision {
                intent: Intent::AddSourceBlackhole(*prefix),
                reason: format!("{reason}, concentrated in {prefix}"),
            });
        }
        self.mitigations.insert(
            (flood.target, flood.class),
            Mitigation {
                flow,
                source_blackholes,
                started: now,
                ended: None,
            },
        );
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
