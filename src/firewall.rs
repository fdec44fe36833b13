//! The firewall's thread in `ixgate run`: it ticks the watch at the
//! configured interval, prints flood events as JSON lines on stdout, and
//! keeps what `ixgate ctl show counters|floods` reads.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use ixgate_firewall::detector::{DetectorEvent, Flood, Signature};
use ixgate_firewall::ruleset::Counted;
use ixgate_firewall::watch::{Watch, WatchError};
use ixgate_policy::Config;
use serde_json::{Value, json};

/// Floods kept for `show floods` once over.
const ENDED_KEPT: usize = 64;

/// What the control socket shows of the firewall.
#[derive(Debug, Default)]
pub struct View {
    counters: Value,
    /// Going on, then the last ones that ended, newest first.
    floods: Vec<Value>,
    sample_one_in: u32,
    tightened: bool,
    samples_undecodable: u64,
    sample_overruns: u64,
    /// Batches of verified sources the kernel did not take.
    trusted_failures: u64,
    error: Option<String>,
}

impl View {
    pub fn counters(&self) -> Value {
        json!({
            "counters": self.counters,
            "sample_one_in": self.sample_one_in,
            "tightened": self.tightened,
            "samples_undecodable": self.samples_undecodable,
            "sample_overruns": self.sample_overruns,
            "trusted_failures": self.trusted_failures,
            "error": self.error,
        })
    }

    /// The firewall's metrics: per target and class, rates and totals;
    /// sampling and its losses.
    pub fn expose(&self, out: &mut crate::metrics::Exposition) {
        let counters = self.counters.as_array().cloned().unwrap_or_default();
        for (name, kind, help, field) in [
            (
                "ixgate_firewall_packets_per_second",
                "gauge",
                "Packet rate per target and class.",
                "pps",
            ),
            (
                "ixgate_firewall_bits_per_second",
                "gauge",
                "Bit rate per target and class.",
                "bps",
            ),
            (
                "ixgate_firewall_packets_total",
                "counter",
                "Packets per target and class (dropped ones included).",
                "packets",
            ),
            (
                "ixgate_firewall_bytes_total",
                "counter",
                "Bytes per target and class.",
                "bytes",
            ),
        ] {
            out.family(name, kind, help);
            for counter in &counters {
                let target = counter["target"].as_str().unwrap_or_default();
                let class = counter["counted"].as_str().unwrap_or_default();
                let value = counter[field].as_f64().unwrap_or_default();
                out.sample(name, &[("target", target), ("class", class)], value);
            }
        }
        out.family(
            "ixgate_firewall_sample_one_in",
            "gauge",
            "1 packet in this many goes to NFLOG.",
        );
        out.count("ixgate_firewall_sample_one_in", &[], self.sample_one_in);
        out.family(
            "ixgate_firewall_samples_lost_total",
            "counter",
            "Samples lost, by reason.",
        );
        for (reason, count) in [
            ("undecodable", self.samples_undecodable),
            ("overrun", self.sample_overruns),
        ] {
            out.count(
                "ixgate_firewall_samples_lost_total",
                &[("reason", reason)],
                count,
            );
        }
        out.family(
            "ixgate_firewall_tightened",
            "gauge",
            "Per-destination limits tightened for a flood.",
        );
        out.count("ixgate_firewall_tightened", &[], u8::from(self.tightened));
    }

    pub fn floods(&self) -> Value {
        Value::Array(self.floods.clone())
    }
}

/// The running firewall thread.
pub struct FirewallTask {
    view: Arc<Mutex<View>>,
    stop: Arc<AtomicBool>,
    /// Set by the controller's tighten and relax decisions.
    tightened: Arc<AtomicBool>,
    thread: JoinHandle<Result<(), WatchError>>,
}

impl FirewallTask {
    /// Installs the ruleset and starts ticking. Errors when the ruleset
    /// cannot be installed: the appliance does not run unprotected.
    /// `trusted` brings the sources that completed mutual TLS: they join
    /// the trusted set (the fast lane past the per-destination SYN limit).
    /// Every flood event also goes to `floods` (the controller).
    pub fn start(
        config: &Config,
        mut trusted: tokio::sync::mpsc::Receiver<IpAddr>,
        floods: tokio::sync::mpsc::UnboundedSender<DetectorEvent>,
    ) -> Result<Self, WatchError> {
        let mut watch = Watch::start(config)?;
        let interval = config.node.firewall.counter_interval.duration();
        let view = Arc::new(Mutex::new(View::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let tightened = Arc::new(AtomicBool::new(false));
        let thread = {
            let view = view.clone();
            let stop = stop.clone();
            let tightened = tightened.clone();
            std::thread::spawn(move || {
                let mut next = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    let now = Instant::now();
                    let mut sources = BTreeSet::new();
                    while let Ok(source) = trusted.try_recv() {
                        sources.insert(source);
                    }
                    let sources: Vec<IpAddr> = sources.into_iter().collect();
                    let trusted_failed = !sources.is_empty() && watch.trust(&sources).is_err();
                    watch.set_tightened(tightened.load(Ordering::Relaxed));
                    let result = watch.tick(now);
                    for event in result.iter().flatten() {
                        let _ = floods.send(event.clone());
                    }
                    if let Ok(mut view) = view.lock() {
                        view.trusted_failures += u64::from(trusted_failed);
                        view.update(&watch, result);
                    }
                    next += interval;
                    let now = Instant::now();
                    if next > now {
                        std::thread::sleep(next - now);
                    } else {
                        // Behind (a slow dump, a stalled machine): start afresh
                        // rather than tick in a burst.
                        next = now;
                    }
                }
                watch.stop()
            })
        };
        Ok(Self {
            view,
            stop,
            tightened,
            thread,
        })
    }

    /// Where the controller's tighten and relax decisions go.
    pub fn tightener(&self) -> Arc<AtomicBool> {
        self.tightened.clone()
    }

    pub fn view(&self) -> Arc<Mutex<View>> {
        self.view.clone()
    }

    /// Stops ticking and removes our tables.
    pub fn stop(self) -> Result<(), String> {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.join() {
            Ok(result) => result.map_err(|error| error.to_string()),
            Err(_) => Err("the firewall thread panicked".into()),
        }
    }
}

impl View {
    fn update(&mut self, watch: &Watch, result: Result<Vec<DetectorEvent>, WatchError>) {
        match result {
            Ok(events) => {
                self.error = None;
                for event in events {
                    self.record(&event);
                }
            }
            Err(error) => self.error = Some(error.to_string()),
        }
        self.counters = watch
            .counters()
            .iter()
            .map(|status| {
                json!({
                    "name": status.spec.name,
                    "target": status.spec.target,
                    "counted": status.spec.counted.label(),
                    "packets": status.count.packets,
                    "bytes": status.count.bytes,
                    "pps": status.pps.round(),
                    "bps": status.bps.round(),
                })
            })
            .collect();
        let knobs = watch.knobs();
        self.sample_one_in = knobs.sample_one_in;
        self.tightened = knobs.tightened;
        (self.samples_undecodable, self.sample_overruns) = watch.sample_losses();
    }

    /// Logs the event and keeps the flood list current.
    fn record(&mut self, event: &DetectorEvent) {
        let (kind, flood) = match event {
            DetectorEvent::FloodStarted(flood) => ("flood-started", flood),
            DetectorEvent::FloodUpdated(flood) => ("flood-updated", flood),
            DetectorEvent::FloodEnded(flood) => ("flood-ended", flood),
        };
        let now = unix_millis();
        tracing::info!(
            event = kind,
            destination = %flood.target,
            class = Counted::Traffic(flood.class).label(),
            pps = flood.pps.round(),
            bps = flood.bps.round(),
            signature = %signature_json(&flood.signature),
        );
        let same = |record: &Value| {
            record["ended_unix_ms"].is_null()
                && record["target"] == json!(flood.target)
                && record["class"] == class_label(flood)
        };
        match event {
            DetectorEvent::FloodStarted(_) => {
                let mut record = flood_json(flood);
                record["started_unix_ms"] = json!(now);
                record["ended_unix_ms"] = Value::Null;
                self.floods.insert(0, record);
            }
            DetectorEvent::FloodUpdated(_) | DetectorEvent::FloodEnded(_) => {
                if let Some(record) = self.floods.iter_mut().find(|record| same(record)) {
                    let started = record["started_unix_ms"].clone();
                    *record = flood_json(flood);
                    record["started_unix_ms"] = started;
                    record["ended_unix_ms"] = if matches!(event, DetectorEvent::FloodEnded(_)) {
                        json!(now)
                    } else {
                        Value::Null
                    };
                }
            }
        }
        let ongoing = self
            .floods
            .iter()
            .filter(|record| record["ended_unix_ms"].is_null())
            .count();
        self.floods.truncate(ongoing + ENDED_KEPT);
    }
}

fn class_label(flood: &Flood) -> Value {
    json!(Counted::Traffic(flood.class).label())
}

fn flood_json(flood: &Flood) -> Value {
    json!({
        "target": flood.target,
        "class": class_label(flood),
        "pps": flood.pps.round(),
        "bps": flood.bps.round(),
        "signature": signature_json(&flood.signature),
    })
}

fn signature_json(signature: &Signature) -> Value {
    json!({
        "protocol": signature.protocol,
        "destination_port": signature.destination_port,
        "tcp_flags": signature.tcp_flags,
        "length": signature.length.map(|(low, high)| [low, high]),
        "source_prefixes": signature.source_prefixes,
    })
}

pub fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        })
}
