//! The firewall at work: the ruleset installed, its counters read on
//! every tick, samples taken from NFLOG, all of it fed to the detector.
//! The decisions are the pure parts' ([`crate::detector`],
//! [`crate::sampling`], [`crate::ruleset`]); this is the shell that does
//! the I/O, driven by a caller's clock.

// Rates are estimates; u64 counts beyond 2^52 lose nothing that matters.
#![allow(clippy::cast_precision_loss)]

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use ixgate_policy::Config;

use crate::detector::{
    Class, CounterReading, Detector, DetectorConfig, DetectorEvent, PacketSample, Threshold,
};
use crate::install::Installer;
use crate::nflog::NflogListener;
use crate::nft::{Count, Family, NftError, read_counters};
use crate::ruleset::{Counted, CounterSpec, Knobs, Ruleset, SAMPLE_SNAPLEN, TABLE, render};
use crate::sampling::Sampler;

/// The SYN proxy needs conntrack to call an ACK without a connection
/// invalid, instead of picking it up mid-stream.
const TCP_LOOSE: &str = "/proc/sys/net/netfilter/nf_conntrack_tcp_loose";

/// How long a flood must last before it can end, and how long the rate
/// must stay at or below the exit threshold: the detector's own timing.
/// How long mitigations last is the controller's business.
const MIN_ACTIVE: Duration = Duration::from_secs(2);
const EXIT_HOLD: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error(transparent)]
    Nft(#[from] NftError),
    #[error("cannot set {TCP_LOOSE}: {0}")]
    Sysctl(std::io::Error),
}

/// One counter as last read.
#[derive(Clone, Debug, PartialEq)]
pub struct CounterStatus {
    pub spec: CounterSpec,
    pub count: Count,
    pub pps: f64,
    pub bps: f64,
}

/// The firewall of one node.
#[derive(Debug)]
pub struct Watch {
    config: Config,
    installer: Installer,
    knobs: Knobs,
    ruleset: Ruleset,
    detector: Detector,
    sampler: Sampler,
    listener: NflogListener,
    samples: Vec<PacketSample>,
    status: Vec<CounterStatus>,
    last_read: Option<Instant>,
    /// The controller's word: per-destination limits divided for a flood.
    tightened: bool,
}

impl Watch {
    /// Installs the ruleset for `config` (replacing whatever a previous run
    /// left) and starts listening for samples.
    pub fn start(config: &Config) -> Result<Self, WatchError> {
        let firewall = &config.node.firewall;
        let knobs = Knobs::default();
        let sampler = Sampler::new(firewall.sample_budget.per_second(), knobs.sample_one_in);
        let knobs = Knobs {
            sample_one_in: sampler.one_in(),
            ..knobs
        };
        let ruleset = render(config, knobs);
        let mut installer = Installer::default();
        installer.apply(&ruleset)?;
        std::fs::write(TCP_LOOSE, "0").map_err(WatchError::Sysctl)?;
        let listener = NflogListener::open(firewall.nflog_group, SAMPLE_SNAPLEN)?;
        Ok(Self {
            detector: Detector::new(detector_config(config)),
            config: config.clone(),
            installer,
            knobs,
            ruleset,
            sampler,
            listener,
            samples: Vec::new(),
            status: Vec::new(),
            last_read: None,
            tightened: false,
        })
    }

    /// Tightens the per-destination limits (or relaxes them) from the
    /// next tick on: the controller decides, while floods last.
    pub fn set_tightened(&mut self, tightened: bool) {
        self.tightened = tightened;
    }

    /// One round at `now`: samples, counters, detector; the ruleset follows
    /// (tightened as told, the sampling rate to the traffic).
    pub fn tick(&mut self, now: Instant) -> Result<Vec<DetectorEvent>, WatchError> {
        self.samples.clear();
        self.listener.receive(&mut self.samples)?;
        self.detector.sampled(now, &self.samples);

        let names: Vec<&str> = self
            .ruleset
            .counters
            .iter()
            .map(|counter| counter.name.as_str())
            .collect();
        let counts = read_counters(Family::Netdev, TABLE, &names)?;
        self.update_status(now, &counts);
        let readings: Vec<CounterReading> = self
            .status
            .iter()
            .filter_map(|status| match (status.spec.target, status.spec.counted) {
                (Some(target), Counted::Traffic(class)) => Some(CounterReading {
                    target,
                    class,
                    packets: status.count.packets,
                    bytes: status.count.bytes,
                }),
                _ => None,
            })
            .collect();
        let events = self.detector.counters(now, &readings);

        let sampled_pps: f64 = self
            .status
            .iter()
            .filter(|status| {
                matches!(status.spec.counted, Counted::Traffic(class) if class != Class::Fragment)
            })
            .map(|status| status.pps)
            .sum();
        let knobs = Knobs {
            tightened: self.tightened,
            sample_one_in: self
                .sampler
                .observe(sampled_pps)
                .unwrap_or(self.knobs.sample_one_in),
        };
        if knobs != self.knobs {
            let ruleset = render(&self.config, knobs);
            self.installer.apply(&ruleset)?;
            self.knobs = knobs;
            self.ruleset = ruleset;
        }
        Ok(events)
    }

    /// Rates since the last read; a counter that went down was reset.
    fn update_status(&mut self, now: Instant, counts: &[Count]) {
        let elapsed = self
            .last_read
            .map(|then| now.saturating_duration_since(then).as_secs_f64());
        self.last_read = Some(now);
        let previous = std::mem::take(&mut self.status);
        for (spec, count) in self.ruleset.counters.iter().zip(counts) {
            let before = previous
                .iter()
                .find(|status| status.spec.name == spec.name)
                .map(|status| status.count);
            let (pps, bps) = match (elapsed, before) {
                (Some(elapsed), Some(before))
                    if elapsed > 0.0
                        && count.packets >= before.packets
                        && count.bytes >= before.bytes =>
                {
                    (
                        (count.packets - before.packets) as f64 / elapsed,
                        (count.bytes - before.bytes) as f64 * 8.0 / elapsed,
                    )
                }
                _ => (0.0, 0.0),
            };
            self.status.push(CounterStatus {
                spec: spec.clone(),
                count: *count,
                pps,
                bps,
            });
        }
    }

    /// The counters as last read, with their rates.
    pub fn counters(&self) -> &[CounterStatus] {
        &self.status
    }

    /// What the ruleset runs with now.
    pub fn knobs(&self) -> Knobs {
        self.knobs
    }

    /// Samples the listener could not decode, and times the kernel dropped
    /// samples because they were read too slowly.
    pub fn sample_losses(&self) -> (u64, u64) {
        (self.listener.undecodable, self.listener.overruns)
    }

    /// Adds sources to the trusted sets: their SYNs skip the
    /// per-destination limit.
    pub fn trust(&self, sources: &[IpAddr]) -> Result<(), WatchError> {
        Ok(self.installer.trust(sources)?)
    }

    /// Removes our tables.
    pub fn stop(mut self) -> Result<(), WatchError> {
        Ok(self.installer.remove()?)
    }
}

/// The detector's thresholds from the node's `[flood]` section.
fn detector_config(config: &Config) -> DetectorConfig {
    let flood = &config.node.flood;
    let threshold = |t: ixgate_policy::node::Threshold| Threshold {
        enter_pps: t.enter_pps.per_second(),
        exit_pps: t.exit_pps.per_second(),
    };
    let thresholds = BTreeMap::from([
        (Class::Syn, threshold(flood.syn)),
        (Class::TcpOther, threshold(flood.tcp_other)),
        (Class::Udp, threshold(flood.udp)),
        (Class::Icmp, threshold(flood.icmp)),
    ]);
    let mut detector = DetectorConfig::new(thresholds);
    detector.min_active = MIN_ACTIVE;
    detector.exit_hold = EXIT_HOLD;
    detector
}
