//! The flood detector, pure: counter readings and sampled packet headers
//! go in with the time, flood events come out.
//!
//! Per destination and traffic class it keeps the raw rate of each reading
//! window (100 ms by default) and an exponential moving average. A flood
//! starts when the raw rate stays above the enter threshold for a few
//! windows (the fast path) or the average crosses it; it ends once the
//! average and the raw rate have stayed at or below the exit threshold
//! (at most ¾ of enter: hysteresis) for the exit hold, and not before the
//! minimum active time. Its signature is the most specific match that
//! covers most of the sampled packets: protocol, destination port, TCP
//! flags, a packet-length range, and source prefixes only when the
//! sources are concentrated (a spoofed flood has none worth naming).

// Rates are estimates in f64; packet and byte counters stay far below the
// 2^52 where the conversion would lose a unit.
#![allow(clippy::cast_precision_loss)]

use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use ipnet::IpNet;

/// What the firewall counts separately per destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    Syn,
    TcpOther,
    Udp,
    Icmp,
    Fragment,
}

impl Class {
    /// The class of a sampled packet.
    pub fn of(packet: &PacketSample) -> Self {
        match (packet.fragment, packet.protocol, packet.tcp_flags) {
            (true, ..) => Self::Fragment,
            (false, TCP, Some(flags)) if flags & (SYN | ACK) == SYN => Self::Syn,
            (false, TCP, _) => Self::TcpOther,
            (false, UDP, _) => Self::Udp,
            _ => Self::Icmp,
        }
    }
}

const TCP: u8 = 6;
const UDP: u8 = 17;
const SYN: u8 = 0x02;
const ACK: u8 = 0x10;

/// Enter and exit rates of one class, in packets per second.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Threshold {
    pub enter_pps: u64,
    pub exit_pps: u64,
}

#[derive(Clone, Debug)]
pub struct DetectorConfig {
    pub thresholds: BTreeMap<Class, Threshold>,
    /// Time constant of the moving average.
    pub ema_tau: Duration,
    /// Consecutive windows above the enter threshold that start a flood.
    pub enter_windows: u32,
    /// A flood lasts at least this long.
    pub min_active: Duration,
    /// The rate must stay at or below exit this long for a flood to end.
    pub exit_hold: Duration,
    /// How often a running flood is reported again.
    pub update_every: Duration,
    /// Sampled packets older than this do not shape signatures.
    pub sample_window: Duration,
    /// Source prefixes go in a signature when at most `max_source_prefixes`
    /// of them cover at least this share of the samples.
    pub concentrated_share: f64,
    pub max_source_prefixes: usize,
    /// A port, flag set or length range goes in a signature when it covers
    /// at least this share of the samples.
    pub dominant_share: f64,
}

impl DetectorConfig {
    /// Defaults around the given thresholds.
    pub fn new(thresholds: BTreeMap<Class, Threshold>) -> Self {
        Self {
            thresholds,
            ema_tau: Duration::from_secs(1),
            enter_windows: 2,
            min_active: Duration::from_secs(10),
            exit_hold: Duration::from_secs(2),
            update_every: Duration::from_secs(1),
            sample_window: Duration::from_secs(2),
            concentrated_share: 0.8,
            max_source_prefixes: 4,
            dominant_share: 0.8,
        }
    }
}

/// A cumulative counter as the firewall read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CounterReading {
    pub target: IpAddr,
    pub class: Class,
    pub packets: u64,
    pub bytes: u64,
}

/// An Ethernet address: on the peering LAN, the router that handed a
/// packet to this node, so which telco it came through.
pub type LinkAddress = [u8; 6];

/// The headers of one sampled packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketSample {
    /// The link-layer source, when the sampler saw one.
    pub via: Option<LinkAddress>,
    pub source: IpAddr,
    pub destination: IpAddr,
    pub protocol: u8,
    pub source_port: Option<u16>,
    pub destination_port: Option<u16>,
    pub tcp_flags: Option<u8>,
    pub length: u16,
    pub ttl: u8,
    pub fragment: bool,
}

/// The most specific match covering most of a flood.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Signature {
    pub protocol: Option<u8>,
    pub destination_port: Option<u16>,
    pub tcp_flags: Option<u8>,
    /// Inclusive packet-length range.
    pub length: Option<(u16, u16)>,
    /// Empty when the sources are spread (spoofed).
    pub source_prefixes: Vec<IpNet>,
}

/// A flood as reported.
#[derive(Clone, Debug, PartialEq)]
pub struct Flood {
    pub target: IpAddr,
    pub class: Class,
    pub pps: f64,
    pub bps: f64,
    pub signature: Signature,
    /// Which router handed the flood's sampled packets to us, and the
    /// share of them each did (largest first; samples without a link
    /// address count for none).
    pub via: Vec<(LinkAddress, f64)>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum DetectorEvent {
    FloodStarted(Flood),
    FloodUpdated(Flood),
    FloodEnded(Flood),
}

#[derive(Clone, Debug)]
struct Series {
    last: Option<(Instant, u64, u64)>,
    pps: f64,
    bps: f64,
    ema_pps: f64,
    ema_bps: f64,
    windows_above: u32,
    active: Option<Active>,
}

#[derive(Clone, Copy, Debug)]
struct Active {
    since: Instant,
    quiet_since: Option<Instant>,
    reported: Instant,
}

impl Series {
    fn new() -> Self {
        Self {
            last: None,
            pps: 0.0,
            bps: 0.0,
            ema_pps: 0.0,
            ema_bps: 0.0,
            windows_above: 0,
            active: None,
        }
    }
}

/// The detector of one node.
#[derive(Clone, Debug)]
pub struct Detector {
    config: DetectorConfig,
    series: BTreeMap<(IpAddr, Class), Series>,
    samples: VecDeque<(Instant, PacketSample)>,
}

/// Samples kept at most, whatever the window: a flood sampled faster than
/// the sampler's cap still costs bounded memory.
const MAX_SAMPLES: usize = 8192;

impl Detector {
    pub fn new(config: DetectorConfig) -> Self {
        Self {
            config,
            series: BTreeMap::new(),
            samples: VecDeque::new(),
        }
    }

    /// Records sampled packets for signatures.
    pub fn sampled(&mut self, now: Instant, packets: &[PacketSample]) {
        for packet in packets {
            if self.samples.len() == MAX_SAMPLES {
                self.samples.pop_front();
            }
            self.samples.push_back((now, *packet));
        }
        let horizon = self.config.sample_window;
        while self
            .samples
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) > horizon)
        {
            self.samples.pop_front();
        }
    }

    /// Takes one round of counter readings made at `now`.
    pub fn counters(&mut self, now: Instant, readings: &[CounterReading]) -> Vec<DetectorEvent> {
        let mut events = Vec::new();
        for reading in readings {
            let Some(threshold) = self.config.thresholds.get(&reading.class).copied() else {
                continue;
            };
            let series = self
                .series
                .entry((reading.target, reading.class))
                .or_insert_with(Series::new);
            let previous = series.last.replace((now, reading.packets, reading.bytes));
            let Some((then, packets, bytes)) = previous else {
                continue;
            };
            let elapsed = now.saturating_duration_since(then).as_secs_f64();
            // A counter that went down was reset (the table was re-applied):
            // this reading starts a new baseline.
            if elapsed <= 0.0 || reading.packets < packets || reading.bytes < bytes {
                continue;
            }
            series.pps = (reading.packets - packets) as f64 / elapsed;
            series.bps = (reading.bytes - bytes) as f64 * 8.0 / elapsed;
            let alpha = 1.0 - (-elapsed / self.config.ema_tau.as_secs_f64()).exp();
            series.ema_pps += alpha * (series.pps - series.ema_pps);
            series.ema_bps += alpha * (series.bps - series.ema_bps);
            let enter = threshold.enter_pps as f64;
            let exit = threshold.exit_pps as f64;
            series.windows_above = if series.pps > enter {
                series.windows_above + 1
            } else {
                0
            };
            let (pps, bps, ema_pps) = (series.pps, series.bps, series.ema_pps);
            let flood_of = |(signature, via)| Flood {
                target: reading.target,
                class: reading.class,
                pps,
                bps,
                signature,
                via,
            };
            match &mut series.active {
                None => {
                    if series.windows_above >= self.config.enter_windows || ema_pps > enter {
                        series.active = Some(Active {
                            since: now,
                            quiet_since: None,
                            reported: now,
                        });
                        let signature =
                            signature(&self.config, &self.samples, reading.target, reading.class);
                        events.push(DetectorEvent::FloodStarted(flood_of(signature)));
                    }
                }
                Some(active) => {
                    let quiet = pps <= exit && ema_pps <= exit;
                    active.quiet_since = if quiet {
                        Some(active.quiet_since.unwrap_or(now))
                    } else {
                        None
                    };
                    let held = active
                        .quiet_since
                        .is_some_and(|at| now.duration_since(at) >= self.config.exit_hold);
                    let matured = now.duration_since(active.since) >= self.config.min_active;
                    if held && matured {
                        series.active = None;
                        let signature =
                            signature(&self.config, &self.samples, reading.target, reading.class);
                        events.push(DetectorEvent::FloodEnded(flood_of(signature)));
                    } else if !quiet
                        && now.duration_since(active.reported) >= self.config.update_every
                    {
                        active.reported = now;
                        let signature =
                            signature(&self.config, &self.samples, reading.target, reading.class);
                        events.push(DetectorEvent::FloodUpdated(flood_of(signature)));
                    }
                }
            }
        }
        events
    }
}

/// The value covering at least `share` of `values`, if one does.
fn dominant<T: Ord + Copy>(values: impl Iterator<Item = T>, share: f64) -> Option<T> {
    let mut counts: BTreeMap<T, usize> = BTreeMap::new();
    let mut total = 0_usize;
    for value in values {
        *counts.entry(value).or_default() += 1;
        total += 1;
    }
    let (value, count) = counts.into_iter().max_by_key(|(_, count)| *count)?;
    (count as f64 >= share * total as f64).then_some(value)
}

/// The /24 (IPv4) or /48 (IPv6) around a source.
fn aggregate(source: IpAddr) -> IpNet {
    let length = if source.is_ipv4() { 24 } else { 48 };
    IpNet::new(source, length).map_or_else(|_| IpNet::from(source), |net| net.trunc())
}

/// The share of a flood's sampled packets its length range must hold: a
/// few legitimate packets of the same port and flags (an app's SYNs carry
/// options, 60 bytes where spoofed ones are 40) must not widen the rule
/// until it drops them too.
const LENGTH_SHARE: f64 = 0.95;

/// The narrowest range of `lengths` that holds `share` of them.
fn covering_range(mut lengths: Vec<u16>, share: f64) -> Option<(u16, u16)> {
    lengths.sort_unstable();
    let count = lengths.len();
    // At least one, at most all: the index stays in the vector.
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let needed = ((share * count as f64).ceil() as usize).clamp(1, count.max(1));
    lengths
        .windows(needed)
        .map(|window| (window[0], window[needed - 1]))
        .min_by_key(|(low, high)| high - low)
}

/// The signature of the flood to `target` of `class`, and the routers it
/// came through.
fn signature(
    config: &DetectorConfig,
    samples: &VecDeque<(Instant, PacketSample)>,
    target: IpAddr,
    class: Class,
) -> (Signature, Vec<(LinkAddress, f64)>) {
    let matching: Vec<&PacketSample> = samples
        .iter()
        .map(|(_, packet)| packet)
        .filter(|packet| packet.destination == target && Class::of(packet) == class)
        .collect();
    (signature_of(config, &matching, class), via(&matching))
}

/// The share of `packets` each link-layer source handed over.
fn via(packets: &[&PacketSample]) -> Vec<(LinkAddress, f64)> {
    let mut counts: BTreeMap<LinkAddress, usize> = BTreeMap::new();
    for address in packets.iter().filter_map(|packet| packet.via) {
        *counts.entry(address).or_default() += 1;
    }
    let total = packets.len().max(1) as f64;
    let mut shares: Vec<(LinkAddress, f64)> = counts
        .into_iter()
        .map(|(address, count)| (address, count as f64 / total))
        .collect();
    shares.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    shares
}

fn signature_of(config: &DetectorConfig, matching: &[&PacketSample], class: Class) -> Signature {
    let protocol = match class {
        Class::Syn | Class::TcpOther => Some(TCP),
        Class::Udp => Some(UDP),
        Class::Icmp | Class::Fragment => matching.first().map(|packet| packet.protocol),
    };
    if matching.is_empty() {
        return Signature {
            protocol,
            tcp_flags: (class == Class::Syn).then_some(SYN),
            ..Signature::default()
        };
    }
    let share = config.dominant_share;
    let destination_port = dominant(matching.iter().filter_map(|p| p.destination_port), share);
    let tcp_flags = if class == Class::Syn {
        Some(SYN)
    } else {
        dominant(matching.iter().filter_map(|p| p.tcp_flags), share)
    };
    // The flood's own packets: those matching the dominant port and
    // flags; legitimate traffic mixed in does not widen the rest.
    let flood: Vec<&PacketSample> = matching
        .iter()
        .copied()
        .filter(|p| destination_port.is_none_or(|port| p.destination_port == Some(port)))
        .filter(|p| class == Class::Syn || tcp_flags.is_none_or(|flags| p.tcp_flags == Some(flags)))
        .collect();
    let length = covering_range(flood.iter().map(|p| p.length).collect(), LENGTH_SHARE);
    // Sources only when a few prefixes carry the flood.
    let mut prefixes: BTreeMap<IpNet, usize> = BTreeMap::new();
    for packet in &flood {
        *prefixes.entry(aggregate(packet.source)).or_default() += 1;
    }
    let mut ranked: Vec<(IpNet, usize)> = prefixes.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    ranked.truncate(config.max_source_prefixes);
    let covered: usize = ranked.iter().map(|(_, count)| count).sum();
    let source_prefixes = if covered as f64 >= config.concentrated_share * flood.len() as f64 {
        ranked.into_iter().map(|(net, _)| net).collect()
    } else {
        Vec::new()
    };
    Signature {
        protocol,
        destination_port,
        tcp_flags,
        length,
        source_prefixes,
    }
}

#[cfg(test)]
mod tests;
